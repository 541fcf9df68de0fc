//! The Connected Services example (`demo/examples/connected_services`):
//! its sessions and CSRF protection over real HTTP, and the whole page in
//! headless Chromium (`tests/browser/connected_services.mjs`, Playwright
//! driving Debian's `/usr/bin/chromium`).
//!
//! The browser test needs `/usr/bin/chromium` (or `$CHROMIUM`) and
//! `npm ci --prefix tests/browser`. Without them it is skipped with a
//! message, unless `CONSENTRY_BROWSER_TESTS=require` (set by `.ci/run`),
//! which makes their absence a failure.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "../demo/examples/connected_services/site/mod.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod site;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, ORIGIN, SET_COOKIE};

async fn start() -> site::Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    site::start(listener, site::Config::demo()).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 43].to_owned()
}

/// The page at `url`, as text.
async fn page_text(http: &reqwest::Client, url: &url::Url) -> String {
    http.get(url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A form POST to `path` under `base`.
async fn post_form(
    http: &reqwest::Client,
    base: &url::Url,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(base.join(path).unwrap())
        .form(form)
        .send()
        .await
        .unwrap()
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cs_session="))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_csrf_and_headers_hold_over_http() {
    let app = start().await;
    let base = app.url().clone();
    let origin = base.origin().ascii_serialization();
    let http = client();

    // The first visit makes a session: an HttpOnly, SameSite cookie.
    let first = http.get(base.clone()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = session_cookie(first.headers()).expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP loopback: no Secure flag"
    );
    let h = first.headers().clone();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let page = first.text().await.unwrap();
    assert!(page.contains("<h1>Sign in</h1>"));
    let csrf = csrf_of(&page);

    let sign_in = |form: Vec<(&'static str, String)>, origin: Option<String>| {
        let mut r = http.post(base.join("sign-in").unwrap()).form(&form);
        if let Some(o) = origin {
            r = r.header(ORIGIN, o);
        }
        r.send()
    };
    // No token, a wrong token, a foreign origin: refused.
    let r = sign_in(vec![("name", "ada".into())], Some(origin.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let wrong = "A".repeat(43);
    let r = sign_in(
        vec![("csrf", wrong), ("name", "ada".into())],
        Some(origin.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = sign_in(
        vec![("csrf", csrf.clone()), ("name", "ada".into())],
        Some("https://attacker.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A name that is not a valid user id: a 400 with the reason.
    let r = sign_in(
        vec![("csrf", csrf.clone()), ("name", "bad\u{7}name".into())],
        Some(origin.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("That name cannot be used"));

    // The right token signs in, with a new session id (no fixation).
    let r = sign_in(
        vec![("csrf", csrf.clone()), ("name", "<i>eve&co".into())],
        Some(origin.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let rotated = session_cookie(r.headers()).expect("a new session cookie");
    assert_ne!(rotated.split(';').next(), cookie.split(';').next());
    let old_id = cookie.split(';').next().unwrap().to_owned();
    let stale = reqwest::Client::new()
        .get(base.clone())
        .header("cookie", &old_id)
        .send()
        .await
        .unwrap();
    assert!(
        stale.text().await.unwrap().contains("<h1>Sign in</h1>"),
        "the pre-sign-in session id must not be signed in"
    );

    // The page escapes what users type.
    let page = page_text(&http, &base).await;
    assert!(
        page.contains("Signed in as <strong>&lt;i&gt;eve&amp;co</strong>"),
        "{page}"
    );
    assert!(!page.contains("<i>eve"));
    let csrf = csrf_of(&page);
    assert!(page.contains("No services connected yet."));

    // A connect form sends the browser to the provider with PKCE.
    let r = http
        .post(base.join("connect").unwrap())
        .header(ORIGIN, &origin)
        .form(&[("csrf", csrf.as_str()), ("connector", "test-provider")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let provider = app.provider().unwrap();
    assert!(to.starts_with(provider.issuer().as_str()), "{to}");
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    // An unknown connector is a message on the page, not an error page.
    let r = post_form(
        &http,
        &base,
        "connect",
        &[("csrf", &csrf), ("connector", "nope")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, &base).await;
    assert!(
        page.contains(r#"class="flash error" role="alert""#),
        "{page}"
    );
    assert!(page.contains("Could not start connecting"), "{page}");
    // A callback with a forged state connects nothing.
    let r = http
        .get(base.join("callback?code=x&state=forged").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, &base).await;
    assert!(page.contains("The connection was not made"), "{page}");
    assert!(page.contains("No services connected yet."));

    // Oversized forms and unknown pages.
    let big = "x".repeat(64 * 1024);
    let r = post_form(&http, &base, "sign-out", &[("csrf", &big)]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = http
        .get(base.join("nowhere").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Signing out ends the session.
    let r = post_form(&http, &base, "sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, &base).await;
    assert!(page.contains("<h1>Sign in</h1>"));
    app.stop().await.unwrap();
}

fn browser_parts() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!(
            "{} not found (apt-get install chromium)",
            chromium.display()
        ));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("tests/browser/node_modules missing (npm ci --prefix tests/browser)".into());
    }
    Ok((chromium, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_headless_chromium() {
    let (chromium, dir) = match browser_parts() {
        Ok(parts) => parts,
        Err(why) if std::env::var("CONSENTRY_BROWSER_TESTS").as_deref() == Ok("require") => {
            panic!("CONSENTRY_BROWSER_TESTS=require, but {why}")
        }
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let app = start().await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    let _ = std::fs::remove_dir_all(&shots);
    let run = tokio::process::Command::new("node")
        .arg(dir.join("connected_services.mjs"))
        .arg(app.url().as_str())
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser run finishes within 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{stdout}");
    let steps = report["steps"].as_array().unwrap();
    for want in [
        "the account is shown",
        "the data held is shown (12 items)",
        "the read is listed under Recent accesses",
        "the refresh token was revoked at the provider",
        "a POST without the CSRF token is refused",
    ] {
        assert!(
            steps.iter().any(|s| s == want),
            "step `{want}` missing: {stdout}"
        );
    }
    for shot in [
        "01-signed-in",
        "02-connected",
        "03-consented",
        "04-records",
        "05-disconnected",
    ] {
        let png = std::fs::read(shots.join(format!("{shot}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{shot}.png"
        );
    }
    // The provider saw the disconnect's revocation.
    assert!(app.provider().unwrap().stats().revocations >= 1);
    app.stop().await.unwrap();
}
