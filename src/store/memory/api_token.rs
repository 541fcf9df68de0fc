//! [`ApiTokenStore`] for [`MemoryStore`].

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::{ApiTokenId, UserId};
use crate::store::api_token::{
    ApiTokenInfo, ApiTokenStore, ApiTokenUpdate, ApiTokenUsage, LAST_USED_RESOLUTION,
    StoredApiToken, check_operation, duplicate, last_uses,
};

/// The API token part of the memory store's state.
#[derive(Debug, Default)]
pub(super) struct ApiTokenState {
    by_hash: HashMap<[u8; 32], ApiTokenId>,
    tokens: BTreeMap<ApiTokenId, StoredApiToken>,
    usage: Vec<ApiTokenUsage>,
}

impl ApiTokenState {
    fn owned_mut(&mut self, owner: &UserId, id: &ApiTokenId) -> Option<&mut StoredApiToken> {
        self.tokens.get_mut(id).filter(|t| t.info.owner == *owner)
    }
}

#[async_trait]
impl ApiTokenStore for MemoryStore {
    async fn insert_api_token(&self, token: StoredApiToken) -> Result<()> {
        let mut state = self.state();
        let s = &mut state.api_tokens;
        if s.by_hash.contains_key(&token.hash) || s.tokens.contains_key(&token.info.id) {
            return Err(duplicate());
        }
        s.by_hash.insert(token.hash, token.info.id.clone());
        s.tokens.insert(token.info.id.clone(), token);
        Ok(())
    }

    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<StoredApiToken>> {
        let state = self.state();
        let s = &state.api_tokens;
        Ok(s.by_hash.get(hash).and_then(|id| s.tokens.get(id)).cloned())
    }

    async fn list_api_tokens(&self, owner: &UserId) -> Result<Vec<ApiTokenInfo>> {
        let mut list: Vec<ApiTokenInfo> = self
            .state()
            .api_tokens
            .tokens
            .values()
            .filter(|t| t.info.owner == *owner)
            .map(|t| t.info.clone())
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn update_api_token(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        update: ApiTokenUpdate,
    ) -> Result<Option<ApiTokenInfo>> {
        let mut state = self.state();
        let Some(t) = state.api_tokens.owned_mut(owner, id) else {
            return Ok(None);
        };
        match update {
            ApiTokenUpdate::Rename(name) => t.info.name = name,
            ApiTokenUpdate::SetActive(active) => t.info.active = active,
            ApiTokenUpdate::Revoke(at) => {
                t.info.revoked_at.get_or_insert(at);
            }
        }
        Ok(Some(t.info.clone()))
    }

    async fn record_api_token_usage(&self, entries: Vec<ApiTokenUsage>) -> Result<()> {
        for e in &entries {
            check_operation(&e.operation)?;
        }
        let mut state = self.state();
        let s = &mut state.api_tokens;
        for (id, at) in last_uses(&entries) {
            if let Some(t) = s.tokens.get_mut(id)
                && t.info
                    .last_used_at
                    .is_none_or(|last| at >= last + LAST_USED_RESOLUTION)
            {
                t.info.last_used_at = Some(at);
            }
        }
        s.usage.extend(entries);
        Ok(())
    }

    async fn api_token_usage(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        limit: usize,
    ) -> Result<Option<Vec<ApiTokenUsage>>> {
        let mut state = self.state();
        let s = &mut state.api_tokens;
        if s.owned_mut(owner, id).is_none() {
            return Ok(None);
        }
        Ok(Some(
            s.usage
                .iter()
                .rev()
                .filter(|u| u.token == *id)
                .take(limit)
                .cloned()
                .collect(),
        ))
    }
}
