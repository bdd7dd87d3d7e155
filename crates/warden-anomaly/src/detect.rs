//! Online scoring: seasonal profile, robust z-score, EWMA drift, alarm events.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::season::{best_period, multiples};
use crate::series::{Checker, clean};
use crate::stats::{Window, median, median_in_place, robust_scale};
use crate::{Config, Error, Point, Seasonality, Series, detect_period};

/// What kind of departure raised an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A point far above the expected band.
    Spike,
    /// A point far below the expected band.
    Dip,
    /// The smoothed level moved away from the recent median (a level shift
    /// or a sustained drift), while single points may still look normal.
    Drift,
}

/// One alarm: the first point of an anomalous event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Anomaly {
    /// 0-based index of the point in the series.
    pub index: usize,
    /// The point's timestamp in Unix seconds, if the series has timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<f64>,
    /// The observed value.
    pub value: f64,
    /// How far out it is: the absolute robust z-score for spikes and dips,
    /// the absolute drift z-score for drift. At least the threshold.
    pub score: f64,
    /// Spike, dip or drift.
    pub kind: Kind,
    /// The value the detector expected: the seasonal profile plus the
    /// trailing median of what is left.
    pub expected: f64,
    /// Lower edge of the normal band (`expected - threshold × scale`).
    pub lower: f64,
    /// Upper edge of the normal band (`expected + threshold × scale`).
    pub upper: f64,
}

/// The result of [`detect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Report {
    /// The seasonal period used, in points, if any.
    pub period: Option<usize>,
    /// Alarms in series order, one per anomalous event.
    pub anomalies: Vec<Anomaly>,
}

/// Scores a whole series with one config and returns its alarms.
///
/// Each point is compared only with the points before it, exactly as a
/// [`Detector`] fed one point at a time would; the whole series is checked
/// first, so a bad point fails the call before any scoring.
///
/// # Errors
///
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::BadTimestamp`],
/// [`Error::MissingTimestamp`], [`Error::Unsorted`], [`Error::Duplicate`]
/// for bad points; [`Error::TooShort`] when no point would be scored;
/// [`Error::InvalidConfig`] for a config out of range.
pub fn detect(series: &Series, config: &Config) -> Result<Report, Error> {
    let mut anomalies = Vec::new();
    let period = run(series, config, |_, anomaly| anomalies.extend(anomaly))?;
    Ok(Report { period, anomalies })
}

/// Every point's graded score in `[0, 1]`, as [`detect`] computes it: how
/// far the point is out in units of its threshold (`x` is the larger of
/// `|z| / threshold` and `|drift z| / drift_threshold`), mapped to
/// `x / (1 + x)`. A point crosses the threshold when its score is at least
/// 0.5; points before `min_history` score 0.
///
/// [`alarms_at`] turns the scores into alarms at any level, with the same
/// cooldown rule as [`detect`]: `alarms_at(&scores, 0.5, config.cooldown)`
/// is exactly the indices of [`detect`]'s alarms. A benchmark can therefore
/// choose a level on training series without running the detector again.
///
/// ```
/// use warden_anomaly::{Config, Series, alarms_at, detect, scores};
///
/// let values: Vec<f64> = (0..800_u32)
///     .map(|i| if i == 700 { 30.0 } else { 10.0 + f64::from(i * 7919 % 13) / 13.0 })
///     .collect();
/// let series = Series::from(values);
/// let config = Config::default();
/// let graded = scores(&series, &config)?;
/// assert!(graded[700] > 0.9 && graded[699] < 0.5);
/// let alarms: Vec<usize> = detect(&series, &config)?.anomalies.iter().map(|a| a.index).collect();
/// assert_eq!(alarms_at(&graded, 0.5, config.cooldown), alarms);
/// # Ok::<(), warden_anomaly::Error>(())
/// ```
///
/// # Errors
///
/// As [`detect`].
pub fn scores(series: &Series, config: &Config) -> Result<Vec<f64>, Error> {
    let mut out = Vec::with_capacity(series.len());
    run(series, config, |score, _| out.push(score))?;
    Ok(out)
}

/// Indices at which alarms are raised when a point scoring at least
/// `level` (a [`scores`] value) crosses: the first crossing, and after it
/// the first crossing that follows at least `cooldown` points without one.
#[must_use]
pub fn alarms_at(scores: &[f64], level: f64, cooldown: usize) -> Vec<usize> {
    let mut quiet = cooldown;
    let mut out = Vec::new();
    for (i, &score) in scores.iter().enumerate() {
        if score >= level {
            if quiet >= cooldown {
                out.push(i);
            }
            quiet = 0;
        } else {
            quiet = quiet.saturating_add(1);
        }
    }
    out
}

/// Checks the whole series, then feeds it to a detector, handing `each`
/// every point's graded score and alarm; returns the period used.
fn run(
    series: &Series,
    config: &Config,
    mut each: impl FnMut(f64, Option<Anomaly>),
) -> Result<Option<usize>, Error> {
    let mut detector = Detector::new(config.clone())?;
    let clean = clean(series)?;
    let needed = detector.first_scored();
    if clean.v.len() <= needed {
        return Err(Error::TooShort {
            len: clean.v.len(),
            needed,
        });
    }
    for (i, &v) in clean.v.iter().enumerate() {
        let t = clean.t.as_ref().map(|t| t[i]);
        let anomaly = detector.push_valid(t, v);
        each(detector.score, anomaly);
    }
    Ok(detector.period())
}

/// Graded score at which a point crosses the threshold.
const CROSSING: f64 = 0.5;

/// `x / (1 + x)`: 0 for a point on the expectation, 0.5 at the threshold
/// (`x = 1`), towards 1 far out.
fn graded(x: f64) -> f64 {
    if x.is_nan() {
        return 0.0;
    }
    if x.is_infinite() {
        return 1.0;
    }
    x / (1.0 + x)
}

/// Scores points one at a time, keeping only a bounded trailing history.
///
/// ```
/// use warden_anomaly::{Config, Detector, Kind, Point};
///
/// let config = Config { min_history: 50, window: 50, ..Config::default() };
/// let mut detector = Detector::new(config)?;
/// let mut alarms = Vec::new();
/// for i in 0..200_u32 {
///     let v = if i == 150 { 100.0 } else { 10.0 + f64::from(i % 7) * 0.1 };
///     alarms.extend(detector.push(Point::at(f64::from(i) * 60.0, v))?);
/// }
/// assert_eq!(alarms.len(), 1);
/// assert_eq!((alarms[0].index, alarms[0].kind), (150, Kind::Spike));
/// # Ok::<(), warden_anomaly::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Detector {
    config: Config,
    checker: Checker,
    index: usize,
    period: Option<usize>,
    /// Next point count at which `Auto` looks for a period; `None` once settled.
    next_probe: Option<usize>,
    raw: VecDeque<f64>,
    /// Residual of each point in `raw` (NaN before the first full cycle).
    raw_residuals: VecDeque<f64>,
    raw_cap: usize,
    residuals: Window,
    deviations: Window,
    ewma: Option<f64>,
    /// Points since the last threshold crossing, for the cooldown.
    quiet: usize,
    scratch: Vec<f64>,
    /// Graded score of the last point pushed.
    score: f64,
}

/// Scores of one point, before the alarm decision.
struct Scored {
    z: f64,
    drift_z: f64,
    expected: f64,
    half_band: f64,
}

/// The last `Auto` probe is the first power of two at least this many periods long.
const PROBE_CYCLES: usize = 2;
/// First `Auto` probe, in points.
const FIRST_PROBE: usize = 32;

impl Detector {
    /// A detector with no history.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when a field is out of range.
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let (period, next_probe, raw_cap) = match config.seasonality {
            Seasonality::Off => (None, None, 1),
            Seasonality::Period(p) => (Some(p), None, p * config.season_cycles),
            Seasonality::Auto => (
                None,
                Some(FIRST_PROBE.min(config.min_history)),
                last_probe(&config),
            ),
        };
        Ok(Self {
            residuals: Window::new(config.window),
            deviations: Window::new(config.window),
            quiet: config.cooldown,
            config,
            checker: Checker::new(),
            index: 0,
            period,
            next_probe,
            raw: VecDeque::new(),
            raw_residuals: VecDeque::new(),
            raw_cap,
            ewma: None,
            scratch: Vec::new(),
            score: 0.0,
        })
    }

    /// The seasonal period in use, in points: the configured one, or the
    /// one `Auto` has found so far.
    #[must_use]
    pub fn period(&self) -> Option<usize> {
        self.period
    }

    /// The graded score (see [`scores`]) of the last point accepted; 0
    /// before any point and while warming up.
    #[must_use]
    pub fn score(&self) -> f64 {
        self.score
    }

    /// Scores the next point; returns an alarm if it starts an anomalous event.
    ///
    /// # Errors
    ///
    /// [`Error::NonFinite`], [`Error::BadTimestamp`], [`Error::MissingTimestamp`],
    /// [`Error::Unsorted`] or [`Error::Duplicate`]; the point is then ignored
    /// and the detector stays usable.
    pub fn push(&mut self, point: impl Into<Point>) -> Result<Option<Anomaly>, Error> {
        let point = point.into();
        let t = self.checker.check(point.t.as_ref(), point.v)?;
        Ok(self.push_valid(t, point.v))
    }

    /// Index of the first point that can raise an alarm, as far as the
    /// config tells before any data is seen.
    fn first_scored(&self) -> usize {
        // Residuals start after one cycle; the drift score needs `min_ready`
        // of them, then `min_ready` EWMA deviations.
        let warm = 2 * self.min_ready();
        match self.config.seasonality {
            Seasonality::Period(p) => self.config.min_history.max(p + warm),
            _ => self.config.min_history.max(warm),
        }
    }

    /// Residuals needed before their median and scale are trusted.
    fn min_ready(&self) -> usize {
        (self.config.window / 4).max(8)
    }

    fn push_valid(&mut self, t: Option<f64>, v: f64) -> Option<Anomaly> {
        let index = self.index;
        self.index += 1;
        let scored = self.step(v);
        self.probe_period();
        self.score = 0.0;
        let scored = scored.filter(|_| index >= self.config.min_history)?;
        let spike_ratio = scored.z.abs() / self.config.threshold;
        let drift_ratio = scored.drift_z.abs() / self.config.drift_threshold;
        self.score = graded(spike_ratio.max(drift_ratio));
        if self.score < CROSSING {
            self.quiet = self.quiet.saturating_add(1);
            return None;
        }
        let fire = self.quiet >= self.config.cooldown;
        self.quiet = 0;
        if !fire {
            return None;
        }
        let spike = spike_ratio >= 1.0 || spike_ratio >= drift_ratio;
        let (kind, score) = match (spike, scored.z > 0.0) {
            (true, true) => (Kind::Spike, scored.z),
            (true, false) => (Kind::Dip, -scored.z),
            (false, _) => (Kind::Drift, scored.drift_z.abs()),
        };
        Some(Anomaly {
            index,
            t,
            value: v,
            score,
            kind,
            expected: scored.expected,
            lower: scored.expected - scored.half_band,
            upper: scored.expected + scored.half_band,
        })
    }

    /// Updates the trailing state with `v` and returns its scores, once
    /// there is enough history to score it.
    fn step(&mut self, v: f64) -> Option<Scored> {
        let seasonal = self.seasonal_expectation();
        if self.raw.len() == self.raw_cap {
            self.raw.pop_front();
            self.raw_residuals.pop_front();
        }
        self.raw.push_back(v);
        let Some((seasonal, local_scale)) = seasonal else {
            self.raw_residuals.push_back(f64::NAN);
            return None;
        };
        let residual = v - seasonal;
        self.raw_residuals.push_back(residual);
        let ready = self.residuals.len() >= self.min_ready();
        let (center, scale) = self.residuals.center_scale(&mut self.scratch);
        // Relative floor: a flat or perfectly periodic series has scale 0,
        // and rounding noise must not score as infinitely anomalous.
        let scale = scale
            .max(local_scale)
            .max(1e-9 * (v.abs() + seasonal.abs()).max(1e-3));
        let limit = self.config.threshold * scale;
        // Clipping keeps one spike from dragging the level and reading as drift.
        let clipped = center + (residual - center).clamp(-limit, limit);
        let alpha = self.config.ewma_alpha;
        let ewma = self.ewma.map_or(clipped, |e| e + alpha * (clipped - e));
        self.ewma = Some(ewma);
        let deviation = ewma - center;
        let scored = (ready && self.deviations.len() >= self.min_ready()).then(|| {
            let (dev_center, dev_scale) = self.deviations.center_scale(&mut self.scratch);
            // For independent noise the EWMA's spread is scale·√(α/(2−α));
            // autocorrelated series spread more, which the window's own
            // scale then captures.
            let dev_scale = dev_scale.max(scale * (alpha / (2.0 - alpha)).sqrt());
            Scored {
                z: (residual - center) / scale,
                drift_z: (deviation - dev_center) / dev_scale,
                expected: seasonal + center,
                half_band: limit,
            }
        });
        self.residuals.push(residual);
        if ready {
            self.deviations.push(deviation);
        }
        scored
    }

    /// Median of the same phase over past cycles (0 without seasonality)
    /// and the spread of residuals around that phase in past cycles (0
    /// without), since noise often grows with the level (busy hours are
    /// noisier than quiet ones). `None` while the first cycle is being seen.
    fn seasonal_expectation(&mut self) -> Option<(f64, f64)> {
        let Some(p) = self.period else {
            return Some((0.0, 0.0));
        };
        let n = self.raw.len();
        self.scratch.clear();
        self.scratch.extend(
            (1..=self.config.season_cycles)
                .take_while(|k| k * p <= n)
                .map(|k| self.raw[n - k * p]),
        );
        if self.scratch.is_empty() {
            return None;
        }
        let expected = median_in_place(&mut self.scratch);
        let reach = (p / 48).max(2);
        self.scratch.clear();
        for k in (1..=self.config.season_cycles).take_while(|k| k * p <= n) {
            let phase = n - k * p;
            let lo = phase.saturating_sub(reach);
            let hi = (phase + reach).min(n - 1);
            self.scratch
                .extend(self.raw_residuals.range(lo..=hi).filter(|r| r.is_finite()));
        }
        let local_scale = if self.scratch.len() > 2 * reach {
            let center = median(&self.scratch);
            robust_scale(&self.scratch, center, &mut Vec::new())
        } else {
            0.0
        };
        Some((expected, local_scale))
    }

    /// At the `Auto` probe points, looks for a period; once found, replays
    /// the kept history so the trailing state is seasonal from then on.
    fn probe_period(&mut self) {
        let Some(probe) = self.next_probe else { return };
        if self.index < probe {
            return;
        }
        let last = last_probe(&self.config);
        let mut next = (probe * 2).min(last);
        if probe < self.config.min_history && next > self.config.min_history {
            next = self.config.min_history;
        }
        self.next_probe = (probe < last).then_some(next);
        self.raw.make_contiguous();
        let history = self.raw.as_slices().0;
        let max_period = self.config.max_period;
        // A period found at an earlier probe is kept unless a multiple of
        // the one found now, or another period, forecasts clearly better.
        let found = detect_period(history, max_period).and_then(|p| {
            let candidates: Vec<usize> = self
                .period
                .into_iter()
                .chain(multiples(p, max_period))
                .collect();
            best_period(history, &candidates)
        });
        let settled = self.next_probe.is_none();
        let Some(p) = found.filter(|&p| Some(p) != self.period) else {
            if settled {
                self.raw_cap = self.period.map_or(1, |p| p * self.config.season_cycles);
                let keep = self.raw_cap;
                self.raw.drain(..self.raw.len().saturating_sub(keep));
                self.raw_residuals
                    .drain(..self.raw_residuals.len().saturating_sub(keep));
            }
            return;
        };
        self.period = Some(p);
        let history: Vec<f64> = self.raw.drain(..).collect();
        self.raw_residuals.clear();
        if settled {
            self.raw_cap = p * self.config.season_cycles;
        }
        self.residuals.clear();
        self.deviations.clear();
        self.ewma = None;
        for v in history {
            self.step(v);
        }
    }
}

/// Length of the last `Auto` probe: room for `PROBE_CYCLES` of the longest period.
fn last_probe(config: &Config) -> usize {
    (PROBE_CYCLES * config.max_period)
        .max(FIRST_PROBE)
        .next_power_of_two()
}
