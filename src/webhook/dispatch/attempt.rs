//! One attempt: the endpoint's opened configuration (cached by
//! revision), the per-endpoint rate limit, signing, sending, and the
//! outcome under the retry schedule.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

use super::endpoint::EndpointSecrets;
use super::retry::{self, Failure};
use super::worker::Done;
use super::{Dispatcher, lock};
use crate::error::{Error, Result};
use crate::http::HttpErrorKind;
use crate::ids::EndpointId;
use crate::store::{
    AttemptCompletion, AttemptRecord, ClaimedDelivery, DeliveryOutcome, EndpointEffect, Trigger,
};

/// A connection that fails faster than this is tried once more at once
/// (Svix's insta-retry), within the same attempt.
const INSTA_RETRY_WITHIN: Duration = Duration::from_secs(1);
use crate::webhook::standard;

/// Most endpoint configurations cached per dispatcher.
const MAX_CACHED: usize = 4096;

/// An endpoint's configuration, opened and ready to send with.
pub(super) struct Runtime {
    revision: u64,
    uri: Uri,
    secrets: EndpointSecrets,
    headers: HeaderMap,
    rate_limit: Option<u32>,
}

/// A per-endpoint sliding one-second window (per process): when the
/// deliveries of the last second went out, at most the limit of them.
///
/// A token bucket holding a second's worth of tokens would let twice the
/// limit through in one second (a full bucket, then its refill).
#[derive(Debug, Default)]
pub(super) struct Bucket {
    sent: VecDeque<SystemTime>,
}

/// The window a rate limit counts over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

impl Dispatcher {
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

    /// Counts a delivery in the endpoint's window, or says how long to
    /// wait until the window has room: never more than `per_second`
    /// deliveries in any one second.
    fn rate_limited(&self, id: &EndpointId, per_second: u32, now: SystemTime) -> Option<Duration> {
        let limit = usize::try_from(per_second.max(1)).unwrap_or(usize::MAX);
        let mut buckets = lock(&self.inner.limiter);
        if buckets.len() >= MAX_CACHED && !buckets.contains_key(id) {
            buckets.clear();
        }
        let b = buckets.entry(id.clone()).or_default();
        // The clock stepped back: forget the window rather than stall
        // until the clock catches up.
        if b.sent.back().is_some_and(|last| *last > now) {
            b.sent.clear();
        }
        while b
            .sent
            .front()
            .is_some_and(|t| t.checked_add(RATE_WINDOW).is_some_and(|end| end <= now))
        {
            b.sent.pop_front();
        }
        if b.sent.len() < limit {
            b.sent.push_back(now);
            return None;
        }
        // Room comes when all but `limit - 1` of them have left the window
        // (the limit may have been lowered since they were sent).
        let leaves = b.sent[b.sent.len() - limit];
        Some(
            leaves
                .checked_add(RATE_WINDOW)
                .and_then(|end| end.duration_since(now).ok())
                .unwrap_or(RATE_WINDOW),
        )
    }

    /// One attempt: `None` if the delivery was deferred (rate limit).
    pub(super) async fn attempt(&self, owner: &str, mut c: ClaimedDelivery) -> Option<Done> {
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
                let payload = std::mem::take(&mut c.payload);
                let sent = self.send(&rt, &c, payload, now).await;
                match sent {
                    // Svix's insta-retry: a connection that failed fast
                    // (refused, reset) is tried once more at once. The
                    // payload went into the first request; it is read again
                    // from the outbox (rare path, keeps the hot path
                    // copy-free).
                    Sent::NoResponse { connect: true, .. }
                        if started.elapsed() < INSTA_RETRY_WITHIN =>
                    {
                        match self.inner.store.get_webhook_message(&c.message).await {
                            Ok(Some(m)) => self.send(&rt, &c, m.payload, now).await,
                            _ => sent,
                        }
                    }
                    sent => sent,
                }
            }
            Err(e) => Sent::NoResponse {
                error: format!("endpoint configuration unavailable: {e}"),
                overloaded: false,
                connect: false,
            },
        };
        let duration = started.elapsed();
        Some(self.outcome(owner, c, number, now, sent, duration))
    }

    async fn send(
        &self,
        rt: &Runtime,
        c: &ClaimedDelivery,
        payload: Vec<u8>,
        now: SystemTime,
    ) -> Sent {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let keys = rt.secrets.signing_at(now);
        let signed = match standard::sign_all(&keys, c.message.as_str(), secs, &payload) {
            Ok(s) => s,
            Err(e) => {
                return Sent::NoResponse {
                    error: format!("could not sign: {e}"),
                    overloaded: false,
                    connect: false,
                };
            }
        };
        let mut request = Request::new(payload);
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
                connect: false,
            },
            Ok(Err(e)) => Sent::NoResponse {
                error: e.to_string(),
                overloaded: e.kind() == HttpErrorKind::Timeout,
                connect: e.kind() == HttpErrorKind::Connect,
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
            Sent::NoResponse {
                error, overloaded, ..
            } => (
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
        /// The connection failed (refused, reset): eligible for the
        /// insta-retry.
        connect: bool,
    },
}
