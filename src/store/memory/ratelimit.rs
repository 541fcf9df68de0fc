//! [`RateLimitStore`] for [`MemoryStore`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ratelimit::check_key;
use crate::store::ratelimit::{RateLimitStore, TatSwap, tat_nanos};

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn rate_limit_tat(&self, key: &str) -> Result<Option<SystemTime>> {
        check_key(key)?;
        Ok(self.state().rate_limits.get(key).copied())
    }

    async fn swap_rate_limit_tat(
        &self,
        key: &str,
        expected: Option<SystemTime>,
        new: SystemTime,
    ) -> Result<TatSwap> {
        check_key(key)?;
        tat_nanos(new)?;
        let mut state = self.state();
        let current = state.rate_limits.get(key).copied();
        if current != expected {
            return Ok(TatSwap::Changed { current });
        }
        match state.rate_limits.get_mut(key) {
            Some(tat) => *tat = new,
            None => {
                state.rate_limits.insert(key.to_owned(), new);
            }
        }
        Ok(TatSwap::Swapped)
    }

    async fn purge_rate_limits(&self, now: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let before = state.rate_limits.len();
        state.rate_limits.retain(|_, tat| *tat > now);
        Ok((before - state.rate_limits.len()) as u64)
    }
}
