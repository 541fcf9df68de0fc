//! Embedded, checksummed migrations, applied in one transaction.
//!
//! Each migration is a SQL file compiled into the crate. Applying records
//! its version, name and SHA-256 in `consentry_migrations`; every open
//! re-checks the recorded checksums, so a shipped migration that was edited
//! afterwards is refused loudly instead of leaving databases that differ
//! silently.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::error::{Error, MigrationError, Result};

/// One embedded migration.
pub(super) struct Migration {
    pub(super) version: u32,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

/// Every migration, in order. Append only.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "vault",
        sql: include_str!("migrations/0001_vault.sql"),
    },
    Migration {
        version: 2,
        name: "connections",
        sql: include_str!("migrations/0002_connections.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks",
        sql: include_str!("migrations/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "records",
        sql: include_str!("migrations/0004_records.sql"),
    },
    Migration {
        version: 5,
        name: "audit",
        sql: include_str!("migrations/0005_audit.sql"),
    },
    Migration {
        version: 6,
        name: "ratelimit",
        sql: include_str!("migrations/0006_ratelimit.sql"),
    },
    Migration {
        version: 7,
        name: "api_tokens",
        sql: include_str!("migrations/0007_api_tokens.sql"),
    },
    Migration {
        version: 8,
        name: "api_token_usage_count",
        sql: include_str!("migrations/0008_api_token_usage_count.sql"),
    },
];

/// Hex SHA-256 of a migration's SQL text.
pub(super) fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sql_err(context: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::storage(context, e)
}

/// Brings the schema up to date in one `BEGIN IMMEDIATE` transaction
/// (concurrent openers in other processes wait, then see it done).
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS)
}

pub(super) fn migrate_with(conn: &mut Connection, migrations: &[Migration]) -> Result<()> {
    let err = sql_err("applying migrations");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS consentry_migrations (
             version     INTEGER PRIMARY KEY,
             name        TEXT NOT NULL,
             checksum    TEXT NOT NULL
         );",
    )
    .map_err(&err)?;
    let supported = migrations.last().map_or(0, |m| m.version);
    let newest: Option<u32> = tx
        .query_row("SELECT max(version) FROM consentry_migrations", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(&err)?
        .flatten();
    if let Some(found) = newest
        && found > supported
    {
        return Err(MigrationError::TooNew { found, supported }.into());
    }
    for m in migrations {
        let recorded: Option<String> = tx
            .query_row(
                "SELECT checksum FROM consentry_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        match recorded {
            Some(sum) if sum == checksum(m.sql) => {}
            Some(_) => {
                return Err(MigrationError::Modified {
                    version: m.version,
                    name: m.name.to_owned(),
                }
                .into());
            }
            None => {
                tx.execute_batch(m.sql).map_err(&err)?;
                tx.execute(
                    "INSERT INTO consentry_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
                    rusqlite::params![m.version, m.name, checksum(m.sql)],
                )
                .map_err(&err)?;
            }
        }
    }
    tx.commit().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every shipped migration. If this fails, a shipped migration was
    /// edited: restore it and add a new one instead.
    #[test]
    fn shipped_migrations_are_unchanged() {
        let pinned: &[(u32, &str)] = &[
            (
                1,
                "a95395d0938122bd8e4a5b8b9bf4d5659d439751eeb9f919cd04488e8f5ccd67",
            ),
            (
                2,
                "e15adf614601276bc4de9d8d3896539c68df0311a0959924095963bae1ecb23f",
            ),
            (
                3,
                "5fbe026f00cb7ae84969f92121944b6659fdc6cc6e49a4c55bf9bdf03da0749d",
            ),
            (
                4,
                "6a8646b116de179271bed1e5f51f26685c57a5a57a5a0876ccc3e304e2aa16dd",
            ),
            (
                5,
                "d6436a04d71ca215f280dbaea867b74bfc48f527791293244b94fcc40ba95b06",
            ),
            (
                6,
                "e36dae22d1387cb835ea9d162fd16488ff9e88eea610076a098671c61a3396f8",
            ),
            (
                7,
                "9c1ac0b1ebb5f4c1eae0030465e7a0ee6c835e08607483cd0effc65e0901cd79",
            ),
            (
                8,
                "84456158e6b4d8e3bdd5ee7d8455a6d173df576075fdb7094f119eb84b80ccef",
            ),
        ];
        assert_eq!(
            MIGRATIONS.len(),
            pinned.len(),
            "pin the checksum of every new migration here"
        );
        for (m, (version, sum)) in MIGRATIONS.iter().zip(pinned) {
            assert_eq!(m.version, *version);
            assert_eq!(
                checksum(m.sql),
                *sum,
                "migration {} ({}) was edited",
                m.version,
                m.name
            );
        }
    }

    /// Usage rows written before migration 8 read as single uses.
    #[test]
    fn usage_rows_from_before_migration_8_count_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..7]).unwrap();
        conn.execute(
            "INSERT INTO consentry_api_token_usage (token_id, at, operation, outcome)
             VALUES ('tok_1', 5, 'verify', 'allowed')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row: (i64, Option<i64>) = conn
            .query_row(
                "SELECT count, first_at FROM consentry_api_token_usage",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(row, (1, None));
    }

    /// Versions start at 1 and strictly ascend. A number may be skipped
    /// while it is reserved for a migration landing from another branch
    /// (5, now): `migrate` applies each version it does not find recorded,
    /// so a database migrated without it gets it once it lands.
    #[test]
    fn versions_are_ascending_from_one() {
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
    }

    #[test]
    fn a_skipped_version_is_applied_once_it_lands() {
        let mut conn = Connection::open_in_memory().unwrap();
        let without = [
            Migration {
                version: 1,
                name: "a",
                sql: "CREATE TABLE a (x);",
            },
            Migration {
                version: 3,
                name: "c",
                sql: "CREATE TABLE c (x);",
            },
        ];
        migrate_with(&mut conn, &without).unwrap();
        let with = [
            Migration {
                version: 1,
                name: "a",
                sql: "CREATE TABLE a (x);",
            },
            Migration {
                version: 2,
                name: "b",
                sql: "CREATE TABLE b (x);",
            },
            Migration {
                version: 3,
                name: "c",
                sql: "CREATE TABLE c (x);",
            },
        ];
        migrate_with(&mut conn, &with).unwrap();
        let versions: Vec<u32> = conn
            .prepare("SELECT version FROM consentry_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        conn.execute("INSERT INTO b VALUES (1)", []).unwrap();
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap(); // idempotent
        let mut edited: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|m| Migration {
                version: m.version,
                name: m.name,
                sql: m.sql,
            })
            .collect();
        edited[0].sql = "CREATE TABLE x (y);";
        let err = migrate_with(&mut conn, &edited).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Migration(MigrationError::Modified { version: 1, .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO consentry_migrations VALUES (99, 'future', 'x')",
            [],
        )
        .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Migration(MigrationError::TooNew { found: 99, .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            Migration {
                version: 1,
                name: "ok",
                sql: "CREATE TABLE a (b);",
            },
            Migration {
                version: 2,
                name: "broken",
                sql: "CREATE TABLE a (b);",
            },
        ];
        assert!(migrate_with(&mut conn, &broken).is_err());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'consentry_migrations')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the transaction must roll back entirely");
    }
}
