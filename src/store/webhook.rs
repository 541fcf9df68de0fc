//! Storage for outbound webhook endpoints ([`WebhookEndpointStore`]) and
//! for the inbound replay guard ([`ReplayStore`]).
//!
//! An endpoint row holds no secret in clear: its signing secrets and custom
//! headers are one vault envelope (`sealed`), sealed and opened by the
//! [`Dispatcher`](crate::webhook::Dispatcher). The store keeps the bytes.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::EndpointId;

/// An endpoint as stored.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::EndpointId;
/// use consentry::store::StoredEndpoint;
/// let e = StoredEndpoint::new(EndpointId::new("ep_1")?, "https://hooks.example/in", vec![1, 2, 3], SystemTime::UNIX_EPOCH);
/// assert!(e.enabled && e.event_types.is_empty());
/// assert_eq!(e.revision, 0); // assigned by the store
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEndpoint {
    /// The endpoint's id.
    pub id: EndpointId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives; empty means all. Each is an ASCII
    /// token without spaces.
    pub event_types: Vec<String>,
    /// Whether deliveries are made. Messages published while it is
    /// disabled do not reach it; deliveries already queued wait.
    pub enabled: bool,
    /// Why it was disabled, when it was disabled by the dispatcher (`410
    /// Gone`, days of exhausted retries) or by an admin.
    pub disabled_reason: Option<String>,
    /// At most this many deliveries per second, if set.
    pub rate_limit: Option<u32>,
    /// The vault envelope of its secrets and custom headers.
    pub sealed: Vec<u8>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its configuration last changed.
    pub updated_at: SystemTime,
    /// When its messages started exhausting their retries without a
    /// success since (the disabling policy's clock); `None` when healthy.
    pub first_failure_at: Option<SystemTime>,
    /// Grows by one with every configuration change (0 before creation).
    pub revision: u64,
}

impl Debug for StoredEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("rate_limit", &self.rate_limit)
            .field("sealed", &format_args!("[{} bytes]", self.sealed.len()))
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl StoredEndpoint {
    /// An enabled endpoint receiving every event type, created at `now`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{EndpointId, store::StoredEndpoint};
    /// let now = SystemTime::UNIX_EPOCH;
    /// let e = StoredEndpoint::new(EndpointId::new("ep_1")?, "https://hooks.example/in", vec![0; 48], now);
    /// assert!(e.enabled && e.first_failure_at.is_none());
    /// assert_eq!((e.created_at, e.updated_at), (now, now));
    /// assert!(format!("{e:?}").contains("[48 bytes]")); // the sealed secrets are not shown
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(id: EndpointId, url: impl Into<String>, sealed: Vec<u8>, now: SystemTime) -> Self {
        Self {
            id,
            url: url.into(),
            event_types: Vec::new(),
            enabled: true,
            disabled_reason: None,
            rate_limit: None,
            sealed,
            created_at: now,
            updated_at: now,
            first_failure_at: None,
            revision: 0,
        }
    }

    /// Whether it receives messages of `event_type`.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// # use consentry::{EndpointId, store::StoredEndpoint};
    /// let mut e = StoredEndpoint::new(EndpointId::new("ep_1")?, "https://h/", vec![], SystemTime::UNIX_EPOCH);
    /// assert!(e.subscribes_to("user.created"));
    /// e.event_types = vec!["invoice.paid".into()];
    /// assert!(!e.subscribes_to("user.created"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// Outbound webhook endpoints.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{EndpointId, store::{MemoryStore, StoredEndpoint, WebhookEndpointStore}};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let id = EndpointId::new("ep_1")?;
/// store.insert_webhook_endpoint(StoredEndpoint::new(id.clone(), "https://hooks.example/in", vec![], SystemTime::UNIX_EPOCH)).await?;
/// let mut e = store.get_webhook_endpoint(&id).await?.expect("inserted");
/// assert_eq!(e.revision, 1);
/// e.enabled = false;
/// assert_eq!(store.update_webhook_endpoint(e.clone()).await?, 2);
/// assert!(store.update_webhook_endpoint(e).await.is_err()); // stale revision
/// assert!(store.delete_webhook_endpoint(&id).await?);
/// assert!(store.list_webhook_endpoints().await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait WebhookEndpointStore: Debug + Send + Sync + 'static {
    /// Stores a new endpoint with revision 1. Fails with `Conflict` if the
    /// id exists.
    async fn insert_webhook_endpoint(&self, endpoint: StoredEndpoint) -> Result<()>;

    /// The endpoint with `id`, if any.
    async fn get_webhook_endpoint(&self, id: &EndpointId) -> Result<Option<StoredEndpoint>>;

    /// Every endpoint, in id order.
    async fn list_webhook_endpoints(&self) -> Result<Vec<StoredEndpoint>>;

    /// Replaces the configuration (`url`, `event_types`, `enabled`,
    /// `disabled_reason`, `rate_limit`, `sealed`, `updated_at`) if the
    /// stored revision is `endpoint.revision` (compare-and-swap); returns
    /// the new revision. Re-enabling a disabled endpoint clears
    /// `first_failure_at`; otherwise it is left as stored.
    ///
    /// # Errors
    /// `NotFound` if there is no such endpoint; `Conflict` on a stale
    /// revision.
    async fn update_webhook_endpoint(&self, endpoint: StoredEndpoint) -> Result<u64>;

    /// Deletes the endpoint with its deliveries and their attempt log;
    /// returns whether it existed.
    async fn delete_webhook_endpoint(&self, id: &EndpointId) -> Result<bool>;
}

/// The longest replay-guard scope accepted, in bytes.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::store::{MAX_REPLAY_SCOPE_LEN, MemoryStore, ReplayStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (store, now) = (MemoryStore::new(), SystemTime::UNIX_EPOCH);
/// let long = "s".repeat(MAX_REPLAY_SCOPE_LEN + 1);
/// assert!(store.check_and_insert(&long, "msg_1", now, now).await.is_err());
/// # });
/// ```
pub const MAX_REPLAY_SCOPE_LEN: usize = 64;
/// The longest delivery id the replay guard accepts, in bytes.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::store::{MAX_REPLAY_ID_LEN, MemoryStore, ReplayStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (store, now) = (MemoryStore::new(), SystemTime::UNIX_EPOCH);
/// assert!(store.check_and_insert("stripe", &"i".repeat(MAX_REPLAY_ID_LEN + 1), now, now).await.is_err());
/// # });
/// ```
pub const MAX_REPLAY_ID_LEN: usize = 256;

/// The seen-set of a replay guard: delivery ids per scope (one scope per
/// sender or provider), each kept until it expires.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::store::{MemoryStore, ReplayStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let until = now + Duration::from_secs(600);
/// assert!(store.check_and_insert("stripe", "evt_1", until, now).await?);
/// assert!(!store.check_and_insert("stripe", "evt_1", until, now).await?); // seen
/// assert!(store.check_and_insert("github", "evt_1", until, now).await?); // another scope
/// assert_eq!(store.purge_replay_entries(until + Duration::from_secs(1)).await?, 2);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ReplayStore: Debug + Send + Sync + 'static {
    /// Records `(scope, id)` until `expires_at` and returns `true`, unless
    /// it is already recorded and unexpired at `now` (then `false`, and
    /// nothing changes). Atomic: of concurrent calls with one id, exactly
    /// one gets `true`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty scope or id, or one longer than
    /// [`MAX_REPLAY_SCOPE_LEN`] / [`MAX_REPLAY_ID_LEN`].
    async fn check_and_insert(
        &self,
        scope: &str,
        id: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool>;

    /// Deletes the entries expired at `now`; returns how many.
    async fn purge_replay_entries(&self, now: SystemTime) -> Result<u64>;
}

/// Checks a replay-guard key (stores call this first).
pub(crate) fn check_replay_key(scope: &str, id: &str) -> Result<()> {
    for (what, value, max) in [
        ("replay guard scope", scope, MAX_REPLAY_SCOPE_LEN),
        ("delivery id", id, MAX_REPLAY_ID_LEN),
    ] {
        if value.is_empty() || value.len() > max {
            return Err(crate::Error::invalid(
                what,
                format!("must be 1 to {max} bytes"),
            ));
        }
    }
    Ok(())
}

/// Implements the traits for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: WebhookEndpointStore + ?Sized> WebhookEndpointStore for $($seg)::+<T> {
            async fn insert_webhook_endpoint(&self, endpoint: StoredEndpoint) -> Result<()> {
                (**self).insert_webhook_endpoint(endpoint).await
            }
            async fn get_webhook_endpoint(&self, id: &EndpointId) -> Result<Option<StoredEndpoint>> {
                (**self).get_webhook_endpoint(id).await
            }
            async fn list_webhook_endpoints(&self) -> Result<Vec<StoredEndpoint>> {
                (**self).list_webhook_endpoints().await
            }
            async fn update_webhook_endpoint(&self, endpoint: StoredEndpoint) -> Result<u64> {
                (**self).update_webhook_endpoint(endpoint).await
            }
            async fn delete_webhook_endpoint(&self, id: &EndpointId) -> Result<bool> {
                (**self).delete_webhook_endpoint(id).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: ReplayStore + ?Sized> ReplayStore for $($seg)::+<T> {
            async fn check_and_insert(&self, scope: &str, id: &str, expires_at: SystemTime, now: SystemTime) -> Result<bool> {
                (**self).check_and_insert(scope, id, expires_at, now).await
            }
            async fn purge_replay_entries(&self, now: SystemTime) -> Result<u64> {
                (**self).purge_replay_entries(now).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
