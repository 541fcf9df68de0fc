//! The commands on the store: list, consent, token, disconnect, export; and
//! the CLI config (`<db>.cli.json`) that remembers how each connector was
//! set up by `connect`, so that `token` and `disconnect` in a later process
//! can rebuild it.
//!
//! The config holds no secret. A client secret given to `connect` is sealed
//! in the vault (user `consentry-cli`, connection = the connector id, kind
//! `client_secret`); `--client-secret` / `CONSENTRY_CLIENT_SECRET` on a
//! later command overrides it.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use consentry::connector::{Catalogue, ClientRegistration, OAuth2Connector};
use consentry::export::Format;
use consentry::http::ReqwestClient;
use consentry::secrecy::{ExposeSecret as _, SecretString};
use consentry::secret::ClientSecret;
use consentry::store::SqliteStore;
use consentry::url::Url;
use consentry::vault::CredentialKind;
use consentry::{Connection, ConnectionId, ConnectorId, Integrations, Purpose, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{CliResult, ExportFormat, Failure, Global, print_json};

/// The vault "user" under which client secrets are sealed.
const CLI_USER: &str = "consentry-cli";

#[derive(Debug, Clone, Args)]
pub(crate) struct UserArg {
    /// The user the connections belong to.
    #[arg(long, env = "CONSENTRY_USER", default_value = "default")]
    pub(crate) user: String,
}

impl UserArg {
    pub(crate) fn user(&self) -> CliResult<UserId> {
        UserId::new(self.user.as_str()).map_err(|e| Failure::usage(e.to_string()))
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArg {
    /// The OAuth client secret (prefer CONSENTRY_CLIENT_SECRET).
    #[arg(long, env = "CONSENTRY_CLIENT_SECRET", hide_env_values = true)]
    pub(crate) client_secret: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// The connection id (see `consentry list`).
    connection: String,
    #[command(flatten)]
    user: UserArg,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsentCommand {
    /// Grant consent to use a connection for a purpose.
    Grant(ConsentArgs),
    /// Revoke it (deletes what was held only for that purpose).
    Revoke(ConsentArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConsentArgs {
    /// The connection id.
    connection: String,
    /// The purpose, e.g. `reminders`.
    purpose: String,
    #[command(flatten)]
    user: UserArg,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The connection id.
    connection: String,
    /// The purpose the token is used for (consent is checked).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    user: UserArg,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The connection id.
    connection: String,
    /// The stream to fetch (declared by the connector).
    stream: String,
    /// The purpose the records are fetched for (consent is checked).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    user: UserArg,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The user to export.
    user: String,
    /// The format.
    #[arg(long, value_enum, default_value = "json")]
    format: ExportFormat,
}

/// How `connect` set up one connector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConnectorConfig {
    /// OIDC / RFC 8414 issuer to discover, if any.
    pub(crate) issuer: Option<String>,
    /// Catalogue file (absolute); neither this nor `issuer`: the built-in
    /// catalogue.
    pub(crate) catalogue: Option<PathBuf>,
    /// The OAuth client id.
    pub(crate) client_id: String,
    /// Whether a client secret is sealed in the vault.
    #[serde(default)]
    pub(crate) secret_in_vault: bool,
    /// Extra authorization request parameters.
    #[serde(default)]
    pub(crate) params: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CliConfig {
    #[serde(default)]
    pub(crate) connectors: BTreeMap<String, ConnectorConfig>,
}

fn config_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".cli.json");
    PathBuf::from(name)
}

pub(crate) fn load_config(db: &Path) -> CliResult<CliConfig> {
    let path = config_path(db);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Failure::other(format!("{} is not valid: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
        Err(e) => Err(Failure::other(format!("reading {}: {e}", path.display()))),
    }
}

pub(crate) fn save_config(db: &Path, config: &CliConfig) -> CliResult {
    let path = config_path(db);
    let text = serde_json::to_string_pretty(config)
        .map_err(|e| Failure::other(format!("encoding the CLI config: {e}")))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Failure::other(format!("writing {}: {e}", path.display())))
}

/// The facade on the store, with `connectors` and a redirect URI (a
/// placeholder unless connecting).
pub(crate) async fn integrations(
    g: &Global,
    connectors: Vec<OAuth2Connector>,
    redirect: Option<Url>,
) -> CliResult<Integrations> {
    let keyring = g.keyring()?;
    let db = g.db()?;
    let store = SqliteStore::open(db).await?;
    let redirect = match redirect {
        Some(r) => r,
        None => Url::parse("http://127.0.0.1/callback")
            .map_err(|e| Failure::other(format!("redirect URI: {e}")))?,
    };
    let mut builder = Integrations::builder()
        .store(store)
        .keyring(keyring)
        .redirect_uri(redirect)
        .refresh_margin(Duration::from_secs(g.refresh_margin));
    for c in connectors {
        builder = builder.connector(c);
    }
    Ok(builder.build()?)
}

fn cli_vault_ids(connector: &str) -> CliResult<(UserId, ConnectionId)> {
    Ok((UserId::new(CLI_USER)?, ConnectionId::new(connector)?))
}

/// Seals a client secret in the vault.
pub(crate) async fn seal_client_secret(
    integrations: &Integrations,
    connector: &str,
    secret: &str,
) -> CliResult {
    let (user, conn) = cli_vault_ids(connector)?;
    integrations
        .vault()
        .put(
            &user,
            &conn,
            CredentialKind::ClientSecret,
            SecretString::from(secret.to_owned()),
        )
        .await?;
    Ok(())
}

/// Builds the connector `id` as `connect` configured it.
pub(crate) async fn build_connector(
    id: &str,
    config: &ConnectorConfig,
    secret: Option<ClientSecret>,
) -> CliResult<OAuth2Connector> {
    let connector_id: ConnectorId = id
        .parse()
        .map_err(|e: consentry::Error| Failure::usage(e.to_string()))?;
    let connector = if let Some(issuer) = &config.issuer {
        let issuer = Url::parse(issuer)
            .map_err(|e| Failure::usage(format!("--issuer is not a URL: {e}")))?;
        let http = ReqwestClient::new()?;
        OAuth2Connector::discover(
            connector_id,
            &issuer,
            config.client_id.clone(),
            secret,
            &http,
        )
        .await?
    } else {
        let catalogue = match &config.catalogue {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(format!("reading {}: {e}", path.display())))?;
                Catalogue::from_toml(&text)?
            }
            None => Catalogue::builtin()?,
        };
        let mut registration = ClientRegistration::new(config.client_id.clone());
        if let Some(s) = secret {
            registration = registration.with_secret(s);
        }
        catalogue.connector(id, registration)?
    };
    if config.params.is_empty() {
        return Ok(connector);
    }
    let mut builder = connector.into_builder();
    for (k, v) in &config.params {
        builder = builder.authorization_param(k.clone(), v.clone());
    }
    Ok(builder.build()?)
}

/// The facade with the connector of `user`'s `connection`, and that
/// connection.
async fn with_connector(
    g: &Global,
    user: &UserId,
    connection: &ConnectionId,
    secret: &SecretArg,
) -> CliResult<(Integrations, Connection)> {
    let base = integrations(g, Vec::new(), None).await?;
    let conn = base.connection(user, connection).await?;
    let config = load_config(g.db()?)?;
    let id = conn.connector.as_str();
    let Some(entry) = config.connectors.get(id) else {
        return Err(Failure::other(format!(
            "connector `{id}` is not configured here: run `consentry connect {id}` first"
        )));
    };
    let secret = match &secret.client_secret {
        Some(s) => Some(ClientSecret::new(s.clone())),
        None if entry.secret_in_vault => {
            let (u, c) = cli_vault_ids(id)?;
            let sealed = base
                .vault()
                .get(&u, &c, CredentialKind::ClientSecret)
                .await?;
            Some(ClientSecret::new(sealed.value.expose_secret().to_owned()))
        }
        None => None,
    };
    let connector = build_connector(id, entry, secret).await?;
    Ok((integrations(g, vec![connector], None).await?, conn))
}

fn connection_id(s: &str) -> CliResult<ConnectionId> {
    ConnectionId::new(s).map_err(|e| Failure::usage(e.to_string()))
}

fn purpose(s: &str) -> CliResult<Purpose> {
    Purpose::new(s).map_err(|e| Failure::usage(e.to_string()))
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn flush(integrations: &Integrations) -> CliResult {
    if let Some(log) = integrations.audit() {
        log.flush().await?;
    }
    Ok(())
}

/// A connection, as text.
pub(crate) fn describe(c: &Connection) -> String {
    let account = c.account.email.as_deref().unwrap_or(&c.account.id);
    let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
    let expires = c
        .access_expires_at
        .map(|t| format!(", token expires at {}", unix(t)))
        .unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}\tscopes: {}{}",
        c.id,
        c.connector,
        account,
        c.status.as_str(),
        scopes.join(" "),
        expires
    )
}

pub(crate) async fn list(g: &Global, user: UserArg) -> CliResult {
    let user = user.user()?;
    let integrations = integrations(g, Vec::new(), None).await?;
    let connections = integrations.connections(&user).await?;
    if g.json {
        return print_json(&connections);
    }
    if connections.is_empty() {
        println!("no connections for {user}");
    }
    for c in &connections {
        println!("{}", describe(c));
    }
    Ok(())
}

pub(crate) async fn consent(g: &Global, command: ConsentCommand) -> CliResult {
    let (args, grant) = match command {
        ConsentCommand::Grant(a) => (a, true),
        ConsentCommand::Revoke(a) => (a, false),
    };
    let user = args.user.user()?;
    let conn = connection_id(&args.connection)?;
    let purpose = purpose(&args.purpose)?;
    let integrations = integrations(g, Vec::new(), None).await?;
    if grant {
        integrations.grant_consent(&user, &conn, &purpose).await?;
    } else {
        integrations.revoke_consent(&user, &conn, &purpose).await?;
    }
    flush(&integrations).await?;
    let verb = if grant { "granted" } else { "revoked" };
    if g.json {
        print_json(
            &json!({"connection": conn.as_str(), "purpose": purpose.as_str(), "consent": verb}),
        )
    } else {
        println!("consent {verb}: {conn} for {purpose}");
        Ok(())
    }
}

pub(crate) async fn token(g: &Global, args: TokenArgs) -> CliResult {
    let user = args.user.user()?;
    let conn = connection_id(&args.connection)?;
    let purpose = purpose(&args.purpose)?;
    let (integrations, _) = with_connector(g, &user, &conn, &args.secret).await?;
    let token = integrations.access_token(&user, &conn, &purpose).await?;
    flush(&integrations).await?;
    if g.json {
        let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        print_json(&json!({
            "access_token": token.secret.expose_secret(),
            "expires_at": token.expires_at.map(unix),
            "scopes": scopes,
        }))
    } else {
        println!("{}", token.secret.expose_secret());
        Ok(())
    }
}

pub(crate) async fn sync(g: &Global, args: SyncArgs) -> CliResult {
    let user = args.user.user()?;
    let conn = connection_id(&args.connection)?;
    let purpose = purpose(&args.purpose)?;
    let (integrations, _) = with_connector(g, &user, &conn, &args.secret).await?;
    // The run reports its pages only at the end: a spinner with the time
    // on a terminal, nothing when piped.
    let bar = crate::interactive().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} syncing {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{} for {purpose}", args.stream));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let result = integrations
        .sync_now(&user, &conn, &args.stream, &purpose)
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    flush(&integrations).await?;
    if g.json {
        return print_json(&report);
    }
    println!(
        "{:?}: {} pages, {} records stored, {} deleted",
        report.status, report.pages, report.upserted, report.deleted
    );
    Ok(())
}

pub(crate) async fn disconnect(g: &Global, args: ConnectionArgs) -> CliResult {
    let user = args.user.user()?;
    let conn = connection_id(&args.connection)?;
    let (integrations, _) = with_connector(g, &user, &conn, &args.secret).await?;
    let report = integrations.disconnect(&user, &conn).await?;
    flush(&integrations).await?;
    if g.json {
        return print_json(&report);
    }
    let value = serde_json::to_value(&report)
        .map_err(|e| Failure::other(format!("encoding the report: {e}")))?;
    if let Value::Object(map) = value {
        for (k, v) in map {
            let v = match v {
                Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_owned))
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::String(s) => s,
                Value::Null => "none".to_owned(),
                other => other.to_string(),
            };
            println!("{k}: {v}");
        }
    }
    Ok(())
}

pub(crate) async fn export(g: &Global, args: ExportArgs) -> CliResult {
    let user = UserId::new(args.user.as_str()).map_err(|e| Failure::usage(e.to_string()))?;
    let format = match args.format {
        ExportFormat::Json => Format::Json,
        ExportFormat::Ndjson => Format::Ndjson,
        ExportFormat::Csv => Format::Csv,
    };
    let integrations = integrations(g, Vec::new(), None).await?;
    // The export goes to stdout, usually redirected to a file: the
    // progress (bytes written) goes to stderr when that is a terminal.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} exporting {msg}: {binary_bytes} written ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(user.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let mut out = Counting {
        inner: tokio::io::stdout(),
        bar: bar.clone(),
    };
    let result = integrations.export(&user, format, &mut out).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result?;
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(|e| Failure::other(format!("writing the export: {e}")))?;
    flush(&integrations).await
}

/// A writer that advances a progress bar by the bytes written through it.
struct Counting<W> {
    inner: W,
    bar: Option<indicatif::ProgressBar>,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counting<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let (std::task::Poll::Ready(Ok(n)), Some(bar)) = (&polled, &self.bar) {
            bar.inc(*n as u64);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
