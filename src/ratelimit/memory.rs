//! [`RateLimiter`]: the in-memory limiter (sharded, bounded).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Decision, Tier, check_key, gcra, unix_nanos};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;

/// The default number of shards.
const DEFAULT_SHARDS: usize = 64;
/// The most shards a limiter has.
const MAX_SHARDS: usize = 1_024;
/// The default bound on tracked keys.
const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// The largest bound on tracked keys.
const MAX_MAX_KEYS: usize = 1 << 28;

/// A GCRA rate limiter in memory: one TAT per key, in shards that each have
/// their own short `std` mutex (no global lock; two keys contend only when
/// they hash to the same shard).
///
/// A check of a key already tracked does not allocate. Memory is bounded:
/// at most [`max_keys`](RateLimiterBuilder::max_keys) keys are tracked
/// (spread over the shards). When a shard is full, the keys whose TAT has
/// passed (nothing left to remember: they have their full burst again) are
/// evicted; if none has, a key the limiter does not know yet is **denied**
/// (`retry_after` says when the first tracked key expires) rather than
/// admitted by forgetting a key that is still limited, so no key ever gets
/// more than its limit. Keys are hashed with a randomly keyed SipHash, so
/// a caller choosing keys cannot pile them into one shard's hash table.
///
/// One limiter serves every tier: a key's state is its TAT alone, so give
/// each tier its own key prefix if a key may change tier.
///
/// Time comes from the injected [`Clock`] ([`SystemClock`] by default).
///
/// ```
/// use consentry::ratelimit::{RateLimiter, Tier};
/// let limiter = RateLimiter::new();
/// let d = limiter.check("token:cst_123", &Tier::enterprise())?;
/// assert!(d.allowed && d.remaining == 4_999);
/// assert!(limiter.check("", &Tier::free()).is_err()); // keys are validated
/// # Ok::<(), consentry::Error>(())
/// ```
pub struct RateLimiter {
    shards: Box<[Shard]>,
    mask: usize,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    max_keys: usize,
}

/// One shard, on its own cache lines (two cores locking neighbouring
/// shards do not share a line).
#[repr(align(128))]
struct Shard {
    state: Mutex<ShardState>,
}

/// A shard's table is keyed by the key's 64-bit SipHash (computed once per
/// check, also used to pick the shard), so a check hashes its key once.
/// Two keys with the same hash (not something a caller can arrange: the
/// hash is randomly keyed) share a slot.
struct ShardState {
    slots: HashMap<u64, Slot, BuildHasherDefault<PassThrough>>,
    /// Keys tracked (slots hold one, rarely more).
    len: usize,
    capacity: usize,
    /// No tracked TAT is earlier than this: until then a sweep would free
    /// nothing.
    next_expiry: u64,
}

/// The keys with one hash and their TATs.
enum Slot {
    One(Box<str>, u64),
    Many(Vec<(Box<str>, u64)>),
}

impl Slot {
    fn get_mut(&mut self, key: &str) -> Option<&mut u64> {
        match self {
            Self::One(k, tat) => (**k == *key).then_some(tat),
            Self::Many(entries) => entries
                .iter_mut()
                .find(|(k, _)| **k == *key)
                .map(|(_, tat)| tat),
        }
    }

    fn push(&mut self, key: Box<str>, tat: u64) {
        match self {
            Self::One(..) => {
                let Self::One(k, t) = std::mem::replace(self, Self::Many(Vec::with_capacity(2)))
                else {
                    return;
                };
                if let Self::Many(entries) = self {
                    entries.push((k, t));
                    entries.push((key, tat));
                }
            }
            Self::Many(entries) => entries.push((key, tat)),
        }
    }

    /// Drops the entries expired at `now`; returns (removed, earliest kept
    /// TAT, whether the slot is now empty).
    fn sweep(&mut self, now: u64) -> (usize, u64, bool) {
        match self {
            Self::One(_, tat) if *tat > now => (0, *tat, false),
            Self::One(..) => (1, u64::MAX, true),
            Self::Many(entries) => {
                let before = entries.len();
                entries.retain(|(_, tat)| *tat > now);
                let earliest = entries.iter().map(|(_, t)| *t).min().unwrap_or(u64::MAX);
                (before - entries.len(), earliest, entries.is_empty())
            }
        }
    }
}

/// The table's hasher: the key is already a keyed SipHash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in, to stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShardState {
    /// Removes the keys expired at `now`; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let mut removed = 0;
        let mut earliest = u64::MAX;
        self.slots.retain(|_, slot| {
            let (gone, first, empty) = slot.sweep(now);
            removed += gone;
            earliest = earliest.min(first);
            !empty
        });
        self.len -= removed;
        self.next_expiry = earliest;
        removed
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shards", &self.shards.len())
            .field("max_keys", &self.max_keys)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// A limiter with the defaults: 64 shards, at most 1,000,000 keys
    /// (about 40 bytes plus the key's length each), the system clock.
    ///
    /// ```
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let limiter = RateLimiter::new();
    /// assert!(limiter.check("user:ada", &Tier::free())?.allowed);
    /// assert_eq!(limiter.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the clock, the key bound and the shard count.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::RateLimiter;
    /// let limiter = RateLimiter::builder()
    ///     .clock(Arc::new(ManualClock::starting_now()))
    ///     .max_keys(10_000)
    ///     .shards(16)
    ///     .build();
    /// assert_eq!(limiter.max_keys(), 10_000);
    /// ```
    pub fn builder() -> RateLimiterBuilder {
        RateLimiterBuilder {
            clock: Arc::new(SystemClock),
            max_keys: DEFAULT_MAX_KEYS,
            shards: DEFAULT_SHARDS,
        }
    }

    /// Checks one request for `key` on `tier` and, when it is allowed,
    /// counts it. Never blocks on anything but the key's shard mutex.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) (`what` =
    /// `"rate limit key"`) for an empty key, one over
    /// [`MAX_KEY_LEN`](super::MAX_KEY_LEN) bytes, or one with ASCII
    /// control characters.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    /// let limiter = RateLimiter::builder().clock(Arc::new(clock.clone())).build();
    /// let tier = Tier::new("burst3", 3, Duration::from_secs(30))?;
    /// let got: Vec<bool> = (0..4).map(|_| limiter.check("k", &tier).map(|d| d.allowed)).collect::<Result<_, _>>()?;
    /// assert_eq!(got, [true, true, true, false]);
    /// clock.advance(Duration::from_secs(30)); // the full burst is back
    /// assert_eq!(limiter.check("k", &tier)?.remaining, 2);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn check(&self, key: &str, tier: &Tier) -> Result<Decision> {
        self.check_at(key, tier, self.clock.now())
    }

    /// Like [`check`](Self::check), at `now` instead of the clock's time:
    /// for a caller that read the time already (one clock read per request
    /// for several limits). Times before 1970 count as 1970.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let limiter = RateLimiter::new();
    /// let now = SystemTime::now();
    /// let user = limiter.check_at("user:ada", &Tier::pro(), now)?;
    /// let token = limiter.check_at("token:t1", &Tier::free(), now)?;
    /// assert!(user.allowed && token.allowed);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn check_at(&self, key: &str, tier: &Tier, now: SystemTime) -> Result<Decision> {
        check_key(key)?;
        let now = unix_nanos(now);
        let hash = self.hasher.hash_one(key);
        // High bits: the shard's own table indexes by the low ones.
        let index = usize::try_from(hash >> 40).unwrap_or(0) & self.mask;
        let Some(shard) = self.shards.get(index) else {
            return Err(crate::Error::Internal("rate limiter shard out of range"));
        };
        let mut state = shard.lock();
        if let Some(tat) = state.slots.get_mut(&hash).and_then(|s| s.get_mut(key)) {
            let (decision, next) = gcra(tier, *tat, now);
            if let Some(next) = next {
                *tat = next;
            }
            return Ok(decision);
        }
        let (decision, next) = gcra(tier, 0, now);
        let Some(next) = next else {
            return Ok(decision);
        };
        if state.len >= state.capacity
            && (now < state.next_expiry || {
                state.sweep(now);
                state.len >= state.capacity
            })
        {
            // Full of keys that are still limited: refuse the newcomer
            // rather than forget one of them.
            let wait = Duration::from_nanos(state.next_expiry.saturating_sub(now).max(1));
            return Ok(Decision {
                allowed: false,
                limit: tier.limit,
                remaining: 0,
                reset_after: wait,
                retry_after: Some(wait),
            });
        }
        state.next_expiry = state.next_expiry.min(next);
        state.len += 1;
        match state.slots.entry(hash) {
            std::collections::hash_map::Entry::Occupied(mut slot) => {
                slot.get_mut().push(Box::from(key), next);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Slot::One(Box::from(key), next));
            }
        }
        Ok(decision)
    }

    /// Evicts every key whose TAT has passed (it has its full burst
    /// again, so forgetting it changes no decision); returns how many.
    /// Full shards do this on their own; call it to give memory back
    /// sooner.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    /// let limiter = RateLimiter::builder().clock(Arc::new(clock.clone())).build();
    /// limiter.check("a", &Tier::free())?;
    /// limiter.check("b", &Tier::free())?;
    /// assert_eq!(limiter.purge_expired(), 0);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(limiter.purge_expired(), 2);
    /// assert!(limiter.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn purge_expired(&self) -> usize {
        let now = unix_nanos(self.clock.now());
        self.shards.iter().map(|s| s.lock().sweep(now)).sum()
    }

    /// How many keys are tracked (expired ones included until evicted).
    ///
    /// ```
    /// use consentry::ratelimit::{RateLimiter, Tier};
    /// let limiter = RateLimiter::new();
    /// limiter.check("a", &Tier::free())?;
    /// limiter.check("a", &Tier::free())?;
    /// assert_eq!(limiter.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len).sum()
    }

    /// Whether no key is tracked.
    ///
    /// ```
    /// assert!(consentry::ratelimit::RateLimiter::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().len == 0)
    }

    /// The bound on tracked keys.
    ///
    /// ```
    /// assert_eq!(consentry::ratelimit::RateLimiter::new().max_keys(), 1_000_000);
    /// ```
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }
}

/// Builds a [`RateLimiter`]. Out-of-range values are clamped to the
/// documented limits.
///
/// ```
/// use consentry::ratelimit::RateLimiter;
/// let limiter = RateLimiter::builder().max_keys(0).build();
/// assert_eq!(limiter.max_keys(), 1); // clamped
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RateLimiterBuilder {
    clock: Arc<dyn Clock>,
    max_keys: usize,
    shards: usize,
}

impl RateLimiterBuilder {
    /// The clock; default [`SystemClock`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::UNIX_EPOCH;
    /// use consentry::clock::ManualClock;
    /// use consentry::ratelimit::RateLimiter;
    /// let limiter = RateLimiter::builder().clock(Arc::new(ManualClock::new(UNIX_EPOCH))).build();
    /// assert!(format!("{limiter:?}").contains("ManualClock"));
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// At most this many keys are tracked; 1 to 2^28, default 1,000,000.
    ///
    /// ```
    /// use consentry::ratelimit::RateLimiter;
    /// assert_eq!(RateLimiter::builder().max_keys(500).build().max_keys(), 500);
    /// assert_eq!(RateLimiter::builder().max_keys(usize::MAX).build().max_keys(), 1 << 28);
    /// ```
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.clamp(1, MAX_MAX_KEYS);
        self
    }

    /// How many shards; rounded down to a power of two, 1 to 1,024, and at
    /// most `max_keys`; default 64.
    ///
    /// ```
    /// use consentry::ratelimit::RateLimiter;
    /// let limiter = RateLimiter::builder().shards(100).build();
    /// assert!(format!("{limiter:?}").contains("shards: 64"));
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.clamp(1, MAX_SHARDS);
        self
    }

    /// The limiter.
    ///
    /// ```
    /// use consentry::ratelimit::RateLimiter;
    /// let limiter = RateLimiter::builder().max_keys(3).build();
    /// assert!(format!("{limiter:?}").contains("shards: 2")); // never more shards than keys
    /// ```
    pub fn build(self) -> RateLimiter {
        let wanted = self.shards.min(self.max_keys).max(1);
        // Largest power of two not above `wanted`.
        let count = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
        let hasher = RandomState::new();
        let (per, extra) = (self.max_keys / count, self.max_keys % count);
        let shards: Box<[Shard]> = (0..count)
            .map(|i| Shard {
                state: Mutex::new(ShardState {
                    slots: HashMap::default(),
                    len: 0,
                    capacity: per + usize::from(i < extra),
                    next_expiry: 0,
                }),
            })
            .collect();
        RateLimiter {
            shards,
            mask: count - 1,
            hasher,
            clock: self.clock,
            max_keys: self.max_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_full_shard_refuses_newcomers_until_a_key_expires() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
        let limiter = RateLimiter::builder()
            .clock(Arc::new(clock.clone()))
            .shards(1)
            .max_keys(3)
            .build();
        let tier = Tier::new("t", 10, Duration::from_secs(10)).unwrap();
        for k in ["a", "b", "c"] {
            assert!(limiter.check(k, &tier).unwrap().allowed);
        }
        let refused = limiter.check("d", &tier).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        // Known keys still work.
        assert!(limiter.check("a", &tier).unwrap().allowed);
        clock.advance(Duration::from_secs(1)); // b and c expire, a does not
        assert!(limiter.check("d", &tier).unwrap().allowed);
        assert_eq!(limiter.len(), 2);
        assert!(limiter.check("e", &tier).unwrap().allowed);
        assert_eq!(limiter.len(), 3);
    }

    #[test]
    fn keys_sharing_a_hash_share_a_slot() {
        let mut slot = Slot::One("a".into(), 10);
        assert!(slot.get_mut("b").is_none());
        slot.push("b".into(), 20);
        slot.push("c".into(), 30);
        *slot.get_mut("b").unwrap() = 25;
        assert_eq!(slot.get_mut("a").copied(), Some(10));
        assert_eq!(slot.sweep(10), (1, 25, false));
        assert!(slot.get_mut("a").is_none());
        assert_eq!(slot.get_mut("b").copied(), Some(25));
        assert_eq!(slot.sweep(30), (2, u64::MAX, true));
        let mut one = Slot::One("x".into(), 5);
        assert_eq!(one.sweep(4), (0, 5, false));
        assert_eq!(one.sweep(5), (1, u64::MAX, true));
    }

    #[test]
    fn shard_capacities_add_up_to_max_keys() {
        for (max, shards) in [(1, 64), (3, 64), (100, 64), (1_000_003, 64), (7, 4)] {
            let limiter = RateLimiter::builder().max_keys(max).shards(shards).build();
            assert!(limiter.shards.len().is_power_of_two());
            let total: usize = limiter.shards.iter().map(|s| s.lock().capacity).sum();
            assert_eq!(total, max);
            assert!(limiter.shards.iter().all(|s| s.lock().capacity >= 1));
        }
    }
}
