//! The outbound webhook [`Dispatcher`]; see its documentation.

mod admin;
mod attempt;
mod audit;
#[cfg(feature = "reqwest")]
mod client;
mod endpoint;
mod events;
mod options;
mod retry;
mod validate;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, broadcast};

pub use admin::MAX_RECOVER_WINDOW;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use client::{WebhookClient, WebhookClientBuilder};
pub use endpoint::{
    Endpoint, EndpointConfig, EndpointSecrets, EndpointUpdate, MAX_CUSTOM_HEADERS, MAX_EVENT_TYPES,
    MAX_OLD_SECRETS, MAX_URL_LEN,
};
pub use events::{Actor, DISPATCH_EVENT_BUFFER, DispatchEvent, DispatchEventKind, DispatchEvents};
pub use options::{DispatcherOptions, MAX_RETRY_DELAY, MAX_SCHEDULE_LEN};
pub use worker::RunReport;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::ids::{ConnectionId, EndpointId, MessageId, UserId};
use crate::store::{NewMessage, Store};
use crate::vault::{Keyring, Vault};
use crate::webhook::WebhookError;

/// Longest idempotency key accepted, in bytes.
///
/// ```
/// use consentry::webhook::MAX_IDEMPOTENCY_KEY_LEN;
/// assert_eq!(MAX_IDEMPOTENCY_KEY_LEN, 255);
/// ```
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The outbound webhook dispatcher: admin-managed endpoints, a durable
/// outbox, signed deliveries with retries, and SSRF protection. Cheap to
/// clone; clones share everything.
///
/// ```
/// use std::time::Duration;
/// use consentry::store::MemoryStore;
/// use consentry::vault::Keyring;
/// use consentry::webhook::{Actor, Dispatcher, DispatcherOptions, EndpointConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::builder()
///     .store(MemoryStore::new())          // SqliteStore in production
///     .keyring(Keyring::generate()?)      // seals the endpoints' secrets
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// let admin = Actor::admin("alice");
/// let endpoint = dispatcher
///     .create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in").event_types(["user.created"]))
///     .await?;
/// let secret = endpoint.secrets.expect("admins see the secret").current; // give it to the receiver
/// # let _ = secret;
/// let id = dispatcher.publish("user.created", serde_json::json!({"id": "u_1"}), Some("req-1")).await?;
/// assert_eq!(dispatcher.publish("user.created", serde_json::json!({"id": "u_1"}), Some("req-1")).await?, id);
/// // In the host: tokio::spawn(dispatcher.run());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
///
/// # Delivery semantics
///
/// - **At least once.** [`publish`](Dispatcher::publish) writes the message
///   and one delivery per subscribed, enabled endpoint in one transaction.
///   A delivery is marked done only after a `2xx`; a crash between sending
///   and marking means one more attempt later, never a loss.
/// - **A stable `webhook-id`.** Every attempt of a message carries the same
///   `webhook-id` (its [`MessageId`]), so receivers drop duplicates by it
///   (see [`ReplayGuard`](crate::webhook::ReplayGuard)). Each attempt is
///   signed anew (`webhook-timestamp` is the attempt's time) with the
///   endpoint's current secret and, during a rotation's grace period
///   (default 24 h), its previous ones.
/// - **Leases.** Workers claim due deliveries with a lease in the store
///   (an `UPDATE ... RETURNING` over rows whose lease is free or expired),
///   so several [`run`](Dispatcher::run) futures, in several processes,
///   never send one attempt twice while its lease holds. The lease outlives
///   the request timeout; a crashed worker's deliveries are taken over when
///   it expires.
/// - **No redirects; bounded everything.** A `3xx` is a failed attempt; the
///   response body is kept truncated to 20 kB; payloads are limited
///   (default 256 KiB, refused at publish).
///
/// # Retries and disabling
///
/// Svix's rules (reference §3.1, §3.2): attempts immediately, then after
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each delay with ±20 %
/// jitter ([`DispatcherOptions::retry_schedule`]); at least 60 s after a
/// timeout or a `429`; a `Retry-After` (seconds or HTTP date) is honoured
/// within `[delay, 2 × delay]`. A connection refused or reset in under
/// 1 s is tried once more at once, inside the same attempt (Svix's
/// insta-retry; the attempt log shows the final result). Success is any
/// `2xx`. `410 Gone` disables
/// the endpoint at once. When a message exhausts its schedule the
/// endpoint's failure clock starts; an exhaustion more than 5 days later
/// with no success in between disables it (a success resets the clock;
/// after 10 days the old failures are forgiven). Transitions are
/// [`DispatchEvent`]s ([`Dispatcher::subscribe`]). Manual attempts
/// ([`replay`](Dispatcher::replay), [`recover`](Dispatcher::recover)) are
/// tried once and never rescheduled.
///
/// # SSRF protection, and its limits
///
/// Endpoint URLs must be `https` (`http` only to loopback, and loopback only
/// with [`DispatcherOptions::allow_insecure_loopback`]); an IP literal is
/// checked when the endpoint is created or changed. The default HTTP client
/// ([`WebhookClient`](crate::webhook::WebhookClient), feature `reqwest`)
/// checks IP-literal URLs before connecting, resolves host names itself,
/// drops every address that [`ssrf`](crate::webhook::ssrf) blocks (private,
/// loopback, link-local and metadata, CGNAT, multicast, documentation, the
/// IPv4-mapped and NAT64 forms of them, ...), and connects only to an
/// address that passed: no second lookup for DNS rebinding to change.
/// [`DispatcherOptions::allow_network`] lets chosen networks through.
///
/// This is a filter in the application, not a network boundary: it cannot
/// see what a proxy or a NAT does, and a bug in it or in a dependency is an
/// SSRF. Run the dispatcher behind a filtering egress proxy (such as
/// smokescreen) on an isolated network as well, as the Standard Webhooks
/// specification recommends.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    vault: Vault,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    options: DispatcherOptions,
    events: broadcast::Sender<DispatchEvent>,
    wake: Notify,
    runtimes: Mutex<HashMap<EndpointId, Arc<attempt::Runtime>>>,
    limiter: Mutex<HashMap<EndpointId, attempt::Bucket>>,
    instance: String,
    workers: AtomicU64,
    audit: Option<crate::audit::AuditLog>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("store", &self.inner.store)
            .field("http", &self.inner.http)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A payload to publish: a JSON value, or bytes that are JSON (checked at
/// publish).
///
/// ```
/// use consentry::webhook::Payload;
/// let a = Payload::from(serde_json::json!({"a": 1}));
/// let b = Payload::from(br#"{"a":1}"#.as_slice());
/// assert_eq!(a.as_bytes(), b.as_bytes());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(Vec<u8>, bool);

impl Payload {
    /// The bytes that are sent.
    ///
    /// ```
    /// use consentry::webhook::Payload;
    /// assert_eq!(Payload::from("{}").as_bytes(), b"{}");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Self {
        Self::from(&v)
    }
}

impl From<&serde_json::Value> for Payload {
    fn from(v: &serde_json::Value) -> Self {
        // Serializing a `Value` to bytes cannot fail.
        Self(serde_json::to_vec(v).unwrap_or_default(), true)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes, false)
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec(), false)
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec(), false)
    }
}

/// Builds a [`Dispatcher`]: `store` and `keyring` (or `vault`) are
/// required; `http` defaults to a [`WebhookClient`] enforcing the options'
/// egress policy (feature `reqwest`; without it, `http` is required),
/// `clock` to the system clock.
///
/// ```
/// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
/// assert!(Dispatcher::builder().build().is_err()); // a store and a keyring are required
/// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// # let _ = dispatcher;
/// # Ok::<(), consentry::Error>(())
/// ```
#[must_use]
pub struct DispatcherBuilder {
    store: Option<Arc<dyn Store>>,
    keyring: Option<Keyring>,
    vault: Option<Vault>,
    http: Option<Arc<dyn HttpClient>>,
    clock: Arc<dyn Clock>,
    options: DispatcherOptions,
    audit: bool,
}

impl fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DispatcherBuilder {
    /// Where endpoints, messages and the attempt log are kept.
    ///
    /// ```
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// assert!(Dispatcher::builder().keyring(Keyring::generate()?).build().is_err()); // no store
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The keyring sealing the endpoints' secrets (in a vault over the
    /// same store).
    ///
    /// ```
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// assert!(Dispatcher::builder().store(MemoryStore::new()).build().is_err()); // no keyring
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// A vault to seal the endpoints' secrets with, instead of `keyring`
    /// (share the one `Integrations` uses).
    ///
    /// ```
    /// use consentry::{store::MemoryStore, vault::{Keyring, Vault}, webhook::Dispatcher};
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let dispatcher = Dispatcher::builder().store(store).vault(vault)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn vault(mut self, vault: Vault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The HTTP client. It must not follow redirects; it should enforce an
    /// egress policy as [`WebhookClient`] does.
    ///
    /// ```
    /// use consentry::http::{HttpError, HttpErrorKind, from_fn};
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// let offline = from_fn(|_request| async { Err(HttpError::from_kind(HttpErrorKind::Connect)) });
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(offline).build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn http(mut self, http: impl HttpClient) -> Self {
        self.http = Some(Arc::new(http));
        self
    }

    /// The clock (tests use [`ManualClock`](crate::clock::ManualClock)).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{clock::ManualClock, store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).clock(clock)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The options.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::{Dispatcher, DispatcherOptions}};
    /// let options = DispatcherOptions::default().timeout(Duration::from_secs(5));
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).options(options)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// assert!(format!("{dispatcher:?}").contains("5s"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn options(mut self, options: DispatcherOptions) -> Self {
        self.options = options;
        self
    }

    /// Whether endpoint administration (create, change, rotate, delete,
    /// an admin's read of the secrets) writes the [audit log](crate::audit)
    /// in the same store, keyed from the same keyring (default: on).
    ///
    /// ```
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .audit(false).build()?;
    /// assert!(d.audit().is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn audit(mut self, enabled: bool) -> Self {
        self.audit = enabled;
        self
    }

    /// Builds the dispatcher.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] without a store, without a keyring or vault,
    /// or without an HTTP client when the `reqwest` feature is off;
    /// [`Error::Http`] if the default client cannot be built.
    ///
    /// ```
    /// use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// assert!(Dispatcher::builder().store(MemoryStore::new()).build().is_err());
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn build(self) -> Result<Dispatcher> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("dispatcher", "a store is required"))?;
        let vault = match (self.vault, self.keyring) {
            (Some(vault), _) => vault,
            (None, Some(keyring)) => Vault::new(store.clone(), keyring),
            (None, None) => return Err(Error::invalid("dispatcher", "a keyring is required")),
        };
        let http = match self.http {
            Some(http) => http,
            None => default_client(&self.options)?,
        };
        let audit = self.audit.then(|| {
            crate::audit::AuditLog::build(
                Arc::clone(&store) as Arc<dyn crate::store::AuditStore>,
                crate::audit::KeySource::vault(vault.clone()),
                Arc::clone(&self.clock),
            )
        });
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                audit,
                store,
                vault,
                http,
                clock: self.clock,
                options: self.options,
                events: broadcast::Sender::new(DISPATCH_EVENT_BUFFER),
                wake: Notify::new(),
                runtimes: Mutex::new(HashMap::new()),
                limiter: Mutex::new(HashMap::new()),
                instance: crate::secret::random_token(10)?,
                workers: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(feature = "reqwest")]
fn default_client(options: &DispatcherOptions) -> Result<Arc<dyn HttpClient>> {
    Ok(Arc::new(WebhookClient::for_options(options)?))
}

#[cfg(not(feature = "reqwest"))]
fn default_client(_: &DispatcherOptions) -> Result<Arc<dyn HttpClient>> {
    Err(Error::invalid(
        "dispatcher",
        "an HTTP client is required without the `reqwest` feature",
    ))
}

impl Dispatcher {
    /// A builder; see [`DispatcherBuilder`].
    ///
    /// ```
    /// use consentry::{ErrorKind, store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// assert_eq!(Dispatcher::builder().build().unwrap_err().kind(), ErrorKind::InvalidInput);
    /// assert!(Dispatcher::builder().store(MemoryStore::new()).build().is_err()); // no keyring
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// # let _ = d;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn builder() -> DispatcherBuilder {
        DispatcherBuilder {
            store: None,
            keyring: None,
            vault: None,
            http: None,
            clock: Arc::new(SystemClock),
            options: DispatcherOptions::default(),
            audit: true,
        }
    }

    /// The audit log of endpoint administration, unless turned off.
    ///
    /// ```
    /// # use consentry::{store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// use consentry::audit::AuditQuery;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) })).build()?;
    /// d.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let page = d.audit().unwrap().query(&AuditQuery::default().action("webhook_endpoint.created")).await?;
    /// assert_eq!(page.entries.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn audit(&self) -> Option<&crate::audit::AuditLog> {
        self.inner.audit.as_ref()
    }

    /// The options in effect.
    ///
    /// ```
    /// # use consentry::{store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// assert_eq!(d.options().max_attempts(), 8);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn options(&self) -> &DispatcherOptions {
        &self.inner.options
    }

    /// Subscribes to dispatcher events emitted from now on (bounded: a
    /// subscriber more than [`DISPATCH_EVENT_BUFFER`] behind loses the
    /// oldest).
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, DispatchEventKind, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let gone = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(410).body(Vec::new()).unwrap()) });
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(gone).build()?;
    /// d.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let mut events = d.subscribe();
    /// d.publish("a.b", serde_json::json!({}), None).await?;
    /// d.run_once().await?;
    /// assert_eq!(events.try_recv().unwrap().kind, DispatchEventKind::EndpointDisabled);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn subscribe(&self) -> DispatchEvents {
        self.inner.events.subscribe()
    }

    /// Publishes a message of `event_type` to every enabled endpoint
    /// subscribed to it; returns its id. With an `idempotency_key` used
    /// within the idempotency window (default 24 h), returns the first
    /// message's id and writes nothing.
    ///
    /// The message and all its deliveries are written in one transaction;
    /// workers ([`run`](Self::run)) in this process are woken at once.
    ///
    /// # Errors
    /// [`WebhookError::PayloadTooLarge`] over the payload limit;
    /// [`Error::InvalidInput`] if the payload is not JSON or the event type
    /// or key is malformed; [`Error::Storage`] if the store fails.
    ///
    /// ```
    /// # use consentry::{Error, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Dispatcher, DispatcherOptions, WebhookError};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let small = DispatcherOptions::default().max_payload(16);
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).options(small)
    /// #     .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// let err = d.publish("a.b", serde_json::json!({"text": "far too long for sixteen bytes"}), None).await.unwrap_err();
    /// assert!(matches!(err, Error::Webhook(WebhookError::PayloadTooLarge { limit: 16 })));
    /// assert!(d.publish("a.b", b"not json".as_slice(), None).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn publish(
        &self,
        event_type: &str,
        payload: impl Into<Payload>,
        idempotency_key: Option<&str>,
    ) -> Result<MessageId> {
        let Payload(payload, is_json) = payload.into();
        let limit = self.inner.options.max_payload;
        if payload.len() > limit {
            return Err(WebhookError::PayloadTooLarge { limit }.into());
        }
        if !is_json && serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
            return Err(Error::invalid("webhook payload", "not JSON"));
        }
        validate::event_type(event_type)?;
        let now = self.inner.clock.now();
        let mut message = NewMessage::new(MessageId::generate()?, event_type, payload, now);
        if let Some(key) = idempotency_key {
            crate::ids::check_common("idempotency key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
            let until = now
                .checked_add(self.inner.options.idempotency_window)
                .unwrap_or(now);
            message = message.with_idempotency_key(key, until);
        }
        let published = self.inner.store.publish_webhook_message(message).await?;
        if published.deliveries > 0 {
            self.inner.wake.notify_waiters();
        }
        Ok(published.id)
    }

    /// Deletes messages older than `age` that have no pending delivery,
    /// with their attempt log; returns how many. Run it from a maintenance
    /// job (Svix keeps payloads 90 days by default).
    ///
    /// # Errors
    /// [`Error::Storage`] if the store fails.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use consentry::{clock::ManualClock, store::MemoryStore, vault::Keyring, webhook::Dispatcher};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).clock(clock.clone())
    /// #     .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// d.publish("a.b", serde_json::json!({}), None).await?; // no endpoint: nothing pending
    /// assert_eq!(d.purge_messages(Duration::from_secs(3600)).await?, 0);
    /// clock.advance(Duration::from_secs(3601));
    /// assert_eq!(d.purge_messages(Duration::from_secs(3600)).await?, 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn purge_messages(&self, age: std::time::Duration) -> Result<u64> {
        let before = self
            .inner
            .clock
            .now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.inner.store.purge_webhook_messages(before).await
    }

    fn emit(&self, event: DispatchEvent) {
        let _ = self.inner.events.send(event);
    }
}

/// The vault location of an endpoint's sealed configuration: a synthetic
/// owner per endpoint, so deleting the endpoint can destroy its data key.
fn vault_location(id: &EndpointId) -> Result<(UserId, ConnectionId)> {
    Ok((
        UserId::in_tenant("consentry-webhooks", id.as_str())?,
        ConnectionId::new(id.as_str())?,
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
