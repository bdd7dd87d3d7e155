//! `warden mcp`: the plugins as MCP tools over stdio.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Runbook directory for `runbook_list`.
    #[arg(long, env = "WARDEN_RUNBOOKS")]
    runbooks: Option<PathBuf>,
    /// Incident store for `incidents_similar`.
    #[arg(long, value_name = "DIR")]
    memory: Option<PathBuf>,
    /// Deadline of one plugin call, e.g. `30s`, `5m`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
}

pub fn run(args: McpArgs, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    let a = &args.agent;
    let mut sandbox = warden::sandbox::SandboxConfig::default();
    sandbox.cache_dir(plugin_dir.join(".cache"));
    sandbox.from_vars(std::env::vars());
    #[cfg(feature = "azure")]
    if let Some(arm) = warden::azure::backend_from_env()? {
        sandbox.arm(arm);
    }
    let approver = McpApprover::new();
    let mut builder = Agent::builder()
        .name("warden-mcp")
        .sandbox(sandbox)
        .plugins(plugin_dir)
        .policy(&a.policy)
        .journal(&a.journal)
        .host_key(a.host_key()?);
    builder = if a.approve {
        builder.approver(PreApproved::by_os_user())
    } else {
        builder.approver(approver.clone())
    };
    if let Some(dir) = &args.memory {
        builder = builder.memory(warden::memory::Memory::open(dir)?);
    }
    let agent = builder.build()?;
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
        let books = Runbooks::load_dir(dir, agent.tools())
            .with_context(|| format!("loading runbooks from {}", dir.display()))?;
        options.runbooks(books);
    }
    eprintln!(
        "warden mcp: {} tool(s) in `{}` for `{}` on stdio (journal: {})",
        agent.tools().len(),
        env,
        warden::terminal_safe(&a.principal()),
        a.journal.display()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(McpServer::new(Arc::new(agent), options).serve_stdio())?;
    Ok(ExitCode::SUCCESS)
}
