//! Log-aware normalisation: lowercase words, variable parts masked.
//!
//! Incident titles, ticket bodies and log lines carry values that differ on
//! every occurrence (request ids, addresses, timestamps). Left in, they make
//! two reports of the same failure look unrelated, and their rarity would even
//! give them the highest IDF weight. They are replaced by placeholders such as
//! `<ip>` so the *shape* of the value still counts as a feature.
//!
//! A hand-written scanner instead of a regex set: one pass per chunk keeps the
//! hashing embedder well above 50k short log lines per second per core.

/// Normalises `text` into space-separated tokens appended to `out`.
///
/// Words are lowercased and split on punctuation; values are masked. At most
/// `max_tokens` tokens are produced, so a pasted stack trace costs bounded time.
pub(crate) fn normalize_into(text: &str, max_tokens: usize, out: &mut String) {
    let mut count = 0usize;
    for word in text.split_whitespace() {
        if count >= max_tokens {
            break;
        }
        if trim_punct(word).contains("://") {
            push(out, "<url>", &mut count);
            continue;
        }
        // `key=value`, `a,b` and `x|y` are separate values.
        for chunk in word.split(['=', ',', ';', '|']) {
            let chunk = trim_punct(chunk);
            if chunk.is_empty() || count >= max_tokens {
                continue;
            }
            match classify(chunk) {
                Some(mask) => push(out, mask, &mut count),
                None => split_words(chunk, out, &mut count, max_tokens),
            }
        }
    }
}

/// Returns the normalised form of `text` (convenience for tests and labels).
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, usize::MAX, &mut out);
    out
}

fn push(out: &mut String, token: &str, count: &mut usize) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
    *count += 1;
}

fn trim_punct(chunk: &str) -> &str {
    chunk
        .trim_start_matches(['(', '[', '{', '<', '"', '\'', '`'])
        .trim_end_matches([')', ']', '}', '>', '"', '\'', '`', '.', ':', '!', '?'])
}

/// Classifies a whole whitespace-delimited chunk as a masked value.
fn classify(chunk: &str) -> Option<&'static str> {
    let b = chunk.as_bytes();
    if is_uuid(b) {
        return Some("<uuid>");
    }
    // Before timestamps: `10.0.0.12:8080` contains a clock-like `2:80`.
    if is_ipv4(b) || is_ipv6(b) {
        return Some("<ip>");
    }
    if is_timestamp(b) {
        return Some("<ts>");
    }
    if is_email(b) {
        return Some("<email>");
    }
    if is_host_port(b) {
        return Some("<host>");
    }
    if is_path(b) {
        return Some("<path>");
    }
    if is_hex_id(b) {
        return Some("<hex>");
    }
    if is_number(b) {
        return Some("<num>");
    }
    None
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => is_hex(c),
        })
}

/// Dates (`2015-07-29`, `29/Jul/2015:10:00:01`, `11/09/08`), clock times
/// (`17:41:44,747`) and ISO 8601 combinations of both.
fn is_timestamp(b: &[u8]) -> bool {
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits < 3 {
        return false;
    }
    let allowed = b.iter().all(|&c| {
        c.is_ascii_digit()
            || matches!(c, b'-' | b':' | b'/' | b'.' | b'T' | b'Z' | b'+')
            || c.is_ascii_alphabetic()
    });
    if !allowed {
        return false;
    }
    let colons = b.iter().filter(|&&c| c == b':').count();
    let dashes = b.iter().filter(|&&c| c == b'-').count();
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    // A clock time: 1-2 digits, a colon, 2 digits; letters only as T/Z or a month name.
    let clock = colons >= 1
        && b.windows(4).any(|w| {
            w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
        });
    let iso_date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-';
    let slash_date = slashes == 2 && colons <= 3 && letters <= 3;
    (clock && letters <= 4 && dashes <= 2) || iso_date || slash_date
}

fn is_ipv4(b: &[u8]) -> bool {
    // Optional `:port` or `/prefix` suffix.
    let end = b
        .iter()
        .position(|&c| c == b':' || c == b'/')
        .unwrap_or(b.len());
    let (addr, rest) = b.split_at(end);
    if !rest.is_empty() && !rest[1..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut parts = 0;
    for part in addr.split(|&c| c == b'.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts == 4
}

fn is_ipv6(b: &[u8]) -> bool {
    // A zone suffix (`fe80::1%eth0`) names an interface, not part of the address.
    let b = b.split(|&c| c == b'%').next().unwrap_or(b);
    let colons = b.iter().filter(|&&c| c == b':').count();
    if colons < 2 || b.len() < 3 {
        return false;
    }
    let hexish = b.iter().all(|&c| is_hex(c) || c == b':' || c == b'.');
    // `a:b:c` in prose or a clock time must not count: ask for `::` or a long address.
    hexish && (b.windows(2).any(|w| w == b"::") || colons >= 5)
}

/// `name.domain:port`: an endpoint, whatever the name. Dotted names without a
/// port stay words, since Java classes and packages look the same.
fn is_host_port(b: &[u8]) -> bool {
    let Some(colon) = b.iter().rposition(|&c| c == b':') else {
        return false;
    };
    let (host, port) = (&b[..colon], &b[colon + 1..]);
    !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && host.contains(&b'.')
        && host
            .split(|&c| c == b'.')
            .all(|l| !l.is_empty() && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-'))
}

fn is_email(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    at > 0 && b[at + 1..].contains(&b'.')
}

fn is_path(b: &[u8]) -> bool {
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    let backslashes = b.iter().filter(|&&c| c == b'\\').count();
    (b.len() > 1 && b[0] == b'/')
        || b.starts_with(b"~/")
        || b.starts_with(b"./")
        || b.starts_with(b"../")
        || (b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\')
        || slashes >= 2
        || backslashes >= 2
}

/// Signed integers and decimals, optionally with a short unit (`12ms`, `5GB`, `99%`).
fn is_number(b: &[u8]) -> bool {
    let body = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let digits_end = body
        .iter()
        .position(|&c| !(c.is_ascii_digit() || matches!(c, b'.' | b':' | b'_')))
        .unwrap_or(body.len());
    if digits_end == 0 || !body[0].is_ascii_digit() {
        return false;
    }
    let unit = &body[digits_end..];
    unit.is_empty() || unit == b"%" || (unit.len() <= 3 && unit.iter().all(u8::is_ascii_alphabetic))
}

/// `0x7f3a`, and long hex strings mixing digits and letters (hashes, object ids).
fn is_hex_id(b: &[u8]) -> bool {
    if let Some(rest) = b.strip_prefix(b"0x") {
        return !rest.is_empty() && rest.iter().all(|&c| is_hex(c));
    }
    b.len() >= 8
        && b.iter().all(|&c| is_hex(c))
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// Splits a chunk that is not a value as a whole into lowercase words,
/// masking numeric or hex sub-parts (`blk_-6952` -> `blk <num>`).
fn split_words(chunk: &str, out: &mut String, count: &mut usize, max_tokens: usize) {
    for part in chunk.split(|c: char| !c.is_alphanumeric()) {
        if part.is_empty() || *count >= max_tokens {
            continue;
        }
        let b = part.as_bytes();
        if b.iter().all(u8::is_ascii_digit) {
            push(out, "<num>", count);
            continue;
        }
        if is_hex_id(b) {
            push(out, "<hex>", count);
            continue;
        }
        // A word with a numeric suffix (`node12`, `worker3`) is a name plus a
        // number; short stems (`ipv6`, `md5`, `ext4`) and digits inside a word
        // (`log4j`, `s3a`) are part of a name.
        let alpha_len = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if alpha_len >= 4 && alpha_len < b.len() && b[alpha_len..].iter().all(u8::is_ascii_digit) {
            push_lower(out, &part[..alpha_len], count);
            push(out, "<num>", count);
            continue;
        }
        push_lower(out, part, count);
    }
}

fn push_lower(out: &mut String, word: &str, count: &mut usize) {
    if !out.is_empty() {
        out.push(' ');
    }
    if word.is_ascii() {
        out.extend(word.bytes().map(|c| char::from(c.to_ascii_lowercase())));
    } else {
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    *count += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASKS: [&str; 9] = [
        "<url>", "<uuid>", "<ts>", "<ip>", "<path>", "<hex>", "<num>", "<email>", "<host>",
    ];

    #[test]
    fn masks_ipv4_addresses_with_and_without_ports() {
        assert_eq!(
            normalize("connect to 10.0.0.12:8080 from 192.168.1.1"),
            "connect to <ip> from <ip>"
        );
    }

    #[test]
    fn masks_ipv6_but_not_prose_with_colons() {
        assert_eq!(normalize("peer fe80::1%eth0 down"), "peer <ip> down");
        assert_eq!(normalize("note: a:b"), "note a b");
    }

    #[test]
    fn masks_uuids_hex_ids_and_block_ids() {
        assert_eq!(
            normalize(
                "req 123e4567-e89b-12d3-a456-426614174000 at 0x7f3a blk_-6952295868487656571"
            ),
            "req <uuid> at <hex> blk <num>"
        );
        assert_eq!(
            normalize("commit 9fceb02d0ae598e95dc970b74767f19372d61af8"),
            "commit <hex>"
        );
    }

    #[test]
    fn masks_timestamps_in_common_log_formats() {
        assert_eq!(
            normalize("2015-07-29 17:41:44,747 - INFO"),
            "<ts> <ts> <num> info"
        );
        assert_eq!(
            normalize("[29/Jul/2015:10:00:01 +0200] GET"),
            "<ts> <num> get"
        );
        assert_eq!(normalize("at 2024-01-02T03:04:05Z ok"), "at <ts> ok");
    }

    #[test]
    fn masks_host_port_endpoints_but_not_class_names() {
        assert_eq!(
            normalize("proxy.cse.cuhk.edu.hk:5070 open via org.apache.Foo"),
            "<host> open via org apache foo"
        );
    }

    #[test]
    fn masks_paths_urls_and_emails() {
        assert_eq!(
            normalize("open /var/log/syslog failed, see https://x.io/a?b=1 or ops@example.com"),
            "open <path> failed see <url> or <email>"
        );
        assert_eq!(normalize("and/or"), "and or");
    }

    #[test]
    fn masks_numbers_with_units_but_keeps_names_with_digits() {
        assert_eq!(
            normalize("took 12ms (99%) on node12 using log4j over ipv6"),
            "took <num> <num> on node <num> using log4j over ipv6"
        );
    }

    #[test]
    fn lowercases_and_splits_java_class_names() {
        assert_eq!(
            normalize("org.apache.hadoop.hdfs.DFSClient: Error"),
            "org apache hadoop hdfs dfsclient error"
        );
    }

    #[test]
    fn stops_after_the_token_budget() {
        let mut out = String::new();
        normalize_into("a b c d e f", 3, &mut out);
        assert_eq!(out, "a b c");
    }

    #[test]
    fn every_mask_is_listed() {
        let text = "https://a 123e4567-e89b-12d3-a456-426614174000 10:00:01 1.2.3.4 /a/b 0xff 7 a@b.c a.b:1";
        for token in normalize(text).split(' ') {
            assert!(MASKS.contains(&token), "{token} is not a known mask");
        }
    }
}
