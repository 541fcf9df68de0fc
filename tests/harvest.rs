//! Harvesting under consent, against a local JSON API on 127.0.0.1: consent
//! gates, purpose-bound deletion, disconnect, interrupted syncs, rate
//! limits, the circuit breaker, 401 handling, the transparency report and
//! exports.
#![cfg(all(feature = "sqlite", feature = "reqwest"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use consentry::clock::{Clock, ManualClock, SystemClock};
use consentry::connection::AccountInfo;
use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
use consentry::export::Format;
use consentry::http::ReqwestClient;
use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::secret::ClientSecret;
use consentry::store::{
    ConnectionWrite, CredentialStore, MemoryStore, RecordStore, SqliteStore, Store, SyncStatus,
    SyncStore,
};
use consentry::sync::SyncOptions;
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{
    Connection, ConnectionId, ConnectionStatus, ConnectorId, Error, Integrations, Purpose, UserId,
};
use support::http_server::{Reply, Req, Server};

const ITEMS: usize = 37;
const PAGE: usize = 10;

fn p(s: &str) -> Purpose {
    Purpose::new(s).unwrap()
}

fn item(i: usize, version: u32) -> serde_json::Value {
    serde_json::json!({"id": format!("item-{i:03}"), "title": format!("Item {i} v{version}"), "secret_note": "not kept"})
}

/// A paged JSON API over `items`, accepting bearer `valid`; a token
/// endpoint that issues the next token.
struct Api {
    items: Mutex<Vec<serde_json::Value>>,
    valid: Mutex<String>,
    refreshes: AtomicUsize,
    unauthorized: AtomicUsize,
    refuse_all: std::sync::atomic::AtomicBool,
}

impl Api {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            items: Mutex::new((0..n).map(|i| item(i, 1)).collect()),
            valid: Mutex::new("at-1".into()),
            refreshes: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            refuse_all: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn handle(&self, req: &Req) -> Reply {
        match req.path.as_str() {
            "/token" => {
                let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 2;
                *self.valid.lock().unwrap() = format!("at-{n}");
                Reply::json(
                    200,
                    &serde_json::json!({"access_token": format!("at-{n}"), "token_type": "Bearer",
                                        "expires_in": 3600, "refresh_token": format!("rt-{n}")}),
                )
            }
            "/items" => {
                if self.refuse_all.load(Ordering::SeqCst)
                    || req.bearer() != Some(self.valid.lock().unwrap().as_str())
                {
                    self.unauthorized.fetch_add(1, Ordering::SeqCst);
                    return Reply::json(401, &serde_json::json!({"error": "invalid_token"}));
                }
                self.page(req)
            }
            _ => Reply::status(404),
        }
    }

    fn page(&self, req: &Req) -> Reply {
        let items = self.items.lock().unwrap();
        let start: usize = req.q("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + PAGE).min(items.len());
        let mut body = serde_json::json!({"items": items[start.min(end)..end]});
        if end < items.len() {
            body["nextPageToken"] = end.to_string().into();
        }
        Reply::json(200, &body)
    }
}

fn items_stream(name: &str, purposes: &[&str]) -> StreamSpec {
    StreamSpec::new(name)
        .unwrap()
        .with_purposes(purposes.iter().map(|s| p(s)))
        .with_http(
            HttpStream::new("/items", "/items", "/id")
                .unwrap()
                .with_kind("item")
                .unwrap()
                .with_field("title", "/title")
                .unwrap()
                .with_pagination(Pagination::PageToken {
                    param: "pageToken".into(),
                    pointer: "/nextPageToken".into(),
                }),
        )
}

fn connector(server: &Server, id: &str, streams: Vec<StreamSpec>) -> OAuth2Connector {
    let mut b = OAuth2Connector::builder(id.parse().unwrap())
        .authorization_url(server.url("/authorize").parse().unwrap())
        .token_url(server.url("/token").parse().unwrap())
        .client_id("client-1")
        .client_secret(ClientSecret::new("MARKER-CLIENT-SECRET-789"))
        .api_base_url(server.url("").parse().unwrap());
    for s in streams {
        b = b.stream(s);
    }
    b.build().unwrap()
}

struct Env {
    integrations: Integrations,
    store: Arc<dyn Store>,
    user: UserId,
}

fn builder(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    opts: SyncOptions,
) -> consentry::IntegrationsBuilder {
    Integrations::builder()
        .store(store)
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .redirect_uri("http://127.0.0.1/callback".parse().unwrap())
        .clock(clock)
        .sync_options(opts)
}

fn fast() -> SyncOptions {
    SyncOptions::default().retries(2, Duration::from_millis(1), Duration::from_millis(5))
}

/// A connection with sealed tokens `at-1` / `rt-1`, as `complete_connect`
/// would leave it.
async fn connect(env: &Env, connector: &str, at: &str) -> ConnectionId {
    let now = SystemTime::now();
    let mut c = Connection::new(
        ConnectionId::generate().unwrap(),
        env.user.clone(),
        ConnectorId::new(connector).unwrap(),
        AccountInfo::new(format!("acct-{connector}")),
        now,
    );
    c.access_expires_at = Some(now + Duration::from_secs(24 * 3600 * 365));
    c.has_refresh_token = true;
    let sealed = env
        .integrations
        .vault()
        .seal(
            &env.user,
            &c.id,
            vec![
                CredentialUpdate::new(
                    CredentialKind::AccessToken,
                    SecretString::from(at.to_owned()),
                ),
                CredentialUpdate::new(
                    CredentialKind::RefreshToken,
                    SecretString::from("MARKER-REFRESH-456"),
                ),
            ],
        )
        .await
        .unwrap();
    env.store
        .write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed))
        .await
        .unwrap();
    c.id
}

fn ids(records: &[consentry::records::HeldRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

fn expected_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i:03}")).collect()
}

#[tokio::test]
async fn consent_gates_streams_and_reads_and_revoking_one_purpose_keeps_the_other() {
    let api = Api::new(ITEMS);
    let a = api.clone();
    let server = Server::start(move |r| a.handle(r));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .connector(connector(
            &server,
            "acme",
            vec![
                items_stream("matches", &["matching"]),
                items_stream("shared", &["matching", "recommendations"]),
            ],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("alice").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    let i = &env.integrations;

    // Without consent: no stream runs, nothing is read, the API is not called.
    let err = i
        .sync_now(&env.user, &conn, "matches", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConsentRequired { .. }), "{err}");
    let err = i
        .records(&env.user, &conn, "matches", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConsentRequired { .. }), "{err}");
    assert_eq!(server.count("/items"), 0);

    i.grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    i.grant_consent(&env.user, &conn, &p("recommendations"))
        .await
        .unwrap();
    let r1 = i
        .sync_now(&env.user, &conn, "matches", &p("matching"))
        .await
        .unwrap();
    let r2 = i
        .sync_now(&env.user, &conn, "shared", &p("recommendations"))
        .await
        .unwrap();
    assert_eq!(
        (r1.upserted, r2.upserted, r1.status),
        (ITEMS as u64, ITEMS as u64, SyncStatus::Ok)
    );
    assert_eq!(r2.purposes, vec![p("matching"), p("recommendations")]);
    let got = i
        .records(&env.user, &conn, "matches", &p("matching"))
        .await
        .unwrap();
    assert_eq!(ids(&got), expected_ids(ITEMS));
    // Only the declared fields are kept.
    assert_eq!(
        got[0].value().unwrap(),
        serde_json::json!({"title": "Item 0 v1"})
    );
    // A stream cannot be run for a purpose it does not serve.
    assert!(
        i.sync_now(&env.user, &conn, "matches", &p("recommendations"))
            .await
            .is_err()
    );

    // Revoke `matching`: records held only for it go; the others stay for
    // `recommendations`.
    i.revoke_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let err = i
        .records(&env.user, &conn, "shared", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConsentRequired { .. }));
    let kept = i
        .records(&env.user, &conn, "shared", &p("recommendations"))
        .await
        .unwrap();
    assert_eq!(ids(&kept), expected_ids(ITEMS));
    assert!(
        kept.iter()
            .all(|r| r.purposes == vec![p("recommendations")])
    );
    let all = env
        .store
        .user_records(&env.user, None, 10_000)
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        ITEMS,
        "the `matches` records (only for matching) are deleted"
    );
    assert!(all.iter().all(|r| r.stream == "shared"));
    // The stream serving only `matching` no longer runs.
    let err = i
        .sync_now(&env.user, &conn, "matches", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConsentRequired { .. }));

    // Revoke the other purpose too: nothing is left.
    i.revoke_consent(&env.user, &conn, &p("recommendations"))
        .await
        .unwrap();
    assert!(
        env.store
            .user_records(&env.user, None, 10_000)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn disconnect_leaves_no_record_cursor_log_or_credential() {
    let api = Api::new(ITEMS);
    let a = api.clone();
    let server = Server::start(move |r| a.handle(r));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("h.db")).await.unwrap());
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::in_tenant("t1", "bob").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    let other = connect(&env, "acme-2", "at-1").await; // another connection of the same user
    let i = &env.integrations;
    i.grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    i.sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    i.records(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!(env.store.access_log(&env.user).await.unwrap().len(), 1);
    assert!(
        env.store
            .get_sync_state(&env.user, &conn, "items")
            .await
            .unwrap()
            .is_some()
    );

    let report = i.disconnect(&env.user, &conn).await.unwrap();
    assert_eq!(report.records_deleted, ITEMS as u64);
    assert_eq!(
        (
            report.sync_states_deleted,
            report.access_log_entries_deleted
        ),
        (1, 1)
    );
    assert!(
        env.store
            .user_records(&env.user, None, 10_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        env.store
            .get_sync_state(&env.user, &conn, "items")
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.store.access_log(&env.user).await.unwrap().is_empty());
    let creds = env.store.list_credentials(&env.user).await.unwrap();
    assert!(
        creds.iter().all(|(k, _)| k.connection == other),
        "{creds:?}"
    );
    assert_eq!(creds.len(), 2, "the other connection keeps its tokens");
}

#[tokio::test]
async fn a_sync_cut_by_a_dropped_connection_resumes_without_loss_or_duplicates() {
    // The server drops the connection once, at a random page.
    let api = Api::new(ITEMS);
    let k = 1 + (getrandom::u32().unwrap() as usize % (ITEMS / PAGE));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (a, d) = (api.clone(), dropped.clone());
    let server = Server::start(move |r| {
        let token: usize = r.q("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        if r.path == "/items" && token == k * PAGE && d.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Drop;
        }
        a.handle(r)
    });
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("h.db")).await.unwrap());
    let no_retries =
        SyncOptions::default().retries(0, Duration::from_millis(1), Duration::from_millis(1));
    let integrations = builder(store.clone(), Arc::new(SystemClock), no_retries)
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("carol").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    let i = &env.integrations;
    i.grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let err = i
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http(_)), "{err}");
    let held = env
        .store
        .user_records(&env.user, None, 10_000)
        .await
        .unwrap();
    assert_eq!(held.len(), k * PAGE, "the pages before the drop are kept");
    let before = server.count("/items");
    let report = i
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Ok);
    let resumed = &server.requests()[before..];
    assert_eq!(
        resumed[0].q("pageToken"),
        Some((k * PAGE).to_string().as_str()),
        "resumed from the cursor"
    );
    let got = i
        .records(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!(ids(&got), expected_ids(ITEMS));
}

#[test]
fn a_sync_whose_runtime_is_killed_mid_run_resumes_without_loss_or_duplicates() {
    let api = Api::new(ITEMS);
    let k = 1 + (getrandom::u32().unwrap() as usize % (ITEMS / PAGE));
    let (hit_tx, hit_rx) = std::sync::mpsc::channel::<()>();
    let hit_tx = Mutex::new(Some(hit_tx));
    let a = api.clone();
    let server = Server::start(move |r| {
        let token: usize = r.q("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        if r.path == "/items"
            && token == k * PAGE
            && let Some(tx) = hit_tx.lock().unwrap().take()
        {
            let _ = tx.send(());
            // Answer too late: the runtime is killed meanwhile.
            return Reply::Delay(Duration::from_secs(2), Box::new(a.handle(r)));
        }
        a.handle(r)
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let clock = ManualClock::starting_now();
    let user = UserId::new("dave").unwrap();
    let keyring = Keyring::generate().unwrap();
    let make = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
            let integrations = builder(store.clone(), Arc::new(clock.clone()), fast())
                .keyring(keyring.clone())
                .connector(connector(
                    &server,
                    "acme",
                    vec![items_stream("items", &["matching"])],
                ))
                .build()
                .unwrap();
            Env {
                integrations,
                store,
                user: user.clone(),
            }
        })
    };
    let rt1 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env = make(&rt1);
    let conn = rt1.block_on(async {
        let conn = connect(&env, "acme", "at-1").await;
        env.integrations
            .grant_consent(&env.user, &conn, &p("matching"))
            .await
            .unwrap();
        conn
    });
    let (i, u, c) = (env.integrations.clone(), env.user.clone(), conn.clone());
    rt1.spawn(async move { i.sync_now(&u, &c, "items", &p("matching")).await });
    hit_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    rt1.shutdown_background(); // the process dies mid-run
    drop(env);

    // A new process: the old run's lease expires, the sync resumes.
    clock.advance(Duration::from_secs(3600));
    let rt2 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env = make(&rt2);
    rt2.block_on(async {
        let held = env
            .store
            .user_records(&env.user, None, 10_000)
            .await
            .unwrap();
        // Page k-1 was being stored while page k was fetched: the kill
        // leaves the store at a page boundary, with the matching cursor.
        let held = held.len();
        assert!(
            held % PAGE == 0 && held <= k * PAGE && held + PAGE >= k * PAGE,
            "{held} records after a kill at page {k}"
        );
        let before = server.count("/items");
        let report = env
            .integrations
            .sync_now(&env.user, &conn, "items", &p("matching"))
            .await
            .unwrap();
        assert_eq!(report.status, SyncStatus::Ok);
        let first = server.requests()[before].q("pageToken").map(str::to_owned);
        assert_eq!(
            first,
            (held > 0).then(|| held.to_string()),
            "resumed from the stored cursor"
        );
        let got = env
            .integrations
            .records(&env.user, &conn, "items", &p("matching"))
            .await
            .unwrap();
        assert_eq!(ids(&got), expected_ids(ITEMS), "none lost, none duplicated");
    });
}

#[tokio::test]
async fn retry_after_two_seconds_is_waited_for_then_the_sync_succeeds() {
    let api = Api::new(15);
    let limited = Arc::new(AtomicUsize::new(0));
    let (a, l) = (api.clone(), limited.clone());
    let server = Server::start(move |r| {
        if r.path == "/items"
            && r.q("pageToken") == Some("10")
            && l.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Reply::json(429, &serde_json::json!({"error": "rate limited"}))
                .with_header("retry-after", "2");
        }
        a.handle(r)
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("erin").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    env.integrations
        .grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let started = Instant::now();
    let report = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "waited only {took:?}");
    assert_eq!((report.upserted, limited.load(Ordering::SeqCst)), (15, 2));
}

#[tokio::test]
async fn an_exhausted_x_ratelimit_quota_is_waited_out_until_its_reset() {
    let api = Api::new(25);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let seen: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let reset = 1_800_000_000 + 90;
    let (a, c, s) = (api.clone(), clock.clone(), seen.clone());
    let server = Server::start(move |r| {
        if r.path != "/items" {
            return a.handle(r);
        }
        s.lock().unwrap().push(c.now());
        let reply = a.handle(r);
        if r.q("pageToken").is_none() {
            // The first page uses up the quota until `reset`.
            reply
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-reset", &reset.to_string())
        } else {
            reply.with_header("x-ratelimit-remaining", "99")
        }
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(clock.clone()), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("frank").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    env.integrations
        .grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let report = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!(report.upserted, 25);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[1] >= UNIX_EPOCH + Duration::from_secs(reset),
        "the second page was asked for before the reset: {:?}",
        seen[1].duration_since(UNIX_EPOCH)
    );
}

#[tokio::test]
async fn a_failing_provider_opens_its_circuit_while_another_provider_syncs() {
    let failing = Arc::new(AtomicUsize::new(0));
    let f = failing.clone();
    let bad = Server::start(move |r| {
        if r.path == "/items" {
            f.fetch_add(1, Ordering::SeqCst);
        }
        Reply::json(500, &serde_json::json!({"error": "down"}))
    });
    let api = Api::new(ITEMS);
    let a = api.clone();
    let good = Server::start(move |r| {
        // Slow enough that the failing sync runs meanwhile.
        Reply::Delay(Duration::from_millis(20), Box::new(a.handle(r)))
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let opts = SyncOptions::default()
        .retries(10, Duration::from_millis(1), Duration::from_millis(5))
        .breaker(3, Duration::from_secs(600));
    let integrations = builder(store.clone(), Arc::new(SystemClock), opts)
        .connector(connector(
            &bad,
            "down",
            vec![items_stream("items", &["matching"])],
        ))
        .connector(connector(
            &good,
            "up",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("gina").unwrap(),
    };
    let down = connect(&env, "down", "at-1").await;
    let up = connect(&env, "up", "at-1").await;
    let i = &env.integrations;
    for c in [&down, &up] {
        i.grant_consent(&env.user, c, &p("matching")).await.unwrap();
    }
    let matching = p("matching");
    let (bad_result, good_result) = tokio::join!(
        i.sync_now(&env.user, &down, "items", &matching),
        i.sync_now(&env.user, &up, "items", &matching),
    );
    let err = bad_result.unwrap_err();
    assert!(matches!(err, Error::ProviderUnavailable { .. }), "{err}");
    assert_eq!(
        failing.load(Ordering::SeqCst),
        3,
        "the circuit opened after 3 failures"
    );
    assert_eq!(good_result.unwrap().upserted, ITEMS as u64);
    // While open, the provider is not called at all.
    let err = i
        .sync_now(&env.user, &down, "items", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProviderUnavailable { .. }));
    assert_eq!(failing.load(Ordering::SeqCst), 3);
    let state = env
        .store
        .get_sync_state(&env.user, &down, "items")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, SyncStatus::Degraded);
    let report = i.report(&env.user).await.unwrap();
    let down_report = report
        .connections
        .iter()
        .find(|c| c.connection.id == down)
        .unwrap();
    assert_eq!(
        down_report.streams[0].sync.as_ref().unwrap().status,
        SyncStatus::Degraded
    );
}

#[tokio::test]
async fn a_401_causes_exactly_one_refresh_and_one_retry() {
    let api = Api::new(ITEMS);
    *api.valid.lock().unwrap() = "at-2".into(); // the stored at-1 was revoked
    let a = api.clone();
    let server = Server::start(move |r| a.handle(r));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("hal").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    env.integrations
        .grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let report = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!(report.upserted, ITEMS as u64);
    assert_eq!(api.refreshes.load(Ordering::SeqCst), 1, "one refresh");
    assert_eq!(api.unauthorized.load(Ordering::SeqCst), 1, "one 401");
    let first_page: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/items" && r.q("pageToken").is_none())
        .collect();
    assert_eq!(first_page.len(), 2, "the first page was retried once");

    // A provider that keeps refusing after the refresh: the user must act.
    let refreshes = api.refreshes.load(Ordering::SeqCst);
    api.refuse_all.store(true, Ordering::SeqCst);
    let err = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err}");
    assert_eq!(
        api.refreshes.load(Ordering::SeqCst),
        refreshes + 1,
        "still exactly one refresh"
    );
    let c = env.integrations.connection(&env.user, &conn).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::ReauthRequired);
}

#[tokio::test]
async fn the_report_lists_every_read_and_exports_hold_no_secret() {
    let api = Api::new(ITEMS);
    *api.valid.lock().unwrap() = "MARKER-ACCESS-123".into();
    let a = api.clone();
    let server = Server::start(move |r| a.handle(r));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("h.db")).await.unwrap());
    // The keyring's own key material, in every text form it could leak in.
    let keyring = Keyring::generate().unwrap().rotated().unwrap();
    let exported = keyring.export().expose_secret().to_owned();
    let mut key_markers = vec![exported.clone()];
    for entry in exported.split(',') {
        let (_, key) = entry.split_once(':').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(key).unwrap();
        assert_eq!(raw.len(), 32);
        key_markers.push(key.to_owned());
        key_markers.push(STANDARD.encode(&raw));
        key_markers.push(STANDARD_NO_PAD.encode(&raw));
        key_markers.push(raw.iter().map(|b| format!("{b:02x}")).collect());
    }
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .keyring(keyring)
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching", "recommendations"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("ivy").unwrap(),
    };
    let conn = connect(&env, "acme", "MARKER-ACCESS-123").await;
    let i = &env.integrations;
    i.grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    i.grant_consent(&env.user, &conn, &p("recommendations"))
        .await
        .unwrap();
    i.sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    i.records(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    let q = consentry::integrations::RecordQuery::default()
        .component("recommender")
        .limit(5);
    i.records_with(&env.user, &conn, "items", &p("recommendations"), &q)
        .await
        .unwrap();
    i.records(&env.user, &conn, "items", &p("recommendations"))
        .await
        .unwrap();
    let _ = i
        .records(&env.user, &conn, "items", &p("unrelated"))
        .await
        .unwrap_err();

    let report = i.report(&env.user).await.unwrap();
    let c = &report.connections[0];
    let reads: Vec<_> = c
        .access_log
        .iter()
        .map(|e| (e.component.as_str(), e.purpose.as_str(), e.count))
        .collect();
    assert_eq!(
        reads,
        [
            ("host", "matching", ITEMS as u64),
            ("recommender", "recommendations", 5),
            ("host", "recommendations", ITEMS as u64)
        ]
    );
    assert!(
        c.purposes
            .iter()
            .all(|pr| pr.consented && pr.history.len() == 1)
    );
    assert_eq!(c.streams[0].records_by_purpose.len(), 2);
    assert_eq!(c.connection.account.id, "acct-acme");

    let mut exports = Vec::new();
    for format in [Format::Json, Format::Ndjson, Format::Csv] {
        let mut out = Vec::new();
        i.export(&env.user, format, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        for marker in [
            "MARKER-ACCESS-123",
            "MARKER-REFRESH-456",
            "MARKER-CLIENT-SECRET-789",
        ] {
            assert!(
                !text.contains(marker),
                "{format:?} export contains {marker}"
            );
        }
        for marker in &key_markers {
            assert!(
                !text.contains(marker.as_str()),
                "{format:?} export contains key material"
            );
        }
        exports.push(text);
    }
    let json: serde_json::Value = serde_json::from_str(&exports[0]).unwrap();
    assert_eq!(json["records"].as_array().unwrap().len(), ITEMS);
    // NDJSON parses back to the same records.
    let held = i
        .records(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    let parsed: Vec<consentry::records::HeldRecord> = exports[1]
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "record")
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_eq!(parsed, held);
    let types: BTreeSet<String> = exports[1]
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        types.is_superset(
            &[
                "user",
                "connection",
                "consent",
                "record",
                "access",
                "sync_state"
            ]
            .map(String::from)
            .into()
        )
    );
    assert_eq!(
        exports[2]
            .lines()
            .filter(|l| l.starts_with("record,"))
            .count(),
        ITEMS
    );

    // Erasure: everything goes, a tombstone stays, the data key is shredded.
    let erased = i.erase_user(&env.user).await.unwrap();
    assert!(erased.data_key_destroyed);
    assert_eq!(erased.tombstone.records, ITEMS as u64);
    assert!(i.connections(&env.user).await.unwrap().is_empty());
    assert!(
        env.store
            .user_records(&env.user, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(env.store.access_log(&env.user).await.unwrap().is_empty());
    assert!(
        env.store
            .list_credentials(&env.user)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(i.consent_history(&env.user).await.unwrap().is_empty());
    let tomb = i.erasure_tombstone(&env.user).await.unwrap().unwrap();
    assert!(!tomb.subject.contains("ivy"));
    let mut out = Vec::new();
    i.export(&env.user, Format::Ndjson, &mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().lines().count(),
        1,
        "only the user line is left"
    );
}

/// Syncs until a run reports `Ok` (at most 6 runs); returns the reports.
async fn sync_until_caught_up(env: &Env, conn: &ConnectionId) -> Vec<consentry::sync::SyncReport> {
    let mut reports = Vec::new();
    loop {
        let report = env
            .integrations
            .sync_now(&env.user, conn, "items", &p("matching"))
            .await
            .unwrap();
        let done = report.status == SyncStatus::Ok;
        reports.push(report);
        if done {
            return reports;
        }
        assert!(reports.len() < 6, "no end in sight: {reports:?}");
    }
}

#[tokio::test]
async fn runs_stopped_by_the_page_limit_or_the_time_budget_resume_from_the_cursor() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    for (case, opts, tick) in [
        ("page limit", fast().max_pages(2), Duration::ZERO),
        // Each page takes 700 ms of the clock: a 1 s budget stops a run
        // after its second page.
        (
            "time budget",
            fast().run_budget(Duration::from_secs(1)),
            Duration::from_millis(700),
        ),
    ] {
        let api = Api::new(ITEMS);
        let (a, c) = (api.clone(), clock.clone());
        let server = Server::start(move |r| {
            if r.path == "/items" {
                c.advance(tick);
            }
            a.handle(r)
        });
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("h.db")).await.unwrap());
        let integrations = builder(store.clone(), Arc::new(clock.clone()), opts)
            .connector(connector(
                &server,
                "acme",
                vec![items_stream("items", &["matching"])],
            ))
            .build()
            .unwrap();
        let env = Env {
            integrations,
            store,
            user: UserId::new("kim").unwrap(),
        };
        let conn = connect(&env, "acme", "at-1").await;
        env.integrations
            .grant_consent(&env.user, &conn, &p("matching"))
            .await
            .unwrap();

        let first = env
            .integrations
            .sync_now(&env.user, &conn, "items", &p("matching"))
            .await
            .unwrap();
        assert_eq!(
            (first.status, first.pages, first.upserted),
            (SyncStatus::Partial, 2, 2 * PAGE as u64),
            "{case}"
        );
        let state = env
            .store
            .get_sync_state(&env.user, &conn, "items")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, SyncStatus::Partial, "{case}");
        assert!(state.cursor.is_some(), "{case}: the cursor was saved");
        assert_eq!(
            env.store
                .user_records(&env.user, None, 10_000)
                .await
                .unwrap()
                .len(),
            2 * PAGE,
            "{case}: the first run's pages are held"
        );

        let rest = sync_until_caught_up(&env, &conn).await;
        let upserted: u64 = first.upserted + rest.iter().map(|r| r.upserted).sum::<u64>();
        assert_eq!(upserted, ITEMS as u64, "{case}: {rest:?}");
        // Every page was asked for exactly once, in order: the second run
        // started at the saved cursor.
        let tokens: Vec<Option<String>> = server
            .requests()
            .iter()
            .filter(|r| r.path == "/items")
            .map(|r| r.q("pageToken").map(str::to_owned))
            .collect();
        let want: Vec<Option<String>> = (0..ITEMS.div_ceil(PAGE))
            .map(|n| (n > 0).then(|| (n * PAGE).to_string()))
            .collect();
        assert_eq!(tokens, want, "{case}");
        let got = env
            .integrations
            .records(&env.user, &conn, "items", &p("matching"))
            .await
            .unwrap();
        assert_eq!(
            ids(&got),
            expected_ids(ITEMS),
            "{case}: exactly the provider's records"
        );
        let state = env
            .store
            .get_sync_state(&env.user, &conn, "items")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, SyncStatus::Ok, "{case}");
    }
}

#[tokio::test]
async fn a_503_with_retry_after_in_seconds_or_as_a_date_is_waited_out_then_succeeds() {
    let api = Api::new(15);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let seen: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let limited = Arc::new(AtomicUsize::new(0));
    let (a, c, s, l) = (api.clone(), clock.clone(), seen.clone(), limited.clone());
    let server = Server::start(move |r| {
        if r.path != "/items" {
            return a.handle(r);
        }
        let now = c.now();
        s.lock().unwrap().push(now);
        let n = s.lock().unwrap().len();
        match n {
            // The first page: 503 with `Retry-After: 3` (seconds).
            1 => {
                l.fetch_add(1, Ordering::SeqCst);
                Reply::json(503, &serde_json::json!({"error": "busy"}))
                    .with_header("retry-after", "3")
            }
            // The second page: 503 with an HTTP date 7 s ahead.
            3 => {
                l.fetch_add(1, Ordering::SeqCst);
                let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
                Reply::json(503, &serde_json::json!({"error": "busy"}))
                    .with_header("retry-after", &date)
            }
            _ => a.handle(r),
        }
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(clock.clone()), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("lena").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    env.integrations
        .grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let report = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap();
    assert_eq!((report.status, report.upserted), (SyncStatus::Ok, 15));
    assert_eq!(limited.load(Ordering::SeqCst), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "each 503 retried once, after its wait");
    let gap = |i: usize| seen[i].duration_since(seen[i - 1]).unwrap();
    assert!(
        gap(1) >= Duration::from_secs(3),
        "seconds form: {:?}",
        gap(1)
    );
    assert!(gap(3) >= Duration::from_secs(7), "date form: {:?}", gap(3));
    // The run caught up: the stream's state is not degraded.
    let state = env
        .store
        .get_sync_state(&env.user, &conn, "items")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, SyncStatus::Ok);
}

#[tokio::test]
async fn a_403_after_a_forced_refresh_means_reauth_required_without_a_loop() {
    let api = Api::new(ITEMS);
    let forbidden = Arc::new(AtomicUsize::new(0));
    let (a, f) = (api.clone(), forbidden.clone());
    // The stored at-1 is refused with 401; the refreshed at-2 with 403 (the
    // grant no longer covers the API).
    let server = Server::start(move |r| {
        if r.path == "/items" && r.bearer() == Some("at-2") {
            f.fetch_add(1, Ordering::SeqCst);
            return Reply::json(403, &serde_json::json!({"error": "insufficient_scope"}));
        }
        if r.path == "/items" {
            a.unauthorized.fetch_add(1, Ordering::SeqCst);
            return Reply::json(401, &serde_json::json!({"error": "invalid_token"}));
        }
        a.handle(r)
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let integrations = builder(store.clone(), Arc::new(SystemClock), fast())
        .connector(connector(
            &server,
            "acme",
            vec![items_stream("items", &["matching"])],
        ))
        .build()
        .unwrap();
    let env = Env {
        integrations,
        store,
        user: UserId::new("max").unwrap(),
    };
    let conn = connect(&env, "acme", "at-1").await;
    env.integrations
        .grant_consent(&env.user, &conn, &p("matching"))
        .await
        .unwrap();
    let mut events = env.integrations.subscribe();
    let err = env
        .integrations
        .sync_now(&env.user, &conn, "items", &p("matching"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReauthRequired { connection } if *connection == conn),
        "{err}"
    );
    assert_eq!(
        api.refreshes.load(Ordering::SeqCst),
        1,
        "one forced refresh"
    );
    assert_eq!(
        (
            api.unauthorized.load(Ordering::SeqCst),
            forbidden.load(Ordering::SeqCst)
        ),
        (1, 1),
        "one 401, one retry answered 403, no more"
    );
    assert_eq!(server.count("/items"), 2);
    let c = env.integrations.connection(&env.user, &conn).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::ReauthRequired);
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(e.kind);
    }
    assert!(
        kinds.contains(&consentry::events::EventKind::ReauthRequired),
        "{kinds:?}"
    );
    assert_eq!(
        env.store
            .user_records(&env.user, None, 10)
            .await
            .unwrap()
            .len(),
        0
    );

    // Later runs fail at once: no request, no refresh.
    for _ in 0..3 {
        let err = env
            .integrations
            .sync_now(&env.user, &conn, "items", &p("matching"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ReauthRequired { .. }), "{err}");
    }
    assert_eq!(server.count("/items"), 2);
    assert_eq!(api.refreshes.load(Ordering::SeqCst), 1);
}
