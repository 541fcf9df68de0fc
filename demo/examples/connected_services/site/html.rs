//! Server-rendered pages. Every value from outside goes through [`esc`];
//! every form carries the CSRF token; no page needs JavaScript.

use std::fmt::Write as _;
use std::time::SystemTime;

use consentry::connection::{Connection, ConnectionStatus};
use consentry::connector::pagination::format_rfc3339;
use consentry::integrations::{
    ConnectionReport, DisconnectReport, RevocationResult, TransparencyReport,
};
use consentry::records::HeldRecord;
use consentry::{ConnectorId, UserId};

/// A connector the page offers.
#[derive(Debug, Clone)]
pub struct Card {
    /// Its id.
    pub id: ConnectorId,
    /// Its display name.
    pub name: String,
    /// The purposes its streams serve.
    pub purposes: Vec<String>,
}

/// HTML-escapes `s` for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-03 14:05:09 UTC`: consentry's RFC 3339 form, spaced for
/// reading.
pub fn when(t: SystemTime) -> String {
    format_rfc3339(t).replacen('T', " ", 1).replace('Z', " UTC")
}

fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

/// The whole document around `main`.
pub fn layout(
    title: &str,
    user: Option<&UserId>,
    csrf: &str,
    flash: Option<&(String, bool)>,
    main: &str,
) -> String {
    let mut header = String::new();
    if let Some(user) = user {
        let _ = write!(
            header,
            r#"<form method="post" action="/sign-out" class="signout">{}<span>Signed in as <strong>{}</strong></span> <button type="submit">Sign out</button></form>"#,
            csrf_field(csrf),
            esc(&user.to_string())
        );
    }
    let flash = flash.map_or_else(String::new, |(text, error)| {
        let (class, role) = if *error {
            ("flash error", "alert")
        } else {
            ("flash", "status")
        };
        format!(r#"<p class="{class}" role="{role}">{}</p>"#, esc(text))
    });
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · consentry demo</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header><a class="brand" href="/">consentry demo</a>{header}</header>
<main id="main">
{flash}
{main}
</main>
<footer><p>Built with <a href="https://docs.rs/consentry">consentry</a>: credentials in an encrypted vault, data used only for the purposes you switch on.</p></footer>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// The sign-in form (a demo: a name, no password).
pub fn sign_in(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!(
            r#"<p class="flash error" role="alert" id="name-error">{}</p>"#,
            esc(e)
        )
    });
    let described = if error.is_empty() {
        ""
    } else {
        r#" aria-describedby="name-error""#
    };
    format!(
        r#"<h1>Sign in</h1>
<p>This demo has no passwords: pick a name to see that user's connected services.</p>
{error}
<form method="post" action="/sign-in">
{csrf}
<label for="name">Your name</label>
<input id="name" name="name" required maxlength="64" autocomplete="username"{described}>
<button type="submit">Sign in</button>
</form>"#,
        csrf = csrf_field(csrf),
    )
}

fn status_text(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Pending => "Pending",
        ConnectionStatus::Active => "Active",
        ConnectionStatus::Refreshing => "Refreshing",
        ConnectionStatus::Degraded => "Degraded: retrying",
        ConnectionStatus::ReauthRequired => "Needs you to reconnect",
        ConnectionStatus::Revoked => "Revoked",
        _ => "Unknown",
    }
}

fn account_line(c: &Connection) -> String {
    let a = &c.account;
    let mut s = esc(a.name.as_deref().unwrap_or(&a.id));
    if let Some(email) = &a.email {
        let _ = write!(s, " &lt;{}&gt;", esc(email));
    }
    s
}

fn health(c: &Connection) -> String {
    let h = &c.health;
    let mut out = String::new();
    match (h.last_refresh_ok, h.last_refresh_failed) {
        (None, None) => out.push_str("Token not refreshed yet"),
        (Some(ok), _) if h.consecutive_failures == 0 => {
            let _ = write!(out, "Last refresh {}", when(ok));
        }
        _ => {
            let _ = write!(
                out,
                "{} refresh failure(s) in a row",
                h.consecutive_failures
            );
            if let Some(e) = &h.last_error {
                let _ = write!(out, ": {}", esc(e));
            }
        }
    }
    if let Some(exp) = c.access_expires_at {
        let _ = write!(out, "; access token valid until {}", when(exp));
    }
    out
}

fn connection_section(r: &ConnectionReport, csrf: &str, held_by_purpose: bool) -> String {
    let c = &r.connection;
    let id = esc(c.id.as_str());
    let name = esc(r.connector_name.as_deref().unwrap_or(c.connector.as_str()));
    let scopes: Vec<String> = c
        .scopes
        .iter()
        .map(|s| format!("<code>{}</code>", esc(s.as_str())))
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<section class="connection" aria-labelledby="h-{id}" data-connection="{id}">
<h3 id="h-{id}">{name}</h3>
<dl>
<dt>Account</dt><dd>{account}</dd>
<dt>Status</dt><dd class="status status-{status_class}">{status}</dd>
<dt>Health</dt><dd>{health}</dd>
<dt>Scopes</dt><dd>{scopes}</dd>
<dt>Connected</dt><dd>{created}</dd>
</dl>
<h4>What it may be used for</h4>
<ul class="purposes">"#,
        account = account_line(c),
        status_class = format!("{:?}", c.status).to_lowercase(),
        status = status_text(c.status),
        health = health(c),
        scopes = if scopes.is_empty() {
            "none".into()
        } else {
            scopes.join(" ")
        },
        created = when(c.created_at),
    );
    for p in &r.purposes {
        let purpose = esc(p.purpose.as_str());
        let (state, action, value) = if p.consented {
            ("On", "Turn off", "off")
        } else {
            ("Off", "Turn on", "on")
        };
        let changed = p.history.last().map_or_else(String::new, |e| {
            format!(r#" <span class="muted">since {}</span>"#, when(e.at))
        });
        let _ = write!(
            s,
            r#"<li><form method="post" action="/connections/{id}/consent">{csrf}<input type="hidden" name="purpose" value="{purpose}"><input type="hidden" name="consent" value="{value}"><span class="purpose">{purpose}</span>: <strong>{state}</strong>{changed} <button type="submit" aria-pressed="{pressed}" aria-label="{action} {purpose} for {name}">{action}</button></form></li>"#,
            csrf = csrf_field(csrf),
            pressed = p.consented,
        );
    }
    s.push_str("</ul>\n<h4>Data held</h4>\n");
    let held: Vec<String> = r
        .streams
        .iter()
        .flat_map(|st| {
            let id = &id;
            st.records_by_purpose.iter().filter(|(_, n)| *n > 0).map(move |(p, n)| {
                let link = if held_by_purpose {
                    format!(
                        r#" <a href="/connections/{id}/records?stream={}&amp;purpose={}">Show records</a>"#,
                        esc(&st.stream),
                        esc(p.as_str())
                    )
                } else {
                    String::new()
                };
                format!(
                    "<li><strong>{n}</strong> record(s) of <code>{}</code> held for <span class=\"purpose\">{}</span>{link}</li>",
                    esc(&st.stream),
                    esc(p.as_str())
                )
            })
        })
        .collect();
    if held.is_empty() {
        s.push_str("<p class=\"muted\">Nothing is held. Data is fetched only for a purpose you turn on.</p>\n");
    } else {
        let _ = writeln!(s, "<ul class=\"held\">{}</ul>", held.concat());
    }
    s.push_str("<h4>Recent accesses</h4>\n");
    if r.access_log.is_empty() {
        s.push_str("<p class=\"muted\">No reads of this data yet.</p>\n");
    } else {
        s.push_str("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">What</th><th scope=\"col\">Why</th></tr></thead><tbody>");
        for a in r.access_log.iter().rev().take(10) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{} record(s) of <code>{}</code></td><td>{}</td></tr>",
                when(a.at),
                esc(&a.component),
                a.count,
                esc(&a.stream),
                esc(a.purpose.as_str())
            );
        }
        s.push_str("</tbody></table>\n");
    }
    let _ = write!(
        s,
        r#"<div class="actions"><form method="post" action="/connections/{id}/sync">{csrf}<button type="submit">Sync now</button></form>
<form method="post" action="/connections/{id}/disconnect">{csrf}<button type="submit" class="danger" aria-label="Disconnect {name}">Disconnect</button></form></div>
</section>
"#,
        csrf = csrf_field(csrf),
    );
    s
}

/// The Connected Services page.
pub fn services(report: &TransparencyReport, cards: &[Card], csrf: &str) -> String {
    let mut s = String::from(
        "<h1>Connected Services</h1>\n<p>Accounts you linked at other services, what each may be used for, what is held and who read it. Turning a purpose off deletes what was held only for it.</p>\n",
    );
    s.push_str("<h2>Add a service</h2>\n<ul class=\"catalogue\">");
    for card in cards {
        let connected = report
            .connections
            .iter()
            .any(|r| r.connection.connector == card.id);
        let label = if connected {
            "Connect another account"
        } else {
            "Connect"
        };
        let purposes = if card.purposes.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"muted\">(can serve: {})</span>",
                card.purposes
                    .iter()
                    .map(|p| esc(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = write!(
            s,
            r#"<li><form method="post" action="/connect">{csrf}<input type="hidden" name="connector" value="{id}"><span class="name">{name}</span>{purposes} <button type="submit" aria-label="{label} {name}">{label}</button></form></li>"#,
            csrf = csrf_field(csrf),
            id = esc(card.id.as_str()),
            name = esc(&card.name),
        );
    }
    s.push_str("</ul>\n<h2>Your connections</h2>\n");
    if report.connections.is_empty() {
        s.push_str("<p class=\"muted\" id=\"no-connections\">No services connected yet.</p>\n");
    }
    for r in &report.connections {
        s.push_str(&connection_section(r, csrf, true));
    }
    s
}

/// The records held for one stream and purpose.
pub fn records(connection: &str, stream: &str, purpose: &str, records: &[HeldRecord]) -> String {
    let mut s = format!(
        "<h1>Records of <code>{}</code> held for {}</h1>\n<p>Showing them to you is itself a read, and appears under Recent accesses.</p>\n<table><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Kind</th><th scope=\"col\">Fetched</th><th scope=\"col\">Data</th></tr></thead><tbody>",
        esc(stream),
        esc(purpose)
    );
    for r in records {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&r.id),
            esc(&r.kind),
            when(r.fetched_at),
            esc(&r.data)
        );
    }
    let _ = write!(
        s,
        "</tbody></table>\n<p><a href=\"/#h-{}\">Back to Connected Services</a></p>\n",
        esc(connection)
    );
    s
}

fn revocation(r: Option<&RevocationResult>) -> String {
    match r {
        None => "none was held".to_owned(),
        Some(RevocationResult::Revoked) => "revoked".to_owned(),
        Some(RevocationResult::Pending) => {
            "the provider could not be reached: queued and retried until it answers".to_owned()
        }
        Some(RevocationResult::Refused { status }) => {
            format!("the provider refused (HTTP {status}); deleted here anyway")
        }
        Some(RevocationResult::Unsupported) => {
            "the provider cannot revoke it; deleted here, valid there until it expires".to_owned()
        }
        Some(other) => esc(&format!("{other:?}; deleted here anyway")),
    }
}

/// What a disconnect did.
pub fn disconnected(name: &str, r: &DisconnectReport) -> String {
    format!(
        r#"<h1>{name} disconnected</h1>
<p>The provider was asked to revoke the tokens, and everything held locally was deleted.</p>
<dl class="report">
<dt>Refresh token at the provider</dt><dd>{refresh}</dd>
<dt>Access token at the provider</dt><dd>{access}</dd>
<dt>Connection deleted</dt><dd>{deleted}</dd>
<dt>Credentials deleted</dt><dd>{creds}</dd>
<dt>Consent entries deleted</dt><dd>{consent}</dd>
<dt>Records deleted</dt><dd>{records}</dd>
<dt>Sync states deleted</dt><dd>{syncs}</dd>
<dt>Access-log entries deleted</dt><dd>{log}</dd>
</dl>
<p><a href="/">Back to Connected Services</a></p>
"#,
        name = esc(name),
        refresh = revocation(r.refresh_token.as_ref()),
        access = revocation(r.access_token.as_ref()),
        deleted = if r.connection_deleted { "yes" } else { "no" },
        creds = r.credentials_deleted,
        consent = r.consent_entries_deleted,
        records = r.records_deleted,
        syncs = r.sync_states_deleted,
        log = r.access_log_entries_deleted,
    )
}

/// A page for an error the user can do something about.
pub fn problem(title: &str, detail: &str) -> String {
    format!(
        "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p><a href=\"/\">Back to Connected Services</a></p>\n",
        esc(title),
        esc(detail)
    )
}

/// The style sheet.
pub const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0b5cad; --bad: #b3261e; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: #f6f8fa; }
header { display: flex; justify-content: space-between; align-items: center; padding: .75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem 2rem; }
footer { max-width: 60rem; margin: 0 auto; padding: 0 1.5rem 2rem; color: var(--muted); font-size: .9rem; }
a { color: var(--accent); }
h1 { margin: .5rem 0; }
h4 { margin: 1rem 0 .25rem; }
ul { padding-left: 0; list-style: none; }
li { margin: .35rem 0; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); border-radius: .4rem; background: var(--accent); color: #fff; cursor: pointer; }
button[aria-pressed="true"] { background: #fff; color: var(--accent); }
button.danger { border-color: var(--bad); background: #fff; color: var(--bad); }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 3px solid #f2a900; outline-offset: 2px; }
input { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: .4rem; }
label { display: block; margin: .5rem 0 .25rem; font-weight: 600; }
.signout { display: flex; gap: .75rem; align-items: center; margin: 0; }
.catalogue li, .connection { background: #fff; border: 1px solid var(--line); border-radius: .6rem; padding: .75rem 1rem; }
.connection { margin: 1rem 0; }
.connection h3 { margin: 0 0 .5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
.status-active { color: var(--ok); font-weight: 600; }
.status-degraded, .status-reauthrequired, .status-revoked { color: var(--bad); font-weight: 600; }
.purpose { font-family: ui-monospace, monospace; }
.muted { color: var(--muted); }
.flash { padding: .5rem .75rem; border-radius: .4rem; background: #dafbe1; border: 1px solid #aceebb; }
.flash.error { background: #ffebe9; border-color: #ffcecb; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td code { word-break: break-all; }
.actions { display: flex; gap: .75rem; margin-top: 1rem; }
.actions form { margin: 0; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn formats_utc_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_306_709);
        assert_eq!(when(t), "2026-12-03 14:05:09 UTC");
        assert_eq!(when(std::time::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
    }
}
