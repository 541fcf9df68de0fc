//! [`RateLimitStore`] for [`MemoryStore`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ratelimit::check_key;
use crate::store::ratelimit::{RateLimitStore, TatUpdate, tat_nanos};

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn rate_limit_tat(&self, key: &str) -> Result<Option<SystemTime>> {
        check_key(key)?;
        Ok(self.state().rate_limits.get(key).copied())
    }

    async fn update_rate_limit_tat(
        &self,
        key: &str,
        update: TatUpdate,
    ) -> Result<Option<SystemTime>> {
        check_key(key)?;
        // Read, update and write under the one state lock.
        let mut state = self.state();
        let current = state.rate_limits.get(key).copied();
        if let Some(new) = update.apply(current) {
            tat_nanos(new)?;
            match state.rate_limits.get_mut(key) {
                Some(tat) => *tat = new,
                None => {
                    state.rate_limits.insert(key.to_owned(), new);
                }
            }
        }
        Ok(current)
    }

    async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let before = state.rate_limits.len();
        state.rate_limits.retain(|_, tat| *tat > now);
        Ok((before - state.rate_limits.len()) as u64)
    }
}
