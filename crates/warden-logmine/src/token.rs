//! The one token classifier for log text: which kind of value a token is.
//!
//! Template mining masks values as `<*>` and the incident memory replaces
//! them by typed placeholders before hashing, so both ask the same
//! question of each token. A hand-written scanner rather than a regex set:
//! one pass gathers the token's shape (counts of digits and
//! separators), most words leave there, and the few candidates are checked
//! by small parsers that never backtrack nor allocate.

mod values;

pub(crate) use values::{MONTHS, is_timestamp};
use values::{
    Shape, is_compound_duration, is_email, is_hex, is_host_port, is_ipv4, is_ipv6, is_path,
    is_time_unit, is_url, is_uuid, number_unit,
};

/// What a token is, as far as masking goes. See [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenClass {
    /// Not a value: a word, a name, an identifier, punctuation.
    Word,
    /// `42`, `-3`, `0.25`, `1e9`, `12,345`, `1_000`, `99%`, or a quantity
    /// with a short unit (`5GB`, `3rd`).
    Number,
    /// A time span: a number with a time unit (`250ms`, `30s`, `5min`) or a
    /// compound like Go's `1h2m3.5s`.
    Duration,
    /// `0x1f`, a MAC address, or 8+ hex characters mixing digits and letters
    /// (hashes, object ids).
    Hex,
    /// `8-4-4-4-12` hex groups.
    Uuid,
    /// IPv4 with an optional `:port` or `/prefix`, also after a `/` as Java
    /// prints socket addresses (`/10.0.0.1:50010`); IPv6 with an optional
    /// `%zone`, optionally as `[addr]:port`.
    Ip,
    /// A dotted host name with a port (`proxy.example.org:5070`). A dotted
    /// name without a port stays a word: Java classes look the same.
    HostPort,
    /// A path with at least two separators: rooted at `/`, `./`, `../`,
    /// `~/` or a drive letter (`/var/log/x`, `C:\a\b`), or relative
    /// (`conf/hadoop/core-site.xml`). One separator (`/default-rack`,
    /// `and/or`) is a word.
    Path,
    /// `scheme://...`.
    Url,
    /// `local@domain.tld`.
    Email,
    /// A date, a clock time or both (`2024-01-02`, `17/06/09`,
    /// `12:30:01,5`, `2024-01-02T12:30:01Z`, `29/Jul/2015:10:00:01`).
    Timestamp,
}

impl TokenClass {
    /// The placeholder that stands for a value of this class (`<num>`,
    /// `<ip>`, ...), or `None` for [`TokenClass::Word`].
    ///
    /// ```
    /// use warden_logmine::{TokenClass, classify};
    ///
    /// assert_eq!(classify("10.0.0.1:80").placeholder(), Some("<ip>"));
    /// assert_eq!(TokenClass::Word.placeholder(), None);
    /// ```
    #[must_use]
    pub const fn placeholder(self) -> Option<&'static str> {
        Some(match self {
            Self::Word => return None,
            Self::Number => "<num>",
            Self::Duration => "<dur>",
            Self::Hex => "<hex>",
            Self::Uuid => "<uuid>",
            Self::Ip => "<ip>",
            Self::HostPort => "<host>",
            Self::Path => "<path>",
            Self::Url => "<url>",
            Self::Email => "<email>",
            Self::Timestamp => "<ts>",
        })
    }
}

/// Classifies a whole whitespace-free token.
///
/// The token is taken as it is: wrapping punctuation such as the brackets
/// of `[10.0.0.1]` or a trailing comma makes it a [`TokenClass::Word`];
/// strip them first with [`strip_wrapping`]. When a token fits several
/// classes the more specific wins: URL, UUID, IP, timestamp, email,
/// host:port, path, hex, duration, number.
///
/// ```
/// use warden_logmine::{TokenClass, classify};
///
/// assert_eq!(classify("38101a0b-2096-447d-96ea-a692162415ae"), TokenClass::Uuid);
/// assert_eq!(classify("/10.251.73.220:50010"), TokenClass::Ip);
/// assert_eq!(classify("2015-07-29T17:41:44Z"), TokenClass::Timestamp);
/// assert_eq!(classify("/var/log/syslog"), TokenClass::Path);
/// assert_eq!(classify("250ms"), TokenClass::Duration);
/// assert_eq!(classify("org.apache.Foo"), TokenClass::Word);
/// ```
#[must_use]
pub fn classify(token: &str) -> TokenClass {
    let b = token.as_bytes();
    let s = Shape::of(b);
    // Every value has a digit or one of these marks: most words stop here.
    if s.digits == 0 && s.colons == 0 && s.slashes == 0 && s.backslashes == 0 && s.ats == 0 {
        return TokenClass::Word;
    }
    if s.colons > 0 && s.slashes >= 2 && is_url(b) {
        return TokenClass::Url;
    }
    if s.dashes == 4 && is_uuid(b) {
        return TokenClass::Uuid;
    }
    if s.digits > 0 && ((s.dots >= 3 && is_ipv4(b)) || (s.colons >= 2 && is_ipv6(b))) {
        return TokenClass::Ip;
    }
    if s.digits >= 3 && is_timestamp(token) {
        return TokenClass::Timestamp;
    }
    if s.ats == 1 && is_email(b) {
        return TokenClass::Email;
    }
    if s.colons == 1 && s.dots > 0 && s.digits > 0 && is_host_port(b) {
        return TokenClass::HostPort;
    }
    if s.slashes + s.backslashes >= 2 && is_path(b) {
        return TokenClass::Path;
    }
    if s.digits > 0 && is_hex(b) {
        return TokenClass::Hex;
    }
    match number_unit(b) {
        Some(unit) if is_time_unit(unit) => TokenClass::Duration,
        Some(_) => TokenClass::Number,
        None if is_compound_duration(b) => TokenClass::Duration,
        None => TokenClass::Word,
    }
}

/// Classifies one alphanumeric run inside a token (see [`runs`]): a hex id,
/// a number (any run that starts with a digit: `42`, `12ms`, `2nd`), or a
/// word (`blk`, `ssh2`, `log4j`).
///
/// ```
/// use warden_logmine::{TokenClass, classify_run};
///
/// assert_eq!(classify_run("6952295868487656571"), TokenClass::Number);
/// assert_eq!(classify_run("deadbeef42"), TokenClass::Hex);
/// assert_eq!(classify_run("ssh2"), TokenClass::Word);
/// ```
#[must_use]
pub fn classify_run(run: &str) -> TokenClass {
    let b = run.as_bytes();
    // Digits only, the most common run with a digit: a number.
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        return TokenClass::Number;
    }
    if !b.iter().any(u8::is_ascii_digit) {
        TokenClass::Word
    } else if is_hex(b) {
        TokenClass::Hex
    } else if b[0].is_ascii_digit() {
        TokenClass::Number
    } else {
        TokenClass::Word
    }
}

/// Characters that may open a value without being part of it.
const OPENERS: ByteSet = ByteSet::of(b"([{<'\"`");
/// Characters that may close a value or a sentence without being part of it.
const CLOSERS: ByteSet = ByteSet::of(b")]}>'\"`,.;:!?");

/// A set of bytes as a 256-entry table: one load per membership test, for
/// loops that run on every byte of every token.
pub(crate) struct ByteSet([bool; 256]);

impl ByteSet {
    pub(crate) const fn of(bytes: &[u8]) -> Self {
        let mut table = [false; 256];
        let mut i = 0;
        while i < bytes.len() {
            table[bytes[i] as usize] = true;
            i += 1;
        }
        Self(table)
    }

    pub(crate) const fn contains(&self, byte: u8) -> bool {
        self.0[byte as usize]
    }
}

/// Splits a token into its leading wrapping (`(`, `[`, quotes), its core
/// and its trailing wrapping (closing brackets, quotes, `,.;:!?`).
///
/// ```
/// use warden_logmine::strip_wrapping;
///
/// assert_eq!(strip_wrapping("[10.0.0.1]:"), ("[", "10.0.0.1", "]:"));
/// assert_eq!(strip_wrapping("jk2_init()"), ("", "jk2_init(", ")"));
/// ```
#[must_use]
pub fn strip_wrapping(token: &str) -> (&str, &str, &str) {
    let b = token.as_bytes();
    let start = b.iter().take_while(|&&c| OPENERS.contains(c)).count();
    let mut end = b.len()
        - b[start..]
            .iter()
            .rev()
            .take_while(|&&c| CLOSERS.contains(c))
            .count();
    // A trailing `::` ends an IPv6 address (`2001:db8::`), not a sentence.
    if end > start && b[end - 1].is_ascii_hexdigit() && token[end..].starts_with("::") {
        end += 2;
    }
    (&token[..start], &token[start..end], &token[end..])
}

/// Whether a byte below 128 is whitespace as [`char::is_whitespace`] has
/// it: space, and `\t` to `\r` (with vertical tab and form feed).
const fn is_ascii_space(b: u8) -> bool {
    b == b' ' || matches!(b, b'\t'..=b'\r')
}

/// [`BYTE_CLASS`] of ASCII punctuation, symbols and controls.
const OTHER: u8 = 1;
/// [`BYTE_CLASS`] of ASCII whitespace.
const SPACE: u8 = 2;
/// [`BYTE_CLASS`] of an ASCII letter or digit.
const ALNUM: u8 = 4;
/// [`BYTE_CLASS`] of a byte of a non-ASCII character.
const NON_ASCII: u8 = 8;

/// What each byte is, one bit per class, for the scans over words and
/// runs: one load per byte.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = if b >= 128 {
            NON_ASCII
        } else if is_ascii_space(b as u8) {
            SPACE
        } else if (b as u8).is_ascii_alphanumeric() {
            ALNUM
        } else {
            OTHER
        };
        b += 1;
    }
    table
};

/// Length of the word `s` starts with: up to its first whitespace.
///
/// Words are most of a log's bytes, so they are skipped eight bytes at a
/// time up to the first byte that may end one: below `!` (ASCII
/// whitespace is among those) or part of a non-ASCII character. That
/// byte is then told apart exactly.
#[inline]
pub(crate) fn word_len(s: &str) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while let Some(chunk) = bytes
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
        {
            let x = u64::from_le_bytes(chunk);
            // A byte's high bit is set where it is below 0x21 (exact for
            // the lowest such byte; the borrow may flag bytes above it) or
            // at least 0x80.
            let stop = ((x.wrapping_sub(ONES * 0x21) & !x) | x) & (ONES * 0x80);
            if stop != 0 {
                i += (stop.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else {
            return bytes.len();
        };
        match BYTE_CLASS[usize::from(b)] {
            SPACE => return i,
            NON_ASCII => match s[i..].chars().next() {
                Some(c) if c.is_whitespace() => return i,
                Some(c) => i += c.len_utf8(),
                None => return bytes.len(),
            },
            _ => i += 1,
        }
    }
}

/// Length of the whitespace `s` starts with.
#[inline]
pub(crate) fn space_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        let Some(&b) = bytes.get(i) else {
            return bytes.len();
        };
        match BYTE_CLASS[usize::from(b)] {
            SPACE => i += 1,
            NON_ASCII => match s[i..].chars().next() {
                Some(c) if c.is_whitespace() => i += c.len_utf8(),
                _ => return i,
            },
            _ => return i,
        }
    }
}

/// The words of a text, split as [`str::split_whitespace`] splits them,
/// faster on ASCII.
#[derive(Debug, Clone)]
pub(crate) struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { rest: text }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = &self.rest[space_len(self.rest)..];
        let (word, tail) = rest.split_at(word_len(rest));
        self.rest = tail;
        (!word.is_empty()).then_some(word)
    }
}

/// A piece of a token: a run of letters and digits, or of anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run<'a> {
    /// Letters and digits (any script): `blk`, `42`, `用户`.
    Alnum(&'a str),
    /// Punctuation and symbols between them: `_-`, `.`, `=`.
    Sep(&'a str),
}

/// Splits a token into alternating [`Run`]s, without allocating.
///
/// ```
/// use warden_logmine::{Run, runs};
///
/// let pieces: Vec<Run> = runs("blk_-42").collect();
/// assert_eq!(pieces, [Run::Alnum("blk"), Run::Sep("_-"), Run::Alnum("42")]);
/// ```
#[must_use]
pub fn runs(token: &str) -> Runs<'_> {
    Runs { rest: token }
}

/// Iterator returned by [`runs`].
#[derive(Debug, Clone)]
pub struct Runs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Runs<'a> {
    type Item = Run<'a>;

    fn next(&mut self) -> Option<Run<'a>> {
        let bytes = self.rest.as_bytes();
        let &first = bytes.first()?;
        let alnum = if first.is_ascii() {
            first.is_ascii_alphanumeric()
        } else {
            self.rest.chars().next()?.is_alphanumeric()
        };
        // A tight scan while the bytes are ASCII, up to a byte of the other
        // kind (whitespace is a separator like any other symbol) or of a
        // non-ASCII character, which alone is decoded.
        let stop = if alnum {
            OTHER | SPACE | NON_ASCII
        } else {
            ALNUM | NON_ASCII
        };
        let mut end = 0;
        loop {
            end += bytes[end..]
                .iter()
                .position(|&b| BYTE_CLASS[usize::from(b)] & stop != 0)
                .unwrap_or(bytes.len() - end);
            if bytes.get(end).is_none_or(u8::is_ascii) {
                break;
            }
            match self.rest[end..].chars().next() {
                Some(c) if c.is_alphanumeric() == alnum => end += c.len_utf8(),
                _ => break,
            }
        }
        let (piece, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(if alnum {
            Run::Alnum(piece)
        } else {
            Run::Sep(piece)
        })
    }
}

#[cfg(test)]
mod tests;
