//! What `warden run` and `warden plugin call` share: the policy, the
//! environment, on whose behalf, approvals, the journal and the host key.
//! No policy logic lives here: the agent decides every call.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use warden::journal::HostKey;
use warden::{AgentBuilder, PreApproved, RejectAll, TerminalApprover};

/// Who acts, where, under which policy, journaled where.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Policy bundle directory (`*.rego` + `data.json`).
    #[arg(long, default_value = "policies", env = "WARDEN_POLICY")]
    pub policy: PathBuf,
    /// Environment the work acts on, as the bundle names it (`dev`,
    /// `staging`, `prod`, or an alias such as `production`). Case and
    /// surrounding spaces do not matter; an unknown name is refused.
    /// [default: the bundle's default, `prod` in the shipped bundle]
    #[arg(long, env = "WARDEN_ENV")]
    pub env: Option<String>,
    /// On whose behalf the work runs [default: the OS user].
    #[arg(long)]
    pub principal: Option<String>,
    /// Approve, as the OS user running this command, every call the policy
    /// sends to a human. The approval policy still applies: by default
    /// nobody approves their own call in a protected environment.
    #[arg(long)]
    pub approve: bool,
    /// Break-glass ticket id for destructive work in protected environments.
    #[arg(long)]
    pub break_glass: Option<String>,
    /// Journal file (appended; keyed with the host key in $WARDEN_KEY_FILE,
    /// default ~/.config/warden/host.key).
    #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
    pub journal: PathBuf,
}

impl AgentArgs {
    /// The principal: `--principal`, else the OS user.
    pub fn principal(&self) -> String {
        self.principal.clone().unwrap_or_else(warden::os_user)
    }

    /// The environment as typed; empty means the bundle's default.
    pub fn env(&self) -> String {
        self.env.clone().unwrap_or_default()
    }

    /// The approver: `--approve` (as the OS user), else the terminal when
    /// there is one to ask, else nobody.
    pub fn approver(&self, builder: AgentBuilder, interactive: bool) -> AgentBuilder {
        if self.approve {
            builder.approver(PreApproved::by_os_user())
        } else if interactive {
            builder.approver(TerminalApprover::os_user())
        } else {
            builder.approver(RejectAll)
        }
    }
}

impl AgentArgs {
    /// The host key for this journal, created on first use.
    pub fn host_key(&self) -> anyhow::Result<HostKey> {
        HostKey::for_journal(&self.journal)
            .context("loading the host key (set WARDEN_KEY_FILE to use another)")
    }
}

/// The host key at its default place, created on first use (for the
/// plugin cache).
pub fn host_key() -> anyhow::Result<HostKey> {
    let path = HostKey::default_path()?;
    HostKey::load_or_create(&path)
        .context("loading the host key (set WARDEN_KEY_FILE to use another)")
}

/// The host key, which must already exist (for reading a journal).
pub fn existing_host_key() -> anyhow::Result<HostKey> {
    let path = HostKey::default_path()?;
    if !path.exists() {
        anyhow::bail!(
            "no host key at {}: a journal can only be verified with the key that wrote it\nhint: set WARDEN_KEY_FILE to that key",
            path.display()
        );
    }
    Ok(HostKey::load_or_create(&path)?)
}
