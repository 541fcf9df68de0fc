//! Batched, ordered appends: callers queue entries and return; one writer
//! at a time (a spawned task) links them into the chain and writes them in
//! batches, each with the new head in one transaction, retrying a bounded
//! number of times when another process moved the head.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::chain::{GENESIS, Keys};
use super::event::AuditEvent;
use super::keys::KeySource;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{AuditHead, AuditStore, StoredAuditEntry};

/// The most entries written in one transaction.
const BATCH: usize = 512;
/// Queued entries past which `record` waits for the writer (back-pressure,
/// never loss).
pub(crate) const MAX_QUEUED: usize = 16 * 1024;
/// How long a new writer waits for more entries before its first batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// How often a batch is re-linked when another writer moved the head.
const MAX_CONFLICTS: usize = 32;
/// The most identical queued events one entry stands for.
const MAX_COALESCED: u64 = 10_000;

/// A queued event (its request context resolved): `count` identical ones
/// from `first_at` to `at`. Shared: the followers of one `access_token`
/// flight queue the leader's event, and merging them is a pointer check.
struct Queued {
    event: Arc<AuditEvent>,
    first_at: SystemTime,
    at: SystemTime,
    count: u64,
}

impl Queued {
    /// The stored form; an entry standing for several events says how many
    /// (`count`) and since when (`first_at`, Unix milliseconds).
    fn to_stored(&self) -> StoredAuditEntry {
        let mut event = AuditEvent::clone(&self.event);
        if self.count > 1 {
            event.details.insert("count".into(), self.count.into());
            event.details.insert(
                "first_at".into(),
                crate::clock::unix_millis(self.first_at).into(),
            );
        }
        event.into_stored(self.at)
    }
}

/// A queued entry's ticket, and what its caller still has to do.
pub(crate) struct Pushed {
    pub(crate) ticket: u64,
    write_here: bool,
    full: bool,
}

impl Pushed {
    /// Nothing left to do: a writer task runs and there is room.
    pub(crate) fn is_done(&self) -> bool {
        !self.write_here && !self.full
    }
}

pub(crate) struct Appender {
    pub(crate) store: Arc<dyn AuditStore>,
    pub(crate) keys: KeySource,
    pub(crate) clock: Arc<dyn Clock>,
    state: Mutex<State>,
    progress: Arc<Notify>,
    /// Wakes a lingering writer when somebody waits for its entries.
    urgent: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Tickets handed out (one per queued entry).
    queued: u64,
    /// Tickets written.
    written: u64,
    writing: bool,
    /// The head this process wrote last (saves a read per batch).
    head: Option<(u64, Vec<u8>)>,
    /// The last write error, until a write succeeds.
    error: Option<String>,
    /// Somebody waits for queued entries: do not linger.
    urgent: bool,
}

impl Appender {
    pub(crate) fn new(store: Arc<dyn AuditStore>, keys: KeySource, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            keys,
            clock,
            state: Mutex::new(State::default()),
            progress: Arc::new(Notify::new()),
            urgent: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` and makes sure a writer runs; returns its ticket.
    /// With `coalesce`, an event identical to the last one queued (and not
    /// yet taken by the writer) joins its entry instead of adding one.
    pub(crate) async fn push(self: &Arc<Self>, event: AuditEvent, coalesce: bool) -> Result<u64> {
        let pushed = self.enqueue(&Arc::new(event.in_current_context()), coalesce);
        if !pushed.is_done() {
            // Boxed: the future of a plain queued push stays small instead
            // of carrying the whole writer's state machine, and every
            // `access_token` call carries one.
            Box::pin(self.finish(&pushed)).await?;
        }
        Ok(pushed.ticket)
    }

    /// The synchronous part of [`push`](Self::push): queues `event`, its
    /// request context already resolved (the writer runs on another task,
    /// where the caller's task-local is not set), and starts a writer task
    /// if none runs. The caller must then [`finish`](Self::finish) unless
    /// the result [`is_done`](Pushed::is_done).
    pub(crate) fn enqueue(self: &Arc<Self>, event: &Arc<AuditEvent>, coalesce: bool) -> Pushed {
        let at = self.clock.now();
        let (ticket, start, full) = {
            let mut s = self.state();
            match s.queue.back_mut() {
                Some(last)
                    if coalesce
                        && last.count < MAX_COALESCED
                        && (Arc::ptr_eq(&last.event, event) || last.event.same_as(event)) =>
                {
                    last.count += 1;
                    last.at = at;
                }
                _ => s.queue.push_back(Queued {
                    event: Arc::clone(event),
                    first_at: at,
                    at,
                    count: 1,
                }),
            }
            s.queued += 1;
            let start = !s.writing;
            s.writing = true;
            (s.queued, start, s.queue.len() > MAX_QUEUED)
        };
        Pushed {
            ticket,
            write_here: start && !self.spawn_writer(),
            full,
        }
    }

    /// What [`enqueue`](Self::enqueue) left to do: write here (no runtime
    /// to spawn a writer on), wait out back-pressure.
    pub(crate) async fn finish(&self, pushed: &Pushed) -> Result<()> {
        if pushed.write_here {
            self.drain(false).await;
            self.progress.notify_waiters();
        }
        if pushed.full {
            self.wait_for(pushed.ticket).await?;
        }
        Ok(())
    }

    /// Runs the writer on its own task when there is a Tokio runtime
    /// (`true`); `false` when there is none and the caller must write.
    fn spawn_writer(self: &Arc<Self>) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let me = Arc::clone(self);
        drop(handle.spawn(async move {
            // Let a burst of entries gather (one transaction per
            // burst, not per entry), unless somebody waits.
            me.linger().await;
            me.drain(true).await;
            // Let go of the store before telling the waiters, so a
            // host that flushes, drops the log and closes its store
            // really holds the last handle.
            let progress = Arc::clone(&me.progress);
            drop(me);
            progress.notify_waiters();
        }));
        true
    }

    /// Waits up to [`LINGER`] for more entries, unless somebody waits.
    async fn linger(&self) {
        let urgent = self.urgent.notified();
        tokio::pin!(urgent);
        urgent.as_mut().enable();
        if self.state().urgent {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(LINGER) => {}
            () = urgent => {}
        }
    }

    /// Writes until the queue is empty or a write fails, then clears
    /// `writing` (the caller notifies the waiters). With `linger`, waits
    /// [`LINGER`] between batches too (unless a full batch is queued or
    /// somebody waits): under a steady stream of calls the writer then
    /// commits at most about 200 times a second, and identical events
    /// queued meanwhile merge, instead of one small transaction chasing
    /// the next.
    async fn drain(&self, linger: bool) {
        let mut first = true;
        loop {
            if linger && !first && self.state().queue.len() < BATCH {
                self.linger().await;
            }
            first = false;
            let (batch, head) = {
                let mut s = self.state();
                if s.queue.is_empty() {
                    s.writing = false;
                    return;
                }
                let n = s.queue.len().min(BATCH);
                (s.queue.drain(..n).collect::<Vec<_>>(), s.head.clone())
            };
            let result = self.write(&batch, head).await;
            {
                let mut s = self.state();
                match result {
                    Ok(new_head) => {
                        s.written += batch.iter().map(|q| q.count).sum::<u64>();
                        s.head = Some(new_head);
                        s.error = None;
                        if s.queue.is_empty() {
                            s.writing = false;
                            return;
                        }
                    }
                    Err(e) => {
                        for item in batch.into_iter().rev() {
                            s.queue.push_front(item);
                        }
                        s.head = None;
                        s.error = Some(e.to_string());
                        s.writing = false;
                        return;
                    }
                }
            }
            self.progress.notify_waiters();
        }
    }

    /// Links `batch` after the head and appends it; re-reads the head and
    /// tries again when another writer got there first.
    async fn write(
        &self,
        batch: &[Queued],
        mut head: Option<(u64, Vec<u8>)>,
    ) -> Result<(u64, Vec<u8>)> {
        let keyring = self.keys.resolve().await?;
        for _ in 0..MAX_CONFLICTS {
            let (seq, prev) = match head.take() {
                Some(h) => h,
                None => self
                    .store
                    .audit_head()
                    .await?
                    .map_or((0, GENESIS.to_vec()), |h| (h.seq, h.hash)),
            };
            let mut keys = Keys::new(&keyring);
            let key_id = keys.primary().to_owned();
            let mut entries: Vec<StoredAuditEntry> = Vec::with_capacity(batch.len());
            let mut last = prev;
            for (i, queued) in batch.iter().enumerate() {
                let mut e = queued.to_stored();
                e.seq = seq + 1 + i as u64;
                e.key_id.clone_from(&key_id);
                e.prev_hash = last;
                e.hash = keys.entry(&e)?.to_vec();
                last = e.hash.clone();
                entries.push(e);
            }
            let new_seq = seq + batch.len() as u64;
            let mac = keys.head(&key_id, new_seq, &last)?.to_vec();
            let new_head = AuditHead::new(new_seq, last.clone(), key_id, mac);
            if self
                .store
                .append_audit_entries(seq, entries, new_head)
                .await?
            {
                return Ok((new_seq, last));
            }
        }
        Err(Error::Conflict {
            what: "audit log head",
            expected: 0,
            found: 0,
        })
    }

    /// Waits until every entry queued before this call is written; writes
    /// them itself if no writer is running (after a failed write).
    pub(crate) async fn flush(&self) -> Result<()> {
        let target = self.state().queued;
        self.wait_for(target).await
    }

    pub(crate) async fn wait_for(&self, ticket: u64) -> Result<()> {
        let mut retried = false;
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let run_here = {
                let mut s = self.state();
                if s.written >= ticket {
                    s.urgent = false;
                    return Ok(());
                }
                s.urgent = true;
                self.urgent.notify_one();
                if s.writing {
                    false
                } else if retried {
                    let reason = s.error.clone().unwrap_or_else(|| "unknown".to_owned());
                    return Err(Error::Storage {
                        message: format!("the audit log could not be written: {reason}"),
                        source: None,
                    });
                } else {
                    s.writing = true;
                    true
                }
            };
            if run_here {
                retried = true;
                self.drain(false).await;
                self.progress.notify_waiters();
            } else {
                notified.await;
            }
        }
    }
}
