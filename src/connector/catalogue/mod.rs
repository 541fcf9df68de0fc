//! The TOML connector catalogue and its built-in entries.

mod fields;
mod parse;

use fields::Fields;

use std::collections::BTreeMap;

use url::Url;

use super::{AccountSource, ActionSpec, ClientAuth, OAuth2Connector, Quirks, StreamSpec};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Scope};
use crate::secret::ClientSecret;

/// The built-in catalogue, parsed by [`Catalogue::builtin`].
const BUILTIN: &str = include_str!("builtin.toml");

/// The largest catalogue text accepted, in bytes (1 MiB).
const MAX_CATALOGUE_BYTES: usize = 1024 * 1024;

/// How the host's application is registered with a provider: client id,
/// client secret, and the values of the entry's variables.
///
/// ```
/// use consentry::connector::ClientRegistration;
/// use consentry::secret::ClientSecret;
///
/// let reg = ClientRegistration::new("00000000-aaaa-bbbb-cccc-111111111111")
///     .with_secret(ClientSecret::new("from-your-secret-store"))
///     .with_variable("tenant", "contoso.onmicrosoft.com");
/// assert_eq!(format!("{reg:?}").contains("from-your-secret-store"), false);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientRegistration {
    client_id: String,
    client_secret: Option<ClientSecret>,
    variables: Vec<(String, String)>,
}

impl ClientRegistration {
    /// A registration with a client id (and no secret yet).
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// let notion = Catalogue::builtin()?.connector("notion", ClientRegistration::new("public-id"));
    /// // Notion's entry uses client_secret_basic: a registration without a secret is refused.
    /// assert!(notion.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            variables: Vec::new(),
        }
    }

    /// Sets the client secret.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::secret::ClientSecret;
    /// let reg = ClientRegistration::new("app-id").with_secret(ClientSecret::new("from-your-secret-store"));
    /// let notion = Catalogue::builtin()?.connector("notion", reg)?;
    /// assert!(notion.config().client_secret().is_some());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Sets a variable of the entry (`tenant`, `region`, ...).
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::secret::ClientSecret;
    /// let reg = ClientRegistration::new("app-id")
    ///     .with_secret(ClientSecret::new("s"))
    ///     .with_variable("tenant", "contoso.onmicrosoft.com");
    /// let ms = Catalogue::builtin()?.connector("microsoft-tenant", reg)?;
    /// assert!(ms.config().token_url().as_str().contains("/contoso.onmicrosoft.com/"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
struct AccountTemplate {
    url: String,
    id: String,
    email: Option<String>,
    name: Option<String>,
}

/// One provider in a [`Catalogue`], without client credentials.
///
/// ```
/// use consentry::connector::Catalogue;
/// let cat = Catalogue::builtin()?;
/// let ms = cat.get("microsoft-tenant").unwrap();
/// assert_eq!(ms.name(), "Microsoft (single tenant)");
/// assert_eq!(ms.variables(), ["tenant"]);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CatalogueEntry {
    id: ConnectorId,
    name: Option<String>,
    docs_url: Option<Url>,
    icon_url: Option<Url>,
    authorization_url: String,
    token_url: String,
    revocation_url: Option<String>,
    introspection_url: Option<String>,
    discovery_url: Option<String>,
    issuer: Option<String>,
    issuer_in_callback: bool,
    variables: Vec<String>,
    default_scopes: Vec<Scope>,
    optional_scopes: Vec<Scope>,
    scope_separator: Option<String>,
    pkce: bool,
    client_auth: ClientAuth,
    authorization_params: Vec<(String, String)>,
    resources: Vec<Url>,
    quirks: Quirks,
    account: Option<AccountTemplate>,
    streams: Vec<StreamSpec>,
    actions: Vec<ActionSpec>,
    api_base_url: Option<String>,
}

fn check_variable_value(name: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(Error::invalid(
            "catalogue variable",
            format!("`{name}` must be 1 to 128 ASCII letters, digits, `.`, `-` or `_`"),
        ));
    }
    Ok(())
}

fn substitute(template: &str, vars: &[(String, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| Error::invalid("url template", "has an unclosed `{`"))?;
        let name = &after[..close];
        let value = vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::invalid("url template", format!("uses undeclared variable `{name}`"))
            })?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn template_url(what: &'static str, template: &str, vars: &[(String, String)]) -> Result<Url> {
    let s = substitute(template, vars)?;
    Url::parse(&s).map_err(|e| Error::invalid(what, format!("is not a valid URL ({e})")))
}

impl CatalogueEntry {
    /// The connector id.
    ///
    /// ```
    /// let cat = consentry::connector::Catalogue::builtin()?;
    /// assert_eq!(cat.get("spotify").map(|e| e.id().as_str()), Some("spotify"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn id(&self) -> &ConnectorId {
        &self.id
    }

    /// The display name.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// let cat = Catalogue::builtin()?;
    /// assert_eq!(cat.get("github").map(|e| e.name()), Some("GitHub"));
    /// // Without a `name`, the id is the name:
    /// let plain = Catalogue::from_toml(r#"
    ///     [connectors.acme]
    ///     authorization_url = "https://acme.example/a"
    ///     token_url = "https://acme.example/t"
    /// "#)?;
    /// assert_eq!(plain.get("acme").map(|e| e.name()), Some("acme"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }

    /// The variables a [`ClientRegistration`] must supply.
    ///
    /// ```
    /// let cat = consentry::connector::Catalogue::builtin()?;
    /// assert_eq!(cat.get("microsoft-tenant").map(|e| e.variables()), Some(&["tenant".to_owned()][..]));
    /// assert_eq!(cat.get("google").map(|e| e.variables().len()), Some(0));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Builds the connector for `registration`.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// let cat = Catalogue::builtin()?;
    /// let entry = cat.get("microsoft-tenant").unwrap();
    /// // Variable values cannot change the URL's structure.
    /// let evil = ClientRegistration::new("id").with_variable("tenant", "evil.example/x?");
    /// assert!(entry.connector(evil).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a variable is missing, unknown or has a
    /// disallowed value, or if the connector does not validate (a secret
    /// missing for `basic`/`post`, present for `none`).
    pub fn connector(&self, registration: ClientRegistration) -> Result<OAuth2Connector> {
        for (name, value) in &registration.variables {
            if !self.variables.contains(name) {
                return Err(Error::invalid(
                    "catalogue variable",
                    format!("`{name}` is not a variable of connector `{}`", self.id),
                ));
            }
            check_variable_value(name, value)?;
        }
        if let Some(missing) = self
            .variables
            .iter()
            .find(|v| !registration.variables.iter().any(|(n, _)| n == *v))
        {
            return Err(Error::invalid(
                "catalogue variable",
                format!("connector `{}` needs variable `{missing}`", self.id),
            ));
        }
        let vars = &registration.variables;
        let mut b = OAuth2Connector::builder(self.id.clone())
            .name(self.name())
            .authorization_url(template_url(
                "authorization_url",
                &self.authorization_url,
                vars,
            )?)
            .token_url(template_url("token_url", &self.token_url, vars)?)
            .issuer_in_callback(self.issuer_in_callback)
            .default_scopes(self.default_scopes.iter().cloned())
            .optional_scopes(self.optional_scopes.iter().cloned())
            .pkce(self.pkce)
            .client_auth(self.client_auth)
            .client_id(registration.client_id)
            .quirks(self.quirks.clone());
        if let Some(s) = registration.client_secret {
            b = b.client_secret(s);
        }
        if let Some(u) = &self.docs_url {
            b = b.docs_url(u.clone());
        }
        if let Some(u) = &self.icon_url {
            b = b.icon_url(u.clone());
        }
        if let Some(t) = &self.revocation_url {
            b = b.revocation_url(template_url("revocation_url", t, vars)?);
        }
        if let Some(t) = &self.introspection_url {
            b = b.introspection_url(template_url("introspection_url", t, vars)?);
        }
        if let Some(t) = &self.discovery_url {
            b = b.discovery_url(template_url("discovery_url", t, vars)?);
        }
        if let Some(t) = &self.issuer {
            b = b.issuer(substitute(t, vars)?);
        }
        if let Some(sep) = &self.scope_separator {
            b = b.scope_separator(sep.clone());
        }
        for (k, v) in &self.authorization_params {
            b = b.authorization_param(k.clone(), v.clone());
        }
        for r in &self.resources {
            b = b.resource(r.clone());
        }
        if let Some(a) = &self.account {
            let mut src = AccountSource::api(template_url("account.url", &a.url, vars)?, &a.id)?;
            if let Some(p) = &a.email {
                src = src.with_email(p)?;
            }
            if let Some(p) = &a.name {
                src = src.with_name(p)?;
            }
            b = b.account(src);
        }
        if let Some(t) = &self.api_base_url {
            b = b.api_base_url(template_url("api_base_url", t, vars)?);
        }
        for s in &self.streams {
            b = b.stream(s.clone());
        }
        for a in &self.actions {
            b = b.action(a.clone());
        }
        b.build()
    }
}

/// A set of provider definitions read from TOML.
///
/// # Format
///
/// One table per connector under `connectors`, keyed by connector id:
///
/// ```toml
/// [connectors.acme]
/// name = "Acme CRM"                                  # default: the id
/// authorization_url = "https://{region}.acme.example/oauth/authorize"   # required
/// token_url = "https://{region}.acme.example/oauth/token"               # required
/// revocation_url = "https://{region}.acme.example/oauth/revoke"
/// issuer = "https://{region}.acme.example"           # also: introspection_url, discovery_url,
/// issuer_in_callback = true                          #   docs_url, icon_url
/// variables = ["region"]                             # supplied at runtime, see below
/// default_scopes = ["contacts:read"]
/// optional_scopes = ["contacts:write"]
/// scope_separator = " "                              # default " "
/// pkce = true                                        # default true
/// client_auth = "basic"                              # basic (default) | post | none
/// authorization_params = { prompt = "consent" }
/// resources = ["https://api.acme.example/"]          # RFC 8707
///
/// [connectors.acme.quirks]                           # all default to false / "space"
/// errors_with_200 = false
/// scope_format = "space"                             # space | comma | array
/// expires_in_as_string = false
/// token_type_optional = false
/// error_aliases = { bad_code = "invalid_grant" }
///
/// [connectors.acme.account]                          # who the connected account is
/// url = "https://api.acme.example/me"
/// id = "/id"                                         # JSON pointers into the response
/// email = "/email"
/// name = "/display_name"
///
/// [[connectors.acme.streams]]
/// name = "contacts"
/// required_scopes = ["contacts:read"]
/// purposes = ["crm_sync"]
/// cursor = "timestamp"                               # full_refresh | opaque | timestamp | offset
/// page_size = 100
/// interval_minutes = 60                              # how often the scheduler runs it
/// # A request declaration makes the stream fetchable without code
/// # (needs `api_base_url` on the connector, e.g. "https://api.acme.example/v1"):
/// path = "/contacts"                                 # GET {api_base_url}{path}
/// query = { sort = "updated" }
/// records = "/data"                                  # JSON pointer to the array ("" = top level)
/// id = "/id"                                         # JSON pointer to each record's id
/// kind = "contact"                                   # default: the stream name
/// fields = { name = "/full_name", email = "/email" } # keep only these (default: everything)
/// pagination = "page_token"                          # none | page_token | link | offset
/// token_param = "page_token"                         # page_token: query parameter ...
/// token_pointer = "/next_page_token"                 # ... and where the next token is
/// cursor_field = "/updated_at"                       # incremental: RFC 3339 field of each record,
/// cursor_param = "updated_since"                     #   sent as this parameter on the next run
/// lookback_seconds = 300                             #   minus this lookback
///
/// [[connectors.acme.actions]]
/// name = "create_contact"
/// purpose = "crm_sync"
/// required_scopes = ["contacts:write"]
/// ```
///
/// # Client credentials are not in the file
///
/// A catalogue describes providers; it holds no client id and no secret,
/// so it can live in version control. The host supplies them when it asks
/// for a connector, in a [`ClientRegistration`] (read them from its own
/// secret store or environment), together with the values of the entry's
/// `variables` such as a Microsoft tenant. Variables are substituted for
/// `{name}` in the entry's URLs and issuer; their values are restricted to
/// ASCII letters, digits and `. - _` so they cannot change a URL's
/// structure.
///
/// # Example
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration};
///
/// let mut cat = Catalogue::builtin()?;
/// cat.extend_toml(r#"
///     [connectors.acme]
///     name = "Acme"
///     authorization_url = "https://acme.example/authorize"
///     token_url = "https://acme.example/token"
///     client_auth = "none"
/// "#)?;
/// let acme = cat.connector("acme", ClientRegistration::new("public-client"))?;
/// assert_eq!(acme.config().client_id(), "public-client");
/// assert!(cat.get("google").is_some());
///
/// let err = Catalogue::from_toml("[connectors.x]\nauthorization_url = 5").unwrap_err();
/// assert!(err.to_string().contains("connectors.x.authorization_url"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    entries: BTreeMap<ConnectorId, CatalogueEntry>,
}

impl Catalogue {
    /// An empty catalogue.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// let mut cat = Catalogue::new();
    /// assert!(cat.is_empty());
    /// cat.extend_toml(r#"
    ///     [connectors.acme]
    ///     authorization_url = "https://acme.example/a"
    ///     token_url = "https://acme.example/t"
    /// "#)?;
    /// assert_eq!(cat.len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in entries: `google`, `microsoft` (the `common` endpoint),
    /// `microsoft-tenant` (variable `tenant`), `github`, `spotify`, `slack`
    /// and `notion`.
    ///
    /// ```
    /// let cat = consentry::connector::Catalogue::builtin()?;
    /// let ids: Vec<_> = cat.entries().map(|e| e.id().as_str()).collect();
    /// assert_eq!(ids, ["github", "google", "microsoft", "microsoft-tenant", "notion", "slack", "spotify"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// None in practice: the built-in file is checked by the test suite. The
    /// `Result` keeps this function free of panics.
    pub fn builtin() -> Result<Self> {
        Self::from_toml(BUILTIN)
    }

    /// Parses a catalogue.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// let cat = Catalogue::from_toml(r#"
    ///     [connectors.acme]
    ///     authorization_url = "https://acme.example/authorize"
    ///     token_url = "https://acme.example/token"
    /// "#)?;
    /// assert_eq!(cat.len(), 1);
    /// let typo = Catalogue::from_toml("[connectors.acme]\ntokn_url = \"https://acme.example/t\"");
    /// assert!(typo.unwrap_err().to_string().contains("connectors.acme"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`what` = `"catalogue"`) naming the field at
    /// fault (`connectors.acme.token_url: ...`), or the line of a TOML
    /// syntax error.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut cat = Self::new();
        cat.extend_toml(text)?;
        Ok(cat)
    }

    /// Adds the entries of `text`, replacing entries with the same id. On
    /// error nothing is added.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// let mut cat = Catalogue::builtin()?;
    /// let broken = "[connectors.new]\nauthorization_url = \"https://new.example/a\"";
    /// assert!(cat.extend_toml(broken).is_err()); // token_url is missing
    /// assert!(cat.get("new").is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`from_toml`](Self::from_toml).
    pub fn extend_toml(&mut self, text: &str) -> Result<()> {
        if text.len() > MAX_CATALOGUE_BYTES {
            return Err(Error::invalid(
                "catalogue",
                format!(
                    "is {} bytes; the limit is {MAX_CATALOGUE_BYTES}",
                    text.len()
                ),
            ));
        }
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                let end = s.start.min(text.len());
                text.as_bytes()[..end]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            });
            Error::invalid(
                "catalogue",
                format!("TOML syntax error at line {line}: {}", e.message().trim()),
            )
        })?;
        let mut root = Fields::new("", &table);
        let mut added = Vec::new();
        if let Some(connectors) = root.opt_table("connectors")? {
            for (id, value) in connectors_table(&table) {
                let toml::Value::Table(t) = value else {
                    return Err(connectors.err(id, "expected a table"));
                };
                added.push(CatalogueEntry::parse(
                    id,
                    Fields::new(format!("connectors.{id}"), t),
                )?);
            }
        }
        root.finish().map_err(|_| {
            Error::invalid(
                "catalogue",
                "only a `connectors` table is allowed at the top level",
            )
        })?;
        for e in added {
            self.entries.insert(e.id.clone(), e);
        }
        Ok(())
    }

    /// The entry for `id`.
    ///
    /// ```
    /// let cat = consentry::connector::Catalogue::builtin()?;
    /// assert_eq!(cat.get("slack").map(|e| e.name()), Some("Slack"));
    /// assert!(cat.get("myspace").is_none());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn get(&self, id: &str) -> Option<&CatalogueEntry> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// The entries, ordered by id.
    ///
    /// ```
    /// let cat = consentry::connector::Catalogue::builtin()?;
    /// let first = cat.entries().next().map(|e| e.id().as_str());
    /// assert_eq!(first, Some("github")); // ordered by id
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = &CatalogueEntry> {
        self.entries.values()
    }

    /// How many entries there are.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// assert_eq!(Catalogue::builtin()?.len(), 7);
    /// assert_eq!(Catalogue::new().len(), 0);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// use consentry::connector::Catalogue;
    /// assert!(Catalogue::new().is_empty());
    /// assert!(!Catalogue::builtin()?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds connector `id` with the host's client registration.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::secret::ClientSecret;
    /// let cat = Catalogue::builtin()?;
    /// let ms = cat.connector("microsoft-tenant", ClientRegistration::new("app-id")
    ///     .with_secret(ClientSecret::new("secret"))
    ///     .with_variable("tenant", "contoso.onmicrosoft.com"))?;
    /// assert_eq!(ms.config().authorization_url().as_str(),
    ///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
    /// assert!(cat.connector("unknown", ClientRegistration::new("x")).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such entry; otherwise as
    /// [`CatalogueEntry::connector`].
    pub fn connector(&self, id: &str, registration: ClientRegistration) -> Result<OAuth2Connector> {
        self.get(id)
            .ok_or(Error::NotFound {
                what: "catalogue entry",
            })?
            .connector(registration)
    }
}

fn connectors_table(root: &toml::Table) -> impl Iterator<Item = (&str, &toml::Value)> {
    root.get("connectors")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|t| t.iter().map(|(k, v)| (k.as_str(), v)))
}
