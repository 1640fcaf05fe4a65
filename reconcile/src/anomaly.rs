//! Cost anomalies: days on which a tenant's spend on a service departs from its own recent past.
//!
//! For each tenant × service daily series (days without a record between the first and last day count as
//! 0), each day is compared with its **trailing baseline**: the previous `baseline_days` (14) days, of
//! which at least `min_baseline_days` (7) must exist (earlier days are not judged). With the baseline's
//! median `m` and median absolute deviation `MAD`:
//!
//! * `jump = cost − m` (signed: spikes are positive, drops and credits negative), `jump_pct = jump / |m| × 100`
//!   (empty when `m = 0`);
//! * robust z-score `score = jump / (1.4826 × MAD)`; the day is an anomaly when `|score| > min_score`
//!   (3.5, the usual cut-off for modified z-scores) **and** `|jump| ≥ min_jump` (1.00), so that cent-level
//!   wobble on a quiet series is not reported;
//! * **MAD = 0** (a flat baseline, common for steady storage charges) has no score; the day is an anomaly
//!   when `|jump| ≥ min_jump` and `|jump| ≥ flat_min_jump_pct` (20 %) of `|m|` (any `jump ≥ min_jump` when
//!   `m = 0`). Such anomalies are marked `method = min_jump`.
//!
//! Everything is `Decimal`; scores and percentages are rounded to 4 places for display only.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actual::{ActualCost, DailySeries, Measure, daily_by_tenant_service};
use crate::error::Result;
use crate::money::{div, mul, pct, round, sub};
use crate::stats::{MAD_SCALE, mad, median};

const DP: u32 = 4;

/// Settings of anomaly detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Trailing days in the baseline (default 14).
    pub baseline_days: u32,
    /// Fewer baseline days than this: the day is not judged (default 7).
    pub min_baseline_days: u32,
    /// `|score|` must exceed this (default 3.5).
    pub min_score: Decimal,
    /// `|jump|` must be at least this, in currency units (default 1.00).
    pub min_jump: Decimal,
    /// With a flat baseline (MAD 0), `|jump|` must also be at least this percentage of `|median|` (default 20).
    pub flat_min_jump_pct: Decimal,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            baseline_days: 14,
            min_baseline_days: 7,
            min_score: Decimal::new(35, 1),
            min_jump: Decimal::new(100, 2),
            flat_min_jump_pct: Decimal::from(20),
        }
    }
}

/// How an anomaly was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyMethod {
    /// Robust z-score above `min_score`.
    RobustZ,
    /// Flat baseline (MAD 0): the jump alone.
    MinJump,
}

/// An anomalous day (field names are CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub accountant_id: String,
    pub service: String,
    /// The currency of `cost` and the baseline: set by [`find_anomalies`]; empty from
    /// [`detect_anomalies`], whose series carries no currency.
    #[serde(default)]
    pub currency: String,
    pub day: NaiveDate,
    pub cost: Decimal,
    pub baseline_median: Decimal,
    pub baseline_mad: Decimal,
    pub baseline_days: u32,
    /// `cost − baseline_median`.
    pub jump: Decimal,
    pub jump_pct: Option<Decimal>,
    /// Robust z-score; empty when the baseline is flat.
    pub score: Option<Decimal>,
    pub method: AnomalyMethod,
}

/// Anomalies of one daily series, for `accountant_id` and `service` (see the module docs).
pub fn detect_anomalies(
    accountant_id: &str,
    service: &str,
    series: &DailySeries,
    config: &AnomalyConfig,
) -> Result<Vec<Anomaly>> {
    let (Some(first), Some(last)) = (series.keys().next().copied(), series.keys().next_back().copied()) else {
        return Ok(Vec::new());
    };
    let mut dense: Vec<(NaiveDate, Decimal)> = Vec::new();
    let mut day = first;
    while day <= last {
        dense.push((day, series.get(&day).copied().unwrap_or_default()));
        match day.checked_add_days(Days::new(1)) {
            Some(d) => day = d,
            None => break,
        }
    }
    let mut out = Vec::new();
    for i in 0..dense.len() {
        let start = i.saturating_sub(config.baseline_days as usize);
        let baseline: Vec<Decimal> = dense[start..i].iter().map(|(_, v)| *v).collect();
        if baseline.is_empty() || baseline.len() < config.min_baseline_days as usize {
            continue;
        }
        let (day, cost) = dense[i];
        let m = median(&baseline)?.unwrap_or_default();
        let spread = mad(&baseline, m)?.unwrap_or_default();
        let jump = sub(cost, m)?;
        if jump.abs() < config.min_jump || jump.is_zero() {
            continue;
        }
        let jump_pct = pct(jump, m)?;
        let (score, method, hit) = if spread.is_zero() {
            let big = jump_pct.is_none_or(|p| p.abs() >= config.flat_min_jump_pct);
            (None, AnomalyMethod::MinJump, big)
        } else {
            let z = div(jump, mul(spread, MAD_SCALE)?)?;
            (Some(round(z, DP)), AnomalyMethod::RobustZ, z.abs() > config.min_score)
        };
        if hit {
            out.push(Anomaly {
                accountant_id: accountant_id.to_owned(),
                service: service.to_owned(),
                currency: String::new(),
                day,
                cost,
                baseline_median: m,
                baseline_mad: spread,
                baseline_days: u32::try_from(baseline.len()).unwrap_or(u32::MAX),
                jump,
                jump_pct: jump_pct.map(|p| round(p, DP)),
                score,
                method,
            });
        }
    }
    Ok(out)
}

/// Anomalies of every tenant × service series of `actuals` (one measure, one currency), sorted by tenant,
/// service and day.
pub fn find_anomalies(
    actuals: &[ActualCost],
    measure: Measure,
    currency: &str,
    config: &AnomalyConfig,
) -> Result<Vec<Anomaly>> {
    let mut out = Vec::new();
    for ((tenant, service), series) in daily_by_tenant_service(actuals, measure, currency)? {
        let found = detect_anomalies(&tenant, &service, &series, config)?;
        out.extend(found.into_iter().map(|a| Anomaly { currency: currency.to_owned(), ..a }));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn series(costs: &[&str]) -> DailySeries {
        let start = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        costs.iter().enumerate().map(|(i, c)| (start + Days::new(i as u64), d(c))).collect()
    }

    fn run(costs: &[&str]) -> Vec<Anomaly> {
        detect_anomalies("acct-1", "AWSLambda", &series(costs), &AnomalyConfig::default()).unwrap()
    }

    #[test]
    fn finds_a_spike() {
        // 14 quiet days around 10, then 40.
        let mut costs = vec!["10", "11", "9", "10", "12", "10", "9", "11", "10", "10", "11", "9", "10", "10"];
        costs.push("40");
        let found = run(&costs);
        assert_eq!(found.len(), 1);
        let a = &found[0];
        // Baseline sorted: 9 9 9 10 10 10 10 10 10 10 11 11 11 12 → median 10.
        // |deviations|: 0 1 1 0 2 0 1 1 0 0 1 1 0 0 → sorted 0×7, 1×6, 2 → MAD = (0 + 1) / 2 = 0.5.
        // score = 30 / (1.4826 × 0.5) = 40.4694…
        assert_eq!(a.day, NaiveDate::from_ymd_opt(2026, 10, 15).unwrap());
        assert_eq!((a.cost, a.baseline_median, a.baseline_mad, a.jump), (d("40"), d("10"), d("0.5"), d("30")));
        assert_eq!((a.jump_pct, a.score, a.method), (Some(d("300")), Some(d("40.4694")), AnomalyMethod::RobustZ));
    }

    #[test]
    fn a_flat_series_is_quiet() {
        assert!(run(&["7.5"; 40]).is_empty());
        // Noisy but stationary: nothing beyond 3.5 robust sigmas.
        let noisy = ["10", "11", "9", "10", "12", "10", "9", "11", "10", "10", "11", "9", "10", "10", "12", "9", "11"];
        assert!(run(&noisy).is_empty());
    }

    #[test]
    fn flat_baseline_uses_the_minimum_jump() {
        // MAD 0: +0.50 (below 1.00) is ignored, +1.50 on a median of 5 (30 %) is reported without a score,
        // +1.50 on a median of 100 (1.5 %) is not.
        let mut costs = vec!["5"; 10];
        costs.extend(["5.50", "5", "6.50"]);
        let found = run(&costs);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].jump, found[0].score, found[0].method), (d("1.50"), None, AnomalyMethod::MinJump));
        let mut costs = vec!["100"; 10];
        costs.push("101.50");
        assert!(run(&costs).is_empty());
        // From zero: any jump ≥ 1.00 counts; missing days in between count as 0.
        let mut s = series(&["0"; 8]);
        s.insert(NaiveDate::from_ymd_opt(2026, 10, 12).unwrap(), d("3"));
        let found = detect_anomalies("a", "S", &s, &AnomalyConfig::default()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].baseline_days, found[0].jump_pct), (11, None));
    }

    #[test]
    fn short_history_is_not_judged() {
        assert!(run(&["1", "1", "1", "1", "1", "1", "100"]).is_empty());
        assert_eq!(run(&["1", "1", "1", "1", "1", "1", "1", "100"]).len(), 1);
    }
}
