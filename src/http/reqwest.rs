//! [`ReqwestClient`]: the default [`HttpClient`], on reqwest with rustls.
//!
//! No reqwest type appears in this file's public API: reqwest can change
//! major versions without breaking consentry's users.

use std::time::Duration;

use async_trait::async_trait;

use super::{HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use crate::error::{Error, Result};

/// The default connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default total timeout (connect, send, and read the whole response).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default response body limit: 1 MiB.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An [`HttpClient`] on reqwest (rustls, the platform's trust roots).
///
/// Defaults chosen for talking to OAuth providers:
///
/// - **redirects are never followed**: a 3xx is returned as a response (see
///   the [module docs](super) for why);
/// - connect timeout 10 s, total timeout 30 s (the whole exchange,
///   including reading the body);
/// - response bodies are read chunk by chunk and refused past 1 MiB with
///   [`HttpErrorKind::BodyTooLarge`], before more is buffered;
/// - `User-Agent: consentry/<version>`;
/// - no cookies, no automatic decompression, and no proxy from the
///   environment unless [`ReqwestClientBuilder::env_proxy`] is set.
///
/// ```
/// use std::time::Duration;
/// use consentry::http::ReqwestClient;
///
/// let client = ReqwestClient::builder()
///     .timeout(Duration::from_secs(10))
///     .max_response_bytes(256 * 1024)
///     .build()?;
/// # let _ = client;
/// let default = ReqwestClient::new()?;
/// # let _ = default;
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: ::reqwest::Client,
    max_response_bytes: usize,
}

impl ReqwestClient {
    /// A client with the default settings.
    ///
    /// ```
    /// use consentry::http::ReqwestClient;
    /// let client = ReqwestClient::new()?;
    /// assert_eq!(client.max_response_bytes(), 1024 * 1024); // the default limit
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Http`] if the TLS backend cannot be initialised.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder to change timeouts, the body limit or the `User-Agent`.
    ///
    /// ```
    /// use consentry::http::ReqwestClient;
    /// let client = ReqwestClient::builder().max_response_bytes(64 * 1024).build()?;
    /// assert_eq!(client.max_response_bytes(), 64 * 1024);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn builder() -> ReqwestClientBuilder {
        ReqwestClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            user_agent: concat!("consentry/", env!("CARGO_PKG_VERSION")).to_owned(),
            env_proxy: false,
        }
    }

    /// The response body limit in bytes.
    ///
    /// ```
    /// let c = consentry::http::ReqwestClient::new()?;
    /// assert_eq!(c.max_response_bytes(), 1024 * 1024);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }
}

/// Settings for a [`ReqwestClient`]; see [`ReqwestClient::builder`].
///
/// ```
/// use std::time::Duration;
/// let client = consentry::http::ReqwestClient::builder()
///     .connect_timeout(Duration::from_secs(3))
///     .user_agent("my-app/1.0 (+https://example.com)")
///     .build()?;
/// # let _ = client;
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ReqwestClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    user_agent: String,
    env_proxy: bool,
}

impl ReqwestClientBuilder {
    /// How long to wait for a connection (TCP and TLS). Default 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::http::ReqwestClient;
    /// assert!(ReqwestClient::builder().connect_timeout(Duration::from_secs(3)).build().is_ok());
    /// assert!(ReqwestClient::builder().connect_timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the whole exchange may take, reading the body included.
    /// Default 30 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::http::ReqwestClient;
    /// assert!(ReqwestClient::builder().timeout(Duration::from_secs(10)).build().is_ok());
    /// assert!(ReqwestClient::builder().timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes. Default 1 MiB.
    ///
    /// ```
    /// use consentry::http::ReqwestClient;
    /// let client = ReqwestClient::builder().max_response_bytes(256 * 1024).build()?;
    /// assert_eq!(client.max_response_bytes(), 256 * 1024);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The `User-Agent` header. Default `consentry/<version>`. GitHub's API
    /// refuses requests without one.
    ///
    /// ```
    /// use consentry::http::ReqwestClient;
    /// assert!(ReqwestClient::builder().user_agent("my-app/1.0 (+https://app.example)").build().is_ok());
    /// assert!(ReqwestClient::builder().user_agent("bad\nagent").build().is_err());
    /// ```
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Use the proxy named by `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`.
    /// Off by default, so the process environment cannot silently route
    /// token requests elsewhere.
    ///
    /// ```
    /// use consentry::http::ReqwestClient;
    /// // Opt in only when the deployment routes egress through a proxy.
    /// let client = ReqwestClient::builder().env_proxy(true).build();
    /// assert!(client.is_ok());
    /// ```
    pub fn env_proxy(mut self, enabled: bool) -> Self {
        self.env_proxy = enabled;
        self
    }

    /// Builds the client.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::ErrorKind;
    /// use consentry::http::ReqwestClient;
    /// let err = ReqwestClient::builder().timeout(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(ReqwestClient::builder().build().is_ok());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a timeout is zero or the `User-Agent` is
    /// not a valid header value; [`Error::Http`] if the TLS backend cannot be
    /// initialised.
    pub fn build(self) -> Result<ReqwestClient> {
        if self.connect_timeout.is_zero() || self.timeout.is_zero() {
            return Err(Error::invalid("http client", "timeouts must be positive"));
        }
        if ::http::HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(Error::invalid(
                "http client",
                "the User-Agent is not a valid header value",
            ));
        }
        let mut builder = ::reqwest::Client::builder()
            .redirect(::reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent);
        if !self.env_proxy {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| Error::Http(HttpError::new(HttpErrorKind::Other, e.without_url())))?;
        Ok(ReqwestClient {
            client,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// Classifies a reqwest error (its URL removed).
fn classify(e: ::reqwest::Error) -> HttpError {
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_builder() || e.is_request() && e.status().is_none() && !e.is_body() {
        HttpErrorKind::Request
    } else if e.is_body() {
        HttpErrorKind::Interrupted
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Other
    };
    HttpError::new(kind, e.without_url())
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = ::reqwest::Request::try_from(request)
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e.without_url()))?;
        let mut response = self.client.execute(request).await.map_err(classify)?;
        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(HttpError::from_kind(HttpErrorKind::BodyTooLarge));
        }
        let mut builder = ::http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let capacity = response
            .content_length()
            .map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if chunk.len() > limit - body.len() {
                return Err(HttpError::from_kind(HttpErrorKind::BodyTooLarge));
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| HttpError::new(HttpErrorKind::Decode, e))
    }
}
