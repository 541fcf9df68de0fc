//! The legacy Goodreads API (OAuth 1.0a, XML): `shelf/list.xml`.

use url::Url;

pub use crate::oauth::oauth1::OAuth1Credentials;

use crate::connector::{FetchContext, Page};
use crate::error::{Error, Result};
use crate::records::{Record, Shelf};

/// The largest XML document read (8 MiB).
const MAX_XML: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(super) struct Legacy {
    base: Url,
    pub(super) consumer: OAuth1Credentials,
}

/// `GET {base}/shelf/list.xml?key=...&user_id=...&page=...` (unsigned: the
/// sync runtime signs it with the connection's token credentials).
///
/// ```
/// use consentry::connectors::goodreads::{shelves_request, OAuth1Credentials};
/// let base = consentry::url::Url::parse("https://www.goodreads.com")?;
/// let req = shelves_request(&base, "dev-key", "4085451", 2)?;
/// assert_eq!(req.uri(), "https://www.goodreads.com/shelf/list.xml?key=dev-key&user_id=4085451&page=2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the URL cannot be built.
pub fn shelves_request(
    base: &Url,
    key: &str,
    user_id: &str,
    page: u64,
) -> Result<crate::http::HttpRequest> {
    let mut url = base.clone();
    let path = format!("{}/shelf/list.xml", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut()
        .append_pair("key", key)
        .append_pair("user_id", user_id)
        .append_pair("page", &page.to_string());
    ::http::Request::get(url.as_str())
        .header(crate::http::header::ACCEPT, "application/xml")
        .body(Vec::new())
        .map_err(|_| Error::invalid("goodreads request", "not a valid URI"))
}

/// The content of each `<tag ...>...</tag>` element in `xml` (no nesting
/// of the same tag), at most `limit`.
fn elements<'a>(xml: &'a str, tag: &str, limit: usize) -> Vec<(&'a str, &'a str)> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while out.len() < limit {
        let Some(start) = rest.find(&open) else { break };
        let after = &rest[start + open.len()..];
        // `<tag>` or `<tag attr...>`, not `<tagname>`.
        if !after.starts_with(['>', ' ', '\t', '\n', '\r', '/']) {
            rest = after;
            continue;
        }
        let Some(gt) = after.find('>') else { break };
        let attrs = &after[..gt];
        if attrs.ends_with('/') {
            out.push((attrs, ""));
            rest = &after[gt + 1..];
            continue;
        }
        let body = &after[gt + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push((attrs, &body[..end]));
        rest = &body[end + close.len()..];
    }
    out
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    let pat = format!("{name}=\"");
    let start = attrs.find(&pat)? + pat.len();
    let end = attrs[start..].find('"')?;
    Some(unescape(&attrs[start..start + end]))
}

fn unescape(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("<![CDATA[")
        .and_then(|x| x.strip_suffix("]]>"))
        .map_or_else(|| s.to_owned(), str::to_owned);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=semi]),
        }
        rest = &tail[semi + 1..];
    }
    out.push_str(rest);
    out
}

fn child(body: &str, tag: &str) -> Option<String> {
    elements(body, tag, 1).first().map(|(_, v)| unescape(v))
}

/// Parses a `shelf/list.xml` response: the shelves, and whether more pages
/// follow (`<shelves start end total>`).
///
/// ```
/// use consentry::connectors::goodreads::parse_shelves;
/// let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
/// <GoodreadsResponse><Request><authentication>true</authentication></Request>
///   <shelves start="1" end="2" total="3">
///     <user_shelf><id type="integer">9</id><name>read</name><book_count type="integer">112</book_count>
///       <exclusive_flag type="boolean">true</exclusive_flag></user_shelf>
///     <user_shelf><id type="integer">10</id><name>sci-fi &amp; fantasy</name><book_count type="integer">40</book_count>
///       <exclusive_flag type="boolean">false</exclusive_flag></user_shelf>
///   </shelves></GoodreadsResponse>"#;
/// let (shelves, more) = parse_shelves(xml.as_bytes())?;
/// assert_eq!(shelves[1].1.name, "sci-fi & fantasy");
/// assert_eq!((shelves[0].1.book_count, shelves[0].1.exclusive, more), (112, true, true));
/// # Ok::<(), consentry::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidResponse`] for a body that is not UTF-8, too large, or
/// has no `<shelves>` element.
pub fn parse_shelves(body: &[u8]) -> Result<(Vec<(String, Shelf)>, bool)> {
    let bad = |reason: &str| Error::InvalidResponse {
        what: "goodreads shelf list",
        reason: reason.to_owned(),
    };
    if body.len() > MAX_XML {
        return Err(bad("body too large"));
    }
    let xml = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let (attrs, inner) = *elements(xml, "shelves", 1)
        .first()
        .ok_or_else(|| bad("no <shelves> element"))?;
    let num = |name: &str| attr(attrs, name).and_then(|v| v.parse::<u64>().ok());
    let more = matches!((num("end"), num("total")), (Some(e), Some(t)) if e < t);
    let mut shelves = Vec::new();
    for (_, s) in elements(inner, "user_shelf", 10_000) {
        let (Some(id), Some(name)) = (child(s, "id"), child(s, "name")) else {
            return Err(bad("a shelf without id or name"));
        };
        let shelf = Shelf {
            name,
            book_count: child(s, "book_count")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            exclusive: child(s, "exclusive_flag").is_some_and(|v| v == "true"),
        };
        shelves.push((id, shelf));
    }
    Ok((shelves, more))
}

impl Legacy {
    pub(super) fn new(base: Url, consumer: OAuth1Credentials) -> Self {
        Self { base, consumer }
    }

    /// One page of shelves; the cursor is the page number.
    pub(super) async fn fetch(&self, ctx: &FetchContext, cursor: Option<&str>) -> Result<Page> {
        let page: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(1).max(1);
        let user_id = ctx.setting_str("user_id").ok_or_else(|| {
            Error::invalid(
                "settings",
                "the legacy Goodreads API needs the `user_id` setting",
            )
        })?;
        let request = shelves_request(&self.base, self.consumer.key(), user_id, page)?;
        let response = ctx.send(request).await?;
        if !response.status().is_success() {
            return Err(Error::UpstreamStatus {
                what: "goodreads API",
                status: response.status().as_u16(),
            });
        }
        let (shelves, more) = parse_shelves(response.body())?;
        let records = shelves
            .iter()
            .map(|(id, s)| Record::normalized(id.clone(), s))
            .collect::<Result<Vec<_>>>()?;
        Ok(if more && page < 10_000 {
            Page::more(records, (page + 1).to_string())
        } else {
            Page::done(records, None)
        })
    }
}
