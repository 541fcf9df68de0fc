//! The token vault: credentials encrypted at rest under per-user data keys,
//! which are wrapped under a rotatable [`Keyring`].
//!
//! Usable on its own, with any [`Store`](crate::store::Store):
//!
//! ```
//! use consentry::{ConnectionId, UserId};
//! use consentry::secrecy::{ExposeSecret, SecretString};
//! use consentry::store::MemoryStore;
//! use consentry::vault::{CredentialKind, Keyring, Vault};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
//! let user = UserId::new("alice")?;
//! let conn = ConnectionId::new("conn_google")?;
//!
//! let v1 = vault.put(&user, &conn, CredentialKind::RefreshToken, SecretString::from("1//0g-secret")).await?;
//! let got = vault.get(&user, &conn, CredentialKind::RefreshToken).await?;
//! assert_eq!(got.value.expose_secret(), "1//0g-secret");
//! assert_eq!(got.version, v1);
//!
//! // Rotation: a new primary key, rewrap, retire the old one.
//! vault.set_keyring(vault.keyring().rotated()?);
//! assert_eq!(vault.rewrap().await?.rewrapped, 1);
//! vault.retire(&"k1".parse()?).await?;
//!
//! // Crypto-shredding.
//! vault.erase_user(&user).await?;
//! assert!(vault.get(&user, &conn, CredentialKind::RefreshToken).await.is_err());
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```
//!
//! How it is built (see `docs/vault.md` for the threat model and
//! `docs/vectors/vault-v1.json` for known-answer vectors):
//!
//! - Each user (tenant + user id) has a random 256-bit data key. It seals
//!   that user's credentials and is stored only wrapped under the keyring's
//!   primary key. Unwrapped data keys are cached in memory (bounded, zeroed
//!   on drop).
//! - Every ciphertext is an [`Envelope`]: XChaCha20-Poly1305 with a random
//!   nonce, the key id in the header, a key-commitment tag, and associated
//!   data rebuilt from the row (tenant, user, connection, credential kind,
//!   header), so a ciphertext moved anywhere else fails.
//! - Rotation never re-encrypts credentials: [`Vault::rewrap`] re-wraps data
//!   keys under the new primary while the application keeps running.
//! - [`Vault::erase_user`] destroys the user's data key: their credentials
//!   become unreadable everywhere, including in backups that do not also
//!   hold the data key.

mod envelope;
mod keyring;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

pub use envelope::{Envelope, MAX_PLAINTEXT_LEN};
pub use keyring::{EnvKeyProvider, FileKeyProvider, KeyId, KeyProvider, Keyring};
pub use types::{
    CredentialKind, CredentialUpdate, ErasureReport, RewrapReport, Version, Versioned,
};

use envelope::{Location, SealKey};

use crate::error::{DecryptFailure, Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::secret::{fill_random, random_token};
use crate::store::{
    CredentialKey, CredentialStore, CredentialWrite, DataKeyStore, StoredCredential, WrappedDataKey,
};

/// An unwrapped data key and its id.
struct DataKey {
    id: String,
    key: SealKey,
}

/// How many unwrapped data keys a vault keeps in memory.
const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// How many data keys one rewrap round reads at a time.
/// The most walks one rewrap makes (see `rewrap_with_progress`).
const REWRAP_WALKS: usize = 4;
const REWRAP_BATCH: usize = 256;

/// The token vault. Cheap to clone; clones share keys, cache and stores.
///
/// See the [module documentation](self) for a tour.
///
/// ```
/// # use consentry::{ConnectionId, UserId};
/// # use consentry::secrecy::{ExposeSecret, SecretString};
/// # use consentry::store::MemoryStore;
/// # use consentry::vault::{CredentialKind, Keyring, Vault};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
/// let clone = vault.clone();
/// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
/// clone.put(&u, &c, CredentialKind::ApiKey, SecretString::from("key-1")).await?;
/// assert_eq!(vault.get(&u, &c, CredentialKind::ApiKey).await?.value.expose_secret(), "key-1");
/// clone.set_keyring(vault.keyring().rotated()?);
/// assert_eq!(vault.keyring().primary().as_str(), "k2"); // the keyring is shared too
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Arc<dyn CredentialStore>,
    data_keys: Arc<dyn DataKeyStore>,
    keyring: RwLock<Arc<Keyring>>,
    cache: Mutex<HashMap<UserId, Arc<DataKey>>>,
    cache_capacity: usize,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("keyring", &self.keyring())
            .field("credentials", &self.inner.credentials)
            .field("data_keys", &self.inner.data_keys)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault keeping credentials and data keys in `store`.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::{CredentialStore, DataKeyStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(); // clones share one map
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// assert_eq!(store.list_credentials(&u).await?.len(), 1); // sealed, never plaintext
    /// assert!(store.get_data_key(&u).await?.is_some()); // wrapped under the keyring
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn new<S>(store: S, keyring: Keyring) -> Self
    where
        S: CredentialStore + DataKeyStore,
    {
        let store = Arc::new(store);
        Self::with_stores(store.clone(), store, keyring)
    }

    /// A vault keeping data keys in a store of their own, apart from the
    /// credentials (and their backups).
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::{DataKeyStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (credentials, data_keys) = (MemoryStore::new(), MemoryStore::new());
    /// let vault = Vault::with_stores(credentials.clone(), data_keys.clone(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// assert!(data_keys.get_data_key(&u).await?.is_some());
    /// assert!(credentials.get_data_key(&u).await?.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn with_stores(
        credentials: impl CredentialStore,
        data_keys: impl DataKeyStore,
        keyring: Keyring,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                credentials: Arc::new(credentials),
                data_keys: Arc::new(data_keys),
                keyring: RwLock::new(Arc::new(keyring)),
                cache: Mutex::new(HashMap::new()),
                cache_capacity: DEFAULT_CACHE_CAPACITY,
            }),
        }
    }

    /// The current keyring (a snapshot: a later [`Vault::set_keyring`] does
    /// not change it).
    ///
    /// ```
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{Keyring, Vault};
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let ring = vault.keyring();
    /// assert_eq!(ring.primary().as_str(), "k1");
    /// vault.set_keyring(ring.rotated()?);
    /// assert_eq!(ring.primary().as_str(), "k1"); // the snapshot
    /// assert_eq!(vault.keyring().primary().as_str(), "k2");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn keyring(&self) -> Arc<Keyring> {
        self.inner
            .keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the keyring, typically with one that has a new primary key
    /// ([`Keyring::rotated`]). Takes effect for the next call; data keys
    /// already unwrapped stay usable.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::{ExposeSecret, SecretString};
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, KeyId, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (alice, bob, c) = (UserId::new("alice")?, UserId::new("bob")?, ConnectionId::new("c")?);
    /// vault.put(&alice, &c, CredentialKind::AccessToken, SecretString::from("a")).await?;
    /// vault.set_keyring(vault.keyring().rotated()?);
    /// vault.put(&bob, &c, CredentialKind::AccessToken, SecretString::from("b")).await?;
    /// let usage = vault.key_usage().await?; // new data keys go under the new primary
    /// assert_eq!((usage[&KeyId::new("k1")?], usage[&KeyId::new("k2")?]), (1, 1));
    /// assert_eq!(vault.get(&alice, &c, CredentialKind::AccessToken).await?.value.expose_secret(), "a");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_keyring(&self, keyring: Keyring) {
        *self
            .inner
            .keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keyring);
    }

    /// Stores `secret` for `user`'s `connection`, replacing what was there,
    /// and returns its new version. The user's data key is created on the
    /// first write.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the secret is over
    /// [`MAX_PLAINTEXT_LEN`] bytes; [`Error::KeyNotFound`] or
    /// [`Error::Decrypt`] if the user's data key cannot be unwrapped;
    /// [`Error::Storage`] if the store fails; [`Error::Random`] if the
    /// system random number generator fails.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::{ExposeSecret, SecretString};
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// let v1 = vault.put(&u, &c, kind, SecretString::from("ya29.first")).await?;
    /// let v2 = vault.put(&u, &c, kind, SecretString::from("ya29.second")).await?;
    /// assert_eq!((v1.get(), v2.get()), (1, 2));
    /// assert_eq!(vault.get(&u, &c, kind).await?.value.expose_secret(), "ya29.second");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn put(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
        secret: SecretString,
    ) -> Result<Version> {
        self.write(user, connection, kind, &secret, None).await
    }

    /// Stores `secret` only if the stored version is still `expected`
    /// ([`Version::NONE`]: only if nothing is stored).
    ///
    /// # Errors
    /// [`Error::Conflict`] if the version moved on; nothing is written.
    /// Otherwise as [`Vault::put`].
    ///
    /// ```
    /// use consentry::{ConnectionId, Error, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{CredentialKind, Keyring, Vault, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c, k) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// let v1 = vault.compare_and_put(&u, &c, k, Version::NONE, SecretString::from("a")).await?;
    /// let stale = vault.compare_and_put(&u, &c, k, Version::NONE, SecretString::from("b")).await;
    /// assert!(matches!(stale, Err(Error::Conflict { .. })));
    /// vault.compare_and_put(&u, &c, k, v1, SecretString::from("b")).await?;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn compare_and_put(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
        expected: Version,
        secret: SecretString,
    ) -> Result<Version> {
        self.write(user, connection, kind, &secret, Some(expected))
            .await
    }

    async fn write(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
        secret: &SecretString,
        expected: Option<Version>,
    ) -> Result<Version> {
        let update = CredentialUpdate {
            kind,
            secret: secret.clone(),
            expected,
        };
        let versions = self.write_many(user, connection, vec![update]).await?;
        versions.into_iter().next().ok_or(Error::Internal(
            "store returned no version for a one-write batch",
        ))
    }

    /// Stores several credentials of one connection in one transaction:
    /// all are written or none is. Returns the new versions, in order.
    ///
    /// # Errors
    /// [`Error::Conflict`] if any update's expected version is stale
    /// (nothing is written); [`Error::InvalidInput`] if a kind appears twice.
    /// Otherwise as [`Vault::put`].
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{CredentialKind, CredentialUpdate, Keyring, Vault, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// let versions = vault.write_many(&u, &c, vec![
    ///     CredentialUpdate::new(CredentialKind::RefreshToken, SecretString::from("r2")),
    ///     CredentialUpdate::new(CredentialKind::AccessToken, SecretString::from("a2")),
    /// ]).await?;
    /// assert_eq!(versions, vec![Version::new(1), Version::new(1)]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn write_many(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        updates: Vec<CredentialUpdate>,
    ) -> Result<Vec<Version>> {
        let writes = self.seal(user, connection, updates).await?;
        self.inner.credentials.put_credentials(writes).await
    }

    /// Seals credentials of one connection without storing them, for a
    /// caller that stores them together with other changes in one
    /// transaction (as `Integrations` does with
    /// [`ConnectionStore::write_connection`](crate::store::ConnectionStore::write_connection)).
    ///
    /// Creates the user's data key if needed (that is stored at once; a data
    /// key alone reveals nothing).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a secret over [`MAX_PLAINTEXT_LEN`];
    /// key and storage errors as for [`Vault::put`].
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::{ExposeSecret, SecretString};
    /// use consentry::store::{CredentialStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, CredentialUpdate, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// let writes = vault.seal(&u, &c, vec![CredentialUpdate::new(CredentialKind::AccessToken, SecretString::from("t"))]).await?;
    /// store.put_credentials(writes).await?; // or inside a bigger transaction
    /// assert_eq!(vault.get(&u, &c, CredentialKind::AccessToken).await?.value.expose_secret(), "t");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn seal(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        updates: Vec<CredentialUpdate>,
    ) -> Result<Vec<CredentialWrite>> {
        let data_key = self.data_key_for_write(user).await?;
        updates
            .into_iter()
            .map(|u| {
                let location = Location::Credential {
                    user,
                    connection,
                    kind: u.kind,
                };
                Ok(CredentialWrite {
                    key: CredentialKey::new(user.clone(), connection.clone(), u.kind),
                    envelope: data_key.key.seal(
                        &data_key.id,
                        &location,
                        u.secret.expose_secret().as_bytes(),
                    )?,
                    expected: u.expected,
                })
            })
            .collect()
    }

    /// Decrypts a credential the caller read from the store itself (for
    /// example through
    /// [`ConnectionStore::access_view`](crate::store::ConnectionStore::access_view)),
    /// checking it belongs to `user`, `connection` and `kind`.
    ///
    /// # Errors
    /// As [`Vault::get`], except that there is no `NotFound`.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::{ExposeSecret, SecretString};
    /// use consentry::store::{CredentialKey, CredentialStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let (u, c, k) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// vault.put(&u, &c, k, SecretString::from("t")).await?;
    /// let row = store.get_credential(&CredentialKey::new(u.clone(), c.clone(), k)).await?.unwrap();
    /// assert_eq!(vault.open(&u, &c, k, &row).await?.value.expose_secret(), "t");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
        stored: &StoredCredential,
    ) -> Result<Versioned<SecretString>> {
        self.open_envelope(user, connection, kind, &stored.envelope)
            .await
            .map(|value| Versioned {
                value,
                version: stored.version,
            })
    }

    /// Decrypts an envelope sealed for `user`, `connection` and `kind`.
    pub(crate) async fn open_envelope(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
        envelope: &[u8],
    ) -> Result<SecretString> {
        let envelope = Envelope::parse(envelope).map_err(|_| Error::Decrypt {
            what: "credential",
            reason: DecryptFailure::Malformed,
        })?;
        let data_key = self.data_key_for_read(user, envelope.key_id()).await?;
        let location = Location::Credential {
            user,
            connection,
            kind,
        };
        secret_string(data_key.key.open(&envelope, &location)?)
    }

    /// Reads and decrypts a credential.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none; [`Error::Decrypt`] if it was
    /// tampered with or moved, or if the user's data key it was sealed under
    /// is gone (erased or replaced); [`Error::KeyNotFound`] naming the key id
    /// if the user's data key is wrapped under a key the keyring lacks;
    /// [`Error::Storage`] if the store fails.
    ///
    /// ```
    /// # use consentry::{ConnectionId, Error, UserId};
    /// # use consentry::secrecy::{ExposeSecret, SecretString};
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, Keyring, Vault, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::RefreshToken, SecretString::from("1//0g")).await?;
    /// let got = vault.get(&u, &c, CredentialKind::RefreshToken).await?;
    /// assert_eq!((got.value.expose_secret(), got.version), ("1//0g", Version::new(1)));
    /// let missing = vault.get(&u, &c, CredentialKind::AccessToken).await;
    /// assert!(matches!(missing, Err(Error::NotFound { what: "credential" })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        kind: CredentialKind,
    ) -> Result<Versioned<SecretString>> {
        let key = CredentialKey::new(user.clone(), connection.clone(), kind);
        let stored = self
            .inner
            .credentials
            .get_credential(&key)
            .await?
            .ok_or(Error::NotFound { what: "credential" })?;
        self.open(user, connection, kind, &stored).await
    }

    /// Deletes every credential of `user`'s `connection`; returns how many.
    /// The user's data key and other connections stay.
    ///
    /// # Errors
    /// [`Error::Storage`] if the store fails.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, google, github) = (UserId::new("u")?, ConnectionId::new("google")?, ConnectionId::new("github")?);
    /// vault.put(&u, &google, CredentialKind::AccessToken, SecretString::from("a")).await?;
    /// vault.put(&u, &google, CredentialKind::RefreshToken, SecretString::from("r")).await?;
    /// vault.put(&u, &github, CredentialKind::AccessToken, SecretString::from("g")).await?;
    /// assert_eq!(vault.delete_connection(&u, &google).await?, 2);
    /// assert!(vault.get(&u, &github, CredentialKind::AccessToken).await.is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete_connection(&self, user: &UserId, connection: &ConnectionId) -> Result<u64> {
        self.inner
            .credentials
            .delete_connection_credentials(user, connection)
            .await
    }

    /// Crypto-shreds `user`: destroys their data key, then deletes their
    /// credentials.
    ///
    /// The data key goes first, so even if deleting the rows fails, nothing
    /// of the user's can be decrypted any more, here or in any backup that
    /// does not also hold the data key. See `docs/vault.md` for exactly what
    /// this covers.
    ///
    /// # Errors
    /// [`Error::Storage`] if the store fails; calling it again finishes the
    /// job.
    ///
    /// ```
    /// # use consentry::{ConnectionId, ErrorKind, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
    /// # use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::RefreshToken);
    /// let (credentials, data_keys) = (MemoryStore::new(), MemoryStore::new());
    /// let vault = Vault::with_stores(credentials.clone(), data_keys, Keyring::generate()?);
    /// vault.put(&u, &c, kind, SecretString::from("1//0g")).await?;
    /// let key = CredentialKey::new(u.clone(), c.clone(), kind);
    /// let backup = credentials.get_credential(&key).await?.expect("stored");
    /// vault.erase_user(&u).await?;
    /// // Restoring the row from a backup brings back a ciphertext nobody can open.
    /// credentials.put_credentials(vec![CredentialWrite::new(key, backup.envelope)]).await?;
    /// assert_eq!(vault.get(&u, &c, kind).await.unwrap_err().kind(), ErrorKind::Crypto);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn erase_user(&self, user: &UserId) -> Result<ErasureReport> {
        let data_key_destroyed = self.inner.data_keys.destroy_data_key(user).await?;
        self.forget(user);
        let credentials_deleted = self.inner.credentials.delete_user_credentials(user).await?;
        Ok(ErasureReport {
            data_key_destroyed,
            credentials_deleted,
        })
    }

    /// How many data keys each keyring key wraps, from the store. A key
    /// that wraps none is absent from the map and can be retired.
    ///
    /// # Errors
    /// [`Error::Storage`] if the store fails.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, KeyId, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// # for name in ["alice", "bob"] {
    /// #     let (u, c) = (UserId::new(name)?, ConnectionId::new("c")?);
    /// #     vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// # }
    /// // alice and bob have one credential each, so one data key each, under k1.
    /// let (k1, k2) = (KeyId::new("k1")?, KeyId::new("k2")?);
    /// assert_eq!(vault.key_usage().await?.get(&k1), Some(&2));
    /// vault.set_keyring(vault.keyring().rotated()?);
    /// vault.rewrap().await?;
    /// let usage = vault.key_usage().await?;
    /// assert_eq!((usage.get(&k1), usage.get(&k2)), (None, Some(&2))); // k1 can be retired
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        self.inner.data_keys.data_key_usage().await
    }

    /// Re-wraps every data key not under the primary key, in batches.
    ///
    /// Safe while the application keeps reading and writing: credentials are
    /// never touched, and each data key's wrapping is replaced with a
    /// compare-and-swap. Resumable: running it again continues where an
    /// interrupted run stopped. A `put` that read the keyring just before
    /// it changed may write a new data key under the old primary key behind
    /// the walk, so the walk repeats while it still moved something (at
    /// most 4 walks).
    ///
    /// # Errors
    /// [`Error::Storage`] if the store fails; [`Error::Random`] if the
    /// system random number generator fails. Keys the keyring lacks and
    /// rows that fail to authenticate are counted in the report, not raised.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::{ExposeSecret, SecretString};
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// vault.put(&u, &c, kind, SecretString::from("t")).await?;
    /// vault.set_keyring(vault.keyring().rotated()?);
    /// assert_eq!(vault.rewrap().await?.rewrapped, 1);
    /// assert_eq!(vault.rewrap().await?.rewrapped, 0); // nothing left: running again is harmless
    /// assert_eq!(vault.get(&u, &c, kind).await?.value.expose_secret(), "t");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        self.rewrap_with_progress(|_| {}).await
    }

    /// [`rewrap`](Self::rewrap), calling `progress` with the report so far
    /// after each batch (of 256 data keys), e.g. to drive a progress bar;
    /// [`key_usage`](Self::key_usage) before the run gives the total.
    ///
    /// # Errors
    /// As [`rewrap`](Self::rewrap).
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// for i in 0..300 {
    ///     let (u, c) = (UserId::new(format!("u{i}"))?, ConnectionId::new("c")?);
    ///     vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// }
    /// vault.set_keyring(vault.keyring().rotated()?);
    /// let mut seen = Vec::new();
    /// let report = vault.rewrap_with_progress(|so_far| seen.push(so_far.processed())).await?;
    /// assert_eq!(seen, [256, 300]); // after each batch
    /// assert_eq!(report.rewrapped, 300);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rewrap_with_progress(
        &self,
        mut progress: impl FnMut(&RewrapReport) + Send,
    ) -> Result<RewrapReport> {
        let ring = self.keyring();
        let (primary_id, primary) = ring.primary_key();
        let mut report = RewrapReport::default();
        // Data keys already counted as missing or failed: later walks pass
        // over them.
        let mut counted: std::collections::HashSet<String> = std::collections::HashSet::new();
        // A `put` that read the keyring before it changed can still write a
        // new data key under the old primary key, behind the walk: walk
        // again until a walk moves nothing (at most REWRAP_WALKS), so that
        // a complete report means no movable data key is left behind.
        for _ in 0..REWRAP_WALKS {
            let mut moved = 0u64;
            let mut after: Option<UserId> = None;
            loop {
                let batch = self
                    .inner
                    .data_keys
                    .data_keys_not_under(primary_id, after.as_ref(), REWRAP_BATCH)
                    .await?;
                let full = batch.len() >= REWRAP_BATCH;
                for (owner, wrapped) in &batch {
                    if counted.contains(&wrapped.id) {
                        continue;
                    }
                    match unwrap_data_key(&ring, owner, wrapped) {
                        Ok(material) => {
                            let location = Location::DataKey {
                                owner,
                                data_key_id: &wrapped.id,
                            };
                            let rewrapped = WrappedDataKey::new(
                                wrapped.id.clone(),
                                primary_id.clone(),
                                primary.seal(primary_id.as_str(), &location, material.as_ref())?,
                            );
                            if self
                                .inner
                                .data_keys
                                .rewrap_data_key(owner, &wrapped.kek, rewrapped)
                                .await?
                            {
                                report.rewrapped += 1;
                                moved += 1;
                            } else {
                                report.skipped += 1;
                            }
                        }
                        Err(Error::KeyNotFound { key_id }) => {
                            counted.insert(wrapped.id.clone());
                            *report.missing_keys.entry(key_id).or_default() += 1;
                        }
                        Err(Error::Decrypt { .. }) => {
                            counted.insert(wrapped.id.clone());
                            report.failed += 1;
                        }
                        Err(other) => return Err(other),
                    }
                }
                if !batch.is_empty() {
                    progress(&report);
                }
                match batch.into_iter().last() {
                    Some((owner, _)) if full => after = Some(owner),
                    _ => break,
                }
            }
            if moved == 0 {
                break;
            }
        }
        Ok(report)
    }

    /// Removes key `id` from this vault's keyring, once no data key in the
    /// store is wrapped under it.
    ///
    /// This changes the keyring in memory only: also remove the key from
    /// where the host keeps the keyring (see [`Keyring::export`]). Retire a
    /// key only when every process runs with the new primary (a process
    /// still on the old keyring could wrap a new data key under it).
    ///
    /// # Errors
    /// [`Error::KeyInUse`] while data keys are wrapped under it (run
    /// [`Vault::rewrap`]); [`Error::PrimaryKey`] for the primary key;
    /// [`Error::KeyNotFound`] if the keyring lacks it; [`Error::Storage`]
    /// if the store fails.
    ///
    /// ```
    /// # use consentry::{ConnectionId, Error, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, KeyId, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// vault.set_keyring(vault.keyring().rotated()?);
    /// let k1 = KeyId::new("k1")?;
    /// assert!(matches!(vault.retire(&k1).await, Err(Error::KeyInUse { data_keys: 1, .. })));
    /// vault.rewrap().await?;
    /// vault.retire(&k1).await?;
    /// assert!(!vault.keyring().contains(&k1));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn retire(&self, id: &KeyId) -> Result<()> {
        self.keyring().without(id)?;
        let in_use = self.key_usage().await?.get(id).copied().unwrap_or(0);
        if in_use > 0 {
            return Err(Error::KeyInUse {
                key_id: id.clone(),
                data_keys: in_use,
            });
        }
        let mut ring = self
            .inner
            .keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let smaller = ring.without(id)?;
        *ring = Arc::new(smaller);
        Ok(())
    }

    /// Drops `user`'s unwrapped data key from this vault's cache (shared by
    /// its clones, not by other vaults or processes). The next call for the
    /// user unwraps it from the store again.
    ///
    /// ```
    /// # use consentry::{ConnectionId, Error, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, KeyId, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// vault.put(&u, &c, kind, SecretString::from("t")).await?; // data key under k1, now cached
    /// vault.set_keyring(vault.keyring().rotated()?.without(&KeyId::new("k1")?)?);
    /// assert!(vault.get(&u, &c, kind).await.is_ok()); // served from the cache
    /// vault.forget(&u);
    /// assert!(matches!(vault.get(&u, &c, kind).await, Err(Error::KeyNotFound { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn forget(&self, user: &UserId) {
        self.cache().remove(user);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Arc<DataKey>>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_insert(&self, user: &UserId, key: Arc<DataKey>) {
        let mut cache = self.cache();
        if cache.len() >= self.inner.cache_capacity && !cache.contains_key(user) {
            // Evict an arbitrary entry: bounded memory matters more than
            // hit rate, and a miss costs one read and one unwrap.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(user.clone(), key);
    }

    async fn data_key_for_read(&self, user: &UserId, id: &str) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cache().get(user).filter(|k| k.id == id).cloned() {
            return Ok(key);
        }
        let mismatch = || Error::Decrypt {
            what: "credential",
            reason: DecryptFailure::KeyMismatch,
        };
        let wrapped = self
            .inner
            .data_keys
            .get_data_key(user)
            .await?
            .ok_or_else(mismatch)?;
        if wrapped.id != id {
            return Err(mismatch());
        }
        self.load(user, &wrapped)
    }

    async fn data_key_for_write(&self, user: &UserId) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cache().get(user).cloned() {
            return Ok(key);
        }
        if let Some(wrapped) = self.inner.data_keys.get_data_key(user).await? {
            return self.load(user, &wrapped);
        }
        // None yet: make one. A concurrent creator may win; then use theirs.
        let mut material = Zeroizing::new([0u8; 32]);
        fill_random(material.as_mut())?;
        let id = format!("dk_{}", random_token(16)?);
        let ring = self.keyring();
        let (kek_id, kek) = ring.primary_key();
        let location = Location::DataKey {
            owner: user,
            data_key_id: &id,
        };
        let wrapped = WrappedDataKey::new(
            id.clone(),
            kek_id.clone(),
            kek.seal(kek_id.as_str(), &location, material.as_ref())?,
        );
        let stored = self.inner.data_keys.insert_data_key(user, wrapped).await?;
        if stored.id != id {
            return self.load(user, &stored);
        }
        let key = Arc::new(DataKey {
            id,
            key: SealKey::new(&material),
        });
        self.cache_insert(user, key.clone());
        Ok(key)
    }

    fn load(&self, user: &UserId, wrapped: &WrappedDataKey) -> Result<Arc<DataKey>> {
        let material = unwrap_data_key(&self.keyring(), user, wrapped)?;
        let key = Arc::new(DataKey {
            id: wrapped.id.clone(),
            key: SealKey::new(&material),
        });
        self.cache_insert(user, key.clone());
        Ok(key)
    }
}

/// Opens a wrapped data key with the keyring key its envelope names.
fn unwrap_data_key(
    ring: &Keyring,
    owner: &UserId,
    wrapped: &WrappedDataKey,
) -> Result<Zeroizing<[u8; 32]>> {
    let malformed = || Error::Decrypt {
        what: "data key",
        reason: DecryptFailure::Malformed,
    };
    let envelope = Envelope::parse(&wrapped.wrapped).map_err(|_| malformed())?;
    // The key id is stored twice, in the row and in the envelope header;
    // when they disagree, one was altered.
    if envelope.key_id() != wrapped.kek.as_str() {
        return Err(malformed());
    }
    let kek = ring
        .key(envelope.key_id())
        .ok_or_else(|| Error::KeyNotFound {
            key_id: KeyId::new(envelope.key_id()).unwrap_or_else(|_| wrapped.kek.clone()),
        })?;
    let location = Location::DataKey {
        owner,
        data_key_id: &wrapped.id,
    };
    let plain = kek.open(&envelope, &location)?;
    let material: [u8; 32] = plain.as_slice().try_into().map_err(|_| malformed())?;
    Ok(Zeroizing::new(material))
}

/// Turns a decrypted buffer into a `SecretString` without leaving copies:
/// the buffer is exactly as long as its contents, so `String` to `Box<str>`
/// does not reallocate.
fn secret_string(plain: Zeroizing<Vec<u8>>) -> Result<SecretString> {
    let mut plain = plain;
    let bytes = std::mem::take(&mut *plain);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SecretString::from(text)),
        Err(e) => {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Err(Error::Decrypt {
                what: "credential",
                reason: DecryptFailure::NotText,
            })
        }
    }
}

#[cfg(test)]
mod vectors;
