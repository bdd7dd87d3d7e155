//! `warden outbox`: notifications queued while their webhook was
//! unreachable; list them, or deliver them now on the agent's path.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use warden::policy::PolicyEngine;
use warden::sandbox::{DeliveryOutcome, DeliveryPass, Outbox, SandboxConfig};
use warden::{Agent, terminal_safe};

use crate::output;

/// Requests to secret webhooks that failed before they left the host (DNS,
/// connection refused or timed out) wait in the outbox; `warden run`
/// delivers due ones when it starts and ends, `warden serve` every 30 s.
/// Each delivery is decided again by the capability policy and journaled
/// under the task and step that queued it, and carries the header
/// `Idempotency-Key: <id>`: a receiver should ignore a key it has seen,
/// since a crash right after delivery sends the entry again.
#[derive(Debug, Subcommand)]
pub enum OutboxCmd {
    /// List the queued requests: id, secret, tool, task, attempts, when due.
    List {
        #[command(flatten)]
        dir: OutboxDir,
    },
    /// Deliver the due requests now (every one with --all).
    ///
    /// Secrets come from WARDEN_SECRET_<NAME> variables, as for `warden
    /// run`; an entry whose secret this shell does not hold is left alone.
    Deliver {
        #[command(flatten)]
        dir: OutboxDir,
        /// Attempt every entry, even one still backing off.
        #[arg(long)]
        all: bool,
        /// Policy bundle directory.
        #[arg(long, default_value = "policies", env = "WARDEN_POLICY")]
        policy: PathBuf,
        /// Journal file the attempts are recorded in.
        #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        journal: PathBuf,
    },
}

/// Where the outbox is.
#[derive(Debug, Clone, Args)]
pub struct OutboxDir {
    /// Outbox directory (`warden serve` keeps its own in its data
    /// directory, `.warden/serve/outbox`, unless WARDEN_OUTBOX is set).
    #[arg(long, default_value = ".warden/outbox", env = "WARDEN_OUTBOX")]
    pub outbox: PathBuf,
}

pub fn run(cmd: OutboxCmd, plugin_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCmd::List { dir } => list(&dir.outbox, json),
        OutboxCmd::Deliver {
            dir,
            all,
            policy,
            journal,
        } => deliver(&dir.outbox, plugin_dir, &policy, &journal, all, json),
    }
}

fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || ms.to_string(),
            |t| {
                t.round(jiff::Unit::Second)
                    .map_or_else(|_| t.to_string(), |t| t.to_string())
            },
        )
}

fn list(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let entries = Outbox::open(dir)?.list()?;
    if json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id, "secret": e.secret, "tool": e.plugin,
                    "task_id": e.task_id, "step_id": e.step_id,
                    "method": e.method, "bytes": e.body.len(),
                    "attempts": e.attempts, "created": time(e.created_ms),
                    "next_at": time(e.next_at_ms), "last_error": e.last_error,
                })
            })
            .collect();
        output::json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("the outbox {} is empty", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![
        [
            "ID",
            "SECRET",
            "TOOL",
            "TASK",
            "ATTEMPTS",
            "NEXT",
            "LAST ERROR",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.extend(entries.iter().map(|e| {
        vec![
            e.id.clone(),
            terminal_safe(&e.secret),
            terminal_safe(&e.plugin),
            terminal_safe(&e.task_id),
            e.attempts.to_string(),
            time(e.next_at_ms),
            terminal_safe(&e.last_error),
        ]
    }));
    output::table(&rows)?;
    Ok(ExitCode::SUCCESS)
}

fn deliver(
    dir: &Path,
    plugin_dir: &Path,
    policy: &Path,
    journal: &Path,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if Outbox::open(dir)?.list()?.is_empty() {
        if json {
            output::json(&Vec::<()>::new())?;
        } else {
            println!("the outbox {} is empty", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let policy = PolicyEngine::load(policy)
        .with_context(|| format!("loading the policy bundle {}", policy.display()))?;
    let mut config = SandboxConfig::default();
    config.cache_dir(plugin_dir.join(".cache"));
    config.from_vars(std::env::vars());
    config.outbox(dir);
    let agent = Agent::builder()
        .name("warden-cli")
        .sandbox(config)
        .plugins(plugin_dir)
        .policy_engine(policy)
        .journal(journal)
        .host_key(
            warden::journal::HostKey::for_journal(journal)
                .context("loading the host key (set WARDEN_KEY_FILE to use another)")?,
        )
        .build()?;
    let pass = if all {
        DeliveryPass::due().all()
    } else {
        DeliveryPass::due()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let done = runtime.block_on(agent.deliver_outbox(pass))?;
    if json {
        output::json(&done)?;
    } else if done.is_empty() {
        println!("nothing is due (use --all to try every entry now)");
    } else {
        for d in &done {
            let what = match &d.outcome {
                DeliveryOutcome::Delivered { status } => format!("delivered ({status})"),
                DeliveryOutcome::Retry { reason, next_at_ms } => {
                    format!("retry at {}: {}", time(*next_at_ms), terminal_safe(reason))
                }
                DeliveryOutcome::Dropped { reason } => {
                    format!("dropped: {}", terminal_safe(reason))
                }
                DeliveryOutcome::Skipped { reason } => {
                    format!("skipped: {}", terminal_safe(reason))
                }
                other => format!("{other:?}"),
            };
            println!(
                "{} {} -> {}: {what}",
                d.entry.id,
                terminal_safe(&d.entry.plugin),
                terminal_safe(&d.entry.secret)
            );
        }
    }
    let failed = done
        .iter()
        .any(|d| matches!(d.outcome, DeliveryOutcome::Dropped { .. }));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
