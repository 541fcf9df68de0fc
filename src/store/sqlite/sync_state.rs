//! [`SyncStore`], [`SettingsStore`] and [`ErasureStore`] for
//! [`SqliteStore`] (migration `0004_records.sql`): sync states (cursors and
//! schedule), connection settings, field mappings and user erasure.

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::records::{STATE_COLUMNS, connection_exists, put_state_in, raw_state, state};
use super::util::{millis, query_all, sql, tenant, time};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::store::records::{
    ErasureStore, MappingScope, SettingsStore, SyncState, SyncStore, Tombstone, UserErased,
};

#[async_trait]
impl SyncStore for SqliteStore {
    async fn get_sync_state(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<SyncState>> {
        let (t, u, c, s) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
            stream.to_owned(),
        );
        let raw = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {STATE_COLUMNS} FROM consentry_sync_state
                     WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND stream = ?4"
                ))
                .and_then(|mut st| st.query_row(params![t, u, c, s], raw_state).optional())
                .map_err(sql("reading a sync state"))
            })
            .await?;
        raw.map(state).transpose()
    }

    async fn put_sync_state(&self, s: SyncState) -> Result<()> {
        self.write(move |conn| {
            let err = sql("saving a sync state");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            if !connection_exists(&tx, &tenant(&s.user), s.user.user(), s.connection.as_str())? {
                return Err(Error::NotFound { what: "connection" });
            }
            put_state_in(&tx, &s)?;
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn list_sync_states(&self, user: &UserId) -> Result<Vec<SyncState>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {STATE_COLUMNS} FROM consentry_sync_state
                         WHERE tenant = ?1 AND user_id = ?2 ORDER BY connection, stream"
                    ),
                    params![t, u],
                    "listing sync states",
                    raw_state,
                )
            })
            .await?;
        rows.into_iter().map(state).collect()
    }

    async fn due_syncs(&self, now: SystemTime, limit: usize) -> Result<Vec<SyncState>> {
        let (now, limit) = (millis(now), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    &format!(
                        "SELECT {STATE_COLUMNS} FROM consentry_sync_state
                         WHERE next_run_at IS NOT NULL AND next_run_at <= ?1
                         ORDER BY next_run_at LIMIT ?2"
                    ),
                    params![now, limit],
                    "listing due syncs",
                    raw_state,
                )
            })
            .await?;
        rows.into_iter().map(state).collect()
    }
}

fn mapping_key(scope: &MappingScope) -> (String, String, String) {
    match scope {
        MappingScope::Connection(u, c) => (tenant(u), u.user().to_owned(), c.as_str().to_owned()),
        MappingScope::Tenant(t) => (t.clone().unwrap_or_default(), String::new(), String::new()),
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn put_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        settings: String,
    ) -> Result<()> {
        let (t, u, c) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
        );
        self.write(move |conn| {
            let err = sql("saving settings");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            if !connection_exists(&tx, &t, &u, &c)? {
                return Err(Error::NotFound { what: "connection" });
            }
            tx.execute(
                "INSERT OR REPLACE INTO consentry_connection_settings (tenant, user_id, connection, settings)
                 VALUES (?1, ?2, ?3, ?4)",
                params![t, u, c, settings],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn get_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Option<String>> {
        let (t, u, c) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
        );
        self.read(move |conn| {
            conn.query_row(
                "SELECT settings FROM consentry_connection_settings
                 WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3",
                params![t, u, c],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading settings"))
        })
        .await
    }

    async fn put_field_mapping(
        &self,
        scope: &MappingScope,
        stream: &str,
        mapping: Option<String>,
    ) -> Result<()> {
        let (t, u, c) = mapping_key(scope);
        let s = stream.to_owned();
        self.write(move |conn| {
            match mapping {
                Some(m) => conn.execute(
                    "INSERT OR REPLACE INTO consentry_field_mappings (tenant, user_id, connection, stream, mapping)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t, u, c, s, m],
                ),
                None => conn.execute(
                    "DELETE FROM consentry_field_mappings
                     WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND stream = ?4",
                    params![t, u, c, s],
                ),
            }
            .map(drop)
            .map_err(sql("saving a field mapping"))
        })
        .await
    }

    async fn get_field_mapping(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<String>> {
        let (t, u, c, s) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
            stream.to_owned(),
        );
        self.read(move |conn| {
            conn.query_row(
                "SELECT mapping FROM consentry_field_mappings
                 WHERE tenant = ?1 AND stream = ?4
                   AND ((user_id = ?2 AND connection = ?3) OR (user_id = '' AND connection = ''))
                 ORDER BY user_id DESC LIMIT 1",
                params![t, u, c, s],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading a field mapping"))
        })
        .await
    }
}

#[async_trait]
impl ErasureStore for SqliteStore {
    async fn erase_user_data(&self, user: &UserId, tombstone: Tombstone) -> Result<UserErased> {
        let (t, u) = (tenant(user), user.user().to_owned());
        self.write(move |conn| {
            let err = sql("erasing a user");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let by = params![t, u];
            let n = |table: &str| -> Result<u64> {
                tx.execute(&format!("DELETE FROM {table} WHERE tenant = ?1 AND user_id = ?2"), by)
                    .map(|n| n as u64)
                    .map_err(&err)
            };
            let erased = UserErased {
                records: n("consentry_records")?,
                consent_entries: n("consentry_consent_ledger")?,
                access_log_entries: n("consentry_access_log")?,
                revocations: n("consentry_revocations")?,
                connections: n("consentry_connections")?,
            };
            for table in [
                "consentry_consent",
                "consentry_sync_state",
                "consentry_connection_settings",
                "consentry_credentials",
                "consentry_oauth_pending",
            ] {
                n(table)?;
            }
            tx.execute(
                "DELETE FROM consentry_field_mappings WHERE tenant = ?1 AND user_id = ?2 AND user_id != ''",
                by,
            )
            .map_err(&err)?;
            tx.execute(
                "INSERT OR REPLACE INTO consentry_erasures (subject, erased_at, connections, records)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    tombstone.subject,
                    millis(tombstone.erased_at),
                    i64::try_from(tombstone.connections).unwrap_or(i64::MAX),
                    i64::try_from(tombstone.records).unwrap_or(i64::MAX)
                ],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(erased)
        })
        .await
    }

    async fn tombstone(&self, subject: &str) -> Result<Option<Tombstone>> {
        let s = subject.to_owned();
        let row: Option<(String, i64, i64, i64)> = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT subject, erased_at, connections, records FROM consentry_erasures WHERE subject = ?1",
                    [s],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(sql("reading a tombstone"))
            })
            .await?;
        Ok(row.map(|(s, at, c, r)| {
            Tombstone::new(
                s,
                time(at),
                u64::try_from(c).unwrap_or(0),
                u64::try_from(r).unwrap_or(0),
            )
        }))
    }
}
