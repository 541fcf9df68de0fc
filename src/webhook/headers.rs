//! Reading request headers ([`Headers`]) and the headers a `sign` function
//! produces ([`SignedHeaders`]).

use super::WebhookError;

/// Longest header value a verifier reads, in bytes. Longer values are
/// refused as malformed before any parsing.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{MAX_HEADER_LEN, WebhookSecret, standard};
/// let secret = WebhookSecret::generate()?;
/// let long = "v1,".to_owned() + &"A".repeat(MAX_HEADER_LEN);
/// let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", long.as_str())];
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert!(standard::verify(&[secret], &headers, b"{}", now).is_err()); // refused before parsing
/// # Ok::<(), consentry::Error>(())
/// ```
pub const MAX_HEADER_LEN: usize = 4096;

/// Read access to request headers, so that verifiers work with whatever the
/// host's web framework hands over.
///
/// Implemented for [`http::HeaderMap`] (axum, hyper, reqwest, tonic), for
/// slices, arrays and vectors of `(name, value)` pairs, and for
/// [`SignedHeaders`]. Another framework's header type takes a three-line
/// impl.
///
/// ```
/// use consentry::webhook::Headers;
///
/// let pairs = [("Webhook-Id", "msg_1"), ("webhook-timestamp", "1614265330")];
/// assert_eq!(pairs.header("webhook-id"), Some(&b"msg_1"[..]));
///
/// let mut map = http::HeaderMap::new();
/// map.insert("webhook-id", http::HeaderValue::from_static("msg_1"));
/// assert_eq!(map.header("webhook-id"), Some(&b"msg_1"[..]));
/// assert_eq!(map.header("webhook-signature"), None);
/// ```
pub trait Headers {
    /// The value of the header called `name`, or `None` when it is absent.
    ///
    /// `name` is always lowercase ASCII; implementations compare names
    /// ASCII-case-insensitively. When a header is repeated, return the
    /// first value.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&[u8]> {
        // The names the verifiers ask for are looked up with prebuilt
        // `HeaderName`s: parsing a `&str` name costs more than the lookup.
        macro_rules! lookup {
            ($($known:literal),* $(,)?) => {
                match name {
                    $($known => {
                        static NAME: http::HeaderName = http::HeaderName::from_static($known);
                        self.get(&NAME)
                    })*
                    _ => self.get(name),
                }
            };
        }
        lookup!(
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            "stripe-signature",
            "x-hub-signature-256",
            "x-github-delivery",
            "x-slack-signature",
            "x-slack-request-timestamp",
            "x-shopify-hmac-sha256",
            "x-shopify-webhook-id",
        )
        .map(http::HeaderValue::as_bytes)
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Headers for [(N, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>, const K: usize> Headers for [(N, V); K] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(N, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<H: Headers + ?Sized> Headers for &H {
    fn header(&self, name: &str) -> Option<&[u8]> {
        (**self).header(name)
    }
}

/// The headers a `sign` function produced, to attach to an outgoing
/// request.
///
/// Names are lowercase. Values are printable ASCII. Signatures are not
/// secrets, so `Debug` shows everything.
///
/// ```
/// use consentry::webhook::{WebhookSecret, standard};
///
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let signed = standard::sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#)?;
/// assert_eq!(signed.get("webhook-signature"), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
/// let names: Vec<&str> = signed.iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    headers: Vec<(&'static str, String)>,
}

impl SignedHeaders {
    pub(crate) fn new(headers: Vec<(&'static str, String)>) -> Self {
        Self { headers }
    }

    /// The value of the header called `name` (ASCII-case-insensitive).
    ///
    /// ```
    /// use consentry::webhook::{WebhookSecret, standard};
    /// let signed = standard::sign(&WebhookSecret::generate()?, "msg_1", 1_700_000_000, b"{}")?;
    /// assert_eq!(signed.get("Webhook-Id"), Some("msg_1")); // any case
    /// assert_eq!(signed.get("x-missing"), None);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `(name, value)` pairs, in the order they should be sent.
    ///
    /// ```
    /// use consentry::webhook::{WebhookSecret, standard};
    /// let signed = standard::sign(&WebhookSecret::generate()?, "msg_1", 1_700_000_000, b"{}")?;
    /// let mut request = consentry::http::Request::post("https://hooks.example.com/in");
    /// for (name, value) in signed.iter() {
    ///     request = request.header(name, value);
    /// }
    /// assert_eq!(request.headers_ref().unwrap()["webhook-timestamp"], "1700000000");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'static str, &str)> + '_ {
        self.headers.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

impl Headers for SignedHeaders {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(str::as_bytes)
    }
}

/// A header value as printable ASCII bytes (spaces allowed), bounded by
/// [`MAX_HEADER_LEN`]. `Ok(None)` when the header is absent.
pub(crate) fn ascii<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<Option<&'h [u8]>, WebhookError> {
    let Some(raw) = headers.header(name) else {
        return Ok(None);
    };
    if raw.len() > MAX_HEADER_LEN {
        return Err(WebhookError::MalformedHeader {
            header: name,
            reason: "longer than 4096 bytes",
        });
    }
    if !raw.iter().all(|&b| (b' '..=b'~').contains(&b)) {
        return Err(WebhookError::MalformedHeader {
            header: name,
            reason: "not printable ASCII",
        });
    }
    Ok(Some(raw))
}

/// Like [`ascii`], as text.
pub(crate) fn text<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<Option<&'h str>, WebhookError> {
    match ascii(headers, name)? {
        // Printable ASCII is UTF-8.
        Some(raw) => {
            std::str::from_utf8(raw)
                .map(Some)
                .map_err(|_| WebhookError::MalformedHeader {
                    header: name,
                    reason: "not printable ASCII",
                })
        }
        None => Ok(None),
    }
}

/// Like [`text`], but absence is [`WebhookError::MissingHeader`].
pub(crate) fn required<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<&'h str, WebhookError> {
    text(headers, name)?.ok_or(WebhookError::MissingHeader { header: name })
}

/// The first of `names` that is present, as [`ascii`] bytes; absence of
/// both is reported under the first name.
pub(crate) fn required_any<'h, H: Headers + ?Sized>(
    headers: &'h H,
    names: &[&'static str; 2],
) -> Result<&'h [u8], WebhookError> {
    match ascii(headers, names[0])? {
        Some(v) => Ok(v),
        None => ascii(headers, names[1])?.ok_or(WebhookError::MissingHeader { header: names[0] }),
    }
}

/// A delivery id for replay protection: present, 1..=256 bytes, printable
/// ASCII without spaces.
pub(crate) fn delivery_id<'h, H: Headers + ?Sized>(headers: &'h H, name: &str) -> Option<&'h str> {
    let raw = headers.header(name)?;
    if raw.is_empty() || raw.len() > 256 || !raw.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    std::str::from_utf8(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_lookup_is_case_insensitive() {
        let mut map = http::HeaderMap::new();
        map.insert("X-Hub-Signature-256", http::HeaderValue::from_static("a"));
        assert_eq!(map.header("x-hub-signature-256"), Some(&b"a"[..]));
        let pairs = vec![("X-HUB-SIGNATURE-256".to_owned(), b"b".to_vec())];
        assert_eq!(pairs.header("x-hub-signature-256"), Some(&b"b"[..]));
    }

    #[test]
    fn first_of_repeated_headers_wins() {
        let mut map = http::HeaderMap::new();
        map.append("webhook-id", http::HeaderValue::from_static("first"));
        map.append("webhook-id", http::HeaderValue::from_static("second"));
        assert_eq!(map.header("webhook-id"), Some(&b"first"[..]));
        let pairs = [("webhook-id", "first"), ("webhook-id", "second")];
        assert_eq!(pairs.header("webhook-id"), Some(&b"first"[..]));
    }

    #[test]
    fn text_refuses_long_and_non_ascii_values() {
        let long = "a".repeat(MAX_HEADER_LEN + 1);
        let ok = "a".repeat(MAX_HEADER_LEN);
        assert!(text(&[("h", long.as_str())], "h").is_err());
        assert_eq!(text(&[("h", ok.as_str())], "h").unwrap(), Some(ok.as_str()));
        assert!(text(&[("h", "caf\u{e9}")], "h").is_err());
        assert!(text(&[("h", "a\tb")], "h").is_err());
        assert!(text(&[("h", &b"\xff"[..])], "h").is_err());
        assert_eq!(text(&[("h", "")], "x").unwrap(), None);
        assert_eq!(
            required(&[("h", "")], "x").unwrap_err(),
            WebhookError::MissingHeader { header: "x" }
        );
    }

    #[test]
    fn delivery_ids_are_bounded() {
        assert_eq!(delivery_id(&[("d", "abc-1")], "d"), Some("abc-1"));
        assert_eq!(delivery_id(&[("d", "")], "d"), None);
        assert_eq!(delivery_id(&[("d", "a b")], "d"), None);
        let long = "a".repeat(257);
        assert_eq!(delivery_id(&[("d", long.as_str())], "d"), None);
    }
}
