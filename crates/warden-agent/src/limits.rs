//! Size limits on what comes from outside, in one place.
//!
//! | input | default | where it is enforced |
//! |---|---|---|
//! | alert body (webhook JSON) | 1 MiB | [`Limits::read_file`] with [`Input::Alert`] (CLI `--alert`, example agent) |
//! | attachment (logs, series, templates) | 16 MiB each | [`Input::Attachment`] (CLI `--attach`) |
//! | runbook file | 1 MiB | [`Runbooks::load_dir`](crate::Runbooks::load_dir) |
//! | task goal as journaled | 4 KiB | the journal keeps a head and marks the cut |
//! | any other journaled value (args, outputs, alert) | 8 KiB | the journal keeps a head, the size and a SHA-256 |
//! | journal line when read back | 4 MiB | a longer line is damage |
//!
//! Each of the first three can be set with [`Limits::from_env`]
//! (`WARDEN_MAX_ALERT_BYTES`, `WARDEN_MAX_ATTACHMENT_BYTES`,
//! `WARDEN_MAX_RUNBOOK_BYTES`). Plugin files (64 MiB, `SandboxConfig`),
//! policy bundle files (16 MiB), incident records (1 MiB,
//! `warden_memory::MAX_RECORD_BYTES`) and policy builtins (1 M elements,
//! 16 MiB per evaluation, `PolicyEngineBuilder`) have their own caps in the
//! sandbox, policy and memory crates.
//! Only regular files are read (a symlink is followed and its target
//! checked), so a FIFO or `/dev/zero` named like an input is refused rather
//! than read forever.

use std::io::Read as _;
use std::path::Path;

use crate::error::AgentError;

/// What an input is, for its limit and its error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A webhook body with one or more alerts.
    Alert,
    /// Data attached to a task.
    Attachment,
    /// A runbook file.
    Runbook,
}

impl Input {
    fn what(self) -> &'static str {
        match self {
            Input::Alert => "alert body",
            Input::Attachment => "attachment",
            Input::Runbook => "runbook",
        }
    }
}

/// The limits; every field's default is in the table above.
///
/// ```
/// use warden_agent::{Input, Limits};
///
/// let dir = tempfile::tempdir().map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
/// let path = dir.path().join("alert.json");
/// fs_err::write(&path, vec![b' '; 2048]).map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
/// let limits = Limits { alert_bytes: 1024, ..Limits::default() };
/// let err = limits.read_file(&path, Input::Alert).unwrap_err().to_string();
/// assert!(err.contains("larger than the limit of 1024 bytes"), "{err}");
/// # Ok::<(), warden_agent::AgentError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in an alert body (default 1 MiB).
    pub alert_bytes: u64,
    /// Bytes in one attachment (default 16 MiB).
    pub attachment_bytes: u64,
    /// Bytes in one runbook file (default 1 MiB).
    pub runbook_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            alert_bytes: 1024 * 1024,
            attachment_bytes: 16 * 1024 * 1024,
            runbook_bytes: 1024 * 1024,
        }
    }
}

impl Limits {
    /// The defaults, each overridden by its variable when set to a number
    /// of bytes: `WARDEN_MAX_ALERT_BYTES`, `WARDEN_MAX_ATTACHMENT_BYTES`,
    /// `WARDEN_MAX_RUNBOOK_BYTES`. A value that is not a number is an error
    /// naming the variable.
    pub fn from_env() -> Result<Limits, AgentError> {
        Limits::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Limits::from_env`] over any source of variables (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Limits, AgentError> {
        let mut limits = Limits::default();
        for (name, slot) in [
            ("WARDEN_MAX_ALERT_BYTES", &mut limits.alert_bytes),
            ("WARDEN_MAX_ATTACHMENT_BYTES", &mut limits.attachment_bytes),
            ("WARDEN_MAX_RUNBOOK_BYTES", &mut limits.runbook_bytes),
        ] {
            if let Some(v) = var(name).filter(|v| !v.trim().is_empty()) {
                *slot = v.trim().parse().map_err(|_| AgentError::Config {
                    reason: format!("{name} must be a number of bytes, got `{v}`"),
                })?;
            }
        }
        Ok(limits)
    }

    /// The limit for `input`.
    pub fn of(&self, input: Input) -> u64 {
        match input {
            Input::Alert => self.alert_bytes,
            Input::Attachment => self.attachment_bytes,
            Input::Runbook => self.runbook_bytes,
        }
    }

    /// Read `path` as `input`: a regular file (symlinks followed) of at
    /// most its limit, else an error naming the file and the limit.
    pub fn read_file(&self, path: &Path, input: Input) -> Result<Vec<u8>, AgentError> {
        let limit = self.of(input);
        let err = |reason: String| AgentError::Input {
            what: input.what(),
            origin: path.display().to_string(),
            reason,
        };
        let meta = fs_err::metadata(path).map_err(|e| err(e.to_string()))?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        if meta.len() > limit {
            return Err(err(format!(
                "{} bytes, larger than the limit of {limit} bytes",
                meta.len()
            )));
        }
        let file = fs_err::File::open(path).map_err(|e| err(e.to_string()))?;
        self.read(file, input, &path.display().to_string())
    }

    /// Read at most the limit of `input` from `reader` (standard input, a
    /// request body), else an error naming `origin` and the limit.
    pub fn read(
        &self,
        reader: impl std::io::Read,
        input: Input,
        origin: &str,
    ) -> Result<Vec<u8>, AgentError> {
        let limit = self.of(input);
        let mut buf = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| AgentError::Input {
                what: input.what(),
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        if buf.len() as u64 > limit {
            return Err(AgentError::Input {
                what: input.what(),
                origin: origin.to_string(),
                reason: format!("larger than the limit of {limit} bytes"),
            });
        }
        Ok(buf)
    }
}
