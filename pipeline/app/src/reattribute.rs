//! `curflow attribute --period`: re-split a stored period's shared pool with the usage ledger as
//! it is now, without reading the CUR again.
//!
//! The store holds everything needed: tagged lines stay as they are, and the shared-pool lines an
//! attributed period was split from are stored beside its lines (`CostStore::pool_lines`). A
//! period stored without a separate pool (never attributed, or by a curflow that stored one row
//! per shared line and tenant) has its pool rebuilt instead: each shared-pool line is the exact
//! sum of its stored parts (its attributed rows and its unattributed remainder, which share its
//! key but for the tenant). The pool is split again, and the period replaced as a unit under the
//! same delivery version with the new inputs fingerprint, so a CUR delivery stored meanwhile (a
//! newer version) is never overwritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use curflow_model::aggregate::{Amounts, CostKey, CostLine, LineSource};
use curflow_model::period::BillingPeriod;
use curflow_store::{LineFilter, PeriodRecord, ReplaceOutcome, Store};
use serde::Serialize;

use crate::attribute::AttributionInputs;
use crate::error::Result;
use crate::process::PeriodChunks;
use crate::process::inputs_fingerprint;

/// What a re-split did.
#[derive(Debug, Clone, Serialize)]
pub struct Reattributed {
    pub period: BillingPeriod,
    pub version: String,
    /// `replaced`, or `unchanged` when the stored split was already made from the same inputs,
    /// or `refused_older` when a newer delivery was stored meanwhile.
    pub outcome: &'static str,
    /// Shared-pool lines rebuilt and split again.
    pub pool_lines: usize,
    /// Lines stored.
    pub lines: usize,
    pub coverage: Option<curflow_attribution::Coverage>,
}

/// Re-splits `period` with `inputs`; `None` when the store has no such period.
pub async fn reattribute(
    store: &mut dyn Store,
    period: BillingPeriod,
    inputs: AttributionInputs,
) -> Result<Option<Reattributed>> {
    let Some(record) = store.period(period).await? else { return Ok(None) };
    let fingerprint = inputs_fingerprint(&record.tag_key, Some(&inputs));
    let mut done = Reattributed {
        period,
        version: record.version.id.clone(),
        outcome: "unchanged",
        pool_lines: 0,
        lines: 0,
        coverage: None,
    };
    if record.inputs.as_deref() == Some(fingerprint.as_str()) {
        return Ok(Some(done));
    }
    let pool = store.pool_lines(period).await?;
    let (lines, pool_lines) = if pool.is_empty() {
        unsplit(store.cost_lines(period).await?)?
    } else {
        // Only the tagged lines are read: the attributed rows (millions at thousands of tenants)
        // are left in the store, filtered by it, and replaced by the new split.
        let pool_lines = pool.len();
        let mut lines = store.cost_lines_where(period, &LineFilter::source(LineSource::Cur)).await?;
        lines.extend(pool);
        (lines, pool_lines)
    };
    let record = PeriodRecord { inputs: Some(fingerprint), processed_at: Utc::now(), ..record };
    // Split as it is written, a day of attributed rows at a time (see `process::chunks`).
    let mut chunks = PeriodChunks::split(period, crate::process::PeriodLines::Held(lines), Arc::new(inputs))?;
    let outcome = store.replace_split_period_chunks(&record, &mut chunks, false).await;
    if let Some(failure) = chunks.take_failure() {
        return Err(failure);
    }
    done.outcome = match outcome? {
        ReplaceOutcome::Replaced { .. } => "replaced",
        ReplaceOutcome::Unchanged => "unchanged",
        ReplaceOutcome::RefusedOlder { .. } => "refused_older",
    };
    chunks.finish()?;
    (done.pool_lines, done.lines, done.coverage) = (pool_lines, chunks.stats().lines(), chunks.take_coverage());
    Ok(Some(done))
}

/// The period's lines as the scan made them: tagged lines as stored, and each shared-pool line
/// rebuilt as the exact sum of its parts. Returns the lines and how many pool lines there are.
fn unsplit(stored: Vec<CostLine>) -> Result<(Vec<CostLine>, usize)> {
    let mut out = Vec::with_capacity(stored.len());
    let mut pool: BTreeMap<CostKey, (BillingPeriod, Amounts)> = BTreeMap::new();
    for line in stored {
        if line.source() == LineSource::Cur {
            out.push(line);
            continue;
        }
        let key = CostKey { tenant: None, ..line.key };
        match pool.get_mut(&key) {
            Some((_, amounts)) => amounts.add(&line.amounts)?,
            None => {
                pool.insert(key, (line.period, line.amounts));
            }
        }
    }
    let pool_lines = pool.len();
    out.extend(pool.into_iter().map(|(key, (period, amounts))| CostLine::new(period, key, amounts)));
    Ok((out, pool_lines))
}
