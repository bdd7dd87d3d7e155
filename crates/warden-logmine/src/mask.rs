//! Tokenising a message and replacing its variables with `<*>`.
//!
//! What a token is comes from [`crate::token`]; this module adds what
//! template mining needs on top: values inside tokens (`blk_<*>`), units in
//! the next word (`5.6 KB`), `key=value` pairs and parenthesised notes.

use crate::config::Masking;
use crate::token::{
    ByteSet, MONTHS, Run, TokenClass, Words, classify, classify_run, runs, strip_wrapping,
};

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

/// Whether `word` is one of [`UNITS`], in any case.
fn is_unit(word: &str) -> bool {
    word.len() <= 4 && UNITS.iter().any(|u| u.eq_ignore_ascii_case(word))
}

/// One output of [`tokenize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A masked token.
    Token(&'a str),
    /// A parenthesised value (`(5.05 KB)`) to fold into the token before
    /// it as [`ANNOTATION`], when that token has no `<*>`.
    Annotation,
}

/// Splits `content` on whitespace, masks each token and hands the pieces to
/// `emit` in order. `buf` is scratch space, reused from line to line, so a
/// line costs no allocation once it has grown.
pub(crate) fn tokenize(
    content: &str,
    masking: &Masking,
    buf: &mut String,
    mut emit: impl FnMut(Piece<'_>),
) {
    let mut words = Words::new(content);
    while let Some(first) = words.next() {
        // `Sat Jun 18 02:08:12 2005`: one date spread over several words.
        if masking.timestamps
            && let Some(extra) = date_phrase(first, &words)
        {
            for _ in 0..extra {
                words.next();
            }
            emit(Piece::Token(WILDCARD));
            continue;
        }
        // A plain word masks to itself (and is not `<*>`, which the checks
        // below look for): hand it on without copying it.
        if is_plain(first) && first != WILDCARD {
            emit(Piece::Token(first));
            continue;
        }
        buf.clear();
        mask_marked(first, masking, buf);
        let mut last = first;
        // `5.6 KB`, `(1.20 KB)`, `<1 sec`: one value spread over two words.
        if masking.numbers && buf == WILDCARD {
            let mut ahead = words.clone();
            if let Some(next) = ahead.next()
                && is_unit(strip_wrapping(next).1)
            {
                words = ahead;
                last = next;
            }
        }
        let annotation = buf == WILDCARD
            && first.starts_with('(')
            && last.trim_end_matches([',', '.', ';']).ends_with(')');
        if annotation {
            emit(Piece::Annotation);
        } else {
            emit(Piece::Token(buf));
        }
    }
}

/// Day names that start a date written as words, lower case.
const DAYS: &[[u8; 3]] = &[
    *b"mon", *b"tue", *b"wed", *b"thu", *b"fri", *b"sat", *b"sun",
];

/// The lower-cased first three letters of a word of letters (and an
/// optional trailing comma), the key [`DAYS`] and [`MONTHS`] are matched on.
fn name_key(word: &str) -> Option<[u8; 3]> {
    // Every name starts with one of these: most words stop here.
    let first = word.as_bytes().first()?.to_ascii_lowercase();
    if !matches!(
        first,
        b'm' | b't' | b'w' | b'f' | b's' | b'j' | b'a' | b'o' | b'n' | b'd'
    ) {
        return None;
    }
    let w = word.trim_end_matches(',').as_bytes();
    let [_, b, c, ..] = *w else {
        return None;
    };
    w.iter()
        .all(u8::is_ascii_alphabetic)
        .then(|| [first, b.to_ascii_lowercase(), c.to_ascii_lowercase()])
}

/// When `first` starts a date in words — an optional day name, a month
/// name, a day of the month, a clock time and an optional year, as C's
/// `ctime` and syslog print them (`Sat Jun 18 02:08:12 2005`) — the number
/// of words after `first` that belong to it.
fn date_phrase(first: &str, rest: &Words<'_>) -> Option<usize> {
    // Most words are neither a day nor a month name: decide that before
    // cloning the iterator.
    let key = name_key(first)?;
    let weekday = DAYS.contains(&key);
    if !weekday && !MONTHS.contains(&key) {
        return None;
    }
    let mut ahead = rest.clone();
    let mut used = 0;
    if weekday {
        used += 1;
        if !name_key(ahead.next()?).is_some_and(|k| MONTHS.contains(&k)) {
            return None;
        }
    }
    let day = ahead.next()?.trim_end_matches(',');
    if !(1..=2).contains(&day.len()) || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let clock = ahead.next()?.trim_end_matches([',', ')', ']']);
    if !clock.contains(':') || !crate::token::is_timestamp(clock) {
        return None;
    }
    used += 2;
    let year = ahead
        .next()
        .map(|w| w.trim_end_matches([',', ')', ']', '.']))
        .is_some_and(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()));
    Some(used + usize::from(year))
}

/// Bytes without which no masking rule applies to a word: every value
/// class has an ASCII digit or one of these (see [`classify`]), and the
/// runs inside a word are masked only when they hold a digit.
const VALUE_MARKS: ByteSet = ByteSet::of(b"0123456789:/\\@");

/// A word without any of [`VALUE_MARKS`], which no rule masks.
fn is_plain(word: &str) -> bool {
    !word.bytes().any(|b| VALUE_MARKS.contains(b))
}

/// Appends the masked form of one whitespace-free word to `out`.
fn mask_word(word: &str, m: &Masking, out: &mut String) {
    // Most words of a log are plain words: nothing could mask them.
    if is_plain(word) {
        out.push_str(word);
    } else {
        mask_marked(word, m, out);
    }
}

/// [`mask_word`] for a word known not to be plain.
fn mask_marked(word: &str, m: &Masking, out: &mut String) {
    if mask_whole(word, m, out) {
        return;
    }
    let (pre, core, post) = strip_wrapping(word);
    if core.is_empty() {
        out.push_str(word);
        return;
    }
    let start = out.len();
    out.push_str(pre);
    // Unwrapped, `core` is `word`, which `mask_whole` has just refused.
    let wrapped = core.len() < word.len();
    if (wrapped && mask_whole(core, m, out)) || mask_parts(core, m, out) {
        out.push_str(post);
        collapse(out, start);
    } else {
        out.truncate(start);
        out.push_str(word);
    }
}

/// Appends the mask of a word that is entirely one kind of variable;
/// `false` (and nothing appended) when it is not.
fn mask_whole(word: &str, m: &Masking, out: &mut String) -> bool {
    let class = classify(word);
    if !m.masks(class) {
        return false;
    }
    if class == TokenClass::Url
        && let Some(scheme_end) = word.find("://")
    {
        out.push_str(&word[..scheme_end + 3]);
    }
    out.push_str(WILDCARD);
    true
}

/// Appends `core` with its alphanumeric runs that are numbers or hex ids
/// masked; `false` (and nothing appended) when nothing is masked.
///
/// `key=value` keeps its key. A word left with more masked runs than
/// constant ones (`attempt_1_0020_m_3`) is an id and becomes one `<*>`.
fn mask_parts(core: &str, m: &Masking, out: &mut String) -> bool {
    let start = out.len();
    // Tokens are short: a plain scan beats `memchr`'s set-up.
    if let Some(eq) = core.bytes().position(|b| b == b'=') {
        let (key, value) = (&core[..eq], &core[eq + 1..]);
        if !key.is_empty() && !value.is_empty() && is_identifier(key) {
            out.push_str(key);
            out.push('=');
            let value_start = out.len();
            mask_word(value, m, out);
            if &out[value_start..] == value {
                out.truncate(start);
                return false;
            }
            return true;
        }
    }
    if !(m.numbers || m.hex) {
        return false;
    }
    let (mut masked, mut kept) = (0usize, 0usize);
    let mut pieces = runs(core).peekable();
    while let Some(piece) = pieces.next() {
        match piece {
            Run::Sep(sep) => {
                // `blk_-42`: a `-` between a separator and a number is its sign.
                let signed = m.numbers
                    && sep.len() > 1
                    && sep.ends_with('-')
                    && matches!(pieces.peek(), Some(Run::Alnum(r)) if r.starts_with(|c: char| c.is_ascii_digit()));
                out.push_str(if signed { &sep[..sep.len() - 1] } else { sep });
            }
            Run::Alnum(run) => {
                if masks_run(run, m) {
                    out.push_str(WILDCARD);
                    masked += 1;
                } else {
                    if run
                        .bytes()
                        .any(|b| b.is_ascii_alphabetic() || !b.is_ascii())
                    {
                        kept += 1;
                    }
                    out.push_str(run);
                }
            }
        }
    }
    if masked == 0 {
        out.truncate(start);
        return false;
    }
    if masked >= 2 && masked >= kept {
        out.truncate(start);
        out.push_str(WILDCARD);
    }
    true
}

/// An alphanumeric run that is a number (`42`, `12ms`) or a hex id.
fn masks_run(run: &str, m: &Masking) -> bool {
    match classify_run(run) {
        TokenClass::Hex => m.hex || (m.numbers && run.starts_with(|c: char| c.is_ascii_digit())),
        TokenClass::Number => m.numbers,
        _ => false,
    }
}

/// Replaces a token (from `start` in `out`) that is only `<*>`s and
/// punctuation by one `<*>`.
fn collapse(out: &mut String, start: usize) {
    let token = &out[start..];
    // `<`, `*` and `>` are punctuation too: a token of punctuation only,
    // with a `<*>` in it, is `<*>`s and punctuation.
    let only_punctuation =
        token.bytes().all(|b| b.is_ascii_punctuation()) && token.contains(WILDCARD);
    if only_punctuation {
        out.truncate(start);
        out.push_str(WILDCARD);
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

    fn masked_with(line: &str, masking: &Masking) -> String {
        let mut out: Vec<String> = Vec::new();
        tokenize(line, masking, &mut String::new(), |piece| match piece {
            Piece::Token(t) => out.push(t.to_owned()),
            Piece::Annotation => match out.last_mut() {
                Some(last) if !last.contains(WILDCARD) => last.push_str(ANNOTATION),
                _ => out.push(WILDCARD.to_owned()),
            },
        });
        out.join(" ")
    }

    fn masked(line: &str) -> String {
        masked_with(line, &Masking::default())
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
    fn masks_a_date_written_in_words_as_one_parameter() {
        assert_eq!(
            masked("connection from 10.0.0.1 () at Sat Jun 18 02:08:12 2005"),
            "connection from <*> () at <*>"
        );
        assert_eq!(
            masked("Last login: Mon Jul  4 09:14:02 on ttys000"),
            "Last login: <*> on ttys000"
        );
        assert_eq!(masked("due Jun 18 at noon"), "due Jun <*> at noon");
        assert_eq!(masked("Mar 3 files"), "Mar <*> files");
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
    fn a_wildcard_in_the_input_takes_its_unit_like_a_masked_value() {
        // `<*>` has no digit, so it is a plain word, yet the checks that
        // follow masking treat it as a value: already-masked text
        // (`took <*> ms`) mines as the raw text does.
        assert_eq!(masked("took <*> ms"), masked("took 12 ms"));
        assert_eq!(masked("sent <*> bytes (<*>) ok"), "sent <*> bytes (<*>) ok");
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
        assert_eq!(masked_with(line, &none), line);
        let ips_only = Masking { ips: true, ..none };
        assert_eq!(
            masked_with(line, &ips_only),
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
