//! Incident memory: the HNSW index and the hashing embedder, next to their
//! baselines.
//!
//! Before criterion runs, a one-shot report is printed for
//! - 100k synthetic 384-d unit vectors from two Gaussian mixtures of 1,000
//!   clusters: isotropic noise (the worst case) and noise of local dimension
//!   16 (like real embeddings; see [`mixture`]), and 1M of each with
//!   `WARDEN_BENCH_1M=1` (about 25 minutes more on 2 cores;
//!   `WARDEN_BENCH_1M=only|isotropic|low-rank` prints just those rows and
//!   exits; `WARDEN_BENCH_M` and `WARDEN_BENCH_EFC` override the HNSW links
//!   per node and construction beam);
//! - 100k synthetic log lines embedded by the hashing embedder (its real
//!   dimension, 512; many lines are identical after masking, so recall counts
//!   ties);
//!
//! with build time, search latency p50/p99 (k = 10, one thread) at search
//! beam widths `ef` of 64 (the default), 128 and 256, recall@10
//! against an exact brute-force scan, and bytes per item (index dump on disk;
//! resident memory growth while building), then hashing embedder throughput.
//!
//! Criterion then compares `index/hnsw-k10` with `index/brute-force-k10` on
//! the 100k vectors, and measures `embed/hashing-512` on short log lines and
//! on ticket-sized texts.
//!
//! Run: `cargo bench -p warden-bench --bench memory`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the benchmark prints its report, and progress on stderr"
)]

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_memory::{Embedder, HashingEmbedder, MemoryOptions, VectorIndex};

const DIM: usize = 384;
const N: usize = 100_000;
const CENTERS: usize = 1_000;
const K: usize = 10;

/// xorshift64* with Box-Muller: deterministic data without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// Local dimension of the low-rank mixture: above the intrinsic dimension
/// measured on real sentence embeddings (TwoNN 12.5 for all-MiniLM-L6-v2 on
/// the Hadoop bug reports, `examples/memory_eval.rs`).
const LOCAL_DIM: usize = 16;

/// `n` points of a mixture of unit-vector centers with noise of norm ~0.75
/// (cosine to their center ~0.8), and `queries` more from the same mixture.
///
/// With `rank: None` the noise is isotropic, so within a cluster the points
/// are as random as they can be in 384 dimensions: the worst case for any
/// approximate search. With `Some(r)` it lies in a random `r`-dimensional
/// subspace per cluster, plus isotropic noise of norm ~0.1, closer to how
/// real embeddings spread.
fn mixture(
    n: usize,
    queries: usize,
    dim: usize,
    rank: Option<usize>,
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Rng(seed);
    let gaussians = |len: usize, scale: f32, rng: &mut Rng| -> Vec<f32> {
        (0..len).map(|_| scale * rng.gaussian()).collect()
    };
    let centers: Vec<Vec<f32>> = (0..CENTERS)
        .map(|_| {
            let mut c = gaussians(dim, 1.0, &mut rng);
            normalize(&mut c);
            c
        })
        .collect();
    // Random Gaussian directions in high dimension are nearly orthonormal.
    let bases: Vec<Vec<Vec<f32>>> = (0..CENTERS)
        .map(|_| {
            (0..rank.unwrap_or(0))
                .map(|_| gaussians(dim, 1.0 / (dim as f32).sqrt(), &mut rng))
                .collect()
        })
        .collect();
    let (local, ambient) = match rank {
        None => (0.0, 0.75 / (dim as f32).sqrt()),
        Some(r) => (0.75 / (r as f32).sqrt(), 0.1 / (dim as f32).sqrt()),
    };
    let point = |rng: &mut Rng| {
        let which = (rng.next() % CENTERS as u64) as usize;
        let mut v: Vec<f32> = centers[which]
            .iter()
            .map(|x| x + ambient * rng.gaussian())
            .collect();
        for direction in &bases[which] {
            let g = local * rng.gaussian();
            v.iter_mut().zip(direction).for_each(|(x, d)| *x += g * d);
        }
        normalize(&mut v);
        v
    };
    let data = (0..n).map(|_| point(&mut rng)).collect();
    let qs = (0..queries).map(|_| point(&mut rng)).collect();
    (data, qs)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The k-th best exact similarity: the bar an approximate hit must reach.
fn exact_kth(data: &[Vec<f32>], q: &[f32], k: usize) -> f32 {
    let mut sims: Vec<f32> = data.iter().map(|v| dot(v, q)).collect();
    let nth = sims.len() - k;
    sims.select_nth_unstable_by(nth, f32::total_cmp);
    sims[nth]
}

fn brute_force(data: &[Vec<f32>], q: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut sims: Vec<(usize, f32)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i, dot(v, q)))
        .collect();
    let nth = sims.len() - k;
    sims.select_nth_unstable_by(nth, |a, b| a.1.total_cmp(&b.1));
    sims.split_off(nth)
}

fn rss_bytes() -> Option<u64> {
    let statm = fs_err::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn dir_size(dir: &std::path::Path) -> u64 {
    fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Search beam widths reported for each index: the default first.
const EF_SWEEP: [usize; 3] = [64, 128, 256];

/// Builds, searches and measures one index at each `ef` of [`EF_SWEEP`];
/// returns it, back at the default `ef`, for criterion.
fn report(name: &str, data: &[Vec<f32>], queries: &[Vec<f32>]) -> VectorIndex {
    let items: Vec<(u64, Vec<f32>)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v.clone()))
        .collect();
    eprintln!("building {name} over {} items...", data.len());
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut options = MemoryOptions::default();
    if let Some(m) = env_usize("WARDEN_BENCH_M") {
        options.max_connections = m;
    }
    if let Some(ef) = env_usize("WARDEN_BENCH_EFC") {
        options.ef_construction = ef;
    }
    let mut index = VectorIndex::build(data[0].len(), &items, &options).unwrap();
    let build = started.elapsed();
    let rss_growth = rss_before
        .zip(rss_bytes())
        .map(|(a, b)| b.saturating_sub(a));
    drop(items);
    let dump = tempfile::tempdir().unwrap();
    index.save(&dump.path().join("index")).unwrap();
    let disk = dir_size(&dump.path().join("index"));
    drop(dump);

    let recall_queries = &queries[..queries.len().min(500)];
    let bars: Vec<f32> = recall_queries
        .iter()
        // f32 dot products of identical 512-d vectors differ by ~1e-6
        // between summation orders: closer than 1e-5 counts as a tie.
        .map(|q| exact_kth(data, q, K) - 1e-5)
        .collect();
    for ef in EF_SWEEP {
        index.set_ef_search(ef);
        let mut latencies: Vec<Duration> = queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                black_box(index.search(q, K).unwrap());
                t.elapsed()
            })
            .collect();
        latencies.sort();
        let found: usize = recall_queries
            .iter()
            .zip(&bars)
            .map(|(q, bar)| {
                let hits = index.search(q, K).unwrap();
                hits.iter().filter(|(_, s)| s >= bar).count()
            })
            .sum();
        let recall = found as f64 / (recall_queries.len() * K) as f64;
        println!(
            "| {name} | {} | {:.1} s | {ef} | {:.3} ms | {:.3} ms | {recall:.4} | {} | {} |",
            data.len(),
            build.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            disk / data.len() as u64,
            rss_growth.map_or_else(|| "?".to_owned(), |b| (b / data.len() as u64).to_string()),
        );
    }
    index.set_ef_search(options.ef_search);
    index
}

/// Short log lines in the shapes of common systems, with variable fields.
fn log_lines(n: usize) -> Vec<String> {
    let mut rng = Rng(7);
    let users = [
        "root",
        "admin",
        "test",
        "oracle",
        "guest",
        "webmaster",
        "ubuntu",
    ];
    (0..n)
        .map(|i| {
            let r = rng.next();
            let ip = format!(
                "{}.{}.{}.{}",
                r % 223 + 1,
                (r >> 8) % 256,
                (r >> 16) % 256,
                (r >> 24) % 256
            );
            let port = (r >> 32) % 60_000 + 1024;
            let user = users[(r >> 40) as usize % users.len()];
            match i % 10 {
                0 => format!(
                    "Receiving block blk_{} src: /{ip}:{port} dest: /{ip}:50010",
                    r as i64
                ),
                1 => format!(
                    "PacketResponder {} for block blk_{} terminating",
                    r % 3,
                    r >> 3
                ),
                2 => format!("Failed password for invalid user {user} from {ip} port {port} ssh2"),
                3 => format!("Accepted publickey for {user} from {ip} port {port} ssh2"),
                4 => format!(
                    "proxy.example.com:{port} open through proxy proxy.example.com:5070 HTTPS"
                ),
                5 => format!("onStandStepChanged {}", r % 10_000),
                6 => format!(
                    "Got allocated containers {} on node worker{}",
                    r % 20,
                    r % 64
                ),
                7 => format!("GC pause (G1 Evacuation Pause) {}.{}ms", r % 500, r % 1000),
                8 => format!(
                    "Connection to {ip}:{port} timed out after 30000 ms, retrying (attempt {})",
                    r % 5
                ),
                _ => format!("Removing expired session 0x{:x} for client /{ip}:{port}", r),
            }
        })
        .collect()
}

fn ticket() -> String {
    "NameNode fails to start after upgrade to 3.3.4: the edit log replay throws \
     java.io.IOException: Gap in transactions. Expected to be able to read up until at least \
     txid 1234567 but unable to find any edit logs containing txid 1234500. Steps: upgrade the \
     cluster with rolling upgrade, restart the standby NameNode, observe the failure in \
     /var/log/hadoop/hdfs/hadoop-hdfs-namenode-nn2.log at 2024-05-01 10:00:01,123. \
     Workaround: bootstrap the standby again from the active."
        .repeat(2)
}

fn embedder_report(lines: &[String]) {
    let e = HashingEmbedder::default();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let started = Instant::now();
    for chunk in refs.chunks(1000) {
        black_box(e.embed(chunk).unwrap());
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "\nhashing embedder (512-d), one thread: {:.0} short log lines/s ({:.2} us each)",
        lines.len() as f64 / s,
        s * 1e6 / lines.len() as f64
    );
}

struct Fixture {
    data: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    index: VectorIndex,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        println!(
            "\n| data | items | build | ef | search p50 | search p99 | recall@10 | disk B/item | RSS B/item |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let big = std::env::var("WARDEN_BENCH_1M").unwrap_or_default();
        if ["only", "isotropic", "low-rank"].contains(&big.as_str()) {
            one_million(&big);
            std::process::exit(0);
        }
        let (data, queries) = mixture(N, 2_000, DIM, None, 42);
        let index = report(ISOTROPIC, &data, &queries);
        let (low, low_q) = mixture(N, 2_000, DIM, Some(LOCAL_DIM), 44);
        drop(report(LOW_RANK, &low, &low_q));
        drop((low, low_q));
        let lines = log_lines(N + 2_000);
        let vectors = HashingEmbedder::default()
            .embed(&lines.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
        let (logs, log_queries) = vectors.split_at(N);
        drop(report("hashing log lines 512-d", logs, log_queries));
        if big == "1" {
            one_million(&big);
        }
        embedder_report(&lines[..N]);
        Fixture { data, queries, index }
    })
}

const ISOTROPIC: &str = "384-d mixture, isotropic";
const LOW_RANK: &str = "384-d mixture, local dim 16";

/// The 1M rows: both mixtures, or only the one `which` names.
fn one_million(which: &str) {
    if which != "low-rank" {
        let (big, big_q) = mixture(1_000_000, 2_000, DIM, None, 43);
        drop(report(ISOTROPIC, &big, &big_q));
    }
    if which != "isotropic" {
        let (big, big_q) = mixture(1_000_000, 2_000, DIM, Some(LOCAL_DIM), 45);
        drop(report(LOW_RANK, &big, &big_q));
    }
}

fn env_usize(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    Some(v.parse().map_err(|e| format!("{name}={v}: {e}")).unwrap())
}

fn index(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("index");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("hnsw-k10", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(f.index.search(&f.queries[i], K).unwrap())
        });
    });
    group.bench_function("brute-force-k10", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(brute_force(&f.data, &f.queries[i], K))
        });
    });
    group.finish();
}

fn embed(c: &mut Criterion) {
    let lines = log_lines(1_000);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let e = HashingEmbedder::default();
    let mut group = c.benchmark_group("embed");
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function("hashing-512/log-lines-x1000", |b| {
        b.iter(|| black_box(e.embed(&refs).unwrap()))
    });
    let ticket = ticket();
    group.throughput(Throughput::Elements(1));
    group.bench_function("hashing-512/ticket-1kb", |b| {
        b.iter(|| black_box(e.embed(&[&ticket]).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, index, embed);
criterion_main!(benches);
