//! Shopify webhook signatures.
//!
//! ```text
//! X-Shopify-Hmac-SHA256: <base64 HMAC-SHA256(app client secret as text, raw body)>
//! X-Shopify-Webhook-Id:  <id of the delivery, for de-duplication>
//! ```
//!
//! Base64, not hex. No timestamp is signed (`X-Shopify-Triggered-At` is
//! not covered by the signature), and neither is the webhook id: key a
//! replay guard on [`delivery_id`] *and* a digest of the body. After a
//! client-secret rotation Shopify may sign with the old secret for up to an
//! hour, so pass both secrets for that window.
//!
//! ```
//! use consentry::webhook::{HmacSecret, shopify};
//!
//! let secret = HmacSecret::new("hush")?;
//! let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
//! let headers = [
//!     ("X-Shopify-Hmac-SHA256", "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="),
//!     ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
//! ];
//! shopify::verify(&[secret], &headers, body)?;
//! assert_eq!(shopify::delivery_id(&headers), Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"));
//! # Ok::<(), consentry::Error>(())
//! ```

use std::borrow::Borrow;

use super::common;
use super::headers::{self, Headers, SignedHeaders};
use super::{HmacSecret, VerifyOptions, WebhookError};
use crate::error::Result;

const HEADER: &str = "x-shopify-hmac-sha256";
const DELIVERY: &str = "x-shopify-webhook-id";

/// Signs `payload` as Shopify does; for tests of a Shopify receiver.
///
/// # Errors
/// None today; the `Result` keeps the shape of the other schemes.
///
/// ```
/// use consentry::webhook::{HmacSecret, shopify};
/// let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
/// let signed = shopify::sign(&HmacSecret::new("hush")?, body)?;
/// assert_eq!(signed.get("x-shopify-hmac-sha256"), Some("D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign(secret: &HmacSecret, payload: &[u8]) -> Result<SignedHeaders> {
    let mac = secret.keyed().mac(&[payload]);
    Ok(SignedHeaders::new(vec![(HEADER, common::b64(&mac))]))
}

/// Verifies a Shopify delivery with the default [`VerifyOptions`]. See
/// [`verify_with`].
///
/// # Errors
/// As [`verify_with`].
///
/// ```
/// use consentry::webhook::{HmacSecret, shopify};
///
/// let (old, new) = (HmacSecret::new("old secret")?, HmacSecret::new("new secret")?);
/// let signed = shopify::sign(&old, b"{}")?;
/// shopify::verify(&[new, old], &signed, b"{}")?;   // rotation window: both accepted
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify<H: Headers + ?Sized>(
    secrets: &[impl Borrow<HmacSecret>],
    headers: &H,
    payload: &[u8],
) -> Result<()> {
    verify_with(&VerifyOptions::new(), secrets, headers, payload)
}

/// Verifies the raw body `payload` against `X-Shopify-Hmac-SHA256` with any
/// of `secrets`. Only the payload limit of `options` applies.
///
/// # Errors
/// [`Error::Webhook`](crate::Error::Webhook) with
/// [`WebhookError::PayloadTooLarge`], [`WebhookError::MissingHeader`],
/// [`WebhookError::MalformedHeader`] (not the padded base64 of 32 bytes), or
/// [`WebhookError::NoMatchingSignature`].
///
/// ```
/// use consentry::webhook::{HmacSecret, VerifyOptions, shopify};
///
/// let secret = HmacSecret::new("hush")?;
/// let signed = shopify::sign(&secret, b"{}")?;
/// shopify::verify_with(&VerifyOptions::new().with_max_payload_len(1024), &[secret], &signed, b"{}")?;
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
    let sig = common::decode_b64::<32>(value).ok_or(WebhookError::MalformedHeader {
        header: HEADER,
        reason: "expected the padded base64 of 32 bytes",
    })?;
    if common::any_hmac_matches(secrets, &[payload], &[sig]) {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature.into())
    }
}

/// The `X-Shopify-Webhook-Id`, for a replay guard. Not covered by the
/// signature (see the module docs). `None` if absent, empty, longer than
/// 256 bytes or not printable ASCII.
///
/// ```
/// use consentry::webhook::shopify;
/// assert_eq!(shopify::delivery_id(&[("X-Shopify-Webhook-Id", "w1")]), Some("w1"));
/// ```
pub fn delivery_id<H: Headers + ?Sized>(headers: &H) -> Option<&str> {
    headers::delivery_id(headers, DELIVERY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn hex_or_unpadded_signatures_are_malformed() {
        let secret = HmacSecret::new("hush").unwrap();
        let signed = sign(&secret, b"x").unwrap();
        let b64 = signed.get(HEADER).unwrap();
        let hex = common::hex(&common::hmac_sha256(b"hush", &[b"x"]));
        for bad in [hex.as_str(), b64.trim_end_matches('='), ""] {
            let err = verify(&[&secret], &[(HEADER, bad)], b"x").unwrap_err();
            assert!(
                matches!(err, Error::Webhook(WebhookError::MalformedHeader { .. })),
                "{bad}"
            );
        }
        assert!(verify(&[secret], &[(HEADER, b64)], b"x").is_ok());
    }
}
