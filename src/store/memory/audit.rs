//! [`AuditStore`] for [`MemoryStore`].

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::store::audit::{
    AuditCheckpoint, AuditFilter, AuditHead, AuditStore, MAX_AUDIT_PAGE, StoredAuditEntry,
    check_append,
};

/// The audit part of the memory store's state.
#[derive(Debug, Default)]
pub(super) struct AuditState {
    entries: BTreeMap<u64, StoredAuditEntry>,
    head: Option<AuditHead>,
    checkpoint: Option<AuditCheckpoint>,
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn audit_head(&self) -> Result<Option<AuditHead>> {
        Ok(self.state().audit.head.clone())
    }

    async fn append_audit_entries(
        &self,
        expected: u64,
        entries: Vec<StoredAuditEntry>,
        head: AuditHead,
    ) -> Result<bool> {
        check_append(expected, &entries, &head)?;
        let mut state = self.state();
        let audit = &mut state.audit;
        if audit.head.as_ref().map_or(0, |h| h.seq) != expected {
            return Ok(false);
        }
        for e in entries {
            audit.entries.insert(e.seq, e);
        }
        audit.head = Some(head);
        Ok(true)
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditEntry>> {
        let limit = filter.limit.min(MAX_AUDIT_PAGE);
        let state = self.state();
        Ok(state
            .audit
            .entries
            .range(filter.after_seq.saturating_add(1)..)
            .map(|(_, e)| e)
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>> {
        Ok(self.state().audit.checkpoint.clone())
    }

    async fn purge_audit_entries(&self, checkpoint: AuditCheckpoint) -> Result<u64> {
        let mut state = self.state();
        let audit = &mut state.audit;
        let floor = audit.checkpoint.as_ref().map_or(0, |c| c.seq);
        let head = audit.head.as_ref().map_or(0, |h| h.seq);
        if checkpoint.seq < floor || checkpoint.seq > head {
            return Err(Error::invalid(
                "audit checkpoint",
                "must lie between the previous checkpoint and the head",
            ));
        }
        let keep = audit.entries.split_off(&(checkpoint.seq + 1));
        let purged = std::mem::replace(&mut audit.entries, keep).len() as u64;
        audit.checkpoint = Some(checkpoint);
        Ok(purged)
    }
}
