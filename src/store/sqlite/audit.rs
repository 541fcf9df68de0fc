//! [`AuditStore`] for [`SqliteStore`] (migration 5).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{millis, query_all, sql, time};
use crate::error::{Error, Result};
use crate::store::audit::{
    AuditCheckpoint, AuditFilter, AuditHead, AuditStore, MAX_AUDIT_PAGE, StoredAuditEntry,
    check_append,
};

const COLUMNS: &str = "seq, at, action, actor, subject, resource, outcome, details, ip, \
                       user_agent, request_id, key_id, prev_hash, hash";

fn entry(r: &Row<'_>) -> rusqlite::Result<StoredAuditEntry> {
    Ok(StoredAuditEntry {
        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        at_ms: r.get(1)?,
        action: r.get(2)?,
        actor: r.get(3)?,
        subject: r.get(4)?,
        resource: r.get(5)?,
        outcome: r.get(6)?,
        details: r.get(7)?,
        ip: r.get(8)?,
        user_agent: r.get(9)?,
        request_id: r.get(10)?,
        key_id: r.get(11)?,
        prev_hash: r.get(12)?,
        hash: r.get(13)?,
    })
}

fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_head(&self) -> Result<Option<AuditHead>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT seq, hash, key_id, mac FROM consentry_audit_head")
                .and_then(|mut s| {
                    s.query_row([], |r| {
                        Ok(AuditHead {
                            seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            hash: r.get(1)?,
                            key_id: r.get(2)?,
                            mac: r.get(3)?,
                        })
                    })
                    .optional()
                })
                .map_err(sql("reading the audit head"))
        })
        .await
    }

    async fn append_audit_entries(
        &self,
        expected: u64,
        entries: Vec<StoredAuditEntry>,
        head: AuditHead,
    ) -> Result<bool> {
        check_append(expected, &entries, &head)?;
        self.write(move |conn| {
            let err = sql("appending audit entries");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let current: i64 = tx
                .query_row("SELECT seq FROM consentry_audit_head", [], |r| r.get(0))
                .optional()
                .map_err(&err)?
                .unwrap_or(0);
            if current != seq(expected) {
                return Ok(false);
            }
            {
                let mut insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO consentry_audit ({COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                    ))
                    .map_err(&err)?;
                for e in &entries {
                    insert
                        .execute(params![
                            seq(e.seq),
                            e.at_ms,
                            e.action,
                            e.actor,
                            e.subject,
                            e.resource,
                            e.outcome,
                            e.details,
                            e.ip,
                            e.user_agent,
                            e.request_id,
                            e.key_id,
                            e.prev_hash,
                            e.hash
                        ])
                        .map_err(&err)?;
                }
                tx.prepare_cached(
                    "INSERT INTO consentry_audit_head (id, seq, hash, key_id, mac)
                     VALUES (1, ?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                         key_id = excluded.key_id, mac = excluded.mac",
                )
                .and_then(|mut s| {
                    s.execute(params![seq(head.seq), head.hash, head.key_id, head.mac])
                })
                .map_err(&err)?;
            }
            tx.commit().map_err(&err)?;
            Ok(true)
        })
        .await
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditEntry>> {
        let f = filter.clone();
        let limit = f.limit.min(MAX_AUDIT_PAGE) as i64;
        self.read(move |conn| {
            query_all(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM consentry_audit
                     WHERE seq > ?1
                       AND (?2 IS NULL OR subject = ?2)
                       AND (?3 IS NULL OR action = ?3)
                       AND (?4 IS NULL OR resource = ?4)
                       AND (?5 IS NULL OR at >= ?5)
                       AND (?6 IS NULL OR at < ?6)
                     ORDER BY seq LIMIT ?7"
                ),
                params![
                    seq(f.after_seq),
                    f.subject,
                    f.action,
                    f.resource,
                    f.from.map(millis),
                    f.until.map(millis),
                    limit
                ],
                "reading audit entries",
                entry,
            )
        })
        .await
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT seq, hash, purged, at, key_id, mac FROM consentry_audit_checkpoint",
            )
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok(AuditCheckpoint {
                        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        hash: r.get(1)?,
                        purged: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        at: time(r.get(3)?),
                        key_id: r.get(4)?,
                        mac: r.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(sql("reading the audit checkpoint"))
        })
        .await
    }

    async fn purge_audit_entries(&self, checkpoint: AuditCheckpoint) -> Result<u64> {
        self.write(move |conn| {
            let err = sql("purging audit entries");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let floor: i64 = tx
                .query_row("SELECT seq FROM consentry_audit_checkpoint", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(&err)?
                .unwrap_or(0);
            let head: i64 = tx
                .query_row("SELECT seq FROM consentry_audit_head", [], |r| r.get(0))
                .optional()
                .map_err(&err)?
                .unwrap_or(0);
            let at = seq(checkpoint.seq);
            if at < floor || at > head {
                return Err(Error::invalid(
                    "audit checkpoint",
                    "must lie between the previous checkpoint and the head",
                ));
            }
            let deleted = tx
                .execute("DELETE FROM consentry_audit WHERE seq <= ?1", [at])
                .map_err(&err)?;
            tx.execute(
                "INSERT INTO consentry_audit_checkpoint (id, seq, hash, purged, at, key_id, mac)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     purged = excluded.purged, at = excluded.at, key_id = excluded.key_id,
                     mac = excluded.mac",
                params![
                    at,
                    checkpoint.hash,
                    seq(checkpoint.purged),
                    millis(checkpoint.at),
                    checkpoint.key_id,
                    checkpoint.mac
                ],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(deleted as u64)
        })
        .await
    }
}
