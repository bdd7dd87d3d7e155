//! The classifier on tokens taken from Loghub samples and bug reports.

use super::TokenClass::{
    Duration, Email, Hex, HostPort, Ip, Number, Path, Timestamp, Url, Uuid, Word,
};
use super::*;

fn assert_classes(cases: &[(&str, TokenClass)]) {
    for &(token, class) in cases {
        assert_eq!(classify(token), class, "token: {token}");
    }
}

#[test]
fn numbers_are_signed_decimal_grouped_or_with_a_short_unit() {
    assert_classes(&[
        ("42", Number),
        ("-3", Number),
        ("+7", Number),
        ("0.25", Number),
        ("1e9", Number),
        ("12,345", Number),
        ("1_000", Number),
        ("99%", Number),
        ("-12.5%", Number),
        ("5GB", Number),
        ("3rd", Number),
        ("1.2.3", Number),
        ("12,", Word),
        ("12abcd", Word),
        ("-", Word),
    ]);
}

#[test]
fn durations_carry_a_time_unit() {
    assert_classes(&[
        ("250ms", Duration),
        ("30s", Duration),
        ("1.5sec", Duration),
        ("5min", Duration),
        ("12µs", Duration),
        ("1h2m3.5s", Duration),
        ("2m30s", Duration),
        ("1h2x", Word),
    ]);
}

#[test]
fn hex_ids_need_a_prefix_or_both_digits_and_letters() {
    assert_classes(&[
        ("0x14f05578bd80010", Hex),
        ("0X1F", Hex),
        ("deadbeef42", Hex),
        ("9fceb02d0ae598e95dc970b74767f19372d61af8", Hex),
        ("00:1a:2b:3c:4d:5e", Hex),
        ("00-1A-2B-3C-4D-5E", Hex),
        ("deadbeef", Word),
        ("12345678", Number),
    ]);
}

#[test]
fn uuids_are_five_hex_groups() {
    assert_classes(&[
        ("38101a0b-2096-447d-96ea-a692162415ae", Uuid),
        ("38101a0b-2096-447d-96ea-a692162415a", Word),
        ("38101a0b-2096-447d-96ea-a692162415ag", Word),
    ]);
}

#[test]
fn ipv4_addresses_take_ports_prefixes_and_a_leading_slash() {
    assert_classes(&[
        ("10.251.73.220", Ip),
        ("10.251.73.220:50010", Ip),
        ("/10.0.0.1", Ip),
        ("/10.0.0.1:8020", Ip),
        ("10.0.0.0/8", Ip),
        ("10.0.0.1:", Word),
        ("10.0.0", Number),
        ("1000.0.0.1", Number),
    ]);
}

#[test]
fn ipv6_addresses_need_a_compressed_run_or_eight_groups() {
    assert_classes(&[
        ("fe80::1ff:fe23:4567:890a", Ip),
        ("2001:db8:0:0:0:0:2:1", Ip),
        ("::1", Ip),
        ("fe80::1%eth0", Ip),
        ("[::1]:8080", Ip),
        ("::ffff:10.0.0.1", Ip),
        ("0:0:0:0:0:0:0:0:2181", Ip),
        ("::", Word),
        ("a:b", Word),
        ("1::2::3", Word),
        ("12:30:01", Timestamp),
    ]);
}

#[test]
fn timestamps_are_dates_clock_times_or_both() {
    assert_classes(&[
        ("2024-01-02", Timestamp),
        ("2024-01-02T12:30:01Z", Timestamp),
        ("2024-01-02T12:30:01.5+02:00", Timestamp),
        ("17/06/09", Timestamp),
        ("12:30", Timestamp),
        ("17:41:44,747", Timestamp),
        ("29/Jul/2015:10:00:01", Timestamp),
        ("20171223-22:15:29:606", Timestamp),
        ("2005-06-03-15.42.50.363779", Timestamp),
        ("123-456-789", Word),
        ("03-17", Word),
        ("a1:23", Word),
        ("2015-07-29x", Word),
    ]);
}

#[test]
fn emails_need_an_alphabetic_top_level_domain() {
    assert_classes(&[
        ("ops@example.com", Email),
        ("first.last+tag@mail.example.co", Email),
        ("a@b.c", Word),
        ("Foo@5e7c8b6c", Word),
    ]);
}

#[test]
fn host_ports_are_dotted_names_with_a_port_but_not_source_lines() {
    assert_classes(&[
        ("proxy.cse.cuhk.edu.hk:5070", HostPort),
        ("ip-10-0-0-1.ec2.internal:8020", HostPort),
        ("Client.java:1347", Word),
        ("localhost:8080", Word),
        ("org.apache.Foo", Word),
    ]);
}

#[test]
fn paths_have_two_separators() {
    assert_classes(&[
        ("/var/log/app.log", Path),
        ("build/lib.linux-x86_64-2.7/isort", Path),
        ("a\\b\\c", Path),
        ("a/b\\c", Word),
        ("Path:/home/curi/.zookeeper", Word),
        ("dir=a/b/c", Word),
        ("./conf/x", Path),
        ("~/a/b", Path),
        ("C:\\Windows\\x.dll", Path),
        ("/default-rack", Word),
        ("and/or", Word),
        ("//", Word),
        ("/var//log", Word),
        ("/-/_", Word),
        ("a/b/c:1", Word),
        ("/a:b/c", Path),
    ]);
}

#[test]
fn urls_start_with_a_scheme() {
    assert_classes(&[
        ("https://example.com/a?b=1", Url),
        ("hdfs://nn:8020/user", Url),
        ("://x/y", Word),
        ("x=http://a/b", Word),
    ]);
}

#[test]
fn words_stay_words() {
    assert_classes(&[
        ("INFO", Word),
        ("blk_-6952295868487656571", Word),
        ("jk2_init()", Word),
        ("ssh2", Word),
        ("Ünïcödé", Word),
        ("", Word),
    ]);
}

#[test]
fn runs_split_letters_and_digits_from_punctuation_of_any_script() {
    let pieces: Vec<Run> = runs("用户=42✓").collect();
    assert_eq!(
        pieces,
        [
            Run::Alnum("用户"),
            Run::Sep("="),
            Run::Alnum("42"),
            Run::Sep("✓")
        ]
    );
    assert_eq!(runs("").next(), None);
}

#[test]
fn runs_that_start_with_a_digit_are_numbers() {
    assert_eq!(classify_run("2nd"), Number);
    assert_eq!(classify_run("node12"), Word);
    assert_eq!(classify_run("deadbeef"), Word);
    assert_eq!(classify_run("a1b2c3d4e5"), Hex);
}

#[test]
fn wrapping_punctuation_is_split_off_both_ends() {
    assert_eq!(strip_wrapping("(5.05"), ("(", "5.05", ""));
    assert_eq!(strip_wrapping("`x`."), ("`", "x", "`."));
    assert_eq!(strip_wrapping("..."), ("", "", "..."));
    assert_eq!(strip_wrapping("(2001:db8::)."), ("(", "2001:db8::", ")."));
}

/// Every string of up to `len` characters drawn from `alphabet`.
fn strings(alphabet: &[char], len: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..len {
        last = last
            .iter()
            .flat_map(|s| {
                alphabet.iter().map(move |&c| {
                    let mut t = s.clone();
                    t.push(c);
                    t
                })
            })
            .collect();
        all.extend(last.iter().cloned());
    }
    all
}

#[test]
fn words_split_where_split_whitespace_does_whatever_the_script() {
    // ASCII whitespace including vertical tab and form feed, no-break,
    // ogham, ideographic and next-line spaces, letters of several widths,
    // and control characters below `!` that are not whitespace.
    let alphabet = [
        'a',
        ' ',
        '\t',
        '\u{0B}',
        '\u{0C}',
        '\r',
        '\n',
        '\u{A0}',
        '\u{1680}',
        '\u{3000}',
        '\u{85}',
        'é',
        '用',
        '\u{1F600}',
        '\u{1}',
        '\u{1F}',
        '!',
    ];
    for s in strings(&alphabet, 4) {
        let ours: Vec<&str> = Words::new(&s).collect();
        let std: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(ours, std, "text: {s:?}");
        assert_eq!(
            word_len(&s),
            s.find(char::is_whitespace).unwrap_or(s.len()),
            "text: {s:?}"
        );
        assert_eq!(space_len(&s), s.len() - s.trim_start().len(), "text: {s:?}");
    }
    // Long words, where eight bytes are skipped at a time, with the end at
    // each offset of a chunk.
    for end in 0..40 {
        for tail in [" x", "\u{1}\u{1F}! x", "\u{A0}x", "é x", "\u{3000}", ""] {
            let s = format!("{}{tail}", "a".repeat(end));
            let std: Vec<&str> = s.split_whitespace().collect();
            assert_eq!(Words::new(&s).collect::<Vec<_>>(), std, "text: {s:?}");
            assert_eq!(
                word_len(&s),
                s.find(char::is_whitespace).unwrap_or(s.len()),
                "text: {s:?}"
            );
        }
    }
}

#[test]
fn runs_split_where_alphanumeric_changes_whatever_the_script() {
    // Arabic-Indic digits and CJK are alphanumeric; `✓`, `·`, whitespace
    // and the no-break space are not.
    let alphabet = [
        'a', '1', '_', '-', ' ', '\t', 'é', '用', '\u{663}', '✓', '·', '\u{A0}',
    ];
    for s in strings(&alphabet, 4) {
        let mut expected = Vec::new();
        let mut rest = s.as_str();
        while let Some(first) = rest.chars().next() {
            let alnum = first.is_alphanumeric();
            let end = rest
                .char_indices()
                .find(|&(_, c)| c.is_alphanumeric() != alnum)
                .map_or(rest.len(), |(i, _)| i);
            let (piece, tail) = rest.split_at(end);
            expected.push(if alnum {
                Run::Alnum(piece)
            } else {
                Run::Sep(piece)
            });
            rest = tail;
        }
        let ours: Vec<Run> = runs(&s).collect();
        assert_eq!(ours, expected, "token: {s:?}");
    }
}
