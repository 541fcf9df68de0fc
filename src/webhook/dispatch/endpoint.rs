//! Endpoint configuration ([`EndpointConfig`], [`EndpointUpdate`]), the
//! view returned to callers ([`Endpoint`]), validation, and the sealed form
//! of an endpoint's secrets and custom headers.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use url::{Host, Url};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::options::DispatcherOptions;
use crate::error::{Error, Result};
use crate::ids::EndpointId;
use crate::webhook::WebhookSecret;

/// Most custom headers per endpoint.
pub const MAX_CUSTOM_HEADERS: usize = 16;
/// Most event types an endpoint subscribes to.
pub const MAX_EVENT_TYPES: usize = 64;
/// Most rotated-out secrets kept per endpoint.
pub const MAX_OLD_SECRETS: usize = 10;
/// Longest endpoint URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Headers an endpoint may not set: hop-by-hop headers, headers the
/// dispatcher owns, and anything starting with `webhook-`.
const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
];

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
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a custom header sent with every delivery.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// At most `per_second` deliveries per second (1 to 10 000), per
    /// dispatcher process.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Signs with this secret instead of a generated one.
    pub fn secret(mut self, secret: WebhookSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Creates it disabled.
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
    pub fn new() -> Self {
        Self::default()
    }

    /// A new URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// New event types (empty: all).
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces every custom header.
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
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Enables or disables it. Enabling clears the disabled reason and the
    /// disabling policy's clock; deliveries queued meanwhile resume.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }
}

/// An endpoint as the management API returns it.
///
/// `secrets` is filled for admins only (and `None` in
/// [`Dispatcher::list_endpoints`](super::Dispatcher::list_endpoints)).
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

/// Validates event types: ASCII tokens, at most 128 bytes each, at most
/// [`MAX_EVENT_TYPES`]; sorted and deduplicated.
pub(super) fn event_types(types: Vec<String>) -> Result<Vec<String>> {
    if types.len() > MAX_EVENT_TYPES {
        return Err(Error::invalid(
            "event types",
            format!("at most {MAX_EVENT_TYPES} per endpoint"),
        ));
    }
    let mut types = types
        .into_iter()
        .map(|t| event_type(&t).map(|()| t))
        .collect::<Result<Vec<_>>>()?;
    types.sort_unstable();
    types.dedup();
    Ok(types)
}

/// Validates one event type.
pub(super) fn event_type(t: &str) -> Result<()> {
    crate::ids::check_token("event type", t, 128)
}

/// Validates custom headers.
pub(super) fn headers(headers: &[(String, String)]) -> Result<()> {
    if headers.len() > MAX_CUSTOM_HEADERS {
        return Err(Error::invalid(
            "custom header",
            format!("at most {MAX_CUSTOM_HEADERS} per endpoint"),
        ));
    }
    let mut seen = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || name.len() > 64
            || http::HeaderName::from_bytes(lower.as_bytes()).is_err()
        {
            return Err(Error::invalid(
                "custom header",
                "a name must be an HTTP token of 1 to 64 characters",
            ));
        }
        if RESERVED.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(Error::invalid(
                "custom header",
                format!("`{lower}` is set by the dispatcher or is hop-by-hop"),
            ));
        }
        if value.len() > 1024 || http::HeaderValue::from_str(value).is_err() {
            return Err(Error::invalid(
                "custom header",
                format!("the value of `{lower}` must be at most 1024 visible ASCII characters"),
            ));
        }
        if seen.contains(&lower) {
            return Err(Error::invalid(
                "custom header",
                format!("`{lower}` appears twice"),
            ));
        }
        seen.push(lower);
    }
    Ok(())
}

/// Validates a rate limit.
pub(super) fn rate_limit(limit: Option<u32>) -> Result<Option<u32>> {
    match limit {
        Some(n) if !(1..=10_000).contains(&n) => Err(Error::invalid(
            "rate limit",
            "must be 1 to 10000 deliveries per second",
        )),
        other => Ok(other),
    }
}

/// Validates an endpoint URL: `https` (or `http` to a loopback host when
/// allowed), a host, no credentials, no fragment, and an IP literal host
/// must pass the egress policy.
pub(super) fn url(raw: &str, options: &DispatcherOptions) -> Result<Url> {
    let invalid = |reason: &str| Error::invalid("endpoint url", reason.to_owned());
    if raw.len() > MAX_URL_LEN {
        return Err(invalid("longer than 2048 bytes"));
    }
    let url = Url::parse(raw).map_err(|_| invalid("not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not contain a fragment"));
    }
    let host = url.host().ok_or_else(|| invalid("has no host"))?;
    let loopback = match &host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback && !options.allow_insecure_loopback {
        return Err(invalid(
            "loopback destinations need DispatcherOptions::allow_insecure_loopback",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if loopback && options.allow_insecure_loopback => {}
        "http" => return Err(invalid("must use https")),
        _ => return Err(invalid("must be an https URL")),
    }
    let ip = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = ip
        && let Err(reason) = options.egress_policy().check(ip)
    {
        return Err(Error::invalid(
            "endpoint url",
            format!("its address is refused ({reason})"),
        ));
    }
    Ok(url)
}

/// When a rotated-out secret stops signing.
pub(super) fn grace_until(now: SystemTime, grace: Duration) -> SystemTime {
    now.checked_add(grace).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let strict = DispatcherOptions::default();
        let dev = DispatcherOptions::default().allow_insecure_loopback(true);
        assert!(url("https://hooks.example.com/a?b=c", &strict).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "https://127.0.0.1/",
            "https://localhost/",
            "https://[::1]/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest",
            "https://[::ffff:127.0.0.1]/",
            "not a url",
        ] {
            assert!(url(bad, &strict).is_err(), "{bad}");
        }
        assert!(url("http://127.0.0.1:8080/", &dev).is_ok());
        assert!(url("http://localhost:8080/", &dev).is_ok());
        assert!(
            url("http://hooks.example.com/", &dev).is_err(),
            "http only to loopback"
        );
        assert!(url("https://10.0.0.1/", &dev).is_err());
        let private = DispatcherOptions::default().allow_network("10.0.0.0/8".parse().unwrap());
        assert!(url("https://10.0.0.1/", &private).is_ok());
        assert!(url(&format!("https://h.example/{}", "a".repeat(2048)), &strict).is_err());
    }

    #[test]
    fn header_rules() {
        let ok = vec![("X-Team".to_owned(), "growth".to_owned())];
        assert!(headers(&ok).is_ok());
        for (n, v) in [
            ("Connection", "close"),
            ("webhook-id", "x"),
            ("Webhook-Signature", "x"),
            ("content-type", "text/plain"),
            ("host", "evil"),
            ("bad name", "x"),
            ("x-a", "line\nbreak"),
        ] {
            assert!(headers(&[(n.to_owned(), v.to_owned())]).is_err(), "{n}");
        }
        let dup = vec![
            ("x-a".to_owned(), "1".to_owned()),
            ("X-A".to_owned(), "2".to_owned()),
        ];
        assert!(headers(&dup).is_err());
        let many: Vec<_> = (0..17)
            .map(|i| (format!("x-{i}"), "v".to_owned()))
            .collect();
        assert!(headers(&many).is_err());
        assert!(headers(&[("x-a".to_owned(), "v".repeat(1025))]).is_err());
    }

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
