//! [`RequestContext`]: who is asking and from where, set by the host for
//! the task that serves a request.

use std::future::Future;
use std::net::IpAddr;

use super::event::{AuditActor, clean};

/// The longest user agent kept (longer ones are cut).
///
/// ```
/// use consentry::audit::{MAX_USER_AGENT_LEN, RequestContext};
/// let ctx = RequestContext::new().user_agent("a".repeat(2 * MAX_USER_AGENT_LEN));
/// assert_eq!(ctx.user_agent.map(|ua| ua.len()), Some(MAX_USER_AGENT_LEN));
/// ```
pub const MAX_USER_AGENT_LEN: usize = 512;
/// The longest request id kept (longer ones are cut).
///
/// ```
/// use consentry::audit::{MAX_REQUEST_ID_LEN, RequestContext};
/// let ctx = RequestContext::new().request_id("r".repeat(2 * MAX_REQUEST_ID_LEN));
/// assert_eq!(ctx.request_id.map(|id| id.len()), Some(MAX_REQUEST_ID_LEN));
/// ```
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The request an operation serves: actor, client IP, user agent and
/// request id. The host sets it around the future that handles a request
/// ([`RequestContext::scope`]); every audit entry written inside carries
/// it, with no extra argument on any consentry call.
///
/// Values are the host's: consentry cuts them to bounded lengths and drops
/// control characters, nothing more.
///
/// ```
/// use consentry::audit::{AuditActor, RequestContext};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = RequestContext::new()
///     .actor(AuditActor::User("alice".parse()?))
///     .ip("203.0.113.7".parse().unwrap())
///     .user_agent("Mozilla/5.0")
///     .request_id("req-42");
/// let seen = ctx.scope(async { RequestContext::current() }).await;
/// assert_eq!(seen.and_then(|c| c.request_id), Some("req-42".to_owned()));
/// assert!(RequestContext::current().is_none()); // only inside the scope
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// Who is acting, when the host knows better than consentry's default
    /// (the subject user for user operations, `System` for background work).
    pub actor: Option<AuditActor>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The host's request id (for correlating with its own logs).
    pub request_id: Option<String>,
}

impl RequestContext {
    /// An empty context.
    ///
    /// ```
    /// assert!(consentry::audit::RequestContext::new().ip.is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the actor.
    ///
    /// ```
    /// use consentry::audit::{AuditActor, RequestContext};
    /// let ctx = RequestContext::new().actor(AuditActor::Service("billing".into()));
    /// assert!(ctx.actor.is_some());
    /// ```
    #[must_use]
    pub fn actor(mut self, actor: AuditActor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets the client's IP address.
    ///
    /// ```
    /// let ctx = consentry::audit::RequestContext::new().ip([127, 0, 0, 1].into());
    /// assert_eq!(ctx.ip.map(|ip| ip.to_string()), Some("127.0.0.1".to_owned()));
    /// ```
    #[must_use]
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent (cut to [`MAX_USER_AGENT_LEN`] bytes, control
    /// characters dropped).
    ///
    /// ```
    /// let ctx = consentry::audit::RequestContext::new().user_agent("curl/8\r\n");
    /// assert_eq!(ctx.user_agent.as_deref(), Some("curl/8"));
    /// ```
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl AsRef<str>) -> Self {
        self.user_agent = Some(clean(user_agent.as_ref(), MAX_USER_AGENT_LEN));
        self
    }

    /// Sets the request id (cut to [`MAX_REQUEST_ID_LEN`] bytes, control
    /// characters dropped).
    ///
    /// ```
    /// let ctx = consentry::audit::RequestContext::new().request_id("r".repeat(1000));
    /// assert_eq!(ctx.request_id.map(|r| r.len()), Some(128));
    /// ```
    #[must_use]
    pub fn request_id(mut self, request_id: impl AsRef<str>) -> Self {
        self.request_id = Some(clean(request_id.as_ref(), MAX_REQUEST_ID_LEN));
        self
    }

    /// Runs `future` with this context as the current one. Tasks that
    /// `future` spawns do not inherit it.
    ///
    /// ```
    /// use consentry::audit::RequestContext;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let id = RequestContext::new().request_id("r1")
    ///     .scope(async { RequestContext::current().and_then(|c| c.request_id) })
    ///     .await;
    /// assert_eq!(id.as_deref(), Some("r1"));
    /// # });
    /// ```
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CONTEXT.scope(self, future).await
    }

    /// The context of the current task, if the host set one.
    ///
    /// ```
    /// assert!(consentry::audit::RequestContext::current().is_none());
    /// ```
    pub fn current() -> Option<Self> {
        CONTEXT.try_with(Clone::clone).ok()
    }
}
