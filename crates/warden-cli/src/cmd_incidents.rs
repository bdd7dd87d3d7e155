//! `warden incidents …`: the incident memory from the command line.
//!
//! The memory lives in a data directory: `--data-dir`, else `$WARDEN_HOME`,
//! else the platform data directory plus `warden` (on Linux
//! `~/.local/share/warden`). Data goes to stdout (a table, or JSON with
//! `--json`), progress and logs to stderr.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use warden::memory::{
    Cluster, Columns, HashingEmbedder, IngestReport, Memory, MemoryError, MemoryOptions,
};

/// Records per transaction when ingesting a file: each batch is committed
/// atomically, so an interrupted ingest keeps every finished batch.
const DEFAULT_BATCH: usize = 1000;

/// Remember, search and group incidents and tickets.
#[derive(Debug, clap::Subcommand)]
pub enum IncidentsCmd {
    /// Ingest incidents from a JSONL or CSV file (same id = update).
    ///
    /// Columns are found by common names (`id`/`Issue id`/`key`,
    /// `title`/`Summary`, `body`/`Description`, and severity, created,
    /// resolved, resolution, labels, plan). The whole file is checked first:
    /// a malformed record is reported with its line and nothing is written.
    Ingest {
        /// JSONL (`.jsonl`, `.ndjson`) or CSV file.
        file: PathBuf,
        /// Column holding the record id.
        #[arg(long, value_name = "NAME")]
        id_col: Option<String>,
        /// Column holding the title.
        #[arg(long, value_name = "NAME")]
        title_col: Option<String>,
        /// Column holding the body.
        #[arg(long, value_name = "NAME")]
        body_col: Option<String>,
        /// Records per atomic batch.
        #[arg(long, default_value_t = DEFAULT_BATCH, value_name = "N")]
        batch_size: usize,
        /// HNSW links per node when this ingest creates the store (a store
        /// keeps its shape). Near a million records use 32 with
        /// `--index-ef-construction 200`. Default 16.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(4..=128))]
        index_links: Option<u16>,
        /// HNSW build beam when this ingest creates the store. Default 100.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(10..=2000))]
        index_ef_construction: Option<u16>,
    },
    /// Stored incidents most similar to TEXT: id, score, cluster.
    Similar {
        /// Free text: an alert, a log line, a ticket title.
        text: String,
        /// Number of hits.
        #[arg(short, default_value_t = 5)]
        k: usize,
    },
    /// Clusters of similar incidents, largest first.
    Clusters {
        /// Show at most this many clusters.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// One stored incident and its cluster.
    Show {
        /// Incident id.
        id: String,
    },
    /// Recompute all clusters from the similarity graph.
    Recluster,
}

/// Runs an `incidents` subcommand against the data directory.
///
/// # Errors
/// Unreadable or malformed input, a data directory in use by another
/// process, an unknown id.
pub fn run(cmd: IncidentsCmd, data_dir: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let dir = resolve_data_dir(data_dir)?;
    let mut options = MemoryOptions::default();
    if let IncidentsCmd::Ingest {
        index_links,
        index_ef_construction,
        ..
    } = &cmd
    {
        options.max_connections = index_links.map_or(options.max_connections, usize::from);
        options.ef_construction =
            index_ef_construction.map_or(options.ef_construction, usize::from);
    }
    let embedder = Box::new(HashingEmbedder::default());
    let mut memory = Memory::open_with(&dir, options, embedder).map_err(|e| match e {
        MemoryError::Locked { .. } => anyhow::Error::new(e).context(format!(
            "hint: another warden process is using {}; wait for it or pass another --data-dir",
            dir.display()
        )),
        other => anyhow::Error::new(other).context(format!(
            "cannot open the incident memory in {}",
            dir.display()
        )),
    })?;
    match cmd {
        IncidentsCmd::Ingest {
            file,
            id_col,
            title_col,
            body_col,
            batch_size,
            ..
        } => {
            let mut columns = Columns::default();
            columns.id = id_col;
            columns.title = title_col;
            columns.body = body_col;
            let report = ingest(&mut memory, &file, &columns, batch_size.max(1))?;
            print_ingest(&report, &file, json)?;
        }
        IncidentsCmd::Similar { text, k } => {
            let hits = memory.recall(&text, k)?;
            print_similar(&hits, json)?;
        }
        IncidentsCmd::Clusters { limit } => {
            let mut clusters = memory.clusters()?;
            clusters.truncate(limit.unwrap_or(usize::MAX));
            print_clusters(&clusters, json)?;
        }
        IncidentsCmd::Show { id } => {
            let Some(view) = memory.show(&id)? else {
                bail!("no incident with id {id:?} in {}", dir.display());
            };
            print_show(&view, json)?;
        }
        IncidentsCmd::Recluster => {
            let report = memory.recluster()?;
            print_json_or(json, serde_json::to_value(&report)?, || {
                format!(
                    "{} records in {} clusters ({} singletons, {} graph edges)",
                    report.records, report.clusters, report.singletons, report.edges
                )
            })?;
        }
    }
    memory.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--data-dir`, else `$WARDEN_HOME`, else `<platform data dir>/warden`.
fn resolve_data_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir);
    }
    if let Some(home) = std::env::var_os("WARDEN_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let base = dirs::data_dir()
        .context("no platform data directory; pass --data-dir or set WARDEN_HOME")?;
    Ok(base.join("warden"))
}

fn ingest(
    memory: &mut Memory,
    file: &Path,
    columns: &Columns,
    batch: usize,
) -> Result<IngestReport> {
    let records = warden::memory::read_incidents(file, columns)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(records.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} ingesting [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut total = IngestReport::default();
    for chunk in records.chunks(batch) {
        let report = memory.ingest(chunk.to_vec())?;
        total.inserted += report.inserted;
        total.updated += report.updated;
        total.unchanged += report.unchanged;
        total.new_clusters += report.new_clusters;
        total.reembedded |= report.reembedded;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(total)
}

#[allow(clippy::print_stdout, reason = "command output is data on stdout")]
fn print_json_or(
    json: bool,
    value: serde_json::Value,
    text: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn print_ingest(report: &IngestReport, file: &Path, json: bool) -> Result<()> {
    print_json_or(json, serde_json::to_value(report)?, || {
        format!(
            "{}: {} new, {} updated, {} unchanged; {} new clusters",
            file.display(),
            report.inserted,
            report.updated,
            report.unchanged,
            report.new_clusters
        )
    })
}

#[allow(clippy::print_stdout, reason = "command output is data on stdout")]
fn print_similar(hits: &[warden::memory::RecallHit], json: bool) -> Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.incident.id,
                    "score": h.score,
                    "cluster": h.cluster.as_ref().map(|c| c.id),
                    "title": h.incident.title,
                    "resolution": h.incident.resolution,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if hits.is_empty() {
        println!("no similar incident");
        return Ok(());
    }
    println!("{:>6}  {:<16}  {:>7}  title", "score", "id", "cluster");
    for h in hits {
        let cluster = h
            .cluster
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| c.id.to_string());
        println!(
            "{:>6.3}  {:<16}  {:>7}  {}",
            h.score,
            t(&h.incident.id),
            cluster,
            t(&shorten(&h.incident.title, 80))
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "command output is data on stdout")]
fn print_clusters(clusters: &[Cluster], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(clusters)?);
        return Ok(());
    }
    println!(
        "{:>7}  {:>5}  {:<10}  {:<10}  label (representatives)",
        "cluster", "size", "first", "last"
    );
    for c in clusters {
        println!(
            "{:>7}  {:>5}  {:<10}  {:<10}  {} ({})",
            c.id,
            c.size,
            day(c.first_seen.map(|t| t.to_string())),
            day(c.last_seen.map(|t| t.to_string())),
            t(&c.label.join(" ")),
            t(&c.representatives.join(", "))
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "command output is data on stdout")]
fn print_show(view: &warden::memory::IncidentView, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(view)?);
        return Ok(());
    }
    let i = &view.incident;
    println!("id:         {}", t(&i.id));
    println!("title:      {}", t(&i.title));
    let optional = [
        ("service", i.service.clone()),
        ("severity", i.severity.clone()),
        (
            "labels",
            (!i.labels.is_empty()).then(|| i.labels.join(", ")),
        ),
        ("opened", i.opened_at.map(|t| t.to_string())),
        ("resolved", i.resolved_at.map(|t| t.to_string())),
        ("resolution", i.resolution.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            println!("{:<11} {}", format!("{name}:"), t(&value));
        }
    }
    if let Some(c) = &view.cluster {
        println!(
            "cluster:    {} ({} members: {})",
            c.id,
            c.size,
            t(&c.label.join(" "))
        );
    }
    if let Some(plan) = &i.plan {
        println!("plan:       {}", serde_json::to_string(plan)?);
    }
    if !i.body.is_empty() {
        println!("\n{}", crate::output::safe_lines(&i.body));
    }
    Ok(())
}

use warden::terminal_safe as t;

/// The date part of an RFC 3339 timestamp.
fn day(t: Option<String>) -> String {
    t.and_then(|t| t.split('T').next().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

fn shorten(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
