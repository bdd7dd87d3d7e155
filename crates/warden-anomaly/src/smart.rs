//! Drive failure risk from SMART attribute raw values.
//!
//! The scored attributes are the five Backblaze found most predictive of
//! failure (5, 187, 188, 197, 198): each one's raw value adds evidence on a
//! log scale, because the first bad sector says far more than the hundredth
//! (Pinheiro et al., "Failure Trends in a Large Disk Drive Population",
//! FAST 2007: drives were 14 to 39 times more likely to fail within 60 days
//! after their first reallocation, pending or offline-uncorrectable event).
//! Growth over the given history adds more: a count still rising means the
//! surface is still degrading. Power-on hours (9) and temperature (194) add
//! a little; attribute 1 is reported but not scored, as its raw value is a
//! vendor-specific packed counter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Raw values of one SMART reading, by attribute id.
///
/// In JSON the ids are object keys: `{"5": 12, "197": 8, "9": 31000}`.
pub type SmartRow = BTreeMap<u16, f64>;

/// Evidence weight per unit of `ln(1 + raw)`, with the attribute's name.
/// 187 and the two uncorrectable counters weigh most: they are read errors
/// the drive could not fix; 188 least, as command timeouts also come from
/// cables and controllers.
const SCORED: [(u16, f64, &str); 5] = [
    (5, 0.30, "reallocated sectors"),
    (187, 0.50, "reported uncorrectable errors"),
    (188, 0.15, "command timeouts"),
    (197, 0.45, "pending sectors"),
    (198, 0.45, "offline uncorrectable sectors"),
];
/// Extra evidence when a scored counter rose within the history.
const GROWTH: f64 = 0.5;
/// Five years of power-on hours: past the flat part of the bathtub curve.
const OLD_HOURS: f64 = 43_800.0;
/// Drive temperature (°C) above which wear speeds up.
const HOT_CELSIUS: f64 = 55.0;
/// Evidence for age or heat: a nudge, never enough alone for `medium`.
const MINOR: f64 = 0.1;
/// Score at or above which the level is `medium`.
pub const MEDIUM_RISK: f64 = 0.3;
/// Score at or above which the level is `high`.
pub const HIGH_RISK: f64 = 0.7;

/// A coarse reading of [`SmartRisk::score`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Score below [`MEDIUM_RISK`].
    Low,
    /// Score from [`MEDIUM_RISK`] to below [`HIGH_RISK`].
    Medium,
    /// Score at or above [`HIGH_RISK`].
    High,
}

/// How likely a drive is to fail soon, from its SMART attributes.
///
/// ```
/// use warden_anomaly::{RiskLevel, SmartRisk, SmartRow};
///
/// let week_ago = SmartRow::from([(5, 4.0), (197, 0.0)]);
/// let today = SmartRow::from([(5, 12.0), (197, 8.0)]);
/// let risk = SmartRisk::assess(&[week_ago, today])?;
/// assert_eq!(risk.level, RiskLevel::High);
/// assert_eq!(risk.reasons, [
///     "197 pending sectors (raw 8) and growing (+8)",
///     "5 reallocated sectors (raw 12) and growing (+8)",
/// ]);
///
/// let healthy = SmartRisk::assess(&[SmartRow::from([(5, 0.0), (9, 12_000.0)])])?;
/// assert_eq!(healthy.level, RiskLevel::Low);
/// # Ok::<(), warden_anomaly::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SmartRisk {
    /// `1 - exp(-evidence)`, in `0..1`.
    pub score: f64,
    /// `low`, `medium` or `high`.
    pub level: RiskLevel,
    /// One line per piece of evidence, strongest first, e.g.
    /// `"197 pending sectors (raw 8)"`.
    pub reasons: Vec<String>,
    /// Attributes among 5, 187, 188, 197, 198 that the latest row lacks.
    pub missing: Vec<u16>,
}

impl SmartRisk {
    /// Scores the last row of `history` (oldest first); earlier rows only
    /// show whether the counters are growing.
    ///
    /// # Errors
    ///
    /// [`Error::Empty`] without rows, [`Error::InvalidSmart`] for a raw
    /// value that is negative or not finite.
    pub fn assess(history: &[SmartRow]) -> Result<Self, Error> {
        for (index, row) in history.iter().enumerate() {
            if let Some((&attribute, &value)) =
                row.iter().find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(Error::InvalidSmart {
                    index,
                    attribute,
                    value,
                });
            }
        }
        let Some(latest) = history.last() else {
            return Err(Error::Empty);
        };
        let mut evidence: Vec<(f64, String)> = Vec::new();
        let mut missing = Vec::new();
        for (id, weight, name) in SCORED {
            let Some(&raw) = latest.get(&id) else {
                missing.push(id);
                continue;
            };
            let earliest = history.iter().find_map(|row| row.get(&id)).copied();
            let growth = earliest.map_or(0.0, |first| raw - first);
            if raw <= 0.0 {
                continue;
            }
            let mut weight_sum = weight * raw.ln_1p();
            let mut line = format!("{id} {name} (raw {raw})");
            if growth > 0.0 {
                weight_sum += GROWTH;
                line.push_str(&format!(" and growing (+{growth})"));
            }
            evidence.push((weight_sum, line));
        }
        if let Some(&hours) = latest.get(&9)
            && hours >= OLD_HOURS
        {
            let years = hours / 8_766.0;
            evidence.push((
                MINOR,
                format!("9 power-on hours {hours} (about {years:.1} years)"),
            ));
        }
        if let Some(&celsius) = latest.get(&194)
            && celsius > HOT_CELSIUS
        {
            evidence.push((MINOR, format!("194 temperature {celsius} °C")));
        }
        evidence.sort_by(|a, b| b.0.total_cmp(&a.0));
        let total: f64 = evidence.iter().map(|e| e.0).sum();
        let score = 1.0 - (-total).exp();
        Ok(Self {
            score,
            level: level_of(score),
            reasons: evidence.into_iter().map(|e| e.1).collect(),
            missing,
        })
    }
}

fn level_of(score: f64) -> RiskLevel {
    if score >= HIGH_RISK {
        RiskLevel::High
    } else if score >= MEDIUM_RISK {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(u16, f64)]) -> SmartRow {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_clean_drive_is_low_risk_with_no_reasons() {
        let risk = SmartRisk::assess(&[row(&[
            (5, 0.0),
            (187, 0.0),
            (188, 0.0),
            (197, 0.0),
            (198, 0.0),
        ])])
        .unwrap();
        assert_eq!(risk.score, 0.0);
        assert_eq!(risk.level, RiskLevel::Low);
        assert!(risk.reasons.is_empty());
        assert!(risk.missing.is_empty());
    }

    #[test]
    fn pending_sectors_alone_make_a_drive_medium_risk() {
        let risk = SmartRisk::assess(&[row(&[(5, 0.0), (197, 8.0)])]).unwrap();
        assert_eq!(risk.level, RiskLevel::Medium);
        assert_eq!(risk.reasons, vec!["197 pending sectors (raw 8)"]);
        assert_eq!(risk.missing, vec![187, 188, 198]);
    }

    #[test]
    fn growth_raises_the_score_above_the_same_static_count() {
        let steady = SmartRisk::assess(&[row(&[(5, 3.0)]), row(&[(5, 3.0)])]).unwrap();
        let growing = SmartRisk::assess(&[row(&[(5, 1.0)]), row(&[(5, 3.0)])]).unwrap();
        assert!(growing.score > steady.score + 0.2);
        assert!(growing.reasons[0].ends_with("and growing (+2)"));
    }

    #[test]
    fn several_bad_counters_together_are_high_risk() {
        let risk = SmartRisk::assess(&[row(&[(5, 12.0), (187, 3.0), (197, 8.0)])]).unwrap();
        assert_eq!(risk.level, RiskLevel::High);
        assert!(risk.score < 1.0);
        assert!(risk.reasons[0].starts_with("197"), "{:?}", risk.reasons);
    }

    #[test]
    fn age_and_heat_alone_stay_low_risk_but_are_reported() {
        let risk = SmartRisk::assess(&[row(&[(5, 0.0), (9, 50_000.0), (194, 60.0)])]).unwrap();
        assert_eq!(risk.level, RiskLevel::Low);
        assert_eq!(risk.reasons.len(), 2);
    }

    #[test]
    fn rejects_empty_history_and_negative_or_nan_values() {
        assert_eq!(SmartRisk::assess(&[]), Err(Error::Empty));
        let err = SmartRisk::assess(&[row(&[(5, 0.0)]), row(&[(197, -1.0)])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "smart row 1: attribute 197 raw value -1 is not a finite non-negative number"
        );
        assert!(matches!(
            SmartRisk::assess(&[row(&[(5, f64::NAN)])]),
            Err(Error::InvalidSmart {
                index: 0,
                attribute: 5,
                ..
            })
        ));
    }
}
