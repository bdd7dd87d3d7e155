//! The keyed chain catches every kind of tampering by someone who can write
//! the journal's directory but not the host key, survives a crash
//! mid-write, and stays one chain when several processes append.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test setup panics on failure"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use warden_agent::{
    Anchor, ApprovalGiven, CallEnded, HostKey, Journal, JournalEvent, ProblemKind, StepStatus,
    TaskStarted, read_journal, verify_journal,
};
use warden_types::Effect;

fn key() -> HostKey {
    HostKey::from_bytes([9; 32])
}

fn task(principal: &str, env: &str) -> JournalEvent {
    JournalEvent::Task(TaskStarted {
        agent: "warden".into(),
        goal: "restart the pool".into(),
        source: "cli".into(),
        env: env.into(),
        principal: principal.into(),
        roles: vec![],
        break_glass: None,
        alert: None,
        attachments: Default::default(),
    })
}

fn call(step: &str, effect: Effect) -> JournalEvent {
    JournalEvent::Call(CallEnded {
        step_id: step.into(),
        tool: "http-action".into(),
        effect: Some(effect),
        status: StepStatus::Succeeded,
        attempts: 1,
        dry_run: false,
        duration_us: 10,
        args: serde_json::json!({"url": "http://127.0.0.1/"}),
        output: None,
        reasons: vec![],
    })
}

/// A human approved a change: it counts against the change limits.
fn approved_change(step: &str) -> JournalEvent {
    JournalEvent::Approval(ApprovalGiven {
        step_id: step.into(),
        tool: "http-action".into(),
        effect: Effect::Mutating,
        dry_run: false,
        approved: true,
        approver: "carol".into(),
        principal: "alice".into(),
        note: None,
        at: "2026-12-05T00:00:00Z".into(),
        reasons: vec![],
        policy: None,
    })
}

fn write_journal(path: &Path, n: usize) {
    let j = Journal::open(path, key()).unwrap();
    for i in 0..n {
        j.append("t-1", &call(&format!("s{i}"), Effect::ReadOnly))
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
    if !lines.is_empty() {
        text.push('\n');
    }
    fs_err::write(path, text).unwrap();
}

fn kinds(path: &Path) -> Vec<(usize, ProblemKind)> {
    verify_journal(path, &key(), None)
        .unwrap()
        .problems
        .iter()
        .map(|p| (p.line, p.kind))
        .collect()
}

fn head(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.head",
        path.file_name().unwrap().to_string_lossy()
    ))
}

#[test]
fn an_untouched_journal_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let report = verify_journal(&path, &key(), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
    assert_eq!(report.tasks, 1);
    assert!(report.recovered.is_empty());
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
fn a_full_rewrite_with_recomputed_macs_under_another_key_is_caught() {
    // The attacker rewrites history with their own key (they cannot read
    // ours), recomputing every MAC and the head: a perfect chain, just not
    // one this host's key vouches for.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 4);
    let forged = dir.path().join("forged.jsonl");
    {
        let j = Journal::open(&forged, HostKey::from_bytes([66; 32])).unwrap();
        for i in 0..4 {
            j.append("t-1", &call(&format!("s{i}"), Effect::Mutating))
                .unwrap();
        }
        j.checkpoint().unwrap();
    }
    fs_err::copy(&forged, &path).unwrap();
    fs_err::copy(head(&forged), head(&path)).unwrap();
    let problems = kinds(&path);
    assert!(
        problems
            .iter()
            .filter(|(_, k)| *k == ProblemKind::Edited)
            .count()
            == 4,
        "{problems:?}"
    );
    assert!(problems.contains(&(0, ProblemKind::Head)), "{problems:?}");
    assert!(Journal::open(&path, key()).is_err());
}

#[test]
fn a_rewrite_with_recomputed_plain_hashes_is_caught() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    // What defeated the old unkeyed chain: recompute a SHA-256 in place.
    let mut l = lines(&path);
    let edited = l[1].replace("succeeded", "failed");
    let cut = edited.len() - (8 + 64 + 2);
    let body = format!("{}}}", &edited[..cut]);
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    l[1] = format!("{},\"mac\":\"{hash}\"}}", &edited[..cut]);
    rewrite(&path, &l);
    assert!(kinds(&path).contains(&(2, ProblemKind::Edited)));
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
    let report = verify_journal(&path, &key(), None).unwrap();
    let deleted: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Deleted)
        .collect();
    assert_eq!(deleted.len(), 1, "{:?}", report.problems);
    assert!(
        deleted[0].detail.contains("records 2..=2"),
        "{}",
        deleted[0].detail
    );
}

#[test]
fn a_truncated_tail_is_detected_through_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let l = lines(&path);
    rewrite(&path, &l[..3]);
    let report = verify_journal(&path, &key(), None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Truncated);
    assert!(
        report.problems[0].detail.contains("records 3..=4"),
        "{}",
        report.problems[0].detail
    );
    assert!(Journal::open(&path, key()).is_err(), "not appended to");
}

#[test]
fn a_deleted_tail_together_with_its_head_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let l = lines(&path);
    rewrite(&path, &l[..2]);
    fs_err::remove_file(head(&path)).unwrap();
    let problems = kinds(&path);
    assert_eq!(problems, vec![(0, ProblemKind::Head)]);
    let err = Journal::open(&path, key()).unwrap_err().to_string();
    assert!(err.contains("head file"), "{err}");
}

#[test]
fn a_forged_head_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 5);
    let l = lines(&path);
    rewrite(&path, &l[..2]);
    // Claim the head is record 2 of 2, without the key to tag it.
    let mut h: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(head(&path)).unwrap()).unwrap();
    h["records"] = 2.into();
    fs_err::write(head(&path), h.to_string()).unwrap();
    assert!(kinds(&path).contains(&(0, ProblemKind::Head)));
}

#[test]
fn a_corrupted_checkpointed_last_record_is_not_taken_for_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    let mut l = lines(&path);
    l[2].truncate(40);
    rewrite(&path, &l);
    let problems = kinds(&path);
    assert!(
        problems.iter().all(|(_, k)| *k != ProblemKind::Torn),
        "{problems:?}"
    );
    assert!(!problems.is_empty());
    let err = Journal::open(&path, key()).unwrap_err().to_string();
    assert!(err.contains("checkpoint"), "{err}");
    assert!(
        !dir.path().join("j.jsonl.torn").exists(),
        "nothing moved aside"
    );
}

#[test]
fn a_torn_line_after_the_checkpoint_is_recovered_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    // A crash in the middle of the fourth write.
    let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"seq":3,"ts":"2026-11-27T00:00:00Z","task_id":"t-1","kind":"ca"#)
        .unwrap();
    drop(f);
    assert_eq!(kinds(&path), vec![(4, ProblemKind::Torn)]);
    assert_eq!(read_journal(&path, &key()).unwrap().len(), 3);

    // Reopening moves the torn bytes aside, says so in the chain, continues.
    let j = Journal::open(&path, key()).unwrap();
    assert_eq!(j.append("t-2", &task("bob", "dev")).unwrap(), 4);
    j.checkpoint().unwrap();
    drop(j);
    let report = verify_journal(&path, &key(), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.recovered.len(), 1, "reported, not hidden");
    assert!(
        report.recovered[0].contains("torn"),
        "{}",
        report.recovered[0]
    );
    let torn = fs_err::read_to_string(dir.path().join("j.jsonl.torn")).unwrap();
    assert!(torn.starts_with(r#"{"seq":3"#));
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    write_journal(&path, 2);
    let report = verify_journal(&path, &key(), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let seqs: Vec<u64> = read_journal(&path, &key())
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
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
    let err = Journal::open(&path, key()).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn two_writers_share_one_chain_and_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let a = Journal::open(&path, key()).unwrap();
    let b = Journal::open(&path, key()).unwrap();
    a.append("t-a", &task("alice", "prod")).unwrap();
    b.append("t-b", &task("bob", "prod")).unwrap();
    a.append("t-a", &approved_change("s1")).unwrap();
    b.append("t-b", &approved_change("s1")).unwrap();
    b.append("t-b", &call("s2", Effect::Mutating)).unwrap();
    a.checkpoint().unwrap();
    let report = verify_journal(&path, &key(), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
    // Each writer sees the other's changes in the last hour (a call's end
    // does not count twice: its decision or approval already did).
    let seen_by_a = a.recent_mutations("warden", "alice", "prod").unwrap();
    assert_eq!(seen_by_a.by_agent, 2);
    assert_eq!(seen_by_a.by_principal, 1);
    assert_eq!(seen_by_a.in_env, 2);
    assert_eq!(
        b.recent_mutations("warden", "bob", "dev").unwrap().in_env,
        0
    );
}

#[test]
fn an_anchor_catches_a_rollback_to_an_older_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    // The attacker keeps a copy of the journal and head at this point.
    let old = fs_err::read(&path).unwrap();
    let old_head = fs_err::read(head(&path)).unwrap();
    write_journal(&path, 3);
    let anchor: Anchor = verify_journal(&path, &key(), None).unwrap().head;
    assert_eq!(anchor.records, 5);
    // Roll back: both files as they were. Without the anchor it verifies.
    fs_err::write(&path, old).unwrap();
    fs_err::write(head(&path), old_head).unwrap();
    assert!(verify_journal(&path, &key(), None).unwrap().is_ok());
    let report = verify_journal(&path, &key(), Some(&anchor)).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Anchor);
}

#[test]
fn the_host_key_is_created_private_and_refused_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/host.key");
    let k = HostKey::load_or_create(&path).unwrap();
    let mode = fs_err::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        HostKey::load_or_create(&path).unwrap().fingerprint(),
        k.fingerprint()
    );
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = HostKey::load_or_create(&path).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

// Found by fuzzing (fuzz/fuzz_targets/journal.rs): damaged files must give
// reports or errors, never a panic or memory that grows with the file.

/// Tracks the largest single allocation made by a thread while it is armed,
/// so a test can show a reader does not hold a whole line or file in memory.
struct LargestAllocation;

thread_local! {
    static ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LARGEST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown are not tracked.
    if ARMED.try_with(|a| a.get()).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every method forwards to `System` unchanged; `note` only touches
// const-initialised thread-locals, which do not allocate.
#[allow(
    unsafe_code,
    reason = "a GlobalAlloc implementation is unsafe by definition"
)]
unsafe impl std::alloc::GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        note(size);
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, LARGEST.with(|l| l.get()))
}

#[test]
fn an_overlong_line_is_skipped_without_holding_it_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    // 40 MiB of zero bytes (sparse, so nothing is written) and a newline: one
    // line ten times the limit; then a damaged last line, which must still be
    // found where it is.
    let len = fs_err::metadata(&path).unwrap().len();
    let f = fs_err::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len + (40 << 20)).unwrap();
    drop(f);
    let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"\nnot a record\n").unwrap();
    drop(f);

    let (report, largest) = largest_allocation(|| verify_journal(&path, &key(), None).unwrap());
    assert!(
        largest < 16 << 20,
        "verify_journal made a {largest}-byte allocation for a 40 MiB line"
    );
    let problems: Vec<_> = report.problems.iter().map(|p| (p.line, p.kind)).collect();
    assert_eq!(
        problems,
        vec![(3, ProblemKind::Malformed), (4, ProblemKind::Torn)],
        "{:?}",
        report.problems
    );
    let (records, largest) = largest_allocation(|| read_journal(&path, &key()).unwrap());
    assert!(largest < 16 << 20, "read_journal: {largest} bytes");
    assert_eq!(records.len(), 2);
}

#[test]
fn an_oversized_head_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    // A genuine head followed by 1 MiB of whitespace is still valid JSON,
    // but no head is that long: it is not read, and not trusted.
    let mut f = fs_err::OpenOptions::new()
        .append(true)
        .open(head(&path))
        .unwrap();
    f.write_all(&vec![b' '; 1 << 20]).unwrap();
    drop(f);

    let (report, largest) = largest_allocation(|| verify_journal(&path, &key(), None).unwrap());
    assert!(largest < 64 << 10, "{largest} bytes");
    let head_problems: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Head)
        .collect();
    assert_eq!(head_problems.len(), 1, "{:?}", report.problems);
    assert!(
        head_problems[0].detail.contains("at most 4096 bytes"),
        "{}",
        head_problems[0].detail
    );
    let err = Journal::open(&path, key()).unwrap_err().to_string();
    assert!(err.contains("at most 4096 bytes"), "{err}");
}

#[test]
fn a_record_numbered_u64_max_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 2);
    let mut l = lines(&path);
    l[1] = l[1].replacen(r#""seq":1,"#, &format!(r#""seq":{},"#, u64::MAX), 1);
    l.push(l[0].clone());
    rewrite(&path, &l);
    let report = verify_journal(&path, &key(), None).unwrap();
    let problems: Vec<_> = report.problems.iter().map(|p| (p.line, p.kind)).collect();
    assert!(
        problems.contains(&(2, ProblemKind::Edited)),
        "{:?}",
        report.problems
    );
    assert!(
        problems.contains(&(3, ProblemKind::Reordered)),
        "{:?}",
        report.problems
    );
    assert!(Journal::open(&path, key()).is_err());
}

#[test]
fn a_journal_swapped_for_another_chain_under_the_same_key_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    write_journal(&path, 3);
    // Another journal on the same host, keyed with the same host key, with
    // more records: every record and the chain are authentic.
    let other = dir.path().join("other/j.jsonl");
    let j = Journal::open(&other, key()).unwrap();
    for i in 0..4 {
        j.append("t-other", &call(&format!("o{i}"), Effect::Mutating))
            .unwrap();
    }
    drop(j);
    fs_err::copy(&other, &path).unwrap();

    let problems = kinds(&path);
    assert_eq!(problems, vec![(3, ProblemKind::Head)], "verify names it");
    let err = Journal::open(&path, key()).unwrap_err().to_string();
    assert!(
        err.contains("record 2 differs from the one the last checkpoint recorded"),
        "{err}"
    );
}

/// `f` on another thread, failing the test if it does not return in time
/// (a regression here would read forever).
fn within_seconds<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("still reading")
}

#[test]
fn a_journal_or_head_that_is_a_device_is_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let p = path.clone();
    let err = within_seconds(30, move || verify_journal(&p, &key(), None).unwrap_err());
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let p = path.clone();
    let err = within_seconds(30, move || read_journal(&p, &key()).unwrap_err());
    assert!(err.to_string().contains("not a regular file"), "{err}");

    // A real journal whose head is the device.
    fs_err::remove_file(&path).unwrap();
    write_journal(&path, 1);
    fs_err::remove_file(head(&path)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", head(&path)).unwrap();
    let p = path.clone();
    let report = within_seconds(30, move || verify_journal(&p, &key(), None).unwrap());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Head && p.detail.contains("not a regular file")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_record_line_holds_its_fields_in_order_and_escapes_every_string() {
    use warden_agent::JournalRecord;
    // Quotes, a backslash, a newline, a control character and non-ASCII
    // text in the header and in the event: each must come back as written.
    let task_id = "t-\"1\"\\\n\u{1}é";
    let mut event = call("s\"1\n", Effect::ReadOnly);
    if let JournalEvent::Call(c) = &mut event {
        c.reasons = vec!["a \"reason\"\r\nwith\ttabs \u{7f} and ✓".into()];
        c.output = Some(serde_json::json!({"z": 1, "a": [true, null, 1.5]}));
    }
    let ts = "2026-12-05T14:00:00Z";
    let (line, record) =
        JournalRecord::seal(&key(), 7, ts, task_id, &event, JournalRecord::GENESIS).unwrap();
    assert!(
        line.ends_with("\"}\n") && line.matches('\n').count() == 1,
        "{line}"
    );
    assert_eq!(JournalRecord::open(&key(), &line).unwrap(), record);
    assert_eq!(record.task_id, task_id);
    assert_eq!(record.event, event);
    // The members, in order: the header, the event's kind and data, then
    // the chain's `prev` and the MAC.
    let at = |member: &str| line.find(member).unwrap();
    let order = [
        at("{\"seq\":7,"),
        at(",\"ts\":"),
        at(",\"task_id\":"),
        at(",\"kind\":\"call\","),
        at(",\"data\":{"),
        line.rfind(",\"prev\":").unwrap(),
        line.rfind(",\"mac\":").unwrap(),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{line}");
    let text: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(text["mac"], record.mac.as_str());
    assert_eq!(text["data"]["output"]["z"], 1);
}
