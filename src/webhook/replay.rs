//! [`ReplayGuard`]: refuse a delivery whose id was already received,
//! backed by a [`ReplayStore`] so every process of the receiver shares it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{VerifyOptions, WebhookError};
use crate::error::{Error, Result};
use crate::store::{MAX_REPLAY_SCOPE_LEN, ReplayStore};

/// Remembers delivery ids for a while and refuses a second delivery with
/// the same id ([`WebhookError::Replayed`]).
///
/// Use it *after* a verifier accepted the request, keyed by the provider's
/// delivery id: `standard::delivery_id` (signed, so authentic),
/// `github::delivery_id`, `shopify::delivery_id`, or Stripe's event id from
/// the verified body. Keep entries at least as long as the verifier's
/// timestamp tolerance (the default TTL is twice the default tolerance,
/// 10 minutes): an older replay is refused by the timestamp check anyway.
/// GitHub and Shopify sign no timestamp, so give their guard a long TTL and
/// use [`check_with_body`](Self::check_with_body), because their delivery
/// ids are not signed.
///
/// Answer a `Replayed` delivery with `2xx` and do not process it: it is
/// usually the sender retrying a delivery it could not confirm.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::{Error, store::MemoryStore};
/// use consentry::webhook::{ReplayGuard, WebhookError};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let guard = ReplayGuard::new(MemoryStore::new(), "clerk")?;
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// guard.check("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now).await?;
/// let again = guard.check("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now).await.unwrap_err();
/// assert!(matches!(again, Error::Webhook(WebhookError::Replayed)));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct ReplayGuard {
    store: Arc<dyn ReplayStore>,
    scope: String,
    ttl: Duration,
}

impl fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("scope", &self.scope)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ReplayGuard {
    /// A guard over `store` for one sender (`scope`, such as `"stripe"` or
    /// `"clerk"`), keeping ids for twice the default tolerance.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty scope or one over 64 bytes.
    ///
    /// ```
    /// use consentry::{store::MemoryStore, webhook::ReplayGuard};
    /// let guard = ReplayGuard::new(MemoryStore::new(), "stripe")?;
    /// assert_eq!(guard.ttl(), std::time::Duration::from_secs(600)); // twice the default tolerance
    /// assert!(ReplayGuard::new(MemoryStore::new(), "").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(store: impl ReplayStore, scope: impl Into<String>) -> Result<Self> {
        let scope = scope.into();
        if scope.is_empty() || scope.len() > MAX_REPLAY_SCOPE_LEN {
            return Err(Error::invalid(
                "replay guard scope",
                "must be 1 to 64 bytes",
            ));
        }
        Ok(Self {
            store: Arc::new(store),
            scope,
            ttl: VerifyOptions::DEFAULT_TOLERANCE * 2,
        })
    }

    /// Keeps ids for `ttl`, at least the default tolerance (5 minutes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::{store::MemoryStore, webhook::ReplayGuard};
    /// let guard = ReplayGuard::new(MemoryStore::new(), "github")?.with_ttl(Duration::from_secs(7 * 86_400));
    /// assert_eq!(guard.ttl(), Duration::from_secs(7 * 86_400));
    /// let short = ReplayGuard::new(MemoryStore::new(), "x")?.with_ttl(Duration::from_secs(1));
    /// assert_eq!(short.ttl(), Duration::from_secs(300));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(VerifyOptions::DEFAULT_TOLERANCE);
        self
    }

    /// How long ids are kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::{store::MemoryStore, webhook::ReplayGuard};
    /// let guard = ReplayGuard::new(MemoryStore::new(), "clerk")?.with_ttl(Duration::from_secs(3600));
    /// assert_eq!(guard.ttl(), Duration::from_secs(3600));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records `delivery_id` as received at `now`.
    ///
    /// # Errors
    /// [`WebhookError::Replayed`] if it was already received within the
    /// TTL; [`Error::InvalidInput`] for an empty id or one over 256 bytes;
    /// storage errors.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::{store::MemoryStore, webhook::ReplayGuard};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let guard = ReplayGuard::new(MemoryStore::new(), "clerk")?;
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// guard.check("msg_1", now).await?;
    /// assert!(guard.check("msg_1", now + Duration::from_secs(60)).await.is_err()); // a replay
    /// guard.check("msg_2", now).await?; // another delivery
    /// assert!(guard.check("", now).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn check(&self, delivery_id: &str, now: SystemTime) -> Result<()> {
        let expires = now.checked_add(self.ttl).unwrap_or(now);
        if self
            .store
            .check_and_insert(&self.scope, delivery_id, expires, now)
            .await?
        {
            Ok(())
        } else {
            Err(WebhookError::Replayed.into())
        }
    }

    /// Like [`check`](Self::check), and also refuses a body already
    /// received (under any id): for schemes whose delivery id is not
    /// signed (GitHub, Shopify), where a replay may come with a new id.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use consentry::store::MemoryStore;
    /// use consentry::webhook::ReplayGuard;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let guard = ReplayGuard::new(MemoryStore::new(), "github")?;
    /// guard.check_with_body("id-1", b"{\"a\":1}", UNIX_EPOCH).await?;
    /// assert!(guard.check_with_body("id-2", b"{\"a\":1}", UNIX_EPOCH).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn check_with_body(
        &self,
        delivery_id: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<()> {
        let digest = Sha256::digest(body);
        let mut key = String::with_capacity(7 + 64);
        key.push_str("sha256:");
        key.push_str(&super::common::hex(&digest));
        let id_new = self.check(delivery_id, now).await;
        let body_new = self.check(&key, now).await;
        id_new.and(body_new)
    }

    /// Deletes the entries expired at `now`; returns how many. Run it from
    /// a maintenance job.
    ///
    /// # Errors
    /// Storage errors.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::{store::MemoryStore, webhook::ReplayGuard};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let guard = ReplayGuard::new(MemoryStore::new(), "svix")?;
    /// guard.check("msg_1", UNIX_EPOCH).await?;
    /// assert_eq!(guard.purge(UNIX_EPOCH + guard.ttl()).await?, 1);
    /// guard.check("msg_1", UNIX_EPOCH + guard.ttl()).await?; // forgotten
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn purge(&self, now: SystemTime) -> Result<u64> {
        self.store.purge_replay_entries(now).await
    }
}
