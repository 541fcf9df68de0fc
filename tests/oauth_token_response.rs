//! Token response parsing: what real providers send, what attackers send.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use consentry::connector::{ClientAuth, OAuth2Connector, Quirks, ScopeFormat};
use consentry::http::{HttpResponse, Response};
use consentry::oauth::{
    MAX_EXPIRES_IN, MAX_TOKEN_RESPONSE_BYTES, OAuthErrorCode, TokenType, parse_token_response,
};
use consentry::url::Url;
use consentry::{Error, ErrorKind};
use proptest::prelude::*;

fn connector(quirks: Quirks) -> OAuth2Connector {
    OAuth2Connector::builder("t".parse().unwrap())
        .authorization_url(Url::parse("https://as.example/auth").unwrap())
        .token_url(Url::parse("https://as.example/token").unwrap())
        .client_id("c")
        .client_auth(ClientAuth::None)
        .quirks(quirks)
        .build()
        .unwrap()
}

fn strict() -> OAuth2Connector {
    connector(Quirks::default())
}

fn quirky(f: impl FnOnce(&mut Quirks)) -> OAuth2Connector {
    let mut q = Quirks::default();
    f(&mut q);
    connector(q)
}

fn resp(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
    Response::builder()
        .status(status)
        .body(body.into())
        .unwrap()
}

fn ok(body: &str) -> HttpResponse {
    resp(200, body)
}

fn scopes(c: &OAuth2Connector, body: &str) -> Option<Vec<String>> {
    parse_token_response(c.config(), &ok(body))
        .unwrap()
        .scopes
        .map(|v| v.into_iter().map(|s| s.as_str().to_owned()).collect())
}

fn reason(e: Error) -> String {
    match e {
        Error::InvalidResponse {
            what: "token response",
            reason,
        } => reason,
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[test]
fn a_complete_rfc_response() {
    let t = parse_token_response(
        strict().config(),
        &ok(
            r#"{"access_token":"AT","token_type":"Bearer","expires_in":3599,
               "refresh_token":"RT","id_token":"a.b.c","scope":"openid email","extra":{"x":[1]}}"#,
        ),
    )
    .unwrap();
    assert_eq!(t.access_token.expose_secret(), "AT");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "RT");
    assert_eq!(t.id_token.unwrap().expose_secret(), "a.b.c");
    assert_eq!(t.expires_in, Some(Duration::from_secs(3599)));
    assert_eq!(t.token_type, TokenType::Bearer);
    assert_eq!(t.scopes.unwrap().len(), 2);
}

#[test]
fn missing_optional_fields_mean_none() {
    let t = parse_token_response(
        strict().config(),
        &ok(r#"{"access_token":"AT","token_type":"bearer"}"#),
    )
    .unwrap();
    assert!(
        t.refresh_token.is_none(),
        "no refresh_token means keep the old one"
    );
    assert!(t.id_token.is_none() && t.expires_in.is_none() && t.scopes.is_none());
    let t = parse_token_response(
        strict().config(),
        &ok(r#"{"access_token":"AT","token_type":"bearer","refresh_token":"","expires_in":null,"scope":null}"#),
    )
    .unwrap();
    assert!(t.refresh_token.is_none() && t.expires_in.is_none() && t.scopes.is_none());
}

#[test]
fn errors_with_http_200() {
    // Without an access token an `error` is unambiguous, whatever the quirks.
    let e = parse_token_response(
        strict().config(),
        &ok(r#"{"error":"invalid_grant","error_description":"Bad\r\ncode\u001b[2J"}"#),
    )
    .unwrap_err();
    assert!(e.is_invalid_grant());
    assert!(matches!(&e, Error::OAuth { description: Some(d), .. } if d == "Badcode[2J"));

    // With the quirk, `error` wins even next to a token.
    let both = r#"{"access_token":"AT","token_type":"bearer","error":"invalid_scope"}"#;
    assert!(parse_token_response(strict().config(), &ok(both)).is_ok());
    let github = quirky(|q| q.errors_with_200 = true);
    let e = parse_token_response(github.config(), &ok(both)).unwrap_err();
    assert!(matches!(
        e,
        Error::OAuth {
            error: OAuthErrorCode::InvalidScope,
            ..
        }
    ));

    // Slack: {"ok": false, "error": "..."} with provider codes mapped by alias.
    let slack = quirky(|q| {
        q.errors_with_200 = true;
        q.error_aliases
            .push(("invalid_code".into(), OAuthErrorCode::InvalidGrant));
    });
    let e = parse_token_response(
        slack.config(),
        &ok(r#"{"ok":false,"error":"invalid_code"}"#),
    )
    .unwrap_err();
    assert!(e.is_invalid_grant());
    let e = parse_token_response(
        slack.config(),
        &ok(r#"{"ok":false,"access_token":"x","token_type":"bot"}"#),
    )
    .unwrap_err();
    assert!(matches!(e, Error::OAuth { .. }), "{e:?}");
}

#[test]
fn errors_with_4xx_and_5xx() {
    let e = parse_token_response(
        strict().config(),
        &resp(400, r#"{"error":"invalid_grant"}"#),
    )
    .unwrap_err();
    assert!(e.is_invalid_grant());
    assert_eq!(e.kind(), ErrorKind::ReauthRequired);
    let e = parse_token_response(
        strict().config(),
        &resp(401, r#"{"error":"invalid_client"}"#),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Upstream);
    let e = parse_token_response(strict().config(), &resp(503, "<html>down</html>")).unwrap_err();
    assert!(matches!(
        e,
        Error::UpstreamStatus {
            what: "token endpoint",
            status: 503
        }
    ));
    assert!(e.kind().is_retryable());
    let e = parse_token_response(strict().config(), &resp(302, "")).unwrap_err();
    assert!(matches!(e, Error::UpstreamStatus { status: 302, .. }));
    // A 4xx body that has a token is still an error.
    let e = parse_token_response(
        strict().config(),
        &resp(400, r#"{"access_token":"x","token_type":"bearer"}"#),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UpstreamStatus { status: 400, .. }));
}

#[test]
fn scope_formats() {
    let space = strict();
    assert_eq!(
        scopes(
            &space,
            r#"{"access_token":"a","token_type":"bearer","scope":"a  b a"}"#
        )
        .unwrap(),
        ["a", "b"]
    );
    // RFC 6749 allows ',' inside a scope token: space format keeps it.
    assert_eq!(
        scopes(
            &space,
            r#"{"access_token":"a","token_type":"bearer","scope":"repo,gist"}"#
        )
        .unwrap(),
        ["repo,gist"]
    );
    let comma = quirky(|q| q.scope_format = ScopeFormat::CommaString);
    assert_eq!(
        scopes(
            &comma,
            r#"{"access_token":"a","token_type":"bearer","scope":"repo, gist,,user:email"}"#
        )
        .unwrap(),
        ["repo", "gist", "user:email"]
    );
    // Arrays are unambiguous and accepted whatever the format.
    for c in [
        &space,
        &comma,
        &quirky(|q| q.scope_format = ScopeFormat::Array),
    ] {
        assert_eq!(
            scopes(
                c,
                r#"{"access_token":"a","token_type":"bearer","scope":["x","y"]}"#
            )
            .unwrap(),
            ["x", "y"]
        );
    }
    assert_eq!(
        scopes(
            &space,
            r#"{"access_token":"a","token_type":"bearer","scope":""}"#
        )
        .unwrap(),
        Vec::<String>::new()
    );
    for bad in [r#"[1]"#, r#"{"a":1}"#, "5", r#"["a b"]"#, r#""a\"b""#] {
        let body = format!(r#"{{"access_token":"a","token_type":"bearer","scope":{bad}}}"#);
        assert!(
            reason(parse_token_response(space.config(), &ok(&body)).unwrap_err()).contains("scope"),
            "{bad}"
        );
    }
    let many: Vec<String> = (0..300).map(|i| format!("\"s{i}\"")).collect();
    let body = format!(
        r#"{{"access_token":"a","token_type":"bearer","scope":[{}]}}"#,
        many.join(",")
    );
    assert!(reason(parse_token_response(space.config(), &ok(&body)).unwrap_err()).contains("256"));
    let many: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
    let body = format!(
        r#"{{"access_token":"a","token_type":"bearer","scope":"{}"}}"#,
        many.join(" ")
    );
    assert!(reason(parse_token_response(space.config(), &ok(&body)).unwrap_err()).contains("256"));
}

#[test]
fn expires_in_variants() {
    let exp = |c: &OAuth2Connector, v: &str| {
        parse_token_response(
            c.config(),
            &ok(&format!(
                r#"{{"access_token":"a","token_type":"bearer","expires_in":{v}}}"#
            )),
        )
    };
    let strict = strict();
    let lenient = quirky(|q| q.expires_in_as_string = true);
    assert_eq!(exp(&strict, "0").unwrap().expires_in, Some(Duration::ZERO));
    assert_eq!(
        exp(&strict, "3599.9").unwrap().expires_in,
        Some(Duration::from_secs(3599))
    );
    assert!(reason(exp(&strict, "\"3600\"").unwrap_err()).contains("expires_in_as_string"));
    assert_eq!(
        exp(&lenient, "\"3600\"").unwrap().expires_in,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        exp(&lenient, "\" 60 \"").unwrap().expires_in,
        Some(Duration::from_secs(60))
    );
    for huge in [
        "18446744073709551615",
        "1e300",
        "\"99999999999999999999999999\"",
    ] {
        assert_eq!(
            exp(&lenient, huge).unwrap().expires_in,
            Some(MAX_EXPIRES_IN),
            "{huge}"
        );
    }
    for bad in [
        "-1", "-0.5", "\"-5\"", "\"1.5\"", "\"\"", "\"soon\"", "true", "[]",
    ] {
        assert!(
            reason(exp(&lenient, bad).unwrap_err()).contains("expires_in"),
            "{bad}"
        );
    }
}

#[test]
fn token_type_rules() {
    let body = r#"{"access_token":"a"}"#;
    assert!(
        reason(parse_token_response(strict().config(), &ok(body)).unwrap_err())
            .contains("token_type")
    );
    let optional = quirky(|q| q.token_type_optional = true);
    assert_eq!(
        parse_token_response(optional.config(), &ok(body))
            .unwrap()
            .token_type,
        TokenType::Bearer
    );
    let t = parse_token_response(
        optional.config(),
        &ok(r#"{"access_token":"a","token_type":"bot"}"#),
    )
    .unwrap();
    assert_eq!(t.token_type, TokenType::Other("bot".into()));
    for bad in [r#""""#, "5", "{}"] {
        let body = format!(r#"{{"access_token":"a","token_type":{bad}}}"#);
        assert!(
            parse_token_response(optional.config(), &ok(&body)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn malformed_bodies_are_typed_errors() {
    let c = strict();
    for (body, needle) in [
        (&b"not json"[..], "not valid JSON"),
        (b"{\"access_token\":", "truncated"),
        (b"[]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"", "truncated"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"{\"access_token\":\"\xff\"}", "not valid JSON"),
        (br#"{"token_type":"bearer"}"#, "no `access_token`"),
        (
            br#"{"access_token":"","token_type":"bearer"}"#,
            "no `access_token`",
        ),
        (
            br#"{"access_token":42,"token_type":"bearer"}"#,
            "not a string",
        ),
        (
            br#"{"access_token":"a\nb","token_type":"bearer"}"#,
            "printable ASCII",
        ),
        (
            br#"{"access_token":"a","refresh_token":7,"token_type":"bearer"}"#,
            "refresh_token",
        ),
        (
            br#"{"access_token":"a","id_token":"\u00e9","token_type":"bearer"}"#,
            "id_token",
        ),
    ] {
        let e = parse_token_response(c.config(), &ok_bytes(body)).unwrap_err();
        let r = reason(e);
        assert!(
            r.contains(needle),
            "{:?}: {r}",
            String::from_utf8_lossy(body)
        );
    }
    let long = format!(
        r#"{{"access_token":"{}","token_type":"bearer"}}"#,
        "a".repeat(40_000)
    );
    assert!(reason(parse_token_response(c.config(), &ok(&long)).unwrap_err()).contains("longer"));
    // A UTF-8 BOM is tolerated.
    assert!(
        parse_token_response(
            c.config(),
            &ok_bytes(b"\xEF\xBB\xBF{\"access_token\":\"a\",\"token_type\":\"bearer\"}")
        )
        .is_ok()
    );
}

fn ok_bytes(b: &[u8]) -> HttpResponse {
    resp(200, b.to_vec())
}

#[test]
fn errors_never_echo_the_body() {
    let secret = "AT-SECRET-VALUE";
    for body in [
        format!(r#"{{"access_token":"{secret}","token_type":7}}"#),
        format!(r#"{{"access_token":"{secret}","token_type":"bearer","expires_in":"x{secret}"}}"#),
        format!(r#"{{"access_token":"{secret}" "#),
        format!(r#"{{"access_token":"{secret}","token_type":"bearer","scope":["{secret} x"]}}"#),
    ] {
        let e = parse_token_response(strict().config(), &ok(&body)).unwrap_err();
        assert!(
            !e.to_string().contains("SECRET") && !format!("{e:?}").contains("SECRET"),
            "{e:?}"
        );
    }
}

#[test]
fn a_five_megabyte_body_is_refused_before_parsing() {
    let mut body = br#"{"access_token":"a","token_type":"bearer","pad":""#.to_vec();
    body.resize(5 * 1024 * 1024, b'x');
    body.extend_from_slice(br#""}"#);
    let r = reason(parse_token_response(strict().config(), &resp(200, body)).unwrap_err());
    assert!(r.contains(&MAX_TOKEN_RESPONSE_BYTES.to_string()), "{r}");
    // Error statuses too.
    let e = parse_token_response(
        strict().config(),
        &resp(400, vec![b' '; MAX_TOKEN_RESPONSE_BYTES + 1]),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidResponse { .. }));
}

#[test]
fn form_encoded_bodies_when_declared() {
    let r = Response::builder()
        .status(200)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(b"access_token=gho_1&scope=repo%2Cgist&token_type=bearer&expires_in=28800".to_vec())
        .unwrap();
    let t = parse_token_response(
        quirky(|q| q.scope_format = ScopeFormat::CommaString).config(),
        &r,
    )
    .unwrap();
    assert_eq!(t.access_token.expose_secret(), "gho_1");
    assert_eq!(t.expires_in, Some(Duration::from_secs(28800)));
    assert_eq!(t.scopes.unwrap().len(), 2);
    let dup = Response::builder()
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"access_token=a&access_token=b&token_type=bearer".to_vec())
        .unwrap();
    assert!(parse_token_response(strict().config(), &dup).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512), form in any::<bool>()) {
        let mut b = Response::builder().status(status);
        if form {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        let r = b.body(body).unwrap();
        for c in [strict(), quirky(|q| { q.errors_with_200 = true; q.scope_format = ScopeFormat::CommaString; q.expires_in_as_string = true; q.token_type_optional = true; })] {
            let _ = parse_token_response(c.config(), &r);
        }
    }

    #[test]
    fn never_panics_on_json_shaped_input(
        at in proptest::option::of("[ -~]{0,40}"),
        exp in prop_oneof![Just("null".to_owned()), any::<i64>().prop_map(|n| n.to_string()), any::<f64>().prop_map(|f| format!("{f:?}")), "\"[0-9 -]{0,30}\""],
        scope in prop_oneof![Just("null".to_owned()), "\"[a-z ,:]{0,40}\"", proptest::collection::vec("[a-z\\\\\"]{0,5}", 0..5).prop_map(|v| format!("[\"{}\"]", v.join("\",\"")))],
        err in proptest::option::of("[a-z_]{0,20}"),
    ) {
        let mut fields = vec![format!(r#""expires_in":{exp}"#), format!(r#""scope":{scope}"#)];
        if let Some(at) = at { fields.push(format!(r#""access_token":{}"#, serde_json::to_string(&at).unwrap())); }
        if let Some(e) = err { fields.push(format!(r#""error":"{e}""#)); }
        let body = format!("{{{}}}", fields.join(","));
        for c in [strict(), quirky(|q| { q.errors_with_200 = true; q.scope_format = ScopeFormat::Array; q.expires_in_as_string = true; q.token_type_optional = true; })] {
            let _ = parse_token_response(c.config(), &ok(&body));
        }
    }
}
