//! Audit entries for endpoint administration (`webhook_endpoint.*`).

use super::{Actor, Dispatcher};
use crate::audit::{AuditActor, AuditEvent, Outcome};
use crate::error::Result;
use crate::ids::EndpointId;

impl Dispatcher {
    /// Writes `action` about endpoint `id` by `actor`, with the outcome of
    /// `result`, and waits until it is committed. A failed audit write
    /// does not undo the change (the entry stays queued).
    pub(super) async fn audit_admin<T>(
        &self,
        action: &str,
        actor: &Actor,
        id: Option<&EndpointId>,
        result: &Result<T>,
    ) {
        let Some(log) = &self.inner.audit else {
            return;
        };
        let who = actor
            .id()
            .parse()
            .map(AuditActor::User)
            .unwrap_or_else(|_| AuditActor::Service(crate::audit::clean_text(actor.id())));
        let mut event = AuditEvent::internal(action, Some(who))
            .outcome(Outcome::of(result))
            .detail("admin", actor.is_admin());
        if let Some(id) = id {
            event = event.resource(format!("webhook_endpoint:{id}"));
        }
        let _ = log.record_durable(event).await;
    }
}
