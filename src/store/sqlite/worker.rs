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
//! once, so a thousand concurrent callers do not busy-loop. An idle worker
//! likewise polls briefly for the next job before it sleeps, one worker of
//! a group at a time (see the `pool` module). Both waits are bounded by
//! [`SqliteOptions::spin`](super::SqliteOptions::spin).
//!
//! Polling pays only when the answer comes within the window. On an
//! overloaded machine it does not (the worker thread waits for a CPU that
//! the polling caller is using), so [`Polling`] keeps a score of recent
//! hits and misses, separately for reads and writes: polling pauses when
//! nearly every window has been expiring for a while, not after a short
//! burst of slow answers, and probes now and then to resume.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::pool::{Jobs, Queue};
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

/// Whether polling for answers pays off, learnt from the last calls.
///
/// A score from 0 to [`SCORE_MAX`] follows the recent hit rate: a hit (the
/// answer came within the window) moves it a quarter of the way up, a miss
/// a 64th of the way down. Polling pauses while the score is under
/// [`SCORE_POLL`], which takes about 90 misses in a row from the top: a
/// burst of slow answers (another writer's batch, a checkpoint) does not
/// turn polling off, an overloaded machine, where every window expires,
/// does. While paused, one call in [`PROBE_EVERY`] polls anyway, so a few
/// hits turn it back on.
#[derive(Debug)]
pub(super) struct Polling {
    score: AtomicU32,
    calls: AtomicU32,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            score: AtomicU32::new(SCORE_MAX),
            calls: AtomicU32::new(0),
        }
    }
}

/// The score of a store whose every answer came within the window.
const SCORE_MAX: u32 = 1 << 16;
/// Polling pauses under this score.
const SCORE_POLL: u32 = SCORE_MAX / 4;
/// While paused, one call in this many polls (a probe).
const PROBE_EVERY: u32 = 16;

impl Polling {
    /// The polling window for the next call: `spin`, or zero while paused
    /// (except for a probe).
    fn window(&self, spin: Duration) -> Duration {
        if spin.is_zero() || self.score.load(Ordering::Relaxed) >= SCORE_POLL {
            return spin;
        }
        if self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PROBE_EVERY)
        {
            spin
        } else {
            Duration::ZERO
        }
    }

    fn hit(&self) {
        let _ = self
            .score
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s + (SCORE_MAX - s.min(SCORE_MAX)) / 4)
            });
    }

    fn miss(&self) {
        let _ = self
            .score
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some(s - s / 64));
    }

    #[cfg(test)]
    fn polls(&self) -> bool {
        self.score.load(Ordering::Relaxed) >= SCORE_POLL
    }
}

/// The receiving half: a future for the answer.
pub(super) struct Reply<T> {
    slot: Arc<Slot<T>>,
    spin: Duration,
    spin_until: Option<Instant>,
    polling: Option<Arc<Polling>>,
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
            polling: None,
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

/// How long one poll busy-waits for the answer before it yields to the
/// runtime: about one point read. A future that wakes itself costs the
/// runtime a turn of its I/O driver (two system calls and two clock reads
/// when it is the runtime's `block_on` future), more than a short read
/// takes; waiting a few microseconds in place answers most reads in the
/// first poll, and never holds the thread longer than this.
const POLL_SPIN: Duration = Duration::from_micros(4);

impl<T> Reply<T> {
    /// The answer, counted as a hit of the polling window.
    fn ready(&self) -> Poll<Result<T>> {
        if !self.spin.is_zero()
            && let Some(p) = &self.polling
        {
            p.hit();
        }
        Poll::Ready(
            self.take()
                .unwrap_or(Err(Error::Internal("answer taken twice"))),
        )
    }

    /// Busy-waits until the answer is there or `stop`; whether it is.
    fn wait_in_place(&self, stop: Instant) -> bool {
        let mut spins = 0u32;
        loop {
            if self.slot.ready.load(Ordering::Acquire) {
                return true;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(32) && Instant::now() >= stop {
                return false;
            }
        }
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if self.slot.ready.load(Ordering::Acquire) {
            // Answered within the polling window (or before it began).
            return self.ready();
        }
        if !self.spin.is_zero() {
            let now = Instant::now();
            let spin = self.spin;
            let until = *self.spin_until.get_or_insert(now + spin);
            if now < until {
                if self.wait_in_place((now + POLL_SPIN).min(until)) {
                    return self.ready();
                }
                // Cooperative: other tasks run before this one is polled again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.spin = Duration::ZERO;
            if let Some(p) = &self.polling {
                p.miss();
            }
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
pub(super) async fn call<T, F>(
    tx: &Queue,
    spin: Duration,
    polling: &Arc<Polling>,
    job: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    // Poll for the answer only when the job goes to the front of an empty
    // queue, where it is answered within microseconds. Behind other jobs,
    // sleep at once: many callers polling together would take the CPU from
    // the threads doing the work.
    let spin = if tx.is_empty() {
        polling.window(spin)
    } else {
        Duration::ZERO
    };
    let (completer, mut reply) = pair(spin);
    reply.polling = Some(Arc::clone(polling));
    tx.send(Box::new(move |conn: &mut Connection| {
        completer.complete(job(conn));
    }))
    .map_err(|()| Error::Storage {
        message: "the SQLite store is closed".into(),
        source: None,
    })?;
    reply.await
}

/// Runs jobs on `conn` until the queue is dropped, then closes the
/// connection and answers `exited`.
pub(super) fn run(mut conn: Connection, jobs: Jobs, spin: Duration, exited: Completer<()>) {
    while let Some(job) = jobs.next(spin) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_survives_bursts_pauses_under_overload_and_resumes() {
        let p = Polling::default();
        let spin = Duration::from_micros(50);
        assert_eq!(p.window(spin), spin);
        // A burst of 40 slow answers (a write batch): still polling.
        for _ in 0..40 {
            p.miss();
        }
        assert!(p.polls());
        for _ in 0..3 {
            p.hit();
        }
        // Every window expires (an overloaded machine): polling pauses
        // within 100 misses...
        let mut misses = 0;
        while p.polls() {
            p.miss();
            misses += 1;
            assert!(misses <= 100, "still polling after {misses} misses");
        }
        assert!(misses >= 60, "paused after only {misses} misses");
        // ... apart from one probe in PROBE_EVERY calls.
        let windows: Vec<Duration> = (0..PROBE_EVERY * 4).map(|_| p.window(spin)).collect();
        let probes = windows.iter().filter(|w| !w.is_zero()).count();
        assert_eq!(probes, 4, "{windows:?}");
        // Two probes that hit turn it back on.
        p.hit();
        p.hit();
        assert!(p.polls());
        assert_eq!(p.window(spin), spin);
        assert_eq!(p.window(Duration::ZERO), Duration::ZERO);
    }
}
