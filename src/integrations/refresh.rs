//! The refresh pipeline behind [`Integrations::access_token`]: one
//! in-flight refresh per connection in this process, a store lease across
//! processes, compare-and-swap writes of the rotated tokens, the
//! `invalid_grant` re-check, and the connection's health on failure.

use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::Integrations;
use super::token::Fresh;
use crate::connection::{Connection, ConnectionStatus, Health};
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::ids::{ConnectionId, Purpose, UserId};
use crate::oauth;
use crate::secret::{self, RefreshToken};
use crate::store::{ConnectionWrite, CredentialKey, StoredCredential};
use crate::vault::{CredentialKind, CredentialUpdate, Version};

/// What one refresh attempt concluded.
enum Attempt {
    Done(Fresh),
    /// Something changed under us (another process refreshed, a write
    /// lost a compare-and-swap): read again.
    Retry,
}

/// How many times a refresh re-reads after losing a race before giving up.
const MAX_ROUNDS: u32 = 20;

fn key(user: &UserId, connection: &ConnectionId, kind: CredentialKind) -> CredentialKey {
    CredentialKey::new(user.clone(), connection.clone(), kind)
}

/// The lease name of a connection's refresh: a hash, so ids of any length
/// and content give a bounded, unambiguous name.
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
    let digest = h.finalize();
    format!("refresh:{}", secret::b64url_encode(&digest))
}

/// Full-jitter exponential backoff: a random wait in [base/2, base], base
/// = 2 s × 2^(failures-1), capped at `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(2)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(max);
    let r = getrandom::u32().unwrap_or(u32::MAX);
    let half = base / 2;
    half + half.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

impl Integrations {
    /// One refresh per connection in this process: the first caller leads,
    /// the others wait for its result.
    pub(super) async fn refresh(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stale: Option<Version>,
    ) -> Result<Fresh> {
        let key = (user.clone(), connection.clone());
        self.inner
            .refreshes
            .run(key, || self.lead_refresh(user, connection, stale))
            .await
    }

    /// The leader: re-read, take the lease, refresh, store; or find that
    /// another process did it.
    async fn lead_refresh(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stale: Option<Version>,
    ) -> Result<Fresh> {
        let lease = self.inner.options.refresh_lease;
        let wait_limit =
            Instant::now() + lease.unwrap_or(Duration::from_secs(30)) + Duration::from_secs(5);
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return Err(Error::RateLimited { retry_after: None });
            }
            let c = self.connection(user, connection).await?;
            if !c.status.is_usable() {
                return Err(Error::ReauthRequired {
                    connection: connection.clone(),
                });
            }
            let access = self
                .inner
                .store
                .get_credential(&key(user, connection, CredentialKind::AccessToken))
                .await?;
            let now = self.now();
            if let Some(at) = &access {
                let outdated = stale == Some(at.version);
                if !outdated && self.is_fresh(&c, now) {
                    return self.open_access(&c, at).await;
                }
            }
            if let Some(until) = c.health.retry_after
                && until > now
            {
                // Backing off after failures: use the token while it lasts.
                return match &access {
                    Some(at) if c.access_expires_at.is_none_or(|t| t > now) => {
                        self.open_access(&c, at).await
                    }
                    _ => Err(Error::RateLimited {
                        retry_after: until.duration_since(now).ok(),
                    }),
                };
            }
            let attempt = match lease {
                None => self.refresh_at_provider(&c, access.as_ref()).await?,
                Some(ttl) => {
                    let name = lease_name(user, connection);
                    let owner = format!("{}:{}", self.inner.instance, secret::random_token(10)?);
                    if !self
                        .inner
                        .store
                        .acquire_lease(&name, &owner, now + ttl, now)
                        .await?
                    {
                        // Another process is refreshing: wait for its result.
                        if Instant::now() > wait_limit {
                            return Err(Error::RateLimited { retry_after: None });
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        rounds -= 1;
                        continue;
                    }
                    // Double-check under the lease: the previous holder may
                    // have refreshed between our read and our acquire.
                    let result = match self.fresh_now(user, connection, stale).await {
                        Ok(Some(fresh)) => Ok(Attempt::Done(fresh)),
                        Ok(None) => {
                            let c = self.connection(user, connection).await?;
                            let access = self
                                .inner
                                .store
                                .get_credential(&key(user, connection, CredentialKind::AccessToken))
                                .await?;
                            self.refresh_at_provider(&c, access.as_ref()).await
                        }
                        Err(e) => Err(e),
                    };
                    // Compare-and-delete: only our own lease is released.
                    let released = self.inner.store.release_lease(&name, &owner).await;
                    let attempt = result?;
                    released?;
                    attempt
                }
            };
            match attempt {
                Attempt::Done(fresh) => return Ok(fresh),
                Attempt::Retry => continue,
            }
        }
    }

    /// The stored access token, if it is fresh (and not the `stale`
    /// version), read again from the store.
    async fn fresh_now(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stale: Option<Version>,
    ) -> Result<Option<Fresh>> {
        let c = self.connection(user, connection).await?;
        let access = self
            .inner
            .store
            .get_credential(&key(user, connection, CredentialKind::AccessToken))
            .await?;
        match access {
            Some(at) if stale != Some(at.version) && self.is_fresh(&c, self.now()) => {
                Ok(Some(self.open_access(&c, &at).await?))
            }
            _ => Ok(None),
        }
    }

    /// Calls the token endpoint with the stored refresh token and stores
    /// the outcome.
    /// One refresh at the provider, audited (`credential.refreshed`).
    async fn refresh_at_provider(
        &self,
        c: &Connection,
        access: Option<&StoredCredential>,
    ) -> Result<Attempt> {
        let result = self.refresh_at_provider_unaudited(c, access).await;
        if !matches!(result, Ok(Attempt::Retry)) {
            self.audit_queue(
                self.audit_system("credential.refreshed")
                    .subject(&c.user)
                    .resource(format!("connection:{}", c.id))
                    .outcome(crate::audit::Outcome::of(&result))
                    .detail("connector", c.connector.as_str()),
            )
            .await;
        }
        result
    }

    async fn refresh_at_provider_unaudited(
        &self,
        c: &Connection,
        access: Option<&StoredCredential>,
    ) -> Result<Attempt> {
        let (user, connection) = (&c.user, &c.id);
        let Some(rt_row) = self
            .inner
            .store
            .get_credential(&key(user, connection, CredentialKind::RefreshToken))
            .await?
        else {
            // Nothing to refresh with: the token is good while it lasts.
            return match access {
                Some(at) if c.access_expires_at.is_none_or(|t| t > self.now()) => {
                    Ok(Attempt::Done(self.open_access(c, at).await?))
                }
                _ => {
                    self.mark_reauth(c, "no refresh token").await?;
                    Err(Error::ReauthRequired {
                        connection: connection.clone(),
                    })
                }
            };
        };
        let config = self.oauth2(&c.connector)?;
        let rt = self
            .inner
            .vault
            .open(user, connection, CredentialKind::RefreshToken, &rt_row)
            .await?;
        let request = oauth::refresh_token_request(config, &RefreshToken::from(rt.value), None)?;
        // A 429 or 503 may say how long to stay away (RFC 9110 §10.2.3):
        // the next attempt waits at least that long (bounded at 24 h).
        let mut provider_wait = None;
        let result = match self.inner.http.send(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                if status == 429 || status == 503 {
                    provider_wait = crate::sync::retry_after(response.headers(), self.now());
                }
                match oauth::parse_token_response(config, &response) {
                    Err(_) if status == 429 => Err(Error::RateLimited {
                        retry_after: provider_wait,
                    }),
                    other => other,
                }
            }
            Err(e) => Err(e.into()),
        };
        let now = self.now();
        match result {
            Ok(tokens) => self.store_refreshed(c, access, &rt_row, tokens, now).await,
            Err(e) if e.is_invalid_grant() => {
                // Another process may have rotated the refresh token just
                // before us: if so, this was not a dead grant.
                let current = self
                    .inner
                    .store
                    .get_credential(&key(user, connection, CredentialKind::RefreshToken))
                    .await?;
                if current.map(|r| r.version) != Some(rt_row.version) {
                    return Ok(Attempt::Retry);
                }
                self.mark_reauth(c, "the provider refused the refresh token (invalid_grant)")
                    .await?;
                Err(Error::ReauthRequired {
                    connection: connection.clone(),
                })
            }
            Err(e) => {
                self.mark_failed(c, &e, now, provider_wait).await?;
                match access {
                    // A transient failure while the token still works.
                    Some(at)
                        if e.kind().is_retryable()
                            && c.access_expires_at.is_none_or(|t| t > now) =>
                    {
                        Ok(Attempt::Done(self.open_access(c, at).await?))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    async fn store_refreshed(
        &self,
        c: &Connection,
        access: Option<&StoredCredential>,
        rt_row: &StoredCredential,
        tokens: oauth::TokenResponse,
        now: SystemTime,
    ) -> Result<Attempt> {
        let recovered = c.health.consecutive_failures > 0 || c.status == ConnectionStatus::Degraded;
        let mut next = c.clone();
        next.status = ConnectionStatus::Active;
        next.health = Health {
            last_refresh_ok: Some(now),
            last_refresh_failed: c.health.last_refresh_failed,
            ..Health::default()
        };
        next.access_expires_at = tokens.expires_in.map(|d| now + d);
        next.updated_at = now;
        if let Some(scopes) = &tokens.scopes {
            next.scopes = scopes.clone();
        }
        let mut updates = vec![
            CredentialUpdate::new(
                CredentialKind::AccessToken,
                tokens.access_token.expose_secret().into(),
            )
            .expecting(access.map_or(Version::NONE, |a| a.version)),
        ];
        if let Some(rt) = &tokens.refresh_token {
            updates.push(
                CredentialUpdate::new(CredentialKind::RefreshToken, rt.expose_secret().into())
                    .expecting(rt_row.version),
            );
        }
        if let Some(id) = &tokens.id_token {
            updates.push(CredentialUpdate::new(
                CredentialKind::IdToken,
                id.expose_secret().into(),
            ));
        }
        let credentials = self.inner.vault.seal(&c.user, &c.id, updates).await?;
        let mut write = ConnectionWrite::update(next.clone()).with_credentials(credentials);
        // The provider has rotated the refresh token: losing the new one
        // would kill the grant at the next refresh. If only the connection
        // row moved on (a consent change, a status update), re-apply on
        // top of it; if the tokens moved on, another refresh won.
        for _ in 0..5 {
            match self.inner.store.write_connection(write.clone()).await {
                Ok(written) => {
                    let kind = if recovered {
                        EventKind::Recovered
                    } else {
                        EventKind::Refreshed
                    };
                    self.emit(Event::new(
                        kind,
                        c.user.clone(),
                        c.id.clone(),
                        c.connector.clone(),
                        now,
                    ));
                    return Ok(Attempt::Done(Fresh {
                        token: tokens.access_token,
                        expires_at: next.access_expires_at,
                        scopes: next.scopes,
                        version: written.versions.first().copied().unwrap_or(Version::NONE),
                    }));
                }
                Err(Error::Conflict {
                    what: "connection", ..
                }) => {
                    let Some(latest) = self.inner.store.get_connection(&c.user, &c.id).await?
                    else {
                        return Err(Error::NotFound { what: "connection" });
                    };
                    if !latest.status.is_usable() {
                        return Err(Error::ReauthRequired {
                            connection: c.id.clone(),
                        });
                    }
                    let mut again = next.clone();
                    again.revision = latest.revision;
                    again.scopes = if tokens.scopes.is_some() {
                        next.scopes.clone()
                    } else {
                        latest.scopes
                    };
                    write.connection = again;
                    write.expected_revision = Some(latest.revision);
                }
                Err(Error::Conflict { .. }) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
            }
        }
        Ok(Attempt::Retry)
    }

    /// Moves the connection to `ReauthRequired` and emits the event (the
    /// sync runtime, after a 401 a refresh did not cure).
    pub(crate) async fn mark_reauth_required(&self, c: &Connection, why: &str) -> Result<()> {
        self.mark_reauth(c, why).await
    }

    /// A credential of `kind` for a connection, only if `purpose` has
    /// consent (API-key connectors).
    pub(crate) async fn consented_credential(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        purpose: &Purpose,
        kind: CredentialKind,
    ) -> Result<secrecy::SecretString> {
        let view = self
            .inner
            .store
            .access_view(user, connection, purpose, kind)
            .await?
            .ok_or(Error::NotFound { what: "connection" })?;
        if !view.consented {
            return Err(Error::ConsentRequired {
                purpose: purpose.clone(),
            });
        }
        let stored = view
            .credential
            .ok_or(Error::NotFound { what: "credential" })?;
        Ok(self
            .inner
            .vault
            .open(user, connection, kind, &stored)
            .await?
            .value)
    }

    async fn mark_reauth(&self, c: &Connection, why: &str) -> Result<()> {
        let now = self.now();
        let mut next = c.clone();
        next.status = ConnectionStatus::ReauthRequired;
        next.health.last_refresh_failed = Some(now);
        next.health.last_error = Some(why.to_owned());
        next.updated_at = now;
        self.record_failure(next, EventKind::ReauthRequired, why)
            .await
    }

    /// Records a failed refresh: `Degraded`, and no new attempt before the
    /// backoff or the provider's `Retry-After` (`provider_wait`), whichever
    /// is longer.
    async fn mark_failed(
        &self,
        c: &Connection,
        e: &Error,
        now: SystemTime,
        provider_wait: Option<Duration>,
    ) -> Result<()> {
        let failures = c.health.consecutive_failures.saturating_add(1);
        let mut next = c.clone();
        next.status = ConnectionStatus::Degraded;
        next.health.last_refresh_failed = Some(now);
        next.health.last_error = Some(e.to_string().chars().take(300).collect());
        next.health.consecutive_failures = failures;
        let wait = backoff(failures, self.inner.options.max_backoff)
            .max(provider_wait.unwrap_or_default());
        next.health.retry_after = Some(now + wait);
        next.updated_at = now;
        self.record_failure(next, EventKind::RefreshFailed, e.kind().as_str())
            .await
    }

    /// Stores a connection's new failure state (if someone else changed the
    /// connection meanwhile, their state stands) and emits the event.
    async fn record_failure(&self, next: Connection, kind: EventKind, detail: &str) -> Result<()> {
        let event = Event::new(
            kind,
            next.user.clone(),
            next.id.clone(),
            next.connector.clone(),
            next.updated_at,
        )
        .with_detail(detail);
        match self
            .inner
            .store
            .write_connection(ConnectionWrite::update(next))
            .await
        {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.emit(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let max = Duration::from_secs(3600);
        for failures in 1..40 {
            let d = backoff(failures, max);
            let base = Duration::from_secs(2)
                .saturating_mul(1 << (failures - 1).min(20))
                .min(max);
            assert!(d >= base / 2 && d <= base, "{failures}: {d:?}");
        }
        assert!(backoff(30, max) <= max);
    }

    #[test]
    fn lease_names_are_unambiguous() {
        let a = lease_name(
            &UserId::in_tenant("ab", "c").unwrap(),
            &ConnectionId::new("d").unwrap(),
        );
        let b = lease_name(
            &UserId::in_tenant("a", "bc").unwrap(),
            &ConnectionId::new("d").unwrap(),
        );
        assert_ne!(a, b);
        assert!(a.len() < 64);
    }
}
