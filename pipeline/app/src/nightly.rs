//! The nightly job: re-reconcile the open and the previous month, check budgets (month-to-date and
//! month-end forecast), detect day anomalies, send new alerts, and summarise on one screen.
//!
//! Safe to run twice, even at the same moment: reconciliations are replaced per month, and each alert
//! (key: tenant, month, threshold, kind) is delivered at most once per channel: a run claims the
//! (alert, channel) in the store before delivering and marks it sent after (`curflow_store::finance`
//! explains the guarantee). A delivery that certainly failed releases its claim and is tried again
//! on the next run, on that channel only; one that may have arrived keeps its claim and is reported
//! as unconfirmed instead of being sent twice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, Utc};
use curflow_reconcile::{
    Alert, AlertKey, Anomaly, BudgetPosition, CurrencyMismatch, Forecast, NotCompared, TenantMonthVariance,
    currency_mismatches, evaluate_alerts,
};
use curflow_store::finance::{AlertChannel, AlertDelivery, DeliveryState, new_run_id};
use serde::Serialize;

use crate::alerts::{AlertChannels, DeliveryFailure, deliver_on};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::period::BillingPeriod;
use crate::reconciliation::{self, ReconcileOptions, month_of};
use crate::store::Store;

/// What one nightly run did.
#[derive(Debug, Clone, Serialize)]
pub struct NightlySummary {
    pub now: DateTime<Utc>,
    /// The usage-ledger step (ingestion and re-split), when evidence sources are configured.
    pub ledger: Option<crate::usage::Refresh>,
    /// Months reconciled (stored periods among the open and the previous month).
    pub reconciled: Vec<MonthResult>,
    pub forecasts: Vec<Forecast>,
    /// Alerts this run delivered on at least one channel, and failed on none.
    pub alerts_sent: Vec<Alert>,
    /// Alerts a channel certainly did not take (retried next run on those channels only); the text
    /// names each failed channel and the channels that did take the alert.
    pub alerts_failed: Vec<(Alert, String)>,
    /// Deliveries claimed and never confirmed: this run's uncertain ones, and claims of earlier or
    /// concurrent runs. Never re-sent automatically (at most once per channel).
    pub alerts_unconfirmed: Vec<UnconfirmedDelivery>,
    pub anomalies: Vec<Anomaly>,
    /// Budgets whose tenant has cost of the month in another currency than the budget's: that cost
    /// is not compared with the budget (never converted, never summed with it).
    pub budget_currency_mismatches: Vec<CurrencyMismatch>,
    /// AWS's forecast of each connected account beside curflow's (`GetCostForecast`); empty
    /// without `[[accounts]]`. Filled by [`add_aws_forecasts`].
    pub aws_forecasts: Vec<crate::cost_explorer::forecast::AccountForecast>,
}

/// An (alert, channel) that a run claimed and did not mark sent: the run is still delivering (a
/// concurrent run), died between claim and mark, or its delivery ended uncertain (`error`). curflow
/// never sends it again by itself; an operator who finds that the receiver did not get it deletes
/// the record (SQLite `alert_deliveries` row, DynamoDB `delivery#…` item) and the next run sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnconfirmedDelivery {
    #[serde(flatten)]
    pub key: AlertKey,
    pub channel: AlertChannel,
    pub claimed_at: DateTime<Utc>,
    pub run_id: String,
    /// This run's delivery error, when this run claimed it.
    pub error: Option<String>,
}

impl UnconfirmedDelivery {
    fn of(record: &AlertDelivery) -> Self {
        UnconfirmedDelivery {
            key: record.key.clone(),
            channel: record.channel,
            claimed_at: record.claimed_at,
            run_id: record.run_id.clone(),
            error: None,
        }
    }
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
    let mut store = crate::store::open_existing(&config.store, &config.aws()).await?;
    run_on(&mut *store, config, now).await
}

/// The whole nightly job on an open store (the CLI's and the Lambda's): with `[[evidence]]`
/// sources, first the usage ledger (ingest up to yesterday, re-split the open and previous month),
/// then [`run_with`] on the new split.
pub async fn run_on(store: &mut dyn Store, config: &Config, now: DateTime<Utc>) -> Result<NightlySummary> {
    let options = config.reconcile_options()?;
    let ledger = crate::usage::nightly_refresh(store, config, now).await?;
    let mut summary = run_with(store, &options, &config.alert_channels(), now).await?;
    summary.ledger = ledger;
    add_aws_forecasts(store, config, now, &mut summary).await?;
    Ok(summary)
}

/// Fetches AWS's forecast of each enabled connected account (nothing without `[[accounts]]`),
/// stores it in the account's status and puts it in the summary. An account whose forecast is
/// denied or unavailable is a row saying so, never a failed run.
pub async fn add_aws_forecasts(
    store: &mut dyn Store,
    config: &Config,
    now: DateTime<Utc>,
    summary: &mut NightlySummary,
) -> Result<()> {
    if config.accounts.iter().all(|a| !a.enabled) {
        return Ok(());
    }
    let options = crate::cost_explorer::forecast::ForecastOptions {
        aws: config.aws(),
        requests_per_second: config.ce_requests_per_second,
        request_budget: config.ce_request_budget,
    };
    summary.aws_forecasts = crate::cost_explorer::forecast::refresh(store, &config.accounts, &options, now).await?;
    Ok(())
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
        ledger: None,
        reconciled: Vec::new(),
        forecasts: Vec::new(),
        alerts_sent: Vec::new(),
        alerts_failed: Vec::new(),
        alerts_unconfirmed: Vec::new(),
        anomalies: Vec::new(),
        budget_currency_mismatches: Vec::new(),
        aws_forecasts: Vec::new(),
    };
    let mut baseline_lines = Vec::new();
    for period in [previous, current] {
        if store.period(period).await?.is_none() {
            continue;
        }
        let comparison = reconciliation::reconcile(store, period, now, options).await?;
        let written = store.replace_reconciliation(month_of(period), &comparison, now).await?;
        summary.reconciled.push(MonthResult {
            period,
            records_written: written,
            tenants: comparison.tenant_months,
            not_compared: comparison.not_compared,
        });
        baseline_lines.extend(store.cost_lines(period).await?);
    }

    // Budgets: the current month's month-to-date and forecast.
    let budgets = store.budgets().await?;
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
    let plain: Vec<_> = budgets.iter().map(|b| b.budget.clone()).collect();
    summary.budget_currency_mismatches = currency_mismatches(&plain, &positions);
    deliver_alerts(store, &plain, &positions, channels, month_of(current), now, &mut summary).await?;

    // Anomalies of the last 7 days, against a trailing baseline that may reach into the previous month.
    // The last 7 *complete* days: a partial newest day would read as a drop.
    let as_of = reconciliation::last_complete_day(now, current, &current_lines);
    let recent: Vec<_> = baseline_lines.iter().filter(|l| l.key.usage_date <= as_of).cloned().collect();
    summary.anomalies = reconciliation::anomalies(&recent, as_of - Days::new(6))?;
    Ok(summary)
}

/// Delivers the month's new alerts, each at most once per configured channel: for every channel
/// without a record, claim it (only the winner of concurrent runs goes on), deliver, then mark it
/// sent, or release the claim when the channel certainly did not take the alert. An alert counts as
/// done (not evaluated again) once every configured channel has a record, sent or claimed.
async fn deliver_alerts(
    store: &mut dyn Store,
    budgets: &[curflow_reconcile::Budget],
    positions: &[BudgetPosition],
    channels: &AlertChannels,
    month: curflow_reconcile::Month,
    now: DateTime<Utc>,
    summary: &mut NightlySummary,
) -> Result<()> {
    let configured = channels.configured();
    let run_id = new_run_id();
    let records = store.alert_deliveries(month).await?;
    let mut recorded: BTreeMap<&AlertKey, BTreeSet<AlertChannel>> = BTreeMap::new();
    for r in &records {
        recorded.entry(&r.key).or_default().insert(r.channel);
    }
    let has_record = |key: &AlertKey, channel: AlertChannel| recorded.get(key).is_some_and(|c| c.contains(&channel));
    let done: BTreeSet<AlertKey> =
        recorded.keys().filter(|k| configured.iter().all(|c| has_record(k, *c))).map(|k| (*k).clone()).collect();
    summary.alerts_unconfirmed =
        records.iter().filter(|r| r.state == DeliveryState::Claimed).map(UnconfirmedDelivery::of).collect();
    let alerts = evaluate_alerts(budgets, positions, &done).map_err(|e| Error::Argument(e.to_string()))?;
    for alert in alerts {
        let key = alert.key();
        let (mut delivered, mut failed) = (Vec::new(), Vec::new());
        for &channel in &configured {
            if has_record(&key, channel) || !store.claim_alert(&alert, channel, &run_id, now).await? {
                continue; // sent or claimed already, by an earlier run or one running now
            }
            match deliver_on(&alert, channel, channels).await {
                Ok(()) => {
                    if !store.mark_alert_sent(&alert, channel, &run_id, now).await? {
                        tracing::warn!(tenant = %alert.accountant_id, %channel, "alert delivered, but its claim was removed meanwhile; it was not marked sent");
                    }
                    delivered.push(channel);
                }
                Err(DeliveryFailure::NotDelivered(e)) => {
                    tracing::warn!(tenant = %alert.accountant_id, %channel, error = %e, "alert not delivered; retried next run");
                    store.release_alert(&key, channel, &run_id).await?;
                    failed.push(format!("{channel}: {e}"));
                }
                Err(DeliveryFailure::Uncertain(e)) => {
                    tracing::warn!(tenant = %alert.accountant_id, %channel, error = %e, "alert delivery uncertain; kept as claimed, never re-sent automatically");
                    summary.alerts_unconfirmed.push(UnconfirmedDelivery {
                        key: key.clone(),
                        channel,
                        claimed_at: now,
                        run_id: run_id.clone(),
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        if !failed.is_empty() {
            let mut reason = failed.join("; ");
            if !delivered.is_empty() {
                let names: Vec<_> = delivered.iter().map(|c| c.name()).collect();
                reason.push_str(&format!(" (delivered on {}, not sent there again)", names.join(", ")));
            }
            summary.alerts_failed.push((alert, reason));
        } else if !delivered.is_empty() {
            summary.alerts_sent.push(alert);
        }
    }
    Ok(())
}

/// The one-screen summary.
pub fn summary_text(s: &NightlySummary) -> String {
    let mut out = format!("curflow nightly — {}\n", s.now.format("%Y-%m-%d %H:%M UTC"));
    if let Some(ledger) = &s.ledger {
        for source in &ledger.ingested.sources {
            let changed = source.days.iter().filter(|d| d.outcome == "replaced").count();
            out.push_str(&format!(
                "  usage {}: {} to {}, {} day(s) read, {changed} changed, {} malformed line(s)\n",
                source.source,
                source.from,
                source.to,
                source.days.len(),
                source.malformed
            ));
        }
        for r in &ledger.reattributed {
            out.push_str(&format!("  re-split {} with the usage ledger: {}\n", r.period, r.outcome));
        }
    }
    reconciled_text(s, &mut out);
    currency_text(s, &mut out);
    alerts_text(s, &mut out);
    if !s.aws_forecasts.is_empty() {
        out.push_str("  AWS forecast (Cost Explorer, unblended) beside curflow's, per connected account:\n");
        out.push_str(&crate::cost_explorer::forecast::text(&s.aws_forecasts));
    }
    out.push_str(&format!("  anomalies (last 7 days): {}\n", s.anomalies.len()));
    for a in s.anomalies.iter().take(5) {
        out.push_str(&format!(
            "    {} {} {}: {} {} vs baseline {} ({})\n",
            a.day,
            a.accountant_id,
            a.service,
            r2(a.cost),
            a.currency,
            r2(a.baseline_median),
            a.jump_pct.map(|p| format!("{:+}%", p.round_dp(0))).unwrap_or_else(|| "new".into())
        ));
    }
    out
}

/// An amount for people: two places, thousands grouped.
fn r2(d: rust_decimal::Decimal) -> String {
    crate::output::group_thousands(d.round_dp(2))
}

/// Each reconciled month and its first flagged tenants.
fn reconciled_text(s: &NightlySummary, out: &mut String) {
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
}

/// Cost the estimates or a budget were not compared with because it is in another currency.
fn currency_text(s: &NightlySummary, out: &mut String) {
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
}

/// The alerts sent and failed by this run, and the deliveries claimed but never confirmed.
fn alerts_text(s: &NightlySummary, out: &mut String) {
    out.push_str(&format!("  budgets: {} alert(s) sent, {} failed\n", s.alerts_sent.len(), s.alerts_failed.len()));
    for a in &s.alerts_sent {
        out.push_str(&format!("    {}\n", a.message));
    }
    for (a, e) in &s.alerts_failed {
        out.push_str(&format!("    FAILED {}: {e}\n", a.message));
    }
    if !s.alerts_unconfirmed.is_empty() {
        out.push_str(&format!(
            "  alert deliveries claimed but not confirmed (never re-sent automatically): {}\n",
            s.alerts_unconfirmed.len()
        ));
    }
    for u in &s.alerts_unconfirmed {
        let k = &u.key;
        out.push_str(&format!(
            "    UNCONFIRMED {} {} {}% {} on {}, claimed {} by run {}{}\n",
            k.accountant_id,
            k.month,
            k.threshold_pct,
            curflow_store::finance::alert_kind_name(k.kind),
            u.channel,
            u.claimed_at.format("%Y-%m-%d %H:%M UTC"),
            u.run_id,
            u.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
}
