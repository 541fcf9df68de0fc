//! Property tests: sign → verify round-trips for every scheme, and any
//! single-byte change to the payload, id, timestamp or signature fails.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use consentry::webhook::{
    HmacSecret, SignedHeaders, WebhookSecret, github, shopify, slack, standard, stripe,
};
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The headers of `signed` as owned pairs, with header `name`'s value
/// replaced by `f(value)`.
fn with_header(
    signed: &SignedHeaders,
    name: &str,
    f: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    signed
        .iter()
        .map(|(n, v)| {
            let v = if n == name { f(v) } else { v.to_owned() };
            (n.to_owned(), v)
        })
        .collect()
}

/// `s` with the byte at `index % len` replaced by a different printable
/// ASCII character chosen by `pick`.
fn change_one_byte(s: &str, index: usize, pick: u8) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = index % bytes.len();
    let mut c = b' ' + pick % 95;
    if c == bytes[i] {
        c = if c == b'~' { b' ' } else { c + 1 };
    }
    bytes[i] = c;
    String::from_utf8(bytes).unwrap()
}

fn flip(payload: &[u8], index: usize, xor: u8) -> Vec<u8> {
    let mut p = payload.to_vec();
    let i = index % p.len();
    p[i] ^= xor;
    p
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=64)
}

fn msg_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_:~-]{1,64}"
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

fn text_secret() -> impl Strategy<Value = String> {
    "[ -~]{1,80}"
}

const TS: std::ops::Range<u64> = 1_000_000_000..4_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn standard_round_trips_and_detects_every_change(
        key in secret_bytes(),
        id in msg_id(),
        ts in TS,
        body in payload(),
        index in any::<usize>(),
        pick in any::<u8>(),
        xor in 1u8..,
        padded in any::<bool>(),
    ) {
        let mut encoded = base64::engine::general_purpose::STANDARD.encode(&key);
        if !padded {
            encoded = encoded.trim_end_matches('=').to_owned();
        }
        let secret = WebhookSecret::parse(&format!("whsec_{encoded}")).unwrap();
        let signed = standard::sign(&secret, &id, ts, &body).unwrap();
        let now = at(ts);
        prop_assert!(standard::verify(&[&secret], &signed, &body, now).is_ok());

        // Rotation: an unrelated secret first still passes, alone fails.
        let other = WebhookSecret::generate().unwrap();
        prop_assert!(standard::verify(&[other.clone(), secret.clone()], &signed, &body, now).is_ok());
        prop_assert!(standard::verify(&[other], &signed, &body, now).is_err());

        if !body.is_empty() {
            let changed = flip(&body, index, xor);
            prop_assert!(standard::verify(&[&secret], &signed, &changed, now).is_err());
        }
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let headers = with_header(&signed, name, |v| change_one_byte(v, index, pick));
            prop_assert!(
                standard::verify(&[&secret], &headers, &body, now).is_err(),
                "a change to {} passed: {:?}", name, headers
            );
        }
    }

    #[test]
    fn stripe_round_trips_and_detects_every_change(
        key in text_secret(),
        ts in TS,
        body in payload(),
        index in any::<usize>(),
        pick in any::<u8>(),
        xor in 1u8..,
    ) {
        let secret = HmacSecret::new(key).unwrap();
        let signed = stripe::sign(&secret, ts, &body).unwrap();
        prop_assert!(stripe::verify(&[&secret], &signed, &body, at(ts)).is_ok());
        if !body.is_empty() {
            prop_assert!(stripe::verify(&[&secret], &signed, &flip(&body, index, xor), at(ts)).is_err());
        }
        // Any change to the header fails, except changing the case of a hex
        // digit of the signature (hex is case-insensitive: same bytes).
        let original = signed.get("stripe-signature").unwrap();
        let headers = with_header(&signed, "stripe-signature", |v| change_one_byte(v, index, pick));
        let sig_start = original.find(",v1=").unwrap() + 4;
        let changed = &headers[0].1;
        let case_only = changed[..sig_start] == original[..sig_start]
            && changed.eq_ignore_ascii_case(original);
        prop_assert_eq!(stripe::verify(&[secret], &headers, &body, at(ts)).is_ok(), case_only);
    }

    #[test]
    fn github_round_trips_and_detects_every_change(
        key in text_secret(),
        body in payload(),
        index in any::<usize>(),
        pick in any::<u8>(),
        xor in 1u8..,
    ) {
        let secret = HmacSecret::new(key).unwrap();
        let signed = github::sign(&secret, &body).unwrap();
        prop_assert!(github::verify(&[&secret], &signed, &body).is_ok());
        if !body.is_empty() {
            prop_assert!(github::verify(&[&secret], &signed, &flip(&body, index, xor)).is_err());
        }
        let headers = with_header(&signed, "x-hub-signature-256", |v| change_one_byte(v, index, pick));
        let changed_case_only = headers[0].1.eq_ignore_ascii_case(signed.get("x-hub-signature-256").unwrap())
            && headers[0].1.starts_with("sha256=");
        // Hex is case-insensitive: changing a digit's case is the same signature.
        prop_assert_eq!(github::verify(&[secret], &headers, &body).is_ok(), changed_case_only);
    }

    #[test]
    fn slack_round_trips_and_detects_every_change(
        key in text_secret(),
        ts in TS,
        body in payload(),
        index in any::<usize>(),
        pick in any::<u8>(),
        xor in 1u8..,
    ) {
        let secret = HmacSecret::new(key).unwrap();
        let signed = slack::sign(&secret, ts, &body).unwrap();
        prop_assert!(slack::verify(&[&secret], &signed, &body, at(ts)).is_ok());
        if !body.is_empty() {
            prop_assert!(slack::verify(&[&secret], &signed, &flip(&body, index, xor), at(ts)).is_err());
        }
        let headers = with_header(&signed, "x-slack-request-timestamp", |v| change_one_byte(v, index, pick));
        prop_assert!(slack::verify(&[&secret], &headers, &body, at(ts)).is_err());
        let headers = with_header(&signed, "x-slack-signature", |v| change_one_byte(v, index, pick));
        let original = signed.get("x-slack-signature").unwrap();
        let case_only = headers[1].1.eq_ignore_ascii_case(original) && headers[1].1.starts_with("v0=");
        prop_assert_eq!(slack::verify(&[secret], &headers, &body, at(ts)).is_ok(), case_only);
    }

    #[test]
    fn shopify_round_trips_and_detects_every_change(
        key in text_secret(),
        body in payload(),
        index in any::<usize>(),
        pick in any::<u8>(),
        xor in 1u8..,
    ) {
        let secret = HmacSecret::new(key).unwrap();
        let signed = shopify::sign(&secret, &body).unwrap();
        prop_assert!(shopify::verify(&[&secret], &signed, &body).is_ok());
        if !body.is_empty() {
            prop_assert!(shopify::verify(&[&secret], &signed, &flip(&body, index, xor)).is_err());
        }
        let headers = with_header(&signed, "x-shopify-hmac-sha256", |v| change_one_byte(v, index, pick));
        prop_assert!(shopify::verify(&[secret], &headers, &body).is_err());
    }

    /// Verifiers never panic on arbitrary header values.
    #[test]
    fn arbitrary_headers_never_panic(
        a in prop::collection::vec(any::<u8>(), 0..200),
        b in prop::collection::vec(any::<u8>(), 0..200),
        c in "[ -~]{0,300}",
        body in payload(),
    ) {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let hmac = HmacSecret::new("k").unwrap();
        let sw = [("webhook-id", a.as_slice()), ("webhook-timestamp", b.as_slice()), ("webhook-signature", c.as_bytes())];
        prop_assert!(standard::verify(&[secret], &sw, &body, at(0)).is_err());
        let pairs = [
            ("stripe-signature", c.as_bytes()),
            ("x-hub-signature-256", c.as_bytes()),
            ("x-slack-request-timestamp", a.as_slice()),
            ("x-slack-signature", c.as_bytes()),
            ("x-shopify-hmac-sha256", c.as_bytes()),
        ];
        prop_assert!(stripe::verify(&[&hmac], &pairs, &body, at(0)).is_err());
        prop_assert!(github::verify(&[&hmac], &pairs, &body).is_err());
        prop_assert!(slack::verify(&[&hmac], &pairs, &body, at(0)).is_err());
        prop_assert!(shopify::verify(&[hmac], &pairs, &body).is_err());
    }
}

#[cfg(feature = "ed25519")]
mod ed25519 {
    use consentry::webhook::WebhookSigningKey;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn v1a_round_trips_and_detects_every_change(
            id in msg_id(),
            ts in TS,
            body in payload(),
            index in any::<usize>(),
            pick in any::<u8>(),
            xor in 1u8..,
        ) {
            let key = WebhookSigningKey::generate().unwrap();
            let public = key.public_key();
            let signed = standard::sign(&key, &id, ts, &body).unwrap();
            prop_assert!(standard::verify(&[public], &signed, &body, at(ts)).is_ok());
            if !body.is_empty() {
                prop_assert!(standard::verify(&[public], &signed, &flip(&body, index, xor), at(ts)).is_err());
            }
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                let headers = with_header(&signed, name, |v| change_one_byte(v, index, pick));
                prop_assert!(standard::verify(&[public], &headers, &body, at(ts)).is_err(), "{}", name);
            }
        }
    }
}
