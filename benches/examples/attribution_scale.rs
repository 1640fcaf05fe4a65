//! The split at SaaS scale, and what the usage table stores and writes for it (issue 13, points 5
//! and 6): a month of T tenants with L shared lines a day (Lambda functions and DynamoDB tables,
//! each line a resource), driver quantities for every tenant and day as the usage ledger holds
//! them, and two tagged lines per tenant and day.
//!
//! ```text
//! cargo run --release -p curflow-benches --example attribution_scale -- TENANTS LINES_PER_DAY [DAYS]
//! ```
//!
//! Prints one JSON object: the split's wall time and peak RSS (`VmHWM`), the rows stored per
//! layout — **before** (one row per shared line and tenant, as curflow stored attributed parts until
//! the reader's grain) and **after** (parts summed at the reader's grain plus the pool kept beside
//! them) — and the DynamoDB write request units one CUR refresh of the month costs in each layout
//! (items put, then the previous version's deleted; `curflow_store::dynamodb::capacity`), with the
//! monthly cost at three refreshes a day at on-demand's $0.625 per million write request units.
//! The "before" rows are counted from the split's own parts and sized as one write unit each
//! (every such item is under 1 KB: checked on one tenant's per-resource rows).

use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use curflow::aggregate::{Amounts, CostKey, CostLine};
use curflow::attribute::{AttributionInputs, AttributionOptions, Grain, attribute, attribute_at};
use curflow::store::dynamodb::capacity::version_writes;
use curflow::{BillingPeriod, Result};
use curflow_attribution::{Driver, DriverTotals, TenantId};
use curflow_model::Names;
use rust_decimal::Decimal;

/// On-demand DynamoDB, us-east-1: USD per million write request units.
const WRITE_PRICE_PER_MILLION: &str = "0.625";

/// The shared services of the month: (service, usage type, unit, resource prefix, driver).
const SHARED: [(&str, &str, &str, &str, Driver); 4] = [
    (
        "AWSLambda",
        "USE1-Lambda-GB-Second",
        "Lambda-GB-Second",
        "arn:aws:lambda:us-east-1:111122223333:function:fn-",
        Driver::LambdaGbSeconds,
    ),
    (
        "AWSLambda",
        "USE1-Request",
        "Requests",
        "arn:aws:lambda:us-east-1:111122223333:function:fn-",
        Driver::LambdaInvocations,
    ),
    (
        "AmazonDynamoDB",
        "USE1-ReadRequestUnits",
        "ReadRequestUnits",
        "arn:aws:dynamodb:us-east-1:111122223333:table/t-",
        Driver::DynamoReadUnits,
    ),
    (
        "AmazonDynamoDB",
        "USE1-WriteRequestUnits",
        "WriteRequestUnits",
        "arn:aws:dynamodb:us-east-1:111122223333:table/t-",
        Driver::DynamoWriteUnits,
    ),
];

/// A deterministic pseudo-random sequence (SplitMix64), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A line's key; its texts interned in `names`, as the scan's are (one shared copy per value).
fn key(names: &mut Names, day: NaiveDate, tenant: Option<&str>, shared: (&str, &str, &str), resource: &str) -> CostKey {
    let (service, usage_type, unit) = shared;
    CostKey {
        usage_date: day,
        tenant: names.get_opt(tenant),
        service: names.get(service),
        usage_type: names.get(usage_type),
        usage_unit: names.get(unit),
        operation: names.get(if tenant.is_some() { "" } else { "Invoke" }),
        resource_id: names.get(resource),
        line_item_type: names.get("Usage"),
        currency: names.get("USD"),
        account_id: names.get("111122223333"),
        account_name: names.get(""),
        region: names.get("us-east-1"),
        billing: Default::default(),
    }
}

fn amounts(rng: &mut Rng, cents_max: u64) -> Amounts {
    // Up to `cents_max` cents, at 10 decimal places, as CUR amounts are.
    let cost = Decimal::new(i64::try_from(rng.next() % (cents_max * 100_000_000)).unwrap_or(1) + 1, 10);
    Amounts {
        unblended_cost: cost,
        net_unblended_cost: cost,
        amortized_cost: cost,
        usage_amount: Decimal::new(i64::try_from(rng.next() % 10_000_000).unwrap_or(1) + 1, 3),
        line_items: 24,
        ..Amounts::default()
    }
}

/// The month's lines (tagged and pool) and the ledger's drivers.
fn month(tenants: usize, lines_per_day: usize, days: u32) -> Result<(Vec<CostLine>, DriverTotals)> {
    let period = BillingPeriod::new(2026, 10).ok_or_else(|| curflow::Error::Argument("period".into()))?;
    let names: Vec<String> = (0..tenants).map(|i| format!("acct-{i:05}")).collect();
    let ids: Vec<TenantId> = names
        .iter()
        .map(|n| TenantId::new(n.clone()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| curflow::Error::Argument(e.to_string()))?;
    let mut rng = Rng(42);
    let mut interned = Names::default();
    let mut lines = Vec::new();
    let mut drivers = DriverTotals::new();
    for d in 1..=days {
        let day = NaiveDate::from_ymd_opt(2026, 10, d).ok_or_else(|| curflow::Error::Argument("day".into()))?;
        for name in &names {
            for shared in [SHARED[0], SHARED[2]] {
                let k = key(&mut interned, day, Some(name), (shared.0, shared.1, shared.2), "");
                lines.push(CostLine::new(period, k, amounts(&mut rng, 50)));
            }
        }
        for i in 0..lines_per_day {
            let shared = SHARED[i % SHARED.len()];
            let resource = format!("{}{:04}", shared.3, i / SHARED.len());
            let k = key(&mut interned, day, None, (shared.0, shared.1, shared.2), &resource);
            lines.push(CostLine::new(period, k, amounts(&mut rng, 5_000)));
        }
        for (_, _, _, _, driver) in SHARED {
            for (i, id) in ids.iter().enumerate() {
                // Zipf-like: a few large tenants, a long tail.
                let q = Decimal::new(i64::try_from(1_000_000 / (i + 1) + (rng.next() % 1000) as usize).unwrap_or(1), 3);
                drivers.add(driver, day, id, q).map_err(|e| curflow::Error::Argument(e.to_string()))?;
            }
        }
    }
    Ok((lines, drivers))
}

/// The arithmetic floor of any exact split that gives every tenant its part of every shared line:
/// one 64×64-bit multiply and one add per (line, tenant, distinct amount) — two distinct amounts
/// per line here (the cost, equal in three measures, and the usage) — into per-tenant sums, with
/// nothing else (no remainders, no rows). The split is reported as a ratio to it.
fn floor_seconds(tenants: usize, lines: usize) -> f64 {
    let mut rng = Rng(7);
    let weights: Vec<u64> = (0..tenants).map(|_| rng.next()).collect();
    let mut sums = vec![0u128; tenants];
    let started = Instant::now();
    for _ in 0..lines {
        for _ in 0..2 {
            let t = rng.next() >> 24;
            for (s, w) in sums.iter_mut().zip(&weights) {
                *s = s.wrapping_add((u128::from(t) * u128::from(*w)) >> 64);
            }
        }
    }
    std::hint::black_box(&sums);
    started.elapsed().as_secs_f64()
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    kb / 1024
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (tenants, lines_per_day, days) = match args[..] {
        [t, l] => (t, l, 31),
        [t, l, d] => (t, l, d),
        _ => (2_000, 1_000, 31),
    };
    let days = u32::try_from(days).map_err(|e| curflow::Error::Argument(e.to_string()))?;
    let (lines, drivers) = month(tenants, lines_per_day, days)?;
    let input_lines = lines.len();
    let options = AttributionOptions { tenant_key: "accountant_id".into(), ..AttributionOptions::default() };
    let inputs = AttributionInputs::with_drivers(&options, drivers)?;
    // One tenant's per-resource rows of the first day: what one part costs to store "before".
    let first_day: Vec<CostLine> = lines.iter().filter(|l| l.key.usage_date.day() == 1).cloned().collect();
    let sample = attribute_at(first_day, &inputs, Grain::Resources("acct-00000"))?;
    let per_part = version_writes(&sample.lines, &[]);
    drop(sample);
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let split = attribute(lines, &inputs)?;
    let seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let floor = floor_seconds(tenants, lines_per_day * days as usize);

    let attributed_rows = split.lines.iter().filter(|l| l.attribution.is_some()).count() as u64;
    let other_rows = split.lines.len() as u64 - attributed_rows;
    let before_rows = other_rows + split.parts;
    let after = version_writes(&split.lines, &split.pool);
    // Items under 1 KB cost one unit each: the before layout's rows, checked on one tenant's.
    let part_units_each = per_part.write_units.div_ceil(per_part.items.max(1));
    let others =
        version_writes(&split.lines.iter().filter(|l| l.attribution.is_none()).cloned().collect::<Vec<_>>(), &[]);
    let before_units = others.write_units + split.parts * part_units_each;
    let before_refresh = 2 * before_units + 1;
    let price: Decimal = WRITE_PRICE_PER_MILLION.parse().unwrap_or_default();
    let monthly =
        |units: u64| (Decimal::from(units) * Decimal::from(90) * price / Decimal::from(1_000_000)).round_dp(2);
    let out = serde_json::json!({
        "tenants": tenants,
        "shared_lines_per_day": lines_per_day,
        "days": days,
        "input_lines": input_lines,
        "pool_lines": split.pool.len(),
        "parts": split.parts,
        "split_seconds": (seconds * 100.0).round() / 100.0,
        "floor_seconds": (floor * 100.0).round() / 100.0,
        "split_vs_floor": (seconds / floor * 10.0).round() / 10.0,
        "peak_rss_mib_before_split": rss_before,
        "peak_rss_mib": rss,
        "rows_before": before_rows,
        "rows_after": split.lines.len() + split.pool.len(),
        "write_units_per_refresh_before": before_refresh,
        "write_units_per_refresh_after": after.per_refresh(),
        "reduction": (before_refresh as f64 / after.per_refresh() as f64 * 10.0).round() / 10.0,
        "usd_per_month_3_refreshes_a_day_before": monthly(before_refresh).to_string(),
        "usd_per_month_3_refreshes_a_day_after": monthly(after.per_refresh()).to_string(),
        "after_item_bytes_avg": after.bytes / after.items.max(1),
        "before_part_write_units_each": part_units_each,
    });
    println!("{out}");
    Ok(())
}
