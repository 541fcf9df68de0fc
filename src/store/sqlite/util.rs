//! Row helpers shared by the SQLite concern files.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::vault::Version;

/// The stored form of a user's tenant: `''` when there is none (a real
/// tenant is never empty).
pub(super) fn tenant(user: &UserId) -> String {
    user.tenant().unwrap_or("").to_owned()
}

pub(super) fn user_from_row(tenant: String, user: String) -> Result<UserId> {
    if tenant.is_empty() {
        UserId::new(user)
    } else {
        UserId::in_tenant(tenant, user)
    }
    .map_err(|e| corrupt("user id", e))
}

pub(super) fn corrupt(what: &'static str, e: Error) -> Error {
    Error::storage(format!("a stored {what} is invalid"), e)
}

pub(super) fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::storage(context, e)
}

/// Runs a cached query and collects every row.
pub(super) fn query_all<T, P, F>(
    conn: &Connection,
    query: &str,
    params: P,
    context: &'static str,
    map: F,
) -> Result<Vec<T>>
where
    P: rusqlite::Params,
    F: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
{
    let mut stmt = conn.prepare_cached(query).map_err(sql(context))?;
    let rows = stmt.query_map(params, map).and_then(Iterator::collect);
    rows.map_err(sql(context))
}

pub(super) fn version_from(v: i64) -> Version {
    Version::new(u64::try_from(v).unwrap_or(0))
}

/// Whether `e` is a UNIQUE or PRIMARY KEY constraint violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Milliseconds since the epoch, for a column.
pub(super) fn millis(t: std::time::SystemTime) -> i64 {
    crate::clock::unix_millis(t)
}

/// A time from a column.
pub(super) fn time(ms: i64) -> std::time::SystemTime {
    crate::clock::from_unix_millis(ms)
}

/// Scopes as stored: space-separated (a scope never contains a space).
pub(super) fn join_scopes(scopes: &[crate::ids::Scope]) -> String {
    scopes
        .iter()
        .map(crate::ids::Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scopes from their stored form.
pub(super) fn split_scopes(s: &str) -> Result<Vec<crate::ids::Scope>> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| crate::ids::Scope::new(s).map_err(|e| corrupt("scope", e)))
        .collect()
}
