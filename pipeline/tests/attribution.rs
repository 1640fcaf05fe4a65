//! Shared-cost attribution end to end: a generated month plus Lambda logs. Attributed parts follow
//! the usage evidence exactly, every measure still sums to the bill, and the store says how each
//! part was split.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::collections::BTreeMap;
use std::io::Write;

use common::{MEASURES, dec, expected_json, measure};
use curflow::aggregate::LineSource;
use curflow::attribute::{AttributionInputs, AttributionOptions};
use curflow::discover::discover;
use curflow::process::Processor;
use curflow::store::{CostStore, SqliteStore};
use curflow_fixtures::Format;
use rust_decimal::Decimal;

/// Lambda logs in the CloudWatch export layout for every day of October: per day, acct-0001 makes
/// 3 invocations of 1,000 ms at 1,024 MB (3 GB-s) and acct-0002 one of 1,000 ms at 1,024 MB (1 GB-s).
/// Every REPORT is delivered twice (at-least-once) and must count once.
fn write_lambda_logs(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut n = 0;
    for day in 1..=31 {
        for (tenant, count) in [("acct-0001", 3), ("acct-0002", 1)] {
            for _ in 0..count {
                n += 1;
                let id = format!("00000000-0000-4000-8000-{n:012}");
                let ts = format!("2026-10-{day:02}T12:00:00.000Z");
                writeln!(f, "{ts}\t{id}\tINFO\t{{\"accountant_id\":\"{tenant}\",\"msg\":\"ok\"}}").unwrap();
                for _ in 0..2 {
                    writeln!(f, "{ts} REPORT RequestId: {id}\tDuration: 999.10 ms\tBilled Duration: 1000 ms\tMemory Size: 1024 MB\tMax Memory Used: 70 MB\t").unwrap();
                }
            }
        }
    }
}

#[test]
fn shared_lambda_cost_follows_gb_seconds_and_everything_still_sums_to_the_bill() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("b"), Format::LegacyParquet, 20_000, 4, |o| o.tenants = 3);
    let expected = expected_json(&g);
    let logs = dir.path().join("lambda.log");
    write_lambda_logs(&logs);
    let store_path = dir.path().join("s.sqlite");

    let runtime = common::rt();
    let inputs = AttributionInputs::load(&AttributionOptions {
        evidence: vec![logs.into()],
        tenant_key: "accountant_id".into(),
        ..AttributionOptions::default()
    })
    .unwrap();
    assert_eq!(inputs.report.lambda_invocations_joined, 31 * 4);
    assert_eq!(inputs.report.lambda_duplicate_reports, 31 * 4);
    let processor = Processor::new(common::options()).unwrap().with_attribution(inputs);
    let mut store = SqliteStore::open(&store_path).unwrap();
    let delivery = &discover(std::slice::from_ref(&g.manifest_path)).unwrap()[0];
    let report = runtime.block_on(processor.process(&mut store, delivery, &|_| {})).unwrap();
    assert!(report.coverage.is_some());

    // Conservation: every measure, all rows (direct + attributed + still shared) = the bill.
    let lines = store.cost_lines(report.period).wait().unwrap();
    let total = curflow::Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
    for m in MEASURES {
        assert_eq!(measure(&total, m), dec(&expected["totals"][m]), "{m}");
    }

    // Lambda GB-second pool lines of the shared function: split 3:1 between the two tenants.
    let mut by_source: BTreeMap<(String, Option<String>), Decimal> = BTreeMap::new();
    let mut gb_lines = 0;
    for l in &lines {
        let gb = l.key.service == "AWSLambda" && l.key.usage_type.contains("GB-Second");
        if gb && l.source() == LineSource::Attributed {
            let a = l.attribution.as_ref().unwrap();
            assert_eq!(a.rule, "lambda-duration");
            assert_eq!(a.driver.as_deref(), Some("lambda_gb_seconds"));
            assert_eq!(a.quantity_total, Decimal::from(4), "3 + 1 GB-s per day");
            gb_lines += 1;
        }
        *by_source
            .entry((l.source().as_str().to_string(), l.key.tenant.as_deref().map(str::to_string)))
            .or_default() += l.amounts.unblended_cost;
    }
    assert!(gb_lines > 0, "the generated month has shared Lambda GB-second lines");
    let part = |t: &str| {
        lines
            .iter()
            .filter(|l| l.source() == LineSource::Attributed && l.key.tenant.as_deref() == Some(t))
            .filter(|l| l.key.usage_type.contains("GB-Second"))
            .map(|l| l.amounts.unblended_cost)
            .sum::<Decimal>()
    };
    let (a1, a2) = (part("acct-0001"), part("acct-0002"));
    let whole = a1 + a2;
    // Largest remainder at 12 places: each line is within one unit of the exact 3/4 share.
    let tolerance = Decimal::new(gb_lines, 12);
    assert!((a1 - whole * Decimal::new(75, 2)).abs() <= tolerance, "{a1} of {whole}");
    // Tax is split by direct cost (fallback), so some is attributed.
    assert!(lines.iter().any(|l| l.key.line_item_type == "Tax" && l.source() == LineSource::Attributed));
    // Less remains unattributed than without evidence.
    let shared_left: Decimal = by_source.iter().filter(|((s, _), _)| s == "shared").map(|(_, v)| *v).sum();
    assert!(shared_left.abs() < report.totals["USD"].unblended_cost.abs());
    // Whatever stays shared says why.
    assert!(lines.iter().filter(|l| l.source() == LineSource::Shared).all(|l| l.unattributed_reason.is_some()));
}
