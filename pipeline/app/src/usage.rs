//! `curflow usage ingest`: configured evidence sources → the usage ledger, a UTC day at a time.
//!
//! Each source (`[[evidence]]`) is read over the run's whole day range in one pass, so a Lambda
//! `REPORT` line and the application line carrying its tenant are joined even when they sit in
//! different files or on either side of midnight (the invocation counts on the day of its
//! `REPORT`, as AWS bills it). The totals are then written day by day: each (source, day) is
//! replaced as a unit (a day without usage is stored empty, so "read, nothing used" differs from
//! "not read yet"), and after each day the source's checkpoint moves on, so a run cut short (the
//! Lambda's time limit) resumes at the next day instead of starting over.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use curflow_attribution::DriverTotals;
use curflow_store::Store;
use curflow_store::ledger::{DayOutcome, DayQuantities, IngestCheckpoint, MAX_PROVENANCE_ITEMS, Provenance, UsageDay};
use serde::Serialize;

use crate::attribute::sources::EvidenceSource;
use crate::attribute::{AttributionInputs, AttributionOptions};
use crate::config::EvidenceEntry;
use crate::error::{Error, Result};

/// What `usage ingest` reads.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The sources to read (all configured ones unless `--source` narrows them).
    pub sources: Vec<EvidenceEntry>,
    /// First day; `None`: from the source's checkpoint (or yesterday) minus `restate_days`.
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: NaiveDate,
    pub restate_days: u64,
    /// Tenant key, S3 prefix map, agent session map, malformed-line budget, AWS settings; its
    /// `evidence` and `window` are set per source.
    pub reading: AttributionOptions,
}

/// One (source, day) of a run.
#[derive(Debug, Clone, Serialize)]
pub struct DayResult {
    pub source: String,
    pub day: NaiveDate,
    /// `replaced` (new or changed quantities) or `unchanged` (the same content was stored).
    pub outcome: &'static str,
    pub version: String,
    /// (driver, tenant) quantities stored for the day.
    pub rows: u64,
    /// Distinct tenants with usage that day (usage without a tenant not counted).
    pub tenants: u64,
    /// Quantity of usage without a tenant, per driver, that day.
    pub without_tenant: BTreeMap<String, rust_decimal::Decimal>,
}

/// One source of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SourceResult {
    pub source: String,
    pub location: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Lines and bytes read, malformed lines, Lambda invocations joined to a tenant and not.
    pub lines: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub invocations_joined: u64,
    pub invocations_without_tenant: u64,
    pub days: Vec<DayResult>,
}

/// The whole run, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub sources: Vec<SourceResult>,
}

/// The day range of one source: `--from` as given, else `restate_days` before the first day the
/// checkpoint has not covered (yesterday's run covered through yesterday: today's re-reads the
/// days before it, where late logs land).
fn first_day(options: &IngestOptions, checkpoint: Option<&IngestCheckpoint>) -> NaiveDate {
    if let Some(from) = options.from {
        // Resuming the same run: skip what it stored already.
        return match checkpoint {
            Some(c) if c.target == options.to && c.done_through >= from && c.done_through < options.to => {
                c.done_through.succ_opt().unwrap_or(from)
            }
            _ => from,
        };
    }
    let next = checkpoint.and_then(|c| c.done_through.succ_opt()).unwrap_or(options.to);
    let restate = chrono::Days::new(options.restate_days);
    next.min(options.to).checked_sub_days(restate).unwrap_or(next)
}

/// Reads every source of `options` into the ledger of `store`.
pub async fn ingest(store: &mut dyn Store, options: &IngestOptions) -> Result<IngestReport> {
    let mut report = IngestReport::default();
    for entry in &options.sources {
        let checkpoint = store.usage_checkpoint(&entry.name).await?;
        let from = first_day(options, checkpoint.as_ref());
        if from > options.to {
            return Err(Error::Argument(format!("--from {from} is after --to {}", options.to)));
        }
        let source: EvidenceSource = entry.location.parse()?;
        let mut reading = options.reading.clone();
        reading.evidence = vec![source];
        reading.window = Some((from, options.to));
        // Reading evidence is blocking work: off the runtime's worker threads.
        let inputs = tokio::task::spawn_blocking(move || AttributionInputs::load(&reading))
            .await
            .map_err(|e| Error::Internal(format!("reading evidence: {e}")))??;
        let mut result = SourceResult {
            source: entry.name.clone(),
            location: entry.location.clone(),
            from,
            to: options.to,
            lines: inputs.report.sources.iter().map(|s| s.lines).sum(),
            bytes: inputs.report.bytes,
            malformed: inputs.report.sources.iter().map(|s| s.malformed).sum(),
            invocations_joined: inputs.report.lambda_invocations_joined,
            invocations_without_tenant: inputs.report.lambda_invocations_without_tenant,
            days: Vec::new(),
        };
        let by_day = split_by_day(inputs.drivers());
        let mut day = from;
        while day <= options.to {
            let quantities = by_day.get(&day).cloned().unwrap_or_default();
            let provenance = provenance(entry, day, &inputs);
            let record = UsageDay::new(&entry.name, day, &quantities, provenance);
            let outcome = store.replace_usage_day(&record, &quantities).await?;
            result.days.push(day_result(&record, &quantities, &outcome));
            let checkpoint = IngestCheckpoint {
                source: entry.name.clone(),
                done_through: day,
                target: options.to,
                updated_at: Utc::now(),
            };
            store.put_usage_checkpoint(&checkpoint).await?;
            tracing::info!(source = %entry.name, %day, rows = quantities.len(), ?outcome, "usage day stored");
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        report.sources.push(result);
    }
    Ok(report)
}

/// The run's totals per day: (driver name, tenant id) → quantity.
fn split_by_day(totals: &DriverTotals) -> BTreeMap<NaiveDate, DayQuantities> {
    let mut out: BTreeMap<NaiveDate, DayQuantities> = BTreeMap::new();
    for (driver, day, tenant, quantity) in totals.iter() {
        out.entry(day).or_default().insert((driver.as_str().to_string(), tenant.as_str().to_string()), quantity);
    }
    out
}

fn provenance(entry: &EvidenceEntry, day: NaiveDate, inputs: &AttributionInputs) -> Provenance {
    let sources = &inputs.report.sources;
    let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    Provenance {
        location: entry.location.clone(),
        items: sources.iter().take(MAX_PROVENANCE_ITEMS).map(|s| s.source.clone()).collect(),
        items_total: sources.len() as u64,
        read_from: start,
        read_to: start.map(|t| t + chrono::Duration::days(1)),
        lines: sources.iter().map(|s| s.lines).sum(),
        bytes: inputs.report.bytes,
        malformed: sources.iter().map(|s| s.malformed).sum(),
        reader: format!("curflow {}", env!("CARGO_PKG_VERSION")),
    }
}

fn day_result(record: &UsageDay, quantities: &DayQuantities, outcome: &DayOutcome) -> DayResult {
    let unattributed = curflow_attribution::UNATTRIBUTED;
    let tenants: std::collections::BTreeSet<&str> =
        quantities.keys().map(|(_, t)| t.as_str()).filter(|t| *t != unattributed).collect();
    let without_tenant =
        quantities.iter().filter(|((_, t), _)| t == unattributed).map(|((d, _), q)| (d.clone(), *q)).collect();
    DayResult {
        source: record.source.clone(),
        day: record.day,
        outcome: match outcome {
            DayOutcome::Replaced { .. } => "replaced",
            DayOutcome::Unchanged => "unchanged",
        },
        version: record.version.clone(),
        rows: record.rows,
        tenants: tenants.len() as u64,
        without_tenant,
    }
}

/// The ledger's usage totals of every source between `from` and `to` (inclusive), with the
/// (source, day)s it holds: the drivers attribution splits by in place of re-read evidence.
pub async fn ledger_totals(store: &dyn Store, from: NaiveDate, to: NaiveDate) -> Result<(DriverTotals, Vec<UsageDay>)> {
    let days = store.usage_days(from, to).await?;
    let mut totals = DriverTotals::new();
    for record in &days {
        let Some((_, quantities)) = store.usage_day(&record.source, record.day).await? else { continue };
        for ((driver, tenant), q) in quantities {
            let driver = driver.parse().map_err(|e| ledger_error(record, format!("{e}")))?;
            let tenant = if tenant == curflow_attribution::UNATTRIBUTED {
                curflow_attribution::TenantId::unattributed()
            } else {
                curflow_attribution::TenantId::new(tenant).map_err(|e| ledger_error(record, format!("{e}")))?
            };
            totals.add(driver, record.day, &tenant, q).map_err(|e| ledger_error(record, e.to_string()))?;
        }
    }
    Ok((totals, days))
}

/// Attribution inputs for the days `from..=to` from the usage ledger, when the configuration
/// declares evidence sources (`None` otherwise: nothing to split by), with the configured rules
/// and assignments.
pub async fn ledger_inputs(
    store: &dyn Store,
    config: &crate::Config,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<AttributionInputs>> {
    ledger_inputs_with(store, config, &config.attribution_options(), from, to).await
}

/// The inputs a stored `period` is split with now: the usage ledger's totals for its days when
/// the configuration declares evidence sources, else the configured evidence files.
pub async fn period_inputs(
    store: &dyn Store,
    config: &crate::Config,
    period: crate::BillingPeriod,
) -> Result<AttributionInputs> {
    match ledger_inputs(store, config, period.first_day(), period.last_day()).await? {
        Some(inputs) => Ok(inputs),
        None => AttributionInputs::load(&config.attribution_options()),
    }
}

/// [`ledger_inputs`] with the rules and assignments of `options` (`curflow process --rules ...`).
pub async fn ledger_inputs_with(
    store: &dyn Store,
    config: &crate::Config,
    options: &AttributionOptions,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<AttributionInputs>> {
    if config.evidence.is_empty() {
        return Ok(None);
    }
    let (drivers, days) = ledger_totals(store, from, to).await?;
    tracing::info!(days = days.len(), %from, %to, "attributing with the usage ledger");
    let sources: Vec<&str> = config.evidence.iter().map(|e| e.name.as_str()).collect();
    let inputs = AttributionInputs::with_drivers(options, drivers)?;
    Ok(Some(inputs.with_uncovered(uncovered_days(&sources, &days, from, to))))
}

/// How the reason of a shared line left waiting for the ledger begins.
pub const NO_EVIDENCE: &str = "no usage evidence ingested for ";

/// The days of `from..=to` some of `sources` has not stored yet, with the reason their
/// driver-split lines keep: "no usage evidence ingested for DAY from SOURCE[, SOURCE]".
pub fn uncovered_days(
    sources: &[&str],
    stored: &[UsageDay],
    from: NaiveDate,
    to: NaiveDate,
) -> BTreeMap<NaiveDate, String> {
    let have: std::collections::BTreeSet<(&str, NaiveDate)> =
        stored.iter().map(|d| (d.source.as_str(), d.day)).collect();
    let mut out = BTreeMap::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        let missing: Vec<&str> = sources.iter().copied().filter(|s| !have.contains(&(*s, day))).collect();
        if !missing.is_empty() {
            out.insert(day, format!("{NO_EVIDENCE}{day} from {}", missing.join(", ")));
        }
    }
    out
}

fn ledger_error(day: &UsageDay, reason: String) -> Error {
    Error::Internal(format!("usage ledger, {} on {}: {reason}", day.source, day.day))
}

/// What the nightly ledger step did: the ingestion, then the re-split of each month.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refresh {
    pub ingested: IngestReport,
    pub reattributed: Vec<crate::reattribute::Reattributed>,
}

/// The nightly job's ledger step, when evidence sources are configured (`None` otherwise): ingest
/// every source up to yesterday (from its checkpoint, re-reading `usage-restate-days`), then
/// re-split the open and the previous month with the ledger as it now is. Reconciliation runs
/// after it, on the new split.
pub async fn nightly_refresh(
    store: &mut dyn Store,
    config: &crate::Config,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Refresh>> {
    if config.evidence.is_empty() {
        return Ok(None);
    }
    let today = now.date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let options = IngestOptions {
        sources: config.evidence.clone(),
        from: None,
        to: yesterday,
        restate_days: config.usage_restate_days,
        reading: config.attribution_options(),
    };
    let mut refresh = Refresh { ingested: ingest(store, &options).await?, reattributed: Vec::new() };
    let open = curflow_model::period::BillingPeriod::containing(today);
    for period in [open.previous(), open] {
        let Some(inputs) = ledger_inputs(store, config, period.first_day(), period.last_day()).await? else { continue };
        if let Some(done) = crate::reattribute::reattribute(store, period, inputs).await? {
            refresh.reattributed.push(done);
        }
    }
    Ok(Some(refresh))
}

/// Shared cost left unattributed because the ledger lacks its day: one entry per reason (a day
/// and its missing sources) and currency, with the amortized cost waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingEvidence {
    pub reason: String,
    pub currency: String,
    pub amortized_cost: rust_decimal::Decimal,
}

/// The [`MissingEvidence`] of `lines`, in reason order.
pub fn missing_evidence(lines: &[curflow_model::aggregate::CostLine]) -> Result<Vec<MissingEvidence>> {
    let mut by: BTreeMap<(&str, &str), rust_decimal::Decimal> = BTreeMap::new();
    for l in lines {
        if let Some(reason) = l.unattributed_reason.as_deref().filter(|r| r.starts_with(NO_EVIDENCE)) {
            let slot = by.entry((reason, l.key.currency.as_str())).or_default();
            *slot = crate::aggregate::add_exact(*slot, l.amounts.amortized_cost, || {
                format!("the amortized cost waiting for evidence ({reason})")
            })?;
        }
    }
    Ok(by
        .into_iter()
        .map(|((reason, currency), amortized_cost)| MissingEvidence {
            reason: reason.to_string(),
            currency: currency.to_string(),
            amortized_cost,
        })
        .collect())
}

/// One line for people: how much shared cost waits for which days' evidence; `None` when none.
pub fn missing_evidence_note(missing: &[MissingEvidence]) -> Option<String> {
    let first = missing.first()?;
    let mut totals: BTreeMap<&str, rust_decimal::Decimal> = BTreeMap::new();
    for m in missing {
        let slot = totals.entry(m.currency.as_str()).or_default();
        *slot = slot.checked_add(m.amortized_cost).unwrap_or(*slot);
    }
    let amounts: Vec<String> = totals.iter().map(|(c, a)| format!("{} {c}", a.round_dp(2))).collect();
    Some(format!(
        "waiting for usage evidence: {} amortized on {} day(s) stays unattributed ({}{})",
        amounts.join(" + "),
        missing.len(),
        first.reason,
        if missing.len() > 1 { ", …; see `curflow usage days`" } else { "" }
    ))
}
