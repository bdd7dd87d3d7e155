//! Mines one log file `RUNS` times and prints the best lines/s: a loop to
//! time or count instructions of (`benches/README.md`, "Log mining").
//!
//! ```text
//! cargo build --release -p warden-logmine --example mine_loop
//! target/release/examples/mine_loop FILE RUNS
//! # instructions per `mine`: (count at 12 runs - count at 2 runs) / 10
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/mine_loop FILE 12
//! ```
//!
//! With `RUNS` 0 it prints the templates and every line's template instead,
//! from `mine` and from `Miner::add`, so the output of two builds can be
//! compared with `cmp`: a speed change must not change what is mined.
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use warden_logmine::{Config, Miner, mine};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().context("usage: mine_loop FILE RUNS")?;
    let runs: usize = args.next().context("usage: mine_loop FILE RUNS")?.parse()?;
    let raw = fs_err::read(&path)?;
    let text = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = text.lines().collect();
    let config = Config::default();
    // Written, not printed: a closed pipe (`| head`) ends the run quietly.
    let mut out = std::io::stdout().lock();
    if runs == 0 {
        let mining = mine(&lines, &config);
        for template in &mining.templates {
            writeln!(out, "{} {}", template.count, template.text)?;
        }
        writeln!(out, "{:?}", mining.assignments)?;
        let mut miner = Miner::new(config);
        let ids: Vec<_> = lines.iter().map(|line| miner.add(line)).collect();
        writeln!(out, "{ids:?}")?;
        for template in miner.templates() {
            writeln!(out, "{} {}", template.count, template.text)?;
        }
        return Ok(());
    }
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        black_box(mine(black_box(&lines), &config));
        best = best.min(started.elapsed());
    }
    writeln!(
        out,
        "{:.0} lines/s (best of {runs} runs of {} lines)",
        lines.len() as f64 / best.as_secs_f64(),
        lines.len()
    )?;
    Ok(())
}
