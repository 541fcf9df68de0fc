//! Webhook secrets: [`WebhookSecret`] (Standard Webhooks `whsec_`, a
//! base64-encoded key) and [`HmacSecret`] (a provider's secret used as its
//! literal UTF-8 bytes: Stripe, GitHub, Slack, Shopify).

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use zeroize::Zeroizing;

use super::WebhookError;
use super::common::{KeyedMac, LENIENT_B64, b64};
use crate::error::Result;
use crate::secret::fill_random;

/// Longest secret string accepted by [`WebhookSecret::parse`].
const MAX_SECRET_LEN: usize = 1024;

/// A Standard Webhooks (and Svix / Clerk) signing secret: `whsec_` followed
/// by the standard base64 of the key bytes.
///
/// The key is the *decoded* bytes, unlike Stripe's `whsec_` secrets, which
/// are used as literal text (see [`HmacSecret`]). `Debug` is redacted, there
/// is no `Display`, and the key is zeroed on drop.
///
/// ```
/// use consentry::webhook::WebhookSecret;
/// use consentry::secrecy::ExposeSecret;
///
/// let secret = WebhookSecret::generate()?;               // 32 random bytes
/// let stored = secret.expose_whsec();                    // give this to the sender, keep it encrypted
/// assert!(stored.expose_secret().starts_with("whsec_"));
/// let again = WebhookSecret::parse(stored.expose_secret())?;
/// assert_eq!(format!("{again:?}"), "WebhookSecret([REDACTED])");
///
/// // The prefix and the padding are optional.
/// WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// assert!(WebhookSecret::parse("whsec_").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
    keyed: KeyedMac,
}

impl WebhookSecret {
    /// The prefix of the string form.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSecret;
    /// assert!(WebhookSecret::generate()?.expose_whsec().expose_secret().starts_with(WebhookSecret::PREFIX));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub const PREFIX: &'static str = "whsec_";

    /// A new secret of 32 random bytes (the Standard Webhooks
    /// specification asks for 24 to 64).
    ///
    /// # Errors
    /// [`Error::Random`](crate::Error::Random) if the system's random number
    /// generator fails.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSecret;
    /// let (a, b) = (WebhookSecret::generate()?, WebhookSecret::generate()?);
    /// assert_ne!(a.expose_whsec().expose_secret(), b.expose_whsec().expose_secret());
    /// assert_eq!(a.expose_whsec().expose_secret().len(), "whsec_".len() + 44); // 32 bytes in base64
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        fill_random(&mut key)?;
        Ok(Self::from_key(&key))
    }

    /// Parses `whsec_<base64>` or the bare base64. Standard alphabet,
    /// padded or unpadded, as the reference libraries accept.
    ///
    /// # Errors
    /// [`WebhookError::InvalidSecret`] if the string is empty (or only the
    /// prefix), longer than 1024 characters, or not base64.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSecret;
    /// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    /// assert_eq!(secret.expose_whsec().expose_secret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    /// assert!(WebhookSecret::parse("whsec_not base64!").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let encoded = s.strip_prefix(Self::PREFIX).unwrap_or(s);
        if encoded.is_empty() {
            return Err(invalid("empty"));
        }
        if encoded.len() > MAX_SECRET_LEN {
            return Err(invalid("longer than 1024 characters"));
        }
        let key = Zeroizing::new(
            LENIENT_B64
                .decode(encoded)
                .map_err(|_| invalid("not standard base64"))?,
        );
        if key.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(Self::from_key(&key))
    }

    fn from_key(key: &[u8]) -> Self {
        Self {
            key: SecretSlice::from(key.to_vec()),
            keyed: KeyedMac::new(key),
        }
    }

    /// The secret as `whsec_<padded base64>`, for the host to store (encrypted)
    /// and to show once to whoever configures the sender.
    ///
    /// # Security
    /// This exposes the secret; do not log it.
    ///
    /// ```
    /// use consentry::secrecy::ExposeSecret;
    /// use consentry::webhook::WebhookSecret;
    /// let secret = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    /// assert_eq!(secret.expose_whsec().expose_secret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); // prefixed
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn expose_whsec(&self) -> SecretString {
        let key = self.key.expose_secret();
        let mut s = String::with_capacity(Self::PREFIX.len() + key.len().div_ceil(3) * 4);
        s.push_str(Self::PREFIX);
        let encoded = Zeroizing::new(b64(key));
        s.push_str(&encoded);
        SecretString::from(s)
    }

    /// The raw key bytes.
    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8] {
        self.key.expose_secret()
    }

    /// The key, set up for HMAC-SHA256.
    pub(crate) fn keyed(&self) -> &KeyedMac {
        &self.keyed
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// A provider's webhook secret used as its literal UTF-8 bytes for
/// HMAC-SHA256: Stripe's endpoint secret (the whole `whsec_...` string, not
/// decoded), GitHub's webhook secret, Slack's signing secret, Shopify's app
/// client secret.
///
/// `Debug` is redacted, there is no `Display`, and the value is zeroed on
/// drop.
///
/// ```
/// use consentry::webhook::HmacSecret;
///
/// let secret = HmacSecret::new("whsec_test_secret")?;
/// assert_eq!(format!("{secret:?}"), "HmacSecret([REDACTED])");
/// assert!(HmacSecret::new("").is_err());
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone)]
pub struct HmacSecret(KeyedMac);

impl HmacSecret {
    /// Wraps a provider's secret.
    ///
    /// # Errors
    /// [`WebhookError::InvalidSecret`] if it is empty (an unset environment
    /// variable, usually).
    ///
    /// ```
    /// use consentry::webhook::HmacSecret;
    /// let secret = HmacSecret::new(String::from("github-webhook-secret"))?;
    /// assert_eq!(format!("{secret:?}"), "HmacSecret([REDACTED])");
    /// assert!(HmacSecret::new(std::env::var("UNSET_WEBHOOK_SECRET_FOR_DOCS").unwrap_or_default()).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(secret: impl Into<String>) -> Result<Self> {
        let secret = Zeroizing::new(secret.into());
        if secret.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(Self(KeyedMac::new(secret.as_bytes())))
    }

    /// The secret, set up for HMAC-SHA256.
    pub(crate) fn keyed(&self) -> &KeyedMac {
        &self.0
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([REDACTED])")
    }
}

fn invalid(reason: &'static str) -> crate::Error {
    WebhookError::InvalidSecret { reason }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_prefix_padding_and_trailing_bits() {
        let a = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let b = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key().len(), 24);
        // 31 and 34 characters: unpadded, with non-zero trailing bits.
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS")
                .unwrap()
                .key()
                .len(),
            23
        );
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr")
                .unwrap()
                .key()
                .len(),
            25
        );
        assert_eq!(
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr==")
                .unwrap()
                .key()
                .len(),
            25
        );
    }

    #[test]
    fn parse_refuses_empty_and_garbage() {
        for bad in ["", "whsec_", "whsec_!!!!", "whsec_a", "ab cd", "whsec_-_-_"] {
            let err = WebhookSecret::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    crate::Error::Webhook(WebhookError::InvalidSecret { .. })
                ),
                "{bad:?}: {err}"
            );
        }
        assert!(WebhookSecret::parse(&"A".repeat(1025)).is_err());
    }

    #[test]
    fn expose_round_trips_and_debug_is_redacted() {
        let s = WebhookSecret::generate().unwrap();
        assert_eq!(s.key().len(), 32);
        let text = s.expose_whsec();
        let back = WebhookSecret::parse(text.expose_secret()).unwrap();
        assert_eq!(back.key(), s.key());
        assert_ne!(
            WebhookSecret::generate().unwrap().key(),
            s.key(),
            "two generated secrets must differ"
        );
        let debug = format!("{s:?} {:?}", HmacSecret::new("hush").unwrap());
        assert!(!debug.contains(&text.expose_secret()[6..]) && !debug.contains("hush"));
    }
}
