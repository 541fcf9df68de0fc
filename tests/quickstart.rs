//! `demo/examples/quickstart.rs` (`cargo run --example quickstart`) runs to the end, offline, in seconds, and says
//! what the README promises. The example's own code is compiled in here,
//! so CI proves the walkthrough works.
#![allow(clippy::unwrap_used)]

#[path = "../demo/examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_walks_through_the_whole_lifecycle() {
    let started = Instant::now();
    let mut lines: Vec<String> = Vec::new();
    let result = quickstart::run(&mut |l| lines.push(l.to_owned())).await;
    let text = lines.join("\n");
    assert!(result.is_ok(), "{result:?}\n{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    for want in [
        "connected conn_",
        "as ada (ada@example.test)",
        "status=Active scopes=[openid email offline_access]",
        "error: no consent for purpose `matching`",
        r#""status":403"#,
        "consented purposes: [\"matching\"]",
        "Ok: 3 pages, 12 records stored",
        "… 12 records in all",
        "access: host read 12 record(s) of items for matching",
        "verified message msg_",
        "delivery log: succeeded",
        "records held now: 0",
        "reading again: no consent",
        "refresh token: Some(Revoked), access token: Some(Revoked)",
        "deleted: connection=true, 3 credentials",
        "connections left: 0",
        "chain intact",
        "Done.",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Every step links to its API docs.
    assert_eq!(
        text.matches("API: https://docs.rs/consentry/latest/consentry/")
            .count(),
        13
    );
}
