//! CSV output is safe to open in a spreadsheet: tenant ids come from cost-allocation tags that
//! anyone with tagging rights sets, so a hostile tag (`=HYPERLINK(...)`, `@SUM(...)`, `+1`, `-x`)
//! must not become a formula in `costs --format csv`, while amounts stay plain numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use curflow_fixtures::Format;

#[test]
fn hostile_tenant_tags_are_neutralised_in_csv_and_amounts_stay_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let generated = common::generate(&dir.path().join("month"), Format::LegacyCsv, 600, 5, |o| o.gzip_csv = false);
    let hostile = ["=HYPERLINK(\"http://evil\",\"x\")", "@SUM(1+1)", "+33", "-acct"];
    for file in &generated.data_files {
        common::rewrite_csv(file, |i, header, fields| {
            let column = header.iter().position(|h| h == "resourceTags/user:accountant_id").unwrap();
            if !fields[column].is_empty() {
                fields[column] = hostile[i % hostile.len()].to_string();
            }
        });
    }
    let store = dir.path().join("s.sqlite");
    let store = store.to_str().unwrap();
    common::ok(&common::run_curflow(
        &["process", generated.manifest_path.to_str().unwrap(), "--store", store],
        Some(dir.path()),
        &[],
    ));
    let csv = common::ok(&common::run_curflow(
        &["costs", "--store", store, "--period", "2026-10", "--by", "tenant", "--format", "csv"],
        Some(dir.path()),
        &[],
    ));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let tenant = header.iter().position(|h| h == "tenant").expect("tenant column");
    let mut seen = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let cell = record[tenant].to_string();
        assert!(!cell.starts_with(['=', '+', '-', '@']), "formula-like cell {cell:?} in\n{csv}");
        seen.push(cell);
        for (name, value) in header.iter().zip(record.iter()) {
            if name != "tenant" && !value.is_empty() && value.parse::<rust_decimal::Decimal>().is_ok() {
                assert!(!value.starts_with('\''), "{name} = {value}");
            }
        }
    }
    for h in hostile {
        assert!(seen.contains(&format!("'{h}")), "{h} shown as '{h}: {seen:?}");
    }
    // JSON keeps the tag exactly (no spreadsheet there).
    let json = common::ok(&common::run_curflow(
        &["costs", "--store", store, "--period", "2026-10", "--by", "tenant", "--format", "json"],
        Some(dir.path()),
        &[],
    ));
    assert!(json.contains("\"@SUM(1+1)\""), "{json}");
}
