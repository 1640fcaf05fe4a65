//! The fast path for Parquet files in the common layout: text columns, timestamp dates and
//! `double` money (every legacy CUR Parquet delivery seen so far).
//!
//! The generic plan ([`super::plan`]) is a chain of DataFusion operators: filter, two UDF
//! projections, hash aggregation on string keys. Profiles showed that chain costing as much as the
//! Parquet decode itself: each operator materialises ~20 columns per batch, four measure UDFs
//! each re-read ten money columns, and the group-by hashes and compares 11 string keys per row.
//! Here the scan still goes through DataFusion's Parquet source (streaming, one task per
//! partition = byte range of the file, object stores, the same error reporting), but:
//!
//! * text columns are read as Arrow dictionaries straight from the Parquet dictionary pages
//!   (`PartitionedFile::arrow_schema` hint), so no string is copied per row;
//! * each distinct dictionary value is interned once per column into a small integer, and the
//!   per-value facts (split-cost child operation, line-item kind, reservation ARN present, cleaned
//!   tenant tag) are computed once per distinct value, not per row;
//! * one row loop filters, converts, evaluates the measures ([`crate::measures`], the same code as
//!   the UDFs) and sums into a hash map keyed by those integers.
//!
//! Money stays exact: `double` → scaled `i128` by [`f64_to_scaled`], sums with `checked_add`
//! (an overflow is an error, never a wrap). Files whose columns have other types (CUR 2.0 maps,
//! decimal or text money, ...) take the generic plan, so both paths are covered by the golden
//! tests, which compare every format against the same expected totals.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int32Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::aggregate::{Amounts, CostKey};
use crate::error::{Error, Result};
use crate::line_item::{LineItemKind, SPLIT_COST_CHILD_OPERATIONS};
use crate::measures::{COMMITMENT_FIELDS, CommitmentAmounts, Measure, RowInputs, commitments_read};
use crate::money::{MONEY_SCALE, QUANTITY_SCALE, f64_to_scaled, f64s_to_scaled};
use crate::period::BillingPeriod;
use crate::schema::{Col, ResolvedColumns, TenantSource};
use crate::store::Invoices;

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
const T_RI_ARN: usize = 9;
const TEXT_COLUMNS: usize = 10;
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
    Col::ReservationArn,
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
    quantity: Slot,
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
    let required = |c: Col| cols.name(c).map(str::to_string);
    let period_name = required(Col::BillingPeriodStart)?;
    let day_name = required(Col::UsageStart)?;
    let quantity_name = required(Col::UsageAmount)?;
    let period = want(&period_name, is_date)?;
    let day = want(&day_name, is_date)?;
    let quantity = want(&quantity_name, |t| matches!(t, DataType::Float64))?;
    let mut text: [Option<(String, usize)>; TEXT_COLUMNS] = Default::default();
    text[T_TENANT] = match &cols.tenant {
        TenantSource::Column(name) => Some((name.clone(), want(name, is_text)?)),
        TenantSource::Absent => None,
        TenantSource::MapKeys(_) => return None,
    };
    for (slot, col) in text.iter_mut().skip(1).zip(TEXT_COLS) {
        if let Some(name) = cols.name(col) {
            *slot = Some((name.to_string(), want(name, is_text)?));
        }
    }
    let mut money: [Option<(String, usize)>; 10] = Default::default();
    for (slot, col) in money.iter_mut().zip(MONEY_COLS) {
        if let Some(name) = cols.name(col) {
            *slot = Some((name.to_string(), want(name, |t| matches!(t, DataType::Float64))?));
        }
    }
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
        period: slot((period_name, period)),
        usage_day: slot((day_name, day)),
        quantity: slot((quantity_name, quantity)),
        text: text.map(|t| t.map(slot)),
        money: money.map(|m| m.map(slot)),
        projection: wanted,
    })
}

/// What one file's fast scan produced (the same shape as the generic plan's result).
pub(super) struct FastResult {
    pub groups: Vec<(BillingPeriod, CostKey, Amounts)>,
    pub invoices: BTreeMap<BillingPeriod, Invoices>,
    pub plan: Arc<dyn ExecutionPlan>,
}

/// Scans `path` (local or `s3://`, its object store already registered in `ctx`) with one task per
/// byte range, and returns the per-group sums of all ranges.
pub(super) async fn scan(
    ctx: &SessionContext,
    path: &Path,
    path_str: &str,
    size: u64,
    layout: Arc<FastLayout>,
    partitions: usize,
) -> Result<FastResult> {
    let engine = |e: datafusion::error::DataFusionError| super::engine_error(path, e);
    let url = ListingTableUrl::parse(path_str).map_err(engine)?;
    let source = Arc::new(ParquetSource::new(Arc::clone(&layout.read_schema)));
    // Byte ranges: DataFusion gives each row group to the range holding its midpoint.
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let n = i64::try_from(partitions.max(1)).unwrap_or(1);
    let groups: Vec<FileGroup> = (0..n)
        .map(|i| {
            let mut file = PartitionedFile::new(String::new(), size)
                .with_range(size_i / n * i, if i + 1 == n { size_i } else { size_i / n * (i + 1) })
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
        tasks.spawn(async move {
            let mut partial = Partial::new(layout);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| super::scan_error(&owned_path, None, e))?;
                partial.add(&owned_path, &batch)?;
            }
            Ok::<_, Error>(partial)
        });
    }
    let mut groups = Vec::new();
    let mut invoices = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let partial = joined.map_err(|e| Error::Internal(format!("{}: scan task failed: {e}", path.display())))??;
        partial.finish(path, &mut groups, &mut invoices)?;
    }
    Ok(FastResult { groups, invoices, plan: exec })
}

// ---------------------------------------------------------------------------------------------

/// FxHash (rustc's hasher): a multiply-rotate per word, plus a final mix. The keys are small integers produced by
/// this module, not attacker-chosen, so HashDoS resistance buys nothing and SipHash costs ~4×.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_i32(&mut self, v: i32) {
        self.write_u64(u64::from(v as u32));
    }
    /// Ends with murmur3's 64-bit finaliser: the multiply-rotate chain alone leaves the low bits
    /// (hashbrown's bucket index) depending only on the low bits of each word, so keys differing
    /// in a word's high half (the packed day, service, ...) would share buckets.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Distinct values of one text column. Id 0 is NULL.
struct Interner {
    ids: HashMap<Box<str>, u32, FxBuild>,
    values: Vec<Option<Box<str>>>,
}

impl Interner {
    fn new() -> Self {
        Self { ids: HashMap::default(), values: vec![None] }
    }

    fn intern(&mut self, value: Option<&str>) -> Result<u32> {
        let Some(value) = value else { return Ok(0) };
        if let Some(&id) = self.ids.get(value) {
            return Ok(id);
        }
        let id = u32::try_from(self.values.len())
            .map_err(|_| Error::Internal("more than 4 billion distinct values in one column".into()))?;
        self.ids.insert(value.into(), id);
        self.values.push(Some(value.into()));
        Ok(id)
    }

    fn get(&self, id: u32) -> Option<&str> {
        self.values.get(id as usize).and_then(|v| v.as_deref())
    }
}

/// The dictionary last seen in a text column and its values' ids. The Parquet reader hands out
/// the same dictionary buffers for every batch of a column chunk, so this is rebuilt once per row
/// group, not per batch. Holding `values` keeps its buffers alive, so a pointer match cannot be a
/// reused allocation.
#[derive(Default)]
struct DictCache {
    values: Option<ArrayRef>,
    ids: Vec<u32>,
}

fn same_buffers(a: &ArrayRef, b: &ArrayRef) -> bool {
    let (a, b) = (a.to_data(), b.to_data());
    a.len() == b.len()
        && a.offset() == b.offset()
        && a.buffers().len() == b.buffers().len()
        && a.buffers().iter().zip(b.buffers()).all(|(x, y)| x.as_ptr() == y.as_ptr() && x.len() == y.len())
}

fn strings_of(array: &ArrayRef) -> Result<ArrayRef> {
    arrow::compute::cast(array, &DataType::Utf8).map_err(|e| Error::Internal(format!("cannot read text: {e}")))
}

/// A tag value as the generic plan reads it: trimmed, blank = untagged (see `udf::clean_tag`).
fn clean_tag(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// One text column's state in a partition.
struct TextColumn {
    interner: Interner,
    cache: DictCache,
    /// Tenant tags are trimmed and blank means NULL.
    clean: bool,
}

impl TextColumn {
    fn new(clean: bool) -> Self {
        Self { interner: Interner::new(), cache: DictCache::default(), clean }
    }

    fn intern(&mut self, v: Option<&str>) -> Result<u32> {
        self.interner.intern(if self.clean { clean_tag(v) } else { v })
    }

    /// Fills `out` with the id of each row's value.
    fn ids(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        if let Some(dict) = array.as_dictionary_opt::<Int32Type>() {
            let values = dict.values();
            let fresh = match &self.cache.values {
                Some(cached) => !same_buffers(cached, values),
                None => true,
            };
            if fresh {
                let strings = strings_of(values)?;
                let strings = strings.as_string::<i32>();
                let mut ids = Vec::with_capacity(strings.len());
                for v in strings.iter() {
                    ids.push(self.intern(v)?);
                }
                self.cache = DictCache { values: Some(Arc::clone(values)), ids };
            }
            let ids = &self.cache.ids;
            let keys = dict.keys();
            let lookup = |k: i32| usize::try_from(k).ok().and_then(|k| ids.get(k).copied()).unwrap_or(0);
            match keys.nulls() {
                None => out.extend(keys.values().iter().map(|&k| lookup(k))),
                Some(nulls) => out.extend(
                    keys.values().iter().enumerate().map(|(i, &k)| if nulls.is_valid(i) { lookup(k) } else { 0 }),
                ),
            }
            return Ok(());
        }
        // Not dictionary-encoded after all (the reader ignored the hint): intern row by row.
        let strings = strings_of(array)?;
        for v in strings.as_string::<i32>().iter() {
            let id = self.intern(v)?;
            out.push(id);
        }
        Ok(())
    }
}

fn bad_value(path: &Path, column: &str, value: String, expected: &str) -> Error {
    Error::BadValue {
        path: path.to_path_buf(),
        line: None,
        column: column.to_string(),
        value,
        expected: expected.into(),
    }
}

/// Converts a `double` column to scaled integers (NULL → 0) into `out`; returns its validity.
fn money_column(
    path: &Path,
    slot: &Slot,
    batch: &RecordBatch,
    scale: u32,
    out: &mut Vec<i128>,
) -> Result<Option<NullBuffer>> {
    out.clear();
    let array = batch.column(slot.index).as_primitive::<Float64Type>();
    let converted = f64s_to_scaled(array.values(), scale, out);
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    if !converted {
        // Only a valid (non-NULL) value that cannot be converted is an error.
        if let Some(bad) =
            (0..array.len()).find(|&i| array.is_valid(i) && f64_to_scaled(array.value(i), scale).is_none())
        {
            return Err(bad_value(path, &slot.name, array.value(bad).to_string(), "a finite amount"));
        }
    }
    if let Some(nulls) = nulls {
        for (slot, valid) in out.iter_mut().zip(nulls.iter()) {
            if !valid {
                *slot = 0;
            }
        }
    }
    Ok(nulls.cloned())
}

/// Checks that every non-NULL value of a `double` column converts (see [`f64_to_scaled`]: finite
/// and below 1e24), without converting: the commitment columns are converted per row, and only
/// on the rows whose kind reads them ([`commitments_read`]), yet a bad value anywhere is still an
/// error, as in the generic plan.
fn check_money_column<'a>(path: &Path, slot: &Slot, batch: &'a RecordBatch) -> Result<&'a Float64Array> {
    let array = batch.column(slot.index).as_primitive::<Float64Type>();
    // A fold without early exit vectorises; the slow search runs only when something is wrong.
    let all = array.values().iter().fold(true, |ok, v| ok & (v.abs() < 1e24));
    if !all
        && let Some(bad) =
            (0..array.len()).find(|&i| array.is_valid(i) && f64_to_scaled(array.value(i), MONEY_SCALE).is_none())
    {
        return Err(bad_value(path, &slot.name, array.value(bad).to_string(), "a finite amount"));
    }
    Ok(array)
}

/// Days since the epoch per row (`None` for NULL), UTC, as `curflow_date` computes them.
fn day_column(path: &Path, slot: &Slot, batch: &RecordBatch, out: &mut Vec<Option<i32>>) -> Result<()> {
    out.clear();
    let array = batch.column(slot.index);
    let per_day: i64 = match array.data_type() {
        DataType::Date32 => {
            out.extend(array.as_primitive::<Date32Type>().iter());
            return Ok(());
        }
        DataType::Timestamp(TimeUnit::Second, _) => 86_400,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 86_400_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 86_400_000_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 86_400_000_000_000,
        other => return Err(Error::Internal(format!("{}: unexpected date type {other}", slot.name))),
    };
    let values: &[i64] = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array.as_primitive::<TimestampSecondType>().values(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array.as_primitive::<TimestampMillisecondType>().values(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array.as_primitive::<TimestampMicrosecondType>().values(),
        _ => array.as_primitive::<TimestampNanosecondType>().values(),
    };
    // Timestamps repeat (hourly lines of one day): divide only when the value changes.
    let (mut last, mut last_day) = (None, 0i32);
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    for (i, &v) in values.iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            out.push(None);
            continue;
        }
        if last != Some(v) {
            last_day = i32::try_from(v.div_euclid(per_day)).map_err(|_| {
                bad_value(path, &slot.name, v.to_string(), "a timestamp within years -5877641..5881580")
            })?;
            last = Some(v);
        }
        out.push(Some(last_day));
    }
    Ok(())
}

/// The commitment amounts of `row` that the measures read for its kind (the rest stay 0).
#[inline]
fn read_commitments(
    columns: &[Option<&Float64Array>; COMMITMENT_FIELDS],
    kind: LineItemKind,
    row: usize,
) -> [i128; COMMITMENT_FIELDS] {
    let mut out = [0i128; COMMITMENT_FIELDS];
    for &field in commitments_read(kind) {
        if let Some(array) = columns[field]
            && array.is_valid(row)
        {
            // Checked by `check_money_column`: a valid value always converts.
            out[field] = f64_to_scaled(array.value(row), MONEY_SCALE).unwrap_or(0);
        }
    }
    out
}

/// A group: billing-period start day and usage day, then the text ids of the key columns
/// (tenant, service, usage type, pool operation, pool resource, line-item type, currency, unit,
/// invoice; 0 = NULL), packed two per word: hashing and comparing six words per row instead of
/// eleven fields is most of the aggregation's cost.
#[derive(Debug, Clone, Copy, Eq)]
struct GroupKey([u64; 6]);

impl PartialEq for GroupKey {
    /// Word-wise without branches; the derived `[u64; 6]` comparison calls `memcmp`.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl GroupKey {
    fn new(period: i32, day: i32, text: [u32; 9]) -> Self {
        let pair = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        Self([
            pair(period as u32, day as u32),
            pair(text[0], text[1]),
            pair(text[2], text[3]),
            pair(text[4], text[5]),
            pair(text[6], text[7]),
            u64::from(text[8]),
        ])
    }

    fn period(&self) -> i32 {
        self.0[0] as u32 as i32
    }

    fn day(&self) -> i32 {
        (self.0[0] >> 32) as u32 as i32
    }

    fn text(&self) -> [u32; 9] {
        let w = &self.0;
        let (lo, hi) = (|x: u64| x as u32, |x: u64| (x >> 32) as u32);
        [lo(w[1]), hi(w[1]), lo(w[2]), hi(w[2]), lo(w[3]), hi(w[3]), lo(w[4]), hi(w[4]), lo(w[5])]
    }
}

impl std::hash::Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for word in self.0 {
            state.write_u64(word);
        }
    }
}

/// Sums of one group: the six measures at their scales, then the row count.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    money: [i128; 6],
    rows: u64,
}

/// One partition's aggregation state.
struct Partial {
    layout: Arc<FastLayout>,
    text: Vec<TextColumn>,
    groups: HashMap<GroupKey, u32, FxBuild>,
    sums: Vec<Sums>,
    // Per-batch scratch buffers, reused.
    ids: Vec<Vec<u32>>,
    /// Unblended and net unblended (the commitment columns are read per row).
    money: Vec<Vec<i128>>,
    quantity: Vec<i128>,
    periods: Vec<Option<i32>>,
    days: Vec<Option<i32>>,
}

impl Partial {
    fn new(layout: Arc<FastLayout>) -> Self {
        Self {
            layout,
            text: (0..TEXT_COLUMNS).map(|i| TextColumn::new(i == T_TENANT)).collect(),
            groups: HashMap::default(),
            sums: Vec::new(),
            ids: vec![Vec::new(); TEXT_COLUMNS],
            money: vec![Vec::new(); 2],
            quantity: Vec::new(),
            periods: Vec::new(),
            days: Vec::new(),
        }
    }

    fn add(&mut self, path: &Path, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let layout = Arc::clone(&self.layout);
        for (i, slot) in layout.text.iter().enumerate() {
            match slot {
                Some(slot) => self.text[i].ids(batch.column(slot.index), &mut self.ids[i])?,
                None => {
                    self.ids[i].clear();
                    self.ids[i].resize(rows, 0);
                }
            }
        }
        // Per-distinct-value facts, indexed by text id.
        let child_op: Vec<bool> = self.text[T_OPERATION]
            .interner
            .values
            .iter()
            .map(|v| v.as_deref().is_some_and(|op| SPLIT_COST_CHILD_OPERATIONS.contains(&op)))
            .collect();
        let kinds: Vec<LineItemKind> = self.text[T_LINE_ITEM_TYPE]
            .interner
            .values
            .iter()
            .map(|v| LineItemKind::from_type_name(v.as_deref().unwrap_or("")))
            .collect();
        let has_arn: Vec<bool> =
            self.text[T_RI_ARN].interner.values.iter().map(|v| clean_tag(v.as_deref()).is_some()).collect();

        let mut net_valid = None;
        for i in [0, M_NET] {
            match &layout.money[i] {
                Some(slot) => {
                    let nulls = money_column(path, slot, batch, MONEY_SCALE, &mut self.money[i])?;
                    if i == M_NET {
                        net_valid = Some(nulls);
                    }
                }
                None => {
                    self.money[i].clear();
                    self.money[i].resize(rows, 0);
                }
            }
        }
        let mut commitments: [Option<&Float64Array>; COMMITMENT_FIELDS] = [None; COMMITMENT_FIELDS];
        for (field, slot) in commitments.iter_mut().zip(&layout.money[2..]) {
            if let Some(slot) = slot {
                *field = Some(check_money_column(path, slot, batch)?);
            }
        }
        money_column(path, &layout.quantity, batch, QUANTITY_SCALE, &mut self.quantity)?;
        day_column(path, &layout.period, batch, &mut self.periods)?;
        day_column(path, &layout.usage_day, batch, &mut self.days)?;

        let ids = &self.ids;
        let m = &self.money;
        for row in 0..rows {
            let operation = ids[T_OPERATION][row];
            if child_op.get(operation as usize).copied().unwrap_or(false) {
                continue;
            }
            let period = self.periods[row].ok_or_else(|| {
                bad_value(path, &layout.period.name, String::new(), "a billing period start date on every row")
            })?;
            let day = self.days[row].ok_or_else(|| {
                bad_value(path, &layout.usage_day.name, String::new(), "a usage start date on every row")
            })?;
            let tenant = ids[T_TENANT][row];
            let (pool_operation, pool_resource) = if tenant == 0 { (operation, ids[T_RESOURCE][row]) } else { (0, 0) };
            let line_item_type = ids[T_LINE_ITEM_TYPE][row];
            let key = GroupKey::new(
                period,
                day,
                [
                    tenant,
                    ids[T_SERVICE][row],
                    ids[T_USAGE_TYPE][row],
                    pool_operation,
                    pool_resource,
                    line_item_type,
                    ids[T_CURRENCY][row],
                    ids[T_UNIT][row],
                    ids[T_INVOICE][row],
                ],
            );
            let kind = kinds.get(line_item_type as usize).copied().unwrap_or(LineItemKind::Other);
            let net_present = match &net_valid {
                Some(None) => true,
                Some(Some(nulls)) => nulls.is_valid(row),
                None => false,
            };
            let inputs = RowInputs {
                kind,
                has_reservation_arn: has_arn.get(ids[T_RI_ARN][row] as usize).copied().unwrap_or(false),
                unblended: m[0][row],
                net_unblended: net_present.then(|| m[M_NET][row]),
                commitments: CommitmentAmounts::from_array(read_commitments(&commitments, kind, row)),
            };
            let values = [
                inputs.unblended,
                Measure::NetUnblended.eval(&inputs),
                Measure::Amortized.eval(&inputs),
                Measure::RiSpTrueup.eval(&inputs),
                Measure::RiSpUpfrontFees.eval(&inputs),
                if kind.counts_usage() { self.quantity[row] } else { 0 },
            ];
            let next = self.sums.len() as u32;
            let group = *self.groups.entry(key).or_insert(next);
            if group == next {
                self.sums.push(Sums::default());
            }
            let sums = &mut self.sums[group as usize];
            for (sum, v) in sums.money.iter_mut().zip(values) {
                *sum = sum
                    .checked_add(v)
                    .ok_or_else(|| Error::Internal(format!("{}: a sum exceeds 38 digits", path.display())))?;
            }
            sums.rows += 1;
        }
        Ok(())
    }

    /// Converts the groups to keys and exact amounts, as `decode_groups` does for the generic plan.
    fn finish(
        self,
        path: &Path,
        out: &mut Vec<(BillingPeriod, CostKey, Amounts)>,
        invoices: &mut BTreeMap<BillingPeriod, Invoices>,
    ) -> Result<()> {
        let text = |column: usize, id: u32| self.text[column].interner.get(id);
        let owned = |column: usize, id: u32| text(column, id).unwrap_or("").to_string();
        out.reserve(self.groups.len());
        for (key, group) in &self.groups {
            let sums = &self.sums[*group as usize];
            let period_day = super::epoch_day(key.period()).ok_or_else(|| {
                bad_value(path, &self.layout.period.name, key.period().to_string(), "a date within chrono's range")
            })?;
            let period = BillingPeriod::starting_on(period_day)
                .ok_or_else(|| Error::BadBillingPeriod { path: path.to_path_buf(), value: period_day.to_string() })?;
            let usage_date = super::epoch_day(key.day()).ok_or_else(|| {
                bad_value(path, &self.layout.usage_day.name, key.day().to_string(), "a date within chrono's range")
            })?;
            let [tenant, service, usage_type, operation, resource, line_item_type, currency, unit, invoice] =
                key.text();
            let cost_key = CostKey {
                usage_date,
                tenant: text(T_TENANT, tenant).map(str::to_string),
                service: owned(T_SERVICE, service),
                usage_type: owned(T_USAGE_TYPE, usage_type),
                usage_unit: owned(T_UNIT, unit),
                operation: owned(T_OPERATION, operation),
                resource_id: owned(T_RESOURCE, resource),
                line_item_type: owned(T_LINE_ITEM_TYPE, line_item_type),
                currency: owned(T_CURRENCY, currency),
            };
            let amounts = super::amounts_from_scaled(path, sums.money, sums.rows)?;
            invoices.entry(period).or_default().add(text(T_INVOICE, invoice), amounts.line_items);
            out.push((period, cost_key, amounts));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::ColumnKind;
    use crate::schema::resolve::resolve_parquet;

    /// A legacy CUR schema with every known column, money as `money`.
    fn schema(money: DataType) -> Schema {
        let mut fields: Vec<Field> = Col::ALL
            .iter()
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
        assert_eq!(layout.projection.len(), Col::ALL.len() + 1, "every needed column, nothing else");
        assert!(layout.text.iter().all(Option::is_some));
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

    #[test]
    fn interned_ids_are_stable_and_null_is_zero() {
        let mut column = TextColumn::new(true);
        let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some(" a "), Some(""), Some("b")]));
        let keys = arrow::array::Int32Array::from(vec![Some(0), None, Some(1), Some(2), Some(0)]);
        let dict: ArrayRef = Arc::new(arrow::array::DictionaryArray::new(keys, values));
        let mut ids = Vec::new();
        column.ids(&dict, &mut ids).unwrap();
        assert_eq!(ids, vec![1, 0, 0, 2, 1], "tags are trimmed; blank and NULL are untagged");
        assert_eq!(column.interner.get(1), Some("a"));
    }

    #[test]
    fn doubles_that_are_not_finite_name_the_column() {
        let batch = RecordBatch::try_from_iter(vec![(
            "line_item_unblended_cost",
            Arc::new(Float64Array::from(vec![1.5, f64::NAN])) as ArrayRef,
        )])
        .unwrap();
        let slot = Slot { name: "line_item_unblended_cost".into(), index: 0 };
        let err = money_column(Path::new("f.parquet"), &slot, &batch, MONEY_SCALE, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line_item_unblended_cost"), "{err}");
    }
}
