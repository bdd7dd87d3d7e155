//! `warden run`: the agent on one alert or goal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use warden::policy::PolicyEngine;
use warden::{Agent, Budget, CancellationToken, Input, Limits, Outcome, Task, terminal_safe};

use crate::output;

/// Plan and run one task: from an alert webhook body or a goal.
///
/// The planner is the first runbook whose match criteria hold (offline).
/// Every call is decided by the policy; calls that need approval ask on the
/// terminal, or are refused in non-interactive runs unless --approve is given;
/// approvals are recorded as given by the OS user. Everything is journaled
/// (see `warden journal`), and the change limits count every earlier run.
///
/// Without --env the task runs in the bundle's default environment (`prod`
/// in the shipped bundle: the strictest).
///
/// Secrets (webhook URLs) come from WARDEN_SECRET_<NAME> variables; a plugin
/// names the secret and never sees its value. HTTPS trusts the system roots
/// plus the PEM bundle in WARDEN_EXTRA_CA_FILE. Azure Resource Manager is
/// configured from AZURE_SUBSCRIPTION_ID and the Azure credential chain.
///
/// Example:
///   warden run --alert alert.json --attach logs=app.log --attach latency=latency.json --env staging
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Alert webhook body (Alertmanager or Azure Monitor common schema); `-` reads stdin.
    #[arg(long, value_name = "FILE", required_unless_present = "goal")]
    alert: Option<PathBuf>,
    /// A goal in words, instead of an alert.
    #[arg(long, conflicts_with = "alert")]
    goal: Option<String>,
    /// Data for the steps, NAME=FILE: JSON files are parsed, other files become a list of lines.
    #[arg(long, value_name = "NAME=FILE")]
    attach: Vec<String>,
    /// Runbook directory.
    #[arg(long, default_value = "examples/runbooks", env = "WARDEN_RUNBOOKS")]
    runbooks: PathBuf,
    /// `auto` plans with a model when one is configured (WARDEN_LLM_BASE_URL and
    /// WARDEN_LLM_MODEL, OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT with
    /// AZURE_OPENAI_DEPLOYMENT and AZURE_OPENAI_API_KEY), else from runbooks.
    #[arg(long, value_enum, default_value = "auto")]
    planner: PlannerChoice,
    /// Incident store to recall similar past incidents from (and plan from
    /// their resolutions when no runbook matches); resolved alerts are remembered.
    #[arg(long, value_name = "DIR")]
    memory: Option<PathBuf>,
    /// Use this runbook whatever its match criteria.
    #[arg(long)]
    runbook: Option<String>,
    #[command(flatten)]
    agent: crate::agent_args::AgentArgs,
    /// Mutating calls only report what they would do (or are skipped).
    #[arg(long)]
    dry_run: bool,
    /// Task id [default: generated].
    #[arg(long)]
    task_id: Option<String>,
    /// Most steps the task may run.
    #[arg(long, default_value_t = 32)]
    max_steps: usize,
    /// Wall-time budget for the task, e.g. `90s`, `10m`.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Where a notification waits when its webhook cannot be reached; due
    /// ones are delivered when a run starts and ends (see `warden outbox`).
    #[arg(long, default_value = ".warden/outbox", env = "WARDEN_OUTBOX")]
    outbox: PathBuf,
}

/// Longest a delivery pass at the start or end of a run keeps starting
/// new attempts.
const OUTBOX_PASS: std::time::Duration = std::time::Duration::from_secs(10);

/// One bounded pass over the outbox; a failure is reported, not fatal.
async fn deliver_outbox(agent: &Agent) {
    let pass = warden::sandbox::DeliveryPass::due().time_budget(OUTBOX_PASS);
    match agent.deliver_outbox(pass).await {
        Ok(done) if !done.is_empty() => {
            let delivered = done
                .iter()
                .filter(|d| {
                    matches!(
                        d.outcome,
                        warden::sandbox::DeliveryOutcome::Delivered { .. }
                    )
                })
                .count();
            eprintln!(
                "outbox: {delivered} of {} queued notification(s) delivered (see `warden outbox list`)",
                done.len()
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: delivering the outbox: {e}"),
    }
}

/// Adds the LLM planner `choice` asks for; true when the agent plans offline.
#[cfg(feature = "llm")]
fn with_planner(
    builder: warden::AgentBuilder,
    choice: PlannerChoice,
) -> anyhow::Result<(warden::AgentBuilder, bool)> {
    let llm = match choice {
        PlannerChoice::Runbook => None,
        PlannerChoice::Auto => warden::LlmPlanner::from_env()?,
        PlannerChoice::Llm => Some(warden::LlmPlanner::from_env()?.ok_or_else(|| {
            anyhow::anyhow!("--planner llm needs a model: set WARDEN_LLM_BASE_URL and WARDEN_LLM_MODEL (any OpenAI-compatible server), OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT and AZURE_OPENAI_API_KEY")
        })?),
    };
    Ok(match llm {
        Some(planner) => (builder.planner(planner), false),
        None => (builder, true),
    })
}

/// A build without the `llm` feature plans with runbooks and past cases only.
#[cfg(not(feature = "llm"))]
fn with_planner(
    builder: warden::AgentBuilder,
    choice: PlannerChoice,
) -> anyhow::Result<(warden::AgentBuilder, bool)> {
    if choice == PlannerChoice::Llm {
        bail!(
            "--planner llm: this warden was built without the `llm` feature; use --planner runbook"
        );
    }
    Ok((builder, true))
}

/// Which planner plans the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlannerChoice {
    /// A model if configured, else runbooks.
    Auto,
    /// Runbooks (and past cases with --memory), offline.
    Runbook,
    /// A model; an error if none is configured.
    Llm,
}

fn attachment(spec: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let Some((name, file)) = spec.split_once('=') else {
        bail!("--attach takes NAME=FILE, got `{spec}`");
    };
    let bytes = Limits::from_env()?.read_file(Path::new(file), Input::Attachment)?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("attachment {file} is not UTF-8 text"))?;
    let value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => serde_json::Value::Array(
            text.lines()
                .map(|l| serde_json::Value::String(l.to_string()))
                .collect(),
        ),
    };
    Ok((name.to_string(), value))
}

fn read_alert(path: &Path) -> anyhow::Result<serde_json::Value> {
    let limits = Limits::from_env()?;
    let bytes = if path == Path::new("-") {
        limits.read(std::io::stdin(), Input::Alert, "(stdin)")?
    } else {
        limits.read_file(path, Input::Alert)?
    };
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

pub fn task_id(prefix: &str) -> String {
    let t = jiff::Timestamp::now();
    format!("{prefix}-{}-{}", t.as_second(), std::process::id())
}

pub fn run(args: RunArgs, plugin_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let a = &args.agent;
    let principal = a.principal();
    let id = args.task_id.clone().unwrap_or_else(|| task_id("task"));
    let mut task = match (&args.alert, &args.goal) {
        (Some(path), _) => Task::from_webhook(&id, &read_alert(path)?)?,
        (None, Some(goal)) => Task::goal(&id, goal).by(&principal),
        (None, None) => bail!("give --alert FILE or --goal TEXT"),
    };
    task.env = a.env();
    task.break_glass = a.break_glass.clone();
    if args.goal.is_some() || a.principal.is_some() {
        task.principal = principal.clone();
    }
    for spec in &args.attach {
        let (name, value) = attachment(spec)?;
        task.attachments.insert(name, value);
    }
    let policy = PolicyEngine::load(&a.policy)
        .with_context(|| format!("loading the policy bundle {}", a.policy.display()))?;
    let budget = Budget {
        max_steps: args.max_steps,
        wall_time: args.timeout,
        ..Budget::default()
    };
    let mut sandbox = warden::sandbox::SandboxConfig::default();
    sandbox.cache_dir(plugin_dir.join(".cache"));
    // Webhook URLs and other secrets stay on the host: WARDEN_SECRET_ONCALL
    // becomes the secret `oncall`, which a plugin reaches as
    // https://oncall.secret.warden/ without ever seeing the URL. Outgoing
    // HTTPS trusts the system roots plus WARDEN_EXTRA_CA_FILE (PEM).
    sandbox.from_vars(std::env::vars());
    sandbox.outbox(&args.outbox);
    #[cfg(feature = "azure")]
    if let Some(arm) = warden::azure::backend_from_env()? {
        sandbox.arm(arm);
    }
    let mut builder = Agent::builder()
        .name("warden-cli")
        .sandbox(sandbox)
        .plugins(plugin_dir)
        .policy_engine(policy)
        .runbooks(&args.runbooks)
        .journal(&a.journal)
        .host_key(a.host_key()?)
        .dry_run(args.dry_run)
        .budget(budget);
    if let Some(name) = &args.runbook {
        builder = builder.runbook(name);
    }
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin())
        && args.alert.as_deref() != Some(Path::new("-"));
    builder = a.approver(builder, interactive);
    if let Some(dir) = &args.memory {
        builder = builder.memory(warden::memory::Memory::open(dir)?);
    }
    let (builder, offline) = with_planner(builder, args.planner)?;
    let agent = builder.build()?;
    if offline && args.planner == PlannerChoice::Auto {
        eprintln!(
            "planner: {} (offline: no LLM configured; set WARDEN_LLM_BASE_URL and WARDEN_LLM_MODEL to plan with a model)",
            agent.planner_name()
        );
    } else {
        eprintln!("planner: {}", agent.planner_name());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        deliver_outbox(&agent).await;
        let outcome = agent.run_until(task, cancel).await;
        deliver_outbox(&agent).await;
        outcome
    })?;
    if json {
        output::json(&outcome)?;
    } else {
        print_outcome(&outcome);
    }
    Ok(match outcome.status {
        warden::OutcomeStatus::Resolved => ExitCode::SUCCESS,
        warden::OutcomeStatus::Cancelled => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    })
}

fn print_outcome(outcome: &Outcome) {
    let t = terminal_safe;
    println!(
        "planned by {} in `{}`",
        t(&outcome.planner),
        t(&outcome.env)
    );
    for o in &outcome.observations {
        println!(
            "  {:<12} {:<16} {:<10} {:>8.1} ms  {}",
            t(&o.step_id),
            t(&o.tool),
            o.status.as_str(),
            o.duration_us as f64 / 1000.0,
            t(&o.brief())
        );
    }
    println!(
        "{}: {}",
        outcome.status.as_str().to_uppercase(),
        t(&outcome.reason)
    );
    if !outcome.summary.is_empty() {
        println!("{}", t(&outcome.summary).replace("\\n", "\n"));
    }
    if let Some(j) = &outcome.journal {
        println!(
            "journal: {} (warden journal show {})",
            j.display(),
            t(&outcome.task_id)
        );
    }
}
