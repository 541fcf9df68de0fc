//! The token endpoint (authorization_code and refresh_token grants,
//! rotation with reuse detection, fault switches), RFC 7009 revocation and
//! RFC 7662 introspection, with client authentication.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::Fault;
use super::authorize::json_response;
use super::state::{Grant, Inner, Kind, State};
use crate::connector::ClientAuth;
use crate::secret::constant_time_eq;

/// Largest accepted form body.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/token", post(token))
        .route("/token/revocation", post(revocation))
        .route("/token/introspection", post(introspection))
}

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = json_response(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"test-provider\""),
        );
    }
    r
}

/// A parsed form body: `None` if a parameter repeats (RFC 6749 §3.2) or the
/// body is not a form.
fn form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.iter().any(|(seen, _)| *seen == k) || out.len() >= 32 {
            return None;
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Some(out)
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `401 invalid_client`.
fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
}

/// The authenticated client's id, `None` if authentication failed. The
/// method must be the one the client is registered with.
fn authenticate(inner: &Inner, headers: &HeaderMap, form: &[(String, String)]) -> Option<String> {
    let invalid = || None;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let decode = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret, method) = match (basic, param(form, "client_secret")) {
        (Some(_), Some(_)) => return invalid(), // two methods at once (RFC 6749 §2.3)
        (Some((id, secret)), None) => (id, Some(secret), ClientAuth::Basic),
        (None, Some(secret)) => match param(form, "client_id") {
            Some(id) => (id.to_owned(), Some(secret.to_owned()), ClientAuth::Post),
            None => return invalid(),
        },
        (None, None) => match param(form, "client_id") {
            Some(id) => (id.to_owned(), None, ClientAuth::None),
            None => return invalid(),
        },
    };
    if let Some(body_id) = param(form, "client_id")
        && body_id != id
    {
        return invalid();
    }
    let Some(client) = inner.client(&id) else {
        return invalid();
    };
    let secret_ok = match (client.secret_str(), secret.as_deref()) {
        (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got.as_bytes()),
        (None, None) => true,
        _ => false,
    };
    if client.auth() != method || !secret_ok {
        return invalid();
    }
    Some(id)
}

/// `S256(verifier) == challenge`, with the verifier's RFC 7636 syntax.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let syntax = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    syntax && constant_time_eq(digest.as_bytes(), challenge.as_bytes())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An ID token (JWT, HS256 with the provider's own key: readable, not
/// meant to be verified by clients).
fn id_token(
    state: &State,
    client_id: &str,
    login: &str,
    nonce: Option<&str>,
    now: SystemTime,
) -> Option<String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = json!({
        "iss": state.issuer, "sub": login, "aud": client_id,
        "iat": unix(now), "exp": unix(now) + 3600,
        "email": format!("{login}@example.test"), "name": login,
    });
    if let Some(n) = nonce {
        claims["nonce"] = Value::from(n);
    }
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&state.id_token_key).ok()?;
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Some(format!("{signing_input}.{sig}"))
}

fn expires_in(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

async fn token(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = SystemTime::now();
    let (delay, response) = {
        let mut inner = state.lock();
        inner.stats.token_requests += 1;
        let delay = inner.token_delay;
        (
            delay,
            token_locked(&state, &mut inner, &headers, &body, now),
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn token_locked(
    state: &State,
    inner: &mut Inner,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Response {
    let Some(form) = form(body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed or repeated parameters",
        );
    };
    let is_refresh = param(&form, "grant_type") == Some("refresh_token");
    if let Some(fault) = inner.faults.pop_front() {
        inner.stats.faults_served += 1;
        if is_refresh {
            inner.stats.refresh_failures += 1;
        }
        return match fault {
            Fault::ServerError => oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "injected fault",
            ),
            Fault::InvalidGrant => {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "injected fault")
            }
            Fault::RateLimited { retry_after } => {
                let mut r = oauth_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "temporarily_unavailable",
                    "injected fault: slow down",
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
        };
    }
    let client_id = match authenticate(inner, headers, &form) {
        Some(id) => id,
        None => return invalid_client(),
    };
    if !inner.make_room(now) {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many tokens",
        );
    }
    let result = match param(&form, "grant_type") {
        Some("authorization_code") => code_grant(state, inner, &client_id, &form, now),
        Some("refresh_token") => refresh_grant(inner, &client_id, &form, now),
        Some(_) => Err((
            "unsupported_grant_type",
            "only authorization_code and refresh_token",
        )),
        None => Err(("invalid_request", "no grant_type")),
    };
    match result {
        Ok(body) => {
            if is_refresh {
                inner.stats.refresh_grants += 1;
            } else {
                inner.stats.code_grants += 1;
            }
            json_response(StatusCode::OK, &body)
        }
        Err((error, description)) => {
            if is_refresh {
                inner.stats.refresh_failures += 1;
            }
            oauth_error(StatusCode::BAD_REQUEST, error, description)
        }
    }
}

type GrantResult = Result<Value, (&'static str, &'static str)>;

fn code_grant(
    state: &State,
    inner: &mut Inner,
    client_id: &str,
    form: &[(String, String)],
    now: SystemTime,
) -> GrantResult {
    let code_value = param(form, "code").ok_or(("invalid_request", "no code"))?;
    let Some(code) = inner.codes.get(code_value).cloned() else {
        return Err(("invalid_grant", "unknown or expired code"));
    };
    if let Some(grant) = code.grant {
        // A replayed code: revoke what it produced (RFC 6749 §4.1.2).
        inner.revoke_grant(grant);
        return Err(("invalid_grant", "the code was already used"));
    }
    if code.client_id != client_id {
        return Err(("invalid_grant", "the code was issued to another client"));
    }
    if code.expires_at <= now {
        inner.codes.remove(code_value);
        return Err(("invalid_grant", "the code expired"));
    }
    if param(form, "redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err((
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = param(form, "code_verifier").ok_or(("invalid_grant", "no code_verifier"))?;
    if !pkce_ok(verifier, &code.challenge) {
        return Err(("invalid_grant", "PKCE verification failed"));
    }
    let grant = inner.add_grant(Grant {
        client_id: client_id.to_owned(),
        login: code.login.clone(),
        scopes: code.scopes.clone(),
        revoked: false,
    });
    if let Some(c) = inner.codes.get_mut(code_value) {
        c.grant = Some(grant);
    }
    let mut body = tokens(inner, grant, &code.scopes, now)?;
    if code.scopes.iter().any(|s| s == "openid")
        && let Some(id) = id_token(state, client_id, &code.login, code.nonce.as_deref(), now)
    {
        body["id_token"] = Value::from(id);
    }
    Ok(body)
}

/// A new access token and (for a new grant, or with rotation) refresh token.
fn tokens(inner: &mut Inner, grant: u64, scopes: &[String], now: SystemTime) -> GrantResult {
    let issue_err = ("server_error", "no randomness");
    let (access, ttl) = inner
        .issue(Kind::Access, grant, scopes, now)
        .map_err(|_| issue_err)?;
    let (refresh, _) = inner
        .issue(Kind::Refresh, grant, scopes, now)
        .map_err(|_| issue_err)?;
    Ok(json!({
        "access_token": access, "token_type": "Bearer", "expires_in": expires_in(ttl),
        "refresh_token": refresh, "scope": scopes.join(" "),
    }))
}

fn refresh_grant(
    inner: &mut Inner,
    client_id: &str,
    form: &[(String, String)],
    now: SystemTime,
) -> GrantResult {
    let value = param(form, "refresh_token").ok_or(("invalid_request", "no refresh_token"))?;
    let Some(token) = inner.tokens.get(value).cloned() else {
        return Err(("invalid_grant", "unknown refresh token"));
    };
    let Some(grant) = inner.grants.get(&token.grant).cloned() else {
        return Err(("invalid_grant", "unknown grant"));
    };
    if token.kind != Kind::Refresh || grant.client_id != client_id {
        return Err(("invalid_grant", "not a refresh token of this client"));
    }
    if token.rotated {
        // Reuse of a rotated refresh token: someone has a copy. Revoke the
        // whole grant (RFC 9700 §4.14.2), as oidc-provider does.
        inner.revoke_grant(token.grant);
        inner.stats.refresh_reuses += 1;
        return Err((
            "invalid_grant",
            "the refresh token was already used; the grant is revoked",
        ));
    }
    if token.revoked || grant.revoked || token.expires_at <= now {
        return Err(("invalid_grant", "the refresh token is revoked or expired"));
    }
    let scopes = match param(form, "scope") {
        None => token.scopes.clone(),
        Some(s) => {
            let asked: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect();
            if !asked.iter().all(|a| grant.scopes.contains(a)) {
                return Err(("invalid_scope", "more scope than was granted"));
            }
            asked
        }
    };
    let (access, ttl) = inner
        .issue(Kind::Access, token.grant, &scopes, now)
        .map_err(|_| ("server_error", "no randomness"))?;
    let mut body = json!({
        "access_token": access, "token_type": "Bearer", "expires_in": expires_in(ttl),
        "scope": scopes.join(" "),
    });
    if inner.rotate {
        let (refresh, _) = inner
            .issue(Kind::Refresh, token.grant, &token.scopes, now)
            .map_err(|_| ("server_error", "no randomness"))?;
        if let Some(old) = inner.tokens.get_mut(value) {
            old.rotated = true;
        }
        body["refresh_token"] = Value::from(refresh);
    }
    Ok(body)
}

async fn revocation(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = SystemTime::now();
    let mut inner = state.lock();
    let Some(form) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed or repeated parameters",
        );
    };
    let client_id = match authenticate(&inner, &headers, &form) {
        Some(id) => id,
        None => return invalid_client(),
    };
    let Some(value) = param(&form, "token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no token");
    };
    // RFC 7009 §2.2: unknown, foreign and already revoked tokens get 200 too.
    let live = inner.active(value, now).cloned();
    if let Some(t) = live {
        let owner = inner.grants.get(&t.grant).map(|g| g.client_id.clone());
        if owner.as_deref() == Some(client_id.as_str()) {
            match t.kind {
                // Revoking a refresh token ends the grant (§2.1: SHOULD).
                Kind::Refresh => inner.revoke_grant(t.grant),
                Kind::Access => {
                    if let Some(x) = inner.tokens.get_mut(value) {
                        x.revoked = true;
                    }
                }
            }
            inner.stats.revocations += 1;
        }
    }
    json_response(StatusCode::OK, &json!({}))
}

async fn introspection(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = SystemTime::now();
    let mut inner = state.lock();
    inner.stats.introspections += 1;
    let Some(form) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed or repeated parameters",
        );
    };
    let client_id = match authenticate(&inner, &headers, &form) {
        Some(id) => id,
        None => return invalid_client(),
    };
    let Some(value) = param(&form, "token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no token");
    };
    let answer = inner.active(value, now).and_then(|t| {
        let g = inner.grants.get(&t.grant)?;
        (g.client_id == client_id).then(|| {
            json!({
                "active": true,
                "scope": t.scopes.join(" "),
                "client_id": g.client_id,
                "sub": g.login,
                "username": g.login,
                "token_type": if t.kind == Kind::Access { "Bearer" } else { "refresh_token" },
                "iat": unix(t.issued_at),
                "exp": unix(t.expires_at),
                "iss": state.issuer,
            })
        })
    });
    json_response(
        StatusCode::OK,
        &answer.unwrap_or_else(|| json!({"active": false})),
    )
}
