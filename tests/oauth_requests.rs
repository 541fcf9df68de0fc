//! Token, refresh and revocation requests, checked byte for byte.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentry::connector::{ClientAuth, OAuth2Connector, OAuth2ConnectorBuilder, Quirks};
use consentry::http::{HttpRequest, Response};
use consentry::oauth::{
    AuthorizationCode, OAuthErrorCode, PkceVerifier, RevocableToken, RevocationOutcome,
    authorization_code_request, classify_revocation, refresh_token_request, revocation_request,
};
use consentry::secret::{AccessToken, ClientSecret, RefreshToken};
use consentry::url::Url;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn builder(auth: ClientAuth) -> OAuth2ConnectorBuilder {
    let b = OAuth2Connector::builder("t".parse().unwrap())
        .authorization_url(Url::parse("https://as.example/authorize").unwrap())
        .token_url(Url::parse("https://as.example/oauth/token").unwrap())
        .revocation_url(Url::parse("https://as.example/oauth/revoke").unwrap())
        .client_id("my client:1")
        .client_auth(auth);
    match auth {
        ClientAuth::None => b,
        _ => b.client_secret(ClientSecret::new("s3cr+t/:%é ")),
    }
}

fn body(r: &HttpRequest) -> &str {
    std::str::from_utf8(r.body()).unwrap()
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn redirect() -> Url {
    Url::parse("https://app.example/cb?x=1").unwrap()
}

#[test]
fn basic_auth_form_urlencodes_id_and_secret() {
    let c = builder(ClientAuth::Basic).build().unwrap();
    let v = PkceVerifier::parse(VERIFIER).unwrap();
    let r = authorization_code_request(
        c.config(),
        &AuthorizationCode::new("c/1 2"),
        &redirect(),
        Some(&v),
    )
    .unwrap();
    assert_eq!(r.method(), "POST");
    assert_eq!(r.uri(), "https://as.example/oauth/token");
    assert_eq!(
        header(&r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(&r, "accept"), Some("application/json"));
    // RFC 6749 §2.3.1: each of id and secret form-urlencoded, then joined
    // with ':' and base64-encoded.
    let raw = "my+client%3A1:s3cr%2Bt%2F%3A%25%C3%A9+";
    let b64 = "bXkrY2xpZW50JTNBMTpzM2NyJTJCdCUyRiUzQSUyNSVDMyVBOSs=";
    assert_eq!(base64_std(raw.as_bytes()), b64);
    assert_eq!(
        header(&r, "authorization"),
        Some(format!("Basic {b64}").as_str())
    );
    assert!(r.headers()["authorization"].is_sensitive());
    assert!(!format!("{:?}", r.headers()).contains(b64));
    assert_eq!(
        body(&r),
        format!(
            "grant_type=authorization_code&code=c%2F1+2&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&code_verifier={VERIFIER}"
        )
    );
    assert_eq!(r.headers().len(), 3);
}

/// Independent base64 (standard alphabet, padded) to check the header.
fn base64_std(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn post_auth_puts_credentials_in_the_body() {
    let c = builder(ClientAuth::Post).pkce(false).build().unwrap();
    let r = authorization_code_request(
        c.config(),
        &AuthorizationCode::new("abc"),
        &redirect(),
        None,
    )
    .unwrap();
    assert!(r.headers().get("authorization").is_none());
    assert_eq!(
        body(&r),
        "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1\
         &client_id=my+client%3A1&client_secret=s3cr%2Bt%2F%3A%25%C3%A9+"
    );
}

#[test]
fn public_clients_send_only_the_client_id() {
    let c = builder(ClientAuth::None)
        .resource(Url::parse("https://api.example/v1").unwrap())
        .resource(Url::parse("https://files.example/").unwrap())
        .build()
        .unwrap();
    let v = PkceVerifier::parse(VERIFIER).unwrap();
    let r = authorization_code_request(
        c.config(),
        &AuthorizationCode::new("abc"),
        &redirect(),
        Some(&v),
    )
    .unwrap();
    assert!(r.headers().get("authorization").is_none());
    assert_eq!(
        body(&r),
        format!(
            "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1\
             &code_verifier={VERIFIER}&resource=https%3A%2F%2Fapi.example%2Fv1\
             &resource=https%3A%2F%2Ffiles.example%2F&client_id=my+client%3A1"
        )
    );
}

#[test]
fn pkce_verifier_is_required_when_pkce_is_on() {
    let c = builder(ClientAuth::None).build().unwrap();
    let e = authorization_code_request(
        c.config(),
        &AuthorizationCode::new("abc"),
        &redirect(),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("PKCE"));
    assert!(
        authorization_code_request(c.config(), &AuthorizationCode::new(""), &redirect(), None)
            .is_err()
    );
    // With PKCE off, a verifier passed by mistake is not sent.
    let off = builder(ClientAuth::None).pkce(false).build().unwrap();
    let v = PkceVerifier::parse(VERIFIER).unwrap();
    let r = authorization_code_request(
        off.config(),
        &AuthorizationCode::new("abc"),
        &redirect(),
        Some(&v),
    )
    .unwrap();
    assert!(!body(&r).contains("code_verifier"));
}

#[test]
fn refresh_requests() {
    let c = builder(ClientAuth::Basic)
        .scope_separator(",")
        .build()
        .unwrap();
    let rt = RefreshToken::new("1//0g+x");
    let r = refresh_token_request(c.config(), &rt, None).unwrap();
    assert_eq!(
        body(&r),
        "grant_type=refresh_token&refresh_token=1%2F%2F0g%2Bx"
    );
    assert!(header(&r, "authorization").unwrap().starts_with("Basic "));
    let narrowed = refresh_token_request(
        c.config(),
        &rt,
        Some(&["a".parse().unwrap(), "b:c".parse().unwrap()]),
    )
    .unwrap();
    assert_eq!(
        body(&narrowed),
        "grant_type=refresh_token&refresh_token=1%2F%2F0g%2Bx&scope=a%2Cb%3Ac"
    );
    assert!(refresh_token_request(c.config(), &RefreshToken::new(""), None).is_err());
    let public = builder(ClientAuth::None).build().unwrap();
    let r = refresh_token_request(public.config(), &rt, None).unwrap();
    assert_eq!(
        body(&r),
        "grant_type=refresh_token&refresh_token=1%2F%2F0g%2Bx&client_id=my+client%3A1"
    );
}

#[test]
fn revocation_requests_carry_the_hint_and_client_auth() {
    let c = builder(ClientAuth::Post).build().unwrap();
    let at = AccessToken::new("ya29.a0");
    let r = revocation_request(c.config(), RevocableToken::Access(&at))
        .unwrap()
        .unwrap();
    assert_eq!(r.uri(), "https://as.example/oauth/revoke");
    assert_eq!(
        header(&r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        body(&r),
        "token=ya29.a0&token_type_hint=access_token&client_id=my+client%3A1&client_secret=s3cr%2Bt%2F%3A%25%C3%A9+"
    );
    let rt = RefreshToken::new("r");
    let basic = builder(ClientAuth::Basic).build().unwrap();
    let r = revocation_request(basic.config(), RevocableToken::Refresh(&rt))
        .unwrap()
        .unwrap();
    assert_eq!(body(&r), "token=r&token_type_hint=refresh_token");
    assert!(header(&r, "authorization").is_some());
    let none = OAuth2Connector::builder("n".parse().unwrap())
        .authorization_url(Url::parse("https://as.example/a").unwrap())
        .token_url(Url::parse("https://as.example/t").unwrap())
        .client_id("c")
        .client_auth(ClientAuth::None)
        .build()
        .unwrap();
    assert!(
        revocation_request(none.config(), RevocableToken::Refresh(&rt))
            .unwrap()
            .is_none()
    );
    assert!(revocation_request(c.config(), RevocableToken::Access(&AccessToken::new(""))).is_err());
}

#[test]
fn revocation_responses_are_classified() {
    let c = builder(ClientAuth::Basic).build().unwrap();
    let cfg = c.config();
    let resp = |status: u16, body: &str, retry: Option<&str>| {
        let mut b = Response::builder().status(status);
        if let Some(r) = retry {
            b = b.header("retry-after", r);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    };
    assert_eq!(
        classify_revocation(cfg, &resp(200, "", None)),
        RevocationOutcome::Revoked
    );
    assert_eq!(
        classify_revocation(cfg, &resp(204, "", None)),
        RevocationOutcome::Revoked
    );
    assert_eq!(
        classify_revocation(cfg, &resp(503, "", Some("120"))),
        RevocationOutcome::RetryLater {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(
        classify_revocation(cfg, &resp(503, "", Some("999999999"))),
        RevocationOutcome::RetryLater {
            retry_after: Some(Duration::from_secs(86_400))
        }
    );
    assert_eq!(
        classify_revocation(
            cfg,
            &resp(500, "oops", Some("Wed, 21 Oct 2015 07:28:00 GMT"))
        ),
        RevocationOutcome::RetryLater { retry_after: None }
    );
    assert!(classify_revocation(cfg, &resp(429, "", None)).should_retry());
    assert!(
        classify_revocation(
            cfg,
            &resp(400, r#"{"error":"temporarily_unavailable"}"#, None)
        )
        .should_retry()
    );
    assert_eq!(
        classify_revocation(
            cfg,
            &resp(400, r#"{"error":"unsupported_token_type"}"#, None)
        ),
        RevocationOutcome::UnsupportedTokenType
    );
    assert_eq!(
        classify_revocation(
            cfg,
            &resp(
                400,
                r#"{"error":"invalid_token","error_description":"Token expired or revoked"}"#,
                None
            )
        ),
        RevocationOutcome::AlreadyInvalid
    );
    assert_eq!(
        classify_revocation(
            cfg,
            &resp(
                401,
                r#"{"error":"invalid_client","error_description":"bad\nsecret"}"#,
                None
            )
        ),
        RevocationOutcome::Rejected {
            status: 401,
            error: Some(OAuthErrorCode::InvalidClient),
            description: Some("badsecret".into())
        }
    );
    assert_eq!(
        classify_revocation(cfg, &resp(404, "<html>", None)),
        RevocationOutcome::Rejected {
            status: 404,
            error: None,
            description: None
        }
    );
    assert!(matches!(
        classify_revocation(cfg, &resp(302, "", None)),
        RevocationOutcome::Rejected { status: 302, .. }
    ));
    // 200 with an error body: an error only for providers flagged as doing that.
    let err200 = resp(200, r#"{"error":"invalid_client"}"#, None);
    assert_eq!(
        classify_revocation(cfg, &err200),
        RevocationOutcome::Revoked
    );
    let mut q = Quirks::default();
    q.errors_with_200 = true;
    let flagged = builder(ClientAuth::Basic).quirks(q).build().unwrap();
    assert!(matches!(
        classify_revocation(flagged.config(), &err200),
        RevocationOutcome::Rejected { status: 200, .. }
    ));
}

#[test]
fn debug_output_never_shows_secrets() {
    use consentry::connector::{Catalogue, ClientRegistration};
    let secret = "TOP-SECRET-VALUE";
    let c = builder(ClientAuth::Basic)
        .client_secret(ClientSecret::new(secret))
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains(secret));
    assert!(!format!("{:?}", c.config()).contains(secret));
    let reg = ClientRegistration::new("id").with_secret(ClientSecret::new(secret));
    assert!(!format!("{reg:?}").contains(secret));
    let from_catalogue = Catalogue::builtin()
        .unwrap()
        .connector("google", reg)
        .unwrap();
    assert!(!format!("{from_catalogue:?}").contains(secret));
    let r = refresh_token_request(c.config(), &RefreshToken::new(secret), None).unwrap();
    assert!(!format!("{:?}", r.headers()).contains(secret));
    assert!(format!("{:?}", r.headers()).contains("Sensitive"));
}
