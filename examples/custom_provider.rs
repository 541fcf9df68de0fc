//! A provider added through TOML, without code: "Acme CRM".
//!
//! ```text
//! cargo run --example custom_provider
//! ```
//!
//! The catalogue entry below is all it takes to support a new OAuth 2.0
//! provider. So that this example runs anywhere, Acme's token, userinfo and
//! revocation endpoints are played by an in-process HTTP client
//! (`http::from_fn`), and the user's approval in the browser is simulated
//! by building the callback URL the provider would redirect to.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use consentry::connector::{Catalogue, ClientRegistration};
use consentry::http::{self, HttpRequest, Response};
use consentry::secret::ClientSecret;
use consentry::store::MemoryStore;
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{Integrations, Purpose, UserId};

const ACME: &str = r#"
[connectors.acme]
name = "Acme CRM"
authorization_url = "https://auth.acme.example/oauth/authorize"
token_url = "https://auth.acme.example/oauth/token"
revocation_url = "https://auth.acme.example/oauth/revoke"
default_scopes = ["contacts.read"]
optional_scopes = ["contacts.write"]
# Acme's token endpoint wants the client credentials in the form body.
client_auth = "post"

[connectors.acme.quirks]
# Acme answers errors with HTTP 200 and sends expires_in as a string.
errors_with_200 = true
expires_in_as_string = true

[connectors.acme.account]
url = "https://api.acme.example/v2/me"
id = "/user/id"
email = "/user/email"
name = "/user/display_name"
"#;

/// Acme's servers, in process.
fn acme() -> impl http::HttpClient {
    http::from_fn(|req: HttpRequest| async move {
        let path = req.uri().path().to_owned();
        let body = match path.as_str() {
            "/oauth/token" => {
                let form = String::from_utf8_lossy(req.body()).into_owned();
                assert!(
                    form.contains("client_secret=acme-secret"),
                    "client_secret_post"
                );
                r#"{"access_token":"acme-at-1","refresh_token":"acme-rt-1","expires_in":"3600","token_type":"Bearer","scope":"contacts.read"}"#
            }
            "/v2/me" => {
                r#"{"user":{"id":"u-1234","email":"ada@acme.example","display_name":"Ada"}}"#
            }
            "/oauth/revoke" => "",
            other => panic!("unexpected request to {other}"),
        };
        Ok(Response::new(body.as_bytes().to_vec()))
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), consentry::Error> {
    let catalogue = Catalogue::from_toml(ACME)?;
    let connector = catalogue.connector(
        "acme",
        ClientRegistration::new("acme-client").with_secret(ClientSecret::new("acme-secret")),
    )?;
    let redirect = Url::parse("https://app.example/oauth/callback").unwrap();
    let integrations = Integrations::builder()
        .store(MemoryStore::new())
        .keyring(Keyring::generate()?)
        .http(acme())
        .connector(connector)
        .redirect_uri(redirect.clone())
        .build()?;

    let user = UserId::new("ada")?;
    let start = integrations
        .begin_connect(&user, &"acme".parse()?, &[])
        .await?;
    println!("1. send the user to: {}", start.authorize_url);

    // The user approves; Acme redirects back with a code and the state.
    let state = start
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let callback = Url::parse(&format!("{redirect}?code=acme-code&state={state}")).unwrap();
    let connection = integrations.complete_connect(&user, &callback).await?;
    println!(
        "2. connected {} ({}) with scopes {:?}",
        connection.account.name.as_deref().unwrap_or("?"),
        connection.account.email.as_deref().unwrap_or("?"),
        connection
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
    );

    let crm = Purpose::new("crm_sync")?;
    let refused = integrations
        .access_token(&user, &connection.id, &crm)
        .await
        .expect_err("no consent yet");
    println!("3. without consent: {refused}");
    integrations
        .grant_consent(&user, &connection.id, &crm)
        .await?;
    let token = integrations
        .access_token(&user, &connection.id, &crm)
        .await?;
    println!(
        "4. with consent: a token ({:?}), expires at {:?}",
        token.secret, token.expires_at
    );

    let report = integrations.disconnect(&user, &connection.id).await?;
    println!(
        "5. disconnected: refresh token {:?}, access token {:?}, {} credential(s) deleted",
        report.refresh_token, report.access_token, report.credentials_deleted
    );
    assert!(integrations.connections(&user).await?.is_empty());
    Ok(())
}
