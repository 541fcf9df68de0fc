//! Disconnecting: revoke at the provider (RFC 7009), delete locally, report.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::Integrations;
use crate::connection::{Connection, ConnectionStatus};
use crate::connector::OAuth2Config;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::ids::{ConnectionId, UserId};
use crate::oauth::{self, RevocableToken, RevocationOutcome};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::{
    ConnectionDeleted, ConnectionWrite, CredentialKey, PendingRevocation, QueuedRevocation,
};
use crate::vault::CredentialKind;

/// What happened to one token at the provider.
///
/// ```
/// use consentry::integrations::RevocationResult;
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Acme's revocation endpoint is down (it answers 503):
/// # let integrations = doc_support::builder()?.http(doc_support::provider(false)).build()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// let report = integrations.disconnect(&user, &conn.id).await?;
/// assert_eq!(report.refresh_token, Some(RevocationResult::Pending)); // queued, retried later
/// assert!(report.connection_deleted); // deleted locally all the same
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
#[non_exhaustive]
pub enum RevocationResult {
    /// Revoked (or already invalid) at the provider.
    Revoked,
    /// The provider could not be reached or asked to retry: the token is
    /// kept, sealed, in the revocation queue and retried by
    /// [`Integrations::maintenance`].
    Pending,
    /// The provider refused the revocation (it will not succeed by
    /// retrying); the token is deleted locally anyway.
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The token could not be revoked: the provider has no revocation
    /// endpoint, cannot revoke this kind of token
    /// (`unsupported_token_type`), or the connector is no longer
    /// configured. The token is deleted locally and stays valid at the
    /// provider until it expires.
    Unsupported,
    /// The stored token could not be decrypted (its key is missing from the
    /// keyring, or the row was altered), so it could not be sent for
    /// revocation; it is deleted locally anyway.
    Unreadable,
}

/// What [`Integrations::disconnect`] did, token by token and table by table.
///
/// ```
/// use consentry::integrations::RevocationResult;
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations = doc_support::integrations()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// # let crm = Purpose::new("crm_sync")?;
/// # integrations.grant_consent(&user, &conn.id, &crm).await?;
/// let report = integrations.disconnect(&user, &conn.id).await?;
/// assert_eq!(report.access_token, Some(RevocationResult::Revoked));
/// assert_eq!(report.credentials_deleted, 2); // the access and the refresh token
/// assert_eq!(report.consent_entries_deleted, 1);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DisconnectReport {
    /// The connection.
    pub connection: ConnectionId,
    /// The refresh token's fate, if one was held (revoked first: at most
    /// providers that ends the whole grant).
    pub refresh_token: Option<RevocationResult>,
    /// The access token's fate, if one was held.
    pub access_token: Option<RevocationResult>,
    /// Whether the connection row was deleted.
    pub connection_deleted: bool,
    /// Credential rows deleted (tokens queued for revocation included).
    pub credentials_deleted: u64,
    /// Consent ledger entries deleted.
    pub consent_entries_deleted: u64,
    /// Harvested records deleted.
    pub records_deleted: u64,
    /// Stream sync states (cursors) deleted.
    pub sync_states_deleted: u64,
    /// Access log entries deleted.
    pub access_log_entries_deleted: u64,
}

impl DisconnectReport {
    /// Whether a revocation is still pending at the provider.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // Acme's revocation endpoint is down (it answers 503):
    /// # let integrations = doc_support::builder()?.http(doc_support::provider(false)).build()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let report = integrations.disconnect(&user, &conn.id).await?;
    /// assert!(report.revocation_pending()); // the tokens wait, sealed, in the revocation queue
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn revocation_pending(&self) -> bool {
        [&self.refresh_token, &self.access_token]
            .into_iter()
            .any(|r| *r == Some(RevocationResult::Pending))
    }
}

/// How many times a queued revocation is tried before it is given up.
pub(super) const MAX_REVOCATION_ATTEMPTS: u32 = 12;

/// Waits between revocation attempts: 1 min, 2, 4, ... capped at 12 h.
pub(super) fn revocation_backoff(attempts: u32) -> Duration {
    Duration::from_secs(60)
        .saturating_mul(1u32 << attempts.min(16))
        .min(Duration::from_secs(12 * 3600))
}

impl Integrations {
    /// Disconnects: stops refreshes, revokes the refresh token and then the
    /// access token at the provider's RFC 7009 endpoint, and deletes the
    /// connection, its tokens, its consent state, its records, cursors,
    /// access log and settings locally in one transaction — even when the provider is down, in which case the
    /// tokens go, sealed, to a revocation queue retried by
    /// [`Integrations::maintenance`].
    ///
    /// ```
    /// use consentry::integrations::RevocationResult;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let report = integrations.disconnect(&user, &conn.id).await?;
    /// assert_eq!(report.refresh_token, Some(RevocationResult::Revoked)); // at Acme's RFC 7009 endpoint
    /// assert!(integrations.connections(&user).await?.is_empty());
    /// let again = integrations.disconnect(&user, &conn.id).await;
    /// assert!(matches!(again, Err(Error::NotFound { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if the connection does not exist; storage errors
    /// (nothing is deleted then, and calling again is safe).
    pub async fn disconnect(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<DisconnectReport> {
        let result = self.disconnect_unaudited(user, connection).await;
        let mut event = self
            .audit_user("connection.deleted", user, Some(connection))
            .outcome(crate::audit::Outcome::of(&result));
        if let Ok(r) = &result {
            event = event
                .detail("revocation_pending", r.revocation_pending())
                .detail("records_deleted", r.records_deleted);
        }
        self.audit_durable(event).await;
        result
    }

    async fn disconnect_unaudited(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<DisconnectReport> {
        let c = self.mark_revoked(user, connection).await?;
        let config = self.oauth2(&c.connector).ok();
        let refresh = self
            .revoke_stored(&c, config, CredentialKind::RefreshToken)
            .await?;
        let access = self
            .revoke_stored(&c, config, CredentialKind::AccessToken)
            .await?;
        let now = self.now();
        let queue: Vec<_> = [
            (CredentialKind::RefreshToken, &refresh),
            (CredentialKind::AccessToken, &access),
        ]
        .into_iter()
        .filter(|(_, r)| **r == Some(RevocationResult::Pending))
        .map(|(kind, _)| {
            QueuedRevocation::new(kind, c.connector.clone(), now + revocation_backoff(0))
        })
        .collect();
        let ConnectionDeleted {
            connection: connection_deleted,
            credentials,
            consent_entries,
            records,
            sync_states,
            access_log_entries,
            ..
        } = self
            .inner
            .store
            .delete_connection(user, connection, queue)
            .await?;
        self.emit(Event::new(
            EventKind::Revoked,
            user.clone(),
            connection.clone(),
            c.connector.clone(),
            now,
        ));
        Ok(DisconnectReport {
            connection: connection.clone(),
            refresh_token: refresh,
            access_token: access,
            connection_deleted,
            credentials_deleted: credentials,
            consent_entries_deleted: consent_entries,
            records_deleted: records,
            sync_states_deleted: sync_states,
            access_log_entries_deleted: access_log_entries,
        })
    }

    /// Marks the connection revoked so no refresh starts while it is being
    /// disconnected.
    async fn mark_revoked(&self, user: &UserId, connection: &ConnectionId) -> Result<Connection> {
        for _ in 0..5 {
            let mut c = self.connection(user, connection).await?;
            if c.status == ConnectionStatus::Revoked {
                return Ok(c);
            }
            c.status = ConnectionStatus::Revoked;
            c.updated_at = self.now();
            match self
                .inner
                .store
                .write_connection(ConnectionWrite::update(c.clone()))
                .await
            {
                Ok(w) => {
                    c.revision = w.revision;
                    return Ok(c);
                }
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            what: "connection",
            expected: 0,
            found: 0,
        })
    }

    /// Revokes the stored token of `kind`, if any.
    async fn revoke_stored(
        &self,
        c: &Connection,
        config: Option<&OAuth2Config>,
        kind: CredentialKind,
    ) -> Result<Option<RevocationResult>> {
        let key = CredentialKey::new(c.user.clone(), c.id.clone(), kind);
        let Some(stored) = self.inner.store.get_credential(&key).await? else {
            return Ok(None);
        };
        let Some(config) = config else {
            return Ok(Some(RevocationResult::Unsupported));
        };
        let secret = match self.inner.vault.open(&c.user, &c.id, kind, &stored).await {
            Ok(v) => v.value,
            // A disconnect must not get stuck on an unreadable token.
            Err(e) if matches!(e.kind(), crate::ErrorKind::Crypto | crate::ErrorKind::Key) => {
                return Ok(Some(RevocationResult::Unreadable));
            }
            Err(e) => return Err(e),
        };
        Ok(Some(self.revoke(config, kind, secret).await?))
    }

    /// One revocation request; transport failures and retryable answers
    /// are `Pending`.
    async fn revoke(
        &self,
        config: &OAuth2Config,
        kind: CredentialKind,
        secret: secrecy::SecretString,
    ) -> Result<RevocationResult> {
        let (access, refresh);
        let token = match kind {
            CredentialKind::RefreshToken => {
                refresh = RefreshToken::from(secret);
                RevocableToken::Refresh(&refresh)
            }
            _ => {
                access = AccessToken::from(secret);
                RevocableToken::Access(&access)
            }
        };
        let Some(request) = oauth::revocation_request(config, token)? else {
            return Ok(RevocationResult::Unsupported);
        };
        let response = match self.inner.http.send(request).await {
            Ok(r) => r,
            Err(_) => return Ok(RevocationResult::Pending),
        };
        Ok(match oauth::classify_revocation(config, &response) {
            RevocationOutcome::Revoked | RevocationOutcome::AlreadyInvalid => {
                RevocationResult::Revoked
            }
            RevocationOutcome::RetryLater { .. } => RevocationResult::Pending,
            RevocationOutcome::UnsupportedTokenType => RevocationResult::Unsupported,
            _ => RevocationResult::Refused {
                status: response.status().as_u16(),
            },
        })
    }

    /// Tries one queued revocation; returns whether it is finished (revoked,
    /// refused, or given up).
    pub(super) async fn retry_revocation(
        &self,
        entry: &PendingRevocation,
        now: SystemTime,
    ) -> Result<bool> {
        let config = match self.oauth2(&entry.connector) {
            Ok(config) => config,
            // The connector is gone from this build: nothing to revoke with.
            Err(_) => return self.inner.store.remove_revocation(entry.id).await,
        };
        let secret = match self
            .inner
            .vault
            .open(
                &entry.user,
                &entry.connection,
                entry.kind,
                &crate::store::StoredCredential::new(
                    entry.envelope.clone(),
                    crate::vault::Version::new(1),
                ),
            )
            .await
        {
            Ok(v) => v.value,
            // Unreadable (the user was erased): it can never be sent.
            Err(e) if e.kind() == crate::ErrorKind::Crypto => {
                return self.inner.store.remove_revocation(entry.id).await;
            }
            Err(e) => return Err(e),
        };
        match self.revoke(config, entry.kind, secret).await? {
            RevocationResult::Pending if entry.attempts + 1 < MAX_REVOCATION_ATTEMPTS => {
                let attempts = entry.attempts + 1;
                self.inner
                    .store
                    .reschedule_revocation(entry.id, attempts, now + revocation_backoff(attempts))
                    .await?;
                Ok(false)
            }
            _ => self
                .inner
                .store
                .remove_revocation(entry.id)
                .await
                .map(|_| true),
        }
    }
}
