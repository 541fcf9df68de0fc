//! Proves the OpenID-provider harness (`tests/support/oidc.rs`) against the
//! real `oidc-provider`, with plain HTTP calls and no consentry OAuth code:
//! discovery, the scripted login and consent, the three client
//! authentications, PKCE, `iss`, short-lived access tokens, refresh-token
//! rotation, reuse detection, revocation, introspection, the stats route, and
//! stopping the provider.
//!
//! Needs `npm ci --prefix tests/oidc` (see `tests/oidc/README.md`).

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::oidc::{
    Decision, JsonResponse, OidcProvider, Pkce, ProviderOptions, TestClient, TokenSet, query_param,
    random_token, with_query_param,
};
use url::Url;

/// Parses a successful token response.
#[track_caller]
fn tokens(response: &JsonResponse, what: &str) -> TokenSet {
    response.expect_ok(what);
    serde_json::from_value(response.body.clone())
        .unwrap_or_else(|e| panic!("{what}: not a token response ({e}): {}", response.body))
}

/// Polls userinfo until it refuses `access_token`, for at most `limit`;
/// returns when the refusal was seen.
async fn wait_until_rejected(
    provider: &OidcProvider,
    access_token: &str,
    limit: Duration,
) -> Instant {
    let start = Instant::now();
    loop {
        let response = provider.userinfo(access_token).await;
        if response.status == StatusCode::UNAUTHORIZED {
            let challenge = response.www_authenticate.unwrap_or_default();
            assert!(
                challenge.contains("invalid_token"),
                "401 without invalid_token: {challenge:?}"
            );
            return Instant::now();
        }
        response.expect_ok("userinfo before expiry");
        assert!(
            start.elapsed() < limit,
            "the access token was still accepted after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds the authorization URL by hand (not with the harness helper).
fn authorization_url(
    provider: &OidcProvider,
    endpoint: &str,
    client: &TestClient,
    state: &str,
    nonce: &str,
    pkce: &Pkce,
) -> Url {
    let mut url = Url::parse(endpoint).expect("authorization_endpoint is a URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", provider.redirect_uri().as_str())
        .append_pair("scope", "openid email offline_access")
        .append_pair("prompt", "consent")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

#[tokio::test]
async fn code_flow_for_basic_post_and_public_clients() {
    let provider = OidcProvider::start_default().await;
    let issuer = provider.issuer_str();

    let discovery = provider.discovery().await;
    let field = |name: &str| -> String {
        discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery has no {name}: {discovery}"))
            .to_owned()
    };
    assert_eq!(field("issuer"), issuer);
    assert_eq!(field("token_endpoint"), format!("{issuer}/token"));
    assert_eq!(field("userinfo_endpoint"), format!("{issuer}/me"));
    assert_eq!(
        field("revocation_endpoint"),
        format!("{issuer}/token/revocation")
    );
    assert_eq!(
        field("introspection_endpoint"),
        format!("{issuer}/token/introspection")
    );
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        Value::Bool(true)
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for method in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(
            discovery["token_endpoint_auth_methods_supported"]
                .as_array()
                .is_some_and(|m| m.iter().any(|v| v == method)),
            "{method} not supported: {discovery}"
        );
    }
    let authorization_endpoint = field("authorization_endpoint");

    let clients = [
        provider.client_basic(),
        provider.client_post(),
        provider.client_public(),
    ];
    for client in &clients {
        let login = format!("alice-{}", client.id);
        let state = random_token();
        let nonce = random_token();
        let pkce = Pkce::generate();
        let url = authorization_url(
            &provider,
            &authorization_endpoint,
            client,
            &state,
            &nonce,
            &pkce,
        );

        let callback = provider.authorize(&url, &login).await;
        let redirect_uri = provider.redirect_uri();
        assert_eq!(callback.origin(), redirect_uri.origin(), "{callback}");
        assert_eq!(callback.path(), redirect_uri.path(), "{callback}");
        assert_eq!(query_param(&callback, "state"), Some(state.clone()));
        assert_eq!(query_param(&callback, "iss"), Some(issuer.clone()));
        assert_eq!(query_param(&callback, "error"), None, "{callback}");
        let code = query_param(&callback, "code").expect("a code in the callback");

        let response = provider
            .exchange_code(client, &code, redirect_uri.as_str(), Some(&pkce.verifier))
            .await;
        let set = tokens(&response, &format!("code exchange as {}", client.id));
        assert_eq!(set.token_type, "Bearer");
        assert_eq!(set.expires_in, 5, "the configured access-token TTL");
        assert!(
            set.refresh_token.is_some(),
            "offline_access with prompt=consent gives a refresh token"
        );
        assert!(set.id_token.is_some());
        let scopes: Vec<&str> = set
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .collect();
        for scope in ["openid", "email", "offline_access"] {
            assert!(scopes.contains(&scope), "granted {scopes:?}");
        }

        let userinfo = provider.userinfo(&set.access_token).await;
        userinfo.expect_ok("userinfo");
        assert_eq!(userinfo.str("sub"), Some(login.as_str()));
        assert_eq!(
            userinfo.str("email"),
            Some(format!("{login}@example.test").as_str())
        );

        // A replayed code is refused, and the provider revokes what it issued.
        let replay = provider
            .exchange_code(client, &code, redirect_uri.as_str(), Some(&pkce.verifier))
            .await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST);
        assert_eq!(replay.error(), Some("invalid_grant"));
        assert_eq!(
            provider.userinfo(&set.access_token).await.status,
            StatusCode::UNAUTHORIZED,
            "code replay revokes the grant's access token"
        );
    }

    // A confidential client with a wrong secret is refused.
    let mut wrong = provider.client_basic();
    wrong.secret = Some("wrong".to_owned());
    let refused = provider.refresh(&wrong, "whatever").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error(), Some("invalid_client"));

    let stats = provider.stats().await;
    let codes = stats.grant("authorization_code");
    assert_eq!((codes.success, codes.error), (3, 3), "{stats:?}");
    assert_eq!(codes.errors.get("invalid_grant"), Some(&3));
    for client in &clients {
        let counts = &stats.by_client[&client.id]["authorization_code"];
        assert_eq!((counts.success, counts.error), (1, 1), "{stats:?}");
    }
    let refresh = stats.grant("refresh_token");
    assert_eq!((refresh.success, refresh.error), (0, 1), "{stats:?}");
    assert_eq!(refresh.errors.get("invalid_client"), Some(&1));
    assert_eq!(stats.responses("token", 200), 3);
    assert_eq!(stats.responses("token", 401), 1);
    assert_eq!(
        stats.revoked_grants.len(),
        3,
        "each code replay revoked its grant"
    );
    assert_eq!(stats.server_errors, 0);
}

#[tokio::test]
async fn offline_access_needs_prompt_consent() {
    let provider = OidcProvider::start_default().await;
    let client = provider.client_basic();
    let pkce = Pkce::generate();
    let mut url = provider.endpoint("/auth");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", provider.redirect_uri().as_str())
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let callback = provider.authorize(&url, "bob").await;
    let code = query_param(&callback, "code").expect("a code");
    let response = provider
        .exchange_code(
            &client,
            &code,
            provider.redirect_uri().as_str(),
            Some(&pkce.verifier),
        )
        .await;
    let set = tokens(&response, "code exchange without prompt=consent");
    assert_eq!(
        set.refresh_token, None,
        "no refresh token without prompt=consent"
    );
    assert_eq!(
        set.scope.as_deref(),
        Some("openid"),
        "offline_access was dropped"
    );
}

#[tokio::test]
async fn public_client_requires_pkce_s256() {
    let provider = OidcProvider::start_default().await;
    let client = provider.client_public();
    let mut url = provider.endpoint("/auth");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", provider.redirect_uri().as_str())
        .append_pair("scope", "openid")
        .append_pair("state", "no-pkce");
    let callback = provider.authorize(&url, "carol").await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&callback, "state").as_deref(), Some("no-pkce"));
    assert_eq!(query_param(&callback, "code"), None);

    // With PKCE, a wrong verifier is refused at the token endpoint.
    let pkce = Pkce::generate();
    let url = provider.authorization_url(&client, "openid", "st", "n", &pkce);
    let callback = provider.authorize(&url, "carol").await;
    let code = query_param(&callback, "code").expect("a code");
    let other = Pkce::generate();
    let response = provider
        .exchange_code(
            &client,
            &code,
            provider.redirect_uri().as_str(),
            Some(&other.verifier),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), Some("invalid_grant"));
}

#[tokio::test]
async fn expiry_rotation_and_reuse_that_revokes_the_grant() {
    let ttl = Duration::from_secs(2);
    let provider = OidcProvider::start(ProviderOptions::default().access_token_ttl(ttl)).await;
    let client = provider.client_basic();

    let before = Instant::now();
    let first = provider
        .obtain_tokens(&client, "dave", "openid email offline_access")
        .await;
    assert_eq!(first.expires_in, ttl.as_secs());
    provider
        .userinfo(&first.access_token)
        .await
        .expect_ok("fresh token");
    let rt1 = first.refresh_token.clone().expect("a refresh token");

    // Expiry is real: accepted for at least TTL - 1 s after `before` (whole-
    // second clock), refused within TTL + 2 s of polling (clock tolerance 0;
    // oidc-provider's default tolerance of 15 s would fail here).
    let rejected =
        wait_until_rejected(&provider, &first.access_token, ttl + Duration::from_secs(2)).await;
    let lived = rejected - before;
    assert!(
        lived >= ttl - Duration::from_secs(1),
        "expired after {lived:?}"
    );

    // Refresh rotates: new access token and new refresh token.
    let second = tokens(&provider.refresh(&client, &rt1).await, "first refresh");
    let rt2 = second
        .refresh_token
        .clone()
        .expect("rotation returns a refresh token");
    assert_ne!(rt2, rt1);
    assert_ne!(second.access_token, first.access_token);
    provider
        .userinfo(&second.access_token)
        .await
        .expect_ok("refreshed token");
    let third = tokens(&provider.refresh(&client, &rt2).await, "second refresh");
    let rt3 = third.refresh_token.clone().expect("a refresh token");
    assert!(rt3 != rt2 && rt3 != rt1);

    let stats = provider.stats().await;
    assert_eq!(
        (stats.refresh_successes(), stats.refresh_failures()),
        (2, 0)
    );
    assert!(stats.revoked_grants.is_empty());

    // Reusing a rotated refresh token fails and revokes the whole grant: the
    // newest refresh token and access token die with it.
    let reuse = provider.refresh(&client, &rt1).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.error(), Some("invalid_grant"));
    let after = provider.refresh(&client, &rt3).await;
    assert_eq!(after.status, StatusCode::BAD_REQUEST, "{:?}", after.body);
    assert_eq!(after.error(), Some("invalid_grant"));
    assert_eq!(
        provider.userinfo(&third.access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(!provider.is_active(&client, &rt3).await);

    let stats = provider.stats().await;
    assert_eq!(stats.refresh_successes(), 2, "{stats:?}");
    assert_eq!(stats.refresh_failures(), 2, "{stats:?}");
    assert_eq!(stats.refresh_attempts(), 4);
    assert_eq!(
        stats.grant("refresh_token").errors.get("invalid_grant"),
        Some(&2)
    );
    assert_eq!(stats.refresh_token_reuse, 1);
    let details = &stats.grant("refresh_token").details;
    assert_eq!(
        details.get("refresh token already used"),
        Some(&1),
        "{details:?}"
    );
    assert_eq!(
        details.get("refresh token not found"),
        Some(&1),
        "{details:?}"
    );
    assert_eq!(stats.revoked_grants.len(), 1, "{stats:?}");
    assert_eq!(stats.revoked_grants[0].route.as_deref(), Some("token"));
    assert_eq!(
        stats.revoked_grants[0].client_id.as_deref(),
        Some("client-basic")
    );
    let by_client = &stats.by_client["client-basic"]["refresh_token"];
    assert_eq!((by_client.success, by_client.error), (2, 2));
}

#[tokio::test]
async fn rotation_can_be_turned_off() {
    let provider =
        OidcProvider::start(ProviderOptions::default().rotate_refresh_tokens(false)).await;
    let client = provider.client_post();
    let first = provider
        .obtain_tokens(&client, "erin", "openid offline_access")
        .await;
    let rt = first.refresh_token.expect("a refresh token");
    for _ in 0..2 {
        let next = tokens(
            &provider.refresh(&client, &rt).await,
            "refresh without rotation",
        );
        assert_eq!(
            next.refresh_token.as_deref(),
            Some(rt.as_str()),
            "same refresh token"
        );
    }
    assert_eq!(provider.stats().await.refresh_successes(), 2);
}

#[tokio::test]
async fn revocation_is_visible_through_introspection() {
    let provider = OidcProvider::start_default().await;
    let client = provider.client_post();

    let set = provider
        .obtain_tokens(&client, "frank", "openid offline_access")
        .await;
    let rt = set.refresh_token.clone().expect("a refresh token");
    let introspection = provider.introspect(&client, &set.access_token).await;
    introspection.expect_ok("introspection");
    assert_eq!(introspection.body["active"], Value::Bool(true));
    assert_eq!(introspection.str("sub"), Some("frank"));
    assert_eq!(introspection.str("client_id"), Some("client-post"));
    assert!(provider.is_active(&client, &rt).await);

    // Revoking the refresh token revokes the grant: both tokens go inactive.
    let revoked = provider.revoke(&client, &rt, Some("refresh_token")).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(!provider.is_active(&client, &rt).await);
    assert!(!provider.is_active(&client, &set.access_token).await);
    assert_eq!(
        provider.refresh(&client, &rt).await.error(),
        Some("invalid_grant")
    );
    // RFC 7009: revoking an unknown or already revoked token is still 200.
    assert_eq!(
        provider.revoke(&client, &rt, None).await.status,
        StatusCode::OK
    );

    let stats = provider.stats().await;
    assert_eq!(stats.revoked_grants.len(), 1, "{stats:?}");
    assert_eq!(stats.revoked_grants[0].route.as_deref(), Some("revocation"));
    assert_eq!(stats.responses("revocation", 200), 2);

    // Revoking only the access token: it goes inactive; oidc-provider also
    // revokes the other tokens of that grant (see the README).
    let set = provider
        .obtain_tokens(&client, "frank", "openid offline_access")
        .await;
    let rt = set.refresh_token.clone().expect("a refresh token");
    let revoked = provider
        .revoke(&client, &set.access_token, Some("access_token"))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(!provider.is_active(&client, &set.access_token).await);
    assert!(!provider.is_active(&client, &rt).await);
    assert_eq!(
        provider.stats().await.revoked_grants.len(),
        1,
        "revoking an access token does not destroy the grant itself"
    );
}

#[tokio::test]
async fn denied_consent_gives_access_denied() {
    let provider = OidcProvider::start_default().await;
    let client = provider.client_basic();
    let pkce = Pkce::generate();
    let url = provider.authorization_url(&client, "openid email", "deny-state", "n", &pkce);
    let callback = provider.authorize_deny(&url, "grace").await;
    assert_eq!(callback.path(), provider.redirect_uri().path());
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some("deny-state")
    );
    assert_eq!(query_param(&callback, "iss"), Some(provider.issuer_str()));
    assert_eq!(query_param(&callback, "code"), None);

    // An invalid redirect_uri is an error page, not a redirect.
    let bad = with_query_param(&url, "redirect_uri", "http://127.0.0.1/evil");
    let err = provider
        .try_authorize(&bad, "grace", Decision::Approve)
        .await
        .expect_err("no redirect to an unregistered redirect_uri");
    assert!(err.contains("400"), "{err}");
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_keeps_the_issuer() {
    let provider = OidcProvider::start_default().await;
    let issuer = provider.issuer_str();
    provider.discovery().await;
    assert!(provider.is_running());

    provider.stop().await;
    assert!(!provider.is_running());
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let err = http
        .get(provider.discovery_url())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect_err("the provider is down");
    assert!(err.is_connect(), "expected connection refused, got {err:?}");
    provider.stop().await; // idempotent

    provider.restart().await;
    assert!(provider.is_running());
    assert_eq!(provider.discovery().await["issuer"], Value::String(issuer));
}

#[tokio::test]
async fn issuer_with_a_path() {
    let provider = OidcProvider::start(ProviderOptions::default().issuer_path("/tenant-a")).await;
    let issuer = provider.issuer_str();
    assert_eq!(
        issuer,
        format!("http://127.0.0.1:{}/tenant-a", provider.port())
    );
    let discovery = provider.discovery().await;
    assert_eq!(discovery["issuer"], Value::String(issuer.clone()));
    assert_eq!(
        discovery["authorization_endpoint"],
        Value::String(format!("{issuer}/auth"))
    );

    // RFC 8414 path insertion serves the same metadata.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let rfc8414 = format!(
        "http://127.0.0.1:{}/.well-known/oauth-authorization-server/tenant-a",
        provider.port()
    );
    let metadata: Value = http
        .get(&rfc8414)
        .send()
        .await
        .expect("RFC 8414 metadata")
        .json()
        .await
        .expect("JSON");
    assert_eq!(metadata["issuer"], Value::String(issuer.clone()));
    assert_eq!(
        metadata["token_endpoint"],
        Value::String(format!("{issuer}/token"))
    );

    let client = provider.client_basic();
    let pkce = Pkce::generate();
    let url = provider.authorization_url(&client, "openid email", "st", "n", &pkce);
    let callback = provider.authorize(&url, "heidi").await;
    assert_eq!(query_param(&callback, "iss"), Some(issuer));
    let code = query_param(&callback, "code").expect("a code");
    let response = provider
        .exchange_code(
            &client,
            &code,
            provider.redirect_uri().as_str(),
            Some(&pkce.verifier),
        )
        .await;
    let set = tokens(&response, "exchange under an issuer path");
    assert_eq!(
        provider.userinfo(&set.access_token).await.str("email"),
        Some("heidi@example.test")
    );
}

#[tokio::test]
async fn token_delay_and_stats_reset() {
    let delay = Duration::from_millis(400);
    let provider = OidcProvider::start(ProviderOptions::default().token_delay(delay)).await;
    let client = provider.client_basic();
    let set = provider
        .obtain_tokens(&client, "ivan", "openid offline_access")
        .await;
    let started = Instant::now();
    tokens(
        &provider
            .refresh(
                &client,
                set.refresh_token.as_deref().expect("a refresh token"),
            )
            .await,
        "delayed refresh",
    );
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(provider.stats().await.refresh_successes(), 1);

    provider.reset_stats().await;
    let stats = provider.stats().await;
    assert!(
        stats.grants.is_empty() && stats.responses.is_empty(),
        "{stats:?}"
    );
}

#[tokio::test]
async fn custom_clients_replace_the_defaults() {
    // A secret with characters that RFC 6749 §2.3.1 form-encodes before Basic.
    let secret = "p@ss:w/rd+= %";
    let provider = OidcProvider::start(ProviderOptions::default().clients(serde_json::json!([
        {
            "client_id": "custom:client",
            "client_secret": secret,
            "token_endpoint_auth_method": "client_secret_basic",
        }
    ])))
    .await;
    let custom = TestClient {
        id: "custom:client".to_owned(),
        secret: Some(secret.to_owned()),
        auth: support::oidc::ClientAuth::Basic,
    };
    let set = provider
        .obtain_tokens(&custom, "judy", "openid offline_access")
        .await;
    assert!(set.refresh_token.is_some());

    // The default clients are gone: the provider shows an error page.
    let pkce = Pkce::generate();
    let url = provider.authorization_url(&provider.client_basic(), "openid", "s", "n", &pkce);
    let err = provider
        .try_authorize(&url, "judy", Decision::Approve)
        .await
        .expect_err("client-basic is not registered");
    assert!(err.contains("400"), "{err}");
}
