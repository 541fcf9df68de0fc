//! Provider token responses as they really come, through the whole
//! `complete_connect`: quirks are accepted where the connector says so,
//! everything malformed is a typed error, and nothing is written then.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use consentry::connector::{AccountSource, ClientAuth, OAuth2Connector, Quirks, ScopeFormat};
use consentry::http::{self, HttpRequest, Response, StatusCode};
use consentry::store::{ConnectionStore, CredentialStore, MemoryStore};
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{Error, ErrorKind, Integrations, UserId};

/// A provider whose token endpoint answers `body` with `status`.
fn integrations(status: u16, body: Vec<u8>, quirks: Quirks) -> (Integrations, MemoryStore) {
    let token = Arc::new(Mutex::new((status, body)));
    let http = http::from_fn(move |req: HttpRequest| {
        let token = token.clone();
        async move {
            let (status, body) = if req.uri().path() == "/userinfo" {
                (
                    200,
                    br#"{"sub":"acct-1","email":"a@example.test"}"#.to_vec(),
                )
            } else {
                token.lock().unwrap().clone()
            };
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok(r)
        }
    });
    let connector = OAuth2Connector::builder("prov".parse().unwrap())
        .authorization_url(Url::parse("https://as.example/authorize").unwrap())
        .token_url(Url::parse("https://as.example/token").unwrap())
        .client_id("client")
        .client_auth(ClientAuth::None)
        .quirks(quirks)
        .account(AccountSource::userinfo(
            Url::parse("https://as.example/userinfo").unwrap(),
        ))
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let i = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(http)
        .connector(connector)
        .redirect_uri(Url::parse("https://app.example/cb").unwrap())
        .build()
        .unwrap();
    (i, store)
}

async fn complete(i: &Integrations, user: &UserId) -> Result<consentry::Connection, Error> {
    let start = i
        .begin_connect(user, &"prov".parse().unwrap(), &[])
        .await
        .unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let callback = Url::parse(&format!(
        "https://app.example/cb?code=the-code&state={state}"
    ))
    .unwrap();
    i.complete_connect(user, &callback).await
}

async fn assert_nothing_written(store: &MemoryStore, user: &UserId) {
    assert!(
        store.list_connections(user).await.unwrap().is_empty(),
        "a connection was written"
    );
    assert!(
        store.list_credentials(user).await.unwrap().is_empty(),
        "credentials were written"
    );
}

fn lenient() -> Quirks {
    let mut q = Quirks::default();
    q.errors_with_200 = true;
    q.expires_in_as_string = true;
    q.token_type_optional = true;
    q.scope_format = ScopeFormat::CommaString;
    q
}

#[tokio::test]
async fn quirky_but_valid_responses_connect() {
    let user = UserId::new("u").unwrap();
    let cases: [(&str, Quirks, &[&str]); 3] = [
        (
            r#"{"access_token":"a","token_type":"bearer","expires_in":"3600","scope":"read,write"}"#,
            lenient(),
            &["read", "write"],
        ),
        (
            r#"{"access_token":"a","scope":["read","profile"]}"#,
            lenient(),
            &["read", "profile"],
        ),
        (
            r#"{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r","extra":{"x":1}}"#,
            Quirks::default(),
            &[],
        ),
    ];
    for (body, quirks, scopes) in cases {
        let (i, _) = integrations(200, body.as_bytes().to_vec(), quirks);
        let c = complete(&i, &user)
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        let got: Vec<_> = c.scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, scopes, "{body}");
        assert_eq!(c.account.id, "acct-1");
    }
}

#[tokio::test]
async fn malformed_responses_are_typed_errors_and_write_nothing() {
    let user = UserId::new("u").unwrap();
    let five_mb = {
        let mut b = br#"{"access_token":""#.to_vec();
        b.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
        b.extend_from_slice(br#""}"#);
        b
    };
    let cases: Vec<(&str, u16, Vec<u8>, Quirks, ErrorKind)> = vec![
        (
            "error with HTTP 200",
            200,
            br#"{"error":"invalid_grant","error_description":"code expired"}"#.to_vec(),
            lenient(),
            ErrorKind::ReauthRequired,
        ),
        (
            "error with HTTP 400",
            400,
            br#"{"error":"invalid_client"}"#.to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "string expires_in without the quirk",
            200,
            br#"{"access_token":"a","token_type":"Bearer","expires_in":"3600"}"#.to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "no access_token",
            200,
            br#"{"token_type":"Bearer"}"#.to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "no token_type without the quirk",
            200,
            br#"{"access_token":"a"}"#.to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "invalid JSON",
            200,
            b"{\"access_token\": ".to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "not JSON at all",
            200,
            b"<html>oops</html>".to_vec(),
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "non-UTF-8",
            200,
            vec![0xff, 0xfe, 0x00],
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "a 5 MB body",
            200,
            five_mb,
            Quirks::default(),
            ErrorKind::Upstream,
        ),
        (
            "server error",
            503,
            b"down".to_vec(),
            Quirks::default(),
            ErrorKind::Unavailable,
        ),
    ];
    for (what, status, body, quirks, kind) in cases {
        let (i, store) = integrations(status, body, quirks);
        let err = complete(&i, &user).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{what}: {err}");
        let problem = err.to_problem();
        assert!(
            !problem.detail.contains("aaaaaaaa"),
            "{what}: the body leaks into the problem"
        );
        assert_nothing_written(&store, &user).await;
    }
}

#[tokio::test]
async fn disconnect_does_not_get_stuck_on_an_unreadable_token() {
    let body =
        br#"{"access_token":"a","refresh_token":"r","token_type":"Bearer","expires_in":3600}"#
            .to_vec();
    let (i, store) = integrations(200, body, Quirks::default());
    let user = UserId::new("u").unwrap();
    let c = complete(&i, &user).await.unwrap();
    // Corrupt the stored refresh token.
    let key = consentry::store::CredentialKey::new(
        user.clone(),
        c.id.clone(),
        consentry::vault::CredentialKind::RefreshToken,
    );
    store
        .put_credentials(vec![consentry::store::CredentialWrite::new(
            key,
            vec![1, 2, 3],
        )])
        .await
        .unwrap();
    let report = i.disconnect(&user, &c.id).await.unwrap();
    assert_eq!(
        report.refresh_token,
        Some(consentry::integrations::RevocationResult::Unreadable)
    );
    assert!(report.connection_deleted);
    assert_nothing_written(&store, &user).await;
}
