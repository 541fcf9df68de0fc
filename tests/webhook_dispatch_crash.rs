//! A dispatcher process killed with SIGKILL while delivering 1,000
//! messages, then restarted, delivers every message at least once; the
//! duplicates (same `webhook-id` twice) are counted and printed.
//!
//! The receiver runs in this process; the dispatcher runs in a child: the
//! test binary itself, started with `--ignored` and an environment
//! variable, as `tests/vault_crash.rs` does.
#![cfg(all(feature = "sqlite", feature = "reqwest", unix))]
#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod webhook_support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consentry::secrecy::ExposeSecret;
use consentry::store::{DeliveryState, SqliteStore, WebhookOutboxStore};
use consentry::vault::Keyring;
use consentry::webhook::{Actor, Dispatcher, DispatcherOptions, EndpointConfig, standard};
use webhook_support::Receiver;

const DB_ENV: &str = "CONSENTRY_DISPATCH_CRASH_DB";
const KEYS_ENV: &str = "CONSENTRY_DISPATCH_CRASH_KEYS";
const MESSAGES: usize = 1000;

fn options() -> DispatcherOptions {
    DispatcherOptions::default()
        .allow_insecure_loopback(true)
        .retry_schedule([Duration::from_millis(200); 7])
        .timeout(Duration::from_secs(2))
        .lease(Duration::from_secs(3))
        .poll_interval(Duration::from_millis(20))
        .concurrency(16)
}

/// The child: a dispatcher running `run()` until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by sigkill_while_delivering_loses_no_message as a child process"]
async fn child_dispatcher() {
    let db = std::env::var(DB_ENV).expect("child needs the database path");
    let keys = Keyring::from_env(KEYS_ENV).unwrap();
    let dispatcher = Dispatcher::builder()
        .store(SqliteStore::open(&db).await.unwrap())
        .keyring(keys)
        .options(options())
        .build()
        .unwrap();
    dispatcher.run().await;
}

fn spawn_child(db: &std::path::Path, keys: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_dispatcher",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, db)
        .env(KEYS_ENV, keys)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_delivering_loses_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dispatch.db");
    let ring = Keyring::generate().unwrap();
    let keys = ring.export();
    // Every request takes a few milliseconds, so the kill lands mid-run.
    let receiver = Receiver::start_slow(Duration::from_millis(4)).await;

    let store = SqliteStore::open(&db).await.unwrap();
    let publisher = Dispatcher::builder()
        .store(store.clone())
        .keyring(ring.clone())
        .options(options())
        .build()
        .unwrap();
    let endpoint = publisher
        .create_endpoint(&Actor::admin("ops"), EndpointConfig::new(receiver.url()))
        .await
        .unwrap();
    let secret = endpoint.secrets.unwrap().current;
    let mut ids = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let id = publisher
            .publish("order.paid", serde_json::json!({ "order": i }), None)
            .await
            .unwrap();
        ids.push(id);
    }

    // Run 1: kill once between a quarter and three quarters arrived.
    let mut child = spawn_child(&db, keys.expose_secret());
    wait_until("the first deliveries", Duration::from_secs(60), || {
        receiver.count() >= MESSAGES / 4
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());
    let at_kill = receiver.count();
    println!("killed the dispatcher after {at_kill} requests");
    assert!(
        at_kill < MESSAGES,
        "the kill came too late to test anything"
    );

    // Run 2: a new process takes over (expired leases included).
    let mut child = spawn_child(&db, keys.expose_secret());
    let distinct = || {
        receiver
            .received()
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    wait_until("every message", Duration::from_secs(120), || {
        distinct() >= MESSAGES
    })
    .await;
    // Let it record the last outcomes, then check the store says done.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut pending = 0;
        for id in &ids {
            for d in store.webhook_deliveries(id).await.unwrap() {
                if d.state != DeliveryState::Succeeded {
                    pending += 1;
                }
            }
        }
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries never recorded as done"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();

    let received = receiver.received();
    let mut per_id: HashMap<String, u32> = HashMap::new();
    for r in &received {
        // Every request, first or duplicate, is authentic.
        let now = std::time::SystemTime::now();
        standard::verify(&[&secret], &r.headers, &r.body, now).unwrap();
        *per_id.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    for id in &ids {
        assert!(per_id.contains_key(id.as_str()), "message {id} was lost");
    }
    assert_eq!(per_id.len(), MESSAGES, "only published ids arrive");
    let duplicates: u32 = per_id.values().map(|n| n - 1).sum();
    println!(
        "{MESSAGES} messages, {} requests, {duplicates} duplicates (same webhook-id), {} messages delivered more than once",
        received.len(),
        per_id.values().filter(|n| **n > 1).count()
    );
    store.close().await.unwrap();
}
