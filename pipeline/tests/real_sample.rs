//! The real, anonymised legacy CUR CSV from the FinOps Foundation's focus_converters repository
//! (../shared/research/data). Its totals are documented in that folder's README, measured there
//! with Python's `Decimal`; curflow must reproduce them exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use rust_decimal::Decimal;

#[test]
fn real_cur_csv_totals_match_the_documented_figures() {
    let Some(sample) = common::shared_sample("focus_converters/sample-anonymous-aws-export-dataset.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let report = common::process(&[sample], &store).unwrap();
    assert_eq!(report.period.to_string(), "2023-11");
    assert_eq!(report.rows_read, 1281);
    assert_eq!(report.split_child_rows, 0);
    let usd = &report.totals["USD"];
    assert_eq!(usd.unblended_cost, Decimal::from_str("1.68230869740").unwrap());
    assert_eq!(report.line_item_types["Usage"].unblended_cost, Decimal::from_str("1.60230869740").unwrap());
    assert_eq!(report.line_item_types["Usage"].rows, 1269);
    assert_eq!(report.line_item_types["Tax"].unblended_cost, Decimal::from_str("0.08").unwrap());
    assert_eq!(report.line_item_types["Tax"].rows, 12);
    // No SP/RI rows and no net columns: every measure equals unblended.
    assert_eq!(usd.amortized_cost, usd.unblended_cost);
    assert_eq!(usd.net_unblended_cost, usd.unblended_cost);
    assert!(!report.tenant_tag_present, "the sample has no resourceTags columns");
    assert_eq!(report.unattributed["USD"].unblended_cost, usd.unblended_cost);
    // What was stored sums to the same figures.
    let stored = common::stored_total(&store, report.period);
    assert_eq!(stored.unblended_cost, usd.unblended_cost);
    assert_eq!(stored.line_items, 1281);
}

/// Issue 12 point 13: without the samples, the test above fails in CI and skips outside it. Runs
/// this test binary again on that test alone, with the samples pointed at a folder that does not
/// exist.
#[test]
fn a_missing_sample_fails_in_ci_and_skips_outside_it() {
    if std::env::var_os("CURFLOW_SHARED_DATA").is_some() {
        return; // the child run of another instance of this test
    }
    let missing = tempfile::tempdir().unwrap();
    let run = |ci: Option<&str>| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args(["real_cur_csv_totals_match_the_documented_figures", "--exact", "--nocapture"])
            .env("CURFLOW_SHARED_DATA", missing.path().join("absent"));
        match ci {
            Some(v) => c.env("CI", v),
            None => c.env_remove("CI"),
        };
        let out = c.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    for ci in ["1", "true"] {
        let (ok, text) = run(Some(ci));
        assert!(!ok, "CI={ci}: a missing sample must fail the test:\n{text}");
        assert!(text.contains("not found"), "{text}");
    }
    for ci in [None, Some(""), Some("false")] {
        let (ok, text) = run(ci);
        assert!(ok, "CI={ci:?}: outside CI a missing sample is skipped:\n{text}");
        assert!(text.contains("SKIPPED"), "{text}");
    }
}
