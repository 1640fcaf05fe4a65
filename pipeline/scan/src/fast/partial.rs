//! One partition's aggregation on the fast path: batches in, per-group sums of the measures'
//! inputs out; the measures themselves are evaluated once per group in [`Partial::finish`].
//!
//! Per batch, column at a time: text values to ids (new dictionaries only), dates to codes, the
//! packed key of every row ([`super::key`]) ORed together from one small table per column, the
//! line-item kind of every row, money to scaled integers. Then one row loop looks up each row's
//! group and adds its unblended, net and usage amounts; only the rows whose line-item type reads
//! commitment columns (or `Fee` rows with a reservation ARN) do more.
//!
//! Why the measures can wait until the end: for a fixed line-item type (part of the key) and a
//! fixed "has a reservation ARN" flag (tracked apart for `Fee` rows, the only type where it
//! matters), every measure in [`curflow_model::measures`] is a sum or difference of its inputs, so the
//! measure of the summed inputs equals the sum of the per-row measures, exactly
//! (`measures::tests::measures_are_additive` checks it).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use datafusion::execution::memory_pool::MemoryReservation;

use super::columns::{bad_value, check_money_column, day_column, money_column};
use super::groups::GroupTable;
use super::key::{DateCodes, F_DAY, F_PERIOD, KEY_FIELDS, KeyLayout, SKIP, text_field};
use super::text::{RowIndices, TextColumn, clean_tag, for_each_row};
use super::{
    FastLayout, KEY_TEXT, M_NET, M_UNBLENDED, Slot, T_ACCOUNT, T_ACCOUNT_NAME, T_CLASS, T_CURRENCY, T_FREQUENCY,
    T_INVOICE, T_ISSUER, T_LINE_ITEM_TYPE, T_OPERATION, T_PAYER, T_PAYER_NAME, T_PROVIDER, T_PUBLISHER, T_REGION,
    T_RESOURCE, T_RI_ARN, T_SERVICE, T_STATUS, T_TENANT, T_UNIT, T_USAGE_TYPE, TEXT_COLUMNS,
};
use crate::error::{Error, Result};
use crate::plan::MEASURE_SUMS;
use curflow_model::aggregate::{Amounts, CostKey};
use curflow_model::fxhash::FxBuild;
use curflow_model::line_item::{LineItemKind, SPLIT_COST_CHILD_OPERATIONS, UNUSED_COMMITMENT};
use curflow_model::measures::{COMMITMENT_FIELDS, CommitmentAmounts, Measure, RowInputs, commitments_read};
use curflow_model::money::{MONEY_SCALE, QUANTITY_SCALE, f64_to_scaled};
use curflow_model::period::BillingPeriod;
use curflow_model::{Billing, BillingParts, Invoices, Name, Names};

/// Key text columns that are always part of the key, then the shared-pool ones (operation and
/// resource, kept only for untagged rows), which must come after the tenant.
const KEY_TEXT_ORDER: [(usize, bool); KEY_TEXT] = [
    (T_TENANT, false),
    (T_SERVICE, false),
    (T_USAGE_TYPE, false),
    (T_LINE_ITEM_TYPE, false),
    (T_CURRENCY, false),
    (T_UNIT, false),
    (T_INVOICE, false),
    (T_ACCOUNT, false),
    (T_REGION, false),
    (T_ACCOUNT_NAME, false),
    (T_PAYER, false),
    (T_PAYER_NAME, false),
    (T_PROVIDER, false),
    (T_PUBLISHER, false),
    (T_ISSUER, false),
    (T_OPERATION, true),
    (T_RESOURCE, true),
];

/// How many rows ahead the row loop's second pass prefetches a group's sums: at a million groups
/// they are tens of MB, so almost every row's sums miss the cache.
const SUMS_AHEAD: usize = 16;
/// How many keys ahead a probe of the group table is prefetched ([`GroupTable::prefetch`]).
const PROBE_AHEAD: usize = 16;
/// Sums smaller than this stay in the caches: they are not prefetched.
const PREFETCH_ABOVE_BYTES: usize = 4 << 20;

/// What [`Partial::add`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Continue,
    /// The key fields outgrew [`FastLayout::key_bits`]: the file must take the generic plan.
    KeyTooWide,
    /// The partition's tables outgrew what the memory pool grants (`memory-limit-mb`): the file
    /// must take the generic plan, whose aggregation spills to `spill-dir` instead of growing.
    OverBudget {
        bytes: usize,
    },
}

/// Sums of a group's per-row inputs: unblended, net unblended (the net column where present and
/// not NULL, else unblended: the measure's own rule, applied per row), usage amount of rows that
/// count usage, the list cost, and the row count.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    unblended: i128,
    net: i128,
    quantity: i128,
    list: i128,
    rows: u64,
}

/// Sums only some line-item types need: the commitment columns their measures read, and the
/// unblended and net cost of `Fee` rows with a reservation ARN (RI upfront payments).
#[derive(Debug, Clone, Copy, Default)]
struct Extra {
    commitments: [i128; COMMITMENT_FIELDS],
    arn_fee_unblended: i128,
    arn_fee_net: i128,
}

/// Each row's tenant tag from map columns (CUR 2.0 `resource_tags`): the value of the first
/// `(map, key)` pair that is not blank, as the generic plan's `curflow_tag` reads it.
fn tenants_from_maps(path: &Path, maps: &[(Slot, String)], batch: &RecordBatch) -> Result<ArrayRef> {
    let mut merged: Option<ArrayRef> = None;
    for (slot, key) in maps {
        let Some(map) = batch.column(slot.index).as_map_opt() else {
            return Err(Error::Internal(format!("{}: {} is not a map", path.display(), slot.name)));
        };
        let found = crate::udf::map_lookup(map, key).map_err(|e| crate::scan_error(path, None, e))?;
        merged = Some(match merged {
            None => found,
            Some(prev) => {
                let both: StringArray =
                    prev.as_string::<i32>().iter().zip(found.as_string::<i32>().iter()).map(|(a, b)| a.or(b)).collect();
                Arc::new(both)
            }
        });
    }
    merged.ok_or_else(|| Error::Internal("a map-held tenant without a map column".into()))
}

/// Something per index of a text column (see [`super::text::RowIndices`]), and the column
/// generation and key layout it was built for.
struct Table<T> {
    entries: Vec<T>,
    built_for: Option<(u64, KeyLayout)>,
}

impl<T> Table<T> {
    fn new() -> Self {
        Self { entries: Vec::new(), built_for: None }
    }

    /// Rebuilds the entries with `f(id)` unless they are current for `column` and `key`.
    fn refresh(&mut self, column: &TextColumn, key: KeyLayout, f: impl FnMut(u32) -> T) {
        let want = Some((column.generation, key));
        if self.built_for != want {
            self.entries = column.index_ids().table(f);
            self.built_for = want;
        }
    }
}

/// One partition's aggregation state.
pub(super) struct Partial {
    layout: Arc<FastLayout>,
    /// This partition's share of the DataFusion memory pool, resized to [`Partial::memory_bytes`]
    /// after every batch and merge.
    reservation: MemoryReservation,
    text: Vec<TextColumn>,
    /// Per key text column: the key bits of each value (plus [`SKIP`] for split-cost children).
    bits: Vec<Table<u128>>,
    kinds: Table<LineItemKind>,
    has_arn: Table<bool>,
    /// FOCUS: whether a `ChargeCategory` is `Purchase`, and a `ChargeFrequency` `One-Time`.
    purchase: Table<bool>,
    one_time: Table<bool>,
    /// FOCUS: whether a `ChargeClass` is `Correction`.
    correction: Table<bool>,
    /// FOCUS: whether a `CommitmentDiscountStatus` is `Unused`, and a `ChargeCategory` `Usage`.
    unused: Table<bool>,
    usage: Table<bool>,
    /// FOCUS: the batch's rows of unused commitment, and the line-item type id they get.
    unused_rows: Vec<usize>,
    unused_type: u32,
    periods: DateCodes,
    days: DateCodes,
    key: KeyLayout,
    /// Packed key → group index into `packed`, `sums` and `extras`.
    groups: GroupTable,
    /// Each group's packed key in the current layout (its fields are `key.unpack` of it: 16
    /// bytes a group instead of 56 for the unpacked codes, at a million groups per table).
    packed: Vec<u128>,
    sums: Vec<Sums>,
    /// Sparse: the groups whose rows read commitment columns or are RI fees (a few in most
    /// months) get an [`Extra`], at `extras[extra_of[group] - 1]`; 0 = none. A dense `Extra` per
    /// group was half of a partition's memory at a million groups.
    extra_of: Vec<u32>,
    extras: Vec<Extra>,
    /// FOCUS files with a `ContractedCost` column only (empty otherwise): each group's sum of it,
    /// by group index, grown on demand (a group past its end has 0). Dense, 16 bytes a group,
    /// because nearly every FOCUS row has one; a CUR's contracted cost is derived instead.
    contracted_sums: Vec<i128>,
    /// FOCUS files with a `PricingQuantity` column only (empty otherwise): each group's sum of it,
    /// like `contracted_sums`. Without the column a group's pricing quantity is its usage sum.
    pricing_sums: Vec<i128>,
    // Per-batch scratch buffers, reused.
    keys: Vec<u128>,
    /// Each row's group (rows skipped: unused), found before any sum is added.
    row_groups: Vec<u32>,
    row_kinds: Vec<LineItemKind>,
    arn_fee: Vec<bool>,
    unblended: Vec<i128>,
    net: Vec<i128>,
    quantity: Vec<i128>,
    list: Vec<i128>,
    contracted: Vec<i128>,
    pricing: Vec<i128>,
    dates: Vec<Option<i32>>,
    period_codes: Vec<u32>,
    day_codes: Vec<u32>,
    /// Rows with a NULL date: an error unless the row is skipped anyway.
    null_dates: Vec<(usize, usize)>,
    /// Rows without a tenant ([`Partial::find_untagged`]).
    untagged: Vec<bool>,
}

impl Partial {
    pub(super) fn new(layout: Arc<FastLayout>, reservation: MemoryReservation) -> Self {
        Self {
            layout,
            reservation,
            text: (0..TEXT_COLUMNS).map(|i| TextColumn::new(i == T_TENANT)).collect(),
            bits: (0..KEY_TEXT).map(|_| Table::new()).collect(),
            kinds: Table::new(),
            has_arn: Table::new(),
            purchase: Table::new(),
            one_time: Table::new(),
            correction: Table::new(),
            unused: Table::new(),
            usage: Table::new(),
            unused_rows: Vec::new(),
            unused_type: 0,
            periods: DateCodes::default(),
            days: DateCodes::default(),
            key: KeyLayout::default(),
            groups: GroupTable::default(),
            packed: Vec::new(),
            sums: Vec::new(),
            extra_of: Vec::new(),
            extras: Vec::new(),
            contracted_sums: Vec::new(),
            pricing_sums: Vec::new(),
            keys: Vec::new(),
            row_groups: Vec::new(),
            row_kinds: Vec::new(),
            arn_fee: Vec::new(),
            unblended: Vec::new(),
            net: Vec::new(),
            quantity: Vec::new(),
            list: Vec::new(),
            contracted: Vec::new(),
            pricing: Vec::new(),
            dates: Vec::new(),
            period_codes: Vec::new(),
            day_codes: Vec::new(),
            null_dates: Vec::new(),
            untagged: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, path: &Path, batch: &RecordBatch) -> Result<Step> {
        let layout = Arc::clone(&self.layout);
        for (t, slot) in layout.text.iter().enumerate() {
            if let Some(slot) = slot {
                if t == T_TENANT && !layout.tenant_maps.is_empty() {
                    self.text[t].prepare(&tenants_from_maps(path, &layout.tenant_maps, batch)?)?;
                } else if t != T_RESOURCE {
                    self.text[t].prepare(batch.column(slot.index))?;
                }
            }
        }
        // Only untagged rows keep their resource id (tagged rows: the tenant's line).
        if let Some(slot) = &layout.text[T_RESOURCE] {
            let resources = batch.column(slot.index);
            if self.text[T_RESOURCE].wants_rows(resources) {
                self.find_untagged(batch);
                self.text[T_RESOURCE].prepare_rows(resources, Some(&self.untagged))?;
            }
        }
        self.null_dates.clear();
        day_column(path, &layout.period, batch, &mut self.dates)?;
        code_dates(&self.dates, &mut self.periods, &mut self.period_codes, 0, &mut self.null_dates);
        day_column(path, &layout.usage_day, batch, &mut self.dates)?;
        code_dates(&self.dates, &mut self.days, &mut self.day_codes, 1, &mut self.null_dates);
        self.date_corrections(batch);
        self.find_unused_commitment(batch)?;

        let sizes = self.sizes();
        if !self.key.fits(&sizes) {
            let Some(wider) = KeyLayout::for_sizes(&sizes, layout.key_bits) else { return Ok(Step::KeyTooWide) };
            self.repack(wider);
        }
        self.build_keys(batch);
        self.type_unused_commitment();
        self.read_kinds(batch);
        for &(row, which) in &self.null_dates {
            if self.keys[row] & SKIP == 0 {
                let (slot, what) = if which == 0 {
                    (&layout.period, "a billing period start date on every row")
                } else {
                    (&layout.usage_day, "a usage start date on every row")
                };
                return Err(bad_value(path, &slot.name, String::new(), what));
            }
        }

        read_money(path, layout.money[M_UNBLENDED].as_ref(), batch, MONEY_SCALE, &mut self.unblended)?;
        let net_present = match &layout.money[M_NET] {
            Some(slot) => {
                let nulls = money_column(path, slot, batch, MONEY_SCALE, &mut self.net)?;
                // FOCUS: this is `EffectiveCost`, whose NULL is 0 (set by `money_column`).
                if let Some(nulls) = nulls.filter(|_| !layout.focus) {
                    for (row, net) in self.net.iter_mut().enumerate() {
                        if nulls.is_null(row) {
                            *net = self.unblended[row];
                        }
                    }
                }
                true
            }
            None => false,
        };
        money_column(path, &layout.quantity, batch, QUANTITY_SCALE, &mut self.quantity)?;
        read_money(path, layout.list.as_ref(), batch, MONEY_SCALE, &mut self.list)?;
        if layout.contracted.is_some() {
            read_money(path, layout.contracted.as_ref(), batch, MONEY_SCALE, &mut self.contracted)?;
        } else {
            self.contracted.clear();
        }
        if layout.pricing.is_some() {
            read_money(path, layout.pricing.as_ref(), batch, QUANTITY_SCALE, &mut self.pricing)?;
        } else {
            self.pricing.clear();
        }
        let mut commitments: [Option<&Float64Array>; COMMITMENT_FIELDS] = [None; COMMITMENT_FIELDS];
        for (field, slot) in commitments.iter_mut().zip(&layout.money[2..]) {
            if let Some(slot) = slot {
                *field = Some(check_money_column(path, slot, batch)?);
            }
        }
        self.sum_rows(path, net_present, &commitments)?;
        Ok(self.account())
    }

    /// Bytes the partition holds: group table, per-group sums, interned text and per-batch
    /// scratch, estimated from capacities (what is accounted against the memory pool).
    pub(super) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        // hashbrown: one (key, value) slot and one control byte per bucket.
        let groups = self.groups.memory_bytes();
        let per_group = self.packed.capacity() * size_of::<u128>()
            + self.sums.capacity() * size_of::<Sums>()
            + self.extra_of.capacity() * size_of::<u32>()
            + self.extras.capacity() * size_of::<Extra>()
            + (self.contracted_sums.capacity() + self.pricing_sums.capacity()) * size_of::<i128>();
        let text: usize = self.text.iter().map(|t| t.interner.bytes()).sum();
        let scratch = self.keys.capacity() * size_of::<u128>()
            + (self.unblended.capacity()
                + self.net.capacity()
                + self.quantity.capacity()
                + self.list.capacity()
                + self.contracted.capacity()
                + self.pricing.capacity())
                * size_of::<i128>()
            + (self.period_codes.capacity() + self.day_codes.capacity() + self.row_groups.capacity())
                * size_of::<u32>()
            + self.dates.capacity() * size_of::<Option<i32>>()
            + self.row_kinds.capacity()
            + self.arn_fee.capacity()
            + self.untagged.capacity();
        groups + per_group + text + scratch
    }

    /// Resizes the reservation to [`Partial::memory_bytes`]; [`Step::OverBudget`] when the pool
    /// refuses.
    fn account(&mut self) -> Step {
        let bytes = self.memory_bytes();
        match self.reservation.try_resize(bytes) {
            Ok(()) => Step::Continue,
            Err(_) => Step::OverBudget { bytes },
        }
    }

    /// Codes per key field seen so far (NULL text included).
    fn sizes(&self) -> [usize; KEY_FIELDS] {
        let mut sizes = [1; KEY_FIELDS];
        sizes[F_PERIOD] = self.periods.len();
        sizes[F_DAY] = self.days.len();
        for (t, column) in self.text.iter().take(KEY_TEXT).enumerate() {
            sizes[text_field(t)] = column.interner.len();
        }
        sizes
    }

    /// Moves every group to a wider key layout (the tables follow lazily).
    fn repack(&mut self, wider: KeyLayout) {
        let narrow = std::mem::replace(&mut self.key, wider);
        self.groups.clear();
        for (group, key) in self.packed.iter_mut().enumerate() {
            *key = wider.pack(&narrow.unpack(*key));
            self.groups.insert_new(*key, group as u32);
        }
    }

    /// Every row's packed key, from its date codes and then one table lookup per text column.
    /// A column whose rows all carry one value in this batch (the payer, invoice, currency, ...
    /// within a row group: a dictionary of one entry) is folded into one constant instead of a
    /// pass over the rows.
    fn build_keys(&mut self, batch: &RecordBatch) {
        let key = self.key;
        let mut constant = 0u128;
        let mut per_row = [false; KEY_TEXT];
        for (i, (t, pool)) in KEY_TEXT_ORDER.into_iter().enumerate() {
            let Some(slot) = &self.layout.text[t] else { continue };
            let column = &self.text[t];
            let field = text_field(t);
            let interner = &column.interner;
            let child = t == T_OPERATION;
            self.bits[t].refresh(column, key, |id| {
                let skip = child && interner.get(id).is_some_and(|op| SPLIT_COST_CHILD_OPERATIONS.contains(&op));
                key.bits(field, id) | if skip { SKIP } else { 0 }
            });
            match single_value(&column.rows(batch.column(slot.index)), &self.bits[t].entries) {
                // Nothing to add (NULL, or a pool column's empty value).
                Some(0) => {}
                // Pool columns depend on each row's tenant.
                Some(bits) if !pool => constant |= bits,
                _ => per_row[i] = true,
            }
        }
        self.keys.clear();
        self.keys.extend(
            self.period_codes
                .iter()
                .zip(&self.day_codes)
                .map(|(&p, &d)| key.bits(F_PERIOD, p) | key.bits(F_DAY, d) | constant),
        );
        let tenant = key.mask(text_field(T_TENANT));
        for (i, (t, pool)) in KEY_TEXT_ORDER.into_iter().enumerate() {
            let Some(slot) = self.layout.text[t].as_ref().filter(|_| per_row[i]) else { continue };
            let rows = self.text[t].rows(batch.column(slot.index));
            let keys = &mut self.keys;
            if pool {
                // Tagged rows keep only the skip mark of these columns.
                for_each_row(&rows, &self.bits[t].entries, |row, bits| {
                    let k = &mut keys[row];
                    *k |= bits & if *k & tenant == 0 { u128::MAX } else { SKIP };
                });
            } else {
                for_each_row(&rows, &self.bits[t].entries, |row, bits| keys[row] |= bits);
            }
        }
    }

    /// Marks in `untagged` the rows of the batch without a tenant (every row when the file has
    /// no tenant column); the tenant column must be prepared.
    fn find_untagged(&mut self, batch: &RecordBatch) {
        self.untagged.clear();
        self.untagged.resize(batch.num_rows(), true);
        let Some(slot) = &self.layout.text[T_TENANT] else { return };
        let column = &self.text[T_TENANT];
        let tagged = column.index_ids().table(|id| id != 0);
        let untagged = &mut self.untagged;
        for_each_row(&column.rows(batch.column(slot.index)), &tagged, |row, tagged| untagged[row] = !tagged);
    }

    /// Every row's line-item kind, and for `Fee` rows whether they carry a reservation ARN.
    fn read_kinds(&mut self, batch: &RecordBatch) {
        let rows = batch.num_rows();
        self.row_kinds.clear();
        self.row_kinds.resize(rows, LineItemKind::Other);
        if let Some(slot) = &self.layout.text[T_LINE_ITEM_TYPE] {
            let column = &self.text[T_LINE_ITEM_TYPE];
            let interner = &column.interner;
            self.kinds.refresh(column, KeyLayout::default(), |id| {
                LineItemKind::from_type_name(interner.get(id).unwrap_or(""))
            });
            let kinds = &mut self.row_kinds;
            for_each_row(&column.rows(batch.column(slot.index)), &self.kinds.entries, |row, kind| kinds[row] = kind);
        }
        self.arn_fee.clear();
        if self.layout.focus {
            self.read_upfront_purchases(batch);
            return;
        }
        if let Some(slot) = &self.layout.text[T_RI_ARN]
            && self.row_kinds.contains(&LineItemKind::Fee)
        {
            let column = &self.text[T_RI_ARN];
            let interner = &column.interner;
            self.has_arn.refresh(column, KeyLayout::default(), |id| clean_tag(interner.get(id)).is_some());
            self.arn_fee.resize(rows, false);
            let arn_fee = &mut self.arn_fee;
            for_each_row(&column.rows(batch.column(slot.index)), &self.has_arn.entries, |row, has| {
                arn_fee[row] = has;
            });
        }
    }

    /// FOCUS: a correction of an earlier billing period (`ChargeClass` `Correction`) is dated on
    /// the first day of the billing period that bills it, not on the charge period it corrects
    /// (which may lie months before, outside the period's date window). Before the key layout is
    /// checked: the period's first day may be a new day code.
    fn date_corrections(&mut self, batch: &RecordBatch) {
        let Some(slot) = &self.layout.text[T_CLASS] else { return };
        let column = &self.text[T_CLASS];
        self.correction.refresh(column, KeyLayout::default(), |id| column.interner.get(id) == Some("Correction"));
        if !self.correction.entries.contains(&true) {
            return;
        }
        let (periods, days, period_codes, day_codes) =
            (&self.periods, &mut self.days, &self.period_codes, &mut self.day_codes);
        for_each_row(&column.rows(batch.column(slot.index)), &self.correction.entries, |row, correction| {
            // A row without a billing period keeps its code: it is an error unless skipped.
            if let Some(first_day) = correction.then(|| periods.value(period_codes[row])).flatten() {
                day_codes[row] = days.code(first_day);
            }
        });
    }

    /// FOCUS: finds the rows of unused commitment (`ChargeCategory` `Usage` with
    /// `CommitmentDiscountStatus` `Unused`) into `unused_rows`, and interns their line-item type
    /// [`UNUSED_COMMITMENT`] (before the key layout is checked: it may be a new value).
    fn find_unused_commitment(&mut self, batch: &RecordBatch) -> Result<()> {
        self.unused_rows.clear();
        let layout = &self.layout;
        let (Some(status), Some(category)) = (&layout.text[T_STATUS], &layout.text[T_LINE_ITEM_TYPE]) else {
            return Ok(());
        };
        let column = &self.text[T_STATUS];
        self.unused.refresh(column, KeyLayout::default(), |id| column.interner.get(id) == Some("Unused"));
        if !self.unused.entries.contains(&true) {
            return Ok(());
        }
        let types = &self.text[T_LINE_ITEM_TYPE];
        self.usage.refresh(types, KeyLayout::default(), |id| types.interner.get(id) == Some("Usage"));
        let mut unused = vec![false; batch.num_rows()];
        for_each_row(&column.rows(batch.column(status.index)), &self.unused.entries, |row, u| unused[row] = u);
        let unused_rows = &mut self.unused_rows;
        for_each_row(&types.rows(batch.column(category.index)), &self.usage.entries, |row, usage| {
            if usage && unused[row] {
                unused_rows.push(row);
            }
        });
        if !self.unused_rows.is_empty() {
            self.unused_type = self.text[T_LINE_ITEM_TYPE].interner.intern(Some(UNUSED_COMMITMENT))?;
        }
        Ok(())
    }

    /// Gives the rows of unused commitment their line-item type in the key (after
    /// [`Partial::build_keys`]; their kind stays `Usage`, read from the column).
    fn type_unused_commitment(&mut self) {
        let field = text_field(T_LINE_ITEM_TYPE);
        let (mask, bits) = (self.key.mask(field), self.key.bits(field, self.unused_type));
        for &row in &self.unused_rows {
            let k = &mut self.keys[row];
            if *k & SKIP == 0 {
                *k = (*k & !mask) | bits;
            }
        }
    }

    /// FOCUS: marks in `arn_fee` the rows that are upfront commitment fees — `ChargeCategory`
    /// `Purchase`, `ChargeFrequency` `One-Time` and a `CommitmentDiscountId` — whose `BilledCost`
    /// is the upfront fee (the FOCUS form of a CUR's `SavingsPlanUpfrontFee` and RI upfront
    /// `Fee` rows). A file without those columns has none.
    fn read_upfront_purchases(&mut self, batch: &RecordBatch) {
        let layout = &self.layout;
        let (Some(category), Some(frequency), Some(commitment)) =
            (&layout.text[T_LINE_ITEM_TYPE], &layout.text[T_FREQUENCY], &layout.text[T_RI_ARN])
        else {
            return;
        };
        let is = |table: &mut Table<bool>, column: &TextColumn, value: &str| {
            table.refresh(column, KeyLayout::default(), |id| column.interner.get(id) == Some(value));
        };
        is(&mut self.purchase, &self.text[T_LINE_ITEM_TYPE], "Purchase");
        if !self.purchase.entries.contains(&true) {
            return;
        }
        is(&mut self.one_time, &self.text[T_FREQUENCY], "One-Time");
        let ids = &self.text[T_RI_ARN];
        self.has_arn.refresh(ids, KeyLayout::default(), |id| clean_tag(ids.interner.get(id)).is_some());
        self.arn_fee.resize(batch.num_rows(), false);
        let upfront = &mut self.arn_fee;
        let rows = |slot: &Slot, t: usize| self.text[t].rows(batch.column(slot.index));
        for_each_row(&rows(category, T_LINE_ITEM_TYPE), &self.purchase.entries, |row, p| upfront[row] = p);
        for_each_row(&rows(frequency, T_FREQUENCY), &self.one_time.entries, |row, o| upfront[row] &= o);
        for_each_row(&rows(commitment, T_RI_ARN), &self.has_arn.entries, |row, c| upfront[row] &= c);
    }

    /// The row loop: each row's group, and its inputs added to the group's sums.
    fn sum_rows(
        &mut self,
        path: &Path,
        net_present: bool,
        commitments: &[Option<&Float64Array>; COMMITMENT_FIELDS],
    ) -> Result<()> {
        let focus = self.layout.focus;
        let Self {
            groups,
            packed,
            sums,
            extra_of,
            extras,
            contracted_sums,
            pricing_sums,
            keys,
            row_groups,
            row_kinds,
            arn_fee,
            unblended,
            net,
            quantity,
            list,
            contracted,
            pricing,
            ..
        } = self;
        let net: &[i128] = if net_present { net } else { unblended };
        let add = |sum: &mut i128, v: i128, measure: &'static str| -> Result<()> {
            // Values are below 10^28 (checked per column), so this takes 10^10 rows of one group.
            *sum = sum.checked_add(v).ok_or_else(|| Error::SumOutOfRange { path: path.to_path_buf(), measure })?;
            Ok(())
        };
        // Two passes: first every row's group, then the sums. At a million groups both the
        // table probe and the group's sums miss the cache; apart, each pass's misses are
        // independent of one another and the CPU overlaps them (one loop chained probe → sums).
        find_groups(path, GroupsOf { groups, packed, sums, extra_of }, keys, row_groups)?;
        let prefetching = sums.len() * size_of::<Sums>() > PREFETCH_ABOVE_BYTES;
        for (row, (&k, &group)) in keys.iter().zip(row_groups.iter()).enumerate() {
            // The sums of the group `SUMS_AHEAD` rows on: requested now, in cache when reached.
            if prefetching && let Some(&ahead) = row_groups.get(row + SUMS_AHEAD) {
                prefetch_index::prefetch_index(&sums[..], ahead as usize);
            }
            if k & SKIP != 0 {
                continue;
            }
            let group = group as usize;
            let kind = row_kinds[row];
            let s = &mut sums[group];
            add(&mut s.unblended, unblended[row], "unblended_cost")?;
            add(&mut s.net, net[row], "net_unblended_cost")?;
            add(&mut s.list, list[row], "list_cost")?;
            // Every row's quantity: the group's pricing quantity, its usage amount on consumption
            // types (`amounts_from_scaled`; the line-item type is in the key).
            add(&mut s.quantity, quantity[row], "usage_amount")?;
            s.rows += 1;
            // FOCUS with a `ContractedCost` column only (empty otherwise).
            if let Some(&c) = contracted.get(row) {
                add(contracted_slot(contracted_sums, group, packed.len()), c, "contracted_cost")?;
            }
            // FOCUS with a `PricingQuantity` column only (empty otherwise).
            if let Some(&q) = pricing.get(row) {
                add(contracted_slot(pricing_sums, group, packed.len()), q, "pricing_quantity")?;
            }
            // FOCUS reads no commitment columns; its upfront purchases are marked like RI fees.
            if kind == LineItemKind::Fee || focus {
                if arn_fee.get(row).copied().unwrap_or(false) {
                    let e = extra_mut(path, &mut extra_of[group], extras)?;
                    add(&mut e.arn_fee_unblended, unblended[row], "unblended_cost")?;
                    add(&mut e.arn_fee_net, net[row], "net_unblended_cost")?;
                }
                continue;
            }
            for &field in commitments_read(kind) {
                if let Some(array) = commitments[field]
                    && array.is_valid(row)
                {
                    // Checked by `check_money_column`: a valid value always converts.
                    add(
                        &mut extra_mut(path, &mut extra_of[group], extras)?.commitments[field],
                        f64_to_scaled(array.value(row), MONEY_SCALE).unwrap_or(0),
                        "amortized_cost",
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Whether [`Partial::absorb`] of `other` fits the key: the distinct values of every key
    /// field after the merge (dates counted as if none were shared) within the key's bits.
    pub(super) fn can_absorb(&self, other: &Partial) -> bool {
        let mut sizes = self.sizes();
        sizes[F_PERIOD] += other.periods.len();
        sizes[F_DAY] += other.days.len();
        for (t, (mine, theirs)) in self.text.iter().zip(&other.text).take(KEY_TEXT).enumerate() {
            let new = (1..theirs.interner.len())
                .filter(|&id| !mine.interner.contains(theirs.interner.get(u32::try_from(id).unwrap_or(0))))
                .count();
            sizes[text_field(t)] += new;
        }
        self.key.fits(&sizes) || KeyLayout::for_sizes(&sizes, self.layout.key_bits).is_some()
    }

    /// Adds the groups of `other` (another partition of the same file) to this one's, in this
    /// partition's codes, so a file's groups become cost lines once rather than once per
    /// partition: hourly rows in no order put almost every group in every partition.
    pub(super) fn absorb(&mut self, path: &Path, mut other: Partial) -> Result<Step> {
        // Their group table (tens of MB at a million groups) is not needed to merge them: freed
        // before this table grows with their groups, which is when the peak of a scan is reached.
        drop(std::mem::take(&mut other.groups));
        let mut text_codes: Vec<Vec<u32>> = Vec::with_capacity(KEY_TEXT);
        for (mine, theirs) in self.text.iter_mut().zip(&other.text).take(KEY_TEXT) {
            let codes = (0..theirs.interner.len())
                .map(|id| mine.interner.intern(theirs.interner.get(u32::try_from(id).unwrap_or(0))))
                .collect::<Result<Vec<u32>>>()?;
            text_codes.push(codes);
        }
        let date_codes = |mine: &mut DateCodes, theirs: &DateCodes| -> Vec<u32> {
            (0..theirs.len()).map(|c| mine.code(theirs.value(u32::try_from(c).unwrap_or(0)).unwrap_or(0))).collect()
        };
        let periods = date_codes(&mut self.periods, &other.periods);
        let days = date_codes(&mut self.days, &other.days);
        let sizes = self.sizes();
        if !self.key.fits(&sizes) {
            let Some(wider) = KeyLayout::for_sizes(&sizes, self.layout.key_bits) else { return Ok(Step::KeyTooWide) };
            self.repack(wider);
        }
        let lost = || Error::Internal(format!("{}: a group lost a code while merging partitions", path.display()));
        let add = |sum: &mut i128, v: i128, measure: &'static str| -> Result<()> {
            *sum = sum.checked_add(v).ok_or_else(|| Error::SumOutOfRange { path: path.to_path_buf(), measure })?;
            Ok(())
        };
        // Three passes, as in `sum_rows`: every group's key in this table's codes (arithmetic on
        // small code tables, no cache miss), then every group's counterpart (a probe into a table
        // of up to a million groups, nearly always a cache miss: in a loop of probes alone, many
        // are in flight at once), then the sums, whose misses overlap the same way.
        // Their keys are rewritten in place (no second table of keys at a million groups).
        let mut keys = std::mem::take(&mut other.packed);
        for key in &mut keys {
            let theirs = other.key.unpack(*key);
            let mut fields = [0u32; KEY_FIELDS];
            fields[F_PERIOD] = *periods.get(theirs[F_PERIOD] as usize).ok_or_else(lost)?;
            fields[F_DAY] = *days.get(theirs[F_DAY] as usize).ok_or_else(lost)?;
            for (t, codes) in text_codes.iter().enumerate() {
                let f = text_field(t);
                fields[f] = *codes.get(theirs[f] as usize).ok_or_else(lost)?;
            }
            *key = self.key.pack(&fields);
        }
        let mut mine = Vec::with_capacity(keys.len());
        let prefetching = self.groups.prefetches();
        for (i, &key) in keys.iter().enumerate() {
            if prefetching && let Some(&ahead) = keys.get(i + PROBE_AHEAD) {
                self.groups.prefetch(ahead);
            }
            mine.push(self.group_of(path, key)?);
        }
        drop(keys);
        for (their_group, ((their_sums, &their_extra), &group)) in
            other.sums.iter().zip(&other.extra_of).zip(&mine).enumerate()
        {
            let group = group as usize;
            let s = &mut self.sums[group];
            add(&mut s.unblended, their_sums.unblended, "unblended_cost")?;
            add(&mut s.net, their_sums.net, "net_unblended_cost")?;
            add(&mut s.quantity, their_sums.quantity, "usage_amount")?;
            add(&mut s.list, their_sums.list, "list_cost")?;
            s.rows += their_sums.rows;
            if let Some(&c) = other.contracted_sums.get(their_group) {
                add(contracted_slot(&mut self.contracted_sums, group, self.packed.len()), c, "contracted_cost")?;
            }
            if let Some(&q) = other.pricing_sums.get(their_group) {
                add(contracted_slot(&mut self.pricing_sums, group, self.packed.len()), q, "pricing_quantity")?;
            }
            if their_extra != 0 {
                let theirs = other.extras.get(their_extra as usize - 1).ok_or_else(lost)?;
                let mine = extra_mut(path, &mut self.extra_of[group], &mut self.extras)?;
                for (m, t) in mine.commitments.iter_mut().zip(&theirs.commitments) {
                    add(m, *t, "amortized_cost")?;
                }
                add(&mut mine.arn_fee_unblended, theirs.arn_fee_unblended, "unblended_cost")?;
                add(&mut mine.arn_fee_net, theirs.arn_fee_net, "net_unblended_cost")?;
            }
        }
        Ok(self.account())
    }

    /// The group of a packed key (in the current layout), made if new.
    fn group_of(&mut self, path: &Path, key: u128) -> Result<u32> {
        let Self { groups, packed, sums, extra_of, .. } = self;
        groups.get_or_insert_with(key, || push_group(path, packed, sums, extra_of, key), || too_many_groups(path))
    }

    /// Number of groups.
    pub(super) fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether this is a FOCUS file's aggregation (its measures are summed differently, so it
    /// never merges with a CUR file's).
    pub(super) fn is_focus(&self) -> bool {
        self.layout.focus
    }

    /// The billing period and usage day of a group, checked as the generic plan checks them.
    fn period_and_day(&self, path: &Path, fields: &[u32; KEY_FIELDS]) -> Result<(BillingPeriod, NaiveDate)> {
        let lost = |what: &str| Error::Internal(format!("{}: a group lost its {what}", path.display()));
        let period_days = self.periods.value(fields[F_PERIOD]).ok_or_else(|| lost("billing period"))?;
        let day = self.days.value(fields[F_DAY]).ok_or_else(|| lost("usage day"))?;
        let period_day = super::super::epoch_day(period_days).ok_or_else(|| {
            bad_value(path, &self.layout.period.name, period_days.to_string(), "a date within chrono's range")
        })?;
        let period = BillingPeriod::starting_on(period_day)
            .ok_or_else(|| Error::BadBillingPeriod { path: path.to_path_buf(), value: period_day.to_string() })?;
        let usage_date = super::super::epoch_day(day).ok_or_else(|| {
            bad_value(path, &self.layout.usage_day.name, day.to_string(), "a date within chrono's range")
        })?;
        super::super::check_usage_date(path, &self.layout.usage_day.name, period, usage_date)?;
        Ok((period, usage_date))
    }

    /// What a file's groups say before they are merged with other files' (which loses which file
    /// a group came from): its invoice ids and row counts per billing period. Checks every
    /// group's dates, so a bad date is reported against this file, not the delivery.
    pub(super) fn summary(&self, path: &Path) -> Result<FileSummary> {
        let invoice = text_field(T_INVOICE);
        // Rows per (period code, day code, invoice id): a few thousand entries, not groups.
        let mut rows: HashMap<(u32, u32, u32), u64, FxBuild> = HashMap::default();
        // Three fields of each key, not all of them: this runs over every group of every
        // partition of every file (a full unpack here was ~3 % of a realistic month's scan).
        let key = self.key;
        for (&k, sums) in self.packed.iter().zip(&self.sums) {
            *rows.entry((key.field(k, F_PERIOD), key.field(k, F_DAY), key.field(k, invoice))).or_default() += sums.rows;
        }
        let mut summary = FileSummary::default();
        for ((period_code, day_code, invoice_id), n) in rows {
            let mut fields = [0u32; KEY_FIELDS];
            fields[F_PERIOD] = period_code;
            fields[F_DAY] = day_code;
            let (period, _) = self.period_and_day(path, &fields)?;
            summary.invoices.entry(period).or_default().add(self.text[T_INVOICE].interner.get(invoice_id), n);
            *summary.rows_per_period.entry(period).or_default() += n;
            summary.rows += n;
        }
        Ok(summary)
    }

    /// Converts the groups to keys and exact amounts, as `decode_groups` does for the generic
    /// plan, handing each to `sink` (so a caller can merge them without holding them twice).
    pub(super) fn finish<E: From<Error>>(
        mut self,
        path: &Path,
        mut sink: impl FnMut(BillingPeriod, CostKey, Amounts) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        // The key → group table is not needed to read the groups out: freed before the lines
        // are built (at a million groups it is tens of MB).
        self.groups = GroupTable::default();
        let empty = Name::default();
        let owned = |t: usize, id: u32| self.text[t].interner.name(id).unwrap_or(&empty).clone();
        let none = Extra::default();
        // One billing party per distinct combination of its six texts (a handful per file).
        let mut billings: HashMap<[u32; 6], Billing> = HashMap::default();
        let mut billing_names = Names::default();
        for (group, ((&key, sums), &slot)) in self.packed.iter().zip(&self.sums).zip(&self.extra_of).enumerate() {
            let fields = &self.key.unpack(key);
            let extra = if slot == 0 {
                &none
            } else {
                self.extras
                    .get(slot as usize - 1)
                    .ok_or_else(|| Error::Internal(format!("{}: a group lost its commitment sums", path.display())))?
            };
            let (period, usage_date) = self.period_and_day(path, fields)?;
            let id = |t: usize| fields[text_field(t)];
            let line_item_type = owned(T_LINE_ITEM_TYPE, id(T_LINE_ITEM_TYPE));
            let kind = LineItemKind::from_type_name(&line_item_type);
            let values = if self.layout.focus {
                self.focus_values(path, group, sums, extra)?
            } else {
                let measures = group_measures(kind, sums, extra)
                    .ok_or_else(|| Error::SumOutOfRange { path: path.to_path_buf(), measure: "amortized_cost" })?;
                super::super::with_contracted(false, kind, measures)
            };
            let billing_ids =
                [id(T_PAYER), id(T_PAYER_NAME), id(T_PROVIDER), id(T_PUBLISHER), id(T_ISSUER), id(T_INVOICE)];
            let billing = match billings.get(&billing_ids) {
                Some(billing) => billing.clone(),
                None => {
                    let text = |t: usize| self.text[t].interner.name(id(t)).map_or("", |n| n.as_str());
                    let parts = BillingParts {
                        account_id: text(T_PAYER),
                        account_name: text(T_PAYER_NAME),
                        provider: text(T_PROVIDER),
                        publisher: text(T_PUBLISHER),
                        invoice_issuer: text(T_ISSUER),
                        invoice_id: text(T_INVOICE),
                    };
                    let billing = Billing::intern(parts, &mut billing_names);
                    billings.insert(billing_ids, billing.clone());
                    billing
                }
            };
            let cost_key = CostKey {
                usage_date,
                tenant: self.text[T_TENANT].interner.name(id(T_TENANT)).cloned(),
                service: owned(T_SERVICE, id(T_SERVICE)),
                usage_type: owned(T_USAGE_TYPE, id(T_USAGE_TYPE)),
                usage_unit: owned(T_UNIT, id(T_UNIT)),
                operation: owned(T_OPERATION, id(T_OPERATION)),
                resource_id: owned(T_RESOURCE, id(T_RESOURCE)),
                line_item_type,
                currency: owned(T_CURRENCY, id(T_CURRENCY)),
                account_id: owned(T_ACCOUNT, id(T_ACCOUNT)),
                region: owned(T_REGION, id(T_REGION)),
                account_name: owned(T_ACCOUNT_NAME, id(T_ACCOUNT_NAME)),
                billing,
            };
            sink(period, cost_key, super::super::amounts_from_scaled(path, kind, values, sums.rows)?)?;
        }
        Ok(())
    }
}

/// A file's invoice ids and row counts per billing period ([`Partial::summary`]).
#[derive(Debug, Default)]
pub(crate) struct FileSummary {
    pub(crate) invoices: BTreeMap<BillingPeriod, Invoices>,
    pub(crate) rows_per_period: BTreeMap<BillingPeriod, u64>,
    /// Rows summed into groups (split-cost children are not).
    pub(crate) rows: u64,
}

impl FileSummary {
    /// Adds the summary of another part of the same file.
    pub(crate) fn combine(&mut self, other: FileSummary) {
        for (period, theirs) in other.invoices {
            let mine = self.invoices.entry(period).or_default();
            for id in &theirs.ids {
                mine.add(Some(id), 0);
            }
            if let Some(rows) = theirs.rows_without_id {
                mine.add(None, rows);
            }
        }
        for (period, rows) in other.rows_per_period {
            *self.rows_per_period.entry(period).or_default() += rows;
        }
        self.rows += other.rows;
    }
}

/// The entry of `table` every row of a dictionary-encoded batch has, when there is one: a
/// dictionary of one value and no NULL key, or only NULL keys (the default entry). `None` when
/// the rows differ or the batch is not dictionary-encoded.
fn single_value<T: Copy + Default>(rows: &RowIndices<'_>, table: &[T]) -> Option<T> {
    let RowIndices::Dict(keys) = rows else { return None };
    match keys.null_count() {
        0 if table.len() == 1 => Some(table[0]),
        n if n == keys.len() => Some(T::default()),
        _ => None,
    }
}

/// What a new group is added to: the key → group table and the per-group vectors.
struct GroupsOf<'a> {
    groups: &'a mut GroupTable,
    packed: &'a mut Vec<u128>,
    sums: &'a mut Vec<Sums>,
    extra_of: &'a mut Vec<u32>,
}

/// The first pass of the row loop ([`Partial::sum_rows`]): each row's group into `row_groups`
/// (0 for skipped rows), new keys made groups.
fn find_groups(path: &Path, to: GroupsOf<'_>, keys: &[u128], row_groups: &mut Vec<u32>) -> Result<()> {
    let GroupsOf { groups, packed, sums, extra_of } = to;
    row_groups.clear();
    row_groups.reserve(keys.len());
    // A table that fits in the caches is a `HashMap`, probed as fast without.
    let prefetching = groups.prefetches();
    for (row, &k) in keys.iter().enumerate() {
        // The table slot of the key `PROBE_AHEAD` rows on: requested now, in cache when reached.
        if prefetching
            && let Some(&ahead) = keys.get(row + PROBE_AHEAD)
            && ahead & SKIP == 0
        {
            groups.prefetch(ahead);
        }
        let group = if k & SKIP != 0 {
            0
        } else {
            groups.get_or_insert_with(k, || push_group(path, packed, sums, extra_of, k), || too_many_groups(path))?
        };
        row_groups.push(group);
    }
    Ok(())
}

/// A file with more groups than a group index holds.
fn too_many_groups(path: &Path) -> Error {
    Error::Internal(format!("{}: more than 4 billion groups", path.display()))
}

/// Appends a group with packed key `key` and no sums yet; its index.
fn push_group(
    path: &Path,
    packed: &mut Vec<u128>,
    sums: &mut Vec<Sums>,
    extra_of: &mut Vec<u32>,
    key: u128,
) -> Result<u32> {
    let group = u32::try_from(packed.len()).map_err(|_| too_many_groups(path))?;
    packed.push(key);
    sums.push(Sums::default());
    extra_of.push(0);
    Ok(group)
}

impl Partial {
    /// A FOCUS group's measures ([`crate::plan::SUM_COLUMNS`] order) from its sums.
    fn focus_values(&self, path: &Path, group: usize, sums: &Sums, extra: &Extra) -> Result<[i128; MEASURE_SUMS]> {
        let contracted = self.contracted_sums.get(group).copied().unwrap_or(0);
        // Upfront: the billed cost of one-time commitment purchases; true-up: the rest of
        // billed − effective, so that unblended = amortized + true-up + upfront.
        let upfront = extra.arn_fee_unblended;
        let trueup = sums
            .unblended
            .checked_sub(sums.net)
            .and_then(|d| d.checked_sub(upfront))
            .ok_or_else(|| Error::SumOutOfRange { path: path.to_path_buf(), measure: "ri_sp_trueup" })?;
        let pricing = match self.layout.pricing {
            Some(_) => self.pricing_sums.get(group).copied().unwrap_or(0),
            None => sums.quantity,
        };
        Ok([sums.unblended, sums.unblended, sums.net, trueup, upfront, sums.quantity, sums.list, contracted, pricing])
    }
}

/// The contracted-cost (or pricing-quantity) sum of `group` in `sums`, which grows to `groups` entries (zeros) first
/// when it is shorter.
#[inline]
fn contracted_slot(sums: &mut Vec<i128>, group: usize, groups: usize) -> &mut i128 {
    if sums.len() <= group {
        sums.resize(groups.max(group + 1), 0);
    }
    &mut sums[group]
}

/// The [`Extra`] of the group whose slot is `slot`, made on first use.
#[inline]
fn extra_mut<'a>(path: &Path, slot: &mut u32, extras: &'a mut Vec<Extra>) -> Result<&'a mut Extra> {
    if *slot == 0 {
        extras.push(Extra::default());
        *slot = u32::try_from(extras.len())
            .map_err(|_| Error::Internal(format!("{}: more than 4 billion groups", path.display())))?;
    }
    Ok(&mut extras[*slot as usize - 1])
}

/// Codes of a batch's dates into `out`; NULL rows get code 0 and are listed in `nulls` with
/// `which` (the caller decides whether they matter).
fn code_dates(
    dates: &[Option<i32>],
    codes: &mut DateCodes,
    out: &mut Vec<u32>,
    which: usize,
    nulls: &mut Vec<(usize, usize)>,
) {
    out.clear();
    out.extend(dates.iter().enumerate().map(|(row, date)| match date {
        Some(day) => codes.code(*day),
        None => {
            nulls.push((row, which));
            0
        }
    }));
}

/// A money column that may be absent (then all 0).
fn read_money(path: &Path, slot: Option<&Slot>, batch: &RecordBatch, scale: u32, out: &mut Vec<i128>) -> Result<()> {
    match slot {
        Some(slot) => {
            money_column(path, slot, batch, scale, out)?;
        }
        None => {
            out.clear();
            out.resize(batch.num_rows(), 0);
        }
    }
    Ok(())
}

/// The sums of a CUR group ([`super::super::plan::SUM_COLUMNS`] order) from its inputs' sums:
/// the measures of the summed inputs, split into the `Fee` rows with a reservation ARN and the
/// rest, which is exact because the measures are additive (see the module docs). The contracted
/// cost is left 0, for [`super::super::with_contracted`] to derive.
fn group_measures(kind: LineItemKind, sums: &Sums, extra: &Extra) -> Option<[i128; MEASURE_SUMS]> {
    let rest = RowInputs {
        kind,
        has_reservation_arn: false,
        unblended: sums.unblended.checked_sub(extra.arn_fee_unblended)?,
        net_unblended: Some(sums.net.checked_sub(extra.arn_fee_net)?),
        commitments: CommitmentAmounts::from_array(extra.commitments),
    };
    let arn_fee = RowInputs {
        kind,
        has_reservation_arn: true,
        unblended: extra.arn_fee_unblended,
        net_unblended: Some(extra.arn_fee_net),
        commitments: CommitmentAmounts::default(),
    };
    let both = |m: Measure| m.eval(&rest).checked_add(m.eval(&arn_fee));
    Some([
        sums.unblended,
        both(Measure::NetUnblended)?,
        both(Measure::Amortized)?,
        both(Measure::RiSpTrueup)?,
        both(Measure::RiSpUpfrontFees)?,
        sums.quantity,
        sums.list,
        0,
        // A CUR's pricing quantity is every row's usage amount.
        sums.quantity,
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Per-row evaluation, as the generic plan's UDFs do it.
    fn per_row(rows: &[RowInputs]) -> [i128; 5] {
        let mut out = [0i128; 5];
        for r in rows {
            out[0] += r.unblended;
            for (i, m) in Measure::ALL.iter().enumerate() {
                out[i + 1] += m.eval(r);
            }
        }
        out
    }

    #[test]
    fn a_batch_of_one_value_is_folded_and_a_mixed_one_is_not() {
        use arrow::array::Int32Array;
        let one = Int32Array::from(vec![0, 0, 0]);
        assert_eq!(single_value(&RowIndices::Dict(&one), &[7u128]), Some(7));
        assert_eq!(single_value(&RowIndices::Dict(&one), &[7u128, 8]), None, "one key, two values: not known");
        let nulls = Int32Array::from(vec![None, None]);
        assert_eq!(single_value(&RowIndices::Dict(&nulls), &[7u128]), Some(0), "all NULL: the default");
        let some_null = Int32Array::from(vec![Some(0), None]);
        assert_eq!(single_value(&RowIndices::Dict(&some_null), &[7u128]), None);
        assert_eq!(single_value(&RowIndices::Ids(&[1, 1]), &[0u128, 7]), None, "plain batches are not looked at");
    }

    #[test]
    fn measures_of_summed_inputs_equal_summed_measures_for_every_type() {
        for code in 0..=u8::MAX {
            let kind = LineItemKind::from_code(code);
            let rows: Vec<RowInputs> = (1..=6i128)
                .map(|i| RowInputs {
                    kind,
                    has_reservation_arn: i % 2 == 0,
                    unblended: 1000 * i + 7,
                    net_unblended: (i % 3 != 0).then_some(900 * i),
                    commitments: CommitmentAmounts::from_array(std::array::from_fn(|f| (f as i128 + 1) * 37 * i)),
                })
                .collect();
            // What the row loop accumulates.
            let mut sums = Sums::default();
            let mut extra = Extra::default();
            for r in &rows {
                let net = r.net_unblended.unwrap_or(r.unblended);
                sums.unblended += r.unblended;
                sums.net += net;
                sums.rows += 1;
                if kind == LineItemKind::Fee {
                    if r.has_reservation_arn {
                        extra.arn_fee_unblended += r.unblended;
                        extra.arn_fee_net += net;
                    }
                } else {
                    let all = [
                        r.commitments.sp_effective_cost,
                        r.commitments.sp_total_commitment_to_date,
                        r.commitments.sp_used_commitment,
                        r.commitments.sp_amortized_upfront_commitment,
                        r.commitments.ri_effective_cost,
                        r.commitments.ri_unused_amortized_upfront_fee,
                        r.commitments.ri_unused_recurring_fee,
                        r.commitments.ri_amortized_upfront_fee,
                    ];
                    for &f in commitments_read(kind) {
                        extra.commitments[f] += all[f];
                    }
                }
            }
            let grouped = group_measures(kind, &sums, &extra).unwrap();
            assert_eq!(grouped[..5], per_row(&rows), "{kind:?}");
        }
    }
}
