//! Token endpoint requests (RFC 6749 §4.1.3 and §6) and client
//! authentication (RFC 6749 §2.3.1), shared with revocation.

use ::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use base64::Engine as _;
use url::Url;
use url::form_urlencoded::{Serializer, byte_serialize};

use super::{AuthorizationCode, PkceVerifier};
use crate::connector::{ClientAuth, MAX_SCOPES, OAuth2Config};
use crate::error::{Error, Result};
use crate::http::HttpRequest;
use crate::ids::Scope;
use crate::secret::RefreshToken;

/// A form body under construction.
pub(super) struct Form(Serializer<'static, String>);

impl Form {
    pub(super) fn new() -> Self {
        Self(Serializer::new(String::new()))
    }

    pub(super) fn pair(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.append_pair(key, value);
        self
    }
}

/// `application/x-www-form-urlencoded` encoding of one value, as RFC 6749
/// Appendix B requires for the client id and secret in HTTP Basic (a space
/// becomes `+`, `:` becomes `%3A`).
fn form_encode(value: &str) -> String {
    byte_serialize(value.as_bytes()).collect()
}

/// Adds client authentication to a form and returns the `Authorization`
/// header value, if any.
fn authenticate(config: &OAuth2Config, form: &mut Form) -> Result<Option<::http::HeaderValue>> {
    let secret = config.client_secret().map(|s| s.expose_secret());
    match (config.client_auth(), secret) {
        (ClientAuth::Basic, Some(secret)) => {
            let raw = zeroize::Zeroizing::new(format!(
                "{}:{}",
                form_encode(config.client_id()),
                form_encode(secret)
            ));
            let encoded = zeroize::Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
            ));
            let mut value = ::http::HeaderValue::from_str(&encoded)
                .map_err(|_| Error::Internal("a base64 header value was refused"))?;
            value.set_sensitive(true);
            Ok(Some(value))
        }
        (ClientAuth::Post, Some(secret)) => {
            form.pair("client_id", config.client_id())
                .pair("client_secret", secret);
            Ok(None)
        }
        (ClientAuth::None, _) => {
            form.pair("client_id", config.client_id());
            Ok(None)
        }
        // The builder refuses basic/post without a secret.
        (_, None) => Err(Error::Internal("client secret missing for basic/post auth")),
    }
}

/// A `POST` of `form` to `url` with the configured client authentication,
/// `Content-Type: application/x-www-form-urlencoded` and
/// `Accept: application/json`.
pub(super) fn post_form(config: &OAuth2Config, url: &Url, mut form: Form) -> Result<HttpRequest> {
    let auth = authenticate(config, &mut form)?;
    let body = form.0.finish().into_bytes();
    let mut builder = ::http::Request::post(url.as_str())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json");
    if let Some(auth) = auth {
        builder = builder.header(AUTHORIZATION, auth);
    }
    builder
        .body(body)
        .map_err(|_| Error::invalid("endpoint url", "cannot be used as a request URI"))
}

/// The token request exchanging an authorization code (RFC 6749 §4.1.3).
///
/// Body, in order: `grant_type=authorization_code`, `code`,
/// `redirect_uri`, `code_verifier` (when the connector uses PKCE), one
/// `resource` per RFC 8707 indicator, then client authentication:
/// `client_id` + `client_secret` (post), `client_id` (none), or an
/// `Authorization: Basic` header with the form-urlencoded id and secret
/// (basic, RFC 6749 §2.3.1). The `Authorization` header is marked
/// sensitive.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration};
/// use consentry::oauth::{self, AuthorizationCode, PkceVerifier};
/// use consentry::secret::ClientSecret;
/// use consentry::url::Url;
///
/// let spotify = Catalogue::builtin()?.connector("spotify",
///     ClientRegistration::new("my app").with_secret(ClientSecret::new("p:ss")))?;
/// let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
/// let req = oauth::authorization_code_request(spotify.config(), &AuthorizationCode::new("c0de"),
///     &Url::parse("https://app.example/cb")?, Some(&verifier))?;
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.uri(), "https://accounts.spotify.com/api/token");
/// // base64("my+app:p%3Ass")
/// assert_eq!(req.headers()["authorization"], "Basic bXkrYXBwOnAlM0Fzcw==");
/// assert_eq!(std::str::from_utf8(req.body())?, "grant_type=authorization_code&code=c0de\
///     &redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
///     &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the connector uses PKCE and no verifier is
/// given, or the code is empty.
pub fn authorization_code_request(
    config: &OAuth2Config,
    code: &AuthorizationCode,
    redirect_uri: &Url,
    pkce_verifier: Option<&PkceVerifier>,
) -> Result<HttpRequest> {
    if code.expose_secret().is_empty() {
        return Err(Error::invalid("authorization code", "must not be empty"));
    }
    let mut form = Form::new();
    form.pair("grant_type", "authorization_code")
        .pair("code", code.expose_secret())
        .pair("redirect_uri", redirect_uri.as_str());
    match (config.pkce(), pkce_verifier) {
        (true, Some(v)) => {
            form.pair("code_verifier", v.expose_secret());
        }
        (true, None) => {
            return Err(Error::invalid(
                "pkce",
                "this connector uses PKCE: pass the verifier stored with the state",
            ));
        }
        (false, _) => {}
    }
    for r in config.resources() {
        form.pair("resource", r.as_str());
    }
    post_form(config, config.token_url(), form)
}

/// The token request using a refresh token (RFC 6749 §6).
///
/// Body: `grant_type=refresh_token`, `refresh_token`, `scope` (only when
/// `scopes` is given, to narrow the grant; joined with the connector's
/// separator), `resource` indicators, then
/// client authentication as in [`authorization_code_request`].
///
/// ```
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::oauth;
/// use consentry::secret::{ClientSecret, RefreshToken};
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .client_id("id").client_secret(ClientSecret::new("sec")).client_auth(ClientAuth::Post)
///     .build()?;
/// let req = oauth::refresh_token_request(c.config(), &RefreshToken::new("r/1"), None)?;
/// assert!(req.headers().get("authorization").is_none());
/// assert_eq!(req.body(), b"grant_type=refresh_token&refresh_token=r%2F1&client_id=id&client_secret=sec");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the refresh token is empty or more than
/// [`MAX_SCOPES`] scopes are given.
pub fn refresh_token_request(
    config: &OAuth2Config,
    refresh_token: &RefreshToken,
    scopes: Option<&[Scope]>,
) -> Result<HttpRequest> {
    if refresh_token.expose_secret().is_empty() {
        return Err(Error::invalid("refresh token", "must not be empty"));
    }
    let mut form = Form::new();
    form.pair("grant_type", "refresh_token")
        .pair("refresh_token", refresh_token.expose_secret());
    if let Some(scopes) = scopes {
        if scopes.len() > MAX_SCOPES {
            return Err(Error::invalid(
                "scopes",
                format!("more than {MAX_SCOPES} scopes requested"),
            ));
        }
        let joined = scopes
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(config.scope_separator());
        form.pair("scope", &joined);
    }
    for r in config.resources() {
        form.pair("resource", r.as_str());
    }
    post_form(config, config.token_url(), form)
}
