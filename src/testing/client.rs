//! Registered clients, fault switches and counters.

use std::time::Duration;

use crate::connector::ClientAuth;
use crate::secret::ClientSecret;

/// The redirect URI registered for the default clients. Nothing listens
/// there: [`TestProvider::authorize`](super::TestProvider::authorize) returns the callback URL instead of
/// following it.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/cb";

/// A client registered at the provider.
///
/// ```
/// use consentry::connector::ClientAuth;
/// use consentry::testing::TestClient;
/// let c = TestClient::new("my-app", ClientAuth::Post, Some("s3cret"))
///     .with_redirect_uri("http://127.0.0.1:3000/oauth/callback");
/// assert_eq!((c.id(), c.auth()), ("my-app", ClientAuth::Post));
/// assert!(c.client_secret().is_some());
/// assert_eq!(c.redirect_uris(), ["http://127.0.0.1:3000/oauth/callback"]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TestClient {
    id: String,
    secret: Option<String>,
    auth: ClientAuth,
    redirect_uris: Vec<String>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("auth", &self.auth)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client with this id, token-endpoint authentication method and
    /// secret (`None` for [`ClientAuth::None`]), registered for
    /// [`DEFAULT_REDIRECT_URI`] until [`with_redirect_uri`](Self::with_redirect_uri).
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// use consentry::testing::TestClient;
    /// let public = TestClient::new("spa", ClientAuth::None, None);
    /// assert!(public.client_secret().is_none());
    /// ```
    pub fn new(id: impl Into<String>, auth: ClientAuth, secret: Option<&str>) -> Self {
        Self {
            id: id.into(),
            secret: secret.map(str::to_owned),
            auth,
            redirect_uris: vec![DEFAULT_REDIRECT_URI.to_owned()],
        }
    }

    /// `client-basic` / `client-basic-secret`, `client_secret_basic`.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(consentry::testing::TestClient::basic().auth(), ClientAuth::Basic);
    /// ```
    pub fn basic() -> Self {
        Self::new(
            "client-basic",
            ClientAuth::Basic,
            Some("client-basic-secret"),
        )
    }

    /// `client-post` / `client-post-secret`, `client_secret_post`.
    ///
    /// ```
    /// assert_eq!(consentry::testing::TestClient::post().id(), "client-post");
    /// ```
    pub fn post() -> Self {
        Self::new("client-post", ClientAuth::Post, Some("client-post-secret"))
    }

    /// `client-public`, a public client (`none`; PKCE protects the code).
    ///
    /// ```
    /// assert!(consentry::testing::TestClient::public().client_secret().is_none());
    /// ```
    pub fn public() -> Self {
        Self::new("client-public", ClientAuth::None, None)
    }

    /// Replaces the registered redirect URIs by `uri` (call again to add more).
    ///
    /// ```
    /// let c = consentry::testing::TestClient::basic()
    ///     .with_redirect_uri("http://127.0.0.1:1/a")
    ///     .with_redirect_uri("http://127.0.0.1:1/b");
    /// assert_eq!(c.redirect_uris().len(), 2);
    /// ```
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        if self.redirect_uris == [DEFAULT_REDIRECT_URI] {
            self.redirect_uris.clear();
        }
        self.redirect_uris.push(uri.into());
        self
    }

    /// The client id.
    ///
    /// ```
    /// assert_eq!(consentry::testing::TestClient::basic().id(), "client-basic");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client secret, as the connector takes it.
    ///
    /// ```
    /// assert!(consentry::testing::TestClient::post().client_secret().is_some());
    /// ```
    pub fn client_secret(&self) -> Option<ClientSecret> {
        self.secret.clone().map(ClientSecret::new)
    }

    /// How the client authenticates at the token endpoint.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(consentry::testing::TestClient::public().auth(), ClientAuth::None);
    /// ```
    pub fn auth(&self) -> ClientAuth {
        self.auth
    }

    /// The registered redirect URIs (exact match, RFC 9700 §4.1.3).
    ///
    /// ```
    /// let c = consentry::testing::TestClient::basic();
    /// assert_eq!(c.redirect_uris(), [consentry::testing::DEFAULT_REDIRECT_URI]);
    /// ```
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    pub(crate) fn secret_str(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

/// What the next token-endpoint call does instead of its normal work
/// ([`TestProvider::fail_next_token`](super::TestProvider::fail_next_token)).
///
/// ```
/// use std::time::Duration;
/// use consentry::testing::Fault;
/// let f = Fault::RateLimited { retry_after: Duration::from_secs(30) };
/// assert_ne!(f, Fault::ServerError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500 Internal Server Error` with `{"error":"server_error"}`.
    ServerError,
    /// `400` with `{"error":"invalid_grant"}` (the grant itself stays valid).
    InvalidGrant,
    /// `429 Too Many Requests` with `Retry-After` in whole seconds.
    RateLimited {
        /// The `Retry-After` value (rounded down to seconds).
        retry_after: Duration,
    },
}

/// Counters of what the provider served ([`TestProvider::stats`](super::TestProvider::stats)).
///
/// ```
/// let s = consentry::testing::TestProviderStats::default();
/// assert_eq!((s.refresh_grants, s.revocations), (0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestProviderStats {
    /// Token-endpoint requests of any kind, faults included.
    pub token_requests: u64,
    /// Successful `authorization_code` grants.
    pub code_grants: u64,
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Refused `refresh_token` grants (reuse, revoked, expired, faults).
    pub refresh_failures: u64,
    /// Reuses of a rotated refresh token (each revoked its grant).
    pub refresh_reuses: u64,
    /// Revocation requests that revoked a live token.
    pub revocations: u64,
    /// Introspection requests.
    pub introspections: u64,
    /// Userinfo requests.
    pub userinfo_requests: u64,
    /// Resource API requests (`/api/...`).
    pub api_requests: u64,
    /// Token calls answered by a [`Fault`].
    pub faults_served: u64,
}
