//! OAuth 1.0a request signing, HMAC-SHA1 (RFC 5849 §3.4): the signature
//! base string, the signature, and the `Authorization: OAuth ...` header.
//! Sans-I/O; used by legacy APIs such as Goodreads'.
//!
//! ```
//! use consentry::oauth::oauth1::{self, OAuth1Credentials};
//! use consentry::url::Url;
//! // OAuth Core 1.0a, Appendix A.5 (the same example RFC 5849 §1.2 builds on).
//! let consumer = OAuth1Credentials::new("dpf43f3p2l4k3l03", "kd94hf93k423kf44");
//! let token = OAuth1Credentials::new("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00");
//! let url = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original")?;
//! let header = oauth1::authorization_header("GET", &url, &[], &consumer, Some(&token),
//!                                            "kllo9940pd9333jh", 1191242096, true);
//! assert!(header.contains(r#"oauth_signature="tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use url::Url;

/// A key and its shared secret: the client (consumer) credentials, or the
/// token credentials of a user. The secret is redacted in `Debug`.
///
/// ```
/// use consentry::oauth::oauth1::OAuth1Credentials;
/// let c = OAuth1Credentials::new("key", "s3cret");
/// assert_eq!(c.key(), "key");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct OAuth1Credentials {
    key: String,
    secret: SecretString,
}

impl fmt::Debug for OAuth1Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth1Credentials")
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl OAuth1Credentials {
    /// Credentials from a key and a secret.
    ///
    /// ```
    /// use consentry::oauth::oauth1::OAuth1Credentials;
    /// let c = OAuth1Credentials::new("dpf43f3p2l4k3l03", String::from("kd94hf93k423kf44"));
    /// assert_eq!(c.key(), "dpf43f3p2l4k3l03");
    /// ```
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// The key (`oauth_consumer_key` or `oauth_token`).
    ///
    /// ```
    /// use consentry::oauth::oauth1::OAuth1Credentials;
    /// assert_eq!(OAuth1Credentials::new("token-key", "token-secret").key(), "token-key");
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The form a user's token credentials are sealed in (one vault
    /// credential of kind `ApiKey`).
    ///
    /// ```
    /// use consentry::oauth::oauth1::OAuth1Credentials;
    /// use consentry::secrecy::ExposeSecret;
    /// let sealable = OAuth1Credentials::new("k", "s").to_sealable();
    /// let v: serde_json::Value = serde_json::from_str(sealable.expose_secret()).unwrap();
    /// assert_eq!(v, serde_json::json!({"key": "k", "secret": "s"}));
    /// ```
    pub fn to_sealable(&self) -> SecretString {
        SecretString::from(
            serde_json::json!({"key": self.key, "secret": self.secret.expose_secret()}).to_string(),
        )
    }

    /// Reads what [`OAuth1Credentials::to_sealable`] made.
    pub(crate) fn from_sealed(s: &SecretString) -> crate::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Stored {
            key: String,
            secret: String,
        }
        let v: Stored = serde_json::from_str(s.expose_secret()).map_err(|_| {
            crate::Error::invalid("oauth 1.0a credentials", "not sealed by OAuth1Credentials")
        })?;
        Ok(Self::new(v.key, v.secret))
    }
}

/// RFC 5849 §3.6 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~`,
/// as `%XX` with upper-case hex.
///
/// ```
/// use consentry::oauth::oauth1::encode;
/// assert_eq!(encode("r b/~é"), "r%20b%2F~%C3%A9");
/// ```
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base string URI (§3.4.1.2): lower-case scheme and host, no default
/// port, no query or fragment.
fn base_uri(url: &Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let port = match (url.port(), scheme.as_str()) {
        (Some(80), "http") | (Some(443), "https") | (None, _) => String::new(),
        (Some(p), _) => format!(":{p}"),
    };
    format!("{scheme}://{host}{port}{}", url.path())
}

/// The signature base string (§3.4.1): method, base URI, and the
/// normalized parameters: the query's, `params` (form body and `oauth_*`
/// protocol parameters), each encoded, sorted by name then value.
///
/// ```
/// use consentry::oauth::oauth1::signature_base_string;
/// use consentry::url::Url;
/// let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b")?;
/// let params: Vec<(String, String)> = [
///     ("c2", ""), ("a3", "2 q"), ("oauth_consumer_key", "9djdj82h48djs9d2"),
///     ("oauth_token", "kkk9d7dh3k39sjv7"), ("oauth_signature_method", "HMAC-SHA1"),
///     ("oauth_timestamp", "137131201"), ("oauth_nonce", "7d8f3e4a"),
/// ].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
/// // RFC 5849 §3.4.1.1.
/// assert_eq!(signature_base_string("POST", &url, &params),
///     "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn signature_base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    let mut all: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .chain(params.iter().map(|(k, v)| (encode(k), encode(v))))
        .collect();
    all.sort();
    let normalized = all
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base_uri(url)),
        encode(&normalized)
    )
}

/// The HMAC-SHA1 signature (§3.4.2), base64: keyed with the encoded
/// client secret and token secret joined by `&`.
///
/// ```
/// use consentry::oauth::oauth1::hmac_sha1;
/// let sig = hmac_sha1("GET&http%3A%2F%2Fx.example%2F&", "cs", Some("ts"));
/// assert_eq!(sig.len(), 28);
/// ```
pub fn hmac_sha1(base_string: &str, client_secret: &str, token_secret: Option<&str>) -> String {
    let key = format!(
        "{}&{}",
        encode(client_secret),
        encode(token_secret.unwrap_or(""))
    );
    // HMAC takes keys of any length: the error branch is never taken.
    match <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(base_string.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The `Authorization` header value (§3.5.1) for a request: protocol
/// parameters (`oauth_version=1.0` when `with_version`), signed over the
/// URL's query and `form` (an `application/x-www-form-urlencoded` body's
/// pairs, if any).
///
/// ```
/// use consentry::oauth::oauth1::{self, OAuth1Credentials};
/// use consentry::url::Url;
/// let consumer = OAuth1Credentials::new("dpf43f3p2l4k3l03", "kd94hf93k423kf44");
/// let url = Url::parse("https://www.goodreads.com/shelf/list.xml?user_id=1")?;
/// let header = oauth1::authorization_header("GET", &url, &[], &consumer, None, "n0nce", 1_700_000_000, false);
/// assert!(header.starts_with("OAuth "));
/// assert!(header.contains(r#"oauth_signature_method="HMAC-SHA1""#) && !header.contains("oauth_version"));
/// assert!(!header.contains("kd94hf93k423kf44")); // the secret only keys the signature
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn authorization_header(
    method: &str,
    url: &Url,
    form: &[(String, String)],
    client: &OAuth1Credentials,
    token: Option<&OAuth1Credentials>,
    nonce: &str,
    timestamp: u64,
    with_version: bool,
) -> String {
    let mut protocol: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), client.key.clone()),
        ("oauth_nonce".into(), nonce.to_owned()),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), timestamp.to_string()),
    ];
    if let Some(t) = token {
        protocol.push(("oauth_token".into(), t.key.clone()));
    }
    if with_version {
        protocol.push(("oauth_version".into(), "1.0".into()));
    }
    let mut signed = protocol.clone();
    signed.extend(form.iter().cloned());
    let base = signature_base_string(method, url, &signed);
    let signature = hmac_sha1(&base, client.secret(), token.map(OAuth1Credentials::secret));
    protocol.push(("oauth_signature".into(), signature));
    let fields = protocol
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("OAuth {fields}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 §1.2, the protected resource request.
    #[test]
    fn rfc5849_section_1_2() {
        let consumer = OAuth1Credentials::new("dpf43f3p2l4k3l03", "kd94hf93k423kf44");
        let token = OAuth1Credentials::new("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00");
        let url =
            Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let h = authorization_header(
            "GET",
            &url,
            &[],
            &consumer,
            Some(&token),
            "chapoH",
            137_131_202,
            false,
        );
        assert!(
            h.contains(r#"oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D""#),
            "{h}"
        );
    }

    /// OAuth Core 1.0a Appendix A.5.1: the base string.
    #[test]
    fn core_1_0a_base_string() {
        let url =
            Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let params: Vec<(String, String)> = [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature_base_string("GET", &url, &params),
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
    }

    #[test]
    fn default_ports_are_dropped_others_kept() {
        assert_eq!(
            base_uri(&Url::parse("HTTP://Example.COM:80/r?x=1").unwrap()),
            "http://example.com/r"
        );
        assert_eq!(
            base_uri(&Url::parse("https://example.com:8443/r").unwrap()),
            "https://example.com:8443/r"
        );
    }
}
