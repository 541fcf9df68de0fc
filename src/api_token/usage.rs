//! The usage log's in-memory buffer and its background flush.
//!
//! `verify` adds an entry under a short `std` mutex and returns. A use of
//! the same token for the same operation with the same outcome as one
//! already buffered joins that entry (its `count` grows), so a busy token
//! costs one row per flush interval, not one per request. When the buffer
//! goes from empty to non-empty, a Tokio task is spawned that, one flush
//! interval later (1 s by default), writes everything buffered in one store
//! call, and keeps writing what accumulated meanwhile, one interval apart,
//! until the buffer is empty. When the buffer is full, the call that
//! filled it writes the batch inline (backpressure: no entry is dropped
//! for lack of room). No lock is held across a write, so a flush task
//! parked on a runtime that is no longer driven never blocks anybody's
//! `verify`; and the task holds the store only while it writes, so a host
//! that flushes, drops its `ApiTokens` and closes the store really closes
//! it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::ids::ApiTokenId;
use crate::store::{ApiTokenStore, ApiTokenUsage, UsageOutcome};

/// The default flush interval.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The flush intervals accepted.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// See [`MIN_INTERVAL`].
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The default buffer capacity (distinct entries).
pub(super) const DEFAULT_CAPACITY: usize = 16_384;
/// The largest buffer capacity accepted.
pub(super) const MAX_CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
struct Buffer {
    entries: Vec<ApiTokenUsage>,
    /// Hash of (token, operation, outcome) → position in `entries`. A
    /// collision only costs a merge (the entries are compared).
    index: HashMap<u64, usize>,
    /// A flush task is running (or about to).
    scheduled: bool,
}

impl Buffer {
    fn take(&mut self) -> Vec<ApiTokenUsage> {
        self.index.clear();
        std::mem::take(&mut self.entries)
    }
}

#[derive(Debug)]
pub(super) struct UsageLog {
    buffer: Mutex<Buffer>,
    hasher: RandomState,
    capacity: usize,
    interval: Duration,
    lost: AtomicU64,
    /// Batches taken from the buffer and not yet written.
    in_flight: AtomicUsize,
    /// Notified when `in_flight` drops to zero.
    idle: tokio::sync::Notify,
}

enum Next {
    Nothing,
    Spawn,
    WriteInline(Vec<ApiTokenUsage>),
}

/// Counts a batch in flight until dropped (also when its write is
/// cancelled).
struct InFlight<'a>(&'a UsageLog);

impl<'a> InFlight<'a> {
    fn new(log: &'a UsageLog) -> Self {
        log.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(log)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Entries in the buffer, summed over their counts.
fn uses(entries: &[ApiTokenUsage]) -> u64 {
    entries.iter().map(|e| e.count.max(1)).sum()
}

impl UsageLog {
    pub(super) fn new(capacity: usize, interval: Duration) -> Self {
        Self {
            buffer: Mutex::default(),
            hasher: RandomState::new(),
            capacity: capacity.clamp(1, MAX_CAPACITY),
            interval: interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            lost: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
    }

    pub(super) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn key(&self, token: &ApiTokenId, operation: &str, outcome: UsageOutcome) -> u64 {
        self.hasher.hash_one((token.as_str(), operation, outcome))
    }

    /// Adds `entry` to `b`, merged into a buffered entry of the same kind
    /// if there is one.
    fn add(&self, b: &mut Buffer, entry: ApiTokenUsage) {
        let key = self.key(&entry.token, &entry.operation, entry.outcome);
        if let Some(&i) = b.index.get(&key)
            && b.entries.get_mut(i).is_some_and(|e| e.merge(&entry))
        {
            return;
        }
        b.index.insert(key, b.entries.len());
        b.entries.push(entry);
    }

    /// Buffers one use (merged into a buffered entry of the same kind,
    /// without an allocation, when there is one); schedules or performs
    /// the write as described above.
    pub(super) async fn push<F>(
        &self,
        token: &ApiTokenId,
        at: SystemTime,
        operation: &str,
        outcome: UsageOutcome,
        store: &dyn ApiTokenStore,
        spawn: F,
    ) where
        F: FnOnce() -> bool,
    {
        let key = self.key(token, operation, outcome);
        let next = {
            let mut guard = self.buffer();
            let b = &mut *guard;
            let merged = match b.index.get(&key) {
                Some(&i) => b.entries.get_mut(i).is_some_and(|e| {
                    let same = e.is_kind(token, operation, outcome);
                    if same {
                        e.add_uses(1, at, at);
                    }
                    same
                }),
                None => false,
            };
            if !merged {
                b.index.insert(key, b.entries.len());
                b.entries
                    .push(ApiTokenUsage::new(token.clone(), at, operation, outcome));
            }
            if b.entries.len() >= self.capacity {
                Next::WriteInline(b.take())
            } else if b.scheduled {
                Next::Nothing
            } else {
                b.scheduled = true;
                Next::Spawn
            }
        };
        match next {
            Next::Nothing => {}
            Next::Spawn => {
                if !spawn() {
                    // No Tokio runtime: the entries wait for a full buffer
                    // or an explicit flush.
                    self.buffer().scheduled = false;
                }
            }
            Next::WriteInline(batch) => self.write_or_count(store, batch).await,
        }
    }

    async fn write(&self, store: &dyn ApiTokenStore, batch: Vec<ApiTokenUsage>) -> Result<()> {
        let _in_flight = InFlight::new(self);
        store.record_api_token_usage(batch).await
    }

    async fn write_or_count(&self, store: &dyn ApiTokenStore, batch: Vec<ApiTokenUsage>) {
        let n = uses(&batch);
        if self.write(store, batch).await.is_err() {
            self.lost.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The background task's body: every interval, write what is buffered,
    /// until the buffer is empty. It holds the store only while writing;
    /// once the service is dropped what is left is lost (counted).
    pub(super) async fn drain(self: Arc<Self>, store: Weak<dyn ApiTokenStore>) {
        loop {
            // Let the uses of one interval gather (and merge): one write
            // per interval, not one per verification (`flush` takes the
            // buffer itself).
            tokio::time::sleep(self.interval).await;
            let batch = {
                let mut b = self.buffer();
                if b.entries.is_empty() {
                    b.scheduled = false;
                    return;
                }
                b.take()
            };
            // Counted in flight before the store is taken, and the store
            // let go before the count drops: `flush` returning means this
            // task no longer holds it.
            let in_flight = InFlight::new(&self);
            let Some(store) = store.upgrade() else {
                self.lost.fetch_add(uses(&batch), Ordering::Relaxed);
                self.buffer().scheduled = false;
                return;
            };
            let n = uses(&batch);
            if store.record_api_token_usage(batch).await.is_err() {
                self.lost.fetch_add(n, Ordering::Relaxed);
            }
            drop(store);
            drop(in_flight);
        }
    }

    /// Writes everything buffered now, then waits for the batches already
    /// being written. On a store error the batch goes back to the buffer
    /// and the error is returned.
    pub(super) async fn flush(&self, store: &dyn ApiTokenStore) -> Result<()> {
        let batch = self.buffer().take();
        if !batch.is_empty()
            && let Err(e) = self.write(store, batch.clone()).await
        {
            let mut b = self.buffer();
            let mut back = batch;
            back.append(&mut b.take());
            let overflow = back.len().saturating_sub(self.capacity);
            self.lost
                .fetch_add(uses(&back[..overflow]), Ordering::Relaxed);
            back.drain(..overflow);
            for entry in back {
                self.add(&mut b, entry);
            }
            return Err(e);
        }
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return Ok(());
            }
            idle.await;
        }
    }
}
