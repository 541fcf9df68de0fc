//! Storage for harvested data: records with provenance and purposes
//! ([`RecordStore`]), each stream's cursor and schedule ([`SyncStore`]),
//! connection settings and field mappings ([`SettingsStore`]), and user
//! erasure with its tombstone ([`ErasureStore`]).
//!
//! The rules every backend keeps:
//! - a page of records and the cursor that follows it are written in one
//!   transaction ([`RecordStore::apply_page`]), records upserted by provider
//!   id, and only for purposes that still have consent at that moment;
//! - a read of records checks consent and appends to the access log in one
//!   transaction ([`RecordStore::read_records`]);
//! - revoking consent to a purpose (through
//!   [`ConsentStore::append_consent`](super::ConsentStore::append_consent))
//!   removes that purpose from the connection's records and deletes those
//!   left with none, in the same transaction as the ledger entry;
//! - deleting a connection deletes its records, sync state, access log,
//!   settings and field mappings with it.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::records::{HeldRecord, Record};

/// How a stream's last run went.
///
/// ```
/// use consentry::store::SyncStatus;
/// assert_eq!(SyncStatus::RateLimited.as_str(), "rate_limited");
/// assert_eq!("partial".parse::<SyncStatus>()?, SyncStatus::Partial);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncStatus {
    /// Never run.
    Idle,
    /// The last run caught up with the provider.
    Ok,
    /// The last run stopped at its time budget; the next resumes from the
    /// saved cursor.
    Partial,
    /// The last run failed; it is retried with backoff.
    Failed,
    /// The provider rate limited the last run; it resumes after the wait.
    RateLimited,
    /// The provider's circuit is open after repeated failures.
    Degraded,
    /// The provider refused the connection's credentials: the user must
    /// connect again.
    ReauthRequired,
    /// No purpose of the stream has consent: it does not run.
    ConsentRequired,
}

const STATUSES: [SyncStatus; 8] = [
    SyncStatus::Idle,
    SyncStatus::Ok,
    SyncStatus::Partial,
    SyncStatus::Failed,
    SyncStatus::RateLimited,
    SyncStatus::Degraded,
    SyncStatus::ReauthRequired,
    SyncStatus::ConsentRequired,
];

impl SyncStatus {
    /// The stable snake_case name.
    ///
    /// ```
    /// use consentry::store::SyncStatus;
    /// assert_eq!(SyncStatus::RateLimited.as_str(), "rate_limited");
    /// assert_eq!(SyncStatus::ConsentRequired.as_str(), "consent_required");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::RateLimited => "rate_limited",
            Self::Degraded => "degraded",
            Self::ReauthRequired => "reauth_required",
            Self::ConsentRequired => "consent_required",
        }
    }
}

impl std::str::FromStr for SyncStatus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        STATUSES
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("sync status", format!("unknown status {s:?}")))
    }
}

/// One stream of one connection: where its last run stopped, what its
/// records were fetched for, how it went, and when it runs next.
///
/// ```
/// use consentry::{ConnectionId, ConnectorId, UserId};
/// use consentry::store::{SyncState, SyncStatus};
/// let s = SyncState::new(UserId::new("u1")?, ConnectionId::new("c1")?, ConnectorId::new("google")?, "events");
/// assert_eq!((s.status, s.generation, s.cursor.as_deref()), (SyncStatus::Idle, 0, None));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SyncState {
    /// Whose connection.
    pub user: UserId,
    /// The connection.
    pub connection: ConnectionId,
    /// Its connector.
    pub connector: ConnectorId,
    /// The stream.
    pub stream: String,
    /// Where to resume (`None`: from the start). Not exported: a provider
    /// page or sync token.
    #[serde(skip)]
    pub cursor: Option<String>,
    /// Goes up by one with every sync that starts from scratch; records
    /// carry the generation that last wrote them.
    pub generation: u64,
    /// A sync from scratch is under way: when it finishes, records of
    /// older generations (gone at the provider) are deleted.
    pub full_sync: bool,
    /// The purposes the records behind the cursor were fetched for.
    pub purposes: Vec<Purpose>,
    /// How the last run went.
    pub status: SyncStatus,
    /// When the last run started.
    #[serde(with = "crate::records::opt_millis")]
    pub last_run_at: Option<SystemTime>,
    /// When a run last caught up.
    #[serde(with = "crate::records::opt_millis")]
    pub last_success_at: Option<SystemTime>,
    /// Why the last run failed: short, secret-free.
    pub last_error: Option<String>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// When the scheduler runs it next (`None`: not scheduled).
    #[serde(with = "crate::records::opt_millis")]
    pub next_run_at: Option<SystemTime>,
}

impl SyncState {
    /// A stream that never ran.
    ///
    /// ```
    /// use consentry::{ConnectionId, ConnectorId, UserId};
    /// use consentry::store::{SyncState, SyncStatus};
    /// let s = SyncState::new(UserId::new("u1")?, ConnectionId::new("c1")?, ConnectorId::new("spotify")?, "top_artists");
    /// assert_eq!((s.status, s.generation, s.cursor), (SyncStatus::Idle, 0, None));
    /// assert!(s.next_run_at.is_none()); // not scheduled
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        user: UserId,
        connection: ConnectionId,
        connector: ConnectorId,
        stream: impl Into<String>,
    ) -> Self {
        Self {
            user,
            connection,
            connector,
            stream: stream.into(),
            cursor: None,
            generation: 0,
            full_sync: false,
            purposes: Vec::new(),
            status: SyncStatus::Idle,
            last_run_at: None,
            last_success_at: None,
            last_error: None,
            consecutive_failures: 0,
            next_run_at: None,
        }
    }
}

/// One page to store: records, deletions and the state (cursor) that
/// follows them, written in one transaction.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ConnectionId, ConnectorId, Purpose, UserId};
/// use consentry::records::Record;
/// use consentry::store::{PageWrite, SyncState};
/// let state = SyncState::new(UserId::new("u1")?, ConnectionId::new("c1")?, ConnectorId::new("x")?, "s");
/// let page = PageWrite::new(state, vec![Record::new("1", "item", serde_json::json!({}))?],
///                           vec![Purpose::new("matching")?], SystemTime::UNIX_EPOCH);
/// assert!(page.deleted.is_empty() && !page.sweep);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PageWrite {
    /// The stream's state after this page (its cursor is saved).
    pub state: SyncState,
    /// Records to upsert (by provider id).
    pub records: Vec<Record>,
    /// Provider ids of records deleted at the provider.
    pub deleted: Vec<String>,
    /// The purposes the records were fetched for. The store keeps only
    /// those with consent at the time of writing.
    pub purposes: Vec<Purpose>,
    /// When they were fetched.
    pub fetched_at: SystemTime,
    /// The end of a sync from scratch: delete the stream's records of
    /// older generations.
    pub sweep: bool,
}

impl PageWrite {
    /// A page without deletions or sweep.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{ConnectionId, ConnectorId, Purpose, UserId};
    /// use consentry::store::{PageWrite, SyncState};
    /// let state = SyncState::new(UserId::new("u1")?, ConnectionId::new("c1")?, ConnectorId::new("x")?, "s");
    /// let page = PageWrite::new(state, Vec::new(), vec![Purpose::new("matching")?], SystemTime::UNIX_EPOCH);
    /// assert!(page.records.is_empty() && page.deleted.is_empty() && !page.sweep);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        state: SyncState,
        records: Vec<Record>,
        purposes: Vec<Purpose>,
        fetched_at: SystemTime,
    ) -> Self {
        Self {
            state,
            records,
            deleted: Vec::new(),
            purposes,
            fetched_at,
            sweep: false,
        }
    }
}

/// What [`RecordStore::apply_page`] did.
///
/// ```
/// use consentry::store::PageApplied;
/// let a = PageApplied::default();
/// assert_eq!((a.upserted, a.deleted, a.swept), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageApplied {
    /// Records inserted or updated.
    pub upserted: u64,
    /// Records deleted because the provider deleted them.
    pub deleted: u64,
    /// Records of older generations deleted by the sweep.
    pub swept: u64,
    /// The purposes the records were stored for (the consented ones).
    pub purposes: Vec<Purpose>,
}

/// A consent-checked read of one stream's records for one purpose.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ConnectionId, Purpose, UserId};
/// use consentry::store::RecordRead;
/// let mut r = RecordRead::new(UserId::new("u")?, ConnectionId::new("c")?, "books", Purpose::new("matching")?,
///                             "matcher", SystemTime::UNIX_EPOCH, 100);
/// r.after = Some("book-9".into());
/// assert_eq!(r.limit, 100);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordRead {
    /// Whose.
    pub user: UserId,
    /// Which connection.
    pub connection: ConnectionId,
    /// Which stream.
    pub stream: String,
    /// For which purpose.
    pub purpose: Purpose,
    /// Who reads (logged).
    pub component: String,
    /// When (logged).
    pub at: SystemTime,
    /// Only records whose id sorts after this.
    pub after: Option<String>,
    /// At most this many, in id order.
    pub limit: usize,
}

impl RecordRead {
    /// A read of up to `limit` records from the first.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{ConnectionId, Purpose, UserId};
    /// use consentry::store::RecordRead;
    /// let r = RecordRead::new(UserId::new("u")?, ConnectionId::new("c")?, "books", Purpose::new("matching")?,
    ///                         "matcher", SystemTime::UNIX_EPOCH, 50);
    /// assert_eq!((r.stream.as_str(), r.component.as_str(), r.after, r.limit), ("books", "matcher", None, 50));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        user: UserId,
        connection: ConnectionId,
        stream: impl Into<String>,
        purpose: Purpose,
        component: impl Into<String>,
        at: SystemTime,
        limit: usize,
    ) -> Self {
        Self {
            user,
            connection,
            stream: stream.into(),
            purpose,
            component: component.into(),
            at,
            after: None,
            limit,
        }
    }
}

/// One read of records, as logged.
///
/// ```
/// use consentry::store::{AccessLogEntry, MemoryStore, RecordStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let log: Vec<AccessLogEntry> = MemoryStore::new().access_log(&consentry::UserId::new("u")?).await?;
/// assert!(log.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessLogEntry {
    /// Position in the log.
    pub seq: u64,
    /// Whose records.
    pub user: UserId,
    /// Which connection.
    pub connection: ConnectionId,
    /// Which stream.
    pub stream: String,
    /// For which purpose.
    pub purpose: Purpose,
    /// Who read them (a component of the host).
    pub component: String,
    /// When.
    #[serde(with = "crate::records::millis")]
    pub at: SystemTime,
    /// How many records were returned.
    pub count: u64,
}

/// How many records of a stream are held for a purpose.
///
/// ```
/// use consentry::{ConnectionId, Purpose};
/// use consentry::store::RecordCount;
/// let n = RecordCount::new(ConnectionId::new("c")?, "books".into(), Purpose::new("matching")?, 12);
/// assert_eq!(n.count, 12);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordCount {
    /// The connection.
    pub connection: ConnectionId,
    /// The stream.
    pub stream: String,
    /// The purpose.
    pub purpose: Purpose,
    /// How many records serve it.
    pub count: u64,
}

impl RecordCount {
    /// Builds a count (for store implementations).
    ///
    /// ```
    /// use consentry::{ConnectionId, Purpose};
    /// use consentry::store::RecordCount;
    /// let n = RecordCount::new(ConnectionId::new("c")?, "books".into(), Purpose::new("matching")?, 3);
    /// assert_eq!((n.stream.as_str(), n.purpose.as_str(), n.count), ("books", "matching", 3));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(connection: ConnectionId, stream: String, purpose: Purpose, count: u64) -> Self {
        Self {
            connection,
            stream,
            purpose,
            count,
        }
    }
}

/// Where a record sorts in a user's export: connection, stream, id.
///
/// ```
/// use consentry::ConnectionId;
/// use consentry::store::RecordKey;
/// let after: RecordKey = (ConnectionId::new("c")?, "books".into(), "book-9".into());
/// assert_eq!(after.2, "book-9");
/// # Ok::<(), consentry::Error>(())
/// ```
pub type RecordKey = (ConnectionId, String, String);

/// Records with provenance, and the log of reads.
///
/// ```
/// use consentry::store::{MemoryStore, RecordStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let user = consentry::UserId::new("u")?;
/// assert!(store.record_counts(&user).await?.is_empty());
/// assert!(store.user_records(&user, None, 10).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RecordStore: Debug + Send + Sync + 'static {
    /// Upserts the page's records for its purposes that have consent now,
    /// deletes its deleted ids, sweeps if asked, and saves `page.state`,
    /// in one transaction.
    ///
    /// Errors: `NotFound` if the connection does not exist (it was
    /// disconnected during the run); `ConsentRequired` if none of the
    /// purposes has consent. Nothing is written then.
    async fn apply_page(&self, page: PageWrite) -> Result<PageApplied>;

    /// If `read.purpose` has consent for the connection: the stream's
    /// records serving it, and one access-log entry with their count, in
    /// one transaction. `None` (and no log entry) without consent.
    async fn read_records(&self, read: RecordRead) -> Result<Option<Vec<HeldRecord>>>;

    /// Per connection, stream and purpose, how many records `user` has.
    async fn record_counts(&self, user: &UserId) -> Result<Vec<RecordCount>>;

    /// The access log of `user`, oldest first.
    async fn access_log(&self, user: &UserId) -> Result<Vec<AccessLogEntry>>;

    /// Up to `limit` records of `user` after `after`, ordered by
    /// connection, stream and id (for export; no consent check, no log).
    async fn user_records(
        &self,
        user: &UserId,
        after: Option<RecordKey>,
        limit: usize,
    ) -> Result<Vec<HeldRecord>>;
}

/// Each stream's cursor, status and schedule.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::store::{MemoryStore, SyncStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// assert!(store.due_syncs(SystemTime::now(), 10).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait SyncStore: Debug + Send + Sync + 'static {
    /// The state of one stream, if it ever ran or was scheduled.
    async fn get_sync_state(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<SyncState>>;

    /// Creates or replaces a stream's state. `NotFound` if the connection
    /// does not exist.
    async fn put_sync_state(&self, state: SyncState) -> Result<()>;

    /// Every stream state of `user`.
    async fn list_sync_states(&self, user: &UserId) -> Result<Vec<SyncState>>;

    /// Up to `limit` states whose `next_run_at` is at or before `now`,
    /// soonest first.
    async fn due_syncs(&self, now: SystemTime, limit: usize) -> Result<Vec<SyncState>>;
}

/// Who a field mapping applies to.
///
/// ```
/// use consentry::{ConnectionId, UserId};
/// use consentry::store::MappingScope;
/// let one = MappingScope::Connection(UserId::new("u1")?, ConnectionId::new("c1")?);
/// let all = MappingScope::Tenant(Some("acme".into()));
/// assert_ne!(one, all);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MappingScope {
    /// One connection.
    Connection(UserId, ConnectionId),
    /// Every connection of a tenant (`None`: users without a tenant).
    Tenant(Option<String>),
}

/// Connection settings and field mappings, stored as JSON text.
///
/// ```
/// use consentry::{ConnectionId, UserId};
/// use consentry::store::{MappingScope, MemoryStore, SettingsStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// store.put_field_mapping(&MappingScope::Tenant(None), "books", Some("{}".into())).await?;
/// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
/// assert_eq!(store.get_field_mapping(&u, &c, "books").await?.as_deref(), Some("{}"));
/// assert!(store.get_settings(&u, &c).await?.is_none());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait SettingsStore: Debug + Send + Sync + 'static {
    /// Replaces a connection's settings. `NotFound` if the connection does
    /// not exist.
    async fn put_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        settings: String,
    ) -> Result<()>;

    /// A connection's settings.
    async fn get_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Option<String>>;

    /// Sets (or with `None` removes) the field mapping of `stream` for
    /// `scope`.
    async fn put_field_mapping(
        &self,
        scope: &MappingScope,
        stream: &str,
        mapping: Option<String>,
    ) -> Result<()>;

    /// The mapping that applies to a connection's stream: the
    /// connection's own, else its tenant's.
    async fn get_field_mapping(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<String>>;
}

/// The minimal trace an erased user leaves: a hash of their id, when, and
/// how much was deleted. Nothing that identifies them without their id.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::store::Tombstone;
/// let t = Tombstone::new("ab12".into(), SystemTime::UNIX_EPOCH, 2, 40);
/// assert_eq!((t.connections, t.records), (2, 40));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Tombstone {
    /// SHA-256 of the user's tenant and id, hex.
    pub subject: String,
    /// When the user was erased.
    #[serde(with = "crate::records::millis")]
    pub erased_at: SystemTime,
    /// Connections they had.
    pub connections: u64,
    /// Records deleted.
    pub records: u64,
}

impl Tombstone {
    /// Builds a tombstone (the facade and store implementations).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::store::Tombstone;
    /// let t = Tombstone::new("9f86d0".into(), SystemTime::UNIX_EPOCH, 1, 0);
    /// assert_eq!(serde_json::to_value(&t).unwrap()["erased_at"], 0); // milliseconds since the epoch
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(subject: String, erased_at: SystemTime, connections: u64, records: u64) -> Self {
        Self {
            subject,
            erased_at,
            connections,
            records,
        }
    }
}

/// What [`ErasureStore::erase_user_data`] deleted.
///
/// ```
/// use consentry::store::UserErased;
/// assert_eq!(UserErased::default().records, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserErased {
    /// Connection rows.
    pub connections: u64,
    /// Records.
    pub records: u64,
    /// Consent ledger entries.
    pub consent_entries: u64,
    /// Access log entries.
    pub access_log_entries: u64,
    /// Queued revocations abandoned (their tokens become unreadable).
    pub revocations: u64,
}

/// Erasing everything of a user, leaving a tombstone.
///
/// ```
/// use consentry::store::{ErasureStore, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(MemoryStore::new().tombstone("no-such-subject").await?.is_none());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ErasureStore: Debug + Send + Sync + 'static {
    /// Deletes every row of `user` (connections, credentials, consent,
    /// records, sync state, access log, settings, mappings, pending
    /// authorizations, queued revocations) and stores `tombstone`, in one
    /// transaction. Data keys are left to the vault.
    async fn erase_user_data(&self, user: &UserId, tombstone: Tombstone) -> Result<UserErased>;

    /// The tombstone with `subject`, if that user was erased.
    async fn tombstone(&self, subject: &str) -> Result<Option<Tombstone>>;
}

/// Implements the traits for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: RecordStore + ?Sized> RecordStore for $($seg)::+<T> {
            async fn apply_page(&self, page: PageWrite) -> Result<PageApplied> {
                (**self).apply_page(page).await
            }
            async fn read_records(&self, read: RecordRead) -> Result<Option<Vec<HeldRecord>>> {
                (**self).read_records(read).await
            }
            async fn record_counts(&self, user: &UserId) -> Result<Vec<RecordCount>> {
                (**self).record_counts(user).await
            }
            async fn access_log(&self, user: &UserId) -> Result<Vec<AccessLogEntry>> {
                (**self).access_log(user).await
            }
            async fn user_records(&self, user: &UserId, after: Option<RecordKey>, limit: usize) -> Result<Vec<HeldRecord>> {
                (**self).user_records(user, after, limit).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: SyncStore + ?Sized> SyncStore for $($seg)::+<T> {
            async fn get_sync_state(&self, user: &UserId, connection: &ConnectionId, stream: &str) -> Result<Option<SyncState>> {
                (**self).get_sync_state(user, connection, stream).await
            }
            async fn put_sync_state(&self, state: SyncState) -> Result<()> {
                (**self).put_sync_state(state).await
            }
            async fn list_sync_states(&self, user: &UserId) -> Result<Vec<SyncState>> {
                (**self).list_sync_states(user).await
            }
            async fn due_syncs(&self, now: SystemTime, limit: usize) -> Result<Vec<SyncState>> {
                (**self).due_syncs(now, limit).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: SettingsStore + ?Sized> SettingsStore for $($seg)::+<T> {
            async fn put_settings(&self, user: &UserId, connection: &ConnectionId, settings: String) -> Result<()> {
                (**self).put_settings(user, connection, settings).await
            }
            async fn get_settings(&self, user: &UserId, connection: &ConnectionId) -> Result<Option<String>> {
                (**self).get_settings(user, connection).await
            }
            async fn put_field_mapping(&self, scope: &MappingScope, stream: &str, mapping: Option<String>) -> Result<()> {
                (**self).put_field_mapping(scope, stream, mapping).await
            }
            async fn get_field_mapping(&self, user: &UserId, connection: &ConnectionId, stream: &str) -> Result<Option<String>> {
                (**self).get_field_mapping(user, connection, stream).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: ErasureStore + ?Sized> ErasureStore for $($seg)::+<T> {
            async fn erase_user_data(&self, user: &UserId, tombstone: Tombstone) -> Result<UserErased> {
                (**self).erase_user_data(user, tombstone).await
            }
            async fn tombstone(&self, subject: &str) -> Result<Option<Tombstone>> {
                (**self).tombstone(subject).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);

/// Purposes in their stored form: `" a b "` (a purpose never contains a
/// space), so `" a "` finds one.
#[cfg(feature = "sqlite")]
pub(crate) fn join_purposes(purposes: &[Purpose]) -> String {
    let mut s = String::from(" ");
    for p in purposes {
        s.push_str(p.as_str());
        s.push(' ');
    }
    s
}

/// Purposes from their stored form.
#[cfg(feature = "sqlite")]
pub(crate) fn split_purposes(s: &str) -> Result<Vec<Purpose>> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(Purpose::new)
        .collect()
}

/// Sorted, without duplicates.
pub(crate) fn normalize_purposes(mut purposes: Vec<Purpose>) -> Vec<Purpose> {
    purposes.sort();
    purposes.dedup();
    purposes
}
