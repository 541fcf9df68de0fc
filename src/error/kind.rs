//! [`ErrorKind`]: the coarse classification of an [`Error`](super::Error).

use std::fmt;

/// A coarse, `Copy` classification of an [`Error`](super::Error).
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
    /// does not verify, a stale timestamp, a refused API token or signed
    /// link. Do not process the request.
    Unauthorized,
    /// A consentry bug, or the operating system's random number generator
    /// failed ([`Error::Random`](super::Error::Random)).
    Internal,
    /// The user's grant at the provider is gone (`invalid_grant`, a revoked
    /// token): the user has to connect again.
    ReauthRequired,
    /// The user (or the provider's policy) refused authorization.
    AccessDenied,
    /// An authorization callback was refused (redirect URI, `state`, `iss`).
    InvalidCallback,
    /// The provider misbehaved or refused a request in a way retrying will
    /// not fix (bad client credentials, malformed responses, issuer
    /// mismatch).
    Upstream,
    /// The provider is unreachable or temporarily failing; retry later.
    Unavailable,
    /// The user has not consented to the purpose.
    ConsentRequired,
    /// The connection lacks scopes the call needs.
    InsufficientScope,
    /// The provider rate limits, or the connection backs off after
    /// failures; retry after the given time.
    RateLimited,
    /// The caller may not do this (an administrative operation by a
    /// non-admin actor).
    Forbidden,
    /// Stored data failed an integrity check that tampering would cause
    /// (the audit log's chain does not verify). Investigate; do not retry.
    Integrity,
}

impl ErrorKind {
    /// The HTTP status a host would typically answer with: 400 for invalid
    /// input, 404 for not found, 409 for a conflict, 503 for storage, 500
    /// for the rest.
    ///
    /// ```
    /// use consentry::ErrorKind;
    /// assert_eq!(ErrorKind::InvalidInput.http_status(), 400);
    /// assert_eq!(ErrorKind::Conflict.http_status(), 409);
    /// assert_eq!(ErrorKind::Storage.http_status(), 503);
    /// assert_eq!(ErrorKind::Crypto.http_status(), 500);
    /// ```
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidInput => 400,
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Storage | Self::Unavailable => 503,
            Self::Crypto | Self::Key | Self::Migration | Self::Internal => 500,
            Self::ReauthRequired => 401,
            Self::AccessDenied | Self::ConsentRequired | Self::InsufficientScope => 403,
            Self::InvalidCallback => 400,
            Self::Upstream => 502,
            Self::RateLimited => 429,
            Self::Forbidden => 403,
            Self::Integrity => 500,
        }
    }

    /// Whether trying again can succeed without fixing anything: storage
    /// failures are usually transient, a lost compare-and-swap succeeds
    /// when retried after re-reading the current version, and a provider
    /// that is temporarily down comes back.
    ///
    /// ```
    /// use consentry::ErrorKind;
    /// assert!(ErrorKind::Storage.is_retryable());
    /// assert!(ErrorKind::Conflict.is_retryable());
    /// assert!(ErrorKind::Unavailable.is_retryable());
    /// assert!(!ErrorKind::InvalidInput.is_retryable());
    /// assert!(!ErrorKind::Crypto.is_retryable());
    /// ```
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Storage | Self::Conflict | Self::Unavailable | Self::RateLimited
        )
    }

    /// A stable, lowercase, dash-separated name (`"not-found"`), also used
    /// by `Display`.
    ///
    /// ```
    /// use consentry::ErrorKind;
    /// assert_eq!(ErrorKind::NotFound.as_str(), "not-found");
    /// assert_eq!(ErrorKind::InvalidInput.to_string(), "invalid-input");
    /// ```
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
            Self::ReauthRequired => "reauth-required",
            Self::AccessDenied => "access-denied",
            Self::InvalidCallback => "invalid-callback",
            Self::Upstream => "upstream",
            Self::Unavailable => "unavailable",
            Self::ConsentRequired => "consent-required",
            Self::InsufficientScope => "insufficient-scope",
            Self::RateLimited => "rate-limited",
            Self::Forbidden => "forbidden",
            Self::Integrity => "integrity",
        }
    }

    pub(super) fn title(self) -> &'static str {
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
            Self::ReauthRequired => "Reauthorization required",
            Self::AccessDenied => "Access denied",
            Self::InvalidCallback => "Invalid authorization callback",
            Self::Upstream => "Provider error",
            Self::Unavailable => "Provider unavailable",
            Self::ConsentRequired => "Consent required",
            Self::InsufficientScope => "Insufficient scope",
            Self::RateLimited => "Rate limited",
            Self::Forbidden => "Forbidden",
            Self::Integrity => "Integrity check failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
