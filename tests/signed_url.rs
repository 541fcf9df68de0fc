//! Signed, expiring, scoped links: every refusal, and key rotation.
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consentry::http::Method;
use consentry::signed_url::{SignedUrlRejection, UrlSigner};
use consentry::url::{Position, Url};
use consentry::vault::{KeyId, Keyring};
use consentry::{Error, ErrorKind, Scope};
use proptest::prelude::*;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn export() -> Scope {
    Scope::new("read:export").unwrap()
}

fn reason(r: consentry::Result<consentry::signed_url::VerifiedLink>) -> SignedUrlRejection {
    match r {
        Err(Error::InvalidSignedUrl { reason }) => reason,
        other => panic!("expected a refused link, got {other:?}"),
    }
}

fn signed(signer: &UrlSigner) -> Url {
    let url = Url::parse("https://app.example/exports/42.csv?format=csv&lang=en").unwrap();
    signer
        .sign(
            &Method::GET,
            &url,
            "acme/alice",
            &export(),
            now() + Duration::from_secs(600),
        )
        .unwrap()
}

/// The link with query parameter `name` set to `value` (or removed).
fn with_param(link: &Url, name: &str, value: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = link
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = link.clone();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            if k == name {
                if let Some(value) = value {
                    q.append_pair(k, value);
                }
            } else {
                q.append_pair(k, v);
            }
        }
    }
    out.to_string()
}

#[test]
fn a_signed_link_verifies_as_path_and_query_or_whole_url() {
    let signer = UrlSigner::new(Keyring::generate().unwrap());
    let link = signed(&signer);
    let path_and_query = &link[Position::BeforePath..];
    assert!(path_and_query.starts_with("/exports/42.csv?format=csv&lang=en&cs_method=GET"));
    for form in [path_and_query, link.as_str()] {
        let v = signer.verify(&Method::GET, form, &export(), now()).unwrap();
        assert_eq!(v.path, "/exports/42.csv");
        assert_eq!(v.subject, "acme/alice");
        assert_eq!(v.scope, export());
        assert_eq!(v.key_id.as_str(), "k1");
        assert_eq!(v.expires_at, now() + Duration::from_secs(600));
    }
    // Scheme and host are not signed: the link works behind another name.
    let elsewhere = link
        .as_str()
        .replace("https://app.example", "http://internal:8080");
    signer
        .verify(&Method::GET, &elsewhere, &export(), now())
        .unwrap();
}

#[test]
fn an_expired_link_is_refused() {
    let signer = UrlSigner::new(Keyring::generate().unwrap());
    let link = signed(&signer);
    let just_before = now() + Duration::from_secs(599);
    signer
        .verify(&Method::GET, link.as_str(), &export(), just_before)
        .unwrap();
    for at in [
        now() + Duration::from_secs(600),
        now() + Duration::from_secs(86_400),
    ] {
        let r = signer.verify(&Method::GET, link.as_str(), &export(), at);
        assert_eq!(reason(r), SignedUrlRejection::Expired);
    }
    let e = signer
        .verify(
            &Method::GET,
            link.as_str(),
            &export(),
            now() + Duration::from_secs(600),
        )
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.to_problem().status),
        (ErrorKind::Unauthorized, 401)
    );
}

#[test]
fn an_altered_link_is_refused() {
    let ring = Keyring::generate().unwrap().rotated().unwrap(); // k2 primary, k1 kept
    let signer = UrlSigner::new(ring);
    let link = signed(&signer);
    assert_eq!(
        link.query_pairs().find(|(k, _)| k == "cs_kid").unwrap().1,
        "k2"
    );
    let later_exp = (1_800_000_000u64 + 86_400).to_string();
    let altered = [
        (
            "path",
            link.as_str().replace("/exports/42.csv", "/exports/43.csv"),
        ),
        ("path case", link.as_str().replace("/exports/", "/Exports/")),
        ("subject", with_param(&link, "cs_sub", Some("acme/mallory"))),
        ("expiry", with_param(&link, "cs_exp", Some(&later_exp))),
        ("key id", with_param(&link, "cs_kid", Some("k1"))),
        ("scope", with_param(&link, "cs_scope", Some("write:export"))),
        ("method", with_param(&link, "cs_method", Some("DELETE"))),
        ("other parameter", with_param(&link, "format", Some("json"))),
        ("removed parameter", with_param(&link, "lang", None)),
        ("added parameter", format!("{link}&admin=1")),
    ];
    for (what, changed) in altered {
        let method = if what == "method" {
            Method::DELETE
        } else {
            Method::GET
        };
        let required = if what == "scope" {
            Scope::new("write:export").unwrap()
        } else {
            export()
        };
        let r = signer.verify(&method, &changed, &required, now());
        assert_eq!(
            reason(r),
            SignedUrlRejection::BadSignature,
            "{what}: {changed}"
        );
    }
    // Every character of the signature matters.
    let sig = link
        .query_pairs()
        .find(|(k, _)| k == "cs_sig")
        .unwrap()
        .1
        .into_owned();
    for i in 0..sig.len() {
        let mut b = sig.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let changed = with_param(&link, "cs_sig", Some(std::str::from_utf8(&b).unwrap()));
        let r = signer.verify(&Method::GET, &changed, &export(), now());
        assert!(
            matches!(
                reason(r),
                SignedUrlRejection::BadSignature | SignedUrlRejection::Malformed
            ),
            "signature byte {i}"
        );
    }
    // Another keyring with the same key ids does not accept it.
    let stranger = UrlSigner::new(Keyring::generate().unwrap().rotated().unwrap());
    let r = stranger.verify(&Method::GET, link.as_str(), &export(), now());
    assert_eq!(reason(r), SignedUrlRejection::BadSignature);
}

#[test]
fn a_link_for_another_scope_or_method_is_refused() {
    let signer = UrlSigner::new(Keyring::generate().unwrap());
    let link = signed(&signer);
    for required in ["write:export", "read:export:all", "read:media"] {
        let e = signer
            .verify(
                &Method::GET,
                link.as_str(),
                &Scope::new(required).unwrap(),
                now(),
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidSignedUrl {
                    reason: SignedUrlRejection::WrongScope
                }
            ),
            "{required}: {e:?}"
        );
        assert_eq!(
            (e.kind(), e.to_problem().status),
            (ErrorKind::Forbidden, 403)
        );
        assert_eq!(e.to_problem().extensions["reason"], "wrong-scope");
    }
    for method in [Method::POST, Method::DELETE, Method::HEAD, Method::PUT] {
        let r = signer.verify(&method, link.as_str(), &export(), now());
        assert_eq!(reason(r), SignedUrlRejection::WrongMethod, "{method}");
    }
    let post = signer
        .sign(
            &Method::POST,
            &Url::parse("https://app.example/upload").unwrap(),
            "alice",
            &export(),
            now() + Duration::from_secs(60),
        )
        .unwrap();
    signer
        .verify(&Method::POST, post.as_str(), &export(), now())
        .unwrap();
    let r = signer.verify(&Method::GET, post.as_str(), &export(), now());
    assert_eq!(reason(r), SignedUrlRejection::WrongMethod);
}

#[test]
fn links_survive_key_rotation_while_the_old_key_is_kept() {
    let ring = Keyring::generate().unwrap();
    let old_signer = UrlSigner::new(ring.clone());
    let old_link = signed(&old_signer);

    let rotated = ring.rotated().unwrap();
    assert_eq!(rotated.primary().as_str(), "k2");
    let signer = UrlSigner::new(rotated.clone());
    let v = signer
        .verify(&Method::GET, old_link.as_str(), &export(), now())
        .unwrap();
    assert_eq!(
        v.key_id.as_str(),
        "k1",
        "verified under the old, non-primary key"
    );
    let new_link = signed(&signer);
    assert_eq!(
        signer
            .verify(&Method::GET, new_link.as_str(), &export(), now())
            .unwrap()
            .key_id
            .as_str(),
        "k2"
    );
    // The old signer does not know k2.
    let r = old_signer.verify(&Method::GET, new_link.as_str(), &export(), now());
    assert_eq!(reason(r), SignedUrlRejection::UnknownKey);

    // Once k1 is retired its links stop working; k2's keep working.
    let retired = UrlSigner::new(rotated.without(&KeyId::new("k1").unwrap()).unwrap());
    let r = retired.verify(&Method::GET, old_link.as_str(), &export(), now());
    assert_eq!(reason(r), SignedUrlRejection::UnknownKey);
    retired
        .verify(&Method::GET, new_link.as_str(), &export(), now())
        .unwrap();
}

#[test]
fn malformed_links_are_refused() {
    let signer = UrlSigner::new(Keyring::generate().unwrap());
    let link = signed(&signer);
    let mut cases: Vec<String> = vec![
        String::new(),
        "/".into(),
        "not a url".into(),
        "/exports/42.csv".into(),
        "/exports/42.csv?format=csv".into(),
        format!("{link}&cs_sub=acme%2Falice"), // repeated parameter
        format!("{link}&cs_extra=1"),          // unknown reserved parameter
        with_param(&link, "cs_exp", Some("-1")),
        with_param(&link, "cs_exp", Some("1e9")),
        with_param(&link, "cs_exp", Some(&"9".repeat(40))),
        with_param(&link, "cs_kid", Some("k:1")),
        with_param(&link, "cs_sig", Some("not base64!")),
        format!("/x?{}", "a=1&".repeat(100)),
        format!("{link}&pad={}", "p".repeat(9000)),
        "/ü?cs_sig=é".into(),
    ];
    for name in [
        "cs_method",
        "cs_exp",
        "cs_scope",
        "cs_sub",
        "cs_kid",
        "cs_sig",
    ] {
        cases.push(with_param(&link, name, None));
    }
    for case in &cases {
        let r = signer.verify(&Method::GET, case, &export(), now());
        assert_eq!(reason(r), SignedUrlRejection::Malformed, "{case:.80}");
    }
}

#[test]
fn signing_refuses_what_it_cannot_sign_safely() {
    let signer = UrlSigner::new(Keyring::generate().unwrap());
    let exp = now() + Duration::from_secs(60);
    let url = |s: &str| Url::parse(s).unwrap();
    let invalid = |r: consentry::Result<Url>| r.unwrap_err().kind() == ErrorKind::InvalidInput;
    assert!(invalid(signer.sign(
        &Method::GET,
        &url("https://a/x?cs_sig=1"),
        "s",
        &export(),
        exp
    )));
    assert!(invalid(signer.sign(
        &Method::GET,
        &url("https://a/x"),
        "",
        &export(),
        exp
    )));
    assert!(invalid(signer.sign(
        &Method::GET,
        &url("https://a/x"),
        "a\nb",
        &export(),
        exp
    )));
    assert!(invalid(signer.sign(
        &Method::GET,
        &url("https://a/x"),
        &"s".repeat(256),
        &export(),
        exp
    )));
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
    assert!(invalid(signer.sign(
        &Method::GET,
        &url("https://a/x"),
        "s",
        &export(),
        before_1970
    )));
    let long = url(&format!("https://a/{}", "p".repeat(8200)));
    assert!(invalid(signer.sign(
        &Method::GET,
        &long,
        "s",
        &export(),
        exp
    )));
    let many = url(&format!("https://a/x?{}", "a=1&".repeat(60)));
    assert!(invalid(signer.sign(
        &Method::GET,
        &many,
        "s",
        &export(),
        exp
    )));
    // Subjects and parameters with any characters round-trip.
    let odd = url("https://a/files/r%C3%A9sum%C3%A9.pdf?q=a+b&x=%26%3D");
    let link = signer
        .sign(&Method::GET, &odd, "tenant/ü & =", &export(), exp)
        .unwrap();
    let v = signer
        .verify(&Method::GET, link.as_str(), &export(), now())
        .unwrap();
    assert_eq!(v.subject, "tenant/ü & =");
}

proptest! {
    /// Arbitrary input never panics and never verifies.
    #[test]
    fn arbitrary_links_are_refused_without_panicking(s in any::<String>(), path in "/[a-z0-9/?&=._%-]{0,200}") {
        let signer = UrlSigner::new(Keyring::generate().unwrap());
        prop_assert!(signer.verify(&Method::GET, &s, &export(), now()).is_err());
        prop_assert!(signer.verify(&Method::GET, &path, &export(), now()).is_err());
    }
}
