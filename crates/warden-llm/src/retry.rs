//! When and how long to wait before trying again.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Longest `Retry-After` we honour; a server asking for more is treated as
/// asking for this much, so a misconfigured proxy cannot park the agent.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const BASE_DELAY: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Exponential backoff with jitter for retry number `retry` (1-based): a
/// random delay in `[d/2, d]` where `d = 500ms * 2^(retry-1)`, capped at 20 s.
pub(crate) fn backoff(retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(16);
    let full = BASE_DELAY.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let half = full / 2;
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date. Capped at
/// [`MAX_RETRY_AFTER`]; `None` when unreadable.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = parse_http_date(value)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate,
/// a form of RFC 2822), parsed by jiff.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    Some(SystemTime::from(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_seconds_and_caps_them() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 2.5 ", now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn reads_retry_after_http_dates_relative_to_now() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        // Other RFC 2822 zones are read in their zone (8 hours later: capped).
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 PST", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Sun, 36 Nov 1994 08:49:47 GMT", now),
            None
        );
    }

    #[test]
    fn backoff_grows_and_stays_within_jitter_bounds() {
        for retry in 1..=8 {
            let full = BASE_DELAY.saturating_mul(1 << (retry - 1)).min(MAX_BACKOFF);
            let wait = backoff(retry);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
