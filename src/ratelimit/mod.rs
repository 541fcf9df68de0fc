//! Rate limits: a GCRA limiter keyed by token, user or any string, with
//! tiers, `RateLimit-*` / `Retry-After` header values, an in-memory
//! [`RateLimiter`] (sharded, bounded, no global lock) and a store-backed
//! [`StoreRateLimiter`] that several processes share.
//!
//! # The algorithm
//!
//! GCRA (the generic cell rate algorithm, the "virtual scheduling" form)
//! keeps one number per key: its *theoretical arrival time* (TAT). A
//! [`Tier`] of `limit` requests per `period` has the emission interval
//! `T = period / limit` (in nanoseconds, rounded up) and the tolerance
//! `τ = (limit − 1) · T`, which is `period − T` when `T` divides `period`
//! exactly. A request at `now` is allowed when `max(TAT, now) − now ≤ τ`;
//! an allowed request moves the TAT to `max(TAT, now) + T`, a denied one
//! changes nothing. So a burst of `limit` requests at one instant passes,
//! the next one is refused, and capacity comes back at one request per `T`
//! (a key left alone for `period` has its full burst again).
//!
//! The math lives here only; stores keep TATs and apply one GCRA step to a
//! key's TAT atomically
//! ([`RateLimitStore`](crate::store::RateLimitStore)).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//! use consentry::clock::ManualClock;
//! use consentry::ratelimit::{RateLimiter, Tier};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let limiter = RateLimiter::builder().clock(Arc::new(clock.clone())).build();
//! let free = Tier::free(); // 60 per minute
//! let allowed = (0..100).filter(|_| limiter.check("user:ada", &free).unwrap().allowed).count();
//! assert_eq!(allowed, 60);
//! let denied = limiter.check("user:ada", &free)?;
//! assert_eq!(denied.retry_after, Some(Duration::from_secs(1)));
//! clock.advance(Duration::from_secs(1)); // one request's worth comes back
//! assert!(limiter.check("user:ada", &free)?.allowed);
//! assert!(!limiter.check("user:ada", &free)?.allowed);
//! # Ok::<(), consentry::Error>(())
//! ```

mod memory;
mod store;

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, Result};

pub use memory::{RateLimiter, RateLimiterBuilder};
pub use store::StoreRateLimiter;
#[cfg(any(feature = "conformance", test))]
pub(crate) use store::check_in_store;

/// The longest key accepted, in bytes.
///
/// ```
/// use consentry::ratelimit::{MAX_KEY_LEN, RateLimiter, Tier};
/// let limiter = RateLimiter::new();
/// assert!(limiter.check(&"k".repeat(MAX_KEY_LEN), &Tier::free()).is_ok());
/// assert!(limiter.check(&"k".repeat(MAX_KEY_LEN + 1), &Tier::free()).is_err());
/// ```
pub const MAX_KEY_LEN: usize = 256;
/// The longest tier name accepted, in bytes.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::{MAX_TIER_NAME_LEN, Tier};
/// let minute = Duration::from_secs(60);
/// assert!(Tier::new("t".repeat(MAX_TIER_NAME_LEN), 10, minute).is_ok());
/// assert!(Tier::new("t".repeat(MAX_TIER_NAME_LEN + 1), 10, minute).is_err());
/// ```
pub const MAX_TIER_NAME_LEN: usize = 32;
/// The largest `limit` a [`Tier`] accepts.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::{MAX_LIMIT, Tier};
/// let year = Duration::from_secs(365 * 86_400);
/// assert!(Tier::new("huge", MAX_LIMIT, year).is_ok());
/// assert!(Tier::new("huge", 0, year).is_err());
/// ```
pub const MAX_LIMIT: u32 = 1_000_000_000;
/// The longest `period` a [`Tier`] accepts: 366 days.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::{MAX_PERIOD, Tier};
/// assert!(Tier::new("yearly", 10, MAX_PERIOD).is_ok());
/// assert!(Tier::new("yearly", 10, MAX_PERIOD + Duration::from_secs(1)).is_err());
/// ```
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);
/// The shortest emission interval (`period / limit`) a [`Tier`] accepts:
/// one microsecond, so rounding it to whole nanoseconds changes the rate
/// by less than 0.1 %.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::{MIN_EMISSION_INTERVAL, Tier};
/// assert_eq!(MIN_EMISSION_INTERVAL, Duration::from_micros(1));
/// assert!(Tier::new("fast", 1_000_000, Duration::from_secs(1)).is_ok());
/// assert!(Tier::new("too-fast", 2_000_000, Duration::from_secs(1)).is_err());
/// ```
pub const MIN_EMISSION_INTERVAL: Duration = Duration::from_micros(1);

/// `RateLimit-Limit`: the requests allowed per period.
///
/// ```
/// assert_eq!(consentry::ratelimit::RATELIMIT_LIMIT.as_str(), "ratelimit-limit");
/// ```
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: the requests still allowed right now.
///
/// ```
/// assert_eq!(consentry::ratelimit::RATELIMIT_REMAINING.as_str(), "ratelimit-remaining");
/// ```
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: whole seconds (rounded up) until the full burst is
/// available again.
///
/// ```
/// assert_eq!(consentry::ratelimit::RATELIMIT_RESET.as_str(), "ratelimit-reset");
/// ```
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// A rate-limit tier: `limit` requests per `period`, with a name.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::Tier;
/// let partner = Tier::new("partner", 300, Duration::from_secs(60))?;
/// assert_eq!((partner.name(), partner.limit()), ("partner", 300));
/// assert_eq!(partner.emission_interval(), Duration::from_millis(200));
/// assert!(Tier::new("broken", 0, Duration::from_secs(60)).is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Tier {
    name: Cow<'static, str>,
    limit: u32,
    period: Duration,
    /// `T`, nanoseconds.
    emission: u64,
    /// `τ = (limit − 1) · T`, nanoseconds.
    tolerance: u64,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("period", &self.period)
            .finish()
    }
}

impl Tier {
    /// A tier of `limit` requests per `period`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`what` = `"rate limit tier"`) for a name
    /// that is empty, longer than [`MAX_TIER_NAME_LEN`] or not made of
    /// ASCII letters, digits, `-`, `_` and `.`; a `limit` of 0 or over
    /// [`MAX_LIMIT`]; a zero `period` or one over [`MAX_PERIOD`]; an
    /// emission interval (`period / limit`) under
    /// [`MIN_EMISSION_INTERVAL`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::{Error, ratelimit::Tier};
    /// let hourly = Tier::new("hourly", 50, Duration::from_secs(3_600))?;
    /// assert_eq!(hourly.emission_interval(), Duration::from_secs(72));
    /// for bad in [
    ///     Tier::new("", 1, Duration::from_secs(1)),
    ///     Tier::new("x", 0, Duration::from_secs(1)),
    ///     Tier::new("x", 1, Duration::ZERO),
    ///     Tier::new("x", 1, Duration::from_secs(400 * 86_400)),
    ///     Tier::new("x", 1_000_000, Duration::from_millis(1)), // 1 ns apart
    /// ] {
    ///     assert!(matches!(bad, Err(Error::InvalidInput { what: "rate limit tier", .. })));
    /// }
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(name: impl Into<String>, limit: u32, period: Duration) -> Result<Self> {
        Self::build(Cow::Owned(name.into()), limit, period)
    }

    fn build(name: Cow<'static, str>, limit: u32, period: Duration) -> Result<Self> {
        let bad = |reason: String| Err(Error::invalid("rate limit tier", reason));
        if name.is_empty()
            || name.len() > MAX_TIER_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return bad(format!(
                "the name must be 1 to {MAX_TIER_NAME_LEN} ASCII letters, digits, `-`, `_` or `.`"
            ));
        }
        if limit == 0 || limit > MAX_LIMIT {
            return bad(format!("the limit must be 1 to {MAX_LIMIT}"));
        }
        if period.is_zero() || period > MAX_PERIOD {
            return bad("the period must be more than zero and at most 366 days".into());
        }
        // At most 366 days: fits in u64 nanoseconds.
        let period_nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let emission = period_nanos.div_ceil(u64::from(limit));
        if u128::from(emission) < MIN_EMISSION_INTERVAL.as_nanos() {
            return bad("period / limit must be at least 1 µs".into());
        }
        Ok(Self {
            name,
            limit,
            period,
            emission,
            tolerance: emission.saturating_mul(u64::from(limit) - 1),
        })
    }

    fn preset(name: &'static str, limit: u32) -> Self {
        let emission = 60_000_000_000 / u64::from(limit);
        Self {
            name: Cow::Borrowed(name),
            limit,
            period: Duration::from_secs(60),
            emission,
            tolerance: emission * (u64::from(limit) - 1),
        }
    }

    /// `free`: 60 requests per minute.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ratelimit::Tier;
    /// let free = Tier::free();
    /// assert_eq!((free.name(), free.limit(), free.period()), ("free", 60, Duration::from_secs(60)));
    /// ```
    pub fn free() -> Self {
        Self::preset("free", 60)
    }

    /// `pro`: 1,000 requests per minute.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ratelimit::Tier;
    /// assert_eq!(Tier::pro().limit(), 1_000);
    /// assert_eq!(Tier::pro().emission_interval(), Duration::from_millis(60));
    /// ```
    pub fn pro() -> Self {
        Self::preset("pro", 1_000)
    }

    /// `enterprise`: 5,000 requests per minute.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ratelimit::Tier;
    /// assert_eq!(Tier::enterprise().limit(), 5_000);
    /// assert_eq!(Tier::enterprise().emission_interval(), Duration::from_millis(12));
    /// ```
    pub fn enterprise() -> Self {
        Self::preset("enterprise", 5_000)
    }

    /// The tier's name.
    ///
    /// ```
    /// assert_eq!(consentry::ratelimit::Tier::pro().name(), "pro");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests allowed per period (and in one burst).
    ///
    /// ```
    /// assert_eq!(consentry::ratelimit::Tier::free().limit(), 60);
    /// ```
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period `limit` applies to.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(consentry::ratelimit::Tier::free().period(), Duration::from_secs(60));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// `T = period / limit` (rounded up to whole nanoseconds): capacity
    /// comes back at one request per `T`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ratelimit::Tier;
    /// let odd = Tier::new("odd", 7, Duration::from_secs(1))?;
    /// assert_eq!(odd.emission_interval(), Duration::from_nanos(142_857_143));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission)
    }
}

/// The outcome of one rate-limit check.
///
/// `remaining` counts the requests that would still pass right now;
/// `reset_after` is the time until the key has its full burst again;
/// `retry_after` is set only when the request was denied: the time until
/// one request would pass.
///
/// ```
/// use std::time::Duration;
/// use consentry::ratelimit::{RateLimiter, Tier};
/// let limiter = RateLimiter::new();
/// let d = limiter.check("token:t1", &Tier::pro())?;
/// assert!(d.allowed);
/// assert_eq!((d.limit, d.remaining), (1_000, 999));
/// assert_eq!(d.reset_after, Duration::from_millis(60));
/// assert_eq!(d.retry_after, None);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The tier's limit per period.
    pub limit: u32,
    /// Requests that would still be allowed right now, after this one.
    pub remaining: u32,
    /// Time until the key's full burst is available again.
    pub reset_after: Duration,
    /// When denied: time until one request would be allowed.
    pub retry_after: Option<Duration>,
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Decision {
    /// The standard header values: `RateLimit-Limit`, `RateLimit-Remaining`,
    /// `RateLimit-Reset` (whole seconds until the full burst is back,
    /// rounded up) and, when denied, `Retry-After` (whole seconds, rounded
    /// up, so at least 1).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use std::sync::Arc;
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let limiter = RateLimiter::builder().clock(Arc::new(ManualClock::new(UNIX_EPOCH))).build();
    /// let tier = Tier::new("tiny", 2, Duration::from_secs(3))?;
    /// limiter.check("k", &tier)?;
    /// let last = limiter.check("k", &tier)?;
    /// let text = |h: &[(consentry::http::HeaderName, consentry::http::HeaderValue)]| -> Vec<String> {
    ///     h.iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())).collect()
    /// };
    /// assert_eq!(text(&last.headers()), ["ratelimit-limit: 2", "ratelimit-remaining: 0", "ratelimit-reset: 3"]);
    /// let denied = limiter.check("k", &tier)?;
    /// assert_eq!(
    ///     text(&denied.headers()),
    ///     ["ratelimit-limit: 2", "ratelimit-remaining: 0", "ratelimit-reset: 3", "retry-after: 2"]
    /// );
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(4);
        out.push((RATELIMIT_LIMIT, HeaderValue::from(self.limit)));
        out.push((RATELIMIT_REMAINING, HeaderValue::from(self.remaining)));
        out.push((
            RATELIMIT_RESET,
            HeaderValue::from(ceil_secs(self.reset_after)),
        ));
        if let Some(wait) = self.retry_after {
            out.push((
                http::header::RETRY_AFTER,
                HeaderValue::from(ceil_secs(wait).max(1)),
            ));
        }
        out
    }

    /// Writes [`headers`](Self::headers) into `map`, replacing values of
    /// the same names.
    ///
    /// ```
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let mut map = consentry::http::HeaderMap::new();
    /// RateLimiter::new().check("k", &Tier::free())?.write_headers(&mut map);
    /// assert_eq!(map["ratelimit-remaining"], "59");
    /// assert!(map.get(consentry::http::header::RETRY_AFTER).is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn write_headers(&self, map: &mut HeaderMap) {
        for (name, value) in self.headers() {
            map.insert(name, value);
        }
    }
}

/// Checks a key: 1 to [`MAX_KEY_LEN`] bytes, no ASCII control characters.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(
            "rate limit key",
            format!("must be 1 to {MAX_KEY_LEN} bytes"),
        ));
    }
    if key.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::invalid(
            "rate limit key",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch, saturating (before 1970 is 0).
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_nanos`].
pub(crate) fn from_unix_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

/// One GCRA step for a key whose TAT is `tat` (0 when unknown) at `now`:
/// the decision, and the new TAT when the request is allowed.
pub(crate) fn gcra(tier: &Tier, tat: u64, now: u64) -> (Decision, Option<u64>) {
    let base = tat.max(now);
    let backlog = base - now;
    if backlog > tier.tolerance {
        let decision = Decision {
            allowed: false,
            limit: tier.limit,
            remaining: 0,
            reset_after: Duration::from_nanos(backlog),
            retry_after: Some(Duration::from_nanos(backlog - tier.tolerance)),
        };
        return (decision, None);
    }
    let after = backlog.saturating_add(tier.emission);
    let remaining = if after > tier.tolerance {
        0
    } else {
        // ≤ limit − 1 by construction.
        u32::try_from((tier.tolerance - after) / tier.emission + 1).unwrap_or(tier.limit)
    };
    let decision = Decision {
        allowed: true,
        limit: tier.limit,
        remaining,
        reset_after: Duration::from_nanos(after),
        retry_after: None,
    };
    (decision, Some(base.saturating_add(tier.emission)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_new() {
        for (preset, limit) in [
            (Tier::free(), 60),
            (Tier::pro(), 1_000),
            (Tier::enterprise(), 5_000),
        ] {
            let built =
                Tier::new(preset.name().to_owned(), limit, Duration::from_secs(60)).unwrap();
            assert_eq!(preset, built);
        }
    }

    #[test]
    fn a_burst_of_limit_passes_then_one_per_interval() {
        let tier = Tier::new("odd", 7, Duration::from_secs(1)).unwrap();
        let now = 1_000_000_000_000;
        let mut tat = 0;
        let mut allowed = 0;
        for _ in 0..20 {
            let (d, new) = gcra(&tier, tat, now);
            if let Some(n) = new {
                tat = n;
                allowed += 1;
            }
            assert_eq!(d.allowed, new.is_some());
        }
        assert_eq!(allowed, 7);
        let (denied, _) = gcra(&tier, tat, now);
        let wait = denied.retry_after.unwrap();
        assert_eq!(wait, tier.emission_interval());
        let later = now + u64::try_from(wait.as_nanos()).unwrap();
        assert!(gcra(&tier, tat, later - 1).1.is_none());
        assert!(gcra(&tier, tat, later).1.is_some());
    }

    #[test]
    fn remaining_counts_down_to_zero() {
        let tier = Tier::new("three", 3, Duration::from_secs(3)).unwrap();
        let mut tat = 0;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (d, new) = gcra(&tier, tat, 10);
            tat = new.unwrap_or(tat);
            seen.push((d.allowed, d.remaining));
        }
        assert_eq!(seen, [(true, 2), (true, 1), (true, 0), (false, 0)]);
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("user:1").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        for bad in ["", "a\nb", "\0", "tab\there"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let tier = Tier::new("max", MAX_LIMIT, MAX_PERIOD).unwrap();
        for (tat, now) in [
            (u64::MAX, 0),
            (0, u64::MAX),
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, 3),
        ] {
            let _ = gcra(&tier, tat, now);
            let _ = gcra(&Tier::free(), tat, now);
        }
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
