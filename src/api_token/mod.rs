//! Personal API tokens: scoped, expiring, shown once, stored only as a
//! hash, recognisable by secret scanners.
//!
//! A token looks like `cst_` + 43 base62 characters (32 random bytes) + 6
//! base62 characters (a CRC32 of everything before them), 53 ASCII
//! characters in all, the format GitHub uses for its tokens: a scanner
//! that finds `cst_…` in a commit can tell a real token from a look-alike
//! with [`check_format`], without a database. [`ApiTokens::verify`] runs
//! the same check before it touches the store, so typos and garbage cost
//! no lookup.
//!
//! The store keeps the SHA-256 of the token, never the token: reading the
//! database gives nothing to present. Each verification is one point read
//! by that hash; its usage-log entry is buffered in memory and written in
//! batches off the request path, once per flush interval (1 s by default,
//! [`ApiTokensBuilder::usage_flush_interval`]); the uses of one token for
//! one operation with one outcome within an interval share one entry with
//! a [`count`](ApiTokenUsage::count). [`ApiTokens::flush`] writes what is
//! buffered; call it before shutting down.
//!
//! ```
//! use consentry::api_token::ApiTokens;
//! use consentry::clock::SystemClock;
//! use consentry::secrecy::ExposeSecret;
//! use consentry::store::MemoryStore;
//! use consentry::{Error, Scope, UserId};
//! use std::time::{Duration, SystemTime};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
//! let alice = UserId::new("alice")?;
//! let read = Scope::new("read:connections")?;
//! let in_30_days = SystemTime::now() + Duration::from_secs(30 * 86_400);
//! let (info, token) = tokens.create(&alice, "CI", &[read.clone()], Some(in_30_days)).await?;
//! // Show `token` to alice once; keep `info.id` to list, rename or revoke it.
//! assert!(token.expose_secret().starts_with("cst_"));
//!
//! // On each request:
//! let who = tokens.verify(token.expose_secret(), &[read.clone()]).await?;
//! assert_eq!(who.owner, alice);
//! let write = Scope::new("write:webhooks")?;
//! let err = tokens.verify(token.expose_secret(), &[write.clone()]).await.unwrap_err();
//! assert!(matches!(err, Error::InsufficientScope { missing } if missing == [write]));
//!
//! tokens.revoke(&alice, &info.id).await?;
//! assert!(tokens.verify(token.expose_secret(), &[read]).await.is_err());
//! tokens.flush().await?; // the usage log, written
//! assert_eq!(tokens.usage(&alice, &info.id, 10).await?.len(), 3);
//! # Ok::<(), consentry::Error>(())
//! # }).unwrap();
//! ```

mod audit;
mod builder;
mod format;
mod scopes;
mod usage;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use builder::ApiTokensBuilder;
pub use format::{PREFIX, TOKEN_LEN, check_format};
pub use scopes::{MAX_SCOPE_LEN, ScopeInfo};

pub use crate::ids::ApiTokenId;
pub use crate::store::{ApiTokenInfo, ApiTokenUsage, UsageOutcome};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ids::{Scope, UserId};
use crate::store::{ApiTokenStore, ApiTokenUpdate, StoredApiToken};
use usage::UsageLog;

/// The longest token name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The most usage entries [`ApiTokens::usage`] returns.
pub const MAX_USAGE_LIMIT: usize = 1000;

/// Why a token was refused ([`Error::InvalidApiToken`]).
///
/// ```
/// use consentry::api_token::ApiTokenRejection;
/// assert_eq!(ApiTokenRejection::Revoked.as_str(), "revoked");
/// assert_eq!(ApiTokenRejection::Revoked.to_string(), "the token was revoked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiTokenRejection {
    /// Not shaped like a token: wrong prefix, length or characters. The
    /// store was not consulted.
    Malformed,
    /// Shaped like a token, but the checksum does not match (a typo, a
    /// truncated copy, an altered character). The store was not consulted.
    BadChecksum,
    /// Well formed, but no such token is stored.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked by its owner.
    Revoked,
    /// Paused by its owner ([`ApiTokens::set_active`]).
    Inactive,
}

impl ApiTokenRejection {
    /// A stable, lowercase, dash-separated name (the `reason` member of
    /// the problem document).
    ///
    /// ```
    /// use consentry::api_token::ApiTokenRejection;
    /// assert_eq!(ApiTokenRejection::BadChecksum.as_str(), "bad-checksum");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadChecksum => "bad-checksum",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Inactive => "inactive",
        }
    }
}

impl fmt::Display for ApiTokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Malformed => "not a consentry API token (prefix, length or characters)",
            Self::BadChecksum => "the checksum does not match (mistyped or altered)",
            Self::Unknown => "no such token",
            Self::Expired => "the token has expired",
            Self::Revoked => "the token was revoked",
            Self::Inactive => "the token is paused by its owner",
        })
    }
}

/// Creates, verifies and manages personal API tokens. Cheap to clone;
/// clones share the usage buffer.
///
/// Usable on its own: it needs only an [`ApiTokenStore`] (any
/// [`Store`](crate::store::Store), `Arc<dyn ApiTokenStore>`) and a
/// [`Clock`].
///
/// ```
/// use std::sync::Arc;
/// use consentry::api_token::ApiTokens;
/// use consentry::clock::SystemClock;
/// use consentry::store::{ApiTokenStore, MemoryStore};
/// let store: Arc<dyn ApiTokenStore> = Arc::new(MemoryStore::new());
/// let tokens = ApiTokens::new(store, SystemClock);
/// let other_handle = tokens.clone();
/// assert_eq!(other_handle.scopes().len(), tokens.scopes().len());
/// ```
#[derive(Clone)]
pub struct ApiTokens {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    store: Arc<dyn ApiTokenStore>,
    clock: Arc<dyn Clock>,
    catalogue: Vec<ScopeInfo>,
    require_expiry: bool,
    usage: Arc<UsageLog>,
    audit: Option<crate::audit::AuditLog>,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokens")
            .field("store", &self.inner.store)
            .field("scopes", &self.inner.catalogue.len())
            .field("require_expiry", &self.inner.require_expiry)
            .field("usage_capacity", &self.inner.usage.capacity())
            .field("usage_flush_interval", &self.inner.usage.interval())
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token: what the store keeps.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks a token name: 1 to [`MAX_NAME_LEN`] bytes, no control characters,
/// not only spaces.
fn check_name(name: &str) -> Result<String> {
    crate::ids::check_common("API token name", name, MAX_NAME_LEN)?;
    if name.trim().is_empty() {
        return Err(Error::invalid("API token name", "must not be blank"));
    }
    Ok(name.to_owned())
}

impl ApiTokens {
    /// A service with the default catalogue ([`ApiTokens::scopes`]), expiry
    /// required, and a usage buffer of 16,384 entries flushed every second.
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::ManualClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::new(MemoryStore::new(), ManualClock::starting_now());
    /// assert!(tokens.scopes().iter().any(|s| s.scope.as_str() == "write:webhooks"));
    /// ```
    pub fn new(store: impl ApiTokenStore, clock: impl Clock) -> Self {
        Self::builder(store, clock).build()
    }

    /// A builder, to change the catalogue, allow tokens without expiry, or
    /// size the usage buffer (see [`ApiTokensBuilder`]).
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock).build();
    /// assert!(!tokens.scopes().is_empty());
    /// ```
    pub fn builder(store: impl ApiTokenStore, clock: impl Clock) -> ApiTokensBuilder {
        ApiTokensBuilder::new(Arc::new(store), Arc::new(clock))
    }

    /// The scopes a token may be created with: by default
    /// `read:connections`, `write:connections`, `read:consent`,
    /// `write:consent`, `read:records`, `write:sync`, `read:export`,
    /// `read:webhooks`, `write:webhooks`, `read:audit`, plus what the host
    /// added with [`ApiTokensBuilder::scope`].
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let names: Vec<&str> = tokens.scopes().iter().map(|s| s.scope.as_str()).collect();
    /// assert!(names.contains(&"read:connections") && names.contains(&"write:webhooks"));
    /// ```
    pub fn scopes(&self) -> &[ScopeInfo] {
        &self.inner.catalogue
    }

    /// Creates a token for `owner` and returns its metadata and the token,
    /// which is shown once: only its SHA-256 is stored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a name that is empty, blank, longer than
    /// [`MAX_NAME_LEN`] bytes or has a control character; no scopes or a
    /// scope not in the catalogue; no expiry when one is required; an
    /// expiry not in the future. [`Error::Random`], or a store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::store::MemoryStore;
    /// use consentry::{ErrorKind, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let scopes = [Scope::new("read:export")?];
    /// let week = Some(SystemTime::now() + Duration::from_secs(7 * 86_400));
    /// let (info, token) = tokens.create(&alice, "backup script", &scopes, week).await?;
    /// assert_eq!(token.expose_secret().len(), 53);
    /// assert!(!format!("{info:?}").contains(token.expose_secret()));
    /// // Expiry is required, scopes come from the catalogue:
    /// assert!(tokens.create(&alice, "x", &scopes, None).await.is_err());
    /// let unknown = [Scope::new("delete:everything")?];
    /// let err = tokens.create(&alice, "x", &unknown, week).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn create(
        &self,
        owner: &UserId,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<SystemTime>,
    ) -> Result<(ApiTokenInfo, SecretString)> {
        let result = self.create_unaudited(owner, name, scopes, expires_at).await;
        let id = result.as_ref().ok().map(|(info, _)| info.id.clone());
        self.audit("api_token.created", owner, id.as_ref(), &result)
            .await;
        result
    }

    async fn create_unaudited(
        &self,
        owner: &UserId,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<SystemTime>,
    ) -> Result<(ApiTokenInfo, SecretString)> {
        let name = check_name(name)?;
        if scopes.is_empty() {
            return Err(Error::invalid("API token scopes", "at least one is needed"));
        }
        if let Some(unknown) = scopes
            .iter()
            .find(|s| !self.inner.catalogue.iter().any(|c| c.scope == **s))
        {
            return Err(Error::invalid(
                "API token scopes",
                format!("`{unknown}` is not in the catalogue"),
            ));
        }
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let now = self.inner.clock.now();
        match expires_at {
            None if self.inner.require_expiry => {
                return Err(Error::invalid(
                    "API token expiry",
                    "is required (the host has not allowed tokens without one)",
                ));
            }
            Some(t) if t <= now => {
                return Err(Error::invalid("API token expiry", "is not in the future"));
            }
            _ => {}
        }
        let token = format::generate()?;
        let info = ApiTokenInfo::new(
            ApiTokenId::generate()?,
            owner.clone(),
            name,
            scopes,
            now,
            expires_at,
        );
        let hash = token_hash(token.expose_secret());
        self.inner
            .store
            .insert_api_token(StoredApiToken::new(hash, info.clone()))
            .await?;
        Ok((info, token))
    }

    /// Checks `token` and that it carries every scope in `required`;
    /// returns its metadata. The usage log records the use under the
    /// required scopes' names (see [`ApiTokens::verify_for`]).
    ///
    /// Malformed tokens and bad checksums are refused before the store is
    /// consulted; the rest costs one point read by the token's SHA-256,
    /// and the stored hash is compared in constant time.
    ///
    /// # Errors
    /// [`Error::InvalidApiToken`] (kind `Unauthorized`, 401) naming why;
    /// [`Error::InsufficientScope`] naming the missing scopes; a store
    /// error.
    ///
    /// ```
    /// use consentry::api_token::{ApiTokenRejection, ApiTokens};
    /// use consentry::clock::{Clock, ManualClock};
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Error, Scope, UserId};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = ManualClock::starting_now();
    /// let tokens = ApiTokens::new(MemoryStore::new(), clock.clone());
    /// let read = Scope::new("read:records")?;
    /// let hour = clock.now() + Duration::from_secs(3600);
    /// let (_, token) = tokens.create(&UserId::new("bob")?, "bot", &[read.clone()], Some(hour)).await?;
    /// assert!(tokens.verify(token.expose_secret(), &[read.clone()]).await.is_ok());
    /// clock.advance(Duration::from_secs(3600));
    /// let err = tokens.verify(token.expose_secret(), &[read]).await.unwrap_err();
    /// assert!(matches!(err, Error::InvalidApiToken { reason: ApiTokenRejection::Expired }));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify(&self, token: &str, required: &[Scope]) -> Result<ApiTokenInfo> {
        self.check(token, required, None).await
    }

    /// [`ApiTokens::verify`], recording `operation` (the host's name for
    /// what the request does, such as `GET /v1/connections`) in the usage
    /// log.
    ///
    /// # Errors
    /// As [`ApiTokens::verify`]; [`Error::InvalidInput`] for an operation
    /// name that is empty, longer than
    /// [`MAX_OPERATION_LEN`](crate::store::MAX_OPERATION_LEN) bytes or has
    /// a control character (checked first).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let read = Scope::new("read:connections")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// let (info, token) = tokens.create(&alice, "cli", &[read.clone()], soon).await?;
    /// tokens.verify_for(token.expose_secret(), &[read], "GET /v1/connections").await?;
    /// tokens.flush().await?;
    /// assert_eq!(tokens.usage(&alice, &info.id, 1).await?[0].operation, "GET /v1/connections");
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify_for(
        &self,
        token: &str,
        required: &[Scope],
        operation: &str,
    ) -> Result<ApiTokenInfo> {
        crate::ids::check_common(
            "API token operation",
            operation,
            crate::store::MAX_OPERATION_LEN,
        )?;
        self.check(token, required, Some(operation)).await
    }

    async fn check(
        &self,
        token: &str,
        required: &[Scope],
        operation: Option<&str>,
    ) -> Result<ApiTokenInfo> {
        let refuse = |reason| Error::InvalidApiToken { reason };
        format::check(token).map_err(refuse)?;
        let hash = token_hash(token);
        let stored = self
            .inner
            .store
            .api_token_by_hash(&hash)
            .await?
            .ok_or(refuse(ApiTokenRejection::Unknown))?;
        if !crate::secret::constant_time_eq(&stored.hash, &hash) {
            return Err(refuse(ApiTokenRejection::Unknown));
        }
        let info = stored.info;
        let now = self.inner.clock.now();
        let missing: Vec<Scope> = required
            .iter()
            .filter(|r| !info.scopes.contains(r))
            .cloned()
            .collect();
        let (outcome, result) = if info.revoked_at.is_some() {
            (
                UsageOutcome::Revoked,
                Err(refuse(ApiTokenRejection::Revoked)),
            )
        } else if info.expires_at.is_some_and(|t| t <= now) {
            (
                UsageOutcome::Expired,
                Err(refuse(ApiTokenRejection::Expired)),
            )
        } else if !info.active {
            (
                UsageOutcome::Inactive,
                Err(refuse(ApiTokenRejection::Inactive)),
            )
        } else if !missing.is_empty() {
            (
                UsageOutcome::InsufficientScope,
                Err(Error::InsufficientScope { missing }),
            )
        } else {
            (UsageOutcome::Allowed, Ok(()))
        };
        let operation = match operation {
            Some(op) => Cow::Borrowed(op),
            None => operation_name(required),
        };
        self.log(&info.id, now, &operation, outcome).await;
        result.map(|()| info)
    }

    async fn log(
        &self,
        token: &ApiTokenId,
        at: SystemTime,
        operation: &str,
        outcome: UsageOutcome,
    ) {
        let inner = &self.inner;
        let spawn = || match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(Arc::clone(&inner.usage).drain(Arc::downgrade(&inner.store)));
                true
            }
            Err(_) => false,
        };
        inner
            .usage
            .push(token, at, operation, outcome, inner.store.as_ref(), spawn)
            .await;
    }

    /// The tokens of `owner`, oldest first.
    ///
    /// # Errors
    /// A store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// tokens.create(&alice, "one", &[Scope::new("read:audit")?], soon).await?;
    /// assert_eq!(tokens.list(&alice).await?.len(), 1);
    /// assert!(tokens.list(&UserId::new("bob")?).await?.is_empty());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn list(&self, owner: &UserId) -> Result<Vec<ApiTokenInfo>> {
        self.inner.store.list_api_tokens(owner).await
    }

    async fn update(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        update: ApiTokenUpdate,
    ) -> Result<ApiTokenInfo> {
        let action = audit::update_action(&update);
        let result = self
            .inner
            .store
            .update_api_token(owner, id, update)
            .await
            .and_then(|t| t.ok_or(Error::NotFound { what: "API token" }));
        self.audit(action, owner, Some(id), &result).await;
        result
    }

    /// Renames token `id` of `owner`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `owner` has no such token (another user's
    /// token included); [`Error::InvalidInput`] for a bad name (as in
    /// [`ApiTokens::create`]); a store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::{ErrorKind, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// let (info, _) = tokens.create(&alice, "old", &[Scope::new("read:audit")?], soon).await?;
    /// assert_eq!(tokens.rename(&alice, &info.id, "new").await?.name, "new");
    /// let err = tokens.rename(&UserId::new("mallory")?, &info.id, "mine").await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn rename(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        name: &str,
    ) -> Result<ApiTokenInfo> {
        let name = check_name(name)?;
        self.update(owner, id, ApiTokenUpdate::Rename(name)).await
    }

    /// Pauses (`false`) or resumes (`true`) token `id` of `owner`. A paused
    /// token is refused as [`ApiTokenRejection::Inactive`]. Resuming does
    /// not undo a revocation.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `owner` has no such token; a store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// let (info, token) = tokens.create(&alice, "t", &[Scope::new("read:audit")?], soon).await?;
    /// tokens.set_active(&alice, &info.id, false).await?;
    /// assert!(tokens.verify(token.expose_secret(), &[]).await.is_err());
    /// tokens.set_active(&alice, &info.id, true).await?;
    /// assert!(tokens.verify(token.expose_secret(), &[]).await.is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_active(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        active: bool,
    ) -> Result<ApiTokenInfo> {
        self.update(owner, id, ApiTokenUpdate::SetActive(active))
            .await
    }

    /// Revokes token `id` of `owner`, for good. Revoking twice keeps the
    /// first revocation time.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `owner` has no such token; a store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// let (info, _) = tokens.create(&alice, "t", &[Scope::new("read:audit")?], soon).await?;
    /// let revoked = tokens.revoke(&alice, &info.id).await?;
    /// assert!(revoked.revoked_at.is_some());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn revoke(&self, owner: &UserId, id: &ApiTokenId) -> Result<ApiTokenInfo> {
        let now = self.inner.clock.now();
        self.update(owner, id, ApiTokenUpdate::Revoke(now)).await
    }

    /// The newest `limit` (at most [`MAX_USAGE_LIMIT`]) usage entries of
    /// token `id` of `owner`, newest first, as of the last flush.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `owner` has no such token; a store error.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::store::{MemoryStore, UsageOutcome};
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// let alice = UserId::new("alice")?;
    /// let read = Scope::new("read:audit")?;
    /// let soon = Some(SystemTime::now() + Duration::from_secs(60));
    /// let (info, token) = tokens.create(&alice, "t", &[read.clone()], soon).await?;
    /// tokens.verify(token.expose_secret(), &[read]).await?;
    /// tokens.flush().await?;
    /// let log = tokens.usage(&alice, &info.id, 10).await?;
    /// assert_eq!((log[0].operation.as_str(), log[0].outcome), ("read:audit", UsageOutcome::Allowed));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn usage(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        limit: usize,
    ) -> Result<Vec<ApiTokenUsage>> {
        self.inner
            .store
            .api_token_usage(owner, id, limit.min(MAX_USAGE_LIMIT))
            .await?
            .ok_or(Error::NotFound { what: "API token" })
    }

    /// Writes the buffered usage entries now, then waits until the batches
    /// the background task was already writing are written. Call it before
    /// shutting down; entries still buffered when the last handle is
    /// dropped are lost.
    ///
    /// # Errors
    /// A store error; the entries stay buffered for the next try.
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// tokens.flush().await?; // nothing buffered: nothing written
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.inner.usage.flush(self.inner.store.as_ref()).await
    }

    /// How many usage entries were lost because the store failed while
    /// they were written in the background (they are not retried).
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
    /// assert_eq!(tokens.usage_lost(), 0);
    /// ```
    pub fn usage_lost(&self) -> u64 {
        self.inner.usage.lost()
    }
}

/// The usage-log operation of a plain `verify`: the required scopes.
fn operation_name(required: &[Scope]) -> Cow<'_, str> {
    match required {
        [] => Cow::Borrowed("verify"),
        // The usual case costs no allocation.
        [one] if one.as_str().len() < crate::store::MAX_OPERATION_LEN => {
            Cow::Borrowed(one.as_str())
        }
        _ => {
            let mut name = String::new();
            for s in required {
                if name.len() + s.as_str().len() + 1 > crate::store::MAX_OPERATION_LEN {
                    break;
                }
                if !name.is_empty() {
                    name.push(' ');
                }
                name.push_str(s.as_str());
            }
            if name.is_empty() {
                Cow::Borrowed("verify")
            } else {
                Cow::Owned(name)
            }
        }
    }
}
