//! The nightly job: re-reconcile the open and the previous month, check budgets (month-to-date and
//! month-end forecast), detect day anomalies, send new alerts, and summarise on one screen.
//!
//! Safe to run twice: reconciliations are replaced per month, and an alert is recorded once delivered
//! (key: tenant, month, threshold, kind), so a re-run finds nothing new to send. An alert whose
//! delivery failed is not recorded and is tried again on the next run.

use chrono::{DateTime, Days, Utc};
use curflow_reconcile::{
    Alert, Anomaly, BudgetPosition, CurrencyMismatch, Forecast, NotCompared, TenantMonthVariance, currency_mismatches,
    evaluate_alerts,
};
use serde::Serialize;

use crate::alerts::{AlertChannels, deliver};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::period::BillingPeriod;
use crate::reconciliation::{self, ReconcileOptions, month_of};
use crate::store::Store;

/// What one nightly run did.
#[derive(Debug, Clone, Serialize)]
pub struct NightlySummary {
    pub now: DateTime<Utc>,
    /// Months reconciled (stored periods among the open and the previous month).
    pub reconciled: Vec<MonthResult>,
    pub forecasts: Vec<Forecast>,
    /// Alerts delivered by this run.
    pub alerts_sent: Vec<Alert>,
    /// Alerts whose delivery failed (retried next run).
    pub alerts_failed: Vec<(Alert, String)>,
    pub anomalies: Vec<Anomaly>,
    /// Budgets whose tenant has cost of the month in another currency than the budget's: that cost
    /// is not compared with the budget (never converted, never summed with it).
    pub budget_currency_mismatches: Vec<CurrencyMismatch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthResult {
    pub period: BillingPeriod,
    pub records_written: usize,
    pub tenants: Vec<TenantMonthVariance>,
    /// Actual cost in other currencies than the estimates': listed, not compared.
    pub not_compared: Vec<NotCompared>,
}

/// Runs the nightly job against the configured store (SQLite or DynamoDB), which must exist: a
/// SQLite path that does not is an error, never a new empty store.
pub async fn run(config: &Config, now: DateTime<Utc>) -> Result<NightlySummary> {
    let mut store = crate::store::open_existing(&config.store, &config.aws())?;
    let options = config.reconcile_options()?;
    run_with(&mut *store, &options, &config.alert_channels(), now).await
}

/// [`run`] with explicit parts (tests, the Lambda handler).
pub async fn run_with(
    store: &mut dyn Store,
    options: &ReconcileOptions,
    channels: &AlertChannels,
    now: DateTime<Utc>,
) -> Result<NightlySummary> {
    // Which months to look at follows the clock; how far their data reaches, the stored lines.
    let current = BillingPeriod::containing(reconciliation::clock_day(now));
    let previous = BillingPeriod::containing(current.first_day() - Days::new(1));
    let mut summary = NightlySummary {
        now,
        reconciled: Vec::new(),
        forecasts: Vec::new(),
        alerts_sent: Vec::new(),
        alerts_failed: Vec::new(),
        anomalies: Vec::new(),
        budget_currency_mismatches: Vec::new(),
    };
    let mut baseline_lines = Vec::new();
    for period in [previous, current] {
        if store.period(period)?.is_none() {
            continue;
        }
        let comparison = reconciliation::reconcile(store, period, now, options)?;
        let written = store.replace_reconciliation(month_of(period), &comparison, now)?;
        summary.reconciled.push(MonthResult {
            period,
            records_written: written,
            tenants: comparison.tenant_months,
            not_compared: comparison.not_compared,
        });
        baseline_lines.extend(store.cost_lines(period)?);
    }

    // Budgets: the current month's month-to-date and forecast.
    let budgets = store.budgets()?;
    let current_lines: Vec<_> = baseline_lines.iter().filter(|l| l.period == current).cloned().collect();
    summary.forecasts = reconciliation::forecasts(&current_lines, current, now)?;
    let positions: Vec<BudgetPosition> = summary
        .forecasts
        .iter()
        .map(|f| {
            let mut p = BudgetPosition::from_forecast(f);
            let forecast_alerts =
                budgets.iter().any(|b| b.budget.accountant_id == f.accountant_id && b.forecast_alerts);
            if !forecast_alerts {
                p.forecast = None;
            }
            p
        })
        .collect();
    let plain_budgets: Vec<_> = budgets.iter().map(|b| b.budget.clone()).collect();
    summary.budget_currency_mismatches = currency_mismatches(&plain_budgets, &positions);
    let sent = store.alerts_sent(month_of(current))?;
    let plain: Vec<_> = budgets.iter().map(|b| b.budget.clone()).collect();
    let alerts = evaluate_alerts(&plain, &positions, &sent).map_err(|e| Error::Argument(e.to_string()))?;
    for alert in alerts {
        match deliver(&alert, channels).await {
            Ok(()) => {
                store.record_alert(&alert, &channels.names(), now)?;
                summary.alerts_sent.push(alert);
            }
            Err(e) => {
                tracing::warn!(tenant = %alert.accountant_id, error = %e, "alert delivery failed; retried next run");
                summary.alerts_failed.push((alert, e.to_string()));
            }
        }
    }

    // Anomalies of the last 7 days, against a trailing baseline that may reach into the previous month.
    // The last 7 *complete* days: a partial newest day would read as a drop.
    let as_of = reconciliation::last_complete_day(now, current, &current_lines);
    let recent: Vec<_> = baseline_lines.iter().filter(|l| l.key.usage_date <= as_of).cloned().collect();
    summary.anomalies = reconciliation::anomalies(&recent, as_of - Days::new(6))?;
    Ok(summary)
}

/// The one-screen summary.
pub fn summary_text(s: &NightlySummary) -> String {
    use crate::output::group_thousands;
    let r2 = |d: rust_decimal::Decimal| group_thousands(d.round_dp(2));
    let mut out = format!("curflow nightly — {}\n", s.now.format("%Y-%m-%d %H:%M UTC"));
    if s.reconciled.is_empty() {
        out.push_str("  no stored billing period for the open or the previous month; nothing reconciled\n");
    }
    for m in &s.reconciled {
        let flagged: Vec<_> = m.tenants.iter().filter(|t| t.flagged).collect();
        out.push_str(&format!(
            "  {}: {} tenants reconciled ({} records), {} flagged\n",
            m.period,
            m.tenants.len(),
            m.records_written,
            flagged.len()
        ));
        for t in flagged.iter().take(5) {
            out.push_str(&format!(
                "    {:<16} estimated {:>12}  actual {:>12}  variance {:>12} ({}) [{}]\n",
                t.accountant_id,
                r2(t.estimated),
                r2(t.actual),
                r2(t.variance),
                t.variance_pct.map(|p| format!("{}%", p.round_dp(1))).unwrap_or_else(|| "unestimated".into()),
                serde_json::to_value(t.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            ));
        }
    }
    for m in &s.reconciled {
        for n in &m.not_compared {
            out.push_str(&format!(
                "  {}: {} has {} {} not compared with the estimates (they are in another currency)\n",
                m.period,
                n.accountant_id,
                r2(n.actual),
                n.currency
            ));
        }
    }
    for x in &s.budget_currency_mismatches {
        out.push_str(&format!(
            "  budget of {} is {} {}; its {} month-to-date cost of {} {} is not compared with it\n",
            x.accountant_id,
            r2(x.budget),
            x.budget_currency,
            x.month,
            r2(x.mtd_actual),
            x.actual_currency
        ));
    }
    out.push_str(&format!("  budgets: {} alert(s) sent, {} failed\n", s.alerts_sent.len(), s.alerts_failed.len()));
    for a in &s.alerts_sent {
        out.push_str(&format!("    {}\n", a.message));
    }
    for (a, e) in &s.alerts_failed {
        out.push_str(&format!("    FAILED {}: {e}\n", a.message));
    }
    out.push_str(&format!("  anomalies (last 7 days): {}\n", s.anomalies.len()));
    for a in s.anomalies.iter().take(5) {
        out.push_str(&format!(
            "    {} {} {}: {} vs baseline {} ({})\n",
            a.day,
            a.accountant_id,
            a.service,
            r2(a.cost),
            r2(a.baseline_median),
            a.jump_pct.map(|p| format!("{:+}%", p.round_dp(0))).unwrap_or_else(|| "new".into())
        ));
    }
    out
}
