//! OAuth 2.0 authorization code flow, sans-I/O.
//!
//! Everything here builds [`HttpRequest`]s or URLs and parses
//! [`HttpResponse`]s or callback URLs; nothing opens a connection, reads a
//! clock or touches storage. The caller (the `Integrations` facade, or a
//! host using this module alone) sends requests through an
//! [`HttpClient`](crate::http::HttpClient) and keeps state where it likes.
//! That keeps every protocol decision testable byte for byte and fuzzable.
//!
//! # The flow
//!
//! 1. [`OAuthState::generate`], [`PkceVerifier::generate`] and, for OpenID
//!    providers, [`Nonce::generate`]; store them (the state hashed) bound to
//!    the user; send the browser to [`authorize_url`].
//! 2. The provider redirects back. [`parse_callback`] checks the URL is the
//!    redirect URI, that no parameter is repeated, that `iss` is right
//!    (RFC 9207), and returns the code and state or a typed error. The
//!    caller then looks the state up (single use, short TTL, same user).
//! 3. [`authorization_code_request`] → send → [`parse_token_response`].
//! 4. [`account_request`] → send → [`parse_account`] to learn who connected.
//! 5. Later: [`refresh_token_request`], and on disconnect
//!    [`revocation_request`] and [`classify_revocation`]
//!    ([`introspection_request`] / [`parse_introspection`] check a token's
//!    state where the provider offers RFC 7662).
//!
//! # Protocol choices
//!
//! - **PKCE S256 always**, unless a connector turns it off because the
//!   provider rejects it (RFC 9700 §2.1.1). Even confidential clients use it:
//!   it binds the code to the session that started the flow.
//! - **`iss` checked (RFC 9207)** when the connector says the provider sends
//!   it: a callback without `iss`, or with another server's, is refused,
//!   which defeats mix-up attacks between providers. When the provider does
//!   not advertise it but an `iss` arrives anyway, it is still compared with
//!   the known issuer.
//! - **Exact redirect URI.** The callback must match the redirect URI in
//!   scheme, host, port and path, and keep its query parameters.
//! - **Lenient, bounded parsing.** Token responses are parsed as real
//!   providers write them (errors with HTTP 200, comma or array scopes,
//!   string `expires_in`; see [`Quirks`](crate::connector::Quirks)), with a
//!   size limit and without ever echoing response content into errors.
//!   Provider `error_description`s are stripped of control characters and
//!   cut to [`MAX_DESCRIPTION_CHARS`].
//! - **Redirects are never followed** by the HTTP client (see
//!   [`crate::http`]): a token endpoint that redirects is an error, not a
//!   reason to send the code elsewhere.
//!
//! # Not here
//!
//! ID token signature validation (JWKS) is not implemented: consentry
//! identifies accounts through the userinfo or provider API with the fresh
//! access token instead ([`parse_account`]).
//!
//! ```
//! use consentry::connector::{ClientAuth, OAuth2Connector};
//! use consentry::oauth::{self, OAuthState, PkceVerifier};
//! use consentry::url::Url;
//!
//! let acme = OAuth2Connector::builder("acme".parse()?)
//!     .authorization_url(Url::parse("https://acme.example/authorize")?)
//!     .token_url(Url::parse("https://acme.example/token")?)
//!     .client_id("app")
//!     .client_auth(ClientAuth::None)
//!     .build()?;
//! let redirect = Url::parse("https://app.example/oauth/callback")?;
//! let state = OAuthState::generate()?;
//! let verifier = PkceVerifier::generate()?;
//! let url = oauth::authorize_url(acme.config(), &redirect, &[], &state,
//!     Some(&verifier.challenge()), None, &[])?;
//! assert!(url.as_str().starts_with("https://acme.example/authorize?response_type=code&client_id=app"));
//!
//! // The provider redirects back:
//! let back = Url::parse(&format!("{redirect}?code=abc&state={}", state.expose_secret()))?;
//! let callback = oauth::parse_callback(acme.config(), &back, &redirect)?;
//! assert!(callback.state.ct_eq(&state));
//! let request = oauth::authorization_code_request(acme.config(), &callback.code, &redirect, Some(&verifier))?;
//! assert_eq!(request.uri(), "https://acme.example/token");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde_json::{Map, Value};

#[cfg(doc)]
use crate::http::{HttpRequest, HttpResponse};

mod account;
mod authorize;
mod callback;
pub(crate) mod error;
mod id_token;
mod introspect;
pub mod oauth1;
mod pkce;
mod response;
mod revoke;
mod secrets;
mod token;

pub use account::{AccountInfo, MAX_ACCOUNT_RESPONSE_BYTES, account_request, parse_account};
pub use authorize::authorize_url;
pub use callback::{Callback, MAX_CALLBACK_URL_LEN, callback_state, parse_callback};
pub use error::{CallbackError, MAX_DESCRIPTION_CHARS, MAX_ERROR_CODE_CHARS, OAuthErrorCode};
pub use id_token::{MAX_ID_TOKEN_LEN, id_token_account};
pub use introspect::{Introspection, introspection_request, parse_introspection};
pub use pkce::{PkceChallenge, PkceVerifier};
pub use response::{
    MAX_EXPIRES_IN, MAX_TOKEN_LEN, MAX_TOKEN_RESPONSE_BYTES, TokenResponse, TokenType,
    parse_token_response,
};
pub use revoke::{RevocableToken, RevocationOutcome, classify_revocation, revocation_request};
pub use secrets::{AuthorizationCode, Nonce, OAuthState};
pub use token::{authorization_code_request, refresh_token_request};

/// Parses a body as a JSON object. The error says what is wrong without
/// quoting the body (which may hold tokens).
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) if e.is_eof() => Err("truncated JSON".into()),
        Err(e) => Err(format!(
            "not valid JSON (error at line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}
