//! [`RateLimitStore`] for [`SqliteStore`] (migration 6).
//!
//! The compare-and-swap is one conditional statement (an `INSERT … ON
//! CONFLICT DO NOTHING` when no row is expected, an `UPDATE … WHERE tat =`
//! otherwise) in a `BEGIN IMMEDIATE` transaction that also reads the
//! current TAT when the swap lost, so the caller retries from it without
//! another round trip. Every process opening the file takes SQLite's write
//! lock for it, so swaps from different processes are serialized.

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::util::sql;
use crate::error::Result;
use crate::ratelimit::check_key;
use crate::store::ratelimit::{RateLimitStore, TatSwap, tat_from_nanos, tat_nanos};

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

    async fn swap_rate_limit_tat(
        &self,
        key: &str,
        expected: Option<SystemTime>,
        new: SystemTime,
    ) -> Result<TatSwap> {
        check_key(key)?;
        let new = tat_nanos(new)?;
        // An expectation outside the storable range can match no row.
        let expected = match expected {
            None => None,
            Some(t) => Some(tat_nanos(t).unwrap_or(-1)),
        };
        let key = key.to_owned();
        self.write(move |conn| {
            let err = sql("swapping a rate limit");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let changed = match expected {
                None => tx
                    .prepare_cached(
                        "INSERT INTO consentry_rate_limits (key, tat) VALUES (?1, ?2)
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![key, new])),
                Some(old) => tx
                    .prepare_cached(
                        "UPDATE consentry_rate_limits SET tat = ?2 WHERE key = ?1 AND tat = ?3",
                    )
                    .and_then(|mut s| s.execute(params![key, new, old])),
            }
            .map_err(&err)?;
            let outcome = if changed == 1 {
                TatSwap::Swapped
            } else {
                let current = tx
                    .prepare_cached(READ)
                    .and_then(|mut s| s.query_row([&key], |r| r.get::<_, i64>(0)).optional())
                    .map_err(&err)?;
                TatSwap::Changed {
                    current: current.map(tat_from_nanos),
                }
            };
            tx.commit().map_err(&err)?;
            Ok(outcome)
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
