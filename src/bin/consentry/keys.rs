//! `consentry keys …`: generate, usage, rotate, rewrap, retire.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Subcommand;
use consentry::secrecy::ExposeSecret as _;
use consentry::vault::{KeyId, Keyring};
use serde_json::json;

use crate::{CliResult, Failure, Global, interactive, print_json};

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new keyring (one fresh key, `k1`).
    Generate,
    /// Data keys wrapped under each key id.
    Usage,
    /// Print the keyring with a new primary key prepended; set
    /// CONSENTRY_KEYS to it, then run `keys rewrap`.
    Rotate,
    /// Re-wrap every data key under the primary key.
    Rewrap,
    /// Retire a key nothing uses any more; prints the keyring without it.
    Retire {
        /// The key id, e.g. `k1`.
        id: String,
    },
}

pub(crate) async fn run(g: &Global, command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Generate => print_keyring(g, &Keyring::generate()?),
        KeysCommand::Rotate => print_keyring(g, &g.keyring()?.rotated()?),
        KeysCommand::Usage => usage(g).await,
        KeysCommand::Rewrap => rewrap(g).await,
        KeysCommand::Retire { id } => retire(g, &id).await,
    }
}

fn print_keyring(g: &Global, ring: &Keyring) -> CliResult {
    let text = ring.export();
    if g.json {
        print_json(&json!({
            "keyring": text.expose_secret(),
            "primary": ring.primary().as_str(),
        }))
    } else {
        println!("{}", text.expose_secret());
        Ok(())
    }
}

async fn usage(g: &Global) -> CliResult {
    let integrations = crate::store::integrations(g, Vec::new(), None).await?;
    let ring = integrations.vault().keyring();
    let used = integrations.vault().key_usage().await?;
    let mut all: BTreeMap<String, (u64, bool, bool)> = BTreeMap::new();
    for id in ring.ids() {
        all.insert(id.as_str().to_owned(), (0, true, id == ring.primary()));
    }
    for (id, n) in &used {
        all.entry(id.as_str().to_owned())
            .or_insert((0, false, false))
            .0 = *n;
    }
    if g.json {
        let keys: Vec<_> = all
            .iter()
            .map(|(id, (n, known, primary))| {
                json!({"id": id, "data_keys": n, "in_keyring": known, "primary": primary})
            })
            .collect();
        return print_json(&json!({ "keys": keys }));
    }
    for (id, (n, known, primary)) in &all {
        let note = match (primary, known) {
            (true, _) => "  (primary)",
            (false, false) => "  (not in the keyring!)",
            _ => "",
        };
        println!("{id}\t{n}{note}");
    }
    Ok(())
}

async fn rewrap(g: &Global) -> CliResult {
    let integrations = crate::store::integrations(g, Vec::new(), None).await?;
    let bar = if interactive() {
        // The total: data keys under any key but the primary.
        let primary = integrations.vault().keyring().primary().clone();
        let total: u64 = integrations
            .vault()
            .key_usage()
            .await?
            .iter()
            .filter(|(id, _)| **id != primary)
            .map(|(_, n)| *n)
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "re-wrapping data keys {bar:30} {pos}/{len} ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    let result = integrations
        .rewrap_with_progress(|so_far| {
            if let Some(bar) = &bar {
                bar.set_position(so_far.processed());
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    if let Some(log) = integrations.audit() {
        log.flush().await?;
    }
    let missing: BTreeMap<&str, u64> = report
        .missing_keys
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    if g.json {
        print_json(&json!({
            "rewrapped": report.rewrapped,
            "skipped": report.skipped,
            "failed": report.failed,
            "missing_keys": missing,
            "complete": report.is_complete(),
        }))?;
    } else {
        println!(
            "rewrapped {}, skipped {}, failed {}",
            report.rewrapped, report.skipped, report.failed
        );
        for (k, n) in &missing {
            println!("{n} data keys under {k}, which the keyring lacks");
        }
    }
    if report.is_complete() {
        Ok(())
    } else {
        Err(Failure::other(
            "rewrap incomplete: some data keys are under missing keys or failed to authenticate",
        ))
    }
}

async fn retire(g: &Global, id: &str) -> CliResult {
    let id = KeyId::new(id).map_err(|e| Failure::usage(e.to_string()))?;
    let integrations = crate::store::integrations(g, Vec::new(), None).await?;
    integrations.retire_key(&id).await?;
    if let Some(log) = integrations.audit() {
        log.flush().await?;
    }
    let ring = integrations.vault().keyring();
    print_keyring(g, &ring)
}
