//! The refresh pipeline's bookkeeping against a scripted token endpoint (a
//! closure HTTP client, a manual clock): a transient failure degrades the
//! connection with backoff and a failure count, a later success recovers
//! it, and a refresh response without a refresh token keeps the old one.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consentry::clock::{Clock, ManualClock};
use consentry::connector::{AccountSource, ClientAuth, OAuth2Connector};
use consentry::events::{EventKind, Subscription};
use consentry::http::{self, HttpRequest, Response, StatusCode};
use consentry::secrecy::ExposeSecret;
use consentry::store::{CredentialKey, CredentialStore, MemoryStore};
use consentry::url::Url;
use consentry::vault::{CredentialKind, Keyring};
use consentry::{Connection, ConnectionStatus, Error, ErrorKind, Integrations, Purpose, UserId};

/// What the token endpoint answers to a refresh grant.
const ROTATE: u8 = 0;
const UNAVAILABLE: u8 = 1;
const NO_REFRESH_TOKEN: u8 = 2;

/// A token endpoint whose refresh answers are scripted by `mode`; every
/// refresh grant's `refresh_token` parameter is recorded in `sent`.
struct Provider {
    mode: Arc<AtomicU8>,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Provider {
    fn refreshes(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

fn setup() -> (Integrations, MemoryStore, ManualClock, Provider) {
    let mode = Arc::new(AtomicU8::new(ROTATE));
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let (m, s) = (mode.clone(), sent.clone());
    let client = http::from_fn(move |req: HttpRequest| {
        let (mode, sent) = (m.clone(), s.clone());
        async move {
            let (status, body) = if req.uri().path() == "/userinfo" {
                (
                    200,
                    r#"{"sub":"acct-1","email":"a@example.test"}"#.to_owned(),
                )
            } else {
                let form: Vec<(String, String)> = url::form_urlencoded::parse(req.body())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let param =
                    |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                if param("grant_type").as_deref() == Some("refresh_token") {
                    let n = {
                        let mut sent = sent.lock().unwrap();
                        sent.push(param("refresh_token").unwrap_or_default());
                        sent.len()
                    };
                    match mode.load(Ordering::SeqCst) {
                        UNAVAILABLE => (503, r#"{"error":"temporarily_unavailable"}"#.to_owned()),
                        NO_REFRESH_TOKEN => (
                            200,
                            format!(
                                r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600}}"#
                            ),
                        ),
                        _ => (
                            200,
                            format!(
                                r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{n}"}}"#
                            ),
                        ),
                    }
                } else {
                    (
                        200,
                        r#"{"access_token":"at-0","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-0"}"#
                            .to_owned(),
                    )
                }
            };
            let mut r = Response::new(body.into_bytes());
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok(r)
        }
    });
    let connector = OAuth2Connector::builder("prov".parse().unwrap())
        .authorization_url(Url::parse("https://as.example/authorize").unwrap())
        .token_url(Url::parse("https://as.example/token").unwrap())
        .client_id("client")
        .client_auth(ClientAuth::None)
        .account(AccountSource::userinfo(
            Url::parse("https://as.example/userinfo").unwrap(),
        ))
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let clock = ManualClock::starting_now();
    let i = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(client)
        .connector(connector)
        .redirect_uri(Url::parse("https://app.example/cb").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    (i, store, clock, Provider { mode, sent })
}

fn purpose() -> Purpose {
    Purpose::new("reminders").unwrap()
}

/// Connects (tokens `at-0` / `rt-0`, valid for an hour) and grants consent.
async fn connect(i: &Integrations, user: &UserId) -> Connection {
    let start = i
        .begin_connect(user, &"prov".parse().unwrap(), &[])
        .await
        .unwrap();
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let callback = Url::parse(&format!("https://app.example/cb?code=c&state={state}")).unwrap();
    let c = i.complete_connect(user, &callback).await.unwrap();
    i.grant_consent(user, &c.id, &purpose()).await.unwrap();
    c
}

/// The next event, which must be of `kind`, for connection `c`.
fn next_event(events: &mut Subscription, kind: EventKind, c: &Connection) {
    let e = events.try_recv().unwrap();
    assert_eq!((e.kind, &e.connection), (kind, &c.id), "{e:?}");
}

async fn listed(i: &Integrations, user: &UserId) -> Connection {
    let mut all = i.connections(user).await.unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[tokio::test]
async fn a_transient_failure_degrades_with_backoff_and_a_success_recovers() {
    let (i, _store, clock, provider) = setup();
    let user = UserId::new("ada").unwrap();
    let c = connect(&i, &user).await;
    let mut events = i.subscribe();

    // Expired, and the token endpoint answers 503.
    clock.advance(Duration::from_secs(2 * 3600));
    provider.mode.store(UNAVAILABLE, Ordering::SeqCst);
    let err = i.access_token(&user, &c.id, &purpose()).await.unwrap_err();
    assert!(err.kind().is_retryable(), "{err}");
    assert_ne!(err.kind(), ErrorKind::ReauthRequired);
    assert_eq!(provider.refreshes(), 1);
    next_event(&mut events, EventKind::RefreshFailed, &c);
    assert!(events.try_recv().is_err(), "one event per failure");

    let now = clock.now();
    let listed1 = listed(&i, &user).await;
    assert_eq!(listed1.status, ConnectionStatus::Degraded);
    assert_eq!(listed1.health.consecutive_failures, 1);
    assert!(listed1.health.last_refresh_failed.is_some());
    assert!(listed1.health.last_error.is_some());
    let until = listed1.health.retry_after.expect("a backoff is set");
    // First failure: a full-jitter wait in [1 s, 2 s].
    let wait = until.duration_since(now).unwrap();
    assert!(
        wait >= Duration::from_millis(990) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );

    // During the backoff the provider is not called again.
    let err = i.access_token(&user, &c.id, &purpose()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{err}"
    );
    assert_eq!(provider.refreshes(), 1, "the backoff is obeyed");
    assert!(events.try_recv().is_err());

    // After it, a second failure: the count and the backoff grow.
    clock.advance(Duration::from_secs(3));
    let _ = i.access_token(&user, &c.id, &purpose()).await.unwrap_err();
    assert_eq!(provider.refreshes(), 2);
    next_event(&mut events, EventKind::RefreshFailed, &c);
    let now = clock.now();
    let listed2 = listed(&i, &user).await;
    assert_eq!(
        (listed2.status, listed2.health.consecutive_failures),
        (ConnectionStatus::Degraded, 2)
    );
    let wait = listed2
        .health
        .retry_after
        .unwrap()
        .duration_since(now)
        .unwrap();
    assert!(
        wait >= Duration::from_millis(1990) && wait <= Duration::from_secs(4),
        "{wait:?}"
    );

    // The provider is back: the refresh succeeds and the connection recovers.
    clock.advance(Duration::from_secs(5));
    provider.mode.store(ROTATE, Ordering::SeqCst);
    let token = i.access_token(&user, &c.id, &purpose()).await.unwrap();
    assert_eq!(token.secret.expose_secret(), "at-3");
    assert_eq!(provider.refreshes(), 3);
    next_event(&mut events, EventKind::Recovered, &c);
    let back = listed(&i, &user).await;
    assert_eq!(back.status, ConnectionStatus::Active);
    assert_eq!(back.health.consecutive_failures, 0);
    assert_eq!(back.health.retry_after, None);
    assert!(back.health.last_refresh_ok.is_some());

    // A later, ordinary refresh is `refreshed`, not `recovered`.
    clock.advance(Duration::from_secs(2 * 3600));
    i.access_token(&user, &c.id, &purpose()).await.unwrap();
    next_event(&mut events, EventKind::Refreshed, &c);
}

#[tokio::test]
async fn a_refresh_response_without_a_refresh_token_keeps_the_old_one() {
    let (i, store, clock, provider) = setup();
    let user = UserId::new("ada").unwrap();
    let c = connect(&i, &user).await;
    let key = CredentialKey::new(user.clone(), c.id.clone(), CredentialKind::RefreshToken);
    let before = store.get_credential(&key).await.unwrap().unwrap().version;

    provider.mode.store(NO_REFRESH_TOKEN, Ordering::SeqCst);
    for round in 1..=2 {
        clock.advance(Duration::from_secs(2 * 3600));
        let token = i.access_token(&user, &c.id, &purpose()).await.unwrap();
        assert_eq!(token.secret.expose_secret(), format!("at-{round}"));
        let rt = i
            .vault()
            .get(&user, &c.id, CredentialKind::RefreshToken)
            .await
            .unwrap();
        assert_eq!(rt.value.expose_secret(), "rt-0", "round {round}");
        assert_eq!(
            rt.version, before,
            "the refresh token row was not rewritten"
        );
    }
    // Both refreshes were made with the original refresh token.
    assert_eq!(*provider.sent.lock().unwrap(), ["rt-0", "rt-0"]);
    let listed = listed(&i, &user).await;
    assert!(listed.has_refresh_token);
    assert_eq!(listed.status, ConnectionStatus::Active);

    // When the provider does rotate, the new one replaces it.
    provider.mode.store(ROTATE, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2 * 3600));
    i.access_token(&user, &c.id, &purpose()).await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    i.access_token(&user, &c.id, &purpose()).await.unwrap();
    assert_eq!(
        *provider.sent.lock().unwrap(),
        ["rt-0", "rt-0", "rt-0", "rt-3"]
    );
}
