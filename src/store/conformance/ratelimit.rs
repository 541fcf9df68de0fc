//! Conformance cases for shared rate limits ([`RateLimitStore`]).
//!
//! [`RateLimitStore`]: crate::store::RateLimitStore

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::join_all;
use crate::error::Error;
use crate::ratelimit::{Tier, check_in_store, unix_nanos};
use crate::store::{Store, TatUpdate};

/// A time with nanoseconds that milliseconds would lose.
fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_800_000_000 + secs, 123_456_789)
}

fn set(to: SystemTime) -> TatUpdate {
    TatUpdate::new(move |_| Some(to))
}

/// An update sees what is stored (`None` when nothing is) and stores what
/// it returns, to the nanosecond; returning `None` keeps the stored TAT;
/// keys are independent; bad keys and unrepresentable TATs are refused
/// and change nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::rate_limit_updates_read_and_write_the_tat(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn rate_limit_updates_read_and_write_the_tat(store: &dyn Store) {
    let k = "conformance-rl-update";
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), None);
    assert_eq!(
        store.update_rate_limit_tat(k, set(t(1))).await.unwrap(),
        None
    );
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(1)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let keep = TatUpdate::new(move |tat| {
        log.lock().unwrap().push(tat);
        None
    });
    assert_eq!(
        store.update_rate_limit_tat(k, keep).await.unwrap(),
        Some(t(1))
    );
    assert!(seen.lock().unwrap().iter().all(|s| *s == Some(t(1))));
    assert!(!seen.lock().unwrap().is_empty(), "the update was applied");
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(1)), "kept");
    let step = TatUpdate::new(|tat| tat.map(|t| t + Duration::from_nanos(1)));
    assert_eq!(
        store.update_rate_limit_tat(k, step).await.unwrap(),
        Some(t(1))
    );
    assert_eq!(
        store.rate_limit_tat(k).await.unwrap(),
        Some(t(1) + Duration::from_nanos(1)),
        "nanosecond precision"
    );
    // Moving a TAT back is allowed too (the limiter never does, a host may).
    store.update_rate_limit_tat(k, set(t(0))).await.unwrap();
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(0)));

    let other = "conformance-rl-update-other";
    assert_eq!(store.rate_limit_tat(other).await.unwrap(), None);
    let nothing = TatUpdate::new(|_| None);
    assert_eq!(
        store.update_rate_limit_tat(other, nothing).await.unwrap(),
        None
    );
    assert_eq!(store.rate_limit_tat(other).await.unwrap(), None);

    let long = "k".repeat(crate::ratelimit::MAX_KEY_LEN + 1);
    for bad in ["", "a\nb", long.as_str()] {
        assert!(matches!(
            store.rate_limit_tat(bad).await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            store.update_rate_limit_tat(bad, set(t(1))).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
    let range = "conformance-rl-range";
    assert!(matches!(
        store.update_rate_limit_tat(range, set(before_1970)).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(store.rate_limit_tat(range).await.unwrap(), None);
    store.update_rate_limit_tat(range, set(t(7))).await.unwrap();
    assert!(
        store
            .update_rate_limit_tat(range, set(before_1970))
            .await
            .is_err()
    );
    assert_eq!(store.rate_limit_tat(range).await.unwrap(), Some(t(7)));
}

/// 32 concurrent increments of one key lose none: each update sees the
/// result of the one before it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::rate_limit_concurrent_updates_lose_nothing(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn rate_limit_concurrent_updates_lose_nothing(store: &dyn Store) {
    let k = "conformance-rl-race";
    let increments = (0..32).map(|_| {
        store.update_rate_limit_tat(
            k,
            TatUpdate::new(|tat| Some(tat.unwrap_or(t(0)) + Duration::from_secs(1))),
        )
    });
    let mut seen: Vec<SystemTime> = join_all(increments)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap_or(t(0)))
        .collect();
    assert_eq!(
        store.rate_limit_tat(k).await.unwrap(),
        Some(t(32)),
        "no increment lost"
    );
    seen.sort_unstable();
    let expected: Vec<SystemTime> = (0..32).map(t).collect();
    assert_eq!(seen, expected, "each saw a distinct predecessor");
}

/// Purging deletes the TATs at or before `now` and keeps later ones.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::rate_limit_purge_drops_only_expired(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn rate_limit_purge_drops_only_expired(store: &dyn Store) {
    let (a, b) = ("conformance-rl-purge-a", "conformance-rl-purge-b");
    store.update_rate_limit_tat(a, set(t(1_000))).await.unwrap();
    store.update_rate_limit_tat(b, set(t(2_000))).await.unwrap();
    store
        .purge_rate_limits(t(1_000) - Duration::from_nanos(1))
        .await
        .unwrap();
    assert_eq!(store.rate_limit_tat(a).await.unwrap(), Some(t(1_000)));
    let purged = store.purge_rate_limits(t(1_000)).await.unwrap();
    assert!(purged >= 1);
    assert_eq!(store.rate_limit_tat(a).await.unwrap(), None);
    assert_eq!(store.rate_limit_tat(b).await.unwrap(), Some(t(2_000)));
}

/// The store-backed limiter over this store: of 24 concurrent checks of
/// one key at one instant on a tier of 5 per minute, exactly 5 pass;
/// one emission interval (12 s) later exactly one more does.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::store_rate_limiter_keeps_the_limit(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn store_rate_limiter_keeps_the_limit(store: &dyn Store) {
    let key = "conformance-rl-limiter";
    let tier = Tier::new("conformance", 5, Duration::from_secs(60)).unwrap();
    let now = unix_nanos(t(5_000));
    let checks = (0..24).map(|_| check_in_store(store, now, key, &tier));
    let decisions: Vec<_> = join_all(checks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let allowed: Vec<_> = decisions.iter().filter(|d| d.allowed).collect();
    assert_eq!(allowed.len(), 5, "{decisions:?}");
    let mut remaining: Vec<u32> = allowed.iter().map(|d| d.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3, 4], "each allowed one counted once");
    for d in decisions.iter().filter(|d| !d.allowed) {
        assert_eq!(d.retry_after, Some(Duration::from_secs(12)));
    }
    let later = now + 12_000_000_000;
    let again: Vec<bool> = [
        check_in_store(store, later, key, &tier).await.unwrap(),
        check_in_store(store, later, key, &tier).await.unwrap(),
    ]
    .iter()
    .map(|d| d.allowed)
    .collect();
    assert_eq!(again, [true, false]);
}
