//! [`OAuthStateStore`] and [`LeaseStore`] for [`SqliteStore`] (migration 2).

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::util::{
    corrupt, is_unique_violation, join_scopes, millis, split_scopes, sql, tenant, time,
    user_from_row,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, UserId};
use crate::store::oauth::{LeaseStore, OAuthStateStore, PendingAuthorization};
use crate::vault::KeyId;

#[async_trait]
impl OAuthStateStore for SqliteStore {
    async fn put_pending_authorization(&self, p: PendingAuthorization) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO consentry_oauth_pending
                   (state_hash, tenant, user_id, connector, redirect_uri, scopes, key_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    p.state_hash.as_slice(),
                    tenant(&p.user),
                    p.user.user(),
                    p.connector.as_str(),
                    p.redirect_uri,
                    join_scopes(&p.scopes),
                    p.key_id.as_str(),
                    millis(p.created_at),
                    millis(p.expires_at),
                ],
            )
            .map(|_| ())
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict {
                        what: "pending authorization",
                        expected: 0,
                        found: 1,
                    }
                } else {
                    Error::storage("storing a pending authorization", e)
                }
            })
        })
        .await
    }

    async fn take_pending_authorization(
        &self,
        state_hash: &[u8; 32],
        user: &UserId,
    ) -> Result<Option<PendingAuthorization>> {
        let (hash, t, u) = (*state_hash, tenant(user), user.user().to_owned());
        type Raw = (String, String, String, String, String, String, i64, i64);
        let row: Option<Raw> = self
            .write(move |conn| {
                // DELETE ... RETURNING: of two concurrent callbacks, one wins.
                conn.query_row(
                    "DELETE FROM consentry_oauth_pending
                     WHERE state_hash = ?1 AND tenant = ?2 AND user_id = ?3
                     RETURNING tenant, user_id, connector, redirect_uri, scopes, key_id, created_at, expires_at",
                    params![hash.as_slice(), t, u],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
                )
                .optional()
                .map_err(sql("taking a pending authorization"))
            })
            .await?;
        let Some((t, u, connector, redirect_uri, scopes, key_id, created, expires)) = row else {
            return Ok(None);
        };
        Ok(Some(PendingAuthorization::new(
            hash,
            user_from_row(t, u)?,
            ConnectorId::new(connector).map_err(|e| corrupt("connector id", e))?,
            redirect_uri,
            split_scopes(&scopes)?,
            KeyId::new(key_id).map_err(|e| corrupt("key id", e))?,
            time(created),
            time(expires),
        )))
    }

    async fn purge_pending_authorizations(&self, now: SystemTime) -> Result<u64> {
        let now = millis(now);
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_oauth_pending WHERE expires_at < ?1",
                [now],
            )
            .map(|n| n as u64)
            .map_err(sql("purging pending authorizations"))
        })
        .await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        let (until, now) = (millis(until), millis(now));
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO consentry_leases (name, owner, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE consentry_leases.owner = excluded.owner OR consentry_leases.expires_at <= ?4",
                params![name, owner, until, now],
            )
            .map(|n| n == 1)
            .map_err(sql("acquiring a lease"))
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )
            .map(|n| n == 1)
            .map_err(sql("releasing a lease"))
        })
        .await
    }
}
