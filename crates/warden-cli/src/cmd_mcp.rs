//! `warden mcp`: the plugins as MCP tools over stdio.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Args;
use warden::{Agent, PreApproved, Runbooks};
use warden_mcp::{McpApprover, McpOptions, McpServer};

/// Serve the plugins as MCP tools over stdio, for an assistant such as
/// Claude Desktop or an IDE.
///
/// Every call takes the same path as a step the agent plans: the policy
/// decides it in --env on behalf of --principal (arguments cannot change
/// either), a human approves where the policy asks (the client's user,
/// through MCP elicitation, recorded as --approver-id), every capability
/// is decided again, and all of it is journaled. Tools that change things
/// take `dry_run`, true unless the caller passes false.
///
/// stdout carries the protocol; logs go to stderr.
///
/// Example:
///   warden mcp --env staging --principal assistant
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    agent: crate::agent_args::AgentArgs,
    /// Who answers approval questions in the client, as the journal and the
    /// approval policy see it [default: the OS user].
    #[arg(long)]
    approver_id: Option<String>,
    /// Runbook directory for `runbook_list`, `runbook_run` and the prompts.
    #[arg(long, env = "WARDEN_RUNBOOKS")]
    runbooks: Option<PathBuf>,
    /// Incident store for `incidents_similar`.
    #[arg(long, value_name = "DIR")]
    memory: Option<PathBuf>,
    /// Deadline of one plugin call, e.g. `30s`, `5m`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// How often to look for changed plugins, policy or runbooks; a change
    /// reloads them and tells the client its tools changed.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    watch: std::time::Duration,
}

pub fn run(args: McpArgs, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    let a = &args.agent;
    let approver = McpApprover::new();
    let build = {
        let approver = approver.clone();
        let plugin_dir = plugin_dir.to_path_buf();
        let policy = a.policy.clone();
        let journal = a.journal.clone();
        let key = a.host_key()?;
        let pre_approve = a.approve;
        let memory = args.memory.clone();
        move || -> anyhow::Result<Agent> {
            let mut sandbox = warden::sandbox::SandboxConfig::default();
            sandbox.cache_dir(plugin_dir.join(".cache"));
            sandbox.from_vars(std::env::vars());
            #[cfg(feature = "azure")]
            if let Some(arm) = warden::azure::backend_from_env()? {
                sandbox.arm(arm);
            }
            let mut builder = Agent::builder()
                .name("warden-mcp")
                .sandbox(sandbox)
                .plugins(&plugin_dir)
                .policy(&policy)
                .journal(&journal)
                .host_key(key.clone());
            builder = if pre_approve {
                builder.approver(PreApproved::by_os_user())
            } else {
                builder.approver(approver.clone())
            };
            if let Some(dir) = &memory {
                builder = builder.memory(warden::memory::Memory::open(dir)?);
            }
            Ok(builder.build()?)
        }
    };
    let agent = build()?;
    // An environment the bundle does not know would refuse every call:
    // say so now, not on the first call.
    let envs = agent.policy().environments();
    let env = if a.env().trim().is_empty() {
        envs.default_env().to_string()
    } else {
        envs.canonical(&a.env())
            .map_err(|e| anyhow::anyhow!("--env: {e}"))?
    };
    let mut options = McpOptions::default();
    options
        .env(&env)
        .principal(a.principal())
        .approver(approver)
        .call_timeout(args.timeout);
    if let Some(id) = &args.approver_id {
        options.approver_id(id, Vec::new());
    }
    if let Some(ticket) = &a.break_glass {
        options.break_glass(ticket);
    }
    if let Some(dir) = &args.runbooks {
        // Checked now so a broken runbook is an error at start, not a
        // surprise at the first call; read again at each request.
        Runbooks::load_dir(dir, agent.tools())
            .with_context(|| format!("loading runbooks from {}", dir.display()))?;
        options.runbooks(dir);
    }
    eprintln!(
        "warden mcp: {} tool(s) in `{}` for `{}` on stdio (journal: {})",
        agent.tools().len(),
        env,
        warden::terminal_safe(&a.principal()),
        a.journal.display()
    );
    let current = Arc::new(RwLock::new(Arc::new(agent)));
    let source = current.clone();
    let server = McpServer::following(
        move || source.read().unwrap_or_else(|p| p.into_inner()).clone(),
        options,
    );
    let mut watched = vec![plugin_dir.to_path_buf(), a.policy.clone()];
    watched.extend(args.runbooks.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let reload = tokio::spawn(watch(watched, args.watch, server.clone(), move || {
            let fresh = build()?;
            *current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
            Ok(())
        }));
        let served = server.serve_stdio().await;
        reload.abort();
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Every `every`, look at the plugins, policy and runbooks; when any file
/// changed, rebuild the agent with `rebuild` and tell the clients their
/// tools changed. A rebuild that fails keeps the running agent and says
/// why on stderr.
async fn watch(
    dirs: Vec<PathBuf>,
    every: Duration,
    server: McpServer,
    rebuild: impl Fn() -> anyhow::Result<()> + Send + Sync + 'static,
) {
    let rebuild = Arc::new(rebuild);
    let mut seen = fingerprint(&dirs);
    loop {
        tokio::time::sleep(every).await;
        let now = fingerprint(&dirs);
        if now == seen {
            continue;
        }
        seen = now;
        let r = rebuild.clone();
        match tokio::task::spawn_blocking(move || r()).await {
            Ok(Ok(())) => {
                let told = server.tools_changed().await;
                eprintln!(
                    "warden mcp: plugins, policy or runbooks changed; reloaded, {told} client(s) told"
                );
            }
            Ok(Err(e)) => eprintln!(
                "warden mcp: the change was not loaded (the running tools stay): {}",
                warden::terminal_safe(&format!("{e:#}"))
            ),
            Err(e) => eprintln!("warden mcp: reload failed: {e}"),
        }
    }
}

/// What a reload reads: plugins, policy files and data, runbooks.
const WATCHED: &[&str] = &["wasm", "rego", "json", "yaml", "yml"];

/// Name, size and modification time of every plugin, policy and runbook
/// file under `dirs` (two levels deep, the compiled-plugin cache left
/// out; a journal or key beside them is not looked at), sorted.
fn fingerprint(dirs: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    fn walk(dir: &Path, depth: u8, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == ".cache") {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if depth > 0 {
                    walk(&path, depth - 1, out);
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| WATCHED.contains(&e))
            {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, 2, &mut out);
    }
    out.sort();
    out
}
