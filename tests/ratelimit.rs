//! Rate limits (issue 6): GCRA exactness on a manual clock, tiers, header
//! values, typed errors, the key bound, concurrency, the store-backed
//! limiter on `MemoryStore` and on SQLite files, and two processes sharing
//! one SQLite file.
//!
//! `two_processes_share_one_limit` runs this test binary as its children
//! (`child_hammer` is ignored in normal runs and started with `--ignored`
//! and an environment variable).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use consentry::Error;
use consentry::clock::ManualClock;
use consentry::ratelimit::{Decision, MAX_KEY_LEN, RateLimiter, StoreRateLimiter, Tier};
use consentry::store::MemoryStore;

fn manual() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

fn limiter(clock: &ManualClock) -> RateLimiter {
    RateLimiter::builder()
        .clock(Arc::new(clock.clone()))
        .build()
}

/// How many of `n` checks of `key` pass, all at the clock's current instant.
fn passes(limiter: &RateLimiter, key: &str, tier: &Tier, n: usize) -> usize {
    (0..n)
        .filter(|_| limiter.check(key, tier).unwrap().allowed)
        .count()
}

#[test]
fn free_passes_exactly_60_of_100_and_recovers_at_one_per_second() {
    let clock = manual();
    let limiter = limiter(&clock);
    let free = Tier::free();
    assert_eq!(passes(&limiter, "user:ada", &free, 100), 60);
    let denied = limiter.check("user:ada", &free).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert_eq!(denied.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(denied.reset_after, Duration::from_secs(60));
    // Another key is not affected.
    assert_eq!(passes(&limiter, "user:bob", &free, 100), 60);

    clock.advance(Duration::from_millis(999));
    assert_eq!(passes(&limiter, "user:ada", &free, 10), 0, "not yet");
    clock.advance(Duration::from_millis(1));
    assert_eq!(passes(&limiter, "user:ada", &free, 10), 1, "after 1 s, one");
    clock.advance(Duration::from_secs(10));
    assert_eq!(passes(&limiter, "user:ada", &free, 100), 10, "10 s, 10");
    clock.advance(Duration::from_secs(60));
    assert_eq!(passes(&limiter, "user:ada", &free, 100), 60, "60 s, all");
    // Idle for longer than the period gives no more than the burst.
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(passes(&limiter, "user:ada", &free, 100), 60);
}

#[test]
fn over_a_long_run_the_rate_is_the_tiers() {
    // One request every 100 ms for 10 minutes: 60 per minute pass, plus
    // the initial burst.
    let clock = manual();
    let limiter = limiter(&clock);
    let mut allowed = 0;
    for _ in 0..6_000 {
        allowed += usize::from(limiter.check("k", &Tier::free()).unwrap().allowed);
        clock.advance(Duration::from_millis(100));
    }
    assert_eq!(allowed, 60 + 599);
}

#[test]
fn pro_and_enterprise_limits() {
    for (tier, limit, interval_ms) in [(Tier::pro(), 1_000, 60), (Tier::enterprise(), 5_000, 12)] {
        let clock = manual();
        let limiter = limiter(&clock);
        assert_eq!(passes(&limiter, "k", &tier, limit + 500), limit);
        clock.advance(Duration::from_millis(interval_ms));
        assert_eq!(passes(&limiter, "k", &tier, 10), 1);
        clock.advance(Duration::from_millis(interval_ms * 5 - 1));
        assert_eq!(passes(&limiter, "k", &tier, 10), 4);
        clock.advance(Duration::from_secs(60));
        assert_eq!(passes(&limiter, "k", &tier, limit + 1), limit);
    }
    let custom = Tier::new("partner", 7, Duration::from_secs(1)).unwrap();
    let clock = manual();
    assert_eq!(passes(&limiter(&clock), "k", &custom, 20), 7);
}

fn header_text(d: &Decision) -> Vec<String> {
    d.headers()
        .iter()
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
        .collect()
}

#[test]
fn header_values() {
    let clock = manual();
    let limiter = limiter(&clock);
    let free = Tier::free();
    let first = limiter.check("h", &free).unwrap();
    assert_eq!(
        header_text(&first),
        [
            "ratelimit-limit: 60",
            "ratelimit-remaining: 59",
            "ratelimit-reset: 1"
        ]
    );
    for _ in 0..59 {
        limiter.check("h", &free).unwrap();
    }
    clock.advance(Duration::from_millis(300));
    let denied = limiter.check("h", &free).unwrap();
    assert_eq!(denied.retry_after, Some(Duration::from_millis(700)));
    assert_eq!(
        header_text(&denied),
        [
            "ratelimit-limit: 60",
            "ratelimit-remaining: 0",
            "ratelimit-reset: 60", // 59.7 s, rounded up
            "retry-after: 1",      // 0.7 s, rounded up
        ]
    );
    let mut map = http::HeaderMap::new();
    map.insert("ratelimit-remaining", "stale".parse().unwrap());
    denied.write_headers(&mut map);
    assert_eq!(map["ratelimit-remaining"], "0");
    assert_eq!(map[http::header::RETRY_AFTER], "1");
    assert_eq!(map.len(), 4);

    // A daily tier: Retry-After counts whole seconds of a long wait.
    let daily = Tier::new("daily", 2, Duration::from_secs(86_400)).unwrap();
    limiter.check("d", &daily).unwrap();
    limiter.check("d", &daily).unwrap();
    let denied = limiter.check("d", &daily).unwrap();
    assert!(header_text(&denied).contains(&"retry-after: 43200".to_owned()));
    assert!(header_text(&denied).contains(&"ratelimit-reset: 86400".to_owned()));
}

#[tokio::test]
async fn bad_keys_and_tier_parameters_are_typed_errors() {
    let limiter = RateLimiter::new();
    let shared = StoreRateLimiter::new(MemoryStore::new());
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for bad in ["", "a\nb", "nul\0", "\u{7f}", long.as_str()] {
        let e = limiter.check(bad, &Tier::free()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    what: "rate limit key",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
        let e = shared.check(bad, &Tier::free()).await.unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput {
                what: "rate limit key",
                ..
            }
        ));
    }
    // Any other text is a key, up to the bound.
    for good in ["ключ", "ip:2001:db8::1", "k".repeat(MAX_KEY_LEN).as_str()] {
        assert!(limiter.check(good, &Tier::free()).unwrap().allowed);
        assert!(shared.check(good, &Tier::free()).await.unwrap().allowed);
    }
    let minute = Duration::from_secs(60);
    for (name, limit, period) in [
        ("", 1, minute),
        ("has space", 1, minute),
        ("x".repeat(33).as_str(), 1, minute),
        ("zero", 0, minute),
        ("huge", 1_000_000_001, minute),
        ("instant", 1, Duration::ZERO),
        ("too-long", 1, Duration::from_secs(367 * 86_400)),
        ("too-fast", 2_000, Duration::from_millis(1)),
    ] {
        let e = Tier::new(name, limit, period).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    what: "rate limit tier",
                    ..
                }
            ),
            "{name}: {e}"
        );
        assert_eq!(e.kind(), consentry::ErrorKind::InvalidInput);
    }
    assert!(Tier::new("edge", 1_000, Duration::from_millis(1)).is_ok()); // 1 µs
    assert!(Tier::new("year", 1, Duration::from_secs(366 * 86_400)).is_ok());
}

#[test]
fn the_key_bound_holds() {
    // One shard of 100: deterministic.
    let clock = manual();
    let limiter = RateLimiter::builder()
        .clock(Arc::new(clock.clone()))
        .shards(1)
        .max_keys(100)
        .build();
    let free = Tier::free();
    for i in 0..100 {
        assert!(limiter.check(&format!("k{i}"), &free).unwrap().allowed);
    }
    // Full of keys still limited (TAT 1 s ahead): a newcomer is refused.
    let refused = limiter.check("newcomer", &free).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(limiter.len(), 100);
    // Tracked keys keep their state.
    assert_eq!(passes(&limiter, "k0", &free, 100), 59);
    clock.advance(Duration::from_secs(1));
    // k1..k99 have expired and make room; k0 is still limited and stays.
    assert!(limiter.check("newcomer", &free).unwrap().allowed);
    assert_eq!(limiter.len(), 2);
    assert_eq!(passes(&limiter, "k0", &free, 100), 1);

    // Many shards, a stream of 20,000 distinct keys 10 ms apart: about 100
    // are live at any time; the count never passes the bound.
    let clock = manual();
    let limiter = RateLimiter::builder()
        .clock(Arc::new(clock.clone()))
        .max_keys(512)
        .shards(8)
        .build();
    let mut most = 0;
    for i in 0..20_000 {
        assert!(
            limiter
                .check(&format!("stream-{i}"), &free)
                .unwrap()
                .allowed
        );
        let len = limiter.len();
        assert!(len <= 512, "{len} keys tracked");
        most = most.max(len);
        clock.advance(Duration::from_millis(10));
    }
    assert!(
        most > 400,
        "expired keys are swept only when a shard fills ({most})"
    );
    clock.advance(Duration::from_secs(1));
    limiter.purge_expired();
    assert!(limiter.is_empty());
}

#[test]
fn threads_never_exceed_the_limit() {
    let clock = manual();
    let limiter = limiter(&clock);
    let tiers = [Tier::free(), Tier::pro()];
    let allowed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut n = [0usize; 2];
                    for _ in 0..1_500 {
                        for (i, tier) in tiers.iter().enumerate() {
                            let key = format!("thread-{}", tier.name());
                            n[i] += usize::from(limiter.check(&key, tier).unwrap().allowed);
                        }
                    }
                    n
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold([0, 0], |a, b| [a[0] + b[0], a[1] + b[1]])
    });
    assert_eq!(allowed, [60, 1_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_never_exceed_the_limit() {
    let clock = manual();
    let limiter = Arc::new(limiter(&clock));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let mut n = 0;
                for _ in 0..50 {
                    n += usize::from(limiter.check("task", &Tier::free()).unwrap().allowed);
                    tokio::task::yield_now().await;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 60);
}

/// A tiny xorshift, so the script is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_backed_matches_in_memory_on_memory_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = consentry::store::SqliteStore::open(dir.path().join("limits.db"))
        .await
        .unwrap();
    let clock = manual();
    let at = |c: &ManualClock| Arc::new(c.clone());
    let memory_limiter = limiter(&clock);
    let on_memory = StoreRateLimiter::new(MemoryStore::new()).with_clock(at(&clock));
    let on_sqlite = StoreRateLimiter::new(sqlite.clone()).with_clock(at(&clock));
    let tiers = [
        Tier::free(),
        Tier::pro(),
        Tier::new("three", 3, Duration::from_secs(10)).unwrap(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut allowed, mut denied) = (0, 0);
    for step in 0..1_500 {
        let key = format!("user:{}", rng.next(4));
        let tier = &tiers[usize::try_from(rng.next(3)).unwrap()];
        let a = memory_limiter.check(&key, tier).unwrap();
        let b = on_memory.check(&key, tier).await.unwrap();
        let c = on_sqlite.check(&key, tier).await.unwrap();
        assert_eq!(a, b, "step {step}");
        assert_eq!(a, c, "step {step}");
        if a.allowed {
            allowed += 1;
        } else {
            denied += 1;
        }
        if rng.next(4) == 0 {
            clock.advance(Duration::from_millis(rng.next(3_000)));
        }
    }
    assert!(allowed > 100 && denied > 100, "{allowed} / {denied}");

    // Purging expired rows changes no decision.
    clock.advance(Duration::from_secs(5));
    on_sqlite.purge_expired().await.unwrap();
    on_memory.purge_expired().await.unwrap();
    for key in (0..4).map(|i| format!("user:{i}")) {
        let a = memory_limiter.check(&key, &tiers[2]).unwrap();
        assert_eq!(on_memory.check(&key, &tiers[2]).await.unwrap(), a);
        assert_eq!(on_sqlite.check(&key, &tiers[2]).await.unwrap(), a);
    }
    sqlite.close().await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_sqlite_limit_survives_reopening_and_purge_drops_only_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.db");
    let clock = manual();
    let tier = Tier::new("three", 3, Duration::from_secs(30)).unwrap();
    let store = consentry::store::SqliteStore::open(&path).await.unwrap();
    let limiter = StoreRateLimiter::new(store.clone()).with_clock(Arc::new(clock.clone()));
    for _ in 0..3 {
        assert!(limiter.check("k", &tier).await.unwrap().allowed);
    }
    assert!(limiter.check("short", &Tier::free()).await.unwrap().allowed);
    drop(limiter);
    store.close().await.unwrap();

    let store = consentry::store::SqliteStore::open(&path).await.unwrap();
    let limiter = StoreRateLimiter::new(store.clone()).with_clock(Arc::new(clock.clone()));
    let denied = limiter.check("k", &tier).await.unwrap();
    assert!(!denied.allowed, "the state is in the file");
    assert_eq!(denied.retry_after, Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.purge_expired().await.unwrap(), 1, "only `short`");
    assert!(!limiter.check("k", &tier).await.unwrap().allowed);
    store.close().await.unwrap();
}

#[cfg(feature = "sqlite")]
const ENV: &str = "CONSENTRY_RATELIMIT_CHILD";
#[cfg(feature = "sqlite")]
/// The shared tier: a long period, so that no capacity comes back while
/// the test runs (one request per 288 s).
fn shared_tier() -> Tier {
    Tier::new("shared", 300, Duration::from_secs(86_400)).unwrap()
}
#[cfg(feature = "sqlite")]
const TASKS_PER_CHILD: usize = 2;
#[cfg(feature = "sqlite")]
const REQUESTS_PER_TASK: usize = 250;

/// The child: opens the shared file, says it is ready, waits for the start
/// file, then hammers one key from two tasks on the system clock and
/// prints how many requests passed.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by two_processes_share_one_limit as a child process"]
async fn child_hammer() {
    let args: Vec<String> = std::env::var(ENV)
        .unwrap()
        .split('\n')
        .map(str::to_owned)
        .collect();
    let [db, ready, go] = &args[..] else {
        panic!("bad child arguments")
    };
    let store = consentry::store::SqliteStore::open(db).await.unwrap();
    let limiter = StoreRateLimiter::new(store.clone());
    std::fs::write(ready, b"ready").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(go).exists() {
        assert!(std::time::Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_micros(200));
    }
    let tasks: Vec<_> = (0..TASKS_PER_CHILD)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let tier = shared_tier();
                let mut allowed = 0;
                for _ in 0..REQUESTS_PER_TASK {
                    allowed +=
                        usize::from(limiter.check("shared:key", &tier).await.unwrap().allowed);
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap();
    }
    println!("ALLOWED {allowed}");
    drop(limiter);
    store.close().await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    // Migrate once up front, as a deployed application would have.
    consentry::store::SqliteStore::open(&db)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let go = dir.path().join("go");
    let mut children = Vec::new();
    let mut ready_files = Vec::new();
    for i in 0..2 {
        let ready = dir.path().join(format!("ready-{i}"));
        let args = [
            db.to_str().unwrap(),
            ready.to_str().unwrap(),
            go.to_str().unwrap(),
        ]
        .join("\n");
        children.push(
            tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "child_hammer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV, &args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
        ready_files.push(ready);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready_files.iter().all(|r| r.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "children never got ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::write(&go, b"go").unwrap();

    let mut per_child = Vec::new();
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let allowed: usize = stdout
            .lines()
            .find_map(|l| l.split_once("ALLOWED ").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("child printed no count: {stdout}"))
            .trim()
            .parse()
            .unwrap();
        per_child.push(allowed);
    }
    let total: usize = per_child.iter().sum();
    println!("allowed per child: {per_child:?}");
    let requests = 2 * TASKS_PER_CHILD * REQUESTS_PER_TASK;
    assert!(requests > 300);
    assert!(total <= 300, "the limit was exceeded: {per_child:?}");
    assert_eq!(total, 300, "every unit of capacity was used: {per_child:?}");

    // The parent sees the same, exhausted, limit.
    let store = consentry::store::SqliteStore::open(&db).await.unwrap();
    let denied = StoreRateLimiter::new(store.clone())
        .check("shared:key", &shared_tier())
        .await
        .unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after.unwrap() <= Duration::from_secs(288));
    store.close().await.unwrap();
}
