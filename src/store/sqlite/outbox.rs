//! [`WebhookOutboxStore`] for [`SqliteStore`] (migration 3).
//!
//! Every method is one `BEGIN IMMEDIATE` transaction (or one statement):
//! claims are an `UPDATE ... RETURNING` over rows whose lease is free or
//! expired, so of several processes each delivery goes to one.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::util::{corrupt, millis, query_all, sql, time};
use crate::error::{Error, Result};
use crate::ids::{EndpointId, MessageId};
use crate::store::outbox::{
    AttemptCompletion, AttemptRecord, ClaimedDelivery, CompletionResult, DeliveryOutcome,
    DeliveryRecord, DeliveryState, EndpointEffect, NewMessage, Published, StoredMessage, Trigger,
    WebhookOutboxStore, exhaustion_rule,
};

fn immediate<'c>(conn: &'c mut Connection, context: &'static str) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(context))
}

fn message_id(s: String) -> Result<MessageId> {
    MessageId::new(s).map_err(|e| corrupt("message id", e))
}

fn endpoint_id(s: String) -> Result<EndpointId> {
    EndpointId::new(s).map_err(|e| corrupt("endpoint id", e))
}

fn trigger(s: &str) -> Result<Trigger> {
    Trigger::parse(s).ok_or_else(|| Error::Storage {
        message: "a stored delivery trigger is invalid".into(),
        source: None,
    })
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Queues one pending delivery per enabled endpoint subscribed to
/// `event_type`.
const QUEUE: &str = "INSERT INTO consentry_webhook_deliveries
       (message, endpoint, trigger, state, attempts, next_attempt_at, created_at)
     SELECT ?1, id, 'scheduled', 'pending', 0, ?3, ?3 FROM consentry_webhook_endpoints
     WHERE enabled = 1 AND (event_types = '' OR instr(' ' || event_types || ' ', ' ' || ?2 || ' ') > 0)";

fn publish(tx: &Transaction<'_>, m: &NewMessage) -> Result<Published> {
    let err = sql("publishing a webhook message");
    let now = millis(m.created_at);
    if let Some(key) = &m.idempotency_key {
        let first: Option<(String, i64, Option<i64>)> = tx
            .prepare_cached(
                "SELECT id, created_at, idempotency_until FROM consentry_webhook_messages
                 WHERE idempotency_key = ?1",
            )
            .and_then(|mut s| {
                s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(&err)?;
        match first {
            Some((id, created, until)) if until.is_some_and(|u| u > now) => {
                return Ok(Published {
                    id: message_id(id)?,
                    created_at: time(created),
                    duplicate: true,
                    deliveries: 0,
                });
            }
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE consentry_webhook_messages
                     SET idempotency_key = NULL, idempotency_until = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(&err)?;
            }
            None => {}
        }
    }
    tx.prepare_cached(
        "INSERT INTO consentry_webhook_messages
           (id, event_type, payload, idempotency_key, idempotency_until, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.id.as_str(),
            m.event_type,
            m.payload,
            m.idempotency_key,
            m.idempotency_until.map(millis),
            now
        ])
    })
    .map_err(&err)?;
    let deliveries = tx
        .prepare_cached(QUEUE)
        .and_then(|mut s| s.execute(params![m.id.as_str(), m.event_type, now]))
        .map_err(&err)?;
    Ok(Published {
        id: m.id.clone(),
        created_at: m.created_at,
        duplicate: false,
        deliveries: deliveries as u64,
    })
}

type ClaimRaw = (i64, String, String, Vec<u8>, String, i64, String, i64);

fn claim(
    conn: &mut Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<ClaimRaw>> {
    let err = sql("claiming webhook deliveries");
    let tx = immediate(conn, "claiming webhook deliveries")?;
    let ids: Vec<i64> = {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE consentry_webhook_deliveries SET lease_owner = ?1, lease_until = ?2
                 WHERE id IN (
                   SELECT d.id FROM consentry_webhook_deliveries d
                   JOIN consentry_webhook_endpoints e ON e.id = d.endpoint
                   WHERE d.state = 'pending' AND d.next_attempt_at <= ?3
                     AND (d.lease_until IS NULL OR d.lease_until <= ?3) AND e.enabled = 1
                   ORDER BY d.next_attempt_at, d.id LIMIT ?4)
                 RETURNING id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![owner, lease_until, now, limit], |r| r.get(0))
            .and_then(Iterator::collect);
        rows.map_err(&err)?
    };
    let mut out = Vec::with_capacity(ids.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT d.id, m.id, m.event_type, m.payload, e.id, e.revision, d.trigger, d.attempts
                 FROM consentry_webhook_deliveries d
                 JOIN consentry_webhook_messages m ON m.id = d.message
                 JOIN consentry_webhook_endpoints e ON e.id = d.endpoint
                 WHERE d.id = ?1",
            )
            .map_err(&err)?;
        for id in ids {
            let row = stmt
                .query_row([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .map_err(&err)?;
            out.push(row);
        }
    }
    tx.commit().map_err(&err)?;
    Ok(out)
}

fn apply_effect(
    tx: &Transaction<'_>,
    endpoint: &str,
    effect: &EndpointEffect,
    now: SystemTime,
) -> Result<bool> {
    let err = sql("updating a webhook endpoint's health");
    let disable = |reason: &str| -> Result<bool> {
        tx.prepare_cached(
            "UPDATE consentry_webhook_endpoints
             SET enabled = 0, disabled_reason = ?2, updated_at = ?3, revision = revision + 1
             WHERE id = ?1 AND enabled = 1",
        )
        .and_then(|mut s| s.execute(params![endpoint, reason, millis(now)]))
        .map(|n| n == 1)
        .map_err(&err)
    };
    match effect {
        EndpointEffect::None => Ok(false),
        EndpointEffect::Healthy => tx
            .prepare_cached(
                "UPDATE consentry_webhook_endpoints SET first_failure_at = NULL
                 WHERE id = ?1 AND first_failure_at IS NOT NULL",
            )
            .and_then(|mut s| s.execute([endpoint]))
            .map(|_| false)
            .map_err(&err),
        EndpointEffect::Exhausted {
            disable_after,
            reason,
        } => {
            let first: Option<Option<i64>> = tx
                .query_row(
                    "SELECT first_failure_at FROM consentry_webhook_endpoints WHERE id = ?1",
                    [endpoint],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            let Some(first) = first else {
                return Ok(false);
            };
            let (first, off) = exhaustion_rule(first.map(time), now, *disable_after);
            tx.execute(
                "UPDATE consentry_webhook_endpoints SET first_failure_at = ?2 WHERE id = ?1",
                params![endpoint, first.map(millis)],
            )
            .map_err(&err)?;
            if off { disable(reason) } else { Ok(false) }
        }
        EndpointEffect::Disable { reason } => disable(reason),
    }
}

/// Records one attempt. `healthy` holds the endpoints already marked
/// healthy in this transaction (a repeated `Healthy` is skipped until
/// another effect touches that endpoint).
fn complete(
    tx: &Transaction<'_>,
    c: &AttemptCompletion,
    healthy: &mut std::collections::HashSet<String>,
) -> Result<CompletionResult> {
    let err = sql("recording a webhook attempt");
    let a = &c.attempt;
    let delivery = i64::try_from(a.delivery).unwrap_or(i64::MAX);
    let (state, next) = match c.outcome {
        DeliveryOutcome::Succeeded => (DeliveryState::Succeeded, None),
        DeliveryOutcome::Retry { at } => (DeliveryState::Pending, Some(millis(at))),
        DeliveryOutcome::Failed => (DeliveryState::Failed, None),
        DeliveryOutcome::Exhausted => (DeliveryState::Exhausted, None),
    };
    // Applied only while the lease is ours; then the attempt is logged.
    let endpoint: Option<String> = tx
        .prepare_cached(
            "UPDATE consentry_webhook_deliveries
             SET state = ?2, attempts = ?3, next_attempt_at = ?4, lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?5 AND state = 'pending'
             RETURNING endpoint",
        )
        .and_then(|mut s| {
            s.query_row(
                params![delivery, state.as_str(), a.attempt, next, c.lease_owner],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(&err)?;
    let mut result = CompletionResult::default();
    let exists = endpoint.is_some()
        || tx
            .prepare_cached("SELECT 1 FROM consentry_webhook_deliveries WHERE id = ?1")
            .and_then(|mut s| s.exists([delivery]))
            .map_err(&err)?;
    if !exists {
        return Ok(result);
    }
    tx.prepare_cached(
        "INSERT INTO consentry_webhook_attempts
           (delivery, message, endpoint, attempt, at, trigger, status, error, response, duration_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            delivery,
            a.message.as_str(),
            a.endpoint.as_str(),
            a.attempt,
            millis(a.at),
            a.trigger.as_str(),
            a.status,
            a.error,
            a.response,
            i64::try_from(a.duration.as_micros()).unwrap_or(i64::MAX),
        ])
    })
    .map_err(&err)?;
    let Some(endpoint) = endpoint else {
        return Ok(result);
    };
    result.applied = true;
    match &c.endpoint {
        EndpointEffect::Healthy if healthy.contains(&endpoint) => {}
        EndpointEffect::Healthy => {
            apply_effect(tx, &endpoint, &c.endpoint, c.now)?;
            healthy.insert(endpoint);
        }
        EndpointEffect::None => {}
        effect => {
            healthy.remove(&endpoint);
            result.endpoint_disabled = apply_effect(tx, &endpoint, effect, c.now)?;
        }
    }
    Ok(result)
}

type DeliveryRaw = (i64, String, String, String, String, i64, Option<i64>, i64);

fn delivery_raw(r: &Row<'_>) -> rusqlite::Result<DeliveryRaw> {
    // rusqlite reads a row into a tuple of its column types, in order.
    DeliveryRaw::try_from(r)
}

type AttemptRaw = (
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<u16>,
    Option<String>,
    Vec<u8>,
    i64,
);

fn attempt_raw(r: &Row<'_>) -> rusqlite::Result<AttemptRaw> {
    // rusqlite reads a row into a tuple of its column types, in order.
    AttemptRaw::try_from(r)
}

#[async_trait]
impl WebhookOutboxStore for SqliteStore {
    async fn publish_webhook_message(&self, message: NewMessage) -> Result<Published> {
        self.write(move |conn| {
            let tx = immediate(conn, "publishing a webhook message")?;
            let published = publish(&tx, &message)?;
            if !published.duplicate {
                tx.commit().map_err(sql("publishing a webhook message"))?;
            }
            Ok(published)
        })
        .await
    }

    async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let owner = owner.to_owned();
        let (now, until) = (millis(now), millis(lease_until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .write(move |conn| claim(conn, &owner, now, until, limit))
            .await?;
        rows.into_iter()
            .map(
                |(id, msg, event_type, payload, ep, revision, trig, attempts)| {
                    Ok(ClaimedDelivery {
                        delivery: u64::try_from(id).unwrap_or(0),
                        message: message_id(msg)?,
                        event_type,
                        payload,
                        endpoint: endpoint_id(ep)?,
                        endpoint_revision: u64::try_from(revision).unwrap_or(0),
                        trigger: trigger(&trig)?,
                        attempts: count(attempts),
                    })
                },
            )
            .collect()
    }

    async fn complete_webhook_attempts(
        &self,
        completions: Vec<AttemptCompletion>,
    ) -> Result<Vec<CompletionResult>> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = immediate(conn, "recording webhook attempts")?;
            let mut healthy = std::collections::HashSet::new();
            let results = completions
                .iter()
                .map(|c| complete(&tx, c, &mut healthy))
                .collect::<Result<Vec<_>>>()?;
            tx.commit().map_err(sql("recording webhook attempts"))?;
            Ok(results)
        })
        .await
    }

    async fn release_webhook_delivery(
        &self,
        delivery: u64,
        owner: &str,
        next_attempt_at: SystemTime,
    ) -> Result<bool> {
        let owner = owner.to_owned();
        let delivery = i64::try_from(delivery).unwrap_or(i64::MAX);
        let next = millis(next_attempt_at);
        self.write(move |conn| {
            conn.execute(
                "UPDATE consentry_webhook_deliveries
                 SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                params![delivery, owner, next],
            )
            .map(|n| n == 1)
            .map_err(sql("releasing a webhook delivery"))
        })
        .await
    }

    async fn get_webhook_message(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        let id = id.as_str().to_owned();
        let row: Option<(String, String, Vec<u8>, Option<String>, i64)> = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT id, event_type, payload, idempotency_key, created_at
                     FROM consentry_webhook_messages WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(sql("reading a webhook message"))
            })
            .await?;
        row.map(|(id, event_type, payload, key, created)| {
            Ok(StoredMessage {
                id: message_id(id)?,
                event_type,
                payload,
                idempotency_key: key,
                created_at: time(created),
            })
        })
        .transpose()
    }

    async fn webhook_deliveries(&self, message: &MessageId) -> Result<Vec<DeliveryRecord>> {
        let message = message.as_str().to_owned();
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT id, message, endpoint, trigger, state, attempts, next_attempt_at, created_at
                     FROM consentry_webhook_deliveries WHERE message = ?1 ORDER BY id",
                    [message],
                    "listing webhook deliveries",
                    delivery_raw,
                )
            })
            .await?;
        rows.into_iter()
            .map(|(id, msg, ep, trig, state, attempts, next, created)| {
                Ok(DeliveryRecord {
                    id: u64::try_from(id).unwrap_or(0),
                    message: message_id(msg)?,
                    endpoint: endpoint_id(ep)?,
                    trigger: trigger(&trig)?,
                    state: DeliveryState::parse(&state).ok_or_else(|| Error::Storage {
                        message: "a stored delivery state is invalid".into(),
                        source: None,
                    })?,
                    attempts: count(attempts),
                    next_attempt_at: next.map(time),
                    created_at: time(created),
                })
            })
            .collect()
    }

    async fn webhook_attempts(&self, message: &MessageId) -> Result<Vec<AttemptRecord>> {
        let message = message.as_str().to_owned();
        let rows = self
            .read(move |conn| {
                query_all(
                    conn,
                    "SELECT a.delivery, a.message, a.endpoint, a.attempt, a.at, a.trigger, a.status,
                            a.error, a.response, a.duration_us
                     FROM consentry_webhook_deliveries d
                     JOIN consentry_webhook_attempts a ON a.delivery = d.id
                     WHERE d.message = ?1 ORDER BY a.id",
                    [message],
                    "listing webhook attempts",
                    attempt_raw,
                )
            })
            .await?;
        rows.into_iter()
            .map(
                |(delivery, msg, ep, attempt, at, trig, status, error, response, us)| {
                    Ok(AttemptRecord {
                        delivery: u64::try_from(delivery).unwrap_or(0),
                        message: message_id(msg)?,
                        endpoint: endpoint_id(ep)?,
                        attempt: count(attempt),
                        at: time(at),
                        trigger: trigger(&trig)?,
                        status,
                        error,
                        response,
                        duration: Duration::from_micros(u64::try_from(us).unwrap_or(0)),
                    })
                },
            )
            .collect()
    }

    async fn replay_webhook_message(&self, message: &MessageId, now: SystemTime) -> Result<u64> {
        let message = message.as_str().to_owned();
        let now = millis(now);
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO consentry_webhook_deliveries
                   (message, endpoint, trigger, state, attempts, next_attempt_at, created_at)
                 SELECT DISTINCT ?1, d.endpoint, 'manual', 'pending', 0, ?2, ?2
                 FROM consentry_webhook_deliveries d
                 JOIN consentry_webhook_endpoints e ON e.id = d.endpoint
                 WHERE d.message = ?1 AND e.enabled = 1",
                params![message, now],
            )
            .map(|n| n as u64)
            .map_err(sql("replaying a webhook message"))
        })
        .await
    }

    async fn recover_webhook_deliveries(
        &self,
        endpoint: &EndpointId,
        since: SystemTime,
        now: SystemTime,
    ) -> Result<u64> {
        let endpoint = endpoint.as_str().to_owned();
        let (since, now) = (millis(since), millis(now));
        self.write(move |conn| {
            conn.execute(
                "UPDATE consentry_webhook_deliveries
                 SET state = 'pending', trigger = 'manual', next_attempt_at = ?3,
                     lease_owner = NULL, lease_until = NULL
                 WHERE endpoint = ?1 AND created_at >= ?2 AND state IN ('failed', 'exhausted')",
                params![endpoint, since, now],
            )
            .map(|n| n as u64)
            .map_err(sql("recovering webhook deliveries"))
        })
        .await
    }

    async fn purge_webhook_messages(&self, before: SystemTime) -> Result<u64> {
        let before = millis(before);
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM consentry_webhook_messages
                 WHERE created_at < ?1 AND NOT EXISTS (
                   SELECT 1 FROM consentry_webhook_deliveries d
                   WHERE d.message = consentry_webhook_messages.id AND d.state = 'pending')",
                [before],
            )
            .map(|n| n as u64)
            .map_err(sql("purging webhook messages"))
        })
        .await
    }
}
