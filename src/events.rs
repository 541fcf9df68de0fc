//! Events: what happened to connections and consent, for the host to react
//! to (notify the user, forward through a webhook, update a dashboard).
//!
//! Subscribe with `Integrations::subscribe`; every subscriber gets every
//! event emitted after it subscribed. Delivery is in memory and bounded: a
//! subscriber that falls more than [`EVENT_BUFFER`] events behind loses the
//! oldest and is told how many it missed (`RecvError::Lagged`). Events are
//! notifications, not a durable log; the audit trail and the store hold the
//! state.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};

/// How many events a subscriber may fall behind before it loses the oldest.
///
/// ```
/// use consentry::events::EVENT_BUFFER;
/// use tokio::sync::broadcast::error::RecvError;
/// # use consentry::{integrations::doc_support, Purpose, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations = doc_support::integrations()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// # let purpose = Purpose::new("crm_sync")?;
/// let mut events = integrations.subscribe();
/// for _ in 0..=EVENT_BUFFER {
///     integrations.grant_consent(&user, &conn.id, &purpose).await?; // one event each
/// }
/// // The subscriber did not keep up: the oldest event is lost, and it is told.
/// assert!(matches!(events.recv().await, Err(RecvError::Lagged(1))));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const EVENT_BUFFER: usize = 1024;

/// What happened.
///
/// ```
/// use consentry::events::EventKind;
/// assert_eq!(EventKind::ReauthRequired.as_str(), "connection.reauth_required");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum EventKind {
    /// A new connection was made (`connection.created`).
    Created,
    /// An existing connection was connected again, same account
    /// (`connection.reconnected`).
    Reconnected,
    /// Tokens were refreshed (`connection.refreshed`).
    Refreshed,
    /// A refresh failed transiently; it will be retried
    /// (`connection.refresh_failed`).
    RefreshFailed,
    /// A refresh succeeded after failures (`connection.recovered`).
    Recovered,
    /// The grant is dead; the user must connect again
    /// (`connection.reauth_required`).
    ReauthRequired,
    /// The connection was disconnected and its tokens revoked or queued for
    /// revocation (`connection.revoked`).
    Revoked,
    /// Consent for a purpose was granted (`consent.granted`).
    ConsentGranted,
    /// Consent for a purpose was revoked (`consent.revoked`).
    ConsentRevoked,
    /// A stream's sync run finished (`sync.completed`); the detail says
    /// whether it caught up or stopped at its time budget.
    SyncCompleted,
    /// A stream's sync run failed (`sync.failed`); the detail says why.
    SyncFailed,
}

impl EventKind {
    /// The dotted event type name, as used for webhooks.
    ///
    /// ```
    /// use consentry::events::EventKind;
    /// assert_eq!(EventKind::ConsentGranted.as_str(), "consent.granted");
    /// assert_eq!(EventKind::RefreshFailed.to_string(), "connection.refresh_failed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "connection.created",
            Self::Reconnected => "connection.reconnected",
            Self::Refreshed => "connection.refreshed",
            Self::RefreshFailed => "connection.refresh_failed",
            Self::Recovered => "connection.recovered",
            Self::ReauthRequired => "connection.reauth_required",
            Self::Revoked => "connection.revoked",
            Self::ConsentGranted => "consent.granted",
            Self::ConsentRevoked => "consent.revoked",
            Self::SyncCompleted => "sync.completed",
            Self::SyncFailed => "sync.failed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One event. Holds no secret.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ConnectionId, ConnectorId, UserId};
/// use consentry::events::{Event, EventKind};
/// let e = Event::new(EventKind::Created, UserId::new("u1")?, ConnectionId::new("c1")?,
///                    ConnectorId::new("google")?, SystemTime::UNIX_EPOCH);
/// assert_eq!(e.kind.as_str(), "connection.created");
/// assert!(e.purpose.is_none());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: EventKind,
    /// Whose connection.
    pub user: UserId,
    /// Which connection.
    pub connection: ConnectionId,
    /// Its connector.
    pub connector: ConnectorId,
    /// The purpose, for consent events.
    pub purpose: Option<Purpose>,
    /// The stream, for sync events.
    pub stream: Option<String>,
    /// When.
    pub at: SystemTime,
    /// A short, secret-free explanation (for failures).
    pub detail: Option<String>,
}

fn kind_name<S: serde::Serializer>(kind: &EventKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

impl Event {
    /// An event without purpose or detail.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::events::{Event, EventKind};
    /// let e = Event::new(EventKind::Revoked, "alice".parse()?, "conn_1".parse()?, "google".parse()?,
    ///                    SystemTime::UNIX_EPOCH);
    /// assert_eq!(e.kind, EventKind::Revoked);
    /// assert!(e.purpose.is_none() && e.detail.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        kind: EventKind,
        user: UserId,
        connection: ConnectionId,
        connector: ConnectorId,
        at: SystemTime,
    ) -> Self {
        Self {
            kind,
            user,
            connection,
            connector,
            purpose: None,
            stream: None,
            at,
            detail: None,
        }
    }

    /// Sets the purpose.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// use consentry::Purpose;
    /// use consentry::events::{Event, EventKind};
    /// let e = Event::new(EventKind::ConsentGranted, "alice".parse()?, "c1".parse()?, "google".parse()?,
    ///                    SystemTime::UNIX_EPOCH)
    ///     .with_purpose(Purpose::new("reminders")?);
    /// assert_eq!(e.purpose, Some(Purpose::new("reminders")?));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = Some(purpose);
        self
    }

    /// Sets the stream.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// use consentry::events::{Event, EventKind};
    /// let e = Event::new(EventKind::RefreshFailed, "alice".parse()?, "c1".parse()?, "google".parse()?,
    ///                    SystemTime::UNIX_EPOCH)
    ///     .with_stream("calendar_events");
    /// assert_eq!(e.stream.as_deref(), Some("calendar_events"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// Sets the detail.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// use consentry::events::{Event, EventKind};
    /// let e = Event::new(EventKind::RefreshFailed, "alice".parse()?, "c1".parse()?, "google".parse()?,
    ///                    SystemTime::UNIX_EPOCH)
    ///     .with_detail("unavailable");
    /// assert_eq!(e.detail.as_deref(), Some("unavailable"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The receiving end of a subscription.
///
/// ```
/// use consentry::events::{EventKind, Subscription};
/// # use consentry::{integrations::doc_support, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations = doc_support::integrations()?;
/// let mut events: Subscription = integrations.subscribe();
/// # let conn = doc_support::connect(&integrations, &UserId::new("ada")?).await?;
/// // ... the user connects an account ...
/// let event = events.recv().await.expect("an event");
/// assert_eq!((event.kind, event.connection), (EventKind::Created, conn.id));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub type Subscription = broadcast::Receiver<Event>;

/// Fans events out to subscribers.
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(EVENT_BUFFER),
        }
    }
}

impl EventBus {
    pub(crate) fn subscribe(&self) -> Subscription {
        self.tx.subscribe()
    }

    /// Sends to current subscribers; with none, the event is dropped.
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_sent_after_they_subscribed() {
        let bus = EventBus::default();
        let e = |k| {
            Event::new(
                k,
                UserId::new("u").unwrap(),
                ConnectionId::new("c").unwrap(),
                ConnectorId::new("p").unwrap(),
                SystemTime::UNIX_EPOCH,
            )
        };
        bus.emit(e(EventKind::Created)); // nobody listens: dropped
        let mut rx = bus.subscribe();
        bus.emit(e(EventKind::Refreshed));
        assert_eq!(rx.recv().await.unwrap().kind, EventKind::Refreshed);
        let json = serde_json::to_value(e(EventKind::ConsentGranted)).unwrap();
        assert_eq!(json["type"], "consent.granted");
    }
}
