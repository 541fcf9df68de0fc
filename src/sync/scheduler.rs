//! The scheduler: runs due streams in bounded batches, at most one run per
//! connection at a time; and what schedules streams when consent is given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::run::run_purposes;
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::integrations::Integrations;
use crate::store::{SyncState, SyncStatus};

/// A connection, by owner and id.
type ConnectionKey = (UserId, ConnectionId);
/// A stream to run and the purpose to run it for.
type StreamRun = (String, Purpose);

/// What one [`Integrations::run_due_syncs`] round did.
///
/// ```
/// use consentry::sync::SchedulerReport;
/// let r = SchedulerReport::default();
/// assert_eq!((r.started, r.completed, r.failed, r.skipped), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SchedulerReport {
    /// Runs started.
    pub started: u64,
    /// Runs that caught up or stopped at their budget.
    pub completed: u64,
    /// Runs that failed (their stream state says why).
    pub failed: u64,
    /// Due streams skipped: their connection was busy, or no purpose of
    /// theirs has consent any more (they are unscheduled then).
    pub skipped: u64,
}

/// A held cross-process sync lease.
#[derive(Debug)]
pub(crate) struct SyncLease {
    name: String,
    owner: String,
}

fn lease_name(user: &UserId, connection: &ConnectionId) -> String {
    let mut h = Sha256::new();
    for part in [
        user.tenant().unwrap_or(""),
        user.user(),
        connection.as_str(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("sync:{}", crate::secret::b64url_encode(&h.finalize()))
}

impl Integrations {
    /// The in-process lock of a connection's runs.
    pub(crate) fn run_lock(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.running();
        if map.len() > 10_000 {
            // Drop the locks nobody holds or waits for.
            map.retain(|_, l| Arc::strong_count(l) > 1);
        }
        map.entry((user.clone(), connection.clone()))
            .or_default()
            .clone()
    }

    /// The cross-process lease of a connection's runs, lasting the run
    /// budget plus a minute.
    pub(crate) async fn acquire_sync_lease(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<SyncLease> {
        let name = lease_name(user, connection);
        let owner = crate::secret::random_token(12)?;
        let now = self.clock_now();
        let ttl = self.sync_options().run_budget + Duration::from_secs(60);
        if self
            .inner()
            .store
            .acquire_lease(&name, &owner, now + ttl, now)
            .await?
        {
            Ok(SyncLease { name, owner })
        } else {
            Err(Error::Conflict {
                what: "sync run (another process runs this connection)",
                expected: 0,
                found: 0,
            })
        }
    }

    pub(crate) async fn release_sync_lease(&self, lease: SyncLease) {
        // An unreleased lease expires on its own.
        let _ = self
            .inner()
            .store
            .release_lease(&lease.name, &lease.owner)
            .await;
    }

    /// Schedules, to run now, every stream of the connection that serves
    /// `purpose` (called when consent to it is given).
    pub(crate) async fn schedule_streams(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
    ) -> Result<()> {
        let c = self.connection(user, connection).await?;
        let Ok(connector) = self.connector_by_id(&c.connector) else {
            return Ok(());
        };
        let now = self.clock_now();
        for spec in connector.streams() {
            if !spec.purposes().contains(purpose) || !self.fetches(spec) {
                continue;
            }
            let mut state = self
                .inner()
                .store
                .get_sync_state(user, connection, spec.name())
                .await?
                .unwrap_or_else(|| {
                    SyncState::new(
                        user.clone(),
                        connection.clone(),
                        c.connector.clone(),
                        spec.name(),
                    )
                });
            if state.next_run_at.is_none_or(|t| t > now) {
                state.next_run_at = Some(now);
                if state.status == SyncStatus::ConsentRequired {
                    state.status = SyncStatus::Idle;
                }
                self.inner().store.put_sync_state(state).await?;
            }
        }
        Ok(())
    }

    /// Whether the scheduler runs `spec` (streams filled by imports only
    /// declare an interval of zero).
    fn fetches(&self, spec: &crate::connector::StreamSpec) -> bool {
        spec.interval() != Some(Duration::ZERO)
    }

    /// One scheduler round: runs up to the batch size of due streams, a
    /// few at once, skipping connections that are busy; unschedules
    /// streams that lost consent.
    ///
    /// # Errors
    /// Storage errors reading the due list; failures of single runs are
    /// counted, not raised.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use consentry::{Connection, ConnectionId, Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A provider API with two pages of contacts, behind a closure client.
    /// let api = http::from_fn(|req: HttpRequest| async move {
    ///     assert_eq!(req.headers()["authorization"], "Bearer ya29.token");
    ///     let body = if req.uri().query().unwrap_or("").contains("page=2") {
    ///         r#"{"data": [{"id": 3, "name": "Cy"}]}"#
    ///     } else {
    ///         r#"{"data": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}], "next": "2"}"#
    ///     };
    ///     Ok(Response::new(body.as_bytes().to_vec()))
    /// });
    /// let acme = OAuth2Connector::builder("acme".parse()?)
    ///     .authorization_url("https://acme.example/authorize".parse().unwrap())
    ///     .token_url("https://acme.example/token".parse().unwrap())
    ///     .client_id("app")
    ///     .no_client_secret()
    ///     .client_auth(consentry::connector::ClientAuth::None)
    ///     .api_base_url("https://api.acme.example".parse().unwrap())
    ///     .stream(StreamSpec::new("contacts")?.with_purposes([Purpose::new("crm_sync")?]).with_http(
    ///         HttpStream::new("/contacts", "/data", "/id")?
    ///             .with_pagination(Pagination::PageToken { param: "page".into(), pointer: "/next".into() }),
    ///     ))
    ///     .build()?;
    /// let store = MemoryStore::new();
    /// let integrations = Integrations::builder()
    ///     .store(store.clone())
    ///     .keyring(Keyring::generate()?)
    ///     .http(api)
    ///     .connector(acme)
    ///     .redirect_uri("https://app.example/cb".parse().unwrap())
    ///     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let now = SystemTime::now();
    /// # let mut c = Connection::new(ConnectionId::generate()?, user.clone(), "acme".parse()?, AccountInfo::new("a1"), now);
    /// # c.access_expires_at = Some(now + Duration::from_secs(3600));
    /// # let sealed = integrations.vault().seal(&user, &c.id, vec![CredentialUpdate::new(CredentialKind::AccessToken, "ya29.token".into())]).await?;
    /// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed)).await?;
    /// # let connection = c.id.clone();
    /// // `connection` was made by `complete_connect`; the user consents:
    /// let crm = Purpose::new("crm_sync")?;
    /// integrations.grant_consent(&user, &connection, &crm).await?;
    /// // Consent scheduled the stream to run now.
    /// let round = integrations.run_due_syncs().await?;
    /// assert_eq!((round.started, round.completed), (1, 1));
    /// assert_eq!(integrations.run_due_syncs().await?.started, 0); // next run in an hour
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_due_syncs(&self) -> Result<SchedulerReport> {
        let opts = self.sync_options().clone();
        let now = self.clock_now();
        let mut report = SchedulerReport::default();
        // Due streams grouped by connection: one task per connection runs
        // its streams one after the other.
        let mut work: Vec<(ConnectionKey, Vec<StreamRun>)> = Vec::new();
        for mut state in self
            .inner()
            .store
            .due_syncs(now, opts.scheduler_batch)
            .await?
        {
            let spec = self.connector_by_id(&state.connector).ok().and_then(|c| {
                c.streams()
                    .iter()
                    .find(|s| s.name() == state.stream)
                    .cloned()
            });
            let consented = self
                .consented_purposes(&state.user, &state.connection)
                .await?;
            let purposes = spec
                .as_ref()
                .map(|s| run_purposes(s, &consented))
                .unwrap_or_default();
            let Some(purpose) = purposes.first().cloned() else {
                state.status = SyncStatus::ConsentRequired;
                state.next_run_at = None;
                let _ = self.inner().store.put_sync_state(state).await;
                report.skipped += 1;
                continue;
            };
            let key = (state.user.clone(), state.connection.clone());
            match work.iter_mut().find(|(k, _)| *k == key) {
                Some((_, streams)) => streams.push((state.stream, purpose)),
                None => work.push((key, vec![(state.stream, purpose)])),
            }
        }
        let mut running = JoinSet::new();
        for ((user, connection), streams) in work {
            // A run of this connection is in progress (sync_now, or a
            // round still running): leave its streams to a later round.
            if self.run_lock(&user, &connection).try_lock().is_err() {
                report.skipped += streams.len() as u64;
                continue;
            }
            while running.len() >= opts.concurrency {
                add(&mut report, running.join_next().await);
            }
            report.started += streams.len() as u64;
            let this = self.clone();
            running.spawn(async move {
                let mut outcome = (0, 0);
                for (stream, purpose) in streams {
                    match this.sync_now(&user, &connection, &stream, &purpose).await {
                        Ok(_) => outcome.0 += 1,
                        Err(_) => outcome.1 += 1,
                    }
                }
                outcome
            });
        }
        while let Some(done) = running.join_next().await {
            add(&mut report, Some(done));
        }
        Ok(report)
    }

    /// The scheduler loop: [`Integrations::run_due_syncs`] every tick
    /// (default 5 s), forever. Spawn it; drop or abort it to stop (every
    /// page is stored atomically with its cursor, so stopping at any point
    /// loses nothing; a lease it held expires on its own).
    ///
    /// Needs a Tokio runtime with time enabled.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let integrations = consentry::integrations::doc_support::integrations()?;
    /// let scheduler = tokio::spawn(integrations.scheduler()); // in the host, at startup
    /// tokio::task::yield_now().await; // a first round: nothing is due yet
    /// scheduler.abort(); // stopping at any point loses nothing
    /// assert!(scheduler.await.unwrap_err().is_cancelled());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn scheduler(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                let _ = this.run_due_syncs().await;
                tokio::time::sleep(this.sync_options().scheduler_tick).await;
            }
        }
    }
}

fn add(
    report: &mut SchedulerReport,
    done: Option<std::result::Result<(u64, u64), tokio::task::JoinError>>,
) {
    match done {
        Some(Ok((completed, failed))) => {
            report.completed += completed;
            report.failed += failed;
        }
        Some(Err(_)) => report.failed += 1,
        None => {}
    }
}
