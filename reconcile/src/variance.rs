//! The variance rule: how an estimate and an actual compare, and when the difference is worth a flag.
//!
//! * `variance = actual − estimated`. Positive: the app under-estimated (cost more than expected).
//!   Negative: it over-estimated, or credits came in (see [`crate::ActualCost`] on signs).
//! * `variance_pct = variance / |estimated| × 100`, rounded for display to [`PCT_DP`] places. With
//!   `estimated = 0` it is `None` (never a division error) and any non-zero actual is *unestimated usage*.
//!   `actual = 0` with `estimated > 0` gives −100 %; a credit larger than the charges gives < −100 %.
//! * **Flag** when `|variance_pct| > threshold_pct` (strictly: exactly 10 % is not flagged) **and**
//!   `|variance| > min_variance` (strictly), so cent-sized differences on tiny estimates stay quiet.
//!   Unestimated usage is flagged when `|actual| > min_variance`. The comparison is exact
//!   (`|variance| × 100 > threshold × |estimated|`); the rounded percentage never decides a flag.
//! * The **status** joins the flag with the period state: a flagged variance of an open month is
//!   `open_variance`, never `final_variance` (see [`crate::PeriodState`]).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::money::{mul, pct, round, sub};
use crate::period::PeriodState;

/// Decimal places of the reported `variance_pct`.
pub const PCT_DP: u32 = 4;

/// When a variance is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Flag above this |variance %| (strictly greater). Default 10.
    pub threshold_pct: Decimal,
    /// ... and above this |variance| in currency units (strictly greater). Default 1.00.
    pub min_variance: Decimal,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { threshold_pct: Decimal::TEN, min_variance: Decimal::new(100, 2) }
    }
}

/// What a flagged (or unflagged) variance means for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceStatus {
    /// Not flagged.
    Ok,
    /// Flagged, but the month is still open: a trend, not a result.
    OpenVariance,
    /// Flagged; the month has ended but the bill is not final.
    ProvisionalVariance,
    /// Flagged on a final bill.
    FinalVariance,
}

impl VarianceStatus {
    /// The status of a variance that is (or is not) flagged in a period of `state`.
    pub fn of(flagged: bool, state: PeriodState) -> Self {
        match (flagged, state) {
            (false, _) => Self::Ok,
            (true, PeriodState::Open) => Self::OpenVariance,
            (true, PeriodState::Provisional) => Self::ProvisionalVariance,
            (true, PeriodState::Final) => Self::FinalVariance,
        }
    }
}

/// The figures every variance row carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Figures {
    pub variance: Decimal,
    pub variance_pct: Option<Decimal>,
    pub unestimated_usage: bool,
    pub flagged: bool,
}

/// Applies the rule of the module docs.
pub(crate) fn assess(estimated: Decimal, actual: Decimal, t: &Thresholds) -> Result<Figures> {
    let variance = sub(actual, estimated)?;
    let variance_pct = pct(variance, estimated)?.map(|p| round(p, PCT_DP));
    let unestimated_usage = estimated.is_zero() && !actual.is_zero();
    let big_enough = variance.abs() > t.min_variance;
    let flagged = big_enough
        && if estimated.is_zero() {
            unestimated_usage
        } else {
            mul(variance.abs(), Decimal::ONE_HUNDRED)? > mul(t.threshold_pct, estimated.abs())?
        };
    Ok(Figures { variance, variance_pct, unestimated_usage, flagged })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn a(est: &str, act: &str) -> Figures {
        assess(d(est), d(act), &Thresholds::default()).unwrap()
    }

    #[test]
    fn threshold_edges() {
        // Exactly +10 %: not flagged. +10.01 %: flagged.
        let f = a("100.00", "110.00");
        assert_eq!((f.variance, f.variance_pct, f.flagged), (d("10.00"), Some(d("10")), false));
        let f = a("100.00", "110.01");
        assert_eq!((f.variance_pct, f.flagged), (Some(d("10.01")), true));
        // Exactly −10 %: not flagged; −10.01 %: flagged.
        assert!(!a("100.00", "90.00").flagged);
        assert!(a("100.00", "89.99").flagged);
        // +50 % but only 0.50 of money: not flagged. Exactly 1.00: not flagged (strict). 1.01: flagged.
        assert!(!a("1.00", "1.50").flagged);
        assert!(!a("2.00", "3.00").flagged);
        assert!(a("2.00", "3.01").flagged);
    }

    #[test]
    fn zero_estimate_and_zero_actual() {
        let f = a("0", "5.00");
        assert_eq!((f.variance, f.variance_pct, f.unestimated_usage, f.flagged), (d("5.00"), None, true, true));
        let f = a("0", "0.40");
        assert_eq!((f.variance_pct, f.unestimated_usage, f.flagged), (None, true, false));
        let f = a("0", "0");
        assert_eq!((f.variance_pct, f.unestimated_usage, f.flagged), (None, false, false));
        let f = a("25.00", "0");
        assert_eq!((f.variance, f.variance_pct, f.flagged), (d("-25.00"), Some(d("-100")), true));
    }

    #[test]
    fn credits() {
        // Credits exceed charges: actual −5, estimate 20 → variance −25 = −125 %.
        let f = a("20.00", "-5.00");
        assert_eq!((f.variance, f.variance_pct, f.flagged), (d("-25.00"), Some(d("-125")), true));
    }

    #[test]
    fn status_never_calls_an_open_month_final() {
        assert_eq!(VarianceStatus::of(true, PeriodState::Open), VarianceStatus::OpenVariance);
        assert_eq!(VarianceStatus::of(true, PeriodState::Final), VarianceStatus::FinalVariance);
        assert_eq!(VarianceStatus::of(false, PeriodState::Final), VarianceStatus::Ok);
    }
}
