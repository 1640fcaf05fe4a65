//! The DataFusion plan for one CUR file: project the needed columns, drop split-cost-allocation
//! child rows, evaluate the exact measures per row, group at the stored grain.
//!
//! Built with the DataFrame API (no SQL text), so CSV names like `lineItem/UnblendedCost` or tag
//! keys with dots need no quoting. DataFusion's optimizer pushes the projection into the Parquet
//! scan (only the referenced columns are decoded) and the filter next to it.

use arrow::datatypes::{DECIMAL256_MAX_PRECISION, DataType};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, in_list};
use datafusion::prelude::{cast, col, ident, lit, when};

use super::udf::Udfs;
use crate::schema::{Col, ResolvedColumns, TenantSource};
use curflow_model::line_item::{SPLIT_COST_CHILD_OPERATIONS, UNUSED_COMMITMENT};
use curflow_model::measures::Measure;
use curflow_model::money::{MONEY_SCALE, QUANTITY_SCALE};

/// Output columns of [`aggregate_file`], in order.
pub const GROUP_COLUMNS: [&str; 19] = [
    "period_start",
    "usage_date",
    "tenant",
    "service",
    "usage_type",
    "pool_operation",
    "pool_resource_id",
    "line_item_type",
    "currency",
    "usage_unit",
    "invoice_id",
    "account_id",
    "region",
    "account_name",
    "payer_account_id",
    "payer_account_name",
    "provider",
    "publisher",
    "invoice_issuer",
];
/// How many of the [`SUM_COLUMNS`] are summed measures (the last is the row count); the ones at
/// [`USAGE_SUM`] and [`PRICING_SUM`] are at the quantity scale, the others are money.
pub const MEASURE_SUMS: usize = 9;
/// Position of `usage_amount` in [`SUM_COLUMNS`].
pub const USAGE_SUM: usize = 5;
/// Position of `pricing_quantity` in [`SUM_COLUMNS`]: FOCUS `PricingQuantity` where the file has
/// it; otherwise NULL here, and the group's pricing quantity is its usage sum (see
/// `amounts_from_scaled`).
pub const PRICING_SUM: usize = 8;

/// Whether sum `i` of [`SUM_COLUMNS`] is a quantity (the others are money).
pub fn is_quantity_sum(i: usize) -> bool {
    i == USAGE_SUM || i == PRICING_SUM
}

/// Aggregate columns following [`GROUP_COLUMNS`]. The eight sums are `Decimal256(76, scale)`:
/// DataFusion's `sum` adds with wrapping arithmetic, and a `Decimal128` sum of large amounts would
/// wrap around `i128` silently. Summed in 256 bits it cannot wrap (it would take 2^128 rows); the
/// decoder converts each sum back to `i128` and refuses one that does not fit.
pub const SUM_COLUMNS: [&str; MEASURE_SUMS + 1] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "usage_amount",
    "list_cost",
    "contracted_cost",
    "pricing_quantity",
    "line_items",
];

/// Turns a scanned CUR file into per-group sums.
pub fn aggregate_file(df: DataFrame, cols: &ResolvedColumns, udfs: &Udfs) -> datafusion::error::Result<DataFrame> {
    let source = SourceColumns::new(cols, udfs);
    let typed = df.filter(source.not_split_child().and(source.not_allocated()))?.select(source.typed_exprs())?;
    let rows = typed.select(row_exprs(cols, udfs)?)?;
    sum_groups(rows, &absent_group_columns(cols))
}

/// Key columns of [`GROUP_COLUMNS`] taken straight from a file column, with that column.
const DIRECT_GROUP_COLUMNS: [(&str, Col); 13] = [
    ("service", Col::ProductCode),
    ("usage_type", Col::UsageType),
    ("currency", Col::CurrencyCode),
    ("usage_unit", Col::PricingUnit),
    ("invoice_id", Col::InvoiceId),
    ("account_id", Col::UsageAccountId),
    ("region", Col::Region),
    ("account_name", Col::UsageAccountName),
    ("payer_account_id", Col::PayerAccountId),
    ("payer_account_name", Col::PayerAccountName),
    ("provider", Col::ProviderName),
    ("publisher", Col::LegalEntity),
    ("invoice_issuer", Col::InvoicingEntity),
];

/// The key columns that are a constant NULL in this file's plan, with that constant: its format
/// has no such column (a legacy CUR has no account name, payer name or provider; a report without
/// the tenant tag column has every row in the pool; without an operation or resource column the
/// pool's keys have none).
fn absent_group_columns(cols: &ResolvedColumns) -> Vec<(&'static str, ScalarValue)> {
    let mut absent: Vec<(&'static str, ScalarValue)> = DIRECT_GROUP_COLUMNS
        .iter()
        .filter(|(_, c)| cols.name(*c).is_none())
        .map(|(name, _)| (*name, ScalarValue::Null))
        .collect();
    if matches!(cols.tenant, TenantSource::Absent) {
        absent.push(("tenant", ScalarValue::Utf8(None)));
    }
    for (name, c) in [("pool_operation", Col::Operation), ("pool_resource_id", Col::ResourceId)] {
        if cols.name(c).is_none() {
            absent.push((name, ScalarValue::Null));
        }
    }
    absent
}

/// Expressions over the file's own columns (by their resolved names), shared by the filter and
/// the typed projection of [`aggregate_file`].
struct SourceColumns<'a> {
    cols: &'a ResolvedColumns,
    udfs: &'a Udfs,
    /// FOCUS CSV writers may spell a null cell `NULL` (the FinOps Foundation's sample does); the
    /// CSV reader's null regex does not apply to text columns, so it is mapped here.
    null_text: bool,
}

impl<'a> SourceColumns<'a> {
    fn new(cols: &'a ResolvedColumns, udfs: &'a Udfs) -> Self {
        let null_text = matches!(cols.format, crate::schema::CurFormat::Focus { csv: true });
        Self { cols, udfs, null_text }
    }

    /// The file's column `name`, with FOCUS CSV `NULL` text read as null.
    fn raw(&self, name: &str) -> Expr {
        if self.null_text {
            datafusion::functions::core::expr_fn::nullif(ident(name), lit("NULL"))
        } else {
            ident(name)
        }
    }

    /// Column `c`, or a NULL literal when the file does not have it.
    fn column(&self, c: Col) -> Expr {
        self.cols.name(c).map(|name| self.raw(name)).unwrap_or(lit(ScalarValue::Null))
    }

    /// The name of column `c` as a literal, for the UDFs' error messages (its CSV name when the
    /// file does not have it).
    fn label(&self, c: Col) -> Expr {
        lit(self.cols.name(c).unwrap_or(c.spec().csv_name).to_string())
    }

    /// Money column `c` as an exact scaled decimal.
    fn money(&self, c: Col) -> Expr {
        self.udfs.money.call(vec![self.column(c), self.label(c)])
    }

    /// The filter keeping every row but split-cost-allocation children (see the module docs).
    fn not_split_child(&self) -> Expr {
        let operation = self.column(Col::Operation);
        operation.clone().is_null().or(in_list(
            operation,
            SPLIT_COST_CHILD_OPERATIONS.iter().map(|op| lit(*op)).collect(),
            true,
        ))
    }

    /// The filter keeping every row but FOCUS allocated charges (a set `AllocatedMethodId`): the
    /// file also holds the origin charge they split.
    fn not_allocated(&self) -> Expr {
        match &self.cols.allocated_method {
            Some(name) => {
                let method = self.raw(name);
                method.clone().is_null().or(method.eq(lit("")))
            }
            None => lit(true),
        }
    }

    /// A row's tenant, from wherever the format keeps the tag (NULL: the shared pool).
    fn tenant(&self) -> Expr {
        let udfs = self.udfs;
        match &self.cols.tenant {
            TenantSource::Column(name) => udfs.tag.call(vec![ident(name)]),
            TenantSource::JsonKeys(keys) => udfs.tag.call(
                keys.iter()
                    .flat_map(|(column, key)| {
                        [self.raw(column), lit(format!("{column}{}{key}", super::udf::JSON_KEY_SEPARATOR))]
                    })
                    .collect(),
            ),
            TenantSource::MapKeys(keys) => {
                udfs.tag.call(keys.iter().flat_map(|(map, key)| [ident(map), lit(key.clone())]).collect())
            }
            TenantSource::Absent => lit(ScalarValue::Utf8(None)),
        }
    }

    /// The row's usage day: `lineItem/UsageStartDate`'s (FOCUS `ChargePeriodStart`), except that a
    /// FOCUS correction of an earlier billing period (`ChargeClass` `Correction`) is dated on the
    /// first day of the billing period that bills it, as on the fast path.
    fn usage_date(&self) -> Expr {
        let date = |c: Col| self.udfs.date.call(vec![self.column(c), self.label(c)]);
        match self.cols.name(Col::ChargeClass) {
            None => date(Col::UsageStart),
            Some(_) => Expr::Case(datafusion::logical_expr::Case::new(
                None,
                vec![(
                    Box::new(self.column(Col::ChargeClass).eq(lit("Correction"))),
                    Box::new(date(Col::BillingPeriodStart)),
                )],
                Some(Box::new(date(Col::UsageStart))),
            )),
        }
    }

    /// The row's line-item type: the CUR's `lineItem/LineItemType` or FOCUS `ChargeCategory`,
    /// except that a FOCUS `Usage` row of unused commitment (`CommitmentDiscountStatus` `Unused`)
    /// is [`UNUSED_COMMITMENT`], as on the fast path. Its kind (the measures) stays `Usage`.
    fn line_item_type(&self) -> Expr {
        let category = self.column(Col::LineItemType);
        match self.cols.name(Col::CommitmentDiscountStatus) {
            None => category,
            Some(_) => Expr::Case(datafusion::logical_expr::Case::new(
                None,
                vec![(
                    Box::new(
                        self.column(Col::CommitmentDiscountStatus)
                            .eq(lit("Unused"))
                            .and(category.clone().eq(lit("Usage"))),
                    ),
                    Box::new(lit(UNUSED_COMMITMENT)),
                )],
                Some(Box::new(category)),
            )),
        }
    }

    /// The typed per-row values the measures are computed from: grouping keys, line item kind and
    /// every money column the measure UDFs read.
    fn typed_exprs(&self) -> Vec<Expr> {
        let (cols, udfs) = (self.cols, self.udfs);
        // FOCUS: amortized is the provider's `EffectiveCost` (billed cost when the column is absent).
        let effective = match &cols.effective_cost {
            Some(name) => udfs.money.call(vec![self.raw(name), lit(name.clone())]),
            None => lit(ScalarValue::Null),
        };
        // FOCUS `ContractedCost`; a CUR has none (its contracted cost is derived when decoded).
        let contracted = match &cols.contracted_cost {
            Some(name) => udfs.money.call(vec![self.raw(name), lit(name.clone())]),
            None => cast(lit(ScalarValue::Null), super::udf::money_type()),
        };
        // Curflow's own true-up and upfront fees (its FOCUS export), NULL without them.
        let [x_trueup, x_upfront] = match &cols.curflow_commitments {
            Some((trueup, upfront)) => {
                [trueup, upfront].map(|name| udfs.money.call(vec![self.raw(name), lit(name.clone())]))
            }
            None => [(); 2].map(|()| cast(lit(ScalarValue::Null), super::udf::money_type())),
        };
        // FOCUS `PricingQuantity` (NULL: 0); without the column a NULL, the usage sum stands in.
        let pricing = match &cols.pricing_quantity {
            Some(name) => coalesce_zero_quantity(udfs.quantity.call(vec![self.raw(name), lit(name.clone())])),
            None => cast(lit(ScalarValue::Null), super::udf::quantity_type()),
        };
        // A CUR's reservation ARN, a FOCUS file's `CommitmentDiscountId` (CSV `NULL` is null).
        let has_ri_arn = match cols.name(Col::ReservationArn) {
            Some(_) => udfs.non_empty.call(vec![self.column(Col::ReservationArn)]),
            None => lit(false),
        };
        let column = |c: Col| self.column(c);
        let label = |c: Col| self.label(c);
        let money = |c: Col| self.money(c);
        vec![
            udfs.date.call(vec![column(Col::BillingPeriodStart), label(Col::BillingPeriodStart)]).alias("period_start"),
            self.usage_date().alias("usage_date"),
            self.tenant().alias("tenant"),
            column(Col::ProductCode).alias("service"),
            column(Col::UsageType).alias("usage_type"),
            column(Col::Operation).alias("operation"),
            column(Col::ResourceId).alias("resource_id"),
            self.line_item_type().alias("line_item_type"),
            column(Col::CurrencyCode).alias("currency"),
            column(Col::PricingUnit).alias("usage_unit"),
            column(Col::InvoiceId).alias("invoice_id"),
            column(Col::UsageAccountId).alias("account_id"),
            column(Col::Region).alias("region"),
            column(Col::UsageAccountName).alias("account_name"),
            column(Col::PayerAccountId).alias("payer_account_id"),
            column(Col::PayerAccountName).alias("payer_account_name"),
            column(Col::ProviderName).alias("provider"),
            column(Col::LegalEntity).alias("publisher"),
            column(Col::InvoicingEntity).alias("invoice_issuer"),
            column(Col::ChargeFrequency).alias("charge_frequency"),
            udfs.kind.call(vec![column(Col::LineItemType)]).alias("kind"),
            has_ri_arn.alias("has_ri_arn"),
            money(Col::UnblendedCost).alias("m_unblended"),
            money(Col::NetUnblendedCost).alias("m_net"),
            money(Col::SavingsPlanEffectiveCost).alias("m_sp_effective"),
            money(Col::SavingsPlanTotalCommitment).alias("m_sp_total"),
            money(Col::SavingsPlanUsedCommitment).alias("m_sp_used"),
            money(Col::SavingsPlanAmortizedUpfront).alias("m_sp_amortized_upfront"),
            money(Col::ReservationEffectiveCost).alias("m_ri_effective"),
            money(Col::ReservationUnusedAmortizedUpfrontFee).alias("m_ri_unused_upfront"),
            money(Col::ReservationUnusedRecurringFee).alias("m_ri_unused_recurring"),
            money(Col::ReservationAmortizedUpfrontFee).alias("m_ri_amortized_upfront"),
            udfs.quantity.call(vec![column(Col::UsageAmount), label(Col::UsageAmount)]).alias("q_usage"),
            effective.alias("m_effective"),
            money(Col::ListCost).alias("m_list"),
            contracted.alias("m_contracted"),
            x_trueup.alias("m_x_trueup"),
            x_upfront.alias("m_x_upfront"),
            pricing.alias("q_pricing"),
        ]
    }
}

/// `e`, a quantity, with NULL read as 0 (so a group of the file always has a pricing sum).
fn coalesce_zero_quantity(e: Expr) -> Expr {
    datafusion::functions::core::expr_fn::coalesce(vec![e, cast(lit(0i64), super::udf::quantity_type())])
}

/// A row at the stored grain: the grouping keys (operation and resource id kept only for
/// shared-pool rows, the grain attribution splits at), then the exact measures.
fn row_exprs(cols: &ResolvedColumns, udfs: &Udfs) -> datafusion::error::Result<Vec<Expr>> {
    let measures = if cols.format.is_focus() { focus_measures(cols)? } else { cur_measures(udfs)? };
    let in_pool = col("tenant").is_null();
    let mut row_exprs = vec![
        col("period_start"),
        col("usage_date"),
        col("tenant"),
        col("service"),
        col("usage_type"),
        when(in_pool.clone(), col("operation")).end()?.alias("pool_operation"),
        when(in_pool, col("resource_id")).end()?.alias("pool_resource_id"),
        col("line_item_type"),
        col("currency"),
        col("usage_unit"),
        col("invoice_id"),
        col("account_id"),
        col("region"),
        col("account_name"),
        col("payer_account_id"),
        col("payer_account_name"),
        col("provider"),
        col("publisher"),
        col("invoice_issuer"),
        col("m_unblended").alias("unblended_cost"),
    ];
    row_exprs.extend(measures);
    // Every row's usage amount: the group's pricing quantity, and its usage amount on consumption
    // types (split per group when decoded, `amounts_from_scaled`: the line-item type is a key).
    row_exprs.push(col("q_usage").alias("usage_amount"));
    // List cost is summed as the report gives it (NULL: 0), for every format.
    let zero = || cast(lit(0i64), super::udf::money_type());
    let coalesce = datafusion::functions::core::expr_fn::coalesce;
    row_exprs.push(coalesce(vec![col("m_list"), zero()]).alias("list_cost"));
    // FOCUS: `ContractedCost` as given (NULL: 0). CUR: 0 here, derived per group when the
    // aggregate is decoded (`curflow_model::measures::cur_contracted_cost`).
    row_exprs.push(coalesce(vec![col("m_contracted"), zero()]).alias("contracted_cost"));
    // FOCUS `PricingQuantity` as given (NULL: 0 when the file has the column); NULL otherwise.
    row_exprs.push(col("q_pricing").alias("pricing_quantity"));
    Ok(row_exprs)
}

/// The measures of a CUR row, each computed by its UDF from the line item kind and the typed
/// money columns.
fn cur_measures(udfs: &Udfs) -> datafusion::error::Result<Vec<Expr>> {
    let measure_args: Vec<Expr> = [
        "kind",
        "has_ri_arn",
        "m_unblended",
        "m_net",
        "m_sp_effective",
        "m_sp_total",
        "m_sp_used",
        "m_sp_amortized_upfront",
        "m_ri_effective",
        "m_ri_unused_upfront",
        "m_ri_unused_recurring",
        "m_ri_amortized_upfront",
    ]
    .into_iter()
    .map(col)
    .collect();
    let measure = |m: Measure| -> datafusion::error::Result<Expr> {
        let udf = udfs
            .measure(m)
            .ok_or_else(|| datafusion::error::DataFusionError::Internal(format!("no UDF for {}", m.name())))?;
        Ok(udf.call(measure_args.clone()).alias(m.name()))
    };
    Ok(vec![
        measure(Measure::NetUnblended)?,
        measure(Measure::Amortized)?,
        measure(Measure::RiSpTrueup)?,
        measure(Measure::RiSpUpfrontFees)?,
    ])
}

/// Groups `rows` by [`GROUP_COLUMNS`] into the [`SUM_COLUMNS`]: sums in 256 bits (see there)
/// and the row count.
///
/// Columns that are the literal NULL (`absent`) are left out of the grouping and put back after
/// it: DataFusion takes a constant key as a sorted one, runs the aggregation "partially sorted",
/// and a sorted aggregation never spills. A month of millions of groups on this plan then failed
/// ("Failed to allocate additional … for OrderedFinalAggregateStream") under any memory limit
/// instead of spilling, as soon as one key column was absent from the file (measured on a 20,000-
/// tenant legacy month at the default 1 GiB: failed after 6 s).
fn sum_groups(rows: DataFrame, absent: &[(&str, ScalarValue)]) -> datafusion::error::Result<DataFrame> {
    let constant = |c: &str| absent.iter().find(|(name, _)| *name == c).map(|(_, value)| value.clone());
    let group: Vec<Expr> = GROUP_COLUMNS.iter().filter(|c| constant(c).is_none()).map(|c| col(*c)).collect();
    let mut aggregates: Vec<Expr> = SUM_COLUMNS[..MEASURE_SUMS]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let scale = if is_quantity_sum(i) { QUANTITY_SCALE } else { MONEY_SCALE };
            sum(cast(col(*c), DataType::Decimal256(DECIMAL256_MAX_PRECISION, scale as i8))).alias(*c)
        })
        .collect();
    aggregates.push(count(lit(1)).alias(SUM_COLUMNS[MEASURE_SUMS]));
    let summed = rows.aggregate(group, aggregates)?;
    if absent.is_empty() {
        return Ok(summed);
    }
    let columns = GROUP_COLUMNS
        .iter()
        .map(|c| match constant(c) {
            Some(value) => lit(value).alias(*c),
            None => col(*c),
        })
        .chain(SUM_COLUMNS.iter().map(|c| col(*c)));
    summed.select(columns.collect::<Vec<_>>())
}

/// The measures of a FOCUS row, straight from the provider's columns: net unblended is
/// `BilledCost` (FOCUS's billed cost is already net of discounts), amortized is `EffectiveCost`
/// (a NULL cell is 0, as the spec does not allow NULL there; billed cost when the export has no
/// such column). Upfront fees are the `BilledCost` of one-time commitment purchases
/// (`ChargeCategory` `Purchase`, `ChargeFrequency` `One-Time`, a `CommitmentDiscountId`: a CUR's
/// `SavingsPlanUpfrontFee` and RI upfront `Fee` rows), and the true-up is what remains between
/// billed and effective cost, so `unblended = amortized + true-up + upfront fees` holds per row
/// as it does for a CUR. Unblended is `BilledCost` too, unless the file has curflow's own
/// `x_UnblendedCost` (its FOCUS export): then unblended is that, and the true-up what remains
/// between it and the effective cost. A file with curflow's `x_RiSpTrueup` and
/// `x_RiSpUpfrontFees` gives those two as they are (curflow's export: its stored measures, which
/// follow the CUR's definitions, not the per-row identity).
fn focus_measures(cols: &ResolvedColumns) -> datafusion::error::Result<Vec<Expr>> {
    let zero = || cast(lit(0i64), super::udf::money_type());
    let amortized = match cols.effective_cost {
        Some(_) => datafusion::functions::core::expr_fn::coalesce(vec![col("m_effective"), zero()]),
        None => col("m_net"),
    };
    let one_time_commitment = col("line_item_type")
        .eq(lit("Purchase"))
        .and(col("charge_frequency").eq(lit("One-Time")))
        .and(col("has_ri_arn"));
    let money = |e: Expr| cast(e, super::udf::money_type());
    let coalesce = datafusion::functions::core::expr_fn::coalesce;
    let (trueup, upfront) = match cols.curflow_commitments {
        // Curflow's own export: the true-up and upfront fees it stored (NULL: 0).
        Some(_) => (coalesce(vec![col("m_x_trueup"), zero()]), coalesce(vec![col("m_x_upfront"), zero()])),
        None => {
            let upfront = when(one_time_commitment, col("m_net")).otherwise(zero())?;
            (money(col("m_unblended") - amortized.clone() - upfront.clone()), upfront)
        }
    };
    Ok(vec![
        col("m_net").alias(Measure::NetUnblended.name()),
        amortized.alias(Measure::Amortized.name()),
        trueup.alias(Measure::RiSpTrueup.name()),
        upfront.alias(Measure::RiSpUpfrontFees.name()),
    ])
}
