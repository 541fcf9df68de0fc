//! Single-use secret values of the flow: `state`, `nonce`, the code.

use crate::error::Result;
use crate::secret::{b64url_encode, fill_random, secret_type};

/// 32 random bytes, base64url without padding (43 characters, 256 bits).
fn random_value() -> Result<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    fill_random(&mut bytes[..])?;
    Ok(b64url_encode(&bytes[..]))
}

secret_type! {
    single_use
    /// The OAuth `state` parameter: a random, single-use value binding the
    /// callback to the session that started the flow (CSRF protection).
    ///
    /// No `Clone`: store its hash, send it once, compare the callback's
    /// value in constant time with [`OAuthState::ct_eq`].
    ///
    /// ```
    /// use consentry::oauth::OAuthState;
    /// let a = OAuthState::generate()?;
    /// let b = OAuthState::generate()?;
    /// assert_eq!(a.expose_secret().len(), 43);
    /// assert!(!a.ct_eq(&b));
    /// assert_eq!(format!("{a:?}"), "OAuthState([REDACTED])");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    OAuthState
}

secret_type! {
    single_use
    /// The OpenID Connect `nonce`: a random, single-use value the provider
    /// copies into the ID token, binding it to this authorization.
    ///
    /// ```
    /// use consentry::oauth::Nonce;
    /// let n = Nonce::generate()?;
    /// assert_eq!(n.expose_secret().len(), 43);
    /// assert_eq!(format!("{n:?}"), "Nonce([REDACTED])");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    Nonce
}

secret_type! {
    single_use
    /// An authorization code from the callback: exchanged once for tokens.
    ///
    /// ```
    /// use consentry::oauth::AuthorizationCode;
    /// let code = AuthorizationCode::new("4/0AX4XfWh");
    /// assert_eq!(format!("{code:?}"), "AuthorizationCode([REDACTED])");
    /// assert_eq!(code.expose_secret(), "4/0AX4XfWh");
    /// ```
    AuthorizationCode
}

impl OAuthState {
    /// A fresh random state (256 bits).
    ///
    /// ```
    /// use consentry::oauth::OAuthState;
    /// let (a, b) = (OAuthState::generate()?, OAuthState::generate()?);
    /// assert_eq!(a.expose_secret().len(), 43);
    /// assert!(!a.ct_eq(&b));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Random`](crate::Error::Random) if the system RNG fails.
    pub fn generate() -> Result<Self> {
        Ok(Self::new(random_value()?))
    }
}

impl Nonce {
    /// A fresh random nonce (256 bits).
    ///
    /// ```
    /// use consentry::oauth::Nonce;
    /// let (a, b) = (Nonce::generate()?, Nonce::generate()?);
    /// assert_eq!(a.expose_secret().len(), 43);
    /// assert_ne!(a.expose_secret(), b.expose_secret());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Random`](crate::Error::Random) if the system RNG fails.
    pub fn generate() -> Result<Self> {
        Ok(Self::new(random_value()?))
    }
}
