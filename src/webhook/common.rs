//! Pieces every scheme shares: streamed HMAC-SHA256, strict hex and base64
//! decoding into fixed buffers, timestamp parsing and the tolerance window.

use std::borrow::Borrow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{HmacSecret, VerifyOptions, WebhookError};
use crate::secret::constant_time_eq;

/// Most signatures read from one header; the rest are ignored.
pub(crate) const MAX_SIGNATURES: usize = 32;

/// Standard base64 that accepts padded and unpadded input and non-zero
/// trailing bits, as the reference libraries do for secrets.
pub(crate) const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// An HMAC-SHA256 key, set up once: the key's inner and outer blocks are
/// already hashed, so each MAC saves two SHA-256 compressions. The state
/// is key-equivalent; it is zeroed on drop (`sha2`'s `zeroize` feature).
#[derive(Clone)]
pub(crate) struct KeyedMac(Hmac<Sha256>);

impl KeyedMac {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self(
            <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        )
    }

    /// HMAC-SHA256 of the concatenation of `parts`, without concatenating
    /// them.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 of the concatenation of `parts`, keyed on the spot.
#[cfg(test)]
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether the HMAC of `parts` under any of `secrets` equals any of
/// `signatures` (constant-time per comparison).
pub(crate) fn any_hmac_matches(
    secrets: &[impl Borrow<HmacSecret>],
    parts: &[&[u8]],
    signatures: &[[u8; 32]],
) -> bool {
    !signatures.is_empty()
        && secrets.iter().any(|secret| {
            let expected = secret.borrow().keyed().mac(parts);
            signatures
                .iter()
                .any(|sig| constant_time_eq(&expected, sig))
        })
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub(crate) fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Standard padded base64.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 alphabet value of each byte; 0xff for bytes outside it.
const SEXTETS: [u8; 256] = {
    let mut table = [0xff; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes canonical, padded standard base64 of exactly `N` bytes (a
/// signature): the exact length, the exact padding, zero trailing bits.
/// Anything else is `None`.
pub(crate) fn decode_b64<const N: usize>(s: impl AsRef<[u8]>) -> Option<[u8; N]> {
    fn quad(q: &[u8]) -> Option<u32> {
        q.iter().try_fold(0u32, |acc, &c| {
            let v = SEXTETS[usize::from(c)];
            (v != 0xff).then_some((acc << 6) | u32::from(v))
        })
    }
    let s = s.as_ref();
    if s.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let mut out = [0u8; N];
    let full = N / 3;
    for (q, o) in s.chunks_exact(4).take(full).zip(out.chunks_exact_mut(3)) {
        let [_, a, b, c] = quad(q)?.to_be_bytes();
        o.copy_from_slice(&[a, b, c]);
    }
    let tail = &s[full * 4..];
    match N % 3 {
        // "xx==": 12 bits, 8 of data.
        1 if tail[2..] == *b"==" => {
            let n = quad(&tail[..2])?;
            (n & 0xf == 0).then_some(())?;
            out[N - 1] = (n >> 4) as u8;
        }
        // "xxx=": 18 bits, 16 of data.
        2 if tail[3] == b'=' => {
            let n = quad(&tail[..3])?;
            (n & 0x3 == 0).then_some(())?;
            out[N - 2..].copy_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
        }
        0 => {}
        _ => return None,
    }
    Some(out)
}

/// Parses a Unix timestamp in whole seconds: 1 to 19 ASCII digits, nothing
/// else (no sign, no fraction, no spaces).
pub(crate) fn parse_seconds(s: impl AsRef<[u8]>) -> Option<u64> {
    let s = s.as_ref();
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks a signed timestamp against `now`. `future` also refuses
/// timestamps too far ahead (Standard Webhooks, Slack); Stripe checks only
/// the past.
pub(crate) fn check_window(
    timestamp: u64,
    now: SystemTime,
    options: &VerifyOptions,
    future: bool,
) -> Result<(), WebhookError> {
    let now = unix_seconds(now);
    let tolerance_secs = options.tolerance().as_secs();
    if timestamp < now {
        let skew_secs = now - timestamp;
        if skew_secs > tolerance_secs {
            return Err(WebhookError::TimestampTooOld {
                skew_secs,
                tolerance_secs,
            });
        }
    } else if future {
        let skew_secs = timestamp - now;
        if skew_secs > tolerance_secs {
            return Err(WebhookError::TimestampTooNew {
                skew_secs,
                tolerance_secs,
            });
        }
    }
    Ok(())
}

/// Refuses payloads over the configured limit.
pub(crate) fn check_payload(payload: &[u8], options: &VerifyOptions) -> Result<(), WebhookError> {
    match options.max_payload_len() {
        Some(limit) if payload.len() > limit => Err(WebhookError::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn hmac_of_parts_equals_hmac_of_concatenation() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"", b"for nothing?"]);
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(hex(&mac), want);
        let keyed = KeyedMac::new(b"Jefe");
        assert_eq!(hex(&keyed.mac(&[b"what do ya want for nothing?"])), want);
        assert_eq!(
            hex(&keyed.mac(&[b"what do ya ", b"want for nothing?"])),
            want
        );
    }

    #[test]
    fn hex_round_trips_and_is_strict() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        let h = hex(&bytes);
        assert_eq!(decode_hex32(&h).unwrap().as_slice(), bytes.as_slice());
        assert_eq!(
            decode_hex32(&h.to_uppercase()).unwrap().as_slice(),
            bytes.as_slice()
        );
        assert!(decode_hex32(&h[..62]).is_none());
        assert!(decode_hex32(&format!("{}g", &h[..63])).is_none());
        assert!(decode_hex32(&format!("{}\u{e9}", &h[..62])).is_none());
    }

    #[test]
    fn base64_decoding_is_canonical_and_exact() {
        let sig = [7u8; 32];
        let enc = b64(&sig);
        assert_eq!(decode_b64::<32>(&enc), Some(sig));
        assert_eq!(decode_b64::<32>(enc.trim_end_matches('=')), None);
        assert_eq!(decode_b64::<32>(&b64(&[7u8; 31])), None);
        let sig64 = [9u8; 64];
        assert_eq!(decode_b64::<64>(&b64(&sig64)), Some(sig64));
        assert_eq!(decode_b64::<32>("!!!!"), None);
        assert_eq!(decode_b64::<32>(&"A".repeat(44)), None, "no padding byte");
        assert_eq!(decode_b64::<64>(&"A".repeat(88)), None, "no padding bytes");
        assert_eq!(decode_b64::<30>(&b64(&[5u8; 30])), Some([5u8; 30]));
    }

    #[test]
    fn base64_decoder_agrees_with_the_base64_crate() {
        // Every single-character change of valid encodings, both sizes:
        // accepted exactly when the strict `base64` decoder accepts it.
        for seed in 0u8..8 {
            let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(seed + 3) ^ seed).collect();
            for enc in [b64(&bytes[..32]), b64(&bytes)] {
                for i in 0..enc.len() {
                    for c in [b'A', b'B', b'Q', b'g', b'w', b'/', b'+', b'=', b'-', b'.'] {
                        let mut m = enc.clone().into_bytes();
                        m[i] = c;
                        let want = enc.len() / 4 * 3 - enc.matches('=').count();
                        let strict = STANDARD.decode(&m).ok().filter(|v| v.len() == want);
                        let ours = if enc.len() == 44 {
                            decode_b64::<32>(&m).map(|a| a.to_vec())
                        } else {
                            decode_b64::<64>(&m).map(|a| a.to_vec())
                        };
                        assert_eq!(ours, strict, "{}", String::from_utf8_lossy(&m));
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_are_digits_only() {
        assert_eq!(parse_seconds("1614265330"), Some(1_614_265_330));
        assert_eq!(parse_seconds("0"), Some(0));
        assert_eq!(
            parse_seconds("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "1 ",
            "hello",
            "99999999999999999999",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn window_edges() {
        let opts = VerifyOptions::new();
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert!(check_window(10_000 - 300, now, &opts, true).is_ok());
        assert!(check_window(10_000 + 300, now, &opts, true).is_ok());
        assert_eq!(
            check_window(10_000 - 301, now, &opts, true),
            Err(WebhookError::TimestampTooOld {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            check_window(10_000 + 301, now, &opts, true),
            Err(WebhookError::TimestampTooNew {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(check_window(u64::MAX, now, &opts, false).is_ok());
        assert!(check_window(u64::MAX, now, &opts, true).is_err());
        assert!(check_window(0, UNIX_EPOCH - Duration::from_secs(5), &opts, true).is_ok());
    }
}
