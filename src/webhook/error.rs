//! [`WebhookError`]: why a webhook was refused or could not be signed.

use crate::error::ErrorKind;

/// Why a webhook failed verification, or why a secret or a message to sign
/// was refused.
///
/// Every verifier returns it wrapped in [`Error::Webhook`](crate::Error::Webhook),
/// whose [`kind`](crate::Error::kind) is [`ErrorKind::Unauthorized`] for a
/// failed verification and [`ErrorKind::InvalidInput`] for a bad secret, a
/// bad message to sign or a payload over the limit.
///
/// Messages name headers and static reasons only: never a secret, a
/// signature, or any other byte taken from the request.
///
/// ```
/// use consentry::{Error, ErrorKind};
/// use consentry::webhook::{WebhookError, github, HmacSecret};
///
/// let secret = HmacSecret::new("It's a Secret to Everybody")?;
/// let err = github::verify(&[secret], &[("x-hub-signature-256", "sha256=00")], b"{}").unwrap_err();
/// assert!(matches!(err, Error::Webhook(WebhookError::MalformedHeader { header: "x-hub-signature-256", .. })));
/// assert_eq!(err.kind(), ErrorKind::Unauthorized);
/// assert_eq!(err.to_problem().status, 401);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header the scheme requires is absent.
    #[error("missing header `{header}`")]
    MissingHeader {
        /// The header's name, lowercase.
        header: &'static str,
    },

    /// A header is present but cannot be parsed: too long, not ASCII, a
    /// timestamp that is not a decimal number, a signature of the wrong
    /// shape.
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        /// The header's name, lowercase.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The signed timestamp is further in the past than the tolerance
    /// allows: a replay, a delayed retry, or a slow clock.
    #[error("timestamp is {skew_secs} s old, beyond the {tolerance_secs} s tolerance")]
    TimestampTooOld {
        /// How far in the past the timestamp is, in seconds.
        skew_secs: u64,
        /// The tolerance that was applied, in seconds.
        tolerance_secs: u64,
    },

    /// The signed timestamp is further in the future than the tolerance
    /// allows: usually a fast clock on one side.
    #[error("timestamp is {skew_secs} s in the future, beyond the {tolerance_secs} s tolerance")]
    TimestampTooNew {
        /// How far in the future the timestamp is, in seconds.
        skew_secs: u64,
        /// The tolerance that was applied, in seconds.
        tolerance_secs: u64,
    },

    /// No signature in the request was made with any of the given secrets
    /// (or the request carries no signature of the expected version).
    #[error("no signature matches")]
    NoMatchingSignature,

    /// The payload is longer than the configured limit; it was not hashed.
    #[error("payload is larger than the {limit} byte limit")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

    /// A secret or key could not be parsed or is unusable (empty, not
    /// base64, wrong length, a weak Ed25519 key).
    #[error("invalid webhook secret: {reason}")]
    InvalidSecret {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The delivery id was already seen by the [`ReplayGuard`](super::ReplayGuard)
    /// within its time to live: a replay, or the sender retrying a delivery
    /// it could not confirm. Kind [`ErrorKind::Conflict`]: do not process
    /// the request again; answering `2xx` stops an honest sender's retries.
    #[error("delivery was already received")]
    Replayed,

    /// A message id or timestamp given to a `sign` function cannot be
    /// signed unambiguously.
    #[error("cannot sign: invalid {what}: {reason}")]
    InvalidSigningInput {
        /// `"message id"` or `"timestamp"`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl WebhookError {
    /// Whether this error means "the request is not authentic or not fresh"
    /// (answer 401 and do not process it), as opposed to a configuration
    /// or input error on this side.
    ///
    /// ```
    /// use consentry::webhook::WebhookError;
    /// assert!(WebhookError::NoMatchingSignature.is_verification_failure());
    /// assert!(!WebhookError::InvalidSecret { reason: "empty" }.is_verification_failure());
    /// ```
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            Self::MissingHeader { .. }
                | Self::MalformedHeader { .. }
                | Self::TimestampTooOld { .. }
                | Self::TimestampTooNew { .. }
                | Self::NoMatchingSignature
        )
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        if *self == Self::Replayed {
            ErrorKind::Conflict
        } else if self.is_verification_failure() {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::InvalidInput
        }
    }
}
