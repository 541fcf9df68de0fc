//! The "Connected Services" page of a host app, built on consentry: the
//! catalogue of connectors with connect buttons, each connection with its
//! account, scopes, status and health, a toggle per purpose (consent), the
//! data held and who read it (transparency), and disconnect with the
//! report.
//!
//! ```text
//! cargo run --example connected_services     # then open http://127.0.0.1:3000/
//! ```
//!
//! Server-rendered HTML, no JavaScript; a session cookie and a CSRF token
//! on every form. By default it runs against an in-process
//! `consentry::testing::TestProvider` (no network, no account: its
//! authorization page approves as the user `ada`). For real providers:
//!
//! ```text
//! CONNECTED_SERVICES_CONNECTORS=github GITHUB_CLIENT_ID=.. GITHUB_CLIENT_SECRET=.. \
//! CONSENTRY_DB=app.db CONSENTRY_KEYS=.. CONNECTED_SERVICES_URL=https://app.example/ \
//!   cargo run --example connected_services
//! ```
//!
//! Listens on `CONNECTED_SERVICES_ADDR` (default `127.0.0.1:3000`).
#![allow(clippy::print_stdout)]

// `Config::demo` and `Running::provider` serve `tests/connected_services.rs`.
#[allow(dead_code)]
mod site;

#[tokio::main]
async fn main() -> Result<(), site::BoxError> {
    let addr = std::env::var("CONNECTED_SERVICES_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let mut app = site::start(listener, site::Config::from_env()?).await?;
    println!("Connected Services: open {}", app.url());
    tokio::select! {
        r = app.wait() => r?,
        r = tokio::signal::ctrl_c() => {
            r?;
            println!("stopping");
            app.stop().await?;
        }
    }
    Ok(())
}
