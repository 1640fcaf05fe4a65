//! The fast path for Parquet files in the common layout: text columns, timestamp dates and
//! `double` money (every legacy CUR Parquet delivery seen so far; CUR 2.0 Parquet, whose tenant
//! tag is a key of the `resource_tags` map, looked up per row; FOCUS Parquet, whose measures are
//! its `BilledCost` and `EffectiveCost` columns, summed as they are).
//!
//! The generic plan ([`super::plan`]) is a chain of DataFusion operators: filter, two UDF
//! projections, hash aggregation on string keys. Profiles showed that chain costing as much as the
//! Parquet decode itself: each operator materialises ~20 columns per batch, four measure UDFs
//! each re-read ten money columns, and the group-by hashes and compares 11 string keys per row.
//! Here the scan still goes through DataFusion's Parquet source (streaming, one task per
//! partition = byte range of the file, object stores, the same error reporting), but:
//!
//! * text columns are read as Arrow dictionaries straight from the Parquet dictionary pages
//!   (`PartitionedFile::arrow_schema` hint), so no string is copied per row ([`text`]);
//! * each distinct dictionary value is interned once per column into a small integer, and the
//!   per-value facts (split-cost child operation, line-item kind, reservation ARN present, cleaned
//!   tenant tag) are computed once per distinct value, not per row;
//! * a row's group key is those integers packed into one `u128` ([`key`]), built column by column
//!   from per-dictionary tables;
//! * one row loop sums the *inputs* of the measures per group (unblended, net, quantity, and the
//!   commitment columns only on the rows whose line-item type reads them); the measures
//!   ([`curflow_model::measures`], the same code as the UDFs) are evaluated once per group at the end,
//!   which is exact because every measure is linear in its inputs for a given line-item type
//!   ([`partial`]).
//!
//! Money stays exact: `double` → scaled `i128` by [`curflow_model::money::f64_to_scaled`], sums with
//! `checked_add` (an overflow is an error, never a wrap). Files whose columns have other types
//! (decimal or text money, FOCUS with allocated charges, ...) take the generic plan, and so does a file whose
//! key fields need more than 127 bits together; both paths are covered by the golden tests, which
//! compare every format against the same expected totals.

mod columns;
mod groups;
mod key;
mod partial;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::inspect::RowGroupSpan;
use crate::error::{Error, Result};
use crate::schema::{Col, ResolvedColumns, TenantSource};
use curflow_model::aggregate::{Amounts, CostKey};
use curflow_model::period::BillingPeriod;
use partial::{FileSummary, Partial, Step};

// Text columns, by position in `FastLayout::text`.
const T_TENANT: usize = 0;
const T_SERVICE: usize = 1;
const T_USAGE_TYPE: usize = 2;
const T_OPERATION: usize = 3;
const T_RESOURCE: usize = 4;
const T_LINE_ITEM_TYPE: usize = 5;
const T_CURRENCY: usize = 6;
const T_UNIT: usize = 7;
const T_INVOICE: usize = 8;
const T_ACCOUNT: usize = 9;
const T_REGION: usize = 10;
const T_ACCOUNT_NAME: usize = 11;
// The billing party's parts (`curflow_model::Billing`).
const T_PAYER: usize = 12;
const T_PAYER_NAME: usize = 13;
const T_PROVIDER: usize = 14;
const T_PUBLISHER: usize = 15;
const T_ISSUER: usize = 16;
/// The text columns that are part of the group key: slots `0..KEY_TEXT`.
const KEY_TEXT: usize = 17;
/// `reservation/ReservationARN`; FOCUS `CommitmentDiscountId`.
const T_RI_ARN: usize = 17;
/// FOCUS `ChargeFrequency` (a CUR has none).
const T_FREQUENCY: usize = 18;
/// FOCUS `ChargeClass` (a CUR has none): corrections are dated on their billing period's start.
const T_CLASS: usize = 19;
/// FOCUS `CommitmentDiscountStatus` (a CUR has none): unused commitment has its own line-item type.
const T_STATUS: usize = 20;
const TEXT_COLUMNS: usize = 21;
/// The CUR column of each text slot except the tenant (slot 0, see [`TenantSource`]).
const TEXT_COLS: [Col; TEXT_COLUMNS - 1] = [
    Col::ProductCode,
    Col::UsageType,
    Col::Operation,
    Col::ResourceId,
    Col::LineItemType,
    Col::CurrencyCode,
    Col::PricingUnit,
    Col::InvoiceId,
    Col::UsageAccountId,
    Col::Region,
    Col::UsageAccountName,
    Col::PayerAccountId,
    Col::PayerAccountName,
    Col::ProviderName,
    Col::LegalEntity,
    Col::InvoicingEntity,
    Col::ReservationArn,
    Col::ChargeFrequency,
    Col::ChargeClass,
    Col::CommitmentDiscountStatus,
];

/// Money columns in the order of [`RowInputs`]' fields.
const MONEY_COLS: [Col; 10] = [
    Col::UnblendedCost,
    Col::NetUnblendedCost,
    Col::SavingsPlanEffectiveCost,
    Col::SavingsPlanTotalCommitment,
    Col::SavingsPlanUsedCommitment,
    Col::SavingsPlanAmortizedUpfront,
    Col::ReservationEffectiveCost,
    Col::ReservationUnusedAmortizedUpfrontFee,
    Col::ReservationUnusedRecurringFee,
    Col::ReservationAmortizedUpfrontFee,
];
const M_UNBLENDED: usize = 0;
const M_NET: usize = 1;

/// A needed column: its name (for errors) and its position in the scanned batches.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    index: usize,
}

/// Where the fast path finds each needed column of one file.
#[derive(Debug)]
pub(super) struct FastLayout {
    /// The file's schema with the needed text columns as `Dictionary(Int32, Utf8)`.
    read_schema: SchemaRef,
    /// Indices into `read_schema` of the columns to decode.
    projection: Vec<usize>,
    period: Slot,
    usage_day: Slot,
    text: [Option<Slot>; TEXT_COLUMNS],
    money: [Option<Slot>; 10],
    /// CUR 2.0: the tenant is a key of a map column (`resource_tags['user_<key>']`, then
    /// `tags[...]`), first non-blank value wins; the tenant's text slot then reads these.
    tenant_maps: Vec<(Slot, String)>,
    /// FOCUS: `BilledCost` is summed as unblended and net unblended, `EffectiveCost` (in the
    /// `net` slot, NULL = 0) as amortized; one-time commitment purchases are the upfront fees
    /// (summed like a CUR's RI upfront `Fee` rows) and the rest of billed − effective the true-up.
    focus: bool,
    quantity: Slot,
    /// The list cost (`pricing/publicOnDemandCost`, FOCUS `ListCost`), when the file has it.
    list: Option<Slot>,
    /// FOCUS `ContractedCost`, when the file has it (a CUR's is derived from its groups' sums).
    contracted: Option<Slot>,
    /// FOCUS `PricingQuantity`, when the file has it (otherwise the usage sum is the pricing quantity).
    pricing: Option<Slot>,
    /// Most bits a packed group key may take ([`key::KEY_BITS`]; lower in tests of the fallback).
    key_bits: u32,
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View)
}

fn is_date(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..) | DataType::Date32)
}

/// The fast-path layout of a Parquet file, or `None` when some needed column has a type only the
/// generic plan handles.
pub(super) fn layout(schema: &Schema, cols: &ResolvedColumns) -> Option<FastLayout> {
    // FOCUS: the measures are the provider's columns (`BilledCost`, `EffectiveCost`), summed as
    // they are; allocated charges and curflow's own measure columns take the generic plan.
    let focus = cols.format.is_focus();
    if focus && cols.focus_needs_generic_plan() {
        return None;
    }
    let mut wanted: Vec<usize> = Vec::new();
    let mut types: Vec<DataType> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    let mut want = |name: &str, accept: fn(&DataType) -> bool| -> Option<usize> {
        let index = schema.index_of(name).ok()?;
        let t = schema.field(index).data_type();
        if !accept(t) {
            return None;
        }
        if is_text(t) {
            types[index] = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        }
        wanted.push(index);
        Some(index)
    };
    // A required column: its name and index.
    let mut required =
        |c: Col, accept: fn(&DataType) -> bool| cols.name(c).and_then(|n| want(n, accept).map(|i| (n.to_string(), i)));
    let period = required(Col::BillingPeriodStart, is_date)?;
    let usage_day = required(Col::UsageStart, is_date)?;
    let quantity = required(Col::UsageAmount, |t| matches!(t, DataType::Float64))?;
    let mut text: [Option<(String, usize)>; TEXT_COLUMNS] = Default::default();
    let mut tenant_maps = Vec::new();
    text[T_TENANT] = match &cols.tenant {
        TenantSource::Column(name) => Some((name.clone(), want(name, is_text)?)),
        TenantSource::Absent => None,
        // CUR 2.0 Parquet: the tag is a map key, looked up per row ([`partial`]).
        TenantSource::MapKeys(keys) => {
            let mut first = None;
            for (map, key) in keys {
                let index = want(map, crate::schema::resolve::is_string_map)?;
                first.get_or_insert_with(|| (map.clone(), index));
                tenant_maps.push(((map.clone(), index), key.clone()));
            }
            first
        }
        TenantSource::JsonKeys(_) => return None,
    };
    for (slot, col) in text.iter_mut().skip(1).zip(TEXT_COLS) {
        if let Some(name) = cols.name(col) {
            *slot = Some((name.to_string(), want(name, is_text)?));
        }
    }
    // A money column that may be absent (`Some(None)`); `None` when its type needs the generic plan.
    let mut optional_money = |name: Option<&str>| match name {
        None => Some(None),
        Some(n) => want(n, |t| matches!(t, DataType::Float64)).map(|index| Some((n.to_string(), index))),
    };
    let mut money: [Option<(String, usize)>; 10] = Default::default();
    for (slot, col) in money.iter_mut().zip(MONEY_COLS) {
        *slot = optional_money(cols.name(col))?;
    }
    if focus {
        // The `net` sums hold `EffectiveCost` (net unblended is `BilledCost`, the unblended sum);
        // without the column, amortized is `BilledCost`, as in the generic plan.
        money[M_NET] = optional_money(cols.effective_cost.as_deref())?;
    }
    let [list, contracted, pricing] =
        [cols.name(Col::ListCost), cols.contracted_cost.as_deref(), cols.pricing_quantity.as_deref()]
            .map(&mut optional_money);
    // Required (resolve checks it); the row loop reads it unconditionally.
    cols.name(Col::UnblendedCost)?;

    wanted.sort_unstable();
    wanted.dedup();
    let position = |index: usize| wanted.iter().position(|&w| w == index).unwrap_or(0);
    let slot = |(name, index): (String, usize)| Slot { name, index: position(index) };
    let fields: Vec<Field> =
        schema.fields().iter().zip(types).map(|(f, t)| f.as_ref().clone().with_data_type(t)).collect();
    Some(FastLayout {
        read_schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        period: slot(period),
        usage_day: slot(usage_day),
        quantity: slot(quantity),
        list: list?.map(slot),
        contracted: contracted?.map(slot),
        pricing: pricing?.map(slot),
        text: text.map(|t| t.map(slot)),
        money: money.map(|m| m.map(slot)),
        tenant_maps: tenant_maps.into_iter().map(|(m, key)| (slot(m), key)).collect(),
        focus,
        projection: wanted,
        key_bits: key::KEY_BITS,
    })
}

/// What one file's fast scan produced: its groups, still in codes, and the executed plan (for
/// its metrics).
pub(super) struct FastResult {
    pub groups: FastGroups,
    pub plan: Arc<dyn ExecutionPlan>,
}

/// Fast-path groups still in codes: one file's, or several files' merged.
///
/// A delivery's files are merged in codes ([`FastGroups::absorb`]) and become cost lines once, at
/// the end ([`FastGroups::finish`]): building every file's lines and merging them by their text
/// keys cost a sixth of a realistic month's time and held each file's lines next to the
/// delivery's (see `PeriodAggregate`).
pub struct FastGroups {
    partial: Partial,
    /// The file's other partitions, not merged into `partial`: a delivery's files are merged
    /// partition by partition into the delivery's tables (one probe per group instead of two:
    /// merging a file's partitions first, then the file). Those the key cannot take together stay
    /// here and become lines on their own.
    rest: Vec<Partial>,
    /// The file the tables were made for: named by errors found when the groups are finished.
    path: PathBuf,
    summary: FileSummary,
}

/// What [`FastGroups::absorb`] did.
pub enum Absorbed {
    /// The other file's groups are now part of these.
    Merged,
    /// Not (all) merged (the key fields together would need more than 127 bits, or one file is
    /// FOCUS and the other CUR): the other file's partitions not merged, to finish on their own.
    Apart(Box<FastGroups>),
    /// Merged, but the tables now hold more than `keep_under` bytes or than the fast path's pool
    /// grants (half of `memory-limit-mb`): the caller should finish them into lines and start
    /// afresh.
    OverBudget,
}

impl FastGroups {
    /// Number of groups (future cost lines, before the text keys are merged; a group in two
    /// unmerged partitions counts twice).
    pub fn len(&self) -> usize {
        self.partial.len() + self.rest.iter().map(Partial::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the tables hold (what they reserve from the memory pool).
    pub fn memory_bytes(&self) -> usize {
        self.partial.memory_bytes() + self.rest.iter().map(Partial::memory_bytes).sum::<usize>()
    }

    /// Rows of each billing period in the file these groups came from (before any merge).
    pub fn rows_per_period(&self) -> &BTreeMap<BillingPeriod, u64> {
        &self.summary.rows_per_period
    }

    /// The first file's invoices and counts (see [`Partial::summary`]).
    pub(crate) fn summary(&self) -> &FileSummary {
        &self.summary
    }

    /// Adds another file's groups to these, in these tables' codes; [`Absorbed::OverBudget`] when
    /// the merged tables hold more than `keep_under` bytes (the caller's share for tables kept
    /// across files) or more than the pool grants.
    pub fn absorb(&mut self, other: FastGroups, keep_under: usize) -> Result<Absorbed> {
        let mut over = self.absorb_own_rest()?;
        let FastGroups { partial, rest, path, summary } = other;
        let mut parts = std::iter::once(partial).chain(rest);
        while let Some(part) = parts.next() {
            if self.partial.is_focus() != part.is_focus() || !self.partial.can_absorb(&part) {
                let rest = parts.collect();
                return Ok(Absorbed::Apart(Box::new(FastGroups { partial: part, rest, path, summary })));
            }
            over |= self.absorb_part(&path, part)?;
        }
        Ok(if over || self.memory_bytes() > keep_under { Absorbed::OverBudget } else { Absorbed::Merged })
    }

    /// Merges these tables' own other partitions into the first, where they fit (the first file
    /// of a delivery, or a file finished alone); whether the pool refused the merged bytes.
    fn absorb_own_rest(&mut self) -> Result<bool> {
        let mine = std::mem::take(&mut self.rest);
        let path = self.path.clone();
        let mut over = false;
        for part in mine {
            if self.partial.can_absorb(&part) {
                over |= self.absorb_part(&path, part)?;
            } else {
                self.rest.push(part);
            }
        }
        Ok(over)
    }

    /// Merges one partition (whose key fields `can_absorb` counted); whether the pool refused
    /// the merged tables' bytes.
    fn absorb_part(&mut self, path: &Path, part: Partial) -> Result<bool> {
        match self.partial.absorb(path, part)? {
            Step::Continue => Ok(false),
            Step::OverBudget { .. } => Ok(true),
            // `can_absorb` counted every new value, so the merged fields fit.
            Step::KeyTooWide => {
                Err(Error::Internal(format!("{}: merging its groups needed a wider key than counted", path.display())))
            }
        }
    }

    /// Converts the groups to cost keys and exact amounts, each handed to `sink`.
    pub fn finish<E: From<Error>>(
        self,
        sink: impl FnMut(BillingPeriod, CostKey, Amounts) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut me = self;
        // Merged in codes first: cheaper than building a partition's lines and merging them by text.
        me.absorb_own_rest()?;
        let FastGroups { partial, rest, path, .. } = me;
        let mut sink = sink;
        partial.finish(&path, &mut sink)?;
        for part in rest {
            part.finish(&path, &mut sink)?;
        }
        Ok(())
    }
}

impl FastLayout {
    /// The top-level fields of the file it reads.
    pub(super) fn projection(&self) -> &[usize] {
        &self.projection
    }

    /// Caps the packed key at `bits` (tests force the fallback to the generic plan with it).
    #[cfg(test)]
    pub(super) fn with_key_bits(mut self, bits: u32) -> Self {
        self.key_bits = bits;
        self
    }
}

/// Byte ranges of a file for `partitions` parallel tasks: contiguous runs of row groups with about
/// the same compressed bytes each. DataFusion gives a row group to the range holding its first
/// page; cutting the file into equal byte ranges instead can put two large row groups into one
/// range (the second starts just before the midpoint) and leave the other task idle.
pub(super) fn partition_ranges(row_groups: &[RowGroupSpan], size: u64, partitions: usize) -> Vec<(u64, u64)> {
    let mut groups: Vec<RowGroupSpan> = row_groups.iter().copied().filter(|g| g.start < size).collect();
    groups.sort_by_key(|g| g.start);
    let total: u64 = groups.iter().map(|g| g.bytes).sum();
    let parts = partitions.clamp(1, groups.len().max(1)) as u64;
    // A run ends before the row group whose middle lies past the run's share of the bytes, so
    // each cut is at the row-group boundary closest to an equal split.
    let mut starts = vec![0u64];
    let mut done = 0u64;
    for (i, g) in groups.iter().enumerate() {
        let run = starts.len() as u64;
        if i > 0 && run < parts && done.saturating_add(g.bytes / 2) >= total.saturating_mul(run) / parts {
            starts.push(g.start);
        }
        done = done.saturating_add(g.bytes);
    }
    let mut ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    ranges.push((starts.last().copied().unwrap_or(0), size));
    ranges
}

/// Scans `path` (local or `s3://`, its object store already registered in `ctx`) with one task per
/// byte range (see [`partition_ranges`]), and returns the per-group sums of all ranges; `None`
/// when the file's key fields do not fit a packed key (the caller then takes the generic plan).
pub(super) async fn scan(
    ctx: &SessionContext,
    pool: &Arc<dyn MemoryPool>,
    path: &Path,
    path_str: &str,
    size: u64,
    layout: Arc<FastLayout>,
    ranges: Vec<(u64, u64)>,
) -> Result<Option<FastResult>> {
    let engine = |e: datafusion::error::DataFusionError| super::engine_error(path, e);
    let url = ListingTableUrl::parse(path_str).map_err(engine)?;
    let source = Arc::new(ParquetSource::new(Arc::clone(&layout.read_schema)));
    let offset = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let groups: Vec<FileGroup> = ranges
        .iter()
        .map(|&(start, end)| {
            let mut file = PartitionedFile::new(String::new(), size)
                .with_range(offset(start), offset(end))
                .with_arrow_schema(Arc::clone(&layout.read_schema));
            file.object_meta.location = url.prefix().clone();
            FileGroup::new(vec![file])
        })
        .collect();
    let config = FileScanConfigBuilder::new(url.object_store(), source)
        .with_file_groups(groups)
        .with_projection_indices(Some(layout.projection.clone()))
        .map_err(engine)?
        .build();
    let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
    let task_ctx = ctx.task_ctx();
    // A JoinSet aborts the other partitions' tasks when one fails and this future is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..exec.properties().output_partitioning().partition_count() {
        let mut stream = exec.execute(partition, Arc::clone(&task_ctx)).map_err(engine)?;
        let layout = Arc::clone(&layout);
        let owned_path = path.to_path_buf();
        let reservation = MemoryConsumer::new(format!("curflow fast path[{partition}]")).register(pool);
        tasks.spawn(async move {
            let mut partial = Partial::new(layout, reservation);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| super::scan_error(&owned_path, None, e))?;
                match partial.add(&owned_path, &batch)? {
                    Step::Continue => {}
                    stop => return Ok(Err(stop)),
                }
            }
            Ok::<_, Error>(Ok(partial))
        });
    }
    // The partitions stay apart: the caller merges each into the delivery's tables.
    let mut parts: Vec<Partial> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let partial = joined.map_err(|e| Error::Internal(format!("{}: scan task failed: {e}", path.display())))??;
        // Dropping `tasks` aborts the other partitions.
        let step = match partial {
            Err(stop) => stop,
            Ok(partial) => {
                parts.push(partial);
                Step::Continue
            }
        };
        match step {
            Step::Continue => {}
            Step::KeyTooWide => {
                tracing::info!(file = %path.display(), "key fields too wide for the fast path; the generic plan scans it");
                return Ok(None);
            }
            Step::OverBudget { bytes } => {
                tracing::info!(
                    file = %path.display(),
                    tables_mib = bytes >> 20,
                    fast_pool_mib = pool.reserved() >> 20,
                    "the fast path's group tables outgrow their half of memory-limit-mb; the generic plan scans the \
                     file and spills"
                );
                return Ok(None);
            }
        }
    }
    let mut summary = FileSummary::default();
    for part in &parts {
        summary.combine(part.summary(path)?);
    }
    let mut parts = parts.into_iter();
    let partial = match parts.next() {
        Some(first) => first,
        // No partition at all (a file without row groups): empty tables.
        None => Partial::new(Arc::clone(&layout), MemoryConsumer::new("curflow fast path").register(pool)),
    };
    let groups = FastGroups { partial, rest: parts.collect(), path: path.to_path_buf(), summary };
    Ok(Some(FastResult { groups, plan: exec }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow::datatypes::TimeUnit;

    use super::*;
    use crate::schema::ColumnKind;
    use crate::schema::resolve::resolve_parquet;

    /// The fast path reads the commitment columns in the order the measures index them.
    #[test]
    fn money_columns_end_with_the_commitment_columns_in_measure_order() {
        assert_eq!(MONEY_COLS[2..], crate::schema::COMMITMENT_COLS);
    }

    /// A legacy CUR schema with every known column, money as `money`.
    /// The columns of a legacy report: all but CUR 2.0's payer account name (whose presence marks
    /// a CUR 2.0 file) and FOCUS's provider, charge frequency and charge class.
    fn legacy_columns() -> impl Iterator<Item = &'static Col> {
        Col::ALL.iter().filter(|c| {
            !matches!(
                c,
                Col::PayerAccountName
                    | Col::ProviderName
                    | Col::ChargeFrequency
                    | Col::ChargeClass
                    | Col::CommitmentDiscountStatus
            )
        })
    }

    fn schema(money: DataType) -> Schema {
        let mut fields: Vec<Field> = legacy_columns()
            .map(|c| {
                let t = match c.spec().kind {
                    ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    ColumnKind::Money | ColumnKind::Quantity => money.clone(),
                    ColumnKind::Text => DataType::Utf8,
                };
                Field::new(c.parquet_name(), t, true)
            })
            .collect();
        fields.push(Field::new("resource_tags_user_accountant_id", DataType::Utf8, true));
        Schema::new(fields)
    }

    #[test]
    fn common_legacy_layout_takes_the_fast_path_with_dictionary_text() {
        let schema = schema(DataType::Float64);
        let cols = resolve_parquet(Path::new("x.parquet"), &schema, "accountant_id").unwrap();
        let layout = layout(&schema, &cols).unwrap();
        let tag = layout.read_schema.field_with_name("resource_tags_user_accountant_id").unwrap();
        assert!(matches!(tag.data_type(), DataType::Dictionary(..)));
        assert_eq!(layout.projection.len(), legacy_columns().count() + 1, "every needed column, nothing else");
        // Every text slot is read but those the legacy report has no column for.
        let unread: Vec<usize> =
            layout.text.iter().enumerate().filter(|(_, slot)| slot.is_none()).map(|(t, _)| t).collect();
        assert_eq!(unread, [T_PAYER_NAME, T_PROVIDER, T_FREQUENCY, T_CLASS, T_STATUS]);
    }

    fn spans(groups: &[(u64, u64)]) -> Vec<RowGroupSpan> {
        groups.iter().map(|&(start, bytes)| RowGroupSpan { start, bytes }).collect()
    }

    #[test]
    fn partitions_split_the_row_groups_by_bytes_not_the_file_by_its_midpoint() {
        // Two equal row groups: the second starts just before the file's midpoint.
        let two = spans(&[(4, 104_368_154), (104_368_158, 104_368_000)]);
        assert_eq!(partition_ranges(&two, 208_931_856, 2), vec![(0, 104_368_158), (104_368_158, 208_931_856)]);
        assert_eq!(partition_ranges(&two, 208_931_856, 1), vec![(0, 208_931_856)]);
        assert_eq!(partition_ranges(&two, 208_931_856, 8).len(), 2, "no more ranges than row groups");
        // Uneven row groups: runs of about equal bytes, each row group's start in exactly one range.
        let uneven = spans(&[(4, 10), (14, 10), (24, 60), (84, 10), (94, 10), (104, 10)]);
        let ranges = partition_ranges(&uneven, 200, 3);
        assert_eq!(ranges, vec![(0, 24), (24, 84), (84, 200)]);
        for g in &uneven {
            assert_eq!(ranges.iter().filter(|(a, b)| (*a..*b).contains(&g.start)).count(), 1);
        }
        assert_eq!(partition_ranges(&[], 100, 2), vec![(0, 100)], "no row groups: one empty range");
    }

    #[test]
    fn other_money_types_take_the_generic_plan() {
        for money in [DataType::Decimal128(38, 10), DataType::Utf8, DataType::Int64] {
            let schema = schema(money);
            if let Ok(cols) = resolve_parquet(Path::new("x.parquet"), &schema, "accountant_id") {
                assert!(layout(&schema, &cols).is_none());
            }
        }
    }
}
