//! The journal's hash chain catches every kind of tampering and survives a
//! crash mid-write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test setup panics on failure"
)]

use std::io::Write as _;
use std::path::Path;

use serde_json::json;
use warden_agent::{Journal, ProblemKind, read_journal, verify_journal};

fn write_journal(path: &Path, n: usize) {
    let j = Journal::open(path).unwrap();
    for i in 0..n {
        j.append(
            "t-1",
            "call",
            json!({"step": format!("s{i}"), "status": "succeeded"}),
        )
        .unwrap();
    }
    j.checkpoint().unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    fs_err::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs_err::write(path, text).unwrap();
}

fn kinds(path: &Path) -> Vec<(usize, ProblemKind)> {
    verify_journal(path)
        .unwrap()
        .problems
        .iter()
        .map(|p| (p.line, p.kind))
        .collect()
}

#[test]
fn an_untouched_journal_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let report = verify_journal(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
    assert_eq!(report.tasks, 1);
}

#[test]
fn an_edited_record_is_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let mut l = lines(&path);
    l[2] = l[2].replace("succeeded", "failed");
    rewrite(&path, &l);
    assert_eq!(kinds(&path), vec![(3, ProblemKind::Edited)]);
}

#[test]
fn an_edit_that_recomputes_the_hash_still_breaks_the_chain() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 4);
    let mut l = lines(&path);
    // Forge line 2 with a correct hash of its new content.
    let edited = l[1].replace("succeeded", "failed");
    let cut = edited.len() - (9 + 64 + 2);
    let body = format!("{}}}", &edited[..cut]);
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    l[1] = format!("{},\"hash\":\"{hash}\"}}", &edited[..cut]);
    rewrite(&path, &l);
    let problems = kinds(&path);
    assert_eq!(
        problems,
        vec![(3, ProblemKind::Edited)],
        "the next record no longer follows it"
    );
}

#[test]
fn reordered_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let mut l = lines(&path);
    l.swap(1, 2);
    rewrite(&path, &l);
    let problems = kinds(&path);
    assert!(
        problems.contains(&(3, ProblemKind::Reordered)),
        "{problems:?}"
    );
}

#[test]
fn a_deleted_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let mut l = lines(&path);
    l.remove(2);
    rewrite(&path, &l);
    let report = verify_journal(&path).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].kind, ProblemKind::Deleted);
    assert!(
        report.problems[0].detail.contains("records 2..=2"),
        "{}",
        report.problems[0].detail
    );
}

#[test]
fn a_truncated_tail_is_detected_through_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let l = lines(&path);
    rewrite(&path, &l[..3]);
    let report = verify_journal(&path).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Truncated);
    assert!(
        report.problems[0].detail.contains("records 3..=4"),
        "{}",
        report.problems[0].detail
    );
}

#[test]
fn a_torn_last_line_is_reported_and_earlier_records_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    // A crash in the middle of the fourth write.
    let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"seq":3,"ts":"2026-11-27T00:00:00Z","task":"t-1","kind":"ca"#)
        .unwrap();
    drop(f);
    assert_eq!(kinds(&path), vec![(4, ProblemKind::Torn)]);
    assert_eq!(read_journal(&path).unwrap().len(), 3);

    // Reopening moves the torn bytes aside and continues the chain.
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.append("t-2", "task", json!({})).unwrap(), 3);
    j.checkpoint().unwrap();
    drop(j);
    assert!(verify_journal(&path).unwrap().is_ok());
    let torn = fs_err::read_to_string(dir.path().join("j.jsonl.torn")).unwrap();
    assert!(torn.starts_with(r#"{"seq":3"#));
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    write_journal(&path, 2);
    let report = verify_journal(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let seqs: Vec<u64> = read_journal(&path).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}

#[test]
fn a_broken_journal_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    let mut l = lines(&path);
    l[0] = l[0].replace("s0", "sX");
    rewrite(&path, &l);
    let err = Journal::open(&path).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let _first = Journal::open(&path).unwrap();
    let err = Journal::open(&path).unwrap_err().to_string();
    assert!(err.contains("in use"), "{err}");
}
