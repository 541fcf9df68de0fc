//! Time, injected.
//!
//! Logic never reads the system clock directly: it asks a [`Clock`]. Hosts
//! use [`SystemClock`]; tests use [`ManualClock`] and move time by hand, so
//! expiry, tolerances and retry schedules are tested without sleeping.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The future returned by [`Clock::sleep`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::clock::{Clock, ManualClock, Sleep};
/// let clock = ManualClock::new(UNIX_EPOCH);
/// let wait: Sleep = clock.sleep(Duration::from_secs(5));
/// drop(wait); // ManualClock moved on when the sleep was made
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(5));
/// ```
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current wall-clock time.
///
/// ```
/// use consentry::clock::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::clock::{Clock, ManualClock};
    /// let clock: &dyn Clock = &ManualClock::new(UNIX_EPOCH);
    /// assert_eq!(clock.now(), UNIX_EPOCH);
    /// ```
    fn now(&self) -> SystemTime;

    /// Waits for `duration` of this clock's time. The default sleeps on the
    /// Tokio timer (real time); [`ManualClock`] moves itself forward by
    /// `duration` and returns at once, so waits in tests (rate limits,
    /// backoff) take no real time.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::{Clock, ManualClock, SystemClock};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// clock.sleep(Duration::from_secs(3600)).await; // instant
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(3600));
    /// SystemClock.sleep(Duration::from_millis(1)).await; // a real millisecond
    /// # });
    /// ```
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The operating system's clock.
///
/// ```
/// use consentry::clock::{Clock, SystemClock};
/// let a = SystemClock.now();
/// let b = SystemClock.now();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let seen_by_library = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(seen_by_library.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_090));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::{Clock, ManualClock};
    /// let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let clock = ManualClock::new(start);
    /// assert_eq!(clock.now(), start);
    /// assert_eq!(clock.now(), start); // it does not move by itself
    /// ```
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock stopped at the current system time.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::clock::{Clock, ManualClock};
    /// let before = SystemTime::now();
    /// let clock = ManualClock::starting_now();
    /// assert!(clock.now() >= before && clock.now() <= SystemTime::now());
    /// ```
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    /// If the new time cannot be represented (see `SystemTime + Duration`).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// clock.advance(Duration::from_secs(30));
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(60));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
    /// clock.set(UNIX_EPOCH + Duration::from_secs(10)); // back in time
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(10));
    /// ```
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        {
            let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
            *now = now.checked_add(duration).unwrap_or(*now);
        }
        // Yield once, as a real sleep would, so other tasks run.
        Box::pin(tokio::task::yield_now())
    }
}

#[deny(clippy::missing_trait_methods)]
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// Milliseconds since the Unix epoch, saturating (times before 1970 are 0).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_millis`]; negative values map to the epoch.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_unix_millis(ms: i64) -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
