//! Secret newtypes, constant-time comparison, and the crate's one source of
//! randomness.
//!
//! Every secret in consentry lives in a [`secrecy`] type: `Debug` prints
//! `[REDACTED]`, there is no `Display` and no `Serialize`, the memory is
//! zeroed on drop, and the only way to read the value is an explicit
//! `expose_secret()` call, which makes every exposure greppable. The newtypes
//! here name what a secret is, so an access token cannot be passed where a
//! client secret is expected. They compare in constant time with
//! [`AccessToken::ct_eq`] and friends; there is no `PartialEq`, so a
//! comparison is always a deliberate choice.

use base64::Engine as _;
use secrecy::SecretString;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Compares two byte strings in constant time (for equal lengths).
///
/// Returns `false` at once when the lengths differ: lengths of tokens and
/// signatures are public, their contents are not.
///
/// ```
/// use consentry::secret::constant_time_eq;
/// assert!(constant_time_eq(b"abc", b"abc"));
/// assert!(!constant_time_eq(b"abc", b"abd"));
/// assert!(!constant_time_eq(b"abc", b"ab"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // OR the XOR of every 8-byte word (then of the tail bytes) into one
    // accumulator, with no data-dependent branch, and test it once through
    // `subtle`'s optimization barrier: as constant-time as `[u8]::ct_eq`,
    // which pays for a barrier per byte (50 ns for 32 bytes, against 3).
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut acc = 0u64;
    for (x, y) in (&mut wa).zip(&mut wb) {
        let (mut u, mut v) = ([0u8; 8], [0u8; 8]);
        u.copy_from_slice(x);
        v.copy_from_slice(y);
        acc |= u64::from_ne_bytes(u) ^ u64::from_ne_bytes(v);
    }
    for (x, y) in wa.remainder().iter().zip(wb.remainder()) {
        acc |= u64::from(x ^ y);
    }
    bool::from(acc.ct_eq(&0))
}

/// Fills `buf` from the operating system's random number generator.
///
/// # Errors
/// [`Error::Random`] if the generator fails.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// `n` random bytes encoded as lowercase, unpadded RFC 4648 base32 (URL-,
/// file- and SQL-safe; 16 bytes give 26 characters).
pub(crate) fn random_token(n: usize) -> Result<String> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; n]);
    fill_random(&mut bytes)?;
    Ok(base32_lower(&bytes))
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u16 = 0;
    let mut bits = 0u8;
    for &b in bytes {
        acc = (acc << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((acc >> bits) & 31)]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[usize::from((acc << (5 - bits)) & 31)]));
    }
    out
}

/// URL-safe base64 without padding, the encoding of keys in keyring strings.
pub(crate) fn b64url_decode(s: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s)
}

/// URL-safe base64 without padding.
pub(crate) fn b64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Defines a secret newtype over [`SecretString`]: redacted `Debug`, no
/// `Display`, no `PartialEq`, constant-time `ct_eq`, `expose_secret()`.
///
/// `secret_type!(single_use ...)` leaves out `Clone`, `From<String>` and
/// `Deserialize`: a value meant to be used once (an OAuth `state`, a PKCE
/// verifier, an authorization code) cannot be duplicated by accident.
macro_rules! secret_type {
    (single_use $(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[must_use]
        pub struct $name(secrecy::SecretString);

        secret_type!(@common $name, "oauth");
    };
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        secret_type!(@common $name, "secret");

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self::new(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                SecretString::deserialize(d).map(Self)
            }
        }
    };
    (@common $name:ident, $module:literal) => {
        impl $name {
            /// Wraps a secret value.
            ///
            /// ```
            #[doc = concat!("use consentry::", $module, "::", stringify!($name), ";")]
            #[doc = concat!("let s = ", stringify!($name), "::new(\"example-secret\");")]
            #[doc = concat!("assert_eq!(format!(\"{s:?}\"), \"", stringify!($name), "([REDACTED])\");")]
            /// assert_eq!(s.expose_secret(), "example-secret");
            /// ```
            pub fn new(value: impl Into<String>) -> Self {
                Self(secrecy::SecretString::from(value.into()))
            }

            /// The secret value.
            ///
            /// # Security
            /// This is the only way to read the value; do not log it, put
            /// it in an error, or keep copies of it longer than needed.
            ///
            /// ```
            #[doc = concat!("use consentry::", $module, "::", stringify!($name), ";")]
            #[doc = concat!("let s = ", stringify!($name), "::new(\"example-secret\");")]
            /// assert!(s.expose_secret().starts_with("example-"));
            /// ```
            pub fn expose_secret(&self) -> &str {
                secrecy::ExposeSecret::expose_secret(&self.0)
            }

            /// Compares with `other` in constant time (lengths are public).
            ///
            /// ```
            #[doc = concat!("use consentry::", $module, "::", stringify!($name), ";")]
            #[doc = concat!("let a = ", stringify!($name), "::new(\"example-secret\");")]
            #[doc = concat!("assert!(a.ct_eq(&", stringify!($name), "::new(\"example-secret\")));")]
            #[doc = concat!("assert!(!a.ct_eq(&", stringify!($name), "::new(\"example-secreT\")));")]
            /// ```
            pub fn ct_eq(&self, other: &Self) -> bool {
                $crate::secret::constant_time_eq(
                    self.expose_secret().as_bytes(),
                    other.expose_secret().as_bytes(),
                )
            }

            /// Unwraps into the underlying [`SecretString`](secrecy::SecretString).
            ///
            /// ```
            /// use consentry::secrecy::{ExposeSecret, SecretString};
            #[doc = concat!("use consentry::", $module, "::", stringify!($name), ";")]
            #[doc = concat!("let inner: SecretString = ", stringify!($name), "::new(\"example-secret\").into_secret();")]
            /// assert_eq!(inner.expose_secret(), "example-secret");
            /// ```
            pub fn into_secret(self) -> secrecy::SecretString {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl From<secrecy::SecretString> for $name {
            fn from(s: secrecy::SecretString) -> Self {
                Self(s)
            }
        }

        impl secrecy::ExposeSecret<str> for $name {
            fn expose_secret(&self) -> &str {
                secrecy::ExposeSecret::expose_secret(&self.0)
            }
        }
    };
}

#[allow(unused_imports)] // used by the oauth module
pub(crate) use secret_type;

secret_type! {
    /// An OAuth 2.0 access token.
    ///
    /// ```
    /// use consentry::secret::AccessToken;
    /// let t = AccessToken::new("ya29.secret");
    /// assert_eq!(format!("{t:?}"), "AccessToken([REDACTED])");
    /// assert!(t.ct_eq(&AccessToken::new("ya29.secret")));
    /// assert_eq!(t.expose_secret(), "ya29.secret");
    /// ```
    AccessToken
}

secret_type! {
    /// An OAuth 2.0 refresh token.
    ///
    /// ```
    /// use consentry::secret::RefreshToken;
    /// let t = RefreshToken::new("1//0g-secret");
    /// assert_eq!(format!("{t:?}"), "RefreshToken([REDACTED])");
    /// ```
    RefreshToken
}

secret_type! {
    /// An OpenID Connect ID token (a JWT).
    ///
    /// ```
    /// use consentry::secret::IdToken;
    /// let t = IdToken::new("eyJ...");
    /// assert_eq!(format!("{t:?}"), "IdToken([REDACTED])");
    /// ```
    IdToken
}

secret_type! {
    /// An OAuth 2.0 client secret.
    ///
    /// ```
    /// use consentry::secret::ClientSecret;
    /// let s = ClientSecret::new("GOCSPX-secret");
    /// assert_eq!(format!("{s:?}"), "ClientSecret([REDACTED])");
    /// ```
    ClientSecret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, lowercased, padding removed.
        for (input, want) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn constant_time_eq_sees_every_byte() {
        for len in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 100] {
            let a: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            assert!(constant_time_eq(&a, &a.clone()), "len {len}");
            for i in 0..len {
                for bit in [0x01u8, 0x80] {
                    let mut b = a.clone();
                    b[i] ^= bit;
                    assert!(
                        !constant_time_eq(&a, &b),
                        "len {len}, byte {i}, bit {bit:#x}"
                    );
                }
            }
            assert!(!constant_time_eq(&a, &a[..len.saturating_sub(1)]) || len == 0);
        }
    }

    #[test]
    fn random_tokens_differ_and_have_the_right_length() {
        let a = random_token(16).unwrap();
        let b = random_token(16).unwrap();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
    }
}
