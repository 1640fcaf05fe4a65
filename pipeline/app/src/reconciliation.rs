//! Estimates vs actuals on the stored data: turns a period's cost lines into the reconcile crate's
//! plain records, runs the comparison, forecasts and anomaly detection, and builds the exports.
//!
//! Actual cost per tenant = its tagged (direct) amortized cost + its attributed share of shared cost.
//! The untagged pool that no evidence could split (`UNATTRIBUTED`) belongs to no tenant and is left out
//! of per-tenant comparisons (the costs and report commands show it).
//!
//! **Currencies.** Nothing assumes USD, and amounts in two currencies are never added. Forecasts,
//! anomalies and expense entries are computed per currency (a tenant billed in EUR and USD gets
//! one of each). The app's estimates carry no currency: they are in `estimates-currency`, by
//! default the month's billing currency ([`comparison_currency`]); actual cost in any other
//! currency is listed in [`Comparison::not_compared`], never compared. Budgets are compared only
//! with actuals in their own currency (`curflow_reconcile::currency_mismatches` reports the rest).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Days, NaiveDate, Utc};
use curflow_reconcile::{
    ActualCost, Anomaly, AnomalyConfig, CompareConfig, Comparison, ExpenseEntry, Forecast, ForecastConfig, Measure,
    Month, Periods, ResourceTypeMap, Thresholds, compare, expenses, find_anomalies, forecast_tenants,
};
use rust_decimal::Decimal;

use crate::aggregate::{CostLine, LineSource};
use crate::error::{Error, Result};
use crate::period::BillingPeriod;
use crate::store::{CostStore, Store};

/// How to compare (config keys `resource-types`, `variance-threshold-pct`, `variance-min-amount`).
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub mapping: ResourceTypeMap,
    pub thresholds: Thresholds,
    /// The currency of the app's estimates (`estimates-currency`); `None` = the month's billing
    /// currency.
    pub estimates_currency: Option<String>,
}

impl ReconcileOptions {
    /// The mapping from `path` (TOML, see `reconcile/resource-types.example.toml`) or the shipped example.
    pub fn load(path: Option<&Path>, thresholds: Thresholds, estimates_currency: Option<String>) -> Result<Self> {
        let mapping = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                ResourceTypeMap::from_toml(&text, &p.display().to_string())
            }
            None => ResourceTypeMap::example(),
        }
        .map_err(|e| Error::Config { source_name: "resource-types".into(), reason: e.to_string() })?;
        Ok(Self { mapping, thresholds, estimates_currency })
    }
}

/// The currencies of the tenants' cost in `lines` (tagged and attributed; the unattributed pool
/// belongs to no tenant), in code order.
pub fn tenant_currencies(lines: &[CostLine]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l.key.tenant.is_some() && l.source() != LineSource::Shared)
        .map(|l| l.key.currency.to_string())
        .collect()
}

/// [`actuals_of`] per currency: the reconcile crate's computations take one currency at a time.
fn actuals_by_currency(lines: &[CostLine]) -> BTreeMap<String, Vec<ActualCost>> {
    let mut out: BTreeMap<String, Vec<ActualCost>> = BTreeMap::new();
    for a in actuals_of(lines) {
        out.entry(a.currency.clone()).or_default().push(a);
    }
    out
}

/// The currency the estimates are compared in: `estimates-currency` when set, else the month's
/// billing currency, i.e. the currency of most of the period's cost lines (CUR writes one per
/// payer account; a second one is rare, e.g. a marketplace charge), ties to the first code. A period
/// without lines has no billing currency: USD, the currency of AWS list prices.
pub fn comparison_currency(options: &ReconcileOptions, lines: &[CostLine]) -> String {
    if let Some(code) = &options.estimates_currency {
        return code.clone();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lines {
        *counts.entry(l.key.currency.as_str()).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    counts.into_iter().find(|(_, n)| *n == most).map_or_else(|| "USD".to_owned(), |(code, _)| code.to_owned())
}

/// Reconciliation errors are caused by its input (estimates, budgets, amounts too large to sum).
fn reconcile_error(e: curflow_reconcile::Error) -> Error {
    Error::Reconcile(e)
}

/// The month of a billing period.
pub fn month_of(period: BillingPeriod) -> Month {
    Month::of(period.first_day())
}

/// Per-tenant actual cost records (amortized; direct and attributed kept apart).
pub fn actuals_of(lines: &[CostLine]) -> Vec<ActualCost> {
    lines
        .iter()
        .filter_map(|l| {
            let tenant = l.key.tenant.as_ref()?;
            let (direct, attributed) = match l.source() {
                LineSource::Cur => (l.amounts.amortized_cost, Decimal::ZERO),
                LineSource::Attributed => (Decimal::ZERO, l.amounts.amortized_cost),
                LineSource::Shared => return None,
            };
            Some(ActualCost {
                accountant_id: tenant.to_string(),
                day: l.key.usage_date,
                service: l.key.service.to_string(),
                usage_type: l.key.usage_type.to_string(),
                usage_quantity: Some(l.amounts.usage_amount),
                usage_unit: (!l.key.usage_unit.is_empty()).then(|| l.key.usage_unit.to_string()),
                measure: Measure::Amortized,
                currency: l.key.currency.to_string(),
                direct,
                attributed,
            })
        })
        .collect()
}

/// Compares a stored period's actuals with the stored estimates of its month.
pub async fn reconcile(
    store: &dyn Store,
    period: BillingPeriod,
    now: DateTime<Utc>,
    options: &ReconcileOptions,
) -> Result<Comparison> {
    let month = month_of(period);
    let estimates = store.estimates(month).await?;
    let lines = store.cost_lines(period).await?;
    let actuals = actuals_of(&lines);
    let config = CompareConfig {
        thresholds: options.thresholds.clone(),
        currency: comparison_currency(options, &lines),
        ..CompareConfig::default()
    };
    compare(&estimates, &actuals, &options.mapping, &periods_at(store, period, now).await?, &config)
        .map_err(reconcile_error)
}

/// The clock and what the stored bill says about `period`: `final` needs the invoice id on every line.
pub async fn periods_at(store: &dyn CostStore, period: BillingPeriod, now: DateTime<Utc>) -> Result<Periods> {
    let periods = Periods::new(now);
    Ok(match store.period(period).await?.and_then(|r| r.invoice.final_invoice_id()) {
        Some(id) => periods.with_invoice(month_of(period), id),
        None => periods,
    })
}

/// Month-end forecasts per tenant and currency from the period's daily actuals, as of the last
/// complete day; sorted by tenant, then currency.
pub fn forecasts(lines: &[CostLine], period: BillingPeriod, now: DateTime<Utc>) -> Result<Vec<Forecast>> {
    let as_of = last_complete_day(now, period, lines).min(period.last_day());
    if as_of < period.first_day() - Days::new(1) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (currency, actuals) in actuals_by_currency(lines) {
        let config = ForecastConfig::default();
        out.extend(
            forecast_tenants(&actuals, Measure::Amortized, &currency, month_of(period), as_of, &config)
                .map_err(reconcile_error)?,
        );
    }
    out.sort_by(|a, b| (&a.accountant_id, &a.currency).cmp(&(&b.accountant_id, &b.currency)));
    Ok(out)
}

/// The day before `now`: the latest day any data could be complete for (today's never is).
pub fn clock_day(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive() - Days::new(1)
}

/// The last day of `period` whose cost the stored delivery fully covers, so that forecasts and
/// anomaly detection never read a partial day as a drop.
///
/// CUR is refreshed up to three times a day and lags by hours, sometimes more than a day: the
/// newest usage day of a delivery is normally partial. So the answer is the day before the newest
/// day in `lines` (the period's stored lines), and never after the day before `now`. A closed
/// month is the exception: when the newest day is the period's last day and `now` is at least two
/// days past it, that day counts as complete. Without lines, the clock decides.
pub fn last_complete_day(now: DateTime<Utc>, period: BillingPeriod, lines: &[CostLine]) -> NaiveDate {
    let clock = clock_day(now);
    let Some(newest) = lines.iter().filter(|l| l.period == period).map(|l| l.key.usage_date).max() else {
        return clock;
    };
    let closed = newest == period.last_day() && clock > newest;
    let covered = if closed { newest } else { newest - Days::new(1) };
    covered.min(clock)
}

/// Day anomalies per tenant, service and currency over `lines` (several periods may be concatenated
/// for the trailing baseline), keeping those on or after `since`; sorted by tenant, service, day.
pub fn anomalies(lines: &[CostLine], since: NaiveDate) -> Result<Vec<Anomaly>> {
    let mut out = Vec::new();
    for (currency, actuals) in actuals_by_currency(lines) {
        let found = find_anomalies(&actuals, Measure::Amortized, &currency, &AnomalyConfig::default())
            .map_err(reconcile_error)?;
        out.extend(found.into_iter().filter(|a| a.day >= since));
    }
    out.sort_by(|a, b| {
        (&a.accountant_id, &a.service, a.day, &a.currency).cmp(&(&b.accountant_id, &b.service, b.day, &b.currency))
    });
    Ok(out)
}

/// Finance expense entries of a period: one per tenant, service and currency, sorted by tenant,
/// service, currency. Each currency's entries of a tenant sum to that tenant's rounded total in it.
pub fn expense_entries(lines: &[CostLine], period: BillingPeriod) -> Result<Vec<ExpenseEntry>> {
    let mut out = Vec::new();
    for (currency, actuals) in actuals_by_currency(lines) {
        out.extend(
            expenses(&actuals, month_of(period), Measure::Amortized, &currency, &BTreeMap::new())
                .map_err(reconcile_error)?,
        );
    }
    out.sort_by(|a, b| (&a.accountant_id, &a.service, &a.currency).cmp(&(&b.accountant_id, &b.service, &b.currency)));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use curflow_model::aggregate::Amounts;
    use curflow_model::testing::cost_key;

    fn line(day: u32, amortized: i64) -> CostLine {
        CostLine {
            period: BillingPeriod::new(2026, 11).unwrap(),
            key: cost_key(NaiveDate::from_ymd_opt(2026, 11, day).unwrap(), Some("acct-1"), "AWSLambda", "Request"),
            amounts: Amounts {
                unblended_cost: Decimal::from(amortized),
                net_unblended_cost: Decimal::from(amortized),
                amortized_cost: Decimal::from(amortized),
                line_items: 1,
                ..Amounts::default()
            },
            attribution: None,
            unattributed_reason: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_last_complete_day_comes_from_the_stored_delivery_not_the_clock() {
        let nov = BillingPeriod::new(2026, 11).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // The delivery reaches 20 November (partial); the clock says the 21st is complete.
        let lines: Vec<_> = (1..=20).map(|d| line(d, 10)).collect();
        assert_eq!(last_complete_day(at("2026-11-22T03:00:00Z"), nov, &lines), day(19));
        // A delivery that lags by more than a day: still the day before its newest day.
        assert_eq!(last_complete_day(at("2026-11-25T03:00:00Z"), nov, &lines), day(19));
        // Data for today already: yesterday is complete, today is not.
        let fresh: Vec<_> = (1..=22).map(|d| line(d, 10)).collect();
        assert_eq!(last_complete_day(at("2026-11-22T20:00:00Z"), nov, &fresh), day(21));
        // A closed month: its last day counts once the clock is two days past it.
        let whole: Vec<_> = (1..=30).map(|d| line(d, 10)).collect();
        assert_eq!(last_complete_day(at("2026-12-01T05:00:00Z"), nov, &whole), day(29));
        assert_eq!(last_complete_day(at("2026-12-02T05:00:00Z"), nov, &whole), day(30));
        // No data: the clock.
        assert_eq!(last_complete_day(at("2026-11-22T03:00:00Z"), nov, &[]), day(21));
    }

    #[test]
    fn a_partial_newest_day_does_not_drag_the_forecast_down() {
        let nov = BillingPeriod::new(2026, 11).unwrap();
        // 10 a day for 19 days, and a partial 20th with 2 so far.
        let mut lines: Vec<_> = (1..=19).map(|d| line(d, 10)).collect();
        lines.push(line(20, 2));
        let f = forecasts(&lines, nov, at("2026-11-21T03:00:00Z")).unwrap();
        assert_eq!(f.len(), 1);
        // The same month with the 20th complete: the forecast does not depend on the 20th at all.
        let full: Vec<_> = (1..=20).map(|d| line(d, 10)).collect();
        let g = forecasts(&full, nov, at("2026-11-21T03:00:00Z")).unwrap();
        assert_eq!(
            serde_json::to_string(&f[0]).unwrap(),
            serde_json::to_string(&g[0]).unwrap(),
            "the newest (partial) day is left out of the forecast"
        );
    }
}
