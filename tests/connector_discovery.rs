//! Discovery (RFC 8414, OpenID Connect) against closure mocks.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use consentry::connector::{ClientAuth, MAX_DISCOVERY_DOCUMENT_BYTES, OAuth2Connector};
use consentry::http::{
    self, HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpResponse, Response,
};
use consentry::secret::ClientSecret;
use consentry::url::Url;
use consentry::{Error, ErrorKind};

fn doc(issuer: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"https://id.example.com/authorize",
            "token_endpoint":"https://id.example.com/token"{extra}}}"#
    )
    .into_bytes()
}

fn not_found() -> HttpResponse {
    Response::builder()
        .status(404)
        .body(b"Not Found".to_vec())
        .unwrap()
}

/// A mock serving `routes` (path → body) and recording every requested URL.
fn server(routes: Vec<(&'static str, Vec<u8>)>) -> (impl HttpClient, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let client = http::from_fn(move |req: HttpRequest| {
        log.lock().unwrap().push(req.uri().to_string());
        assert_eq!(req.method(), "GET");
        assert_eq!(req.headers()["accept"], "application/json");
        let found = routes
            .iter()
            .find(|(p, _)| *p == req.uri().path())
            .map(|(_, b)| b.clone());
        async move { Ok(found.map_or_else(not_found, Response::new)) }
    });
    (client, seen)
}

async fn discover(issuer: &str, client: &impl HttpClient) -> Result<OAuth2Connector, Error> {
    OAuth2Connector::discover(
        "x".parse().unwrap(),
        &Url::parse(issuer).unwrap(),
        "client",
        Some(ClientSecret::new("secret")),
        client,
    )
    .await
}

#[tokio::test]
async fn rfc8414_document_is_preferred() {
    let (client, seen) = server(vec![
        (
            "/.well-known/oauth-authorization-server",
            doc(
                "https://id.example.com",
                r#","revocation_endpoint":"https://id.example.com/revoke",
                   "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"],
                   "authorization_response_iss_parameter_supported":true"#,
            ),
        ),
        (
            "/.well-known/openid-configuration",
            doc("https://id.example.com", ""),
        ),
    ]);
    let c = discover("https://id.example.com", &client).await.unwrap();
    let cfg = c.config();
    assert_eq!(cfg.issuer(), Some("https://id.example.com"));
    assert!(cfg.issuer_in_callback());
    assert_eq!(cfg.client_auth(), ClientAuth::Post);
    assert_eq!(
        cfg.revocation_url().unwrap().as_str(),
        "https://id.example.com/revoke"
    );
    assert!(cfg.pkce());
    assert!(cfg.account().is_none() && cfg.default_scopes().is_empty());
    assert_eq!(
        cfg.discovery_url().unwrap().as_str(),
        "https://id.example.com/.well-known/oauth-authorization-server"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn falls_back_to_openid_configuration() {
    let (client, seen) = server(vec![(
        "/.well-known/openid-configuration",
        doc(
            "https://id.example.com",
            r#","userinfo_endpoint":"https://id.example.com/userinfo""#,
        ),
    )]);
    let c = discover("https://id.example.com", &client).await.unwrap();
    let cfg = c.config();
    assert_eq!(
        cfg.client_auth(),
        ClientAuth::Basic,
        "basic is the default when unspecified"
    );
    assert_eq!(cfg.default_scopes()[0].as_str(), "openid");
    assert_eq!(
        cfg.account().unwrap().url().as_str(),
        "https://id.example.com/userinfo"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "https://id.example.com/.well-known/oauth-authorization-server",
            "https://id.example.com/.well-known/openid-configuration"
        ]
    );
}

#[tokio::test]
async fn issuers_with_paths_use_inserted_then_appended_well_known_paths() {
    let issuer = "https://id.example.com/tenant/v2.0";
    let (client, seen) = server(vec![(
        "/tenant/v2.0/.well-known/openid-configuration",
        doc(issuer, ""),
    )]);
    let c = discover(issuer, &client).await.unwrap();
    assert_eq!(c.config().issuer(), Some(issuer));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "https://id.example.com/.well-known/oauth-authorization-server/tenant/v2.0",
            "https://id.example.com/.well-known/openid-configuration/tenant/v2.0",
            "https://id.example.com/tenant/v2.0/.well-known/openid-configuration",
        ]
    );
}

#[tokio::test]
async fn an_html_200_page_is_skipped() {
    let (client, _) = server(vec![
        (
            "/.well-known/oauth-authorization-server",
            b"<!doctype html><title>app</title>".to_vec(),
        ),
        (
            "/.well-known/openid-configuration",
            doc("https://id.example.com", ""),
        ),
    ]);
    assert!(discover("https://id.example.com", &client).await.is_ok());
}

#[tokio::test]
async fn issuer_mismatch_is_refused_without_trying_further() {
    let (client, seen) = server(vec![
        (
            "/.well-known/oauth-authorization-server",
            doc("https://evil.example.com", ""),
        ),
        (
            "/.well-known/openid-configuration",
            doc("https://id.example.com", ""),
        ),
    ]);
    let e = discover("https://id.example.com", &client)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Discovery { reason, .. } if reason.contains("issuer")),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Upstream);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Trailing-slash and case differences are mismatches too...
    for other in [
        "https://id.example.com/x",
        "https://ID.example.com",
        "http://id.example.com",
    ] {
        let (client, _) = server(vec![("/.well-known/openid-configuration", doc(other, ""))]);
        assert!(
            discover("https://id.example.com", &client).await.is_err(),
            "{other}"
        );
    }
    // ...except the '/' that Url adds to an empty path.
    let (client, _) = server(vec![(
        "/.well-known/openid-configuration",
        doc("https://id.example.com/", ""),
    )]);
    assert!(discover("https://id.example.com", &client).await.is_ok());
}

#[tokio::test]
async fn nothing_found_and_transport_errors() {
    let (client, _) = server(vec![]);
    let e = discover("https://id.example.com", &client)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Discovery { reason, .. } if reason.contains("HTTP 404")),
        "{e:?}"
    );
    let down = http::from_fn(|_req| async { Err(HttpError::from_kind(HttpErrorKind::Timeout)) });
    let e = discover("https://id.example.com", &down).await.unwrap_err();
    assert!(matches!(e, Error::Http(_)));
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn documents_are_validated() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            br#"{"authorization_endpoint":"https://a","token_endpoint":"https://t"}"#.to_vec(),
            "no `issuer`",
        ),
        (
            br#"{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/t"}"#
                .to_vec(),
            "authorization_endpoint",
        ),
        (
            doc(
                "https://id.example.com",
                r#","revocation_endpoint":"http://id.example.com/r""#,
            ),
            "https",
        ),
        (
            doc("https://id.example.com", r#","userinfo_endpoint":5"#),
            "not a string",
        ),
        (
            doc(
                "https://id.example.com",
                r#","token_endpoint_auth_methods_supported":["private_key_jwt"]"#,
            ),
            "client_secret_basic",
        ),
    ];
    for (body, needle) in cases {
        let (client, _) = server(vec![("/.well-known/oauth-authorization-server", body)]);
        let e = discover("https://id.example.com", &client)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    let mut big = doc("https://id.example.com", r#","pad":""#);
    big.truncate(big.len() - 1);
    big.resize(MAX_DISCOVERY_DOCUMENT_BYTES + 10, b'x');
    big.extend_from_slice(b"\"}");
    let (client, _) = server(vec![("/.well-known/oauth-authorization-server", big)]);
    let e = discover("https://id.example.com", &client)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Discovery { reason, .. } if reason.contains("limit")),
        "{e:?}"
    );
    // Issuers must be https (or loopback http) without query.
    let (client, _) = server(vec![]);
    assert!(matches!(
        discover("http://id.example.com", &client).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        discover("https://id.example.com/?a=b", &client).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn explicit_document_url_and_public_clients() {
    let (client, seen) = server(vec![(
        "/config/oidc.json",
        doc("https://id.example.com", ""),
    )]);
    let document = Url::parse("https://cdn.example.com/config/oidc.json").unwrap();
    let issuer = Url::parse("https://id.example.com").unwrap();
    let c = OAuth2Connector::discover_from(
        "x".parse().unwrap(),
        &document,
        &issuer,
        "pub",
        None,
        &client,
    )
    .await
    .unwrap();
    assert_eq!(c.config().client_auth(), ClientAuth::None);
    assert_eq!(c.config().discovery_url(), Some(&document));
    assert_eq!(
        *seen.lock().unwrap(),
        ["https://cdn.example.com/config/oidc.json"]
    );
    // The explicit document must still name the expected issuer.
    let other = Url::parse("https://other.example.com").unwrap();
    assert!(
        OAuth2Connector::discover_from(
            "x".parse().unwrap(),
            &document,
            &other,
            "pub",
            None,
            &client
        )
        .await
        .is_err()
    );
    // And a non-2xx answer is an upstream status, not a fallback.
    let missing = Url::parse("https://cdn.example.com/missing.json").unwrap();
    let e = OAuth2Connector::discover_from(
        "x".parse().unwrap(),
        &missing,
        &issuer,
        "pub",
        None,
        &client,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::UpstreamStatus { status: 404, .. }));
}
