//! The journal reader and writer on damaged files: any bytes as a journal,
//! with or without a head file, give reports or errors from
//! `verify_journal`, `read_journal` and `Journal::open`, never a panic, a
//! hang or memory that grows with the file.
//!
//! Input: `flags, n, len, pos, journal bytes…`
//! - flags bit 0: give every record-shaped line a valid MAC; bit 1: also
//!   chain its `prev` to the line before (see `warden_fuzz::remac`).
//! - flags bits 2-3, the head file: 0 none; 1 keyed, for `n` records (255:
//!   u64::MAX) ending in the last MAC; 2 the last `len` input bytes, raw;
//!   3 keyed and matching the journal's lines.
//! - flags bit 4: verify against an anchor of `n` records and the last MAC.
//! - flags bits 5-7, size: 5 pads the journal at `pos`/256 of its length
//!   with spaces to about the 4 MiB line limit (`len` shifts it); 6 makes it
//!   end in a 72 MiB sparse run of zero bytes (one endless line); 7 does the
//!   same to the head file. Other values leave the bytes as they are.
//!
//! When `Journal::open` accepts a file, `verify_journal` must not have found
//! damage in it that the writer should have refused (a torn tail is fine,
//! the writer recovers it), and after one append and a checkpoint the
//! journal must verify clean.
#![no_main]
#![allow(
    clippy::disallowed_methods,
    reason = "fuzz_target! saves inputs with std::fs::File::create"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_agent::{
    Anchor, HostKey, Journal, JournalEvent, ProblemKind, read_journal, verify_journal,
};
use warden_fuzz::{KEY, MAX_LINE, head, remac};

/// More than `warden_fuzz::MAX_ALLOCATION`, so a reader that keeps a whole
/// line (or head) in memory crashes.
const SPARSE: u64 = 72 << 20;
/// Padding, copied rather than generated: a per-byte loop is slow under
/// compare tracing.
static PAD: [u8; MAX_LINE] = [b' '; MAX_LINE];

fn scratch() -> PathBuf {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        dir.unwrap_or_else(|e| panic!("cannot make a scratch directory: {e}"))
    });
    let dir = base.path().join("j");
    let _ = fs_err::remove_dir_all(&dir);
    fs_err::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(path: &Path, bytes: &[u8], sparse_tail: bool) {
    fs_err::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
    if sparse_tail {
        let f = fs_err::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.set_len(bytes.len() as u64 + SPARSE)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

fuzz_target!(|data: &[u8]| {
    warden_fuzz::bounded();
    let [flags, n, len, pos, rest @ ..] = data else {
        return;
    };
    let (flags, n, len, pos) = (*flags, *n, *len, *pos);
    let mut journal = rest.to_vec();
    let head_mode = (flags >> 2) & 3;
    let size_mode = flags >> 5;

    let raw_head = if head_mode == 2 {
        let at = journal.len().saturating_sub(usize::from(len));
        Some(journal.split_off(at))
    } else {
        None
    };
    if size_mode == 5 {
        let at = journal.len() * usize::from(pos) / 256;
        let pad = MAX_LINE - 256 + usize::from(len);
        let mut padded = Vec::with_capacity(journal.len() + pad);
        padded.extend_from_slice(&journal[..at]);
        padded.extend_from_slice(&PAD[..pad]);
        padded.extend_from_slice(&journal[at..]);
        journal = padded;
    }
    let (last_mac, lines) = if flags & 1 == 1 {
        remac(&mut journal, flags & 2 == 2)
    } else {
        (warden_fuzz::GENESIS.to_string(), 0)
    };
    let count = |n: u8| if n == 255 { u64::MAX } else { u64::from(n) };
    let head_bytes = match head_mode {
        1 => Some(head(count(n), &last_mac)),
        2 => raw_head,
        3 => Some(head(lines, &last_mac)),
        _ => None,
    };

    let dir = scratch();
    let path = dir.join("journal.jsonl");
    write(&path, &journal, size_mode == 6);
    if let Some(h) = &head_bytes {
        write(&dir.join("journal.jsonl.head"), h, size_mode == 7);
    }
    let anchor = (flags & 16 == 16).then(|| Anchor {
        records: count(n),
        mac: last_mac.clone(),
        at: "2026-01-01T00:00:00Z".into(),
    });
    let key = HostKey::from_bytes(KEY);

    let before = verify_journal(&path, &key, anchor.as_ref());
    let _ = read_journal(&path, &key);
    let Ok(writer) = Journal::open(&path, key.clone()) else {
        return;
    };
    if let Ok(report) = &before {
        let empty_without_head = journal.is_empty() && head_bytes.is_none() && size_mode != 6;
        for p in &report.problems {
            let tolerated = match p.kind {
                ProblemKind::Torn | ProblemKind::Anchor => true,
                ProblemKind::Head => empty_without_head,
                _ => false,
            };
            assert!(
                tolerated,
                "Journal::open accepted a journal verify_journal finds damaged: {p:?}"
            );
        }
    }
    let event = JournalEvent::Skip {
        step_id: "s1".into(),
        tool: "probe".into(),
        reason: "fuzz".into(),
    };
    writer
        .append("t-fuzz", &event)
        .unwrap_or_else(|e| panic!("append after a successful open failed: {e}"));
    writer
        .checkpoint()
        .unwrap_or_else(|e| panic!("checkpoint after a successful open failed: {e}"));
    drop(writer);
    let after = verify_journal(&path, &key, None)
        .unwrap_or_else(|e| panic!("verify after a successful open failed: {e}"));
    assert!(
        after.is_ok(),
        "a journal the writer accepted and appended to does not verify: {:?}",
        after.problems
    );
    let records = read_journal(&path, &key)
        .unwrap_or_else(|e| panic!("read after a successful open failed: {e}"));
    assert_eq!(records.len() as u64, after.records);
});
