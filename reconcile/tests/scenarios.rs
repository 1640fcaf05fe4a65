//! Hand-checked comparisons: over/under-estimates, zero estimate, zero actual, credits, threshold edges,
//! volume vs rate, suggestions and period states.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use curflow_reconcile::{
    ActualCost, CompareConfig, Dominant, MappingStatus, Measure, PeriodState, Periods, ResourceTypeVariance, UNMAPPED,
    VarianceStatus, compare,
};

fn row<'a>(rows: &'a [ResourceTypeVariance], rt: &str) -> &'a ResourceTypeVariance {
    rows.iter().find(|r| r.resource_type == rt).unwrap()
}

#[test]
fn over_estimate_is_rate_dominated_with_a_suggestion() {
    // Estimated 1000 GB-s at 0.02 = 20.00; CUR: the same 1000 GB-s cost 15.00.
    // variance = −5.00 = −25 %; volume = 0 × 0.02 = 0; rate = −5.00; suggested unit cost = 15 / 1000 = 0.015.
    let c = run(
        &[est("t", 3, "compute", "600", "0.02"), est("t", 4, "compute", "400", "0.02")],
        &[act("t", 3, "AWSLambda", "USE1-Lambda-GB-Second", Some("1000"), "Lambda-GB-Second", "15.00")],
    );
    let r = row(&c.resource_types, "compute");
    assert_eq!(
        (r.estimated, r.actual, r.variance, r.variance_pct),
        (d("20.00"), d("15.00"), d("-5.00"), Some(d("-25")))
    );
    assert!(r.flagged);
    assert_eq!(r.status, VarianceStatus::FinalVariance);
    assert_eq!((r.estimated_quantity, r.actual_quantity), (d("1000"), Some(d("1000"))));
    assert_eq!((r.estimated_unit_cost, r.actual_unit_cost), (Some(d("0.02")), Some(d("0.015"))));
    assert_eq!((r.volume_effect, r.rate_effect, r.dominant), (Some(d("0")), Some(d("-5.00")), Some(Dominant::Rate)));
    assert_eq!(r.suggested_unit_cost, Some(d("0.015")));
    assert_eq!((r.usage_days, r.first_day, r.estimate_records, r.actual_records), (1, Some(day(10, 3)), 2, 1));
    let s = &c.suggestions[0];
    assert_eq!(
        (s.resource_type.as_str(), s.current_unit_cost, s.suggested_unit_cost),
        ("compute", d("0.02"), d("0.015"))
    );
    assert_eq!((s.estimated_quantity, s.actual_quantity, s.period_state), (d("1000"), d("1000"), PeriodState::Final));
}

#[test]
fn under_estimate_is_volume_dominated_without_a_suggestion() {
    // Estimated 100,000 requests at 0.0002 = 20.00; CUR: 130,000 requests for 26.00 (same price).
    // variance = +6.00 = +30 %; volume = 30,000 × 0.0002 = 6.00; rate = 0 → volume dominates, no suggestion.
    let c = run(
        &[est("t", 3, "api_call", "100000", "0.0002")],
        &[
            act("t", 3, "AWSLambda", "USE1-Request", Some("70000"), "Requests", "14.00"),
            act("t", 4, "AWSLambda", "USE1-Request-ARM", Some("60000"), "Requests", "12.00"),
        ],
    );
    let r = row(&c.resource_types, "api_call");
    assert_eq!((r.variance, r.variance_pct, r.flagged), (d("6.00"), Some(d("30")), true));
    assert_eq!((r.volume_effect, r.rate_effect, r.dominant), (Some(d("6.00")), Some(d("0")), Some(Dominant::Volume)));
    assert_eq!((r.suggested_unit_cost, r.usage_days, r.last_day), (None, 2, Some(day(10, 4))));
    assert!(c.suggestions.is_empty());
}

#[test]
fn estimate_zero_is_unestimated_usage_in_the_unmapped_bucket() {
    // DynamoDB is not in the test mapping: 3.50 goes to `unmapped`, no estimate → no percentage.
    let c = run(
        &[est("t", 3, "api_call", "1000", "0.0002")],
        &[
            act("t", 3, "AWSLambda", "USE1-Request", Some("1000"), "Requests", "0.20"),
            act("t", 3, "AmazonDynamoDB", "USE1-ReadRequestUnits", Some("7000000"), "ReadRequestUnits", "3.50"),
        ],
    );
    let u = row(&c.resource_types, UNMAPPED);
    assert_eq!((u.mapping, u.estimated, u.actual, u.variance), (MappingStatus::Unmapped, d("0"), d("3.50"), d("3.50")));
    assert_eq!((u.variance_pct, u.unestimated_usage, u.flagged), (None, true, true));
    assert_eq!((u.actual_quantity, u.dominant), (None, None));
    // Still counted in the tenant's total: 0.20 estimated, 3.70 actual (+1750 %).
    let t = &c.tenant_months[0];
    assert_eq!((t.estimated, t.actual, t.actual_unmapped), (d("0.20"), d("3.70"), d("3.50")));
    assert_eq!((t.variance_pct, t.flagged, t.unestimated_usage), (Some(d("1750")), true, false));
}

#[test]
fn actual_zero_is_minus_100_percent_and_all_volume() {
    // Estimated 100 GB-months at 0.023 = 2.30; no S3 storage cost at all.
    let c = run(&[est("t", 3, "storage", "100", "0.023")], &[]);
    let r = row(&c.resource_types, "storage");
    assert_eq!((r.actual, r.variance, r.variance_pct, r.flagged), (d("0"), d("-2.300"), Some(d("-100")), true));
    assert_eq!((r.actual_quantity, r.volume_effect, r.rate_effect), (Some(d("0")), Some(d("-2.3")), Some(d("0"))));
    assert_eq!((r.dominant, r.actual_unit_cost, r.suggested_unit_cost), (Some(Dominant::Volume), None, None));
    assert_eq!(r.usage_days, 0);
}

#[test]
fn credits_make_the_actual_negative() {
    // Estimated 500 GB-s at 0.02 = 10.00; CUR: the 500 GB-s cost 10.00 and a 15.00 credit arrived.
    // actual = −5.00; variance = −15.00 = −150 %; all rate (usage unchanged); Pa = −0.01 → no suggestion.
    let mut credit = act("t", 20, "AWSLambda", "USE1-Lambda-GB-Second", Some("0"), "Lambda-GB-Second", "0");
    credit.attributed = d("-15.00");
    let c = run(
        &[est("t", 3, "compute", "500", "0.02")],
        &[act("t", 3, "AWSLambda", "USE1-Lambda-GB-Second", Some("500"), "Lambda-GB-Second", "10.00"), credit],
    );
    let r = row(&c.resource_types, "compute");
    assert_eq!((r.actual_direct, r.actual_attributed, r.actual), (d("10.00"), d("-15.00"), d("-5.00")));
    assert_eq!((r.variance, r.variance_pct, r.flagged), (d("-15.00"), Some(d("-150")), true));
    assert_eq!((r.volume_effect, r.rate_effect, r.dominant), (Some(d("0")), Some(d("-15.00")), Some(Dominant::Rate)));
    assert_eq!((r.actual_unit_cost, r.suggested_unit_cost), (Some(d("-0.01")), None));
}

#[test]
fn threshold_edges_through_the_comparison() {
    // storage 1000 GB-months × 0.1 = 100.00 estimated in each case.
    let case = |actual: &str| {
        let c = run(
            &[est("t", 3, "storage", "1000", "0.1")],
            &[act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1000"), "GB-Mo", actual)],
        );
        let r = row(&c.resource_types, "storage").clone();
        (r.variance_pct, r.flagged, r.status, r.suggested_unit_cost)
    };
    assert_eq!(case("110.00"), (Some(d("10")), false, VarianceStatus::Ok, None));
    assert_eq!(case("110.01"), (Some(d("10.01")), true, VarianceStatus::FinalVariance, Some(d("0.11001"))));
    assert_eq!(case("90.00"), (Some(d("-10")), false, VarianceStatus::Ok, None));
    assert_eq!(case("89.99"), (Some(d("-10.01")), true, VarianceStatus::FinalVariance, Some(d("0.08999"))));
    // +20 % of 5.00 is 1.00: not more than the minimum amount → not flagged.
    let c = run(
        &[est("t", 3, "storage", "50", "0.1")],
        &[act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("50"), "GB-Mo", "6.00")],
    );
    let r = row(&c.resource_types, "storage");
    assert_eq!((r.variance, r.variance_pct, r.flagged, r.suggested_unit_cost), (d("1.00"), Some(d("20")), false, None));
}

#[test]
fn mixed_variance_identity_and_dominance() {
    // Estimated 1000 units at 0.10 = 100; actual 1200 units for 150 (Pa = 0.125).
    // volume = 200 × 0.10 = 20; rate = (0.125 − 0.10) × 1200 = 30; 20 + 30 = 50 = variance → rate dominates.
    let c = run(
        &[est("t", 3, "storage", "1000", "0.10")],
        &[act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1200"), "GB-Mo", "150")],
    );
    let r = row(&c.resource_types, "storage");
    let (v, rt) = (r.volume_effect.unwrap(), r.rate_effect.unwrap());
    assert_eq!((v, rt, v + rt, r.variance), (d("20"), d("30"), d("50"), d("50")));
    assert_eq!((r.dominant, r.suggested_unit_cost), (Some(Dominant::Rate), Some(d("0.125"))));
    // With 1400 units for 150 (Pa ≈ 0.107143): volume = 40, rate = 10 → volume dominates, no suggestion.
    let c = run(
        &[est("t", 3, "storage", "1000", "0.10")],
        &[act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1400"), "GB-Mo", "150")],
    );
    let r = row(&c.resource_types, "storage");
    assert_eq!((r.volume_effect, r.rate_effect), (Some(d("40")), Some(d("10"))));
    assert_eq!((r.dominant, r.suggested_unit_cost), (Some(Dominant::Volume), None));
    assert_eq!(r.actual_unit_cost, Some(d("0.107142857143")));
}

#[test]
fn open_months_are_never_final() {
    let estimates = [est("t", 3, "storage", "1000", "0.1")];
    let actuals = [act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1000"), "GB-Mo", "150")];
    let status = |periods: &Periods| {
        let c = compare(&estimates, &actuals, &mapping(), periods, &CompareConfig::default()).unwrap();
        let (t, r) = (&c.tenant_months[0], &c.resource_types[0]);
        assert_eq!(t.status, r.status);
        assert_eq!(c.suggestions[0].status, r.status);
        (r.period_state, r.status)
    };
    assert_eq!(status(&Periods::new(at("2026-10-20T00:00:00Z"))), (PeriodState::Open, VarianceStatus::OpenVariance));
    // An invoice id cannot make an open month final.
    assert_eq!(
        status(&Periods::new(at("2026-10-31T23:00:00Z")).with_invoice(oct(), "INV")),
        (PeriodState::Open, VarianceStatus::OpenVariance)
    );
    assert_eq!(
        status(&Periods::new(at("2026-11-02T00:00:00Z"))),
        (PeriodState::Provisional, VarianceStatus::ProvisionalVariance)
    );
    assert_eq!(status(&final_october()), (PeriodState::Final, VarianceStatus::FinalVariance));
}

#[test]
fn quantities_unknown_or_unmapped_types_give_no_decomposition() {
    let c = run(
        &[est("t", 3, "api_call", "1000", "0.01"), est("t", 3, "sms_sent", "10", "0.05")],
        &[
            // Wrong pricing unit: the quantity cannot be added to requests.
            act("t", 3, "AWSLambda", "USE1-Request", Some("1000"), "Hours", "5.00"),
        ],
    );
    let r = row(&c.resource_types, "api_call");
    assert_eq!((r.actual_quantity, r.volume_effect, r.dominant, r.flagged), (None, None, None, true));
    let sms = row(&c.resource_types, "sms_sent");
    assert_eq!(
        (sms.mapping, sms.actual, sms.actual_quantity, sms.dominant),
        (MappingStatus::NotInMapping, d("0"), None, None)
    );
    // A line without a usage quantity also makes the quantity unknown.
    let c = run(
        &[est("t", 3, "compute", "10", "1")],
        &[act("t", 3, "AWSLambda", "USE1-Lambda-GB-Second", None, "Lambda-GB-Second", "10")],
    );
    assert_eq!(c.resource_types[0].actual_quantity, None);
}

#[test]
fn measure_and_currency() {
    let mut unblended = act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1"), "GB-Mo", "999");
    unblended.measure = Measure::Unblended;
    let c =
        run(&[], &[act("t", 3, "AmazonS3", "USE1-TimedStorage-ByteHrs", Some("1"), "GB-Mo", "2"), unblended.clone()]);
    assert_eq!(c.tenant_months[0].actual, d("2"));
    let cfg = CompareConfig { measure: Measure::Unblended, ..CompareConfig::default() };
    let c = compare(&[], std::slice::from_ref(&unblended), &mapping(), &final_october(), &cfg).unwrap();
    assert_eq!(c.tenant_months[0].actual, d("999"));
    // A line in another currency than the estimates' is never added to a variance: it is listed apart.
    let mut eur: ActualCost = unblended.clone();
    eur.currency = "EUR".into();
    let c = compare(&[], &[eur.clone(), eur, unblended], &mapping(), &final_october(), &cfg).unwrap();
    assert_eq!(c.tenant_months.len(), 1);
    assert_eq!((c.tenant_months[0].actual, c.tenant_months[0].currency.as_str()), (d("999"), "USD"));
    assert_eq!(c.not_compared.len(), 1);
    let other = &c.not_compared[0];
    assert_eq!((other.currency.as_str(), other.actual, other.actual_records), ("EUR", d("1998"), 2));
}

#[test]
fn rows_are_sorted_and_serialize_with_stable_columns() {
    let c = run(
        &[est("b", 3, "storage", "1", "1"), est("a", 3, "storage", "1", "1"), est("a", 3, "compute", "10", "1")],
        &[],
    );
    let keys: Vec<(&str, &str)> =
        c.resource_types.iter().map(|r| (r.accountant_id.as_str(), r.resource_type.as_str())).collect();
    assert_eq!(keys, [("a", "compute"), ("a", "storage"), ("b", "storage")]);
    let json = serde_json::to_value(&c.resource_types[0]).unwrap();
    let cols: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    // Spelled out on purpose (not taken from the code's column constants): the documented column
    // order is the contract this test pins, so a change to the code must show up here too.
    for col in [
        "accountant_id",
        "month",
        "resource_type",
        "mapping",
        "period_state",
        "currency",
        "estimated",
        "actual",
        "actual_direct",
        "actual_attributed",
        "variance",
        "variance_pct",
        "unestimated_usage",
        "flagged",
        "status",
        "quantity_unit",
        "estimated_quantity",
        "actual_quantity",
        "estimated_unit_cost",
        "actual_unit_cost",
        "volume_effect",
        "rate_effect",
        "dominant",
        "suggested_unit_cost",
        "usage_days",
        "first_day",
        "last_day",
    ] {
        assert!(cols.contains(&col), "missing column {col}");
    }
    assert_eq!(json["month"], "2026-10");
    assert_eq!(json["status"], "final_variance");
    assert_eq!(json["period_state"], "final");
    assert_eq!(json["variance_pct"], "-100");
    let back: curflow_reconcile::Comparison = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}
