//! Storage for consent ([`ConsentStore`]): an append-only ledger per user,
//! connection and purpose, and the current state derived from it.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::ids::{ConnectionId, Purpose, UserId};

/// One change of consent: granted or revoked, by whom, under which policy.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ConnectionId, Purpose, UserId};
/// use consentry::store::ConsentEntry;
/// let e = ConsentEntry::new(UserId::new("u1")?, ConnectionId::new("c1")?, Purpose::new("matching")?,
///                           true, "user:u1", "2026-01", SystemTime::UNIX_EPOCH);
/// assert!(e.granted);
/// assert_eq!(e.seq, 0); // assigned by the store
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConsentEntry {
    /// Position in the ledger, assigned by the store (0 before).
    pub seq: u64,
    /// Whose consent.
    pub user: UserId,
    /// For which connection.
    pub connection: ConnectionId,
    /// For which purpose.
    pub purpose: Purpose,
    /// Granted (`true`) or revoked (`false`).
    pub granted: bool,
    /// Who made the change (the user, an admin, a system job), as the host
    /// names them; at most 255 bytes.
    pub actor: String,
    /// The version of the host's consent text the user saw; at most 64
    /// bytes.
    pub policy_version: String,
    /// When.
    pub at: SystemTime,
}

impl ConsentEntry {
    /// A ledger entry (not yet appended).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::store::ConsentEntry;
    /// let e = ConsentEntry::new("alice".parse()?, "c1".parse()?, "reminders".parse()?, false,
    ///                           "admin:bob", "2026-01", UNIX_EPOCH);
    /// assert!(!e.granted); // a withdrawal
    /// assert_eq!((e.actor.as_str(), e.policy_version.as_str()), ("admin:bob", "2026-01"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        user: UserId,
        connection: ConnectionId,
        purpose: Purpose,
        granted: bool,
        actor: impl Into<String>,
        policy_version: impl Into<String>,
        at: SystemTime,
    ) -> Self {
        Self {
            seq: 0,
            user,
            connection,
            purpose,
            granted,
            actor: actor.into(),
            policy_version: policy_version.into(),
            at,
        }
    }
}

/// Longest `actor` accepted, in bytes.
///
/// ```
/// use consentry::store::{ConsentStore, MAX_ACTOR_LEN};
/// # use std::time::UNIX_EPOCH;
/// # use consentry::{ConnectionId, Purpose, UserId};
/// # use consentry::store::{ConsentEntry, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
/// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
/// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
/// let mut e = entry("matching", true);
/// e.actor = "a".repeat(MAX_ACTOR_LEN + 1);
/// assert!(store.append_consent(e).await.is_err());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const MAX_ACTOR_LEN: usize = 255;
/// Longest `policy_version` accepted, in bytes.
///
/// ```
/// use consentry::store::{ConsentStore, MAX_POLICY_VERSION_LEN};
/// # use std::time::UNIX_EPOCH;
/// # use consentry::{ConnectionId, Purpose, UserId};
/// # use consentry::store::{ConsentEntry, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
/// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
/// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
/// let mut e = entry("matching", true);
/// e.policy_version = "v".repeat(MAX_POLICY_VERSION_LEN + 1);
/// assert!(store.append_consent(e).await.is_err());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const MAX_POLICY_VERSION_LEN: usize = 64;

/// Checks the free-text fields of an entry (stores call this before
/// appending).
pub(crate) fn check_entry(entry: &ConsentEntry) -> Result<()> {
    for (what, value, max) in [
        ("consent actor", &entry.actor, MAX_ACTOR_LEN),
        (
            "consent policy version",
            &entry.policy_version,
            MAX_POLICY_VERSION_LEN,
        ),
    ] {
        if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
            return Err(crate::Error::invalid(
                what,
                format!("must be 1 to {max} bytes without control characters"),
            ));
        }
    }
    Ok(())
}

/// The consent ledger.
///
/// ```
/// use consentry::store::ConsentStore;
/// # use std::time::UNIX_EPOCH;
/// # use consentry::{ConnectionId, Purpose, UserId};
/// # use consentry::store::{ConsentEntry, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
/// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
/// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
/// store.append_consent(entry("matching", true)).await?;
/// assert_eq!(store.consented_purposes(&user, &conn).await?, [Purpose::new("matching")?]);
/// store.append_consent(entry("matching", false)).await?;
/// assert!(store.consented_purposes(&user, &conn).await?.is_empty());
/// assert_eq!(store.consent_history(&user, Some(&conn)).await?.len(), 2); // the ledger keeps both
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ConsentStore: Debug + Send + Sync + 'static {
    /// Appends `entry` and updates the current state of its purpose, in one
    /// transaction; returns the entry's sequence number.
    ///
    /// ```
    /// use consentry::store::ConsentStore;
    /// # use std::time::UNIX_EPOCH;
    /// # use consentry::{ConnectionId, Purpose, UserId};
    /// # use consentry::store::{ConsentEntry, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
    /// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
    /// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
    /// let first = store.append_consent(entry("matching", true)).await?;
    /// let second = store.append_consent(entry("matching", false)).await?;
    /// assert!(second > first); // sequence numbers grow
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn append_consent(&self, entry: ConsentEntry) -> Result<u64>;

    /// The ledger of `user` (one connection, or all), in order.
    ///
    /// ```
    /// use consentry::store::ConsentStore;
    /// # use std::time::UNIX_EPOCH;
    /// # use consentry::{ConnectionId, Purpose, UserId};
    /// # use consentry::store::{ConsentEntry, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
    /// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
    /// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
    /// store.append_consent(entry("matching", true)).await?;
    /// store.append_consent(entry("analytics", true)).await?;
    /// store.append_consent(entry("matching", false)).await?;
    /// let history = store.consent_history(&user, None).await?;
    /// let granted: Vec<bool> = history.iter().map(|e| e.granted).collect();
    /// assert_eq!(granted, [true, true, false]); // in order
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn consent_history(
        &self,
        user: &UserId,
        connection: Option<&ConnectionId>,
    ) -> Result<Vec<ConsentEntry>>;

    /// The purposes of `connection` whose latest entry is a grant.
    ///
    /// ```
    /// use consentry::store::ConsentStore;
    /// # use std::time::UNIX_EPOCH;
    /// # use consentry::{ConnectionId, Purpose, UserId};
    /// # use consentry::store::{ConsentEntry, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let (user, conn) = (UserId::new("alice")?, ConnectionId::new("c1")?);
    /// # let entry = |purpose: &str, granted| ConsentEntry::new(user.clone(), conn.clone(),
    /// #     Purpose::new(purpose).unwrap(), granted, "user:alice", "2026-01", UNIX_EPOCH);
    /// store.append_consent(entry("matching", true)).await?;
    /// store.append_consent(entry("analytics", true)).await?;
    /// store.append_consent(entry("analytics", false)).await?;
    /// assert_eq!(store.consented_purposes(&user, &conn).await?, [Purpose::new("matching")?]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn consented_purposes(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Vec<Purpose>>;
}

/// Implements the trait for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: ConsentStore + ?Sized> ConsentStore for $($seg)::+<T> {
            async fn append_consent(&self, entry: ConsentEntry) -> Result<u64> {
                (**self).append_consent(entry).await
            }
            async fn consent_history(&self, user: &UserId, connection: Option<&ConnectionId>) -> Result<Vec<ConsentEntry>> {
                (**self).consent_history(user, connection).await
            }
            async fn consented_purposes(&self, user: &UserId, connection: &ConnectionId) -> Result<Vec<Purpose>> {
                (**self).consented_purposes(user, connection).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
