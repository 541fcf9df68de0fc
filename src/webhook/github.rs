//! GitHub webhook signatures.
//!
//! ```text
//! X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret as text, raw body)>
//! X-GitHub-Delivery:   <GUID of the delivery, unchanged on redelivery>
//! ```
//!
//! GitHub signs no timestamp, so a captured request verifies forever: use a
//! replay guard. Key it on [`delivery_id`] to drop GitHub's own redeliveries,
//! and also on a digest of the body, because the delivery header is *not*
//! signed and an attacker replaying a request can change it. The legacy
//! SHA-1 header `X-Hub-Signature` is not accepted.
//!
//! ```
//! use consentry::webhook::{HmacSecret, github};
//!
//! let secret = HmacSecret::new("It's a Secret to Everybody")?;
//! let headers = [
//!     ("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
//!     ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
//! ];
//! github::verify(&[secret], &headers, b"Hello, World!")?;
//! assert_eq!(github::delivery_id(&headers), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
//! # Ok::<(), consentry::Error>(())
//! ```

use std::borrow::Borrow;

use super::common;
use super::headers::{self, Headers, SignedHeaders};
use super::{HmacSecret, VerifyOptions, WebhookError};
use crate::error::Result;

const HEADER: &str = "x-hub-signature-256";
const DELIVERY: &str = "x-github-delivery";

/// Signs `payload` as GitHub does; for tests of a GitHub receiver.
///
/// # Errors
/// None today; the `Result` keeps the shape of the other schemes.
///
/// ```
/// use consentry::webhook::{HmacSecret, github};
/// let signed = github::sign(&HmacSecret::new("It's a Secret to Everybody")?, b"Hello, World!")?;
/// assert_eq!(
///     signed.get("x-hub-signature-256"),
///     Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
/// );
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign(secret: &HmacSecret, payload: &[u8]) -> Result<SignedHeaders> {
    let mac = secret.keyed().mac(&[payload]);
    Ok(SignedHeaders::new(vec![(
        HEADER,
        format!("sha256={}", common::hex(&mac)),
    )]))
}

/// Verifies a GitHub delivery with the default [`VerifyOptions`]. See
/// [`verify_with`].
///
/// # Errors
/// As [`verify_with`].
///
/// ```
/// use consentry::{Error, webhook::{HmacSecret, WebhookError, github}};
///
/// let secret = HmacSecret::new("It's a Secret to Everybody")?;
/// let signed = github::sign(&secret, b"Hello, World!")?;
/// let err = github::verify(&[secret], &signed, b"Hello, World?").unwrap_err();
/// assert!(matches!(err, Error::Webhook(WebhookError::NoMatchingSignature)));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify<H: Headers + ?Sized>(
    secrets: &[impl Borrow<HmacSecret>],
    headers: &H,
    payload: &[u8],
) -> Result<()> {
    verify_with(&VerifyOptions::new(), secrets, headers, payload)
}

/// Verifies the raw body `payload` against `X-Hub-Signature-256` with any
/// of `secrets`. Only the payload limit of `options` applies.
///
/// # Errors
/// [`Error::Webhook`](crate::Error::Webhook) with
/// [`WebhookError::PayloadTooLarge`], [`WebhookError::MissingHeader`],
/// [`WebhookError::MalformedHeader`] (not `sha256=` and 64 hex digits), or
/// [`WebhookError::NoMatchingSignature`].
///
/// ```
/// use consentry::webhook::{HmacSecret, VerifyOptions, github};
///
/// let secret = HmacSecret::new("s3cret")?;
/// let signed = github::sign(&secret, &[b'x'; 100])?;
/// let small = VerifyOptions::new().with_max_payload_len(64);
/// assert!(github::verify_with(&small, &[secret], &signed, &[b'x'; 100]).is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify_with<H: Headers + ?Sized>(
    options: &VerifyOptions,
    secrets: &[impl Borrow<HmacSecret>],
    headers: &H,
    payload: &[u8],
) -> Result<()> {
    common::check_payload(payload, options)?;
    let value = headers::required(headers, HEADER)?;
    let sig = value
        .strip_prefix("sha256=")
        .and_then(common::decode_hex32)
        .ok_or(WebhookError::MalformedHeader {
            header: HEADER,
            reason: "expected `sha256=` and 64 hex digits",
        })?;
    if common::any_hmac_matches(secrets, &[payload], &[sig]) {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature.into())
    }
}

/// The `X-GitHub-Delivery` id, for a replay guard. Not covered by the
/// signature (see the module docs). `None` if absent, empty, longer than
/// 256 bytes or not printable ASCII.
///
/// ```
/// use consentry::webhook::github;
/// assert_eq!(github::delivery_id(&[("x-github-delivery", "abc")]), Some("abc"));
/// assert_eq!(github::delivery_id(&[("x-other", "abc")]), None);
/// ```
pub fn delivery_id<H: Headers + ?Sized>(headers: &H) -> Option<&str> {
    headers::delivery_id(headers, DELIVERY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn legacy_sha1_header_is_not_accepted() {
        let secret = HmacSecret::new("It's a Secret to Everybody").unwrap();
        let headers = [(
            "x-hub-signature",
            "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
        )];
        let err = verify(&[secret], &headers, b"Hello, World!").unwrap_err();
        assert!(matches!(
            err,
            Error::Webhook(WebhookError::MissingHeader {
                header: "x-hub-signature-256"
            })
        ));
    }

    #[test]
    fn wrong_prefix_or_length_is_malformed() {
        let secret = HmacSecret::new("k").unwrap();
        let good = sign(&secret, b"x").unwrap();
        let hexpart = &good.get(HEADER).unwrap()[7..];
        for bad in [
            format!("sha1={hexpart}"),
            format!("sha256={}", &hexpart[..63]),
            format!("sha256= {hexpart}"),
            format!("SHA256={hexpart}"),
        ] {
            let err = verify(&[&secret], &[(HEADER, bad.as_str())], b"x").unwrap_err();
            assert!(
                matches!(err, Error::Webhook(WebhookError::MalformedHeader { .. })),
                "{bad}"
            );
        }
    }
}
