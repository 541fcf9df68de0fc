//! Validated identifiers: [`UserId`], [`ConnectorId`], [`ConnectionId`],
//! [`Purpose`], [`Scope`], and the webhook dispatcher's [`EndpointId`] and
//! [`MessageId`].
//!
//! Each is checked once, at construction (`new`, `FromStr`, deserialization):
//! non-empty, bounded length, no control characters, plus a character set
//! where the identifier has a syntax of its own. Past construction they are
//! plain strings: `Display`, `AsRef<str>`, `Ord`, `Hash`, serde as a string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Checks the rules every identifier shares.
pub(crate) fn check_common(what: &'static str, value: &str, max_len: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(what, "must not be empty"));
    }
    if value.len() > max_len {
        return Err(Error::invalid(
            what,
            format!("is {} bytes long; the limit is {max_len}", value.len()),
        ));
    }
    if let Some(pos) = value.find(char::is_control) {
        return Err(Error::invalid(
            what,
            format!("contains a control character at byte {pos}"),
        ));
    }
    Ok(())
}

/// Checks an ASCII "token" identifier: letters, digits and `_ - . :`.
pub(crate) fn check_token(what: &'static str, value: &str, max_len: usize) -> Result<()> {
    check_common(what, value, max_len)?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(Error::invalid(
            what,
            format!("contains {c:?}; only ASCII letters, digits and `_ - . :` are allowed"),
        ));
    }
    Ok(())
}

/// Checks a webhook identifier: ASCII letters, digits, `_` and `-` (no `.`,
/// which separates the parts of signed Standard Webhooks content).
fn check_webhook_id(what: &'static str, value: &str, max_len: usize) -> Result<()> {
    check_common(what, value, max_len)?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(Error::invalid(
            what,
            format!("contains {c:?}; only ASCII letters, digits, `_` and `-` are allowed"),
        ));
    }
    Ok(())
}

/// Checks an OAuth 2.0 scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`).
fn check_scope(what: &'static str, value: &str, max_len: usize) -> Result<()> {
    check_common(what, value, max_len)?;
    if let Some(c) = value
        .chars()
        .find(|&c| !matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
    {
        return Err(Error::invalid(
            what,
            format!("contains {c:?}, which RFC 6749 does not allow in a scope"),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal, $max:expr, $check:path
    ) => {
        $(#[$meta])*
        // Shared text: a clone (ids are cloned into every record, key and
        // event) is a reference count, not an allocation.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// The longest accepted value, in bytes.
            ///
            /// ```
            #[doc = concat!("use consentry::", stringify!($name), ";")]
            #[doc = concat!("let longest = \"a\".repeat(", stringify!($name), "::MAX_LEN);")]
            #[doc = concat!("assert!(", stringify!($name), "::new(longest.as_str()).is_ok());")]
            #[doc = concat!("assert!(", stringify!($name), "::new(longest + \"a\").is_err());")]
            /// ```
            pub const MAX_LEN: usize = $max;

            /// Validates `value` and wraps it.
            ///
            /// # Errors
            /// [`Error::InvalidInput`] if `value` is empty, longer than
            #[doc = concat!("[`", stringify!($name), "::MAX_LEN`]")]
            /// bytes, or has a character this identifier does not allow.
            ///
            /// ```
            #[doc = concat!("use consentry::{", stringify!($name), ", ErrorKind};")]
            #[doc = concat!("let id = ", stringify!($name), "::new(\"example-1\")?;")]
            /// assert_eq!(id.to_string(), "example-1");
            #[doc = concat!("let err = ", stringify!($name), "::new(\"tab\\there\").unwrap_err();")]
            /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
            /// # Ok::<(), consentry::Error>(())
            /// ```
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                $check($what, &value, Self::MAX_LEN)?;
                Ok(Self(value.into()))
            }

            /// The identifier as a string slice.
            ///
            /// ```
            #[doc = concat!("use consentry::", stringify!($name), ";")]
            #[doc = concat!("let id: ", stringify!($name), " = \"example\".parse()?;")]
            /// assert_eq!(id.as_str(), "example");
            /// # Ok::<(), consentry::Error>(())
            /// ```
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id! {
    /// Identifies a connector (a provider definition): `google`, `github`,
    /// `acme-crm`. ASCII letters, digits and `_ - . :`, at most 64 bytes.
    ///
    /// ```
    /// use consentry::ConnectorId;
    /// let id: ConnectorId = "google".parse()?;
    /// assert_eq!(id.as_str(), "google");
    /// assert!(ConnectorId::new("goo gle").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ConnectorId, "connector id", 64, check_token
}

string_id! {
    /// Identifies one connection: one user's link to one account at one
    /// provider. ASCII letters, digits and `_ - . :`, at most 128 bytes.
    ///
    /// ```
    /// use consentry::ConnectionId;
    /// let id = ConnectionId::new("conn_01")?;
    /// assert_eq!(id.to_string(), "conn_01");
    /// let fresh = ConnectionId::generate()?;
    /// assert!(fresh.as_str().starts_with("conn_"));
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ConnectionId, "connection id", 128, check_token
}

string_id! {
    /// A purpose a user can consent to, defined by the host: `matching`,
    /// `recommendations`, `profile_display`. ASCII letters, digits and
    /// `_ - . :`, at most 64 bytes.
    ///
    /// ```
    /// use consentry::Purpose;
    /// let p = Purpose::new("matching")?;
    /// assert_eq!(p.as_ref(), "matching");
    /// assert!(Purpose::new("").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    Purpose, "purpose", 64, check_token
}

string_id! {
    /// An OAuth 2.0 scope token (RFC 6749 §3.3), such as `openid` or
    /// `https://www.googleapis.com/auth/calendar.events`. At most 512 bytes.
    ///
    /// ```
    /// use consentry::Scope;
    /// let s = Scope::new("https://www.googleapis.com/auth/calendar.events")?;
    /// assert_eq!(s.as_str(), "https://www.googleapis.com/auth/calendar.events");
    /// assert!(Scope::new("two words").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    Scope, "scope", 512, check_scope
}

string_id! {
    /// Identifies an outbound webhook endpoint: `ep_` and 26 lowercase
    /// base32 characters when generated. ASCII letters, digits, `_` and
    /// `-`, at most 64 bytes.
    ///
    /// ```
    /// use consentry::EndpointId;
    /// let id = EndpointId::generate()?;
    /// assert!(id.as_str().starts_with("ep_"));
    /// assert!(EndpointId::new("ep.1").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    EndpointId, "endpoint id", 64, check_webhook_id
}

string_id! {
    /// Identifies an outbound webhook message; sent as `webhook-id`, the
    /// same on every attempt, so receivers can drop duplicates. `msg_` and
    /// 26 lowercase base32 characters when generated. ASCII letters,
    /// digits, `_` and `-`, at most 64 bytes.
    ///
    /// ```
    /// use consentry::MessageId;
    /// let id = MessageId::generate()?;
    /// assert!(id.as_str().starts_with("msg_"));
    /// assert!(MessageId::new("msg 1").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    MessageId, "message id", 64, check_webhook_id
}

string_id! {
    /// Identifies a personal API token (never the token itself): `tok_`
    /// and 26 lowercase base32 characters when generated. ASCII letters,
    /// digits and `_ - . :`, at most 64 bytes.
    ///
    /// ```
    /// use consentry::ApiTokenId;
    /// let id = ApiTokenId::generate()?;
    /// assert!(id.as_str().starts_with("tok_"));
    /// assert!(ApiTokenId::new("tok 1").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    ApiTokenId, "API token id", 64, check_token
}

impl ApiTokenId {
    /// A fresh random id, `tok_` followed by 26 lowercase base32
    /// characters (128 bits).
    ///
    /// # Errors
    /// [`Error::Random`] if the system random number generator fails.
    ///
    /// ```
    /// use consentry::ApiTokenId;
    /// let id = ApiTokenId::generate()?;
    /// assert_eq!(id.as_str().len(), "tok_".len() + 26);
    /// assert_ne!(id, ApiTokenId::generate()?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        Ok(Self(
            format!("tok_{}", crate::secret::random_token(16)?).into(),
        ))
    }
}

impl EndpointId {
    /// A fresh random id, `ep_` followed by 26 lowercase base32 characters
    /// (128 bits).
    ///
    /// # Errors
    /// [`Error::Random`] if the system random number generator fails.
    ///
    /// ```
    /// use consentry::EndpointId;
    /// assert_ne!(EndpointId::generate()?, EndpointId::generate()?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        Ok(Self(
            format!("ep_{}", crate::secret::random_token(16)?).into(),
        ))
    }
}

impl MessageId {
    /// A fresh random id, `msg_` followed by 26 lowercase base32
    /// characters (128 bits).
    ///
    /// # Errors
    /// [`Error::Random`] if the system random number generator fails.
    ///
    /// ```
    /// use consentry::MessageId;
    /// let id = MessageId::generate()?;
    /// assert_eq!(id.as_str().len(), "msg_".len() + 26);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        Ok(Self(
            format!("msg_{}", crate::secret::random_token(16)?).into(),
        ))
    }
}

impl ConnectionId {
    /// A fresh random id, `conn_` followed by 26 lowercase base32
    /// characters (128 bits).
    ///
    /// # Errors
    /// [`Error::Random`] if the system random number generator fails.
    ///
    /// ```
    /// use consentry::ConnectionId;
    /// let a = ConnectionId::generate()?;
    /// let b = ConnectionId::generate()?;
    /// assert_eq!(a.as_str().len(), "conn_".len() + 26);
    /// assert!(a.as_str()["conn_".len()..].bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')));
    /// assert_ne!(a, b);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        Ok(Self(
            format!("conn_{}", crate::secret::random_token(16)?).into(),
        ))
    }
}

/// Identifies a user of the host application, optionally inside a tenant.
///
/// The tenant is part of every storage key and of the associated data of
/// every ciphertext, so `UserId::in_tenant("acme", "u1")` and
/// `UserId::in_tenant("globex", "u1")` share nothing.
///
/// The string form is `user` or `tenant/user`: a tenant may not contain `/`,
/// and neither may the user part of an id without a tenant, so parsing the
/// string form always gives back the same id. Each part is non-empty, at
/// most 255 bytes, without control characters.
///
/// ```
/// use consentry::UserId;
///
/// let alice = UserId::new("alice")?;
/// let bob = UserId::in_tenant("acme", "bob")?;
/// assert_eq!(bob.to_string(), "acme/bob");
/// assert_eq!(bob.tenant(), Some("acme"));
/// assert_eq!("acme/bob".parse::<UserId>()?, bob);
/// assert_eq!(alice.tenant(), None);
/// assert!(UserId::new("a/b").is_err()); // would read back as tenant "a"
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId {
    // Shared text, like the other identifiers: clones are reference counts.
    tenant: Option<std::sync::Arc<str>>,
    user: std::sync::Arc<str>,
}

impl UserId {
    /// The longest accepted tenant or user part, in bytes.
    ///
    /// ```
    /// use consentry::UserId;
    /// let longest = "u".repeat(UserId::MAX_LEN);
    /// assert!(UserId::in_tenant(longest.as_str(), longest.as_str()).is_ok());
    /// assert!(UserId::new(longest + "u").is_err());
    /// ```
    pub const MAX_LEN: usize = 255;

    /// A user without a tenant.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `user` is empty, longer than
    /// [`UserId::MAX_LEN`] bytes, has a control character, or contains `/`
    /// (use [`UserId::in_tenant`]).
    ///
    /// ```
    /// use consentry::UserId;
    /// let alice = UserId::new("alice@example.com")?;
    /// assert_eq!((alice.tenant(), alice.user()), (None, "alice@example.com"));
    /// assert!(UserId::new("acme/alice").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(user: impl Into<String>) -> Result<Self> {
        let user = user.into();
        check_common("user id", &user, Self::MAX_LEN)?;
        if user.contains('/') {
            return Err(Error::invalid(
                "user id",
                "contains '/', which separates tenant and user; use UserId::in_tenant",
            ));
        }
        Ok(Self {
            tenant: None,
            user: user.into(),
        })
    }

    /// A user inside `tenant`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if either part is empty, longer than
    /// [`UserId::MAX_LEN`] bytes, has a control character, or the tenant
    /// contains `/`. The user part may contain `/`.
    ///
    /// ```
    /// use consentry::UserId;
    /// let bob = UserId::in_tenant("acme", "bob")?;
    /// assert_eq!(bob.to_string(), "acme/bob");
    /// assert_ne!(bob, UserId::in_tenant("globex", "bob")?);
    /// assert!(UserId::in_tenant("a/b", "bob").is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn in_tenant(tenant: impl Into<String>, user: impl Into<String>) -> Result<Self> {
        let tenant = tenant.into();
        let user = user.into();
        check_common("tenant", &tenant, Self::MAX_LEN)?;
        if tenant.contains('/') {
            return Err(Error::invalid("tenant", "must not contain '/'"));
        }
        check_common("user id", &user, Self::MAX_LEN)?;
        Ok(Self {
            tenant: Some(tenant.into()),
            user: user.into(),
        })
    }

    /// The tenant, if any.
    ///
    /// ```
    /// use consentry::UserId;
    /// assert_eq!(UserId::in_tenant("acme", "bob")?.tenant(), Some("acme"));
    /// assert_eq!(UserId::new("bob")?.tenant(), None);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The user part, without the tenant.
    ///
    /// ```
    /// use consentry::UserId;
    /// let id: UserId = "acme/bob".parse()?;
    /// assert_eq!(id.user(), "bob");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.to_string())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(t) => write!(f, "{t}/{}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

impl FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('/') {
            Some((tenant, user)) => Self::in_tenant(tenant, user),
            None => Self::new(s),
        }
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_refused_everywhere() {
        for bad in ["a\0b", "a\nb", "\u{7f}", "a\u{85}b"] {
            assert!(UserId::new(bad).is_err(), "{bad:?}");
            assert!(UserId::in_tenant(bad, "u").is_err(), "{bad:?}");
            assert!(ConnectorId::new(bad).is_err(), "{bad:?}");
            assert!(ConnectionId::new(bad).is_err(), "{bad:?}");
            assert!(Purpose::new(bad).is_err(), "{bad:?}");
            assert!(Scope::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        assert!(Purpose::new("p".repeat(64)).is_ok());
        assert!(Purpose::new("p".repeat(65)).is_err());
        assert!(UserId::new("u".repeat(255)).is_ok());
        assert!(UserId::new("u".repeat(256)).is_err());
        assert!(Scope::new("s".repeat(513)).is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: Purpose = serde_json::from_str("\"matching\"").unwrap();
        assert_eq!(ok.as_str(), "matching");
        assert!(serde_json::from_str::<Purpose>("\"a b\"").is_err());
        let u: UserId = serde_json::from_str("\"t/u\"").unwrap();
        assert_eq!(u, UserId::in_tenant("t", "u").unwrap());
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"t/u\"");
    }

    proptest! {
        #[test]
        fn user_id_string_form_round_trips(tenant in "[^/\\p{Cc}]{1,20}", user in "[^\\p{Cc}]{1,20}", bare in "[^/\\p{Cc}]{1,20}") {
            let t = UserId::in_tenant(tenant, user).unwrap();
            prop_assert_eq!(t.to_string().parse::<UserId>().unwrap(), t);
            let b = UserId::new(bare).unwrap();
            prop_assert_eq!(b.to_string().parse::<UserId>().unwrap(), b);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = s.parse::<UserId>();
            let _ = Scope::new(s.clone());
            let _ = Purpose::new(s);
        }
    }
}
