//! Personal API tokens end to end, on SQLite files on disk.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use consentry::api_token::{ApiTokenRejection, ApiTokens, TOKEN_LEN, check_format};
use consentry::clock::ManualClock;
use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::store::{
    ApiTokenInfo, ApiTokenStore, ApiTokenUpdate, ApiTokenUsage, MemoryStore, SqliteStore,
    StoredApiToken, UsageOutcome,
};
use consentry::{ApiTokenId, Error, ErrorKind, Scope, UserId};
use proptest::prelude::*;
use sha2::Digest as _;

/// Counts every call into the store it wraps.
#[derive(Debug)]
struct Counting<S> {
    inner: S,
    calls: AtomicUsize,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicUsize::new(0),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl<S: ApiTokenStore> ApiTokenStore for Counting<S> {
    async fn insert_api_token(&self, token: StoredApiToken) -> consentry::Result<()> {
        self.count();
        self.inner.insert_api_token(token).await
    }
    async fn api_token_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> consentry::Result<Option<StoredApiToken>> {
        self.count();
        self.inner.api_token_by_hash(hash).await
    }
    async fn list_api_tokens(&self, owner: &UserId) -> consentry::Result<Vec<ApiTokenInfo>> {
        self.count();
        self.inner.list_api_tokens(owner).await
    }
    async fn update_api_token(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        update: ApiTokenUpdate,
    ) -> consentry::Result<Option<ApiTokenInfo>> {
        self.count();
        self.inner.update_api_token(owner, id, update).await
    }
    async fn record_api_token_usage(&self, entries: Vec<ApiTokenUsage>) -> consentry::Result<()> {
        self.count();
        self.inner.record_api_token_usage(entries).await
    }
    async fn api_token_usage(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        limit: usize,
    ) -> consentry::Result<Option<Vec<ApiTokenUsage>>> {
        self.count();
        self.inner.api_token_usage(owner, id, limit).await
    }
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn scope(s: &str) -> Scope {
    Scope::new(s).unwrap()
}

fn alice() -> UserId {
    UserId::in_tenant("acme", "alice").unwrap()
}

async fn sqlite(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .unwrap()
}

fn reason(e: &Error) -> Option<ApiTokenRejection> {
    match e {
        Error::InvalidApiToken { reason } => Some(*reason),
        _ => None,
    }
}

/// A character of the base62 alphabet other than `c`.
fn other_char(c: u8, shift: u8) -> u8 {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let i = ALPHABET.iter().position(|&a| a == c).unwrap();
    ALPHABET[(i + 1 + usize::from(shift) % 61) % 62]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_with_the_right_scopes_and_names_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::new(store.clone(), clock.clone());
    let (read, write, audit) = (
        scope("read:connections"),
        scope("write:webhooks"),
        scope("read:audit"),
    );
    let (info, token) = tokens
        .create(
            &alice(),
            "deploy bot",
            &[write.clone(), read.clone(), read.clone()],
            Some(start() + Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!(
        info.scopes,
        [read.clone(), write.clone()],
        "sorted, deduplicated"
    );
    assert_eq!(token.expose_secret().len(), TOKEN_LEN);
    assert!(token.expose_secret().starts_with("cst_"));
    check_format(token.expose_secret()).unwrap();

    for required in [
        vec![],
        vec![read.clone()],
        vec![read.clone(), write.clone()],
    ] {
        let got = tokens
            .verify(token.expose_secret(), &required)
            .await
            .unwrap();
        assert_eq!(
            (got.id.clone(), got.owner.clone()),
            (info.id.clone(), alice())
        );
    }
    let err = tokens
        .verify(token.expose_secret(), &[read.clone(), audit.clone()])
        .await
        .unwrap_err();
    match &err {
        Error::InsufficientScope { missing } => assert_eq!(missing, &[audit.clone()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InsufficientScope);
    assert_eq!(
        err.to_problem().extensions["missing_scopes"][0],
        "read:audit"
    );
    tokens.flush().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn expired_revoked_and_inactive_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::new(store.clone(), clock.clone());
    let read = scope("read:records");
    let hour = Some(start() + Duration::from_secs(3600));
    let (_, expiring) = tokens
        .create(&alice(), "a", &[read.clone()], hour)
        .await
        .unwrap();
    let (revoked_info, revoked) = tokens
        .create(&alice(), "b", &[read.clone()], hour)
        .await
        .unwrap();
    let (paused_info, paused) = tokens
        .create(&alice(), "c", &[read.clone()], hour)
        .await
        .unwrap();

    tokens.revoke(&alice(), &revoked_info.id).await.unwrap();
    tokens
        .set_active(&alice(), &paused_info.id, false)
        .await
        .unwrap();
    let refused = |t: &str| {
        let tokens = tokens.clone();
        let (t, read) = (t.to_owned(), read.clone());
        async move { reason(&tokens.verify(&t, &[read]).await.unwrap_err()) }
    };
    assert_eq!(
        refused(revoked.expose_secret()).await,
        Some(ApiTokenRejection::Revoked)
    );
    assert_eq!(
        refused(paused.expose_secret()).await,
        Some(ApiTokenRejection::Inactive)
    );
    // Resuming works; resuming a revoked token does not un-revoke it.
    tokens
        .set_active(&alice(), &paused_info.id, true)
        .await
        .unwrap();
    tokens
        .verify(paused.expose_secret(), &[read.clone()])
        .await
        .unwrap();
    tokens
        .set_active(&alice(), &revoked_info.id, true)
        .await
        .unwrap();
    assert_eq!(
        refused(revoked.expose_secret()).await,
        Some(ApiTokenRejection::Revoked)
    );

    clock.advance(Duration::from_secs(3599));
    tokens
        .verify(expiring.expose_secret(), &[read.clone()])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        refused(expiring.expose_secret()).await,
        Some(ApiTokenRejection::Expired)
    );
    let e = tokens
        .verify(expiring.expose_secret(), &[])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.to_problem().status),
        (ErrorKind::Unauthorized, 401)
    );
    assert_eq!(e.to_problem().extensions["reason"], "expired");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_changed_character_or_garbage_never_reaches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Counting::new(sqlite(&dir).await);
    let tokens = ApiTokens::new(Arc::clone(&store), ManualClock::new(start()));
    let read = scope("read:connections");
    let (_, token) = alices_token(&tokens, &read).await;
    let token = token.expose_secret().to_owned();
    let before = store.calls();
    assert_eq!(before, 1, "create is one insert");

    // Every position after the prefix, random part and checksum alike.
    for pos in 4..TOKEN_LEN {
        let mut bytes = token.clone().into_bytes();
        bytes[pos] = other_char(bytes[pos], pos as u8);
        let changed = String::from_utf8(bytes).unwrap();
        let e = tokens.verify(&changed, &[read.clone()]).await.unwrap_err();
        assert_eq!(
            reason(&e),
            Some(ApiTokenRejection::BadChecksum),
            "position {pos}"
        );
    }
    let garbage = [
        String::new(),
        "cst_".to_owned(),
        "x".repeat(10 << 20),
        format!("ghp_{}", &token[4..]),
        format!("CST_{}", &token[4..]),
        format!("{}ü{}", &token[..20], &token[22..]),
        format!("{} ", &token[..TOKEN_LEN - 1]),
        format!(" {}", &token[1..]),
        token[..TOKEN_LEN - 1].to_owned(),
        format!("{token}0"),
        "cst_\0\0\0".to_owned(),
        "🦀".repeat(14),
    ];
    for g in &garbage {
        let e = tokens.verify(g, &[]).await.unwrap_err();
        assert_eq!(reason(&e), Some(ApiTokenRejection::Malformed), "{:.40?}", g);
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }
    assert_eq!(
        store.calls(),
        before,
        "a refused shape or checksum touched the store"
    );
    tokens.flush().await.unwrap();
    assert_eq!(
        store.calls(),
        before,
        "refusals before the store log nothing"
    );

    // A well-formed token that was never issued costs one lookup.
    let unknown = {
        let (_, t) = ApiTokens::new(MemoryStore::new(), ManualClock::new(start()))
            .create(
                &alice(),
                "elsewhere",
                &[read.clone()],
                Some(start() + Duration::from_secs(60)),
            )
            .await
            .unwrap();
        t.expose_secret().to_owned()
    };
    let e = tokens.verify(&unknown, &[]).await.unwrap_err();
    assert_eq!(reason(&e), Some(ApiTokenRejection::Unknown));
    assert_eq!(store.calls(), before + 1);
}

#[tokio::test]
async fn the_database_never_holds_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let tokens = ApiTokens::new(store.clone(), ManualClock::new(start()));
    let read = scope("read:export");
    let mut issued = Vec::new();
    for i in 0..20 {
        let (info, t) = tokens
            .create(
                &alice(),
                &format!("t{i}"),
                &[read.clone()],
                Some(start() + Duration::from_secs(60)),
            )
            .await
            .unwrap();
        tokens
            .verify(t.expose_secret(), &[read.clone()])
            .await
            .unwrap();
        tokens.rename(&alice(), &info.id, "renamed").await.unwrap();
        issued.push(t.expose_secret().to_owned());
    }
    tokens.flush().await.unwrap();
    // Scan while open (WAL and shared memory present), then after closing.
    let scan = |label: &str| {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            if let Ok(b) = std::fs::read(&p) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 4096, "{label}: nothing scanned");
        for t in &issued {
            for needle in [t.as_bytes(), &t.as_bytes()[4..47], &t.as_bytes()[4..24]] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{label}: token text found in the database files"
                );
            }
        }
        bytes
    };
    scan("open");
    store.close().await.unwrap();
    let bytes = scan("closed");
    // The scan does see the rows: the tokens' SHA-256 hashes are there.
    let hash: [u8; 32] = sha2::Sha256::digest(issued[0].as_bytes()).into();
    assert!(
        bytes.windows(32).any(|w| w == hash),
        "the stored hash was not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_log_and_last_used_at_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::new(store.clone(), clock.clone());
    let (read, write) = (scope("read:connections"), scope("write:connections"));
    let (info, token) = tokens
        .create(
            &alice(),
            "cli",
            &[read.clone()],
            Some(start() + Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert_eq!(info.last_used_at, None);
    let t = token.expose_secret();
    clock.advance(Duration::from_secs(10));
    tokens.verify(t, &[read.clone()]).await.unwrap();
    clock.advance(Duration::from_secs(70)); // more than LAST_USED_RESOLUTION
    tokens
        .verify_for(t, &[read.clone()], "GET /v1/connections")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    tokens.verify(t, &[write.clone()]).await.unwrap_err();
    tokens.flush().await.unwrap();

    let log = tokens.usage(&alice(), &info.id, 10).await.unwrap();
    let seen: Vec<(SystemTime, &str, UsageOutcome)> = log
        .iter()
        .map(|u| (u.at, u.operation.as_str(), u.outcome))
        .collect();
    let s = |n| start() + Duration::from_secs(n);
    assert_eq!(
        seen,
        [
            (s(90), "write:connections", UsageOutcome::InsufficientScope),
            (s(80), "GET /v1/connections", UsageOutcome::Allowed),
            (s(10), "read:connections", UsageOutcome::Allowed),
        ]
    );
    assert!(log.iter().all(|u| u.token == info.id));
    assert_eq!(tokens.usage(&alice(), &info.id, 1).await.unwrap().len(), 1);
    let listed = tokens.list(&alice()).await.unwrap();
    assert_eq!(
        listed[0].last_used_at,
        Some(s(80)),
        "the latest allowed use"
    );
    assert_eq!(
        tokens.verify(t, &[]).await.unwrap().last_used_at,
        Some(s(80)),
        "verify returns the stored metadata"
    );
    let bad_op = tokens.verify_for(t, &[], "two\nlines").await.unwrap_err();
    assert_eq!(bad_op.kind(), ErrorKind::InvalidInput);
    assert_eq!(tokens.usage_lost(), 0);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_task_writes_the_log_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::builder(store.clone(), clock.clone())
        .usage_flush_interval(Duration::from_millis(20))
        .build();
    let read = scope("read:consent");
    let (info, token) = alices_token(&tokens, &read).await;
    for _ in 0..5 {
        tokens
            .verify(token.expose_secret(), &[read.clone()])
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    // A different operation and a refusal: entries of their own.
    tokens
        .verify_for(token.expose_secret(), &[read.clone()], "GET /x")
        .await
        .unwrap();
    tokens
        .verify(token.expose_secret(), &[scope("write:webhooks")])
        .await
        .unwrap_err();
    let mut log = Vec::new();
    for _ in 0..300 {
        log = tokens.usage(&alice(), &info.id, 100).await.unwrap();
        if log.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.len(), 3, "the spawned flush did not write the buffer");
    let allowed = log
        .iter()
        .find(|u| u.operation == "read:consent")
        .expect("the five identical uses");
    assert_eq!(allowed.count, 5, "identical uses of one interval merge");
    assert_eq!(allowed.first_at, start());
    assert_eq!(allowed.at, start() + Duration::from_secs(4));
    assert!(log.iter().any(|u| u.operation == "GET /x" && u.count == 1));
    assert!(
        log.iter()
            .any(|u| u.outcome == UsageOutcome::InsufficientScope && u.count == 1)
    );
    store.close().await.unwrap();
}

/// The background task holds the store only while it writes: a host that
/// flushes, drops its `ApiTokens` and closes the store closes the last
/// handle, and the WAL is in the database file (a copy of the file alone
/// has the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_flush_the_store_closes_at_once_with_the_log_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let path = store.path().to_path_buf();
    let tokens = ApiTokens::builder(store.clone(), ManualClock::new(start()))
        .usage_flush_interval(Duration::from_secs(30))
        .build();
    let read = scope("read:consent");
    let (info, token) = alices_token(&tokens, &read).await;
    tokens
        .verify(token.expose_secret(), &[read.clone()])
        .await
        .unwrap();
    tokens.flush().await.unwrap();
    drop(tokens);
    store.close().await.unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let reopened = SqliteStore::open(&copy).await.unwrap();
    let log = reopened
        .api_token_usage(&alice(), &info.id, 10)
        .await
        .unwrap()
        .expect("the token is in the copied file");
    assert_eq!(log.len(), 1);
    reopened.close().await.unwrap();
}

#[test]
fn a_full_buffer_is_written_by_the_call_that_fills_it() {
    // A current-thread runtime never runs the spawned flush while this
    // future does not yield, and MemoryStore never yields: only the inline
    // write of a full buffer can put entries in the store.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = MemoryStore::new();
        let tokens = ApiTokens::builder(store.clone(), ManualClock::new(start()))
            .usage_buffer(3)
            .build();
        let read = scope("read:consent");
        let (info, token) = alices_token(&tokens, &read).await;
        let owner = alice();
        let logged = || store.api_token_usage(&owner, &info.id, 100);
        // Three distinct entries (three operations) fill it.
        let verify = |op: &'static str| {
            tokens.verify_for(token.expose_secret(), std::slice::from_ref(&read), op)
        };
        for op in ["op1", "op2", "op1", "op2"] {
            verify(op).await.unwrap();
        }
        assert_eq!(
            logged().await.unwrap().unwrap().len(),
            0,
            "buffered (two entries), not yet written"
        );
        verify("op3").await.unwrap();
        assert_eq!(
            logged().await.unwrap().unwrap().len(),
            3,
            "the full buffer was written inline"
        );
        verify("op1").await.unwrap();
        tokens.flush().await.unwrap();
        let log = logged().await.unwrap().unwrap();
        let counts: Vec<(&str, u64)> = log
            .iter()
            .map(|u| (u.operation.as_str(), u.count))
            .collect();
        assert_eq!(counts, [("op1", 1), ("op3", 1), ("op2", 2), ("op1", 2)]);
    });
}

#[tokio::test]
async fn list_rename_set_active_and_other_owners() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::new(store.clone(), clock.clone());
    let read = [scope("read:webhooks")];
    let exp = Some(start() + Duration::from_secs(86_400));
    let (a, _) = tokens.create(&alice(), "first", &read, exp).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let (b, _) = tokens.create(&alice(), "second", &read, exp).await.unwrap();
    let mallory = UserId::in_tenant("acme", "mallory").unwrap();
    let alice_elsewhere = UserId::in_tenant("globex", "alice").unwrap();
    let (m, _) = tokens.create(&mallory, "mine", &read, exp).await.unwrap();

    let names = |l: Vec<ApiTokenInfo>| l.into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(
        names(tokens.list(&alice()).await.unwrap()),
        ["first", "second"]
    );
    assert_eq!(names(tokens.list(&mallory).await.unwrap()), ["mine"]);
    assert!(tokens.list(&alice_elsewhere).await.unwrap().is_empty());

    let renamed = tokens
        .rename(&alice(), &b.id, "  deploy 🚀  ")
        .await
        .unwrap();
    assert_eq!(renamed.name, "  deploy 🚀  ");
    let paused = tokens.set_active(&alice(), &a.id, false).await.unwrap();
    assert!(!paused.active);
    let listed = tokens.list(&alice()).await.unwrap();
    assert_eq!(
        (listed[0].active, listed[1].name.as_str()),
        (false, "  deploy 🚀  ")
    );

    for stranger in [&mallory, &alice_elsewhere] {
        let nf = |r: consentry::Result<ApiTokenInfo>| r.unwrap_err().kind();
        assert_eq!(
            nf(tokens.rename(stranger, &a.id, "x").await),
            ErrorKind::NotFound
        );
        assert_eq!(
            nf(tokens.set_active(stranger, &a.id, true).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            nf(tokens.revoke(stranger, &a.id).await),
            ErrorKind::NotFound
        );
        let e = tokens.usage(stranger, &a.id, 10).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { what: "API token" }), "{e:?}");
    }
    assert_eq!(
        tokens
            .rename(&alice(), &m.id, "x")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let unchanged = tokens.list(&alice()).await.unwrap();
    assert_eq!(
        (unchanged[0].active, unchanged[0].revoked_at),
        (false, None)
    );
    assert_eq!(names(tokens.list(&mallory).await.unwrap()), ["mine"]);

    for bad in ["", "   ", "a\nb", "tab\there", &"n".repeat(129)] {
        let e = tokens.rename(&alice(), &a.id, bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn create_validates_its_input() {
    let clock = ManualClock::new(start());
    let tokens = ApiTokens::new(MemoryStore::new(), clock.clone());
    let read = [scope("read:connections")];
    let exp = Some(start() + Duration::from_secs(60));
    let invalid = |r: consentry::Result<(ApiTokenInfo, SecretString)>| {
        r.err().is_some_and(|e| e.kind() == ErrorKind::InvalidInput)
    };
    assert!(invalid(tokens.create(&alice(), "", &read, exp).await));
    assert!(invalid(tokens.create(&alice(), "a\u{7}", &read, exp).await));
    assert!(invalid(
        tokens.create(&alice(), &"n".repeat(129), &read, exp).await
    ));
    assert!(!invalid(
        tokens.create(&alice(), &"n".repeat(128), &read, exp).await
    ));
    assert!(invalid(tokens.create(&alice(), "x", &[], exp).await));
    assert!(invalid(
        tokens
            .create(&alice(), "x", &[scope("read:everything")], exp)
            .await
    ));
    assert!(invalid(
        tokens
            .create(&alice(), "x", &[scope("https://x/y")], exp)
            .await
    ));
    assert!(
        invalid(tokens.create(&alice(), "x", &read, None).await),
        "expiry required"
    );
    assert!(
        invalid(tokens.create(&alice(), "x", &read, Some(start())).await),
        "expiry now"
    );
    assert!(invalid(
        tokens.create(&alice(), "x", &read, Some(UNIX_EPOCH)).await
    ));

    let open = ApiTokens::builder(MemoryStore::new(), clock.clone())
        .allow_no_expiry()
        .scope("read:invoices", "Read invoices")
        .unwrap()
        .build();
    let (info, token) = open
        .create(&alice(), "forever", &[scope("read:invoices")], None)
        .await
        .unwrap();
    assert_eq!(info.expires_at, None);
    clock.advance(Duration::from_secs(100 * 365 * 86_400));
    open.verify(token.expose_secret(), &[scope("read:invoices")])
        .await
        .unwrap();
    assert!(
        open.scopes()
            .iter()
            .any(|s| s.scope.as_str() == "read:invoices")
    );
    assert!(
        tokens
            .scopes()
            .iter()
            .all(|s| s.scope.as_str() != "read:invoices")
    );
}

#[tokio::test]
async fn debug_output_never_shows_a_secret() {
    let tokens = ApiTokens::new(MemoryStore::new(), ManualClock::new(start()));
    let (info, token) = tokens
        .create(
            &alice(),
            "t",
            &[scope("read:audit")],
            Some(start() + Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let secret = token.expose_secret();
    let random_part = &secret[4..47];
    for shown in [
        format!("{info:?}"),
        format!("{token:?}"),
        format!("{tokens:?}"),
        format!("{:?}", tokens.verify(secret, &[]).await),
        format!("{:?}", tokens.verify(secret, &[scope("write:sync")]).await),
    ] {
        assert!(!shown.contains(random_part), "{shown}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// CRC32 catches every single-character change, wherever it is and
    /// whatever it becomes (a different byte in the 47-byte head is a burst
    /// of at most 8 bits; a changed checksum character changes the
    /// checksum).
    #[test]
    fn any_single_character_change_fails_the_checksum(pos in 4..TOKEN_LEN, shift in 0u8..61, seed in any::<u64>()) {
        let _ = seed; // a fresh random token per case
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let token = rt.block_on(async {
            ApiTokens::new(MemoryStore::new(), ManualClock::new(start()))
                .create(&alice(), "p", &[scope("read:audit")], Some(start() + Duration::from_secs(1)))
                .await
                .unwrap()
                .1
        });
        let mut bytes = token.expose_secret().as_bytes().to_vec();
        bytes[pos] = other_char(bytes[pos], shift);
        let changed = String::from_utf8(bytes).unwrap();
        let e = check_format(&changed).unwrap_err();
        prop_assert_eq!(reason(&e), Some(ApiTokenRejection::BadChecksum));
    }

    /// No string makes `check_format` panic, and no string of the wrong
    /// length passes.
    #[test]
    fn arbitrary_strings_are_refused_without_panicking(s in any::<String>()) {
        let r = check_format(&s);
        if s.len() != TOKEN_LEN {
            prop_assert!(r.is_err());
        }
    }
}

/// Alice's token "t" with scope `read`, expiring a minute after `start()`.
async fn alices_token(tokens: &ApiTokens, read: &Scope) -> (ApiTokenInfo, SecretString) {
    tokens
        .create(
            &alice(),
            "t",
            std::slice::from_ref(read),
            Some(start() + Duration::from_secs(60)),
        )
        .await
        .unwrap()
}
