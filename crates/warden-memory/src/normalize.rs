//! Log-aware normalisation: lowercase words, variable parts masked.
//!
//! Incident titles, ticket bodies and log lines carry values that differ on
//! every occurrence (request ids, addresses, timestamps). Left in, they make
//! two reports of the same failure look unrelated, and their rarity would even
//! give them the highest IDF weight. They are replaced by placeholders such as
//! `<ip>` so the *shape* of the value still counts as a feature.
//!
//! Which tokens are values is decided by `warden_logmine::classify`, the
//! classifier template mining uses too; this module only decides how text is
//! cut into tokens for embedding and how they are written.

use warden_logmine::{Run, TokenClass, classify, classify_run, runs, strip_wrapping};

/// Characters that separate values inside one word: `key=value`, `a,b`, `x|y`.
const SEPARATORS: [char; 4] = ['=', ',', ';', '|'];

/// Normalises `text` into space-separated tokens appended to `out`.
///
/// Words are lowercased and split on punctuation; values are masked. At most
/// `max_tokens` tokens are produced, so a pasted stack trace costs bounded time.
pub(crate) fn normalize_into(text: &str, max_tokens: usize, out: &mut String) {
    let mut count = 0usize;
    for word in text.split_whitespace() {
        let mut rest = strip_wrapping(word).1;
        while !rest.is_empty() && count < max_tokens {
            let (chunk, next) = match rest.split_once(SEPARATORS) {
                Some((chunk, next)) => (chunk, next),
                None => (rest, ""),
            };
            // A URL keeps its query string (`?a=1,2`) to the end of the word.
            if chunk.contains("://") {
                let url = strip_wrapping(rest).1;
                if classify(url) == TokenClass::Url {
                    push(out, "<url>", &mut count);
                    break;
                }
            }
            let chunk = strip_wrapping(chunk).1;
            match classify(chunk).placeholder() {
                Some(mask) => push(out, mask, &mut count),
                None => split_words(chunk, out, &mut count, max_tokens),
            }
            rest = next;
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

/// Splits a chunk that is not a value as a whole into lowercase words,
/// masking numeric or hex runs (`blk_-6952` -> `blk <num>`).
fn split_words(chunk: &str, out: &mut String, count: &mut usize, max_tokens: usize) {
    for run in runs(chunk) {
        let Run::Alnum(part) = run else {
            continue;
        };
        if *count >= max_tokens {
            break;
        }
        if let Some(mask) = classify_run(part).placeholder() {
            push(out, mask, count);
            continue;
        }
        // A word with a numeric suffix (`node12`, `worker3`) is a name plus a
        // number; short stems (`ipv6`, `md5`, `ext4`) and digits inside a word
        // (`log4j`, `s3a`) are part of a name.
        let b = part.as_bytes();
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

    const MASKS: [&str; 10] = [
        "<url>", "<uuid>", "<ts>", "<ip>", "<path>", "<hex>", "<num>", "<dur>", "<email>", "<host>",
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
    fn masks_quantities_and_durations_but_keeps_names_with_digits() {
        assert_eq!(
            normalize("took 12ms (99%) on node12 using log4j over ipv6"),
            "took <dur> <num> on node <num> using log4j over ipv6"
        );
    }

    #[test]
    fn masks_socket_addresses_java_style_and_ipv6_ending_in_a_compressed_run() {
        assert_eq!(
            normalize("from /10.251.73.220:50010 and 240b:c1d1:123:664f:c5d2:2::"),
            "from <ip> and <ip>"
        );
    }

    #[test]
    fn a_url_after_a_key_keeps_the_key_and_its_query_string() {
        assert_eq!(
            normalize("[here|https://x.io/a?b=1,c=2] url=http://h/p?q=1;r"),
            "here <url> url <url>"
        );
    }

    #[test]
    fn relative_paths_are_paths_but_closing_tags_and_comments_are_not() {
        assert_eq!(
            normalize("build/lib.linux-x86_64/isort </property> // note"),
            "<path> property note"
        );
        assert_eq!(normalize("(Client.java:1347)"), "client java <num>");
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
        let text = "https://a 123e4567-e89b-12d3-a456-426614174000 10:00:01 1.2.3.4 /a/b 0xff 7 5ms a@b.io a.b:1";
        for token in normalize(text).split(' ') {
            assert!(MASKS.contains(&token), "{token} is not a known mask");
        }
    }
}
