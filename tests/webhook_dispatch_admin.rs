//! Who may manage endpoints, what non-admins see, where the default client
//! refuses to connect (SSRF), and the store-backed replay guard.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "reqwest")]
mod webhook_support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use consentry::http::{self, HttpError, HttpErrorKind, HttpRequest};
use consentry::secrecy::ExposeSecret;
use consentry::store::{MemoryStore, ReplayStore};
use consentry::vault::Keyring;
use consentry::webhook::{
    Actor, Dispatcher, EndpointConfig, EndpointUpdate, ReplayGuard, WebhookError,
};
use consentry::{Error, ErrorKind};

fn dispatcher(store: MemoryStore) -> Dispatcher {
    let offline = http::from_fn(|_req: HttpRequest| async {
        Err(HttpError::from_kind(HttpErrorKind::Connect))
    });
    Dispatcher::builder()
        .store(store)
        .keyring(Keyring::generate().unwrap())
        .http(offline)
        .build()
        .unwrap()
}

fn forbidden<T: std::fmt::Debug>(r: consentry::Result<T>) {
    match r {
        Err(e @ Error::Forbidden { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Forbidden);
            assert_eq!(e.to_problem().status, 403);
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn non_admins_cannot_create_change_delete_or_read_secrets() {
    let store = MemoryStore::new();
    let d = dispatcher(store.clone());
    let (admin, bob) = (Actor::admin("alice"), Actor::user("bob"));
    let config = EndpointConfig::new("https://hooks.example.com/in")
        .header("authorization", "Bearer s3cr3t-token");
    forbidden(d.create_endpoint(&bob, config.clone()).await);
    assert!(
        d.list_endpoints(&admin).await.unwrap().is_empty(),
        "nothing was created"
    );

    let e = d.create_endpoint(&admin, config).await.unwrap();
    let whsec = e.secrets.as_ref().unwrap().current.expose_whsec();
    forbidden(
        d.update_endpoint(
            &bob,
            &e.id,
            EndpointUpdate::new().url("https://evil.example/"),
        )
        .await,
    );
    forbidden(
        d.update_endpoint(&bob, &e.id, EndpointUpdate::new().enabled(false))
            .await,
    );
    forbidden(d.rotate_secret(&bob, &e.id, None).await);
    forbidden(d.delete_endpoint(&bob, &e.id).await);
    let id = d.publish("a.b", serde_json::json!({}), None).await.unwrap();
    forbidden(d.replay(&bob, &id).await);
    forbidden(d.recover(&bob, &e.id, UNIX_EPOCH).await);
    forbidden(d.attempts(&bob, &id).await);
    forbidden(d.deliveries(&bob, &id).await);
    forbidden(d.message(&bob, &id).await);

    // Reading: no secret, no header value, for a non-admin.
    let seen = d.get_endpoint(&bob, &e.id).await.unwrap();
    assert!(seen.secrets.is_none());
    assert_eq!(
        seen.url.as_str(),
        "https://hooks.example.com/in",
        "unchanged"
    );
    assert!(seen.enabled);
    let listed = d.list_endpoints(&bob).await.unwrap();
    assert!(listed.iter().all(|e| e.secrets.is_none()));
    let debug = format!(
        "{seen:?} {listed:?} {:?}",
        d.get_endpoint(&admin, &e.id).await.unwrap()
    );
    assert!(
        !debug.contains(&whsec.expose_secret()[6..]),
        "no secret in Debug"
    );
    assert!(!debug.contains("s3cr3t-token"), "no header value in Debug");

    // Nothing in the store is in clear.
    let stored = consentry::store::WebhookEndpointStore::get_webhook_endpoint(&store, &e.id)
        .await
        .unwrap()
        .unwrap();
    let needle = &whsec.expose_secret().as_bytes()[6..];
    assert!(!stored.sealed.windows(needle.len()).any(|w| w == needle));
    assert!(!stored.sealed.windows(12).any(|w| w == b"s3cr3t-token"));

    // The admin still can.
    assert!(d.delete_endpoint(&admin, &e.id).await.unwrap());
    assert_eq!(
        d.get_endpoint(&admin, &e.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn endpoint_urls_headers_and_limits_are_validated() {
    let d = dispatcher(MemoryStore::new());
    let admin = Actor::admin("alice");
    for url in [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://localhost:8443/",
        "https://169.254.169.254/",
        "https://[::ffff:10.0.0.1]/",
        "https://user:pw@hooks.example.com/",
    ] {
        let err = d
            .create_endpoint(&admin, EndpointConfig::new(url))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}");
    }
    for (name, value) in [
        ("webhook-id", "x"),
        ("Transfer-Encoding", "chunked"),
        ("x-a", "a\r\nb"),
    ] {
        let config = EndpointConfig::new("https://h.example/").header(name, value);
        assert!(d.create_endpoint(&admin, config).await.is_err(), "{name}");
    }
    assert!(
        d.create_endpoint(
            &admin,
            EndpointConfig::new("https://h.example/").rate_limit(0)
        )
        .await
        .is_err()
    );
    assert!(
        d.create_endpoint(
            &admin,
            EndpointConfig::new("https://h.example/").event_types(["has space"])
        )
        .await
        .is_err()
    );
    let e = d
        .create_endpoint(
            &admin,
            EndpointConfig::new("https://h.example/").event_types(["b.b", "a.a", "a.a"]),
        )
        .await
        .unwrap();
    assert_eq!(e.event_types, vec!["a.a".to_owned(), "b.b".to_owned()]);
    let err = d
        .update_endpoint(
            &admin,
            &e.id,
            EndpointUpdate::new().url("http://h.example/"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "checked on update too");
}

async fn replay_guard_cases(store: Arc<dyn ReplayStore>) {
    let guard = ReplayGuard::new(store.clone(), "svix").unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    guard.check("msg_1", t0).await.unwrap();
    let second = guard
        .check("msg_1", t0 + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(second, Error::Webhook(WebhookError::Replayed)));
    assert_eq!(second.kind(), ErrorKind::Conflict);
    // Another scope is another sender.
    ReplayGuard::new(store.clone(), "stripe")
        .unwrap()
        .check("msg_1", t0)
        .await
        .unwrap();
    // Expired entries are purged, and the id is accepted again.
    let after = t0 + guard.ttl() + Duration::from_secs(1);
    assert!(guard.purge(after).await.unwrap() >= 1);
    guard.check("msg_1", after).await.unwrap();
    assert!(guard.check("", after).await.is_err());

    // Concurrent checks of one id: exactly one passes.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let g = guard.clone();
            tokio::spawn(async move { g.check("msg_race", t0).await.is_ok() })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_guard_in_memory() {
    replay_guard_cases(Arc::new(MemoryStore::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_guard_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = consentry::store::SqliteStore::open(dir.path().join("r.db"))
        .await
        .unwrap();
    replay_guard_cases(Arc::new(store)).await;
}

/// One address of every blocked range of the reference table (§3.3), its
/// IPv4-mapped and NAT64 forms, and the IPv6 ranges. The default client
/// refuses each before connecting; nothing is sent anywhere.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn the_default_client_refuses_every_blocked_range() {
    use consentry::http::{HttpClient, Request};
    use consentry::webhook::{DispatcherOptions, WebhookClient, ssrf};

    let v4 = [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.254",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.254",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
    ];
    let mut addresses: Vec<String> = Vec::new();
    for a in v4 {
        addresses.push(a.to_owned());
        addresses.push(format!("[::ffff:{a}]"));
        addresses.push(format!("[64:ff9b::{a}]"));
    }
    for a in [
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2001:db8::1",
        "3fff::1",
        "100::1",
        "2002:a00:1::1",
        "64:ff9b:1::a00:1",
        "5f00::1",
        "fec0::1",
        "::a00:1",
    ] {
        addresses.push(format!("[{a}]"));
    }
    let options = DispatcherOptions::default();
    let client = WebhookClient::for_options(&options).unwrap();
    for a in &addresses {
        // The pure check first: a miss here must never reach the network.
        let ip: std::net::IpAddr = a.trim_matches(['[', ']']).parse().unwrap();
        assert!(ssrf::check(ip).is_err(), "{a} is not in the table");
        let req = Request::post(format!("https://{a}/hook"))
            .body(b"{}".to_vec())
            .unwrap();
        let err = client.send(req).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Blocked, "{a}");
    }
    // Plain http is refused whatever the address.
    let req = Request::post("http://hooks.example.com/")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        client.send(req).await.unwrap_err().kind(),
        HttpErrorKind::Blocked
    );
}

/// `localhost` resolves to loopback: refused unless loopback is allowed,
/// and then delivered (the resolver connects to 127.0.0.1 only).
#[cfg(feature = "reqwest")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
    use consentry::http::{HttpClient, Request};
    use consentry::webhook::{WebhookClient, ssrf::Policy};

    let receiver = webhook_support::Receiver::start(vec![]).await;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let strict = WebhookClient::builder().allow_http(true).build().unwrap();
    let req = Request::post(url.as_str()).body(b"{}".to_vec()).unwrap();
    let err = strict.send(req).await.unwrap_err();
    assert_eq!(err.kind(), HttpErrorKind::Blocked);
    assert!(!err.is_retryable());
    assert_eq!(receiver.count(), 0, "nothing reached the receiver");

    let allowed = WebhookClient::builder()
        .allow_http(true)
        .policy(Policy::new().allow("127.0.0.0/8".parse().unwrap()))
        .build()
        .unwrap();
    let req = Request::post(url.as_str()).body(b"{}".to_vec()).unwrap();
    let resp = allowed.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(receiver.count(), 1);
}
