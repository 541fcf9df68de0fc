//! [`TestProviderBuilder`]: options, and binding and serving.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::state::{Inner, State};
use super::{TestClient, TestProvider, resources};
use crate::error::{Error, Result};

/// Options for a [`TestProvider`] ([`TestProvider::builder`]).
///
/// ```
/// use std::time::Duration;
/// use consentry::testing::{TestClient, TestProvider};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let provider = TestProvider::builder()
///     .access_token_ttl(Duration::from_secs(2))
///     .refresh_token_ttl(Duration::from_secs(3600))
///     .client(TestClient::basic().with_redirect_uri("http://127.0.0.1:8080/cb"))
///     .items((1..=7).map(|i| serde_json::json!({"id": format!("item-{i}"), "title": "t"})))
///     .page_size(3)
///     .start()
///     .await?;
/// assert_eq!(provider.redirect_uri().as_str(), "http://127.0.0.1:8080/cb");
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TestProviderBuilder {
    clients: Option<Vec<TestClient>>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    rotate: bool,
    token_delay: Duration,
    items: Option<Vec<Value>>,
    page_size: usize,
}

impl Default for TestProviderBuilder {
    fn default() -> Self {
        Self {
            clients: None,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(24 * 3600),
            rotate: true,
            token_delay: Duration::ZERO,
            items: None,
            page_size: 5,
        }
    }
}

impl TestProviderBuilder {
    /// Access-token lifetime (`expires_in`); default one hour. Sub-second
    /// parts count for expiry but `expires_in` is sent in whole seconds
    /// (at least 1).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().access_token_ttl(std::time::Duration::from_secs(1));
    /// # drop(b);
    /// ```
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Refresh-token lifetime; default one day.
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().refresh_token_ttl(std::time::Duration::from_secs(60));
    /// # drop(b);
    /// ```
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Refresh-token rotation (default on): each refresh returns a new
    /// refresh token and retires the old one; presenting a retired one
    /// revokes the grant. Off: the refresh token stays the same.
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().rotate_refresh_tokens(false);
    /// # drop(b);
    /// ```
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.rotate = rotate;
        self
    }

    /// Registers a client. The first call replaces the default clients
    /// ([`TestClient::basic`], [`TestClient::post`], [`TestClient::public`]).
    ///
    /// ```
    /// use consentry::testing::{TestClient, TestProvider};
    /// let b = TestProvider::builder().client(TestClient::public());
    /// # drop(b);
    /// ```
    pub fn client(mut self, client: TestClient) -> Self {
        self.clients.get_or_insert_with(Vec::new).push(client);
        self
    }

    /// Delays every token-endpoint response by `delay` (slow provider).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().token_delay(std::time::Duration::from_millis(50));
    /// # drop(b);
    /// ```
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The JSON items `/api/items` serves (default: 12 items `item-1` ..
    /// `item-12` with `title` and `updated_at`).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().items([serde_json::json!({"id": "a"})]);
    /// # drop(b);
    /// ```
    pub fn items(mut self, items: impl IntoIterator<Item = Value>) -> Self {
        self.items = Some(items.into_iter().collect());
        self
    }

    /// Items per page of `/api/items` unless the request says `page_size`
    /// (default 5; clamped to 1 ..= 100).
    ///
    /// ```
    /// let b = consentry::testing::TestProvider::builder().page_size(10);
    /// # drop(b);
    /// ```
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 100);
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving on the current
    /// Tokio runtime. The server stops when the [`TestProvider`] is dropped.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = consentry::testing::TestProvider::builder().start().await?;
    /// assert_eq!(p.issuer().host_str(), Some("127.0.0.1"));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`] if no port can be bound; [`Error::Random`] if the
    /// system's random generator fails.
    pub async fn start(self) -> Result<TestProvider> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::storage("binding 127.0.0.1 for the test provider", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::storage("reading the test provider's address", e))?;
        let issuer = format!("http://{addr}");
        let items = self.items.unwrap_or_else(resources::default_items);
        let inner = Inner {
            clients: self.clients.unwrap_or_else(|| {
                vec![
                    TestClient::basic(),
                    TestClient::post(),
                    TestClient::public(),
                ]
            }),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            rotate: self.rotate,
            token_delay: self.token_delay,
            items,
            page_size: self.page_size,
            ..Inner::default()
        };
        let state = Arc::new(State::new(issuer.clone(), inner)?);
        let server = super::Server::serve(listener, state.clone());
        let issuer = Url::parse(&issuer).map_err(|_| Error::Internal("test provider issuer"))?;
        Ok(TestProvider {
            state,
            addr,
            issuer,
            server: tokio::sync::Mutex::new(Some(server)),
        })
    }
}
