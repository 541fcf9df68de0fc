//! [`WebhookEndpointStore`] and [`ReplayStore`] for [`SqliteStore`]
//! (migration 3).

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{corrupt, is_unique_violation, millis, query_all, sql, time};
use crate::error::{Error, Result};
use crate::ids::EndpointId;
use crate::store::webhook::{ReplayStore, StoredEndpoint, WebhookEndpointStore, check_replay_key};

const COLUMNS: &str = "id, url, event_types, enabled, disabled_reason, rate_limit, sealed, \
                       created_at, updated_at, first_failure_at, revision";

type Raw = (
    String,
    String,
    String,
    bool,
    Option<String>,
    Option<i64>,
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    i64,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    // rusqlite reads a row into a tuple of its column types, in order.
    Raw::try_from(r)
}

fn endpoint(r: Raw) -> Result<StoredEndpoint> {
    let (id, url, types, enabled, reason, rate, sealed, created, updated, first, revision) = r;
    Ok(StoredEndpoint {
        id: EndpointId::new(id).map_err(|e| corrupt("endpoint id", e))?,
        url,
        event_types: types
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        enabled,
        disabled_reason: reason,
        rate_limit: rate.and_then(|r| u32::try_from(r).ok()),
        sealed,
        created_at: time(created),
        updated_at: time(updated),
        first_failure_at: first.map(time),
        revision: u64::try_from(revision).unwrap_or(0),
    })
}

#[async_trait]
impl WebhookEndpointStore for SqliteStore {
    async fn insert_webhook_endpoint(&self, e: StoredEndpoint) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO consentry_webhook_endpoints
                   (id, url, event_types, enabled, disabled_reason, rate_limit, sealed,
                    created_at, updated_at, first_failure_at, revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1)",
                params![
                    e.id.as_str(),
                    e.url,
                    e.event_types.join(" "),
                    e.enabled,
                    e.disabled_reason,
                    e.rate_limit,
                    e.sealed,
                    millis(e.created_at),
                    millis(e.updated_at),
                    e.first_failure_at.map(millis),
                ],
            )
            .map(|_| ())
            .map_err(|err| {
                if is_unique_violation(&err) {
                    Error::Conflict {
                        what: "webhook endpoint",
                        expected: 0,
                        found: 1,
                    }
                } else {
                    Error::storage("storing a webhook endpoint", err)
                }
            })
        })
        .await
    }

    async fn get_webhook_endpoint(&self, id: &EndpointId) -> Result<Option<StoredEndpoint>> {
        let id = id.as_str().to_owned();
        let row = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM consentry_webhook_endpoints WHERE id = ?1"
                ))
                .and_then(|mut s| s.query_row([id], raw).optional())
                .map_err(sql("reading a webhook endpoint"))
            })
            .await?;
        row.map(endpoint).transpose()
    }

    async fn list_webhook_endpoints(&self) -> Result<Vec<StoredEndpoint>> {
        let rows = self
            .read(|conn| {
                query_all(
                    conn,
                    &format!("SELECT {COLUMNS} FROM consentry_webhook_endpoints ORDER BY id"),
                    [],
                    "listing webhook endpoints",
                    raw,
                )
            })
            .await?;
        rows.into_iter().map(endpoint).collect()
    }

    async fn update_webhook_endpoint(&self, e: StoredEndpoint) -> Result<u64> {
        self.write(move |conn| {
            let err = sql("updating a webhook endpoint");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let found: Option<i64> = tx
                .query_row(
                    "SELECT revision FROM consentry_webhook_endpoints WHERE id = ?1",
                    [e.id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            let found = found.ok_or(Error::NotFound {
                what: "webhook endpoint",
            })?;
            let found = u64::try_from(found).unwrap_or(0);
            if found != e.revision {
                return Err(Error::Conflict {
                    what: "webhook endpoint",
                    expected: e.revision,
                    found,
                });
            }
            tx.execute(
                "UPDATE consentry_webhook_endpoints SET
                   url = ?2, event_types = ?3, disabled_reason = ?5, rate_limit = ?6, sealed = ?7,
                   updated_at = ?8, revision = revision + 1,
                   first_failure_at = CASE WHEN ?4 = 1 AND enabled = 0 THEN NULL ELSE first_failure_at END,
                   enabled = ?4
                 WHERE id = ?1",
                params![
                    e.id.as_str(),
                    e.url,
                    e.event_types.join(" "),
                    e.enabled,
                    e.disabled_reason,
                    e.rate_limit,
                    e.sealed,
                    millis(e.updated_at),
                ],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(found + 1)
        })
        .await
    }

    async fn delete_webhook_endpoint(&self, id: &EndpointId) -> Result<bool> {
        let id = id.as_str().to_owned();
        self.write(move |conn| {
            // Deliveries and their attempts go with it (ON DELETE CASCADE),
            // in the statement's own transaction.
            conn.execute(
                "DELETE FROM consentry_webhook_endpoints WHERE id = ?1",
                [id],
            )
            .map(|n| n == 1)
            .map_err(sql("deleting a webhook endpoint"))
        })
        .await
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn check_and_insert(
        &self,
        scope: &str,
        id: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool> {
        check_replay_key(scope, id)?;
        let (scope, id) = (scope.to_owned(), id.to_owned());
        let (expires_at, now) = (millis(expires_at), millis(now));
        self.write(move |conn| {
            // One statement: inserted, or an expired entry replaced; an
            // unexpired one is left alone (0 rows changed).
            conn.prepare_cached(
                "INSERT INTO consentry_webhook_replay (scope, id, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE consentry_webhook_replay.expires_at <= ?4",
            )
            .and_then(|mut s| s.execute(params![scope, id, expires_at, now]))
            .map(|n| n == 1)
            .map_err(sql("recording a delivery id"))
        })
        .await
    }

    async fn purge_replay_entries(&self, now: SystemTime) -> Result<u64> {
        let now = millis(now);
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_webhook_replay WHERE expires_at <= ?1",
                [now],
            )
            .map(|n| n as u64)
            .map_err(sql("purging delivery ids"))
        })
        .await
    }
}
