//! `warden policy`: test, evaluate and check Rego bundles.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use warden::policy::{Entry, Explanation, PolicyEngine, TestOutcome, TestReport};

/// `warden policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Run the `test_*` rules in a bundle's `*_test.rego` files (like `opa test`).
    ///
    /// Exits 0 when every test passes, 1 otherwise.
    Test {
        /// Bundle folder.
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// List passing tests too.
        #[arg(long)]
        all: bool,
    },
    /// Decide one input and show which rules produced each reason.
    Eval {
        /// Input document (JSON); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Entry point: call, approve, capability or plan.
        #[arg(long, default_value = "call")]
        entry: Entry,
        /// Bundle folder.
        #[arg(long, default_value = "policies")]
        bundle: PathBuf,
    },
    /// Load a bundle (policies, data and tests) without evaluating anything.
    Check {
        /// Bundle folder.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
}

/// Run one `warden policy` subcommand; `json` prints JSON on stdout.
pub fn run(cmd: PolicyCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Test { dir, all } => {
            let report = warden::policy::run_tests(&dir)?;
            if json {
                print_json(&report)?;
            } else {
                print_test_report(&report, all)?;
            }
            Ok(if report.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCmd::Eval {
            input,
            entry,
            bundle,
        } => {
            let document = read_input(&input)?;
            let engine = PolicyEngine::load(&bundle)?;
            let explanation = engine.explain(entry, &document);
            if json {
                print_json(&explanation)?;
            } else {
                print_explanation(&explanation)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Check { dir } => {
            let summary = warden::policy::check(&dir)?;
            if json {
                print_json(&summary)?;
            } else {
                print_check(&summary)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_input(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the input from standard input")?;
        text
    } else {
        fs_err::read_to_string(path)?
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON document", path.display()))
}

// Writes through a locked handle so a closed pipe (`| head`) is an error,
// not a panic.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

fn print_test_report(report: &TestReport, verbose: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for result in &report.results {
        let location = format!("{}:{}", result.file.display(), result.line);
        match &result.outcome {
            TestOutcome::Pass if verbose => writeln!(
                out,
                "PASS  {} ({location}, {} us)",
                result.name, result.duration_us
            )?,
            TestOutcome::Pass => {}
            TestOutcome::Fail { got } => {
                writeln!(out, "FAIL  {} ({location}): got {got}", result.name)?
            }
            TestOutcome::Error { message } => {
                writeln!(out, "ERROR {} ({location}): {message}", result.name)?
            }
        }
    }
    let total = report.results.len();
    let failed = report.failures().count();
    if total > 0 && (verbose || failed > 0) {
        writeln!(out, "{}", "-".repeat(72))?;
    }
    writeln!(out, "PASS: {}/{total}", report.passed())?;
    if failed > 0 {
        writeln!(out, "FAIL: {failed}/{total}")?;
    }
    if total == 0 {
        hint("no `test_*` rules found; tests live in `*_test.rego` files");
    }
    Ok(())
}

fn print_explanation(explanation: &Explanation) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let record = &explanation.record;
    writeln!(out, "entry:    {}", record.entry.rule())?;
    writeln!(out, "decision: {}", record.decision.verdict)?;
    for reason in &explanation.reasons {
        writeln!(out, "  - {}", reason.reason)?;
        for rule in &reason.rules {
            let title = rule
                .title
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            writeln!(
                out,
                "      from {} ({}:{}){title}",
                rule.rule,
                rule.file.display(),
                rule.line
            )?;
        }
    }
    if !record.decision.obligations.is_empty() {
        let obligations = serde_json::Value::Object(record.decision.obligations.clone());
        writeln!(out, "obligations: {obligations}")?;
    }
    writeln!(out, "bundle:   {}", record.bundle_hash)?;
    writeln!(out, "input:    {}", record.input_hash)?;
    writeln!(out, "took:     {} us", record.duration_us)?;
    Ok(())
}

fn print_check(summary: &warden::policy::BundleSummary) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ok: {} ({} policy files, {} test files, {} data files)",
        summary.dir.display(),
        summary.policy_files.len(),
        summary.test_files.len(),
        summary.data_files.len()
    )?;
    writeln!(out, "hash: {}", summary.hash)?;
    writeln!(out, "packages: {}", summary.packages.join(", "))?;
    for entry in &summary.missing_entries {
        hint(&format!(
            "{} is not defined; every {entry} decision will deny",
            entry.rule()
        ));
    }
    Ok(())
}

#[allow(clippy::print_stderr, reason = "hints go to stderr, data to stdout")]
fn hint(text: &str) {
    eprintln!("hint: {text}");
}
