//! `warden`: run and inspect sandboxed infrastructure tools.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program: data goes to stdout, hints to stderr"
)]

mod agent_args;
mod cmd_bundle;
mod cmd_incidents;
mod cmd_journal;
mod cmd_logs;
mod cmd_mcp;
mod cmd_outbox;
mod cmd_plugin;
mod cmd_plugin_new;
mod cmd_policy;
mod cmd_run;
mod cmd_serve;

mod output;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sandboxed, policy-gated tools for infrastructure agents.
///
/// Tools are WebAssembly components (see `plugins/`); every capability they
/// use is decided by a Rego policy. Data goes to stdout, logs to stderr.
#[derive(Debug, Parser)]
#[command(name = "warden", version, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Directory of built plugins (`*.wasm`) [env: WARDEN_PLUGIN_DIR] [default: .warden/plugins].
    #[arg(long, global = true, env = "WARDEN_PLUGIN_DIR", hide_env = true)]
    plugin_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent on an alert or a goal: plan, gate, approve, call, journal.
    Run(Box<cmd_run::RunArgs>),
    /// Run the agent as a service: webhooks in, approvals over the API, metrics.
    Serve(cmd_serve::ServeArgs),
    /// Serve the plugins as MCP tools over stdio (every call policy-gated and journaled).
    Mcp(Box<cmd_mcp::McpArgs>),
    /// Verify, list and show the agent's hash-chained journal.
    #[command(subcommand)]
    Journal(cmd_journal::JournalCmd),
    /// Mine log files for message templates (streams; any size).
    #[command(subcommand)]
    Logs(cmd_logs::LogsCmd),
    /// List or deliver notifications queued while their webhook was unreachable.
    #[command(subcommand)]
    Outbox(cmd_outbox::OutboxCmd),
    /// Build, list, inspect, call and scaffold tool plugins.
    #[command(subcommand)]
    Plugin(cmd_plugin::PluginCmd),
    /// Pack plugins precompiled for an edge box with policy and runbooks;
    /// install such a bundle on the box.
    #[command(subcommand)]
    Bundle(cmd_bundle::BundleCmd),
    /// Test, evaluate and check Rego policy bundles.
    #[command(subcommand)]
    Policy(cmd_policy::PolicyCmd),
    /// Remember incidents and tickets; find similar ones; cluster them.
    ///
    /// The store lives in --data-dir, else $WARDEN_HOME, else the platform
    /// data directory.
    Incidents {
        /// Directory of the incident store.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        cmd: cmd_incidents::IncidentsCmd,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs what it does by default; a command only its warnings.
    let serving = matches!(cli.command, Command::Serve(_));
    let _telemetry = telemetry::init(log_level(
        cli.verbose + u8::from(serving && cli.verbose == 0),
    ));
    let plugin_dir = cli
        .plugin_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".warden/plugins"));
    let result = match cli.command {
        Command::Run(args) => cmd_run::run(*args, &plugin_dir, cli.json),
        Command::Serve(args) => cmd_serve::run(args, cli.json),
        Command::Mcp(args) => cmd_mcp::run(*args, &plugin_dir),
        Command::Journal(cmd) => cmd_journal::run(cmd, cli.json),
        Command::Logs(cmd) => cmd_logs::run(cmd, cli.json),
        Command::Outbox(cmd) => cmd_outbox::run(cmd, &plugin_dir, cli.json),
        Command::Plugin(cmd) => cmd_plugin::run(cmd, &plugin_dir, cli.json),
        Command::Bundle(cmd) => cmd_bundle::run(cmd, &plugin_dir, cli.json),
        Command::Policy(cmd) => cmd_policy::run(cmd, cli.json),
        Command::Incidents { data_dir, cmd } => cmd_incidents::run(cmd, data_dir, cli.json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", output::safe_lines(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn log_level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}
