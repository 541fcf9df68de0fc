//! The behaviour every [`Store`] must have, as one public async function per
//! behaviour. consentry runs them against [`MemoryStore`](super::MemoryStore),
//! `SqliteStore` and `Arc<dyn Store>`; run them against your own store, all
//! at once with [`run_all`] or one by one (this example serves every case
//! function below; substitute your store for `MemoryStore`):
//!
//! ```
//! use consentry::store::{conformance, MemoryStore};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! conformance::credential_round_trip(&store).await;
//! conformance::credential_versions_and_compare_and_swap(&store).await;
//! conformance::credential_batches_are_atomic(&store).await;
//! conformance::tenants_are_isolated(&store).await;
//! conformance::data_key_rewrap_is_compare_and_swap(&store).await;
//! conformance::data_key_destroy(&store).await;
//! # });
//! ```
//!
//! Each function panics (like an assertion) when the store misbehaves. They
//! write under users whose id or tenant starts with `conformance-` and expect
//! nothing else under those users; give them a fresh, empty store, and run
//! each case at most once per store.
//!
//! These functions are not a stable part of the API: cases are added as the
//! crate grows, in any release.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod api_token;
mod audit;
mod connections;
mod outbox;
mod ratelimit;
mod records;
mod webhook;

pub use api_token::{
    api_token_usage_is_logged_and_moves_last_used, api_tokens_list_and_update_are_owner_scoped,
    api_tokens_round_trip_by_hash,
};
pub use audit::{
    audit_appends_are_compare_and_swap_on_the_head, audit_entries_filter_and_page,
    audit_purge_replaces_the_prefix_with_a_checkpoint,
};
pub use connections::{
    access_view_and_consent_ledger, connection_create_update_and_uniqueness,
    connections_list_and_expiring, delete_connection_and_revocation_queue, leases_have_one_owner,
    pending_authorizations_are_single_use,
};
pub use outbox::{
    webhook_claims_leases_and_completions, webhook_concurrent_claims_are_disjoint,
    webhook_disable_policy_replay_and_recover,
};
pub use ratelimit::{
    rate_limit_concurrent_updates_lose_nothing, rate_limit_purge_drops_only_expired,
    rate_limit_updates_read_and_write_the_tat, store_rate_limiter_keeps_the_limit,
};
pub use records::{
    deleting_a_connection_deletes_its_harvest, erasing_a_user_leaves_only_a_tombstone,
    field_mappings_prefer_the_connection, record_pages_upsert_with_their_cursor,
    record_reads_check_consent_and_are_logged, revoking_consent_drops_the_purpose_from_records,
    sync_states_are_scheduled,
};
pub use webhook::{
    replay_guard_check_and_insert, webhook_endpoints_round_trip_and_compare_and_swap,
    webhook_publish_fans_out_and_is_idempotent,
};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{CredentialKey, CredentialWrite, Store, WrappedDataKey};
use crate::error::Error;
use crate::ids::{ConnectionId, UserId};
use crate::vault::{CredentialKind, KeyId, Version};

/// Runs every conformance case, one after the other; panics at the first
/// misbehaviour.
///
/// ```
/// use std::sync::Arc;
/// use consentry::store::{conformance, MemoryStore, Store};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Any store, also behind a trait object, on a fresh, empty instance.
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// conformance::run_all(&store).await; // returns only if every case passed
/// # });
/// ```
pub async fn run_all(store: &dyn Store) {
    credential_round_trip(store).await;
    credential_versions_and_compare_and_swap(store).await;
    credential_batches_are_atomic(store).await;
    credential_deletes_are_scoped(store).await;
    tenants_are_isolated(store).await;
    concurrent_compare_and_swap_loses_no_update(store).await;
    data_key_insert_keeps_the_first(store).await;
    data_key_rewrap_is_compare_and_swap(store).await;
    data_keys_not_under_pages_in_owner_order(store).await;
    data_key_usage_counts_per_key(store).await;
    data_key_destroy(store).await;
    connection_create_update_and_uniqueness(store).await;
    connections_list_and_expiring(store).await;
    access_view_and_consent_ledger(store).await;
    delete_connection_and_revocation_queue(store).await;
    pending_authorizations_are_single_use(store).await;
    leases_have_one_owner(store).await;
    webhook_endpoints_round_trip_and_compare_and_swap(store).await;
    webhook_publish_fans_out_and_is_idempotent(store).await;
    webhook_claims_leases_and_completions(store).await;
    webhook_concurrent_claims_are_disjoint(store).await;
    webhook_disable_policy_replay_and_recover(store).await;
    replay_guard_check_and_insert(store).await;
    rate_limit_updates_read_and_write_the_tat(store).await;
    rate_limit_concurrent_updates_lose_nothing(store).await;
    rate_limit_purge_drops_only_expired(store).await;
    store_rate_limiter_keeps_the_limit(store).await;
    record_pages_upsert_with_their_cursor(store).await;
    record_reads_check_consent_and_are_logged(store).await;
    revoking_consent_drops_the_purpose_from_records(store).await;
    deleting_a_connection_deletes_its_harvest(store).await;
    sync_states_are_scheduled(store).await;
    field_mappings_prefer_the_connection(store).await;
    erasing_a_user_leaves_only_a_tombstone(store).await;
    audit_appends_are_compare_and_swap_on_the_head(store).await;
    audit_entries_filter_and_page(store).await;
    audit_purge_replaces_the_prefix_with_a_checkpoint(store).await;
    api_tokens_round_trip_by_hash(store).await;
    api_tokens_list_and_update_are_owner_scoped(store).await;
    api_token_usage_is_logged_and_moves_last_used(store).await;
}

fn user(name: &str) -> UserId {
    UserId::new(format!("conformance-{name}")).unwrap()
}

fn conn(name: &str) -> ConnectionId {
    ConnectionId::new(name).unwrap()
}

fn key(u: &UserId, c: &str, kind: CredentialKind) -> CredentialKey {
    CredentialKey::new(u.clone(), conn(c), kind)
}

fn kek(id: &str) -> KeyId {
    KeyId::new(id).unwrap()
}

async fn put(store: &dyn Store, w: CredentialWrite) -> Result<Version, Error> {
    let mut v = store.put_credentials(vec![w]).await?;
    Ok(v.remove(0))
}

/// A written credential reads back byte for byte with version 1; absent
/// ones read as `None`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::credential_round_trip(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn credential_round_trip(store: &dyn Store) {
    let u = user("round-trip");
    let k = key(&u, "c1", CredentialKind::AccessToken);
    assert!(store.get_credential(&k).await.unwrap().is_none());
    let v = put(store, CredentialWrite::new(k.clone(), vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(v, Version::new(1));
    let got = store
        .get_credential(&k)
        .await
        .unwrap()
        .expect("written credential missing");
    assert_eq!(got.envelope, vec![1, 2, 3]);
    assert_eq!(got.version, Version::new(1));
    let other_kind = key(&u, "c1", CredentialKind::RefreshToken);
    assert!(store.get_credential(&other_kind).await.unwrap().is_none());
}

/// Each write adds one to the version; a compare-and-swap against a stale
/// version fails with `Conflict` and writes nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::credential_versions_and_compare_and_swap(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn credential_versions_and_compare_and_swap(store: &dyn Store) {
    let u = user("cas");
    let k = key(&u, "c1", CredentialKind::RefreshToken);
    let v1 = put(
        store,
        CredentialWrite::new(k.clone(), vec![1]).expecting(Version::NONE),
    )
    .await
    .unwrap();
    assert_eq!(v1, Version::new(1));
    let again = put(
        store,
        CredentialWrite::new(k.clone(), vec![9]).expecting(Version::NONE),
    )
    .await;
    assert!(
        matches!(
            again,
            Err(Error::Conflict {
                expected: 0,
                found: 1,
                ..
            })
        ),
        "{again:?}"
    );
    let v2 = put(
        store,
        CredentialWrite::new(k.clone(), vec![2]).expecting(v1),
    )
    .await
    .unwrap();
    assert_eq!(v2, Version::new(2));
    let stale = put(
        store,
        CredentialWrite::new(k.clone(), vec![9]).expecting(v1),
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
    let v3 = put(store, CredentialWrite::new(k.clone(), vec![3]))
        .await
        .unwrap();
    assert_eq!(v3, Version::new(3));
    let got = store.get_credential(&k).await.unwrap().expect("missing");
    assert_eq!((got.envelope, got.version), (vec![3], v3));
}

/// A batch with one stale expectation writes nothing at all.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::credential_batches_are_atomic(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn credential_batches_are_atomic(store: &dyn Store) {
    let u = user("batch");
    let a = key(&u, "c1", CredentialKind::AccessToken);
    let b = key(&u, "c1", CredentialKind::RefreshToken);
    put(store, CredentialWrite::new(b.clone(), vec![1]))
        .await
        .unwrap();
    let batch = vec![
        CredentialWrite::new(a.clone(), vec![2]),
        CredentialWrite::new(b.clone(), vec![2]).expecting(Version::NONE),
    ];
    assert!(matches!(
        store.put_credentials(batch).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        store.get_credential(&a).await.unwrap().is_none(),
        "first write of a failed batch persisted"
    );
    let batch = vec![
        CredentialWrite::new(a.clone(), vec![3]).expecting(Version::NONE),
        CredentialWrite::new(b.clone(), vec![3]).expecting(Version::new(1)),
    ];
    let versions = store.put_credentials(batch).await.unwrap();
    assert_eq!(versions, vec![Version::new(1), Version::new(2)]);
    let dup = vec![
        CredentialWrite::new(a.clone(), vec![4]),
        CredentialWrite::new(a.clone(), vec![5]),
    ];
    assert!(matches!(
        store.put_credentials(dup).await,
        Err(Error::InvalidInput { .. })
    ));
}

/// Deleting a connection removes only its credentials; deleting a user
/// removes only theirs; listing shows what is left.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::credential_deletes_are_scoped(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn credential_deletes_are_scoped(store: &dyn Store) {
    let u = user("deletes");
    let other = user("deletes-other");
    for (who, c) in [(&u, "c1"), (&u, "c2"), (&other, "c1")] {
        for kind in [CredentialKind::AccessToken, CredentialKind::RefreshToken] {
            put(store, CredentialWrite::new(key(who, c, kind), vec![0]))
                .await
                .unwrap();
        }
    }
    assert_eq!(
        store
            .delete_connection_credentials(&u, &conn("c1"))
            .await
            .unwrap(),
        2
    );
    let left = store.list_credentials(&u).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|(k, _)| k.connection == conn("c2") && k.user == u)
    );
    assert_eq!(store.delete_user_credentials(&u).await.unwrap(), 2);
    assert!(store.list_credentials(&u).await.unwrap().is_empty());
    assert_eq!(store.list_credentials(&other).await.unwrap().len(), 2);
}

/// The same user id in two tenants (and in none) names three users.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::tenants_are_isolated(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn tenants_are_isolated(store: &dyn Store) {
    let plain = user("tenant");
    let a = UserId::in_tenant("conformance-a", plain.user()).unwrap();
    let b = UserId::in_tenant("conformance-b", plain.user()).unwrap();
    for (i, who) in [&plain, &a, &b].into_iter().enumerate() {
        put(
            store,
            CredentialWrite::new(key(who, "c1", CredentialKind::AccessToken), vec![i as u8]),
        )
        .await
        .unwrap();
        store
            .insert_data_key(
                who,
                WrappedDataKey::new(format!("dk{i}"), kek("k1"), vec![i as u8]),
            )
            .await
            .unwrap();
    }
    for (i, who) in [&plain, &a, &b].into_iter().enumerate() {
        let c = store
            .get_credential(&key(who, "c1", CredentialKind::AccessToken))
            .await
            .unwrap()
            .expect("missing");
        assert_eq!(c.envelope, vec![i as u8]);
        let d = store.get_data_key(who).await.unwrap().expect("missing");
        assert_eq!(d.id, format!("dk{i}"));
    }
    assert_eq!(store.delete_user_credentials(&a).await.unwrap(), 1);
    assert!(store.destroy_data_key(&a).await.unwrap());
    assert!(
        store
            .get_credential(&key(&b, "c1", CredentialKind::AccessToken))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.get_data_key(&plain).await.unwrap().is_some());
}

/// Joins futures on the current task, polling each in turn.
struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

// Outputs are never pinned; the futures are pinned in their own boxes.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
        }
    }
}

fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let outputs = futures.iter().map(|_| None).collect();
    JoinAll { futures, outputs }
}

/// 8 concurrent writers each add 50 to a counter by compare-and-swap with
/// retries; the total is exactly 400.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::concurrent_compare_and_swap_loses_no_update(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn concurrent_compare_and_swap_loses_no_update(store: &dyn Store) {
    let u = user("counter");
    let k = key(&u, "c1", CredentialKind::ApiKey);
    put(
        store,
        CredentialWrite::new(k.clone(), 0u64.to_be_bytes().to_vec()),
    )
    .await
    .unwrap();
    let worker = |_: usize| {
        let k = k.clone();
        async move {
            let mut retries = 0u64;
            for _ in 0..50 {
                loop {
                    let cur = store.get_credential(&k).await.unwrap().expect("missing");
                    let n = u64::from_be_bytes(
                        cur.envelope.as_slice().try_into().expect("bad counter"),
                    );
                    match put(
                        store,
                        CredentialWrite::new(k.clone(), (n + 1).to_be_bytes().to_vec())
                            .expecting(cur.version),
                    )
                    .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => retries += 1,
                        Err(e) => panic!("{e}"),
                    }
                    assert!(retries < 100_000, "compare-and-swap never succeeds");
                }
            }
            retries
        }
    };
    join_all((0..8).map(worker)).await;
    let end = store.get_credential(&k).await.unwrap().expect("missing");
    assert_eq!(
        u64::from_be_bytes(end.envelope.as_slice().try_into().expect("bad counter")),
        400
    );
    assert_eq!(end.version, Version::new(401));
}

/// The first data key stored for a user stays; later inserts get it back.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::data_key_insert_keeps_the_first(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn data_key_insert_keeps_the_first(store: &dyn Store) {
    let u = user("dk-insert");
    assert!(store.get_data_key(&u).await.unwrap().is_none());
    let first = WrappedDataKey::new("dk_first", kek("k1"), vec![1; 8]);
    let got = store.insert_data_key(&u, first.clone()).await.unwrap();
    assert_eq!(got, first);
    let second = WrappedDataKey::new("dk_second", kek("k1"), vec![2; 8]);
    assert_eq!(store.insert_data_key(&u, second).await.unwrap(), first);
    assert_eq!(store.get_data_key(&u).await.unwrap(), Some(first));
}

/// Rewrapping succeeds only for the same data key under the expected key.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::data_key_rewrap_is_compare_and_swap(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn data_key_rewrap_is_compare_and_swap(store: &dyn Store) {
    let u = user("dk-rewrap");
    store
        .insert_data_key(&u, WrappedDataKey::new("dk", kek("k1"), vec![1]))
        .await
        .unwrap();
    let new = WrappedDataKey::new("dk", kek("k2"), vec![2]);
    assert!(
        !store
            .rewrap_data_key(&u, &kek("k0"), new.clone())
            .await
            .unwrap(),
        "wrong expected key"
    );
    let other_id = WrappedDataKey::new("dk-other", kek("k2"), vec![2]);
    assert!(
        !store
            .rewrap_data_key(&u, &kek("k1"), other_id)
            .await
            .unwrap(),
        "other data key id"
    );
    assert!(
        store
            .rewrap_data_key(&u, &kek("k1"), new.clone())
            .await
            .unwrap()
    );
    assert_eq!(store.get_data_key(&u).await.unwrap(), Some(new.clone()));
    assert!(
        !store.rewrap_data_key(&u, &kek("k1"), new).await.unwrap(),
        "already rewrapped"
    );
    assert!(
        !store
            .rewrap_data_key(
                &user("dk-rewrap-absent"),
                &kek("k1"),
                WrappedDataKey::new("dk", kek("k2"), vec![])
            )
            .await
            .unwrap()
    );
}

/// Listing data keys not under a key pages through owners in order and
/// skips those already under it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::data_keys_not_under_pages_in_owner_order(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn data_keys_not_under_pages_in_owner_order(store: &dyn Store) {
    let page_kek = kek("conformance-page-old");
    let current = kek("conformance-page-new");
    let mut owners = Vec::new();
    for i in 0..7 {
        let u = UserId::in_tenant("conformance-paging", format!("u{i}")).unwrap();
        let under = if i % 3 == 0 { &current } else { &page_kek };
        store
            .insert_data_key(
                &u,
                WrappedDataKey::new(format!("dk{i}"), under.clone(), vec![i]),
            )
            .await
            .unwrap();
        if i % 3 != 0 {
            owners.push(u);
        }
    }
    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = store
            .data_keys_not_under(&current, after.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        // Other cases' keys may be listed too; keep this case's.
        seen.extend(
            page.iter()
                .filter(|(u, _)| u.tenant() == Some("conformance-paging"))
                .map(|(u, w)| {
                    assert_ne!(w.kek, current);
                    u.clone()
                }),
        );
        match page.last() {
            Some((u, _)) if page.len() == 2 => after = Some(u.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, owners);
}

/// Usage counts data keys per wrapping key.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::data_key_usage_counts_per_key(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn data_key_usage_counts_per_key(store: &dyn Store) {
    for i in 0..3 {
        let u = UserId::in_tenant("conformance-usage", format!("u{i}")).unwrap();
        let under = if i == 0 {
            "conformance-usage-x"
        } else {
            "conformance-usage-y"
        };
        store
            .insert_data_key(&u, WrappedDataKey::new("dk", kek(under), vec![0]))
            .await
            .unwrap();
    }
    let usage = store.data_key_usage().await.unwrap();
    assert_eq!(usage.get(&kek("conformance-usage-x")), Some(&1));
    assert_eq!(usage.get(&kek("conformance-usage-y")), Some(&2));
    assert_eq!(usage.get(&kek("conformance-usage-none")), None);
}

/// Destroying a data key removes it; destroying again reports nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::data_key_destroy(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn data_key_destroy(store: &dyn Store) {
    let u = user("dk-destroy");
    store
        .insert_data_key(&u, WrappedDataKey::new("dk", kek("k1"), vec![7; 32]))
        .await
        .unwrap();
    assert!(store.destroy_data_key(&u).await.unwrap());
    assert!(store.get_data_key(&u).await.unwrap().is_none());
    assert!(!store.destroy_data_key(&u).await.unwrap());
}
