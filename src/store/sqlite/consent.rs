//! [`ConsentStore`] for [`SqliteStore`] (migration 2).

use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

use super::SqliteStore;
use super::util::{corrupt, millis, query_all, sql, tenant, time, user_from_row};
use crate::error::Result;
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::store::consent::{ConsentEntry, ConsentStore, check_entry};

type RawEntry = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    String,
    String,
    i64,
);

fn entry((seq, t, u, c, p, granted, actor, policy, at): RawEntry) -> Result<ConsentEntry> {
    let mut e = ConsentEntry::new(
        user_from_row(t, u)?,
        ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?,
        Purpose::new(p).map_err(|e| corrupt("purpose", e))?,
        granted,
        actor,
        policy,
        time(at),
    );
    e.seq = u64::try_from(seq).unwrap_or(0);
    Ok(e)
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn append_consent(&self, entry: ConsentEntry) -> Result<u64> {
        check_entry(&entry)?;
        self.write(move |conn| {
            let err = sql("appending consent");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let (t, u, c, p) = (
                tenant(&entry.user),
                entry.user.user(),
                entry.connection.as_str(),
                entry.purpose.as_str(),
            );
            let seq: i64 = tx
                .query_row(
                    "INSERT INTO consentry_consent_ledger
                       (tenant, user_id, connection, purpose, granted, actor, policy_version, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING seq",
                    params![
                        t,
                        u,
                        c,
                        p,
                        entry.granted,
                        entry.actor,
                        entry.policy_version,
                        millis(entry.at)
                    ],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            tx.execute(
                "INSERT INTO consentry_consent (tenant, user_id, connection, purpose, granted, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, user_id, connection, purpose)
                 DO UPDATE SET granted = excluded.granted, seq = excluded.seq",
                params![t, u, c, p, entry.granted, seq],
            )
            .map_err(&err)?;
            if !entry.granted {
                super::records::drop_purpose_in(&tx, &t, u, c, p)?;
            }
            tx.commit().map_err(&err)?;
            Ok(u64::try_from(seq).unwrap_or(0))
        })
        .await
    }

    async fn consent_history(
        &self,
        user: &UserId,
        connection: Option<&ConnectionId>,
    ) -> Result<Vec<ConsentEntry>> {
        let (t, u) = (tenant(user), user.user().to_owned());
        let c = connection.map(|c| c.as_str().to_owned());
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT seq, tenant, user_id, connection, purpose, granted, actor, policy_version, at
                     FROM consentry_consent_ledger
                     WHERE tenant = ?1 AND user_id = ?2 AND (?3 IS NULL OR connection = ?3)
                     ORDER BY seq",
                    params![t, u, c],
                    "reading consent history",
                    |r| {
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
                    },
                )
            })
            .await?;
        rows.into_iter().map(entry).collect()
    }

    async fn consented_purposes(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Vec<Purpose>> {
        let (t, u, c) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
        );
        let rows: Vec<String> = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT purpose FROM consentry_consent
                     WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND granted = 1
                     ORDER BY purpose",
                    params![t, u, c],
                    "reading consent",
                    |r| r.get(0),
                )
            })
            .await?;
        rows.into_iter()
            .map(|p| Purpose::new(p).map_err(|e| corrupt("purpose", e)))
            .collect()
    }
}
