//! The request handlers. Reads are `GET`; every change is a `POST` with a
//! CSRF token ([`super::session::check_post`]) and answers `303 See Other`,
//! so reloading a page never repeats an action.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use consentry::integrations::RecordQuery;
use consentry::url::form_urlencoded;
use consentry::{ConnectionId, ConnectorId, Error, Purpose, UserId};

use super::AppState;
use super::html;
use super::session::{Session, check_post};

type AppRef = Arc<AppState>;

/// Largest accepted form body.
const MAX_FORM: usize = 8 * 1024;
/// Most fields read from a form.
const MAX_FIELDS: usize = 16;
/// The component name reads from this page carry in the access log.
const COMPONENT: &str = "connected-services page";

/// Every route of the app.
pub fn router(state: AppRef) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/style.css", get(style))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/connect", post(connect))
        .route("/callback", get(callback))
        .route("/connections/{id}/consent", post(consent))
        .route("/connections/{id}/sync", post(sync))
        .route("/connections/{id}/disconnect", post(disconnect))
        .route("/connections/{id}/records", get(records))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(state)
}

/// An HTML response with the security headers every page carries.
fn page(
    state: &AppState,
    status: StatusCode,
    body: String,
    cookie: Option<HeaderValue>,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(state, h);
    if let Some(c) = cookie {
        h.append(header::SET_COOKIE, c);
    }
    r
}

fn secure_headers(state: &AppState, h: &mut HeaderMap) {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {}; frame-ancestors 'none'; base-uri 'none'",
        state.form_origins
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The callback URL carries an authorization code: never send a URL to
    // another origin. (`no-referrer` would also make browsers send
    // `Origin: null` on the app's own forms, which the CSRF check refuses.)
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn see_other(state: &AppState, to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    secure_headers(state, h);
    if let Some(c) = cookie {
        h.append(header::SET_COOKIE, c);
    }
    r
}

/// The request's session, or a new one (whose cookie must be set).
fn session(state: &AppState, headers: &HeaderMap) -> (String, Session, Option<HeaderValue>) {
    if let Some((id, s)) = state.sessions.get(headers) {
        return (id, s, None);
    }
    let (id, s) = state.sessions.create();
    let cookie = state.sessions.set_cookie(&id);
    (id, s, Some(cookie))
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body)
        .take(MAX_FIELDS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn forbidden(state: &AppState) -> Response {
    let body = html::layout(
        "Request refused",
        None,
        "",
        None,
        &html::problem(
            "This form has expired",
            "The request did not carry this page's security token. Reload the page and try again.",
        ),
    );
    page(state, StatusCode::FORBIDDEN, body, None)
}

/// A checked `POST` from a signed-in user: `(session id, user, form)`, or
/// the response to send instead.
fn signed_in_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, UserId, HashMap<String, String>), Box<Response>> {
    let Some((id, s)) = state.sessions.get(headers) else {
        return Err(Box::new(forbidden(state)));
    };
    let f = form(body);
    if !check_post(
        &s,
        f.get("csrf").map(String::as_str),
        headers,
        &state.origin,
    ) {
        return Err(Box::new(forbidden(state)));
    }
    match s.user {
        Some(user) => Ok((id, user, f)),
        None => Err(Box::new(see_other(state, "/", None))),
    }
}

fn flash(state: &AppState, id: &str, text: impl Into<String>, error: bool) {
    let text = text.into();
    state.sessions.update(id, |s| s.flash = Some((text, error)));
}

async fn index(State(state): State<AppRef>, headers: HeaderMap) -> Response {
    let (id, s, cookie) = session(&state, &headers);
    let flash = state.sessions.take_flash(&id);
    let Some(user) = s.user else {
        let body = html::layout(
            "Sign in",
            None,
            &s.csrf,
            flash.as_ref(),
            &html::sign_in(&s.csrf, None),
        );
        return page(&state, StatusCode::OK, body, cookie);
    };
    match state.integrations.report(&user).await {
        Ok(report) => {
            let main = html::services(&report, &state.cards, &s.csrf);
            let body = html::layout(
                "Connected Services",
                Some(&user),
                &s.csrf,
                flash.as_ref(),
                &main,
            );
            page(&state, StatusCode::OK, body, cookie)
        }
        Err(e) => error_page(&state, Some(&user), &s.csrf, &e),
    }
}

fn error_page(state: &AppState, user: Option<&UserId>, csrf: &str, e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.to_problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = html::layout(
        "Something went wrong",
        user,
        csrf,
        None,
        &html::problem("Something went wrong", &e.to_string()),
    );
    page(state, status, body, None)
}

async fn style(State(state): State<AppRef>) -> Response {
    let mut r = html::STYLE.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure_headers(&state, h);
    r
}

async fn not_found(State(state): State<AppRef>) -> Response {
    let body = html::layout(
        "Not found",
        None,
        "",
        None,
        &html::problem("Not found", "There is no page at this address."),
    );
    page(&state, StatusCode::NOT_FOUND, body, None)
}

async fn sign_in(State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((id, s)) = state.sessions.get(&headers) else {
        return forbidden(&state);
    };
    let f = form(&body);
    if !check_post(
        &s,
        f.get("csrf").map(String::as_str),
        &headers,
        &state.origin,
    ) {
        return forbidden(&state);
    }
    let name = f.get("name").map_or("", |n| n.trim());
    match UserId::new(name) {
        Ok(user) => {
            let new_id = state.sessions.sign_in(&id, user);
            let cookie = state.sessions.set_cookie(&new_id);
            see_other(&state, "/", Some(cookie))
        }
        Err(e) => {
            let main = html::sign_in(&s.csrf, Some(&format!("That name cannot be used: {e}")));
            let body = html::layout("Sign in", None, &s.csrf, None, &main);
            page(&state, StatusCode::BAD_REQUEST, body, None)
        }
    }
}

async fn sign_out(State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((id, s)) = state.sessions.get(&headers) else {
        return see_other(&state, "/", None);
    };
    if !check_post(
        &s,
        form(&body).get("csrf").map(String::as_str),
        &headers,
        &state.origin,
    ) {
        return forbidden(&state);
    }
    state.sessions.remove(&id);
    see_other(&state, "/", Some(state.sessions.clear_cookie()))
}

async fn connect(State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> Response {
    let (id, user, f) = match signed_in_post(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let connector = f.get("connector").map_or("", String::as_str);
    let started = match connector.parse::<ConnectorId>() {
        Ok(c) => state.integrations.begin_connect(&user, &c, &[]).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(start) => see_other(&state, start.authorize_url.as_str(), None),
        Err(e) => {
            flash(
                &state,
                &id,
                format!("Could not start connecting: {e}"),
                true,
            );
            see_other(&state, "/", None)
        }
    }
}

async fn callback(
    State(state): State<AppRef>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((id, s)) = state.sessions.get(&headers) else {
        return see_other(&state, "/", None);
    };
    let Some(user) = s.user else {
        return see_other(&state, "/", None);
    };
    let mut url = match state.base.join("callback") {
        Ok(u) => u,
        Err(_) => return see_other(&state, "/", None),
    };
    url.set_query(query.as_deref());
    match state.integrations.complete_connect(&user, &url).await {
        Ok(c) => {
            let name = connector_name(&state, &c.connector);
            let account = c
                .account
                .email
                .clone()
                .unwrap_or_else(|| c.account.id.clone());
            flash(
                &state,
                &id,
                format!("Connected {name} as {account}."),
                false,
            );
        }
        Err(e) => flash(
            &state,
            &id,
            format!("The connection was not made: {e}"),
            true,
        ),
    }
    see_other(&state, "/", None)
}

/// The streams of `connection`'s connector that serve `purpose`.
async fn streams_for(
    state: &AppState,
    user: &UserId,
    connection: &ConnectionId,
    purpose: Option<&Purpose>,
) -> Result<Vec<(String, Purpose)>, Error> {
    let c = state.integrations.connection(user, connection).await?;
    let consented = state
        .integrations
        .consented_purposes(user, connection)
        .await?;
    let mut out = Vec::new();
    for (stream, purposes) in state.streams.get(&c.connector).into_iter().flatten() {
        let serving = purposes
            .iter()
            .find(|p| purpose.is_none_or(|want| want == *p) && consented.contains(p));
        if let Some(p) = serving {
            out.push((stream.clone(), p.clone()));
        }
    }
    Ok(out)
}

/// Syncs each stream in `todo`; a line for the flash message.
async fn run_syncs(
    state: &AppState,
    user: &UserId,
    connection: &ConnectionId,
    todo: &[(String, Purpose)],
) -> (String, bool) {
    let mut parts = Vec::new();
    let mut failed = false;
    for (stream, purpose) in todo {
        match state
            .integrations
            .sync_now(user, connection, stream, purpose)
            .await
        {
            Ok(r) => parts.push(format!("{stream}: {} record(s) fetched", r.upserted)),
            Err(e) => {
                failed = true;
                parts.push(format!("{stream}: {e}"));
            }
        }
    }
    (parts.join("; "), failed)
}

/// The display name of connector `id` (its id if the app does not offer it).
fn connector_name(state: &AppState, id: &ConnectorId) -> String {
    state
        .cards
        .iter()
        .find(|card| card.id == *id)
        .map_or_else(|| id.to_string(), |card| card.name.clone())
}

fn connection_id(raw: &str) -> Result<ConnectionId, Error> {
    ConnectionId::new(raw)
}

async fn consent(
    State(state): State<AppRef>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    let (id, user, f) = match signed_in_post(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let parsed = connection_id(&raw)
        .and_then(|c| Purpose::new(f.get("purpose").map_or("", String::as_str)).map(|p| (c, p)));
    let (conn, purpose) = match parsed {
        Ok(v) => v,
        Err(e) => {
            flash(&state, &id, e.to_string(), true);
            return see_other(&state, "/", None);
        }
    };
    let on = f.get("consent").map(String::as_str) == Some("on");
    if on {
        if let Err(e) = state
            .integrations
            .grant_consent(&user, &conn, &purpose)
            .await
        {
            flash(&state, &id, format!("Consent was not recorded: {e}"), true);
            return see_other(&state, "/", None);
        }
        let (line, failed) = match streams_for(&state, &user, &conn, Some(&purpose)).await {
            Ok(todo) if todo.is_empty() => ("nothing to fetch for it".to_owned(), false),
            Ok(todo) => run_syncs(&state, &user, &conn, &todo).await,
            Err(e) => (e.to_string(), true),
        };
        flash(&state, &id, format!("{purpose} is on. {line}."), failed);
    } else {
        match state
            .integrations
            .revoke_consent(&user, &conn, &purpose)
            .await
        {
            Ok(()) => flash(
                &state,
                &id,
                format!("{purpose} is off. What was held only for it has been deleted."),
                false,
            ),
            Err(e) => flash(&state, &id, format!("Consent was not changed: {e}"), true),
        }
    }
    see_other(&state, &format!("/#h-{conn}"), None)
}

async fn sync(
    State(state): State<AppRef>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    let (id, user, _) = match signed_in_post(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let result = match connection_id(&raw) {
        Ok(conn) => match streams_for(&state, &user, &conn, None).await {
            Ok(todo) if todo.is_empty() => (
                "Nothing to sync: turn a purpose on first.".to_owned(),
                false,
            ),
            Ok(todo) => run_syncs(&state, &user, &conn, &todo).await,
            Err(e) => (e.to_string(), true),
        },
        Err(e) => (e.to_string(), true),
    };
    flash(&state, &id, result.0, result.1);
    see_other(&state, &format!("/#h-{raw}"), None)
}

async fn disconnect(
    State(state): State<AppRef>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    let (id, user, _) = match signed_in_post(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let conn = match connection_id(&raw) {
        Ok(c) => c,
        Err(e) => {
            flash(&state, &id, e.to_string(), true);
            return see_other(&state, "/", None);
        }
    };
    let name = match state.integrations.connection(&user, &conn).await {
        Ok(c) => connector_name(&state, &c.connector),
        Err(e) => {
            flash(&state, &id, e.to_string(), true);
            return see_other(&state, "/", None);
        }
    };
    let csrf = state
        .sessions
        .get(&headers)
        .map(|(_, s)| s.csrf)
        .unwrap_or_default();
    match state.integrations.disconnect(&user, &conn).await {
        Ok(report) => {
            let body = html::layout(
                "Disconnected",
                Some(&user),
                &csrf,
                None,
                &html::disconnected(&name, &report),
            );
            page(&state, StatusCode::OK, body, None)
        }
        Err(e) => error_page(&state, Some(&user), &csrf, &e),
    }
}

async fn records(
    State(state): State<AppRef>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((_, s)) = state.sessions.get(&headers) else {
        return see_other(&state, "/", None);
    };
    let Some(user) = s.user.clone() else {
        return see_other(&state, "/", None);
    };
    let q = form(query.as_deref().unwrap_or("").as_bytes());
    let stream = q.get("stream").map_or("", String::as_str);
    let read = match (
        connection_id(&raw),
        Purpose::new(q.get("purpose").map_or("", String::as_str)),
    ) {
        (Ok(conn), Ok(purpose)) => {
            let query = RecordQuery::default().component(COMPONENT).limit(100);
            state
                .integrations
                .records_with(&user, &conn, stream, &purpose, &query)
                .await
                .map(|r| (purpose, r))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match read {
        Ok((purpose, held)) => {
            let main = html::records(&raw, stream, purpose.as_str(), &held);
            let body = html::layout("Records", Some(&user), &s.csrf, None, &main);
            page(&state, StatusCode::OK, body, None)
        }
        Err(e) => error_page(&state, Some(&user), &s.csrf, &e),
    }
}
