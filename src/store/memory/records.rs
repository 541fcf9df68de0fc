//! [`RecordStore`], [`SyncStore`], [`SettingsStore`] and [`ErasureStore`]
//! for [`MemoryStore`].

use std::time::SystemTime;

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::records::HeldRecord;
use crate::store::records::{
    AccessLogEntry, ErasureStore, MappingScope, PageApplied, PageWrite, RecordCount, RecordRead,
    RecordStore, SettingsStore, SyncState, SyncStore, Tombstone, UserErased,
};

/// user, connection, stream, record id.
pub(super) type RecordKey = (UserId, ConnectionId, String, String);

#[derive(Debug, Clone)]
pub(super) struct MemRecord {
    kind: String,
    data: String,
    fetched_at: SystemTime,
    purposes: Vec<Purpose>,
    generation: u64,
}

impl State {
    fn consented(&self, user: &UserId, connection: &ConnectionId, purpose: &Purpose) -> bool {
        self.consent_current
            .get(&(user.clone(), connection.clone(), purpose.clone()))
            .copied()
            .unwrap_or(false)
    }

    /// Removes `purpose` from the connection's records and sync states;
    /// deletes records left with none (consent revoked).
    pub(super) fn drop_purpose(
        &mut self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
    ) {
        self.records.retain(|(u, c, _, _), r| {
            if u == user && c == connection {
                r.purposes.retain(|p| p != purpose);
                !r.purposes.is_empty()
            } else {
                true
            }
        });
        for ((u, c, _), s) in &mut self.sync_states {
            if u == user && c == connection {
                s.purposes.retain(|p| p != purpose);
            }
        }
    }

    /// Deletes what belongs to a connection besides the connection row,
    /// credentials and consent: (records, sync states, access log entries).
    pub(super) fn delete_harvest(
        &mut self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> (u64, u64, u64) {
        let before = self.records.len();
        self.records
            .retain(|(u, c, _, _), _| !(u == user && c == connection));
        let records = (before - self.records.len()) as u64;
        let before = self.sync_states.len();
        self.sync_states
            .retain(|(u, c, _), _| !(u == user && c == connection));
        let states = (before - self.sync_states.len()) as u64;
        let before = self.access_log.len();
        self.access_log
            .retain(|e| !(e.user == *user && e.connection == *connection));
        let log = (before - self.access_log.len()) as u64;
        self.settings.remove(&(user.clone(), connection.clone()));
        self.mappings.retain(|(scope, _), _| {
            !matches!(scope, MappingScope::Connection(u, c) if u == user && c == connection)
        });
        (records, states, log)
    }
}

fn held(key: &RecordKey, r: &MemRecord) -> Result<HeldRecord> {
    HeldRecord::new(
        key.1.clone(),
        key.2.clone(),
        key.3.clone(),
        r.kind.clone(),
        r.data.clone(),
        r.fetched_at,
        r.purposes.clone(),
    )
}

#[async_trait]
impl RecordStore for MemoryStore {
    async fn apply_page(&self, page: PageWrite) -> Result<PageApplied> {
        let mut state = self.state();
        let st = &page.state;
        let (user, conn) = (&st.user, &st.connection);
        if !state
            .connections
            .contains_key(&(user.clone(), conn.clone()))
        {
            return Err(Error::NotFound { what: "connection" });
        }
        let purposes: Vec<Purpose> = crate::store::normalize_purposes(page.purposes.clone())
            .into_iter()
            .filter(|p| state.consented(user, conn, p))
            .collect();
        if purposes.is_empty() {
            return Err(Error::ConsentRequired {
                purpose: page
                    .purposes
                    .first()
                    .cloned()
                    .ok_or(Error::Internal("a page without purposes"))?,
            });
        }
        let mut applied = PageApplied {
            purposes: purposes.clone(),
            ..PageApplied::default()
        };
        for record in page.records {
            let (id, kind, data) = record.into_parts();
            state.records.insert(
                (user.clone(), conn.clone(), st.stream.clone(), id),
                MemRecord {
                    kind,
                    data,
                    fetched_at: page.fetched_at,
                    purposes: purposes.clone(),
                    generation: st.generation,
                },
            );
            applied.upserted += 1;
        }
        for id in page.deleted {
            let key = (user.clone(), conn.clone(), st.stream.clone(), id);
            applied.deleted += u64::from(state.records.remove(&key).is_some());
        }
        if page.sweep {
            let before = state.records.len();
            state.records.retain(|(u, c, s, _), r| {
                !(u == user && c == conn && *s == st.stream && r.generation < st.generation)
            });
            applied.swept = (before - state.records.len()) as u64;
        }
        let mut saved = page.state;
        saved.purposes = crate::store::normalize_purposes(saved.purposes);
        state.sync_states.insert(
            (
                saved.user.clone(),
                saved.connection.clone(),
                saved.stream.clone(),
            ),
            saved,
        );
        Ok(applied)
    }

    async fn read_records(&self, read: RecordRead) -> Result<Option<Vec<HeldRecord>>> {
        let mut state = self.state();
        if !state
            .connections
            .contains_key(&(read.user.clone(), read.connection.clone()))
            || !state.consented(&read.user, &read.connection, &read.purpose)
        {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (key, r) in &state.records {
            if out.len() >= read.limit {
                break;
            }
            if key.0 == read.user
                && key.1 == read.connection
                && key.2 == read.stream
                && read.after.as_ref().is_none_or(|a| key.3 > *a)
                && r.purposes.contains(&read.purpose)
            {
                out.push(held(key, r)?);
            }
        }
        let seq = state.next_id();
        state.access_log.push(AccessLogEntry {
            seq,
            user: read.user,
            connection: read.connection,
            stream: read.stream,
            purpose: read.purpose,
            component: read.component,
            at: read.at,
            count: out.len() as u64,
        });
        Ok(Some(out))
    }

    async fn record_counts(&self, user: &UserId) -> Result<Vec<RecordCount>> {
        let state = self.state();
        let mut counts: std::collections::BTreeMap<(ConnectionId, String, Purpose), u64> =
            std::collections::BTreeMap::new();
        for ((u, c, s, _), r) in &state.records {
            if u == user {
                for p in &r.purposes {
                    *counts.entry((c.clone(), s.clone(), p.clone())).or_default() += 1;
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|((c, s, p), n)| RecordCount::new(c, s, p, n))
            .collect())
    }

    async fn access_log(&self, user: &UserId) -> Result<Vec<AccessLogEntry>> {
        Ok(self
            .state()
            .access_log
            .iter()
            .filter(|e| e.user == *user)
            .cloned()
            .collect())
    }

    async fn user_records(
        &self,
        user: &UserId,
        after: Option<crate::store::RecordKey>,
        limit: usize,
    ) -> Result<Vec<HeldRecord>> {
        let state = self.state();
        let mut out = Vec::new();
        for (key, r) in &state.records {
            if out.len() >= limit {
                break;
            }
            let pos = (key.1.clone(), key.2.clone(), key.3.clone());
            if key.0 == *user && after.as_ref().is_none_or(|a| pos > *a) {
                out.push(held(key, r)?);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SyncStore for MemoryStore {
    async fn get_sync_state(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<SyncState>> {
        Ok(self
            .state()
            .sync_states
            .get(&(user.clone(), connection.clone(), stream.to_owned()))
            .cloned())
    }

    async fn put_sync_state(&self, mut s: SyncState) -> Result<()> {
        let mut state = self.state();
        if !state
            .connections
            .contains_key(&(s.user.clone(), s.connection.clone()))
        {
            return Err(Error::NotFound { what: "connection" });
        }
        s.purposes = crate::store::normalize_purposes(s.purposes);
        state
            .sync_states
            .insert((s.user.clone(), s.connection.clone(), s.stream.clone()), s);
        Ok(())
    }

    async fn list_sync_states(&self, user: &UserId) -> Result<Vec<SyncState>> {
        Ok(self
            .state()
            .sync_states
            .values()
            .filter(|s| s.user == *user)
            .cloned()
            .collect())
    }

    async fn due_syncs(&self, now: SystemTime, limit: usize) -> Result<Vec<SyncState>> {
        let mut due: Vec<SyncState> = self
            .state()
            .sync_states
            .values()
            .filter(|s| s.next_run_at.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by_key(|s| s.next_run_at);
        due.truncate(limit);
        Ok(due)
    }
}

#[async_trait]
impl SettingsStore for MemoryStore {
    async fn put_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        settings: String,
    ) -> Result<()> {
        let mut state = self.state();
        let key = (user.clone(), connection.clone());
        if !state.connections.contains_key(&key) {
            return Err(Error::NotFound { what: "connection" });
        }
        state.settings.insert(key, settings);
        Ok(())
    }

    async fn get_settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Option<String>> {
        Ok(self
            .state()
            .settings
            .get(&(user.clone(), connection.clone()))
            .cloned())
    }

    async fn put_field_mapping(
        &self,
        scope: &MappingScope,
        stream: &str,
        mapping: Option<String>,
    ) -> Result<()> {
        let mut state = self.state();
        let key = (scope.clone(), stream.to_owned());
        match mapping {
            Some(m) => state.mappings.insert(key, m),
            None => state.mappings.remove(&key),
        };
        Ok(())
    }

    async fn get_field_mapping(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<String>> {
        let state = self.state();
        let own = (
            MappingScope::Connection(user.clone(), connection.clone()),
            stream.to_owned(),
        );
        let tenant = (
            MappingScope::Tenant(user.tenant().map(str::to_owned)),
            stream.to_owned(),
        );
        Ok(state
            .mappings
            .get(&own)
            .or_else(|| state.mappings.get(&tenant))
            .cloned())
    }
}

#[async_trait]
impl ErasureStore for MemoryStore {
    async fn erase_user_data(&self, user: &UserId, tombstone: Tombstone) -> Result<UserErased> {
        let mut state = self.state();
        let mut erased = UserErased::default();
        let before = state.connections.len();
        state.connections.retain(|(u, _), _| u != user);
        erased.connections = (before - state.connections.len()) as u64;
        state.credentials.retain(|k, _| k.user != *user);
        let before = state.consent_ledger.len();
        state.consent_ledger.retain(|e| e.user != *user);
        erased.consent_entries = (before - state.consent_ledger.len()) as u64;
        state.consent_current.retain(|(u, _, _), _| u != user);
        let before = state.records.len();
        state.records.retain(|(u, _, _, _), _| u != user);
        erased.records = (before - state.records.len()) as u64;
        state.sync_states.retain(|(u, _, _), _| u != user);
        let before = state.access_log.len();
        state.access_log.retain(|e| e.user != *user);
        erased.access_log_entries = (before - state.access_log.len()) as u64;
        state.settings.retain(|(u, _), _| u != user);
        state
            .mappings
            .retain(|(scope, _), _| !matches!(scope, MappingScope::Connection(u, _) if u == user));
        state.pending.retain(|_, p| p.user != *user);
        let before = state.revocations.len();
        state.revocations.retain(|_, r| r.user != *user);
        erased.revocations = (before - state.revocations.len()) as u64;
        state
            .tombstones
            .insert(tombstone.subject.clone(), tombstone);
        Ok(erased)
    }

    async fn tombstone(&self, subject: &str) -> Result<Option<Tombstone>> {
        Ok(self.state().tombstones.get(subject).cloned())
    }
}
