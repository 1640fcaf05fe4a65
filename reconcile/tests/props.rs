//! Property tests: the decomposition identity, exact expense rounding and once-only alerts (parsing and
//! largest-remainder rounding are tested in curflow-money).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use curflow_reconcile::{
    ActualCost, Alert, Budget, BudgetPosition, Dominant, Error, Measure, Month, decompose, decompose::EFFECT_DP,
    evaluate_alerts, expenses, money::round,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Money-like decimals: up to ±10^9 with 0–10 decimal places.
fn money() -> impl Strategy<Value = Decimal> {
    (-1_000_000_000_000i64..1_000_000_000_000i64, 0u32..=10).prop_map(|(m, s)| Decimal::new(m, s))
}

/// Non-negative quantities: up to 10^12 with 0–6 places.
fn quantity() -> impl Strategy<Value = Decimal> {
    (0i64..1_000_000_000_000i64, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s))
}

proptest! {
    // No failure-persistence file (integration tests have no lib.rs next to them); 1000 cases each.
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn volume_plus_rate_is_the_variance_exactly(
        e in money(), qe in quantity(), a in money(), qa in quantity(), dp in 0u32..=EFFECT_DP,
    ) {
        let result = decompose(e, qe, a, qa, dp);
        // Overflow is a documented outcome (e.g. 10^12 × 10^12 / 10^-6), never a panic; skip those inputs.
        prop_assume!(!matches!(result, Err(Error::Overflow { .. })));
        match result.unwrap() {
            None => prop_assert!(qe <= Decimal::ZERO),
            Some(x) => {
                prop_assert_eq!(x.volume_effect + x.rate_effect, a - e);
                prop_assert!(x.volume_effect.scale() <= dp);
                let (v, r) = (x.volume_effect.abs(), x.rate_effect.abs());
                let expected = if v > r { Dominant::Volume } else if r > v { Dominant::Rate } else { Dominant::Neither };
                prop_assert_eq!(x.dominant, expected);
                // The rate effect is (Pa − Pe) × Qa up to the rounding of the volume effect.
                let direct = x.actual_unit_cost.and_then(|pa| (pa - x.estimated_unit_cost).checked_mul(qa));
                if let Some(direct) = direct {
                    let slack = Decimal::new(5, dp) + (direct.abs() + Decimal::ONE) * Decimal::new(1, 20);
                    prop_assert!((direct - x.rate_effect).abs() <= slack, "{} vs {}", direct, x.rate_effect);
                }
            }
        }
    }

    #[test]
    fn expense_entries_sum_to_each_tenants_rounded_total(
        lines in prop::collection::vec((0usize..3, 0usize..5, 1u32..=31, money(), money()), 0..60),
    ) {
        let tenants = ["acct-1", "acct-2", "acct-3"];
        let services = ["AWSLambda", "AmazonS3", "AmazonDynamoDB", "AmazonTextract", "AWSCloudTrail"];
        let actuals: Vec<ActualCost> = lines
            .iter()
            .map(|&(t, s, dd, direct, attributed)| ActualCost {
                accountant_id: tenants[t].into(),
                day: NaiveDate::from_ymd_opt(2026, 10, dd).unwrap(),
                service: services[s].into(),
                usage_type: "u".into(),
                usage_quantity: None,
                usage_unit: None,
                measure: Measure::Amortized,
                currency: "USD".into(),
                direct,
                attributed,
            })
            .collect();
        let oct: Month = "2026-10".parse().unwrap();
        let entries = expenses(&actuals, oct, Measure::Amortized, "USD", &BTreeMap::new()).unwrap();
        for tenant in tenants {
            let exact: Decimal = actuals.iter().filter(|a| a.accountant_id == tenant).map(|a| a.direct + a.attributed).sum();
            let booked: Decimal = entries.iter().filter(|e| e.accountant_id == tenant).map(|e| e.amount).sum();
            prop_assert_eq!(booked, round(exact, 2));
        }
        for e in &entries {
            prop_assert_eq!(e.amount.scale(), 2);
            prop_assert!(!e.amount.is_zero());
        }
    }

    #[test]
    fn alerts_are_sent_once(mtds in prop::collection::vec((0i64..200_000, prop::option::of(0i64..300_000)), 1..12)) {
        let budgets = [Budget::new("acct-1", Decimal::new(100_000, 2), "USD")];
        let oct: Month = "2026-10".parse().unwrap();
        let mut sent = BTreeSet::new();
        let mut all: Vec<Alert> = Vec::new();
        for (mtd, forecast) in mtds {
            let p = BudgetPosition {
                accountant_id: "acct-1".into(),
                month: oct,
                currency: "USD".into(),
                mtd_actual: Decimal::new(mtd, 2),
                forecast: forecast.map(|f| Decimal::new(f, 2)),
            };
            let new = evaluate_alerts(&budgets, std::slice::from_ref(&p), &sent).unwrap();
            sent.extend(new.iter().map(Alert::key));
            all.extend(new);
            // Same state again: nothing new.
            prop_assert!(evaluate_alerts(&budgets, &[p], &sent).unwrap().is_empty());
        }
        let keys: BTreeSet<_> = all.iter().map(Alert::key).collect();
        prop_assert_eq!(keys.len(), all.len());
        prop_assert!(all.len() <= 4);
    }
}
