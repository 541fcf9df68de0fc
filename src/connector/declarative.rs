//! Streams declared as data ([`HttpStream`]): a request path and query, a
//! record selector into the JSON response, the record id field, the
//! pagination style, an optional datetime cursor field. [`OAuth2Connector`]
//! fetches them without code, like Airbyte's declarative manifests.
//!
//! [`OAuth2Connector`]: super::OAuth2Connector

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::fetch::{FetchContext, Page};
use super::pagination::{self, DatetimeCursor};
use crate::error::{Error, Result};
use crate::records::Record;

/// How a declared stream pages.
///
/// ```
/// use consentry::connector::Pagination;
/// let p = Pagination::PageToken { param: "pageToken".into(), pointer: "/nextPageToken".into() };
/// assert_ne!(p, Pagination::Link);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pagination {
    /// One request returns everything.
    None,
    /// The response holds the next page's token at `pointer`; the next
    /// request sends it as query parameter `param`.
    PageToken {
        /// The query parameter.
        param: String,
        /// The JSON pointer to the token in the response.
        pointer: String,
    },
    /// `Link: <...>; rel="next"` headers (RFC 8288).
    Link,
    /// `offset_param` and `limit_param` query parameters; a short page
    /// ends the stream.
    Offset {
        /// The offset parameter.
        offset_param: String,
        /// The limit parameter (its value is the stream's page size).
        limit_param: String,
    },
}

/// A stream fetched by a GET request and read from its JSON response.
///
/// ```
/// use std::time::Duration;
/// use consentry::connector::{HttpStream, Pagination};
/// let s = HttpStream::new("/v1/contacts", "/data", "/id")?
///     .with_query("sort", "updated")
///     .with_pagination(Pagination::PageToken { param: "page".into(), pointer: "/next".into() })
///     .with_cursor("/updated_at", "updated_since", Duration::from_secs(60))?
///     .with_field("name", "/full_name")?;
/// assert_eq!(s.path(), "/v1/contacts");
/// assert!(HttpStream::new("v1/contacts", "/data", "/id").is_err()); // paths start with `/`
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStream {
    path: String,
    query: Vec<(String, String)>,
    records: String,
    id: String,
    kind: Option<String>,
    fields: Vec<(String, String)>,
    pagination: Pagination,
    cursor_field: Option<String>,
    cursor_param: Option<String>,
    lookback: Duration,
}

fn check_pointer(what: &'static str, p: &str, allow_root: bool) -> Result<()> {
    if (p.is_empty() && allow_root)
        || (p.starts_with('/') && p.len() <= 256 && !p.contains(char::is_control))
    {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            "must be a JSON pointer such as `/data` (at most 256 bytes)",
        ))
    }
}

impl HttpStream {
    /// A stream read with `GET {api_base_url}{path}`: records are the array
    /// at JSON pointer `records` (`""` for a top-level array), each one's
    /// provider id at pointer `id`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `path` does not start with `/` or has
    /// `?`, `#` or `..`, or a pointer is not a JSON pointer.
    ///
    /// ```
    /// use consentry::connector::{HttpStream, Pagination};
    /// let s = HttpStream::new("/v1/items", "", "/id")?; // a top-level array
    /// assert_eq!(s.pagination(), &Pagination::None);
    /// assert!(HttpStream::new("/v1/../admin", "/data", "/id").is_err());
    /// assert!(HttpStream::new("/v1/items", "data", "/id").is_err()); // not a JSON pointer
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(path: &str, records: &str, id: &str) -> Result<Self> {
        if !path.starts_with('/')
            || path.len() > 512
            || path.contains(['?', '#', '\\'])
            || path.contains("..")
            || path.contains(char::is_control)
        {
            return Err(Error::invalid(
                "stream path",
                "must start with `/`, without `?`, `#`, `\\` or `..`, at most 512 bytes",
            ));
        }
        check_pointer("records pointer", records, true)?;
        check_pointer("record id pointer", id, false)?;
        Ok(Self {
            path: path.to_owned(),
            query: Vec::new(),
            records: records.to_owned(),
            id: id.to_owned(),
            kind: None,
            fields: Vec::new(),
            pagination: Pagination::None,
            cursor_field: None,
            cursor_param: None,
            lookback: Duration::ZERO,
        })
    }

    /// Adds a fixed query parameter.
    ///
    /// ```
    /// use consentry::connector::HttpStream;
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?.with_query("sort", "updated");
    /// assert!(format!("{s:?}").contains("\"sort\", \"updated\""));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets the record kind (default: the stream's name).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `kind` is not a token.
    ///
    /// ```
    /// use consentry::connector::HttpStream;
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?;
    /// assert!(s.clone().with_kind("contact").is_ok());
    /// assert!(s.with_kind("not a token").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_kind(mut self, kind: &str) -> Result<Self> {
        crate::ids::check_token("record kind", kind, crate::records::MAX_KIND_LEN)?;
        self.kind = Some(kind.to_owned());
        Ok(self)
    }

    /// Keeps only the named fields, each read at a JSON pointer (data
    /// minimisation). Without fields, the whole item is kept.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `pointer` is not a JSON pointer.
    ///
    /// ```
    /// use consentry::connector::HttpStream;
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?;
    /// assert!(s.clone().with_field("name", "/profile/name").is_ok());
    /// assert!(s.with_field("name", "profile.name").is_err()); // pointers start with `/`
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_field(mut self, name: impl Into<String>, pointer: &str) -> Result<Self> {
        check_pointer("field pointer", pointer, false)?;
        self.fields.push((name.into(), pointer.to_owned()));
        Ok(self)
    }

    /// Sets the pagination style.
    ///
    /// ```
    /// use consentry::connector::{HttpStream, Pagination};
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?.with_pagination(Pagination::Link);
    /// assert_eq!(s.pagination(), &Pagination::Link);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_pagination(mut self, pagination: Pagination) -> Self {
        self.pagination = pagination;
        self
    }

    /// Makes the stream incremental: each record's RFC 3339 datetime at
    /// `field`; the next run sends the newest seen, minus `lookback`, as
    /// query parameter `param`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `field` is not a JSON pointer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::HttpStream;
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?;
    /// assert!(!s.is_incremental());
    /// let s = s.with_cursor("/updated_at", "updated_since", Duration::from_secs(60))?;
    /// assert!(s.is_incremental());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_cursor(
        mut self,
        field: &str,
        param: impl Into<String>,
        lookback: Duration,
    ) -> Result<Self> {
        check_pointer("cursor field", field, false)?;
        self.cursor_field = Some(field.to_owned());
        self.cursor_param = Some(param.into());
        self.lookback = lookback;
        Ok(self)
    }

    /// The request path.
    ///
    /// ```
    /// use consentry::connector::HttpStream;
    /// assert_eq!(HttpStream::new("/v1/items", "/data", "/id")?.path(), "/v1/items");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The pagination style.
    ///
    /// ```
    /// use consentry::connector::{HttpStream, Pagination};
    /// let offset = Pagination::Offset { offset_param: "offset".into(), limit_param: "limit".into() };
    /// let s = HttpStream::new("/v1/items", "/data", "/id")?.with_pagination(offset.clone());
    /// assert_eq!(s.pagination(), &offset);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn pagination(&self) -> &Pagination {
        &self.pagination
    }

    /// Whether runs resume from a datetime cursor (otherwise each run reads
    /// everything).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::HttpStream;
    /// let full = HttpStream::new("/v1/items", "/data", "/id")?;
    /// let incremental = full.clone().with_cursor("/updated_at", "since", Duration::ZERO)?;
    /// assert!(!full.is_incremental() && incremental.is_incremental());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn is_incremental(&self) -> bool {
        self.cursor_field.is_some()
    }
}

/// The cursor of a declared stream, as saved.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Position of the next page (token, URL or offset) within a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    /// The `since` value used by this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// The newest cursor value seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
}

fn id_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Fetches one page of a declared stream.
pub(crate) async fn fetch(
    ctx: &FetchContext,
    base: &Url,
    def: &HttpStream,
    stream: &str,
    page_size: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page> {
    let mut state: State = match cursor {
        Some(c) => serde_json::from_str(c)
            .map_err(|_| Error::invalid("stream cursor", "not a cursor of this stream"))?,
        None => State::default(),
    };
    let datetime = DatetimeCursor::new(def.lookback);
    if state.p.is_none() {
        // A new run: ask for what changed since the newest value seen.
        state.s = datetime.since(state.n.as_deref());
    }
    let mut url = match (&def.pagination, &state.p) {
        (Pagination::Link, Some(next)) => {
            Url::parse(next).map_err(|_| Error::invalid("stream cursor", "bad link"))?
        }
        _ => {
            let mut u = base.clone();
            let joined = format!("{}{}", u.path().trim_end_matches('/'), def.path);
            u.set_path(&joined);
            u
        }
    };
    if !matches!((&def.pagination, &state.p), (Pagination::Link, Some(_))) {
        let mut q = url.query_pairs_mut();
        for (k, v) in &def.query {
            q.append_pair(k, v);
        }
        if let (Some(param), Some(since)) = (&def.cursor_param, &state.s) {
            q.append_pair(param, since);
        }
        match (&def.pagination, &state.p) {
            (Pagination::PageToken { param, .. }, Some(token)) => {
                q.append_pair(param, token);
            }
            (
                Pagination::Offset {
                    offset_param,
                    limit_param,
                },
                p,
            ) => {
                q.append_pair(offset_param, p.as_deref().unwrap_or("0"));
                q.append_pair(limit_param, &page_size.unwrap_or(100).to_string());
            }
            _ => {}
        }
    }
    let request = ::http::Request::get(url.as_str())
        .header(crate::http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| Error::invalid("stream url", "not a valid URI"))?;
    let response = ctx.send(request).await?;
    if !response.status().is_success() {
        return Err(Error::UpstreamStatus {
            what: "provider API",
            status: response.status().as_u16(),
        });
    }
    let mut body: serde_json::Value = super::fetch::parse_json(response.body())?;
    let token = match &def.pagination {
        Pagination::PageToken { pointer, .. } => pagination::page_token(&body, pointer),
        _ => None,
    };
    // Take the items out of the body: each is moved into its record, not
    // copied.
    let items = match body.pointer_mut(&def.records).map(serde_json::Value::take) {
        Some(serde_json::Value::Array(items)) => items,
        _ => {
            return Err(Error::InvalidResponse {
                what: "provider API response",
                reason: format!("no array at `{}`", def.records),
            });
        }
    };
    let count = items.len() as u64;
    let kind = def.kind.as_deref().unwrap_or(stream);
    let mut records = Vec::with_capacity(items.len());
    let mut stamps = Vec::new();
    for item in items {
        let id = item
            .pointer(&def.id)
            .and_then(id_of)
            .ok_or_else(|| Error::InvalidResponse {
                what: "provider API response",
                reason: format!("a record has no id at `{}`", def.id),
            })?;
        if let Some(field) = &def.cursor_field
            && let Some(s) = item.pointer(field).and_then(serde_json::Value::as_str)
        {
            stamps.push(s.to_owned());
        }
        let data = if def.fields.is_empty() {
            item
        } else {
            let mut m = serde_json::Map::new();
            for (name, pointer) in &def.fields {
                m.insert(
                    name.clone(),
                    item.pointer(pointer).cloned().unwrap_or_default(),
                );
            }
            serde_json::Value::Object(m)
        };
        records.push(Record::new(id, kind, data)?);
    }
    let newest = datetime.newest(state.n.as_deref(), stamps.iter().map(String::as_str));
    let next = match &def.pagination {
        Pagination::None => None,
        Pagination::PageToken { .. } => token,
        Pagination::Link => pagination::next_link(response.headers(), base).map(String::from),
        Pagination::Offset { .. } => {
            let offset = state.p.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0);
            let limit = u64::from(page_size.unwrap_or(100));
            pagination::next_offset(offset, limit, count, None).map(|o| o.to_string())
        }
    };
    let encode =
        |s: &State| serde_json::to_string(s).map_err(|_| Error::Internal("cursor encoding"));
    Ok(match next {
        Some(p) => Page::more(
            records,
            encode(&State {
                p: Some(p),
                s: state.s,
                n: newest,
            })?,
        ),
        None if def.cursor_field.is_some() => Page::done(
            records,
            Some(encode(&State {
                p: None,
                s: None,
                n: newest,
            })?),
        ),
        None => Page::done(records, None),
    })
}
