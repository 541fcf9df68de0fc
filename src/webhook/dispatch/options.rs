//! [`DispatcherOptions`]: the retry schedule, limits and egress policy.

use std::time::Duration;

use crate::webhook::ssrf::{IpNet, Policy};

/// Most entries in a retry schedule.
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::{DispatcherOptions, MAX_SCHEDULE_LEN};
/// let long = DispatcherOptions::default().retry_schedule(vec![Duration::from_secs(1); 100]);
/// assert_eq!(long.max_attempts(), MAX_SCHEDULE_LEN as u32 + 1);
/// ```
pub const MAX_SCHEDULE_LEN: usize = 32;
/// Longest single delay in a retry schedule (7 days).
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::MAX_RETRY_DELAY;
/// assert_eq!(MAX_RETRY_DELAY, Duration::from_secs(7 * 24 * 3600));
/// ```
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a [`Dispatcher`](super::Dispatcher) delivers. Start from `Default`
/// and change what you need; out-of-range values are clamped to the
/// documented limits.
///
/// | option | default |
/// |---|---|
/// | retry schedule | immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h |
/// | jitter | ±20 % |
/// | timeout | 15 s |
/// | payload limit | 256 KiB |
/// | disable an endpoint after | 5 days of exhausted messages without a success |
/// | idempotency window | 24 h |
/// | secret rotation grace | 24 h |
/// | plain `http://` and loopback | refused |
/// | concurrency | 64 requests in flight per worker |
///
/// ```
/// use std::time::Duration;
/// use consentry::webhook::DispatcherOptions;
///
/// let options = DispatcherOptions::default()
///     .retry_schedule([Duration::from_secs(1), Duration::from_secs(10)])
///     .jitter(0.0)
///     .timeout(Duration::from_secs(5));
/// assert_eq!(options.max_attempts(), 3);
/// assert_eq!(DispatcherOptions::default().max_attempts(), 8);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatcherOptions {
    pub(crate) schedule: Vec<Duration>,
    pub(crate) jitter: f64,
    pub(crate) overload_penalty: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) disable_after: Option<Duration>,
    pub(crate) idempotency_window: Duration,
    pub(crate) secret_grace: Duration,
    pub(crate) allow_insecure_loopback: bool,
    pub(crate) allowed_networks: Vec<IpNet>,
    pub(crate) poll_interval: Duration,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) lease: Option<Duration>,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            schedule: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            overload_penalty: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            max_payload: 256 * 1024,
            disable_after: Some(Duration::from_secs(5 * 24 * 3600)),
            idempotency_window: Duration::from_secs(24 * 3600),
            secret_grace: Duration::from_secs(24 * 3600),
            allow_insecure_loopback: false,
            allowed_networks: Vec::new(),
            poll_interval: Duration::from_secs(1),
            concurrency: 64,
            batch: 64,
            lease: None,
        }
    }
}

impl DispatcherOptions {
    /// The waits between attempts: after the first attempt fails, the
    /// first entry, and so on; when the schedule is used up the message is
    /// exhausted for that endpoint. At most 32 entries of at most 7 days
    /// (longer ones are shortened, extra ones dropped). An empty schedule
    /// means one attempt only.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let once = DispatcherOptions::default().retry_schedule([]);
    /// assert_eq!(once.max_attempts(), 1);
    /// ```
    #[must_use]
    pub fn retry_schedule(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.schedule = delays
            .into_iter()
            .take(MAX_SCHEDULE_LEN)
            .map(|d| d.min(MAX_RETRY_DELAY))
            .collect();
        self
    }

    /// The relative jitter applied to each delay: a delay `d` becomes a
    /// uniform choice in `[d·(1−j), d·(1+j)]`. Default 0.2, clamped to
    /// `0.0..=0.5`.
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().jitter(3.0);
    /// assert!(format!("{o:?}").contains("jitter: 0.5"));
    /// ```
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 0.5)
        } else {
            0.0
        };
        self
    }

    /// The least wait after a timeout or a `429`; default 60 s, at most
    /// 1 h.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().overload_penalty(Duration::from_secs(120));
    /// assert!(format!("{o:?}").contains("overload_penalty: 120s"));
    /// ```
    #[must_use]
    pub fn overload_penalty(mut self, penalty: Duration) -> Self {
        self.overload_penalty = penalty.min(Duration::from_secs(3600));
        self
    }

    /// How long one attempt may take, response included; default 15 s,
    /// from 1 ms to 5 min.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().timeout(Duration::from_secs(3_600));
    /// assert!(format!("{o:?}").contains("timeout: 300s"));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(300));
        self
    }

    /// The largest payload [`publish`](super::Dispatcher::publish)
    /// accepts, in bytes; default 256 KiB, at most 16 MiB.
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().max_payload(1024);
    /// assert!(format!("{o:?}").contains("max_payload: 1024"));
    /// ```
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes.min(16 * 1024 * 1024);
        self
    }

    /// Disable an endpoint whose messages keep exhausting their retries
    /// for this long with no success in between (Svix's rule: the clock
    /// starts at the first exhaustion, a success resets it, and it is
    /// forgiven after twice the period); default 5 days; `None` never
    /// disables.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let never = DispatcherOptions::default().disable_after(None);
    /// assert!(format!("{never:?}").contains("disable_after: None"));
    /// ```
    #[must_use]
    pub fn disable_after(mut self, period: Option<Duration>) -> Self {
        self.disable_after = period;
        self
    }

    /// How long a repeated idempotency key returns the first message;
    /// default 24 h, at most 7 days.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().idempotency_window(Duration::from_secs(3_600));
    /// assert!(format!("{o:?}").contains("idempotency_window: 3600s"));
    /// ```
    #[must_use]
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window.min(MAX_RETRY_DELAY);
        self
    }

    /// How long a rotated-out secret keeps signing next to the new one;
    /// default 24 h, at most 7 days.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().secret_grace(Duration::ZERO);
    /// assert!(format!("{o:?}").contains("secret_grace: 0ns"));
    /// ```
    #[must_use]
    pub fn secret_grace(mut self, grace: Duration) -> Self {
        self.secret_grace = grace.min(MAX_RETRY_DELAY);
        self
    }

    /// Accept `http://` URLs and loopback destinations (`127.0.0.0/8`,
    /// `::1`, `localhost`): for tests and local development only. Off by
    /// default.
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let dev = DispatcherOptions::default().allow_insecure_loopback(true);
    /// assert!(dev.egress_policy().check("127.0.0.1".parse()?).is_ok());
    /// assert!(DispatcherOptions::default().egress_policy().check("127.0.0.1".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback = allow;
        self
    }

    /// Also allow destinations in `net`, even inside a blocked range (a
    /// service on the host's private network). At most 64 networks.
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().allow_network("10.20.0.0/16".parse()?);
    /// assert!(o.egress_policy().check("10.20.3.4".parse()?).is_ok());
    /// assert!(o.egress_policy().check("10.21.3.4".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allow_network(mut self, net: IpNet) -> Self {
        if self.allowed_networks.len() < 64 {
            self.allowed_networks.push(net);
        }
        self
    }

    /// How long an idle worker waits before looking for due deliveries
    /// again (a `publish` in the same process wakes it at once); default
    /// 1 s, from 1 ms to 60 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().poll_interval(Duration::ZERO);
    /// assert!(format!("{o:?}").contains("poll_interval: 1ms"));
    /// ```
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }

    /// How many requests one worker keeps in flight; default 64, from 1 to
    /// 1024.
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().concurrency(0);
    /// assert!(format!("{o:?}").contains("concurrency: 1"));
    /// ```
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.clamp(1, 1024);
        self.batch = self.batch.min(self.concurrency);
        self
    }

    /// How long a claimed delivery stays leased to its worker before
    /// another may take it over (after a crash); default twice the timeout
    /// plus 30 s, at least the timeout plus 1 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default();
    /// assert_eq!(o.lease_duration(), Duration::from_secs(60));
    /// let short = o.lease(Duration::ZERO);
    /// assert_eq!(short.lease_duration(), Duration::from_secs(16));
    /// ```
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The lease in effect.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// let o = DispatcherOptions::default().timeout(Duration::from_secs(10));
    /// assert_eq!(o.lease_duration(), Duration::from_secs(50)); // twice the timeout plus 30 s
    /// ```
    pub fn lease_duration(&self) -> Duration {
        let floor = self.timeout + Duration::from_secs(1);
        self.lease
            .unwrap_or(self.timeout * 2 + Duration::from_secs(30))
            .max(floor)
    }

    /// How many attempts a scheduled delivery gets: one plus the schedule's
    /// length.
    ///
    /// ```
    /// use std::time::Duration;
    /// use consentry::webhook::DispatcherOptions;
    /// assert_eq!(DispatcherOptions::default().retry_schedule([]).max_attempts(), 1);
    /// assert_eq!(DispatcherOptions::default().retry_schedule([Duration::from_secs(5)]).max_attempts(), 2);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(0) + 1
    }

    /// The address policy the default HTTP client enforces: the blocked
    /// ranges of [`ssrf`](crate::webhook::ssrf), minus the allowed
    /// networks, minus loopback with
    /// [`allow_insecure_loopback`](Self::allow_insecure_loopback).
    ///
    /// ```
    /// use consentry::webhook::DispatcherOptions;
    /// let policy = DispatcherOptions::default().allow_insecure_loopback(true).egress_policy();
    /// assert_eq!(policy.check("127.0.0.1".parse()?), Ok(()));
    /// assert!(DispatcherOptions::default().egress_policy().check("127.0.0.1".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn egress_policy(&self) -> Policy {
        let mut policy = Policy::new();
        for net in &self.allowed_networks {
            policy = policy.allow(*net);
        }
        if self.allow_insecure_loopback {
            for net in ["127.0.0.0/8", "::1/128"] {
                if let Ok(net) = net.parse() {
                    policy = policy.allow(net);
                }
            }
        }
        policy
    }
}
