//! A synthetic month with known true unit costs.
//!
//! Three resource types with true unit costs; the app's estimates misprice `compute` by +25 % (its unit
//! cost is 1.25 × the true one, so the app **over**-estimates and the actual comes in about 20 % *below*
//! the estimate), `api_call` by −8 % (unit cost 0.92 × true: the actual comes in about +8.7 % *above* the
//! estimate) and price `storage` exactly. The app's quantities are the CUR quantities with ±3 % of daily
//! counting noise, so every type also has a small volume effect.
//!
//! Expected: `compute` is flagged (|−20 %| > 10 %), rate-dominated, and its suggested unit cost is within
//! 1 % of the true one; `api_call` is not flagged although its variance is several currency units
//! (8.7 % ≤ 10 %); `storage` is not flagged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use curflow_reconcile::{
    ActualCost, Dominant, ESTIMATE_FIELDS, Estimate, EstimateRules, Measure, VarianceStatus, money::round,
};
use rust_decimal::Decimal;

/// A tiny deterministic generator (64-bit LCG, Knuth's constants): no RNG crate needed.
struct Lcg(u64);

impl Lcg {
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let span = u64::try_from(hi - lo + 1).unwrap();
        lo + i64::try_from((self.0 >> 33) % span).unwrap()
    }
}

struct Type {
    name: &'static str,
    service: &'static str,
    usage_type: &'static str,
    unit: &'static str,
    true_price: &'static str,
    /// estimated unit cost = true × this
    misprice: &'static str,
    /// daily CUR quantity range
    qty: (i64, i64),
}

const TYPES: [Type; 3] = [
    Type {
        name: "compute",
        service: "AWSLambda",
        usage_type: "USE1-Lambda-GB-Second",
        unit: "Lambda-GB-Second",
        true_price: "0.0000166667",
        misprice: "1.25",
        qty: (200_000, 400_000),
    },
    Type {
        name: "api_call",
        service: "AWSLambda",
        usage_type: "USE1-Request",
        unit: "Requests",
        true_price: "0.0000002",
        misprice: "0.92",
        qty: (5_000_000, 10_000_000),
    },
    Type {
        name: "storage",
        service: "AmazonS3",
        usage_type: "USE1-TimedStorage-ByteHrs",
        unit: "GB-Mo",
        true_price: "0.023",
        misprice: "1",
        qty: (40, 90),
    },
];

/// CUR lines (10 decimal places, 70 % direct / 30 % attributed) and app estimate rows for one tenant.
fn generate(tenant: &str, scale: i64, rng: &mut Lcg) -> (Vec<ActualCost>, Vec<Estimate>) {
    let (mut actuals, mut estimates) = (Vec::new(), Vec::new());
    let rules = EstimateRules::default();
    for dd in 1..=31u32 {
        for t in &TYPES {
            let qa = Decimal::from(rng.int(t.qty.0, t.qty.1) * scale);
            let cost = round(qa * d(t.true_price), 10);
            let direct = round(cost * d("0.7"), 10);
            actuals.push(ActualCost {
                accountant_id: tenant.into(),
                day: day(10, dd),
                service: t.service.into(),
                usage_type: t.usage_type.into(),
                usage_quantity: Some(qa),
                usage_unit: Some(t.unit.into()),
                measure: Measure::Amortized,
                currency: "USD".into(),
                direct,
                attributed: cost - direct,
            });
            // The app counts the same usage with ±3 % noise and prices it at its (mispriced) unit cost.
            let qe = round(qa * (Decimal::ONE + Decimal::new(rng.int(-300, 300), 4)), 0);
            let unit_cost = d(t.true_price) * d(t.misprice);
            let estimated = round(qe * unit_cost, 10);
            let (ts, q, p, c) =
                (format!("2026-10-{dd:02}T09:30:00Z"), qe.to_string(), unit_cost.to_string(), estimated.to_string());
            let values =
                [tenant, ts.as_str(), "2026-10", "process_documents", t.name, q.as_str(), p.as_str(), c.as_str()];
            estimates.push(Estimate::from_fields(ESTIMATE_FIELDS.iter().copied().zip(values), &rules).unwrap());
        }
    }
    (actuals, estimates)
}

#[test]
fn mispriced_types_are_found_and_repriced() {
    let mut rng = Lcg(20261031);
    let (mut actuals, mut estimates) = generate("acct-1", 1, &mut rng);
    let (a2, e2) = generate("acct-2", 3, &mut rng);
    actuals.extend(a2);
    estimates.extend(e2);

    let c = run(&estimates, &actuals);
    assert_eq!(c.resource_types.len(), 6);
    for tenant in ["acct-1", "acct-2"] {
        let row =
            |rt: &str| c.resource_types.iter().find(|r| r.accountant_id == tenant && r.resource_type == rt).unwrap();

        let compute = row("compute");
        let pct = compute.variance_pct.unwrap();
        println!(
            "{tenant} compute: variance {} ({pct} %), suggested {:?}",
            compute.variance, compute.suggested_unit_cost
        );
        assert!(pct > d("-21.5") && pct < d("-18.5"), "{pct}");
        assert!(compute.flagged);
        assert_eq!(compute.status, VarianceStatus::FinalVariance);
        assert_eq!(compute.dominant, Some(Dominant::Rate));
        assert_eq!(compute.volume_effect.unwrap() + compute.rate_effect.unwrap(), compute.variance);
        let truth = d("0.0000166667");
        let suggested = compute.suggested_unit_cost.unwrap();
        assert!(((suggested - truth) / truth).abs() < d("0.01"), "suggested {suggested} vs true {truth}");
        // The estimates' effective price was 25 % too high.
        let pe = compute.estimated_unit_cost.unwrap();
        assert!(((pe / truth) - d("1.25")).abs() < d("0.0001"), "{pe}");

        let api = row("api_call");
        let pct = api.variance_pct.unwrap();
        println!("{tenant} api_call: variance {} ({pct} %)", api.variance);
        assert!(pct > d("7") && pct <= d("10"), "{pct}");
        assert!(api.variance > d("1.00"), "large enough in money; only the percentage keeps it quiet");
        assert!(!api.flagged);
        assert_eq!((api.status, api.suggested_unit_cost), (VarianceStatus::Ok, None));

        let storage = row("storage");
        assert!(storage.variance_pct.unwrap().abs() < d("2"));
        assert!(!storage.flagged);
    }
    // Exactly one suggestion per tenant: compute.
    let s: Vec<(&str, &str)> =
        c.suggestions.iter().map(|s| (s.accountant_id.as_str(), s.resource_type.as_str())).collect();
    assert_eq!(s, [("acct-1", "compute"), ("acct-2", "compute")]);
    assert_eq!(c.suggestions[0].usage_days, 31);
}
