//! The durable outbox: requests to secret destinations that failed before
//! a connection was made, kept on disk and delivered later.
//!
//! One JSON file per entry (`<id>.json`), written to a temporary file,
//! synced and renamed into place, then the directory synced: an entry is
//! either whole or absent after a crash. Delivery ([`Sandbox::deliver_outbox`](crate::Sandbox::deliver_outbox))
//! removes an entry only after the receiver answered 2xx, so a crash
//! between the answer and the removal sends it again with the same
//! `Idempotency-Key`: delivery is at least once, and exactly once for a
//! receiver that drops a key it has already seen.

mod deliver;
mod queue;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use warden_types::Effect;

pub use deliver::{Delivery, DeliveryOutcome, DeliveryPass, GateFor};
pub(crate) use queue::{QueuedBody, buffer_body, connection_phase, queued_response};

use crate::SandboxError;

/// Largest request body the outbox keeps; a larger request is sent as
/// before and fails as before when the destination cannot be reached.
pub const OUTBOX_BODY_LIMIT: usize = 256 << 10;

/// Request headers an entry keeps (the rest, `host` and `content-length`
/// among them, are set again when it is delivered).
pub(crate) const KEPT_HEADERS: [&str; 4] =
    ["content-type", "content-encoding", "accept", "user-agent"];

/// Backoff and expiry of outbox entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    pub base: Duration,
    pub cap: Duration,
    pub max_age: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl Retry {
    /// The wait after `attempts` failed attempts: `base * 2^(attempts-1)`,
    /// capped, then drawn from its upper half (jitter) so that entries
    /// queued together do not retry together.
    pub(crate) fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let half = full / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        half + jitter
    }
}

/// One queued request, as stored (`<dir>/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// 128 random bits, hex; sent as the `Idempotency-Key` on every attempt.
    pub id: String,
    /// The secret the request goes to (never its URL).
    pub secret: String,
    /// Upper-case method.
    pub method: String,
    /// The kept headers (`content-type`, `content-encoding`, `accept`,
    /// `user-agent`), names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    #[serde(with = "body_base64")]
    pub body: Vec<u8>,
    /// The plugin that sent it.
    pub plugin: String,
    /// Its version.
    pub plugin_version: String,
    /// Its declared effect.
    pub effect: Effect,
    /// The task of the call that sent it.
    pub task_id: String,
    /// The step of that call.
    pub step_id: String,
    /// When it was queued, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Not delivered before this, milliseconds since the Unix epoch.
    pub next_at_ms: u64,
    /// Why the last attempt (or the original call) failed.
    pub last_error: String,
}

mod body_base64 {
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(body))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A directory of queued requests.
///
/// ```
/// use warden_sandbox::Outbox;
///
/// let dir = tempfile::tempdir()?;
/// let outbox = Outbox::open(dir.path().join("outbox"))?;
/// assert!(outbox.list()?.is_empty());
/// assert!(!outbox.dir().exists(), "created when the first entry is queued");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// The outbox in `dir`; the directory is created when the first
    /// entry is queued.
    pub fn open(dir: impl AsRef<Path>) -> Result<Outbox, SandboxError> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(SandboxError::Config {
                message: format!("outbox {}: not a directory", dir.display()),
            });
        }
        Ok(Outbox { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> SandboxError {
        let path = path.to_path_buf();
        move |error| SandboxError::Io {
            path: path.clone(),
            error,
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every entry, oldest first. A file that does not parse is skipped
    /// with a warning (it is left for an operator to look at).
    pub fn list(&self) -> Result<Vec<OutboxEntry>, SandboxError> {
        let mut entries = Vec::new();
        if !self.dir.exists() {
            return Ok(entries);
        }
        for item in fs_err::read_dir(&self.dir).map_err(self.io(&self.dir))? {
            let item = item.map_err(self.io(&self.dir))?;
            let path = item.path();
            let name = item.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let text = match fs_err::read(&path) {
                Ok(t) => t,
                // Delivered (removed) by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(&path)(e)),
            };
            match serde_json::from_slice::<OutboxEntry>(&text) {
                Ok(entry) if entry.id == id => entries.push(entry),
                Ok(_) => {
                    tracing::warn!(file = %path.display(), "outbox entry's id does not match its file name; skipped")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable outbox entry; skipped")
                }
            }
        }
        entries.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(entries)
    }

    /// Write `entry` durably: temporary file, fsync, rename, fsync of the
    /// directory.
    pub(crate) fn put(&self, entry: &OutboxEntry) -> Result<(), SandboxError> {
        let path = self.path_of(&entry.id);
        let tmp = self.dir.join(format!(".{}.tmp", entry.id));
        fs_err::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let text = serde_json::to_vec(entry).map_err(|e| SandboxError::Config {
            message: format!("encoding outbox entry {}: {e}", entry.id),
        })?;
        {
            let mut f = fs_err::File::create(&tmp).map_err(self.io(&tmp))?;
            f.write_all(&text).map_err(self.io(&tmp))?;
            f.sync_all().map_err(self.io(&tmp))?;
        }
        fs_err::rename(&tmp, &path).map_err(self.io(&path))?;
        self.sync_dir()
    }

    /// Remove entry `id` (delivered or dropped); absent is fine.
    pub(crate) fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let path = self.path_of(id);
        match fs_err::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    fn sync_dir(&self) -> Result<(), SandboxError> {
        #[cfg(unix)]
        fs_err::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(&self.dir))?;
        Ok(())
    }

    /// Hold the outbox for one delivery pass; `None` when another process
    /// (or pass) holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<std::fs::File>, SandboxError> {
        if !self.dir.exists() {
            // Nothing was ever queued here.
            return Ok(None);
        }
        let path = self.dir.join(".deliver.lock");
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io(&path))?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(self.io(&path)(e)),
        }
    }
}

/// A fresh entry id: 128 random bits, hex.
pub(crate) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let r = Retry {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = r.delay(1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let third = r.delay(3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            let late = r.delay(40);
            assert!(late >= Duration::from_secs(5) && late <= Duration::from_secs(10));
        }
    }

    #[test]
    fn an_entry_survives_a_round_trip_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let entry = OutboxEntry {
            id: new_id(),
            secret: "ops".into(),
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![0, 159, 146, 150],
            plugin: "notify".into(),
            plugin_version: "0.1.0".into(),
            effect: Effect::Mutating,
            task_id: "t-1".into(),
            step_id: "s-1".into(),
            created_ms: 1,
            attempts: 0,
            next_at_ms: 1,
            last_error: "connection refused".into(),
        };
        outbox.put(&entry).unwrap();
        fs_err::write(dir.path().join("junk.json"), "{").unwrap();
        assert_eq!(outbox.list().unwrap(), vec![entry.clone()]);
        outbox.remove(&entry.id).unwrap();
        outbox.remove(&entry.id).unwrap();
        assert!(outbox.list().unwrap().is_empty());
    }
}
