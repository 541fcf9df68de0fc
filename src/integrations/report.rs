//! Transparency and erasure: what is held about a user, for which
//! purposes, who read it; and erasing all of it.

use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{DisconnectReport, Integrations};
use crate::connection::Connection;
use crate::error::Result;
use crate::ids::{Purpose, UserId};
use crate::store::{AccessLogEntry, ConsentEntry, SyncState, Tombstone, UserErased};

/// One purpose of a connection: whether it has consent now, and every
/// change of it.
///
/// ```
/// // Part of a `TransparencyReport` (see `Integrations::report`).
/// fn show(r: &consentry::integrations::PurposeReport) -> String { serde_json::to_string(r).unwrap() }
/// # let _ = show;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PurposeReport {
    /// The purpose.
    pub purpose: Purpose,
    /// Whether the user consents now.
    pub consented: bool,
    /// The ledger entries for it, oldest first.
    pub history: Vec<ConsentEntry>,
}

/// One stream of a connection: how its syncs go and how many records are
/// held per purpose.
///
/// ```
/// // Part of a `TransparencyReport` (see `Integrations::report`).
/// fn show(r: &consentry::integrations::StreamReport) -> String { serde_json::to_string(r).unwrap() }
/// # let _ = show;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StreamReport {
    /// The stream.
    pub stream: String,
    /// Its sync state (status, last run, next run), if it ever ran.
    pub sync: Option<SyncState>,
    /// Records held, per purpose (a record serving two purposes counts
    /// for each).
    pub records_by_purpose: Vec<(Purpose, u64)>,
}

/// One connection in a [`TransparencyReport`].
///
/// ```
/// // Part of a `TransparencyReport` (see `Integrations::report`).
/// fn show(r: &consentry::integrations::ConnectionReport) -> String { serde_json::to_string(r).unwrap() }
/// # let _ = show;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectionReport {
    /// The connection: account, granted scopes, status and health.
    pub connection: Connection,
    /// The connector's display name.
    pub connector_name: Option<String>,
    /// Every purpose the connector's streams and actions serve or the
    /// ledger mentions.
    pub purposes: Vec<PurposeReport>,
    /// Every stream declared or holding records.
    pub streams: Vec<StreamReport>,
    /// Every read of this connection's records, oldest first.
    pub access_log: Vec<AccessLogEntry>,
}

/// What is held about a user, for which purposes, and every access to it.
///
/// ```no_run
/// # async fn run(integrations: consentry::Integrations, user: consentry::UserId) -> consentry::Result<()> {
/// let report = integrations.report(&user).await?;
/// for c in &report.connections {
///     for read in &c.access_log {
///         println!("{} read {} records of {} for {}", read.component, read.count, read.stream, read.purpose);
///     }
/// }
/// println!("{}", serde_json::to_string_pretty(&report).unwrap());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TransparencyReport {
    /// Whose.
    pub user: UserId,
    /// When it was made.
    #[serde(with = "crate::records::millis")]
    pub generated_at: SystemTime,
    /// Each connection.
    pub connections: Vec<ConnectionReport>,
}

/// What [`Integrations::erase_user`] did.
///
/// ```
/// // Returned by `Integrations::erase_user` (see its example).
/// fn shredded(r: &consentry::integrations::ErasureReport) -> bool { r.data_key_destroyed }
/// # let _ = shredded;
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ErasureReport {
    /// Each connection's disconnect (revocations at the providers).
    pub disconnected: Vec<DisconnectReport>,
    /// What the store deleted after the disconnects.
    pub deleted: UserErased,
    /// Whether the user's data key was destroyed (crypto-shredding).
    pub data_key_destroyed: bool,
    /// The tombstone left behind.
    pub tombstone: Tombstone,
}

/// The tombstone subject of a user: hex SHA-256 of tenant and id,
/// length-prefixed.
pub(crate) fn subject(user: &UserId) -> String {
    let mut h = Sha256::new();
    for part in [user.tenant().unwrap_or(""), user.user()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Integrations {
    /// The transparency report of `user`: each connection with its account,
    /// granted scopes, status and health, each purpose with its consent
    /// state and history, records held per stream and purpose, and the log
    /// of every read made through [`Integrations::records`].
    ///
    /// # Errors
    /// Storage errors.
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
    /// integrations.records(&user, &conn.id, "library", &matching).await?;
    /// let report = integrations.report(&user).await?;
    /// let c = &report.connections[0];
    /// assert_eq!(c.connection.account.id, "gr-1");
    /// assert!(c.purposes[0].consented);
    /// assert_eq!(c.streams[0].records_by_purpose, [(matching.clone(), 1)]);
    /// assert_eq!(c.access_log[0].purpose, matching);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn report(&self, user: &UserId) -> Result<TransparencyReport> {
        let store = &self.inner.store;
        let connections = store.list_connections(user).await?;
        let history = store.consent_history(user, None).await?;
        let counts = store.record_counts(user).await?;
        let states = store.list_sync_states(user).await?;
        let log = store.access_log(user).await?;
        let mut out = Vec::with_capacity(connections.len());
        for c in connections {
            let connector = self.connector(&c.connector).ok();
            let consented = store.consented_purposes(user, &c.id).await?;
            let mut purposes: Vec<Purpose> = history
                .iter()
                .filter(|e| e.connection == c.id)
                .map(|e| e.purpose.clone())
                .collect();
            let mut streams: Vec<String> = Vec::new();
            if let Some(k) = connector {
                for s in k.streams() {
                    purposes.extend(s.purposes().iter().cloned());
                    streams.push(s.name().to_owned());
                }
                purposes.extend(k.actions().iter().map(|a| a.purpose().clone()));
            }
            streams.extend(
                counts
                    .iter()
                    .filter(|n| n.connection == c.id)
                    .map(|n| n.stream.clone()),
            );
            streams.sort();
            streams.dedup();
            purposes.sort();
            purposes.dedup();
            out.push(ConnectionReport {
                connector_name: connector.map(|k| k.info().name.clone()),
                purposes: purposes
                    .into_iter()
                    .map(|p| PurposeReport {
                        consented: consented.contains(&p),
                        history: history
                            .iter()
                            .filter(|e| e.connection == c.id && e.purpose == p)
                            .cloned()
                            .collect(),
                        purpose: p,
                    })
                    .collect(),
                streams: streams
                    .into_iter()
                    .map(|s| StreamReport {
                        sync: states
                            .iter()
                            .find(|st| st.connection == c.id && st.stream == s)
                            .cloned(),
                        records_by_purpose: counts
                            .iter()
                            .filter(|n| n.connection == c.id && n.stream == s)
                            .map(|n| (n.purpose.clone(), n.count))
                            .collect(),
                        stream: s,
                    })
                    .collect(),
                access_log: log
                    .iter()
                    .filter(|e| e.connection == c.id)
                    .cloned()
                    .collect(),
                connection: c,
            });
        }
        Ok(TransparencyReport {
            user: user.clone(),
            generated_at: self.now(),
            connections: out,
        })
    }

    /// Erases `user`: disconnects every connection (revoking tokens at the
    /// providers), deletes all their records, consent, logs, settings and
    /// pending work, leaves a minimal [`Tombstone`] (a hash of their id,
    /// when, how much), and crypto-shreds their data key so their sealed
    /// tokens are unreadable everywhere, backups included.
    ///
    /// # Errors
    /// Storage errors; calling it again finishes the job.
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
    /// let erased = integrations.erase_user(&user).await?;
    /// assert_eq!(erased.tombstone.records, 1);
    /// assert!(integrations.connections(&user).await?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn erase_user(&self, user: &UserId) -> Result<ErasureReport> {
        let result = self.erase_user_unaudited(user).await;
        let mut event = self
            .audit_user("user.erased", user, None)
            .outcome(crate::audit::Outcome::of(&result));
        if let Ok(r) = &result {
            event = event
                .detail("connections", r.disconnected.len())
                .detail("data_key_destroyed", r.data_key_destroyed);
        }
        self.audit_durable(event).await;
        result
    }

    async fn erase_user_unaudited(&self, user: &UserId) -> Result<ErasureReport> {
        let mut disconnected = Vec::new();
        for c in self.inner.store.list_connections(user).await? {
            // A failed disconnect still ends in the deletion below.
            if let Ok(r) = self.disconnect(user, &c.id).await {
                disconnected.push(r);
            }
        }
        let records: u64 = disconnected.iter().map(|r| r.records_deleted).sum();
        let tombstone = Tombstone::new(
            subject(user),
            self.now(),
            disconnected.len() as u64,
            records,
        );
        let mut deleted = self
            .inner
            .store
            .erase_user_data(user, tombstone.clone())
            .await?;
        deleted.records += records;
        let shredded = self.inner.vault.erase_user(user).await?;
        Ok(ErasureReport {
            disconnected,
            deleted,
            data_key_destroyed: shredded.data_key_destroyed,
            tombstone,
        })
    }

    /// The tombstone of `user`, if they were erased.
    ///
    /// # Errors
    /// Storage errors.
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
    /// assert!(integrations.erasure_tombstone(&user).await?.is_none());
    /// integrations.erase_user(&user).await?;
    /// assert!(integrations.erasure_tombstone(&user).await?.is_some());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn erasure_tombstone(&self, user: &UserId) -> Result<Option<Tombstone>> {
        self.inner.store.tombstone(&subject(user)).await
    }
}
