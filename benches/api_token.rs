//! `ApiTokens::verify` against its floor, measured in the same run.
//!
//! Floor (plain rusqlite + sha2, no consentry code): SHA-256 of the token,
//! then a prepared point read of the token's row by that hash, all 11
//! columns decoded into owned values, from consentry's own
//! `consentry_api_tokens` table (10,000 tokens) on its own connection.
//!
//! `consentry/verify_sqlite` is the whole `verify` of a valid token with one
//! required scope on `SqliteStore`: format and checksum check, SHA-256, the
//! store's point read on a reader thread, the constant-time hash compare,
//! the expiry / revocation / scope checks, and the usage-log entry (its
//! batched background writes run during the measurement, on the store's
//! writer thread).
//!
//! Run: `cargo bench --bench api_token`. Results go to docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use consentry::api_token::ApiTokens;
use consentry::clock::SystemClock;
use consentry::secrecy::ExposeSecret;
use consentry::store::{MemoryStore, SqliteStore};
use consentry::{Scope, UserId};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// How many tokens the table holds (`CONSENTRY_BENCH_TOKENS` overrides, to
/// see how the spread over tokens weighs on the usage log's writes).
fn token_count() -> u64 {
    std::env::var("CONSENTRY_BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10_000)
}

/// xorshift64: a cheap, deterministic spread over the tokens.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

type Row = (
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    bool,
    Option<i64>,
);

fn bench_verify(c: &mut Criterion) {
    let count = token_count();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read = Scope::new("read:connections").unwrap();
    let scopes = [read.clone(), Scope::new("write:webhooks").unwrap()];
    let expiry = Some(SystemTime::now() + Duration::from_secs(365 * 86_400));

    let path = dir.path().join("tokens.db");
    let (sqlite, on_sqlite, on_memory, tokens) = rt.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let on_sqlite = ApiTokens::new(store.clone(), SystemClock);
        let on_memory = ApiTokens::new(MemoryStore::new(), SystemClock);
        let mut tokens = Vec::with_capacity(count as usize);
        let mut memory_tokens = Vec::with_capacity(count as usize);
        for n in 0..count {
            let owner = UserId::in_tenant("bench", format!("user{:04}", n / 10)).unwrap();
            let (_, t) = on_sqlite
                .create(&owner, &format!("token {n}"), &scopes, expiry)
                .await
                .unwrap();
            tokens.push(t.expose_secret().to_owned());
            let (_, t) = on_memory
                .create(&owner, &format!("token {n}"), &scopes, expiry)
                .await
                .unwrap();
            memory_tokens.push(t.expose_secret().to_owned());
        }
        (store, on_sqlite, (on_memory, memory_tokens), tokens)
    });
    let (on_memory, memory_tokens) = on_memory;

    let floor = Connection::open(&path).unwrap();
    floor
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .unwrap();

    let mut group = c.benchmark_group("api_token_verify");
    group.sample_size(60);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    group.bench_function("floor/sha256+point_read_by_hash", |b| {
        let mut stmt = floor
            .prepare_cached(
                "SELECT hash, id, tenant, user_id, name, scopes, created_at, expires_at,
                        last_used_at, active, revoked_at
                 FROM consentry_api_tokens WHERE hash = ?1",
            )
            .unwrap();
        b.iter(|| {
            let token = &tokens[(rng.next() % count) as usize];
            let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let row: Row = stmt
                .query_row([&hash[..]], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                    ))
                })
                .unwrap();
            black_box(row);
        })
    });

    group.bench_function("consentry/verify_sqlite", |b| {
        b.to_async(&rt).iter(|| {
            let token = &tokens[(rng.next() % count) as usize];
            let (service, read) = (&on_sqlite, &read);
            async move {
                black_box(
                    service
                        .verify(token, std::slice::from_ref(read))
                        .await
                        .unwrap(),
                )
            }
        })
    });

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("consentry/verify_sqlite_multi_thread_rt", |b| {
        b.to_async(&multi).iter(|| {
            let token = &tokens[(rng.next() % count) as usize];
            let (service, read) = (&on_sqlite, &read);
            async move {
                black_box(
                    service
                        .verify(token, std::slice::from_ref(read))
                        .await
                        .unwrap(),
                )
            }
        })
    });

    group.bench_function("consentry/verify_memory", |b| {
        b.to_async(&rt).iter(|| {
            let token = &memory_tokens[(rng.next() % count) as usize];
            let (service, read) = (&on_memory, &read);
            async move {
                black_box(
                    service
                        .verify(token, std::slice::from_ref(read))
                        .await
                        .unwrap(),
                )
            }
        })
    });

    // A mistyped token: refused by its checksum, no store call.
    let typo = {
        let mut t = tokens[0].clone().into_bytes();
        t[10] = if t[10] == b'a' { b'b' } else { b'a' };
        String::from_utf8(t).unwrap()
    };
    group.bench_function("consentry/verify_bad_checksum", |b| {
        b.to_async(&rt).iter(|| {
            let (service, typo) = (&on_sqlite, &typo);
            async move { black_box(service.verify(typo, &[]).await.unwrap_err()) }
        })
    });
    group.finish();

    rt.block_on(async {
        on_sqlite.flush().await.unwrap();
        drop(on_sqlite);
        sqlite.close().await.unwrap();
    });
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
