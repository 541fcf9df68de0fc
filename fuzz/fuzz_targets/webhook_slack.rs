//! `X-Slack-Signature` / `X-Slack-Request-Timestamp` parsing: arbitrary
//! headers and bodies never panic, and a signed body verifies.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use consentry::webhook::{HmacSecret, slack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(3, |&b| b == b'\n');
    let ts = fields.next().unwrap_or_default();
    let sig = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    let secret = HmacSecret::new("8f742231b10e8888abcd99yyyzzz85a5").expect("valid");
    let now = UNIX_EPOCH + Duration::from_secs(1_531_420_618);
    let headers = [
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", sig),
    ];
    let _ = slack::verify(&[&secret], &headers, body, now);

    let signed = slack::sign(&secret, 1_531_420_618, body).expect("signs");
    slack::verify(&[&secret], &signed, body, now).expect("round trip");
});
