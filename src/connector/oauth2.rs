//! [`OAuth2Config`] and [`OAuth2Connector`]: an OAuth 2.0 provider as data.

use url::{Host, Url};

use super::{
    ActionSpec, AuthMethod, Connector, ConnectorInfo, FetchContext, OAuth2ConnectorBuilder, Page,
    StreamSpec,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Scope};
use crate::oauth::OAuthErrorCode;
use crate::secret::ClientSecret;

/// The most scopes a connector declares, a request asks for, or a token
/// response grants.
///
/// ```
/// use consentry::Scope;
/// use consentry::connector::{ClientAuth, OAuth2Connector, MAX_SCOPES};
/// use consentry::url::Url;
/// let too_many = (0..=MAX_SCOPES).map(|i| Scope::new(format!("scope{i}"))).collect::<Result<Vec<_>, _>>()?;
/// let result = OAuth2Connector::builder("acme".parse()?)
///     .authorization_url(Url::parse("https://acme.example/authorize")?)
///     .token_url(Url::parse("https://acme.example/token")?)
///     .client_id("app").client_auth(ClientAuth::None)
///     .default_scopes(too_many)
///     .build();
/// assert!(result.unwrap_err().to_string().contains("more than 256 scopes"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_SCOPES: usize = 256;

/// How the client authenticates at the token and revocation endpoints.
///
/// ```
/// use consentry::connector::ClientAuth;
/// assert_eq!(ClientAuth::Basic.as_str(), "client_secret_basic");
/// assert_eq!(ClientAuth::parse("none"), Some(ClientAuth::None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded client id
    /// and secret (RFC 6749 §2.3.1). The default.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form
    /// body.
    Post,
    /// `none`: a public client; only `client_id` is sent, PKCE protects the
    /// code.
    None,
}

impl ClientAuth {
    /// The RFC 8414 / OpenID Connect name of the method.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(ClientAuth::Post.as_str(), "client_secret_post");
    /// assert_eq!(ClientAuth::None.as_str(), "none");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::None => "none",
        }
    }

    /// Parses `basic` / `post` / `none` or the RFC 8414 names.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// assert_eq!(ClientAuth::parse("post"), Some(ClientAuth::Post));
    /// assert_eq!(ClientAuth::parse("client_secret_basic"), Some(ClientAuth::Basic));
    /// assert_eq!(ClientAuth::parse("private_key_jwt"), None); // not supported
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "basic" | "client_secret_basic" => Some(Self::Basic),
            "post" | "client_secret_post" => Some(Self::Post),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// How a provider writes the `scope` of a token response.
///
/// A JSON array is accepted whatever the format; the format decides how a
/// string is split, which is ambiguous: `"repo,user"` is two scopes at
/// GitHub and would be one (valid) scope token under RFC 6749.
///
/// ```
/// use consentry::connector::ScopeFormat;
/// assert_eq!(ScopeFormat::default(), ScopeFormat::SpaceString);
/// assert_eq!(ScopeFormat::parse("comma"), Some(ScopeFormat::CommaString));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ScopeFormat {
    /// Space-separated string (RFC 6749).
    #[default]
    SpaceString,
    /// Comma-separated string (GitHub, Slack); spaces around commas are
    /// ignored.
    CommaString,
    /// JSON array of strings (Twitch and others); a string is split on
    /// spaces.
    Array,
}

impl ScopeFormat {
    /// Parses `space` / `comma` / `array`.
    ///
    /// ```
    /// use consentry::connector::ScopeFormat;
    /// assert_eq!(ScopeFormat::parse("array"), Some(ScopeFormat::Array));
    /// assert_eq!(ScopeFormat::parse("comma-separated"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "space" => Some(Self::SpaceString),
            "comma" => Some(Self::CommaString),
            "array" => Some(Self::Array),
            _ => None,
        }
    }
}

/// Departures from RFC 6749 that a provider's token endpoint is known for.
///
/// The token response parser is lenient wherever that is unambiguous (a
/// JSON array `scope`, an `error` object in a 200 response without an
/// `access_token`, unknown fields); these flags settle the rest.
///
/// ```
/// use consentry::connector::{Quirks, ScopeFormat};
/// use consentry::oauth::OAuthErrorCode;
///
/// let mut github = Quirks::default();
/// github.errors_with_200 = true;
/// github.scope_format = ScopeFormat::CommaString;
/// github.error_aliases.push(("bad_verification_code".into(), OAuthErrorCode::InvalidGrant));
/// assert!(!github.token_type_optional);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Quirks {
    /// Errors come with HTTP 200: an `error` field (or Slack's
    /// `"ok": false`) makes the response an error even when an
    /// `access_token` is present too.
    pub errors_with_200: bool,
    /// How a string `scope` is split.
    pub scope_format: ScopeFormat,
    /// `expires_in` may be a string (`"3599"`). Without this flag a string
    /// is refused as a malformed response.
    pub expires_in_as_string: bool,
    /// `token_type` may be missing (taken as `Bearer`). Without this flag
    /// its absence is refused, as RFC 6749 §5.1 requires it.
    pub token_type_optional: bool,
    /// Provider-specific error codes and the standard code each means, such
    /// as GitHub's `bad_verification_code` → `invalid_grant`.
    pub error_aliases: Vec<(String, OAuthErrorCode)>,
}

impl Quirks {
    /// Maps a wire error code through [`Quirks::error_aliases`] to an
    /// [`OAuthErrorCode`].
    ///
    /// ```
    /// use consentry::connector::Quirks;
    /// use consentry::oauth::OAuthErrorCode;
    /// let mut q = Quirks::default();
    /// q.error_aliases.push(("invalid_code".into(), OAuthErrorCode::InvalidGrant));
    /// assert_eq!(q.error_code("invalid_code"), OAuthErrorCode::InvalidGrant);
    /// assert_eq!(q.error_code("invalid_client"), OAuthErrorCode::InvalidClient);
    /// ```
    pub fn error_code(&self, wire: &str) -> OAuthErrorCode {
        self.error_aliases
            .iter()
            .find(|(alias, _)| alias == wire)
            .map_or_else(|| OAuthErrorCode::parse(wire), |(_, code)| code.clone())
    }
}

/// Where a connected account's identity (id, email, name) comes from: an
/// endpoint called with the new access token, and JSON pointers (RFC 6901)
/// into its response.
///
/// ```
/// use consentry::connector::AccountSource;
/// use consentry::url::Url;
///
/// let oidc = AccountSource::userinfo(Url::parse("https://openidconnect.googleapis.com/v1/userinfo")?);
/// assert_eq!((oidc.id_pointer(), oidc.email_pointer()), ("/sub", Some("/email")));
///
/// let github = AccountSource::api(Url::parse("https://api.github.com/user")?, "/id")?
///     .with_email("/email")?
///     .with_name("/login")?;
/// assert_eq!(github.name_pointer(), Some("/login"));
/// assert!(AccountSource::api(Url::parse("https://x.example/me")?, "id").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSource {
    url: Url,
    id: String,
    email: Option<String>,
    name: Option<String>,
}

fn check_pointer(what: &'static str, pointer: &str) -> Result<()> {
    if !pointer.starts_with('/') || pointer.len() > 256 || pointer.contains(char::is_control) {
        return Err(Error::invalid(
            what,
            "must be a JSON pointer such as `/sub` (starts with `/`, at most 256 bytes)",
        ));
    }
    Ok(())
}

impl AccountSource {
    /// An OpenID Connect userinfo endpoint: `sub`, `email`, `name`.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::userinfo(Url::parse("https://openidconnect.googleapis.com/v1/userinfo")?);
    /// assert_eq!(src.id_pointer(), "/sub");
    /// assert_eq!((src.email_pointer(), src.name_pointer()), (Some("/email"), Some("/name")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn userinfo(url: Url) -> Self {
        Self {
            url,
            id: "/sub".into(),
            email: Some("/email".into()),
            name: Some("/name".into()),
        }
    }

    /// A provider API endpoint whose response holds the account id at
    /// `id_pointer`.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://api.acme.example/me")?, "/user/id")?;
    /// assert_eq!((src.id_pointer(), src.email_pointer()), ("/user/id", None));
    /// assert!(AccountSource::api(Url::parse("https://api.acme.example/me")?, "user.id").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `id_pointer` is not a JSON pointer.
    pub fn api(url: Url, id_pointer: &str) -> Result<Self> {
        check_pointer("account id pointer", id_pointer)?;
        Ok(Self {
            url,
            id: id_pointer.to_owned(),
            email: None,
            name: None,
        })
    }

    /// Reads the email at `pointer`.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://api.acme.example/me")?, "/id")?
    ///     .with_email("/contact/email")?;
    /// assert_eq!(src.email_pointer(), Some("/contact/email"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `pointer` is not a JSON pointer.
    pub fn with_email(mut self, pointer: &str) -> Result<Self> {
        check_pointer("account email pointer", pointer)?;
        self.email = Some(pointer.to_owned());
        Ok(self)
    }

    /// Reads the display name at `pointer`.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://api.github.com/user")?, "/id")?.with_name("/login")?;
    /// assert_eq!(src.name_pointer(), Some("/login"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `pointer` is not a JSON pointer.
    pub fn with_name(mut self, pointer: &str) -> Result<Self> {
        check_pointer("account name pointer", pointer)?;
        self.name = Some(pointer.to_owned());
        Ok(self)
    }

    /// The endpoint to call with the access token.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://api.spotify.com/v1/me")?, "/id")?;
    /// assert_eq!(src.url().as_str(), "https://api.spotify.com/v1/me");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Where the account id is.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://slack.com/api/auth.test")?, "/user_id")?;
    /// assert_eq!(src.id_pointer(), "/user_id");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id_pointer(&self) -> &str {
        &self.id
    }

    /// Where the email is, if the provider gives one.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::api(Url::parse("https://slack.com/api/auth.test")?, "/user_id")?;
    /// assert_eq!(src.email_pointer(), None); // until with_email
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn email_pointer(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Where the display name is, if the provider gives one.
    ///
    /// ```
    /// use consentry::connector::AccountSource;
    /// use consentry::url::Url;
    /// let src = AccountSource::userinfo(Url::parse("https://id.example/userinfo")?);
    /// assert_eq!(src.name_pointer(), Some("/name"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name_pointer(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Whether `url` is an acceptable endpoint: `https`, or `http` on a
/// loopback host (for local development and test servers), with no
/// credentials and no fragment.
pub(crate) fn check_endpoint(what: &'static str, url: &Url) -> Result<()> {
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => {
            return Err(Error::invalid(
                what,
                "must be an https URL (plain http is allowed only on loopback hosts)",
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(what, "must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(Error::invalid(what, "must not have a fragment"));
    }
    Ok(())
}

/// An OAuth 2.0 provider's configuration: endpoints, client, scopes, PKCE,
/// quirks. Everything [`crate::oauth`] needs to build requests and parse
/// responses for it.
///
/// Built and validated by [`OAuth2Connector::builder`]; read through
/// [`OAuth2Connector::config`] or [`AuthMethod::OAuth2`].
///
/// ```
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("acme".parse()?)
///     .authorization_url(Url::parse("https://auth.acme.example/authorize")?)
///     .token_url(Url::parse("https://auth.acme.example/token")?)
///     .client_id("app-1")
///     .client_auth(ClientAuth::None)
///     .default_scopes(["read".parse()?])
///     .build()?;
/// let cfg = c.config();
/// assert_eq!(cfg.client_id(), "app-1");
/// assert!(cfg.pkce());
/// assert_eq!(cfg.scope_separator(), " ");
/// assert!(cfg.revocation_url().is_none());
/// let asked = cfg.request_scopes(&["write".parse()?, "read".parse()?]);
/// assert_eq!(asked.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["read", "write"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub(super) authorization_url: Url,
    pub(super) token_url: Url,
    pub(super) revocation_url: Option<Url>,
    pub(super) introspection_url: Option<Url>,
    pub(super) discovery_url: Option<Url>,
    pub(super) issuer: Option<String>,
    pub(super) issuer_in_callback: bool,
    pub(super) default_scopes: Vec<Scope>,
    pub(super) optional_scopes: Vec<Scope>,
    pub(super) scope_separator: String,
    pub(super) pkce: bool,
    pub(super) client_auth: ClientAuth,
    pub(super) client_id: String,
    pub(super) client_secret: Option<ClientSecret>,
    pub(super) authorization_params: Vec<(String, String)>,
    pub(super) resources: Vec<Url>,
    pub(super) quirks: Quirks,
    pub(super) account: Option<AccountSource>,
}

impl OAuth2Config {
    /// The authorization endpoint.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.authorization_url().as_str(), "https://accounts.google.com/o/oauth2/v2/auth");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn authorization_url(&self) -> &Url {
        &self.authorization_url
    }

    /// The token endpoint.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.token_url().as_str(), "https://oauth2.googleapis.com/token");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The RFC 7009 revocation endpoint, if the provider has one.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.revocation_url().map(|u| u.as_str()), Some("https://oauth2.googleapis.com/revoke"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn revocation_url(&self) -> Option<&Url> {
        self.revocation_url.as_ref()
    }

    /// The RFC 7662 introspection endpoint, if known.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// assert!(acme.clone().build()?.config().introspection_url().is_none());
    /// let c = acme.introspection_url(Url::parse("https://acme.example/introspect")?).build()?;
    /// assert_eq!(c.config().introspection_url().map(Url::as_str), Some("https://acme.example/introspect"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn introspection_url(&self) -> Option<&Url> {
        self.introspection_url.as_ref()
    }

    /// The metadata document this configuration was discovered from, if any.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.discovery_url().map(|u| u.as_str()),
    ///     Some("https://accounts.google.com/.well-known/openid-configuration"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn discovery_url(&self) -> Option<&Url> {
        self.discovery_url.as_ref()
    }

    /// The authorization server's issuer identifier, exactly as the provider
    /// writes it.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.issuer(), Some("https://accounts.google.com"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Whether the provider puts `iss` in every authorization response
    /// (RFC 9207); callbacks without it are then refused.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert!(!cfg.issuer_in_callback()); // Google does not advertise RFC 9207
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn issuer_in_callback(&self) -> bool {
        self.issuer_in_callback
    }

    /// Scopes requested on every authorization.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// let scopes: Vec<&str> = cfg.default_scopes().iter().map(|s| s.as_str()).collect();
    /// assert_eq!(scopes, ["openid", "email", "profile"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn default_scopes(&self) -> &[Scope] {
        &self.default_scopes
    }

    /// Scopes a host may additionally request.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// let calendar = "https://www.googleapis.com/auth/calendar.readonly".parse()?;
    /// assert!(cfg.optional_scopes().contains(&calendar));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn optional_scopes(&self) -> &[Scope] {
        &self.optional_scopes
    }

    /// The separator written between scopes in the authorization request.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.scope_separator(), " ");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn scope_separator(&self) -> &str {
        &self.scope_separator
    }

    /// Whether PKCE (S256) is used. On unless turned off for a provider
    /// that breaks with it.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert!(cfg.pkce());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn pkce(&self) -> bool {
        self.pkce
    }

    /// How the client authenticates at the token endpoint.
    ///
    /// ```
    /// use consentry::connector::ClientAuth;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.client_auth(), ClientAuth::Basic);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// The client id.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.client_id(), "app-id");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret (none for a public client).
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert_eq!(cfg.client_secret().map(|s| s.expose_secret()), Some("s"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        self.client_secret.as_ref()
    }

    /// Extra parameters sent with every authorization request (Google's
    /// `access_type=offline`).
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// let params: Vec<(&str, &str)> =
    ///     cfg.authorization_params().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    /// assert_eq!(params, [("access_type", "offline"), ("prompt", "consent")]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn authorization_params(&self) -> &[(String, String)] {
        &self.authorization_params
    }

    /// RFC 8707 resource indicators sent with authorization and token
    /// requests.
    ///
    /// ```
    /// # use consentry::connector::{ClientAuth, OAuth2Connector};
    /// # use consentry::url::Url;
    /// # let acme = OAuth2Connector::builder("acme".parse()?)
    /// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
    /// #     .token_url(Url::parse("https://acme.example/token")?)
    /// #     .client_id("app").client_auth(ClientAuth::None);
    /// let c = acme.resource(Url::parse("https://api.acme.example/")?).build()?;
    /// assert_eq!(c.config().resources().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resources(&self) -> &[Url] {
        &self.resources
    }

    /// The provider's departures from the RFC.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// assert!(!cfg.quirks().errors_with_200); // Google follows RFC 6749 here
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    /// Where the connected account's identity comes from.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// let userinfo = cfg.account().map(|a| a.url().as_str());
    /// assert_eq!(userinfo, Some("https://openidconnect.googleapis.com/v1/userinfo"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn account(&self) -> Option<&AccountSource> {
        self.account.as_ref()
    }

    /// The scopes to request: the default scopes, then each of `requested`
    /// not already among them, in order.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let cfg = google.config();
    /// let calendar = "https://www.googleapis.com/auth/calendar.readonly".parse()?;
    /// let asked = cfg.request_scopes(&[calendar, "email".parse()?]);
    /// assert_eq!(asked.len(), 4); // openid email profile + calendar; email is not repeated
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn request_scopes(&self, requested: &[Scope]) -> Vec<Scope> {
        let mut out = self.default_scopes.clone();
        for s in requested {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}

/// A connector that is pure data: an OAuth 2.0 provider's [`OAuth2Config`]
/// plus display information and declared streams and actions.
///
/// Build one with [`OAuth2Connector::builder`], from a [`Catalogue`](super::Catalogue),
/// or by discovery ([`OAuth2Connector::discover`]).
///
/// ```
/// use consentry::connector::{Connector, OAuth2Connector, AuthMethod};
/// use consentry::secret::ClientSecret;
/// use consentry::url::Url;
///
/// let c = OAuth2Connector::builder("acme".parse()?)
///     .name("Acme")
///     .authorization_url(Url::parse("https://acme.example/oauth/authorize")?)
///     .token_url(Url::parse("https://acme.example/oauth/token")?)
///     .client_id("id")
///     .client_secret(ClientSecret::new("secret"))
///     .build()?;
/// assert_eq!(c.id().as_str(), "acme");
/// assert_eq!(c.info().name, "Acme");
/// assert!(matches!(c.auth(), AuthMethod::OAuth2(cfg) if cfg.client_id() == "id"));
/// // Change something and rebuild:
/// let c2 = c.into_builder().pkce(false).build()?;
/// assert!(!c2.config().pkce());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OAuth2Connector {
    pub(super) id: ConnectorId,
    pub(super) info: ConnectorInfo,
    pub(super) config: OAuth2Config,
    pub(super) streams: Vec<StreamSpec>,
    pub(super) actions: Vec<ActionSpec>,
    pub(super) api_base_url: Option<Url>,
}

impl OAuth2Connector {
    /// The provider API's base URL for declared streams, if set.
    ///
    /// ```
    /// use consentry::connector::{HttpStream, StreamSpec};
    /// use consentry::url::Url;
    /// let plain = consentry::integrations::doc_support::connector()?;
    /// assert_eq!(plain.api_base_url(), None);
    /// let declared = plain.into_builder()
    ///     .api_base_url(Url::parse("https://api.acme.example/v2")?)
    ///     .stream(StreamSpec::new("contacts")?.with_http(HttpStream::new("/contacts", "/data", "/id")?))
    ///     .build()?;
    /// assert_eq!(declared.api_base_url().map(Url::as_str), Some("https://api.acme.example/v2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn api_base_url(&self) -> Option<&Url> {
        self.api_base_url.as_ref()
    }

    /// A builder for a connector with id `id`.
    ///
    /// ```
    /// use consentry::connector::{ClientAuth, Connector, OAuth2Connector};
    /// use consentry::url::Url;
    /// let c = OAuth2Connector::builder("acme".parse()?)
    ///     .authorization_url(Url::parse("https://acme.example/authorize")?)
    ///     .token_url(Url::parse("https://acme.example/token")?)
    ///     .client_id("app").client_auth(ClientAuth::None)
    ///     .build()?;
    /// assert_eq!(c.id().as_str(), "acme");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(id: ConnectorId) -> OAuth2ConnectorBuilder {
        OAuth2ConnectorBuilder::new(id)
    }

    /// The OAuth 2.0 configuration.
    ///
    /// ```
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// assert_eq!(google.config().token_url().as_str(), "https://oauth2.googleapis.com/token");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn config(&self) -> &OAuth2Config {
        &self.config
    }

    /// A builder holding this connector's settings, to change some and
    /// build again.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app-id").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let google = google.into_builder().name("Google Workspace").build()?;
    /// assert_eq!(google.info().name, "Google Workspace");
    /// assert!(google.config().pkce()); // everything else is kept
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn into_builder(self) -> OAuth2ConnectorBuilder {
        OAuth2ConnectorBuilder::from_connector(self)
    }
}

#[async_trait::async_trait]
impl Connector for OAuth2Connector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn auth(&self) -> AuthMethod<'_> {
        AuthMethod::OAuth2(&self.config)
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }

    /// Fetches streams declared with [`StreamSpec::with_http`].
    async fn fetch(
        &self,
        ctx: &FetchContext,
        stream: &StreamSpec,
        cursor: Option<&str>,
    ) -> Result<Page> {
        match (stream.http(), &self.api_base_url) {
            (Some(def), Some(base)) => {
                super::declarative::fetch(ctx, base, def, stream.name(), stream.page_size(), cursor)
                    .await
            }
            _ => Err(Error::NotFound {
                what: "stream request declaration",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_or_loopback_http() {
        for ok in [
            "https://example.com/token",
            "http://127.0.0.1:8080/token",
            "http://localhost/token",
            "http://[::1]:9000/t",
        ] {
            assert!(
                check_endpoint("e", &Url::parse(ok).unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://example.com/token",
            "http://10.0.0.1/token",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "data:text/plain,hi",
        ] {
            assert!(
                check_endpoint("e", &Url::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn quirk_aliases_map_codes() {
        let mut q = Quirks::default();
        q.error_aliases
            .push(("bad_refresh_token".into(), OAuthErrorCode::InvalidGrant));
        assert_eq!(
            q.error_code("bad_refresh_token"),
            OAuthErrorCode::InvalidGrant
        );
        assert_eq!(
            q.error_code("something_else"),
            OAuthErrorCode::Other("something_else".into())
        );
    }
}
