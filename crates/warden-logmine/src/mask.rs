//! Tokenising a message and replacing its variables with `<*>`.

use crate::config::Masking;

/// The text that stands for a parameter in templates.
pub(crate) const WILDCARD: &str = "<*>";

/// Suffix of a word followed by a parenthesised value, as in
/// `bytes (1.2 KB)`: such optional notes are folded into the word before
/// them so that lines with and without one keep the same token count.
pub(crate) const ANNOTATION: &str = " (<*>)";

/// Characters that may wrap a value without being part of it.
const OPENERS: &[u8] = b"([{<'\"";
const CLOSERS: &[u8] = b")]}>'\",.;:!?";

/// Units that turn the number before them into one quantity (`5.6 KB`).
/// Plain words such as `bytes` are left out: they read better kept.
const UNITS: &[&str] = &[
    "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "ms", "us", "µs", "ns", "s",
    "sec", "secs", "min", "mins", "h", "hr", "hrs", "%",
];

/// Splits `content` on whitespace and masks each token.
pub(crate) fn tokenize(content: &str, masking: &Masking) -> Vec<String> {
    let words: Vec<&str> = content.split_whitespace().collect();
    let mut tokens: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let first = words[i];
        let token = mask_word(first, masking);
        let mut last = first;
        // `5.6 KB`, `(1.20 KB)`, `<1 sec`: one value spread over two words.
        if masking.numbers
            && token == WILDCARD
            && let Some(next) = words.get(i + 1)
            && UNITS
                .iter()
                .any(|u| u.eq_ignore_ascii_case(unwrap_punct(next).1))
        {
            i += 1;
            last = next;
        }
        i += 1;
        let annotation = token == WILDCARD
            && first.starts_with('(')
            && last.trim_end_matches([',', '.', ';']).ends_with(')');
        match tokens.last_mut() {
            Some(previous) if annotation && !previous.contains(WILDCARD) => {
                previous.push_str(ANNOTATION);
            }
            _ => tokens.push(token),
        }
    }
    tokens
}

/// Masks one whitespace-free word.
pub(crate) fn mask_word(word: &str, m: &Masking) -> String {
    if let Some(masked) = mask_whole(word, m) {
        return masked;
    }
    let (pre, core, post) = unwrap_punct(word);
    if core.is_empty() {
        return word.to_owned();
    }
    let masked_core = match mask_whole(core, m) {
        Some(masked) => masked,
        None => mask_parts(core, m),
    };
    collapse(format!("{pre}{masked_core}{post}"))
}

/// A word that is entirely one kind of variable, or `None`.
fn mask_whole(word: &str, m: &Masking) -> Option<String> {
    if m.urls
        && let Some(scheme_end) = word.find("://")
        && scheme_end > 0
        && word[..scheme_end]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-')
    {
        return Some(format!("{}{WILDCARD}", &word[..scheme_end + 3]));
    }
    let whole = (m.emails && is_email(word))
        || (m.uuids && is_uuid(word))
        || (m.ips && (is_ipv4(word) || is_ipv6(word)))
        || (m.timestamps && is_datetime(word))
        || (m.paths && is_path(word))
        || (m.hex && is_hex(word))
        || (m.numbers && is_number(word));
    whole.then(|| WILDCARD.to_owned())
}

/// Masks the alphanumeric runs of a word that are numbers or hex ids.
///
/// `key=value` keeps its key. A word left with more masked runs than
/// constant ones (`attempt_1_0020_m_3`) is an id and becomes one `<*>`.
fn mask_parts(core: &str, m: &Masking) -> String {
    if let Some(eq) = core.find('=') {
        let (key, value) = (&core[..eq], &core[eq + 1..]);
        if !key.is_empty() && !value.is_empty() && is_identifier(key) {
            return format!("{key}={}", mask_word(value, m));
        }
    }
    if !(m.numbers || m.hex) {
        return core.to_owned();
    }
    let bytes = core.as_bytes();
    let mut out = String::with_capacity(core.len());
    let (mut masked, mut kept) = (0usize, 0usize);
    let mut start = 0;
    while start < bytes.len() {
        let is_run = |b: u8| b.is_ascii_alphanumeric() || !b.is_ascii();
        let run = is_run(bytes[start]);
        let mut end = start;
        while end < bytes.len() && is_run(bytes[end]) == run {
            end += 1;
        }
        let mut piece = &core[start..end];
        // `blk_-42`: a `-` between a separator and a number is its sign.
        let signed = !run
            && piece.len() > 1
            && piece.ends_with('-')
            && bytes.get(end).is_some_and(u8::is_ascii_digit)
            && m.numbers;
        if signed {
            piece = &piece[..piece.len() - 1];
        }
        if run && is_variable_run(piece, m) {
            out.push_str(WILDCARD);
            masked += 1;
        } else {
            if run
                && piece
                    .bytes()
                    .any(|b| b.is_ascii_alphabetic() || !b.is_ascii())
            {
                kept += 1;
            }
            out.push_str(piece);
        }
        start = end;
    }
    if masked >= 2 && masked >= kept {
        WILDCARD.to_owned()
    } else {
        out
    }
}

/// An alphanumeric run that is a number (`42`, `12ms`) or a hex id.
fn is_variable_run(run: &str, m: &Masking) -> bool {
    let first_digit = run.as_bytes().first().is_some_and(u8::is_ascii_digit);
    (m.numbers && first_digit) || (m.hex && is_hex(run))
}

/// Replaces a token that is only `<*>`s and punctuation by one `<*>`.
fn collapse(token: String) -> String {
    if !token.contains(WILDCARD) {
        return token;
    }
    let rest = token.replace(WILDCARD, "");
    if rest.bytes().all(|b| b.is_ascii_punctuation()) {
        WILDCARD.to_owned()
    } else {
        token
    }
}

/// Splits leading openers and trailing closers off a word.
fn unwrap_punct(word: &str) -> (&str, &str, &str) {
    let bytes = word.as_bytes();
    let mut start = 0;
    while start < bytes.len() && (OPENERS.contains(&bytes[start]) || bytes[start] == b'/') {
        // A leading `/` belongs to a path, not to its wrapping.
        if bytes[start] == b'/' && !is_ipv4(&word[start + 1..]) {
            break;
        }
        start += 1;
    }
    let mut end = bytes.len();
    while end > start && CLOSERS.contains(&bytes[end - 1]) {
        end -= 1;
    }
    (&word[..start], &word[start..end], &word[end..])
}

fn is_identifier(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-$".contains(&b))
}

/// `-12`, `3.5`, `1e9`, `0x1F`, `+7`, `12,345`, `99%`.
pub(crate) fn is_number(s: &str) -> bool {
    let s = s.strip_suffix('%').unwrap_or(s);
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let bytes = s.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let mut seen_exp = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {}
            b'.' | b',' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
            b'e' | b'E' if !seen_exp && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                seen_exp = true;
            }
            _ => return false,
        }
    }
    true
}

/// `0x`-prefixed hex, or 8+ hex characters that include a digit and a letter
/// or are long enough to be an id rather than a count.
fn is_hex(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    s.len() >= 8
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b.is_ascii_digit())
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Dotted quad with an optional `:port`, optionally after a `/`.
pub(crate) fn is_ipv4(s: &str) -> bool {
    let s = s.strip_prefix('/').unwrap_or(s);
    let (addr, port) = match s.split_once(':') {
        Some((addr, port)) => (addr, Some(port)),
        None => (s, None),
    };
    let octets_ok = addr.split('.').count() == 4
        && addr
            .split('.')
            .all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()));
    octets_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Hex groups and colons, with `::` or eight groups; an IPv4 tail is allowed.
fn is_ipv6(s: &str) -> bool {
    let s = s.trim_start_matches('[');
    let s = s.split(']').next().unwrap_or(s);
    let colons = s.bytes().filter(|&b| b == b':').count();
    if !(2..=8).contains(&colons)
        || !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return false;
    }
    let groups_ok = s
        .split(':')
        .all(|g| g.len() <= 4 || (g.contains('.') && is_ipv4(g)));
    groups_ok && (s.contains("::") || colons >= 7)
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && domain.contains('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A date, a time or both: digits and `-/:.,TZ+` with a date or time shape.
pub(crate) fn is_datetime(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() < 5
        || !bytes.first().is_some_and(u8::is_ascii_digit)
        || !bytes
            .iter()
            .all(|&b| b.is_ascii_digit() || b"-/:.,TZ+".contains(&b))
    {
        return false;
    }
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    // A time: `d:dd`; a date: `d-d-d` or `d/d/d`.
    let time = (1..bytes.len()).any(|i| bytes[i] == b':' && digit_at(i - 1) && digit_at(i + 1));
    let date = [b'-', b'/']
        .iter()
        .any(|&sep| bytes.iter().filter(|&&b| b == sep).count() >= 2);
    time || date
}

/// Absolute, home- or dot-relative, or Windows paths with two separators.
fn is_path(s: &str) -> bool {
    let bytes = s.as_bytes();
    let drive = bytes.len() > 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes[2] == b'\\' || bytes[2] == b'/');
    let rooted = s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with("~/")
        || drive;
    let separators = bytes.iter().filter(|&&b| b == b'/' || b == b'\\').count();
    rooted && separators >= 2 && !s.contains("//") && s.bytes().any(|b| b.is_ascii_alphanumeric())
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
