//! Derived insights: what matching code consumes instead of raw records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Artist, Book};

/// The most genres a profile keeps.
const MAX_GENRES: usize = 100;

/// One genre and how often it occurs.
///
/// ```
/// use consentry::records::GenreCount;
/// let g = GenreCount { genre: "jazz".into(), count: 3 };
/// assert_eq!(g.count, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenreCount {
    /// The genre, lowercased and trimmed.
    pub genre: String,
    /// How many items carry it.
    pub count: u64,
}

/// Genre counts, most frequent first (ties by name), at most 100.
///
/// ```
/// use consentry::records::{Artist, GenreProfile};
/// let artists = [
///     Artist { id: "1".into(), name: "A".into(), genres: vec!["Jazz".into(), "soul".into()], popularity: None },
///     Artist { id: "2".into(), name: "B".into(), genres: vec!["jazz ".into()], popularity: None },
/// ];
/// let p = GenreProfile::from_artists(&artists);
/// assert_eq!(p.genres[0].genre, "jazz");
/// assert_eq!(p.genres[0].count, 2);
/// assert_eq!(p.genres.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenreProfile {
    /// The genres, most frequent first.
    pub genres: Vec<GenreCount>,
}

impl GenreProfile {
    /// Counts genres over `items` (each item's genres counted once).
    ///
    /// ```
    /// use consentry::records::GenreProfile;
    /// let p = GenreProfile::from_genres([vec!["Rock", "pop"], vec!["rock", "rock"], vec![]]);
    /// assert_eq!((p.genres[0].genre.as_str(), p.genres[0].count), ("rock", 2)); // once per item
    /// assert_eq!((p.genres[1].genre.as_str(), p.genres[1].count), ("pop", 1));
    /// ```
    pub fn from_genres<'a, I, G>(items: I) -> Self
    where
        I: IntoIterator<Item = G>,
        G: IntoIterator<Item = &'a str>,
    {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for genres in items {
            let mut seen: Vec<String> = Vec::new();
            for g in genres {
                let g = g.trim().to_lowercase();
                if g.is_empty() || g.len() > 100 || seen.contains(&g) {
                    continue;
                }
                seen.push(g.clone());
                *counts.entry(g).or_default() += 1;
            }
        }
        let mut genres: Vec<GenreCount> = counts
            .into_iter()
            .map(|(genre, count)| GenreCount { genre, count })
            .collect();
        genres.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.genre.cmp(&b.genre)));
        genres.truncate(MAX_GENRES);
        Self { genres }
    }

    /// The genres of artists (Spotify top artists).
    ///
    /// ```
    /// use consentry::records::{Artist, GenreProfile};
    /// let artist = Artist { id: "1".into(), name: "A".into(), genres: vec!["Soul".into()], popularity: None };
    /// let p = GenreProfile::from_artists(&[artist]);
    /// assert_eq!(p.genres[0].genre, "soul");
    /// ```
    pub fn from_artists(artists: &[Artist]) -> Self {
        Self::from_genres(artists.iter().map(|a| a.genres.iter().map(String::as_str)))
    }

    /// The non-exclusive shelves of books on the `read` shelf (Goodreads
    /// readers shelve by genre: `fantasy`, `history`).
    ///
    /// ```
    /// use consentry::records::{Book, GenreProfile};
    /// let read = Book { shelf: "read".into(), shelves: vec!["fantasy".into()], ..Book::default() };
    /// let unread = Book { shelf: "to-read".into(), shelves: vec!["history".into()], ..Book::default() };
    /// let p = GenreProfile::from_read_books(&[read, unread]);
    /// assert_eq!(p.genres.len(), 1);
    /// assert_eq!(p.genres[0].genre, "fantasy");
    /// ```
    pub fn from_read_books(books: &[Book]) -> Self {
        Self::from_genres(
            books
                .iter()
                .filter(|b| b.shelf == "read")
                .map(|b| b.shelves.iter().map(String::as_str)),
        )
    }
}

/// Something derived from a stream's records by its connector.
///
/// ```
/// use consentry::records::{GenreProfile, Insight};
/// let i = Insight::Genres(GenreProfile::default());
/// assert!(matches!(i, Insight::Genres(p) if p.genres.is_empty()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Insight {
    /// A genre profile.
    Genres(GenreProfile),
}
