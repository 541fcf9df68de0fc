//! Connections: one user's link to one account at one provider, its status
//! and its health.
//!
//! ```text
//! Active ⇄ Refreshing → Active | Degraded (transient failures, backoff)
//!                              | ReauthRequired (dead grant) → Revoked → deleted
//! ```
//!
//! `Refreshing` is never stored (it lasts one HTTP round trip); a connection
//! that exists in the store is `Active`, `Degraded` or `ReauthRequired`.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Scope, UserId};

/// Where a connection stands.
///
/// ```
/// use consentry::ConnectionStatus;
/// assert_eq!(ConnectionStatus::ReauthRequired.as_str(), "reauth_required");
/// assert!(ConnectionStatus::Active.is_usable());
/// assert!(!ConnectionStatus::ReauthRequired.is_usable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// Authorization started, not completed (no connection exists yet).
    Pending,
    /// Working.
    Active,
    /// A refresh is in flight.
    Refreshing,
    /// Transient failures (provider down, 5xx, timeouts, 429): retried with
    /// backoff; the last access token may still be valid.
    Degraded,
    /// The grant is dead (revoked, expired, `invalid_grant`): the user must
    /// connect again. Never retried automatically.
    ReauthRequired,
    /// Revoked at the provider by a disconnect.
    Revoked,
}

impl ConnectionStatus {
    /// The stable snake_case name.
    ///
    /// ```
    /// use consentry::ConnectionStatus;
    /// assert_eq!(ConnectionStatus::Degraded.as_str(), "degraded");
    /// assert_eq!("degraded".parse::<ConnectionStatus>()?, ConnectionStatus::Degraded);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Refreshing => "refreshing",
            Self::Degraded => "degraded",
            Self::ReauthRequired => "reauth_required",
            Self::Revoked => "revoked",
        }
    }

    /// Whether tokens may be handed out (possibly after a refresh).
    ///
    /// ```
    /// use consentry::ConnectionStatus;
    /// assert!(ConnectionStatus::Degraded.is_usable()); // the last token may still work
    /// assert!(!ConnectionStatus::ReauthRequired.is_usable());
    /// assert!(!ConnectionStatus::Revoked.is_usable());
    /// ```
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Active | Self::Refreshing | Self::Degraded)
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for ConnectionStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [
            Self::Pending,
            Self::Active,
            Self::Refreshing,
            Self::Degraded,
            Self::ReauthRequired,
            Self::Revoked,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| Error::invalid("connection status", format!("unknown status {s:?}")))
    }
}

/// The provider account behind a connection, as the provider reports it: a
/// stable id (to recognise a reconnection of the same account), and email
/// and name for display.
///
/// Email and name are untrusted text: when parsed from a provider response
/// ([`oauth::parse_account`](crate::oauth::parse_account)), control and
/// bidirectional-override characters are removed and each is cut to 320
/// characters (a cut is marked with `…`).
///
/// ```
/// use consentry::connection::AccountInfo;
/// let a = AccountInfo::new("1234567890").with_email("ada@example.com");
/// assert_eq!(a.email.as_deref(), Some("ada@example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountInfo {
    /// The provider's stable account id (OIDC `sub`, GitHub numeric id...).
    pub id: String,
    /// The account's email address, if the provider shares it.
    pub email: Option<String>,
    /// A display name, if the provider shares it.
    pub name: Option<String>,
}

impl AccountInfo {
    /// An account known only by its id.
    ///
    /// ```
    /// use consentry::connection::AccountInfo;
    /// let a = AccountInfo::new("u-1234");
    /// assert_eq!(a.id, "u-1234");
    /// assert_eq!((a.email, a.name), (None, None));
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            email: None,
            name: None,
        }
    }

    /// Sets the email address.
    ///
    /// ```
    /// use consentry::connection::AccountInfo;
    /// let a = AccountInfo::new("u-1234").with_email("ada@example.com");
    /// assert_eq!(a.email.as_deref(), Some("ada@example.com"));
    /// ```
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the display name.
    ///
    /// ```
    /// use consentry::connection::AccountInfo;
    /// let a = AccountInfo::new("u-1234").with_name("Ada Lovelace");
    /// assert_eq!(a.name.as_deref(), Some("Ada Lovelace"));
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How token refreshes for a connection have been going.
///
/// ```
/// use consentry::connection::Health;
/// let h = Health::default();
/// assert_eq!(h.consecutive_failures, 0);
/// assert!(h.last_refresh_ok.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// When the last refresh succeeded.
    pub last_refresh_ok: Option<SystemTime>,
    /// When the last refresh failed.
    pub last_refresh_failed: Option<SystemTime>,
    /// Why it failed: a short, secret-free description.
    pub last_error: Option<String>,
    /// Failed refreshes since the last success.
    pub consecutive_failures: u32,
    /// No automatic refresh before this time (backoff after failures).
    pub retry_after: Option<SystemTime>,
}

/// A connection: one user's link to one account at one provider.
///
/// Returned by `Integrations::connections`; stored through
/// [`ConnectionStore`](crate::store::ConnectionStore). Holds no secret: the
/// tokens live in the vault.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{Connection, ConnectionId, ConnectorId, ConnectionStatus, UserId};
/// use consentry::connection::AccountInfo;
/// let c = Connection::new(
///     ConnectionId::new("conn_1")?, UserId::new("u1")?, ConnectorId::new("google")?,
///     AccountInfo::new("1234"), SystemTime::UNIX_EPOCH,
/// );
/// assert_eq!(c.status, ConnectionStatus::Active);
/// assert_eq!(c.revision, 0);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Connection {
    /// The connection's id.
    pub id: ConnectionId,
    /// Whose connection it is.
    pub user: UserId,
    /// Which connector (provider definition) it uses.
    pub connector: ConnectorId,
    /// The account at the provider.
    pub account: AccountInfo,
    /// The scopes the provider granted (may differ from those requested).
    pub scopes: Vec<Scope>,
    /// Where it stands.
    pub status: ConnectionStatus,
    /// How refreshes have been going.
    pub health: Health,
    /// When the current access token expires, if the provider said.
    pub access_expires_at: Option<SystemTime>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// When the connection was made.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// Goes up by one with every stored change (compare-and-swap).
    pub revision: u64,
}

impl Connection {
    /// A new, active connection with no scopes and revision 0 (not stored).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::{Connection, ConnectionStatus};
    /// use consentry::connection::AccountInfo;
    /// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let c = Connection::new("conn_1".parse()?, "alice".parse()?, "google".parse()?,
    ///                         AccountInfo::new("1234"), at);
    /// assert_eq!((c.status, c.created_at, c.updated_at, c.revision), (ConnectionStatus::Active, at, at, 0));
    /// assert!(c.scopes.is_empty() && !c.has_refresh_token);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        id: ConnectionId,
        user: UserId,
        connector: ConnectorId,
        account: AccountInfo,
        now: SystemTime,
    ) -> Self {
        Self {
            id,
            user,
            connector,
            account,
            scopes: Vec::new(),
            status: ConnectionStatus::Active,
            health: Health::default(),
            access_expires_at: None,
            has_refresh_token: false,
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in [
            ConnectionStatus::Pending,
            ConnectionStatus::Active,
            ConnectionStatus::Refreshing,
            ConnectionStatus::Degraded,
            ConnectionStatus::ReauthRequired,
            ConnectionStatus::Revoked,
        ] {
            assert_eq!(s.as_str().parse::<ConnectionStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("gone".parse::<ConnectionStatus>().is_err());
    }
}
