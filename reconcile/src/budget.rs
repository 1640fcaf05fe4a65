//! Monthly budgets per tenant and the alerts they raise, once each.
//!
//! A [`Budget`] is a monthly amount with alert thresholds in percent (default 80 % and 100 %). A
//! [`BudgetPosition`] is where a tenant stands in a month: month-to-date actual and, optionally, the
//! month-end forecast ([`crate::forecast_month`]).
//!
//! **Crossing.** A threshold `t` is crossed by an amount when `amount ≥ budget × t / 100` (reaching the
//! threshold counts). Two kinds of alert exist per tenant, month and threshold:
//!
//! * `actual`: the month-to-date actual has crossed it;
//! * `forecast`: the forecast has crossed it while the actual has not yet (once the actual has crossed, the
//!   forecast alert says nothing new and is not raised).
//!
//! **Once only.** [`evaluate_alerts`] takes the keys of the alerts already sent (tenant, month, threshold,
//! kind) and returns only alerts whose key is new; the caller stores the keys of what it sends. Running it
//! again with the same positions and the updated set returns nothing. Amounts falling back under a
//! threshold (credits) do not re-arm it within the month.
//!
//! **Currencies.** A budget is only compared with a position in its own currency. A tenant whose
//! month is billed in another currency (or in two) raises no alert from the other currency's amounts:
//! [`currency_mismatches`] lists those positions so the caller reports them, never converts or sums.
//!
//! ```
//! use std::collections::BTreeSet;
//! use chrono::NaiveDate;
//! use curflow_reconcile::{evaluate_alerts, forecast_tenants, Alert, ActualCost, Budget, BudgetPosition,
//!     ForecastConfig, Measure, Month};
//! use rust_decimal::Decimal;
//!
//! // 10 days of 30.00 a day: MTD 300 of a 500 budget (60 %), forecast 300 + 21 × 30 = 930 (186 %).
//! let actuals: Vec<ActualCost> = (1..=10)
//!     .map(|d| ActualCost {
//!         accountant_id: "acct-1".into(),
//!         day: NaiveDate::from_ymd_opt(2026, 10, d).unwrap(),
//!         service: "AWSLambda".into(),
//!         usage_type: "USE1-Request".into(),
//!         usage_quantity: None,
//!         usage_unit: None,
//!         measure: Measure::Amortized,
//!         currency: "USD".into(),
//!         direct: Decimal::from(30),
//!         attributed: Decimal::ZERO,
//!     })
//!     .collect();
//! let oct: Month = "2026-10".parse().unwrap();
//! let as_of = NaiveDate::from_ymd_opt(2026, 10, 10).unwrap();
//! let forecasts =
//!     forecast_tenants(&actuals, Measure::Amortized, "USD", oct, as_of, &ForecastConfig::default()).unwrap();
//! assert_eq!(forecasts[0].forecast, Decimal::from(930));
//! let positions: Vec<BudgetPosition> = forecasts.iter().map(BudgetPosition::from_forecast).collect();
//! let budgets = [Budget::new("acct-1", Decimal::from(500), "USD")];
//! let mut sent = BTreeSet::new();
//! let alerts = evaluate_alerts(&budgets, &positions, &sent).unwrap();
//! assert_eq!(alerts.len(), 2); // the forecast crosses 80 % and 100 %; the actual crosses neither
//! sent.extend(alerts.iter().map(Alert::key));
//! assert!(evaluate_alerts(&budgets, &positions, &sent).unwrap().is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::forecast::Forecast;
use crate::money::{div, mul, pct, round};
use crate::month::Month;

/// The default alert thresholds: 80 % and 100 %.
pub fn default_thresholds() -> Vec<Decimal> {
    vec![Decimal::from(80), Decimal::ONE_HUNDRED]
}

/// A tenant's monthly budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub accountant_id: String,
    /// The budget of every month, > 0.
    pub monthly_amount: Decimal,
    pub currency: String,
    /// Alert thresholds in percent of the budget, each > 0.
    #[serde(default = "default_thresholds")]
    pub thresholds_pct: Vec<Decimal>,
}

impl Budget {
    /// A budget with the default thresholds.
    pub fn new(accountant_id: impl Into<String>, monthly_amount: Decimal, currency: impl Into<String>) -> Self {
        Self {
            accountant_id: accountant_id.into(),
            monthly_amount,
            currency: currency.into(),
            thresholds_pct: default_thresholds(),
        }
    }
}

/// Where a tenant stands in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetPosition {
    pub accountant_id: String,
    pub month: Month,
    /// The currency of the amounts; only a budget in the same currency is compared with them.
    pub currency: String,
    pub mtd_actual: Decimal,
    /// Month-end forecast; `None` = no forecast alerts.
    pub forecast: Option<Decimal>,
}

impl BudgetPosition {
    /// The position a forecast describes.
    pub fn from_forecast(f: &Forecast) -> Self {
        Self {
            accountant_id: f.accountant_id.clone(),
            month: f.month,
            currency: f.currency.clone(),
            mtd_actual: f.mtd_actual,
            forecast: Some(f.forecast),
        }
    }
}

/// What crossed the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Actual,
    Forecast,
}

/// The identity of an alert: one per tenant, month, threshold and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub accountant_id: String,
    pub month: Month,
    /// Normalized (`80`, not `80.0`), so stored keys compare and serialize stably.
    pub threshold_pct: Decimal,
    pub kind: AlertKind,
}

/// A budget alert (field names are CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub accountant_id: String,
    pub month: Month,
    pub threshold_pct: Decimal,
    pub kind: AlertKind,
    pub budget: Decimal,
    pub currency: String,
    pub mtd_actual: Decimal,
    pub forecast: Option<Decimal>,
    /// One sentence for people.
    pub message: String,
}

impl Alert {
    /// The key to store once the alert is sent.
    pub fn key(&self) -> AlertKey {
        AlertKey {
            accountant_id: self.accountant_id.clone(),
            month: self.month,
            threshold_pct: self.threshold_pct,
            kind: self.kind,
        }
    }
}

/// The new alerts for `positions` (see the module docs), ordered by position, then threshold, then kind.
/// Positions of tenants without a budget, or in another currency than the tenant's budget, raise
/// nothing (see [`currency_mismatches`]).
pub fn evaluate_alerts(
    budgets: &[Budget],
    positions: &[BudgetPosition],
    sent: &BTreeSet<AlertKey>,
) -> Result<Vec<Alert>> {
    let mut by_tenant: BTreeMap<&str, &Budget> = BTreeMap::new();
    for b in budgets {
        if b.monthly_amount <= Decimal::ZERO || b.thresholds_pct.iter().any(|t| *t <= Decimal::ZERO) {
            return Err(Error::Invalid(format!(
                "budget of {}: the amount and every threshold must be > 0",
                b.accountant_id
            )));
        }
        if by_tenant.insert(&b.accountant_id, b).is_some() {
            return Err(Error::Invalid(format!("two budgets for {}", b.accountant_id)));
        }
    }
    let mut seen = sent.clone();
    let mut out = Vec::new();
    for p in positions {
        let Some(b) = by_tenant.get(p.accountant_id.as_str()) else { continue };
        if p.currency != b.currency {
            continue;
        }
        let mut thresholds: Vec<Decimal> = b.thresholds_pct.iter().map(|t| t.normalize()).collect();
        thresholds.sort();
        thresholds.dedup();
        for t in thresholds {
            let limit = div(mul(b.monthly_amount, t)?, Decimal::ONE_HUNDRED)?;
            let actual_crossed = p.mtd_actual >= limit;
            let forecast_crossed = !actual_crossed && p.forecast.is_some_and(|f| f >= limit);
            for (kind, crossed) in [(AlertKind::Actual, actual_crossed), (AlertKind::Forecast, forecast_crossed)] {
                if !crossed {
                    continue;
                }
                let key = AlertKey { accountant_id: p.accountant_id.clone(), month: p.month, threshold_pct: t, kind };
                if seen.insert(key) {
                    out.push(Alert {
                        accountant_id: p.accountant_id.clone(),
                        month: p.month,
                        threshold_pct: t,
                        kind,
                        budget: b.monthly_amount,
                        currency: b.currency.clone(),
                        mtd_actual: p.mtd_actual,
                        forecast: p.forecast,
                        message: message(p, b, t, kind)?,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A tenant's budget and a position of that tenant in another currency: not compared, reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyMismatch {
    pub accountant_id: String,
    pub month: Month,
    pub budget: Decimal,
    pub budget_currency: String,
    /// The position's month-to-date actual, in `actual_currency`.
    pub mtd_actual: Decimal,
    pub actual_currency: String,
}

/// The positions of budgeted tenants whose currency is not their budget's, ordered as `positions`.
pub fn currency_mismatches(budgets: &[Budget], positions: &[BudgetPosition]) -> Vec<CurrencyMismatch> {
    positions
        .iter()
        .filter_map(|p| {
            let b = budgets.iter().find(|b| b.accountant_id == p.accountant_id)?;
            (b.currency != p.currency).then(|| CurrencyMismatch {
                accountant_id: p.accountant_id.clone(),
                month: p.month,
                budget: b.monthly_amount,
                budget_currency: b.currency.clone(),
                mtd_actual: p.mtd_actual,
                actual_currency: p.currency.clone(),
            })
        })
        .collect()
}

fn message(p: &BudgetPosition, b: &Budget, t: Decimal, kind: AlertKind) -> Result<String> {
    let money = |d: Decimal| format!("{:.2} {}", round(d, 2), b.currency);
    let share = |d: Decimal| -> Result<String> {
        Ok(pct(d, b.monthly_amount)?.map(|x| format!("{:.1} %", round(x, 1))).unwrap_or_default())
    };
    let budget = money(b.monthly_amount);
    Ok(match (kind, p.forecast) {
        (AlertKind::Forecast, Some(f)) => format!(
            "{} {}: forecast month-end cost {} is {} of the {budget} budget (threshold {t} %); month to date {}.",
            p.accountant_id,
            p.month,
            money(f),
            share(f)?,
            money(p.mtd_actual)
        ),
        _ => format!(
            "{} {}: month-to-date cost {} has reached {} of the {budget} budget (threshold {t} %).",
            p.accountant_id,
            p.month,
            money(p.mtd_actual),
            share(p.mtd_actual)?
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn pos(mtd: &str, forecast: Option<&str>) -> BudgetPosition {
        BudgetPosition {
            accountant_id: "acct-1".into(),
            month: "2026-10".parse().unwrap(),
            currency: "USD".into(),
            mtd_actual: d(mtd),
            forecast: forecast.map(d),
        }
    }

    #[test]
    fn crossing_80_then_100_over_three_runs_gives_two_alerts() {
        let budgets = [Budget::new("acct-1", d("1000.00"), "USD")];
        let mut sent = BTreeSet::new();
        let mut all = Vec::new();
        for mtd in ["500.00", "850.00", "1000.00"] {
            let new = evaluate_alerts(&budgets, &[pos(mtd, None)], &sent).unwrap();
            sent.extend(new.iter().map(Alert::key));
            all.extend(new);
        }
        let got: Vec<(Decimal, AlertKind, Decimal)> =
            all.iter().map(|a| (a.threshold_pct, a.kind, a.mtd_actual)).collect();
        assert_eq!(got, [(d("80"), AlertKind::Actual, d("850.00")), (d("100"), AlertKind::Actual, d("1000.00"))]);
        assert_eq!(
            all[0].message,
            "acct-1 2026-10: month-to-date cost 850.00 USD has reached 85.0 % of the 1000.00 USD budget (threshold 80 %)."
        );
        // Re-running with the same state yields nothing.
        assert!(evaluate_alerts(&budgets, &[pos("1000.00", None)], &sent).unwrap().is_empty());
    }

    #[test]
    fn forecast_alerts_until_the_actual_crosses() {
        let budgets = [Budget::new("acct-1", d("1000"), "USD")];
        let mut sent = BTreeSet::new();
        let first = evaluate_alerts(&budgets, &[pos("400", Some("1050"))], &sent).unwrap();
        let kinds: Vec<(Decimal, AlertKind)> = first.iter().map(|a| (a.threshold_pct, a.kind)).collect();
        assert_eq!(kinds, [(d("80"), AlertKind::Forecast), (d("100"), AlertKind::Forecast)]);
        assert!(first[1].message.contains("forecast month-end cost 1050.00 USD is 105.0 %"), "{}", first[1].message);
        sent.extend(first.iter().map(Alert::key));
        // The actual reaches 80 %: a new `actual` alert; the 100 % forecast alert was already sent.
        let second = evaluate_alerts(&budgets, &[pos("800", Some("1100"))], &sent).unwrap();
        assert_eq!(
            second.iter().map(|a| (a.threshold_pct, a.kind)).collect::<Vec<_>>(),
            [(d("80"), AlertKind::Actual)]
        );
    }

    #[test]
    fn thresholds_and_budgets_are_validated() {
        assert!(evaluate_alerts(&[Budget::new("a", d("0"), "USD")], &[], &BTreeSet::new()).is_err());
        let two = [Budget::new("a", d("1"), "USD"), Budget::new("a", d("2"), "USD")];
        assert!(evaluate_alerts(&two, &[], &BTreeSet::new()).is_err());
        // No budget for the tenant: nothing.
        assert!(
            evaluate_alerts(&[Budget::new("b", d("1"), "USD")], &[pos("5", None)], &BTreeSet::new())
                .unwrap()
                .is_empty()
        );
        // 80.0 and 80 are the same threshold.
        let mut b = Budget::new("acct-1", d("100"), "USD");
        b.thresholds_pct = vec![d("80.0"), d("80")];
        let alerts = evaluate_alerts(&[b], &[pos("90", None)], &BTreeSet::new()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].key().threshold_pct.to_string(), "80");
    }

    #[test]
    fn a_budget_is_compared_only_with_amounts_in_its_own_currency() {
        let budgets = [Budget::new("acct-1", d("100"), "EUR")];
        // 250 USD would be 250 % of a 100 EUR budget if the currencies were ignored.
        let usd = pos("250", Some("400"));
        assert!(evaluate_alerts(&budgets, std::slice::from_ref(&usd), &BTreeSet::new()).unwrap().is_empty());
        let mismatches = currency_mismatches(&budgets, std::slice::from_ref(&usd));
        assert_eq!(mismatches.len(), 1);
        assert_eq!((mismatches[0].budget_currency.as_str(), mismatches[0].actual_currency.as_str()), ("EUR", "USD"));
        assert_eq!(mismatches[0].mtd_actual, d("250"));
        // The same tenant's EUR position is compared (and is not a mismatch).
        let eur = BudgetPosition { currency: "EUR".into(), ..pos("90", None) };
        let alerts = evaluate_alerts(&budgets, &[usd.clone(), eur.clone()], &BTreeSet::new()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].threshold_pct, alerts[0].currency.as_str()), (d("80"), "EUR"));
        assert!(currency_mismatches(&budgets, &[eur]).is_empty());
    }
}
