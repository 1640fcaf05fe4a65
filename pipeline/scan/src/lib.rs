//! curflow's input side: from the paths a user gives to grouped cost lines.
//!
//! * [`location`]: local paths and `s3://` names, one reader for both;
//! * [`discover`]: manifests and AWS layouts → deliveries (one billing period's files + version);
//! * [`schema`]: which columns a file has and which format it is (legacy CUR, CUR 2.0);
//! * the scan itself (this module): each file through the fast path or a DataFusion plan.
//!
//! Scanning CUR files through DataFusion, one file at a time.
//!
//! Each file gets its own streaming plan ([`plan::aggregate_file`]): errors then name the file,
//! per-file row counts come for free, and memory is bounded by the number of groups, not rows.
//! Files of a delivery run concurrently (see `process`).
//!
//! Local files and S3 objects (`s3://bucket/key` names, see `location`) take the same plan. For S3
//! the bucket's `object_store` is registered in the session, so DataFusion reads Parquet with range
//! GETs (footer, then the projected column chunks) and streams CSV; nothing is copied to disk.
//! Memory is bounded by [`EngineOptions::memory_limit_bytes`], split in two pools: half for the
//! Parquet fast path's group tables (a file whose tables outgrow it is scanned by the generic plan
//! instead), half for DataFusion's plan, whose aggregation state beyond it spills to
//! [`SpillOptions::dir`], capped at [`SpillOptions::max_bytes`]. Two pools, because the fast
//! path's tables cannot spill: in one pool they could take all of it, and a generic plan running
//! beside them (another file of the delivery, or the same file scanned again) would then fail
//! with "resources exhausted" instead of spilling.

pub mod discover;
pub mod error;
mod fast;
mod inspect;
pub mod location;
pub mod plan;
pub mod schema;
pub mod udf;
mod unzip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Decimal256Type, Field, Int64Type, Schema};
use chrono::NaiveDate;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable, execute_stream};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use rust_decimal::Decimal;

use crate::discover::{DataFile, FileKind};
pub use crate::error::{BadValueInRow, Error, Result};
pub use crate::fast::{Absorbed, FastGroups};
use crate::location::{Location, S3Access};
use crate::schema::resolve::{resolve_csv, resolve_parquet};
use crate::schema::{CurFormat, ResolvedColumns, TenantSource};
use curflow_model::aggregate::{Amounts, CostKey};
use curflow_model::line_item::LineItemKind;
use curflow_model::money::{MONEY_SCALE, QUANTITY_SCALE, scaled_to_decimal};
use curflow_model::period::BillingPeriod;
use curflow_model::{Billing, BillingParts, Invoices, Names};
use udf::Udfs;

/// Engine settings (see `Config` for the documented defaults).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// DataFusion partitions per file (parallelism across row groups).
    pub target_partitions: usize,
    /// Memory for the engine, in bytes: half for the fast path's group tables, half for
    /// DataFusion's pool (aggregation spills to disk beyond it).
    pub memory_limit_bytes: usize,
    /// Rows per Arrow batch.
    pub batch_size: usize,
}

impl EngineOptions {
    /// The fast path's share of [`EngineOptions::memory_limit_bytes`] (see the module docs).
    pub fn fast_path_bytes(&self) -> usize {
        self.memory_limit_bytes / 2
    }

    /// Parquet row groups being read at once, in compressed bytes of the columns read: a quarter
    /// of [`EngineOptions::memory_limit_bytes`] on top of it (at least one row group). The
    /// Parquet reader fetches a row group's column chunks whole before decoding them (a 1M-row
    /// CUR row group: ~60 MB of the columns curflow reads), and each partition of each file
    /// scanned at once holds one: files and partitions are held back to stay within this.
    pub fn read_budget_bytes(&self) -> usize {
        self.memory_limit_bytes / 4
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            target_partitions: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            memory_limit_bytes: 1 << 30,
            batch_size: 8192,
        }
    }
}

/// Where the engine spills aggregation state that does not fit its memory pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillOptions {
    /// Directory for temporary spill files (default: the OS temp dir).
    pub dir: Option<PathBuf>,
    /// Most bytes the spill files may take together; beyond it the scan fails with a
    /// resources-exhausted error (retryable) instead of filling the disk.
    pub max_bytes: u64,
}

/// What one file contributed.
#[derive(Debug, Clone)]
pub struct FileScan {
    pub path: PathBuf,
    pub format: CurFormat,
    /// Rows in the file.
    pub rows_read: u64,
    /// Rows dropped as split-cost-allocation children.
    pub split_child_rows: u64,
    /// Whether the tenant tag exists in this file at all.
    pub tenant_tag_present: bool,
    /// Whether the net-unblended column exists in this file.
    pub net_columns_present: bool,
    /// A CUR's commitment columns this file lacks, by commitment field
    /// ([`schema::COMMITMENT_COLS`] order), spelled as the file's format names them: the amortized
    /// cost and true-up of the line-item types that read one count it as 0 (a report made before
    /// AWS added the column, or one edited by hand), which the run summary says. Empty for FOCUS.
    pub absent_commitment_columns: Vec<(usize, String)>,
    pub groups: Vec<(BillingPeriod, CostKey, Amounts)>,
    /// Invoice ids on the file's rows, per billing period.
    pub invoices: BTreeMap<BillingPeriod, Invoices>,
    /// Bytes the generic plan's aggregation spilled to `spill-dir` to stay within
    /// `memory-limit-mb` (0 on the fast path, which hands a file that outgrows the limit to it).
    pub spilled_bytes: u64,
    /// Whether merging this file's fast-path groups took the delivery's tables past their share of
    /// `memory-limit-mb`, so they were built into cost lines before the next file (set by the
    /// caller that merges deliveries; see `curflow::process`).
    pub tables_flushed: bool,
}

impl FileScan {
    /// What a file contributed; rows the groups do not count were split-cost child rows.
    fn new(
        path: &Path,
        cols: &ResolvedColumns,
        rows_read: u64,
        groups: Vec<(BillingPeriod, CostKey, Amounts)>,
        invoices: BTreeMap<BillingPeriod, Invoices>,
    ) -> Self {
        let summed: u64 = groups.iter().map(|(_, _, a)| a.line_items).sum();
        Self::counted(path, cols, rows_read, summed, groups, invoices)
    }

    /// [`FileScan::new`] for groups kept elsewhere (in codes, see [`FastGroups`]), which summed
    /// `summed` rows.
    fn counted(
        path: &Path,
        cols: &ResolvedColumns,
        rows_read: u64,
        summed: u64,
        groups: Vec<(BillingPeriod, CostKey, Amounts)>,
        invoices: BTreeMap<BillingPeriod, Invoices>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            format: cols.format,
            rows_read,
            split_child_rows: rows_read.saturating_sub(summed),
            tenant_tag_present: cols.tenant != TenantSource::Absent,
            net_columns_present: cols.name(schema::Col::NetUnblendedCost).is_some(),
            absent_commitment_columns: absent_commitment_columns(cols),
            groups,
            invoices,
            spilled_bytes: 0,
            tables_flushed: false,
        }
    }
}

/// The commitment columns a CUR file lacks (see [`FileScan::absent_commitment_columns`]).
fn absent_commitment_columns(cols: &ResolvedColumns) -> Vec<(usize, String)> {
    if cols.format.is_focus() {
        return Vec::new();
    }
    let csv = cols.format == CurFormat::LegacyCsv;
    schema::COMMITMENT_COLS
        .iter()
        .enumerate()
        .filter(|(_, col)| cols.name(**col).is_none())
        .map(|(field, col)| (field, if csv { col.spec().csv_name.to_string() } else { col.parquet_name() }))
        .collect()
}

/// A generic plan run: the executed plan (for its metrics), the file's groups and its invoices.
type Executed = (Arc<dyn ExecutionPlan>, Vec<(BillingPeriod, CostKey, Amounts)>, BTreeMap<BillingPeriod, Invoices>);

/// A DataFusion session configured for CUR scans, plus curflow's functions.
pub struct Engine {
    ctx: SessionContext,
    udfs: Udfs,
    s3: Option<S3Access>,
    /// Where zip archives are extracted (the spill directory; the OS temp dir when `None`).
    temp_dir: Option<PathBuf>,
    /// The fast path's group tables' pool (half of `memory_limit_bytes`; DataFusion has the rest).
    fast_pool: Arc<dyn MemoryPool>,
    /// Generic plans run under its read side, side by side; a plan that ran out of memory beside
    /// the others runs again under its write side, alone with the whole pool.
    plan_gate: tokio::sync::RwLock<()>,
    /// Generic plans run again alone so far (see `plan_gate`).
    plans_rerun: std::sync::atomic::AtomicUsize,
    /// Parquet row groups in flight, in KiB of [`EngineOptions::read_budget_bytes`]: a file's
    /// scan holds one row group's worth per partition it runs (see [`Engine::reading`]).
    read_gate: Arc<tokio::sync::Semaphore>,
    read_budget_kib: u32,
    /// The most KiB held at once so far (tests; see `read_gate`).
    reading_peak_kib: std::sync::atomic::AtomicU32,
    /// Caps the fast path's packed key (tests force the fallback to the generic plan with it).
    #[cfg(test)]
    fast_key_bits: Option<u32>,
}

impl Engine {
    pub fn new(options: &EngineOptions) -> Result<Self> {
        Self::with_spill(options, None)
    }

    /// An engine whose spill files go to `spill` (directory and size cap).
    pub fn with_spill(options: &EngineOptions, spill: Option<&SpillOptions>) -> Result<Self> {
        let mut config = SessionConfig::new()
            .with_target_partitions(options.target_partitions.max(1))
            .with_batch_size(options.batch_size.max(1024));
        config.options_mut().execution.parquet.pushdown_filters = false;
        let fast_bytes = options.fast_path_bytes();
        let read_budget_kib = u32::try_from(options.read_budget_bytes() >> 10).unwrap_or(u32::MAX).max(1);
        let plan_bytes = options.memory_limit_bytes - fast_bytes;
        // Tracked: a "resources exhausted" error names the consumers holding the most memory.
        let top = std::num::NonZeroUsize::new(5).unwrap_or(std::num::NonZeroUsize::MIN);
        let pool = TrackConsumersPool::new(FairSpillPool::new(plan_bytes), top);
        let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool));
        let temp_dir = spill.and_then(|s| s.dir.clone());
        if let Some(spill) = spill {
            if let Some(dir) = &spill.dir {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                runtime = runtime.with_temp_file_path(dir.clone());
            }
            runtime = runtime.with_max_temp_directory_size(spill.max_bytes);
        }
        let runtime =
            runtime.build_arc().map_err(|e| Error::Internal(format!("cannot build the query engine: {e}")))?;
        Ok(Self {
            ctx: SessionContext::new_with_config_rt(config, runtime),
            udfs: Udfs::new(),
            s3: None,
            temp_dir,
            fast_pool: Arc::new(GreedyMemoryPool::new(fast_bytes)),
            plan_gate: tokio::sync::RwLock::new(()),
            plans_rerun: std::sync::atomic::AtomicUsize::new(0),
            read_gate: Arc::new(tokio::sync::Semaphore::new(read_budget_kib as usize)),
            read_budget_kib,
            reading_peak_kib: std::sync::atomic::AtomicU32::new(0),
            #[cfg(test)]
            fast_key_bits: None,
        })
    }

    /// How often generic plans that ran out of memory were run again: alone, then alone in one
    /// partition (each counts).
    pub fn plans_rerun(&self) -> usize {
        self.plans_rerun.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lets the engine read `s3://` data files through these clients.
    pub fn set_s3(&mut self, s3: S3Access) {
        self.s3 = Some(s3);
    }

    /// The object store of an S3 bucket, registered in the session on first use.
    fn s3_store(&self, path: &Path, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>> {
        let s3 = self.s3.as_ref().ok_or_else(|| {
            Error::Internal(format!("{}: S3 input without S3 access configured (Processor::with_s3)", path.display()))
        })?;
        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(format!("s3://{bucket}"))
            .map_err(|e| Error::Argument(format!("{}: bad bucket name: {e}", path.display())))?;
        if let Ok(store) = self.ctx.runtime_env().object_store(&url) {
            return Ok(store);
        }
        let store = s3.object_store(bucket)?;
        self.ctx.register_object_store(url.as_ref(), Arc::clone(&store));
        Ok(store)
    }

    /// Scans the CSV inside zip archive `path` (see [`unzip`]): its failures name the archive and
    /// the entry; the scan reports the archive as the file read.
    async fn scan_zip(
        &self,
        path: &Path,
        s3: Option<(Arc<dyn object_store::ObjectStore>, &str)>,
        tag_key: &str,
    ) -> Result<FileScan> {
        let extracted = unzip::extract(path, s3, self.temp_dir.as_deref()).await?;
        let in_zip = |e| Error::InZip { path: path.to_path_buf(), entry: extracted.entry.clone(), source: Box::new(e) };
        let mut scan = Box::pin(self.scan_file(&extracted.file, tag_key)).await.map_err(in_zip)?;
        scan.path = path.to_path_buf();
        Ok(scan)
    }

    /// Scans one file and returns its per-group sums.
    pub async fn scan_file(&self, file: &DataFile, tag_key: &str) -> Result<FileScan> {
        let (mut scan, fast) = self.scan_file_in_codes(file, tag_key).await?;
        if let Some(fast) = fast {
            fast.finish(|period, key, amounts| {
                scan.groups.push((period, key, amounts));
                Ok::<_, Error>(())
            })?;
        }
        Ok(scan)
    }

    /// Like [`Engine::scan_file`], but a file the fast path read keeps its groups in codes
    /// (returned apart; the scan's `groups` is then empty), so a delivery's files can be merged
    /// before any cost line is built ([`FastGroups::absorb`]).
    pub async fn scan_file_in_codes(&self, file: &DataFile, tag_key: &str) -> Result<(FileScan, Option<FastGroups>)> {
        let path = file.path.as_path();
        if file.size == 0 {
            return Err(Error::EmptyFile { path: path.to_path_buf() });
        }
        let path_str = path.to_str().ok_or_else(|| Error::Unsupported {
            path: path.to_path_buf(),
            reason: "the path is not valid UTF-8".into(),
        })?;
        let s3 = match Location::of(path)? {
            Location::S3 { bucket, key } => Some((self.s3_store(path, &bucket)?, key)),
            Location::Local(_) => None,
        };
        // A Parquet file's row groups in flight (one per partition), held until its scan ends;
        // the partitions it may run within the read budget.
        let mut reading = None;
        let mut partitions = self.partitions();
        let (cols, footer_rows, csv_gzip) = match file.kind {
            FileKind::CsvZip => {
                let s3 = s3.as_ref().map(|(store, key)| (Arc::clone(store), key.as_str()));
                return Ok((self.scan_zip(path, s3, tag_key).await?, None));
            }
            FileKind::Parquet => {
                let footer = match &s3 {
                    Some((store, key)) => inspect::parquet_footer_s3(Arc::clone(store), path, key, file.size).await?,
                    None => inspect::parquet_footer(path)?,
                };
                let rows = footer.rows;
                let cols = resolve_parquet(path, &footer.schema, tag_key)?;
                let layout = fast::layout(&footer.schema, &cols);
                // The generic plan reads about the columns the fast path reads; without a layout,
                // every column counts.
                let row_group = footer.largest_row_group_bytes(layout.as_ref().map(fast::FastLayout::projection));
                let (held, allowed) = self.reading(path, row_group, footer.row_groups.len()).await?;
                (reading, partitions) = (Some(held), allowed);
                if let Some(layout) = layout {
                    #[cfg(test)]
                    let layout = match self.fast_key_bits {
                        Some(bits) => layout.with_key_bits(bits),
                        None => layout,
                    };
                    if let Some((scan, groups)) =
                        self.scan_parquet_fast(path, path_str, file.size, &cols, &footer, layout, partitions).await?
                    {
                        return Ok((scan, Some(groups)));
                    }
                    tracing::info!(
                        file = %path.display(),
                        "the group key fields of this file need more than 127 bits together; it takes the generic plan"
                    );
                }
                (cols, Some(rows), None)
            }
            FileKind::Csv { gzip } => {
                let header = match &s3 {
                    Some((store, key)) => inspect::csv_header_s3(Arc::clone(store), path, key, gzip).await?,
                    None => inspect::csv_header(path, gzip)?,
                };
                (resolve_csv(path, &header, tag_key)?, None, Some((gzip, header)))
            }
        };
        let gzip = csv_gzip.as_ref().map(|(gzip, _)| *gzip);
        let header = csv_gzip.as_ref().map(|(_, header)| header.as_slice());
        let ctx = if partitions < self.partitions() { self.with_partitions(partitions) } else { self.ctx.clone() };
        let executed = self.execute_gated(&ctx, path, path_str, header, gzip, &cols).await;
        drop(reading);
        let (physical, groups, invoices) = match executed {
            Ok(done) => done,
            Err(e) => {
                let s3 = s3.as_ref().map(|(store, key)| (Arc::clone(store), key.as_str()));
                return Err(locate_in_s3_csv(e, s3, gzip).await);
            }
        };
        tracing::debug!(
            file = %path.display(),
            metrics = %DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true),
            "scan metrics (EXPLAIN ANALYZE)"
        );
        let rows_read = footer_rows.unwrap_or_else(|| leaf_output_rows(physical.as_ref()));
        let spilled_bytes = spilled_bytes(path, physical.as_ref());
        Ok((FileScan { spilled_bytes, ..FileScan::new(path, &cols, rows_read, groups, invoices) }, None))
    }

    /// [`Self::execute_generic`] beside the other files' plans, once more alone when it ran out
    /// of memory there, and then alone in one partition.
    async fn execute_gated(
        &self,
        ctx: &SessionContext,
        path: &Path,
        path_str: &str,
        header: Option<&[String]>,
        gzip: Option<bool>,
        cols: &ResolvedColumns,
    ) -> Result<Executed> {
        let executed = {
            let _beside_others = self.plan_gate.read().await;
            self.execute_generic(ctx, path, path_str, header, gzip, cols).await
        };
        let e = match executed {
            Err(e) if e.is_memory_exhausted() => e,
            other => return other,
        };
        // Under a tight `memory-limit-mb`, the plans of files scanned at the same time share
        // DataFusion's pool: each operator's fair share can drop below what its aggregation
        // needs even to spill. The file is read again once the others are done, alone with the
        // whole pool.
        tracing::warn!(
            file = %path.display(),
            error = %e,
            "the generic plan ran out of memory (or spill space) beside other files' plans; it is scanned again alone"
        );
        self.plans_rerun.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _alone = self.plan_gate.write().await;
        let partitions = ctx.state().config().target_partitions();
        match self.execute_generic(ctx, path, path_str, header, gzip, cols).await {
            Err(e) if e.is_memory_exhausted() && partitions > 1 => {
                // Alone, each partition's final aggregation still gets only its fair share of
                // the pool, and its table grows in steps of several MB: under ~256 MiB a step
                // can pass that share, and DataFusion fails instead of spilling. In one
                // partition the aggregation's share is the whole pool, so it spills.
                tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    partitions,
                    "the generic plan ran out of memory alone; it is scanned again in one partition"
                );
                self.plans_rerun.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.execute_generic(&self.with_partitions(1), path, path_str, header, gzip, cols).await
            }
            other => other,
        }
    }

    /// The most compressed bytes of Parquet row groups held in flight at once so far (by the
    /// estimate the read budget counts: see [`EngineOptions::read_budget_bytes`]).
    pub fn reading_peak_bytes(&self) -> u64 {
        u64::from(self.reading_peak_kib.load(std::sync::atomic::Ordering::Relaxed)) << 10
    }

    /// The engine with a read budget of `bytes` instead of a quarter of its memory limit.
    #[cfg(test)]
    fn with_read_budget(mut self, bytes: u64) -> Self {
        self.read_budget_kib = u32::try_from(bytes >> 10).unwrap_or(u32::MAX).max(1);
        self.read_gate = Arc::new(tokio::sync::Semaphore::new(self.read_budget_kib as usize));
        self
    }

    /// The partitions per file the engine was configured with (`target-partitions`).
    fn partitions(&self) -> usize {
        self.ctx.state().config().target_partitions()
    }

    /// A context like the engine's (the same memory pool, spill directory and object stores)
    /// whose plans run in `partitions` partitions.
    fn with_partitions(&self, partitions: usize) -> SessionContext {
        let state = self.ctx.state();
        let config = state.config().clone().with_target_partitions(partitions.max(1));
        SessionContext::new_with_state(SessionStateBuilder::new_from_existing(state).with_config(config).build())
    }

    /// Waits until a Parquet file whose largest row group holds `row_group` compressed bytes
    /// (of the columns read) may be read, and returns its hold on the read budget with the
    /// partitions it may run: as many of the engine's (and of its `row_groups`) as fit the
    /// budget one row group each, at least one. A file whose one row group passes the whole
    /// budget takes all of it and is read alone.
    async fn reading(
        &self,
        path: &Path,
        row_group: u64,
        row_groups: usize,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, usize)> {
        let budget = u64::from(self.read_budget_kib);
        let per_partition = (row_group >> 10).max(1);
        let wanted = self.partitions().min(row_groups.max(1));
        let partitions = usize::try_from(budget / per_partition).unwrap_or(usize::MAX).clamp(1, wanted);
        let kib = (per_partition.saturating_mul(partitions as u64)).min(budget);
        let kib = u32::try_from(kib).unwrap_or(self.read_budget_kib);
        if partitions < wanted {
            tracing::debug!(file = %path.display(), row_group_kib = per_partition, budget_kib = budget, partitions,
                "row groups too large to read one per partition within a quarter of memory-limit-mb: fewer partitions");
        }
        let permit = Arc::clone(&self.read_gate)
            .acquire_many_owned(kib)
            .await
            .map_err(|e| Error::Internal(format!("the read budget was closed: {e}")))?;
        let held = self.read_budget_kib - u32::try_from(self.read_gate.available_permits()).unwrap_or(0);
        self.reading_peak_kib.fetch_max(held, std::sync::atomic::Ordering::Relaxed);
        Ok((permit, partitions))
    }

    /// Plans and runs the generic DataFusion aggregate of one file: Parquet, or CSV when `header`
    /// (its column names, all read as text) is given, compressed with gzip when `gzip`.
    async fn execute_generic(
        &self,
        ctx: &SessionContext,
        path: &Path,
        path_str: &str,
        header: Option<&[String]>,
        gzip: Option<bool>,
        cols: &ResolvedColumns,
    ) -> Result<Executed> {
        let df = match header {
            None => {
                let options = ParquetReadOptions { file_extension: "", ..ParquetReadOptions::default() };
                ctx.read_parquet(path_str, options).await.map_err(|e| engine_error(path, e))?
            }
            Some(header) => {
                let schema =
                    Schema::new(header.iter().map(|h| Field::new(h, DataType::Utf8, true)).collect::<Vec<_>>());
                let compression =
                    if gzip == Some(true) { FileCompressionType::GZIP } else { FileCompressionType::UNCOMPRESSED };
                let options = CsvReadOptions::new()
                    .has_header(true)
                    .schema(&schema)
                    .file_extension("")
                    .file_compression_type(compression);
                ctx.read_csv(path_str, options).await.map_err(|e| engine_error(path, e))?
            }
        };
        let plan_df = plan::aggregate_file(df, cols, &self.udfs).map_err(|e| engine_error(path, e))?;
        self.execute(ctx, path, gzip, plan_df, cols).await
    }

    /// Scans a Parquet file in the common layout through [`fast`] (see there for why); `None`
    /// when its key fields do not fit the fast path's packed key. Runs `partitions` partitions
    /// (the read budget's, see [`Engine::reading`]).
    #[expect(clippy::too_many_arguments, reason = "the file's facts, each already at hand in the one caller")]
    async fn scan_parquet_fast(
        &self,
        path: &Path,
        path_str: &str,
        size: u64,
        cols: &ResolvedColumns,
        footer: &inspect::ParquetFooter,
        layout: fast::FastLayout,
        partitions: usize,
    ) -> Result<Option<(FileScan, FastGroups)>> {
        if let Some((i, g)) = footer.row_groups.iter().enumerate().find(|(_, g)| g.start >= size) {
            return Err(Error::BadParquet {
                path: path.to_path_buf(),
                reason: format!("row group {i} starts at byte {} of a {size}-byte file", g.start),
            });
        }
        let ranges = fast::partition_ranges(&footer.row_groups, size, partitions);
        let Some(done) = fast::scan(&self.ctx, &self.fast_pool, path, path_str, size, Arc::new(layout), ranges).await?
        else {
            return Ok(None);
        };
        tracing::debug!(
            file = %path.display(),
            metrics = %DisplayableExecutionPlan::with_metrics(done.plan.as_ref()).indent(true),
            "scan metrics (fast path; the filter, measures and aggregation run in curflow::scan::fast)"
        );
        let summary = done.groups.summary();
        let scan = FileScan::counted(path, cols, footer.rows, summary.rows, Vec::new(), summary.invoices.clone());
        Ok(Some((scan, done.groups)))
    }

    /// Plans and runs one file's aggregate; returns the executed plan (for metrics) and groups.
    async fn execute(
        &self,
        ctx: &SessionContext,
        path: &Path,
        csv_gzip: Option<bool>,
        plan_df: datafusion::dataframe::DataFrame,
        cols: &ResolvedColumns,
    ) -> Result<Executed> {
        let fail = |e: DataFusionError| scan_error(path, csv_gzip, e);
        let physical = plan_df.create_physical_plan().await.map_err(fail)?;
        tracing::debug!(file = %path.display(), plan = %displayable(physical.as_ref()).indent(true), "scan plan");
        let mut stream = execute_stream(Arc::clone(&physical), ctx.task_ctx()).map_err(fail)?;
        let mut groups = Vec::new();
        let mut invoices = BTreeMap::new();
        let mut names = Names::default();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(fail)?;
            decode_groups(path, cols, &batch, &mut groups, &mut invoices, &mut names)?;
        }
        Ok((physical, groups, invoices))
    }
}

/// Adds what only the file itself can tell to a CSV error from an S3 object (local files were
/// already read for it by [`scan_error`]): the line of a bad value, or where a value is not UTF-8.
async fn locate_in_s3_csv(
    e: Error,
    s3: Option<(Arc<dyn object_store::ObjectStore>, &str)>,
    csv_gzip: Option<bool>,
) -> Error {
    let (Some((store, key)), Some(gzip)) = (s3, csv_gzip) else { return e };
    match e {
        Error::BadValue { path, line: None, column, value, expected } => {
            let line = inspect::csv_line_of_s3(store, &path, key, gzip, &column, &value).await;
            Error::BadValue { path, line, column, value, expected }
        }
        Error::BadCsv { path, reason } if is_utf8_error(&reason) => {
            match inspect::csv_invalid_utf8_s3(store, &path, key, gzip).await {
                Some(bad) => not_utf8(&path, bad),
                None => Error::BadCsv { path, reason },
            }
        }
        e => e,
    }
}

/// Bytes the operators of `path`'s executed plan spilled to disk (logged when some did).
fn spilled_bytes(path: &Path, plan: &dyn ExecutionPlan) -> u64 {
    fn sum(plan: &dyn ExecutionPlan) -> u64 {
        let own = plan.metrics().and_then(|m| m.spilled_bytes()).map_or(0, |b| b as u64);
        own + plan.children().iter().map(|c| sum(c.as_ref())).sum::<u64>()
    }
    let bytes = sum(plan);
    if bytes > 0 {
        tracing::info!(file = %path.display(), spilled_bytes = bytes, "the aggregation spilled to stay within memory-limit-mb");
    }
    bytes
}

/// Rows produced by the scan nodes of an executed plan (CSV has no footer to count from).
fn leaf_output_rows(plan: &dyn ExecutionPlan) -> u64 {
    let children = plan.children();
    if children.is_empty() {
        return plan.metrics().and_then(|m| m.output_rows()).map(|r| r as u64).unwrap_or(0);
    }
    children.iter().map(|c| leaf_output_rows(c.as_ref())).sum()
}

fn engine_error(path: &Path, e: DataFusionError) -> Error {
    Error::Engine { path: path.to_path_buf(), source: Box::new(e) }
}

/// Maps an execution error to the most precise [`Error`]: a bad value (with the CSV line), a
/// malformed CSV or Parquet file, or an engine error naming the file.
/// `csv_gzip` is `Some(gzip)` for CSV files.
fn scan_error(path: &Path, csv_gzip: Option<bool>, e: DataFusionError) -> Error {
    if let Some(bad) = find_bad_value(&e) {
        let line = csv_gzip
            .filter(|_| !location::is_s3_path(path))
            .and_then(|gzip| inspect::csv_line_of(path, gzip, &bad.column, &bad.value));
        return Error::BadValue {
            path: path.to_path_buf(),
            line,
            column: bad.column.clone(),
            value: bad.value.clone(),
            expected: bad.expected.clone(),
        };
    }
    match e.find_root() {
        DataFusionError::ArrowError(arrow_err, _) if csv_gzip.is_some() => {
            let reason = arrow_err.to_string();
            let local = csv_gzip.filter(|_| is_utf8_error(&reason) && !location::is_s3_path(path));
            match local.and_then(|gzip| inspect::csv_invalid_utf8(path, gzip)) {
                Some(bad) => not_utf8(path, bad),
                None => Error::BadCsv { path: path.to_path_buf(), reason },
            }
        }
        DataFusionError::ParquetError(pq) => Error::BadParquet { path: path.to_path_buf(), reason: pq.to_string() },
        _ => engine_error(path, e),
    }
}

/// Whether a CSV reader error is about bytes that are not UTF-8.
fn is_utf8_error(reason: &str) -> bool {
    reason.to_ascii_lowercase().contains("utf-8")
}

/// A CSV value that is not UTF-8, as a bad value naming the file, line and column.
fn not_utf8(path: &Path, bad: inspect::InvalidUtf8) -> Error {
    Error::BadValue {
        path: path.to_path_buf(),
        line: Some(bad.line),
        column: bad.column,
        value: bad.value,
        expected: "UTF-8 text (the file holds a byte sequence that is not UTF-8, shown as \u{fffd})".into(),
    }
}

/// Finds a [`BadValueInRow`] raised by a UDF anywhere in an error chain.
fn find_bad_value(e: &DataFusionError) -> Option<&BadValueInRow> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(bad) = err.downcast_ref::<BadValueInRow>() {
            return Some(bad);
        }
        if let Some(DataFusionError::External(inner)) = err.downcast_ref::<DataFusionError>()
            && let Some(bad) = inner.downcast_ref::<BadValueInRow>()
        {
            return Some(bad);
        }
        current = err.source();
    }
    None
}

fn strings(array: &ArrayRef) -> Result<ArrayRef> {
    cast(array, &DataType::Utf8).map_err(|e| Error::Internal(format!("cannot read a group key: {e}")))
}

fn epoch_day(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// The usage start dates accepted on a row of `period`: from the first day of the month before the
/// period to the last day of the month after it. Real CURs carry a few lines just outside their
/// month (credits and refunds dated in the month before, fees dated at the next month's start);
/// dates decades away (1970, 9999) are broken data and would be stored as if real.
pub fn usage_date_window(period: BillingPeriod) -> (NaiveDate, NaiveDate) {
    let first = period.first_day();
    let before = first.pred_opt().map(|d| BillingPeriod::containing(d).first_day()).unwrap_or(first);
    (before, period.next().last_day())
}

/// A row's usage start date must lie in [`usage_date_window`] of its billing period.
pub(crate) fn check_usage_date(path: &Path, column: &str, period: BillingPeriod, date: NaiveDate) -> Result<()> {
    let (from, to) = usage_date_window(period);
    if (from..=to).contains(&date) {
        return Ok(());
    }
    Err(Error::UsageDateOutsidePeriod {
        path: path.to_path_buf(),
        column: column.to_string(),
        value: date.to_string(),
        period: period.to_string(),
        from,
        to,
    })
}

/// Largest magnitude (exclusive) of one scaled amount: 28 digits, so that every value, and every
/// exact total of them, is a `Decimal` (28 significant digits). Money (12 decimal places) is thus
/// below 10^16 and usage quantities (10 places) below 10^18; larger values are bad input.
pub(crate) const SCALED_LIMIT: i128 = curflow_model::money::pow10_i128(28);

/// Whether a scaled amount is below [`SCALED_LIMIT`].
pub(crate) fn scaled_in_range(v: i128) -> bool {
    v.unsigned_abs() < SCALED_LIMIT.unsigned_abs()
}

/// What a value beyond [`SCALED_LIMIT`] should have been, for error messages.
pub(crate) fn amount_limit_text(scale: u32) -> String {
    format!(
        "an amount below 10^{} in magnitude (28 significant digits at {scale} decimal places, the most an \
         exact total holds)",
        28 - scale
    )
}

/// Exact amounts from the aggregate's scaled-integer sums, in [`plan::SUM_COLUMNS`] order (money at
/// [`MONEY_SCALE`], usage at [`QUANTITY_SCALE`]); a sum beyond `Decimal`'s 28 digits is an error.
///
/// The usage sum is every row's usage amount; the group's `usage_amount` is that sum on
/// consumption types and 0 on the others ([`LineItemKind::counts_usage`]). The line-item type is
/// part of every group's key, so one group is all of one kind and this split per group equals
/// summing the consumption rows alone. The pricing quantity is the sum at [`plan::PRICING_SUM`]
/// (FOCUS `PricingQuantity`; the callers put the usage sum there when the file has no such column).
pub(crate) fn amounts_from_scaled(
    path: &Path,
    kind: LineItemKind,
    sums: [i128; plan::MEASURE_SUMS],
    line_items: u64,
) -> Result<Amounts> {
    let amount = |i: usize| -> Result<Decimal> {
        let scale = if plan::is_quantity_sum(i) { QUANTITY_SCALE } else { MONEY_SCALE };
        scaled_to_decimal(sums[i], scale).ok_or_else(|| sum_overflow(path, i))
    };
    let usage = amount(plan::USAGE_SUM)?;
    Ok(Amounts {
        unblended_cost: amount(0)?,
        net_unblended_cost: amount(1)?,
        amortized_cost: amount(2)?,
        ri_sp_trueup: amount(3)?,
        ri_sp_upfront_fees: amount(4)?,
        usage_amount: if kind.counts_usage() { usage } else { Decimal::ZERO },
        pricing_quantity: amount(plan::PRICING_SUM)?,
        list_cost: amount(6)?,
        contracted_cost: amount(7)?,
        line_items,
    })
}

/// Position of `contracted_cost` in [`plan::SUM_COLUMNS`] and of `net_unblended_cost`/`list_cost`,
/// the sums a CUR group's contracted cost is derived from.
const CONTRACTED_SUM: usize = 7;
const NET_SUM: usize = 1;
const LIST_SUM: usize = 6;

/// A CUR group's sums with its contracted cost derived from its net unblended and list cost
/// ([`curflow_model::measures::cur_contracted_cost`]); a FOCUS group's are left as read.
pub(crate) fn with_contracted(
    focus: bool,
    kind: LineItemKind,
    mut sums: [i128; plan::MEASURE_SUMS],
) -> [i128; plan::MEASURE_SUMS] {
    if !focus {
        sums[CONTRACTED_SUM] = curflow_model::measures::cur_contracted_cost(kind, sums[NET_SUM], sums[LIST_SUM]);
    }
    sums
}

/// A group's sum of measure `i` ([`plan::SUM_COLUMNS`]) has no exact `Decimal` (more than 28
/// significant digits): caused by the data, so bad input naming the file and the measure.
#[cold]
fn sum_overflow(path: &Path, i: usize) -> Error {
    Error::SumOutOfRange { path: path.to_path_buf(), measure: plan::SUM_COLUMNS[i] }
}

/// The sums of aggregate row `row` in integer units, with a CUR group's contracted cost derived
/// and, when the file has no pricing-quantity column, the usage sum as pricing quantity.
fn group_sums(
    path: &Path,
    cols: &ResolvedColumns,
    sums: &[&arrow::array::Decimal256Array],
    row: usize,
    kind: LineItemKind,
) -> Result<[i128; plan::MEASURE_SUMS]> {
    let mut scaled = [0i128; plan::MEASURE_SUMS];
    for (i, slot) in scaled.iter_mut().enumerate() {
        if sums[i].is_valid(row) {
            *slot = sums[i].value(row).to_i128().ok_or_else(|| sum_overflow(path, i))?;
        }
    }
    let mut scaled = with_contracted(cols.format.is_focus(), kind, scaled);
    if cols.pricing_quantity.is_none() {
        scaled[plan::PRICING_SUM] = scaled[plan::USAGE_SUM];
    }
    Ok(scaled)
}

/// Converts one batch of aggregate output into keys and exact amounts.
fn decode_groups(
    path: &Path,
    cols: &ResolvedColumns,
    batch: &RecordBatch,
    out: &mut Vec<(BillingPeriod, CostKey, Amounts)>,
    invoices: &mut BTreeMap<BillingPeriod, Invoices>,
    names: &mut Names,
) -> Result<()> {
    let column = |name: &str| {
        batch.column_by_name(name).cloned().ok_or_else(|| Error::Internal(format!("aggregate lost column {name}")))
    };
    let period = column("period_start")?;
    let period = period.as_primitive::<Date32Type>();
    let usage_date = column("usage_date")?;
    let usage_date = usage_date.as_primitive::<Date32Type>();
    let text: Vec<ArrayRef> =
        plan::GROUP_COLUMNS[2..].iter().map(|c| column(c).and_then(|a| strings(&a))).collect::<Result<_>>()?;
    let text: Vec<_> = text.iter().map(|a| a.as_string::<i32>()).collect();
    let sums: Vec<ArrayRef> =
        plan::SUM_COLUMNS[..plan::MEASURE_SUMS].iter().map(|c| column(c)).collect::<Result<_>>()?;
    let sums: Vec<_> = sums.iter().map(|a| a.as_primitive::<Decimal256Type>()).collect();
    let counts = column("line_items")?;
    let counts = counts.as_primitive::<Int64Type>();
    let label = |c: schema::Col| cols.name(c).unwrap_or(c.spec().csv_name).to_string();

    for row in 0..batch.num_rows() {
        let period_day =
            period.is_valid(row).then(|| period.value(row)).and_then(epoch_day).ok_or_else(|| Error::BadValue {
                path: path.to_path_buf(),
                line: None,
                column: label(schema::Col::BillingPeriodStart),
                value: String::new(),
                expected: "a billing period start date on every row".into(),
            })?;
        let period = BillingPeriod::starting_on(period_day)
            .ok_or_else(|| Error::BadBillingPeriod { path: path.to_path_buf(), value: period_day.to_string() })?;
        let usage_date =
            usage_date.is_valid(row).then(|| usage_date.value(row)).and_then(epoch_day).ok_or_else(|| {
                Error::BadValue {
                    path: path.to_path_buf(),
                    line: None,
                    column: label(schema::Col::UsageStart),
                    value: String::new(),
                    expected: "a usage start date on every row".into(),
                }
            })?;
        check_usage_date(path, &label(schema::Col::UsageStart), period, usage_date)?;
        let tenant = text[0].is_valid(row).then(|| names.get(text[0].value(row)));
        let t = |i: usize| if text[i].is_valid(row) { text[i].value(row) } else { "" };
        let billing = BillingParts {
            account_id: t(12),
            account_name: t(13),
            provider: t(14),
            publisher: t(15),
            invoice_issuer: t(16),
            invoice_id: t(8),
        };
        let billing = Billing::intern(billing, names);
        let mut s = |i: usize| names.get(t(i));
        let key = CostKey {
            usage_date,
            tenant,
            service: s(1),
            usage_type: s(2),
            usage_unit: s(7),
            operation: s(3),
            resource_id: s(4),
            line_item_type: s(5),
            currency: s(6),
            account_id: s(9),
            region: s(10),
            account_name: s(11),
            billing,
        };
        let kind = LineItemKind::from_type_name(&key.line_item_type);
        let scaled = group_sums(path, cols, &sums, row, kind)?;
        let amounts = amounts_from_scaled(path, kind, scaled, u64::try_from(counts.value(row)).unwrap_or(0))?;
        invoices.entry(period).or_default().add(text[8].is_valid(row).then(|| text[8].value(row)), amounts.line_items);
        out.push((period, key, amounts));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discover::FileKind;

    /// Issue 17: Parquet row groups in flight are held within a quarter of `memory-limit-mb`.
    /// Two files of several row groups each, scanned at once: a roomy engine reads both files in
    /// two partitions each (four row groups in flight); under a budget of one and a half row
    /// groups each file runs one partition and the second file waits for the first, so one row
    /// group is in flight at a time. Both give the same groups.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parquet_row_groups_in_flight_stay_within_the_read_budget_with_the_same_groups() {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 400_000,
            out_dir: dir.path().join("month"),
            files: Some(2),
            row_group_rows: 50_000,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let files: Vec<DataFile> =
            generated.data_files.iter().map(|p| DataFile::local(p, FileKind::Parquet).unwrap()).collect();
        let footer = inspect::parquet_footer(&files[0].path).unwrap();
        assert!(footer.row_groups.len() >= 4, "{} row groups", footer.row_groups.len());
        let cols = resolve_parquet(&files[0].path, &footer.schema, "accountant_id").unwrap();
        let layout = fast::layout(&footer.schema, &cols).unwrap();
        let row_group = footer.largest_row_group_bytes(Some(layout.projection()));
        assert!(row_group < footer.largest_row_group_bytes(None), "the columns read, not all of them");
        let files = &files;
        let scan_both = |engine: Engine| async move {
            let (a, b) = tokio::join!(
                engine.scan_file(&files[0], "accountant_id"),
                engine.scan_file(&files[1], "accountant_id")
            );
            let mut groups = a.unwrap().groups;
            groups.extend(b.unwrap().groups);
            groups.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
            (groups, engine.reading_peak_bytes())
        };
        let roomy = EngineOptions { target_partitions: 2, ..EngineOptions::default() };
        let (want, roomy_peak) = scan_both(Engine::new(&roomy).unwrap()).await;
        // The two files' largest row groups differ by a few KiB.
        let about = |bytes: u64, row_groups: u64| bytes.abs_diff(row_groups * row_group) < row_groups * row_group / 20;
        assert!(about(roomy_peak, 4), "two files, two partitions each, at once: {roomy_peak} bytes");
        // A read budget (a quarter of the limit) of one and a half row groups; the rest of the
        // limit as it was, so the fast path keeps its tables.
        let tight = Engine::new(&roomy).unwrap().with_read_budget(row_group * 3 / 2);
        let (got, tight_peak) = scan_both(tight).await;
        assert!(about(tight_peak, 1), "one row group in flight at a time: {tight_peak} bytes");
        assert_eq!(got, want);
    }

    /// Small row groups make every dictionary change several times within a partition, so keys
    /// are re-packed as columns grow; capping the key at 8 bits sends the file to the generic plan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fast_path_with_growing_keys_and_its_fallback_both_equal_the_generic_plan() {
        fast_path_equals_the_generic_plan(curflow_fixtures::Format::LegacyParquet).await;
    }

    /// CUR 2.0 Parquet takes the fast path too: its tenant is a `resource_tags` map key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cur2_parquet_takes_the_fast_path_and_equals_the_generic_plan() {
        fast_path_equals_the_generic_plan(curflow_fixtures::Format::Cur2Parquet).await;
    }

    /// FOCUS Parquet takes the fast path too: `BilledCost` and `EffectiveCost` summed as they are.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn focus_parquet_takes_the_fast_path_and_equals_the_generic_plan() {
        fast_path_equals_the_generic_plan(curflow_fixtures::Format::Focus12).await;
    }

    /// Issue 17: the fast path's tables are accounted against the memory pool. A realistic month
    /// whose groups outgrow a small `memory-limit-mb` leaves the fast path for the generic plan,
    /// which spills its aggregation to the spill directory, and gives exactly the same groups.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_month_beyond_the_memory_limit_spills_and_gives_the_same_groups() {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 400_000,
            tenants: 2_000,
            out_dir: dir.path().join("month"),
            files: Some(1),
            profile: curflow_fixtures::Profile::Saas,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let file = DataFile::local(&generated.data_files[0], FileKind::Parquet).unwrap();
        let options = EngineOptions { target_partitions: 2, batch_size: 4096, ..EngineOptions::default() };
        let roomy = Engine::new(&options).unwrap().scan_file(&file, "accountant_id").await.unwrap();
        assert_eq!(roomy.spilled_bytes, 0, "the fast path within the default limit");
        let spill = SpillOptions { dir: Some(dir.path().join("spill")), max_bytes: 1 << 30 };
        let tight = EngineOptions { memory_limit_bytes: SPILL_TEST_LIMIT, batch_size: 2048, target_partitions: 1 };
        let small = Engine::with_spill(&tight, Some(&spill)).unwrap().scan_file(&file, "accountant_id").await.unwrap();
        assert!(small.spilled_bytes > 0, "the aggregation spilled under {SPILL_TEST_LIMIT} bytes");
        assert_eq!((small.rows_read, small.invoices.clone()), (roomy.rows_read, roomy.invoices.clone()));
        let merge = |groups: Vec<(BillingPeriod, CostKey, Amounts)>| {
            let mut merged: BTreeMap<(BillingPeriod, CostKey), Amounts> = BTreeMap::new();
            for (p, k, a) in groups {
                merged.entry((p, k)).or_default().add(&a).unwrap();
            }
            merged
        };
        let (with_spill, without) = (merge(small.groups), merge(roomy.groups));
        assert!(without.len() > 20_000, "{} groups", without.len());
        assert_eq!(with_spill, without);
    }

    /// Issue 17: under a tight `memory-limit-mb`, files scanned at the same time share the generic
    /// plan's pool, and one plan can run out of it even though it would fit alone. Here "another
    /// file's plan" holds the whole pool (and the gate's shared side): the scan runs out of memory,
    /// waits until the other plan is done, runs again alone and gives the groups of a roomy scan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plan_out_of_memory_beside_others_runs_again_alone_with_the_same_groups() {
        use datafusion::execution::memory_pool::MemoryConsumer;
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 20_000,
            tenants: 200,
            out_dir: dir.path().join("month"),
            files: Some(1),
            format: curflow_fixtures::Format::LegacyCsv,
            profile: curflow_fixtures::Profile::Saas,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let file = DataFile::local(&generated.data_files[0], FileKind::Csv { gzip: true }).unwrap();
        let options = EngineOptions { target_partitions: 2, batch_size: 2048, ..EngineOptions::default() };
        let roomy = Engine::new(&options).unwrap().scan_file(&file, "accountant_id").await.unwrap();

        let engine = Engine::new(&options).unwrap();
        let pool = Arc::clone(&engine.ctx.runtime_env().memory_pool);
        let other = MemoryConsumer::new("another file's plan").register(&pool);
        let whole = options.memory_limit_bytes - options.fast_path_bytes();
        other.try_grow(whole).unwrap();
        let other_running = engine.plan_gate.read().await;
        let release = async {
            // The other plan ends once the scan has run out of memory beside it.
            for _ in 0..6_000 {
                if engine.plans_rerun() > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let rerun = engine.plans_rerun();
            drop((other, other_running));
            rerun
        };
        let (scanned, rerun) = tokio::join!(engine.scan_file(&file, "accountant_id"), release);
        let scanned = scanned.unwrap();
        assert_eq!(rerun, 1, "the scan ran out of memory beside the other plan, once");
        assert_eq!(engine.plans_rerun(), 1);
        assert_eq!((scanned.rows_read, scanned.invoices.clone()), (roomy.rows_read, roomy.invoices.clone()));
        let sorted = |mut groups: Vec<(BillingPeriod, CostKey, Amounts)>| {
            groups.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            groups
        };
        let (alone, roomy) = (sorted(scanned.groups), sorted(roomy.groups));
        assert!(roomy.len() > 1_000, "{} groups", roomy.len());
        assert_eq!(alone, roomy);
    }

    /// A delivery's files merged in codes ([`FastGroups::absorb`], then one `finish`) give the
    /// same groups, invoices and row counts as each file's lines merged by their text keys; a
    /// FOCUS file is kept apart from CUR files, untouched.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_merged_in_codes_equal_files_merged_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 60_000,
            tenants: 300,
            out_dir: dir.path().join("month"),
            files: Some(3),
            profile: curflow_fixtures::Profile::Saas,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let options = EngineOptions { target_partitions: 2, batch_size: 2048, ..EngineOptions::default() };
        let engine = Engine::new(&options).unwrap();
        let merge = |groups: Vec<(BillingPeriod, CostKey, Amounts)>,
                     into: &mut BTreeMap<(BillingPeriod, CostKey), Amounts>| {
            for (p, k, a) in groups {
                into.entry((p, k)).or_default().add(&a).unwrap();
            }
        };
        let (mut by_text, mut in_codes) = (BTreeMap::new(), None::<FastGroups>);
        let mut rows = 0;
        for path in &generated.data_files {
            let file = DataFile::local(path, FileKind::Parquet).unwrap();
            let scan = engine.scan_file(&file, "accountant_id").await.unwrap();
            let (coded, fast) = engine.scan_file_in_codes(&file, "accountant_id").await.unwrap();
            let Some(fast) = fast else { panic!("the fast path reads the realistic month") };
            assert!(coded.groups.is_empty(), "groups stay in codes");
            assert_eq!((coded.rows_read, coded.split_child_rows), (scan.rows_read, scan.split_child_rows));
            assert_eq!(coded.invoices, scan.invoices);
            let summed: u64 = scan.groups.iter().map(|(_, _, a)| a.line_items).sum();
            assert_eq!(fast.rows_per_period().values().sum::<u64>(), summed);
            rows += summed;
            merge(scan.groups, &mut by_text);
            match &mut in_codes {
                None => in_codes = Some(fast),
                Some(merged) => assert!(matches!(merged.absorb(fast, usize::MAX).unwrap(), Absorbed::Merged)),
            }
        }
        let merged = in_codes.unwrap();
        assert!(merged.len() >= by_text.len(), "a group per distinct key, NULL and blank text apart");
        let mut from_codes = BTreeMap::new();
        let mut lines = Vec::new();
        merged
            .finish(|p, k, a| {
                lines.push((p, k, a));
                Ok::<_, Error>(())
            })
            .unwrap();
        merge(lines, &mut from_codes);
        assert!(by_text.len() > 5_000, "{} groups", by_text.len());
        assert_eq!(from_codes.values().map(|a| a.line_items).sum::<u64>(), rows);
        assert_eq!(from_codes, by_text);

        // FOCUS is summed differently: never merged with CUR groups.
        let focus_dir = dir.path().join("focus");
        let focus = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 5_000,
            out_dir: focus_dir,
            files: Some(1),
            format: curflow_fixtures::Format::Focus12,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let cur_file = DataFile::local(&generated.data_files[0], FileKind::Parquet).unwrap();
        let focus_file = DataFile::local(&focus.data_files[0], FileKind::Parquet).unwrap();
        let mut cur = engine.scan_file_in_codes(&cur_file, "accountant_id").await.unwrap().1.unwrap();
        let focus_groups = engine.scan_file_in_codes(&focus_file, "accountant_id").await.unwrap().1.unwrap();
        let before = cur.len();
        let Absorbed::Apart(apart) = cur.absorb(focus_groups, usize::MAX).unwrap() else {
            panic!("FOCUS merged into CUR")
        };
        assert_eq!(cur.len(), before);
        let mut apart_lines = Vec::new();
        (*apart)
            .finish(|p, k, a| {
                apart_lines.push((p, k, a));
                Ok::<_, Error>(())
            })
            .unwrap();
        let alone = engine.scan_file(&focus_file, "accountant_id").await.unwrap();
        assert_eq!(apart_lines, alone.groups);
    }

    /// Past the caller's share (`keep_under`, here 1 byte) a file's groups are still merged, and
    /// `OverBudget` tells the caller (`process::merge_in_codes`) to build their lines now and
    /// start afresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merge_past_the_callers_share_is_over_budget_and_still_merged() {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 40_000,
            tenants: 300,
            out_dir: dir.path().join("month"),
            files: Some(2),
            profile: curflow_fixtures::Profile::Saas,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let options = EngineOptions { target_partitions: 2, batch_size: 2048, ..EngineOptions::default() };
        let engine = Engine::new(&options).unwrap();
        let merge = |groups: Vec<(BillingPeriod, CostKey, Amounts)>,
                     into: &mut BTreeMap<(BillingPeriod, CostKey), Amounts>| {
            for (p, k, a) in groups {
                into.entry((p, k)).or_default().add(&a).unwrap();
            }
        };
        let (mut two_by_text, mut first) = (BTreeMap::new(), None::<FastGroups>);
        for path in &generated.data_files {
            let file = DataFile::local(path, FileKind::Parquet).unwrap();
            merge(engine.scan_file(&file, "accountant_id").await.unwrap().groups, &mut two_by_text);
            let fast = engine.scan_file_in_codes(&file, "accountant_id").await.unwrap().1.unwrap();
            match &mut first {
                None => first = Some(fast),
                Some(merged) => assert!(matches!(merged.absorb(fast, 1).unwrap(), Absorbed::OverBudget)),
            }
        }
        let mut lines = Vec::new();
        first
            .unwrap()
            .finish(|p, k, a| {
                lines.push((p, k, a));
                Ok::<_, Error>(())
            })
            .unwrap();
        let mut two_from_codes = BTreeMap::new();
        merge(lines, &mut two_from_codes);
        assert!(two_by_text.len() > 1_000, "{} groups", two_by_text.len());
        assert_eq!(two_from_codes, two_by_text, "over the share, and merged");
    }

    /// A memory limit the 400,000-row realistic month's groups outgrow on both paths (each gets
    /// half of it), roomy enough for DataFusion's spilling aggregation in batches of 2,048 rows on
    /// one partition (its hash table grows in steps of several MB: with two partitions, each with
    /// a fair share of the plan's half, a step no longer fits and the plan fails instead of
    /// spilling; they need ~256 MiB).
    const SPILL_TEST_LIMIT: usize = 64 << 20;

    async fn fast_path_equals_the_generic_plan(format: curflow_fixtures::Format) {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 30_000,
            out_dir: dir.path().to_path_buf(),
            files: Some(1),
            row_group_rows: 2_000,
            format,
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let reader = std::fs::File::open(&generated.data_files[0]).unwrap();
        let schema =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(reader).unwrap().schema().clone();
        let cols = resolve_parquet(&generated.data_files[0], &schema, "accountant_id").unwrap();
        assert!(fast::layout(&schema, &cols).is_some(), "{format} takes the fast path");
        let file = DataFile::local(&generated.data_files[0], FileKind::Parquet).unwrap();
        let options = EngineOptions { target_partitions: 2, batch_size: 1024, ..EngineOptions::default() };
        let fast = Engine::new(&options).unwrap().scan_file(&file, "accountant_id").await.unwrap();
        let mut capped = Engine::new(&options).unwrap();
        capped.fast_key_bits = Some(8);
        let generic = capped.scan_file(&file, "accountant_id").await.unwrap();
        assert_eq!(fast.rows_read, generated.expected.rows);
        assert_eq!((fast.rows_read, fast.split_child_rows), (generic.rows_read, generic.split_child_rows));
        assert!(format.is_focus() || fast.split_child_rows > 0, "the generator writes split-cost child rows");
        assert_eq!(fast.invoices, generic.invoices);
        // The fast path may split a group across its partitions; merge before comparing.
        let merge = |groups: Vec<(BillingPeriod, CostKey, Amounts)>| {
            let mut merged: BTreeMap<(BillingPeriod, CostKey), Amounts> = BTreeMap::new();
            for (p, k, a) in groups {
                merged.entry((p, k)).or_default().add(&a).unwrap();
            }
            merged
        };
        let (fast_groups, generic_groups) = (merge(fast.groups), merge(generic.groups));
        assert!(fast_groups.len() > 1000, "{} groups", fast_groups.len());
        assert_eq!(fast_groups, generic_groups);
    }

    /// The generic plan's aggregation must be able to spill: a key column that is a constant in
    /// the plan (a column the file lacks, as every legacy CUR lacks the account name, payer name
    /// and provider; the tenant when its tag is absent) made DataFusion run it "partially sorted",
    /// which never spills, and a month of millions of groups failed under any memory limit.
    #[tokio::test]
    async fn the_generic_plan_groups_unsorted_even_when_key_columns_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
            rows: 2_000,
            out_dir: dir.path().to_path_buf(),
            files: Some(1),
            ..curflow_fixtures::GenerateOptions::default()
        })
        .unwrap();
        let path = &generated.data_files[0];
        let reader = std::fs::File::open(path).unwrap();
        let schema =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(reader).unwrap().schema().clone();
        let engine = Engine::new(&EngineOptions { target_partitions: 2, ..EngineOptions::default() }).unwrap();
        for tag_key in ["accountant_id", "no_such_tag"] {
            let cols = resolve_parquet(path, &schema, tag_key).unwrap();
            assert!(cols.name(schema::Col::ProviderName).is_none(), "a legacy CUR has no provider column");
            assert_eq!(matches!(cols.tenant, TenantSource::Absent), tag_key == "no_such_tag");
            let options = ParquetReadOptions { file_extension: "", ..ParquetReadOptions::default() };
            let df = engine.ctx.read_parquet(path.to_str().unwrap(), options).await.unwrap();
            let physical = plan::aggregate_file(df, &cols, &engine.udfs).unwrap().create_physical_plan().await.unwrap();
            let text = displayable(physical.as_ref()).indent(true).to_string();
            assert!(text.contains("AggregateExec"), "{text}");
            assert!(!text.contains("Sorted"), "tag key {tag_key}: an ordered aggregation cannot spill:\n{text}");
        }
    }
}
