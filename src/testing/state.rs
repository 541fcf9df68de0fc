//! The provider's state: registered clients, authorization codes, grants
//! and tokens, fault switches and counters. One mutex; every handler holds
//! it only for bookkeeping, never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{Fault, TestClient, TestProviderStats};
use crate::error::Result;
use crate::secret::random_token;

/// At most this many live codes, grants and tokens each; the oldest expired
/// ones are dropped first, then requests are refused (a test that needs
/// more is misbehaving).
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// Authorization codes live this long (RFC 6749 §4.1.2 recommends ≤ 10 min).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// An issued, not yet exchanged authorization code.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) login: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: SystemTime,
    /// Set once exchanged: a second exchange revokes the grant (RFC 6749 §4.1.2).
    pub(crate) grant: Option<u64>,
}

/// One authorization: what the user approved for one client.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) login: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) revoked: bool,
}

/// Whether a token is an access or a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Access,
    Refresh,
}

/// An issued token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) grant: u64,
    pub(crate) scopes: Vec<String>,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: SystemTime,
    /// A refresh token that was rotated: presenting it again is reuse.
    pub(crate) rotated: bool,
    pub(crate) revoked: bool,
}

/// Everything mutable.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) clients: Vec<TestClient>,
    pub(crate) codes: HashMap<String, Code>,
    pub(crate) grants: HashMap<u64, Grant>,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) next_grant: u64,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) token_delay: Duration,
    pub(crate) deny_all: bool,
    pub(crate) stats: TestProviderStats,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) rotate: bool,
    pub(crate) items: Vec<Value>,
    pub(crate) page_size: usize,
}

/// The state behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) issuer: String,
    pub(crate) id_token_key: Vec<u8>,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(issuer: String, inner: Inner) -> Result<Self> {
        let mut id_token_key = vec![0u8; 32];
        crate::secret::fill_random(&mut id_token_key)?;
        Ok(Self {
            issuer,
            id_token_key,
            inner: Mutex::new(inner),
        })
    }

    /// The state, even after a panicking holder (the data stays usable: every
    /// update is a single insert or flag).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// The registered client with this id.
    pub(crate) fn client(&self, id: &str) -> Option<&TestClient> {
        self.clients.iter().find(|c| c.id() == id)
    }

    /// Drops expired codes and tokens once the maps fill up; `false` if
    /// there is still no room.
    pub(crate) fn make_room(&mut self, now: SystemTime) -> bool {
        if self.codes.len() >= MAX_ENTRIES {
            self.codes.retain(|_, c| c.expires_at > now);
        }
        if self.tokens.len() >= MAX_ENTRIES {
            self.tokens.retain(|_, t| t.expires_at > now && !t.revoked);
        }
        self.codes.len() < MAX_ENTRIES
            && self.tokens.len() < MAX_ENTRIES
            && self.grants.len() < MAX_ENTRIES
    }

    /// A new grant's id.
    pub(crate) fn add_grant(&mut self, grant: Grant) -> u64 {
        self.next_grant += 1;
        self.grants.insert(self.next_grant, grant);
        self.next_grant
    }

    /// Issues a token of `kind` for `grant`.
    pub(crate) fn issue(
        &mut self,
        kind: Kind,
        grant: u64,
        scopes: &[String],
        now: SystemTime,
    ) -> Result<(String, Duration)> {
        let (prefix, ttl) = match kind {
            Kind::Access => ("tp_at_", self.access_ttl),
            Kind::Refresh => ("tp_rt_", self.refresh_ttl),
        };
        let value = format!("{prefix}{}", random_token(24)?);
        self.tokens.insert(
            value.clone(),
            Token {
                kind,
                grant,
                scopes: scopes.to_vec(),
                issued_at: now,
                expires_at: now + ttl,
                rotated: false,
                revoked: false,
            },
        );
        Ok((value, ttl))
    }

    /// Revokes a grant and every token issued under it.
    pub(crate) fn revoke_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
        for t in self.tokens.values_mut().filter(|t| t.grant == grant) {
            t.revoked = true;
        }
    }

    /// The token if it is live: known, not revoked, not rotated, not
    /// expired, and its grant not revoked.
    pub(crate) fn active(&self, value: &str, now: SystemTime) -> Option<&Token> {
        let t = self.tokens.get(value)?;
        let grant = self.grants.get(&t.grant)?;
        (!t.revoked && !t.rotated && !grant.revoked && t.expires_at > now).then_some(t)
    }
}
