//! Who connected: the account behind a new access token.

use ::http::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;

use super::error::sanitize_text;
use super::json_object;
pub use crate::connection::AccountInfo;
use crate::connector::AccountSource;
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::AccessToken;

/// The largest account response body accepted, in bytes (1 MiB).
///
/// ```
/// use consentry::Error;
/// use consentry::connector::AccountSource;
/// use consentry::http::Response;
/// use consentry::oauth::{parse_account, MAX_ACCOUNT_RESPONSE_BYTES};
/// use consentry::url::Url;
/// let src = AccountSource::userinfo(Url::parse("https://id.example/userinfo")?);
/// let huge = Response::new(vec![b' '; MAX_ACCOUNT_RESPONSE_BYTES + 1]);
/// assert!(matches!(parse_account(&src, &huge), Err(Error::InvalidResponse { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_ACCOUNT_RESPONSE_BYTES: usize = 1024 * 1024;

/// The longest account id accepted, in bytes.
const MAX_ID_LEN: usize = 256;

const WHAT: &str = "account response";

/// A `GET` of the account endpoint with the access token as a bearer token
/// (the `Authorization` header is marked sensitive) and
/// `Accept: application/json`.
///
/// ```
/// use consentry::connector::AccountSource;
/// use consentry::oauth::account_request;
/// use consentry::secret::AccessToken;
/// use consentry::url::Url;
///
/// let src = AccountSource::userinfo(Url::parse("https://openidconnect.googleapis.com/v1/userinfo")?);
/// let req = account_request(&src, &AccessToken::new("ya29.x"))?;
/// assert_eq!(req.method(), "GET");
/// assert_eq!(req.headers()["authorization"], "Bearer ya29.x");
/// assert!(req.headers()["authorization"].is_sensitive());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the token cannot be sent in a header.
pub fn account_request(source: &AccountSource, token: &AccessToken) -> Result<HttpRequest> {
    let mut auth = ::http::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| Error::invalid("access token", "cannot be sent in a header"))?;
    auth.set_sensitive(true);
    ::http::Request::get(source.url().as_str())
        .header(AUTHORIZATION, auth)
        .header(ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| Error::invalid("account url", "cannot be used as a request URI"))
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidResponse {
        what: WHAT,
        reason: reason.into(),
    }
}

/// A display value: a string (sanitised, bounded) or nothing.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => {
            let s = sanitize_text(s.trim(), 320);
            (!s.is_empty()).then_some(s)
        }
        _ => None,
    }
}

/// Reads the account from the account endpoint's response, following the
/// source's JSON pointers. The id may be a string or an integer.
///
/// ```
/// use consentry::connector::AccountSource;
/// use consentry::http::Response;
/// use consentry::oauth::parse_account;
/// use consentry::url::Url;
///
/// let src = AccountSource::userinfo(Url::parse("https://id.example/userinfo")?);
/// let ok = Response::new(br#"{"sub":"248289761001","email":"jane@example.com","name":"Jane Doe"}"#.to_vec());
/// let a = parse_account(&src, &ok)?;
/// assert_eq!((a.id.as_str(), a.email.as_deref()), ("248289761001", Some("jane@example.com")));
/// let denied = Response::builder().status(401).body(Vec::new())?;
/// assert!(parse_account(&src, &denied).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::UpstreamStatus`] for a non-2xx response;
/// [`Error::InvalidResponse`] if the body is too large, not a JSON object,
/// or has no usable id (missing, empty, longer than 256 bytes, with control
/// characters, or neither a string nor an integer).
pub fn parse_account(source: &AccountSource, response: &HttpResponse) -> Result<AccountInfo> {
    if !response.status().is_success() {
        return Err(Error::UpstreamStatus {
            what: "account endpoint",
            status: response.status().as_u16(),
        });
    }
    let body = response.body();
    if body.len() > MAX_ACCOUNT_RESPONSE_BYTES {
        return Err(invalid(format!(
            "the body is {} bytes; the limit is {MAX_ACCOUNT_RESPONSE_BYTES}",
            body.len()
        )));
    }
    let obj = Value::Object(json_object(body).map_err(|r| invalid(format!("the body is {r}")))?);
    let id = match obj.pointer(source.id_pointer()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(invalid("the account id is neither a string nor an integer")),
        None => return Err(invalid("the body has no account id")),
    };
    if id.is_empty() || id.len() > MAX_ID_LEN || id.contains(char::is_control) {
        return Err(invalid(
            "the account id is empty, longer than 256 bytes, or has control characters",
        ));
    }
    Ok(AccountInfo {
        id,
        email: text(source.email_pointer().and_then(|p| obj.pointer(p))),
        name: text(source.name_pointer().and_then(|p| obj.pointer(p))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn resp(status: u16, body: &str) -> HttpResponse {
        ::http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn userinfo_and_nested_pointers() {
        let oidc = AccountSource::userinfo(Url::parse("https://id.example/me").unwrap());
        let a = parse_account(
            &oidc,
            &resp(200, r#"{"sub":"u-1","email":"a@b.c","name":"A\u0007 B"}"#),
        )
        .unwrap();
        assert_eq!(a.id, "u-1");
        assert_eq!(a.email.as_deref(), Some("a@b.c"));
        assert_eq!(a.name.as_deref(), Some("A B"));
        let nested = AccountSource::api(Url::parse("https://api.example/me").unwrap(), "/user/id")
            .unwrap()
            .with_name("/user/profile/display")
            .unwrap();
        let b = parse_account(
            &nested,
            &resp(200, r#"{"user":{"id":7,"profile":{"display":"Bo"}}}"#),
        )
        .unwrap();
        assert_eq!(
            (b.id.as_str(), b.email, b.name.as_deref()),
            ("7", None, Some("Bo"))
        );
    }

    #[test]
    fn bad_responses_are_typed_errors() {
        let oidc = AccountSource::userinfo(Url::parse("https://id.example/me").unwrap());
        for (status, body) in [
            (200, r#"{"email":"a@b.c"}"#),
            (200, r#"{"sub":""}"#),
            (200, r#"{"sub":1.5}"#),
            (200, r#"{"sub":{"x":1}}"#),
            (200, r#"{"sub":"a\nb"}"#),
            (200, "[]"),
            (200, "not json"),
        ] {
            let e = parse_account(&oidc, &resp(status, body)).unwrap_err();
            assert!(matches!(e, Error::InvalidResponse { .. }), "{body}: {e:?}");
        }
        let long = format!(r#"{{"sub":"{}"}}"#, "x".repeat(257));
        assert!(parse_account(&oidc, &resp(200, &long)).is_err());
        let e = parse_account(&oidc, &resp(401, "")).unwrap_err();
        assert!(matches!(e, Error::UpstreamStatus { status: 401, .. }));
        let big = format!(
            r#"{{"sub":"a","pad":"{}"}}"#,
            "x".repeat(MAX_ACCOUNT_RESPONSE_BYTES)
        );
        assert!(matches!(
            parse_account(&oidc, &resp(200, &big)).unwrap_err(),
            Error::InvalidResponse { .. }
        ));
    }
}
