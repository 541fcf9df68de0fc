//! Conformance cases for the outbox: claims and leases, concurrent
//! claims, the disabling policy, replay and recovery.

use std::time::{Duration, SystemTime};

use super::join_all;
use super::webhook::{completion, endpoint, ep, msg, t};
use crate::store::{DeliveryOutcome, DeliveryState, EndpointEffect, NewMessage, Store, Trigger};

/// Claims lease due deliveries to one owner; a leased delivery is not
/// claimed again until the lease expires; completions apply only under
/// the lease and are logged in any case.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::webhook_claims_leases_and_completions(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::webhook_concurrent_claims_are_disjoint(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::webhook_disable_policy_replay_and_recover(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
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
