//! Builders shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, NaiveDate, Utc};
use curflow_reconcile::{
    ActualCost, CompareConfig, Comparison, Estimate, Measure, Month, Periods, ResourceTypeMap, compare,
};
use rust_decimal::Decimal;

pub const MAPPING: &str = r#"
version = 1

[[resource_type]]
name = "api_call"
service = "AWSLambda"
usage_type = "*Request*"
quantity_unit = "requests"
usage_unit = "Requests"

[[resource_type]]
name = "compute"
service = "AWSLambda"
usage_type = "*GB-Second*"
quantity_unit = "GB-seconds"

[[resource_type]]
name = "storage"
service = "AmazonS3"
usage_type = "*TimedStorage*"
quantity_unit = "GB-months"
"#;

pub use curflow_money::testing::d;

pub fn mapping() -> ResourceTypeMap {
    ResourceTypeMap::from_toml(MAPPING, "test").unwrap()
}

pub fn oct() -> Month {
    "2026-10".parse().unwrap()
}

pub fn day(m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, dd).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// October 2026 is final (November 10th, invoice id present).
pub fn final_october() -> Periods {
    Periods::new(at("2026-11-10T00:00:00Z")).with_invoice(oct(), "INV-2026-10")
}

/// An estimate on October `dd` with `estimated_cost = quantity × unit_cost`.
pub fn est(tenant: &str, dd: u32, resource_type: &str, quantity: &str, unit_cost: &str) -> Estimate {
    let (q, p) = (d(quantity), d(unit_cost));
    Estimate {
        accountant_id: tenant.into(),
        timestamp: format!("2026-10-{dd:02}T12:00:00Z").parse().unwrap(),
        month: oct(),
        operation: "op".into(),
        resource_type: resource_type.into(),
        quantity: q,
        unit_cost: p,
        estimated_cost: q * p,
    }
}

/// An amortized USD actual line on October `dd`, all direct.
pub fn act(
    tenant: &str,
    dd: u32,
    service: &str,
    usage_type: &str,
    qty: Option<&str>,
    unit: &str,
    cost: &str,
) -> ActualCost {
    ActualCost {
        accountant_id: tenant.into(),
        day: day(10, dd),
        service: service.into(),
        usage_type: usage_type.into(),
        usage_quantity: qty.map(d),
        usage_unit: Some(unit.into()),
        measure: Measure::Amortized,
        currency: "USD".into(),
        direct: d(cost),
        attributed: Decimal::ZERO,
    }
}

pub fn run(estimates: &[Estimate], actuals: &[ActualCost]) -> Comparison {
    compare(estimates, actuals, &mapping(), &final_october(), &CompareConfig::default()).unwrap()
}
