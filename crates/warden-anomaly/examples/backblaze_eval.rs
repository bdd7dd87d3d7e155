//! `SmartRisk` against Backblaze drive-days: does a high score come before
//! a failure?
//!
//! ```text
//! cargo run --release -p warden-anomaly --example backblaze_eval [CSV]
//! ```
//!
//! `CSV` defaults to `<workspace>/../shared/data/backblaze/smart_2013_dev_half.csv`
//! (columns `date,serial_number,model,capacity_bytes,failure,smart_{1,5,9,194,197}_raw`).
//!
//! Each drive-day is scored from that drive's rows up to and including the
//! day (so growth is seen, the future is not). Its label: the drive fails
//! (the row with `failure = 1`) within N days, N = 7 and 30. Baseline: the
//! Backblaze rule "any of 5/187/188/197/198 raw > 0"; the file only has 5
//! and 197, so both the rule and the score see only those two (plus 9 and
//! 194, which the score uses as minor evidence).
//!
//! The threshold is the score's own `medium` level ([`MEDIUM_RISK`], 0.3),
//! fixed in the module before this data was read; `high` is shown beside it.
//! Nothing is fitted to this file.
#![allow(clippy::print_stdout, reason = "a harness: the table is its stdout")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use warden_anomaly::{HIGH_RISK, MEDIUM_RISK, SmartRisk, SmartRow, Time};

/// One drive-day.
struct Day {
    t: f64,
    failure: bool,
    row: SmartRow,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    fn precision(self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn recall(self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
}

#[allow(clippy::cast_precision_loss, reason = "counts are small")]
fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn main() -> Result<()> {
    let path = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/backblaze/smart_2013_dev_half.csv"),
    };
    if !path.exists() {
        println!(
            "skipped: {} not found (pass the Backblaze CSV path as the first argument)",
            path.display()
        );
        return Ok(());
    }
    let mut reader = csv::Reader::from_reader(fs_err::File::open(&path)?);
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let (c_date, c_serial, c_failure) = (col("date")?, col("serial_number")?, col("failure")?);
    let attributes: Vec<(u16, usize)> = [1_u16, 5, 9, 187, 188, 194, 197, 198]
        .into_iter()
        .filter_map(|id| col(&format!("smart_{id}_raw")).ok().map(|c| (id, c)))
        .collect();
    let mut drives: BTreeMap<String, Vec<Day>> = BTreeMap::new();
    for record in reader.records() {
        let record = record?;
        let date = &record[c_date];
        let t = Time::Text(format!("{date}T00:00:00Z"))
            .seconds()
            .with_context(|| format!("bad date {date}"))?;
        let mut row = SmartRow::new();
        for &(id, c) in &attributes {
            // An empty cell means the drive does not report the attribute.
            if let Ok(v) = record[c].parse::<f64>() {
                row.insert(id, v);
            }
        }
        drives
            .entry(record[c_serial].to_string())
            .or_default()
            .push(Day {
                t,
                failure: &record[c_failure] == "1",
                row,
            });
    }
    let horizons = [7.0, 30.0];
    // Per horizon: baseline, score >= medium, score >= high.
    let mut counts = [[Counts::default(); 3]; 2];
    let (mut days, mut failed) = (0, 0);
    for history in drives.values_mut() {
        history.sort_by(|a, b| a.t.total_cmp(&b.t));
        let failed_at = history.iter().find(|d| d.failure).map(|d| d.t);
        failed += usize::from(failed_at.is_some());
        let rows: Vec<SmartRow> = history.iter().map(|d| d.row.clone()).collect();
        for (i, day) in history.iter().enumerate() {
            days += 1;
            let risk = SmartRisk::assess(&rows[..=i])?;
            let rule = [5, 187, 188, 197, 198]
                .iter()
                .any(|id| day.row.get(id).is_some_and(|&v| v > 0.0));
            for (h, days_ahead) in horizons.iter().enumerate() {
                let label = failed_at.is_some_and(|f| {
                    let ahead = (f - day.t) / 86_400.0;
                    (0.0..=*days_ahead).contains(&ahead)
                });
                counts[h][0].add(rule, label);
                counts[h][1].add(risk.score >= MEDIUM_RISK, label);
                counts[h][2].add(risk.score >= HIGH_RISK, label);
            }
        }
    }
    println!(
        "{} drive-days, {} drives, {failed} failures ({})\n",
        days,
        drives.len(),
        path.display()
    );
    println!("| horizon | predictor | TP | FP | FN | precision | recall |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let names = [
        "Backblaze rule: 5 or 197 raw > 0".to_string(),
        format!("SmartRisk score >= {MEDIUM_RISK} (medium)"),
        format!("SmartRisk score >= {HIGH_RISK} (high)"),
    ];
    for (h, days_ahead) in horizons.iter().enumerate() {
        for (p, name) in names.iter().enumerate() {
            let c = counts[h][p];
            println!(
                "| {days_ahead} d | {name} | {} | {} | {} | {:.3} | {:.3} |",
                c.tp,
                c.fp,
                c.fn_,
                c.precision(),
                c.recall()
            );
        }
    }
    Ok(())
}
