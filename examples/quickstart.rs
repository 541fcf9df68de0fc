//! A walk through the token vault on an on-disk SQLite file: store a token,
//! read it back, rotate the key, rewrap, retire the old key, erase the user.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! In an application the keyring comes from the environment
//! (`Keyring::from_env("CONSENTRY_KEYS")`); this example generates one and
//! keeps the database in a temporary directory.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use consentry::secrecy::{ExposeSecret, SecretString};
use consentry::store::{CredentialStore, SqliteStore};
use consentry::vault::{CredentialKind, Keyring, Vault};
use consentry::{ConnectionId, ErrorKind, UserId};

#[tokio::main]
async fn main() -> Result<(), consentry::Error> {
    let dir =
        tempfile::tempdir().map_err(|e| consentry::Error::storage("creating a temp dir", e))?;
    let path = dir.path().join("consentry.db");
    let store = SqliteStore::open(&path).await?;
    let vault = Vault::new(store.clone(), Keyring::generate()?);
    println!(
        "opened {} with keyring {:?}",
        path.display(),
        vault.keyring()
    );

    // 1. Store a token. Only ciphertext reaches the file.
    let user = UserId::in_tenant("acme", "alice")?;
    let google = ConnectionId::generate()?;
    let version = vault
        .put(
            &user,
            &google,
            CredentialKind::RefreshToken,
            SecretString::from("1//0g-example-refresh-token"),
        )
        .await?;
    println!("stored a refresh token for {user} on {google} (version {version})");

    // 2. Read it back.
    let token = vault
        .get(&user, &google, CredentialKind::RefreshToken)
        .await?;
    println!(
        "read it back: {} characters, version {}",
        token.value.expose_secret().len(),
        token.version
    );

    // 3. Rotate: a new primary key wraps new data keys from now on.
    vault.set_keyring(vault.keyring().rotated()?);
    println!(
        "rotated: keyring is now {:?}, usage {:?}",
        vault.keyring(),
        vault.key_usage().await?
    );

    // 4. The old key cannot be retired while it still wraps data keys.
    let k1 = "k1".parse()?;
    let refused = vault.retire(&k1).await.expect_err("k1 is still in use");
    println!("retire k1 before rewrap: refused ({refused})");

    // 5. Rewrap moves every data key to the new primary; no credential is re-encrypted.
    let report = vault.rewrap().await?;
    println!(
        "rewrap: {} data key(s) re-wrapped, usage now {:?}",
        report.rewrapped,
        vault.key_usage().await?
    );
    vault.retire(&k1).await?;
    println!("retired k1; keyring is {:?}", vault.keyring());
    let still = vault
        .get(&user, &google, CredentialKind::RefreshToken)
        .await?;
    assert_eq!(still.value.expose_secret(), token.value.expose_secret());
    println!("the token still reads back under the new key");

    // 6. Erase the user: their data key is destroyed (crypto-shredding).
    let erased = vault.erase_user(&user).await?;
    println!(
        "erased {user}: data key destroyed = {}, credentials deleted = {}",
        erased.data_key_destroyed, erased.credentials_deleted
    );
    let gone = vault
        .get(&user, &google, CredentialKind::RefreshToken)
        .await
        .expect_err("erased");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    println!("reading it now fails: {gone}");
    assert!(store.list_credentials(&user).await?.is_empty());

    drop(vault);
    store.close().await?;
    Ok(())
}
