//! Audit entries for token management (`api_token.*`), when the host gives
//! the service an [`AuditLog`].

use super::{ApiTokens, ApiTokensBuilder};
use crate::audit::{AuditActor, AuditEvent, AuditLog, Outcome};
use crate::error::Result;
use crate::ids::{ApiTokenId, UserId};
use crate::store::ApiTokenUpdate;

impl ApiTokensBuilder {
    /// Writes `api_token.created`, `api_token.renamed`,
    /// `api_token.activated` / `api_token.deactivated` and
    /// `api_token.revoked` to `log` (never the token or its hash).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::audit::{AuditLog, AuditQuery};
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::vault::Keyring;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let log = AuditLog::new(store.clone(), Keyring::generate()?);
    /// let tokens = ApiTokens::builder(store, SystemClock).audit(log.clone()).build();
    /// let alice = UserId::new("alice")?;
    /// let week = SystemTime::now() + Duration::from_secs(7 * 86_400);
    /// let (info, _token) = tokens.create(&alice, "ci", &[Scope::new("read:connections")?], Some(week)).await?;
    /// tokens.revoke(&alice, &info.id).await?;
    /// let page = log.query(&AuditQuery::for_user(&alice)).await?;
    /// let actions: Vec<_> = page.entries.iter().map(|e| e.action.as_str()).collect();
    /// assert_eq!(actions, ["api_token.created", "api_token.revoked"]);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }
}

/// The action an update is audited as.
pub(super) fn update_action(update: &ApiTokenUpdate) -> &'static str {
    match update {
        ApiTokenUpdate::Rename(_) => "api_token.renamed",
        ApiTokenUpdate::SetActive(true) => "api_token.activated",
        ApiTokenUpdate::SetActive(false) => "api_token.deactivated",
        _ => "api_token.revoked",
    }
}

impl ApiTokens {
    /// Records `action` on token `id` of `owner` with the outcome of
    /// `result`, committed before the call returns; a failed write stays
    /// queued in the log and never undoes the change.
    pub(super) async fn audit<T>(
        &self,
        action: &str,
        owner: &UserId,
        id: Option<&ApiTokenId>,
        result: &Result<T>,
    ) {
        let Some(log) = &self.inner.audit else {
            return;
        };
        let mut event = AuditEvent::internal(action, Some(AuditActor::User(owner.clone())))
            .subject(owner)
            .outcome(Outcome::of(result));
        if let Some(id) = id {
            event = event.resource(format!("api_token:{id}"));
        }
        let _ = log.record_durable(event).await;
    }
}
