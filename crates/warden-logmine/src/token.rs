//! The one token classifier for log text: which kind of value a token is.
//!
//! Template mining masks values as `<*>` and the incident memory replaces
//! them by typed placeholders before hashing, so both ask the same
//! question of each token. A hand-written scanner rather than a regex set:
//! one pass gathers the token's shape (counts of digits and
//! separators), most words leave there, and the few candidates are checked
//! by small parsers that never backtrack nor allocate.

mod values;

pub(crate) use values::is_timestamp;
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
const OPENERS: &[u8] = b"([{<'\"`";
/// Characters that may close a value or a sentence without being part of it.
const CLOSERS: &[u8] = b")]}>'\"`,.;:!?";

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
    let start = b.iter().take_while(|c| OPENERS.contains(c)).count();
    let mut end = b.len()
        - b[start..]
            .iter()
            .rev()
            .take_while(|c| CLOSERS.contains(c))
            .count();
    // A trailing `::` ends an IPv6 address (`2001:db8::`), not a sentence.
    if end > start && b[end - 1].is_ascii_hexdigit() && token[end..].starts_with("::") {
        end += 2;
    }
    (&token[..start], &token[start..end], &token[end..])
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
        let first = self.rest.chars().next()?;
        let alnum = first.is_alphanumeric();
        let end = self
            .rest
            .char_indices()
            .find(|&(_, c)| c.is_alphanumeric() != alnum)
            .map_or(self.rest.len(), |(i, _)| i);
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
