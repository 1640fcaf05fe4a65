//! Processing one delivery end to end: version check, scan, merge, verify, replace the period.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::aggregate::{Amounts, CostLine, PeriodAggregate, TypeStats, line_item_types, totals_by_currency};
use crate::attribute::{AttributionInputs, attribute};
use crate::discover::{Delivery, ReportVersion};
use crate::error::{Error, Result};
use crate::period::BillingPeriod;
use crate::scan::{Engine, EngineOptions, FileScan};
use crate::store::{CostStore, PeriodRecord, ReplaceOutcome, decide};

/// How to process (see `Config` for the documented defaults).
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Cost-allocation tag key that names the tenant (`accountant_id`).
    pub tag_key: String,
    /// Replace the stored period even if the delivery is not newer.
    pub force: bool,
    pub engine: EngineOptions,
    /// Files scanned at the same time.
    pub file_concurrency: usize,
}

/// What processing one delivery did, for the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodReport {
    pub period: BillingPeriod,
    pub version: ReportVersion,
    pub source: String,
    pub format: String,
    pub files: usize,
    pub rows_read: u64,
    pub split_child_rows: u64,
    pub line_item_types: BTreeMap<String, TypeStats>,
    /// All lines, per currency.
    pub totals: BTreeMap<String, Amounts>,
    /// Lines without a tenant (the shared pool, reported as `UNATTRIBUTED`), per currency.
    pub unattributed: BTreeMap<String, Amounts>,
    pub tenants: usize,
    pub tenant_tag_present: bool,
    pub net_columns_present: bool,
    pub lines_written: usize,
    pub outcome: ReplaceOutcome,
    /// What attribution did, per currency and measure (when evidence was given).
    pub coverage: Option<curflow_attribution::Coverage>,
    /// True when the version check settled the outcome before any file was read.
    pub scan_skipped: bool,
    pub elapsed: Duration,
}

impl PeriodReport {
    /// Rows per second of scan time.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.rows_read as f64 / secs } else { 0.0 }
    }
}

/// Processes deliveries into a store.
pub struct Processor {
    engine: Engine,
    options: ProcessOptions,
    attribution: Option<AttributionInputs>,
}

impl Processor {
    pub fn new(options: ProcessOptions) -> Result<Self> {
        Ok(Self { engine: Engine::new(&options.engine)?, options, attribution: None })
    }

    /// Splits shared-pool lines to tenants with these inputs before storing.
    pub fn with_attribution(mut self, inputs: AttributionInputs) -> Self {
        self.attribution = Some(inputs);
        self
    }

    /// Processes one delivery. `on_file` is called as each file finishes (progress reporting).
    pub async fn process(
        &self,
        store: &mut dyn CostStore,
        delivery: &Delivery,
        on_file: &(dyn Fn(&FileScan) + Sync),
    ) -> Result<PeriodReport> {
        let started = Instant::now();
        // A manifest names its period: a duplicate or stale event is settled without reading data.
        if let Some(period) = delivery.declared_period() {
            let stored = store.period(period)?;
            let outcome = decide(stored.as_ref().map(|r| &r.version), &delivery.version, self.options.force);
            if !matches!(outcome, ReplaceOutcome::Replaced { .. }) {
                return Ok(self.skipped_report(period, delivery, outcome, started.elapsed()));
            }
        }

        let tag_key = self.options.tag_key.as_str();
        let scans: Vec<FileScan> = futures::stream::iter(delivery.files.iter())
            .map(|file| async move {
                let scan = self.engine.scan_file(file, tag_key).await?;
                on_file(&scan);
                Ok::<_, Error>(scan)
            })
            .buffered(self.options.file_concurrency.max(1))
            .try_collect()
            .await?;

        let period = single_period(delivery, &scans)?;
        let mut aggregate = PeriodAggregate::default();
        for scan in &scans {
            for (p, key, amounts) in &scan.groups {
                aggregate.add(*p, key.clone(), amounts)?;
            }
        }
        let mut lines = aggregate.into_lines();
        let mut coverage = None;
        if let Some(inputs) = &self.attribution {
            let before = totals_by_currency(&lines)?;
            let (attributed, cov) = attribute(lines, inputs)?;
            let after = totals_by_currency(&attributed)?;
            let money = |t: &BTreeMap<String, Amounts>| {
                t.iter().map(|(c, a)| (c.clone(), a.money(), a.usage_amount, a.line_items)).collect::<Vec<_>>()
            };
            if money(&before) != money(&after) {
                return Err(Error::Internal(format!(
                    "period {period}: attribution changed the totals ({before:?} -> {after:?}); nothing written"
                )));
            }
            lines = attributed;
            coverage = Some(cov);
        }
        let record = PeriodRecord {
            period,
            version: delivery.version.clone(),
            format: format_of(&scans),
            source: delivery.describe(),
            files: scans.len() as u64,
            rows_read: scans.iter().map(|s| s.rows_read).sum(),
            split_child_rows: scans.iter().map(|s| s.split_child_rows).sum(),
            tag_key: tag_key.to_string(),
            processed_at: Utc::now(),
        };
        let outcome = store.replace_period(&record, &lines, self.options.force)?;
        let mut report = report(record, &scans, &lines, outcome, started.elapsed())?;
        report.coverage = coverage;
        Ok(report)
    }

    fn skipped_report(
        &self,
        period: BillingPeriod,
        delivery: &Delivery,
        outcome: ReplaceOutcome,
        elapsed: Duration,
    ) -> PeriodReport {
        PeriodReport {
            period,
            version: delivery.version.clone(),
            source: delivery.describe(),
            format: String::new(),
            files: delivery.files.len(),
            rows_read: 0,
            split_child_rows: 0,
            line_item_types: BTreeMap::new(),
            totals: BTreeMap::new(),
            unattributed: BTreeMap::new(),
            tenants: 0,
            tenant_tag_present: false,
            net_columns_present: false,
            lines_written: 0,
            outcome,
            coverage: None,
            scan_skipped: true,
            elapsed,
        }
    }
}

fn format_of(scans: &[FileScan]) -> String {
    let formats: BTreeSet<String> = scans.iter().map(|s| s.format.to_string()).collect();
    formats.into_iter().collect::<Vec<_>>().join(" + ")
}

/// The one billing period of a delivery; files of two periods given as one are an error.
fn single_period(delivery: &Delivery, scans: &[FileScan]) -> Result<BillingPeriod> {
    let mut first: Option<(PathBuf, BillingPeriod)> = None;
    for scan in scans {
        for (p, _, _) in &scan.groups {
            match &first {
                None => first = Some((scan.path.clone(), *p)),
                Some((path, period)) if period != p => {
                    return Err(Error::MixedBillingPeriods {
                        first: path.clone(),
                        first_period: period.to_string(),
                        second: scan.path.clone(),
                        second_period: p.to_string(),
                    });
                }
                Some(_) => {}
            }
        }
    }
    match (first, delivery.manifest.as_ref()) {
        (Some((_, data)), Some(m)) if data != m.period => Err(Error::ManifestPeriodMismatch {
            path: m.path.clone(),
            manifest_period: m.period.to_string(),
            data_period: data.to_string(),
        }),
        (Some((_, data)), _) => Ok(data),
        (None, Some(m)) => Ok(m.period),
        (None, None) => Err(Error::Argument(format!(
            "{}: no cost rows, so the billing period is unknown; process it through its manifest",
            delivery.describe()
        ))),
    }
}

fn report(
    record: PeriodRecord,
    scans: &[FileScan],
    lines: &[CostLine],
    outcome: ReplaceOutcome,
    elapsed: Duration,
) -> Result<PeriodReport> {
    let pool: Vec<CostLine> = lines.iter().filter(|l| l.key.tenant.is_none()).cloned().collect();
    let tenants: BTreeSet<&str> = lines.iter().filter_map(|l| l.key.tenant.as_deref()).collect();
    Ok(PeriodReport {
        period: record.period,
        version: record.version,
        source: record.source,
        format: record.format,
        files: scans.len(),
        rows_read: record.rows_read,
        split_child_rows: record.split_child_rows,
        line_item_types: line_item_types(lines)?,
        totals: totals_by_currency(lines)?,
        unattributed: totals_by_currency(&pool)?,
        tenants: tenants.len(),
        tenant_tag_present: scans.iter().any(|s| s.tenant_tag_present),
        net_columns_present: scans.iter().any(|s| s.net_columns_present),
        lines_written: lines.len(),
        outcome,
        coverage: None,
        scan_skipped: false,
        elapsed,
    })
}
