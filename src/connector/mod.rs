//! Connectors: what consentry knows about each provider.
//!
//! A [`Connector`] says who a provider is ([`ConnectorInfo`]), how a user
//! authorises access ([`AuthMethod`]: OAuth 2.0, an API key, or nothing),
//! and what data and writes it offers ([`StreamSpec`], [`ActionSpec`]).
//!
//! Most provider differences are data, not code: [`OAuth2Connector`] is a
//! connector that is nothing but data (endpoints, scopes, client
//! authentication, PKCE, quirk flags), built in code with
//! [`OAuth2Connector::builder`], fetched from the provider's metadata with
//! [`OAuth2Connector::discover`], or read from a TOML [`Catalogue`]
//! (which ships built-in entries for Google, Microsoft, GitHub, Spotify,
//! Slack and Notion).
//!
//! ```
//! use consentry::connector::{Catalogue, ClientRegistration, Connector, AuthMethod};
//! use consentry::secret::ClientSecret;
//!
//! let catalogue = Catalogue::builtin()?;
//! let github = catalogue.connector(
//!     "github",
//!     ClientRegistration::new("Iv1.0123456789abcdef").with_secret(ClientSecret::new("s3cret")),
//! )?;
//! assert_eq!(github.info().name, "GitHub");
//! let AuthMethod::OAuth2(oauth) = github.auth() else { unreachable!() };
//! assert_eq!(oauth.token_url().as_str(), "https://github.com/login/oauth/access_token");
//! # Ok::<(), consentry::Error>(())
//! ```

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Purpose, Scope};
use crate::records::{HeldRecord, Insight};

mod builder;
mod catalogue;
mod declarative;
mod discovery;
mod fetch;
mod oauth2;
pub mod pagination;
mod settings;

pub use builder::OAuth2ConnectorBuilder;
pub(crate) use builder::check_extra_param;
pub use catalogue::{Catalogue, CatalogueEntry, ClientRegistration};
pub use declarative::{HttpStream, Pagination};
pub use discovery::{AuthorizationServerMetadata, MAX_DISCOVERY_DOCUMENT_BYTES, discovery_urls};
pub use fetch::{Action, FetchContext, MAX_JSON_BODY, Page};
pub(crate) use fetch::{Transport, parse_json};
pub(crate) use oauth2::check_endpoint;
pub use oauth2::{
    AccountSource, ClientAuth, MAX_SCOPES, OAuth2Config, OAuth2Connector, Quirks, ScopeFormat,
};
pub use settings::{SettingField, SettingKind, SettingsSchema};

/// A provider definition: identity, authorisation method, streams, actions,
/// and the code that fetches streams and performs actions.
///
/// Dyn-compatible: hosts keep connectors as `Arc<dyn Connector>`.
/// [`OAuth2Connector`] implements it for every OAuth 2.0 provider (and
/// fetches streams declared as [`HttpStream`]s); implement it yourself for
/// a provider that needs code. `fetch`, `perform`, `settings` and `derive`
/// have defaults (no fetchable stream, no action, no settings, no insight);
/// implement them with `#[async_trait::async_trait]` on the impl.
///
/// ```
/// use consentry::ConnectorId;
/// use consentry::connector::{ActionSpec, AuthMethod, Connector, ConnectorInfo, StreamSpec};
///
/// #[derive(Debug)]
/// struct Local { id: ConnectorId, info: ConnectorInfo, streams: Vec<StreamSpec> }
///
/// impl Connector for Local {
///     fn id(&self) -> &ConnectorId { &self.id }
///     fn info(&self) -> &ConnectorInfo { &self.info }
///     fn auth(&self) -> AuthMethod<'_> { AuthMethod::None }
///     fn streams(&self) -> &[StreamSpec] { &self.streams }
///     fn actions(&self) -> &[ActionSpec] { &[] }
/// }
///
/// let c: std::sync::Arc<dyn Connector> = std::sync::Arc::new(Local {
///     id: "local-files".parse()?,
///     info: ConnectorInfo::new("Local files"),
///     streams: vec![StreamSpec::new("notes")?],
/// });
/// assert_eq!(c.streams()[0].name(), "notes");
/// # Ok::<(), consentry::Error>(())
/// ```
#[async_trait]
pub trait Connector: Debug + Send + Sync + 'static {
    /// The connector's id, unique in a host.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// assert_eq!(google.id().as_str(), "google");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    fn id(&self) -> &ConnectorId;
    /// Display information.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// assert_eq!(google.info().name, "Google");
    /// assert!(google.info().docs_url.is_some());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    fn info(&self) -> &ConnectorInfo;
    /// How a user authorises access.
    ///
    /// ```
    /// use consentry::connector::{AuthMethod, Connector};
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let AuthMethod::OAuth2(config) = google.auth() else { unreachable!() };
    /// assert_eq!(config.client_id(), "app");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    fn auth(&self) -> AuthMethod<'_>;
    /// The data streams this connector can fetch.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let names: Vec<&str> = google.streams().iter().map(|s| s.name()).collect();
    /// assert_eq!(names, ["calendar_events"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    fn streams(&self) -> &[StreamSpec];
    /// The writes this connector can perform.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// # use consentry::connector::{Catalogue, ClientRegistration};
    /// # let google = Catalogue::builtin()?.connector("google",
    /// #     ClientRegistration::new("app").with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// assert!(google.actions().is_empty()); // the built-in entries declare none
    /// # Ok::<(), consentry::Error>(())
    /// ```
    fn actions(&self) -> &[ActionSpec];

    /// Fetches one page of `stream`, continuing at `cursor` (`None`: from
    /// the start). Requests go through `ctx`, which holds the connection's
    /// credentials.
    ///
    /// # Errors
    /// [`Error::NotFound`] by default: the connector fetches nothing.
    async fn fetch(
        &self,
        ctx: &FetchContext,
        stream: &StreamSpec,
        cursor: Option<&str>,
    ) -> Result<Page> {
        let _ = (ctx, stream, cursor);
        Err(Error::NotFound {
            what: "stream fetcher",
        })
    }

    /// Performs `action` with `input` (the serialized [`Action`] value);
    /// returns its output as JSON.
    ///
    /// # Errors
    /// [`Error::NotFound`] by default: the connector performs nothing.
    async fn perform(
        &self,
        ctx: &FetchContext,
        action: &ActionSpec,
        input: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let _ = (ctx, action, input);
        Err(Error::NotFound {
            what: "action performer",
        })
    }

    /// The settings a user may choose per connection. None by default.
    fn settings(&self) -> &SettingsSchema {
        static NONE: SettingsSchema = SettingsSchema::new();
        &NONE
    }

    /// An insight derived from a stream's records (a genre profile from
    /// top artists or a read shelf). None by default.
    fn derive(&self, stream: &str, records: &[HeldRecord]) -> Option<Insight> {
        let _ = (stream, records);
        None
    }
}

macro_rules! forward_connector {
    ($($wrapper:ident),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: Connector + ?Sized> Connector for $wrapper<T> {
            fn id(&self) -> &ConnectorId { (**self).id() }
            fn info(&self) -> &ConnectorInfo { (**self).info() }
            fn auth(&self) -> AuthMethod<'_> { (**self).auth() }
            fn streams(&self) -> &[StreamSpec] { (**self).streams() }
            fn actions(&self) -> &[ActionSpec] { (**self).actions() }
            async fn fetch(&self, ctx: &FetchContext, stream: &StreamSpec, cursor: Option<&str>) -> Result<Page> {
                (**self).fetch(ctx, stream, cursor).await
            }
            async fn perform(&self, ctx: &FetchContext, action: &ActionSpec, input: serde_json::Value) -> Result<serde_json::Value> {
                (**self).perform(ctx, action, input).await
            }
            fn settings(&self) -> &SettingsSchema { (**self).settings() }
            fn derive(&self, stream: &str, records: &[HeldRecord]) -> Option<Insight> { (**self).derive(stream, records) }
        }
    )*};
}

forward_connector!(Arc, Box);

/// How a user of a connector authorises access.
///
/// ```
/// use consentry::connector::{ApiKeyAuth, AuthMethod};
/// let key = ApiKeyAuth::header("X-Api-Key", None)?;
/// let method = AuthMethod::ApiKey(&key);
/// assert!(matches!(method, AuthMethod::ApiKey(k) if k.name() == "x-api-key"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum AuthMethod<'a> {
    /// OAuth 2.0 authorization code flow with this configuration.
    OAuth2(&'a OAuth2Config),
    /// A key or personal token the user pastes in.
    ApiKey(&'a ApiKeyAuth),
    /// OAuth 1.0a with these client credentials; the user's token
    /// credentials are sealed in the vault
    /// ([`OAuth1Credentials::to_sealable`](crate::oauth::oauth1::OAuth1Credentials::to_sealable))
    /// and every request is signed with HMAC-SHA1.
    OAuth1(&'a crate::oauth::oauth1::OAuth1Credentials),
    /// No credentials (public data, local imports).
    None,
}

/// Display information for a connector.
///
/// ```
/// use consentry::connector::ConnectorInfo;
/// use consentry::url::Url;
/// let info = ConnectorInfo::new("Acme CRM")
///     .with_docs_url(Url::parse("https://docs.acme.example/oauth")?);
/// assert_eq!(info.name, "Acme CRM");
/// assert!(info.icon_url.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectorInfo {
    /// Human-readable name (`"Google"`).
    pub name: String,
    /// An icon to show next to the name.
    pub icon_url: Option<Url>,
    /// The provider's developer documentation.
    pub docs_url: Option<Url>,
}

impl ConnectorInfo {
    /// Information with a name only.
    ///
    /// ```
    /// use consentry::connector::ConnectorInfo;
    /// let info = ConnectorInfo::new("Acme CRM");
    /// assert_eq!(info.name, "Acme CRM");
    /// assert!(info.icon_url.is_none() && info.docs_url.is_none());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            icon_url: None,
            docs_url: None,
        }
    }

    /// Sets the icon URL.
    ///
    /// ```
    /// use consentry::connector::ConnectorInfo;
    /// use consentry::url::Url;
    /// let info = ConnectorInfo::new("Acme").with_icon_url(Url::parse("https://acme.example/icon.svg")?);
    /// assert_eq!(info.icon_url.map(String::from).as_deref(), Some("https://acme.example/icon.svg"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_icon_url(mut self, url: Url) -> Self {
        self.icon_url = Some(url);
        self
    }

    /// Sets the documentation URL.
    ///
    /// ```
    /// use consentry::connector::ConnectorInfo;
    /// use consentry::url::Url;
    /// let info = ConnectorInfo::new("Acme").with_docs_url(Url::parse("https://docs.acme.example/")?);
    /// assert_eq!(info.docs_url.map(String::from).as_deref(), Some("https://docs.acme.example/"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_docs_url(mut self, url: Url) -> Self {
        self.docs_url = Some(url);
        self
    }
}

/// Where an API key goes on each request.
///
/// ```
/// use consentry::connector::ApiKeyAuth;
/// let bearer = ApiKeyAuth::header("Authorization", Some("Bearer"))?;
/// assert_eq!((bearer.name(), bearer.prefix(), bearer.in_query()), ("authorization", Some("Bearer"), false));
/// let query = ApiKeyAuth::query("key")?;
/// assert!(query.in_query());
/// assert!(ApiKeyAuth::header("bad header", None).is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyAuth {
    name: String,
    prefix: Option<String>,
    in_query: bool,
}

impl ApiKeyAuth {
    /// The key goes in header `name`, after `prefix` and a space if given.
    ///
    /// ```
    /// use consentry::connector::ApiKeyAuth;
    /// let key = ApiKeyAuth::header("X-Api-Key", None)?;
    /// assert_eq!((key.name(), key.prefix(), key.in_query()), ("x-api-key", None, false));
    /// assert!(ApiKeyAuth::header("Authorization", Some("Bearer\n")).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is not a valid header name or
    /// `prefix` has characters a header value cannot hold.
    pub fn header(name: &str, prefix: Option<&str>) -> Result<Self> {
        let name = ::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::invalid("api key header", "not a valid header name"))?;
        if let Some(p) = prefix
            && (p.is_empty() || p.len() > 64 || ::http::HeaderValue::from_str(p).is_err())
        {
            return Err(Error::invalid("api key prefix", "not a valid header value"));
        }
        Ok(Self {
            name: name.as_str().to_owned(),
            prefix: prefix.map(str::to_owned),
            in_query: false,
        })
    }

    /// The key goes in query parameter `name`.
    ///
    /// ```
    /// use consentry::connector::ApiKeyAuth;
    /// let key = ApiKeyAuth::query("api_key")?;
    /// assert!(key.in_query());
    /// assert!(ApiKeyAuth::query("api key").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is empty, longer than 64 bytes or
    /// has characters outside ASCII letters, digits and `_ - . :`.
    pub fn query(name: &str) -> Result<Self> {
        crate::ids::check_token("api key parameter", name, 64)?;
        Ok(Self {
            name: name.to_owned(),
            prefix: None,
            in_query: true,
        })
    }

    /// The header name (lowercase) or query parameter name.
    ///
    /// ```
    /// use consentry::connector::ApiKeyAuth;
    /// assert_eq!(ApiKeyAuth::header("X-Api-Key", None)?.name(), "x-api-key"); // lowercased
    /// assert_eq!(ApiKeyAuth::query("apiKey")?.name(), "apiKey");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value prefix (`Bearer`, `token`), if any.
    ///
    /// ```
    /// use consentry::connector::ApiKeyAuth;
    /// assert_eq!(ApiKeyAuth::header("Authorization", Some("token"))?.prefix(), Some("token"));
    /// assert_eq!(ApiKeyAuth::query("key")?.prefix(), None);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Whether the key goes in the query string rather than a header.
    ///
    /// ```
    /// use consentry::connector::ApiKeyAuth;
    /// assert!(ApiKeyAuth::query("key")?.in_query());
    /// assert!(!ApiKeyAuth::header("X-Key", None)?.in_query());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn in_query(&self) -> bool {
        self.in_query
    }
}

/// How a stream remembers where the last fetch stopped.
///
/// ```
/// use consentry::connector::{CursorKind, StreamSpec};
/// let s = StreamSpec::new("events")?.with_cursor(CursorKind::Timestamp);
/// assert_eq!(s.cursor(), CursorKind::Timestamp);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CursorKind {
    /// No cursor: every fetch reads everything.
    #[default]
    FullRefresh,
    /// An opaque token from the provider (a sync token, a page token).
    Opaque,
    /// A timestamp: fetch what changed since.
    Timestamp,
    /// A numeric offset.
    Offset,
}

/// The longest stream or action name, in bytes.
const MAX_SPEC_NAME: usize = 64;

/// A data stream a connector can fetch: what it needs and what it is for.
///
/// Fetched by its connector's [`Connector::fetch`], run by the sync runtime.
///
/// ```
/// use consentry::{Purpose, Scope};
/// use consentry::connector::{CursorKind, StreamSpec};
///
/// let events = StreamSpec::new("calendar_events")?
///     .with_required_scopes([Scope::new("https://www.googleapis.com/auth/calendar.readonly")?])
///     .with_purposes([Purpose::new("reminders")?])
///     .with_cursor(CursorKind::Opaque)
///     .with_page_size(250);
/// assert_eq!(events.name(), "calendar_events");
/// assert_eq!(events.page_size(), Some(250));
/// assert_eq!(events.purposes()[0].as_str(), "reminders");
/// assert!(StreamSpec::new("no spaces").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    name: String,
    required_scopes: Vec<Scope>,
    purposes: Vec<Purpose>,
    cursor: CursorKind,
    page_size: Option<u32>,
    interval: Option<Duration>,
    http: Option<HttpStream>,
}

impl StreamSpec {
    /// A stream called `name`, with no scopes, no purposes, no cursor.
    ///
    /// ```
    /// use consentry::connector::{CursorKind, StreamSpec};
    /// let s = StreamSpec::new("contacts")?;
    /// assert_eq!((s.name(), s.cursor(), s.page_size()), ("contacts", CursorKind::FullRefresh, None));
    /// assert!(StreamSpec::new("").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is empty, longer than 64 bytes, or
    /// has characters outside ASCII letters, digits and `_ - . :`.
    pub fn new(name: &str) -> Result<Self> {
        crate::ids::check_token("stream name", name, MAX_SPEC_NAME)?;
        Ok(Self {
            name: name.to_owned(),
            required_scopes: Vec::new(),
            purposes: Vec::new(),
            cursor: CursorKind::FullRefresh,
            page_size: None,
            interval: None,
            http: None,
        })
    }

    /// Sets how often the scheduler runs the stream (default: the
    /// runtime's default interval, one hour).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::connector::StreamSpec;
    /// let s = StreamSpec::new("events")?.with_interval(Duration::from_secs(900));
    /// assert_eq!(s.interval(), Some(Duration::from_secs(900)));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Declares how to fetch the stream with a GET request
    /// ([`OAuth2Connector`] fetches declared streams without code).
    ///
    /// ```
    /// use consentry::connector::{HttpStream, StreamSpec};
    /// let s = StreamSpec::new("contacts")?.with_http(HttpStream::new("/v1/contacts", "/data", "/id")?);
    /// assert_eq!(s.http().map(HttpStream::path), Some("/v1/contacts"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_http(mut self, http: HttpStream) -> Self {
        self.http = Some(http);
        self
    }

    /// How often the scheduler runs it, if set.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert_eq!(StreamSpec::new("events")?.interval(), None); // the runtime's default
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The declared request, if any.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert!(StreamSpec::new("events")?.http().is_none()); // fetched by the connector's code
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn http(&self) -> Option<&HttpStream> {
        self.http.as_ref()
    }

    /// Sets the scopes the stream needs.
    ///
    /// ```
    /// use consentry::Scope;
    /// use consentry::connector::StreamSpec;
    /// let s = StreamSpec::new("contacts")?.with_required_scopes([Scope::new("contacts.read")?]);
    /// assert_eq!(s.required_scopes(), [Scope::new("contacts.read")?]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_required_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.required_scopes = scopes.into_iter().collect();
        self
    }

    /// Sets the purposes the stream's data may be used for.
    ///
    /// ```
    /// use consentry::Purpose;
    /// use consentry::connector::StreamSpec;
    /// let s = StreamSpec::new("contacts")?.with_purposes([Purpose::new("crm_sync")?]);
    /// assert_eq!(s.purposes(), [Purpose::new("crm_sync")?]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_purposes(mut self, purposes: impl IntoIterator<Item = Purpose>) -> Self {
        self.purposes = purposes.into_iter().collect();
        self
    }

    /// Sets the cursor kind.
    ///
    /// ```
    /// use consentry::connector::{CursorKind, StreamSpec};
    /// let s = StreamSpec::new("top_artists")?.with_cursor(CursorKind::Offset);
    /// assert_eq!(s.cursor(), CursorKind::Offset);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_cursor(mut self, cursor: CursorKind) -> Self {
        self.cursor = cursor;
        self
    }

    /// Sets the page size to request.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// let s = StreamSpec::new("events")?.with_page_size(250);
    /// assert_eq!(s.page_size(), Some(250));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// The stream's name.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert_eq!(StreamSpec::new("calendar_events")?.name(), "calendar_events");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes the stream needs.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert!(StreamSpec::new("notes")?.required_scopes().is_empty()); // none until set
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn required_scopes(&self) -> &[Scope] {
        &self.required_scopes
    }

    /// The purposes the stream's data may be used for.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert!(StreamSpec::new("notes")?.purposes().is_empty()); // none until set
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }

    /// How the stream resumes.
    ///
    /// ```
    /// use consentry::connector::{CursorKind, StreamSpec};
    /// assert_eq!(StreamSpec::new("notes")?.cursor(), CursorKind::FullRefresh); // the default
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn cursor(&self) -> CursorKind {
        self.cursor
    }

    /// The page size to request, if the provider takes one.
    ///
    /// ```
    /// use consentry::connector::StreamSpec;
    /// assert_eq!(StreamSpec::new("notes")?.page_size(), None); // the default
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn page_size(&self) -> Option<u32> {
        self.page_size
    }
}

/// A write a connector can perform on the user's behalf.
///
/// ```
/// use consentry::{Purpose, Scope};
/// use consentry::connector::ActionSpec;
///
/// let save = ActionSpec::new("save_note", Purpose::new("notes_export")?)?
///     .with_required_scopes([Scope::new("insert_content")?]);
/// assert_eq!(save.name(), "save_note");
/// assert_eq!(save.purpose().as_str(), "notes_export");
/// assert_eq!(save.required_scopes().len(), 1);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    name: String,
    required_scopes: Vec<Scope>,
    purpose: Purpose,
}

impl ActionSpec {
    /// An action called `name`, performed for `purpose`.
    ///
    /// ```
    /// use consentry::Purpose;
    /// use consentry::connector::ActionSpec;
    /// let a = ActionSpec::new("send_message", Purpose::new("notifications")?)?;
    /// assert_eq!(a.name(), "send_message");
    /// assert!(ActionSpec::new("send message", Purpose::new("notifications")?).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is not a valid stream/action name
    /// (see [`StreamSpec::new`]).
    pub fn new(name: &str, purpose: Purpose) -> Result<Self> {
        crate::ids::check_token("action name", name, MAX_SPEC_NAME)?;
        Ok(Self {
            name: name.to_owned(),
            required_scopes: Vec::new(),
            purpose,
        })
    }

    /// Sets the scopes the action needs.
    ///
    /// ```
    /// use consentry::{Purpose, Scope};
    /// use consentry::connector::ActionSpec;
    /// let a = ActionSpec::new("post", Purpose::new("sharing")?)?
    ///     .with_required_scopes([Scope::new("chat:write")?]);
    /// assert_eq!(a.required_scopes(), [Scope::new("chat:write")?]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_required_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.required_scopes = scopes.into_iter().collect();
        self
    }

    /// The action's name.
    ///
    /// ```
    /// use consentry::Purpose;
    /// use consentry::connector::ActionSpec;
    /// assert_eq!(ActionSpec::new("post", Purpose::new("sharing")?)?.name(), "post");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes the action needs.
    ///
    /// ```
    /// use consentry::Purpose;
    /// use consentry::connector::ActionSpec;
    /// assert!(ActionSpec::new("post", Purpose::new("sharing")?)?.required_scopes().is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn required_scopes(&self) -> &[Scope] {
        &self.required_scopes
    }

    /// The purpose the action serves.
    ///
    /// ```
    /// use consentry::Purpose;
    /// use consentry::connector::ActionSpec;
    /// let a = ActionSpec::new("post", Purpose::new("sharing")?)?;
    /// assert_eq!(a.purpose(), &Purpose::new("sharing")?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }
}
