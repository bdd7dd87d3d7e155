//! Tokenising a message and replacing its variables with `<*>`.
//!
//! What a token is comes from [`crate::token`]; this module adds what
//! template mining needs on top: values inside tokens (`blk_<*>`), units in
//! the next word (`5.6 KB`), `key=value` pairs and parenthesised notes.

use std::borrow::Cow;

use crate::config::Masking;
use crate::token::{Run, TokenClass, classify, classify_run, runs, strip_wrapping};

/// The text that stands for a parameter in templates.
pub(crate) const WILDCARD: &str = "<*>";

/// Suffix of a word followed by a parenthesised value, as in
/// `bytes (1.2 KB)`: such optional notes are folded into the word before
/// them so that lines with and without one keep the same token count.
pub(crate) const ANNOTATION: &str = " (<*>)";

/// Units that turn the number before them into one quantity (`5.6 KB`).
/// Plain words such as `bytes` are left out: they read better kept.
const UNITS: &[&str] = &[
    "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "ms", "us", "µs", "ns", "s",
    "sec", "secs", "min", "mins", "h", "hr", "hrs", "%",
];

/// Splits `content` on whitespace and masks each token. Tokens that mask
/// nothing borrow from `content`.
pub(crate) fn tokenize<'a>(content: &'a str, masking: &Masking) -> Vec<Cow<'a, str>> {
    let mut words = content.split_whitespace().peekable();
    let mut tokens: Vec<Cow<'a, str>> = Vec::new();
    while let Some(first) = words.next() {
        let token = mask_word(first, masking);
        let mut last = first;
        // `5.6 KB`, `(1.20 KB)`, `<1 sec`: one value spread over two words.
        if masking.numbers
            && token == WILDCARD
            && let Some(next) = words.next_if(|next| {
                UNITS
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(strip_wrapping(next).1))
            })
        {
            last = next;
        }
        let annotation = token == WILDCARD
            && first.starts_with('(')
            && last.trim_end_matches([',', '.', ';']).ends_with(')');
        match tokens.last_mut() {
            Some(previous) if annotation && !previous.contains(WILDCARD) => {
                previous.to_mut().push_str(ANNOTATION);
            }
            _ => tokens.push(token),
        }
    }
    tokens
}

/// Masks one whitespace-free word.
pub(crate) fn mask_word<'a>(word: &'a str, m: &Masking) -> Cow<'a, str> {
    if let Some(masked) = mask_whole(word, m) {
        return masked;
    }
    let (pre, core, post) = strip_wrapping(word);
    if core.is_empty() {
        return Cow::Borrowed(word);
    }
    match mask_whole(core, m).or_else(|| mask_parts(core, m)) {
        Some(masked) => collapse(format!("{pre}{masked}{post}")),
        None => Cow::Borrowed(word),
    }
}

/// A word that is entirely one kind of variable, or `None`.
fn mask_whole(word: &str, m: &Masking) -> Option<Cow<'static, str>> {
    let class = classify(word);
    if !m.masks(class) {
        return None;
    }
    if class == TokenClass::Url
        && let Some(scheme_end) = word.find("://")
    {
        return Some(Cow::Owned(format!("{}{WILDCARD}", &word[..scheme_end + 3])));
    }
    Some(Cow::Borrowed(WILDCARD))
}

/// Masks the alphanumeric runs of a word that are numbers or hex ids.
///
/// `key=value` keeps its key. A word left with more masked runs than
/// constant ones (`attempt_1_0020_m_3`) is an id and becomes one `<*>`.
/// `None` when nothing is masked.
fn mask_parts(core: &str, m: &Masking) -> Option<Cow<'static, str>> {
    if let Some(eq) = core.find('=') {
        let (key, value) = (&core[..eq], &core[eq + 1..]);
        if !key.is_empty() && !value.is_empty() && is_identifier(key) {
            return match mask_word(value, m) {
                Cow::Borrowed(same) if same == value => None,
                masked => Some(Cow::Owned(format!("{key}={masked}"))),
            };
        }
    }
    if !(m.numbers || m.hex) {
        return None;
    }
    // Built only once a run is masked: most words come back borrowed.
    let mut out: Option<String> = None;
    let (mut masked, mut kept) = (0usize, 0usize);
    let mut pieces = runs(core).peekable();
    let mut at = 0;
    while let Some(piece) = pieces.next() {
        match piece {
            Run::Sep(sep) => {
                // `blk_-42`: a `-` between a separator and a number is its sign.
                let signed = m.numbers
                    && sep.len() > 1
                    && sep.ends_with('-')
                    && matches!(pieces.peek(), Some(Run::Alnum(r)) if r.starts_with(|c: char| c.is_ascii_digit()));
                if signed {
                    out.get_or_insert_with(|| core[..at].to_owned())
                        .push_str(&sep[..sep.len() - 1]);
                } else if let Some(out) = &mut out {
                    out.push_str(sep);
                }
                at += sep.len();
            }
            Run::Alnum(run) => {
                if masks_run(run, m) {
                    out.get_or_insert_with(|| core[..at].to_owned())
                        .push_str(WILDCARD);
                    masked += 1;
                } else {
                    if run
                        .bytes()
                        .any(|b| b.is_ascii_alphabetic() || !b.is_ascii())
                    {
                        kept += 1;
                    }
                    if let Some(out) = &mut out {
                        out.push_str(run);
                    }
                }
                at += run.len();
            }
        }
    }
    match out {
        Some(_) if masked >= 2 && masked >= kept => Some(Cow::Borrowed(WILDCARD)),
        out => out.map(Cow::Owned),
    }
}

/// An alphanumeric run that is a number (`42`, `12ms`) or a hex id.
fn masks_run(run: &str, m: &Masking) -> bool {
    match classify_run(run) {
        TokenClass::Hex => m.hex || (m.numbers && run.starts_with(|c: char| c.is_ascii_digit())),
        TokenClass::Number => m.numbers,
        _ => false,
    }
}

/// Replaces a token that is only `<*>`s and punctuation by one `<*>`.
fn collapse<'a>(token: String) -> Cow<'a, str> {
    let only_punctuation = token.contains(WILDCARD)
        && token
            .split(WILDCARD)
            .all(|rest| rest.bytes().all(|b| b.is_ascii_punctuation()));
    if only_punctuation {
        Cow::Borrowed(WILDCARD)
    } else {
        Cow::Owned(token)
    }
}

fn is_identifier(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-$".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(line: &str) -> String {
        tokenize(line, &Masking::default()).join(" ")
    }

    #[test]
    fn masks_plain_and_signed_numbers() {
        assert_eq!(
            masked("took 12 attempts, -3 left, 0.25 ratio"),
            "took <*> attempts, <*> left, <*> ratio"
        );
    }

    #[test]
    fn masks_numbers_inside_tokens_and_keeps_their_prefix() {
        assert_eq!(
            masked("deleting blk_-6952295868487656571"),
            "deleting blk_<*>"
        );
        assert_eq!(masked("onExtend:1514038530000 done"), "onExtend:<*> done");
    }

    #[test]
    fn keeps_digits_that_are_part_of_a_name() {
        assert_eq!(
            masked("jk2_init() found ssh2 Slf4jLogger"),
            "jk2_init() found ssh2 Slf4jLogger"
        );
    }

    #[test]
    fn masks_ids_made_mostly_of_numbers_as_one_parameter() {
        assert_eq!(
            masked("attempt_1445144423722_0020_m_000000_0 started"),
            "<*> started"
        );
    }

    #[test]
    fn masks_ipv4_addresses_with_and_without_ports() {
        assert_eq!(
            masked("from 10.251.73.220:50010 to /10.0.0.1"),
            "from <*> to <*>"
        );
    }

    #[test]
    fn masks_ipv6_addresses() {
        assert_eq!(masked("peer fe80::1ff:fe23:4567:890a up"), "peer <*> up");
        assert_eq!(masked("peer 2001:db8:0:0:0:0:2:1 up"), "peer <*> up");
        assert_eq!(masked("at 12:30 sharp"), "at <*> sharp");
    }

    #[test]
    fn masks_hex_ids() {
        assert_eq!(
            masked("session 0x14f05578bd80010 closed"),
            "session <*> closed"
        );
        assert_eq!(masked("object deadbeef42 freed"), "object <*> freed");
    }

    #[test]
    fn masks_uuids() {
        assert_eq!(
            masked("req 38101a0b-2096-447d-96ea-a692162415ae ok"),
            "req <*> ok"
        );
    }

    #[test]
    fn masks_paths_but_not_single_segment_names() {
        assert_eq!(
            masked("open /var/log/app.log and C:\\Windows\\x.dll"),
            "open <*> and <*>"
        );
        assert_eq!(
            masked("resolved to /default-rack"),
            "resolved to /default-rack"
        );
    }

    #[test]
    fn masks_urls_keeping_the_scheme() {
        assert_eq!(
            masked("GET https://example.com/a?b=1 done"),
            "GET https://<*> done"
        );
    }

    #[test]
    fn masks_host_port_endpoints_whole() {
        assert_eq!(
            masked("open through proxy.cse.cuhk.edu.hk:5070 HTTPS"),
            "open through <*> HTTPS"
        );
        assert_eq!(masked("at Client.java:1347"), "at Client.java:<*>");
    }

    #[test]
    fn masks_relative_paths_but_keeps_the_key_before_one() {
        assert_eq!(masked("unpack lib/native/x86 done"), "unpack <*> done");
        assert_eq!(
            masked("Error Path:/home/curi/.zk"),
            "Error Path:/home/curi/.zk"
        );
        assert_eq!(masked("dir=conf/hadoop/x"), "dir=<*>");
    }

    #[test]
    fn tokens_without_a_variable_are_borrowed_not_copied() {
        let tokens = tokenize("Served block blk_42 to 10.0.0.1", &Masking::default());
        let borrowed: Vec<bool> = tokens
            .iter()
            .map(|t| matches!(t, std::borrow::Cow::Borrowed(_)))
            .collect();
        // `blk_<*>` is built; a whole `<*>` is the static wildcard.
        assert_eq!(borrowed, [true, true, false, true, true]);
    }

    #[test]
    fn masks_emails() {
        assert_eq!(
            masked("mail to ops@example.com failed"),
            "mail to <*> failed"
        );
    }

    #[test]
    fn masks_dates_and_times() {
        assert_eq!(
            masked("since 2024-01-02T12:30:01Z until 17/06/09"),
            "since <*> until <*>"
        );
    }

    #[test]
    fn masks_quantities_with_units_as_one_token() {
        assert_eq!(masked("size 5.6 KB, took 12 ms"), "size <*> took <*>");
        assert_eq!(masked("lifetime <1 sec"), "lifetime <*>");
        assert_eq!(masked("waited 250ms"), "waited <*>");
    }

    #[test]
    fn folds_a_parenthesised_value_into_the_word_before() {
        assert_eq!(
            masked("5174 bytes (5.05 KB) received"),
            "<*> bytes (<*>) received"
        );
    }

    #[test]
    fn keeps_the_key_of_key_value_pairs() {
        assert_eq!(
            masked("uid=0 rhost=173.234.31.186 user=root"),
            "uid=<*> rhost=<*> user=root"
        );
    }

    #[test]
    fn masking_rules_can_be_switched_off() {
        let none = Masking {
            numbers: false,
            ips: false,
            hosts: false,
            hex: false,
            uuids: false,
            paths: false,
            urls: false,
            emails: false,
            timestamps: false,
        };
        let line = "from 10.0.0.1 took 12 ms at /var/log/x";
        assert_eq!(tokenize(line, &none).join(" "), line);
        let ips_only = Masking { ips: true, ..none };
        assert_eq!(
            tokenize(line, &ips_only).join(" "),
            "from <*> took 12 ms at /var/log/x"
        );
    }

    #[test]
    fn handles_unicode_without_splitting_characters() {
        assert_eq!(
            masked("Ünïcödé 用户 登录 42 次 ✓"),
            "Ünïcödé 用户 登录 <*> 次 ✓"
        );
    }
}
