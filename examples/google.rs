//! Connect a Google account with Google's real endpoints and scopes.
//!
//! ```text
//! GOOGLE_CLIENT_ID=... GOOGLE_CLIENT_SECRET=... cargo run --example google
//! ```
//!
//! Create an OAuth client of type "Web application" in the Google Cloud
//! console and register `http://127.0.0.1:8910/oauth/callback` as an
//! authorized redirect URI. The example prints the authorization URL, waits
//! for Google to redirect your browser back to that address, connects the
//! account, asks for a token for the purpose `profile_display` (after
//! recording consent), reads your Google profile with it, and disconnects
//! (revoking the grant at Google).
//!
//! Without the two variables it explains what to set and exits.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use consentry::connector::{Catalogue, ClientRegistration};
use consentry::http::{self, HttpClient, ReqwestClient};
use consentry::secret::ClientSecret;
use consentry::store::SqliteStore;
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{Integrations, Purpose, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REDIRECT: &str = "http://127.0.0.1:8910/oauth/callback";

#[tokio::main]
async fn main() -> Result<(), consentry::Error> {
    let (Ok(id), Ok(secret)) = (
        std::env::var("GOOGLE_CLIENT_ID"),
        std::env::var("GOOGLE_CLIENT_SECRET"),
    ) else {
        println!("Set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET to run this example:");
        println!(
            "  1. Google Cloud console > APIs & Services > Credentials > Create OAuth client ID (Web application)."
        );
        println!("  2. Add {REDIRECT} as an authorized redirect URI.");
        println!("  3. GOOGLE_CLIENT_ID=... GOOGLE_CLIENT_SECRET=... cargo run --example google");
        return Ok(());
    };
    let google = Catalogue::builtin()?.connector(
        "google",
        ClientRegistration::new(id).with_secret(ClientSecret::new(secret)),
    )?;
    let dir = tempfile::tempdir().map_err(|e| consentry::Error::storage("temp dir", e))?;
    let integrations = Integrations::builder()
        .store(SqliteStore::open(dir.path().join("google.db")).await?)
        .keyring(Keyring::generate()?)
        .connector(google)
        .redirect_uri(Url::parse(REDIRECT).unwrap())
        .build()?;

    let user = UserId::new("example-user")?;
    let start = integrations
        .begin_connect(&user, &"google".parse()?, &[])
        .await?;
    println!(
        "Open this URL in a browser and approve:\n\n  {}\n",
        start.authorize_url
    );
    let callback = wait_for_callback().await;
    let connection = integrations.complete_connect(&user, &callback).await?;
    println!(
        "Connected {:?} with scopes {:?}",
        connection.account.email, connection.scopes
    );

    let purpose = Purpose::new("profile_display")?;
    integrations
        .grant_consent(&user, &connection.id, &purpose)
        .await?;
    let token = integrations
        .access_token(&user, &connection.id, &purpose)
        .await?;
    let request = http::Request::get("https://openidconnect.googleapis.com/v1/userinfo")
        .header(
            "authorization",
            format!("Bearer {}", token.secret.expose_secret()),
        )
        .body(Vec::new())
        .unwrap();
    let profile = ReqwestClient::new()?.send(request).await?;
    println!("Google says: {}", String::from_utf8_lossy(profile.body()));

    let report = integrations.disconnect(&user, &connection.id).await?;
    println!("Disconnected: {report:?}");
    Ok(())
}

/// Accepts one request on the redirect address and returns its full URL.
async fn wait_for_callback() -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8910")
        .await
        .expect("port 8910 is free");
    let (mut socket, _) = listener.accept().await.expect("a browser connects");
    let mut buf = vec![0u8; 8192];
    let n = socket.read(&mut buf).await.expect("request");
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let body = "Connected. You can close this window.";
    let _ = socket
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    Url::parse(&format!("http://127.0.0.1:8910{target}")).unwrap()
}
