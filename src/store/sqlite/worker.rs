//! Dedicated threads that own SQLite connections, and the future that hands
//! a job to one and waits for its answer.
//!
//! SQLite calls block, so they never run on the caller's async runtime: each
//! connection lives on a thread of its own and takes jobs from a channel.
//! Waiting for the answer with an ordinary waker costs a park and an unpark
//! of the runtime thread (about 7 µs on a 2-core VM, more than a point read
//! itself), so [`Reply`] first polls cooperatively: for a short, bounded
//! time it wakes itself and returns `Pending`, letting every other task run
//! in between, and only then registers its waker and sleeps. It polls only
//! when its job is first in an empty queue; behind other jobs it sleeps at
//! once, so a thousand concurrent callers do not busy-loop. The worker
//! likewise yields briefly for the next job before blocking. Both waits are
//! bounded by [`SqliteOptions::spin`](super::SqliteOptions::spin).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rusqlite::Connection;

use crate::error::{Error, Result};

/// Work for a connection's thread.
pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Where a worker puts one answer.
struct Slot<T> {
    ready: AtomicBool,
    state: Mutex<(Option<Result<T>>, Option<Waker>)>,
}

/// The sending half of a [`Slot`]. If dropped unanswered (the worker
/// stopped, or the job panicked), it answers with an error, so no caller
/// ever waits forever.
pub(super) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completer<T> {
    pub(super) fn complete(mut self, value: Result<T>) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, value);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            fill(
                &slot,
                Err(Error::Storage {
                    message: "the SQLite worker thread stopped before answering".into(),
                    source: None,
                }),
            );
        }
    }
}

fn fill<T>(slot: &Slot<T>, value: Result<T>) {
    let waker = {
        let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = Some(value);
        state.1.take()
    };
    slot.ready.store(true, Ordering::Release);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The receiving half: a future for the answer.
pub(super) struct Reply<T> {
    slot: Arc<Slot<T>>,
    spin: Duration,
    spin_until: Option<Instant>,
}

pub(super) fn pair<T>(spin: Duration) -> (Completer<T>, Reply<T>) {
    let slot = Arc::new(Slot {
        ready: AtomicBool::new(false),
        state: Mutex::new((None, None)),
    });
    (
        Completer {
            slot: Some(slot.clone()),
        },
        Reply {
            slot,
            spin,
            spin_until: None,
        },
    )
}

impl<T> Reply<T> {
    fn take(&self) -> Option<Result<T>> {
        self.slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .take()
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if self.slot.ready.load(Ordering::Acquire) {
            return Poll::Ready(
                self.take()
                    .unwrap_or(Err(Error::Internal("answer taken twice"))),
            );
        }
        if !self.spin.is_zero() {
            let now = Instant::now();
            let spin = self.spin;
            let until = *self.spin_until.get_or_insert(now + spin);
            if now < until {
                // Cooperative: other tasks run before this one is polled again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.spin = Duration::ZERO;
        }
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = state.0.take() {
            return Poll::Ready(value);
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Sends `job` to the thread behind `tx` and returns the future for its
/// answer.
pub(super) async fn call<T, F>(tx: &Sender<Job>, spin: Duration, job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    // Poll for the answer only when the job goes to the front of an empty
    // queue, where it is answered within microseconds. Behind other jobs,
    // sleep at once: many callers polling together would take the CPU from
    // the threads doing the work.
    let spin = if tx.is_empty() { spin } else { Duration::ZERO };
    let (completer, reply) = pair(spin);
    tx.send(Box::new(move |conn: &mut Connection| {
        completer.complete(job(conn));
    }))
    .map_err(|_| Error::Storage {
        message: "the SQLite store is closed".into(),
        source: None,
    })?;
    reply.await
}

/// Runs jobs on `conn` until every sender is gone, then closes the
/// connection and answers `exited`.
pub(super) fn run(
    mut conn: Connection,
    jobs: Receiver<Job>,
    spin: Duration,
    exited: Completer<()>,
) {
    while let Some(job) = next_job(&jobs, spin) {
        // A panicking job must not take the connection down with it; its
        // Completer answers the caller with an error during unwinding, and
        // an open rusqlite Transaction rolls back on drop.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
    }
    let result = conn
        .close()
        .map_err(|(_, e)| Error::storage("closing a SQLite connection", e));
    exited.complete(result);
}

fn next_job(jobs: &Receiver<Job>, spin: Duration) -> Option<Job> {
    let deadline = Instant::now() + spin;
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            // Yield rather than spin: on a busy machine the CPU goes to
            // threads with work; on an idle one this returns at once.
            Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}
