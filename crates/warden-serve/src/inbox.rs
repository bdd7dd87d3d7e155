//! The durable inbox: every accepted alert is committed here (redb, fsync
//! on commit) before the receiver answers 2xx.
//!
//! An item is `pending` until a worker claims it (`running`, committed
//! before the task starts), then `done`. After a crash, `pending` items run
//! as if nothing happened; `running` items are closed as interrupted and
//! never run again, because a step that had already changed something must
//! not change it twice; a human looks at the journal and starts a new task.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// id → item (JSON).
const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// dedup key → id of the latest item with that key.
const KEYS: TableDefinition<&str, &str> = TableDefinition::new("keys");
/// arrival sequence → id, for pending items only (the queue).
const QUEUE: TableDefinition<u64, &str> = TableDefinition::new("queue");
/// `next` → the next arrival sequence.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// Accepted, waiting for a worker.
    Pending,
    /// A worker runs its task.
    Running,
    /// Its task ended (or it was closed without running).
    Done,
}

/// One accepted alert (or goal) and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Also the task id.
    pub id: String,
    /// `alertmanager`, `azure-monitor`, `generic` or `api`.
    pub source: String,
    /// Deduplication key (`am:<fingerprint>`, `az:<alert id>`, …); empty for API goals.
    pub key: String,
    /// The request body as received (one alert), or `{"goal": …}`.
    pub body: serde_json::Value,
    /// Environment as configured or requested (canonicalised by the agent).
    pub env: String,
    /// On whose behalf (API tasks: the token's name).
    pub principal: String,
    /// Arrival time (RFC 3339).
    pub received_at: String,
    /// Where it is.
    pub state: ItemState,
    /// How it ended (`resolved`, `unresolved`, `interrupted`, …), once done.
    #[serde(default)]
    pub status: Option<String>,
    /// Why it ended so, once done.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it ended (seconds since the epoch).
    #[serde(default)]
    pub done_at: Option<i64>,
    /// Repeats of the same alert folded into this item.
    #[serde(default)]
    pub repeats: u32,
}

/// What accepting an alert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A new item, queued.
    New(String),
    /// The same alert is already waiting or running: folded into it.
    Duplicate(String),
    /// The same alert ended within the group window: folded into it.
    Grouped(String),
    /// The queue is full: try again later.
    Full,
}

/// What a `resolved` notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Its item had not started: closed without running.
    Dropped(String),
    /// Its item is running: the caller stops its pending steps.
    Running(String),
    /// Its task already ended: the resolution goes on its timeline.
    Ended(String),
    /// No alert with that key was ever accepted.
    Nothing,
}

/// The inbox file and its tables.
#[derive(Debug)]
pub struct Inbox {
    db: Database,
    path: PathBuf,
    capacity: usize,
}

impl Inbox {
    /// Open (or create) the inbox in `dir`, holding at most `capacity`
    /// pending items.
    pub fn open(dir: &Path, capacity: usize) -> Result<Inbox, ServeError> {
        let path = dir.join("inbox.redb");
        let bad = |reason: String| ServeError::Inbox {
            path: path.clone(),
            reason,
        };
        fs_err::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| bad(e.to_string()))?;
        let inbox = Inbox { db, path, capacity };
        inbox.write(|t| {
            t.open_table(ITEMS)?;
            t.open_table(KEYS)?;
            t.open_table(QUEUE)?;
            t.open_table(META)?;
            Ok(())
        })?;
        Ok(inbox)
    }

    fn err(&self, e: impl std::fmt::Display) -> ServeError {
        ServeError::Inbox {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// One write transaction, committed (fsync) when `f` returns `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, InboxFailure>,
    ) -> Result<T, ServeError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let out = f(&txn).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Commit `item` unless its key is already waiting, running, or ended
    /// within `group_window`; refuse when the queue is full.
    pub fn accept(&self, item: Item, group_window: Duration) -> Result<Accepted, ServeError> {
        let now = jiff::Timestamp::now().as_second();
        let capacity = self.capacity as u64;
        self.write(|t| {
            let mut items = t.open_table(ITEMS)?;
            let mut keys = t.open_table(KEYS)?;
            if !item.key.is_empty() {
                let earlier = keys.get(item.key.as_str())?.map(|v| v.value().to_string());
                if let Some(id) = earlier {
                    let found = items.get(id.as_str())?.map(|v| decode(v.value()));
                    if let Some(mut old) = found.transpose()? {
                        let window = i64::try_from(group_window.as_secs()).unwrap_or(i64::MAX);
                        let outcome = match old.state {
                            ItemState::Pending | ItemState::Running => {
                                Some(Accepted::Duplicate(id.clone()))
                            }
                            ItemState::Done
                                if old.done_at.is_some_and(|d| now.saturating_sub(d) <= window) =>
                            {
                                Some(Accepted::Grouped(id.clone()))
                            }
                            ItemState::Done => None,
                        };
                        if let Some(outcome) = outcome {
                            old.repeats = old.repeats.saturating_add(1);
                            items.insert(id.as_str(), encode(&old)?.as_slice())?;
                            return Ok(outcome);
                        }
                    }
                }
            }
            let mut queue = t.open_table(QUEUE)?;
            if queue.len()? >= capacity {
                return Ok(Accepted::Full);
            }
            if items.get(item.id.as_str())?.is_some() {
                return Err(InboxFailure(format!("item id `{}` is taken", item.id)));
            }
            let mut meta = t.open_table(META)?;
            let seq = meta.get("next")?.map_or(0, |v| v.value());
            meta.insert("next", seq + 1)?;
            queue.insert(seq, item.id.as_str())?;
            if !item.key.is_empty() {
                keys.insert(item.key.as_str(), item.id.as_str())?;
            }
            items.insert(item.id.as_str(), encode(&item)?.as_slice())?;
            Ok(Accepted::New(item.id.clone()))
        })
    }

    /// Take the oldest pending item and mark it running (committed before
    /// it is returned).
    pub fn claim(&self) -> Result<Option<Item>, ServeError> {
        self.write(|t| {
            let mut queue = t.open_table(QUEUE)?;
            let Some((seq, id)) = queue
                .first()?
                .map(|(k, v)| (k.value(), v.value().to_string()))
            else {
                return Ok(None);
            };
            queue.remove(seq)?;
            let mut items = t.open_table(ITEMS)?;
            let found = items.get(id.as_str())?.map(|v| decode(v.value()));
            let Some(mut item) = found.transpose()? else {
                return Err(InboxFailure(format!("queued item `{id}` is missing")));
            };
            item.state = ItemState::Running;
            items.insert(id.as_str(), encode(&item)?.as_slice())?;
            Ok(Some(item))
        })
    }

    /// Mark `id` done with `status` and `reason`.
    pub fn finish(&self, id: &str, status: &str, reason: &str) -> Result<(), ServeError> {
        let now = jiff::Timestamp::now().as_second();
        self.write(|t| {
            let mut items = t.open_table(ITEMS)?;
            let found = items.get(id)?.map(|v| decode(v.value()));
            let Some(mut item) = found.transpose()? else {
                return Err(InboxFailure(format!("no item `{id}`")));
            };
            if item.state == ItemState::Pending {
                let mut queue = t.open_table(QUEUE)?;
                let mut seqs = Vec::new();
                for entry in queue.iter()? {
                    let (k, v) = entry?;
                    if v.value() == id {
                        seqs.push(k.value());
                    }
                }
                for s in seqs {
                    queue.remove(s)?;
                }
            }
            item.state = ItemState::Done;
            item.status = Some(status.into());
            item.reason = Some(reason.into());
            item.done_at = Some(now);
            items.insert(id, encode(&item)?.as_slice())?;
            Ok(())
        })
    }

    /// A `resolved` notification for `key`: a pending item is closed
    /// without running; a running one is reported so its steps stop.
    pub fn resolve(&self, key: &str) -> Result<Resolved, ServeError> {
        let Some(item) = self.by_key(key)? else {
            return Ok(Resolved::Nothing);
        };
        match item.state {
            ItemState::Pending => {
                self.finish(
                    &item.id,
                    "resolved-before-run",
                    "the alert resolved before its task started",
                )?;
                Ok(Resolved::Dropped(item.id))
            }
            ItemState::Running => Ok(Resolved::Running(item.id)),
            ItemState::Done => Ok(Resolved::Ended(item.id)),
        }
    }

    /// The latest item with `key`.
    pub fn by_key(&self, key: &str) -> Result<Option<Item>, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let keys = txn.open_table(KEYS).map_err(|e| self.err(e))?;
        let Some(id) = keys
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        drop(keys);
        drop(txn);
        self.get(&id)
    }

    /// The item `id`.
    pub fn get(&self, id: &str) -> Result<Option<Item>, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let items = txn.open_table(ITEMS).map_err(|e| self.err(e))?;
        let found = items.get(id).map_err(|e| self.err(e))?;
        found
            .map(|v| decode(v.value()).map_err(|e| self.err(e)))
            .transpose()
    }

    /// Every item, oldest id first.
    pub fn items(&self) -> Result<Vec<Item>, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let items = txn.open_table(ITEMS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in items.iter().map_err(|e| self.err(e))? {
            let (_, v) = entry.map_err(|e| self.err(e))?;
            out.push(decode(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Items waiting for a worker.
    pub fn pending(&self) -> Result<u64, ServeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let queue = txn.open_table(QUEUE).map_err(|e| self.err(e))?;
        queue.len().map_err(|e| self.err(e))
    }

    /// Forget items that ended more than `keep` ago (their history stays
    /// in the journal). Returns how many were removed.
    pub fn prune(&self, keep: Duration) -> Result<usize, ServeError> {
        let cutoff = jiff::Timestamp::now()
            .as_second()
            .saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
        self.write(|t| {
            let mut items = t.open_table(ITEMS)?;
            let mut old = Vec::new();
            for entry in items.iter()? {
                let (k, v) = entry?;
                let item = decode(v.value())?;
                if item.state == ItemState::Done && item.done_at.is_some_and(|d| d < cutoff) {
                    old.push((k.value().to_string(), item.key));
                }
            }
            let mut keys = t.open_table(KEYS)?;
            for (id, key) in &old {
                items.remove(id.as_str())?;
                let points_here = keys.get(key.as_str())?.is_some_and(|v| v.value() == id);
                if points_here {
                    keys.remove(key.as_str())?;
                }
            }
            Ok(old.len())
        })
    }

    /// After a crash: every item still marked running is closed as
    /// interrupted (not run again). Returns them.
    pub fn interrupt_running(&self, reason: &str) -> Result<Vec<Item>, ServeError> {
        let running: Vec<Item> = self
            .items()?
            .into_iter()
            .filter(|i| i.state == ItemState::Running)
            .collect();
        for item in &running {
            self.finish(&item.id, "interrupted", reason)?;
        }
        Ok(running)
    }
}

/// A failure inside a transaction, with redb's message.
#[derive(Debug)]
struct InboxFailure(String);

impl std::fmt::Display for InboxFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for InboxFailure {
            fn from(e: $t) -> Self {
                InboxFailure(e.to_string())
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError);

fn encode(item: &Item) -> Result<Vec<u8>, InboxFailure> {
    serde_json::to_vec(item).map_err(|e| InboxFailure(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Item, InboxFailure> {
    serde_json::from_slice(bytes).map_err(|e| InboxFailure(format!("a damaged item: {e}")))
}
