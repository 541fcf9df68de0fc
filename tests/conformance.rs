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
