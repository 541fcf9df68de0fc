//! Endpoint configuration ([`EndpointConfig`], [`EndpointUpdate`]), the
//! view returned to callers ([`Endpoint`]), validation, and the sealed form
//! of an endpoint's secrets and custom headers.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::ids::EndpointId;
use crate::webhook::WebhookSecret;

/// Most custom headers per endpoint.
///
/// ```
/// use consentry::webhook::MAX_CUSTOM_HEADERS;
/// assert_eq!(MAX_CUSTOM_HEADERS, 16);
/// ```
pub const MAX_CUSTOM_HEADERS: usize = 16;
/// Most event types an endpoint subscribes to.
///
/// ```
/// use consentry::webhook::MAX_EVENT_TYPES;
/// assert_eq!(MAX_EVENT_TYPES, 64);
/// ```
pub const MAX_EVENT_TYPES: usize = 64;
/// Most rotated-out secrets kept per endpoint.
///
/// ```
/// use consentry::webhook::MAX_OLD_SECRETS;
/// assert_eq!(MAX_OLD_SECRETS, 10);
/// ```
pub const MAX_OLD_SECRETS: usize = 10;
/// Longest endpoint URL, in bytes.
///
/// ```
/// use consentry::webhook::MAX_URL_LEN;
/// assert_eq!(MAX_URL_LEN, 2048);
/// ```
pub const MAX_URL_LEN: usize = 2048;

/// A new endpoint: its URL and, optionally, event types, custom headers, a
/// rate limit and a secret (one is generated otherwise).
///
/// `Debug` shows header names only: values often carry credentials.
///
/// ```
/// use consentry::webhook::EndpointConfig;
/// let config = EndpointConfig::new("https://hooks.example.com/consentry")
///     .event_types(["user.created", "user.deleted"])
///     .header("x-team", "growth")
///     .rate_limit(50);
/// assert!(!format!("{config:?}").contains("growth"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct EndpointConfig {
    pub(super) url: String,
    pub(super) event_types: Vec<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) rate_limit: Option<u32>,
    pub(super) secret: Option<WebhookSecret>,
    pub(super) enabled: bool,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("headers", &HeaderNames(&self.headers))
            .field("rate_limit", &self.rate_limit)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl EndpointConfig {
    /// An enabled endpoint at `url` receiving every event type.
    ///
    /// ```
    /// use consentry::webhook::EndpointConfig;
    /// let config = EndpointConfig::new("https://hooks.example.com/in");
    /// assert!(format!("{config:?}").contains("enabled: true"));
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            event_types: Vec::new(),
            headers: Vec::new(),
            rate_limit: None,
            secret: None,
            enabled: true,
        }
    }

    /// Receive only these event types (empty: all).
    ///
    /// ```
    /// use consentry::webhook::EndpointConfig;
    /// let config = EndpointConfig::new("https://hooks.example.com/in").event_types(["user.created"]);
    /// assert!(format!("{config:?}").contains("user.created"));
    /// ```
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a custom header sent with every delivery.
    ///
    /// ```
    /// use consentry::webhook::EndpointConfig;
    /// let config = EndpointConfig::new("https://hooks.example.com/in").header("authorization", "Bearer s3cr3t");
    /// let debug = format!("{config:?}");
    /// assert!(debug.contains("authorization") && !debug.contains("s3cr3t"));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// At most `per_second` deliveries in any one second (1 to 10 000),
    /// per dispatcher process.
    ///
    /// ```
    /// use consentry::webhook::EndpointConfig;
    /// let config = EndpointConfig::new("https://hooks.example.com/in").rate_limit(10);
    /// assert!(format!("{config:?}").contains("rate_limit: Some(10)"));
    /// ```
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Signs with this secret instead of a generated one.
    ///
    /// ```
    /// use consentry::webhook::{EndpointConfig, WebhookSecret};
    /// let secret = WebhookSecret::generate()?;
    /// let config = EndpointConfig::new("https://hooks.example.com/in").secret(secret);
    /// assert!(!format!("{config:?}").contains("whsec_"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn secret(mut self, secret: WebhookSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Creates it disabled.
    ///
    /// ```
    /// use consentry::webhook::EndpointConfig;
    /// let config = EndpointConfig::new("https://hooks.example.com/in").disabled();
    /// assert!(format!("{config:?}").contains("enabled: false"));
    /// ```
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// Changes to an endpoint; what is not set stays.
///
/// ```
/// use consentry::webhook::EndpointUpdate;
/// let update = EndpointUpdate::new().url("https://hooks.example.com/v2").enabled(true).rate_limit(None);
/// assert!(format!("{update:?}").contains("/v2"));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct EndpointUpdate {
    pub(super) url: Option<String>,
    pub(super) event_types: Option<Vec<String>>,
    pub(super) headers: Option<Vec<(String, String)>>,
    pub(super) rate_limit: Option<Option<u32>>,
    pub(super) enabled: Option<bool>,
}

impl fmt::Debug for EndpointUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointUpdate")
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("headers", &self.headers.as_deref().map(HeaderNames))
            .field("rate_limit", &self.rate_limit)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl EndpointUpdate {
    /// No change.
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new();
    /// assert!(format!("{update:?}").contains("url: None"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A new URL.
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new().url("https://hooks.example.com/v2");
    /// assert!(format!("{update:?}").contains("https://hooks.example.com/v2"));
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// New event types (empty: all).
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new().event_types(["user.deleted"]);
    /// assert!(format!("{update:?}").contains("user.deleted"));
    /// ```
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces every custom header.
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new().headers([("x-team", "growth")]);
    /// let debug = format!("{update:?}");
    /// assert!(debug.contains("x-team") && !debug.contains("growth"));
    /// ```
    pub fn headers<I, N, V>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        self.headers = Some(
            headers
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        );
        self
    }

    /// A new rate limit (`None`: unlimited).
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new().rate_limit(Some(5));
    /// assert!(format!("{update:?}").contains("rate_limit: Some(Some(5))"));
    /// ```
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Enables or disables it. Enabling clears the disabled reason and the
    /// disabling policy's clock; deliveries queued meanwhile resume.
    ///
    /// ```
    /// use consentry::webhook::EndpointUpdate;
    /// let update = EndpointUpdate::new().enabled(false);
    /// assert!(format!("{update:?}").contains("enabled: Some(false)"));
    /// ```
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }
}

/// An endpoint as the management API returns it.
///
/// `secrets` is filled for admins only (and `None` in
/// [`Dispatcher::list_endpoints`](super::Dispatcher::list_endpoints)).
///
/// ```
/// use consentry::{store::MemoryStore, vault::Keyring};
/// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// let endpoint = dispatcher
///     .create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in"))
///     .await?;
/// assert_eq!(endpoint.url.as_str(), "https://hooks.example.com/in");
/// assert!(endpoint.enabled && endpoint.event_types.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Endpoint {
    /// Its id.
    pub id: EndpointId,
    /// Where deliveries go.
    pub url: Url,
    /// The event types it receives; empty: all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries per second, if limited.
    pub rate_limit: Option<u32>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its configuration last changed.
    pub updated_at: SystemTime,
    /// Since when its messages have been exhausting their retries.
    pub first_failure_at: Option<SystemTime>,
    /// Its configuration revision.
    pub revision: u64,
    /// Its secrets and custom headers (admins only).
    pub secrets: Option<EndpointSecrets>,
}

/// An endpoint's signing secrets and custom headers. `Debug` shows
/// neither secrets nor header values.
///
/// ```
/// use consentry::{store::MemoryStore, vault::Keyring};
/// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
/// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
///     .build()?;
/// let config = EndpointConfig::new("https://hooks.example.com/in").header("authorization", "Bearer s3cr3t");
/// let endpoint = dispatcher.create_endpoint(&Actor::admin("alice"), config).await?;
/// let secrets = endpoint.secrets.expect("admins see the secrets");
/// assert!(secrets.previous.is_empty());
/// assert!(!format!("{secrets:?}").contains("s3cr3t"));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct EndpointSecrets {
    /// The secret new signatures are made with; give it to the receiver.
    pub current: WebhookSecret,
    /// Rotated-out secrets still signing (next to `current`) until the
    /// given time.
    pub previous: Vec<(WebhookSecret, SystemTime)>,
    /// Custom headers sent with every delivery.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for EndpointSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSecrets")
            .field("current", &self.current)
            .field("previous", &self.previous.len())
            .field("headers", &HeaderNames(&self.headers))
            .finish()
    }
}

impl EndpointSecrets {
    /// The secrets that sign at `now`: the current one, then the
    /// unexpired previous ones.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{store::MemoryStore, vault::Keyring};
    /// use consentry::webhook::{Actor, Dispatcher, EndpointConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dispatcher = Dispatcher::builder().store(MemoryStore::new()).keyring(Keyring::generate()?)
    /// #   .http(consentry::http::from_fn(|_r| async { Err(consentry::http::HttpError::from_kind(consentry::http::HttpErrorKind::Connect)) }))
    ///     .build()?;
    /// let endpoint = dispatcher
    ///     .create_endpoint(&Actor::admin("alice"), EndpointConfig::new("https://hooks.example.com/in"))
    ///     .await?;
    /// let secrets = endpoint.secrets.expect("admins see the secrets");
    /// assert_eq!(secrets.signing_at(SystemTime::now()).len(), 1); // no rotation yet
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn signing_at(&self, now: SystemTime) -> Vec<&WebhookSecret> {
        std::iter::once(&self.current)
            .chain(
                self.previous
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(s, _)| s),
            )
            .collect()
    }
}

/// Header names only, for `Debug`.
struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The plaintext sealed in the vault for one endpoint.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Sealed {
    v: u8,
    current: String,
    old: Vec<OldSecret>,
    headers: Vec<Header>,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct OldSecret {
    secret: String,
    until_ms: i64,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct Header {
    name: String,
    value: String,
}

/// Serializes secrets and headers for sealing.
pub(super) fn to_plaintext(secrets: &EndpointSecrets) -> secrecy::SecretString {
    let sealed = Sealed {
        v: 1,
        current: secrets.current.expose_whsec().expose_secret().to_owned(),
        old: secrets
            .previous
            .iter()
            .map(|(s, until)| OldSecret {
                secret: s.expose_whsec().expose_secret().to_owned(),
                until_ms: crate::clock::unix_millis(*until),
            })
            .collect(),
        headers: secrets
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    // Serializing plain strings and numbers cannot fail.
    secrecy::SecretString::from(serde_json::to_string(&sealed).unwrap_or_default())
}

/// Parses what [`to_plaintext`] made.
pub(super) fn from_plaintext(text: &secrecy::SecretString) -> Result<EndpointSecrets> {
    let corrupt = || Error::Storage {
        message: "a sealed webhook endpoint configuration is invalid".into(),
        source: None,
    };
    let sealed: Sealed = serde_json::from_str(text.expose_secret()).map_err(|_| corrupt())?;
    if sealed.v != 1 {
        return Err(corrupt());
    }
    let previous = sealed
        .old
        .iter()
        .map(|o| {
            WebhookSecret::parse(&o.secret)
                .map(|s| (s, crate::clock::from_unix_millis(o.until_ms)))
                .map_err(|_| corrupt())
        })
        .collect::<Result<_>>()?;
    Ok(EndpointSecrets {
        current: WebhookSecret::parse(&sealed.current).map_err(|_| corrupt())?,
        previous,
        headers: sealed
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
    })
}

/// Drops expired previous secrets and keeps the newest
/// [`MAX_OLD_SECRETS`].
pub(super) fn prune(previous: &mut Vec<(WebhookSecret, SystemTime)>, now: SystemTime) {
    previous.retain(|(_, until)| *until > now);
    previous.sort_by_key(|(_, until)| std::cmp::Reverse(*until));
    previous.truncate(MAX_OLD_SECRETS);
}

/// When a rotated-out secret stops signing.
pub(super) fn grace_until(now: SystemTime, grace: Duration) -> SystemTime {
    now.checked_add(grace).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_round_trip_and_pruning() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut previous: Vec<_> = (0..12)
            .map(|i| {
                (
                    WebhookSecret::generate().unwrap(),
                    now + Duration::from_secs(i * 10) - Duration::from_secs(15),
                )
            })
            .collect();
        prune(&mut previous, now);
        assert_eq!(
            previous.len(),
            MAX_OLD_SECRETS,
            "2 expired dropped, 10 kept"
        );
        let secrets = EndpointSecrets {
            current: WebhookSecret::generate().unwrap(),
            previous,
            headers: vec![("x-token".into(), "hunter2".into())],
        };
        let text = to_plaintext(&secrets);
        let back = from_plaintext(&text).unwrap();
        assert_eq!(
            back.current.expose_whsec().expose_secret(),
            secrets.current.expose_whsec().expose_secret()
        );
        assert_eq!(back.previous.len(), 10);
        assert_eq!(back.headers, secrets.headers);
        assert_eq!(back.signing_at(now).len(), 11);
        let debug = format!("{back:?}");
        assert!(!debug.contains("hunter2") && debug.contains("x-token"));
        assert!(from_plaintext(&secrecy::SecretString::from("{}")).is_err());
    }
}
