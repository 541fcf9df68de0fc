//! The token format: `cst_`, 32 random bytes in base62 (43 characters),
//! and the CRC32 of everything before it in base62 (6 characters).

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::ApiTokenRejection;
use crate::error::{Error, Result};

/// The prefix of every token.
pub const PREFIX: &str = "cst_";
/// The length of every token, in bytes (all ASCII).
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECK_LEN;
/// 32 bytes in base62: 62^43 > 2^256.
const RANDOM_LEN: usize = 43;
/// 4 bytes in base62: 62^6 > 2^32.
const CHECK_LEN: usize = 6;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `bytes`, read as one big-endian number, in base62, left-padded
/// with `0` to exactly `width` digits (`width` must be enough).
fn base62_fixed(bytes: &[u8], width: usize, out: &mut String) {
    let mut num = Zeroizing::new(bytes.to_vec());
    let mut digits = Zeroizing::new(vec![0u8; width]);
    for d in digits.iter_mut().rev() {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8; // acc < 62 * 256, so acc / 62 < 256
            rem = acc % 62;
        }
        *d = ALPHABET[rem as usize];
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/IEEE (the zlib, PNG and GitHub-token checksum).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The 6-character checksum of a token's first part: its CRC32 in base62
/// (what [`base62_fixed`] gives for its 4 big-endian bytes), without an
/// allocation: `verify` runs it on every call.
fn checksum(head: &[u8]) -> [u8; CHECK_LEN] {
    let mut n = crc32(head);
    let mut out = [b'0'; CHECK_LEN];
    for d in out.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A fresh token.
pub(super) fn generate() -> Result<SecretString> {
    let mut random = Zeroizing::new([0u8; 32]);
    crate::secret::fill_random(random.as_mut())?;
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(PREFIX);
    base62_fixed(random.as_ref(), RANDOM_LEN, &mut token);
    let check = checksum(token.as_bytes());
    token.extend(check.iter().map(|&d| char::from(d)));
    Ok(SecretString::from(token))
}

/// Checks prefix, length, alphabet and checksum: no store, no secret
/// compared. Length first, so a huge input costs nothing.
pub(super) fn check(token: &str) -> std::result::Result<(), ApiTokenRejection> {
    let bytes = token.as_bytes();
    if bytes.len() != TOKEN_LEN
        || !token.starts_with(PREFIX)
        || !bytes[PREFIX.len()..].iter().all(u8::is_ascii_alphanumeric)
    {
        return Err(ApiTokenRejection::Malformed);
    }
    let (head, check) = bytes.split_at(TOKEN_LEN - CHECK_LEN);
    if checksum(head) != check {
        return Err(ApiTokenRejection::BadChecksum);
    }
    Ok(())
}

/// Whether `candidate` has the shape and checksum of a consentry API token,
/// without any lookup: what a secret scanner or a pre-commit hook runs. It
/// says nothing about whether the token exists.
///
/// # Errors
/// [`Error::InvalidApiToken`] with reason
/// [`Malformed`](ApiTokenRejection::Malformed) or
/// [`BadChecksum`](ApiTokenRejection::BadChecksum).
///
/// ```
/// use consentry::api_token::{check_format, ApiTokenRejection};
/// use consentry::Error;
/// let err = check_format("cst_not-a-token").unwrap_err();
/// assert!(matches!(err, Error::InvalidApiToken { reason: ApiTokenRejection::Malformed }));
/// let typo = format!("cst_{}{}", "a".repeat(43), "000000");
/// assert!(matches!(check_format(&typo), Err(Error::InvalidApiToken { reason: ApiTokenRejection::BadChecksum })));
/// ```
pub fn check_format(candidate: &str) -> Result<()> {
    check(candidate).map_err(|reason| Error::InvalidApiToken { reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn base62_is_fixed_width_and_big_endian() {
        let mut s = String::new();
        base62_fixed(&[0, 0, 0, 0], 6, &mut s);
        assert_eq!(s, "000000");
        s.clear();
        base62_fixed(&[0, 0, 0, 62], 6, &mut s);
        assert_eq!(s, "000010");
        s.clear();
        base62_fixed(&[0xff; 4], 6, &mut s);
        assert_eq!(s, "4gfFC3"); // 4294967295 in base62
        s.clear();
        base62_fixed(&[0xff; 32], 43, &mut s);
        assert_eq!(s.len(), 43);
        assert!(
            s.starts_with(|c: char| c != '0'),
            "2^256-1 needs all 43 digits: {s}"
        );
    }

    #[test]
    fn the_checksum_is_the_crc32_in_fixed_base62() {
        for head in [&b""[..], b"cst_", b"123456789", &[0xff; 47]] {
            let mut slow = String::new();
            base62_fixed(&crc32(head).to_be_bytes(), CHECK_LEN, &mut slow);
            assert_eq!(checksum(head), slow.as_bytes(), "{head:?}");
        }
    }

    #[test]
    fn generated_tokens_pass_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.expose_secret().len(), TOKEN_LEN);
        assert!(a.expose_secret().starts_with(PREFIX));
        assert_eq!(check(a.expose_secret()), Ok(()));
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn shapes_are_refused() {
        let good = generate().unwrap();
        let good = good.expose_secret();
        for bad in [
            String::new(),
            "cst_".into(),
            good[..TOKEN_LEN - 1].to_owned(),
            format!("{good}a"),
            format!("xst_{}", &good[4..]),
            format!("{}-{}", &good[..10], &good[11..]),
            format!("{}é{}", &good[..10], &good[12..]),
            "x".repeat(1 << 20),
        ] {
            assert_eq!(check(&bad), Err(ApiTokenRejection::Malformed), "{bad:.60}");
        }
    }
}
