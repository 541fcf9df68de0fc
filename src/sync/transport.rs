//! The transport behind an authorised [`FetchContext`](crate::connector::FetchContext):
//! token injection, one forced refresh on 401, budgets, rate-limit waits,
//! backoff and the circuit breaker.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::limits::{self, Key};
use crate::connector::{AuthMethod, Transport};
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::http::{HeaderValue, HttpRequest, HttpResponse, header};
use crate::ids::{ConnectionId, ConnectorId, Purpose, Scope, UserId};
use crate::integrations::{Integrations, TokenOptions};
use crate::vault::{CredentialKind, Version};

/// How many rate-limit waits one request may take.
const MAX_RATE_WAITS: u32 = 8;

/// Sends requests for one connection and one purpose.
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) integrations: Integrations,
    pub(crate) user: UserId,
    pub(crate) connection: ConnectionId,
    pub(crate) connector: ConnectorId,
    pub(crate) purpose: Purpose,
    pub(crate) scopes: Vec<Scope>,
    /// Waits that would end after this fail with `RateLimited` instead.
    pub(crate) deadline: Option<SystemTime>,
}

fn rebuild(parts: &::http::request::Parts, body: &[u8]) -> Result<HttpRequest> {
    let mut b = ::http::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version);
    if let Some(h) = b.headers_mut() {
        *h = parts.headers.clone();
    }
    b.body(body.to_vec())
        .map_err(|_| Error::Internal("rebuilding a request"))
}

impl Authorized {
    fn now(&self) -> SystemTime {
        self.integrations.clock_now()
    }

    /// Waits `wait` on the clock, unless that ends past the deadline or
    /// the run's longest wait.
    async fn wait(&self, wait: Duration) -> Result<()> {
        let opts = self.integrations.sync_options();
        let past_deadline = self
            .deadline
            .is_some_and(|d| self.now() + wait > d + Duration::from_secs(1));
        if wait > opts.max_wait || past_deadline {
            return Err(Error::RateLimited {
                retry_after: Some(wait),
            });
        }
        self.integrations.clock().sleep(wait).await;
        Ok(())
    }

    /// Waits for this connection's and its provider's turn.
    async fn take_turn(&self) -> Result<()> {
        let opts = self.integrations.sync_options();
        let keys = [
            (
                Key::Provider(self.connector.clone()),
                opts.provider_budget_of(&self.connector),
            ),
            (
                Key::Connection(self.user.clone(), self.connection.clone()),
                opts.connection_budget,
            ),
        ];
        for _ in 0..64 {
            let wait = self.integrations.limits().turn(&keys, self.now());
            if wait.is_zero() {
                return Ok(());
            }
            self.wait(wait).await?;
        }
        Err(Error::RateLimited { retry_after: None })
    }

    fn circuit(&self) -> Result<()> {
        self.integrations
            .limits()
            .circuit(&self.connector, self.now())
            .map_err(|wait| Error::ProviderUnavailable {
                connector: self.connector.clone(),
                retry_after: Some(wait),
            })
    }

    /// Counts a transient failure; errs once the circuit is open.
    fn failed(&self) -> Result<()> {
        let opts = self.integrations.sync_options();
        if self.integrations.limits().failure(
            &self.connector,
            self.now(),
            opts.breaker_failures,
            opts.breaker_cooldown,
        ) {
            return Err(Error::ProviderUnavailable {
                connector: self.connector.clone(),
                retry_after: Some(opts.breaker_cooldown),
            });
        }
        Ok(())
    }

    /// Puts the connection's credentials on `request`; returns the access
    /// token's version (for a forced refresh after a 401).
    async fn authorize(
        &self,
        request: &mut HttpRequest,
        stale: Option<Version>,
    ) -> Result<Option<Version>> {
        let connector = self.integrations.connector_by_id(&self.connector)?;
        match connector.auth() {
            AuthMethod::OAuth2(_) => {
                let mut options = TokenOptions::default();
                for s in &self.scopes {
                    options = options.require_scope(s.clone());
                }
                if let Some(v) = stale {
                    options = options.refresh_if_version(v);
                }
                let token = self
                    .integrations
                    .access_token_with(&self.user, &self.connection, &self.purpose, &options)
                    .await?;
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {}", token.secret.expose_secret()))
                        .map_err(|_| Error::InvalidResponse {
                            what: "token response",
                            reason: "the access token cannot be sent in a header".into(),
                        })?;
                value.set_sensitive(true);
                request.headers_mut().insert(header::AUTHORIZATION, value);
                Ok(Some(token.version))
            }
            AuthMethod::ApiKey(auth) => {
                let key = self
                    .integrations
                    .consented_credential(
                        &self.user,
                        &self.connection,
                        &self.purpose,
                        CredentialKind::ApiKey,
                    )
                    .await?;
                let secret = secrecy::ExposeSecret::expose_secret(&key);
                if auth.in_query() {
                    let uri = request.uri().to_string();
                    let mut url = url::Url::parse(&uri)
                        .map_err(|_| Error::invalid("request url", "not an absolute URL"))?;
                    url.query_pairs_mut().append_pair(auth.name(), secret);
                    *request.uri_mut() = url
                        .as_str()
                        .parse()
                        .map_err(|_| Error::invalid("request url", "not a valid URI"))?;
                } else {
                    let text = match auth.prefix() {
                        Some(p) => format!("{p} {secret}"),
                        None => secret.to_owned(),
                    };
                    let mut value = HeaderValue::from_str(&text)
                        .map_err(|_| Error::invalid("api key", "cannot be sent in a header"))?;
                    value.set_sensitive(true);
                    let name = ::http::HeaderName::from_bytes(auth.name().as_bytes())
                        .map_err(|_| Error::invalid("api key header", "not a header name"))?;
                    request.headers_mut().insert(name, value);
                }
                Ok(None)
            }
            AuthMethod::OAuth1(client) => {
                let sealed = self
                    .integrations
                    .consented_credential(
                        &self.user,
                        &self.connection,
                        &self.purpose,
                        CredentialKind::ApiKey,
                    )
                    .await?;
                let token = crate::oauth::oauth1::OAuth1Credentials::from_sealed(&sealed)?;
                let url = url::Url::parse(&request.uri().to_string())
                    .map_err(|_| Error::invalid("request url", "not an absolute URL"))?;
                let is_form = request
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                let form: Vec<(String, String)> = if is_form {
                    url::form_urlencoded::parse(request.body())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                } else {
                    Vec::new()
                };
                let secs = self
                    .now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let nonce = crate::secret::random_token(12)?;
                let h = crate::oauth::oauth1::authorization_header(
                    request.method().as_str(),
                    &url,
                    &form,
                    client,
                    Some(&token),
                    &nonce,
                    secs,
                    true,
                );
                let mut value = HeaderValue::from_str(&h)
                    .map_err(|_| Error::invalid("oauth 1.0a header", "not a header value"))?;
                value.set_sensitive(true);
                request.headers_mut().insert(header::AUTHORIZATION, value);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    async fn reauth(&self, status: u16) -> Error {
        let why =
            format!("the provider API refused the credentials after a refresh (HTTP {status})");
        if let Ok(c) = self
            .integrations
            .connection(&self.user, &self.connection)
            .await
        {
            let _ = self.integrations.mark_reauth_required(&c, &why).await;
        }
        Error::ReauthRequired {
            connection: self.connection.clone(),
        }
    }
}

#[async_trait]
impl Transport for Authorized {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        let opts = self.integrations.sync_options();
        let (parts, body) = request.into_parts();
        let (mut transient, mut rate_waits) = (0u32, 0u32);
        let mut stale: Option<Version> = None;
        let mut refreshed = false;
        loop {
            self.circuit()?;
            self.take_turn().await?;
            let mut request = rebuild(&parts, &body)?;
            let version = self.authorize(&mut request, stale.take()).await?;
            let response = match self.integrations.http_client().send(request).await {
                Ok(r) => r,
                Err(e) if e.is_retryable() && transient < opts.max_retries => {
                    self.failed()?;
                    transient += 1;
                    let d = limits::full_jitter(transient, opts.backoff_base, opts.backoff_max);
                    self.wait(d).await?;
                    continue;
                }
                Err(e) => {
                    if e.is_retryable() {
                        self.failed()?;
                    }
                    return Err(e.into());
                }
            };
            let now = self.now();
            let status = response.status().as_u16();
            let header_wait = limits::wait_from_headers(response.headers(), now);
            if let Some(w) = limits::rate_limit_wait(response.headers(), now) {
                // Quota used up: the next request waits, whatever this one got.
                self.integrations.limits().block(
                    Key::Connection(self.user.clone(), self.connection.clone()),
                    now + w,
                );
            }
            match status {
                401 if !refreshed => {
                    refreshed = true;
                    stale = version;
                    continue;
                }
                401 => return Err(self.reauth(status).await),
                403 if header_wait.is_none() => {
                    if refreshed {
                        return Err(self.reauth(status).await);
                    }
                    self.integrations.limits().success(&self.connector);
                    return Ok(response);
                }
                429 | 503 | 403 if header_wait.is_some() || status == 429 => {
                    let wait = header_wait.unwrap_or_else(|| {
                        limits::full_jitter(rate_waits + 1, opts.backoff_base, opts.backoff_max)
                    });
                    self.integrations
                        .limits()
                        .block(Key::Provider(self.connector.clone()), now + wait);
                    rate_waits += 1;
                    if rate_waits > MAX_RATE_WAITS {
                        return Err(Error::RateLimited {
                            retry_after: Some(wait),
                        });
                    }
                    self.wait(wait).await?;
                    continue;
                }
                500..=599 => {
                    self.failed()?;
                    if transient >= opts.max_retries {
                        return Err(Error::UpstreamStatus {
                            what: "provider API",
                            status,
                        });
                    }
                    transient += 1;
                    let d = limits::full_jitter(transient, opts.backoff_base, opts.backoff_max);
                    self.wait(d).await?;
                    continue;
                }
                _ => {
                    self.integrations.limits().success(&self.connector);
                    return Ok(response);
                }
            }
        }
    }
}

/// Emits a `sync.*` event.
pub(crate) fn sync_event(
    integrations: &Integrations,
    kind: EventKind,
    user: &UserId,
    connection: &ConnectionId,
    connector: &ConnectorId,
    stream: &str,
    detail: Option<String>,
) {
    let mut e = Event::new(
        kind,
        user.clone(),
        connection.clone(),
        connector.clone(),
        integrations.clock_now(),
    )
    .with_stream(stream);
    if let Some(d) = detail {
        e = e.with_detail(d);
    }
    integrations.emit_event(e);
}
