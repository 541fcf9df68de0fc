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
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::store::CredentialKey;
    /// use consentry::vault::CredentialKind;
    /// let user = UserId::in_tenant("acme", "u1")?;
    /// let key = CredentialKey::new(user.clone(), ConnectionId::new("c1")?, CredentialKind::AccessToken);
    /// assert_eq!((key.user, key.connection.as_str()), (user, "c1"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
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
    ///
    /// ```
    /// use consentry::store::StoredCredential;
    /// use consentry::vault::Version;
    /// let row = StoredCredential::new(vec![7; 3], Version::new(1).next());
    /// assert_eq!(row.envelope, [7, 7, 7]);
    /// assert_eq!(row.version, Version::new(2));
    /// ```
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
    /// An unconditional write: it replaces whatever is stored.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::store::{CredentialKey, CredentialWrite};
    /// use consentry::vault::CredentialKind;
    /// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::ApiKey);
    /// let w = CredentialWrite::new(key, vec![1, 2, 3]);
    /// assert_eq!(w.expected, None);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(key: CredentialKey, envelope: Vec<u8>) -> Self {
        Self {
            key,
            envelope,
            expected: None,
        }
    }

    /// Makes the write conditional on the stored version being `version`
    /// ([`Version::NONE`]: only if nothing is stored).
    ///
    /// ```
    /// use consentry::{ConnectionId, Error, UserId};
    /// use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// use consentry::vault::{CredentialKind, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::ApiKey);
    /// let first = CredentialWrite::new(key.clone(), vec![1]).expecting(Version::NONE);
    /// store.put_credentials(vec![first.clone()]).await?;
    /// let again = store.put_credentials(vec![first]).await; // something is stored now
    /// assert!(matches!(again, Err(Error::Conflict { expected: 0, found: 1, .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
///
/// ```
/// use consentry::{ConnectionId, UserId};
/// use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
/// use consentry::vault::{CredentialKind, Version};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::AccessToken);
/// store.put_credentials(vec![CredentialWrite::new(key.clone(), vec![1, 2, 3])]).await?;
/// let row = store.get_credential(&key).await?.expect("just written");
/// assert_eq!((row.envelope, row.version), (vec![1, 2, 3], Version::new(1)));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait CredentialStore: Debug + Send + Sync + 'static {
    /// The credential at `key`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// use consentry::vault::CredentialKind;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let key = CredentialKey::new(UserId::new("u1")?, ConnectionId::new("c1")?, CredentialKind::IdToken);
    /// assert!(store.get_credential(&key).await?.is_none());
    /// store.put_credentials(vec![CredentialWrite::new(key.clone(), vec![42])]).await?;
    /// assert_eq!(store.get_credential(&key).await?.map(|row| row.envelope), Some(vec![42]));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn get_credential(&self, key: &CredentialKey) -> Result<Option<StoredCredential>>;

    /// Applies every write in `writes` atomically and returns the new
    /// versions, in order.
    ///
    /// If any write's `expected` version does not match what is stored,
    /// nothing is written and the result is
    /// [`Error::Conflict`](crate::Error::Conflict). A key appears at most
    /// once per batch.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) as above;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) if a key appears
    /// twice in `writes`; [`Error::Storage`](crate::Error::Storage) if the
    /// backend fails. In every case nothing is written.
    ///
    /// ```
    /// # use consentry::{ConnectionId, Error, UserId};
    /// # use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// # use consentry::vault::{CredentialKind, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (u, c) = (UserId::new("u1")?, ConnectionId::new("c1")?);
    /// let access = CredentialKey::new(u.clone(), c.clone(), CredentialKind::AccessToken);
    /// let refresh = CredentialKey::new(u, c, CredentialKind::RefreshToken);
    /// let batch = vec![CredentialWrite::new(access.clone(), vec![1]), CredentialWrite::new(refresh.clone(), vec![2])];
    /// assert_eq!(store.put_credentials(batch).await?, vec![Version::new(1), Version::new(1)]);
    /// // One stale expectation: the whole batch is refused.
    /// let batch = vec![CredentialWrite::new(access.clone(), vec![3]), CredentialWrite::new(refresh, vec![4]).expecting(Version::NONE)];
    /// assert!(matches!(store.put_credentials(batch).await, Err(Error::Conflict { .. })));
    /// assert_eq!(store.get_credential(&access).await?.unwrap().envelope, vec![1]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn put_credentials(&self, writes: Vec<CredentialWrite>) -> Result<Vec<Version>>;

    /// Deletes every credential of `user`'s `connection`; returns how many.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// # use consentry::vault::CredentialKind;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let u = UserId::new("u1")?;
    /// let (c1, c2) = (ConnectionId::new("c1")?, ConnectionId::new("c2")?);
    /// # let write = |c: &ConnectionId, kind| CredentialWrite::new(CredentialKey::new(u.clone(), c.clone(), kind), vec![0]);
    /// # store.put_credentials(vec![write(&c1, CredentialKind::AccessToken), write(&c1, CredentialKind::RefreshToken), write(&c2, CredentialKind::AccessToken)]).await?;
    /// // c1 holds an access and a refresh token, c2 an access token.
    /// assert_eq!(store.delete_connection_credentials(&u, &c1).await?, 2);
    /// let left = store.list_credentials(&u).await?;
    /// assert_eq!(left.len(), 1);
    /// assert_eq!(left[0].0.connection, c2);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn delete_connection_credentials(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<u64>;

    /// Deletes every credential of `user`, across all connections; returns
    /// how many.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// use consentry::vault::CredentialKind;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
    /// # let write = |u: &UserId, c: &str| CredentialWrite::new(CredentialKey::new(u.clone(), ConnectionId::new(c).unwrap(), CredentialKind::ApiKey), vec![0]);
    /// # store.put_credentials(vec![write(&alice, "c1"), write(&alice, "c2"), write(&bob, "c1")]).await?;
    /// // alice has credentials on two connections, bob on one.
    /// assert_eq!(store.delete_user_credentials(&alice).await?, 2);
    /// assert!(store.list_credentials(&alice).await?.is_empty());
    /// assert_eq!(store.list_credentials(&bob).await?.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn delete_user_credentials(&self, user: &UserId) -> Result<u64>;

    /// The keys and versions of every credential of `user`, sorted by key
    /// (connection, then kind).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails or a
    /// stored row is invalid.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// # use consentry::vault::{CredentialKind, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let u = UserId::new("u1")?;
    /// let key = |c: &str, kind| CredentialKey::new(u.clone(), ConnectionId::new(c).unwrap(), kind);
    /// let w = CredentialWrite::new(key("c2", CredentialKind::AccessToken), vec![0]);
    /// store.put_credentials(vec![w.clone()]).await?;
    /// store.put_credentials(vec![w, CredentialWrite::new(key("c1", CredentialKind::RefreshToken), vec![0])]).await?;
    /// assert_eq!(store.list_credentials(&u).await?, vec![
    ///     (key("c1", CredentialKind::RefreshToken), Version::new(1)),
    ///     (key("c2", CredentialKind::AccessToken), Version::new(2)),
    /// ]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// use consentry::store::WrappedDataKey;
    /// use consentry::vault::KeyId;
    /// let w = WrappedDataKey::new(String::from("dk_1"), "k2".parse::<KeyId>()?, vec![0; 4]);
    /// assert_eq!((w.id.as_str(), w.kek.as_str(), w.wrapped.len()), ("dk_1", "k2", 4));
    /// # Ok::<(), consentry::Error>(())
    /// ```
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
///
/// ```
/// use consentry::UserId;
/// use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
/// use consentry::vault::KeyId;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let alice = UserId::new("alice")?;
/// let key = WrappedDataKey::new("dk_1", KeyId::new("k1")?, vec![1; 8]);
/// store.insert_data_key(&alice, key.clone()).await?;
/// assert_eq!(store.get_data_key(&alice).await?, Some(key));
/// assert!(store.destroy_data_key(&alice).await?);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait DataKeyStore: Debug + Send + Sync + 'static {
    /// The data key of `owner`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails or the
    /// stored row is invalid.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
    /// store.insert_data_key(&alice, WrappedDataKey::new("dk_a", KeyId::new("k1")?, vec![1])).await?;
    /// assert_eq!(store.get_data_key(&alice).await?.map(|w| w.id), Some("dk_a".to_owned()));
    /// assert_eq!(store.get_data_key(&bob).await?, None);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn get_data_key(&self, owner: &UserId) -> Result<Option<WrappedDataKey>>;

    /// Stores `key` for `owner` unless one is already stored; returns the
    /// stored one (the given key, or the one that was there first).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let alice = UserId::new("alice")?;
    /// let first = WrappedDataKey::new("dk_first", KeyId::new("k1")?, vec![1]);
    /// let second = WrappedDataKey::new("dk_second", KeyId::new("k1")?, vec![2]);
    /// assert_eq!(store.insert_data_key(&alice, first.clone()).await?, first);
    /// // A concurrent creator that lost the race gets the first key back.
    /// assert_eq!(store.insert_data_key(&alice, second).await?, first);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn insert_data_key(&self, owner: &UserId, key: WrappedDataKey) -> Result<WrappedDataKey>;

    /// Replaces the wrapping of `owner`'s data key, only if it is still the
    /// data key `new.id` wrapped under `expected_kek`. Returns whether it
    /// replaced anything.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails. A
    /// lost compare-and-swap is `Ok(false)`, not an error.
    ///
    /// ```
    /// # use consentry::UserId;
    /// # use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// # use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let alice = UserId::new("alice")?;
    /// let (k1, k2) = (KeyId::new("k1")?, KeyId::new("k2")?);
    /// store.insert_data_key(&alice, WrappedDataKey::new("dk_a", k1.clone(), vec![1])).await?;
    /// let under_k2 = WrappedDataKey::new("dk_a", k2.clone(), vec![2]);
    /// assert!(store.rewrap_data_key(&alice, &k1, under_k2.clone()).await?);
    /// // No longer under k1: a second rewrap from k1 changes nothing.
    /// assert!(!store.rewrap_data_key(&alice, &k1, under_k2).await?);
    /// assert_eq!(store.get_data_key(&alice).await?.unwrap().kek, k2);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn rewrap_data_key(
        &self,
        owner: &UserId,
        expected_kek: &KeyId,
        new: WrappedDataKey,
    ) -> Result<bool>;

    /// Up to `limit` data keys not wrapped under `kek`, with owners greater
    /// than `after` (all owners for `None`), ordered by owner. Pass the
    /// last owner of a full page as `after` to get the next page.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails or a
    /// stored row is invalid.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let new = KeyId::new("k2")?;
    /// // Users a, c and d have data keys under k1, user b under k2.
    /// # for (name, kek) in [("a", "k1"), ("b", "k2"), ("c", "k1"), ("d", "k1")] {
    /// #     store.insert_data_key(&UserId::new(name)?, WrappedDataKey::new("dk", KeyId::new(kek)?, vec![0])).await?;
    /// # }
    /// let page = store.data_keys_not_under(&new, None, 2).await?;
    /// assert_eq!(page.iter().map(|(u, _)| u.user()).collect::<Vec<_>>(), ["a", "c"]);
    /// let next = store.data_keys_not_under(&new, Some(&page[1].0), 2).await?;
    /// assert_eq!(next.iter().map(|(u, _)| u.user()).collect::<Vec<_>>(), ["d"]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn data_keys_not_under(
        &self,
        kek: &KeyId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, WrappedDataKey)>>;

    /// How many data keys each keyring key wraps. Keys that wrap none are
    /// absent from the map.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails or a
    /// stored row is invalid.
    ///
    /// ```
    /// # use consentry::UserId;
    /// # use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// # use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (k1, k2) = (KeyId::new("k1")?, KeyId::new("k2")?);
    /// for (name, kek) in [("a", &k1), ("b", &k2), ("c", &k2)] {
    ///     store.insert_data_key(&UserId::new(name)?, WrappedDataKey::new("dk", kek.clone(), vec![0])).await?;
    /// }
    /// let usage = store.data_key_usage().await?;
    /// assert_eq!((usage[&k1], usage[&k2]), (1, 2));
    /// assert!(!usage.contains_key(&KeyId::new("k3")?));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn data_key_usage(&self) -> Result<BTreeMap<KeyId, u64>>;

    /// Destroys `owner`'s data key so that its bytes are gone from the live
    /// store (for SQLite: from the database file and its WAL). Returns
    /// whether there was one.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the backend fails. For
    /// SQLite that includes a WAL another connection keeps in use after the
    /// key's row is deleted; calling again finishes scrubbing.
    ///
    /// ```
    /// use consentry::UserId;
    /// use consentry::store::{DataKeyStore, MemoryStore, WrappedDataKey};
    /// use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let alice = UserId::new("alice")?;
    /// store.insert_data_key(&alice, WrappedDataKey::new("dk_a", KeyId::new("k1")?, vec![1; 8])).await?;
    /// assert!(store.destroy_data_key(&alice).await?);
    /// assert!(store.get_data_key(&alice).await?.is_none());
    /// assert!(!store.destroy_data_key(&alice).await?); // nothing left to destroy
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
