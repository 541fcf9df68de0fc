//! The vault's plain data: credential kinds, versions, updates and the
//! reports of rewrap and erasure.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::KeyId;
#[cfg(doc)]
use super::Vault;
use crate::error::{Error, Result};

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
    /// The signing secrets (and custom headers) of an outbound webhook
    /// endpoint, sealed by the [`Dispatcher`](crate::webhook::Dispatcher).
    WebhookSecret,
}

impl CredentialKind {
    /// Every kind, in a stable order.
    ///
    /// ```
    /// use consentry::vault::CredentialKind;
    /// assert_eq!(CredentialKind::ALL.len(), 6);
    /// for kind in CredentialKind::ALL {
    ///     assert_eq!(kind.as_str().parse::<CredentialKind>()?, kind);
    /// }
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub const ALL: [Self; 6] = [
        Self::AccessToken,
        Self::RefreshToken,
        Self::IdToken,
        Self::ClientSecret,
        Self::ApiKey,
        Self::WebhookSecret,
    ];

    /// The stable snake_case name, as stored and authenticated; also the
    /// `Display`, `FromStr` and serde form.
    ///
    /// ```
    /// use consentry::vault::CredentialKind;
    /// assert_eq!(CredentialKind::AccessToken.as_str(), "access_token");
    /// assert_eq!(CredentialKind::ApiKey.to_string(), "api_key");
    /// let json = serde_json::to_string(&CredentialKind::ClientSecret).unwrap();
    /// assert_eq!(json, format!("\"{}\"", CredentialKind::ClientSecret.as_str()));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::IdToken => "id_token",
            Self::ClientSecret => "client_secret",
            Self::ApiKey => "api_key",
            Self::WebhookSecret => "webhook_secret",
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
    ///
    /// ```
    /// use consentry::vault::Version;
    /// assert_eq!(Version::NONE, Version::default());
    /// assert_eq!(Version::NONE.next(), Version::new(1)); // the version of a first write
    /// ```
    pub const NONE: Self = Self(0);

    /// Wraps a raw version number.
    ///
    /// ```
    /// use consentry::vault::Version;
    /// const THIRD: Version = Version::new(3);
    /// assert_eq!(THIRD.get(), 3);
    /// assert_eq!(THIRD.to_string(), "3");
    /// ```
    pub const fn new(v: u64) -> Self {
        Self(v)
    }

    /// The raw version number.
    ///
    /// ```
    /// use consentry::vault::Version;
    /// assert_eq!(Version::new(7).get(), 7);
    /// assert_eq!(Version::NONE.get(), 0);
    /// ```
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one (saturating at `u64::MAX`).
    ///
    /// ```
    /// use consentry::vault::Version;
    /// assert_eq!(Version::new(1).next(), Version::new(2));
    /// assert_eq!(Version::new(u64::MAX).next(), Version::new(u64::MAX));
    /// ```
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A value with the version it was stored with, as [`Vault::get`] returns
/// it. Pass the version to [`Vault::compare_and_put`] to write only if
/// nobody changed the value since.
///
/// ```
/// # use consentry::{ConnectionId, UserId};
/// # use consentry::secrecy::SecretString;
/// # use consentry::store::MemoryStore;
/// # use consentry::vault::{CredentialKind, Keyring, Vault, Versioned};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
/// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
/// let v1 = vault.put(&u, &c, kind, SecretString::from("first")).await?;
/// let read: Versioned<SecretString> = vault.get(&u, &c, kind).await?;
/// assert_eq!(read.version, v1);
/// let v2 = vault.compare_and_put(&u, &c, kind, read.version, SecretString::from("second")).await?;
/// assert_eq!(v2, v1.next());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The version it was stored with.
    pub version: Version,
}

/// One credential to store with [`Vault::write_many`]. `Debug` does not
/// show the secret.
///
/// ```
/// use consentry::secrecy::SecretString;
/// use consentry::vault::{CredentialKind, CredentialUpdate, Version};
/// let update = CredentialUpdate::new(CredentialKind::AccessToken, SecretString::from("ya29.new"))
///     .expecting(Version::new(3));
/// assert_eq!(update.expected, Some(Version::new(3)));
/// assert!(!format!("{update:?}").contains("ya29.new"));
/// ```
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
    /// An unconditional update: it replaces whatever is stored.
    ///
    /// ```
    /// use consentry::secrecy::SecretString;
    /// use consentry::vault::{CredentialKind, CredentialUpdate};
    /// let update = CredentialUpdate::new(CredentialKind::RefreshToken, SecretString::from("1//0g"));
    /// assert_eq!(update.kind, CredentialKind::RefreshToken);
    /// assert_eq!(update.expected, None);
    /// ```
    pub fn new(kind: CredentialKind, secret: SecretString) -> Self {
        Self {
            kind,
            secret,
            expected: None,
        }
    }

    /// Makes the update conditional on the stored version being `version`
    /// ([`Version::NONE`]: only if nothing is stored).
    ///
    /// ```
    /// # use consentry::{ConnectionId, Error, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, CredentialUpdate, Keyring, Vault, Version};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// let v1 = vault.put(&u, &c, kind, SecretString::from("a1")).await?;
    /// let stale = CredentialUpdate::new(kind, SecretString::from("a2")).expecting(Version::NONE);
    /// assert!(matches!(vault.write_many(&u, &c, vec![stale]).await, Err(Error::Conflict { .. })));
    /// let fresh = CredentialUpdate::new(kind, SecretString::from("a2")).expecting(v1);
    /// assert_eq!(vault.write_many(&u, &c, vec![fresh]).await?, vec![v1.next()]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn expecting(mut self, version: Version) -> Self {
        self.expected = Some(version);
        self
    }
}

/// What [`Vault::rewrap`] did.
///
/// ```
/// # use consentry::{ConnectionId, UserId};
/// # use consentry::secrecy::SecretString;
/// # use consentry::store::MemoryStore;
/// # use consentry::vault::{CredentialKind, Keyring, Vault};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
/// for name in ["alice", "bob"] {
///     let (u, c) = (UserId::new(name)?, ConnectionId::new("c")?);
///     vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
/// }
/// vault.set_keyring(vault.keyring().rotated()?);
/// let report = vault.rewrap().await?;
/// assert_eq!((report.rewrapped, report.skipped, report.failed), (2, 0, 0));
/// assert!(report.missing_keys.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
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
    /// Whether the run left nothing behind that it could not move: no data
    /// key is under a key the keyring lacks and none failed to
    /// authenticate. Keys counted in `skipped` were changed concurrently;
    /// run [`Vault::rewrap`] again to pick up any that still need it.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::MemoryStore;
    /// # use consentry::vault::{CredentialKind, KeyId, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::ApiKey, SecretString::from("key")).await?;
    /// // `k1` is dropped before rewrapping: the data key under it cannot move.
    /// let k1 = KeyId::new("k1")?;
    /// vault.set_keyring(vault.keyring().rotated()?.without(&k1)?);
    /// let report = vault.rewrap().await?;
    /// assert_eq!(report.missing_keys.get(&k1), Some(&1));
    /// assert!(!report.is_complete());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn is_complete(&self) -> bool {
        self.missing_keys.is_empty() && self.failed == 0
    }

    /// Data keys looked at so far: re-wrapped, skipped, under a missing
    /// key or failed.
    ///
    /// ```
    /// let report = consentry::vault::RewrapReport::default();
    /// assert_eq!(report.processed(), 0);
    /// ```
    pub fn processed(&self) -> u64 {
        self.rewrapped + self.skipped + self.failed + self.missing_keys.values().sum::<u64>()
    }
}

/// What [`Vault::erase_user`] did.
///
/// ```
/// # use consentry::{ConnectionId, UserId};
/// # use consentry::secrecy::SecretString;
/// # use consentry::store::MemoryStore;
/// # use consentry::vault::{CredentialKind, ErasureReport, Keyring, Vault};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
/// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
/// vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("a")).await?;
/// vault.put(&u, &c, CredentialKind::RefreshToken, SecretString::from("r")).await?;
/// let report = vault.erase_user(&u).await?;
/// assert!(report.data_key_destroyed);
/// assert_eq!(report.credentials_deleted, 2);
/// assert_eq!(vault.erase_user(&u).await?, ErasureReport::default()); // nothing left
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureReport {
    /// Whether the user had a data key, now destroyed.
    pub data_key_destroyed: bool,
    /// How many credential rows were deleted.
    pub credentials_deleted: u64,
}
