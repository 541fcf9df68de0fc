//! RFC 9457 problem documents.

use serde::Serialize;

/// An RFC 9457 problem document (`application/problem+json`).
///
/// Build one with [`Error::to_problem`](super::Error::to_problem); serialize it with serde.
///
/// ```
/// use consentry::Error;
/// let p = Error::Internal("example").to_problem();
/// assert_eq!(p.status, 500);
/// assert!(!p.detail.contains("example"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// A URI identifying the problem type (serialized as `type`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A human-readable explanation of this occurrence.
    pub detail: String,
    /// Extension members a client acts on: `purpose` for a missing consent,
    /// `missing_scopes`, `retry_after` (seconds), `reason` for a refused
    /// API token or signed link (`expired`, `revoked`, ...).
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}
