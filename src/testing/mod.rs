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
mod resources;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::oneshot;
use url::Url;

use crate::connector::ClientAuth;
use crate::error::{Error, Result};
use crate::secret::ClientSecret;
use state::{Inner, State};

/// The redirect URI registered for the default clients. Nothing listens
/// there: [`TestProvider::authorize`] returns the callback URL instead of
/// following it.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/cb";

/// A client registered at the provider.
///
/// ```
/// use consentry::connector::ClientAuth;
/// use consentry::testing::TestClient;
/// let c = TestClient::new("my-app", ClientAuth::Post, Some("s3cret"))
///     .with_redirect_uri("http://127.0.0.1:3000/oauth/callback");
/// assert_eq!((c.id(), c.auth()), ("my-app", ClientAuth::Post));
/// assert!(c.client_secret().is_some());
/// assert_eq!(c.redirect_uris(), ["http://127.0.0.1:3000/oauth/callback"]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TestClient {
    id: String,
    secret: Option<String>,
    auth: ClientAuth,
    redirect_uris: Vec<String>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("auth", &self.auth)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client with this id, token-endpoint authentication method and
    /// secret (`None` for [`ClientAuth::None`]), registered for
    /// [`DEFAULT_REDIRECT_URI`] until [`with_redirect_uri`](Self::with_redirect_uri).
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// use consentry::testing::TestClient;
    /// let public = TestClient::new("spa", ClientAuth::None, None);
    /// assert!(public.client_secret().is_none());
    /// ```
    pub fn new(id: impl Into<String>, auth: ClientAuth, secret: Option<&str>) -> Self {
        Self {
            id: id.into(),
            secret: secret.map(str::to_owned),
            auth,
            redirect_uris: vec![DEFAULT_REDIRECT_URI.to_owned()],
        }
    }

    /// `client-basic` / `client-basic-secret`, `client_secret_basic`.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(consentry::testing::TestClient::basic().auth(), ClientAuth::Basic);
    /// ```
    pub fn basic() -> Self {
        Self::new(
            "client-basic",
            ClientAuth::Basic,
            Some("client-basic-secret"),
        )
    }

    /// `client-post` / `client-post-secret`, `client_secret_post`.
    ///
    /// ```
    /// assert_eq!(consentry::testing::TestClient::post().id(), "client-post");
    /// ```
    pub fn post() -> Self {
        Self::new("client-post", ClientAuth::Post, Some("client-post-secret"))
    }

    /// `client-public`, a public client (`none`; PKCE protects the code).
    ///
    /// ```
    /// assert!(consentry::testing::TestClient::public().client_secret().is_none());
    /// ```
    pub fn public() -> Self {
        Self::new("client-public", ClientAuth::None, None)
    }

    /// Replaces the registered redirect URIs by `uri` (call again to add more).
    ///
    /// ```
    /// let c = consentry::testing::TestClient::basic()
    ///     .with_redirect_uri("http://127.0.0.1:1/a")
    ///     .with_redirect_uri("http://127.0.0.1:1/b");
    /// assert_eq!(c.redirect_uris().len(), 2);
    /// ```
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        if self.redirect_uris == [DEFAULT_REDIRECT_URI] {
            self.redirect_uris.clear();
        }
        self.redirect_uris.push(uri.into());
        self
    }

    /// The client id.
    ///
    /// ```
    /// assert_eq!(consentry::testing::TestClient::basic().id(), "client-basic");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client secret, as the connector takes it.
    ///
    /// ```
    /// assert!(consentry::testing::TestClient::post().client_secret().is_some());
    /// ```
    pub fn client_secret(&self) -> Option<ClientSecret> {
        self.secret.clone().map(ClientSecret::new)
    }

    /// How the client authenticates at the token endpoint.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(consentry::testing::TestClient::public().auth(), ClientAuth::None);
    /// ```
    pub fn auth(&self) -> ClientAuth {
        self.auth
    }

    /// The registered redirect URIs (exact match, RFC 9700 §4.1.3).
    ///
    /// ```
    /// let c = consentry::testing::TestClient::basic();
    /// assert_eq!(c.redirect_uris(), [consentry::testing::DEFAULT_REDIRECT_URI]);
    /// ```
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    pub(crate) fn secret_str(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

/// What the next token-endpoint call does instead of its normal work
/// ([`TestProvider::fail_next_token`]).
///
/// ```
/// use std::time::Duration;
/// use consentry::testing::Fault;
/// let f = Fault::RateLimited { retry_after: Duration::from_secs(30) };
/// assert_ne!(f, Fault::ServerError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500 Internal Server Error` with `{"error":"server_error"}`.
    ServerError,
    /// `400` with `{"error":"invalid_grant"}` (the grant itself stays valid).
    InvalidGrant,
    /// `429 Too Many Requests` with `Retry-After` in whole seconds.
    RateLimited {
        /// The `Retry-After` value (rounded down to seconds).
        retry_after: Duration,
    },
}

/// Counters of what the provider served ([`TestProvider::stats`]).
///
/// ```
/// let s = consentry::testing::TestProviderStats::default();
/// assert_eq!((s.refresh_grants, s.revocations), (0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestProviderStats {
    /// Token-endpoint requests of any kind, faults included.
    pub token_requests: u64,
    /// Successful `authorization_code` grants.
    pub code_grants: u64,
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Refused `refresh_token` grants (reuse, revoked, expired, faults).
    pub refresh_failures: u64,
    /// Reuses of a rotated refresh token (each revoked its grant).
    pub refresh_reuses: u64,
    /// Revocation requests that revoked a live token.
    pub revocations: u64,
    /// Introspection requests.
    pub introspections: u64,
    /// Userinfo requests.
    pub userinfo_requests: u64,
    /// Resource API requests (`/api/...`).
    pub api_requests: u64,
    /// Token calls answered by a [`Fault`].
    pub faults_served: u64,
}

/// Options for a [`TestProvider`] ([`TestProvider::builder`]).
///
/// ```
/// use std::time::Duration;
/// use consentry::testing::{TestClient, TestProvider};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let provider = TestProvider::builder()
///     .access_token_ttl(Duration::from_secs(2))
///     .refresh_token_ttl(Duration::from_secs(3600))
///     .client(TestClient::basic().with_redirect_uri("http://127.0.0.1:8080/cb"))
///     .items((1..=7).map(|i| serde_json::json!({"id": format!("item-{i}"), "title": "t"})))
///     .page_size(3)
///     .start()
///     .await?;
/// assert_eq!(provider.redirect_uri().as_str(), "http://127.0.0.1:8080/cb");
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TestProviderBuilder {
    clients: Option<Vec<TestClient>>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    rotate: bool,
    token_delay: Duration,
    items: Option<Vec<Value>>,
    page_size: usize,
}

impl Default for TestProviderBuilder {
    fn default() -> Self {
        Self {
            clients: None,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(24 * 3600),
            rotate: true,
            token_delay: Duration::ZERO,
            items: None,
            page_size: 5,
        }
    }
}

impl TestProviderBuilder {
    /// Access-token lifetime (`expires_in`); default one hour. Sub-second
    /// parts count for expiry but `expires_in` is sent in whole seconds
    /// (at least 1).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().access_token_ttl(std::time::Duration::from_secs(1));
    /// # drop(b);
    /// ```
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Refresh-token lifetime; default one day.
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().refresh_token_ttl(std::time::Duration::from_secs(60));
    /// # drop(b);
    /// ```
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Refresh-token rotation (default on): each refresh returns a new
    /// refresh token and retires the old one; presenting a retired one
    /// revokes the grant. Off: the refresh token stays the same.
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().rotate_refresh_tokens(false);
    /// # drop(b);
    /// ```
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.rotate = rotate;
        self
    }

    /// Registers a client. The first call replaces the default clients
    /// ([`TestClient::basic`], [`TestClient::post`], [`TestClient::public`]).
    ///
    /// ```
    /// use consentry::testing::{TestClient, TestProvider};
    /// let b = TestProvider::builder().client(TestClient::public());
    /// # drop(b);
    /// ```
    pub fn client(mut self, client: TestClient) -> Self {
        self.clients.get_or_insert_with(Vec::new).push(client);
        self
    }

    /// Delays every token-endpoint response by `delay` (slow provider).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().token_delay(std::time::Duration::from_millis(50));
    /// # drop(b);
    /// ```
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The JSON items `/api/items` serves (default: 12 items `item-1` ..
    /// `item-12` with `title` and `updated_at`).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().items([serde_json::json!({"id": "a"})]);
    /// # drop(b);
    /// ```
    pub fn items(mut self, items: impl IntoIterator<Item = Value>) -> Self {
        self.items = Some(items.into_iter().collect());
        self
    }

    /// Items per page of `/api/items` unless the request says `page_size`
    /// (default 5; clamped to 1 ..= 100).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().page_size(10);
    /// # drop(b);
    /// ```
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 100);
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving on the current
    /// Tokio runtime. The server stops when the [`TestProvider`] is dropped.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::builder().start().await?;
    /// assert_eq!(p.issuer().host_str(), Some("127.0.0.1"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`] if no port can be bound; [`Error::Random`] if the
    /// system's random generator fails.
    pub async fn start(self) -> Result<TestProvider> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::storage("binding 127.0.0.1 for the test provider", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::storage("reading the test provider's address", e))?;
        let issuer = format!("http://{addr}");
        let items = self.items.unwrap_or_else(resources::default_items);
        let inner = Inner {
            clients: self.clients.unwrap_or_else(|| {
                vec![
                    TestClient::basic(),
                    TestClient::post(),
                    TestClient::public(),
                ]
            }),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            rotate: self.rotate,
            token_delay: self.token_delay,
            items,
            page_size: self.page_size,
            ..Inner::default()
        };
        let state = Arc::new(State::new(issuer.clone(), inner)?);
        let app = authorize::routes()
            .merge(token::routes())
            .merge(resources::routes())
            .layer(axum::extract::DefaultBodyLimit::max(token::MAX_FORM_BYTES))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let issuer = Url::parse(&issuer).map_err(|_| Error::Internal("test provider issuer"))?;
        Ok(TestProvider {
            state,
            addr,
            issuer,
            _shutdown: tx,
        })
    }
}

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
    _shutdown: oneshot::Sender<()>,
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
            .and_then(|c| c.redirect_uris.first())
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
        let auth = client.auth.as_str();
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
    /// [`Error::InvalidInput`] when the provider would show an error page
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
}
