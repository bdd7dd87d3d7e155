//! `metric-anomaly`: anomalies in a metric series (robust median/MAD
//! z-score, optional seasonality, EWMA drift), with the algorithm from
//! `warden-anomaly` (the same code the host runs natively).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_anomaly::{Anomaly, Config, Series};
use warden_pdk::{Context, Tool, ToolError, export_tool};

/// The tool.
pub struct MetricAnomaly;

/// The series to score.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Plain values (`[1.0, 2.5]`) or points (`[{"t": "2024-05-01T10:00:00Z", "v": 1.0}]`).
    pub series: Series,
    /// Detector settings; every field is optional.
    #[serde(default)]
    pub config: Option<Config>,
}

/// What was found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Points scored.
    pub points: usize,
    /// Seasonal period used, in points, if any.
    pub period: Option<usize>,
    /// One entry per anomalous event, in series order.
    pub anomalies: Vec<Anomaly>,
}

impl Tool for MetricAnomaly {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "metric-anomaly";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Find spikes, dips and drifts in a metric series (robust median/MAD z-score, optional seasonality, EWMA drift); returns each anomalous event with its score and expected band.";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let config = input.config.unwrap_or_default();
        let report = warden_anomaly::detect(&input.series, &config)
            .map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        Ok(Output {
            points: input.series.len(),
            period: report.period,
            anomalies: report.anomalies,
        })
    }
}

export_tool!(MetricAnomaly);

#[cfg(test)]
mod tests {
    use super::*;

    fn small_config() -> Config {
        Config {
            window: 20,
            min_history: 20,
            seasonality: warden_anomaly::Seasonality::Off,
            ..Config::default()
        }
    }

    #[test]
    fn a_spike_is_reported_at_its_index() {
        let mut values: Vec<f64> = (0..60).map(|i| 10.0 + (i % 3) as f64 * 0.1).collect();
        values[45] = 80.0;
        let out = MetricAnomaly::invoke(
            &Context::default(),
            Input {
                series: Series::Values(values),
                config: Some(small_config()),
            },
        )
        .unwrap();
        assert_eq!(out.anomalies.len(), 1);
        assert_eq!(out.anomalies[0].index, 45);
    }

    #[test]
    fn nan_is_invalid_input_naming_the_point() {
        let mut values = vec![1.0; 40];
        values[7] = f64::NAN;
        let err = MetricAnomaly::invoke(
            &Context::default(),
            Input {
                series: Series::Values(values),
                config: Some(small_config()),
            },
        )
        .unwrap_err();
        match err {
            ToolError::InvalidInput(m) => assert!(m.contains('7'), "{m}"),
            other => panic!("{other}"),
        }
    }
}
