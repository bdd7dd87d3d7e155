//! Robust statistics over trailing windows.

use std::collections::VecDeque;

/// MAD of normal data times this estimates its standard deviation.
const MAD_TO_SD: f64 = 1.4826;
/// Mean absolute deviation of normal data times this estimates its standard deviation.
const MEAN_AD_TO_SD: f64 = 1.2533;

/// Median of a non-empty slice, reordering it.
pub(crate) fn median_in_place(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = xs.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        let lower = xs[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        f64::midpoint(lower, upper)
    }
}

/// Median of a slice without reordering it.
pub(crate) fn median(xs: &[f64]) -> f64 {
    median_in_place(&mut xs.to_vec())
}

/// A robust standard deviation of `xs` around `center`: 1.4826 × MAD,
/// falling back to the mean absolute deviation when more than half the values
/// equal the center (MAD 0), so a mostly flat series still has a scale.
pub(crate) fn robust_scale(xs: &[f64], center: f64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(xs.iter().map(|x| (x - center).abs()));
    let mad = median_in_place(scratch);
    if mad > 0.0 {
        return MAD_TO_SD * mad;
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "window lengths are far below 2^53"
    )]
    let n = scratch.len().max(1) as f64;
    MEAN_AD_TO_SD * scratch.iter().sum::<f64>() / n
}

/// The last `cap` values in arrival order and sorted, for O(1) medians.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    cap: usize,
    order: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Window {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            order: VecDeque::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.sorted.clear();
    }

    pub(crate) fn push(&mut self, x: f64) {
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            let at = self.sorted.partition_point(|y| y.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
        self.order.push_back(x);
        let at = self.sorted.partition_point(|y| y.total_cmp(&x).is_lt());
        self.sorted.insert(at, x);
    }

    pub(crate) fn median(&self) -> f64 {
        let n = self.sorted.len();
        match n {
            0 => 0.0,
            _ if n % 2 == 1 => self.sorted[n / 2],
            _ => f64::midpoint(self.sorted[n / 2 - 1], self.sorted[n / 2]),
        }
    }

    /// Median and robust scale of the window.
    pub(crate) fn center_scale(&self, scratch: &mut Vec<f64>) -> (f64, f64) {
        let center = self.median();
        (center, robust_scale(&self.sorted, center, scratch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_values_and_their_median() {
        let mut w = Window::new(3);
        for x in [5.0, 1.0, 9.0, 2.0, 2.0] {
            w.push(x);
        }
        // Holds 9, 2, 2.
        assert_eq!(w.len(), 3);
        assert_eq!(w.median(), 2.0);
        let (c, s) = w.center_scale(&mut Vec::new());
        assert_eq!(c, 2.0);
        // MAD is 0 (two of three at the center), so the mean deviation 7/3 is used.
        assert!((s - MEAN_AD_TO_SD * 7.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn median_of_even_length_averages_the_middle_pair() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
