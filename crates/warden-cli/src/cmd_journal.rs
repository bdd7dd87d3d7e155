//! `warden journal`: verify the hash chain, list tasks, show a timeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use warden_agent::{read_journal, render_timeline, verify_journal};

use crate::output;

/// Audit the agent's journal.
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Check the hash chain: names any edited, reordered, deleted or
    /// truncated record, and a torn last line left by a crash.
    Verify {
        /// Journal file.
        #[arg(default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        path: PathBuf,
    },
    /// List the tasks in the journal with their outcome.
    List {
        /// Journal file.
        #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        journal: PathBuf,
    },
    /// Show one task as a timeline: plan, policy decisions with reasons,
    /// calls with duration and result, approvals, outcome.
    Show {
        /// Task id (see `warden journal list`); `last` for the newest.
        task: String,
        /// Journal file.
        #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        journal: PathBuf,
    },
}

pub fn run(cmd: JournalCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        JournalCmd::Verify { path } => {
            let report = verify_journal(&path)?;
            if json {
                output::json(&report)?;
            } else if report.is_ok() {
                println!(
                    "{}: OK, {} records, {} tasks, hash chain intact",
                    path.display(),
                    report.records,
                    report.tasks
                );
            } else {
                println!("{}: {} problem(s)", path.display(), report.problems.len());
                for p in &report.problems {
                    println!("  line {}: {:?}: {}", p.line, p.kind, p.detail);
                }
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        JournalCmd::List { journal } => {
            let records = read_journal(&journal)?;
            let mut rows = vec![vec![
                "TASK".to_string(),
                "STARTED".to_string(),
                "OUTCOME".to_string(),
                "GOAL".to_string(),
            ]];
            let mut tasks: Vec<(String, String, String, String)> = Vec::new();
            for r in &records {
                match r.kind.as_str() {
                    "task" => tasks.push((
                        r.task.clone(),
                        r.ts.clone(),
                        "(running or interrupted)".into(),
                        r.data["goal"].as_str().unwrap_or("").to_string(),
                    )),
                    "outcome" => {
                        if let Some(t) = tasks.iter_mut().rev().find(|t| t.0 == r.task) {
                            t.2 = r.data["status"].as_str().unwrap_or("").to_string();
                        }
                    }
                    _ => {}
                }
            }
            if json {
                let list: Vec<_> = tasks
                    .iter()
                    .map(|(t, s, o, g)| serde_json::json!({"task": t, "started": s, "outcome": o, "goal": g}))
                    .collect();
                output::json(&list)?;
            } else {
                rows.extend(tasks.into_iter().map(|(t, s, o, g)| vec![t, s, o, g]));
                output::table(&rows)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCmd::Show { task, journal } => {
            let records = read_journal(&journal)?;
            let task = if task == "last" {
                records
                    .iter()
                    .rev()
                    .find(|r| r.kind == "task")
                    .map(|r| r.task.clone())
                    .unwrap_or(task)
            } else {
                task
            };
            if !records.iter().any(|r| r.task == task) {
                anyhow::bail!(
                    "no task `{task}` in {}\nhint: `warden journal list` shows the tasks",
                    journal.display()
                );
            }
            if json {
                let mine: Vec<_> = records.iter().filter(|r| r.task == task).collect();
                output::json(&mine)?;
            } else {
                print!("{}", render_timeline(&records, &task));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
