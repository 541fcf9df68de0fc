//! Harvested records: what a connector fetched, normalised, and what the
//! store holds about it.
//!
//! A connector turns a provider's payload into [`Record`]s: a provider
//! record id, a kind, and normalised data (a [`Book`], an [`Event`], an
//! [`Artist`], a [`Play`], or a plain JSON object for declared streams).
//! The store keeps each with its provenance as a [`HeldRecord`]: which
//! connection and stream it came from, when it was fetched, and the
//! purposes it is held for. Hosts read them only through
//! `Integrations::records`, which checks consent and logs the read.
//!
//! ```
//! use consentry::records::{Artist, Normalized, Record};
//! let artist = Artist { id: "0TnOYISbd1XYRBk9myaseg".into(), name: "Pitbull".into(),
//!                       genres: vec!["dance pop".into(), "pop".into()], popularity: Some(80) };
//! let record = Record::normalized(&artist.id, &artist)?;
//! assert_eq!(record.kind(), Artist::KIND);
//! assert_eq!(record.decode::<Artist>()?, artist);
//! # Ok::<(), consentry::Error>(())
//! ```

mod insight;
mod types;

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ConnectionId, Purpose};

pub use insight::{GenreCount, GenreProfile, Insight};
/// A music artist (re-exported from [`types`](self)).
pub use types::Artist;
pub use types::{Book, Event, Play, Shelf};

/// The longest provider record id accepted, in bytes.
///
/// ```
/// use consentry::records::{MAX_RECORD_ID_LEN, Record};
/// assert!(Record::new("x".repeat(MAX_RECORD_ID_LEN), "contact", serde_json::json!({})).is_ok());
/// assert!(Record::new("x".repeat(MAX_RECORD_ID_LEN + 1), "contact", serde_json::json!({})).is_err());
/// ```
pub const MAX_RECORD_ID_LEN: usize = 255;
/// The largest normalised record accepted, in bytes of JSON.
///
/// ```
/// use consentry::records::{MAX_RECORD_BYTES, Record};
/// let big = serde_json::json!({ "text": "x".repeat(MAX_RECORD_BYTES) });
/// assert!(Record::new("1", "note", big).is_err());
/// ```
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The longest record kind accepted, in bytes.
///
/// ```
/// use consentry::records::{MAX_KIND_LEN, Record};
/// assert!(Record::new("1", &"k".repeat(MAX_KIND_LEN), serde_json::json!({})).is_ok());
/// assert!(Record::new("1", &"k".repeat(MAX_KIND_LEN + 1), serde_json::json!({})).is_err());
/// ```
pub const MAX_KIND_LEN: usize = 64;

/// A normalised record type with a stable kind name.
///
/// ```
/// use consentry::records::{Book, Normalized};
/// assert_eq!(Book::KIND, "book");
/// ```
pub trait Normalized: Serialize + DeserializeOwned {
    /// The kind stored with records of this type.
    const KIND: &'static str;
}

/// One record as a connector produces it: provider id, kind, normalised
/// data (a JSON object).
///
/// ```
/// use consentry::records::Record;
/// let r = Record::new("42", "contact", serde_json::json!({"name": "Ada"}))?;
/// assert_eq!((r.id(), r.kind()), ("42", "contact"));
/// assert!(Record::new("", "contact", serde_json::json!({})).is_err());
/// assert!(Record::new("1", "contact", serde_json::json!([1])).is_err()); // not an object
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    id: String,
    kind: String,
    data: String,
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_RECORD_ID_LEN || id.contains(char::is_control) {
        return Err(Error::invalid(
            "record id",
            format!("must be 1 to {MAX_RECORD_ID_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

impl Record {
    /// A record with `data`, which must be a JSON object of at most
    /// [`MAX_RECORD_BYTES`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty, long or multi-line id, a kind
    /// that is not a token (ASCII letters, digits, `_ - . :`), data that is
    /// not an object or is too large.
    ///
    /// ```
    /// use consentry::records::Record;
    /// let r = Record::new("42", "contact", serde_json::json!({"name": "Ada"}))?;
    /// assert_eq!(r.data(), r#"{"name":"Ada"}"#);
    /// assert!(Record::new("42", "not a token", serde_json::json!({})).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(id: impl Into<String>, kind: &str, data: serde_json::Value) -> Result<Self> {
        if !data.is_object() {
            return Err(Error::invalid("record data", "must be a JSON object"));
        }
        let text = serde_json::to_string(&data)
            .map_err(|e| Error::invalid("record data", e.to_string()))?;
        Self::from_parts(id.into(), kind, text)
    }

    /// A record holding a [`Normalized`] value.
    ///
    /// # Errors
    /// As [`Record::new`].
    ///
    /// ```
    /// use consentry::records::{Book, Normalized, Record};
    /// let book = Book { title: "Dune".into(), shelf: "read".into(), ..Book::default() };
    /// let r = Record::normalized("b1", &book)?;
    /// assert_eq!(r.kind(), Book::KIND);
    /// assert_eq!(r.decode::<Book>()?, book);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn normalized<T: Normalized>(id: impl Into<String>, value: &T) -> Result<Self> {
        let data = serde_json::to_value(value)
            .map_err(|e| Error::invalid("record data", e.to_string()))?;
        Self::new(id, T::KIND, data)
    }

    pub(crate) fn from_parts(id: String, kind: &str, data: String) -> Result<Self> {
        check_id(&id)?;
        crate::ids::check_token("record kind", kind, MAX_KIND_LEN)?;
        if data.len() > MAX_RECORD_BYTES {
            return Err(Error::invalid(
                "record data",
                format!("is {} bytes; the limit is {MAX_RECORD_BYTES}", data.len()),
            ));
        }
        Ok(Self {
            id,
            kind: kind.to_owned(),
            data,
        })
    }

    /// The provider's id of the record.
    ///
    /// ```
    /// use consentry::records::Record;
    /// assert_eq!(Record::new("42", "contact", serde_json::json!({}))?.id(), "42");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The record's kind (`book`, `event`, ...).
    ///
    /// ```
    /// use consentry::records::Record;
    /// assert_eq!(Record::new("42", "contact", serde_json::json!({}))?.kind(), "contact");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The normalised data, as JSON text.
    ///
    /// ```
    /// use consentry::records::Record;
    /// let r = Record::new("42", "contact", serde_json::json!({"a": 1}))?;
    /// assert_eq!(r.data(), r#"{"a":1}"#);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Decodes the data as `T`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the data does not have `T`'s shape.
    ///
    /// ```
    /// use consentry::records::Record;
    /// let r = Record::new("42", "contact", serde_json::json!({"name": "Ada"}))?;
    /// let v: serde_json::Value = r.decode()?;
    /// assert_eq!(v["name"], "Ada");
    /// assert!(r.decode::<Vec<u8>>().is_err()); // not that shape
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.data).map_err(|e| Error::invalid("record data", e.to_string()))
    }

    pub(crate) fn into_parts(self) -> (String, String, String) {
        (self.id, self.kind, self.data)
    }
}

/// A record as the store holds it: the data with its provenance and the
/// purposes it is held for. Serializes with the data inline.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ConnectionId, Purpose};
/// use consentry::records::HeldRecord;
/// let r = HeldRecord::new(ConnectionId::new("c1")?, "events".into(), "e1".into(), "event".into(),
///     r#"{"title":"Standup"}"#.into(), SystemTime::UNIX_EPOCH, vec![Purpose::new("reminders")?])?;
/// assert_eq!(r.value()?["title"], "Standup");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeldRecord {
    /// The connection it was fetched through.
    pub connection: ConnectionId,
    /// The stream it belongs to.
    pub stream: String,
    /// The provider's id.
    pub id: String,
    /// The kind (`book`, `event`, ...).
    pub kind: String,
    /// The normalised data: a JSON object, as text (written validated;
    /// serialized inline as JSON, not as a string).
    #[serde(with = "raw_json")]
    pub data: String,
    /// When it was last fetched.
    #[serde(with = "crate::records::millis")]
    pub fetched_at: SystemTime,
    /// The purposes it is held for (each consented when it was fetched).
    pub purposes: Vec<Purpose>,
}

impl PartialEq for HeldRecord {
    /// Equal when every field is, the data compared as JSON text.
    fn eq(&self, other: &Self) -> bool {
        self.connection == other.connection
            && self.stream == other.stream
            && self.id == other.id
            && self.kind == other.kind
            && self.data == other.data
            && self.fetched_at == other.fetched_at
            && self.purposes == other.purposes
    }
}

impl HeldRecord {
    /// Builds a held record (for store implementations). `data` is taken
    /// as the JSON text it was stored as (validated when written); it is
    /// parsed when decoded or serialized.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `data` is not the text of a JSON object
    /// (a cheap check of its braces).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::{ConnectionId, Purpose};
    /// use consentry::records::HeldRecord;
    /// let c = ConnectionId::new("c1")?;
    /// let r = HeldRecord::new(c.clone(), "events".into(), "e1".into(), "event".into(), "{}".into(), SystemTime::UNIX_EPOCH, vec![Purpose::new("reminders")?])?;
    /// assert_eq!((r.stream.as_str(), r.id.as_str()), ("events", "e1"));
    /// assert!(HeldRecord::new(c, "events".into(), "e1".into(), "event".into(), "[1]".into(), SystemTime::UNIX_EPOCH, vec![]).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        connection: ConnectionId,
        stream: String,
        id: String,
        kind: String,
        data: String,
        fetched_at: SystemTime,
        purposes: Vec<Purpose>,
    ) -> Result<Self> {
        let trimmed = data.trim();
        if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
            return Err(Error::invalid("record data", "is not a JSON object"));
        }
        Ok(Self {
            connection,
            stream,
            id,
            kind,
            data,
            fetched_at,
            purposes,
        })
    }

    /// The data as a JSON value.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the stored text is not JSON.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::ConnectionId;
    /// use consentry::records::HeldRecord;
    /// let r = HeldRecord::new(ConnectionId::new("c1")?, "events".into(), "e1".into(), "event".into(),
    ///     r#"{"n":1}"#.into(), SystemTime::UNIX_EPOCH, vec![])?;
    /// assert_eq!(r.value()?, serde_json::json!({"n": 1}));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn value(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.data).map_err(|e| Error::invalid("record data", e.to_string()))
    }

    /// Decodes the data as `T` (a [`Book`], an [`Event`], ...).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the data does not have `T`'s shape.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use consentry::ConnectionId;
    /// use consentry::records::{Book, HeldRecord};
    /// let r = HeldRecord::new(ConnectionId::new("c1")?, "books".into(), "b1".into(), "book".into(),
    ///     serde_json::to_string(&Book { title: "Dune".into(), ..Book::default() }).unwrap(), SystemTime::UNIX_EPOCH, vec![])?;
    /// assert_eq!(r.decode::<Book>()?.title, "Dune");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.data).map_err(|e| Error::invalid("record data", e.to_string()))
    }
}

/// Serde for JSON text embedded as JSON.
mod raw_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub(super) fn serialize<S: Serializer>(data: &str, s: S) -> Result<S::Ok, S::Error> {
        let raw: Box<RawValue> =
            RawValue::from_string(data.to_owned()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| raw.get().to_owned())
    }
}

/// Serde for times as milliseconds since the Unix epoch.
pub(crate) mod millis {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(crate::clock::unix_millis(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        i64::deserialize(d).map(crate::clock::from_unix_millis)
    }
}

/// Serde for optional times as milliseconds since the Unix epoch.
pub(crate) mod opt_millis {
    use std::time::SystemTime;

    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&crate::clock::unix_millis(*t)),
            None => s.serialize_none(),
        }
    }
}
