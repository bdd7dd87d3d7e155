//! Forecasting: Theil–Sen trend with a band, time to a threshold, Holt smoothing.

use serde::{Deserialize, Serialize};

use crate::series::clean;
use crate::stats::{median, median_in_place, robust_scale};
use crate::{Error, Series};

/// z of a two-sided 95% interval, used for every band in this module.
const Z95: f64 = 1.959_964;
/// Longer series are thinned to this many evenly spaced points before
/// Theil–Sen pairs them, which bounds the work at about 500,000 slopes.
const MAX_PAIRED_POINTS: usize = 1_000;

/// A forecast value with its 95% band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Band {
    /// Lower edge.
    pub lower: f64,
    /// Central forecast.
    pub value: f64,
    /// Upper edge.
    pub upper: f64,
}

/// When a trend reaches a threshold, counted from the last observed point,
/// in the series' time unit (seconds with timestamps, points without).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Eta {
    /// When the central trend line reaches the threshold.
    pub expected: f64,
    /// When the near edge of the 95% band does (the pessimistic case); 0 if
    /// it already has.
    pub earliest: f64,
    /// When the far edge does; `None` if the slow end of the slope interval
    /// never gets there.
    pub latest: Option<f64>,
}

/// A robust straight-line trend: the Theil–Sen estimator, i.e. the median of
/// the slopes between all pairs of points, so a minority of outliers moves
/// it little.
///
/// The line passes through `(center_t, center_v)`. `slope_low..=slope_high`
/// is Sen's 95% interval for the slope; `spread` is the robust standard
/// deviation of the points around the line.
///
/// ```
/// use warden_anomaly::{Point, Series, Trend};
///
/// // A disk 50% full at t=0 that fills 1% per hour, sampled hourly.
/// let points: Vec<Point> = (0..48_u32).map(|h| Point::at(f64::from(h) * 3600.0, 50.0 + f64::from(h))).collect();
/// let trend = Trend::fit(&Series::from(points))?;
/// let eta = trend.time_to_threshold(100.0).expect("rising");
/// // 97% at the last point (t = 47 h); 3 more hours to 100%.
/// assert!((eta.expected - 3.0 * 3600.0).abs() < 1.0);
/// # Ok::<(), warden_anomaly::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Trend {
    /// Change per time unit (per second with timestamps, per point without).
    pub slope: f64,
    /// Lower end of the slope's 95% interval.
    pub slope_low: f64,
    /// Upper end of the slope's 95% interval.
    pub slope_high: f64,
    /// Median time of the points; the slope interval pivots here.
    pub center_t: f64,
    /// The line's value at `center_t`.
    pub center_v: f64,
    /// Robust standard deviation of the residuals (1.4826 × MAD).
    pub spread: f64,
    /// Time of the last point, from which [`Trend::time_to_threshold`] counts.
    pub last_t: f64,
}

impl Trend {
    /// Fits the trend. Timestamps are used when present, else positions.
    ///
    /// # Errors
    ///
    /// The input errors of [`detect`](crate::detect), and
    /// [`Error::TooShort`] for fewer than 2 points.
    pub fn fit(series: &Series) -> Result<Self, Error> {
        let clean = clean(series)?;
        let n = clean.v.len();
        if n < 2 {
            return Err(Error::TooShort { len: n, needed: 2 });
        }
        let m = n.min(MAX_PAIRED_POINTS);
        let picked: Vec<usize> = (0..m).map(|k| k * (n - 1) / (m - 1)).collect();
        let xs: Vec<f64> = picked.iter().map(|&i| clean.x(i)).collect();
        let ys: Vec<f64> = picked.iter().map(|&i| clean.v[i]).collect();
        let mut slopes = Vec::with_capacity(m * (m - 1) / 2);
        for i in 0..m {
            for j in i + 1..m {
                // Validated times are strictly increasing, so dx > 0.
                slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
            }
        }
        let slope = median(&slopes);
        // Sen's interval: ranks (N ∓ C) / 2 of the sorted slopes, with C from
        // the variance of Kendall's S.
        let count = slopes.len();
        let mf = n_f64(m);
        let c = Z95 * (mf * (mf - 1.0) * (2.0 * mf + 5.0) / 18.0).sqrt();
        let rank = |r: f64| -> usize {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "clamped to 0..count"
            )]
            let r = r.clamp(0.0, n_f64(count - 1)) as usize;
            r
        };
        let low_rank = rank(((n_f64(count) - c) / 2.0).floor());
        let high_rank = rank(((n_f64(count) + c) / 2.0).ceil());
        let slope_low = *slopes.select_nth_unstable_by(low_rank, f64::total_cmp).1;
        let slope_high = *slopes.select_nth_unstable_by(high_rank, f64::total_cmp).1;
        let center_t = median(&xs);
        let mut offsets: Vec<f64> = (0..n)
            .map(|i| clean.v[i] - slope * (clean.x(i) - center_t))
            .collect();
        let center_v = median_in_place(&mut offsets);
        let residuals: Vec<f64> = offsets.iter().map(|o| o - center_v).collect();
        let spread = robust_scale(&residuals, 0.0, &mut Vec::new());
        Ok(Self {
            slope,
            slope_low,
            slope_high,
            center_t,
            center_v,
            spread,
            last_t: clean.x(n - 1),
        })
    }

    /// The trend at time `t` with a 95% band that widens with the slope's
    /// uncertainty away from `center_t`.
    #[must_use]
    pub fn at(&self, t: f64) -> Band {
        let dt = t - self.center_t;
        let (a, b) = (self.slope_low * dt, self.slope_high * dt);
        let margin = Z95 * self.spread;
        Band {
            lower: self.center_v + a.min(b) - margin,
            value: self.center_v + self.slope * dt,
            upper: self.center_v + a.max(b) + margin,
        }
    }

    /// How long after the last point the trend reaches `threshold` (from
    /// below when it is above the current level, from above when below),
    /// e.g. the time until a disk is full. `None` when the central slope
    /// heads away from it or is flat.
    #[must_use]
    pub fn time_to_threshold(&self, threshold: f64) -> Option<Eta> {
        let now = self.center_v + self.slope * (self.last_t - self.center_t);
        // Mirror a falling approach so only the rising case is solved.
        let (s, fast, slow) = if threshold >= now {
            (1.0, self.slope_high, self.slope_low)
        } else {
            (-1.0, -self.slope_low, -self.slope_high)
        };
        let (slope, level, goal) = (s * self.slope, s * self.center_v, s * threshold);
        if slope <= 0.0 {
            return None;
        }
        let margin = Z95 * self.spread;
        let after = |rate: f64, start: f64| -> Option<f64> {
            (rate > 0.0).then(|| (self.center_t + (goal - start) / rate - self.last_t).max(0.0))
        };
        Some(Eta {
            expected: after(slope, level)?,
            earliest: after(fast, level + margin)?,
            latest: after(slow, level - margin),
        })
    }
}

/// Holt's linear exponential smoothing: a level and a trend, each updated as
/// an exponentially weighted average, for equally spaced points (timestamps
/// are checked but not used).
///
/// ```
/// use warden_anomaly::{Holt, Series};
///
/// let values: Vec<f64> = (0..30).map(|i| 10.0 + 2.0 * f64::from(i)).collect();
/// let holt = Holt::fit(&Series::from(values), 0.5, 0.3)?;
/// let next = holt.forecast(5);
/// assert!((next.value - (10.0 + 2.0 * 34.0)).abs() < 1e-9);
/// # Ok::<(), warden_anomaly::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Holt {
    /// Smoothed level at the last point.
    pub level: f64,
    /// Smoothed change per point.
    pub trend: f64,
    /// Level smoothing factor in `(0, 1]`.
    pub alpha: f64,
    /// Trend smoothing factor in `(0, 1]`.
    pub beta: f64,
    /// Robust standard deviation of the one-step-ahead errors.
    pub spread: f64,
}

impl Holt {
    /// Smooths the whole series; the level starts at the first value and
    /// the trend at the median of the first few differences.
    ///
    /// # Errors
    ///
    /// The input errors of [`detect`](crate::detect), [`Error::TooShort`]
    /// for fewer than 2 points, [`Error::InvalidConfig`] for `alpha` or
    /// `beta` outside `(0, 1]`.
    pub fn fit(series: &Series, alpha: f64, beta: f64) -> Result<Self, Error> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(Error::InvalidConfig {
                field: "alpha",
                reason: "must be in (0, 1]",
            });
        }
        if !(beta > 0.0 && beta <= 1.0) {
            return Err(Error::InvalidConfig {
                field: "beta",
                reason: "must be in (0, 1]",
            });
        }
        let v = clean(series)?.v;
        if v.len() < 2 {
            return Err(Error::TooShort {
                len: v.len(),
                needed: 2,
            });
        }
        let first_diffs: Vec<f64> = v.windows(2).take(5).map(|w| w[1] - w[0]).collect();
        let (mut level, mut trend) = (v[0], median(&first_diffs));
        let mut errors = Vec::with_capacity(v.len() - 1);
        for &y in &v[1..] {
            let predicted = level + trend;
            errors.push(y - predicted);
            let previous = level;
            level = alpha * y + (1.0 - alpha) * predicted;
            trend = beta * (level - previous) + (1.0 - beta) * trend;
        }
        let spread = robust_scale(&errors, 0.0, &mut Vec::new());
        Ok(Self {
            level,
            trend,
            alpha,
            beta,
            spread,
        })
    }

    /// The forecast `steps` points after the last one, with a 95% band
    /// from the usual Holt error variance
    /// `σ²·(1 + Σ_{j<steps} α²(1 + jβ)²)`.
    #[must_use]
    pub fn forecast(&self, steps: usize) -> Band {
        let h = n_f64(steps);
        let variance_factor = 1.0
            + (1..steps)
                .map(|j| (self.alpha * (1.0 + n_f64(j) * self.beta)).powi(2))
                .sum::<f64>();
        let value = self.level + h * self.trend;
        let margin = Z95 * self.spread * variance_factor.sqrt();
        Band {
            lower: value - margin,
            value,
            upper: value + margin,
        }
    }
}

#[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
fn n_f64(n: usize) -> f64 {
    n as f64
}
