//! Envelope format v1: XChaCha20-Poly1305 with a key id in the header, a key
//! commitment, and associated data recomputed from where the ciphertext lives.
//!
//! ```text
//! offset  size   field
//! 0       1      format version (0x01)
//! 1       1      key id length L (1..=64)
//! 2       L      key id (ASCII: letters, digits, _ - .)
//! 2+L     24     nonce (random)
//! 26+L    32     commitment = HMAC-SHA256(k_commit, "consentry/vault/v1/commit" || header || nonce)
//! 58+L    n+16   XChaCha20-Poly1305(k_enc, nonce, plaintext, aad) with its 16-byte tag
//!
//! header  = bytes 0 .. 2+L
//! k_enc    = HKDF-Expand-SHA256(key, "consentry/vault/v1/encryption", 32)
//! k_commit = HKDF-Expand-SHA256(key, "consentry/vault/v1/commitment", 32)
//! aad      = lp("consentry/vault/v1") || lp(label) || lp(tenant) || lp(user)
//!            || lp(connection) || lp(kind)        -- label "credential"
//!            || lp(data key id)                   -- label "data-key"
//!            || lp(header)
//! lp(x)    = u32 big-endian length of x || x;  tenant is "" when the user has none
//! ```
//!
//! The associated data is never stored: it is rebuilt from the row being
//! read, so a ciphertext copied to another user, connection or credential
//! kind fails to authenticate. Poly1305 is not key-committing; the
//! commitment tag closes that gap (a ciphertext cannot be made to open under
//! two keys) and is checked in constant time before decryption.

use std::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::CredentialKind;
use crate::error::{DecryptFailure, Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::secret::{constant_time_eq, fill_random};

const DOMAIN: &[u8] = b"consentry/vault/v1";
const COMMIT_LABEL: &[u8] = b"consentry/vault/v1/commit";
const NONCE_LEN: usize = 24;
const COMMIT_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The largest plaintext the vault seals: 64 KiB. OAuth tokens, even large
/// JWTs, are a few KiB.
///
/// ```
/// # use consentry::{ConnectionId, ErrorKind, UserId};
/// # use consentry::secrecy::SecretString;
/// # use consentry::store::MemoryStore;
/// # use consentry::vault::{CredentialKind, Keyring, Vault, MAX_PLAINTEXT_LEN};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
/// let (u, c, kind) = (UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::IdToken);
/// let largest = SecretString::from("x".repeat(MAX_PLAINTEXT_LEN));
/// vault.put(&u, &c, kind, largest).await?;
/// let too_large = SecretString::from("x".repeat(MAX_PLAINTEXT_LEN + 1));
/// let err = vault.put(&u, &c, kind, too_large).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const MAX_PLAINTEXT_LEN: usize = 64 * 1024;

/// A parsed, not yet authenticated, v1 envelope.
///
/// Parsing checks structure only (version, lengths, key id syntax); nothing
/// is trusted until the vault has checked the commitment and the AEAD tag.
/// Useful to find out which key an envelope needs.
///
/// ```
/// use consentry::vault::Envelope;
/// let err = Envelope::parse(b"not an envelope").unwrap_err();
/// assert_eq!(err.kind(), consentry::ErrorKind::Crypto);
/// ```
#[derive(Clone, Copy)]
pub struct Envelope<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8; NONCE_LEN],
    commitment: &'a [u8; COMMIT_LEN],
    sealed: &'a [u8],
}

impl fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &self.version())
            .field("key_id", &self.key_id)
            .field("plaintext_len", &self.plaintext_len())
            .finish()
    }
}

impl<'a> Envelope<'a> {
    /// The format version this build writes and reads: the envelope's first
    /// byte.
    ///
    /// ```
    /// use consentry::vault::Envelope;
    /// // Version, key id length, key id "k1", then nonce, commitment and tag.
    /// let mut bytes = vec![Envelope::VERSION, 2, b'k', b'1'];
    /// bytes.resize(4 + 24 + 32 + 16, 0);
    /// assert_eq!(Envelope::parse(&bytes)?.version(), 1);
    /// bytes[0] = 2;
    /// assert!(Envelope::parse(&bytes).is_err()); // a version this build does not know
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub const VERSION: u8 = 1;

    /// The largest envelope accepted, in bytes: a 64-byte key id and a
    /// [`MAX_PLAINTEXT_LEN`] plaintext with their framing.
    ///
    /// ```
    /// use consentry::vault::Envelope;
    /// let mut bytes = vec![Envelope::VERSION, 2, b'k', b'1'];
    /// bytes.resize(Envelope::MAX_LEN, 0);
    /// assert!(Envelope::parse(&bytes).is_ok());
    /// bytes.push(0);
    /// assert!(Envelope::parse(&bytes).is_err());
    /// ```
    pub const MAX_LEN: usize = 2 + 64 + NONCE_LEN + COMMIT_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;

    /// Parses the structure of `bytes`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] with [`DecryptFailure::Malformed`] for an unknown
    /// version, a truncated or oversized envelope, or a bad key id.
    ///
    /// ```
    /// # use consentry::{ConnectionId, UserId};
    /// # use consentry::secrecy::SecretString;
    /// # use consentry::store::{CredentialKey, CredentialStore, MemoryStore};
    /// # use consentry::vault::{CredentialKind, Envelope, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let key = CredentialKey::new(UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::AccessToken);
    /// vault.put(&key.user, &key.connection, key.kind, SecretString::from("ya29.token")).await?;
    /// let row = store.get_credential(&key).await?.expect("stored");
    /// let envelope = Envelope::parse(&row.envelope)?;
    /// assert!(envelope.key_id().starts_with("dk_")); // sealed under the user's data key
    /// assert!(Envelope::parse(&row.envelope[..40]).is_err()); // truncated
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let malformed = || Error::Decrypt {
            what: "envelope",
            reason: DecryptFailure::Malformed,
        };
        if bytes.len() > Self::MAX_LEN {
            return Err(malformed());
        }
        let (&version, rest) = bytes.split_first().ok_or_else(malformed)?;
        if version != Self::VERSION {
            return Err(malformed());
        }
        let (&id_len, rest) = rest.split_first().ok_or_else(malformed)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > 64 || rest.len() < id_len + NONCE_LEN + COMMIT_LEN + TAG_LEN {
            return Err(malformed());
        }
        let (id, rest) = rest.split_at(id_len);
        if !id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(malformed());
        }
        let key_id = std::str::from_utf8(id).map_err(|_| malformed())?;
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (commitment, sealed) = rest.split_at(COMMIT_LEN);
        Ok(Self {
            header: &bytes[..2 + id_len],
            key_id,
            nonce: nonce.try_into().map_err(|_| malformed())?,
            commitment: commitment.try_into().map_err(|_| malformed())?,
            sealed,
        })
    }

    /// The format version byte (always [`Envelope::VERSION`] once parsed).
    ///
    /// ```
    /// use consentry::vault::Envelope;
    /// let mut bytes = vec![1, 2, b'k', b'1'];
    /// bytes.resize(4 + 24 + 32 + 16, 0);
    /// assert_eq!(Envelope::parse(&bytes)?.version(), Envelope::VERSION);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn version(&self) -> u8 {
        self.header[0]
    }

    /// The id of the key this envelope is sealed under: a keyring key id for
    /// a wrapped data key, a data key id for a credential.
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::{DataKeyStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, Envelope, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let (u, c) = (UserId::new("u")?, ConnectionId::new("c")?);
    /// vault.put(&u, &c, CredentialKind::AccessToken, SecretString::from("t")).await?;
    /// let wrapped = store.get_data_key(&u).await?.expect("created by put");
    /// assert_eq!(Envelope::parse(&wrapped.wrapped)?.key_id(), "k1"); // the keyring key
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The length of the plaintext inside, in bytes (not secret: the
    /// ciphertext has the same length).
    ///
    /// ```
    /// use consentry::{ConnectionId, UserId};
    /// use consentry::secrecy::SecretString;
    /// use consentry::store::{CredentialKey, CredentialStore, MemoryStore};
    /// use consentry::vault::{CredentialKind, Envelope, Keyring, Vault};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let vault = Vault::new(store.clone(), Keyring::generate()?);
    /// let key = CredentialKey::new(UserId::new("u")?, ConnectionId::new("c")?, CredentialKind::ApiKey);
    /// vault.put(&key.user, &key.connection, key.kind, SecretString::from("sk_live_123")).await?;
    /// let row = store.get_credential(&key).await?.expect("stored");
    /// assert_eq!(Envelope::parse(&row.envelope)?.plaintext_len(), "sk_live_123".len());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn plaintext_len(&self) -> usize {
        self.sealed.len() - TAG_LEN
    }
}

/// Where a ciphertext lives; everything here goes into the associated data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location<'a> {
    /// A credential row.
    Credential {
        user: &'a UserId,
        connection: &'a ConnectionId,
        kind: CredentialKind,
    },
    /// A user's wrapped data key.
    DataKey {
        owner: &'a UserId,
        data_key_id: &'a str,
    },
}

fn push_lp(out: &mut Vec<u8>, field: &[u8]) {
    // Every field is bounded far below 4 GiB (ids <= 255 bytes, header <= 66).
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

impl Location<'_> {
    /// The associated data for this location and envelope header.
    pub(crate) fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        push_lp(&mut out, DOMAIN);
        match self {
            Self::Credential {
                user,
                connection,
                kind,
            } => {
                push_lp(&mut out, b"credential");
                push_lp(&mut out, user.tenant().unwrap_or("").as_bytes());
                push_lp(&mut out, user.user().as_bytes());
                push_lp(&mut out, connection.as_str().as_bytes());
                push_lp(&mut out, kind.as_str().as_bytes());
            }
            Self::DataKey { owner, data_key_id } => {
                push_lp(&mut out, b"data-key");
                push_lp(&mut out, owner.tenant().unwrap_or("").as_bytes());
                push_lp(&mut out, owner.user().as_bytes());
                push_lp(&mut out, data_key_id.as_bytes());
            }
        }
        push_lp(&mut out, header);
        out
    }

    fn what(&self) -> &'static str {
        match self {
            Self::Credential { .. } => "credential",
            Self::DataKey { .. } => "data key",
        }
    }
}

/// A 256-bit key with its derived encryption and commitment subkeys. Zeroed
/// on drop.
pub(crate) struct SealKey {
    material: Zeroizing<[u8; 32]>,
    cipher: XChaCha20Poly1305,
    commit_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey([REDACTED])")
    }
}

impl SealKey {
    pub(crate) fn new(material: &Zeroizing<[u8; 32]>) -> Self {
        // The key is uniformly random, so it serves as the HKDF PRK directly
        // (RFC 5869 §3.3); a 32-byte PRK always has a valid length.
        let hk = Hkdf::<Sha256>::from_prk(material.as_ref())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 PRK length"));
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut commit_key = Zeroizing::new([0u8; 32]);
        // Expanding 32 bytes never exceeds HKDF's 255*32 limit.
        let _ = hk.expand(b"consentry/vault/v1/encryption", enc.as_mut());
        let _ = hk.expand(b"consentry/vault/v1/commitment", commit_key.as_mut());
        let cipher = XChaCha20Poly1305::new_from_slice(enc.as_ref())
            .unwrap_or_else(|_| unreachable!("32 bytes is the XChaCha20-Poly1305 key length"));
        Self {
            material: Zeroizing::new(**material),
            cipher,
            commit_key,
        }
    }

    pub(crate) fn material(&self) -> &[u8; 32] {
        &self.material
    }

    /// A 32-byte subkey for another purpose, named by `label`
    /// (HKDF-Expand-SHA256 with the key as PRK). Labels must not start with
    /// `consentry/vault/`, which the envelope format uses.
    pub(crate) fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        debug_assert!(!label.starts_with(b"consentry/vault/"));
        let hk = Hkdf::<Sha256>::from_prk(self.material.as_ref())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 PRK length"));
        let mut out = Zeroizing::new([0u8; 32]);
        let _ = hk.expand(label, out.as_mut());
        out
    }

    fn commitment(&self, header: &[u8], nonce: &[u8]) -> [u8; COMMIT_LEN] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.commit_key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(COMMIT_LABEL);
        mac.update(header);
        mac.update(nonce);
        mac.finalize().into_bytes().into()
    }

    /// Seals `plaintext` for `location` under this key, named `key_id`, with
    /// a fresh random nonce.
    pub(crate) fn seal(
        &self,
        key_id: &str,
        location: &Location<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        self.seal_with_nonce(key_id, location, plaintext, &nonce)
    }

    /// Seals with a caller-chosen nonce. Only for known-answer vectors: a
    /// nonce must never repeat under one key.
    pub(crate) fn seal_with_nonce(
        &self,
        key_id: &str,
        location: &Location<'_>,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::invalid(
                "secret",
                format!(
                    "is {} bytes; the vault seals at most {MAX_PLAINTEXT_LEN}",
                    plaintext.len()
                ),
            ));
        }
        let id_len = u8::try_from(key_id.len())
            .ok()
            .filter(|l| (1..=64).contains(l))
            .ok_or(Error::Internal("key id length out of range"))?;
        // Sized exactly, so the buffer never reallocates and leaves no copy
        // of the plaintext behind: the plaintext region is encrypted in place.
        let total = 2 + key_id.len() + NONCE_LEN + COMMIT_LEN + plaintext.len() + TAG_LEN;
        let mut out = Vec::with_capacity(total);
        out.push(Envelope::VERSION);
        out.push(id_len);
        out.extend_from_slice(key_id.as_bytes());
        let header_len = out.len();
        out.extend_from_slice(nonce);
        let commitment = self.commitment(&out[..header_len], nonce);
        out.extend_from_slice(&commitment);
        let body_start = out.len();
        out.extend_from_slice(plaintext);
        let aad = location.aad(&out[..header_len]);
        let tag = self
            .cipher
            .encrypt_inout_detached(&XNonce::from(*nonce), &aad, (&mut out[body_start..]).into())
            .map_err(|_| Error::Internal("XChaCha20-Poly1305 refused a bounded plaintext"))?;
        out.extend_from_slice(&tag);
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// Checks the commitment and the tag, and returns the plaintext in a
    /// buffer of exactly its length (zeroed on drop).
    pub(crate) fn open(
        &self,
        envelope: &Envelope<'_>,
        location: &Location<'_>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let fail = |reason| Error::Decrypt {
            what: location.what(),
            reason,
        };
        let expected = self.commitment(envelope.header, envelope.nonce);
        if !constant_time_eq(&expected, envelope.commitment) {
            return Err(fail(DecryptFailure::Commitment));
        }
        let (ciphertext, tag) = envelope.sealed.split_at(envelope.plaintext_len());
        let tag = Tag::try_from(tag).map_err(|_| fail(DecryptFailure::Malformed))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
        plain.extend_from_slice(ciphertext);
        let aad = location.aad(envelope.header);
        self.cipher
            .decrypt_inout_detached(
                &XNonce::from(*envelope.nonce),
                &aad,
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| fail(DecryptFailure::Authentication))?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::new(&Zeroizing::new([byte; 32]))
    }

    #[test]
    fn truncations_never_parse_as_valid_and_never_panic() {
        let user = UserId::new("u").unwrap();
        let conn = ConnectionId::new("c").unwrap();
        let loc = Location::Credential {
            user: &user,
            connection: &conn,
            kind: CredentialKind::AccessToken,
        };
        let env = key(1).seal("dk1", &loc, b"secret").unwrap();
        for n in 0..env.len() {
            let cut = &env[..n];
            if let Ok(parsed) = Envelope::parse(cut) {
                assert!(
                    key(1).open(&parsed, &loc).is_err(),
                    "truncated to {n} opened"
                );
            }
        }
        assert_eq!(
            &*key(1).open(&Envelope::parse(&env).unwrap(), &loc).unwrap(),
            b"secret"
        );
    }

    #[test]
    fn wrong_key_fails_on_commitment_before_decryption() {
        let user = UserId::new("u").unwrap();
        let loc = Location::DataKey {
            owner: &user,
            data_key_id: "dk",
        };
        let env = key(1)
            .seal("k1", &loc, b"0123456789abcdef0123456789abcdef")
            .unwrap();
        let err = key(2)
            .open(&Envelope::parse(&env).unwrap(), &loc)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decrypt {
                    reason: DecryptFailure::Commitment,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let user = UserId::new("u").unwrap();
        let loc = Location::DataKey {
            owner: &user,
            data_key_id: "dk",
        };
        assert!(
            key(1)
                .seal("k1", &loc, &vec![0; MAX_PLAINTEXT_LEN + 1])
                .is_err()
        );
        assert!(key(1).seal("k1", &loc, &vec![0; MAX_PLAINTEXT_LEN]).is_ok());
    }

    #[test]
    fn length_prefixes_separate_fields() {
        // "ab" + "c" and "a" + "bc" must not produce the same associated data.
        let a = UserId::in_tenant("ab", "c").unwrap();
        let b = UserId::in_tenant("a", "bc").unwrap();
        let la = Location::DataKey {
            owner: &a,
            data_key_id: "d",
        };
        let lb = Location::DataKey {
            owner: &b,
            data_key_id: "d",
        };
        assert_ne!(la.aad(b"h"), lb.aad(b"h"));
    }
}
