//! Rate-limit decisions per second (issue 6): the in-memory `RateLimiter`
//! on one thread and on two, and the store-backed `StoreRateLimiter` on
//! SQLite for information.
//!
//! `cargo bench --bench ratelimit`. Every in-memory benchmark cycles
//! through 10,000 distinct keys (`user:00000` ...) on the system clock
//! (the default: one `SystemTime::now()` per decision, as in production).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentry::ratelimit::{RateLimiter, StoreRateLimiter, Tier};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const KEYS: usize = 10_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("user:{i:05}")).collect()
}

/// `free`-like but never exhausted here: 10 million per minute (one
/// request per 6 µs per key), so every decision is allowed and writes a
/// new TAT.
fn huge() -> Tier {
    Tier::new("huge", 10_000_000, Duration::from_secs(60)).expect("valid tier")
}

/// Runs `per_thread` decisions on each of `threads` threads, each thread
/// starting at its own offset in the key cycle; returns the wall time.
fn run_threads(
    limiter: &RateLimiter,
    keys: &[String],
    tier: &Tier,
    threads: usize,
    per_thread: u64,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut i = t * KEYS / threads;
                for _ in 0..per_thread {
                    i = if i + 1 == KEYS { 0 } else { i + 1 };
                    black_box(limiter.check(black_box(&keys[i]), tier).ok());
                }
            });
        }
    });
    start.elapsed()
}

/// This thread's time on a CPU so far (Linux `schedstat`), or `None`
/// elsewhere.
fn on_cpu() -> Option<Duration> {
    // A yield makes the kernel bring the thread's runtime up to date
    // (otherwise it moves only at scheduler ticks).
    std::thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Like [`run_threads`], but returns the time the threads spent on a CPU,
/// averaged over them: the cost per decision per core, whatever else the
/// machine runs (wall time counts the time other processes hold the core).
fn run_threads_on_cpu(
    limiter: &RateLimiter,
    keys: &[String],
    tier: &Tier,
    threads: usize,
    per_thread: u64,
) -> Duration {
    let total: Duration = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let start = on_cpu();
                    let mut i = t * KEYS / threads;
                    for _ in 0..per_thread {
                        i = if i + 1 == KEYS { 0 } else { i + 1 };
                        black_box(limiter.check(black_box(&keys[i]), tier).ok());
                    }
                    match (start, on_cpu()) {
                        (Some(a), Some(b)) => b.saturating_sub(a).max(Duration::from_nanos(1)),
                        _ => Duration::from_nanos(1),
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .sum()
    });
    total / u32::try_from(threads).unwrap_or(1)
}

fn memory(c: &mut Criterion) {
    let keys = keys();
    let huge = huge();
    let free = Tier::free();
    let mut group = c.benchmark_group("ratelimit");
    group.throughput(Throughput::Elements(1));

    let limiter = RateLimiter::new();
    group.bench_function("memory/allowed/1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = if i + 1 == KEYS { 0 } else { i + 1 };
            limiter.check(black_box(&keys[i]), &huge)
        })
    });

    // The same without the clock read: `check_at` with one fixed time, so
    // each key's TAT runs ahead of `now` (the backlogged allowed path).
    let limiter = RateLimiter::new();
    let now = std::time::SystemTime::now();
    group.bench_function("memory/allowed/1_thread_check_at_fixed_now", |b| {
        let mut i = 0;
        b.iter(|| {
            i = if i + 1 == KEYS { 0 } else { i + 1 };
            limiter.check_at(black_box(&keys[i]), &huge, now)
        })
    });

    // `free` with every key exhausted first: the denied path (no write).
    let limiter = RateLimiter::new();
    for key in &keys {
        for _ in 0..61 {
            black_box(limiter.check(key, &free).ok());
        }
    }
    group.bench_function("memory/denied/1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = if i + 1 == KEYS { 0 } else { i + 1 };
            limiter.check(black_box(&keys[i]), &free)
        })
    });

    // The same work on one spawned thread and on two: the two-thread
    // figure is per decision over both threads (wall time / decisions).
    let limiter = RateLimiter::new();
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("memory/allowed/{threads}_threads_spawned"), |b| {
            b.iter_custom(|iters| run_threads(&limiter, &keys, &huge, threads, iters))
        });
    }
    // On-CPU time instead of wall time (Linux only): per decision per
    // thread, so equal figures for 1 and 2 threads mean the two threads do
    // not slow each other down (no shared lock, no shared cache line).
    if on_cpu().is_some() {
        group.throughput(Throughput::Elements(1));
        for threads in [1usize, 2] {
            group.bench_function(
                format!("memory/allowed/{threads}_threads_on_cpu_per_thread"),
                |b| {
                    b.iter_custom(|iters| {
                        run_threads_on_cpu(&limiter, &keys, &huge, threads, iters)
                    })
                },
            );
        }
    }
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt
        .block_on(consentry::store::SqliteStore::open(
            dir.path().join("limits.db"),
        ))
        .expect("store");
    let limiter = Arc::new(StoreRateLimiter::new(store.clone()));
    let keys: Vec<String> = keys().into_iter().take(1_000).collect();
    let huge = huge();
    let free = Tier::free();
    let mut group = c.benchmark_group("ratelimit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("store_sqlite/allowed", |b| {
        let mut i = 0;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (limiter, key, tier) = (limiter.clone(), &keys[i], &huge);
            async move { limiter.check(key, tier).await.ok() }
        })
    });
    // Exhaust `free` for every key, then measure denials (a read, no write).
    rt.block_on(async {
        for key in &keys {
            for _ in 0..61 {
                black_box(limiter.check(key, &free).await.ok());
            }
        }
    });
    group.bench_function("store_sqlite/denied", |b| {
        let mut i = 0;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (limiter, key, tier) = (limiter.clone(), &keys[i], &free);
            async move { limiter.check(key, tier).await.ok() }
        })
    });
    group.finish();
    drop(limiter);
    rt.block_on(store.close()).expect("close");
}

criterion_group!(benches, memory, sqlite);
criterion_main!(benches);
