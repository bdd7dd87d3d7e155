//! Finding where a raw log line's header ends and its message begins.
//!
//! No per-format regex: a header is recognised by its usual parts in their
//! usual order — a timestamp first, then any of a pid, a level, a thread in
//! brackets, `|`-separated fields, a host, and a logger or program name that
//! ends with `:` or is followed by ` - `. A line that does not start with a
//! timestamp is left whole, so messages without a header are never cut.

use crate::token::{ByteSet, is_timestamp, space_len, word_len};

const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "SEVERE", "FATAL",
    "CRIT", "CRITICAL", "ALERT", "EMERG", "FINE", "FINER", "FINEST", "CONFIG",
];

/// Month and day names, their short forms, `am`/`pm` and `UTC`/`GMT`, in
/// any case.
fn is_month_or_day(word: &str) -> bool {
    let mut lower = [0u8; 9];
    let Some(lower) = lower.get_mut(..word.len()) else {
        return false;
    };
    lower.copy_from_slice(word.as_bytes());
    lower.make_ascii_lowercase();
    matches!(
        &*lower,
        b"jan"
            | b"feb"
            | b"mar"
            | b"apr"
            | b"may"
            | b"jun"
            | b"jul"
            | b"aug"
            | b"sep"
            | b"sept"
            | b"oct"
            | b"nov"
            | b"dec"
            | b"january"
            | b"february"
            | b"march"
            | b"april"
            | b"june"
            | b"july"
            | b"august"
            | b"september"
            | b"october"
            | b"november"
            | b"december"
            | b"mon"
            | b"tue"
            | b"wed"
            | b"thu"
            | b"fri"
            | b"sat"
            | b"sun"
            | b"monday"
            | b"tuesday"
            | b"wednesday"
            | b"thursday"
            | b"friday"
            | b"saturday"
            | b"sunday"
            | b"am"
            | b"pm"
            | b"utc"
            | b"gmt"
    )
}

/// Returns the message part of a raw log line, without its header.
///
/// Lines that do not start with a timestamp come back unchanged.
///
/// ```
/// use warden_logmine::strip_header;
///
/// let line = "2015-10-18 18:01:47,978 INFO [main] org.example.App: Started in 12 ms";
/// assert_eq!(strip_header(line), "Started in 12 ms");
/// assert_eq!(strip_header("Started in 12 ms"), "Started in 12 ms");
/// ```
#[must_use]
pub fn strip_header(line: &str) -> &str {
    // An alert flag or a source file name may precede the timestamp
    // (`- 1117838570 2005.06.03 ...`, `app.log.1 2017-05-16 ...`).
    let (first, first_end) = next_word(line);
    let (start, ts_end) = match timestamp_end(line) {
        Some(end) => (0, end),
        None if is_flag(first) || is_source(first) => {
            let start = skip_spaces(line, first_end);
            match timestamp_end(&line[start..]) {
                Some(end) if start > first_end => (start, end),
                _ => return line,
            }
        }
        None => return line,
    };
    let mut pos = start + ts_end;
    let mut consumed = false;
    let mut level_seen = false;
    let mut pipes = false;
    for _ in 0..12 {
        pos = skip_spaces(line, pos);
        let rest = &line[pos..];
        if let Some(after) = rest.strip_prefix('|') {
            pipes = true;
            pos = line.len() - after.len();
            continue;
        }
        if let Some(after) = rest.strip_prefix("- ") {
            pos = line.len() - after.len();
            if consumed {
                break;
            }
            continue;
        }
        if pipes {
            // `ts|component|pid|message`: fields are single words; the pid
            // is the last header field.
            let field_end = rest.find('|').unwrap_or(rest.len());
            let field = &rest[..field_end];
            if field_end == rest.len() || field.is_empty() || !is_name(field) {
                break;
            }
            pos += field_end + 1;
            consumed = true;
            if field.bytes().all(|b| b.is_ascii_digit()) {
                break;
            }
            continue;
        }
        let (word, word_end) = next_word(rest);
        if word.is_empty() {
            break;
        }
        // A level after a field or before a logger; the logger is looked
        // for only for a word that is a level in that place alone.
        let logger_follows = || logger_end(&rest[skip_spaces(rest, word_end)..]).is_some();
        if is_level(word, consumed) || (!consumed && is_level(word, true) && logger_follows()) {
            pos += word_end;
            consumed = true;
            level_seen = true;
            continue;
        }
        if word.bytes().all(|b| b.is_ascii_digit()) {
            pos += word_end;
            consumed = true;
            continue;
        }
        if rest.starts_with('[') {
            // A thread or context in brackets is header only when a logger
            // or a ` - ` follows; `[client 1.2.3.4] ...` is a message.
            if let Some(close) = bracket_end(rest) {
                let after = skip_spaces(rest, close);
                if level_seen
                    && (rest[after..].starts_with("- ") || logger_end(&rest[after..]).is_some())
                {
                    pos += close;
                    consumed = true;
                    continue;
                }
            }
            break;
        }
        if let Some(end) = logger_end(rest) {
            pos += end;
            break;
        }
        // `logger.name [context] message`, as Python loggers print.
        if level_seen && word.contains('.') && is_name(word) {
            let after = skip_spaces(rest, word_end);
            if rest[after..].starts_with('[')
                && let Some(close) = bracket_end(&rest[after..])
            {
                pos += after + close;
                break;
            }
        }
        // `host program[pid]: message`
        if is_name(word) {
            let after = skip_spaces(rest, word_end);
            if let Some(end) = logger_end(&rest[after..]) {
                pos += after + end;
                break;
            }
        }
        // Hosts, node names and repeated timestamps up to a level or logger.
        if let Some((end, level)) = anchor_end(rest) {
            pos += end;
            consumed = true;
            if level {
                level_seen = true;
                continue;
            }
            break;
        }
        // `program *64 - message`: a few words, then ` - `.
        if !consumed && let Some(dash) = rest.find(" - ") {
            let head = &rest[..dash];
            if dash <= 48 && head.split_whitespace().count() <= 3 && !head.contains(':') {
                pos += dash + 3;
            }
        }
        break;
    }
    line[pos..].trim_start()
}

/// Within the next few words, the end of the first level or logger word
/// when every word before it looks like a header field.
fn anchor_end(rest: &str) -> Option<(usize, bool)> {
    let mut pos = 0;
    for _ in 0..8 {
        pos = skip_spaces(rest, pos);
        let (word, len) = next_word(&rest[pos..]);
        if word.is_empty() {
            return None;
        }
        if is_level(word, true) {
            return Some((pos + len, true));
        }
        if let Some(end) = logger_end(&rest[pos..]) {
            return Some((pos + end, false));
        }
        if !is_header_field(word) {
            return None;
        }
        pos += len;
    }
    None
}

/// Node ids, hosts and timestamps: words with a digit and no `=`, month
/// and day names, or short upper-case tags (`RAS`, `KERNEL`).
fn is_header_field(word: &str) -> bool {
    let with_digit = word.bytes().any(|b| b.is_ascii_digit())
        && !word.contains('=')
        && word.bytes().all(|b| b.is_ascii_graphic());
    with_digit || is_time_word(word) || is_flag(word)
}

/// A source name before a timestamp (`nova-api.log.1.2017-05-16_13:53:08`):
/// one printable word with a dot or a digit, not ending in `:`.
fn is_source(word: &str) -> bool {
    word.len() <= 128
        && word
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && word.bytes().all(|b| b.is_ascii_graphic())
        && word.bytes().any(|b| b == b'.' || b.is_ascii_digit())
        && !word.ends_with(':')
}

/// `-` or a short upper-case tag.
fn is_flag(word: &str) -> bool {
    word == "-"
        || (word.len() <= 12
            && word.len() >= 2
            && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
}

/// End of a leading timestamp (optionally in brackets), or `None`.
fn timestamp_end(line: &str) -> Option<usize> {
    let bracketed = line.starts_with('[');
    let mut pos = usize::from(bracketed);
    // The first two words and whether any later one is a timestamp: all
    // the evidence needs, without collecting the words. The first two are
    // parsed as timestamps only when their shape is not evidence already.
    let mut words: [Option<&str>; 2] = [None; 2];
    let mut count = 0usize;
    let mut stamped = false;
    let mut end = pos;
    loop {
        let at = if count == 0 {
            pos
        } else {
            skip_spaces(line, pos)
        };
        let rest = &line[at..];
        let word = &rest[..word_len(rest)];
        let len = word
            .bytes()
            .position(|b| matches!(b, b'|' | b']' | b'['))
            .unwrap_or(word.len());
        let word = &rest[..len];
        if word.is_empty() || !is_time_word(word) {
            break;
        }
        if let Some(slot) = words.get_mut(count) {
            *slot = Some(word);
        } else {
            stamped = stamped || is_timestamp(word.trim_end_matches(','));
        }
        count += 1;
        pos = at + len;
        end = pos;
    }
    let evidence = compact_date(words)
        || epoch(words[0])
        || stamped
        || words
            .iter()
            .flatten()
            .any(|w| is_timestamp(w.trim_end_matches(',')));
    if !evidence {
        return None;
    }
    if bracketed {
        let rest = &line[end..];
        return rest.starts_with(']').then_some(end + 1);
    }
    Some(end)
}

/// `081109 203615`: an all-digit date of 6 or 8 digits and a time.
fn compact_date(words: [Option<&str>; 2]) -> bool {
    matches!(words, [Some(date), Some(time)]
        if (date.len() == 6 || date.len() == 8)
            && (4..=6).contains(&time.len())
            && date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()))
}

/// A Unix time in seconds or milliseconds, alone or with a fraction.
fn epoch(first: Option<&str>) -> bool {
    first.is_some_and(|w| {
        let int = w.split('.').next().unwrap_or(w);
        (int.len() == 10 || int.len() == 13) && int.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_time_word(word: &str) -> bool {
    let w = word.trim_end_matches(',');
    let mut digit = false;
    for b in w.bytes() {
        if !TIME_BYTES.contains(b) {
            return is_month_or_day(w);
        }
        digit |= b.is_ascii_digit();
    }
    digit
}

/// A level word: upper-case or title-case (`INFO`, `Info`), lower-case in
/// brackets (`[notice]`), or after a pid one of `V D I W E F` (Android).
fn is_level(word: &str, after_field: bool) -> bool {
    let b = word.as_bytes();
    let start = b.iter().take_while(|&&c| c == b'[' || c == b'<').count();
    let end = b.len()
        - b[start..]
            .iter()
            .rev()
            .take_while(|&&c| matches!(c, b']' | b'>' | b':' | b','))
            .count();
    let bracketed = start > 0;
    let w = &word[start..end];
    if w.len() == 1 {
        return after_field && !bracketed && "VDIWEF".contains(w);
    }
    if !(3..=8).contains(&w.len()) {
        return false;
    }
    let title = w.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && w.bytes().skip(1).all(|b| b.is_ascii_lowercase());
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w))
        && (w.bytes().all(|b| b.is_ascii_uppercase()) || title || bracketed)
}

/// A word made of identifier characters (a component, host or pid field).
fn is_name(word: &str) -> bool {
    is_name_bytes(word.bytes())
}

/// [`is_name`] over bytes, so a caller can leave some out without copying.
fn is_name_bytes(bytes: impl Iterator<Item = u8>) -> bool {
    let mut len = 0usize;
    for b in bytes {
        let ok = if len == 0 {
            b.is_ascii_alphanumeric() || b == b'_'
        } else {
            NAME_BYTES.contains(b)
        };
        if !ok {
            return false;
        }
        len += 1;
    }
    (1..=128).contains(&len)
}

/// The bytes of a component, host or pid field.
const NAME_BYTES: ByteSet =
    ByteSet::of(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$#@/");
/// The bytes of a numeric date or time.
const TIME_BYTES: ByteSet = ByteSet::of(b"0123456789-/:.,TZ+");

/// `org.example.App: `, `sshd[42]: `: end of the logger name and its colon.
fn logger_end(rest: &str) -> Option<usize> {
    let (word, end) = next_word(rest);
    let name = word.strip_suffix(':')?;
    let base = match name.find('[') {
        Some(open) if name.ends_with(']') => &name[..open],
        Some(_) => return None,
        None => name,
    };
    let followed = rest[end..].is_empty() || rest[end..].starts_with(char::is_whitespace);
    let base_ok = is_name_bytes(base.bytes().filter(|&b| b != b'(' && b != b')'));
    (followed && base_ok && base.bytes().next().is_some_and(|b| !b.is_ascii_digit())).then_some(end)
}

/// End (exclusive) of the balanced `[...]` group `rest` starts with.
fn bracket_end(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn next_word(rest: &str) -> (&str, usize) {
    let end = word_len(rest);
    (&rest[..end], end)
}

fn skip_spaces(s: &str, pos: usize) -> usize {
    pos + space_len(&s[pos..])
}

#[cfg(test)]
mod tests {
    use super::strip_header;

    #[test]
    fn strips_common_header_shapes() {
        let cases = [
            (
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 done",
                "PacketResponder 1 done",
            ),
            (
                "2015-10-18 18:01:47,978 INFO [RMCommunicator Allocator] org.apache.hadoop.mapreduce.v2.app.rm.RMContainerAllocator: Ramping up",
                "Ramping up",
            ),
            (
                "17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls",
                "Changing view acls",
            ),
            (
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
                "Notification time out: 3200",
            ),
            (
                "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
                "onStandStepChanged 3579",
            ),
            (
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",
                "workerEnv.init() ok",
            ),
            (
                "[Sun Dec 04 04:47:44 2005] [error] [client 10.0.0.1] Directory index forbidden",
                "[client 10.0.0.1] Directory index forbidden",
            ),
            (
                "[10.30 16:49:06] chrome.exe *64 - proxy.example.org:5070 open through proxy",
                "proxy.example.org:5070 open through proxy",
            ),
            (
                "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster",
                "Invalid user webmaster",
            ),
            (
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
                "check pass; user unknown",
            ),
            (
                "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: Wake reason: RTC",
                "Wake reason: RTC",
            ),
            (
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs",
                "printFreezingDisplayLogs",
            ),
            (
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.363779 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
                "instruction cache parity error corrected",
            ),
            (
                "- 1131523501 2005.11.09 aadmin1 Nov 10 00:05:01 src@aadmin1 in.tftpd[14620]: tftp: client does not accept options",
                "tftp: client does not accept options",
            ),
            (
                "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-1 - - -] 10.11.10.1 \"GET /v2\" status: 200",
                "10.11.10.1 \"GET /v2\" status: 200",
            ),
            (
                "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack",
                "CBS    Loaded Servicing Stack",
            ),
        ];
        for (line, content) in cases {
            assert_eq!(strip_header(line), content, "line: {line}");
        }
    }

    #[test]
    fn leaves_lines_without_a_leading_timestamp_alone() {
        for line in [
            "ERROR IN CONTACTING RM.",
            "Received disconnect from 10.0.0.1: 11: Bye Bye [preauth]",
            "at 12:30 the job started",
            "3 more authentication failures",
            "",
        ] {
            assert_eq!(strip_header(line), line);
        }
    }
}
