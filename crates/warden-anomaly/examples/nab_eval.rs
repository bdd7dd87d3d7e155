//! `warden_anomaly::detect` on the Numenta Anomaly Benchmark (NAB) files,
//! scored with NAB's own rules (`warden_anomaly::nab`), beside the published
//! detectors' scores on the same files.
//!
//! ```text
//! cargo run --release -p warden-anomaly --example nab_eval -- [DATA_DIR] [--config JSON] [--alarms]
//! cargo run --release -p warden-anomaly --example nab_eval -- [DATA_DIR] --check
//! cargo run --release -p warden-anomaly --example nab_eval -- [DATA_DIR] --cross [--config JSON]
//! ```
//!
//! `DATA_DIR` defaults to `<workspace>/../shared/data/nab` and must hold
//! `data/<category>/<file>.csv` (`timestamp,value`),
//! `labels/combined_windows.json`, and for the peers and `--check`,
//! `results/` and `config/thresholds.json` as NAB publishes them.
//!
//! - default: one config (`--config` takes a JSON [`Config`] with the fields
//!   to change) on every file: per-file and per-category NAB scores (standard
//!   profile), the detector's alarms being its detections (anomaly score 1 on
//!   an alarm's row, 0 elsewhere, threshold 0.5). `--alarms` lists them on stderr.
//! - `--check`: the scorer against NAB's published numbers: per-row `S(t)`
//!   of the golden result files for every profile, per-file scores and counts
//!   of the published detectors, the null detector on every file, and the
//!   normalisation of the published corpus totals.
//! - `--cross`: the graded scores (`warden_anomaly::scores`) of one config
//!   (`--config` applies) turned into alarms (`alarms_at`, the detector's
//!   cooldown) at each level of a grid; the level chosen by NAB's optimiser
//!   (best raw score, the higher level on a tie) on all files, on one
//!   category and scored on the other (both ways), and on all other files
//!   and scored on each file left out; each beside the fixed level 0.5 (the
//!   configured thresholds, what `detect` does).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "a harness: the tables are its stdout, --alarms goes to stderr; counts are small"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use warden_anomaly::nab::{FileSweep, Profile, normalized};
use warden_anomaly::{Config, Point, Series, Time, alarms_at, detect, scores};

/// Published detectors shown beside ours (directory names under `results/`).
const PEERS: [(&str, &str); 6] = [
    ("numenta", "HTM"),
    ("ARTime", "ARTime"),
    ("contextOSE", "CAD OSE"),
    ("relativeEntropy", "RelEntropy"),
    ("randomCutForest", "RCF"),
    ("windowedGaussian", "WinGauss"),
];

/// One NAB data file with its labels.
struct File {
    /// `category/name.csv`, as in the label file.
    key: String,
    times: Vec<f64>,
    values: Vec<f64>,
    windows: Vec<(f64, f64)>,
}

impl File {
    /// `artificial` (with or without anomaly) or the category's name.
    fn group(&self) -> &str {
        let category = self.key.split('/').next().unwrap_or_default();
        if category.starts_with("artificial") {
            "artificial"
        } else {
            category
        }
    }

    /// The file as a series.
    fn series(&self) -> Series {
        // A few NAB files repeat a timestamp (a DST change); the detector
        // rejects that, so such files are scored as plain values, which keeps
        // every point aligned with the labels.
        let sorted = self.times.windows(2).all(|w| w[0] < w[1]);
        if sorted {
            Series::from(
                self.times
                    .iter()
                    .zip(&self.values)
                    .map(|(&t, &v)| Point::at(t, v))
                    .collect::<Vec<_>>(),
            )
        } else {
            Series::from(self.values.clone())
        }
    }

    /// The detector's alarms on this file, as row indices.
    fn alarms(&self, config: &Config, verbose: bool) -> Result<Vec<usize>> {
        let report = detect(&self.series(), config).with_context(|| self.key.clone())?;
        if verbose {
            eprintln!("{}: windows {:?}", self.key, self.windows);
            for a in &report.anomalies {
                eprintln!(
                    "  {} {:?} score {:.1} value {} expected {:.2} [{:.2}, {:.2}]",
                    a.index, a.kind, a.score, a.value, a.expected, a.lower, a.upper
                );
            }
        }
        Ok(report.anomalies.iter().map(|a| a.index).collect())
    }

    /// The NAB sweep of a detector that flags exactly `alarms`.
    fn sweep(&self, alarms: &[usize]) -> Result<FileSweep> {
        let mut scores = vec![0.0; self.times.len()];
        for &i in alarms {
            scores[i] = 1.0;
        }
        FileSweep::new(&self.times, &scores, &self.windows, &Profile::STANDARD)
            .with_context(|| self.key.clone())
    }
}

/// Raw score, null score and window count of a set of files.
#[derive(Default, Clone, Copy)]
struct Tally {
    raw: f64,
    null: f64,
    windows: usize,
}

impl Tally {
    fn add(&mut self, raw: f64, null: f64, windows: usize) {
        self.raw += raw;
        self.null += null;
        self.windows += windows;
    }

    fn normalized(&self) -> f64 {
        normalized(self.raw, self.null, self.windows, &Profile::STANDARD)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = None;
    let mut config = Config::default();
    let mut verbose = false;
    let mut mode = "table";
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                let json = args.next().context("--config needs a JSON object")?;
                config = serde_json::from_str(&json).context("parsing --config")?;
            }
            "--alarms" => verbose = true,
            "--check" => mode = "check",
            "--cross" => mode = "cross",
            _ => data_dir = Some(PathBuf::from(arg)),
        }
    }
    let data_dir = data_dir
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab"));
    if !data_dir.join("labels/combined_windows.json").is_file() {
        println!(
            "skipped: no NAB data at {} (pass the NAB dir as the first argument)",
            data_dir.display()
        );
        return Ok(());
    }
    let files = load(&data_dir)?;
    match mode {
        "check" => check(&data_dir, &files),
        "cross" => cross(&data_dir, &files, &config),
        _ => table(&data_dir, &files, &config, verbose),
    }
}

/// Every data file with its windows, in path order.
fn load(data_dir: &Path) -> Result<Vec<File>> {
    let labels_path = data_dir.join("labels/combined_windows.json");
    let labels: HashMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&fs_err::read_to_string(&labels_path)?)
            .with_context(|| format!("parsing {}", labels_path.display()))?;
    let mut files = Vec::new();
    for category in sorted_dir(&data_dir.join("data"))? {
        for path in sorted_dir(&category)? {
            if path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let key = label_key(data_dir, &path)?;
            let windows = labels
                .get(&key)
                .with_context(|| format!("no labels for {key}"))?
                .iter()
                .map(|[a, b]| Ok((seconds(a)?, seconds(b)?)))
                .collect::<Result<Vec<_>>>()?;
            let (times, values) = read_series(&path)?;
            files.push(File {
                key,
                times,
                values,
                windows,
            });
        }
    }
    if files.is_empty() {
        bail!("no csv files under {}", data_dir.join("data").display());
    }
    Ok(files)
}

/// `timestamp,value` rows of a NAB csv (extra columns ignored).
fn read_series(path: &Path) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut reader = csv::Reader::from_reader(fs_err::File::open(path)?);
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for row in reader.records() {
        let row = row?;
        times.push(seconds(row.get(0).context("missing timestamp")?)?);
        values.push(row.get(1).context("missing value")?.trim().parse()?);
    }
    Ok((times, values))
}

/// Published per-file standard scores of `detector`, by file key.
fn published(data_dir: &Path, detector: &str) -> Result<HashMap<String, PublishedRow>> {
    let path = data_dir.join(format!("results/{detector}/{detector}_standard_scores.csv"));
    let mut reader = csv::Reader::from_reader(fs_err::File::open(&path)?);
    let mut out = HashMap::new();
    for row in reader.deserialize::<PublishedRow>() {
        let row = row.with_context(|| path.display().to_string())?;
        out.insert(row.file.clone(), row);
    }
    Ok(out)
}

/// One row of a published `<detector>_standard_scores.csv`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishedRow {
    file: String,
    score: f64,
    #[serde(rename = "TP")]
    tp: Option<usize>,
    #[serde(rename = "TN")]
    tn: Option<usize>,
    #[serde(rename = "FP")]
    fp: Option<usize>,
    #[serde(rename = "FN")]
    fn_: Option<usize>,
}

fn table(data_dir: &Path, files: &[File], config: &Config, verbose: bool) -> Result<()> {
    println!("config: {}\n", serde_json::to_string(config)?);
    println!("| file | points | windows | caught | false-positive rows | NAB raw (standard) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut ours: HashMap<&str, f64> = HashMap::new();
    for file in files {
        let sweep = file.sweep(&file.alarms(config, verbose)?)?;
        let score = sweep.score(0.5);
        let caught = file
            .windows
            .len()
            .saturating_sub(missed_windows(&sweep, 0.5));
        println!(
            "| {} | {} | {} | {caught} | {} | {:.3} |",
            file.key,
            file.times.len(),
            file.windows.len(),
            score.false_positives,
            score.score
        );
        ours.insert(&file.key, score.score);
    }
    println!();
    category_table(data_dir, files, &[("ours", &ours)])
}

/// Windows whose contribution at `threshold` is the miss cost.
fn missed_windows(sweep: &FileSweep, threshold: f64) -> usize {
    let fn_cost = -Profile::STANDARD.fn_weight;
    sweep
        .contributions(threshold)
        .iter()
        .filter(|&&c| c == fn_cost)
        .count()
}

/// Normalised score per group of files (`artificial`, each real category,
/// all), for our columns and the published peers.
fn category_table(
    data_dir: &Path,
    files: &[File],
    ours: &[(&str, &HashMap<&str, f64>)],
) -> Result<()> {
    let peers = PEERS
        .iter()
        .map(|(dir, name)| Ok((*name, published(data_dir, dir)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut groups: BTreeMap<String, Vec<&File>> = BTreeMap::new();
    for file in files {
        groups
            .entry(file.group().to_owned())
            .or_default()
            .push(file);
        groups.entry("all".to_owned()).or_default().push(file);
    }
    let names: Vec<&str> = ours
        .iter()
        .map(|(n, _)| *n)
        .chain(peers.iter().map(|(n, _)| *n))
        .collect();
    println!(
        "NAB normalised score (standard profile; 0 = null detector, 100 = perfect) on these files:\n"
    );
    println!("| files | windows | {} |", names.join(" | "));
    println!("| --- | ---: |{}", " ---: |".repeat(names.len()));
    for (group, members) in &groups {
        let mut cells = Vec::new();
        let mut windows = 0;
        let raw_of = |scores: &dyn Fn(&str) -> Option<f64>| -> Result<Tally> {
            let mut tally = Tally::default();
            for file in members {
                let sweep = file.sweep(&[])?;
                let raw =
                    scores(&file.key).with_context(|| format!("no score for {}", file.key))?;
                tally.add(raw, sweep.null_score(), file.windows.len());
            }
            Ok(tally)
        };
        for (_, scores) in ours {
            let tally = raw_of(&|k| scores.get(k).copied())?;
            windows = tally.windows;
            cells.push(format!("{:.1}", tally.normalized()));
        }
        for (_, rows) in &peers {
            let tally = raw_of(&|k| rows.get(k).map(|r| r.score))?;
            windows = tally.windows;
            cells.push(format!("{:.1}", tally.normalized()));
        }
        println!(
            "| {group} ({} files) | {windows} | {} |",
            members.len(),
            cells.join(" | ")
        );
    }
    Ok(())
}

/// The scorer against NAB's published numbers.
fn check(data_dir: &Path, files: &[File]) -> Result<()> {
    let thresholds: serde_json::Value = serde_json::from_str(&fs_err::read_to_string(
        data_dir.join("config/thresholds.json"),
    )?)?;
    let threshold = |detector: &str, profile: &str| {
        thresholds[detector][profile]["threshold"]
            .as_f64()
            .with_context(|| format!("no {profile} threshold for {detector}"))
    };
    let profiles = [
        ("standard", Profile::STANDARD),
        ("reward_low_FP_rate", Profile::REWARD_LOW_FP_RATE),
        ("reward_low_FN_rate", Profile::REWARD_LOW_FN_RATE),
    ];
    println!(
        "Golden per-row results (S(t) of every row, every profile; per-file score and counts, standard):\n"
    );
    println!(
        "| detector | file | rows | max abs S(t) diff (std, lowFP, lowFN) | our score | published | our TP/TN/FP/FN | published |"
    );
    println!("| --- | --- | ---: | --- | ---: | ---: | --- | --- |");
    let mut worst: f64 = 0.0;
    for detector in ["numenta", "windowedGaussian"] {
        let dir = data_dir
            .join("results")
            .join(detector)
            .join("realKnownCause");
        let published = published(data_dir, detector)?;
        for path in sorted_dir(&dir)? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&format!("{detector}_")))
                .context("golden file name")?
                .to_owned();
            let key = format!("realKnownCause/{name}");
            let file = files
                .iter()
                .find(|f| f.key == key)
                .with_context(|| format!("no data file {key}"))?;
            let golden = read_golden(&path)?;
            if golden.times != file.times {
                bail!("{}: timestamps differ from the data file", path.display());
            }
            let mut diffs = Vec::new();
            let mut standard = None;
            for (profile_name, profile) in &profiles {
                let t = threshold(detector, profile_name)?;
                let sweep = FileSweep::new(
                    &golden.times,
                    &golden.anomaly_scores,
                    &file.windows,
                    profile,
                )?;
                let column = &golden.s_t[*profile_name];
                let diff = sweep
                    .contributions(t)
                    .iter()
                    .zip(column)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                worst = worst.max(diff);
                diffs.push(format!("{diff:.1e}"));
                if *profile_name == "standard" {
                    standard = Some(sweep.score(t));
                }
            }
            let ours = standard.context("standard profile")?;
            let theirs = published
                .get(&key)
                .with_context(|| format!("no published {key}"))?;
            println!(
                "| {detector} | {name} | {} | {} | {:.6} | {:.6} | {}/{}/{}/{} | {}/{}/{}/{} |",
                golden.times.len(),
                diffs.join(", "),
                ours.score,
                theirs.score,
                ours.true_positives,
                ours.true_negatives,
                ours.false_positives,
                ours.false_negatives,
                opt(theirs.tp),
                opt(theirs.tn),
                opt(theirs.fp),
                opt(theirs.fn_),
            );
        }
    }
    println!(
        "\nlargest S(t) difference: {worst:.1e} (the golden files print 12 significant digits)"
    );

    let null = published(data_dir, "null")?;
    let mut agree = 0;
    for file in files {
        let ours = file.sweep(&[])?.null_score();
        let theirs = null
            .get(&file.key)
            .with_context(|| format!("no null score for {}", file.key))?;
        if (ours - theirs.score).abs() < 1e-9 {
            agree += 1;
        } else {
            println!(
                "null detector differs on {}: ours {ours}, published {}",
                file.key, theirs.score
            );
        }
    }
    println!(
        "null detector: our score equals the published one on {agree} of {} files",
        files.len()
    );

    // NAB's corpus totals (58 files, 116 windows) in thresholds.json, normalised.
    println!(
        "\nNormalisation of the published 58-file totals (standard; null -116, 116 windows):\n"
    );
    println!("| detector | raw total | normalised |");
    println!("| --- | ---: | ---: |");
    for detector in ["numenta", "randomCutForest", "windowedGaussian", "null"] {
        let raw = thresholds[detector]["standard"]["score"]
            .as_f64()
            .with_context(|| format!("no standard score for {detector}"))?;
        let null = thresholds["null"]["standard"]["score"]
            .as_f64()
            .context("null score")?;
        println!(
            "| {detector} | {raw:.3} | {:.1} |",
            normalized(raw, null, 116, &Profile::STANDARD)
        );
    }
    Ok(())
}

fn opt(n: Option<usize>) -> String {
    n.map_or("-".to_owned(), |n| n.to_string())
}

/// A golden per-row results file.
struct Golden {
    times: Vec<f64>,
    anomaly_scores: Vec<f64>,
    s_t: HashMap<String, Vec<f64>>,
}

fn read_golden(path: &Path) -> Result<Golden> {
    let mut reader = csv::Reader::from_reader(fs_err::File::open(path)?);
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let score_col = column("anomaly_score")?;
    let profiles = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];
    let s_cols = profiles
        .iter()
        .map(|p| column(&format!("S(t)_{p}")))
        .collect::<Result<Vec<_>>>()?;
    let mut golden = Golden {
        times: Vec::new(),
        anomaly_scores: Vec::new(),
        s_t: HashMap::new(),
    };
    for row in reader.records() {
        let row = row?;
        golden
            .times
            .push(seconds(row.get(0).context("timestamp")?)?);
        golden
            .anomaly_scores
            .push(row.get(score_col).context("anomaly_score")?.parse()?);
        for (p, &c) in profiles.iter().zip(&s_cols) {
            golden
                .s_t
                .entry((*p).to_owned())
                .or_default()
                .push(row.get(c).context("S(t)")?.parse()?);
        }
    }
    Ok(golden)
}

/// The levels `--cross` chooses from: `x / (1 + x)` for `x` (the score in
/// units of the configured threshold) on a geometric grid from 0.4 to 20,
/// and 0.5 (the configured threshold itself).
fn levels() -> Vec<f64> {
    let steps = 160;
    let mut out: Vec<f64> = (0..=steps)
        .map(|i| {
            let x = 0.4 * 50_f64.powf(f64::from(i) / f64::from(steps));
            x / (1.0 + x)
        })
        .collect();
    out.push(0.5);
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

/// The alarm level chosen on some files, scored on others, beside the
/// fixed level 0.5 (the configured thresholds).
fn cross(data_dir: &Path, files: &[File], config: &Config) -> Result<()> {
    println!("config: {}\n", serde_json::to_string(config)?);
    let levels = levels();
    let fixed = levels
        .iter()
        .position(|&l| l == 0.5)
        .context("0.5 is a level")?;
    let nulls = files
        .iter()
        .map(|f| Ok(f.sweep(&[])?.null_score()))
        .collect::<Result<Vec<_>>>()?;
    // raw[l][f]: raw score of file f with alarms at level l.
    let mut raw = vec![Vec::with_capacity(files.len()); levels.len()];
    for file in files {
        let graded = scores(&file.series(), config).with_context(|| file.key.clone())?;
        for (l, &level) in levels.iter().enumerate() {
            let alarms = alarms_at(&graded, level, config.cooldown);
            raw[l].push(file.sweep(&alarms)?.score(0.5).score);
        }
    }
    let tally = |l: usize, members: &[usize]| {
        let mut t = Tally::default();
        for &f in members {
            t.add(raw[l][f], nulls[f], files[f].windows.len());
        }
        t
    };
    // NAB's optimiser: the best raw score on `members`, the higher level on a tie.
    let best = |members: &[usize]| {
        let mut chosen = 0;
        for l in 1..levels.len() {
            if tally(l, members).raw >= tally(chosen, members).raw - 1e-9 {
                chosen = l;
            }
        }
        chosen
    };
    let in_group = |g: &str| -> Vec<usize> {
        (0..files.len())
            .filter(|&f| files[f].group() == g)
            .collect()
    };
    let art = in_group("artificial");
    let real = in_group("realKnownCause");
    let all: Vec<usize> = (0..files.len()).collect();

    println!(
        "| level chosen on | scored on | chosen level | normalised, chosen level | normalised, level 0.5 |"
    );
    println!("| --- | --- | ---: | ---: | ---: |");
    let chosen_all = best(&all);
    for (train_name, train, test_name, test) in [
        ("all (in-sample)", &all, "all", &all),
        ("all (in-sample)", &all, "artificial", &art),
        ("all (in-sample)", &all, "realKnownCause", &real),
        ("artificial", &art, "realKnownCause", &real),
        ("realKnownCause", &real, "artificial", &art),
    ] {
        let l = if train.len() == all.len() {
            chosen_all
        } else {
            best(train)
        };
        println!(
            "| {train_name} | {test_name} | {:.3} | {:.1} | {:.1} |",
            levels[l],
            tally(l, test).normalized(),
            tally(fixed, test).normalized()
        );
    }

    // Leave one file out: each file scored at the level best on the others.
    let mut left_out: HashMap<&str, f64> = HashMap::new();
    let mut chosen = Vec::new();
    for f in 0..files.len() {
        let others: Vec<usize> = all.iter().copied().filter(|&o| o != f).collect();
        let l = best(&others);
        chosen.push(levels[l]);
        left_out.insert(&files[f].key, raw[l][f]);
    }
    chosen.sort_by(f64::total_cmp);
    let fixed_scores: HashMap<&str, f64> = files
        .iter()
        .zip(&raw[fixed])
        .map(|(f, &r)| (f.key.as_str(), r))
        .collect();
    println!(
        "\nLeave one file out (each file at the level best on the other {}; levels chosen {:.3} to {:.3}), and the fixed level 0.5:\n",
        files.len() - 1,
        chosen.first().copied().unwrap_or_default(),
        chosen.last().copied().unwrap_or_default(),
    );
    category_table(
        data_dir,
        files,
        &[
            ("ours, left out", &left_out),
            ("ours, level 0.5", &fixed_scores),
        ],
    )
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
