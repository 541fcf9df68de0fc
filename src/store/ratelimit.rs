//! Storage for shared rate limits ([`RateLimitStore`]): one theoretical
//! arrival time (TAT) per key, changed only by an atomic update.
//!
//! The GCRA math lives in [`ratelimit`](crate::ratelimit): the limiter
//! hands the store a function from the stored TAT to the new one, and the
//! store runs read, function and write as one atomic step (SQLite: one
//! `BEGIN IMMEDIATE` transaction; a server database: a transaction that
//! locks the row, or a compare-and-swap loop). Holding the write lock
//! across the read is what lets several processes share a limit without
//! losing updates or starving each other: a compare-and-swap done as two
//! round trips (read, then conditional write) was tried first and, with
//! two processes hammering one key, one process lost its swap dozens of
//! times in a row while it waited for SQLite's lock.

use std::fmt::{self, Debug};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::error::{Error, Result};

/// What a [`RateLimitStore::update_rate_limit_tat`] call does with the
/// stored TAT: given it (`None`: no TAT stored), return the new TAT to
/// store, or `None` to leave it as it is. Must be pure and quick: a store
/// may call it with a lock held, and a retrying store may call it more
/// than once.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::store::TatUpdate;
/// let later = TatUpdate::new(|tat| Some(tat.unwrap_or(UNIX_EPOCH) + Duration::from_secs(1)));
/// assert_eq!(later.apply(None), Some(UNIX_EPOCH + Duration::from_secs(1)));
/// ```
pub struct TatUpdate(Box<dyn Fn(Option<SystemTime>) -> Option<SystemTime> + Send + Sync>);

impl Debug for TatUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TatUpdate(..)")
    }
}

impl TatUpdate {
    /// Wraps `f`.
    ///
    /// ```
    /// use consentry::store::TatUpdate;
    /// let keep = TatUpdate::new(|_| None);
    /// assert_eq!(keep.apply(Some(std::time::UNIX_EPOCH)), None);
    /// ```
    pub fn new(
        f: impl Fn(Option<SystemTime>) -> Option<SystemTime> + Send + Sync + 'static,
    ) -> Self {
        Self(Box::new(f))
    }

    /// The new TAT for a stored `tat`, or `None` to keep it.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::TatUpdate;
    /// let set = TatUpdate::new(move |_| Some(UNIX_EPOCH + Duration::from_secs(5)));
    /// assert_eq!(set.apply(None), Some(UNIX_EPOCH + Duration::from_secs(5)));
    /// ```
    pub fn apply(&self, tat: Option<SystemTime>) -> Option<SystemTime> {
        (self.0)(tat)
    }
}

/// Rate-limit state shared by every process using the store: one TAT per
/// key (at nanosecond precision), used by
/// [`StoreRateLimiter`](crate::ratelimit::StoreRateLimiter).
///
/// A TAT in the past means the key has its full burst again, exactly as if
/// it were absent, so a store may drop such entries at any time
/// ([`purge_rate_limits`](Self::purge_rate_limits)).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::store::{MemoryStore, RateLimitStore, TatUpdate};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let t1 = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001);
/// assert_eq!(store.rate_limit_tat("user:ada").await?, None);
/// let seen = store.update_rate_limit_tat("user:ada", TatUpdate::new(move |_| Some(t1))).await?;
/// assert_eq!(seen, None); // what the update was given
/// assert_eq!(store.rate_limit_tat("user:ada").await?, Some(t1));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RateLimitStore: Debug + Send + Sync + 'static {
    /// The TAT stored for `key`, if any (an expired one included until it
    /// is purged).
    ///
    /// # Errors
    /// `InvalidInput` for a bad key (see
    /// [`RateLimiter::check`](crate::ratelimit::RateLimiter::check)).
    ///
    /// ```
    /// use consentry::store::{MemoryStore, RateLimitStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert_eq!(MemoryStore::new().rate_limit_tat("k").await?, None);
    /// assert!(MemoryStore::new().rate_limit_tat("").await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn rate_limit_tat(&self, key: &str) -> Result<Option<SystemTime>>;

    /// Atomically reads `key`'s TAT, applies `update` to it and stores
    /// the result when it is `Some`; returns the TAT `update` was given
    /// (so the caller can recompute what it decided). Of concurrent updates
    /// of one key, each sees the result of the one before it.
    ///
    /// # Errors
    /// `InvalidInput` for a bad key, or when `update` returns a TAT before
    /// 1970 or after 2262 (not representable as `i64` nanoseconds;
    /// nothing is stored then).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::{MemoryStore, RateLimitStore, TatUpdate};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let add_10s = || TatUpdate::new(|t| Some(t.unwrap_or(UNIX_EPOCH) + Duration::from_secs(10)));
    /// assert_eq!(store.update_rate_limit_tat("k", add_10s()).await?, None);
    /// let ten = UNIX_EPOCH + Duration::from_secs(10);
    /// assert_eq!(store.update_rate_limit_tat("k", add_10s()).await?, Some(ten));
    /// assert_eq!(store.rate_limit_tat("k").await?, Some(ten + Duration::from_secs(10)));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn update_rate_limit_tat(
        &self,
        key: &str,
        update: TatUpdate,
    ) -> Result<Option<SystemTime>>;

    /// Deletes the TATs at or before `now` (keys with their full burst
    /// again); returns how many.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::{MemoryStore, RateLimitStore, TatUpdate};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let ten = UNIX_EPOCH + Duration::from_secs(10);
    /// store.update_rate_limit_tat("k", TatUpdate::new(move |_| Some(ten))).await?;
    /// assert_eq!(store.purge_rate_limits(UNIX_EPOCH + Duration::from_secs(9)).await?, 0);
    /// assert_eq!(store.purge_rate_limits(ten).await?, 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64>;
}

/// A TAT as `i64` nanoseconds since the epoch, the form stores keep
/// (stores call this on every TAT they are given).
pub(crate) fn tat_nanos(t: SystemTime) -> Result<i64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| {
            Error::invalid(
                "rate limit TAT",
                "must be between 1970 and 2262 (i64 nanoseconds)",
            )
        })
}

/// The inverse of [`tat_nanos`]; negative values map to the epoch.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn tat_from_nanos(n: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

/// Implements the trait for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: RateLimitStore + ?Sized> RateLimitStore for $($seg)::+<T> {
            async fn rate_limit_tat(&self, key: &str) -> Result<Option<SystemTime>> {
                (**self).rate_limit_tat(key).await
            }
            async fn update_rate_limit_tat(&self, key: &str, update: TatUpdate) -> Result<Option<SystemTime>> {
                (**self).update_rate_limit_tat(key, update).await
            }
            async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64> {
                (**self).purge_rate_limits(now).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
