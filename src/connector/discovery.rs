//! Authorization server metadata: RFC 8414 and OpenID Connect discovery.
//!
//! [`discovery_urls`] lists where an issuer's metadata may live;
//! [`AuthorizationServerMetadata::parse`] checks one document (size, JSON,
//! and an `issuer` **exactly** equal to the expected one, so a document
//! cannot redirect a client to another server's endpoints);
//! [`OAuth2Connector::discover`] and [`OAuth2Connector::discover_from`] run
//! the two over an [`HttpClient`].

use serde_json::{Map, Value};
use url::Url;

use super::builder::check_issuer;
use super::oauth2::check_endpoint;
use super::{AccountSource, ClientAuth, OAuth2Connector, OAuth2ConnectorBuilder};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::ids::{ConnectorId, Scope};
use crate::oauth::json_object;
use crate::secret::ClientSecret;

/// The largest metadata document accepted, in bytes (256 KiB).
///
/// ```
/// use consentry::Error;
/// use consentry::connector::{AuthorizationServerMetadata, MAX_DISCOVERY_DOCUMENT_BYTES};
/// use consentry::http::Response;
/// use consentry::url::Url;
/// let huge = Response::new(vec![b' '; MAX_DISCOVERY_DOCUMENT_BYTES + 1]);
/// let err = AuthorizationServerMetadata::parse(&huge, &Url::parse("https://as.example")?).unwrap_err();
/// assert!(matches!(err, Error::Discovery { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_DISCOVERY_DOCUMENT_BYTES: usize = 256 * 1024;

/// The most entries kept from a `*_supported` list.
const MAX_LIST: usize = 1024;

/// Where `issuer`'s metadata may be, in the order to try: RFC 8414's
/// `/.well-known/oauth-authorization-server` (inserted between host and
/// path), then OpenID Connect's `/.well-known/openid-configuration`
/// inserted the same way (RFC 8414 §5), then appended to the path (OpenID
/// Connect Discovery §4). For an issuer without a path the last two are the
/// same URL and it is listed once.
///
/// ```
/// use consentry::connector::discovery_urls;
/// use consentry::url::Url;
///
/// let plain = discovery_urls(&Url::parse("https://auth.example.com")?)?;
/// assert_eq!(plain.iter().map(Url::as_str).collect::<Vec<_>>(), [
///     "https://auth.example.com/.well-known/oauth-authorization-server",
///     "https://auth.example.com/.well-known/openid-configuration",
/// ]);
/// let tenant = discovery_urls(&Url::parse("https://login.example.com/tenant1/v2.0/")?)?;
/// assert_eq!(tenant.iter().map(Url::as_str).collect::<Vec<_>>(), [
///     "https://login.example.com/.well-known/oauth-authorization-server/tenant1/v2.0",
///     "https://login.example.com/.well-known/openid-configuration/tenant1/v2.0",
///     "https://login.example.com/tenant1/v2.0/.well-known/openid-configuration",
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if `issuer` is not an `https` URL (or `http` on
/// loopback) or has a query or fragment.
pub fn discovery_urls(issuer: &Url) -> Result<Vec<Url>> {
    check_issuer(issuer.as_str())?;
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_path(&p);
        u
    };
    let mut urls = vec![
        at(format!("/.well-known/oauth-authorization-server{path}")),
        at(format!("/.well-known/openid-configuration{path}")),
    ];
    if !path.is_empty() {
        urls.push(at(format!("{path}/.well-known/openid-configuration")));
    }
    Ok(urls)
}

/// Whether a document's `issuer` is the expected one: equal as strings,
/// except that an issuer with an empty path may be written with or without
/// the `/` that [`Url`] always adds.
fn issuer_matches(expected: &Url, found: &str) -> bool {
    let exp = expected.as_str();
    found == exp || (expected.path() == "/" && exp.strip_suffix('/') == Some(found))
}

/// The parts of an RFC 8414 / OpenID Connect metadata document consentry
/// uses.
///
/// ```
/// use consentry::connector::AuthorizationServerMetadata;
/// use consentry::http::Response;
/// use consentry::url::Url;
///
/// let body = br#"{"issuer":"https://auth.example.com",
///   "authorization_endpoint":"https://auth.example.com/authorize",
///   "token_endpoint":"https://auth.example.com/token",
///   "authorization_response_iss_parameter_supported":true}"#;
/// let issuer = Url::parse("https://auth.example.com")?;
/// let meta = AuthorizationServerMetadata::parse(&Response::new(body.to_vec()), &issuer)?;
/// assert_eq!(meta.issuer, "https://auth.example.com");
/// assert!(meta.authorization_response_iss_parameter_supported);
///
/// let other = Url::parse("https://evil.example")?;
/// assert!(AuthorizationServerMetadata::parse(&Response::new(body.to_vec()), &other).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer, exactly as the document writes it.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Url,
    /// `token_endpoint`.
    pub token_endpoint: Url,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<Url>,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection_endpoint: Option<Url>,
    /// `userinfo_endpoint` (OpenID Connect).
    pub userinfo_endpoint: Option<Url>,
    /// `scopes_supported` (entries that are not valid scopes are skipped).
    pub scopes_supported: Option<Vec<Scope>>,
    /// `code_challenge_methods_supported`.
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_methods_supported`.
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
}

impl AuthorizationServerMetadata {
    /// Parses and checks a metadata document.
    ///
    /// ```
    /// use consentry::Error;
    /// use consentry::connector::AuthorizationServerMetadata;
    /// use consentry::http::Response;
    /// use consentry::url::Url;
    /// let issuer = Url::parse("https://as.example")?;
    /// let gone = Response::builder().status(404).body(Vec::new())?;
    /// let err = AuthorizationServerMetadata::parse(&gone, &issuer).unwrap_err();
    /// assert!(matches!(err, Error::UpstreamStatus { status: 404, .. }));
    /// let body = br#"{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a"}"#;
    /// let no_token_endpoint = AuthorizationServerMetadata::parse(&Response::new(body.to_vec()), &issuer);
    /// assert!(matches!(no_token_endpoint, Err(Error::Discovery { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UpstreamStatus`] for a non-2xx response; [`Error::Discovery`]
    /// if the body is over [`MAX_DISCOVERY_DOCUMENT_BYTES`], is not a JSON
    /// object, its `issuer` differs from `expected_issuer`, or an endpoint
    /// is missing or not `https`.
    pub fn parse(response: &HttpResponse, expected_issuer: &Url) -> Result<Self> {
        let fail = |reason: String| Error::Discovery {
            issuer: expected_issuer.to_string(),
            reason,
        };
        if !response.status().is_success() {
            return Err(Error::UpstreamStatus {
                what: "metadata endpoint",
                status: response.status().as_u16(),
            });
        }
        let body = response.body();
        if body.len() > MAX_DISCOVERY_DOCUMENT_BYTES {
            return Err(fail(format!(
                "the document is {} bytes; the limit is {MAX_DISCOVERY_DOCUMENT_BYTES}",
                body.len()
            )));
        }
        let doc = json_object(body).map_err(|r| fail(format!("the document is {r}")))?;
        let issuer = match doc.get("issuer") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(fail("the document has no `issuer`".into())),
        };
        if !issuer_matches(expected_issuer, &issuer) {
            return Err(fail(
                "the document's `issuer` is not the expected issuer; refusing its endpoints".into(),
            ));
        }
        let url = |key: &'static str| -> Result<Option<Url>> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => {
                    let u = Url::parse(s).map_err(|_| fail(format!("`{key}` is not a URL")))?;
                    check_endpoint(key, &u).map_err(|e| fail(e.to_string()))?;
                    Ok(Some(u))
                }
                Some(_) => Err(fail(format!("`{key}` is not a string"))),
            }
        };
        let required = |key: &'static str| -> Result<Url> {
            url(key)?.ok_or_else(|| fail(format!("the document has no `{key}`")))
        };
        Ok(Self {
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            revocation_endpoint: url("revocation_endpoint")?,
            introspection_endpoint: url("introspection_endpoint")?,
            userinfo_endpoint: url("userinfo_endpoint")?,
            scopes_supported: string_list(&doc, "scopes_supported").map(|l| {
                l.iter()
                    .filter_map(|s| Scope::new(s.as_str()).ok())
                    .collect()
            }),
            code_challenge_methods_supported: string_list(&doc, "code_challenge_methods_supported"),
            token_endpoint_auth_methods_supported: string_list(
                &doc,
                "token_endpoint_auth_methods_supported",
            ),
            authorization_response_iss_parameter_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            issuer,
        })
    }

    /// A connector builder for this server and client: endpoints, issuer,
    /// RFC 9207 support, client auth (`client_secret_basic` when offered or
    /// unspecified, else `client_secret_post`; `none` without a secret),
    /// PKCE on, and for OpenID providers the userinfo endpoint as account
    /// source with `openid` as default scope.
    ///
    /// ```
    /// use consentry::connector::{AuthorizationServerMetadata, ClientAuth};
    /// use consentry::http::Response;
    /// use consentry::secret::ClientSecret;
    /// use consentry::url::Url;
    ///
    /// let body = br#"{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a",
    ///   "token_endpoint":"https://as.example/t","token_endpoint_auth_methods_supported":["client_secret_post"]}"#;
    /// let meta = AuthorizationServerMetadata::parse(&Response::new(body.to_vec()), &Url::parse("https://as.example")?)?;
    /// let c = meta.into_builder("as".parse()?, "client", Some(ClientSecret::new("s")))?.build()?;
    /// assert_eq!(c.config().client_auth(), ClientAuth::Post);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Discovery`] if the client has a secret and the server
    /// supports neither `client_secret_basic` nor `client_secret_post`.
    pub fn into_builder(
        self,
        id: ConnectorId,
        client_id: impl Into<String>,
        client_secret: Option<ClientSecret>,
    ) -> Result<OAuth2ConnectorBuilder> {
        let methods = self.token_endpoint_auth_methods_supported.as_deref();
        let offers = |m: &str| methods.is_none_or(|l| l.iter().any(|x| x == m));
        let auth = match &client_secret {
            None => ClientAuth::None,
            Some(_) if offers("client_secret_basic") => ClientAuth::Basic,
            Some(_) if offers("client_secret_post") => ClientAuth::Post,
            Some(_) => {
                return Err(Error::Discovery {
                    issuer: self.issuer,
                    reason:
                        "the server supports neither client_secret_basic nor client_secret_post"
                            .into(),
                });
            }
        };
        let mut b = OAuth2Connector::builder(id)
            .authorization_url(self.authorization_endpoint)
            .token_url(self.token_endpoint)
            .issuer(self.issuer)
            .issuer_in_callback(self.authorization_response_iss_parameter_supported)
            .client_id(client_id)
            .client_auth(auth);
        if let Some(secret) = client_secret {
            b = b.client_secret(secret);
        }
        if let Some(u) = self.revocation_endpoint {
            b = b.revocation_url(u);
        }
        if let Some(u) = self.introspection_endpoint {
            b = b.introspection_url(u);
        }
        if let Some(u) = self.userinfo_endpoint {
            let openid = self
                .scopes_supported
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s.as_str() == "openid"));
            if openid {
                b = b.default_scopes([Scope::new("openid")?]);
            }
            b = b.account(AccountSource::userinfo(u));
        }
        Ok(b)
    }
}

fn string_list(doc: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    let list = doc.get(key)?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_str)
            .take(MAX_LIST)
            .map(str::to_owned)
            .collect(),
    )
}

fn metadata_request(url: &Url) -> Result<HttpRequest> {
    ::http::Request::get(url.as_str())
        .header(::http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| Error::invalid("discovery url", "cannot be used as a request URI"))
}

impl OAuth2Connector {
    /// Discovers a provider from its issuer: tries each of
    /// [`discovery_urls`] in turn (RFC 8414, then OpenID Connect), moving on
    /// when a URL answers with a non-2xx status or something that is not a
    /// JSON object, and stops at the first real document, which must name
    /// `issuer` exactly. See [`AuthorizationServerMetadata::into_builder`]
    /// for the settings derived from it; change them with
    /// [`OAuth2Connector::into_builder`].
    ///
    /// ```
    /// use consentry::connector::OAuth2Connector;
    /// use consentry::http::{self, HttpRequest, Response};
    /// use consentry::url::Url;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mock = http::from_fn(|req: HttpRequest| async move {
    ///     Ok(match req.uri().path() {
    ///         "/.well-known/openid-configuration" => Response::new(br#"{
    ///             "issuer": "https://id.example.com",
    ///             "authorization_endpoint": "https://id.example.com/auth",
    ///             "token_endpoint": "https://id.example.com/token",
    ///             "userinfo_endpoint": "https://id.example.com/me"}"#.to_vec()),
    ///         _ => Response::builder().status(404).body(Vec::new()).unwrap(),
    ///     })
    /// });
    /// let issuer = Url::parse("https://id.example.com")?;
    /// let c = OAuth2Connector::discover("example".parse()?, &issuer, "client", None, &mock).await?;
    /// assert_eq!(c.config().token_url().as_str(), "https://id.example.com/token");
    /// assert_eq!(c.config().default_scopes()[0].as_str(), "openid");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Http`] if a request fails outright; [`Error::Discovery`] if
    /// no URL has a document or the document is refused (issuer mismatch,
    /// missing endpoints, too large); [`Error::InvalidInput`] from building
    /// the connector.
    pub async fn discover(
        id: ConnectorId,
        issuer: &Url,
        client_id: impl Into<String>,
        client_secret: Option<ClientSecret>,
        http: &dyn HttpClient,
    ) -> Result<Self> {
        let mut tried = Vec::new();
        for url in discovery_urls(issuer)? {
            let response = http.send(metadata_request(&url)?).await?;
            let status = response.status();
            let is_object = || json_object(response.body()).is_ok();
            if !status.is_success()
                || (response.body().len() <= MAX_DISCOVERY_DOCUMENT_BYTES && !is_object())
            {
                tried.push(format!("{url} (HTTP {})", status.as_u16()));
                continue;
            }
            let meta = AuthorizationServerMetadata::parse(&response, issuer)?;
            return meta
                .into_builder(id, client_id, client_secret)?
                .discovery_url(url)
                .build();
        }
        Err(Error::Discovery {
            issuer: issuer.to_string(),
            reason: format!("no metadata document found; tried {}", tried.join(", ")),
        })
    }

    /// Like [`discover`](Self::discover), from an explicit document URL
    /// (for providers whose metadata is not at a well-known location). The
    /// document's `issuer` must still equal `issuer`.
    ///
    /// ```
    /// use consentry::connector::OAuth2Connector;
    /// use consentry::http::{self, HttpRequest, Response};
    /// use consentry::url::Url;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mock = http::from_fn(|req: HttpRequest| async move {
    ///     assert_eq!(req.uri(), "https://cdn.example.com/meta.json");
    ///     Ok(Response::new(br#"{"issuer": "https://id.example.com",
    ///         "authorization_endpoint": "https://id.example.com/auth",
    ///         "token_endpoint": "https://id.example.com/token"}"#.to_vec()))
    /// });
    /// let doc = Url::parse("https://cdn.example.com/meta.json")?;
    /// let issuer = Url::parse("https://id.example.com")?;
    /// let c = OAuth2Connector::discover_from("ex".parse()?, &doc, &issuer, "client", None, &mock).await?;
    /// assert_eq!(c.config().discovery_url(), Some(&doc));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`discover`](Self::discover); a non-2xx answer is
    /// [`Error::UpstreamStatus`].
    pub async fn discover_from(
        id: ConnectorId,
        document_url: &Url,
        issuer: &Url,
        client_id: impl Into<String>,
        client_secret: Option<ClientSecret>,
        http: &dyn HttpClient,
    ) -> Result<Self> {
        check_endpoint("discovery url", document_url)?;
        let response = http.send(metadata_request(document_url)?).await?;
        AuthorizationServerMetadata::parse(&response, issuer)?
            .into_builder(id, client_id, client_secret)?
            .discovery_url(document_url.clone())
            .build()
    }
}
