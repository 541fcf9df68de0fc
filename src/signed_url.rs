//! Signed, expiring, permission-scoped links: an export download or a
//! media file a user may fetch without logging in, for a while, for one
//! purpose.
//!
//! [`UrlSigner::sign`] appends query parameters to a URL:
//!
//! | parameter | value |
//! |---|---|
//! | `cs_method` | the HTTP method the link is for |
//! | `cs_exp` | expiry, Unix seconds |
//! | `cs_scope` | what the link permits (a [`Scope`], such as `read:export`) |
//! | `cs_sub` | the subject (whose data, or which object) |
//! | `cs_kid` | the keyring key the signature was made with |
//! | `cs_sig` | HMAC-SHA256, URL-safe base64 |
//!
//! The signature covers, length-prefixed, the key id, method, path, expiry,
//! scope, subject and every other query parameter (name and value, in
//! order); scheme, host and fragment are not covered, so a link keeps
//! working behind another hostname. The key is derived from the
//! [`Keyring`] key named by `cs_kid`: after a rotation, links signed under
//! the old key verify while that key stays in the keyring.
//!
//! [`UrlSigner::verify`] checks the signature in constant time first, then
//! the method, the expiry and the scope; each refusal is an
//! [`Error::InvalidSignedUrl`] naming why. Time is an argument.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use consentry::http::Method;
//! use consentry::signed_url::{SignedUrlRejection, UrlSigner};
//! use consentry::url::Url;
//! use consentry::vault::Keyring;
//! use consentry::{Error, Scope};
//!
//! let signer = UrlSigner::new(Keyring::generate()?);
//! let now = SystemTime::now();
//! let export = Scope::new("read:export")?;
//! let url = Url::parse("https://app.example/exports/123.csv")?;
//! let link = signer.sign(&Method::GET, &url, "acme/alice", &export, now + Duration::from_secs(600))?;
//!
//! // In the download handler, from the request line:
//! let path_and_query = &link[url::Position::BeforePath..];
//! let ok = signer.verify(&Method::GET, path_and_query, &export, now)?;
//! assert_eq!(ok.subject, "acme/alice");
//! let later = now + Duration::from_secs(601);
//! let err = signer.verify(&Method::GET, path_and_query, &export, later).unwrap_err();
//! assert!(matches!(err, Error::InvalidSignedUrl { reason: SignedUrlRejection::Expired }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::ids::Scope;
use crate::vault::{KeyId, Keyring};

/// The longest link [`UrlSigner::verify`] reads, and the longest
/// [`UrlSigner::sign`] produces, in bytes.
pub const MAX_URL_LEN: usize = 8192;
/// The longest subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;
/// The most query parameters a link may have, the signature's included.
pub const MAX_PARAMS: usize = 64;

const LABEL: &[u8] = b"consentry/signed-url/v1";
const RESERVED: &str = "cs_";
const METHOD: &str = "cs_method";
const EXPIRES: &str = "cs_exp";
const SCOPE: &str = "cs_scope";
const SUBJECT: &str = "cs_sub";
const KEY_ID: &str = "cs_kid";
const SIGNATURE: &str = "cs_sig";

/// Why a signed link was refused ([`Error::InvalidSignedUrl`]).
///
/// ```
/// use consentry::ErrorKind;
/// use consentry::signed_url::SignedUrlRejection;
/// assert_eq!(SignedUrlRejection::Expired.as_str(), "expired");
/// assert_eq!(SignedUrlRejection::WrongScope.kind(), ErrorKind::Forbidden);
/// assert_eq!(SignedUrlRejection::BadSignature.kind(), ErrorKind::Unauthorized);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignedUrlRejection {
    /// Not a signed link: too long, unparsable, a signature parameter
    /// missing, repeated or unreadable, an unknown `cs_` parameter.
    Malformed,
    /// Signed under a key the keyring does not hold (retired, or never).
    UnknownKey,
    /// The signature does not match: the path, a parameter, the subject,
    /// scope, expiry, method or key id was altered.
    BadSignature,
    /// A valid link, used with another HTTP method than it was signed for.
    WrongMethod,
    /// A valid link, past its expiry.
    Expired,
    /// A valid link for another scope than the one required (kind
    /// [`ErrorKind::Forbidden`]).
    WrongScope,
}

impl SignedUrlRejection {
    /// A stable, lowercase, dash-separated name (the `reason` member of
    /// the problem document).
    ///
    /// ```
    /// use consentry::signed_url::SignedUrlRejection;
    /// assert_eq!(SignedUrlRejection::UnknownKey.as_str(), "unknown-key");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown-key",
            Self::BadSignature => "bad-signature",
            Self::WrongMethod => "wrong-method",
            Self::Expired => "expired",
            Self::WrongScope => "wrong-scope",
        }
    }

    /// The error kind: [`ErrorKind::Forbidden`] for
    /// [`WrongScope`](Self::WrongScope), [`ErrorKind::Unauthorized`] for
    /// the rest.
    ///
    /// ```
    /// use consentry::ErrorKind;
    /// use consentry::signed_url::SignedUrlRejection;
    /// assert_eq!(SignedUrlRejection::Malformed.kind().http_status(), 401);
    /// assert_eq!(SignedUrlRejection::WrongScope.kind().http_status(), 403);
    /// ```
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::WrongScope => ErrorKind::Forbidden,
            _ => ErrorKind::Unauthorized,
        }
    }
}

impl fmt::Display for SignedUrlRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Malformed => "not a signed link",
            Self::UnknownKey => "signed under a key that is not in the keyring",
            Self::BadSignature => "the signature does not match (the link was altered)",
            Self::WrongMethod => "the link is for another HTTP method",
            Self::Expired => "the link has expired",
            Self::WrongScope => "the link is for another scope",
        })
    }
}

/// What a verified link grants.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use consentry::http::Method;
/// use consentry::signed_url::{UrlSigner, VerifiedLink};
/// use consentry::vault::Keyring;
/// use consentry::Scope;
/// let signer = UrlSigner::new(Keyring::generate()?);
/// let media = Scope::new("read:media")?;
/// let now = SystemTime::now();
/// let url = consentry::url::Url::parse("https://cdn.example/m/1.png?size=large")?;
/// let link = signer.sign(&Method::GET, &url, "photo-1", &media, now + Duration::from_secs(60))?;
/// let v: VerifiedLink = signer.verify(&Method::GET, link.as_str(), &media, now)?;
/// assert_eq!((v.path.as_str(), v.subject.as_str(), v.key_id.as_str()), ("/m/1.png", "photo-1", "k1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedLink {
    /// The path it was signed for.
    pub path: String,
    /// The subject it was signed for.
    pub subject: String,
    /// The scope it grants.
    pub scope: Scope,
    /// When it expires (whole seconds).
    pub expires_at: SystemTime,
    /// The key that signed it.
    pub key_id: KeyId,
}

/// Signs and verifies links with subkeys of a [`Keyring`].
///
/// `Debug` shows key ids only.
///
/// ```
/// use consentry::signed_url::UrlSigner;
/// use consentry::vault::Keyring;
/// let signer = UrlSigner::new(Keyring::generate()?);
/// assert!(format!("{signer:?}").contains("k1"));
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct UrlSigner {
    keyring: Keyring,
}

/// Writes a length-prefixed field into the MAC.
fn field(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
    // Every field is bounded by MAX_URL_LEN, far below u32::MAX.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    mac.update(&len.to_be_bytes());
    mac.update(bytes);
}

/// The fields a signature covers.
struct Claims<'a> {
    key_id: &'a str,
    method: &'a str,
    path: &'a str,
    expires: u64,
    scope: &'a str,
    subject: &'a str,
    others: &'a [(String, String)],
}

impl UrlSigner {
    /// A signer over `keyring`: new links are signed under its primary key;
    /// links signed under any of its keys verify.
    ///
    /// ```
    /// use consentry::signed_url::UrlSigner;
    /// use consentry::vault::Keyring;
    /// let _signer = UrlSigner::new(Keyring::generate()?.rotated()?);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }

    fn mac(&self, c: &Claims<'_>) -> Option<Hmac<Sha256>> {
        let key = self.keyring.derive(c.key_id, LABEL)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref()).ok()?;
        mac.update(LABEL);
        field(&mut mac, c.key_id.as_bytes());
        field(&mut mac, c.method.as_bytes());
        field(&mut mac, c.path.as_bytes());
        field(&mut mac, c.expires.to_string().as_bytes());
        field(&mut mac, c.scope.as_bytes());
        field(&mut mac, c.subject.as_bytes());
        let n = u32::try_from(c.others.len()).unwrap_or(u32::MAX);
        mac.update(&n.to_be_bytes());
        for (name, value) in c.others {
            field(&mut mac, name.as_bytes());
            field(&mut mac, value.as_bytes());
        }
        Some(mac)
    }

    /// `url` with the signature parameters appended: valid for `method`
    /// until `expires_at` (rounded down to the second), for `subject` and
    /// `scope`, under the keyring's primary key.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a subject that is empty, longer than
    /// [`MAX_SUBJECT_LEN`] bytes or has a control character; a URL that
    /// already has a `cs_` parameter, more than [`MAX_PARAMS`] parameters,
    /// or would exceed [`MAX_URL_LEN`] bytes once signed; an expiry before
    /// 1970.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::http::Method;
    /// use consentry::signed_url::UrlSigner;
    /// use consentry::url::Url;
    /// use consentry::vault::Keyring;
    /// use consentry::Scope;
    /// let signer = UrlSigner::new(Keyring::generate()?);
    /// let url = Url::parse("https://app.example/exports/1?format=csv")?;
    /// let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    /// let link = signer.sign(&Method::GET, &url, "alice", &Scope::new("read:export")?, exp)?;
    /// assert!(link.as_str().starts_with("https://app.example/exports/1?format=csv&cs_method=GET&cs_exp=2000000000"));
    /// assert!(link.query_pairs().any(|(k, _)| k == "cs_sig"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign(
        &self,
        method: &http::Method,
        url: &Url,
        subject: &str,
        scope: &Scope,
        expires_at: SystemTime,
    ) -> Result<Url> {
        crate::ids::check_common("signed link subject", subject, MAX_SUBJECT_LEN)?;
        let expires = expires_at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::invalid("signed link expiry", "is before 1970"))?
            .as_secs();
        let others: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if others.iter().any(|(k, _)| k.starts_with(RESERVED)) {
            return Err(Error::invalid(
                "URL to sign",
                "has a `cs_` query parameter (reserved for the signature)",
            ));
        }
        if others.len() + 6 > MAX_PARAMS {
            return Err(Error::invalid(
                "URL to sign",
                format!("has more than {} query parameters", MAX_PARAMS - 6),
            ));
        }
        let key_id = self.keyring.primary().as_str();
        let claims = Claims {
            key_id,
            method: method.as_str(),
            path: url.path(),
            expires,
            scope: scope.as_str(),
            subject,
            others: &others,
        };
        let sig = self
            .mac(&claims)
            .ok_or(Error::Internal("the primary key is in the keyring"))?
            .finalize()
            .into_bytes();
        let mut signed = url.clone();
        signed
            .query_pairs_mut()
            .append_pair(METHOD, method.as_str())
            .append_pair(EXPIRES, &expires.to_string())
            .append_pair(SCOPE, scope.as_str())
            .append_pair(SUBJECT, subject)
            .append_pair(KEY_ID, key_id)
            .append_pair(SIGNATURE, &crate::secret::b64url_encode(&sig));
        let len = signed[url::Position::BeforePath..url::Position::AfterQuery].len();
        if len > MAX_URL_LEN {
            return Err(Error::invalid(
                "URL to sign",
                format!("its path and query would exceed {MAX_URL_LEN} bytes once signed"),
            ));
        }
        Ok(signed)
    }

    /// Checks a link used with `method` at `now` for `required`: `link` is
    /// the request's path and query (`/exports/1?cs_method=…`) or a whole
    /// URL.
    ///
    /// # Errors
    /// [`Error::InvalidSignedUrl`] naming why, checked in this order:
    /// malformed, unknown key, bad signature (compared in constant time),
    /// wrong method, expired, wrong scope.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use consentry::http::Method;
    /// use consentry::signed_url::{SignedUrlRejection, UrlSigner};
    /// use consentry::url::Url;
    /// use consentry::vault::Keyring;
    /// use consentry::{Error, ErrorKind, Scope};
    /// let signer = UrlSigner::new(Keyring::generate()?);
    /// let now = SystemTime::now();
    /// let read = Scope::new("read:export")?;
    /// let url = Url::parse("https://app.example/exports/1")?;
    /// let link = signer.sign(&Method::GET, &url, "alice", &read, now + Duration::from_secs(60))?;
    /// let tampered = link.as_str().replace("alice", "mallory");
    /// let err = signer.verify(&Method::GET, &tampered, &read, now).unwrap_err();
    /// assert!(matches!(err, Error::InvalidSignedUrl { reason: SignedUrlRejection::BadSignature }));
    /// let err = signer.verify(&Method::DELETE, link.as_str(), &read, now).unwrap_err();
    /// assert!(matches!(err, Error::InvalidSignedUrl { reason: SignedUrlRejection::WrongMethod }));
    /// let err = signer.verify(&Method::GET, link.as_str(), &Scope::new("write:export")?, now).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Forbidden);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(
        &self,
        method: &http::Method,
        link: &str,
        required: &Scope,
        now: SystemTime,
    ) -> Result<VerifiedLink> {
        let refuse = |reason| Error::InvalidSignedUrl { reason };
        let malformed = || refuse(SignedUrlRejection::Malformed);
        if link.len() > MAX_URL_LEN {
            return Err(malformed());
        }
        let url = if link.starts_with('/') {
            let base = Url::parse("http://signed-link.invalid/").map_err(|_| malformed())?;
            base.join(link).map_err(|_| malformed())?
        } else {
            Url::parse(link).map_err(|_| malformed())?
        };
        let mut ours: [Option<String>; 6] = Default::default();
        let names = [METHOD, EXPIRES, SCOPE, SUBJECT, KEY_ID, SIGNATURE];
        let mut others = Vec::new();
        for (i, (k, v)) in url.query_pairs().enumerate() {
            if i >= MAX_PARAMS {
                return Err(malformed());
            }
            if k.starts_with(RESERVED) {
                let slot = names.iter().position(|n| *n == k).ok_or_else(malformed)?;
                if ours[slot].replace(v.into_owned()).is_some() {
                    return Err(malformed());
                }
            } else {
                others.push((k.into_owned(), v.into_owned()));
            }
        }
        let [
            Some(m),
            Some(exp),
            Some(scope),
            Some(subject),
            Some(kid),
            Some(sig),
        ] = ours
        else {
            return Err(malformed());
        };
        let expires: u64 = if exp.len() <= 20 && exp.bytes().all(|b| b.is_ascii_digit()) {
            exp.parse().map_err(|_| malformed())?
        } else {
            return Err(malformed());
        };
        let key_id = KeyId::new(kid.as_str()).map_err(|_| malformed())?;
        let sig = crate::secret::b64url_decode(&sig).map_err(|_| malformed())?;
        let claims = Claims {
            key_id: key_id.as_str(),
            method: &m,
            path: url.path(),
            expires,
            scope: &scope,
            subject: &subject,
            others: &others,
        };
        let mac = self
            .mac(&claims)
            .ok_or(refuse(SignedUrlRejection::UnknownKey))?;
        mac.verify_slice(&sig)
            .map_err(|_| refuse(SignedUrlRejection::BadSignature))?;
        // Authentic from here on: the fields are what the signer wrote.
        if m != method.as_str() {
            return Err(refuse(SignedUrlRejection::WrongMethod));
        }
        let expires_at = UNIX_EPOCH
            .checked_add(Duration::from_secs(expires))
            .ok_or_else(malformed)?;
        if expires_at <= now {
            return Err(refuse(SignedUrlRejection::Expired));
        }
        if scope != required.as_str() {
            return Err(refuse(SignedUrlRejection::WrongScope));
        }
        Ok(VerifiedLink {
            path: url.path().to_owned(),
            subject,
            scope: Scope::new(scope).map_err(|_| malformed())?,
            expires_at,
            key_id,
        })
    }
}
