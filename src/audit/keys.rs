//! Where the audit log's MAC keys come from: its own keyring, or a vault's
//! (so a key rotation through the vault reaches the log too).

use std::fmt;
use std::sync::Arc;

use crate::vault::{Keyring, Vault};

#[derive(Clone)]
pub(crate) enum KeySource {
    Fixed(Arc<Keyring>),
    Vault(Vault),
}

impl KeySource {
    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match self {
            Self::Fixed(k) => Arc::clone(k),
            Self::Vault(v) => v.keyring(),
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(k) => f.debug_tuple("Fixed").field(k).finish(),
            Self::Vault(_) => f.write_str("Vault"),
        }
    }
}
