//! The OAuth connect / token / disconnect flow suite, written once over
//! [`support::providers::Provider`] and run against both
//! `consentry::testing::TestProvider` and a real OpenID provider
//! (`oidc-provider` from npm, started on 127.0.0.1; needs
//! `npm ci --prefix tests/oidc`, see `tests/oidc/README.md`). A difference
//! between the two is a bug in one of them.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use consentry::clock::ManualClock;
use consentry::events::EventKind;
use consentry::integrations::RevocationResult;
use consentry::oauth::CallbackError;
use consentry::secrecy::ExposeSecret;
use consentry::store::{
    ConnectionStore, ConsentStore, CredentialStore, RevocationStore, SqliteStore,
};
use consentry::testing::TestClient;
use consentry::vault::CredentialKind;
use consentry::{ConnectionStatus, Error, ErrorKind, Purpose, Scope, UserId};
use support::oidc::with_query_param;
use support::providers::{Provider, connect, connector_id, purpose, setup, setup_with};
use url::Url;

/// How many connection and credential rows `user` has.
async fn rows(store: &SqliteStore, user: &UserId) -> (usize, usize) {
    (
        store.list_connections(user).await.unwrap().len(),
        store.list_credentials(user).await.unwrap().len(),
    )
}

const HOUR: Duration = Duration::from_secs(3_600);

/// Code + PKCE for a basic, a post and a public client, consent, scopes,
/// revoking consent, reconnecting the same and another account.
async fn code_flow_for_basic_post_and_public_clients<P: Provider>() {
    for client in [
        TestClient::basic(),
        TestClient::post(),
        TestClient::public(),
    ] {
        let s = setup::<P>(client.clone(), HOUR, Duration::from_secs(1)).await;
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
        assert_eq!(
            s.provider
                .userinfo_email(token.secret.expose_secret())
                .await
                .as_deref(),
            Some("ada@example.test"),
            "the provider accepts the token"
        );
        assert!(!s.provider.userinfo_ok("not-a-token").await);

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

        // The user declines: `access_denied`, nothing added.
        let start = s
            .integrations
            .begin_connect(&user, &connector_id(), &[])
            .await
            .unwrap();
        let denied = s.provider.decline(&start.authorize_url, "ada").await;
        let e = s
            .integrations
            .complete_connect(&user, &denied)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e:?}");
        assert_eq!(s.integrations.connections(&user).await.unwrap().len(), 2);
    }
}
both!(code_flow_for_basic_post_and_public_clients);

/// After expiry, 200 concurrent callers cause exactly one refresh grant.
async fn refresh_after_expiry_is_single_flight_for_200_callers<P: Provider>() {
    let s = setup::<P>(TestClient::basic(), Duration::from_secs(2), Duration::ZERO).await;
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
        !s.provider.userinfo_ok(first.secret.expose_secret()).await,
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
    assert_eq!(
        s.provider.refresh_counts().await,
        (1, 0),
        "exactly one refresh at the provider"
    );
    assert!(s.provider.userinfo_ok(&tokens[0]).await);
    let health = s
        .integrations
        .connection(&user, &c.id)
        .await
        .unwrap()
        .health;
    assert!(health.last_refresh_ok.is_some() && health.consecutive_failures == 0);
}
both!(
    refresh_after_expiry_is_single_flight_for_200_callers,
    multi_thread
);

/// A rotated refresh token used elsewhere: the stored one is now reused,
/// the provider refuses it, the connection needs the user again, and no
/// retry loop follows.
async fn a_refresh_token_reused_elsewhere_leads_to_reauth_required<P: Provider>() {
    let s = setup::<P>(TestClient::basic(), Duration::from_secs(1), Duration::ZERO).await;
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
    assert!(
        s.provider
            .refresh_elsewhere(&s.client, rt.value.expose_secret())
            .await
    );
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
    assert_eq!(s.provider.refresh_counts().await, (0, 1));

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
    assert_eq!(
        s.provider.refresh_counts().await,
        (0, 1),
        "one refresh attempt in all"
    );
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
both!(a_refresh_token_reused_elsewhere_leads_to_reauth_required);

/// Disconnect revokes at the provider (introspection says inactive) and
/// deletes everything locally.
async fn disconnect_revokes_at_the_provider_and_deletes_everything<P: Provider>() {
    let s = setup::<P>(TestClient::post(), HOUR, Duration::from_secs(1)).await;
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
    assert!(s.provider.active(&s.client, rt.expose_secret()).await);

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
    assert!(!s.provider.active(&s.client, rt.expose_secret()).await);
    assert!(
        !s.provider
            .active(&s.client, at.secret.expose_secret())
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
both!(disconnect_revokes_at_the_provider_and_deletes_everything);

/// With the provider down, disconnect deletes locally and queues the
/// revocations; maintenance retries them until the provider is back.
async fn disconnect_with_the_provider_down_deletes_locally_and_queues_the_revocation<
    P: Provider,
>() {
    let clock = ManualClock::starting_now();
    let s = setup_with::<P>(
        TestClient::basic(),
        HOUR,
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
both!(disconnect_with_the_provider_down_deletes_locally_and_queues_the_revocation);

/// Missing, unknown, foreign, mismatched-`iss`, replayed, declined and
/// expired callbacks, and a used code: typed errors, nothing written.
async fn callback_attacks_are_typed_errors_and_write_nothing<P: Provider>() {
    let clock = ManualClock::starting_now();
    let s = setup_with::<P>(
        TestClient::basic(),
        HOUR,
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
    let callback = s.provider.approve(&start.authorize_url, "ada").await;
    let e = s
        .integrations
        .complete_connect(&mallory, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    assert_eq!(rows(&s.store, &mallory).await, (0, 0));

    // A mismatched `iss` (mix-up attack).
    let evil = with_query_param(&callback, "iss", "https://evil.example");
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
    let callback = s.provider.approve(&start.authorize_url, "ada").await;
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
    let denied = s.provider.decline(&start.authorize_url, "ada").await;
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
    let callback = s.provider.approve(&start.authorize_url, "ada").await;
    clock.advance(Duration::from_secs(10 * 60 + 1));
    let e = s
        .integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap_err();
    assert_eq!(callback_error(e), CallbackError::InvalidState);
    assert_eq!(rows(&s.store, &user).await, (0, 0));
}
both!(callback_attacks_are_typed_errors_and_write_nothing);
