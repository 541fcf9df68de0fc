//! A webhook receiver in axum: verifies Standard Webhooks deliveries
//! (`webhook-*` headers, as consentry's dispatcher sends them) and Clerk /
//! Svix deliveries (`svix-*` headers) on the raw body, then drops replays
//! with a store-backed `ReplayGuard`.
//!
//! `cargo run --example webhook_receiver` starts the receiver on
//! 127.0.0.1, sends it a few deliveries itself (valid, Svix-style,
//! replayed, tampered, stale), prints what it answered, and exits. No
//! network beyond loopback.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use consentry::store::SqliteStore;
use consentry::webhook::{ReplayGuard, WebhookError, WebhookSecret, standard};
use consentry::{Error, Result};

/// What the handler needs: the secret(s) the sender signs with, and the
/// replay guard.
struct Receiver {
    secrets: Vec<WebhookSecret>,
    guard: ReplayGuard,
}

/// The handler. Verify on the raw bytes *before* parsing JSON.
async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let now = SystemTime::now();
    if let Err(e) = standard::verify(&r.secrets, &headers, &body, now) {
        // 401 and nothing else: never echo what was wrong in detail.
        return (StatusCode::UNAUTHORIZED, e.to_problem().title);
    }
    // The id is signed, so it is authentic now: the right replay key.
    let Some(id) = standard::delivery_id(&headers) else {
        return (StatusCode::BAD_REQUEST, "no delivery id".into());
    };
    match r.guard.check(id, now).await {
        Ok(()) => {}
        // Already processed: answer 2xx so an honest sender stops retrying.
        Err(Error::Webhook(WebhookError::Replayed)) => {
            return (StatusCode::OK, format!("{id}: duplicate, ignored"));
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.kind().to_string()),
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON".into());
    };
    (StatusCode::OK, format!("{id}: processed {}", event["type"]))
}

async fn post_to(url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.post(url).body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn signed(
    secret: &WebhookSecret,
    id: &str,
    at: SystemTime,
    body: &[u8],
    prefix: &str,
) -> Vec<(&'static str, String)> {
    let ts = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let signed = standard::sign(secret, id, ts, body).unwrap();
    let get = |n: &str| signed.get(n).unwrap().to_owned();
    match prefix {
        "svix" => vec![
            ("svix-id", get("webhook-id")),
            ("svix-timestamp", get("webhook-timestamp")),
            ("svix-signature", get("webhook-signature")),
        ],
        _ => signed.iter().map(|(n, v)| (n, v.to_owned())).collect(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // The secret comes from the sender (consentry's dispatcher shows it to
    // admins; Clerk shows it in its dashboard). Keep it in a secret store.
    let secret = WebhookSecret::generate()?;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("receiver.db")).await?;
    let state = Arc::new(Receiver {
        secrets: vec![secret.clone()],
        guard: ReplayGuard::new(store.clone(), "consentry")?,
    });
    let app = axum::Router::new()
        .route("/webhooks", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("receiver listening on {url}");

    let now = SystemTime::now();
    let body = br#"{"type":"user.created","data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"}}"#;
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a [u8]);
    let cases: Vec<Case<'_>> = vec![
        (
            "standard webhooks",
            signed(&secret, "msg_1", now, body, "webhook"),
            body,
        ),
        (
            "clerk / svix headers",
            signed(&secret, "msg_2", now, body, "svix"),
            body,
        ),
        (
            "the same delivery again",
            signed(&secret, "msg_1", now, body, "webhook"),
            body,
        ),
        (
            "tampered body",
            signed(&secret, "msg_3", now, body, "webhook"),
            br#"{"type":"user.deleted"}"#,
        ),
        (
            "ten minutes old",
            signed(
                &secret,
                "msg_4",
                now - Duration::from_secs(600),
                body,
                "webhook",
            ),
            body,
        ),
        ("unsigned", vec![], body),
    ];
    for (what, headers, payload) in cases {
        let (status, text) = post_to(&url, &headers, payload).await;
        println!("{what:>24}: {status} {text}");
    }
    let purged = state_purge(&store).await?;
    println!("replay guard: {purged} expired entries purged");
    store.close().await?;
    Ok(())
}

/// A maintenance job would run this periodically.
async fn state_purge(store: &SqliteStore) -> Result<u64> {
    let guard = ReplayGuard::new(store.clone(), "consentry")?;
    guard
        .purge(SystemTime::now() + guard.ttl() + Duration::from_secs(1))
        .await
}
