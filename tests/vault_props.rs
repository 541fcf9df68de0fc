//! Property tests: any plaintext round-trips for any ids; an envelope moved
//! to any other row, or altered in any byte, does not open.
#![allow(clippy::unwrap_used)]

use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::store::{CredentialKey, CredentialStore, CredentialWrite, MemoryStore};
use consentry::vault::{CredentialKind, Keyring, Vault};
use consentry::{ConnectionId, ErrorKind, UserId};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn user_strategy() -> impl Strategy<Value = UserId> {
    (proptest::option::of("[a-z0-9]{1,8}"), "[^/\\p{Cc}]{1,24}").prop_map(|(tenant, user)| {
        match tenant {
            Some(t) => UserId::in_tenant(t, user).unwrap(),
            None => UserId::new(user).unwrap(),
        }
    })
}

fn kind_strategy() -> impl Strategy<Value = CredentialKind> {
    proptest::sample::select(CredentialKind::ALL.to_vec())
}

#[derive(Debug, Clone)]
struct Row {
    user: UserId,
    connection: ConnectionId,
    kind: CredentialKind,
}

fn row_strategy() -> impl Strategy<Value = Row> {
    (user_strategy(), "[a-zA-Z0-9_.:-]{1,20}", kind_strategy()).prop_map(|(user, c, kind)| Row {
        user,
        connection: ConnectionId::new(c).unwrap(),
        kind,
    })
}

fn key(r: &Row) -> CredentialKey {
    CredentialKey::new(r.user.clone(), r.connection.clone(), r.kind)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn moved_or_altered_envelopes_never_open(
        plaintext in "\\PC{0,300}",
        from in row_strategy(),
        to in row_strategy(),
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
    ) {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let vault = Vault::new(store.clone(), Keyring::generate().unwrap());
            vault.put(&from.user, &from.connection, from.kind, SecretString::from(plaintext.clone())).await.unwrap();
            let got = vault.get(&from.user, &from.connection, from.kind).await.unwrap();
            prop_assert_eq!(got.value.expose_secret(), plaintext.as_str());

            let envelope = store.get_credential(&key(&from)).await.unwrap().unwrap().envelope;
            // Give the target row's owner a data key of their own, then move.
            if to.user != from.user {
                vault.put(&to.user, &to.connection, to.kind, SecretString::from("placeholder")).await.unwrap();
            }
            let same_row = key(&from) == key(&to);
            store.put_credentials(vec![CredentialWrite::new(key(&to), envelope.clone())]).await.unwrap();
            let moved = vault.get(&to.user, &to.connection, to.kind).await;
            if same_row {
                prop_assert!(moved.is_ok());
            } else {
                let err = moved.unwrap_err();
                prop_assert_eq!(err.kind(), ErrorKind::Crypto);
            }

            let mut altered = envelope;
            let i = flip_at.index(altered.len());
            altered[i] ^= flip_bits;
            store.put_credentials(vec![CredentialWrite::new(key(&from), altered)]).await.unwrap();
            let err = vault.get(&from.user, &from.connection, from.kind).await.unwrap_err();
            prop_assert_eq!(err.kind(), ErrorKind::Crypto);
            Ok(())
        })?;
    }
}
