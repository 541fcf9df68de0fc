//! Token response parsing. The first byte picks the HTTP status, whether
//! the body is declared form-encoded, and which quirks are on; the rest is
//! the body. Revocation classification reads the same response.
#![no_main]

use std::sync::LazyLock;

use consentry::connector::{ClientAuth, OAuth2Connector, Quirks, ScopeFormat};
use consentry::http::Response;
use consentry::oauth::{OAuthErrorCode, classify_revocation, parse_token_response};
use consentry::url::Url;
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 8] = [200, 201, 204, 302, 400, 401, 429, 503];

static CONNECTORS: LazyLock<Vec<OAuth2Connector>> = LazyLock::new(|| {
    (0..4u8)
        .map(|bits| {
            let mut q = Quirks::default();
            q.errors_with_200 = bits & 1 != 0;
            q.expires_in_as_string = bits & 2 != 0;
            q.token_type_optional = bits & 2 != 0;
            q.scope_format = match bits {
                0 => ScopeFormat::SpaceString,
                1 | 2 => ScopeFormat::CommaString,
                _ => ScopeFormat::Array,
            };
            q.error_aliases
                .push(("bad_verification_code".into(), OAuthErrorCode::InvalidGrant));
            OAuth2Connector::builder("fuzz".parse().unwrap())
                .authorization_url(Url::parse("https://as.example/authorize").unwrap())
                .token_url(Url::parse("https://as.example/token").unwrap())
                .revocation_url(Url::parse("https://as.example/revoke").unwrap())
                .client_id("client")
                .client_auth(ClientAuth::None)
                .quirks(q)
                .build()
                .unwrap()
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut builder = Response::builder().status(STATUSES[usize::from(selector & 7)]);
    if selector & 8 != 0 {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    if selector & 16 != 0 {
        builder = builder.header("retry-after", "30");
    }
    let Ok(response) = builder.body(body.to_vec()) else {
        return;
    };
    let connector = &CONNECTORS[usize::from(selector >> 5) & 3];
    let _ = parse_token_response(connector.config(), &response);
    let _ = classify_revocation(connector.config(), &response);
});
