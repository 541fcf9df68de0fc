//! When to try again: Svix's delay computation (reference §3.1), the
//! `Retry-After` header, jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::options::DispatcherOptions;

/// Longest `Retry-After` read (7 days); longer ones are this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why the attempt failed, as far as the delay is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    /// A timeout or a `429`: wait at least the overload penalty.
    pub(crate) overloaded: bool,
    /// The response's `Retry-After`, as a wait from now.
    pub(crate) retry_after: Option<Duration>,
}

/// The wait after failed attempt number `attempt` (1-based) of a scheduled
/// delivery, or `None` when the schedule is used up. `unit` is a uniform
/// random number in `[0, 1)` for the jitter.
///
/// 1. `d` = the schedule's entry for this attempt;
/// 2. after a timeout or `429`, `d = max(d, overload penalty)`;
/// 3. with `Retry-After`, `d = clamp(retry_after, d, 2·d)`;
/// 4. jitter: uniform in `[d·(1−j), d·(1+j)]`, never below the floors of
///    steps 2 and 3 (so "at least 60 s" and "`Retry-After` honoured"
///    hold after jitter too).
pub(crate) fn delay(
    options: &DispatcherOptions,
    attempt: u32,
    failure: Failure,
    unit: f64,
) -> Option<Duration> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let mut d = *options.schedule.get(index)?;
    let mut floor = Duration::ZERO;
    if failure.overloaded {
        d = d.max(options.overload_penalty);
        floor = options.overload_penalty;
    }
    if let Some(ra) = failure.retry_after {
        let upper = d.saturating_mul(2);
        let ra = ra.min(MAX_RETRY_AFTER);
        d = ra.clamp(d, upper.max(d));
        floor = floor.max(ra.min(upper));
    }
    let factor = 1.0 + options.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    let jittered = Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(d);
    Some(jittered.max(floor))
}

/// A uniform random number in `[0, 1)` from the crate's random source
/// (0.5, no jitter, if it fails).
pub(crate) fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    match crate::secret::fill_random(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): a number of seconds, or an
/// HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`), as a wait
/// from `now` (zero for a date in the past). `None` if it is neither.
pub(crate) fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = std::str::from_utf8(value).ok()?.trim();
    if value.is_empty() || value.len() > 64 {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses an IMF-fixdate: `Day, DD Mon YYYY HH:MM:SS GMT`.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(*m))? as u64 + 1;
    let year = num(12..16)?;
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let (hour, min, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + hour * 3600 + min * 60 + sec))
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; Howard
/// Hinnant's algorithm), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn opts() -> DispatcherOptions {
        DispatcherOptions::default().jitter(0.0)
    }

    #[test]
    fn the_default_schedule_then_exhaustion() {
        let plain = Failure {
            overloaded: false,
            retry_after: None,
        };
        let got: Vec<_> = (1..=8).map(|a| delay(&opts(), a, plain, 0.5)).collect();
        let want = [5, 300, 1800, 7200, 18_000, 36_000, 36_000].map(|s| Some(secs(s)));
        assert_eq!(got[..7], want);
        assert_eq!(got[7], None, "8 attempts in all");
        assert_eq!(delay(&opts(), 0, plain, 0.5), None);
    }

    #[test]
    fn overload_and_retry_after_bounds() {
        let o = opts();
        let timeout = Failure {
            overloaded: true,
            retry_after: None,
        };
        assert_eq!(delay(&o, 1, timeout, 0.5), Some(secs(60)));
        assert_eq!(delay(&o, 2, timeout, 0.5), Some(secs(300)));
        let ra = |s| Failure {
            overloaded: false,
            retry_after: Some(secs(s)),
        };
        assert_eq!(delay(&o, 2, ra(10), 0.5), Some(secs(300)), "at least d");
        assert_eq!(delay(&o, 2, ra(400), 0.5), Some(secs(400)));
        assert_eq!(delay(&o, 2, ra(10_000), 0.5), Some(secs(600)), "at most 2d");
        let both = Failure {
            overloaded: true,
            retry_after: Some(secs(100)),
        };
        assert_eq!(delay(&o, 1, both, 0.5), Some(secs(100)));
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_above_floors() {
        let o = DispatcherOptions::default();
        let plain = Failure {
            overloaded: false,
            retry_after: None,
        };
        assert_eq!(delay(&o, 2, plain, 0.0), Some(secs(240)));
        let top = delay(&o, 2, plain, 0.999_999).unwrap();
        assert!(top > secs(359) && top <= secs(360));
        let timeout = Failure {
            overloaded: true,
            retry_after: None,
        };
        assert_eq!(
            delay(&o, 1, timeout, 0.0),
            Some(secs(60)),
            "never below 60 s"
        );
        for _ in 0..100 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after(b"120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(b" 7 ", now), Some(secs(7)));
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(secs(120))
        );
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(b"99999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"1.5",
            b"soon",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"\xff",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        let leap = parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").unwrap();
        assert_eq!(leap, UNIX_EPOCH + secs(1_709_164_800));
    }
}
