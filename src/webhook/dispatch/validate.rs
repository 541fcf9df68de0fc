//! Validation of endpoint configuration: URLs (scheme, host, egress
//! policy for IP literals), event types, custom headers, rate limits.

use std::net::IpAddr;

use url::{Host, Url};

use super::endpoint::{MAX_CUSTOM_HEADERS, MAX_EVENT_TYPES, MAX_URL_LEN};
use super::options::DispatcherOptions;
use crate::error::{Error, Result};

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
}
