//! Lines per second of log-template mining on Loghub HDFS 2k, one thread.
//!
//! `mine` is the one-shot API (online pass plus refinement); `Miner::add`
//! the streaming one. The Drain3 baseline for the same file is
//! `benches/peers/logs.py` (run by `benches/peers/run.sh`). Skips when `../shared/data` is absent.
#![allow(clippy::print_stderr, reason = "a skip is reported on stderr")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_logmine::{Config, Miner, mine};

fn bench_logmine(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/loghub/HDFS/HDFS_2k.log"
    );
    let Ok(text) = fs_err::read_to_string(path) else {
        eprintln!("skipping logmine benchmark: {path} not found (shared data absent)");
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut group = c.benchmark_group("logmine-hdfs-2k");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.measurement_time(Duration::from_secs(5));
    let config = Config::default();
    group.bench_function("mine", |b| b.iter(|| mine(black_box(&lines), &config)));
    group.bench_function("miner-add", |b| {
        b.iter(|| {
            let mut miner = Miner::new(config.clone());
            for line in &lines {
                black_box(miner.add(black_box(line)));
            }
            miner
        })
    });
    group.finish();
}

criterion_group!(benches, bench_logmine);
criterion_main!(benches);
