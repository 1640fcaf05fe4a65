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

// ---- hostile input (issue 12, point 12) ----------------------------------------------------------

fn edit_manifest(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut m);
    std::fs::write(path, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// A key listed twice (verbatim, or once as `s3://bucket/key` and once as `key`) names one file:
/// it is read once, and the month's totals are those of the manifest without the duplicate.
#[test]
fn a_data_file_listed_twice_in_a_manifest_is_counted_once() {
    for (format, field) in [(Format::LegacyParquet, "reportKeys"), (Format::Cur2Parquet, "dataFiles")] {
        let f = fixture();
        let g = month(&f, "m", format);
        let clean = f.root.join("clean.sqlite");
        common::process(std::slice::from_ref(&g.manifest_path), &clean).unwrap();
        edit_manifest(&g.manifest_path, |m| {
            let keys = m[field].as_array_mut().unwrap();
            let first = keys[0].clone();
            let plain = first.as_str().unwrap().splitn(4, '/').last().unwrap().to_string();
            keys.push(first);
            if format == Format::Cur2Parquet {
                keys.push(serde_json::Value::String(plain));
            }
        });
        let dup = f.root.join("dup.sqlite");
        let report = common::process(std::slice::from_ref(&g.manifest_path), &dup).unwrap();
        let period = report.period;
        assert_eq!(report.rows_read, g.expected.rows, "{format:?}: every row read once");
        assert_eq!(common::stored_total(&dup, period), common::stored_total(&clean, period), "{format:?}");
    }
}

/// `x -> .` inside a folder of data files: one delivery of the folder's files, not one per
/// level of the loop (40 before the OS gives up), and the manifest tree with a loop likewise.
#[cfg(unix)]
#[test]
fn symlink_loops_in_a_delivery_directory_are_read_once() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyCsv);
    let loose = f.root.join("loose");
    std::fs::create_dir(&loose).unwrap();
    for p in &g.data_files {
        std::fs::copy(p, loose.join(p.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(".", loose.join("x")).unwrap();
    let deliveries = curflow::discover::discover(std::slice::from_ref(&loose)).unwrap();
    assert_eq!(deliveries.len(), 1, "one delivery, not one per loop level");
    assert_eq!(deliveries[0].files.len(), g.data_files.len());

    let manifest_dir = g.manifest_path.parent().unwrap();
    std::os::unix::fs::symlink("..", manifest_dir.join("up")).unwrap();
    std::os::unix::fs::symlink(".", manifest_dir.join("here")).unwrap();
    let deliveries = curflow::discover::discover(&[f.root.join("m")]).unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].files.len(), g.data_files.len());
    let report = common::process(&[f.root.join("m")], &f.store).unwrap();
    assert_eq!(report.rows_read, g.expected.rows);
}

/// The same for `--evidence` directories: each file once, no error at the loop's depth limit.
#[cfg(unix)]
#[test]
fn symlink_loops_in_an_evidence_directory_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("evidence");
    std::fs::create_dir_all(evidence.join("app")).unwrap();
    std::fs::write(evidence.join("app/a.log"), "x\n").unwrap();
    std::fs::write(evidence.join("b.log"), "y\n").unwrap();
    std::os::unix::fs::symlink(".", evidence.join("x")).unwrap();
    std::os::unix::fs::symlink("..", evidence.join("app/up")).unwrap();
    std::os::unix::fs::symlink("b.log", evidence.join("c.log")).unwrap();
    let mut files = Vec::new();
    curflow::attribute::sources::files_under(&evidence, &mut files).unwrap();
    let names: Vec<_> = files.iter().map(|p| p.strip_prefix(&evidence).unwrap().display().to_string()).collect();
    assert_eq!(names, ["app/a.log", "b.log"], "each file once");
}

/// Keys with `..`, absolute paths, URL-encoded dots or backslashes never reach a file outside the
/// delivery (here `outside/secret.csv`, a valid CUR file next to the bucket copy `m/`).
#[test]
fn manifest_keys_cannot_reach_a_file_outside_the_delivery() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyCsv);
    let outside = f.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret.csv");
    std::fs::copy(&g.data_files[0], &secret).unwrap();
    let absolute = secret.to_str().unwrap().to_string();
    let manifest_name = file_name(&g.manifest_path).to_string();
    let original = std::fs::read_to_string(&g.manifest_path).unwrap();
    for key in [
        "../outside/secret.csv".to_string(),
        "a/../../outside/secret.csv".to_string(),
        "%2e%2e/outside/secret.csv".to_string(),
        "..%2Foutside%2Fsecret.csv".to_string(),
        "..\\outside\\secret.csv".to_string(),
        "s3://curflow-demo-bucket/../outside/secret.csv".to_string(),
        absolute.clone(),
        absolute.trim_start_matches('/').to_string(),
    ] {
        std::fs::write(&g.manifest_path, &original).unwrap();
        edit_manifest(&g.manifest_path, |m| m["reportKeys"] = serde_json::json!([key]));
        let shown = key.strip_prefix("s3://curflow-demo-bucket/").unwrap_or(&key);
        assert_rejected(&f, std::slice::from_ref(&g.manifest_path), &[&manifest_name, shown]);
    }
}

/// Sets one row of a Parquet column to `value` (cast to the column's type), every other row kept.
fn set_parquet_value(path: &Path, column: &str, row: usize, value: arrow::array::ArrayRef, retype: Option<DataType>) {
    let mut seen = 0usize;
    common::rewrite_parquet(path, path, |b| {
        let schema = b.schema();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for (field, array) in schema.fields().iter().zip(b.columns()) {
            if field.name() != column {
                fields.push(field.clone());
                arrays.push(array.clone());
                continue;
            }
            let t = retype.clone().unwrap_or_else(|| field.data_type().clone());
            let base = arrow::compute::cast(array, &t).unwrap();
            let replaced = if (seen..seen + b.num_rows()).contains(&row) {
                let one = arrow::compute::cast(&value, &t).unwrap();
                let local = row - seen;
                let parts = [base.slice(0, local), one, base.slice(local + 1, b.num_rows() - local - 1)];
                arrow::compute::concat(&parts.iter().map(|a| a.as_ref()).collect::<Vec<_>>()).unwrap()
            } else {
                base
            };
            fields.push(Arc::new(field.as_ref().clone().with_data_type(t)));
            arrays.push(replaced);
        }
        seen += b.num_rows();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    });
}

/// Amounts no exact 28-digit total can hold are bad input naming the column and the value, on
/// both scan paths (legacy Parquet `double`s take the fast path; CSV text, CUR 2.0 files, integer
/// and decimal money columns take the DataFusion plan); so is a sum of acceptable amounts that
/// outgrows 28 digits.
#[test]
fn amounts_beyond_exact_range_are_bad_input_on_both_scan_paths() {
    use arrow::array::{Decimal128Array, Float64Array, Int64Array};
    let f = fixture();
    let g = month(&f, "fast", Format::LegacyParquet);
    let victim = &g.data_files[1];
    set_parquet_value(victim, "line_item_unblended_cost", 3, Arc::new(Float64Array::from(vec![1e20])), None);
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line_item_unblended_cost", "100000000000000000000"],
    );

    // Row 4 of the second file is a plain usage line (a split-cost child row is dropped unread).
    let g = month(&f, "csv", Format::LegacyCsv);
    let victim = &g.data_files[1];
    set_csv_field(victim, 4, "lineItem/UnblendedCost", "1e20");
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "lineItem/UnblendedCost", "1e20", "line 6"],
    );

    let g = month(&f, "int", Format::Cur2Parquet);
    let victim = &g.data_files[0];
    let int = Arc::new(Int64Array::from(vec![i64::MAX]));
    set_parquet_value(victim, "line_item_unblended_cost", 2, int, Some(DataType::Int64));
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line_item_unblended_cost", &i64::MAX.to_string()],
    );

    let g = month(&f, "dec", Format::Cur2Parquet);
    let victim = &g.data_files[2];
    let big = Decimal128Array::from(vec![10i128.pow(32)]).with_precision_and_scale(38, 2).unwrap();
    set_parquet_value(victim, "line_item_unblended_cost", 1, Arc::new(big), Some(DataType::Decimal128(38, 2)));
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line_item_unblended_cost", "1000000000000000000000000000000"],
    );

    // Each value fits, the sum of their group does not: every row of a file in one group.
    let g = month(&f, "sum", Format::LegacyCsv);
    let victim = &g.data_files[1];
    let same = [
        ("lineItem/UnblendedCost", "9999999999999999"),
        ("lineItem/UsageStartDate", "2026-10-02T00:00:00Z"),
        ("lineItem/ProductCode", "AmazonEC2"),
        ("lineItem/UsageType", "BoxUsage"),
        ("lineItem/Operation", "RunInstances"),
        ("lineItem/LineItemType", "Usage"),
        ("pricing/unit", "Hrs"),
        ("bill/InvoiceId", ""),
        ("resourceTags/user:accountant_id", "t1"),
    ];
    common::rewrite_csv(victim, |_, header, fields| {
        for (column, value) in same {
            if let Some(c) = header.iter().position(|h| h == column) {
                fields[c] = value.into();
            }
        }
    });
    assert_rejected(&f, std::slice::from_ref(&g.manifest_path), &[file_name(victim), "unblended_cost", "28"]);
}

/// Usage dates decades away from the billing period are refused, naming the file, the column, the
/// value and the period; a line dated in the month before the period (a credit, say) is accepted.
#[test]
fn usage_dates_far_outside_the_billing_period_are_bad_input() {
    let f = fixture();
    let g = month(&f, "csv", Format::LegacyCsv);
    let victim = &g.data_files[1];
    set_csv_field(victim, 4, "lineItem/UsageStartDate", "1970-01-01T00:00:00Z");
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "lineItem/UsageStartDate", "1970-01-01", "2026-10"],
    );

    let g = month(&f, "fast", Format::LegacyParquet);
    let victim = &g.data_files[2];
    let far = arrow::array::TimestampMillisecondArray::from(vec![253_402_214_400_000i64]); // 9999-12-31
    set_parquet_value(victim, "line_item_usage_start_date", 5, Arc::new(far), None);
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line_item_usage_start_date", "9999-12-31", "2026-10"],
    );

    let g = month(&f, "cur2", Format::Cur2Parquet);
    let victim = &g.data_files[1];
    let far = arrow::array::TimestampMillisecondArray::from(vec![0i64]);
    set_parquet_value(victim, "line_item_usage_start_date", 7, Arc::new(far), None);
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line_item_usage_start_date", "1970-01-01", "2026-10"],
    );

    // Within the tolerance: the month before the period.
    let g = month(&f, "ok", Format::LegacyCsv);
    set_csv_field(&g.data_files[1], 4, "lineItem/UsageStartDate", "2026-09-20T00:00:00Z");
    common::process(std::slice::from_ref(&g.manifest_path), &f.root.join("ok.sqlite")).unwrap();
}

/// A byte that is not UTF-8 in a CSV value: the error names the file, the line and the column.
#[test]
fn non_utf8_byte_in_csv_names_file_line_and_column() {
    let f = fixture();
    let g = month(&f, "m", Format::LegacyCsv);
    let victim = &g.data_files[1];
    set_csv_field(victim, 4, "lineItem/ProductCode", "AmazonMARKER");
    let bytes = std::fs::read(victim).unwrap();
    let at = bytes.windows(6).position(|w| w == b"MARKER").unwrap();
    let mut patched = bytes[..at].to_vec();
    patched.extend_from_slice(b"S\xff3");
    patched.extend_from_slice(&bytes[at + 6..]);
    std::fs::write(victim, patched).unwrap();
    assert_rejected(
        &f,
        std::slice::from_ref(&g.manifest_path),
        &[file_name(victim), "line 6", "lineItem/ProductCode", "UTF-8"],
    );
}
