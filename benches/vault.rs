//! Vault get/put against their floors, measured in the same run.
//!
//! Floors (plain rusqlite + chacha20poly1305, no consentry code):
//! - `floor/get_int_pk`: prepared point read of a 300-byte blob by INTEGER
//!   primary key, then one XChaCha20-Poly1305 decryption of 200 bytes.
//! - `floor/get_same_table`: the same, reading the envelope from consentry's
//!   own `consentry_credentials` table by its composite text key.
//! - `floor/put`: fresh nonce + encrypt 200 bytes + single-row upsert in its
//!   own `BEGIN IMMEDIATE` transaction (synchronous=NORMAL, WAL, bytes change
//!   on every write so SQLite cannot skip the page write).
//!
//! Run: `cargo bench --bench vault`. Results go to docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use consentry::secrecy::SecretString;
use consentry::store::{MemoryStore, SqliteStore};
use consentry::vault::{CredentialKind, Keyring, Vault};
use consentry::{ConnectionId, UserId};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, params};

const USERS: u64 = 1_000;
const CONNS_PER_USER: u64 = 10;
const ROWS: u64 = USERS * CONNS_PER_USER;

/// xorshift64: a cheap, deterministic spread over the rows.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn ids(n: u64) -> (UserId, ConnectionId) {
    (
        UserId::in_tenant("bench", format!("user{:05}", n / CONNS_PER_USER)).unwrap(),
        ConnectionId::new(format!("conn_{:02}", n % CONNS_PER_USER)).unwrap(),
    )
}

fn token(n: u64) -> SecretString {
    // 200 bytes, like a typical access token.
    let mut s = format!("ya29.{n:020}-");
    s.push_str(&"A".repeat(200 - s.len()));
    SecretString::from(s)
}

fn raw_connection(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .unwrap();
    conn
}

fn bench_vault(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cipher = XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap();
    let aad = [0u8; 120];

    // --- data: consentry's table, filled through the vault -----------------
    let vault_path = dir.path().join("vault.db");
    let (sqlite, vault_sqlite, vault_memory) = rt.block_on(async {
        let store = SqliteStore::open(&vault_path).await.unwrap();
        let keyring = Keyring::generate().unwrap();
        let vault = Vault::new(store.clone(), keyring.clone());
        let memory = Vault::new(MemoryStore::new(), keyring);
        for n in 0..ROWS {
            let (u, c) = ids(n);
            vault
                .put(&u, &c, CredentialKind::AccessToken, token(n))
                .await
                .unwrap();
            memory
                .put(&u, &c, CredentialKind::AccessToken, token(n))
                .await
                .unwrap();
        }
        (store, vault, memory)
    });

    // --- floor table: INTEGER primary key, 300-byte blobs ------------------
    let floor_path = dir.path().join("floor.db");
    let floor = raw_connection(&floor_path);
    floor
        .execute_batch("CREATE TABLE tokens (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        .unwrap();
    {
        let tx = floor.unchecked_transaction().unwrap();
        for n in 0..ROWS {
            let nonce = [n as u8; 24];
            let mut buf = vec![b'A'; 200];
            let tag = cipher
                .encrypt_inout_detached(&XNonce::from(nonce), &aad, (&mut buf[..]).into())
                .unwrap();
            let mut blob = Vec::with_capacity(300);
            blob.extend_from_slice(&nonce);
            blob.extend_from_slice(&[0u8; 60]); // header + commitment-sized padding
            blob.extend_from_slice(&buf);
            blob.extend_from_slice(&tag);
            tx.execute(
                "INSERT INTO tokens VALUES (?1, ?2)",
                params![n as i64, blob],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let same_table = raw_connection(&vault_path);

    let mut group = c.benchmark_group("vault_get");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(60);

    let decrypt_200 = |blob: &[u8]| {
        let nonce = XNonce::try_from(&blob[..24]).unwrap();
        let body = &blob[84..284];
        let tag = chacha20poly1305::Tag::try_from(&blob[284..300]).unwrap();
        let mut plain = body.to_vec();
        cipher
            .decrypt_inout_detached(&nonce, &aad, (&mut plain[..]).into(), &tag)
            .unwrap();
        black_box(plain);
    };
    // A valid sealed sample: the same-table floor reads consentry's row (its
    // real size and key) and then decrypts this, so the AEAD work is real.
    let sample: Vec<u8> = floor
        .query_row("SELECT blob FROM tokens WHERE id = 0", [], |r| r.get(0))
        .unwrap();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    group.bench_function("floor/get_int_pk(read+xchacha_decrypt_200B)", |b| {
        let mut stmt = floor
            .prepare_cached("SELECT blob FROM tokens WHERE id = ?1")
            .unwrap();
        b.iter(|| {
            let id = (rng.next() % ROWS) as i64;
            let blob: Vec<u8> = stmt.query_row([id], |r| r.get(0)).unwrap();
            decrypt_200(&blob);
        })
    });

    group.bench_function("floor/get_same_table(read+xchacha_decrypt_200B)", |b| {
        let mut stmt = same_table
            .prepare_cached(
                "SELECT envelope FROM consentry_credentials
                 WHERE tenant = ?1 AND user_id = ?2 AND connection = ?3 AND kind = ?4",
            )
            .unwrap();
        b.iter(|| {
            let (u, c) = ids(rng.next() % ROWS);
            let blob: Vec<u8> = stmt
                .query_row(
                    params![u.tenant().unwrap(), u.user(), c.as_str(), "access_token"],
                    |r| r.get(0),
                )
                .unwrap();
            black_box(blob);
            decrypt_200(&sample);
        })
    });

    group.bench_function("consentry/get_sqlite", |b| {
        b.to_async(&rt).iter(|| {
            let (u, c) = ids(rng.next() % ROWS);
            let vault = &vault_sqlite;
            async move {
                black_box(
                    vault
                        .get(&u, &c, CredentialKind::AccessToken)
                        .await
                        .unwrap(),
                )
            }
        })
    });

    group.bench_function("consentry/get_memory", |b| {
        b.to_async(&rt).iter(|| {
            let (u, c) = ids(rng.next() % ROWS);
            let vault = &vault_memory;
            async move {
                black_box(
                    vault
                        .get(&u, &c, CredentialKind::AccessToken)
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
    group.bench_function("consentry/get_sqlite_multi_thread_rt", |b| {
        b.to_async(&multi).iter(|| {
            let (u, c) = ids(rng.next() % ROWS);
            let vault = &vault_sqlite;
            async move {
                black_box(
                    vault
                        .get(&u, &c, CredentialKind::AccessToken)
                        .await
                        .unwrap(),
                )
            }
        })
    });
    group.finish();

    // --- writes ------------------------------------------------------------
    let mut group = c.benchmark_group("vault_put");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(40);
    let put_floor = raw_connection(&floor_path);
    let mut counter = 0u64;
    group.bench_function("floor/put(nonce+xchacha_encrypt_200B+upsert_1_tx)", |b| {
        b.iter(|| {
            counter += 1;
            let id = (rng.next() % ROWS) as i64;
            let mut nonce = [0u8; 24];
            getrandom::fill(&mut nonce).unwrap();
            let mut buf = token(counter).expose_bytes();
            let tag = cipher.encrypt_inout_detached(&XNonce::from(nonce), &aad, (&mut buf[..]).into()).unwrap();
            let mut blob = Vec::with_capacity(300);
            blob.extend_from_slice(&nonce);
            blob.extend_from_slice(&[0u8; 60]);
            blob.extend_from_slice(&buf);
            blob.extend_from_slice(&tag);
            put_floor.execute_batch("BEGIN IMMEDIATE").unwrap();
            put_floor
                .prepare_cached("INSERT INTO tokens (id, blob) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET blob = excluded.blob")
                .unwrap()
                .execute(params![id, blob])
                .unwrap();
            put_floor.execute_batch("COMMIT").unwrap();
        })
    });

    group.bench_function("consentry/put_sqlite", |b| {
        b.to_async(&rt).iter(|| {
            counter += 1;
            let (u, c) = ids(rng.next() % ROWS);
            let (vault, t) = (&vault_sqlite, token(counter));
            async move {
                black_box(
                    vault
                        .put(&u, &c, CredentialKind::AccessToken, t)
                        .await
                        .unwrap(),
                )
            }
        })
    });

    group.bench_function("consentry/put_memory", |b| {
        b.to_async(&rt).iter(|| {
            counter += 1;
            let (u, c) = ids(rng.next() % ROWS);
            let (vault, t) = (&vault_memory, token(counter));
            async move {
                black_box(
                    vault
                        .put(&u, &c, CredentialKind::AccessToken, t)
                        .await
                        .unwrap(),
                )
            }
        })
    });
    group.finish();

    drop((vault_sqlite, vault_memory));
    rt.block_on(sqlite.close()).unwrap();
}

trait ExposeBytes {
    fn expose_bytes(&self) -> Vec<u8>;
}

impl ExposeBytes for SecretString {
    fn expose_bytes(&self) -> Vec<u8> {
        use consentry::secrecy::ExposeSecret;
        self.expose_secret().as_bytes().to_vec()
    }
}

criterion_group!(benches, bench_vault);
criterion_main!(benches);
