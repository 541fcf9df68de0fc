//! The audit log's cost on the hot path (issue 6): `access_token` for a
//! valid, consented token on `SqliteStore` with the audit log on (every
//! call queues a `credential.read` entry; a background writer MACs and
//! commits them in batches) against the same call with it off, in the same
//! run, on two identical stores. Every call of the loop is identical, so
//! the log merges their entries (`AuditLog::record`); the
//! `distinct_requests` figures run each call in its own `RequestContext`
//! (a new request id), so each writes its own entry, as in a web server.
//! Also: `AuditLog::record` alone (distinct and identical events), and
//! `verify` per entry.
//!
//! The two configurations are measured in alternation (off, on, off, on)
//! so that the machine's load drifts over both alike; the sustained
//! figure includes the writer (when it falls behind, `record` waits).
//!
//! Run: `cargo bench --bench audit`. Results in docs/BENCHMARKS.md.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use consentry::audit::{AuditActor, AuditEvent, RequestContext};
use consentry::connector::{AccountSource, ClientAuth, OAuth2Connector};
use consentry::http::{self, HttpRequest, Response};
use consentry::store::SqliteStore;
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{ConnectionId, Integrations, Purpose, UserId};
use criterion::{Criterion, criterion_group, criterion_main};

/// A provider in a closure: the code exchange and userinfo.
fn provider() -> impl http::HttpClient {
    http::from_fn(|req: HttpRequest| async move {
        let body = if req.uri().path().ends_with("/userinfo") {
            r#"{"sub":"bench-account","email":"b@example.com"}"#
        } else {
            r#"{"access_token":"at-0123456789abcdef0123456789abcdef","token_type":"Bearer","expires_in":86400,"refresh_token":"rt-0123456789abcdef"}"#
        };
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap())
    })
}

async fn setup(path: &Path, audit: bool) -> (Integrations, ConnectionId) {
    let base = "https://provider.example";
    let connector = OAuth2Connector::builder("bench".parse().unwrap())
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
        .store(SqliteStore::open(path).await.unwrap())
        .keyring(Keyring::generate().unwrap())
        .http(provider())
        .connector(connector)
        .redirect_uri(Url::parse("https://app.example/cb").unwrap())
        .audit(audit)
        .build()
        .unwrap();
    let user = UserId::new("bench-user").unwrap();
    let start = integrations
        .begin_connect(&user, &"bench".parse().unwrap(), &[])
        .await
        .unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let callback = Url::parse(&format!("https://app.example/cb?code=c&state={state}")).unwrap();
    let c = integrations
        .complete_connect(&user, &callback)
        .await
        .unwrap();
    integrations
        .grant_consent(&user, &c.id, &Purpose::new("bench").unwrap())
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
    let dir = tempfile::tempdir().unwrap();
    let (off, off_conn) = rt.block_on(setup(&dir.path().join("off.db"), false));
    let (on, on_conn) = rt.block_on(setup(&dir.path().join("on.db"), true));
    let user = UserId::new("bench-user").unwrap();
    let purpose = Purpose::new("bench").unwrap();

    // Interleaved pairs: N sequential calls each, off then on, five times.
    let calls = 20_000;
    let mut ratios = Vec::new();
    let mut distinct_ratios = Vec::new();
    for _ in 0..5 {
        let time = |i: &Integrations, conn: &ConnectionId| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..calls {
                    black_box(i.access_token(&user, conn, &purpose).await.unwrap());
                }
                if let Some(log) = i.audit() {
                    log.flush().await.unwrap();
                }
                t.elapsed()
            })
        };
        // Each call in its own request context: no entry is merged.
        let distinct = |i: &Integrations, conn: &ConnectionId| {
            rt.block_on(async {
                let t = Instant::now();
                for n in 0..calls {
                    let ctx = RequestContext::new().request_id(format!("req-{n}"));
                    let token = ctx.scope(i.access_token(&user, conn, &purpose)).await;
                    black_box(token.unwrap());
                }
                if let Some(log) = i.audit() {
                    log.flush().await.unwrap();
                }
                t.elapsed()
            })
        };
        let a = time(&off, &off_conn);
        let b = time(&on, &on_conn);
        let a2 = distinct(&off, &off_conn);
        let b2 = distinct(&on, &on_conn);
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
        distinct_ratios.push(b2.as_secs_f64() / a2.as_secs_f64());
        let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls);
        println!(
            "interleaved: off {:.2} µs/call, on {:.2} µs/call (flush included), ratio {:.3}; \
             distinct requests: off {:.2}, on {:.2}, ratio {:.3}",
            us(a),
            us(b),
            b.as_secs_f64() / a.as_secs_f64(),
            us(a2),
            us(b2),
            b2.as_secs_f64() / a2.as_secs_f64()
        );
    }
    ratios.sort_by(f64::total_cmp);
    distinct_ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved median ratio on/off: {:.3}; distinct requests: {:.3}",
        ratios[2], distinct_ratios[2]
    );

    let mut g = c.benchmark_group("audit");
    g.measurement_time(Duration::from_secs(4)).sample_size(60);
    g.bench_function("access_token/audit_off", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(off.access_token(&user, &off_conn, &purpose).await.unwrap())
        })
    });
    g.bench_function("access_token/audit_on", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(on.access_token(&user, &on_conn, &purpose).await.unwrap()) })
    });
    let mut request = 0u64;
    g.bench_function("access_token/audit_on_distinct_requests", |b| {
        b.to_async(&rt).iter(|| {
            request += 1;
            let ctx = RequestContext::new().request_id(format!("req-{request}"));
            let (on, user, on_conn, purpose) = (&on, &user, &on_conn, &purpose);
            ctx.scope(
                async move { black_box(on.access_token(user, on_conn, purpose).await.unwrap()) },
            )
        })
    });
    let log = on.audit().unwrap().clone();
    // Every event differs (a counter in its details): one entry each.
    let mut n = 0u64;
    g.bench_function("record_only", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let e = AuditEvent::new("bench.event", AuditActor::System)
                .unwrap()
                .subject(&user)
                .detail("n", n);
            let log = &log;
            async move { log.record(e).await.unwrap() }
        })
    });
    // Identical events: merged into one entry per batch.
    g.bench_function("record_identical", |b| {
        b.to_async(&rt).iter(|| async {
            let e = AuditEvent::new("bench.event", AuditActor::System)
                .unwrap()
                .subject(&user);
            log.record(e).await.unwrap();
        })
    });
    g.finish();

    rt.block_on(log.flush()).unwrap();
    let t = Instant::now();
    let report = rt.block_on(log.verify()).unwrap();
    let per = t.elapsed().as_secs_f64() * 1e9 / report.entries.max(1) as f64;
    println!("verify: {} entries, {per:.0} ns per entry", report.entries);
}

criterion_group!(benches, bench);
criterion_main!(benches);
