//! Standard Webhooks header parsing: arbitrary `webhook-*` / `svix-*`
//! headers and body never panic, never verify by accident, and whatever can
//! be signed verifies.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use consentry::webhook::{WebhookPublicKey, WebhookSecret, WebhookSigningKey, standard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == b'\n');
    let id = fields.next().unwrap_or_default();
    let ts = fields.next().unwrap_or_default();
    let sig = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    let now = UNIX_EPOCH + Duration::from_secs(1_614_265_330);

    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
    let public = WebhookPublicKey::parse("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=")
        .expect("valid");
    for names in [
        ["webhook-id", "webhook-timestamp", "webhook-signature"],
        ["svix-id", "svix-timestamp", "svix-signature"],
    ] {
        let headers = [(names[0], id), (names[1], ts), (names[2], sig)];
        let _ = standard::verify(&[&secret], &headers, body, now);
        let _ = standard::verify(&[public], &headers, body, now);
        let _ = standard::delivery_id(&headers);
    }

    // Secrets and keys from untrusted text must not panic either.
    if let Ok(text) = std::str::from_utf8(sig) {
        let _ = WebhookSecret::parse(text);
        let _ = WebhookPublicKey::parse(text);
        let _ = WebhookSigningKey::parse(text);
        let _ = standard::parse_timestamp(text);
    }

    // Anything that can be signed verifies, with both schemes.
    if let Ok(id) = std::str::from_utf8(id) {
        if let Ok(signed) = standard::sign(&secret, id, 1_614_265_330, body) {
            standard::verify(&[&secret], &signed, body, now).expect("round trip");
        }
    }
});
