//! Four processes sharing one SQLite file ask for an expired token at the
//! same moment: with the refresh lease (the default) the provider sees
//! exactly one refresh, and every process gets a token the provider
//! accepts. With `refresh_lease(None)` only compare-and-swap protects the
//! stored tokens: several processes may call the provider, but exactly one
//! refresh is stored and every process gets that one token.
//!
//! The test binary runs itself as the children (`child_token` is ignored in
//! normal runs and started with `--ignored` and environment variables).
//! Needs `npm ci --prefix tests/oidc`.
#![cfg(all(feature = "sqlite", feature = "reqwest", unix))]
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use consentry::connector::OAuth2Connector;
use consentry::http::ReqwestClient;
use consentry::secrecy::ExposeSecret;
use consentry::secret::ClientSecret;
use consentry::store::{CredentialKey, CredentialStore, SqliteStore};
use consentry::vault::{CredentialKind, Keyring};
use consentry::{ConnectionId, ConnectorId, Integrations, Purpose, Scope, UserId};
use sha2::{Digest, Sha256};
use support::oidc::{OidcProvider, ProviderOptions, TestClient};
use url::Url;

const ENV: &str = "CONSENTRY_PROC_TEST";

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn purpose() -> Purpose {
    Purpose::new("reminders").unwrap()
}

async fn integrations(
    db: &std::path::Path,
    keys: &str,
    issuer: &Url,
    redirect: &Url,
    lease: bool,
) -> Integrations {
    let client = TestClient::basic();
    let http = ReqwestClient::new().unwrap();
    let connector = OAuth2Connector::discover(
        "oidc".parse::<ConnectorId>().unwrap(),
        issuer,
        client.id.clone(),
        client.secret.clone().map(ClientSecret::new),
        &http,
    )
    .await
    .unwrap()
    .into_builder()
    .authorization_param("prompt", "consent")
    .default_scopes(["openid", "email", "offline_access"].map(|s| Scope::new(s).unwrap()))
    .build()
    .unwrap();
    let builder = Integrations::builder()
        .store(SqliteStore::open(db).await.unwrap())
        .keyring(Keyring::parse(keys).unwrap())
        .http(http)
        .connector(connector)
        .redirect_uri(redirect.clone())
        .refresh_margin(Duration::ZERO);
    let builder = if lease {
        builder
    } else {
        builder.refresh_lease(None)
    };
    builder.build().unwrap()
}

/// The child: waits for the start file, asks for the token once, prints the
/// SHA-256 of what it got.
#[tokio::test]
#[ignore = "run by four_processes_refresh_once as a child process"]
async fn child_token() {
    let args: Vec<String> = std::env::var(ENV)
        .unwrap()
        .split('\n')
        .map(str::to_owned)
        .collect();
    let [db, keys, issuer, redirect, user, connection, go, lease] = &args[..] else {
        panic!("bad child arguments")
    };
    let i = integrations(
        db.as_ref(),
        keys,
        &Url::parse(issuer).unwrap(),
        &Url::parse(redirect).unwrap(),
        lease == "lease",
    )
    .await;
    let (user, connection) = (
        user.parse::<UserId>().unwrap(),
        ConnectionId::new(connection.as_str()).unwrap(),
    );
    let go = PathBuf::from(go);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let token = i
        .access_token(&user, &connection, &purpose())
        .await
        .unwrap();
    println!("TOKEN {}", digest(token.secret.expose_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_refresh_once() {
    four_processes(true).await;
}

/// Compare-and-swap only. The provider does not rotate refresh tokens here:
/// with rotation, two processes refreshing with the same token at once make
/// the provider revoke the whole grant (reuse detection), which is what the
/// lease exists to prevent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_without_the_lease_store_exactly_one_refresh() {
    four_processes(false).await;
}

async fn four_processes(lease: bool) {
    let provider = OidcProvider::start(
        ProviderOptions::default()
            .access_token_ttl(Duration::from_secs(2))
            .rotate_refresh_tokens(lease)
            // Widen the race window: every token response takes 300 ms.
            .token_delay(Duration::from_millis(300)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let keys = Keyring::generate()
        .unwrap()
        .export()
        .expose_secret()
        .to_owned();
    let parent = integrations(
        &db,
        &keys,
        &provider.issuer(),
        &provider.redirect_uri(),
        lease,
    )
    .await;
    let user = UserId::in_tenant("acme", "ada").unwrap();
    let start = parent
        .begin_connect(&user, &"oidc".parse().unwrap(), &[])
        .await
        .unwrap();
    let callback = provider.authorize(&start.authorize_url, "ada").await;
    let c = parent.complete_connect(&user, &callback).await.unwrap();
    parent
        .grant_consent(&user, &c.id, &purpose())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await; // expired for real
    provider.reset_stats().await;
    let store = SqliteStore::open(&db).await.unwrap();
    let version = |kind| {
        let (store, key) = (
            store.clone(),
            CredentialKey::new(user.clone(), c.id.clone(), kind),
        );
        async move { store.get_credential(&key).await.unwrap().unwrap().version }
    };
    let access_before = version(CredentialKind::AccessToken).await;

    let go = dir.path().join("go");
    let args = [
        db.to_str().unwrap(),
        &keys,
        provider.issuer().as_str(),
        provider.redirect_uri().as_str(),
        &user.to_string(),
        c.id.as_str(),
        go.to_str().unwrap(),
        if lease { "lease" } else { "cas" },
    ]
    .join("\n");
    let mut children = Vec::new();
    for _ in 0..4 {
        children.push(
            tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "child_token",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
    }
    // Let every child open the store and discover the provider, then go.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    std::fs::write(&go, b"go").unwrap();

    let mut hashes = Vec::new();
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hash = stdout
            .lines()
            .find_map(|l| l.split_once("TOKEN ").map(|(_, h)| h.trim()))
            .unwrap_or_else(|| panic!("child printed no token: {stdout}"))
            .to_owned();
        hashes.push(hash);
    }
    let stats = provider.stats().await;
    let at_provider = stats.refresh_successes();
    println!(
        "lease {lease}: {at_provider} refresh(es) at the provider, {} failed",
        stats.refresh_failures()
    );
    if lease {
        assert_eq!(
            (at_provider, stats.refresh_failures()),
            (1, 0),
            "four processes, one refresh at the provider"
        );
    } else {
        assert!(
            (1..=4).contains(&at_provider) && stats.refresh_failures() == 0,
            "{at_provider} refreshes, {} failed",
            stats.refresh_failures()
        );
    }
    assert_eq!(
        version(CredentialKind::AccessToken).await,
        access_before.next(),
        "exactly one refresh was stored"
    );
    hashes.dedup();
    assert_eq!(
        hashes.len(),
        1,
        "every process got the same, refreshed token"
    );
    let token = parent.access_token(&user, &c.id, &purpose()).await.unwrap();
    assert_eq!(digest(token.secret.expose_secret()), hashes[0]);
    assert!(
        provider
            .userinfo(token.secret.expose_secret())
            .await
            .status
            .is_success(),
        "the provider accepts it"
    );
    assert_eq!(provider.stats().await.refresh_attempts(), at_provider);
}
