//! Conformance cases for the audit log's storage.

use std::time::{Duration, UNIX_EPOCH};

use super::join_all;
use crate::error::ErrorKind;
use crate::store::{AuditCheckpoint, AuditFilter, AuditHead, Store, StoredAuditEntry};

fn entry(seq: u64, subject: &str, action: &str, at_ms: i64) -> StoredAuditEntry {
    StoredAuditEntry {
        seq,
        at_ms,
        action: action.to_owned(),
        actor: "system".to_owned(),
        subject: Some(format!("conformance-{subject}")),
        resource: Some(format!("connection:conformance-{seq}")),
        outcome: "success".to_owned(),
        details: "{}".to_owned(),
        key_id: "k1".to_owned(),
        prev_hash: vec![0; 32],
        hash: vec![seq as u8; 32],
        ..StoredAuditEntry::default()
    }
}

fn head(seq: u64) -> AuditHead {
    AuditHead::new(seq, vec![seq as u8; 32], "k1", vec![1; 32])
}

async fn head_seq(store: &dyn Store) -> u64 {
    store.audit_head().await.unwrap().map_or(0, |h| h.seq)
}

/// Appends succeed only on the expected head, write entries and head
/// together, refuse gaps, and of concurrent appends on one head exactly one
/// wins.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::audit_appends_are_compare_and_swap_on_the_head(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn audit_appends_are_compare_and_swap_on_the_head(store: &dyn Store) {
    let h = head_seq(store).await;
    let batch = |from: u64, n: u64| -> Vec<StoredAuditEntry> {
        (from..from + n)
            .map(|s| entry(s, "a", "credential.read", 1_000))
            .collect()
    };
    // Wrong expectation: nothing written.
    assert!(
        !store
            .append_audit_entries(h + 5, batch(h + 6, 2), head(h + 7))
            .await
            .unwrap()
    );
    assert_eq!(head_seq(store).await, h);
    // A gap, or a head that does not name the last entry: refused.
    for (entries, hd) in [
        (batch(h + 2, 1), head(h + 2)),
        (batch(h + 1, 2), head(h + 1)),
    ] {
        let err = store
            .append_audit_entries(h, entries, hd)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    assert!(
        store
            .append_audit_entries(h, batch(h + 1, 3), head(h + 3))
            .await
            .unwrap()
    );
    let stored = store.audit_head().await.unwrap().unwrap();
    assert_eq!(stored, head(h + 3));
    let rows = store
        .audit_entries(&AuditFilter {
            after_seq: h,
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rows, batch(h + 1, 3));
    // Eight racers on one head: one wins.
    let h = h + 3;
    let wins = join_all((0..8).map(|_| async move {
        store
            .append_audit_entries(h, batch(h + 1, 2), head(h + 2))
            .await
            .unwrap()
    }))
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    assert_eq!(head_seq(store).await, h + 2);
}

/// Entries are filtered by subject, action, resource and time, in `seq`
/// order, after the cursor, at most the limit.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::audit_entries_filter_and_page(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn audit_entries_filter_and_page(store: &dyn Store) {
    let h = head_seq(store).await;
    let entries: Vec<_> = (0..6)
        .map(|i| {
            let who = if i % 2 == 0 { "even" } else { "odd" };
            let action = if i < 3 {
                "consent.granted"
            } else {
                "consent.revoked"
            };
            entry(h + 1 + i, who, action, 10_000 + 1_000 * i as i64)
        })
        .collect();
    assert!(
        store
            .append_audit_entries(h, entries.clone(), head(h + 6))
            .await
            .unwrap()
    );
    let get = |f: AuditFilter| async move {
        let f = AuditFilter {
            after_seq: f.after_seq.max(h),
            ..f
        };
        store
            .audit_entries(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.seq - h)
            .collect::<Vec<_>>()
    };
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    assert_eq!(get(all.clone()).await, [1, 2, 3, 4, 5, 6]);
    let even = AuditFilter {
        subject: Some("conformance-even".into()),
        ..all.clone()
    };
    assert_eq!(get(even).await, [1, 3, 5]);
    let revoked = AuditFilter {
        action: Some("consent.revoked".into()),
        ..all.clone()
    };
    assert_eq!(get(revoked).await, [4, 5, 6]);
    let one = AuditFilter {
        resource: Some(format!("connection:conformance-{}", h + 2)),
        ..all.clone()
    };
    assert_eq!(get(one).await, [2]);
    let ms = |m: u64| UNIX_EPOCH + Duration::from_millis(m);
    let window = AuditFilter {
        from: Some(ms(11_000)),
        until: Some(ms(13_000)),
        ..all.clone()
    };
    assert_eq!(get(window).await, [2, 3]);
    let page = AuditFilter {
        after_seq: h + 2,
        limit: 2,
        ..all.clone()
    };
    assert_eq!(get(page).await, [3, 4]);
    assert!(get(AuditFilter { limit: 0, ..all }).await.is_empty());
}

/// A purge deletes the prefix and stores its checkpoint in one step;
/// checkpoints below the previous one or beyond the head are refused.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// consentry::store::conformance::audit_purge_replaces_the_prefix_with_a_checkpoint(&consentry::store::MemoryStore::new()).await;
/// # });
/// ```
pub async fn audit_purge_replaces_the_prefix_with_a_checkpoint(store: &dyn Store) {
    let h = head_seq(store).await;
    let entries: Vec<_> = (1..=4)
        .map(|i| entry(h + i, "p", "key.rotated", 1))
        .collect();
    assert!(
        store
            .append_audit_entries(h, entries, head(h + 4))
            .await
            .unwrap()
    );
    let cp = |seq: u64| AuditCheckpoint::new(seq, vec![9; 32], seq, UNIX_EPOCH, "k1", vec![3; 32]);
    let beyond = store.purge_audit_entries(cp(h + 5)).await.unwrap_err();
    assert_eq!(beyond.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.purge_audit_entries(cp(h + 2)).await.unwrap(), h + 2);
    assert_eq!(store.audit_checkpoint().await.unwrap(), Some(cp(h + 2)));
    let rest = store
        .audit_entries(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [h + 3, h + 4]
    );
    let below = store.purge_audit_entries(cp(h + 1)).await.unwrap_err();
    assert_eq!(below.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.audit_checkpoint().await.unwrap(), Some(cp(h + 2)));
    assert_eq!(head_seq(store).await, h + 4);
}
