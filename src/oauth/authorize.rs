//! The authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707).

use url::Url;

use super::{Nonce, OAuthState, PkceChallenge};
use crate::connector::{MAX_SCOPES, OAuth2Config};
use crate::error::{Error, Result};
use crate::ids::Scope;

/// Builds the URL to send the user's browser to.
///
/// Parameters, in order: `response_type=code`, `client_id`,
/// `redirect_uri`, `scope` (joined with the connector's separator; left out
/// when `scopes` is empty), `state`, `code_challenge` and
/// `code_challenge_method=S256`, `nonce`, one `resource` per RFC 8707
/// indicator, the connector's extra parameters, then `extra` (which
/// replaces a connector parameter of the same name). Query parameters
/// already in the authorization endpoint URL are kept.
///
/// `scopes` is sent as given; use
/// [`OAuth2Config::request_scopes`] to add the connector's defaults.
///
/// ```
/// use consentry::connector::Catalogue;
/// use consentry::connector::ClientRegistration;
/// use consentry::oauth::{self, Nonce, OAuthState, PkceVerifier};
/// use consentry::secret::ClientSecret;
/// use consentry::url::Url;
///
/// let google = Catalogue::builtin()?.connector("google",
///     ClientRegistration::new("123.apps.googleusercontent.com").with_secret(ClientSecret::new("s")))?;
/// let cfg = google.config();
/// let redirect = Url::parse("https://app.example/callback/google")?;
/// let state = OAuthState::new("st");
/// let pkce = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
/// let url = oauth::authorize_url(cfg, &redirect, &cfg.request_scopes(&[]), &state,
///     Some(&pkce.challenge()), Some(&Nonce::new("n")), &[("login_hint", "a@example.com")])?;
/// assert_eq!(url.as_str(), "https://accounts.google.com/o/oauth2/v2/auth?response_type=code\
///     &client_id=123.apps.googleusercontent.com\
///     &redirect_uri=https%3A%2F%2Fapp.example%2Fcallback%2Fgoogle\
///     &scope=openid+email+profile&state=st\
///     &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
///     &nonce=n&access_type=offline&prompt=consent&login_hint=a%40example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] if the connector uses PKCE and no challenge is
/// given, `redirect_uri` is not `https` (or `http` on loopback) or has a
/// fragment, there are more than [`MAX_SCOPES`] scopes, or an `extra`
/// parameter is malformed or overrides one consentry sets.
pub fn authorize_url(
    config: &OAuth2Config,
    redirect_uri: &Url,
    scopes: &[Scope],
    state: &OAuthState,
    pkce_challenge: Option<&PkceChallenge>,
    nonce: Option<&Nonce>,
    extra: &[(&str, &str)],
) -> Result<Url> {
    crate::connector::check_endpoint("redirect_uri", redirect_uri)?;
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid(
            "scopes",
            format!("more than {MAX_SCOPES} scopes requested"),
        ));
    }
    if config.pkce() && pkce_challenge.is_none() {
        return Err(Error::invalid(
            "pkce",
            "this connector uses PKCE: pass the verifier's challenge",
        ));
    }
    if state.expose_secret().is_empty() {
        return Err(Error::invalid("state", "must not be empty"));
    }
    for (k, v) in extra {
        crate::connector::check_extra_param(k, v)?;
    }
    let mut url = config.authorization_url().clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", config.client_id())
            .append_pair("redirect_uri", redirect_uri.as_str());
        if !scopes.is_empty() {
            let joined = scopes
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(config.scope_separator());
            q.append_pair("scope", &joined);
        }
        q.append_pair("state", state.expose_secret());
        if let (true, Some(c)) = (config.pkce(), pkce_challenge) {
            q.append_pair("code_challenge", c.as_str())
                .append_pair("code_challenge_method", c.method());
        }
        if let Some(n) = nonce {
            q.append_pair("nonce", n.expose_secret());
        }
        for r in config.resources() {
            q.append_pair("resource", r.as_str());
        }
        for (k, v) in config.authorization_params() {
            if !extra.iter().any(|(ek, _)| ek == k) {
                q.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{ClientAuth, OAuth2Connector};
    use crate::secret::ClientSecret;

    fn connector(pkce: bool) -> OAuth2Connector {
        OAuth2Connector::builder("t".parse().unwrap())
            .authorization_url(Url::parse("https://as.example/auth?tenant=x").unwrap())
            .token_url(Url::parse("https://as.example/token").unwrap())
            .client_id("c id")
            .client_secret(ClientSecret::new("s"))
            .client_auth(ClientAuth::Post)
            .scope_separator(",")
            .pkce(pkce)
            .resource(Url::parse("https://api.example/v1").unwrap())
            .authorization_param("prompt", "consent")
            .build()
            .unwrap()
    }

    fn redirect() -> Url {
        Url::parse("http://127.0.0.1:8080/cb").unwrap()
    }

    #[test]
    fn builds_every_parameter_exactly() {
        let c = connector(true);
        let scopes = [Scope::new("a").unwrap(), Scope::new("b:c").unwrap()];
        let v = super::super::PkceVerifier::parse("x".repeat(43)).unwrap();
        let url = authorize_url(
            c.config(),
            &redirect(),
            &scopes,
            &OAuthState::new("s t"),
            Some(&v.challenge()),
            None,
            &[("prompt", "none")],
        )
        .unwrap();
        let want = format!(
            "https://as.example/auth?tenant=x&response_type=code&client_id=c+id\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&scope=a%2Cb%3Ac&state=s+t\
             &code_challenge={}&code_challenge_method=S256\
             &resource=https%3A%2F%2Fapi.example%2Fv1&prompt=none",
            v.challenge().as_str()
        );
        assert_eq!(url.as_str(), want);
    }

    #[test]
    fn misuse_is_refused() {
        let c = connector(true);
        let st = OAuthState::new("s");
        let r = redirect();
        assert!(authorize_url(c.config(), &r, &[], &st, None, None, &[]).is_err());
        let no_pkce = connector(false);
        let ok = authorize_url(no_pkce.config(), &r, &[], &st, None, None, &[]).unwrap();
        assert!(!ok.as_str().contains("code_challenge"));
        assert!(!ok.as_str().contains("scope="));
        for bad in [
            ("state", "x"),
            ("redirect_uri", "https://evil"),
            ("k", "a\nb"),
        ] {
            assert!(
                authorize_url(no_pkce.config(), &r, &[], &st, None, None, &[bad]).is_err(),
                "{bad:?}"
            );
        }
        let evil = Url::parse("http://evil.example/cb").unwrap();
        assert!(authorize_url(no_pkce.config(), &evil, &[], &st, None, None, &[]).is_err());
        let frag = Url::parse("https://app.example/cb#x").unwrap();
        assert!(authorize_url(no_pkce.config(), &frag, &[], &st, None, None, &[]).is_err());
        let empty = OAuthState::new("");
        assert!(authorize_url(no_pkce.config(), &r, &[], &empty, None, None, &[]).is_err());
        let many: Vec<Scope> = (0..=MAX_SCOPES)
            .map(|i| Scope::new(format!("s{i}")).unwrap())
            .collect();
        assert!(authorize_url(no_pkce.config(), &r, &many, &st, None, None, &[]).is_err());
    }
}
