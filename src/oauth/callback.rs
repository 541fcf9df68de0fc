//! The authorization response (RFC 6749 §4.1.2, RFC 9207).

use url::{Position, Url};

use super::error::sanitize_description;
use super::{AuthorizationCode, CallbackError, OAuthState};
use crate::connector::OAuth2Config;
use crate::error::{Error, Result};

/// The longest callback URL accepted, in bytes (16 KiB).
///
/// ```
/// use consentry::Error;
/// use consentry::oauth::{parse_callback, CallbackError, MAX_CALLBACK_URL_LEN};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let redirect = Url::parse("https://app.example/cb")?;
/// let long = Url::parse(&format!("{redirect}?code=c&state=s&pad={}", "x".repeat(MAX_CALLBACK_URL_LEN)))?;
/// let err = parse_callback(acme.config(), &long, &redirect).unwrap_err();
/// assert!(matches!(err, Error::Callback(CallbackError::TooLong)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_CALLBACK_URL_LEN: usize = 16 * 1024;

/// The longest `state` or `iss` value accepted, in bytes.
const MAX_STATE_LEN: usize = 1024;

/// The parameters of an authorization response, each allowed once.
const OAUTH_PARAMS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// A successful authorization response.
///
/// The `state` still has to be checked by the caller against the pending
/// authorization it stored: [`parse_callback`] only knows it is present.
///
/// ```
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::oauth;
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .client_id("c").client_auth(ClientAuth::None).build()?;
/// let redirect = Url::parse("https://app.example/cb")?;
/// let cb = oauth::parse_callback(c.config(), &Url::parse("https://app.example/cb?code=C&state=S")?, &redirect)?;
/// assert_eq!((cb.code.expose_secret(), cb.state.expose_secret()), ("C", "S"));
/// assert!(cb.iss.is_none());
/// assert!(!format!("{cb:?}").contains("C\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Callback {
    /// The authorization code.
    pub code: AuthorizationCode,
    /// The `state`, to look up the pending authorization with.
    pub state: OAuthState,
    /// The `iss` parameter (RFC 9207), if sent; already checked against the
    /// connector's issuer.
    pub iss: Option<String>,
}

/// The single, well-formed `state` of a callback URL, if it has one.
///
/// For discarding a pending authorization when [`parse_callback`] fails
/// (the user denied access, the provider failed): an error response
/// carries the `state` too.
///
/// ```
/// use consentry::oauth::callback_state;
/// use consentry::url::Url;
/// let u = Url::parse("https://app.example/cb?error=access_denied&state=abc")?;
/// assert_eq!(callback_state(&u).unwrap().expose_secret(), "abc");
/// let twice = Url::parse("https://app.example/cb?state=a&state=b")?;
/// assert!(callback_state(&twice).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn callback_state(callback: &Url) -> Option<OAuthState> {
    if callback.as_str().len() > MAX_CALLBACK_URL_LEN {
        return None;
    }
    let mut found = None;
    for (k, v) in callback.query_pairs() {
        if k == "state" {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    let v = found?;
    well_formed(&v, MAX_STATE_LEN).then(|| OAuthState::new(v.into_owned()))
}

fn well_formed(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !value.contains(char::is_control)
}

/// Parses and checks the URL the provider redirected the browser to.
///
/// In order:
/// 1. at most [`MAX_CALLBACK_URL_LEN`] bytes;
/// 2. scheme, host, port and path equal `expected_redirect`'s, and each
///    query parameter of `expected_redirect` is present with its value
///    (the fragment is ignored);
/// 3. none of `code`, `state`, `iss`, `error`, `error_description`,
///    `error_uri` appears twice (RFC 6749 §3.1); other parameters (Google's
///    `scope`, `authuser`, ...) are ignored;
/// 4. `state` is present (error responses included);
/// 5. `iss` (RFC 9207): required when the connector says the provider
///    sends it, and when present compared exactly with the connector's
///    issuer;
/// 6. an `error` becomes [`Error::OAuth`] with the sanitised
///    `error_description`;
/// 7. `code` is present.
///
/// ```
/// use consentry::{Error, ErrorKind};
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::oauth::{self, CallbackError, OAuthErrorCode};
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .issuer("https://as.example").issuer_in_callback(true)
///     .client_id("c").client_auth(ClientAuth::None).build()?;
/// let redirect = Url::parse("https://app.example/cb")?;
/// let parse = |s: &str| oauth::parse_callback(c.config(), &Url::parse(s).unwrap(), &redirect);
///
/// let denied = parse("https://app.example/cb?error=access_denied&error_description=No%0Athanks&state=s&iss=https%3A%2F%2Fas.example").unwrap_err();
/// assert!(matches!(&denied, Error::OAuth { error: OAuthErrorCode::AccessDenied, description: Some(d) } if d == "Nothanks"));
/// assert_eq!(denied.kind(), ErrorKind::AccessDenied);
///
/// let mixup = parse("https://app.example/cb?code=c&state=s&iss=https%3A%2F%2Fevil.example").unwrap_err();
/// assert!(matches!(mixup, Error::Callback(CallbackError::IssuerMismatch)));
/// let elsewhere = parse("https://app.example/other?code=c&state=s&iss=https%3A%2F%2Fas.example").unwrap_err();
/// assert!(matches!(elsewhere, Error::Callback(CallbackError::RedirectMismatch)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Callback`] for the checks above, [`Error::OAuth`] for an error
/// response.
pub fn parse_callback(
    config: &OAuth2Config,
    callback: &Url,
    expected_redirect: &Url,
) -> Result<Callback> {
    if callback.as_str().len() > MAX_CALLBACK_URL_LEN {
        return Err(CallbackError::TooLong.into());
    }
    if callback[..Position::AfterPath] != expected_redirect[..Position::AfterPath] {
        return Err(CallbackError::RedirectMismatch.into());
    }
    let pairs: Vec<_> = callback.query_pairs().collect();
    for (k, v) in expected_redirect.query_pairs() {
        let mut same = pairs.iter().filter(|(pk, _)| *pk == k);
        match (same.next(), same.next()) {
            (Some((_, pv)), None) if *pv == v => {}
            _ => return Err(CallbackError::RedirectMismatch.into()),
        }
    }
    let mut values: [Option<&str>; 6] = [None; 6];
    for (k, v) in &pairs {
        if let Some(i) = OAUTH_PARAMS.iter().position(|p| p == k) {
            if values[i].is_some() {
                return Err(CallbackError::DuplicateParameter(OAUTH_PARAMS[i]).into());
            }
            values[i] = Some(v);
        }
    }
    let [code, state, iss, error, description, _error_uri] = values;

    let state = state.ok_or(CallbackError::MissingState)?;
    if !well_formed(state, MAX_STATE_LEN) {
        return Err(CallbackError::Malformed("state").into());
    }
    if let Some(iss) = iss
        && !well_formed(iss, MAX_STATE_LEN)
    {
        return Err(CallbackError::Malformed("iss").into());
    }
    match (iss, config.issuer()) {
        (None, _) if config.issuer_in_callback() => {
            return Err(CallbackError::MissingIssuer.into());
        }
        (Some(got), Some(want)) if got != want => {
            return Err(CallbackError::IssuerMismatch.into());
        }
        _ => {}
    }
    if let Some(error) = error {
        return Err(Error::OAuth {
            error: config.quirks().error_code(error),
            description: description.and_then(sanitize_description),
        });
    }
    let code = code.ok_or(CallbackError::MissingCode)?;
    if !well_formed(code, MAX_CALLBACK_URL_LEN) {
        return Err(CallbackError::Malformed("code").into());
    }
    Ok(Callback {
        code: AuthorizationCode::new(code),
        state: OAuthState::new(state),
        iss: iss.map(str::to_owned),
    })
}
