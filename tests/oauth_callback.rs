//! Authorization callback parsing: redirect URI, parameters, errors, RFC 9207.
#![allow(clippy::unwrap_used)]

use consentry::connector::{ClientAuth, OAuth2Connector};
use consentry::oauth::{
    CallbackError, MAX_CALLBACK_URL_LEN, MAX_DESCRIPTION_CHARS, OAuthErrorCode, callback_state,
    parse_callback,
};
use consentry::url::Url;
use consentry::{Error, ErrorKind};
use proptest::prelude::*;

const ISSUER: &str = "https://as.example.com";

fn connector(issuer: Option<&str>, sends_iss: bool) -> OAuth2Connector {
    let mut b = OAuth2Connector::builder("t".parse().unwrap())
        .authorization_url(Url::parse("https://as.example.com/auth").unwrap())
        .token_url(Url::parse("https://as.example.com/token").unwrap())
        .client_id("c")
        .client_auth(ClientAuth::None)
        .issuer_in_callback(sends_iss);
    if let Some(i) = issuer {
        b = b.issuer(i);
    }
    b.build().unwrap()
}

fn redirect() -> Url {
    Url::parse("https://app.example.com/oauth/callback").unwrap()
}

fn parse(c: &OAuth2Connector, url: &str) -> Result<(String, String, Option<String>), Error> {
    let cb = parse_callback(c.config(), &Url::parse(url).unwrap(), &redirect())?;
    Ok((
        cb.code.expose_secret().to_owned(),
        cb.state.expose_secret().to_owned(),
        cb.iss,
    ))
}

fn callback_err(c: &OAuth2Connector, url: &str) -> CallbackError {
    match parse(c, url) {
        Err(Error::Callback(e)) => e,
        other => panic!("{url}: expected a callback error, got {other:?}"),
    }
}

const BASE: &str = "https://app.example.com/oauth/callback";

#[test]
fn accepts_a_plain_success_and_ignores_extra_parameters() {
    let c = connector(None, false);
    let (code, state, iss) = parse(
        &c,
        &format!("{BASE}?code=4%2F0Ab&state=xyz&scope=email+openid&authuser=0&prompt=consent"),
    )
    .unwrap();
    assert_eq!((code.as_str(), state.as_str(), iss), ("4/0Ab", "xyz", None));
    // Equivalent spellings of the same origin (case, default port) match.
    assert!(
        parse(
            &c,
            "https://APP.example.com:443/oauth/callback?code=c&state=s"
        )
        .is_ok()
    );
    // A fragment is ignored.
    assert!(parse(&c, &format!("{BASE}?code=c&state=s#_=_")).is_ok());
}

#[test]
fn redirect_uri_must_match_exactly() {
    let c = connector(None, false);
    for url in [
        "https://app.example.com/oauth/callback/?code=c&state=s",
        "https://app.example.com/oauth/Callback?code=c&state=s",
        "https://app.example.com/oauth?code=c&state=s",
        "https://evil.example.com/oauth/callback?code=c&state=s",
        "https://app.example.com.evil.example/oauth/callback?code=c&state=s",
        "https://app.example.com:8443/oauth/callback?code=c&state=s",
        "http://app.example.com/oauth/callback?code=c&state=s",
        "https://user@app.example.com/oauth/callback?code=c&state=s",
    ] {
        assert_eq!(
            callback_err(&c, url),
            CallbackError::RedirectMismatch,
            "{url}"
        );
    }
}

#[test]
fn redirect_uri_query_parameters_must_be_kept() {
    let c = connector(None, false);
    let with_q = Url::parse("https://app.example.com/cb?provider=acme").unwrap();
    let ok = Url::parse("https://app.example.com/cb?provider=acme&code=c&state=s").unwrap();
    assert!(parse_callback(c.config(), &ok, &with_q).is_ok());
    for bad in [
        "https://app.example.com/cb?code=c&state=s",
        "https://app.example.com/cb?provider=other&code=c&state=s",
        "https://app.example.com/cb?provider=acme&provider=acme&code=c&state=s",
    ] {
        let e = parse_callback(c.config(), &Url::parse(bad).unwrap(), &with_q).unwrap_err();
        assert!(
            matches!(e, Error::Callback(CallbackError::RedirectMismatch)),
            "{bad}"
        );
    }
}

#[test]
fn required_parameters() {
    let c = connector(None, false);
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=c")),
        CallbackError::MissingState
    );
    assert_eq!(callback_err(&c, BASE), CallbackError::MissingState);
    assert_eq!(
        callback_err(&c, &format!("{BASE}?state=s")),
        CallbackError::MissingCode
    );
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=&state=s")),
        CallbackError::Malformed("code")
    );
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=c&state=")),
        CallbackError::Malformed("state")
    );
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=c&state=a%00b")),
        CallbackError::Malformed("state")
    );
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=a%0Ab&state=s")),
        CallbackError::Malformed("code")
    );
    let long_state = "s".repeat(1025);
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code=c&state={long_state}")),
        CallbackError::Malformed("state")
    );
    let huge = "c".repeat(MAX_CALLBACK_URL_LEN);
    assert_eq!(
        callback_err(&c, &format!("{BASE}?code={huge}&state=s")),
        CallbackError::TooLong
    );
}

#[test]
fn duplicated_oauth_parameters_are_refused() {
    let c = connector(Some(ISSUER), false);
    for (query, name) in [
        ("code=a&code=b&state=s", "code"),
        ("code=a&state=s&state=t", "state"),
        ("code=a&state=s&state=s", "state"),
        ("code=a&state=s&iss=x&iss=y", "iss"),
        ("error=access_denied&error=server_error&state=s", "error"),
        (
            "error=x&error_description=a&error_description=b&state=s",
            "error_description",
        ),
    ] {
        assert_eq!(
            callback_err(&c, &format!("{BASE}?{query}")),
            CallbackError::DuplicateParameter(name),
            "{query}"
        );
    }
    // Repeated unrelated parameters are not our business.
    assert!(parse(&c, &format!("{BASE}?code=a&state=s&x=1&x=2")).is_ok());
}

#[test]
fn provider_errors_are_typed() {
    let c = connector(None, false);
    for (code, want, kind) in [
        (
            "access_denied",
            OAuthErrorCode::AccessDenied,
            ErrorKind::AccessDenied,
        ),
        (
            "invalid_scope",
            OAuthErrorCode::InvalidScope,
            ErrorKind::Upstream,
        ),
        (
            "server_error",
            OAuthErrorCode::ServerError,
            ErrorKind::Unavailable,
        ),
        (
            "temporarily_unavailable",
            OAuthErrorCode::TemporarilyUnavailable,
            ErrorKind::Unavailable,
        ),
        (
            "login_required",
            OAuthErrorCode::LoginRequired,
            ErrorKind::ReauthRequired,
        ),
        (
            "made_up",
            OAuthErrorCode::Other("made_up".into()),
            ErrorKind::Upstream,
        ),
    ] {
        let e = parse(&c, &format!("{BASE}?error={code}&state=s")).unwrap_err();
        assert_eq!(e.kind(), kind, "{code}");
        assert!(
            matches!(&e, Error::OAuth { error, description: None } if *error == want),
            "{code}: {e:?}"
        );
    }
    // Descriptions are untrusted: control characters removed, bounded.
    let desc = format!("The+user%0D%0Adenied%1B[31m{}", "x".repeat(1000));
    let e = parse(
        &c,
        &format!("{BASE}?error=access_denied&error_description={desc}&state=s"),
    )
    .unwrap_err();
    let Error::OAuth {
        description: Some(d),
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(d.starts_with("The userdenied[31m"));
    assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS + 1);
    let p = e.to_problem();
    assert_eq!(p.status, 403);
    assert!(!p.detail.contains('\r') && !p.detail.contains('\u{1b}'));
    // An error response still needs its state.
    assert_eq!(
        callback_err(&c, &format!("{BASE}?error=access_denied")),
        CallbackError::MissingState
    );
}

#[test]
fn iss_is_checked_per_rfc_9207() {
    let iss = "iss=https%3A%2F%2Fas.example.com";
    let sends = connector(Some(ISSUER), true);
    let (_, _, got) = parse(&sends, &format!("{BASE}?code=c&state=s&{iss}")).unwrap();
    assert_eq!(got.as_deref(), Some(ISSUER));
    assert_eq!(
        callback_err(&sends, &format!("{BASE}?code=c&state=s")),
        CallbackError::MissingIssuer
    );
    for wrong in [
        "https%3A%2F%2Fevil.example.com",
        "https%3A%2F%2Fas.example.com%2F",
        "https%3A%2F%2FAS.example.com",
        "http%3A%2F%2Fas.example.com",
    ] {
        assert_eq!(
            callback_err(&sends, &format!("{BASE}?code=c&state=s&iss={wrong}")),
            CallbackError::IssuerMismatch,
            "{wrong}"
        );
    }
    // iss is checked on error responses too (a mix-up can forge errors).
    assert_eq!(
        callback_err(&sends, &format!("{BASE}?error=access_denied&state=s")),
        CallbackError::MissingIssuer
    );
    // A provider not known to send iss: absent is fine, present must match.
    let known = connector(Some(ISSUER), false);
    assert!(parse(&known, &format!("{BASE}?code=c&state=s")).is_ok());
    assert!(parse(&known, &format!("{BASE}?code=c&state=s&{iss}")).is_ok());
    assert_eq!(
        callback_err(
            &known,
            &format!("{BASE}?code=c&state=s&iss=https%3A%2F%2Fevil.example")
        ),
        CallbackError::IssuerMismatch
    );
    // No issuer configured: nothing to compare with.
    let unknown = connector(None, false);
    assert!(
        parse(
            &unknown,
            &format!("{BASE}?code=c&state=s&iss=https%3A%2F%2Fanything")
        )
        .is_ok()
    );
    assert_eq!(
        callback_err(&unknown, &format!("{BASE}?code=c&state=s&iss=a%0Ab")),
        CallbackError::Malformed("iss")
    );
}

#[test]
fn callback_state_extracts_a_single_state() {
    let u = |s: &str| Url::parse(&format!("{BASE}?{s}")).unwrap();
    assert_eq!(
        callback_state(&u("error=access_denied&state=abc"))
            .unwrap()
            .expose_secret(),
        "abc"
    );
    assert!(callback_state(&u("code=c")).is_none());
    assert!(callback_state(&u("state=&code=c")).is_none());
    assert!(callback_state(&u("state=a&state=a")).is_none());
}

#[test]
fn errors_do_not_carry_attacker_text() {
    let c = connector(Some(ISSUER), true);
    let e = parse(
        &c,
        &format!("{BASE}?code=c&state=s&iss=https%3A%2F%2FEVILTEXT"),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("EVILTEXT") && !format!("{e:?}").contains("EVILTEXT"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn never_panics_on_arbitrary_urls(s in "\\PC{0,200}") {
        if let Ok(url) = Url::parse(&s) {
            for c in [connector(None, false), connector(Some(ISSUER), true)] {
                let _ = parse_callback(c.config(), &url, &redirect());
            }
            let _ = callback_state(&url);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_queries(q in "[a-z_=&%0-9A-F+;#\\PC]{0,300}") {
        let Ok(url) = Url::parse(&format!("{BASE}?{q}")) else { return Ok(()) };
        for c in [connector(None, false), connector(Some(ISSUER), true)] {
            let _ = parse_callback(c.config(), &url, &redirect());
        }
    }

    #[test]
    fn valid_callbacks_round_trip(code in "[ -~]{1,64}", state in "[ -~]{1,64}") {
        let c = connector(None, false);
        let mut url = redirect();
        url.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
        let cb = parse_callback(c.config(), &url, &redirect()).unwrap();
        prop_assert_eq!(cb.code.expose_secret(), code.as_str());
        prop_assert_eq!(cb.state.expose_secret(), state.as_str());
    }
}
