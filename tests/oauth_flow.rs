//! The OAuth connect / token / disconnect flows against a real OpenID
//! provider (`oidc-provider` from npm, started on 127.0.0.1 by the tests).
//!
//! Needs `npm ci --prefix tests/oidc` (see `tests/oidc/README.md`).
#![cfg(all(feature = "sqlite", feature = "reqwest"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use consentry::clock::{Clock, ManualClock, SystemClock};
use consentry::connector::{ClientAuth, OAuth2Connector};
use consentry::events::EventKind;
use consentry::http::ReqwestClient;
use consentry::integrations::RevocationResult;
use consentry::oauth::CallbackError;
use consentry::secrecy::ExposeSecret;
use consentry::secret::ClientSecret;
use consentry::store::{
    ConnectionStore, ConsentStore, CredentialStore, RevocationStore, SqliteStore,
};
use consentry::vault::{CredentialKind, Keyring};
use consentry::{
    ConnectionStatus, ConnectorId, Error, ErrorKind, Integrations, Purpose, Scope, UserId,
};
use support::oidc::{OidcProvider, ProviderOptions, TestClient};
use url::Url;

struct Setup {
    provider: OidcProvider,
    integrations: Integrations,
    store: SqliteStore,
    client: TestClient,
    _dir: tempfile::TempDir,
}

fn connector_id() -> ConnectorId {
    "oidc".parse().unwrap()
}

fn purpose() -> Purpose {
    Purpose::new("reminders").unwrap()
}

async fn connector_for(provider: &OidcProvider, client: &TestClient) -> OAuth2Connector {
    let http = ReqwestClient::new().unwrap();
    let discovered = OAuth2Connector::discover(
        connector_id(),
        &provider.issuer(),
        client.id.clone(),
        client.secret.clone().map(ClientSecret::new),
        &http,
    )
    .await
    .unwrap();
    let auth = match client.auth {
        support::oidc::ClientAuth::Basic => ClientAuth::Basic,
        support::oidc::ClientAuth::Post => ClientAuth::Post,
        support::oidc::ClientAuth::None => ClientAuth::None,
    };
    discovered
        .into_builder()
        .client_auth(auth)
        // oidc-provider honours offline_access only with prompt=consent.
        .authorization_param("prompt", "consent")
        .default_scopes(["openid", "email", "offline_access"].map(|s| Scope::new(s).unwrap()))
        .build()
        .unwrap()
}

async fn setup_with(
    client: TestClient,
    options: ProviderOptions,
    clock: Arc<dyn Clock>,
    margin: Duration,
) -> Setup {
    let provider = OidcProvider::start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("oauth.db"))
        .await
        .unwrap();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector_for(&provider, &client).await)
        .redirect_uri(provider.redirect_uri())
        .clock(clock)
        .refresh_margin(margin)
        .build()
        .unwrap();
    Setup {
        provider,
        integrations,
        store,
        client,
        _dir: dir,
    }
}

async fn setup(client: TestClient) -> Setup {
    setup_with(
        client,
        ProviderOptions::default(),
        Arc::new(SystemClock),
        Duration::from_secs(1),
    )
    .await
}

/// Runs the whole browser part and completes the connection.
async fn connect(s: &Setup, user: &UserId, login: &str) -> consentry::Connection {
    let start = s
        .integrations
        .begin_connect(user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = s.provider.authorize(&start.authorize_url, login).await;
    s.integrations
        .complete_connect(user, &callback)
        .await
        .unwrap()
}

/// How many connection and credential rows `user` has.
async fn rows(store: &SqliteStore, user: &UserId) -> (usize, usize) {
    (
        store.list_connections(user).await.unwrap().len(),
        store.list_credentials(user).await.unwrap().len(),
    )
}

#[tokio::test]
async fn code_flow_for_basic_post_and_public_clients() {
    for client in [
        TestClient::basic(),
        TestClient::post(),
        TestClient::public(),
    ] {
        let s = setup(client.clone()).await;
        let user = UserId::in_tenant("acme", "ada").unwrap();
        let mut events = s.integrations.subscribe();
        let c = connect(&s, &user, "ada").await;
        assert_eq!(c.account.id, "ada", "{client:?}");
        assert_eq!(c.account.email.as_deref(), Some("ada@example.test"));
        let granted: Vec<_> = c.scopes.iter().map(Scope::as_str).collect();
        for want in ["openid", "email", "offline_access"] {
            assert!(granted.contains(&want), "{client:?}: granted {granted:?}");
        }
        assert!(c.has_refresh_token && c.status == ConnectionStatus::Active);
        assert_eq!(events.recv().await.unwrap().kind, EventKind::Created);
        assert_eq!(
            s.integrations.connections(&user).await.unwrap(),
            vec![c.clone()]
        );

        // No consent, no token.
        let err = s
            .integrations
            .access_token(&user, &c.id, &purpose())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ConsentRequired { purpose: p } if *p == purpose()),
            "{err}"
        );
        assert_eq!(err.to_problem().status, 403);

        s.integrations
            .grant_consent(&user, &c.id, &purpose())
            .await
            .unwrap();
        assert_eq!(events.recv().await.unwrap().kind, EventKind::ConsentGranted);
        let token = s
            .integrations
            .access_token(&user, &c.id, &purpose())
            .await
            .unwrap();
        let info = s.provider.userinfo(token.secret.expose_secret()).await;
        assert!(
            info.status.is_success(),
            "the provider accepts the token: {:?}",
            info.body
        );
        assert_eq!(info.str("email"), Some("ada@example.test"));

        // Required scopes are checked and named.
        let opts = consentry::integrations::TokenOptions::default()
            .require_scope(Scope::new("calendar").unwrap());
        let err = s
            .integrations
            .access_token_with(&user, &c.id, &purpose(), &opts)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InsufficientScope { missing } if missing[0].as_str() == "calendar"),
            "{err}"
        );

        // Another purpose has no consent; revoking consent closes the gate.
        let other = Purpose::new("matching").unwrap();
        assert_eq!(
            s.integrations
                .access_token(&user, &c.id, &other)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::ConsentRequired
        );
        s.integrations
            .revoke_consent(&user, &c.id, &purpose())
            .await
            .unwrap();
        let revoked = events.recv().await.unwrap();
        assert_eq!(
            (revoked.kind, &revoked.connection, revoked.purpose.as_ref()),
            (EventKind::ConsentRevoked, &c.id, Some(&purpose())),
            "consent.revoked"
        );
        assert_eq!(revoked.kind.as_str(), "consent.revoked");
        assert_eq!(
            s.integrations
                .access_token(&user, &c.id, &purpose())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::ConsentRequired
        );
        let history = s.integrations.consent_history(&user).await.unwrap();
        assert_eq!(
            history.iter().map(|e| e.granted).collect::<Vec<_>>(),
            [true, false]
        );
        assert_eq!(history[0].actor, "user:acme/ada");

        // Connecting the same account again updates the connection.
        let again = connect(&s, &user, "ada").await;
        assert_eq!(again.id, c.id);
        assert!(again.revision > c.revision);
        assert_eq!(s.integrations.connections(&user).await.unwrap().len(), 1);
        let other_account = connect(&s, &user, "bob").await;
        assert_ne!(other_account.id, c.id);
        assert_eq!(s.integrations.connections(&user).await.unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_expiry_is_single_flight_for_200_callers() {
    let s = setup_with(
        TestClient::basic(),
        ProviderOptions::default().access_token_ttl(Duration::from_secs(2)),
        Arc::new(SystemClock),
        Duration::ZERO,
    )
    .await;
    let user = UserId::new("ada").unwrap();
    let c = connect(&s, &user, "ada").await;
    s.integrations
        .grant_consent(&user, &c.id, &purpose())
        .await
        .unwrap();
    let first = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        !s.provider
            .userinfo(first.secret.expose_secret())
            .await
            .status
            .is_success(),
        "expired for real"
    );
    s.provider.reset_stats().await;

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (i, u, id) = (s.integrations.clone(), user.clone(), c.id.clone());
        tasks.push(tokio::spawn(async move {
            i.access_token(&u, &id, &purpose()).await
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap().secret.expose_secret().to_owned());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    assert_ne!(tokens[0], first.secret.expose_secret());
    let stats = s.provider.stats().await;
    assert_eq!(
        (stats.refresh_successes(), stats.refresh_failures()),
        (1, 0),
        "exactly one refresh at the provider"
    );
    assert!(s.provider.userinfo(&tokens[0]).await.status.is_success());
    let health = s
        .integrations
        .connection(&user, &c.id)
        .await
        .unwrap()
        .health;
    assert!(health.last_refresh_ok.is_some() && health.consecutive_failures == 0);
}

#[tokio::test]
async fn a_refresh_token_reused_elsewhere_leads_to_reauth_required() {
    let s = setup_with(
        TestClient::basic(),
        ProviderOptions::default().access_token_ttl(Duration::from_secs(1)),
        Arc::new(SystemClock),
        Duration::ZERO,
    )
    .await;
    let user = UserId::new("ada").unwrap();
    let c = connect(&s, &user, "ada").await;
    s.integrations
        .grant_consent(&user, &c.id, &purpose())
        .await
        .unwrap();
    let mut events = s.integrations.subscribe();

    // Someone uses the stored refresh token outside consentry: the provider
    // rotates it, so the stored one is now "already used".
    let rt = s
        .integrations
        .vault()
        .get(&user, &c.id, CredentialKind::RefreshToken)
        .await
        .unwrap();
    let elsewhere = s
        .provider
        .refresh(&s.client, rt.value.expose_secret())
        .await;
    assert!(elsewhere.status.is_success());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    s.provider.reset_stats().await;

    let err = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReauthRequired { connection } if *connection == c.id),
        "{err}"
    );
    assert_eq!(err.to_problem().status, 401);
    let event = events.recv().await.unwrap();
    assert_eq!(event.kind, EventKind::ReauthRequired);
    assert_eq!(
        s.integrations
            .connection(&user, &c.id)
            .await
            .unwrap()
            .status,
        ConnectionStatus::ReauthRequired
    );
    let stats = s.provider.stats().await;
    assert_eq!(
        (stats.refresh_successes(), stats.refresh_failures()),
        (0, 1)
    );

    // No retry loop: later calls fail at once without calling the provider.
    for _ in 0..5 {
        assert_eq!(
            s.integrations
                .access_token(&user, &c.id, &purpose())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::ReauthRequired
        );
    }
    assert_eq!(s.provider.stats().await.refresh_attempts(), 1);
    // Connecting again recovers.
    let again = connect(&s, &user, "ada").await;
    assert_eq!(
        (again.id.clone(), again.status),
        (c.id.clone(), ConnectionStatus::Active)
    );
    assert!(
        s.integrations
            .access_token(&user, &c.id, &purpose())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn disconnect_revokes_at_the_provider_and_deletes_everything() {
    let s = setup(TestClient::post()).await;
    let user = UserId::new("ada").unwrap();
    let c = connect(&s, &user, "ada").await;
    s.integrations
        .grant_consent(&user, &c.id, &purpose())
        .await
        .unwrap();
    let at = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap();
    let rt = s
        .integrations
        .vault()
        .get(&user, &c.id, CredentialKind::RefreshToken)
        .await
        .unwrap()
        .value;
    assert!(s.provider.is_active(&s.client, rt.expose_secret()).await);

    let mut events = s.integrations.subscribe();
    let report = s.integrations.disconnect(&user, &c.id).await.unwrap();
    let revoked = events.try_recv().unwrap();
    assert_eq!(
        (revoked.kind, &revoked.connection, &revoked.user),
        (EventKind::Revoked, &c.id, &user),
        "connection.revoked"
    );
    assert_eq!(revoked.kind.as_str(), "connection.revoked");
    assert!(events.try_recv().is_err(), "one event for the disconnect");
    assert_eq!(report.refresh_token, Some(RevocationResult::Revoked));
    assert_eq!(report.access_token, Some(RevocationResult::Revoked));
    assert!(report.connection_deleted && !report.revocation_pending());
    assert_eq!(
        report.credentials_deleted, 3,
        "access, refresh and ID token"
    );
    assert_eq!(report.consent_entries_deleted, 1);
    // Introspection proves the revocation.
    assert!(!s.provider.is_active(&s.client, rt.expose_secret()).await);
    assert!(
        !s.provider
            .is_active(&s.client, at.secret.expose_secret())
            .await
    );
    // Nothing of the connection is left.
    assert_eq!(rows(&s.store, &user).await, (0, 0));
    assert!(
        s.store
            .consent_history(&user, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.store.user_revocations(&user).await.unwrap().is_empty());
    assert_eq!(
        s.integrations
            .access_token(&user, &c.id, &purpose())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.integrations
            .disconnect(&user, &c.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn disconnect_with_the_provider_down_deletes_locally_and_queues_the_revocation() {
    let clock = ManualClock::starting_now();
    let s = setup_with(
        TestClient::basic(),
        ProviderOptions::default(),
        Arc::new(clock.clone()),
        Duration::from_secs(1),
    )
    .await;
    let user = UserId::new("ada").unwrap();
    let c = connect(&s, &user, "ada").await;
    s.provider.stop().await;

    let mut events = s.integrations.subscribe();
    let report = s.integrations.disconnect(&user, &c.id).await.unwrap();
    let revoked = events.try_recv().unwrap();
    assert_eq!(
        (revoked.kind, &revoked.connection),
        (EventKind::Revoked, &c.id),
        "connection.revoked, with the revocation still pending"
    );
    assert_eq!(report.refresh_token, Some(RevocationResult::Pending));
    assert_eq!(report.access_token, Some(RevocationResult::Pending));
    assert!(report.revocation_pending() && report.connection_deleted);
    assert_eq!(
        rows(&s.store, &user).await,
        (0, 0),
        "deleted locally even though the provider is down"
    );
    let queued = s.store.user_revocations(&user).await.unwrap();
    assert_eq!(queued.len(), 2);

    // Still down: the retry is rescheduled, nothing lost.
    clock.advance(Duration::from_secs(61));
    let round = s.integrations.maintain().await.unwrap();
    assert_eq!(
        (round.revocations_finished, round.revocations_rescheduled),
        (0, 2)
    );
    assert!(
        s.store
            .user_revocations(&user)
            .await
            .unwrap()
            .iter()
            .all(|r| r.attempts == 1)
    );

    // Back up: the queued revocations go through and leave the queue.
    s.provider.restart().await;
    clock.advance(Duration::from_secs(3 * 60));
    let round = s.integrations.maintain().await.unwrap();
    assert_eq!(round.revocations_finished, 2, "{round:?}");
    assert!(s.store.user_revocations(&user).await.unwrap().is_empty());
}

#[tokio::test]
async fn callback_attacks_are_typed_errors_and_write_nothing() {
    let clock = ManualClock::starting_now();
    let s = setup_with(
        TestClient::basic(),
        ProviderOptions::default(),
        Arc::new(clock.clone()),
        Duration::from_secs(1),
    )
    .await;
    let user = UserId::new("ada").unwrap();
    let mallory = UserId::new("mallory").unwrap();
    let redirect = s.provider.redirect_uri();
    let with_query = |q: &str| Url::parse(&format!("{redirect}?{q}")).unwrap();
    let callback_error = |e: Error| match e {
        Error::Callback(c) => c,
        other => panic!("expected a callback error, got {other:?}"),
    };

    // Missing and unknown state.
    let e = s
        .integrations
        .complete_connect(&user, &with_query("code=abc"))
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::MissingState);
    let e = s
        .integrations
        .complete_connect(&user, &with_query("code=abc&state=made-up"))
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);

    // Another user's state: refused, and not consumed for its owner.
    let start = s
        .integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = s.provider.authorize(&start.authorize_url, "ada").await;
    let e = s
        .integrations
        .complete_connect(&mallory, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    assert_eq!(rows(&s.store, &mallory).await, (0, 0));

    // A mismatched `iss` (mix-up attack).
    let mut evil = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "https://evil.example".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    evil.query_pairs_mut().clear().extend_pairs(pairs);
    let e = s
        .integrations
        .complete_connect(&user, &evil)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::IssuerMismatch);
    // ... which consumed the state: the genuine callback is now a replay.
    let e = s
        .integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    assert_eq!(rows(&s.store, &user).await, (0, 0));

    // A genuine flow, then the same callback replayed.
    let start = s
        .integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = s.provider.authorize(&start.authorize_url, "ada").await;
    let c = s
        .integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap();
    let e = s
        .integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    s.integrations.disconnect(&user, &c.id).await.unwrap();
    assert_eq!(rows(&s.store, &user).await, (0, 0));

    // A used code under a fresh state: the provider refuses it.
    let used_code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let fresh = s
        .integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let fresh_state = fresh
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let replay = with_query(&format!(
        "code={used_code}&state={fresh_state}&iss={}",
        url::form_urlencoded::byte_serialize(s.provider.issuer_str().as_bytes())
            .collect::<String>()
    ));
    let e = s
        .integrations
        .complete_connect(&user, &replay)
        .await
        .unwrap_err();
    assert!(e.is_invalid_grant(), "{e:?}");
    assert_eq!(rows(&s.store, &user).await, (0, 0));

    // The user declines.
    let start = s
        .integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let denied = s.provider.authorize_deny(&start.authorize_url, "ada").await;
    let e = s
        .integrations
        .complete_connect(&user, &denied)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e:?}");
    assert_eq!(rows(&s.store, &user).await, (0, 0));

    // An expired state (the default lifetime is 10 minutes).
    let start = s
        .integrations
        .begin_connect(&user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = s.provider.authorize(&start.authorize_url, "ada").await;
    clock.advance(Duration::from_secs(10 * 60 + 1));
    let e = s
        .integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    assert_eq!(rows(&s.store, &user).await, (0, 0));
}
