//! Token revocation (RFC 7009).

use std::time::Duration;

use super::response::{body_object, oauth_error};
use super::token::{Form, post_form};
use super::{MAX_TOKEN_RESPONSE_BYTES, OAuthErrorCode};
use crate::connector::OAuth2Config;
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::{AccessToken, RefreshToken};

/// The longest `Retry-After` honoured (one day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A token to revoke or introspect, with its `token_type_hint`.
///
/// ```
/// use consentry::oauth::RevocableToken;
/// use consentry::secret::RefreshToken;
/// let rt = RefreshToken::new("r");
/// assert_eq!(RevocableToken::Refresh(&rt).hint(), "refresh_token");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RevocableToken<'a> {
    /// An access token (`token_type_hint=access_token`).
    Access(&'a AccessToken),
    /// A refresh token (`token_type_hint=refresh_token`). Revoking it
    /// usually revokes the whole grant; revoke it first.
    Refresh(&'a RefreshToken),
}

impl RevocableToken<'_> {
    /// The `token_type_hint` value.
    ///
    /// ```
    /// use consentry::oauth::RevocableToken;
    /// use consentry::secret::AccessToken;
    /// let at = AccessToken::new("ya29.x");
    /// assert_eq!(RevocableToken::Access(&at).hint(), "access_token");
    /// ```
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Access(_) => "access_token",
            Self::Refresh(_) => "refresh_token",
        }
    }

    pub(super) fn secret(&self) -> &str {
        match self {
            Self::Access(t) => t.expose_secret(),
            Self::Refresh(t) => t.expose_secret(),
        }
    }
}

/// The revocation request for `token`, or `None` when the connector has no
/// revocation endpoint.
///
/// Body: `token`, `token_type_hint`, then the same client authentication as
/// at the token endpoint (RFC 7009 §2.1).
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration};
/// use consentry::oauth::{revocation_request, RevocableToken};
/// use consentry::secret::{ClientSecret, RefreshToken};
///
/// let cat = Catalogue::builtin()?;
/// let reg = || ClientRegistration::new("id").with_secret(ClientSecret::new("s"));
/// let google = cat.connector("google", reg())?;
/// let rt = RefreshToken::new("1//0g");
/// let req = revocation_request(google.config(), RevocableToken::Refresh(&rt))?.unwrap();
/// assert_eq!(req.uri(), "https://oauth2.googleapis.com/revoke");
/// assert_eq!(req.body(), b"token=1%2F%2F0g&token_type_hint=refresh_token");
///
/// let spotify = cat.connector("spotify", reg())?;
/// assert!(revocation_request(spotify.config(), RevocableToken::Refresh(&rt))?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the token is empty.
pub fn revocation_request(
    config: &OAuth2Config,
    token: RevocableToken<'_>,
) -> Result<Option<HttpRequest>> {
    let Some(url) = config.revocation_url() else {
        return Ok(None);
    };
    if token.secret().is_empty() {
        return Err(Error::invalid("token to revoke", "must not be empty"));
    }
    let mut form = Form::new();
    form.pair("token", token.secret())
        .pair("token_type_hint", token.hint());
    post_form(config, url, form).map(Some)
}

/// What a revocation response means.
///
/// ```
/// use std::time::Duration;
/// use consentry::oauth::RevocationOutcome;
/// let later = RevocationOutcome::RetryLater { retry_after: Some(Duration::from_secs(30)) };
/// assert!(later.should_retry());
/// assert!(RevocationOutcome::Revoked.is_done());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationOutcome {
    /// The token is revoked (any 2xx; RFC 7009 answers 200 for unknown
    /// tokens too).
    Revoked,
    /// The provider says the token was already invalid (`invalid_token`,
    /// as Google answers for expired or revoked tokens): nothing is left
    /// to revoke.
    AlreadyInvalid,
    /// The provider cannot revoke this kind of token
    /// (`unsupported_token_type`); revoke the other token of the grant.
    UnsupportedTokenType,
    /// The provider is unavailable (503 and other 5xx, 429,
    /// `temporarily_unavailable`): try again later, after `retry_after`
    /// when the provider said (a `Retry-After` in seconds, at most a day).
    RetryLater {
        /// The provider's `Retry-After`, if it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// The provider refused (bad client credentials, a malformed request):
    /// retrying the same request will not help.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The OAuth error, if the body had one.
        error: Option<OAuthErrorCode>,
        /// The sanitised `error_description`, if any.
        description: Option<String>,
    },
}

impl RevocationOutcome {
    /// Whether nothing remains to revoke (`Revoked` or `AlreadyInvalid`).
    ///
    /// ```
    /// use consentry::oauth::RevocationOutcome;
    /// assert!(RevocationOutcome::AlreadyInvalid.is_done()); // nothing left to revoke
    /// assert!(!RevocationOutcome::RetryLater { retry_after: None }.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Revoked | Self::AlreadyInvalid)
    }

    /// Whether the same request should be tried again later.
    ///
    /// ```
    /// use consentry::oauth::RevocationOutcome;
    /// assert!(RevocationOutcome::RetryLater { retry_after: None }.should_retry());
    /// assert!(!RevocationOutcome::UnsupportedTokenType.should_retry());
    /// ```
    pub fn should_retry(&self) -> bool {
        matches!(self, Self::RetryLater { .. })
    }
}

fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let v = response
        .headers()
        .get(::http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Classifies a revocation endpoint's response. Never fails: every
/// response maps to an outcome.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration};
/// use consentry::http::Response;
/// use consentry::oauth::{classify_revocation, RevocationOutcome};
/// use consentry::secret::ClientSecret;
///
/// let google = Catalogue::builtin()?.connector("google",
///     ClientRegistration::new("id").with_secret(ClientSecret::new("s")))?;
/// let cfg = google.config();
/// let resp = |status: u16, body: &str| Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap();
/// assert_eq!(classify_revocation(cfg, &resp(200, "")), RevocationOutcome::Revoked);
/// assert!(classify_revocation(cfg, &resp(503, "")).should_retry());
/// assert_eq!(classify_revocation(cfg, &resp(400, r#"{"error":"unsupported_token_type"}"#)),
///            RevocationOutcome::UnsupportedTokenType);
/// assert!(matches!(classify_revocation(cfg, &resp(401, r#"{"error":"invalid_client"}"#)),
///                  RevocationOutcome::Rejected { status: 401, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn classify_revocation(config: &OAuth2Config, response: &HttpResponse) -> RevocationOutcome {
    let status = response.status();
    let error = if response.body().len() <= MAX_TOKEN_RESPONSE_BYTES {
        body_object(response)
            .ok()
            .and_then(|(obj, _)| oauth_error(&obj, config.quirks()))
    } else {
        None
    };
    let (code, description) = match error {
        Some(Error::OAuth { error, description }) => (Some(error), description),
        _ => (None, None),
    };
    if status.is_success() && !(config.quirks().errors_with_200 && code.is_some()) {
        return RevocationOutcome::Revoked;
    }
    if status.as_u16() == 429 || status.is_server_error() {
        return RevocationOutcome::RetryLater {
            retry_after: retry_after(response),
        };
    }
    match code {
        Some(OAuthErrorCode::UnsupportedTokenType) => RevocationOutcome::UnsupportedTokenType,
        Some(OAuthErrorCode::InvalidToken) => RevocationOutcome::AlreadyInvalid,
        Some(c) if c.is_transient() => RevocationOutcome::RetryLater {
            retry_after: retry_after(response),
        },
        error => RevocationOutcome::Rejected {
            status: status.as_u16(),
            error,
            description,
        },
    }
}
