//! [Standard Webhooks](https://www.standardwebhooks.com/): signing and
//! verification, also used by Svix and Clerk.
//!
//! ```text
//! webhook-id:        msg_2KWPBgLlAfxdpx2AI54pPJ85f4W     (svix-id accepted too)
//! webhook-timestamp: 1614265330                          (svix-timestamp)
//! webhook-signature: v1,<base64 HMAC-SHA256> [v1,...]    (svix-signature)
//! signed content:    <id> "." <timestamp> "." <raw body>
//! ```
//!
//! - The `v1` key is the base64-*decoded* [`WebhookSecret`].
//! - The signature header is a space-separated list; any entry made with
//!   any of the given keys passes. Entries of other versions (`v1a`, `v2`)
//!   are ignored, never an error. At most 32 entries are read.
//! - The timestamp must be within ±5 minutes of `now` by default
//!   ([`VerifyOptions::with_tolerance`]).
//! - The id is signed, so it is the right key for a replay guard
//!   ([`delivery_id`]).
//! - With the `ed25519` feature, `v1a` signatures (Ed25519) are made with a
//!   `WebhookSigningKey` (`whsk_`) and verified with a trusted
//!   `WebhookPublicKey` (`whpk_`), through the same [`sign`] and [`verify`].
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use consentry::webhook::{WebhookSecret, standard};
//!
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"test": 2432232314}"#;
//! let signed = standard::sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)?;
//!
//! // Receiving side: `headers` is an `http::HeaderMap` or `(name, value)` pairs.
//! let now = UNIX_EPOCH + Duration::from_secs(1614265330 + 20);
//! standard::verify(&[secret], &signed, body, now)?;
//! assert_eq!(standard::delivery_id(&signed), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
//! # Ok::<(), consentry::Error>(())
//! ```

use std::time::SystemTime;

use super::common::{self, MAX_SIGNATURES};
use super::headers::{self, Headers, SignedHeaders};
use super::{VerifyOptions, WebhookError, WebhookSecret};
use crate::error::Result;
use crate::secret::constant_time_eq;

/// Header names, Standard Webhooks first, then the Svix / Clerk names.
const ID: [&str; 2] = ["webhook-id", "svix-id"];
const TIMESTAMP: [&str; 2] = ["webhook-timestamp", "svix-timestamp"];
const SIGNATURE: [&str; 2] = ["webhook-signature", "svix-signature"];

/// Longest message id accepted, in bytes.
const MAX_ID_LEN: usize = 256;

/// A key that makes Standard Webhooks signatures: [`WebhookSecret`] (`v1`)
/// and, with the `ed25519` feature, `WebhookSigningKey` (`v1a`).
///
/// Sealed: implemented only in this crate.
///
/// ```
/// use consentry::webhook::{SignedHeaders, WebhookSecret, standard::{self, SigningKey}};
/// fn sign_event<K: SigningKey>(key: &K) -> consentry::Result<SignedHeaders> {
///     standard::sign(key, "msg_1", 1_700_000_000, b"{}")
/// }
/// let signed = sign_event(&WebhookSecret::generate()?)?;
/// assert!(signed.get("webhook-signature").unwrap().starts_with("v1,"));
/// # Ok::<(), consentry::Error>(())
/// ```
pub trait SigningKey: sealed::Sign {}

/// A key that checks Standard Webhooks signatures: [`WebhookSecret`]
/// (`v1`) and, with the `ed25519` feature, `WebhookPublicKey` (`v1a`).
///
/// Sealed: implemented only in this crate.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{Headers, WebhookSecret, standard::{self, VerifyingKey}};
/// fn accept<K: VerifyingKey>(keys: &[K], headers: &impl Headers, body: &[u8]) -> bool {
///     standard::verify(keys, headers, body, UNIX_EPOCH + Duration::from_secs(1_700_000_000)).is_ok()
/// }
/// let secret = WebhookSecret::generate()?;
/// let signed = standard::sign(&secret, "msg_1", 1_700_000_000, b"{}")?;
/// assert!(accept(&[secret.clone()], &signed, b"{}"));
/// assert!(!accept(&[secret], &signed, b"{\"forged\":1}"));
/// # Ok::<(), consentry::Error>(())
/// ```
pub trait VerifyingKey: sealed::Verify {}

#[allow(unreachable_pub)]
pub(crate) mod sealed {
    /// What is signed: `id "." timestamp "." payload`, kept in pieces so the
    /// payload is never copied.
    #[derive(Debug, Clone, Copy)]
    pub struct Content<'a> {
        pub id: &'a [u8],
        pub timestamp: &'a [u8],
        pub payload: &'a [u8],
    }

    impl Content<'_> {
        pub fn parts(&self) -> [&[u8]; 5] {
            [self.id, b".", self.timestamp, b".", self.payload]
        }

        /// HMAC-SHA256 of the content under `key`. The short `id.ts.`
        /// prefix is assembled on the stack so the MAC sees two updates,
        /// not five; the payload is still never copied.
        pub(crate) fn hmac(&self, key: &super::common::KeyedMac) -> [u8; 32] {
            let head = [self.id, b".", self.timestamp, b"."];
            let len: usize = head.iter().map(|p| p.len()).sum();
            let mut prefix = [0u8; 320];
            if len > prefix.len() {
                return key.mac(&self.parts());
            }
            let mut at = 0;
            for part in head {
                prefix[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            key.mac(&[&prefix[..len], self.payload])
        }
    }

    pub trait Sign {
        /// The version tag (`v1`, `v1a`).
        const VERSION: &'static str;
        /// The base64 signature of `content`.
        fn sign_b64(&self, content: &Content<'_>) -> String;
    }

    pub trait Verify {
        /// The version tag (`v1`, `v1a`).
        const VERSION: &'static str;
        /// Whether any entry of this key's version in the signature
        /// header (see [`entries`]) was made over `content` with this key.
        fn matches_any(&self, content: &Content<'_>, header: &[u8]) -> bool;
    }

    /// The signatures of `version` in a `webhook-signature` header: a
    /// space-separated list of `version,base64`, read up to the 32nd entry.
    /// Entries without a comma or of another version are skipped.
    pub fn entries<'a>(header: &'a [u8], version: &'a str) -> impl Iterator<Item = &'a [u8]> {
        header
            .split(|&b| b == b' ')
            .filter(|e| !e.is_empty())
            .take(super::MAX_SIGNATURES)
            .filter_map(move |e| {
                let comma = e.iter().position(|&b| b == b',')?;
                let (v, sig) = e.split_at(comma);
                (v == version.as_bytes()).then(|| &sig[1..])
            })
    }
}

use sealed::{Content, entries};

impl sealed::Sign for WebhookSecret {
    const VERSION: &'static str = "v1";
    fn sign_b64(&self, content: &Content<'_>) -> String {
        common::b64(&content.hmac(self.keyed()))
    }
}

impl sealed::Verify for WebhookSecret {
    const VERSION: &'static str = "v1";
    fn matches_any(&self, content: &Content<'_>, header: &[u8]) -> bool {
        let expected = content.hmac(self.keyed());
        entries(header, Self::VERSION).any(|s| {
            common::decode_b64::<32>(s).is_some_and(|got| constant_time_eq(&expected, &got))
        })
    }
}

impl SigningKey for WebhookSecret {}
impl VerifyingKey for WebhookSecret {}

impl<K: SigningKey> sealed::Sign for &K {
    const VERSION: &'static str = K::VERSION;
    fn sign_b64(&self, content: &Content<'_>) -> String {
        (**self).sign_b64(content)
    }
}

impl<K: VerifyingKey> sealed::Verify for &K {
    const VERSION: &'static str = K::VERSION;
    fn matches_any(&self, content: &Content<'_>, header: &[u8]) -> bool {
        (**self).matches_any(content, header)
    }
}

impl<K: SigningKey> SigningKey for &K {}
impl<K: VerifyingKey> VerifyingKey for &K {}

/// Signs `payload` as message `msg_id` at `timestamp` (Unix seconds).
///
/// Returns the `webhook-id`, `webhook-timestamp` and `webhook-signature`
/// headers. The payload is hashed in place, never copied.
///
/// # Errors
/// [`WebhookError::InvalidSigningInput`] if `msg_id` is empty, longer than
/// 256 bytes, or has anything but printable ASCII other than `.` (a `.` or
/// a space would make the signed content ambiguous or break the header).
///
/// ```
/// use consentry::webhook::{WebhookSecret, standard};
///
/// let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
/// let body = br#"{"email":"test@example.com","username":"test_user"}"#;
/// let signed = standard::sign(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body)?;
/// assert_eq!(signed.get("webhook-signature"), Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="));
/// assert!(standard::sign(&secret, "msg.1", 1649367553, body).is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign<K: SigningKey>(
    key: &K,
    msg_id: &str,
    timestamp: u64,
    payload: &[u8],
) -> Result<SignedHeaders> {
    sign_all(std::slice::from_ref(key), msg_id, timestamp, payload)
}

/// Signs with every key in `keys` (during a secret rotation), giving one
/// `webhook-signature` header with one space-separated entry per key.
///
/// # Errors
/// As [`sign`], and [`WebhookError::InvalidSecret`] if `keys` is empty.
///
/// ```
/// use consentry::webhook::{WebhookSecret, standard};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let (old, new) = (WebhookSecret::generate()?, WebhookSecret::generate()?);
/// let signed = standard::sign_all(&[new.clone(), old.clone()], "msg_1", 1_700_000_000, b"{}")?;
/// assert_eq!(signed.get("webhook-signature").unwrap().split(' ').count(), 2);
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// standard::verify(&[old], &signed, b"{}", now)?;   // a receiver not yet updated
/// standard::verify(&[new], &signed, b"{}", now)?;   // an updated one
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign_all<K: SigningKey>(
    keys: &[K],
    msg_id: &str,
    timestamp: u64,
    payload: &[u8],
) -> Result<SignedHeaders> {
    check_msg_id(msg_id)?;
    if keys.is_empty() {
        return Err(WebhookError::InvalidSecret {
            reason: "no key to sign with",
        }
        .into());
    }
    let timestamp = timestamp.to_string();
    let content = Content {
        id: msg_id.as_bytes(),
        timestamp: timestamp.as_bytes(),
        payload,
    };
    let mut signature = String::with_capacity(keys.len() * 96);
    for key in keys {
        if !signature.is_empty() {
            signature.push(' ');
        }
        signature.push_str(K::VERSION);
        signature.push(',');
        signature.push_str(&key.sign_b64(&content));
    }
    Ok(SignedHeaders::new(vec![
        (ID[0], msg_id.to_owned()),
        (TIMESTAMP[0], timestamp),
        (SIGNATURE[0], signature),
    ]))
}

/// Verifies a delivery with the default [`VerifyOptions`] (±5 minutes, no
/// payload limit). See [`verify_with`].
///
/// # Errors
/// As [`verify_with`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::{Error, webhook::{WebhookError, WebhookSecret, standard}};
///
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let headers = [
///     ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("svix-timestamp", "1614265330"),
///     ("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let body = br#"{"test": 2432232314}"#;
/// let now = UNIX_EPOCH + Duration::from_secs(1614265330);
/// standard::verify(&[&secret], &headers, body, now)?;
///
/// let err = standard::verify(&[secret], &headers, b"{}", now).unwrap_err();
/// assert!(matches!(err, Error::Webhook(WebhookError::NoMatchingSignature)));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify<K: VerifyingKey, H: Headers + ?Sized>(
    keys: &[K],
    headers: &H,
    payload: &[u8],
    now: SystemTime,
) -> Result<()> {
    verify_with(&VerifyOptions::new(), keys, headers, payload, now)
}

/// Verifies a delivery: the raw body `payload` against the `webhook-*` (or
/// `svix-*`) `headers`, with any of `keys`, at time `now`.
///
/// Call it on the raw request bytes, before parsing any JSON.
///
/// # Errors
/// [`Error::Webhook`](crate::Error::Webhook) with
/// - [`WebhookError::PayloadTooLarge`] over [`VerifyOptions::max_payload_len`];
/// - [`WebhookError::MissingHeader`] if the id, timestamp or signature
///   header is absent;
/// - [`WebhookError::MalformedHeader`] if one is too long, not ASCII, or the
///   timestamp is not a decimal number of seconds;
/// - [`WebhookError::TimestampTooOld`] / [`WebhookError::TimestampTooNew`]
///   outside the tolerance;
/// - [`WebhookError::NoMatchingSignature`] if no entry of the key's version
///   matches any key.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{VerifyOptions, WebhookSecret, standard};
///
/// let secret = WebhookSecret::generate()?;
/// let signed = standard::sign(&secret, "msg_1", 1_700_000_000, b"{}")?;
/// let late = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 90);
/// let strict = VerifyOptions::new().with_tolerance(Duration::from_secs(60));
/// assert!(standard::verify_with(&strict, &[&secret], &signed, b"{}", late).is_err());
/// standard::verify(&[secret], &signed, b"{}", late)?;
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify_with<K: VerifyingKey, H: Headers + ?Sized>(
    options: &VerifyOptions,
    keys: &[K],
    headers: &H,
    payload: &[u8],
    now: SystemTime,
) -> Result<()> {
    common::check_payload(payload, options)?;
    let id = headers::required_any(headers, &ID)?;
    let timestamp = headers::required_any(headers, &TIMESTAMP)?;
    let signature = headers::required_any(headers, &SIGNATURE)?;
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.iter().all(u8::is_ascii_graphic) {
        return Err(WebhookError::MalformedHeader {
            header: ID[0],
            reason: "must be 1 to 256 printable ASCII characters without spaces",
        }
        .into());
    }
    let seconds = common::parse_seconds(timestamp).ok_or(WebhookError::MalformedHeader {
        header: TIMESTAMP[0],
        reason: "not a decimal Unix timestamp in seconds",
    })?;
    common::check_window(seconds, now, options, true)?;

    if entries(signature, K::VERSION).next().is_some() {
        let content = Content {
            id,
            timestamp,
            payload,
        };
        if keys.iter().any(|k| k.matches_any(&content, signature)) {
            return Ok(());
        }
    }
    Err(WebhookError::NoMatchingSignature.into())
}

/// The message id (`webhook-id`, else `svix-id`), for a replay guard.
///
/// The id is covered by the signature, so after [`verify`] succeeds it is
/// authentic: a replayed request carries the same id. `None` if absent,
/// empty, longer than 256 bytes or not printable ASCII.
///
/// ```
/// use consentry::webhook::standard;
/// assert_eq!(standard::delivery_id(&[("svix-id", "msg_1")]), Some("msg_1"));
/// ```
pub fn delivery_id<H: Headers + ?Sized>(headers: &H) -> Option<&str> {
    headers::delivery_id(headers, ID[0]).or_else(|| {
        headers
            .header(ID[0])
            .is_none()
            .then(|| headers::delivery_id(headers, ID[1]))
            .flatten()
    })
}

/// Parses a timestamp given as text (from a queue, a config file) into the
/// Unix seconds [`sign`] takes: decimal digits only.
///
/// # Errors
/// [`WebhookError::InvalidSigningInput`] for anything else: a sign, a
/// fraction, spaces, words, more than 19 digits.
///
/// ```
/// use consentry::webhook::standard;
/// assert_eq!(standard::parse_timestamp("1614265330")?, 1614265330);
/// for bad in ["161426533.0", "invalid timestamp", "-161426533"] {
///     assert!(standard::parse_timestamp(bad).is_err());
/// }
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn parse_timestamp(s: &str) -> Result<u64> {
    common::parse_seconds(s).ok_or_else(|| {
        WebhookError::InvalidSigningInput {
            what: "timestamp",
            reason: "not a decimal Unix timestamp in seconds",
        }
        .into()
    })
}

fn check_msg_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > MAX_ID_LEN {
        "longer than 256 bytes"
    } else if id.contains('.') {
        "contains `.`, the separator of the signed content"
    } else if !id.bytes().all(|b| b.is_ascii_graphic()) {
        "contains a space, a control character or non-ASCII"
    } else {
        return Ok(());
    };
    Err(WebhookError::InvalidSigningInput {
        what: "message id",
        reason,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::Error;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn err(r: Result<()>) -> WebhookError {
        match r {
            Err(Error::Webhook(e)) => e,
            other => panic!("expected a webhook error, got {other:?}"),
        }
    }

    #[test]
    fn sign_refuses_ambiguous_ids() {
        let s = WebhookSecret::generate().unwrap();
        for bad in ["", "a.b", "a b", "a\nb", "caf\u{e9}", &"a".repeat(257)] {
            assert!(sign(&s, bad, 1, b"").is_err(), "{bad:?}");
        }
        assert!(sign(&s, &"a".repeat(256), 1, b"").is_ok());
        assert!(sign_all::<WebhookSecret>(&[], "a", 1, b"").is_err());
    }

    #[test]
    fn signature_list_is_capped_at_32_entries() {
        let s = WebhookSecret::generate().unwrap();
        let signed = sign(&s, "m", 100, b"x").unwrap();
        let valid = signed.get("webhook-signature").unwrap();
        let junk = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let mut list = vec![junk; 31];
        list.push(valid);
        let h = |sig: String| {
            vec![
                ("webhook-id", "m".to_owned()),
                ("webhook-timestamp", "100".to_owned()),
                ("webhook-signature", sig),
            ]
        };
        assert!(verify(&[&s], &h(list.join(" ")), b"x", at(100)).is_ok());
        list.insert(0, junk);
        assert_eq!(
            err(verify(&[s], &h(list.join(" ")), b"x", at(100))),
            WebhookError::NoMatchingSignature
        );
    }

    #[test]
    fn id_length_and_payload_limit_are_enforced() {
        let s = WebhookSecret::generate().unwrap();
        let long = "a".repeat(257);
        let h = [
            ("webhook-id", long.as_str()),
            ("webhook-timestamp", "100"),
            ("webhook-signature", "v1,x"),
        ];
        assert!(matches!(
            err(verify(&[&s], &h, b"", at(100))),
            WebhookError::MalformedHeader {
                header: "webhook-id",
                ..
            }
        ));
        let signed = sign(&s, "m", 100, b"12345").unwrap();
        let opts = VerifyOptions::new().with_max_payload_len(4);
        assert_eq!(
            err(verify_with(&opts, &[&s], &signed, b"12345", at(100))),
            WebhookError::PayloadTooLarge { limit: 4 }
        );
        let opts = VerifyOptions::new().with_max_payload_len(5);
        assert!(verify_with(&opts, &[s], &signed, b"12345", at(100)).is_ok());
    }

    #[test]
    fn entries_without_a_comma_or_of_other_versions_are_ignored() {
        let s = WebhookSecret::generate().unwrap();
        let signed = sign(&s, "m", 100, b"x").unwrap();
        let valid = signed.get("webhook-signature").unwrap();
        let sig = format!("garbage  v2,{}   {valid} ", &valid[3..]);
        let h = [
            ("webhook-id", "m"),
            ("webhook-timestamp", "100"),
            ("webhook-signature", sig.as_str()),
        ];
        assert!(verify(&[&s], &h, b"x", at(100)).is_ok());
        let only_v2 = format!("v2,{}", &valid[3..]);
        let h = [
            ("webhook-id", "m"),
            ("webhook-timestamp", "100"),
            ("webhook-signature", only_v2.as_str()),
        ];
        assert_eq!(
            err(verify(&[s], &h, b"x", at(100))),
            WebhookError::NoMatchingSignature
        );
    }

    #[test]
    fn delivery_id_prefers_webhook_id() {
        let h = [("svix-id", "b"), ("webhook-id", "a")];
        assert_eq!(delivery_id(&h), Some("a"));
        // A present but invalid webhook-id does not fall back to svix-id.
        let h = [("svix-id", "b"), ("webhook-id", "")];
        assert_eq!(delivery_id(&h), None);
    }
}
