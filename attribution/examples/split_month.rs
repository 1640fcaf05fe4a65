//! Split-time measurement for the closing note: 10,000 tenants × 1,000 shared lines × 31 days, every
//! line with five cost measures, split by Lambda GB-seconds evidence of each tenant and day.
//!
//! `cargo run --release -p curflow-attribution --example split_month [tenants] [lines_per_day] [days]`

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::NaiveDate;
use curflow_attribution::{
    Allocator, Assignments, DirectCosts, Driver, DriverTotals, SharedLine, TenantId, WeightContext, default_rules,
};
use rust_decimal::Decimal;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tenants, lines_per_day, days) = (arg(1, 10_000), arg(2, 1_000), arg(3, 31) as u32);
    let ids: Vec<TenantId> = (0..tenants).map(|i| TenantId::new(format!("acct-{i:05}"))).collect::<Result<_, _>>()?;
    let mut drivers = DriverTotals::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let first = NaiveDate::from_ymd_opt(2026, 10, 1).ok_or("date")?;
    let started = Instant::now();
    for d in 0..days {
        let day = first + chrono::Days::new(u64::from(d));
        for t in &ids {
            drivers.add(Driver::LambdaGbSeconds, day, t, Decimal::new((next() % 1_000_000) as i64 + 1, 3))?;
        }
    }
    let direct: DirectCosts = BTreeMap::new();
    let set: BTreeSet<TenantId> = ids.iter().cloned().collect();
    let rules = default_rules();
    let assignments = Assignments::new();
    let allocator = Allocator::new(&rules, &assignments, WeightContext::new(&drivers, &direct, &set)?, 12);
    println!("evidence for {tenants} tenants x {days} days built in {:.2} s", started.elapsed().as_secs_f64());

    let measures = ["unblended_cost", "net_unblended_cost", "amortized_cost", "ri_sp_trueup", "ri_sp_upfront_fees"];
    let started = Instant::now();
    let (mut lines, mut parts, mut total, mut allocated) = (0u64, 0u64, Decimal::ZERO, Decimal::ZERO);
    for d in 0..days {
        let day = first + chrono::Days::new(u64::from(d));
        for i in 0..lines_per_day {
            let amount = Decimal::new((next() % 10_000_000_000) as i64, 10);
            let line = SharedLine {
                service: "AWSLambda".into(),
                usage_type: "USE1-Lambda-GB-Second".into(),
                operation: "Invoke".into(),
                resource_id: format!("arn:aws:lambda:us-east-1:123456789012:function:fn-{i}"),
                line_item_type: "Usage".into(),
                day,
                currency: "USD".into(),
                amounts: measures.iter().map(|m| ((*m).to_string(), amount)).collect(),
            };
            let a = allocator.allocate(&line)?;
            lines += 1;
            parts += a.attributed.len() as u64;
            total += amount;
            allocated += a.attributed.iter().map(|r| r.amounts["unblended_cost"]).sum::<Decimal>();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, allocated, "conservation");
    println!(
        "split {lines} lines x {tenants} tenants x {} measures = {parts} tenant parts in {secs:.2} s \
         ({:.0} lines/s, {:.2} M parts/s); sum of parts = sum of lines exactly ({total})",
        measures.len(),
        lines as f64 / secs,
        parts as f64 / secs / 1e6
    );
    Ok(())
}
