//! [`Actor`], who calls the management API, and [`DispatchEvent`], what
//! the dispatcher tells its subscribers.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::ids::{EndpointId, MessageId};

/// Who calls the dispatcher's management API, as the host authenticated
/// them. Only an admin may create, change or delete endpoints, read their
/// secrets, replay or recover messages and read the attempt log; anyone
/// may list endpoints (without secrets).
///
/// ```
/// use consentry::webhook::Actor;
/// let alice = Actor::admin("alice");
/// let bob = Actor::user("bob");
/// assert!(alice.is_admin() && !bob.is_admin());
/// assert_eq!(bob.id(), "bob");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    id: String,
    admin: bool,
}

impl Actor {
    /// An actor with the admin capability. Grant it only after the host's
    /// own authorization check.
    ///
    /// ```
    /// use consentry::webhook::Actor;
    /// assert!(Actor::admin("alice").is_admin());
    /// ```
    pub fn admin(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            admin: true,
        }
    }

    /// An actor without it.
    ///
    /// ```
    /// use consentry::webhook::Actor;
    /// assert!(!Actor::user("bob").is_admin());
    /// ```
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            admin: false,
        }
    }

    /// The actor's id, as the host named it.
    ///
    /// ```
    /// use consentry::webhook::Actor;
    /// assert_eq!(Actor::admin("alice").id(), "alice");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it has the admin capability.
    ///
    /// ```
    /// use consentry::webhook::Actor;
    /// assert!(Actor::admin("alice").is_admin());
    /// assert!(!Actor::user("alice").is_admin());
    /// ```
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// `Ok` for an admin, [`Error::Forbidden`] naming `action` otherwise.
    pub(crate) fn require_admin(&self, action: &'static str) -> Result<()> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::Forbidden { action })
        }
    }
}

/// How many dispatcher events a subscriber may fall behind before it loses
/// the oldest.
///
/// ```
/// use consentry::webhook::DISPATCH_EVENT_BUFFER;
/// assert_eq!(DISPATCH_EVENT_BUFFER, 1024);
/// ```
pub const DISPATCH_EVENT_BUFFER: usize = 1024;

/// What happened to an endpoint or a message.
///
/// ```
/// use consentry::webhook::DispatchEventKind;
/// assert_eq!(DispatchEventKind::EndpointDisabled.as_str(), "endpoint.disabled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum DispatchEventKind {
    /// The endpoint was disabled: it answered `410 Gone`, or its messages
    /// kept exhausting their retries (`endpoint.disabled`).
    EndpointDisabled,
    /// The fourth attempt of a message failed (`message.attempt.failing`).
    AttemptFailing,
    /// Every scheduled attempt of a message failed
    /// (`message.attempt.exhausted`).
    AttemptExhausted,
    /// A message succeeded after at least four failed attempts
    /// (`message.attempt.recovered`).
    AttemptRecovered,
}

impl DispatchEventKind {
    /// The dotted event type name (Svix's operational webhook names).
    ///
    /// ```
    /// use consentry::webhook::DispatchEventKind;
    /// assert_eq!(DispatchEventKind::AttemptExhausted.as_str(), "message.attempt.exhausted");
    /// assert_eq!(DispatchEventKind::AttemptRecovered.to_string(), "message.attempt.recovered");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointDisabled => "endpoint.disabled",
            Self::AttemptFailing => "message.attempt.failing",
            Self::AttemptExhausted => "message.attempt.exhausted",
            Self::AttemptRecovered => "message.attempt.recovered",
        }
    }
}

impl fmt::Display for DispatchEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One dispatcher event. Holds no secret and no payload.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::EndpointId;
/// use consentry::webhook::{DispatchEvent, DispatchEventKind};
/// let e = DispatchEvent::new(DispatchEventKind::EndpointDisabled, EndpointId::new("ep_1")?, None, SystemTime::UNIX_EPOCH);
/// assert_eq!(serde_json::to_value(&e).unwrap()["type"], "endpoint.disabled");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DispatchEvent {
    /// What happened.
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: DispatchEventKind,
    /// Which endpoint.
    pub endpoint: EndpointId,
    /// Which message, for the `message.*` events.
    pub message: Option<MessageId>,
    /// When.
    pub at: SystemTime,
    /// A short, secret-free explanation (why it was disabled, the last
    /// status).
    pub detail: Option<String>,
}

fn kind_name<S: serde::Serializer>(kind: &DispatchEventKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

impl DispatchEvent {
    /// An event without detail.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::EndpointId;
    /// use consentry::webhook::{DispatchEvent, DispatchEventKind};
    /// let e = DispatchEvent::new(DispatchEventKind::AttemptFailing, EndpointId::new("ep_1")?, None, SystemTime::UNIX_EPOCH);
    /// assert_eq!(e.kind, DispatchEventKind::AttemptFailing);
    /// assert!(e.detail.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        kind: DispatchEventKind,
        endpoint: EndpointId,
        message: Option<MessageId>,
        at: SystemTime,
    ) -> Self {
        Self {
            kind,
            endpoint,
            message,
            at,
            detail: None,
        }
    }

    /// Sets the detail.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::EndpointId;
    /// use consentry::webhook::{DispatchEvent, DispatchEventKind};
    /// let e = DispatchEvent::new(DispatchEventKind::EndpointDisabled, EndpointId::new("ep_1")?, None, SystemTime::UNIX_EPOCH)
    ///     .with_detail("410 Gone");
    /// assert_eq!(e.detail.as_deref(), Some("410 Gone"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The receiving end of [`Dispatcher::subscribe`](super::Dispatcher::subscribe).
///
/// ```
/// use consentry::{store::MemoryStore, vault::Keyring};
/// use consentry::webhook::{Dispatcher, DispatchEvents};
/// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// let mut events: DispatchEvents = dispatcher.subscribe();
/// assert!(events.try_recv().is_err()); // nothing happened yet
/// # Ok::<(), consentry::Error>(())
/// ```
pub type DispatchEvents = broadcast::Receiver<DispatchEvent>;
