//! The facade's audit trail: every sensitive operation writes an entry to
//! the [`AuditLog`] (on by default; see
//! [`IntegrationsBuilder::audit`](super::IntegrationsBuilder::audit)), and
//! key rotation goes through the facade so that it is audited too.
//!
//! | action | written by | outcome |
//! |---|---|---|
//! | `connection.created` / `connection.updated` | `complete_connect` (a new or a reconnected account) | success, denied (bad callback, refused consent), failure |
//! | `connection.deleted` | `disconnect` | success (details: revoked, pending, deleted) or failure |
//! | `credential.read` | `access_token` | success, denied (no consent, missing scope), failure |
//! | `credential.refreshed` | each refresh at the provider | success, failure |
//! | `consent.granted` / `consent.revoked` | `grant_consent`, `revoke_consent`, `record_consent` | success, failure |
//! | `records.read` | `records` and the other record reads | success, denied, failure |
//! | `user.exported` | `export` | success, failure |
//! | `user.erased` | `erase_user` | success, failure |
//! | `key.rotated` / `key.rewrapped` / `key.retired` | `set_keyring`, `rewrap`, `retire_key` | success, failure |
//! | `webhook_endpoint.{created, updated, secret_rotated, secret_read, deleted}` | the webhook [`Dispatcher`](crate::webhook::Dispatcher)'s endpoint administration | success, denied (not an admin), failure |
//! | `api_token.{created, renamed, activated, deactivated, revoked}` | [`ApiTokens`](crate::api_token::ApiTokens) given a log with `ApiTokensBuilder::audit` | success, failure |
//!
//! Reads (`credential.read`, `records.read`, `credential.refreshed`) are
//! queued and written in batches; the others are committed before the call
//! returns. A failed audit write never undoes the operation: the entry
//! stays queued for the next write, and [`AuditLog::flush`] reports the
//! failure.

use std::future::Future;

use crate::audit::{AuditActor, AuditEvent, AuditLog, Outcome};
use crate::error::Result;
use crate::ids::{ConnectionId, UserId};
use crate::vault::{KeyId, Keyring, RewrapReport};

use super::Integrations;

impl Integrations {
    /// The audit log, unless the builder turned it off.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{Purpose, UserId};
    /// use consentry::audit::AuditQuery;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// integrations.grant_consent(&user, &conn.id, &Purpose::new("crm_sync")?).await?;
    /// let log = integrations.audit().expect("on by default");
    /// let page = log.query(&AuditQuery::for_user(&user).action("consent.granted")).await?;
    /// assert_eq!(page.entries.len(), 1);
    /// log.verify().await?;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn audit(&self) -> Option<&AuditLog> {
        self.inner.audit.as_ref()
    }

    /// Replaces the keyring (a key rotation: typically the old keyring
    /// with a new primary key) and audits `key.rotated`. Then run
    /// [`Integrations::rewrap`] and, once it is done,
    /// [`Integrations::retire_key`].
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// let old = integrations.vault().keyring().primary().clone();
    /// integrations.set_keyring(integrations.vault().keyring().rotated()?).await;
    /// assert_ne!(integrations.vault().keyring().primary(), &old);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_keyring(&self, keyring: Keyring) {
        let old = self.inner.vault.keyring().primary().as_str().to_owned();
        let new = keyring.primary().as_str().to_owned();
        self.inner.vault.set_keyring(keyring);
        self.audit_durable(
            self.audit_system("key.rotated")
                .detail("previous_primary", old)
                .detail("primary", new),
        )
        .await;
    }

    /// Re-wraps every data key under the primary key
    /// ([`Vault::rewrap`](crate::vault::Vault::rewrap)) and audits
    /// `key.rewrapped`.
    ///
    /// # Errors
    /// As [`Vault::rewrap`](crate::vault::Vault::rewrap).
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// integrations.set_keyring(integrations.vault().keyring().rotated()?).await;
    /// let report = integrations.rewrap().await?;
    /// assert!(report.is_complete());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        self.rewrap_with_progress(|_| {}).await
    }

    /// [`rewrap`](Self::rewrap), calling `progress` after each batch
    /// ([`Vault::rewrap_with_progress`](crate::vault::Vault::rewrap_with_progress)).
    ///
    /// # Errors
    /// As [`Vault::rewrap`](crate::vault::Vault::rewrap).
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// integrations.set_keyring(integrations.vault().keyring().rotated()?).await;
    /// let mut batches = 0;
    /// let report = integrations.rewrap_with_progress(|_| batches += 1).await?;
    /// assert!(report.is_complete() && batches <= 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rewrap_with_progress(
        &self,
        progress: impl FnMut(&RewrapReport) + Send,
    ) -> Result<RewrapReport> {
        let result = self.inner.vault.rewrap_with_progress(progress).await;
        let mut event = self
            .audit_system("key.rewrapped")
            .outcome(Outcome::of(&result));
        if let Ok(r) = &result {
            event = event
                .detail("rewrapped", r.rewrapped)
                .detail("skipped", r.skipped)
                .detail("failed", r.failed);
        }
        self.audit_durable(event).await;
        result
    }

    /// Retires a key that nothing uses any more
    /// ([`Vault::retire`](crate::vault::Vault::retire)) and audits
    /// `key.retired`.
    ///
    /// # Errors
    /// As [`Vault::retire`](crate::vault::Vault::retire).
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// let old = integrations.vault().keyring().primary().clone();
    /// integrations.set_keyring(integrations.vault().keyring().rotated()?).await;
    /// integrations.rewrap().await?;
    /// integrations.retire_key(&old).await?;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn retire_key(&self, id: &KeyId) -> Result<()> {
        let result = self.inner.vault.retire(id).await;
        self.audit_durable(
            self.audit_system("key.retired")
                .outcome(Outcome::of(&result))
                .detail("key_id", id.as_str()),
        )
        .await;
        result
    }

    /// An entry about `user`'s `connection`, acted by the user unless the
    /// request context names someone else.
    pub(crate) fn audit_user(
        &self,
        action: &str,
        user: &UserId,
        connection: Option<&ConnectionId>,
    ) -> AuditEvent {
        let mut e =
            AuditEvent::internal(action, Some(AuditActor::User(user.clone()))).subject(user);
        if let Some(c) = connection {
            e = e.resource(format!("connection:{c}"));
        }
        e
    }

    /// An entry acted by consentry itself unless the context says otherwise.
    pub(crate) fn audit_system(&self, action: &str) -> AuditEvent {
        AuditEvent::internal(action, Some(AuditActor::System))
    }

    /// Queues an entry (hot paths), at once: the returned future only
    /// waits out back-pressure (or writes, with no runtime to spawn a
    /// writer on), and holds no event.
    pub(crate) fn audit_queue(&self, event: AuditEvent) -> impl Future<Output = ()> + Send + '_ {
        let pending = self.inner.audit.as_ref().map(|log| log.queue(event));
        async move {
            if let Some(pending) = pending {
                // Only back-pressure can fail here; the entry stays queued.
                let _ = pending.await;
            }
        }
    }

    /// Records an entry and waits for it to be committed.
    pub(crate) async fn audit_durable(&self, event: AuditEvent) {
        if let Some(log) = &self.inner.audit {
            // The entry stays queued on failure; `AuditLog::flush` reports it.
            let _ = log.record_durable(event).await;
        }
    }
}
