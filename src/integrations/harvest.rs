//! Reading harvested data (consent-checked and logged), actions,
//! connection settings, field mappings, insights, and connections that
//! need no OAuth.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Integrations;
use crate::connection::{AccountInfo, Connection};
use crate::connector::{Action, AuthMethod, FetchContext};
use crate::error::{Error, Result};
use crate::ids::{ConnectionId, ConnectorId, Purpose, UserId};
use crate::records::{HeldRecord, Insight};
use crate::store::{ConnectionWrite, MappingScope, RecordRead};
use crate::sync::Authorized;
use crate::vault::{CredentialKind, CredentialUpdate};

/// The most records one read returns.
///
/// ```
/// use consentry::integrations::{MAX_RECORDS_PER_READ, RecordQuery};
/// let q = RecordQuery::default().limit(usize::MAX);
/// assert!(format!("{q:?}").contains(&format!("limit: {MAX_RECORDS_PER_READ}")));
/// ```
pub const MAX_RECORDS_PER_READ: usize = 100_000;

/// Options of [`Integrations::records_with`]: who reads (logged), and
/// paging.
///
/// ```
/// use consentry::integrations::RecordQuery;
/// let q = RecordQuery::default().component("matching").limit(500).after("book-0042");
/// assert_eq!(q.component_name(), "matching");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordQuery {
    component: String,
    after: Option<String>,
    limit: usize,
}

impl Default for RecordQuery {
    fn default() -> Self {
        Self {
            component: "host".to_owned(),
            after: None,
            limit: MAX_RECORDS_PER_READ,
        }
    }
}

impl RecordQuery {
    /// Names the component that reads, for the access log (default
    /// `host`; at most 64 bytes, control characters removed).
    ///
    /// ```
    /// use consentry::integrations::RecordQuery;
    /// assert_eq!(RecordQuery::default().component_name(), "host");
    /// assert_eq!(RecordQuery::default().component("matcher\n").component_name(), "matcher");
    /// assert_eq!(RecordQuery::default().component("\n").component_name(), "host"); // nothing left
    /// ```
    #[must_use]
    pub fn component(mut self, name: &str) -> Self {
        self.component = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if self.component.is_empty() {
            "host".clone_into(&mut self.component);
        }
        self
    }

    /// Only records whose provider id sorts after `id`.
    ///
    /// ```
    /// use consentry::integrations::RecordQuery;
    /// let q = RecordQuery::default().after("book-0042");
    /// assert!(format!("{q:?}").contains("after: Some(\"book-0042\")"));
    /// ```
    #[must_use]
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }

    /// At most `n` records (1 to 100,000).
    ///
    /// ```
    /// use consentry::integrations::RecordQuery;
    /// assert!(format!("{:?}", RecordQuery::default().limit(0)).contains("limit: 1"));
    /// assert!(format!("{:?}", RecordQuery::default().limit(500)).contains("limit: 500"));
    /// ```
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.clamp(1, MAX_RECORDS_PER_READ);
        self
    }

    /// The component name.
    ///
    /// ```
    /// use consentry::integrations::RecordQuery;
    /// assert_eq!(RecordQuery::default().component("insights").component_name(), "insights");
    /// ```
    pub fn component_name(&self) -> &str {
        &self.component
    }
}

/// Binds normalised record fields to a host's own field names: each
/// binding is a host field name and a JSON pointer into the record's data
/// (or `$id`, `$fetched_at`, `$stream` for provenance).
///
/// ```
/// use consentry::integrations::FieldMapping;
/// let m = FieldMapping::new().bind("book_title", "/title")?.bind("source_id", "$id")?;
/// assert_eq!(m.bindings().len(), 2);
/// assert!(FieldMapping::new().bind("x", "title").is_err()); // not a pointer
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    bindings: Vec<(String, String)>,
}

impl FieldMapping {
    /// An empty mapping.
    ///
    /// ```
    /// use consentry::integrations::FieldMapping;
    /// assert!(FieldMapping::new().bindings().is_empty());
    /// assert_eq!(FieldMapping::new(), FieldMapping::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds host field `name` to `source`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or long name (64 bytes), a
    /// source that is neither a JSON pointer nor `$id` / `$fetched_at` /
    /// `$stream`, or more than 200 bindings.
    ///
    /// ```
    /// use consentry::integrations::FieldMapping;
    /// let m = FieldMapping::new().bind("title", "/name")?.bind("title", "/title")?; // rebinding replaces
    /// assert_eq!(m.bindings(), [("title".to_owned(), "/title".to_owned())]);
    /// assert!(FieldMapping::new().bind("", "/title").is_err());
    /// assert!(FieldMapping::new().bind("when", "$created").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn bind(mut self, name: &str, source: &str) -> Result<Self> {
        if name.is_empty() || name.len() > 64 || name.contains(char::is_control) {
            return Err(Error::invalid("field mapping", "names are 1 to 64 bytes"));
        }
        let provenance = matches!(source, "$id" | "$fetched_at" | "$stream");
        let pointer = source.starts_with('/') && source.len() <= 256;
        if !provenance && !pointer {
            return Err(Error::invalid(
                "field mapping",
                "sources are JSON pointers (`/title`) or `$id`, `$fetched_at`, `$stream`",
            ));
        }
        if self.bindings.len() >= 200 {
            return Err(Error::invalid("field mapping", "at most 200 bindings"));
        }
        self.bindings.retain(|(n, _)| n != name);
        self.bindings.push((name.to_owned(), source.to_owned()));
        Ok(self)
    }

    /// The bindings: (host name, source).
    ///
    /// ```
    /// use consentry::integrations::FieldMapping;
    /// let m = FieldMapping::new().bind("source_id", "$id")?.bind("title", "/title")?;
    /// let names: Vec<&str> = m.bindings().iter().map(|(name, _)| name.as_str()).collect();
    /// assert_eq!(names, ["source_id", "title"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn bindings(&self) -> &[(String, String)] {
        &self.bindings
    }

    /// Applies the mapping to one record.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the record's data is not JSON.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::ConnectionId;
    /// use consentry::integrations::FieldMapping;
    /// use consentry::records::HeldRecord;
    /// let record = HeldRecord::new(ConnectionId::new("c1")?, "books".into(), "b1".into(), "book".into(),
    ///     r#"{"title":"Dune","authors":["Frank Herbert"]}"#.into(), SystemTime::UNIX_EPOCH, vec![])?;
    /// let m = FieldMapping::new().bind("name", "/title")?.bind("author", "/authors/0")?
    ///     .bind("source", "$stream")?.bind("isbn", "/isbn13")?;
    /// let row = m.apply(&record)?;
    /// assert_eq!(serde_json::Value::Object(row),
    ///     serde_json::json!({"name": "Dune", "author": "Frank Herbert", "source": "books", "isbn": null}));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn apply(&self, record: &HeldRecord) -> Result<Map<String, Value>> {
        let data = record.value()?;
        let mut out = Map::new();
        for (name, source) in &self.bindings {
            let v = match source.as_str() {
                "$id" => Value::from(record.id.clone()),
                "$stream" => Value::from(record.stream.clone()),
                "$fetched_at" => Value::from(crate::clock::unix_millis(record.fetched_at)),
                pointer => data.pointer(pointer).cloned().unwrap_or(Value::Null),
            };
            out.insert(name.clone(), v);
        }
        Ok(out)
    }
}

impl Integrations {
    /// The records of `stream` held for `purpose`, read only with consent
    /// to it, and logged (component `host`). At most 100,000; page with
    /// [`Integrations::records_with`].
    ///
    /// # Errors
    /// [`Error::NotFound`] (no such connection), [`Error::ConsentRequired`],
    /// storage errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// let books = integrations.records(&user, &conn.id, "library", &matching).await?;
    /// assert_eq!(books[0].decode::<consentry::records::Book>()?.title, "Dune");
    /// // Without consent to a purpose, nothing is read.
    /// let ads = Purpose::new("ads")?;
    /// assert!(integrations.records(&user, &conn.id, "library", &ads).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn records(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
    ) -> Result<Vec<HeldRecord>> {
        self.records_with(user, connection, stream, purpose, &RecordQuery::default())
            .await
    }

    /// [`Integrations::records`] with the reading component named in the
    /// access log, and paging.
    ///
    /// # Errors
    /// As [`Integrations::records`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// use consentry::integrations::RecordQuery;
    /// let q = RecordQuery::default().component("matcher").limit(10);
    /// let page = integrations.records_with(&user, &conn.id, "library", &matching, &q).await?;
    /// assert_eq!(page.len(), 1);
    /// let log = integrations.report(&user).await?.connections[0].access_log.clone();
    /// assert_eq!(log[0].component, "matcher");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn records_with(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
        query: &RecordQuery,
    ) -> Result<Vec<HeldRecord>> {
        let result = self
            .records_unaudited(user, connection, stream, purpose, query)
            .await;
        let mut event = self
            .audit_user("records.read", user, Some(connection))
            .outcome(crate::audit::Outcome::of(&result))
            .detail("stream", stream)
            .detail("purpose", purpose.as_str())
            .detail("component", query.component_name());
        if let Ok(records) = &result {
            event = event.detail("count", records.len());
        }
        self.audit_queue(event).await;
        result
    }

    async fn records_unaudited(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
        query: &RecordQuery,
    ) -> Result<Vec<HeldRecord>> {
        let mut read = RecordRead::new(
            user.clone(),
            connection.clone(),
            stream,
            purpose.clone(),
            query.component.clone(),
            self.now(),
            query.limit,
        );
        read.after.clone_from(&query.after);
        match self.inner.store.read_records(read).await? {
            Some(records) => Ok(records),
            None => {
                self.connection(user, connection).await?;
                Err(Error::ConsentRequired {
                    purpose: purpose.clone(),
                })
            }
        }
    }

    /// The records of `stream` for `purpose` through the field mapping of
    /// the connection (or of its tenant): each as an object of the host's
    /// field names. Consent-checked and logged like
    /// [`Integrations::records`].
    ///
    /// # Errors
    /// As [`Integrations::records`]; [`Error::NotFound`] if no mapping
    /// applies.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// use consentry::integrations::FieldMapping;
    /// use consentry::store::MappingScope;
    /// let mapping = FieldMapping::new().bind("book_title", "/title")?;
    /// integrations.set_field_mapping(&MappingScope::Tenant(None), "library", Some(&mapping)).await?;
    /// let rows = integrations.mapped_records(&user, &conn.id, "library", &matching).await?;
    /// assert_eq!(rows[0]["book_title"], "Dune");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn mapped_records(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
    ) -> Result<Vec<Map<String, Value>>> {
        let text = self
            .inner
            .store
            .get_field_mapping(user, connection, stream)
            .await?
            .ok_or(Error::NotFound {
                what: "field mapping",
            })?;
        let mapping: FieldMapping = serde_json::from_str(&text)
            .map_err(|e| Error::storage("a stored field mapping is invalid", e))?;
        let query = RecordQuery::default().component("field-mapping");
        self.records_with(user, connection, stream, purpose, &query)
            .await?
            .iter()
            .map(|r| mapping.apply(r))
            .collect()
    }

    /// Sets (or with `None` removes) the field mapping of `stream` for a
    /// connection or a whole tenant.
    ///
    /// # Errors
    /// Storage errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// use consentry::integrations::FieldMapping;
    /// use consentry::store::MappingScope;
    /// let mine = MappingScope::Connection(user.clone(), conn.id.clone());
    /// let mapping = FieldMapping::new().bind("id", "$id")?;
    /// integrations.set_field_mapping(&mine, "library", Some(&mapping)).await?;
    /// assert_eq!(integrations.mapped_records(&user, &conn.id, "library", &matching).await?[0]["id"], "1");
    /// integrations.set_field_mapping(&mine, "library", None).await?; // removed
    /// assert!(integrations.mapped_records(&user, &conn.id, "library", &matching).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_field_mapping(
        &self,
        scope: &MappingScope,
        stream: &str,
        mapping: Option<&FieldMapping>,
    ) -> Result<()> {
        let text = mapping
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| Error::Internal("field mapping encoding"))?;
        self.inner
            .store
            .put_field_mapping(scope, stream, text)
            .await
    }

    /// What the connector derives from `stream`'s records for `purpose`
    /// (a genre profile), read like [`Integrations::records`] (component
    /// `insights`).
    ///
    /// # Errors
    /// As [`Integrations::records`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// use consentry::records::Insight;
    /// let Some(Insight::Genres(profile)) = integrations.insight(&user, &conn.id, "library", &matching).await? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(profile.genres[0].genre, "sci-fi");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn insight(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        stream: &str,
        purpose: &Purpose,
    ) -> Result<Option<Insight>> {
        let c = self.connection(user, connection).await?;
        let connector = self.connector(&c.connector)?.clone();
        let query = RecordQuery::default().component("insights");
        let records = self
            .records_with(user, connection, stream, purpose, &query)
            .await?;
        Ok(connector.derive(stream, &records))
    }

    /// Validates `settings` against the connector's schema and stores
    /// them (with defaults filled in) for the connection.
    ///
    /// # Errors
    /// [`Error::InvalidSettings`] with field-level errors;
    /// [`Error::NotFound`] for an unknown connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// let saved = integrations.configure(&user, &conn.id, serde_json::json!({"shelves": ["read"]})).await?;
    /// assert_eq!(saved["shelves"][0], "read");
    /// let err = integrations.configure(&user, &conn.id, serde_json::json!({"shelves": 3})).await.unwrap_err();
    /// assert!(matches!(err, consentry::Error::InvalidSettings { .. }));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn configure(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        settings: Value,
    ) -> Result<Map<String, Value>> {
        let c = self.connection(user, connection).await?;
        let valid = self
            .connector(&c.connector)?
            .settings()
            .validate(&settings)?;
        let text =
            serde_json::to_string(&valid).map_err(|_| Error::Internal("settings encoding"))?;
        self.inner
            .store
            .put_settings(user, connection, text)
            .await?;
        Ok(valid)
    }

    /// The connection's settings (empty when never configured).
    ///
    /// # Errors
    /// Storage errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// assert!(integrations.settings(&user, &conn.id).await?.is_empty());
    /// integrations.configure(&user, &conn.id, serde_json::json!({"shelves": ["read"]})).await?;
    /// assert_eq!(integrations.settings(&user, &conn.id).await?["shelves"][0], "read");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn settings(
        &self,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Map<String, Value>> {
        match self.inner.store.get_settings(user, connection).await? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| Error::storage("stored settings are invalid", e)),
            None => Ok(Map::new()),
        }
    }

    /// Performs an action (a write at the provider) for its declared
    /// purpose: consent and scopes are checked, the request goes through
    /// an authorised [`FetchContext`].
    ///
    /// # Errors
    /// [`Error::NotFound`] (no such connection or action),
    /// [`Error::ConsentRequired`], [`Error::InsufficientScope`],
    /// [`Error::InvalidResponse`] when the output does not decode,
    /// provider errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use consentry::connector::{Action, ActionSpec, AuthMethod, Connector, ConnectorInfo, FetchContext, StreamSpec};
    /// use consentry::{ConnectorId, Integrations, Purpose, UserId};
    ///
    /// #[derive(serde::Serialize)]
    /// struct SaveNote { text: String }
    /// impl Action for SaveNote { const NAME: &'static str = "save_note"; type Output = serde_json::Value; }
    ///
    /// #[derive(Debug)]
    /// struct Notes { id: ConnectorId, info: ConnectorInfo, actions: Vec<ActionSpec> }
    /// #[async_trait::async_trait]
    /// impl Connector for Notes {
    ///     fn id(&self) -> &ConnectorId { &self.id }
    ///     fn info(&self) -> &ConnectorInfo { &self.info }
    ///     fn auth(&self) -> AuthMethod<'_> { AuthMethod::None }
    ///     fn streams(&self) -> &[StreamSpec] { &[] }
    ///     fn actions(&self) -> &[ActionSpec] { &self.actions }
    ///     async fn perform(&self, _ctx: &FetchContext, _action: &ActionSpec, input: serde_json::Value)
    ///         -> consentry::Result<serde_json::Value> {
    ///         Ok(serde_json::json!({"saved": input["text"]}))
    ///     }
    /// }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let notes_export = Purpose::new("notes_export")?;
    /// let integrations = Integrations::builder()
    ///     .store(consentry::store::MemoryStore::new())
    ///     .keyring(consentry::vault::Keyring::generate()?)
    ///     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    ///     .connector(Notes { id: "notes".parse()?, info: ConnectorInfo::new("Notes"),
    ///                        actions: vec![ActionSpec::new("save_note", notes_export.clone())?] })
    ///     .redirect_uri("https://app.example/cb".parse().unwrap())
    ///     .build()?;
    /// let user = UserId::new("u")?;
    /// let c = integrations.connect_without_oauth(&user, &"notes".parse()?, consentry::connection::AccountInfo::new("n1"), None).await?;
    /// let note = SaveNote { text: "graphs".into() };
    /// assert!(integrations.perform(&user, &c.id, &note).await.is_err()); // no consent yet
    /// integrations.grant_consent(&user, &c.id, &notes_export).await?;
    /// assert_eq!(integrations.perform(&user, &c.id, &note).await?["saved"], "graphs");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn perform<A: Action>(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        input: &A,
    ) -> Result<A::Output> {
        let c = self.connection(user, connection).await?;
        let connector = self.connector(&c.connector)?.clone();
        let spec = connector
            .actions()
            .iter()
            .find(|a| a.name() == A::NAME)
            .cloned()
            .ok_or(Error::NotFound { what: "action" })?;
        let purpose = spec.purpose().clone();
        if !self
            .consented_purposes(user, connection)
            .await?
            .contains(&purpose)
        {
            return Err(Error::ConsentRequired { purpose });
        }
        let transport = Arc::new(Authorized {
            integrations: self.clone(),
            user: user.clone(),
            connection: connection.clone(),
            connector: c.connector.clone(),
            purpose: purpose.clone(),
            scopes: spec.required_scopes().to_vec(),
            deadline: None,
        });
        let settings = self.settings(user, connection).await?;
        let ctx = FetchContext::new(transport, Some(purpose), settings, self.now());
        let input = serde_json::to_value(input)
            .map_err(|e| Error::invalid("action input", e.to_string()))?;
        let output = connector.perform(&ctx, &spec, input).await?;
        serde_json::from_value(output).map_err(|e| Error::InvalidResponse {
            what: "action output",
            reason: e.to_string(),
        })
    }

    /// Connects a connector that needs no OAuth 2.0 flow: one without
    /// credentials (file imports), one that takes an API key, or an OAuth
    /// 1.0a connector whose user token credentials the host already holds
    /// (`api_key` = [`OAuth1Credentials::to_sealable`](crate::oauth::oauth1::OAuth1Credentials::to_sealable)).
    /// The key is sealed in the vault with the connection in one write. Connecting the same
    /// account again returns the existing connection (with the new key).
    ///
    /// # Errors
    /// [`Error::NotFound`] (unknown connector), [`Error::InvalidInput`]
    /// (an OAuth connector, a key missing or given when not used),
    /// storage errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// // (The setup connected `gr-1`.) The same account again: the same connection.
    /// let again = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// assert_eq!(again.id, conn.id);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_without_oauth(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account: AccountInfo,
        api_key: Option<secrecy::SecretString>,
    ) -> Result<Connection> {
        let c = self.connector(connector)?;
        match (c.auth(), &api_key) {
            (AuthMethod::None, None) | (AuthMethod::ApiKey(_) | AuthMethod::OAuth1(_), Some(_)) => {
            }
            (AuthMethod::OAuth2(_), _) => {
                return Err(Error::invalid(
                    "connector",
                    "uses OAuth 2.0: use begin_connect",
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "api key",
                    "required by API-key connectors only",
                ));
            }
        }
        if account.id.is_empty() || account.id.len() > 255 || account.id.contains(char::is_control)
        {
            return Err(Error::invalid("account id", "must be 1 to 255 bytes"));
        }
        let now = self.now();
        let existing = self
            .inner
            .store
            .find_connection(user, connector, &account.id)
            .await?;
        let (mut write, conn) = match existing {
            Some(mut found) => {
                found.account = account;
                found.updated_at = now;
                (ConnectionWrite::update(found.clone()), found)
            }
            None => {
                let conn = Connection::new(
                    ConnectionId::generate()?,
                    user.clone(),
                    connector.clone(),
                    account,
                    now,
                );
                (ConnectionWrite::create(conn.clone()), conn)
            }
        };
        if let Some(key) = api_key {
            let sealed = self
                .inner
                .vault
                .seal(
                    user,
                    &conn.id,
                    vec![CredentialUpdate::new(CredentialKind::ApiKey, key)],
                )
                .await?;
            write = write.with_credentials(sealed);
        }
        let written = self.inner.store.write_connection(write).await?;
        let mut conn = conn;
        conn.revision = written.revision;
        Ok(conn)
    }
}
