//! What a connector gets to fetch data and perform actions with
//! ([`FetchContext`]), and what it returns ([`Page`]).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpRequest, HttpResponse, header};
use crate::ids::Purpose;
use crate::records::Record;

/// The largest JSON body [`FetchContext::get_json`] parses (16 MiB).
///
/// ```
/// use consentry::connector::{FetchContext, MAX_JSON_BODY};
/// use consentry::http::{self, HttpRequest, Response};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let huge = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async {
///     Ok(Response::new(vec![b' '; MAX_JSON_BODY + 1]))
/// }));
/// assert!(huge.get_json("https://api.example/items").await.is_err());
/// # });
/// ```
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// The transport behind a [`FetchContext`]: authorised, budgeted and
/// retried by the sync runtime, or plain.
#[async_trait]
pub(crate) trait Transport: fmt::Debug + Send + Sync {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse>;
}

#[derive(Debug)]
struct Plain(Arc<dyn HttpClient>);

#[async_trait]
impl Transport for Plain {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        Ok(self.0.send(request).await?)
    }
}

/// An HTTP client already authorised for one connection and one purpose,
/// plus the connection's settings. It is all a connector gets: never the
/// vault, never the store.
///
/// Requests sent through it get the connection's bearer token; a 401 makes
/// it refresh the token once and retry once (a second 401 or a 403 then
/// means the user must connect again, [`Error::ReauthRequired`]); it waits
/// for the provider's and the connection's budgets, honours `Retry-After`
/// and rate-limit headers, and retries transient failures with backoff.
///
/// ```
/// use consentry::connector::FetchContext;
/// use consentry::http::{self, HttpRequest, Response};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // For connectors without credentials (and for tests): a plain client.
/// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async {
///     Ok(Response::new(br#"{"items": [1, 2]}"#.to_vec()))
/// }));
/// let body = ctx.get_json("https://api.example/items").await?;
/// assert_eq!(body["items"][1], 2);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FetchContext {
    transport: Arc<dyn Transport>,
    purpose: Option<Purpose>,
    settings: serde_json::Map<String, serde_json::Value>,
    now: SystemTime,
}

impl fmt::Debug for FetchContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchContext")
            .field("purpose", &self.purpose)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl FetchContext {
    /// A context over a plain client: no token, no budgets, no retries.
    /// For connectors that need no credentials, and for testing one.
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async { Ok(Response::new(b"{}".to_vec())) }));
    /// assert!(ctx.purpose().is_none() && ctx.settings().is_empty());
    /// ```
    pub fn unauthenticated(http: impl HttpClient) -> Self {
        Self::new(
            Arc::new(Plain(Arc::new(http))),
            None,
            serde_json::Map::new(),
            SystemTime::now(),
        )
    }

    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        purpose: Option<Purpose>,
        settings: serde_json::Map<String, serde_json::Value>,
        now: SystemTime,
    ) -> Self {
        Self {
            transport,
            purpose,
            settings,
            now,
        }
    }

    /// Sets the settings the connector sees (for testing a connector).
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// let ctx = FetchContext::unauthenticated(consentry::http::from_fn(|_| async {
    ///     Ok(consentry::http::Response::new(Vec::new()))
    /// }))
    /// .with_settings(serde_json::json!({"calendar": "work"}).as_object().unwrap().clone());
    /// assert_eq!(ctx.setting_str("calendar"), Some("work"));
    /// ```
    #[must_use]
    pub fn with_settings(mut self, settings: serde_json::Map<String, serde_json::Value>) -> Self {
        self.settings = settings;
        self
    }

    /// Sends `request` with the connection's credentials. Any status the
    /// connector may want to interpret (2xx, 3xx, 404, 410, ...) is a
    /// response.
    ///
    /// # Errors
    /// [`Error::ReauthRequired`] after a 401 that a refresh did not cure;
    /// [`Error::RateLimited`] when the provider asks to wait longer than
    /// the run may; [`Error::ProviderUnavailable`] when the provider's
    /// circuit is open; [`Error::UpstreamStatus`] for a 5xx after retries;
    /// [`Error::Http`] when no response could be had.
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async {
    ///     Ok(Response::builder().status(404).body(Vec::new()).unwrap())
    /// }));
    /// let request = http::Request::get("https://api.example/items/9").body(Vec::new()).unwrap();
    /// let response = ctx.send(request).await?;
    /// assert_eq!(response.status(), 404); // a response, for the connector to interpret
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.transport.send(request).await
    }

    /// `GET url` with `Accept: application/json`; a 2xx body parsed as
    /// JSON.
    ///
    /// # Errors
    /// As [`FetchContext::send`]; [`Error::UpstreamStatus`] for a non-2xx
    /// answer, [`Error::InvalidResponse`] for a body that is not JSON or is
    /// larger than [`MAX_JSON_BODY`], [`Error::InvalidInput`] for a bad
    /// URL.
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|req: HttpRequest| async move {
    ///     Ok(if req.uri().path() == "/ok" { Response::new(br#"{"n": 1}"#.to_vec()) }
    ///        else { Response::builder().status(500).body(Vec::new()).unwrap() })
    /// }));
    /// assert_eq!(ctx.get_json("https://api.example/ok").await?["n"], 1);
    /// assert!(ctx.get_json("https://api.example/broken").await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value> {
        let request = ::http::Request::get(url)
            .header(header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|_| Error::invalid("request url", "not a valid URI"))?;
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(Error::UpstreamStatus {
                what: "provider API",
                status: response.status().as_u16(),
            });
        }
        parse_json(response.body())
    }

    /// The purpose the data is fetched for (none for an unauthenticated
    /// context).
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async { Ok(Response::new(Vec::new())) }));
    /// assert_eq!(ctx.purpose(), None);
    /// ```
    pub fn purpose(&self) -> Option<&Purpose> {
        self.purpose.as_ref()
    }

    /// The connection's settings (validated against the connector's
    /// schema by `Integrations::configure`).
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async { Ok(Response::new(Vec::new())) }))
    ///     .with_settings(serde_json::json!({"limit": 50}).as_object().unwrap().clone());
    /// assert_eq!(ctx.settings()["limit"], 50);
    /// ```
    pub fn settings(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.settings
    }

    /// A string setting.
    ///
    /// ```
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async { Ok(Response::new(Vec::new())) }))
    ///     .with_settings(serde_json::json!({"calendar": "work", "limit": 50}).as_object().unwrap().clone());
    /// assert_eq!(ctx.setting_str("calendar"), Some("work"));
    /// assert_eq!(ctx.setting_str("limit"), None); // not a string
    /// ```
    pub fn setting_str(&self, name: &str) -> Option<&str> {
        self.settings.get(name).and_then(serde_json::Value::as_str)
    }

    /// When the run started (from the injected clock).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::connector::FetchContext;
    /// use consentry::http::{self, HttpRequest, Response};
    /// let before = SystemTime::now();
    /// let ctx = FetchContext::unauthenticated(http::from_fn(|_req: HttpRequest| async { Ok(Response::new(Vec::new())) }));
    /// assert!(ctx.now() >= before);
    /// ```
    pub fn now(&self) -> SystemTime {
        self.now
    }
}

/// Parses a JSON body, bounded.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.len() > MAX_JSON_BODY {
        return Err(Error::InvalidResponse {
            what: "provider API response",
            reason: format!("body of {} bytes exceeds the limit", body.len()),
        });
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        what: "provider API response",
        reason: format!("not the expected JSON ({})", e.classify_name()),
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// One page of a stream: records, deletions, and where to continue.
///
/// ```
/// use consentry::connector::Page;
/// use consentry::records::Record;
/// let first = Page::more(vec![Record::new("1", "item", serde_json::json!({}))?], "page-2");
/// assert!(first.has_more);
/// let last = Page::done(Vec::new(), Some("sync-token-9".into()));
/// assert_eq!((last.has_more, last.next_cursor.as_deref()), (false, Some("sync-token-9")));
/// assert!(Page::reset().reset);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Page {
    /// Records to store (upserted by provider id).
    pub records: Vec<Record>,
    /// Provider ids of records deleted at the provider.
    pub deleted: Vec<String>,
    /// Where to continue: the next page while `has_more`; afterwards the
    /// cursor the next run starts from (`None`: the next run starts from
    /// scratch).
    pub next_cursor: Option<String>,
    /// Whether more pages follow now.
    pub has_more: bool,
    /// The cursor given to `fetch` is no longer valid (Google's
    /// `410 Gone`): start again from scratch. Records of the stream that
    /// the full sync does not see again are deleted when it finishes.
    pub reset: bool,
}

impl Page {
    /// A page with more after it, at `next`.
    ///
    /// ```
    /// use consentry::connector::Page;
    /// let page = Page::more(Vec::new(), "page-2");
    /// assert!(page.has_more);
    /// assert_eq!(page.next_cursor.as_deref(), Some("page-2"));
    /// ```
    pub fn more(records: Vec<Record>, next: impl Into<String>) -> Self {
        Self {
            records,
            next_cursor: Some(next.into()),
            has_more: true,
            ..Self::default()
        }
    }

    /// The last page for now; `cursor` is where the next run starts.
    ///
    /// ```
    /// use consentry::connector::Page;
    /// let page = Page::done(Vec::new(), None);
    /// assert!(!page.has_more && page.next_cursor.is_none());
    /// ```
    pub fn done(records: Vec<Record>, cursor: Option<String>) -> Self {
        Self {
            records,
            next_cursor: cursor,
            ..Self::default()
        }
    }

    /// The cursor is no longer valid: start from scratch.
    ///
    /// ```
    /// use consentry::connector::Page;
    /// let page = Page::reset();
    /// assert!(page.reset && page.records.is_empty());
    /// ```
    pub fn reset() -> Self {
        Self {
            reset: true,
            ..Self::default()
        }
    }

    /// Adds ids of records deleted at the provider.
    ///
    /// ```
    /// use consentry::connector::Page;
    /// let page = Page::done(Vec::new(), Some("t".into())).with_deleted(vec!["gone-1".into()]);
    /// assert_eq!(page.deleted, ["gone-1"]);
    /// ```
    #[must_use]
    pub fn with_deleted(mut self, deleted: Vec<String>) -> Self {
        self.deleted = deleted;
        self
    }
}

/// A typed action input: its action name and the output it produces.
/// `Integrations::perform` serializes it for the connector and decodes the
/// connector's output.
///
/// ```
/// use consentry::connector::Action;
/// #[derive(serde::Serialize)]
/// struct SaveNote { title: String }
/// impl Action for SaveNote {
///     const NAME: &'static str = "save_note";
///     type Output = serde_json::Value;
/// }
/// assert_eq!(SaveNote::NAME, "save_note");
/// ```
pub trait Action: Serialize + Send + Sync {
    /// The name of the [`ActionSpec`](super::ActionSpec) it performs.
    const NAME: &'static str;
    /// What the action returns.
    type Output: DeserializeOwned;
}
