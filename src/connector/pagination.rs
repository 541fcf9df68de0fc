//! Pagination helpers for the common styles: an opaque page token in the
//! body, `Link: <...>; rel="next"` headers (RFC 8288), offset/limit, and
//! datetime cursors with a lookback window. Pure functions: they read
//! responses and compute the next request, they never send one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use crate::http::HeaderMap;

/// The longest page token or cursor accepted, in bytes.
///
/// ```
/// use consentry::connector::pagination::{MAX_CURSOR_LEN, page_token};
/// let long = serde_json::json!({ "next": "x".repeat(MAX_CURSOR_LEN + 1) });
/// assert_eq!(page_token(&long, "/next"), None);
/// ```
pub const MAX_CURSOR_LEN: usize = 4096;

/// The string at JSON `pointer` in `body`, if it is a non-empty string (or
/// a number, written out) of at most [`MAX_CURSOR_LEN`] bytes.
///
/// ```
/// use consentry::connector::pagination::page_token;
/// let body = serde_json::json!({"nextPageToken": "CiAKGjBpNDd2", "paging": {"next": 7}});
/// assert_eq!(page_token(&body, "/nextPageToken").as_deref(), Some("CiAKGjBpNDd2"));
/// assert_eq!(page_token(&body, "/paging/next").as_deref(), Some("7"));
/// assert_eq!(page_token(&body, "/missing"), None);
/// ```
pub fn page_token(body: &serde_json::Value, pointer: &str) -> Option<String> {
    let token = match body.pointer(pointer)? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!token.is_empty() && token.len() <= MAX_CURSOR_LEN).then_some(token)
}

/// The `rel="next"` target of the `Link` headers (RFC 8288), resolved
/// against `base`. Only http(s) targets on the same host as `base` are
/// returned, so a hostile response cannot send the authorised client
/// elsewhere.
///
/// ```
/// use consentry::connector::pagination::next_link;
/// use consentry::http::{HeaderMap, HeaderValue};
/// use consentry::url::Url;
/// let base = Url::parse("https://api.github.com/user/repos")?;
/// let mut h = HeaderMap::new();
/// h.insert("link", HeaderValue::from_static(
///     r#"<https://api.github.com/user/repos?page=3>; rel="next", <https://api.github.com/user/repos?page=50>; rel="last""#));
/// assert_eq!(next_link(&h, &base).unwrap().as_str(), "https://api.github.com/user/repos?page=3");
/// h.insert("link", HeaderValue::from_static(r#"<https://evil.example/x>; rel="next""#));
/// assert!(next_link(&h, &base).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn next_link(headers: &HeaderMap, base: &Url) -> Option<Url> {
    for value in headers.get_all(crate::http::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in split_links(value) {
            let Some((target, params)) = parse_link(link) else {
                continue;
            };
            let is_next = params.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("rel")
                    && v.split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if !is_next {
                continue;
            }
            let url = base.join(target).ok()?;
            let same_origin = url.scheme() == base.scheme()
                && url.host_str() == base.host_str()
                && url.port_or_known_default() == base.port_or_known_default();
            return (same_origin && url.as_str().len() <= MAX_CURSOR_LEN).then_some(url);
        }
    }
    None
}

/// Splits a `Link` value at the commas between links (not those inside
/// `<...>` or quotes).
fn split_links(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut in_url, mut in_quote) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '<' if !in_quote => in_url = true,
            '>' if !in_quote => in_url = false,
            '"' if !in_url => in_quote = !in_quote,
            ',' if !in_url && !in_quote => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if out.len() >= 64 {
            break;
        }
    }
    out.push(&value[start..]);
    out
}

fn parse_link(link: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let link = link.trim();
    let rest = link.strip_prefix('<')?;
    let end = rest.find('>')?;
    let target = &rest[..end];
    let params = rest[end + 1..]
        .split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
        .collect();
    Some((target, params))
}

/// The next offset for offset/limit paging: `None` once a page came back
/// short, or the total is reached.
///
/// ```
/// use consentry::connector::pagination::next_offset;
/// assert_eq!(next_offset(0, 50, 50, Some(120)), Some(50));
/// assert_eq!(next_offset(100, 50, 20, Some(120)), None); // short page
/// assert_eq!(next_offset(50, 50, 50, Some(100)), None); // total reached
/// assert_eq!(next_offset(0, 50, 50, None), Some(50));
/// ```
pub fn next_offset(offset: u64, limit: u64, returned: u64, total: Option<u64>) -> Option<u64> {
    let next = offset.checked_add(returned)?;
    if returned == 0 || returned < limit || total.is_some_and(|t| next >= t) {
        None
    } else {
        Some(next)
    }
}

/// A datetime cursor with a lookback window: incremental syncs ask for
/// records changed since the newest value seen, minus the lookback (late
/// writes at the provider are picked up; upserts by id make the overlap
/// harmless).
///
/// ```
/// use std::time::Duration;
/// use consentry::connector::pagination::DatetimeCursor;
/// let c = DatetimeCursor::new(Duration::from_secs(3600));
/// let newest = c.newest(None, ["2026-03-01T10:00:00Z", "2026-03-02T08:30:00+01:00", "bad"]);
/// assert_eq!(newest.as_deref(), Some("2026-03-02T07:30:00Z"));
/// assert_eq!(c.since(newest.as_deref()).as_deref(), Some("2026-03-02T06:30:00Z"));
/// assert_eq!(c.since(None), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatetimeCursor {
    lookback: Duration,
}

impl DatetimeCursor {
    /// A cursor that looks back `lookback` from the newest value seen.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::pagination::DatetimeCursor;
    /// let c = DatetimeCursor::new(Duration::from_secs(60));
    /// assert_eq!(c.since(Some("2026-03-01T10:00:00Z")).as_deref(), Some("2026-03-01T09:59:00Z"));
    /// ```
    pub fn new(lookback: Duration) -> Self {
        Self { lookback }
    }

    /// The newest of `current` and `values` (RFC 3339; others ignored),
    /// written in UTC.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::pagination::DatetimeCursor;
    /// let c = DatetimeCursor::new(Duration::ZERO);
    /// let newest = c.newest(Some("2026-03-01T10:00:00Z"), ["2026-02-01T00:00:00Z"]);
    /// assert_eq!(newest.as_deref(), Some("2026-03-01T10:00:00Z")); // the current one stays
    /// assert_eq!(c.newest(None, ["not a date"]), None);
    /// ```
    pub fn newest<'a>(
        &self,
        current: Option<&'a str>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        current
            .into_iter()
            .chain(values)
            .filter_map(parse_rfc3339)
            .max()
            .map(format_rfc3339)
    }

    /// The value to ask for: `newest` minus the lookback.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::pagination::DatetimeCursor;
    /// let c = DatetimeCursor::new(Duration::from_secs(3600));
    /// assert_eq!(c.since(Some("2026-03-01T10:00:00Z")).as_deref(), Some("2026-03-01T09:00:00Z"));
    /// assert_eq!(c.since(None), None);
    /// ```
    pub fn since(&self, newest: Option<&str>) -> Option<String> {
        let t = parse_rfc3339(newest?)?;
        Some(format_rfc3339(
            t.checked_sub(self.lookback).unwrap_or(UNIX_EPOCH),
        ))
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses an RFC 3339 date-time (`2026-03-01T10:00:00Z`,
/// `...T10:00:00.123+01:00`); times before 1970 are refused.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::connector::pagination::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(UNIX_EPOCH + Duration::from_secs(86_401)));
/// assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
/// ```
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = (&s[..10], &s[10..]);
    let sep = rest.as_bytes()[0];
    if !matches!(sep, b'T' | b't' | b' ')
        || date.as_bytes()[4] != b'-'
        || date.as_bytes()[7] != b'-'
    {
        return None;
    }
    let (y, mo, d) = (
        digits(&date[..4])?,
        digits(&date[5..7])?,
        digits(&date[8..10])?,
    );
    let time = &rest[1..];
    let b = time.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, mi, sec) = (
        digits(&time[..2])?,
        digits(&time[3..5])?,
        digits(&time[6..8])?,
    );
    let mut tail = &time[8..];
    let mut nanos = 0u32;
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut v: u32 = frac[..n].parse().ok()?;
        for _ in n..9 {
            v *= 10;
        }
        nanos = v;
        tail = &frac[n..];
    }
    let offset = match tail {
        "Z" | "z" => 0,
        t if t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) && &t[3..4] == ":" => {
            let m = digits(&t[1..3])? * 60 + digits(&t[4..6])?;
            if t.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None; // 31 April, 30 February
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset * 60;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Formats a time as RFC 3339 in UTC, whole seconds (`2026-03-01T10:00:00Z`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::connector::pagination::format_rfc3339;
/// assert_eq!(format_rfc3339(UNIX_EPOCH + Duration::from_secs(1_772_359_200)), "2026-03-01T10:00:00Z");
/// ```
pub fn format_rfc3339(t: SystemTime) -> String {
    let secs = i64::try_from(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(i64::MAX / 2);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_round_trips_and_refuses_junk() {
        for s in [
            "2000-02-29T23:59:59Z",
            "2026-03-01T00:00:00Z",
            "1999-12-31T12:30:05Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
        }
        for bad in [
            "2001-02-29T00:00:00Z",
            "2026-03-01",
            "2026-03-01T25:00:00Z",
            "2026-03-01T00:00:00+0100",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn link_headers_with_commas_in_quotes() {
        let base = Url::parse("https://api.example/items").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            r#"</items?page=1>; rel="prev"; title="a, b", </items?page=3>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "https://api.example/items?page=3"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in any::<String>()) {
            let _ = parse_rfc3339(&s);
            let mut h = HeaderMap::new();
            if let Ok(v) = s.parse() {
                h.insert("link", v);
            }
            let _ = next_link(&h, &Url::parse("https://a.example/").unwrap());
        }

        #[test]
        fn times_round_trip(secs in 0u64..10_000_000_000) {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
    }
}
