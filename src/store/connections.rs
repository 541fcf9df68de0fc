//! Storage for connections ([`ConnectionStore`]) and for tokens waiting to
//! be revoked at their provider ([`RevocationStore`]).
//!
//! Every change that touches a connection and its credentials is one call,
//! and so one transaction: creating a connection stores its row and its
//! sealed tokens together; a refresh stores the new tokens and the new
//! expiry together; a disconnect deletes the row, the tokens and the
//! consent state and queues what still has to be revoked, together.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;

use super::vault::{CredentialWrite, StoredCredential};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::vault::{CredentialKind, Version};

/// A connection row to create or update, with credentials to store in the
/// same transaction.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{Connection, ConnectionId, ConnectorId, UserId};
/// use consentry::connection::AccountInfo;
/// use consentry::store::ConnectionWrite;
/// let c = Connection::new(ConnectionId::new("c1")?, UserId::new("u1")?, ConnectorId::new("google")?,
///                         AccountInfo::new("42"), SystemTime::UNIX_EPOCH);
/// let create = ConnectionWrite::create(c);
/// assert_eq!(create.expected_revision, None);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionWrite {
    /// The connection's new state. Its `revision` is ignored: the store
    /// assigns the next one.
    pub connection: Connection,
    /// `None`: create; fails with `Conflict` if the id, or the same account
    /// at the same connector for the same user, exists. `Some(r)`: update,
    /// only if the stored revision is `r`.
    pub expected_revision: Option<u64>,
    /// Credentials of this connection to write in the same transaction.
    pub credentials: Vec<CredentialWrite>,
}

impl ConnectionWrite {
    /// Creates `connection`.
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// let written = store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// assert_eq!(written.revision, 1);
    /// assert!(store.write_connection(ConnectionWrite::create(c)).await.is_err()); // it exists now
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn create(connection: Connection) -> Self {
        Self {
            connection,
            expected_revision: None,
            credentials: Vec::new(),
        }
    }

    /// Updates `connection` if its stored revision is still
    /// `connection.revision`.
    ///
    /// ```
    /// use consentry::Error;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// let mut c = store.get_connection(&c.user, &c.id).await?.expect("created");
    /// c.scopes = vec!["openid".parse()?];
    /// assert_eq!(store.write_connection(ConnectionWrite::update(c.clone())).await?.revision, 2);
    /// // Writing again from the same, now stale, revision loses:
    /// let stale = store.write_connection(ConnectionWrite::update(c)).await;
    /// assert!(matches!(stale, Err(Error::Conflict { expected: 1, found: 2, .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn update(connection: Connection) -> Self {
        let expected = connection.revision;
        Self {
            connection,
            expected_revision: Some(expected),
            credentials: Vec::new(),
        }
    }

    /// Adds credentials to write in the same transaction.
    ///
    /// ```
    /// use consentry::store::{CredentialKey, CredentialStore, CredentialWrite};
    /// use consentry::vault::{CredentialKind, Version};
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// let key = CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::AccessToken);
    /// let token = CredentialWrite::new(key.clone(), vec![1, 2, 3]); // a sealed envelope
    /// let write = ConnectionWrite::create(c).with_credentials(vec![token]);
    /// assert_eq!(store.write_connection(write).await?.versions, [Version::new(1)]);
    /// assert!(store.get_credential(&key).await?.is_some()); // written in the same transaction
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn with_credentials(mut self, credentials: Vec<CredentialWrite>) -> Self {
        self.credentials = credentials;
        self
    }
}

/// What [`ConnectionStore::write_connection`] stored.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// let written = store.write_connection(ConnectionWrite::create(c)).await?;
/// assert_eq!(written.revision, 1);
/// assert!(written.versions.is_empty()); // no credentials in this write
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionWritten {
    /// The connection's new revision.
    pub revision: u64,
    /// The new versions of the credentials, in order.
    pub versions: Vec<Version>,
}

impl ConnectionWritten {
    /// Builds the outcome (for store implementations).
    ///
    /// ```
    /// use consentry::store::ConnectionWritten;
    /// use consentry::vault::Version;
    /// let w = ConnectionWritten::new(3, vec![Version::new(2)]);
    /// assert_eq!((w.revision, w.versions), (3, vec![Version::new(2)]));
    /// ```
    pub fn new(revision: u64, versions: Vec<Version>) -> Self {
        Self { revision, versions }
    }
}

/// Everything `access_token` needs, read in one go: the connection, whether
/// the purpose has consent, and the sealed credential.
///
/// ```
/// use consentry::vault::CredentialKind;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
/// let view = store.access_view(&c.user, &c.id, &"reminders".parse()?, CredentialKind::AccessToken).await?;
/// let view = view.expect("the connection exists");
/// assert!(!view.consented); // no consent recorded yet
/// assert!(view.credential.is_none()); // and no access token stored
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccessView {
    /// The connection.
    pub connection: Connection,
    /// Whether the user's current consent covers the purpose.
    pub consented: bool,
    /// The sealed credential of the requested kind, if stored.
    pub credential: Option<StoredCredential>,
}

impl AccessView {
    /// Builds a view (for store implementations).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::{Connection, connection::AccountInfo};
    /// use consentry::store::AccessView;
    /// let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?,
    ///                         AccountInfo::new("42"), UNIX_EPOCH);
    /// let view = AccessView::new(c, true, None);
    /// assert!(view.consented && view.credential.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        connection: Connection,
        consented: bool,
        credential: Option<StoredCredential>,
    ) -> Self {
        Self {
            connection,
            consented,
            credential,
        }
    }
}

/// A token to revoke at its provider later, queued when a disconnect could
/// not reach the provider.
///
/// ```
/// use consentry::store::{QueuedRevocation, RevocationStore};
/// use consentry::vault::CredentialKind;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
/// // Not reachable now: queue the access token for a later revocation attempt.
/// let retry_at = UNIX_EPOCH + Duration::from_secs(60);
/// let queue = vec![QueuedRevocation::new(CredentialKind::AccessToken, c.connector.clone(), retry_at)];
/// let deleted = store.delete_connection(&c.user, &c.id, queue).await?;
/// assert!(deleted.queued.is_empty()); // nothing queued: no access token was stored
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedRevocation {
    /// Which credential kind of the deleted connection to move to the queue.
    pub kind: CredentialKind,
    /// The connector to revoke at.
    pub connector: ConnectorId,
    /// First retry.
    pub next_attempt_at: SystemTime,
}

impl QueuedRevocation {
    /// Queues `kind` for revocation at `connector`, first retry at `at`.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::store::QueuedRevocation;
    /// use consentry::vault::CredentialKind;
    /// let q = QueuedRevocation::new(CredentialKind::RefreshToken, "google".parse()?, UNIX_EPOCH);
    /// assert_eq!((q.kind, q.next_attempt_at), (CredentialKind::RefreshToken, UNIX_EPOCH));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(kind: CredentialKind, connector: ConnectorId, at: SystemTime) -> Self {
        Self {
            kind,
            connector,
            next_attempt_at: at,
        }
    }
}

/// What [`ConnectionStore::delete_connection`] removed.
///
/// ```
/// use consentry::store::{ConsentEntry, ConsentStore};
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
/// # store.append_consent(ConsentEntry::new(c.user.clone(), c.id.clone(), "reminders".parse()?, true, "user:alice", "1", UNIX_EPOCH)).await?;
/// let deleted = store.delete_connection(&c.user, &c.id, vec![]).await?;
/// assert!(deleted.connection);
/// assert_eq!((deleted.credentials, deleted.consent_entries), (0, 1));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionDeleted {
    /// Whether the connection row existed.
    pub connection: bool,
    /// Credential rows deleted (including those moved to the queue).
    pub credentials: u64,
    /// Consent ledger entries deleted.
    pub consent_entries: u64,
    /// Records deleted.
    pub records: u64,
    /// Stream sync states (cursors) deleted.
    pub sync_states: u64,
    /// Access log entries deleted.
    pub access_log_entries: u64,
    /// Ids of the revocations queued.
    pub queued: Vec<u64>,
}

/// Checks that every credential of a connection write belongs to it.
pub(crate) fn check_credentials_belong(write: &ConnectionWrite) -> Result<()> {
    let c = &write.connection;
    if write
        .credentials
        .iter()
        .any(|w| w.key.user != c.user || w.key.connection != c.id)
    {
        return Err(Error::invalid(
            "connection write",
            "a credential belongs to another user or connection",
        ));
    }
    Ok(())
}

/// Connections and their atomic changes.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// store.write_connection(ConnectionWrite::create(c.clone())).await?;
/// let listed = store.list_connections(&c.user).await?;
/// assert_eq!(listed.len(), 1);
/// assert_eq!(listed[0].revision, 1); // assigned by the store
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ConnectionStore: Debug + Send + Sync + 'static {
    /// Creates or updates a connection and writes its credentials, in one
    /// transaction. Every credential must belong to the connection.
    ///
    /// Errors: `Conflict` if the expected revision (or absence) does not
    /// hold, or a credential's expected version does not; nothing is
    /// written then.
    ///
    /// ```
    /// use consentry::Error;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// assert_eq!(store.write_connection(ConnectionWrite::create(c.clone())).await?.revision, 1);
    /// let again = store.write_connection(ConnectionWrite::create(c)).await;
    /// assert!(matches!(again, Err(Error::Conflict { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn write_connection(&self, write: ConnectionWrite) -> Result<ConnectionWritten>;

    /// The connection `id` of `user`.
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// assert_eq!(store.get_connection(&c.user, &c.id).await?.map(|c| c.revision), Some(1));
    /// // Only its owner sees it:
    /// assert!(store.get_connection(&"mallory".parse()?, &c.id).await?.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn get_connection(&self, user: &UserId, id: &ConnectionId) -> Result<Option<Connection>>;

    /// The connection of `user` to `account_id` at `connector`, if any.
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// let found = store.find_connection(&c.user, &c.connector, "42").await?;
    /// assert_eq!(found.map(|f| f.id), Some(c.id));
    /// assert!(store.find_connection(&c.user, &c.connector, "43").await?.is_none());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn find_connection(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account_id: &str,
    ) -> Result<Option<Connection>>;

    /// Every connection of `user`, ordered by creation time then id.
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// let later = Connection::new("c0".parse()?, c.user.clone(), "github".parse()?,
    ///                             AccountInfo::new("7"), UNIX_EPOCH + Duration::from_secs(1));
    /// store.write_connection(ConnectionWrite::create(later)).await?;
    /// let listed = store.list_connections(&c.user).await?;
    /// let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    /// assert_eq!(ids, ["c1", "c0"]); // by creation time, then id
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>>;

    /// Up to `limit` connections that are `Active` or `Degraded`, hold a
    /// refresh token, and have an access token expiring before `before`,
    /// soonest first (for the proactive refresher).
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// let expires = UNIX_EPOCH + Duration::from_secs(3600);
    /// # let mut c = c;
    /// c.has_refresh_token = true;
    /// c.access_expires_at = Some(expires);
    /// store.write_connection(ConnectionWrite::create(c)).await?;
    /// assert_eq!(store.connections_expiring(expires + Duration::from_secs(1), 10).await?.len(), 1);
    /// assert!(store.connections_expiring(expires, 10).await?.is_empty()); // strictly before
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn connections_expiring(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<Connection>>;

    /// The connection, the consent state of `purpose` and the `kind`
    /// credential, read consistently in one call.
    ///
    /// ```
    /// use consentry::store::{ConsentEntry, ConsentStore};
    /// use consentry::vault::CredentialKind;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # store.write_connection(ConnectionWrite::create(c.clone())).await?;
    /// let purpose = "reminders".parse()?;
    /// let view = store.access_view(&c.user, &c.id, &purpose, CredentialKind::AccessToken).await?;
    /// assert!(!view.expect("exists").consented);
    /// let grant = ConsentEntry::new(c.user.clone(), c.id.clone(), purpose.clone(), true,
    ///                               "user:alice", "1", UNIX_EPOCH);
    /// store.append_consent(grant).await?;
    /// let view = store.access_view(&c.user, &c.id, &purpose, CredentialKind::AccessToken).await?;
    /// assert!(view.expect("exists").consented);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn access_view(
        &self,
        user: &UserId,
        id: &ConnectionId,
        purpose: &Purpose,
        kind: CredentialKind,
    ) -> Result<Option<AccessView>>;

    /// Deletes the connection, its credentials, its consent state, its
    /// records, sync states (cursors), access log, settings and field
    /// mappings, and moves the credentials named in `queue` to the
    /// revocation queue, in one transaction.
    ///
    /// ```
    /// use consentry::store::{CredentialKey, CredentialWrite, QueuedRevocation, RevocationStore};
    /// use consentry::vault::CredentialKind;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// let key = |kind| CredentialKey::new(c.user.clone(), c.id.clone(), kind);
    /// let creds = vec![CredentialWrite::new(key(CredentialKind::AccessToken), vec![1]),
    ///                  CredentialWrite::new(key(CredentialKind::RefreshToken), vec![2])];
    /// store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(creds)).await?;
    /// let retry_at = UNIX_EPOCH + Duration::from_secs(60);
    /// let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), retry_at)];
    /// let deleted = store.delete_connection(&c.user, &c.id, queue).await?;
    /// assert_eq!((deleted.connection, deleted.credentials, deleted.queued.len()), (true, 2, 1));
    /// assert_eq!(store.user_revocations(&c.user).await?[0].envelope, [2]); // moved to the queue
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn delete_connection(
        &self,
        user: &UserId,
        id: &ConnectionId,
        queue: Vec<QueuedRevocation>,
    ) -> Result<ConnectionDeleted>;
}

/// A queued revocation, with its sealed token.
///
/// ```
/// use consentry::store::RevocationStore;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
/// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
/// # let t = UNIX_EPOCH + Duration::from_secs(60);
/// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
/// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
/// let entry = &store.user_revocations(&c.user).await?[0];
/// assert_eq!((entry.id, entry.kind, entry.attempts), (queued[0], CredentialKind::RefreshToken, 0));
/// assert_eq!(entry.envelope, [7; 8]); // still sealed
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingRevocation {
    /// Queue id.
    pub id: u64,
    /// The token's owner.
    pub user: UserId,
    /// The (deleted) connection the token belonged to; part of the
    /// envelope's associated data.
    pub connection: ConnectionId,
    /// Where to revoke it.
    pub connector: ConnectorId,
    /// What the token is.
    pub kind: CredentialKind,
    /// The sealed token, as it was stored for the connection.
    pub envelope: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Next attempt not before.
    pub next_attempt_at: SystemTime,
}

impl PendingRevocation {
    /// Builds a queue entry (for store implementations).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::store::PendingRevocation;
    /// use consentry::vault::CredentialKind;
    /// let p = PendingRevocation::new(1, "alice".parse()?, "c1".parse()?, "google".parse()?,
    ///                                CredentialKind::RefreshToken, vec![7; 8], 0, UNIX_EPOCH);
    /// assert_eq!((p.id, p.attempts), (1, 0));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        user: UserId,
        connection: ConnectionId,
        connector: ConnectorId,
        kind: CredentialKind,
        envelope: Vec<u8>,
        attempts: u32,
        next_attempt_at: SystemTime,
    ) -> Self {
        Self {
            id,
            user,
            connection,
            connector,
            kind,
            envelope,
            attempts,
            next_attempt_at,
        }
    }
}

/// Tokens waiting to be revoked at their provider.
///
/// ```
/// use consentry::store::RevocationStore;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
/// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
/// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
/// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
/// # let t = UNIX_EPOCH + Duration::from_secs(60);
/// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
/// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
/// for entry in store.due_revocations(t, 10).await? {
///     // ... open the envelope with the vault and call the provider; then:
///     assert!(store.remove_revocation(entry.id).await?);
/// }
/// assert!(store.user_revocations(&c.user).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RevocationStore: Debug + Send + Sync + 'static {
    /// Up to `limit` entries due at `now`, oldest due first.
    ///
    /// ```
    /// use consentry::store::RevocationStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
    /// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
    /// # let t = UNIX_EPOCH + Duration::from_secs(60);
    /// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
    /// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
    /// assert!(store.due_revocations(t - Duration::from_secs(1), 10).await?.is_empty()); // not yet
    /// let due = store.due_revocations(t, 10).await?;
    /// assert_eq!((due.len(), due[0].kind), (1, CredentialKind::RefreshToken));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn due_revocations(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>>;

    /// Every queued entry of `user`.
    ///
    /// ```
    /// use consentry::store::RevocationStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
    /// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
    /// # let t = UNIX_EPOCH + Duration::from_secs(60);
    /// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
    /// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
    /// assert_eq!(store.user_revocations(&c.user).await?.len(), 1);
    /// assert!(store.user_revocations(&"bob".parse()?).await?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn user_revocations(&self, user: &UserId) -> Result<Vec<PendingRevocation>>;

    /// Records a failed attempt: `attempts` and the next attempt time.
    ///
    /// ```
    /// use consentry::store::RevocationStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
    /// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
    /// # let t = UNIX_EPOCH + Duration::from_secs(60);
    /// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
    /// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
    /// store.reschedule_revocation(queued[0], 1, t + Duration::from_secs(120)).await?;
    /// assert!(store.due_revocations(t, 10).await?.is_empty()); // moved later
    /// assert_eq!(store.user_revocations(&c.user).await?[0].attempts, 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn reschedule_revocation(
        &self,
        id: u64,
        attempts: u32,
        next_attempt_at: SystemTime,
    ) -> Result<()>;

    /// Removes an entry (revoked, or given up); returns whether it existed.
    ///
    /// ```
    /// use consentry::store::RevocationStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::{Connection, connection::AccountInfo, vault::CredentialKind};
    /// # use consentry::store::{ConnectionStore, ConnectionWrite, CredentialKey, CredentialWrite, MemoryStore, QueuedRevocation};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let c = Connection::new("c1".parse()?, "alice".parse()?, "google".parse()?, AccountInfo::new("42"), UNIX_EPOCH);
    /// # let rt = CredentialWrite::new(CredentialKey::new(c.user.clone(), c.id.clone(), CredentialKind::RefreshToken), vec![7; 8]);
    /// # store.write_connection(ConnectionWrite::create(c.clone()).with_credentials(vec![rt])).await?;
    /// # let t = UNIX_EPOCH + Duration::from_secs(60);
    /// # let queue = vec![QueuedRevocation::new(CredentialKind::RefreshToken, c.connector.clone(), t)];
    /// # let queued = store.delete_connection(&c.user, &c.id, queue).await?.queued;
    /// assert!(store.remove_revocation(queued[0]).await?);
    /// assert!(!store.remove_revocation(queued[0]).await?); // already gone
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn remove_revocation(&self, id: u64) -> Result<bool>;
}

/// Implements the traits for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: ConnectionStore + ?Sized> ConnectionStore for $($seg)::+<T> {
            async fn write_connection(&self, write: ConnectionWrite) -> Result<ConnectionWritten> {
                (**self).write_connection(write).await
            }
            async fn get_connection(&self, user: &UserId, id: &ConnectionId) -> Result<Option<Connection>> {
                (**self).get_connection(user, id).await
            }
            async fn find_connection(&self, user: &UserId, connector: &ConnectorId, account_id: &str) -> Result<Option<Connection>> {
                (**self).find_connection(user, connector, account_id).await
            }
            async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>> {
                (**self).list_connections(user).await
            }
            async fn connections_expiring(&self, before: SystemTime, limit: usize) -> Result<Vec<Connection>> {
                (**self).connections_expiring(before, limit).await
            }
            async fn access_view(&self, user: &UserId, id: &ConnectionId, purpose: &Purpose, kind: CredentialKind) -> Result<Option<AccessView>> {
                (**self).access_view(user, id, purpose, kind).await
            }
            async fn delete_connection(&self, user: &UserId, id: &ConnectionId, queue: Vec<QueuedRevocation>) -> Result<ConnectionDeleted> {
                (**self).delete_connection(user, id, queue).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: RevocationStore + ?Sized> RevocationStore for $($seg)::+<T> {
            async fn due_revocations(&self, now: SystemTime, limit: usize) -> Result<Vec<PendingRevocation>> {
                (**self).due_revocations(now, limit).await
            }
            async fn user_revocations(&self, user: &UserId) -> Result<Vec<PendingRevocation>> {
                (**self).user_revocations(user).await
            }
            async fn reschedule_revocation(&self, id: u64, attempts: u32, next_attempt_at: SystemTime) -> Result<()> {
                (**self).reschedule_revocation(id, attempts, next_attempt_at).await
            }
            async fn remove_revocation(&self, id: u64) -> Result<bool> {
                (**self).remove_revocation(id).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
