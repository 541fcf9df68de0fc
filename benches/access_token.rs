//! `Integrations::access_token` against its floors, in the same run.
//! Criterion ids (group/function):
//!
//! - `access_token/floor/vault_get_int_pk(read+xchacha_decrypt_200B)`:
//!   prepared rusqlite point read of a 300-byte blob by INTEGER primary key
//!   and one XChaCha20-Poly1305 decryption of 200 bytes (the vault-get
//!   floor of issue 2).
//! - `access_token/access_token/valid_sqlite_current_thread_rt` and
//!   `access_token/access_token/valid_sqlite_multi_thread_rt`: a valid,
//!   consented token on `SqliteStore` (one store read of connection +
//!   consent + credential, one decryption), on a current-thread and on a
//!   2-worker tokio runtime. The `_spin0` variants do the same on a store
//!   opened with `SqliteOptions::spin(Duration::ZERO)` (caller and SQLite
//!   worker park at once instead of polling for each other first). The
//!   `_audit_off` variant runs with `IntegrationsBuilder::audit(false)`: the
//!   difference is what the queued `credential.read` audit entry costs. In
//!   the loop every call is identical, so the audit log merges the entries
//!   (`AuditLog::record`); `_distinct_requests` runs each call in its own
//!   `RequestContext` (a new request id), so every call writes its own
//!   entry, as in a web server.
//! - `refresh/loopback_round_trip`: one GET to the same loopback server.
//! - `refresh/single_caller`: one caller, expired token: a refresh grant
//!   against a loopback token endpoint plus the store write.
//! - `refresh/1000_callers`: 1,000 concurrent callers on an expired token;
//!   the endpoint must see exactly one refresh per batch (asserted).
//! - `refresh/1000_callers_valid_token` and `refresh/1000_noop_tasks`: the
//!   same 1,000 spawned callers with nothing to refresh, and doing nothing,
//!   to separate coordination cost from the refresh.
//!
//! Run: `cargo bench --bench access_token`. Results in docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use consentry::clock::ManualClock;
use consentry::connector::{AccountSource, ClientAuth, OAuth2Connector};
use consentry::http::ReqwestClient;
use consentry::store::{SqliteOptions, SqliteStore};
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{ConnectionId, Integrations, Purpose, UserId};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::params;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A loopback token endpoint (HTTP/1.1 keep-alive): answers the code
/// exchange, refresh grants (counted) and userinfo.
async fn token_server(refreshes: Arc<AtomicU64>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let refreshes = refreshes.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let answer = if path == "/userinfo" {
                        r#"{"sub":"bench-user","email":"bench@example.test"}"#.to_owned()
                    } else {
                        let n = if body.starts_with(b"grant_type=refresh_token") {
                            refreshes.fetch_add(1, Ordering::SeqCst) + 1
                        } else {
                            0
                        };
                        format!(
                            r#"{{"access_token":"at-{n}-{pad}","refresh_token":"rt-{n}","expires_in":3600,"token_type":"Bearer"}}"#,
                            pad = "x".repeat(180)
                        )
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// An `Integrations` over a fresh SQLite file at `path`, with one
/// connection (through the loopback token endpoint) and consent for
/// `purpose`.
async fn connected(
    path: std::path::PathBuf,
    options: SqliteOptions,
    port: u16,
    clock: &ManualClock,
    user: &UserId,
    purpose: &Purpose,
    audit: bool,
) -> (Integrations, ConnectionId) {
    let base = format!("http://127.0.0.1:{port}");
    let connector = OAuth2Connector::builder("loopback".parse().unwrap())
        .authorization_url(Url::parse(&format!("{base}/authorize")).unwrap())
        .token_url(Url::parse(&format!("{base}/token")).unwrap())
        .client_id("bench")
        .client_auth(ClientAuth::None)
        .account(AccountSource::userinfo(
            Url::parse(&format!("{base}/userinfo")).unwrap(),
        ))
        .build()
        .unwrap();
    let integrations = Integrations::builder()
        .store(SqliteStore::open_with(path, options).await.unwrap())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri(Url::parse("http://127.0.0.1/cb").unwrap())
        .clock(clock.clone())
        .audit(audit)
        .build()
        .unwrap();
    let start = integrations
        .begin_connect(user, &"loopback".parse().unwrap(), &[])
        .await
        .unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let callback = Url::parse(&format!("http://127.0.0.1/cb?code=c&state={state}")).unwrap();
    let c = integrations
        .complete_connect(user, &callback)
        .await
        .unwrap();
    integrations
        .grant_consent(user, &c.id, purpose)
        .await
        .unwrap();
    (integrations, c.id)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refreshes = Arc::new(AtomicU64::new(0));
    let clock = ManualClock::starting_now();
    let purpose = Purpose::new("bench").unwrap();
    let user = UserId::new("bench-user").unwrap();

    let port = rt.block_on(token_server(refreshes.clone()));
    let (integrations, connection) = rt.block_on(connected(
        dir.path().join("bench.db"),
        SqliteOptions::default(),
        port,
        &clock,
        &user,
        &purpose,
        true,
    ));
    // The same without the audit log (`IntegrationsBuilder::audit(false)`),
    // to see what the `credential.read` entry costs.
    let (integrations_noaudit, connection_noaudit) = rt.block_on(connected(
        dir.path().join("bench-noaudit.db"),
        SqliteOptions::default(),
        port,
        &clock,
        &user,
        &purpose,
        false,
    ));
    // The same on a store whose caller and worker do not poll for each
    // other (`SqliteOptions::spin(ZERO)`): for the loaded-machine case.
    let (integrations_nospin, connection_nospin) = rt.block_on(connected(
        dir.path().join("bench-nospin.db"),
        SqliteOptions::default().spin(Duration::ZERO),
        port,
        &clock,
        &user,
        &purpose,
        true,
    ));

    // --- the floor: vault get on a bare table ----------------------------
    let floor = rusqlite::Connection::open(dir.path().join("floor.db")).unwrap();
    floor.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)").unwrap();
    let cipher = XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap();
    let aad = [0u8; 120];
    {
        let tx = floor.unchecked_transaction().unwrap();
        for n in 0..10_000i64 {
            let nonce = [n as u8; 24];
            let mut buf = vec![b'A'; 200];
            let tag = cipher
                .encrypt_inout_detached(&XNonce::from(nonce), &aad, (&mut buf[..]).into())
                .unwrap();
            let mut blob = nonce.to_vec();
            blob.extend_from_slice(&[0u8; 60]);
            blob.extend_from_slice(&buf);
            blob.extend_from_slice(&tag);
            tx.execute("INSERT INTO t VALUES (?1, ?2)", params![n, blob])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    let mut g = c.benchmark_group("access_token");
    g.measurement_time(Duration::from_secs(4)).sample_size(60);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    g.bench_function("floor/vault_get_int_pk(read+xchacha_decrypt_200B)", |b| {
        let mut stmt = floor
            .prepare_cached("SELECT blob FROM t WHERE id = ?1")
            .unwrap();
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let blob: Vec<u8> = stmt.query_row([(x % 10_000) as i64], |r| r.get(0)).unwrap();
            let nonce = XNonce::try_from(&blob[..24]).unwrap();
            let tag = chacha20poly1305::Tag::try_from(&blob[284..300]).unwrap();
            let mut plain = blob[84..284].to_vec();
            cipher
                .decrypt_inout_detached(&nonce, &aad, (&mut plain[..]).into(), &tag)
                .unwrap();
            black_box(plain);
        })
    });
    g.bench_function("access_token/valid_sqlite_current_thread_rt", |b| {
        b.to_async(&current).iter(|| async {
            black_box(
                integrations
                    .access_token(&user, &connection, &purpose)
                    .await
                    .unwrap(),
            )
        })
    });
    // Each call in its own request context (a distinct request id), as in
    // a web server: no two audit entries are identical, none is merged.
    let mut request = 0u64;
    g.bench_function(
        "access_token/valid_sqlite_current_thread_rt_distinct_requests",
        |b| {
            b.to_async(&current).iter(|| {
                request += 1;
                let ctx =
                    consentry::audit::RequestContext::new().request_id(format!("req-{request}"));
                let (integrations, user, connection, purpose) =
                    (&integrations, &user, &connection, &purpose);
                ctx.scope(async move {
                    black_box(
                        integrations
                            .access_token(user, connection, purpose)
                            .await
                            .unwrap(),
                    )
                })
            })
        },
    );
    g.bench_function(
        "access_token/valid_sqlite_current_thread_rt_audit_off",
        |b| {
            b.to_async(&current).iter(|| async {
                black_box(
                    integrations_noaudit
                        .access_token(&user, &connection_noaudit, &purpose)
                        .await
                        .unwrap(),
                )
            })
        },
    );
    g.bench_function("access_token/valid_sqlite_multi_thread_rt", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                integrations
                    .access_token(&user, &connection, &purpose)
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function("access_token/valid_sqlite_current_thread_rt_spin0", |b| {
        b.to_async(&current).iter(|| async {
            black_box(
                integrations_nospin
                    .access_token(&user, &connection_nospin, &purpose)
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function("access_token/valid_sqlite_multi_thread_rt_spin0", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                integrations_nospin
                    .access_token(&user, &connection_nospin, &purpose)
                    .await
                    .unwrap(),
            )
        })
    });
    g.finish();

    // --- refresh: one caller, then 1,000 at once ---------------------------
    let mut g = c.benchmark_group("refresh");
    g.measurement_time(Duration::from_secs(6)).sample_size(20);
    let http = ReqwestClient::new().unwrap();
    let userinfo = format!("http://127.0.0.1:{port}/userinfo");
    g.bench_function("loopback_round_trip", |b| {
        b.to_async(&rt).iter(|| async {
            let request = consentry::http::Request::get(userinfo.as_str())
                .body(Vec::new())
                .unwrap();
            black_box(
                consentry::http::HttpClient::send(&http, request)
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function("single_caller", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(Duration::from_secs(3_600));
                let before = refreshes.load(Ordering::SeqCst);
                let start = Instant::now();
                rt.block_on(integrations.access_token(&user, &connection, &purpose))
                    .unwrap();
                total += start.elapsed();
                assert_eq!(refreshes.load(Ordering::SeqCst), before + 1);
            }
            total
        })
    });
    g.bench_function("1000_callers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(Duration::from_secs(3_600));
                let before = refreshes.load(Ordering::SeqCst);
                let start = Instant::now();
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(1000);
                    for _ in 0..1000 {
                        let (i, u, c, p) = (
                            integrations.clone(),
                            user.clone(),
                            connection.clone(),
                            purpose.clone(),
                        );
                        tasks.push(tokio::spawn(
                            async move { i.access_token(&u, &c, &p).await },
                        ));
                    }
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                });
                total += start.elapsed();
                assert_eq!(
                    refreshes.load(Ordering::SeqCst),
                    before + 1,
                    "exactly one refresh for 1,000 callers"
                );
            }
            total
        })
    });
    g.bench_function("1000_callers_valid_token", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(1000);
                    for _ in 0..1000 {
                        let (i, u, c, p) = (
                            integrations.clone(),
                            user.clone(),
                            connection.clone(),
                            purpose.clone(),
                        );
                        tasks.push(tokio::spawn(
                            async move { i.access_token(&u, &c, &p).await },
                        ));
                    }
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("1000_noop_tasks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(1000);
                    for _ in 0..1000 {
                        let (i, u, c, p) = (
                            integrations.clone(),
                            user.clone(),
                            connection.clone(),
                            purpose.clone(),
                        );
                        tasks.push(tokio::spawn(async move { black_box((i, u, c, p)) }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
