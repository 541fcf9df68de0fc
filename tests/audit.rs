//! The audit log's chain, tested against the real SQLite store on disk:
//! every kind of tampering is detected and names the first bad entry.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use consentry::audit::{
    AuditActor, AuditEvent, AuditLog, AuditQuery, ChainFault, Outcome, RequestContext,
};
use consentry::clock::ManualClock;
use consentry::store::{MemoryStore, SqliteStore};
use consentry::vault::Keyring;
use consentry::{Error, ErrorKind, UserId};

const ENTRIES: u64 = 12;

fn user(n: u64) -> UserId {
    UserId::in_tenant("acme", format!("user{}", n % 3)).unwrap()
}

fn event(n: u64) -> AuditEvent {
    let u = user(n);
    AuditEvent::new("credential.read", AuditActor::User(u.clone()))
        .unwrap()
        .subject(&u)
        .resource(format!("connection:c{n}"))
        .outcome(if n.is_multiple_of(4) {
            Outcome::Denied
        } else {
            Outcome::Success
        })
        .detail("purpose", "matching")
        .detail("n", n)
        .context(
            RequestContext::new()
                .ip([198, 51, 100, 7].into())
                .user_agent("tests/1.0")
                .request_id(format!("req-{n}")),
        )
}

/// A log of `ENTRIES` entries in a fresh SQLite file, closed afterwards.
async fn written_log(path: &Path, keyring: &Keyring) {
    let store = SqliteStore::open(path).await.unwrap();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let log = AuditLog::new(store.clone(), keyring.clone()).with_clock(clock.clone());
    for n in 1..=ENTRIES {
        log.record(event(n)).await.unwrap();
        clock.advance(Duration::from_secs(60));
    }
    log.flush().await.unwrap();
    assert_eq!(log.verify().await.unwrap().entries, ENTRIES);
    drop(log);
    store.close().await.unwrap();
}

async fn verify(path: &Path, keyring: &Keyring) -> Result<u64, Error> {
    let store = SqliteStore::open(path).await.unwrap();
    let result = AuditLog::new(store.clone(), keyring.clone()).verify().await;
    store.close().await.unwrap();
    result.map(|r| r.entries)
}

fn sql(path: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let changed = conn.execute(statement, []).unwrap();
    assert!(changed >= 1, "`{statement}` changed nothing");
}

fn broken_at(result: Result<u64, Error>) -> (u64, ChainFault) {
    match result {
        Err(Error::AuditChainBroken { seq, fault }) => (seq, fault),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test]
async fn editing_any_column_of_any_row_is_detected_at_that_row() {
    let dir = tempfile::tempdir().unwrap();
    // Two keys: entries are MAC'ed under the primary; `key_id` is edited to
    // the other one, which the keyring also holds.
    let keyring = Keyring::generate().unwrap().rotated().unwrap();
    let other_key = keyring
        .ids()
        .find(|id| *id != keyring.primary())
        .unwrap()
        .clone();
    let pristine = dir.path().join("pristine.db");
    written_log(&pristine, &keyring).await;
    let other_key = format!("'{}'", other_key.as_str());
    let edits = [
        ("at", "at + 1"),
        ("action", "'credential.deleted'"),
        ("actor", "'system'"),
        ("subject", "'acme/mallory'"),
        ("resource", "'connection:other'"),
        ("outcome", "'failure'"),
        ("details", "'{}'"),
        ("ip", "'10.0.0.1'"),
        ("user_agent", "'evil/1.0'"),
        ("request_id", "NULL"),
        ("key_id", other_key.as_str()),
        ("prev_hash", "zeroblob(32)"),
        ("hash", "zeroblob(32)"),
    ];
    for (i, (column, value)) in edits.iter().enumerate() {
        // A different row each time, the first and the last among them.
        let seq = 1 + (i as u64 * 5) % ENTRIES;
        let db = dir.path().join(format!("edit-{column}.db"));
        std::fs::copy(&pristine, &db).unwrap();
        sql(
            &db,
            &format!("UPDATE consentry_audit SET {column} = {value} WHERE seq = {seq}"),
        );
        let (bad, fault) = broken_at(verify(&db, &keyring).await);
        assert_eq!(bad, seq, "editing `{column}` of entry {seq}: {fault}");
        let expected = if *column == "prev_hash" {
            ChainFault::BrokenLink
        } else {
            ChainFault::Altered
        };
        assert_eq!(fault, expected, "editing `{column}`");
    }
    // A key id the keyring does not hold is named.
    let db = dir.path().join("unknown-key.db");
    std::fs::copy(&pristine, &db).unwrap();
    sql(
        &db,
        "UPDATE consentry_audit SET key_id = 'k99' WHERE seq = 2",
    );
    assert!(
        matches!(verify(&db, &keyring).await, Err(Error::KeyNotFound { key_id }) if key_id.as_str() == "k99")
    );
    assert_eq!(verify(&pristine, &keyring).await.unwrap(), ENTRIES);
}

#[tokio::test]
async fn deleting_inserting_or_reordering_rows_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Keyring::generate().unwrap();
    let pristine = dir.path().join("pristine.db");
    written_log(&pristine, &keyring).await;
    let copy = |name: &str| {
        let db = dir.path().join(name);
        std::fs::copy(&pristine, &db).unwrap();
        db
    };

    let db = copy("delete-middle.db");
    sql(&db, "DELETE FROM consentry_audit WHERE seq = 5");
    assert_eq!(
        broken_at(verify(&db, &keyring).await),
        (5, ChainFault::Missing)
    );

    let db = copy("delete-first.db");
    sql(&db, "DELETE FROM consentry_audit WHERE seq = 1");
    assert_eq!(
        broken_at(verify(&db, &keyring).await),
        (1, ChainFault::Missing)
    );

    // The newest entry: the MAC'ed head still names it.
    let db = copy("delete-last.db");
    sql(
        &db,
        &format!("DELETE FROM consentry_audit WHERE seq = {ENTRIES}"),
    );
    assert_eq!(
        broken_at(verify(&db, &keyring).await),
        (ENTRIES, ChainFault::Missing)
    );

    // ... and moving the head back with it is a forged head.
    let db = copy("delete-last-and-head.db");
    sql(
        &db,
        &format!("DELETE FROM consentry_audit WHERE seq = {ENTRIES}"),
    );
    sql(
        &db,
        &format!("UPDATE consentry_audit_head SET seq = {}", ENTRIES - 1),
    );
    assert_eq!(
        broken_at(verify(&db, &keyring).await),
        (ENTRIES - 1, ChainFault::Head)
    );

    let db = copy("delete-head.db");
    sql(&db, "DELETE FROM consentry_audit_head");
    assert_eq!(broken_at(verify(&db, &keyring).await).1, ChainFault::Head);

    // Swapping the contents of two rows (each keeps its position).
    let db = copy("swap.db");
    let cols = "at, action, actor, subject, resource, outcome, details, ip, user_agent, \
                request_id, key_id, prev_hash, hash";
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE a AS SELECT {cols} FROM consentry_audit WHERE seq = 4;
         CREATE TEMP TABLE b AS SELECT {cols} FROM consentry_audit WHERE seq = 7;
         DELETE FROM consentry_audit WHERE seq IN (4, 7);
         INSERT INTO consentry_audit (seq, {cols}) SELECT 4, * FROM b;
         INSERT INTO consentry_audit (seq, {cols}) SELECT 7, * FROM a;"
    ))
    .unwrap();
    drop(conn);
    assert_eq!(broken_at(verify(&db, &keyring).await).0, 4);

    // Renumbering (moving an entry elsewhere in the order).
    let db = copy("renumber.db");
    sql(&db, "UPDATE consentry_audit SET seq = 1000 WHERE seq = 3");
    assert_eq!(
        broken_at(verify(&db, &keyring).await),
        (3, ChainFault::Missing)
    );

    // A forged entry inserted at the end, with a head moved to it.
    let db = copy("insert.db");
    sql(
        &db,
        &format!(
            "INSERT INTO consentry_audit (seq, {cols})
             SELECT {next}, {cols} FROM consentry_audit WHERE seq = {ENTRIES}",
            next = ENTRIES + 1
        ),
    );
    sql(
        &db,
        &format!("UPDATE consentry_audit_head SET seq = {}", ENTRIES + 1),
    );
    assert_eq!(broken_at(verify(&db, &keyring).await).0, ENTRIES + 1);

    // Another keyring cannot vouch for the chain.
    let other = Keyring::generate().unwrap();
    assert!(matches!(
        verify(&pristine, &other).await,
        Err(Error::KeyNotFound { .. } | Error::AuditChainBroken { .. })
    ));
    assert_eq!(verify(&pristine, &keyring).await.unwrap(), ENTRIES);
}

#[tokio::test]
async fn a_retention_purge_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let keyring = Keyring::generate().unwrap();
    written_log(&path, &keyring).await;

    let store = SqliteStore::open(&path).await.unwrap();
    let log = AuditLog::new(store.clone(), keyring.clone());
    // Entries are 60 s apart from 1_700_000_000; keep the last 4.
    let cut = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 60 * (ENTRIES - 4));
    let purged = log.purge_before(cut).await.unwrap();
    assert_eq!(
        (purged.deleted, purged.checkpoint),
        (ENTRIES - 4, ENTRIES - 4)
    );
    let report = log.verify().await.unwrap();
    assert_eq!(
        (report.entries, report.purged, report.head),
        (4, ENTRIES - 4, ENTRIES)
    );
    // Purging again is a no-op; new entries keep chaining after the cut.
    assert_eq!(log.purge_before(cut).await.unwrap().deleted, 0);
    log.record_durable(event(99)).await.unwrap();
    assert_eq!(log.verify().await.unwrap().entries, 5);
    let second = log
        .purge_before(UNIX_EPOCH + Duration::from_secs(4_000_000_000))
        .await
        .unwrap();
    assert_eq!(second.deleted, 5);
    let report = log.verify().await.unwrap();
    assert_eq!((report.entries, report.purged), (0, ENTRIES + 1));
    drop(log);
    store.close().await.unwrap();

    // A forged checkpoint (claiming fewer purged entries) is detected.
    sql(&path, "UPDATE consentry_audit_checkpoint SET purged = 1");
    assert_eq!(
        broken_at(verify(&path, &keyring).await).1,
        ChainFault::Checkpoint
    );
}

#[tokio::test]
async fn queries_filter_by_user_action_resource_and_time_and_paginate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let keyring = Keyring::generate().unwrap();
    written_log(&path, &keyring).await;
    let store = SqliteStore::open(&path).await.unwrap();
    let log = AuditLog::new(store.clone(), keyring);

    let alice = user(1); // users 1, 4, 7, 10
    let page = log.query(&AuditQuery::for_user(&alice)).await.unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 4, 7, 10]);
    let e = &page.entries[1];
    assert_eq!(e.actor, AuditActor::User(alice.clone()));
    assert_eq!(e.subject.as_ref(), Some(&alice));
    assert_eq!(e.outcome, Outcome::Denied);
    assert_eq!(e.details["purpose"], "matching");
    assert_eq!(e.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(e.user_agent.as_deref(), Some("tests/1.0"));
    assert_eq!(e.request_id.as_deref(), Some("req-4"));

    let by_resource = log
        .query(&AuditQuery::default().resource("connection:c7"))
        .await
        .unwrap();
    assert_eq!(by_resource.entries.len(), 1);
    assert!(
        log.query(&AuditQuery::default().action("consent.granted"))
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let window = log
        .query(&AuditQuery::default().between(
            start + Duration::from_secs(120),
            start + Duration::from_secs(300),
        ))
        .await
        .unwrap();
    assert_eq!(
        window.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );

    let mut seen = Vec::new();
    let mut query = AuditQuery::default().limit(5);
    loop {
        let page = log.query(&query).await.unwrap();
        seen.extend(page.entries.iter().map(|e| e.seq));
        match page.next {
            Some(next) => query = query.after(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=ENTRIES).collect::<Vec<_>>());
    drop(log);
    store.close().await.unwrap();
}

/// Two stores on one file stand for two processes: their writers race for
/// the head and both chains merge into one that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let keyring = Keyring::generate().unwrap();
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let logs = [
        AuditLog::new(a.clone(), keyring.clone()),
        AuditLog::new(b.clone(), keyring.clone()),
    ];
    let mut tasks = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        for t in 0..4u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..250u64 {
                    log.record(event(i as u64 * 10_000 + t * 1_000 + n))
                        .await
                        .unwrap();
                }
                log.flush().await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = logs[0].verify().await.unwrap();
    assert_eq!((report.entries, report.head), (2_000, 2_000));
    assert_eq!(logs[1].verify().await.unwrap().entries, 2_000);
    drop(logs);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn bad_events_are_typed_errors_and_context_values_are_bounded() {
    for bad in ["", "nodot", "a.", ".b", "A.b", "a.b.c", "a b.c", "a.b\n"] {
        let err = AuditEvent::new(bad, AuditActor::System).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(AuditEvent::new(&format!("a.{}", "b".repeat(70)), AuditActor::System).is_err());
    for bad in ["", "robot", "user:", "user:a\u{7}", "service:"] {
        assert!(bad.parse::<AuditActor>().is_err(), "{bad:?}");
    }

    let log = AuditLog::new(MemoryStore::new(), Keyring::generate().unwrap());
    let huge = "x".repeat(10_000);
    let event = AuditEvent::new("page.viewed", AuditActor::Service("web".into()))
        .unwrap()
        .resource(&huge)
        .detail("blob", huge.as_str());
    RequestContext::new()
        .user_agent(format!("{huge}\u{0}\r\n"))
        .request_id(&huge)
        .scope(log.record_durable(event))
        .await
        .unwrap();
    let entry = log
        .query(&AuditQuery::default())
        .await
        .unwrap()
        .entries
        .remove(0);
    assert_eq!(
        entry.resource.unwrap().len(),
        consentry::audit::MAX_RESOURCE_LEN
    );
    assert_eq!(
        entry.user_agent.unwrap().len(),
        consentry::audit::MAX_USER_AGENT_LEN
    );
    assert_eq!(
        entry.request_id.unwrap().len(),
        consentry::audit::MAX_REQUEST_ID_LEN
    );
    assert_eq!(entry.details, serde_json::json!({ "truncated": true }));
    assert_eq!(entry.actor, AuditActor::Service("web".into()));
    assert_eq!(log.verify().await.unwrap().entries, 1);
}

#[tokio::test]
async fn identical_queued_events_share_one_entry_and_others_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("coalesce.db"))
        .await
        .unwrap();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let log = AuditLog::new(store.clone(), Keyring::generate().unwrap()).with_clock(clock.clone());
    let alice = user(0);
    let read = |request: &str| {
        AuditEvent::new("credential.read", AuditActor::User(alice.clone()))
            .unwrap()
            .subject(&alice)
            .resource("connection:c1")
            .detail("purpose", "matching")
            .context(RequestContext::new().request_id(request))
    };
    // 50 identical reads, a millisecond apart: one entry.
    for _ in 0..50 {
        log.record(read("job-1")).await.unwrap();
        clock.advance(Duration::from_millis(1));
    }
    // A different request id, a different outcome, a durable one: apart.
    log.record(read("job-2")).await.unwrap();
    log.record(read("job-2").outcome(Outcome::Denied))
        .await
        .unwrap();
    log.record_durable(read("job-2").outcome(Outcome::Denied))
        .await
        .unwrap();
    // Alternating events never merge.
    for n in 0..4 {
        log.record(read(if n % 2 == 0 { "a" } else { "b" }))
            .await
            .unwrap();
    }
    log.flush().await.unwrap();
    let entries = log.query(&AuditQuery::default()).await.unwrap().entries;
    let summary: Vec<(Option<&str>, Outcome, Option<u64>)> = entries
        .iter()
        .map(|e| {
            (
                e.request_id.as_deref(),
                e.outcome,
                e.details["count"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("job-1"), Outcome::Success, Some(50)),
            (Some("job-2"), Outcome::Success, None),
            (Some("job-2"), Outcome::Denied, None),
            (Some("job-2"), Outcome::Denied, None),
            (Some("a"), Outcome::Success, None),
            (Some("b"), Outcome::Success, None),
            (Some("a"), Outcome::Success, None),
            (Some("b"), Outcome::Success, None),
        ]
    );
    let merged = &entries[0];
    assert_eq!(merged.details["first_at"], 1_700_000_000_000u64);
    assert_eq!(
        merged.at,
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + 49),
        "the entry's time is the last event's"
    );
    assert_eq!(merged.details["purpose"], "matching");
    // The merged entry is chained and MAC'ed like any other.
    assert_eq!(log.verify().await.unwrap().entries, 8);
    drop(log);
    store.close().await.unwrap();
}

#[tokio::test]
async fn one_entry_stands_for_at_most_10_000_events() {
    let log = AuditLog::new(MemoryStore::new(), Keyring::generate().unwrap());
    for _ in 0..10_001 {
        let e = AuditEvent::new("page.viewed", AuditActor::System).unwrap();
        log.record(e).await.unwrap();
    }
    log.flush().await.unwrap();
    let counts: Vec<Option<u64>> = log
        .query(&AuditQuery::default())
        .await
        .unwrap()
        .entries
        .iter()
        .map(|e| e.details["count"].as_u64())
        .collect();
    assert_eq!(counts, [Some(10_000), None]);
}
