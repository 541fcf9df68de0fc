//! [`WebhookEndpointStore`], [`WebhookOutboxStore`] and [`ReplayStore`]
//! for [`MemoryStore`].

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::ids::{EndpointId, MessageId};
use crate::store::outbox::{
    AttemptCompletion, AttemptRecord, ClaimedDelivery, CompletionResult, DeliveryOutcome,
    DeliveryRecord, DeliveryState, EndpointEffect, NewMessage, Published, StoredMessage, Trigger,
    WebhookOutboxStore, exhaustion_rule,
};
use crate::store::webhook::{ReplayStore, StoredEndpoint, WebhookEndpointStore, check_replay_key};

/// The webhook part of the memory store's state.
#[derive(Debug, Default)]
pub(super) struct WebhookState {
    endpoints: BTreeMap<EndpointId, StoredEndpoint>,
    messages: BTreeMap<MessageId, (StoredMessage, Option<SystemTime>)>,
    idempotency: HashMap<String, MessageId>,
    deliveries: BTreeMap<u64, Delivery>,
    attempts: Vec<AttemptRecord>,
    replay: HashMap<(String, String), SystemTime>,
    next_delivery: u64,
}

#[derive(Debug)]
struct Delivery {
    record: DeliveryRecord,
    lease: Option<(String, SystemTime)>,
}

impl WebhookState {
    fn queue(
        &mut self,
        message: &MessageId,
        endpoint: &EndpointId,
        trigger: Trigger,
        now: SystemTime,
    ) {
        self.next_delivery += 1;
        let id = self.next_delivery;
        self.deliveries.insert(
            id,
            Delivery {
                record: DeliveryRecord {
                    id,
                    message: message.clone(),
                    endpoint: endpoint.clone(),
                    trigger,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: Some(now),
                    created_at: now,
                },
                lease: None,
            },
        );
    }

    fn apply_effect(
        &mut self,
        endpoint: &EndpointId,
        effect: &EndpointEffect,
        now: SystemTime,
    ) -> bool {
        let Some(e) = self.endpoints.get_mut(endpoint) else {
            return false;
        };
        let disable = |e: &mut StoredEndpoint, reason: &str| {
            if !e.enabled {
                return false;
            }
            e.enabled = false;
            e.disabled_reason = Some(reason.to_owned());
            e.updated_at = now;
            e.revision += 1;
            true
        };
        match effect {
            EndpointEffect::None => false,
            EndpointEffect::Healthy => {
                e.first_failure_at = None;
                false
            }
            EndpointEffect::Exhausted {
                disable_after,
                reason,
            } => {
                let (first, off) = exhaustion_rule(e.first_failure_at, now, *disable_after);
                e.first_failure_at = first;
                off && disable(e, reason)
            }
            EndpointEffect::Disable { reason } => disable(e, reason),
        }
    }
}

#[async_trait]
impl WebhookEndpointStore for MemoryStore {
    async fn insert_webhook_endpoint(&self, mut endpoint: StoredEndpoint) -> Result<()> {
        let mut state = self.state();
        if state.webhooks.endpoints.contains_key(&endpoint.id) {
            return Err(Error::Conflict {
                what: "webhook endpoint",
                expected: 0,
                found: 1,
            });
        }
        endpoint.revision = 1;
        state
            .webhooks
            .endpoints
            .insert(endpoint.id.clone(), endpoint);
        Ok(())
    }

    async fn get_webhook_endpoint(&self, id: &EndpointId) -> Result<Option<StoredEndpoint>> {
        Ok(self.state().webhooks.endpoints.get(id).cloned())
    }

    async fn list_webhook_endpoints(&self) -> Result<Vec<StoredEndpoint>> {
        Ok(self.state().webhooks.endpoints.values().cloned().collect())
    }

    async fn update_webhook_endpoint(&self, endpoint: StoredEndpoint) -> Result<u64> {
        let mut state = self.state();
        let current = state
            .webhooks
            .endpoints
            .get_mut(&endpoint.id)
            .ok_or(Error::NotFound {
                what: "webhook endpoint",
            })?;
        if current.revision != endpoint.revision {
            return Err(Error::Conflict {
                what: "webhook endpoint",
                expected: endpoint.revision,
                found: current.revision,
            });
        }
        let first_failure_at = if endpoint.enabled && !current.enabled {
            None
        } else {
            current.first_failure_at
        };
        let revision = current.revision + 1;
        *current = StoredEndpoint {
            created_at: current.created_at,
            first_failure_at,
            revision,
            ..endpoint
        };
        Ok(revision)
    }

    async fn delete_webhook_endpoint(&self, id: &EndpointId) -> Result<bool> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        if w.endpoints.remove(id).is_none() {
            return Ok(false);
        }
        w.deliveries.retain(|_, d| d.record.endpoint != *id);
        w.attempts.retain(|a| a.endpoint != *id);
        Ok(true)
    }
}

#[async_trait]
impl WebhookOutboxStore for MemoryStore {
    async fn publish_webhook_message(&self, m: NewMessage) -> Result<Published> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        let now = m.created_at;
        if let Some(key) = &m.idempotency_key
            && let Some(first) = w.idempotency.get(key)
            && let Some((stored, until)) = w.messages.get(first)
        {
            if until.is_some_and(|u| u > now) {
                return Ok(Published {
                    id: stored.id.clone(),
                    created_at: stored.created_at,
                    duplicate: true,
                    deliveries: 0,
                });
            }
            let first = first.clone();
            if let Some((stored, until)) = w.messages.get_mut(&first) {
                stored.idempotency_key = None;
                *until = None;
            }
        }
        if w.messages.contains_key(&m.id) {
            return Err(Error::Conflict {
                what: "webhook message",
                expected: 0,
                found: 1,
            });
        }
        let targets: Vec<EndpointId> = w
            .endpoints
            .values()
            .filter(|e| e.enabled && e.subscribes_to(&m.event_type))
            .map(|e| e.id.clone())
            .collect();
        for endpoint in &targets {
            w.queue(&m.id, endpoint, Trigger::Scheduled, now);
        }
        if let Some(key) = &m.idempotency_key {
            w.idempotency.insert(key.clone(), m.id.clone());
        }
        let stored = StoredMessage {
            id: m.id.clone(),
            event_type: m.event_type,
            payload: m.payload,
            idempotency_key: m.idempotency_key,
            created_at: now,
        };
        w.messages
            .insert(m.id.clone(), (stored, m.idempotency_until));
        Ok(Published {
            id: m.id,
            created_at: now,
            duplicate: false,
            deliveries: targets.len() as u64,
        })
    }

    async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        let mut due: Vec<(SystemTime, u64)> = w
            .deliveries
            .values()
            .filter(|d| {
                d.record.state == DeliveryState::Pending
                    && d.record.next_attempt_at.is_some_and(|t| t <= now)
                    && d.lease.as_ref().is_none_or(|(_, until)| *until <= now)
                    && w.endpoints
                        .get(&d.record.endpoint)
                        .is_some_and(|e| e.enabled)
            })
            .map(|d| (d.record.next_attempt_at.unwrap_or(now), d.record.id))
            .collect();
        due.sort_unstable();
        due.truncate(limit);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(d) = w.deliveries.get_mut(&id) else {
                continue;
            };
            let (Some((message, _)), Some(endpoint)) = (
                w.messages.get(&d.record.message),
                w.endpoints.get(&d.record.endpoint),
            ) else {
                continue;
            };
            d.lease = Some((owner.to_owned(), lease_until));
            claimed.push(ClaimedDelivery {
                delivery: id,
                message: message.id.clone(),
                event_type: message.event_type.clone(),
                payload: message.payload.clone(),
                endpoint: endpoint.id.clone(),
                endpoint_revision: endpoint.revision,
                trigger: d.record.trigger,
                attempts: d.record.attempts,
            });
        }
        Ok(claimed)
    }

    async fn complete_webhook_attempts(
        &self,
        completions: Vec<AttemptCompletion>,
    ) -> Result<Vec<CompletionResult>> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        let mut results = Vec::with_capacity(completions.len());
        for c in completions {
            let mut result = CompletionResult::default();
            let Some(d) = w.deliveries.get_mut(&c.attempt.delivery) else {
                results.push(result);
                continue;
            };
            let holds = d.record.state == DeliveryState::Pending
                && d.lease.as_ref().is_some_and(|(o, _)| *o == c.lease_owner);
            let endpoint = d.record.endpoint.clone();
            if holds {
                d.lease = None;
                d.record.attempts = c.attempt.attempt;
                let (state, next) = match c.outcome {
                    DeliveryOutcome::Succeeded => (DeliveryState::Succeeded, None),
                    DeliveryOutcome::Retry { at } => (DeliveryState::Pending, Some(at)),
                    DeliveryOutcome::Failed => (DeliveryState::Failed, None),
                    DeliveryOutcome::Exhausted => (DeliveryState::Exhausted, None),
                };
                d.record.state = state;
                d.record.next_attempt_at = next;
                result.applied = true;
                result.endpoint_disabled = w.apply_effect(&endpoint, &c.endpoint, c.now);
            }
            w.attempts.push(c.attempt);
            results.push(result);
        }
        Ok(results)
    }

    async fn release_webhook_delivery(
        &self,
        delivery: u64,
        owner: &str,
        next_attempt_at: SystemTime,
    ) -> Result<bool> {
        let mut state = self.state();
        match state.webhooks.deliveries.get_mut(&delivery) {
            Some(d)
                if d.record.state == DeliveryState::Pending
                    && d.lease.as_ref().is_some_and(|(o, _)| o == owner) =>
            {
                d.lease = None;
                d.record.next_attempt_at = Some(next_attempt_at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_webhook_message(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        Ok(self
            .state()
            .webhooks
            .messages
            .get(id)
            .map(|(m, _)| m.clone()))
    }

    async fn webhook_deliveries(&self, message: &MessageId) -> Result<Vec<DeliveryRecord>> {
        Ok(self
            .state()
            .webhooks
            .deliveries
            .values()
            .filter(|d| d.record.message == *message)
            .map(|d| d.record.clone())
            .collect())
    }

    async fn webhook_attempts(&self, message: &MessageId) -> Result<Vec<AttemptRecord>> {
        Ok(self
            .state()
            .webhooks
            .attempts
            .iter()
            .filter(|a| a.message == *message)
            .cloned()
            .collect())
    }

    async fn replay_webhook_message(&self, message: &MessageId, now: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        let mut targets: Vec<EndpointId> = w
            .deliveries
            .values()
            .filter(|d| d.record.message == *message)
            .map(|d| d.record.endpoint.clone())
            .filter(|e| w.endpoints.get(e).is_some_and(|e| e.enabled))
            .collect();
        targets.sort_unstable();
        targets.dedup();
        for endpoint in &targets {
            w.queue(message, endpoint, Trigger::Manual, now);
        }
        Ok(targets.len() as u64)
    }

    async fn recover_webhook_deliveries(
        &self,
        endpoint: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u64> {
        let mut state = self.state();
        let mut n = 0;
        for d in state.webhooks.deliveries.values_mut() {
            let r = &mut d.record;
            if r.endpoint == *endpoint
                && matches!(r.state, DeliveryState::Failed | DeliveryState::Exhausted)
                && r.created_at >= since
            {
                r.state = DeliveryState::Pending;
                r.trigger = Trigger::Manual;
                r.next_attempt_at = Some(now);
                d.lease = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn purge_webhook_messages(&self, before: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let w = &mut state.webhooks;
        let busy: std::collections::HashSet<MessageId> = w
            .deliveries
            .values()
            .filter(|d| d.record.state == DeliveryState::Pending)
            .map(|d| d.record.message.clone())
            .collect();
        let gone: Vec<MessageId> = w
            .messages
            .values()
            .filter(|(m, _)| m.created_at < before && !busy.contains(&m.id))
            .map(|(m, _)| m.id.clone())
            .collect();
        for id in &gone {
            if let Some((m, _)) = w.messages.remove(id)
                && let Some(key) = m.idempotency_key
            {
                w.idempotency.remove(&key);
            }
        }
        let gone: std::collections::HashSet<MessageId> = gone.into_iter().collect();
        w.deliveries
            .retain(|_, d| !gone.contains(&d.record.message));
        w.attempts.retain(|a| !gone.contains(&a.message));
        Ok(gone.len() as u64)
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn check_and_insert(
        &self,
        scope: &str,
        id: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool> {
        check_replay_key(scope, id)?;
        let mut state = self.state();
        let key = (scope.to_owned(), id.to_owned());
        match state.webhooks.replay.get(&key) {
            Some(until) if *until > now => Ok(false),
            _ => {
                state.webhooks.replay.insert(key, expires_at);
                Ok(true)
            }
        }
    }

    async fn purge_replay_entries(&self, now: SystemTime) -> Result<u64> {
        let mut state = self.state();
        let before = state.webhooks.replay.len();
        state.webhooks.replay.retain(|_, until| *until > now);
        Ok((before - state.webhooks.replay.len()) as u64)
    }
}
