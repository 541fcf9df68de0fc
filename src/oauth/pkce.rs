//! PKCE (RFC 7636) with the S256 method.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::secret::{b64url_encode, fill_random};

/// A PKCE code verifier: 43 to 128 characters from the unreserved set
/// `A-Z a-z 0-9 - . _ ~` (RFC 7636 §4.1). Secret and single-use: no
/// `Clone`, redacted `Debug`.
///
/// ```
/// use consentry::oauth::PkceVerifier;
///
/// // RFC 7636 Appendix B.
/// let v = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
/// assert_eq!(v.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
///
/// let fresh = PkceVerifier::generate()?;
/// assert_eq!(fresh.expose_secret().len(), 43);
/// assert!(PkceVerifier::parse("too-short").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[must_use]
pub struct PkceVerifier(SecretString);

impl PkceVerifier {
    /// A fresh verifier: 32 random bytes, base64url (43 characters).
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// let (a, b) = (PkceVerifier::generate()?, PkceVerifier::generate()?);
    /// assert_ne!(a.expose_secret(), b.expose_secret());
    /// assert!(PkceVerifier::parse(a.expose_secret()).is_ok()); // valid syntax
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Random`] if the system RNG fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        fill_random(&mut bytes[..])?;
        Ok(Self(SecretString::from(b64url_encode(&bytes[..]))))
    }

    /// Wraps a stored verifier after checking its syntax.
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// assert!(PkceVerifier::parse("a".repeat(43)).is_ok());
    /// assert!(PkceVerifier::parse("a".repeat(42)).is_err()); // too short
    /// assert!(PkceVerifier::parse(format!("{}+", "a".repeat(43))).is_err()); // '+' is not unreserved
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if it is not 43 to 128 unreserved characters.
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let ok = (43..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !ok {
            return Err(Error::invalid(
                "pkce verifier",
                "must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~",
            ));
        }
        Ok(Self(SecretString::from(value)))
    }

    /// The verifier, to store with the pending authorization and to send in
    /// the token request.
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// let v = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
    /// assert_eq!(v.expose_secret(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    /// assert_eq!(format!("{v:?}"), "PkceVerifier([REDACTED])");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The S256 challenge: base64url(SHA-256(verifier)).
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// // RFC 7636 Appendix B.
    /// let v = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
    /// assert_eq!(v.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    /// assert_eq!(v.challenge(), v.challenge()); // deterministic
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn challenge(&self) -> PkceChallenge {
        let digest = Sha256::digest(self.expose_secret().as_bytes());
        PkceChallenge(b64url_encode(&digest))
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([REDACTED])")
    }
}

/// A PKCE S256 code challenge (public: it goes in the authorization URL).
///
/// ```
/// use consentry::oauth::PkceVerifier;
/// let c = PkceVerifier::generate()?.challenge();
/// assert_eq!(c.method(), "S256");
/// assert_eq!(c.as_str().len(), 43);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// The challenge value.
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// let challenge = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?.challenge();
    /// assert_eq!(challenge.as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method, always `S256` (`plain` is not offered: RFC 9700 §2.1.1).
    ///
    /// ```
    /// use consentry::oauth::PkceVerifier;
    /// assert_eq!(PkceVerifier::generate()?.challenge().method(), "S256");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            v.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_syntax_is_enforced() {
        assert!(PkceVerifier::parse("a".repeat(42)).is_err());
        assert!(PkceVerifier::parse("a".repeat(43)).is_ok());
        assert!(PkceVerifier::parse("a".repeat(128)).is_ok());
        assert!(PkceVerifier::parse("a".repeat(129)).is_err());
        assert!(PkceVerifier::parse(format!("{}+", "a".repeat(43))).is_err());
        assert!(PkceVerifier::parse(format!("{}~._-", "a".repeat(43))).is_ok());
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate().unwrap();
        let b = PkceVerifier::generate().unwrap();
        assert!(PkceVerifier::parse(a.expose_secret()).is_ok());
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.challenge(), b.challenge());
        assert_eq!(format!("{a:?}"), "PkceVerifier([REDACTED])");
    }
}
