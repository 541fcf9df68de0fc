//! Every sensitive operation writes its audit entry, the chain verifies,
//! and no secret reaches an audit row: a full connect → token → refresh →
//! disconnect run against a real OpenID provider (`oidc-provider`), plus
//! consent changes, export, erasure, key rotation and webhook endpoint
//! administration, on one SQLite file.
//!
//! Needs `npm ci --prefix tests/oidc` (see `tests/oidc/README.md`).
#![cfg(all(feature = "sqlite", feature = "reqwest"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use consentry::audit::{AuditActor, AuditQuery, Outcome, RequestContext};
use consentry::clock::SystemClock;
use consentry::connector::{ClientAuth, OAuth2Connector};
use consentry::export::Format;
use consentry::http::ReqwestClient;
use consentry::secrecy::ExposeSecret;
use consentry::secret::ClientSecret;
use consentry::store::SqliteStore;
use consentry::vault::{CredentialKind, Keyring};
use consentry::webhook::{Actor, Dispatcher, EndpointConfig, EndpointUpdate, WebhookSecret};
use consentry::{ConnectorId, Integrations, Purpose, Scope, UserId};
use support::oidc::{OidcProvider, ProviderOptions, TestClient};

fn connector_id() -> ConnectorId {
    "oidc".parse().unwrap()
}

async fn connector(provider: &OidcProvider, client: &TestClient) -> OAuth2Connector {
    OAuth2Connector::discover(
        connector_id(),
        &provider.issuer(),
        client.id.clone(),
        client.secret.clone().map(ClientSecret::new),
        &ReqwestClient::new().unwrap(),
    )
    .await
    .unwrap()
    .into_builder()
    .client_auth(ClientAuth::Basic)
    .authorization_param("prompt", "consent")
    .default_scopes(["openid", "email", "offline_access"].map(|s| Scope::new(s).unwrap()))
    .build()
    .unwrap()
}

fn db_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.display())) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sensitive_operation_is_audited_without_secrets() {
    let client = TestClient::basic();
    let provider =
        OidcProvider::start(ProviderOptions::default().access_token_ttl(Duration::from_secs(2)))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit-flow.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let keyring = Keyring::generate().unwrap();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(keyring.clone())
        .http(ReqwestClient::new().unwrap())
        .connector(connector(&provider, &client).await)
        .redirect_uri(provider.redirect_uri())
        .clock(SystemClock)
        .refresh_margin(Duration::ZERO)
        .build()
        .unwrap();
    let user = UserId::new("ada").unwrap();
    let purpose = Purpose::new("reminders").unwrap();
    let mut secrets: Vec<String> = vec![keyring.export().expose_secret().to_owned()];
    if let Some(s) = &client.secret {
        secrets.push(s.clone());
    }

    let context = RequestContext::new()
        .ip([203, 0, 113, 9].into())
        .user_agent("audit-flow/1.0")
        .request_id("req-audit-flow");
    let c = context
        .clone()
        .scope(async {
            let start = integrations
                .begin_connect(&user, &connector_id(), &[])
                .await
                .unwrap();
            let callback = provider.authorize(&start.authorize_url, "ada").await;
            integrations
                .complete_connect(&user, &callback)
                .await
                .unwrap()
        })
        .await;
    let vault = integrations.vault();
    for kind in [CredentialKind::RefreshToken, CredentialKind::IdToken] {
        secrets.push(
            vault
                .get(&user, &c.id, kind)
                .await
                .unwrap()
                .value
                .expose_secret()
                .to_owned(),
        );
    }
    // Connecting the same account again updates the connection.
    let start = integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = provider.authorize(&start.authorize_url, "ada").await;
    assert_eq!(
        integrations
            .complete_connect(&user, &callback)
            .await
            .unwrap()
            .id,
        c.id
    );
    for kind in [CredentialKind::RefreshToken, CredentialKind::AccessToken] {
        secrets.push(
            vault
                .get(&user, &c.id, kind)
                .await
                .unwrap()
                .value
                .expose_secret()
                .to_owned(),
        );
    }

    // A read without consent is denied, with consent it succeeds.
    assert!(
        integrations
            .access_token(&user, &c.id, &purpose)
            .await
            .is_err()
    );
    integrations
        .grant_consent(&user, &c.id, &purpose)
        .await
        .unwrap();
    let first = integrations
        .access_token(&user, &c.id, &purpose)
        .await
        .unwrap();
    secrets.push(first.secret.expose_secret().to_owned());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let second = integrations
        .access_token(&user, &c.id, &purpose)
        .await
        .unwrap();
    assert_ne!(
        first.secret.expose_secret(),
        second.secret.expose_secret(),
        "refreshed"
    );
    secrets.push(second.secret.expose_secret().to_owned());
    secrets.push(
        vault
            .get(&user, &c.id, CredentialKind::RefreshToken)
            .await
            .unwrap()
            .value
            .expose_secret()
            .to_owned(),
    );

    let _ = integrations.records(&user, &c.id, "events", &purpose).await;
    let mut export = Vec::new();
    integrations
        .export(&user, Format::Ndjson, &mut export)
        .await
        .unwrap();
    integrations
        .revoke_consent(&user, &c.id, &purpose)
        .await
        .unwrap();

    // Key rotation through the facade.
    let old = vault.keyring().primary().clone();
    let rotated = vault.keyring().rotated().unwrap();
    secrets.push(rotated.export().expose_secret().to_owned());
    integrations.set_keyring(rotated).await;
    integrations.rewrap().await.unwrap();
    integrations.retire_key(&old).await.unwrap();

    // Webhook endpoint administration, sharing the store and the vault.
    let dispatcher = Dispatcher::builder()
        .store(store.clone())
        .vault(vault.clone())
        .build()
        .unwrap();
    let admin = Actor::admin("grace");
    let hook_secret = WebhookSecret::generate().unwrap();
    secrets.push(hook_secret.expose_whsec().expose_secret().to_owned());
    let e = dispatcher
        .create_endpoint(
            &admin,
            EndpointConfig::new("https://hooks.example.com/in").secret(hook_secret),
        )
        .await
        .unwrap();
    assert!(
        dispatcher
            .create_endpoint(
                &Actor::user("mallory"),
                EndpointConfig::new("https://x.example.com/")
            )
            .await
            .is_err()
    );
    dispatcher
        .update_endpoint(&admin, &e.id, EndpointUpdate::new().enabled(false))
        .await
        .unwrap();
    let rotated_hook = dispatcher.rotate_secret(&admin, &e.id, None).await.unwrap();
    secrets.push(
        rotated_hook
            .secrets
            .unwrap()
            .current
            .expose_whsec()
            .expose_secret()
            .to_owned(),
    );
    dispatcher.get_endpoint(&admin, &e.id).await.unwrap();
    assert!(dispatcher.delete_endpoint(&admin, &e.id).await.unwrap());

    // Disconnect revokes and deletes; a second account is then erased.
    context
        .clone()
        .scope(integrations.disconnect(&user, &c.id))
        .await
        .unwrap();
    let start = integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = provider.authorize(&start.authorize_url, "ada").await;
    let again = integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap();
    secrets.push(
        vault
            .get(&user, &again.id, CredentialKind::AccessToken)
            .await
            .unwrap()
            .value
            .expose_secret()
            .to_owned(),
    );
    integrations.erase_user(&user).await.unwrap();

    let log = integrations.audit().unwrap();
    log.flush().await.unwrap();
    dispatcher.audit().unwrap().flush().await.unwrap();
    let report = log.verify().await.unwrap();

    let mut entries = Vec::new();
    let mut query = AuditQuery::default().limit(1_000);
    loop {
        let page = log.query(&query).await.unwrap();
        entries.extend(page.entries);
        match page.next {
            Some(n) => query = query.after(n),
            None => break,
        }
    }
    assert_eq!(entries.len() as u64, report.entries);
    let actions: BTreeSet<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "connection.created",
        "connection.updated",
        "connection.deleted",
        "credential.read",
        "credential.refreshed",
        "consent.granted",
        "consent.revoked",
        "records.read",
        "user.exported",
        "user.erased",
        "key.rotated",
        "key.rewrapped",
        "key.retired",
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.secret_read",
        "webhook_endpoint.deleted",
    ]
    .into_iter()
    .collect();
    let missing: Vec<_> = expected.difference(&actions).collect();
    assert!(
        missing.is_empty(),
        "no audit entry for {missing:?}; got {actions:?}"
    );

    let find = |action: &str, outcome: Outcome| {
        entries
            .iter()
            .find(|e| e.action == action && e.outcome == outcome)
            .unwrap_or_else(|| panic!("no {action} with {outcome:?}"))
    };
    // The connect ran inside the host's request context.
    let created = find("connection.created", Outcome::Success);
    assert_eq!(created.request_id.as_deref(), Some("req-audit-flow"));
    assert_eq!(created.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(created.actor, AuditActor::User(user.clone()));
    assert_eq!(created.subject.as_ref(), Some(&user));
    assert_eq!(
        find("credential.read", Outcome::Denied).details["purpose"],
        "reminders"
    );
    assert_eq!(
        find("credential.refreshed", Outcome::Success).actor,
        AuditActor::System
    );
    assert!(
        find("webhook_endpoint.created", Outcome::Denied)
            .resource
            .is_none()
    );
    assert_eq!(
        find("connection.deleted", Outcome::Success)
            .user_agent
            .as_deref(),
        Some("audit-flow/1.0")
    );

    // No secret in any audit row, nor anywhere in the database file.
    drop(dispatcher);
    let rendered = format!("{entries:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    integrations.audit().unwrap().flush().await.unwrap();
    drop(integrations);
    store.close().await.unwrap();
    let bytes = db_bytes(&db);
    assert!(secrets.len() >= 10);
    for secret in &secrets {
        assert!(secret.len() >= 16, "a real secret: {}", secret.len());
        assert!(
            !rendered.contains(secret.as_str()),
            "a secret in an audit entry"
        );
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "a secret in the database file"
        );
        assert!(!contains(&bytes, b64.encode(secret).as_bytes()));
    }
    // The canary: the scan can fail (the audit rows are there in clear).
    assert!(contains(&bytes, b"req-audit-flow"));
}
