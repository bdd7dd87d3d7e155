//! `disk-forecast`: when does a disk fill up, and is the drive about to fail?
//!
//! Time to full comes from a Theil–Sen trend of the usage series (robust to
//! a cleanup or a burst) with its 95% band, cross-checked by Holt smoothing
//! of the recent level and rate. Failure risk comes from SMART attributes
//! (5, 187, 188, 197, 198 and their growth) via `warden_anomaly::SmartRisk`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_anomaly::{Holt, Point, RiskLevel, Series, SmartRisk, SmartRow, Time, Trend};
use warden_pdk::{Context, Tool, ToolError, export_tool};

const DAY: f64 = 86_400.0;

/// The tool.
pub struct DiskForecast;

/// One usage observation; give `used_bytes` or `used_pct` (the same one in
/// every point).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsagePoint {
    /// Unix seconds or an RFC 3339 date-time; strictly increasing.
    pub t: Time,
    /// Bytes in use.
    #[serde(default)]
    pub used_bytes: Option<f64>,
    /// Percent of capacity in use, 0..100.
    #[serde(default)]
    pub used_pct: Option<f64>,
}

/// A usage series, SMART attributes, or both.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Disk usage over time, oldest first.
    #[serde(default)]
    pub series: Vec<UsagePoint>,
    /// Disk size in bytes; required with `used_bytes`, optional with `used_pct`.
    #[serde(default)]
    pub capacity_bytes: Option<f64>,
    /// Percent of capacity counted as full (default 100; e.g. 90 for an
    /// alerting threshold).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub full_at_pct: Option<f64>,
    /// Latest SMART raw values by attribute id, e.g. `{"5": 12, "197": 8, "9": 31000}`.
    #[serde(default)]
    pub smart: Option<SmartRow>,
    /// Earlier SMART readings, oldest first, to see whether counters grow.
    #[serde(default)]
    pub smart_history: Vec<SmartRow>,
}

/// Days until full: optimistic to pessimistic.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EtaDays {
    /// Pessimistic: the fast edge of the 95% band.
    pub low: f64,
    /// The central trend.
    pub median: f64,
    /// Optimistic: the slow edge; `None` when it never fills.
    pub high: Option<f64>,
}

/// Time-to-full forecast.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Forecast {
    /// Points used.
    pub points: usize,
    /// `bytes` or `percent`: the unit of `current`, `full_at` and `fill_rate_per_day`.
    pub unit: String,
    /// Usage at the last point on the trend line.
    pub current: f64,
    /// The level counted as full.
    pub full_at: f64,
    /// Growth per day (Theil–Sen slope); negative when shrinking.
    pub fill_rate_per_day: f64,
    /// Growth per day as percent of capacity, when the capacity is known.
    pub fill_rate_pct_per_day: Option<f64>,
    /// 95% interval of the daily growth.
    pub fill_rate_band: [f64; 2],
    /// Whether the trend is rising.
    pub filling: bool,
    /// Days from the last point until full; `None` when not filling.
    pub eta_days: Option<EtaDays>,
    /// Unix seconds of the median ETA.
    pub full_on: Option<f64>,
    /// Holt's estimate of days until full (recent level and rate), when it
    /// is rising and the points are about evenly spaced.
    pub holt_eta_days: Option<f64>,
    /// One line for humans.
    pub summary: String,
}

/// What the tool found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Time to full, when a series was given.
    pub forecast: Option<Forecast>,
    /// Failure risk, when SMART attributes were given.
    pub risk: Option<SmartRisk>,
    /// The findings in a few lines.
    pub summary: String,
}

impl Tool for DiskForecast {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "disk-forecast";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Forecast when a disk fills up from a usage series (days to full with a 95% band, fill rate per day) and score drive failure risk 0..1 from SMART attributes (5, 187, 188, 197, 198 and their growth), with reasons.";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        if input.series.is_empty() && input.smart.is_none() && input.smart_history.is_empty() {
            return Err(ToolError::InvalidInput(
                "nothing to assess: give a usage `series`, `smart` attributes, or both".into(),
            ));
        }
        let forecast = if input.series.is_empty() {
            None
        } else {
            Some(forecast(&input)?)
        };
        let risk = if input.smart.is_none() && input.smart_history.is_empty() {
            None
        } else {
            let mut history = input.smart_history.clone();
            history.extend(input.smart.clone());
            Some(SmartRisk::assess(&history).map_err(|e| ToolError::InvalidInput(e.to_string()))?)
        };
        let mut lines = Vec::new();
        if let Some(f) = &forecast {
            lines.push(f.summary.clone());
        }
        if let Some(r) = &risk {
            let level = match r.level {
                RiskLevel::Low => "low",
                RiskLevel::Medium => "medium",
                RiskLevel::High => "high",
            };
            let why = if r.reasons.is_empty() {
                "no warning signs".to_string()
            } else {
                r.reasons.join("; ")
            };
            lines.push(format!("Failure risk {level} ({:.2}): {why}.", r.score));
        }
        Ok(Output {
            forecast,
            risk,
            summary: lines.join("\n"),
        })
    }
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidInput(message.into())
}

fn forecast(input: &Input) -> Result<Forecast, ToolError> {
    if let Some(c) = input.capacity_bytes
        && !(c.is_finite() && c > 0.0)
    {
        return Err(invalid(format!(
            "capacity_bytes must be a positive number, got {c}"
        )));
    }
    let full_pct = input.full_at_pct.unwrap_or(100.0);
    if !(full_pct > 0.0 && full_pct <= 100.0) {
        return Err(invalid(format!(
            "full_at_pct must be in (0, 100], got {full_pct}"
        )));
    }
    let bytes = input.series[0].used_bytes.is_some();
    let mut points = Vec::with_capacity(input.series.len());
    for (i, p) in input.series.iter().enumerate() {
        let v = match (p.used_bytes, p.used_pct) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "point {i} has both used_bytes and used_pct; give one"
                )));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "point {i} has neither used_bytes nor used_pct"
                )));
            }
            (Some(b), None) if bytes => b,
            (None, Some(pct)) if !bytes => pct,
            _ => {
                return Err(invalid(format!(
                    "point {i} mixes used_bytes and used_pct with point 0; use one unit"
                )));
            }
        };
        if !v.is_finite() || v < 0.0 {
            return Err(invalid(format!(
                "usage at index {i} must be a finite non-negative number, got {v}"
            )));
        }
        points.push(Point {
            t: Some(p.t.clone()),
            v,
        });
    }
    if points.len() < 2 {
        return Err(invalid(format!(
            "series needs at least 2 points to forecast, got {}",
            points.len()
        )));
    }
    let (unit, full_at, per_pct) = if bytes {
        let capacity = input
            .capacity_bytes
            .ok_or_else(|| invalid("capacity_bytes is required with used_bytes"))?;
        ("bytes", capacity * full_pct / 100.0, Some(capacity / 100.0))
    } else {
        ("percent", full_pct, Some(1.0))
    };
    let series = Series::from(points);
    let trend = Trend::fit(&series).map_err(|e| invalid(e.to_string()))?;
    let current = trend.at(trend.last_t).value;
    let rate = trend.slope * DAY;
    let filling = trend.slope > 0.0;
    let eta_days = if current >= full_at {
        Some(EtaDays {
            low: 0.0,
            median: 0.0,
            high: Some(0.0),
        })
    } else if filling {
        trend.time_to_threshold(full_at).map(|eta| EtaDays {
            low: eta.earliest / DAY,
            median: eta.expected / DAY,
            high: eta.latest.map(|s| s / DAY),
        })
    } else {
        None
    };
    let holt_eta_days = holt_eta(&series, &input.series, full_at)?;
    let fill_rate_pct_per_day = per_pct.map(|p| rate / p);
    let unit_text = |v: f64| {
        if bytes {
            format!("{:.1} GiB", v / f64::from(1_u32 << 30))
        } else {
            format!("{v:.1}%")
        }
    };
    let summary = match &eta_days {
        Some(e) if e.median <= 0.0 => format!(
            "Already full: {} in use, full at {}.",
            unit_text(current),
            unit_text(full_at)
        ),
        Some(e) => format!(
            "Full in about {:.1} days (95% band {:.1} to {}), growing {}/day; {} in use of {}.",
            e.median,
            e.low,
            e.high
                .map_or_else(|| "never".to_string(), |h| format!("{h:.1} days")),
            unit_text(rate),
            unit_text(current),
            unit_text(full_at)
        ),
        None => format!(
            "Not filling: usage trend {}/day; {} in use of {}.",
            unit_text(rate),
            unit_text(current),
            unit_text(full_at)
        ),
    };
    Ok(Forecast {
        points: series.len(),
        unit: unit.into(),
        current,
        full_at,
        fill_rate_per_day: rate,
        fill_rate_pct_per_day,
        fill_rate_band: [trend.slope_low * DAY, trend.slope_high * DAY],
        filling,
        full_on: eta_days.as_ref().map(|e| trend.last_t + e.median * DAY),
        eta_days,
        holt_eta_days,
        summary,
    })
}

/// Holt's days to full, from its per-point rate scaled by the median
/// spacing; `None` when the spacing is too uneven for per-point smoothing
/// to mean per-time or the level is not rising.
fn holt_eta(series: &Series, raw: &[UsagePoint], full_at: f64) -> Result<Option<f64>, ToolError> {
    let times: Vec<f64> = raw.iter().filter_map(|p| p.t.seconds()).collect();
    let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let (Some(&min), Some(&max)) = (gaps.first(), gaps.last()) else {
        return Ok(None);
    };
    let step = gaps[gaps.len() / 2];
    if max > 2.0 * step || min < 0.5 * step {
        return Ok(None);
    }
    let holt = Holt::fit(series, 0.5, 0.3).map_err(|e| invalid(e.to_string()))?;
    if holt.trend <= 0.0 {
        return Ok(None);
    }
    Ok(Some(
        ((full_at - holt.level) / holt.trend * step / DAY).max(0.0),
    ))
}

export_tool!(DiskForecast);

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1_073_741_824.0;

    fn daily(values: &[f64], bytes: bool) -> Vec<UsagePoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| UsagePoint {
                t: Time::Seconds(1_714_521_600.0 + i as f64 * DAY),
                used_bytes: bytes.then_some(v),
                used_pct: (!bytes).then_some(v),
            })
            .collect()
    }

    fn run(input: Input) -> Result<Output, ToolError> {
        DiskForecast::invoke(&Context::default(), input)
    }

    fn message(err: ToolError) -> String {
        match err {
            ToolError::InvalidInput(m) => m,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_disk_growing_two_gib_a_day_fills_when_the_line_says() {
        // 100 GiB disk, 40 GiB used, +2 GiB/day for 20 days -> 78 GiB; 11 days left.
        let values: Vec<f64> = (0..20)
            .map(|d| (40.0 + 2.0 * d as f64 + if d % 3 == 0 { 0.3 } else { 0.0 }) * GIB)
            .collect();
        let out = run(Input {
            series: daily(&values, true),
            capacity_bytes: Some(100.0 * GIB),
            ..Input::default()
        })
        .unwrap();
        let f = out.forecast.unwrap();
        assert!(f.filling);
        assert!(
            (f.fill_rate_per_day / GIB - 2.0).abs() < 0.05,
            "{}",
            f.fill_rate_per_day
        );
        assert!((f.fill_rate_pct_per_day.unwrap() - 2.0).abs() < 0.05);
        let eta = f.eta_days.unwrap();
        assert!((eta.median - 11.0).abs() < 0.5, "{eta:?}");
        assert!(eta.low <= eta.median && eta.median <= eta.high.unwrap());
        assert!((f.holt_eta_days.unwrap() - 11.0).abs() < 1.0);
        assert!(
            out.summary.starts_with("Full in about 11"),
            "{}",
            out.summary
        );
        assert!(out.risk.is_none());
    }

    #[test]
    fn a_shrinking_disk_is_not_filling() {
        let values: Vec<f64> = (0..10).map(|d| 80.0 - d as f64).collect();
        let f = run(Input {
            series: daily(&values, false),
            ..Input::default()
        })
        .unwrap()
        .forecast
        .unwrap();
        assert!(!f.filling);
        assert_eq!(f.eta_days, None);
        assert_eq!(f.unit, "percent");
        assert!(f.summary.starts_with("Not filling"));
    }

    #[test]
    fn full_at_pct_moves_the_target_and_a_full_disk_has_zero_days() {
        let values: Vec<f64> = (0..10).map(|d| 50.0 + 4.0 * d as f64).collect();
        let at_90 = run(Input {
            series: daily(&values, false),
            full_at_pct: Some(90.0),
            ..Input::default()
        })
        .unwrap()
        .forecast
        .unwrap();
        assert!((at_90.eta_days.unwrap().median - 1.0).abs() < 0.01);
        let full = run(Input {
            series: daily(&[99.0, 100.0], false),
            ..Input::default()
        })
        .unwrap()
        .forecast
        .unwrap();
        assert_eq!(full.eta_days.unwrap().median, 0.0);
    }

    #[test]
    fn smart_alone_gives_a_risk_with_reasons() {
        let out = run(Input {
            smart: Some(SmartRow::from([(5, 12.0), (197, 8.0)])),
            smart_history: vec![SmartRow::from([(5, 4.0), (197, 8.0)])],
            ..Input::default()
        })
        .unwrap();
        let risk = out.risk.unwrap();
        assert_eq!(risk.level, RiskLevel::High);
        assert!(out.forecast.is_none());
        assert!(
            out.summary
                .contains("5 reallocated sectors (raw 12) and growing (+8)")
        );
        assert!(out.summary.contains("197 pending sectors (raw 8)"));
    }

    #[test]
    fn rejects_empty_input_bad_capacity_nan_and_unsorted_points() {
        assert!(message(run(Input::default()).unwrap_err()).contains("nothing to assess"));
        let bad_capacity = run(Input {
            series: daily(&[1.0, 2.0], true),
            capacity_bytes: Some(0.0),
            ..Input::default()
        });
        assert!(message(bad_capacity.unwrap_err()).contains("capacity_bytes must be a positive"));
        let no_capacity = run(Input {
            series: daily(&[1.0, 2.0], true),
            ..Input::default()
        });
        assert!(message(no_capacity.unwrap_err()).contains("capacity_bytes is required"));
        let nan = run(Input {
            series: daily(&[1.0, f64::NAN, 3.0], false),
            ..Input::default()
        });
        assert!(message(nan.unwrap_err()).contains("index 1"));
        let mut unsorted = daily(&[1.0, 2.0, 3.0, 4.0], false);
        unsorted.swap(2, 3);
        let err = message(
            run(Input {
                series: unsorted,
                ..Input::default()
            })
            .unwrap_err(),
        );
        assert!(err.contains("timestamp at index 3"), "{err}");
        let one = run(Input {
            series: daily(&[1.0], false),
            ..Input::default()
        });
        assert!(message(one.unwrap_err()).contains("at least 2 points"));
    }

    #[test]
    fn the_manifest_schemas_name_the_inputs_and_outputs() {
        let input = serde_json::to_string(&schemars::schema_for!(Input)).unwrap();
        for field in [
            "series",
            "capacity_bytes",
            "smart",
            "smart_history",
            "used_pct",
        ] {
            assert!(input.contains(field), "{field}: {input}");
        }
        let output = serde_json::to_string(&schemars::schema_for!(Output)).unwrap();
        assert!(
            output.contains("eta_days") && output.contains("reasons"),
            "{output}"
        );
    }

    #[test]
    fn parses_rfc3339_points_and_integer_smart_keys_from_json() {
        let input: Input = serde_json::from_str(
            r#"{"series": [{"t": "2024-05-01T00:00:00Z", "used_pct": 50},
                           {"t": "2024-05-02T00:00:00Z", "used_pct": 60}],
                "smart": {"5": 0, "197": 0}}"#,
        )
        .unwrap();
        let out = run(input).unwrap();
        assert!((out.forecast.unwrap().eta_days.unwrap().median - 4.0).abs() < 1e-9);
        assert_eq!(out.risk.unwrap().level, RiskLevel::Low);
    }
}
