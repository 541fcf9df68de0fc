//! The chain: each entry's MAC covers every field of the entry and the
//! previous entry's MAC; the head and the checkpoint carry MACs of their
//! own. MAC keys are subkeys of the keyring's keys, so whoever can edit the
//! database but does not hold the keyring cannot forge a consistent chain.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::keys::Resolved;
use crate::error::{Error, Result};
use crate::secret::constant_time_eq;
use crate::store::{AuditCheckpoint, AuditHead, StoredAuditEntry};

/// The `prev_hash` of the very first entry.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Why [`AuditLog::verify`](super::AuditLog::verify) rejected the chain.
///
/// ```
/// use consentry::audit::ChainFault;
/// assert_eq!(ChainFault::Missing.to_string(), "the entry is missing (deleted, or the entries were reordered)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainFault {
    /// The entry's MAC does not match its fields: a column was edited.
    Altered,
    /// The entry does not point at the entry before it.
    BrokenLink,
    /// The entry with this `seq` is not there.
    Missing,
    /// The head record is missing, forged, or disagrees with the entries.
    Head,
    /// The checkpoint of the purged prefix is forged.
    Checkpoint,
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Altered => "the entry was altered",
            Self::BrokenLink => "the entry does not follow the one before it",
            Self::Missing => "the entry is missing (deleted, or the entries were reordered)",
            Self::Head => "the chain's head is missing, forged or disagrees with the entries",
            Self::Checkpoint => "the checkpoint of the purged entries is forged",
        })
    }
}

/// Pre-keyed MACs per key id, made on first use.
pub(crate) struct Keys<'a> {
    resolved: &'a Resolved,
    macs: HashMap<String, Hmac<Sha256>>,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(resolved: &'a Resolved) -> Self {
        Self {
            resolved,
            macs: HashMap::new(),
        }
    }

    pub(crate) fn primary(&self) -> &'a str {
        self.resolved.primary()
    }

    fn mac(&mut self, key_id: &str) -> Result<Hmac<Sha256>> {
        if let Some(m) = self.macs.get(key_id) {
            return Ok(m.clone());
        }
        let key = self.resolved.key(key_id)?;
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref())
            .map_err(|_| Error::Internal("an HMAC key was refused"))?;
        self.macs.insert(key_id.to_owned(), mac.clone());
        Ok(mac)
    }

    /// The MAC of an entry (all fields but `hash`).
    pub(crate) fn entry(&mut self, e: &StoredAuditEntry) -> Result<[u8; 32]> {
        let mut m = self.mac(&e.key_id)?;
        m.update(b"entry");
        m.update(&e.seq.to_be_bytes());
        m.update(&e.at_ms.to_be_bytes());
        for field in [&e.action, &e.actor, &e.outcome, &e.details, &e.key_id] {
            put(&mut m, Some(field));
        }
        for field in [&e.subject, &e.resource, &e.ip, &e.user_agent, &e.request_id] {
            put(&mut m, field.as_ref());
        }
        put_bytes(&mut m, &e.prev_hash);
        Ok(m.finalize().into_bytes().into())
    }

    /// The MAC of a head.
    pub(crate) fn head(&mut self, key_id: &str, seq: u64, hash: &[u8]) -> Result<[u8; 32]> {
        let mut m = self.mac(key_id)?;
        m.update(b"head");
        m.update(&seq.to_be_bytes());
        put_bytes(&mut m, hash);
        put(&mut m, Some(key_id));
        Ok(m.finalize().into_bytes().into())
    }

    /// The MAC of a checkpoint (all fields but `mac`).
    pub(crate) fn checkpoint(&mut self, c: &AuditCheckpoint) -> Result<[u8; 32]> {
        let mut m = self.mac(&c.key_id)?;
        m.update(b"checkpoint");
        m.update(&c.seq.to_be_bytes());
        put_bytes(&mut m, &c.hash);
        m.update(&c.purged.to_be_bytes());
        m.update(&crate::clock::unix_millis(c.at).to_be_bytes());
        put(&mut m, Some(&c.key_id));
        Ok(m.finalize().into_bytes().into())
    }
}

/// A length-prefixed optional text field: a presence byte, then the
/// length and the bytes.
fn put(m: &mut Hmac<Sha256>, field: Option<impl AsRef<str>>) {
    match field {
        None => m.update(&[0]),
        Some(s) => {
            m.update(&[1]);
            put_bytes(m, s.as_ref().as_bytes());
        }
    }
}

fn put_bytes(m: &mut Hmac<Sha256>, bytes: &[u8]) {
    m.update(&(bytes.len() as u64).to_be_bytes());
    m.update(bytes);
}

/// Walks the chain: the checkpoint (if any), then each entry in order.
pub(crate) struct Walk<'a> {
    keys: Keys<'a>,
    prev: Vec<u8>,
    pub(crate) next_seq: u64,
    pub(crate) checked: u64,
}

impl<'a> Walk<'a> {
    pub(crate) fn start(
        keyring: &'a Resolved,
        checkpoint: Option<&AuditCheckpoint>,
    ) -> Result<Self> {
        let mut keys = Keys::new(keyring);
        let (prev, next_seq) = match checkpoint {
            None => (GENESIS.to_vec(), 1),
            Some(c) => {
                let mac = keys.checkpoint(c)?;
                if !constant_time_eq(&mac, &c.mac) {
                    return Err(broken(c.seq, ChainFault::Checkpoint));
                }
                (c.hash.clone(), c.seq + 1)
            }
        };
        Ok(Self {
            keys,
            prev,
            next_seq,
            checked: 0,
        })
    }

    pub(crate) fn step(&mut self, e: &StoredAuditEntry) -> Result<()> {
        if e.seq != self.next_seq {
            return Err(broken(self.next_seq, ChainFault::Missing));
        }
        if !constant_time_eq(&e.prev_hash, &self.prev) {
            return Err(broken(e.seq, ChainFault::BrokenLink));
        }
        let mac = self.keys.entry(e)?;
        if !constant_time_eq(&mac, &e.hash) {
            return Err(broken(e.seq, ChainFault::Altered));
        }
        self.prev.clone_from(&e.hash);
        self.next_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// Checks the head against the last entry walked.
    pub(crate) fn finish(mut self, head: Option<&AuditHead>) -> Result<u64> {
        let last = self.next_seq - 1;
        match head {
            None if self.checked == 0 && last == 0 => Ok(0),
            None => Err(broken(last.max(1), ChainFault::Head)),
            Some(h) => {
                let mac = self.keys.head(&h.key_id, h.seq, &h.hash)?;
                if !constant_time_eq(&mac, &h.mac) {
                    return Err(broken(h.seq.max(1), ChainFault::Head));
                }
                if h.seq > last {
                    // The head names entries that are gone (the newest ones).
                    return Err(broken(self.next_seq, ChainFault::Missing));
                }
                if h.seq < last || !constant_time_eq(&h.hash, &self.prev) {
                    return Err(broken(h.seq.max(1), ChainFault::Head));
                }
                Ok(self.checked)
            }
        }
    }
}

fn broken(seq: u64, fault: ChainFault) -> Error {
    Error::AuditChainBroken { seq, fault }
}
