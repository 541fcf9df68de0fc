//! Storage for the vault: sealed credentials ([`CredentialStore`]) and wrapped
//! per-user data keys ([`DataKeyStore`]).
//!
//! The two are separate traits so a host can keep data keys apart from the
//! data they protect (another database, a different backup policy): that is
//! what makes crypto-shredding cover backups of the data.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ConnectionId, UserId};
use crate::vault::{CredentialKind, KeyId, Version};

/// Where one credential lives: user (with tenant), connection, kind.
///
/// ```
/// use consentry::{ConnectionId, UserId};
/// use consentry::store::CredentialKey;
/// use consentry::vault::CredentialKind;
/// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::RefreshToken);
/// assert_eq!(key.kind, CredentialKind::RefreshToken);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct CredentialKey {
    /// The owner.
    pub user: UserId,
    /// The connection the credential belongs to.
    pub connection: ConnectionId,
    /// What the credential is.
    pub kind: CredentialKind,
}

impl CredentialKey {
    /// Builds a key.
    pub fn new(user: UserId, connection: ConnectionId, kind: CredentialKind) -> Self {
        Self {
            user,
            connection,
            kind,
        }
    }
}

/// A stored credential: its sealed envelope and its version.
///
/// ```
/// use consentry::store::StoredCredential;
/// use consentry::vault::Version;
/// let row = StoredCredential::new(vec![1, 2, 3], Version::new(4));
/// assert_eq!(row.version.get(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCredential {
    /// The sealed bytes (a vault envelope). Opaque to the store.
    pub envelope: Vec<u8>,
    /// Starts at 1 and goes up by one with every write.
    pub version: Version,
}

impl StoredCredential {
    /// Builds a row.
    pub fn new(envelope: Vec<u8>, version: Version) -> Self {
        Self { envelope, version }
    }
}

/// One write in a [`CredentialStore::put_credentials`] batch.
///
/// ```
/// use consentry::{ConnectionId, UserId};
/// use consentry::store::{CredentialKey, CredentialWrite};
/// use consentry::vault::{CredentialKind, Version};
/// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::AccessToken);
/// // Only if nothing is stored yet:
/// let w = CredentialWrite::new(key, vec![0; 80]).expecting(Version::NONE);
/// assert_eq!(w.expected, Some(Version::NONE));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialWrite {
    /// Where to write.
    pub key: CredentialKey,
    /// The sealed bytes.
    pub envelope: Vec<u8>,
    /// `Some(v)`: write only if the stored version is `v` ([`Version::NONE`]
    /// = nothing stored). `None`: write unconditionally.
    pub expected: Option<Version>,
}

impl CredentialWrite {
    /// An unconditional write.
    pub fn new(key: CredentialKey, envelope: Vec<u8>) -> Self {
        Self {
            key,
            envelope,
            expected: None,
        }
    }

    /// Makes the write conditional on the stored version being `version`.
    #[must_use]
    pub fn expecting(mut self, version: Version) -> Self {
        self.expected = Some(version);
        self
    }
}

/// Sealed credentials, keyed by [`CredentialKey`].
///
/// Implementations store envelopes as opaque bytes; they never see
/// plaintext. See [`conformance`](crate::store::conformance) for the
/// behaviour every implementation must have.
#[async_trait]
pub trait CredentialStore: Debug + Send + Sync + 'static {
    /// The credential at `key`, if any.
    async fn get_credential(&self, key: &CredentialKey) -> Result<Option<StoredCredential>>;

    /// Applies every write in `writes` atomically and returns the new
    /// versions, in order.
    ///
    /// If any write's `expected` version does not match what is stored,
    /// nothing is written and the result is
    /// [`Error::Conflict`](crate::Error::Conflict). A key appears at most
    /// once per batch.
    async fn put_credentials(&self, writes: Vec<CredentialWrite>) -> Result<Vec<Version>>;

    /// Deletes every credential of `connection`; returns how many.
    async fn delete_connection_credentials(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<u64>;

    /// Deletes every credential of `user`; returns how many.
    async fn delete_user_credentials(&self, user: &UserId) -> Result<u64>;

    /// The keys and versions of every credential of `user`, sorted by key.
    async fn list_credentials(&self, user: &UserId) -> Result<Vec<(CredentialKey, Version)>>;
}

/// A user's data key, wrapped (sealed) under a keyring key.
///
/// ```
/// use consentry::store::WrappedDataKey;
/// use consentry::vault::KeyId;
/// let w = WrappedDataKey::new("dk_example", KeyId::new("k1")?, vec![1; 91]);
/// assert_eq!(w.kek.as_str(), "k1");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedDataKey {
    /// The data key's id (written into every credential envelope it seals).
    pub id: String,
    /// The keyring key it is wrapped under.
    pub kek: KeyId,
    /// The wrapped key: a vault envelope.
    pub wrapped: Vec<u8>,
}

impl WrappedDataKey {
    /// Builds a wrapped data key record.
    pub fn new(id: impl Into<String>, kek: KeyId, wrapped: Vec<u8>) -> Self {
        Self {
            id: id.into(),
            kek,
            wrapped,
        }
    }
}

/// Per-user data keys, wrapped under keyring keys.
///
/// Destroying a user's data key makes every credential sealed under it
/// unreadable, wherever copies of it are (crypto-shredding).
#[async_trait]
pub trait DataKeyStore: Debug + Send + Sync + 'static {
    /// The data key of `owner`, if any.
    async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>>;

    /// Stores `key` for `owner` unless one is already stored; returns the
    /// stored one (the given key, or the one that was there first).
    async fn insert_data_key(&self, owner: &UserId, key: WrappedDataKey) -> Result<WrappedDataKey>;

    /// Replaces the wrapping of `owner`'s data key, only if it is still the
    /// data key `new.id` wrapped under `expected_kek`. Returns whether it
    /// replaced anything.
    async fn rewrap_data_key(
        &self,
        owner: &UserId,
        expected_kek: &KeyId,
        new: WrappedDataKey,
    ) -> Result<bool>;

    /// Up to `limit` data keys not wrapped under `kek`, with owners greater
    /// than `after`, ordered by owner.
    async fn data_keys_not_under(
        &self,
        kek: &KeyId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, WrappedDataKey)>>;

    /// How many data keys each keyring key wraps.
    async fn data_key_usage(&self) -> Result<BTreeMap<KeyId, u64>>;

    /// Destroys `owner`'s data key so that its bytes are gone from the live
    /// store (for SQLite: from the database file and its WAL). Returns
    /// whether there was one.
    async fn destroy_data_key(&self, owner: &UserId) -> Result<bool>;
}

/// Implements both traits for smart pointers by forwarding every method, so
/// `Arc<S>`, `Box<S>` and `Arc<dyn Store>` are stores too; no default method
/// is inherited silently.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: CredentialStore + ?Sized> CredentialStore for $($seg)::+<T> {
            async fn get_credential(&self, key: &CredentialKey) -> Result<Option<StoredCredential>> {
                (**self).get_credential(key).await
            }
            async fn put_credentials(&self, writes: Vec<CredentialWrite>) -> Result<Vec<Version>> {
                (**self).put_credentials(writes).await
            }
            async fn delete_connection_credentials(&self, user: &UserId, connection: &ConnectionId) -> Result<u64> {
                (**self).delete_connection_credentials(user, connection).await
            }
            async fn delete_user_credentials(&self, user: &UserId) -> Result<u64> {
                (**self).delete_user_credentials(user).await
            }
            async fn list_credentials(&self, user: &UserId) -> Result<Vec<(CredentialKey, Version)>> {
                (**self).list_credentials(user).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: DataKeyStore + ?Sized> DataKeyStore for $($seg)::+<T> {
            async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>> {
                (**self).get_data_key(owner).await
            }
            async fn insert_data_key(&self, owner: &UserId, key: WrappedDataKey) -> Result<WrappedDataKey> {
                (**self).insert_data_key(owner, key).await
            }
            async fn rewrap_data_key(&self, owner: &UserId, expected_kek: &KeyId, new: WrappedDataKey) -> Result<bool> {
                (**self).rewrap_data_key(owner, expected_kek, new).await
            }
            async fn data_keys_not_under(&self, kek: &KeyId, after: Option<&UserId>, limit: usize) -> Result<Vec<(UserId, WrappedDataKey)>> {
                (**self).data_keys_not_under(kek, after, limit).await
            }
            async fn data_key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
                (**self).data_key_usage().await
            }
            async fn destroy_data_key(&self, owner: &UserId) -> Result<bool> {
                (**self).destroy_data_key(owner).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
