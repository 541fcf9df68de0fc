//! Conformance cases for connections, revocations, consent, pending
//! authorizations and leases.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::connection::{AccountInfo, Connection, ConnectionStatus};
use crate::error::Error;
use crate::ids::{ConnectionId, ConnectorId, Purpose, Scope, UserId};
use crate::store::{
    ConnectionWrite, ConsentEntry, CredentialKey, CredentialWrite, PendingAuthorization,
    QueuedRevocation, Store,
};
use crate::vault::{CredentialKind, KeyId, Version};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn user(name: &str) -> UserId {
    UserId::in_tenant("conformance-conn", name).unwrap()
}

fn connection(u: &UserId, id: &str, account: &str) -> Connection {
    let mut c = Connection::new(
        ConnectionId::new(id).unwrap(),
        u.clone(),
        ConnectorId::new("conformance-provider").unwrap(),
        AccountInfo::new(account).with_email(format!("{account}@example.test")),
        t(0),
    );
    c.scopes = vec![
        Scope::new("openid").unwrap(),
        Scope::new("https://example.test/read").unwrap(),
    ];
    c
}

fn cred(c: &Connection, kind: CredentialKind, bytes: &[u8]) -> CredentialWrite {
    CredentialWrite::new(
        CredentialKey::new(c.user.clone(), c.id.clone(), kind),
        bytes.to_vec(),
    )
}

fn purpose(p: &str) -> Purpose {
    Purpose::new(p).unwrap()
}

/// Creating a connection stores the row and its credentials together;
/// updates are compare-and-swap on the revision; one account per user and
/// connector.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::connection_create_update_and_uniqueness(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn connection_create_update_and_uniqueness(store: &dyn Store) {
    let u = user("crud");
    let mut c = connection(&u, "conn-a", "acct-1");
    c.access_expires_at = Some(t(3600));
    c.has_refresh_token = true;
    let written = store
        .write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![
            cred(&c, CredentialKind::AccessToken, b"at1"),
            cred(&c, CredentialKind::RefreshToken, b"rt1"),
        ]))
        .await
        .unwrap();
    assert_eq!(written.revision, 1);
    assert_eq!(written.versions, vec![Version::new(1), Version::new(1)]);
    let got = store
        .get_connection(&u, &c.id)
        .await
        .unwrap()
        .expect("created connection");
    c.revision = 1;
    assert_eq!(got, c, "a connection reads back exactly as written");
    let found = store
        .find_connection(&u, &c.connector, "acct-1")
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.id), Some(c.id.clone()));
    assert!(
        store
            .find_connection(&u, &c.connector, "acct-2")
            .await
            .unwrap()
            .is_none()
    );

    // A second create with the same id, or the same account, conflicts.
    let again = store
        .write_connection(ConnectionWrite::create(c.clone()))
        .await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    let twin = connection(&u, "conn-b", "acct-1");
    let dup = store.write_connection(ConnectionWrite::create(twin)).await;
    assert!(
        matches!(dup, Err(Error::Conflict { .. })),
        "same account twice: {dup:?}"
    );

    // Update: revision moves on; a stale update writes nothing.
    let mut next = got.clone();
    next.status = ConnectionStatus::Degraded;
    next.health.consecutive_failures = 2;
    next.updated_at = t(10);
    let w = store
        .write_connection(
            ConnectionWrite::update(next.clone()).with_credentials(vec![cred(
                &c,
                CredentialKind::AccessToken,
                b"at2",
            )]),
        )
        .await
        .unwrap();
    assert_eq!((w.revision, w.versions), (2, vec![Version::new(2)]));
    let stale = store
        .write_connection(
            ConnectionWrite::update(next.clone()).with_credentials(vec![cred(
                &c,
                CredentialKind::AccessToken,
                b"at3",
            )]),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    let at = store
        .get_credential(&CredentialKey::new(
            u.clone(),
            c.id.clone(),
            CredentialKind::AccessToken,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        at.envelope, b"at2",
        "a conflicting write must not store its credentials"
    );

    // A credential expectation that fails rolls back the connection too.
    let mut fresh = store.get_connection(&u, &c.id).await.unwrap().unwrap();
    fresh.status = ConnectionStatus::ReauthRequired;
    let bad = store
        .write_connection(
            ConnectionWrite::update(fresh.clone()).with_credentials(vec![
                cred(&c, CredentialKind::RefreshToken, b"rt2").expecting(Version::new(7)),
            ]),
        )
        .await;
    assert!(matches!(bad, Err(Error::Conflict { .. })), "{bad:?}");
    let after = store.get_connection(&u, &c.id).await.unwrap().unwrap();
    assert_eq!(
        (after.revision, after.status),
        (2, ConnectionStatus::Degraded)
    );

    // Credentials of another connection are refused.
    let other = connection(&u, "conn-z", "acct-9");
    let foreign = store
        .write_connection(ConnectionWrite::create(other).with_credentials(vec![cred(
            &c,
            CredentialKind::ApiKey,
            b"x",
        )]))
        .await;
    assert!(
        matches!(foreign, Err(Error::InvalidInput { .. })),
        "{foreign:?}"
    );
    assert!(
        store
            .get_connection(&u, &ConnectionId::new("conn-z").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

/// Listing is per user, by creation time; the refresher's query returns
/// refreshable connections expiring before a time, soonest first.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::connections_list_and_expiring(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn connections_list_and_expiring(store: &dyn Store) {
    let u = user("list");
    let other = user("list-other");
    for (i, (id, expires, refresh, status)) in [
        ("e3", 300, true, ConnectionStatus::Active),
        ("e1", 100, true, ConnectionStatus::Degraded),
        ("e2", 200, false, ConnectionStatus::Active),
        ("e4", 50, true, ConnectionStatus::ReauthRequired),
        ("e5", 9_000, true, ConnectionStatus::Active),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = connection(&u, &format!("conformance-{id}"), &format!("acct-{id}"));
        c.created_at = t(i as u64);
        c.access_expires_at = Some(t(expires));
        c.has_refresh_token = refresh;
        c.status = status;
        store
            .write_connection(ConnectionWrite::create(c))
            .await
            .unwrap();
    }
    store
        .write_connection(ConnectionWrite::create(connection(
            &other,
            "conformance-o1",
            "acct-o",
        )))
        .await
        .unwrap();
    let listed: Vec<_> = store
        .list_connections(&u)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "conformance-e3",
            "conformance-e1",
            "conformance-e2",
            "conformance-e4",
            "conformance-e5"
        ]
    );
    let due: Vec<_> = store
        .connections_expiring(t(1_000), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.user == u)
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(
        due,
        ["conformance-e1", "conformance-e3"],
        "refreshable, active or degraded, soonest first"
    );
    let limited = store.connections_expiring(t(1_000), 1).await.unwrap();
    assert_eq!(limited.len(), 1);
}

/// The access view reads the connection, consent for one purpose and one
/// credential together; consent is derived from the latest ledger entry.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::access_view_and_consent_ledger(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn access_view_and_consent_ledger(store: &dyn Store) {
    let u = user("view");
    let c = connection(&u, "conn-view", "acct-view");
    assert!(
        store
            .access_view(&u, &c.id, &purpose("matching"), CredentialKind::AccessToken)
            .await
            .unwrap()
            .is_none()
    );
    store
        .write_connection(
            ConnectionWrite::create(c.clone()).with_credentials(vec![cred(
                &c,
                CredentialKind::AccessToken,
                b"at",
            )]),
        )
        .await
        .unwrap();
    let view = store
        .access_view(&u, &c.id, &purpose("matching"), CredentialKind::AccessToken)
        .await
        .unwrap()
        .unwrap();
    assert!(!view.consented, "no consent by default");
    assert_eq!(view.credential.map(|s| s.envelope), Some(b"at".to_vec()));
    assert_eq!(view.connection.id, c.id);

    let entry = |p: &str, granted: bool, at: u64| {
        ConsentEntry::new(
            u.clone(),
            c.id.clone(),
            purpose(p),
            granted,
            "user:view",
            "v1",
            t(at),
        )
    };
    let s1 = store
        .append_consent(entry("matching", true, 1))
        .await
        .unwrap();
    let s2 = store
        .append_consent(entry("recommendations", true, 2))
        .await
        .unwrap();
    assert!(s2 > s1, "sequence numbers grow");
    assert!(
        store
            .access_view(&u, &c.id, &purpose("matching"), CredentialKind::AccessToken)
            .await
            .unwrap()
            .unwrap()
            .consented
    );
    let other_kind = store
        .access_view(
            &u,
            &c.id,
            &purpose("matching"),
            CredentialKind::RefreshToken,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(other_kind.credential.is_none());
    store
        .append_consent(entry("matching", false, 3))
        .await
        .unwrap();
    assert!(
        !store
            .access_view(&u, &c.id, &purpose("matching"), CredentialKind::AccessToken)
            .await
            .unwrap()
            .unwrap()
            .consented
    );
    let purposes = store.consented_purposes(&u, &c.id).await.unwrap();
    assert_eq!(purposes, vec![purpose("recommendations")]);
    let history = store.consent_history(&u, Some(&c.id)).await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|e| (e.purpose.to_string(), e.granted))
        .collect();
    assert_eq!(
        summary,
        [
            ("matching".into(), true),
            ("recommendations".into(), true),
            ("matching".into(), false)
        ]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(history[2].actor, "user:view");
    assert_eq!(history[2].at, t(3));
    assert_eq!(store.consent_history(&u, None).await.unwrap().len(), 3);

    let bad = ConsentEntry::new(
        u.clone(),
        c.id.clone(),
        purpose("matching"),
        true,
        "line\nbreak",
        "v1",
        t(4),
    );
    assert!(matches!(
        store.append_consent(bad).await,
        Err(Error::InvalidInput { .. })
    ));
}

/// Deleting a connection removes its row, credentials and consent, moves the
/// requested credentials to the revocation queue unchanged, and leaves other
/// connections alone.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::delete_connection_and_revocation_queue(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn delete_connection_and_revocation_queue(store: &dyn Store) {
    let u = user("delete");
    let c = connection(&u, "conn-del", "acct-del");
    let keep = connection(&u, "conn-keep", "acct-keep");
    for x in [&c, &keep] {
        store
            .write_connection(ConnectionWrite::create(x.clone()).with_credentials(vec![
                cred(x, CredentialKind::AccessToken, b"at-bytes"),
                cred(x, CredentialKind::RefreshToken, b"rt-bytes"),
            ]))
            .await
            .unwrap();
        store
            .append_consent(ConsentEntry::new(
                u.clone(),
                x.id.clone(),
                purpose("matching"),
                true,
                "user",
                "v1",
                t(1),
            ))
            .await
            .unwrap();
    }
    let queue = vec![
        QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t(60)),
        QueuedRevocation::new(CredentialKind::IdToken, c.connector.clone(), t(60)), // not stored: skipped
    ];
    let deleted = store.delete_connection(&u, &c.id, queue).await.unwrap();
    assert!(deleted.connection);
    assert_eq!(deleted.credentials, 2);
    assert_eq!(deleted.consent_entries, 1);
    assert_eq!(deleted.queued.len(), 1);
    assert!(store.get_connection(&u, &c.id).await.unwrap().is_none());
    let creds: Vec<_> = store
        .list_credentials(&u)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.connection)
        .collect();
    assert!(creds.iter().all(|id| *id == keep.id) && creds.len() == 2);
    assert!(
        store
            .consented_purposes(&u, &c.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .consent_history(&u, Some(&c.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.consented_purposes(&u, &keep.id).await.unwrap(),
        vec![purpose("matching")]
    );

    let queued = store.user_revocations(&u).await.unwrap();
    assert_eq!(queued.len(), 1);
    let q = &queued[0];
    assert_eq!(
        (q.id, &q.connection, q.kind, &q.envelope[..], q.attempts),
        (
            deleted.queued[0],
            &c.id,
            CredentialKind::RefreshToken,
            &b"rt-bytes"[..],
            0
        )
    );
    assert!(
        store
            .due_revocations(t(59), 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != q.id)
    );
    assert!(
        store
            .due_revocations(t(60), 10)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == q.id)
    );
    store.reschedule_revocation(q.id, 1, t(120)).await.unwrap();
    assert!(
        store
            .due_revocations(t(100), 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != q.id)
    );
    let again = store.due_revocations(t(120), 10).await.unwrap();
    assert_eq!(
        again.iter().find(|r| r.id == q.id).map(|r| r.attempts),
        Some(1)
    );
    assert!(store.remove_revocation(q.id).await.unwrap());
    assert!(!store.remove_revocation(q.id).await.unwrap());

    let nothing = store.delete_connection(&u, &c.id, vec![]).await.unwrap();
    assert!(!nothing.connection && nothing.credentials == 0);
}

/// A pending authorization is single use and only its user can take it.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::pending_authorizations_are_single_use(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn pending_authorizations_are_single_use(store: &dyn Store) {
    let u = user("pending");
    let stranger = user("pending-other");
    let p = PendingAuthorization::new(
        [0x5a; 32],
        u.clone(),
        ConnectorId::new("conformance-provider").unwrap(),
        "https://app.example/callback".into(),
        vec![Scope::new("openid").unwrap()],
        KeyId::new("k1").unwrap(),
        t(0),
        t(600),
    );
    store.put_pending_authorization(p.clone()).await.unwrap();
    assert!(matches!(
        store.put_pending_authorization(p.clone()).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        store
            .take_pending_authorization(&p.state_hash, &stranger)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .take_pending_authorization(&p.state_hash, &u)
            .await
            .unwrap(),
        Some(p.clone()),
        "another user's attempt must not consume it"
    );
    assert!(
        store
            .take_pending_authorization(&p.state_hash, &u)
            .await
            .unwrap()
            .is_none(),
        "single use"
    );

    let mut old = p.clone();
    old.state_hash = [0x5b; 32];
    old.expires_at = t(10);
    store.put_pending_authorization(old.clone()).await.unwrap();
    let mut live = p;
    live.state_hash = [0x5c; 32];
    store.put_pending_authorization(live.clone()).await.unwrap();
    assert!(store.purge_pending_authorizations(t(11)).await.unwrap() >= 1);
    assert!(
        store
            .take_pending_authorization(&old.state_hash, &u)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_pending_authorization(&live.state_hash, &u)
            .await
            .unwrap()
            .is_some()
    );
}

/// A lease has one owner at a time, is extended by its owner, is free
/// after it expires, and is released only by its owner.
///
/// ```
/// use consentry::store::{conformance, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Panics if the store misbehaves:
/// conformance::leases_have_one_owner(&MemoryStore::new()).await;
/// # });
/// ```
pub async fn leases_have_one_owner(store: &dyn Store) {
    let name = "conformance-lease";
    assert!(store.acquire_lease(name, "a", t(30), t(0)).await.unwrap());
    assert!(
        !store.acquire_lease(name, "b", t(40), t(10)).await.unwrap(),
        "held by a"
    );
    assert!(
        store.acquire_lease(name, "a", t(60), t(20)).await.unwrap(),
        "the owner extends"
    );
    assert!(
        !store.acquire_lease(name, "b", t(70), t(50)).await.unwrap(),
        "extended to 60"
    );
    assert!(
        !store.release_lease(name, "b").await.unwrap(),
        "only the owner releases"
    );
    assert!(
        store.acquire_lease(name, "b", t(90), t(60)).await.unwrap(),
        "expired at 60"
    );
    assert!(!store.release_lease(name, "a").await.unwrap(), "a lost it");
    assert!(store.release_lease(name, "b").await.unwrap());
    assert!(
        store.acquire_lease(name, "c", t(100), t(61)).await.unwrap(),
        "free after release"
    );
}
