//! The public store conformance suite, run against every backend.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use consentry::store::{MemoryStore, Store, conformance};

#[tokio::test]
async fn memory_store() {
    conformance::run_all(&MemoryStore::new()).await;
}

#[tokio::test]
async fn arc_dyn_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn boxed_store() {
    let store: Box<dyn Store> = Box::new(MemoryStore::new());
    conformance::run_all(&store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = consentry::store::SqliteStore::open(dir.path().join("conformance.db"))
        .await
        .unwrap();
    conformance::run_all(&store).await;
    store.close().await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_store_as_arc_dyn() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        consentry::store::SqliteStore::open(dir.path().join("conformance.db"))
            .await
            .unwrap(),
    );
    conformance::run_all(&store).await;
}

/// `close` on the last handle leaves everything in the database file:
/// the readers close first and the writer last, alone, so SQLite
/// checkpoints the WAL and removes it. (Closing them all at once let each
/// connection see the others, and the WAL stayed behind at random.)
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_close_checkpoints_the_wal_into_the_file() {
    use consentry::secrecy::SecretString;
    use consentry::store::{SqliteOptions, SqliteStore};
    use consentry::vault::{CredentialKind, Keyring, Vault};
    use consentry::{ConnectionId, UserId};
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("close-{round}.db"));
        let store = SqliteStore::open_with(&path, SqliteOptions::default().readers(8))
            .await
            .unwrap();
        let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
        let user = UserId::new(format!("user-{round}")).unwrap();
        let conn = ConnectionId::new("c1").unwrap();
        let kind = CredentialKind::AccessToken;
        vault
            .put(&user, &conn, kind, SecretString::from("t".to_owned()))
            .await
            .unwrap();
        // Readers take jobs, so several have read the database.
        for _ in 0..16 {
            vault.get(&user, &conn, kind).await.unwrap();
        }
        drop(vault);
        store.close().await.unwrap();
        let wal = path.with_extension("db-wal");
        assert!(!wal.exists(), "round {round}: the WAL was left behind");
        // The file alone (no WAL beside it) holds the data.
        let raw = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = raw
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert!(n > 0, "round {round}: the file has no tables");
    }
}
