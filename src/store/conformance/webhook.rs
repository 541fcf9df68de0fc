//! Conformance cases for webhook endpoints, the outbox and the replay
//! guard.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::join_all;
use crate::error::Error;
use crate::ids::{EndpointId, MessageId};
use crate::store::{
    AttemptCompletion, AttemptRecord, DeliveryOutcome, DeliveryState, EndpointEffect, NewMessage,
    Store, StoredEndpoint, Trigger,
};

pub(super) fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

pub(super) fn ep(name: &str) -> EndpointId {
    EndpointId::new(format!("conformance-{name}")).unwrap()
}

pub(super) fn msg(name: &str) -> MessageId {
    MessageId::new(format!("conformance-{name}")).unwrap()
}

pub(super) async fn endpoint(store: &dyn Store, name: &str, types: &[&str]) -> EndpointId {
    let mut e = StoredEndpoint::new(
        ep(name),
        format!("https://{name}.example/hook"),
        vec![7; 40],
        t(0),
    );
    e.event_types = types.iter().map(|s| (*s).to_owned()).collect();
    store.insert_webhook_endpoint(e).await.unwrap();
    ep(name)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn completion(
    owner: &str,
    delivery: u64,
    message: &MessageId,
    endpoint: &EndpointId,
    attempt: u32,
    status: u16,
    outcome: DeliveryOutcome,
    effect: EndpointEffect,
    now: SystemTime,
) -> AttemptCompletion {
    AttemptCompletion {
        lease_owner: owner.to_owned(),
        attempt: AttemptRecord::new(
            delivery,
            message.clone(),
            endpoint.clone(),
            attempt,
            now,
            Trigger::Scheduled,
            Some(status),
            None,
            format!("status {status}").into_bytes(),
            Duration::from_millis(5),
        ),
        outcome,
        endpoint: effect,
        now,
    }
}

/// Endpoints read back as written; updates are compare-and-swap on the
/// revision; deletion removes them.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::webhook_endpoints_round_trip_and_compare_and_swap(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn webhook_endpoints_round_trip_and_compare_and_swap(store: &dyn Store) {
    let id = endpoint(store, "crud", &["a.b", "c.d"]).await;
    let got = store
        .get_webhook_endpoint(&id)
        .await
        .unwrap()
        .expect("endpoint");
    assert_eq!(got.revision, 1);
    assert_eq!(got.event_types, vec!["a.b".to_owned(), "c.d".to_owned()]);
    assert_eq!(got.sealed, vec![7; 40]);
    assert_eq!(got.created_at, t(0));
    let dup = StoredEndpoint::new(id.clone(), "https://x.example/", vec![], t(1));
    assert!(matches!(
        store.insert_webhook_endpoint(dup).await,
        Err(Error::Conflict { .. })
    ));
    let mut changed = got.clone();
    changed.url = "https://crud.example/v2".into();
    changed.rate_limit = Some(10);
    changed.updated_at = t(5);
    assert_eq!(
        store
            .update_webhook_endpoint(changed.clone())
            .await
            .unwrap(),
        2
    );
    let stale = store.update_webhook_endpoint(changed).await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    let got = store
        .get_webhook_endpoint(&id)
        .await
        .unwrap()
        .expect("endpoint");
    assert_eq!(
        (got.url.as_str(), got.rate_limit, got.revision),
        ("https://crud.example/v2", Some(10), 2)
    );
    assert_eq!((got.created_at, got.updated_at), (t(0), t(5)));
    assert!(
        store
            .list_webhook_endpoints()
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id)
    );
    let missing = StoredEndpoint::new(ep("crud-missing"), "https://x/", vec![], t(0));
    assert!(matches!(
        store.update_webhook_endpoint(missing).await,
        Err(Error::NotFound { .. })
    ));
    assert!(store.delete_webhook_endpoint(&id).await.unwrap());
    assert!(!store.delete_webhook_endpoint(&id).await.unwrap());
    assert!(store.get_webhook_endpoint(&id).await.unwrap().is_none());
}

/// Publishing queues one delivery per enabled, subscribed endpoint; a
/// repeated idempotency key returns the first message and writes nothing
/// until the key expires.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::webhook_publish_fans_out_and_is_idempotent(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn webhook_publish_fans_out_and_is_idempotent(store: &dyn Store) {
    let all = endpoint(store, "fan-all", &[]).await;
    let typed = endpoint(store, "fan-typed", &["fan.one"]).await;
    let off = endpoint(store, "fan-off", &[]).await;
    let mut disabled = store.get_webhook_endpoint(&off).await.unwrap().unwrap();
    disabled.enabled = false;
    store.update_webhook_endpoint(disabled).await.unwrap();

    let m1 = NewMessage::new(msg("fan-1"), "fan.one", b"{\"n\":1}".to_vec(), t(10))
        .with_idempotency_key("conformance-key", t(10 + 86_400));
    let p = store.publish_webhook_message(m1).await.unwrap();
    assert!(!p.duplicate);
    assert_eq!((p.id.clone(), p.deliveries), (msg("fan-1"), 2));
    let mut endpoints: Vec<_> = store
        .webhook_deliveries(&msg("fan-1"))
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            assert_eq!(
                (d.state, d.attempts, d.trigger),
                (DeliveryState::Pending, 0, Trigger::Scheduled)
            );
            d.endpoint
        })
        .collect();
    endpoints.sort();
    assert_eq!(endpoints, vec![all.clone(), typed]);

    let again = NewMessage::new(msg("fan-2"), "fan.one", b"{}".to_vec(), t(20))
        .with_idempotency_key("conformance-key", t(20 + 86_400));
    let p = store.publish_webhook_message(again).await.unwrap();
    assert!(p.duplicate);
    assert_eq!((p.id, p.created_at), (msg("fan-1"), t(10)));
    assert!(
        store
            .get_webhook_message(&msg("fan-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .webhook_deliveries(&msg("fan-2"))
            .await
            .unwrap()
            .is_empty()
    );

    let later = NewMessage::new(msg("fan-3"), "fan.two", b"{}".to_vec(), t(10 + 86_401))
        .with_idempotency_key("conformance-key", t(10 + 2 * 86_400));
    let p = store.publish_webhook_message(later).await.unwrap();
    assert!(!p.duplicate, "an expired key can be used again");
    assert_eq!((p.id, p.deliveries), (msg("fan-3"), 1));
    let stored = store
        .get_webhook_message(&msg("fan-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payload, b"{\"n\":1}");
    assert_eq!(stored.event_type, "fan.one");
    // Deleting the endpoints deletes their deliveries (later cases publish
    // event types `fan-all` would receive).
    for e in [all, ep("fan-typed"), off] {
        assert!(store.delete_webhook_endpoint(&e).await.unwrap());
    }
    assert!(
        store
            .webhook_deliveries(&msg("fan-1"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The replay guard lets a delivery id through once until it expires;
/// concurrent checks let exactly one through; purge removes expired
/// entries only.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::replay_guard_check_and_insert(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn replay_guard_check_and_insert(store: &dyn Store) {
    let scope = "conformance-replay";
    assert!(
        store
            .check_and_insert(scope, "d1", t(300), t(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .check_and_insert(scope, "d1", t(600), t(100))
            .await
            .unwrap()
    );
    assert!(
        store
            .check_and_insert("conformance-other", "d1", t(300), t(100))
            .await
            .unwrap()
    );
    assert!(
        store
            .check_and_insert(scope, "d1", t(900), t(300))
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !store
            .check_and_insert(scope, "d1", t(900), t(899))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.check_and_insert(scope, "", t(1), t(0)).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        store
            .check_and_insert(scope, &"x".repeat(257), t(1), t(0))
            .await,
        Err(Error::InvalidInput { .. })
    ));

    let racers = (0..16).map(|_| store.check_and_insert(scope, "race", t(2000), t(1000)));
    let wins = join_all(racers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);

    assert!(
        store
            .check_and_insert(scope, "short", t(1500), t(1000))
            .await
            .unwrap()
    );
    let purged = store.purge_replay_entries(t(1600)).await.unwrap();
    assert!(purged >= 1);
    assert!(
        !store
            .check_and_insert(scope, "race", t(3000), t(1600))
            .await
            .unwrap(),
        "unexpired entries stay"
    );
    assert!(
        store
            .check_and_insert(scope, "short", t(3000), t(1600))
            .await
            .unwrap()
    );
}
