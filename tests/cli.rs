//! The `consentry` binary, run as a child process on a temporary SQLite
//! file: keys, webhooks, error handling, and the whole connection
//! lifecycle against `oidc-provider` (needs `npm ci --prefix tests/oidc`).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use consentry::secrecy::ExposeSecret as _;
use consentry::vault::Keyring;
use support::oidc::{ClientAuth, OidcProvider, ProviderOptions, TestClient};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use url::Url;

const BIN: &str = env!("CARGO_BIN_EXE_consentry");
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A command with no CONSENTRY_* variable (nor a browser) inherited.
fn command(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args);
    for var in [
        "CONSENTRY_DB",
        "CONSENTRY_KEYS",
        "CONSENTRY_USER",
        "CONSENTRY_CLIENT_ID",
        "CONSENTRY_CLIENT_SECRET",
        "CONSENTRY_WEBHOOK_SECRET",
        "CONSENTRY_REFRESH_MARGIN",
        "BROWSER",
        "DISPLAY",
    ] {
        c.env_remove(var);
    }
    c.kill_on_drop(true);
    c
}

async fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut c = command(args);
    c.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut input, stdin)
        .await
        .unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(o));
    stdout(o)
}

/// Exit `code` and exactly one `error: …` line on stderr.
#[track_caller]
fn fails(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err
}

#[tokio::test]
async fn keys_generate_rotate_and_usage() {
    let out = ok(&run(&["keys", "generate"], b"", &[]).await);
    let ring = Keyring::parse(out.trim()).unwrap();
    assert_eq!(ring.primary().as_str(), "k1");
    let rotated = ok(&run(&["keys", "rotate"], b"", &[("CONSENTRY_KEYS", out.trim())]).await);
    let rotated = Keyring::parse(rotated.trim()).unwrap();
    assert_eq!(
        rotated.ids().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["k2", "k1"]
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let db = db.to_str().unwrap();
    let env = [("CONSENTRY_DB", db), ("CONSENTRY_KEYS", out.trim())];
    let usage = ok(&run(&["keys", "usage", "--json"], b"", &env).await);
    let usage: serde_json::Value = serde_json::from_str(&usage).unwrap();
    assert_eq!(usage["keys"][0]["id"], "k1");
    assert_eq!(usage["keys"][0]["primary"], true);
    ok(&run(&["keys", "rewrap"], b"", &env).await);
    // The primary key cannot be retired.
    fails(&run(&["keys", "retire", "k1"], b"", &env).await, 1);
}

#[tokio::test]
async fn webhook_sign_verify_round_trip() {
    let payload = br#"{"type":"user.created","id":42}"#;
    let signed = ok(&run(
        &["webhook", "sign", "--secret", SECRET, "--id", "msg_1"],
        payload,
        &[],
    )
    .await);
    let lines: Vec<&str> = signed.lines().collect();
    assert_eq!(lines.len(), 3, "{signed}");
    assert!(lines[0].starts_with("webhook-id: msg_1"));
    let mut args = vec!["webhook", "verify", "--secret", SECRET];
    for l in &lines {
        args.extend(["--header", l]);
    }
    assert_eq!(ok(&run(&args, payload, &[]).await).trim(), "valid");
    // A tampered payload, and a wrong secret.
    let err = fails(
        &run(&args, br#"{"type":"user.created","id":43}"#, &[]).await,
        1,
    );
    assert!(err.contains("signature"), "{err}");
    let mut wrong = args.clone();
    wrong[3] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    fails(&run(&wrong, payload, &[]).await, 1);

    // Known answer (the Standard Webhooks test vector).
    let fixed = ok(&run(
        &[
            "webhook",
            "sign",
            "--secret",
            SECRET,
            "--id",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "--timestamp",
            "1649367553",
        ],
        br#"{"email":"test@example.com","username":"test_user"}"#,
        &[],
    )
    .await);
    assert!(
        fixed.contains("webhook-signature: v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
        "{fixed}"
    );
}

#[tokio::test]
async fn bad_arguments_and_missing_keyring_exit_2() {
    fails(&run(&["keys", "frobnicate"], b"", &[]).await, 2);
    fails(&run(&["--bogus", "list"], b"", &[]).await, 2);
    fails(&run(&["token", "c1"], b"", &[]).await, 2); // --purpose missing
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let db = db.to_str().unwrap();
    let err = fails(&run(&["list", "--db", db], b"", &[]).await, 2);
    assert!(err.contains("CONSENTRY_KEYS"), "{err}");
    fails(&run(&["keys", "rotate"], b"", &[]).await, 2);
    // A malformed keyring is refused without echoing it.
    let err = fails(
        &run(
            &["list"],
            b"",
            &[
                ("CONSENTRY_DB", db),
                ("CONSENTRY_KEYS", "k1:not-a-real-key"),
            ],
        )
        .await,
        2,
    );
    assert!(!err.contains("not-a-real-key"), "{err}");
    fails(
        &run(
            &[
                "webhook",
                "sign",
                "--secret",
                "whsec_not*base64!",
                "--id",
                "m",
            ],
            b"",
            &[],
        )
        .await,
        2,
    );
}

fn native_client() -> TestClient {
    TestClient {
        id: "cli-native".to_owned(),
        secret: Some("cli-native-secret".to_owned()),
        auth: ClientAuth::Basic,
    }
}

/// The authorization URL `consentry connect` prints (within 30 s).
async fn printed_url(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Url {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("no URL printed")
            .unwrap()
            .expect("stdout closed before the URL");
        if line.starts_with("http") {
            return Url::parse(&line).unwrap();
        }
    }
}

/// `consentry connect`, with the test as the browser; returns the
/// connection as `consentry list --json` shows it.
async fn connect(provider: &OidcProvider, env: &[(&str, &str)]) -> serde_json::Value {
    let issuer = provider.issuer_str();
    let mut c = command(&[
        "connect",
        "oidc",
        "--issuer",
        &issuer,
        "--client-id",
        "cli-native",
        "--scope",
        "email",
        "--scope",
        "offline_access",
        "--param",
        "prompt=consent",
        "--user",
        "alice",
        "--timeout",
        "60",
    ]);
    c.envs(env.iter().copied())
        .env("CONSENTRY_CLIENT_SECRET", "cli-native-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    let redirect = support::oidc::query_param(&url, "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.ends_with("/callback"), "{redirect}");
    let callback = provider.authorize(&url, "alice").await;
    let page = reqwest::get(callback.as_str()).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("connected"));
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "connect failed");
    assert!(rest.starts_with("connected: "), "{rest}");
    // The same connection, as JSON, from another process.
    let list = ok(&run(&["list", "--user", "alice", "--json"], b"", env).await);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0].clone()
}

async fn token(conn: &str, env: &[(&str, &str)]) -> String {
    let out = run(
        &["token", conn, "--purpose", "reminders", "--user", "alice"],
        b"",
        env,
    )
    .await;
    ok(&out).trim().to_owned()
}

#[tokio::test]
async fn connect_token_parallel_refresh_disconnect_against_oidc_provider() {
    let ttl = Duration::from_secs(6);
    let provider = OidcProvider::start(
        ProviderOptions::default()
            .access_token_ttl(ttl)
            .token_delay(Duration::from_millis(200))
            .clients(serde_json::json!([{
                "client_id": "cli-native",
                "client_secret": "cli-native-secret",
                "application_type": "native",
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": ["http://127.0.0.1/callback"],
            }])),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let keys = Keyring::generate().unwrap().export();
    let keys = keys.expose_secret().to_owned();
    let db_str = db.to_str().unwrap();
    let env = [
        ("CONSENTRY_DB", db_str),
        ("CONSENTRY_KEYS", keys.as_str()),
        ("CONSENTRY_REFRESH_MARGIN", "0"),
    ];

    let conn = connect(&provider, &env).await;
    // The token response arrived before `connect` returned: it expires
    // (by consentry's clock) within `ttl` from now.
    let connected_at = Instant::now();
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["account"]["id"], "alice");
    assert_eq!(conn["has_refresh_token"], true);
    let id = conn["id"].as_str().unwrap().to_owned();
    // The CLI config holds no secret; the client secret is in the vault.
    let config = std::fs::read_to_string(format!("{db_str}.cli.json")).unwrap();
    assert!(config.contains("cli-native") && !config.contains("cli-native-secret"));
    assert!(!contains(&db, b"cli-native-secret"));

    // No consent yet: refused, one line, no token.
    let refused = run(
        &["token", &id, "--purpose", "reminders", "--user", "alice"],
        b"",
        &env,
    )
    .await;
    let err = fails(&refused, 1);
    assert!(err.contains("consent"), "{err}");
    let granted = ok(&run(
        &["consent", "grant", &id, "reminders", "--user", "alice"],
        b"",
        &env,
    )
    .await);
    assert!(granted.contains("granted"));

    let first = token(&id, &env).await;
    provider.userinfo(&first).await.expect_ok("userinfo");
    assert_eq!(provider.stats().await.refresh_attempts(), 0);

    // After expiry: four processes at once, one refresh at the provider.
    let wait = (ttl + Duration::from_millis(1500)).saturating_sub(connected_at.elapsed());
    tokio::time::sleep(wait).await;
    let parallel = four_tokens(&id, &env).await;
    let stats = provider.stats().await;
    assert_eq!(stats.refresh_successes(), 1, "{stats:?}");
    assert_eq!(stats.refresh_failures(), 0, "{stats:?}");
    assert!(parallel.iter().all(|t| t == &parallel[0]), "{parallel:?}");
    assert_ne!(parallel[0], first);
    provider.userinfo(&parallel[0]).await.expect_ok("userinfo");

    // Export shows the connection and no token.
    let export = ok(&run(&["export", "alice", "--format", "ndjson"], b"", &env).await);
    assert!(export.contains(&id) && !export.contains(&parallel[0]));

    // Key rotation on real data: rotate, rewrap, retire k1; the token and
    // the sealed client secret still open under the new keyring.
    let rotated = ok(&run(&["keys", "rotate"], b"", &env).await);
    let rotated = rotated.trim().to_owned();
    let env = [
        ("CONSENTRY_DB", db_str),
        ("CONSENTRY_KEYS", rotated.as_str()),
        ("CONSENTRY_REFRESH_MARGIN", "0"),
    ];
    let usage: serde_json::Value =
        serde_json::from_str(&ok(&run(&["keys", "usage", "--json"], b"", &env).await)).unwrap();
    assert_eq!(usage["keys"][0]["id"], "k1", "{usage}");
    // alice, the CLI's client secret and the audit log each have a data key.
    let n = usage["keys"][0]["data_keys"].as_u64().unwrap();
    assert!(n >= 2, "{usage}");
    let rewrapped = ok(&run(&["keys", "rewrap"], b"", &env).await);
    assert!(
        rewrapped.starts_with(&format!("rewrapped {n},")),
        "{rewrapped}"
    );
    let retired = ok(&run(&["keys", "retire", "k1"], b"", &env).await);
    let retired = retired.trim().to_owned();
    assert_eq!(
        Keyring::parse(&retired)
            .unwrap()
            .ids()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
        ["k2"]
    );
    let env = [
        ("CONSENTRY_DB", db_str),
        ("CONSENTRY_KEYS", retired.as_str()),
        ("CONSENTRY_REFRESH_MARGIN", "0"),
    ];
    assert_eq!(token(&id, &env).await, parallel[0]);

    // Revoking the purpose: the token is refused again.
    ok(&run(
        &["consent", "revoke", &id, "reminders", "--user", "alice"],
        b"",
        &env,
    )
    .await);
    let refused = run(
        &["token", &id, "--purpose", "reminders", "--user", "alice"],
        b"",
        &env,
    )
    .await;
    fails(&refused, 1);

    let report = ok(&run(&["disconnect", &id, "--user", "alice", "--json"], b"", &env).await);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["refresh_token"]["result"], "revoked", "{report}");
    assert_eq!(report["connection_deleted"], true);
    assert!(!provider.is_active(&native_client(), &parallel[0]).await);
    let list = ok(&run(&["list", "--user", "alice", "--json"], b"", &env).await);
    assert_eq!(list.trim(), "[]");
}

async fn four_tokens(id: &str, env: &[(&str, &str)]) -> Vec<String> {
    let (a, b, c, d) = tokio::join!(
        token(id, env),
        token(id, env),
        token(id, env),
        token(id, env)
    );
    vec![a, b, c, d]
}

/// Whether any file of the database (WAL included) contains `needle`.
fn contains(db: &Path, needle: &[u8]) -> bool {
    let dir = db.parent().unwrap();
    std::fs::read_dir(dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// Runs `args` under `script`, so the binary's stdout and stderr are a
/// terminal; returns everything it drew.
async fn on_a_terminal(shell_command: &str, env: &[(&str, &str)]) -> String {
    let mut c = tokio::process::Command::new("script");
    c.args(["-qec", shell_command, "/dev/null"])
        .envs(env.iter().copied())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = c.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn rewrap_and_export_show_progress_on_a_terminal_and_none_when_piped() {
    use consentry::secrecy::SecretString;
    use consentry::store::SqliteStore;
    use consentry::vault::{CredentialKind, Vault};
    use consentry::{ConnectionId, UserId};
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed to give the binary a terminal");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let db_str = db.to_str().unwrap();
    let keys = Keyring::generate().unwrap();
    // 600 users, one data key each, under k1.
    let store = SqliteStore::open(&db).await.unwrap();
    let vault = Vault::new(store.clone(), keys.clone());
    for i in 0..600 {
        let user = UserId::new(format!("user{i}")).unwrap();
        vault
            .put(
                &user,
                &ConnectionId::new("c").unwrap(),
                CredentialKind::ApiKey,
                SecretString::from("k".to_owned()),
            )
            .await
            .unwrap();
    }
    drop(vault);
    store.close().await.unwrap();
    let exported = keys.export();
    let rotated = ok(&run(
        &["keys", "rotate"],
        b"",
        &[("CONSENTRY_KEYS", exported.expose_secret())],
    )
    .await);
    let rotated = rotated.trim().to_owned();
    let env = [
        ("CONSENTRY_DB", db_str),
        ("CONSENTRY_KEYS", rotated.as_str()),
    ];

    // Piped: the result only, no bar.
    let piped = run(&["export", "user1"], b"", &env).await;
    assert!(piped.status.success());
    assert!(stderr(&piped).is_empty(), "{:?}", stderr(&piped));

    // On a terminal: a bar with the total, then the result.
    let drawn = on_a_terminal(&format!("{BIN} keys rewrap"), &env).await;
    assert!(drawn.contains("re-wrapping data keys"), "{drawn:?}");
    assert!(drawn.contains("/600"), "the total is shown: {drawn:?}");
    assert!(
        drawn.contains("rewrapped 600, skipped 0, failed 0"),
        "{drawn:?}"
    );
    let out = dir.path().join("export.json");
    let drawn = on_a_terminal(&format!("{BIN} export user1 > {}", out.display()), &env).await;
    assert!(drawn.contains("exporting user1"), "{drawn:?}");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(
        file.contains("user1") && !file.contains("exporting"),
        "{file}"
    );

    // Piped again: nothing left to rewrap, and no bar.
    let again = run(&["keys", "rewrap"], b"", &env).await;
    assert_eq!(ok(&again).trim(), "rewrapped 0, skipped 0, failed 0");
    assert!(stderr(&again).is_empty(), "{:?}", stderr(&again));
}

/// `consentry connect` against `TestProvider` through a TOML catalogue (the
/// test provider accepts a loopback redirect on any port, RFC 8252 §7.3),
/// then `consent grant` and `sync` of the catalogue's declared stream.
#[cfg(feature = "testing")]
#[tokio::test]
async fn connect_and_sync_a_catalogue_stream_against_test_provider() {
    use consentry::testing::{TestClient as ProviderClient, TestProvider};
    let client = ProviderClient::basic().with_redirect_uri("http://127.0.0.1/callback");
    let provider = TestProvider::builder()
        .client(client.clone())
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalogue = dir.path().join("catalogue.toml");
    std::fs::write(
        &catalogue,
        provider.catalogue_toml("books", &client, "matching"),
    )
    .unwrap();
    let db = dir.path().join("c.db");
    let keys = Keyring::generate().unwrap().export();
    let env = [
        ("CONSENTRY_DB", db.to_str().unwrap()),
        ("CONSENTRY_KEYS", keys.expose_secret()),
    ];
    let secret = client.client_secret().unwrap();
    let mut c = command(&[
        "connect",
        "books",
        "--catalogue",
        catalogue.to_str().unwrap(),
        "--client-id",
        client.id(),
        "--user",
        "alice",
        "--timeout",
        "60",
    ]);
    c.envs(env.iter().copied())
        .env("CONSENTRY_CLIENT_SECRET", secret.expose_secret())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    let callback = provider.authorize(&url, "ada").unwrap();
    assert!(
        callback.query_pairs().any(|(k, _)| k == "code"),
        "{callback}"
    );
    let page = reqwest::get(callback.as_str()).await.unwrap();
    assert_eq!(page.status(), 200);
    while lines.next_line().await.unwrap().is_some() {}
    assert!(child.wait().await.unwrap().success(), "connect failed");
    let list: serde_json::Value =
        serde_json::from_str(&ok(
            &run(&["list", "--user", "alice", "--json"], b"", &env).await
        ))
        .unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();

    let sync = [
        "sync",
        &id,
        "items",
        "--purpose",
        "matching",
        "--user",
        "alice",
    ];
    // Without consent: refused, one line, exit 1.
    let refused = run(&sync, b"", &env).await;
    assert!(
        fails(&refused, 1).contains("consent"),
        "{}",
        stderr(&refused)
    );
    ok(&run(
        &["consent", "grant", &id, "matching", "--user", "alice"],
        b"",
        &env,
    )
    .await);
    let synced = ok(&run(&[&sync[..], &["--json"]].concat(), b"", &env).await);
    let report: serde_json::Value = serde_json::from_str(&synced).unwrap();
    assert_eq!(report["upserted"], 12, "{report}");
    assert_eq!(report["pages"], 3, "12 items in pages of 5: {report}");
    // Piped: no spinner on stderr; the records are in the export.
    let again = run(&sync, b"", &env).await;
    assert!(ok(&again).contains("pages"), "{}", stdout(&again));
    assert!(stderr(&again).is_empty(), "{:?}", stderr(&again));
    let export = ok(&run(&["export", "alice"], b"", &env).await);
    assert!(export.contains("Item number 12"), "{export}");
}
