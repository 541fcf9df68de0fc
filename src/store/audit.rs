//! The storage concern of the audit log: [`AuditStore`].
//!
//! The store keeps entries, the chain's head and the checkpoint of a purged
//! prefix exactly as [`AuditLog`](crate::audit::AuditLog) hands them over;
//! it computes no hash and interprets no field. Every method is one
//! transaction.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;

/// The most entries one [`AuditStore::audit_entries`] call returns.
///
/// ```
/// use consentry::audit::AuditQuery;
/// use consentry::store::MAX_AUDIT_PAGE;
/// assert_eq!(AuditQuery::default().limit(usize::MAX).limit, MAX_AUDIT_PAGE);
/// ```
pub const MAX_AUDIT_PAGE: usize = 1_000;

/// One audit entry as stored: plain text fields, the hash of the previous
/// entry and this entry's own hash (a keyed MAC over every other field).
///
/// ```
/// use consentry::store::StoredAuditEntry;
/// let e = StoredAuditEntry::default();
/// assert_eq!(e.seq, 0);
/// assert!(e.subject.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredAuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// `resource.action`, such as `credential.read`.
    pub action: String,
    /// Who did it, in text form (`user:acme/alice`, `api_token:…`,
    /// `service:…`, `system`).
    pub actor: String,
    /// The user the operation concerns, in `UserId` text form.
    pub subject: Option<String>,
    /// What it touched (`connection:…`, `webhook_endpoint:…`).
    pub resource: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Structured details as a JSON object (never a secret).
    pub details: String,
    /// The client's IP address, when the host supplied it.
    pub ip: Option<String>,
    /// The client's user agent, when the host supplied it.
    pub user_agent: Option<String>,
    /// The host's request id, when the host supplied it.
    pub request_id: Option<String>,
    /// The keyring key whose subkey computed `hash`.
    pub key_id: String,
    /// The previous entry's `hash` (zeros for the first entry).
    pub prev_hash: Vec<u8>,
    /// This entry's MAC.
    pub hash: Vec<u8>,
}

/// The chain's head: its last entry, with a MAC that makes a deleted last
/// entry detectable.
///
/// ```
/// use consentry::store::AuditHead;
/// let head = AuditHead::new(3, vec![1; 32], "k1", vec![2; 32]);
/// assert_eq!(head.seq, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditHead {
    /// The last entry's `seq`.
    pub seq: u64,
    /// The last entry's `hash`.
    pub hash: Vec<u8>,
    /// The key whose subkey computed `mac`.
    pub key_id: String,
    /// MAC over `seq` and `hash`.
    pub mac: Vec<u8>,
}

impl AuditHead {
    /// A head (for store implementations and tests).
    ///
    /// ```
    /// use consentry::store::AuditHead;
    /// assert_eq!(AuditHead::new(1, vec![], "k1", vec![]).key_id, "k1");
    /// ```
    pub fn new(seq: u64, hash: Vec<u8>, key_id: impl Into<String>, mac: Vec<u8>) -> Self {
        Self {
            seq,
            hash,
            key_id: key_id.into(),
            mac,
        }
    }
}

/// What remains of a purged prefix of the chain: its last entry's `seq`
/// and `hash`, how many entries were purged in all, when, and a MAC over
/// these fields.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use consentry::store::AuditCheckpoint;
/// let cp = AuditCheckpoint::new(10, vec![0; 32], 10, UNIX_EPOCH, "k1", vec![0; 32]);
/// assert_eq!(cp.purged, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditCheckpoint {
    /// The last purged entry's `seq`.
    pub seq: u64,
    /// The last purged entry's `hash`.
    pub hash: Vec<u8>,
    /// How many entries have been purged in all.
    pub purged: u64,
    /// When the purge ran.
    pub at: SystemTime,
    /// The key whose subkey computed `mac`.
    pub key_id: String,
    /// MAC over the other fields.
    pub mac: Vec<u8>,
}

impl AuditCheckpoint {
    /// A checkpoint (for store implementations and tests).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::store::AuditCheckpoint;
    /// assert_eq!(AuditCheckpoint::new(1, vec![], 1, UNIX_EPOCH, "k1", vec![]).seq, 1);
    /// ```
    pub fn new(
        seq: u64,
        hash: Vec<u8>,
        purged: u64,
        at: SystemTime,
        key_id: impl Into<String>,
        mac: Vec<u8>,
    ) -> Self {
        Self {
            seq,
            hash,
            purged,
            at,
            key_id: key_id.into(),
            mac,
        }
    }
}

/// Which entries [`AuditStore::audit_entries`] returns: all filters must
/// match; entries come in `seq` order, after `after_seq`, at most `limit`
/// (capped at [`MAX_AUDIT_PAGE`]).
///
/// ```
/// use consentry::store::AuditFilter;
/// let f = AuditFilter { action: Some("credential.read".into()), limit: 50, ..Default::default() };
/// assert!(f.subject.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this user (`UserId` text form).
    pub subject: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this resource.
    pub resource: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// Only entries with a larger `seq` (the pagination cursor).
    pub after_seq: u64,
    /// At most this many (0 means none; capped at [`MAX_AUDIT_PAGE`]).
    pub limit: usize,
}

impl AuditFilter {
    /// Whether `e` matches the filters other than `after_seq` and `limit`
    /// (for store implementations).
    ///
    /// ```
    /// use consentry::store::{AuditFilter, StoredAuditEntry};
    /// let mut e = StoredAuditEntry::default();
    /// e.action = "consent.granted".into();
    /// let f = AuditFilter { action: Some("consent.granted".into()), ..Default::default() };
    /// assert!(f.matches(&e));
    /// ```
    pub fn matches(&self, e: &StoredAuditEntry) -> bool {
        let ms = crate::clock::unix_millis;
        self.subject
            .as_ref()
            .is_none_or(|s| e.subject.as_ref() == Some(s))
            && self.action.as_ref().is_none_or(|a| &e.action == a)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| e.resource.as_ref() == Some(r))
            && self.from.is_none_or(|t| e.at_ms >= ms(t))
            && self.until.is_none_or(|t| e.at_ms < ms(t))
    }
}

/// Storage for the hash-chained audit log.
///
/// ```
/// use consentry::store::{AuditFilter, AuditStore, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// assert!(store.audit_head().await?.is_none());
/// assert!(store.audit_entries(&AuditFilter { limit: 10, ..Default::default() }).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait AuditStore: Debug + Send + Sync + 'static {
    /// The chain's head, or `None` before the first entry.
    async fn audit_head(&self) -> Result<Option<AuditHead>>;

    /// Appends `entries` (consecutive `seq`s after the current head) and
    /// sets `head`, in one transaction, only if the current head's `seq`
    /// is `expected` (0: no head yet). Returns `false`, writing nothing,
    /// when another writer moved the head first.
    ///
    /// # Errors
    /// `InvalidInput` when the entries do not follow `expected` without a
    /// gap or `head` does not name the last one.
    async fn append_audit_entries(
        &self,
        expected: u64,
        entries: Vec<StoredAuditEntry>,
        head: AuditHead,
    ) -> Result<bool>;

    /// The entries matching `filter`, in `seq` order.
    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditEntry>>;

    /// The checkpoint of the purged prefix, if anything was purged.
    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>>;

    /// Deletes every entry with `seq <= checkpoint.seq` and stores
    /// `checkpoint` in place of the previous one, in one transaction;
    /// returns how many entries were deleted.
    ///
    /// # Errors
    /// `InvalidInput` when `checkpoint.seq` is below the stored
    /// checkpoint's or beyond the head.
    async fn purge_audit_entries(&self, checkpoint: AuditCheckpoint) -> Result<u64>;
}

/// Checks an append batch (stores call this first).
pub(crate) fn check_append(
    expected: u64,
    entries: &[StoredAuditEntry],
    head: &AuditHead,
) -> Result<()> {
    let bad = |reason: &str| Err(crate::Error::invalid("audit append", reason.to_owned()));
    if entries.is_empty() {
        return bad("no entries");
    }
    for (i, e) in entries.iter().enumerate() {
        if e.seq != expected + 1 + i as u64 {
            return bad("entries must follow the head without a gap");
        }
    }
    if entries.last().map(|e| e.seq) != Some(head.seq) {
        return bad("the head must name the last entry");
    }
    Ok(())
}

/// Implements the trait for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: AuditStore + ?Sized> AuditStore for $($seg)::+<T> {
            async fn audit_head(&self) -> Result<Option<AuditHead>> {
                (**self).audit_head().await
            }
            async fn append_audit_entries(
                &self,
                expected: u64,
                entries: Vec<StoredAuditEntry>,
                head: AuditHead,
            ) -> Result<bool> {
                (**self).append_audit_entries(expected, entries, head).await
            }
            async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditEntry>> {
                (**self).audit_entries(filter).await
            }
            async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>> {
                (**self).audit_checkpoint().await
            }
            async fn purge_audit_entries(&self, checkpoint: AuditCheckpoint) -> Result<u64> {
                (**self).purge_audit_entries(checkpoint).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
