//! Writing synced days as billing-period versions, never mixed with a CUR delivery's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Serialize;

use super::SyncOptions;
use crate::aggregate::CostLine;
use crate::period::BillingPeriod;
use crate::store::{Invoices, PeriodRecord, ReplaceOutcome, Store};
use curflow_model::{COST_EXPLORER_VERSION_PREFIX, ReportVersion};

/// What a sync did to one billing period.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodOutcome {
    pub period: BillingPeriod,
    /// `written`, `unchanged` (the same lines were stored), `cur_stored` (the month's CUR is
    /// stored: Cost Explorer never replaces it) or `refused_older`.
    pub outcome: &'static str,
    pub version: String,
    pub lines: usize,
    /// Some result of the month is `Estimated`: the month is not final.
    pub provisional: bool,
}

/// Stores, per billing period the synced days touch, one Cost Explorer version: the fresh lines of
/// the accounts that synced, plus the stored Cost Explorer lines of other accounts and of days
/// outside the synced range (so a partial or failed sync never drops what an earlier one stored).
/// A period whose stored version is a CUR delivery is left alone.
pub async fn write_periods(
    store: &mut dyn Store,
    fetched: &BTreeMap<String, Vec<CostLine>>,
    estimated: &BTreeSet<BillingPeriod>,
    options: &SyncOptions,
) -> crate::Result<Vec<PeriodOutcome>> {
    let mut by_period: BTreeMap<BillingPeriod, Vec<CostLine>> = BTreeMap::new();
    for line in fetched.values().flatten() {
        by_period.entry(line.period).or_default().push(line.clone());
    }
    if fetched.is_empty() {
        return Ok(Vec::new());
    }
    let mut outcomes = Vec::new();
    for period in periods_between(options.from, options.to) {
        let fresh = by_period.remove(&period).unwrap_or_default();
        let stored = store.period(period).await?;
        if let Some(record) = stored.as_ref().filter(|r| !r.version.is_cost_explorer()) {
            outcomes.push(PeriodOutcome {
                period,
                outcome: "cur_stored",
                version: record.version.id.clone(),
                lines: 0,
                provisional: false,
            });
            continue;
        }
        let mut lines = fresh;
        let mut provisional = estimated.contains(&period);
        if let Some(record) = &stored {
            let kept: Vec<CostLine> = store
                .cost_lines(period)
                .await?
                .into_iter()
                .filter(|l| {
                    let refreshed = fetched.contains_key(l.key.account_id.as_str())
                        && (options.from..=options.to).contains(&l.key.usage_date);
                    !refreshed
                })
                .collect();
            provisional |= !kept.is_empty() && record.format.contains("provisional");
            lines.extend(kept);
        }
        if lines.is_empty() && stored.is_none() {
            continue;
        }
        lines.sort_by(|a, b| a.key.cmp(&b.key));
        outcomes.push(write_period(store, period, lines, provisional, &options.tag_key).await?);
    }
    Ok(outcomes)
}

async fn write_period(
    store: &mut dyn Store,
    period: BillingPeriod,
    lines: Vec<CostLine>,
    provisional: bool,
    tag_key: &str,
) -> crate::Result<PeriodOutcome> {
    let format = if provisional { "Cost Explorer (provisional: estimated)" } else { "Cost Explorer" };
    let accounts: BTreeSet<&str> = lines.iter().map(|l| l.key.account_id.as_str()).collect();
    let record = PeriodRecord {
        period,
        version: ReportVersion { id: version_id(&lines, format)?, time: Utc::now() },
        format: format.to_string(),
        source: format!(
            "Cost Explorer GetCostAndUsage, accounts {}",
            accounts.into_iter().collect::<Vec<_>>().join(", ")
        ),
        files: 0,
        rows_read: lines.len() as u64,
        split_child_rows: 0,
        tag_key: tag_key.to_string(),
        inputs: Some(format!("cost-explorer tag_key={tag_key}")),
        processed_at: Utc::now(),
        invoice: Invoices { ids: Vec::new(), rows_without_id: Some(lines.len() as u64) },
    };
    let outcome = store.replace_period(&record, &lines, false).await?;
    let outcome = match outcome {
        ReplaceOutcome::Replaced { .. } => "written",
        ReplaceOutcome::Unchanged => "unchanged",
        ReplaceOutcome::RefusedOlder { .. } => "refused_older",
    };
    Ok(PeriodOutcome { period, outcome, version: record.version.id, lines: lines.len(), provisional })
}

/// The version id of a period's lines: the Cost Explorer prefix and a hash of exactly what is
/// stored, so a sync that reads the same amounts again is `Unchanged` (a no-op).
fn version_id(lines: &[CostLine], format: &str) -> crate::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format.as_bytes());
    for line in lines {
        let text = serde_json::to_string(line)
            .map_err(|e| crate::Error::Internal(format!("cost line as JSON for the version id: {e}")))?;
        h.update(text.as_bytes());
        h.update(b"\n");
    }
    let hex: String = h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{COST_EXPLORER_VERSION_PREFIX}{hex}"))
}

/// The billing periods with a day in `from..=to`.
fn periods_between(from: chrono::NaiveDate, to: chrono::NaiveDate) -> Vec<BillingPeriod> {
    let mut out = Vec::new();
    let mut p = BillingPeriod::containing(from);
    while p.first_day() <= to {
        out.push(p);
        p = p.next();
    }
    out
}
