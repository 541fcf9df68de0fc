//! Callback URL parsing: arbitrary URLs, and arbitrary queries on the
//! redirect URI, against a connector with and without RFC 9207 `iss`.
#![no_main]

use std::sync::LazyLock;

use consentry::connector::{ClientAuth, OAuth2Connector};
use consentry::oauth::{callback_state, parse_callback};
use consentry::url::Url;
use libfuzzer_sys::fuzz_target;

static REDIRECT: LazyLock<Url> =
    LazyLock::new(|| Url::parse("https://app.example/oauth/callback?provider=x").unwrap());

static CONNECTORS: LazyLock<Vec<OAuth2Connector>> = LazyLock::new(|| {
    [false, true]
        .into_iter()
        .map(|sends_iss| {
            OAuth2Connector::builder("fuzz".parse().unwrap())
                .authorization_url(Url::parse("https://as.example/authorize").unwrap())
                .token_url(Url::parse("https://as.example/token").unwrap())
                .issuer("https://as.example")
                .issuer_in_callback(sends_iss)
                .client_id("client")
                .client_auth(ClientAuth::None)
                .build()
                .unwrap()
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let whole = Url::parse(text);
    let query = Url::parse(&format!("https://app.example/oauth/callback?{text}"));
    for url in [whole, query].into_iter().flatten() {
        for c in CONNECTORS.iter() {
            let _ = parse_callback(c.config(), &url, &REDIRECT);
        }
        let _ = callback_state(&url);
    }
});
