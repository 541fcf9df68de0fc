//! [`RateLimitStore`] for [`SqliteStore`] (migration 6).
//!
//! An update is one `BEGIN IMMEDIATE` transaction on the writer
//! connection: read the key's TAT, apply the update, upsert the result,
//! commit. `BEGIN IMMEDIATE` takes SQLite's write lock before the read, so
//! updates from every process opening the file are serialized and each
//! sees the one before it (a process waits for the lock up to the store's
//! `busy_timeout`).

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::util::sql;
use crate::error::Result;
use crate::ratelimit::check_key;
use crate::store::ratelimit::{RateLimitStore, TatUpdate, tat_from_nanos, tat_nanos};

const READ: &str = "SELECT tat FROM consentry_rate_limits WHERE key = ?1";

#[async_trait]
impl RateLimitStore for SqliteStore {
    async fn rate_limit_tat(&self, key: &str) -> Result<Option<SystemTime>> {
        check_key(key)?;
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(READ)
                .and_then(|mut s| s.query_row([key], |r| r.get::<_, i64>(0)).optional())
                .map(|tat| tat.map(tat_from_nanos))
                .map_err(sql("reading a rate limit"))
        })
        .await
    }

    async fn update_rate_limit_tat(
        &self,
        key: &str,
        update: TatUpdate,
    ) -> Result<Option<SystemTime>> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(move |conn| {
            let err = sql("updating a rate limit");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let current = tx
                .prepare_cached(READ)
                .and_then(|mut s| s.query_row([&key], |r| r.get::<_, i64>(0)).optional())
                .map_err(&err)?
                .map(tat_from_nanos);
            if let Some(new) = update.apply(current) {
                let new = tat_nanos(new)?; // an error rolls back (drop)
                tx.prepare_cached(
                    "INSERT INTO consentry_rate_limits (key, tat) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                )
                .and_then(|mut s| s.execute(params![key, new]))
                .map_err(&err)?;
            }
            tx.commit().map_err(&err)?;
            Ok(current)
        })
        .await
    }

    async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64> {
        // Before 1970 nothing is expired; after 2262 everything is.
        let now = tat_nanos(now).unwrap_or(if now < SystemTime::UNIX_EPOCH {
            -1
        } else {
            i64::MAX
        });
        self.write(move |conn| {
            conn.execute("DELETE FROM consentry_rate_limits WHERE tat <= ?1", [now])
                .map(|n| n as u64)
                .map_err(sql("purging rate limits"))
        })
        .await
    }
}
