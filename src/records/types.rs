//! The normalised record types connectors produce.

use serde::{Deserialize, Serialize};

use super::Normalized;

/// A book on a reading shelf (Goodreads).
///
/// ```
/// use consentry::records::{Book, Normalized};
/// let b = Book { title: "Dune".into(), authors: vec!["Frank Herbert".into()], ..Book::default() };
/// assert_eq!(Book::KIND, "book");
/// assert!(b.isbn13.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// Title.
    pub title: String,
    /// Authors, main author first.
    pub authors: Vec<String>,
    /// ISBN-13, digits only.
    pub isbn13: Option<String>,
    /// The user's rating, 1 to 5 (none when unrated).
    pub rating: Option<u8>,
    /// The exclusive shelf (`read`, `currently-reading`, `to-read`).
    pub shelf: String,
    /// The user's other shelves (often genres: `fantasy`, `sci-fi`).
    pub shelves: Vec<String>,
    /// When the user finished it, `YYYY-MM-DD`.
    pub date_read: Option<String>,
}

impl Normalized for Book {
    const KIND: &'static str = "book";
}

/// A shelf of a reader (Goodreads `shelf/list.xml`).
///
/// ```
/// use consentry::records::{Normalized, Shelf};
/// assert_eq!(Shelf::KIND, "shelf");
/// let s = Shelf { name: "read".into(), book_count: 12, exclusive: true };
/// assert!(s.exclusive);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shelf {
    /// The shelf's name.
    pub name: String,
    /// How many books are on it.
    pub book_count: u64,
    /// Whether a book can be on only one such shelf (`read`, `to-read`).
    pub exclusive: bool,
}

impl Normalized for Shelf {
    const KIND: &'static str = "shelf";
}

/// A calendar event (Google Calendar).
///
/// ```
/// use consentry::records::{Event, Normalized};
/// assert_eq!(Event::KIND, "event");
/// let e = Event { title: "Study: graphs".into(), start: "2026-03-01T09:00:00Z".into(), ..Event::default() };
/// assert!(!e.all_day);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Title (`summary`).
    pub title: String,
    /// Start: an RFC 3339 date-time, or a date for all-day events.
    pub start: String,
    /// End, same forms as `start`.
    pub end: Option<String>,
    /// Whether the event lasts whole days.
    pub all_day: bool,
    /// `confirmed`, `tentative` or `cancelled`.
    pub status: String,
    /// When the provider last changed it (RFC 3339).
    pub updated: Option<String>,
}

impl Normalized for Event {
    const KIND: &'static str = "event";
}

/// A music artist with their genres (Spotify).
///
/// ```
/// use consentry::records::{Artist, Normalized};
/// assert_eq!(Artist::KIND, "artist");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artist {
    /// The provider's artist id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Genres, as the provider names them.
    pub genres: Vec<String>,
    /// Popularity, 0 to 100, if known.
    pub popularity: Option<u8>,
}

impl Normalized for Artist {
    const KIND: &'static str = "artist";
}

/// A track the user played (Spotify recently played).
///
/// ```
/// use consentry::records::{Normalized, Play};
/// assert_eq!(Play::KIND, "play");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Play {
    /// The track's id.
    pub track_id: String,
    /// The track's name.
    pub track: String,
    /// The track's artists.
    pub artists: Vec<String>,
    /// When it was played (RFC 3339).
    pub played_at: String,
}

impl Normalized for Play {
    const KIND: &'static str = "play";
}
