//! Proactive budgets: a provider's token bucket spaces requests out, in
//! the injected clock's time.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consentry::clock::{Clock, ManualClock};
use consentry::connection::AccountInfo;
use consentry::connector::{HttpStream, OAuth2Connector, Pagination, StreamSpec};
use consentry::http::ReqwestClient;
use consentry::secret::ClientSecret;
use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
use consentry::sync::{Budget, SyncOptions};
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{Connection, ConnectionId, ConnectorId, Integrations, Purpose, UserId};
use support::http_server::{Reply, Server};

#[tokio::test]
async fn a_provider_budget_spaces_requests_out() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let seen: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let (c, s) = (clock.clone(), seen.clone());
    let server = Server::start(move |r| {
        s.lock().unwrap().push(c.now());
        let page: usize = r.q("page").map_or(0, |p| p.parse().unwrap());
        let mut body = serde_json::json!({"items": [{"id": page}]});
        if page < 9 {
            body["next"] = (page + 1).to_string().into();
        }
        Reply::json(200, &body)
    });
    let connector = OAuth2Connector::builder("acme".parse().unwrap())
        .authorization_url(server.url("/a").parse().unwrap())
        .token_url(server.url("/t").parse().unwrap())
        .client_id("c")
        .client_secret(ClientSecret::new("s"))
        .api_base_url(server.url("").parse().unwrap())
        .stream(
            StreamSpec::new("items")
                .unwrap()
                .with_purposes([Purpose::new("matching").unwrap()])
                .with_http(
                    HttpStream::new("/items", "/items", "/id")
                        .unwrap()
                        .with_pagination(Pagination::PageToken {
                            param: "page".into(),
                            pointer: "/next".into(),
                        }),
                ),
        )
        .build()
        .unwrap();
    let store = MemoryStore::new();
    // 2 requests per second, bursts of 2: 10 requests need at least 4 s.
    let opts =
        SyncOptions::default().provider_budget("acme".parse().unwrap(), Budget::per_second(2));
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .clock(clock.clone())
        .sync_options(opts)
        .build()
        .unwrap();
    let user = UserId::new("u").unwrap();
    let now = clock.now();
    let mut conn = Connection::new(
        ConnectionId::generate().unwrap(),
        user.clone(),
        ConnectorId::new("acme").unwrap(),
        AccountInfo::new("a"),
        now,
    );
    conn.access_expires_at = Some(now + Duration::from_secs(86_400));
    let sealed = integrations
        .vault()
        .seal(
            &user,
            &conn.id,
            vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                "t".into(),
            )],
        )
        .await
        .unwrap();
    store
        .write_connection(ConnectionWrite::create(conn.clone()).with_credentials(sealed))
        .await
        .unwrap();
    let purpose = Purpose::new("matching").unwrap();
    integrations
        .grant_consent(&user, &conn.id, &purpose)
        .await
        .unwrap();
    let report = integrations
        .sync_now(&user, &conn.id, "items", &purpose)
        .await
        .unwrap();
    assert_eq!(report.upserted, 10);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    let span = seen[9].duration_since(seen[0]).unwrap();
    assert!(
        span >= Duration::from_millis(3900),
        "10 requests in {span:?}"
    );
    // The first two go at once (the burst), then one every 500 ms.
    assert_eq!(seen[1], seen[0]);
    assert!(seen[2].duration_since(seen[1]).unwrap() >= Duration::from_millis(490));
}

#[tokio::test]
async fn a_connection_budget_spaces_each_connections_requests_out_on_its_own() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    // (bearer token, clock time) of every request.
    let seen: Arc<Mutex<Vec<(String, SystemTime)>>> = Arc::default();
    let (c, s) = (clock.clone(), seen.clone());
    let server = Server::start(move |r| {
        s.lock()
            .unwrap()
            .push((r.bearer().unwrap_or("").to_owned(), c.now()));
        let page: usize = r.q("page").map_or(0, |p| p.parse().unwrap());
        let mut body = serde_json::json!({"items": [{"id": page}]});
        if page < 5 {
            body["next"] = (page + 1).to_string().into();
        }
        Reply::json(200, &body)
    });
    let connector = OAuth2Connector::builder("acme".parse().unwrap())
        .authorization_url(server.url("/a").parse().unwrap())
        .token_url(server.url("/t").parse().unwrap())
        .client_id("c")
        .client_secret(ClientSecret::new("s"))
        .api_base_url(server.url("").parse().unwrap())
        .stream(
            StreamSpec::new("items")
                .unwrap()
                .with_purposes([Purpose::new("matching").unwrap()])
                .with_http(
                    HttpStream::new("/items", "/items", "/id")
                        .unwrap()
                        .with_pagination(Pagination::PageToken {
                            param: "page".into(),
                            pointer: "/next".into(),
                        }),
                ),
        )
        .build()
        .unwrap();
    let store = MemoryStore::new();
    // Each connection: 2 requests per second, bursts of 2. No provider
    // budget: only the per-connection buckets can make anyone wait.
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .clock(clock.clone())
        .sync_options(SyncOptions::default().connection_budget(Budget::per_second(2)))
        .build()
        .unwrap();
    let user = UserId::new("u").unwrap();
    let purpose = Purpose::new("matching").unwrap();
    let mut conns = Vec::new();
    for token in ["token-a", "token-b"] {
        let now = clock.now();
        let mut conn = Connection::new(
            ConnectionId::generate().unwrap(),
            user.clone(),
            ConnectorId::new("acme").unwrap(),
            AccountInfo::new(token),
            now,
        );
        conn.access_expires_at = Some(now + Duration::from_secs(86_400));
        let sealed = integrations
            .vault()
            .seal(
                &user,
                &conn.id,
                vec![CredentialUpdate::new(
                    CredentialKind::AccessToken,
                    token.into(),
                )],
            )
            .await
            .unwrap();
        store
            .write_connection(ConnectionWrite::create(conn.clone()).with_credentials(sealed))
            .await
            .unwrap();
        integrations
            .grant_consent(&user, &conn.id, &purpose)
            .await
            .unwrap();
        conns.push(conn.id);
    }
    let times = |token: &str| -> Vec<SystemTime> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == token)
            .map(|(_, at)| *at)
            .collect()
    };

    // Connection A: 6 requests; the burst of 2, then one every 500 ms.
    let report = integrations
        .sync_now(&user, &conns[0], "items", &purpose)
        .await
        .unwrap();
    assert_eq!(report.upserted, 6);
    let a = times("token-a");
    assert_eq!(a.len(), 6);
    assert_eq!(a[1], a[0], "the burst");
    for n in 2..6 {
        let gap = a[n].duration_since(a[n - 1]).unwrap();
        assert!(gap >= Duration::from_millis(490), "request {n}: {gap:?}");
    }
    let span = a[5].duration_since(a[0]).unwrap();
    assert!(
        span >= Duration::from_millis(1990),
        "6 requests in {span:?}"
    );

    // Connection B, right after: its own bucket is full, so its burst goes
    // at once although A's bucket is empty.
    let b_started = clock.now();
    integrations
        .sync_now(&user, &conns[1], "items", &purpose)
        .await
        .unwrap();
    let b = times("token-b");
    assert_eq!(b.len(), 6);
    assert_eq!((b[0], b[1]), (b_started, b_started), "B did not wait for A");
    assert!(b[2].duration_since(b[1]).unwrap() >= Duration::from_millis(490));

    // A again: its bucket refilled while B ran (B took about 2 s).
    let a_again = clock.now();
    integrations
        .sync_now(&user, &conns[0], "items", &purpose)
        .await
        .unwrap();
    let a = times("token-a");
    assert_eq!(a.len(), 12);
    assert_eq!(a[6], a_again);
    let span = a[11].duration_since(a[6]).unwrap();
    assert!(
        span >= Duration::from_millis(1990),
        "A's second run: {span:?}"
    );
}
