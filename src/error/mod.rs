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

mod kind;
mod problem;

pub use kind::ErrorKind;
pub use problem::Problem;

use crate::http::HttpError;
use crate::oauth::{CallbackError, OAuthErrorCode};
use crate::vault::KeyId;
use crate::webhook::WebhookError;

/// `Result` with consentry's [`Error`] as the default error type.
///
/// ```
/// use consentry::{Result, UserId};
/// fn parse_user(s: &str) -> Result<UserId> {
///     s.parse()
/// }
/// assert_eq!(parse_user("acme/bob")?.tenant(), Some("acme"));
/// assert!(parse_user("").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend (SQLite, an HTTP client, a host's own store).
///
/// It is the `source` of [`Error::Storage`]; anything that converts into it
/// can be passed to [`Error::storage`].
///
/// ```
/// use std::error::Error as _;
/// use consentry::error::BoxError;
/// let backend: BoxError = std::io::Error::other("disk gone").into();
/// let err = consentry::Error::storage("reading a credential", backend);
/// assert_eq!(err.source().unwrap().to_string(), "disk gone");
/// ```
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

    /// The provider answered an OAuth request with an OAuth error: in the
    /// authorization callback (`error=access_denied`), from the token
    /// endpoint (`invalid_grant`), or from the revocation endpoint.
    ///
    /// [`Error::is_invalid_grant`] tells the case a refresh must re-check:
    /// another process may have rotated the refresh token first.
    #[error(
        "the provider refused the request ({error}){}",
        DescriptionSuffix(description)
    )]
    OAuth {
        /// The OAuth error code.
        error: OAuthErrorCode,
        /// The provider's `error_description`: untrusted text, with control
        /// characters removed and at most
        /// [`MAX_DESCRIPTION_CHARS`](crate::oauth::MAX_DESCRIPTION_CHARS)
        /// characters kept.
        description: Option<String>,
    },

    /// An authorization callback was refused before any token was
    /// requested: wrong redirect URI, missing or unknown `state`, `iss`
    /// mismatch (RFC 9207), repeated parameters.
    #[error(transparent)]
    Callback(#[from] CallbackError),

    /// An HTTP request could not be completed (no response at all). See
    /// [`HttpError::kind`] and [`HttpError::is_retryable`].
    #[error("an HTTP request to the provider failed")]
    Http(#[from] HttpError),

    /// Authorization server metadata (RFC 8414 / OpenID Connect discovery)
    /// could not be fetched or was refused.
    #[error("discovery for issuer `{issuer}` failed: {reason}")]
    Discovery {
        /// The issuer discovery was run for.
        issuer: String,
        /// Why it failed. Never contains secret material.
        reason: String,
    },

    /// A provider's response could not be used: not JSON, a required field
    /// missing or of the wrong type, a body over the size limit.
    #[error("invalid {what} from the provider: {reason}")]
    InvalidResponse {
        /// Which response (`"token response"`, `"userinfo response"`, ...).
        what: &'static str,
        /// What is wrong with it. Never contains a token or other response
        /// content.
        reason: String,
    },

    /// A provider endpoint answered with an HTTP status that carries no
    /// usable OAuth error.
    #[error("{what} answered with HTTP status {status}")]
    UpstreamStatus {
        /// Which endpoint (`"token endpoint"`, `"userinfo endpoint"`, ...).
        what: &'static str,
        /// The HTTP status code.
        status: u16,
    },

    /// The user has not consented to this purpose for this connection (or
    /// revoked it). Ask them; do not retry.
    #[error("no consent for purpose `{purpose}` on this connection")]
    ConsentRequired {
        /// The purpose that lacks consent.
        purpose: crate::ids::Purpose,
    },

    /// The connection was granted fewer scopes than the call needs (connect
    /// again asking for the missing ones), or an API token lacks a scope
    /// the request needs.
    #[error("missing required scope(s): {}", ScopeList(missing))]
    InsufficientScope {
        /// The required scopes the provider did not grant.
        missing: Vec<crate::ids::Scope>,
    },

    /// The connection's grant is dead (revoked by the user or the provider,
    /// expired, or `invalid_grant` on refresh): the user must connect again.
    /// consentry never retries this on its own.
    #[error("connection `{connection}` must be connected again by its user")]
    ReauthRequired {
        /// The connection.
        connection: crate::ids::ConnectionId,
    },

    /// The provider is rate limiting or failing and the connection is
    /// backing off; no valid token is at hand. Retry after `retry_after`.
    #[error(
        "the provider is unavailable for this connection{}",
        RetryAfter(retry_after)
    )]
    RateLimited {
        /// How long to wait, when known.
        retry_after: Option<std::time::Duration>,
    },

    /// A provider failed repeatedly and its circuit is open: requests to it
    /// pause (its syncs report `Degraded`) until `retry_after` has passed;
    /// other providers keep working.
    #[error(
        "provider `{connector}` is unavailable (circuit open){}",
        RetryAfter(retry_after)
    )]
    ProviderUnavailable {
        /// The provider's connector.
        connector: crate::ids::ConnectorId,
        /// When the circuit lets a trial request through again.
        retry_after: Option<std::time::Duration>,
    },

    /// Connection settings were refused; each entry names a field and why.
    #[error("invalid settings: {}", FieldErrors(errors))]
    InvalidSettings {
        /// The field-level errors.
        errors: Vec<FieldError>,
    },

    /// An imported file was refused as a whole (nothing was imported);
    /// each entry names a line (`line 12`, `line 12, Title`) and why.
    #[error("the file was refused: {}", FieldErrors(errors))]
    InvalidImport {
        /// The line-level errors (at most 100).
        errors: Vec<FieldError>,
    },

    /// A token refresh led by another caller in this process failed; this is
    /// its outcome, shared. `kind` is the original error's kind.
    #[error("the token refresh failed: {reason}")]
    RefreshFailed {
        /// The kind of the original error.
        kind: ErrorKind,
        /// The original error's message (never a secret).
        reason: String,
    },

    /// The actor may not perform this operation: managing webhook
    /// endpoints, reading their secrets, replaying or recovering messages
    /// needs an admin ([`Actor::admin`](crate::webhook::Actor::admin)).
    #[error("forbidden: {action} needs an admin")]
    Forbidden {
        /// What was refused (`"create a webhook endpoint"`, ...).
        action: &'static str,
    },

    /// The audit log's chain does not verify: an entry was edited, deleted,
    /// inserted or reordered, or the head or checkpoint was forged. `seq`
    /// names the first bad entry. Investigate; do not ignore.
    #[error("the audit log is broken at entry {seq}: {fault}")]
    AuditChainBroken {
        /// The first bad entry's position.
        seq: u64,
        /// What is wrong with it.
        fault: crate::audit::ChainFault,
    },

    /// A personal API token was refused (kind [`ErrorKind::Unauthorized`]):
    /// malformed, a bad checksum, unknown, expired, revoked or inactive.
    /// A valid token lacking a scope is [`Error::InsufficientScope`].
    #[error("invalid API token: {reason}")]
    InvalidApiToken {
        /// Why it was refused.
        reason: crate::api_token::ApiTokenRejection,
    },

    /// A signed link was refused: malformed, altered, signed under a key
    /// the keyring lacks, expired or used with another method (kind
    /// [`ErrorKind::Unauthorized`]), or valid but for another scope than
    /// the one required (kind [`ErrorKind::Forbidden`]).
    #[error("invalid signed link: {reason}")]
    InvalidSignedUrl {
        /// Why it was refused.
        reason: crate::signed_url::SignedUrlRejection,
    },

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

impl Error {
    /// The coarse classification of this error.
    ///
    /// ```
    /// use consentry::{Error, ErrorKind};
    /// assert_eq!(Error::NotFound { what: "credential" }.kind(), ErrorKind::NotFound);
    /// assert_eq!(Error::Random.kind(), ErrorKind::Internal);
    /// let lost = Error::Conflict { what: "credential", expected: 1, found: 2 };
    /// assert!(lost.kind().is_retryable());
    /// ```
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
            Self::OAuth { error, .. } => {
                if error.needs_reauth() {
                    ErrorKind::ReauthRequired
                } else if *error == OAuthErrorCode::AccessDenied {
                    ErrorKind::AccessDenied
                } else if error.is_transient() {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Upstream
                }
            }
            Self::Callback(_) => ErrorKind::InvalidCallback,
            Self::ConsentRequired { .. } => ErrorKind::ConsentRequired,
            Self::InsufficientScope { .. } => ErrorKind::InsufficientScope,
            Self::ReauthRequired { .. } => ErrorKind::ReauthRequired,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::AuditChainBroken { .. } => ErrorKind::Integrity,
            Self::InvalidApiToken { .. } => ErrorKind::Unauthorized,
            Self::InvalidSignedUrl { reason } => reason.kind(),
            Self::ProviderUnavailable { .. } => ErrorKind::Unavailable,
            Self::InvalidSettings { .. } | Self::InvalidImport { .. } => ErrorKind::InvalidInput,
            Self::RefreshFailed { kind, .. } => *kind,
            Self::Http(e) if e.is_retryable() => ErrorKind::Unavailable,
            Self::Http(_) | Self::Discovery { .. } | Self::InvalidResponse { .. } => {
                ErrorKind::Upstream
            }
            Self::UpstreamStatus { status, .. } => match status {
                408 | 429 | 500..=599 => ErrorKind::Unavailable,
                _ => ErrorKind::Upstream,
            },
        }
    }

    /// Whether this is an OAuth `invalid_grant`: the authorization code or
    /// refresh token was refused. On a refresh, re-read the stored refresh
    /// token before concluding the grant is dead: another process may have
    /// rotated it a moment earlier.
    ///
    /// ```
    /// use consentry::Error;
    /// use consentry::oauth::OAuthErrorCode;
    /// let e = Error::OAuth { error: OAuthErrorCode::InvalidGrant, description: None };
    /// assert!(e.is_invalid_grant());
    /// assert_eq!(e.kind(), consentry::ErrorKind::ReauthRequired);
    /// ```
    pub fn is_invalid_grant(&self) -> bool {
        matches!(
            self,
            Self::OAuth {
                error: OAuthErrorCode::InvalidGrant,
                ..
            }
        )
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
        let mut extensions = serde_json::Map::new();
        match self {
            Self::ConsentRequired { purpose } => {
                extensions.insert("purpose".into(), purpose.as_str().into());
            }
            Self::InsufficientScope { missing } => {
                let missing: Vec<serde_json::Value> =
                    missing.iter().map(|s| s.as_str().into()).collect();
                extensions.insert("missing_scopes".into(), missing.into());
            }
            Self::RateLimited {
                retry_after: Some(d),
            }
            | Self::ProviderUnavailable {
                retry_after: Some(d),
                ..
            } => {
                extensions.insert("retry_after".into(), d.as_secs().max(1).into());
            }
            Self::InvalidApiToken { reason } => {
                extensions.insert("reason".into(), reason.as_str().into());
            }
            Self::InvalidSignedUrl { reason } => {
                extensions.insert("reason".into(), reason.as_str().into());
            }
            Self::InvalidSettings { errors } | Self::InvalidImport { errors } => {
                let errors: Vec<serde_json::Value> = errors
                    .iter()
                    .map(|e| serde_json::json!({"field": e.field, "message": e.message}))
                    .collect();
                extensions.insert("errors".into(), errors.into());
            }
            _ => {}
        }
        Problem {
            type_uri: format!(
                "https://docs.rs/consentry/latest/consentry/enum.ErrorKind.html#variant.{kind:?}"
            ),
            title: kind.title().to_owned(),
            status,
            detail,
            extensions,
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

/// One field of a settings object (or one line of an import) that was
/// refused, and why.
///
/// ```
/// use consentry::error::FieldError;
/// let e = FieldError::new("sync_interval_minutes", "must be at least 15");
/// assert_eq!(e.to_string(), "sync_interval_minutes: must be at least 15");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FieldError {
    /// The field (or `line 12`, `line 12, column Title`).
    pub field: String,
    /// Why it was refused. Never contains secret material.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    ///
    /// ```
    /// use consentry::error::FieldError;
    /// let e = FieldError::new("calendar", "is required");
    /// assert_eq!((e.field.as_str(), e.message.as_str()), ("calendar", "is required"));
    /// ```
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Formats field errors as `a: x; b: y` (at most 10, then a count).
struct FieldErrors<'a>(&'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(10).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 10 {
            write!(f, "; and {} more", self.0.len() - 10)?;
        }
        Ok(())
    }
}

/// Formats scopes as a space-separated list.
struct ScopeList<'a>(&'a [crate::ids::Scope]);

impl fmt::Display for ScopeList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

/// Formats an optional wait as `"; retry in N s"`.
struct RetryAfter<'a>(&'a Option<std::time::Duration>);

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, "; retry in {} s", d.as_secs().max(1)),
            None => Ok(()),
        }
    }
}

/// Formats an optional provider description as `": description"`.
struct DescriptionSuffix<'a>(&'a Option<String>);

impl fmt::Display for DescriptionSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, ": {d}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
