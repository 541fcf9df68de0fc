//! Key-encryption keys: [`Keyring`], [`KeyId`], and where keys come from
//! ([`KeyProvider`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::envelope::SealKey;
use crate::error::{Error, Result};
use crate::secret::{b64url_decode, b64url_encode, fill_random};

/// Names a key in a [`Keyring`]. Written into every envelope sealed under
/// the key, so decryption picks the key by id and never tries several.
///
/// 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
///
/// ```
/// use consentry::vault::KeyId;
/// let id: KeyId = "k2".parse()?;
/// assert_eq!(id.as_str(), "k2");
/// assert!(KeyId::new("k:2").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The longest accepted id, in bytes.
    ///
    /// ```
    /// use consentry::vault::KeyId;
    /// let longest = "k".repeat(KeyId::MAX_LEN);
    /// assert!(KeyId::new(longest.as_str()).is_ok());
    /// assert!(KeyId::new(longest + "k").is_err());
    /// ```
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a key id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `id` is empty, longer than
    /// [`KeyId::MAX_LEN`] bytes, or has a character other than ASCII
    /// letters, digits, `_`, `-`, `.`.
    ///
    /// ```
    /// use consentry::{ErrorKind, vault::KeyId};
    /// let id = KeyId::new("2025-06.primary")?;
    /// assert_eq!(id.to_string(), "2025-06.primary");
    /// assert_eq!(KeyId::new("k 1").unwrap_err().kind(), ErrorKind::InvalidInput);
    /// assert!(KeyId::new("k:1").is_err()); // `:` separates id and key in the text form
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "key id",
                format!("must be 1 to {} bytes long", Self::MAX_LEN),
            ));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(Error::invalid(
                "key id",
                format!("contains {c:?}; only ASCII letters, digits and `_ - .` are allowed"),
            ));
        }
        Ok(Self(id))
    }

    /// The id as a string slice.
    ///
    /// ```
    /// use consentry::vault::KeyId;
    /// let id: KeyId = "k7".parse()?;
    /// assert_eq!(id.as_str(), "k7");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The key-encryption keys of a vault: several keys, the first one primary.
///
/// The primary key wraps new per-user data keys; the others only unwrap data
/// keys wrapped before a rotation, until [`Vault::rewrap`] has moved them
/// all to the primary and [`Vault::retire`] removes them.
///
/// A keyring's text form is what a host keeps in an environment variable or
/// a secrets manager: comma-separated `id:key` entries, primary first, each
/// key 32 bytes in URL-safe base64 without padding (43 characters):
/// `k2:<key>,k1:<key>`. `Debug` shows ids only, never key bytes.
///
/// ```
/// use consentry::vault::Keyring;
///
/// let ring = Keyring::generate()?;
/// assert_eq!(ring.primary().as_str(), "k1");
/// let rotated = ring.rotated()?;            // new primary `k2`, `k1` kept
/// assert_eq!(rotated.primary().as_str(), "k2");
/// assert_eq!(format!("{rotated:?}"), r#"Keyring { primary: "k2", keys: ["k2", "k1"] }"#);
///
/// // The text form round-trips (and is a secret).
/// use consentry::secrecy::ExposeSecret;
/// let text = rotated.export();
/// let parsed = Keyring::parse(text.expose_secret())?;
/// assert_eq!(parsed.ids().collect::<Vec<_>>(), rotated.ids().collect::<Vec<_>>());
/// # Ok::<(), consentry::Error>(())
/// ```
///
/// [`Vault::rewrap`]: crate::vault::Vault::rewrap
/// [`Vault::retire`]: crate::vault::Vault::retire
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(KeyId, Arc<SealKey>)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary().as_str())
            .field("keys", &self.ids().map(KeyId::as_str).collect::<Vec<_>>())
            .finish()
    }
}

/// The largest number of keys a keyring holds.
const MAX_KEYS: usize = 64;

impl Keyring {
    /// A keyring with one fresh random key, `k1`.
    ///
    /// # Errors
    /// [`Error::Random`] if the system random number generator fails.
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// let ring = Keyring::generate()?;
    /// assert_eq!(ring.ids().map(|id| id.as_str()).collect::<Vec<_>>(), ["k1"]);
    /// // Each call draws a fresh key.
    /// use consentry::secrecy::ExposeSecret;
    /// assert_ne!(ring.export().expose_secret(), Keyring::generate()?.export().expose_secret());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        Ok(Self {
            keys: vec![(KeyId("k1".to_owned()), Arc::new(random_key()?))],
        })
    }

    /// Parses the text form `id:key[,id:key...]`, primary first.
    ///
    /// Whitespace around entries is ignored. Keys are 32 bytes of URL-safe
    /// base64 (padding optional).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty string or entry, a missing `:`,
    /// an invalid id, a key that is not base64 or not 32 bytes, a duplicate
    /// id, or more than 64 keys. Messages name entries by position, never
    /// by id or key bytes (an entry written the wrong way round would
    /// otherwise echo its key as an "id").
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; // 32 zero bytes, for the example only
    /// let ring = Keyring::parse(&format!("k2:{key}, k1:{key}"))?;
    /// assert_eq!(ring.primary().as_str(), "k2");
    /// assert!(Keyring::parse("k1:short").is_err());
    /// assert!(Keyring::parse(&format!("k1:{key},k1:{key}")).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        const WHAT: &str = "keyring";
        if text.trim().is_empty() {
            return Err(Error::invalid(
                WHAT,
                "is empty; expected `id:key[,id:key...]`",
            ));
        }
        let mut keys: Vec<(KeyId, Arc<SealKey>)> = Vec::new();
        for (index, entry) in text.split(',').enumerate() {
            let n = index + 1;
            if n > MAX_KEYS {
                return Err(Error::invalid(
                    WHAT,
                    format!("has more than {MAX_KEYS} keys"),
                ));
            }
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(Error::invalid(WHAT, format!("entry {n} is empty")));
            }
            let Some((id, encoded)) = entry.split_once(':') else {
                return Err(Error::invalid(
                    WHAT,
                    format!("entry {n} has no ':' between key id and key"),
                ));
            };
            let id = KeyId::new(id.trim()).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => {
                    Error::invalid(WHAT, format!("entry {n}: key id {reason}"))
                }
                other => other,
            })?;
            if let Some(first) = keys.iter().position(|(existing, _)| *existing == id) {
                return Err(Error::invalid(
                    WHAT,
                    format!("entries {} and {n} have the same key id", first + 1),
                ));
            }
            let encoded = encoded.trim().trim_end_matches('=');
            let bytes = Zeroizing::new(b64url_decode(encoded).map_err(|_| {
                Error::invalid(
                    WHAT,
                    format!("entry {n}: the key is not URL-safe base64 (alphabet A-Z a-z 0-9 - _)"),
                )
            })?);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                Error::invalid(
                    WHAT,
                    format!(
                        "entry {n}: the key is {} bytes; keys are 32 bytes",
                        bytes.len()
                    ),
                )
            })?;
            let key = Zeroizing::new(key);
            keys.push((id, Arc::new(SealKey::new(&key))));
        }
        Ok(Self { keys })
    }

    /// Parses the keyring in environment variable `var` (conventionally
    /// `CONSENTRY_KEYS`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the variable is unset, not Unicode, or does
    /// not parse (see [`Keyring::parse`]).
    ///
    /// Error messages name the variable, never its contents, whether it is
    /// unset, not Unicode or malformed.
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// assert!(Keyring::from_env("CONSENTRY_DOC_EXAMPLE_UNSET").is_err());
    /// ```
    pub fn from_env(var: &str) -> Result<Self> {
        Self::from_var_value(var, std::env::var(var))
    }

    fn from_var_value(
        var: &str,
        value: std::result::Result<String, std::env::VarError>,
    ) -> Result<Self> {
        // Never format the VarError: for non-Unicode values it quotes them.
        let text = SecretString::from(value.map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid Unicode",
            };
            Error::invalid("keyring", format!("environment variable {var} {why}"))
        })?);
        Self::parse(text.expose_secret())
    }

    /// Adds `key` under `id` as the new primary; the other keys stay for
    /// unwrapping.
    ///
    /// Use it to bring in a key generated elsewhere (a KMS, a secrets
    /// manager); [`Keyring::rotated`] generates one for you.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `id` is already in the keyring or the
    /// keyring is full (64 keys).
    ///
    /// ```
    /// use consentry::vault::{KeyId, Keyring};
    /// use zeroize::Zeroizing;
    /// let ring = Keyring::generate()?;
    /// let key = Zeroizing::new([7u8; 32]); // in production: 32 random bytes
    /// let ring = ring.with_primary(KeyId::new("kms-2025")?, &key)?;
    /// assert_eq!(ring.primary().as_str(), "kms-2025");
    /// assert!(ring.contains(&KeyId::new("k1")?));
    /// assert!(ring.with_primary(KeyId::new("k1")?, &key).is_err()); // already present
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_primary(&self, id: KeyId, key: &Zeroizing<[u8; 32]>) -> Result<Self> {
        if self.contains(&id) {
            return Err(Error::invalid(
                "keyring",
                format!("key id `{id}` is already present"),
            ));
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(Error::invalid(
                "keyring",
                format!("holds {MAX_KEYS} keys already"),
            ));
        }
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        keys.push((id, Arc::new(SealKey::new(key))));
        keys.extend(self.keys.iter().cloned());
        Ok(Self { keys })
    }

    /// A copy with a fresh random key as primary, named `k<N+1>` where `N` is
    /// the largest number among ids of the form `k<N>` (or 0).
    ///
    /// # Errors
    /// [`Error::Random`] if the random number generator fails;
    /// [`Error::InvalidInput`] if the keyring is full (or the computed id is
    /// already taken, which only happens when `N` is `u64::MAX`).
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; // for the example only
    /// let ring = Keyring::parse(&format!("k7:{key},legacy:{key}"))?;
    /// let rotated = ring.rotated()?;
    /// assert_eq!(rotated.ids().map(|id| id.as_str()).collect::<Vec<_>>(), ["k8", "k7", "legacy"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn rotated(&self) -> Result<Self> {
        let next = self
            .ids()
            .filter_map(|id| id.as_str().strip_prefix('k')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut())?;
        self.with_primary(KeyId(format!("k{next}")), &key)
    }

    /// A copy without key `id`.
    ///
    /// Prefer [`Vault::retire`](crate::vault::Vault::retire), which refuses
    /// while data keys are still wrapped under `id`.
    ///
    /// # Errors
    /// [`Error::PrimaryKey`] if `id` is the primary key;
    /// [`Error::KeyNotFound`] if it is not in the keyring.
    ///
    /// ```
    /// use consentry::{Error, vault::{KeyId, Keyring}};
    /// let ring = Keyring::generate()?.rotated()?; // k2 (primary), k1
    /// let (k1, k2) = (KeyId::new("k1")?, KeyId::new("k2")?);
    /// let smaller = ring.without(&k1)?;
    /// assert_eq!(smaller.ids().collect::<Vec<_>>(), [&k2]);
    /// assert!(matches!(ring.without(&k2), Err(Error::PrimaryKey { .. })));
    /// assert!(matches!(smaller.without(&k1), Err(Error::KeyNotFound { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn without(&self, id: &KeyId) -> Result<Self> {
        if self.primary() == id {
            return Err(Error::PrimaryKey { key_id: id.clone() });
        }
        if !self.contains(id) {
            return Err(Error::KeyNotFound { key_id: id.clone() });
        }
        Ok(Self {
            keys: self.keys.iter().filter(|(k, _)| k != id).cloned().collect(),
        })
    }

    /// The primary key's id: the key that wraps new data keys.
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// let ring = Keyring::generate()?;
    /// assert_eq!(ring.primary().as_str(), "k1");
    /// assert_eq!(ring.rotated()?.primary().as_str(), "k2");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn primary(&self) -> &KeyId {
        &self.keys[0].0
    }

    /// All key ids, primary first.
    ///
    /// ```
    /// use consentry::vault::Keyring;
    /// let ring = Keyring::generate()?.rotated()?.rotated()?;
    /// let ids: Vec<&str> = ring.ids().map(|id| id.as_str()).collect();
    /// assert_eq!(ids, ["k3", "k2", "k1"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(id, _)| id)
    }

    /// Whether the keyring holds key `id`.
    ///
    /// ```
    /// use consentry::vault::{KeyId, Keyring};
    /// let ring = Keyring::generate()?;
    /// assert!(ring.contains(&KeyId::new("k1")?));
    /// assert!(!ring.contains(&KeyId::new("k2")?));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// The text form (`id:key,...`, primary first), for storing the keyring
    /// where the host keeps secrets. [`Keyring::parse`] reads it back.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::vault::Keyring;
    /// let ring = Keyring::generate()?.rotated()?;
    /// let text = ring.export(); // a SecretString: `Debug` redacts it
    /// assert!(text.expose_secret().starts_with("k2:"));
    /// let back = Keyring::parse(text.expose_secret())?;
    /// assert_eq!(back.export().expose_secret(), text.expose_secret());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn export(&self) -> SecretString {
        let text = self
            .keys
            .iter()
            .map(|(id, key)| format!("{id}:{}", b64url_encode(key.material())))
            .collect::<Vec<_>>()
            .join(",");
        SecretString::from(text)
    }

    pub(crate) fn primary_key(&self) -> (&KeyId, &Arc<SealKey>) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    /// A subkey of key `id` for `label`, or `None` if the keyring lacks it.
    pub(crate) fn derive(&self, id: &str, label: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        self.key(id).map(|k| k.derive(label))
    }

    pub(crate) fn key(&self, id: &str) -> Option<&Arc<SealKey>> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, key)| key)
    }
}

fn random_key() -> Result<SealKey> {
    let mut key = Zeroizing::new([0u8; 32]);
    fill_random(key.as_mut())?;
    Ok(SealKey::new(&key))
}

/// Where a [`Keyring`] comes from: an environment variable, a file, a
/// secrets manager. Implement it to plug in your own source.
///
/// ```
/// use consentry::vault::{EnvKeyProvider, KeyProvider};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let provider = EnvKeyProvider::new("CONSENTRY_DOC_EXAMPLE_UNSET");
/// assert!(provider.load().await.is_err());
/// # });
/// ```
#[async_trait::async_trait]
pub trait KeyProvider: fmt::Debug + Send + Sync {
    /// Loads the current keyring.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the source is unusable or its text does
    /// not parse; a custom provider may return other errors (such as
    /// [`Error::Storage`] for an unreachable secrets manager).
    ///
    /// ```
    /// # use consentry::secrecy::ExposeSecret;
    /// # use consentry::vault::{KeyProvider, Keyring};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // A provider with a fixed keyring (a real one would ask a secrets manager).
    /// #[derive(Debug)] struct Fixed(String);
    /// #[async_trait::async_trait]
    /// impl KeyProvider for Fixed {
    ///     async fn load(&self) -> consentry::Result<Keyring> { Keyring::parse(&self.0) }
    /// }
    /// let text = Keyring::generate()?.export();
    /// let ring = Fixed(text.expose_secret().to_owned()).load().await?;
    /// assert_eq!(ring.primary().as_str(), "k1");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn load(&self) -> Result<Keyring>;
}

/// Reads the keyring from an environment variable.
///
/// ```
/// use consentry::vault::EnvKeyProvider;
/// let p = EnvKeyProvider::new("CONSENTRY_KEYS");
/// assert_eq!(format!("{p:?}"), r#"EnvKeyProvider { var: "CONSENTRY_KEYS" }"#);
/// ```
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    var: String,
}

impl EnvKeyProvider {
    /// Reads from variable `var` on every [`KeyProvider::load`].
    ///
    /// ```
    /// use consentry::vault::{EnvKeyProvider, KeyProvider};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let provider = EnvKeyProvider::new("CONSENTRY_DOC_EXAMPLE_UNSET");
    /// let err = provider.load().await.unwrap_err();
    /// assert!(err.to_string().contains("CONSENTRY_DOC_EXAMPLE_UNSET"));
    /// # });
    /// ```
    pub fn new(var: impl Into<String>) -> Self {
        Self { var: var.into() }
    }
}

#[async_trait::async_trait]
impl KeyProvider for EnvKeyProvider {
    async fn load(&self) -> Result<Keyring> {
        Keyring::from_env(&self.var)
    }
}

/// Reads the keyring's text form from a file.
///
/// On Unix the file must not be readable or writable by group or others
/// (mode `0600` or stricter); a looser file is refused.
///
/// ```
/// use consentry::vault::{FileKeyProvider, KeyProvider, Keyring};
/// use consentry::secrecy::ExposeSecret;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("keys");
/// std::fs::write(&path, Keyring::generate().unwrap().export().expose_secret()).unwrap();
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
/// # }
/// let ring = FileKeyProvider::new(&path).load().await.unwrap();
/// assert_eq!(ring.primary().as_str(), "k1");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    path: PathBuf,
}

impl FileKeyProvider {
    /// Reads from the file at `path` on every [`KeyProvider::load`].
    ///
    /// ```
    /// use consentry::vault::{FileKeyProvider, KeyProvider};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let provider = FileKeyProvider::new(dir.path().join("missing"));
    /// let err = provider.load().await.unwrap_err();
    /// assert!(err.to_string().contains("cannot read key file"));
    /// # });
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn read(&self) -> Result<Keyring> {
        let io_err = |e: std::io::Error| {
            Error::invalid(
                "keyring",
                format!("cannot read key file {}: {e}", self.path.display()),
            )
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map_err(io_err)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::invalid(
                    "keyring",
                    format!(
                        "key file {} has mode {:o}; allow access by its owner only (chmod 600)",
                        self.path.display(),
                        mode & 0o777
                    ),
                ));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(io_err)?);
        Keyring::parse(&text)
    }
}

#[async_trait::async_trait]
impl KeyProvider for FileKeyProvider {
    async fn load(&self) -> Result<Keyring> {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn malformed_keyrings_are_typed_errors_without_key_bytes() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("k1", "no ':'"),
            (&format!("k1:{K},"), "entry 2 is empty"),
            (&format!(":{K}"), "key id"),
            (&format!("k 1:{K}"), "key id"),
            ("k1:AAAA", "is 3 bytes"),
            ("k1:!!!!", "not URL-safe base64"),
            (&format!("k1:{K}AAAA"), "is 35 bytes; keys are 32"),
            (
                &format!("k1:{K},k1:{K}"),
                "entries 1 and 2 have the same key id",
            ),
            // Written the wrong way round: the key must not be echoed as an id.
            (&format!("{K}:k1"), "entry 1: the key is"),
        ];
        for (input, want) in cases {
            let err = Keyring::parse(input).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        what: "keyring",
                        ..
                    }
                ),
                "{input}: {msg}"
            );
            assert!(
                msg.contains(want),
                "{input:?} gave {msg:?}, wanted {want:?}"
            );
            assert!(!msg.contains(K), "message leaks key bytes: {msg}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_non_unicode_variable_is_not_quoted() {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"k1:SECRETKEYBYTES\xff").to_owned();
        let err =
            Keyring::from_var_value("KEYS", Err(std::env::VarError::NotUnicode(raw))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("KEYS is not valid Unicode"), "{msg}");
        assert!(!msg.contains("SECRETKEYBYTES"), "{msg}");
        let unset =
            Keyring::from_var_value("KEYS", Err(std::env::VarError::NotPresent)).unwrap_err();
        assert!(unset.to_string().contains("KEYS is not set"));
    }

    #[test]
    fn too_many_keys_are_refused() {
        let text = (0..65)
            .map(|i| format!("k{i}:{K}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(Keyring::parse(&text).is_err());
    }

    #[test]
    fn padding_and_whitespace_are_accepted() {
        let ring = Keyring::parse(&format!(" k2:{K}= ,\n k1:{K} ")).unwrap();
        assert_eq!(
            ring.ids().map(KeyId::as_str).collect::<Vec<_>>(),
            ["k2", "k1"]
        );
    }

    #[test]
    fn export_parse_round_trips_key_material() {
        let ring = Keyring::generate().unwrap().rotated().unwrap();
        let back = Keyring::parse(ring.export().expose_secret()).unwrap();
        for id in ring.ids() {
            assert_eq!(
                ring.key(id.as_str()).unwrap().material(),
                back.key(id.as_str()).unwrap().material()
            );
        }
    }

    #[test]
    fn without_refuses_primary_and_unknown() {
        let ring = Keyring::generate().unwrap().rotated().unwrap();
        assert!(matches!(
            ring.without(&KeyId::new("k2").unwrap()),
            Err(Error::PrimaryKey { .. })
        ));
        assert!(matches!(
            ring.without(&KeyId::new("k9").unwrap()),
            Err(Error::KeyNotFound { .. })
        ));
        let smaller = ring.without(&KeyId::new("k1").unwrap()).unwrap();
        assert_eq!(smaller.ids().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("k1:{K}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = FileKeyProvider::new(&path).read().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(FileKeyProvider::new(&path).read().is_ok());
    }
}
