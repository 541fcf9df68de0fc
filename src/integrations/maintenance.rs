//! Background work: the proactive refresher, revocation retries, and the
//! purge of expired authorizations.

use std::future::Future;

use serde::Serialize;
use tokio::task::JoinSet;

use super::Integrations;
use crate::error::Result;

/// How many refreshes one maintenance round runs at once.
const REFRESH_CONCURRENCY: usize = 8;

/// What one [`Integrations::maintain`] round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Connections refreshed (or found already fresh).
    pub refreshed: u64,
    /// Refreshes that failed (the connection records why).
    pub refresh_failed: u64,
    /// Queued revocations finished (revoked, refused, or given up).
    pub revocations_finished: u64,
    /// Queued revocations rescheduled.
    pub revocations_rescheduled: u64,
    /// Expired pending authorizations deleted.
    pub authorizations_purged: u64,
}

impl Integrations {
    /// One round of maintenance, in bounded batches: refreshes connections
    /// whose access token expires within the refresh margin (at most 8 at
    /// once, skipping those backing off), retries due revocations, and
    /// deletes expired pending authorizations.
    ///
    /// # Errors
    /// Storage errors reading the work lists; failures of single items are
    /// counted in the report, not raised.
    pub async fn maintain(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let now = self.now();
        let batch = self.inner.options.maintenance_batch;
        let due = self
            .inner
            .store
            .connections_expiring(now + self.inner.options.refresh_margin, batch)
            .await?;
        let mut running = JoinSet::new();
        for c in due {
            if c.health.retry_after.is_some_and(|t| t > now) {
                continue;
            }
            while running.len() >= REFRESH_CONCURRENCY {
                count(&mut report, running.join_next().await);
            }
            let this = self.clone();
            running.spawn(async move { this.refresh_connection(&c.user, &c.id).await });
        }
        while let Some(done) = running.join_next().await {
            count(&mut report, Some(done));
        }

        for entry in self.inner.store.due_revocations(now, batch).await? {
            match self.retry_revocation(&entry, now).await {
                Ok(true) => report.revocations_finished += 1,
                Ok(false) | Err(_) => report.revocations_rescheduled += 1,
            }
        }
        report.authorizations_purged = self.inner.store.purge_pending_authorizations(now).await?;
        Ok(report)
    }

    /// The background maintenance loop: [`Integrations::maintain`] every
    /// interval (default 60 s), forever. Spawn it; drop or abort it to stop
    /// (every store write it makes is atomic, so stopping it at any point
    /// leaves nothing half-done; a lease it held expires on its own).
    ///
    /// Needs a Tokio runtime with time enabled.
    pub fn maintenance(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                // Failures are recorded per connection; a store outage is
                // retried next round.
                let _ = this.maintain().await;
                tokio::time::sleep(this.inner.options.maintenance_interval).await;
            }
        }
    }

    /// The proactive refresher: the same loop as
    /// [`Integrations::maintenance`], which refreshes tokens that expire
    /// soon, in bounded batches.
    pub fn refresher(&self) -> impl Future<Output = ()> + Send + 'static {
        self.maintenance()
    }
}

fn count(
    report: &mut MaintenanceReport,
    done: Option<std::result::Result<Result<()>, tokio::task::JoinError>>,
) {
    match done {
        Some(Ok(Ok(()))) => report.refreshed += 1,
        Some(_) => report.refresh_failed += 1,
        None => {}
    }
}
