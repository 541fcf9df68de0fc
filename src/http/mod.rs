//! The one door to the network: [`HttpClient`].
//!
//! consentry's protocol code never opens a connection. It builds an
//! [`HttpRequest`] (an [`http::Request`] with a `Vec<u8>`
//! body), hands it to an [`HttpClient`], and parses the [`HttpResponse`] it
//! gets back. The trait has one method, so a host can plug in its own client
//! (with its proxy, tracing or egress policy), and tests write a mock as a
//! closure through [`from_fn`].
//!
//! # Rules every implementation follows
//!
//! - **A non-2xx status is a response, not an error.** `Err` means there is
//!   no response at all: the connection failed, timed out, or the response
//!   could not be read. The protocol layer decides what a 400 or a 503 means.
//! - **Do not follow redirects.** A token or revocation endpoint that
//!   redirects would otherwise make the client re-send credentials, or reach
//!   an address the host never meant to call (server-side request forgery:
//!   an attacker-influenced URL redirecting to `http://169.254.169.254/` or
//!   an internal service). A 3xx is returned as a response; nothing in OAuth
//!   needs a server-side redirect to be followed.
//! - **Bound the response body.** Read it incrementally and stop with
//!   [`HttpErrorKind::BodyTooLarge`] past a limit, so a hostile endpoint
//!   cannot make the process buffer gigabytes.
//!
//! [`ReqwestClient`] (feature `reqwest`, on by default) does all three, with
//! connect and total timeouts and a `User-Agent`.
//!
//! # Security warning
//!
//! Requests built by [`crate::oauth`] carry client secrets, authorization
//! codes and tokens in their headers and bodies. The `Authorization` header
//! is marked sensitive (its `Debug` shows `Sensitive`), but the body is a
//! plain `Vec<u8>`: do not `Debug`-log requests.
//!
//! ```
//! use consentry::http::{self, HttpClient, HttpRequest, Response};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let client = http::from_fn(|req: HttpRequest| async move {
//!     assert_eq!(req.uri(), "https://example.com/ping");
//!     Ok(Response::builder().status(503).body(b"down".to_vec()).unwrap())
//! });
//! let req = http::Request::get("https://example.com/ping").body(Vec::new()).unwrap();
//! let resp = client.send(req).await?;
//! assert_eq!(resp.status(), 503); // a response, not an error
//! # Ok::<(), consentry::http::HttpError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BoxError;

#[cfg(feature = "reqwest")]
mod reqwest;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use self::reqwest::{ReqwestClient, ReqwestClientBuilder};

/// The `http` crate's types that requests and responses are made of,
/// re-exported so callers need no direct dependency on it.
pub use ::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};

/// An HTTP request with its whole body in memory.
///
/// ```
/// use consentry::http::{HttpRequest, Method, Request};
/// let req: HttpRequest = Request::post("https://as.example/token")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .body(b"grant_type=refresh_token".to_vec())?;
/// assert_eq!(req.method(), Method::POST);
/// assert_eq!(req.body().len(), 24);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type HttpRequest = ::http::Request<Vec<u8>>;

/// An HTTP response with its whole body in memory.
///
/// ```
/// use consentry::http::{HttpResponse, Response, StatusCode};
/// let resp: HttpResponse = Response::builder().status(429).body(b"slow down".to_vec())?;
/// assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(resp.body(), b"slow down");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type HttpResponse = ::http::Response<Vec<u8>>;

/// Sends one HTTP request and returns the response, whatever its status.
///
/// Dyn-compatible: consentry holds clients as `Arc<dyn HttpClient>`.
/// Implemented for `Arc<T>` and `Box<T>`, and for closures through
/// [`from_fn`]. See the [module docs](self) for the rules an implementation
/// follows (no redirects, bounded bodies, non-2xx is not an error).
///
/// ```
/// use consentry::http::{HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpResponse};
///
/// #[derive(Debug)]
/// struct Offline;
///
/// #[async_trait::async_trait]
/// impl HttpClient for Offline {
///     async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, HttpError> {
///         Err(HttpError::new(HttpErrorKind::Connect, "network disabled"))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let client: std::sync::Arc<dyn HttpClient> = std::sync::Arc::new(Offline);
/// let req = consentry::http::Request::get("https://example.com/").body(Vec::new()).unwrap();
/// let err = client.send(req).await.unwrap_err();
/// assert!(err.is_retryable());
/// # });
/// ```
#[async_trait]
pub trait HttpClient: fmt::Debug + Send + Sync + 'static {
    /// Sends `request` and returns the response.
    ///
    /// ```
    /// use consentry::http::{self, HttpClient, HttpRequest, Request, Response};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = http::from_fn(|_req: HttpRequest| async {
    ///     Ok(Response::builder().status(404).body(Vec::new()).unwrap())
    /// });
    /// let request = Request::get("https://api.example/missing").body(Vec::new()).unwrap();
    /// let resp = client.send(request).await?;
    /// assert_eq!(resp.status(), 404); // a non-2xx status is `Ok`
    /// # Ok::<(), consentry::http::HttpError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// An [`HttpError`] only when there is no usable response: connection
    /// failure, timeout, a body over the client's limit, an unreadable
    /// response. A 4xx or 5xx status is `Ok`.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

#[async_trait]
impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        (**self).send(request).await
    }
}

#[async_trait]
impl<T: HttpClient + ?Sized> HttpClient for Box<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        (**self).send(request).await
    }
}

/// Wraps a closure `Fn(HttpRequest) -> impl Future<Output = Result<HttpResponse, HttpError>>`
/// as an [`HttpClient`].
///
/// A blanket `impl HttpClient for F where F: Fn(..)` cannot exist: the trait
/// requires `Debug`, which closures do not implement. The wrapper supplies a
/// `Debug` (`FnClient`) and keeps the trait's requirements honest.
///
/// ```
/// use consentry::http::{self, HttpClient, HttpRequest, Response};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let calls = Arc::new(AtomicUsize::new(0));
/// let seen = calls.clone();
/// let client = http::from_fn(move |_req: HttpRequest| {
///     seen.fetch_add(1, Ordering::SeqCst);
///     async { Ok(Response::new(b"{}".to_vec())) }
/// });
/// let req = http::Request::get("https://example.com/").body(Vec::new()).unwrap();
/// client.send(req).await?;
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// assert_eq!(format!("{client:?}"), "FnClient");
/// # Ok::<(), consentry::http::HttpError>(())
/// # }).unwrap();
/// ```
pub fn from_fn<F, Fut>(f: F) -> FnClient<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, HttpError>> + Send + 'static,
{
    FnClient { f }
}

/// An [`HttpClient`] made from a closure by [`from_fn`].
///
/// ```
/// let client = consentry::http::from_fn(|_req| async {
///     Ok(consentry::http::Response::new(Vec::new()))
/// });
/// assert_eq!(format!("{client:?}"), "FnClient");
/// ```
#[derive(Clone, Copy)]
pub struct FnClient<F> {
    f: F,
}

impl<F> fmt::Debug for FnClient<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClient")
    }
}

#[async_trait]
impl<F, Fut> HttpClient for FnClient<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, HttpError>> + Send + 'static,
{
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        (self.f)(request).await
    }
}

/// What went wrong when no HTTP response could be had.
///
/// The `Display` names the kind only; the underlying error (with details
/// such as the OS error) is the `source()`. URLs are not included, so query
/// strings never reach logs through this type.
///
/// ```
/// use consentry::http::{HttpError, HttpErrorKind};
/// let e = HttpError::new(HttpErrorKind::Timeout, "after 30 s");
/// assert_eq!(e.kind(), HttpErrorKind::Timeout);
/// assert!(e.is_retryable());
/// assert_eq!(e.to_string(), "the request timed out");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{}", kind.message())]
pub struct HttpError {
    kind: HttpErrorKind,
    #[source]
    source: Option<BoxError>,
}

impl HttpError {
    /// An error of `kind` caused by `source`.
    ///
    /// ```
    /// use consentry::http::{HttpError, HttpErrorKind};
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let e = HttpError::new(HttpErrorKind::Connect, io);
    /// assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "refused");
    /// ```
    pub fn new(kind: HttpErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// An error of `kind` without an underlying cause.
    ///
    /// ```
    /// use consentry::http::{HttpError, HttpErrorKind};
    /// let e = HttpError::from_kind(HttpErrorKind::BodyTooLarge);
    /// assert!(std::error::Error::source(&e).is_none());
    /// ```
    pub fn from_kind(kind: HttpErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use consentry::http::{HttpError, HttpErrorKind};
    /// let e = HttpError::from_kind(HttpErrorKind::Decode);
    /// assert_eq!(e.kind(), HttpErrorKind::Decode);
    /// ```
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// Whether sending the same request again later may succeed. See
    /// [`HttpErrorKind::is_retryable`].
    ///
    /// ```
    /// use consentry::http::{HttpError, HttpErrorKind};
    /// assert!(HttpError::from_kind(HttpErrorKind::Interrupted).is_retryable());
    /// assert!(!HttpError::from_kind(HttpErrorKind::Request).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// The classification of an [`HttpError`].
///
/// ```
/// use consentry::http::HttpErrorKind;
/// assert!(HttpErrorKind::Connect.is_retryable());
/// assert!(!HttpErrorKind::BodyTooLarge.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// No connection could be made (DNS, refused, TLS handshake). Retryable.
    Connect,
    /// The connect or total timeout elapsed. Retryable.
    Timeout,
    /// The connection broke while the response was being read. Retryable.
    Interrupted,
    /// The request could not be sent as built (an invalid URL or header, an
    /// unsupported scheme). Not retryable: fix the request.
    Request,
    /// The response body exceeded the client's size limit. Not retryable.
    BodyTooLarge,
    /// The response was not valid HTTP. Not retryable.
    Decode,
    /// The destination address is refused by the client's egress policy
    /// (server-side request forgery protection: a private, loopback,
    /// link-local or otherwise blocked address, see
    /// [`webhook::ssrf`](crate::webhook::ssrf)), or the URL's scheme is not
    /// allowed. Nothing was sent. Not retryable.
    Blocked,
    /// Anything else. Not retryable.
    Other,
}

impl HttpErrorKind {
    /// Whether the same request may succeed if sent again later: `Connect`,
    /// `Timeout` and `Interrupted`.
    ///
    /// ```
    /// use consentry::http::HttpErrorKind;
    /// assert!(HttpErrorKind::Timeout.is_retryable());
    /// assert!(!HttpErrorKind::Decode.is_retryable());
    /// ```
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Connect | Self::Timeout | Self::Interrupted)
    }

    fn message(self) -> &'static str {
        match self {
            Self::Connect => "could not connect",
            Self::Timeout => "the request timed out",
            Self::Interrupted => "the connection broke while reading the response",
            Self::Request => "the request could not be sent",
            Self::BodyTooLarge => "the response body is larger than the limit",
            Self::Decode => "the response could not be decoded",
            Self::Blocked => "the destination is not allowed",
            Self::Other => "the HTTP request failed",
        }
    }
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _dyn_compatible(_: &dyn HttpClient) {}

    fn get(uri: &str) -> HttpRequest {
        Request::get(uri).body(Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn closures_arcs_and_boxes_are_clients() {
        let client = from_fn(|req: HttpRequest| async move {
            let body = req.uri().path().as_bytes().to_vec();
            Ok(Response::builder().status(404).body(body).unwrap())
        });
        let resp = client.send(get("https://h/x")).await.unwrap();
        assert_eq!(
            (resp.status().as_u16(), resp.body().as_slice()),
            (404, &b"/x"[..])
        );

        let arc: Arc<dyn HttpClient> = Arc::new(client);
        assert_eq!(arc.send(get("https://h/a")).await.unwrap().body(), b"/a");
        let boxed: Box<dyn HttpClient> = Box::new(arc.clone());
        assert_eq!(boxed.send(get("https://h/b")).await.unwrap().body(), b"/b");
    }

    #[tokio::test]
    async fn errors_pass_through_with_their_kind() {
        let client = from_fn(|_req| async { Err(HttpError::from_kind(HttpErrorKind::Decode)) });
        let err = client.send(get("https://h/")).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Decode);
        assert!(!err.is_retryable());
        let wrapped = crate::Error::from(err);
        assert_eq!(wrapped.kind(), crate::ErrorKind::Upstream);
        let timeout = crate::Error::from(HttpError::from_kind(HttpErrorKind::Timeout));
        assert_eq!(timeout.kind(), crate::ErrorKind::Unavailable);
    }

    #[test]
    fn display_does_not_repeat_the_source() {
        let e = HttpError::new(HttpErrorKind::Connect, "refused on 10.0.0.1:443");
        assert_eq!(e.to_string(), "could not connect");
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(source, "refused on 10.0.0.1:443");
    }
}
