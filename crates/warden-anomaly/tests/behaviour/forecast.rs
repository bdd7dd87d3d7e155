use warden_anomaly::{Holt, Point, Series, Trend};

use crate::Noise;

#[test]
fn theil_sen_recovers_a_line_despite_outliers() {
    // The last 10 of 50 readings dropped to 0 (a sensor fault): fewer than
    // half the pairs involve them, so the median slope is exact.
    let values: Vec<f64> = (0..50)
        .map(|x| {
            if x >= 40 {
                0.0
            } else {
                2.0 * f64::from(x) + 1.0
            }
        })
        .collect();
    let trend = Trend::fit(&Series::from(values.clone())).unwrap();
    assert!((trend.slope - 2.0).abs() < 1e-12, "slope {}", trend.slope);
    assert!(trend.slope_low <= 2.0 && 2.0 <= trend.slope_high);
    assert!((trend.at(100.0).value - 201.0).abs() < 1e-9);
    // Least squares, by contrast, is pulled far off by the same outliers.
    let n = values.len() as f64;
    let (mx, my) = ((n - 1.0) / 2.0, values.iter().sum::<f64>() / n);
    let sxy: f64 = values
        .iter()
        .enumerate()
        .map(|(x, y)| (x as f64 - mx) * (y - my))
        .sum();
    let sxx: f64 = (0..50).map(|x| (f64::from(x) - mx).powi(2)).sum();
    assert!((sxy / sxx - 2.0).abs() > 0.5);
}

#[test]
fn time_to_threshold_of_a_filling_disk() {
    // Disk usage in percent, hourly, growing 0.5 %/h from 40 % with jitter.
    let mut noise = Noise::new(4);
    let points: Vec<Point> = (0..72)
        .map(|h| {
            Point::at(
                1_700_000_000.0 + 3600.0 * f64::from(h),
                40.0 + 0.5 * f64::from(h) + 0.2 * noise.normal(),
            )
        })
        .collect();
    let trend = Trend::fit(&Series::from(points)).unwrap();
    assert!(
        (trend.slope * 3600.0 - 0.5).abs() < 0.02,
        "slope {} %/h",
        trend.slope * 3600.0
    );
    let eta = trend.time_to_threshold(100.0).unwrap();
    // Last point is at 75.5 %: 49 hours to go.
    let hours = eta.expected / 3600.0;
    assert!((hours - 49.0).abs() < 2.5, "{hours} h");
    let latest = eta.latest.unwrap();
    assert!(eta.earliest < eta.expected && eta.expected < latest);
    // A filling disk never comes back down to a lower level, and a flat one
    // never fills.
    assert_eq!(trend.time_to_threshold(60.0), None);
    let flat = Trend::fit(&Series::from(vec![5.0; 10])).unwrap();
    assert_eq!(flat.time_to_threshold(6.0), None);
}

#[test]
fn a_falling_series_reaches_a_threshold_below_it() {
    let values: Vec<f64> = (0..20).map(|i| 100.0 - 3.0 * f64::from(i)).collect();
    let trend = Trend::fit(&Series::from(values)).unwrap();
    // Last value 43, falling 3 per point: 20 reached after 23/3 points.
    let eta = trend.time_to_threshold(20.0).unwrap();
    assert!((eta.expected - 23.0 / 3.0).abs() < 1e-9);
}

#[test]
fn trend_band_widens_away_from_the_data() {
    let mut noise = Noise::new(8);
    let values: Vec<f64> = (0..100).map(|i| f64::from(i) + noise.normal()).collect();
    let trend = Trend::fit(&Series::from(values)).unwrap();
    let near = trend.at(99.0);
    let far = trend.at(300.0);
    assert!(near.lower < near.value && near.value < near.upper);
    assert!(far.upper - far.lower > near.upper - near.lower);
}

#[test]
fn holt_follows_a_trend_and_its_band_widens_with_the_horizon() {
    let mut noise = Noise::new(6);
    let values: Vec<f64> = (0..200)
        .map(|i| 5.0 + 0.25 * f64::from(i) + 0.5 * noise.normal())
        .collect();
    let holt = Holt::fit(&Series::from(values), 0.3, 0.1).unwrap();
    assert!((holt.trend - 0.25).abs() < 0.05, "trend {}", holt.trend);
    let one = holt.forecast(1);
    let ten = holt.forecast(10);
    assert!(
        (ten.value - (5.0 + 0.25 * 209.0)).abs() < 2.0,
        "{}",
        ten.value
    );
    assert!(ten.upper - ten.lower > one.upper - one.lower);
}
