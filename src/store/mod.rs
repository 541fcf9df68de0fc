//! Storage behind small traits, one per concern, and the backends.
//!
//! consentry keeps state through a set of small, dyn-compatible async traits
//! (credentials and data keys, connections, revocations, consent, OAuth
//! state, leases, records, sync state, settings, erasure, webhook endpoints,
//! the webhook outbox, the replay guard, shared rate limits, API tokens
//! and the audit log). [`Store`] is
//! the umbrella: anything implementing every concern is a `Store`, by a
//! blanket impl, and so are `Arc<S>`, `Box<S>` and `Arc<dyn Store>`.
//!
//! Backends:
//!
//! | backend | use | notes |
//! |---|---|---|
//! | [`MemoryStore`] | tests, examples | cheap-to-clone handle over one in-process map |
#![cfg_attr(
    feature = "sqlite",
    doc = "| [`SqliteStore`] | the default | WAL, checksummed migrations, blocking work on dedicated threads |"
)]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "| `SqliteStore` | the default | needs feature `sqlite` |"
)]
//!
//! A host with its own database implements the traits and runs the public
//! [`conformance`] suite (feature `conformance`) against its implementation.
//!
//! ```
//! use std::sync::Arc;
//! use consentry::store::{MemoryStore, Store};
//!
//! fn takes_any_store(_: Arc<dyn Store>) {}
//! takes_any_store(Arc::new(MemoryStore::new()));
//! ```

mod api_token;
mod audit;
mod connections;
mod consent;
mod memory;
mod oauth;
mod outbox;
mod ratelimit;
mod records;
#[cfg(feature = "sqlite")]
mod sqlite;
mod vault;
mod webhook;

#[cfg(any(feature = "conformance", test))]
pub mod conformance;

pub use api_token::{
    ApiTokenInfo, ApiTokenStore, ApiTokenUpdate, ApiTokenUsage, LAST_USED_RESOLUTION,
    MAX_OPERATION_LEN, StoredApiToken, UsageOutcome,
};
pub use audit::{
    AuditCheckpoint, AuditFilter, AuditHead, AuditStore, MAX_AUDIT_PAGE, StoredAuditEntry,
};
pub use connections::{
    AccessView, ConnectionDeleted, ConnectionStore, ConnectionWrite, ConnectionWritten,
    PendingRevocation, QueuedRevocation, RevocationStore,
};
pub use consent::{ConsentEntry, ConsentStore, MAX_ACTOR_LEN, MAX_POLICY_VERSION_LEN};
pub use memory::MemoryStore;
pub use oauth::{LeaseStore, OAuthStateStore, PendingAuthorization};
pub use outbox::{
    AttemptCompletion, AttemptRecord, ClaimedDelivery, CompletionResult, DeliveryOutcome,
    DeliveryRecord, DeliveryState, EndpointEffect, MAX_ATTEMPT_ERROR_LEN, MAX_RESPONSE_EXCERPT,
    NewMessage, Published, StoredMessage, Trigger, WebhookOutboxStore,
};
pub use ratelimit::{RateLimitStore, TatUpdate};
pub(crate) use records::normalize_purposes;
pub use records::{
    AccessLogEntry, ErasureStore, MappingScope, PageApplied, PageWrite, RecordCount, RecordKey,
    RecordRead, RecordStore, SettingsStore, SyncState, SyncStatus, SyncStore, Tombstone,
    UserErased,
};
#[cfg(feature = "sqlite")]
pub(crate) use records::{join_purposes, split_purposes};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use vault::{
    CredentialKey, CredentialStore, CredentialWrite, DataKeyStore, StoredCredential, WrappedDataKey,
};
pub use webhook::{
    MAX_REPLAY_ID_LEN, MAX_REPLAY_SCOPE_LEN, ReplayStore, StoredEndpoint, WebhookEndpointStore,
};

/// Every storage concern consentry has. Implemented automatically for any
/// type that implements all of them; do not implement it by hand.
///
/// ```
/// use consentry::store::{MemoryStore, Store};
/// fn assert_store<S: Store>(_: &S) {}
/// assert_store(&MemoryStore::new());
/// ```
pub trait Store:
    CredentialStore
    + DataKeyStore
    + ConnectionStore
    + RevocationStore
    + ConsentStore
    + OAuthStateStore
    + LeaseStore
    + WebhookEndpointStore
    + WebhookOutboxStore
    + ReplayStore
    + RateLimitStore
    + RecordStore
    + SyncStore
    + SettingsStore
    + ErasureStore
    + AuditStore
    + ApiTokenStore
{
}

impl<T> Store for T where
    T: CredentialStore
        + DataKeyStore
        + ConnectionStore
        + RevocationStore
        + ConsentStore
        + OAuthStateStore
        + LeaseStore
        + WebhookEndpointStore
        + WebhookOutboxStore
        + ReplayStore
        + RateLimitStore
        + RecordStore
        + SyncStore
        + SettingsStore
        + ErasureStore
        + AuditStore
        + ApiTokenStore
        + ?Sized
{
}

#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn _dyn_compatible(
    _: &dyn Store,
    _: &dyn CredentialStore,
    _: &dyn DataKeyStore,
    _: &dyn ConnectionStore,
    _: &dyn RevocationStore,
    _: &dyn ConsentStore,
    _: &dyn OAuthStateStore,
    _: &dyn LeaseStore,
    _: &dyn WebhookEndpointStore,
    _: &dyn WebhookOutboxStore,
    _: &dyn ReplayStore,
    _: &dyn RateLimitStore,
    _: &dyn RecordStore,
    _: &dyn SyncStore,
    _: &dyn SettingsStore,
    _: &dyn ErasureStore,
    _: &dyn AuditStore,
    _: &dyn ApiTokenStore,
) {
}
