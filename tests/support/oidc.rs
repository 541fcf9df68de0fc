//! A real OpenID provider for integration tests, and a scripted user agent.
//!
//! [`OidcProvider::start`] runs `node tests/oidc/provider.mjs` (panva's
//! `oidc-provider`, pinned in `tests/oidc/package.json`) on `127.0.0.1`, and
//! kills it when dropped. [`OidcProvider::authorize`] plays the browser: it
//! follows the provider's redirects, fills in the development login and
//! consent forms, and returns the final redirect to the client's
//! `redirect_uri` without requesting it, so the test can hand that callback
//! URL to the library.
//!
//! Needs `node` (>= 20.19) and `npm ci --prefix tests/oidc`. See
//! `tests/oidc/README.md` for the provider's configuration and behaviour.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// How long to wait for `LISTENING <port>` unless the options say otherwise.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of every HTTP request the harness itself makes.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on requests in one scripted browser run (a normal run takes 6).
const MAX_USER_AGENT_STEPS: usize = 16;
/// Lines of provider output kept for error messages.
const LOG_LINES: usize = 400;

/// Client ids and secrets of the default clients (see `provider.mjs`).
pub(crate) const CLIENT_BASIC_ID: &str = "client-basic";
pub(crate) const CLIENT_BASIC_SECRET: &str = "client-basic-secret";
pub(crate) const CLIENT_POST_ID: &str = "client-post";
pub(crate) const CLIENT_POST_SECRET: &str = "client-post-secret";
pub(crate) const CLIENT_PUBLIC_ID: &str = "client-public";
/// The default (and fake: nothing listens there) redirect URI.
pub(crate) const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/cb";

// ------------------------------------------------------------------ options

/// How to configure the provider. `ProviderOptions::default()` gives the
/// three default clients with redirect URI `http://127.0.0.1/cb`, a 5 s access
/// token, a 24 h refresh token, rotation on, and an ephemeral port.
#[derive(Debug, Clone)]
pub(crate) struct ProviderOptions {
    /// Redirect URIs registered for the default clients (env `REDIRECT_URIS`).
    pub(crate) redirect_uris: Vec<String>,
    /// Access-token lifetime, whole seconds >= 1 (env `ACCESS_TOKEN_TTL`).
    pub(crate) access_token_ttl: Duration,
    /// Refresh-token lifetime, whole seconds >= 1 (env `REFRESH_TOKEN_TTL`).
    pub(crate) refresh_token_ttl: Duration,
    /// Refresh-token rotation (env `ROTATE_REFRESH_TOKEN`).
    pub(crate) rotate_refresh_tokens: bool,
    /// Delay added to every token-endpoint response after the grant was
    /// processed (env `TOKEN_DELAY_MS`); widens race windows.
    pub(crate) token_delay: Duration,
    /// Issuer path such as `/tenant-a` (env `ISSUER_PATH`); `None`: the issuer
    /// is the origin.
    pub(crate) issuer_path: Option<String>,
    /// Port to listen on; 0 picks a free one (env `PORT`).
    pub(crate) port: u16,
    /// Client metadata (a JSON array) replacing the default clients (env
    /// `OIDC_CLIENTS`). Missing `grant_types`, `response_types` and
    /// `redirect_uris` are filled in as for the default clients.
    pub(crate) clients: Option<Value>,
    /// How long to wait for the provider to listen.
    pub(crate) startup_timeout: Duration,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            redirect_uris: vec![DEFAULT_REDIRECT_URI.to_owned()],
            access_token_ttl: Duration::from_secs(5),
            refresh_token_ttl: Duration::from_secs(24 * 60 * 60),
            rotate_refresh_tokens: true,
            token_delay: Duration::ZERO,
            issuer_path: None,
            port: 0,
            clients: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl ProviderOptions {
    /// Replaces the redirect URIs of the default clients.
    pub(crate) fn redirect_uris<I, S>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the access-token lifetime (whole seconds, at least 1).
    pub(crate) fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Sets the refresh-token lifetime (whole seconds, at least 1).
    pub(crate) fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Turns refresh-token rotation on or off.
    pub(crate) fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.rotate_refresh_tokens = rotate;
        self
    }

    /// Delays every token-endpoint response by `delay` (millisecond precision).
    pub(crate) fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Serves the provider under a path: issuer `http://127.0.0.1:<port><path>`.
    pub(crate) fn issuer_path(mut self, path: impl Into<String>) -> Self {
        self.issuer_path = Some(path.into());
        self
    }

    /// Listens on a fixed port instead of an ephemeral one.
    pub(crate) fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Replaces the default clients by this JSON array of client metadata.
    pub(crate) fn clients(mut self, clients: Value) -> Self {
        self.clients = Some(clients);
        self
    }

    fn env(&self, port: u16) -> Vec<(&'static str, String)> {
        let ttl = |name: &str, d: Duration| {
            assert!(
                d.subsec_nanos() == 0 && d.as_secs() >= 1,
                "{name} must be whole seconds >= 1, got {d:?}"
            );
            d.as_secs().to_string()
        };
        let mut env = vec![
            ("PORT", port.to_string()),
            ("REDIRECT_URIS", self.redirect_uris.join(" ")),
            (
                "ACCESS_TOKEN_TTL",
                ttl("access_token_ttl", self.access_token_ttl),
            ),
            (
                "REFRESH_TOKEN_TTL",
                ttl("refresh_token_ttl", self.refresh_token_ttl),
            ),
            (
                "ROTATE_REFRESH_TOKEN",
                if self.rotate_refresh_tokens { "1" } else { "0" }.to_owned(),
            ),
            ("TOKEN_DELAY_MS", self.token_delay.as_millis().to_string()),
            ("ISSUER_PATH", self.issuer_path.clone().unwrap_or_default()),
            ("EXIT_ON_STDIN_CLOSE", "1".to_owned()),
        ];
        if let Some(clients) = &self.clients {
            env.push(("OIDC_CLIENTS", clients.to_string()));
        }
        env
    }
}

// ------------------------------------------------------------------ clients

/// How a test client authenticates at the token, revocation and
/// introspection endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post,
    /// `none`: a public client; `client_id` in the body, PKCE required.
    None,
}

/// A client registered at the provider.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TestClient {
    /// `client_id`.
    pub(crate) id: String,
    /// `client_secret`, `None` for a public client.
    pub(crate) secret: Option<String>,
    /// Its `token_endpoint_auth_method`.
    pub(crate) auth: ClientAuth,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth)
            .finish()
    }
}

impl TestClient {
    /// The default confidential client using `client_secret_basic`.
    pub(crate) fn basic() -> Self {
        Self {
            id: CLIENT_BASIC_ID.to_owned(),
            secret: Some(CLIENT_BASIC_SECRET.to_owned()),
            auth: ClientAuth::Basic,
        }
    }

    /// The default confidential client using `client_secret_post`.
    pub(crate) fn post() -> Self {
        Self {
            id: CLIENT_POST_ID.to_owned(),
            secret: Some(CLIENT_POST_SECRET.to_owned()),
            auth: ClientAuth::Post,
        }
    }

    /// The default public client (`none`, PKCE S256 required).
    pub(crate) fn public() -> Self {
        Self {
            id: CLIENT_PUBLIC_ID.to_owned(),
            secret: None,
            auth: ClientAuth::None,
        }
    }

    /// Adds this client's authentication to a request whose form is `form`.
    fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        match self.auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: form-urlencode id and secret before Basic.
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let secret: String = enc(self.secret.as_deref().unwrap_or_default());
                request.basic_auth(enc(&self.id), Some(secret))
            }
            ClientAuth::Post => {
                form.push(("client_id".to_owned(), self.id.clone()));
                form.push((
                    "client_secret".to_owned(),
                    self.secret.clone().unwrap_or_default(),
                ));
                request
            }
            ClientAuth::None => {
                form.push(("client_id".to_owned(), self.id.clone()));
                request
            }
        }
    }
}

// -------------------------------------------------------------------- stats

/// What the provider counted (`GET /__test/stats`), from its own events.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Stats {
    /// Token-endpoint outcomes by `grant_type`.
    pub(crate) grants: BTreeMap<String, GrantCounts>,
    /// Grants the provider destroyed, in order.
    pub(crate) revoked_grants: Vec<RevokedGrant>,
    /// Refresh requests refused because the token had already been rotated
    /// (each of them revoked its grant).
    pub(crate) refresh_token_reuse: u64,
    /// Token-endpoint outcomes by `client_id`, then `grant_type`.
    pub(crate) by_client: BTreeMap<String, BTreeMap<String, Counts>>,
    /// HTTP responses by route name (`token`, `userinfo`, `revocation`,
    /// `introspection`, `authorization`, `resume`, `interaction`, ...) and status.
    pub(crate) responses: BTreeMap<String, BTreeMap<String, u64>>,
    /// Internal errors of the provider (a test bug or a provider bug).
    pub(crate) server_errors: u64,
}

/// Successes and failures of one grant type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Counts {
    /// Requests that got tokens.
    pub(crate) success: u64,
    /// Requests refused with an OAuth error.
    pub(crate) error: u64,
}

/// Token-endpoint outcomes of one grant type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct GrantCounts {
    /// Requests that got tokens.
    pub(crate) success: u64,
    /// Requests refused with an OAuth error.
    pub(crate) error: u64,
    /// Refusals by OAuth `error` code (`invalid_grant`, `invalid_client`, ...).
    pub(crate) errors: BTreeMap<String, u64>,
    /// Refusals by oidc-provider's internal detail, e.g. `refresh token
    /// already used` (a rotated token was reused: the grant is revoked),
    /// `refresh token not found` (revoked, unknown or of a revoked grant),
    /// `authorization code already consumed`.
    pub(crate) details: BTreeMap<String, u64>,
}

/// A grant the provider destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct RevokedGrant {
    /// The provider's grant id.
    pub(crate) grant_id: String,
    /// Where: `token` (reuse of a rotated refresh token) or `revocation`.
    pub(crate) route: Option<String>,
    /// The client that made the request.
    pub(crate) client_id: Option<String>,
}

impl Stats {
    /// Counts of one grant type (zero when none was seen).
    pub(crate) fn grant(&self, grant_type: &str) -> GrantCounts {
        self.grants.get(grant_type).cloned().unwrap_or_default()
    }

    /// `refresh_token` grants that returned tokens.
    pub(crate) fn refresh_successes(&self) -> u64 {
        self.grant("refresh_token").success
    }

    /// `refresh_token` grants that were refused.
    pub(crate) fn refresh_failures(&self) -> u64 {
        self.grant("refresh_token").error
    }

    /// All `refresh_token` grant requests the provider answered.
    pub(crate) fn refresh_attempts(&self) -> u64 {
        self.refresh_successes() + self.refresh_failures()
    }

    /// Responses of `route` with `status`.
    pub(crate) fn responses(&self, route: &str, status: u16) -> u64 {
        self.responses
            .get(route)
            .and_then(|by_status| by_status.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

// ------------------------------------------------------------- HTTP answers

/// A token-endpoint (or other JSON) answer: status and body.
#[derive(Debug, Clone)]
pub(crate) struct JsonResponse {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// `WWW-Authenticate`, if any.
    pub(crate) www_authenticate: Option<String>,
    /// The body parsed as JSON (`Value::Null` when empty or not JSON).
    pub(crate) body: Value,
}

impl JsonResponse {
    /// A string member of the body.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// The OAuth `error` code, if any.
    pub(crate) fn error(&self) -> Option<&str> {
        self.str("error")
    }

    /// Panics unless the status is 200, showing the body.
    #[track_caller]
    pub(crate) fn expect_ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{what}: expected 200, got {} {}",
            self.status,
            self.body
        );
        self
    }

    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let www_authenticate = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .expect("reading a response body from the test provider");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            www_authenticate,
            body,
        }
    }
}

/// A successful token response.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenSet {
    /// `access_token`.
    pub(crate) access_token: String,
    /// `refresh_token` (only with `offline_access`, see the README).
    pub(crate) refresh_token: Option<String>,
    /// `id_token` (with `openid`).
    pub(crate) id_token: Option<String>,
    /// `expires_in`, seconds.
    pub(crate) expires_in: u64,
    /// Granted `scope`.
    pub(crate) scope: Option<String>,
    /// `token_type` (`Bearer`).
    pub(crate) token_type: String,
}

// --------------------------------------------------------------------- PKCE

/// An RFC 7636 S256 pair.
#[derive(Debug, Clone)]
pub(crate) struct Pkce {
    /// `code_verifier` (43 characters).
    pub(crate) verifier: String,
    /// `code_challenge` = BASE64URL(SHA-256(verifier)).
    pub(crate) challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub(crate) fn generate() -> Self {
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// 32 random bytes, base64url without padding (43 characters).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `url` with query parameter `name` set to `value` (the others kept, in
/// order).
pub(crate) fn with_query_param(url: &Url, name: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// A query parameter of `url` (the first one with that name).
pub(crate) fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ----------------------------------------------------------- user agent

/// What the scripted user does on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Log in and consent.
    Approve,
    /// Log in, then cancel on the consent screen (`/interaction/:uid/abort`):
    /// the provider redirects with `error=access_denied`.
    Deny,
}

// ----------------------------------------------------------------- provider

/// A running `oidc-provider` on 127.0.0.1. Killed when dropped.
pub(crate) struct OidcProvider {
    child: Mutex<Option<(Child, ChildStdin)>>,
    port: u16,
    issuer: Url,
    options: ProviderOptions,
    log: Arc<Mutex<VecDeque<String>>>,
    http: reqwest::Client,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer.as_str())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("building a reqwest client")
}

fn push_log(log: &Mutex<VecDeque<String>>, line: String) {
    let mut log = lock(log);
    if log.len() == LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// Copies the provider's output lines into `log` (and to stderr when
/// `OIDC_PROVIDER_LOG` is set), so the pipe never fills up.
fn drain<R>(reader: R, stream: &'static str, log: Arc<Mutex<VecDeque<String>>>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let echo = std::env::var_os("OIDC_PROVIDER_LOG").is_some();
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("[oidc-provider {stream}] {line}");
                }
            }
            push_log(&log, format!("[{stream}] {line}"));
        }
    });
}

impl OidcProvider {
    /// Starts a provider and waits (bounded by `options.startup_timeout`)
    /// until it listens. Panics with the provider's output when it cannot.
    pub(crate) async fn start(options: ProviderOptions) -> Self {
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (child, stdin, port) = spawn(&options, options.port, &log).await;
        let path = options.issuer_path.clone().unwrap_or_default();
        let issuer = Url::parse(&format!("http://127.0.0.1:{port}{path}"))
            .expect("the issuer is a valid URL");
        Self {
            child: Mutex::new(Some((child, stdin))),
            port,
            issuer,
            options,
            log,
            http: http_client(),
        }
    }

    /// Starts a provider with [`ProviderOptions::default`].
    pub(crate) async fn start_default() -> Self {
        Self::start(ProviderOptions::default()).await
    }

    /// The issuer identifier, `http://127.0.0.1:<port>` (plus the issuer path).
    /// Like the provider's own `issuer`, it has no trailing slash unless the
    /// path is empty, where `Url` prints one: compare with [`Self::issuer_str`].
    pub(crate) fn issuer(&self) -> Url {
        self.issuer.clone()
    }

    /// The issuer exactly as the provider spells it (`iss`, discovery `issuer`).
    pub(crate) fn issuer_str(&self) -> String {
        let s = self.issuer.as_str();
        if self.options.issuer_path.is_none() {
            s.trim_end_matches('/').to_owned()
        } else {
            s.to_owned()
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The options it was started with.
    pub(crate) fn options(&self) -> &ProviderOptions {
        &self.options
    }

    /// An endpoint under the issuer, e.g. `endpoint("/token")`.
    pub(crate) fn endpoint(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.issuer_str())).expect("a valid endpoint URL")
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub(crate) fn discovery_url(&self) -> Url {
        self.endpoint("/.well-known/openid-configuration")
    }

    /// The first configured redirect URI.
    pub(crate) fn redirect_uri(&self) -> Url {
        Url::parse(&self.options.redirect_uris[0]).expect("a valid redirect URI")
    }

    /// The default confidential `client_secret_basic` client.
    pub(crate) fn client_basic(&self) -> TestClient {
        TestClient::basic()
    }

    /// The default confidential `client_secret_post` client.
    pub(crate) fn client_post(&self) -> TestClient {
        TestClient::post()
    }

    /// The default public client (PKCE required).
    pub(crate) fn client_public(&self) -> TestClient {
        TestClient::public()
    }

    /// Whether the node process is still there (not stopped, not exited).
    pub(crate) fn is_running(&self) -> bool {
        match lock(&self.child).as_mut() {
            Some((child, _)) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last lines the provider printed (stdout and stderr).
    pub(crate) fn logs(&self) -> String {
        lock(&self.log)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kills the provider and waits until it is gone: afterwards connections
    /// to its port are refused. Idempotent.
    pub(crate) async fn stop(&self) {
        let taken = lock(&self.child).take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            child.kill().await.expect("killing the test provider");
        }
    }

    /// Stops the provider and starts a fresh one on the same port with the
    /// same options: same issuer, but every token, grant and session is gone
    /// (the provider keeps state in memory) and the stats start from zero.
    pub(crate) async fn restart(&self) {
        self.stop().await;
        push_log(&self.log, "--- restart ---".to_owned());
        let (child, stdin, port) = spawn(&self.options, self.port, &self.log).await;
        assert_eq!(port, self.port);
        *lock(&self.child) = Some((child, stdin));
    }

    /// `GET /__test/stats`.
    pub(crate) async fn stats(&self) -> Stats {
        let url = self.test_route("stats");
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.logs()));
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        response.json().await.expect("stats are JSON")
    }

    /// `POST /__test/stats/reset`: zeroes every counter.
    pub(crate) async fn reset_stats(&self) {
        let url = self.test_route("stats/reset");
        let response = self
            .http
            .post(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "POST {url}");
    }

    fn test_route(&self, name: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}/__test/{name}", self.port))
            .expect("a valid test route")
    }

    // ------------------------------------------------- raw protocol helpers

    /// The discovery document.
    pub(crate) async fn discovery(&self) -> Value {
        let response = self.get_json(self.discovery_url()).await;
        response.expect_ok("discovery");
        response.body
    }

    async fn get_json(&self, url: Url) -> JsonResponse {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.logs()));
        JsonResponse::read(response).await
    }

    /// POSTs `params` to `endpoint` (`/token`, `/token/revocation`,
    /// `/token/introspection`) as `client`.
    pub(crate) async fn post_as_client(
        &self,
        endpoint: &str,
        client: &TestClient,
        params: &[(&str, &str)],
    ) -> JsonResponse {
        let url = self.endpoint(endpoint);
        let mut form: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let request = client.authenticate(self.http.post(url.clone()), &mut form);
        let response = request
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.logs()));
        JsonResponse::read(response).await
    }

    /// A token request (`grant_type` and friends in `params`).
    pub(crate) async fn token(&self, client: &TestClient, params: &[(&str, &str)]) -> JsonResponse {
        self.post_as_client("/token", client, params).await
    }

    /// Exchanges an authorization code.
    pub(crate) async fn exchange_code(
        &self,
        client: &TestClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> JsonResponse {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = code_verifier {
            params.push(("code_verifier", verifier));
        }
        self.token(client, &params).await
    }

    /// A `refresh_token` grant.
    pub(crate) async fn refresh(&self, client: &TestClient, refresh_token: &str) -> JsonResponse {
        self.token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// RFC 7662 introspection; the body has `active`.
    pub(crate) async fn introspect(&self, client: &TestClient, token: &str) -> JsonResponse {
        self.post_as_client("/token/introspection", client, &[("token", token)])
            .await
    }

    /// Whether the provider considers `token` active (asked as `client`).
    pub(crate) async fn is_active(&self, client: &TestClient, token: &str) -> bool {
        let response = self.introspect(client, token).await;
        response.expect_ok("introspection");
        response
            .body
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("introspection without `active`: {}", response.body))
    }

    /// RFC 7009 revocation.
    pub(crate) async fn revoke(
        &self,
        client: &TestClient,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> JsonResponse {
        let mut params = vec![("token", token)];
        if let Some(hint) = token_type_hint {
            params.push(("token_type_hint", hint));
        }
        self.post_as_client("/token/revocation", client, &params)
            .await
    }

    /// `GET /me` with a bearer token.
    pub(crate) async fn userinfo(&self, access_token: &str) -> JsonResponse {
        let url = self.endpoint("/me");
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.logs()));
        JsonResponse::read(response).await
    }

    /// An authorization URL for `client` with PKCE S256, `prompt=consent`,
    /// and the given scope, state and nonce; redirect URI: the first
    /// configured one.
    pub(crate) fn authorization_url(
        &self,
        client: &TestClient,
        scope: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Url {
        let mut url = self.endpoint("/auth");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", self.redirect_uri().as_str())
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("prompt", "consent")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Runs a whole flow without the library: authorization with PKCE and
    /// `prompt=consent`, login as `login`, consent, code exchange. For tests
    /// that need tokens obtained "elsewhere". Panics on any failure.
    pub(crate) async fn obtain_tokens(
        &self,
        client: &TestClient,
        login: &str,
        scope: &str,
    ) -> TokenSet {
        let pkce = Pkce::generate();
        let state = random_token();
        let url = self.authorization_url(client, scope, &state, &random_token(), &pkce);
        let callback = self.authorize(&url, login).await;
        assert_eq!(
            query_param(&callback, "state").as_deref(),
            Some(state.as_str())
        );
        let code = query_param(&callback, "code")
            .unwrap_or_else(|| panic!("no code in the callback {callback}"));
        let response = self
            .exchange_code(
                client,
                &code,
                self.redirect_uri().as_str(),
                Some(&pkce.verifier),
            )
            .await;
        response.expect_ok("code exchange");
        serde_json::from_value(response.body).expect("a token response")
    }

    // --------------------------------------------------------- user agent

    /// Plays the browser for `authorize_url`: follows the provider's
    /// redirects (only on its own origin), logs in as `login` with the
    /// development form (any password), consents, and returns the final
    /// redirect to the client's `redirect_uri` without requesting it. Each
    /// call is a fresh browser (own cookie jar, no SSO session). Panics, with
    /// the provider's output, when the provider answers anything else.
    pub(crate) async fn authorize(&self, authorize_url: &Url, login: &str) -> Url {
        self.run_user_agent(authorize_url, login, Decision::Approve)
            .await
    }

    /// Like [`Self::authorize`] but the user cancels on the consent screen:
    /// the returned callback carries `error=access_denied`.
    pub(crate) async fn authorize_deny(&self, authorize_url: &Url, login: &str) -> Url {
        self.run_user_agent(authorize_url, login, Decision::Deny)
            .await
    }

    /// [`Self::authorize`] / [`Self::authorize_deny`] returning the failure
    /// instead of panicking (e.g. when the provider shows an error page for
    /// an invalid `redirect_uri`).
    pub(crate) async fn try_authorize(
        &self,
        authorize_url: &Url,
        login: &str,
        decision: Decision,
    ) -> Result<Url, String> {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| format!("building the browser: {e}"))?;
        let origin = self.issuer.origin();
        if authorize_url.origin() != origin {
            return Err(format!(
                "the authorization URL {authorize_url} is not on the provider {}",
                self.issuer
            ));
        }
        let mut url = authorize_url.clone();
        let mut request = browser.get(url.clone());
        let mut trail = Vec::new();
        for _ in 0..MAX_USER_AGENT_STEPS {
            trail.push(url.path().to_owned());
            let response = request
                .send()
                .await
                .map_err(|e| format!("request to {url}: {e}"))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{status} from {url} without a Location"))?;
                let next = url
                    .join(location)
                    .map_err(|e| format!("bad Location {location:?} from {url}: {e}"))?;
                if next.origin() != origin {
                    // The redirect to the client: hand it back, don't follow.
                    return Ok(next);
                }
                url = next;
                request = browser.get(url.clone());
                continue;
            }
            let body = response
                .text()
                .await
                .map_err(|e| format!("reading {url}: {e}"))?;
            if status != StatusCode::OK {
                return Err(format!(
                    "the provider answered {status} at {url} (after {trail:?}): {}",
                    page_excerpt(&body)
                ));
            }
            let page = InteractionPage::parse(&body)
                .ok_or_else(|| format!("unexpected page at {url}: {}", page_excerpt(&body)))?;
            let action = url
                .join(&page.action)
                .map_err(|e| format!("bad form action {:?}: {e}", page.action))?;
            let (next_url, next_request) = match (page.prompt.as_str(), decision) {
                ("login", _) => {
                    let form = [
                        ("prompt", "login"),
                        ("login", login),
                        ("password", "any-password"),
                    ];
                    (action.clone(), browser.post(action).form(&form))
                }
                ("consent", Decision::Approve) => (
                    action.clone(),
                    browser.post(action).form(&[("prompt", "consent")]),
                ),
                ("consent", Decision::Deny) => {
                    let abort = page
                        .abort
                        .ok_or_else(|| format!("no cancel link on the consent page {url}"))?;
                    let abort = url
                        .join(&abort)
                        .map_err(|e| format!("bad cancel link {abort:?}: {e}"))?;
                    (abort.clone(), browser.get(abort))
                }
                (other, _) => return Err(format!("unknown interaction prompt {other:?} at {url}")),
            };
            if next_url.origin() != origin {
                return Err(format!(
                    "the page at {url} leads off the provider: {next_url}"
                ));
            }
            url = next_url;
            request = next_request;
        }
        Err(format!(
            "no redirect to the client after {MAX_USER_AGENT_STEPS} requests: {trail:?}"
        ))
    }

    async fn run_user_agent(&self, authorize_url: &Url, login: &str, decision: Decision) -> Url {
        match self.try_authorize(authorize_url, login, decision).await {
            Ok(callback) => callback,
            Err(e) => panic!(
                "scripted user agent failed: {e}\n--- provider output ---\n{}",
                self.logs()
            ),
        }
    }
}

async fn spawn(
    options: &ProviderOptions,
    port: u16,
    log: &Arc<Mutex<VecDeque<String>>>,
) -> (Child, ChildStdin, u16) {
    let dir = oidc_dir();
    let script = dir.join("provider.mjs");
    let installed = dir.join("node_modules/oidc-provider/package.json");
    assert!(
        installed.is_file(),
        "oidc-provider is not installed ({} is missing): run `npm ci --prefix tests/oidc`",
        installed.display()
    );
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    let mut command = Command::new(&node);
    command
        .arg(&script)
        .current_dir(&dir)
        .envs(options.env(port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run `{node} {}`: {e}. Install Node.js >= 20.19 (or set NODE) and run `npm ci --prefix tests/oidc`",
            script.display()
        )
    });
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    drain(stderr, "stderr", Arc::clone(log));

    let mut lines = BufReader::new(stdout).lines();
    let wait_for_port = async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    push_log(log, format!("[stdout] {line}"));
                    if let Some(port) = line.strip_prefix("LISTENING ") {
                        return Some(port.trim().parse::<u16>().expect("LISTENING <port>"));
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    };
    let listening = tokio::time::timeout(options.startup_timeout, wait_for_port).await;
    let port = match listening {
        Ok(Some(port)) => port,
        failed => {
            let _ = child.kill().await;
            // Let the stderr drain catch up before reporting.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let why = if failed.is_err() {
                format!(
                    "did not print `LISTENING <port>` within {:?}",
                    options.startup_timeout
                )
            } else {
                "exited before listening".to_owned()
            };
            let output = lock(log).iter().cloned().collect::<Vec<_>>().join("\n");
            panic!(
                "the test OpenID provider ({node} {}) {why}. Is it installed (`npm ci --prefix tests/oidc`)?\n--- provider output ---\n{output}",
                script.display()
            );
        }
    };
    // Keep draining stdout so the pipe never blocks the provider.
    let rest = lines.into_inner();
    drain(rest, "stdout", Arc::clone(log));
    (child, stdin, port)
}

/// The dev interaction page: the form's action, its hidden `prompt`, and the
/// cancel link.
#[derive(Debug)]
struct InteractionPage {
    action: String,
    prompt: String,
    abort: Option<String>,
}

impl InteractionPage {
    fn parse(html: &str) -> Option<Self> {
        let form = &html[html.find("<form")?..];
        let action = attr(form, "action")?;
        let prompt_input = &form[form.find("name=\"prompt\"")?..];
        let prompt = attr(prompt_input, "value")?;
        let abort = html
            .match_indices("href=\"")
            .filter_map(|(i, _)| attr(&html[i..], "href"))
            .find(|href| href.ends_with("/abort"));
        Some(Self {
            action,
            prompt,
            abort,
        })
    }
}

/// The first `name="value"` in `s`, HTML-unescaped.
fn attr(s: &str, name: &str) -> Option<String> {
    let start = s.find(&format!("{name}=\""))? + name.len() + 2;
    let end = s[start..].find('"')? + start;
    Some(unescape_html(&s[start..end]))
}

fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

fn page_excerpt(body: &str) -> String {
    // oidc-provider's error pages put the error in <pre> blocks.
    let text = match (body.find("<pre>"), body.rfind("</pre>")) {
        (Some(a), Some(b)) if a < b => &body[a..b],
        _ => body,
    };
    text.chars().take(600).collect()
}
