//! Period detection by autocorrelation.

/// Smallest autocorrelation (after removing a linear trend) a period needs.
const MIN_ACF: f64 = 0.5;
/// A shorter period wins over the strongest one if it is at least this share
/// as strong, so a daily cycle is not reported as weekly or as two days.
const SHORTER_SHARE: f64 = 0.85;

/// The dominant period of `values` in points, if it has a clear one.
///
/// The period is the lag of an autocorrelation peak of at least 0.5 (after a
/// least-squares line is removed) that comes after the autocorrelation first
/// turns negative and that repeats at least twice within `values`; lags above
/// `max_period` are not tried. Among strong peaks the shortest wins, so a
/// daily cycle is reported as daily even when the weekly lag matches a bit
/// better.
///
/// ```
/// use warden_anomaly::detect_period;
///
/// let hourly: Vec<f64> = (0..24 * 7).map(|h| (f64::from(h % 24) / 24.0 * std::f64::consts::TAU).sin()).collect();
/// assert_eq!(detect_period(&hourly, 100), Some(24));
/// assert_eq!(detect_period(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 100), None);
/// ```
#[must_use]
pub fn detect_period(values: &[f64], max_period: usize) -> Option<usize> {
    let n = values.len();
    let max_lag = max_period.min(n / 2);
    if max_lag < 2 {
        return None;
    }
    let detrended = detrend(values);
    let variance: f64 = detrended.iter().map(|x| x * x).sum();
    if variance <= f64::EPSILON * n_f64(n) {
        return None;
    }
    // Normalised by the full variance (the standard biased estimator), so
    // long lags with few pairs are not inflated.
    let acf: Vec<f64> = (0..=max_lag + 1)
        .map(|lag| {
            if lag >= n {
                return 0.0;
            }
            detrended[..n - lag]
                .iter()
                .zip(&detrended[lag..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / variance
        })
        .collect();
    let first_negative = (1..=max_lag).find(|&lag| acf[lag] < 0.0)?;
    let peaks: Vec<(usize, f64)> = (first_negative.max(2)..=max_lag)
        .filter(|&lag| {
            let reach = (lag / 10).max(2);
            let lo = lag.saturating_sub(reach);
            let hi = (lag + reach).min(max_lag + 1);
            acf[lag] >= MIN_ACF && (lo..=hi).all(|other| acf[other] <= acf[lag])
        })
        .map(|lag| (lag, acf[lag]))
        .collect();
    let best = peaks
        .iter()
        .map(|&(_, a)| a)
        .fold(f64::NEG_INFINITY, f64::max);
    peaks
        .iter()
        .find(|&&(_, a)| a >= SHORTER_SHARE * best)
        .map(|&(lag, _)| lag)
}

/// A longer period replaces a shorter one only if its one-cycle-back
/// forecast errs at most this share as much.
const LONGER_GAIN: f64 = 0.8;

/// Of the periods `candidates` (in order of preference), the one whose
/// one-cycle-back forecast (`values[t - q]`) has the smallest mean absolute
/// error over the rows every candidate can forecast; a later candidate wins
/// only by a clear margin ([`LONGER_GAIN`]). Candidates that do not fit twice
/// in `values` are skipped.
///
/// This is how a weekly cycle is told from a daily one: a weekday-only
/// profile gets every weekend wrong, and that error shows here even when the
/// autocorrelation at one day is almost as high as at one week.
pub(crate) fn best_period(values: &[f64], candidates: &[usize]) -> Option<usize> {
    let n = values.len();
    let fitting: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&q| q >= 1 && 2 * q <= n)
        .collect();
    let start = fitting.iter().copied().max()?;
    let error = |q: usize| {
        values[start..]
            .iter()
            .zip(&values[start - q..])
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
    };
    let mut best = (fitting[0], error(fitting[0]));
    for &q in &fitting[1..] {
        let e = error(q);
        if e < LONGER_GAIN * best.1 {
            best = (q, e);
        }
    }
    Some(best.0)
}

/// `p` and its multiples up to `max_period`.
pub(crate) fn multiples(p: usize, max_period: usize) -> impl Iterator<Item = usize> {
    (1..=max_period / p.max(1)).map(move |k| k * p)
}

/// `values` minus their least-squares line.
fn detrend(values: &[f64]) -> Vec<f64> {
    let n = n_f64(values.len());
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = n_f64(i) - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, y)| y - mean_y - slope * (n_f64(i) - mean_x))
        .collect()
}

#[allow(
    clippy::cast_precision_loss,
    reason = "series lengths are far below 2^53"
)]
fn n_f64(n: usize) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_square_wave_period_under_a_trend() {
        let values: Vec<f64> = (0..400)
            .map(|i| f64::from(u8::from(i % 40 < 10)) * 5.0 + f64::from(i) * 0.01)
            .collect();
        assert_eq!(detect_period(&values, 200), Some(40));
    }

    #[test]
    fn reports_no_period_for_a_flat_series() {
        assert_eq!(detect_period(&[3.0; 100], 50), None);
    }
}
