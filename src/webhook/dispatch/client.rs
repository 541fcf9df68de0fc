//! [`WebhookClient`]: the dispatcher's default [`HttpClient`], reqwest with
//! an address filter in front of every connection (feature `reqwest`).
//!
//! No reqwest type appears in the public API.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::DispatcherOptions;
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use crate::store::MAX_RESPONSE_EXCERPT;
use crate::webhook::ssrf::{BlockReason, Policy};

/// Most addresses taken from one DNS answer.
const MAX_ADDRESSES: usize = 32;

/// An [`HttpClient`] for outbound webhooks that connects only to allowed
/// addresses.
///
/// - A URL whose host is an IP literal is checked against the
///   [`Policy`] before anything is sent.
/// - A host name is resolved by this client (the system resolver, off the
///   async runtime); every address the policy blocks is dropped and the
///   connection goes only to an address that passed. There is no second
///   lookup, so DNS rebinding cannot swap in a private address after the
///   check. When no address passes, the request fails with
///   [`HttpErrorKind::Blocked`].
/// - Redirects are never followed; no proxy; no cookies.
/// - Only `https` URLs, and `http` when allowed (tests, local
///   development).
/// - The response body is read up to a limit (default 20 000 bytes) and
///   the rest is dropped: the dispatcher keeps only an excerpt, and a huge
///   body must not fail a delivery that was answered `2xx`.
///
/// ```
/// use consentry::http::{HttpClient, HttpErrorKind, Request};
/// use consentry::webhook::WebhookClient;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = WebhookClient::builder().allow_http(true).build()?;
/// let metadata = Request::post("http://169.254.169.254/latest/meta-data").body(Vec::new()).unwrap();
/// let err = client.send(metadata).await.unwrap_err(); // refused before connecting
/// assert_eq!(err.kind(), HttpErrorKind::Blocked);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct WebhookClient {
    client: ::reqwest::Client,
    policy: Arc<Policy>,
    allow_http: bool,
    max_response_bytes: usize,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("policy", &self.policy)
            .field("allow_http", &self.allow_http)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`WebhookClient`].
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::{WebhookClient, ssrf::Policy};
/// let client = WebhookClient::builder()
///     .policy(Policy::new().allow("10.20.0.0/16".parse()?))
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct WebhookClientBuilder {
    policy: Policy,
    allow_http: bool,
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
}

impl WebhookClientBuilder {
    /// The address policy; default [`Policy::new`] (every blocked range,
    /// no exception).
    ///
    /// ```
    /// use consentry::http::{HttpClient, HttpErrorKind, Request};
    /// use consentry::webhook::{WebhookClient, ssrf::Policy};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let local = || Request::post("https://127.0.0.1:1/in").body(Vec::new()).unwrap();
    /// let strict = WebhookClient::builder().build()?;
    /// assert_eq!(strict.send(local()).await.unwrap_err().kind(), HttpErrorKind::Blocked);
    /// let dev = WebhookClient::builder().policy(Policy::new().allow("127.0.0.1".parse()?)).build()?;
    /// let err = dev.send(local()).await.unwrap_err(); // let through; nothing listens on port 1
    /// assert_ne!(err.kind(), HttpErrorKind::Blocked);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Accept `http://` URLs too. Off by default.
    ///
    /// ```
    /// use consentry::http::{HttpClient, HttpErrorKind, Request};
    /// use consentry::webhook::{WebhookClient, ssrf::Policy};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let plain = || Request::post("http://127.0.0.1:1/in").body(Vec::new()).unwrap();
    /// let loopback = Policy::new().allow("127.0.0.1".parse()?);
    /// let strict = WebhookClient::builder().policy(loopback.clone()).build()?;
    /// assert_eq!(strict.send(plain()).await.unwrap_err().kind(), HttpErrorKind::Blocked); // the scheme
    /// let dev = WebhookClient::builder().policy(loopback).allow_http(true).build()?;
    /// assert_ne!(dev.send(plain()).await.unwrap_err().kind(), HttpErrorKind::Blocked);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The total timeout of one request; default 15 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::WebhookClient;
    /// assert!(WebhookClient::builder().timeout(Duration::from_secs(5)).build().is_ok());
    /// assert!(WebhookClient::builder().timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout; default 10 s (never more than the timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::WebhookClient;
    /// assert!(WebhookClient::builder().connect_timeout(Duration::from_secs(2)).build().is_ok());
    /// assert!(WebhookClient::builder().connect_timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How much of a response body is kept; default 20 000 bytes.
    ///
    /// ```
    /// use consentry::webhook::WebhookClient;
    /// let client = WebhookClient::builder().max_response_bytes(1024).build()?;
    /// # let _ = client;
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a zero timeout; [`Error::Http`] if the
    /// TLS backend cannot be initialised.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::WebhookClient;
    /// assert!(WebhookClient::builder().build().is_ok());
    /// assert!(WebhookClient::builder().timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn build(self) -> Result<WebhookClient> {
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::invalid(
                "webhook client",
                "timeouts must be positive",
            ));
        }
        let policy = Arc::new(self.policy);
        let client = ::reqwest::Client::builder()
            .redirect(::reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(FilteringResolver {
                policy: policy.clone(),
            })
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout.min(self.timeout))
            .user_agent(concat!("consentry-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Http(HttpError::new(HttpErrorKind::Other, e.without_url())))?;
        Ok(WebhookClient {
            client,
            policy,
            allow_http: self.allow_http,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

impl WebhookClient {
    /// A builder.
    ///
    /// ```
    /// use consentry::http::{HttpClient, HttpErrorKind, Request};
    /// use consentry::webhook::WebhookClient;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = WebhookClient::builder().build()?; // https only, every blocked range
    /// let private = Request::post("https://10.0.0.7/in").body(Vec::new()).unwrap();
    /// assert_eq!(client.send(private).await.unwrap_err().kind(), HttpErrorKind::Blocked);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn builder() -> WebhookClientBuilder {
        WebhookClientBuilder {
            policy: Policy::new(),
            allow_http: false,
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: MAX_RESPONSE_EXCERPT,
        }
    }

    /// The client a dispatcher with `options` uses by default: their
    /// egress policy and timeout; `http` with
    /// [`DispatcherOptions::allow_insecure_loopback`].
    ///
    /// # Errors
    /// As [`WebhookClientBuilder::build`].
    ///
    /// ```
    /// use consentry::http::{HttpClient, HttpErrorKind, Request};
    /// use consentry::webhook::{DispatcherOptions, WebhookClient};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let local = || Request::post("http://127.0.0.1:1/in").body(Vec::new()).unwrap();
    /// let prod = WebhookClient::for_options(&DispatcherOptions::default())?;
    /// assert_eq!(prod.send(local()).await.unwrap_err().kind(), HttpErrorKind::Blocked);
    /// let dev = WebhookClient::for_options(&DispatcherOptions::default().allow_insecure_loopback(true))?;
    /// assert_ne!(dev.send(local()).await.unwrap_err().kind(), HttpErrorKind::Blocked);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn for_options(options: &DispatcherOptions) -> Result<Self> {
        Self::builder()
            .policy(options.egress_policy())
            .allow_http(options.allow_insecure_loopback)
            .timeout(options.timeout)
            .build()
    }

    /// Checks a URL's scheme and, for an IP literal host, its address,
    /// without sending anything.
    fn check(&self, uri: &http::Uri) -> std::result::Result<(), HttpError> {
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_http => {}
            _ => return Err(HttpError::new(HttpErrorKind::Blocked, "scheme not allowed")),
        }
        let host = uri
            .host()
            .ok_or_else(|| HttpError::new(HttpErrorKind::Request, "no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let bare = bare.split('%').next().unwrap_or(bare);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.policy.check(ip).map_err(blocked)?;
        }
        Ok(())
    }
}

fn blocked(reason: BlockReason) -> HttpError {
    HttpError::new(HttpErrorKind::Blocked, Blocked(reason))
}

/// Why an address was refused (the source of a `Blocked` error).
#[derive(Debug)]
struct Blocked(BlockReason);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused destination: {}", self.0)
    }
}

impl std::error::Error for Blocked {}

/// Resolves with the system resolver and keeps only allowed addresses.
struct FilteringResolver {
    policy: Arc<Policy>,
}

impl ::reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: ::reqwest::dns::Name) -> ::reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut first_reason = None;
            let allowed: Vec<SocketAddr> = found
                .take(MAX_ADDRESSES)
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        first_reason.get_or_insert(reason);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_reason) {
                (true, Some(reason)) => Err(Box::new(Blocked(reason)) as crate::error::BoxError),
                (true, None) => Err("the name resolved to no address".into()),
                (false, _) => Ok(Box::new(allowed.into_iter()) as ::reqwest::dns::Addrs),
            }
        })
    }
}

/// Classifies a reqwest error: a refused address anywhere in its chain is
/// `Blocked`.
fn classify(e: ::reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return blocked(b.0);
        }
        source = err.source();
    }
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_body() {
        HttpErrorKind::Interrupted
    } else if e.is_builder() || e.is_request() {
        HttpErrorKind::Request
    } else {
        HttpErrorKind::Other
    };
    HttpError::new(kind, e.without_url())
}

#[async_trait]
impl HttpClient for WebhookClient {
    async fn send(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        self.check(request.uri())?;
        let request = ::reqwest::Request::try_from(request)
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e.without_url()))?;
        let mut response = self.client.execute(request).await.map_err(classify)?;
        let mut builder = ::http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let limit = self.max_response_bytes;
        let mut body = Vec::with_capacity(limit.min(4096));
        while body.len() < limit {
            match response.chunk().await.map_err(classify)? {
                Some(chunk) => {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                None => break,
            }
        }
        builder
            .body(body)
            .map_err(|e| HttpError::new(HttpErrorKind::Decode, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_schemes_are_checked_before_sending() {
        let strict = WebhookClient::builder().build().unwrap();
        let dev = WebhookClient::builder()
            .allow_http(true)
            .policy(Policy::new().allow("127.0.0.1".parse().unwrap()))
            .build()
            .unwrap();
        let kind =
            |c: &WebhookClient, u: &str| c.check(&u.parse().unwrap()).err().map(|e| e.kind());
        for url in [
            "https://10.1.2.3/",
            "https://127.0.0.1:8443/x",
            "https://[::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a00:1]/",
            "http://127.0.0.1/",
            "ftp://example.com/",
        ] {
            assert_eq!(kind(&strict, url), Some(HttpErrorKind::Blocked), "{url}");
        }
        assert_eq!(kind(&strict, "https://93.184.215.14/"), None);
        assert_eq!(
            kind(&strict, "https://hooks.example.com/"),
            None,
            "names are checked at resolution"
        );
        assert_eq!(kind(&dev, "http://127.0.0.1:9/"), None);
        assert_eq!(
            kind(&dev, "http://127.0.0.2:9/"),
            Some(HttpErrorKind::Blocked)
        );
    }
}
