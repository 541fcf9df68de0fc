//! `X-Hub-Signature-256` parsing: arbitrary headers and bodies never panic,
//! and a signed body verifies.
#![no_main]

use consentry::webhook::{HmacSecret, github};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secret = HmacSecret::new("It's a Secret to Everybody").expect("valid");
    let headers = [
        ("x-hub-signature-256", header),
        ("x-github-delivery", header),
    ];
    let _ = github::verify(&[&secret], &headers, body);
    let _ = github::delivery_id(&headers);

    let signed = github::sign(&secret, body).expect("signs");
    github::verify(&[&secret], &signed, body).expect("round trip");
});
