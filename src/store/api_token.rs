//! Storage for personal API tokens ([`ApiTokenStore`]): each token's
//! metadata under the SHA-256 of the token, and the usage log.
//!
//! A store never sees a token: [`ApiTokens`](crate::api_token::ApiTokens)
//! hands it the hash, and looks tokens up by it.

use std::fmt::{self, Debug};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::{ApiTokenId, Scope, UserId};

/// What is known about an API token: never the token, never its hash.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ApiTokenId, Scope, UserId};
/// use consentry::store::ApiTokenInfo;
/// let info = ApiTokenInfo::new(
///     ApiTokenId::new("tok_1")?,
///     UserId::new("alice")?,
///     "ci",
///     vec![Scope::new("read:connections")?],
///     SystemTime::UNIX_EPOCH,
///     None,
/// );
/// assert!(info.active && info.revoked_at.is_none() && info.last_used_at.is_none());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiTokenInfo {
    /// The token's id (public: shown in lists, used to rename or revoke).
    pub id: ApiTokenId,
    /// The user the token acts for.
    pub owner: UserId,
    /// The name its owner gave it.
    pub name: String,
    /// What it may do, sorted and without duplicates.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it stops working; `None` if it never expires.
    pub expires_at: Option<SystemTime>,
    /// When it was last accepted, as of the last flush of the usage log, to
    /// within [`LAST_USED_RESOLUTION`].
    pub last_used_at: Option<SystemTime>,
    /// Whether it is enabled (its owner may pause and resume it).
    pub active: bool,
    /// When it was revoked; revocation is final.
    pub revoked_at: Option<SystemTime>,
}

impl ApiTokenInfo {
    /// An active, never used, unrevoked token.
    pub fn new(
        id: ApiTokenId,
        owner: UserId,
        name: impl Into<String>,
        scopes: Vec<Scope>,
        created_at: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Self {
        Self {
            id,
            owner,
            name: name.into(),
            scopes,
            created_at,
            expires_at,
            last_used_at: None,
            active: true,
            revoked_at: None,
        }
    }
}

/// A token as stored: its metadata and the SHA-256 of the token.
///
/// `Debug` does not print the hash.
///
/// ```
/// use std::time::SystemTime;
/// use consentry::{ApiTokenId, UserId};
/// use consentry::store::{ApiTokenInfo, StoredApiToken};
/// let info = ApiTokenInfo::new(ApiTokenId::new("tok_1")?, UserId::new("a")?, "ci", vec![], SystemTime::UNIX_EPOCH, None);
/// let stored = StoredApiToken::new([7; 32], info);
/// assert!(!format!("{stored:?}").contains("7, 7"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredApiToken {
    /// SHA-256 of the whole token string.
    pub hash: [u8; 32],
    /// Everything else.
    pub info: ApiTokenInfo,
}

impl StoredApiToken {
    /// Pairs a hash with its token's metadata.
    pub fn new(hash: [u8; 32], info: ApiTokenInfo) -> Self {
        Self { hash, info }
    }
}

impl Debug for StoredApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredApiToken")
            .field("hash", &"[32 bytes]")
            .field("info", &self.info)
            .finish()
    }
}

/// A change to a stored token.
///
/// ```
/// use consentry::store::ApiTokenUpdate;
/// let u = ApiTokenUpdate::SetActive(false);
/// assert_eq!(u, ApiTokenUpdate::SetActive(false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiTokenUpdate {
    /// A new name (already validated).
    Rename(String),
    /// Pause (`false`) or resume (`true`) it.
    SetActive(bool),
    /// Revoke it at this time; a token revoked before keeps its first
    /// revocation time.
    Revoke(SystemTime),
}

/// How a use of a token ended.
///
/// ```
/// use consentry::store::UsageOutcome;
/// assert_eq!(UsageOutcome::Allowed.as_str(), "allowed");
/// assert_eq!(UsageOutcome::parse("expired"), Some(UsageOutcome::Expired));
/// assert_eq!(UsageOutcome::parse("nope"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsageOutcome {
    /// Accepted.
    Allowed,
    /// Valid, but it lacks a required scope.
    InsufficientScope,
    /// Refused: expired.
    Expired,
    /// Refused: revoked.
    Revoked,
    /// Refused: paused by its owner.
    Inactive,
}

impl UsageOutcome {
    /// Every outcome.
    const ALL: [Self; 5] = [
        Self::Allowed,
        Self::InsufficientScope,
        Self::Expired,
        Self::Revoked,
        Self::Inactive,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::InsufficientScope => "insufficient-scope",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Inactive => "inactive",
        }
    }

    /// The outcome named `s` (as by [`UsageOutcome::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// How far `last_used_at` lags at most: a store moves it forward only to a
/// use at least this much later than the stored one, so a busy token costs
/// one row write a minute, not one per request.
pub const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

/// The longest operation name in the usage log, in bytes.
pub const MAX_OPERATION_LEN: usize = 128;

/// One entry of a token's usage log: `count` uses of one token for one
/// operation with one outcome, from `first_at` to `at`. The buffer of
/// [`ApiTokens`](crate::api_token::ApiTokens) merges the identical uses
/// of one flush interval into one entry; a store keeps entries as given.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::ApiTokenId;
/// use consentry::store::{ApiTokenUsage, UsageOutcome};
/// let t0 = SystemTime::UNIX_EPOCH;
/// let mut u = ApiTokenUsage::new(ApiTokenId::new("tok_1")?, t0, "read:connections", UsageOutcome::Allowed);
/// assert_eq!((u.operation.as_str(), u.count, u.first_at), ("read:connections", 1, t0));
/// let later = ApiTokenUsage::new(ApiTokenId::new("tok_1")?, t0 + Duration::from_secs(1), "read:connections", UsageOutcome::Allowed);
/// assert!(u.merge(&later));
/// assert_eq!((u.count, u.first_at, u.at), (2, t0, t0 + Duration::from_secs(1)));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiTokenUsage {
    /// The token used.
    pub token: ApiTokenId,
    /// When (the last use, when the entry stands for several).
    pub at: SystemTime,
    /// What for (the host's operation name, or the scopes required).
    pub operation: String,
    /// How it ended.
    pub outcome: UsageOutcome,
    /// How many uses the entry stands for (at least 1).
    pub count: u64,
    /// The first of those uses (`at` when there was one).
    pub first_at: SystemTime,
}

impl ApiTokenUsage {
    /// An entry.
    pub fn new(
        token: ApiTokenId,
        at: SystemTime,
        operation: impl Into<String>,
        outcome: UsageOutcome,
    ) -> Self {
        Self {
            token,
            at,
            operation: operation.into(),
            outcome,
            count: 1,
            first_at: at,
        }
    }

    /// Whether `other` is a use of the same token for the same operation
    /// with the same outcome.
    pub fn same_kind(&self, other: &Self) -> bool {
        self.is_kind(&other.token, &other.operation, other.outcome)
    }

    /// Folds `other` into this entry if it is of the same kind (adding its
    /// count, widening the time span); returns whether it did.
    pub fn merge(&mut self, other: &Self) -> bool {
        if !self.same_kind(other) {
            return false;
        }
        self.add_uses(other.count.max(1), other.first_at, other.at);
        true
    }

    /// Whether this entry is of `token`'s uses for `operation` that ended
    /// with `outcome`.
    pub(crate) fn is_kind(
        &self,
        token: &ApiTokenId,
        operation: &str,
        outcome: UsageOutcome,
    ) -> bool {
        self.token == *token && self.outcome == outcome && self.operation == operation
    }

    /// Counts `count` more uses, from `first_at` to `at`.
    pub(crate) fn add_uses(&mut self, count: u64, first_at: SystemTime, at: SystemTime) {
        self.count = self.count.saturating_add(count);
        self.first_at = self.first_at.min(first_at);
        self.at = self.at.max(at);
    }
}

/// Personal API tokens and their usage log.
///
/// ```
/// use consentry::UserId;
/// use consentry::store::{ApiTokenStore, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// assert!(store.api_token_by_hash(&[0; 32]).await?.is_none());
/// assert!(store.list_api_tokens(&UserId::new("alice")?).await?.is_empty());
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ApiTokenStore: Debug + Send + Sync + 'static {
    /// Stores a new token.
    ///
    /// # Errors
    /// `Conflict` if its id or its hash is stored already.
    async fn insert_api_token(&self, token: StoredApiToken) -> Result<()>;

    /// The token whose hash is `hash`, if any: the hot path of every
    /// verification, one point read.
    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<StoredApiToken>>;

    /// The tokens of `owner`, oldest first (then by id).
    async fn list_api_tokens(&self, owner: &UserId) -> Result<Vec<ApiTokenInfo>>;

    /// Applies `update` to token `id` if `owner` owns it; returns the
    /// token as updated, or `None` if `owner` has no such token (another
    /// user's token is `None` too).
    async fn update_api_token(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        update: ApiTokenUpdate,
    ) -> Result<Option<ApiTokenInfo>>;

    /// Appends a batch of usage entries, in one transaction, and moves each
    /// token's `last_used_at` forward to its latest `Allowed` entry when
    /// that is at least [`LAST_USED_RESOLUTION`] later than the stored one
    /// (or none is stored); never backward. Entries of unknown tokens are
    /// kept too.
    async fn record_api_token_usage(&self, entries: Vec<ApiTokenUsage>) -> Result<()>;

    /// The newest `limit` usage entries of token `id`, newest first, or
    /// `None` if `owner` has no such token.
    async fn api_token_usage(
        &self,
        owner: &UserId,
        id: &ApiTokenId,
        limit: usize,
    ) -> Result<Option<Vec<ApiTokenUsage>>>;
}

/// The latest `Allowed` time per token in a usage batch.
pub(crate) fn last_uses(entries: &[ApiTokenUsage]) -> Vec<(&ApiTokenId, SystemTime)> {
    let mut latest: std::collections::BTreeMap<&ApiTokenId, SystemTime> =
        std::collections::BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.outcome == UsageOutcome::Allowed)
    {
        let t = latest.entry(&e.token).or_insert(e.at);
        if e.at > *t {
            *t = e.at;
        }
    }
    latest.into_iter().collect()
}

/// Checks an operation name (stores call this for every entry).
pub(crate) fn check_operation(operation: &str) -> Result<()> {
    crate::ids::check_common("API token operation", operation, MAX_OPERATION_LEN)
}

/// The error for a second token under one id or hash.
pub(crate) fn duplicate() -> Error {
    Error::Conflict {
        what: "API token",
        expected: 0,
        found: 1,
    }
}

/// Implements the trait for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: ApiTokenStore + ?Sized> ApiTokenStore for $($seg)::+<T> {
            async fn insert_api_token(&self, token: StoredApiToken) -> Result<()> {
                (**self).insert_api_token(token).await
            }
            async fn api_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<StoredApiToken>> {
                (**self).api_token_by_hash(hash).await
            }
            async fn list_api_tokens(&self, owner: &UserId) -> Result<Vec<ApiTokenInfo>> {
                (**self).list_api_tokens(owner).await
            }
            async fn update_api_token(&self, owner: &UserId, id: &ApiTokenId, update: ApiTokenUpdate) -> Result<Option<ApiTokenInfo>> {
                (**self).update_api_token(owner, id, update).await
            }
            async fn record_api_token_usage(&self, entries: Vec<ApiTokenUsage>) -> Result<()> {
                (**self).record_api_token_usage(entries).await
            }
            async fn api_token_usage(&self, owner: &UserId, id: &ApiTokenId, limit: usize) -> Result<Option<Vec<ApiTokenUsage>>> {
                (**self).api_token_usage(owner, id, limit).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
