//! Tests of the error type and its problem documents.

use super::*;

#[test]
fn server_errors_do_not_leak_details() {
    let err = Error::storage(
        "reading credential row 42",
        std::io::Error::other("disk /x"),
    );
    let p = err.to_problem();
    assert_eq!(p.status, 503);
    assert!(!p.detail.contains("42") && !p.detail.contains("disk"));
    assert!(err.to_string().contains("reading credential row 42"));
    assert!(
        !err.to_string().contains("disk /x"),
        "message must not repeat the source"
    );
}

#[test]
fn problems_carry_what_the_client_acts_on() {
    let p = Error::ConsentRequired {
        purpose: crate::ids::Purpose::new("matching").unwrap(),
    }
    .to_problem();
    assert_eq!(
        (p.status, p.extensions["purpose"].as_str()),
        (403, Some("matching"))
    );
    let p = Error::InsufficientScope {
        missing: vec![crate::ids::Scope::new("calendar").unwrap()],
    }
    .to_problem();
    assert_eq!(p.extensions["missing_scopes"][0], "calendar");
    assert!(p.detail.contains("calendar"));
    let p = Error::RateLimited {
        retry_after: Some(std::time::Duration::from_millis(1500)),
    }
    .to_problem();
    assert_eq!(
        (p.status, p.extensions["retry_after"].as_u64()),
        (429, Some(1))
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["retry_after"], 1, "extensions are top-level members");
}

#[test]
fn every_kind_has_a_distinct_name() {
    let kinds = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Crypto,
        ErrorKind::Key,
        ErrorKind::Migration,
        ErrorKind::Storage,
        ErrorKind::Unauthorized,
        ErrorKind::Internal,
        ErrorKind::ReauthRequired,
        ErrorKind::AccessDenied,
        ErrorKind::InvalidCallback,
        ErrorKind::Upstream,
        ErrorKind::Unavailable,
        ErrorKind::ConsentRequired,
        ErrorKind::InsufficientScope,
        ErrorKind::RateLimited,
        ErrorKind::Forbidden,
        ErrorKind::Integrity,
    ];
    let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), kinds.len());
    let titles: std::collections::HashSet<_> = kinds.iter().map(|k| k.title()).collect();
    assert_eq!(titles.len(), kinds.len());
}

#[test]
fn forbidden_is_403_and_names_the_action() {
    let e = Error::Forbidden {
        action: "create a webhook endpoint",
    };
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    let p = e.to_problem();
    assert_eq!((p.status, p.title.as_str()), (403, "Forbidden"));
    assert_eq!(
        p.detail,
        "forbidden: create a webhook endpoint needs an admin"
    );
}

#[test]
fn webhook_errors_map_to_401_or_400() {
    let failed = Error::from(WebhookError::NoMatchingSignature);
    assert_eq!(failed.kind(), ErrorKind::Unauthorized);
    let p = failed.to_problem();
    assert_eq!((p.status, p.title.as_str()), (401, "Unauthorized"));
    assert_eq!(p.detail, "no signature matches");
    assert!(!failed.kind().is_retryable());

    let bad = Error::from(WebhookError::InvalidSecret { reason: "empty" });
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    assert_eq!(bad.to_problem().status, 400);
}

#[test]
fn refused_api_tokens_are_401_with_a_reason() {
    use crate::api_token::ApiTokenRejection;
    let e = Error::InvalidApiToken {
        reason: ApiTokenRejection::Expired,
    };
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let p = e.to_problem();
    assert_eq!((p.status, p.title.as_str()), (401, "Unauthorized"));
    assert_eq!(p.extensions["reason"], "expired");
    assert_eq!(p.detail, "invalid API token: the token has expired");
    assert!(!e.kind().is_retryable());
    let names: std::collections::HashSet<_> = [
        ApiTokenRejection::Malformed,
        ApiTokenRejection::BadChecksum,
        ApiTokenRejection::Unknown,
        ApiTokenRejection::Expired,
        ApiTokenRejection::Revoked,
        ApiTokenRejection::Inactive,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(names.len(), 6);
}

#[test]
fn refused_signed_links_are_401_or_403() {
    use crate::signed_url::SignedUrlRejection;
    let e = Error::InvalidSignedUrl {
        reason: SignedUrlRejection::BadSignature,
    };
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.to_problem().status, 401);
    assert_eq!(e.to_problem().extensions["reason"], "bad-signature");
    let e = Error::InvalidSignedUrl {
        reason: SignedUrlRejection::WrongScope,
    };
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert_eq!(e.to_problem().status, 403);
    assert_eq!(e.to_problem().extensions["reason"], "wrong-scope");
}
