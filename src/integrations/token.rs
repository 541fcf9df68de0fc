//! `access_token`: consent-checked, refreshed before expiry, exactly one
//! refresh per connection at a time.
//!
//! - In one process, concurrent callers share one in-flight refresh (the
//!   first caller leads; the others wait for its result).
//! - Across processes, the leader first takes a lease in the store (owner
//!   token, compare-and-delete release, lease longer than the HTTP timeout);
//!   callers that do not get it poll the store until the token is fresh.
//! - The new tokens are written with compare-and-swap on the credential
//!   versions and the connection revision, in one transaction, before the
//!   access token is returned: a rotated refresh token is never lost.
//! - `invalid_grant` is re-checked against the store (another process may
//!   have rotated the refresh token a moment earlier) before the connection
//!   is marked `ReauthRequired`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use super::Integrations;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, Purpose, Scope, UserId};
use crate::secret;
use crate::store::StoredCredential;
use crate::vault::{CredentialKind, Version};

/// A usable access token, with what it is good for.
///
/// ```
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations = doc_support::integrations()?;
/// # let user = UserId::new("ada")?;
/// # let conn = doc_support::connect(&integrations, &user).await?;
/// # let crm = Purpose::new("crm_sync")?;
/// # integrations.grant_consent(&user, &conn.id, &crm).await?;
/// let token = integrations.access_token(&user, &conn.id, &crm).await?;
/// assert_eq!(token.scopes, [Scope::new("contacts.read")?]);
/// assert!(token.expires_at.is_some()); // Acme said: in an hour
/// assert_eq!(format!("{:?}", token.secret), "AccessToken([REDACTED])");
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccessToken {
    /// The token (redacted in `Debug`).
    pub secret: secret::AccessToken,
    /// When it expires, if the provider said.
    pub expires_at: Option<SystemTime>,
    /// The scopes granted to the connection.
    pub scopes: Vec<Scope>,
    /// The stored credential's version: after a 401 with this token, pass
    /// it to [`TokenOptions::refresh_if_version`] to force one refresh.
    pub version: Version,
}

/// Options for [`Integrations::access_token_with`].
///
/// ```
/// use consentry::integrations::TokenOptions;
/// use consentry::Scope;
/// let opts = TokenOptions::default().require_scope(Scope::new("calendar.events")?);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TokenOptions {
    required_scopes: Vec<Scope>,
    refresh_if_version: Option<Version>,
}

impl TokenOptions {
    /// Refuse with [`Error::InsufficientScope`] unless the connection was
    /// granted `scope`.
    ///
    /// ```
    /// use consentry::integrations::TokenOptions;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// let options = TokenOptions::default().require_scope(Scope::new("contacts.write")?);
    /// let err = integrations.access_token_with(&user, &conn.id, &crm, &options).await.unwrap_err();
    /// assert!(matches!(err, Error::InsufficientScope { .. })); // only contacts.read was granted
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn require_scope(mut self, scope: Scope) -> Self {
        self.required_scopes.push(scope);
        self
    }

    /// Force a refresh if the stored access token is still the one with
    /// `version` (for a caller whose request was just answered 401 with
    /// it); if another caller has refreshed meanwhile, its token is
    /// returned instead.
    ///
    /// ```
    /// use consentry::integrations::TokenOptions;
    /// use consentry::vault::CredentialKind;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// let token = integrations.access_token(&user, &conn.id, &crm).await?;
    /// let version = integrations.vault().get(&user, &conn.id, CredentialKind::AccessToken).await?.version;
    /// // The API answered 401 to `token`: ask for a new one, unless another caller got it already.
    /// let options = TokenOptions::default().refresh_if_version(version);
    /// let fresh = integrations.access_token_with(&user, &conn.id, &crm, &options).await?;
    /// assert_ne!(fresh.secret.expose_secret(), token.secret.expose_secret());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn refresh_if_version(mut self, version: Version) -> Self {
        self.refresh_if_version = Some(version);
        self
    }
}

/// A refreshed (or found fresh) token, shared with followers.
#[derive(Debug, Clone)]
pub(super) struct Fresh {
    pub(super) token: secret::AccessToken,
    pub(super) expires_at: Option<SystemTime>,
    pub(super) scopes: Vec<Scope>,
    pub(super) version: Version,
}

/// The parts of an `access_token` call that make it identical to another:
/// borrowed for a lookup ([`TokenKey`] is the owned form a leader stores),
/// so that a follower copies nothing.
pub(super) trait TokenCall: Sync {
    fn parts(&self) -> (&UserId, &ConnectionId, &Purpose, &TokenOptions);
}

impl TokenCall for (&UserId, &ConnectionId, &Purpose, &TokenOptions) {
    fn parts(&self) -> (&UserId, &ConnectionId, &Purpose, &TokenOptions) {
        *self
    }
}

/// The owned key of an `access_token` flight.
#[derive(Debug)]
pub(super) struct TokenKey(UserId, ConnectionId, Purpose, TokenOptions);

impl TokenCall for TokenKey {
    fn parts(&self) -> (&UserId, &ConnectionId, &Purpose, &TokenOptions) {
        (&self.0, &self.1, &self.2, &self.3)
    }
}

// Hash and equality of both forms go through `parts`, so they agree (the
// contract of `Borrow`).
impl Hash for dyn TokenCall + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn TokenCall + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn TokenCall + '_ {}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for TokenKey {}

impl<'a> Borrow<dyn TokenCall + 'a> for TokenKey {
    fn borrow(&self) -> &(dyn TokenCall + 'a) {
        self
    }
}

impl ToOwned for dyn TokenCall + '_ {
    type Owned = TokenKey;

    fn to_owned(&self) -> TokenKey {
        let (user, connection, purpose, options) = self.parts();
        TokenKey(
            user.clone(),
            connection.clone(),
            purpose.clone(),
            options.clone(),
        )
    }
}

fn missing_scopes(granted: &[Scope], required: &[Scope]) -> Vec<Scope> {
    required
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect()
}

impl Integrations {
    /// A usable access token for `connection`, for `purpose`: refused
    /// without the user's consent to that purpose, refreshed first when it
    /// expires within the refresh margin.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// let crm = Purpose::new("crm_sync")?;
    /// integrations.grant_consent(&user, &conn.id, &crm).await?; // the user agrees to CRM sync
    /// let token = integrations.access_token(&user, &conn.id, &crm).await?;
    /// assert_eq!(token.secret.expose_secret(), "acme-at-1"); // send it as a bearer token
    /// let marketing = Purpose::new("marketing")?; // the user never consented to this one
    /// let refused = integrations.access_token(&user, &conn.id, &marketing).await;
    /// assert!(matches!(refused, Err(Error::ConsentRequired { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] (no such connection), [`Error::ConsentRequired`],
    /// [`Error::ReauthRequired`] (the user must connect again),
    /// [`Error::RateLimited`] (the provider is failing and no valid token is
    /// at hand), provider and storage errors.
    pub async fn access_token(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
    ) -> Result<AccessToken> {
        self.access_token_with(user, connection, purpose, &TokenOptions::default())
            .await
    }

    /// [`Integrations::access_token`] with options: required scopes, a
    /// forced refresh after a 401.
    ///
    /// ```
    /// use consentry::integrations::TokenOptions;
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let conn = doc_support::connect(&integrations, &user).await?;
    /// # let crm = Purpose::new("crm_sync")?;
    /// # integrations.grant_consent(&user, &conn.id, &crm).await?;
    /// let options = TokenOptions::default().require_scope(Scope::new("contacts.read")?);
    /// let token = integrations.access_token_with(&user, &conn.id, &crm, &options).await?;
    /// assert!(token.scopes.contains(&Scope::new("contacts.read")?));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`Integrations::access_token`], and
    /// [`Error::InsufficientScope`] naming the missing scopes.
    pub async fn access_token_with(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
        options: &TokenOptions,
    ) -> Result<AccessToken> {
        // Concurrent identical calls share one execution: one store read,
        // at most one refresh. The key is borrowed; only a leader copies it.
        let call: &dyn TokenCall = &(user, connection, purpose, options);
        // The work is boxed: only a leader builds it, and the future every
        // caller holds (and a host's `tokio::spawn` moves around) stays
        // small instead of carrying the whole refresh state machine.
        //
        // The leader builds the `credential.read` audit event once; each
        // caller queues that same event (in its own request context), so a
        // thousand callers sharing one refresh merge into one entry without
        // a thousand identical events built and compared.
        let (result, queued) = self
            .inner
            .tokens
            .run_noted(
                call,
                || {
                    Box::pin(async move {
                        let result = self
                            .access_token_once(user, connection, purpose, options)
                            .await;
                        let event = self.inner.audit.is_some().then(|| {
                            Arc::new(
                                self.audit_user("credential.read", user, Some(connection))
                                    .outcome(crate::audit::Outcome::of(&result))
                                    .detail("purpose", purpose.as_str())
                                    .in_current_context(),
                            )
                        });
                        (result, event)
                    })
                },
                |event| match (&self.inner.audit, event) {
                    (Some(log), Some(event)) => Some(log.queue_shared(event)),
                    _ => None,
                },
            )
            .await;
        if let Some(queued) = queued {
            // Only back-pressure can fail here; the entry stays queued.
            let _ = queued.await;
        }
        result
    }

    async fn access_token_once(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
        options: &TokenOptions,
    ) -> Result<AccessToken> {
        let view = self
            .inner
            .store
            .access_view(user, connection, purpose, CredentialKind::AccessToken)
            .await?
            .ok_or(Error::NotFound { what: "connection" })?;
        if !view.consented {
            return Err(Error::ConsentRequired {
                purpose: purpose.clone(),
            });
        }
        let c = &view.connection;
        if !c.status.is_usable() {
            return Err(Error::ReauthRequired {
                connection: connection.clone(),
            });
        }
        let missing = missing_scopes(&c.scopes, &options.required_scopes);
        if !missing.is_empty() {
            return Err(Error::InsufficientScope { missing });
        }
        let now = self.now();
        if let Some(stored) = &view.credential {
            let outdated = options.refresh_if_version == Some(stored.version);
            if !outdated && self.is_fresh(c, now) {
                return self.open_access(c, stored).await.map(|f| f.into_token());
            }
        }
        let fresh = self
            .refresh(user, connection, options.refresh_if_version)
            .await?;
        Ok(fresh.into_token())
    }

    /// Refreshes `connection` now, unless its token is fresh (the proactive
    /// refresher and tests use this). Shares an in-flight refresh like
    /// [`Integrations::access_token`].
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
    /// clock.advance(Duration::from_secs(3500)); // within the refresh margin of the expiry
    /// integrations.refresh_connection(&user, &conn.id).await?;
    /// let c = integrations.connection(&user, &conn.id).await?;
    /// assert!(c.health.last_refresh_ok.is_some());
    /// integrations.refresh_connection(&user, &conn.id).await?; // fresh now: left alone
    /// assert_eq!(integrations.connection(&user, &conn.id).await?.revision, c.revision);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`Integrations::access_token`], without the consent check.
    pub async fn refresh_connection(&self, user: &UserId, connection: &ConnectionId) -> Result<()> {
        self.refresh(user, connection, None).await.map(drop)
    }

    pub(super) fn is_fresh(&self, c: &Connection, now: SystemTime) -> bool {
        c.access_expires_at
            .is_none_or(|t| t > now + self.inner.options.refresh_margin)
    }

    pub(super) async fn open_access(
        &self,
        c: &Connection,
        stored: &StoredCredential,
    ) -> Result<Fresh> {
        let v = self
            .inner
            .vault
            .open(&c.user, &c.id, CredentialKind::AccessToken, stored)
            .await?;
        Ok(Fresh {
            token: v.value.into(),
            expires_at: c.access_expires_at,
            scopes: c.scopes.clone(),
            version: stored.version,
        })
    }
}

impl Fresh {
    pub(super) fn into_token(self) -> AccessToken {
        AccessToken {
            secret: self.token,
            expires_at: self.expires_at,
            scopes: self.scopes,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::audit::{AuditQuery, RequestContext};
    use crate::clock::ManualClock;
    use crate::http::{self, HttpClient, HttpRequest};
    use crate::integrations::doc_support;

    /// A borrowed call finds the owned key a leader stored, and only that.
    #[test]
    fn a_borrowed_call_finds_its_owned_key() {
        let (u, c, p) = (
            UserId::new("ada").unwrap(),
            ConnectionId::new("c1").unwrap(),
            Purpose::new("crm_sync").unwrap(),
        );
        let plain = TokenOptions::default();
        let scoped = TokenOptions::default().require_scope(Scope::new("contacts.read").unwrap());
        let call: &dyn TokenCall = &(&u, &c, &p, &plain);
        let mut map = HashMap::new();
        map.insert(call.to_owned(), 1);
        assert_eq!(map.get(call), Some(&1));
        let other: &dyn TokenCall = &(&u, &c, &p, &scoped);
        assert_eq!(map.get(other), None);
        let bob = UserId::new("bob").unwrap();
        let other: &dyn TokenCall = &(&bob, &c, &p, &plain);
        assert_eq!(map.get(other), None);
    }

    /// Followers queue their leader's audit event, each in its own request
    /// context: every call is counted once, under its own request id (or
    /// none), however the calls shared the refresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn followers_are_audited_in_their_own_request_context() {
        let refreshes = Arc::new(AtomicU64::new(0));
        let inner = Arc::new(doc_support::provider(true));
        let counted = refreshes.clone();
        // A slow token endpoint, so the callers really share the refresh.
        let provider = http::from_fn(move |req: HttpRequest| {
            let (inner, counted) = (inner.clone(), counted.clone());
            async move {
                if req.uri().path() == "/oauth/token" {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                inner.send(req).await
            }
        });
        let clock = ManualClock::starting_now();
        let integrations = doc_support::builder()
            .unwrap()
            .http(provider)
            .clock(clock.clone())
            .build()
            .unwrap();
        let user = UserId::new("ada").unwrap();
        let conn = doc_support::connect(&integrations, &user).await.unwrap();
        let crm = Purpose::new("crm_sync").unwrap();
        integrations
            .grant_consent(&user, &conn.id, &crm)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(7_200)); // expired
        let before = refreshes.load(Ordering::SeqCst);

        let mut tasks = Vec::new();
        for n in 0..300u32 {
            let (i, u, c, p) = (
                integrations.clone(),
                user.clone(),
                conn.id.clone(),
                crm.clone(),
            );
            let call = async move { i.access_token(&u, &c, &p).await.map(|t| t.version) };
            tasks.push(match n % 3 {
                0 => tokio::spawn(call),
                1 => tokio::spawn(RequestContext::new().request_id("req-a").scope(call)),
                _ => tokio::spawn(RequestContext::new().request_id("req-b").scope(call)),
            });
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(refreshes.load(Ordering::SeqCst), before + 1, "one refresh");

        let log = integrations.audit().unwrap();
        log.flush().await.unwrap();
        let query = AuditQuery::for_user(&user)
            .action("credential.read")
            .limit(1_000);
        let page = log.query(&query).await.unwrap();
        let mut calls: HashMap<Option<String>, u64> = HashMap::new();
        for entry in &page.entries {
            let count = entry
                .details
                .get("count")
                .and_then(|c| c.as_u64())
                .unwrap_or(1);
            *calls.entry(entry.request_id.clone()).or_default() += count;
        }
        let expected: HashMap<Option<String>, u64> = [
            (None, 100),
            (Some("req-a".to_owned()), 100),
            (Some("req-b".to_owned()), 100),
        ]
        .into();
        assert_eq!(calls, expected);
        log.verify().await.unwrap();
    }
}
