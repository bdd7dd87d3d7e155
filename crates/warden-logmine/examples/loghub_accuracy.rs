//! Grouping accuracy (GA) of `warden_logmine::mine` on the Loghub 2k samples.
//!
//! ```text
//! cargo run --release -p warden-logmine --example loghub_accuracy [DATA_DIR] [--explain SYSTEM]
//! ```
//!
//! `DATA_DIR` defaults to `<workspace>/../shared/data` and must hold
//! `loghub/<System>/<System>_2k.log` with `<System>_2k.log_structured.csv`,
//! and optionally `loghub-corrected/<System>/<System>_2k.log_structured_corrected.csv`.
//!
//! The headline input is the raw log line: headers are removed by the crate's
//! generic `strip_header`, with one default `Config` for every system. The
//! `content` columns feed the ground truth's `Content` column instead; the
//! "online pass only" column is `mine` with `refine: false`, i.e. what
//! `Miner::add` alone groups.
//! `--explain SYSTEM` prints the ground-truth events that were grouped wrong.
//!
//! The second table is leave-one-system-out: for each system, the tunable
//! `Config` fields (similarity, depth, refine) are chosen on the other seven
//! systems (best mean GA on their original ground truth) and scored on the
//! held-out one, so it shows what a parameter choice is worth on a system
//! it was not tuned on.
#![allow(clippy::print_stdout, reason = "a harness: the report is its stdout")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use warden_logmine::{Config, TemplateId, mine, strip_header};

/// Drain's published GA (logpai/logparser, st=0.5, depth=4).
const SYSTEMS: &[(&str, f64)] = &[
    ("HDFS", 0.9975),
    ("Hadoop", 0.9475),
    ("Spark", 0.9200),
    ("Zookeeper", 0.9665),
    ("HealthApp", 0.7800),
    ("Apache", 1.0000),
    ("Proxifier", 0.5265),
    ("OpenSSH", 0.7875),
];

struct Truth {
    event: Vec<String>,
    content: Vec<String>,
    templates: HashMap<String, String>,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = None;
    let mut explain = None;
    while let Some(arg) = args.next() {
        if arg == "--explain" {
            explain = args.next();
        } else {
            data_dir = Some(PathBuf::from(arg));
        }
    }
    let data_dir = data_dir
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if !data_dir.join("loghub").is_dir() {
        println!(
            "skipped: no Loghub data at {} (pass the data dir as the first argument)",
            data_dir.join("loghub").display()
        );
        return Ok(());
    }
    let config = Config::default();
    println!("Grouping accuracy, one default Config for all systems.");
    println!(
        "raw = whole log lines with the generic header stripper; content = the csv Content column.\n"
    );
    println!(
        "| system | lines | templates found | true templates | GA raw (original) | GA raw (corrected) | GA content (original) | GA content (corrected) | GA online pass only | header = Content | Drain GA | delta (raw, original) |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut sums = [0.0f64; 6];
    let mut online_sum = 0.0f64;
    let mut corrected_systems = 0usize;
    let mut systems = 0usize;
    for &(system, drain) in SYSTEMS {
        let dir = data_dir.join("loghub").join(system);
        let log = dir.join(format!("{system}_2k.log"));
        if !log.is_file() {
            println!(
                "| {system} | skipped: {} missing | | | | | | | | | | |",
                log.display()
            );
            continue;
        }
        let raw: Vec<String> = fs_err::read_to_string(&log)?
            .lines()
            .map(str::to_owned)
            .collect();
        let truth = read_truth(&dir.join(format!("{system}_2k.log_structured.csv")))?;
        anyhow::ensure!(
            raw.len() == truth.event.len(),
            "{system}: {} log lines but {} ground-truth rows",
            raw.len(),
            truth.event.len()
        );
        let corrected_path = data_dir
            .join("loghub-corrected")
            .join(system)
            .join(format!("{system}_2k.log_structured_corrected.csv"));
        let corrected = if corrected_path.is_file() {
            Some(read_truth(&corrected_path)?)
        } else {
            None
        };

        let mining = mine(&raw, &config);
        let by_content = mine(&truth.content, &config);
        let unrefined = mine(
            &raw,
            &Config {
                refine: false,
                ..config.clone()
            },
        );
        let ga_online = grouping_accuracy(&unrefined.assignments, &truth.event);
        let ga_raw = grouping_accuracy(&mining.assignments, &truth.event);
        let ga_content = grouping_accuracy(&by_content.assignments, &truth.event);
        let (ga_raw_c, ga_content_c) = match &corrected {
            Some(c) => (
                Some(grouping_accuracy(&mining.assignments, &c.event)),
                Some(grouping_accuracy(&by_content.assignments, &c.event)),
            ),
            None => (None, None),
        };
        let header_ok = raw
            .iter()
            .zip(&truth.content)
            .filter(|(r, c)| strip_header(r).trim() == c.trim())
            .count();
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let header_share = header_ok as f64 / raw.len() as f64;
        let fmt = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.4}"));
        println!(
            "| {system} | {} | {} | {} | {ga_raw:.4} | {} | {ga_content:.4} | {} | {ga_online:.4} | {header_share:.3} | {drain:.4} | {:+.4} |",
            raw.len(),
            mining.templates.len(),
            truth.templates.len(),
            fmt(ga_raw_c),
            fmt(ga_content_c),
            ga_raw - drain,
        );
        systems += 1;
        sums[0] += ga_raw;
        sums[2] += ga_content;
        sums[4] += drain;
        online_sum += ga_online;
        if let (Some(a), Some(b)) = (ga_raw_c, ga_content_c) {
            corrected_systems += 1;
            sums[1] += a;
            sums[3] += b;
        }
        if explain.as_deref() == Some(system) {
            for (r, c) in raw
                .iter()
                .zip(&truth.content)
                .filter(|(r, c)| strip_header(r).trim() != c.trim())
                .take(5)
            {
                println!("header: {r}\n   got: {}\n  want: {c}", strip_header(r));
            }
            explain_errors(&mining, &raw, &truth);
        }
    }
    if systems > 0 {
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let (n, nc) = (systems as f64, corrected_systems.max(1) as f64);
        println!(
            "| **mean** | | | | **{:.4}** | **{:.4}** | {:.4} | {:.4} | {:.4} | | {:.4} | {:+.4} |",
            sums[0] / n,
            sums[1] / nc,
            sums[2] / n,
            sums[3] / nc,
            online_sum / n,
            sums[4] / n,
            (sums[0] - sums[4]) / n
        );
    }
    leave_one_out(&data_dir)?;
    throughput(&data_dir, &config)?;
    Ok(())
}

/// One system's raw lines and ground truth.
struct Dataset {
    system: &'static str,
    drain: f64,
    raw: Vec<String>,
    truth: Truth,
    corrected: Option<Truth>,
}

fn load(data_dir: &Path, system: &'static str, drain: f64) -> Result<Option<Dataset>> {
    let dir = data_dir.join("loghub").join(system);
    let log = dir.join(format!("{system}_2k.log"));
    if !log.is_file() {
        return Ok(None);
    }
    let raw: Vec<String> = fs_err::read_to_string(&log)?
        .lines()
        .map(str::to_owned)
        .collect();
    let truth = read_truth(&dir.join(format!("{system}_2k.log_structured.csv")))?;
    let corrected_path = data_dir
        .join("loghub-corrected")
        .join(system)
        .join(format!("{system}_2k.log_structured_corrected.csv"));
    let corrected = if corrected_path.is_file() {
        Some(read_truth(&corrected_path)?)
    } else {
        None
    };
    Ok(Some(Dataset {
        system,
        drain,
        raw,
        truth,
        corrected,
    }))
}

/// The grid the leave-one-out table chooses from.
fn grid() -> Vec<Config> {
    let mut configs = Vec::new();
    for refine in [true, false] {
        for depth in [3, 4, 5, 6] {
            for similarity in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
                configs.push(Config {
                    similarity,
                    depth,
                    refine,
                    ..Config::default()
                });
            }
        }
    }
    configs
}

/// Leave-one-system-out: parameters chosen on seven systems, scored on the
/// eighth.
fn leave_one_out(data_dir: &Path) -> Result<()> {
    let mut sets = Vec::new();
    for &(system, drain) in SYSTEMS {
        if let Some(set) = load(data_dir, system, drain)? {
            sets.push(set);
        }
    }
    if sets.len() < 2 {
        return Ok(());
    }
    let configs = grid();
    // ga[c][s] = (original, corrected) GA of config c on system s.
    let ga: Vec<Vec<(f64, Option<f64>)>> = configs
        .iter()
        .map(|config| {
            sets.iter()
                .map(|set| {
                    let assigned = mine(&set.raw, config).assignments;
                    (
                        grouping_accuracy(&assigned, &set.truth.event),
                        set.corrected
                            .as_ref()
                            .map(|c| grouping_accuracy(&assigned, &c.event)),
                    )
                })
                .collect()
        })
        .collect();
    let default_index = configs
        .iter()
        .position(|c| *c == Config::default())
        .context("the default config is not in the grid")?;
    println!(
        "\nLeave-one-system-out: similarity x depth x refine chosen on the other {} systems ({} configs), scored on the held-out one.\n",
        sets.len() - 1,
        configs.len()
    );
    println!(
        "| held-out system | chosen similarity / depth / refine | GA held-out (original) | GA held-out (corrected) | GA in-sample (default Config) | Drain GA | delta (held-out - Drain) |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let (mut sum, mut sum_c, mut sum_in, mut sum_drain, mut n_c) = (0.0, 0.0, 0.0, 0.0, 0usize);
    for (held, set) in sets.iter().enumerate() {
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (c, row) in ga.iter().enumerate() {
            let others: f64 = row
                .iter()
                .enumerate()
                .filter(|&(s, _)| s != held)
                .map(|(_, g)| g.0)
                .sum();
            // Ties go to the earlier config in the grid.
            if others > best.0 + 1e-12 {
                best = (others, c);
            }
        }
        let chosen = &configs[best.1];
        let (score, score_c) = ga[best.1][held];
        let in_sample = ga[default_index][held].0;
        println!(
            "| {} | {} / {} / {} | {score:.4} | {} | {in_sample:.4} | {:.4} | {:+.4} |",
            set.system,
            chosen.similarity,
            chosen.depth,
            chosen.refine,
            score_c.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.4}")),
            set.drain,
            score - set.drain,
        );
        sum += score;
        sum_in += in_sample;
        sum_drain += set.drain;
        if let Some(x) = score_c {
            sum_c += x;
            n_c += 1;
        }
    }
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let (n, nc) = (sets.len() as f64, n_c.max(1) as f64);
    println!(
        "| **mean** | | **{:.4}** | **{:.4}** | {:.4} | {:.4} | {:+.4} |",
        sum / n,
        sum_c / nc,
        sum_in / n,
        sum_drain / n,
        (sum - sum_drain) / n
    );
    Ok(())
}

fn read_truth(path: &Path) -> Result<Truth> {
    let file = fs_err::File::open(path)?;
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("{}: no {name} column", path.display()))
    };
    let (event_col, content_col, template_col) =
        (col("EventId")?, col("Content")?, col("EventTemplate")?);
    let mut truth = Truth {
        event: Vec::new(),
        content: Vec::new(),
        templates: HashMap::new(),
    };
    for record in reader.records() {
        let record = record?;
        let field = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
        truth
            .templates
            .entry(field(event_col))
            .or_insert_with(|| field(template_col));
        truth.event.push(field(event_col));
        truth.content.push(field(content_col));
    }
    Ok(truth)
}

/// A line is right when its group holds exactly the lines of its true event.
fn grouping_accuracy(assigned: &[TemplateId], truth: &[String]) -> f64 {
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for event in truth {
        *truth_size.entry(event).or_default() += 1;
    }
    let mut groups: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (line, &id) in assigned.iter().enumerate() {
        groups.entry(id).or_default().push(line);
    }
    let correct: usize = groups
        .values()
        .filter(|lines| {
            let event = truth[lines[0]].as_str();
            lines.iter().all(|&l| truth[l] == event) && truth_size[event] == lines.len()
        })
        .map(Vec::len)
        .sum();
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let ga = correct as f64 / truth.len().max(1) as f64;
    ga
}

/// Prints each true event whose lines were not grouped exactly.
fn explain_errors(mining: &warden_logmine::Mining, raw: &[String], truth: &Truth) {
    let mut by_event: HashMap<&str, Vec<usize>> = HashMap::new();
    for (line, event) in truth.event.iter().enumerate() {
        by_event.entry(event).or_default().push(line);
    }
    let mut by_group: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (line, &id) in mining.assignments.iter().enumerate() {
        by_group.entry(id).or_default().push(line);
    }
    let mut events: Vec<(&str, Vec<usize>)> = by_event.into_iter().collect();
    events.sort_by_key(|(_, lines)| std::cmp::Reverse(lines.len()));
    for (event, lines) in events {
        let mut groups: Vec<TemplateId> = lines.iter().map(|&l| mining.assignments[l]).collect();
        groups.sort_unstable();
        groups.dedup();
        let exact = groups.len() == 1 && by_group[&groups[0]].len() == lines.len();
        if exact {
            continue;
        }
        println!(
            "\n{event} ({} lines): {}",
            lines.len(),
            truth.templates[event]
        );
        for id in groups {
            let members = &by_group[&id];
            let mine_here = members.iter().filter(|&&l| truth.event[l] == event).count();
            let example = members
                .iter()
                .find(|&&l| truth.event[l] == event)
                .map_or("", |&l| raw[l].as_str());
            println!(
                "   group {} [{} of {} lines are {event}]: {}\n      e.g. {}",
                id.0,
                mine_here,
                members.len(),
                mining.templates[id.index()].text,
                example
            );
        }
    }
}

fn throughput(data_dir: &Path, config: &Config) -> Result<()> {
    let log = data_dir.join("loghub/HDFS/HDFS_2k.log");
    if !log.is_file() {
        return Ok(());
    }
    let raw: Vec<String> = fs_err::read_to_string(&log)?
        .lines()
        .map(str::to_owned)
        .collect();
    let rounds = 50;
    let start = Instant::now();
    let mut templates = 0;
    for _ in 0..rounds {
        templates += mine(&raw, config).templates.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let rate = (rounds * raw.len()) as f64 / seconds;
    let mut miner = warden_logmine::Miner::new(config.clone());
    let start = Instant::now();
    for _ in 0..rounds {
        for line in &raw {
            miner.add(line);
        }
    }
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let online = (rounds * raw.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "\nThroughput on HDFS 2k (single thread, this build): mine() {rate:.0} lines/s; Miner::add {online:.0} lines/s ({} templates)",
        templates / rounds
    );
    Ok(())
}
