//! [`OAuthStateStore`] and [`LeaseStore`] for [`MemoryStore`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::oauth::{LeaseStore, OAuthStateStore, PendingAuthorization};

#[async_trait]
impl OAuthStateStore for MemoryStore {
    async fn put_pending_authorization(&self, pending: PendingAuthorization) -> Result<()> {
        let mut state = self.state();
        if state.pending.contains_key(&pending.state_hash) {
            return Err(Error::Conflict {
                what: "pending authorization",
                expected: 0,
                found: 1,
            });
        }
        state.pending.insert(pending.state_hash, pending);
        Ok(())
    }

    async fn take_pending_authorization(
        &self,
        state_hash: &[u8; 32],
        user: &UserId,
    ) -> Result<Option<PendingAuthorization>> {
        let mut state = self.state();
        match state.pending.get(state_hash) {
            Some(p) if p.user == *user => Ok(state.pending.remove(state_hash)),
            _ => Ok(None),
        }
    }

    async fn purge_pending_authorizations(&self, now: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let before = state.pending.len();
        state.pending.retain(|_, p| p.expires_at >= now);
        Ok((before - state.pending.len()) as u64)
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool> {
        let mut state = self.state();
        let free = match state.leases.get(name) {
            None => true,
            Some((holder, expires)) => holder == owner || *expires <= now,
        };
        if free {
            state
                .leases
                .insert(name.to_owned(), (owner.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        let mut state = self.state();
        if state
            .leases
            .get(name)
            .is_some_and(|(holder, _)| holder == owner)
        {
            state.leases.remove(name);
            return Ok(true);
        }
        Ok(false)
    }
}
