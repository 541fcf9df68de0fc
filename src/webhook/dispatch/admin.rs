//! The management API: endpoints, secrets, replay, recovery and the
//! attempt log. Everything but listing needs an admin [`Actor`].

use std::time::{Duration, SystemTime};

use url::Url;

use super::endpoint::{self, Endpoint, EndpointConfig, EndpointSecrets, EndpointUpdate};
use super::{Actor, Dispatcher, validate, vault_location};
use crate::error::{Error, Result};
use crate::ids::{EndpointId, MessageId};
use crate::store::{AttemptRecord, DeliveryRecord, StoredEndpoint, StoredMessage};
use crate::vault::{CredentialKind, CredentialUpdate};
use crate::webhook::WebhookSecret;

/// The longest window [`Dispatcher::recover`] reaches back.
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::MAX_RECOVER_WINDOW;
/// assert_eq!(MAX_RECOVER_WINDOW, Duration::from_secs(14 * 24 * 3600));
/// ```
pub const MAX_RECOVER_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);

impl Dispatcher {
    async fn seal(&self, id: &EndpointId, secrets: &EndpointSecrets) -> Result<Vec<u8>> {
        let (owner, conn) = vault_location(id)?;
        let update = CredentialUpdate::new(
            CredentialKind::WebhookSecret,
            endpoint::to_plaintext(secrets),
        );
        let mut writes = self.inner.vault.seal(&owner, &conn, vec![update]).await?;
        writes
            .pop()
            .map(|w| w.envelope)
            .ok_or(Error::Internal("sealing returned nothing"))
    }

    pub(super) async fn open_secrets(&self, stored: &StoredEndpoint) -> Result<EndpointSecrets> {
        let (owner, conn) = vault_location(&stored.id)?;
        let text = self
            .inner
            .vault
            .open_envelope(&owner, &conn, CredentialKind::WebhookSecret, &stored.sealed)
            .await?;
        endpoint::from_plaintext(&text)
    }

    async fn view(&self, stored: StoredEndpoint, with_secrets: bool) -> Result<Endpoint> {
        let secrets = if with_secrets {
            let mut s = self.open_secrets(&stored).await?;
            endpoint::prune(&mut s.previous, self.inner.clock.now());
            Some(s)
        } else {
            None
        };
        let url = Url::parse(&stored.url).map_err(|_| Error::Storage {
            message: "a stored webhook endpoint URL is invalid".into(),
            source: None,
        })?;
        Ok(Endpoint {
            id: stored.id,
            url,
            event_types: stored.event_types,
            enabled: stored.enabled,
            disabled_reason: stored.disabled_reason,
            rate_limit: stored.rate_limit,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            first_failure_at: stored.first_failure_at,
            revision: stored.revision,
            secrets,
        })
    }

    async fn stored(&self, id: &EndpointId) -> Result<StoredEndpoint> {
        self.inner
            .store
            .get_webhook_endpoint(id)
            .await?
            .ok_or(Error::NotFound {
                what: "webhook endpoint",
            })
    }

    /// Registers an endpoint (admins only) and returns it with its secret.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-admin; [`Error::InvalidInput`] for a
    /// URL that is not `https` (or is refused by the egress policy), bad
    /// event types, custom headers or rate limit; storage and vault errors.
    ///
    /// ```
    /// # use consentry::{ErrorKind, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) })).build()?;
    /// let config = EndpointConfig::new("https://hooks.example.com/in");
    /// let err = d.create_endpoint(&Actor::user("bob"), config.clone()).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Forbidden);
    /// let created = d.create_endpoint(&Actor::admin("alice"), config).await?;
    /// assert!(created.enabled && created.secrets.is_some());
    /// assert!(d.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("http://hooks.example.com/")).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn create_endpoint(&self, actor: &Actor, config: EndpointConfig) -> Result<Endpoint> {
        let result = self.create_endpoint_unaudited(actor, config).await;
        self.audit_admin(
            "webhook_endpoint.created",
            actor,
            result.as_ref().ok().map(|e| &e.id),
            &result,
        )
        .await;
        result
    }

    async fn create_endpoint_unaudited(
        &self,
        actor: &Actor,
        config: EndpointConfig,
    ) -> Result<Endpoint> {
        actor.require_admin("create a webhook endpoint")?;
        let url = validate::url(&config.url, &self.inner.options)?;
        let event_types = validate::event_types(config.event_types)?;
        validate::headers(&config.headers)?;
        let rate_limit = validate::rate_limit(config.rate_limit)?;
        let current = match config.secret {
            Some(s) => s,
            None => WebhookSecret::generate()?,
        };
        let secrets = EndpointSecrets {
            current,
            previous: Vec::new(),
            headers: config.headers,
        };
        let id = EndpointId::generate()?;
        let now = self.inner.clock.now();
        let mut stored = StoredEndpoint::new(
            id.clone(),
            url.as_str(),
            self.seal(&id, &secrets).await?,
            now,
        );
        stored.event_types = event_types;
        stored.enabled = config.enabled;
        stored.rate_limit = rate_limit;
        self.inner.store.insert_webhook_endpoint(stored).await?;
        let stored = self.stored(&id).await?;
        self.view(stored, true).await
    }

    /// Changes an endpoint (admins only); returns it with its secret.
    ///
    /// # Errors
    /// As [`create_endpoint`](Self::create_endpoint); [`Error::NotFound`]
    /// for an unknown endpoint; [`Error::Conflict`] if it changed
    /// concurrently (read it again and retry).
    ///
    /// ```
    /// # use consentry::{store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig, EndpointUpdate};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) })).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let e = d.update_endpoint(&admin, &e.id, EndpointUpdate::new().enabled(false)).await?;
    /// assert!(!e.enabled);
    /// assert!(d.update_endpoint(&Actor::user("bob"), &e.id, EndpointUpdate::new().enabled(true)).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn update_endpoint(
        &self,
        actor: &Actor,
        id: &EndpointId,
        update: EndpointUpdate,
    ) -> Result<Endpoint> {
        let result = self.update_endpoint_unaudited(actor, id, update).await;
        self.audit_admin("webhook_endpoint.updated", actor, Some(id), &result)
            .await;
        result
    }

    async fn update_endpoint_unaudited(
        &self,
        actor: &Actor,
        id: &EndpointId,
        update: EndpointUpdate,
    ) -> Result<Endpoint> {
        actor.require_admin("change a webhook endpoint")?;
        let mut stored = self.stored(id).await?;
        if let Some(url) = &update.url {
            stored.url = validate::url(url, &self.inner.options)?.into();
        }
        if let Some(types) = update.event_types {
            stored.event_types = validate::event_types(types)?;
        }
        if let Some(limit) = update.rate_limit {
            stored.rate_limit = validate::rate_limit(limit)?;
        }
        if let Some(enabled) = update.enabled {
            if enabled {
                stored.disabled_reason = None;
            } else if stored.enabled {
                stored.disabled_reason = Some(format!("disabled by {}", actor.id()));
            }
            stored.enabled = enabled;
        }
        if let Some(headers) = update.headers {
            validate::headers(&headers)?;
            let mut secrets = self.open_secrets(&stored).await?;
            secrets.headers = headers;
            stored.sealed = self.seal(id, &secrets).await?;
        }
        stored.updated_at = self.inner.clock.now();
        self.inner.store.update_webhook_endpoint(stored).await?;
        let stored = self.stored(id).await?;
        self.view(stored, true).await
    }

    /// Rotates an endpoint's secret (admins only): `new` (or a generated
    /// one) signs from now on; the old one keeps signing next to it for
    /// the grace period (default 24 h), so receivers can switch without
    /// losing a delivery. At most 10 old secrets are kept.
    ///
    /// # Errors
    /// As [`update_endpoint`](Self::update_endpoint).
    ///
    /// ```
    /// # use consentry::{store::MemoryStore, vault::Keyring, secrecy::ExposeSecret};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) })).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let old = e.secrets.unwrap().current;
    /// let e = d.rotate_secret(&admin, &e.id, None).await?;
    /// let secrets = e.secrets.unwrap();
    /// assert_eq!(secrets.previous[0].0.expose_whsec().expose_secret(), old.expose_whsec().expose_secret());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rotate_secret(
        &self,
        actor: &Actor,
        id: &EndpointId,
        new: Option<WebhookSecret>,
    ) -> Result<Endpoint> {
        let result = self.rotate_secret_unaudited(actor, id, new).await;
        self.audit_admin("webhook_endpoint.secret_rotated", actor, Some(id), &result)
            .await;
        result
    }

    async fn rotate_secret_unaudited(
        &self,
        actor: &Actor,
        id: &EndpointId,
        new: Option<WebhookSecret>,
    ) -> Result<Endpoint> {
        actor.require_admin("rotate a webhook secret")?;
        let mut stored = self.stored(id).await?;
        let mut secrets = self.open_secrets(&stored).await?;
        let now = self.inner.clock.now();
        let next = match new {
            Some(s) => s,
            None => WebhookSecret::generate()?,
        };
        let old = std::mem::replace(&mut secrets.current, next);
        secrets.previous.push((
            old,
            endpoint::grace_until(now, self.inner.options.secret_grace),
        ));
        endpoint::prune(&mut secrets.previous, now);
        stored.sealed = self.seal(id, &secrets).await?;
        stored.updated_at = now;
        self.inner.store.update_webhook_endpoint(stored).await?;
        let stored = self.stored(id).await?;
        self.view(stored, true).await
    }

    /// Deletes an endpoint with its deliveries and attempt log, and
    /// destroys the data key its secrets were sealed under (admins only);
    /// returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-admin; storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// assert!(d.delete_endpoint(&Actor::user("bob"), &e.id).await.is_err());
    /// assert!(d.delete_endpoint(&admin, &e.id).await?);
    /// assert!(d.deliveries(&admin, &id).await?.is_empty());
    /// assert!(!d.delete_endpoint(&admin, &e.id).await?);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete_endpoint(&self, actor: &Actor, id: &EndpointId) -> Result<bool> {
        let result = self.delete_endpoint_unaudited(actor, id).await;
        self.audit_admin("webhook_endpoint.deleted", actor, Some(id), &result)
            .await;
        result
    }

    async fn delete_endpoint_unaudited(&self, actor: &Actor, id: &EndpointId) -> Result<bool> {
        actor.require_admin("delete a webhook endpoint")?;
        let existed = self.inner.store.delete_webhook_endpoint(id).await?;
        let (owner, _) = vault_location(id)?;
        self.inner.vault.erase_user(&owner).await?;
        super::lock(&self.inner.runtimes).remove(id);
        Ok(existed)
    }

    /// An endpoint; its secrets and custom headers only for an admin.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown endpoint; storage and vault
    /// errors.
    ///
    /// ```
    /// # use consentry::{store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?).http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) })).build()?;
    /// let e = d.create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// assert!(d.get_endpoint(&Actor::user("bob"), &e.id).await?.secrets.is_none());
    /// assert!(d.get_endpoint(&Actor::admin("alice"), &e.id).await?.secrets.is_some());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_endpoint(&self, actor: &Actor, id: &EndpointId) -> Result<Endpoint> {
        let result = match self.stored(id).await {
            Ok(stored) => self.view(stored, actor.is_admin()).await,
            Err(e) => Err(e),
        };
        if actor.is_admin() {
            // An admin's read returns the signing secrets.
            self.audit_admin("webhook_endpoint.secret_read", actor, Some(id), &result)
                .await;
        }
        result
    }

    /// Every endpoint, without secrets (use
    /// [`get_endpoint`](Self::get_endpoint) as an admin for those).
    ///
    /// # Errors
    /// Storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// let all = d.list_endpoints(&Actor::user("bob")).await?;
    /// assert_eq!((all.len(), all[0].id.clone()), (1, e.id));
    /// assert!(all[0].secrets.is_none());
    /// # let _ = id;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn list_endpoints(&self, _actor: &Actor) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        for stored in self.inner.store.list_webhook_endpoints().await? {
            out.push(self.view(stored, false).await?);
        }
        Ok(out)
    }

    /// Sends a message again (admins only): one new manual attempt to
    /// every enabled endpoint that had a delivery of it, with the same
    /// `webhook-id`. Nothing already scheduled changes; a failed manual
    /// attempt is not retried. Returns how many were queued.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-admin; [`Error::NotFound`] for an
    /// unknown message; storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// d.run_once().await?;
    /// assert_eq!(d.replay(&admin, &id).await?, 1);
    /// d.run_once().await?; // the manual attempt, not retried when it fails
    /// let log = d.attempts(&admin, &id).await?;
    /// assert_eq!(log[1].trigger, consentry::store::Trigger::Manual);
    /// # let _ = e;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn replay(&self, actor: &Actor, message: &MessageId) -> Result<u64> {
        actor.require_admin("replay a webhook message")?;
        self.message(actor, message).await?;
        let n = self
            .inner
            .store
            .replay_webhook_message(message, self.inner.clock.now())
            .await?;
        self.inner.wake.notify_waiters();
        Ok(n)
    }

    /// Queues the endpoint's failed and exhausted deliveries created since
    /// `since` for one manual attempt each (admins only); returns how many.
    /// `since` may reach back at most 14 days. Enable the endpoint first
    /// if it is disabled.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-admin; [`Error::InvalidInput`] for a
    /// window over 14 days; [`Error::NotFound`]; storage errors.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// d.run_once().await?;
    /// clock.advance(Duration::from_secs(3 * 86_400)); // long enough to exhaust the schedule
    /// for _ in 0..8 { d.run_once().await?; clock.advance(Duration::from_secs(12 * 3600)); }
    /// let since = clock.now() - Duration::from_secs(7 * 86_400);
    /// assert_eq!(d.recover(&admin, &e.id, since).await?, 1);
    /// assert!(d.recover(&admin, &e.id, clock.now() - Duration::from_secs(15 * 86_400)).await.is_err());
    /// # let _ = id;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn recover(
        &self,
        actor: &Actor,
        endpoint: &EndpointId,
        since: SystemTime,
    ) -> Result<u64> {
        actor.require_admin("recover webhook deliveries")?;
        let now = self.inner.clock.now();
        if now.duration_since(since).unwrap_or(Duration::ZERO) > MAX_RECOVER_WINDOW {
            return Err(Error::invalid("recover window", "at most 14 days back"));
        }
        self.stored(endpoint).await?;
        let n = self
            .inner
            .store
            .recover_webhook_deliveries(endpoint, since, now)
            .await?;
        self.inner.wake.notify_waiters();
        Ok(n)
    }

    /// A message (admins only).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`]; storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// let m = d.message(&admin, &id).await?;
    /// assert_eq!((m.event_type.as_str(), m.payload.as_slice()), ("user.created", &br#"{"id":"u_1"}"#[..]));
    /// # let _ = e;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn message(&self, actor: &Actor, id: &MessageId) -> Result<StoredMessage> {
        actor.require_admin("read a webhook message")?;
        self.inner
            .store
            .get_webhook_message(id)
            .await?
            .ok_or(Error::NotFound {
                what: "webhook message",
            })
    }

    /// A message's deliveries (admins only).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// let d1 = d.deliveries(&admin, &id).await?;
    /// assert_eq!((d1.len(), d1[0].endpoint.clone(), d1[0].attempts), (1, e.id, 0));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn deliveries(
        &self,
        actor: &Actor,
        message: &MessageId,
    ) -> Result<Vec<DeliveryRecord>> {
        actor.require_admin("read webhook deliveries")?;
        self.inner.store.webhook_deliveries(message).await
    }

    /// A message's attempt log, oldest first (admins only): time, status
    /// or error, response excerpt, duration, attempt number, trigger.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; storage errors.
    ///
    /// ```
    /// # use consentry::http::{self, HttpRequest, Response};
    /// # use consentry::{clock::{Clock, ManualClock}, store::MemoryStore, vault::Keyring};
    /// # use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A receiver that is down (any `HttpClient` works; the default one is a `WebhookClient`).
    /// let down = http::from_fn(|_req: HttpRequest| async { Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap()) });
    /// let clock = ManualClock::starting_now();
    /// let d = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    ///     .http(down).clock(clock.clone()).build()?;
    /// let admin = Actor::admin("alice");
    /// let e = d.create_endpoint(&admin, EndpointConfig::new("https://hooks.example.com/in")).await?;
    /// let id = d.publish("user.created", serde_json::json!({"id": "u_1"}), None).await?;
    /// d.run_once().await?;
    /// let a = &d.attempts(&admin, &id).await?[0];
    /// assert_eq!((a.attempt, a.status, a.response_text().as_ref()), (1, Some(503), "down"));
    /// # let _ = e;
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn attempts(&self, actor: &Actor, message: &MessageId) -> Result<Vec<AttemptRecord>> {
        actor.require_admin("read the webhook attempt log")?;
        self.inner.store.webhook_attempts(message).await
    }
}
