//! Where the audit log's MAC key comes from.
//!
//! - A log over a [`Vault`] keeps one random MAC key as a credential in the
//!   vault itself (under a reserved user, `.consentry/audit-log`): it is
//!   sealed by that user's data key, which `rewrap` moves to the new primary
//!   key like every other, so keyring rotation and retiring old keys never
//!   make old entries unverifiable.
//! - A log over a bare [`Keyring`] derives subkeys of the keyring's keys,
//!   by key id; keep a key in the keyring while entries MAC'ed under it
//!   remain.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ids::{ConnectionId, UserId};
use crate::secrecy::{ExposeSecret, SecretString};
use crate::vault::{CredentialKind, KeyId, Keyring, Vault, Version};

/// The label of the keyring subkey that keys the chain.
const LABEL: &[u8] = b"consentry/audit-chain/v1";
/// The key id recorded in entries MAC'ed with the vault-held key.
pub(crate) const VAULT_KEY_ID: &str = "vault-audit-1";

/// A MAC key shared by the batches and verifications of one log.
type SharedKey = Arc<Zeroizing<Vec<u8>>>;

#[derive(Clone)]
pub(crate) enum KeySource {
    Fixed(Arc<Keyring>),
    Vault {
        vault: Vault,
        cached: Arc<Mutex<Option<SharedKey>>>,
    },
}

/// Keys resolved for one batch or one verification.
pub(crate) enum Resolved {
    Keyring(Arc<Keyring>),
    Single(SharedKey),
}

impl Resolved {
    /// The key id new entries are MAC'ed under.
    pub(crate) fn primary(&self) -> &str {
        match self {
            Self::Keyring(k) => k.primary().as_str(),
            Self::Single(_) => VAULT_KEY_ID,
        }
    }

    /// The MAC key for `key_id`.
    pub(crate) fn key(&self, key_id: &str) -> Result<Zeroizing<Vec<u8>>> {
        let missing = || match KeyId::new(key_id) {
            Ok(key_id) => Error::KeyNotFound { key_id },
            Err(e) => Error::storage("a stored audit key id is invalid", e),
        };
        match self {
            Self::Keyring(k) => k
                .derive(key_id, LABEL)
                .map(|key| Zeroizing::new(key.to_vec()))
                .ok_or_else(missing),
            Self::Single(key) if key_id == VAULT_KEY_ID => Ok(Zeroizing::new(key.to_vec())),
            Self::Single(_) => Err(missing()),
        }
    }
}

impl KeySource {
    pub(crate) fn vault(vault: Vault) -> Self {
        Self::Vault {
            vault,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    pub(crate) async fn resolve(&self) -> Result<Resolved> {
        match self {
            Self::Fixed(k) => Ok(Resolved::Keyring(Arc::clone(k))),
            Self::Vault { vault, cached } => {
                if let Some(key) = cached
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                {
                    return Ok(Resolved::Single(key));
                }
                let key = Arc::new(vault_key(vault).await?);
                *cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&key));
                Ok(Resolved::Single(key))
            }
        }
    }
}

/// Reads the vault-held MAC key, creating it on first use (the first
/// writer wins when several processes race).
async fn vault_key(vault: &Vault) -> Result<Zeroizing<Vec<u8>>> {
    let user = UserId::in_tenant(".consentry", "audit-log")?;
    let slot = ConnectionId::new("audit-chain")?;
    let kind = CredentialKind::ApiKey;
    for _ in 0..3 {
        match vault.get(&user, &slot, kind).await {
            Ok(v) => return Ok(Zeroizing::new(v.value.expose_secret().as_bytes().to_vec())),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let fresh = SecretString::from(crate::secret::random_token(32)?);
        match vault
            .compare_and_put(&user, &slot, kind, Version::NONE, fresh)
            .await
        {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Internal(
        "the audit key could not be read after it was written",
    ))
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(k) => f.debug_tuple("Fixed").field(k).finish(),
            Self::Vault { .. } => f.write_str("Vault"),
        }
    }
}
