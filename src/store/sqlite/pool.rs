//! The job queue of a group of connection threads (the readers, or the one
//! writer), and how its idle threads wait.
//!
//! An idle thread that polls for the next job picks it up within a
//! microsecond; one that sleeps costs the sender a wake-up (a system call)
//! and the job tens of microseconds. Polling threads cost CPU, though, and
//! on a 2-core machine two readers polling at once take it from the caller
//! and from the reader doing the work. So **at most one** idle thread of a
//! group polls (yielding, for at most the spin window); the others sleep on
//! a condition variable of their own, off the channel, and a sender wakes
//! one only when nobody polls. (Sleeping in the channel's own `recv` would
//! make every send wake a sleeper, polled or not.)
//!
//! No job is left waiting while a thread could take it: a sender checks
//! for a poller and for sleepers after queueing (with `SeqCst` fences on
//! both sides); a poller that stops polling re-checks the queue, and one
//! that took a job wakes a sleeper for any job still queued (its sender
//! saw the poller and woke nobody); a sleeper counts itself before its
//! last look at the queue, under the lock that a waking sender takes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::worker::Job;

#[derive(Default)]
struct Idle {
    /// An idle thread is polling the queue.
    polling: AtomicBool,
    /// Threads asleep (or about to be) on `bell`.
    sleepers: AtomicUsize,
    /// Wake-ups sent and not yet taken, and whether the queue's sender is
    /// gone.
    state: Mutex<Bell>,
    bell: Condvar,
}

#[derive(Default)]
struct Bell {
    wakes: usize,
    closed: bool,
}

impl Idle {
    fn state(&self) -> MutexGuard<'_, Bell> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes one sleeping thread, if any sleeps.
    fn wake_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.state().wakes += 1;
            self.bell.notify_one();
        }
    }
}

/// The sending side: the store's handle on a group of threads. Dropping it
/// stops them once they have run what is queued.
pub(super) struct Queue {
    tx: Sender<Job>,
    idle: Arc<Idle>,
}

/// The receiving side, one clone per thread of the group.
#[derive(Clone)]
pub(super) struct Jobs {
    rx: Receiver<Job>,
    idle: Arc<Idle>,
}

/// A new queue and its receiving side.
pub(super) fn queue() -> (Queue, Jobs) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let idle = Arc::new(Idle::default());
    (
        Queue {
            tx,
            idle: Arc::clone(&idle),
        },
        Jobs { rx, idle },
    )
}

impl Queue {
    /// Whether no job is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }

    /// Queues `job`, waking a sleeping thread when none polls. `Err` when
    /// every thread of the group has stopped.
    pub(super) fn send(&self, job: Job) -> Result<(), ()> {
        self.tx.send(job).map_err(drop)?;
        fence(Ordering::SeqCst);
        if !self.idle.polling.load(Ordering::SeqCst) {
            self.idle.wake_one();
        }
        Ok(())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Sleepers wait on the channel itself from now on: it reports the
        // disconnection once `tx` is dropped, right after this.
        self.idle.state().closed = true;
        self.idle.bell.notify_all();
    }
}

impl Jobs {
    /// The next job; `None` once the queue is dropped and empty. Polls for
    /// up to `spin` when no other thread of the group polls, then sleeps.
    pub(super) fn next(&self, spin: Duration) -> Option<Job> {
        loop {
            match self.rx.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if !spin.is_zero()
                && self
                    .idle
                    .polling
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                let found = self.poll(spin);
                self.idle.polling.store(false, Ordering::SeqCst);
                if let Some(next) = found {
                    // Senders that saw this thread polling woke nobody: if
                    // their jobs are still queued, a sleeper takes them
                    // while this one works.
                    fence(Ordering::SeqCst);
                    if !self.rx.is_empty() {
                        self.idle.wake_one();
                    }
                    return next;
                }
            }
            if let Some(next) = self.sleep() {
                return next;
            }
            // Woken: look again (and poll, if nobody does).
        }
    }

    /// Polls for up to `spin`: `Some(next)` when the queue answered.
    fn poll(&self, spin: Duration) -> Option<Option<Job>> {
        let deadline = Instant::now() + spin;
        loop {
            match self.rx.try_recv() {
                Ok(job) => return Some(Some(job)),
                Err(TryRecvError::Disconnected) => return Some(None),
                // Yield rather than spin: on a busy machine the CPU goes to
                // threads with work; on an idle one this returns at once.
                Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
                Err(TryRecvError::Empty) => return None,
            }
        }
    }

    /// Sleeps until a job comes or a sender wakes this thread: `Some(next)`
    /// for a job (or the end), `None` when woken to look again.
    fn sleep(&self) -> Option<Option<Job>> {
        let idle = &self.idle;
        let mut state = idle.state();
        idle.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let next = loop {
            if state.closed {
                drop(state);
                break Some(self.rx.recv().ok());
            }
            match self.rx.try_recv() {
                Ok(job) => break Some(Some(job)),
                Err(TryRecvError::Disconnected) => break Some(None),
                Err(TryRecvError::Empty) => {}
            }
            if state.wakes > 0 {
                state.wakes -= 1;
                break None;
            }
            state = idle
                .bell
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        idle.sleepers.fetch_sub(1, Ordering::SeqCst);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    /// `n` threads running the jobs of `jobs`; each returns how many it ran.
    fn workers(jobs: &Jobs, n: usize, spin: Duration) -> Vec<JoinHandle<usize>> {
        (0..n)
            .map(|_| {
                let jobs = jobs.clone();
                std::thread::spawn(move || {
                    let mut ran = 0;
                    let mut conn =
                        rusqlite::Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
                    while let Some(job) = jobs.next(spin) {
                        job(&mut conn);
                        ran += 1;
                    }
                    ran
                })
            })
            .collect()
    }

    /// Waits (at most 10 s) until `n` threads sleep.
    fn wait_for_sleepers(queue: &Queue, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while queue.idle.sleepers.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "only some threads went to sleep");
            std::thread::yield_now();
        }
    }

    /// Joins the threads; the jobs they ran in all.
    fn join(threads: Vec<JoinHandle<usize>>) -> usize {
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| panic!("a thread panicked")))
            .sum()
    }

    /// Jobs sent at any moment reach one of the threads, whether it polls
    /// or sleeps, and dropping the queue stops all of them.
    #[test]
    fn every_job_runs_and_the_threads_stop_with_the_queue() {
        for spin in [Duration::ZERO, Duration::from_micros(50)] {
            let (queue, jobs) = queue();
            let (done_tx, done_rx) = mpsc::channel::<usize>();
            let threads = workers(&jobs, 3, spin);
            drop(jobs);
            let sent = 2_000;
            for n in 0..sent {
                let done = done_tx.clone();
                queue
                    .send(Box::new(move |_| {
                        let _ = done.send(n);
                    }))
                    .unwrap_or_else(|()| panic!("threads gone"));
                // Now and then let every thread go idle (and to sleep).
                if n % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                // Each job is answered, none waits for a later one.
                let got = done_rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("job {n} was never run: {e}"));
                assert_eq!(got, n);
            }
            drop(queue);
            assert_eq!(join(threads), sent);
        }
    }

    /// Jobs queued while a thread polled (their senders woke nobody) are
    /// not left behind the one it took: it wakes a sleeper for them. Here
    /// the first job waits for the second; queued behind it on one thread
    /// they would never meet.
    #[test]
    fn a_poller_that_takes_a_job_wakes_a_sleeper_for_the_rest() {
        let (queue, jobs) = queue();
        let threads = workers(&jobs, 2, Duration::from_secs(5));
        wait_for_sleepers(&queue, 1);
        let (signal_tx, signal_rx) = mpsc::channel::<()>();
        let (met_tx, met_rx) = mpsc::channel::<bool>();
        // Straight into the channel, as by senders that saw the poller.
        let first: Job = Box::new(move |_| {
            let met = signal_rx.recv_timeout(Duration::from_secs(5)).is_ok();
            let _ = met_tx.send(met);
        });
        let second: Job = Box::new(move |_| {
            let _ = signal_tx.send(());
        });
        queue.tx.send(first).unwrap_or_else(|_| panic!("closed"));
        queue.tx.send(second).unwrap_or_else(|_| panic!("closed"));
        let met = met_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(met, "the second job waited behind the first");
        drop(queue);
        join(threads);
    }

    /// While one idle thread polls, the others sleep.
    #[test]
    fn only_one_idle_thread_polls() {
        let (queue, jobs) = queue();
        let threads = workers(&jobs, 3, Duration::from_secs(5));
        wait_for_sleepers(&queue, 2);
        assert!(queue.idle.polling.load(Ordering::SeqCst));
        assert_eq!(queue.idle.sleepers.load(Ordering::SeqCst), 2);
        drop(queue);
        join(threads);
    }
}
