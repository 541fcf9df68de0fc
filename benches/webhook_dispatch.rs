//! Dispatcher throughput: 10,000 messages delivered to a receiver on
//! 127.0.0.1 by `Dispatcher::run()` over a `SqliteStore` (claim under a
//! lease, sign, POST, record the attempt), against the floor: the same
//! 10,000 POSTs (same body, same headers, signed once beforehand) sent by
//! one reused reqwest client with 64 requests in flight and no store.
//!
//! The dispatcher's clock stops when the receiver has every message *and*
//! the store has no pending delivery left, so recording is included.
//! Publishing (one transaction per message) happens before the clock
//! starts.
//!
//! Before the criterion groups, five interleaved pairs (floor, then
//! dispatcher) are timed and their ratios printed: on a shared machine the
//! load changes between criterion's two groups, and interleaving gives
//! both sides the same conditions.
//!
//! `cargo bench --bench webhook_dispatch`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use consentry::store::SqliteStore;
use consentry::vault::Keyring;
use consentry::webhook::{
    Actor, Dispatcher, DispatcherOptions, EndpointConfig, WebhookSecret, standard,
};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const MESSAGES: usize = 10_000;
const IN_FLIGHT: usize = 64;

fn payload(i: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "invoice.paid",
        "data": {"invoice": format!("in_{i:08}"), "amount": 4200, "currency": "eur", "customer": "cus_5f3a9c"},
    })
}

async fn receiver(count: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, "ok")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The floor: 10,000 POSTs, 64 in flight, one reused client.
async fn floor(client: &reqwest::Client, url: &str, count: &AtomicUsize) -> Duration {
    let secret = WebhookSecret::generate().unwrap();
    let body = serde_json::to_vec(&payload(0)).unwrap();
    let signed = standard::sign(
        &secret,
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        1_700_000_000,
        &body,
    )
    .unwrap();
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let (body, headers) = (Arc::new(body), Arc::new(headers));
    let next = Arc::new(AtomicUsize::new(0));
    let before = count.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, url, body, headers, next) = (
            client.clone(),
            url.to_owned(),
            body.clone(),
            headers.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < MESSAGES {
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone());
                for (n, v) in headers.iter() {
                    req = req.header(n, v);
                }
                let resp = req.send().await.unwrap();
                assert!(resp.status().is_success());
                resp.bytes().await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let took = start.elapsed();
    assert_eq!(count.load(Ordering::Relaxed) - before, MESSAGES);
    took
}

struct Setup {
    dispatcher: Dispatcher,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup(url: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let options = DispatcherOptions::default()
        .allow_insecure_loopback(true)
        .concurrency(IN_FLIGHT)
        .poll_interval(Duration::from_millis(1));
    let dispatcher = Dispatcher::builder()
        .store(SqliteStore::open(&db).await.unwrap())
        .keyring(Keyring::generate().unwrap())
        .options(options)
        .build()
        .unwrap();
    dispatcher
        .create_endpoint(&Actor::admin("bench"), EndpointConfig::new(url))
        .await
        .unwrap();
    Setup {
        dispatcher,
        db,
        _dir: dir,
    }
}

fn pending(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM consentry_webhook_deliveries WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Publishes 10,000 messages (not timed), then times `run()` until all
/// arrived and were recorded.
async fn dispatch(s: &Setup, count: &AtomicUsize) -> Duration {
    for i in 0..MESSAGES {
        s.dispatcher
            .publish("invoice.paid", payload(i), None)
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let before = count.load(Ordering::Relaxed);
    let start = Instant::now();
    let worker = tokio::spawn(s.dispatcher.run());
    let deadline = start + Duration::from_secs(300);
    loop {
        // Query the store only once everything arrived: the query blocks a
        // runtime thread.
        if count.load(Ordering::Relaxed) - before >= MESSAGES && pending(&conn) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dispatch did not finish in 300 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = start.elapsed();
    worker.abort();
    // Wait until it is gone, so no claim of the next iteration's messages
    // is left behind in an aborted worker.
    let _ = worker.await;
    assert_eq!(
        count.load(Ordering::Relaxed) - before,
        MESSAGES,
        "a message arrived twice"
    );
    took
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let url = rt.block_on(receiver(count.clone()));
    let client = reqwest::Client::new();
    let setup = rt.block_on(setup(&url));

    let mut ratios = Vec::new();
    for pair in 0..5 {
        let f = rt.block_on(floor(&client, &url, &count));
        let d = rt.block_on(dispatch(&setup, &count));
        let ratio = f.as_secs_f64() / d.as_secs_f64();
        println!(
            "interleaved pair {pair}: floor {:.1} ms, dispatcher {:.1} ms, dispatcher at {:.0} % of the floor",
            f.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            ratio * 100.0
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved median: dispatcher at {:.0} % of the floor",
        ratios[2] * 100.0
    );

    let mut group = c.benchmark_group("webhook_dispatch");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function(
        BenchmarkId::new("floor_reqwest_64_in_flight", MESSAGES),
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (client, url, count) = (client.clone(), url.clone(), count.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += floor(&client, &url, &count).await;
                    }
                    total
                }
            });
        },
    );
    group.bench_function(BenchmarkId::new("dispatcher_sqlite", MESSAGES), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (setup, count) = (&setup, count.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += dispatch(setup, &count).await;
                }
                total
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
