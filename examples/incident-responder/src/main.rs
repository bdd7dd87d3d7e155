//! The example warden agent.
//!
//! It starts a small local "checkout" service whose health check fails
//! (its database pool is exhausted; the log and metric files in
//! `examples/data` show it), receives an Alertmanager webhook about it,
//! plans from `examples/runbooks`, probes the service, mines the logs for
//! rare messages, finds the latency anomaly, restarts the pool through the
//! service's admin endpoint (a mutating call the policy gates: approval in
//! prod), validates the fix and prints a summary with the journal path.
//! Everything runs offline, on loopback.

mod service;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use warden::journal::{HostKey, verify_journal};
use warden::policy::PolicyEngine;
use warden::{
    Agent, Budget, CancellationToken, PreApproved, RejectAll, Task, TerminalApprover, terminal_safe,
};

/// Resolve the example checkout incident with a warden agent, offline.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Environment the agent acts in; in `prod` the remediation needs approval.
    #[arg(long, default_value = "dev")]
    env: String,
    /// Approve the remediation in advance (recorded as approved by the OS user).
    #[arg(long)]
    approve: bool,
    /// Only report what mutating steps would do.
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// Installed plugins (`warden plugin build` puts them here).
    #[arg(long, default_value = ".warden/plugins")]
    plugin_dir: PathBuf,
    /// Policy bundle.
    #[arg(long, default_value = "policies")]
    policy: PathBuf,
    /// Runbooks.
    #[arg(long, default_value = "examples/runbooks")]
    runbooks: PathBuf,
    /// Journal file (appended).
    #[arg(long, default_value = ".warden/journal.jsonl")]
    journal: PathBuf,
    /// The example's alert and data.
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Sandbox settings: `default`, or `edge` for a 1-2 core box with
    /// 512 MiB-1 GiB (two instances, 64 MiB each, pooled); plugins
    /// precompiled for a device must be precompiled with the same profile.
    #[arg(long, default_value = "default")]
    profile: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut out = std::io::stdout().lock();

    let (addr, state) = service::start().await?;
    writeln!(
        out,
        "checkout service listening on http://{addr} (health failing: db pool exhausted)"
    )?;

    let alert_path = args.examples.join("incident-responder/alert.json");
    let limits = warden::Limits::default();
    let alert_text = String::from_utf8(limits.read_file(&alert_path, warden::Input::Alert)?)?
        .replace("SERVICE_ADDR", &addr.to_string());
    let alert: serde_json::Value = serde_json::from_str(&alert_text)
        .with_context(|| format!("parsing {}", alert_path.display()))?;
    let data = args.examples.join("data");
    let logs: Vec<String> = fs_err::read_to_string(data.join("checkout.log"))?
        .lines()
        .map(str::to_string)
        .collect();
    let latency: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(data.join("latency-series.json"))?)?;
    let id = format!("inc-{}", warden_task_suffix());
    let task = Task::from_webhook(&id, &alert)?
        .in_env(&args.env)
        .attach("logs", serde_json::json!(logs))
        .attach("latency", latency);
    writeln!(
        out,
        "alert received: {} ({} lines of logs, latency series attached)",
        task.goal,
        logs.len()
    )?;

    // The demo service lives on loopback, which the default bundle allows
    // only in `dev`; allow it in the chosen environment for this run. The
    // overlay needs the bundle's name for it: one load when `--env` is
    // that name already (compiling the bundle is most of a cold start), a
    // second when it is an alias (`production` for `prod`).
    let load = |env: &str| {
        let overlay = serde_json::json!({"warden": {"config": {"network": {"allowed_private_cidrs": {
            env: ["127.0.0.0/8", "::1/128"]}}}}});
        PolicyEngine::builder(&args.policy)
            .with_data(overlay)
            .load()
            .with_context(|| format!("loading the policy bundle {}", args.policy.display()))
    };
    let first = load(&args.env);
    let env = match &first {
        Ok(policy) => policy.environments().canonical(&args.env)?,
        Err(_) => PolicyEngine::load(&args.policy)
            .with_context(|| format!("loading the policy bundle {}", args.policy.display()))?
            .environments()
            .canonical(&args.env)?,
    };
    let policy = match first {
        Ok(policy) if env == args.env => policy,
        _ => load(&env)?,
    };

    let key = HostKey::load_or_create(HostKey::default_path()?)?;
    let mut sandbox =
        warden::sandbox::SandboxConfig::profile(&args.profile).with_context(|| {
            format!(
                "unknown --profile `{}`: use `default` or `edge`",
                args.profile
            )
        })?;
    sandbox.cache_dir(args.plugin_dir.join(".cache"));
    #[cfg(feature = "azure")]
    if let Some(arm) = warden::azure::backend_from_env()? {
        sandbox.arm(arm);
    }
    let builder = Agent::builder()
        .name("incident-responder")
        .sandbox(sandbox)
        .host_key(key.clone())
        .plugins(&args.plugin_dir)
        .policy_engine(policy)
        .runbooks(&args.runbooks)
        .journal(&args.journal)
        .dry_run(args.dry_run)
        .budget(Budget::default());
    // With a model configured (WARDEN_LLM_BASE_URL + WARDEN_LLM_MODEL, or
    // OPENAI_API_KEY, or AZURE_OPENAI_*), the model plans; else the runbooks.
    #[cfg(feature = "llm")]
    let planner = warden::LlmPlanner::from_env()?;
    #[cfg(not(feature = "llm"))]
    let planner: Option<std::convert::Infallible> = None;
    let builder = match planner {
        #[cfg(feature = "llm")]
        Some(planner) => {
            writeln!(out, "planning with the model {}", planner.model())?;
            builder.planner(planner)
        }
        #[cfg(not(feature = "llm"))]
        Some(never) => match never {},
        None => {
            writeln!(
                out,
                "planning offline from {} (no LLM configured)",
                args.runbooks.display()
            )?;
            builder
        }
    };
    let builder = if args.approve {
        builder.approver(PreApproved::by_os_user())
    } else if std::io::stdin().is_terminal() {
        builder.approver(TerminalApprover::os_user())
    } else {
        builder.approver(RejectAll)
    };
    let agent = builder.build().context("building the agent")?;

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let outcome = agent.run_until(task, cancel).await?;
    let report = verify_journal(&args.journal, &key, None)?;

    if args.json {
        serde_json::to_writer_pretty(&mut out, &outcome)?;
        writeln!(out)?;
    } else {
        writeln!(out, "\nplanned by {}", outcome.planner)?;
        for o in &outcome.observations {
            let detail = o.brief();
            writeln!(
                out,
                "  {:<10} {:<15} {:<9} {:>7.1} ms  {}",
                terminal_safe(&o.step_id),
                terminal_safe(&o.tool),
                o.status.as_str(),
                o.duration_us as f64 / 1000.0,
                terminal_safe(&detail)
            )?;
        }
        writeln!(
            out,
            "\n{}: {}",
            outcome.status.as_str().to_uppercase(),
            terminal_safe(&outcome.reason)
        )?;
        writeln!(
            out,
            "{}",
            terminal_safe(&outcome.summary).replace("\\n", "\n")
        )?;
        writeln!(
            out,
            "\nadmin endpoint calls: {}; service healthy now: {}",
            state.admin_calls.load(std::sync::atomic::Ordering::SeqCst),
            state.healthy.load(std::sync::atomic::Ordering::SeqCst)
        )?;
        writeln!(
            out,
            "journal: {} ({} records, chain {})\n  timeline: warden journal show {}",
            args.journal.display(),
            report.records,
            if report.is_ok() { "verified" } else { "BROKEN" },
            outcome.task_id
        )?;
    }
    Ok(if outcome.is_resolved() && report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A sortable, unique-enough task suffix: UTC time to the second.
fn warden_task_suffix() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("{now}-{}", std::process::id())
}
