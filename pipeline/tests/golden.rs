//! Golden tests: generated months in every input format, compared exactly with the generator's
//! own `expected.json` (computed with `Decimal` arithmetic, independently of DataFusion).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{MEASURES, dec, expected_json, measure};
use curflow::Amounts;
use curflow_fixtures::{Format, GenerateOptions};
use rust_decimal::Decimal;

fn assert_matches_expected(format: Format, tweak: impl FnOnce(&mut GenerateOptions)) {
    let dir = tempfile::tempdir().unwrap();
    let generated = common::generate(&dir.path().join("bucket"), format, 20_000, 7, tweak);
    let expected = expected_json(&generated);
    let store = dir.path().join("store.sqlite");
    let report = common::process(std::slice::from_ref(&generated.manifest_path), &store).unwrap();

    assert_eq!(report.period.to_string(), expected["billing_period"].as_str().unwrap());
    assert_eq!(report.version.id, expected["version_id"].as_str().unwrap(), "version = manifest id");
    assert_eq!(report.rows_read, expected["rows"].as_u64().unwrap(), "rows read");
    assert_eq!(
        report.split_child_rows,
        expected["split_child_rows"].as_u64().unwrap(),
        "split-cost child rows excluded"
    );
    if !format.is_focus() {
        assert!(report.split_child_rows > 0, "the fixture must exercise the split-cost exclusion");
    }

    // Totals of every measure, exactly, both as reported and as stored.
    let stored = common::stored_total(&store, report.period);
    for m in MEASURES {
        let want = dec(&expected["totals"][m]);
        assert_eq!(measure(&report.totals["USD"], m), want, "{format:?} reported total {m}");
        assert_eq!(measure(&stored, m), want, "{format:?} stored total {m}");
    }

    // Per line-item type: rows and unblended cost; unknown types kept and flagged.
    for (name, t) in expected["by_line_item_type"].as_object().unwrap() {
        let got = report.line_item_types.get(name).unwrap_or_else(|| panic!("type {name} missing"));
        assert_eq!(got.rows, t["rows"].as_u64().unwrap(), "{name} rows");
        assert_eq!(got.unblended_cost, dec(&t["unblended_cost"]), "{name} unblended");
    }
    if format.is_focus() {
        // The CUR month's unknown type is a FOCUS `Adjustment`, a category curflow knows.
        assert!(report.line_item_types.contains_key("Adjustment"));
        assert!(report.line_item_types.values().all(|t| t.known), "FOCUS charge categories are known");
    } else {
        assert!(report.line_item_types.values().any(|t| !t.known), "an unknown line-item type is kept and reported");
    }

    // Every (tenant, service, day) group, every measure, exactly; no extra groups.
    let got = common::stored_by_tenant_service_day(&store, report.period);
    let mut want: BTreeMap<(Option<String>, String, String, String), serde_json::Value> = BTreeMap::new();
    for g in expected["by_tenant_service_day"].as_array().unwrap() {
        let key = (
            g["tenant"].as_str().map(str::to_string),
            g["service"].as_str().unwrap().to_string(),
            g["day"].as_str().unwrap().to_string(),
            g["currency"].as_str().unwrap().to_string(),
        );
        want.insert(key, g.clone());
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{format:?} group keys");
    for (key, g) in &want {
        for m in MEASURES {
            assert_eq!(measure(&got[key], m), dec(&g[m]), "{format:?} {key:?} {m}");
        }
    }
    assert!(report.tenants >= 2 && report.unattributed["USD"].unblended_cost != Decimal::ZERO);
}

#[test]
fn legacy_parquet_month_matches_expected_exactly() {
    assert_matches_expected(Format::LegacyParquet, |_| {});
}

#[test]
fn legacy_csv_gzip_month_matches_expected_exactly() {
    assert_matches_expected(Format::LegacyCsv, |_| {});
}

#[test]
fn legacy_csv_plain_month_matches_expected_exactly() {
    assert_matches_expected(Format::LegacyCsv, |o| o.gzip_csv = false);
}

#[test]
fn cur2_parquet_month_matches_expected_exactly() {
    assert_matches_expected(Format::Cur2Parquet, |_| {});
}

#[test]
fn cur2_csv_gzip_month_matches_expected_exactly() {
    assert_matches_expected(Format::Cur2Csv, |_| {});
}

#[test]
fn cur2_csv_plain_month_matches_expected_exactly() {
    assert_matches_expected(Format::Cur2Csv, |o| o.gzip_csv = false);
}

#[test]
fn focus_1_0_parquet_month_matches_expected_exactly() {
    assert_matches_expected(Format::Focus10, |_| {});
}

#[test]
fn focus_1_2_parquet_month_matches_expected_exactly() {
    assert_matches_expected(Format::Focus12, |_| {});
}

#[test]
fn focus_1_2_csv_month_matches_expected_exactly() {
    assert_matches_expected(Format::Focus12Csv, |_| {});
}

/// The same generated month (same seed and options) written in every format gives the same
/// per-tenant, per-service, per-day amounts for the measures the formats share: every measure
/// between the CUR formats; amortized and contracted cost between CUR and FOCUS (FOCUS bills
/// Savings Plan-covered usage 0 instead of on demand and a negation, so unblended, and with it
/// the true-up, differ per line by design, and so does the pricing quantity, which has no
/// negation rows to count in FOCUS; its upfront fees are net of negotiated discounts,
/// see the next test).
#[test]
fn every_format_of_one_month_gives_the_same_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut stored = BTreeMap::new();
    for format in Format::ALL {
        let generated = common::generate(&dir.path().join(format.as_str()), format, 12_000, 19, |_| {});
        let store = dir.path().join(format!("{}.sqlite", format.as_str()));
        let report = common::process(std::slice::from_ref(&generated.manifest_path), &store).unwrap();
        stored.insert(format, common::stored_by_tenant_service_day(&store, report.period));
    }
    let legacy = &stored[&Format::LegacyParquet];
    assert!(legacy.len() > 100, "{} groups", legacy.len());
    for (format, got) in &stored {
        assert_eq!(got.keys().collect::<Vec<_>>(), legacy.keys().collect::<Vec<_>>(), "{format} groups");
        let shared: &[&str] = if format.is_focus() { &["amortized_cost", "contracted_cost"] } else { &MEASURES };
        for (key, want) in legacy {
            for m in shared {
                assert_eq!(measure(&got[key], m), measure(want, m), "{format} {key:?} {m}");
            }
        }
    }
}

/// Upfront commitment fees: a CUR's `SavingsPlanUpfrontFee` and RI upfront `Fee` rows, FOCUS's
/// one-time commitment purchases (`Purchase`, `One-Time`, a `CommitmentDiscountId`). FOCUS bills
/// them net of negotiated discounts, so without such discounts (a month without net columns)
/// they are the same per tenant, service and day from every format, and FOCUS keeps
/// unblended = amortized + true-up + upfront fees on every stored group.
#[test]
fn upfront_commitment_fees_are_the_same_from_a_cur_and_from_focus() {
    let dir = tempfile::tempdir().unwrap();
    let mut stored = BTreeMap::new();
    for format in [Format::LegacyParquet, Format::Cur2Csv, Format::Focus12, Format::Focus12Csv] {
        let generated = common::generate(&dir.path().join(format.as_str()), format, 8_000, 23, |o| {
            o.include_net_columns = false;
        });
        let store = dir.path().join(format!("{}.sqlite", format.as_str()));
        let report = common::process(std::slice::from_ref(&generated.manifest_path), &store).unwrap();
        stored.insert(format, common::stored_by_tenant_service_day(&store, report.period));
    }
    type Key = (Option<String>, String, String, String);
    let upfront = |by: &BTreeMap<Key, Amounts>| -> BTreeMap<Key, Decimal> {
        by.iter()
            .filter(|(_, a)| !a.ri_sp_upfront_fees.is_zero())
            .map(|(k, a)| (k.clone(), a.ri_sp_upfront_fees))
            .collect()
    };
    let legacy = upfront(&stored[&Format::LegacyParquet]);
    assert!(!legacy.is_empty(), "the month has upfront fees");
    for (format, got) in &stored {
        assert_eq!(upfront(got), legacy, "{format}");
        // Per line for FOCUS; a CUR's holds over the month only (its covered usage is billed on
        // demand, the difference is on the negation and fee rows).
        for (key, a) in got.iter().filter(|_| format.is_focus()) {
            assert_eq!(a.unblended_cost, a.amortized_cost + a.ri_sp_trueup + a.ri_sp_upfront_fees, "{format} {key:?}");
        }
    }
}

#[test]
fn month_without_optional_column_families_matches_expected() {
    // No net columns and no reservation_*/savings_plan_* columns at all: read as NULL.
    assert_matches_expected(Format::LegacyParquet, |o| {
        o.include_net_columns = false;
        o.include_commitments = false;
    });
}

#[test]
fn directory_layout_is_discovered_like_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let generated = common::generate(&bucket, Format::Cur2Parquet, 3_000, 11, |_| {});
    let store = dir.path().join("s.sqlite");
    let report = common::process(std::slice::from_ref(&bucket), &store).unwrap();
    assert_eq!(report.version.id, expected_json(&generated)["version_id"].as_str().unwrap());
    assert_eq!(report.totals["USD"].unblended_cost, dec(&expected_json(&generated)["totals"]["unblended_cost"]));
    // Explicit data files (no manifest) give the same totals.
    let store2 = dir.path().join("s2.sqlite");
    let report2 = common::process(&generated.data_files, &store2).unwrap();
    assert!(report2.version.id.starts_with("files-"));
    assert_eq!(report2.totals, report.totals);
}

#[test]
fn the_tenant_tag_key_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let generated =
        common::generate(&dir.path().join("b"), Format::LegacyCsv, 3_000, 5, |o| o.tag_key = "CostCenter".into());
    let expected = expected_json(&generated);
    let store = dir.path().join("s.sqlite");
    let mut options = common::options();
    options.tag_key = "CostCenter".into();
    let report = common::process_with(std::slice::from_ref(&generated.manifest_path), &store, options).unwrap();
    assert!(report.tenant_tag_present);
    let tagged: usize =
        expected["by_tenant_service_day"].as_array().unwrap().iter().filter(|g| !g["tenant"].is_null()).count();
    assert!(tagged > 0 && report.tenants > 0);
    // With the default key the tag is not found: everything is unattributed, totals unchanged.
    let report_default =
        common::process(std::slice::from_ref(&generated.manifest_path), &dir.path().join("t.sqlite")).unwrap();
    assert!(!report_default.tenant_tag_present);
    assert_eq!(report_default.unattributed["USD"], report_default.totals["USD"]);
    assert_eq!(report_default.totals, report.totals);
}

/// A CUR whose Savings Plan-covered usage lacks `SavingsPlanEffectiveCost` (a report made before
/// AWS added the column, or edited by hand): the month is still read, its unblended cost exactly,
/// but the covered usage's amortized cost counts 0 there, which the run summary says (text and
/// JSON) naming the column as the file spells it, on the generic plan (CSV) and the fast path
/// (Parquet); types that read no missing column are not flagged.
#[test]
fn a_missing_commitment_column_is_named_in_the_summary() {
    for format in [Format::LegacyCsv, Format::LegacyParquet] {
        let dir = tempfile::tempdir().unwrap();
        let generated = common::generate(&dir.path().join("bucket"), format, 20_000, 7, |o| o.gzip_csv = false);
        let expected = expected_json(&generated);
        let column = match format {
            Format::LegacyCsv => "savingsPlan/SavingsPlanEffectiveCost",
            _ => "savings_plan_savings_plan_effective_cost",
        };
        for file in &generated.data_files {
            if format == Format::LegacyCsv {
                let mut reader = csv::Reader::from_path(file).unwrap();
                let header = reader.headers().unwrap().clone();
                let drop = header.iter().position(|h| h == column).unwrap();
                let keep = |r: &csv::StringRecord| -> Vec<String> {
                    r.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, v)| v.to_string()).collect()
                };
                let rows: Vec<Vec<String>> = reader.records().map(|r| keep(&r.unwrap())).collect();
                let mut writer = csv::Writer::from_path(file).unwrap();
                writer.write_record(keep(&header)).unwrap();
                for row in rows {
                    writer.write_record(row).unwrap();
                }
                writer.flush().unwrap();
            } else {
                common::rewrite_parquet(file, file, |batch| {
                    let i = batch.schema().index_of(column).unwrap();
                    let mut batch = batch;
                    batch.remove_column(i);
                    batch
                });
            }
        }
        let store = dir.path().join("s.sqlite");
        let (manifest, s) = (generated.manifest_path.to_str().unwrap(), store.to_str().unwrap());
        let out = common::run_curflow(&["process", manifest, "--store", s, "--format", "json"], None, &[]);
        let stdout = common::ok(&out);
        let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let report = &document["reports"][0];
        let types = &report["line_item_types"];
        assert_eq!(types["SavingsPlanCoveredUsage"]["missing_columns"], serde_json::json!([column]), "{format:?}");
        for (name, t) in types.as_object().unwrap() {
            if name != "SavingsPlanCoveredUsage" {
                assert!(t.get("missing_columns").is_none(), "{format:?} {name}: {t}");
            }
        }
        assert_eq!(dec(&report["totals"]["USD"]["unblended_cost"]), dec(&expected["totals"]["unblended_cost"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(column), "{format:?}: the log names the column: {stderr}");
        // The text summary says it too.
        let again = dir.path().join("t.sqlite");
        let out = common::run_curflow(&["process", manifest, "--store", again.to_str().unwrap()], None, &[]);
        let text = common::ok(&out);
        assert!(text.contains(&format!("[no {column} column: amortized and true-up count it 0]")), "{text}");
    }
}
