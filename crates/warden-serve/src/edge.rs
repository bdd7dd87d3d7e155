//! An edge box's journal and resolved incidents, forwarded to the hub
//! (`[edge]`); the hub's end is `edge_hub`.
//!
//! The journal file is the durable queue. The journal's tap only rings a
//! bell; the forwarder reads the journal from where it stopped, seals each
//! record onto its task's *edge chain* (`seal_edge_record`: one keyed chain
//! per task, as the hub stores them) and stores it in the edge's JetStream
//! buffer (`EdgeLink::publish_record`), then commits its progress to
//! `<data_dir>/edge.redb`: the journal position and each task's chain head
//! (next sequence, last MAC). So nothing is lost when NATS is down or the
//! buffer is full (the records wait in the journal), and a restarted
//! service continues each task's chain where it stopped instead of reusing
//! sequences. Sealing is deterministic (the journal's own timestamp and
//! event), so a record published again after a crash between the publish
//! and the commit is byte for byte the same: the edge's and the hub's
//! `Nats-Msg-Id` window drop it, and past that window the hub's sink finds
//! the same line stored and stores nothing.
//!
//! Why not seal in the tap and hand the record over a channel: the tap runs
//! under the journal's lock and cannot wait, so a full channel or a crash
//! would lose records, and the chain heads would still need a durable
//! home. The edge's own `WARDEN_EDGE` stream cannot be that home either:
//! `trim_forwarded` purges it.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::OutcomeStatus;
use warden::journal::{HostKey, JournalEvent, JournalRecord, JournalTail, JournalTap};
use warden_cluster::{BusError, EdgeLink, Published, Security};

use crate::config::EdgeSection;
use crate::error::ServeError;

/// task → (next sequence of its edge chain, the chain's last MAC).
const HEADS: TableDefinition<&str, (u64, &str)> = TableDefinition::new("heads");
/// `cursor` → [`Cursor`] (JSON).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Journal records sealed and published per progress commit.
const BATCH: usize = 256;
/// Chain heads kept in memory before the cache is emptied (redb has them).
const MAX_CACHED_HEADS: usize = 10_000;

/// Rings the forwarder's bell on every journal append.
struct Bell(Arc<Notify>);

impl JournalTap for Bell {
    fn appended(&self, _task_id: &str, _ts: &str, _event: &JournalEvent) {
        self.0.notify_one();
    }
}

/// The tap for the agent's journal: it only wakes the forwarder.
pub(crate) fn tap(bell: Arc<Notify>) -> Arc<dyn JournalTap> {
    Arc::new(Bell(bell))
}

/// Where forwarding stands in the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The journal sequence of the next record to forward.
    next: u64,
    /// The MAC of the journal record before it (empty at the start): a
    /// journal whose record `next - 1` differs is another journal.
    mac: String,
}

/// The forwarder's durable progress: `<data_dir>/edge.redb`.
pub(crate) struct Progress {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Open (or create) the progress file in `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> Result<Progress, ServeError> {
        let path = data_dir.join("edge.redb");
        let bad = |reason: String| ServeError::Edge {
            path: path.clone(),
            reason,
        };
        fs_err::create_dir_all(data_dir).map_err(|e| bad(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| bad(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| bad(e.to_string()))?;
        txn.open_table(HEADS).map_err(|e| bad(e.to_string()))?;
        txn.open_table(META).map_err(|e| bad(e.to_string()))?;
        txn.commit().map_err(|e| bad(e.to_string()))?;
        Ok(Progress {
            db: Arc::new(db),
            path,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> ServeError {
        ServeError::Edge {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn cursor(&self) -> Result<Cursor, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        match meta.get("cursor").map_err(|e| self.err(e))? {
            Some(v) => serde_json::from_slice(v.value()).map_err(|e| self.err(e)),
            None => Ok(Cursor::default()),
        }
    }

    fn head(&self, task: &str) -> Result<Option<(u64, String)>, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let heads = txn.open_table(HEADS).map_err(|e| self.err(e))?;
        Ok(heads.get(task).map_err(|e| self.err(e))?.map(|v| {
            let (seq, mac) = v.value();
            (seq, mac.to_string())
        }))
    }

    /// Commit the heads of `touched` tasks and the cursor, in one
    /// transaction (fsync), off the async threads.
    async fn commit(
        &self,
        touched: Vec<(String, (u64, String))>,
        cursor: &Cursor,
    ) -> Result<(), ServeError> {
        let db = self.db.clone();
        let cursor = serde_json::to_vec(cursor).map_err(|e| self.err(e))?;
        let done = tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut heads = txn.open_table(HEADS)?;
                for (task, (seq, mac)) in &touched {
                    heads.insert(task.as_str(), (*seq, mac.as_str()))?;
                }
                let mut meta = txn.open_table(META)?;
                meta.insert("cursor", cursor.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| self.err(e))?;
        done.map_err(|e| self.err(e))
    }
}

/// What a task's first record said, kept until its outcome to describe
/// the incident it resolved.
struct Started {
    goal: String,
    source: String,
    env: String,
    alert: Option<serde_json::Value>,
}

/// The edge record of an incident task `task` resolved: id and payload.
/// Built from the journal only, so the same every time.
fn incident_record(
    task: &str,
    started: &Started,
    outcome: &JournalRecord,
) -> Option<(String, serde_json::Value)> {
    let JournalEvent::Outcome(o) = &outcome.event else {
        return None;
    };
    if o.status != OutcomeStatus::Resolved {
        return None;
    }
    let alert = started.alert.as_ref()?;
    let payload = serde_json::json!({
        "incident": {
            "id": format!("warden:{task}"),
            "task_id": task,
            "title": started.goal,
            "source": started.source,
            "env": started.env,
            "alert": alert,
            "resolution": format!("{} (planned by {})", o.summary, o.planner),
            "steps": o.steps,
            "resolved_at": outcome.ts,
        }
    });
    Some((format!("incident:{task}"), payload))
}

/// The forwarder's state between two rounds.
struct Forwarder {
    key: HostKey,
    progress: Progress,
    cursor: Cursor,
    /// Chain heads read or written since the cache was last emptied.
    heads: HashMap<String, (u64, String)>,
    /// Tasks started and not ended yet (for their incident).
    started: HashMap<String, Started>,
    /// Journal records read and not forwarded yet, in journal order.
    pending: VecDeque<JournalRecord>,
}

impl Forwarder {
    /// Take records just read from the journal: remember task starts, and
    /// queue those past the cursor.
    fn take(&mut self, records: Vec<JournalRecord>, journal: &Path) {
        if records.first().is_some_and(|r| r.seq == 0) && self.cursor.next > 0 {
            // Read from the start (the first read, or a replaced journal):
            // is it the journal forwarded so far?
            let last = self.cursor.next - 1;
            let same = records
                .iter()
                .find(|r| r.seq == last)
                .is_some_and(|r| r.mac == self.cursor.mac);
            if !same {
                tracing::warn!(journal = %journal.display(), forwarded = self.cursor.next, "the journal is not the one forwarded so far (replaced?): forwarding it from its start; each task's edge chain continues");
                self.cursor = Cursor::default();
                self.pending.clear();
            }
        }
        for r in records {
            match &r.event {
                JournalEvent::Task(t) => {
                    self.started.insert(
                        r.task_id.clone(),
                        Started {
                            goal: t.goal.clone(),
                            source: t.source.clone(),
                            env: t.env.clone(),
                            alert: t.alert.clone(),
                        },
                    );
                }
                // A stopped task (interrupted at a restart) resolves nothing.
                JournalEvent::Outcome(_) | JournalEvent::Stop { .. }
                    if r.seq < self.cursor.next =>
                {
                    self.started.remove(&r.task_id);
                }
                _ => {}
            }
            let queued = self.pending.back().map(|b| b.seq);
            if r.seq >= self.cursor.next && queued.is_none_or(|b| r.seq > b) {
                self.pending.push_back(r);
            }
        }
    }

    fn head(&mut self, task: &str) -> Result<(u64, String), ServeError> {
        if let Some(h) = self.heads.get(task) {
            return Ok(h.clone());
        }
        let h = self
            .progress
            .head(task)?
            .unwrap_or_else(|| (0, JournalRecord::GENESIS.to_string()));
        self.heads.insert(task.to_string(), h.clone());
        Ok(h)
    }

    /// Forward up to [`BATCH`] pending records, then commit the progress.
    /// Returns how many were forwarded; an error stops the batch (what
    /// was forwarded before it is committed).
    async fn round(&mut self, link: &EdgeLink) -> Result<usize, BusError> {
        let mut touched: HashMap<String, (u64, String)> = HashMap::new();
        let mut forwarded = 0;
        let mut failure = None;
        while forwarded < BATCH {
            let Some(rec) = self.pending.front().cloned() else {
                break;
            };
            let task = rec.task_id.clone();
            let (seq, prev) = match self.head(&task) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the edge chain heads");
                    break;
                }
            };
            let mut mac = prev;
            let sealed = warden_cluster::seal_edge_record(
                &self.key, &task, seq, &rec.ts, &rec.event, &mut mac,
            );
            let outcome = match sealed {
                Ok((id, payload)) => link.publish_record(&id, &payload).await.map(|_| true),
                Err(e) => {
                    tracing::error!(task = %task, journal_seq = rec.seq, error = %e, "cannot seal a journal record for the hub; it stays in the local journal only");
                    Ok(false)
                }
            };
            let sealed = match outcome {
                Ok(sealed) => sealed,
                Err(e @ (BusError::TooBig { .. } | BusError::Malformed { .. })) => {
                    tracing::error!(task = %task, journal_seq = rec.seq, error = %e, "the hub cannot take this journal record; it stays in the local journal only");
                    false
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if let (true, JournalEvent::Outcome(_)) = (sealed, &rec.event) {
                let incident = self
                    .started
                    .get(&task)
                    .and_then(|s| incident_record(&task, s, &rec));
                if let Some((id, payload)) = incident {
                    match link.publish_record(&id, &payload).await {
                        Ok(Published::Stored(_) | Published::Duplicate) => {}
                        Err(e @ (BusError::TooBig { .. } | BusError::Malformed { .. })) => {
                            tracing::error!(task = %task, error = %e, "the hub cannot take this incident");
                        }
                        Err(e) => {
                            // The journal record goes again next round (a
                            // duplicate the buffer drops), then this.
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            if sealed {
                let head = (seq + 1, mac);
                self.heads.insert(task.clone(), head.clone());
                touched.insert(task.clone(), head);
            }
            if matches!(
                rec.event,
                JournalEvent::Outcome(_) | JournalEvent::Stop { .. }
            ) {
                self.started.remove(&task);
            }
            self.cursor = Cursor {
                next: rec.seq + 1,
                mac: rec.mac.clone(),
            };
            self.pending.pop_front();
            forwarded += 1;
        }
        if forwarded > 0 {
            let touched = touched.into_iter().collect();
            if let Err(e) = self.progress.commit(touched, &self.cursor).await {
                // The heads in memory are right; the next commit writes
                // them. A crash before it publishes the same records again.
                tracing::error!(error = %e, "cannot commit the edge forwarding progress");
            }
        }
        if self.heads.len() > MAX_CACHED_HEADS {
            self.heads.clear();
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(forwarded),
        }
    }
}

/// Read what the journal gained since the last read, off the async threads.
/// A read that panicked loses the tail: the next one starts over (records
/// already taken are not taken twice).
async fn read_tail(
    tail: JournalTail,
    key: HostKey,
) -> (Option<JournalTail>, Result<Vec<JournalRecord>, String>) {
    let joined = tokio::task::spawn_blocking(move || {
        let mut tail = tail;
        let read = tail.read(&key).map_err(|e| e.to_string());
        (tail, read)
    })
    .await;
    match joined {
        Ok((tail, read)) => (Some(tail), read),
        Err(e) => (None, Err(format!("reading the journal failed: {e}"))),
    }
}

/// What the edge forwarder needs, made at bind time (so a bad
/// `[edge]` or an unusable progress file stops the start).
pub(crate) struct Edge {
    pub section: EdgeSection,
    pub security: Security,
    pub progress: Progress,
    /// Rung by the journal's tap.
    pub bell: Arc<Notify>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("domain", &self.section.domain)
            .finish_non_exhaustive()
    }
}

impl Edge {
    pub(crate) fn open(
        section: &EdgeSection,
        base: &Path,
        data_dir: &Path,
    ) -> Result<Edge, ServeError> {
        let security = section.security(base)?;
        security
            .check_nats(&section.nats)
            .map_err(|e| ServeError::Config {
                reason: format!("[edge] nats: {e}"),
            })?;
        Ok(Edge {
            section: section.clone(),
            security,
            progress: Progress::open(data_dir)?,
            bell: Arc::new(Notify::new()),
        })
    }
}

/// Forward the journal at `journal` (sealed under `key`) to the hub until
/// `stop` fires, then once more (what the last tasks wrote). Freed the
/// buffer of what the hub holds every `trim_every`.
pub(crate) async fn forward(edge: Edge, journal: PathBuf, key: HostKey, stop: CancellationToken) {
    let Edge {
        section,
        security,
        progress,
        bell,
    } = edge;
    let cursor = match progress.cursor() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the edge forwarder cannot start");
            return;
        }
    };
    let max_bytes = i64::try_from(section.buffer).unwrap_or(i64::MAX);
    let mut fwd = Forwarder {
        key: key.clone(),
        progress,
        cursor,
        heads: HashMap::new(),
        started: HashMap::new(),
        pending: VecDeque::new(),
    };
    let mut tail = Some(JournalTail::new(&journal));
    let mut link: Option<EdgeLink> = None;
    let mut pause = Duration::from_secs(1);
    let mut next_trim = Instant::now() + section.trim_every;
    tracing::info!(domain = %section.domain, nats = %section.nats, "forwarding the journal to the hub through the edge's nats-server");
    loop {
        let stopping = stop.is_cancelled();
        let mut failed = false;
        {
            let t = tail.take().unwrap_or_else(|| JournalTail::new(&journal));
            let (t, read) = read_tail(t, key.clone()).await;
            tail = t;
            match read {
                Ok(records) => fwd.take(records, &journal),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the journal to forward it");
                    failed = true;
                }
            }
        }
        if link.is_none() && (!fwd.pending.is_empty() || Instant::now() >= next_trim) {
            match EdgeLink::connect_with(&section.nats, &section.domain, max_bytes, &security).await
            {
                Ok(l) => link = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "[edge] nats: not reachable; the journal keeps the records");
                    failed = true;
                }
            }
        }
        if let Some(l) = &link {
            while !fwd.pending.is_empty() {
                match fwd.round(l).await {
                    Ok(n) => tracing::debug!(records = n, "forwarded to the edge buffer"),
                    Err(e) => {
                        tracing::warn!(error = %e, pending = fwd.pending.len(), "forwarding to the edge buffer failed; retrying");
                        failed = true;
                        break;
                    }
                }
            }
            if Instant::now() >= next_trim {
                next_trim = Instant::now() + section.trim_every;
                match l.trim_forwarded(&section.hub_domain).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(records = n, "freed the edge buffer of what the hub holds")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot free the edge buffer"),
                }
            }
        }
        if stopping {
            return;
        }
        let wait = if failed {
            let p = pause;
            pause = (pause * 2).min(Duration::from_secs(30));
            p
        } else {
            pause = Duration::from_secs(1);
            Duration::from_secs(1)
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = bell.notified(), if !failed => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_record_is_made_only_for_a_resolved_alert() {
        let started = Started {
            goal: "heal checkout".into(),
            source: "alertmanager".into(),
            env: "dev".into(),
            alert: Some(serde_json::json!({"name": "ServiceDown"})),
        };
        let outcome = |status| JournalRecord {
            seq: 9,
            ts: "2026-12-05T14:00:00Z".into(),
            task_id: "t-1".into(),
            event: JournalEvent::Outcome(warden::journal::OutcomeReached {
                status,
                reason: "done".into(),
                summary: "restarted".into(),
                planner: "runbook".into(),
                steps: 3,
                tokens: 0,
                cost_usd: None,
                duration_ms: 10,
            }),
            prev: JournalRecord::GENESIS.into(),
            mac: JournalRecord::GENESIS.into(),
        };
        let (id, payload) =
            incident_record("t-1", &started, &outcome(OutcomeStatus::Resolved)).unwrap();
        assert_eq!(id, "incident:t-1");
        assert_eq!(payload["incident"]["id"], "warden:t-1");
        assert_eq!(
            payload["incident"]["resolution"],
            "restarted (planned by runbook)"
        );
        assert!(incident_record("t-1", &started, &outcome(OutcomeStatus::Unresolved)).is_none());
        let goal_only = Started {
            alert: None,
            ..started
        };
        assert!(incident_record("t-1", &goal_only, &outcome(OutcomeStatus::Resolved)).is_none());
    }
}
