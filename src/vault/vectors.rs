//! Known-answer tests for envelope format v1 against
//! `docs/vectors/vault-v1.json` (also checked independently, with PyNaCl,
//! by `docs/vectors/check_vault_v1.py`).
//!
//! To regenerate after a deliberate format change (which needs a new format
//! version, not an edit of v1):
//! `CONSENTRY_WRITE_VECTORS=1 cargo test --lib vault::vectors -- --ignored`.

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::CredentialKind;
use super::envelope::{Envelope, Location, SealKey};
use crate::ids::{ConnectionId, UserId};

const FILE: &str = include_str!("../../docs/vectors/vault-v1.json");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn user_of(v: &Value) -> UserId {
    match v["tenant"].as_str().unwrap() {
        "" => UserId::new(v["user"].as_str().unwrap()).unwrap(),
        t => UserId::in_tenant(t, v["user"].as_str().unwrap()).unwrap(),
    }
}

struct Case {
    name: &'static str,
    key: [u8; 32],
    key_id: &'static str,
    tenant: &'static str,
    user: &'static str,
    nonce: [u8; 24],
    /// `Some((connection, kind))` for a credential; `None` for a data key.
    credential: Option<(&'static str, CredentialKind)>,
    data_key_id: &'static str,
    plaintext: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let seq = |start: u8| -> [u8; 32] { std::array::from_fn(|i| start.wrapping_add(i as u8)) };
    let nonce = |start: u8| -> [u8; 24] { std::array::from_fn(|i| start.wrapping_add(i as u8)) };
    vec![
        Case {
            name: "credential: access token, no tenant",
            key: seq(0x00),
            key_id: "dk_vectorsaaaaaaaaaaaaaaaaaa",
            tenant: "",
            user: "alice",
            nonce: nonce(0x40),
            credential: Some(("conn_google", CredentialKind::AccessToken)),
            data_key_id: "",
            plaintext: b"ya29.a0AfB_byExampleAccessToken".to_vec(),
        },
        Case {
            name: "credential: refresh token, tenant, unicode user id",
            key: seq(0x20),
            key_id: "dk_vectorsbbbbbbbbbbbbbbbbbb",
            tenant: "acme",
            user: "j\u{f6}rg@example.com",
            nonce: nonce(0x60),
            credential: Some(("conn_01", CredentialKind::RefreshToken)),
            data_key_id: "",
            plaintext: b"1//0gExampleRefreshToken-\xe2\x9c\x93".to_vec(),
        },
        Case {
            name: "credential: empty plaintext",
            key: seq(0x80),
            key_id: "dk_vectorscccccccccccccccccc",
            tenant: "t",
            user: "u",
            nonce: nonce(0x00),
            credential: Some(("c", CredentialKind::IdToken)),
            data_key_id: "",
            plaintext: Vec::new(),
        },
        Case {
            name: "data key wrapped under keyring key k1",
            key: seq(0xa0),
            key_id: "k1",
            tenant: "acme",
            user: "bob",
            nonce: nonce(0x90),
            credential: None,
            data_key_id: "dk_vectorsdddddddddddddddddd",
            plaintext: seq(0xc0).to_vec(),
        },
    ]
}

fn location_of<'a>(
    credential: Option<(&'a ConnectionId, CredentialKind)>,
    user: &'a UserId,
    data_key_id: &'a str,
) -> Location<'a> {
    match credential {
        Some((connection, kind)) => Location::Credential {
            user,
            connection,
            kind,
        },
        None => Location::DataKey {
            owner: user,
            data_key_id,
        },
    }
}

#[test]
#[ignore = "writes docs/vectors/vault-v1.json; run only after a deliberate format change"]
fn write_vectors() {
    if std::env::var_os("CONSENTRY_WRITE_VECTORS").is_none() {
        return;
    }
    let mut out = Vec::new();
    for c in cases() {
        let user = if c.tenant.is_empty() {
            UserId::new(c.user).unwrap()
        } else {
            UserId::in_tenant(c.tenant, c.user).unwrap()
        };
        let conn = c
            .credential
            .map(|(conn, kind)| (ConnectionId::new(conn).unwrap(), kind));
        let loc = location_of(conn.as_ref().map(|(c, k)| (c, *k)), &user, c.data_key_id);
        let key = SealKey::new(&Zeroizing::new(c.key));
        let env = key
            .seal_with_nonce(c.key_id, &loc, &c.plaintext, &c.nonce)
            .unwrap();
        let parsed = Envelope::parse(&env).unwrap();
        let header = &env[..2 + c.key_id.len()];
        let mut v = json!({
            "name": c.name,
            "label": if c.credential.is_some() { "credential" } else { "data-key" },
            "key": hex(&c.key),
            "key_id": c.key_id,
            "tenant": c.tenant,
            "user": c.user,
            "nonce": hex(&c.nonce),
            "plaintext": hex(&c.plaintext),
            "aad": hex(&loc.aad(header)),
            "envelope": hex(&env),
        });
        match c.credential {
            Some((conn, kind)) => {
                v["connection"] = json!(conn);
                v["kind"] = json!(kind.as_str());
            }
            None => v["data_key_id"] = json!(c.data_key_id),
        }
        assert_eq!(parsed.key_id(), c.key_id);
        out.push(v);
    }
    let doc = json!({
        "format": "consentry vault envelope v1",
        "spec": "docs/vault.md (Envelope format v1)",
        "encoding": "every byte string is lowercase hex; strings are UTF-8",
        "vectors": out,
    });
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/vectors/vault-v1.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn every_vector_seals_to_the_expected_bytes_and_opens() {
    let doc: Value = serde_json::from_str(FILE).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), cases().len());
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let key: [u8; 32] = unhex(v["key"].as_str().unwrap()).try_into().unwrap();
        let nonce: [u8; 24] = unhex(v["nonce"].as_str().unwrap()).try_into().unwrap();
        let plaintext = unhex(v["plaintext"].as_str().unwrap());
        let key_id = v["key_id"].as_str().unwrap();
        let user = user_of(v);
        let conn = v["connection"]
            .as_str()
            .map(|c| ConnectionId::new(c).unwrap());
        let kind: Option<CredentialKind> = v["kind"].as_str().map(|k| k.parse().unwrap());
        let dk_id = v["data_key_id"].as_str().unwrap_or("");
        let loc = location_of(conn.as_ref().zip(kind), &user, dk_id);
        let seal = SealKey::new(&Zeroizing::new(key));

        let expected = unhex(v["envelope"].as_str().unwrap());
        let env = seal
            .seal_with_nonce(key_id, &loc, &plaintext, &nonce)
            .unwrap();
        assert_eq!(hex(&env), hex(&expected), "{name}: envelope bytes");
        let header = &expected[..2 + key_id.len()];
        assert_eq!(
            hex(&loc.aad(header)),
            v["aad"].as_str().unwrap(),
            "{name}: aad"
        );

        let parsed = Envelope::parse(&expected).unwrap();
        assert_eq!(parsed.key_id(), key_id);
        assert_eq!(
            &*seal.open(&parsed, &loc).unwrap(),
            plaintext.as_slice(),
            "{name}: open"
        );
    }
}
