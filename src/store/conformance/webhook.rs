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

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn ep(name: &str) -> EndpointId {
    EndpointId::new(format!("conformance-{name}")).unwrap()
}

fn msg(name: &str) -> MessageId {
    MessageId::new(format!("conformance-{name}")).unwrap()
}

async fn endpoint(store: &dyn Store, name: &str, types: &[&str]) -> EndpointId {
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
fn completion(
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

/// Claims lease due deliveries to one owner; a leased delivery is not
/// claimed again until the lease expires; completions apply only under
/// the lease and are logged in any case.
pub async fn webhook_claims_leases_and_completions(store: &dyn Store) {
    let e = endpoint(store, "lease", &["lease.test"]).await;
    for i in 0..3 {
        let m = NewMessage::new(
            msg(&format!("lease-{i}")),
            "lease.test",
            vec![b'x'; i + 1],
            t(100 + i as u64),
        );
        store.publish_webhook_message(m).await.unwrap();
    }
    let ours = |c: &crate::store::ClaimedDelivery| c.endpoint == e;
    let early = store
        .claim_webhook_deliveries("w1", t(99), t(200), 10)
        .await
        .unwrap();
    assert!(
        !early.iter().any(ours),
        "nothing is due before it was published"
    );
    let first: Vec<_> = store
        .claim_webhook_deliveries("w1", t(101), t(161), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(ours)
        .collect();
    assert_eq!(first.len(), 2, "due at 100 and 101");
    assert_eq!(first[0].message, msg("lease-0"));
    assert_eq!(
        (first[0].payload.as_slice(), first[0].attempts),
        (&b"x"[..], 0)
    );
    assert_eq!(first[0].event_type, "lease.test");
    let second: Vec<_> = store
        .claim_webhook_deliveries("w2", t(150), t(210), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(ours)
        .collect();
    assert_eq!(second.len(), 1, "only the unleased one");
    assert_eq!(second[0].message, msg("lease-2"));

    // w1's lease on lease-0 expires at 161; w3 takes it over.
    let taken: Vec<_> = store
        .claim_webhook_deliveries("w3", t(162), t(300), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(ours)
        .collect();
    assert_eq!(taken.len(), 2);
    let d0 = first[0].delivery;
    let stale = completion(
        "w1",
        d0,
        &msg("lease-0"),
        &e,
        1,
        200,
        DeliveryOutcome::Succeeded,
        EndpointEffect::Healthy,
        t(163),
    );
    let r = store.complete_webhook_attempts(vec![stale]).await.unwrap();
    assert!(!r[0].applied, "a lost lease does not apply");
    let retry = completion(
        "w3",
        d0,
        &msg("lease-0"),
        &e,
        1,
        500,
        DeliveryOutcome::Retry { at: t(400) },
        EndpointEffect::None,
        t(164),
    );
    let ok = completion(
        "w2",
        second[0].delivery,
        &msg("lease-2"),
        &e,
        1,
        204,
        DeliveryOutcome::Succeeded,
        EndpointEffect::Healthy,
        t(164),
    );
    let r = store
        .complete_webhook_attempts(vec![retry, ok])
        .await
        .unwrap();
    assert!(r[0].applied && r[1].applied);
    let d = store.webhook_deliveries(&msg("lease-0")).await.unwrap();
    assert_eq!(
        (d[0].state, d[0].attempts, d[0].next_attempt_at),
        (DeliveryState::Pending, 1, Some(t(400)))
    );
    let log = store.webhook_attempts(&msg("lease-0")).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(200), Some(500)]
    );
    assert_eq!(log[1].response, b"status 500");
    let d = store.webhook_deliveries(&msg("lease-2")).await.unwrap();
    assert_eq!((d[0].state, d[0].attempts), (DeliveryState::Succeeded, 1));
    let none: Vec<_> = store
        .claim_webhook_deliveries("w4", t(399), t(500), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(ours)
        .collect();
    assert_eq!(
        none.len(),
        1,
        "lease-1 (w3's lease expired at 300) but not lease-0 (due at 400)"
    );
    assert!(
        store
            .release_webhook_delivery(none[0].delivery, "w4", t(450))
            .await
            .unwrap(),
        "the holder releases"
    );
    assert!(
        !store
            .release_webhook_delivery(none[0].delivery, "w4", t(450))
            .await
            .unwrap()
    );
}

/// 8 concurrent claimers never get the same delivery.
pub async fn webhook_concurrent_claims_are_disjoint(store: &dyn Store) {
    let e = endpoint(store, "race", &["race.test"]).await;
    for i in 0..40 {
        let m = NewMessage::new(
            msg(&format!("race-{i}")),
            "race.test",
            b"{}".to_vec(),
            t(1000),
        );
        store.publish_webhook_message(m).await.unwrap();
    }
    let claimers = (0..8).map(|w| async move {
        let mut got = Vec::new();
        for _ in 0..20 {
            let batch = store
                .claim_webhook_deliveries(&format!("racer-{w}"), t(1001), t(2000), 3)
                .await
                .unwrap();
            got.extend(
                batch
                    .into_iter()
                    .filter(|c| c.endpoint == ep("race"))
                    .map(|c| c.delivery),
            );
        }
        got
    });
    let mut all: Vec<u64> = join_all(claimers).await.into_iter().flatten().collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a delivery was claimed twice");
    assert_eq!(n, 40, "every delivery claimed once");
    let _ = e;
}

/// Exhaustion starts the disabling clock, a success resets it, a second
/// exhaustion past the period disables; `Disable` disables once; replay
/// and recover queue manual deliveries.
pub async fn webhook_disable_policy_replay_and_recover(store: &dyn Store) {
    let e = endpoint(store, "policy", &["policy.test"]).await;
    let day = 86_400;
    let period = Duration::from_secs(5 * day);
    let exhaust = |i: u64, at: SystemTime| {
        let e = e.clone();
        async move {
            let id = msg(&format!("policy-{i}"));
            let m = NewMessage::new(id.clone(), "policy.test", b"{}".to_vec(), at);
            store.publish_webhook_message(m).await.unwrap();
            let c = store
                .claim_webhook_deliveries("p", at, at + Duration::from_secs(60), 1000)
                .await
                .unwrap();
            let c = c.into_iter().find(|c| c.message == id).expect("claimed");
            let effect = EndpointEffect::Exhausted {
                disable_after: period,
                reason: "failing".into(),
            };
            let done = completion(
                "p",
                c.delivery,
                &id,
                &e,
                8,
                500,
                DeliveryOutcome::Exhausted,
                effect,
                at,
            );
            store
                .complete_webhook_attempts(vec![done])
                .await
                .unwrap()
                .remove(0)
        }
    };
    let r = exhaust(1, t(0)).await;
    assert!(r.applied && !r.endpoint_disabled);
    let got = store.get_webhook_endpoint(&e).await.unwrap().unwrap();
    assert_eq!(got.first_failure_at, Some(t(0)));
    assert!(
        !exhaust(2, t(4 * day)).await.endpoint_disabled,
        "within the period"
    );
    let r = exhaust(3, t(5 * day + 1)).await;
    assert!(r.endpoint_disabled, "past the period");
    let got = store.get_webhook_endpoint(&e).await.unwrap().unwrap();
    assert!(!got.enabled);
    assert_eq!(got.disabled_reason.as_deref(), Some("failing"));

    // Deliveries of a disabled endpoint are not claimed; publishing skips it.
    let m = NewMessage::new(
        msg("policy-skip"),
        "policy.test",
        b"{}".to_vec(),
        t(6 * day),
    );
    assert_eq!(
        store.publish_webhook_message(m).await.unwrap().deliveries,
        0
    );
    assert_eq!(
        store
            .replay_webhook_message(&msg("policy-1"), t(6 * day))
            .await
            .unwrap(),
        0
    );

    // Re-enabling clears the clock; recover re-queues for one manual attempt.
    let mut on = got.clone();
    on.enabled = true;
    on.disabled_reason = None;
    store.update_webhook_endpoint(on).await.unwrap();
    assert_eq!(
        store
            .get_webhook_endpoint(&e)
            .await
            .unwrap()
            .unwrap()
            .first_failure_at,
        None
    );
    let n = store
        .recover_webhook_deliveries(&e, t(4 * day), t(7 * day))
        .await
        .unwrap();
    assert_eq!(n, 2, "policy-2 and policy-3, not policy-1");
    let d = store.webhook_deliveries(&msg("policy-3")).await.unwrap();
    assert_eq!(
        (d[0].state, d[0].trigger, d[0].next_attempt_at),
        (DeliveryState::Pending, Trigger::Manual, Some(t(7 * day)))
    );
    assert_eq!(
        store
            .replay_webhook_message(&msg("policy-1"), t(7 * day))
            .await
            .unwrap(),
        1
    );
    let d = store.webhook_deliveries(&msg("policy-1")).await.unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[1].trigger, d[1].state),
        (Trigger::Manual, DeliveryState::Pending)
    );

    // `Disable` (410) reports the transition once.
    let c = store
        .claim_webhook_deliveries("q", t(7 * day), t(8 * day), 1000)
        .await
        .unwrap();
    let c = c.into_iter().find(|c| c.endpoint == e).expect("claimed");
    let gone = |owner: &str, c: &crate::store::ClaimedDelivery| {
        completion(
            owner,
            c.delivery,
            &c.message,
            &e,
            c.attempts + 1,
            410,
            DeliveryOutcome::Failed,
            EndpointEffect::Disable {
                reason: "410 Gone".into(),
            },
            t(7 * day),
        )
    };
    let r = store
        .complete_webhook_attempts(vec![gone("q", &c)])
        .await
        .unwrap();
    assert!(r[0].endpoint_disabled);
    let ended = store.get_webhook_endpoint(&e).await.unwrap().unwrap();
    assert_eq!(ended.disabled_reason.as_deref(), Some("410 Gone"));

    // Purge keeps messages with pending deliveries.
    let purged = store.purge_webhook_messages(t(8 * day)).await.unwrap();
    assert!(purged >= 1);
    assert!(
        store
            .get_webhook_message(&msg("policy-skip"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_webhook_message(&msg("policy-3"))
            .await
            .unwrap()
            .is_some(),
        "still pending after recover"
    );
    assert!(store.delete_webhook_endpoint(&e).await.unwrap());
    assert!(
        store
            .webhook_deliveries(&msg("policy-3"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The replay guard lets a delivery id through once until it expires;
/// concurrent checks let exactly one through; purge removes expired
/// entries only.
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
