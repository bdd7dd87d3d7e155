//! NAB scoring on a hand-built file whose scores are derived from NAB's
//! formula below, and on NAB's golden per-row results when the shared data
//! is present.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::float_cmp,
    reason = "tests: a wrong value must fail loudly; exact values are intended"
)]

use std::path::Path;

use warden_anomaly::Error;
use warden_anomaly::nab::{
    FileSweep, Place, Profile, normalized, optimize_threshold, probation_length,
    scores_by_threshold,
};

// The fixture: rows 0..100 at t = 0..99, so probation is floor(0.15 × 100)
// = 15 rows. Window A covers rows 40..=49, window B rows 80..=89 (10 wide).
// Detections: row 10 (in probation: ignored), row 20 (false positive, no
// window before it), rows 45 and 47 (in A), row 55 (false positive after A).
// B is missed.
//
// NAB's scaled sigmoid is σ(x) = 2 / (1 + e^(5x)) − 1 = −tanh(5x / 2).
// - A: the best detection, row 45, sits at −(49 − 45 + 1) / 10 = −0.5, and is
//   scaled by σ(−1): tanh(1.25) / tanh(2.5).
// - Row 20: no preceding window, so the full −0.11.
// - Row 55: (55 − 49) / (10 − 1) = 2/3 window widths past A: 0.11 × −tanh(5/3).
// - B: −1.
fn window_a() -> f64 {
    1.25_f64.tanh() / 2.5_f64.tanh()
}
fn row_55() -> f64 {
    -0.11 * (5.0_f64 / 3.0).tanh()
}
const EXPECTED_FP_20: f64 = -0.11;

fn fixture(scores: &[(usize, f64)]) -> FileSweep {
    let times: Vec<f64> = (0..100).map(f64::from).collect();
    let mut anomaly = vec![0.0; 100];
    for &(i, s) in scores {
        anomaly[i] = s;
    }
    FileSweep::new(
        &times,
        &anomaly,
        &[(40.0, 49.0), (80.0, 89.0)],
        &Profile::STANDARD,
    )
    .unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn scores_a_file_as_nab_derives_it_by_hand() {
    let sweep = fixture(&[(10, 1.0), (20, 1.0), (45, 1.0), (47, 1.0), (55, 1.0)]);
    assert_eq!(probation_length(100), 15);
    let s = sweep.score(0.5);
    close(s.score, window_a() + EXPECTED_FP_20 + row_55() - 1.0);
    // Rows, not windows: 85 scored rows, 20 of them in windows.
    assert_eq!(
        (
            s.true_positives,
            s.true_negatives,
            s.false_positives,
            s.false_negatives,
            s.total
        ),
        (2, 63, 2, 18, 85)
    );
    close(sweep.null_score(), -2.0);
    // Normalised: 100 × (raw − null) / (perfect − null), perfect = 2 windows.
    close(
        normalized(s.score, sweep.null_score(), 2, &Profile::STANDARD),
        100.0 * (s.score + 2.0) / 4.0,
    );
}

#[test]
fn lays_out_each_rows_share_as_the_published_s_t_columns() {
    let sweep = fixture(&[(10, 1.0), (20, 1.0), (45, 1.0), (47, 1.0), (55, 1.0)]);
    let shares = sweep.contributions(0.5);
    let mut expected = vec![0.0; 100];
    expected[20] = EXPECTED_FP_20;
    expected[40] = window_a();
    expected[55] = row_55();
    expected[80] = -1.0;
    for (i, (a, b)) in shares.iter().zip(&expected).enumerate() {
        assert!((a - b).abs() < 1e-12, "row {i}: {a} != {b}");
    }
    close(shares.iter().sum(), sweep.score(0.5).score);
}

#[test]
fn an_alarm_right_after_a_window_costs_less_than_one_far_away() {
    let near = fixture(&[(50, 1.0)]).score(0.5).score;
    let far = fixture(&[(75, 1.0)]).score(0.5).score;
    let first = fixture(&[(40, 1.0)]).score(0.5).score;
    // Row 50 is one row past A: 0.11 × −tanh(5/18).
    close(near, -0.11 * (5.0_f64 / 18.0).tanh() - 2.0);
    assert!(near > far);
    // Detecting A on its first row earns the full tp weight.
    close(first, 1.0 - 1.0);
}

#[test]
fn sweeps_thresholds_and_keeps_the_higher_one_on_a_tie() {
    let sweep = fixture(&[(10, 1.0), (45, 0.9), (47, 0.8), (20, 0.7), (55, 0.6)]);
    let by = scores_by_threshold(std::slice::from_ref(&sweep));
    let head: Vec<(f64, f64)> = by.iter().take(5).map(|s| (s.threshold, s.score)).collect();
    let a = window_a() - 1.0;
    let expected = [
        (1.1, -2.0),
        (0.9, a),
        (0.8, a),
        (0.7, a + EXPECTED_FP_20),
        (0.6, a + EXPECTED_FP_20 + row_55()),
    ];
    for ((t, s), (et, es)) in head.iter().zip(expected) {
        assert_eq!(*t, et);
        close(*s, es);
    }
    // Each entry agrees with scoring the file at that threshold.
    for s in &by {
        close(sweep.score(s.threshold).score, s.score);
    }
    let best = optimize_threshold(&[sweep]).unwrap();
    assert_eq!(best.threshold, 0.9);
    close(best.score, a);
}

#[test]
fn a_window_inside_the_probation_is_neither_missed_nor_caught() {
    let times: Vec<f64> = (0..100).map(f64::from).collect();
    let sweep = FileSweep::new(
        &times,
        &[0.0; 100],
        &[(2.0, 6.0), (80.0, 89.0)],
        &Profile::REWARD_LOW_FN_RATE,
    )
    .unwrap();
    assert_eq!(sweep.windows(), 2);
    assert_eq!(sweep.rows()[4].place, Place::Probationary);
    assert_eq!(sweep.rows()[85].place, Place::Window(1));
    // Only B counts, at the low-FN profile's fn weight of 2.
    close(sweep.null_score(), -2.0);
}

#[test]
fn rejects_a_window_whose_edge_is_not_a_row() {
    let times = [0.0, 60.0, 120.0];
    let err = FileSweep::new(&times, &[0.0; 3], &[(30.0, 120.0)], &Profile::STANDARD).unwrap_err();
    assert_eq!(
        err,
        Error::WindowNotInSeries {
            start: 30.0,
            end: 120.0
        }
    );
    let err = FileSweep::new(&times, &[0.0; 2], &[], &Profile::STANDARD).unwrap_err();
    assert_eq!(err.to_string(), "3 timestamps but 2 anomaly scores");
}

/// NAB's golden per-row results for HTM on one file: the `S(t)_standard`
/// column and the published per-file score at HTM's standard threshold.
#[test]
fn reproduces_nabs_golden_results_when_the_shared_data_is_present() {
    let nab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab");
    let golden =
        nab.join("results/numenta/realKnownCause/numenta_ec2_request_latency_system_failure.csv");
    if !golden.is_file() {
        eprintln!("skipped: no NAB data at {}", nab.display());
        return;
    }
    let labels: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(nab.join("labels/combined_windows.json")).unwrap(),
    )
    .unwrap();
    let seconds = |s: &str| warden_anomaly::Time::Text(s.to_owned()).seconds().unwrap();
    let windows: Vec<(f64, f64)> = labels["realKnownCause/ec2_request_latency_system_failure.csv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                seconds(w[0].as_str().unwrap()),
                seconds(w[1].as_str().unwrap()),
            )
        })
        .collect();
    let mut reader = csv::Reader::from_reader(fs_err::File::open(&golden).unwrap());
    let (mut times, mut scores, mut s_t) = (Vec::new(), Vec::new(), Vec::new());
    for row in reader.records() {
        let row = row.unwrap();
        times.push(seconds(&row[0]));
        scores.push(row[2].parse::<f64>().unwrap());
        s_t.push(row[7].parse::<f64>().unwrap());
    }
    let sweep = FileSweep::new(&times, &scores, &windows, &Profile::STANDARD).unwrap();
    // HTM's standard threshold in NAB's config/thresholds.json.
    let threshold = 0.542_187_690_734_863_4;
    for (i, (a, b)) in sweep.contributions(threshold).iter().zip(&s_t).enumerate() {
        assert!((a - b).abs() < 1e-9, "row {i}: {a} != {b}");
    }
    let s = sweep.score(threshold);
    // results/numenta/numenta_standard_scores.csv
    assert!((s.score - 1.705_869_053_84).abs() < 1e-9, "{}", s.score);
    assert_eq!(
        (
            s.true_positives,
            s.true_negatives,
            s.false_positives,
            s.false_negatives
        ),
        (7, 3079, 3, 339)
    );
}
