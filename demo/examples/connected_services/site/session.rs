//! Sessions and CSRF protection, kept small enough to read in one go.
//!
//! - The session id is 32 random bytes in an `HttpOnly; SameSite=Lax`
//!   cookie (`Secure` when the site is served over HTTPS). The server keeps
//!   only its SHA-256, so a leaked session table does not leak cookies.
//! - Signing in issues a fresh id (no session fixation).
//! - Every state-changing request is a `POST` carrying the session's CSRF
//!   token in a hidden field, compared in constant time, and, when the
//!   browser sends `Origin`, only from the site's own origin.
//! - Sessions expire after [`IDLE`] without use; the table is bounded by
//!   [`MAX_SESSIONS`] (the oldest goes first).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry::UserId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "cs_session";
/// A session unused for this long is gone.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// At most this many sessions are kept.
pub const MAX_SESSIONS: usize = 10_000;

/// What the server knows about one browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in, if anybody.
    pub user: Option<UserId>,
    /// The token every form of this session carries.
    pub csrf: String,
    /// A one-time message for the next page (text, is it an error).
    pub flash: Option<(String, bool)>,
    last_used: Instant,
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    secure: bool,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something a web page can handle.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// An empty table; `secure` marks the cookie `Secure` (HTTPS sites).
    pub fn new(secure: bool) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            secure,
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session id the request's cookie names, if any.
    pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.to_owned())
            .filter(|v| v.len() == 43)
    }

    /// The live session of this request, refreshed.
    pub fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = Self::cookie_id(headers)?;
        let mut table = self.table();
        let key = digest(&id);
        let session = table.get_mut(&key)?;
        if session.last_used.elapsed() > IDLE {
            table.remove(&key);
            return None;
        }
        session.last_used = Instant::now();
        Some((id, session.clone()))
    }

    /// A new anonymous session: its id and a copy.
    pub fn create(&self) -> (String, Session) {
        let id = random_token();
        let session = Session {
            user: None,
            csrf: random_token(),
            flash: None,
            last_used: Instant::now(),
        };
        let mut table = self.table();
        table.retain(|_, s| s.last_used.elapsed() <= IDLE);
        while table.len() >= MAX_SESSIONS {
            let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            table.remove(&oldest);
        }
        table.insert(digest(&id), session.clone());
        (id, session)
    }

    /// Changes the session `id` with `f` (nothing if it is gone).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.table().get_mut(&digest(id)) {
            f(s);
        }
    }

    /// Takes the session's flash message.
    pub fn take_flash(&self, id: &str) -> Option<(String, bool)> {
        self.table()
            .get_mut(&digest(id))
            .and_then(|s| s.flash.take())
    }

    /// Signs `user` in: the old id stops working and a new one (with a new
    /// CSRF token) is returned.
    pub fn sign_in(&self, old: &str, user: UserId) -> String {
        let mut table = self.table();
        table.remove(&digest(old));
        let id = random_token();
        table.insert(
            digest(&id),
            Session {
                user: Some(user),
                csrf: random_token(),
                flash: None,
                last_used: Instant::now(),
            },
        );
        id
    }

    /// Forgets the session.
    pub fn remove(&self, id: &str) {
        self.table().remove(&digest(id));
    }

    /// The `Set-Cookie` value for session `id`.
    pub fn set_cookie(&self, id: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let max_age = IDLE.as_secs();
        HeaderValue::from_str(&format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("cs_session=; Max-Age=0"))
    }

    /// The `Set-Cookie` value that deletes the cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        HeaderValue::from_static("cs_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    }
}

/// Is this `POST` allowed: its form's `csrf` field equals the session's
/// token (constant time), and its `Origin`, when sent, is `origin`.
pub fn check_post(
    session: &Session,
    form_csrf: Option<&str>,
    headers: &HeaderMap,
    origin: &str,
) -> bool {
    let same_origin = headers
        .get(header::ORIGIN)
        .is_none_or(|o| o.as_bytes() == origin.as_bytes());
    let token_ok = form_csrf.is_some_and(|t| {
        t.len() == session.csrf.len() && bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes()))
    });
    same_origin && token_ok
}
