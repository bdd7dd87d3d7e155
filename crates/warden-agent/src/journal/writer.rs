//! The writer: appends keyed records, catching up with other processes that
//! append to the same file, and checkpoints the head.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::event::JournalEvent;
use super::history::{History, RecentMutations};
use super::key::HostKey;
use super::record::encode;
use super::verify::{Chain, Head, Seen, head_path, read_head, scan};
use crate::error::AgentError;

/// The journal writer.
///
/// Several processes may append to one journal: each append takes an
/// exclusive lock on the file, first reads (and checks) whatever other
/// writers appended since, then writes its line in one `write`. So the
/// chain stays one chain, and the history the policy sees (changes in the
/// last hour) counts every process's calls.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    key: HostKey,
    /// A second handle on the same open file: the lock belongs to the open
    /// file, so locking through it leaves the writer free to borrow.
    locker: std::fs::File,
    inner: Mutex<Writer>,
    tap: Tap,
}

/// Hears every record a [`Journal`] appends, as it is appended (a cluster's
/// ledger copies each task's records into its own chain in PostgreSQL).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use warden_agent::{HostKey, Journal, JournalEvent, JournalTap};
///
/// #[derive(Default)]
/// struct Count(Mutex<Vec<String>>);
/// impl JournalTap for Count {
///     fn appended(&self, task_id: &str, _ts: &str, event: &JournalEvent) {
///         self.0.lock().unwrap().push(format!("{task_id} {}", event.kind()));
///     }
/// }
/// let dir = tempfile::tempdir().map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
/// let journal = Journal::open(dir.path().join("j.jsonl"), HostKey::from_bytes([7; 32]))?;
/// let count = Arc::new(Count::default());
/// journal.tap(count.clone());
/// journal.append("t-1", &JournalEvent::Skip { step_id: "s".into(), tool: "p".into(), reason: "r".into() })?;
/// assert_eq!(*count.0.lock().unwrap(), ["t-1 skip"]);
/// # Ok::<(), warden_agent::AgentError>(())
/// ```
pub trait JournalTap: Send + Sync {
    /// `event` was appended for `task_id` at `ts` (RFC 3339, the record's
    /// own timestamp). Called under the journal's lock: keep it short.
    fn appended(&self, task_id: &str, ts: &str, event: &JournalEvent);
}

/// The journal's tap, if one is set.
#[derive(Default)]
struct Tap(std::sync::OnceLock<std::sync::Arc<dyn JournalTap>>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Tap(set)"
        } else {
            "Tap(none)"
        })
    }
}

#[derive(Debug)]
struct Writer {
    file: std::fs::File,
    chain: Chain,
    history: History,
}

/// Releases the file lock when dropped.
struct Locked<'a>(&'a std::fs::File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Journal {
    /// Open `path` for appending under `key`, creating it (and its folder)
    /// if needed.
    ///
    /// The existing chain is checked to its end. A torn last line after the
    /// last checkpoint (a crash mid-write) is moved to `<path>.torn`, and a
    /// `recovered` record says so; a broken chain, a missing or forged head,
    /// or damage at or before the last checkpoint is refused (run `warden
    /// journal verify` to see where).
    ///
    /// ```
    /// use warden_agent::{HostKey, Journal, JournalEvent, verify_journal};
    ///
    /// let dir = tempfile::tempdir().map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
    /// let path = dir.path().join("journal.jsonl");
    /// let key = HostKey::from_bytes([7; 32]);
    /// let journal = Journal::open(&path, key.clone())?;
    /// journal.append("t-1", &JournalEvent::Skip { step_id: "s1".into(), tool: "probe".into(), reason: "not needed".into() })?;
    /// journal.checkpoint()?;
    /// let report = verify_journal(&path, &key, None)?;
    /// assert!(report.is_ok(), "{:?}", report.problems);
    /// assert_eq!(report.records, 1);
    /// // Without the key, nothing verifies.
    /// let other = HostKey::from_bytes([8; 32]);
    /// assert!(!verify_journal(&path, &other, None)?.is_ok());
    /// # Ok::<(), warden_agent::AgentError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, key: HostKey) -> Result<Journal, AgentError> {
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
            .map_err(io)?
            .into_parts()
            .0;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(AgentError::Journal {
                path: path.clone(),
                reason: "not a regular file".into(),
            });
        }
        let locker = file.try_clone().map_err(io)?;
        let journal = Journal {
            path: path.clone(),
            key,
            locker,
            inner: Mutex::new(Writer {
                file,
                chain: Chain::new(),
                history: History::default(),
            }),
            tap: Tap::default(),
        };
        {
            let mut w = journal.writer()?;
            let _lock = journal.lock()?;
            let head =
                read_head(&journal.path, &journal.key).map_err(|reason| journal.err(reason))?;
            let len = w.file.metadata().map_err(io)?.len();
            match &head {
                None if len == 0 => journal.write_head(&w)?,
                None => {
                    return Err(journal.err(format!(
                        "its head file {} is missing (deleted together with the tail?); run `warden journal verify` and move the journal aside",
                        head_path(&journal.path).display()
                    )));
                }
                Some(_) => {}
            }
            journal.catch_up_against(&mut w, head.as_ref())?;
            if let Some(h) = head.filter(|h| h.records > w.chain.next_seq) {
                return Err(journal.err(format!(
                    "the journal has {} records but its last checkpoint says {}: its tail was cut; run `warden journal verify`",
                    w.chain.next_seq, h.records
                )));
            }
        }
        Ok(journal)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key records are keyed with.
    pub fn key(&self) -> &HostKey {
        &self.key
    }

    fn err(&self, reason: String) -> AgentError {
        AgentError::Journal {
            path: self.path.clone(),
            reason,
        }
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, AgentError> {
        self.inner
            .lock()
            .map_err(|_| self.err("a writer panicked while appending".into()))
    }

    fn lock(&self) -> Result<Locked<'_>, AgentError> {
        self.locker
            .lock()
            .map_err(|e| self.err(format!("cannot lock the journal: {e}")))?;
        Ok(Locked(&self.locker))
    }

    /// Read what other writers appended since our last look.
    fn catch_up(&self, w: &mut Writer) -> Result<(), AgentError> {
        self.catch_up_against(w, None)
    }

    /// Like `catch_up`; with `head` (on open, reading from the first
    /// record), also check that the record the head checkpointed is the one
    /// in the file, as `verify_journal` does: an authentic chain in place of
    /// the checkpointed one (another journal under the same host key) must
    /// not be appended to, or the next checkpoint would hide the swap.
    fn catch_up_against(&self, w: &mut Writer, head: Option<&Head>) -> Result<(), AgentError> {
        let Writer {
            file,
            chain,
            history,
        } = w;
        let len = file.metadata().map_err(|e| self.err(e.to_string()))?.len();
        if len < chain.offset {
            return Err(self.err(format!(
                "the journal shrank from {} to {len} bytes while open: it was truncated or replaced",
                chain.offset
            )));
        }
        if len == chain.offset {
            return Ok(());
        }
        let mut problem = None;
        let mut torn = None;
        let at_checkpoint = head.and_then(|h| Some((h.records.checked_sub(1)?, h.mac.as_str())));
        let mut mac_at_checkpoint = None;
        scan(file, &self.key, chain, |seen| match seen {
            Seen::Record(r) => {
                if at_checkpoint.is_some_and(|(seq, _)| seq == r.seq) {
                    mac_at_checkpoint = Some(r.mac.clone());
                }
                history.observe(&r);
            }
            Seen::Problem(p) => {
                problem.get_or_insert(p);
            }
            Seen::Torn { line, bytes } => torn = Some((line, bytes)),
        })
        .map_err(|e| self.err(e.to_string()))?;
        if let Some(p) = problem {
            return Err(self.err(format!(
                "the journal's chain is broken at line {}: {}; run `warden journal verify` and move the file aside",
                p.line, p.detail
            )));
        }
        if let Some((seq, mac)) = at_checkpoint
            && seq < chain.next_seq
            && mac_at_checkpoint.as_deref() != Some(mac)
        {
            return Err(self.err(format!(
                "record {seq} differs from the one the last checkpoint recorded: the journal was replaced; run `warden journal verify`"
            )));
        }
        if let Some((line, bytes)) = torn {
            let head = read_head(&self.path, &self.key).map_err(|r| self.err(r))?;
            let checkpointed = head.map_or(0, |h| h.records);
            if chain.next_seq < checkpointed {
                return Err(self.err(format!(
                    "the record on line {line} is damaged and the last checkpoint covers it ({checkpointed} records); run `warden journal verify`"
                )));
            }
            self.recover_torn(w, bytes)?;
        }
        Ok(())
    }

    /// Move a torn tail aside and journal that it was.
    fn recover_torn(&self, w: &mut Writer, bytes: u64) -> Result<(), AgentError> {
        let io = |e: std::io::Error| self.err(e.to_string());
        // Only the tail: a torn line is shorter than a record may be, so
        // this stays bounded however long the journal is.
        let mut tail = Vec::new();
        {
            use std::io::{Read as _, Seek as _};
            let mut f = fs_err::File::open(&self.path).map_err(io)?;
            f.seek(std::io::SeekFrom::Start(w.chain.offset))
                .map_err(io)?;
            f.take(super::verify::MAX_LINE as u64 + 1)
                .read_to_end(&mut tail)
                .map_err(io)?;
        }
        let tail = tail.as_slice();
        let torn_path = self.path.with_extension("jsonl.torn");
        {
            let mut f = fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&torn_path)
                .map_err(io)?;
            f.write_all(tail).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        w.file.set_len(w.chain.offset).map_err(io)?;
        tracing::warn!(journal = %self.path.display(), torn = %torn_path.display(), bytes, "the journal ended in a torn record (a crash mid-write); it was moved aside");
        let event = JournalEvent::Recovered {
            torn_bytes: tail.len() as u64,
            sha256: hex::encode(Sha256::digest(tail)),
            moved_to: torn_path.display().to_string(),
        };
        self.write(w, "-", &event)?;
        Ok(())
    }

    fn write(
        &self,
        w: &mut Writer,
        task_id: &str,
        event: &JournalEvent,
    ) -> Result<u64, AgentError> {
        let ts = jiff::Timestamp::now().to_string();
        let seq = w.chain.next_seq;
        let (line, mac) = encode(&self.key, seq, &ts, task_id, event, &w.chain.last_mac)
            .map_err(|e| self.err(e.to_string()))?;
        w.file
            .write_all(line.as_bytes())
            .map_err(|e| self.err(e.to_string()))?;
        w.chain.next_seq += 1;
        w.chain.last_mac = mac.clone();
        w.chain.offset += line.len() as u64;
        w.chain.line += 1;
        w.history.observe_parts(&ts, task_id, event);
        if let Some(tap) = self.tap.0.get() {
            tap.appended(task_id, &ts, event);
        }
        Ok(seq)
    }

    /// Hand every record appended from now on to `tap` as well. One tap per
    /// journal: a second call is ignored and returns false.
    pub fn tap(&self, tap: std::sync::Arc<dyn JournalTap>) -> bool {
        self.tap.0.set(tap).is_ok()
    }

    /// Append one event for `task_id`; returns its sequence number.
    pub fn append(&self, task_id: &str, event: &JournalEvent) -> Result<u64, AgentError> {
        let mut w = self.writer()?;
        let w = &mut *w;
        let _lock = self.lock()?;
        self.catch_up(w)?;
        self.write(w, task_id, event)
    }

    /// Decide and record in one step: under the journal's lock, read the
    /// changes made in the last hour by `agent`, by `principal` and in `env`
    /// (every process's), let `decide` make the event from them, and append
    /// it. Returns what `decide` returned beside the event.
    pub fn decide<T>(
        &self,
        task_id: &str,
        (agent, principal, env): (&str, &str, &str),
        decide: impl FnOnce(RecentMutations) -> (JournalEvent, T),
    ) -> Result<T, AgentError> {
        let mut w = self.writer()?;
        let w = &mut *w;
        let _lock = self.lock()?;
        self.catch_up(w)?;
        let recent = w
            .history
            .recent(agent, principal, env, jiff::Timestamp::now());
        let (event, out) = decide(recent);
        self.write(w, task_id, &event)?;
        Ok(out)
    }

    /// Changes made in the last hour by `agent`, by `principal` and in
    /// `env`, counted from the journal (every process that appends to it).
    pub fn recent_mutations(
        &self,
        agent: &str,
        principal: &str,
        env: &str,
    ) -> Result<RecentMutations, AgentError> {
        let mut w = self.writer()?;
        let w = &mut *w;
        {
            let _lock = self.lock()?;
            self.catch_up(w)?;
        }
        Ok(w.history
            .recent(agent, principal, env, jiff::Timestamp::now()))
    }

    fn write_head(&self, w: &Writer) -> Result<(), AgentError> {
        let io = |error: std::io::Error| self.err(error.to_string());
        let head = Head::new(
            &self.key,
            w.chain.next_seq,
            &w.chain.last_mac,
            jiff::Timestamp::now().to_string(),
        );
        let text = serde_json::to_vec(&head).map_err(|e| self.err(e.to_string()))?;
        let head_path = head_path(&self.path);
        let tmp = head_path.with_extension("head.tmp");
        {
            let mut f = fs_err::File::create(&tmp).map_err(io)?;
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        fs_err::rename(&tmp, &head_path).map_err(io)?;
        Ok(())
    }

    /// Flush to disk and record the keyed head (`<path>.head`), so a cut
    /// tail, or damage up to here, is detectable.
    pub fn checkpoint(&self) -> Result<(), AgentError> {
        let mut w = self.writer()?;
        let w = &mut *w;
        let _lock = self.lock()?;
        self.catch_up(w)?;
        w.file.sync_data().map_err(|e| self.err(e.to_string()))?;
        self.write_head(w)
    }
}
