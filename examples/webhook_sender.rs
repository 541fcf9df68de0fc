//! Sending webhooks: register an endpoint as an admin, publish events,
//! let the dispatcher deliver them, read the attempt log.
//!
//! `cargo run --example webhook_sender` starts a receiver on 127.0.0.1 in
//! this process (it fails its first request with 503, to show a retry),
//! delivers to it with loopback explicitly allowed, prints the attempt
//! log, and exits. No network beyond loopback.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consentry::store::SqliteStore;
use consentry::vault::Keyring;
use consentry::webhook::{
    Actor, Dispatcher, DispatcherOptions, EndpointConfig, WebhookSecret, standard,
};
use consentry::{Error, Result};

/// A receiver that answers 503 to its first request, then verifies and
/// accepts.
async fn start_receiver(
    secret: Arc<std::sync::OnceLock<WebhookSecret>>,
) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let state = (secret, seen.clone());
    let app = axum::Router::new()
        .fallback(
            |State((secret, seen)): State<(
                Arc<std::sync::OnceLock<WebhookSecret>>,
                Arc<AtomicUsize>,
            )>,
             headers: HeaderMap,
             body: Bytes| async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (StatusCode::SERVICE_UNAVAILABLE, "warming up");
                }
                let Some(secret) = secret.get() else {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "no secret yet");
                };
                match standard::verify(&[secret], &headers, &body, SystemTime::now()) {
                    Ok(()) => (StatusCode::NO_CONTENT, ""),
                    Err(_) => (StatusCode::UNAUTHORIZED, "bad signature"),
                }
            },
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/consentry",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::main]
async fn main() -> Result<()> {
    let secret_slot = Arc::new(std::sync::OnceLock::new());
    let (url, seen) = start_receiver(secret_slot.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("consentry.db")).await?;
    // In production: Keyring::from_env("CONSENTRY_KEYS")? and the default
    // options (https only, loopback and private networks refused).
    let options = DispatcherOptions::default()
        .allow_insecure_loopback(true) // the receiver is on 127.0.0.1
        .retry_schedule([Duration::from_millis(300), Duration::from_secs(5)])
        .poll_interval(Duration::from_millis(50));
    let dispatcher = Dispatcher::builder()
        .store(store.clone())
        .keyring(Keyring::generate()?)
        .options(options)
        .build()?;

    // Only admins manage endpoints.
    let admin = Actor::admin("alice@example.com");
    let refused = dispatcher
        .create_endpoint(&Actor::user("bob"), EndpointConfig::new(url.clone()))
        .await;
    println!("bob creates an endpoint: {}", refused.unwrap_err());
    let endpoint = dispatcher
        .create_endpoint(
            &admin,
            EndpointConfig::new(url)
                .event_types(["invoice.paid"])
                .header("x-tenant", "acme"),
        )
        .await?;
    let secrets = endpoint
        .secrets
        .ok_or(Error::Internal("admins see the secret"))?;
    secret_slot.set(secrets.current.clone()).ok();
    println!("endpoint {} -> {}", endpoint.id, endpoint.url);

    let mut events = dispatcher.subscribe();
    let worker = tokio::spawn(dispatcher.run());
    let paid = dispatcher
        .publish(
            "invoice.paid",
            serde_json::json!({"invoice": "in_1", "amount": 4200}),
            Some("in_1-paid"),
        )
        .await?;
    let again = dispatcher
        .publish(
            "invoice.paid",
            serde_json::json!({"invoice": "in_1", "amount": 4200}),
            Some("in_1-paid"),
        )
        .await?;
    println!("published {paid} (a retry of the same request gave {again})");
    let ignored = dispatcher
        .publish("user.created", serde_json::json!({"id": "u_1"}), None)
        .await?;
    println!("published {ignored}: no endpoint subscribes to user.created");

    // Wait (bounded) for the retry to succeed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let done = dispatcher.deliveries(&admin, &paid).await?;
        if done
            .iter()
            .all(|d| d.state == consentry::store::DeliveryState::Succeeded)
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Internal("the delivery did not complete in 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();

    println!("attempt log of {paid}:");
    for a in dispatcher.attempts(&admin, &paid).await? {
        println!(
            "  #{} {:<9} status {:<4} in {:>6.1} ms  {:?}",
            a.attempt,
            a.trigger.as_str(),
            a.status.map_or("-".to_owned(), |s| s.to_string()),
            a.duration.as_secs_f64() * 1000.0,
            a.response_text(),
        );
    }
    println!("the receiver saw {} requests", seen.load(Ordering::SeqCst));
    while let Ok(event) = events.try_recv() {
        println!("event: {} {}", event.kind, event.detail.unwrap_or_default());
    }
    Ok(())
}
