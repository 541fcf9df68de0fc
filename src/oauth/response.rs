//! Token responses (RFC 6749 §5.1 and §5.2), parsed leniently and safely.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::sanitize_description;
use super::json_object;
use crate::connector::{MAX_SCOPES, OAuth2Config, Quirks, ScopeFormat};
use crate::error::{Error, Result};
use crate::http::HttpResponse;
use crate::ids::Scope;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The largest token response body accepted, in bytes (1 MiB).
///
/// ```
/// use consentry::Error;
/// use consentry::http::Response;
/// use consentry::oauth::{parse_token_response, MAX_TOKEN_RESPONSE_BYTES};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let huge = Response::new(vec![b' '; MAX_TOKEN_RESPONSE_BYTES + 1]);
/// assert!(matches!(parse_token_response(acme.config(), &huge), Err(Error::InvalidResponse { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// The longest access, refresh or ID token accepted, in bytes (32 KiB).
///
/// ```
/// use consentry::Error;
/// use consentry::http::Response;
/// use consentry::oauth::{parse_token_response, MAX_TOKEN_LEN};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let body = format!(r#"{{"access_token":"{}","token_type":"Bearer"}}"#, "a".repeat(MAX_TOKEN_LEN + 1));
/// let result = parse_token_response(acme.config(), &Response::new(body.into_bytes()));
/// assert!(matches!(result, Err(Error::InvalidResponse { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// The longest lifetime taken from `expires_in` (ten years); longer values
/// are cut to it, so expiry arithmetic cannot overflow.
///
/// ```
/// use consentry::http::Response;
/// use consentry::oauth::{parse_token_response, MAX_EXPIRES_IN};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let body = br#"{"access_token":"at","token_type":"Bearer","expires_in":99999999999}"#;
/// let t = parse_token_response(acme.config(), &Response::new(body.to_vec()))?;
/// assert_eq!(t.expires_in, Some(MAX_EXPIRES_IN)); // cut to ten years
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

const WHAT: &str = "token response";

/// The `token_type` of a token response.
///
/// ```
/// use consentry::oauth::TokenType;
/// assert_eq!(TokenType::parse("bearer"), TokenType::Bearer);
/// assert_eq!(TokenType::parse("DPoP").as_str(), "DPoP");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// `Bearer` (RFC 6750), in any letter case.
    Bearer,
    /// Anything else (`DPoP`, Slack's `bot` and `user`), at most 64
    /// printable ASCII characters.
    Other(String),
}

impl TokenType {
    /// Maps a wire value; `Bearer` is matched case-insensitively.
    ///
    /// ```
    /// use consentry::oauth::TokenType;
    /// assert_eq!(TokenType::parse("BEARER"), TokenType::Bearer);
    /// assert_eq!(TokenType::parse("bot"), TokenType::Other("bot".into()));
    /// ```
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("bearer") {
            Self::Bearer
        } else {
            Self::Other(s.chars().filter(char::is_ascii_graphic).take(64).collect())
        }
    }

    /// The type as text (`Bearer` for [`TokenType::Bearer`]).
    ///
    /// ```
    /// use consentry::oauth::TokenType;
    /// assert_eq!(TokenType::parse("bearer").as_str(), "Bearer"); // normalised
    /// assert_eq!(TokenType::parse("DPoP").as_str(), "DPoP");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bearer => "Bearer",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A successful token response. `Debug` shows no token.
///
/// ```
/// use consentry::oauth::TokenType;
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let c = OAuth2Connector::builder("x".parse()?)
/// #     .authorization_url(Url::parse("https://as.example/auth")?)
/// #     .token_url(Url::parse("https://as.example/token")?)
/// #     .client_id("c").client_auth(ClientAuth::None).build()?;
/// let body = br#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,
///                 "refresh_token":"rt-1","scope":"openid email"}"#;
/// let t = consentry::oauth::parse_token_response(c.config(),
///     &consentry::http::Response::new(body.to_vec()))?;
/// assert_eq!(t.access_token.expose_secret(), "at-1");
/// assert_eq!(t.expires_in, Some(std::time::Duration::from_secs(3600)));
/// assert_eq!(t.token_type, TokenType::Bearer);
/// assert_eq!(t.scopes.as_ref().map(Vec::len), Some(2));
/// assert!(!format!("{t:?}").contains("at-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// A new refresh token. `None` means the provider sent none: keep the
    /// one you have (refresh responses often omit it).
    pub refresh_token: Option<RefreshToken>,
    /// The OpenID Connect ID token, if any.
    pub id_token: Option<IdToken>,
    /// The access token's lifetime, if given (at most [`MAX_EXPIRES_IN`]).
    pub expires_in: Option<Duration>,
    /// The granted scopes, if the provider says; `None` means "as
    /// requested" (RFC 6749 §5.1).
    pub scopes: Option<Vec<Scope>>,
    /// The token type.
    pub token_type: TokenType,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidResponse {
        what: WHAT,
        reason: reason.into(),
    }
}

/// Parses a body as JSON, or as a form when the provider says it is one
/// (GitHub without an `Accept` header). Returns the object and whether it
/// came from a form (every value a string).
pub(super) fn body_object(
    response: &HttpResponse,
) -> std::result::Result<(Map<String, Value>, bool), String> {
    let is_form = response
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return json_object(response.body()).map(|m| (m, false));
    }
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(response.body()) {
        if map
            .insert(k.into_owned(), Value::String(v.into_owned()))
            .is_some()
        {
            return Err("a form with a repeated field".into());
        }
    }
    Ok((map, true))
}

/// The OAuth error in a response object, if there is one.
pub(super) fn oauth_error(obj: &Map<String, Value>, quirks: &Quirks) -> Option<Error> {
    let code = match obj.get("error") {
        Some(Value::String(code)) => quirks.error_code(code),
        _ => return None,
    };
    let description = obj
        .get("error_description")
        .and_then(Value::as_str)
        .and_then(sanitize_description);
    Some(Error::OAuth {
        error: code,
        description,
    })
}

/// A printable-ASCII token of at most [`MAX_TOKEN_LEN`] bytes
/// (RFC 6749 Appendix A: `1*VSCHAR`). `Ok(None)` when absent, null or empty.
fn token_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > MAX_TOKEN_LEN {
                return Err(invalid(format!(
                    "`{key}` is longer than {MAX_TOKEN_LEN} bytes"
                )));
            }
            if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                return Err(invalid(format!(
                    "`{key}` has characters outside printable ASCII"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid(format!("`{key}` is not a string"))),
    }
}

fn expires_in(obj: &Map<String, Value>, strings_allowed: bool) -> Result<Option<Duration>> {
    let secs = match obj.get("expires_in") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                u
            } else if n.as_i64().is_some() {
                return Err(invalid("`expires_in` is negative"));
            } else {
                match n.as_f64() {
                    // Truncation of a finite, non-negative float is intended;
                    // `as` saturates above u64::MAX.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(f) if f.is_finite() && f >= 0.0 => f as u64,
                    _ => return Err(invalid("`expires_in` is negative or not a number")),
                }
            }
        }
        Some(Value::String(s)) => {
            if !strings_allowed {
                return Err(invalid(
                    "`expires_in` is a string; set the `expires_in_as_string` quirk if this provider does that",
                ));
            }
            let s = s.trim();
            if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("`expires_in` is not a non-negative whole number"));
            }
            s.parse::<u64>().unwrap_or(u64::MAX)
        }
        Some(_) => return Err(invalid("`expires_in` is not a number")),
    };
    Ok(Some(Duration::from_secs(secs).min(MAX_EXPIRES_IN)))
}

fn scopes(obj: &Map<String, Value>, format: ScopeFormat) -> Result<Option<Vec<Scope>>> {
    let raw: Vec<&str> = match obj.get("scope") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match format {
            ScopeFormat::CommaString => s.split([',', ' ']).collect(),
            ScopeFormat::SpaceString | ScopeFormat::Array => s.split(' ').collect(),
        },
        Some(Value::Array(items)) => {
            if items.len() > MAX_SCOPES {
                return Err(invalid(format!("more than {MAX_SCOPES} scopes")));
            }
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| invalid("`scope` has a non-string item"))
                })
                .collect::<Result<_>>()?
        }
        Some(_) => return Err(invalid("`scope` is neither a string nor an array")),
    };
    let mut out: Vec<Scope> = Vec::new();
    for s in raw.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        let scope = Scope::new(s).map_err(|_| invalid("`scope` has an invalid scope token"))?;
        if !out.contains(&scope) {
            if out.len() == MAX_SCOPES {
                return Err(invalid(format!("more than {MAX_SCOPES} scopes")));
            }
            out.push(scope);
        }
    }
    Ok(Some(out))
}

/// Parses a token endpoint response, leniently where providers differ and
/// strictly where it matters.
///
/// - A non-2xx response with an OAuth `error` is [`Error::OAuth`]
///   (`invalid_grant` is [`Error::is_invalid_grant`]); without one it is
///   [`Error::UpstreamStatus`].
/// - A 2xx response with an `error` and no `access_token` is
///   [`Error::OAuth`] (GitHub); with the `errors_with_200` quirk, an
///   `error` or Slack's `"ok": false` wins even next to an `access_token`.
/// - `scope` may be a string split per the connector's
///   [`ScopeFormat`] or a JSON array; `expires_in` a number, a float, or
///   (with the quirk) a string; `token_type` may be missing with the
///   quirk. A missing or empty `refresh_token` is `None`: keep the old one.
///   Unknown fields are ignored. A form-encoded body is accepted when its
///   `Content-Type` says so.
/// - Everything is bounded: the body ([`MAX_TOKEN_RESPONSE_BYTES`]), each
///   token ([`MAX_TOKEN_LEN`]), the number of scopes, the lifetime
///   ([`MAX_EXPIRES_IN`]). Errors never quote the body.
///
/// ```
/// use consentry::{Error, ErrorKind};
/// use consentry::connector::{Catalogue, ClientRegistration};
/// use consentry::http::Response;
/// use consentry::oauth::parse_token_response;
/// use consentry::secret::ClientSecret;
///
/// let github = Catalogue::builtin()?.connector("github",
///     ClientRegistration::new("id").with_secret(ClientSecret::new("s")))?;
/// let ok = Response::new(br#"{"access_token":"gho_x","token_type":"bearer","scope":"repo,gist"}"#.to_vec());
/// let t = parse_token_response(github.config(), &ok)?;
/// assert_eq!(t.scopes.unwrap().iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["repo", "gist"]);
/// assert!(t.refresh_token.is_none());
///
/// // GitHub reports a bad code with HTTP 200; its alias maps to invalid_grant.
/// let bad = Response::new(br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#.to_vec());
/// let err = parse_token_response(github.config(), &bad).unwrap_err();
/// assert!(err.is_invalid_grant());
/// assert_eq!(err.kind(), ErrorKind::ReauthRequired);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::OAuth`], [`Error::UpstreamStatus`], or
/// [`Error::InvalidResponse`] as above.
pub fn parse_token_response(
    config: &OAuth2Config,
    response: &HttpResponse,
) -> Result<TokenResponse> {
    let quirks = config.quirks();
    let len = response.body().len();
    if len > MAX_TOKEN_RESPONSE_BYTES {
        return Err(invalid(format!(
            "the body is {len} bytes; the limit is {MAX_TOKEN_RESPONSE_BYTES}"
        )));
    }
    let status = response.status();
    let parsed = body_object(response);
    if !status.is_success() {
        if let Some(err) = parsed
            .as_ref()
            .ok()
            .and_then(|(o, _)| oauth_error(o, quirks))
        {
            return Err(err);
        }
        return Err(Error::UpstreamStatus {
            what: "token endpoint",
            status: status.as_u16(),
        });
    }
    let (obj, from_form) = parsed.map_err(|r| invalid(format!("the body is {r}")))?;
    let has_token = matches!(obj.get("access_token"), Some(Value::String(_)));
    let slack_not_ok = obj.get("ok") == Some(&Value::Bool(false));
    if quirks.errors_with_200 || !has_token {
        if let Some(err) = oauth_error(&obj, quirks) {
            return Err(err);
        }
        if quirks.errors_with_200 && slack_not_ok {
            return Err(Error::OAuth {
                error: crate::oauth::OAuthErrorCode::Other("unknown_error".into()),
                description: None,
            });
        }
    }
    let access_token = token_field(&obj, "access_token")?
        .ok_or_else(|| invalid("the body has no `access_token`"))?;
    let token_type = match obj.get("token_type") {
        Some(Value::String(s)) if !s.is_empty() => TokenType::parse(s),
        None | Some(Value::Null) if quirks.token_type_optional => TokenType::Bearer,
        None | Some(Value::Null) => {
            return Err(invalid(
                "the body has no `token_type`; set the `token_type_optional` quirk if this provider omits it",
            ));
        }
        Some(_) => return Err(invalid("`token_type` is not a non-empty string")),
    };
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        refresh_token: token_field(&obj, "refresh_token")?.map(RefreshToken::new),
        id_token: token_field(&obj, "id_token")?.map(IdToken::new),
        expires_in: expires_in(&obj, quirks.expires_in_as_string || from_form)?,
        scopes: scopes(&obj, quirks.scope_format)?,
        token_type,
    })
}
