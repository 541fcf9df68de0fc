//! [`MemoryStore`]: everything in one in-process map. For tests, examples
//! and hosts that keep nothing across restarts.

mod api_token;
mod audit;
mod connections;
mod consent;
mod oauth;
mod ratelimit;
mod records;
mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::vault::{
    CredentialKey, CredentialStore, CredentialWrite, DataKeyStore, StoredCredential, WrappedDataKey,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::vault::{KeyId, Version};

/// A store in memory. Clones share the same data; it is gone when the last
/// clone is dropped.
///
/// Every method completes without awaiting anything; a short `std` mutex
/// guards the maps and is never held across an `.await`.
///
/// ```
/// use consentry::store::{DataKeyStore, MemoryStore};
/// use consentry::UserId;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let copy = store.clone();
/// assert!(copy.get_data_key(&UserId::new("u")?).await?.is_none());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    credentials: BTreeMap<CredentialKey, StoredCredential>,
    data_keys: BTreeMap<UserId, WrappedDataKey>,
    connections: BTreeMap<(UserId, ConnectionId), crate::connection::Connection>,
    consent_ledger: Vec<super::ConsentEntry>,
    consent_current: BTreeMap<(UserId, ConnectionId, crate::ids::Purpose), bool>,
    pending: HashMap<[u8; 32], super::PendingAuthorization>,
    leases: HashMap<String, (String, SystemTime)>,
    revocations: BTreeMap<u64, super::PendingRevocation>,
    webhooks: webhook::WebhookState,
    next_id: u64,
    records: BTreeMap<records::RecordKey, records::MemRecord>,
    sync_states: BTreeMap<(UserId, ConnectionId, String), super::SyncState>,
    access_log: Vec<super::AccessLogEntry>,
    settings: BTreeMap<(UserId, ConnectionId), String>,
    mappings: BTreeMap<(super::MappingScope, String), String>,
    tombstones: BTreeMap<String, super::Tombstone>,
    audit: audit::AuditState,
    rate_limits: HashMap<String, SystemTime>,
    api_tokens: api_token::ApiTokenState,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Checks a credential batch: no key twice, every expectation holds.
    fn check_credentials(&self, writes: &[CredentialWrite]) -> Result<()> {
        let mut seen = HashMap::with_capacity(writes.len());
        for w in writes {
            if seen.insert(&w.key, ()).is_some() {
                return Err(Error::invalid("credential batch", "a key appears twice"));
            }
            let found = self
                .credentials
                .get(&w.key)
                .map_or(Version::NONE, |c| c.version);
            if let Some(expected) = w.expected
                && expected != found
            {
                return Err(Error::Conflict {
                    what: "credential",
                    expected: expected.get(),
                    found: found.get(),
                });
            }
        }
        Ok(())
    }

    /// Applies a checked credential batch; returns the new versions.
    fn apply_credentials(&mut self, writes: Vec<CredentialWrite>) -> Vec<Version> {
        writes
            .into_iter()
            .map(|w| {
                let version = self
                    .credentials
                    .get(&w.key)
                    .map_or(Version::NONE, |c| c.version)
                    .next();
                self.credentials
                    .insert(w.key, StoredCredential::new(w.envelope, version));
                version
            })
            .collect()
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{CredentialStore, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// assert!(store.list_credentials(&UserId::new("u")?).await?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn get_credential(&self, key: &CredentialKey) -> Result<Option<StoredCredential>> {
        Ok(self.state().credentials.get(key).cloned())
    }

    async fn put_credentials(&self, writes: Vec<CredentialWrite>) -> Result<Vec<Version>> {
        let mut state = self.state();
        state.check_credentials(&writes)?;
        Ok(state.apply_credentials(writes))
    }

    async fn delete_connection_credentials(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<u64> {
        let mut state = self.state();
        let before = state.credentials.len();
        state
            .credentials
            .retain(|k, _| !(k.user == *user && k.connection == *connection));
        Ok((before - state.credentials.len()) as u64)
    }

    async fn delete_user_credentials(&self, user: &UserId) -> Result<u64> {
        let mut state = self.state();
        let before = state.credentials.len();
        state.credentials.retain(|k, _| k.user != *user);
        Ok((before - state.credentials.len()) as u64)
    }

    async fn list_credentials(&self, user: &UserId) -> Result<Vec<(CredentialKey, Version)>> {
        Ok(self
            .state()
            .credentials
            .iter()
            .filter(|(k, _)| k.user == *user)
            .map(|(k, c)| (k.clone(), c.version))
            .collect())
    }
}

#[async_trait]
impl DataKeyStore for MemoryStore {
    async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>> {
        Ok(self.state().data_keys.get(owner).cloned())
    }

    async fn insert_data_key(&self, owner: &UserId, key: WrappedDataKey) -> Result<WrappedDataKey> {
        Ok(self
            .state()
            .data_keys
            .entry(owner.clone())
            .or_insert(key)
            .clone())
    }

    async fn rewrap_data_key(
        &self,
        owner: &UserId,
        expected_kek: &KeyId,
        new: WrappedDataKey,
    ) -> Result<bool> {
        let mut state = self.state();
        match state.data_keys.get_mut(owner) {
            Some(current) if current.id == new.id && current.kek == *expected_kek => {
                *current = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn data_keys_not_under(
        &self,
        kek: &KeyId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, WrappedDataKey)>> {
        let state = self.state();
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        Ok(state
            .data_keys
            .range::<UserId, _>((start, std::ops::Bound::Unbounded))
            .filter(|(_, w)| w.kek != *kek)
            .take(limit)
            .map(|(u, w)| (u.clone(), w.clone()))
            .collect())
    }

    async fn data_key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        let mut usage = BTreeMap::new();
        for w in self.state().data_keys.values() {
            *usage.entry(w.kek.clone()).or_default() += 1;
        }
        Ok(usage)
    }

    async fn destroy_data_key(&self, owner: &UserId) -> Result<bool> {
        Ok(self.state().data_keys.remove(owner).is_some())
    }
}
