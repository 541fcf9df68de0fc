//! One [`Provider`] trait over the two OAuth providers the flow suite runs
//! against: `consentry::testing::TestProvider` (in-process) and
//! `oidc-provider` (the npm harness in [`super::oidc`]; needs
//! `npm ci --prefix tests/oidc`), and the shared setup.
//!
//! A flow written as `async fn flow<P: Provider>()` runs against both with
//! [`both!`](crate::both).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use consentry::clock::{Clock, SystemClock};
use consentry::connector::{ClientAuth, OAuth2Connector};
use consentry::http::ReqwestClient;
use consentry::store::SqliteStore;
use consentry::testing::{TestClient, TestProvider};
use consentry::vault::Keyring;
use consentry::{Connection, ConnectorId, Integrations, Purpose, Scope, UserId};
use url::Url;

use super::oidc::{OidcProvider, ProviderOptions};

/// Runs the generic flow `$flow` against both providers, as two tests in a
/// module named after it: `$flow::test_provider` and `$flow::oidc_provider`.
#[macro_export]
macro_rules! both {
    ($flow:ident) => {
        $crate::both!($flow, flavor = "current_thread");
    };
    ($flow:ident, multi_thread) => {
        mod $flow {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn test_provider() {
                super::$flow::<consentry::testing::TestProvider>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oidc_provider() {
                super::$flow::<$crate::support::oidc::OidcProvider>().await;
            }
        }
    };
    ($flow:ident, flavor = "current_thread") => {
        mod $flow {
            #[tokio::test]
            async fn test_provider() {
                super::$flow::<consentry::testing::TestProvider>().await;
            }
            #[tokio::test]
            async fn oidc_provider() {
                super::$flow::<$crate::support::oidc::OidcProvider>().await;
            }
        }
    };
}

/// What the shared suite needs from a provider.
pub(crate) trait Provider: Sized + Send + Sync + 'static {
    /// Starts one with this access-token lifetime.
    async fn start(access_ttl: Duration) -> Self;
    fn issuer(&self) -> Url;
    fn redirect_uri(&self) -> Url;
    /// The scripted user approves (login and consent) and the callback URL.
    async fn approve(&self, authorize_url: &Url, login: &str) -> Url;
    /// The scripted user declines.
    async fn decline(&self, authorize_url: &Url, login: &str) -> Url;
    /// Whether the provider's userinfo endpoint accepts the access token.
    async fn userinfo_ok(&self, access_token: &str) -> bool;
    /// The `email` claim userinfo gives for the access token.
    async fn userinfo_email(&self, access_token: &str) -> Option<String>;
    /// Introspection (RFC 7662) as `client`.
    async fn active(&self, client: &TestClient, token: &str) -> bool;
    /// Uses a refresh token outside consentry; whether it worked.
    async fn refresh_elsewhere(&self, client: &TestClient, refresh_token: &str) -> bool;
    /// Refresh grants since the last reset: (succeeded, failed).
    async fn refresh_counts(&self) -> (u64, u64);
    async fn reset_stats(&self);
    /// The `iss` value the provider puts in callbacks.
    fn issuer_str(&self) -> String;
    /// Stops serving: connections are refused.
    async fn stop(&self);
    /// Serves again on the same port, with the same grants.
    async fn restart(&self);
}

pub(crate) fn harness_client(c: &TestClient) -> super::oidc::TestClient {
    match c.auth() {
        ClientAuth::Basic => super::oidc::TestClient::basic(),
        ClientAuth::Post => super::oidc::TestClient::post(),
        _ => super::oidc::TestClient::public(),
    }
}

impl Provider for OidcProvider {
    async fn start(access_ttl: Duration) -> Self {
        OidcProvider::start(ProviderOptions::default().access_token_ttl(access_ttl)).await
    }
    fn issuer(&self) -> Url {
        OidcProvider::issuer(self)
    }
    fn redirect_uri(&self) -> Url {
        OidcProvider::redirect_uri(self)
    }
    async fn approve(&self, url: &Url, login: &str) -> Url {
        self.authorize(url, login).await
    }
    async fn decline(&self, url: &Url, login: &str) -> Url {
        self.authorize_deny(url, login).await
    }
    async fn userinfo_ok(&self, token: &str) -> bool {
        self.userinfo(token).await.status.is_success()
    }
    async fn userinfo_email(&self, token: &str) -> Option<String> {
        let info = self.userinfo(token).await;
        info.status
            .is_success()
            .then(|| info.str("email").map(str::to_owned))
            .flatten()
    }
    async fn active(&self, client: &TestClient, token: &str) -> bool {
        self.is_active(&harness_client(client), token).await
    }
    async fn refresh_elsewhere(&self, client: &TestClient, rt: &str) -> bool {
        self.refresh(&harness_client(client), rt)
            .await
            .status
            .is_success()
    }
    async fn refresh_counts(&self) -> (u64, u64) {
        let stats = self.stats().await;
        (stats.refresh_successes(), stats.refresh_failures())
    }
    async fn reset_stats(&self) {
        OidcProvider::reset_stats(self).await;
    }
    fn issuer_str(&self) -> String {
        OidcProvider::issuer_str(self)
    }
    async fn stop(&self) {
        OidcProvider::stop(self).await;
    }
    async fn restart(&self) {
        OidcProvider::restart(self).await;
    }
}

/// The same introspection and refresh requests as the harness makes, over
/// plain reqwest, so TestProvider answers them over HTTP too.
pub(crate) async fn post_form(
    url: Url,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let secret = client.client_secret();
    let http = reqwest::Client::new();
    let mut req = http.post(url);
    match (client.auth(), &secret) {
        (ClientAuth::Basic, Some(s)) => {
            req = req.basic_auth(client.id(), Some(s.expose_secret()));
        }
        (ClientAuth::Post, Some(s)) => {
            form.push(("client_id", client.id()));
            form.push(("client_secret", s.expose_secret()));
            return req.form(&form).send().await.unwrap();
        }
        _ => form.push(("client_id", client.id())),
    }
    req.form(&form).send().await.unwrap()
}

impl Provider for TestProvider {
    async fn start(access_ttl: Duration) -> Self {
        TestProvider::builder()
            .access_token_ttl(access_ttl)
            .start()
            .await
            .unwrap()
    }
    fn issuer(&self) -> Url {
        TestProvider::issuer(self)
    }
    fn redirect_uri(&self) -> Url {
        TestProvider::redirect_uri(self)
    }
    async fn approve(&self, url: &Url, login: &str) -> Url {
        self.authorize(url, login).unwrap()
    }
    async fn decline(&self, url: &Url, _login: &str) -> Url {
        self.deny(url).unwrap()
    }
    async fn userinfo_ok(&self, token: &str) -> bool {
        self.userinfo_email(token).await.is_some()
    }
    async fn userinfo_email(&self, token: &str) -> Option<String> {
        let r = reqwest::Client::new()
            .get(self.url("/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if !r.status().is_success() {
            return None;
        }
        let body: serde_json::Value = r.json().await.unwrap();
        body["email"].as_str().map(str::to_owned)
    }
    async fn active(&self, client: &TestClient, token: &str) -> bool {
        let r = post_form(
            self.url("/token/introspection"),
            client,
            &[("token", token)],
        )
        .await;
        assert!(r.status().is_success());
        let body: serde_json::Value = r.json().await.unwrap();
        let active = body["active"] == true;
        // Introspection agrees with the provider's own view (a foreign
        // client just sees `active: false`).
        assert!(!active || self.is_active(token));
        active
    }
    async fn refresh_elsewhere(&self, client: &TestClient, rt: &str) -> bool {
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        post_form(self.url("/token"), client, &form)
            .await
            .status()
            .is_success()
    }
    async fn refresh_counts(&self) -> (u64, u64) {
        let stats = self.stats();
        (stats.refresh_grants, stats.refresh_failures)
    }
    async fn reset_stats(&self) {
        TestProvider::reset_stats(self);
    }
    fn issuer_str(&self) -> String {
        TestProvider::issuer(self)
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }
    async fn stop(&self) {
        TestProvider::stop(self).await;
    }
    async fn restart(&self) {
        TestProvider::restart(self).await.unwrap();
    }
}

/// A provider, consentry connected to it through discovery, and the store.
pub(crate) struct Setup<P> {
    pub(crate) provider: P,
    pub(crate) integrations: Integrations,
    pub(crate) store: SqliteStore,
    pub(crate) client: TestClient,
    _dir: tempfile::TempDir,
}

pub(crate) fn connector_id() -> ConnectorId {
    "oidc".parse().unwrap()
}

pub(crate) fn purpose() -> Purpose {
    Purpose::new("reminders").unwrap()
}

/// [`setup_with`] on the system clock.
pub(crate) async fn setup<P: Provider>(
    client: TestClient,
    access_ttl: Duration,
    margin: Duration,
) -> Setup<P> {
    setup_with(client, access_ttl, Arc::new(SystemClock), margin).await
}

/// A provider with this access-token lifetime; consentry with `clock` and
/// refresh margin `margin`, on a fresh SQLite file.
pub(crate) async fn setup_with<P: Provider>(
    client: TestClient,
    access_ttl: Duration,
    clock: Arc<dyn Clock>,
    margin: Duration,
) -> Setup<P> {
    let provider = P::start(access_ttl).await;
    let http = ReqwestClient::new().unwrap();
    let connector = OAuth2Connector::discover(
        connector_id(),
        &provider.issuer(),
        client.id(),
        client.client_secret(),
        &http,
    )
    .await
    .unwrap()
    .into_builder()
    .client_auth(client.auth())
    // oidc-provider honours offline_access only with prompt=consent.
    .authorization_param("prompt", "consent")
    .default_scopes(["openid", "email", "offline_access"].map(|s| Scope::new(s).unwrap()))
    .build()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db")).await.unwrap();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(http)
        .connector(connector)
        .redirect_uri(provider.redirect_uri())
        .clock(clock)
        .refresh_margin(margin)
        .build()
        .unwrap();
    Setup {
        provider,
        integrations,
        store,
        client,
        _dir: dir,
    }
}

/// Runs the browser part (the scripted user approves) and completes the
/// connection.
pub(crate) async fn connect<P: Provider>(s: &Setup<P>, user: &UserId, login: &str) -> Connection {
    let start = s
        .integrations
        .begin_connect(user, &connector_id(), &[])
        .await
        .unwrap();
    let callback = s.provider.approve(&start.authorize_url, login).await;
    s.integrations
        .complete_connect(user, &callback)
        .await
        .unwrap()
}
