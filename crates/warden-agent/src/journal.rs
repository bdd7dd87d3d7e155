//! The append-only, hash-chained journal.
//!
//! One JSON object per line: `{"seq", "ts", "task", "kind", "prev", "data",
//! "hash"}`. `hash` is the SHA-256 of the exact bytes of the line without
//! its `hash` member (the text up to it, closed with `}`), and `prev` is the
//! previous record's hash (64 zeros for the first). Editing, reordering or
//! deleting a record breaks the chain at that line. Deleting the tail leaves
//! a valid chain, so at the end of each task and after each approval the
//! writer also records the last `{seq, hash}` in a `.head` file beside the
//! journal (write to a temporary file, fsync, rename): a journal shorter
//! than its head was truncated.

use std::io::{BufRead as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::AgentError;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// One journal record, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// Position in the journal, from 0, with no gaps.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub ts: String,
    /// The task it belongs to.
    pub task: String,
    /// `task`, `recall`, `plan`, `plan-decision`, `decision`, `approval`,
    /// `call`, `skip`, `llm`, `stop`, `outcome`.
    pub kind: String,
    /// The previous record's hash.
    pub prev: String,
    /// What happened.
    pub data: serde_json::Value,
    /// This record's hash.
    #[serde(default)]
    pub hash: String,
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts: &'a str,
    task: &'a str,
    kind: &'a str,
    prev: &'a str,
    data: &'a serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// The journal writer. Appends are serialised by a mutex; the file is locked
/// against other processes while it is open.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    inner: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    file: std::fs::File,
    next_seq: u64,
    last_hash: String,
}

impl Journal {
    /// Open `path` for appending, creating it (and its folder) if needed.
    ///
    /// The existing chain is checked up to its end. A torn last line (a
    /// crash in the middle of a write) is moved to `<path>.torn` and the
    /// chain continues from the last whole record; a broken chain is refused
    /// (run `warden journal verify` to see where).
    ///
    /// ```
    /// use warden_agent::{Journal, verify_journal};
    ///
    /// let dir = tempfile::tempdir().map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
    /// let path = dir.path().join("journal.jsonl");
    /// let journal = Journal::open(&path)?;
    /// journal.append("t-1", "task", serde_json::json!({"goal": "probe"}))?;
    /// journal.append("t-1", "outcome", serde_json::json!({"status": "resolved"}))?;
    /// journal.checkpoint()?;
    /// let report = verify_journal(&path)?;
    /// assert!(report.is_ok());
    /// assert_eq!(report.records, 2);
    /// # Ok::<(), warden_agent::AgentError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, AgentError> {
        let path = path.as_ref().to_path_buf();
        let io = |error: std::io::Error| AgentError::Journal {
            path: path.clone(),
            reason: error.to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent).map_err(io)?;
        }
        let file = fs_err::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut file = file.into_parts().0;
        file.try_lock().map_err(|e| AgentError::Journal {
            path: path.clone(),
            reason: format!("the journal is in use by another process ({e})"),
        })?;
        let scan = scan(&path)?;
        if let Some(problem) = scan.problems.iter().find(|p| p.kind != ProblemKind::Torn) {
            return Err(AgentError::Journal {
                path: path.clone(),
                reason: format!(
                    "the journal's chain is broken at line {}: {}; run `warden journal verify` and move the file aside",
                    problem.line, problem.detail
                ),
            });
        }
        if scan.good_len < scan.file_len {
            let torn = fs_err::read(&path).map_err(io)?;
            let torn_path = path.with_extension("jsonl.torn");
            fs_err::write(&torn_path, &torn[scan.good_len as usize..]).map_err(io)?;
            file.set_len(scan.good_len).map_err(io)?;
            file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
            tracing::warn!(journal = %path.display(), torn = %torn_path.display(), "the journal ended in a torn record (a crash mid-write); it was moved aside");
        }
        Ok(Journal {
            path,
            inner: Mutex::new(Writer {
                file,
                next_seq: scan.next_seq,
                last_hash: scan.last_hash,
            }),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record; returns its sequence number. The line reaches the
    /// file in a single `write`.
    pub fn append(
        &self,
        task: &str,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<u64, AgentError> {
        let ts = jiff::Timestamp::now().to_string();
        let mut w = self.inner.lock().map_err(|_| AgentError::Journal {
            path: self.path.clone(),
            reason: "a writer panicked while appending".into(),
        })?;
        let seq = w.next_seq;
        let body = serde_json::to_string(&Body {
            seq,
            ts: &ts,
            task,
            kind,
            prev: &w.last_hash,
            data: &data,
        })
        .map_err(|e| AgentError::Journal {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let mut line = body;
        line.pop();
        line.push_str(",\"hash\":\"");
        line.push_str(&hash);
        line.push_str("\"}\n");
        w.file
            .write_all(line.as_bytes())
            .map_err(|e| AgentError::Journal {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        w.next_seq += 1;
        w.last_hash = hash;
        Ok(seq)
    }

    /// Flush to disk and record the head (`<path>.head`) so truncation of
    /// the tail is detectable.
    pub fn checkpoint(&self) -> Result<(), AgentError> {
        let io = |error: std::io::Error| AgentError::Journal {
            path: self.path.clone(),
            reason: error.to_string(),
        };
        let w = self.inner.lock().map_err(|_| AgentError::Journal {
            path: self.path.clone(),
            reason: "a writer panicked while appending".into(),
        })?;
        w.file.sync_data().map_err(io)?;
        let Some(seq) = w.next_seq.checked_sub(1) else {
            return Ok(());
        };
        let head = serde_json::to_vec(&Head {
            seq,
            hash: w.last_hash.clone(),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        let head_path = head_path(&self.path);
        let tmp = head_path.with_extension("head.tmp");
        {
            let mut f = fs_err::File::create(&tmp).map_err(io)?;
            f.write_all(&head).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        fs_err::rename(&tmp, &head_path).map_err(io)?;
        Ok(())
    }
}

fn head_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    path.with_file_name(name)
}

/// What kind of damage [`verify_journal`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The line is not a journal record.
    Malformed,
    /// The record's content does not match its hash.
    Edited,
    /// The record is out of order.
    Reordered,
    /// Records are missing before this one.
    Deleted,
    /// The last line is incomplete (a crash mid-write); earlier records are fine.
    Torn,
    /// Records at the end are missing (the head says the journal was longer).
    Truncated,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    /// The record's `seq`, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// In words.
    pub detail: String,
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
}

impl VerifyReport {
    /// No problem at all.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Scan {
    records: Vec<JournalRecord>,
    problems: Vec<Problem>,
    next_seq: u64,
    last_hash: String,
    good_len: u64,
    file_len: u64,
}

/// Check the whole chain of the journal at `path`, and its head.
pub fn verify_journal(path: impl AsRef<Path>) -> Result<VerifyReport, AgentError> {
    let path = path.as_ref();
    let mut scan = scan(path)?;
    let head = head_path(path);
    if let Ok(text) = fs_err::read_to_string(&head) {
        match serde_json::from_str::<Head>(&text) {
            Ok(h) => match scan.records.iter().find(|r| r.seq == h.seq) {
                Some(r) if r.hash != h.hash => scan.problems.push(Problem {
                    line: 0,
                    seq: Some(h.seq),
                    kind: ProblemKind::Edited,
                    detail: format!("record {} differs from the one the head recorded", h.seq),
                }),
                Some(_) => {}
                None => {
                    let last = scan.records.last().map(|r| r.seq);
                    scan.problems.push(Problem {
                        line: scan.records.len() + 1,
                        seq: None,
                        kind: ProblemKind::Truncated,
                        detail: match last {
                            Some(last) => format!(
                                "records {}..={} are missing at the end (the head says the journal reached record {})",
                                last + 1,
                                h.seq,
                                h.seq
                            ),
                            None => format!(
                                "the journal is empty but the head says it reached record {}",
                                h.seq
                            ),
                        },
                    });
                }
            },
            Err(e) => scan.problems.push(Problem {
                line: 0,
                seq: None,
                kind: ProblemKind::Malformed,
                detail: format!("the head file {} is malformed: {e}", head.display()),
            }),
        }
    }
    let tasks: std::collections::BTreeSet<&str> =
        scan.records.iter().map(|r| r.task.as_str()).collect();
    Ok(VerifyReport {
        path: path.to_path_buf(),
        records: scan.records.len() as u64,
        tasks: tasks.len(),
        problems: scan.problems,
    })
}

/// Every whole record in the journal at `path` (damaged lines are skipped;
/// use [`verify_journal`] to find them).
pub fn read_journal(path: impl AsRef<Path>) -> Result<Vec<JournalRecord>, AgentError> {
    Ok(scan(path.as_ref())?.records)
}

fn parse_line(line: &str) -> Result<(JournalRecord, bool), String> {
    let record: JournalRecord =
        serde_json::from_str(line).map_err(|e| format!("not a journal record: {e}"))?;
    if line.len() < HASH_SUFFIX_LEN || !line.ends_with("\"}") {
        return Err("the record does not end with its hash".into());
    }
    let cut = line.len() - HASH_SUFFIX_LEN;
    if !line.is_char_boundary(cut) || !line[cut..].starts_with(",\"hash\":\"") {
        return Err("the record does not end with its hash".into());
    }
    let body = format!("{}}}", &line[..cut]);
    let ok = hex::encode(Sha256::digest(body.as_bytes())) == record.hash;
    Ok((record, ok))
}

fn scan(path: &Path) -> Result<Scan, AgentError> {
    let io = |error: std::io::Error| AgentError::Journal {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AgentError::Journal {
                path: path.to_path_buf(),
                reason: "no such journal".into(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let file_len = file.metadata().map_err(io)?.len();
    let mut reader = std::io::BufReader::new(file);
    let mut scan = Scan {
        records: Vec::new(),
        problems: Vec::new(),
        next_seq: 0,
        last_hash: GENESIS.to_string(),
        good_len: 0,
        file_len,
    };
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        offset += n as u64;
        let complete = buf.last() == Some(&b'\n');
        let is_last = offset == file_len;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        let parsed = parse_line(text);
        if is_last && (!complete || parsed.is_err()) {
            scan.problems.push(Problem {
                line: line_no,
                seq: None,
                kind: ProblemKind::Torn,
                detail: format!(
                    "the last line is incomplete ({} bytes, a crash mid-write?); the {} records before it are intact",
                    n,
                    scan.records.len()
                ),
            });
            break;
        }
        let (record, hash_ok) = match parsed {
            Ok(p) => p,
            Err(detail) => {
                scan.problems.push(Problem {
                    line: line_no,
                    seq: None,
                    kind: ProblemKind::Malformed,
                    detail,
                });
                continue;
            }
        };
        let expected = scan.next_seq;
        if !hash_ok {
            scan.problems.push(Problem {
                line: line_no,
                seq: Some(record.seq),
                kind: ProblemKind::Edited,
                detail: format!(
                    "record {} ({}, task {}) was changed after it was written: its hash does not match its content",
                    record.seq, record.kind, record.task
                ),
            });
        } else if record.seq > expected {
            scan.problems.push(Problem {
                line: line_no,
                seq: Some(record.seq),
                kind: ProblemKind::Deleted,
                detail: format!(
                    "records {expected}..={} are missing before record {}",
                    record.seq - 1,
                    record.seq
                ),
            });
        } else if record.seq < expected {
            scan.problems.push(Problem {
                line: line_no,
                seq: Some(record.seq),
                kind: ProblemKind::Reordered,
                detail: format!(
                    "record {} appears after record {}: records were reordered",
                    record.seq,
                    expected.saturating_sub(1)
                ),
            });
        } else if record.prev != scan.last_hash {
            scan.problems.push(Problem {
                line: line_no,
                seq: Some(record.seq),
                kind: ProblemKind::Edited,
                detail: format!(
                    "record {} does not follow the record before it (its `prev` hash differs): a record before it was replaced",
                    record.seq
                ),
            });
        }
        scan.next_seq = record.seq.max(expected) + if record.seq >= expected { 1 } else { 0 };
        scan.last_hash = record.hash.clone();
        scan.good_len = offset;
        scan.records.push(record);
    }
    Ok(scan)
}
