//! A scriptable webhook receiver on 127.0.0.1 (axum), and dispatcher
//! fixtures shared by the dispatcher tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use consentry::clock::{Clock, ManualClock};

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, body `"status N"`.
    Status(u16),
    /// This status and a `Retry-After` header.
    RetryAfter(u16, String),
    /// Waits (real time), then answers 200.
    Slow(Duration),
    /// This status (a 3xx) with `Location` set to this URL.
    Redirect(u16, String),
    /// This status and a body of this many bytes (`0123456789` repeated).
    Big(u16, usize),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// When it arrived, by the receiver's clock (the system clock unless
    /// started with [`Receiver::start_with_clock`]).
    pub at: SystemTime,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

#[derive(Clone, Default)]
struct Shared {
    log: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    delay: Duration,
    clock: Option<ManualClock>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 answering `script` in order, then
    /// 200.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::serve(Shared::default(), script).await
    }

    /// Starts a receiver that answers 200 and stamps each request with
    /// `clock`'s time (the dispatcher's clock in a test).
    pub async fn start_with_clock(clock: ManualClock) -> Self {
        let shared = Shared {
            clock: Some(clock),
            ..Shared::default()
        };
        Self::serve(shared, Vec::new()).await
    }

    /// Starts a receiver that answers every request 200 after `delay`.
    pub async fn start_slow(delay: Duration) -> Self {
        let shared = Shared {
            delay,
            ..Shared::default()
        };
        Self::serve(shared, Vec::new()).await
    }

    async fn serve(shared: Shared, script: Vec<Reply>) -> Self {
        shared.script.lock().unwrap().extend(script);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }
}

async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let at = s.clock.as_ref().map_or_else(SystemTime::now, Clock::now);
    s.log.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at,
    });
    let reply = s.script.lock().unwrap().pop_front();
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    match reply {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Status(code)) => {
            let code = StatusCode::from_u16(code).unwrap();
            (code, format!("status {}", code.as_u16())).into_response()
        }
        Some(Reply::RetryAfter(code, after)) => {
            let code = StatusCode::from_u16(code).unwrap();
            (code, [("retry-after", after)], "slow down").into_response()
        }
        Some(Reply::Redirect(code, location)) => {
            let code = StatusCode::from_u16(code).unwrap();
            (code, [("location", location)], "moved").into_response()
        }
        Some(Reply::Big(code, len)) => {
            let code = StatusCode::from_u16(code).unwrap();
            let body: Vec<u8> = b"0123456789".iter().copied().cycle().take(len).collect();
            (code, body).into_response()
        }
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

/// A fixed start time for manual clocks.
pub fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_900_000_000)
}
