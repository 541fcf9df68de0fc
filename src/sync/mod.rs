//! The sync runtime: runs connector streams on demand
//! ([`Integrations::sync_now`](crate::Integrations::sync_now)) or on a
//! schedule ([`Integrations::scheduler`](crate::Integrations::scheduler)),
//! at most one run per connection at a time, each run within a time
//! budget and resuming from the saved cursor.
//!
//! - Every page is stored with the cursor that follows it in one
//!   transaction: an interrupted run loses and duplicates nothing.
//! - A stream runs only for purposes that have consent; its records are
//!   held for those purposes.
//! - Rate limits: `429` and `503` with `Retry-After` (seconds or an HTTP
//!   date), `RateLimit-*` and `X-RateLimit-*` headers (the longest wait
//!   wins), plus proactive token buckets per provider and per connection
//!   ([`Budget`]). Other transient failures back off with full jitter up
//!   to a limit; repeated failures open the provider's circuit (its syncs
//!   report `Degraded`) while other providers keep working. A 401 forces
//!   one refresh and one retry; a 401 or 403 after that means the user
//!   must connect again (`ReauthRequired`).
//! - Waits use the injected [`Clock`](crate::clock::Clock): with a
//!   `ManualClock` they take no real time.
//!
//! ```
//! # use std::time::{Duration, SystemTime};
//! # use consentry::{Connection, ConnectionId, Integrations, Purpose, UserId};
//! # use consentry::connection::AccountInfo;
//! # use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
//! # use consentry::http::{self, HttpRequest, Response};
//! # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
//! # use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A provider API with two pages of contacts, behind a closure client.
//! let api = http::from_fn(|req: HttpRequest| async move {
//!     assert_eq!(req.headers()["authorization"], "Bearer ya29.token");
//!     let body = if req.uri().query().unwrap_or("").contains("page=2") {
//!         r#"{"data": [{"id": 3, "name": "Cy"}]}"#
//!     } else {
//!         r#"{"data": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}], "next": "2"}"#
//!     };
//!     Ok(Response::new(body.as_bytes().to_vec()))
//! });
//! let acme = OAuth2Connector::builder("acme".parse()?)
//!     .authorization_url("https://acme.example/authorize".parse().unwrap())
//!     .token_url("https://acme.example/token".parse().unwrap())
//!     .client_id("app")
//!     .no_client_secret()
//!     .client_auth(consentry::connector::ClientAuth::None)
//!     .api_base_url("https://api.acme.example".parse().unwrap())
//!     .stream(StreamSpec::new("contacts")?.with_purposes([Purpose::new("crm_sync")?]).with_http(
//!         HttpStream::new("/contacts", "/data", "/id")?
//!             .with_pagination(Pagination::PageToken { param: "page".into(), pointer: "/next".into() }),
//!     ))
//!     .build()?;
//! let store = MemoryStore::new();
//! let integrations = Integrations::builder()
//!     .store(store.clone())
//!     .keyring(Keyring::generate()?)
//!     .http(api)
//!     .connector(acme)
//!     .redirect_uri("https://app.example/cb".parse().unwrap())
//!     .build()?;
//! # let user = UserId::new("alice")?;
//! # let now = SystemTime::now();
//! # let mut c = Connection::new(ConnectionId::generate()?, user.clone(), "acme".parse()?, AccountInfo::new("a1"), now);
//! # c.access_expires_at = Some(now + Duration::from_secs(3600));
//! # let sealed = integrations.vault().seal(&user, &c.id, vec![CredentialUpdate::new(CredentialKind::AccessToken, "ya29.token".into())]).await?;
//! # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed)).await?;
//! # let connection = c.id.clone();
//! // `connection` was made by `complete_connect`; the user consents:
//! let crm = Purpose::new("crm_sync")?;
//! integrations.grant_consent(&user, &connection, &crm).await?;
//! let report = integrations.sync_now(&user, &connection, "contacts", &crm).await?;
//! assert_eq!((report.pages, report.upserted), (2, 3));
//! assert_eq!(integrations.records(&user, &connection, "contacts", &crm).await?.len(), 3);
//! // In the background instead: spawn the scheduler; drop the task to stop it.
//! let scheduler = tokio::spawn(integrations.scheduler());
//! scheduler.abort();
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```

mod limits;
mod run;
mod scheduler;
mod transport;

use std::time::Duration;

use serde::Serialize;

pub(crate) use limits::Limits;
pub use limits::{
    Budget, MAX_HEADER_WAIT, full_jitter, rate_limit_wait, retry_after, wait_from_headers,
};
pub use scheduler::SchedulerReport;
pub(crate) use transport::Authorized;

use crate::ids::{ConnectionId, ConnectorId, Purpose};
use crate::store::SyncStatus;

/// How the sync runtime behaves. Start from `Default` and change what you
/// need.
///
/// ```
/// use std::time::Duration;
/// use consentry::sync::{Budget, SyncOptions};
/// let opts = SyncOptions::default()
///     .run_budget(Duration::from_secs(30))
///     .breaker(3, Duration::from_secs(120))
///     .provider_budget("spotify".parse()?, Budget::per_second(10));
/// assert_eq!(opts.breaker_failures, 3);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// How long one run may take before it stops and leaves the rest to
    /// the next run (default 5 min).
    pub run_budget: Duration,
    /// The most pages one run fetches (default 10,000).
    pub max_pages: u64,
    /// Retries of a transient failure (5xx, timeouts) per request
    /// (default 4).
    pub max_retries: u32,
    /// Backoff base and cap (default 500 ms, 30 s).
    pub backoff_base: Duration,
    /// See `backoff_base`.
    pub backoff_max: Duration,
    /// The longest rate-limit wait a run sits through; longer waits end the
    /// run with `RateLimited` and it resumes after the wait (default 5 min).
    pub max_wait: Duration,
    /// Failures after which a provider's circuit opens (default 5).
    pub breaker_failures: u32,
    /// How long it stays open (default 60 s).
    pub breaker_cooldown: Duration,
    /// How often a stream runs when neither it nor its connection's
    /// settings say (default 1 h).
    pub default_interval: Duration,
    /// How often the scheduler looks for due streams (default 5 s), how
    /// many it takes per round (default 100), how many run at once
    /// (default 4).
    pub scheduler_tick: Duration,
    /// See `scheduler_tick`.
    pub scheduler_batch: usize,
    /// See `scheduler_tick`.
    pub concurrency: usize,
    /// The budget of each connection (default none).
    pub connection_budget: Option<Budget>,
    /// Budgets per provider.
    pub provider_budgets: Vec<(ConnectorId, Budget)>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            run_budget: Duration::from_secs(300),
            max_pages: 10_000,
            max_retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(60),
            default_interval: Duration::from_secs(3600),
            scheduler_tick: Duration::from_secs(5),
            scheduler_batch: 100,
            concurrency: 4,
            connection_budget: None,
            provider_budgets: Vec::new(),
        }
    }
}

impl SyncOptions {
    /// Sets the time budget of one run (at least 1 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// assert_eq!(SyncOptions::default().run_budget(Duration::from_secs(30)).run_budget, Duration::from_secs(30));
    /// assert_eq!(SyncOptions::default().run_budget(Duration::ZERO).run_budget, Duration::from_secs(1)); // at least 1 s
    /// ```
    #[must_use]
    pub fn run_budget(mut self, budget: Duration) -> Self {
        self.run_budget = budget.max(Duration::from_secs(1));
        self
    }

    /// Sets the most pages per run (at least 1).
    ///
    /// ```
    /// use consentry::sync::SyncOptions;
    /// assert_eq!(SyncOptions::default().max_pages(50).max_pages, 50);
    /// assert_eq!(SyncOptions::default().max_pages(0).max_pages, 1);
    /// ```
    #[must_use]
    pub fn max_pages(mut self, pages: u64) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// Sets retries per request (at most 20) and the backoff base and cap.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// let o = SyncOptions::default().retries(100, Duration::from_secs(2), Duration::from_secs(1));
    /// assert_eq!(o.max_retries, 20); // capped
    /// assert_eq!(o.backoff_max, Duration::from_secs(2)); // never below the base
    /// ```
    #[must_use]
    pub fn retries(mut self, max_retries: u32, base: Duration, max: Duration) -> Self {
        self.max_retries = max_retries.min(20);
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Sets the longest rate-limit wait a run sits through.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// assert_eq!(SyncOptions::default().max_wait(Duration::from_secs(10)).max_wait, Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Opens a provider's circuit after `failures` (at least 1) for
    /// `cooldown`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// let o = SyncOptions::default().breaker(0, Duration::from_secs(30));
    /// assert_eq!((o.breaker_failures, o.breaker_cooldown), (1, Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub fn breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.breaker_failures = failures.max(1);
        self.breaker_cooldown = cooldown;
        self
    }

    /// Sets the default interval between runs of a stream (at least 1 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// assert_eq!(SyncOptions::default().default_interval, Duration::from_secs(3600));
    /// assert_eq!(SyncOptions::default().default_interval(Duration::from_secs(900)).default_interval, Duration::from_secs(900));
    /// ```
    #[must_use]
    pub fn default_interval(mut self, interval: Duration) -> Self {
        self.default_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// Sets the scheduler's tick (at least 10 ms), batch (1 to 10,000) and
    /// concurrency (1 to 64).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::SyncOptions;
    /// let o = SyncOptions::default().scheduler(Duration::ZERO, 0, 1000);
    /// assert_eq!((o.scheduler_tick, o.scheduler_batch, o.concurrency), (Duration::from_millis(10), 1, 64)); // clamped
    /// ```
    #[must_use]
    pub fn scheduler(mut self, tick: Duration, batch: usize, concurrency: usize) -> Self {
        self.scheduler_tick = tick.max(Duration::from_millis(10));
        self.scheduler_batch = batch.clamp(1, 10_000);
        self.concurrency = concurrency.clamp(1, 64);
        self
    }

    /// Sets each connection's budget.
    ///
    /// ```
    /// use consentry::sync::{Budget, SyncOptions};
    /// let o = SyncOptions::default().connection_budget(Budget::per_second(2));
    /// assert_eq!(o.connection_budget, Some(Budget::per_second(2)));
    /// ```
    #[must_use]
    pub fn connection_budget(mut self, budget: Budget) -> Self {
        self.connection_budget = Some(budget);
        self
    }

    /// Sets a provider's budget (replacing an earlier one).
    ///
    /// ```
    /// use consentry::sync::{Budget, SyncOptions};
    /// let o = SyncOptions::default()
    ///     .provider_budget("spotify".parse()?, Budget::per_second(10))
    ///     .provider_budget("spotify".parse()?, Budget::per_second(5));
    /// assert_eq!(o.provider_budgets, [("spotify".parse::<consentry::ConnectorId>()?, Budget::per_second(5))]); // replaced
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn provider_budget(mut self, connector: ConnectorId, budget: Budget) -> Self {
        self.provider_budgets.retain(|(c, _)| *c != connector);
        self.provider_budgets.push((connector, budget));
        self
    }

    pub(crate) fn provider_budget_of(&self, connector: &ConnectorId) -> Option<Budget> {
        self.provider_budgets
            .iter()
            .find(|(c, _)| c == connector)
            .map(|(_, b)| *b)
    }
}

/// What one run did.
///
/// ```
/// // Returned by `Integrations::sync_now` (see the module example).
/// use consentry::store::SyncStatus;
/// fn caught_up(r: &consentry::sync::SyncReport) -> bool { r.status == SyncStatus::Ok }
/// # let _ = caught_up;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// The connection.
    pub connection: ConnectionId,
    /// The stream.
    pub stream: String,
    /// `Ok` (caught up) or `Partial` (stopped at the time budget or page
    /// limit; the next run resumes from the saved cursor).
    pub status: SyncStatus,
    /// Pages fetched.
    pub pages: u64,
    /// Records inserted or updated.
    pub upserted: u64,
    /// Records deleted because the provider deleted them.
    pub deleted: u64,
    /// Records deleted at the end of a sync from scratch (gone at the
    /// provider).
    pub swept: u64,
    /// The purposes the records are held for.
    pub purposes: Vec<Purpose>,
}
