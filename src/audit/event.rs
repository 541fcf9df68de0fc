//! What an audit entry says: [`AuditEvent`] (to record), [`AuditEntry`]
//! (as read back), [`AuditActor`] and [`Outcome`].

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::context::RequestContext;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::StoredAuditEntry;

/// The longest action name (`resource.action`).
///
/// ```
/// use consentry::audit::{AuditActor, AuditEvent, MAX_ACTION_LEN};
/// let long = format!("a.{}", "b".repeat(MAX_ACTION_LEN));
/// assert!(AuditEvent::new(&long, AuditActor::System).is_err());
/// ```
pub const MAX_ACTION_LEN: usize = 64;
/// The longest resource or actor text.
///
/// ```
/// use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery, MAX_RESOURCE_LEN};
/// use consentry::{store::MemoryStore, vault::Keyring};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
/// log.record_durable(AuditEvent::new("file.read", AuditActor::System)?.resource("f".repeat(1000))).await?;
/// let page = log.query(&AuditQuery::default()).await?;
/// assert_eq!(page.entries[0].resource.as_ref().map(String::len), Some(MAX_RESOURCE_LEN)); // cut
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const MAX_RESOURCE_LEN: usize = 256;
/// The largest details object, as JSON text.
///
/// ```
/// use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery, MAX_DETAILS_LEN};
/// use consentry::{store::MemoryStore, vault::Keyring};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
/// let event = AuditEvent::new("file.read", AuditActor::System)?.detail("note", "n".repeat(MAX_DETAILS_LEN));
/// log.record_durable(event).await?;
/// let page = log.query(&AuditQuery::default()).await?;
/// assert_eq!(page.entries[0].details, serde_json::json!({"truncated": true}));
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
pub const MAX_DETAILS_LEN: usize = 4 * 1024;

/// Who performed an audited operation.
///
/// ```
/// use consentry::UserId;
/// use consentry::audit::AuditActor;
/// let a = AuditActor::User(UserId::in_tenant("acme", "alice")?);
/// assert_eq!(a.to_string(), "user:acme/alice");
/// assert_eq!("user:acme/alice".parse::<AuditActor>()?, a);
/// assert_eq!(AuditActor::System.to_string(), "system");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditActor {
    /// An end user (through the host's session).
    User(UserId),
    /// A personal API token, by its public id (never the token).
    ApiToken(String),
    /// A named service of the host (a worker, another microservice).
    Service(String),
    /// consentry itself (the refresher, maintenance, the scheduler).
    System,
}

impl fmt::Display for AuditActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "user:{u}"),
            Self::ApiToken(id) => write!(f, "api_token:{id}"),
            Self::Service(name) => write!(f, "service:{name}"),
            Self::System => f.write_str("system"),
        }
    }
}

impl FromStr for AuditActor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "audit actor",
                "expected user:…, api_token:…, service:… or system",
            )
        };
        if s == "system" {
            return Ok(Self::System);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "user" => Ok(Self::User(rest.parse()?)),
            "api_token" => Ok(Self::ApiToken(checked_text("api token id", rest)?)),
            "service" => Ok(Self::Service(checked_text("service name", rest)?)),
            _ => Err(bad()),
        }
    }
}

/// How an audited operation ended.
///
/// ```
/// use consentry::audit::Outcome;
/// assert_eq!(Outcome::Denied.as_str(), "denied");
/// assert_eq!("failure".parse::<Outcome>()?, Outcome::Failure);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was tried and failed (a provider error, a storage error).
    Failure,
    /// It was refused (no consent, not an admin, a bad `state`).
    Denied,
}

impl Outcome {
    /// The stored form.
    ///
    /// ```
    /// assert_eq!(consentry::audit::Outcome::Success.as_str(), "success");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    /// The outcome of a finished operation: `Denied` for refusals (consent,
    /// scope, permission, a bad callback), `Failure` for other errors.
    ///
    /// ```
    /// use consentry::audit::Outcome;
    /// let denied: Result<(), _> = Err(consentry::Error::Forbidden { action: "x" });
    /// assert_eq!(Outcome::of(&denied), Outcome::Denied);
    /// assert_eq!(Outcome::of(&Ok::<(), consentry::Error>(())), Outcome::Success);
    /// ```
    pub fn of<T>(result: &Result<T>) -> Self {
        use crate::error::ErrorKind as K;
        match result {
            Ok(_) => Self::Success,
            Err(e) => match e.kind() {
                K::ConsentRequired
                | K::InsufficientScope
                | K::Forbidden
                | K::Unauthorized
                | K::AccessDenied
                | K::InvalidCallback => Self::Denied,
                _ => Self::Failure,
            },
        }
    }
}

impl FromStr for Outcome {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            _ => Err(Error::invalid(
                "audit outcome",
                "expected success, failure or denied",
            )),
        }
    }
}

/// An event to record: `resource.action`, actor, subject user, resource,
/// outcome and details. IP, user agent and request id come from the
/// [`RequestContext`] the host set for the current task (or from
/// [`AuditEvent::context`]).
///
/// Details are structured data about the operation and must never hold a
/// secret; consentry's own events carry ids, counts, purposes and scopes.
///
/// ```
/// use consentry::UserId;
/// use consentry::audit::{AuditActor, AuditEvent, Outcome};
/// let alice = UserId::new("alice")?;
/// let event = AuditEvent::new("report.viewed", AuditActor::User(alice.clone()))?
///     .subject(&alice)
///     .resource("report:2026-12")
///     .outcome(Outcome::Success)
///     .detail("format", "pdf");
/// assert_eq!(event.action(), "report.viewed");
/// assert!(AuditEvent::new("no-dot", AuditActor::System).is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub(crate) action: String,
    pub(crate) actor: Option<AuditActor>,
    pub(crate) subject: Option<UserId>,
    pub(crate) resource: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) details: Map<String, Value>,
    pub(crate) context: Option<RequestContext>,
}

impl AuditEvent {
    /// An event named `action` (`resource.action`: lowercase letters,
    /// digits and `_`, one dot, at most [`MAX_ACTION_LEN`] bytes) performed
    /// by `actor`, with outcome `Success` until told otherwise.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed action name.
    ///
    /// ```
    /// use consentry::audit::{AuditActor, AuditEvent};
    /// assert!(AuditEvent::new("plugin.installed", AuditActor::System).is_ok());
    /// assert!(AuditEvent::new("Plugin.Installed", AuditActor::System).is_err());
    /// ```
    pub fn new(action: &str, actor: AuditActor) -> Result<Self> {
        check_action(action)?;
        Ok(Self::internal(action, Some(actor)))
    }

    /// An event of consentry's own; the actor is the request context's, or
    /// the given default.
    pub(crate) fn internal(action: &str, actor: Option<AuditActor>) -> Self {
        Self {
            action: action.to_owned(),
            actor,
            subject: None,
            resource: None,
            outcome: Outcome::Success,
            details: Map::new(),
            context: None,
        }
    }

    /// The user the operation concerns.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent};
    /// let e = AuditEvent::new("a.b", AuditActor::System)?.subject(&"bob".parse()?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn subject(mut self, user: &UserId) -> Self {
        self.subject = Some(user.clone());
        self
    }

    /// What the operation touched (`connection:…`); cut to
    /// [`MAX_RESOURCE_LEN`] bytes.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent};
    /// let e = AuditEvent::new("a.b", AuditActor::System)?.resource("connection:c1");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn resource(mut self, resource: impl AsRef<str>) -> Self {
        self.resource = Some(clean(resource.as_ref(), MAX_RESOURCE_LEN));
        self
    }

    /// How it ended.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent, Outcome};
    /// let e = AuditEvent::new("a.b", AuditActor::System)?.outcome(Outcome::Denied);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Adds one detail (never a secret). Details past [`MAX_DETAILS_LEN`]
    /// bytes of JSON in all are dropped and marked `"truncated": true`.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent};
    /// let e = AuditEvent::new("a.b", AuditActor::System)?.detail("count", 3).detail("purpose", "matching");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(clean(key, 64), value.into());
        self
    }

    /// The request context to record instead of the current task's.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent, RequestContext};
    /// let e = AuditEvent::new("a.b", AuditActor::System)?
    ///     .context(RequestContext::new().request_id("req-1"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn context(mut self, context: RequestContext) -> Self {
        self.context = Some(context);
        self
    }

    /// The action name.
    ///
    /// ```
    /// # use consentry::audit::{AuditActor, AuditEvent};
    /// assert_eq!(AuditEvent::new("a.b", AuditActor::System)?.action(), "a.b");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn action(&self) -> &str {
        &self.action
    }

    /// This event with the current task's request context, unless one was
    /// set (the audit writer runs on another task, where the caller's
    /// task-local is not set).
    pub(crate) fn in_current_context(mut self) -> Self {
        if self.context.is_none() {
            self.context = RequestContext::current();
        }
        self
    }

    /// Whether `other` records the same thing: every field but the time
    /// (the request context included).
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        self.action == other.action
            && self.actor == other.actor
            && self.subject == other.subject
            && self.resource == other.resource
            && self.outcome == other.outcome
            && self.details == other.details
            && self.context == other.context
    }

    pub(crate) fn into_stored(self, at: SystemTime) -> StoredAuditEntry {
        // `Appender::push` took the caller's context (the writer runs on
        // another task, where the task-local is not set).
        let ctx = self.context.unwrap_or_default();
        let actor = ctx
            .actor
            .clone()
            .or(self.actor)
            .unwrap_or(AuditActor::System);
        let mut details = Value::Object(self.details).to_string();
        if details.len() > MAX_DETAILS_LEN {
            details = r#"{"truncated":true}"#.to_owned();
        }
        StoredAuditEntry {
            at_ms: crate::clock::unix_millis(at),
            action: self.action,
            actor: clean(&actor.to_string(), MAX_RESOURCE_LEN),
            subject: self.subject.map(|u| u.to_string()),
            resource: self.resource,
            outcome: self.outcome.as_str().to_owned(),
            details,
            ip: ctx.ip.map(|ip| ip.to_string()),
            user_agent: ctx.user_agent,
            request_id: ctx.request_id,
            ..StoredAuditEntry::default()
        }
    }
}

/// One entry of the audit log, as read back.
///
/// ```
/// use consentry::audit::{AuditActor, AuditEvent, AuditLog, AuditQuery, Outcome};
/// use consentry::store::MemoryStore;
/// use consentry::vault::Keyring;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let log = AuditLog::new(MemoryStore::new(), Keyring::generate()?);
/// log.record_durable(AuditEvent::new("plugin.installed", AuditActor::System)?).await?;
/// let page = log.query(&AuditQuery::default()).await?;
/// let entry = &page.entries[0];
/// assert_eq!((entry.seq, entry.action.as_str(), entry.outcome), (1, "plugin.installed", Outcome::Success));
/// assert_eq!(entry.actor, AuditActor::System);
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it happened (millisecond precision).
    pub at: SystemTime,
    /// `resource.action`.
    pub action: String,
    /// Who did it.
    pub actor: AuditActor,
    /// The user it concerns.
    pub subject: Option<UserId>,
    /// What it touched.
    pub resource: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Structured details (never a secret).
    pub details: Value,
    /// The client's IP address, as the host supplied it.
    pub ip: Option<String>,
    /// The client's user agent, as the host supplied it.
    pub user_agent: Option<String>,
    /// The host's request id.
    pub request_id: Option<String>,
}

impl TryFrom<StoredAuditEntry> for AuditEntry {
    type Error = Error;
    fn try_from(e: StoredAuditEntry) -> Result<Self> {
        let corrupt = |what: &'static str| {
            move |err: Error| Error::storage(format!("a stored audit {what} is invalid"), err)
        };
        Ok(Self {
            seq: e.seq,
            at: crate::clock::from_unix_millis(e.at_ms),
            action: e.action,
            actor: e.actor.parse().map_err(corrupt("actor"))?,
            subject: e
                .subject
                .map(|s| s.parse())
                .transpose()
                .map_err(corrupt("subject"))?,
            resource: e.resource,
            outcome: e.outcome.parse().map_err(corrupt("outcome"))?,
            details: serde_json::from_str(&e.details)
                .map_err(|err| Error::storage("a stored audit details object is invalid", err))?,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
        })
    }
}

fn check_action(action: &str) -> Result<()> {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match action.split_once('.') {
        Some((resource, verb))
            if action.len() <= MAX_ACTION_LEN && part(resource) && part(verb) =>
        {
            Ok(())
        }
        _ => Err(Error::invalid(
            "audit action",
            format!("expected `resource.action` in [a-z0-9_], at most {MAX_ACTION_LEN} bytes"),
        )),
    }
}

fn checked_text(what: &'static str, s: &str) -> Result<String> {
    if s.is_empty() || s.len() > MAX_RESOURCE_LEN || s.chars().any(char::is_control) {
        return Err(Error::invalid(
            what,
            format!("must be 1 to {MAX_RESOURCE_LEN} bytes without control characters"),
        ));
    }
    Ok(s.to_owned())
}

/// `s` without control characters, cut to at most `max` bytes on a
/// character boundary.
pub(crate) fn clean(s: &str, max: usize) -> String {
    // The usual case (short, printable ASCII: every detail key consentry
    // writes) is one copy, not a character-by-character rebuild.
    if s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}
