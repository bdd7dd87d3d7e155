//! One small parser per token class: none backtracks nor allocates.

/// Counts gathered in one pass, so most predicates are never run.
#[derive(Default)]
pub(super) struct Shape {
    pub(super) digits: usize,
    pub(super) dots: usize,
    pub(super) colons: usize,
    pub(super) dashes: usize,
    pub(super) slashes: usize,
    pub(super) backslashes: usize,
    pub(super) ats: usize,
}

impl Shape {
    pub(super) fn of(b: &[u8]) -> Self {
        let mut s = Self::default();
        for &c in b {
            match c {
                b'0'..=b'9' => s.digits += 1,
                b'.' => s.dots += 1,
                b':' => s.colons += 1,
                b'-' => s.dashes += 1,
                b'/' => s.slashes += 1,
                b'\\' => s.backslashes += 1,
                b'@' => s.ats += 1,
                _ => {}
            }
        }
        s
    }
}

fn digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// One to five digits and nothing else.
fn is_port(b: &[u8]) -> bool {
    (1..=5).contains(&b.len()) && b.iter().all(u8::is_ascii_digit)
}

/// Length of the run of ASCII digits at the start of `b`.
fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// `scheme://rest`, the scheme starting with a letter.
pub(super) fn is_url(b: &[u8]) -> bool {
    let scheme = b
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        .count();
    scheme > 0 && b[0].is_ascii_alphabetic() && b[scheme..].starts_with(b"://")
}

pub(super) fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A dotted quad with an optional `:port` or `/prefix`, optionally after `/`.
pub(super) fn is_ipv4(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"/").unwrap_or(b);
    let mut i = 0;
    for octet in 0..4 {
        if octet > 0 {
            if b.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
        let n = digits(&b[i..]);
        if !(1..=3).contains(&n) {
            return false;
        }
        i += n;
    }
    match b.get(i) {
        None => true,
        Some(b':' | b'/') => is_port(&b[i + 1..]),
        Some(_) => false,
    }
}

/// Hex groups and colons with `::` or all eight groups; an IPv4 tail, a
/// `%zone`, and brackets with a `:port` after them are allowed.
pub(super) fn is_ipv6(b: &[u8]) -> bool {
    let mut b = b;
    if let Some(inner) = b.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&c| c == b']') else {
            return false;
        };
        match &inner[close + 1..] {
            [] => {}
            [b':', port @ ..] if is_port(port) => {}
            _ => return false,
        }
        b = &inner[..close];
    }
    if let Some(percent) = b.iter().position(|&c| c == b'%') {
        let zone = &b[percent + 1..];
        if zone.is_empty() || !zone.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.') {
            return false;
        }
        b = &b[..percent];
    }
    let colons = b.iter().filter(|&&c| c == b':').count();
    if !(2..=8).contains(&colons) || !b.iter().any(u8::is_ascii_hexdigit) {
        return false;
    }
    let mut groups = b.split(|&c| c == b':').peekable();
    let mut v4_tail = false;
    while let Some(group) = groups.next() {
        let last = groups.peek().is_none();
        if last && group.contains(&b'.') {
            v4_tail = is_ipv4(group) && !group.starts_with(b"/");
            if !v4_tail {
                return false;
            }
        } else if group.len() > 4 || !group.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
    }
    let compressed = b.windows(2).filter(|w| w == b"::").count();
    compressed == 1 || (compressed == 0 && (colons >= 7 || (v4_tail && colons == 6)))
}

/// Month names, lower case.
pub(crate) const MONTHS: [[u8; 3]; 12] = [
    *b"jan", *b"feb", *b"mar", *b"apr", *b"may", *b"jun", *b"jul", *b"aug", *b"sep", *b"oct",
    *b"nov", *b"dec",
];

fn is_month(word: &[u8]) -> bool {
    word.len() == 3 && MONTHS.iter().any(|m| m.eq_ignore_ascii_case(word))
}

/// A date, a clock time or both. It starts with a digit, holds only digits,
/// `-/:.,+`, a `T` or `Z`, or a month name, and has a clock (`d:dd`) or a
/// date (three fields, see [`date_len`]) in it.
pub(crate) fn is_timestamp(token: &str) -> bool {
    let b = token.as_bytes();
    if b.len() < 5 || !b[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let word = &b[i..i + n];
            if !(matches!(word, b"T" | b"Z") || is_month(word)) {
                return false;
            }
            i += n;
        } else if c.is_ascii_digit() || b"-/:.,+".contains(&c) {
            i += 1;
        } else {
            return false;
        }
    }
    let clock = (1..b.len().saturating_sub(2))
        .any(|i| b[i] == b':' && digit_at(b, i - 1) && digit_at(b, i + 1) && digit_at(b, i + 2));
    clock || date_len(b).is_some()
}

/// Length of a leading date: three fields split by the same `-` or `/`, of
/// digits or a month name in the middle, with a 4-digit year first or last
/// or else fields of at most two digits (`2015-07-29`, `29/Jul/2015`,
/// `17/06/09`). It must not run on into more digits or letters (but `T`).
fn date_len(b: &[u8]) -> Option<usize> {
    let first = digits(b);
    let sep = *b.get(first)?;
    if !(1..=4).contains(&first) || !matches!(sep, b'-' | b'/') {
        return None;
    }
    let mut i = first + 1;
    let middle = if b.len() >= i + 3 && is_month(&b[i..i + 3]) {
        3
    } else {
        match digits(&b[i..]) {
            n @ 1..=2 => n,
            _ => return None,
        }
    };
    if b.get(i + middle) != Some(&sep) {
        return None;
    }
    i += middle + 1;
    let last = digits(&b[i..]);
    i += last;
    let year = first == 4 || last == 4;
    let short = first <= 2 && last <= 2;
    let ends = b
        .get(i)
        .is_none_or(|&c| !c.is_ascii_alphanumeric() || c == b'T');
    ((1..=4).contains(&last) && (year || short) && ends).then_some(i)
}

/// `local@domain.tld` with a two-letter or longer alphabetic TLD.
pub(super) fn is_email(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let tld = domain.rsplit(|&c| c == b'.').next().unwrap_or_default();
    !local.is_empty()
        && local
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
        && domain.contains(&b'.')
        && domain
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
}

/// Source file extensions: `Foo.java:123` is a line in a stack trace.
const SOURCE_EXTENSIONS: &[&[u8]] = &[
    b"java", b"scala", b"kt", b"groovy", b"py", b"rb", b"go", b"rs", b"c", b"cc", b"cpp", b"h",
    b"hpp", b"js", b"ts", b"cs", b"php", b"swift", b"erl", b"ex", b"exs",
];

/// `name.domain:port`: dotted labels of letters, digits and `-`, one of
/// them with a letter, then a port of up to five digits.
pub(super) fn is_host_port(b: &[u8]) -> bool {
    let Some(colon) = b.iter().rposition(|&c| c == b':') else {
        return false;
    };
    let (host, port) = (&b[..colon], &b[colon + 1..]);
    let tld = host.rsplit(|&c| c == b'.').next().unwrap_or_default();
    (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
        && host.iter().any(u8::is_ascii_alphabetic)
        && host
            .split(|&c| c == b'.')
            .all(|l| !l.is_empty() && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-'))
        && !SOURCE_EXTENSIONS
            .iter()
            .any(|e| e.eq_ignore_ascii_case(tld))
}

/// At least two separators, either after a root (`/`, `./`, `../`, `~/`,
/// `C:\`) or, for a relative path, two of the same kind (`conf/a/b`) and no
/// `:` or `=`, which make `key:/a/b` and `key=a/b/c` a key and a value.
pub(super) fn is_path(b: &[u8]) -> bool {
    let drive = b.len() > 3
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b[2] == b'\\' || b[2] == b'/');
    let rooted = b.starts_with(b"/")
        || b.starts_with(b"./")
        || b.starts_with(b"../")
        || b.starts_with(b"~/")
        || drive;
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    let backslashes = b.iter().filter(|&&c| c == b'\\').count();
    let separated = if rooted {
        slashes + backslashes >= 2
    } else {
        (slashes >= 2 || backslashes >= 2) && !b.iter().any(|&c| c == b':' || c == b'=')
    };
    separated && !b.windows(2).any(|w| w == b"//") && b.iter().any(u8::is_ascii_alphanumeric)
}

/// `0x`-prefixed hex, a MAC address, or 8+ hex characters with a digit and a
/// letter (all digits is a number).
pub(super) fn is_hex(b: &[u8]) -> bool {
    if let Some(hex) = b.strip_prefix(b"0x").or_else(|| b.strip_prefix(b"0X")) {
        return !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit);
    }
    if b.len() == 17 && (b[2] == b':' || b[2] == b'-') {
        let sep = b[2];
        return b.iter().enumerate().all(|(i, &c)| {
            if i % 3 == 2 {
                c == sep
            } else {
                c.is_ascii_hexdigit()
            }
        });
    }
    b.len() >= 8
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// Parses `[+-]digits[.,_digits]*[e digits]` and returns what follows when
/// that is nothing, `%`, or a unit of up to three letters (`µs` too).
pub(super) fn number_unit(b: &[u8]) -> Option<&[u8]> {
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let mut i = digits(b);
    if i == 0 {
        return None;
    }
    let mut seen_exp = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'.' | b',' | b'_' if digit_at(b, i + 1) => i += 1 + digits(&b[i + 1..]),
            b'e' | b'E' if !seen_exp && digit_at(b, i + 1) => {
                seen_exp = true;
                i += 1 + digits(&b[i + 1..]);
            }
            _ => break,
        }
    }
    let unit = &b[i..];
    let ok = unit.is_empty()
        || unit == b"%"
        || unit == "µs".as_bytes()
        || (unit.len() <= 3 && unit.iter().all(u8::is_ascii_alphabetic));
    ok.then_some(unit)
}

const TIME_UNITS: &[&[u8]] = &[
    b"ns",
    b"us",
    "µs".as_bytes(),
    b"ms",
    b"s",
    b"sec",
    b"min",
    b"h",
    b"hr",
    b"hrs",
    b"d",
];

pub(super) fn is_time_unit(unit: &[u8]) -> bool {
    TIME_UNITS.iter().any(|u| u.eq_ignore_ascii_case(unit))
}

/// Go-style compound durations: `1h2m`, `2m30.5s`, `1d2h` (two or more parts).
pub(super) fn is_compound_duration(b: &[u8]) -> bool {
    let mut i = 0;
    let mut parts = 0;
    while i < b.len() {
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
        if b.get(i) == Some(&b'.') && digit_at(b, i + 1) {
            i += 1 + digits(&b[i + 1..]);
        }
        let unit = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let unit_ok = matches!(
            &b[i..i + unit],
            b"d" | b"h" | b"m" | b"s" | b"ms" | b"us" | b"ns"
        );
        if !unit_ok {
            return false;
        }
        i += unit;
        parts += 1;
    }
    parts >= 2
}
