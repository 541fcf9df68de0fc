//! The whole lifecycle in one run, against an in-process test provider,
//! on an SQLite file on disk: connect, consent, sync, read, report,
//! webhooks, revoke, disconnect, audit.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! No network, no account: `consentry::testing::TestProvider` plays the
//! OAuth provider (and its user) on 127.0.0.1. In an application the
//! connector comes from `Catalogue::builtin()` (Google, Microsoft, ...), the
//! keyring from `Keyring::from_env("CONSENTRY_KEYS")`, and the callback URL
//! from your web framework's redirect route.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consentry::connector::{Catalogue, ClientRegistration};
use consentry::http::ReqwestClient;
use consentry::store::{DeliveryState, SqliteStore};
use consentry::testing::{TestClient, TestProvider};
use consentry::vault::Keyring;
use consentry::webhook::{
    Actor, Dispatcher, DispatcherOptions, EndpointConfig, WebhookSecret, standard,
};
use consentry::{Error, Integrations, Purpose, UserId};
use tokio::sync::{OnceCell, mpsc};

const DOCS: &str = "https://docs.rs/consentry/latest/consentry";

/// Where the walkthrough's lines go: stdout here, a `Vec` in
/// `tests/quickstart.rs`.
type Out<'a> = &'a mut (dyn FnMut(&str) + Send);

macro_rules! say {
    ($out:expr, $($arg:tt)*) => { ($out)(&format!($($arg)*)) };
}

fn step(out: Out<'_>, n: u32, title: &str, api: &str) {
    say!(out, "\n{n:>2}. {title}\n    API: {DOCS}/{api}");
}

/// A receiver that accepts only deliveries signed with its endpoint's
/// secret (Standard Webhooks), verified on the raw body.
async fn start_receiver(
    secret: Arc<OnceCell<WebhookSecret>>,
    verified: mpsc::Sender<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let app = axum::Router::new()
        .fallback(
            |State((secret, verified)): State<(
                Arc<OnceCell<WebhookSecret>>,
                mpsc::Sender<String>,
            )>,
             headers: HeaderMap,
             body: Bytes| async move {
                let Some(secret) = secret.get() else {
                    return StatusCode::SERVICE_UNAVAILABLE;
                };
                if standard::verify(&[secret], &headers, &body, SystemTime::now()).is_err() {
                    return StatusCode::UNAUTHORIZED;
                }
                let _ = verified
                    .send(String::from_utf8_lossy(&body).into_owned())
                    .await;
                StatusCode::NO_CONTENT
            },
        )
        .with_state((secret, verified));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&mut |line| println!("{line}")).await
}

/// The walkthrough.
pub async fn run(out: Out<'_>) -> Result<(), Box<dyn std::error::Error>> {
    say!(
        out,
        "consentry quickstart: one user, one provider, the whole lifecycle."
    );

    step(
        out,
        1,
        "Start a test OAuth provider on 127.0.0.1",
        "testing/struct.TestProvider.html",
    );
    let provider = TestProvider::start().await?;
    let client = TestClient::basic();
    say!(
        out,
        "    issuer {} (discovery, PKCE, rotation, revocation, a paged /api/items)",
        provider.issuer()
    );

    step(
        out,
        2,
        "Describe it as a connector in a TOML catalogue, open the store",
        "connector/struct.Catalogue.html",
    );
    let purpose = Purpose::new("matching")?;
    let toml = provider.catalogue_toml("books", &client, purpose.as_str());
    let registration = ClientRegistration::new(client.id()).with_secret(
        client
            .client_secret()
            .ok_or(Error::Internal("the basic client has a secret"))?,
    );
    let connector = Catalogue::from_toml(&toml)?.connector("books", registration)?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("consentry.db");
    let store = SqliteStore::open(&db).await?;
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate()?) // production: Keyring::from_env("CONSENTRY_KEYS")?
        .http(ReqwestClient::new()?)
        .connector(connector)
        .redirect_uri(provider.redirect_uri())
        .build()?;
    say!(
        out,
        "    SQLite file {}; connector `books` declares stream `items` for purpose `{purpose}`",
        db.display()
    );

    step(
        out,
        3,
        "Connect: authorization code + PKCE; the scripted user consents",
        "struct.Integrations.html#method.begin_connect",
    );
    let user = UserId::new("ada")?;
    let books = "books".parse()?;
    let start = integrations.begin_connect(&user, &books, &[]).await?;
    say!(
        out,
        "    the browser goes to {}?…",
        start.authorize_url.as_str().split('?').next().unwrap_or("")
    );
    let callback = provider.authorize(&start.authorize_url, "ada")?;
    let connection = integrations.complete_connect(&user, &callback).await?;
    say!(
        out,
        "    connected {} as {} ({})",
        connection.id,
        connection.account.id,
        connection.account.email.as_deref().unwrap_or("no email")
    );

    step(
        out,
        4,
        "List the user's connections",
        "struct.Integrations.html#method.connections",
    );
    for c in integrations.connections(&user).await? {
        let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
        say!(
            out,
            "    {} {} status={:?} scopes=[{}]",
            c.id,
            c.connector,
            c.status,
            scopes.join(" ")
        );
    }

    step(
        out,
        5,
        "Try to read without consent: refused",
        "enum.Error.html#variant.ConsentRequired",
    );
    let refused = integrations
        .access_token(&user, &connection.id, &purpose)
        .await;
    let Err(err) = refused else {
        return Err("a token was handed out without consent".into());
    };
    say!(out, "    error: {err}");
    say!(
        out,
        "    RFC 9457 problem: {}",
        serde_json::to_string(&err.to_problem())?
    );

    step(
        out,
        6,
        "Grant consent for the purpose",
        "struct.Integrations.html#method.grant_consent",
    );
    integrations
        .grant_consent(&user, &connection.id, &purpose)
        .await?;
    say!(
        out,
        "    consented purposes: {:?}",
        integrations
            .consented_purposes(&user, &connection.id)
            .await?
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
    );

    step(
        out,
        7,
        "Sync the declared stream (page-token paging over /api/items)",
        "struct.Integrations.html#method.sync_now",
    );
    let sync = integrations
        .sync_now(&user, &connection.id, "items", &purpose)
        .await?;
    say!(
        out,
        "    {:?}: {} pages, {} records stored",
        sync.status,
        sync.pages,
        sync.upserted
    );

    step(
        out,
        8,
        "Read the records under that purpose",
        "struct.Integrations.html#method.records",
    );
    let held = integrations
        .records(&user, &connection.id, "items", &purpose)
        .await?;
    for r in held.iter().take(3) {
        say!(out, "    {} {}", r.id, r.data);
    }
    say!(out, "    … {} records in all", held.len());

    step(
        out,
        9,
        "The transparency report: what is held, why, and every access",
        "struct.Integrations.html#method.report",
    );
    let report = integrations.report(&user).await?;
    for c in &report.connections {
        for p in &c.purposes {
            say!(out, "    purpose {}: consented={}", p.purpose, p.consented);
        }
        for s in &c.streams {
            say!(out, "    stream {}: {:?}", s.stream, s.records_by_purpose);
        }
        for a in &c.access_log {
            say!(
                out,
                "    access: {} read {} record(s) of {} for {}",
                a.component,
                a.count,
                a.stream,
                a.purpose
            );
        }
    }

    step(
        out,
        10,
        "Publish a webhook; a local receiver verifies it (Standard Webhooks)",
        "webhook/struct.Dispatcher.html",
    );
    let secret_slot = Arc::new(OnceCell::new());
    let (tx, mut verified) = mpsc::channel(4);
    let url = start_receiver(secret_slot.clone(), tx).await?;
    let dispatcher = Dispatcher::builder()
        .store(store.clone())
        .keyring(Keyring::generate()?)
        .options(
            DispatcherOptions::default()
                .allow_insecure_loopback(true)
                .poll_interval(Duration::from_millis(50)),
        )
        .build()?;
    let admin = Actor::admin("admin@example.test");
    let endpoint = dispatcher
        .create_endpoint(&admin, EndpointConfig::new(url.clone()))
        .await?;
    let secrets = endpoint
        .secrets
        .ok_or(Error::Internal("admins see the secret"))?;
    let _ = secret_slot.set(secrets.current.clone());
    let worker = tokio::spawn(dispatcher.run());
    let message = dispatcher
        .publish(
            "sync.completed",
            serde_json::json!({"user": "ada", "stream": "items", "records": held.len()}),
            None,
        )
        .await?;
    let body = tokio::time::timeout(Duration::from_secs(10), verified.recv())
        .await?
        .ok_or("receiver stopped")?;
    say!(out, "    {url} verified message {message}: {body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !dispatcher
        .deliveries(&admin, &message)
        .await?
        .iter()
        .any(|d| d.state == DeliveryState::Succeeded)
    {
        if tokio::time::Instant::now() > deadline {
            return Err("the delivery was not marked succeeded".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    say!(out, "    delivery log: succeeded");

    step(
        out,
        11,
        "Revoke consent: what was held only for it is deleted",
        "struct.Integrations.html#method.revoke_consent",
    );
    integrations
        .revoke_consent(&user, &connection.id, &purpose)
        .await?;
    let after = integrations.report(&user).await?;
    let left: u64 = after
        .connections
        .iter()
        .flat_map(|c| &c.streams)
        .flat_map(|s| &s.records_by_purpose)
        .map(|(_, n)| n)
        .sum();
    say!(out, "    records held now: {left}");
    let again = integrations
        .records(&user, &connection.id, "items", &purpose)
        .await;
    say!(
        out,
        "    reading again: {}",
        again.err().map_or("allowed?!".into(), |e| e.to_string())
    );

    step(
        out,
        12,
        "Disconnect: revoke at the provider, delete locally, report",
        "struct.Integrations.html#method.disconnect",
    );
    let report = integrations.disconnect(&user, &connection.id).await?;
    say!(
        out,
        "    refresh token: {:?}, access token: {:?}",
        report.refresh_token,
        report.access_token
    );
    say!(
        out,
        "    deleted: connection={}, {} credentials, {} consent entries, {} sync states, {} access-log entries",
        report.connection_deleted,
        report.credentials_deleted,
        report.consent_entries_deleted,
        report.sync_states_deleted,
        report.access_log_entries_deleted
    );
    say!(
        out,
        "    provider revocations: {}; connections left: {}",
        provider.stats().revocations,
        integrations.connections(&user).await?.len()
    );

    step(
        out,
        13,
        "Verify the tamper-evident audit log",
        "audit/struct.AuditLog.html#method.verify",
    );
    let audit = integrations
        .audit()
        .ok_or(Error::Internal("the audit log is on by default"))?;
    audit.flush().await?;
    let chain = audit.verify().await?;
    say!(
        out,
        "    audit log verified: {} entries, chain intact",
        chain.entries
    );

    store.close().await?;
    say!(
        out,
        "\nDone. Next: README.md (\"Testing your app\") and {DOCS}/"
    );
    Ok(())
}
