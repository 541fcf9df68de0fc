//! The vault's tables in SQLite: `consentry_credentials` and
//! `consentry_data_keys` (migration 1).

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{corrupt, query_all, sql, tenant, user_from_row, version_from};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::store::vault::{
    CredentialKey, CredentialStore, CredentialWrite, DataKeyStore, StoredCredential, WrappedDataKey,
};
use crate::vault::{KeyId, Version};

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn get_credential(&self, key: &CredentialKey) -> Result<Option<StoredCredential>> {
        let (t, u, c, k) = (
            tenant(&key.user),
            key.user.user().to_owned(),
            key.connection.as_str().to_owned(),
            key.kind.as_str(),
        );
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT envelope, version FROM consentry_credentials
                 WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND kind = ?4",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![t, u, c, k], |r| {
                    Ok(StoredCredential::new(r.get(0)?, version_from(r.get(1)?)))
                })
                .optional()
            })
            .map_err(sql("reading a credential"))
        })
        .await
    }

    async fn put_credentials(&self, writes: Vec<CredentialWrite>) -> Result<Vec<Version>> {
        let mut seen = HashSet::with_capacity(writes.len());
        if !writes.iter().all(|w| seen.insert(&w.key)) {
            return Err(Error::invalid("credential batch", "a key appears twice"));
        }
        self.write(move |conn| put_credentials(conn, writes)).await
    }

    async fn delete_connection_credentials(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<u64> {
        let (t, u, c) = (
            tenant(user),
            user.user().to_owned(),
            connection.as_str().to_owned(),
        );
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_credentials WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3",
                params![t, u, c],
            )
            .map(|n| n as u64)
            .map_err(sql("deleting a connection's credentials"))
        })
        .await
    }

    async fn delete_user_credentials(&self, user: &UserId) -> Result<u64> {
        let (t, u) = (tenant(user), user.user().to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_credentials WHERE tenant = ?1 AND user_id = ?2",
                params![t, u],
            )
            .map(|n| n as u64)
            .map_err(sql("deleting a user's credentials"))
        })
        .await
    }

    async fn list_credentials(&self, user: &UserId) -> Result<Vec<(CredentialKey, Version)>> {
        let owner = user.clone();
        let (t, u) = (tenant(user), user.user().to_owned());
        let rows: Vec<(String, String, i64)> = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT connection, kind, version FROM consentry_credentials
                     WHERE tenant = ?1 AND user_id = ?2",
                    params![t, u],
                    "listing credentials",
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await?;
        let mut out = rows
            .into_iter()
            .map(|(c, k, v)| {
                let connection = ConnectionId::new(c).map_err(|e| corrupt("connection id", e))?;
                let kind = k.parse().map_err(|e| corrupt("credential kind", e))?;
                Ok((
                    CredentialKey::new(owner.clone(), connection, kind),
                    version_from(v),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }
}

fn put_credentials(conn: &mut Connection, writes: Vec<CredentialWrite>) -> Result<Vec<Version>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("writing credentials"))?;
    let versions = put_credentials_in(&tx, &writes)?;
    tx.commit().map_err(sql("writing credentials"))?;
    Ok(versions)
}

/// Checks and applies a credential batch inside an open transaction; the
/// caller commits (or drops the transaction, rolling everything back).
pub(super) fn put_credentials_in(
    tx: &rusqlite::Transaction<'_>,
    writes: &[CredentialWrite],
) -> Result<Vec<Version>> {
    let err = sql("writing credentials");
    let mut versions = Vec::with_capacity(writes.len());
    {
        let mut current = tx
            .prepare_cached(
                "SELECT version FROM consentry_credentials
                 WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND kind = ?4",
            )
            .map_err(&err)?;
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO consentry_credentials (tenant, user_id, connection, kind, envelope, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (tenant, user_id, connection, kind)
                 DO UPDATE SET envelope = excluded.envelope, version = version + 1
                 RETURNING version",
            )
            .map_err(&err)?;
        for w in writes {
            let key = params![
                tenant(&w.key.user),
                w.key.user.user(),
                w.key.connection.as_str(),
                w.key.kind.as_str()
            ];
            if let Some(expected) = w.expected {
                let found = current
                    .query_row(key, |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(&err)?
                    .map_or(Version::NONE, version_from);
                if found != expected {
                    // Dropping the transaction rolls back earlier writes.
                    return Err(Error::Conflict {
                        what: "credential",
                        expected: expected.get(),
                        found: found.get(),
                    });
                }
            }
            let version: i64 = upsert
                .query_row(
                    params![
                        tenant(&w.key.user),
                        w.key.user.user(),
                        w.key.connection.as_str(),
                        w.key.kind.as_str(),
                        w.envelope
                    ],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            versions.push(version_from(version));
        }
    }
    Ok(versions)
}

fn wrapped_from_row(
    r: &rusqlite::Row<'_>,
    offset: usize,
) -> rusqlite::Result<(String, String, Vec<u8>)> {
    Ok((r.get(offset)?, r.get(offset + 1)?, r.get(offset + 2)?))
}

fn wrapped((id, kek, wrapped): (String, String, Vec<u8>)) -> Result<WrappedDataKey> {
    let kek = KeyId::new(kek).map_err(|e| corrupt("key id", e))?;
    Ok(WrappedDataKey::new(id, kek, wrapped))
}

#[async_trait]
impl DataKeyStore for SqliteStore {
    async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>> {
        let (t, u) = (tenant(owner), owner.user().to_owned());
        let row = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, kek, wrapped FROM consentry_data_keys WHERE tenant = ?1 AND user_id = ?2",
                )
                .and_then(|mut stmt| stmt.query_row(params![t, u], |r| wrapped_from_row(r, 0)).optional())
                .map_err(sql("reading a data key"))
            })
            .await?;
        row.map(wrapped).transpose()
    }

    async fn insert_data_key(&self, owner: &UserId, key: WrappedDataKey) -> Result<WrappedDataKey> {
        let (t, u) = (tenant(owner), owner.user().to_owned());
        let row = self
            .write(move |conn| {
                let err = sql("storing a data key");
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&err)?;
                tx.execute(
                    "INSERT INTO consentry_data_keys (tenant, user_id, id, kek, wrapped)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![t, u, key.id, key.kek.as_str(), key.wrapped],
                )
                .map_err(&err)?;
                let row = tx
                    .query_row(
                        "SELECT id, kek, wrapped FROM consentry_data_keys WHERE tenant = ?1 AND user_id = ?2",
                        params![t, u],
                        |r| wrapped_from_row(r, 0),
                    )
                    .map_err(&err)?;
                tx.commit().map_err(&err)?;
                Ok(row)
            })
            .await?;
        wrapped(row)
    }

    async fn rewrap_data_key(
        &self,
        owner: &UserId,
        expected_kek: &KeyId,
        new: WrappedDataKey,
    ) -> Result<bool> {
        let (t, u, expected) = (
            tenant(owner),
            owner.user().to_owned(),
            expected_kek.as_str().to_owned(),
        );
        self.write(move |conn| {
            conn.execute(
                "UPDATE consentry_data_keys SET kek = ?1, wrapped = ?2
                 WHERE tenant = ?3 AND user_id = ?4 AND id = ?5 AND kek = ?6",
                params![new.kek.as_str(), new.wrapped, t, u, new.id, expected],
            )
            .map(|n| n == 1)
            .map_err(sql("rewrapping a data key"))
        })
        .await
    }

    async fn data_keys_not_under(
        &self,
        kek: &KeyId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, WrappedDataKey)>> {
        // ('', '') sorts before every stored owner: user ids are never empty.
        let (t, u) = after.map_or((String::new(), String::new()), |a| {
            (tenant(a), a.user().to_owned())
        });
        let kek = kek.as_str().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String, (String, String, Vec<u8>))> = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT tenant, user_id, id, kek, wrapped FROM consentry_data_keys
                     WHERE kek <> ?1 AND (tenant, user_id) > (?2, ?3)
                     ORDER BY tenant, user_id LIMIT ?4",
                    params![kek, t, u, limit],
                    "listing data keys",
                    |r| Ok((r.get(0)?, r.get(1)?, wrapped_from_row(r, 2)?)),
                )
            })
            .await?;
        rows.into_iter()
            .map(|(t, u, w)| Ok((user_from_row(t, u)?, wrapped(w)?)))
            .collect()
    }

    async fn data_key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        let rows: Vec<(String, i64)> = self
            .read(|conn| {
                query_all(
                    conn,
                    "SELECT kek, count(*) FROM consentry_data_keys GROUP BY kek",
                    [],
                    "counting data keys",
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        rows.into_iter()
            .map(|(kek, n)| {
                let kek = KeyId::new(kek).map_err(|e| corrupt("key id", e))?;
                Ok((kek, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn destroy_data_key(&self, owner: &UserId) -> Result<bool> {
        let (t, u) = (tenant(owner), owner.user().to_owned());
        self.write(move |conn| {
            // secure_delete (set on every connection) zeroes the freed cell
            // in the page; the checkpoint then writes that page into the
            // database file and truncates the WAL, whose older frames still
            // held the key's bytes.
            let deleted = conn
                .execute(
                    "DELETE FROM consentry_data_keys WHERE tenant = ?1 AND user_id = ?2",
                    params![t, u],
                )
                .map_err(sql("destroying a data key"))?;
            truncate_wal(conn)?;
            Ok(deleted > 0)
        })
        .await
    }
}

/// Checkpoints the whole WAL into the database file and truncates it to
/// zero bytes. Retries a bounded number of times while another connection
/// (usually another process) holds a read transaction on old frames.
fn truncate_wal(conn: &Connection) -> Result<()> {
    const ATTEMPTS: u32 = 50;
    for attempt in 0..ATTEMPTS {
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(sql("checkpointing the WAL"))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(
            10 * u64::from(attempt + 1).min(10),
        ));
    }
    Err(Error::Storage {
        message: "the data key is deleted, but another connection kept old WAL frames in use; \
                  call erase again to finish scrubbing the WAL"
            .into(),
        source: None,
    })
}
