//! Scrubbing secrets out of what comes back from a guest.
//!
//! A guest never gets a secret URL from the host, but a webhook may hand
//! it back (a 404 page that quotes its own path), and an embedder may pass
//! one in an argument. So every string a call returns (the output JSON,
//! keys included), every tool error message, trap message and guest log
//! record, and every response body from a secret's destination, has each
//! form of each secret replaced by `[secret:<name>]`:
//!
//! - the URL as configured and as parsed;
//! - its path with query, its path, its query;
//! - each path segment, query parameter and query value of 8 bytes or
//!   more that is not a common URL word (`services`, `webhooks`, ...):
//!   the parts that carry a token;
//! - each of these percent-decoded and percent-encoded (upper- and
//!   lower-case hex), as a page or a log may quote either.
//!
//! Matching is leftmost-longest, so a whole URL becomes one marker rather
//! than a host followed by markers.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::SandboxError;

/// Fragments shorter than this are too common to scrub on their own.
const MIN_FRAGMENT: usize = 8;

/// URL words that carry no secret; scrubbing them would mangle outputs.
const COMMON_WORDS: &[&str] = &[
    "api-version",
    "callback",
    "callbacks",
    "channels",
    "endpoint",
    "endpoints",
    "incoming",
    "incomingwebhook",
    "integration",
    "integrations",
    "messages",
    "notification",
    "notifications",
    "services",
    "triggers",
    "webhook",
    "webhookb2",
    "webhooks",
    "workflow",
    "workflows",
];

/// Replaces every form of every secret with `[secret:<name>]`. Cheap to
/// clone; `Debug` shows the secret names only.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    matcher: Option<std::sync::Arc<AhoCorasick>>,
    replacements: Vec<String>,
    names: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(&self.names).finish()
    }
}

impl Scrubber {
    /// A scrubber for `secrets`, pairs of name and URL.
    ///
    /// # Errors
    /// [`SandboxError::Config`] if the patterns cannot be compiled (only for
    /// sizes far beyond any webhook URL); a sandbox that cannot scrub does
    /// not start.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SandboxError> {
        let mut needles: Vec<String> = Vec::new();
        let mut replacements = Vec::new();
        let mut names = Vec::new();
        for (name, url) in secrets {
            names.push(name.to_string());
            for needle in forms(url) {
                if !needles.contains(&needle) {
                    needles.push(needle);
                    replacements.push(format!("[secret:{name}]"));
                }
            }
        }
        let matcher = if needles.is_empty() {
            None
        } else {
            let matcher = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&needles)
                .map_err(|e| SandboxError::Config {
                    message: format!("compiling the secret scrubber: {e}"),
                })?;
            Some(std::sync::Arc::new(matcher))
        };
        Ok(Scrubber {
            matcher,
            replacements,
            names,
        })
    }

    /// `text` with every secret form replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => Cow::Owned(m.replace_all(text, &self.replacements)),
            _ => Cow::Borrowed(text),
        }
    }

    /// `text`, scrubbed in place.
    pub fn string(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.text(text) {
            *text = clean;
        }
    }

    /// Every string in `value`, object keys included, scrubbed in place.
    pub fn json(&self, value: &mut serde_json::Value) {
        if self.matcher.is_none() {
            return;
        }
        match value {
            serde_json::Value::String(s) => self.string(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            serde_json::Value::Object(map) => {
                let dirty: Vec<String> = map
                    .keys()
                    .filter(|k| matches!(self.text(k), Cow::Owned(_)))
                    .cloned()
                    .collect();
                for key in dirty {
                    if let Some(v) = map.remove(&key) {
                        map.insert(self.text(&key).into_owned(), v);
                    }
                }
                map.values_mut().for_each(|v| self.json(v));
            }
            _ => {}
        }
    }

    /// Bytes (a response body) with every secret form replaced; bytes that
    /// are not UTF-8 are matched as they are.
    pub fn bytes(&self, body: &[u8]) -> Option<Vec<u8>> {
        let m = self.matcher.as_ref()?;
        m.is_match(body).then(|| {
            let mut out = Vec::with_capacity(body.len());
            m.replace_all_with_bytes(body, &mut out, |mat, _, dst| {
                dst.extend_from_slice(self.replacements[mat.pattern().as_usize()].as_bytes());
                true
            });
            out
        })
    }
}

/// Every form of `url` to scrub.
fn forms(url: &str) -> Vec<String> {
    let mut raw: Vec<String> = vec![url.to_string()];
    if let Ok(uri) = url.parse::<http::Uri>() {
        raw.push(uri.to_string());
        let path = uri.path();
        let query = uri.query().unwrap_or_default();
        let secret_parts: Vec<&str> = path
            .split('/')
            .chain(query.split('&'))
            .chain(
                query
                    .split('&')
                    .filter_map(|p| p.split_once('=').map(|(_, v)| v)),
            )
            .filter(|part| carries_entropy(part))
            .collect();
        if !secret_parts.is_empty() {
            if let Some(pq) = uri.path_and_query() {
                raw.push(pq.as_str().to_string());
            }
            raw.push(path.to_string());
            raw.push(query.to_string());
        }
        raw.extend(secret_parts.into_iter().map(str::to_string));
    }
    let mut all = Vec::new();
    for form in raw {
        for variant in [
            percent_decode(&form),
            percent_encode(&form, true),
            percent_encode(&form, false),
            form,
        ] {
            if variant.len() >= MIN_FRAGMENT && !all.contains(&variant) {
                all.push(variant);
            }
        }
    }
    all
}

fn carries_entropy(part: &str) -> bool {
    let decoded = percent_decode(part);
    decoded.len() >= MIN_FRAGMENT
        && !COMMON_WORDS
            .iter()
            .any(|w| w.eq_ignore_ascii_case(&decoded))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encode everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str, upper: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/s3cr3tT0kenValue?x=1";

    fn scrubber() -> Scrubber {
        Scrubber::new([("ops", URL)]).unwrap()
    }

    #[test]
    fn the_url_and_each_part_that_carries_a_token_are_replaced() {
        let s = scrubber();
        for (dirty, clean) in [
            (URL.to_string(), "[secret:ops]"),
            (
                "404: /services/T0AB12CD3/B0EF45GH6/s3cr3tT0kenValue?x=1 not found".into(),
                "404: [secret:ops] not found",
            ),
            (
                "no route for /services/T0AB12CD3/B0EF45GH6/s3cr3tT0kenValue".into(),
                "no route for [secret:ops]",
            ),
            ("token s3cr3tT0kenValue".into(), "token [secret:ops]"),
            (
                "team T0AB12CD3 bot B0EF45GH6".into(),
                "team [secret:ops] bot [secret:ops]",
            ),
            (
                "https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0AB12CD3%2FB0EF45GH6%2Fs3cr3tT0kenValue%3Fx%3D1".into(),
                "[secret:ops]",
            ),
            (
                "see %2fservices%2fT0AB12CD3%2fB0EF45GH6%2fs3cr3tT0kenValue".into(),
                "see [secret:ops]",
            ),
        ] {
            assert_eq!(s.text(&dirty), clean, "{dirty}");
        }
    }

    #[test]
    fn common_words_and_short_parts_are_left_alone() {
        let s = scrubber();
        let text = "services webhooks x=1 hooks.slack.com /services/";
        assert!(matches!(s.text(text), Cow::Borrowed(_)));
    }

    #[test]
    fn every_string_in_json_is_scrubbed_keys_included() {
        let s = scrubber();
        let mut v = serde_json::json!({
            "ok": false,
            "error": format!("POST {URL} answered 404"),
            "nested": [{"s3cr3tT0kenValue": ["x", "s3cr3tT0kenValue"]}],
            "n": 3
        });
        s.json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "ok": false,
                "error": "POST [secret:ops] answered 404",
                "nested": [{"[secret:ops]": ["x", "[secret:ops]"]}],
                "n": 3
            })
        );
    }

    #[test]
    fn bodies_are_scrubbed_as_bytes() {
        let s = scrubber();
        let body = b"\xff not found: /services/T0AB12CD3/B0EF45GH6/s3cr3tT0kenValue";
        assert_eq!(
            s.bytes(body).unwrap(),
            b"\xff not found: [secret:ops]".to_vec()
        );
        assert_eq!(s.bytes(b"fine"), None);
    }

    #[test]
    fn no_secrets_means_nothing_changes() {
        let s = Scrubber::default();
        assert!(matches!(s.text(URL), Cow::Borrowed(_)));
        assert_eq!(format!("{:?}", scrubber()), "{\"ops\"}");
    }
}
