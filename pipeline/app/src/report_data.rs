//! What `curflow report` draws for one period, from the store: the reconciliation, the daily
//! trend, the attribution coverage, the forecast band, budgets and anomalies, in one currency.
//!
//! The page is in the estimates' currency ([`comparison_currency`]); cost in any other currency is
//! summed apart and named ([`OtherCurrency`]), never drawn on the same axis or added.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use curflow_reconcile::{Comparison, Forecast, Month};
use rust_decimal::Decimal;

use crate::aggregate::{CostLine, LineSource};
use crate::error::Result;
use crate::period::BillingPeriod;
use crate::reconciliation::{
    ReconcileOptions, anomalies, comparison_currency, forecasts, month_of, periods_at, reconcile, tenant_currencies,
};
use crate::report_html::{
    AccountRow, AnomalyRow, BudgetRow, CoverageShares, DailyPoint, ForecastBand, OtherCurrency, ReportData, TenantBar,
    VarianceRow,
};
use crate::store::Store;
use crate::store::finance::BudgetSetting;

/// The largest estimate-vs-actual differences the page lists.
const TOP_VARIANCES: usize = 15;

fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    Ok(crate::aggregate::add_exact(a, b, || "a report total".into())?)
}

/// Everything `curflow report` draws for one period.
pub async fn report_data(
    store: &dyn Store,
    period: BillingPeriod,
    now: DateTime<Utc>,
    options: &ReconcileOptions,
) -> Result<ReportData> {
    let all_lines = store.cost_lines(period).await?;
    let comparison = reconcile(store, period, now, options).await?;
    let month = month_of(period);
    let currency = comparison_currency(options, &all_lines);
    let (lines, elsewhere): (Vec<CostLine>, Vec<CostLine>) =
        all_lines.into_iter().partition(|l| l.key.currency == currency);
    let (daily, coverage) = daily_and_coverage(&lines)?;
    let forecasts = forecasts(&lines, period, now)?;
    let anomalies = anomalies(&lines, period.first_day())?
        .into_iter()
        .map(|a| AnomalyRow {
            tenant: a.accountant_id,
            service: a.service,
            day: a.day,
            cost: a.cost,
            baseline: a.baseline_median,
            jump_pct: a.jump_pct,
        })
        .collect();
    Ok(ReportData {
        period: period.to_string(),
        period_state: periods_at(store, period, now).await?.state(month).as_str().to_string(),
        generated_at: now.to_rfc3339(),
        other_currencies: other_currencies(&elsewhere)?,
        tenants: tenant_bars(&comparison, month),
        top_variances: top_variances(&comparison, month),
        daily,
        forecast: forecast_band(&forecasts)?,
        budgets: budget_rows(store.budgets().await?, &forecasts, &currency, &tenant_currencies(&elsewhere)),
        coverage,
        anomalies,
        accounts: account_rows(&lines)?,
        missing_evidence: crate::usage::missing_evidence(&lines)?,
        aws_forecasts: crate::cost_explorer::forecast::stored(store, period, now).await?,
        currency,
    })
}

/// Amortized cost per usage account, when `lines` name more than one (else none: the page
/// shows the table only for multi-account months).
fn account_rows(lines: &[CostLine]) -> Result<Vec<AccountRow>> {
    let mut by_account: BTreeMap<(&str, &str), [Decimal; 2]> = BTreeMap::new();
    for l in lines {
        let slot = by_account.entry((l.key.account_id.as_str(), l.key.account_name.as_str())).or_default();
        let part = if l.source() == LineSource::Shared { 1 } else { 0 };
        slot[part] = add(slot[part], l.amounts.amortized_cost)?;
    }
    if by_account.len() < 2 {
        return Ok(Vec::new());
    }
    by_account
        .into_iter()
        .map(|((id, name), [tenants, unattributed])| {
            Ok(AccountRow {
                account_id: id.to_string(),
                account_name: name.to_string(),
                amortized: add(tenants, unattributed)?,
                tenants,
                unattributed,
            })
        })
        .collect()
}

/// The amortized total of each currency the page does not show.
fn other_currencies(elsewhere: &[CostLine]) -> Result<Vec<OtherCurrency>> {
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in elsewhere {
        let slot = totals.entry(l.key.currency.to_string()).or_default();
        *slot = add(*slot, l.amounts.amortized_cost)?;
    }
    Ok(totals.into_iter().map(|(currency, amortized)| OtherCurrency { currency, amortized }).collect())
}

fn tenant_bars(comparison: &Comparison, month: Month) -> Vec<TenantBar> {
    comparison
        .tenant_months
        .iter()
        .filter(|t| t.month == month)
        .map(|t| TenantBar {
            tenant: t.accountant_id.clone(),
            estimated: t.estimated,
            actual: t.actual,
            direct: t.actual_direct,
            attributed: t.actual_attributed,
            variance: t.variance,
            variance_pct: t.variance_pct,
            flagged: t.flagged,
        })
        .collect()
}

/// The [`TOP_VARIANCES`] largest |variance| rows per (tenant, resource type), ties by tenant.
fn top_variances(comparison: &Comparison, month: Month) -> Vec<VarianceRow> {
    let mut variances: Vec<_> = comparison.resource_types.iter().filter(|r| r.month == month).collect();
    variances.sort_by(|a, b| b.variance.abs().cmp(&a.variance.abs()).then(a.accountant_id.cmp(&b.accountant_id)));
    variances
        .into_iter()
        .take(TOP_VARIANCES)
        .map(|r| VarianceRow {
            tenant: r.accountant_id.clone(),
            resource_type: r.resource_type.clone(),
            estimated: r.estimated,
            actual: r.actual,
            variance: r.variance,
            variance_pct: r.variance_pct,
            dominant: serde_json::to_value(r.dominant)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            suggested_unit_cost: r.suggested_unit_cost,
            flagged: r.flagged,
        })
        .collect()
}

/// Per day the account's and the tenants' amortized cost, and the period's shares by how the cost
/// reached tenants (tagged, by usage driver or assignment, by fallback, unattributed).
fn daily_and_coverage(lines: &[CostLine]) -> Result<(Vec<DailyPoint>, CoverageShares)> {
    let mut daily: BTreeMap<NaiveDate, [Decimal; 2]> = BTreeMap::new();
    let (mut tagged, mut driver, mut fallback, mut shared) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for l in lines {
        let a = l.amounts.amortized_cost;
        let slot = daily.entry(l.key.usage_date).or_default();
        slot[0] = add(slot[0], a)?;
        if l.key.tenant.is_some() && l.source() != LineSource::Shared {
            slot[1] = add(slot[1], a)?;
        }
        match (&l.attribution, l.source()) {
            (Some(at), _) if at.basis == "usage_driver" || at.basis == "assignment" => driver = add(driver, a)?,
            (Some(_), _) => fallback = add(fallback, a)?,
            (None, LineSource::Cur) => tagged = add(tagged, a)?,
            (None, _) => shared = add(shared, a)?,
        }
    }
    let total = add(add(tagged, driver)?, add(fallback, shared)?)?;
    let pct = |part: Decimal| {
        if total.is_zero() {
            Decimal::ZERO
        } else {
            part.checked_mul(Decimal::ONE_HUNDRED).and_then(|p| p.checked_div(total)).unwrap_or_default().round_dp(2)
        }
    };
    let coverage = CoverageShares {
        tagged_pct: pct(tagged),
        usage_driver_pct: pct(driver),
        fallback_pct: pct(fallback),
        unattributed_pct: pct(shared),
    };
    let daily = daily.into_iter().map(|(day, [actual, tenants])| DailyPoint { day, actual, tenants }).collect();
    Ok((daily, coverage))
}

/// The sum of the tenants' forecasts (cost no tenant carries is not forecast); `None` without any.
fn forecast_band(forecasts: &[Forecast]) -> Result<Option<ForecastBand>> {
    if forecasts.is_empty() {
        return Ok(None);
    }
    let mut band = ForecastBand {
        month_to_date: Decimal::ZERO,
        month_end: Decimal::ZERO,
        low: Decimal::ZERO,
        high: Decimal::ZERO,
        method: "sum over tenants of: month-to-date + remaining days × median of the last 7 days \
                 (interval ± 2 robust standard deviations)"
            .into(),
    };
    for f in forecasts {
        band.month_to_date = add(band.month_to_date, f.mtd_actual)?;
        band.month_end = add(band.month_end, f.forecast)?;
        band.low = add(band.low, f.forecast_low)?;
        band.high = add(band.high, f.forecast_high)?;
    }
    Ok(Some(band))
}

/// The budget table: each budget beside its tenant's month-to-date cost in the page's `currency`.
/// A budget in another currency, or a tenant whose cost is all in another currency
/// (`tenants_elsewhere`: tenants with cost outside `currency`), is shown as not compared.
fn budget_rows(
    budgets: Vec<BudgetSetting>,
    forecasts: &[Forecast],
    currency: &str,
    tenants_elsewhere: &BTreeSet<String>,
) -> Vec<BudgetRow> {
    budgets
        .into_iter()
        .map(|b| {
            let f = forecasts.iter().find(|f| f.accountant_id == b.budget.accountant_id);
            let mtd = f.map(|f| f.mtd_actual).unwrap_or_default();
            let used = mtd
                .checked_mul(Decimal::ONE_HUNDRED)
                .and_then(|p| p.checked_div(b.budget.monthly_amount))
                .unwrap_or(Decimal::MAX)
                .round_dp(1);
            let elsewhere = f.is_none() && tenants_elsewhere.contains(&b.budget.accountant_id);
            let (status, used) = if b.budget.currency != currency {
                (format!("not compared: budget in {}, costs shown in {currency}", b.budget.currency), Decimal::ZERO)
            } else if elsewhere {
                (format!("not compared: the tenant's cost is not in {currency}"), Decimal::ZERO)
            } else if used >= Decimal::ONE_HUNDRED {
                ("over".into(), used)
            } else if used >= Decimal::from(80) {
                ("warning".into(), used)
            } else {
                ("ok".into(), used)
            };
            BudgetRow {
                tenant: b.budget.accountant_id,
                budget: b.budget.monthly_amount,
                month_to_date: mtd,
                forecast: f.map(|f| f.forecast),
                used_pct: used,
                status,
            }
        })
        .collect()
}
