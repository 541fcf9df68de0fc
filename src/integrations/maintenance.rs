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
///
/// ```
/// use std::time::Duration;
/// use consentry::clock::ManualClock;
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let clock = ManualClock::starting_now();
/// // Acme's revocation endpoint is down (it answers 503):
/// # let integrations = doc_support::builder()?.http(doc_support::provider(false)).clock(clock.clone()).build()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// integrations.disconnect(&user, &conn.id).await?; // both tokens are queued for revocation
/// clock.advance(Duration::from_secs(120)); // the first retry is due after a minute
/// let report = integrations.maintain().await?;
/// assert_eq!(report.revocations_rescheduled, 2); // still down: tried again later
/// assert_eq!(report.revocations_finished, 0);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
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
    /// ```
    /// use std::time::Duration;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let clock = consentry::clock::ManualClock::starting_now();
    /// # let integrations = doc_support::builder()?.clock(clock.clone()).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// clock.advance(Duration::from_secs(3500)); // the access token expires in 100 s
    /// let report = integrations.maintain().await?;
    /// assert_eq!((report.refreshed, report.refresh_failed), (1, 0));
    /// assert_eq!(integrations.maintain().await?.refreshed, 0); // fresh again
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::events::EventKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let clock = consentry::clock::ManualClock::starting_now();
    /// # let integrations = doc_support::builder()?.clock(clock.clone()).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let mut events = integrations.subscribe();
    /// let maintenance = tokio::spawn(integrations.maintenance());
    /// clock.advance(Duration::from_secs(3500)); // the access token expires in 100 s
    /// assert_eq!(events.recv().await.expect("an event").kind, EventKind::Refreshed);
    /// maintenance.abort(); // stops it
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::events::EventKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let clock = consentry::clock::ManualClock::starting_now();
    /// # let integrations = doc_support::builder()?.clock(clock.clone()).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let mut events = integrations.subscribe();
    /// let refresher = tokio::spawn(integrations.refresher());
    /// clock.advance(Duration::from_secs(3500)); // the access token expires in 100 s
    /// assert_eq!(events.recv().await.expect("an event").kind, EventKind::Refreshed);
    /// refresher.abort();
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
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
