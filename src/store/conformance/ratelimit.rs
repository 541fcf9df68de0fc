//! Conformance cases for shared rate limits ([`RateLimitStore`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::join_all;
use crate::error::Error;
use crate::ratelimit::{Tier, check_in_store, unix_nanos};
use crate::store::{Store, TatSwap};

/// A time with nanoseconds that milliseconds would lose.
fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_800_000_000 + secs, 123_456_789)
}

/// A TAT reads back to the nanosecond; a swap succeeds only from the
/// stored value (`None` = absent) and otherwise reports what is stored;
/// keys are independent; bad keys and unrepresentable TATs are refused.
pub async fn rate_limit_tat_compare_and_swap(store: &dyn Store) {
    let k = "conformance-rl-cas";
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), None);
    assert_eq!(
        store.swap_rate_limit_tat(k, None, t(1)).await.unwrap(),
        TatSwap::Swapped
    );
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(1)));
    assert_eq!(
        store.swap_rate_limit_tat(k, None, t(2)).await.unwrap(),
        TatSwap::Changed {
            current: Some(t(1))
        },
        "a row exists: expecting none must lose"
    );
    assert_eq!(
        store
            .swap_rate_limit_tat(k, Some(t(0)), t(2))
            .await
            .unwrap(),
        TatSwap::Changed {
            current: Some(t(1))
        }
    );
    let one_ns_off = t(1) + Duration::from_nanos(1);
    assert_eq!(
        store
            .swap_rate_limit_tat(k, Some(one_ns_off), t(2))
            .await
            .unwrap(),
        TatSwap::Changed {
            current: Some(t(1))
        },
        "compared to the nanosecond"
    );
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(1)));
    assert_eq!(
        store
            .swap_rate_limit_tat(k, Some(t(1)), t(2))
            .await
            .unwrap(),
        TatSwap::Swapped
    );
    assert_eq!(store.rate_limit_tat(k).await.unwrap(), Some(t(2)));
    // Moving a TAT back is allowed too (the limiter never does, a host may).
    assert_eq!(
        store
            .swap_rate_limit_tat(k, Some(t(2)), t(0))
            .await
            .unwrap(),
        TatSwap::Swapped
    );

    let other = "conformance-rl-cas-other";
    assert_eq!(store.rate_limit_tat(other).await.unwrap(), None);
    assert_eq!(
        store
            .swap_rate_limit_tat(other, Some(t(0)), t(5))
            .await
            .unwrap(),
        TatSwap::Changed { current: None }
    );
    assert_eq!(store.rate_limit_tat(other).await.unwrap(), None);

    let long = "k".repeat(crate::ratelimit::MAX_KEY_LEN + 1);
    for bad in ["", "a\nb", long.as_str()] {
        assert!(matches!(
            store.rate_limit_tat(bad).await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            store.swap_rate_limit_tat(bad, None, t(1)).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
    assert!(matches!(
        store
            .swap_rate_limit_tat("conformance-rl-range", None, before_1970)
            .await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        store.rate_limit_tat("conformance-rl-range").await.unwrap(),
        None
    );
}

/// Of 16 concurrent swaps from one expected value, exactly one wins and
/// the others report the winner's TAT.
pub async fn rate_limit_concurrent_swaps_have_one_winner(store: &dyn Store) {
    let k = "conformance-rl-race";
    for round in 0..2u64 {
        let expected = store.rate_limit_tat(k).await.unwrap();
        let racers =
            (0..16u64).map(|i| store.swap_rate_limit_tat(k, expected, t(100 * round + i + 10)));
        let outcomes: Vec<TatSwap> = join_all(racers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let wins = outcomes.iter().filter(|o| **o == TatSwap::Swapped).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        let stored = store.rate_limit_tat(k).await.unwrap();
        assert!(stored.is_some() && stored != expected);
        for o in outcomes {
            if let TatSwap::Changed { current } = o {
                assert_eq!(current, stored, "a loser sees the winner's TAT");
            }
        }
    }
}

/// Purging deletes the TATs at or before `now` and keeps later ones.
pub async fn rate_limit_purge_drops_only_expired(store: &dyn Store) {
    let (a, b) = ("conformance-rl-purge-a", "conformance-rl-purge-b");
    store.swap_rate_limit_tat(a, None, t(1_000)).await.unwrap();
    store.swap_rate_limit_tat(b, None, t(2_000)).await.unwrap();
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
