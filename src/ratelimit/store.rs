//! [`StoreRateLimiter`]: the limiter whose state lives in a
//! [`RateLimitStore`], so every process using the store shares each limit.

use std::fmt;
use std::sync::Arc;

use super::{Decision, Tier, check_key, from_unix_nanos, gcra, unix_nanos};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::store::{RateLimitStore, TatUpdate};

/// A GCRA rate limiter whose TATs live in a [`RateLimitStore`]
/// ([`MemoryStore`](crate::store::MemoryStore), `SqliteStore`, a host's
/// own), so several processes sharing the store share every limit.
///
/// A check is one atomic update in the store
/// ([`RateLimitStore::update_rate_limit_tat`]; for SQLite one `BEGIN
/// IMMEDIATE` transaction): read the key's TAT, decide (the same math as
/// [`RateLimiter`](super::RateLimiter), so both give the same decisions),
/// and write the new TAT when the request is allowed (a denied request
/// writes nothing). Updates of one key are serialized across processes,
/// so two processes can never both spend the same capacity.
///
/// Expired TATs (in the past: the key has its full burst again) can be
/// dropped at any time with [`purge_expired`](Self::purge_expired) without
/// changing any decision.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::clock::ManualClock;
/// use consentry::ratelimit::{StoreRateLimiter, Tier};
/// use consentry::store::MemoryStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let store = MemoryStore::new(); // in production: one SqliteStore file shared by the processes
/// let a = StoreRateLimiter::new(store.clone()).with_clock(Arc::new(clock.clone()));
/// let b = StoreRateLimiter::new(store).with_clock(Arc::new(clock.clone()));
/// let tier = Tier::new("shared", 4, Duration::from_secs(60))?;
/// let mut allowed = 0;
/// for _ in 0..5 {
///     allowed += usize::from(a.check("user:ada", &tier).await?.allowed);
///     allowed += usize::from(b.check("user:ada", &tier).await?.allowed);
/// }
/// assert_eq!(allowed, 4); // one limit for both
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct StoreRateLimiter {
    store: Arc<dyn RateLimitStore>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for StoreRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreRateLimiter")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .finish()
    }
}

impl StoreRateLimiter {
    /// A limiter over `store`, on the system clock.
    ///
    /// ```
    /// use consentry::ratelimit::{StoreRateLimiter, Tier};
    /// use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = StoreRateLimiter::new(MemoryStore::new());
    /// assert_eq!(limiter.check("user:ada", &Tier::free()).await?.remaining, 59);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn new(store: impl RateLimitStore) -> Self {
        Self {
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` instead of the system clock. Processes sharing a store
    /// should agree on the time (a shared limit is only as exact as their
    /// clocks are in sync).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::StoreRateLimiter;
    /// use consentry::store::MemoryStore;
    /// let limiter = StoreRateLimiter::new(MemoryStore::new()).with_clock(Arc::new(ManualClock::starting_now()));
    /// assert!(format!("{limiter:?}").contains("ManualClock"));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks one request for `key` on `tier` and, when it is allowed,
    /// counts it in the store.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a bad key (as
    /// [`RateLimiter::check`](super::RateLimiter::check)); storage errors
    /// (for SQLite also when another process held the write lock longer
    /// than the store's `busy_timeout`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ratelimit::{StoreRateLimiter, Tier};
    /// use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = StoreRateLimiter::new(MemoryStore::new());
    /// let daily = Tier::new("daily", 2, Duration::from_secs(86_400))?;
    /// assert!(limiter.check("k", &daily).await?.allowed);
    /// assert!(limiter.check("k", &daily).await?.allowed);
    /// let denied = limiter.check("k", &daily).await?;
    /// assert!(!denied.allowed && denied.retry_after.is_some());
    /// assert!(limiter.check("bad\nkey", &daily).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn check(&self, key: &str, tier: &Tier) -> Result<Decision> {
        check_in_store(&*self.store, unix_nanos(self.clock.now()), key, tier).await
    }

    /// Deletes the stored TATs that have passed; returns how many. Run it
    /// now and then (an hourly job is plenty): it changes no decision.
    ///
    /// # Errors
    /// Storage errors.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::{StoreRateLimiter, Tier};
    /// use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    /// let limiter = StoreRateLimiter::new(MemoryStore::new()).with_clock(Arc::new(clock.clone()));
    /// limiter.check("k", &Tier::free()).await?;
    /// assert_eq!(limiter.purge_expired().await?, 0);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(limiter.purge_expired().await?, 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn purge_expired(&self) -> Result<u64> {
        self.store.purge_rate_limits(self.clock.now()).await
    }
}

/// One store-backed check at `now` (Unix nanoseconds): one atomic update
/// whose function is the GCRA step; the decision is recomputed from the
/// TAT the update was given (the step is pure, so it is the same one).
pub(crate) async fn check_in_store<S: RateLimitStore + ?Sized>(
    store: &S,
    now: u64,
    key: &str,
    tier: &Tier,
) -> Result<Decision> {
    check_key(key)?;
    let step = tier.clone();
    let update = TatUpdate::new(move |tat| {
        gcra(&step, tat.map_or(0, unix_nanos), now)
            .1
            .map(from_unix_nanos)
    });
    let seen = store.update_rate_limit_tat(key, update).await?;
    Ok(gcra(tier, seen.map_or(0, unix_nanos), now).0)
}
