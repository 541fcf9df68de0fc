//! Ed25519 keys for Standard Webhooks `v1a` signatures (feature `ed25519`).

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::ed25519::signature::{MultipartSigner, MultipartVerifier};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::WebhookError;
use super::common::{self, LENIENT_B64};
use super::standard::{self, sealed};
use crate::error::Result;
use crate::secret::fill_random;

/// A Standard Webhooks Ed25519 signing key: `whsk_` followed by the base64
/// of the 32-byte secret key and the 32-byte public key.
///
/// Signs `v1a` signatures with [`standard::sign`]. `Debug` is redacted and
/// the key is zeroed on drop.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use consentry::webhook::{WebhookSigningKey, standard};
///
/// let key = WebhookSigningKey::generate()?;
/// let public = key.public_key();                // publish this: whpk_...
/// let signed = standard::sign(&key, "msg_1", 1_700_000_000, b"{}")?;
/// assert!(signed.get("webhook-signature").unwrap().starts_with("v1a,"));
/// standard::verify(&[public], &signed, b"{}", UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone)]
pub struct WebhookSigningKey(SigningKey);

impl WebhookSigningKey {
    /// The prefix of the string form.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSigningKey;
    /// let key = WebhookSigningKey::generate()?;
    /// assert!(key.expose_whsk().expose_secret().starts_with(WebhookSigningKey::PREFIX));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub const PREFIX: &'static str = "whsk_";

    /// A new random key.
    ///
    /// # Errors
    /// [`Error::Random`](crate::Error::Random) if the system's random number
    /// generator fails.
    ///
    /// ```
    /// use consentry::webhook::WebhookSigningKey;
    /// let (a, b) = (WebhookSigningKey::generate()?, WebhookSigningKey::generate()?);
    /// assert_ne!(a.public_key(), b.public_key());
    /// assert_eq!(format!("{a:?}"), "WebhookSigningKey([REDACTED])");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let mut sk = Zeroizing::new([0u8; 32]);
        fill_random(sk.as_mut())?;
        Ok(Self(SigningKey::from_bytes(&sk)))
    }

    /// Parses `whsk_<base64 of secret key || public key>` (the prefix and
    /// the padding are optional).
    ///
    /// # Errors
    /// [`WebhookError::InvalidSecret`] if it is not base64 of 64 bytes, or
    /// if the public half does not belong to the secret half.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSigningKey;
    /// let key = WebhookSigningKey::generate()?;
    /// let again = WebhookSigningKey::parse(key.expose_whsk().expose_secret())?;
    /// assert_eq!(again.public_key(), key.public_key());
    /// assert!(WebhookSigningKey::parse("whsk_AAAA").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let encoded = s.strip_prefix(Self::PREFIX).unwrap_or(s);
        let mut bytes = Zeroizing::new([0u8; 64]);
        decode_exact(encoded, bytes.as_mut())?;
        SigningKey::from_keypair_bytes(&bytes)
            .map(Self)
            .map_err(|_| invalid("the public key does not match the secret key"))
    }

    /// The public key that verifies this key's signatures.
    ///
    /// ```
    /// use consentry::webhook::{WebhookPublicKey, WebhookSigningKey};
    /// let public = WebhookSigningKey::generate()?.public_key();
    /// assert!(public.to_string().starts_with("whpk_"));
    /// assert_eq!(WebhookPublicKey::parse(&public.to_string())?, public);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn public_key(&self) -> WebhookPublicKey {
        WebhookPublicKey(self.0.verifying_key())
    }

    /// The key as `whsk_<base64>`, for the host to store (encrypted).
    ///
    /// # Security
    /// This exposes the secret key; do not log it.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSigningKey;
    /// let stored = WebhookSigningKey::generate()?.expose_whsk(); // keep it encrypted
    /// assert!(stored.expose_secret().starts_with("whsk_"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn expose_whsk(&self) -> SecretString {
        let bytes = Zeroizing::new(self.0.to_keypair_bytes());
        let encoded = Zeroizing::new(common::b64(bytes.as_ref()));
        SecretString::from(format!("{}{}", Self::PREFIX, encoded.as_str()))
    }
}

impl fmt::Debug for WebhookSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSigningKey([REDACTED])")
    }
}

/// A trusted Standard Webhooks Ed25519 public key: `whpk_` followed by the
/// base64 of the 32-byte key. Verifies `v1a` signatures with
/// [`standard::verify`].
///
/// Take public keys from your own configuration, never from the request.
/// Public, so `Debug` and `Display` show the `whpk_` form.
///
/// ```
/// use consentry::webhook::WebhookPublicKey;
/// let key = WebhookPublicKey::parse("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=")?;
/// assert_eq!(key.to_string(), "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WebhookPublicKey(VerifyingKey);

impl WebhookPublicKey {
    /// The prefix of the string form.
    ///
    /// ```
    /// use consentry::webhook::{WebhookPublicKey, WebhookSigningKey};
    /// let public = WebhookSigningKey::generate()?.public_key();
    /// assert!(public.to_string().starts_with(WebhookPublicKey::PREFIX));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub const PREFIX: &'static str = "whpk_";

    /// Parses `whpk_<base64 of 32 bytes>` (the prefix and the padding are
    /// optional).
    ///
    /// # Errors
    /// [`WebhookError::InvalidSecret`] if it is not base64 of 32 bytes, not
    /// a point on the curve, or a weak (small-order) key, for which
    /// signatures prove nothing.
    ///
    /// ```
    /// use consentry::webhook::WebhookPublicKey;
    /// let key = WebhookPublicKey::parse("1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4")?; // prefix and padding optional
    /// assert_eq!(key.to_string(), "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=");
    /// assert!(WebhookPublicKey::parse(&format!("whpk_{}", "A".repeat(43))).is_err()); // a small-order point proves nothing
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let encoded = s.strip_prefix(Self::PREFIX).unwrap_or(s);
        let mut bytes = [0u8; 32];
        decode_exact(encoded, &mut bytes)?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not an Ed25519 public key"))?;
        if key.is_weak() {
            return Err(invalid("a weak (small-order) Ed25519 public key"));
        }
        Ok(Self(key))
    }
}

impl fmt::Display for WebhookPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, common::b64(self.0.as_bytes()))
    }
}

impl fmt::Debug for WebhookPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookPublicKey({self})")
    }
}

impl sealed::Sign for WebhookSigningKey {
    const VERSION: &'static str = "v1a";
    fn sign_b64(&self, content: &sealed::Content<'_>) -> String {
        let sig: Signature = self
            .0
            .try_multipart_sign(&content.parts())
            .unwrap_or_else(|_| unreachable!("Ed25519 signing does not fail"));
        common::b64(&sig.to_bytes())
    }
}

impl sealed::Verify for WebhookPublicKey {
    const VERSION: &'static str = "v1a";
    fn matches_any(&self, content: &sealed::Content<'_>, header: &[u8]) -> bool {
        let parts = content.parts();
        sealed::entries(header, Self::VERSION).any(|s| {
            common::decode_b64::<64>(s).is_some_and(|bytes| {
                let sig = Signature::from_bytes(&bytes);
                self.0.multipart_verify(&parts, &sig).is_ok()
            })
        })
    }
}

impl standard::SigningKey for WebhookSigningKey {}
impl standard::VerifyingKey for WebhookPublicKey {}

fn decode_exact(encoded: &str, out: &mut [u8]) -> Result<()> {
    if encoded.is_empty() {
        return Err(invalid("empty"));
    }
    if encoded.len() > 128 {
        return Err(invalid("too long"));
    }
    let decoded = Zeroizing::new(
        LENIENT_B64
            .decode(encoded)
            .map_err(|_| invalid("not standard base64"))?,
    );
    if decoded.len() != out.len() {
        return Err(invalid("wrong length"));
    }
    out.copy_from_slice(&decoded);
    Ok(())
}

fn invalid(reason: &'static str) -> crate::Error {
    WebhookError::InvalidSecret { reason }.into()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn keys_round_trip_and_mismatched_halves_are_refused() {
        let key = WebhookSigningKey::generate().unwrap();
        let text = key.expose_whsk();
        let back = WebhookSigningKey::parse(text.expose_secret()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let public = key.public_key().to_string();
        assert_eq!(WebhookPublicKey::parse(&public).unwrap(), key.public_key());

        let mut bytes = key.0.to_keypair_bytes();
        bytes[40] ^= 1;
        assert!(WebhookSigningKey::parse(&common::b64(&bytes)).is_err());
        assert!(!format!("{key:?}").contains(&text.expose_secret()[5..]));
    }

    #[test]
    fn weak_and_malformed_public_keys_are_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(WebhookPublicKey::parse(&common::b64(&identity)).is_err());
        for bad in ["", "whpk_", "whpk_AAAA", "whpk_!!!"] {
            assert!(WebhookPublicKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn v1a_and_v1_do_not_cross() {
        let key = WebhookSigningKey::generate().unwrap();
        let secret = crate::webhook::WebhookSecret::generate().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(5);
        let signed = standard::sign(&key, "m", 5, b"x").unwrap();
        assert!(standard::verify(&[key.public_key()], &signed, b"x", now).is_ok());
        assert!(standard::verify(&[secret], &signed, b"x", now).is_err());
        let other = WebhookSigningKey::generate().unwrap().public_key();
        assert!(standard::verify(&[other], &signed, b"x", now).is_err());
        assert!(standard::verify(&[key.public_key()], &signed, b"y", now).is_err());
    }
}
