use warden_anomaly::{Config, Error, Holt, Point, Seasonality, Series, Time, Trend, detect};

#[allow(
    clippy::unwrap_used,
    reason = "a test helper: a wrong Ok must fail the test"
)]
fn run(series: Series) -> Error {
    detect(&series, &Config::default()).unwrap_err()
}

fn timed(ts: &[f64]) -> Series {
    Series::from(ts.iter().map(|&t| Point::at(t, 1.0)).collect::<Vec<_>>())
}

#[test]
fn rejects_an_empty_series() {
    assert_eq!(run(Series::Values(vec![])), Error::Empty);
    assert_eq!(
        run(Series::Points(vec![])).to_string(),
        "empty series: there is no point to score"
    );
    assert_eq!(
        Trend::fit(&Series::Values(vec![])).unwrap_err(),
        Error::Empty
    );
}

#[test]
fn rejects_nan_and_infinite_values_naming_the_index() {
    let mut values = vec![1.0; 1000];
    values[3] = f64::NAN;
    let err = run(Series::from(values.clone()));
    assert!(matches!(err, Error::NonFinite { index: 3, .. }));
    assert_eq!(err.to_string(), "value at index 3 is not finite (NaN)");
    values[3] = 1.0;
    values[999] = f64::NEG_INFINITY;
    assert_eq!(
        run(Series::from(values)).to_string(),
        "value at index 999 is not finite (-inf)"
    );
}

#[test]
fn rejects_unsorted_and_duplicate_timestamps_naming_the_index() {
    let err = run(timed(&[0.0, 60.0, 30.0, 90.0]));
    assert_eq!(
        err,
        Error::Unsorted {
            index: 2,
            t: 30.0,
            previous: 60.0
        }
    );
    assert_eq!(
        err.to_string(),
        "timestamp at index 2 (30) is earlier than the previous one (60)"
    );
    let err = run(timed(&[0.0, 60.0, 60.0]));
    assert_eq!(err, Error::Duplicate { index: 2, t: 60.0 });
    assert_eq!(
        err.to_string(),
        "timestamp at index 2 (60) duplicates the previous point's"
    );
}

#[test]
fn rejects_bad_or_missing_timestamps_naming_the_index() {
    let bad = Series::from(vec![
        Point {
            t: Some(Time::Text("2024-05-01T10:00:00Z".into())),
            v: 1.0,
        },
        Point {
            t: Some(Time::Text("2024-05-01 25:00".into())),
            v: 1.0,
        },
    ]);
    assert_eq!(
        run(bad).to_string(),
        r#"timestamp at index 1 is not rfc 3339 or finite unix seconds: "2024-05-01 25:00""#
    );
    let missing = Series::from(vec![
        Point::at(0.0, 1.0),
        Point::at(1.0, 1.0),
        Point::from(2.0),
    ]);
    assert_eq!(run(missing), Error::MissingTimestamp { index: 2 });
}

#[test]
fn rejects_a_series_too_short_for_the_config() {
    let err = run(Series::from(vec![1.0; 600]));
    assert_eq!(
        err,
        Error::TooShort {
            len: 600,
            needed: 600
        }
    );
    assert!(err.to_string().starts_with(
        "series too short: 600 points, but the first point that can be scored is index 600"
    ));
    let seasonal = Config {
        min_history: 50,
        seasonality: Seasonality::Period(100),
        ..Config::default()
    };
    assert_eq!(
        detect(&Series::from(vec![1.0; 200]), &seasonal).unwrap_err(),
        Error::TooShort {
            len: 200,
            needed: 100 + 2 * 144
        }
    );
    // The index named is really the first that can alarm.
    let mut values = vec![1.0; 389];
    values[388] = 5.0;
    let report = detect(&Series::from(values), &seasonal).unwrap();
    assert_eq!(
        report.anomalies.iter().map(|a| a.index).collect::<Vec<_>>(),
        [388]
    );
    assert_eq!(
        Trend::fit(&Series::from(vec![1.0])).unwrap_err(),
        Error::TooShort { len: 1, needed: 2 }
    );
}

#[test]
fn rejects_out_of_range_config() {
    let series = Series::from(vec![1.0; 1000]);
    for (config, field) in [
        (
            Config {
                window: 2,
                ..Config::default()
            },
            "window",
        ),
        (
            Config {
                threshold: f64::NAN,
                ..Config::default()
            },
            "threshold",
        ),
        (
            Config {
                ewma_alpha: 0.0,
                ..Config::default()
            },
            "ewma_alpha",
        ),
        (
            Config {
                seasonality: Seasonality::Period(1),
                ..Config::default()
            },
            "seasonality",
        ),
    ] {
        let err = detect(&series, &config).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert!(matches!(
        Holt::fit(&series, 1.5, 0.1).unwrap_err(),
        Error::InvalidConfig { field: "alpha", .. }
    ));
}
