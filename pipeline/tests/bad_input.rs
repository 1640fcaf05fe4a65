//! Bad input: each case fails with an error that names the file (and column/line where known),
//! and the store is exactly as it was before the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use curflow::ErrorClass;
use curflow_fixtures::{Format, Generated};

/// A store holding one good month, and its dump.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
    before: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let good = common::generate(&root.join("good"), Format::LegacyParquet, 2_000, 1, |o| {
        o.year = 2026;
        o.month = 9;
    });
    let store = root.join("s.sqlite");
    common::process(&[good.manifest_path], &store).unwrap();
    let before = common::dump(&store);
    Fixture { _dir: dir, root, store, before }
}

/// Runs `paths`, expects a user error whose message contains every fragment, and an unchanged store.
fn assert_rejected(f: &Fixture, paths: &[PathBuf], fragments: &[&str]) {
    let err = common::process(paths, &f.store).expect_err("bad input must fail");
    let msg = err.to_string();
    for frag in fragments {
        assert!(msg.contains(frag), "error {msg:?} should mention {frag:?}");
    }
    assert_eq!(err.class(), ErrorClass::User, "{msg}");
    assert_eq!(common::dump(&f.store), f.before, "store changed by a failed run ({msg})");
}

fn file_name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

fn month(f: &Fixture, name: &str, format: Format) -> Generated {
    common::generate(&f.root.join(name), format, 2_000, 3, |o| o.gzip_csv = false)
}

#[test]
fn truncated_parquet() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyParquet);
    let victim = &g.data_files[1];
    let len = std::fs::metadata(victim).unwrap().len();
    std::fs::File::options().write(true).open(victim).unwrap().set_len(len / 2).unwrap();
    assert_rejected(&f, std::slice::from_ref(&g.manifest_path), &[file_name(victim), "Parquet"]);
}

fn drop_or_retype(batch: RecordBatch, column: &str, retype: bool) -> RecordBatch {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        if field.name() == column {
            if !retype {
                continue;
            }
            fields.push(Arc::new(field.as_ref().clone().with_data_type(DataType::Utf8)));
            arrays.push(arrow::compute::cast(array, &DataType::Utf8).unwrap());
        } else {
            fields.push(field.clone());
            arrays.push(array.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

#[test]
fn missing_required_column() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyParquet);
    let victim = &g.data_files[0];
    common::rewrite_parquet(victim, victim, |b| drop_or_retype(b, "line_item_unblended_cost", false));
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "missing required column `line_item_unblended_cost`"],
    );
}

#[test]
fn wrong_column_type() {
    let f = fixture();
    let g = month(&f, "m", Format::Cur2Parquet);
    let victim = &g.data_files[2];
    common::rewrite_parquet(victim, victim, |b| drop_or_retype(b, "line_item_unblended_cost", true));
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "`line_item_unblended_cost`", "Utf8", "expected a number"],
    );
}

fn set_csv_field(path: &Path, row: usize, column: &str, value: &str) {
    common::rewrite_csv(path, |i, header, fields| {
        if i == row {
            let c = header.iter().position(|h| h == column).unwrap();
            fields[c] = value.to_string();
        }
    });
}

#[test]
fn non_numeric_cost_in_csv_names_file_column_and_line() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyCsv);
    let victim = &g.data_files[1];
    set_csv_field(victim, 5, "lineItem/UnblendedCost", "12,5 USD");
    // Data row 5 (0-based) is on line 7: the header is line 1.
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line 7", "lineItem/UnblendedCost", "12,5 USD", "decimal number"],
    );
}

#[test]
fn bad_timestamp_in_csv_names_file_column_and_line() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyCsv);
    let victim = &g.data_files[0];
    set_csv_field(victim, 2, "lineItem/UsageStartDate", "2026-10-01T30:00:00Z");
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line 4", "lineItem/UsageStartDate", "2026-10-01T30:00:00Z"],
    );
}

#[test]
fn empty_files() {
    let f = fixture();
    for name in ["empty.parquet", "empty.csv", "empty.csv.gz"] {
        let path = f.root.join(name);
        std::fs::write(&path, b"").unwrap();
        assert_rejected(&f, std::slice::from_ref(&path), &[name, "empty"]);
    }
}

#[test]
fn manifest_that_references_a_missing_file() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyParquet);
    let victim = &g.data_files[2];
    std::fs::remove_file(victim).unwrap();
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(&g.manifest_path), file_name(victim), "does not exist"],
    );
}

#[test]
fn files_of_two_billing_periods_given_as_one() {
    let f = fixture();
    let october = common::generate(&f.root.join("oct"), Format::LegacyParquet, 1_000, 3, |_| {});
    let november = common::generate(&f.root.join("nov"), Format::LegacyParquet, 1_000, 3, |o| o.month = 11);
    let err_paths = [october.data_files[0].clone(), november.data_files[0].clone()];
    assert_rejected(&f, &err_paths, &["different billing periods", "2026-10", "2026-11"]);
}

#[test]
fn a_column_with_nulls_only_is_still_read_as_absent_values() {
    // Sanity: a fully NULL optional column (a different case from a missing one) is fine.
    let f = fixture();
    let g = month(&f, "m", Format::LegacyParquet);
    for file in &g.data_files {
        common::rewrite_parquet(file, file, |b| {
            let schema = b.schema();
            let arrays = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(field, a)| {
                    if field.name() == "line_item_resource_id" {
                        arrow::array::new_null_array(a.data_type(), a.len())
                    } else {
                        a.clone()
                    }
                })
                .collect();
            RecordBatch::try_new(schema.clone(), arrays).unwrap()
        });
    }
    let report = common::process(std::slice::from_ref(&g.manifest_path), &f.store).unwrap();
    assert!(report.rows_read > 0);
}
