//! Google Calendar: the `calendar_events` stream (`pageToken` paging,
//! `syncToken` incremental sync, `410 Gone` → a full sync again) and the
//! `create_event` action (reminders for a learning schedule). The OAuth
//! side (endpoints, scopes, the account from userinfo) is the built-in
//! catalogue's `google` entry.
//!
//! ```
//! use consentry::connector::{Catalogue, ClientRegistration, Connector};
//! use consentry::connectors::google::GoogleCalendar;
//! use consentry::secret::ClientSecret;
//! let oauth = Catalogue::builtin()?.connector("google",
//!     ClientRegistration::new("id.apps.googleusercontent.com").with_secret(ClientSecret::new("s")))?;
//! let google = GoogleCalendar::new(oauth, "reminders".parse()?)?;
//! assert_eq!(google.id().as_str(), "google");
//! assert_eq!(google.streams()[0].name(), "calendar_events");
//! assert_eq!(google.actions()[0].name(), "create_event");
//! # Ok::<(), consentry::Error>(())
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::connector::{
    Action, ActionSpec, AuthMethod, Connector, ConnectorInfo, CursorKind, FetchContext,
    OAuth2Connector, Page, SettingField, SettingKind, SettingsSchema, StreamSpec,
};
use crate::error::{Error, Result};
use crate::http::header;
use crate::ids::{ConnectorId, Purpose, Scope};
use crate::records::{Event, Record};

/// The Calendar API's production base URL.
///
/// ```
/// use consentry::connectors::google::CALENDAR_API;
/// assert!(consentry::url::Url::parse(CALENDAR_API).is_ok_and(|u| u.scheme() == "https"));
/// ```
pub const CALENDAR_API: &str = "https://www.googleapis.com/calendar/v3";
/// The read scope of `calendar_events`.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration, Connector};
/// use consentry::connectors::google::{GoogleCalendar, READ_SCOPE};
/// let oauth = Catalogue::builtin()?.connector("google", ClientRegistration::new("id")
///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
/// let google = GoogleCalendar::new(oauth, "reminders".parse()?)?;
/// assert_eq!(google.streams()[0].required_scopes()[0].as_str(), READ_SCOPE);
/// # Ok::<(), consentry::Error>(())
/// ```
pub const READ_SCOPE: &str = "https://www.googleapis.com/auth/calendar.readonly";
/// The write scope of `create_event`.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration, Connector};
/// use consentry::connectors::google::{GoogleCalendar, WRITE_SCOPE};
/// let oauth = Catalogue::builtin()?.connector("google", ClientRegistration::new("id")
///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
/// let google = GoogleCalendar::new(oauth, "reminders".parse()?)?;
/// assert_eq!(google.actions()[0].required_scopes()[0].as_str(), WRITE_SCOPE);
/// # Ok::<(), consentry::Error>(())
/// ```
pub const WRITE_SCOPE: &str = "https://www.googleapis.com/auth/calendar.events";

/// Input of the `create_event` action: an event with popup reminders.
///
/// ```
/// use consentry::connector::Action;
/// use consentry::connectors::google::CreateEvent;
/// let e = CreateEvent::new("Study: graph algorithms", "2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z")
///     .with_reminders([30, 5]);
/// assert_eq!(CreateEvent::NAME, "create_event");
/// assert_eq!(e.reminders_minutes, [30, 5]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreateEvent {
    /// Title.
    pub summary: String,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
    /// A description.
    pub description: Option<String>,
    /// Popup reminders, minutes before the start (at most 5, each up to
    /// four weeks).
    pub reminders_minutes: Vec<u32>,
}

impl CreateEvent {
    /// An event without description or reminders.
    ///
    /// ```
    /// use consentry::connectors::google::CreateEvent;
    /// let e = CreateEvent::new("Standup", "2026-03-02T09:00:00Z", "2026-03-02T09:15:00Z");
    /// assert_eq!(e.summary, "Standup");
    /// assert!(e.description.is_none() && e.reminders_minutes.is_empty());
    /// ```
    pub fn new(
        summary: impl Into<String>,
        start: impl Into<String>,
        end: impl Into<String>,
    ) -> Self {
        Self {
            summary: summary.into(),
            start: start.into(),
            end: end.into(),
            description: None,
            reminders_minutes: Vec::new(),
        }
    }

    /// Sets the popup reminders.
    ///
    /// ```
    /// use consentry::connectors::google::CreateEvent;
    /// let e = CreateEvent::new("Standup", "2026-03-02T09:00:00Z", "2026-03-02T09:15:00Z").with_reminders([10]);
    /// assert_eq!(e.reminders_minutes, [10]);
    /// ```
    #[must_use]
    pub fn with_reminders(mut self, minutes: impl IntoIterator<Item = u32>) -> Self {
        self.reminders_minutes = minutes.into_iter().collect();
        self
    }

    /// Sets the description.
    ///
    /// ```
    /// use consentry::connectors::google::CreateEvent;
    /// let e = CreateEvent::new("Standup", "2026-03-02T09:00:00Z", "2026-03-02T09:15:00Z").with_description("Room 4");
    /// assert_eq!(e.description.as_deref(), Some("Room 4"));
    /// ```
    #[must_use]
    pub fn with_description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
}

/// What `create_event` returns.
///
/// ```
/// use consentry::connectors::google::CreatedEvent;
/// let out: CreatedEvent = serde_json::from_value(serde_json::json!({"id": "ev1",
///     "event": {"title": "Study", "start": "2026-03-02T18:00:00Z", "end": null, "all_day": false,
///               "status": "confirmed", "updated": null}}))?;
/// assert_eq!(out.event.title, "Study");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreatedEvent {
    /// Google's event id.
    pub id: String,
    /// The event as stored.
    pub event: Event,
}

impl Action for CreateEvent {
    const NAME: &'static str = "create_event";
    type Output = CreatedEvent;
}

/// Google Calendar on top of the catalogue's `google` OAuth entry.
///
/// ```
/// use consentry::connector::{Catalogue, ClientRegistration, Connector};
/// use consentry::connectors::google::GoogleCalendar;
/// let oauth = Catalogue::builtin()?.connector("google", ClientRegistration::new("id")
///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
/// let google = GoogleCalendar::new(oauth, "reminders".parse()?)?
///     .with_api_base("http://127.0.0.1:8080/calendar/v3".parse().unwrap())?;
/// assert_eq!(google.settings().fields().len(), 2);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GoogleCalendar {
    oauth: OAuth2Connector,
    api: Url,
    streams: Vec<StreamSpec>,
    actions: Vec<ActionSpec>,
    settings: SettingsSchema,
}

impl GoogleCalendar {
    /// Calendar access through `oauth` (the catalogue's `google` entry
    /// with the host's client), its data and writes used for `purpose`.
    ///
    /// # Errors
    /// None in practice; `Result` keeps it panic-free.
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration, Connector};
    /// use consentry::connectors::google::GoogleCalendar;
    /// let oauth = Catalogue::builtin()?.connector("google", ClientRegistration::new("id")
    ///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let google = GoogleCalendar::new(oauth, "reminders".parse()?)?;
    /// assert_eq!(google.streams()[0].name(), "calendar_events");
    /// assert_eq!(google.actions()[0].name(), "create_event");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(oauth: OAuth2Connector, purpose: Purpose) -> Result<Self> {
        Ok(Self {
            oauth,
            api: Url::parse(CALENDAR_API).map_err(|_| Error::Internal("calendar url"))?,
            streams: vec![
                StreamSpec::new("calendar_events")?
                    .with_required_scopes([Scope::new(READ_SCOPE)?])
                    .with_purposes([purpose.clone()])
                    .with_cursor(CursorKind::Opaque)
                    .with_page_size(250),
            ],
            actions: vec![
                ActionSpec::new("create_event", purpose)?
                    .with_required_scopes([Scope::new(WRITE_SCOPE)?]),
            ],
            settings: SettingsSchema::new()
                .field(
                    SettingField::new("calendar", SettingKind::Text { max_len: 256 })?
                        .with_default(serde_json::json!("primary")),
                )
                .field(
                    SettingField::new(
                        "sync_interval_minutes",
                        SettingKind::Integer { min: 15, max: 1440 },
                    )?
                    .with_default(serde_json::json!(60)),
                ),
        })
    }

    /// Uses another API base URL (a test server).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless https (or http on loopback).
    ///
    /// ```
    /// use consentry::connector::{Catalogue, ClientRegistration};
    /// use consentry::connectors::google::GoogleCalendar;
    /// let oauth = Catalogue::builtin()?.connector("google", ClientRegistration::new("id")
    ///     .with_secret(consentry::secret::ClientSecret::new("s")))?;
    /// let google = GoogleCalendar::new(oauth, "reminders".parse()?)?;
    /// assert!(google.clone().with_api_base("http://127.0.0.1:8080/calendar/v3".parse().unwrap()).is_ok());
    /// assert!(google.with_api_base("http://calendar.example/v3".parse().unwrap()).is_err()); // http off loopback
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn with_api_base(mut self, url: Url) -> Result<Self> {
        crate::connector::check_endpoint("calendar api", &url)?;
        self.api = url;
        Ok(self)
    }

    fn events_url(&self, ctx: &FetchContext) -> Url {
        let calendar = ctx.setting_str("calendar").unwrap_or("primary");
        let mut url = self.api.clone();
        let path = format!(
            "{}/calendars/{}/events",
            url.path().trim_end_matches('/'),
            crate::oauth::oauth1::encode(calendar)
        );
        url.set_path(&path);
        url
    }
}

/// The cursor: the sync token of the run (incremental), the page token
/// within it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
}

/// Maps one Calendar API event resource.
fn event(item: &serde_json::Value) -> Option<(String, Event)> {
    let s = |p: &str| {
        item.pointer(p)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let id = s("/id")?;
    let (start, all_day) = match (s("/start/dateTime"), s("/start/date")) {
        (Some(t), _) => (t, false),
        (None, Some(d)) => (d, true),
        (None, None) => (String::new(), false),
    };
    Some((
        id,
        Event {
            title: s("/summary").unwrap_or_default(),
            start,
            end: s("/end/dateTime").or_else(|| s("/end/date")),
            all_day,
            status: s("/status").unwrap_or_else(|| "confirmed".into()),
            updated: s("/updated"),
        },
    ))
}

#[async_trait]
impl Connector for GoogleCalendar {
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
        &self.actions
    }

    async fn fetch(
        &self,
        ctx: &FetchContext,
        stream: &StreamSpec,
        cursor: Option<&str>,
    ) -> Result<Page> {
        if stream.name() != "calendar_events" {
            return Err(Error::NotFound { what: "stream" });
        }
        let cur: Cursor = match cursor {
            Some(c) => serde_json::from_str(c)
                .map_err(|_| Error::invalid("stream cursor", "not a calendar cursor"))?,
            None => Cursor::default(),
        };
        let mut url = self.events_url(ctx);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("maxResults", &stream.page_size().unwrap_or(250).to_string());
            match &cur.sync {
                // Incremental: deletions come back as `cancelled` events.
                Some(token) => q.append_pair("syncToken", token),
                None => q.append_pair("showDeleted", "false"),
            };
            if let Some(p) = &cur.page {
                q.append_pair("pageToken", p);
            }
        }
        let request = ::http::Request::get(url.as_str())
            .header(header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|_| Error::invalid("calendar url", "not a valid URI"))?;
        let response = ctx.send(request).await?;
        match response.status().as_u16() {
            // The sync token expired: wipe and sync everything again.
            410 if cur.sync.is_some() => return Ok(Page::reset()),
            s if !(200..300).contains(&s) => {
                return Err(Error::UpstreamStatus {
                    what: "calendar API",
                    status: s,
                });
            }
            _ => {}
        }
        let body: serde_json::Value = crate::connector::parse_json(response.body())?;
        let items = body
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let (mut records, mut deleted) = (Vec::new(), Vec::new());
        for item in items {
            let Some((id, e)) = event(item) else {
                return Err(Error::InvalidResponse {
                    what: "calendar API response",
                    reason: "an event without id".into(),
                });
            };
            if e.status == "cancelled" {
                deleted.push(id);
            } else {
                records.push(Record::normalized(id, &e)?);
            }
        }
        let token = |p: &str| crate::connector::pagination::page_token(&body, p);
        let encode =
            |c: &Cursor| serde_json::to_string(c).map_err(|_| Error::Internal("cursor encoding"));
        Ok(match (token("/nextPageToken"), token("/nextSyncToken")) {
            (Some(page), _) => Page::more(
                records,
                encode(&Cursor {
                    sync: cur.sync,
                    page: Some(page),
                })?,
            ),
            (None, sync) => Page::done(
                records,
                sync.map(|s| {
                    encode(&Cursor {
                        sync: Some(s),
                        page: None,
                    })
                })
                .transpose()?,
            ),
        }
        .with_deleted(deleted))
    }

    async fn perform(
        &self,
        ctx: &FetchContext,
        action: &ActionSpec,
        input: serde_json::Value,
    ) -> Result<serde_json::Value> {
        if action.name() != CreateEvent::NAME {
            return Err(Error::NotFound { what: "action" });
        }
        let e: CreateEvent = serde_json::from_value(input)
            .map_err(|e| Error::invalid("create_event input", e.to_string()))?;
        if e.summary.is_empty() || e.summary.len() > 1024 {
            return Err(Error::invalid(
                "create_event input",
                "summary must be 1 to 1024 bytes",
            ));
        }
        for t in [&e.start, &e.end] {
            if crate::connector::pagination::parse_rfc3339(t).is_none() {
                return Err(Error::invalid(
                    "create_event input",
                    "start and end must be RFC 3339 date-times",
                ));
            }
        }
        if e.reminders_minutes.len() > 5 || e.reminders_minutes.iter().any(|m| *m > 40_320) {
            return Err(Error::invalid(
                "create_event input",
                "at most 5 reminders, each up to 40320 minutes",
            ));
        }
        let overrides: Vec<serde_json::Value> = e
            .reminders_minutes
            .iter()
            .map(|m| serde_json::json!({"method": "popup", "minutes": m}))
            .collect();
        let body = serde_json::json!({
            "summary": e.summary,
            "description": e.description,
            "start": {"dateTime": e.start},
            "end": {"dateTime": e.end},
            "reminders": {"useDefault": overrides.is_empty(), "overrides": overrides},
        });
        let request = ::http::Request::post(self.events_url(ctx).as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(serde_json::to_vec(&body).map_err(|_| Error::Internal("event encoding"))?)
            .map_err(|_| Error::invalid("calendar url", "not a valid URI"))?;
        let response = ctx.send(request).await?;
        if !response.status().is_success() {
            return Err(Error::UpstreamStatus {
                what: "calendar API",
                status: response.status().as_u16(),
            });
        }
        let created: serde_json::Value = crate::connector::parse_json(response.body())?;
        let (id, event) = event(&created).ok_or_else(|| Error::InvalidResponse {
            what: "calendar API response",
            reason: "the created event has no id".into(),
        })?;
        serde_json::to_value(CreatedEvent { id, event })
            .map_err(|_| Error::Internal("event encoding"))
    }

    fn settings(&self) -> &SettingsSchema {
        &self.settings
    }
}
