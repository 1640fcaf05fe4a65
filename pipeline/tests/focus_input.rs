//! FOCUS exports as input (AWS Data Exports `FOCUS_1_2_AWS`, Parquet and CSV): the measures come
//! from the provider's columns (unblended and net = `BilledCost`, amortized = `EffectiveCost`),
//! the tenant from the `Tags` map (Parquet) or JSON text (CSV), the service from `x_ServiceCode`.
//!
//! One small month of every charge category that matters, written by hand with its expected
//! figures: Savings-Plan-covered usage (billed 0, effective > 0), the commitment purchase
//! (billed > 0, effective 0), one-time (an upfront fee) and recurring, tax, a credit, usage of two
//! tenants and untagged usage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, RecordBatch, StringArray, StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::Datelike;
use rust_decimal::Decimal;

/// (category, service, tenant, billed, effective, quantity, charge day)
type Row = (&'static str, &'static str, Option<&'static str>, &'static str, &'static str, &'static str, u32);

const ROWS: [Row; 8] = [
    ("Usage", "AWSLambda", Some("acme"), "1.25", "1.25", "10", 3),
    ("Usage", "AmazonEC2", Some("beta"), "0", "0.8", "24", 4),
    ("Purchase", "ComputeSavingsPlans", None, "2.0", "0", "1", 1),
    ("Tax", "AWSLambda", None, "0.3", "0.3", "0", 1),
    ("Credit", "AWSLambda", Some("acme"), "-0.5", "-0.5", "0", 5),
    ("Usage", "AmazonS3", None, "0.00000081", "0.00000081", "2", 6),
    ("Usage", "AmazonS3", Some("acme"), "1.1E-7", "1.1E-7", "1", 6),
    ("Purchase", "ComputeSavingsPlans", None, "0.7", "0", "1", 2),
];

/// `ChargeFrequency` and `CommitmentDiscountId` of each row of [`ROWS`]: the Savings Plan's
/// upfront payment (row 2, one-time) is an upfront fee; its recurring fee (row 7) is not, nor is
/// the tax (one-time, but no purchase).
const FREQUENCY: [(&str, Option<&str>); 8] = [
    ("Usage-Based", None),
    ("Usage-Based", Some(PLAN)),
    ("One-Time", Some(PLAN)),
    ("One-Time", None),
    ("One-Time", None),
    ("Usage-Based", None),
    ("Usage-Based", None),
    ("Recurring", Some(PLAN)),
];
const PLAN: &str = "arn:aws:savingsplans::123456789012:savingsplan/sp-1";
/// Σ `BilledCost` of the one-time commitment purchases.
const UPFRONT: &str = "2.0";

/// `ContractedCost` of each row of [`ROWS`], written to the Parquet month only (the CSV month has
/// no such column, so its contracted cost is 0).
const CONTRACTED: [&str; 8] = ["1.5", "0.9", "0", "0.3", "-0.5", "0.000001", "2.2E-7", "0"];

/// `PricingQuantity` of each row of [`ROWS`] (`None`: NULL, as FOCUS requires on tax), written to
/// the Parquet month only: the plan's hours (a year upfront, a month recurring) where
/// `ConsumedQuantity` has none. The CSV month has no such column, so its pricing quantity is
/// every row's `ConsumedQuantity`.
const PRICING: [Option<f64>; 8] = [Some(10.0), Some(24.0), Some(8760.0), None, None, Some(2.0), Some(1.0), Some(720.0)];

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|_| Decimal::from_scientific(s).unwrap())
}

fn millis(day: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// The month as AWS's FOCUS 1.2 Parquet export writes it (the columns curflow reads, and a few it
/// does not).
fn write_parquet(path: &Path) {
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMillisecondArray::from(v)) };
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let num = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in &ROWS {
        if let Some(t) = r.2 {
            tags.keys().append_value("user:accountant_id");
            tags.values().append_value(t);
            tags.keys().append_value("aws:createdBy");
            tags.values().append_value("someone");
        }
        tags.append(true).unwrap();
    }
    let tags: ArrayRef = Arc::new(tags.finish());
    let n = ROWS.len();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("BillingPeriodStart", ts(vec![millis(1); n])),
        ("ChargePeriodStart", ts(ROWS.iter().map(|r| millis(r.6)).collect())),
        ("ChargeCategory", text(ROWS.iter().map(|r| r.0).collect())),
        ("ServiceName", text(vec!["Some Service"; n])),
        ("x_ServiceCode", text(ROWS.iter().map(|r| r.1).collect())),
        ("BillingCurrency", text(vec!["USD"; n])),
        ("BilledCost", num(ROWS.iter().map(|r| f64::from_str(r.3).unwrap()).collect())),
        ("EffectiveCost", num(ROWS.iter().map(|r| f64::from_str(r.4).unwrap()).collect())),
        ("ListCost", num(vec![9.99; n])),
        ("ContractedCost", num(CONTRACTED.iter().map(|c| f64::from_str(c).unwrap()).collect())),
        ("ConsumedQuantity", num(ROWS.iter().map(|r| f64::from_str(r.5).unwrap()).collect())),
        ("PricingQuantity", Arc::new(Float64Array::from(PRICING.to_vec()))),
        ("ChargeFrequency", text(FREQUENCY.iter().map(|f| f.0).collect())),
        ("CommitmentDiscountId", Arc::new(StringArray::from(FREQUENCY.iter().map(|f| f.1).collect::<Vec<_>>()))),
        ("Tags", tags),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| {
                let t = match a.data_type() {
                    DataType::Timestamp(..) => DataType::Timestamp(TimeUnit::Millisecond, None),
                    other => other.clone(),
                };
                Field::new(*name, t, true)
            })
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The same month as FOCUS CSV, gzip-compressed, tags as JSON text, `NULL` for absent values.
fn write_csv_gz(path: &Path) {
    let mut text = String::from(
        "BillingPeriodStart,ChargePeriodStart,ChargeCategory,ServiceName,x_ServiceCode,BillingCurrency,BilledCost,EffectiveCost,ConsumedQuantity,ChargeFrequency,CommitmentDiscountId,Tags\n",
    );
    for (r, (frequency, commitment)) in ROWS.iter().zip(FREQUENCY) {
        let tags = match r.2 {
            Some(t) => format!("\"{{\"\"user:accountant_id\"\":\"\"{t}\"\"}}\""),
            None => "NULL".into(),
        };
        text.push_str(&format!(
            "2026-11-01 00:00:00,2026-11-{:02} 00:00:00,{},Some Service,{},USD,{},{},{},{frequency},{},{tags}\n",
            r.6,
            r.0,
            r.1,
            r.3,
            r.4,
            r.5,
            commitment.unwrap_or("NULL")
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn check(input: &Path, format: &str) {
    let dir = input.parent().unwrap();
    let store = dir.join(format!("{format}.sqlite"));
    let report = common::process(&[input.to_path_buf()], &store).unwrap();
    assert_eq!(report.period.to_string(), "2026-11");
    assert_eq!(report.rows_read, ROWS.len() as u64);
    let billed: Decimal = ROWS.iter().map(|r| d(r.3)).sum();
    let effective: Decimal = ROWS.iter().map(|r| d(r.4)).sum();
    let usd = &report.totals["USD"];
    assert_eq!(
        (usd.unblended_cost, usd.net_unblended_cost, usd.amortized_cost),
        (billed, billed, effective),
        "{format}"
    );
    // Upfront fees: the one-time commitment purchase; the true-up: the rest of billed − effective,
    // so unblended = amortized + true-up + upfront fees, as for a CUR.
    assert_eq!(usd.ri_sp_upfront_fees, d(UPFRONT), "{format}");
    assert_eq!(usd.ri_sp_trueup, billed - effective - d(UPFRONT), "{format}");
    assert_eq!(usd.unblended_cost, usd.amortized_cost + usd.ri_sp_trueup + usd.ri_sp_upfront_fees);
    // Usage quantity counts usage rows only.
    let usage: Decimal = ROWS.iter().filter(|r| r.0 == "Usage").map(|r| d(r.5)).sum();
    assert_eq!(usd.usage_amount, usage, "{format}");
    // Pricing quantity: `PricingQuantity` where the file has it (NULL: 0), else every row's
    // consumed quantity.
    let pricing: Decimal = if format.starts_with("parquet") {
        PRICING.iter().flatten().map(|q| Decimal::try_from(*q).unwrap()).sum()
    } else {
        ROWS.iter().map(|r| d(r.5)).sum()
    };
    assert_eq!(usd.pricing_quantity, pricing, "{format}");

    let lines = curflow::store::SqliteStore::open(&store)
        .and_then(|s| curflow::store::CostStore::cost_lines(&s, report.period).wait())
        .unwrap();
    let mut got: BTreeMap<Option<String>, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    for l in &lines {
        let slot = got.entry(l.key.tenant.as_deref().map(str::to_string)).or_default();
        slot.0 += l.amounts.unblended_cost;
        slot.1 += l.amounts.amortized_cost;
        slot.2 += l.amounts.contracted_cost;
    }
    let mut want: BTreeMap<Option<String>, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    for (r, c) in ROWS.iter().zip(CONTRACTED) {
        let slot = want.entry(r.2.map(str::to_string)).or_default();
        slot.0 += d(r.3);
        slot.1 += d(r.4);
        slot.2 += if format == "parquet" { d(c) } else { Decimal::ZERO };
    }
    assert_eq!(got, want, "{format}: per tenant, the pool under None");
    let services: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.key.service.as_str()).collect();
    assert!(services.contains("AWSLambda") && !services.contains("Some Service"), "x_ServiceCode first: {services:?}");
    let purchase = lines.iter().find(|l| l.key.line_item_type == "Purchase" && l.key.usage_date.day() == 1).unwrap();
    assert_eq!((purchase.amounts.unblended_cost, purchase.amounts.amortized_cost), (d("2.0"), Decimal::ZERO));
    assert_eq!((purchase.amounts.ri_sp_upfront_fees, purchase.amounts.ri_sp_trueup), (d("2.0"), Decimal::ZERO));
    let recurring = lines.iter().find(|l| l.key.line_item_type == "Purchase" && l.key.usage_date.day() == 2).unwrap();
    assert_eq!((recurring.amounts.ri_sp_upfront_fees, recurring.amounts.ri_sp_trueup), (Decimal::ZERO, d("0.7")));
    // Every line keeps the identity.
    for l in &lines {
        let a = &l.amounts;
        assert_eq!(a.unblended_cost, a.amortized_cost + a.ri_sp_trueup + a.ri_sp_upfront_fees, "{format}: {l:?}");
    }
}

#[test]
fn a_focus_parquet_export_is_read_from_its_billed_and_effective_cost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("focus-00001.snappy.parquet");
    write_parquet(&path);
    check(&path, "parquet");
}

/// A column whose every value is NULL may come without a type (Arrow `Null`, as pyarrow or
/// Polars write an all-null column): an optional one reads as absent, even the tags.
#[test]
fn all_null_columns_without_a_type_read_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("focus-nulls.parquet");
    let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![millis(1), millis(2)]));
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let nulls: ArrayRef = Arc::new(arrow::array::NullArray::new(2));
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("BillingPeriodStart", Arc::new(TimestampMillisecondArray::from(vec![millis(1); 2]))),
        ("ChargePeriodStart", ts),
        ("ChargeCategory", text(vec!["Usage", "Purchase"])),
        ("ServiceName", text(vec!["AmazonS3", "Savings Plans"])),
        ("BillingCurrency", text(vec!["USD", "USD"])),
        ("BilledCost", Arc::new(Float64Array::from(vec![1.5, 3.0]))),
        ("EffectiveCost", Arc::new(Float64Array::from(vec![1.5, 0.0]))),
        ("ChargeFrequency", text(vec!["Usage-Based", "One-Time"])),
        ("CommitmentDiscountId", Arc::clone(&nulls)),
        ("Tags", nulls),
    ];
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let report = common::process(&[path], &dir.path().join("s.sqlite")).unwrap();
    let usd = &report.totals["USD"];
    assert_eq!((usd.unblended_cost, usd.amortized_cost), (d("4.5"), d("1.5")));
    // No commitment id: the one-time purchase is no upfront fee; billed − effective is true-up.
    assert_eq!((usd.ri_sp_upfront_fees, usd.ri_sp_trueup), (Decimal::ZERO, d("3")));
    assert_eq!(report.tenants, 0, "no tags");
}

#[test]
fn a_focus_csv_gz_export_is_read_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("focus-00001.csv.gz");
    write_csv_gz(&path);
    check(&path, "csv");
}

/// `curflow process` on bare files of two billing periods given together (here a legacy CUR
/// October and November, all of their files) stores each period on its own, each equal to its
/// generator's `expected.json`; before, the run was refused.
#[test]
fn bare_files_of_two_billing_periods_are_stored_as_two_periods() {
    use curflow_fixtures::Format;
    let dir = tempfile::tempdir().unwrap();
    let october = common::generate(&dir.path().join("oct"), Format::LegacyParquet, 1_000, 3, |_| {});
    let november = common::generate(&dir.path().join("nov"), Format::LegacyParquet, 1_000, 4, |o| o.month = 11);
    let store = dir.path().join("s.sqlite");
    let mut args: Vec<String> = vec!["process".into()];
    for g in [&october, &november] {
        args.extend(g.data_files.iter().map(|p| p.display().to_string()));
    }
    args.extend(["--store".into(), store.display().to_string(), "--format".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::ok(&common::run_curflow(&args, None, &[]));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["reports"].as_array().unwrap().len(), 2, "{out}");
    for (g, period) in [(&october, "2026-10"), (&november, "2026-11")] {
        let p: curflow::BillingPeriod = period.parse().unwrap();
        let stored = common::stored_total(&store, p);
        let want = &g.expected.totals;
        assert_eq!(
            (stored.unblended_cost, stored.amortized_cost, stored.net_unblended_cost),
            (want.unblended_cost, want.amortized_cost, want.net_unblended_cost),
            "{period}"
        );
        let record = curflow::store::SqliteStore::open(&store)
            .and_then(|s| curflow::store::CostStore::period(&s, p).wait())
            .unwrap()
            .unwrap();
        assert_eq!(record.rows_read, g.expected.rows, "{period}: the rows of its own files");
    }
}

/// A FOCUS correction (`ChargeClass` `Correction`) of a billing period invoiced months before
/// is billed in this one: it is stored on the first day of the billing period that bills it,
/// by the fast path (Parquet) and the generic plan (CSV) alike. Without the `ChargeClass`
/// column the same row is an out-of-window date, refused naming the column.
#[test]
fn a_correction_of_an_earlier_period_is_dated_on_the_period_that_bills_it() {
    let dir = tempfile::tempdir().unwrap();
    let july = chrono::NaiveDate::from_ymd_opt(2026, 7, 15).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let parquet = |path: &Path, with_class: bool| {
        let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            ("BillingPeriodStart", Arc::new(TimestampMillisecondArray::from(vec![millis(1); 3]))),
            (
                "ChargePeriodStart",
                Arc::new(TimestampMillisecondArray::from(vec![
                    millis(3),
                    july.and_utc().timestamp_millis(),
                    millis(4),
                ])),
            ),
            ("ChargeCategory", text(vec!["Usage", "Credit", "Usage"])),
            ("ServiceName", text(vec!["AmazonS3"; 3])),
            ("BillingCurrency", text(vec!["USD"; 3])),
            ("BilledCost", Arc::new(Float64Array::from(vec![1.5, -0.4, 0.25]))),
            ("EffectiveCost", Arc::new(Float64Array::from(vec![1.5, -0.4, 0.25]))),
        ];
        if with_class {
            columns.push(("ChargeClass", Arc::new(StringArray::from(vec![None, Some("Correction"), None]))));
        }
        let schema = Arc::new(Schema::new(
            columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    };
    let csv = |path: &Path| {
        let text = "BillingPeriodStart,ChargePeriodStart,ChargeCategory,ChargeClass,ServiceName,BillingCurrency,BilledCost,EffectiveCost\n\
                    2026-11-01 00:00:00,2026-11-03 00:00:00,Usage,NULL,AmazonS3,USD,1.5,1.5\n\
                    2026-11-01 00:00:00,2026-07-15 00:00:00,Credit,Correction,AmazonS3,USD,-0.4,-0.4\n\
                    2026-11-01 00:00:00,2026-11-04 00:00:00,Usage,NULL,AmazonS3,USD,0.25,0.25\n";
        std::fs::write(path, text).unwrap();
    };
    let (with_class, csv_path) = (dir.path().join("focus-class.parquet"), dir.path().join("focus-class.csv"));
    parquet(&with_class, true);
    csv(&csv_path);
    let november = curflow::BillingPeriod::new(2026, 11).unwrap();
    for input in [with_class, csv_path] {
        let store = dir.path().join(format!("{}.sqlite", input.file_name().unwrap().to_string_lossy()));
        let report = common::process(std::slice::from_ref(&input), &store).unwrap();
        assert_eq!(report.period, november);
        assert_eq!(report.totals["USD"].unblended_cost, d("1.35"), "{}", input.display());
        let lines = curflow::store::SqliteStore::open(&store)
            .and_then(|s| curflow::store::CostStore::cost_lines(&s, november).wait())
            .unwrap();
        let days: BTreeMap<String, Decimal> =
            lines.iter().map(|l| (l.key.usage_date.to_string(), l.amounts.unblended_cost)).collect();
        let want = BTreeMap::from([
            ("2026-11-01".to_string(), d("-0.4")),
            ("2026-11-03".to_string(), d("1.5")),
            ("2026-11-04".to_string(), d("0.25")),
        ]);
        assert_eq!(days, want, "{}: the correction is on the period's first day", input.display());
    }
    let without_class = dir.path().join("focus-no-class.parquet");
    parquet(&without_class, false);
    let refused = common::process(std::slice::from_ref(&without_class), &dir.path().join("x.sqlite"));
    let message = refused.expect_err("an out-of-window date without ChargeClass is refused").to_string();
    assert!(message.contains("ChargePeriodStart") && message.contains("2026-07-15"), "{message}");
}

/// The shipped rules split a FOCUS month's commitment purchases (`Purchase`: the Savings Plan's
/// upfront payment and recurring fee) and tax by the tenants' direct cost, as they split the CUR's
/// `SavingsPlanUpfrontFee`/`SavingsPlanRecurringFee` and `Tax`: nothing is left `unmatched`
/// because FOCUS names the categories differently, and the split still sums to the bill.
#[test]
fn a_focus_months_purchases_are_split_like_the_curs_fees() {
    use curflow::aggregate::LineSource;
    use curflow::attribute::{AttributionInputs, AttributionOptions};
    use curflow::discover::discover;
    use curflow::process::Processor;
    use curflow::store::{CostStore, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("focus-00001.snappy.parquet");
    write_parquet(&path);
    let inputs = AttributionInputs::load(&AttributionOptions {
        tenant_key: "accountant_id".into(),
        ..AttributionOptions::default()
    })
    .unwrap();
    let processor = Processor::new(common::options()).unwrap().with_attribution(inputs);
    let mut store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
    let delivery = &discover(std::slice::from_ref(&path)).unwrap()[0];
    let report = common::rt().block_on(processor.process(&mut store, delivery, &|_| {})).unwrap();
    let lines = store.cost_lines(report.period).wait().unwrap();

    for category in ["Purchase", "Tax"] {
        let parts: Vec<_> = lines.iter().filter(|l| l.key.line_item_type == category).collect();
        assert!(
            parts.iter().all(|l| l.source() == LineSource::Attributed),
            "{category}: {:?}",
            parts.iter().map(|l| (l.source(), l.unattributed_reason.clone())).collect::<Vec<_>>()
        );
        assert!(parts.iter().all(|l| l.attribution.as_ref().unwrap().rule == "tax-credits-refunds-fees"));
        // Both tenants with direct cost get a part; together the parts are the category's bill.
        let tenants: std::collections::BTreeSet<_> = parts.iter().filter_map(|l| l.key.tenant.as_deref()).collect();
        assert_eq!(tenants.into_iter().collect::<Vec<_>>(), ["acme", "beta"], "{category}");
        let billed: Decimal = ROWS.iter().filter(|r| r.0 == category).map(|r| d(r.3)).sum();
        assert_eq!(parts.iter().map(|l| l.amounts.unblended_cost).sum::<Decimal>(), billed, "{category}");
    }
    // The untagged S3 usage has no rule (no S3 evidence): it stays shared and says why.
    assert!(lines.iter().filter(|l| l.source() == LineSource::Shared).all(|l| l.unattributed_reason.is_some()));
    let total: Decimal = lines.iter().map(|l| l.amounts.unblended_cost).sum();
    assert_eq!(total, ROWS.iter().map(|r| d(r.3)).sum::<Decimal>());
}

/// (category, tenant, billed, effective, `CommitmentDiscountStatus`)
type StatusRow = (&'static str, Option<&'static str>, f64, f64, Option<&'static str>);

const STATUS_ROWS: [StatusRow; 5] = [
    ("Usage", Some("acme"), 0.0, 0.75, Some("Used")),
    ("Usage", None, 0.0, 0.25, Some("Unused")),
    ("Usage", Some("beta"), 3.0, 3.0, None),
    ("Purchase", None, 1.0, 0.0, None),
    // `Unused` on anything but usage is not FOCUS; it is left as it is.
    ("Tax", None, 0.5, 0.5, Some("Unused")),
];

/// [`STATUS_ROWS`] as Parquet the fast path reads.
fn write_status_parquet(path: &Path) {
    let rows = &STATUS_ROWS;
    let text = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let num =
        |f: fn(&StatusRow) -> f64| -> ArrayRef { Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>())) };
    let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        if let Some(t) = r.1 {
            tags.keys().append_value("user:accountant_id");
            tags.values().append_value(t);
        }
        tags.append(true).unwrap();
    }
    let n = rows.len();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("BillingPeriodStart", Arc::new(TimestampMillisecondArray::from(vec![millis(1); n]))),
        ("ChargePeriodStart", Arc::new(TimestampMillisecondArray::from(vec![millis(2); n]))),
        ("ChargeCategory", text(rows.iter().map(|r| Some(r.0)).collect())),
        ("ServiceName", text(vec![Some("Amazon Elastic Compute Cloud"); n])),
        ("x_ServiceCode", text(vec![Some("AmazonEC2"); n])),
        ("BillingCurrency", text(vec![Some("USD"); n])),
        ("BilledCost", num(|r| r.2)),
        ("EffectiveCost", num(|r| r.3)),
        // Required by the fast path (this file must take it); none on unused commitment.
        (
            "ConsumedQuantity",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| (r.4 != Some("Unused")).then_some(1.0)).collect::<Vec<_>>(),
            )),
        ),
        ("CommitmentDiscountStatus", text(rows.iter().map(|r| r.4).collect())),
        ("Tags", Arc::new(tags.finish())),
    ];
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// [`STATUS_ROWS`] as CSV (the generic plan).
fn write_status_csv(path: &Path) {
    let mut text = String::from(
        "BillingPeriodStart,ChargePeriodStart,ChargeCategory,ServiceName,x_ServiceCode,BillingCurrency,BilledCost,EffectiveCost,CommitmentDiscountStatus,Tags\n",
    );
    for r in &STATUS_ROWS {
        let tags = r.1.map_or("NULL".to_string(), |t| format!("\"{{\"\"user:accountant_id\"\":\"\"{t}\"\"}}\""));
        text.push_str(&format!(
            "2026-11-01 00:00:00,2026-11-02 00:00:00,{},Amazon Elastic Compute Cloud,AmazonEC2,USD,{},{},{},{tags}\n",
            r.0,
            r.2,
            r.3,
            r.4.unwrap_or("NULL"),
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// FOCUS's own layout of unused commitment (the specification's `commitment_discount_usage`
/// scenarios, other providers' exports): a `Usage` row of no resource whose
/// `CommitmentDiscountStatus` is `Unused`, billed 0 (the purchase row bills the commitment), its
/// `EffectiveCost` the unused part. It is stored as line-item type `UnusedCommitment` on both
/// scan paths and split by direct cost like a CUR's unused commitment fees; before, it was plain
/// `Usage` of its service, which no usage evidence splits, so it stayed `unmatched`.
#[test]
fn unused_commitment_is_its_own_type_and_split_by_direct_cost() {
    use curflow::aggregate::LineSource;
    use curflow::attribute::{AttributionInputs, AttributionOptions};
    use curflow::discover::discover;
    use curflow::process::Processor;
    use curflow::store::{CostStore, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let (parquet, csv) = (dir.path().join("focus-unused.parquet"), dir.path().join("focus-unused.csv"));
    write_status_parquet(&parquet);
    write_status_csv(&csv);
    for input in [parquet, csv] {
        let inputs = AttributionInputs::load(&AttributionOptions {
            tenant_key: "accountant_id".into(),
            ..AttributionOptions::default()
        })
        .unwrap();
        let processor = Processor::new(common::options()).unwrap().with_attribution(inputs);
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let mut store = SqliteStore::open(&dir.path().join(format!("{name}.sqlite"))).unwrap();
        let delivery = &discover(std::slice::from_ref(&input)).unwrap()[0];
        let report = common::rt().block_on(processor.process(&mut store, delivery, &|_| {})).unwrap();
        let usd = &report.totals["USD"];
        assert_eq!((usd.unblended_cost, usd.amortized_cost), (d("4.5"), d("4.5")), "{name}");
        let lines = store.cost_lines(report.period).wait().unwrap();
        let unused: Vec<_> = lines.iter().filter(|l| l.key.line_item_type == "UnusedCommitment").collect();
        assert!(!unused.is_empty(), "{name}: {:?}", lines.iter().map(|l| &l.key.line_item_type).collect::<Vec<_>>());
        assert!(
            unused.iter().all(|l| l.source() == LineSource::Attributed
                && l.attribution.as_ref().unwrap().rule == "tax-credits-refunds-fees"),
            "{name}: {:?}",
            unused.iter().map(|l| (l.source(), l.unattributed_reason.clone())).collect::<Vec<_>>()
        );
        assert_eq!(unused.iter().map(|l| l.amounts.amortized_cost).sum::<Decimal>(), d("0.25"), "{name}");
        assert_eq!(unused.iter().map(|l| l.amounts.unblended_cost).sum::<Decimal>(), Decimal::ZERO, "{name}");
        // The used commitment and the tax keep their categories.
        let types: std::collections::BTreeSet<_> = lines.iter().map(|l| l.key.line_item_type.as_str()).collect();
        assert_eq!(types.into_iter().collect::<Vec<_>>(), ["Purchase", "Tax", "UnusedCommitment", "Usage"], "{name}");
        assert_eq!(
            report.line_item_types.get("UnusedCommitment").map(|t| (t.rows, t.known)),
            Some((1, true)),
            "{name}: the run summary names it, as a known type"
        );
    }
}
