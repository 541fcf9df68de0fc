//! The vault's guarantees, tested against the real SQLite store on disk.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::store::{CredentialStore, DataKeyStore, MemoryStore, SqliteStore, WrappedDataKey};
use consentry::vault::{CredentialKind, KeyId, Keyring, Vault, Version};
use consentry::{ConnectionId, Error, ErrorKind, UserId};

fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn cid(s: &str) -> ConnectionId {
    ConnectionId::new(s).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// The database file and the WAL and shared-memory files next to it.
fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .filter(|p| p.exists())
        .collect()
}

fn files_contain(db: &Path, needle: &[u8]) -> bool {
    db_files(db).iter().any(|f| {
        let bytes = std::fs::read(f).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// Every base64 rendering of `marker` that could appear inside a longer
/// encoded string: standard and URL-safe alphabets, at all three byte
/// alignments, without the partial trailing characters.
fn base64_forms(marker: &[u8]) -> Vec<Vec<u8>> {
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut out = Vec::new();
    for engine in engines {
        for skip in 0..3 {
            let full = &marker[skip..];
            let usable = full.len() / 3 * 3;
            out.push(engine.encode(&full[..usable]).into_bytes());
        }
    }
    out
}

async fn sqlite(dir: &tempfile::TempDir) -> (SqliteStore, PathBuf) {
    let path = dir.path().join("vault.db");
    (SqliteStore::open(&path).await.unwrap(), path)
}

#[tokio::test]
async fn plaintext_never_reaches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
    let marker = format!("MARKER-{}-never-on-disk", std::process::id());
    let user = UserId::in_tenant("acme", "alice").unwrap();
    for (i, kind) in CredentialKind::ALL.into_iter().enumerate() {
        let c = cid(&format!("conn_{i}"));
        vault
            .put(&user, &c, kind, secret(&format!("{marker}-{i}")))
            .await
            .unwrap();
        // Rewrite it a few times, so old page images pile up in the WAL.
        for round in 0..3 {
            vault
                .put(&user, &c, kind, secret(&format!("{marker}-{i}-{round}")))
                .await
                .unwrap();
        }
        let got = vault.get(&user, &c, kind).await.unwrap();
        assert_eq!(got.value.expose_secret(), format!("{marker}-{i}-2"));
    }
    let mut needles = vec![marker.as_bytes().to_vec()];
    needles.extend(base64_forms(marker.as_bytes()));
    // While open (WAL populated) and after close (checkpointed into the file).
    for needle in &needles {
        assert!(
            !files_contain(&path, needle),
            "plaintext form found while open: {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    drop(vault);
    store.close().await.unwrap();
    assert!(path.exists());
    for needle in &needles {
        assert!(
            !files_contain(&path, needle),
            "plaintext form found after close: {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // The check itself can fail: a marker written raw is found.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("CREATE TABLE canary (x BLOB)", []).unwrap();
    raw.execute("INSERT INTO canary VALUES (?1)", [marker.as_bytes()])
        .unwrap();
    drop(raw);
    assert!(files_contain(&path, marker.as_bytes()));
}

/// Copies the envelope at (from) over the row at (to) with plain SQL.
fn copy_envelope(db: &Path, from: (&str, &str, &str, &str), to: (&str, &str, &str, &str)) {
    let raw = rusqlite::Connection::open(db).unwrap();
    let envelope: Vec<u8> = raw
        .query_row(
            "SELECT envelope FROM consentry_credentials WHERE tenant=?1 AND user_id=?2 AND connection=?3 AND kind=?4",
            [from.0, from.1, from.2, from.3],
            |r| r.get(0),
        )
        .unwrap();
    let n = raw
        .execute(
            "UPDATE consentry_credentials SET envelope=?5 WHERE tenant=?1 AND user_id=?2 AND connection=?3 AND kind=?4",
            rusqlite::params![to.0, to.1, to.2, to.3, envelope],
        )
        .unwrap();
    assert_eq!(n, 1, "target row must exist");
}

fn assert_crypto_error(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Crypto, "{what}: {e}"),
        Ok(v) => panic!("{what}: a moved or altered ciphertext opened: {v:?}"),
    }
}

#[tokio::test]
async fn ciphertext_moved_to_another_row_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let vault = Vault::new(store, Keyring::generate().unwrap());
    let alice = uid("alice");
    let bob = uid("bob");
    let acme_alice = UserId::in_tenant("acme", "alice").unwrap();
    let kinds = [CredentialKind::AccessToken, CredentialKind::RefreshToken];
    for u in [&alice, &bob, &acme_alice] {
        for c in ["c1", "c2"] {
            for k in kinds {
                vault
                    .put(u, &cid(c), k, secret(&format!("{u}-{c}-{k}")))
                    .await
                    .unwrap();
            }
        }
    }
    let cases = [
        (
            "another connection",
            ("", "alice", "c1", "access_token"),
            ("", "alice", "c2", "access_token"),
            (&alice, "c2", kinds[0]),
        ),
        (
            "another kind",
            ("", "alice", "c1", "access_token"),
            ("", "alice", "c1", "refresh_token"),
            (&alice, "c1", kinds[1]),
        ),
        (
            "another user",
            ("", "alice", "c1", "access_token"),
            ("", "bob", "c1", "access_token"),
            (&bob, "c1", kinds[0]),
        ),
        (
            "another tenant",
            ("", "alice", "c1", "access_token"),
            ("acme", "alice", "c1", "access_token"),
            (&acme_alice, "c1", kinds[0]),
        ),
    ];
    for (what, from, to, (u, c, k)) in cases {
        copy_envelope(&path, from, to);
        // A fresh vault too, so no cached data key hides anything.
        let fresh = Vault::new(
            SqliteStore::open(&path).await.unwrap(),
            vault.keyring().as_ref().clone(),
        );
        assert_crypto_error(vault.get(u, &cid(c), k).await.map(|v| v.version), what);
        assert_crypto_error(fresh.get(u, &cid(c), k).await.map(|v| v.version), what);
    }
    // Untouched rows still read.
    let ok = vault.get(&bob, &cid("c2"), kinds[1]).await.unwrap();
    assert_eq!(ok.value.expose_secret(), "bob-c2-refresh_token");

    // A wrapped data key copied to another user does not open either, even
    // together with that user's credentials.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "UPDATE consentry_data_keys SET id=(SELECT id FROM consentry_data_keys WHERE user_id='alice' AND tenant=''),
                                       kek=(SELECT kek FROM consentry_data_keys WHERE user_id='alice' AND tenant=''),
                                       wrapped=(SELECT wrapped FROM consentry_data_keys WHERE user_id='alice' AND tenant='')
         WHERE user_id='bob';
         UPDATE consentry_credentials SET envelope=(SELECT envelope FROM consentry_credentials WHERE user_id='alice' AND tenant='' AND connection='c2' AND kind='refresh_token')
         WHERE user_id='bob' AND connection='c2' AND kind='refresh_token';",
    )
    .unwrap();
    let fresh = Vault::new(
        SqliteStore::open(&path).await.unwrap(),
        vault.keyring().as_ref().clone(),
    );
    assert_crypto_error(
        fresh
            .get(&bob, &cid("c2"), kinds[1])
            .await
            .map(|v| v.version),
        "copied data key",
    );
}

#[tokio::test]
async fn flipping_any_byte_of_an_envelope_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
    let (u, c, k) = (
        UserId::in_tenant("t", "u").unwrap(),
        cid("c"),
        CredentialKind::AccessToken,
    );
    vault.put(&u, &c, k, secret("token-value")).await.unwrap();
    let key = consentry::store::CredentialKey::new(u.clone(), c.clone(), k);
    let original = store.get_credential(&key).await.unwrap().unwrap().envelope;
    let raw = rusqlite::Connection::open(&path).unwrap();
    for i in 0..original.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = original.clone();
            bad[i] ^= bit;
            raw.execute("UPDATE consentry_credentials SET envelope=?1", [&bad])
                .unwrap();
            assert_crypto_error(
                vault.get(&u, &c, k).await.map(|v| v.version),
                &format!("byte {i} ^ {bit:#04x}"),
            );
        }
    }
    for len in [0, 1, 10, original.len() - 1] {
        raw.execute(
            "UPDATE consentry_credentials SET envelope=?1",
            [&original[..len]],
        )
        .unwrap();
        assert_crypto_error(
            vault.get(&u, &c, k).await.map(|v| v.version),
            &format!("truncated to {len}"),
        );
    }
    raw.execute("UPDATE consentry_credentials SET envelope=?1", [&original])
        .unwrap();
    assert_eq!(
        vault.get(&u, &c, k).await.unwrap().value.expose_secret(),
        "token-value"
    );

    // The wrapped data key too.
    let wrapped = store.get_data_key(&u).await.unwrap().unwrap().wrapped;
    for i in 0..wrapped.len() {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x04;
        raw.execute("UPDATE consentry_data_keys SET wrapped=?1", [&bad])
            .unwrap();
        let fresh = Vault::new(store.clone(), vault.keyring().as_ref().clone());
        assert_crypto_error(
            fresh.get(&u, &c, k).await.map(|v| v.version),
            &format!("data key byte {i}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_without_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _path) = sqlite(&dir).await;
    let old = Keyring::generate().unwrap();
    let vault = Vault::new(store.clone(), old.clone());
    let conn = cid("conn");
    let expected: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for i in 0..40 {
        let user = format!("u{i:03}");
        let value = format!("{user}-v0");
        vault
            .put(
                &uid(&user),
                &conn,
                CredentialKind::RefreshToken,
                secret(&value),
            )
            .await
            .unwrap();
        expected.lock().unwrap().insert(user, value);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (vault, conn, expected, stop, ops) = (
            vault.clone(),
            conn.clone(),
            expected.clone(),
            stop.clone(),
            ops.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Each task owns the users i % 4 == t, and now and then adds one.
                let i = if n.is_multiple_of(25) {
                    1000 + t * 1000 + n
                } else {
                    (n * 4 + t) % 40
                };
                let user = format!("u{i:03}");
                let value = format!("{user}-t{t}-n{n}");
                vault
                    .put(
                        &uid(&user),
                        &conn,
                        CredentialKind::RefreshToken,
                        secret(&value),
                    )
                    .await?;
                expected.lock().unwrap().insert(user.clone(), value.clone());
                let got = vault
                    .get(&uid(&user), &conn, CredentialKind::RefreshToken)
                    .await?;
                assert_eq!(got.value.expose_secret(), value);
                // And someone else's.
                let other = format!("u{:03}", (n * 7 + t + 1) % 40);
                vault
                    .get(&uid(&other), &conn, CredentialKind::RefreshToken)
                    .await?;
                ops.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>(n)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let new = old.rotated().unwrap();
    vault.set_keyring(new.clone());
    let k1 = KeyId::new("k1").unwrap();
    match vault.retire(&k1).await {
        Err(Error::KeyInUse { key_id, data_keys }) => assert!(key_id == k1 && data_keys > 0),
        other => panic!("retire before rewrap must be refused, got {other:?}"),
    }
    let ops_before = ops.load(Ordering::Relaxed);
    let report = vault.rewrap().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(report.rewrapped >= 40, "{report:?}");
    vault.retire(&k1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(
        ops.load(Ordering::Relaxed) > ops_before,
        "tasks kept working during the rotation"
    );

    let usage = vault.key_usage().await.unwrap();
    assert_eq!(
        usage.keys().map(KeyId::as_str).collect::<Vec<_>>(),
        ["k2"],
        "{usage:?}"
    );
    // A vault that has only the new key reads everything back.
    let only_new = Keyring::parse(new.without(&k1).unwrap().export().expose_secret()).unwrap();
    let fresh = Vault::new(SqliteStore::open(store.path()).await.unwrap(), only_new);
    let expected = expected.lock().unwrap().clone();
    assert!(expected.len() > 40);
    for (user, value) in &expected {
        let got = fresh
            .get(&uid(user), &conn, CredentialKind::RefreshToken)
            .await
            .unwrap();
        assert_eq!(got.value.expose_secret(), value, "{user}");
    }
}

#[tokio::test]
async fn an_unknown_key_is_named_in_the_error() {
    let store = MemoryStore::new();
    let vault = Vault::new(
        store.clone(),
        Keyring::generate().unwrap().rotated().unwrap(),
    );
    let (u, c, k) = (uid("u"), cid("c"), CredentialKind::AccessToken);
    vault.put(&u, &c, k, secret("x")).await.unwrap();

    let stranger = Keyring::parse("k9:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let err = Vault::new(store.clone(), stranger)
        .get(&u, &c, k)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::KeyNotFound { key_id } if key_id.as_str() == "k2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`k2`"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Key);

    // Same id, different key material: refused by the key commitment.
    let impostor = Keyring::parse("k2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let err = Vault::new(store, impostor)
        .get(&u, &c, k)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decrypt {
                reason: consentry::error::DecryptFailure::Commitment,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn erase_user_shreds_the_data_key_from_file_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
    let (alice, bob) = (
        UserId::in_tenant("acme", "alice").unwrap(),
        UserId::in_tenant("acme", "bob").unwrap(),
    );
    for u in [&alice, &bob] {
        for c in ["c1", "c2"] {
            vault
                .put(
                    u,
                    &cid(c),
                    CredentialKind::RefreshToken,
                    secret(&format!("{u}-{c}")),
                )
                .await
                .unwrap();
        }
    }
    // The encrypted key bytes and tag: the last 48 bytes of the envelope.
    let tail = |wrapped: &[u8]| wrapped[wrapped.len() - 48..].to_vec();
    let under_k1 = store.get_data_key(&alice).await.unwrap().unwrap();
    let old_needle = tail(&under_k1.wrapped);
    // Rewrap churn leaves older copies of the wrapped key around in the WAL.
    vault.set_keyring(vault.keyring().rotated().unwrap());
    vault.rewrap().await.unwrap();
    let wrapped_now = store.get_data_key(&alice).await.unwrap().unwrap();
    assert_eq!(
        (under_k1.kek.as_str(), wrapped_now.kek.as_str()),
        ("k1", "k2")
    );
    let needle = tail(&wrapped_now.wrapped);
    assert_ne!(needle, old_needle, "the rewrap sealed the key anew");
    assert!(
        files_contain(&path, &needle),
        "sanity: the wrapped key is on disk before erasure"
    );
    assert!(
        files_contain(&path, &old_needle),
        "sanity: the pre-rotation wrapping (under k1) is still on disk after the rewrap"
    );

    let report = vault.erase_user(&alice).await.unwrap();
    assert!(report.data_key_destroyed);
    assert_eq!(report.credentials_deleted, 2);
    assert!(
        !files_contain(&path, &needle),
        "wrapped data key bytes survive in the database or WAL"
    );
    assert!(
        !files_contain(&path, &old_needle),
        "the pre-rotation wrapping of the data key survives in the database or WAL"
    );
    assert!(store.list_credentials(&alice).await.unwrap().is_empty());
    assert!(store.get_data_key(&alice).await.unwrap().is_none());
    let err = vault
        .get(&alice, &cid("c1"), CredentialKind::RefreshToken)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        vault
            .get(&bob, &cid("c2"), CredentialKind::RefreshToken)
            .await
            .unwrap()
            .value
            .expose_secret(),
        "acme/bob-c2"
    );

    // Erasing again is a no-op that still succeeds.
    let again = vault.erase_user(&alice).await.unwrap();
    assert!(!again.data_key_destroyed && again.credentials_deleted == 0);
    drop(vault);
    store.close().await.unwrap();
    assert!(!files_contain(&path, &needle), "after close");
    assert!(
        !files_contain(&path, &old_needle),
        "pre-rotation copy, after close"
    );
}

#[tokio::test]
async fn crypto_shredding_covers_backups_of_the_data_when_keys_live_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data.db");
    let keys_path = dir.path().join("keys.db");
    let data = SqliteStore::open(&data_path).await.unwrap();
    let keys = SqliteStore::open(&keys_path).await.unwrap();
    let ring = Keyring::generate().unwrap();
    let vault = Vault::with_stores(data.clone(), keys.clone(), ring.clone());
    let alice = uid("alice");
    vault
        .put(
            &alice,
            &cid("c1"),
            CredentialKind::AccessToken,
            secret("alice-token"),
        )
        .await
        .unwrap();
    vault
        .put(
            &uid("bob"),
            &cid("c1"),
            CredentialKind::AccessToken,
            secret("bob-token"),
        )
        .await
        .unwrap();

    // Back up the data (not the keys), then erase alice.
    let backup = dir.path().join("data-backup.db");
    let backup_conn = rusqlite::Connection::open(&data_path).unwrap();
    backup_conn
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();
    drop(backup_conn);
    vault.erase_user(&alice).await.unwrap();

    // Restore the backup: alice's rows are back, but unreadable for good.
    let restored = Vault::with_stores(
        SqliteStore::open(&backup).await.unwrap(),
        keys.clone(),
        ring,
    );
    let err = restored
        .get(&alice, &cid("c1"), CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    let bob = restored
        .get(&uid("bob"), &cid("c1"), CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_eq!(bob.value.expose_secret(), "bob-token");
}

async fn increment_counter(vault: Vault) {
    let (u, c, k) = (uid("counter"), cid("c"), CredentialKind::ApiKey);
    vault.put(&u, &c, k, secret("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (vault, u, c) = (vault.clone(), u.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..500 {
                loop {
                    let cur = vault.get(&u, &c, k).await.unwrap();
                    let n: u64 = cur.value.expose_secret().parse().unwrap();
                    match vault
                        .compare_and_put(&u, &c, k, cur.version, secret(&(n + 1).to_string()))
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let end = vault.get(&u, &c, k).await.unwrap();
    assert_eq!(
        end.value.expose_secret(),
        "4000",
        "lost updates ({conflicts} conflicts retried)"
    );
    assert_eq!(end.version, Version::new(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_put_counter_memory_store() {
    increment_counter(Vault::new(MemoryStore::new(), Keyring::generate().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_put_counter_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite(&dir).await;
    increment_counter(Vault::new(store, Keyring::generate().unwrap())).await;
}

#[tokio::test]
async fn garbage_in_a_row_is_a_typed_error() {
    let store = MemoryStore::new();
    let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
    let (u, c, k) = (uid("u"), cid("c"), CredentialKind::AccessToken);
    vault.put(&u, &c, k, secret("x")).await.unwrap();
    for garbage in [
        vec![],
        vec![1],
        vec![2; 200],
        vec![1, 0, 0],
        b"{\"json\":true}".to_vec(),
    ] {
        let key = consentry::store::CredentialKey::new(u.clone(), c.clone(), k);
        store
            .put_credentials(vec![consentry::store::CredentialWrite::new(key, garbage)])
            .await
            .unwrap();
        let err = vault.get(&u, &c, k).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    }
}

/// Delegates to a SQLite store and counts the rewrap's page requests; while
/// `pause` is set, the second page request never completes, so a test can
/// drop a rewrap right after its first batch.
#[derive(Debug, Clone)]
struct PagedKeys {
    inner: SqliteStore,
    pages: Arc<AtomicU64>,
    pause: Arc<AtomicBool>,
    paused: Arc<tokio::sync::Notify>,
}

impl PagedKeys {
    fn new(inner: SqliteStore) -> Self {
        Self {
            inner,
            pages: Arc::default(),
            pause: Arc::default(),
            paused: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl DataKeyStore for PagedKeys {
    async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>, Error> {
        self.inner.get_data_key(owner).await
    }
    async fn insert_data_key(
        &self,
        owner: &UserId,
        key: WrappedDataKey,
    ) -> Result<WrappedDataKey, Error> {
        self.inner.insert_data_key(owner, key).await
    }
    async fn rewrap_data_key(
        &self,
        owner: &UserId,
        expected_kek: &KeyId,
        new: WrappedDataKey,
    ) -> Result<bool, Error> {
        self.inner.rewrap_data_key(owner, expected_kek, new).await
    }
    async fn data_keys_not_under(
        &self,
        kek: &KeyId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, WrappedDataKey)>, Error> {
        let page = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
        if page >= 2 && self.pause.load(Ordering::SeqCst) {
            self.paused.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.data_keys_not_under(kek, after, limit).await
    }
    async fn data_key_usage(&self) -> Result<std::collections::BTreeMap<KeyId, u64>, Error> {
        self.inner.data_key_usage().await
    }
    async fn destroy_data_key(&self, owner: &UserId) -> Result<bool, Error> {
        self.inner.destroy_data_key(owner).await
    }
}

/// `n` users `u0000`.., one refresh token each (so `n` data keys).
async fn seed_users(vault: &Vault, n: usize) -> HashMap<String, String> {
    let mut expected = HashMap::new();
    for i in 0..n {
        let user = format!("u{i:04}");
        let value = format!("{user}-token");
        vault
            .put(
                &uid(&user),
                &cid("conn"),
                CredentialKind::RefreshToken,
                secret(&value),
            )
            .await
            .unwrap();
        expected.insert(user, value);
    }
    expected
}

/// Reads every credential back through a fresh vault holding only `new`'s
/// primary key.
async fn read_back_with_only_the_new_key(
    path: &Path,
    new: &Keyring,
    expected: &HashMap<String, String>,
) {
    let k1 = KeyId::new("k1").unwrap();
    let only_new = if new.contains(&k1) {
        new.without(&k1).unwrap()
    } else {
        new.clone()
    };
    assert!(!only_new.contains(&k1));
    let fresh = Vault::new(SqliteStore::open(path).await.unwrap(), only_new);
    for (user, value) in expected {
        let got = fresh
            .get(&uid(user), &cid("conn"), CredentialKind::RefreshToken)
            .await
            .unwrap();
        assert_eq!(got.value.expose_secret(), value, "{user}");
    }
}

#[tokio::test]
async fn rewrap_walks_every_batch_of_more_than_600_data_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let keys = PagedKeys::new(store.clone());
    let vault = Vault::with_stores(store.clone(), keys.clone(), Keyring::generate().unwrap());
    let expected = seed_users(&vault, 700).await;
    let k1 = KeyId::new("k1").unwrap();
    assert_eq!(vault.key_usage().await.unwrap().get(&k1), Some(&700));

    vault.set_keyring(vault.keyring().rotated().unwrap());
    let report = vault.rewrap().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!((report.rewrapped, report.skipped), (700, 0), "{report:?}");
    // 256 + 256 + 188 (the cursor moved on twice), then one more walk
    // that finds nothing left behind it.
    assert_eq!(keys.pages.load(Ordering::SeqCst), 4);
    let usage = vault.key_usage().await.unwrap();
    assert_eq!(usage.get(&k1), None, "nothing left under k1: {usage:?}");
    assert_eq!(usage.get(&KeyId::new("k2").unwrap()), Some(&700));
    read_back_with_only_the_new_key(&path, &vault.keyring(), &expected).await;
    vault.retire(&k1).await.unwrap();
}

#[tokio::test]
async fn an_interrupted_rewrap_is_resumed_and_retire_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = sqlite(&dir).await;
    let keys = PagedKeys::new(store.clone());
    let vault = Vault::with_stores(store.clone(), keys.clone(), Keyring::generate().unwrap());
    let mut expected = seed_users(&vault, 700).await;
    let (k1, k2) = (KeyId::new("k1").unwrap(), KeyId::new("k2").unwrap());
    vault.set_keyring(vault.keyring().rotated().unwrap());

    // The first batch is rewrapped, then the run is dropped (task aborted)
    // while it asks for the second page.
    keys.pause.store(true, Ordering::SeqCst);
    let run = tokio::spawn({
        let vault = vault.clone();
        async move { vault.rewrap().await }
    });
    tokio::time::timeout(Duration::from_secs(60), keys.paused.notified())
        .await
        .expect("the rewrap reached its second page");
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let usage = vault.key_usage().await.unwrap();
    assert_eq!(
        (usage.get(&k1), usage.get(&k2)),
        (Some(&444), Some(&256)),
        "one batch done: {usage:?}"
    );

    // Half done: the old key is still needed, so retiring it is refused.
    match vault.retire(&k1).await {
        Err(Error::KeyInUse { key_id, data_keys }) => {
            assert_eq!((key_id, data_keys), (k1.clone(), 444));
        }
        other => panic!("retire during a partial rewrap must be refused, got {other:?}"),
    }
    assert!(vault.keyring().contains(&k1));
    // The application keeps writing meanwhile: users on either side of the
    // cursor, and a new one.
    for user in ["u0000", "u0699", "late"] {
        let value = format!("{user}-rewritten");
        vault
            .put(
                &uid(user),
                &cid("conn"),
                CredentialKind::RefreshToken,
                secret(&value),
            )
            .await
            .unwrap();
        expected.insert(user.to_owned(), value);
    }

    // A second run finishes the job, touching only what is left.
    keys.pause.store(false, Ordering::SeqCst);
    let report = vault.rewrap().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!((report.rewrapped, report.skipped), (444, 0), "{report:?}");
    let usage = vault.key_usage().await.unwrap();
    assert_eq!((usage.get(&k1), usage.get(&k2)), (None, Some(&701)));
    vault.retire(&k1).await.unwrap();
    read_back_with_only_the_new_key(&path, &vault.keyring(), &expected).await;
}
