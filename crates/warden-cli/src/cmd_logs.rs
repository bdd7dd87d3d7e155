//! `warden logs templates`: the log miner on files too big for a plugin's
//! JSON input, streamed line by line.

use std::io::{BufRead, BufReader, IsTerminal as _, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use warden::terminal_safe;
use warden_logmine::{Config, Miner, Template, mine};

use crate::output;

/// Longest line mined, in bytes; the rest of a longer line is dropped
/// (its head still counts).
const LINE_LIMIT: usize = 64 * 1024;

/// Most lines `--exact` holds in memory.
const EXACT_LIMIT: usize = 5_000_000;

/// Mine log files for message templates, locally, with the engine the
/// `log-templates` plugin uses.
#[derive(Debug, Subcommand)]
pub enum LogsCmd {
    /// Group log lines into templates such as `Connected to <*> in <*>`,
    /// most common first, with the rare ones marked.
    ///
    /// Streams: memory grows with the number of templates, not lines, so a
    /// 1 GB log is fine; a progress bar shows on a terminal. With --exact,
    /// every line is held and templates are refined afterwards (merged
    /// where they differ only in parameters, split where a wildcard hides
    /// a few recurring words), as the plugin does.
    ///
    /// Examples:
    ///   warden logs templates /var/log/syslog
    ///   journalctl -u checkout | warden logs templates - --top 20 --json
    Templates(TemplatesArgs),
}

/// `warden logs templates`.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Log files; `-` (or none) reads standard input.
    files: Vec<PathBuf>,
    /// Show this many templates, most common first (0: all).
    #[arg(long, default_value_t = 50)]
    top: usize,
    /// Hold every line and refine the templates afterwards (at most 5
    /// million lines).
    #[arg(long)]
    exact: bool,
    /// Similarity a line needs to join a template (0 to 1).
    #[arg(long)]
    similarity: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    lines: u64,
    bytes: u64,
    cut_lines: u64,
    templates: usize,
    shown: Vec<Template>,
}

pub fn run(cmd: LogsCmd, json: bool) -> anyhow::Result<ExitCode> {
    let LogsCmd::Templates(args) = cmd;
    let mut config = Config::default();
    if let Some(s) = args.similarity {
        anyhow::ensure!(
            (0.0..=1.0).contains(&s),
            "--similarity must be between 0 and 1, got {s}"
        );
        config.similarity = s;
    }
    let sources: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|p| (p.as_os_str() != "-").then(|| p.clone()))
            .collect()
    };
    let total: u64 = sources
        .iter()
        .flatten()
        .filter_map(|p| fs_err::metadata(p).ok().map(|m| m.len()))
        .sum();
    let bar = progress(total, sources.iter().any(Option::is_none));
    let mut miner = Miner::new(config.clone());
    let mut held: Vec<String> = Vec::new();
    let (mut lines, mut bytes, mut cut_lines) = (0u64, 0u64, 0u64);
    let mut buf = Vec::with_capacity(4096);
    for source in &sources {
        let reader: Box<dyn Read> = match source {
            Some(p) => {
                Box::new(fs_err::File::open(p).with_context(|| format!("reading {}", p.display()))?)
            }
            None => Box::new(std::io::stdin().lock()),
        };
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        loop {
            buf.clear();
            let n = read_line(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            if n > LINE_LIMIT && buf.len() == LINE_LIMIT {
                cut_lines += 1;
            }
            bar.inc(n as u64);
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            if args.exact {
                anyhow::ensure!(
                    held.len() < EXACT_LIMIT,
                    "--exact holds at most {EXACT_LIMIT} lines; drop --exact to stream"
                );
                held.push(line.to_string());
            } else {
                miner.add(line);
            }
        }
    }
    bar.finish_and_clear();
    let mut templates = if args.exact {
        mine(&held, &config).templates
    } else {
        miner.templates()
    };
    let count = templates.len();
    templates.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    if args.top > 0 {
        templates.truncate(args.top);
    }
    let report = Report {
        lines,
        bytes,
        cut_lines,
        templates: count,
        shown: templates,
    };
    if json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} lines, {} templates{}",
        report.lines,
        report.templates,
        if report.cut_lines > 0 {
            format!(
                " ({} lines longer than {} KiB were cut)",
                report.cut_lines,
                LINE_LIMIT / 1024
            )
        } else {
            String::new()
        }
    );
    for t in &report.shown {
        println!(
            "{:>9}  {}{}",
            t.count,
            if t.rare { "rare  " } else { "" },
            terminal_safe(&t.text)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Read one line into `buf`, keeping at most [`LINE_LIMIT`] bytes of it;
/// returns the bytes consumed (0 at the end).
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
    let mut consumed = 0;
    loop {
        let chunk = reader.fill_buf().context("reading the log")?;
        if chunk.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = LINE_LIMIT.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        consumed += take;
        if done {
            return Ok(consumed);
        }
    }
}

fn progress(total: u64, stdin: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    if stdin || total == 0 {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} mining {bytes} ({bytes_per_sec})")
        {
            bar.set_style(style);
        }
        return bar;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} mining [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
