//! `warden journal`: verify the keyed chain, anchor it, list tasks, show a
//! timeline, export records since a time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use warden::journal::{Anchor, read_journal, render_timeline, task_list, verify_journal};
use warden::terminal_safe;

use crate::output;

/// Audit the agent's journal. Every command needs the host key that wrote
/// it ($WARDEN_KEY_FILE, default ~/.config/warden/host.key).
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Check the keyed chain: names any edited, reordered, deleted or
    /// truncated record, a rewrite without the host key, a missing or forged
    /// head, and a torn last line left by a crash (and any recovered one).
    ///
    /// With --cluster, the journal a cluster of `warden serve --cluster`
    /// workers keeps in PostgreSQL: every task's chain, and the global
    /// anchor chain that fixes each chain's head after every commit.
    ///
    /// Example: warden journal verify --anchor "$(cat anchor.json)"
    /// Example: warden journal verify --cluster --config warden.toml
    Verify {
        /// Journal file.
        #[arg(default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        path: PathBuf,
        /// Also check against an anchor printed earlier by `warden journal
        /// anchor`: its JSON text, or a file holding it.
        #[arg(long, value_name = "JSON|FILE", conflicts_with = "cluster")]
        anchor: Option<String>,
        /// Verify the cluster's journal in PostgreSQL instead of a file.
        #[arg(long)]
        cluster: bool,
        /// PostgreSQL for --cluster: a libpq string or `postgresql://` URL
        /// [default: `[cluster] postgres` of --config].
        #[arg(long, env = "WARDEN_POSTGRES", hide_env_values = true)]
        postgres: Option<String>,
        /// The service's `warden.toml`: --cluster reads its `[cluster]
        /// postgres` and its `[agent] key_file`.
        #[arg(long, requires = "cluster")]
        config: Option<PathBuf>,
        /// With --cluster: only this task's chain (and the anchors).
        #[arg(long, requires = "cluster")]
        task: Option<String>,
    },
    /// Verify, then print the head of the chain (record count, last MAC,
    /// time) as one JSON line, for an outside system to keep. `verify
    /// --anchor` later proves the journal still holds what it held then.
    Anchor {
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
    /// capability decisions, calls with duration and result, approvals (who
    /// approved, for whom), outcome.
    Show {
        /// Task id (see `warden journal list`); `last` for the newest.
        task: String,
        /// Journal file.
        #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        journal: PathBuf,
    },
    /// Print the records written since a time as JSON lines, exactly as
    /// the journal holds them, to ship elsewhere (a SIEM, a bucket): each
    /// line keeps its `mac` and its `prev`, so whoever holds the host key
    /// checks every line and that none is missing in between.
    ///
    /// Example: warden journal export --since 24h > last-day.jsonl
    Export {
        /// An RFC 3339 time (`2026-11-27T00:00:00Z`) or a duration back
        /// from now (`90m`, `24h`, `7days`).
        #[arg(long)]
        since: String,
        /// Journal file.
        #[arg(long, default_value = ".warden/journal.jsonl", env = "WARDEN_JOURNAL")]
        journal: PathBuf,
    },
}

/// `--since` as a time: RFC 3339, or a duration back from now.
fn parse_since(text: &str) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let back = humantime::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "--since `{}` is neither an RFC 3339 time (2026-11-27T00:00:00Z) nor a duration (90m, 24h)",
            terminal_safe(text)
        )
    })?;
    let back = jiff::SignedDuration::try_from(back)?;
    Ok(jiff::Timestamp::now().checked_sub(back)?)
}

/// Copy the journal's lines written at or after `since` to stdout, byte
/// for byte; returns how many.
fn export(journal: &std::path::Path, since: jiff::Timestamp) -> anyhow::Result<usize> {
    use std::io::{BufRead as _, Write as _};
    #[derive(serde::Deserialize)]
    struct Ts {
        ts: jiff::Timestamp,
    }
    let file = fs_err::File::open(journal)?;
    let mut out = std::io::stdout().lock();
    let mut written = 0;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", journal.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Ts>(&line) {
            Ok(r) if r.ts >= since => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                written += 1;
            }
            Ok(_) => {}
            Err(e) => eprintln!(
                "warning: {} line {}: not a record, skipped: {e}",
                journal.display(),
                n + 1
            ),
        }
    }
    out.flush()?;
    Ok(written)
}

fn parse_anchor(text: &str) -> anyhow::Result<Anchor> {
    let text = if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        fs_err::read_to_string(text)?
    };
    serde_json::from_str(&text).context("the anchor is not what `warden journal anchor` prints")
}

/// `warden journal verify --cluster`: connect, verify, report; failure
/// when a chain is broken.
fn verify_cluster(
    postgres: Option<String>,
    config: Option<PathBuf>,
    task: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = config
        .as_deref()
        .map(warden_serve::Config::load)
        .transpose()?;
    let url = match (postgres, &loaded) {
        (Some(url), _) => url,
        (None, Some(c)) => match &c.cluster {
            Some(section) => section.postgres_url(c)?,
            None => anyhow::bail!(
                "{} has no [cluster] section\nhint: pass --postgres or set WARDEN_POSTGRES",
                config.as_deref().unwrap_or(c.base.as_path()).display()
            ),
        },
        (None, None) => anyhow::bail!(
            "--cluster needs PostgreSQL: --postgres, $WARDEN_POSTGRES, or --config with a [cluster] section"
        ),
    };
    // Never the password: `user@host:port/db`.
    let shown = warden_cluster::Record::describe(&url)?;
    // TLS and the plaintext rule from the config's [cluster] section.
    let security = match loaded.as_ref().and_then(|c| Some((c, c.cluster.as_ref()?))) {
        Some((c, section)) => section.security(&c.base)?,
        None => warden_cluster::Security::default(),
    };
    let key = match loaded.as_ref().and_then(|c| c.agent.key_file.as_ref()) {
        Some(path) if path.exists() => warden::journal::HostKey::load_or_create(path)?,
        Some(path) => anyhow::bail!(
            "no host key at {}: the cluster's journal can only be verified with the key its workers share",
            path.display()
        ),
        None => crate::agent_args::existing_host_key()?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let record = warden_cluster::Record::connect_with(&url, &security)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {shown}"))?;
        warden_cluster::verify_journal(&record, &key, task.as_deref())
            .await
            .with_context(|| format!("reading the journal from {shown}"))
    })?;
    if json {
        output::json(&serde_json::json!({
            "postgres": shown,
            "task": task,
            "ok": report.is_ok(),
            "tasks": report.tasks,
            "records": report.records,
            "anchors": report.anchors,
            "problems": report.problems,
        }))?;
    } else if report.is_ok() {
        println!(
            "{shown}: OK, {} task chains, {} records, {} anchors, keyed chains intact",
            report.tasks, report.records, report.anchors
        );
    } else {
        println!("{shown}: {} problem(s)", report.problems.len());
        for p in &report.problems {
            println!("  {}", terminal_safe(p));
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn run(cmd: JournalCmd, json: bool) -> anyhow::Result<ExitCode> {
    if let JournalCmd::Verify {
        cluster: true,
        postgres,
        config,
        task,
        ..
    } = cmd
    {
        return verify_cluster(postgres, config, task, json);
    }
    let key = crate::agent_args::existing_host_key()?;
    match cmd {
        JournalCmd::Verify { path, anchor, .. } => {
            let anchor = anchor.as_deref().map(parse_anchor).transpose()?;
            let report = verify_journal(&path, &key, anchor.as_ref())?;
            if json {
                output::json(&report)?;
            } else if report.is_ok() {
                println!(
                    "{}: OK, {} records, {} tasks, keyed chain intact{}",
                    path.display(),
                    report.records,
                    report.tasks,
                    if anchor.is_some() {
                        ", matches the anchor"
                    } else {
                        ""
                    }
                );
            } else {
                println!("{}: {} problem(s)", path.display(), report.problems.len());
                for p in &report.problems {
                    println!(
                        "  line {}: {:?}: {}",
                        p.line,
                        p.kind,
                        terminal_safe(&p.detail)
                    );
                }
            }
            if !json {
                for r in &report.recovered {
                    println!("  note: {}", terminal_safe(r));
                }
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        JournalCmd::Anchor { path } => {
            let report = verify_journal(&path, &key, None)?;
            if !report.is_ok() {
                anyhow::bail!(
                    "{} does not verify ({} problem(s)); run `warden journal verify` — an anchor of a damaged journal would vouch for the damage",
                    path.display(),
                    report.problems.len()
                );
            }
            println!("{}", serde_json::to_string(&report.head)?);
            Ok(ExitCode::SUCCESS)
        }
        JournalCmd::List { journal } => {
            let tasks = task_list(&read_journal(&journal, &key)?);
            if json {
                output::json(&tasks)?;
            } else {
                let mut rows = vec![vec![
                    "TASK".to_string(),
                    "STARTED".to_string(),
                    "ENV".to_string(),
                    "OUTCOME".to_string(),
                    "GOAL".to_string(),
                ]];
                rows.extend(tasks.into_iter().map(|t| {
                    vec![
                        terminal_safe(&t.task_id),
                        t.started,
                        terminal_safe(&t.env),
                        t.outcome
                            .map_or("(running or interrupted)", |o| o.as_str())
                            .to_string(),
                        terminal_safe(&t.goal),
                    ]
                }));
                output::table(&rows)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCmd::Export { since, journal } => {
            let since = parse_since(&since)?;
            let report = verify_journal(&journal, &key, None)?;
            if !report.is_ok() {
                eprintln!(
                    "warning: {} has {} problem(s) (`warden journal verify`); exporting it as it is",
                    journal.display(),
                    report.problems.len()
                );
            }
            let n = export(&journal, since)?;
            eprintln!("exported {n} record(s) since {since}");
            Ok(ExitCode::SUCCESS)
        }
        JournalCmd::Show { task, journal } => {
            let records = read_journal(&journal, &key)?;
            let task = if task == "last" {
                records
                    .iter()
                    .rev()
                    .find(|r| matches!(r.event, warden::journal::JournalEvent::Task(_)))
                    .map(|r| r.task_id.clone())
                    .unwrap_or(task)
            } else {
                task
            };
            if !records.iter().any(|r| r.task_id == task) {
                anyhow::bail!(
                    "no task `{}` in {}\nhint: `warden journal list` shows the tasks",
                    terminal_safe(&task),
                    journal.display()
                );
            }
            if json {
                let mine: Vec<_> = records.iter().filter(|r| r.task_id == task).collect();
                output::json(&mine)?;
            } else {
                print!("{}", render_timeline(&records, &task));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
