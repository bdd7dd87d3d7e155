use warden_anomaly::{
    Config, Detector, Kind, Point, Seasonality, Series, Time, alarms_at, detect, detect_period,
    scores,
};

use crate::{Noise, noisy};

#[test]
fn finds_a_spike_in_a_flat_noisy_series_at_its_index() {
    let mut values = noisy(1000, 10.0, 1.0, 7);
    values[800] += 12.0;
    let report = detect(&Series::from(values.clone()), &Config::default()).unwrap();
    assert_eq!(report.anomalies.len(), 1, "{:?}", report.anomalies);
    let alarm = &report.anomalies[0];
    assert_eq!((alarm.index, alarm.kind), (800, Kind::Spike));
    assert_eq!(alarm.value, values[800]);
    assert!(
        (alarm.expected - 10.0).abs() < 0.3,
        "expected {}",
        alarm.expected
    );
    assert!(alarm.lower < 10.0 && 10.0 < alarm.upper && alarm.value > alarm.upper);
    assert!(alarm.score >= Config::default().threshold);
}

#[test]
fn reports_a_drop_as_a_dip_with_its_timestamp() {
    let points: Vec<Point> = noisy(900, 50.0, 2.0, 11)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            Point::at(
                1_700_000_000.0 + 60.0 * i as f64,
                if i == 700 { 10.0 } else { v },
            )
        })
        .collect();
    let report = detect(&Series::from(points), &Config::default()).unwrap();
    assert_eq!(report.anomalies.len(), 1);
    let alarm = &report.anomalies[0];
    assert_eq!(
        (alarm.index, alarm.kind, alarm.t),
        (700, Kind::Dip, Some(1_700_042_000.0))
    );
}

/// Hourly-like data with a sharp daily peak: four of every 48 points are 20 higher.
fn daily_peaks(days: usize) -> Vec<f64> {
    let mut noise = Noise::new(3);
    (0..days * 48)
        .map(|i| {
            let peak = if (30..34).contains(&(i % 48)) {
                20.0
            } else {
                0.0
            };
            10.0 + peak + 0.5 * noise.normal()
        })
        .collect()
}

#[test]
fn seasonality_keeps_regular_peaks_quiet_that_alarm_without_it() {
    let series = Series::from(daily_peaks(40));
    // A short cooldown, so every alarming peak shows instead of merging into one event.
    let config = Config {
        cooldown: 10,
        ..Config::default()
    };
    let seasonal = detect(&series, &config).unwrap();
    assert_eq!(seasonal.period, Some(48));
    assert!(seasonal.anomalies.is_empty(), "{:?}", seasonal.anomalies);

    let given = Config {
        seasonality: Seasonality::Period(48),
        ..config.clone()
    };
    assert!(detect(&series, &given).unwrap().anomalies.is_empty());

    let flat = Config {
        seasonality: Seasonality::Off,
        ..config
    };
    let report = detect(&series, &flat).unwrap();
    assert_eq!(report.period, None);
    // Days 13..40 are scored; every one of their peaks alarms.
    assert!(report.anomalies.len() >= 25, "{:?}", report.anomalies);
    assert!(
        report
            .anomalies
            .iter()
            .all(|a| a.kind == Kind::Spike && (30..34).contains(&(a.index % 48)))
    );
}

#[test]
fn seasonality_finds_a_peak_that_is_missing() {
    let mut values = daily_peaks(40);
    for v in &mut values[35 * 48 + 30..35 * 48 + 34] {
        *v -= 20.0;
    }
    let report = detect(&Series::from(values), &Config::default()).unwrap();
    assert_eq!(report.anomalies.len(), 1, "{:?}", report.anomalies);
    assert_eq!(
        (report.anomalies[0].index, report.anomalies[0].kind),
        (35 * 48 + 30, Kind::Dip)
    );
}

#[test]
fn flags_a_small_level_shift_as_drift() {
    let mut values = noisy(1500, 10.0, 1.0, 5);
    // 2.5 standard deviations: too small for the point test, clear to the EWMA.
    for v in &mut values[1000..] {
        *v += 2.5;
    }
    let report = detect(&Series::from(values), &Config::default()).unwrap();
    let first = report.anomalies.first().expect("an alarm");
    assert_eq!(first.kind, Kind::Drift);
    assert!((1000..1060).contains(&first.index), "at {}", first.index);
    assert!(first.value > first.expected);
    // One shift, one alarm: the window absorbs the new level.
    assert_eq!(report.anomalies.len(), 1, "{:?}", report.anomalies);
}

#[test]
fn a_long_anomaly_raises_one_alarm_not_one_per_point() {
    let mut values = noisy(1200, 10.0, 1.0, 9);
    for v in &mut values[800..830] {
        *v += 15.0;
    }
    let report = detect(&Series::from(values), &Config::default()).unwrap();
    assert_eq!(
        report.anomalies.iter().map(|a| a.index).collect::<Vec<_>>(),
        [800]
    );
}

#[test]
fn a_flat_series_raises_nothing_until_it_moves() {
    let mut values = vec![45.0; 800];
    assert!(
        detect(&Series::from(values.clone()), &Config::default())
            .unwrap()
            .anomalies
            .is_empty()
    );
    values[700] = 45.5;
    let report = detect(&Series::from(values), &Config::default()).unwrap();
    assert_eq!(
        report.anomalies.iter().map(|a| a.index).collect::<Vec<_>>(),
        [700]
    );
}

#[test]
fn results_are_deterministic_and_match_the_online_detector() {
    let mut values = daily_peaks(30);
    values[1200] += 9.0;
    values[1400] -= 9.0;
    let series = Series::from(values.clone());
    let first = detect(&series, &Config::default()).unwrap();
    assert_eq!(first, detect(&series, &Config::default()).unwrap());
    assert_eq!(
        first.anomalies.iter().map(|a| a.index).collect::<Vec<_>>(),
        [1200, 1400]
    );

    let mut detector = Detector::new(Config::default()).unwrap();
    let online: Vec<_> = values
        .iter()
        .filter_map(|&v| detector.push(v).unwrap())
        .collect();
    assert_eq!(online, first.anomalies);
    assert_eq!(detector.period(), Some(48));
}

#[test]
fn the_online_detector_skips_a_bad_point_and_keeps_going() {
    let mut detector = Detector::new(Config::default()).unwrap();
    detector.push(Point::at(10.0, 1.0)).unwrap();
    assert!(detector.push(Point::at(5.0, 1.0)).is_err());
    assert!(detector.push(Point::at(20.0, f64::INFINITY)).is_err());
    assert_eq!(detector.push(Point::at(20.0, 1.0)).unwrap(), None);
}

#[test]
fn detects_the_period_of_a_noisy_cycle_but_not_of_noise() {
    let mut noise = Noise::new(1);
    let cycle: Vec<f64> = (0..600)
        .map(|i| (i as f64 / 24.0 * std::f64::consts::TAU).sin() + 0.3 * noise.normal())
        .collect();
    assert_eq!(detect_period(&cycle, 200), Some(24));
    assert_eq!(detect_period(&noisy(600, 0.0, 1.0, 2), 200), None);
}

#[test]
fn reads_series_and_config_from_json() {
    let plain: Series = serde_json::from_str("[1.5, 2, 3]").unwrap();
    assert_eq!(plain, Series::Values(vec![1.5, 2.0, 3.0]));
    let points: Series = serde_json::from_str(
        r#"[{"t": "2024-05-01T10:00:00Z", "v": 1}, {"t": 1714557660, "v": 2}, {"v": 3}]"#,
    )
    .unwrap();
    let Series::Points(points) = points else {
        panic!("points")
    };
    assert_eq!(points[0].t, Some(Time::Text("2024-05-01T10:00:00Z".into())));
    assert_eq!(points[1].t, Some(Time::Seconds(1_714_557_660.0)));
    assert_eq!(points[2].t, None);

    let config: Config =
        serde_json::from_str(r#"{"threshold": 4.5, "seasonality": {"period": 24}}"#).unwrap();
    assert_eq!(
        config,
        Config {
            threshold: 4.5,
            seasonality: Seasonality::Period(24),
            ..Config::default()
        }
    );
    assert!(serde_json::from_str::<Config>(r#"{"treshold": 4.5}"#).is_err());
    assert_eq!(serde_json::to_string(&Kind::Drift).unwrap(), r#""drift""#);
}

#[cfg(feature = "schemars")]
#[test]
fn publishes_json_schemas_for_input_and_output() {
    let config = serde_json::to_string(&schemars::schema_for!(Config)).unwrap();
    assert!(
        config.contains("\"threshold\"") && config.contains("\"period\""),
        "{config}"
    );
    let report = serde_json::to_string(&schemars::schema_for!(warden_anomaly::Report)).unwrap();
    assert!(
        report.contains("\"spike\"") && report.contains("\"expected\""),
        "{report}"
    );
    let series = serde_json::to_string(&schemars::schema_for!(Series)).unwrap();
    assert!(series.contains("anyOf"), "{series}");
}

/// Hourly data with a daily cycle whose weekends (two days in seven) run at
/// half the weekday level.
fn weekly_cycle(weeks: usize) -> Vec<f64> {
    let mut noise = Noise::new(5);
    (0..weeks * 168)
        .map(|i| {
            let daily = 10.0 + 5.0 * (std::f64::consts::TAU * (i % 24) as f64 / 24.0).sin();
            let weekend = if i % 168 >= 120 { 0.75 } else { 1.0 };
            daily * weekend + 0.2 * noise.normal()
        })
        .collect()
}

#[test]
fn auto_seasonality_takes_the_week_when_weekends_differ_from_weekdays() {
    let series = Series::from(weekly_cycle(12));
    let report = detect(&series, &Config::default()).unwrap();
    assert_eq!(report.period, Some(168));
    assert_eq!(report.anomalies, []);
    // Autocorrelation alone prefers the daily cycle: the week is chosen
    // because its one-cycle-back forecast errs far less.
    assert_eq!(detect_period(&weekly_cycle(12), 1440), Some(24));
}

#[test]
fn alarms_at_the_half_level_are_exactly_the_alarms_of_detect() {
    let mut values = daily_peaks(40);
    values[1000] += 6.0;
    values[1500] -= 8.0;
    for v in &mut values[1700..1800] {
        *v += 1.5;
    }
    let series = Series::from(values);
    let config = Config {
        cooldown: 20,
        ..Config::default()
    };
    let graded = scores(&series, &config).unwrap();
    assert_eq!(graded.len(), series.len());
    assert!(graded.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(graded[..config.min_history].iter().all(|&s| s == 0.0));
    let report = detect(&series, &config).unwrap();
    let indices: Vec<usize> = report.anomalies.iter().map(|a| a.index).collect();
    assert!(indices.len() >= 2, "{indices:?}");
    assert_eq!(alarms_at(&graded, 0.5, config.cooldown), indices);
    // A higher level keeps only the alarms whose score reaches it.
    let strict = alarms_at(&graded, 0.9, config.cooldown);
    assert!(strict.len() < indices.len(), "{strict:?}");
    assert!(strict.iter().all(|&i| graded[i] >= 0.9));
}

#[test]
fn the_online_detector_reports_each_points_graded_score() {
    let values = noisy(900, 10.0, 1.0, 13);
    let series = Series::from(values.clone());
    let config = Config::default();
    let graded = scores(&series, &config).unwrap();
    let mut detector = Detector::new(config).unwrap();
    assert_eq!(detector.score(), 0.0);
    for (i, v) in values.into_iter().enumerate() {
        detector.push(v).unwrap();
        assert_eq!(detector.score(), graded[i], "point {i}");
    }
}
