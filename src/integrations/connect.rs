//! Connecting an account: `begin_connect` and `complete_connect`.

use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use url::Url;

use super::Integrations;
use crate::connection::{AccountInfo, Connection, ConnectionStatus, Health};
use crate::connector::OAuth2Config;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::ids::{ConnectionId, ConnectorId, Scope, UserId};
use crate::oauth::{self, CallbackError, Nonce, OAuthState, PkceVerifier, TokenResponse};
use crate::store::{ConnectionWrite, PendingAuthorization};
use crate::vault::{CredentialKind, CredentialUpdate, Keyring};

/// Where to send the user to connect an account.
///
/// ```
/// # use consentry::integrations::doc_support;
/// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let integrations = doc_support::integrations()?;
/// let start = integrations.begin_connect(&UserId::new("ada")?, &"acme".parse()?, &[]).await?;
/// assert!(start.authorize_url.as_str().starts_with("https://auth.acme.example/oauth/authorize?"));
/// assert!(start.expires_at > std::time::SystemTime::now()); // 10 minutes by default
/// # Ok::<(), consentry::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectStart {
    /// The provider's authorization URL, with `state`, PKCE challenge and
    /// (for OpenID Connect) `nonce`. Redirect the user's browser here.
    pub authorize_url: Url,
    /// The callback must arrive before this time.
    pub expires_at: SystemTime,
}

/// SHA-256 of the `state`: what the store keeps instead of the state.
fn state_hash(state: &OAuthState) -> [u8; 32] {
    Sha256::digest(state.expose_secret().as_bytes()).into()
}

/// The PKCE verifier and OIDC nonce of one authorization, derived from its
/// `state` and a keyring subkey, so the store holds nothing that would let
/// a reader redeem an intercepted code.
struct FlowSecrets {
    verifier: PkceVerifier,
    nonce: Nonce,
}

impl FlowSecrets {
    fn derive(ring: &Keyring, key_id: &str, state: &OAuthState) -> Result<Self> {
        let key = ring
            .derive(key_id, b"consentry/oauth/v1/flow")
            .ok_or_else(|| Error::KeyNotFound {
                key_id: crate::vault::KeyId::new(key_id).unwrap_or_else(|_| ring.primary().clone()),
            })?;
        let mac = |label: &[u8]| -> Result<String> {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref())
                .map_err(|_| Error::Internal("HMAC accepts any key length"))?;
            m.update(label);
            m.update(state.expose_secret().as_bytes());
            Ok(crate::secret::b64url_encode(&m.finalize().into_bytes()))
        };
        Ok(Self {
            verifier: PkceVerifier::parse(mac(b"pkce\0")?)?,
            nonce: Nonce::new(mac(b"nonce\0")?),
        })
    }
}

fn wants_openid(scopes: &[Scope]) -> bool {
    scopes.iter().any(|s| s.as_str() == "openid")
}

impl Integrations {
    /// Starts connecting `user` to `connector`: records a pending
    /// authorization (single use, bound to the user, connector and redirect
    /// URI, valid for 10 minutes by default) and returns the URL to send
    /// the user to. `scopes` are requested on top of the connector's
    /// defaults; they are not checked against the connector's optional
    /// scopes.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// let extra = [Scope::new("contacts.write")?];
    /// let start = integrations.begin_connect(&user, &"acme".parse()?, &extra).await?;
    /// // Redirect the user's browser to start.authorize_url.
    /// let mut query = start.authorize_url.query_pairs();
    /// let scope = query.find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned());
    /// assert_eq!(scope.as_deref(), Some("contacts.read contacts.write")); // defaults first
    /// assert!(start.authorize_url.query_pairs().any(|(k, _)| k == "code_challenge")); // PKCE
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown connector;
    /// [`Error::InvalidInput`] for a connector that is not OAuth 2.0 or
    /// more than [`MAX_SCOPES`](crate::connector::MAX_SCOPES) scopes in all;
    /// storage errors.
    pub async fn begin_connect(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        scopes: &[Scope],
    ) -> Result<ConnectStart> {
        let config = self.oauth2(connector)?;
        let now = self.now();
        let expires_at = now + self.inner.options.state_ttl;
        let state = OAuthState::generate()?;
        let ring = self.inner.vault.keyring();
        let key_id = ring.primary().clone();
        let flow = FlowSecrets::derive(&ring, key_id.as_str(), &state)?;
        let requested = config.request_scopes(scopes);
        let challenge = config.pkce().then(|| flow.verifier.challenge());
        let nonce = wants_openid(&requested).then_some(&flow.nonce);
        let authorize_url = oauth::authorize_url(
            config,
            &self.inner.redirect_uri,
            &requested,
            &state,
            challenge.as_ref(),
            nonce,
            &[],
        )?;
        let pending = PendingAuthorization::new(
            state_hash(&state),
            user.clone(),
            connector.clone(),
            self.inner.redirect_uri.to_string(),
            requested,
            key_id,
            now,
            expires_at,
        );
        self.inner.store.put_pending_authorization(pending).await?;
        Ok(ConnectStart {
            authorize_url,
            expires_at,
        })
    }

    /// Completes a connection from the provider's redirect to the callback
    /// URL: checks the `state` (known, unexpired, unused, this user's),
    /// the redirect URI and `iss` (RFC 9207), exchanges the code, identifies
    /// the account, and stores the connection and its tokens in one
    /// transaction. Connecting the same account again updates the existing
    /// connection.
    ///
    /// The `state` is consumed first: a failed or repeated callback can
    /// never be completed later. Apart from that, nothing is written unless
    /// every step succeeds.
    ///
    /// ```
    /// # use consentry::integrations::doc_support;
    /// # use consentry::{ConnectionId, Error, Purpose, Scope, UserId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let integrations = doc_support::integrations()?;
    /// # let user = UserId::new("ada")?;
    /// # let start = integrations.begin_connect(&user, &"acme".parse()?, &[]).await?;
    /// # let callback = doc_support::callback(&start)?;
    /// // `callback`: the URL the provider redirected the user's browser to.
    /// let connection = integrations.complete_connect(&user, &callback).await?;
    /// assert_eq!(connection.account.email.as_deref(), Some("ada@acme.example"));
    /// assert!(connection.has_refresh_token);
    /// // The state is single use: the same callback cannot complete twice.
    /// assert!(integrations.complete_connect(&user, &callback).await.is_err());
    /// # Ok::<(), consentry::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Callback`] for a bad callback or state; [`Error::OAuth`] for
    /// a provider error (`access_denied` when the user declined); HTTP and
    /// provider errors from the exchange; storage errors.
    pub async fn complete_connect(&self, user: &UserId, callback: &Url) -> Result<Connection> {
        let result = self.complete_connect_unaudited(user, callback).await;
        // Success is audited where the connection is written (created or
        // updated); here, the refusals and failures.
        if result.is_err() {
            self.audit_durable(
                self.audit_user("connection.created", user, None)
                    .outcome(crate::audit::Outcome::of(&result)),
            )
            .await;
        }
        result
    }

    async fn complete_connect_unaudited(
        &self,
        user: &UserId,
        callback: &Url,
    ) -> Result<Connection> {
        let state = oauth::callback_state(callback).ok_or(CallbackError::MissingState)?;
        let pending = self
            .inner
            .store
            .take_pending_authorization(&state_hash(&state), user)
            .await?
            .ok_or(CallbackError::InvalidState)?;
        let now = self.now();
        if pending.expires_at <= now || pending.redirect_uri != self.inner.redirect_uri.as_str() {
            return Err(CallbackError::InvalidState.into());
        }
        let config = self.oauth2(&pending.connector)?;
        let cb = oauth::parse_callback(config, callback, &self.inner.redirect_uri)?;
        let flow = FlowSecrets::derive(
            &self.inner.vault.keyring(),
            pending.key_id.as_str(),
            &cb.state,
        )?;
        let request = oauth::authorization_code_request(
            config,
            &cb.code,
            &self.inner.redirect_uri,
            config.pkce().then_some(&flow.verifier),
        )?;
        let tokens = oauth::parse_token_response(config, &self.inner.http.send(request).await?)?;
        let nonce = wants_openid(&pending.scopes).then_some(&flow.nonce);
        let account = self.identify(config, &tokens, nonce).await?;
        let scopes = tokens
            .scopes
            .clone()
            .unwrap_or_else(|| pending.scopes.clone());
        self.store_connection(user, &pending.connector, account, scopes, tokens, now)
            .await
    }

    /// Finds out which account the tokens belong to.
    async fn identify(
        &self,
        config: &OAuth2Config,
        tokens: &TokenResponse,
        nonce: Option<&Nonce>,
    ) -> Result<AccountInfo> {
        let from_id_token = match &tokens.id_token {
            Some(id_token) => Some(oauth::id_token_account(config, id_token, nonce)?),
            None => None,
        };
        match config.account() {
            Some(source) => {
                let request = oauth::account_request(source, &tokens.access_token)?;
                let account = oauth::parse_account(source, &self.inner.http.send(request).await?)?;
                if let Some(claimed) = &from_id_token
                    && claimed.id != account.id
                    && config.account().is_some_and(|s| s.id_pointer() == "/sub")
                {
                    return Err(Error::InvalidResponse {
                        what: "account",
                        reason: "the ID token and the userinfo endpoint name different accounts"
                            .into(),
                    });
                }
                Ok(account)
            }
            None => from_id_token.ok_or_else(|| Error::InvalidResponse {
                what: "account",
                reason: "the connector has no account endpoint and the provider sent no ID token"
                    .into(),
            }),
        }
    }

    /// Creates the connection, or updates the one to the same account, with
    /// its tokens, in one transaction.
    async fn store_connection(
        &self,
        user: &UserId,
        connector: &ConnectorId,
        account: AccountInfo,
        scopes: Vec<Scope>,
        tokens: TokenResponse,
        now: SystemTime,
    ) -> Result<Connection> {
        for attempt in 0..2 {
            let existing = self
                .inner
                .store
                .find_connection(user, connector, &account.id)
                .await?;
            let reconnect = existing.is_some();
            let mut c = match existing {
                Some(mut c) => {
                    c.account = account.clone();
                    c.status = ConnectionStatus::Active;
                    c.health = Health::default();
                    c.updated_at = now;
                    c
                }
                None => Connection::new(
                    ConnectionId::generate()?,
                    user.clone(),
                    connector.clone(),
                    account.clone(),
                    now,
                ),
            };
            c.scopes = scopes.clone();
            c.access_expires_at = tokens.expires_in.map(|d| now + d);
            // Without a new refresh token the old one (if any) stays.
            c.has_refresh_token |= tokens.refresh_token.is_some();
            let mut updates = vec![CredentialUpdate::new(
                CredentialKind::AccessToken,
                tokens.access_token.expose_secret().into(),
            )];
            if let Some(rt) = &tokens.refresh_token {
                updates.push(CredentialUpdate::new(
                    CredentialKind::RefreshToken,
                    rt.expose_secret().into(),
                ));
            }
            if let Some(id) = &tokens.id_token {
                updates.push(CredentialUpdate::new(
                    CredentialKind::IdToken,
                    id.expose_secret().into(),
                ));
            }
            let credentials = self.inner.vault.seal(user, &c.id, updates).await?;
            let write = if reconnect {
                ConnectionWrite::update(c.clone())
            } else {
                ConnectionWrite::create(c.clone())
            };
            match self
                .inner
                .store
                .write_connection(write.with_credentials(credentials))
                .await
            {
                Ok(written) => {
                    c.revision = written.revision;
                    let kind = if reconnect {
                        EventKind::Reconnected
                    } else {
                        EventKind::Created
                    };
                    self.emit(Event::new(
                        kind,
                        user.clone(),
                        c.id.clone(),
                        connector.clone(),
                        now,
                    ));
                    let action = if reconnect {
                        "connection.updated"
                    } else {
                        "connection.created"
                    };
                    let scopes: Vec<&str> = c.scopes.iter().map(Scope::as_str).collect();
                    self.audit_durable(
                        self.audit_user(action, user, Some(&c.id))
                            .detail("connector", connector.as_str())
                            .detail("account", c.account.id.as_str())
                            .detail("scopes", scopes),
                    )
                    .await;
                    return Ok(c);
                }
                // A concurrent callback for the same account won the race:
                // read it back and update it instead.
                Err(Error::Conflict { .. }) if attempt == 0 => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            what: "connection",
            expected: 0,
            found: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_secrets_depend_on_state_and_key() {
        let ring = Keyring::generate().unwrap();
        let id = ring.primary().as_str().to_owned();
        let s1 = OAuthState::new("state-one");
        let a = FlowSecrets::derive(&ring, &id, &s1).unwrap();
        let b = FlowSecrets::derive(&ring, &id, &OAuthState::new("state-one")).unwrap();
        assert_eq!(
            a.verifier.expose_secret(),
            b.verifier.expose_secret(),
            "deterministic"
        );
        let c = FlowSecrets::derive(&ring, &id, &OAuthState::new("state-two")).unwrap();
        assert_ne!(a.verifier.expose_secret(), c.verifier.expose_secret());
        assert_ne!(a.verifier.expose_secret(), a.nonce.expose_secret());
        let other = FlowSecrets::derive(&Keyring::generate().unwrap(), &id, &s1).unwrap();
        assert_ne!(
            a.verifier.expose_secret(),
            other.verifier.expose_secret(),
            "needs the key"
        );
        assert_eq!(a.verifier.expose_secret().len(), 43);
        assert!(FlowSecrets::derive(&ring, "k9", &s1).is_err());
    }
}
