//! Alarms of `warden_anomaly::detect` on the Numenta Anomaly Benchmark (NAB)
//! files against their labelled anomaly windows, with one config for all.
//!
//! ```text
//! cargo run --release -p warden-anomaly --example nab_eval [DATA_DIR] [--config JSON] [--alarms]
//! ```
//!
//! `DATA_DIR` defaults to `<workspace>/../shared/data/nab` and must hold
//! `data/<category>/<file>.csv` (`timestamp,value`) and
//! `labels/combined_windows.json`. `--config` takes a JSON [`Config`] (only
//! the fields to change); the default config is the headline. `--alarms`
//! lists every alarm on stderr.
//!
//! Per file: windows caught (an alarm inside the window), false alarms
//! (alarms outside every window; alarms are already events, one per
//! incident), and the delay from window start to the first alarm in it.
//! Every alarm counts in the table. The NAB-like score follows NAB's
//! standard profile (A_TP = 1, A_FP = -0.11, A_FN = -1, scaled sigmoid of the
//! position relative to the window) and, like NAB, ignores alarms in each
//! file's probationary period (the first 15% of points, at most 750).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a harness: the table is its stdout, --alarms goes to stderr"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use warden_anomaly::{Config, Point, Series, Time, detect};

const A_TP: f64 = 1.0;
const A_FP: f64 = -0.11;
const A_FN: f64 = -1.0;

/// One file's outcome.
#[derive(Default)]
struct Outcome {
    points: usize,
    windows: usize,
    caught: usize,
    false_alarms: usize,
    /// Delay of each caught window: (points, share of the window).
    delays: Vec<(usize, f64)>,
    nab: f64,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = None;
    let mut config = Config::default();
    let mut verbose = false;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let json = args.next().context("--config needs a JSON object")?;
            config = serde_json::from_str(&json).context("parsing --config")?;
        } else if arg == "--alarms" {
            verbose = true;
        } else {
            data_dir = Some(PathBuf::from(arg));
        }
    }
    let data_dir = data_dir
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab"));
    let labels_path = data_dir.join("labels/combined_windows.json");
    if !labels_path.is_file() {
        println!(
            "skipped: no NAB data at {} (pass the NAB dir as the first argument)",
            data_dir.display()
        );
        return Ok(());
    }
    let labels: HashMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&fs_err::read_to_string(&labels_path)?)
            .with_context(|| format!("parsing {}", labels_path.display()))?;

    let mut files = Vec::new();
    for category in sorted_dir(&data_dir.join("data"))? {
        for file in sorted_dir(&category)? {
            if file.extension().is_some_and(|e| e == "csv") {
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        println!(
            "skipped: no csv files under {}",
            data_dir.join("data").display()
        );
        return Ok(());
    }

    println!("config: {}\n", serde_json::to_string(&config)?);
    println!(
        "| file | points | period | windows | caught | false alarms | first-detection delay (points, % of window) | NAB raw |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
    let mut total = Outcome::default();
    for path in &files {
        let name = label_key(&data_dir, path)?;
        let windows = labels
            .get(&name)
            .with_context(|| format!("no labels for {name}"))?;
        if verbose {
            eprintln!("{name}: windows {windows:?}");
        }
        let (points, period, outcome, timed) = evaluate(path, windows, &config, verbose)?;
        let name = if timed {
            name
        } else {
            format!("{name} (values only*)")
        };
        let delays = if outcome.delays.is_empty() {
            "-".to_owned()
        } else {
            outcome
                .delays
                .iter()
                .map(|(p, share)| format!("{p} ({:.0}%)", share * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {name} | {points} | {} | {} | {} | {} | {delays} | {:.2} |",
            period.map_or("-".to_owned(), |p| p.to_string()),
            outcome.windows,
            outcome.caught,
            outcome.false_alarms,
            outcome.nab,
        );
        total.points += outcome.points;
        total.windows += outcome.windows;
        total.caught += outcome.caught;
        total.false_alarms += outcome.false_alarms;
        total.delays.extend(outcome.delays);
        total.nab += outcome.nab;
    }
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let mean_share =
        total.delays.iter().map(|d| d.1).sum::<f64>() / total.delays.len().max(1) as f64;
    println!(
        "| **total ({} files)** | {} | | {} | {} | {} | mean {:.0}% of window | {:.2} |",
        files.len(),
        total.points,
        total.windows,
        total.caught,
        total.false_alarms,
        mean_share * 100.0,
        total.nab,
    );
    // NAB's normalisation: 0 for no alarms at all, 100 for catching every
    // window at its start with no false alarm.
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let null = A_FN * total.windows as f64;
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let perfect = A_TP * total.windows as f64;
    println!(
        "\nNAB-like normalised score on this subset: {:.1} (0 = no alarms, 100 = perfect; not comparable to the 58-file scoreboard)",
        100.0 * (total.nab - null) / (perfect - null)
    );
    Ok(())
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs_err::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

fn label_key(data_dir: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(data_dir.join("data"))?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

fn seconds(text: &str) -> Result<f64> {
    Time::Text(text.to_owned())
        .seconds()
        .with_context(|| format!("bad timestamp {text:?}"))
}

fn evaluate(
    path: &Path,
    windows: &[[String; 2]],
    config: &Config,
    verbose: bool,
) -> Result<(usize, Option<usize>, Outcome, bool)> {
    let mut reader = csv::Reader::from_reader(fs_err::File::open(path)?);
    let mut points = Vec::new();
    let mut times = Vec::new();
    for row in reader.records() {
        let row = row?;
        let t = row.get(0).context("missing timestamp")?;
        let v: f64 = row.get(1).context("missing value")?.trim().parse()?;
        times.push(seconds(t)?);
        points.push(Point {
            t: Some(Time::Text(t.to_owned())),
            v,
        });
    }
    let n = points.len();
    // A few NAB files repeat a timestamp (a DST change); the detector rejects
    // that, so such files are scored as plain values, which keeps every point
    // aligned with the labels.
    let sorted = times.windows(2).all(|w| w[0] < w[1]);
    let series = if sorted {
        Series::from(points)
    } else {
        Series::from(points.into_iter().map(|p| p.v).collect::<Vec<_>>())
    };
    let report = detect(&series, config).with_context(|| path.display().to_string())?;
    if verbose {
        for a in &report.anomalies {
            eprintln!(
                "  {} {:?} score {:.1} value {} expected {:.2} [{:.2}, {:.2}]",
                a.index, a.kind, a.score, a.value, a.expected, a.lower, a.upper
            );
        }
    }
    let alarms: Vec<usize> = report.anomalies.iter().map(|a| a.index).collect();

    // Windows as inclusive index ranges.
    let mut spans = Vec::new();
    for [start, end] in windows {
        let (start, end) = (seconds(start)?, seconds(end)?);
        let first = times.partition_point(|&t| t < start);
        let last = times.partition_point(|&t| t <= end);
        if last == 0 || first >= last {
            bail!("window {start}..{end} holds no point of {}", path.display());
        }
        spans.push((first, last - 1));
    }
    let mut outcome = Outcome {
        points: n,
        windows: spans.len(),
        ..Outcome::default()
    };
    let inside = |i: usize| spans.iter().position(|&(a, b)| (a..=b).contains(&i));
    for &(a, b) in &spans {
        if let Some(&first) = alarms.iter().find(|&&i| (a..=b).contains(&i)) {
            outcome.caught += 1;
            #[allow(clippy::cast_precision_loss, reason = "small counts")]
            outcome
                .delays
                .push((first - a, (first - a) as f64 / (b - a + 1) as f64));
        }
    }
    // Consecutive alarm points make one event (the detector's cooldown
    // already merges most).
    let mut previous: Option<usize> = None;
    for &i in &alarms {
        if inside(i).is_none() && previous.is_none_or(|p| p + 1 != i) {
            outcome.false_alarms += 1;
        }
        previous = Some(i);
    }
    outcome.nab = nab_score(&alarms, &spans, n);
    Ok((n, report.period, outcome, sorted))
}

/// NAB's scaled sigmoid: about 1 at relative position -1 (window start),
/// 0 at the window end, towards -1 well after it.
fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

fn nab_score(alarms: &[usize], spans: &[(usize, usize)], n: usize) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small counts"
    )]
    let probation = ((0.15 * n as f64).floor() as usize).min(750);
    let max_tp = scaled_sigmoid(-1.0);
    let mut score = 0.0;
    let mut window_hit = vec![false; spans.len()];
    for &i in alarms.iter().filter(|&&i| i >= probation) {
        if let Some(w) = spans.iter().position(|&(a, b)| (a..=b).contains(&i)) {
            if !window_hit[w] {
                window_hit[w] = true;
                let (a, b) = spans[w];
                #[allow(clippy::cast_precision_loss, reason = "small counts")]
                let position = -((b - i + 1) as f64) / (b - a + 1) as f64;
                score += A_TP * scaled_sigmoid(position) / max_tp;
            }
        } else {
            let before = spans.iter().rfind(|&&(_, b)| b < i);
            let unweighted = match before {
                None => -1.0,
                #[allow(clippy::cast_precision_loss, reason = "small counts")]
                Some(&(a, b)) => scaled_sigmoid((i - b) as f64 / (b - a).max(1) as f64),
            };
            score += -A_FP * unweighted;
        }
    }
    score + A_FN * window_hit.iter().filter(|hit| !**hit).count() as f64
}
