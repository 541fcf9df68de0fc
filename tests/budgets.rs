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
