//! Single flight: concurrent calls with the same key share one execution.
//!
//! The first caller leads: it runs the work and returns its own result, with
//! the full error. The others follow: they wait for the leader's result and
//! get a copy (a faithful [`Failure`] for errors, since [`Error`] is not
//! `Clone`). If the leader's future is dropped before it finishes, the
//! followers notice and one of them takes over; nothing waits forever.
//!
//! Besides its result, the leader hands its followers a note of type `N`
//! (the `access_token` flight: its audit event, so that a follower queues
//! the same entry instead of building an identical one).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};
use crate::ids::{ConnectionId, Purpose, Scope};

/// An error, shared with followers.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    NotFound(&'static str),
    Consent(Purpose),
    Scope(Vec<Scope>),
    Reauth(ConnectionId),
    RateLimited(Option<Duration>),
    Other { kind: ErrorKind, reason: String },
}

impl Failure {
    pub(super) fn of(e: &Error) -> Self {
        match e {
            Error::NotFound { what } => Self::NotFound(what),
            Error::ConsentRequired { purpose } => Self::Consent(purpose.clone()),
            Error::InsufficientScope { missing } => Self::Scope(missing.clone()),
            Error::ReauthRequired { connection } => Self::Reauth(connection.clone()),
            Error::RateLimited { retry_after } => Self::RateLimited(*retry_after),
            other => Self::Other {
                kind: other.kind(),
                reason: other.to_string(),
            },
        }
    }

    pub(super) fn into_error(self) -> Error {
        match self {
            Self::NotFound(what) => Error::NotFound { what },
            Self::Consent(purpose) => Error::ConsentRequired { purpose },
            Self::Scope(missing) => Error::InsufficientScope { missing },
            Self::Reauth(connection) => Error::ReauthRequired { connection },
            Self::RateLimited(retry_after) => Error::RateLimited { retry_after },
            Self::Other { kind, reason } => Error::RefreshFailed { kind, reason },
        }
    }
}

type Shared<V, N> = Option<(std::result::Result<V, Failure>, N)>;

/// In-flight executions by key.
#[derive(Debug)]
pub(super) struct Flights<K, V, N = ()> {
    map: Mutex<HashMap<K, watch::Receiver<Shared<V, N>>>>,
}

impl<K, V, N> Default for Flights<K, V, N> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

/// Removes the leader's entry when the leader finishes or is dropped.
struct Leave<'a, K: Borrow<Q> + Hash + Eq, V, N, Q: Hash + Eq + ?Sized> {
    flights: &'a Flights<K, V, N>,
    key: &'a Q,
    rx: watch::Receiver<Shared<V, N>>,
}

impl<K: Borrow<Q> + Hash + Eq, V, N, Q: Hash + Eq + ?Sized> Drop for Leave<'_, K, V, N, Q> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map
            .get(self.key)
            .is_some_and(|rx| rx.same_channel(&self.rx))
        {
            map.remove(self.key);
        }
    }
}

enum Role<V, N> {
    Lead(watch::Sender<Shared<V, N>>, watch::Receiver<Shared<V, N>>),
    Follow(watch::Receiver<Shared<V, N>>),
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// Runs `work` for `key`, or waits for the run already in flight.
    pub(super) async fn run<F, Fut>(&self, key: K, work: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        self.run_noted(&key, || async { (work().await, ()) }, |()| ())
            .await
            .0
    }
}

impl<K: Hash + Eq, V: Clone, N: Clone> Flights<K, V, N> {
    /// Runs `work` for `key`, or waits for the run already in flight; then
    /// hands `seen` the note of whoever ran the work (by reference: a
    /// follower clones nothing it does not keep).
    ///
    /// The key is borrowed: only a leader makes an owned copy for the map,
    /// so a follower touches no reference count of it.
    pub(super) async fn run_noted<Q, F, Fut, S, R>(
        &self,
        key: &Q,
        work: F,
        seen: S,
    ) -> (Result<V>, R)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = (Result<V>, N)>,
        S: FnOnce(&N) -> R,
    {
        loop {
            let role = {
                let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
                match map.get(key) {
                    Some(rx) => Role::Follow(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        map.insert(key.to_owned(), rx.clone());
                        Role::Lead(tx, rx)
                    }
                }
            };
            match role {
                Role::Lead(tx, rx) => {
                    let _leave = Leave {
                        flights: self,
                        key,
                        rx,
                    };
                    let (result, note) = work().await;
                    let seen = seen(&note);
                    let shared = match &result {
                        Ok(v) => Ok(v.clone()),
                        Err(e) => Err(Failure::of(e)),
                    };
                    let _ = tx.send(Some((shared, note)));
                    return (result, seen);
                }
                Role::Follow(mut rx) => match rx.wait_for(Option::is_some).await {
                    Ok(done) => {
                        if let Some((shared, note)) = done.as_ref() {
                            let result = match shared {
                                Ok(v) => Ok(v.clone()),
                                Err(f) => Err(f.clone().into_error()),
                            };
                            return (result, seen(note));
                        }
                        // `wait_for` returned a value it checked to be `Some`.
                        continue;
                    }
                    // The leader was dropped: take over (or follow a new one).
                    Err(_) => continue,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_calls_share_one_run_and_errors_survive() {
        let flights: Arc<Flights<u8, u32>> = Arc::default();
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (f, r) = (flights.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                f.run(1, || async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(7)
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Afterwards the key is free again.
        let e = flights
            .run(1, || async {
                Err(Error::ConsentRequired {
                    purpose: Purpose::new("p").unwrap(),
                })
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ConsentRequired { .. }));
    }

    #[tokio::test]
    async fn a_dropped_leader_is_replaced() {
        let flights: Arc<Flights<u8, u32>> = Arc::default();
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run(1, || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let f = flights.clone();
        let follower = tokio::spawn(async move { f.run(1, || async { Ok(2) }).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.unwrap(), 2, "the follower took over");
    }
}
