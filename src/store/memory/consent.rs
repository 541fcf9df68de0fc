//! [`ConsentStore`] for [`MemoryStore`].

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::store::consent::{ConsentEntry, ConsentStore};

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn append_consent(&self, mut entry: ConsentEntry) -> Result<u64> {
        crate::store::consent::check_entry(&entry)?;
        let mut state = self.state();
        entry.seq = state.next_id();
        state.consent_current.insert(
            (
                entry.user.clone(),
                entry.connection.clone(),
                entry.purpose.clone(),
            ),
            entry.granted,
        );
        if !entry.granted {
            state.drop_purpose(&entry.user, &entry.connection, &entry.purpose);
        }
        let seq = entry.seq;
        state.consent_ledger.push(entry);
        Ok(seq)
    }

    async fn consent_history(
        &self,
        user: &UserId,
        connection: Option<&ConnectionId>,
    ) -> Result<Vec<ConsentEntry>> {
        Ok(self
            .state()
            .consent_ledger
            .iter()
            .filter(|e| e.user == *user && connection.is_none_or(|c| e.connection == *c))
            .cloned()
            .collect())
    }

    async fn consented_purposes(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Vec<Purpose>> {
        Ok(self
            .state()
            .consent_current
            .iter()
            .filter(|((u, c, _), granted)| u == user && c == connection && **granted)
            .map(|((_, _, p), _)| p.clone())
            .collect())
    }
}
