//! The scheduler: consent schedules a connection's streams, due streams
//! run, a connection never runs twice at once, and the loop stops when
//! dropped.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use consentry::clock::ManualClock;
use consentry::connection::AccountInfo;
use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
use consentry::http::ReqwestClient;
use consentry::secret::ClientSecret;
use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore, SyncStatus, SyncStore};
use consentry::sync::SyncOptions;
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{Connection, ConnectionId, ConnectorId, Integrations, Purpose, UserId};
use support::http_server::{Reply, Server};

fn stream(name: &str) -> StreamSpec {
    StreamSpec::new(name)
        .unwrap()
        .with_purposes([Purpose::new("matching").unwrap()])
        .with_interval(Duration::from_secs(600))
        .with_http(
            HttpStream::new("/items", "/items", "/id")
                .unwrap()
                .with_pagination(Pagination::PageToken {
                    param: "page".into(),
                    pointer: "/next".into(),
                }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_schedules_streams_and_one_connection_never_runs_twice_at_once() {
    // Each request takes 30 ms: if two runs of the connection overlapped,
    // two requests would arrive less than 30 ms apart.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let a = arrivals.clone();
    let server = Server::start(move |r| {
        a.lock().unwrap().push(Instant::now());
        let page: usize = r.q("page").map_or(0, |p| p.parse().unwrap());
        let mut body = serde_json::json!({"items": [{"id": format!("{}-{page}", r.path)}]});
        if page < 3 {
            body["next"] = (page + 1).to_string().into();
        }
        Reply::Delay(Duration::from_millis(30), Box::new(Reply::json(200, &body)))
    });
    let overlapped = |arrivals: &Mutex<Vec<Instant>>| {
        let mut v = arrivals.lock().unwrap().clone();
        v.sort();
        v.windows(2)
            .any(|w| w[1] - w[0] < Duration::from_millis(29))
    };
    let connector = OAuth2Connector::builder("acme".parse().unwrap())
        .authorization_url(server.url("/a").parse().unwrap())
        .token_url(server.url("/t").parse().unwrap())
        .client_id("c")
        .client_secret(ClientSecret::new("s"))
        .api_base_url(server.url("").parse().unwrap())
        .stream(stream("one"))
        .stream(stream("two"))
        .stream(stream("three"))
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let clock = ManualClock::starting_now();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .clock(clock.clone())
        .sync_options(SyncOptions::default().scheduler(Duration::from_millis(20), 100, 4))
        .build()
        .unwrap();
    let user = UserId::new("u").unwrap();
    let now = SystemTime::now();
    let mut c = Connection::new(
        ConnectionId::generate().unwrap(),
        user.clone(),
        ConnectorId::new("acme").unwrap(),
        AccountInfo::new("a"),
        now,
    );
    c.access_expires_at = Some(now + Duration::from_secs(10 * 365 * 86_400));
    let sealed = integrations
        .vault()
        .seal(
            &user,
            &c.id,
            vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                "t".into(),
            )],
        )
        .await
        .unwrap();
    store
        .write_connection(ConnectionWrite::create(c.clone()).with_credentials(sealed))
        .await
        .unwrap();

    // Nothing is scheduled without consent.
    assert_eq!(integrations.run_due_syncs().await.unwrap().started, 0);
    integrations
        .grant_consent(&user, &c.id, &Purpose::new("matching").unwrap())
        .await
        .unwrap();
    let report = integrations.run_due_syncs().await.unwrap();
    assert_eq!((report.started, report.completed, report.failed), (3, 3, 0));
    assert!(!overlapped(&arrivals), "one run per connection at a time");
    let states = store.list_sync_states(&user).await.unwrap();
    assert!(
        states
            .iter()
            .all(|s| s.status == SyncStatus::Ok && s.next_run_at.is_some())
    );
    // Nothing is due until the interval has passed.
    assert_eq!(integrations.run_due_syncs().await.unwrap().started, 0);
    clock.advance(Duration::from_secs(601));

    // The background loop runs them again; dropping it stops it.
    let before = server.requests().len();
    let task = tokio::spawn(integrations.scheduler());
    for _ in 0..200 {
        if server.requests().len() >= before + 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = server.requests().len();
    assert!(after >= before + 12, "the scheduler ran every stream again");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.requests().len(),
        after,
        "a dropped scheduler runs nothing"
    );
    assert!(!overlapped(&arrivals));

    // Revoked consent: the streams are unscheduled.
    integrations
        .revoke_consent(&user, &c.id, &Purpose::new("matching").unwrap())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(601));
    let report = integrations.run_due_syncs().await.unwrap();
    assert_eq!((report.started, report.skipped), (0, 3));
    let states = store.list_sync_states(&user).await.unwrap();
    assert!(
        states
            .iter()
            .all(|s| s.status == SyncStatus::ConsentRequired && s.next_run_at.is_none())
    );
}
