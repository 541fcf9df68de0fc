//! Goodreads. Goodreads stopped issuing API keys on 2020-12-08, so the
//! path every reader can use is the library export (My Books → Import and
//! export → Export Library), a CSV file imported here with strict
//! validation: size limit, required columns, UTF-8, RFC 4180 quoting, every
//! malformed row reported with its line number, all or nothing. Holders of
//! legacy keys can also read `shelf/list.xml` over OAuth 1.0a
//! ([`shelves_request`], [`parse_shelves`]).
//!
//! ```
//! use consentry::connectors::goodreads;
//! let csv = "Book Id,Title,Author,Additional Authors,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n\
//!            4671,The Great Gatsby,F. Scott Fitzgerald,,\"=\"\"9780743273565\"\"\",4,read,2024/05/01,\"classics, fiction\"\n";
//! let records = goodreads::parse_library_export(csv.as_bytes())?;
//! let book: consentry::records::Book = records[0].decode()?;
//! assert_eq!(book.isbn13.as_deref(), Some("9780743273565"));
//! assert_eq!(book.shelves, ["classics", "fiction"]);
//! assert!(goodreads::parse_library_export(b"Title\nx\n").is_err()); // columns missing
//! # Ok::<(), consentry::Error>(())
//! ```

use std::time::Duration;

use async_trait::async_trait;

use super::csv;
use crate::connector::{
    ActionSpec, AuthMethod, Connector, ConnectorInfo, CursorKind, SettingField, SettingKind,
    SettingsSchema, StreamSpec,
};
use crate::error::{Error, FieldError, Result};
use crate::ids::{ConnectorId, Purpose};
use crate::records::{Book, GenreProfile, HeldRecord, Insight, Record};

mod legacy;

pub use legacy::{OAuth1Credentials, parse_shelves, shelves_request};

/// The largest export accepted (16 MiB: about 30,000 books).
///
/// ```
/// use consentry::connectors::goodreads::{MAX_EXPORT_BYTES, parse_library_export};
/// assert!(parse_library_export(&vec![b'x'; MAX_EXPORT_BYTES + 1]).is_err());
/// ```
pub const MAX_EXPORT_BYTES: usize = 16 * 1024 * 1024;
/// The most books accepted.
///
/// ```
/// use consentry::connectors::goodreads::MAX_BOOKS;
/// assert_eq!(MAX_BOOKS, 100_000);
/// ```
pub const MAX_BOOKS: usize = 100_000;
/// The columns an export must have.
///
/// ```
/// use consentry::connectors::goodreads::{REQUIRED_COLUMNS, parse_library_export};
/// let header = REQUIRED_COLUMNS.join(",");
/// let books = parse_library_export(format!("{header}\n42,Dune,Frank Herbert,,5,read,2024/01/31,sci-fi\n").as_bytes())?;
/// assert_eq!(books[0].id(), "42");
/// assert!(parse_library_export(b"Book Id,Title\n42,Dune\n").is_err()); // columns missing
/// # Ok::<(), consentry::Error>(())
/// ```
pub const REQUIRED_COLUMNS: [&str; 8] = [
    "Book Id",
    "Title",
    "Author",
    "ISBN13",
    "My Rating",
    "Exclusive Shelf",
    "Date Read",
    "Bookshelves",
];
/// The stream the export fills.
///
/// ```
/// use consentry::connector::Connector;
/// use consentry::connectors::goodreads::{GoodreadsConnector, LIBRARY_STREAM};
/// let c = GoodreadsConnector::new([consentry::Purpose::new("matching")?])?;
/// assert_eq!(c.streams()[0].name(), LIBRARY_STREAM);
/// # Ok::<(), consentry::Error>(())
/// ```
pub const LIBRARY_STREAM: &str = "library";
/// The most errors reported.
const MAX_ERRORS: usize = 100;

fn refuse(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidImport {
        errors: vec![FieldError::new(field, message)],
    }
}

/// `="9780743273565"` (how the export writes ISBNs) or a plain value.
fn unexcel(v: &str) -> &str {
    v.strip_prefix("=\"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .trim()
}

fn date(v: &str) -> Option<String> {
    let b = v.as_bytes();
    (b.len() == 10
        && b[4] == b'/'
        && b[7] == b'/'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit()))
    .then(|| v.replace('/', "-"))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(100)
        .map(str::to_owned)
        .collect()
}

/// Parses a Goodreads library export into [`Book`] records (id: the
/// Goodreads book id). All or nothing.
///
/// # Errors
/// [`Error::InvalidImport`] listing (up to 100) problems, each with its
/// line: a file over [`MAX_EXPORT_BYTES`], not UTF-8 (UTF-16 is named as
/// such), a missing or repeated column, bad quoting, a row with the wrong
/// number of fields, an empty title, a non-numeric book id, a rating
/// outside 0 to 5, an ISBN-13 that is not 13 digits, a date not in
/// `YYYY/MM/DD`, a book id twice, more than [`MAX_BOOKS`] rows.
///
/// ```
/// use consentry::connectors::goodreads::parse_library_export;
/// let bad = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n7,,X,,9,read,,\n";
/// let consentry::Error::InvalidImport { errors } = parse_library_export(bad.as_bytes()).unwrap_err() else {
///     unreachable!()
/// };
/// assert_eq!(errors[0].field, "line 2, Title");
/// assert_eq!(errors[1].field, "line 2, My Rating");
/// ```
pub fn parse_library_export(bytes: &[u8]) -> Result<Vec<Record>> {
    if bytes.len() > MAX_EXPORT_BYTES {
        return Err(refuse(
            "file",
            format!("is {} bytes; the limit is {MAX_EXPORT_BYTES}", bytes.len()),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(refuse(
            "line 1",
            "the file is UTF-16; export it again as UTF-8",
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        refuse(
            format!("line {line}"),
            format!("not valid UTF-8 (byte {at}); export the library again as UTF-8"),
        )
    })?;
    let rows =
        csv::parse(text, MAX_BOOKS + 1).map_err(|e| Error::InvalidImport { errors: vec![e] })?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(refuse("line 1", "the file is empty"));
    };
    let mut errors = Vec::new();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|c| col(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(refuse(
            "line 1",
            format!("missing column(s): {}", missing.join(", ")),
        ));
    }
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(refuse(
                "line 1",
                format!(
                    "column `{}` appears twice",
                    h.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    let at = |name: &str| col(name).unwrap_or(0);
    let (id_c, title_c, author_c, isbn_c, rating_c, shelf_c, date_c, shelves_c) = (
        at("Book Id"),
        at("Title"),
        at("Author"),
        at("ISBN13"),
        at("My Rating"),
        at("Exclusive Shelf"),
        at("Date Read"),
        at("Bookshelves"),
    );
    let extra_c = col("Additional Authors");
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let total = rows.len();
    for (n, (line, fields)) in rows.enumerate() {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let mut err = |what: &str, msg: String| {
            errors.push(FieldError::new(
                if what.is_empty() {
                    format!("line {line}")
                } else {
                    format!("line {line}, {what}")
                },
                msg,
            ));
        };
        if fields.len() == 1 && fields[0].is_empty() && n + 1 == total {
            continue; // a trailing empty line
        }
        if fields.len() != header.len() {
            err(
                "",
                format!(
                    "has {} fields; the header has {}",
                    fields.len(),
                    header.len()
                ),
            );
            continue;
        }
        let id = fields[id_c].trim();
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            err("Book Id", "must be a number".into());
        } else if !seen.insert(id.to_owned()) {
            err("Book Id", format!("book {id} appears twice"));
        }
        let title = fields[title_c].trim();
        if title.is_empty() || title.len() > 1000 {
            err("Title", "must be 1 to 1000 bytes".into());
        }
        let rating = match fields[rating_c].trim().parse::<u8>() {
            Ok(r @ 0..=5) => r,
            _ => {
                err("My Rating", "must be a number from 0 to 5".into());
                0
            }
        };
        let isbn = unexcel(&fields[isbn_c]);
        let isbn_ok = isbn.len() == 13 && isbn.bytes().all(|b| b.is_ascii_digit());
        if !isbn.is_empty() && !isbn_ok {
            err("ISBN13", "must be 13 digits or empty".into());
        }
        let date_read = fields[date_c].trim();
        let date_read = if date_read.is_empty() {
            None
        } else {
            let d = date(date_read);
            if d.is_none() {
                err("Date Read", "must be YYYY/MM/DD or empty".into());
            }
            d
        };
        let shelf = fields[shelf_c].trim();
        if shelf.is_empty() || shelf.len() > 100 {
            err("Exclusive Shelf", "must be 1 to 100 bytes".into());
        }
        let mut authors = vec![fields[author_c].trim().to_owned()];
        if let Some(c) = extra_c {
            authors.extend(list(&fields[c]));
        }
        authors.retain(|a| !a.is_empty());
        let book = Book {
            title: title.to_owned(),
            authors,
            isbn13: (!isbn.is_empty()).then(|| isbn.to_owned()),
            rating: (rating > 0).then_some(rating),
            shelf: shelf.to_owned(),
            shelves: list(&fields[shelves_c]),
            date_read,
        };
        if let Ok(r) = Record::normalized(id, &book) {
            out.push(r);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::InvalidImport { errors })
    }
}

/// The Goodreads connector: the `library` stream filled by imports of the
/// library export (run by no scheduler), with a genre profile derived from
/// the shelves of read books; and, with legacy OAuth 1.0a credentials, the
/// `shelves` stream read from `shelf/list.xml`.
///
/// ```
/// use consentry::connector::Connector;
/// use consentry::connectors::goodreads::GoodreadsConnector;
/// let c = GoodreadsConnector::new([consentry::Purpose::new("matching")?])?;
/// assert_eq!(c.streams()[0].name(), "library");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GoodreadsConnector {
    id: ConnectorId,
    info: ConnectorInfo,
    streams: Vec<StreamSpec>,
    settings: SettingsSchema,
    legacy: Option<legacy::Legacy>,
}

impl GoodreadsConnector {
    /// The import-only connector, its data usable for `purposes`.
    ///
    /// # Errors
    /// None in practice (the ids are valid); `Result` keeps it panic-free.
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// use consentry::connectors::goodreads::GoodreadsConnector;
    /// let c = GoodreadsConnector::new([consentry::Purpose::new("matching")?])?;
    /// assert_eq!(c.streams().len(), 1); // imports only
    /// assert_eq!(c.settings().fields()[0].name(), "shelves");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(purposes: impl IntoIterator<Item = Purpose>) -> Result<Self> {
        let purposes: Vec<Purpose> = purposes.into_iter().collect();
        Ok(Self {
            id: ConnectorId::new("goodreads")?,
            info: ConnectorInfo::new("Goodreads"),
            streams: vec![
                StreamSpec::new(LIBRARY_STREAM)?
                    .with_purposes(purposes.clone())
                    .with_cursor(CursorKind::FullRefresh)
                    .with_interval(Duration::ZERO),
            ],
            settings: SettingsSchema::new().field(SettingField::new(
                "shelves",
                SettingKind::List {
                    allowed: Vec::new(),
                    max_items: 50,
                },
            )?),
            legacy: None,
        })
    }

    /// Adds the legacy API (`shelves` stream) for holders of a Goodreads
    /// developer key: requests to `api_base` (`https://www.goodreads.com`)
    /// are signed with OAuth 1.0a HMAC-SHA1 by the sync runtime, with the
    /// user's token credentials from the vault (connect with
    /// `Integrations::connect_without_oauth`); the connection's settings
    /// must name the Goodreads `user_id`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a base URL that is not https (or http on
    /// loopback).
    ///
    /// ```
    /// use consentry::connector::Connector;
    /// use consentry::connectors::goodreads::{GoodreadsConnector, OAuth1Credentials};
    /// let consumer = OAuth1Credentials::new("developer-key", "developer-secret");
    /// let c = GoodreadsConnector::new([consentry::Purpose::new("matching")?])?
    ///     .with_legacy_api("https://www.goodreads.com".parse().unwrap(), consumer.clone())?;
    /// assert_eq!(c.streams()[1].name(), "shelves");
    /// assert!(c.settings().fields().iter().any(|f| f.name() == "user_id"));
    /// assert!(GoodreadsConnector::new([])?.with_legacy_api("http://goodreads.example".parse().unwrap(), consumer).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_legacy_api(
        mut self,
        api_base: url::Url,
        consumer: OAuth1Credentials,
    ) -> Result<Self> {
        crate::connector::check_endpoint("goodreads api base", &api_base)?;
        let purposes = self.streams[0].purposes().to_vec();
        self.streams.push(
            StreamSpec::new("shelves")?
                .with_purposes(purposes)
                .with_page_size(100),
        );
        self.settings = self
            .settings
            .clone()
            .field(SettingField::new("user_id", SettingKind::Text { max_len: 32 })?.required());
        self.legacy = Some(legacy::Legacy::new(api_base, consumer));
        Ok(self)
    }
}

#[async_trait]
impl Connector for GoodreadsConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn auth(&self) -> AuthMethod<'_> {
        match &self.legacy {
            Some(l) => AuthMethod::OAuth1(&l.consumer),
            None => AuthMethod::None,
        }
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn actions(&self) -> &[ActionSpec] {
        &[]
    }

    async fn fetch(
        &self,
        ctx: &crate::connector::FetchContext,
        stream: &StreamSpec,
        cursor: Option<&str>,
    ) -> Result<crate::connector::Page> {
        match (&self.legacy, stream.name()) {
            (Some(legacy), "shelves") => legacy.fetch(ctx, cursor).await,
            _ => Err(Error::NotFound {
                what: "stream fetcher (the library is imported, see parse_library_export)",
            }),
        }
    }

    fn settings(&self) -> &SettingsSchema {
        &self.settings
    }

    fn derive(&self, stream: &str, records: &[HeldRecord]) -> Option<Insight> {
        (stream == LIBRARY_STREAM).then(|| {
            let books: Vec<Book> = records.iter().filter_map(|r| r.decode().ok()).collect();
            Insight::Genres(GenreProfile::from_read_books(&books))
        })
    }
}
