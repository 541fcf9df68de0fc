//! [`ApiTokensBuilder`]: the catalogue, expiry policy and usage buffer of
//! an [`ApiTokens`] service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::scopes::{self, ScopeInfo};
use super::usage::{self, UsageLog};
use super::{ApiTokens, Inner};
use crate::clock::Clock;
use crate::error::Result;
use crate::store::ApiTokenStore;

/// Configures [`ApiTokens`]; from [`ApiTokens::builder`].
///
/// ```
/// use consentry::api_token::ApiTokens;
/// use consentry::clock::SystemClock;
/// use consentry::store::MemoryStore;
/// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock)
///     .scope("read:invoices", "Read invoices")?
///     .allow_no_expiry()
///     .usage_buffer(4096)
///     .build();
/// assert!(tokens.scopes().iter().any(|s| s.scope.as_str() == "read:invoices"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[must_use]
pub struct ApiTokensBuilder {
    store: Arc<dyn ApiTokenStore>,
    clock: Arc<dyn Clock>,
    catalogue: Vec<ScopeInfo>,
    require_expiry: bool,
    usage_capacity: usize,
    usage_interval: Duration,
    pub(super) audit: Option<crate::audit::AuditLog>,
}

impl fmt::Debug for ApiTokensBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokensBuilder")
            .field("scopes", &self.catalogue.len())
            .field("require_expiry", &self.require_expiry)
            .field("usage_capacity", &self.usage_capacity)
            .field("usage_flush_interval", &self.usage_interval)
            .finish_non_exhaustive()
    }
}

impl ApiTokensBuilder {
    pub(super) fn new(store: Arc<dyn ApiTokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            catalogue: scopes::defaults(),
            require_expiry: true,
            usage_capacity: usage::DEFAULT_CAPACITY,
            usage_interval: usage::DEFAULT_INTERVAL,
            audit: None,
        }
    }

    /// Adds a scope to the catalogue (or replaces the description of one
    /// already in it).
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) unless `name` is
    /// 1 to [`MAX_SCOPE_LEN`](super::MAX_SCOPE_LEN) bytes of `:`-separated,
    /// non-empty parts of lowercase ASCII letters, digits, `_`, `.` or `-`.
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let b = ApiTokens::builder(MemoryStore::new(), SystemClock);
    /// assert!(b.scope("Read:Invoices", "x").is_err());
    /// ```
    pub fn scope(mut self, name: &str, description: &str) -> Result<Self> {
        let scope = scopes::check_scope(name)?;
        let description = description.to_owned();
        match self.catalogue.iter_mut().find(|s| s.scope == scope) {
            Some(s) => s.description = description,
            None => self.catalogue.push(ScopeInfo { scope, description }),
        }
        Ok(self)
    }

    /// Starts from an empty catalogue instead of the defaults.
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock)
    ///     .without_default_scopes()
    ///     .scope("admin", "Everything")?
    ///     .build();
    /// assert_eq!(tokens.scopes().len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn without_default_scopes(mut self) -> Self {
        self.catalogue.clear();
        self
    }

    /// Lets [`ApiTokens::create`] make tokens without an expiry (by
    /// default an expiry is required).
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// use consentry::{Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock).allow_no_expiry().build();
    /// let (info, _) = tokens.create(&UserId::new("a")?, "forever", &[Scope::new("read:export")?], None).await?;
    /// assert_eq!(info.expires_at, None);
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn allow_no_expiry(mut self) -> Self {
        self.require_expiry = false;
        self
    }

    /// How many distinct usage entries are buffered before the call that
    /// fills the buffer writes them inline; 1 to 65,536, default 16,384.
    /// (Uses of one token for one operation with one outcome share an
    /// entry until it is written.)
    ///
    /// ```
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock).usage_buffer(0).build();
    /// assert!(format!("{tokens:?}").contains("usage_capacity: 1")); // clamped
    /// ```
    pub fn usage_buffer(mut self, capacity: usize) -> Self {
        self.usage_capacity = capacity.clamp(1, usage::MAX_CAPACITY);
        self
    }

    /// How long usage entries gather (and merge) in memory before the
    /// background task writes them; 1 ms to 60 s, default 1 s. Longer
    /// means fewer, larger writes (a busy token costs one row per
    /// interval); entries not yet written when the process dies are lost,
    /// so call [`ApiTokens::flush`] before shutting down.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::api_token::ApiTokens;
    /// use consentry::clock::SystemClock;
    /// use consentry::store::MemoryStore;
    /// let tokens = ApiTokens::builder(MemoryStore::new(), SystemClock)
    ///     .usage_flush_interval(Duration::from_secs(600))
    ///     .build();
    /// assert!(format!("{tokens:?}").contains("usage_flush_interval: 60s")); // clamped
    /// ```
    pub fn usage_flush_interval(mut self, interval: Duration) -> Self {
        self.usage_interval = interval.clamp(usage::MIN_INTERVAL, usage::MAX_INTERVAL);
        self
    }

    /// The service.
    pub fn build(self) -> ApiTokens {
        ApiTokens {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                catalogue: self.catalogue,
                require_expiry: self.require_expiry,
                usage: Arc::new(UsageLog::new(self.usage_capacity, self.usage_interval)),
                audit: self.audit,
            }),
        }
    }
}
