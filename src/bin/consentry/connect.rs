//! `consentry connect`: OAuth 2.0 for a native app (RFC 8252) — a loopback
//! listener on 127.0.0.1 with a free port, the authorization URL printed
//! (and opened in a browser when one is available), the redirect awaited.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use consentry::secret::ClientSecret;
use consentry::url::Url;
use consentry::{Scope, UserId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::store::{self, ConnectorConfig, SecretArg, UserArg};
use crate::{CliResult, Failure, Global, print_json};

/// The largest request head read from the browser.
const MAX_REQUEST: usize = 16 * 1024;

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The connector id (a catalogue entry, or a name for --issuer).
    connector: String,
    /// Discover the provider from this issuer (OIDC / RFC 8414).
    #[arg(long, conflicts_with = "catalogue")]
    issuer: Option<String>,
    /// A TOML catalogue file (default: the built-in catalogue).
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// The OAuth client id.
    #[arg(long, env = "CONSENTRY_CLIENT_ID")]
    client_id: String,
    #[command(flatten)]
    secret: SecretArg,
    /// A scope to request in addition to the connector's defaults (repeat).
    #[arg(long)]
    scope: Vec<String>,
    /// An extra authorization request parameter, `name=value` (repeat),
    /// e.g. `prompt=consent`.
    #[arg(long = "param")]
    params: Vec<String>,
    /// Seconds to wait for the browser's redirect.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(flatten)]
    user: UserArg,
}

pub(crate) async fn run(g: &Global, args: ConnectArgs) -> CliResult {
    // Fail on configuration before talking to anyone.
    g.keyring()?;
    let db = g.db()?.to_path_buf();
    let user = args.user.user()?;
    let scopes = args
        .scope
        .iter()
        .map(|s| Scope::new(s.as_str()).map_err(|e| Failure::usage(e.to_string())))
        .collect::<CliResult<Vec<_>>>()?;
    let mut params = Vec::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--param `{p}` is not `name=value`")))?;
        params.push((k.to_owned(), v.to_owned()));
    }
    let catalogue = match &args.catalogue {
        Some(p) => Some(
            std::fs::canonicalize(p)
                .map_err(|e| Failure::usage(format!("--catalogue {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let config = ConnectorConfig {
        issuer: args.issuer.clone(),
        catalogue,
        client_id: args.client_id.clone(),
        secret_in_vault: args.secret.client_secret.is_some(),
        params,
    };
    let secret = args.secret.client_secret.clone().map(ClientSecret::new);
    let connector = store::build_connector(&args.connector, &config, secret).await?;

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Failure::other(format!("binding a loopback port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::other(format!("loopback port: {e}")))?
        .port();
    let redirect = Url::parse(&format!("http://127.0.0.1:{port}/callback"))
        .map_err(|e| Failure::other(format!("redirect URI: {e}")))?;
    let integrations = store::integrations(g, vec![connector], Some(redirect)).await?;
    let connector_id = args
        .connector
        .parse()
        .map_err(|e: consentry::Error| Failure::usage(e.to_string()))?;
    let start = integrations
        .begin_connect(&user, &connector_id, &scopes)
        .await?;
    let url = start.authorize_url.to_string();
    if g.json {
        eprintln!("Open this URL in a browser to connect:\n{url}");
    } else {
        println!("Open this URL in a browser to connect:\n{url}");
        let _ = std::io::stdout().flush();
    }
    open_browser(&url);

    let wait = Duration::from_secs(args.timeout);
    let connection = tokio::time::timeout(wait, serve(&listener, port, &integrations, &user))
        .await
        .map_err(|_| {
            Failure::other(format!(
                "no redirect from the browser within {} s",
                args.timeout
            ))
        })??;

    let mut cli = store::load_config(&db)?;
    if let Some(s) = &args.secret.client_secret {
        store::seal_client_secret(&integrations, &args.connector, s).await?;
    }
    cli.connectors.insert(args.connector.clone(), config);
    store::save_config(&db, &cli)?;
    if let Some(log) = integrations.audit() {
        log.flush().await?;
    }
    if g.json {
        print_json(&connection)
    } else {
        println!("connected: {}", store::describe(&connection));
        Ok(())
    }
}

/// Opens `url` with `$BROWSER` or `xdg-open`, only when a display or a
/// browser is configured.
fn open_browser(url: &str) {
    let program = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => b,
        _ if std::env::var_os("DISPLAY").is_some() => "xdg-open".to_owned(),
        _ => return,
    };
    let _ = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Answers requests on the listener until the `/callback` one, and
/// completes the connection with it.
async fn serve(
    listener: &TcpListener,
    port: u16,
    integrations: &consentry::Integrations,
    user: &UserId,
) -> CliResult<consentry::Connection> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| Failure::other(format!("accepting the redirect: {e}")))?;
        let Some(target) = read_target(&mut stream).await else {
            respond(
                &mut stream,
                400,
                "Bad request",
                "This is not a request consentry understands.",
            )
            .await;
            continue;
        };
        if !target.starts_with("/callback") {
            respond(
                &mut stream,
                404,
                "Not found",
                "consentry is waiting for the OAuth redirect.",
            )
            .await;
            continue;
        }
        let callback = Url::parse(&format!("http://127.0.0.1:{port}{target}"))
            .map_err(|e| Failure::other(format!("the redirect is not a URL: {e}")))?;
        return match integrations.complete_connect(user, &callback).await {
            Ok(connection) => {
                respond(
                    &mut stream,
                    200,
                    "Connected",
                    "The account is connected. You can close this window and return to the terminal.",
                )
                .await;
                Ok(connection)
            }
            Err(e) => {
                respond(&mut stream, 400, "Connection failed", &e.to_string()).await;
                Err(e.into())
            }
        };
    }
}

/// The request target of an HTTP/1 `GET`, if the head is one.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET" && target.starts_with('/')).then(|| target.to_owned())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, message: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
