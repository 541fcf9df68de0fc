//! [`ConnectionStore`] and [`RevocationStore`] for [`MemoryStore`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::connection::{Connection, ConnectionStatus};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::store::connections::{
    AccessView, ConnectionDeleted, ConnectionStore, ConnectionWrite, ConnectionWritten,
    PendingRevocation, QueuedRevocation, RevocationStore,
};
use crate::store::vault::CredentialKey;
use crate::vault::CredentialKind;

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn write_connection(&self, write: ConnectionWrite) -> Result<ConnectionWritten> {
        crate::store::connections::check_credentials_belong(&write)?;
        let mut state = self.state();
        let key = (write.connection.user.clone(), write.connection.id.clone());
        let found = state.connections.get(&key).map(|c| c.revision);
        match (write.expected_revision, found) {
            (None, None) => {}
            (Some(expected), Some(found)) if expected == found => {}
            (expected, found) => {
                return Err(Error::Conflict {
                    what: "connection",
                    expected: expected.unwrap_or(0),
                    found: found.unwrap_or(0),
                });
            }
        }
        let c = &write.connection;
        let duplicate = state.connections.values().any(|o| {
            o.user == c.user
                && o.connector == c.connector
                && o.account.id == c.account.id
                && o.id != c.id
        });
        if duplicate {
            return Err(Error::Conflict {
                what: "connection account",
                expected: 0,
                found: 1,
            });
        }
        state.check_credentials(&write.credentials)?;
        let versions = state.apply_credentials(write.credentials);
        let mut connection = write.connection;
        connection.revision = found.unwrap_or(0) + 1;
        let revision = connection.revision;
        state.connections.insert(key, connection);
        Ok(ConnectionWritten::new(revision, versions))
    }

    async fn get_connection(&self, user: &UserId, id: &ConnectionId) -> Result<Option<Connection>> {
        Ok(self
            .state()
            .connections
            .get(&(user.clone(), id.clone()))
            .cloned())
    }

    async fn find_connection(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account_id: &str,
    ) -> Result<Option<Connection>> {
        Ok(self
            .state()
            .connections
            .values()
            .find(|c| c.user == *user && c.connector == *connector && c.account.id == account_id)
            .cloned())
    }

    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>> {
        let mut out: Vec<_> = self
            .state()
            .connections
            .values()
            .filter(|c| c.user == *user)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn connections_expiring(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<Connection>> {
        let mut out: Vec<_> = self
            .state()
            .connections
            .values()
            .filter(|c| {
                c.has_refresh_token
                    && matches!(
                        c.status,
                        ConnectionStatus::Active | ConnectionStatus::Degraded
                    )
                    && c.access_expires_at.is_some_and(|t| t < before)
            })
            .cloned()
            .collect();
        out.sort_by_key(|c| c.access_expires_at);
        out.truncate(limit);
        Ok(out)
    }

    async fn access_view(
        &self,
        user: &UserId,
        id: &ConnectionId,
        purpose: &Purpose,
        kind: CredentialKind,
    ) -> Result<Option<AccessView>> {
        let state = self.state();
        let Some(connection) = state.connections.get(&(user.clone(), id.clone())) else {
            return Ok(None);
        };
        let consented = state
            .consent_current
            .get(&(user.clone(), id.clone(), purpose.clone()))
            .copied()
            .unwrap_or(false);
        let credential = state
            .credentials
            .get(&CredentialKey::new(user.clone(), id.clone(), kind))
            .cloned();
        Ok(Some(AccessView::new(
            connection.clone(),
            consented,
            credential,
        )))
    }

    async fn delete_connection(
        &self,
        user: &UserId,
        id: &ConnectionId,
        queue: Vec<QueuedRevocation>,
    ) -> Result<ConnectionDeleted> {
        let mut state = self.state();
        let mut deleted = ConnectionDeleted {
            connection: state
                .connections
                .remove(&(user.clone(), id.clone()))
                .is_some(),
            ..ConnectionDeleted::default()
        };
        for q in queue {
            let key = CredentialKey::new(user.clone(), id.clone(), q.kind);
            if let Some(stored) = state.credentials.get(&key).cloned() {
                let queue_id = state.next_id();
                let entry = PendingRevocation::new(
                    queue_id,
                    user.clone(),
                    id.clone(),
                    q.connector,
                    q.kind,
                    stored.envelope,
                    0,
                    q.next_attempt_at,
                );
                state.revocations.insert(queue_id, entry);
                deleted.queued.push(queue_id);
            }
        }
        let before = state.credentials.len();
        state
            .credentials
            .retain(|k, _| !(k.user == *user && k.connection == *id));
        deleted.credentials = (before - state.credentials.len()) as u64;
        let before = state.consent_ledger.len();
        state
            .consent_ledger
            .retain(|e| !(e.user == *user && e.connection == *id));
        deleted.consent_entries = (before - state.consent_ledger.len()) as u64;
        state
            .consent_current
            .retain(|(u, c, _), _| !(u == user && c == id));
        let (records, sync_states, log) = state.delete_harvest(user, id);
        deleted.records = records;
        deleted.sync_states = sync_states;
        deleted.access_log_entries = log;
        Ok(deleted)
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn due_revocations(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>> {
        let mut due: Vec<_> = self
            .state()
            .revocations
            .values()
            .filter(|r| r.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.id));
        due.truncate(limit);
        Ok(due)
    }

    async fn user_revocations(&self, user: &UserId) -> Result<Vec<PendingRevocation>> {
        Ok(self
            .state()
            .revocations
            .values()
            .filter(|r| r.user == *user)
            .cloned()
            .collect())
    }

    async fn reschedule_revocation(
        &self,
        id: u64,
        attempts: u32,
        next_attempt_at: SystemTime,
    ) -> Result<()> {
        if let Some(r) = self.state().revocations.get_mut(&id) {
            r.attempts = attempts;
            r.next_attempt_at = next_attempt_at;
        }
        Ok(())
    }

    async fn remove_revocation(&self, id: u64) -> Result<bool> {
        Ok(self.state().revocations.remove(&id).is_some())
    }
}
