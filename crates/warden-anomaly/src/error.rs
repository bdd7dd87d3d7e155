/// Why a series or a config was rejected.
///
/// Messages are lowercase and name the offending point by its 0-based index,
/// so a plugin can hand them to the caller unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The series has no points.
    #[error("empty series: there is no point to score")]
    Empty,
    /// A value is NaN or infinite.
    #[error("value at index {index} is not finite ({value})")]
    NonFinite {
        /// Index of the point.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A timestamp is earlier than the one before it.
    #[error("timestamp at index {index} ({t}) is earlier than the previous one ({previous})")]
    Unsorted {
        /// Index of the point.
        index: usize,
        /// Its timestamp, in Unix seconds.
        t: f64,
        /// The previous point's timestamp, in Unix seconds.
        previous: f64,
    },
    /// A timestamp equals the one before it.
    #[error("timestamp at index {index} ({t}) duplicates the previous point's")]
    Duplicate {
        /// Index of the point.
        index: usize,
        /// The repeated timestamp, in Unix seconds.
        t: f64,
    },
    /// A timestamp string is not RFC 3339, or a number is not finite.
    #[error("timestamp at index {index} is not rfc 3339 or finite unix seconds: {text:?}")]
    BadTimestamp {
        /// Index of the point.
        index: usize,
        /// The timestamp as given.
        text: String,
    },
    /// Some points have a timestamp and this one has none.
    #[error("timestamp at index {index} is missing while other points have one")]
    MissingTimestamp {
        /// Index of the point.
        index: usize,
    },
    /// The series ends before the first point that could be scored.
    #[error(
        "series too short: {len} points, but the first point that can be scored is index {needed} \
         (lower min_history or window)"
    )]
    TooShort {
        /// Number of points given.
        len: usize,
        /// Index of the first point that could be scored.
        needed: usize,
    },
    /// A config field is out of range.
    #[error("invalid config: {field} {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A SMART raw value is negative or not finite.
    #[error(
        "smart row {index}: attribute {attribute} raw value {value} is not a finite non-negative number"
    )]
    InvalidSmart {
        /// Index of the row in the history.
        index: usize,
        /// The attribute id.
        attribute: u16,
        /// The offending raw value.
        value: f64,
    },
    /// A NAB label window's start or end is not the timestamp of a row.
    #[error("nab window {start}..{end}: its start or end is not a row's timestamp")]
    WindowNotInSeries {
        /// The window's first timestamp.
        start: f64,
        /// The window's last timestamp.
        end: f64,
    },
    /// Timestamps and anomaly scores of a file differ in length.
    #[error("{timestamps} timestamps but {scores} anomaly scores")]
    LengthMismatch {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of anomaly scores.
        scores: usize,
    },
}
