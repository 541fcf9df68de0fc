//! The usage log's in-memory buffer and its background flush.
//!
//! `verify` appends an entry under a short `std` mutex and returns. When
//! the buffer goes from empty to non-empty, a Tokio task is spawned that,
//! after a 5 ms linger, writes everything buffered, in one store call, and keeps writing what
//! accumulated meanwhile until the buffer is empty. When the buffer is
//! full, the call that filled it writes the batch inline (backpressure:
//! no entry is dropped for lack of room). No lock is held across a write,
//! so a flush task parked on a runtime that is no longer driven never
//! blocks anybody's `verify`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Result;
use crate::store::{ApiTokenStore, ApiTokenUsage};

/// How long the background task waits before its first write, so that a
/// burst of verifications is written in one transaction.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// The default buffer capacity.
pub(super) const DEFAULT_CAPACITY: usize = 1024;
/// The largest buffer capacity accepted.
pub(super) const MAX_CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
struct Buffer {
    entries: Vec<ApiTokenUsage>,
    /// A flush task is running (or about to).
    scheduled: bool,
}

#[derive(Debug)]
pub(super) struct UsageLog {
    buffer: Mutex<Buffer>,
    capacity: usize,
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

impl UsageLog {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            buffer: Mutex::default(),
            capacity: capacity.clamp(1, MAX_CAPACITY),
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

    pub(super) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Buffers `entry`; schedules or performs the write as described above.
    pub(super) async fn push<F>(&self, entry: ApiTokenUsage, store: &dyn ApiTokenStore, spawn: F)
    where
        F: FnOnce() -> bool,
    {
        let next = {
            let mut b = self.buffer();
            b.entries.push(entry);
            if b.entries.len() >= self.capacity {
                Next::WriteInline(std::mem::take(&mut b.entries))
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
        let n = batch.len() as u64;
        if self.write(store, batch).await.is_err() {
            self.lost.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The background task's body: write until the buffer is empty.
    pub(super) async fn drain(self: Arc<Self>, store: Arc<dyn ApiTokenStore>) {
        // Let a burst of verifications gather first: one write per burst,
        // not one per verification (`flush` takes the buffer itself).
        tokio::time::sleep(LINGER).await;
        loop {
            let batch = {
                let mut b = self.buffer();
                if b.entries.is_empty() {
                    b.scheduled = false;
                    return;
                }
                std::mem::take(&mut b.entries)
            };
            self.write_or_count(store.as_ref(), batch).await;
        }
    }

    /// Writes everything buffered now, then waits for the batches already
    /// being written. On a store error the batch goes back to the buffer
    /// and the error is returned.
    pub(super) async fn flush(&self, store: &dyn ApiTokenStore) -> Result<()> {
        let batch = std::mem::take(&mut self.buffer().entries);
        if !batch.is_empty()
            && let Err(e) = self.write(store, batch.clone()).await
        {
            let mut b = self.buffer();
            let mut back = batch;
            back.append(&mut b.entries);
            let overflow = back.len().saturating_sub(self.capacity);
            back.drain(..overflow);
            self.lost.fetch_add(overflow as u64, Ordering::Relaxed);
            b.entries = back;
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
