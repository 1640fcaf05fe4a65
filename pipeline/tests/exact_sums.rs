//! Issue 12 point 4: no silent inexactness. Every sum of the pipeline is exact or an error naming
//! the measure, on both scan paths (the fast path takes legacy Parquet with `double` money; CUR 2.0
//! Parquet, with map columns, and any file with a decimal-typed money column take the generic
//! DataFusion plan).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::excessive_precision)]

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Decimal128Array, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Float64Type, Schema};
use curflow::ErrorClass;
use curflow::money::{MONEY_SCALE, QUANTITY_SCALE, decimal_from_parts, f64_to_scaled};
use curflow_fixtures::{Format, Generated};
use rust_decimal::Decimal;

const UNBLENDED: &str = "line_item_unblended_cost";
const USAGE: &str = "line_item_usage_amount";

/// Replaces (or adds) columns of a batch.
fn replace(batch: RecordBatch, columns: &[(&str, ArrayRef)]) -> RecordBatch {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, array) in columns {
        let i = schema.index_of(name).unwrap();
        fields[i] = Field::new(*name, array.data_type().clone(), true);
        arrays[i] = Arc::clone(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

/// Makes every row a plain `Usage` row (no split-cost child rows, every row counts usage), so
/// that the expected sums are simply the sums over all rows; then lets `f` set money columns
/// (`f(global row index, batch)`).
fn rewrite_month(g: &Generated, mut f: impl FnMut(usize, usize) -> Vec<(&'static str, ArrayRef)>) {
    let mut row = 0usize;
    for file in &g.data_files {
        common::rewrite_parquet(file, file, |batch| {
            let n = batch.num_rows();
            let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
            let mut columns = vec![("line_item_line_item_type", text("Usage")), ("line_item_operation", text("Op"))];
            columns.extend(f(row, n));
            row += n;
            replace(batch, &columns)
        });
    }
}

fn month(dir: &Path, format: Format) -> Generated {
    common::generate(dir, format, 400, 12, |o| {
        o.files = Some(2);
        o.include_net_columns = false;
        o.include_commitments = false;
    })
}

/// Σ of each value converted as the scan documents it (`f64_to_scaled`), exactly in `i128`.
fn exact_total(values: &[f64], scale: u32) -> i128 {
    values.iter().map(|v| f64_to_scaled(*v, scale).unwrap()).sum()
}

/// Processes and returns the stored unblended and usage totals, or the error.
fn run(g: &Generated, store: &Path) -> curflow::Result<curflow::process::PeriodReport> {
    common::process(std::slice::from_ref(&g.manifest_path), store)
}

/// `Ok` only when `total` is exactly `expected` (scaled); an error must be bad input naming the
/// measure. A rounded total (what `rust_decimal`'s `+` gives past 28 digits) fails.
fn exact_or_named_error(
    result: &curflow::Result<curflow::process::PeriodReport>,
    measure: &str,
    pick: impl Fn(&curflow::Amounts) -> Decimal,
    expected: i128,
    scale: u32,
) {
    match result {
        Ok(report) => {
            let total = pick(&report.totals["USD"]);
            let exact = Decimal::try_from_i128_with_scale(expected, scale).ok();
            assert_eq!(Some(total), exact, "{measure}: total {total} is not the exact sum {expected}e-{scale}");
        }
        Err(e) => {
            assert_eq!(e.class(), ErrorClass::User, "{e}");
            assert!(e.to_string().contains(measure), "the error does not name {measure}: {e}");
        }
    }
}

/// Doubles with 17 significant digits through every branch of the `double` → decimal conversion
/// (rounded at 12 places; at fewer places where `v·10^12 ≥ 2^50`; integers beyond 2^50), on the
/// fast path (legacy Parquet) and the generic plan (CUR 2.0 Parquet). The stored lines and the
/// totals are exactly the sum of the converted values. Then one more line of 1.2e16 makes the
/// total need 29 significant digits: before, `rust_decimal` rounded it silently (the total lost
/// its last digits and the run succeeded); now it is exact or an error naming `unblended_cost`.
#[test]
fn seventeen_digit_doubles_sum_exactly_on_both_scan_paths_or_fail_naming_the_measure() {
    const VALUES: [f64; 6] = [
        0.12345678901234567,  // |v·10^12| < 2^50: rounded at 12 places
        -0.98765432109876543, // negative, rounded half away from zero
        1234.5678901234567,   // v·10^12 ≥ 2^50: rounded at 11 places
        12345678.901234567,   // rounded at 7 places
        0.30000000000000004,  // 0.1 + 0.2
        1.0000000000000002,   // one ulp above 1
    ];
    for format in [Format::LegacyParquet, Format::Cur2Parquet] {
        for huge in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let g = month(dir.path(), format);
            let mut all = Vec::new();
            rewrite_month(&g, |start, n| {
                let values: Vec<f64> = (start..start + n)
                    .map(|i| match i {
                        0 => 1234567890123456.7, // ≥ 2^50: an integer
                        1 if huge => 12345678901234567.0,
                        _ => VALUES[i % VALUES.len()],
                    })
                    .collect();
                all.extend_from_slice(&values);
                vec![(UNBLENDED, Arc::new(Float64Array::from(values)) as ArrayRef)]
            });
            let expected = exact_total(&all, MONEY_SCALE);
            let result = run(&g, &dir.path().join("s.sqlite"));
            if !huge {
                let report = result.as_ref().unwrap_or_else(|e| panic!("{format:?}: {e}"));
                let stored = common::stored_total(&dir.path().join("s.sqlite"), report.period);
                assert_eq!(stored.unblended_cost, Decimal::try_from_i128_with_scale(expected, MONEY_SCALE).unwrap());
            }
            exact_or_named_error(&result, "unblended_cost", |a| a.unblended_cost, expected, MONEY_SCALE);
        }
    }
}

/// Byte-hours of very large buckets: each line fits (5e17 byte-hours), but the month's usage
/// total needs more than 28 significant digits with the small fractional quantities of other
/// lines. Before, the total was rounded silently; now it is exact or an error naming
/// `usage_amount`. Both scan paths.
#[test]
fn usage_amounts_summing_past_28_digits_are_exact_or_an_error_naming_the_measure() {
    for format in [Format::LegacyParquet, Format::Cur2Parquet] {
        let dir = tempfile::tempdir().unwrap();
        let g = month(dir.path(), format);
        let mut all = Vec::new();
        rewrite_month(&g, |start, n| {
            // One row of 0.0000012346: the total in units of 1e-10 then ends in 1 or 6, never in a
            // zero that a shorter exact Decimal could drop (with 0.0000012345 alone, an even count
            // of small rows gives trailing zeros, and the exact total may fit 28 digits after all).
            let values: Vec<f64> = (start..start + n)
                .map(|i| match i {
                    1 => 0.0000012346,
                    _ if i % 20 == 0 => 500_000_000_000_000_000.0,
                    _ => 0.0000012345,
                })
                .collect();
            all.extend_from_slice(&values);
            vec![(USAGE, Arc::new(Float64Array::from(values)) as ArrayRef)]
        });
        let expected = exact_total(&all, QUANTITY_SCALE);
        assert!(
            decimal_from_parts(expected, i64::from(QUANTITY_SCALE)).is_none(),
            "the test needs a total with more than 28 significant digits"
        );
        let result = run(&g, &dir.path().join("s.sqlite"));
        assert!(result.is_err(), "{format:?}: a total that has no exact Decimal was accepted");
        exact_or_named_error(&result, "usage_amount", |a| a.usage_amount, expected, QUANTITY_SCALE);
    }
}

/// A decimal-typed money column (`Decimal128(38, 12)`, as Athena/Spark exports write): read
/// exactly (the generic plan). Then four amounts of one group that sum to 2^128 + 5 units:
/// DataFusion's `sum` over `Decimal128` wraps, so before the group was stored as 0.000000000005
/// and the run succeeded; now the sum is exact or an error naming `unblended_cost`.
#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn decimal_money_column_is_read_exactly_and_a_wrapping_sum_is_refused() {
    // Exact: the generated costs as Decimal128(38, 12).
    let dir = tempfile::tempdir().unwrap();
    let g = month(dir.path(), Format::LegacyParquet);
    let mut expected = 0i128;
    for file in &g.data_files {
        common::rewrite_parquet(file, file, |batch| {
            let costs = batch.column_by_name(UNBLENDED).unwrap().as_primitive::<Float64Type>().clone();
            let scaled: Vec<Option<i128>> =
                costs.iter().map(|v| v.map(|v| f64_to_scaled(v, MONEY_SCALE).unwrap())).collect();
            expected += scaled.iter().flatten().sum::<i128>();
            let d = Decimal128Array::from(scaled).with_precision_and_scale(38, MONEY_SCALE as i8).unwrap();
            let n = batch.num_rows();
            let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
            replace(
                batch,
                &[
                    (UNBLENDED, Arc::new(d) as ArrayRef),
                    ("line_item_line_item_type", text("Usage")),
                    ("line_item_operation", text("Op")),
                ],
            )
        });
    }
    let report = run(&g, &dir.path().join("s.sqlite")).unwrap();
    assert_eq!(report.totals["USD"].unblended_cost, Decimal::try_from_i128_with_scale(expected, MONEY_SCALE).unwrap());

    // Wrapping: one group (every key column the same as row 0's) whose four largest amounts sum to
    // 2^128 + 5 scaled units; every other row 0.
    let dir = tempfile::tempdir().unwrap();
    let g = month(dir.path(), Format::LegacyParquet);
    let big = 10i128.pow(38) - 1;
    // 2^128 + 5 − 3·big, computed modulo 2^128.
    let last = 5u128.wrapping_sub(3u128.wrapping_mul(big as u128)) as i128;
    assert!(last > 0 && last < 10i128.pow(38));
    let mut row = 0usize;
    for file in &g.data_files {
        common::rewrite_parquet(file, file, |batch| {
            let n = batch.num_rows();
            let zeros = arrow::array::UInt32Array::from(vec![0u32; n]);
            let same = |name: &str| -> (String, ArrayRef) {
                let column = batch.column_by_name(name).unwrap();
                (name.to_string(), arrow::compute::take(column, &zeros, None).unwrap())
            };
            let keys: Vec<(String, ArrayRef)> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|name| {
                    name.starts_with("line_item_usage_start")
                        || name.starts_with("resource_tags")
                        || name.starts_with("line_item_product_code")
                        || name.starts_with("line_item_usage_type")
                        || name.starts_with("line_item_resource_id")
                        || name.starts_with("line_item_currency_code")
                        || name.starts_with("pricing_unit")
                        || name.starts_with("bill_invoice_id")
                        || name.starts_with("bill_billing_period_start")
                })
                .map(|name| same(&name))
                .collect();
            let amounts: Vec<i128> = (row..row + n)
                .map(|i| match i {
                    0..=2 => big,
                    3 => last,
                    _ => 0,
                })
                .collect();
            row += n;
            let d = Decimal128Array::from(amounts).with_precision_and_scale(38, MONEY_SCALE as i8).unwrap();
            let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
            let mut columns: Vec<(&str, ArrayRef)> = keys.iter().map(|(k, a)| (k.as_str(), Arc::clone(a))).collect();
            columns.push((UNBLENDED, Arc::new(d)));
            columns.push(("line_item_line_item_type", text("Usage")));
            columns.push(("line_item_operation", text("Op")));
            replace(batch, &columns)
        });
    }
    // One file only holds the four rows (files are written in order), so the wrap is within one
    // file's aggregate.
    let result = run(&g, &dir.path().join("s.sqlite"));
    match &result {
        Ok(report) => panic!("a sum of 2^128 + 5 units was stored as {:?}", report.totals["USD"].unblended_cost),
        Err(e) => {
            assert_eq!(e.class(), ErrorClass::User, "{e}");
            assert!(e.to_string().contains("unblended_cost"), "{e}");
        }
    }
}
