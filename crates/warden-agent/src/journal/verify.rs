//! Reading the chain back: the scanner shared by the writer and
//! [`verify_journal`], the keyed head file, and outside anchors.

use std::io::{BufRead as _, Read as _, Seek as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::HostKey;
use super::record::{Decoded, GENESIS, JournalRecord, decode};
use crate::error::AgentError;

/// A journal line longer than this is damage, not a record (a record's
/// large values are shortened before they are written).
pub(crate) const MAX_LINE: usize = 4 * 1024 * 1024;

/// What kind of damage [`verify_journal`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not a journal record.
    Malformed,
    /// The record's content does not match its MAC (edited, or rewritten
    /// without the host key).
    Edited,
    /// The record is out of order.
    Reordered,
    /// Records are missing before this one.
    Deleted,
    /// The last line is incomplete (a crash mid-write after the last
    /// checkpoint); earlier records are fine. The next writer moves it aside.
    Torn,
    /// Records at the end are missing (the head or an anchor says the
    /// journal was longer).
    Truncated,
    /// The keyed head file is missing, forged or does not match the chain.
    Head,
    /// The journal does not reach or match an outside anchor.
    Anchor,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// 1-based line number (0: not a line of the journal).
    pub line: usize,
    /// The record's `seq`, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// In words.
    pub detail: String,
}

/// A point of the chain kept outside the host, printed by `warden journal
/// anchor`: the journal had `records` records and the last one's MAC was
/// `mac` at time `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Records in the journal.
    pub records: u64,
    /// The MAC of the last record (the genesis value for an empty journal).
    pub mac: String,
    /// When the anchor was taken, RFC 3339.
    pub at: String,
}

/// The result of [`verify_journal`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The journal file.
    pub path: PathBuf,
    /// Whole records read.
    pub records: u64,
    /// Distinct tasks.
    pub tasks: usize,
    /// Everything wrong, in file order.
    pub problems: Vec<Problem>,
    /// Torn tails a writer recovered earlier (journaled as `recovered`
    /// events): not damage, but never hidden.
    pub recovered: Vec<String>,
    /// The end of the chain as read, for `warden journal anchor`.
    pub head: Anchor,
}

impl VerifyReport {
    /// No problem at all.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The keyed `<journal>.head` file: the writer's last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Head {
    pub records: u64,
    pub mac: String,
    pub ts: String,
    pub tag: String,
}

impl Head {
    fn message(records: u64, mac: &str, ts: &str) -> String {
        format!("warden-journal-head-v1\n{records}\n{mac}\n{ts}")
    }

    pub(crate) fn new(key: &HostKey, records: u64, mac: &str, ts: String) -> Head {
        let tag = key.tag(Head::message(records, mac, &ts).as_bytes());
        Head {
            records,
            mac: mac.to_string(),
            ts,
            tag,
        }
    }

    fn is_authentic(&self, key: &HostKey) -> bool {
        key.check(
            Head::message(self.records, &self.mac, &self.ts).as_bytes(),
            &self.tag,
        )
    }
}

pub(crate) fn head_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    path.with_file_name(name)
}

/// A head file is one short JSON object (about 200 bytes); a larger file
/// is not one, and is not read into memory.
const MAX_HEAD: u64 = 4096;

/// The head file: `Ok(None)` when absent, `Err` when unreadable, not a
/// regular file of at most [`MAX_HEAD`] bytes, or forged.
pub(crate) fn read_head(path: &Path, key: &HostKey) -> Result<Option<Head>, String> {
    let hp = head_path(path);
    let meta = match fs_err::metadata(&hp) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let not_a_head = || {
        format!(
            "the head file {} is not a regular file of at most {MAX_HEAD} bytes",
            hp.display()
        )
    };
    // Checked before opening: opening a FIFO would block.
    if !meta.is_file() || meta.len() > MAX_HEAD {
        return Err(not_a_head());
    }
    let mut text = String::new();
    fs_err::File::open(&hp)
        .map_err(|e| e.to_string())?
        .take(MAX_HEAD + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("the head file {}: {e}", hp.display()))?;
    if text.len() as u64 > MAX_HEAD {
        return Err(not_a_head());
    }
    let head: Head = serde_json::from_str(&text)
        .map_err(|e| format!("the head file {} is malformed: {e}", hp.display()))?;
    if !head.is_authentic(key) {
        return Err(format!(
            "the head file {} was not written with this host's key (forged, or another host's)",
            hp.display()
        ));
    }
    Ok(Some(head))
}

/// Where a scan of the chain stands.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub next_seq: u64,
    pub last_mac: String,
    pub line: usize,
    pub offset: u64,
}

impl Chain {
    pub(crate) fn new() -> Chain {
        Chain {
            next_seq: 0,
            last_mac: GENESIS.to_string(),
            line: 0,
            offset: 0,
        }
    }
}

/// What the scanner saw, in order.
pub(crate) enum Seen {
    Record(Box<JournalRecord>),
    Problem(Problem),
    /// The last line is incomplete or unreadable; `chain` stops before it.
    Torn {
        line: usize,
        bytes: u64,
    },
}

/// Read from `chain.offset` to the end of `file`, checking the chain.
pub(crate) fn scan(
    file: &mut std::fs::File,
    key: &HostKey,
    chain: &mut Chain,
    mut seen: impl FnMut(Seen),
) -> std::io::Result<()> {
    let file_len = file.metadata()?.len();
    file.seek(std::io::SeekFrom::Start(chain.offset))?;
    let mut reader = std::io::BufReader::new(&mut *file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n =
            std::io::Read::take(&mut reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let line_no = chain.line + 1;
        let end = chain.offset + n as u64;
        let complete = buf.last() == Some(&b'\n');
        let is_last = end >= file_len;
        if n > MAX_LINE {
            seen(Seen::Problem(Problem {
                line: line_no,
                seq: None,
                kind: ProblemKind::Malformed,
                detail: format!("the line is longer than {MAX_LINE} bytes"),
            }));
            // Skip the rest of the overlong line without keeping it: it
            // may be as long as the file.
            let more = reader.skip_until(b'\n')?;
            chain.offset = end + more as u64;
            chain.line = line_no;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        let decoded = decode(key, text);
        if is_last && (!complete || matches!(decoded, Decoded::Bad(_))) {
            seen(Seen::Torn {
                line: line_no,
                bytes: n as u64,
            });
            return Ok(());
        }
        chain.line = line_no;
        chain.offset = end;
        let (record, authentic) = match decoded {
            Decoded::Good(r) => (r, true),
            Decoded::Forged(r) => (r, false),
            Decoded::Bad(detail) => {
                seen(Seen::Problem(Problem {
                    line: line_no,
                    seq: None,
                    kind: ProblemKind::Malformed,
                    detail,
                }));
                continue;
            }
        };
        let expected = chain.next_seq;
        let problem = if !authentic {
            Some((
                ProblemKind::Edited,
                format!(
                    "record {} ({}, task {}) does not carry a valid MAC: it was changed, or written without this host's key",
                    record.seq,
                    record.event.kind(),
                    record.task_id.escape_debug()
                ),
            ))
        } else if record.seq > expected {
            Some((
                ProblemKind::Deleted,
                format!(
                    "records {expected}..={} are missing before record {}",
                    record.seq - 1,
                    record.seq
                ),
            ))
        } else if record.seq < expected {
            Some((
                ProblemKind::Reordered,
                format!(
                    "record {} appears after record {}: records were reordered",
                    record.seq,
                    expected.saturating_sub(1)
                ),
            ))
        } else if record.prev != chain.last_mac {
            Some((
                ProblemKind::Edited,
                format!(
                    "record {} does not follow the record before it (its `prev` differs): a record before it was replaced",
                    record.seq
                ),
            ))
        } else {
            None
        };
        // `seq` is read from the file: it can be u64::MAX.
        chain.next_seq = if record.seq >= expected {
            record.seq.saturating_add(1)
        } else {
            expected
        };
        chain.last_mac = record.mac.clone();
        match problem {
            Some((kind, detail)) => seen(Seen::Problem(Problem {
                line: line_no,
                seq: Some(record.seq),
                kind,
                detail,
            })),
            None => seen(Seen::Record(record)),
        }
    }
}

fn open_shared(path: &Path) -> Result<std::fs::File, AgentError> {
    let err = |reason: String| AgentError::Journal {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => err("no such journal".into()),
        _ => err(e.to_string()),
    };
    // Checked before opening: opening a FIFO would block, and a device such
    // as /dev/zero would be read forever.
    if !fs_err::metadata(path).map_err(io)?.is_file() {
        return Err(err("not a regular file".into()));
    }
    let file = fs_err::File::open(path).map_err(io)?.into_parts().0;
    // Writers hold the lock only while appending a line: a shared lock
    // keeps a half-written line from looking torn.
    file.lock_shared().map_err(|e| err(e.to_string()))?;
    Ok(file)
}

/// Check the whole chain of the journal at `path` under `key`, its keyed
/// head, and, when given, an outside [`Anchor`].
///
/// Catches an edited, reordered or deleted record; a full rewrite with
/// recomputed hashes (no record carries a valid MAC without the key); a
/// deleted tail, with or without the head file; a damaged record at or
/// before the last checkpoint. A torn line after the last checkpoint is
/// reported as [`ProblemKind::Torn`]; once a writer has recovered it, it is
/// listed in [`VerifyReport::recovered`].
pub fn verify_journal(
    path: impl AsRef<Path>,
    key: &HostKey,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, AgentError> {
    let path = path.as_ref();
    let mut file = open_shared(path)?;
    let mut chain = Chain::new();
    let mut problems = Vec::new();
    let mut macs: Vec<String> = Vec::new();
    let mut tasks = std::collections::BTreeSet::new();
    let mut recovered = Vec::new();
    let mut torn = None;
    scan(&mut file, key, &mut chain, |seen| match seen {
        Seen::Record(r) => {
            if let super::JournalEvent::Recovered {
                torn_bytes,
                sha256,
                moved_to,
            } = &r.event
            {
                recovered.push(format!(
                    "record {}: a torn last line of {torn_bytes} bytes (sha256 {sha256}) was moved to {moved_to}",
                    r.seq
                ));
            }
            tasks.insert(r.task_id.clone());
            macs.push(r.mac.clone());
        }
        Seen::Problem(p) => {
            problems.push(p);
            macs.push(String::new());
        }
        Seen::Torn { line, bytes } => torn = Some((line, bytes)),
    })
    .map_err(|e| AgentError::Journal {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let records = macs.len() as u64;
    match read_head(path, key) {
        Err(detail) => problems.push(Problem {
            line: 0,
            seq: None,
            kind: ProblemKind::Head,
            detail,
        }),
        Ok(None) => problems.push(Problem {
            line: 0,
            seq: None,
            kind: ProblemKind::Head,
            detail: format!(
                "the head file {} is missing: the writer keeps one from the journal's creation, so the tail may have been cut together with it",
                head_path(path).display()
            ),
        }),
        Ok(Some(head)) => {
            if head.records > records {
                let detail = match (torn, records) {
                    (Some((line, _)), _) => format!(
                        "the record on line {line} is damaged, and the last checkpoint covers it (the head says the journal reached {} records)",
                        head.records
                    ),
                    (None, 0) => format!(
                        "the journal is empty but the head says it had {} records",
                        head.records
                    ),
                    (None, n) => format!(
                        "records {n}..={} are missing at the end (the head says the journal had {} records)",
                        head.records - 1,
                        head.records
                    ),
                };
                problems.push(Problem {
                    line: chain.line + 1,
                    seq: None,
                    kind: ProblemKind::Truncated,
                    detail,
                });
                torn = None;
            } else if head.records > 0
                && macs.get(head.records as usize - 1) != Some(&head.mac)
            {
                problems.push(Problem {
                    line: head.records as usize,
                    seq: Some(head.records - 1),
                    kind: ProblemKind::Head,
                    detail: format!(
                        "record {} differs from the one the last checkpoint recorded",
                        head.records - 1
                    ),
                });
            }
        }
    }
    if let Some((line, bytes)) = torn {
        problems.push(Problem {
            line,
            seq: None,
            kind: ProblemKind::Torn,
            detail: format!(
                "the last line is incomplete ({bytes} bytes, a crash mid-write?); the {records} records before it are intact and the next writer moves it aside"
            ),
        });
    }
    if let Some(a) = anchor {
        let ours = if a.records == 0 {
            Some(GENESIS.to_string())
        } else {
            macs.get(a.records as usize - 1).cloned()
        };
        match ours {
            None => problems.push(Problem {
                line: 0,
                seq: None,
                kind: ProblemKind::Anchor,
                detail: format!(
                    "the anchor taken at {} says the journal had {} records; it has {records}",
                    a.at, a.records
                ),
            }),
            Some(mac) if mac != a.mac => problems.push(Problem {
                line: a.records as usize,
                seq: Some(a.records.saturating_sub(1)),
                kind: ProblemKind::Anchor,
                detail: format!(
                    "record {} differs from the one anchored at {}: the journal was rewritten",
                    a.records.saturating_sub(1),
                    a.at
                ),
            }),
            Some(_) => {}
        }
    }
    problems.sort_by_key(|p| p.line);
    Ok(VerifyReport {
        path: path.to_path_buf(),
        records,
        tasks: tasks.len(),
        problems,
        recovered,
        head: Anchor {
            records,
            mac: chain.last_mac,
            at: jiff::Timestamp::now().to_string(),
        },
    })
}

/// Every intact record in the journal at `path` (damaged lines are
/// skipped; use [`verify_journal`] to find them).
pub fn read_journal(
    path: impl AsRef<Path>,
    key: &HostKey,
) -> Result<Vec<JournalRecord>, AgentError> {
    let path = path.as_ref();
    let mut file = open_shared(path)?;
    let mut records = Vec::new();
    scan(&mut file, key, &mut Chain::new(), |seen| {
        if let Seen::Record(r) = seen {
            records.push(*r);
        }
    })
    .map_err(|e| AgentError::Journal {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(records)
}

/// Follows a journal as it grows: each [`JournalTail::read`] returns the
/// records appended since the previous one, reading only the new bytes.
///
/// Only records whose MAC and place in the chain check out are returned; a
/// damaged or forged line is skipped (use [`verify_journal`] to see why),
/// and a line still being written is left for the next read.
///
/// ```
/// use warden_agent::{HostKey, Journal, JournalEvent, JournalTail};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("journal.jsonl");
/// let key = HostKey::from_bytes([7; 32]);
/// let journal = Journal::open(&path, key.clone())?;
/// let mut tail = JournalTail::new(&path);
/// let skip = |s: &str| JournalEvent::Skip { step_id: s.into(), tool: "probe".into(), reason: "not needed".into() };
/// journal.append("t-1", &skip("s1"))?;
/// assert_eq!(tail.read(&key)?.len(), 1);
/// assert!(tail.read(&key)?.is_empty());
/// journal.append("t-1", &skip("s2"))?;
/// let new = tail.read(&key)?;
/// assert_eq!((new.len(), new[0].seq), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct JournalTail {
    path: PathBuf,
    chain: Chain,
}

impl JournalTail {
    /// A tail of the journal at `path`, at its start: the first read
    /// returns every record already there.
    pub fn new(path: impl AsRef<Path>) -> JournalTail {
        JournalTail {
            path: path.as_ref().to_path_buf(),
            chain: Chain::new(),
        }
    }

    /// How far it has read, in bytes.
    pub fn offset(&self) -> u64 {
        self.chain.offset
    }

    /// The intact records appended since the last read. A journal that
    /// became shorter than what was read (replaced) is read again from its
    /// start.
    pub fn read(&mut self, key: &HostKey) -> Result<Vec<JournalRecord>, AgentError> {
        let mut file = open_shared(&self.path)?;
        let err = |e: std::io::Error| AgentError::Journal {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let len = file.metadata().map_err(err)?.len();
        if len < self.chain.offset {
            self.chain = Chain::new();
        }
        if len == self.chain.offset {
            return Ok(Vec::new());
        }
        let mut records = Vec::new();
        scan(&mut file, key, &mut self.chain, |seen| {
            if let Seen::Record(r) = seen {
                records.push(*r);
            }
        })
        .map_err(err)?;
        Ok(records)
    }
}
