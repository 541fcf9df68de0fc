//! `consentry webhook sign|verify`: Standard Webhooks, payload on stdin.

use std::io::Read as _;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use consentry::webhook::{WebhookSecret, standard};
use serde_json::json;

use crate::{CliResult, Failure, Global, print_json};

/// The largest payload read from stdin.
const MAX_PAYLOAD: u64 = 16 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Sign the payload read from stdin; prints the three headers.
    Sign {
        /// The secret, `whsec_…` (prefer CONSENTRY_WEBHOOK_SECRET).
        #[arg(long, env = "CONSENTRY_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The message id, e.g. `msg_1`.
        #[arg(long)]
        id: String,
        /// Unix seconds (default: now).
        #[arg(long)]
        timestamp: Option<u64>,
    },
    /// Verify the payload read from stdin against the headers; exit 0
    /// when valid.
    Verify {
        /// A secret, `whsec_…`; repeat during a rotation.
        #[arg(
            long,
            env = "CONSENTRY_WEBHOOK_SECRET",
            hide_env_values = true,
            required = true,
            value_delimiter = ' '
        )]
        secret: Vec<String>,
        /// A header, `name: value` (repeat for id, timestamp, signature).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
}

fn secret(text: &str) -> CliResult<WebhookSecret> {
    WebhookSecret::parse(text.trim()).map_err(|e| Failure::usage(e.to_string()))
}

fn read_stdin() -> CliResult<Vec<u8>> {
    let mut payload = Vec::new();
    std::io::stdin()
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut payload)
        .map_err(|e| Failure::other(format!("reading the payload from stdin: {e}")))?;
    if payload.len() as u64 > MAX_PAYLOAD {
        return Err(Failure::other("the payload is larger than 16 MiB"));
    }
    Ok(payload)
}

pub(crate) fn run(g: &Global, command: WebhookCommand) -> CliResult {
    match command {
        WebhookCommand::Sign {
            secret: text,
            id,
            timestamp,
        } => {
            let key = secret(&text)?;
            let timestamp = match timestamp {
                Some(t) => t,
                None => SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| Failure::other("the system clock is before 1970"))?
                    .as_secs(),
            };
            let payload = read_stdin()?;
            let signed = standard::sign(&key, &id, timestamp, &payload)?;
            if g.json {
                let map: serde_json::Map<String, serde_json::Value> = signed
                    .iter()
                    .map(|(n, v)| (n.to_owned(), json!(v)))
                    .collect();
                return print_json(&map);
            }
            for (name, value) in signed.iter() {
                println!("{name}: {value}");
            }
            Ok(())
        }
        WebhookCommand::Verify {
            secret: texts,
            headers,
        } => {
            let keys = texts
                .iter()
                .filter(|t| !t.trim().is_empty())
                .map(|t| secret(t))
                .collect::<CliResult<Vec<_>>>()?;
            let mut pairs = Vec::with_capacity(headers.len());
            for h in &headers {
                let (name, value) = h.split_once(':').ok_or_else(|| {
                    Failure::usage(format!("--header `{}` is not `name: value`", name_of(h)))
                })?;
                pairs.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let payload = read_stdin()?;
            standard::verify(&keys, &pairs, &payload, SystemTime::now())?;
            if g.json {
                print_json(&json!({ "valid": true }))
            } else {
                println!("valid");
                Ok(())
            }
        }
    }
}

/// The part of a malformed header argument that is safe to echo.
fn name_of(h: &str) -> String {
    h.chars().take(40).collect()
}
