use serde::{Deserialize, Serialize};

use crate::token::TokenClass;

/// How lines are grouped into templates.
///
/// Every field has a default that works across log formats; a config read
/// from JSON may name only the fields it changes. Out-of-range values are
/// clamped when the [`Miner`](crate::Miner) is built rather than rejected, so
/// a plugin never fails on a config it was handed.
///
/// ```
/// use warden_logmine::Config;
///
/// let config = Config { similarity: 0.6, ..Config::default() };
/// assert_eq!(config.depth, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Depth of the parse tree: the root, the token-count level, then
    /// `depth - 2` levels keyed by the leading tokens. Default 4; at least 3.
    pub depth: usize,
    /// Share of a template's tokens a line must match to join it, in `0..=1`.
    /// Default 0.5.
    pub similarity: f64,
    /// Most children a tree node keeps before routing new tokens to its
    /// wildcard child. Default 100; at least 2.
    pub max_children: usize,
    /// Drop a leading log header (timestamp, level, pid, logger name) before
    /// mining. Only lines that start with a timestamp are touched.
    /// Default true.
    pub strip_headers: bool,
    /// Which kinds of variable are replaced by `<*>` before mining.
    pub masking: Masking,
    /// In [`mine`](crate::mine): after the online pass, merge templates that
    /// differ only in their parameters and split templates whose wildcard
    /// hides a few recurring words. Default true.
    pub refine: bool,
    /// A template is rare when its count is at most
    /// `max(1, rare_fraction * lines)`. Default 0.001.
    pub rare_fraction: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            depth: 4,
            similarity: 0.5,
            max_children: 100,
            strip_headers: true,
            masking: Masking::default(),
            refine: true,
            rare_fraction: 0.001,
        }
    }
}

impl Config {
    /// The same config with every field moved into its valid range.
    pub(crate) fn clamped(&self) -> Self {
        let unit = |x: f64, default: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                default
            }
        };
        Self {
            depth: self.depth.max(3),
            similarity: unit(self.similarity, 0.5),
            max_children: self.max_children.max(2),
            strip_headers: self.strip_headers,
            masking: self.masking.clone(),
            refine: self.refine,
            rare_fraction: unit(self.rare_fraction, 0.001),
        }
    }

    /// The count at or below which a template is rare, for `lines` lines.
    pub(crate) fn rare_limit(&self, lines: usize) -> u64 {
        // Lines counts fit easily in f64's 53-bit mantissa.
        #[allow(clippy::cast_precision_loss, reason = "line counts are far below 2^53")]
        let limit = (self.rare_fraction * lines as f64).floor();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the value is a non-negative whole number below the line count"
        )]
        let limit = limit as u64;
        limit.max(1)
    }
}

/// Which kinds of variable are masked as `<*>`; all on by default.
///
/// ```
/// use warden_logmine::Masking;
///
/// let masking = Masking { paths: false, ..Masking::default() };
/// assert!(masking.numbers);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent on/off switches, one per masking rule"
)]
pub struct Masking {
    /// Numbers, also inside tokens (`blk_-42`, `took=12ms`), quantities
    /// with a unit (`5.6 KB`, `12 ms`) and durations (`1h2m`).
    pub numbers: bool,
    /// IPv4 and IPv6 addresses, with or without a port.
    pub ips: bool,
    /// Dotted host names with a port (`proxy.example.org:5070`).
    pub hosts: bool,
    /// Hex ids: `0x1f`, MAC addresses, and hex runs of 8 or more characters
    /// with a digit and a letter.
    pub hex: bool,
    /// UUIDs (`8-4-4-4-12` hex).
    pub uuids: bool,
    /// File paths with at least two separators (`/var/log/x`, `C:\a\b`).
    pub paths: bool,
    /// URLs (`scheme://...`); the scheme is kept.
    pub urls: bool,
    /// Email addresses.
    pub emails: bool,
    /// Dates and times (`2024-01-02`, `12:30:01.5`, `2024-01-02T12:30:01Z`).
    pub timestamps: bool,
}

impl Default for Masking {
    fn default() -> Self {
        Self {
            numbers: true,
            ips: true,
            hosts: true,
            hex: true,
            uuids: true,
            paths: true,
            urls: true,
            emails: true,
            timestamps: true,
        }
    }
}

impl Masking {
    /// Whether a whole token of this class is masked.
    pub(crate) fn masks(&self, class: TokenClass) -> bool {
        match class {
            TokenClass::Number | TokenClass::Duration => self.numbers,
            TokenClass::Hex => self.hex,
            TokenClass::Uuid => self.uuids,
            TokenClass::Ip => self.ips,
            TokenClass::HostPort => self.hosts,
            TokenClass::Path => self.paths,
            TokenClass::Url => self.urls,
            TokenClass::Email => self.emails,
            TokenClass::Timestamp => self.timestamps,
            TokenClass::Word => false,
        }
    }
}
