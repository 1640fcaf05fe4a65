//! Backfill: every billing period under a root (an S3 prefix or a local directory), processed from
//! its newest manifest, resumable, with bounded parallelism.
//!
//! 1. Enumerate ([`find_periods`]): list the root, keep the newest manifest per period folder and
//!    then per billing period, in every layout (legacy CSV `<report>/<yyyymmdd-yyyymmdd>/`, with or
//!    without assemblyId subfolders; Athena Parquet; CUR 2.0 `metadata/BILLING_PERIOD=YYYY-MM/`).
//!    A manifest that cannot be read becomes a failed row; the others go on.
//! 2. Settle from the store without reading data: a period stored at that version is "already
//!    stored"; a period stored at a newer version is "refused" (the store never goes back).
//! 3. Process the rest: up to `parallel` periods are checked (HEAD of every file) and scanned at
//!    once, sharing one query engine and its memory pool; each finished scan is written on the
//!    calling thread, one period at a time, because `CostStore` is synchronous and not shared
//!    between threads. With `[[evidence]]` configured ([`LedgerSplit`]), each period is split with
//!    the usage ledger's drivers for its own days before it is written (and a period stored from
//!    other ledger totals counts as changed). Each write replaces one period atomically, so an interrupted backfill
//!    leaves only complete periods behind and a re-run resumes where it stopped (finished periods
//!    are then "already stored").

use std::collections::BTreeMap;

use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{PeriodReport, Processor};
use crate::aggregate::Amounts;
use crate::attribute::{AttributionInputs, AttributionOptions};
use crate::discover::{ManifestRef, PeriodCandidate, find_periods};
use crate::error::{Error, ErrorClass, Result};
use crate::location::{Location, S3Access};
use crate::period::BillingPeriod;
use crate::store::{CostStore, MadeFrom, ReplaceOutcome, Store, decide};

/// A backfill that splits each period with the usage ledger's drivers for that period's days
/// (configured `[[evidence]]`), as `process` does; each period's record carries its own inputs.
pub struct LedgerSplit<'a> {
    pub config: &'a crate::Config,
    /// Rules, assignments and the tenant key (`Config::attribution_options`).
    pub options: AttributionOptions,
}

impl LedgerSplit<'_> {
    async fn inputs(&self, store: &dyn Store, period: BillingPeriod) -> Result<AttributionInputs> {
        let (from, to) = (period.first_day(), period.last_day());
        crate::usage::ledger_inputs_with(store, self.config, &self.options, from, to)
            .await?
            .ok_or_else(|| Error::Argument("no [[evidence]] source is configured for a ledger backfill".into()))
    }
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// First billing period to process (inclusive).
    pub from: Option<BillingPeriod>,
    /// Last billing period to process (inclusive).
    pub to: Option<BillingPeriod>,
    /// Periods checked and scanned at the same time (at least 1).
    pub parallel: usize,
}

/// How a period ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodStatus {
    /// Read and written by this run.
    Processed,
    /// The store already holds this version: nothing to do.
    AlreadyStored,
    /// The store holds a newer version than the newest manifest found: left as it is.
    Refused,
    /// Could not be processed; see `reason`.
    Failed,
}

impl PeriodStatus {
    pub fn label(self) -> &'static str {
        match self {
            PeriodStatus::Processed => "processed",
            PeriodStatus::AlreadyStored => "already stored",
            PeriodStatus::Refused => "refused",
            PeriodStatus::Failed => "failed",
        }
    }
}

/// One line of the backfill table.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillRow {
    pub period: Option<BillingPeriod>,
    /// The manifest the period was read from (or that failed).
    pub source: String,
    /// Version id (`assemblyId`/`executionId`) now stored or found.
    pub version: Option<String>,
    /// CUR rows read for the stored version.
    pub rows: Option<u64>,
    /// Unblended cost of the stored version, per currency.
    pub total_unblended: BTreeMap<String, Decimal>,
    pub status: PeriodStatus,
    pub reason: Option<String>,
    /// How the failure should be treated (failed rows only).
    #[serde(skip)]
    pub error_class: Option<ErrorClass>,
}

/// Progress notifications (for a progress bar).
#[derive(Debug)]
pub enum BackfillEvent<'a> {
    /// Periods found after filtering; `to_process` of them need reading.
    Planned { periods: usize, to_process: usize },
    /// One period finished (any status).
    Finished(&'a BackfillRow),
}

/// The result of a backfill.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillSummary {
    pub rows: Vec<BackfillRow>,
}

impl BackfillSummary {
    pub fn count(&self, status: PeriodStatus) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    /// The most severe class among failed periods (`Internal` > `External` > `User`).
    pub fn worst_failure(&self) -> Option<ErrorClass> {
        let rank = |c: &ErrorClass| match c {
            ErrorClass::Internal => 2,
            ErrorClass::External => 1,
            ErrorClass::User => 0,
        };
        self.rows.iter().filter_map(|r| r.error_class).max_by_key(rank)
    }

    /// The table printed at the end of `curflow backfill`.
    pub fn table(&self) -> String {
        let total = |r: &BackfillRow| {
            if r.total_unblended.is_empty() {
                "-".to_string()
            } else {
                r.total_unblended.iter().map(|(c, v)| format!("{} {c}", v.normalize())).collect::<Vec<_>>().join(" + ")
            }
        };
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let status = match &r.reason {
                    Some(reason) => format!("{}: {reason}", r.status.label()),
                    None => r.status.label().to_string(),
                };
                [
                    r.period.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                    r.version.clone().unwrap_or_else(|| "-".into()),
                    r.rows.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
                    total(r),
                    status,
                ]
            })
            .collect();
        let mut table =
            crate::output::Table::new(["period", "version", "rows", "total unblended", "status"]).right([2, 3]);
        for row in cells {
            table.row(row);
        }
        let mut out = table.render();
        out.push_str(&format!(
            "{} period(s): {} processed, {} already stored, {} refused, {} failed\n",
            self.rows.len(),
            self.count(PeriodStatus::Processed),
            self.count(PeriodStatus::AlreadyStored),
            self.count(PeriodStatus::Refused),
            self.count(PeriodStatus::Failed)
        ));
        out
    }
}

fn unblended(totals: &BTreeMap<String, Amounts>) -> BTreeMap<String, Decimal> {
    totals.iter().map(|(c, a)| (c.clone(), a.unblended_cost)).collect()
}

fn failed(candidate_label: String, period: Option<BillingPeriod>, version: Option<String>, e: &Error) -> BackfillRow {
    BackfillRow {
        period,
        source: candidate_label,
        version,
        rows: None,
        total_unblended: BTreeMap::new(),
        status: PeriodStatus::Failed,
        reason: Some(e.to_string()),
        error_class: Some(e.class()),
    }
}

/// Stored unblended totals of a period, per currency.
async fn stored_totals(store: &dyn CostStore, period: BillingPeriod) -> Result<BTreeMap<String, Decimal>> {
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in store.cost_lines(period).await? {
        let total = out.entry(line.key.currency.to_string()).or_default();
        *total = crate::aggregate::add_exact(*total, line.amounts.unblended_cost, || {
            format!("period {period}: the stored total of unblended_cost")
        })?;
    }
    Ok(out)
}

fn in_range(period: Option<BillingPeriod>, options: &BackfillOptions) -> bool {
    match period {
        Some(p) => options.from.is_none_or(|f| p >= f) && options.to.is_none_or(|t| p <= t),
        // A manifest whose period is unknown is reported unless the run is restricted.
        None => options.from.is_none() && options.to.is_none(),
    }
}

/// Runs a backfill of `root` into `store`: enumerates the periods, settles those the store already
/// holds (or holds newer), then scans the rest `options.parallel` at a time and commits each as
/// its scan finishes (one store write at a time).
pub async fn run(
    processor: &Processor,
    store: &mut dyn Store,
    root: &Location,
    s3: Option<&S3Access>,
    options: &BackfillOptions,
    ledger: Option<&LedgerSplit<'_>>,
    on_event: &(dyn Fn(BackfillEvent<'_>) + Sync),
) -> Result<BackfillSummary> {
    if let (Some(from), Some(to)) = (options.from, options.to)
        && from > to
    {
        return Err(Error::Argument(format!("--from {from} is after --to {to}")));
    }
    let candidates = find_periods(root, s3).await?;
    let (mut rows, todo) = plan(processor, store, candidates, options, ledger).await?;
    on_event(BackfillEvent::Planned { periods: rows.len() + todo.len(), to_process: todo.len() });
    for row in &rows {
        on_event(BackfillEvent::Finished(row));
    }

    let parallel = options.parallel.max(1);
    let mut scans = futures::stream::iter(todo)
        .map(|(label, found)| async move {
            let period = found.period();
            let version = found.version.id.clone();
            let scanned = match found.resolve(s3).await {
                Ok(delivery) => processor.scan(&delivery, &|_| {}).await.map(|s| (delivery, s)),
                Err(e) => Err(e.into()),
            };
            (label, period, version, scanned)
        })
        .buffer_unordered(parallel);
    while let Some((label, period, version, scanned)) = scans.next().await {
        let committed = match scanned {
            Ok((delivery, s)) => {
                let mut done = commit_scanned(processor, store, ledger, s).await;
                // An older version switched the period while this one was written (a streamed
                // write cannot be replayed): read the delivery again, once.
                if matches!(done, Err(Error::Store(curflow_store::Error::Superseded { .. }))) {
                    tracing::info!(period = %period, manifest = %label, "backfill: superseded while writing; reading the delivery again");
                    done = match processor.scan(&delivery, &|_| {}).await {
                        Ok(s) => commit_scanned(processor, store, ledger, s).await,
                        Err(e) => Err(e),
                    };
                }
                done
            }
            Err(e) => Err(e),
        };
        let row = match committed {
            Ok(report) => processed_row(label, &report, store).await?,
            Err(e) => {
                tracing::warn!(period = %period, manifest = %label, error = %e, "backfill: period failed");
                failed(label, Some(period), Some(version), &e)
            }
        };
        on_event(BackfillEvent::Finished(&row));
        rows.push(row);
    }
    rows.sort_by(|a, b| (a.period, &a.source).cmp(&(b.period, &b.source)));
    Ok(BackfillSummary { rows })
}

/// Stores a scanned delivery, split with the ledger's drivers for its period when one is given.
async fn commit_scanned(
    processor: &Processor,
    store: &mut dyn Store,
    ledger: Option<&LedgerSplit<'_>>,
    scanned: super::ScannedDelivery,
) -> Result<PeriodReport> {
    let scanned = match ledger {
        None => scanned,
        Some(ledger) => {
            let inputs = ledger.inputs(store, scanned.period).await?;
            processor.attribute_scanned(scanned, inputs)?
        }
    };
    processor.commit(store, scanned).await
}

/// Splits the candidates in range into rows settled without reading data (already stored, refused
/// as older, unreadable manifest) and the manifests to scan.
async fn plan(
    processor: &Processor,
    store: &dyn Store,
    candidates: Vec<PeriodCandidate>,
    options: &BackfillOptions,
    ledger: Option<&LedgerSplit<'_>>,
) -> Result<(Vec<BackfillRow>, Vec<(String, ManifestRef)>)> {
    let force = processor.options().force;
    let mut rows: Vec<BackfillRow> = Vec::new();
    let mut todo = Vec::new();
    for PeriodCandidate { label, period, manifest } in candidates {
        if !in_range(period, options) {
            continue;
        }
        let found = match manifest {
            Ok(m) => m,
            Err(e) => {
                rows.push(failed(label, period, None, &Error::from(e)));
                continue;
            }
        };
        let stored = store.period(found.period()).await?;
        // With the ledger, each period's lines are made from its own days' drivers.
        let inputs = match ledger {
            Some(ledger) => processor.inputs_with(&ledger.inputs(store, found.period()).await?),
            None => processor.inputs().to_string(),
        };
        let incoming = MadeFrom { version: &found.version, inputs: Some(&inputs) };
        match decide(stored.as_ref().map(MadeFrom::record), incoming, force) {
            ReplaceOutcome::Replaced { .. } => todo.push((label, found)),
            ReplaceOutcome::Unchanged => {
                let record = stored.ok_or_else(|| Error::Internal("unchanged without a stored period".into()))?;
                rows.push(BackfillRow {
                    period: Some(record.period),
                    source: label,
                    version: Some(record.version.id.clone()),
                    rows: Some(record.rows_read),
                    total_unblended: stored_totals(store, record.period).await?,
                    status: PeriodStatus::AlreadyStored,
                    reason: None,
                    error_class: None,
                });
            }
            ReplaceOutcome::RefusedOlder { stored: newer } => rows.push(BackfillRow {
                period: Some(found.period()),
                source: label,
                version: Some(newer.id.clone()),
                rows: stored.as_ref().map(|r| r.rows_read),
                total_unblended: stored_totals(store, found.period()).await?,
                status: PeriodStatus::Refused,
                reason: Some(format!(
                    "the store holds version {} ({}), newer than {} ({})",
                    newer.id, newer.time, found.version.id, found.version.time
                )),
                error_class: None,
            }),
        }
    }
    Ok((rows, todo))
}

async fn processed_row(label: String, report: &PeriodReport, store: &dyn CostStore) -> Result<BackfillRow> {
    let (status, reason) = match &report.outcome {
        ReplaceOutcome::Replaced { .. } => (PeriodStatus::Processed, None),
        // Another writer stored this or a newer version while we were scanning.
        ReplaceOutcome::Unchanged => (PeriodStatus::AlreadyStored, None),
        ReplaceOutcome::RefusedOlder { stored } => {
            (PeriodStatus::Refused, Some(format!("the store holds a newer version {} ({})", stored.id, stored.time)))
        }
    };
    let (version, rows, totals) = match status {
        PeriodStatus::Processed => (report.version.id.clone(), report.rows_read, unblended(&report.totals)),
        _ => {
            let record = store.period(report.period).await?;
            let version = record.as_ref().map(|r| r.version.id.clone()).unwrap_or_default();
            (version, record.map(|r| r.rows_read).unwrap_or(0), stored_totals(store, report.period).await?)
        }
    };
    Ok(BackfillRow {
        period: Some(report.period),
        source: label,
        version: Some(version),
        rows: Some(rows),
        total_unblended: totals,
        status,
        reason,
        error_class: None,
    })
}
