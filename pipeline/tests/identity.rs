//! The reconciliation identity of cur-domain.md §3.5 on a month with Savings Plan and RI rows:
//! unblended = amortized + ri_sp_trueup + ri_sp_upfront_fees, exactly, in total and per currency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use curflow_fixtures::Format;
use rust_decimal::Decimal;

#[test]
fn unblended_equals_amortized_plus_trueup_plus_upfront_fees() {
    let dir = tempfile::tempdir().unwrap();
    let generated = common::generate(&dir.path().join("b"), Format::LegacyParquet, 30_000, 3, |_| {});
    let store = dir.path().join("s.sqlite");
    let report = common::process(&[generated.manifest_path], &store).unwrap();
    for t in [
        "DiscountedUsage",
        "RIFee",
        "SavingsPlanCoveredUsage",
        "SavingsPlanNegation",
        "SavingsPlanRecurringFee",
        "SavingsPlanUpfrontFee",
        "Fee",
    ] {
        assert!(report.line_item_types.contains_key(t), "fixture lacks {t}");
    }
    let t = common::stored_total(&store, report.period);
    // Non-trivial: amortization moves money both ways.
    assert_ne!(t.amortized_cost, t.unblended_cost);
    assert_ne!(t.ri_sp_trueup, Decimal::ZERO);
    assert_ne!(t.ri_sp_upfront_fees, Decimal::ZERO);
    assert_eq!(t.unblended_cost, t.amortized_cost + t.ri_sp_trueup + t.ri_sp_upfront_fees);
}
