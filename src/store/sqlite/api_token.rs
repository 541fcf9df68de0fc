//! [`ApiTokenStore`] for [`SqliteStore`] (migration 7).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{
    corrupt, is_unique_violation, join_scopes, millis, query_all, split_scopes, sql, tenant, time,
    user_from_row,
};
use crate::error::{Error, Result};
use crate::ids::{ApiTokenId, UserId};
use crate::store::api_token::{
    ApiTokenInfo, ApiTokenStore, ApiTokenUpdate, ApiTokenUsage, LAST_USED_RESOLUTION,
    StoredApiToken, UsageOutcome, check_operation, duplicate, last_uses,
};

/// The columns, in the order `raw` reads them (a macro so the hot
/// lookup's SQL is one literal, not formatted per call).
macro_rules! columns {
    () => {
        "hash, id, tenant, user_id, name, scopes, created_at, expires_at, \
         last_used_at, active, revoked_at"
    };
}
const COLUMNS: &str = columns!();
/// `verify`'s point read by hash.
const BY_HASH: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM consentry_api_tokens WHERE hash = ?1"
);

type Raw = (
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    bool,
    Option<i64>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    // rusqlite reads a row into a tuple of its column types, in order.
    Raw::try_from(r)
}

fn stored(r: Raw) -> Result<StoredApiToken> {
    let (hash, id, tenant, user, name, scopes, created, expires, last_used, active, revoked) = r;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| corrupt("API token hash", Error::invalid("hash", "is not 32 bytes")))?;
    Ok(StoredApiToken {
        hash,
        info: ApiTokenInfo {
            id: ApiTokenId::new(id).map_err(|e| corrupt("API token id", e))?,
            owner: user_from_row(tenant, user)?,
            name,
            scopes: split_scopes(&scopes)?,
            created_at: time(created),
            expires_at: expires.map(time),
            last_used_at: last_used.map(time),
            active,
            revoked_at: revoked.map(time),
        },
    })
}

fn usage(r: (String, i64, String, String, i64, Option<i64>)) -> Result<ApiTokenUsage> {
    let (id, at, operation, outcome, count, first_at) = r;
    Ok(ApiTokenUsage {
        token: ApiTokenId::new(id).map_err(|e| corrupt("API token id", e))?,
        at: time(at),
        first_at: time(first_at.unwrap_or(at)),
        count: u64::try_from(count).unwrap_or(1).max(1),
        operation,
        outcome: UsageOutcome::parse(&outcome).ok_or_else(|| {
            corrupt(
                "API token usage outcome",
                Error::invalid("outcome", "unknown"),
            )
        })?,
    })
}

#[async_trait]
impl ApiTokenStore for SqliteStore {
    async fn insert_api_token(&self, t: StoredApiToken) -> Result<()> {
        self.write(move |conn| {
            let i = &t.info;
            conn.execute(
                &format!("INSERT INTO consentry_api_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    &t.hash[..],
                    i.id.as_str(),
                    tenant(&i.owner),
                    i.owner.user(),
                    i.name,
                    join_scopes(&i.scopes),
                    millis(i.created_at),
                    i.expires_at.map(millis),
                    i.last_used_at.map(millis),
                    i.active,
                    i.revoked_at.map(millis),
                ],
            )
            .map(|_| ())
            .map_err(|err| {
                if is_unique_violation(&err) {
                    duplicate()
                } else {
                    Error::storage("storing an API token", err)
                }
            })
        })
        .await
    }

    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<StoredApiToken>> {
        let hash = *hash;
        let row = self
            .read(move |conn| {
                conn.prepare_cached(BY_HASH)
                    .and_then(|mut s| s.query_row([&hash[..]], raw).optional())
                    .map_err(sql("reading an API token"))
            })
            .await?;
        row.map(stored).transpose()
    }

    async fn list_api_tokens(&self, owner: &UserId) -> Result<Vec<ApiTokenInfo>> {
        let (t, u) = (tenant(owner), owner.user().to_owned());
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {COLUMNS} FROM consentry_api_tokens
                         WHERE tenant = ?1 AND user_id = ?2 ORDER BY created_at, id"
                    ),
                    params![t, u],
                    "listing API tokens",
                    raw,
                )
            })
            .await?;
        rows.into_iter()
            .map(|r| stored(r).map(|s| s.info))
            .collect()
    }

    async fn update_api_token(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        update: ApiTokenUpdate,
    ) -> Result<Option<ApiTokenInfo>> {
        let (t, u, id) = (
            tenant(owner),
            owner.user().to_owned(),
            id.as_str().to_owned(),
        );
        let row = self
            .write(move |conn| {
                let (set, value): (&str, rusqlite::types::Value) = match update {
                    ApiTokenUpdate::Rename(name) => ("name = ?4", name.into()),
                    ApiTokenUpdate::SetActive(active) => ("active = ?4", i64::from(active).into()),
                    ApiTokenUpdate::Revoke(at) => {
                        ("revoked_at = coalesce(revoked_at, ?4)", millis(at).into())
                    }
                };
                conn.prepare_cached(&format!(
                    "UPDATE consentry_api_tokens SET {set}
                     WHERE id = ?1 AND tenant = ?2 AND user_id = ?3 RETURNING {COLUMNS}"
                ))
                .and_then(|mut s| s.query_row(params![id, t, u, value], raw).optional())
                .map_err(sql("updating an API token"))
            })
            .await?;
        row.map(|r| stored(r).map(|s| s.info)).transpose()
    }

    async fn record_api_token_usage(&self, mut entries: Vec<ApiTokenUsage>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        for e in &entries {
            check_operation(&e.operation)?;
        }
        // Grouped by token (stable: each token's entries keep their
        // order), the inserts walk the per-token index once, in order,
        // instead of jumping to a random page per entry.
        entries.sort_by(|a, b| a.token.as_str().cmp(b.token.as_str()));
        let resolution = i64::try_from(LAST_USED_RESOLUTION.as_millis()).unwrap_or(i64::MAX);
        self.write(move |conn| {
            let err = sql("recording API token usage");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO consentry_api_token_usage
                             (token_id, at, operation, outcome, count, first_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(&err)?;
                for e in &entries {
                    insert
                        .execute(params![
                            e.token.as_str(),
                            millis(e.at),
                            e.operation,
                            e.outcome.as_str(),
                            i64::try_from(e.count.max(1)).unwrap_or(i64::MAX),
                            (e.first_at != e.at).then(|| millis(e.first_at))
                        ])
                        .map_err(&err)?;
                }
                let mut touch = tx
                    .prepare_cached(
                        "UPDATE consentry_api_tokens SET last_used_at = ?2
                         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
                    )
                    .map_err(&err)?;
                for (id, at) in last_uses(&entries) {
                    touch
                        .execute(params![id.as_str(), millis(at), resolution])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn api_token_usage(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        limit: usize,
    ) -> Result<Option<Vec<ApiTokenUsage>>> {
        let (t, u, id) = (
            tenant(owner),
            owner.user().to_owned(),
            id.as_str().to_owned(),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(move |conn| {
                let err = sql("reading API token usage");
                let owned: Option<i64> = conn
                    .prepare_cached(
                        "SELECT 1 FROM consentry_api_tokens
                         WHERE id = ?1 AND tenant = ?2 AND user_id = ?3",
                    )
                    .and_then(|mut s| s.query_row(params![id, t, u], |r| r.get(0)).optional())
                    .map_err(&err)?;
                if owned.is_none() {
                    return Ok(None);
                }
                query_all(
                    conn,
                    "SELECT token_id, at, operation, outcome, count, first_at
                     FROM consentry_api_token_usage
                     WHERE token_id = ?1 ORDER BY seq DESC LIMIT ?2",
                    params![id, limit],
                    "reading API token usage",
                    |r| <(String, i64, String, String, i64, Option<i64>)>::try_from(r),
                )
                .map(Some)
            })
            .await?;
        rows.map(|rows| rows.into_iter().map(usage).collect())
            .transpose()
    }
}
