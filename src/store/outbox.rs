//! The durable outbox of the webhook dispatcher ([`WebhookOutboxStore`]):
//! messages, one delivery per message and endpoint, leases that keep two
//! workers from sending one attempt, and the attempt log.
//!
//! Every method is one transaction. Times are the caller's (`now`), never
//! the store's clock.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{EndpointId, MessageId};

/// Longest response excerpt kept in the attempt log, in bytes.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::{EndpointId, MessageId};
/// use consentry::store::{AttemptRecord, MAX_RESPONSE_EXCERPT, Trigger};
/// let a = AttemptRecord::new(1, MessageId::new("msg_1")?, EndpointId::new("ep_1")?, 1, SystemTime::UNIX_EPOCH,
///     Trigger::Scheduled, Some(500), None, vec![b'x'; 50_000], Duration::from_millis(3));
/// assert_eq!(a.response.len(), MAX_RESPONSE_EXCERPT);
/// # Ok::<(), consentry::Error>(())
/// ```
pub const MAX_RESPONSE_EXCERPT: usize = 20_000;
/// Longest error text kept in the attempt log, in bytes.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::{EndpointId, MessageId};
/// use consentry::store::{AttemptRecord, MAX_ATTEMPT_ERROR_LEN, Trigger};
/// let a = AttemptRecord::new(1, MessageId::new("msg_1")?, EndpointId::new("ep_1")?, 1, SystemTime::UNIX_EPOCH,
///     Trigger::Scheduled, None, Some("é".repeat(1000)), Vec::new(), Duration::from_millis(3));
/// assert!(a.error.as_ref().is_some_and(|e| e.len() <= MAX_ATTEMPT_ERROR_LEN));
/// # Ok::<(), consentry::Error>(())
/// ```
pub const MAX_ATTEMPT_ERROR_LEN: usize = 512;

/// A message to publish.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::MessageId;
/// use consentry::store::NewMessage;
/// let now = SystemTime::UNIX_EPOCH;
/// let m = NewMessage::new(MessageId::new("msg_1")?, "user.created", b"{}".to_vec(), now)
///     .with_idempotency_key("req-42", now + Duration::from_secs(86_400));
/// assert_eq!(m.idempotency_key.as_deref(), Some("req-42"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Its id (the `webhook-id` of every attempt).
    pub id: MessageId,
    /// Its event type, an ASCII token.
    pub event_type: String,
    /// The exact bytes sent.
    pub payload: Vec<u8>,
    /// A key that makes publishing idempotent until `idempotency_until`.
    pub idempotency_key: Option<String>,
    /// Until when a duplicate key returns this message.
    pub idempotency_until: Option<SystemTime>,
    /// When it was published (also the `now` of the publication).
    pub created_at: SystemTime,
}

impl NewMessage {
    /// A message without idempotency key.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::MessageId;
    /// use consentry::store::NewMessage;
    /// let m = NewMessage::new(MessageId::new("msg_1")?, "user.created", b"{}".to_vec(), SystemTime::UNIX_EPOCH);
    /// assert_eq!(m.event_type, "user.created");
    /// assert!(m.idempotency_key.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        id: MessageId,
        event_type: impl Into<String>,
        payload: Vec<u8>,
        created_at: SystemTime,
    ) -> Self {
        Self {
            id,
            event_type: event_type.into(),
            payload,
            idempotency_key: None,
            idempotency_until: None,
            created_at,
        }
    }

    /// Sets the idempotency key and how long it holds.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::MessageId;
    /// use consentry::store::NewMessage;
    /// let now = SystemTime::UNIX_EPOCH;
    /// let m = NewMessage::new(MessageId::new("msg_1")?, "user.created", b"{}".to_vec(), now)
    ///     .with_idempotency_key("req-1", now + Duration::from_secs(60));
    /// assert_eq!(m.idempotency_until, Some(now + Duration::from_secs(60)));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_idempotency_key(mut self, key: impl Into<String>, until: SystemTime) -> Self {
        self.idempotency_key = Some(key.into());
        self.idempotency_until = Some(until);
        self
    }
}

/// What publishing did.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::MessageId;
/// use consentry::store::{MemoryStore, NewMessage, WebhookOutboxStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let now = SystemTime::now();
/// let m = NewMessage::new(MessageId::new("msg_1")?, "user.created", b"{}".to_vec(), now).with_idempotency_key("k", now);
/// let published = store.publish_webhook_message(m).await?;
/// assert!(!published.duplicate);
/// assert_eq!(published.deliveries, 0); // no endpoint yet
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The message id: the new one, or the first one for a duplicate key.
    pub id: MessageId,
    /// When that message was created.
    pub created_at: SystemTime,
    /// Whether the idempotency key was already used (nothing was written).
    pub duplicate: bool,
    /// How many deliveries were queued.
    pub deliveries: u64,
}

/// A stored message.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::MessageId;
/// use consentry::store::{MemoryStore, NewMessage, WebhookOutboxStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let id = MessageId::new("msg_1")?;
/// store.publish_webhook_message(NewMessage::new(id.clone(), "user.created", b"{}".to_vec(), SystemTime::now())).await?;
/// let stored = store.get_webhook_message(&id).await?.expect("published");
/// assert_eq!((stored.event_type.as_str(), stored.payload.as_slice()), ("user.created", b"{}".as_slice()));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredMessage {
    /// Its id.
    pub id: MessageId,
    /// Its event type.
    pub event_type: String,
    /// The bytes sent.
    pub payload: Vec<u8>,
    /// Its idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// When it was published.
    pub created_at: SystemTime,
}

/// What started an attempt.
///
/// ```
/// use consentry::store::Trigger;
/// assert_eq!(Trigger::Scheduled.as_str(), "scheduled");
/// assert_ne!(Trigger::Scheduled, Trigger::Manual);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// The retry schedule.
    Scheduled,
    /// An admin: a replay or a recovery. A failed manual attempt is not
    /// retried.
    Manual,
}

impl Trigger {
    /// `"scheduled"` or `"manual"`.
    ///
    /// ```
    /// use consentry::store::Trigger;
    /// assert_eq!(Trigger::Manual.as_str(), "manual");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
        }
    }

    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(Self::Scheduled),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }
}

/// Where a delivery stands.
///
/// ```
/// use consentry::store::DeliveryState;
/// assert_eq!(DeliveryState::Pending.as_str(), "pending");
/// assert_eq!(DeliveryState::Succeeded.as_str(), "succeeded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being attempted under a lease).
    Pending,
    /// A `2xx` was received.
    Succeeded,
    /// Given up after one failed attempt: a manual attempt, or `410 Gone`.
    Failed,
    /// Every attempt of the schedule failed.
    Exhausted,
}

impl DeliveryState {
    /// `"pending"`, `"succeeded"`, `"failed"` or `"exhausted"`.
    ///
    /// ```
    /// use consentry::store::DeliveryState;
    /// assert_eq!(DeliveryState::Exhausted.as_str(), "exhausted");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Exhausted => "exhausted",
        }
    }

    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "exhausted" => Some(Self::Exhausted),
            _ => None,
        }
    }
}

/// One delivery: a message to one endpoint.
///
/// ```
/// use consentry::{store::{DeliveryState, MemoryStore, Trigger, WebhookOutboxStore}, vault::Keyring};
/// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new(); // clones share one map
/// let dispatcher = Dispatcher::builder().store(store.clone()).keyring(Keyring::generate()?)
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// let endpoint = dispatcher.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
/// let id = dispatcher.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
/// let deliveries = store.webhook_deliveries(&id).await?;
/// assert_eq!(deliveries.len(), 1);
/// assert_eq!(deliveries[0].endpoint, endpoint.id);
/// assert_eq!((deliveries[0].trigger, deliveries[0].state, deliveries[0].attempts), (Trigger::Scheduled, DeliveryState::Pending, 0));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Its id, assigned by the store.
    pub id: u64,
    /// The message.
    pub message: MessageId,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Scheduled (from a publication) or manual (replay, recovery).
    pub trigger: Trigger,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<SystemTime>,
    /// When it was queued.
    pub created_at: SystemTime,
}

/// A delivery claimed by a worker, with what it needs to send it.
///
/// ```
/// use std::time::Duration;
/// use consentry::clock::{Clock, ManualClock};
/// use consentry::{store::{MemoryStore, WebhookOutboxStore}, vault::Keyring};
/// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (store, clock) = (MemoryStore::new(), ManualClock::starting_now());
/// let dispatcher = Dispatcher::builder().store(store.clone()).keyring(Keyring::generate()?).clock(clock.clone())
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// dispatcher.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
/// let id = dispatcher.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
/// let now = clock.now();
/// let claimed = store.claim_webhook_deliveries("worker-1", now, now + Duration::from_secs(60), 10).await?;
/// assert_eq!(claimed.len(), 1);
/// assert_eq!((&claimed[0].message, claimed[0].event_type.as_str(), claimed[0].attempts), (&id, "user.created", 0));
/// // Leased: a second worker gets nothing until the lease expires.
/// assert!(store.claim_webhook_deliveries("worker-2", now, now + Duration::from_secs(60), 10).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimedDelivery {
    /// The delivery's id.
    pub delivery: u64,
    /// The message id.
    pub message: MessageId,
    /// The message's event type.
    pub event_type: String,
    /// The message's payload.
    pub payload: Vec<u8>,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The endpoint's configuration revision (for caches).
    pub endpoint_revision: u64,
    /// Scheduled or manual.
    pub trigger: Trigger,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// One attempt, as logged.
///
/// ```
/// use consentry::http::{self, HttpRequest, Response};
/// use consentry::{store::{MemoryStore, WebhookOutboxStore}, vault::Keyring};
/// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let ok = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(200).body(b"thanks".to_vec()).unwrap()) });
/// let store = MemoryStore::new();
/// let d = Dispatcher::builder().store(store.clone()).keyring(Keyring::generate()?).http(ok).build()?;
/// d.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
/// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
/// d.run_once().await?;
/// let log = store.webhook_attempts(&id).await?;
/// assert_eq!((log.len(), log[0].attempt, log[0].status), (1, 1, Some(200)));
/// assert_eq!(log[0].response_text(), "thanks");
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The delivery it belongs to.
    pub delivery: u64,
    /// The message.
    pub message: MessageId,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// 1 for the first attempt of the delivery.
    pub attempt: u32,
    /// When it started.
    pub at: SystemTime,
    /// Scheduled or manual.
    pub trigger: Trigger,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// Why there was no usable response (timeout, refused address, ...);
    /// never a secret, at most [`MAX_ATTEMPT_ERROR_LEN`] bytes.
    pub error: Option<String>,
    /// The start of the response body, at most [`MAX_RESPONSE_EXCERPT`]
    /// bytes.
    pub response: Vec<u8>,
    /// How long it took.
    pub duration: Duration,
}

impl AttemptRecord {
    /// The response excerpt as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use consentry::{EndpointId, MessageId};
    /// # use consentry::store::{AttemptRecord, Trigger};
    /// let a = AttemptRecord::new(1, MessageId::new("msg_1")?, EndpointId::new("ep_1")?, 1,
    ///     SystemTime::UNIX_EPOCH, Trigger::Scheduled, Some(200), None, b"ok".to_vec(), Duration::from_millis(3));
    /// assert_eq!(a.response_text(), "ok");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn response_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.response)
    }

    /// An attempt record; `error` and `response` are truncated to their
    /// limits (on a character boundary for `error`).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::{EndpointId, MessageId};
    /// use consentry::store::{AttemptRecord, Trigger};
    /// let a = AttemptRecord::new(7, MessageId::new("msg_1")?, EndpointId::new("ep_1")?, 2, SystemTime::UNIX_EPOCH,
    ///     Trigger::Manual, None, Some("timed out".into()), Vec::new(), Duration::from_secs(15));
    /// assert_eq!((a.delivery, a.attempt, a.status), (7, 2, None));
    /// assert_eq!(a.error.as_deref(), Some("timed out"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        delivery: u64,
        message: MessageId,
        endpoint: EndpointId,
        attempt: u32,
        at: SystemTime,
        trigger: Trigger,
        status: Option<u16>,
        error: Option<String>,
        mut response: Vec<u8>,
        duration: Duration,
    ) -> Self {
        response.truncate(MAX_RESPONSE_EXCERPT);
        let error = error.map(|mut e| {
            if e.len() > MAX_ATTEMPT_ERROR_LEN {
                let mut end = MAX_ATTEMPT_ERROR_LEN;
                while !e.is_char_boundary(end) {
                    end -= 1;
                }
                e.truncate(end);
            }
            e
        });
        Self {
            delivery,
            message,
            endpoint,
            attempt,
            at,
            trigger,
            status,
            error,
            response,
            duration,
        }
    }
}

/// What happens to a delivery after an attempt.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::store::DeliveryOutcome;
/// let retry = DeliveryOutcome::Retry { at: SystemTime::UNIX_EPOCH + Duration::from_secs(5) };
/// assert_ne!(retry, DeliveryOutcome::Exhausted);
/// assert!(matches!(retry, DeliveryOutcome::Retry { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Done: a `2xx`.
    Succeeded,
    /// Try again at this time.
    Retry {
        /// When.
        at: SystemTime,
    },
    /// Given up after this attempt (manual attempt, `410 Gone`).
    Failed,
    /// Given up: the schedule is used up.
    Exhausted,
}

/// What an attempt does to its endpoint.
///
/// ```
/// use consentry::store::EndpointEffect;
/// let gone = EndpointEffect::Disable { reason: "410 Gone".into() };
/// assert_ne!(gone, EndpointEffect::None);
/// assert!(matches!(gone, EndpointEffect::Disable { ref reason } if reason == "410 Gone"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointEffect {
    /// Nothing.
    None,
    /// A success: clear `first_failure_at`.
    Healthy,
    /// A message exhausted its schedule. If `first_failure_at` is unset or
    /// older than twice `disable_after` (forgiven), set it to `now`; else,
    /// if it is older than `disable_after`, disable the endpoint.
    Exhausted {
        /// The disabling policy's period.
        disable_after: Duration,
        /// The reason recorded if the endpoint is disabled.
        reason: String,
    },
    /// Disable the endpoint now (`410 Gone`).
    Disable {
        /// The reason recorded.
        reason: String,
    },
}

/// The result of an attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptCompletion {
    /// The lease owner that claimed the delivery.
    pub lease_owner: String,
    /// The attempt, logged in any case (it happened).
    pub attempt: AttemptRecord,
    /// The delivery's next state, applied only while `lease_owner` still
    /// holds the delivery's lease and it is pending.
    pub outcome: DeliveryOutcome,
    /// The effect on the endpoint, applied with the outcome.
    pub endpoint: EndpointEffect,
    /// The time of the completion.
    pub now: SystemTime,
}

/// What recording an attempt did.
///
/// ```
/// use consentry::store::CompletionResult;
/// let nothing = CompletionResult::default();
/// assert!(!nothing.applied && !nothing.endpoint_disabled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CompletionResult {
    /// Whether the outcome was applied (the lease was still held).
    pub applied: bool,
    /// Whether this completion disabled the endpoint (it was enabled).
    pub endpoint_disabled: bool,
}

/// The dispatcher's outbox.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::MessageId;
/// use consentry::store::{MemoryStore, NewMessage, WebhookOutboxStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let now = SystemTime::now();
/// let first = NewMessage::new(MessageId::new("msg_1")?, "user.created", b"{}".to_vec(), now).with_idempotency_key("req-1", now + std::time::Duration::from_secs(60));
/// let again = NewMessage::new(MessageId::new("msg_2")?, "user.created", b"{}".to_vec(), now).with_idempotency_key("req-1", now + std::time::Duration::from_secs(60));
/// assert!(!store.publish_webhook_message(first).await?.duplicate);
/// let dup = store.publish_webhook_message(again).await?;
/// assert!(dup.duplicate);
/// assert_eq!(dup.id.as_str(), "msg_1"); // the first message wins the key
/// assert!(store.get_webhook_message(&MessageId::new("msg_2")?).await?.is_none());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait WebhookOutboxStore: Debug + Send + Sync + 'static {
    /// Publishes in one transaction: if `message.idempotency_key` names a
    /// message whose key holds at `message.created_at`, returns that one
    /// (`duplicate`, nothing written); otherwise stores the message (an
    /// expired holder of the key loses it) and queues one pending
    /// scheduled delivery, due at once, for every enabled endpoint
    /// subscribed to its event type.
    async fn publish_webhook_message(&self, message: NewMessage) -> Result<Published>;

    /// Leases up to `limit` pending deliveries due at `now` (earliest
    /// first) whose lease is free or expired and whose endpoint is
    /// enabled, to `owner` until `lease_until`. Of concurrent claims, each
    /// delivery goes to one.
    async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// Records attempts, all in one transaction (see
    /// [`AttemptCompletion`]). An attempt of a delivery that no longer
    /// exists is dropped.
    async fn complete_webhook_attempts(
        &self,
        completions: Vec<AttemptCompletion>,
    ) -> Result<Vec<CompletionResult>>;

    /// Gives a leased delivery back without an attempt, due at
    /// `next_attempt_at` (rate limiting); returns whether `owner` held it.
    async fn release_webhook_delivery(
        &self,
        delivery: u64,
        owner: &str,
        next_attempt_at: SystemTime,
    ) -> Result<bool>;

    /// The message with `id`, if any.
    async fn get_webhook_message(&self, id: &MessageId) -> Result<Option<StoredMessage>>;

    /// The deliveries of a message, in id order.
    async fn webhook_deliveries(&self, message: &MessageId) -> Result<Vec<DeliveryRecord>>;

    /// The attempt log of a message, oldest first.
    async fn webhook_attempts(&self, message: &MessageId) -> Result<Vec<AttemptRecord>>;

    /// Queues one new manual delivery of the message, due at `now`, for
    /// every enabled endpoint that had a delivery of it; returns how many.
    async fn replay_webhook_message(&self, message: &MessageId, now: SystemTime) -> Result<u64>;

    /// Puts the endpoint's failed and exhausted deliveries created at or
    /// after `since` back in the queue for one manual attempt, due at
    /// `now`; returns how many.
    async fn recover_webhook_deliveries(
        &self,
        endpoint: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u64>;

    /// Deletes messages created before `before` that have no pending
    /// delivery, with their deliveries and attempts; returns how many
    /// messages.
    async fn purge_webhook_messages(&self, before: SystemTime) -> Result<u64>;
}

/// Implements the trait for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: WebhookOutboxStore + ?Sized> WebhookOutboxStore for $($seg)::+<T> {
            async fn publish_webhook_message(&self, message: NewMessage) -> Result<Published> {
                (**self).publish_webhook_message(message).await
            }
            async fn claim_webhook_deliveries(&self, owner: &str, now: SystemTime, lease_until: SystemTime, limit: usize) -> Result<Vec<ClaimedDelivery>> {
                (**self).claim_webhook_deliveries(owner, now, lease_until, limit).await
            }
            async fn complete_webhook_attempts(&self, completions: Vec<AttemptCompletion>) -> Result<Vec<CompletionResult>> {
                (**self).complete_webhook_attempts(completions).await
            }
            async fn release_webhook_delivery(&self, delivery: u64, owner: &str, next_attempt_at: SystemTime) -> Result<bool> {
                (**self).release_webhook_delivery(delivery, owner, next_attempt_at).await
            }
            async fn get_webhook_message(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
                (**self).get_webhook_message(id).await
            }
            async fn webhook_deliveries(&self, message: &MessageId) -> Result<Vec<DeliveryRecord>> {
                (**self).webhook_deliveries(message).await
            }
            async fn webhook_attempts(&self, message: &MessageId) -> Result<Vec<AttemptRecord>> {
                (**self).webhook_attempts(message).await
            }
            async fn replay_webhook_message(&self, message: &MessageId, now: SystemTime) -> Result<u64> {
                (**self).replay_webhook_message(message, now).await
            }
            async fn recover_webhook_deliveries(&self, endpoint: &EndpointId, since: SystemTime, now: SystemTime) -> Result<u64> {
                (**self).recover_webhook_deliveries(endpoint, since, now).await
            }
            async fn purge_webhook_messages(&self, before: SystemTime) -> Result<u64> {
                (**self).purge_webhook_messages(before).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);

/// The exhaustion rule of [`EndpointEffect::Exhausted`]: the new
/// `first_failure_at`, and whether to disable. Shared by the backends.
pub(crate) fn exhaustion_rule(
    first_failure_at: Option<SystemTime>,
    now: SystemTime,
    disable_after: Duration,
) -> (Option<SystemTime>, bool) {
    let age = |since: SystemTime| now.duration_since(since).unwrap_or(Duration::ZERO);
    match first_failure_at {
        Some(since) if age(since) <= disable_after.saturating_mul(2) => {
            (Some(since), age(since) > disable_after)
        }
        _ => (Some(now), false),
    }
}
