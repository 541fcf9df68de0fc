//! Stripe webhook signatures.
//!
//! ```text
//! Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]
//! key:              the endpoint secret as text, "whsec_" included (no base64 decoding)
//! signed content:   <t> "." <raw body>
//! ```
//!
//! Only `v1` entries count; any one matching passes. `v0` and unknown
//! schemes are ignored (accepting `v0` would allow a downgrade), and so are
//! `v1` entries that are not 64 hex digits. As in Stripe's own libraries,
//! only a timestamp *older* than the tolerance (default 5 minutes) is
//! refused; there is no "too new" check.
//!
//! Stripe puts no delivery id in the headers: after verifying, take the
//! event id (`"id": "evt_..."`) from the body for a replay guard.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use consentry::webhook::{HmacSecret, stripe};
//!
//! let secret = HmacSecret::new("whsec_test_secret")?;
//! let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
//! let signed = stripe::sign(&secret, 1700000000, body)?;
//! assert_eq!(
//!     signed.get("stripe-signature"),
//!     Some("t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"),
//! );
//! stripe::verify(&[secret], &signed, body, UNIX_EPOCH + Duration::from_secs(1700000100))?;
//! # Ok::<(), consentry::Error>(())
//! ```

use std::borrow::Borrow;
use std::time::SystemTime;

use super::common::{self, MAX_SIGNATURES};
use super::headers::{self, Headers, SignedHeaders};
use super::{HmacSecret, VerifyOptions, WebhookError};
use crate::error::Result;

const HEADER: &str = "stripe-signature";

/// Signs `payload` at `timestamp` (Unix seconds), as Stripe does; for
/// tests of a Stripe receiver.
///
/// # Errors
/// None today; the `Result` keeps the shape of the other schemes.
///
/// ```
/// use consentry::webhook::{HmacSecret, stripe};
/// let signed = stripe::sign(&HmacSecret::new("whsec_x")?, 1, b"{}")?;
/// assert!(signed.get("stripe-signature").unwrap().starts_with("t=1,v1="));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign(secret: &HmacSecret, timestamp: u64, payload: &[u8]) -> Result<SignedHeaders> {
    let t = timestamp.to_string();
    let mac = secret.keyed().mac(&[t.as_bytes(), b".", payload]);
    Ok(SignedHeaders::new(vec![(
        HEADER,
        format!("t={t},v1={}", common::hex(&mac)),
    )]))
}

/// Verifies a Stripe delivery with the default [`VerifyOptions`]. See
/// [`verify_with`].
///
/// # Errors
/// As [`verify_with`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::{Error, webhook::{HmacSecret, WebhookError, stripe}};
///
/// let secret = HmacSecret::new("whsec_test_secret")?;
/// let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
/// let signed = stripe::sign(&secret, 1700000000, body)?;
/// let much_later = UNIX_EPOCH + Duration::from_secs(1700000000 + 301);
/// let err = stripe::verify(&[secret], &signed, body, much_later).unwrap_err();
/// assert!(matches!(err, Error::Webhook(WebhookError::TimestampTooOld { .. })));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify<H: Headers + ?Sized>(
    secrets: &[impl Borrow<HmacSecret>],
    headers: &H,
    payload: &[u8],
    now: SystemTime,
) -> Result<()> {
    verify_with(&VerifyOptions::new(), secrets, headers, payload, now)
}

/// Verifies the raw body `payload` against the `Stripe-Signature` header
/// with any of `secrets`, at time `now`.
///
/// # Errors
/// [`Error::Webhook`](crate::Error::Webhook) with
/// [`WebhookError::PayloadTooLarge`], [`WebhookError::MissingHeader`],
/// [`WebhookError::MalformedHeader`] (too long, not ASCII, no `t=` or more
/// than one, `t` not decimal seconds), [`WebhookError::TimestampTooOld`],
/// or [`WebhookError::NoMatchingSignature`] (also when there is no `v1`
/// entry at all).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{HmacSecret, VerifyOptions, stripe};
///
/// let secret = HmacSecret::new("whsec_test_secret")?;
/// let signed = stripe::sign(&secret, 1700000000, b"{}")?;
/// let later = UNIX_EPOCH + Duration::from_secs(1700000000 + 600);
/// let relaxed = VerifyOptions::new().with_tolerance(Duration::from_secs(900));
/// stripe::verify_with(&relaxed, &[secret], &signed, b"{}", later)?;
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn verify_with<H: Headers + ?Sized>(
    options: &VerifyOptions,
    secrets: &[impl Borrow<HmacSecret>],
    headers: &H,
    payload: &[u8],
    now: SystemTime,
) -> Result<()> {
    common::check_payload(payload, options)?;
    let value = headers::required(headers, HEADER)?;
    let parsed = parse(value)?;
    common::check_window(parsed.seconds, now, options, false)?;
    let sigs = &parsed.v1[..parsed.n];
    if common::any_hmac_matches(secrets, &[parsed.t.as_bytes(), b".", payload], sigs) {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature.into())
    }
}

/// A parsed `Stripe-Signature` header.
struct Parsed<'a> {
    t: &'a str,
    seconds: u64,
    v1: [[u8; 32]; MAX_SIGNATURES],
    n: usize,
}

fn parse(value: &str) -> Result<Parsed<'_>, WebhookError> {
    let malformed = |reason| WebhookError::MalformedHeader {
        header: HEADER,
        reason,
    };
    let mut t = None;
    let mut v1 = [[0u8; 32]; MAX_SIGNATURES];
    let mut n = 0;
    for (key, val) in value.split(',').filter_map(|item| item.split_once('=')) {
        match key {
            "t" if t.is_some() => return Err(malformed("more than one `t=`")),
            "t" => t = Some(val),
            "v1" if n < MAX_SIGNATURES => {
                if let Some(sig) = common::decode_hex32(val) {
                    v1[n] = sig;
                    n += 1;
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(malformed("no `t=` timestamp"))?;
    let seconds = common::parse_seconds(t)
        .ok_or(malformed("`t=` is not a decimal Unix timestamp in seconds"))?;
    Ok(Parsed { t, seconds, v1, n })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::Error;

    fn check(header: &str, body: &[u8]) -> Result<()> {
        let secret = HmacSecret::new("whsec_test_secret").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        verify(&[secret], &[("Stripe-Signature", header)], body, now)
    }

    fn webhook_err(r: Result<()>) -> WebhookError {
        match r {
            Err(Error::Webhook(e)) => e,
            other => panic!("expected a webhook error, got {other:?}"),
        }
    }

    const V1: &str = "v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;

    #[test]
    fn order_of_entries_does_not_matter() {
        assert!(check(&format!("{V1},t=1700000000"), BODY).is_ok());
        assert!(check(&format!("v0=abc,t=1700000000,junk,{V1}"), BODY).is_ok());
    }

    #[test]
    fn timestamp_problems_are_malformed() {
        for header in [
            V1.to_owned(),
            format!("t=1700000000,t=1700000000,{V1}"),
            format!("t=-1,{V1}"),
            format!("t=1700000000.0,{V1}"),
            format!("t= 1700000000,{V1}"),
        ] {
            assert!(
                matches!(
                    webhook_err(check(&header, BODY)),
                    WebhookError::MalformedHeader {
                        header: "stripe-signature",
                        ..
                    }
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn uppercase_hex_matches_and_the_future_is_allowed() {
        let upper = format!("t=1700000000,v1={}", V1[3..].to_uppercase());
        assert!(check(&upper, BODY).is_ok());
        let secret = HmacSecret::new("whsec_test_secret").unwrap();
        let signed = sign(&secret, 1_700_100_000, BODY).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(verify(&[secret], &signed, BODY, now).is_ok());
    }
}
