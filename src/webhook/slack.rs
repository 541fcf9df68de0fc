//! Slack request signatures (Events API, slash commands, interactivity).
//!
//! ```text
//! X-Slack-Request-Timestamp: <unix seconds>
//! X-Slack-Signature:         v0=<hex HMAC-SHA256(signing secret as text, "v0:" ts ":" raw body)>
//! ```
//!
//! The separator is `:`, not `.`, and the base string starts with `v0:`.
//! Requests outside ±5 minutes are refused. Slack sends no delivery id
//! header; the Events API has an `event_id` in the (signed) body, and slash
//! commands have none, so the timestamp window is the replay protection.
//! Slash commands arrive form-encoded: verify the raw bytes before
//! decoding the form.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use consentry::webhook::{HmacSecret, slack};
//!
//! let secret = HmacSecret::new("8f742231b10e8888abcd99yyyzzz85a5")?;
//! let signed = slack::sign(&secret, 1531420618, b"token=xyz&text=hi")?;
//! slack::verify(&[secret], &signed, b"token=xyz&text=hi", UNIX_EPOCH + Duration::from_secs(1531420618))?;
//! # Ok::<(), consentry::Error>(())
//! ```

use std::borrow::Borrow;
use std::time::SystemTime;

use super::common;
use super::headers::{self, Headers, SignedHeaders};
use super::{HmacSecret, VerifyOptions, WebhookError};
use crate::error::Result;

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";

/// Signs `payload` at `timestamp` (Unix seconds) as Slack does; for tests
/// of a Slack receiver.
///
/// # Errors
/// None today; the `Result` keeps the shape of the other schemes.
///
/// ```
/// use consentry::webhook::{HmacSecret, slack};
/// let signed = slack::sign(&HmacSecret::new("8f742231b10e8888abcd99yyyzzz85a5")?, 1531420618, b"")?;
/// assert_eq!(signed.get("x-slack-request-timestamp"), Some("1531420618"));
/// assert!(signed.get("x-slack-signature").unwrap().starts_with("v0="));
/// # Ok::<(), consentry::Error>(())
/// ```
pub fn sign(secret: &HmacSecret, timestamp: u64, payload: &[u8]) -> Result<SignedHeaders> {
    let ts = timestamp.to_string();
    let mac = secret.keyed().mac(&[b"v0:", ts.as_bytes(), b":", payload]);
    Ok(SignedHeaders::new(vec![
        (TIMESTAMP, ts),
        (SIGNATURE, format!("v0={}", common::hex(&mac))),
    ]))
}

/// Verifies a Slack request with the default [`VerifyOptions`]. See
/// [`verify_with`].
///
/// # Errors
/// As [`verify_with`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::{Error, webhook::{HmacSecret, WebhookError, slack}};
///
/// let secret = HmacSecret::new("8f742231b10e8888abcd99yyyzzz85a5")?;
/// let signed = slack::sign(&secret, 1531420618, b"a=1")?;
/// let early = UNIX_EPOCH + Duration::from_secs(1531420618 - 301);
/// let err = slack::verify(&[secret], &signed, b"a=1", early).unwrap_err();
/// assert!(matches!(err, Error::Webhook(WebhookError::TimestampTooNew { .. })));
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

/// Verifies the raw body `payload` against `X-Slack-Signature` and
/// `X-Slack-Request-Timestamp` with any of `secrets`, at time `now`.
///
/// # Errors
/// [`Error::Webhook`](crate::Error::Webhook) with
/// [`WebhookError::PayloadTooLarge`], [`WebhookError::MissingHeader`],
/// [`WebhookError::MalformedHeader`] (timestamp not decimal seconds,
/// signature not `v0=` and 64 hex digits),
/// [`WebhookError::TimestampTooOld`] / [`WebhookError::TimestampTooNew`],
/// or [`WebhookError::NoMatchingSignature`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{HmacSecret, VerifyOptions, slack};
///
/// let secret = HmacSecret::new("8f742231b10e8888abcd99yyyzzz85a5")?;
/// let signed = slack::sign(&secret, 1531420618, b"a=1")?;
/// let now = UNIX_EPOCH + Duration::from_secs(1531420618 + 120);
/// let strict = VerifyOptions::new().with_tolerance(Duration::from_secs(60));
/// assert!(slack::verify_with(&strict, &[secret], &signed, b"a=1", now).is_err());
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
    let ts = headers::required(headers, TIMESTAMP)?;
    let signature = headers::required(headers, SIGNATURE)?;
    let seconds = common::parse_seconds(ts).ok_or(WebhookError::MalformedHeader {
        header: TIMESTAMP,
        reason: "not a decimal Unix timestamp in seconds",
    })?;
    common::check_window(seconds, now, options, true)?;
    let sig = signature
        .strip_prefix("v0=")
        .and_then(common::decode_hex32)
        .ok_or(WebhookError::MalformedHeader {
            header: SIGNATURE,
            reason: "expected `v0=` and 64 hex digits",
        })?;
    if common::any_hmac_matches(secrets, &[b"v0:", ts.as_bytes(), b":", payload], &[sig]) {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature.into())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::Error;

    #[test]
    fn missing_and_malformed_headers() {
        let secret = HmacSecret::new("s").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let signed = sign(&secret, 100, b"x").unwrap();
        let sig = signed.get(SIGNATURE).unwrap();
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[(SIGNATURE, sig)], TIMESTAMP),
            (&[(TIMESTAMP, "100")], SIGNATURE),
            (&[(TIMESTAMP, "1e2"), (SIGNATURE, sig)], TIMESTAMP),
            (&[(TIMESTAMP, "100"), (SIGNATURE, &sig[3..])], SIGNATURE),
        ];
        for (headers, which) in cases {
            match verify(&[&secret], headers, b"x", now).unwrap_err() {
                Error::Webhook(WebhookError::MissingHeader { header })
                | Error::Webhook(WebhookError::MalformedHeader { header, .. }) => {
                    assert_eq!(header, which);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(verify(&[secret], &signed, b"x", now).is_ok());
    }
}
