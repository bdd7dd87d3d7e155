//! Is it really Slack, or really Teams? Slack's v0 request signature and
//! the Teams outgoing-webhook HMAC, each compared in constant time, each
//! with a replay guard.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// How far a request's timestamp may be from now, either way (Slack's
/// documented five minutes).
pub(crate) const WINDOW_SECS: i64 = 300;

/// Signatures seen within the window: the same signed request twice is a
/// replay, refused.
#[derive(Debug, Default)]
pub(crate) struct ReplayGuard {
    seen: Mutex<VecDeque<(i64, [u8; 32])>>,
}

impl ReplayGuard {
    /// Whether `digest` is new at `now` (and remember it).
    pub(crate) fn first_time(&self, digest: [u8; 32], now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Past twice the window, a copy is refused for its timestamp anyway.
        while seen
            .front()
            .is_some_and(|(t, _)| now - *t > 2 * WINDOW_SECS)
        {
            seen.pop_front();
        }
        if seen.iter().any(|(_, d)| bool::from(d.ct_eq(&digest))) {
            return false;
        }
        // A bound on memory; anything this old is past its window.
        if seen.len() >= 100_000 {
            seen.pop_front();
        }
        seen.push_back((now, digest));
        true
    }
}

/// Slack's v0 signature: HMAC-SHA256 under the signing secret of
/// `v0:{X-Slack-Request-Timestamp}:{raw body}`.
pub(crate) fn slack_mac(secret: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Check a request from Slack as Slack documents: `X-Slack-Request-Timestamp`
/// within five minutes of `now`, `X-Slack-Signature: v0=<hex>` equal to
/// [`slack_mac`] (constant time), and never seen before.
pub(crate) fn check_slack(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    replay: &ReplayGuard,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ts_text = header("x-slack-request-timestamp").ok_or("no X-Slack-Request-Timestamp")?;
    if ts_text.is_empty() || ts_text.len() > 12 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("X-Slack-Request-Timestamp is not Unix seconds");
    }
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| "X-Slack-Request-Timestamp is not Unix seconds")?;
    if (now - ts).abs() > WINDOW_SECS {
        return Err("X-Slack-Request-Timestamp is more than 5 minutes from now");
    }
    let sig = header("x-slack-signature")
        .and_then(|s| s.strip_prefix("v0="))
        .ok_or("no X-Slack-Signature: v0=<hex>")?;
    let sig = hex::decode(sig).map_err(|_| "X-Slack-Signature is not hex")?;
    let expected = slack_mac(secret, ts_text, body);
    if !bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
        return Err("the Slack signature does not match");
    }
    if !replay.first_time(expected, now) {
        return Err("this signed request was already received (replay)");
    }
    Ok(())
}

/// The Teams outgoing-webhook HMAC: HMAC-SHA256 of the raw body under the
/// base64-decoded security token.
pub(crate) fn teams_mac(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
        mac.update(body);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Check `Authorization: HMAC <base64>` from Teams (constant time). The
/// scheme has no timestamp header: the caller checks the activity's own
/// `timestamp` (inside the signed body) and the replay guard.
pub(crate) fn check_teams(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<[u8; 32], &'static str> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let (scheme, sig) = value
        .split_once(' ')
        .ok_or("Authorization is not `HMAC <base64>`")?;
    if !scheme.eq_ignore_ascii_case("hmac") {
        return Err("Authorization is not `HMAC <base64>`");
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| "the HMAC is not base64")?;
    let expected = teams_mac(key, body);
    if !bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
        return Err("the Teams HMAC does not match");
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use axum::http::HeaderValue;

    use super::*;

    /// Slack's worked example (api.slack.com, "Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_str(ts).unwrap(),
        );
        h.insert("x-slack-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    #[test]
    fn slacks_documented_example_verifies() {
        let now = 1_531_420_618;
        let guard = ReplayGuard::default();
        assert_eq!(
            format!("v0={}", hex::encode(slack_mac(SECRET, TS, BODY.as_bytes()))),
            SIGNATURE
        );
        assert_eq!(
            check_slack(
                SECRET,
                &headers(TS, SIGNATURE),
                BODY.as_bytes(),
                now,
                &guard
            ),
            Ok(())
        );
    }

    #[test]
    fn a_slack_request_that_is_forged_stale_or_replayed_is_refused() {
        let now = 1_531_420_618;
        let guard = ReplayGuard::default();
        let h = headers(TS, SIGNATURE);
        let body = BODY.as_bytes();
        assert!(check_slack("another-secret-0123", &h, body, now, &guard).is_err());
        let tampered = BODY.replace("roadrunner", "coyote");
        assert!(check_slack(SECRET, &h, tampered.as_bytes(), now, &guard).is_err());
        // The same signature under another timestamp does not hold.
        assert!(check_slack(SECRET, &headers("1531420619", SIGNATURE), body, now, &guard).is_err());
        assert_eq!(
            check_slack(SECRET, &h, body, now + 301, &guard),
            Err("X-Slack-Request-Timestamp is more than 5 minutes from now")
        );
        assert!(check_slack(SECRET, &h, body, now - 301, &guard).is_err());
        assert!(check_slack(SECRET, &HeaderMap::new(), body, now, &guard).is_err());
        assert!(
            check_slack(
                SECRET,
                &headers("+1531420618", SIGNATURE),
                body,
                now,
                &guard
            )
            .is_err()
        );
        assert_eq!(check_slack(SECRET, &h, body, now + 299, &guard), Ok(()));
        assert_eq!(
            check_slack(SECRET, &h, body, now + 299, &guard),
            Err("this signed request was already received (replay)")
        );
    }

    #[test]
    fn teams_hmac_is_over_the_body_with_the_decoded_token() {
        let token = "vqF0En+Z0ucuRTM/01o2GuhMH3hKKk/N2bOmlM31zaA=";
        let key = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        let body = br#"{"type":"message","text":"<at>warden</at> status"}"#;
        let mac = {
            let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            m.update(body);
            m.finalize().into_bytes()
        };
        let header = format!(
            "HMAC {}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(&header).unwrap());
        assert!(check_teams(&key, &h, body).is_ok());
        // The token's text (not decoded) as the key does not verify.
        assert!(check_teams(token.as_bytes(), &h, body).is_err());
        assert!(check_teams(&key, &h, br#"{"type":"message","text":"approve"}"#).is_err());
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert!(check_teams(&key, &h, body).is_err());
    }
}
