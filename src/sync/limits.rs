//! Rate limits and failure isolation: waits read from response headers
//! (pure functions), proactive token buckets per provider and per
//! connection, full-jitter backoff, and a circuit breaker per provider.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::HeaderMap;
use crate::ids::{ConnectionId, ConnectorId, UserId};

/// The longest wait any header can ask for (one day); longer values are
/// cut to it.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use consentry::http::{HeaderMap, HeaderValue};
/// use consentry::sync::{MAX_HEADER_WAIT, retry_after};
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", HeaderValue::from_static("31536000")); // a year
/// assert_eq!(retry_after(&h, UNIX_EPOCH), Some(MAX_HEADER_WAIT));
/// ```
pub const MAX_HEADER_WAIT: Duration = Duration::from_secs(24 * 3600);

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn seconds(s: &str) -> Option<u64> {
    (s.len() <= 20 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::http::{HeaderMap, HeaderValue};
/// use consentry::sync::retry_after;
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", HeaderValue::from_static("120"));
/// assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
/// h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:29:00 GMT"));
/// assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)));
/// h.insert("retry-after", HeaderValue::from_static("soon"));
/// assert_eq!(retry_after(&h, now), None);
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = header_str(headers, "retry-after")?;
    if let Some(s) = seconds(v) {
        return Some(Duration::from_secs(s).min(MAX_HEADER_WAIT));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(MAX_HEADER_WAIT),
    )
}

/// A reset value: seconds from now, or (above 10⁹) a Unix time.
fn reset_wait(v: &str, now: SystemTime) -> Option<Duration> {
    let s = seconds(v)?;
    let wait = if s > 1_000_000_000 {
        (UNIX_EPOCH + Duration::from_secs(s))
            .duration_since(now)
            .unwrap_or_default()
    } else {
        Duration::from_secs(s)
    };
    Some(wait.min(MAX_HEADER_WAIT))
}

/// The wait the rate-limit headers ask for, when the remaining quota is
/// zero: `X-RateLimit-Remaining` / `X-RateLimit-Reset` (seconds or Unix
/// time), `RateLimit-Remaining` / `RateLimit-Reset`, and the structured
/// `RateLimit` header (`limit=10, remaining=0, reset=30` or
/// `"default";r=0;t=30`). The longest wait wins.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::http::{HeaderMap, HeaderValue};
/// use consentry::sync::rate_limit_wait;
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut h = HeaderMap::new();
/// h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
/// h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000030")); // a Unix time
/// assert_eq!(rate_limit_wait(&h, now), Some(Duration::from_secs(30)));
/// h.insert("ratelimit", HeaderValue::from_static(r#""default";r=0;t=45"#));
/// assert_eq!(rate_limit_wait(&h, now), Some(Duration::from_secs(45)));
/// h.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
/// h.remove("ratelimit");
/// assert_eq!(rate_limit_wait(&h, now), None); // quota left
/// ```
pub fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut waits = Vec::new();
    for (remaining, reset) in [
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    ] {
        if header_str(headers, remaining).and_then(seconds) == Some(0)
            && let Some(w) = header_str(headers, reset).and_then(|v| reset_wait(v, now))
        {
            waits.push(w);
        }
    }
    if let Some(v) = header_str(headers, "ratelimit") {
        let (mut rem, mut reset) = (None, None);
        for part in v.split([',', ';']).take(32) {
            let Some((k, val)) = part.split_once('=') else {
                continue;
            };
            match k.trim() {
                "r" | "remaining" => rem = seconds(val.trim()),
                "t" | "reset" => reset = reset_wait(val.trim(), now),
                _ => {}
            }
        }
        if rem == Some(0)
            && let Some(w) = reset
        {
            waits.push(w);
        }
    }
    waits.into_iter().max()
}

/// Everything a response says about waiting: `Retry-After` and the
/// rate-limit headers; the longest wait wins.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::http::{HeaderMap, HeaderValue};
/// use consentry::sync::wait_from_headers;
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", HeaderValue::from_static("2"));
/// h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
/// h.insert("ratelimit-reset", HeaderValue::from_static("5"));
/// assert_eq!(wait_from_headers(&h, UNIX_EPOCH), Some(Duration::from_secs(5)));
/// ```
pub fn wait_from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    [retry_after(headers, now), rate_limit_wait(headers, now)]
        .into_iter()
        .flatten()
        .max()
}

/// A proactive request budget: a token bucket of `burst` requests refilled
/// at `requests` per `per`.
///
/// ```
/// use std::time::Duration;
/// use consentry::sync::Budget;
/// let b = Budget::new(100, Duration::from_secs(60)).with_burst(10);
/// assert_eq!(b.burst(), 10);
/// assert_eq!(Budget::per_second(5).burst(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    requests: u32,
    per: Duration,
    burst: u32,
}

impl Budget {
    /// `requests` per `per` (at least 1 per nanosecond-free interval),
    /// bursting up to `requests`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::Budget;
    /// let b = Budget::new(100, Duration::from_secs(60));
    /// assert_eq!(b.burst(), 100); // bursts up to `requests`
    /// assert_eq!(Budget::new(0, Duration::from_secs(1)), Budget::new(1, Duration::from_secs(1)));
    /// ```
    pub fn new(requests: u32, per: Duration) -> Self {
        let requests = requests.max(1);
        Self {
            requests,
            per: per.max(Duration::from_millis(1)),
            burst: requests,
        }
    }

    /// `requests` per second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::sync::Budget;
    /// assert_eq!(Budget::per_second(5), Budget::new(5, Duration::from_secs(1)));
    /// ```
    pub fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }

    /// Caps bursts at `burst` requests (at least 1).
    ///
    /// ```
    /// use consentry::sync::Budget;
    /// assert_eq!(Budget::per_second(50).with_burst(5).burst(), 5);
    /// assert_eq!(Budget::per_second(50).with_burst(0).burst(), 1);
    /// ```
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// The largest burst.
    ///
    /// ```
    /// use consentry::sync::Budget;
    /// assert_eq!(Budget::per_second(7).burst(), 7);
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn rate(&self) -> f64 {
        f64::from(self.requests) / self.per.as_secs_f64()
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

/// What a budget key is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Provider(ConnectorId),
    Connection(UserId, ConnectionId),
}

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    failures: u32,
    open_until: Option<SystemTime>,
}

/// The most buckets and blocks kept; past it, idle ones are dropped.
const MAX_KEYS: usize = 100_000;

/// Shared limit state of one `Integrations`.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    buckets: Mutex<HashMap<Key, Bucket>>,
    blocked: Mutex<HashMap<Key, SystemTime>>,
    breakers: Mutex<HashMap<ConnectorId, Breaker>>,
}

impl Limits {
    /// How long to wait before the next request under `keys` (their
    /// budgets and blocks); takes a token from each bucket when the wait is
    /// zero.
    pub(crate) fn turn(&self, keys: &[(Key, Option<Budget>)], now: SystemTime) -> Duration {
        let mut wait = Duration::ZERO;
        {
            let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, _) in keys {
                if let Some(until) = blocked.get(key) {
                    match until.duration_since(now) {
                        Ok(d) if !d.is_zero() => wait = wait.max(d),
                        _ => {
                            blocked.remove(key);
                        }
                    }
                }
            }
        }
        if !wait.is_zero() {
            return wait;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > MAX_KEYS {
            buckets.clear();
        }
        for (key, budget) in keys {
            let Some(budget) = budget else { continue };
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: f64::from(budget.burst),
                at: now,
            });
            let elapsed = now.duration_since(b.at).unwrap_or_default().as_secs_f64();
            b.tokens = (b.tokens + elapsed * budget.rate()).min(f64::from(budget.burst));
            b.at = now;
            if b.tokens < 1.0 {
                let need = (1.0 - b.tokens) / budget.rate();
                wait = wait.max(Duration::from_secs_f64(
                    need.min(MAX_HEADER_WAIT.as_secs_f64()),
                ));
            }
        }
        if wait.is_zero() {
            for (key, budget) in keys {
                if budget.is_some()
                    && let Some(b) = buckets.get_mut(key)
                {
                    b.tokens -= 1.0;
                }
            }
        }
        wait.max(if wait.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_millis(1)
        })
    }

    /// No request under `key` before `until` (the later block wins).
    pub(crate) fn block(&self, key: Key, until: SystemTime) {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.len() > MAX_KEYS {
            blocked.clear();
        }
        let e = blocked.entry(key).or_insert(until);
        *e = (*e).max(until);
    }

    /// `Err(wait)` while the provider's circuit is open.
    pub(crate) fn circuit(&self, provider: &ConnectorId, now: SystemTime) -> Result<(), Duration> {
        let breakers = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        match breakers.get(provider).and_then(|b| b.open_until) {
            Some(until) if until > now => Err(until.duration_since(now).unwrap_or_default()),
            _ => Ok(()),
        }
    }

    /// Counts a failure; returns whether the circuit is (now) open.
    pub(crate) fn failure(
        &self,
        provider: &ConnectorId,
        now: SystemTime,
        threshold: u32,
        cooldown: Duration,
    ) -> bool {
        let mut breakers = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        let b = breakers.entry(provider.clone()).or_default();
        b.failures = b.failures.saturating_add(1);
        if b.failures >= threshold.max(1) {
            // Open (again: a failed trial after the cooldown reopens it).
            b.open_until = Some(now + cooldown);
            b.failures = threshold.max(1);
            true
        } else {
            false
        }
    }

    /// A success closes the provider's circuit.
    pub(crate) fn success(&self, provider: &ConnectorId) {
        let mut breakers = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = breakers.get_mut(provider) {
            *b = Breaker::default();
        }
    }
}

/// Full-jitter exponential backoff: a random wait in
/// `[0, min(max, base × 2^attempt)]`.
///
/// ```
/// use std::time::Duration;
/// use consentry::sync::full_jitter;
/// for attempt in 0..40 {
///     let d = full_jitter(attempt, Duration::from_millis(500), Duration::from_secs(30));
///     assert!(d <= Duration::from_secs(30).min(Duration::from_millis(500) * 2u32.saturating_pow(attempt.min(20))));
/// }
/// ```
pub fn full_jitter(attempt: u32, base: Duration, max: Duration) -> Duration {
    let cap = base.saturating_mul(1u32 << attempt.min(20)).min(max);
    let r = getrandom::u32().unwrap_or(u32::MAX);
    cap.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let limits = Limits::default();
        let key = Key::Provider(ConnectorId::new("p").unwrap());
        let keys = [(key, Some(Budget::per_second(2)))];
        assert_eq!(limits.turn(&keys, t(0)), Duration::ZERO);
        assert_eq!(limits.turn(&keys, t(0)), Duration::ZERO);
        let wait = limits.turn(&keys, t(0));
        assert!(
            wait >= Duration::from_millis(400) && wait <= Duration::from_millis(501),
            "{wait:?}"
        );
        assert_eq!(limits.turn(&keys, t(1)), Duration::ZERO);
    }

    #[test]
    fn blocks_and_the_breaker() {
        let limits = Limits::default();
        let p = ConnectorId::new("p").unwrap();
        limits.block(Key::Provider(p.clone()), t(10));
        assert_eq!(
            limits.turn(&[(Key::Provider(p.clone()), None)], t(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            limits.turn(&[(Key::Provider(p.clone()), None)], t(10)),
            Duration::ZERO
        );
        assert!(!limits.failure(&p, t(0), 3, Duration::from_secs(60)));
        assert!(!limits.failure(&p, t(0), 3, Duration::from_secs(60)));
        assert!(limits.failure(&p, t(0), 3, Duration::from_secs(60)));
        assert_eq!(limits.circuit(&p, t(30)), Err(Duration::from_secs(30)));
        assert_eq!(limits.circuit(&p, t(60)), Ok(()));
        limits.success(&p);
        assert!(!limits.failure(&p, t(61), 3, Duration::from_secs(60)));
    }

    #[test]
    fn header_parsing_never_panics_on_junk() {
        let mut h = HeaderMap::new();
        for v in [
            "",
            "-1",
            "99999999999999999999999",
            "r=;t=",
            "limit=1, remaining=0, reset=x",
        ] {
            h.insert("ratelimit", v.parse().unwrap());
            h.insert("retry-after", v.parse().unwrap());
            let _ = wait_from_headers(&h, t(0));
        }
    }
}
