//! `consentry`: the command-line tool (feature `cli`).
//!
//! Keyrings, Standard Webhooks signing and verification, and connections
//! (connect through a loopback redirect, list, consent, token, sync,
//! disconnect, export) on an SQLite store. See "The command line" in the README.
//!
//! Errors are one line on stderr (`error: …`) and a non-zero exit code: 2
//! for bad arguments and a missing or invalid keyring or store path, 1 for
//! everything else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "consentry/connect.rs"]
mod connect;
#[path = "consentry/keys.rs"]
mod keys;
#[path = "consentry/store.rs"]
mod store;
#[path = "consentry/webhook.rs"]
mod webhook;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use consentry::vault::Keyring;

/// Connect accounts, keep their tokens in an encrypted vault, and sign and
/// verify webhooks.
#[derive(Debug, Parser)]
#[command(name = "consentry", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// The SQLite database file.
    #[arg(long, global = true, env = "CONSENTRY_DB")]
    pub(crate) db: Option<PathBuf>,
    /// The keyring, `id:key[,id:key...]`, primary first (prefer the
    /// environment variable: command lines are visible to other users).
    #[arg(long, global = true, env = "CONSENTRY_KEYS", hide_env_values = true)]
    pub(crate) keys: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Refresh access tokens that expire within this many seconds.
    #[arg(
        long,
        global = true,
        env = "CONSENTRY_REFRESH_MARGIN",
        default_value_t = 300
    )]
    pub(crate) refresh_margin: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Keyring management: generate, usage, rotate, rewrap, retire.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Standard Webhooks: sign or verify a payload read from stdin.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Connect an account (OAuth 2.0 through a loopback redirect).
    Connect(connect::ConnectArgs),
    /// List a user's connections.
    List(store::UserArg),
    /// Grant or revoke consent for a purpose.
    #[command(subcommand)]
    Consent(store::ConsentCommand),
    /// Print a valid access token, refreshing it if needed.
    Token(store::TokenArgs),
    /// Revoke a connection at the provider and delete it here.
    Disconnect(store::ConnectionArgs),
    /// Fetch a stream now, for a consented purpose.
    Sync(store::SyncArgs),
    /// Export everything held about a user to stdout.
    Export(store::ExportArgs),
}

/// An export format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// CSV.
    Csv,
}

/// A failure: the one line to print and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// A usage or configuration error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Any other failure (exit code 1).
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<consentry::Error> for Failure {
    fn from(e: consentry::Error) -> Self {
        // consentry's messages never carry secrets.
        Self::other(e.to_string())
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

impl Global {
    /// The keyring, or exit code 2 when it is missing or malformed.
    pub(crate) fn keyring(&self) -> CliResult<Keyring> {
        let text = self.keys.as_deref().ok_or_else(|| {
            Failure::usage("no keyring: set CONSENTRY_KEYS or pass --keys (`consentry keys generate` makes one)")
        })?;
        Keyring::parse(text).map_err(|e| Failure::usage(e.to_string()))
    }

    /// The database path, or exit code 2 when it is missing.
    pub(crate) fn db(&self) -> CliResult<&std::path::Path> {
        self.db
            .as_deref()
            .ok_or_else(|| Failure::usage("no database: set CONSENTRY_DB or pass --db"))
    }
}

/// Prints `value` as one pretty JSON document.
pub(crate) fn print_json(value: &impl serde::Serialize) -> CliResult {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::other(format!("encoding JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Whether progress indication should be shown.
pub(crate) fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// One line, whatever the message contained.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let code = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                };
                let _ = e.print();
                return ExitCode::from(code);
            }
            // clap's first line is the error; the rest is usage help.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {} (see --help)", one_line(first));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", one_line(&f.message));
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let g = &cli.global;
    match cli.command {
        Command::Keys(c) => keys::run(g, c).await,
        Command::Webhook(c) => webhook::run(g, c),
        Command::Connect(a) => connect::run(g, a).await,
        Command::List(a) => store::list(g, a).await,
        Command::Consent(c) => store::consent(g, c).await,
        Command::Token(a) => store::token(g, a).await,
        Command::Disconnect(a) => store::disconnect(g, a).await,
        Command::Sync(a) => store::sync(g, a).await,
        Command::Export(a) => store::export(g, a).await,
    }
}
