//! Input points, timestamps and their validation.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A point's timestamp: Unix seconds, or an RFC 3339 string.
///
/// Strings look like `2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.250+02:00`
/// or `2024-05-01 10:00:00`; a space may stand for the `T`, and a missing
/// offset means UTC. Either way the time is used as Unix seconds (`f64`),
/// which is also how [`Anomaly::t`](crate::Anomaly::t) reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Time {
    /// Seconds since the Unix epoch; fractions allowed.
    Seconds(f64),
    /// An RFC 3339 date-time.
    Text(String),
}

impl Time {
    /// The time in Unix seconds, or `None` when it is not finite or not
    /// RFC 3339.
    ///
    /// ```
    /// use warden_anomaly::Time;
    ///
    /// assert_eq!(Time::Text("1970-01-02T00:00:01Z".into()).seconds(), Some(86_401.0));
    /// assert_eq!(Time::Text("2024-05-01 12:00:00+02:00".into()).seconds(), Some(1_714_557_600.0));
    /// assert_eq!(Time::Text("yesterday".into()).seconds(), None);
    /// ```
    #[must_use]
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Self::Seconds(s) => s.is_finite().then_some(*s),
            Self::Text(text) => parse_rfc3339(text),
        }
    }
}

/// One observation: a value and an optional timestamp.
///
/// In JSON: `{"t": "2024-05-01T10:00:00Z", "v": 71.5}`, `{"t": 1714557600, "v": 71.5}`
/// or `{"v": 71.5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Point {
    /// When the value was observed; either every point of a series has one,
    /// strictly increasing, or none has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<Time>,
    /// The observed value; must be finite.
    pub v: f64,
}

impl Point {
    /// A point at `t` Unix seconds.
    #[must_use]
    pub fn at(t: f64, v: f64) -> Self {
        Self {
            t: Some(Time::Seconds(t)),
            v,
        }
    }
}

impl From<f64> for Point {
    fn from(v: f64) -> Self {
        Self { t: None, v }
    }
}

/// A metric series: plain values (`[1.0, 2.5]`) or points (`[{"t": .., "v": ..}]`).
///
/// Without timestamps, positions stand in for time: index `i` is at `t = i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Series {
    /// Equally spaced values without timestamps.
    Values(Vec<f64>),
    /// Points, with or without timestamps.
    Points(Vec<Point>),
}

impl Series {
    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Values(v) => v.len(),
            Self::Points(p) => p.len(),
        }
    }

    /// Whether the series has no point.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<f64>> for Series {
    fn from(values: Vec<f64>) -> Self {
        Self::Values(values)
    }
}

impl From<&[f64]> for Series {
    fn from(values: &[f64]) -> Self {
        Self::Values(values.to_vec())
    }
}

impl From<Vec<Point>> for Series {
    fn from(points: Vec<Point>) -> Self {
        Self::Points(points)
    }
}

/// A validated series: finite values, and strictly increasing seconds if any.
#[derive(Debug, Clone)]
pub(crate) struct Clean {
    pub(crate) v: Vec<f64>,
    pub(crate) t: Option<Vec<f64>>,
}

impl Clean {
    /// The time of point `i`: its timestamp, else its index.
    pub(crate) fn x(&self, i: usize) -> f64 {
        match &self.t {
            Some(t) => t[i],
            #[allow(
                clippy::cast_precision_loss,
                reason = "series lengths are far below 2^53"
            )]
            None => i as f64,
        }
    }
}

/// Checks one point against the previous timestamp (if the series has them).
#[derive(Debug, Clone)]
pub(crate) struct Checker {
    index: usize,
    timed: Option<bool>,
    previous: Option<f64>,
}

impl Checker {
    pub(crate) fn new() -> Self {
        Self {
            index: 0,
            timed: None,
            previous: None,
        }
    }

    /// Validates the next point and returns its time in seconds, if any.
    pub(crate) fn check(&mut self, t: Option<&Time>, v: f64) -> Result<Option<f64>, Error> {
        let index = self.index;
        if !v.is_finite() {
            return Err(Error::NonFinite { index, value: v });
        }
        let seconds = match t {
            None => None,
            Some(time) => Some(time.seconds().ok_or_else(|| Error::BadTimestamp {
                index,
                text: match time {
                    Time::Seconds(s) => s.to_string(),
                    Time::Text(s) => s.clone(),
                },
            })?),
        };
        match (self.timed, seconds) {
            (Some(true), None) => return Err(Error::MissingTimestamp { index }),
            // The first point decides; a later timestamp after untimed points
            // names the first point as the one missing it.
            (Some(false), Some(_)) => return Err(Error::MissingTimestamp { index: 0 }),
            _ => {}
        }
        self.timed = Some(seconds.is_some());
        if let (Some(t), Some(previous)) = (seconds, self.previous) {
            if t == previous {
                return Err(Error::Duplicate { index, t });
            }
            if t < previous {
                return Err(Error::Unsorted { index, t, previous });
            }
        }
        self.previous = seconds.or(self.previous);
        self.index += 1;
        Ok(seconds)
    }
}

/// Validates a whole series.
pub(crate) fn clean(series: &Series) -> Result<Clean, Error> {
    if series.is_empty() {
        return Err(Error::Empty);
    }
    let mut checker = Checker::new();
    match series {
        Series::Values(values) => {
            for &v in values {
                checker.check(None, v)?;
            }
            Ok(Clean {
                v: values.clone(),
                t: None,
            })
        }
        Series::Points(points) => {
            let mut t = Vec::with_capacity(points.len());
            for p in points {
                if let Some(s) = checker.check(p.t.as_ref(), p.v)? {
                    t.push(s);
                }
            }
            let t = (!t.is_empty()).then_some(t);
            Ok(Clean {
                v: points.iter().map(|p| p.v).collect(),
                t,
            })
        }
    }
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH:MM]` into Unix seconds.
fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits
            .iter()
            .try_fold(0_i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let mut scale = 0.1;
        for d in &b[start..i] {
            fraction += f64::from(d - b'0') * scale;
            scale /= 10.0;
        }
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            if sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    #[allow(
        clippy::cast_precision_loss,
        reason = "dates in 0000..=9999 are far below 2^53 seconds"
    )]
    Some(seconds as f64 + fraction)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_variants_to_the_same_instant() {
        let want = Some(1_714_557_600.0);
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00Z"), want);
        assert_eq!(parse_rfc3339("2024-05-01 10:00:00"), want);
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00+02:00"), want);
        assert_eq!(parse_rfc3339("2024-05-01T05:30:00-04:30"), want);
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.5Z"),
            Some(1_714_557_600.5)
        );
    }

    #[test]
    fn rejects_malformed_or_impossible_dates() {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T10:00:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800.0));
    }
}
