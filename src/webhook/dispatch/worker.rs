//! The workers: claim due deliveries under a lease, sign and send them,
//! record the outcome in batches, emit events.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::{DispatchEvent, DispatchEventKind, Dispatcher};
use crate::error::{Error, Result};
use crate::store::{
    AttemptCompletion, ClaimedDelivery, CompletionResult, DeliveryOutcome, EndpointEffect, Trigger,
};

/// Failed attempts after which a success is a "recovery", and whose last
/// one emits `message.attempt.failing` (Svix: the fourth).
const FAILING_AFTER: u32 = 4;
/// Most completions written in one transaction.
const FLUSH_BATCH: usize = 512;
/// Most claim rounds of one [`Dispatcher::run_once`].
const MAX_ROUNDS: usize = 1000;

/// What [`Dispatcher::run_once`] did.
///
/// ```
/// let nothing = consentry::webhook::RunReport::default();
/// assert_eq!(nothing.attempted, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Attempts made.
    pub attempted: u64,
    /// Of those, answered with a `2xx`.
    pub succeeded: u64,
    /// Of those, failed (retried later or given up).
    pub failed: u64,
    /// Deliveries put back without an attempt (rate limit).
    pub deferred: u64,
}

/// A finished attempt, waiting to be recorded.
pub(super) struct Done {
    pub(super) completion: AttemptCompletion,
    pub(super) failed_before: u32,
    pub(super) detail: String,
}

impl Done {
    fn succeeded(&self) -> bool {
        self.completion.outcome == DeliveryOutcome::Succeeded
    }
}

impl Dispatcher {
    /// Delivers forever: claims due deliveries, keeps up to the configured
    /// concurrency in flight, records outcomes in batches, sleeps when
    /// nothing is due (a `publish` in this process wakes it). Spawn it:
    /// `tokio::spawn(dispatcher.run())`; run as many as you like, in as
    /// many processes. Store errors are retried with backoff (bounded at
    /// 30 s); dropping the future stops it (leased deliveries are taken
    /// over when their lease expires).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let ok = http::from_fn(|_req: HttpRequest| async { Ok(Response::new(Vec::new())) });
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(ok).build()?;
    /// let admin = Actor::admin("alice");
    /// d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let worker = tokio::spawn(d.run());
    /// let id = d.publish("user.created", serde_json::json!({}), None).await?;
    /// for _ in 0..500 {
    ///     if d.attempts(&admin, &id).await?.len() == 1 { break; }
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    /// }
    /// assert_eq!(d.attempts(&admin, &id).await?[0].status, Some(200));
    /// worker.abort();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn run(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move { this.run_loop().await }
    }

    /// Processes what is due now, then returns: claims due deliveries in
    /// rounds, sends each round with the configured concurrency and
    /// records the outcomes, until nothing is due at the clock's current
    /// time (at most 1000 rounds). For tests (with a
    /// [`ManualClock`](crate::clock::ManualClock)) and for hosts that
    /// drive delivery from their own scheduler.
    ///
    /// # Errors
    /// Storage errors from claiming or recording (what was sent and not
    /// recorded is sent again after its lease expires).
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// let report = d.run_once().await?;
    /// assert_eq!((report.attempted, report.failed), (1, 1));
    /// assert_eq!(d.run_once().await?.attempted, 0); // the retry is due in 5 s (±20 %)
    /// clock.advance(std::time::Duration::from_secs(6));
    /// assert_eq!(d.run_once().await?.attempted, 1);
    /// let log = d.attempts(&admin, &id).await?;
    /// assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_once(&self) -> Result<RunReport> {
        let owner = self.owner();
        let mut report = RunReport::default();
        for _ in 0..MAX_ROUNDS {
            let now = self.inner.clock.now();
            let claimed = self.claim(&owner, now, self.inner.options.batch).await?;
            if claimed.is_empty() {
                break;
            }
            let sem = Arc::new(Semaphore::new(self.inner.options.concurrency));
            let mut set = JoinSet::new();
            for c in claimed {
                let (this, owner, sem) = (self.clone(), owner.clone(), sem.clone());
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    this.attempt(&owner, c).await
                });
            }
            let mut done = Vec::new();
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok(Some(d)) => done.push(d),
                    Ok(None) => report.deferred += 1,
                    Err(_) => return Err(Error::Internal("a webhook attempt task failed")),
                }
            }
            for d in &done {
                report.attempted += 1;
                if d.succeeded() {
                    report.succeeded += 1;
                } else {
                    report.failed += 1;
                }
            }
            self.record(done).await?;
        }
        Ok(report)
    }

    fn owner(&self) -> String {
        let n = self.inner.workers.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.inner.instance)
    }

    async fn claim(
        &self,
        owner: &str,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let until = now
            .checked_add(self.inner.options.lease_duration())
            .unwrap_or(now);
        self.inner
            .store
            .claim_webhook_deliveries(owner, now, until, limit)
            .await
    }

    async fn run_loop(self) {
        let owner = self.owner();
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut tasks = JoinSet::new();
        let recorder = self.clone();
        tasks.spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                // Gather what finishes meanwhile (a few scheduler turns):
                // one transaction for many attempts writes each page once.
                let mut turns = 0;
                while batch.len() < FLUSH_BATCH {
                    match rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) if turns < 8 && batch.len() < FLUSH_BATCH / 8 => {
                            turns += 1;
                            tokio::task::yield_now().await;
                        }
                        Err(_) => break,
                    }
                }
                recorder.record_with_retries(batch).await;
            }
        });
        // Claiming runs ahead of sending: up to `concurrency` claimed
        // deliveries wait in `work` while as many are in flight, so the
        // requests keep going while the next claim is in the store.
        let concurrency = self.inner.options.concurrency;
        let (work_tx, mut work) = mpsc::channel::<ClaimedDelivery>(concurrency);
        tasks.spawn(self.clone().claim_loop(owner.clone(), work_tx));
        let in_flight = Arc::new(Semaphore::new(concurrency));
        while let Some(c) = work.recv().await {
            while tasks.try_join_next().is_some() {}
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (this, owner, tx) = (self.clone(), owner.clone(), tx.clone());
            tasks.spawn(async move {
                let done = this.attempt(&owner, c).await;
                drop(permit);
                if let Some(done) = done {
                    let _ = tx.send(done);
                }
            });
        }
    }

    /// Claims due deliveries into `work`: in chunks (one transaction for
    /// many deliveries) while there is a backlog, as soon as there is room
    /// when the queue has run dry; sleeps when nothing is due.
    async fn claim_loop(self, owner: String, work: mpsc::Sender<ClaimedDelivery>) {
        let batch = self.inner.options.batch;
        let chunk = (batch / 2).max(1);
        let mut backoff = self.inner.options.poll_interval;
        let mut busy = false;
        loop {
            let Ok(mut permits) = work.reserve_many(if busy { chunk } else { 1 }).await else {
                return;
            };
            let extra = work.capacity().min(batch.saturating_sub(permits.len()));
            let mut more = work.try_reserve_many(extra).ok();
            let want = permits.len() + more.as_ref().map_or(0, ExactSizeIterator::len);
            let notified = self.inner.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.claim(&owner, self.inner.clock.now(), want).await {
                Err(_) => {
                    busy = false;
                    drop((permits, more));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Ok(claimed) if claimed.is_empty() => {
                    busy = false;
                    drop((permits, more));
                    backoff = self.inner.options.poll_interval;
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep(self.inner.options.poll_interval) => {}
                    }
                }
                Ok(claimed) if work.is_closed() => {
                    // `run()` was dropped while claiming: give them back
                    // rather than leave them leased until the lease expires.
                    let now = self.inner.clock.now();
                    for c in claimed {
                        let _ = self
                            .inner
                            .store
                            .release_webhook_delivery(c.delivery, &owner, now)
                            .await;
                    }
                    return;
                }
                Ok(claimed) => {
                    backoff = self.inner.options.poll_interval;
                    busy = claimed.len() == want;
                    for c in claimed {
                        match permits
                            .next()
                            .or_else(|| more.as_mut().and_then(Iterator::next))
                        {
                            Some(permit) => permit.send(c),
                            None => break,
                        }
                    }
                }
            }
        }
    }

    /// Records, retrying a failing store a few times; what cannot be
    /// recorded is attempted again when its lease expires.
    async fn record_with_retries(&self, done: Vec<Done>) {
        let mut done = Some(done);
        for pause in [10u64, 100, 1000, 5000] {
            let Some(batch) = done.take() else { return };
            match self.record_inner(batch).await {
                Ok(()) => return,
                Err(back) => {
                    done = Some(back);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
    }

    async fn record(&self, done: Vec<Done>) -> Result<()> {
        let completions: Vec<_> = done.iter().map(|d| d.completion.clone()).collect();
        let results = self
            .inner
            .store
            .complete_webhook_attempts(completions)
            .await?;
        self.emit_for(&done, &results);
        Ok(())
    }

    async fn record_inner(&self, done: Vec<Done>) -> std::result::Result<(), Vec<Done>> {
        let completions: Vec<_> = done.iter().map(|d| d.completion.clone()).collect();
        match self
            .inner
            .store
            .complete_webhook_attempts(completions)
            .await
        {
            Ok(results) => {
                self.emit_for(&done, &results);
                Ok(())
            }
            Err(_) => Err(done),
        }
    }

    fn emit_for(&self, done: &[Done], results: &[CompletionResult]) {
        for (d, r) in done.iter().zip(results) {
            if !r.applied {
                continue;
            }
            let c = &d.completion;
            let event = |kind| {
                DispatchEvent::new(
                    kind,
                    c.attempt.endpoint.clone(),
                    Some(c.attempt.message.clone()),
                    c.now,
                )
                .with_detail(d.detail.clone())
            };
            let scheduled = c.attempt.trigger == Trigger::Scheduled;
            match c.outcome {
                DeliveryOutcome::Succeeded if d.failed_before >= FAILING_AFTER => {
                    self.emit(event(DispatchEventKind::AttemptRecovered));
                }
                DeliveryOutcome::Exhausted => self.emit(event(DispatchEventKind::AttemptExhausted)),
                DeliveryOutcome::Retry { .. }
                    if scheduled && c.attempt.attempt == FAILING_AFTER =>
                {
                    self.emit(event(DispatchEventKind::AttemptFailing));
                }
                _ => {}
            }
            if r.endpoint_disabled {
                let reason = match &c.endpoint {
                    EndpointEffect::Disable { reason }
                    | EndpointEffect::Exhausted { reason, .. } => reason.clone(),
                    _ => d.detail.clone(),
                };
                self.emit(
                    DispatchEvent::new(
                        DispatchEventKind::EndpointDisabled,
                        c.attempt.endpoint.clone(),
                        None,
                        c.now,
                    )
                    .with_detail(reason),
                );
            }
        }
    }
}
