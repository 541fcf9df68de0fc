//! Conformance cases for records, sync state, the access log, settings,
//! field mappings and erasure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::connection::{AccountInfo, Connection};
use crate::error::Error;
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::records::Record;
use crate::store::{
    ConnectionWrite, ConsentEntry, MappingScope, PageWrite, RecordRead, Store, SyncState,
    SyncStatus, Tombstone,
};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn user(name: &str) -> UserId {
    UserId::in_tenant("conformance-rec", name).unwrap()
}

fn purpose(p: &str) -> Purpose {
    Purpose::new(p).unwrap()
}

async fn connection(store: &dyn Store, u: &UserId, id: &str, purposes: &[&str]) -> ConnectionId {
    let c = Connection::new(
        ConnectionId::new(id).unwrap(),
        u.clone(),
        ConnectorId::new("conformance-provider").unwrap(),
        AccountInfo::new(format!("acct-{id}")),
        t(0),
    );
    store
        .write_connection(ConnectionWrite::create(c.clone()))
        .await
        .unwrap();
    for p in purposes {
        consent(store, u, &c.id, p, true).await;
    }
    c.id
}

async fn consent(store: &dyn Store, u: &UserId, c: &ConnectionId, p: &str, granted: bool) {
    let e = ConsentEntry::new(u.clone(), c.clone(), purpose(p), granted, "user", "1", t(1));
    store.append_consent(e).await.unwrap();
}

fn records(ids: &[&str], version: u32) -> Vec<Record> {
    ids.iter()
        .map(|id| Record::new(*id, "item", serde_json::json!({"v": version})).unwrap())
        .collect()
}

fn page(
    u: &UserId,
    c: &ConnectionId,
    stream: &str,
    ids: &[&str],
    purposes: &[&str],
    cursor: &str,
) -> PageWrite {
    let mut state = SyncState::new(
        u.clone(),
        c.clone(),
        ConnectorId::new("conformance-provider").unwrap(),
        stream,
    );
    state.cursor = Some(cursor.to_owned());
    state.generation = 1;
    state.purposes = purposes.iter().map(|p| purpose(p)).collect();
    PageWrite::new(state, records(ids, 1), state_purposes(purposes), t(5))
}

fn state_purposes(purposes: &[&str]) -> Vec<Purpose> {
    purposes.iter().map(|p| purpose(p)).collect()
}

async fn read(
    store: &dyn Store,
    u: &UserId,
    c: &ConnectionId,
    stream: &str,
    p: &str,
) -> Option<Vec<String>> {
    store
        .read_records(RecordRead::new(
            u.clone(),
            c.clone(),
            stream,
            purpose(p),
            "conformance",
            t(9),
            1000,
        ))
        .await
        .unwrap()
        .map(|rs| rs.into_iter().map(|r| r.id).collect())
}

/// Pages upsert by provider id (no duplicates) and save their cursor in
/// the same call; a page for a deleted connection or without consent
/// writes nothing; the sweep deletes older generations.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::record_pages_upsert_with_their_cursor(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn record_pages_upsert_with_their_cursor(store: &dyn Store) {
    let u = user("pages");
    let c = connection(store, &u, "c1", &["matching"]).await;
    let applied = store
        .apply_page(page(&u, &c, "s", &["a", "b"], &["matching"], "p1"))
        .await
        .unwrap();
    assert_eq!(applied.upserted, 2);
    store
        .apply_page(page(&u, &c, "s", &["b", "c"], &["matching"], "p2"))
        .await
        .unwrap();
    assert_eq!(
        read(store, &u, &c, "s", "matching").await.unwrap(),
        ["a", "b", "c"]
    );
    let state = store
        .get_sync_state(&u, &c, "s")
        .await
        .unwrap()
        .expect("state saved with the page");
    assert_eq!(state.cursor.as_deref(), Some("p2"));

    let missing = ConnectionId::new("gone").unwrap();
    let err = store
        .apply_page(page(&u, &missing, "s", &["x"], &["matching"], "p"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store
        .apply_page(page(&u, &c, "s", &["x"], &["other"], "p9"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConsentRequired { .. }), "{err}");
    let state = store.get_sync_state(&u, &c, "s").await.unwrap().unwrap();
    assert_eq!(
        state.cursor.as_deref(),
        Some("p2"),
        "a refused page saves no cursor"
    );

    // A new generation that saw only `a` sweeps `b` and `c`.
    let mut last = page(&u, &c, "s", &["a"], &["matching"], "done");
    last.state.generation = 2;
    last.sweep = true;
    last.deleted = vec!["nonexistent".into()];
    let applied = store.apply_page(last).await.unwrap();
    assert_eq!((applied.swept, applied.deleted), (2, 0));
    assert_eq!(read(store, &u, &c, "s", "matching").await.unwrap(), ["a"]);
}

/// A read returns records only with consent for its purpose, and logs
/// itself (count, component, purpose); `after` and `limit` page.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::record_reads_check_consent_and_are_logged(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn record_reads_check_consent_and_are_logged(store: &dyn Store) {
    let u = user("reads");
    let c = connection(store, &u, "c1", &["matching"]).await;
    store
        .apply_page(page(&u, &c, "s", &["a", "b", "c"], &["matching"], "p"))
        .await
        .unwrap();
    assert_eq!(read(store, &u, &c, "s", "ads").await, None);
    assert!(
        store.access_log(&u).await.unwrap().is_empty(),
        "a refused read is not a read"
    );
    let mut q = RecordRead::new(
        u.clone(),
        c.clone(),
        "s",
        purpose("matching"),
        "matcher",
        t(9),
        1,
    );
    q.after = Some("a".into());
    let got = store.read_records(q).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(got[0].purposes, [purpose("matching")]);
    assert_eq!(got[0].fetched_at, t(5));
    let log = store.access_log(&u).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].component.as_str(),
            log[0].purpose.as_str(),
            log[0].count
        ),
        ("matcher", "matching", 1)
    );
    let counts = store.record_counts(&u).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].count, 3);
}

/// Revoking a purpose removes it from the connection's records and
/// deletes those held only for it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::revoking_consent_drops_the_purpose_from_records(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn revoking_consent_drops_the_purpose_from_records(store: &dyn Store) {
    let u = user("revoke");
    let c = connection(store, &u, "c1", &["matching", "ads"]).await;
    store
        .apply_page(page(&u, &c, "only", &["a"], &["matching"], "p"))
        .await
        .unwrap();
    store
        .apply_page(page(&u, &c, "both", &["b"], &["matching", "ads"], "p"))
        .await
        .unwrap();
    consent(store, &u, &c, "matching", false).await;
    let left = store.user_records(&u, None, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].id.as_str(), left[0].purposes.clone()),
        ("b", vec![purpose("ads")])
    );
    let state = store.get_sync_state(&u, &c, "both").await.unwrap().unwrap();
    assert_eq!(state.purposes, [purpose("ads")]);
}

/// Deleting a connection deletes its records, sync states, access log,
/// settings and mappings, and nothing of another connection.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::deleting_a_connection_deletes_its_harvest(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn deleting_a_connection_deletes_its_harvest(store: &dyn Store) {
    let u = user("delete");
    let c = connection(store, &u, "c1", &["matching"]).await;
    let other = connection(store, &u, "c2", &["matching"]).await;
    for conn in [&c, &other] {
        store
            .apply_page(page(&u, conn, "s", &["a", "b"], &["matching"], "p"))
            .await
            .unwrap();
        read(store, &u, conn, "s", "matching").await.unwrap();
        store
            .put_settings(&u, conn, "{\"x\":1}".into())
            .await
            .unwrap();
        store
            .put_field_mapping(
                &MappingScope::Connection(u.clone(), conn.clone()),
                "s",
                Some("{}".into()),
            )
            .await
            .unwrap();
    }
    let deleted = store.delete_connection(&u, &c, Vec::new()).await.unwrap();
    assert_eq!(
        (
            deleted.records,
            deleted.sync_states,
            deleted.access_log_entries
        ),
        (2, 1, 1)
    );
    assert!(store.get_settings(&u, &c).await.unwrap().is_none());
    assert!(
        store
            .get_field_mapping(&u, &c, "s")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.user_records(&u, None, 100).await.unwrap().len(), 2);
    assert!(
        store
            .user_records(&u, None, 100)
            .await
            .unwrap()
            .iter()
            .all(|r| r.connection == other)
    );
    assert_eq!(store.access_log(&u).await.unwrap().len(), 1);
    assert!(store.get_settings(&u, &other).await.unwrap().is_some());
}

/// Sync states are saved only for existing connections and listed when
/// due, soonest first.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::sync_states_are_scheduled(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn sync_states_are_scheduled(store: &dyn Store) {
    let u = user("schedule");
    let c = connection(store, &u, "c1", &[]).await;
    for (stream, at) in [("late", 50), ("early", 10), ("never", 0)] {
        let mut s = SyncState::new(
            u.clone(),
            c.clone(),
            ConnectorId::new("conformance-provider").unwrap(),
            stream,
        );
        s.next_run_at = (at > 0).then(|| t(at));
        s.status = SyncStatus::Partial;
        store.put_sync_state(s).await.unwrap();
    }
    let due: Vec<String> = store
        .due_syncs(t(60), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.user == u)
        .map(|s| s.stream)
        .collect();
    assert_eq!(due, ["early", "late"]);
    assert_eq!(store.list_sync_states(&u).await.unwrap().len(), 3);
    let orphan = SyncState::new(
        u.clone(),
        ConnectionId::new("gone").unwrap(),
        ConnectorId::new("x").unwrap(),
        "s",
    );
    assert!(matches!(
        store.put_sync_state(orphan).await,
        Err(Error::NotFound { .. })
    ));
}

/// A connection's field mapping wins over its tenant's.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::field_mappings_prefer_the_connection(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn field_mappings_prefer_the_connection(store: &dyn Store) {
    let u = user("mapping");
    let c = connection(store, &u, "c1", &[]).await;
    let tenant = MappingScope::Tenant(Some("conformance-rec".into()));
    store
        .put_field_mapping(&tenant, "s", Some("tenant".into()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_field_mapping(&u, &c, "s")
            .await
            .unwrap()
            .as_deref(),
        Some("tenant")
    );
    let own = MappingScope::Connection(u.clone(), c.clone());
    store
        .put_field_mapping(&own, "s", Some("own".into()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_field_mapping(&u, &c, "s")
            .await
            .unwrap()
            .as_deref(),
        Some("own")
    );
    store.put_field_mapping(&own, "s", None).await.unwrap();
    assert_eq!(
        store
            .get_field_mapping(&u, &c, "s")
            .await
            .unwrap()
            .as_deref(),
        Some("tenant")
    );
    assert!(
        store
            .get_field_mapping(&u, &c, "other")
            .await
            .unwrap()
            .is_none()
    );
}

/// Erasing a user deletes every row of theirs and keeps a tombstone.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::erasing_a_user_leaves_only_a_tombstone(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn erasing_a_user_leaves_only_a_tombstone(store: &dyn Store) {
    let u = user("erase");
    let keep = user("erase-other");
    let c = connection(store, &u, "c1", &["matching"]).await;
    let k = connection(store, &keep, "c1", &["matching"]).await;
    for (owner, conn) in [(&u, &c), (&keep, &k)] {
        store
            .apply_page(page(owner, conn, "s", &["a"], &["matching"], "p"))
            .await
            .unwrap();
    }
    let erased = store
        .erase_user_data(&u, Tombstone::new("subject-1".into(), t(20), 1, 1))
        .await
        .unwrap();
    assert_eq!((erased.connections, erased.records), (1, 1));
    assert!(store.list_connections(&u).await.unwrap().is_empty());
    assert!(store.consent_history(&u, None).await.unwrap().is_empty());
    assert!(store.list_sync_states(&u).await.unwrap().is_empty());
    assert_eq!(store.user_records(&keep, None, 10).await.unwrap().len(), 1);
    let tomb = store
        .tombstone("subject-1")
        .await
        .unwrap()
        .expect("tombstone");
    assert_eq!((tomb.erased_at, tomb.records), (t(20), 1));
}
