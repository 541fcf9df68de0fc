//! [`RecordStore`] for [`SqliteStore`] (migration `0004_records.sql`):
//! records with provenance and purposes, record reads with the access log,
//! and the deletions consent revocation and disconnect make.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{corrupt, millis, query_all, sql, tenant, time, user_from_row};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::records::HeldRecord;
use crate::store::records::{
    AccessLogEntry, PageApplied, PageWrite, RecordCount, RecordKey, RecordRead, RecordStore,
    SyncState,
};
use crate::store::{join_purposes, normalize_purposes, split_purposes};

pub(super) const STATE_COLUMNS: &str = "tenant, user_id, connection, stream, connector, cursor, generation, \
    full_sync, purposes, status, last_run_at, last_success_at, last_error, consecutive_failures, \
    next_run_at";

type RawState = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    bool,
    String,
    String,
    (Option<i64>, Option<i64>, Option<String>, i64, Option<i64>),
);

pub(super) fn raw_state(r: &Row<'_>) -> rusqlite::Result<RawState> {
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
        r.get(9)?,
        (r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?),
    ))
}

pub(super) fn state(
    (t, u, c, stream, connector, cursor, generation, full, purposes, status, rest): RawState,
) -> Result<SyncState> {
    let (last_run, last_ok, last_error, failures, next) = rest;
    let mut s = SyncState::new(
        user_from_row(t, u)?,
        ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
        ConnectorId::new(connector).map_err(|e| corrupt("connector id", e))?,
        stream,
    );
    s.cursor = cursor;
    s.generation = u64::try_from(generation).unwrap_or(0);
    s.full_sync = full;
    s.purposes = split_purposes(&purposes).map_err(|e| corrupt("purpose", e))?;
    s.status = status.parse().map_err(|e| corrupt("sync status", e))?;
    s.last_run_at = last_run.map(time);
    s.last_success_at = last_ok.map(time);
    s.last_error = last_error;
    s.consecutive_failures = u32::try_from(failures).unwrap_or(u32::MAX);
    s.next_run_at = next.map(time);
    Ok(s)
}

pub(super) fn put_state_in(tx: &Transaction<'_>, s: &SyncState) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO consentry_sync_state ({STATE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            tenant(&s.user),
            s.user.user(),
            s.connection.as_str(),
            s.stream,
            s.connector.as_str(),
            s.cursor,
            i64::try_from(s.generation).unwrap_or(i64::MAX),
            s.full_sync,
            join_purposes(&normalize_purposes(s.purposes.clone())),
            s.status.as_str(),
            s.last_run_at.map(millis),
            s.last_success_at.map(millis),
            s.last_error,
            i64::from(s.consecutive_failures),
            s.next_run_at.map(millis),
        ])
    })
    .map(drop)
    .map_err(sql("saving a sync state"))
}

pub(super) fn connection_exists(tx: &Transaction<'_>, t: &str, u: &str, c: &str) -> Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM consentry_connections WHERE tenant = ?1 AND user_id = ?2 AND id = ?3",
    )
    .and_then(|mut s| s.exists(params![t, u, c]))
    .map_err(sql("checking a connection"))
}

fn consented(tx: &Transaction<'_>, t: &str, u: &str, c: &str) -> Result<Vec<String>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT purpose FROM consentry_consent
             WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND granted = 1",
        )
        .map_err(sql("reading consent"))?;
    let rows = stmt
        .query_map(params![t, u, c], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect);
    rows.map_err(sql("reading consent"))
}

type RawRecord = (String, String, String, String, String, i64, String);

fn raw_record(r: &Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn held((c, stream, id, kind, data, at, purposes): RawRecord) -> Result<HeldRecord> {
    HeldRecord::new(
        ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
        stream,
        id,
        kind,
        data,
        time(at),
        split_purposes(&purposes).map_err(|e| corrupt("purpose", e))?,
    )
    .map_err(|e| corrupt("record", e))
}

/// Deletes a connection's records, sync states, access log, settings and
/// connection-scoped mappings; returns (records, sync states, log entries).
pub(super) fn delete_harvest_in(
    tx: &Transaction<'_>,
    t: &str,
    u: &str,
    c: &str,
) -> Result<(u64, u64, u64)> {
    let err = sql("deleting a connection's records");
    let by = params![t, u, c];
    let n = |table: &str| -> Result<u64> {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3"),
            by,
        )
        .map(|n| n as u64)
        .map_err(&err)
    };
    let records = n("consentry_records")?;
    let states = n("consentry_sync_state")?;
    let log = n("consentry_access_log")?;
    n("consentry_connection_settings")?;
    n("consentry_field_mappings")?;
    Ok((records, states, log))
}

/// Removes `purpose` from a connection's records and sync states and
/// deletes records left with none (consent revoked).
pub(super) fn drop_purpose_in(
    tx: &Transaction<'_>,
    t: &str,
    u: &str,
    c: &str,
    purpose: &str,
) -> Result<()> {
    let err = sql("removing a revoked purpose from records");
    let p = format!(" {purpose} ");
    for statement in [
        "UPDATE consentry_records SET purposes = replace(purposes, ?4, ' ')
         WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND instr(purposes, ?4) > 0",
        "DELETE FROM consentry_records
         WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND purposes = ' '",
        "UPDATE consentry_sync_state SET purposes = replace(purposes, ?4, ' ')
         WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND instr(purposes, ?4) > 0",
    ] {
        let params = params![t, u, c, p];
        if statement.contains("?4") {
            tx.execute(statement, params).map_err(&err)?;
        } else {
            tx.execute(statement, params![t, u, c]).map_err(&err)?;
        }
    }
    Ok(())
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn apply_page(&self, page: PageWrite) -> Result<PageApplied> {
        self.write(move |conn| {
            let err = sql("storing a page of records");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let st = &page.state;
            let (t, u, c) = (tenant(&st.user), st.user.user(), st.connection.as_str());
            if !connection_exists(&tx, &t, u, c)? {
                return Err(Error::NotFound { what: "connection" });
            }
            let granted = consented(&tx, &t, u, c)?;
            let purposes: Vec<Purpose> = normalize_purposes(page.purposes.clone())
                .into_iter()
                .filter(|p| granted.iter().any(|g| g == p.as_str()))
                .collect();
            let Some(first) = page.purposes.first() else {
                return Err(Error::Internal("a page without purposes"));
            };
            if purposes.is_empty() {
                return Err(Error::ConsentRequired {
                    purpose: first.clone(),
                });
            }
            let mut applied = PageApplied {
                purposes: purposes.clone(),
                ..PageApplied::default()
            };
            let joined = join_purposes(&purposes);
            let generation = i64::try_from(st.generation).unwrap_or(i64::MAX);
            let at = millis(page.fetched_at);
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO consentry_records
                           (tenant, user_id, connection, stream, record_id, kind, data, fetched_at, purposes, generation)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (tenant, user_id, connection, stream, record_id) DO UPDATE SET
                           kind = excluded.kind, data = excluded.data, fetched_at = excluded.fetched_at,
                           purposes = excluded.purposes, generation = excluded.generation",
                    )
                    .map_err(&err)?;
                for r in &page.records {
                    upsert
                        .execute(params![t, u, c, st.stream, r.id(), r.kind(), r.data(), at, joined, generation])
                        .map_err(&err)?;
                    applied.upserted += 1;
                }
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM consentry_records WHERE tenant = ?1 AND user_id = ?2
                         AND connection = ?3 AND stream = ?4 AND record_id = ?5",
                    )
                    .map_err(&err)?;
                for id in &page.deleted {
                    applied.deleted += delete.execute(params![t, u, c, st.stream, id]).map_err(&err)? as u64;
                }
            }
            if page.sweep {
                applied.swept = tx
                    .execute(
                        "DELETE FROM consentry_records WHERE tenant = ?1 AND user_id = ?2
                         AND connection = ?3 AND stream = ?4 AND generation < ?5",
                        params![t, u, c, st.stream, generation],
                    )
                    .map_err(&err)? as u64;
            }
            put_state_in(&tx, st)?;
            tx.commit().map_err(&err)?;
            Ok(applied)
        })
        .await
    }

    async fn read_records(&self, read: RecordRead) -> Result<Option<Vec<HeldRecord>>> {
        self.write(move |conn| {
            let err = sql("reading records");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let (t, u, c) = (
                tenant(&read.user),
                read.user.user(),
                read.connection.as_str(),
            );
            let granted: Option<bool> = tx
                .prepare_cached(
                    "SELECT granted FROM consentry_consent
                     WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND purpose = ?4",
                )
                .and_then(|mut s| {
                    s.query_row(params![t, u, c, read.purpose.as_str()], |r| r.get(0))
                        .optional()
                })
                .map_err(&err)?;
            if granted != Some(true) || !connection_exists(&tx, &t, u, c)? {
                return Ok(None);
            }
            let limit = i64::try_from(read.limit).unwrap_or(i64::MAX);
            // Sized for a page of a few hundred up front (growing copies
            // every record read so far), but not so large that an empty
            // read allocates a large block.
            let mut records = Vec::with_capacity(read.limit.min(256));
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT record_id, kind, data, fetched_at, purposes
                         FROM consentry_records
                         WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND stream = ?4
                           AND record_id > ?5 AND instr(purposes, ?6) > 0
                         ORDER BY record_id LIMIT ?7",
                    )
                    .map_err(&err)?;
                let mut rows = stmt
                    .query(params![
                        t,
                        u,
                        c,
                        read.stream,
                        read.after.as_deref().unwrap_or(""),
                        format!(" {} ", read.purpose),
                        limit
                    ])
                    .map_err(&err)?;
                // Rows of a stream mostly share their purposes: parse each
                // distinct set once.
                let mut last: Option<(String, Vec<Purpose>)> = None;
                while let Some(row) = rows.next().map_err(&err)? {
                    // Read in place: no allocation unless the set changes.
                    let purposes = row
                        .get_ref(4)
                        .and_then(|v| v.as_str().map_err(Into::into))
                        .map_err(&err)?;
                    let parsed = match &last {
                        Some((text, parsed)) if text == purposes => parsed.clone(),
                        _ => {
                            let parsed =
                                split_purposes(purposes).map_err(|e| corrupt("purpose", e))?;
                            last = Some((purposes.to_owned(), parsed.clone()));
                            parsed
                        }
                    };
                    let at: i64 = row.get(3).map_err(&err)?;
                    records.push(
                        HeldRecord::new(
                            read.connection.clone(),
                            read.stream.clone(),
                            row.get(0).map_err(&err)?,
                            row.get(1).map_err(&err)?,
                            row.get(2).map_err(&err)?,
                            time(at),
                            parsed,
                        )
                        .map_err(|e| corrupt("record", e))?,
                    );
                }
            }
            tx.prepare_cached(
                "INSERT INTO consentry_access_log
                   (tenant, user_id, connection, stream, purpose, component, at, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t,
                    u,
                    c,
                    read.stream,
                    read.purpose.as_str(),
                    read.component,
                    millis(read.at),
                    records.len() as i64
                ])
            })
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(Some(records))
        })
        .await
    }

    async fn record_counts(&self, user: &UserId) -> Result<Vec<RecordCount>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let rows: Vec<(String, String, String, i64)> = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT connection, stream, purposes, count(*) FROM consentry_records
                     WHERE tenant = ?1 AND user_id = ?2 GROUP BY connection, stream, purposes",
                    params![t, u],
                    "counting records",
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
            })
            .await?;
        let mut counts: std::collections::BTreeMap<(String, String, String), u64> =
            std::collections::BTreeMap::new();
        for (c, s, purposes, n) in rows {
            for p in purposes.split(' ').filter(|p| !p.is_empty()) {
                *counts
                    .entry((c.clone(), s.clone(), p.to_owned()))
                    .or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
        counts
            .into_iter()
            .map(|((c, s, p), n)| {
                Ok(RecordCount::new(
                    ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
                    s,
                    Purpose::new(p).map_err(|e| corrupt("purpose", e))?,
                    n,
                ))
            })
            .collect()
    }

    async fn access_log(&self, user: &UserId) -> Result<Vec<AccessLogEntry>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        type Raw = (i64, String, String, String, String, i64, i64);
        let rows: Vec<Raw> = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT seq, connection, stream, purpose, component, at, count FROM consentry_access_log
                     WHERE tenant = ?1 AND user_id = ?2 ORDER BY seq",
                    params![t, u],
                    "reading the access log",
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                )
            })
            .await?;
        rows.into_iter()
            .map(|(seq, c, stream, p, component, at, count)| {
                Ok(AccessLogEntry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    user: user.clone(),
                    connection: ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
                    stream,
                    purpose: Purpose::new(p).map_err(|e| corrupt("purpose", e))?,
                    component,
                    at: time(at),
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn user_records(
        &self,
        user: &UserId,
        after: Option<RecordKey>,
        limit: usize,
    ) -> Result<Vec<HeldRecord>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let (ac, as_, ai) = after
            .map(|(c, s, i)| (c.as_str().to_owned(), s, i))
            .unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT connection, stream, record_id, kind, data, fetched_at, purposes
                     FROM consentry_records
                     WHERE tenant = ?1 AND user_id = ?2 AND (connection, stream, record_id) > (?3, ?4, ?5)
                     ORDER BY connection, stream, record_id LIMIT ?6",
                    params![t, u, ac, as_, ai, limit],
                    "reading a user's records",
                    raw_record,
                )
            })
            .await?;
        rows.into_iter().map(held).collect()
    }
}
