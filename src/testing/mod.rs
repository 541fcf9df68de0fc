//! An OAuth 2.0 authorization server and paged resource API that a host
//! app starts in-process, on 127.0.0.1, in its own tests (feature
//! `testing`).
//!
//! [`TestProvider`] serves RFC 8414 and OpenID Connect discovery, an
//! authorization endpoint (code flow, PKCE S256 required, `plain`
//! refused, `iss` in the response per RFC 9207), a token endpoint
//! (`client_secret_basic`, `client_secret_post` and public clients;
//! `authorization_code` and `refresh_token` grants; refresh-token
//! rotation with reuse detection: presenting a rotated refresh token
//! revokes the whole grant, as `oidc-provider` does), RFC 7009
//! revocation, RFC 7662 introspection, userinfo, and
//! `GET /api/items?page_token=` (bearer-protected, paged JSON) for stream
//! tests. The "user" is scripted: [`TestProvider::authorize`] approves an
//! authorization URL and returns the callback URL the browser would be
//! sent to; [`TestProvider::deny`] declines. Fault switches
//! ([`TestProvider::fail_next_token`], [`TestProvider::set_token_delay`])
//! and counters ([`TestProvider::stats`]) make failure paths testable.
//!
//! It is a test double, not a production server: state lives in memory,
//! ID tokens are signed with a key nobody can verify (consentry reads
//! their claims over TLS-less loopback, as from any token endpoint), and
//! it listens on loopback only.
//!
//! ```
//! use consentry::connector::OAuth2Connector;
//! use consentry::http::ReqwestClient;
//! use consentry::store::MemoryStore;
//! use consentry::testing::{TestClient, TestProvider};
//! use consentry::vault::Keyring;
//! use consentry::{Integrations, Purpose, UserId};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let provider = TestProvider::start().await?;
//! let client = TestClient::basic();
//! let http = ReqwestClient::new()?;
//! let connector = OAuth2Connector::discover(
//!     "test".parse()?, &provider.issuer(), client.id(), client.client_secret(), &http,
//! ).await?;
//! let integrations = Integrations::builder()
//!     .store(MemoryStore::new())
//!     .keyring(Keyring::generate()?)
//!     .http(http)
//!     .connector(connector)
//!     .redirect_uri(provider.redirect_uri())
//!     .build()?;
//!
//! let user = UserId::new("ada")?;
//! let start = integrations.begin_connect(&user, &"test".parse()?, &[]).await?;
//! let callback = provider.authorize(&start.authorize_url, "ada")?; // the user approves
//! let connection = integrations.complete_connect(&user, &callback).await?;
//! assert_eq!(connection.account.email.as_deref(), Some("ada@example.test"));
//!
//! let purpose = Purpose::new("reminders")?;
//! integrations.grant_consent(&user, &connection.id, &purpose).await?;
//! let report = integrations.disconnect(&user, &connection.id).await?;
//! assert!(!report.revocation_pending());
//! // Revoking the refresh token ended the grant, access token included.
//! assert_eq!(provider.stats().revocations, 1);
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```

mod authorize;
mod builder;
mod client;
mod resources;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use url::Url;

use crate::error::Result;
use state::State;

pub use builder::TestProviderBuilder;
pub use client::{DEFAULT_REDIRECT_URI, Fault, TestClient, TestProviderStats};

/// An OAuth 2.0 authorization server and resource API on 127.0.0.1 (see
/// the [module docs](self)). Stops serving when dropped.
///
/// ```
/// use consentry::testing::{Fault, TestProvider};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let provider = TestProvider::start().await?;
/// provider.fail_next_token(Fault::ServerError);
/// assert_eq!(provider.stats().token_requests, 0);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct TestProvider {
    state: Arc<State>,
    addr: SocketAddr,
    issuer: Url,
    /// The running server; `None` between [`TestProvider::stop`] and
    /// [`TestProvider::restart`].
    server: tokio::sync::Mutex<Option<Server>>,
}

/// One run of the HTTP server: stopped by sending on `stop`, finished when
/// `done` ends.
#[derive(Debug)]
struct Server {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    fn serve(listener: tokio::net::TcpListener, state: Arc<State>) -> Self {
        let app = authorize::routes()
            .merge(token::routes())
            .merge(resources::routes())
            .layer(axum::extract::DefaultBodyLimit::max(token::MAX_FORM_BYTES))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { stop, done }
    }
}

impl TestProvider {
    /// Starts a provider with the defaults: the clients [`TestClient::basic`],
    /// [`TestClient::post`] and [`TestClient::public`], a one-hour access
    /// token, a one-day rotating refresh token, 12 items in pages of 5.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let provider = consentry::testing::TestProvider::start().await?;
    /// assert!(provider.issuer().as_str().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`TestProviderBuilder::start`].
    pub async fn start() -> Result<Self> {
        TestProviderBuilder::default().start().await
    }

    /// A builder with options.
    ///
    /// ```
    /// let builder = consentry::testing::TestProvider::builder().rotate_refresh_tokens(false);
    /// # drop(builder);
    /// ```
    pub fn builder() -> TestProviderBuilder {
        TestProviderBuilder::default()
    }

    /// The issuer, `http://127.0.0.1:<port>`: pass it to
    /// [`OAuth2Connector::discover`](crate::connector::OAuth2Connector::discover).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// assert_eq!(p.issuer().port(), Some(p.port()));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn issuer(&self) -> Url {
        self.issuer.clone()
    }

    /// The port it listens on.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert_ne!(consentry::testing::TestProvider::start().await?.port(), 0);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of `path` on the provider, e.g. `/token` or `/api/items`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// assert_eq!(p.url("/api").path(), "/api");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn url(&self, path: &str) -> Url {
        self.issuer
            .join(path)
            .unwrap_or_else(|_| self.issuer.clone())
    }

    /// The first redirect URI of the first registered client
    /// ([`DEFAULT_REDIRECT_URI`] with the defaults).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// assert_eq!(p.redirect_uri().as_str(), consentry::testing::DEFAULT_REDIRECT_URI);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn redirect_uri(&self) -> Url {
        let inner = self.state.lock();
        inner
            .clients
            .first()
            .and_then(|c| c.redirect_uris().first())
            .and_then(|u| Url::parse(u).ok())
            .unwrap_or_else(|| self.issuer.clone())
    }

    /// A TOML [`Catalogue`](crate::connector::Catalogue) entry for this
    /// provider under `id`, for `client`'s authentication method: its endpoints, `iss` support, scopes `openid
    /// email offline_access`, the userinfo account source, and a declared
    /// stream `items` (purpose `purpose`) over `/api/items`.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::testing::{TestClient, TestProvider};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = TestProvider::start().await?;
    /// let c = TestClient::basic();
    /// let reg = ClientRegistration::new(c.id()).with_secret(c.client_secret().unwrap());
    /// let connector = Catalogue::from_toml(&p.catalogue_toml("test", &c, "sync"))?.connector("test", reg)?;
    /// assert!(connector.config().revocation_url().is_some());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn catalogue_toml(&self, id: &str, client: &TestClient, purpose: &str) -> String {
        let auth = client.auth().as_str();
        let base = self.issuer.as_str().trim_end_matches('/');
        let size = self.state.lock().page_size;
        format!(
            r#"[connectors.{id}]
name = "TestProvider"
authorization_url = "{base}/authorize"
token_url = "{base}/token"
revocation_url = "{base}/token/revocation"
introspection_url = "{base}/token/introspection"
issuer = "{base}"
issuer_in_callback = true
client_auth = "{auth}"
api_base_url = "{base}/api"
default_scopes = ["openid", "email", "offline_access"]
account = {{ url = "{base}/me", id = "/sub", email = "/email", name = "/name" }}

[[connectors.{id}.streams]]
name = "items"
purposes = ["{purpose}"]
page_size = {size}
path = "/items"
records = "/items"
id = "/id"
kind = "item"
fields = {{ title = "/title", updated_at = "/updated_at" }}
pagination = "page_token"
token_param = "page_token"
token_pointer = "/next_page_token"
"#
        )
    }

    /// The scripted user `login` approves the authorization request
    /// `authorize_url` (as built by
    /// [`Integrations::begin_connect`](crate::Integrations::begin_connect)):
    /// returns the callback URL the browser would be redirected to, with
    /// `code`, `state` and `iss`. An invalid request whose redirect URI is
    /// trusted (a bad scope, a missing or `plain` PKCE challenge) returns
    /// the callback with `error=...` instead, as a provider would.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// let mut url = p.url("/authorize");
    /// url.query_pairs_mut().extend_pairs([("response_type", "code"), ("client_id", "client-basic"),
    ///     ("redirect_uri", "http://127.0.0.1/cb"), ("state", "xyz"), ("scope", "openid"),
    ///     ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), ("code_challenge_method", "S256")]);
    /// let callback = p.authorize(&url, "ada")?;
    /// assert!(callback.query_pairs().any(|(k, _)| k == "code"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when the provider would show an error page
    /// rather than redirect: unknown client, unregistered redirect URI,
    /// malformed URL.
    pub fn authorize(&self, authorize_url: &Url, login: &str) -> Result<Url> {
        authorize::decide(&self.state, authorize_url, Some(login), SystemTime::now())
    }

    /// The scripted user declines: the callback URL carries
    /// `error=access_denied` (with `state` and `iss`).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// let mut url = p.url("/authorize");
    /// url.query_pairs_mut().extend_pairs([("response_type", "code"), ("client_id", "client-post"),
    ///     ("redirect_uri", "http://127.0.0.1/cb"), ("state", "xyz")]);
    /// let callback = p.deny(&url)?;
    /// assert!(callback.query_pairs().any(|(k, v)| k == "error" && v == "access_denied"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize).
    pub fn deny(&self, authorize_url: &Url) -> Result<Url> {
        authorize::decide(&self.state, authorize_url, None, SystemTime::now())
    }

    /// Queues a fault: the next token-endpoint call (any grant) answers
    /// with it instead of doing its work. Several calls queue several faults.
    ///
    /// ```
    /// use consentry::testing::{Fault, TestProvider};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = TestProvider::start().await?;
    /// p.fail_next_token(Fault::InvalidGrant);
    /// p.clear_faults();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn fail_next_token(&self, fault: Fault) {
        let mut inner = self.state.lock();
        if inner.faults.len() < 1_000 {
            inner.faults.push_back(fault);
        }
    }

    /// Drops every queued fault.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// consentry::testing::TestProvider::start().await?.clear_faults();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Delays every token-endpoint response from now on (`Duration::ZERO`
    /// turns it off).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// p.set_token_delay(std::time::Duration::from_millis(100));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_token_delay(&self, delay: Duration) {
        self.state.lock().token_delay = delay;
    }

    /// Makes `GET /authorize` (a real browser's request) decline with
    /// `access_denied` instead of approving as user `ada`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// consentry::testing::TestProvider::start().await?.set_deny_all(true);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_deny_all(&self, deny: bool) {
        self.state.lock().deny_all = deny;
    }

    /// The counters so far.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// assert_eq!(p.stats(), Default::default());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn stats(&self) -> TestProviderStats {
        self.state.lock().stats.clone()
    }

    /// Sets every counter back to zero.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// consentry::testing::TestProvider::start().await?.reset_stats();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn reset_stats(&self) {
        self.state.lock().stats = TestProviderStats::default();
    }

    /// Whether `token` (access or refresh) is live: issued here, not
    /// expired, rotated or revoked. The same answer as introspection.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// assert!(!p.is_active("made-up"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn is_active(&self, token: &str) -> bool {
        self.state.lock().active(token, SystemTime::now()).is_some()
    }

    /// The user `login` revokes every grant they gave (as on a provider's
    /// "apps with access" page): their tokens stop working at once. Returns
    /// how many grants were revoked.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert_eq!(consentry::testing::TestProvider::start().await?.revoke_user("ada"), 0);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn revoke_user(&self, login: &str) -> usize {
        let mut inner = self.state.lock();
        let ids: Vec<u64> = inner
            .grants
            .iter()
            .filter(|(_, g)| g.login == login && !g.revoked)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            inner.revoke_grant(*id);
        }
        ids.len()
    }

    /// Stops serving, as a provider that is down: connections to its port
    /// are refused until [`restart`](Self::restart). Grants, tokens and
    /// stats are kept. Waits until the server has stopped; stopping a
    /// stopped provider does nothing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// p.stop().await;
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", p.port())).is_err());
    /// p.restart().await?;
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", p.port())).is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn stop(&self) {
        let Some(server) = self.server.lock().await.take() else {
            return;
        };
        let _ = server.stop.send(());
        let _ = server.done.await;
    }

    /// Serves again on the same port, with the same state, after
    /// [`stop`](Self::stop); does nothing while it is serving.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::start().await?;
    /// p.stop().await;
    /// p.restart().await?;
    /// p.restart().await?; // already serving
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the port cannot be bound
    /// again (another program took it).
    pub async fn restart(&self) -> Result<()> {
        let mut server = self.server.lock().await;
        if server.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| crate::Error::storage("binding the test provider's port again", e))?;
        *server = Some(Server::serve(listener, self.state.clone()));
        Ok(())
    }
}
