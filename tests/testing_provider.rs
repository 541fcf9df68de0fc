//! What only `consentry::testing::TestProvider` can do: fault switches,
//! protocol refusals, the paged resource API through a TOML-declared
//! stream. The flow suite that runs against both `TestProvider` and
//! `oidc-provider` is `tests/oauth_flow.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use consentry::connector::{Catalogue, ClientAuth, ClientRegistration};
use consentry::http::ReqwestClient;
use consentry::store::SqliteStore;
use consentry::testing::{Fault, TestClient, TestProvider};
use consentry::vault::Keyring;
use consentry::{Connection, ConnectionStatus, Error, ErrorKind, Integrations, Purpose, UserId};
use support::oidc::with_query_param;
use support::providers::{Provider as _, Setup, connect, post_form, purpose, setup};
use url::Url;

// ------------------------------------------------------------ TestProvider only

/// A connected, consented connection whose access token has expired.
async fn expired(access_ttl: Duration) -> (Setup<TestProvider>, UserId, Connection) {
    let s = setup::<TestProvider>(TestClient::basic(), access_ttl, Duration::ZERO).await;
    let user = UserId::new("ada").unwrap();
    let c = connect(&s, &user, "ada").await;
    s.integrations
        .grant_consent(&user, &c.id, &purpose())
        .await
        .unwrap();
    tokio::time::sleep(access_ttl + Duration::from_millis(100)).await;
    s.provider.reset_stats();
    (s, user, c)
}

#[tokio::test]
async fn a_500_from_the_token_endpoint_degrades_the_connection() {
    let (s, user, c) = expired(Duration::from_secs(1)).await;
    s.provider.fail_next_token(Fault::ServerError);
    let err = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "transient: {err:?}");
    assert!(err.to_problem().status >= 500, "{:?}", err.to_problem());
    let conn = s.integrations.connection(&user, &c.id).await.unwrap();
    assert_eq!(conn.status, ConnectionStatus::Degraded);
    assert_eq!(conn.health.consecutive_failures, 1);
    let stats = s.provider.stats();
    assert_eq!(
        (
            stats.faults_served,
            stats.refresh_failures,
            stats.refresh_grants
        ),
        (1, 1, 0)
    );
    // Backing off: no second call to the provider, a typed "try later".
    let again = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            Error::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{again:?}"
    );
    assert_eq!(s.provider.stats().token_requests, 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited() {
    let (s, user, c) = expired(Duration::from_secs(1)).await;
    s.provider.fail_next_token(Fault::RateLimited {
        retry_after: Duration::from_secs(30),
    });
    // The caller learns the provider's wait at once...
    let err = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(w) } if w == Duration::from_secs(30)),
        "{err:?}"
    );
    // ... and the next attempt waits at least that long (the backoff after
    // one failure is shorter), without calling the provider.
    let health = s
        .integrations
        .connection(&user, &c.id)
        .await
        .unwrap()
        .health;
    let until = health.retry_after.unwrap();
    let ahead = until.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(ahead > Duration::from_secs(25), "{ahead:?}");
    let again = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    let Error::RateLimited {
        retry_after: Some(wait),
    } = again
    else {
        panic!("expected RateLimited, got {again:?}");
    };
    assert!(wait > Duration::from_secs(25), "{wait:?}");
    assert_eq!(again.to_problem().status, 429);
    assert_eq!(
        s.integrations
            .connection(&user, &c.id)
            .await
            .unwrap()
            .status,
        ConnectionStatus::Degraded
    );
    assert_eq!(s.provider.stats().token_requests, 1);
}

#[tokio::test]
async fn an_injected_invalid_grant_means_reauth_required() {
    let (s, user, c) = expired(Duration::from_secs(1)).await;
    s.provider.fail_next_token(Fault::InvalidGrant);
    let err = s
        .integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::ReauthRequired { .. }), "{err:?}");
    assert_eq!(s.provider.stats().refresh_failures, 1);
    assert_eq!(
        s.integrations
            .connection(&user, &c.id)
            .await
            .unwrap()
            .status,
        ConnectionStatus::ReauthRequired
    );
}

#[tokio::test]
async fn a_slow_token_endpoint_is_slow() {
    let (s, user, c) = expired(Duration::from_secs(1)).await;
    s.provider.set_token_delay(Duration::from_millis(300));
    let t = std::time::Instant::now();
    s.integrations
        .access_token(&user, &c.id, &purpose())
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(s.provider.stats().refresh_grants, 1);
}

// ------------------------------------------------------------ the protocol itself

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B

fn authorize_url(p: &TestProvider, client: &str, extra: &[(&str, &str)]) -> Url {
    let mut url = p.url("/authorize");
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", "http://127.0.0.1/cb"),
        ("state", "st"),
        ("scope", "openid email offline_access unknown"),
    ]);
    url.query_pairs_mut().extend_pairs(extra);
    url
}

fn q(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn exchange(
    p: &TestProvider,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> (u16, serde_json::Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1/cb"),
        ("code_verifier", verifier),
    ];
    let r = post_form(p.url("/token"), client, &form).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn discovery_advertises_what_is_served() {
    let p = TestProvider::start().await.unwrap();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc: serde_json::Value = reqwest::get(p.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], p.issuer().as_str().trim_end_matches('/'));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        for key in [
            "revocation_endpoint",
            "introspection_endpoint",
            "userinfo_endpoint",
        ] {
            assert!(
                doc[key].as_str().unwrap().starts_with("http://127.0.0.1:"),
                "{key}"
            );
        }
    }
}

#[tokio::test]
async fn authorization_requests_are_checked() {
    let p = TestProvider::start().await.unwrap();
    let s256 = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let ok = p
        .authorize(&authorize_url(&p, "client-basic", &s256), "ada")
        .unwrap();
    assert_eq!(q(&ok, "state").as_deref(), Some("st"));
    assert_eq!(
        q(&ok, "iss").as_deref(),
        Some(p.issuer().as_str().trim_end_matches('/'))
    );
    assert!(q(&ok, "code").is_some());
    // plain, and no PKCE at all, are refused with a redirect.
    for extra in [
        &[
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ][..],
        &[("code_challenge", CHALLENGE)][..],
        &[][..],
    ] {
        let r = p
            .authorize(&authorize_url(&p, "client-basic", extra), "ada")
            .unwrap();
        assert_eq!(q(&r, "error").as_deref(), Some("invalid_request"), "{r}");
        assert!(q(&r, "code").is_none());
    }
    // No safe redirect: an error, not a callback.
    assert!(
        p.authorize(&authorize_url(&p, "nobody", &s256), "ada")
            .is_err()
    );
    let evil = with_query_param(
        &authorize_url(&p, "client-basic", &s256),
        "redirect_uri",
        "http://evil.example/cb",
    );
    assert!(p.authorize(&evil, "ada").is_err());
    // A browser's GET /authorize redirects (approving as `ada`), or declines.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(authorize_url(&p, "client-post", &s256))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(q(&to, "code").is_some());
    p.set_deny_all(true);
    let r = no_redirects
        .get(authorize_url(&p, "client-post", &s256))
        .send()
        .await
        .unwrap();
    let to = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(q(&to, "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn the_token_endpoint_checks_clients_pkce_codes_and_rotation() {
    let p = TestProvider::start().await.unwrap();
    let basic = TestClient::basic();
    let s256 = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = |p: &TestProvider| {
        q(
            &p.authorize(&authorize_url(p, "client-basic", &s256), "ada")
                .unwrap(),
            "code",
        )
        .unwrap()
    };

    // A wrong secret, or the wrong method for the client: 401 invalid_client.
    let wrong = TestClient::new(
        "client-basic",
        ClientAuth::Basic,
        Some("client-basic-secreT"),
    );
    let (status, body) = exchange(&p, &wrong, &code(&p), VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let as_post = TestClient::new(
        "client-basic",
        ClientAuth::Post,
        Some("client-basic-secret"),
    );
    assert_eq!(exchange(&p, &as_post, &code(&p), VERIFIER).await.0, 401);
    // A wrong verifier.
    let (status, body) = exchange(&p, &basic, &code(&p), &"x".repeat(43)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A good exchange: granted scopes are the known ones that were asked for.
    let c = code(&p);
    let (status, tokens) = exchange(&p, &basic, &c, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid email offline_access");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["id_token"].as_str().unwrap().split('.').count() == 3);
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(p.is_active(&at) && p.is_active(&rt1));
    // The same code again: refused, and what it produced is revoked.
    let (status, _) = exchange(&p, &basic, &c, VERIFIER).await;
    assert_eq!(status, 400);
    assert!(!p.is_active(&at) && !p.is_active(&rt1));

    // Rotation and reuse detection.
    let (_, tokens) = exchange(&p, &basic, &code(&p), VERIFIER).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt1.as_str()),
    ];
    let rotated: serde_json::Value = post_form(p.url("/token"), &basic, &form)
        .await
        .json()
        .await
        .unwrap();
    let rt2 = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt1);
    assert!(!p.is_active(&rt1) && p.is_active(rt2), "rotated");
    let r = post_form(p.url("/token"), &basic, &form).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(!p.is_active(rt2), "reuse revoked the whole grant");
    assert!(!p.is_active(rotated["access_token"].as_str().unwrap()));
    let stats = p.stats();
    assert_eq!(
        (
            stats.refresh_grants,
            stats.refresh_failures,
            stats.refresh_reuses
        ),
        (1, 1, 1)
    );
    // Another client cannot use, introspect or revoke basic's tokens.
    let (_, tokens) = exchange(&p, &basic, &code(&p), VERIFIER).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(!p.refresh_elsewhere(&TestClient::post(), rt).await);
    assert!(!p.active(&TestClient::post(), rt).await);
    post_form(
        p.url("/token/revocation"),
        &TestClient::post(),
        &[("token", rt)],
    )
    .await;
    assert!(p.is_active(rt));
    let r = post_form(p.url("/token/revocation"), &basic, &[("token", rt)]).await;
    assert_eq!(r.status(), 200);
    assert!(!p.is_active(rt));
    assert!(
        !p.is_active(tokens["access_token"].as_str().unwrap()),
        "the grant ended"
    );
}

#[tokio::test]
async fn bad_requests_are_answered_not_panicked_on() {
    let p = TestProvider::start().await.unwrap();
    let http = reqwest::Client::new();
    let huge = http
        .post(p.url("/token"))
        .body(vec![b'a'; 1 << 20])
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let repeated = http
        .post(p.url("/token"))
        .body("grant_type=a&grant_type=b")
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.status(), 400);
    let garbage = http
        .post(p.url("/token"))
        .body(vec![0xff, 0xfe, b'=', 0])
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error());
    let no_auth = http.get(p.url("/api/items")).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    assert!(
        no_auth.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad_bearer = http
        .get(p.url("/me"))
        .bearer_auth("x".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_bearer.status(), 401);
    // Still serving.
    assert!(
        reqwest::get(p.url("/.well-known/openid-configuration"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn a_toml_declared_stream_syncs_the_paged_api() {
    let p = TestProvider::builder()
        .items((1..=13).map(|i| serde_json::json!({"id": format!("b{i}"), "title": format!("Book {i}"), "updated_at": "2026-02-01T00:00:00Z"})))
        .page_size(4)
        .start()
        .await
        .unwrap();
    let client = TestClient::post();
    let reg = ClientRegistration::new(client.id()).with_secret(client.client_secret().unwrap());
    let connector = Catalogue::from_toml(&p.catalogue_toml("books", &client, "matching"))
        .unwrap()
        .connector("books", reg)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let integrations = Integrations::builder()
        .store(SqliteStore::open(dir.path().join("s.db")).await.unwrap())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri(p.redirect_uri())
        .build()
        .unwrap();
    let user = UserId::new("ada").unwrap();
    let start = integrations
        .begin_connect(&user, &"books".parse().unwrap(), &[])
        .await
        .unwrap();
    let c = integrations
        .complete_connect(&user, &p.authorize(&start.authorize_url, "ada").unwrap())
        .await
        .unwrap();
    assert_eq!(c.account.email.as_deref(), Some("ada@example.test"));
    let matching = Purpose::new("matching").unwrap();
    let refused = integrations
        .sync_now(&user, &c.id, "items", &matching)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConsentRequired);
    integrations
        .grant_consent(&user, &c.id, &matching)
        .await
        .unwrap();
    let report = integrations
        .sync_now(&user, &c.id, "items", &matching)
        .await
        .unwrap();
    assert_eq!((report.pages, report.upserted), (4, 13));
    assert_eq!(p.stats().api_requests, 4);
    let held = integrations
        .records(&user, &c.id, "items", &matching)
        .await
        .unwrap();
    assert_eq!(held.len(), 13);
}
