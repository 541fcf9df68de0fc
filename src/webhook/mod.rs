//! Webhooks: Standard Webhooks signing and verification, verifiers for
//! Stripe, GitHub, Slack and Shopify, a store-backed [`ReplayGuard`], the
//! address checks an outbound sender needs against SSRF, and the outbound
//! [`Dispatcher`].
//!
//! The signing and verifying modules are pure: no store, no network, no
//! clock. Time is always an argument (`now`), so tolerance windows are
//! testable. The [`Dispatcher`] (durable outbox, retries, admin-managed
//! endpoints; its docs explain the delivery semantics, the retry and
//! disabling policy, and the SSRF protection and its limits) and the
//! [`ReplayGuard`] work over a [`Store`](crate::store::Store).
//!
//! | module | header(s) | key | encoding | signed content | timestamp window |
//! |---|---|---|---|---|---|
//! | [`standard`] (Svix, Clerk) | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<sig> ...` | [`WebhookSecret`]: base64-**decoded** after `whsec_` | base64 | `id.timestamp.body` | ±5 min |
//! | [`stripe`] | `Stripe-Signature: t=<ts>,v1=<sig>,...` | [`HmacSecret`]: the **whole** `whsec_...` string as text | hex | `timestamp.body` | 5 min, past only |
//! | [`github`] | `X-Hub-Signature-256: sha256=<sig>` | [`HmacSecret`] | hex | `body` | none |
//! | [`slack`] | `X-Slack-Signature: v0=<sig>`, `X-Slack-Request-Timestamp` | [`HmacSecret`] | hex | `v0:timestamp:body` | ±5 min |
//! | [`shopify`] | `X-Shopify-Hmac-SHA256: <sig>` | [`HmacSecret`] | base64 | `body` | none |
//!
//! All use HMAC-SHA256 (Standard Webhooks `v1a` uses Ed25519, feature
//! `ed25519`). Every module has the same shape: `sign(..)` returning
//! [`SignedHeaders`], `verify(secrets, headers, body, ..)` with the default
//! [`VerifyOptions`], `verify_with(&options, ..)`, and, where the provider
//! sends one, `delivery_id(headers)` for a replay guard.
//!
//! # The traps, and what this module does about them
//!
//! - **Verify the raw bytes, before parsing JSON.** Every signature covers
//!   the exact body bytes. Parsing and re-serializing changes spacing, key
//!   order and escapes, and the signature no longer matches (or, worse, a
//!   lenient parser accepts a body the signature never covered). Hand the
//!   verifiers the body exactly as received (`axum::body::Bytes`), and
//!   parse only after `verify` returned `Ok`.
//! - **Secret decoding differs.** Standard Webhooks base64-decodes what
//!   follows `whsec_`; Stripe's secret also starts with `whsec_` but is used
//!   as literal text, prefix included. Mixing them up fails every delivery,
//!   so the two are different types: [`WebhookSecret`] and [`HmacSecret`].
//! - **Encodings and separators differ**: base64 for Standard Webhooks and
//!   Shopify, hex for Stripe, GitHub and Slack; `.` between parts for
//!   Standard Webhooks and Stripe, `:` for Slack; a space-separated list of
//!   `version,signature` for Standard Webhooks, a comma-separated list of
//!   `key=value` for Stripe.
//! - **Several signatures per request** (during secret rotation): any match
//!   passes; unknown versions (`v2`, Stripe's `v0`) are ignored, never an
//!   error and never trusted. Stripe's `v0` is ignored on purpose: accepting
//!   it would allow a downgrade.
//! - **Several secrets per receiver** (rotation on the receiving side):
//!   every `verify` takes a slice of secrets.
//! - **Timestamps**: Standard Webhooks and Slack refuse both too old and too
//!   new; Stripe only too old (as its libraries do); GitHub and Shopify sign
//!   no timestamp at all, so a captured request can be replayed at any time.
//!   Use a replay guard keyed by the delivery id *and* a digest of the body.
//! - **Delivery ids are not always signed**: the Standard Webhooks id is
//!   part of the signed content, but `X-GitHub-Delivery` and
//!   `X-Shopify-Webhook-Id` are not, so an attacker replaying a captured
//!   request can change them. Stripe and Slack send no delivery id header:
//!   Stripe's event id (`"id": "evt_..."`) and Slack's Events API
//!   `event_id` are in the (signed) body.
//! - **Comparisons** are constant-time, on the decoded 32 bytes, after a
//!   length check; a signature that does not decode simply does not match.
//! - **Bounded input**: header values over [`MAX_HEADER_LEN`] bytes are
//!   refused, at most 32 signatures are read from one header, and
//!   [`VerifyOptions::with_max_payload_len`] refuses large bodies before
//!   hashing them.
//! - **Errors** are [`WebhookError`]s inside [`Error::Webhook`](crate::Error::Webhook),
//!   of kind [`Unauthorized`](crate::ErrorKind::Unauthorized) (HTTP 401).
//!   They never contain a secret or any byte of the request.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use consentry::webhook::{HmacSecret, github, stripe};
//!
//! // Stripe: the whsec_ string is the key as it is.
//! let stripe_secret = HmacSecret::new("whsec_test_secret")?;
//! let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
//! let headers = [("stripe-signature",
//!     "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990")];
//! stripe::verify(&[stripe_secret], &headers, body, UNIX_EPOCH + Duration::from_secs(1700000060))?;
//!
//! // GitHub: no timestamp, so no `now`.
//! let gh_secret = HmacSecret::new("It's a Secret to Everybody")?;
//! let headers = [("X-Hub-Signature-256",
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")];
//! github::verify(&[gh_secret], &headers, b"Hello, World!")?;
//! # Ok::<(), consentry::Error>(())
//! ```

use std::time::Duration;

#[cfg(feature = "ed25519")]
mod asymmetric;
mod common;
mod dispatch;
mod error;
mod headers;
mod replay;
mod secret;

pub mod github;
pub mod shopify;
pub mod slack;
pub mod ssrf;
pub mod standard;
pub mod stripe;

#[cfg(feature = "ed25519")]
#[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
pub use asymmetric::{WebhookPublicKey, WebhookSigningKey};
pub use dispatch::{
    Actor, DISPATCH_EVENT_BUFFER, DispatchEvent, DispatchEventKind, DispatchEvents, Dispatcher,
    DispatcherBuilder, DispatcherOptions, Endpoint, EndpointConfig, EndpointSecrets,
    EndpointUpdate, MAX_CUSTOM_HEADERS, MAX_EVENT_TYPES, MAX_IDEMPOTENCY_KEY_LEN, MAX_OLD_SECRETS,
    MAX_RECOVER_WINDOW, MAX_RETRY_DELAY, MAX_SCHEDULE_LEN, MAX_URL_LEN, Payload, RunReport,
};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use dispatch::{WebhookClient, WebhookClientBuilder};
pub use error::WebhookError;
pub use headers::{Headers, MAX_HEADER_LEN, SignedHeaders};
pub use replay::ReplayGuard;
pub use secret::{HmacSecret, WebhookSecret};

/// How a verifier checks timestamps and bounds its input.
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::VerifyOptions;
///
/// let options = VerifyOptions::new()
///     .with_tolerance(Duration::from_secs(60))
///     .with_max_payload_len(256 * 1024);
/// assert_eq!(options.tolerance(), Duration::from_secs(60));
/// assert_eq!(VerifyOptions::default().tolerance(), VerifyOptions::DEFAULT_TOLERANCE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    tolerance: Duration,
    max_payload_len: Option<usize>,
}

impl VerifyOptions {
    /// Five minutes, the tolerance of every provider's reference library.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::VerifyOptions;
    /// assert_eq!(VerifyOptions::DEFAULT_TOLERANCE, Duration::from_secs(300));
    /// ```
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

    /// Tolerance of five minutes, no payload limit.
    ///
    /// ```
    /// use consentry::webhook::VerifyOptions;
    /// let o = VerifyOptions::new();
    /// assert_eq!((o.tolerance(), o.max_payload_len()), (VerifyOptions::DEFAULT_TOLERANCE, None));
    /// ```
    pub const fn new() -> Self {
        Self {
            tolerance: Self::DEFAULT_TOLERANCE,
            max_payload_len: None,
        }
    }

    /// How far the signed timestamp may be from `now` (whole seconds;
    /// fractions are dropped). Ignored by the schemes that sign no
    /// timestamp (GitHub, Shopify).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::webhook::{VerifyOptions, WebhookSecret, standard};
    /// let secret = WebhookSecret::generate()?;
    /// let signed = standard::sign(&secret, "msg_1", 1_700_000_000, b"{}")?;
    /// let ten_minutes_later = UNIX_EPOCH + Duration::from_secs(1_700_000_600);
    /// assert!(standard::verify(&[secret.clone()], &signed, b"{}", ten_minutes_later).is_err());
    /// let lenient = VerifyOptions::new().with_tolerance(Duration::from_secs(900));
    /// assert!(standard::verify_with(&lenient, &[secret], &signed, b"{}", ten_minutes_later).is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub const fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Refuse payloads longer than `bytes` before hashing them. By default
    /// there is no limit here: bound the request body in the web framework.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::webhook::{VerifyOptions, WebhookSecret, standard};
    /// let secret = WebhookSecret::generate()?;
    /// let body = vec![b' '; 2048];
    /// let signed = standard::sign(&secret, "msg_1", 1_700_000_000, &body)?;
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let small = VerifyOptions::new().with_max_payload_len(1024);
    /// assert!(standard::verify_with(&small, &[secret], &signed, &body, now).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub const fn with_max_payload_len(mut self, bytes: usize) -> Self {
        self.max_payload_len = Some(bytes);
        self
    }

    /// The timestamp tolerance.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::VerifyOptions;
    /// assert_eq!(VerifyOptions::new().with_tolerance(Duration::from_secs(30)).tolerance(), Duration::from_secs(30));
    /// ```
    pub const fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The payload limit, if any.
    ///
    /// ```
    /// use consentry::webhook::VerifyOptions;
    /// assert_eq!(VerifyOptions::new().max_payload_len(), None);
    /// assert_eq!(VerifyOptions::new().with_max_payload_len(1024).max_payload_len(), Some(1024));
    /// ```
    pub const fn max_payload_len(&self) -> Option<usize> {
        self.max_payload_len
    }
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::new()
    }
}
