//! One run of one stream: consent, locks, the page loop, the outcome.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::transport::sync_event;
use super::{Authorized, SyncReport};
use crate::connection::Connection;
use crate::connector::{FetchContext, StreamSpec};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::integrations::Integrations;
use crate::records::Record;
use crate::store::{PageWrite, SyncState, SyncStatus};

/// How many times one run may start over (a provider answering `reset`
/// again and again).
const MAX_RESETS: u32 = 3;

/// The stream's purposes that have consent now.
pub(crate) fn run_purposes(spec: &StreamSpec, consented: &[Purpose]) -> Vec<Purpose> {
    let mut out: Vec<Purpose> = spec
        .purposes()
        .iter()
        .filter(|p| consented.contains(p))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Starts a sync from scratch: a new generation, no cursor.
fn start_over(state: &mut SyncState, purposes: &[Purpose]) {
    state.generation += 1;
    state.full_sync = true;
    state.cursor = None;
    state.purposes = purposes.to_vec();
}

fn short(e: &Error) -> String {
    e.to_string().chars().take(300).collect()
}

impl Integrations {
    /// The connection, the stream spec and the consented purposes, after
    /// checking that `stream` exists, serves `purpose`, and that the user
    /// consented to it.
    async fn consented_stream(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
    ) -> Result<(Connection, StreamSpec, Vec<Purpose>)> {
        let c = self.connection(user, connection).await?;
        let connector = self.connector_by_id(&c.connector)?.clone();
        let spec = connector
            .streams()
            .iter()
            .find(|s| s.name() == stream)
            .cloned()
            .ok_or(Error::NotFound { what: "stream" })?;
        if !spec.purposes().contains(purpose) {
            return Err(Error::invalid(
                "purpose",
                format!("stream `{stream}` does not serve `{purpose}`"),
            ));
        }
        let consented = self.consented_purposes(user, connection).await?;
        if !consented.contains(purpose) {
            return Err(Error::ConsentRequired {
                purpose: purpose.clone(),
            });
        }
        Ok((c, spec, consented))
    }

    /// Runs `stream` of `connection` now, for `purpose` (which must have
    /// consent): fetches pages from the saved cursor until the stream is
    /// caught up or the run's time budget is spent, storing each page with
    /// its cursor in one transaction. The records are held for every
    /// purpose of the stream that has consent.
    ///
    /// Waits while another run of the same connection is in progress in
    /// this process.
    ///
    /// # Errors
    /// [`Error::NotFound`] (no such connection or stream),
    /// [`Error::InvalidInput`] (the stream does not serve `purpose`),
    /// [`Error::ConsentRequired`], [`Error::ReauthRequired`],
    /// [`Error::RateLimited`] (resumes after the wait),
    /// [`Error::ProviderUnavailable`] (the provider's circuit is open),
    /// [`Error::Conflict`] (another process runs this connection), provider
    /// and storage errors. The stream's state records the outcome either
    /// way.
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
    /// let report = integrations.sync_now(&user, &connection, "contacts", &crm).await?;
    /// assert_eq!(report.status, consentry::store::SyncStatus::Ok);
    /// // Without consent, a stream does not run.
    /// integrations.revoke_consent(&user, &connection, &crm).await?;
    /// assert!(integrations.sync_now(&user, &connection, "contacts", &crm).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn sync_now(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
    ) -> Result<SyncReport> {
        let (c, spec, consented) = self
            .consented_stream(user, connection, stream, purpose)
            .await?;
        if !c.status.is_usable() {
            return Err(Error::ReauthRequired {
                connection: connection.clone(),
            });
        }
        let lock = self.run_lock(user, connection);
        let _held = lock.lock().await;
        let lease = self.acquire_sync_lease(user, connection).await?;
        let result = self
            .run_stream(user, connection, &c.connector, &spec, purpose, &consented)
            .await;
        self.release_sync_lease(lease).await;
        let state = self
            .inner()
            .store
            .get_sync_state(user, connection, stream)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                SyncState::new(
                    user.clone(),
                    connection.clone(),
                    c.connector.clone(),
                    stream,
                )
            });
        match &result {
            Ok(report) => sync_event(
                self,
                EventKind::SyncCompleted,
                user,
                connection,
                &c.connector,
                stream,
                Some(report.status.as_str().to_owned()),
            ),
            Err(e) => {
                self.record_sync_failure(state, e).await;
                sync_event(
                    self,
                    EventKind::SyncFailed,
                    user,
                    connection,
                    &c.connector,
                    stream,
                    Some(short(e)),
                );
            }
        }
        result
    }

    /// The page loop.
    async fn run_stream(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        connector_id: &crate::ids::ConnectorId,
        spec: &StreamSpec,
        purpose: &Purpose,
        consented: &[Purpose],
    ) -> Result<SyncReport> {
        let opts = self.sync_options().clone();
        let connector = self.connector_by_id(connector_id)?.clone();
        let started = self.clock_now();
        let deadline = started + opts.run_budget;
        let purposes = run_purposes(spec, consented);
        let mut state = self
            .inner()
            .store
            .get_sync_state(user, connection, spec.name())
            .await?
            .unwrap_or_else(|| {
                SyncState::new(
                    user.clone(),
                    connection.clone(),
                    connector_id.clone(),
                    spec.name(),
                )
            });
        let resumable = state.cursor.is_some() || state.full_sync;
        if !resumable || !purposes.iter().all(|p| state.purposes.contains(p)) {
            start_over(&mut state, &purposes);
        }
        state.last_run_at = Some(started);
        let settings = self.settings(user, connection).await?;
        let transport = Arc::new(Authorized {
            integrations: self.clone(),
            user: user.clone(),
            connection: connection.clone(),
            connector: connector_id.clone(),
            purpose: purpose.clone(),
            scopes: spec.required_scopes().to_vec(),
            deadline: Some(deadline),
        });
        let ctx = FetchContext::new(transport, Some(purpose.clone()), settings.clone(), started);
        let mut report = SyncReport {
            connection: connection.clone(),
            stream: spec.name().to_owned(),
            status: SyncStatus::Partial,
            pages: 0,
            upserted: 0,
            deleted: 0,
            swept: 0,
            purposes: purposes.clone(),
        };
        let mut resets = 0;
        let mut fetched = Some(connector.fetch(&ctx, spec, state.cursor.as_deref()).await);
        loop {
            let page = fetched
                .take()
                .ok_or(Error::Internal("a page was expected"))??;
            report.pages += 1;
            if page.reset {
                resets += 1;
                if resets > MAX_RESETS {
                    return Err(Error::InvalidResponse {
                        what: "stream page",
                        reason: "the provider asked to start over repeatedly".into(),
                    });
                }
                start_over(&mut state, &purposes);
                fetched = Some(connector.fetch(&ctx, spec, state.cursor.as_deref()).await);
                continue;
            }
            if page.has_more && page.next_cursor.is_none() {
                return Err(Error::InvalidResponse {
                    what: "stream page",
                    reason: "more pages announced without a cursor".into(),
                });
            }
            let now = self.clock_now();
            let finished = !page.has_more;
            let sweep = finished && state.full_sync;
            state.cursor = page.next_cursor;
            if finished {
                state.full_sync = false;
                state.status = SyncStatus::Ok;
                state.last_success_at = Some(now);
                state.last_error = None;
                state.consecutive_failures = 0;
                state.next_run_at = Some(now + self.interval_of(spec, &settings));
            } else {
                state.status = SyncStatus::Partial;
                state.next_run_at = Some(now);
            }
            let mut write = PageWrite::new(state.clone(), page.records, purposes.clone(), now);
            write.deleted = page.deleted;
            write.sweep = sweep;
            let stop = finished || now >= deadline || report.pages >= opts.max_pages;
            let applied = if stop {
                self.inner().store.apply_page(write).await?
            } else {
                // Store this page (with its cursor) while the next one is
                // fetched: a failure of either leaves the store at a page
                // boundary.
                let (applied, next) = tokio::join!(
                    self.inner().store.apply_page(write),
                    connector.fetch(&ctx, spec, state.cursor.as_deref()),
                );
                fetched = Some(next);
                applied?
            };
            report.upserted += applied.upserted;
            report.deleted += applied.deleted;
            report.swept += applied.swept;
            if finished {
                report.status = SyncStatus::Ok;
                return Ok(report);
            }
            if stop {
                return Ok(report);
            }
        }
    }

    /// How often a stream runs: the connection's `sync_interval_minutes`
    /// setting, else the stream's interval, else the default.
    fn interval_of(
        &self,
        spec: &StreamSpec,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Duration {
        settings
            .get("sync_interval_minutes")
            .and_then(serde_json::Value::as_u64)
            .map(|m| Duration::from_secs(m.min(525_600) * 60))
            .or(spec.interval())
            .unwrap_or(self.sync_options().default_interval)
    }

    /// Records a failed run in the stream's state.
    async fn record_sync_failure(&self, mut state: SyncState, e: &Error) {
        let now = self.clock_now();
        let opts = self.sync_options();
        let (status, next) = match e {
            Error::RateLimited { retry_after } => (
                SyncStatus::RateLimited,
                Some(now + retry_after.unwrap_or(opts.backoff_max)),
            ),
            Error::ProviderUnavailable { retry_after, .. } => (
                SyncStatus::Degraded,
                Some(now + retry_after.unwrap_or(opts.breaker_cooldown)),
            ),
            Error::ReauthRequired { .. } => (SyncStatus::ReauthRequired, None),
            Error::ConsentRequired { .. } => (SyncStatus::ConsentRequired, None),
            Error::NotFound { what: "connection" } => return,
            _ => {
                let failures = state.consecutive_failures.saturating_add(1);
                let wait = super::full_jitter(
                    failures,
                    opts.backoff_base * 4,
                    Duration::from_secs(6 * 3600),
                )
                .max(opts.backoff_base);
                (SyncStatus::Failed, Some(now + wait))
            }
        };
        if status == SyncStatus::Failed {
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        }
        state.status = status;
        state.last_error = Some(short(e));
        state.next_run_at = next;
        let _ = self.inner().store.put_sync_state(state).await;
    }

    /// Stores `records` as the complete content of `stream` for `purpose`
    /// (a file import such as the Goodreads library export): one
    /// transaction, all or nothing; records of the stream not in `records`
    /// are deleted.
    ///
    /// # Errors
    /// [`Error::NotFound`] (no such connection or stream),
    /// [`Error::InvalidInput`] (the stream does not serve `purpose`),
    /// [`Error::ConsentRequired`], storage errors. Nothing is stored then.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// let more = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n2,Emma,Jane Austen,,4,read,,classics\n";
    /// let report = integrations
    ///     .import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(more.as_bytes())?)
    ///     .await?;
    /// assert_eq!((report.upserted, report.swept), (1, 1)); // Emma replaces Dune
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn import_records(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
        records: Vec<Record>,
    ) -> Result<SyncReport> {
        let (c, spec, consented) = self
            .consented_stream(user, connection, stream, purpose)
            .await?;
        let purposes = run_purposes(&spec, &consented);
        let lock = self.run_lock(user, connection);
        let _held = lock.lock().await;
        let mut state = self
            .inner()
            .store
            .get_sync_state(user, connection, stream)
            .await?
            .unwrap_or_else(|| {
                SyncState::new(
                    user.clone(),
                    connection.clone(),
                    c.connector.clone(),
                    stream,
                )
            });
        start_over(&mut state, &purposes);
        let now: SystemTime = self.clock_now();
        state.full_sync = false;
        state.status = SyncStatus::Ok;
        state.last_run_at = Some(now);
        state.last_success_at = Some(now);
        state.last_error = None;
        state.next_run_at = None;
        let mut write = PageWrite::new(state, records, purposes.clone(), now);
        write.sweep = true;
        let applied = self.inner().store.apply_page(write).await?;
        Ok(SyncReport {
            connection: connection.clone(),
            stream: stream.to_owned(),
            status: SyncStatus::Ok,
            pages: 1,
            upserted: applied.upserted,
            deleted: 0,
            swept: applied.swept,
            purposes,
        })
    }
}
