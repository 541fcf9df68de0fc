//! The dispatcher against real receivers on 127.0.0.1: retries with a
//! stable `webhook-id` and valid signatures, `429` with `Retry-After`,
//! timeouts, `410 Gone`, the disabling policy and its events, rotation,
//! replay and recovery, and two workers sharing one store.
#![cfg(all(feature = "reqwest", feature = "sqlite"))]
#![allow(clippy::unwrap_used)]

mod webhook_support;

use std::collections::HashMap;
use std::time::Duration;

use consentry::clock::{Clock, ManualClock, SystemClock};
use consentry::store::{DeliveryState, MemoryStore, SqliteStore, Store, Trigger};
use consentry::vault::Keyring;
use consentry::webhook::{
    Actor, DispatchEventKind, Dispatcher, DispatcherOptions, EndpointConfig, EndpointUpdate,
    WebhookSecret, standard,
};
use consentry::{EndpointId, MessageId};
use serde_json::json;
use webhook_support::{Receiver, Reply, start_time};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn options(schedule: &[u64]) -> DispatcherOptions {
    DispatcherOptions::default()
        .allow_insecure_loopback(true)
        .jitter(0.0)
        .retry_schedule(schedule.iter().map(|s| secs(*s)))
        .timeout(Duration::from_millis(500))
}

struct Fixture {
    dispatcher: Dispatcher,
    clock: ManualClock,
    admin: Actor,
    endpoint: EndpointId,
    secret: WebhookSecret,
}

async fn fixture(store: impl Store, receiver: &Receiver, opts: DispatcherOptions) -> Fixture {
    let clock = ManualClock::new(start_time());
    let dispatcher = Dispatcher::builder()
        .store(store)
        .keyring(Keyring::generate().unwrap())
        .clock(clock.clone())
        .options(opts)
        .build()
        .unwrap();
    let admin = Actor::admin("alice");
    let e = dispatcher
        .create_endpoint(&admin, EndpointConfig::new(receiver.url()))
        .await
        .unwrap();
    Fixture {
        dispatcher,
        clock,
        admin,
        endpoint: e.id,
        secret: e.secrets.unwrap().current,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_500s_then_the_third_attempt_delivers_with_one_id_and_valid_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("d.db")).await.unwrap();
    let receiver = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let f = fixture(store, &receiver, options(&[5, 300])).await;
    let payload = json!({"type": "user.created", "id": "u_1"});
    let id = f
        .dispatcher
        .publish("user.created", payload.clone(), None)
        .await
        .unwrap();

    let mut verified_at = Vec::new();
    for (advance, status) in [(0, 500), (5, 500), (300, 200)] {
        f.clock.advance(secs(advance));
        let early = f.dispatcher.run_once().await.unwrap();
        assert_eq!(early.attempted, 1, "attempt due after {advance} s");
        let last = receiver.received().pop().unwrap();
        assert_eq!(last.header("webhook-id"), id.as_str());
        // The receiver's check, on the raw body, at the attempt's time.
        standard::verify(&[&f.secret], &last.headers, &last.body, f.clock.now()).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&last.body).unwrap(),
            payload
        );
        assert_eq!(last.header("content-type"), "application/json");
        verified_at.push(last.header("webhook-timestamp").to_owned());
        assert_eq!(
            f.dispatcher.run_once().await.unwrap().attempted,
            0,
            "nothing else is due (status was {status})"
        );
    }
    assert_eq!(receiver.count(), 3);
    assert_eq!(verified_at.len(), 3);
    assert_ne!(
        verified_at[0], verified_at[2],
        "each attempt is signed anew"
    );

    let log = f.dispatcher.attempts(&f.admin, &id).await.unwrap();
    let seen: Vec<_> = log
        .iter()
        .map(|a| (a.attempt, a.status, a.trigger))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, Some(500), Trigger::Scheduled),
            (2, Some(500), Trigger::Scheduled),
            (3, Some(200), Trigger::Scheduled),
        ]
    );
    assert_eq!(log[0].response_text(), "status 500");
    assert_eq!(log[2].response_text(), "ok");
    assert_eq!(log[1].at, start_time() + secs(5));
    let d = f.dispatcher.deliveries(&f.admin, &id).await.unwrap();
    assert_eq!((d[0].state, d[0].attempts), (DeliveryState::Succeeded, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_waits_that_long_within_bounds() {
    let receiver = Receiver::start(vec![
        Reply::RetryAfter(429, "100".into()),
        Reply::RetryAfter(503, "100000".into()),
    ])
    .await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[5, 300])).await;
    let id = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    f.dispatcher.run_once().await.unwrap();
    let due = |f: &Fixture, id: MessageId| {
        let (d, a) = (f.dispatcher.clone(), f.admin.clone());
        async move { d.deliveries(&a, &id).await.unwrap()[0].next_attempt_at }
    };
    // 429: at least 60 s, Retry-After 100 s lies within [60, 120].
    assert_eq!(due(&f, id.clone()).await, Some(start_time() + secs(100)));
    f.clock.advance(secs(99));
    assert_eq!(f.dispatcher.run_once().await.unwrap().attempted, 0);
    f.clock.advance(secs(1));
    assert_eq!(f.dispatcher.run_once().await.unwrap().attempted, 1);
    // 503 asking for 100000 s: capped at twice the scheduled 300 s.
    assert_eq!(
        due(&f, id.clone()).await,
        Some(start_time() + secs(100 + 600))
    );
    f.clock.advance(secs(600));
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
    let statuses: Vec<_> = f
        .dispatcher
        .attempts(&f.admin, &id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, vec![Some(429), Some(503), Some(200)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out_and_is_retried_after_at_least_60_s() {
    let receiver = Receiver::start(vec![Reply::Slow(secs(3))]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[5])).await;
    let id = f
        .dispatcher
        .publish("a.b", json!({"n": 1}), None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = f.dispatcher.run_once().await.unwrap();
    assert!(
        started.elapsed() < secs(2),
        "the 500 ms timeout cut it short"
    );
    assert_eq!((r.attempted, r.failed), (1, 1));
    let log = f.dispatcher.attempts(&f.admin, &id).await.unwrap();
    assert_eq!(log[0].status, None);
    assert!(
        log[0].error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        log[0].error
    );
    let d = f.dispatcher.deliveries(&f.admin, &id).await.unwrap();
    assert_eq!(d[0].next_attempt_at, Some(start_time() + secs(60)));
    f.clock.advance(secs(59));
    assert_eq!(f.dispatcher.run_once().await.unwrap().attempted, 0);
    f.clock.advance(secs(1));
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
    assert_eq!(receiver.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_and_emits_endpoint_disabled() {
    let receiver = Receiver::start(vec![Reply::Status(410)]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[5, 300])).await;
    let mut events = f.dispatcher.subscribe();
    let id = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    f.dispatcher.run_once().await.unwrap();
    let e = f
        .dispatcher
        .get_endpoint(&f.admin, &f.endpoint)
        .await
        .unwrap();
    assert!(!e.enabled);
    assert!(e.disabled_reason.unwrap().contains("410"));
    let event = events.try_recv().unwrap();
    assert_eq!(event.kind, DispatchEventKind::EndpointDisabled);
    assert_eq!(event.endpoint, f.endpoint);
    let d = f.dispatcher.deliveries(&f.admin, &id).await.unwrap();
    assert_eq!(d[0].state, DeliveryState::Failed, "not retried");
    f.clock.advance(secs(3600));
    let later = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    assert!(
        f.dispatcher
            .deliveries(&f.admin, &later)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.dispatcher.run_once().await.unwrap().attempted, 0);
    assert_eq!(receiver.count(), 1);

    // Re-enabled by an admin, new messages flow again.
    f.dispatcher
        .update_endpoint(&f.admin, &f.endpoint, EndpointUpdate::new().enabled(true))
        .await
        .unwrap();
    f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_for_five_days_disables_and_events_are_emitted() {
    let receiver = Receiver::start(vec![Reply::Status(500); 6]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[1])).await;
    let mut events = f.dispatcher.subscribe();
    let exhaust = |f: &Fixture| {
        let (d, clock) = (f.dispatcher.clone(), f.clock.clone());
        async move {
            let id = d.publish("a.b", json!({}), None).await.unwrap();
            d.run_once().await.unwrap();
            clock.advance(secs(1));
            d.run_once().await.unwrap();
            id
        }
    };
    let first = exhaust(&f).await;
    let ev = events.try_recv().unwrap();
    assert_eq!(
        (ev.kind, ev.message),
        (DispatchEventKind::AttemptExhausted, Some(first.clone()))
    );
    let d = f.dispatcher.deliveries(&f.admin, &first).await.unwrap();
    assert_eq!((d[0].state, d[0].attempts), (DeliveryState::Exhausted, 2));
    let e = f
        .dispatcher
        .get_endpoint(&f.admin, &f.endpoint)
        .await
        .unwrap();
    assert_eq!(e.first_failure_at, Some(start_time() + secs(1)));
    assert!(e.enabled);

    f.clock.advance(secs(4 * 86_400));
    exhaust(&f).await;
    assert_eq!(
        events.try_recv().unwrap().kind,
        DispatchEventKind::AttemptExhausted
    );
    assert!(events.try_recv().is_err(), "4 days: still enabled");
    f.clock.advance(secs(86_400));
    exhaust(&f).await;
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            DispatchEventKind::AttemptExhausted,
            DispatchEventKind::EndpointDisabled
        ]
    );
    let e = f
        .dispatcher
        .get_endpoint(&f.admin, &f.endpoint)
        .await
        .unwrap();
    assert!(!e.enabled);

    // Recovery: enable, then re-queue what failed in the last 14 days.
    f.dispatcher
        .update_endpoint(&f.admin, &f.endpoint, EndpointUpdate::new().enabled(true))
        .await
        .unwrap();
    let since = f.clock.now() - secs(6 * 86_400);
    assert_eq!(
        f.dispatcher
            .recover(&f.admin, &f.endpoint, since)
            .await
            .unwrap(),
        3
    );
    let r = f.dispatcher.run_once().await.unwrap();
    assert_eq!(r.succeeded, 3);
    let log = f.dispatcher.attempts(&f.admin, &first).await.unwrap();
    assert_eq!(
        log.last().map(|a| (a.attempt, a.trigger)),
        Some((3, Trigger::Manual))
    );
    assert!(
        f.dispatcher
            .recover(&f.admin, &f.endpoint, f.clock.now() - secs(15 * 86_400))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_then_recovered_after_four_failures() {
    let receiver = Receiver::start(vec![Reply::Status(502); 4]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[1, 1, 1, 1, 1])).await;
    let mut events = f.dispatcher.subscribe();
    let id = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    for _ in 0..5 {
        f.dispatcher.run_once().await.unwrap();
        f.clock.advance(secs(1));
    }
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| (e.kind, e.message))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (DispatchEventKind::AttemptFailing, Some(id.clone())),
            (DispatchEventKind::AttemptRecovered, Some(id.clone())),
        ]
    );
    assert_eq!(receiver.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_signing_during_the_grace_period() {
    let receiver = Receiver::start(vec![]).await;
    let opts = options(&[5]).secret_grace(secs(3600));
    let f = fixture(MemoryStore::new(), &receiver, opts).await;
    let old = f.secret.clone();
    let rotated = f
        .dispatcher
        .rotate_secret(&f.admin, &f.endpoint, None)
        .await
        .unwrap();
    let new = rotated.secrets.unwrap().current;
    f.dispatcher
        .publish("a.b", json!({"n": 1}), None)
        .await
        .unwrap();
    f.dispatcher.run_once().await.unwrap();
    let got = receiver.received().pop().unwrap();
    let now = f.clock.now();
    standard::verify(&[&old], &got.headers, &got.body, now).unwrap();
    standard::verify(&[&new], &got.headers, &got.body, now).unwrap();

    f.clock.advance(secs(3601));
    f.dispatcher
        .publish("a.b", json!({"n": 2}), None)
        .await
        .unwrap();
    f.dispatcher.run_once().await.unwrap();
    let got = receiver.received().pop().unwrap();
    let now = f.clock.now();
    assert!(standard::verify(&[&old], &got.headers, &got.body, now).is_err());
    standard::verify(&[&new], &got.headers, &got.body, now).unwrap();
    let e = f
        .dispatcher
        .get_endpoint(&f.admin, &f.endpoint)
        .await
        .unwrap();
    assert!(
        e.secrets.unwrap().previous.is_empty(),
        "expired secrets are dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_the_same_message_again_once_and_custom_headers_go_along() {
    let receiver = Receiver::start(vec![]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[5])).await;
    f.dispatcher
        .update_endpoint(
            &f.admin,
            &f.endpoint,
            EndpointUpdate::new().headers([("X-Tenant", "acme")]),
        )
        .await
        .unwrap();
    let id = f
        .dispatcher
        .publish("a.b", json!({"n": 1}), None)
        .await
        .unwrap();
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
    assert!(f.dispatcher.replay(&Actor::user("bob"), &id).await.is_err());
    assert_eq!(f.dispatcher.replay(&f.admin, &id).await.unwrap(), 1);
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[1].header("x-tenant"), "acme");
    let triggers: Vec<_> = f
        .dispatcher
        .attempts(&f.admin, &id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.trigger)
        .collect();
    assert_eq!(triggers, vec![Trigger::Scheduled, Trigger::Manual]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_and_the_payload_limit() {
    let receiver = Receiver::start(vec![]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[5]).max_payload(64)).await;
    let a = f
        .dispatcher
        .publish("a.b", json!({"n": 1}), Some("k1"))
        .await
        .unwrap();
    let b = f
        .dispatcher
        .publish("a.b", json!({"n": 2}), Some("k1"))
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        f.dispatcher.run_once().await.unwrap().attempted,
        1,
        "one delivery"
    );
    f.clock.advance(secs(24 * 3600 + 1));
    let c = f
        .dispatcher
        .publish("a.b", json!({"n": 3}), Some("k1"))
        .await
        .unwrap();
    assert_ne!(a, c, "the window is over");
    let big = json!({"text": "x".repeat(64)});
    let err = f.dispatcher.publish("a.b", big, None).await.unwrap_err();
    assert_eq!(err.kind(), consentry::ErrorKind::InvalidInput);
    assert!(
        f.dispatcher
            .publish("bad type", json!({}), None)
            .await
            .is_err()
    );
}

/// Two dispatchers (as two processes would) run `run()` against one
/// SQLite file: every message arrives exactly once (no crash, so no
/// lease expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_store_never_send_one_attempt_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let receiver = Receiver::start(vec![]).await;
    let keys = Keyring::generate().unwrap();
    let opts = options(&[1])
        .poll_interval(Duration::from_millis(5))
        .concurrency(8);
    let build = |store: SqliteStore| {
        Dispatcher::builder()
            .store(store)
            .keyring(keys.clone())
            .clock(SystemClock)
            .options(opts.clone())
            .build()
            .unwrap()
    };
    let one = build(SqliteStore::open(&path).await.unwrap());
    let two = build(SqliteStore::open(&path).await.unwrap());
    one.create_endpoint(&Actor::admin("a"), EndpointConfig::new(receiver.url()))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(one.publish("a.b", json!({ "i": i }), None).await.unwrap());
    }
    let workers = [tokio::spawn(one.run()), tokio::spawn(two.run())];
    let deadline = std::time::Instant::now() + secs(60);
    while receiver.count() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} arrived",
            receiver.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for w in workers {
        w.abort();
    }
    let mut per_id: HashMap<String, u32> = HashMap::new();
    for r in receiver.received() {
        *per_id.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 300);
    assert!(per_id.values().all(|n| *n == 1), "a message arrived twice");
    for id in ids {
        assert!(per_id.contains_key(id.as_str()));
    }
}

/// Svix's insta-retry: a connection that fails fast is tried once more at
/// once, within the same attempt; a timeout or a slow connect failure is
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_connect_failure_is_retried_once_at_once() {
    use consentry::http::{self, HttpError, HttpErrorKind, HttpRequest, Response};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    // Each case: what the first call does, and the HTTP calls and attempt
    // state expected after one run.
    for (case, first, expect_calls, expect_state) in [
        ("refused fast", "refused", 2, DeliveryState::Succeeded),
        (
            "refused after 1.1 s",
            "slow_refused",
            1,
            DeliveryState::Pending,
        ),
        ("timed out", "timeout", 1, DeliveryState::Pending),
    ] {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let client = http::from_fn(move |req: HttpRequest| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(!req.body().is_empty(), "the payload is sent every time");
                match (n, first) {
                    (0, "refused") => Err(HttpError::from_kind(HttpErrorKind::Connect)),
                    (0, "slow_refused") => {
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                        Err(HttpError::from_kind(HttpErrorKind::Connect))
                    }
                    (0, _) => Err(HttpError::from_kind(HttpErrorKind::Timeout)),
                    _ => Ok(Response::new(b"ok".to_vec())),
                }
            }
        });
        let clock = ManualClock::new(start_time());
        let dispatcher = Dispatcher::builder()
            .store(MemoryStore::new())
            .keyring(Keyring::generate().unwrap())
            .clock(clock.clone())
            .http(client)
            .options(options(&[5]))
            .build()
            .unwrap();
        let admin = Actor::admin("alice");
        dispatcher
            .create_endpoint(&admin, EndpointConfig::new("https://hooks.example/in"))
            .await
            .unwrap();
        let id = dispatcher
            .publish("user.created", json!({"id": "u_1"}), None)
            .await
            .unwrap();
        assert_eq!(dispatcher.run_once().await.unwrap().attempted, 1, "{case}");
        assert_eq!(calls.load(Ordering::SeqCst), expect_calls, "{case}");
        let d = dispatcher.deliveries(&admin, &id).await.unwrap();
        assert_eq!((d[0].state, d[0].attempts), (expect_state, 1), "{case}");
    }
}

/// The default client (`WebhookClient`) never follows a redirect: the
/// `3xx` is the attempt's answer, a failure retried at the endpoint's own
/// URL, and the `Location` target never hears of the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_the_attempt_fails_with_its_status() {
    for code in [307, 302] {
        let target = Receiver::start(vec![]).await;
        let receiver = Receiver::start(vec![Reply::Redirect(code, target.url())]).await;
        let f = fixture(MemoryStore::new(), &receiver, options(&[5])).await;
        let id = f
            .dispatcher
            .publish("a.b", json!({"n": 1}), None)
            .await
            .unwrap();
        let r = f.dispatcher.run_once().await.unwrap();
        assert_eq!((r.attempted, r.succeeded, r.failed), (1, 0, 1), "{code}");
        assert_eq!(receiver.count(), 1, "{code}");
        assert_eq!(target.count(), 0, "{code}: the redirect was followed");
        let log = f.dispatcher.attempts(&f.admin, &id).await.unwrap();
        assert_eq!(log.len(), 1, "{code}");
        assert_eq!(log[0].status, Some(code));
        assert_eq!(log[0].response_text(), "moved");
        let d = f.dispatcher.deliveries(&f.admin, &id).await.unwrap();
        assert_eq!(
            (d[0].state, d[0].attempts, d[0].next_attempt_at),
            (DeliveryState::Pending, 1, Some(start_time() + secs(5))),
            "{code}: a failure, retried on schedule"
        );
        // The retry goes to the endpoint's URL again, never to the Location.
        f.clock.advance(secs(5));
        assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
        assert_eq!((receiver.count(), target.count()), (2, 0), "{code}");
    }
}

/// A response body far over the limit is kept as its first
/// `MAX_RESPONSE_EXCERPT` (20,000) bytes, for a failure and for a success
/// (which stays a success), through the SQLite attempt log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_response_body_is_logged_truncated_to_20_kb() {
    use consentry::store::MAX_RESPONSE_EXCERPT;
    assert_eq!(MAX_RESPONSE_EXCERPT, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("d.db")).await.unwrap();
    let receiver = Receiver::start(vec![Reply::Big(500, 1_000_000), Reply::Big(200, 50_000)]).await;
    let f = fixture(store, &receiver, options(&[5])).await;
    let id = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    assert_eq!(f.dispatcher.run_once().await.unwrap().failed, 1);
    f.clock.advance(secs(5));
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 1);
    let prefix: Vec<u8> = b"0123456789"
        .iter()
        .copied()
        .cycle()
        .take(MAX_RESPONSE_EXCERPT)
        .collect();
    let log = f.dispatcher.attempts(&f.admin, &id).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(500), Some(200)]
    );
    for a in &log {
        assert_eq!(a.response.len(), MAX_RESPONSE_EXCERPT, "{:?}", a.status);
        assert!(a.response == prefix, "the excerpt is the body's start");
    }
}

/// With a limit of 5 per second, the limited receiver never sees more than
/// 5 deliveries in any one-second window (by the dispatcher's manual
/// clock, which the receiver stamps each request with), yet gets them at
/// about that rate; an endpoint without a limit gets all of them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_in_every_one_second_window_and_spares_other_endpoints() {
    const LIMIT: usize = 5;
    const MESSAGES: usize = 30;
    let clock = ManualClock::new(start_time());
    let limited = Receiver::start_with_clock(clock.clone()).await;
    let free = Receiver::start_with_clock(clock.clone()).await;
    let dispatcher = Dispatcher::builder()
        .store(MemoryStore::new())
        .keyring(Keyring::generate().unwrap())
        .clock(clock.clone())
        .options(options(&[5]))
        .build()
        .unwrap();
    let admin = Actor::admin("alice");
    dispatcher
        .create_endpoint(
            &admin,
            EndpointConfig::new(limited.url()).rate_limit(LIMIT as u32),
        )
        .await
        .unwrap();
    dispatcher
        .create_endpoint(&admin, EndpointConfig::new(free.url()))
        .await
        .unwrap();
    for i in 0..MESSAGES {
        dispatcher
            .publish("a.b", json!({ "i": i }), None)
            .await
            .unwrap();
    }
    dispatcher.run_once().await.unwrap();
    assert_eq!(
        free.count(),
        MESSAGES,
        "the unlimited endpoint is not slowed"
    );
    assert!(free.received().iter().all(|r| r.at == start_time()));

    let step = Duration::from_millis(50);
    let mut steps = 0;
    while limited.count() < MESSAGES {
        steps += 1;
        assert!(steps <= 400, "only {} arrived in 20 s", limited.count());
        clock.advance(step);
        dispatcher.run_once().await.unwrap();
    }
    let mut stamps: Vec<_> = limited.received().iter().map(|r| r.at).collect();
    stamps.sort();
    for from in &stamps {
        let window = stamps
            .iter()
            .filter(|t| *t >= from && **t < *from + secs(1))
            .count();
        assert!(
            window <= LIMIT,
            "{window} deliveries in the second from {:?}",
            from.duration_since(start_time()).unwrap()
        );
    }
    // A limit, not a stall: 30 at 5 per second are done within 6 s.
    let last = stamps.last().unwrap().duration_since(start_time()).unwrap();
    assert!(last < secs(6), "the last delivery came at {last:?}");
    let mut ids: Vec<_> = limited
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MESSAGES, "each message once");
}

/// Publishes a message and lets its two attempts (schedule `[1]`) fail.
async fn exhaust(f: &Fixture) -> MessageId {
    let id = f.dispatcher.publish("a.b", json!({}), None).await.unwrap();
    assert_eq!(f.dispatcher.run_once().await.unwrap().failed, 1);
    f.clock.advance(secs(1));
    assert_eq!(f.dispatcher.run_once().await.unwrap().failed, 1);
    let d = f.dispatcher.deliveries(&f.admin, &id).await.unwrap();
    assert_eq!(d[0].state, DeliveryState::Exhausted);
    id
}

async fn first_failure(f: &Fixture) -> (bool, Option<std::time::SystemTime>) {
    let e = f
        .dispatcher
        .get_endpoint(&f.admin, &f.endpoint)
        .await
        .unwrap();
    (e.enabled, e.first_failure_at)
}

const DAY: u64 = 86_400;

/// Exhaustions spread over ten days, with a success now and then, never
/// disable the endpoint: each success restarts the five-day clock. Without
/// one, the same pattern disables it.
async fn intermittent_failures(store: impl Store) {
    let mut script = Vec::new();
    for _ in 0..2 {
        script.extend([Reply::Status(500), Reply::Status(500), Reply::Status(200)]);
    }
    script.extend(vec![Reply::Status(500); 6]);
    let receiver = Receiver::start(script).await;
    let f = fixture(store, &receiver, options(&[1])).await;
    let mut events = f.dispatcher.subscribe();
    let t = |s: u64| Some(start_time() + secs(s));
    let succeed = |f: &Fixture| {
        let d = f.dispatcher.clone();
        async move {
            d.publish("a.b", json!({}), None).await.unwrap();
            assert_eq!(d.run_once().await.unwrap().succeeded, 1);
        }
    };

    exhaust(&f).await; // day 0
    assert_eq!(first_failure(&f).await, (true, t(1)));
    f.clock.advance(secs(3 * DAY));
    succeed(&f).await; // day 3
    assert_eq!(
        first_failure(&f).await,
        (true, None),
        "the success reset it"
    );
    f.clock.advance(secs(DAY));
    exhaust(&f).await; // day 4
    assert_eq!(first_failure(&f).await, (true, t(4 * DAY + 2)));
    f.clock.advance(secs(3 * DAY));
    succeed(&f).await; // day 7
    f.clock.advance(secs(DAY));
    exhaust(&f).await; // day 8
    f.clock.advance(secs(2 * DAY));
    exhaust(&f).await; // day 10: failing on and off for ten days
    assert_eq!(first_failure(&f).await, (true, t(8 * DAY + 3)));
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert!(
        !kinds.contains(&DispatchEventKind::EndpointDisabled),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == DispatchEventKind::AttemptExhausted)
            .count(),
        4
    );

    // The clock still runs: five days after day 8 with no success, off.
    f.clock.advance(secs(3 * DAY));
    exhaust(&f).await; // day 13
    assert!(!first_failure(&f).await.0, "disabled");
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            DispatchEventKind::AttemptExhausted,
            DispatchEventKind::EndpointDisabled
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_in_between_resets_the_failure_clock_memory_store() {
    intermittent_failures(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_in_between_resets_the_failure_clock_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    intermittent_failures(SqliteStore::open(dir.path().join("d.db")).await.unwrap()).await;
}

/// The forgiven path of the exhaustion rule: an exhaustion more than twice
/// the period (10 days) after the first failure, with nothing in between,
/// restarts the clock instead of disabling; five days after that restart,
/// the endpoint is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_first_failure_is_forgiven_and_the_clock_restarts() {
    let receiver = Receiver::start(vec![Reply::Status(500); 6]).await;
    let f = fixture(MemoryStore::new(), &receiver, options(&[1])).await;
    let mut events = f.dispatcher.subscribe();
    exhaust(&f).await;
    assert_eq!(
        first_failure(&f).await,
        (true, Some(start_time() + secs(1)))
    );
    f.clock.advance(secs(11 * DAY));
    exhaust(&f).await;
    assert_eq!(
        first_failure(&f).await,
        (true, Some(start_time() + secs(11 * DAY + 2))),
        "forgiven: the clock restarts at this exhaustion"
    );
    f.clock.advance(secs(5 * DAY));
    exhaust(&f).await;
    assert!(!first_failure(&f).await.0, "5 days after the restart");
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            DispatchEventKind::AttemptExhausted,
            DispatchEventKind::AttemptExhausted,
            DispatchEventKind::AttemptExhausted,
            DispatchEventKind::EndpointDisabled
        ]
    );
}

/// A `429` without `Retry-After` waits at least the 60 s overload penalty,
/// not the schedule's 5 s, with the default ±20 % jitter too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_is_retried_no_sooner_than_60_s() {
    let receiver = Receiver::start(vec![Reply::Status(429); 5]).await;
    let f = fixture(
        MemoryStore::new(),
        &receiver,
        options(&[5, 300]).jitter(0.2),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            f.dispatcher
                .publish("a.b", json!({ "i": i }), None)
                .await
                .unwrap(),
        );
    }
    let r = f.dispatcher.run_once().await.unwrap();
    assert_eq!((r.attempted, r.failed), (5, 5));
    for id in &ids {
        let d = f.dispatcher.deliveries(&f.admin, id).await.unwrap();
        let due = d[0].next_attempt_at.unwrap().duration_since(start_time());
        let due = due.unwrap();
        assert!(due >= secs(60) && due <= secs(72), "due after {due:?}");
    }
    f.clock.advance(Duration::from_millis(59_999));
    assert_eq!(f.dispatcher.run_once().await.unwrap().attempted, 0);
    f.clock.advance(secs(13));
    assert_eq!(f.dispatcher.run_once().await.unwrap().succeeded, 5);
    for id in &ids {
        let log = f.dispatcher.attempts(&f.admin, id).await.unwrap();
        assert_eq!(
            log.iter().map(|a| a.status).collect::<Vec<_>>(),
            [Some(429), Some(200)]
        );
        assert!(log[1].at.duration_since(log[0].at).unwrap() >= secs(60));
    }
    assert_eq!(receiver.count(), 10);
}
