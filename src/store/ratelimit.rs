//! Storage for shared rate limits ([`RateLimitStore`]): one theoretical
//! arrival time (TAT) per key, changed only by compare-and-swap.
//!
//! The GCRA math lives in [`ratelimit`](crate::ratelimit); a store only
//! keeps TATs and swaps one atomically, which any database can do (a
//! conditional `UPDATE`, a Redis `WATCH`, a DynamoDB condition).

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::error::{Error, Result};

/// The outcome of [`RateLimitStore::swap_rate_limit_tat`].
///
/// ```
/// use consentry::store::TatSwap;
/// let lost = TatSwap::Changed { current: None };
/// assert_ne!(lost, TatSwap::Swapped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TatSwap {
    /// The stored TAT was the expected one and is now the new one.
    Swapped,
    /// The stored TAT was not the expected one; nothing changed. This is
    /// what is stored now (`None`: no TAT for the key).
    Changed {
        /// The TAT stored now.
        current: Option<SystemTime>,
    },
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
/// use consentry::store::{MemoryStore, RateLimitStore, TatSwap};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let t1 = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001);
/// assert_eq!(store.rate_limit_tat("user:ada").await?, None);
/// assert_eq!(store.swap_rate_limit_tat("user:ada", None, t1).await?, TatSwap::Swapped);
/// assert_eq!(store.rate_limit_tat("user:ada").await?, Some(t1));
/// // A stale expectation changes nothing and reports what is stored.
/// assert_eq!(
///     store.swap_rate_limit_tat("user:ada", None, UNIX_EPOCH).await?,
///     TatSwap::Changed { current: Some(t1) }
/// );
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

    /// Sets `key`'s TAT to `new` if the stored one is `expected` (`None`:
    /// no TAT stored), atomically: of concurrent swaps from one expected
    /// value, exactly one succeeds. Otherwise changes nothing and returns
    /// what is stored.
    ///
    /// # Errors
    /// `InvalidInput` for a bad key, or a TAT before 1970 or after 2262
    /// (not representable as `i64` nanoseconds).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::{MemoryStore, RateLimitStore, TatSwap};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (t1, t2) = (UNIX_EPOCH + Duration::from_secs(10), UNIX_EPOCH + Duration::from_secs(20));
    /// assert_eq!(store.swap_rate_limit_tat("k", None, t1).await?, TatSwap::Swapped);
    /// assert_eq!(store.swap_rate_limit_tat("k", Some(t1), t2).await?, TatSwap::Swapped);
    /// assert_eq!(store.swap_rate_limit_tat("k", Some(t1), t1).await?, TatSwap::Changed { current: Some(t2) });
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn swap_rate_limit_tat(
        &self,
        key: &str,
        expected: Option<SystemTime>,
        new: SystemTime,
    ) -> Result<TatSwap>;

    /// Deletes the TATs at or before `now` (keys with their full burst
    /// again); returns how many.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::{MemoryStore, RateLimitStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.swap_rate_limit_tat("k", None, UNIX_EPOCH + Duration::from_secs(10)).await?;
    /// assert_eq!(store.purge_rate_limits(UNIX_EPOCH + Duration::from_secs(9)).await?, 0);
    /// assert_eq!(store.purge_rate_limits(UNIX_EPOCH + Duration::from_secs(10)).await?, 1);
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
            async fn swap_rate_limit_tat(&self, key: &str, expected: Option<SystemTime>, new: SystemTime) -> Result<TatSwap> {
                (**self).swap_rate_limit_tat(key, expected, new).await
            }
            async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64> {
                (**self).purge_rate_limits(now).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
