//! Quality of the incident memory on data nobody here labelled.
//!
//! ```text
//! cargo run --release -p warden-memory --example memory_eval -- [DATA_DIR] [--dim N]
//!     [--method components|modularity] [--edge-threshold T] [--online-threshold T]
//!     [--fastembed MODEL_DIR]
//! ```
//!
//! `DATA_DIR` defaults to `<workspace>/../shared/data`. Two tasks, one
//! configuration (the defaults unless flags say otherwise):
//!
//! 1. Loghub 2k samples: every line of `loghub/<System>/<System>_2k.log_structured.csv`
//!    (its `Content`) is ingested as one record, then re-clustered; the
//!    clusters are scored against the ground-truth `EventId` with the adjusted
//!    Rand index, NMI and grouping accuracy (the metric of the Loghub papers).
//! 2. Hadoop duplicate bug reports: all of `incidents/hadoop_bugs.csv` is
//!    ingested; for each pair of `hadoop_bugs-train.csv` the report is the
//!    query and the known duplicate must come back: recall@5, recall@10, MRR.
#![allow(clippy::print_stdout, reason = "an evaluation report goes to stdout")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use warden_memory::{
    ClusterMethod, Columns, Embedder, HashingEmbedder, Incident, Memory, MemoryOptions,
};

const SYSTEMS: [&str; 8] = [
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "HealthApp",
    "Apache",
    "Proxifier",
    "OpenSSH",
];

struct Args {
    data: PathBuf,
    options: MemoryOptions,
    dim: usize,
    fastembed: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut options = MemoryOptions::default();
    let mut dim = warden_memory::DEFAULT_DIM;
    let mut fastembed = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dim" => dim = value()?.parse()?,
            "--edge-threshold" => options.edge_threshold = value()?.parse()?,
            "--online-threshold" => options.online_threshold = value()?.parse()?,
            "--method" => {
                options.method = match value()?.as_str() {
                    "components" => ClusterMethod::Components,
                    "modularity" => ClusterMethod::Modularity,
                    other => bail!("unknown method {other}"),
                }
            }
            "--fastembed" => fastembed = Some(PathBuf::from(value()?)),
            _ if a.starts_with("--") => bail!("unknown flag {a}"),
            _ => data = PathBuf::from(a),
        }
    }
    Ok(Args {
        data,
        options,
        dim,
        fastembed,
    })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !args.data.is_dir() {
        println!(
            "skip: data directory {} not found (pass its path as the first argument)",
            args.data.display()
        );
        return Ok(());
    }
    println!(
        "config: dim={} method={:?} edge_threshold={} online_threshold={} k={}",
        args.dim,
        args.options.method,
        args.options.edge_threshold,
        args.options.online_threshold,
        args.options.graph_neighbours
    );
    loghub(&args)?;
    let hashing = || -> Result<Box<dyn Embedder>> { Ok(Box::new(HashingEmbedder::new(args.dim))) };
    duplicates(&args, "hashing", &hashing)?;
    if let Some(dir) = &args.fastembed {
        fastembed(&args, dir)?;
    }
    Ok(())
}

#[cfg(feature = "fastembed")]
fn fastembed(args: &Args, dir: &Path) -> Result<()> {
    let make = || -> Result<Box<dyn Embedder>> {
        Ok(Box::new(warden_memory::FastEmbedder::from_dir(dir)?))
    };
    duplicates(args, "fastembed all-MiniLM-L6-v2 int8", &make)
}

#[cfg(not(feature = "fastembed"))]
fn fastembed(_: &Args, _: &Path) -> Result<()> {
    println!("skip fastembed: build with --features fastembed");
    Ok(())
}

fn loghub(args: &Args) -> Result<()> {
    let root = args.data.join("loghub");
    if !root.is_dir() {
        println!("skip loghub: {} not found", root.display());
        return Ok(());
    }
    println!("\n## Loghub 2k: clustering log lines against ground-truth EventId\n");
    println!(
        "| system | templates | online clusters | ARI online | batch clusters | ARI | NMI | GA |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut sum_ari, mut sum_nmi, mut sum_ga) = (0.0, 0.0, 0.0);
    for system in SYSTEMS {
        let path = root
            .join(system)
            .join(format!("{system}_2k.log_structured.csv"));
        let mut reader =
            csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
        let headers = reader.headers()?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{name} column"))
        };
        let (content, event) = (col("Content")?, col("EventId")?);
        let mut incidents = Vec::new();
        let mut truth = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec?;
            incidents.push(Incident::new(format!("{i}"), &rec[content], ""));
            truth.push(rec[event].to_owned());
        }
        let dir = tempfile::tempdir()?;
        let mut memory = Memory::open_with(
            dir.path(),
            args.options.clone(),
            Box::new(HashingEmbedder::new(args.dim)),
        )?;
        memory.ingest(incidents)?;
        let online = assignments(&memory, truth.len())?;
        let report = memory.recluster()?;
        let batch = assignments(&memory, truth.len())?;
        let truth = dense(&truth);
        let (ari_online, ari, nmi, ga) = (
            adjusted_rand(&truth, &online),
            adjusted_rand(&truth, &batch),
            nmi(&truth, &batch),
            grouping_accuracy(&truth, &batch),
        );
        sum_ari += ari;
        sum_nmi += nmi;
        sum_ga += ga;
        println!(
            "| {system} | {} | {} | {ari_online:.3} | {} | {ari:.3} | {nmi:.3} | {ga:.3} |",
            truth.iter().max().map_or(0, |m| m + 1),
            online
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            report.clusters,
        );
    }
    let n = SYSTEMS.len() as f64;
    println!(
        "| mean | | | | | {:.3} | {:.3} | {:.3} |",
        sum_ari / n,
        sum_nmi / n,
        sum_ga / n
    );
    Ok(())
}

fn assignments(memory: &Memory, n: usize) -> Result<Vec<usize>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let view = memory.show(&i.to_string())?.context("record lost")?;
        ids.push(view.cluster.map_or(u64::MAX - i as u64, |c| c.id));
    }
    Ok(dense(&ids))
}

fn dense<T: std::hash::Hash + Eq + Clone>(labels: &[T]) -> Vec<usize> {
    let mut map = HashMap::new();
    labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(l.clone()).or_insert(next)
        })
        .collect()
}

/// Pair counts, then the counts of each side's labels.
type Contingency = (
    HashMap<(usize, usize), f64>,
    HashMap<usize, f64>,
    HashMap<usize, f64>,
);

fn contingency(a: &[usize], b: &[usize]) -> Contingency {
    let mut joint = HashMap::new();
    let mut ca = HashMap::new();
    let mut cb = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0.0) += 1.0;
        *ca.entry(x).or_insert(0.0) += 1.0;
        *cb.entry(y).or_insert(0.0) += 1.0;
    }
    (joint, ca, cb)
}

fn adjusted_rand(a: &[usize], b: &[usize]) -> f64 {
    let c2 = |n: f64| n * (n - 1.0) / 2.0;
    let (joint, ca, cb) = contingency(a, b);
    let index: f64 = joint.values().map(|&n| c2(n)).sum();
    let sa: f64 = ca.values().map(|&n| c2(n)).sum();
    let sb: f64 = cb.values().map(|&n| c2(n)).sum();
    let expected = sa * sb / c2(a.len() as f64);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Normalised mutual information, arithmetic-mean normalisation (scikit-learn's default).
fn nmi(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let (joint, ca, cb) = contingency(a, b);
    let mi: f64 = joint
        .iter()
        .map(|(&(x, y), &nxy)| nxy / n * (n * nxy / (ca[&x] * cb[&y])).ln())
        .sum();
    let h = |c: &HashMap<usize, f64>| -c.values().map(|&k| k / n * (k / n).ln()).sum::<f64>();
    let (ha, hb) = (h(&ca), h(&cb));
    if ha + hb == 0.0 {
        return 1.0;
    }
    mi / ((ha + hb) / 2.0)
}

/// Share of lines whose predicted group is exactly their true group.
fn grouping_accuracy(truth: &[usize], pred: &[usize]) -> f64 {
    let (joint, ct, cp) = contingency(truth, pred);
    let correct: f64 = joint
        .iter()
        .filter(|&(&(t, p), &n)| ct[&t] == n && cp[&p] == n)
        .map(|(_, &n)| n)
        .sum();
    correct / truth.len() as f64
}

fn duplicates(
    args: &Args,
    name: &str,
    embedder: &dyn Fn() -> Result<Box<dyn Embedder>>,
) -> Result<()> {
    let bugs = args.data.join("incidents/hadoop_bugs.csv");
    let pairs_path = args.data.join("incidents/hadoop_bugs-train.csv");
    if !bugs.is_file() || !pairs_path.is_file() {
        println!(
            "skip duplicates: {} or {} not found",
            bugs.display(),
            pairs_path.display()
        );
        return Ok(());
    }
    let incidents = warden_memory::read_incidents(&bugs, &Columns::default())?;
    let texts: HashMap<String, (String, String)> = incidents
        .iter()
        .map(|i| (i.id.clone(), (i.title.clone(), i.body.clone())))
        .collect();
    let mut pairs = Vec::new();
    for rec in csv::Reader::from_path(&pairs_path)?.records() {
        let rec = rec?;
        pairs.push((rec[0].to_owned(), rec[1].to_owned()));
    }
    let dir = tempfile::tempdir()?;
    let mut memory = Memory::open_with(dir.path(), args.options.clone(), embedder()?)?;
    let started = Instant::now();
    let n = incidents.len();
    for chunk in incidents.chunks(500) {
        memory.ingest(chunk.to_vec())?;
    }
    let ingest_s = started.elapsed().as_secs_f64();
    println!(
        "\n## Hadoop duplicate bug reports ({name}): {n} reports ingested in {ingest_s:.1} s, {} pairs\n",
        pairs.len()
    );
    println!("| query -> target | recall@5 | recall@10 | MRR@10 |");
    println!("| --- | ---: | ---: | ---: |");
    let started = Instant::now();
    let mut queries = 0;
    for (label, forward) in [("issue -> duplicate", true), ("duplicate -> issue", false)] {
        let (mut at5, mut at10, mut rr) = (0usize, 0usize, 0.0);
        for (a, b) in &pairs {
            let (q, target) = if forward { (a, b) } else { (b, a) };
            let (title, body) = &texts[q];
            let text = if body.is_empty() {
                title.clone()
            } else {
                format!("{title}\n{body}")
            };
            let hits = memory.similar(&text, 11)?;
            queries += 1;
            let ranked: Vec<&str> = hits
                .iter()
                .map(|h| h.id.as_str())
                .filter(|id| id != q)
                .take(10)
                .collect();
            if let Some(pos) = ranked.iter().position(|id| id == target) {
                at10 += 1;
                if pos < 5 {
                    at5 += 1;
                }
                rr += 1.0 / (pos as f64 + 1.0);
            }
        }
        let total = pairs.len() as f64;
        println!(
            "| {label} | {:.3} | {:.3} | {:.3} |",
            at5 as f64 / total,
            at10 as f64 / total,
            rr / total
        );
    }
    println!(
        "\n{queries} queries in {:.2} s ({:.2} ms each)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(queries)
    );
    let ticket_texts: Vec<&str> = incidents.iter().map(|i| i.body.as_str()).collect();
    let vectors = embedder()?.embed(&ticket_texts)?;
    println!(
        "intrinsic dimension of the report bodies' vectors (TwoNN; a fresh embedder, so no learned IDF): {:.1}",
        two_nn(&vectors)
    );
    let report = memory.recluster()?;
    let clusters = memory.clusters()?;
    println!(
        "re-clustered: {} clusters, {} singletons; largest: {}",
        report.clusters,
        report.singletons,
        clusters
            .iter()
            .take(5)
            .map(|c| format!("{} ({})", c.label.join(" "), c.size))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// TwoNN intrinsic dimension (Facco et al., 2017, maximum-likelihood form):
/// `N / sum(ln(r2 / r1))` over each vector's two nearest neighbours by exact
/// Euclidean distance; vectors with an identical neighbour are left out. It
/// says how hard nearest-neighbour search on such vectors is, and so which
/// synthetic data `benches/memory.rs` should stand for.
fn two_nn(vectors: &[Vec<f32>]) -> f64 {
    let (mut n, mut sum) = (0usize, 0f64);
    for (i, a) in vectors.iter().enumerate() {
        let (mut r1, mut r2) = (f32::INFINITY, f32::INFINITY);
        for (j, b) in vectors.iter().enumerate() {
            if i == j {
                continue;
            }
            let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            if d < r1 {
                (r1, r2) = (d, r1);
            } else if d < r2 {
                r2 = d;
            }
        }
        if r1 > 1e-12 && r2.is_finite() {
            n += 1;
            // Squared distances: halve the log ratio.
            sum += 0.5 * f64::from(r2 / r1).ln();
        }
    }
    n as f64 / sum
}
