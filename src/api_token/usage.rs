//! The usage log's in-memory buffer and its background flush.
//!
//! `verify` appends an entry under a short `std` mutex and returns. When
//! the buffer goes from empty to non-empty, a Tokio task is spawned that
//! writes everything buffered, in one store call, and keeps writing what
//! accumulated meanwhile until the buffer is empty. When the buffer is
//! full, the call that filled it writes the batch inline (backpressure:
//! no entry is dropped for lack of room).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Result;
use crate::store::{ApiTokenStore, ApiTokenUsage};

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
    /// Held by whoever writes a batch, so `flush` also waits for a batch
    /// already taken by the background task.
    writer: tokio::sync::Mutex<()>,
    capacity: usize,
    lost: AtomicU64,
}

enum Next {
    Nothing,
    Spawn,
    WriteInline(Vec<ApiTokenUsage>),
}

impl UsageLog {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            buffer: Mutex::default(),
            writer: tokio::sync::Mutex::new(()),
            capacity: capacity.clamp(1, MAX_CAPACITY),
            lost: AtomicU64::new(0),
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
            Next::WriteInline(batch) => {
                let _w = self.writer.lock().await;
                self.write_or_count(store, batch).await;
            }
        }
    }

    async fn write_or_count(&self, store: &dyn ApiTokenStore, batch: Vec<ApiTokenUsage>) {
        let n = batch.len() as u64;
        if store.record_api_token_usage(batch).await.is_err() {
            self.lost.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The background task's body: write until the buffer is empty.
    pub(super) async fn drain(self: Arc<Self>, store: Arc<dyn ApiTokenStore>) {
        let _w = self.writer.lock().await;
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

    /// Writes everything buffered now, after any batch in flight. On a
    /// store error the batch goes back to the buffer and the error is
    /// returned.
    pub(super) async fn flush(&self, store: &dyn ApiTokenStore) -> Result<()> {
        let _w = self.writer.lock().await;
        let batch = std::mem::take(&mut self.buffer().entries);
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.record_api_token_usage(batch.clone()).await {
            let mut b = self.buffer();
            let mut back = batch;
            back.append(&mut b.entries);
            let overflow = back.len().saturating_sub(self.capacity);
            back.drain(..overflow);
            self.lost.fetch_add(overflow as u64, Ordering::Relaxed);
            b.entries = back;
            return Err(e);
        }
        Ok(())
    }
}
