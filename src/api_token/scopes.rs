//! The catalogue of scopes a token may carry.

use crate::error::{Error, Result};
use crate::ids::Scope;

/// The longest API token scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;

/// One scope of the catalogue, with what it allows.
///
/// ```
/// use consentry::api_token::{ApiTokens, ScopeInfo};
/// use consentry::clock::SystemClock;
/// use consentry::store::MemoryStore;
/// let tokens = ApiTokens::new(MemoryStore::new(), SystemClock);
/// let first: &ScopeInfo = &tokens.scopes()[0];
/// assert_eq!(first.scope.as_str(), "read:connections");
/// assert!(!first.description.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeInfo {
    /// The scope, such as `read:connections`.
    pub scope: Scope,
    /// What it allows, for a token-creation form.
    pub description: String,
}

/// The scopes every catalogue starts with: one per family of the crate's
/// operations.
pub(super) const DEFAULT_SCOPES: &[(&str, &str)] = &[
    (
        "read:connections",
        "List connected accounts, their scopes, status and health",
    ),
    ("write:connections", "Connect and disconnect accounts"),
    ("read:consent", "Read consent and its history"),
    ("write:consent", "Grant and revoke consent"),
    ("read:records", "Read harvested records"),
    ("write:sync", "Start and schedule data syncs"),
    ("read:export", "Export everything held about a user"),
    (
        "read:webhooks",
        "List webhook endpoints and their deliveries",
    ),
    (
        "write:webhooks",
        "Create, change and delete webhook endpoints; replay messages",
    ),
    ("read:audit", "Read the audit log"),
];

/// Checks an API token scope: 1 to [`MAX_SCOPE_LEN`] bytes of lowercase
/// ASCII letters, digits and `_ . -`, in `:`-separated non-empty parts
/// (`read:connections`, `admin`, `write:billing.invoices`).
pub(super) fn check_scope(name: &str) -> Result<Scope> {
    let what = "API token scope";
    if name.is_empty() || name.len() > MAX_SCOPE_LEN {
        return Err(Error::invalid(
            what,
            format!("must be 1 to {MAX_SCOPE_LEN} bytes"),
        ));
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            })
    };
    if !name.split(':').all(part_ok) {
        return Err(Error::invalid(
            what,
            "must be `:`-separated parts of lowercase ASCII letters, digits, `_`, `.` or `-`",
        ));
    }
    Scope::new(name)
}

/// The default catalogue.
pub(super) fn defaults() -> Vec<ScopeInfo> {
    DEFAULT_SCOPES
        .iter()
        .filter_map(|(name, description)| {
            Some(ScopeInfo {
                scope: check_scope(name).ok()?,
                description: (*description).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid() {
        assert_eq!(defaults().len(), DEFAULT_SCOPES.len());
    }

    #[test]
    fn scope_syntax() {
        for ok in [
            "read:connections",
            "admin",
            "write:billing.invoices",
            "a-b:c_d:1",
        ] {
            assert!(check_scope(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Read:connections",
            "read:",
            ":read",
            "read::x",
            "read connections",
            "read:é",
            "read\n",
            &"a".repeat(65),
        ] {
            assert!(check_scope(bad).is_err(), "{bad:?}");
        }
    }
}
