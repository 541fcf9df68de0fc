//! OAuth error codes, callback errors, and the sanitiser for provider text.

use std::fmt;

/// The longest provider-supplied description kept, in characters.
///
/// ```
/// use consentry::Error;
/// use consentry::http::Response;
/// use consentry::oauth::{parse_token_response, MAX_DESCRIPTION_CHARS};
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let body = format!(r#"{{"error":"invalid_grant","error_description":"{}"}}"#, "x".repeat(1000));
/// let response = Response::builder().status(400).body(body.into_bytes())?;
/// let Err(Error::OAuth { description: Some(d), .. }) = parse_token_response(acme.config(), &response) else {
///     unreachable!()
/// };
/// assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS + 1); // cut, and marked with '…'
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// The longest unrecognised error code kept, in characters.
///
/// ```
/// use consentry::oauth::{OAuthErrorCode, MAX_ERROR_CODE_CHARS};
/// let long = OAuthErrorCode::parse(&"x".repeat(1000));
/// assert_eq!(long.as_str().len(), MAX_ERROR_CODE_CHARS);
/// ```
pub const MAX_ERROR_CODE_CHARS: usize = 64;

/// An OAuth 2.0 error code (RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core
/// §3.1.2.6, RFC 7009 §2.2.1, RFC 6750 §3.1).
///
/// Codes this crate acts on have their own variant; anything else is kept in
/// [`OAuthErrorCode::Other`], reduced to the characters RFC 6749 allows in an
/// error code and to [`MAX_ERROR_CODE_CHARS`] characters.
///
/// ```
/// use consentry::oauth::OAuthErrorCode;
///
/// assert_eq!(OAuthErrorCode::parse("invalid_grant"), OAuthErrorCode::InvalidGrant);
/// assert_eq!(OAuthErrorCode::InvalidGrant.as_str(), "invalid_grant");
/// let odd = OAuthErrorCode::parse("bad\nthing");
/// assert_eq!(odd, OAuthErrorCode::Other("badthing".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: the request was malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (wrong id or secret).
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired,
    /// revoked, or was issued to another client. For a refresh token this
    /// can also mean another process already rotated it: re-read the store
    /// before declaring the connection dead.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is unknown or not allowed.
    InvalidScope,
    /// `access_denied`: the user (or the provider's policy) refused.
    AccessDenied,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `server_error`: the provider failed; try again later.
    ServerError,
    /// `temporarily_unavailable`: the provider is overloaded or in
    /// maintenance; try again later.
    TemporarilyUnavailable,
    /// `interaction_required` (OpenID Connect).
    InteractionRequired,
    /// `login_required` (OpenID Connect).
    LoginRequired,
    /// `consent_required` (OpenID Connect).
    ConsentRequired,
    /// `account_selection_required` (OpenID Connect).
    AccountSelectionRequired,
    /// `unsupported_token_type` (RFC 7009): the provider cannot revoke this
    /// kind of token.
    UnsupportedTokenType,
    /// `invalid_token` (RFC 6750): the token is expired, revoked or malformed.
    InvalidToken,
    /// Any other code, sanitised and bounded.
    Other(String),
}

impl OAuthErrorCode {
    /// Maps a wire error code to a variant. Never fails: unknown codes become
    /// [`OAuthErrorCode::Other`], stripped to RFC 6749's error-code
    /// characters (`%x20-21 / %x23-5B / %x5D-7E`) and bounded.
    ///
    /// ```
    /// use consentry::oauth::OAuthErrorCode;
    /// assert_eq!(OAuthErrorCode::parse("access_denied"), OAuthErrorCode::AccessDenied);
    /// // Unknown codes are kept, without characters RFC 6749 does not allow:
    /// assert_eq!(OAuthErrorCode::parse("bad_verification_code\"\n").as_str(), "bad_verification_code");
    /// ```
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "interaction_required" => Self::InteractionRequired,
            "login_required" => Self::LoginRequired,
            "consent_required" => Self::ConsentRequired,
            "account_selection_required" => Self::AccountSelectionRequired,
            "unsupported_token_type" => Self::UnsupportedTokenType,
            "invalid_token" => Self::InvalidToken,
            other => Self::Other(
                other
                    .chars()
                    .filter(|&c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
                    .take(MAX_ERROR_CODE_CHARS)
                    .collect(),
            ),
        }
    }

    /// The wire form of the code.
    ///
    /// ```
    /// use consentry::oauth::OAuthErrorCode;
    /// assert_eq!(OAuthErrorCode::AccessDenied.as_str(), "access_denied");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InteractionRequired => "interaction_required",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidToken => "invalid_token",
            Self::Other(s) => s,
        }
    }

    /// Whether the grant behind this error is gone and the user has to
    /// connect again (`invalid_grant`, `invalid_token`, and the OpenID
    /// Connect `*_required` codes).
    ///
    /// ```
    /// use consentry::oauth::OAuthErrorCode;
    /// assert!(OAuthErrorCode::InvalidGrant.needs_reauth());
    /// assert!(!OAuthErrorCode::ServerError.needs_reauth());
    /// ```
    pub fn needs_reauth(&self) -> bool {
        matches!(
            self,
            Self::InvalidGrant
                | Self::InvalidToken
                | Self::InteractionRequired
                | Self::LoginRequired
                | Self::ConsentRequired
                | Self::AccountSelectionRequired
        )
    }

    /// Whether the provider says the failure is temporary (`server_error`,
    /// `temporarily_unavailable`).
    ///
    /// ```
    /// use consentry::oauth::OAuthErrorCode;
    /// assert!(OAuthErrorCode::TemporarilyUnavailable.is_transient());
    /// assert!(!OAuthErrorCode::InvalidClient.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::ServerError | Self::TemporarilyUnavailable)
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why an authorization callback was refused before any token was requested.
///
/// None of these carries a value taken from the callback: a forged callback
/// cannot put text into logs or problem documents through them.
///
/// ```
/// use consentry::oauth::CallbackError;
/// assert_eq!(CallbackError::MissingState.to_string(), "the callback has no `state` parameter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The callback URL is not the registered redirect URI (scheme, host,
    /// port or path differ, or a query parameter of the redirect URI is
    /// missing or changed).
    #[error("the callback URL does not match the redirect URI")]
    RedirectMismatch,
    /// The callback URL is longer than the limit.
    #[error("the callback URL is too long")]
    TooLong,
    /// An OAuth parameter appears more than once (RFC 6749 §3.1).
    #[error("the callback repeats the `{0}` parameter")]
    DuplicateParameter(&'static str),
    /// There is no `state` parameter.
    #[error("the callback has no `state` parameter")]
    MissingState,
    /// The `state` does not belong to a pending authorization (unknown,
    /// expired, already used, or another user's). Raised by the caller that
    /// looks the state up, not by the parser.
    #[error("the callback's `state` is unknown, expired, already used, or not this user's")]
    InvalidState,
    /// There is neither a `code` nor an `error` parameter.
    #[error("the callback has no `code` parameter")]
    MissingCode,
    /// The provider sends `iss` (RFC 9207) but this callback has none.
    #[error("the callback has no `iss` parameter, which this provider always sends")]
    MissingIssuer,
    /// The `iss` parameter names another authorization server (a mix-up
    /// attack, RFC 9207).
    #[error("the callback's `iss` does not match the provider's issuer")]
    IssuerMismatch,
    /// A parameter value is empty, too long, or has control characters.
    #[error("the callback's `{0}` parameter is malformed")]
    Malformed(&'static str),
}

/// Makes untrusted provider text safe to show and log: drops control and
/// bidirectional-override characters and keeps at most `max` characters
/// (an ellipsis marks a cut).
pub(crate) fn sanitize_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut kept = 0;
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        if kept == max {
            out.push('…');
            break;
        }
        out.push(c);
        kept += 1;
    }
    out
}

/// [`sanitize_text`] for an `error_description`; `None` when nothing remains.
pub(crate) fn sanitize_description(text: &str) -> Option<String> {
    let s = sanitize_text(text.trim(), MAX_DESCRIPTION_CHARS);
    (!s.trim().is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ErrorKind};

    #[test]
    fn known_codes_round_trip() {
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "unsupported_response_type",
            "server_error",
            "temporarily_unavailable",
            "interaction_required",
            "login_required",
            "consent_required",
            "account_selection_required",
            "unsupported_token_type",
            "invalid_token",
        ] {
            let parsed = OAuthErrorCode::parse(code);
            assert!(!matches!(parsed, OAuthErrorCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
    }

    #[test]
    fn unknown_codes_are_sanitised_and_bounded() {
        let long = "x".repeat(1000);
        assert_eq!(
            OAuthErrorCode::parse(&long).as_str().len(),
            MAX_ERROR_CODE_CHARS
        );
        assert_eq!(OAuthErrorCode::parse("a\"b\\c\u{202E}é").as_str(), "abc");
    }

    #[test]
    fn descriptions_are_bounded_and_stripped() {
        let d = sanitize_description("bad\r\nthing\u{1b}[31m\u{202E}x").unwrap();
        assert_eq!(d, "badthing[31mx");
        let long = sanitize_description(&"é".repeat(10_000)).unwrap();
        assert_eq!(long.chars().count(), MAX_DESCRIPTION_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(sanitize_description(" \n\t "), None);
    }

    #[test]
    fn oauth_errors_are_classified_for_the_caller() {
        let oauth = |code: &str| Error::OAuth {
            error: OAuthErrorCode::parse(code),
            description: None,
        };
        assert_eq!(oauth("invalid_grant").kind(), ErrorKind::ReauthRequired);
        assert_eq!(oauth("access_denied").kind(), ErrorKind::AccessDenied);
        assert_eq!(
            oauth("temporarily_unavailable").kind(),
            ErrorKind::Unavailable
        );
        assert!(oauth("server_error").kind().is_retryable());
        assert_eq!(oauth("invalid_client").kind(), ErrorKind::Upstream);
        assert_eq!(oauth("bad_verification_code").kind(), ErrorKind::Upstream);
        assert!(oauth("invalid_grant").is_invalid_grant());
        assert!(!oauth("invalid_client").is_invalid_grant());
        let status = |status| Error::UpstreamStatus {
            what: "token endpoint",
            status,
        };
        assert_eq!(status(503).kind(), ErrorKind::Unavailable);
        assert_eq!(status(429).kind(), ErrorKind::Unavailable);
        assert_eq!(status(404).kind(), ErrorKind::Upstream);
        assert_eq!(
            Error::Callback(CallbackError::MissingState).kind(),
            ErrorKind::InvalidCallback
        );
        assert_eq!(
            Error::Callback(CallbackError::MissingState)
                .to_problem()
                .status,
            400
        );
    }

    #[test]
    fn provider_descriptions_reach_problems_only_in_their_sanitised_form() {
        let err = Error::OAuth {
            error: OAuthErrorCode::InvalidGrant,
            description: sanitize_description("token\nrevoked\u{7}"),
        };
        let p = err.to_problem();
        assert_eq!(p.status, 401);
        assert_eq!(
            p.detail,
            "the provider refused the request (invalid_grant): tokenrevoked"
        );
        let upstream = Error::InvalidResponse {
            what: "token response",
            reason: "not JSON".into(),
        };
        assert_eq!(upstream.to_problem().status, 502);
        assert!(!upstream.to_problem().detail.contains("JSON"));
    }
}
