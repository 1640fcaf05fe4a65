//! Parsers on real-format fixtures (attribution-and-style.md §B.7): every bad case is counted and reported
//! with its line number, none is fatal below the error budget, and the budget makes it fatal above.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use chrono::NaiveDate;
use curflow_attribution::evidence::agent::{AgentAggregator, AgentConfig, read_session_map};
use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
use curflow_attribution::evidence::s3::{InventorySchema, PrefixMap, S3AccessAggregator, S3InventoryAggregator};
use curflow_attribution::evidence::{ErrorBudget, EvidenceError, SourceReport, decompress};
use curflow_attribution::{Assignments, Driver, DriverTotals, TenantId};
use rust_decimal::Decimal;

fn fixture(name: &str) -> Box<dyn std::io::BufRead> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    decompress(BufReader::new(File::open(&path).unwrap())).unwrap()
}
use curflow_money::testing::d;
fn day(m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, dd).unwrap()
}
fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}
fn q(totals: &DriverTotals, driver: Driver, on: NaiveDate, tenant: &TenantId) -> Decimal {
    totals.day(driver, on).and_then(|m| m.get(tenant)).copied().unwrap_or_default()
}
fn lenient(ratio: &str) -> ErrorBudget {
    ErrorBudget { max_ratio: d(ratio), ..ErrorBudget::default() }
}
fn bad_lines(r: &SourceReport) -> Vec<u64> {
    r.examples.iter().map(|e| e.line).collect()
}

#[test]
fn lambda_export_text_reports_join_and_dedupe() {
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let r = agg.read("lambda_export.log", fixture("lambda_export.log"), &lenient("0.25")).unwrap();
    assert_eq!((r.lines, r.malformed), (16, 3), "{r:#?}");
    assert_eq!(bad_lines(&r), vec![13, 14, 15]);
    assert!(r.examples[0].error.contains("Memory Size"), "{:?}", r.examples[0]);
    assert!(r.examples[1].error.contains("Billed Duration"), "{:?}", r.examples[1]);
    assert!(r.examples[2].error.contains("JSON"), "{:?}", r.examples[2]);
    let (tot, stats) = agg.finish().unwrap();
    assert_eq!((stats.reports, stats.duplicate_reports, stats.joined, stats.reports_without_tenant), (6, 1, 4, 1));
    // acct-0001: 202 ms × 2048 MB + 1 ms × 128 MB; acct-0002: 334 ms × 1024 MB (X-Ray suffix line).
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 3), &t("acct-0001")), d("0.404125"));
    assert_eq!(q(&tot, Driver::LambdaInvocations, day(10, 3), &t("acct-0001")), d("2"));
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 3), &t("acct-0002")), d("0.334"));
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 3), &TenantId::unattributed()), d("0.1"));
    // Float billed duration after midnight UTC: 1500.5 ms × 512 MB on the 4th.
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 4), &t("acct-0003")), d("0.75025"));
    assert_eq!(q(&tot, Driver::LambdaDurationMs, day(10, 4), &t("acct-0003")), d("1500.5"));
}

#[test]
fn lambda_error_budget_is_fatal_above_the_ratio() {
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let e = agg.read("lambda_export.log", fixture("lambda_export.log"), &ErrorBudget::default()).unwrap_err();
    let EvidenceError::TooManyMalformed { ref source_name, malformed, lines, percent, ref examples, .. } = e else {
        panic!("{e}")
    };
    assert_eq!((source_name.as_str(), malformed, lines, percent), ("lambda_export.log", 3, 16, d("18.75")));
    assert_eq!(examples.len(), 3);
    let msg = e.to_string();
    assert!(msg.contains("lambda_export.log") && msg.contains("18.75 %") && msg.contains("allowed 1 %"), "{msg}");
    // Exactly at the threshold is still fine: 3 of 16 = 0.1875.
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    assert!(agg.read("lambda_export.log", fixture("lambda_export.log"), &lenient("0.1875")).is_ok());
}

#[test]
fn lambda_platform_report_shapes() {
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let r = agg.read("lambda_platform.jsonl", fixture("lambda_platform.jsonl"), &lenient("0.2")).unwrap();
    assert_eq!((r.lines, r.records, r.ignored, r.malformed), (7, 5, 1, 1), "{r:#?}");
    assert!(r.examples[0].error.contains("memorySizeMB"));
    let (tot, stats) = agg.finish().unwrap();
    assert_eq!((stats.duplicate_reports, stats.joined), (1, 2));
    // 2600 ms × 128 MB, tenant nested in `message`.
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 5), &t("acct-0001")), d("0.325"));
    // Managed instance: invocations and duration, no GB-s.
    assert_eq!(q(&tot, Driver::LambdaInvocations, day(10, 5), &t("acct-0002")), d("1"));
    assert_eq!(q(&tot, Driver::LambdaDurationMs, day(10, 5), &t("acct-0002")), d("42.25"));
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 5), &t("acct-0002")), Decimal::ZERO);
}

#[test]
fn non_utf8_bytes_are_reported_not_panics() {
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let r = agg.read("lambda_non_utf8.log", fixture("lambda_non_utf8.log"), &lenient("0.5")).unwrap();
    assert_eq!((r.lines, r.records, r.malformed), (4, 2, 2));
    assert_eq!(bad_lines(&r), vec![3, 4]);
    assert!(r.examples.iter().all(|e| e.error.contains("UTF-8")), "{:?}", r.examples);
    assert!(r.examples[0].excerpt.contains('\u{fffd}'));
    let (tot, _) = agg.finish().unwrap();
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 6), &t("acct-0001")), d("0.01"));
}

#[test]
fn truncated_gzip_is_one_bad_record_below_the_budget() {
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let full = agg.read("lambda_complete.log.gz", fixture("lambda_complete.log.gz"), &ErrorBudget::default()).unwrap();
    assert_eq!((full.lines, full.malformed, full.truncated), (600, 0, false));
    let (tot, _) = agg.finish().unwrap();
    let per_tenant = tot.day(Driver::LambdaInvocations, day(10, 7)).unwrap();
    assert_eq!(per_tenant.values().copied().sum::<Decimal>(), d("300"));

    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let r = agg.read("lambda_truncated.log.gz", fixture("lambda_truncated.log.gz"), &ErrorBudget::default()).unwrap();
    assert!(r.truncated);
    assert_eq!(r.malformed, 1);
    assert!(r.lines > 100 && r.lines < 600, "{}", r.lines);
    assert!(r.examples[0].error.contains("truncated"), "{:?}", r.examples);
    let (tot, stats) = agg.finish().unwrap();
    assert!(stats.joined > 50);
    assert!(tot.day(Driver::LambdaGbSeconds, day(10, 7)).is_some());
}

#[test]
fn malformed_below_one_percent_is_not_fatal_with_the_default_budget() {
    // 1,000 good invocations plus 10 broken REPORT lines: 10 / 2,010 < 1 %.
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for i in 0..1000 {
        let rid = format!("{i:08x}-0000-4000-8000-000000000000");
        writeln!(f, "2026-10-08T00:00:00.000Z\t{rid}\tINFO\t{{\"accountant_id\":\"acct-{}\"}}", i % 2).unwrap();
        writeln!(f, "2026-10-08T00:00:01.000Z REPORT RequestId: {rid}\tDuration: 1 ms\tBilled Duration: 1 ms\tMemory Size: 1024 MB\tMax Memory Used: 1 MB").unwrap();
    }
    for _ in 0..10 {
        writeln!(f, "2026-10-08T00:00:02.000Z REPORT RequestId: x\tDuration: 1 ms").unwrap();
    }
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let r = agg.read("generated.log", BufReader::new(File::open(f.path()).unwrap()), &ErrorBudget::default()).unwrap();
    assert_eq!((r.lines, r.malformed, r.examples.len()), (2010, 10, 10));
    let (tot, _) = agg.finish().unwrap();
    assert_eq!(q(&tot, Driver::LambdaGbSeconds, day(10, 8), &t("acct-0")), d("0.5"));
    // 21 broken lines of 2,021 is above 1 %.
    for _ in 0..11 {
        writeln!(f, "REPORT RequestId: y\tBilled Duration: 1 ms").unwrap();
    }
    let mut agg = LambdaAggregator::new(LambdaConfig::default());
    let e =
        agg.read("generated.log", BufReader::new(File::open(f.path()).unwrap()), &ErrorBudget::default()).unwrap_err();
    assert!(matches!(e, EvidenceError::TooManyMalformed { malformed: 21, lines: 2021, .. }), "{e}");
}

#[test]
fn dynamodb_capacity_logs() {
    let mut agg = DynamoAggregator::new(DynamoConfig {
        tables: Some(["accountants".to_string()].into()),
        ..DynamoConfig::default()
    });
    let r = agg.read("dynamodb.log", fixture("dynamodb.log"), &lenient("0.2")).unwrap();
    assert_eq!((r.lines, r.records, r.ignored, r.malformed), (8, 6, 1, 1));
    assert_eq!(bad_lines(&r), vec![8]);
    let (tot, stats) = agg.finish().unwrap();
    assert_eq!((stats.without_tenant, stats.other_tables), (1, 1));
    let (a1, a2, un) = (t("acct-0001"), t("acct-0002"), TenantId::unattributed());
    assert_eq!(q(&tot, Driver::DynamoReadUnits, day(10, 3), &a1), d("1.5"));
    assert_eq!(q(&tot, Driver::DynamoWriteUnits, day(10, 3), &a1), d("2"));
    assert_eq!(q(&tot, Driver::DynamoWriteUnits, day(10, 3), &a2), d("4"));
    assert_eq!(q(&tot, Driver::DynamoReadUnits, day(10, 3), &a2), d("0.5")); // "documents" filtered out
    assert_eq!(q(&tot, Driver::DynamoReadUnits, day(10, 3), &un), d("8"));
    // Storage proxy: cumulative writes.
    assert_eq!(q(&tot, Driver::DynamoStorageProxy, day(10, 4), &a1), d("2"));
    assert_eq!(q(&tot, Driver::DynamoStorageProxy, day(10, 4), &a2), d("5"));
}

fn prefix_map() -> PrefixMap {
    let mut m = PrefixMap::new();
    m.add_prefix(Some("curflow-docs"), "vip/", t("acct-0009"));
    m.add_template(Some("curflow-docs"), "clients/{tenant}/").unwrap();
    m
}

#[test]
fn s3_inventory_gzip_csv() {
    let map = prefix_map();
    let schema = InventorySchema::from_file_schema(
        "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, StorageClass",
    )
    .unwrap();
    let mut agg = S3InventoryAggregator::new(day(10, 3), schema, &map);
    let r = agg.read("s3_inventory.csv.gz", fixture("s3_inventory.csv.gz"), &lenient("0.2")).unwrap();
    assert_eq!((r.lines, r.records, r.ignored, r.malformed), (7, 5, 1, 1));
    assert!(r.examples[0].error.contains("Size"));
    let (tot, stats) = agg.finish().unwrap();
    assert_eq!((stats.unmapped_objects, stats.unmapped_bytes), (1, 42));
    // acct-0001: 1000 + 500 (noncurrent version) bytes × 24 h; the delete marker has no size.
    assert_eq!(q(&tot, Driver::S3ByteHours, day(10, 3), &t("acct-0001")), d("36000"));
    assert_eq!(q(&tot, Driver::S3ByteHours, day(10, 3), &t("acct-0002")), d("72000"));
    assert_eq!(q(&tot, Driver::S3ByteHours, day(10, 3), &t("acct-0009")), d("6000"));
    assert_eq!(q(&tot, Driver::S3ByteHours, day(10, 3), &TenantId::unattributed()), d("1008"));
}

#[test]
fn s3_access_logs() {
    let map = prefix_map();
    let mut agg = S3AccessAggregator::new(&map);
    let r = agg.read("s3_access.log", fixture("s3_access.log"), &ErrorBudget::default()).unwrap();
    assert_eq!((r.lines, r.records, r.ignored, r.malformed), (6, 5, 1, 0));
    let (tot, _) = agg.finish();
    let (a1, a2) = (t("acct-0001"), t("acct-0002"));
    assert_eq!(q(&tot, Driver::S3Requests, day(10, 3), &a1), d("2")); // GET + DELETE
    assert_eq!(q(&tot, Driver::S3Tier2Requests, day(10, 3), &a1), d("1"));
    assert_eq!(q(&tot, Driver::S3Tier1Requests, day(10, 3), &a2), d("2")); // PUT + LIST prefix
    assert_eq!(q(&tot, Driver::S3Tier2Requests, day(10, 3), &TenantId::unattributed()), d("1"));
}

#[test]
fn agent_usage_logs() {
    let map = read_session_map("agent_sessions.csv", fixture("agent_sessions.csv")).unwrap();
    let mut agg = AgentAggregator::new(AgentConfig::new(map));
    let r = agg.read("agent_usage.log", fixture("agent_usage.log"), &ErrorBudget::default()).unwrap();
    assert_eq!((r.records, r.malformed), (5, 0));
    let (tot, stats) = agg.finish();
    assert_eq!(stats.unmapped_records, 1);
    let (a1, a2) = (t("acct-0001"), t("acct-0002"));
    assert_eq!(q(&tot, Driver::AgentVcpuHours, day(10, 3), &a1), d("0.0015"));
    assert_eq!(q(&tot, Driver::AgentGbHours, day(10, 3), &a1), d("0.003"));
    assert_eq!(q(&tot, Driver::AgentSessions, day(10, 3), &a1), d("1"));
    assert_eq!(q(&tot, Driver::AgentToolCalls, day(10, 3), &a1), d("1"));
    assert_eq!(q(&tot, Driver::AgentToolCalls, day(10, 3), &a2), d("3"));
    assert_eq!(q(&tot, Driver::AgentVcpuHours, day(10, 3), &TenantId::unattributed()), d("0.0005"));
}

#[test]
fn assignments_table() {
    let a = Assignments::read("assignments.csv", fixture("assignments.csv")).unwrap();
    let who = |r: &str| a.lookup(r).map(|(t, _)| t.to_string());
    assert_eq!(who("arn:aws:lambda:us-east-1:123456789012:function:report-acct-0003").as_deref(), Some("acct-0003"));
    assert_eq!(who("arn:aws:dynamodb:eu-west-1:123456789012:table/acct-0004-ledger").as_deref(), Some("acct-0004"));
    assert_eq!(who("arn:aws:dynamodb:eu-west-1:123456789012:table/shared"), None);
}

#[test]
fn one_pass_over_mixed_logs_gives_the_same_totals_as_one_pass_per_aggregator() {
    use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
    use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
    use curflow_attribution::evidence::logs::LogAggregator;
    use curflow_attribution::evidence::{ErrorBudget, decompress};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let files = ["lambda_export.log", "dynamodb.log", "lambda_platform.jsonl"];
    let open = |f: &str| decompress(BufReader::new(File::open(dir.join(f)).unwrap())).unwrap();
    let budget = ErrorBudget { max_ratio: Decimal::ONE, ..ErrorBudget::default() };
    let (mut lambda, mut dynamo) =
        (LambdaAggregator::new(LambdaConfig::default()), DynamoAggregator::new(DynamoConfig::default()));
    let mut logs = LogAggregator::new(
        LambdaAggregator::new(LambdaConfig::default()),
        DynamoAggregator::new(DynamoConfig::default()),
    );
    for f in files {
        lambda.read(f, open(f), &budget).unwrap();
        dynamo.read(f, open(f), &budget).unwrap();
        logs.read(f, open(f), &budget).unwrap();
    }
    let separate = (lambda.finish().unwrap(), dynamo.finish().unwrap());
    let together = (logs.lambda.finish().unwrap(), logs.dynamo.finish().unwrap());
    assert_eq!(format!("{:?}", separate.0.0), format!("{:?}", together.0.0));
    assert_eq!(format!("{:?}", separate.1.0), format!("{:?}", together.1.0));
    assert!(!together.0.0.is_empty() && !together.1.0.is_empty());
}
