//! [`Integrations`]: the facade that wires store, vault, HTTP client,
//! connectors and clock into the operations a host calls.
//!
//! A production setup with Google (not run as a test: it needs Google's
//! servers and a user's browser; the examples of the methods run in
//! process):
//!
#![cfg_attr(feature = "sqlite", doc = "```no_run")]
#![cfg_attr(not(feature = "sqlite"), doc = "```ignore")]
//! use consentry::{ConnectorId, Integrations, Purpose, Scope, UserId};
//! use consentry::connector::{Catalogue, ClientRegistration};
//! use consentry::secret::ClientSecret;
//! use consentry::store::SqliteStore;
//! use consentry::url::Url;
//! use consentry::vault::Keyring;
//! # async fn run() -> Result<(), consentry::Error> {
//! let google = Catalogue::builtin()?.connector(
//!     "google",
//!     ClientRegistration::new(std::env::var("GOOGLE_CLIENT_ID").unwrap_or_default())
//!         .with_secret(ClientSecret::new(std::env::var("GOOGLE_CLIENT_SECRET").unwrap_or_default())),
//! )?;
//! let integrations = Integrations::builder()
//!     .store(SqliteStore::open("consentry.db").await?)
//!     .keyring(Keyring::from_env("CONSENTRY_KEYS")?)
//!     .connector(google)
//!     .redirect_uri(Url::parse("https://app.example/oauth/callback").unwrap())
//!     .build()?;
//! let user = UserId::new("alice")?;
//! let start = integrations.begin_connect(&user, &"google".parse()?, &[]).await?;
//! // redirect the browser to start.authorize_url; on the callback:
//! # let callback = start.authorize_url.clone();
//! let connection = integrations.complete_connect(&user, &callback).await?;
//! integrations.grant_consent(&user, &connection.id, &Purpose::new("reminders")?).await?;
//! let token = integrations.access_token(&user, &connection.id, &Purpose::new("reminders")?).await?;
//! # Ok(()) }
//! ```

mod audit;
mod connect;
mod disconnect;
#[doc(hidden)]
pub mod doc_support;
mod flight;
mod harvest;
mod maintenance;
mod refresh;
mod report;
mod token;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use url::Url;

pub use connect::ConnectStart;
pub use disconnect::{DisconnectReport, RevocationResult};
pub use harvest::{FieldMapping, MAX_RECORDS_PER_READ, RecordQuery};
pub use maintenance::MaintenanceReport;
pub use report::{
    ConnectionReport, ErasureReport, PurposeReport, StreamReport, TransparencyReport,
};
pub use token::{AccessToken, TokenOptions};

use crate::clock::{Clock, SystemClock};
use crate::connection::Connection;
use crate::connector::{AuthMethod, Connector, OAuth2Config};
use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventKind, Subscription};
use crate::http::HttpClient;
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::store::{ConsentEntry, Store};
use crate::sync::{Limits, SyncOptions};
use crate::vault::{Keyring, Vault};

/// The in-process lock of each connection's sync runs.
pub(crate) type RunLocks = HashMap<(UserId, ConnectionId), Arc<tokio::sync::Mutex<()>>>;

/// The facade. Cheap to clone; clones share everything.
///
/// ```
/// use consentry::Integrations;
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations: Integrations = doc_support::integrations()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// // ... the user connects an Acme account (begin_connect, complete_connect) ...
/// let crm = Purpose::new("crm_sync")?;
/// integrations.grant_consent(&user, &conn.id, &crm).await?;
/// let token = integrations.access_token(&user, &conn.id, &crm).await?;
/// assert_eq!(token.scopes, conn.scopes);
/// let clone = integrations.clone(); // shares store, vault, connectors, events
/// assert_eq!(clone.connections(&user).await?.len(), 1);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Integrations {
    inner: Arc<Inner>,
}

/// Identical concurrent `access_token` calls in flight, by (user,
/// connection, purpose, options); the note is the leader's audit event.
type TokenFlights =
    flight::Flights<token::TokenKey, AccessToken, Option<Arc<crate::audit::AuditEvent>>>;

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    vault: Vault,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    connectors: HashMap<ConnectorId, Arc<dyn Connector>>,
    redirect_uri: Url,
    options: Options,
    events: EventBus,
    /// In-flight `access_token` calls, shared by identical concurrent calls,
    /// with the leader's `credential.read` audit event (none with the log
    /// off) for its followers to queue.
    tokens: TokenFlights,
    /// In-flight refreshes, one per connection.
    refreshes: flight::Flights<(UserId, ConnectionId), token::Fresh>,
    /// Prefix of lease owner tokens: unique per `Integrations` instance.
    instance: String,
    sync: SyncOptions,
    limits: Limits,
    running: Mutex<RunLocks>,
    audit: Option<crate::audit::AuditLog>,
}

#[derive(Debug, Clone)]
struct Options {
    refresh_margin: Duration,
    state_ttl: Duration,
    refresh_lease: Option<Duration>,
    policy_version: String,
    maintenance_interval: Duration,
    maintenance_batch: usize,
    max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            refresh_margin: Duration::from_secs(5 * 60),
            state_ttl: Duration::from_secs(10 * 60),
            refresh_lease: Some(Duration::from_secs(60)),
            policy_version: "1".to_owned(),
            maintenance_interval: Duration::from_secs(60),
            maintenance_batch: 100,
            max_backoff: Duration::from_secs(60 * 60),
        }
    }
}

impl fmt::Debug for Integrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self
            .inner
            .connectors
            .keys()
            .map(ConnectorId::as_str)
            .collect();
        ids.sort_unstable();
        f.debug_struct("Integrations")
            .field("connectors", &ids)
            .field("redirect_uri", &self.inner.redirect_uri.as_str())
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Integrations`]: `store`, `keyring`, at least one
/// `connector` and `redirect_uri` are required; `http` defaults to
/// [`ReqwestClient`](crate::http::ReqwestClient) (feature `reqwest`) and
/// `clock` to the system clock.
///
/// ```
/// use consentry::Integrations;
/// use consentry::store::MemoryStore;
/// use consentry::url::Url;
/// use consentry::vault::Keyring;
/// # use consentry::connector::{Catalogue, ClientRegistration};
/// # let google = Catalogue::builtin()?.connector("google",
/// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
/// let integrations = Integrations::builder()
///     .store(MemoryStore::new())
///     .keyring(Keyring::generate()?)
/// #   .http(consentry::integrations::doc_support::provider(true))
///     .connector(google)
///     .redirect_uri(Url::parse("https://app.example/oauth/callback")?)
///     .build()?;
/// # let _ = integrations;
/// assert!(Integrations::builder().build().is_err()); // the required parts are missing
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct IntegrationsBuilder {
    store: Option<Arc<dyn Store>>,
    keyring: Option<Keyring>,
    http: Option<Arc<dyn HttpClient>>,
    clock: Arc<dyn Clock>,
    connectors: Vec<Arc<dyn Connector>>,
    redirect_uri: Option<Url>,
    options: Options,
    sync: SyncOptions,
    audit: bool,
}

impl fmt::Debug for IntegrationsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationsBuilder")
            .field("connectors", &self.connectors.len())
            .field("redirect_uri", &self.redirect_uri.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl IntegrationsBuilder {
    /// Where everything is kept.
    ///
    /// ```
    /// use consentry::store::{ConnectionStore, MemoryStore};
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// let store = MemoryStore::new(); // clones share the data
    /// let integrations = builder.store(store.clone()).build()?;
    /// # let user = UserId::new("ada")?;
    /// # doc_support::connect(&integrations, &user).await?;
    /// // ... the user connects an account ...
    /// assert_eq!(store.list_connections(&user).await?.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The keyring that wraps the vault's data keys.
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// # let builder = consentry::integrations::doc_support::builder()?;
    /// let keyring = Keyring::generate()?; // in production: Keyring::from_env("CONSENTRY_KEYS")?
    /// let primary = keyring.primary().clone();
    /// let integrations = builder.keyring(keyring).build()?;
    /// assert_eq!(integrations.vault().keyring().primary(), &primary);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The HTTP client used to talk to providers. It must not follow
    /// redirects.
    ///
    /// ```
    /// use consentry::ErrorKind;
    /// use consentry::http::{self, HttpError, HttpErrorKind, HttpRequest};
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// let offline = http::from_fn(|_: HttpRequest| async {
    ///     Err(HttpError::from_kind(HttpErrorKind::Connect))
    /// });
    /// let integrations = builder.http(offline).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let start = integrations.begin_connect(&user, &"acme".parse()?, &[]).await?;
    /// # let callback = doc_support::callback(&start)?;
    /// let err = integrations.complete_connect(&user, &callback).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Unavailable); // the code exchange could not be sent
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn http(mut self, http: impl HttpClient) -> Self {
        self.http = Some(Arc::new(http));
        self
    }

    /// Adds a connector; a later one with the same id replaces it.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let integrations = builder.connector(google).build()?;
    /// let start = integrations.begin_connect(&UserId::new("ada")?, &"google".parse()?, &[]).await?;
    /// assert_eq!(start.authorize_url.host_str(), Some("accounts.google.com"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn connector(mut self, connector: impl Connector) -> Self {
        self.connectors.push(Arc::new(connector));
        self
    }

    /// The exact redirect URI registered with the providers.
    ///
    /// ```
    /// use consentry::url::Url;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// let integrations = builder.redirect_uri(Url::parse("https://app.example/connect/done")?).build()?;
    /// let start = integrations.begin_connect(&UserId::new("ada")?, &"acme".parse()?, &[]).await?;
    /// let mut query = start.authorize_url.query_pairs();
    /// let sent = query.find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned());
    /// assert_eq!(sent.as_deref(), Some("https://app.example/connect/done"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn redirect_uri(mut self, uri: Url) -> Self {
        self.redirect_uri = Some(uri);
        self
    }

    /// The clock (tests use [`ManualClock`](crate::clock::ManualClock)).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::ManualClock;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let integrations = builder.clock(ManualClock::new(now)).build()?;
    /// let start = integrations.begin_connect(&UserId::new("ada")?, &"acme".parse()?, &[]).await?;
    /// assert_eq!(start.expires_at, now + Duration::from_secs(600)); // the clock's now, plus 10 min
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refresh access tokens that expire within `margin` (default 5 min).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// // Acme's tokens live an hour: with a two-hour margin, every call refreshes.
    /// let integrations = builder.refresh_margin(Duration::from_secs(2 * 3600)).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// let token = integrations.access_token(&user, &conn.id, &crm).await?;
    /// assert_eq!(token.secret.expose_secret(), "acme-at-2"); // refreshed (connecting gave acme-at-1)
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.options.refresh_margin = margin;
        self
    }

    /// How long an authorization may take (default 10 min, at most 1 h).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::clock::ManualClock;
    /// use consentry::oauth::CallbackError;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// # let user = UserId::new("ada")?;
    /// let clock = ManualClock::starting_now();
    /// let integrations = builder.clock(clock.clone()).authorization_ttl(Duration::from_secs(120)).build()?;
    /// let start = integrations.begin_connect(&user, &"acme".parse()?, &[]).await?;
    /// clock.advance(Duration::from_secs(121)); // the user took too long
    /// # let callback = doc_support::callback(&start)?;
    /// let late = integrations.complete_connect(&user, &callback).await;
    /// assert!(matches!(late, Err(Error::Callback(CallbackError::InvalidState))));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn authorization_ttl(mut self, ttl: Duration) -> Self {
        self.options.state_ttl = ttl.min(Duration::from_secs(3600));
        self
    }

    /// The cross-process refresh lease: only the process holding it calls
    /// the provider; others wait for its result. Default 60 s; it must be
    /// longer than the HTTP client's total timeout. `None` turns it off
    /// (then only compare-and-swap protects the stored tokens, and two
    /// processes may both call the provider). Keep the lease on when several
    /// processes share the store and the provider rotates refresh tokens
    /// with reuse detection (as `oidc-provider`, Auth0 and Okta do): two
    /// processes presenting the same refresh token at once look like theft
    /// to such a provider, which then revokes the whole grant and the user
    /// must connect again (`tests/oauth_processes.rs` runs without the lease
    /// only with rotation off for that reason).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// // A single process: compare-and-swap alone protects the stored tokens.
    /// let integrations = builder.refresh_lease(None).refresh_margin(Duration::from_secs(2 * 3600)).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// let token = integrations.access_token(&user, &conn.id, &crm).await?;
    /// assert_eq!(token.secret.expose_secret(), "acme-at-2"); // refreshed without a lease
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn refresh_lease(mut self, lease: Option<Duration>) -> Self {
        self.options.refresh_lease = lease;
        self
    }

    /// The version of the consent text recorded with consent changes made
    /// through [`Integrations::grant_consent`] (default `"1"`).
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// # let user = UserId::new("ada")?;
    /// let integrations = builder.policy_version("2026-01").build()?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// integrations.grant_consent(&user, &conn.id, &Purpose::new("crm_sync")?).await?;
    /// assert_eq!(integrations.consent_history(&user).await?[0].policy_version, "2026-01");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn policy_version(mut self, version: impl Into<String>) -> Self {
        self.options.policy_version = version.into();
        self
    }

    /// How often [`Integrations::maintenance`] runs (default 60 s, at least
    /// 10 ms) and how many connections or revocations it handles per round
    /// (default 100, from 1 to 10 000).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::clock::ManualClock;
    /// use consentry::events::EventKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let builder = doc_support::builder()?;
    /// # let user = UserId::new("ada")?;
    /// let clock = ManualClock::starting_now();
    /// let integrations = builder.clock(clock.clone()).maintenance(Duration::from_millis(20), 10).build()?;
    /// # doc_support::connect(&integrations, &user).await?;
    /// let mut events = integrations.subscribe();
    /// let task = tokio::spawn(integrations.maintenance());
    /// tokio::time::sleep(Duration::from_millis(50)).await; // a round or two: nothing to do yet
    /// clock.advance(Duration::from_secs(3500)); // now the token expires in 100 s
    /// assert_eq!(events.recv().await.expect("an event").kind, EventKind::Refreshed); // at the next round
    /// task.abort();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn maintenance(mut self, interval: Duration, batch: usize) -> Self {
        self.options.maintenance_interval = interval.max(Duration::from_millis(10));
        self.options.maintenance_batch = batch.clamp(1, 10_000);
        self
    }

    /// Whether sensitive operations write the tamper-evident
    /// [audit log](crate::audit) (default: on). Turn it off only when the
    /// host audits these operations itself.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let integrations = doc_support::builder()?.audit(false).build()?;
    /// assert!(integrations.audit().is_none());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn audit(mut self, enabled: bool) -> Self {
        self.audit = enabled;
        self
    }

    /// How the sync runtime behaves (budgets, retries, circuit breaker,
    /// scheduler); see [`SyncOptions`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::integrations::doc_support;
    /// use consentry::sync::{Budget, SyncOptions};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let options = SyncOptions::default()
    ///     .run_budget(Duration::from_secs(60))
    ///     .provider_budget("acme".parse()?, Budget::per_second(5));
    /// let integrations = doc_support::builder()?.sync_options(options).build()?;
    /// assert_eq!(integrations.run_due_syncs().await?.started, 0); // nothing connected yet
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn sync_options(mut self, options: SyncOptions) -> Self {
        self.sync = options;
        self
    }

    /// Builds.
    ///
    /// ```
    /// use consentry::{ErrorKind, Integrations};
    /// use consentry::url::Url;
    /// # let builder = consentry::integrations::doc_support::builder()?;
    /// let err = Integrations::builder().build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid integrations: a store is required");
    /// let plain_http = builder.redirect_uri(Url::parse("http://app.example/callback")?).build();
    /// assert_eq!(plain_http.unwrap_err().kind(), ErrorKind::InvalidInput); // https, or http on loopback
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a required part is missing, the redirect
    /// URI is not `https` (or `http` on a loopback host) or has a fragment,
    /// or the policy version is empty or too long.
    pub fn build(self) -> Result<Integrations> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("integrations", "a store is required"))?;
        let keyring = self
            .keyring
            .ok_or_else(|| Error::invalid("integrations", "a keyring is required"))?;
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| Error::invalid("integrations", "a redirect URI is required"))?;
        crate::connector::check_endpoint("redirect_uri", &redirect_uri)?;
        if redirect_uri.fragment().is_some() {
            return Err(Error::invalid("redirect_uri", "must not have a fragment"));
        }
        let http = match self.http {
            Some(http) => http,
            None => default_http()?,
        };
        let version = &self.options.policy_version;
        if version.is_empty()
            || version.len() > crate::store::MAX_POLICY_VERSION_LEN
            || version.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "policy version",
                "must be 1 to 64 bytes without control characters",
            ));
        }
        let connectors = self
            .connectors
            .into_iter()
            .map(|c| (c.id().clone(), c))
            .collect();
        let vault = Vault::new(store.clone(), keyring);
        let audit = self.audit.then(|| {
            crate::audit::AuditLog::build(
                Arc::clone(&store) as Arc<dyn crate::store::AuditStore>,
                crate::audit::KeySource::vault(vault.clone()),
                Arc::clone(&self.clock),
            )
        });
        Ok(Integrations {
            inner: Arc::new(Inner {
                store,
                vault,
                http,
                clock: self.clock,
                connectors,
                redirect_uri,
                options: self.options,
                events: EventBus::default(),
                tokens: flight::Flights::default(),
                refreshes: flight::Flights::default(),
                instance: crate::secret::random_token(10)?,
                sync: self.sync,
                limits: Limits::default(),
                running: Mutex::new(HashMap::new()),
                audit,
            }),
        })
    }
}

#[cfg(feature = "reqwest")]
fn default_http() -> Result<Arc<dyn HttpClient>> {
    Ok(Arc::new(crate::http::ReqwestClient::new()?))
}

#[cfg(not(feature = "reqwest"))]
fn default_http() -> Result<Arc<dyn HttpClient>> {
    Err(Error::invalid(
        "integrations",
        "an HTTP client is required (or enable the `reqwest` feature)",
    ))
}

impl Integrations {
    /// Starts building.
    ///
    /// ```
    /// use consentry::Integrations;
    /// let builder = Integrations::builder(); // then store, keyring, connector, redirect_uri, ...
    /// assert!(builder.build().is_err()); // nothing set yet
    /// ```
    pub fn builder() -> IntegrationsBuilder {
        IntegrationsBuilder {
            store: None,
            keyring: None,
            http: None,
            clock: Arc::new(SystemClock),
            connectors: Vec::new(),
            redirect_uri: None,
            options: Options::default(),
            sync: SyncOptions::default(),
            audit: true,
        }
    }

    /// The vault (for credentials the host manages itself).
    ///
    /// ```
    /// use consentry::secrecy::{ExposeSecret, SecretString};
    /// use consentry::vault::CredentialKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = ConnectionId::new("my-api-key")?;
    /// // A credential the host manages itself, sealed like the OAuth tokens:
    /// let vault = integrations.vault();
    /// vault.put(&user, &conn, CredentialKind::ApiKey, SecretString::from("key-123")).await?;
    /// let key = vault.get(&user, &conn, CredentialKind::ApiKey).await?;
    /// assert_eq!(key.value.expose_secret(), "key-123");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    /// Subscribes to events (see [`events`](crate::events)).
    ///
    /// ```
    /// use consentry::events::EventKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let mut events = integrations.subscribe();
    /// integrations.grant_consent(&user, &conn.id, &Purpose::new("crm_sync")?).await?;
    /// let event = events.recv().await.expect("an event");
    /// assert_eq!(event.kind, EventKind::ConsentGranted);
    /// assert_eq!(event.purpose, Some(Purpose::new("crm_sync")?));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn subscribe(&self) -> Subscription {
        self.inner.events.subscribe()
    }

    /// Every connection of `user`, with status and health.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let connections = integrations.connections(&user).await?;
    /// assert_eq!(connections.len(), 1);
    /// assert_eq!(connections[0].account.name.as_deref(), Some("Ada"));
    /// assert!(integrations.connections(&UserId::new("bob")?).await?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// Storage errors.
    pub async fn connections(&self, user: &UserId) -> Result<Vec<Connection>> {
        self.inner.store.list_connections(user).await
    }

    /// One connection of `user`.
    ///
    /// ```
    /// use consentry::ConnectionStatus;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let c = integrations.connection(&user, &conn.id).await?;
    /// assert_eq!(c.status, ConnectionStatus::Active);
    /// // Another user cannot see it:
    /// let other = integrations.connection(&UserId::new("mallory")?, &conn.id).await;
    /// assert!(matches!(other, Err(Error::NotFound { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none.
    pub async fn connection(&self, user: &UserId, connection: &ConnectionId) -> Result<Connection> {
        self.inner
            .store
            .get_connection(user, connection)
            .await?
            .ok_or(Error::NotFound { what: "connection" })
    }

    /// Records that `user` consents to `purpose` for `connection`, as the
    /// user themselves, under the configured policy version.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let crm = Purpose::new("crm_sync")?;
    /// let before = integrations.access_token(&user, &conn.id, &crm).await;
    /// assert!(matches!(before, Err(Error::ConsentRequired { .. })));
    /// integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// assert!(integrations.access_token(&user, &conn.id, &crm).await.is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if the connection does not exist.
    pub async fn grant_consent(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
    ) -> Result<()> {
        let actor = format!("user:{user}");
        self.record_consent(user, connection, purpose, true, &actor)
            .await
    }

    /// Records that `user` withdraws consent to `purpose` for `connection`.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// integrations.revoke_consent(&user, &conn.id, &crm).await?;
    /// let refused = integrations.access_token(&user, &conn.id, &crm).await;
    /// assert!(matches!(refused, Err(Error::ConsentRequired { .. })));
    /// assert_eq!(integrations.consent_history(&user).await?.len(), 2); // the grant is kept too
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if the connection does not exist.
    pub async fn revoke_consent(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
    ) -> Result<()> {
        let actor = format!("user:{user}");
        self.record_consent(user, connection, purpose, false, &actor)
            .await
    }

    /// Records a consent change made by `actor` (an admin, a support agent,
    /// a migration job): appended to the ledger with the configured policy
    /// version.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// integrations.record_consent(&user, &conn.id, &crm, true, "admin:grace").await?;
    /// let history = integrations.consent_history(&user).await?;
    /// assert_eq!((history[0].actor.as_str(), history[0].granted), ("admin:grace", true));
    /// assert!(integrations.record_consent(&user, &conn.id, &crm, true, "two\nlines").await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if the connection does not exist;
    /// [`Error::InvalidInput`] for an empty, long or multi-line actor.
    pub async fn record_consent(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
        granted: bool,
        actor: &str,
    ) -> Result<()> {
        let result = self
            .apply_consent(user, connection, purpose, granted, actor)
            .await;
        let action = if granted {
            "consent.granted"
        } else {
            "consent.revoked"
        };
        let by = actor
            .parse()
            .unwrap_or_else(|_| crate::audit::AuditActor::Service(actor.to_owned()));
        self.audit_durable(
            crate::audit::AuditEvent::internal(action, Some(by))
                .subject(user)
                .resource(format!("connection:{connection}"))
                .outcome(crate::audit::Outcome::of(&result))
                .detail("purpose", purpose.as_str())
                .detail("policy_version", self.inner.options.policy_version.as_str()),
        )
        .await;
        result
    }

    async fn apply_consent(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
        granted: bool,
        actor: &str,
    ) -> Result<()> {
        let c = self.connection(user, connection).await?;
        let entry = ConsentEntry::new(
            user.clone(),
            connection.clone(),
            purpose.clone(),
            granted,
            actor,
            self.inner.options.policy_version.clone(),
            self.now(),
        );
        self.inner.store.append_consent(entry).await?;
        if granted {
            self.schedule_streams(user, connection, purpose).await?;
        }
        let kind = if granted {
            EventKind::ConsentGranted
        } else {
            EventKind::ConsentRevoked
        };
        self.emit(
            Event::new(
                kind,
                user.clone(),
                connection.clone(),
                c.connector,
                self.now(),
            )
            .with_purpose(purpose.clone()),
        );
        Ok(())
    }

    /// The purposes `user` currently consents to for `connection`.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let (crm, analytics) = (Purpose::new("crm_sync")?, Purpose::new("analytics")?);
    /// integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// integrations.grant_consent(&user, &conn.id, &analytics).await?;
    /// integrations.revoke_consent(&user, &conn.id, &analytics).await?;
    /// assert_eq!(integrations.consented_purposes(&user, &conn.id).await?, [crm]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// Storage errors.
    pub async fn consented_purposes(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Vec<Purpose>> {
        self.inner.store.consented_purposes(user, connection).await
    }

    /// The consent ledger of `user`, oldest first.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// integrations.revoke_consent(&user, &conn.id, &crm).await?;
    /// let history = integrations.consent_history(&user).await?;
    /// let changes: Vec<bool> = history.iter().map(|e| e.granted).collect();
    /// assert_eq!(changes, [true, false]); // oldest first
    /// assert_eq!(history[0].actor, "user:ada");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// Storage errors.
    pub async fn consent_history(&self, user: &UserId) -> Result<Vec<ConsentEntry>> {
        self.inner.store.consent_history(user, None).await
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn clock_now(&self) -> SystemTime {
        self.now()
    }

    pub(crate) fn http_client(&self) -> &Arc<dyn HttpClient> {
        &self.inner.http
    }

    pub(crate) fn sync_options(&self) -> &SyncOptions {
        &self.inner.sync
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn running(&self) -> std::sync::MutexGuard<'_, RunLocks> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn emit_event(&self, event: Event) {
        self.emit(event);
    }

    pub(crate) fn connector_by_id(&self, id: &ConnectorId) -> Result<&Arc<dyn Connector>> {
        self.connector(id)
    }

    /// The clock's time, truncated to milliseconds: the precision every
    /// store keeps, so values returned and values read back are equal.
    fn now(&self) -> SystemTime {
        let t = self.inner.clock.now();
        let extra = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| Duration::from_nanos(u64::from(d.subsec_nanos() % 1_000_000)))
            .unwrap_or_default();
        t - extra
    }

    fn emit(&self, event: Event) {
        self.inner.events.emit(event);
    }

    fn connector(&self, id: &ConnectorId) -> Result<&Arc<dyn Connector>> {
        self.inner
            .connectors
            .get(id)
            .ok_or(Error::NotFound { what: "connector" })
    }

    fn oauth2(&self, id: &ConnectorId) -> Result<&OAuth2Config> {
        match self.connector(id)?.auth() {
            AuthMethod::OAuth2(config) => Ok(config),
            _ => Err(Error::invalid(
                "connector",
                format!("`{id}` does not use OAuth 2.0"),
            )),
        }
    }
}
