//! [`ConnectionStore`] and [`RevocationStore`] for [`SqliteStore`]
//! (migration 2).

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{
    corrupt, is_unique_violation, join_scopes, millis, query_all, split_scopes, sql, tenant, time,
    user_from_row, version_from,
};
use super::vault::put_credentials_in;
use crate::connection::{AccountInfo, Connection, Health};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::store::connections::{
    AccessView, ConnectionDeleted, ConnectionStore, ConnectionWrite, ConnectionWritten,
    PendingRevocation, QueuedRevocation, RevocationStore, check_credentials_belong,
};
use crate::store::vault::StoredCredential;
use crate::vault::CredentialKind;

const COLUMNS: &str = "tenant, user_id, id, connector, account_id, account_email, account_name, \
     scopes, status, access_expires_at, has_refresh_token, last_refresh_ok, last_refresh_failed, \
     last_error, consecutive_failures, retry_after, created_at, updated_at, revision";

/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 19;

/// The query of `access_view`: [`COLUMNS`] of the connection, then the
/// consent's `granted` and the credential's `envelope` and `version`
/// (NULL when there is none).
fn access_view_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect();
        format!(
            "SELECT {}, s.granted, k.envelope, k.version
             FROM consentry_connections c
             LEFT JOIN consentry_consent s
               ON s.tenant = c.tenant AND s.user_id = c.user_id AND s.connection = c.id
              AND s.purpose = ?4
             LEFT JOIN consentry_credentials k
               ON k.tenant = c.tenant AND k.user_id = c.user_id AND k.connection = c.id
              AND k.kind = ?5
             WHERE c.tenant = ?1 AND c.user_id = ?2 AND c.id = ?3",
            columns.join(", ")
        )
    })
}

/// A connection row as read, before validation.
struct RawConnection {
    tenant: String,
    user: String,
    id: String,
    connector: String,
    account_id: String,
    account_email: Option<String>,
    account_name: Option<String>,
    scopes: String,
    status: String,
    access_expires_at: Option<i64>,
    has_refresh_token: bool,
    last_refresh_ok: Option<i64>,
    last_refresh_failed: Option<i64>,
    last_error: Option<String>,
    consecutive_failures: i64,
    retry_after: Option<i64>,
    created_at: i64,
    updated_at: i64,
    revision: i64,
}

impl RawConnection {
    /// Reads the 19 columns of [`COLUMNS`] starting at column 0.
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant: r.get(0)?,
            user: r.get(1)?,
            id: r.get(2)?,
            connector: r.get(3)?,
            account_id: r.get(4)?,
            account_email: r.get(5)?,
            account_name: r.get(6)?,
            scopes: r.get(7)?,
            status: r.get(8)?,
            access_expires_at: r.get(9)?,
            has_refresh_token: r.get(10)?,
            last_refresh_ok: r.get(11)?,
            last_refresh_failed: r.get(12)?,
            last_error: r.get(13)?,
            consecutive_failures: r.get(14)?,
            retry_after: r.get(15)?,
            created_at: r.get(16)?,
            updated_at: r.get(17)?,
            revision: r.get(18)?,
        })
    }

    fn into_connection(self) -> Result<Connection> {
        Ok(Connection {
            id: ConnectionId::new(self.id).map_err(|e| corrupt("connection id", e))?,
            user: user_from_row(self.tenant, self.user)?,
            connector: ConnectorId::new(self.connector).map_err(|e| corrupt("connector id", e))?,
            account: AccountInfo {
                id: self.account_id,
                email: self.account_email,
                name: self.account_name,
            },
            scopes: split_scopes(&self.scopes)?,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt("connection status", e))?,
            health: Health {
                last_refresh_ok: self.last_refresh_ok.map(time),
                last_refresh_failed: self.last_refresh_failed.map(time),
                last_error: self.last_error,
                consecutive_failures: u32::try_from(self.consecutive_failures).unwrap_or(u32::MAX),
                retry_after: self.retry_after.map(time),
            },
            access_expires_at: self.access_expires_at.map(time),
            has_refresh_token: self.has_refresh_token,
            created_at: time(self.created_at),
            updated_at: time(self.updated_at),
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

fn write_in(tx: &rusqlite::Transaction<'_>, write: &ConnectionWrite) -> Result<ConnectionWritten> {
    let err = sql("writing a connection");
    let c = &write.connection;
    let (t, u, id) = (tenant(&c.user), c.user.user(), c.id.as_str());
    let found: Option<i64> = tx
        .query_row(
            "SELECT revision FROM consentry_connections WHERE tenant = ?1 AND user_id = ?2 AND id = ?3",
            params![t, u, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    let found = found.map(|r| u64::try_from(r).unwrap_or(0));
    let revision = match (write.expected_revision, found) {
        (None, None) => 1,
        (Some(expected), Some(found)) if expected == found => found + 1,
        (expected, found) => {
            return Err(Error::Conflict {
                what: "connection",
                expected: expected.unwrap_or(0),
                found: found.unwrap_or(0),
            });
        }
    };
    let h = &c.health;
    let values = params![
        t,
        u,
        id,
        c.connector.as_str(),
        c.account.id,
        c.account.email,
        c.account.name,
        join_scopes(&c.scopes),
        c.status.as_str(),
        c.access_expires_at.map(millis),
        c.has_refresh_token,
        h.last_refresh_ok.map(millis),
        h.last_refresh_failed.map(millis),
        h.last_error,
        i64::from(h.consecutive_failures),
        h.retry_after.map(millis),
        millis(c.created_at),
        millis(c.updated_at),
        i64::try_from(revision).unwrap_or(i64::MAX),
    ];
    // INSERT OR REPLACE would delete and re-insert; a plain upsert keeps
    // the row and lets the unique index on the account catch duplicates.
    let statement = format!(
        "INSERT INTO consentry_connections ({COLUMNS}) VALUES
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (tenant, user_id, id) DO UPDATE SET
           connector = excluded.connector, account_id = excluded.account_id,
           account_email = excluded.account_email, account_name = excluded.account_name,
           scopes = excluded.scopes, status = excluded.status,
           access_expires_at = excluded.access_expires_at, has_refresh_token = excluded.has_refresh_token,
           last_refresh_ok = excluded.last_refresh_ok, last_refresh_failed = excluded.last_refresh_failed,
           last_error = excluded.last_error, consecutive_failures = excluded.consecutive_failures,
           retry_after = excluded.retry_after, created_at = excluded.created_at,
           updated_at = excluded.updated_at, revision = excluded.revision"
    );
    tx.prepare_cached(&statement)
        .and_then(|mut s| s.execute(values))
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict {
                    what: "connection account",
                    expected: 0,
                    found: 1,
                }
            } else {
                Error::storage("writing a connection", e)
            }
        })?;
    let versions = put_credentials_in(tx, &write.credentials)?;
    Ok(ConnectionWritten::new(revision, versions))
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn write_connection(&self, write: ConnectionWrite) -> Result<ConnectionWritten> {
        check_credentials_belong(&write)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("writing a connection"))?;
            let written = write_in(&tx, &write)?;
            tx.commit().map_err(sql("writing a connection"))?;
            Ok(written)
        })
        .await
    }

    async fn get_connection(&self, user: &UserId, id: &ConnectionId) -> Result<Option<Connection>> {
        let (t, u, id) = (tenant(user), user.user().to_owned(), id.as_str().to_owned());
        let raw = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM consentry_connections WHERE tenant = ?1 AND user_id = ?2 AND id = ?3"
                ))
                .and_then(|mut s| s.query_row(params![t, u, id], RawConnection::from_row).optional())
                .map_err(sql("reading a connection"))
            })
            .await?;
        raw.map(RawConnection::into_connection).transpose()
    }

    async fn find_connection(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account_id: &str,
    ) -> Result<Option<Connection>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let (c, a) = (connector.as_str().to_owned(), account_id.to_owned());
        let raw = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM consentry_connections
                     WHERE tenant = ?1 AND user_id = ?2 AND connector = ?3 AND account_id = ?4"
                ))
                .and_then(|mut s| {
                    s.query_row(params![t, u, c, a], RawConnection::from_row)
                        .optional()
                })
                .map_err(sql("finding a connection"))
            })
            .await?;
        raw.map(RawConnection::into_connection).transpose()
    }

    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {COLUMNS} FROM consentry_connections WHERE tenant = ?1 AND user_id = ?2
                         ORDER BY created_at, id"
                    ),
                    params![t, u],
                    "listing connections",
                    RawConnection::from_row,
                )
            })
            .await?;
        rows.into_iter()
            .map(RawConnection::into_connection)
            .collect()
    }

    async fn connections_expiring(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<Connection>> {
        let (before, limit) = (millis(before), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {COLUMNS} FROM consentry_connections
                         WHERE has_refresh_token = 1 AND status IN ('active', 'degraded')
                           AND access_expires_at < ?1
                         ORDER BY access_expires_at LIMIT ?2"
                    ),
                    params![before, limit],
                    "listing expiring connections",
                    RawConnection::from_row,
                )
            })
            .await?;
        rows.into_iter()
            .map(RawConnection::into_connection)
            .collect()
    }

    async fn access_view(
        &self,
        user: &UserId,
        id: &ConnectionId,
        purpose: &Purpose,
        kind: CredentialKind,
    ) -> Result<Option<AccessView>> {
        let (t, u, id) = (tenant(user), user.user().to_owned(), id.as_str().to_owned());
        let (p, k) = (purpose.as_str().to_owned(), kind.as_str());
        type Row3 = (RawConnection, bool, Option<Vec<u8>>, Option<i64>);
        let row: Option<Row3> = self
            .read(move |conn| {
                // One statement (one snapshot, no BEGIN / COMMIT to parse):
                // the connection, its consent for the purpose, and the
                // credential. The join's key parameters would make SQLite
                // prepare it again on every rebind, but every connection
                // sets the query planner stability guarantee (see
                // `open_connection`), so the cached statement is reused.
                conn.prepare_cached(access_view_sql())
                    .and_then(|mut s| {
                        s.query_row(params![t, u, id, p, k], |r| {
                            let n = COLUMN_COUNT;
                            Ok((
                                RawConnection::from_row(r)?,
                                r.get::<_, Option<bool>>(n)?.unwrap_or(false),
                                r.get(n + 1)?,
                                r.get(n + 2)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(sql("reading a connection for a token"))
            })
            .await?;
        let Some((raw, consented, envelope, version)) = row else {
            return Ok(None);
        };
        let credential = envelope
            .zip(version)
            .map(|(e, v)| StoredCredential::new(e, version_from(v)));
        Ok(Some(AccessView::new(
            raw.into_connection()?,
            consented,
            credential,
        )))
    }

    async fn delete_connection(
        &self,
        user: &UserId,
        id: &ConnectionId,
        queue: Vec<QueuedRevocation>,
    ) -> Result<ConnectionDeleted> {
        let (t, u, id) = (tenant(user), user.user().to_owned(), id.as_str().to_owned());
        self.write(move |conn| {
            let err = sql("deleting a connection");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let mut deleted = ConnectionDeleted::default();
            for q in &queue {
                let queued: Option<i64> = tx
                    .query_row(
                        "INSERT INTO consentry_revocations
                           (tenant, user_id, connection, connector, kind, envelope, attempts, next_attempt_at)
                         SELECT tenant, user_id, connection, ?5, kind, envelope, 0, ?6
                         FROM consentry_credentials
                         WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND kind = ?4
                         RETURNING id",
                        params![t, u, id, q.kind.as_str(), q.connector.as_str(), millis(q.next_attempt_at)],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(&err)?;
                deleted.queued.extend(queued.map(|i| u64::try_from(i).unwrap_or(0)));
            }
            let by_connection = params![t, u, id];
            deleted.credentials = tx
                .execute(
                    "DELETE FROM consentry_credentials WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3",
                    by_connection,
                )
                .map_err(&err)? as u64;
            deleted.consent_entries = tx
                .execute(
                    "DELETE FROM consentry_consent_ledger WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3",
                    by_connection,
                )
                .map_err(&err)? as u64;
            tx.execute(
                "DELETE FROM consentry_consent WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3",
                by_connection,
            )
            .map_err(&err)?;
            let (records, sync_states, log) = super::records::delete_harvest_in(&tx, &t, &u, &id)?;
            deleted.records = records;
            deleted.sync_states = sync_states;
            deleted.access_log_entries = log;
            deleted.connection = tx
                .execute(
                    "DELETE FROM consentry_connections WHERE tenant = ?1 AND user_id = ?2 AND id = ?3",
                    by_connection,
                )
                .map_err(&err)?
                > 0;
            tx.commit().map_err(&err)?;
            Ok(deleted)
        })
        .await
    }
}

type RawRevocation = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Vec<u8>,
    i64,
    i64,
);

const REVOCATION_COLUMNS: &str =
    "id, tenant, user_id, connection, connector, kind, envelope, attempts, next_attempt_at";

fn raw_revocation(r: &Row<'_>) -> rusqlite::Result<RawRevocation> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn revocation(
    (id, t, u, c, connector, kind, envelope, attempts, next): RawRevocation,
) -> Result<PendingRevocation> {
    Ok(PendingRevocation::new(
        u64::try_from(id).unwrap_or(0),
        user_from_row(t, u)?,
        ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
        ConnectorId::new(connector).map_err(|e| corrupt("connector id", e))?,
        kind.parse().map_err(|e| corrupt("credential kind", e))?,
        envelope,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        time(next),
    ))
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn due_revocations(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>> {
        let (now, limit) = (millis(now), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {REVOCATION_COLUMNS} FROM consentry_revocations
                         WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
                    ),
                    params![now, limit],
                    "listing due revocations",
                    raw_revocation,
                )
            })
            .await?;
        rows.into_iter().map(revocation).collect()
    }

    async fn user_revocations(&self, user: &UserId) -> Result<Vec<PendingRevocation>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {REVOCATION_COLUMNS} FROM consentry_revocations
                         WHERE tenant = ?1 AND user_id = ?2 ORDER BY id"
                    ),
                    params![t, u],
                    "listing a user's revocations",
                    raw_revocation,
                )
            })
            .await?;
        rows.into_iter().map(revocation).collect()
    }

    async fn reschedule_revocation(
        &self,
        id: u64,
        attempts: u32,
        next_attempt_at: SystemTime,
    ) -> Result<()> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write(move |conn| {
            conn.execute(
                "UPDATE consentry_revocations SET attempts = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, i64::from(attempts), millis(next_attempt_at)],
            )
            .map(|_| ())
            .map_err(sql("rescheduling a revocation"))
        })
        .await
    }

    async fn remove_revocation(&self, id: u64) -> Result<bool> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write(move |conn| {
            conn.execute("DELETE FROM consentry_revocations WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(sql("removing a revocation"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `access_view`'s join reads every column it decodes, and its cached
    /// statement is reused across calls with new keys, never prepared
    /// again (the query planner stability guarantee).
    #[test]
    fn the_access_view_join_is_prepared_once() {
        assert_eq!(COLUMNS.split(", ").count(), COLUMN_COUNT);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = super::super::open_connection(
            &dir.path().join("t.db"),
            &super::super::SqliteOptions::default(),
            super::super::Role::Writer,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..50 {
            let mut stmt = conn
                .prepare_cached(access_view_sql())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(stmt.column_count(), COLUMN_COUNT + 3);
            let found = stmt
                .query_row(
                    params!["", format!("u{n}"), "c", "p", "access_token"],
                    |_| Ok(()),
                )
                .optional()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(found.is_none());
        }
        let stmt = conn
            .prepare_cached(access_view_sql())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
