//! The crate's one error type, its [`ErrorKind`], and RFC 9457 problem documents.
//!
//! Every fallible call in consentry returns [`Result<T>`]. Variants carry what a
//! caller acts on (which key is missing, which migration was edited, which input
//! was malformed and why); [`Error::kind`] gives a small `Copy` classification to
//! branch on; [`Error::to_problem`] gives a document a host can return to its own
//! clients as `application/problem+json` without leaking internals or secrets.
//!
//! Messages are lowercase and never repeat their `source()`, so error reporters
//! that walk the chain print each cause once.

use std::fmt;

use serde::Serialize;

use crate::vault::KeyId;
use crate::webhook::WebhookError;

/// `Result` with consentry's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend (SQLite, an HTTP client, a host's own store).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in consentry.
///
/// Match on [`Error::kind`] for coarse handling and on the variants for
/// details. New variants may be added in minor releases.
///
/// ```
/// use consentry::{Error, ErrorKind, UserId};
///
/// let err = UserId::new("bad\nid").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert!(matches!(err, Error::InvalidInput { what: "user id", .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument was malformed: an id with control characters, a keyring
    /// string with a bad key, an envelope that is not one. Fix the input; do
    /// not retry.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was being parsed or validated (`"user id"`, `"keyring"`, ...).
        what: &'static str,
        /// Why it was refused. Never contains secret material.
        reason: String,
    },

    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up (`"credential"`, `"data key"`, ...).
        what: &'static str,
    },

    /// A compare-and-swap lost: somebody else changed the value first. Read
    /// the current value and try again.
    #[error("{what} was changed concurrently (expected version {expected}, found {found})")]
    Conflict {
        /// What was being written.
        what: &'static str,
        /// The version the caller expected (0 = absent).
        expected: u64,
        /// The version actually stored (0 = absent).
        found: u64,
    },

    /// A ciphertext could not be opened: it was tampered with, truncated,
    /// moved to another row, or sealed under a different key.
    #[error("could not decrypt {what}: {reason}")]
    Decrypt {
        /// What was being decrypted (`"credential"`, `"data key"`).
        what: &'static str,
        /// Which check failed.
        reason: DecryptFailure,
    },

    /// Data is sealed under a key that the keyring does not hold. Add the key
    /// back to the keyring (or restore it from where it was kept).
    #[error("key `{key_id}` is not in the keyring; add it back to decrypt data sealed under it")]
    KeyNotFound {
        /// The missing key's id, as read from the envelope.
        key_id: KeyId,
    },

    /// A key cannot be retired because data keys are still wrapped under it.
    /// Run [`Vault::rewrap`](crate::vault::Vault::rewrap) first.
    #[error("key `{key_id}` still wraps {data_keys} data key(s); run rewrap before retiring it")]
    KeyInUse {
        /// The key that was to be retired.
        key_id: KeyId,
        /// How many data keys are still wrapped under it.
        data_keys: u64,
    },

    /// The primary key cannot be retired: new data keys are wrapped with it.
    /// Make another key primary first.
    #[error("key `{key_id}` is the primary key; make another key primary before retiring it")]
    PrimaryKey {
        /// The primary key's id.
        key_id: KeyId,
    },

    /// The database schema does not match this build.
    #[error(transparent)]
    Migration(#[from] MigrationError),

    /// A webhook failed verification (kind [`ErrorKind::Unauthorized`]), or
    /// a webhook secret or message to sign was refused (kind
    /// [`ErrorKind::InvalidInput`]).
    #[error(transparent)]
    Webhook(#[from] WebhookError),

    /// The store failed (I/O, SQLite, a host backend). Usually transient;
    /// retry with backoff.
    #[error("storage failed: {message}")]
    Storage {
        /// What the store was doing.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,

    /// A bug in consentry: an invariant did not hold. Please file an issue
    /// with the message.
    #[error("internal error: {0}; please file a bug")]
    Internal(&'static str),
}

/// Which check failed when opening a ciphertext.
///
/// ```
/// use consentry::error::DecryptFailure;
/// assert_eq!(DecryptFailure::Authentication.to_string(), "authentication failed (tampered, moved to another row, or wrong key)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptFailure {
    /// The bytes are not an envelope of a format this build knows.
    Malformed,
    /// The envelope names a different data key than the one stored for its
    /// owner (the owner's data key was replaced or erased).
    KeyMismatch,
    /// The key-commitment tag does not match the key.
    Commitment,
    /// The AEAD tag did not verify: the ciphertext, its header or its
    /// location (user, connection, kind) changed.
    Authentication,
    /// The plaintext is not UTF-8 text.
    NotText,
}

impl fmt::Display for DecryptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Malformed => "not a valid envelope",
            Self::KeyMismatch => "sealed under a data key that is no longer stored for its owner",
            Self::Commitment => "key commitment does not match",
            Self::Authentication => {
                "authentication failed (tampered, moved to another row, or wrong key)"
            }
            Self::NotText => "plaintext is not UTF-8",
        })
    }
}

/// The database schema and this build disagree.
///
/// ```
/// use consentry::error::MigrationError;
/// let e = MigrationError::Modified { version: 1, name: "init".into() };
/// assert!(e.to_string().contains("was edited after it was applied"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// A migration that was already applied to this database has a different
    /// checksum in this build: a shipped migration was edited. Restore the
    /// original file and add a new migration instead.
    #[error(
        "migration {version} ({name}) was edited after it was applied to this database; restore it and add a new migration"
    )]
    Modified {
        /// The migration's version.
        version: u32,
        /// The migration's name.
        name: String,
    },
    /// The database was migrated by a newer build of consentry.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade consentry"
    )]
    TooNew {
        /// The newest version recorded in the database.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
}

/// A coarse, `Copy` classification of an [`Error`].
///
/// ```
/// use consentry::ErrorKind;
/// assert_eq!(ErrorKind::NotFound.http_status(), 404);
/// assert!(ErrorKind::Storage.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input; do not retry.
    InvalidInput,
    /// Does not exist.
    NotFound,
    /// Lost a compare-and-swap; re-read and retry.
    Conflict,
    /// A ciphertext failed to open.
    Crypto,
    /// A key needed for the operation is not available, or its state forbids
    /// the operation.
    Key,
    /// Schema mismatch.
    Migration,
    /// The store failed; usually transient.
    Storage,
    /// A request's credentials did not check out: a webhook signature that
    /// does not verify, a stale timestamp. Do not process the request.
    Unauthorized,
    /// A consentry bug.
    Internal,
}

impl ErrorKind {
    /// The HTTP status a host would typically answer with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidInput => 400,
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Storage => 503,
            Self::Crypto | Self::Key | Self::Migration | Self::Internal => 500,
        }
    }

    /// Whether retrying the same call later can succeed without changing
    /// anything (storage hiccups, lost compare-and-swap after a re-read).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Storage | Self::Conflict)
    }

    /// A stable, lowercase, dash-separated name (`"not-found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid-input",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::Crypto => "crypto",
            Self::Key => "key",
            Self::Migration => "migration",
            Self::Storage => "storage",
            Self::Unauthorized => "unauthorized",
            Self::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::InvalidInput => "Invalid input",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::Crypto => "Decryption failed",
            Self::Key => "Key unavailable",
            Self::Migration => "Schema mismatch",
            Self::Storage => "Storage unavailable",
            Self::Unauthorized => "Unauthorized",
            Self::Internal => "Internal error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Error {
    /// The coarse classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Decrypt { .. } => ErrorKind::Crypto,
            Self::KeyNotFound { .. } | Self::KeyInUse { .. } | Self::PrimaryKey { .. } => {
                ErrorKind::Key
            }
            Self::Migration(_) => ErrorKind::Migration,
            Self::Webhook(e) => e.kind(),
            Self::Storage { .. } => ErrorKind::Storage,
            Self::Random | Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// An RFC 9457 problem document describing this error, safe to return to
    /// a host's own clients.
    ///
    /// Client errors (4xx) carry this error's message as `detail`. Server
    /// errors (5xx) carry a generic `detail`: key ids, SQL and backend
    /// messages stay in the host's logs. No variant ever holds secret
    /// material, so neither form can leak one.
    ///
    /// ```
    /// use consentry::Error;
    ///
    /// let p = Error::NotFound { what: "credential" }.to_problem();
    /// assert_eq!(p.status, 404);
    /// assert_eq!(p.detail, "credential not found");
    /// let json = serde_json::to_value(&p).unwrap();
    /// assert_eq!(json["type"], "https://docs.rs/consentry/latest/consentry/enum.ErrorKind.html#variant.NotFound");
    /// ```
    pub fn to_problem(&self) -> Problem {
        let kind = self.kind();
        let status = kind.http_status();
        let detail = if status < 500 {
            self.to_string()
        } else {
            "the server could not complete this request; the cause has been logged".to_owned()
        };
        Problem {
            type_uri: format!(
                "https://docs.rs/consentry/latest/consentry/enum.ErrorKind.html#variant.{kind:?}"
            ),
            title: kind.title().to_owned(),
            status,
            detail,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            what,
            reason: reason.into(),
        }
    }

    /// An [`Error::Storage`] with a source: what a custom
    /// [`Store`](crate::store::Store) returns when its backend fails.
    ///
    /// ```
    /// use consentry::{Error, ErrorKind};
    /// let e = Error::storage("reading a credential", std::io::Error::other("disk gone"));
    /// assert_eq!(e.kind(), ErrorKind::Storage);
    /// assert_eq!(e.to_string(), "storage failed: reading a credential");
    /// ```
    pub fn storage(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// An RFC 9457 problem document (`application/problem+json`).
///
/// Build one with [`Error::to_problem`]; serialize it with serde.
///
/// ```
/// use consentry::Error;
/// let p = Error::Internal("example").to_problem();
/// assert_eq!(p.status, 500);
/// assert!(!p.detail.contains("example"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_do_not_leak_details() {
        let err = Error::storage(
            "reading credential row 42",
            std::io::Error::other("disk /x"),
        );
        let p = err.to_problem();
        assert_eq!(p.status, 503);
        assert!(!p.detail.contains("42") && !p.detail.contains("disk"));
        assert!(err.to_string().contains("reading credential row 42"));
        assert!(
            !err.to_string().contains("disk /x"),
            "message must not repeat the source"
        );
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let kinds = [
            ErrorKind::InvalidInput,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Crypto,
            ErrorKind::Key,
            ErrorKind::Migration,
            ErrorKind::Storage,
            ErrorKind::Unauthorized,
            ErrorKind::Internal,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), kinds.len());
        let titles: std::collections::HashSet<_> = kinds.iter().map(|k| k.title()).collect();
        assert_eq!(titles.len(), kinds.len());
    }

    #[test]
    fn webhook_errors_map_to_401_or_400() {
        let failed = Error::from(WebhookError::NoMatchingSignature);
        assert_eq!(failed.kind(), ErrorKind::Unauthorized);
        let p = failed.to_problem();
        assert_eq!((p.status, p.title.as_str()), (401, "Unauthorized"));
        assert_eq!(p.detail, "no signature matches");
        assert!(!failed.kind().is_retryable());

        let bad = Error::from(WebhookError::InvalidSecret { reason: "empty" });
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
        assert_eq!(bad.to_problem().status, 400);
    }
}
