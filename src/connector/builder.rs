//! [`OAuth2ConnectorBuilder`]: assembles and validates an [`OAuth2Connector`].

use std::collections::HashSet;

use url::Url;

use super::oauth2::check_endpoint;
use super::{
    AccountSource, ActionSpec, ClientAuth, ConnectorInfo, MAX_SCOPES, OAuth2Config,
    OAuth2Connector, Quirks, StreamSpec,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Scope};
use crate::secret::ClientSecret;

/// Authorization request parameters consentry sets itself; extra
/// parameters may not override them.
pub(crate) const RESERVED_AUTHORIZATION_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "resource",
];

/// The longest client id accepted, in bytes.
const MAX_CLIENT_ID: usize = 512;

/// Checks one extra authorization parameter.
pub(crate) fn check_extra_param(key: &str, value: &str) -> Result<()> {
    const WHAT: &str = "authorization parameter";
    if key.is_empty() || key.len() > 128 || value.len() > 2048 {
        return Err(Error::invalid(
            WHAT,
            "names must be 1 to 128 bytes, values at most 2048 bytes",
        ));
    }
    if key.contains(char::is_control) || value.contains(char::is_control) {
        return Err(Error::invalid(WHAT, "contains a control character"));
    }
    if RESERVED_AUTHORIZATION_PARAMS.contains(&key) {
        return Err(Error::invalid(
            WHAT,
            format!("`{key}` is set by consentry and cannot be overridden"),
        ));
    }
    Ok(())
}

/// Builds an [`OAuth2Connector`]; [`build`](Self::build) validates
/// everything at once.
///
/// Required: [`authorization_url`](Self::authorization_url),
/// [`token_url`](Self::token_url), [`client_id`](Self::client_id), and a
/// [`client_secret`](Self::client_secret) unless the client auth is
/// [`ClientAuth::None`]. Defaults: PKCE on, `client_secret_basic`, scope
/// separator `" "`, no quirks.
///
/// ```
/// use consentry::connector::{AccountSource, ClientAuth, OAuth2Connector, Quirks, ScopeFormat};
/// use consentry::secret::ClientSecret;
/// use consentry::url::Url;
///
/// let mut quirks = Quirks::default();
/// quirks.scope_format = ScopeFormat::CommaString;
/// let c = OAuth2Connector::builder("acme".parse()?)
///     .name("Acme")
///     .authorization_url(Url::parse("https://acme.example/authorize")?)
///     .token_url(Url::parse("https://acme.example/token")?)
///     .revocation_url(Url::parse("https://acme.example/revoke")?)
///     .client_id("client")
///     .client_secret(ClientSecret::new("secret"))
///     .client_auth(ClientAuth::Post)
///     .default_scopes(["profile".parse()?])
///     .optional_scopes(["orders:read".parse()?])
///     .scope_separator(",")
///     .authorization_param("prompt", "consent")
///     .resource(Url::parse("https://api.acme.example/")?)
///     .issuer("https://acme.example")
///     .issuer_in_callback(true)
///     .quirks(quirks)
///     .account(AccountSource::api(Url::parse("https://api.acme.example/me")?, "/id")?)
///     .build()?;
/// assert_eq!(c.config().scope_separator(), ",");
///
/// // Validation happens in build():
/// let err = OAuth2Connector::builder("acme".parse()?)
///     .authorization_url(Url::parse("http://acme.example/authorize")?)
///     .token_url(Url::parse("https://acme.example/token")?)
///     .client_id("client")
///     .client_auth(ClientAuth::None)
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("https"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OAuth2ConnectorBuilder {
    id: ConnectorId,
    info: ConnectorInfo,
    authorization_url: Option<Url>,
    token_url: Option<Url>,
    revocation_url: Option<Url>,
    introspection_url: Option<Url>,
    discovery_url: Option<Url>,
    issuer: Option<String>,
    issuer_in_callback: bool,
    default_scopes: Vec<Scope>,
    optional_scopes: Vec<Scope>,
    scope_separator: String,
    pkce: bool,
    client_auth: ClientAuth,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    authorization_params: Vec<(String, String)>,
    resources: Vec<Url>,
    quirks: Quirks,
    account: Option<AccountSource>,
    streams: Vec<StreamSpec>,
    actions: Vec<ActionSpec>,
    api_base_url: Option<Url>,
}

impl OAuth2ConnectorBuilder {
    pub(super) fn new(id: ConnectorId) -> Self {
        Self {
            info: ConnectorInfo::new(id.as_str()),
            id,
            authorization_url: None,
            token_url: None,
            revocation_url: None,
            introspection_url: None,
            discovery_url: None,
            issuer: None,
            issuer_in_callback: false,
            default_scopes: Vec::new(),
            optional_scopes: Vec::new(),
            scope_separator: " ".into(),
            pkce: true,
            client_auth: ClientAuth::Basic,
            client_id: None,
            client_secret: None,
            authorization_params: Vec::new(),
            resources: Vec::new(),
            quirks: Quirks::default(),
            account: None,
            streams: Vec::new(),
            actions: Vec::new(),
            api_base_url: None,
        }
    }

    pub(super) fn from_connector(c: OAuth2Connector) -> Self {
        let cfg = c.config;
        Self {
            id: c.id,
            info: c.info,
            authorization_url: Some(cfg.authorization_url),
            token_url: Some(cfg.token_url),
            revocation_url: cfg.revocation_url,
            introspection_url: cfg.introspection_url,
            discovery_url: cfg.discovery_url,
            issuer: cfg.issuer,
            issuer_in_callback: cfg.issuer_in_callback,
            default_scopes: cfg.default_scopes,
            optional_scopes: cfg.optional_scopes,
            scope_separator: cfg.scope_separator,
            pkce: cfg.pkce,
            client_auth: cfg.client_auth,
            client_id: Some(cfg.client_id),
            client_secret: cfg.client_secret,
            authorization_params: cfg.authorization_params,
            resources: cfg.resources,
            quirks: cfg.quirks,
            account: cfg.account,
            streams: c.streams,
            actions: c.actions,
            api_base_url: c.api_base_url,
        }
    }

    /// The display name (default: the id).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// assert_eq!(acme.clone().build()?.info().name, "acme"); // the default
    /// let c = acme.name("Acme CRM").build()?;
    /// assert_eq!(c.info().name, "Acme CRM");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.info.name = name.into();
        self
    }

    /// An icon URL for display.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.icon_url(Url::parse("https://acme.example/icon.png")?).build()?;
    /// assert_eq!(c.info().icon_url.as_ref().map(Url::as_str), Some("https://acme.example/icon.png"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn icon_url(mut self, url: Url) -> Self {
        self.info.icon_url = Some(url);
        self
    }

    /// The provider's developer documentation.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.docs_url(Url::parse("https://developers.acme.example/oauth")?).build()?;
    /// let docs = c.info().docs_url.as_ref().map(Url::as_str);
    /// assert_eq!(docs, Some("https://developers.acme.example/oauth"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn docs_url(mut self, url: Url) -> Self {
        self.info.docs_url = Some(url);
        self
    }

    /// The authorization endpoint (required).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.clone().authorization_url(Url::parse("https://login.acme.example/authorize")?).build()?;
    /// assert_eq!(c.config().authorization_url().as_str(), "https://login.acme.example/authorize");
    /// // Plain http only on loopback hosts:
    /// assert!(acme.authorization_url(Url::parse("http://acme.example/authorize")?).build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorization_url(mut self, url: Url) -> Self {
        self.authorization_url = Some(url);
        self
    }

    /// The token endpoint (required).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// // Plain http is accepted on loopback hosts, for local test servers.
    /// let c = acme.token_url(Url::parse("http://127.0.0.1:8080/token")?).build()?;
    /// assert_eq!(c.config().token_url().as_str(), "http://127.0.0.1:8080/token");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token_url(mut self, url: Url) -> Self {
        self.token_url = Some(url);
        self
    }

    /// The RFC 7009 revocation endpoint.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// assert!(acme.clone().build()?.config().revocation_url().is_none()); // the default
    /// let c = acme.revocation_url(Url::parse("https://acme.example/revoke")?).build()?;
    /// assert_eq!(c.config().revocation_url().map(Url::as_str), Some("https://acme.example/revoke"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn revocation_url(mut self, url: Url) -> Self {
        self.revocation_url = Some(url);
        self
    }

    /// The RFC 7662 introspection endpoint.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.introspection_url(Url::parse("https://acme.example/introspect")?).build()?;
    /// assert_eq!(c.config().introspection_url().map(Url::as_str), Some("https://acme.example/introspect"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn introspection_url(mut self, url: Url) -> Self {
        self.introspection_url = Some(url);
        self
    }

    /// The metadata document the settings came from (informational).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let doc = Url::parse("https://acme.example/.well-known/openid-configuration")?;
    /// let c = acme.discovery_url(doc.clone()).build()?;
    /// assert_eq!(c.config().discovery_url(), Some(&doc));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn discovery_url(mut self, url: Url) -> Self {
        self.discovery_url = Some(url);
        self
    }

    /// The issuer identifier, exactly as the provider writes it (compared
    /// as a string with `iss` in callbacks, RFC 9207).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.clone().issuer("https://acme.example").build()?;
    /// assert_eq!(c.config().issuer(), Some("https://acme.example"));
    /// assert!(acme.issuer("https://acme.example/?tenant=1").build().is_err()); // no query
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Whether the provider sends `iss` in every authorization response
    /// (RFC 9207 `authorization_response_iss_parameter_supported`).
    /// Requires [`issuer`](Self::issuer).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.clone().issuer("https://acme.example").issuer_in_callback(true).build()?;
    /// assert!(c.config().issuer_in_callback());
    /// assert!(acme.issuer_in_callback(true).build().is_err()); // no issuer to compare with
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn issuer_in_callback(mut self, sends_iss: bool) -> Self {
        self.issuer_in_callback = sends_iss;
        self
    }

    /// Scopes requested on every authorization.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.default_scopes(["contacts.read".parse()?]).build()?;
    /// assert_eq!(c.config().default_scopes()[0].as_str(), "contacts.read");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn default_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.default_scopes = scopes.into_iter().collect();
        self
    }

    /// Scopes a host may additionally request.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.optional_scopes(["contacts.write".parse()?, "admin".parse()?]).build()?;
    /// assert_eq!(c.config().optional_scopes().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn optional_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.optional_scopes = scopes.into_iter().collect();
        self
    }

    /// The separator between scopes in the authorization request (default
    /// `" "`; GitHub and Slack use `","`).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.clone().scope_separator(",").build()?;
    /// assert_eq!(c.config().scope_separator(), ",");
    /// assert!(acme.scope_separator("").build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope_separator(mut self, separator: impl Into<String>) -> Self {
        self.scope_separator = separator.into();
        self
    }

    /// Whether to use PKCE S256 (default on). Turn it off only for a
    /// provider that refuses requests carrying a `code_challenge`.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// assert!(acme.clone().build()?.config().pkce()); // on by default
    /// assert!(!acme.pkce(false).build()?.config().pkce());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pkce(mut self, enabled: bool) -> Self {
        self.pkce = enabled;
        self
    }

    /// Client authentication at the token endpoint (default
    /// [`ClientAuth::Basic`]).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::secret::ClientSecret;
    /// let post = acme.clone().client_auth(ClientAuth::Post).client_secret(ClientSecret::new("s3cret"));
    /// let c = post.build()?;
    /// assert_eq!(c.config().client_auth(), ClientAuth::Post);
    /// assert!(acme.client_auth(ClientAuth::Basic).build().is_err()); // basic needs a secret
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The client id (required).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.client_id("other-app").build()?;
    /// assert_eq!(c.config().client_id(), "other-app");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret (required unless the client auth is
    /// [`ClientAuth::None`]).
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::secret::ClientSecret;
    /// let basic = acme.clone().client_auth(ClientAuth::Basic);
    /// let c = basic.client_secret(ClientSecret::new("s3cret")).build()?;
    /// assert_eq!(c.config().client_secret().map(|s| s.expose_secret()), Some("s3cret"));
    /// // A public client (`ClientAuth::None`) must not have one:
    /// assert!(acme.client_secret(ClientSecret::new("s3cret")).build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Removes the client secret.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::secret::ClientSecret;
    /// let confidential = acme.client_auth(ClientAuth::Basic).client_secret(ClientSecret::new("s")).build()?;
    /// // Turn it into a public client:
    /// let public = confidential.into_builder().no_client_secret().client_auth(ClientAuth::None).build()?;
    /// assert!(public.config().client_secret().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn no_client_secret(mut self) -> Self {
        self.client_secret = None;
        self
    }

    /// Adds a parameter sent with every authorization request.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.clone().authorization_param("prompt", "consent").build()?;
    /// assert_eq!(c.config().authorization_params(), [("prompt".to_owned(), "consent".to_owned())]);
    /// assert!(acme.authorization_param("state", "fixed").build().is_err()); // set by consentry
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorization_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.authorization_params.push((key.into(), value.into()));
        self
    }

    /// Adds an RFC 8707 resource indicator.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.resource(Url::parse("https://api.acme.example/")?).build()?;
    /// assert_eq!(c.config().resources()[0].as_str(), "https://api.acme.example/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resource(mut self, resource: Url) -> Self {
        self.resources.push(resource);
        self
    }

    /// The provider's quirks.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::connector::Quirks;
    /// let mut quirks = Quirks::default();
    /// quirks.errors_with_200 = true;
    /// let c = acme.quirks(quirks).build()?;
    /// assert!(c.config().quirks().errors_with_200);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quirks(mut self, quirks: Quirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// Where the connected account's identity comes from.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::connector::AccountSource;
    /// let c = acme.account(AccountSource::userinfo(Url::parse("https://acme.example/userinfo")?)).build()?;
    /// assert_eq!(c.config().account().map(|a| a.id_pointer()), Some("/sub"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn account(mut self, source: AccountSource) -> Self {
        self.account = Some(source);
        self
    }

    /// Declares a stream.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::connector::StreamSpec;
    /// let c = acme.clone().stream(StreamSpec::new("contacts")?).build()?;
    /// assert_eq!(c.streams()[0].name(), "contacts");
    /// let twice = acme.stream(StreamSpec::new("contacts")?).stream(StreamSpec::new("contacts")?);
    /// assert!(twice.build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream(mut self, stream: StreamSpec) -> Self {
        self.streams.push(stream);
        self
    }

    /// Declares an action.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// use consentry::Purpose;
    /// use consentry::connector::ActionSpec;
    /// let c = acme.action(ActionSpec::new("create_contact", Purpose::new("crm_sync")?)?).build()?;
    /// assert_eq!(c.actions()[0].purpose().as_str(), "crm_sync");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn action(mut self, action: ActionSpec) -> Self {
        self.actions.push(action);
        self
    }

    /// The provider API's base URL, prefixed to the paths of declared
    /// streams ([`StreamSpec::with_http`](super::StreamSpec::with_http)).
    ///
    /// ```
    /// use consentry::connector::{HttpStream, StreamSpec};
    /// use consentry::url::Url;
    /// let stream = StreamSpec::new("contacts")?.with_http(HttpStream::new("/contacts", "/data", "/id")?);
    /// let acme = consentry::integrations::doc_support::connector()?.into_builder().stream(stream);
    /// assert!(acme.clone().build().is_err()); // declared streams need a base URL
    /// assert!(acme.api_base_url(Url::parse("https://api.acme.example/v2")?).build().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn api_base_url(mut self, url: Url) -> Self {
        self.api_base_url = Some(url);
        self
    }

    /// Validates and builds the connector.
    ///
    /// ```
    /// use consentry::connector::{ClientAuth, OAuth2Connector};
    /// use consentry::url::Url;
    /// let builder = OAuth2Connector::builder("acme".parse()?)
    ///     .authorization_url(Url::parse("https://acme.example/authorize")?)
    ///     .token_url(Url::parse("https://acme.example/token")?)
    ///     .client_auth(ClientAuth::None);
    /// let err = builder.clone().build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid client_id: is required");
    /// assert!(builder.client_id("app").build().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first problem: a missing required
    /// setting, an endpoint that is not `https` (plain `http` is allowed on
    /// loopback hosts only), a secret where the client auth is `none` or
    /// none where it is not, more than [`MAX_SCOPES`] scopes, an extra
    /// parameter overriding one consentry sets, `issuer_in_callback`
    /// without an issuer, duplicate stream or action names.
    pub fn build(self) -> Result<OAuth2Connector> {
        let authorization_url = self
            .authorization_url
            .ok_or_else(|| Error::invalid("authorization_url", "is required"))?;
        check_endpoint("authorization_url", &authorization_url)?;
        let token_url = self
            .token_url
            .ok_or_else(|| Error::invalid("token_url", "is required"))?;
        check_endpoint("token_url", &token_url)?;
        for (what, url) in [
            ("revocation_url", &self.revocation_url),
            ("introspection_url", &self.introspection_url),
            ("discovery_url", &self.discovery_url),
            ("api_base_url", &self.api_base_url),
        ] {
            if let Some(url) = url {
                check_endpoint(what, url)?;
            }
        }
        if self.streams.iter().any(|s| s.http().is_some()) && self.api_base_url.is_none() {
            return Err(Error::invalid(
                "api_base_url",
                "is required when a stream declares a request path",
            ));
        }
        if let Some(account) = &self.account {
            check_endpoint("account url", account.url())?;
        }
        for (what, url) in [
            ("icon_url", &self.info.icon_url),
            ("docs_url", &self.info.docs_url),
        ] {
            if url
                .as_ref()
                .is_some_and(|u| !matches!(u.scheme(), "https" | "http"))
            {
                return Err(Error::invalid(what, "must be an http(s) URL"));
            }
        }
        crate::ids::check_common("connector name", &self.info.name, 128)?;

        let client_id = self
            .client_id
            .ok_or_else(|| Error::invalid("client_id", "is required"))?;
        crate::ids::check_common("client_id", &client_id, MAX_CLIENT_ID)?;
        match (self.client_auth, &self.client_secret) {
            (ClientAuth::None, Some(_)) => {
                return Err(Error::invalid(
                    "client_secret",
                    "is set but the client auth is `none` (a public client); remove it or use basic/post",
                ));
            }
            (ClientAuth::Basic | ClientAuth::Post, None) => {
                return Err(Error::invalid(
                    "client_secret",
                    "is required for client_secret_basic and client_secret_post",
                ));
            }
            (_, Some(secret)) if secret.expose_secret().is_empty() => {
                return Err(Error::invalid("client_secret", "must not be empty"));
            }
            _ => {}
        }

        if self.default_scopes.len() + self.optional_scopes.len() > MAX_SCOPES {
            return Err(Error::invalid(
                "scopes",
                format!("more than {MAX_SCOPES} scopes declared"),
            ));
        }
        if self.scope_separator.is_empty()
            || self.scope_separator.len() > 4
            || self.scope_separator.contains(char::is_control)
        {
            return Err(Error::invalid(
                "scope_separator",
                "must be 1 to 4 bytes without control characters",
            ));
        }
        for (k, v) in &self.authorization_params {
            check_extra_param(k, v)?;
        }
        for r in &self.resources {
            if r.fragment().is_some() || r.cannot_be_a_base() {
                return Err(Error::invalid(
                    "resource",
                    "must be an absolute URI without a fragment (RFC 8707)",
                ));
            }
        }
        if let Some(issuer) = &self.issuer {
            check_issuer(issuer)?;
        } else if self.issuer_in_callback {
            return Err(Error::invalid(
                "issuer_in_callback",
                "needs the issuer to compare `iss` with",
            ));
        }
        let mut names = HashSet::new();
        for s in &self.streams {
            if !names.insert(s.name()) {
                return Err(Error::invalid(
                    "streams",
                    format!("`{}` is declared twice", s.name()),
                ));
            }
        }
        let mut names = HashSet::new();
        for a in &self.actions {
            if !names.insert(a.name()) {
                return Err(Error::invalid(
                    "actions",
                    format!("`{}` is declared twice", a.name()),
                ));
            }
        }
        Ok(OAuth2Connector {
            id: self.id,
            info: self.info,
            config: OAuth2Config {
                authorization_url,
                token_url,
                revocation_url: self.revocation_url,
                introspection_url: self.introspection_url,
                discovery_url: self.discovery_url,
                issuer: self.issuer,
                issuer_in_callback: self.issuer_in_callback,
                default_scopes: self.default_scopes,
                optional_scopes: self.optional_scopes,
                scope_separator: self.scope_separator,
                pkce: self.pkce,
                client_auth: self.client_auth,
                client_id,
                client_secret: self.client_secret,
                authorization_params: self.authorization_params,
                resources: self.resources,
                quirks: self.quirks,
                account: self.account,
            },
            streams: self.streams,
            actions: self.actions,
            api_base_url: self.api_base_url,
        })
    }
}

/// An issuer identifier: an https URL (http on loopback) without query or
/// fragment (RFC 8414 §2), at most 512 bytes.
pub(crate) fn check_issuer(issuer: &str) -> Result<()> {
    if issuer.len() > 512 {
        return Err(Error::invalid("issuer", "is longer than 512 bytes"));
    }
    let url = Url::parse(issuer).map_err(|_| Error::invalid("issuer", "is not a URL"))?;
    check_endpoint("issuer", &url)?;
    if url.query().is_some() {
        return Err(Error::invalid("issuer", "must not have a query"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> OAuth2ConnectorBuilder {
        OAuth2Connector::builder("t".parse().unwrap())
            .authorization_url(Url::parse("https://a.example/auth").unwrap())
            .token_url(Url::parse("https://a.example/token").unwrap())
            .client_id("id")
            .client_secret(ClientSecret::new("s"))
    }

    fn reason(b: OAuth2ConnectorBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn minimal_builds_with_safe_defaults() {
        let c = base().build().unwrap();
        let cfg = c.config();
        assert!(cfg.pkce());
        assert_eq!(cfg.client_auth(), ClientAuth::Basic);
        assert_eq!(c.info.name, "t");
    }

    #[test]
    fn each_rule_is_enforced() {
        let no_auth = OAuth2Connector::builder("t".parse().unwrap())
            .token_url(Url::parse("https://a.example/token").unwrap())
            .client_id("id");
        assert!(reason(no_auth).contains("authorization_url"));
        assert!(reason(base().no_client_secret()).contains("client_secret"));
        assert!(reason(base().client_auth(ClientAuth::None)).contains("public client"));
        assert!(reason(base().client_id("")).contains("client_id"));
        assert!(reason(base().client_id("a\nb")).contains("control"));
        assert!(reason(base().scope_separator("")).contains("scope_separator"));
        assert!(reason(base().authorization_param("state", "x")).contains("cannot be overridden"));
        assert!(reason(base().authorization_param("k", "v\r\n")).contains("control"));
        assert!(reason(base().issuer_in_callback(true)).contains("issuer"));
        assert!(reason(base().issuer("https://i.example/?q=1")).contains("query"));
        assert!(reason(base().issuer("http://i.example")).contains("https"));
        assert!(
            reason(base().revocation_url(Url::parse("http://a.example/r").unwrap()))
                .contains("revocation_url")
        );
        assert!(
            reason(base().resource(Url::parse("https://api.example/#x").unwrap()))
                .contains("RFC 8707")
        );
        let many = (0..=MAX_SCOPES).map(|i| Scope::new(format!("s{i}")).unwrap());
        assert!(reason(base().default_scopes(many)).contains("scopes"));
        let s = StreamSpec::new("x").unwrap();
        assert!(reason(base().stream(s.clone()).stream(s)).contains("twice"));
        assert!(
            base()
                .client_auth(ClientAuth::None)
                .no_client_secret()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn into_builder_round_trips() {
        let c = base().issuer("https://a.example").build().unwrap();
        let again = c.clone().into_builder().build().unwrap();
        assert_eq!(again.config().issuer(), Some("https://a.example"));
        assert_eq!(again.config().token_url(), c.config().token_url());
    }
}
