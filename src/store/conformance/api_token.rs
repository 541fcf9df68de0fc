//! Conformance cases for API tokens and their usage log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::ids::{ApiTokenId, Scope, UserId};
use crate::store::{
    ApiTokenInfo, ApiTokenUpdate, ApiTokenUsage, Store, StoredApiToken, UsageOutcome,
};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn tok(name: &str) -> ApiTokenId {
    ApiTokenId::new(format!("conformance-{name}")).unwrap()
}

fn token(owner: &UserId, name: &str, hash: u8, created: u64) -> StoredApiToken {
    let mut info = ApiTokenInfo::new(
        tok(name),
        owner.clone(),
        format!("token {name}"),
        vec![
            Scope::new("read:connections").unwrap(),
            Scope::new("write:webhooks").unwrap(),
        ],
        t(created),
        Some(t(created + 86_400)),
    );
    info.last_used_at = None;
    StoredApiToken::new([hash; 32], info)
}

fn use_at(name: &str, secs: u64, op: &str, outcome: UsageOutcome) -> ApiTokenUsage {
    ApiTokenUsage::new(tok(name), t(secs), op, outcome)
}

/// A token reads back by its hash exactly as stored; an unknown hash reads
/// as `None`; a second token with the same id or hash is a `Conflict`.
pub async fn api_tokens_round_trip_by_hash(store: &dyn Store) {
    let owner = UserId::in_tenant("conformance-tokens", "alice").unwrap();
    let mut a = token(&owner, "rt-a", 0xa1, 0);
    a.info.expires_at = None;
    store.insert_api_token(a.clone()).await.unwrap();
    let got = store.api_token_by_hash(&[0xa1; 32]).await.unwrap();
    assert_eq!(got, Some(a.clone()));
    assert_eq!(store.api_token_by_hash(&[0xa2; 32]).await.unwrap(), None);

    let mut same_id = token(&owner, "rt-a", 0xa3, 0);
    same_id.info.name = "other".into();
    let e = store.insert_api_token(same_id).await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
    let same_hash = token(&owner, "rt-b", 0xa1, 0);
    let e = store.insert_api_token(same_hash).await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
    assert_eq!(store.api_token_by_hash(&[0xa3; 32]).await.unwrap(), None);
    assert_eq!(
        store.api_token_by_hash(&[0xa1; 32]).await.unwrap(),
        Some(a),
        "a refused insert changed the stored token"
    );
}

/// Listing shows only the owner's tokens, oldest first; rename, pause and
/// revoke change only the owner's token (another user, or the same user
/// name in another tenant, gets `None`); a second revocation keeps the
/// first time.
pub async fn api_tokens_list_and_update_are_owner_scoped(store: &dyn Store) {
    let alice = UserId::in_tenant("conformance-tokens", "list-alice").unwrap();
    let other_tenant = UserId::in_tenant("conformance-tokens-2", "list-alice").unwrap();
    let bob = UserId::new("conformance-list-bob").unwrap();
    store
        .insert_api_token(token(&alice, "l-2", 0xb2, 20))
        .await
        .unwrap();
    store
        .insert_api_token(token(&alice, "l-1", 0xb1, 10))
        .await
        .unwrap();
    store
        .insert_api_token(token(&bob, "l-3", 0xb3, 5))
        .await
        .unwrap();
    let ids = |l: Vec<ApiTokenInfo>| l.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_api_tokens(&alice).await.unwrap()),
        [tok("l-1"), tok("l-2")]
    );
    assert!(
        store
            .list_api_tokens(&other_tenant)
            .await
            .unwrap()
            .is_empty()
    );

    for stranger in [&bob, &other_tenant] {
        for update in [
            ApiTokenUpdate::Rename("stolen".into()),
            ApiTokenUpdate::SetActive(false),
            ApiTokenUpdate::Revoke(t(30)),
        ] {
            let r = store.update_api_token(stranger, &tok("l-1"), update).await;
            assert_eq!(r.unwrap(), None, "{stranger} changed alice's token");
        }
    }
    let missing = store
        .update_api_token(&alice, &tok("l-none"), ApiTokenUpdate::SetActive(false))
        .await;
    assert_eq!(missing.unwrap(), None);

    let renamed = store
        .update_api_token(&alice, &tok("l-1"), ApiTokenUpdate::Rename("deploy".into()))
        .await
        .unwrap()
        .expect("alice's token");
    assert_eq!(renamed.name, "deploy");
    assert!(renamed.active && renamed.revoked_at.is_none());
    let paused = store
        .update_api_token(&alice, &tok("l-1"), ApiTokenUpdate::SetActive(false))
        .await
        .unwrap()
        .expect("alice's token");
    assert!(!paused.active);
    let revoked = store
        .update_api_token(&alice, &tok("l-1"), ApiTokenUpdate::Revoke(t(40)))
        .await
        .unwrap()
        .expect("alice's token");
    assert_eq!(revoked.revoked_at, Some(t(40)));
    let again = store
        .update_api_token(&alice, &tok("l-1"), ApiTokenUpdate::Revoke(t(50)))
        .await
        .unwrap()
        .expect("alice's token");
    assert_eq!(again.revoked_at, Some(t(40)), "revocation time moved");
    let by_hash = store.api_token_by_hash(&[0xb1; 32]).await.unwrap().unwrap();
    assert_eq!(
        (
            by_hash.info.name.as_str(),
            by_hash.info.active,
            by_hash.info.revoked_at
        ),
        ("deploy", false, Some(t(40)))
    );
    let bobs = store.api_token_by_hash(&[0xb3; 32]).await.unwrap().unwrap();
    assert_eq!(bobs, token(&bob, "l-3", 0xb3, 5), "bob's token changed");
}

/// Usage batches are appended and read back newest first (a merged entry
/// with its count and time span), limited, only by
/// the token's owner; `last_used_at` moves to the latest allowed use, never
/// back, and only by at least `LAST_USED_RESOLUTION`; a batch with an
/// invalid operation writes nothing.
pub async fn api_token_usage_is_logged_and_moves_last_used(store: &dyn Store) {
    let alice = UserId::new("conformance-usage-alice").unwrap();
    let bob = UserId::new("conformance-usage-bob").unwrap();
    store
        .insert_api_token(token(&alice, "u-1", 0xc1, 0))
        .await
        .unwrap();
    store
        .insert_api_token(token(&alice, "u-2", 0xc2, 0))
        .await
        .unwrap();
    store
        .record_api_token_usage(vec![
            use_at("u-1", 100, "read:connections", UsageOutcome::Allowed),
            use_at("u-2", 101, "read:connections", UsageOutcome::Allowed),
            use_at("u-1", 102, "write:webhooks", UsageOutcome::Allowed),
            use_at("u-1", 103, "read:audit", UsageOutcome::InsufficientScope),
        ])
        .await
        .unwrap();
    store.record_api_token_usage(Vec::new()).await.unwrap();
    let info = |hash: u8| async move {
        store
            .api_token_by_hash(&[hash; 32])
            .await
            .unwrap()
            .unwrap()
            .info
    };
    assert_eq!(info(0xc1).await.last_used_at, Some(t(102)));
    assert_eq!(info(0xc2).await.last_used_at, Some(t(101)));

    // An entry standing for three uses keeps its count and its span.
    let mut merged = use_at("u-1", 190, "GET /x", UsageOutcome::Expired);
    for secs in [195, 200] {
        assert!(merged.merge(&use_at("u-1", secs, "GET /x", UsageOutcome::Expired)));
    }
    store
        .record_api_token_usage(vec![
            use_at("u-1", 50, "late entry", UsageOutcome::Allowed),
            merged.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(
        info(0xc1).await.last_used_at,
        Some(t(102)),
        "last_used_at moved back, or moved on a refused use"
    );
    store
        .record_api_token_usage(vec![use_at("u-1", 161, "soon", UsageOutcome::Allowed)])
        .await
        .unwrap();
    assert_eq!(
        info(0xc1).await.last_used_at,
        Some(t(102)),
        "moved by less than the resolution"
    );
    store
        .record_api_token_usage(vec![use_at(
            "u-1",
            162,
            "a minute on",
            UsageOutcome::Allowed,
        )])
        .await
        .unwrap();
    assert_eq!(info(0xc1).await.last_used_at, Some(t(162)));

    let log = store
        .api_token_usage(&alice, &tok("u-1"), 10)
        .await
        .unwrap()
        .expect("alice's token");
    let seen: Vec<(&str, UsageOutcome)> = log
        .iter()
        .map(|u| (u.operation.as_str(), u.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            ("a minute on", UsageOutcome::Allowed),
            ("soon", UsageOutcome::Allowed),
            ("GET /x", UsageOutcome::Expired),
            ("late entry", UsageOutcome::Allowed),
            ("read:audit", UsageOutcome::InsufficientScope),
            ("write:webhooks", UsageOutcome::Allowed),
            ("read:connections", UsageOutcome::Allowed),
        ]
    );
    assert_eq!(log[2], merged);
    assert_eq!(
        (log[2].count, log[2].first_at, log[2].at),
        (3, t(190), t(200))
    );
    assert_eq!(log[0].count, 1);
    assert_eq!(log[0].first_at, log[0].at);
    let two = store
        .api_token_usage(&alice, &tok("u-1"), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two, log[..2]);
    assert_eq!(
        store.api_token_usage(&bob, &tok("u-1"), 10).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .api_token_usage(&alice, &tok("u-none"), 10)
            .await
            .unwrap(),
        None
    );

    let bad = store
        .record_api_token_usage(vec![
            use_at("u-2", 300, "fine", UsageOutcome::Allowed),
            use_at("u-2", 301, "bad\nop", UsageOutcome::Allowed),
        ])
        .await;
    assert!(matches!(bad, Err(Error::InvalidInput { .. })), "{bad:?}");
    let u2 = store
        .api_token_usage(&alice, &tok("u-2"), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u2.len(), 1, "part of a refused batch was written");
    assert_eq!(info(0xc2).await.last_used_at, Some(t(101)));
}
