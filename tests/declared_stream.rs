//! A stream declared only in the TOML catalogue (page-token paging over a
//! local JSON API, a datetime cursor) syncs completely, then incrementally.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use consentry::connection::AccountInfo;
use consentry::connector::{Catalogue, ClientRegistration};
use consentry::http::ReqwestClient;
use consentry::secret::ClientSecret;
use consentry::store::{ConnectionStore, ConnectionWrite, MemoryStore};
use consentry::vault::{CredentialKind, CredentialUpdate, Keyring};
use consentry::{Connection, ConnectionId, ConnectorId, Integrations, Purpose, UserId};
use support::http_server::{Reply, Server};

fn contact(i: usize, day: u32, name: &str) -> serde_json::Value {
    serde_json::json!({"id": i, "name": name, "updated_at": format!("2026-01-{day:02}T12:00:00Z"), "phone": "+1 555 0100"})
}

fn catalogue(base: &str) -> String {
    format!(
        r#"
[connectors.acme]
name = "Acme CRM"
authorization_url = "{base}/authorize"
token_url = "{base}/token"
api_base_url = "{base}/v1"

[[connectors.acme.streams]]
name = "contacts"
purposes = ["crm_sync"]
cursor = "timestamp"
page_size = 5
path = "/contacts"
query = {{ order = "updated_at" }}
records = "/data"
id = "/id"
kind = "contact"
fields = {{ name = "/name", updated_at = "/updated_at" }}
pagination = "page_token"
token_param = "page_token"
token_pointer = "/next_page_token"
cursor_field = "/updated_at"
cursor_param = "updated_since"
lookback_seconds = 60
"#
    )
}

#[tokio::test]
async fn a_toml_only_stream_syncs_completely_then_incrementally() {
    let contacts: Arc<Mutex<Vec<serde_json::Value>>> = Arc::new(Mutex::new(
        (0..23)
            .map(|i| contact(i, 1 + (i % 20) as u32, &format!("C{i}")))
            .collect(),
    ));
    let c = contacts.clone();
    let server = Server::start(move |r| {
        if r.path != "/v1/contacts"
            || r.bearer() != Some("at-1")
            || r.q("order") != Some("updated_at")
        {
            return Reply::status(400);
        }
        let mut all: Vec<serde_json::Value> = c.lock().unwrap().clone();
        if let Some(since) = r.q("updated_since") {
            all.retain(|x| x["updated_at"].as_str().unwrap() >= since);
        }
        let start: usize = r.q("page_token").map_or(0, |t| t.parse().unwrap());
        let end = (start + 5).min(all.len());
        let mut body = serde_json::json!({"data": all[start.min(end)..end]});
        if end < all.len() {
            body["next_page_token"] = end.to_string().into();
        }
        Reply::json(200, &body)
    });
    let base = server.url("");
    let connector = Catalogue::from_toml(&catalogue(&base))
        .unwrap()
        .connector(
            "acme",
            ClientRegistration::new("id").with_secret(ClientSecret::new("s")),
        )
        .unwrap();
    let store = MemoryStore::new();
    let integrations = Integrations::builder()
        .store(store.clone())
        .keyring(Keyring::generate().unwrap())
        .http(ReqwestClient::new().unwrap())
        .connector(connector)
        .redirect_uri("http://127.0.0.1/cb".parse().unwrap())
        .build()
        .unwrap();
    let user = UserId::new("u1").unwrap();
    let now = SystemTime::now();
    let mut conn = Connection::new(
        ConnectionId::generate().unwrap(),
        user.clone(),
        ConnectorId::new("acme").unwrap(),
        AccountInfo::new("acct"),
        now,
    );
    conn.access_expires_at = Some(now + Duration::from_secs(3600 * 24));
    let sealed = integrations
        .vault()
        .seal(
            &user,
            &conn.id,
            vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                "at-1".into(),
            )],
        )
        .await
        .unwrap();
    store
        .write_connection(ConnectionWrite::create(conn.clone()).with_credentials(sealed))
        .await
        .unwrap();
    let purpose = Purpose::new("crm_sync").unwrap();
    integrations
        .grant_consent(&user, &conn.id, &purpose)
        .await
        .unwrap();

    // Complete: every page, every contact, only the declared fields.
    let first = integrations
        .sync_now(&user, &conn.id, "contacts", &purpose)
        .await
        .unwrap();
    assert_eq!((first.pages, first.upserted), (5, 23));
    let held = integrations
        .records(&user, &conn.id, "contacts", &purpose)
        .await
        .unwrap();
    assert_eq!(held.len(), 23);
    assert_eq!(held[0].kind, "contact");
    assert!(
        held.iter()
            .all(|r| r.value().unwrap().get("phone").is_none())
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.q("updated_since").is_none())
    );

    // The provider changes two contacts and adds three.
    {
        let mut all = contacts.lock().unwrap();
        all[3] = contact(3, 25, "C3 renamed");
        all[7] = contact(7, 25, "C7 renamed");
        for i in 23..26 {
            all.push(contact(i, 26, &format!("C{i}")));
        }
    }
    let before = server.requests().len();
    let second = integrations
        .sync_now(&user, &conn.id, "contacts", &purpose)
        .await
        .unwrap();
    let asked = &server.requests()[before..];
    // Newest seen was 2026-01-20T12:00:00Z; minus the 60 s lookback.
    assert!(
        asked
            .iter()
            .all(|r| r.q("updated_since") == Some("2026-01-20T11:59:00Z")),
        "{asked:?}"
    );
    // Only what changed since is fetched, plus contact 19 (2026-01-20T12:00:00Z,
    // inside the lookback window).
    assert_eq!(second.upserted, 5 + 1, "{second:?}");
    let held = integrations
        .records(&user, &conn.id, "contacts", &purpose)
        .await
        .unwrap();
    assert_eq!(held.len(), 26);
    let c3 = held.iter().find(|r| r.id == "3").unwrap();
    assert_eq!(c3.value().unwrap()["name"], "C3 renamed");

    // Nothing new: the next run asks from the newest change.
    let third = integrations
        .sync_now(&user, &conn.id, "contacts", &purpose)
        .await
        .unwrap();
    assert_eq!(third.upserted, 3, "only the lookback window overlaps");
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.q("updated_since"), Some("2026-01-26T11:59:00Z"));
}

#[test]
fn stream_declarations_are_checked_field_by_field() {
    let base = "https://api.acme.example";
    let ok = catalogue(base);
    assert!(Catalogue::from_toml(&ok).is_ok());
    for (from, to, field) in [
        (
            "token_param = \"page_token\"\n",
            "",
            "connectors.acme.streams[0].token_param",
        ),
        (
            "pagination = \"page_token\"",
            "pagination = \"cursor\"",
            "connectors.acme.streams[0].pagination",
        ),
        (
            "records = \"/data\"",
            "records = \"data\"",
            "connectors.acme.streams[0].path",
        ),
        (
            "cursor_param = \"updated_since\"\n",
            "",
            "connectors.acme.streams[0].cursor_param",
        ),
        (
            "api_base_url = \"https://api.acme.example/v1\"\n",
            "",
            "api_base_url",
        ),
        (
            "lookback_seconds = 60",
            "lookback_seconds = \"60\"",
            "connectors.acme.streams[0].lookback_seconds",
        ),
    ] {
        let broken = ok.replace(from, to);
        assert_ne!(broken, ok, "{from}");
        let err = Catalogue::from_toml(&broken).unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    let no_path = ok.replace("path = \"/contacts\"\n", "");
    let err = Catalogue::from_toml(&no_path).unwrap_err().to_string();
    assert!(err.contains("needs `path`"), "{err}");
}
