//! Bearer-protected resources: userinfo (`/me`) and the paged item API
//! (`/api/items`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::authorize::json_response;
use super::state::{Kind, State};

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/me", get(userinfo).post(userinfo))
        .route("/api/items", get(items))
}

/// The default items: `item-1` .. `item-12`.
pub(crate) fn default_items() -> Vec<Value> {
    (1..=12)
        .map(|i| {
            json!({
                "id": format!("item-{i}"),
                "title": format!("Item number {i}"),
                "updated_at": format!("2026-01-{i:02}T12:00:00Z"),
            })
        })
        .collect()
}

/// RFC 6750 §3: `401` with a `WWW-Authenticate: Bearer` challenge.
fn unauthorized(error: &str) -> Response {
    let mut r = json_response(StatusCode::UNAUTHORIZED, &json!({"error": error}));
    let challenge = format!("Bearer realm=\"test-provider\", error=\"{error}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The login behind a live access token, or the RFC 6750 error code.
fn bearer_login(state: &State, headers: &HeaderMap) -> Result<String, &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .ok_or("invalid_request")?;
    let inner = state.lock();
    inner
        .active(token, SystemTime::now())
        .filter(|t| t.kind == Kind::Access)
        .and_then(|t| inner.grants.get(&t.grant))
        .map(|g| g.login.clone())
        .ok_or("invalid_token")
}

async fn userinfo(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    state.lock().stats.userinfo_requests += 1;
    match bearer_login(&state, &headers) {
        Ok(login) => json_response(
            StatusCode::OK,
            &json!({"sub": login, "email": format!("{login}@example.test"), "email_verified": true, "name": login}),
        ),
        Err(e) => unauthorized(e),
    }
}

/// `GET /api/items?page_token=N&page_size=M`: `{"items": [...],
/// "next_page_token": "..."}`, the token absent on the last page.
async fn items(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    state.lock().stats.api_requests += 1;
    if let Err(e) = bearer_login(&state, &headers) {
        return unauthorized(e);
    }
    let q = q.unwrap_or_default();
    if q.len() > 1_024 {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "query too long"}));
    }
    let mut start = 0usize;
    let mut size = None;
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        let n = match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) if k == "page_token" || k == "page_size" => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": format!("{k} must be a number")}),
                );
            }
            Err(_) => continue,
        };
        match &*k {
            "page_token" => start = n,
            "page_size" => size = Some(n.clamp(1, 100)),
            _ => {}
        }
    }
    let inner = state.lock();
    let size = size.unwrap_or(inner.page_size);
    let all = &inner.items;
    let start = start.min(all.len());
    let end = start.saturating_add(size).min(all.len());
    let mut body = json!({"items": all[start..end]});
    if end < all.len() {
        body["next_page_token"] = Value::from(end.to_string());
    }
    json_response(StatusCode::OK, &body)
}
