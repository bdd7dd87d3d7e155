//! Anomaly scoring and forecasting on metric series.
//!
//! Pure code with no I/O, threads or C dependencies: the host and WASM
//! plugins (`wasm32-wasip2`) run the same algorithm.
//!
//! How a point is scored ([`detect`] for a whole series, [`Detector`] one
//! point at a time); each point is compared only with the points before it:
//! 1. With seasonality ([`Seasonality`]: a given period, or one found by
//!    autocorrelation, [`detect_period`]), the expected value is the median of
//!    the same phase over the last few cycles, and only the rest is scored.
//! 2. Spike/dip: the robust z-score of what is left against the median and
//!    MAD of a trailing window.
//! 3. Drift: an EWMA of what is left (each point clipped at the threshold)
//!    against the window median, scored against that departure's own
//!    recent spread, catches level shifts too small for step 2.
//! 4. An alarm ([`Anomaly`]) is raised at the first point of an event; a
//!    cooldown of quiet points must pass before the next one.
//!
//! [`scores`] gives every point's graded score in `[0, 1]` (0.5 at the
//! threshold) and [`alarms_at`] turns scores into alarms at any level, so a
//! level can be chosen on labelled series without rerunning the detector.
//!
//! Forecasting: [`Trend`] (Theil–Sen slope with a band and
//! [`Trend::time_to_threshold`], e.g. time until a disk is full) and
//! [`Holt`] (linear exponential smoothing).
//!
//! Benchmark scoring: [`nab`] applies the Numenta Anomaly Benchmark's rules
//! (windows, probation, scaled sigmoid, normalisation, threshold sweep).
//!
//! Drive health: [`SmartRisk`] scores failure risk from SMART attributes
//! (5, 187, 188, 197, 198 and their growth), with the reasons.
//!
//! ```
//! use warden_anomaly::{Config, Kind, Point, Series, Trend, detect};
//!
//! // A noisy per-second metric with one spike.
//! let points: Vec<Point> = (0..1000_u32)
//!     .map(|i| {
//!         let noise = f64::from(i * 7919 % 13) / 13.0 - 0.5;
//!         let v = if i == 800 { 25.0 } else { 10.0 + noise };
//!         Point::at(1_714_557_600.0 + f64::from(i), v)
//!     })
//!     .collect();
//! let report = detect(&Series::from(points.clone()), &Config::default())?;
//! assert_eq!(report.anomalies.len(), 1);
//! let alarm = &report.anomalies[0];
//! assert_eq!((alarm.index, alarm.kind, alarm.t), (800, Kind::Spike, Some(1_714_558_400.0)));
//! assert!(alarm.value > alarm.upper);
//!
//! // Plain values work too; bad input is a typed error naming the point.
//! let err = detect(&Series::from(vec![1.0, f64::NAN]), &Config::default()).unwrap_err();
//! assert_eq!(err.to_string(), "value at index 1 is not finite (NaN)");
//!
//! // The same points have no trend to speak of.
//! let trend = Trend::fit(&Series::from(points))?;
//! assert!(trend.slope.abs() < 1e-3);
//! # Ok::<(), warden_anomaly::Error>(())
//! ```
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `schemars` | `JsonSchema` for [`Config`], [`Seasonality`], [`Series`], [`Point`], [`Time`], [`Report`], [`Anomaly`], [`Kind`], [`Trend`], [`Holt`], [`Band`], [`Eta`], [`SmartRisk`], [`RiskLevel`] |
#![deny(missing_docs)]

mod config;
mod detect;
mod error;
mod forecast;
pub mod nab;
mod season;
mod series;
mod smart;
mod stats;

pub use config::{Config, Seasonality};
pub use detect::{Anomaly, Detector, Kind, Report, alarms_at, detect, scores};
pub use error::Error;
pub use forecast::{Band, Eta, Holt, Trend};
pub use season::detect_period;
pub use series::{Point, Series, Time};
pub use smart::{HIGH_RISK, MEDIUM_RISK, RiskLevel, SmartRisk, SmartRow};
