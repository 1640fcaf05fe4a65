//! Processing one delivery end to end: version check, scan, merge, verify, replace the period.
//!
//! [`Processor::process`] does it all in one call. The three steps are also public so callers can
//! interleave them (several scans at once, one store write at a time): [`Processor::precheck`] settles duplicates and
//! stale deliveries from the manifest without reading data, [`Processor::scan`] reads and
//! aggregates (no store access; safe to run for several periods at once), and
//! [`Processor::commit`] replaces the period atomically. The Lambda handler and `backfill` use the
//! steps; `curflow process` and the tests use `process`.

pub mod backfill;
mod chunks;
mod spill;

pub(crate) use chunks::PeriodChunks;
use spill::Gathering;
pub use spill::{PeriodLines, SortedLines};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;

use crate::aggregate::{Amounts, LineStats, TypeStats};
use crate::attribute::AttributionInputs;
use crate::discover::{DataFile, Delivery, FileKind, ManifestRef, ReportVersion};
use crate::error::{AwsError, AwsErrorKind, Error, ErrorClass, Result};
use crate::location::{Location, S3Access};
use crate::period::BillingPeriod;
use crate::scan::{Absorbed, Engine, EngineOptions, FastGroups, FileScan, SpillOptions};
use crate::store::{CostStore, Invoices, MadeFrom, PeriodRecord, ReplaceOutcome, decide};
use curflow_scan::Error as ScanError;

/// How to process (see `Config` for the documented defaults).
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Cost-allocation tag key that names the tenant (`accountant_id`).
    pub tag_key: String,
    /// Replace the stored period even if the delivery is not newer.
    pub force: bool,
    pub engine: EngineOptions,
    /// Files scanned at the same time; `None`: see [`Self::files_at_once`].
    pub file_concurrency: Option<usize>,
}

/// Files scanned at once by default (`file-concurrency` unset) when they can be split across cores.
pub const DEFAULT_FILE_CONCURRENCY: usize = 2;

/// How often [`Processor::process`] reads a delivery again after an older version switched the
/// period while it was written (`curflow_store::Error::Superseded`: a streamed write cannot be
/// replayed). Each time needs another run to win the race against this one, so it is rare.
const SUPERSEDED_RETRIES: u32 = 2;

/// A delivery read once, before its lines are stored period by period
/// ([`Processor::process_periods`]).
struct ReadPeriods {
    scans: Vec<FileScan>,
    lines: PeriodLines,
    /// Per file, the rows of each billing period.
    rows_per_period: Vec<BTreeMap<BillingPeriod, u64>>,
    spilled: u64,
}

impl ProcessOptions {
    /// How many of `files` are scanned at once: `file-concurrency` when set; otherwise one more
    /// than the partitions per file when a file is gzip CSV, else [`DEFAULT_FILE_CONCURRENCY`].
    ///
    /// Why gzip CSV differs: DataFusion splits a Parquet or plain CSV file across
    /// `target-partitions` cores, but a gzip stream only from its start, so each such file is
    /// inflated and parsed on one core. Two at a time on two cores, the fifth file of a
    /// five-file delivery ran alone with one core idle (measured on a 10M-row legacy CSV.gz
    /// month, README *Performance*).
    pub fn files_at_once(&self, files: &[DataFile]) -> usize {
        match self.file_concurrency {
            Some(n) => n.max(1),
            None if files.iter().any(|f| matches!(f.kind, FileKind::Csv { gzip: true })) => {
                self.engine.target_partitions.max(1) + 1
            }
            None => DEFAULT_FILE_CONCURRENCY,
        }
    }
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
    /// Bytes the scan's aggregation spilled to `spill-dir` to stay within `memory-limit-mb`.
    pub spilled_bytes: u64,
    /// Times the delivery's fast-path group tables reached half of the fast path's share of
    /// `memory-limit-mb` and were built into cost lines before the last file, so that they stop
    /// growing (the later files' groups are then merged into those lines by key).
    pub tables_flushed: usize,
    /// Bytes of the period's cost lines written to `spill-dir` as sorted runs because they
    /// outgrew their share of `memory-limit-mb` (a quarter of it); merged back as they are stored.
    pub lines_spilled_bytes: u64,
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
    attribution: Option<Arc<AttributionInputs>>,
    s3: Option<S3Access>,
    /// Where the period's lines spill beyond their share of the memory limit ([`spill`]).
    spill: SpillOptions,
    /// Fingerprint of the inputs besides the delivery ([`PeriodRecord::inputs`]).
    inputs: String,
}

/// A delivery read and aggregated, not yet written: the output of [`Processor::scan`].
pub struct ScannedDelivery {
    pub period: BillingPeriod,
    pub version: ReportVersion,
    /// The manifest or files it was read from.
    pub source: String,
    pub scans: Vec<FileScan>,
    /// The period's lines as scanned (in memory, or merged from runs on disk as they are read):
    /// split (when `attribution` is set) as they are written.
    pub lines: PeriodLines,
    /// Bytes of `lines` written to spill files ([`PeriodReport::lines_spilled_bytes`]).
    pub lines_spilled_bytes: u64,
    /// What the shared-pool lines among `lines` are split with when they are written
    /// ([`Processor::commit`]): the split's rows go to the store a day at a time, never held whole.
    attribution: Option<Arc<AttributionInputs>>,
    /// The fingerprint of the inputs the lines were made from (see [`PeriodRecord::inputs`]).
    inputs: String,
    started: Instant,
}

impl std::fmt::Debug for ScannedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannedDelivery")
            .field("period", &self.period)
            .field("version", &self.version)
            .field("source", &self.source)
            .field("files", &self.scans.len())
            .field("lines", &self.lines)
            .field("attributed", &self.attribution.is_some())
            .finish_non_exhaustive()
    }
}

impl Processor {
    pub fn new(options: ProcessOptions) -> Result<Self> {
        let inputs = inputs_fingerprint(&options.tag_key, None);
        Ok(Self {
            engine: Engine::new(&options.engine)?,
            options,
            attribution: None,
            s3: None,
            spill: SpillOptions { dir: None, max_bytes: 0 },
            inputs,
        })
    }

    /// Splits shared-pool lines to tenants with these inputs before storing.
    pub fn with_attribution(mut self, inputs: AttributionInputs) -> Self {
        self.set_attribution(Some(inputs));
        self
    }

    /// Splits with `inputs` from now on (`None`: no attribution); a long-lived processor (the
    /// Lambda's) takes the usage ledger's totals of each period before processing it.
    pub fn set_attribution(&mut self, inputs: Option<AttributionInputs>) {
        self.inputs = inputs_fingerprint(&self.options.tag_key, inputs.as_ref());
        self.attribution = inputs.map(Arc::new);
    }

    /// What the stored lines depend on besides the delivery, as a fingerprint: a stored period
    /// made from the same delivery and the same fingerprint is left alone, otherwise recomputed.
    pub fn inputs(&self) -> &str {
        &self.inputs
    }

    /// Reads `s3://` deliveries through these clients.
    pub fn with_s3(mut self, s3: S3Access) -> Self {
        self.engine.set_s3(s3.clone());
        self.s3 = Some(s3);
        self
    }

    /// Spills aggregation state to `spill.dir`, at most `spill.max_bytes` (see [`SpillOptions`]).
    pub fn with_spill(mut self, spill: &SpillOptions) -> Result<Self> {
        let mut engine = Engine::with_spill(&self.options.engine, Some(spill))?;
        if let Some(s3) = &self.s3 {
            engine.set_s3(s3.clone());
        }
        self.engine = engine;
        self.spill = spill.clone();
        Ok(self)
    }

    /// The options this processor runs with.
    pub fn options(&self) -> &ProcessOptions {
        &self.options
    }

    /// Processes one delivery. `on_file` is called as each file finishes (progress reporting).
    pub async fn process(
        &self,
        store: &mut dyn CostStore,
        delivery: &Delivery,
        on_file: &(dyn Fn(&FileScan) + Sync),
    ) -> Result<PeriodReport> {
        // Once more when an older version switched the period while this run wrote (a store that
        // streams the lines cannot write them again: `curflow_store::Error::Superseded`).
        let mut attempt = 0;
        loop {
            if let Some(settled) = self.precheck(store, delivery).await? {
                return Ok(settled);
            }
            let scanned = self.scan(delivery, on_file).await?;
            match self.commit(store, scanned).await {
                Err(Error::Store(e @ curflow_store::Error::Superseded { .. })) if attempt < SUPERSEDED_RETRIES => {
                    tracing::info!(error = %e, "reading the delivery again");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// Settles a delivery without reading data when its manifest names the period and the store
    /// already holds that version (`Unchanged`) or a newer one (`RefusedOlder`): a duplicate or
    /// stale event costs one store read. `None`: the delivery must be scanned.
    pub async fn precheck(&self, store: &dyn CostStore, delivery: &Delivery) -> Result<Option<PeriodReport>> {
        let started = Instant::now();
        let Some(period) = delivery.declared_period() else { return Ok(None) };
        let Some(outcome) = self.settled(store, period, &delivery.version).await? else { return Ok(None) };
        Ok(Some(self.skipped_report(period, delivery, outcome, started.elapsed())))
    }

    /// [`Self::precheck`] from a manifest alone, before its data files are even checked (HEAD):
    /// a duplicate event for the stored version costs one GET and one store read.
    pub async fn precheck_manifest(&self, store: &dyn CostStore, found: &ManifestRef) -> Result<Option<PeriodReport>> {
        let started = Instant::now();
        let Some(outcome) = self.settled(store, found.period(), &found.version).await? else { return Ok(None) };
        let delivery =
            Delivery { manifest: Some(found.manifest.clone()), files: Vec::new(), version: found.version.clone() };
        let mut report = self.skipped_report(found.period(), &delivery, outcome, started.elapsed());
        report.files = found.manifest.keys.len();
        Ok(Some(report))
    }

    /// The outcome when it is settled without reading data (`Unchanged`, `RefusedOlder`).
    async fn settled(
        &self,
        store: &dyn CostStore,
        period: BillingPeriod,
        version: &ReportVersion,
    ) -> Result<Option<ReplaceOutcome>> {
        let stored = store.period(period).await?;
        let incoming = MadeFrom { version, inputs: Some(&self.inputs) };
        let outcome = decide(stored.as_ref().map(MadeFrom::record), incoming, self.options.force);
        Ok((!matches!(outcome, ReplaceOutcome::Replaced { .. })).then_some(outcome))
    }

    /// Reads and aggregates every file of a delivery (the shared pool, when attribution is
    /// configured, is split as it is written: [`Self::commit`]). Touches no store. For S3 deliveries, every file is checked again after the
    /// read: a file replaced meanwhile (a new delivery being written) makes the result a retryable
    /// error instead of a mix of two versions.
    pub async fn scan(&self, delivery: &Delivery, on_file: &(dyn Fn(&FileScan) + Sync)) -> Result<ScannedDelivery> {
        let started = Instant::now();
        let (scans, gathered, _) = self.scan_files(delivery, on_file).await?;
        let period = single_period(delivery, &scans)?;
        tracing::debug!(
            lines = gathered.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "lines built; sorting"
        );
        let spilled = gathered.spilled_bytes();
        self.finish(delivery, period, scans, gathered.into_lines()?, spilled, started)
    }

    /// Like [`Self::process`], but files given without a manifest that hold rows of several
    /// billing periods (a FOCUS or CUR file exported for a date range) are stored as one period
    /// each, every period deciding and replacing on its own; the report of each period counts the
    /// rows of that period (a file's split-cost child rows count with its first period). A
    /// delivery with a manifest is one period, as in [`Self::process`].
    pub async fn process_periods(
        &self,
        store: &mut dyn CostStore,
        delivery: &Delivery,
        on_file: &(dyn Fn(&FileScan) + Sync),
    ) -> Result<Vec<PeriodReport>> {
        if delivery.manifest.is_some() {
            return Ok(vec![self.process(store, delivery, on_file).await?]);
        }
        let started = Instant::now();
        let (scans, gathered, rows_per_period) = self.scan_files(delivery, on_file).await?;
        let periods: BTreeSet<BillingPeriod> = scans.iter().flat_map(|s| s.invoices.keys().copied()).collect();
        let spilled = gathered.spilled_bytes();
        if periods.len() <= 1 {
            let period = single_period(delivery, &scans)?;
            let scanned = self.finish(delivery, period, scans, gathered.into_lines()?, spilled, started)?;
            return match self.commit(store, scanned).await {
                // Read again by `process`, which retries this itself.
                Err(Error::Store(e @ curflow_store::Error::Superseded { .. })) => {
                    tracing::info!(error = %e, "reading the delivery again");
                    Ok(vec![self.process(store, delivery, on_file).await?])
                }
                done => Ok(vec![done?]),
            };
        }
        // Files of several periods (an export of a date range): one period at a time, each
        // period's lines within the same budget as the delivery's ([`spill::ByPeriod`]). A
        // period an older version switched while it was written cannot be written again from
        // lines already handed out: the delivery is read again for those periods alone.
        let read = ReadPeriods { scans, lines: gathered.into_lines()?, rows_per_period, spilled };
        let (mut reports, mut superseded) = self.commit_by_period(store, delivery, read, None).await?;
        let mut attempt = 0;
        while !superseded.is_empty() {
            if attempt == SUPERSEDED_RETRIES {
                let (_, e) = superseded.pop_first().ok_or_else(|| Error::Internal("no superseded period".into()))?;
                return Err(Error::Store(e));
            }
            attempt += 1;
            tracing::info!(periods = ?superseded.keys().collect::<Vec<_>>(), "reading the delivery again");
            let (scans, gathered, rows_per_period) = self.scan_files(delivery, on_file).await?;
            let spilled = gathered.spilled_bytes();
            let read = ReadPeriods { scans, lines: gathered.into_lines()?, rows_per_period, spilled };
            let only: BTreeSet<BillingPeriod> = superseded.keys().copied().collect();
            let (again, still) = self.commit_by_period(store, delivery, read, Some(&only)).await?;
            reports.extend(again);
            superseded = still;
        }
        reports.sort_by_key(|r| r.period);
        tracing::debug!(periods = reports.len(), elapsed_ms = started.elapsed().as_millis() as u64, "split by period");
        Ok(reports)
    }

    /// Stores each billing period of a delivery's lines on its own, one period at a time
    /// ([`spill::ByPeriod`]), or only the periods in `only`. Returns the reports of the periods
    /// stored and, apart, the periods an older version switched while they were written
    /// (`Superseded`), to be read again; any other error ends the run.
    async fn commit_by_period(
        &self,
        store: &mut dyn CostStore,
        delivery: &Delivery,
        read: ReadPeriods,
        only: Option<&BTreeSet<BillingPeriod>>,
    ) -> Result<(Vec<PeriodReport>, BTreeMap<BillingPeriod, curflow_store::Error>)> {
        let ReadPeriods { scans, lines, rows_per_period, spilled } = read;
        let mut by_period =
            spill::ByPeriod::new(lines, self.lines_budget_bytes(), self.spill.dir.clone(), self.spill.max_bytes);
        if let Some(only) = only {
            by_period = by_period.only(only.clone());
        }
        let mut reports = Vec::new();
        let mut superseded = BTreeMap::new();
        while let Some((period, lines)) = by_period.next_period()? {
            let period_scans: Vec<FileScan> = scans
                .iter()
                .zip(&rows_per_period)
                .filter_map(|(scan, rows)| {
                    let first = scan.invoices.keys().next() == Some(&period);
                    let own = rows.get(&period).copied();
                    (own.is_some() || first).then(|| {
                        let mut s = scan.clone();
                        if s.invoices.len() <= 1 {
                            return s; // a file of one period keeps its own counts
                        }
                        s.rows_read = own.unwrap_or(0) + if first { s.split_child_rows } else { 0 };
                        if !first {
                            s.split_child_rows = 0;
                        }
                        s.invoices.retain(|p, _| *p == period);
                        s
                    })
                })
                .collect();
            let scanned = self.finish(delivery, period, period_scans, lines, spilled, Instant::now())?;
            match self.commit(store, scanned).await {
                Err(Error::Store(e @ curflow_store::Error::Superseded { .. })) => {
                    tracing::info!(error = %e, "period superseded while written; read again after the others");
                    superseded.insert(period, e);
                }
                done => reports.push(done?),
            }
        }
        Ok((reports, superseded))
    }

    /// Memory for a delivery's scanned lines: half of the fast path's share of the memory limit
    /// (its tables the other half); beyond it they are written to spill-dir in sorted runs.
    fn lines_budget_bytes(&self) -> usize {
        self.options.engine.fast_path_bytes() / 2
    }

    /// Scans every file of a delivery and merges their groups; also returns, per file, the rows
    /// of each billing period (the groups' row counts).
    async fn scan_files(
        &self,
        delivery: &Delivery,
        on_file: &(dyn Fn(&FileScan) + Sync),
    ) -> Result<(Vec<FileScan>, Gathering, Vec<BTreeMap<BillingPeriod, u64>>)> {
        let tag_key = self.options.tag_key.as_str();
        // Each file's groups are merged as soon as the file is done, while the next files are still
        // being scanned (their partitions run on the runtime's workers), and moved, not copied:
        // the merge is off the critical path and no file's groups outlive its merge. Files the
        // fast path read are merged in codes (`FastGroups`) and become cost lines once, at the end;
        // the others' lines are merged by their text keys.
        let mut files = futures::stream::iter(delivery.files.iter())
            .map(|file| async move {
                let scanned = self.engine.scan_file_in_codes(file, tag_key).await?;
                on_file(&scanned.0);
                Ok::<_, Error>(scanned)
            })
            .buffered(self.options.files_at_once(&delivery.files));
        // Beyond their budget the lines are written to spill-dir in sorted runs ([`spill`]).
        let mut aggregate = Gathering::new(self.lines_budget_bytes(), self.spill.dir.clone(), self.spill.max_bytes);
        let mut in_codes: Option<FastGroups> = None;
        let mut scans = Vec::with_capacity(delivery.files.len());
        let mut rows_per_period = Vec::with_capacity(delivery.files.len());
        let merged: Result<()> = async {
            while let Some(scanned) = files.next().await {
                let (mut scan, fast) = scanned?;
                let mut rows: BTreeMap<BillingPeriod, u64> = BTreeMap::new();
                if let Some(fast) = fast {
                    rows.clone_from(fast.rows_per_period());
                    scan.tables_flushed =
                        merge_in_codes(&mut in_codes, fast, &mut aggregate, self.options.engine.fast_path_bytes())?;
                }
                if aggregate.is_empty() {
                    aggregate.reserve(scan.groups.len());
                }
                for (p, key, amounts) in std::mem::take(&mut scan.groups) {
                    *rows.entry(p).or_default() += amounts.line_items;
                    aggregate.add(p, key, &amounts)?;
                }
                scans.push(scan);
                rows_per_period.push(rows);
            }
            if let Some(groups) = in_codes.take() {
                // The last lines: nothing is merged into them afterwards (`push_unmerged`).
                if aggregate.is_empty() {
                    aggregate.reserve_unmerged(groups.len());
                }
                groups.finish(|period, key, amounts| aggregate.push_unmerged(period, key, &amounts))?;
            }
            Ok(())
        }
        .await;
        drop(files);
        match merged {
            Ok(()) => self.verify_unchanged(&delivery.files).await?,
            Err(e) if e.class() != ErrorClass::External => {
                // A file that changed under the reader explains a "corrupt" read: retry instead.
                self.verify_unchanged(&delivery.files).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        Ok((scans, aggregate, rows_per_period))
    }

    /// One period's lines of a scanned delivery, to be split when attribution is configured.
    fn finish(
        &self,
        delivery: &Delivery,
        period: BillingPeriod,
        scans: Vec<FileScan>,
        lines: PeriodLines,
        lines_spilled_bytes: u64,
        started: Instant,
    ) -> Result<ScannedDelivery> {
        tracing::debug!(%period, files = scans.len(), ?lines,
            elapsed_ms = started.elapsed().as_millis() as u64, "scanned and merged");
        Ok(ScannedDelivery {
            period,
            version: delivery.version.clone(),
            source: delivery.describe(),
            scans,
            lines,
            lines_spilled_bytes,
            attribution: self.attribution.clone(),
            inputs: self.inputs.clone(),
            started,
        })
    }

    /// Has a delivery scanned without attribution split with `inputs` (a backfill reads the usage
    /// ledger for each period's own days); its record then carries their fingerprint.
    /// The split runs as the period is written ([`Processor::commit`]).
    pub fn attribute_scanned(&self, scanned: ScannedDelivery, inputs: AttributionInputs) -> Result<ScannedDelivery> {
        if self.attribution.is_some() || scanned.attribution.is_some() {
            return Err(Error::Internal(format!("period {} is already attributed", scanned.period)));
        }
        Ok(ScannedDelivery {
            inputs: inputs_fingerprint(&self.options.tag_key, Some(&inputs)),
            attribution: Some(Arc::new(inputs)),
            ..scanned
        })
    }

    /// The fingerprint a delivery processed with `inputs` would be stored with.
    pub fn inputs_with(&self, inputs: &AttributionInputs) -> String {
        inputs_fingerprint(&self.options.tag_key, Some(inputs))
    }

    /// Replaces the period in the store with a scanned delivery (atomically; the store decides
    /// again, so a newer version written meanwhile is not overwritten). With attribution the
    /// shared pool is split here, as the store writes: the split's rows reach the store a day at a
    /// time ([`chunks`]), and a split that fails or does not conserve the input rolls the write
    /// back.
    pub async fn commit(&self, store: &mut dyn CostStore, scanned: ScannedDelivery) -> Result<PeriodReport> {
        let ScannedDelivery {
            period,
            version,
            source,
            scans,
            lines,
            lines_spilled_bytes,
            attribution,
            inputs,
            started,
        } = scanned;
        let record = PeriodRecord {
            period,
            version,
            format: format_of(&scans),
            source,
            files: scans.len() as u64,
            rows_read: scans.iter().map(|s| s.rows_read).sum(),
            split_child_rows: scans.iter().map(|s| s.split_child_rows).sum(),
            tag_key: self.options.tag_key.clone(),
            inputs: Some(inputs),
            processed_at: Utc::now(),
            invoice: invoices_of(period, &scans),
        };
        let writing = Instant::now();
        let mut chunks = match attribution {
            Some(inputs) => PeriodChunks::split(period, lines, inputs)?,
            None => PeriodChunks::ready(period, lines),
        };
        let outcome = store.replace_split_period_chunks(&record, &mut chunks, self.options.force).await;
        if let Some(failure) = chunks.take_failure() {
            return Err(failure);
        }
        let outcome = outcome?;
        // A store that settled the period without writing (already stored, or a newer version)
        // read no line: the report still shows what the delivery holds.
        chunks.finish()?;
        tracing::debug!(%period, lines = chunks.stats().lines(), write_ms = writing.elapsed().as_millis() as u64,
            elapsed_ms = started.elapsed().as_millis() as u64, "stored");
        let mut report = report(record, &scans, chunks.stats(), outcome, started.elapsed())?;
        report.coverage = chunks.take_coverage();
        report.lines_spilled_bytes = lines_spilled_bytes;
        Ok(report)
    }

    /// Re-checks S3 data files after reading: same size and `Last-Modified` as when the delivery
    /// was resolved. Local files are not re-checked (as before S3 support).
    async fn verify_unchanged(&self, files: &[DataFile]) -> Result<()> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        for file in files {
            let Location::S3 { bucket, key } = Location::of(&file.path)? else { continue };
            let now = s3.head(&bucket, &key).await?;
            let changed = match &now {
                None => Some("was deleted".to_string()),
                Some(info) if info.size != file.size || info.modified != file.modified => Some(format!(
                    "changed ({} bytes at {} -> {} bytes at {})",
                    file.size, file.modified, info.size, info.modified
                )),
                Some(_) => None,
            };
            if let Some(what) = changed {
                return Err(Error::Aws(AwsError::new(
                    "S3",
                    "HeadObject",
                    file.path.display().to_string(),
                    format!("{what} while the delivery was being read: a newer delivery is being written; retry later"),
                    AwsErrorKind::Transient,
                )));
            }
        }
        Ok(())
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
            spilled_bytes: 0,
            tables_flushed: 0,
            lines_spilled_bytes: 0,
            lines_written: 0,
            outcome,
            coverage: None,
            scan_skipped: true,
            elapsed,
        }
    }
}

/// The invoice ids of `period` over every file of a delivery.
fn invoices_of(period: BillingPeriod, scans: &[FileScan]) -> Invoices {
    let mut all = Invoices { ids: Vec::new(), rows_without_id: Some(0) };
    for part in scans.iter().filter_map(|s| s.invoices.get(&period)) {
        all.merge(part);
    }
    all
}

fn format_of(scans: &[FileScan]) -> String {
    let formats: BTreeSet<String> = scans.iter().map(|s| s.format.to_string()).collect();
    formats.into_iter().collect::<Vec<_>>().join(" + ")
}

/// The one billing period of a delivery; files of two periods given as one are an error.
/// FOCUS's charge categories: known types of a FOCUS file (its measures are columns, not
/// formulas of the type), though not CUR line-item types.
/// (`UnusedCommitment`: curflow's type for a `Usage` row of unused commitment, known anyway.)
const FOCUS_CHARGE_CATEGORIES: [&str; 5] = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"];

fn known_focus_categories(mut types: BTreeMap<String, TypeStats>, scans: &[FileScan]) -> BTreeMap<String, TypeStats> {
    if !scans.is_empty() && scans.iter().all(|s| s.format.is_focus()) {
        for (name, t) in &mut types {
            t.known |= FOCUS_CHARGE_CATEGORIES.contains(&name.as_str());
        }
    }
    types
}

/// Marks the line-item types whose amortized cost or true-up reads a commitment column some file
/// lacks (`FileScan::absent_commitment_columns`): those measures count it as 0 there, which the
/// run summary and the log say instead of storing a silent zero.
fn missing_commitment_columns(
    mut types: BTreeMap<String, TypeStats>,
    scans: &[FileScan],
) -> BTreeMap<String, TypeStats> {
    for (name, t) in &mut types {
        let needs =
            curflow_model::measures::commitments_read(curflow_model::line_item::LineItemKind::from_type_name(name));
        let missing: BTreeSet<&str> = scans
            .iter()
            .flat_map(|s| &s.absent_commitment_columns)
            .filter(|(field, _)| needs.contains(field))
            .map(|(_, column)| column.as_str())
            .collect();
        if !missing.is_empty() && t.rows > 0 {
            t.missing_columns = missing.into_iter().map(str::to_string).collect();
            tracing::warn!(line_item_type = %name, rows = t.rows, columns = %t.missing_columns.join(", "),
                "the report lacks commitment columns these rows' amortized cost and true-up read; they count 0 there");
        }
    }
    types
}

fn single_period(delivery: &Delivery, scans: &[FileScan]) -> Result<BillingPeriod> {
    let mut first: Option<(PathBuf, BillingPeriod)> = None;
    for scan in scans {
        // Every period with rows has an entry in `invoices` (the groups are merged away by then).
        for p in scan.invoices.keys() {
            match &first {
                None => first = Some((scan.path.clone(), *p)),
                Some((path, period)) if period != p => {
                    return Err(ScanError::MixedBillingPeriods {
                        first: path.clone(),
                        first_period: period.to_string(),
                        second: scan.path.clone(),
                        second_period: p.to_string(),
                    }
                    .into());
                }
                Some(_) => {}
            }
        }
    }
    match (first, delivery.manifest.as_ref()) {
        (Some((_, data)), Some(m)) if data != m.period => Err(ScanError::ManifestPeriodMismatch {
            path: m.path.clone(),
            manifest_period: m.period.to_string(),
            data_period: data.to_string(),
        }
        .into()),
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
    lines: &LineStats,
    outcome: ReplaceOutcome,
    elapsed: Duration,
) -> Result<PeriodReport> {
    Ok(PeriodReport {
        period: record.period,
        version: record.version,
        source: record.source,
        format: record.format,
        files: scans.len(),
        rows_read: record.rows_read,
        split_child_rows: record.split_child_rows,
        line_item_types: missing_commitment_columns(known_focus_categories(lines.line_item_types()?, scans), scans),
        totals: lines.totals()?,
        unattributed: lines.unattributed()?,
        tenants: lines.tenants(),
        tenant_tag_present: scans.iter().any(|s| s.tenant_tag_present),
        net_columns_present: scans.iter().any(|s| s.net_columns_present),
        spilled_bytes: scans.iter().map(|s| s.spilled_bytes).sum(),
        tables_flushed: scans.iter().filter(|s| s.tables_flushed).count(),
        lines_spilled_bytes: 0,
        lines_written: lines.lines(),
        outcome,
        coverage: None,
        scan_skipped: false,
        elapsed,
    })
}

/// Adds one file's fast-path groups to the delivery's (`in_codes`). Groups that cannot be merged
/// in codes (a key that would outgrow 127 bits, FOCUS next to CUR) become lines at once, and
/// tables that outgrow half of the fast path's pool (`pool_bytes`, itself half of
/// `memory-limit-mb`) become lines and start afresh: the aggregate merges lines by their text keys,
/// so every mix gives the same result.
///
/// Why half: the delivery's tables stay reserved in the fast path's pool while the next files are
/// scanned, and tables holding all of it would send every later file to the slower generic plan.
///
/// Returns whether the tables were built into lines for that reason (`tables_flushed`).
fn merge_in_codes(
    in_codes: &mut Option<FastGroups>,
    fast: FastGroups,
    aggregate: &mut Gathering,
    pool_bytes: usize,
) -> Result<bool> {
    let keep_under = pool_bytes / 2;
    let over_budget = match in_codes {
        None => {
            let over = fast.memory_bytes() > keep_under;
            *in_codes = Some(fast);
            over
        }
        Some(merged) => match merged.absorb(fast, keep_under)? {
            Absorbed::Merged => false,
            Absorbed::Apart(fast) => {
                lines_from_codes(*fast, aggregate)?;
                false
            }
            Absorbed::OverBudget => true,
        },
    };
    let Some(merged) = in_codes else { return Ok(false) };
    if over_budget {
        tracing::debug!(
            groups = merged.len(),
            table_mib = merged.memory_bytes() >> 20,
            "the delivery's group tables reached half of the fast path's pool; building their lines now"
        );
        if let Some(full) = in_codes.take() {
            lines_from_codes(full, aggregate)?;
        }
    }
    Ok(over_budget)
}

/// Builds the cost lines of groups in codes into `aggregate`.
fn lines_from_codes(groups: FastGroups, aggregate: &mut Gathering) -> Result<()> {
    aggregate.reserve(groups.len());
    groups.finish(|period, key, amounts| aggregate.add(period, key, &amounts))
}

/// SHA-256 (hex) of the tag key and, when attribution runs, its rules, assignments and the usage
/// totals read from the evidence (what the split depends on, not the files' bytes: evidence that
/// changes nothing the split uses does not trigger a recompute).
pub(crate) fn inputs_fingerprint(tag_key: &str, attribution: Option<&AttributionInputs>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"curflow-inputs-v1\0tag_key\0");
    h.update(tag_key.as_bytes());
    if let Some(a) = attribution {
        h.update(b"\0attribution\0");
        h.update(a.fingerprint_material().as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(kinds: &[FileKind]) -> Vec<DataFile> {
        kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| DataFile { path: PathBuf::from(format!("f{i}")), kind, size: 1, modified: Utc::now() })
            .collect()
    }

    fn options(file_concurrency: Option<usize>, target_partitions: usize) -> ProcessOptions {
        ProcessOptions {
            tag_key: "accountant_id".into(),
            force: false,
            engine: EngineOptions { target_partitions, memory_limit_bytes: 1 << 30, batch_size: 8192 },
            file_concurrency,
        }
    }

    #[test]
    fn gzip_csv_deliveries_scan_one_file_more_than_partitions_unless_configured() {
        let gzip = files(&[FileKind::Csv { gzip: true }; 5]);
        let parquet = files(&[FileKind::Parquet; 5]);
        let plain = files(&[FileKind::Csv { gzip: false }, FileKind::CsvZip]);
        let mixed = files(&[FileKind::Parquet, FileKind::Csv { gzip: true }]);
        assert_eq!(options(None, 2).files_at_once(&gzip), 3);
        assert_eq!(options(None, 4).files_at_once(&gzip), 5);
        assert_eq!(options(None, 2).files_at_once(&mixed), 3);
        assert_eq!(options(None, 2).files_at_once(&parquet), DEFAULT_FILE_CONCURRENCY);
        assert_eq!(
            options(None, 8).files_at_once(&plain),
            DEFAULT_FILE_CONCURRENCY,
            "plain CSV is split by DataFusion"
        );
        assert_eq!(options(Some(1), 2).files_at_once(&gzip), 1, "a configured value applies to every format");
        assert_eq!(options(Some(4), 2).files_at_once(&parquet), 4);
        assert_eq!(options(Some(0), 2).files_at_once(&parquet), 1);
    }
}
