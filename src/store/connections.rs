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
    pub fn create(connection: Connection) -> Self {
        Self {
            connection,
            expected_revision: None,
            credentials: Vec::new(),
        }
    }

    /// Updates `connection` if its stored revision is still
    /// `connection.revision`.
    pub fn update(connection: Connection) -> Self {
        let expected = connection.revision;
        Self {
            connection,
            expected_revision: Some(expected),
            credentials: Vec::new(),
        }
    }

    /// Adds credentials to write in the same transaction.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Vec<CredentialWrite>) -> Self {
        self.credentials = credentials;
        self
    }
}

/// What [`ConnectionStore::write_connection`] stored.
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
    pub fn new(revision: u64, versions: Vec<Version>) -> Self {
        Self { revision, versions }
    }
}

/// Everything `access_token` needs, read in one go: the connection, whether
/// the purpose has consent, and the sealed credential.
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
    pub fn new(kind: CredentialKind, connector: ConnectorId, at: SystemTime) -> Self {
        Self {
            kind,
            connector,
            next_attempt_at: at,
        }
    }
}

/// What [`ConnectionStore::delete_connection`] removed.
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
#[async_trait]
pub trait ConnectionStore: Debug + Send + Sync + 'static {
    /// Creates or updates a connection and writes its credentials, in one
    /// transaction. Every credential must belong to the connection.
    ///
    /// Errors: `Conflict` if the expected revision (or absence) does not
    /// hold, or a credential's expected version does not; nothing is
    /// written then.
    async fn write_connection(&self, write: ConnectionWrite) -> Result<ConnectionWritten>;

    /// The connection `id` of `user`.
    async fn get_connection(&self, user: &UserId, id: &ConnectionId) -> Result<Option<Connection>>;

    /// The connection of `user` to `account_id` at `connector`, if any.
    async fn find_connection(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account_id: &str,
    ) -> Result<Option<Connection>>;

    /// Every connection of `user`, ordered by creation time then id.
    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>>;

    /// Up to `limit` connections holding a refresh token whose access token
    /// expires before `before`, soonest first (for the proactive refresher).
    async fn connections_expiring(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<Connection>>;

    /// The connection, the consent state of `purpose` and the `kind`
    /// credential, read consistently in one call.
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
    async fn delete_connection(
        &self,
        user: &UserId,
        id: &ConnectionId,
        queue: Vec<QueuedRevocation>,
    ) -> Result<ConnectionDeleted>;
}

/// A queued revocation, with its sealed token.
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
#[async_trait]
pub trait RevocationStore: Debug + Send + Sync + 'static {
    /// Up to `limit` entries due at `now`, oldest due first.
    async fn due_revocations(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>>;

    /// Every queued entry of `user`.
    async fn user_revocations(&self, user: &UserId) -> Result<Vec<PendingRevocation>>;

    /// Records a failed attempt: `attempts` and the next attempt time.
    async fn reschedule_revocation(
        &self,
        id: u64,
        attempts: u32,
        next_attempt_at: SystemTime,
    ) -> Result<()>;

    /// Removes an entry (revoked, or given up); returns whether it existed.
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
