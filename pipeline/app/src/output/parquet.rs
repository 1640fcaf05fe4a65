//! `curflow export --format parquet`: a stored period's cost lines as one Parquet file, for
//! DuckDB, Athena, Spark or Polars users, exactly as stored.
//!
//! One row per stored line, every field of it ([`PARQUET_COLUMNS`]): money measures as
//! `decimal(38, 12)` and the usage amount as `decimal(38, 10)` (the store's scales, so every value
//! is exact and sums in SQL stay exact), `usage_date` as a `date`, `line_items` as `int64`, texts as
//! UTF-8 (dictionary-encoded by Parquet), `tenant` null on shared-pool rows. The driver quantities
//! of attributed rows are exact decimal text: a weight can carry up to 28 significant digits at
//! any scale, which no one decimal type holds. [`read_lines`] reads such a file back into the
//! same lines (the round trip is tested).
//!
//! Written in batches of [`BATCH_ROWS`] to a temporary file next to the target, renamed into
//! place when complete: a failed export leaves no half-written file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Field, Int64Type, Schema};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rust_decimal::Decimal;

use crate::aggregate::{Amounts, Attribution, CostKey, CostLine};
use crate::error::{Error, Result};
use crate::money::{MONEY_SCALE, QUANTITY_SCALE, Units};
use crate::period::BillingPeriod;
use curflow_model::{Billing, BillingParts, Names};

/// Rows per record batch (and so per write of the encoder).
pub const BATCH_ROWS: usize = 65_536;

/// Precision of every decimal column (Parquet stores it as a 16-byte fixed-length decimal).
const PRECISION: u8 = 38;

/// The file's columns, in order, with their Parquet/Arrow types (documented in the README).
pub const PARQUET_COLUMNS: [(&str, &str); 37] = [
    ("billing_period", "string"),
    ("usage_date", "date"),
    ("tenant", "string, null on shared-pool rows"),
    ("source", "string: cur | shared | attributed"),
    ("service", "string"),
    ("usage_type", "string"),
    ("usage_unit", "string"),
    ("operation", "string"),
    ("resource_id", "string"),
    ("line_item_type", "string"),
    ("currency", "string"),
    ("account_id", "string"),
    ("account_name", "string"),
    ("region", "string"),
    ("billing_account_id", "string: the payer account (FOCUS BillingAccountId); empty when unknown"),
    ("billing_account_name", "string: the payer account's name; empty when unknown"),
    ("provider_name", "string: FOCUS ProviderName; empty for a CUR (AWS)"),
    ("publisher_name", "string: the seller of record (lineItem/LegalEntity, FOCUS PublisherName)"),
    ("invoice_issuer_name", "string: bill/InvoicingEntity (FOCUS InvoiceIssuerName)"),
    ("invoice_id", "string: bill/InvoiceId (FOCUS InvoiceId); empty until the invoice is issued"),
    ("unblended_cost", "decimal(38, 12)"),
    ("net_unblended_cost", "decimal(38, 12)"),
    ("amortized_cost", "decimal(38, 12)"),
    ("ri_sp_trueup", "decimal(38, 12)"),
    ("ri_sp_upfront_fees", "decimal(38, 12)"),
    ("list_cost", "decimal(38, 12): public on-demand cost (FOCUS ListCost)"),
    ("contracted_cost", "decimal(38, 12): contracted cost (FOCUS ContractedCost; derived for a CUR)"),
    ("usage_amount", "decimal(38, 10): the usage amount of consumption lines (0 on negations, fees, purchases)"),
    ("pricing_quantity", "decimal(38, 10): every row's usage amount (FOCUS PricingQuantity)"),
    ("line_items", "int64"),
    ("rule", "string, attributed rows"),
    ("basis", "string, attributed rows"),
    ("driver", "string, attributed rows split by a usage driver"),
    ("driver_quantity", "exact decimal text, attributed rows"),
    ("driver_quantity_total", "exact decimal text, attributed rows"),
    ("share", "decimal(38, 12), attributed rows"),
    ("unattributed_reason", "string, shared rows once attribution ran"),
];

/// Appended after the key columns: money, usage, count, attribution, reason.
const REASON: &str = "unattributed_reason";

fn schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let money =
        |name: &str, nullable: bool| Field::new(name, DataType::Decimal128(PRECISION, scale_i8(MONEY_SCALE)), nullable);
    let mut fields = vec![
        text("billing_period", false),
        Field::new("usage_date", DataType::Date32, false),
        text("tenant", true),
        text("source", false),
    ];
    for name in KEY_TEXTS {
        fields.push(text(name, false));
    }
    for name in MONEY {
        fields.push(money(name, false));
    }
    for name in ["usage_amount", "pricing_quantity"] {
        fields.push(Field::new(name, DataType::Decimal128(PRECISION, scale_i8(QUANTITY_SCALE)), false));
    }
    fields.push(Field::new("line_items", DataType::Int64, false));
    for name in ["rule", "basis", "driver", "driver_quantity", "driver_quantity_total"] {
        fields.push(text(name, true));
    }
    fields.push(money("share", true));
    fields.push(text(REASON, true));
    Arc::new(Schema::new(fields))
}

/// The key's text fields after `source`, in column order.
const KEY_TEXTS: [&str; 16] = [
    "service",
    "usage_type",
    "usage_unit",
    "operation",
    "resource_id",
    "line_item_type",
    "currency",
    "account_id",
    "account_name",
    "region",
    "billing_account_id",
    "billing_account_name",
    "provider_name",
    "publisher_name",
    "invoice_issuer_name",
    "invoice_id",
];

/// The money columns: [`MONEY_MEASURES`], in its order.
const MONEY: [&str; 7] = curflow_model::aggregate::MONEY_MEASURES;

fn scale_i8(scale: u32) -> i8 {
    // The store's scales are 12 and 10.
    i8::try_from(scale).unwrap_or(i8::MAX)
}

fn key_texts(k: &CostKey) -> [&str; 16] {
    let billing = k.billing.parts();
    [
        &k.service,
        &k.usage_type,
        &k.usage_unit,
        &k.operation,
        &k.resource_id,
        &k.line_item_type,
        &k.currency,
        &k.account_id,
        &k.account_name,
        &k.region,
        billing.account_id,
        billing.account_name,
        billing.provider,
        billing.publisher,
        billing.invoice_issuer,
        billing.invoice_id,
    ]
}

/// Writes `lines` to `path` (see the module docs); returns the bytes written.
pub fn write_lines(lines: &[CostLine], path: &Path) -> Result<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".curflow-export-").tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let file = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("curflow {}", env!("CARGO_PKG_VERSION")))
        .build();
    let parquet_error = |e: parquet::errors::ParquetError| Error::io(path, std::io::Error::other(e));
    let mut writer = ArrowWriter::try_new(file, schema(), Some(props)).map_err(parquet_error)?;
    for chunk in lines.chunks(BATCH_ROWS) {
        writer.write(&batch(chunk)?).map_err(parquet_error)?;
    }
    writer.close().map_err(parquet_error)?;
    let bytes = tmp.as_file().metadata().map_err(|e| Error::io(tmp.path(), e))?.len();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(bytes)
}

fn batch(lines: &[CostLine]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&CostLine) -> Option<String>| -> ArrayRef {
        Arc::new(lines.iter().map(f).collect::<StringArray>())
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(&|l| Some(l.period.to_string())),
        Arc::new(Date32Array::from_iter_values(lines.iter().map(|l| Date32Type::from_naive_date(l.key.usage_date)))),
        text(&|l| l.key.tenant.as_deref().map(str::to_string)),
        text(&|l| Some(l.source().as_str().to_string())),
    ];
    for i in 0..KEY_TEXTS.len() {
        columns.push(Arc::new(lines.iter().map(|l| Some(key_texts(&l.key)[i])).collect::<StringArray>()));
    }
    for (i, name) in MONEY.iter().enumerate() {
        let values = lines.iter().map(|l| units(l.amounts.money()[i].1, MONEY_SCALE, name, l).map(Some));
        columns.push(decimal_array(values, MONEY_SCALE)?);
    }
    let usage = lines.iter().map(|l| units(l.amounts.usage_amount, QUANTITY_SCALE, "usage_amount", l).map(Some));
    columns.push(decimal_array(usage, QUANTITY_SCALE)?);
    let pricing =
        lines.iter().map(|l| units(l.amounts.pricing_quantity, QUANTITY_SCALE, "pricing_quantity", l).map(Some));
    columns.push(decimal_array(pricing, QUANTITY_SCALE)?);
    let items = lines
        .iter()
        .map(|l| i64::try_from(l.amounts.line_items).map_err(|_| Error::Internal(format!("{:?}: line_items", l.key))))
        .collect::<Result<Int64Array>>()?;
    columns.push(Arc::new(items));
    let attr = |f: fn(&Attribution) -> Option<String>| -> ArrayRef {
        Arc::new(lines.iter().map(|l| l.attribution.as_deref().and_then(f)).collect::<StringArray>())
    };
    columns.push(attr(|a| Some(a.rule.to_string())));
    columns.push(attr(|a| Some(a.basis.to_string())));
    columns.push(attr(|a| a.driver.as_ref().map(ToString::to_string)));
    columns.push(attr(|a| Some(a.quantity.to_string())));
    columns.push(attr(|a| Some(a.quantity_total.to_string())));
    let share = lines.iter().map(|l| match &l.attribution {
        Some(a) => units(a.share, MONEY_SCALE, "share", l).map(Some),
        None => Ok(None),
    });
    columns.push(decimal_array(share, MONEY_SCALE)?);
    columns.push(text(&|l| l.unattributed_reason.clone()));
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::Internal(format!("export batch: {e}")))
}

/// `v` in integer units at `scale` (exact: the store keeps money at 12 places, usage at 10).
fn units(v: Decimal, scale: u32, what: &str, line: &CostLine) -> Result<i128> {
    Units::from_decimal(v, scale)
        .map(Units::value)
        .map_err(|e| Error::Internal(format!("{what} {v} of {:?} is not exact at {scale} places: {e}", line.key)))
}

fn decimal_array(values: impl Iterator<Item = Result<Option<i128>>>, scale: u32) -> Result<ArrayRef> {
    let array = values
        .collect::<Result<Decimal128Array>>()?
        .with_precision_and_scale(PRECISION, scale_i8(scale))
        .map_err(|e| Error::Internal(format!("decimal column: {e}")))?;
    Ok(Arc::new(array))
}

/// Reads a file [`write_lines`] wrote back into cost lines, in file order.
pub fn read_lines(path: &Path) -> Result<Vec<CostLine>> {
    let bad = |what: String| Error::BadExport { path: path.to_path_buf(), reason: what };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| bad(format!("not a Parquet file: {e}")))?;
    let want = schema();
    let mut names = Names::default();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("reading a row group: {e}")))?;
        if batch.schema().fields() != want.fields() {
            return Err(bad(format!("columns {:?} are not curflow's export columns", batch.schema().fields())));
        }
        read_batch(&batch, &mut names, &mut out).map_err(bad)?;
    }
    Ok(out)
}

/// Who bills a line: the six key texts from `first` on (see [`KEY_TEXTS`]).
fn billing_at<'a>(k: &dyn Fn(usize) -> &'a str, first: usize, names: &mut Names) -> Billing {
    let parts = BillingParts {
        account_id: k(first),
        account_name: k(first + 1),
        provider: k(first + 2),
        publisher: k(first + 3),
        invoice_issuer: k(first + 4),
        invoice_id: k(first + 5),
    };
    Billing::intern(parts, names)
}

fn read_batch(batch: &RecordBatch, names: &mut Names, out: &mut Vec<CostLine>) -> std::result::Result<(), String> {
    let col = |i: usize| batch.column(i);
    let text = |i: usize| col(i).as_string::<i32>();
    let dec = |i: usize| col(i).as_primitive::<Decimal128Type>();
    let opt_text = |i: usize, row: usize| (!text(i).is_null(row)).then(|| text(i).value(row));
    let exact = |i: usize, row: usize, scale: u32| {
        Decimal::try_from_i128_with_scale(dec(i).value(row), scale).map_err(|e| format!("column {i}, row {row}: {e}"))
    };
    let first_key = 4;
    let first_money = first_key + KEY_TEXTS.len();
    let usage_col = first_money + MONEY.len();
    let (pricing_col, items_col, rule_col) = (usage_col + 1, usage_col + 2, usage_col + 3);
    let dates = col(1).as_primitive::<Date32Type>();
    let items = col(items_col).as_primitive::<Int64Type>();
    for row in 0..batch.num_rows() {
        let period: BillingPeriod = text(0).value(row).parse().map_err(|e| format!("billing_period: {e}"))?;
        let usage_date: NaiveDate = Date32Type::to_naive_date_opt(dates.value(row))
            .ok_or_else(|| format!("usage_date, row {row}: out of range"))?;
        let k = |i: usize| text(first_key + i).value(row);
        let key = CostKey {
            usage_date,
            tenant: opt_text(2, row).map(|t| names.get(t)),
            service: names.get(k(0)),
            usage_type: names.get(k(1)),
            usage_unit: names.get(k(2)),
            operation: names.get(k(3)),
            resource_id: names.get(k(4)),
            line_item_type: names.get(k(5)),
            currency: names.get(k(6)),
            account_id: names.get(k(7)),
            account_name: names.get(k(8)),
            region: names.get(k(9)),
            billing: billing_at(&k, 10, names),
        };
        let money = |i: usize| exact(first_money + i, row, MONEY_SCALE);
        let amounts = Amounts {
            unblended_cost: money(0)?,
            net_unblended_cost: money(1)?,
            amortized_cost: money(2)?,
            ri_sp_trueup: money(3)?,
            ri_sp_upfront_fees: money(4)?,
            list_cost: money(5)?,
            contracted_cost: money(6)?,
            usage_amount: exact(usage_col, row, QUANTITY_SCALE)?,
            pricing_quantity: exact(pricing_col, row, QUANTITY_SCALE)?,
            line_items: u64::try_from(items.value(row)).map_err(|_| format!("line_items, row {row}: negative"))?,
        };
        let quantity = |i: usize| -> std::result::Result<Decimal, String> {
            opt_text(i, row).unwrap_or("0").parse().map_err(|e| format!("column {i}, row {row}: {e}"))
        };
        let attribution = match opt_text(rule_col, row) {
            Some(rule) => Some(Box::new(Attribution {
                rule: names.get(rule),
                basis: names.get(opt_text(rule_col + 1, row).unwrap_or("")),
                driver: opt_text(rule_col + 2, row).map(|d| names.get(d)),
                quantity: quantity(rule_col + 3)?,
                quantity_total: quantity(rule_col + 4)?,
                share: if dec(rule_col + 5).is_null(row) {
                    Decimal::ZERO
                } else {
                    exact(rule_col + 5, row, MONEY_SCALE)?
                },
            })),
            None => None,
        };
        out.push(CostLine {
            period,
            key,
            amounts,
            attribution,
            unattributed_reason: opt_text(rule_col + 6, row).map(str::to_string),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_the_documented_columns_in_order() {
        let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
        let documented: Vec<&str> = PARQUET_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented);
    }
}
