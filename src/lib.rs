//! # consentry
//!
//! Connect your users' accounts at other services, keep their credentials in
//! an encrypted vault, use their data only for the purposes each user
//! consented to, and sign and verify webhooks — as a library inside your
//! application, not a hosted platform.
//!
//! This release contains the foundation (validated identifiers, the error
//! type, injected time, the storage traits with their in-memory and SQLite
//! backends, the token vault), connecting accounts over OAuth 2.0 (the
//! [`HttpClient`](http::HttpClient) seam, connectors and their TOML
//! catalogue, the [`Integrations`] facade with consent-gated, race-free
//! token refresh and revoke-on-disconnect), harvesting data under consent
//! (streams and actions, a rate-limit-aware sync runtime, purpose-bound
//! records with an access log, transparency reports, export and erasure;
//! Google Calendar, Spotify and Goodreads connectors), webhook signing and
//! verification, the outbound webhook dispatcher, rate limits, personal
//! API tokens, signed links, and a tamper-evident audit log of every
//! sensitive operation.
//!
//! ## The vault in one example
//!
//! ```
//! use consentry::{ConnectionId, UserId};
//! use consentry::secrecy::{ExposeSecret, SecretString};
//! use consentry::store::MemoryStore;
//! use consentry::vault::{CredentialKind, Keyring, Vault};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In production: Keyring::from_env("CONSENTRY_KEYS")? and SqliteStore::open(path).await?
//! let vault = Vault::new(MemoryStore::new(), Keyring::generate()?);
//! let user = UserId::in_tenant("acme", "alice")?;
//! let conn = ConnectionId::generate()?;
//! vault.put(&user, &conn, CredentialKind::AccessToken, SecretString::from("ya29.token")).await?;
//! let token = vault.get(&user, &conn, CredentialKind::AccessToken).await?;
//! assert_eq!(token.value.expose_secret(), "ya29.token");
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Modules
//!
//! - [`connector`]: the [`Connector`](connector::Connector) trait,
//!   [`OAuth2Connector`](connector::OAuth2Connector) (a provider as data),
//!   RFC 8414 / OpenID Connect discovery, and the TOML
//!   [`Catalogue`](connector::Catalogue) with built-in Google, Microsoft,
//!   GitHub, Spotify, Slack and Notion entries.
//! - [`connectors`]: code connectors for Google Calendar, Spotify and
//!   Goodreads (library-export import, legacy OAuth 1.0a API).
//! - [`sync`]: the sync runtime: `Integrations::sync_now`, the scheduler,
//!   rate limits, budgets, backoff, the circuit breaker.
//! - [`records`]: harvested records with provenance and purposes, and the
//!   normalised types (`Book`, `Event`, `Artist`, `Play`, `Shelf`).
//! - [`export`]: JSON, NDJSON and CSV export of everything held about a
//!   user (`Integrations::export`).
//! - [`oauth`]: authorization URL, callback checks (state, `iss` per
//!   RFC 9207), PKCE, token / refresh / revocation requests and lenient,
//!   bounded response parsing; builds requests and parses responses, never
//!   does I/O.
//! - [`http`]: the [`HttpClient`](http::HttpClient) trait (closures through
//!   [`http::from_fn`]), and `http::ReqwestClient` (feature `reqwest`:
//!   no redirects, timeouts, bounded bodies).
//! - [`vault`]: envelope encryption of credentials, key rotation, crypto-shredding.
//! - [`webhook`]: Standard Webhooks signing and verification (Svix, Clerk),
//!   verifiers for Stripe, GitHub, Slack and Shopify, a store-backed replay
//!   guard, SSRF address checks, and the outbound
//!   [`Dispatcher`](webhook::Dispatcher) (admin-managed endpoints with
//!   sealed secrets, durable outbox, Svix's retry schedule, leased workers).
//! - [`audit`]: the hash-chained, tamper-evident audit log of every
//!   sensitive operation, with request context, queries and retention.
//! - [`ratelimit`]: GCRA rate limits with tiers (`free` 60/min, `pro`
//!   1,000/min, `enterprise` 5,000/min, or your own) and `RateLimit-*` /
//!   `Retry-After` header values; the in-memory, sharded
//!   [`RateLimiter`](ratelimit::RateLimiter) and the store-backed
//!   [`StoreRateLimiter`](ratelimit::StoreRateLimiter) that several
//!   processes share.
//! - [`api_token`]: personal API tokens (`cst_…`, checksummed so secret
//!   scanners recognise them, stored only as a SHA-256, scoped, expiring,
//!   with a batched usage log): [`ApiTokens`](api_token::ApiTokens).
//! - [`signed_url`]: expiring, scoped links for downloads and media, signed
//!   with keyring subkeys: [`UrlSigner`](signed_url::UrlSigner).
//! - [`store`]: the storage traits, [`store::MemoryStore`], `store::SqliteStore`
//!   (feature `sqlite`), and the public conformance suite (feature `conformance`).
//! - [`ids`], [`secret`], [`clock`], [`error`]: the vocabulary everything else uses.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | `store::SqliteStore` (bundled SQLite) |
//! | `reqwest` | yes | `http::ReqwestClient` (rustls, redirects disabled, bounded bodies) |
//! | `conformance` | no | `store::conformance`, the suite a custom store must pass |
//! | `testing` | no | `testing::TestProvider`: an in-process OAuth 2.0 authorization server and paged API on 127.0.0.1 for your tests (axum) |
//! | `ed25519` | no | Standard Webhooks `v1a` (Ed25519) signatures: `webhook::WebhookSigningKey`, `webhook::WebhookPublicKey` |
//!
//! With `--no-default-features` the crate is the protocol core: everything
//! above but the SQLite backend and the reqwest client (bring your own
//! [`HttpClient`](http::HttpClient)).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api_token;
pub mod audit;
pub mod clock;
pub mod connection;
pub mod connector;
pub mod connectors;
pub mod error;
pub mod events;
pub mod export;
pub mod http;
pub mod ids;
pub mod integrations;
pub mod oauth;
pub mod ratelimit;
pub mod records;
pub mod secret;
pub mod signed_url;
pub mod store;
pub mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod vault;
pub mod webhook;

/// The `secrecy` crate, re-exported so callers name the same secret types.
pub use secrecy;
/// The `url` crate, re-exported: endpoints and redirect URIs are [`url::Url`]s.
pub use url;
/// The `zeroize` crate, re-exported for key material
/// ([`Keyring::with_primary`](vault::Keyring::with_primary) takes a
/// `Zeroizing` key).
pub use zeroize;

pub use connection::{Connection, ConnectionStatus};
pub use error::{Error, ErrorKind, Problem, Result};
pub use ids::ApiTokenId;
pub use ids::{ConnectionId, ConnectorId, EndpointId, MessageId, Purpose, Scope, UserId};
pub use integrations::{AccessToken, Integrations, IntegrationsBuilder};

/// The README's examples, compiled and run as doctests (they use the
/// default features).
#[cfg(all(doctest, feature = "sqlite", feature = "reqwest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
