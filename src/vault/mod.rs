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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use envelope::{Envelope, MAX_PLAINTEXT_LEN};
pub use keyring::{EnvKeyProvider, FileKeyProvider, KeyId, KeyProvider, Keyring};

use envelope::{Location, SealKey};

use crate::error::{DecryptFailure, Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::secret::{fill_random, random_token};
use crate::store::{CredentialKey, CredentialStore, CredentialWrite, DataKeyStore, WrappedDataKey};

/// What a stored credential is. Part of its storage key and of the
/// associated data of its ciphertext.
///
/// ```
/// use consentry::vault::CredentialKind;
/// assert_eq!(CredentialKind::RefreshToken.as_str(), "refresh_token");
/// assert_eq!("id_token".parse::<CredentialKind>()?, CredentialKind::IdToken);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialKind {
    /// An OAuth 2.0 access token.
    AccessToken,
    /// An OAuth 2.0 refresh token.
    RefreshToken,
    /// An OpenID Connect ID token.
    IdToken,
    /// A client secret.
    ClientSecret,
    /// An API key or personal access token for a provider.
    ApiKey,
}

impl CredentialKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 5] = [
        Self::AccessToken,
        Self::RefreshToken,
        Self::IdToken,
        Self::ClientSecret,
        Self::ApiKey,
    ];

    /// The stable snake_case name, as stored and authenticated.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::IdToken => "id_token",
            Self::ClientSecret => "client_secret",
            Self::ApiKey => "api_key",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for CredentialKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid("credential kind", format!("unknown kind {s:?}")))
    }
}

/// The version of a stored credential: 1 after the first write, one more
/// after each write. [`Version::NONE`] (0) means "nothing stored".
///
/// ```
/// use consentry::vault::Version;
/// assert_eq!(Version::NONE.get(), 0);
/// assert!(Version::new(2) > Version::new(1));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Version(u64);

impl Version {
    /// Nothing stored.
    pub const NONE: Self = Self(0);

    /// Wraps a raw version number.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }

    /// The raw version number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A value with the version it was read at, for [`Vault::compare_and_put`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The version it was stored with.
    pub version: Version,
}

/// One credential to store with [`Vault::write_many`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CredentialUpdate {
    /// Which credential of the connection.
    pub kind: CredentialKind,
    /// The value.
    pub secret: SecretString,
    /// Write only if the stored version is this ([`Version::NONE`]: only if
    /// absent); `None` writes unconditionally.
    pub expected: Option<Version>,
}

impl CredentialUpdate {
    /// An unconditional update.
    pub fn new(kind: CredentialKind, secret: SecretString) -> Self {
        Self {
            kind,
            secret,
            expected: None,
        }
    }

    /// Makes the update conditional on the stored version being `version`.
    #[must_use]
    pub fn expecting(mut self, version: Version) -> Self {
        self.expected = Some(version);
        self
    }
}

/// What [`Vault::rewrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Data keys re-wrapped under the primary key.
    pub rewrapped: u64,
    /// Data keys changed or erased by someone else meanwhile (nothing to do).
    pub skipped: u64,
    /// Data keys wrapped under keys this keyring lacks, per missing key id.
    pub missing_keys: BTreeMap<KeyId, u64>,
    /// Data keys whose wrapping failed to authenticate (tampered rows).
    pub failed: u64,
}

impl RewrapReport {
    /// Whether every data key is now under the primary key.
    pub fn is_complete(&self) -> bool {
        self.missing_keys.is_empty() && self.failed == 0
    }
}

/// What [`Vault::erase_user`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureReport {
    /// Whether the user had a data key, now destroyed.
    pub data_key_destroyed: bool,
    /// How many credential rows were deleted.
    pub credentials_deleted: u64,
}

/// An unwrapped data key and its id.
struct DataKey {
    id: String,
    key: SealKey,
}

/// How many unwrapped data keys a vault keeps in memory.
const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// How many data keys one rewrap round reads at a time.
const REWRAP_BATCH: usize = 256;

/// The token vault. Cheap to clone; clones share keys, cache and stores.
///
/// See the [module documentation](self) for an example.
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
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::{Keyring, Vault};
    /// let vault = Vault::with_stores(MemoryStore::new(), MemoryStore::new(), Keyring::generate()?);
    /// # Ok::<(), consentry::Error>(())
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

    /// The current keyring.
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
    pub fn set_keyring(&self, keyring: Keyring) {
        *self
            .inner
            .keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keyring);
    }

    /// Stores `secret` for `user`'s `connection`, replacing what was there.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the secret is over
    /// [`MAX_PLAINTEXT_LEN`]; key and storage errors.
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
        let data_key = self.data_key_for_write(user).await?;
        let writes = updates
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
            .collect::<Result<Vec<_>>>()?;
        self.inner.credentials.put_credentials(writes).await
    }

    /// Reads and decrypts a credential.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none; [`Error::Decrypt`] if it was
    /// tampered with or moved; [`Error::KeyNotFound`] naming the key id if
    /// the user's data key is wrapped under a key the keyring lacks.
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
        let envelope = Envelope::parse(&stored.envelope).map_err(|_| Error::Decrypt {
            what: "credential",
            reason: DecryptFailure::Malformed,
        })?;
        let data_key = self.data_key_for_read(user, envelope.key_id()).await?;
        let location = Location::Credential {
            user,
            connection,
            kind,
        };
        let plain = data_key.key.open(&envelope, &location)?;
        Ok(Versioned {
            value: secret_string(plain)?,
            version: stored.version,
        })
    }

    /// Deletes every credential of `connection`; returns how many.
    ///
    /// # Errors
    /// Storage errors.
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
    /// Storage errors; calling it again finishes the job.
    pub async fn erase_user(&self, user: &UserId) -> Result<ErasureReport> {
        let data_key_destroyed = self.inner.data_keys.destroy_data_key(user).await?;
        self.forget(user);
        let credentials_deleted = self.inner.credentials.delete_user_credentials(user).await?;
        Ok(ErasureReport {
            data_key_destroyed,
            credentials_deleted,
        })
    }

    /// How many data keys each keyring key wraps, from the store.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        self.inner.data_keys.data_key_usage().await
    }

    /// Re-wraps every data key not under the primary key, in batches.
    ///
    /// Safe while the application keeps reading and writing: credentials are
    /// never touched, and each data key's wrapping is replaced with a
    /// compare-and-swap. Resumable: running it again continues where an
    /// interrupted run stopped.
    ///
    /// # Errors
    /// Storage errors. Keys the keyring lacks and rows that fail to
    /// authenticate are counted in the report, not raised.
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        let ring = self.keyring();
        let (primary_id, primary) = ring.primary_key();
        let mut report = RewrapReport::default();
        let mut after: Option<UserId> = None;
        loop {
            let batch = self
                .inner
                .data_keys
                .data_keys_not_under(primary_id, after.as_ref(), REWRAP_BATCH)
                .await?;
            let full = batch.len() >= REWRAP_BATCH;
            for (owner, wrapped) in &batch {
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
                        } else {
                            report.skipped += 1;
                        }
                    }
                    Err(Error::KeyNotFound { key_id }) => {
                        *report.missing_keys.entry(key_id).or_default() += 1;
                    }
                    Err(Error::Decrypt { .. }) => report.failed += 1,
                    Err(other) => return Err(other),
                }
            }
            match batch.into_iter().last() {
                Some((owner, _)) if full => after = Some(owner),
                _ => break,
            }
        }
        Ok(report)
    }

    /// Removes key `id` from the keyring, once nothing uses it.
    ///
    /// Retire a key only when every process runs with the new primary (a
    /// process still on the old keyring could wrap a new data key under it).
    ///
    /// # Errors
    /// [`Error::KeyInUse`] while data keys are wrapped under it (run
    /// [`Vault::rewrap`]); [`Error::PrimaryKey`] for the primary key;
    /// [`Error::KeyNotFound`] if the keyring lacks it.
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

    /// Drops `user`'s unwrapped data key from this process's memory.
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
