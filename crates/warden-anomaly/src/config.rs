use serde::{Deserialize, Serialize};

use crate::Error;

/// Whether values are compared with the same phase of earlier cycles.
///
/// In JSON: `"off"`, `"auto"` or `{"period": 24}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Seasonality {
    /// No seasonal profile: values are compared with the trailing window only.
    Off,
    /// Detect the period by autocorrelation of the points seen so far, at
    /// points 32, 64, 128, … and at `min_history`, up to the first power of
    /// two that holds `max_period` twice. A multiple of the period found
    /// (a week for a daily cycle) is taken instead when forecasting one
    /// cycle back errs clearly less with it, and a later probe replaces the
    /// period only on the same condition. Until a period is found, and if
    /// none is, it is like `Off`.
    Auto,
    /// A known period, in points (24 for hourly data with a daily cycle).
    Period(usize),
}

/// How points are scored and when they raise an alarm.
///
/// Every field has a default chosen on the Numenta Anomaly Benchmark with one
/// config for all series; a config read from JSON may name only the fields it
/// changes. Out-of-range fields are rejected with [`Error::InvalidConfig`].
///
/// ```
/// use warden_anomaly::{Config, Seasonality};
///
/// let config = Config { seasonality: Seasonality::Period(24), ..Config::default() };
/// assert_eq!(config.threshold, Config::default().threshold);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Trailing points whose median and MAD define "normal". Default 576; at least 8.
    pub window: usize,
    /// Robust z-score (deviation from the window median in units of
    /// 1.4826 × MAD) at which a point is a spike or dip. Default 6.0.
    pub threshold: f64,
    /// Points seen before the first alarm can be raised: enough for two cycles of
    /// a daily period at 5-minute samples, so `Auto` can find it first.
    /// Default 600; at least 8.
    pub min_history: usize,
    /// Seasonal profile. Default [`Seasonality::Auto`].
    pub seasonality: Seasonality,
    /// Longest period `Auto` looks for, in points. Default 1440.
    pub max_period: usize,
    /// The seasonal expectation is the median of the same phase over this many
    /// past cycles. Default 3; at least 1.
    pub season_cycles: usize,
    /// Smoothing factor of the EWMA that tracks the level for drift, in
    /// `(0, 1]`; smaller is slower and steadier. Default 0.05.
    pub ewma_alpha: f64,
    /// Robust z-score of the EWMA's departure from the window median at which
    /// the level has drifted. Default 7.0.
    pub drift_threshold: f64,
    /// After an alarm, points that must pass without crossing a threshold
    /// before the next alarm, so one incident raises one alarm. Default 144.
    pub cooldown: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: 576,
            threshold: 6.0,
            min_history: 600,
            seasonality: Seasonality::Auto,
            max_period: 1440,
            season_cycles: 3,
            ewma_alpha: 0.05,
            drift_threshold: 7.0,
            cooldown: 144,
        }
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.window < 8 {
            return bad("window", "must be at least 8");
        }
        if self.min_history < 8 {
            return bad("min_history", "must be at least 8");
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return bad("threshold", "must be a positive number");
        }
        if !(self.drift_threshold.is_finite() && self.drift_threshold > 0.0) {
            return bad("drift_threshold", "must be a positive number");
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return bad("ewma_alpha", "must be in (0, 1]");
        }
        if self.season_cycles == 0 {
            return bad("season_cycles", "must be at least 1");
        }
        if self.seasonality == Seasonality::Period(0) || self.seasonality == Seasonality::Period(1)
        {
            return bad("seasonality", "period must be at least 2");
        }
        if self.max_period < 2 {
            return bad("max_period", "must be at least 2");
        }
        Ok(())
    }
}
