//! A writer killed with SIGKILL mid-batch leaves a database that opens and
//! whose every row decrypts; every batch it reported as written is there,
//! and every batch is all-or-nothing.
//!
//! The test binary runs itself as the child: `child_writer` is ignored in
//! normal runs and started with `--ignored` and an environment variable.
#![cfg(all(feature = "sqlite", unix))]
#![allow(clippy::print_stdout)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::store::{CredentialStore, SqliteStore};
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring, Vault};
use consentry::{ConnectionId, ErrorKind, UserId};

const DB_ENV: &str = "CONSENTRY_CRASH_DB";
const KEYS_ENV: &str = "CONSENTRY_CRASH_KEYS";
const START_ENV: &str = "CONSENTRY_CRASH_START";

const KINDS: [CredentialKind; 3] = [
    CredentialKind::AccessToken,
    CredentialKind::RefreshToken,
    CredentialKind::IdToken,
];

fn user(batch: u64) -> UserId {
    UserId::in_tenant("crash", format!("u{}", batch % 50)).unwrap()
}

fn conn(batch: u64) -> ConnectionId {
    ConnectionId::new(format!("conn_{batch}")).unwrap()
}

fn value(batch: u64, kind: CredentialKind) -> String {
    format!(
        "{kind}-of-batch-{batch}-{}",
        "x".repeat((batch % 300) as usize)
    )
}

/// The child: writes batches of three credentials forever, printing each
/// batch number once its transaction committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by sigkill_mid_write_leaves_a_readable_database as a child process"]
async fn child_writer() {
    let db = std::env::var(DB_ENV).expect("child needs CONSENTRY_CRASH_DB");
    let keys = Keyring::from_env(KEYS_ENV).unwrap();
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let vault = Vault::new(SqliteStore::open(&db).await.unwrap(), keys);
    // Two writers at once, so the kill can land with transactions queued.
    for lane in 0..2 {
        let vault = vault.clone();
        tokio::spawn(async move {
            let mut batch = start + lane;
            loop {
                let updates = KINDS
                    .iter()
                    .map(|&k| CredentialUpdate::new(k, SecretString::from(value(batch, k))))
                    .collect();
                vault
                    .write_many(&user(batch), &conn(batch), updates)
                    .await
                    .unwrap();
                println!("DONE {batch}");
                batch += 2;
            }
        });
    }
    // Runs until the parent kills this process.
    std::future::pending::<()>().await;
}

/// Runs the child until it has committed at least `min_done` batches, kills
/// it with SIGKILL, and returns the batch numbers it reported.
fn run_child_and_kill(db: &std::path::Path, keys: &str, start: u64, min_done: usize) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, db)
        .env(KEYS_ENV, keys)
        .env(START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < min_done {
        assert!(
            Instant::now() < deadline,
            "child wrote only {} batches in 60 s",
            done.len()
        );
        match lines.next() {
            Some(line) => {
                if let Some(n) = line.unwrap().strip_prefix("DONE ") {
                    done.push(n.parse().unwrap());
                }
            }
            None => panic!("child exited early: {:?}", child.wait()),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "child must have been killed");
    // Lines already in the pipe were printed after a commit too.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("DONE ") {
            done.push(n.parse().unwrap());
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_write_leaves_a_readable_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let ring = Keyring::generate().unwrap();
    let keys = ring.export();
    let mut reported = Vec::new();
    let mut next = 0u64;
    for (round, min_done) in [40usize, 150, 400].into_iter().enumerate() {
        let db2 = db.clone();
        let keys2 = keys.expose_secret().to_owned();
        let done =
            tokio::task::spawn_blocking(move || run_child_and_kill(&db2, &keys2, next, min_done))
                .await
                .unwrap();
        assert!(done.len() >= min_done, "round {round}");
        next = done.iter().max().unwrap() + 100;
        reported.extend(done);

        // The database opens (migrations check passes) and every row decrypts.
        let store = SqliteStore::open(&db).await.unwrap();
        let vault = Vault::new(store.clone(), ring.clone());
        let mut batches_found = 0;
        for u in 0..50 {
            let owner = UserId::in_tenant("crash", format!("u{u}")).unwrap();
            let rows = store.list_credentials(&owner).await.unwrap();
            let mut per_conn: std::collections::BTreeMap<_, Vec<_>> = Default::default();
            for (key, _) in rows {
                per_conn
                    .entry(key.connection.clone())
                    .or_default()
                    .push(key.kind);
            }
            for (c, kinds) in per_conn {
                // All three credentials of a batch, or none: one transaction.
                assert_eq!(kinds.len(), 3, "partial batch {c}: {kinds:?}");
                let batch: u64 = c.as_str().trim_start_matches("conn_").parse().unwrap();
                for k in KINDS {
                    let got = vault.get(&owner, &c, k).await.unwrap();
                    assert_eq!(got.value.expose_secret(), value(batch, k));
                }
                batches_found += 1;
            }
        }
        // Every batch the child reported as committed survived the kill.
        for &b in &reported {
            let got = vault
                .get(&user(b), &conn(b), CredentialKind::RefreshToken)
                .await;
            assert!(
                got.is_ok(),
                "reported batch {b} lost: {:?}",
                got.err().map(|e| e.kind())
            );
        }
        assert!(
            batches_found >= reported.len(),
            "{batches_found} < {}",
            reported.len()
        );
        let missing = vault
            .get(
                &user(next + 10_000),
                &conn(next + 10_000),
                CredentialKind::AccessToken,
            )
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        store.close().await.unwrap();
    }
}
