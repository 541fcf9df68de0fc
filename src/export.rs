//! Export of everything held about a user, as JSON, NDJSON or CSV,
//! streamed to an async writer. No secret is ever exported: tokens and
//! keys stay in the vault, stream cursors (provider page and sync tokens)
//! are left out.
//!
//! NDJSON lines and CSV rows carry a `type`: `user`, `connection`,
//! `consent`, `sync_state`, `settings`, `record`, `access`. The JSON form
//! is one object with a member per type (arrays).

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::integrations::Integrations;
use crate::records::HeldRecord;

/// Records read from the store per batch while exporting.
const BATCH: usize = 1000;

/// An export format.
///
/// ```
/// use consentry::export::Format;
/// assert_eq!(Format::Ndjson.content_type(), "application/x-ndjson");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// RFC 4180 CSV: `type,connection,stream,id,kind,purposes,at,data`.
    Csv,
}

impl Format {
    /// The media type to send the export with.
    ///
    /// ```
    /// use consentry::export::Format;
    /// assert_eq!(Format::Json.content_type(), "application/json");
    /// assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// What an export wrote.
///
/// ```
/// use consentry::export::ExportSummary;
/// assert_eq!(ExportSummary::default().records, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExportSummary {
    /// Connections.
    pub connections: u64,
    /// Records.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// One CSV cell: quoted when needed; a leading `= + - @` or tab is
/// prefixed with `'` so spreadsheets do not run it as a formula.
fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

struct Out<'w, W> {
    w: &'w mut W,
    format: Format,
    bytes: u64,
    /// JSON: whether the current array has an element yet.
    first: bool,
}

impl<W: AsyncWrite + Unpin + Send> Out<'_, W> {
    async fn raw(&mut self, s: &str) -> Result<()> {
        self.w
            .write_all(s.as_bytes())
            .await
            .map_err(|e| Error::storage("writing the export", e))?;
        self.bytes += s.len() as u64;
        Ok(())
    }

    /// Starts the JSON array of `kind` (no-op for other formats).
    async fn section(&mut self, kind: &str) -> Result<()> {
        if self.format == Format::Json {
            self.raw(&format!(",\n\"{kind}\": [")).await?;
            self.first = true;
        }
        Ok(())
    }

    async fn end_section(&mut self) -> Result<()> {
        if self.format == Format::Json {
            self.raw("]").await?;
        }
        Ok(())
    }

    /// Writes one item: `json` is its JSON object text; `csv` its CSV
    /// columns after `type`.
    async fn item(&mut self, kind: &str, json: &str, csv: [&str; 6]) -> Result<()> {
        match self.format {
            Format::Json => {
                let sep = if self.first { "\n" } else { ",\n" };
                self.first = false;
                self.raw(&format!("{sep}{json}")).await
            }
            Format::Ndjson => {
                let body = json.strip_prefix('{').unwrap_or(json);
                let line = if body.trim() == "}" {
                    format!("{{\"type\":\"{kind}\"}}\n")
                } else {
                    format!("{{\"type\":\"{kind}\",{body}\n")
                };
                self.raw(&line).await
            }
            Format::Csv => {
                let mut row = csv_cell(kind);
                for c in csv {
                    row.push(',');
                    row.push_str(&csv_cell(c));
                }
                row.push(',');
                row.push_str(&csv_cell(json));
                row.push_str("\r\n");
                self.raw(&row).await
            }
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|_| Error::Internal("export encoding"))
}

fn purposes(r: &HeldRecord) -> String {
    r.purposes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Integrations {
    /// Writes everything held about `user` to `writer`: connections
    /// (account, scopes, status), the consent ledger, stream sync states,
    /// settings, every record with its provenance and purposes, and the
    /// access log. Records are read in batches, so memory stays flat.
    /// No token, key or cursor is written.
    ///
    /// ```
    /// # use consentry::{Integrations, Purpose, UserId};
    /// # use consentry::connection::AccountInfo;
    /// # use consentry::connectors::goodreads::{self, GoodreadsConnector};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = Integrations::builder()
    /// #     .store(consentry::store::MemoryStore::new())
    /// #     .keyring(consentry::vault::Keyring::generate()?)
    /// #     .http(consentry::http::from_fn(|_| async { Ok(consentry::http::Response::new(Vec::new())) }))
    /// #     .connector(GoodreadsConnector::new([Purpose::new("matching")?])?)
    /// #     .redirect_uri("https://app.example/cb".parse().unwrap())
    /// #     .build()?;
    /// # let user = UserId::new("alice")?;
    /// # let matching = Purpose::new("matching")?;
    /// # let conn = integrations.connect_without_oauth(&user, &"goodreads".parse()?, AccountInfo::new("gr-1"), None).await?;
    /// # integrations.grant_consent(&user, &conn.id, &matching).await?;
    /// # let csv = "Book Id,Title,Author,ISBN13,My Rating,Exclusive Shelf,Date Read,Bookshelves\n1,Dune,Frank Herbert,,5,read,2024/01/02,sci-fi\n";
    /// # integrations.import_records(&user, &conn.id, "library", &matching, goodreads::parse_library_export(csv.as_bytes())?).await?;
    /// use consentry::export::Format;
    /// let mut out = Vec::new();
    /// let summary = integrations.export(&user, Format::Ndjson, &mut out).await?;
    /// assert_eq!((summary.connections, summary.records), (1, 1));
    /// for line in String::from_utf8(out).unwrap().lines() {
    ///     let item: serde_json::Value = serde_json::from_str(line).unwrap();
    ///     assert!(item["type"].is_string());
    /// }
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// Storage errors, and [`Error::Storage`] when the writer fails (the
    /// export is then incomplete).
    pub async fn export<W>(
        &self,
        user: &UserId,
        format: Format,
        writer: &mut W,
    ) -> Result<ExportSummary>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let result = self.export_unaudited(user, format, writer).await;
        let mut event = self
            .audit_user("user.exported", user, None)
            .outcome(crate::audit::Outcome::of(&result))
            .detail("format", format!("{format:?}").to_lowercase());
        if let Ok(s) = &result {
            event = event
                .detail("connections", s.connections)
                .detail("records", s.records);
        }
        self.audit_durable(event).await;
        result
    }

    async fn export_unaudited<W>(
        &self,
        user: &UserId,
        format: Format,
        writer: &mut W,
    ) -> Result<ExportSummary>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let store = &self.inner().store;
        let mut out = Out {
            w: writer,
            format,
            bytes: 0,
            first: true,
        };
        let mut summary = ExportSummary::default();
        let now = crate::clock::unix_millis(self.clock_now());
        let head = to_json(&serde_json::json!({"user": user, "exported_at": now}))?;
        match format {
            Format::Json => out.raw(head.trim_end_matches('}')).await?,
            Format::Ndjson => out.item("user", &head, ["", "", "", "", "", ""]).await?,
            Format::Csv => {
                out.raw("type,connection,stream,id,kind,purposes,at,data\r\n")
                    .await?;
                out.item("user", &head, ["", "", "", "", "", ""]).await?;
            }
        }

        let connections = store.list_connections(user).await?;
        out.section("connections").await?;
        for c in &connections {
            let json = to_json(c)?;
            let at = crate::clock::unix_millis(c.created_at).to_string();
            out.item(
                "connection",
                &json,
                [c.id.as_str(), "", "", c.connector.as_str(), "", &at],
            )
            .await?;
            summary.connections += 1;
        }
        out.end_section().await?;

        out.section("consent").await?;
        for e in store.consent_history(user, None).await? {
            let json = to_json(&e)?;
            let at = crate::clock::unix_millis(e.at).to_string();
            let granted = if e.granted { "granted" } else { "revoked" };
            out.item(
                "consent",
                &json,
                [
                    e.connection.as_str(),
                    "",
                    "",
                    granted,
                    e.purpose.as_str(),
                    &at,
                ],
            )
            .await?;
        }
        out.end_section().await?;

        out.section("sync_states").await?;
        for s in store.list_sync_states(user).await? {
            let json = to_json(&s)?;
            out.item(
                "sync_state",
                &json,
                [
                    s.connection.as_str(),
                    &s.stream,
                    "",
                    s.status.as_str(),
                    "",
                    "",
                ],
            )
            .await?;
        }
        out.end_section().await?;

        out.section("settings").await?;
        for c in &connections {
            if let Some(text) = store.get_settings(user, &c.id).await? {
                let json = to_json(
                    &serde_json::json!({"connection": c.id, "settings": serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()}),
                )?;
                out.item("settings", &json, [c.id.as_str(), "", "", "", "", ""])
                    .await?;
            }
        }
        out.end_section().await?;

        out.section("records").await?;
        let mut after = None;
        loop {
            let batch = store.user_records(user, after.clone(), BATCH).await?;
            for r in &batch {
                let json = to_json(r)?;
                let at = crate::clock::unix_millis(r.fetched_at).to_string();
                let row_data = r.data.clone();
                match format {
                    Format::Csv => {
                        let p = purposes(r);
                        let row = [r.connection.as_str(), &r.stream, &r.id, &r.kind, &p, &at];
                        let mut line = csv_cell("record");
                        for c in row {
                            line.push(',');
                            line.push_str(&csv_cell(c));
                        }
                        line.push(',');
                        line.push_str(&csv_cell(&row_data));
                        line.push_str("\r\n");
                        out.raw(&line).await?;
                    }
                    _ => out.item("record", &json, ["", "", "", "", "", ""]).await?,
                }
                summary.records += 1;
            }
            match batch.last() {
                Some(r) if batch.len() == BATCH => {
                    after = Some((r.connection.clone(), r.stream.clone(), r.id.clone()));
                }
                _ => break,
            }
        }
        out.end_section().await?;

        out.section("access_log").await?;
        for e in store.access_log(user).await? {
            let json = to_json(&e)?;
            let at = crate::clock::unix_millis(e.at).to_string();
            out.item(
                "access",
                &json,
                [
                    e.connection.as_str(),
                    &e.stream,
                    "",
                    &e.component,
                    e.purpose.as_str(),
                    &at,
                ],
            )
            .await?;
        }
        out.end_section().await?;
        if format == Format::Json {
            out.raw("\n}\n").await?;
        }
        out.w
            .flush()
            .await
            .map_err(|e| Error::storage("writing the export", e))?;
        summary.bytes = out.bytes;
        Ok(summary)
    }
}
