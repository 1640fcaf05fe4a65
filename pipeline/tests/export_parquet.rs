//! `curflow export --format parquet`: a generated month with attribution (tagged, attributed and
//! shared rows), exported and read back. The file has the documented columns and types
//! (money `decimal(38, 12)`, usage `decimal(38, 10)`, `date`, `int64`), its money sums to the bill
//! exactly in integer units read straight from the Parquet columns, and reading it back gives the
//! stored lines, field for field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::fs::File;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Decimal128Type};
use common::{MEASURES, dec, expected_json, measure};
use curflow::aggregate::sort_lines;
use curflow::output::parquet::{PARQUET_COLUMNS, read_lines};
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};
use curflow_fixtures::Format;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[test]
fn a_stored_month_round_trips_through_parquet_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), Format::Cur2Parquet, 20_000, 8, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let store = dir.path().join("s.sqlite");
    let (manifest, store_arg) = (g.manifest_path.to_str().unwrap(), store.to_str().unwrap());
    let (evidence, prefixes) = (ev.dir.to_str().unwrap(), ev.prefix_map.to_str().unwrap());
    common::ok(&common::run_curflow(
        &["process", manifest, "--store", store_arg, "--evidence", evidence, "--s3-prefixes", prefixes],
        None,
        &[],
    ));
    let file = dir.path().join("out").join("2026-10.parquet");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let export = ["export", "--store", store_arg, "--period", "2026-10", "--format", "parquet", "--output"];
    let said = common::ok(&common::run_curflow(&[&export[..], &[file.to_str().unwrap()]].concat(), None, &[]));
    assert!(said.contains("cost lines of 2026-10"), "{said}");

    // Read with the parquet crate alone: the documented columns and types.
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, PARQUET_COLUMNS.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("unblended_cost"), DataType::Decimal128(38, 12));
    assert_eq!(ty("usage_amount"), DataType::Decimal128(38, 10));
    assert_eq!(ty("usage_date"), DataType::Date32);
    assert_eq!(ty("line_items"), DataType::Int64);
    // The bill, summed from the file's integer units.
    let expected = expected_json(&g);
    let mut sums = [0i128; 2];
    let mut kinds = std::collections::BTreeSet::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        for (i, name) in ["unblended_cost", "amortized_cost"].iter().enumerate() {
            let col = batch.column_by_name(name).unwrap().as_primitive::<Decimal128Type>();
            sums[i] += col.iter().map(|v| v.unwrap()).sum::<i128>();
        }
        let source = batch.column_by_name("source").unwrap().as_string::<i32>();
        kinds.extend(source.iter().map(|s| s.unwrap().to_string()));
    }
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["attributed", "cur", "shared"]);
    for (i, m) in ["unblended_cost", "amortized_cost"].iter().enumerate() {
        let want = dec(&expected["totals"][m]);
        assert_eq!(rust_decimal::Decimal::from_i128_with_scale(sums[i], 12), want, "{m}");
    }

    // Read back: the stored lines, every field.
    let period = BillingPeriod::new(2026, 10).unwrap();
    let mut stored = SqliteStore::open(&store).unwrap().cost_lines(period).wait().unwrap();
    let mut back = read_lines(&file).unwrap();
    sort_lines(&mut stored);
    sort_lines(&mut back);
    assert_eq!(back.len(), stored.len());
    assert_eq!(back, stored);
    let total = Amounts::sum(back.iter().map(|l| &l.amounts)).unwrap();
    for m in MEASURES {
        assert_eq!(measure(&total, m), dec(&expected["totals"][m]), "{m}");
    }
    // Nothing else was left in the directory (written to a temporary file, then renamed).
    assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn parquet_needs_an_output_file_and_other_formats_refuse_one() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), Format::Cur2Parquet, 2_000, 9, |o| o.tenants = 2);
    let store = dir.path().join("s.sqlite");
    let store_arg = store.to_str().unwrap();
    common::ok(&common::run_curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", store_arg], None, &[]));
    let export = ["export", "--store", store_arg, "--period", "2026-10", "--format"];
    let no_file = common::run_curflow(&[&export[..], &["parquet"]].concat(), None, &[]);
    assert!(!no_file.status.success());
    assert!(String::from_utf8_lossy(&no_file.stderr).contains("--output"), "{no_file:?}");
    let csv_with_file = common::run_curflow(&[&export[..], &["csv", "--output", "x.parquet"]].concat(), None, &[]);
    assert!(!csv_with_file.status.success());
    // A Parquet file that is not an export is refused with its name.
    let data = walk_parquet(&dir.path().join("bucket")).expect("the generated delivery has a Parquet file");
    let err = read_lines(&data).unwrap_err().to_string();
    assert!(err.contains(data.to_str().unwrap()) && err.contains("export columns"), "{err}");
}

fn walk_parquet(root: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                return Some(p);
            }
        }
    }
    None
}
