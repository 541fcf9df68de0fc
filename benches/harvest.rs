//! Harvest throughput against floors measured in the same run.
//!
//! - `sync/consentry_sqlite`: `Integrations::sync_now` of a declared stream
//!   of 100,000 records (1,000 pages of 100, page-token paging) from a
//!   loopback server into a fresh `SqliteStore`.
//! - `sync/floor_rusqlite`: the same pages fetched with the same HTTP client
//!   (reqwest) and JSON parser, each page inserted in one transaction of 100
//!   prepared inserts with plain rusqlite (same WAL / synchronous=NORMAL).
//! - `records/consentry_1000`: `Integrations::records` of 1,000 records
//!   under consent (consent check, read, access-log entry, one
//!   transaction).
//! - `records/floor_select_1000`: a plain rusqlite `SELECT` of the same
//!   rows, collected into a `Vec`.
//! - `records/consentry_0`: a consent-checked, logged read that returns
//!   nothing (the fixed cost: one write transaction).
//!
//! Both record reads return owned rows whose drop is left out of the
//! timing on both sides.
//!
//! Memory: before the timed groups, two untimed consentry-only syncs, of
//! 200 then 1,000 pages, print `VmRSS` sampled by the server at pages 100,
//! 200, 500 and 1,000, and the peak (`VmHWM`) after each run: flat memory
//! means the 1,000-page peak is no higher than the 200-page one. The peak
//! after the timed groups is printed too.
//!
//! Run: `cargo bench --bench harvest`. Results go to docs/BENCHMARKS.md.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    unreachable_pub,
    dead_code
)]

#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use consentry::connection::AccountInfo;
use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
use consentry::http::ReqwestClient;
use consentry::secret::ClientSecret;
use consentry::store::{ConnectionStore, ConnectionWrite, SqliteStore};
use consentry::sync::SyncOptions;
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{Connection, ConnectionId, ConnectorId, Integrations, Purpose, UserId};
use criterion::{Criterion, criterion_group, criterion_main};
use http_server::{Reply, Server};

const PAGES: usize = 1_000;
const PER_PAGE: usize = 100;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The body of page `p`; `last` leaves out the next-page token.
fn page_body(p: usize, last: bool) -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..PER_PAGE)
        .map(|i| {
            let n = p * PER_PAGE + i;
            serde_json::json!({"id": format!("rec-{n:07}"), "title": format!("Record number {n}"),
                "updated_at": "2026-01-01T00:00:00Z", "score": n % 97})
        })
        .collect();
    let mut body = serde_json::json!({"items": items});
    if !last {
        body["next"] = (p + 1).to_string().into();
    }
    serde_json::to_vec(&body).unwrap()
}

/// Pre-built page bodies, so the server costs little.
fn pages() -> Arc<Vec<Vec<u8>>> {
    Arc::new((0..PAGES).map(|p| page_body(p, p + 1 == PAGES)).collect())
}

/// Serves `limit` pages (at most `PAGES`); samples `VmRSS` when a
/// consentry client asks for pages 100, 200, 500 and 1,000.
fn server(
    pages: Arc<Vec<Vec<u8>>>,
    limit: Arc<AtomicUsize>,
    rss: Arc<Mutex<Vec<(usize, u64)>>>,
) -> Server {
    Server::start_with(false, move |r| {
        let p: usize = r.q("page").map_or(0, |p| p.parse().unwrap_or(0));
        let limit = limit.load(Ordering::SeqCst).min(PAGES);
        if r.header("user-agent")
            .is_some_and(|a| a.starts_with("consentry"))
            && [99, 199, 499, 999].contains(&p)
        {
            rss.lock().unwrap().push((p + 1, rss_kib("VmRSS:")));
        }
        let p = p.min(limit - 1);
        let body = if p + 1 == limit && limit < PAGES {
            page_body(p, true)
        } else {
            pages[p].clone()
        };
        Reply::Http {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    })
}

fn connector(server: &Server) -> OAuth2Connector {
    OAuth2Connector::builder("bench".parse().unwrap())
        .authorization_url(server.url("/a").parse().unwrap())
        .token_url(server.url("/t").parse().unwrap())
        .client_id("c")
        .client_secret(ClientSecret::new("s"))
        .api_base_url(server.url("").parse().unwrap())
        .stream(
            StreamSpec::new("items")
                .unwrap()
                .with_purposes([Purpose::new("matching").unwrap()])
                .with_http(
                    HttpStream::new("/items", "/items", "/id")
                        .unwrap()
                        .with_kind("item")
                        .unwrap()
                        .with_pagination(Pagination::PageToken {
                            param: "page".into(),
                            pointer: "/next".into(),
                        }),
                ),
        )
        .build()
        .unwrap()
}

struct Setup {
    integrations: Integrations,
    user: UserId,
    conn: ConnectionId,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

async fn setup(server: &Server) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector(server))
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .sync_options(
            SyncOptions::default()
                .run_budget(Duration::from_secs(3600))
                .max_pages(1_000_000),
        )
        .build()
        .unwrap();
    let user = UserId::new("bench-user").unwrap();
    let now = SystemTime::now();
    let mut c = Connection::new(
        ConnectionId::generate().unwrap(),
        user.clone(),
        ConnectorId::new("bench").unwrap(),
        AccountInfo::new("a"),
        now,
    );
    c.access_expires_at = Some(now + Duration::from_secs(86_400 * 365));
    let sealed = integrations
        .vault()
        .seal(
            &user,
            &c.id,
            vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                "t".into(),
            )],
        )
        .await
        .unwrap();
    store
        .write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed))
        .await
        .unwrap();
    integrations
        .grant_consent(&user, &c.id, &Purpose::new("matching").unwrap())
        .await
        .unwrap();
    Setup {
        integrations,
        user,
        conn: c.id,
        _dir: dir,
        path,
    }
}

async fn floor_sync(url: &str, path: &std::path::Path, client: &reqwest::Client) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
    )
    .unwrap();
    let mut page = Some("0".to_owned());
    while let Some(p) = page {
        let body = client
            .get(format!("{url}?page={p}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let tx = db.unchecked_transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO records (id, data) VALUES (?1, ?2)")
                .unwrap();
            for item in v["items"].as_array().unwrap() {
                stmt.execute(rusqlite::params![
                    item["id"].as_str().unwrap(),
                    item.to_string()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        page = v.get("next").and_then(|n| n.as_str()).map(str::to_owned);
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rss: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let limit = Arc::new(AtomicUsize::new(PAGES));
    let server = server(pages(), limit.clone(), rss.clone());

    // Memory flatness, untimed and consentry only: 200 pages, then 1,000.
    // VmHWM only grows, so a 1,000-page peak equal to the 200-page one
    // means the extra 800 pages cost no memory.
    for n in [200, PAGES] {
        limit.store(n, Ordering::SeqCst);
        rss.lock().unwrap().clear();
        let report = rt.block_on(async {
            let s = setup(&server).await;
            s.integrations
                .sync_now(
                    &s.user,
                    &s.conn,
                    "items",
                    &Purpose::new("matching").unwrap(),
                )
                .await
                .unwrap()
        });
        assert_eq!(report.upserted as usize, n * PER_PAGE);
        println!(
            "memory, {n} pages: VmRSS samples (page, KiB) {:?}; peak VmHWM {} KiB",
            rss.lock().unwrap(),
            rss_kib("VmHWM:")
        );
    }
    limit.store(PAGES, Ordering::SeqCst);
    rss.lock().unwrap().clear();
    let url = server.url("/items");
    let client = reqwest::Client::new();

    let mut g = c.benchmark_group("sync");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(criterion::Throughput::Elements((PAGES * PER_PAGE) as u64));
    g.bench_function("consentry_sqlite", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let s = setup(server).await;
                    let purpose = Purpose::new("matching").unwrap();
                    let started = Instant::now();
                    let report = s
                        .integrations
                        .sync_now(&s.user, &s.conn, "items", &purpose)
                        .await
                        .unwrap();
                    total += started.elapsed();
                    assert_eq!(report.upserted as usize, PAGES * PER_PAGE);
                }
                total
            }
        });
    });
    g.bench_function("floor_rusqlite", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (url, client) = (&url, &client);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("floor.db");
                    let started = Instant::now();
                    floor_sync(url, &path, client).await;
                    total += started.elapsed();
                }
                total
            }
        });
    });
    g.finish();
    println!(
        "after the timed syncs: VmRSS samples (page, KiB): {:?}; peak VmHWM {} KiB",
        rss.lock().unwrap(),
        rss_kib("VmHWM:")
    );

    // records(): 1,000 records under consent against a plain SELECT.
    let small = rt.block_on(async {
        let s = setup(&server).await;
        let records: Vec<_> = (0..1000)
            .map(|n| {
                consentry::records::Record::new(
                    format!("rec-{n:07}"),
                    "item",
                    serde_json::json!({"title": format!("Record number {n}"), "score": n % 97}),
                )
                .unwrap()
            })
            .collect();
        // A stream filled in one page, like an import.
        let purpose = Purpose::new("matching").unwrap();
        s.integrations
            .import_records(&s.user, &s.conn, "items", &purpose, records)
            .await
            .unwrap();
        s
    });
    let mut g = c.benchmark_group("records");
    g.throughput(criterion::Throughput::Elements(1000));
    let purpose = Purpose::new("matching").unwrap();
    // Both sides return owned rows; their drop is left out of the timing
    // (`iter_with_large_drop`) on both sides.
    g.bench_function("consentry_1000", |b| {
        b.to_async(&rt).iter_with_large_drop(|| async {
            let r = small
                .integrations
                .records(&small.user, &small.conn, "items", &purpose)
                .await
                .unwrap();
            assert_eq!(r.len(), 1000);
            r
        });
    });
    g.bench_function("consentry_0", |b| {
        b.to_async(&rt).iter(|| async {
            let q = consentry::integrations::RecordQuery::default().after("z");
            small
                .integrations
                .records_with(&small.user, &small.conn, "items", &purpose, &q)
                .await
                .unwrap()
        });
    });
    let db = rusqlite::Connection::open(&small.path).unwrap();
    g.bench_function("floor_select_1000", |b| {
        b.iter_with_large_drop(|| {
            let mut stmt = db
                .prepare_cached(
                    "SELECT record_id, kind, data, fetched_at, purposes FROM consentry_records
                     WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND stream = ?4 ORDER BY record_id",
                )
                .unwrap();
            let rows: Vec<(String, String, String, i64, String)> = stmt
                .query_map(rusqlite::params!["", small.user.user(), small.conn.as_str(), "items"], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), 1000);
            rows
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
