//! The workers: claim due deliveries under a lease, sign and send them,
//! record the outcome in batches, emit events.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::endpoint::EndpointSecrets;
use super::retry::{self, Failure};
use super::{DispatchEvent, DispatchEventKind, Dispatcher, lock};
use crate::error::{Error, Result};
use crate::http::HttpErrorKind;
use crate::ids::EndpointId;
use crate::store::{
    AttemptCompletion, AttemptRecord, ClaimedDelivery, CompletionResult, DeliveryOutcome,
    EndpointEffect, Trigger,
};
use crate::webhook::standard;

/// Failed attempts after which a success is a "recovery", and whose last
/// one emits `message.attempt.failing` (Svix: the fourth).
const FAILING_AFTER: u32 = 4;
/// Most completions written in one transaction.
const FLUSH_BATCH: usize = 512;
/// Most claim rounds of one [`Dispatcher::run_once`].
const MAX_ROUNDS: usize = 1000;
/// Most endpoint configurations cached per dispatcher.
const MAX_CACHED: usize = 4096;

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

/// An endpoint's configuration, opened and ready to send with.
pub(super) struct Runtime {
    revision: u64,
    uri: Uri,
    secrets: EndpointSecrets,
    headers: HeaderMap,
    rate_limit: Option<u32>,
}

/// A per-endpoint token bucket (per process).
#[derive(Debug)]
pub(super) struct Bucket {
    tokens: f64,
    at: SystemTime,
}

/// A finished attempt, waiting to be recorded.
struct Done {
    completion: AttemptCompletion,
    failed_before: u32,
    detail: String,
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
        let concurrency = self.inner.options.concurrency;
        let sem = Arc::new(Semaphore::new(concurrency));
        // Claim in chunks (one transaction for many deliveries) while busy,
        // one at a time only when the queue has run dry.
        let chunk = (concurrency / 2).clamp(1, self.inner.options.batch);
        let mut backoff = self.inner.options.poll_interval;
        let mut busy = false;
        loop {
            while tasks.try_join_next().is_some() {}
            let first = if busy {
                sem.clone()
                    .acquire_many_owned(u32::try_from(chunk).unwrap_or(1))
                    .await
            } else {
                sem.clone().acquire_owned().await
            };
            let Ok(mut permits) = first else {
                return;
            };
            let more = sem.available_permits().min(
                self.inner
                    .options
                    .batch
                    .saturating_sub(permits.num_permits()),
            );
            if let Ok(extra) = sem
                .clone()
                .try_acquire_many_owned(u32::try_from(more).unwrap_or(0))
            {
                permits.merge(extra);
            }
            let notified = self.inner.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let want = permits.num_permits();
            match self.claim(&owner, self.inner.clock.now(), want).await {
                Err(_) => {
                    drop(permits);
                    busy = false;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Ok(claimed) if claimed.is_empty() => {
                    drop(permits);
                    busy = false;
                    backoff = self.inner.options.poll_interval;
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep(self.inner.options.poll_interval) => {}
                    }
                }
                Ok(claimed) => {
                    backoff = self.inner.options.poll_interval;
                    busy = claimed.len() == want;
                    for c in claimed {
                        let Some(permit) = permits.split(1) else {
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

    /// The endpoint's configuration at `revision` or later, from the cache
    /// or the store and the vault.
    async fn runtime(&self, id: &EndpointId, revision: u64) -> Result<Arc<Runtime>> {
        if let Some(r) = lock(&self.inner.runtimes).get(id)
            && r.revision >= revision
        {
            return Ok(r.clone());
        }
        let stored = self
            .inner
            .store
            .get_webhook_endpoint(id)
            .await?
            .ok_or(Error::NotFound {
                what: "webhook endpoint",
            })?;
        let secrets = self.open_secrets(&stored).await?;
        let uri: Uri = stored.url.parse().map_err(|_| Error::Storage {
            message: "a stored webhook endpoint URL is invalid".into(),
            source: None,
        })?;
        let mut headers = HeaderMap::with_capacity(secrets.headers.len());
        for (name, value) in &secrets.headers {
            if let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                HeaderValue::from_str(value),
            ) {
                v.set_sensitive(true);
                headers.append(n, v);
            }
        }
        let runtime = Arc::new(Runtime {
            revision: stored.revision,
            uri,
            secrets,
            headers,
            rate_limit: stored.rate_limit,
        });
        let mut cache = lock(&self.inner.runtimes);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(id.clone(), runtime.clone());
        Ok(runtime)
    }

    /// Takes a token from the endpoint's bucket, or says how long to wait.
    fn rate_limited(&self, id: &EndpointId, per_second: u32, now: SystemTime) -> Option<Duration> {
        let rate = f64::from(per_second.max(1));
        let mut buckets = lock(&self.inner.limiter);
        if buckets.len() >= MAX_CACHED && !buckets.contains_key(id) {
            buckets.clear();
        }
        let b = buckets.entry(id.clone()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now
            .duration_since(b.at)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// One attempt: `None` if the delivery was deferred (rate limit).
    async fn attempt(&self, owner: &str, c: ClaimedDelivery) -> Option<Done> {
        let now = self.inner.clock.now();
        let number = c.attempts.saturating_add(1);
        let started = Instant::now();
        let sent = match self.runtime(&c.endpoint, c.endpoint_revision).await {
            Ok(rt) => {
                if let Some(limit) = rt.rate_limit
                    && let Some(wait) = self.rate_limited(&c.endpoint, limit, now)
                {
                    let next = now.checked_add(wait).unwrap_or(now);
                    let _ = self
                        .inner
                        .store
                        .release_webhook_delivery(c.delivery, owner, next)
                        .await;
                    return None;
                }
                self.send(&rt, &c, now).await
            }
            Err(e) => Sent::NoResponse {
                error: format!("endpoint configuration unavailable: {e}"),
                overloaded: false,
            },
        };
        let duration = started.elapsed();
        Some(self.outcome(owner, c, number, now, sent, duration))
    }

    async fn send(&self, rt: &Runtime, c: &ClaimedDelivery, now: SystemTime) -> Sent {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let keys = rt.secrets.signing_at(now);
        let signed = match standard::sign_all(&keys, c.message.as_str(), secs, &c.payload) {
            Ok(s) => s,
            Err(e) => {
                return Sent::NoResponse {
                    error: format!("could not sign: {e}"),
                    overloaded: false,
                };
            }
        };
        let mut request = Request::new(c.payload.clone());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = rt.uri.clone();
        let headers = request.headers_mut();
        if !rt.headers.is_empty() {
            headers.extend(rt.headers.clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        static NAMES: [HeaderName; 3] = [
            HeaderName::from_static("webhook-id"),
            HeaderName::from_static("webhook-timestamp"),
            HeaderName::from_static("webhook-signature"),
        ];
        for (name, value) in signed.iter() {
            let name = match NAMES.iter().find(|n| n.as_str() == name) {
                Some(n) => n.clone(),
                None => match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        match tokio::time::timeout(self.inner.options.timeout, self.inner.http.send(request)).await
        {
            Err(_) => Sent::NoResponse {
                error: HttpErrorKind::Timeout.to_string(),
                overloaded: true,
            },
            Ok(Err(e)) => Sent::NoResponse {
                error: e.to_string(),
                overloaded: e.kind() == HttpErrorKind::Timeout,
            },
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| retry::parse_retry_after(v.as_bytes(), now));
                Sent::Response {
                    status,
                    body: response.into_body(),
                    retry_after,
                }
            }
        }
    }

    fn outcome(
        &self,
        owner: &str,
        c: ClaimedDelivery,
        number: u32,
        now: SystemTime,
        sent: Sent,
        duration: Duration,
    ) -> Done {
        let options = &self.inner.options;
        let (status, error, body, failure) = match sent {
            Sent::Response {
                status,
                body,
                retry_after,
            } => (
                Some(status),
                None,
                body,
                Failure {
                    overloaded: status == 429,
                    retry_after,
                },
            ),
            Sent::NoResponse { error, overloaded } => (
                None,
                Some(error),
                Vec::new(),
                Failure {
                    overloaded,
                    retry_after: None,
                },
            ),
        };
        let detail = match (status, &error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => String::new(),
        };
        let (outcome, effect) = match status {
            Some(200..=299) => (DeliveryOutcome::Succeeded, EndpointEffect::Healthy),
            Some(410) => (
                DeliveryOutcome::Failed,
                EndpointEffect::Disable {
                    reason: "the endpoint answered 410 Gone".into(),
                },
            ),
            _ if c.trigger == Trigger::Manual => (DeliveryOutcome::Failed, EndpointEffect::None),
            _ => match retry::delay(options, number, failure, retry::unit_random()) {
                Some(wait) => (
                    DeliveryOutcome::Retry {
                        at: now.checked_add(wait).unwrap_or(now),
                    },
                    EndpointEffect::None,
                ),
                None => (
                    DeliveryOutcome::Exhausted,
                    match options.disable_after {
                        Some(disable_after) => EndpointEffect::Exhausted {
                            disable_after,
                            reason: "messages kept exhausting their retries".into(),
                        },
                        None => EndpointEffect::None,
                    },
                ),
            },
        };
        let attempt = AttemptRecord::new(
            c.delivery, c.message, c.endpoint, number, now, c.trigger, status, error, body,
            duration,
        );
        Done {
            completion: AttemptCompletion {
                lease_owner: owner.to_owned(),
                attempt,
                outcome,
                endpoint: effect,
                now: self.inner.clock.now().max(now),
            },
            failed_before: c.attempts,
            detail,
        }
    }
}

/// What sending gave.
enum Sent {
    Response {
        status: u16,
        body: Vec<u8>,
        retry_after: Option<Duration>,
    },
    NoResponse {
        error: String,
        overloaded: bool,
    },
}
