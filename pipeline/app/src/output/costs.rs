//! `curflow costs`: stored cost lines grouped by any keys the lines carry, per billing period and
//! currency, optionally cut to the N largest with an `OTHER` remainder so totals still add up.
//!
//! Exact throughout: every sum is a checked `Decimal` add; amounts of different currencies are
//! never added (currency is always part of the key). Rows never span billing periods.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::emit::{Meta, MetaValue, Rows, Value};
use super::table::Table;
use super::{UNATTRIBUTED, group_thousands, percent, tenant_label};
use crate::aggregate::{Amounts, CostLine, LineSource};
use crate::error::Result;
use crate::period::BillingPeriod;

/// Key of the `OTHER` row of `--top`: every key column holds it.
pub const OTHER: &str = "OTHER";

/// A key `curflow costs --by` groups on (comma-separate or repeat for several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum GroupBy {
    /// Tenant id (`UNATTRIBUTED` = the shared pool; the `shared_pool` column tells it from a tenant
    /// tagged `UNATTRIBUTED`).
    Tenant,
    /// CUR product code (`AmazonEC2`, ...).
    Service,
    /// UTC usage day.
    Day,
    UsageType,
    Operation,
    LineItemType,
    ResourceId,
    /// The usage (linked) account id; empty when the report has none.
    Account,
    /// The usage account's name, where the report has it (CUR 2.0, FOCUS); empty otherwise.
    AccountName,
    /// The region code (`us-east-1`, ...); empty for global charges.
    Region,
    /// How the cost reached the tenant: `cur` (tagged), `attributed`, `shared` (unattributed).
    Source,
    /// Always a column; accepted here to place it among the keys.
    Currency,
}

impl GroupBy {
    /// Column name of the key in every output format.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Tenant => "tenant",
            GroupBy::Service => "service",
            GroupBy::Day => "usage_date",
            GroupBy::UsageType => "usage_type",
            GroupBy::Operation => "operation",
            GroupBy::LineItemType => "line_item_type",
            GroupBy::ResourceId => "resource_id",
            GroupBy::Account => "account_id",
            GroupBy::AccountName => "account_name",
            GroupBy::Region => "region",
            GroupBy::Source => "source",
            GroupBy::Currency => "currency",
        }
    }

    fn of(self, line: &CostLine) -> String {
        match self {
            GroupBy::Tenant => tenant_label(line).to_string(),
            GroupBy::Service => line.key.service.to_string(),
            GroupBy::Day => line.key.usage_date.format("%Y-%m-%d").to_string(),
            GroupBy::UsageType => line.key.usage_type.to_string(),
            GroupBy::Operation => line.key.operation.to_string(),
            GroupBy::LineItemType => line.key.line_item_type.to_string(),
            GroupBy::ResourceId => line.key.resource_id.to_string(),
            GroupBy::Account => line.key.account_id.to_string(),
            GroupBy::AccountName => line.key.account_name.to_string(),
            GroupBy::Region => line.key.region.to_string(),
            GroupBy::Source => line.source().as_str().to_string(),
            GroupBy::Currency => line.key.currency.to_string(),
        }
    }
}

/// A cost measure the store keeps (`--measure`): what `--top` ranks by and the table's share is of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CostMeasure {
    #[default]
    Unblended,
    NetUnblended,
    Amortized,
    RiSpTrueup,
    RiSpUpfrontFees,
    /// The public on-demand cost (FOCUS `ListCost`).
    List,
    /// The cost at negotiated prices before commitment discounts (FOCUS `ContractedCost`).
    Contracted,
}

impl CostMeasure {
    pub fn column(self) -> &'static str {
        match self {
            CostMeasure::Unblended => "unblended_cost",
            CostMeasure::NetUnblended => "net_unblended_cost",
            CostMeasure::Amortized => "amortized_cost",
            CostMeasure::RiSpTrueup => "ri_sp_trueup",
            CostMeasure::RiSpUpfrontFees => "ri_sp_upfront_fees",
            CostMeasure::List => "list_cost",
            CostMeasure::Contracted => "contracted_cost",
        }
    }

    pub fn of(self, a: &Amounts) -> Decimal {
        match self {
            CostMeasure::Unblended => a.unblended_cost,
            CostMeasure::NetUnblended => a.net_unblended_cost,
            CostMeasure::Amortized => a.amortized_cost,
            CostMeasure::RiSpTrueup => a.ri_sp_trueup,
            CostMeasure::RiSpUpfrontFees => a.ri_sp_upfront_fees,
            CostMeasure::List => a.list_cost,
            CostMeasure::Contracted => a.contracted_cost,
        }
    }
}

/// What `curflow costs` shows.
#[derive(Debug, Clone)]
pub struct CostsQuery {
    /// Key columns in order (without `currency`, which always follows them). Empty: one row per
    /// period and currency.
    pub by: Vec<GroupBy>,
    /// Only this tenant (`UNATTRIBUTED` selects the pool).
    pub tenant: Option<String>,
    pub measure: CostMeasure,
    /// Keep the N largest rows by `measure` per period and currency; the rest become `OTHER`.
    pub top: Option<usize>,
}

impl CostsQuery {
    /// `by` as given on the command line: duplicates and `currency` dropped (currency is always a
    /// column, right after the keys).
    pub fn new(by: &[GroupBy], tenant: Option<String>, measure: CostMeasure, top: Option<usize>) -> Self {
        let mut keys: Vec<GroupBy> = Vec::new();
        for k in by {
            if *k != GroupBy::Currency && !keys.contains(k) {
                keys.push(*k);
            }
        }
        CostsQuery { by: keys, tenant, measure, top }
    }

    /// Every output column, in order: `billing_period`, the keys, `currency`, the amounts, and
    /// `shared_pool` when `tenant` is a key.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut c = vec!["billing_period"];
        c.extend(self.by.iter().map(|k| k.column()));
        c.push("currency");
        c.extend(AMOUNT_COLUMNS);
        if self.by_tenant() {
            c.push(SHARED_POOL_COLUMN);
        }
        c
    }

    /// Whether `tenant` is one of the keys.
    pub fn by_tenant(&self) -> bool {
        self.by.contains(&GroupBy::Tenant)
    }

    /// Whether `line` is one `--tenant` selects: `UNATTRIBUTED` selects the shared pool (never a
    /// tenant tagged with that text), any other value the tenant with exactly that id.
    pub fn selects(&self, line: &CostLine) -> bool {
        match self.tenant.as_deref() {
            None => true,
            Some(UNATTRIBUTED) => line.key.tenant.is_none(),
            Some(t) => line.key.tenant.as_deref() == Some(t),
        }
    }
}

/// The flag column of rows keyed by tenant: `true` on the shared pool's row (whose `tenant` is
/// `UNATTRIBUTED`), `false` on a tenant's (even one tagged `UNATTRIBUTED`), empty/null on `OTHER`.
pub const SHARED_POOL_COLUMN: &str = "shared_pool";

impl CostsQuery {}

/// The amount columns of `curflow costs`, after the keys and `currency`.
pub const AMOUNT_COLUMNS: [&str; 10] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "list_cost",
    "contracted_cost",
    "line_items",
    "direct_amortized_cost",
    "attributed_amortized_cost",
];

/// Sums of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostSums {
    pub amounts: Amounts,
    /// Amortized cost of rows tagged with the tenant.
    pub direct_amortized_cost: Decimal,
    /// Amortized cost split to the tenant from shared lines.
    pub attributed_amortized_cost: Decimal,
}

impl CostSums {
    fn add(&mut self, other: &CostSums) -> Result<()> {
        self.amounts.add(&other.amounts)?;
        self.direct_amortized_cost = checked(self.direct_amortized_cost, other.direct_amortized_cost)?;
        self.attributed_amortized_cost = checked(self.attributed_amortized_cost, other.attributed_amortized_cost)?;
        Ok(())
    }

    fn of_line(line: &CostLine) -> CostSums {
        let mut s = CostSums { amounts: line.amounts, ..CostSums::default() };
        match line.source() {
            LineSource::Cur => s.direct_amortized_cost = line.amounts.amortized_cost,
            LineSource::Attributed => s.attributed_amortized_cost = line.amounts.amortized_cost,
            LineSource::Shared => {}
        }
        s
    }

    fn cells(&self, exact: bool) -> [Value; 10] {
        let f = |d: Decimal| {
            if exact {
                Value::Dec(d.normalize())
            } else {
                let mut r = d.round_dp(4);
                r.rescale(4);
                Value::Text(group_thousands(r))
            }
        };
        let a = &self.amounts;
        [
            f(a.unblended_cost),
            f(a.net_unblended_cost),
            f(a.amortized_cost),
            f(a.ri_sp_trueup),
            f(a.ri_sp_upfront_fees),
            f(a.list_cost),
            f(a.contracted_cost),
            Value::from(a.line_items),
            f(self.direct_amortized_cost),
            f(self.attributed_amortized_cost),
        ]
    }
}

fn checked(a: Decimal, b: Decimal) -> Result<Decimal> {
    Ok(crate::aggregate::add_exact(a, b, || "a costs total".into())?)
}

/// One row of `curflow costs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostsRow {
    pub billing_period: BillingPeriod,
    /// One value per [`CostsQuery::by`] key (`OTHER` in every key of a `--top` remainder).
    pub keys: Vec<String>,
    /// With `tenant` among the keys: whether the row is the shared pool's (`None` on `OTHER`).
    /// Without: `Some(false)`, unused.
    pub shared_pool: Option<bool>,
    pub currency: String,
    pub sums: CostSums,
}

/// The rows of `curflow costs`: sorted by period, keys and currency; with `top`, per period and
/// currency the largest first by the measure, then `OTHER`.
pub fn costs_rows(lines: &[CostLine], q: &CostsQuery) -> Result<Vec<CostsRow>> {
    // The pool flag is part of the group: a tenant tagged `UNATTRIBUTED` is never merged into the
    // shared pool's row, whose label is the same text.
    type Group = (BillingPeriod, Vec<String>, bool, String);
    let mut groups: BTreeMap<Group, CostSums> = BTreeMap::new();
    for line in lines.iter().filter(|l| q.selects(l)) {
        let keys = q.by.iter().map(|k| k.of(line)).collect();
        let pool = q.by_tenant() && line.key.tenant.is_none();
        groups
            .entry((line.period, keys, pool, line.key.currency.to_string()))
            .or_default()
            .add(&CostSums::of_line(line))?;
    }
    let rows = groups
        .into_iter()
        .map(|((billing_period, keys, pool, currency), sums)| CostsRow {
            billing_period,
            keys,
            shared_pool: Some(pool),
            currency,
            sums,
        })
        .collect();
    match q.top {
        Some(n) => top(rows, q, n),
        None => Ok(rows),
    }
}

/// Per period and currency: the `n` largest rows by the measure (ties by key), then one `OTHER` row
/// summing the rest exactly.
fn top(rows: Vec<CostsRow>, q: &CostsQuery, n: usize) -> Result<Vec<CostsRow>> {
    let mut by_group: BTreeMap<(BillingPeriod, String), Vec<CostsRow>> = BTreeMap::new();
    for r in rows {
        by_group.entry((r.billing_period, r.currency.clone())).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((billing_period, currency), mut group) in by_group {
        group.sort_by(|a, b| {
            q.measure.of(&b.sums.amounts).cmp(&q.measure.of(&a.sums.amounts)).then_with(|| a.keys.cmp(&b.keys))
        });
        let rest = group.split_off(n.min(group.len()));
        out.extend(group);
        if !rest.is_empty() {
            let mut sums = CostSums::default();
            for r in &rest {
                sums.add(&r.sums)?;
            }
            let keys = vec![OTHER.to_string(); q.by.len()];
            out.push(CostsRow { billing_period, keys, shared_pool: None, currency, sums });
        }
    }
    Ok(out)
}

/// Totals per period and currency.
pub fn costs_totals(rows: &[CostsRow]) -> Result<BTreeMap<(BillingPeriod, String), CostSums>> {
    let mut totals: BTreeMap<(BillingPeriod, String), CostSums> = BTreeMap::new();
    for r in rows {
        totals.entry((r.billing_period, r.currency.clone())).or_default().add(&r.sums)?;
    }
    Ok(totals)
}

/// The rows as exact values in [`CostsQuery::columns`] order.
pub fn costs_data(rows: &[CostsRow], q: &CostsQuery) -> Result<Rows> {
    let mut out = Rows::new(q.columns());
    for r in rows {
        let mut cells = vec![Value::from(r.billing_period.to_string())];
        cells.extend(r.keys.iter().map(|k| Value::from(k.as_str())));
        cells.push(r.currency.as_str().into());
        cells.extend(r.sums.cells(true));
        if q.by_tenant() {
            cells.push(r.shared_pool.map_or(Value::Null, Value::Bool));
        }
        out.push(cells)?;
    }
    Ok(out)
}

/// The JSON metadata: the query, then the totals per period and currency (same amount columns).
pub fn costs_meta(rows: &[CostsRow], q: &CostsQuery, periods: Meta) -> Result<Meta> {
    let mut totals = Rows::new(["billing_period", "currency"].into_iter().chain(AMOUNT_COLUMNS));
    for ((period, currency), sums) in costs_totals(rows)? {
        let mut cells = vec![Value::from(period.to_string()), currency.into()];
        cells.extend(sums.cells(true));
        totals.push(cells)?;
    }
    let by: Vec<&str> = q.by.iter().map(|k| k.column()).collect();
    let mut meta = periods;
    meta.extend([
        ("by", by.into()),
        ("tenant", q.tenant.clone().into()),
        ("measure", q.measure.column().into()),
        ("top", q.top.map(|n| n as u64).into()),
        ("totals", MetaValue::Rows(totals)),
    ]);
    Ok(meta)
}

/// The table for people: amounts rounded to 4 places, each row's share of the measure in its
/// period and currency, a TOTAL row per period and currency. `billing_period` is a column only
/// when several periods are shown.
pub fn costs_table(rows: &[CostsRow], q: &CostsQuery, several_periods: bool) -> Result<String> {
    let totals = costs_totals(rows)?;
    let mut header: Vec<&str> = Vec::new();
    if several_periods {
        header.push("billing_period");
    }
    header.extend(q.by.iter().map(|k| k.column()));
    header.push("currency");
    let first_amount = header.len();
    header.extend(AMOUNT_COLUMNS);
    header.push("share");
    let mut table = Table::new(header).right_from(first_amount);
    let mut tagged_labels: std::collections::BTreeSet<&'static str> = std::collections::BTreeSet::new();
    let key_cells = |period: BillingPeriod, keys: Vec<String>, currency: &str| {
        let mut cells = if several_periods { vec![period.to_string()] } else { Vec::new() };
        cells.extend(keys);
        cells.push(currency.to_string());
        cells
    };
    for r in rows {
        let total = totals.get(&(r.billing_period, r.currency.clone())).map(|t| q.measure.of(&t.amounts));
        let mut cells = key_cells(r.billing_period, table_keys(r, q, &mut tagged_labels), &r.currency);
        cells.extend(r.sums.cells(false).iter().map(Value::text));
        cells.push(percent(q.measure.of(&r.sums.amounts), total.unwrap_or_default()));
        table.row(cells);
    }
    table.rule();
    for ((period, currency), sums) in &totals {
        // TOTAL in the first key column (or beside the currency when there is no key).
        let mut label = vec![String::new(); q.by.len()];
        let currency_cell = match label.first_mut() {
            Some(first) => {
                *first = "TOTAL".into();
                currency.clone()
            }
            None => format!("{currency} TOTAL"),
        };
        let mut cells = key_cells(*period, label, &currency_cell);
        cells.extend(sums.cells(false).iter().map(Value::text));
        cells.push("100.0%".into());
        table.row(cells);
    }
    let mut out = table.render();
    for label in tagged_labels {
        out.push_str(&format!(
            "\"{label}\" (quoted) is a tenant tagged {label}; {label} without quotes is {}\n",
            if label == UNATTRIBUTED { "the shared pool" } else { "the remainder of --top" }
        ));
    }
    Ok(out)
}

/// The key cells of a row in the table: a tenant whose id is one of the table's own labels
/// (`UNATTRIBUTED`, `OTHER`) is shown quoted, so it is not read as the shared pool or the `--top`
/// remainder (adds the label to `seen`).
fn table_keys(r: &CostsRow, q: &CostsQuery, seen: &mut std::collections::BTreeSet<&'static str>) -> Vec<String> {
    let mut keys = r.keys.clone();
    if r.shared_pool == Some(false)
        && let Some(i) = q.by.iter().position(|k| *k == GroupBy::Tenant)
        && let Some(label) = [UNATTRIBUTED, OTHER].into_iter().find(|l| keys[i] == *l)
    {
        keys[i] = format!("\"{label}\"");
        seen.insert(label);
    }
    keys
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aggregate::CostKey;
    use chrono::NaiveDate;
    use curflow_model::testing::cost_key;

    fn line(tenant: Option<&str>, cost: i64) -> CostLine {
        let d = Decimal::new(cost, 2);
        CostLine::new(
            BillingPeriod::new(2026, 10).unwrap(),
            CostKey {
                usage_unit: "GB-Mo".into(),
                ..cost_key(NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(), tenant, "AmazonS3", "TimedStorage")
            },
            Amounts { unblended_cost: d, amortized_cost: d, line_items: 1, ..Amounts::default() },
        )
    }

    #[test]
    fn tenants_named_like_the_pool_or_the_remainder_stay_apart_and_are_quoted_in_the_table() {
        let lines = [
            line(None, 100),
            line(Some(UNATTRIBUTED), 20),
            line(Some(OTHER), 30),
            line(Some("_shared"), 1),
            line(Some("x"), 2),
        ];
        let q = CostsQuery::new(&[GroupBy::Tenant], None, CostMeasure::Unblended, None);
        let rows = costs_rows(&lines, &q).unwrap();
        let got: Vec<(&str, Option<bool>, Decimal)> =
            rows.iter().map(|r| (r.keys[0].as_str(), r.shared_pool, r.sums.amounts.unblended_cost)).collect();
        assert_eq!(
            got,
            [
                (OTHER, Some(false), Decimal::new(30, 2)),
                (UNATTRIBUTED, Some(false), Decimal::new(20, 2)),
                (UNATTRIBUTED, Some(true), Decimal::new(100, 2)),
                ("_shared", Some(false), Decimal::new(1, 2)),
                ("x", Some(false), Decimal::new(2, 2)),
            ]
        );
        assert_eq!(q.columns().last(), Some(&SHARED_POOL_COLUMN));
        let table = costs_table(&rows, &q, false).unwrap();
        assert!(table.lines().any(|l| l.starts_with("\"UNATTRIBUTED\" ")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("UNATTRIBUTED ")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("\"OTHER\" ")), "{table}");
        assert!(table.contains("is the shared pool") && table.contains("is the remainder of --top"), "{table}");

        // `--top 2`: the remainder is `OTHER` with no pool flag; the tenant `OTHER` stays itself.
        let top = CostsQuery::new(&[GroupBy::Tenant], None, CostMeasure::Unblended, Some(2));
        let rows = costs_rows(&lines, &top).unwrap();
        let got: Vec<(&str, Option<bool>)> = rows.iter().map(|r| (r.keys[0].as_str(), r.shared_pool)).collect();
        assert_eq!(got, [(UNATTRIBUTED, Some(true)), (OTHER, Some(false)), (OTHER, None)]);
        let data = costs_data(&rows, &top).unwrap();
        assert_eq!(data.rows().last().unwrap().last(), Some(&Value::Null));

        // `--tenant UNATTRIBUTED` is the pool only; any other id exactly that tenant.
        let pool = CostsQuery::new(&[GroupBy::Tenant], Some(UNATTRIBUTED.into()), CostMeasure::Unblended, None);
        let rows = costs_rows(&lines, &pool).unwrap();
        assert_eq!((rows.len(), rows[0].shared_pool), (1, Some(true)));
        let shared = CostsQuery::new(&[GroupBy::Tenant], Some("_shared".into()), CostMeasure::Unblended, None);
        assert_eq!(costs_rows(&lines, &shared).unwrap()[0].sums.amounts.unblended_cost, Decimal::new(1, 2));
    }
}
