//! The audit log: an append-only, hash-chained record of every sensitive
//! operation — who did what to whose data, when, from where, and how it
//! ended.
//!
//! - Each entry carries a MAC over all its fields and the previous entry's
//!   MAC, keyed by a subkey of the keyring, and the chain's head carries a
//!   MAC of its own: [`AuditLog::verify`] detects an edited, deleted,
//!   inserted or reordered entry (even the newest) and names the first bad
//!   one. Someone who can write the database but does not hold the keyring
//!   cannot repair the chain after tampering. What it cannot detect: the
//!   whole log, head and checkpoint deleted together (the log then reads as
//!   empty) — anchor [`AuditLog::head`] outside the database (a log line, a
//!   ticket) if that matters to you.
//! - Writes are batched: [`AuditLog::record`] queues and returns (credential
//!   reads stay fast); [`AuditLog::record_durable`] and [`AuditLog::flush`]
//!   wait until the entries are committed. Entries queued but not yet
//!   written when the process dies are lost; consentry's own rare,
//!   state-changing operations (connect, consent changes, disconnect,
//!   erasure, key rotation, webhook endpoint changes) use `record_durable`.
//! - [`AuditLog::purge_before`] deletes old entries and keeps the chain
//!   verifiable through a MAC'ed checkpoint of the purged prefix.
//! - IP, user agent and request id come from the [`RequestContext`] the
//!   host sets around a request's future.
//! - Details never hold a secret: consentry's own entries carry ids,
//!   purposes, scopes and counts, never tokens or keys.
//!
//! The MAC key: a log made with [`AuditLog::for_vault`] (as `Integrations`
//! and the webhook `Dispatcher` make theirs) keeps one random MAC key
//! sealed in the vault, under the reserved user `.consentry/audit-log`;
//! `rewrap` moves it to a new primary key like any data key, so rotating
//! the keyring and retiring old keys never strands old entries. A log made
//! with [`AuditLog::new`] derives its MAC keys from the keyring's keys by
//! key id (recorded in each entry): keep a key in that keyring while
//! entries MAC'ed under it remain, or purge them first; [`AuditLog::verify`]
//! reports a missing key as [`Error::KeyNotFound`](crate::Error::KeyNotFound).
//!
//! ```
//! use consentry::UserId;
//! use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery, RequestContext};
//! use consentry::store::MemoryStore;
//! use consentry::vault::Keyring;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
//! let alice = UserId::new("alice")?;
//! RequestContext::new().request_id("req-1").ip([192, 0, 2, 1].into())
//!     .scope(async {
//!         let event = AuditEvent::new("profile.viewed", AuditActor::User(alice.clone()))?.subject(&alice);
//!         log.record_durable(event).await
//!     })
//!     .await?;
//! let page = log.query(&AuditQuery::for_user(&alice)).await?;
//! assert_eq!(page.entries[0].request_id.as_deref(), Some("req-1"));
//! assert_eq!(log.verify().await?.entries, 1);
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```

mod appender;
mod chain;
mod context;
mod event;
mod keys;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

pub use chain::ChainFault;
pub use context::{MAX_REQUEST_ID_LEN, MAX_USER_AGENT_LEN, RequestContext};
pub use event::{
    AuditActor, AuditEntry, AuditEvent, MAX_ACTION_LEN, MAX_DETAILS_LEN, MAX_RESOURCE_LEN, Outcome,
};

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::ids::UserId;
use crate::store::{AuditCheckpoint, AuditFilter, AuditStore, MAX_AUDIT_PAGE};
use crate::vault::{Keyring, Vault};
use appender::{Appender, Pushed};
use chain::{Keys, Walk};
pub(crate) use keys::KeySource;

/// Text cut to a resource's bound, without control characters.
pub(crate) fn clean_text(s: &str) -> String {
    event::clean(s, MAX_RESOURCE_LEN)
}

/// The audit log. Cheap to clone; clones share the queue and the writer.
///
/// ```
/// use consentry::audit::AuditLog;
/// use consentry::store::MemoryStore;
/// use consentry::vault::Keyring;
/// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
/// let _shared = log.clone();
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Appender>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("store", &self.inner.store)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// Which entries [`AuditLog::query`] returns; all given filters must match.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::audit::AuditQuery;
/// let q = AuditQuery::for_user(&"alice".parse()?)
///     .action("credential.read")
///     .between(UNIX_EPOCH, UNIX_EPOCH + Duration::from_secs(86_400))
///     .limit(50);
/// assert_eq!(q.limit, 50);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only entries about this user.
    pub subject: Option<UserId>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this resource.
    pub resource: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// Continue after this entry (the previous page's `next`).
    pub after: Option<u64>,
    /// At most this many entries (default 100, at most 1,000).
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            subject: None,
            action: None,
            resource: None,
            from: None,
            until: None,
            after: None,
            limit: 100,
        }
    }
}

impl AuditQuery {
    /// Entries about `user`.
    ///
    /// ```
    /// let q = consentry::audit::AuditQuery::for_user(&"bob".parse()?);
    /// assert!(q.subject.is_some());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn for_user(user: &UserId) -> Self {
        Self {
            subject: Some(user.clone()),
            ..Self::default()
        }
    }

    /// Only `action`.
    ///
    /// ```
    /// let q = consentry::audit::AuditQuery::default().action("consent.granted");
    /// assert_eq!(q.action.as_deref(), Some("consent.granted"));
    /// ```
    #[must_use]
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Only `resource`.
    ///
    /// ```
    /// let q = consentry::audit::AuditQuery::default().resource("connection:c1");
    /// assert_eq!(q.resource.as_deref(), Some("connection:c1"));
    /// ```
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Only entries in `[from, until)`.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let q = consentry::audit::AuditQuery::default().between(UNIX_EPOCH, UNIX_EPOCH);
    /// assert_eq!(q.from, Some(UNIX_EPOCH));
    /// ```
    #[must_use]
    pub fn between(mut self, from: SystemTime, until: SystemTime) -> Self {
        self.from = Some(from);
        self.until = Some(until);
        self
    }

    /// Continue after entry `seq`.
    ///
    /// ```
    /// assert_eq!(consentry::audit::AuditQuery::default().after(7).after, Some(7));
    /// ```
    #[must_use]
    pub fn after(mut self, seq: u64) -> Self {
        self.after = Some(seq);
        self
    }

    /// At most `n` entries (capped at 1,000).
    ///
    /// ```
    /// assert_eq!(consentry::audit::AuditQuery::default().limit(5_000).limit, 1_000);
    /// ```
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.min(MAX_AUDIT_PAGE);
        self
    }
}

/// One page of [`AuditLog::query`].
///
/// ```
/// use consentry::audit::AuditPage;
/// let page = AuditPage::default();
/// assert!(page.entries.is_empty() && page.next.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AuditPage {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Pass to [`AuditQuery::after`] for the next page; `None` at the end.
    pub next: Option<u64>,
}

/// What [`AuditLog::verify`] checked.
///
/// ```
/// use consentry::audit::ChainReport;
/// let r = ChainReport::default();
/// assert_eq!((r.entries, r.purged), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// Entries purged before them (covered by the checkpoint).
    pub purged: u64,
    /// The last entry's `seq` (0 for an empty log).
    pub head: u64,
}

/// What [`AuditLog::purge_before`] did.
///
/// ```
/// use consentry::audit::PurgeReport;
/// assert_eq!(PurgeReport::default().deleted, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Entries deleted now.
    pub deleted: u64,
    /// The checkpoint's `seq` afterwards (0 if nothing was ever purged).
    pub checkpoint: u64,
}

impl AuditLog {
    /// A log in `store`, its MACs keyed from `keyring`, on the system clock.
    ///
    /// ```
    /// use consentry::audit::AuditLog;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(store: impl AuditStore, keyring: Keyring) -> Self {
        Self::build(
            Arc::new(store),
            KeySource::Fixed(Arc::new(keyring)),
            Arc::new(SystemClock),
        )
    }

    /// A log keyed from `vault`'s keyring, following its rotations.
    ///
    /// ```
    /// use consentry::audit::AuditLog;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{Keyring, Vault};
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let log = AuditLog::for_vault(store, &vault);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn for_vault(store: impl AuditStore, vault: &Vault) -> Self {
        Self::build(
            Arc::new(store),
            KeySource::vault(vault.clone()),
            Arc::new(SystemClock),
        )
    }

    pub(crate) fn build(
        store: Arc<dyn AuditStore>,
        keys: KeySource,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Appender::new(store, keys, clock)),
        }
    }

    /// The same log on another clock (entries are stamped with its time).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::audit::AuditLog;
    /// use consentry::clock::ManualClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?).with_clock(ManualClock::new(UNIX_EPOCH));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        Self::build(
            Arc::clone(&self.inner.store),
            self.inner.keys.clone(),
            Arc::new(clock),
        )
    }

    /// Queues `event` and returns at once; a background task writes it
    /// within moments (batched with others). Waits only when more than
    /// 16,384 entries are queued (back-pressure, nothing is dropped).
    ///
    /// An event identical to the one queued just before it (same action,
    /// actor, subject, resource, outcome, details and request context;
    /// only the time differs) and not yet taken by the writer joins that
    /// entry: one entry then stands for up to 10,000 events and says so in
    /// its details, `count` (how many) and `first_at` (the first one's time
    /// in Unix milliseconds; the entry's own time is the last one's). A
    /// sync loop that reads the same token a thousand times in a few
    /// milliseconds writes one entry, not a thousand. Events that differ in
    /// anything, their request id for one, stay apart.
    /// [`record_durable`](Self::record_durable) never merges.
    ///
    /// # Errors
    /// A storage error when it had to wait and the write failed.
    ///
    /// ```
    /// use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery};
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// log.record(AuditEvent::new("page.viewed", AuditActor::System)?).await?;
    /// log.flush().await?; // now it is committed
    /// assert_eq!(log.verify().await?.entries, 1);
    /// // Three identical events queued back to back: one entry, count 3.
    /// for _ in 0..3 {
    ///     log.record(AuditEvent::new("page.viewed", AuditActor::System)?.detail("page", "home")).await?;
    /// }
    /// log.flush().await?;
    /// let last = log.query(&AuditQuery::default()).await?.entries.pop().unwrap();
    /// assert_eq!(last.details["count"], 3);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.queue(event).await
    }

    /// [`record`](Self::record) with the event queued when this is called,
    /// not when the future is first polled: the returned future holds no
    /// event, only what is left to do (usually nothing), so the hot paths
    /// that await it stay small.
    pub(crate) fn queue(&self, event: AuditEvent) -> impl Future<Output = Result<()>> + Send + '_ {
        let pushed = self
            .inner
            .enqueue(&Arc::new(event.in_current_context()), true);
        self.finish_queued(pushed)
    }

    /// [`queue`](Self::queue) for an event another task built in its own
    /// request context (a single flight's leader, for its followers): it is
    /// recorded in the current task's context. In the same context (or
    /// with none) the event itself is queued, and it merges with the
    /// leader's entry by a pointer comparison (no copy, no reference
    /// count touched).
    pub(crate) fn queue_shared<'a>(
        &'a self,
        event: &Arc<AuditEvent>,
    ) -> impl Future<Output = Result<()>> + Send + use<'a> {
        let context = RequestContext::current();
        let pushed = if event.context == context {
            self.inner.enqueue(event, true)
        } else {
            let mut own = AuditEvent::clone(event);
            own.context = context;
            self.inner.enqueue(&Arc::new(own), true)
        };
        self.finish_queued(pushed)
    }

    /// What is left of a queued push: usually nothing.
    async fn finish_queued(&self, pushed: Pushed) -> Result<()> {
        if pushed.is_done() {
            Ok(())
        } else {
            Box::pin(self.inner.finish(&pushed)).await
        }
    }

    /// Records `event` and waits until it (and everything queued before it)
    /// is committed.
    ///
    /// # Errors
    /// A storage error when the write failed; the entry stays queued and
    /// the next write tries again.
    ///
    /// ```
    /// use consentry::audit::{AuditActor, AuditEvent, AuditLog};
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// log.record_durable(AuditEvent::new("settings.changed", AuditActor::System)?).await?;
    /// assert_eq!(log.head().await?.map(|h| h.seq), Some(1));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn record_durable(&self, event: AuditEvent) -> Result<()> {
        let ticket = self.inner.push(event, false).await?;
        self.inner.wait_for(ticket).await
    }

    /// Waits until everything queued so far is committed.
    ///
    /// # Errors
    /// A storage error when a write failed.
    ///
    /// ```
    /// # use consentry::audit::AuditLog;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// log.flush().await?; // nothing queued: returns at once
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }

    /// One page of entries matching `query`, oldest first.
    ///
    /// # Errors
    /// A storage error, or a stored entry that does not parse.
    ///
    /// ```
    /// use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery};
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// for page in ["home", "about", "contact"] {
    ///     log.record(AuditEvent::new("page.viewed", AuditActor::System)?.detail("page", page)).await?;
    /// }
    /// log.flush().await?;
    /// let first = log.query(&AuditQuery::default().limit(2)).await?;
    /// assert_eq!(first.entries.len(), 2);
    /// let rest = log.query(&AuditQuery::default().after(first.next.unwrap())).await?;
    /// assert_eq!((rest.entries.len(), rest.next), (1, None));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn query(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = query.limit.min(MAX_AUDIT_PAGE);
        let filter = AuditFilter {
            subject: query.subject.as_ref().map(ToString::to_string),
            action: query.action.clone(),
            resource: query.resource.clone(),
            from: query.from,
            until: query.until,
            after_seq: query.after.unwrap_or(0),
            // One more than asked, to know whether a next page exists.
            limit: limit + 1,
        };
        let mut rows = self.inner.store.audit_entries(&filter).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|e| e.seq)
        } else {
            None
        };
        let entries = rows
            .into_iter()
            .map(AuditEntry::try_from)
            .collect::<Result<_>>()?;
        Ok(AuditPage { entries, next })
    }

    /// Checks the whole chain: the checkpoint, every entry's MAC and link,
    /// no gap, and the head.
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`](crate::Error::AuditChainBroken) naming the first bad entry and what is
    /// wrong with it; [`Error::KeyNotFound`](crate::Error::KeyNotFound) when an entry was MAC'ed under
    /// a key the keyring no longer holds; storage errors.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent, AuditLog};
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// log.record_durable(AuditEvent::new("a.b", AuditActor::System)?).await?;
    /// let report = log.verify().await?;
    /// assert_eq!((report.entries, report.head), (1, 1));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify(&self) -> Result<ChainReport> {
        let store = &self.inner.store;
        let keyring = self.inner.keys.resolve().await?;
        let checkpoint = store.audit_checkpoint().await?;
        let mut walk = Walk::start(&keyring, checkpoint.as_ref())?;
        loop {
            let filter = AuditFilter {
                after_seq: walk.next_seq - 1,
                limit: MAX_AUDIT_PAGE,
                ..AuditFilter::default()
            };
            let page = store.audit_entries(&filter).await?;
            for e in &page {
                walk.step(e)?;
            }
            if page.len() < MAX_AUDIT_PAGE {
                break;
            }
        }
        let head = store.audit_head().await?;
        let last = walk.next_seq - 1;
        let entries = walk.finish(head.as_ref())?;
        Ok(ChainReport {
            entries,
            purged: checkpoint.map_or(0, |c| c.purged),
            head: last,
        })
    }

    /// The chain's current head: anchor its `seq` and `hash` outside the
    /// database to detect a wholesale deletion later.
    ///
    /// # Errors
    /// A storage error.
    ///
    /// ```
    /// # use consentry::audit::AuditLog;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
    /// assert!(log.head().await?.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn head(&self) -> Result<Option<crate::store::AuditHead>> {
        self.inner.store.audit_head().await
    }

    /// Deletes the entries older than `before` (retention) and replaces
    /// them with a MAC'ed checkpoint, so [`AuditLog::verify`] still passes.
    /// Flushes queued entries first.
    ///
    /// # Errors
    /// Storage errors; [`Error::KeyNotFound`](crate::Error::KeyNotFound) if the keyring lacks the key
    /// of the last purged entry's MAC.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::audit::{AuditActor, AuditEvent, AuditLog};
    /// use consentry::clock::ManualClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?).with_clock(clock.clone());
    /// log.record_durable(AuditEvent::new("old.event", AuditActor::System)?).await?;
    /// clock.advance(Duration::from_secs(86_400 * 400));
    /// log.record_durable(AuditEvent::new("new.event", AuditActor::System)?).await?;
    /// let purged = log.purge_before(UNIX_EPOCH + Duration::from_secs(86_400 * 365)).await?;
    /// assert_eq!((purged.deleted, purged.checkpoint), (1, 1));
    /// let report = log.verify().await?;
    /// assert_eq!((report.entries, report.purged), (1, 1));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn purge_before(&self, before: SystemTime) -> Result<PurgeReport> {
        self.flush().await?;
        let store = &self.inner.store;
        let old = store.audit_checkpoint().await?;
        let floor = old.as_ref().map_or(0, |c| c.seq);
        // The newest entry older than `before`: walk pages until one is newer.
        let mut last = None;
        let mut after = floor;
        'pages: loop {
            let page = store
                .audit_entries(&AuditFilter {
                    after_seq: after,
                    limit: MAX_AUDIT_PAGE,
                    ..AuditFilter::default()
                })
                .await?;
            for e in &page {
                if e.at_ms >= crate::clock::unix_millis(before) {
                    break 'pages;
                }
                after = e.seq;
                last = Some(e.clone());
            }
            if page.len() < MAX_AUDIT_PAGE {
                break;
            }
        }
        let Some(last) = last else {
            return Ok(PurgeReport {
                deleted: 0,
                checkpoint: floor,
            });
        };
        let keyring = self.inner.keys.resolve().await?;
        let mut keys = Keys::new(&keyring);
        let purged_before = old.map_or(0, |c| c.purged);
        let mut checkpoint = AuditCheckpoint::new(
            last.seq,
            last.hash.clone(),
            purged_before + (last.seq - floor),
            crate::clock::from_unix_millis(crate::clock::unix_millis(self.inner.clock.now())),
            keys.primary(),
            Vec::new(),
        );
        checkpoint.mac = keys.checkpoint(&checkpoint)?.to_vec();
        let deleted = store.purge_audit_entries(checkpoint).await?;
        Ok(PurgeReport {
            deleted,
            checkpoint: last.seq,
        })
    }
}
