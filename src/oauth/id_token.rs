//! The claims of an OpenID Connect ID token received from the token
//! endpoint.
//!
//! An ID token that comes straight from the token endpoint over TLS may be
//! trusted on the strength of the TLS connection instead of its signature
//! (OpenID Connect Core §3.1.3.7, item 6), so consentry decodes its payload
//! without verifying the signature, and only for that case: to check the
//! `nonce` it sent, the audience and the issuer, and to learn the account's
//! `sub` when the connector has no account endpoint. Never use this on an
//! ID token that arrived any other way.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::connection::AccountInfo;
use crate::connector::OAuth2Config;
use crate::error::{Error, Result};
use crate::oauth::Nonce;
use crate::secret::{IdToken, constant_time_eq};

/// The largest ID token accepted, in bytes.
///
/// ```
/// use consentry::Error;
/// use consentry::oauth::{id_token_account, MAX_ID_TOKEN_LEN};
/// use consentry::secret::IdToken;
/// # use consentry::connector::{ClientAuth, OAuth2Connector};
/// # use consentry::url::Url;
/// # let acme = OAuth2Connector::builder("acme".parse()?)
/// #     .authorization_url(Url::parse("https://acme.example/authorize")?)
/// #     .token_url(Url::parse("https://acme.example/token")?)
/// #     .introspection_url(Url::parse("https://acme.example/introspect")?)
/// #     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let huge = IdToken::new("a".repeat(MAX_ID_TOKEN_LEN + 1));
/// assert!(matches!(id_token_account(acme.config(), &huge, None), Err(Error::InvalidResponse { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidResponse {
        what: "ID token",
        reason: reason.into(),
    }
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let v = claims.get(name)?.as_str()?;
    let clean: String = v.chars().filter(|c| !c.is_control()).take(320).collect();
    (!clean.is_empty()).then_some(clean)
}

/// Checks the ID token's `nonce` (when one was sent), `aud` (must include
/// the client id) and `iss` (when the connector knows its issuer), and
/// returns the account it names (`sub`, `email`, `name`).
///
/// ```
/// use base64::Engine as _;
/// use consentry::connector::{ClientAuth, OAuth2Connector};
/// use consentry::oauth::{Nonce, id_token_account};
/// use consentry::secret::IdToken;
/// use consentry::url::Url;
/// let c = OAuth2Connector::builder("x".parse()?)
///     .authorization_url(Url::parse("https://as.example/auth")?)
///     .token_url(Url::parse("https://as.example/token")?)
///     .client_id("app").client_auth(ClientAuth::None).build()?;
/// let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
/// let token = IdToken::new(format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"42","aud":"app","nonce":"n1"}"#)));
/// let account = id_token_account(c.config(), &token, Some(&Nonce::new("n1")))?;
/// assert_eq!(account.id, "42");
/// assert!(id_token_account(c.config(), &token, Some(&Nonce::new("other"))).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidResponse`] for a malformed token or a claim that does
/// not match.
pub fn id_token_account(
    config: &OAuth2Config,
    token: &IdToken,
    nonce: Option<&Nonce>,
) -> Result<AccountInfo> {
    let raw = token.expose_secret();
    if raw.len() > MAX_ID_TOKEN_LEN {
        return Err(invalid("too long"));
    }
    let mut parts = raw.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a JWT (three dot-separated parts)"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("payload is not base64url"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| invalid("payload is not a JSON object"))?;
    if let Some(nonce) = nonce {
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(got.as_bytes(), nonce.expose_secret().as_bytes()) {
            return Err(invalid("nonce does not match the one sent"));
        }
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == config.client_id(),
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(config.client_id())),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid("audience does not include this client"));
    }
    if let Some(issuer) = config.issuer()
        && claims.get("iss").and_then(Value::as_str) != Some(issuer)
    {
        return Err(invalid("issuer does not match"));
    }
    let id = text(&claims, "sub").ok_or_else(|| invalid("no `sub` claim"))?;
    let mut account = AccountInfo::new(id);
    account.email = text(&claims, "email");
    account.name = text(&claims, "name");
    Ok(account)
}
