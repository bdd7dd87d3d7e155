//! `warden serve`: the agent as a service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use warden_serve::{Config, Server};

/// Run the agent as a service: alerts in by webhook, approvals over the API,
/// metrics for Prometheus.
///
/// Reads a `warden.toml` (see examples/serve/warden.toml): what the agent
/// loads, where it listens, API tokens and their roles, and the alert
/// receivers. Secrets are never in the file: each is `{ env = "VAR" }` or
/// `{ file = "path" }`.
///
/// Every accepted alert is committed to a durable inbox before the answer;
/// after a crash, waiting alerts run and interrupted tasks are closed (never
/// run twice). SIGTERM or Ctrl-C drains: no new alerts, running tasks get
/// `limits.drain_deadline`. SIGHUP reloads policy, runbooks and plugins; a
/// broken bundle keeps the old one.
///
/// With `--cluster`, several `warden serve` processes share the work
/// through PostgreSQL (the `[cluster]` section): tasks are claimed with a
/// lease, a task whose worker dies is resumed by another without repeating
/// a step, and the journal is kept there, one chain per task.
///
/// Examples:
///   warden serve --config examples/serve/warden.toml
///   warden serve --config warden.toml --check-config
///   warden serve --config warden.toml --cluster
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service's config file.
    #[arg(long, default_value = "warden.toml", env = "WARDEN_CONFIG")]
    config: PathBuf,
    /// Check the config (file, secrets, policy, runbooks, plugins), then exit.
    #[arg(long)]
    check_config: bool,
    /// Run as one worker of a cluster: the `[cluster]` section's PostgreSQL
    /// holds tasks, step outcomes and the journal.
    #[arg(long)]
    cluster: bool,
}

pub fn run(args: ServeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config)?;
    match (args.cluster, config.cluster.is_some()) {
        (true, false) => anyhow::bail!(
            "--cluster needs a [cluster] section in {} (postgres = …)",
            args.config.display()
        ),
        (false, true) => {
            tracing::info!("[cluster] is configured but --cluster was not given: running alone");
            config.cluster = None;
        }
        _ => {}
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        if args.check_config {
            let summary = warden_serve::check(&config)
                .with_context(|| format!("checking {}", args.config.display()))?;
            if json {
                crate::output::json(&summary)?;
            } else {
                println!("{} is valid: {summary}", args.config.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        let server = Server::bind(config).await?;
        let scheme = if server.tls() { "https" } else { "http" };
        eprintln!("warden serve: listening on {scheme}://{}", server.addr());
        let handle = server.handle();
        tokio::spawn(signals(handle));
        server.run().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM / Ctrl-C drain; SIGHUP reloads.
async fn signals(handle: warden_serve::Handle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                if let Err(e) = handle.reload() {
                    tracing::error!(error = %e, "reload failed; the old policy, runbooks and plugins stay");
                }
            }
        }
    }
    handle.shutdown();
}
