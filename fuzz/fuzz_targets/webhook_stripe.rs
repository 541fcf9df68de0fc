//! `Stripe-Signature` parsing: arbitrary headers and bodies never panic,
//! and a signed body verifies.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use consentry::webhook::{HmacSecret, stripe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secret = HmacSecret::new("whsec_test_secret").expect("valid");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = stripe::verify(&[&secret], &[("stripe-signature", header)], body, now);

    let signed = stripe::sign(&secret, 1_700_000_000, body).expect("signs");
    stripe::verify(&[&secret], &signed, body, now).expect("round trip");
});
