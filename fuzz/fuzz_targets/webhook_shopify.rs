//! `X-Shopify-Hmac-SHA256` parsing: arbitrary headers and bodies never
//! panic, and a signed body verifies.
#![no_main]

use consentry::webhook::{HmacSecret, shopify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secret = HmacSecret::new("hush").expect("valid");
    let headers = [
        ("x-shopify-hmac-sha256", header),
        ("x-shopify-webhook-id", header),
    ];
    let _ = shopify::verify(&[&secret], &headers, body);
    let _ = shopify::delivery_id(&headers);

    let signed = shopify::sign(&secret, body).expect("signs");
    shopify::verify(&[&secret], &signed, body).expect("round trip");
});
