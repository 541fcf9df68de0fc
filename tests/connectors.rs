//! Google Calendar, Spotify and Goodreads connectors against local servers
//! on 127.0.0.1 that answer with the providers' documented shapes,
//! including their error and rate-limit responses.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consentry::clock::{Clock, ManualClock};
use consentry::connection::AccountInfo;
use consentry::connector::{Catalogue, ClientRegistration, Connector};
use consentry::connectors::goodreads::{self, GoodreadsConnector, OAuth1Credentials};
use consentry::connectors::google::{CreateEvent, GoogleCalendar};
use consentry::connectors::spotify::Spotify;
use consentry::http::ReqwestClient;
use consentry::integrations::FieldMapping;
use consentry::oauth::oauth1;
use consentry::records::{Artist, Book, Event, Insight};
use consentry::secret::ClientSecret;
use consentry::store::{ConnectionStore, ConnectionWrite, MappingScope, MemoryStore, RecordStore};
use consentry::sync::SyncOptions;
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{Connection, ConnectionId, ConnectorId, Error, Integrations, Purpose, UserId};
use support::http_server::{Reply, Req, Server};

fn p(s: &str) -> Purpose {
    Purpose::new(s).unwrap()
}

fn integrations(store: &MemoryStore, clock: impl Clock, connector: impl Connector) -> Integrations {
    Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .clock(clock)
        .sync_options(SyncOptions::default().retries(
            2,
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
        .build()
        .unwrap()
}

async fn oauth_connection(
    i: &Integrations,
    store: &MemoryStore,
    user: &UserId,
    connector: &str,
    scopes: &[&str],
) -> ConnectionId {
    let now = SystemTime::now();
    let mut c = Connection::new(
        ConnectionId::generate().unwrap(),
        user.clone(),
        ConnectorId::new(connector).unwrap(),
        AccountInfo::new("acct"),
        now,
    );
    c.access_expires_at = Some(now + Duration::from_secs(3600 * 24 * 365));
    c.scopes = scopes.iter().map(|s| s.parse().unwrap()).collect();
    let sealed = i
        .vault()
        .seal(
            user,
            &c.id,
            vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                "ya29.test".into(),
            )],
        )
        .await
        .unwrap();
    store
        .write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed))
        .await
        .unwrap();
    c.id
}

fn registration() -> ClientRegistration {
    ClientRegistration::new("client").with_secret(ClientSecret::new("secret"))
}

// ===== Google Calendar =====

struct Calendar {
    events: Mutex<Vec<serde_json::Value>>,
    /// The sync token the server accepts; others are answered 410.
    valid_sync: Mutex<String>,
    created: Mutex<Vec<serde_json::Value>>,
}

fn gevent(id: &str, title: &str, status: &str) -> serde_json::Value {
    serde_json::json!({"kind": "calendar#event", "id": id, "status": status, "summary": title,
        "start": {"dateTime": "2026-03-01T10:00:00Z"}, "end": {"dateTime": "2026-03-01T11:00:00Z"},
        "updated": "2026-02-01T00:00:00.000Z", "organizer": {"email": "me@example.com"}})
}

impl Calendar {
    fn handle(&self, r: &Req) -> Reply {
        if r.path != "/calendar/v3/calendars/primary/events" || r.bearer() != Some("ya29.test") {
            return Reply::json(
                404,
                &serde_json::json!({"error": {"code": 404, "message": "Not Found"}}),
            );
        }
        if r.method == "POST" {
            let mut e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            e["id"] = "created1".into();
            e["status"] = "confirmed".into();
            self.created.lock().unwrap().push(e.clone());
            return Reply::json(200, &e);
        }
        let all = self.events.lock().unwrap().clone();
        let valid = self.valid_sync.lock().unwrap().clone();
        let visible: Vec<serde_json::Value> = match r.q("syncToken") {
            // Google: 410 Gone when the sync token is no longer valid.
            Some(t) if t != valid => {
                return Reply::json(
                    410,
                    &serde_json::json!({"error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required.",
                    "errors": [{"domain": "global", "reason": "fullSyncRequired"}]}}),
                );
            }
            // Incremental: what changed since the token, cancelled included.
            Some(_) => all
                .iter()
                .filter(|e| e["changed"] == true)
                .cloned()
                .collect(),
            None => all
                .iter()
                .filter(|e| e["status"] != "cancelled")
                .cloned()
                .collect(),
        };
        let size: usize = r.q("maxResults").unwrap().parse().unwrap();
        let start: usize = r
            .q("pageToken")
            .map_or(0, |t| t.trim_start_matches("p").parse().unwrap());
        let end = (start + size).min(visible.len());
        let mut body = serde_json::json!({"kind": "calendar#events", "items": visible[start..end]});
        if end < visible.len() {
            body["nextPageToken"] = format!("p{end}").into();
        } else {
            body["nextSyncToken"] = valid.into();
        }
        Reply::json(200, &body)
    }
}

#[tokio::test]
async fn google_calendar_pages_syncs_incrementally_resyncs_after_410_and_creates_events() {
    let cal = Arc::new(Calendar {
        events: Mutex::new(
            (0..7)
                .map(|i| gevent(&format!("ev{i}"), &format!("Event {i}"), "confirmed"))
                .collect(),
        ),
        valid_sync: Mutex::new("sync-1".into()),
        created: Mutex::default(),
    });
    let c = cal.clone();
    let server = Server::start(move |r| c.handle(r));
    let oauth = Catalogue::builtin()
        .unwrap()
        .connector("google", registration())
        .unwrap();
    let google = GoogleCalendar::new(oauth, p("reminders"))
        .unwrap()
        .with_api_base(server.url("/calendar/v3").parse().unwrap())
        .unwrap();
    let store = MemoryStore::new();
    let i = integrations(&store, ManualClock::starting_now(), google);
    let user = UserId::new("u").unwrap();
    let conn = oauth_connection(
        &i,
        &store,
        &user,
        "google",
        &[
            consentry::connectors::google::READ_SCOPE,
            consentry::connectors::google::WRITE_SCOPE,
        ],
    )
    .await;
    i.configure(&user, &conn, serde_json::json!({"calendar": "primary"}))
        .await
        .unwrap();
    let bad = i
        .configure(
            &user,
            &conn,
            serde_json::json!({"calendar": 7, "sync_interval_minutes": 1}),
        )
        .await
        .unwrap_err();
    let Error::InvalidSettings { errors } = bad else {
        panic!("{bad}")
    };
    assert_eq!(
        errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["calendar", "sync_interval_minutes"]
    );
    i.grant_consent(&user, &conn, &p("reminders"))
        .await
        .unwrap();

    // Full sync: pages of 3 (page size from the stream spec: use a small one via the server).
    let r = i
        .sync_now(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap();
    assert_eq!(r.upserted, 7);
    let held = i
        .records(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap();
    let e: Event = held[0].decode().unwrap();
    assert_eq!((e.title.as_str(), e.all_day), ("Event 0", false));

    // Incremental: one renamed, one cancelled.
    {
        let mut evs = cal.events.lock().unwrap();
        evs[1] = gevent("ev1", "Event 1 moved", "confirmed");
        evs[1]["changed"] = true.into();
        evs[2] = gevent("ev2", "Event 2", "cancelled");
        evs[2]["changed"] = true.into();
    }
    let before = server.requests().len();
    let r = i
        .sync_now(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap();
    assert_eq!((r.upserted, r.deleted), (1, 1));
    assert!(
        server.requests()[before..]
            .iter()
            .all(|q| q.q("syncToken") == Some("sync-1"))
    );
    let held = i
        .records(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap();
    assert_eq!(held.len(), 6);

    // The token expires (410); meanwhile ev3 was deleted: a full resync, and
    // the sweep drops what the provider no longer has.
    *cal.valid_sync.lock().unwrap() = "sync-2".into();
    cal.events.lock().unwrap().remove(3);
    for e in cal.events.lock().unwrap().iter_mut() {
        e["changed"] = false.into();
    }
    let r = i
        .sync_now(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap();
    assert_eq!(r.swept, 1, "{r:?}");
    let ids: Vec<String> = i
        .records(&user, &conn, "calendar_events", &p("reminders"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["ev0", "ev1", "ev4", "ev5", "ev6"]);

    // create_event: reminders for a learning schedule.
    let out = i
        .perform(
            &user,
            &conn,
            &CreateEvent::new(
                "Study: graphs",
                "2026-03-02T18:00:00Z",
                "2026-03-02T19:00:00Z",
            )
            .with_reminders([30, 5]),
        )
        .await
        .unwrap();
    assert_eq!(out.id, "created1");
    let sent = cal.created.lock().unwrap()[0].clone();
    assert_eq!(
        sent["reminders"]["overrides"][1],
        serde_json::json!({"method": "popup", "minutes": 5})
    );
    assert_eq!(sent["start"]["dateTime"], "2026-03-02T18:00:00Z");
    let bad = i
        .perform(&user, &conn, &CreateEvent::new("x", "tomorrow", "later"))
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidInput { .. }));
    i.revoke_consent(&user, &conn, &p("reminders"))
        .await
        .unwrap();
    let refused = i
        .perform(
            &user,
            &conn,
            &CreateEvent::new("x", "2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::ConsentRequired { .. }));
}

// ===== Spotify =====

#[tokio::test]
async fn spotify_top_artists_with_offset_paging_a_429_and_a_genre_profile() {
    let genres = [
        vec!["indie rock", "rock"],
        vec!["jazz"],
        vec!["rock", "blues"],
    ];
    let artists: Vec<serde_json::Value> = (0..120)
        .map(|i| serde_json::json!({"id": format!("a{i:03}"), "name": format!("Artist {i}"), "type": "artist",
            "genres": genres[i % 3], "popularity": i % 100, "uri": format!("spotify:artist:a{i:03}")}))
        .collect();
    let limited = Arc::new(AtomicUsize::new(0));
    let l = limited.clone();
    let plays = Arc::new(Mutex::new(vec![
        (1_700_000_000_000u64, "t1"),
        (1_700_000_100_000, "t2"),
    ]));
    let pl = plays.clone();
    let server = Server::start(move |r| {
        match r.path.as_str() {
            "/v1/me/top/artists" => {
                let offset: usize = r.q("offset").unwrap().parse().unwrap();
                let limit: usize = r.q("limit").unwrap().parse().unwrap();
                if offset == 50 && l.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Spotify: 429 with Retry-After in seconds.
                    return Reply::json(429, &serde_json::json!({"error": {"status": 429, "message": "API rate limit exceeded"}})).with_header("retry-after", "3");
                }
                let end = (offset + limit).min(artists.len());
                Reply::json(
                    200,
                    &serde_json::json!({"items": artists[offset..end], "total": artists.len(), "limit": limit, "offset": offset,
                    "next": if end < artists.len() { serde_json::json!("more") } else { serde_json::Value::Null }}),
                )
            }
            "/v1/me/player/recently-played" => {
                let after: u64 = r.q("after").map_or(0, |a| a.parse().unwrap());
                let items: Vec<serde_json::Value> = pl.lock().unwrap().iter().filter(|(t, _)| *t > after).map(|(t, id)| serde_json::json!({
                    "track": {"id": id, "name": format!("Track {id}"), "artists": [{"name": "Someone"}]},
                    "played_at": consentry::connector::pagination::format_rfc3339(UNIX_EPOCH + Duration::from_millis(*t)),
                    "context": null
                })).collect();
                let newest = pl
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| *t > after)
                    .max();
                Reply::json(
                    200,
                    &serde_json::json!({"items": items, "next": null, "limit": 50,
                    "cursors": newest.map(|n| serde_json::json!({"after": n.to_string(), "before": "0"})).unwrap_or(serde_json::Value::Null)}),
                )
            }
            _ => Reply::status(404),
        }
    });
    let oauth = Catalogue::builtin()
        .unwrap()
        .connector("spotify", registration())
        .unwrap();
    let spotify = Spotify::new(oauth, [p("matching")])
        .unwrap()
        .with_api_base(server.url("/v1").parse().unwrap())
        .unwrap();
    let store = MemoryStore::new();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let i = integrations(&store, clock.clone(), spotify);
    let user = UserId::new("u").unwrap();
    let conn = oauth_connection(
        &i,
        &store,
        &user,
        "spotify",
        &["user-top-read", "user-read-recently-played"],
    )
    .await;
    i.grant_consent(&user, &conn, &p("matching")).await.unwrap();
    let start = clock.now();
    let r = i
        .sync_now(&user, &conn, "top_artists", &p("matching"))
        .await
        .unwrap();
    assert_eq!(r.upserted, 120);
    assert!(
        clock.now().duration_since(start).unwrap() >= Duration::from_secs(3),
        "the 429's Retry-After was waited for"
    );
    assert_eq!(limited.load(Ordering::SeqCst), 2);
    let a: Artist = i
        .records(&user, &conn, "top_artists", &p("matching"))
        .await
        .unwrap()[2]
        .decode()
        .unwrap();
    assert_eq!(a.genres, ["rock", "blues"]);
    let Some(Insight::Genres(profile)) = i
        .insight(&user, &conn, "top_artists", &p("matching"))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (profile.genres[0].genre.as_str(), profile.genres[0].count),
        ("rock", 80)
    );

    i.sync_now(&user, &conn, "recently_played", &p("matching"))
        .await
        .unwrap();
    plays.lock().unwrap().push((1_700_000_200_000, "t3"));
    let r = i
        .sync_now(&user, &conn, "recently_played", &p("matching"))
        .await
        .unwrap();
    assert_eq!(r.upserted, 1, "only the new play");
    assert_eq!(
        server.requests().last().unwrap().q("after"),
        Some("1700000100000")
    );
    assert_eq!(
        i.records(&user, &conn, "recently_played", &p("matching"))
            .await
            .unwrap()
            .len(),
        3
    );
}

// ===== Goodreads =====

/// The header of a real Goodreads library export.
const HEADER: &str = "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies";

fn export() -> String {
    format!(
        "{HEADER}\n\
2767052,\"The Hunger Games (The Hunger Games, #1)\",Suzanne Collins,\"Collins, Suzanne\",,\"=\"\"0439023483\"\"\",\"=\"\"9780439023481\"\"\",5,4.33,Scholastic Press,Hardcover,374,2008,2008,2021/03/15,2021/01/02,\"dystopia, young-adult\",\"dystopia (#3), young-adult (#7)\",read,\"Loved it, \"\"really\"\".\",,,1,0\n\
5907,The Hobbit,J.R.R. Tolkien,\"Tolkien, J.R.R.\",,\"=\"\"0618260307\"\"\",\"=\"\"9780618260300\"\"\",4,4.28,Houghton Mifflin,Paperback,366,2002,1937,2020/07/01,2020/06/01,\"fantasy, classics\",\"fantasy (#1), classics (#2)\",read,,,,1,0\n\
18144590,The Alchemist,Paulo Coelho,\"Coelho, Paulo\",Alan R. Clarke,\"=\"\"\"\"\",\"=\"\"\"\"\",0,3.9,HarperOne,Paperback,182,2014,1988,,2022/01/01,\"to-read, fantasy\",\"to-read (#5), fantasy (#9)\",to-read,,,,0,0\n"
    )
}

#[tokio::test]
async fn goodreads_exports_import_all_or_nothing_with_line_level_errors() {
    let goodreads = GoodreadsConnector::new([p("matching")]).unwrap();
    let store = MemoryStore::new();
    let i = integrations(&store, ManualClock::starting_now(), goodreads);
    let user = UserId::new("reader").unwrap();
    let conn = i
        .connect_without_oauth(
            &user,
            &"goodreads".parse().unwrap(),
            AccountInfo::new("gr-4085451"),
            None,
        )
        .await
        .unwrap();
    i.grant_consent(&user, &conn.id, &p("matching"))
        .await
        .unwrap();

    let books = goodreads::parse_library_export(export().as_bytes()).unwrap();
    assert_eq!(books.len(), 3);
    i.import_records(&user, &conn.id, "library", &p("matching"), books)
        .await
        .unwrap();
    let held = i
        .records(&user, &conn.id, "library", &p("matching"))
        .await
        .unwrap();
    let hunger: Book = held
        .iter()
        .find(|r| r.id == "2767052")
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(hunger.title, "The Hunger Games (The Hunger Games, #1)");
    assert_eq!(
        (
            hunger.isbn13.as_deref(),
            hunger.rating,
            hunger.date_read.as_deref()
        ),
        (Some("9780439023481"), Some(5), Some("2021-03-15"))
    );
    assert_eq!(hunger.shelves, ["dystopia", "young-adult"]);
    let alchemist: Book = held
        .iter()
        .find(|r| r.id == "18144590")
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(
        (alchemist.isbn13, alchemist.rating, alchemist.authors.len()),
        (None, None, 2)
    );
    let Some(Insight::Genres(g)) = i
        .insight(&user, &conn.id, "library", &p("matching"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let names: Vec<_> = g.genres.iter().map(|x| x.genre.as_str()).collect();
    assert_eq!(
        names,
        ["classics", "dystopia", "fantasy", "young-adult"],
        "read books only"
    );

    let good = export();
    let mut fifty_mb = good.clone().into_bytes();
    fifty_mb.resize(50 * 1024 * 1024, b'x');
    let mut latin1 = good.clone().into_bytes();
    latin1.extend_from_slice(b"99,Caf\xe9,Someone,,,,,3,,,,,,,,,,,read,,,,,\n");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(good.encode_utf16().flat_map(u16::to_le_bytes));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "missing columns",
            good.replace("ISBN13,", "")
                .replace(",My Rating", "")
                .into_bytes(),
            "line 1",
        ),
        (
            "bad quoting",
            format!("{good}77,The \"Bad\" Quote,X,,,,,3,,,,,,,,,,,read,,,,,\n").into_bytes(),
            "line 5",
        ),
        (
            "unclosed quote",
            format!("{good}78,\"Never closed,X,,,,,3,,,,,,,,,,,read,,,,,\n").into_bytes(),
            "line 5",
        ),
        (
            "wrong field count",
            format!("{good}79,Short,X\n").into_bytes(),
            "line 5",
        ),
        (
            "bad rating",
            format!("{good}80,Rated,X,,,,,9,,,,,,,,,,,read,,,,,\n").into_bytes(),
            "line 5, My Rating",
        ),
        ("wrong encoding (Latin-1)", latin1, "line 5"),
        ("wrong encoding (UTF-16)", utf16, "line 1"),
        ("50 MB", fifty_mb, "file"),
    ];
    for (what, bytes, field) in cases {
        let err = goodreads::parse_library_export(&bytes).unwrap_err();
        let Error::InvalidImport { errors } = &err else {
            panic!("{what}: {err}")
        };
        assert_eq!(errors[0].field, field, "{what}: {err}");
    }
    // All or nothing: a file with one bad row among good ones imports nothing.
    let mixed =
        format!("{good}81,Fine,X,,,,,3,,,,,,,,,,,read,,,,,\n82,,X,,,,,3,,,,,,,,,,,read,,,,,\n");
    let err = goodreads::parse_library_export(mixed.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("line 6, Title"), "{err}");
    let after = store.user_records(&user, None, 100).await.unwrap();
    assert_eq!(after.len(), 3, "the earlier import is untouched");

    // Field mapping: the host reads books under its own names.
    i.set_field_mapping(
        &MappingScope::Tenant(None),
        "library",
        Some(
            &FieldMapping::new()
                .bind("name", "/title")
                .unwrap()
                .bind("goodreads_id", "$id")
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    let mapped = i
        .mapped_records(&user, &conn.id, "library", &p("matching"))
        .await
        .unwrap();
    assert_eq!(mapped[0]["goodreads_id"], "18144590");
    assert_eq!(mapped[0]["name"], "The Alchemist");
    let own = FieldMapping::new().bind("t", "/title").unwrap();
    i.set_field_mapping(
        &MappingScope::Connection(user.clone(), conn.id.clone()),
        "library",
        Some(&own),
    )
    .await
    .unwrap();
    let mapped = i
        .mapped_records(&user, &conn.id, "library", &p("matching"))
        .await
        .unwrap();
    assert_eq!(
        mapped[0].keys().collect::<Vec<_>>(),
        ["t"],
        "the connection's mapping wins"
    );
}

#[tokio::test]
async fn goodreads_legacy_shelves_are_read_with_oauth1_signed_requests() {
    let consumer = OAuth1Credentials::new("dev-key", "dev-secret");
    let token = OAuth1Credentials::new("user-token", "MARKER-TOKEN-SECRET");
    let bad_signatures = Arc::new(AtomicUsize::new(0));
    let bad = bad_signatures.clone();
    let server = Server::start(move |r| {
        // Check the signature as the provider would.
        let header = r.header("authorization").unwrap_or("");
        let decode = |v: &str| {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        };
        let params: Vec<(String, String)> = header
            .trim_start_matches("OAuth ")
            .split(", ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v.trim_matches('"'))))
            .collect();
        let sig = params
            .iter()
            .find(|(k, _)| k == "oauth_signature")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let unsigned: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k != "oauth_signature")
            .collect();
        let url = url::Url::parse(&format!(
            "http://{}{}?{}",
            r.header("host").unwrap(),
            r.path,
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(r.query.iter())
                .finish()
        ))
        .unwrap();
        let expected = oauth1::hmac_sha1(
            &oauth1::signature_base_string("GET", &url, &unsigned),
            "dev-secret",
            Some("MARKER-TOKEN-SECRET"),
        );
        if sig != expected || r.q("user_id") != Some("4085451") || r.q("key") != Some("dev-key") {
            bad.fetch_add(1, Ordering::SeqCst);
            return Reply::status(401);
        }
        let page = r.q("page").unwrap();
        let (start, shelves) = if page == "1" {
            (
                1,
                r#"<user_shelf><id type="integer">1</id><name>read</name><book_count type="integer">120</book_count><exclusive_flag type="boolean">true</exclusive_flag></user_shelf>
                   <user_shelf><id type="integer">2</id><name>to-read</name><book_count type="integer">30</book_count><exclusive_flag type="boolean">true</exclusive_flag></user_shelf>"#,
            )
        } else {
            (
                3,
                r#"<user_shelf><id type="integer">3</id><name>history &amp; politics</name><book_count type="integer">9</book_count><exclusive_flag type="boolean">false</exclusive_flag></user_shelf>"#,
            )
        };
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><GoodreadsResponse><Request><authentication>true</authentication><method><![CDATA[shelf_list]]></method></Request><shelves start="{start}" end="{}" total="3">{shelves}</shelves></GoodreadsResponse>"#,
            start + if page == "1" { 1 } else { 0 }
        );
        Reply::Http {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/xml; charset=utf-8".into(),
            )],
            body: body.into_bytes(),
        }
    });
    let goodreads = GoodreadsConnector::new([p("matching")])
        .unwrap()
        .with_legacy_api(server.url("").parse().unwrap(), consumer)
        .unwrap();
    let store = MemoryStore::new();
    let i = integrations(&store, ManualClock::starting_now(), goodreads);
    let user = UserId::new("reader").unwrap();
    let conn = i
        .connect_without_oauth(
            &user,
            &"goodreads".parse().unwrap(),
            AccountInfo::new("4085451"),
            Some(token.to_sealable()),
        )
        .await
        .unwrap();
    i.configure(&user, &conn.id, serde_json::json!({"user_id": "4085451"}))
        .await
        .unwrap();
    i.grant_consent(&user, &conn.id, &p("matching"))
        .await
        .unwrap();
    let r = i
        .sync_now(&user, &conn.id, "shelves", &p("matching"))
        .await
        .unwrap();
    assert_eq!(bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!((r.pages, r.upserted), (2, 3));
    let names: Vec<String> = i
        .records(&user, &conn.id, "shelves", &p("matching"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.value().unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["read", "to-read", "history & politics"]);
    let mut out = Vec::new();
    i.export(&user, consentry::export::Format::Json, &mut out)
        .await
        .unwrap();
    assert!(
        !String::from_utf8(out)
            .unwrap()
            .contains("MARKER-TOKEN-SECRET")
    );
}
