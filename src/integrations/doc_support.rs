//! Support for the documentation examples of [`Integrations`]: an
//! `Integrations` on a [`MemoryStore`] whose provider, "Acme", is answered
//! in process (no network), and a helper that connects an account.
//!
//! For documentation examples; not a stable API. It may change or go away
//! in any release.
//!
//! ```
//! use consentry::integrations::doc_support;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let integrations = doc_support::integrations()?;
//! let user = consentry::UserId::new("ada")?;
//! let connection = doc_support::connect(&integrations, &user).await?;
//! assert_eq!(connection.account.email.as_deref(), Some("ada@acme.example"));
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use url::Url;

use super::{ConnectStart, Integrations, IntegrationsBuilder};
use crate::connection::Connection;
use crate::connector::{AccountSource, OAuth2Connector};
use crate::error::{Error, Result};
use crate::http::{self, HttpClient, HttpRequest, Response};
use crate::ids::{ConnectorId, Scope, UserId};
use crate::secret::ClientSecret;
use crate::store::MemoryStore;
use crate::vault::Keyring;

/// The redirect URI the examples' `Integrations` is built with.
pub const REDIRECT_URI: &str = "https://app.example/oauth/callback";

fn url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| Error::invalid("doc support url", e.to_string()))
}

/// The `acme` connector: authorization, token and revocation endpoints at
/// `auth.acme.example`, the account at `api.acme.example/v2/me`, default
/// scope `contacts.read`, optional scope `contacts.write`.
///
/// # Errors
/// None in practice (the settings are constant).
pub fn connector() -> Result<OAuth2Connector> {
    OAuth2Connector::builder(ConnectorId::new("acme")?)
        .name("Acme CRM")
        .authorization_url(url("https://auth.acme.example/oauth/authorize")?)
        .token_url(url("https://auth.acme.example/oauth/token")?)
        .revocation_url(url("https://auth.acme.example/oauth/revoke")?)
        .client_id("acme-client")
        .client_secret(ClientSecret::new("acme-secret"))
        .default_scopes([Scope::new("contacts.read")?])
        .optional_scopes([Scope::new("contacts.write")?])
        .account(
            AccountSource::api(url("https://api.acme.example/v2/me")?, "/id")?
                .with_email("/email")?
                .with_name("/name")?,
        )
        .build()
}

/// Acme's servers, in process. The token endpoint answers every request
/// with new tokens (`acme-at-1`, `acme-rt-1`, then `-2`, ...) valid for an
/// hour, without `scope` (so the requested scopes are granted); the account
/// endpoint names account `u-1234` (Ada, `ada@acme.example`); the
/// revocation endpoint answers 200, or 503 when `revocation_works` is
/// false.
pub fn provider(revocation_works: bool) -> impl HttpClient {
    let issued = Arc::new(AtomicU64::new(0));
    http::from_fn(move |req: HttpRequest| {
        let n = match req.uri().path() {
            "/oauth/token" => issued.fetch_add(1, Ordering::SeqCst) + 1,
            _ => 0,
        };
        async move {
            let (status, body) = match req.uri().path() {
                "/oauth/token" => (
                    200,
                    format!(
                        r#"{{"access_token":"acme-at-{n}","refresh_token":"acme-rt-{n}","expires_in":3600,"token_type":"Bearer"}}"#
                    ),
                ),
                "/v2/me" => (
                    200,
                    r#"{"id":"u-1234","email":"ada@acme.example","name":"Ada"}"#.to_owned(),
                ),
                "/oauth/revoke" if revocation_works => (200, String::new()),
                "/oauth/revoke" => (503, String::new()),
                _ => (404, String::new()),
            };
            Response::builder()
                .status(status)
                .body(body.into_bytes())
                .map_err(|e| http::HttpError::new(http::HttpErrorKind::Other, e))
        }
    })
}

/// A builder with a fresh [`MemoryStore`], a generated keyring,
/// [`provider(true)`](provider), the [`connector`] and [`REDIRECT_URI`];
/// set more, or replace any of them, before `build`.
///
/// # Errors
/// [`Error::Random`] if the system RNG fails.
pub fn builder() -> Result<IntegrationsBuilder> {
    Ok(Integrations::builder()
        .store(MemoryStore::new())
        .keyring(Keyring::generate()?)
        .http(provider(true))
        .connector(connector()?)
        .redirect_uri(url(REDIRECT_URI)?))
}

/// [`builder`], built.
///
/// # Errors
/// [`Error::Random`] if the system RNG fails.
pub fn integrations() -> Result<Integrations> {
    builder()?.build()
}

/// The callback URL Acme would redirect the browser to after the user
/// approved `start`: [`REDIRECT_URI`] with a code and `start`'s `state`.
///
/// # Errors
/// [`Error::InvalidInput`] if `start`'s URL has no `state`.
pub fn callback(start: &ConnectStart) -> Result<Url> {
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Error::invalid("authorize url", "has no state"))?;
    let mut callback = url(REDIRECT_URI)?;
    callback
        .query_pairs_mut()
        .append_pair("code", "acme-code")
        .append_pair("state", &state);
    Ok(callback)
}

/// Connects `user`'s Acme account: `begin_connect`, the user's approval
/// ([`callback`]), `complete_connect`.
///
/// # Errors
/// As [`Integrations::begin_connect`] and [`Integrations::complete_connect`].
pub async fn connect(integrations: &Integrations, user: &UserId) -> Result<Connection> {
    let start = integrations
        .begin_connect(user, &ConnectorId::new("acme")?, &[])
        .await?;
    integrations
        .complete_connect(user, &callback(&start)?)
        .await
}
