//! Spotify: the `top_artists` stream (offset paging, artists with genres)
//! and the `recently_played` stream (plays after the newest seen), a
//! derived genre profile; 429 with `Retry-After` is honoured by the sync
//! runtime. The OAuth side is the built-in catalogue's `spotify` entry.
//!
//! ```
//! use consentry::connector::{Catalogue, ClientRegistration, Connector};
//! use consentry::connectors::spotify::Spotify;
//! use consentry::secret::ClientSecret;
//! let oauth = Catalogue::builtin()?.connector("spotify",
//!     ClientRegistration::new("client").with_secret(ClientSecret::new("s")))?;
//! let spotify = Spotify::new(oauth, ["matching".parse()?])?;
//! let names: Vec<_> = spotify.streams().iter().map(|s| s.name()).collect();
//! assert_eq!(names, ["top_artists", "recently_played"]);
//! # Ok::<(), consentry::Error>(())
//! ```

use async_trait::async_trait;
use url::Url;

use crate::connector::pagination::next_offset;
use crate::connector::{
    ActionSpec, AuthMethod, Connector, ConnectorInfo, CursorKind, FetchContext, OAuth2Connector,
    Page, StreamSpec,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Purpose, Scope};
use crate::records::{Artist, GenreProfile, HeldRecord, Insight, Play, Record};

/// The Web API's production base URL.
///
/// ```
/// use consentry::connectors::spotify::WEB_API;
/// assert_eq!(consentry::url::Url::parse(WEB_API).unwrap().host_str(), Some("api.spotify.com"));
/// ```
pub const WEB_API: &str = "https://api.spotify.com/v1";

/// Spotify on top of the catalogue's `spotify` OAuth entry.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration, Connector};
/// use consentry::connectors::spotify::Spotify;
/// let oauth = Catalogue::builtin()?.connector("spotify", ClientRegistration::new("id")
///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
/// let spotify = Spotify::new(oauth, ["matching".parse()?])?;
/// assert_eq!(spotify.streams()[0].page_size(), Some(50));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spotify {
    oauth: OAuth2Connector,
    api: Url,
    streams: Vec<StreamSpec>,
}

impl Spotify {
    /// Spotify through `oauth`, its data used for `purposes`.
    ///
    /// # Errors
    /// None in practice; `Result` keeps it panic-free.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration, Connector};
    /// use consentry::connectors::spotify::Spotify;
    /// let oauth = Catalogue::builtin()?.connector("spotify", ClientRegistration::new("id")
    ///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let spotify = Spotify::new(oauth, ["matching".parse()?])?;
    /// let names: Vec<&str> = spotify.streams().iter().map(|s| s.name()).collect();
    /// assert_eq!(names, ["top_artists", "recently_played"]);
    /// assert_eq!(spotify.streams()[1].purposes()[0].as_str(), "matching");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(
        oauth: OAuth2Connector,
        purposes: impl IntoIterator<Item = Purpose>,
    ) -> Result<Self> {
        let purposes: Vec<Purpose> = purposes.into_iter().collect();
        Ok(Self {
            oauth,
            api: Url::parse(WEB_API).map_err(|_| Error::Internal("spotify url"))?,
            streams: vec![
                StreamSpec::new("top_artists")?
                    .with_required_scopes([Scope::new("user-top-read")?])
                    .with_purposes(purposes.clone())
                    .with_cursor(CursorKind::Offset)
                    .with_page_size(50),
                StreamSpec::new("recently_played")?
                    .with_required_scopes([Scope::new("user-read-recently-played")?])
                    .with_purposes(purposes)
                    .with_cursor(CursorKind::Timestamp)
                    .with_page_size(50),
            ],
        })
    }

    /// Uses another API base URL (a test server).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless https (or http on loopback).
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::connectors::spotify::Spotify;
    /// let oauth = Catalogue::builtin()?.connector("spotify", ClientRegistration::new("id")
    ///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let spotify = Spotify::new(oauth, ["matching".parse()?])?;
    /// assert!(spotify.clone().with_api_base("http://127.0.0.1:9000/v1".parse().unwrap()).is_ok());
    /// assert!(spotify.with_api_base("ftp://api.example/v1".parse().unwrap()).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_api_base(mut self, url: Url) -> Result<Self> {
        crate::connector::check_endpoint("spotify api", &url)?;
        self.api = url;
        Ok(self)
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.api.clone();
        let p = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&p);
        url
    }

    async fn get(&self, ctx: &FetchContext, url: &Url) -> Result<serde_json::Value> {
        ctx.get_json(url.as_str()).await
    }

    async fn top_artists(
        &self,
        ctx: &FetchContext,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page> {
        let offset: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut url = self.url("/me/top/artists");
        url.query_pairs_mut()
            .append_pair("time_range", "medium_term")
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let body = self.get(ctx, &url).await?;
        let items = body
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut records = Vec::with_capacity(items.len());
        for a in items {
            let s = |p: &str| {
                a.pointer(p)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let id = s("/id").ok_or_else(|| Error::InvalidResponse {
                what: "spotify response",
                reason: "an artist without id".into(),
            })?;
            let artist = Artist {
                id: id.clone(),
                name: s("/name").unwrap_or_default(),
                genres: a
                    .get("genres")
                    .and_then(serde_json::Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .take(50)
                            .collect()
                    })
                    .unwrap_or_default(),
                popularity: a
                    .get("popularity")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|p| u8::try_from(p).ok()),
            };
            records.push(Record::normalized(id, &artist)?);
        }
        let total = body.get("total").and_then(serde_json::Value::as_u64);
        // The top list is a ranking: each run reads it all (no cursor
        // afterwards), and artists that dropped out are swept.
        Ok(
            match next_offset(offset, u64::from(limit), items.len() as u64, total) {
                Some(next) if next < 10_000 => Page::more(records, next.to_string()),
                _ => Page::done(records, None),
            },
        )
    }

    async fn recently_played(
        &self,
        ctx: &FetchContext,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page> {
        let mut url = self.url("/me/player/recently-played");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(after) = cursor {
                q.append_pair("after", after);
            }
        }
        let body = self.get(ctx, &url).await?;
        let items = body
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut records = Vec::with_capacity(items.len());
        for it in items {
            let s = |p: &str| {
                it.pointer(p)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let (Some(track_id), Some(played_at)) = (s("/track/id"), s("/played_at")) else {
                return Err(Error::InvalidResponse {
                    what: "spotify response",
                    reason: "a play without track id or time".into(),
                });
            };
            let play = Play {
                track: s("/track/name").unwrap_or_default(),
                artists: it
                    .pointer("/track/artists")
                    .and_then(serde_json::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["name"].as_str().map(str::to_owned))
                            .take(20)
                            .collect()
                    })
                    .unwrap_or_default(),
                track_id: track_id.clone(),
                played_at: played_at.clone(),
            };
            records.push(Record::normalized(
                format!("{played_at}/{track_id}"),
                &play,
            )?);
        }
        // `cursors.after` is the newest play returned (Unix ms): the next
        // page, and the next run, ask for plays after it.
        let after = crate::connector::pagination::page_token(&body, "/cursors/after");
        let more = body.get("next").is_some_and(|n| !n.is_null()) && !items.is_empty();
        Ok(match after {
            Some(a) if more => Page::more(records, a),
            a => Page::done(records, a.or_else(|| cursor.map(str::to_owned))),
        })
    }
}

#[async_trait]
impl Connector for Spotify {
    fn id(&self) -> &ConnectorId {
        self.oauth.id()
    }

    fn info(&self) -> &ConnectorInfo {
        self.oauth.info()
    }

    fn auth(&self) -> AuthMethod<'_> {
        self.oauth.auth()
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn actions(&self) -> &[ActionSpec] {
        &[]
    }

    async fn fetch(
        &self,
        ctx: &FetchContext,
        stream: &StreamSpec,
        cursor: Option<&str>,
    ) -> Result<Page> {
        let limit = stream.page_size().unwrap_or(50).clamp(1, 50);
        match stream.name() {
            "top_artists" => self.top_artists(ctx, limit, cursor).await,
            "recently_played" => self.recently_played(ctx, limit, cursor).await,
            _ => Err(Error::NotFound { what: "stream" }),
        }
    }

    /// The genre profile of the top artists.
    fn derive(&self, stream: &str, records: &[HeldRecord]) -> Option<Insight> {
        (stream == "top_artists").then(|| {
            let artists: Vec<Artist> = records.iter().filter_map(|r| r.decode().ok()).collect();
            Insight::Genres(GenreProfile::from_artists(&artists))
        })
    }
}
