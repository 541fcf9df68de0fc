//! Discovery documents (RFC 8414, OpenID Connect Discovery) and the
//! authorization endpoint: the request checks and the scripted user's
//! decision.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use url::Url;

use super::state::{CODE_TTL, Code, State};
use crate::error::{Error, Result};
use crate::secret::random_token;

/// The scopes the provider knows; others are dropped from a request, as
/// `oidc-provider` does.
pub(crate) const SCOPES: [&str; 5] = ["openid", "email", "profile", "offline_access", "items:read"];
/// Longest accepted query parameter value.
const MAX_PARAM: usize = 2_048;
/// Longest accepted authorization request URL.
const MAX_URL: usize = 8_192;
/// The user `GET /authorize` approves as.
const BROWSER_LOGIN: &str = "ada";

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn discovery(AxState(state): AxState<Arc<State>>) -> Response {
    let base = state.issuer.as_str();
    let doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "revocation_endpoint": format!("{base}/token/revocation"),
        "introspection_endpoint": format!("{base}/token/introspection"),
        "userinfo_endpoint": format!("{base}/me"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "claims_supported": ["sub", "email", "name"],
    });
    json_response(StatusCode::OK, &doc)
}

/// A browser's `GET /authorize`: approves as `ada` (or declines when
/// `set_deny_all`) and redirects.
async fn authorize(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    let mut url = Url::parse(&state.issuer)
        .and_then(|u| u.join("/authorize"))
        .ok();
    if let Some(u) = url.as_mut() {
        u.set_query(q.as_deref());
    }
    let Some(url) = url else {
        return (StatusCode::BAD_REQUEST, "bad request").into_response();
    };
    let deny = state.lock().deny_all;
    let login = (!deny).then_some(BROWSER_LOGIN);
    match decide(&state, &url, login, SystemTime::now()) {
        Ok(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// Checks the authorization request in `url` and returns where the browser
/// goes next: the callback with a code if `login` approves, with
/// `error=access_denied` if `login` is `None`, with another `error` if the
/// request is invalid but its redirect URI is trusted.
pub(crate) fn decide(
    state: &State,
    url: &Url,
    login: Option<&str>,
    now: SystemTime,
) -> Result<Url> {
    let bad = |reason: &str| Error::invalid("authorization request", reason.to_owned());
    if url.as_str().len() > MAX_URL {
        return Err(bad("the URL is too long"));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        if v.len() > MAX_PARAM || params.len() >= 64 {
            return Err(bad("a parameter is too long, or there are too many"));
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            // RFC 6749 §3.1: parameters must not be repeated.
            return Err(bad("a parameter is repeated"));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Without a known client and an exactly registered redirect URI there is
    // nobody to redirect to safely: an error page (RFC 6749 §4.1.2.1).
    let client_id = get("client_id").ok_or_else(|| bad("no client_id"))?;
    let redirect_uri = get("redirect_uri").ok_or_else(|| bad("no redirect_uri"))?;
    let mut inner = state.lock();
    let client = inner
        .client(client_id)
        .ok_or_else(|| bad("unknown client_id"))?;
    if !client
        .redirect_uris()
        .iter()
        .any(|r| redirect_matches(r, redirect_uri))
    {
        return Err(bad("redirect_uri is not registered for this client"));
    }
    let mut callback = Url::parse(redirect_uri).map_err(|_| bad("redirect_uri is not a URL"))?;
    let reply = |callback: &mut Url, pairs: &[(&str, &str)]| {
        let mut q = callback.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = get("state") {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.issuer);
    };
    let error = |mut callback: Url, code: &str, description: &str| {
        reply(
            &mut callback,
            &[("error", code), ("error_description", description)],
        );
        Ok(callback)
    };
    if get("response_type") != Some("code") {
        return error(
            callback,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if let Some(mode) = get("response_mode")
        && mode != "query"
    {
        return error(
            callback,
            "invalid_request",
            "only response_mode=query is supported",
        );
    }
    let Some(login) = login else {
        return error(callback, "access_denied", "the user declined");
    };
    if login.is_empty()
        || login.len() > 64
        || !login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(Error::invalid(
            "login",
            "1 to 64 ASCII letters, digits, `.`, `_` or `-`",
        ));
    }
    // PKCE (RFC 7636) is required, S256 only: `plain` is refused.
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (Some(c), Some("S256")) if c.len() == 43 => c.to_owned(),
        (Some(_), Some("S256")) => {
            return error(
                callback,
                "invalid_request",
                "code_challenge must be 43 characters",
            );
        }
        (Some(_), Some(_) | None) => {
            return error(
                callback,
                "invalid_request",
                "code_challenge_method must be S256 (plain is not allowed)",
            );
        }
        (None, _) => return error(callback, "invalid_request", "PKCE (S256) is required"),
    };
    let scopes: Vec<String> = get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| SCOPES.contains(s))
        .map(str::to_owned)
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    if !inner.make_room(now) {
        return error(
            callback,
            "temporarily_unavailable",
            "too many outstanding codes",
        );
    }
    let code = random_token(24)?;
    inner.codes.insert(
        code.clone(),
        Code {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge,
            login: login.to_owned(),
            scopes,
            nonce: get("nonce").map(str::to_owned),
            expires_at: now + CODE_TTL,
            grant: None,
        },
    );
    drop(inner);
    reply(&mut callback, &[("code", &code)]);
    Ok(callback)
}

/// Whether `requested` is the registered redirect URI: the same string, or,
/// for a loopback IP literal over plain HTTP (`127.0.0.1`, `[::1]`), the
/// same URI with any port, as RFC 8252 §7.3 requires for native apps.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(mut reg), Ok(mut req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    if !(loopback(&reg) && loopback(&req)) {
        return false;
    }
    if reg.set_port(None).is_err() || req.set_port(None).is_err() {
        return false;
    }
    reg == req
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        let reg = "http://127.0.0.1/callback";
        assert!(redirect_matches(reg, "http://127.0.0.1:49152/callback"));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:49152/other"));
        assert!(!redirect_matches(reg, "http://localhost:49152/callback"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:1/callback?x=1"));
        let https = "https://app.example/cb";
        assert!(redirect_matches(https, https));
        assert!(!redirect_matches(https, "https://app.example:8443/cb"));
        assert!(!redirect_matches(
            "http://10.0.0.1/cb",
            "http://10.0.0.1:8/cb"
        ));
    }
}
