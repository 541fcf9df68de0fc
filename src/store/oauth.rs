//! Storage for OAuth flows in progress ([`OAuthStateStore`]) and for
//! cross-process leases ([`LeaseStore`]).
//!
//! A pending authorization is stored under the SHA-256 of its `state`, never
//! the state itself, and holds nothing secret: the PKCE verifier and the
//! OIDC nonce are derived from the state and a keyring key when the callback
//! arrives, so reading the table does not let anyone redeem a code.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ConnectorId, Scope, UserId};
use crate::vault::KeyId;

/// An authorization that was started and not yet completed.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::{ConnectorId, UserId};
/// use consentry::store::PendingAuthorization;
/// use consentry::vault::KeyId;
/// let p = PendingAuthorization::new([7; 32], UserId::new("u1")?, ConnectorId::new("google")?,
///     "https://app.example/callback".into(), vec![], KeyId::new("k1")?,
///     SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH + Duration::from_secs(600));
/// assert_eq!(p.state_hash, [7; 32]);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// SHA-256 of the `state` parameter.
    pub state_hash: [u8; 32],
    /// Who started it; only they can complete it.
    pub user: UserId,
    /// At which connector.
    pub connector: ConnectorId,
    /// The exact redirect URI sent to the provider.
    pub redirect_uri: String,
    /// The scopes requested.
    pub scopes: Vec<Scope>,
    /// The keyring key the PKCE verifier and nonce are derived with.
    pub key_id: KeyId,
    /// When it started.
    pub created_at: SystemTime,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
}

impl PendingAuthorization {
    /// Builds a record (for the facade and store implementations).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use consentry::store::PendingAuthorization;
    /// use consentry::vault::KeyId;
    /// let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let p = PendingAuthorization::new([1; 32], "alice".parse()?, "google".parse()?,
    ///     "https://app.example/oauth/callback".into(), vec!["openid".parse()?], KeyId::new("k1")?,
    ///     start, start + Duration::from_secs(600));
    /// assert_eq!(p.expires_at.duration_since(p.created_at).ok(), Some(Duration::from_secs(600)));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state_hash: [u8; 32],
        user: UserId,
        connector: ConnectorId,
        redirect_uri: String,
        scopes: Vec<Scope>,
        key_id: KeyId,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            state_hash,
            user,
            connector,
            redirect_uri,
            scopes,
            key_id,
            created_at,
            expires_at,
        }
    }
}

/// Authorizations in progress.
///
/// ```
/// use consentry::store::OAuthStateStore;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::UserId;
/// # use consentry::store::{MemoryStore, PendingAuthorization};
/// # use consentry::vault::KeyId;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let alice = UserId::new("alice")?;
/// # let expires = UNIX_EPOCH + Duration::from_secs(600);
/// # let pending = |hash: u8| PendingAuthorization::new([hash; 32], alice.clone(), "google".parse().unwrap(),
/// #     "https://app.example/cb".into(), vec![], KeyId::new("k1").unwrap(), UNIX_EPOCH, expires);
/// store.put_pending_authorization(pending(1)).await?;
/// // On the callback: take it (single use), then check it has not expired.
/// let taken = store.take_pending_authorization(&[1; 32], &alice).await?.expect("pending");
/// assert_eq!(taken.redirect_uri, "https://app.example/cb");
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait OAuthStateStore: Debug + Send + Sync + 'static {
    /// Stores a pending authorization. Fails with `Conflict` if the state
    /// hash is already present.
    ///
    /// ```
    /// use consentry::Error;
    /// use consentry::store::OAuthStateStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::UserId;
    /// # use consentry::store::{MemoryStore, PendingAuthorization};
    /// # use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let alice = UserId::new("alice")?;
    /// # let expires = UNIX_EPOCH + Duration::from_secs(600);
    /// # let pending = |hash: u8| PendingAuthorization::new([hash; 32], alice.clone(), "google".parse().unwrap(),
    /// #     "https://app.example/cb".into(), vec![], KeyId::new("k1").unwrap(), UNIX_EPOCH, expires);
    /// store.put_pending_authorization(pending(1)).await?;
    /// let twice = store.put_pending_authorization(pending(1)).await;
    /// assert!(matches!(twice, Err(Error::Conflict { .. })));
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn put_pending_authorization(&self, pending: PendingAuthorization) -> Result<()>;

    /// Removes and returns the pending authorization with `state_hash`, if
    /// it belongs to `user`; otherwise removes nothing and returns `None`.
    /// Atomic: of two concurrent calls, at most one gets it.
    ///
    /// ```
    /// use consentry::store::OAuthStateStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::UserId;
    /// # use consentry::store::{MemoryStore, PendingAuthorization};
    /// # use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let alice = UserId::new("alice")?;
    /// # let expires = UNIX_EPOCH + Duration::from_secs(600);
    /// # let pending = |hash: u8| PendingAuthorization::new([hash; 32], alice.clone(), "google".parse().unwrap(),
    /// #     "https://app.example/cb".into(), vec![], KeyId::new("k1").unwrap(), UNIX_EPOCH, expires);
    /// store.put_pending_authorization(pending(1)).await?;
    /// assert!(store.take_pending_authorization(&[1; 32], &"mallory".parse()?).await?.is_none());
    /// assert!(store.take_pending_authorization(&[1; 32], &alice).await?.is_some());
    /// assert!(store.take_pending_authorization(&[1; 32], &alice).await?.is_none()); // used
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn take_pending_authorization(
        &self,
        state_hash: &[u8; 32],
        user: &UserId,
    ) -> Result<Option<PendingAuthorization>>;

    /// Deletes authorizations that expired before `now`; returns how many.
    ///
    /// ```
    /// use consentry::store::OAuthStateStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::UserId;
    /// # use consentry::store::{MemoryStore, PendingAuthorization};
    /// # use consentry::vault::KeyId;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let alice = UserId::new("alice")?;
    /// # let expires = UNIX_EPOCH + Duration::from_secs(600);
    /// # let pending = |hash: u8| PendingAuthorization::new([hash; 32], alice.clone(), "google".parse().unwrap(),
    /// #     "https://app.example/cb".into(), vec![], KeyId::new("k1").unwrap(), UNIX_EPOCH, expires);
    /// store.put_pending_authorization(pending(1)).await?;
    /// assert_eq!(store.purge_pending_authorizations(expires).await?, 0); // not expired yet
    /// assert_eq!(store.purge_pending_authorizations(expires + Duration::from_secs(1)).await?, 1);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn purge_pending_authorizations(&self, now: SystemTime) -> Result<u64>;
}

/// Named leases with an owner token, for work that one process at a time
/// should do (refreshing one connection, running one job).
///
/// ```
/// use consentry::store::LeaseStore;
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use consentry::store::MemoryStore;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let store = MemoryStore::new();
/// # let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// # let minute = Duration::from_secs(60);
/// if store.acquire_lease("nightly-export", "worker-1", t + minute, t).await? {
///     // ... do the work, then:
///     store.release_lease("nightly-export", "worker-1").await?;
/// }
/// assert!(store.acquire_lease("nightly-export", "worker-2", t + minute, t).await?); // free again
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait LeaseStore: Debug + Send + Sync + 'static {
    /// Takes lease `name` for `owner` until `until`, if it is free, expired
    /// at `now`, or already held by `owner` (then it is extended). Returns
    /// whether `owner` holds it now.
    ///
    /// ```
    /// use consentry::store::LeaseStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// # let minute = Duration::from_secs(60);
    /// assert!(store.acquire_lease("job", "a", t + minute, t).await?);
    /// assert!(!store.acquire_lease("job", "b", t + minute, t).await?); // held by a
    /// assert!(store.acquire_lease("job", "a", t + 2 * minute, t).await?); // a extends it
    /// assert!(store.acquire_lease("job", "b", t + 3 * minute, t + 2 * minute).await?); // expired
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool>;

    /// Releases lease `name` only if `owner` holds it (compare-and-delete);
    /// returns whether it did.
    ///
    /// ```
    /// use consentry::store::LeaseStore;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use consentry::store::MemoryStore;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let store = MemoryStore::new();
    /// # let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// # let minute = Duration::from_secs(60);
    /// store.acquire_lease("job", "a", t + minute, t).await?;
    /// assert!(!store.release_lease("job", "b").await?); // not b's to release
    /// assert!(store.release_lease("job", "a").await?);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool>;
}

/// Implements the traits for smart pointers by forwarding every method.
macro_rules! forward {
    ($($($seg:ident)::+),*) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: OAuthStateStore + ?Sized> OAuthStateStore for $($seg)::+<T> {
            async fn put_pending_authorization(&self, pending: PendingAuthorization) -> Result<()> {
                (**self).put_pending_authorization(pending).await
            }
            async fn take_pending_authorization(&self, state_hash: &[u8; 32], user: &UserId) -> Result<Option<PendingAuthorization>> {
                (**self).take_pending_authorization(state_hash, user).await
            }
            async fn purge_pending_authorizations(&self, now: SystemTime) -> Result<u64> {
                (**self).purge_pending_authorizations(now).await
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: LeaseStore + ?Sized> LeaseStore for $($seg)::+<T> {
            async fn acquire_lease(&self, name: &str, owner: &str, until: SystemTime, now: SystemTime) -> Result<bool> {
                (**self).acquire_lease(name, owner, until, now).await
            }
            async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
                (**self).release_lease(name, owner).await
            }
        }
    )*};
}

forward!(std::sync::Arc, Box);
