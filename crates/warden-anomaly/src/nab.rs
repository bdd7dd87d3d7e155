//! The Numenta Anomaly Benchmark's scoring rules, as NAB's own `sweeper.py`,
//! `optimizer.py` and `runner.normalize` apply them.
//!
//! A detector gives every row an anomaly score; a row is a detection when
//! its score is at least the threshold. Per file:
//! - the first [`probation_length`] rows are never scored;
//! - each labelled window counts once: the best (earliest) detection in it
//!   earns `tp_weight × σ(position) / σ(-1)`, where `σ` is
//!   [`scaled_sigmoid`] and the position runs from -1 at the window's first
//!   row to 0 just past its last; a window with no detection costs
//!   `fn_weight`;
//! - every detection outside a window costs `fp_weight × σ(position)`, the
//!   position counted from the end of the window before it in that window's
//!   widths (so an alarm just after a window costs little), or the full
//!   `fp_weight` when no window precedes it.
//!
//! Over a set of files, the raw score is the sum and the normalised score is
//! `100 × (raw − null) / (perfect − null)`: `null` is the score with no
//! detection at all, `perfect` is `tp_weight` per labelled window.
//!
//! ```
//! use warden_anomaly::nab::{FileSweep, Profile, normalized};
//!
//! // 100 rows, one window over rows 40..=49, one detection at its first row.
//! let times: Vec<f64> = (0..100).map(f64::from).collect();
//! let mut scores = vec![0.0; 100];
//! scores[40] = 1.0;
//! let sweep = FileSweep::new(&times, &scores, &[(40.0, 49.0)], &Profile::STANDARD)?;
//! let outcome = sweep.score(0.5);
//! assert_eq!((outcome.true_positives, outcome.false_positives), (1, 0));
//! assert!((outcome.score - 1.0).abs() < 1e-12);
//! assert_eq!(normalized(outcome.score, sweep.null_score(), 1, &Profile::STANDARD), 100.0);
//! # Ok::<(), warden_anomaly::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// Share of each file (at most 5000 rows' worth) in which detections are not scored.
pub const PROBATION_PERCENT: f64 = 0.15;

/// A cost profile: how true positives, false positives and missed windows weigh.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Reward for a window detected at its very start.
    pub tp_weight: f64,
    /// Cost of a false positive far from any window (a positive number).
    pub fp_weight: f64,
    /// Cost of a window with no detection (a positive number).
    pub fn_weight: f64,
}

impl Profile {
    /// NAB's `standard` profile.
    pub const STANDARD: Self = Self {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    };
    /// NAB's `reward_low_FP_rate` profile.
    pub const REWARD_LOW_FP_RATE: Self = Self {
        tp_weight: 1.0,
        fp_weight: 0.22,
        fn_weight: 1.0,
    };
    /// NAB's `reward_low_FN_rate` profile.
    pub const REWARD_LOW_FN_RATE: Self = Self {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 2.0,
    };
}

/// NAB's scaled sigmoid of a relative position: `2 / (1 + e^(5x)) − 1`, and
/// exactly −1 beyond 3. About 0.987 at −1 (a window's first row), 0 at 0
/// (just past its end), about −0.987 at 1.
#[must_use]
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// Rows at the start of a file of `rows` rows whose detections are not
/// scored: 15% of the file, at most 750.
#[must_use]
pub fn probation_length(rows: usize) -> usize {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "row counts are far below 2^53; the floor of a non-negative number"
    )]
    let share = (PROBATION_PERCENT * rows as f64).floor() as usize;
    share.min(750)
}

/// Where a row lies for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the probationary period: never scored.
    Probationary,
    /// Outside every window: a detection is a false positive.
    Outside,
    /// In the window of this index (in label order): a detection may be the window's true positive.
    Window(usize),
}

/// One row of a file after [`FileSweep::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The detector's anomaly score.
    pub anomaly_score: f64,
    /// What a detection here would add: NAB's `S(t)` column.
    pub sweep_score: f64,
    /// Where the row lies.
    pub place: Place,
}

/// One file's rows placed against its windows under one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSweep {
    rows: Vec<Row>,
    /// Windows with at least one scored row: each costs `fn_weight` if missed.
    scorable: Vec<bool>,
    /// First row of each window.
    starts: Vec<usize>,
    profile: Profile,
}

/// The outcome at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdScore {
    /// Rows scoring at least this are detections.
    pub threshold: f64,
    /// The raw NAB score.
    pub score: f64,
    /// Detections in a window (rows, not windows).
    pub true_positives: usize,
    /// Scored rows in no window and not detected.
    pub true_negatives: usize,
    /// Detections outside every window.
    pub false_positives: usize,
    /// Scored rows in a window and not detected.
    pub false_negatives: usize,
    /// Scored rows (NAB 1.0's published `Total_Count` is every row instead).
    pub total: usize,
}

impl FileSweep {
    /// Places each row against `windows` (inclusive `(start, end)`
    /// timestamps, in order, each exactly equal to a row's timestamp, as in
    /// NAB's label files) and computes its sweep score.
    ///
    /// Timestamps are any monotone numbers (Unix seconds, row numbers); like
    /// NAB, a repeated timestamp resolves to its first row.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] when `timestamps` and `anomaly_scores`
    /// differ in length; [`Error::WindowNotInSeries`] when a window's start
    /// or end is not a row's timestamp.
    pub fn new(
        timestamps: &[f64],
        anomaly_scores: &[f64],
        windows: &[(f64, f64)],
        profile: &Profile,
    ) -> Result<Self, Error> {
        if timestamps.len() != anomaly_scores.len() {
            return Err(Error::LengthMismatch {
                timestamps: timestamps.len(),
                scores: anomaly_scores.len(),
            });
        }
        let first_row = |t: f64| timestamps.iter().position(|&x| x == t);
        let mut limits = Vec::with_capacity(windows.len());
        for &(start, end) in windows {
            match (first_row(start), first_row(end)) {
                (Some(left), Some(right)) if left <= right => {
                    limits.push((start, end, left, right))
                }
                _ => return Err(Error::WindowNotInSeries { start, end }),
            }
        }
        let max_tp = scaled_sigmoid(-1.0);
        let probation = probation_length(timestamps.len());
        let mut rows = Vec::with_capacity(timestamps.len());
        let mut scorable = vec![false; windows.len()];
        let mut next = 0;
        // (index, end time, right row, width) of the window we are in.
        let mut current: Option<(usize, f64, usize, f64)> = None;
        // (right row, width) of the last window left.
        let mut previous: Option<(usize, f64)> = None;
        for (i, (&t, &anomaly_score)) in timestamps.iter().zip(anomaly_scores).enumerate() {
            if let Some(&(start, end, left, right)) = limits.get(next)
                && t == start
            {
                #[allow(clippy::cast_precision_loss, reason = "row counts are far below 2^53")]
                let width = (right - left + 1) as f64;
                current = Some((next, end, right, width));
                next += 1;
            }
            #[allow(clippy::cast_precision_loss, reason = "row counts are far below 2^53")]
            let (sweep_score, window) = match current {
                Some((w, _, right, width)) => {
                    // NAB counts `right - i + 1`: -1 at the window's first row.
                    let position = -((right as f64 - i as f64 + 1.0) / width);
                    (
                        scaled_sigmoid(position) * profile.tp_weight / max_tp,
                        Some(w),
                    )
                }
                None => {
                    let unweighted = previous.map_or(-1.0, |(right, width)| {
                        scaled_sigmoid((right as f64 - i as f64).abs() / (width - 1.0))
                    });
                    (unweighted * profile.fp_weight, None)
                }
            };
            let place = if i < probation {
                Place::Probationary
            } else if let Some(w) = window {
                scorable[w] = true;
                Place::Window(w)
            } else {
                Place::Outside
            };
            rows.push(Row {
                anomaly_score,
                sweep_score,
                place,
            });
            if let Some((_, end, _, width)) = current
                && t == end
            {
                previous = Some((i, width));
                current = None;
            }
        }
        Ok(Self {
            rows,
            scorable,
            starts: limits.iter().map(|l| l.2).collect(),
            profile: *profile,
        })
    }

    /// The rows in file order; `sweep_score` is NAB's per-row `S(t)`.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Labelled windows in the file, scored or not.
    #[must_use]
    pub fn windows(&self) -> usize {
        self.scorable.len()
    }

    /// The score with no detection at all: `−fn_weight` per window with a
    /// scored row (NAB's null detector).
    #[must_use]
    pub fn null_score(&self) -> f64 {
        let missed = self.scorable.iter().filter(|&&s| s).count();
        #[allow(clippy::cast_precision_loss, reason = "window counts are small")]
        let missed = missed as f64;
        -self.profile.fn_weight * missed
    }

    /// The file's score and counts when rows scoring at least `threshold`
    /// are detections (NAB's `scoreDataSet`).
    #[must_use]
    pub fn score(&self, threshold: f64) -> ThresholdScore {
        self.tally(threshold).0
    }

    /// Each row's share of the score at `threshold`, laid out as the `S(t)`
    /// columns of NAB's published per-row results: a window's true-positive
    /// reward (or `−fn_weight` when missed) on its first row, each false
    /// positive's cost on its row, 0 elsewhere. They add up to the score.
    #[must_use]
    pub fn contributions(&self, threshold: f64) -> Vec<f64> {
        let (_, best) = self.tally(threshold);
        let mut out = vec![0.0; self.rows.len()];
        for (i, row) in self.rows.iter().enumerate() {
            if row.place == Place::Outside && row.anomaly_score >= threshold {
                out[i] = row.sweep_score;
            }
        }
        for ((&start, &scorable), best) in self.starts.iter().zip(&self.scorable).zip(best) {
            if scorable {
                out[start] = self.window_part(best);
            }
        }
        out
    }

    /// A window's part of the score given its best detection's sweep score.
    fn window_part(&self, best: Option<f64>) -> f64 {
        let missed = -self.profile.fn_weight;
        best.map_or(missed, |s| s.max(missed))
    }

    /// Counts and each window's best detection.
    fn tally(&self, threshold: f64) -> (ThresholdScore, Vec<Option<f64>>) {
        let mut best: Vec<Option<f64>> = vec![None; self.scorable.len()];
        let mut out = ThresholdScore {
            threshold,
            score: 0.0,
            true_positives: 0,
            true_negatives: 0,
            false_positives: 0,
            false_negatives: 0,
            total: 0,
        };
        let mut false_positive_sum = 0.0;
        for row in &self.rows {
            let detected = row.anomaly_score >= threshold;
            match (row.place, detected) {
                (Place::Probationary, _) => continue,
                (Place::Outside, true) => {
                    out.false_positives += 1;
                    false_positive_sum += row.sweep_score;
                }
                (Place::Outside, false) => out.true_negatives += 1,
                (Place::Window(w), true) => {
                    out.true_positives += 1;
                    best[w] =
                        Some(best[w].map_or(row.sweep_score, |b: f64| b.max(row.sweep_score)));
                }
                (Place::Window(_), false) => out.false_negatives += 1,
            }
            out.total += 1;
        }
        let windows: f64 = best
            .iter()
            .zip(&self.scorable)
            .filter(|(_, scorable)| **scorable)
            .map(|(&b, _)| self.window_part(b))
            .sum();
        out.score = windows + false_positive_sum;
        (out, best)
    }
}

/// The score of a set of files at every threshold where it changes, from
/// the highest anomaly score down (NAB's `calcScoreByThreshold` over the
/// rows of all files together). The first entry, at threshold 1.1, has no
/// detection.
#[must_use]
pub fn scores_by_threshold(files: &[FileSweep]) -> Vec<ThresholdScore> {
    // (anomaly score, sweep score, global window id or None).
    let mut scorable: Vec<(f64, f64, Option<usize>)> = Vec::new();
    let mut window_parts: Vec<f64> = Vec::new();
    let mut false_positive_sum = 0.0;
    let mut offset = 0;
    for file in files {
        for &s in &file.scorable {
            window_parts.push(if s { -file.profile.fn_weight } else { 0.0 });
        }
        scorable.extend(file.rows.iter().filter_map(|row| match row.place {
            Place::Probationary => None,
            Place::Outside => Some((row.anomaly_score, row.sweep_score, None)),
            Place::Window(w) => Some((row.anomaly_score, row.sweep_score, Some(offset + w))),
        }));
        offset += file.scorable.len();
    }
    // Stable, like Python's `sorted(..., reverse=True)`.
    scorable.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut true_negatives = scorable.iter().filter(|r| r.2.is_none()).count();
    let mut false_negatives = scorable.len() - true_negatives;
    let (mut true_positives, mut false_positives) = (0, 0);
    let mut threshold = 1.1;
    let mut out = Vec::new();
    let record = |threshold, parts: &[f64], fp_sum: f64, tp, tn, fp, fn_| ThresholdScore {
        threshold,
        score: parts.iter().sum::<f64>() + fp_sum,
        true_positives: tp,
        true_negatives: tn,
        false_positives: fp,
        false_negatives: fn_,
        total: tp + tn + fp + fn_,
    };
    for &(anomaly_score, sweep_score, window) in &scorable {
        if anomaly_score != threshold {
            out.push(record(
                threshold,
                &window_parts,
                false_positive_sum,
                true_positives,
                true_negatives,
                false_positives,
                false_negatives,
            ));
            threshold = anomaly_score;
        }
        match window {
            Some(w) => {
                true_positives += 1;
                false_negatives -= 1;
                window_parts[w] = window_parts[w].max(sweep_score);
            }
            None => {
                false_positives += 1;
                true_negatives -= 1;
                false_positive_sum += sweep_score;
            }
        }
    }
    out.push(record(
        threshold,
        &window_parts,
        false_positive_sum,
        true_positives,
        true_negatives,
        false_positives,
        false_negatives,
    ));
    out
}

/// The threshold with the highest score over a set of files (NAB's
/// `optimizeThreshold`; on a tie, the higher threshold).
#[must_use]
pub fn optimize_threshold(files: &[FileSweep]) -> Option<ThresholdScore> {
    scores_by_threshold(files)
        .into_iter()
        .reduce(|best, s| if s.score > best.score { s } else { best })
}

/// NAB's normalised score: 0 for `null` (no detection), 100 for `perfect`
/// (`tp_weight` per labelled window, `windows` of them).
#[must_use]
pub fn normalized(raw: f64, null: f64, windows: usize, profile: &Profile) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "window counts are small")]
    let perfect = windows as f64 * profile.tp_weight;
    100.0 * (raw - null) / (perfect - null)
}
