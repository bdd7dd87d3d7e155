//! Metric anomaly detection throughput: `warden_anomaly::detect` with the
//! default config on a real NAB series (`realKnownCause/nyc_taxi.csv`, 10,320
//! half-hourly points with a daily period found by `Auto`), next to a
//! brute-force windowed Gaussian z-score over the same points (mean and
//! standard deviation of the trailing 576 points, recomputed per point): the
//! floor any detector is compared with on NAB.
//!
//! Needs `../shared/data/nab` beside the workspace; without it the benchmark
//! prints why and measures nothing.
//!
//! Run: `cargo bench -p warden-bench --bench anomaly`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the benchmark says on stderr when it skips"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_anomaly::{Config, Point, Series, Time, detect};

const WINDOW: usize = 576;

/// The NAB file as timestamped points, or `None` without the shared data.
fn nyc_taxi() -> Option<Vec<Point>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/nab/data/realKnownCause/nyc_taxi.csv");
    let text = fs_err::read_to_string(&path).ok()?;
    let points = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (t, v) = line.split_once(',')?;
            Some(Point {
                t: Some(Time::Text(t.to_owned())),
                v: v.trim().parse().ok()?,
            })
        })
        .collect();
    Some(points)
}

/// Points whose z-score against the trailing window reaches 6.
fn windowed_gaussian(values: &[f64]) -> usize {
    let mut alarms = 0;
    #[allow(clippy::cast_precision_loss, reason = "a small window")]
    let n = WINDOW as f64;
    for i in WINDOW..values.len() {
        let past = &values[i - WINDOW..i];
        let mean = past.iter().sum::<f64>() / n;
        let var = past.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        if (values[i] - mean).abs() >= 6.0 * var.sqrt().max(1e-9) {
            alarms += 1;
        }
    }
    alarms
}

fn bench(c: &mut Criterion) {
    let Some(points) = nyc_taxi() else {
        eprintln!("skipped: no NAB data under ../shared/data/nab");
        return;
    };
    let values: Vec<f64> = points.iter().map(|p| p.v).collect();
    let series = Series::from(points);
    let config = Config::default();
    let mut group = c.benchmark_group("anomaly");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.sample_size(20);
    group.bench_function("detect/nyc-taxi", |b| {
        b.iter(|| detect(black_box(&series), &config).unwrap());
    });
    group.bench_function("windowed-gaussian/nyc-taxi", |b| {
        b.iter(|| windowed_gaussian(black_box(&values)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
