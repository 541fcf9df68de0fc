//! Token introspection (RFC 7662).

use serde_json::Value;

use super::error::sanitize_text;
use super::response::{body_object, oauth_error};
use super::token::{Form, post_form};
use super::{MAX_TOKEN_RESPONSE_BYTES, RevocableToken};
use crate::connector::{MAX_SCOPES, OAuth2Config};
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::ids::Scope;

const WHAT: &str = "introspection response";

/// What an introspection endpoint says about a token.
///
/// ```
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::http::Response;
/// use consentry::oauth::parse_introspection;
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .introspection_url(Url::parse("https://as.example/introspect")?)
///     .client_id("rs").client_auth(ClientAuth::None).build()?;
/// let body = br#"{"active":true,"scope":"openid email","sub":"u1","exp":1900000000,"client_id":"app"}"#;
/// let i = parse_introspection(c.config(), &Response::new(body.to_vec()))?;
/// assert!(i.active);
/// assert_eq!(i.sub.as_deref(), Some("u1"));
/// assert_eq!(i.exp, Some(1_900_000_000));
/// assert_eq!(i.scopes.map(|s| s.len()), Some(2));
/// let revoked = parse_introspection(c.config(), &Response::new(br#"{"active":false}"#.to_vec()))?;
/// assert!(!revoked.active);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is currently active (not expired, not revoked).
    pub active: bool,
    /// `scope`, if given (split on spaces; invalid tokens skipped).
    pub scopes: Option<Vec<Scope>>,
    /// `client_id`, if given.
    pub client_id: Option<String>,
    /// `sub`, if given.
    pub sub: Option<String>,
    /// `exp` (seconds since the Unix epoch), if given.
    pub exp: Option<u64>,
}

/// The introspection request for `token`, or `None` when the connector has
/// no introspection endpoint. Body: `token`, `token_type_hint`, then the
/// connector's client authentication.
///
/// ```
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::oauth::{introspection_request, RevocableToken};
/// use consentry::secret::{AccessToken, ClientSecret};
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .introspection_url(Url::parse("https://as.example/introspect")?)
///     .client_id("rs").client_secret(ClientSecret::new("s")).client_auth(ClientAuth::Post)
///     .build()?;
/// let at = AccessToken::new("at");
/// let req = introspection_request(c.config(), RevocableToken::Access(&at))?.unwrap();
/// assert_eq!(req.uri(), "https://as.example/introspect");
/// assert_eq!(req.body(), b"token=at&token_type_hint=access_token&client_id=rs&client_secret=s");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the token is empty.
pub fn introspection_request(
    config: &OAuth2Config,
    token: RevocableToken<'_>,
) -> Result<Option<HttpRequest>> {
    let Some(url) = config.introspection_url() else {
        return Ok(None);
    };
    if token.secret().is_empty() {
        return Err(Error::invalid("token to introspect", "must not be empty"));
    }
    let mut form = Form::new();
    form.pair("token", token.secret())
        .pair("token_type_hint", token.hint());
    post_form(config, url, form).map(Some)
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidResponse {
        what: WHAT,
        reason: reason.into(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(|s| sanitize_text(s, 256))
        .filter(|s| !s.is_empty())
}

/// Parses an introspection response (RFC 7662 §2.2).
///
/// ```
/// use consentry::Error;
/// use consentry::http::Response;
/// use consentry::oauth::{parse_introspection, OAuthErrorCode};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let refused = Response::builder().status(401).body(br#"{"error":"invalid_client"}"#.to_vec())?;
/// let err = parse_introspection(acme.config(), &refused).unwrap_err();
/// assert!(matches!(err, Error::OAuth { error: OAuthErrorCode::InvalidClient, .. }));
/// let no_active = Response::new(br#"{"sub":"u1"}"#.to_vec());
/// assert!(matches!(parse_introspection(acme.config(), &no_active), Err(Error::InvalidResponse { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::OAuth`] or [`Error::UpstreamStatus`] for a non-2xx response;
/// [`Error::InvalidResponse`] if the body is too large, not a JSON object,
/// or has no boolean `active`.
pub fn parse_introspection(
    config: &OAuth2Config,
    response: &HttpResponse,
) -> Result<Introspection> {
    let len = response.body().len();
    if len > MAX_TOKEN_RESPONSE_BYTES {
        return Err(invalid(format!(
            "the body is {len} bytes; the limit is {MAX_TOKEN_RESPONSE_BYTES}"
        )));
    }
    let parsed = body_object(response);
    if !response.status().is_success() {
        if let Some(e) = parsed
            .as_ref()
            .ok()
            .and_then(|(o, _)| oauth_error(o, config.quirks()))
        {
            return Err(e);
        }
        return Err(Error::UpstreamStatus {
            what: "introspection endpoint",
            status: response.status().as_u16(),
        });
    }
    let (obj, _) = parsed.map_err(|r| invalid(format!("the body is {r}")))?;
    let active = obj
        .get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid("the body has no boolean `active`"))?;
    let scopes = obj.get("scope").and_then(Value::as_str).map(|s| {
        s.split(' ')
            .filter_map(|x| Scope::new(x).ok())
            .take(MAX_SCOPES)
            .collect()
    });
    Ok(Introspection {
        active,
        scopes,
        client_id: text(obj.get("client_id")),
        sub: text(obj.get("sub")),
        exp: obj.get("exp").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{ClientAuth, OAuth2Connector};
    use url::Url;

    fn config(with_endpoint: bool) -> OAuth2Connector {
        let mut b = OAuth2Connector::builder("t".parse().unwrap())
            .authorization_url(Url::parse("https://as.example/a").unwrap())
            .token_url(Url::parse("https://as.example/t").unwrap())
            .client_id("c")
            .client_auth(ClientAuth::None);
        if with_endpoint {
            b = b.introspection_url(Url::parse("https://as.example/i").unwrap());
        }
        b.build().unwrap()
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        ::http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn requests_need_an_endpoint() {
        let rt = crate::secret::RefreshToken::new("r");
        assert!(
            introspection_request(config(false).config(), RevocableToken::Refresh(&rt))
                .unwrap()
                .is_none()
        );
        let r = introspection_request(config(true).config(), RevocableToken::Refresh(&rt))
            .unwrap()
            .unwrap();
        assert_eq!(
            r.body(),
            b"token=r&token_type_hint=refresh_token&client_id=c"
        );
    }

    #[test]
    fn responses_are_checked() {
        let c = config(true);
        let cfg = c.config();
        assert!(
            parse_introspection(cfg, &resp(200, r#"{"active":false,"exp":-1}"#))
                .is_ok_and(|i| !i.active && i.exp.is_none())
        );
        for body in [r#"{}"#, r#"{"active":"true"}"#, "[]", "nope"] {
            assert!(
                matches!(
                    parse_introspection(cfg, &resp(200, body)),
                    Err(Error::InvalidResponse { .. })
                ),
                "{body}"
            );
        }
        assert!(matches!(
            parse_introspection(cfg, &resp(401, r#"{"error":"invalid_client"}"#)),
            Err(Error::OAuth { .. })
        ));
        assert!(matches!(
            parse_introspection(cfg, &resp(500, "")),
            Err(Error::UpstreamStatus { status: 500, .. })
        ));
    }
}
