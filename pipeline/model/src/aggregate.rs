//! The aggregate model: cost lines keyed at the stored grain, with exact amounts.
//!
//! DataFusion aggregates each file; [`PeriodAggregate`] merges the per-file partial sums with
//! exact `Decimal` additions (a few thousand groups per file, not rows).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::billing::Billing;
use crate::error::ModelError;

/// Result of the model's exact arithmetic.
type Result<T> = std::result::Result<T, ModelError>;
use crate::fxhash::FxBuild;
use crate::line_item::LineItemKind;
use crate::name::Name;
use crate::period::BillingPeriod;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The grain of a stored cost line.
///
/// Tagged rows are kept per (day, tenant, service, usage type, line-item type, currency, usage
/// account, region).
/// Untagged rows (the **shared pool** that attribution splits) additionally keep operation and
/// resource id; for tagged rows those two are empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CostKey {
    pub usage_date: NaiveDate,
    /// `None` = shared pool (no tenant tag on the row).
    pub tenant: Option<Name>,
    pub service: Name,
    pub usage_type: Name,
    /// `pricing/unit` of the usage quantity (`Lambda-GB-Second`, `Requests`, ...; empty when the
    /// report has no unit column). Part of the key so quantities in different units never add up.
    pub usage_unit: Name,
    pub operation: Name,
    pub resource_id: Name,
    pub line_item_type: Name,
    pub currency: Name,
    /// The usage account (`lineItem/UsageAccountId`, FOCUS `SubAccountId`): the linked account
    /// that used the resource; empty when the report has no such column.
    pub account_id: Name,
    /// The usage account's name where the report has it (CUR 2.0 `line_item_usage_account_name`,
    /// FOCUS `SubAccountName`); empty otherwise. Determined by the account id, so it adds no group.
    pub account_name: Name,
    /// The region code (`product/region`, CUR 2.0 `product_region_code`, FOCUS `RegionId`);
    /// empty for global charges and when the report has no region column.
    pub region: Name,
    /// Who bills the line: payer account, provider, publisher, invoice issuer ([`Billing`]).
    /// Determined by the usage account and the product, so it adds no group.
    pub billing: Billing,
}

/// Sums of every measure over a set of CUR rows. Money at 12 places, usage at 10.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    pub unblended_cost: Decimal,
    pub net_unblended_cost: Decimal,
    pub amortized_cost: Decimal,
    pub ri_sp_trueup: Decimal,
    pub ri_sp_upfront_fees: Decimal,
    /// Usage amount of consumption rows only (see [`LineItemKind::counts_usage`]).
    pub usage_amount: Decimal,
    /// The usage amount of every row, whatever its type (`lineItem/UsageAmount`, FOCUS
    /// `ConsumedQuantity`): the line's pricing quantity (FOCUS `PricingQuantity`), e.g. the hours
    /// a Savings Plan fee or an RI fee bills. Equal to `usage_amount` on consumption lines; on
    /// negations, fees and purchases the quantity `usage_amount` leaves out (a negation repeats
    /// the covered usage, so summing this across line-item types counts it twice).
    pub pricing_quantity: Decimal,
    /// Number of CUR rows summed.
    pub line_items: u64,
    /// List cost: the public on-demand price of the usage (`pricing/publicOnDemandCost`, FOCUS
    /// `ListCost`; 0 where the report leaves it empty: tax, credits, fees, negations). Outside the
    /// unblended identity: `list_cost - amortized_cost` is what commitments and discounts saved.
    pub list_cost: Decimal,
    /// Contracted cost: the usage at the negotiated (contracted) price, before commitment
    /// discounts (FOCUS `ContractedCost`). A CUR has no such column: see
    /// [`crate::measures::cur_contracted_cost`] for how curflow derives it there.
    pub contracted_cost: Decimal,
}

/// Names of the money measures, in the order used by every output.
pub const MONEY_MEASURES: [&str; 7] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "list_cost",
    "contracted_cost",
];

impl Amounts {
    /// Adds `other` exactly; a sum needing more than `Decimal`'s 28 significant digits is an error
    /// naming the measure, never a rounded value (`rust_decimal`'s own `+` would round).
    pub fn add(&mut self, other: &Amounts) -> Result<()> {
        let add = |a: Decimal, b: Decimal, what: &str| add_exact(a, b, || format!("the sum of {what}"));
        self.unblended_cost = add(self.unblended_cost, other.unblended_cost, "unblended_cost")?;
        self.net_unblended_cost = add(self.net_unblended_cost, other.net_unblended_cost, "net_unblended_cost")?;
        self.amortized_cost = add(self.amortized_cost, other.amortized_cost, "amortized_cost")?;
        self.ri_sp_trueup = add(self.ri_sp_trueup, other.ri_sp_trueup, "ri_sp_trueup")?;
        self.ri_sp_upfront_fees = add(self.ri_sp_upfront_fees, other.ri_sp_upfront_fees, "ri_sp_upfront_fees")?;
        self.usage_amount = add(self.usage_amount, other.usage_amount, "usage_amount")?;
        self.pricing_quantity = add(self.pricing_quantity, other.pricing_quantity, "pricing_quantity")?;
        self.list_cost = add(self.list_cost, other.list_cost, "list_cost")?;
        self.contracted_cost = add(self.contracted_cost, other.contracted_cost, "contracted_cost")?;
        self.line_items = self
            .line_items
            .checked_add(other.line_items)
            .ok_or_else(|| ModelError::Overflow { what: "the count of line items".into() })?;
        Ok(())
    }

    /// The money measures as (name, value), in [`MONEY_MEASURES`] order.
    pub fn money(&self) -> [(&'static str, Decimal); 7] {
        [
            (MONEY_MEASURES[0], self.unblended_cost),
            (MONEY_MEASURES[1], self.net_unblended_cost),
            (MONEY_MEASURES[2], self.amortized_cost),
            (MONEY_MEASURES[3], self.ri_sp_trueup),
            (MONEY_MEASURES[4], self.ri_sp_upfront_fees),
            (MONEY_MEASURES[5], self.list_cost),
            (MONEY_MEASURES[6], self.contracted_cost),
        ]
    }

    /// Sums a sequence of amounts.
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Amounts>) -> Result<Amounts> {
        let mut total = AmountsSum::default();
        for a in items {
            total.add(a)?;
        }
        total.total()
    }
}

/// A running exact total of many [`Amounts`] ([`curflow_money::ExactSum`] per measure): what
/// [`Amounts::sum`] and the stores' conservation checks use, several times faster than
/// [`Amounts::add`] per line and equal to it whenever that succeeds.
#[derive(Debug, Clone, Default)]
pub struct AmountsSum {
    measures: [curflow_money::ExactSum; 9],
    line_items: u64,
}

/// The measures of [`AmountsSum`], in its order.
const SUMMED: [&str; 9] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "usage_amount",
    "list_cost",
    "contracted_cost",
    "pricing_quantity",
];

impl AmountsSum {
    pub fn add(&mut self, a: &Amounts) -> Result<()> {
        let values = [
            a.unblended_cost,
            a.net_unblended_cost,
            a.amortized_cost,
            a.ri_sp_trueup,
            a.ri_sp_upfront_fees,
            a.usage_amount,
            a.list_cost,
            a.contracted_cost,
            a.pricing_quantity,
        ];
        for (sum, value) in self.measures.iter_mut().zip(values) {
            sum.add(value);
        }
        self.line_items = self
            .line_items
            .checked_add(a.line_items)
            .ok_or_else(|| ModelError::Overflow { what: "the count of line items".into() })?;
        Ok(())
    }

    /// The totals; [`ModelError::Overflow`] naming the measure whose sum has no exact `Decimal`.
    pub fn total(&self) -> Result<Amounts> {
        let mut totals = [Decimal::ZERO; 9];
        for ((total, sum), name) in totals.iter_mut().zip(&self.measures).zip(SUMMED) {
            *total = sum.total().ok_or_else(|| ModelError::Overflow { what: format!("the sum of {name}") })?;
        }
        let [
            unblended_cost,
            net_unblended_cost,
            amortized_cost,
            ri_sp_trueup,
            ri_sp_upfront_fees,
            usage_amount,
            list_cost,
            contracted_cost,
            pricing_quantity,
        ] = totals;
        Ok(Amounts {
            unblended_cost,
            net_unblended_cost,
            amortized_cost,
            ri_sp_trueup,
            ri_sp_upfront_fees,
            usage_amount,
            line_items: self.line_items,
            list_cost,
            contracted_cost,
            pricing_quantity,
        })
    }
}

/// `a + b`, exactly (the workspace's one exact adder, [`curflow_money::exact_add`]), or
/// [`ModelError::Overflow`] naming `what` when the sum has no exact `Decimal` (more than 28
/// significant digits). Every total of the pipeline goes through here or [`Amounts::add`].
pub fn add_exact(a: Decimal, b: Decimal, what: impl FnOnce() -> String) -> Result<Decimal> {
    curflow_money::exact_add(a, b).ok_or_else(|| ModelError::Overflow { what: what() })
}

/// Σ `values` exactly, or [`ModelError::Overflow`] naming `what`.
pub fn sum_exact(values: impl IntoIterator<Item = Decimal>, what: impl Fn() -> String) -> Result<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, |acc, v| add_exact(acc, v, &what))
}

/// How a tenant's row was attributed from a shared-pool line (see `attribute`).
///
/// The texts are shared [`Name`]s: a 10,000-tenant month has over a million attributed rows, and
/// three small strings each would be 150 MB of copies of a handful of rule names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The rule that routed the line (or `assignment:<pattern>`).
    pub rule: Name,
    /// `assignment`, `usage_driver`, `direct_cost`, `even` or `fixed`.
    pub basis: Name,
    /// The usage driver of proportional rules (`lambda_gb_seconds`, ...).
    pub driver: Option<Name>,
    /// The tenant's weight and the line's total weight.
    pub quantity: Decimal,
    pub quantity_total: Decimal,
    /// `quantity / quantity_total`, 12 places (display only; amounts are split exactly).
    pub share: Decimal,
}

/// Where a stored line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineSource {
    /// A CUR row tagged with the tenant.
    Cur,
    /// Untagged CUR cost still in the shared pool (tenant `UNATTRIBUTED`).
    Shared,
    /// A tenant's part of a shared line, split from usage evidence or a fallback policy.
    Attributed,
}

impl LineSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LineSource::Cur => "cur",
            LineSource::Shared => "shared",
            LineSource::Attributed => "attributed",
        }
    }
}

/// One stored row: a key and its amounts, within a billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostLine {
    pub period: BillingPeriod,
    #[serde(flatten)]
    pub key: CostKey,
    #[serde(flatten)]
    pub amounts: Amounts,
    /// Set on attributed rows (boxed: most lines have none, and a line's size is what a
    /// million-line month holds in memory).
    pub attribution: Option<Box<Attribution>>,
    /// Why a shared row is still unattributed, once attribution has run.
    pub unattributed_reason: Option<String>,
}

impl CostLine {
    pub fn new(period: BillingPeriod, key: CostKey, amounts: Amounts) -> Self {
        Self { period, key, amounts, attribution: None, unattributed_reason: None }
    }

    pub fn source(&self) -> LineSource {
        match (&self.attribution, &self.key.tenant) {
            (Some(_), _) => LineSource::Attributed,
            (None, Some(_)) => LineSource::Cur,
            (None, None) => LineSource::Shared,
        }
    }
}

/// Puts lines in the order every store returns them: by key, then source, then the attribution's
/// rule, basis and driver (attributed parts at the reader's grain can share a key under different
/// rules), then the unattributed reason.
pub fn sort_lines(lines: &mut [CostLine]) {
    /// An attribution's rule, basis and driver.
    type Routing<'a> = Option<(&'a str, &'a str, Option<&'a str>)>;
    fn order(l: &CostLine) -> (&CostKey, &'static str, Routing<'_>, Option<&str>) {
        let rule = l.attribution.as_deref().map(|a| (a.rule.as_str(), a.basis.as_str(), a.driver.as_deref()));
        (&l.key, l.source().as_str(), rule, l.unattributed_reason.as_deref())
    }
    lines.sort_by(|a, b| order(a).cmp(&order(b)));
}

/// Row counts and unblended cost per line-item type, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeStats {
    pub rows: u64,
    pub unblended_cost: Decimal,
    /// Whether curflow knows the type (unknown ones take the default branch: unblended).
    pub known: bool,
    /// Commitment columns this type's amortized cost or true-up reads that a file of the delivery
    /// lacks (counted as 0 there), as the file spells them; empty when every one was present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_columns: Vec<String>,
}

/// Everything one delivery produced, merged across its files.
///
/// The merged lines live in fixed-size chunks in the shape they are returned in, found by key
/// through a table of indices: at a million groups (a realistic SaaS month) a map from key to
/// amounts followed by a conversion into lines held both at once, and the table of `u32`s costs a
/// few bytes a line instead. Chunks, not one `Vec`: a `Vec` grows by doubling, and each doubling
/// briefly holds the old buffer and its copy (at 4M lines of ~370 bytes then, 0.8 GB on top of the
/// 1.5 GB of lines); a new chunk copies nothing.
///
/// The first chunk is as large as [`PeriodAggregate::reserve`] asked before any line was added
/// (the lines a delivery's groups will make, when they are known): a delivery whose lines all fit
/// it is returned by [`PeriodAggregate::into_lines`] without copying them into one `Vec` (at
/// half a million lines, 150 MB copied into freshly faulted pages: most of the time between the
/// scan and the write, more than the sort).
#[derive(Default)]
pub struct PeriodAggregate {
    chunks: Chunks,
    len: usize,
    index: HashTable<u32>,
    /// Whether [`PeriodAggregate::push_unmerged`] added lines the index does not know (lines of
    /// one key are then merged by [`PeriodAggregate::into_lines`], after its sort).
    unmerged: bool,
}

/// The lines of a [`PeriodAggregate`]: a first chunk of `first` lines, then chunks of
/// [`CHUNK_LINES`].
#[derive(Default)]
struct Chunks {
    chunks: Vec<Vec<CostLine>>,
    /// Lines the first chunk holds ([`CHUNK_LINES`] unless reserved larger).
    first: usize,
}

impl Chunks {
    /// (chunk, position) of line `i`.
    fn locate(&self, i: u32) -> (usize, usize) {
        let i = i as usize;
        let first = self.first_len();
        if i < first {
            (0, i)
        } else {
            let j = i - first;
            (1 + (j >> CHUNK_BITS), j & (CHUNK_LINES - 1))
        }
    }

    fn first_len(&self) -> usize {
        if self.first == 0 { CHUNK_LINES } else { self.first }
    }

    fn get(&self, i: u32) -> &CostLine {
        let (c, at) = self.locate(i);
        &self.chunks[c][at]
    }

    fn get_mut(&mut self, i: u32) -> &mut CostLine {
        let (c, at) = self.locate(i);
        &mut self.chunks[c][at]
    }

    fn push(&mut self, line: CostLine) {
        let limit = if self.chunks.len() == 1 { self.first_len() } else { CHUNK_LINES };
        match self.chunks.last_mut() {
            Some(last) if last.len() < limit => last.push(line),
            _ => {
                let mut chunk = Vec::with_capacity(if self.chunks.is_empty() { self.first_len() } else { CHUNK_LINES });
                chunk.push(line);
                self.chunks.push(chunk);
            }
        }
    }
}

/// Lines per chunk of a [`PeriodAggregate`] (a power of two: an index splits with a shift):
/// ~3 MB, so the last chunk's unused room is small.
const CHUNK_BITS: u32 = 13;
const CHUNK_LINES: usize = 1 << CHUNK_BITS;
/// Chunks moved by [`PeriodAggregate::into_lines`] between two returns of freed memory (~24 MB).
const CHUNKS_PER_RELEASE: usize = 8;

impl std::fmt::Debug for PeriodAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodAggregate").field("lines", &self.len).finish()
    }
}

fn hash_key(period: BillingPeriod, key: &CostKey) -> u64 {
    FxBuild.hash_one((period, key))
}

impl PeriodAggregate {
    pub fn add(&mut self, period: BillingPeriod, key: CostKey, amounts: &Amounts) -> Result<()> {
        let hash = hash_key(period, &key);
        let chunks = &mut self.chunks;
        let found = self.index.find(hash, |&i| {
            let line = chunks.get(i);
            line.period == period && line.key == key
        });
        if let Some(&i) = found {
            return chunks.get_mut(i).amounts.add(amounts);
        }
        let i = u32::try_from(self.len)
            .map_err(|_| ModelError::Overflow { what: "the number of cost lines of one delivery".into() })?;
        self.index.insert_unique(hash, i, |&j| {
            let line = chunks.get(j);
            hash_key(line.period, &line.key)
        });
        chunks.push(CostLine::new(period, key, *amounts));
        self.len += 1;
        Ok(())
    }

    /// Adds a line without looking for one of the same key: [`PeriodAggregate::into_lines`]
    /// merges lines of one key after sorting them, where they are neighbours. For a delivery's
    /// last lines (its groups in codes, built after every file was read): nothing is merged into
    /// them afterwards, and finding each half-million keys in the index (hashing every text of
    /// the key) cost more than comparing neighbours after the sort, which runs anyway.
    pub fn push_unmerged(&mut self, period: BillingPeriod, key: CostKey, amounts: &Amounts) -> Result<()> {
        u32::try_from(self.len)
            .map_err(|_| ModelError::Overflow { what: "the number of cost lines of one delivery".into() })?;
        self.chunks.push(CostLine::new(period, key, *amounts));
        self.len += 1;
        self.unmerged = true;
        Ok(())
    }

    /// Room in the first chunk for `additional` lines to be added by
    /// [`PeriodAggregate::push_unmerged`] (which needs no index), before any line was added.
    pub fn reserve_unmerged(&mut self, additional: usize) {
        if self.chunks.chunks.is_empty() && additional > CHUNK_LINES {
            self.chunks.first = self.chunks.first.max(additional);
        }
    }

    /// Room for `additional` more lines (a delivery's first file, or its groups in codes, tell
    /// how many to expect: one allocation instead of doublings). In the index; and, before the
    /// first line, in the first chunk (see [`PeriodAggregate`]).
    pub fn reserve(&mut self, additional: usize) {
        self.reserve_unmerged(additional);
        let chunks = &self.chunks;
        self.index.reserve(additional, |&j| {
            let line = chunks.get(j);
            hash_key(line.period, &line.key)
        });
    }

    /// Number of lines so far: distinct (period, key) lines, unless some were added by
    /// [`PeriodAggregate::push_unmerged`].
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn periods(&self) -> Vec<BillingPeriod> {
        let mut p: Vec<_> = self.chunks.chunks.iter().flatten().map(|l| l.period).collect();
        p.sort();
        p.dedup();
        p
    }

    /// The merged lines, sorted by key (deterministic output and storage order), one per (period,
    /// key). Fails only if merging lines added by [`PeriodAggregate::push_unmerged`] overflows a
    /// sum.
    pub fn into_lines(self) -> Result<Vec<CostLine>> {
        let Self { chunks: Chunks { mut chunks, .. }, len, index, unmerged } = self;
        drop(index);
        let mut lines = if chunks.len() == 1 {
            // All in the (reserved) first chunk: nothing to copy.
            chunks.pop().unwrap_or_default()
        } else {
            // Each chunk is freed once moved and handed back to the OS at once: the lines are
            // held about once, not twice (the new buffer's pages become resident only as they
            // are written).
            let mut lines = Vec::with_capacity(len);
            for (i, chunk) in chunks.into_iter().enumerate() {
                lines.extend(chunk);
                if i % CHUNKS_PER_RELEASE == CHUNKS_PER_RELEASE - 1 {
                    crate::memory::release_freed_memory();
                }
            }
            lines
        };
        // Keys are unique (or merged next), so an unstable sort gives the same order, without a
        // buffer.
        lines.sort_unstable_by(|a, b| (a.period, &a.key).cmp(&(b.period, &b.key)));
        if unmerged {
            merge_neighbours(&mut lines)?;
        }
        Ok(lines)
    }
}

/// Merges runs of lines of the same (period, key) in sorted `lines` into their first line.
fn merge_neighbours(lines: &mut Vec<CostLine>) -> Result<()> {
    let mut kept = 0usize;
    for i in 0..lines.len() {
        if kept > 0 && lines[kept - 1].period == lines[i].period && lines[kept - 1].key == lines[i].key {
            let amounts = lines[i].amounts;
            lines[kept - 1].amounts.add(&amounts)?;
        } else {
            lines.swap(kept, i);
            kept += 1;
        }
    }
    lines.truncate(kept);
    Ok(())
}

/// Totals of a set of lines per currency (amounts are never added across currencies).
pub fn totals_by_currency<'a>(lines: impl IntoIterator<Item = &'a CostLine>) -> Result<BTreeMap<String, Amounts>> {
    let mut sums: BTreeMap<String, AmountsSum> = BTreeMap::new();
    for line in lines {
        match sums.get_mut(line.key.currency.as_str()) {
            Some(sum) => sum.add(&line.amounts)?,
            None => sums.entry(line.key.currency.to_string()).or_default().add(&line.amounts)?,
        }
    }
    sums.into_iter().map(|(currency, sum)| Ok((currency, sum.total()?))).collect()
}

/// Row counts and unblended cost per line-item type.
pub fn line_item_types(lines: &[CostLine]) -> Result<BTreeMap<String, TypeStats>> {
    let mut types: BTreeMap<String, (TypeStats, curflow_money::ExactSum)> = BTreeMap::new();
    for line in lines {
        let name = line.key.line_item_type.as_str();
        if !types.contains_key(name) {
            let known = LineItemKind::is_known_name(name);
            types.insert(name.to_string(), (TypeStats { known, ..TypeStats::default() }, Default::default()));
        }
        let Some((t, unblended)) = types.get_mut(name) else { continue };
        t.rows += line.amounts.line_items;
        unblended.add(line.amounts.unblended_cost);
    }
    types
        .into_iter()
        .map(|(name, (t, unblended))| {
            let unblended_cost = unblended
                .total()
                .ok_or_else(|| ModelError::Overflow { what: format!("the unblended_cost of line-item type {name}") })?;
            Ok((name, TypeStats { unblended_cost, ..t }))
        })
        .collect()
}

/// What [`line_item_types`] and [`totals_by_currency`] give for a period's lines (and their
/// tenants), gathered a chunk at a time: a period whose lines are written as they are made (the
/// attributed rows of a split, a day at a time) is summarised without being held.
#[derive(Debug, Default)]
pub struct LineStats {
    lines: usize,
    types: BTreeMap<String, (TypeStats, curflow_money::ExactSum)>,
    totals: BTreeMap<String, AmountsSum>,
    /// Lines without a tenant (the shared pool's unattributed part).
    unattributed: BTreeMap<String, AmountsSum>,
    tenants: std::collections::HashSet<Name, FxBuild>,
}

impl LineStats {
    /// Adds `lines` to the statistics.
    pub fn add(&mut self, lines: &[CostLine]) -> Result<()> {
        for line in lines {
            let name = line.key.line_item_type.as_str();
            if !self.types.contains_key(name) {
                let known = LineItemKind::is_known_name(name);
                self.types.insert(name.to_string(), (TypeStats { known, ..TypeStats::default() }, Default::default()));
            }
            if let Some((t, unblended)) = self.types.get_mut(name) {
                t.rows += line.amounts.line_items;
                unblended.add(line.amounts.unblended_cost);
            }
            let currency = line.key.currency.as_str();
            match self.totals.get_mut(currency) {
                Some(sum) => sum.add(&line.amounts)?,
                None => self.totals.entry(currency.to_string()).or_default().add(&line.amounts)?,
            }
            match &line.key.tenant {
                Some(tenant) => {
                    if !self.tenants.contains(tenant) {
                        self.tenants.insert(tenant.clone());
                    }
                }
                None => match self.unattributed.get_mut(currency) {
                    Some(sum) => sum.add(&line.amounts)?,
                    None => self.unattributed.entry(currency.to_string()).or_default().add(&line.amounts)?,
                },
            }
        }
        self.lines += lines.len();
        Ok(())
    }

    /// Lines added.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Distinct tenants of the lines added.
    pub fn tenants(&self) -> usize {
        self.tenants.len()
    }

    /// [`line_item_types`] of the lines added.
    pub fn line_item_types(&self) -> Result<BTreeMap<String, TypeStats>> {
        self.types
            .iter()
            .map(|(name, (t, unblended))| {
                let unblended_cost = unblended.total().ok_or_else(|| ModelError::Overflow {
                    what: format!("the unblended_cost of line-item type {name}"),
                })?;
                Ok((name.clone(), TypeStats { unblended_cost, ..t.clone() }))
            })
            .collect()
    }

    /// [`totals_by_currency`] of the lines added.
    pub fn totals(&self) -> Result<BTreeMap<String, Amounts>> {
        self.totals.iter().map(|(currency, sum)| Ok((currency.clone(), sum.total()?))).collect()
    }

    /// [`totals_by_currency`] of the lines added that have no tenant.
    pub fn unattributed(&self) -> Result<BTreeMap<String, Amounts>> {
        self.unattributed.iter().map(|(currency, sum)| Ok((currency.clone(), sum.total()?))).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn key(tenant: Option<&str>, currency: &str) -> CostKey {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        CostKey {
            usage_unit: "Requests".into(),
            currency: currency.into(),
            ..crate::testing::cost_key(day, tenant, "AWSLambda", "USE1-Request")
        }
    }

    fn amounts(unblended: &str) -> Amounts {
        let d = Decimal::from_str(unblended).unwrap();
        Amounts { unblended_cost: d, net_unblended_cost: d, amortized_cost: d, line_items: 1, ..Amounts::default() }
    }

    #[test]
    fn partial_sums_of_one_key_merge_exactly() {
        let p = BillingPeriod::new(2026, 10).unwrap();
        let mut agg = PeriodAggregate::default();
        agg.add(p, key(Some("a"), "USD"), &amounts("0.000000000001")).unwrap();
        agg.add(p, key(Some("a"), "USD"), &amounts("0.1")).unwrap();
        agg.add(p, key(None, "USD"), &amounts("2")).unwrap();
        let lines = agg.into_lines().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].key.tenant, None, "shared pool sorts first");
        assert_eq!(lines[1].amounts.unblended_cost.to_string(), "0.100000000001");
        assert_eq!(lines[1].amounts.line_items, 2);
    }

    /// A line's size is what a month of millions of groups holds in memory until it is written
    /// (README, Limits): 296 bytes since names are 8-byte pointers (368 with `Arc<str>`, before
    /// the pricing quantity's 16).
    #[test]
    fn a_cost_line_stays_small() {
        assert_eq!(size_of::<CostKey>(), 104);
        assert!(size_of::<CostLine>() <= 296, "{} bytes", size_of::<CostLine>());
    }

    /// More lines than one chunk holds: every key found again in whichever chunk holds it (sums
    /// merge, nothing is duplicated), and the lines come back sorted across chunks.
    #[test]
    fn lines_across_chunks_merge_by_key_and_come_back_sorted() {
        let p = BillingPeriod::new(2026, 10).unwrap();
        let n = 2 * CHUNK_LINES + 123;
        let tenant = |i: usize| format!("t{:07}", (i * 7919) % n);
        let mut agg = PeriodAggregate::default();
        for round in 0..2 {
            for i in 0..n {
                let t = tenant(i);
                agg.add(p, key(Some(t.as_str()), "USD"), &amounts("0.5")).unwrap();
            }
            assert_eq!(agg.len(), n, "round {round}: one line per key");
        }
        let lines = agg.into_lines().unwrap();
        assert_eq!(lines.len(), n);
        assert!(lines.windows(2).all(|w| w[0].key < w[1].key), "sorted by key, no duplicates");
        assert!(lines.iter().all(|l| l.amounts.unblended_cost == Decimal::ONE && l.amounts.line_items == 2));
    }

    /// A reserved first chunk larger than a chunk, then more lines than it holds: keys found
    /// again across the large first chunk and the regular ones after it; one chunk only comes
    /// back as it is, sorted.
    #[test]
    fn a_reserved_first_chunk_holds_the_lines_and_more_spill_into_chunks_after_it() {
        let p = BillingPeriod::new(2026, 10).unwrap();
        for (reserved, n) in [(CHUNK_LINES + 7, CHUNK_LINES + 5), (CHUNK_LINES + 7, 2 * CHUNK_LINES + 50), (10, 300)] {
            let tenant = |i: usize| format!("t{:07}", (i * 7919) % n);
            let mut agg = PeriodAggregate::default();
            agg.reserve(reserved);
            for _ in 0..2 {
                for i in 0..n {
                    agg.add(p, key(Some(tenant(i).as_str()), "USD"), &amounts("0.5")).unwrap();
                }
                assert_eq!(agg.len(), n, "reserved {reserved}, {n} lines: one line per key");
            }
            let chunks = agg.chunks.chunks.len();
            assert_eq!(chunks == 1, n <= reserved.max(CHUNK_LINES), "{reserved}, {n}: {chunks} chunks");
            let lines = agg.into_lines().unwrap();
            assert_eq!(lines.len(), n);
            assert!(lines.windows(2).all(|w| w[0].key < w[1].key), "sorted by key, no duplicates");
            assert!(lines.iter().all(|l| l.amounts.unblended_cost == Decimal::ONE && l.amounts.line_items == 2));
        }
    }

    /// Lines pushed without a lookup (some keys twice, some also added through the index) come
    /// back merged, one per key, sorted, with exact sums; as if every line had been added.
    #[test]
    fn unmerged_lines_are_merged_after_the_sort() {
        let p = BillingPeriod::new(2026, 10).unwrap();
        let q = BillingPeriod::new(2026, 11).unwrap();
        let n = CHUNK_LINES + 300;
        let tenant = |i: usize| format!("t{:07}", (i * 7919) % n);
        let (mut merged, mut unmerged) = (PeriodAggregate::default(), PeriodAggregate::default());
        for i in 0..n {
            let period = if i % 3 == 0 { q } else { p };
            let k = key(Some(tenant(i).as_str()), "USD");
            merged.add(period, k.clone(), &amounts("0.25")).unwrap();
            unmerged.add(period, k, &amounts("0.25")).unwrap();
        }
        for i in (0..n).step_by(2).chain(0..n / 4) {
            let period = if i % 3 == 0 { q } else { p };
            let k = key(Some(tenant(i).as_str()), "USD");
            merged.add(period, k.clone(), &amounts("0.000000000001")).unwrap();
            unmerged.push_unmerged(period, k, &amounts("0.000000000001")).unwrap();
        }
        let (merged, unmerged) = (merged.into_lines().unwrap(), unmerged.into_lines().unwrap());
        assert_eq!(unmerged.len(), n);
        assert_eq!(unmerged, merged);
        assert!(unmerged.windows(2).all(|w| (w[0].period, &w[0].key) < (w[1].period, &w[1].key)));
        let mut over = PeriodAggregate::default();
        over.push_unmerged(p, key(Some("a"), "USD"), &amounts("79228162514264.337593543950335")).unwrap();
        over.push_unmerged(p, key(Some("a"), "USD"), &amounts("0.000000000000001")).unwrap();
        let err = over.into_lines().unwrap_err();
        assert!(err.to_string().contains("unblended_cost"), "{err}");
    }

    /// `rust_decimal`'s `checked_add` gives `8000000000.0000000000000000000` (rounded) here; an
    /// exact sum needs 29 significant digits, so it is an error naming the measure.
    #[test]
    fn sums_past_28_digits_fail_naming_the_measure_instead_of_rounding() {
        let usage =
            |s: &str| Amounts { usage_amount: Decimal::from_str(s).unwrap(), line_items: 1, ..Amounts::default() };
        let mut a = usage("4000000000.0000000000000000001");
        let err = a.add(&usage("4000000000.0000000000000000001")).unwrap_err();
        assert!(err.to_string().contains("usage_amount"), "{err}");
        let p = BillingPeriod::new(2026, 10).unwrap();
        let mut agg = PeriodAggregate::default();
        agg.add(p, key(Some("a"), "USD"), &amounts("79228162514264.337593543950335")).unwrap();
        let err = agg.add(p, key(Some("a"), "USD"), &amounts("0.000000000000001")).unwrap_err();
        assert!(err.to_string().contains("unblended_cost"), "{err}");
        let lines = vec![
            CostLine::new(p, key(Some("a"), "USD"), amounts("79228162514264.337593543950335")),
            CostLine::new(p, key(Some("b"), "USD"), amounts("0.1")),
        ];
        assert!(totals_by_currency(&lines).is_err());
        assert!(line_item_types(&lines).is_err());
        // Exact sums that need no rounding still work, even at 28 digits.
        let lines = vec![
            CostLine::new(p, key(Some("a"), "USD"), amounts("79228162514264.337593543950334")),
            CostLine::new(p, key(Some("b"), "USD"), amounts("0.000000000000001")),
        ];
        assert_eq!(
            totals_by_currency(&lines).unwrap()["USD"].unblended_cost.to_string(),
            "79228162514264.337593543950335"
        );
    }

    #[test]
    fn totals_are_kept_per_currency() {
        let p = BillingPeriod::new(2026, 10).unwrap();
        let lines = vec![
            CostLine::new(p, key(Some("a"), "USD"), amounts("1")),
            CostLine::new(p, key(Some("a"), "EUR"), amounts("2")),
        ];
        let t = totals_by_currency(&lines).unwrap();
        assert_eq!(t["USD"].unblended_cost, Decimal::ONE);
        assert_eq!(t["EUR"].unblended_cost, Decimal::TWO);
    }
}
