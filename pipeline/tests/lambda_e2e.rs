//! End to end through S3 (moto_server) and the Lambda handler: generated months uploaded in the
//! legacy CSV, Athena-Parquet and CUR 2.0 layouts, the handler invoked with the committed
//! real-shaped event JSON (`tests/events/`, URL-encoded keys), the store then holding exactly
//! `expected.json`, and `curflow costs` printing the same as after a local `curflow process`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::path::Path;
use std::process::Output;

use chrono::Utc;
use curflow::BillingPeriod;
use curflow::lambda::{Action, Handler};
use curflow::store::{CostStore, SqliteStore};
use curflow_fixtures::Format;

fn curflow(args: &[&str], cwd: &Path) -> Output {
    common::run_curflow(args, Some(cwd), &[])
}

use common::ok;

/// `curflow costs` in the forms that do not name the source: exact CSV by tenant and by service,
/// and the rounded table without its header line (which names the manifest path).
fn costs_views(store: &Path, cwd: &Path) -> Vec<String> {
    let store = store.to_str().unwrap();
    let mut views = Vec::new();
    for by in ["tenant", "service"] {
        views.push(ok(&curflow(
            &["costs", "--store", store, "--period", "2026-10", "--by", by, "--format", "csv"],
            cwd,
        )));
    }
    let table = ok(&curflow(&["costs", "--store", store, "--period", "2026-10"], cwd));
    views.push(table.lines().skip(1).collect::<Vec<_>>().join("\n"));
    views
}

fn run_layout(format: Format, prefix: &str, event: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-lambda");
    let generated = common::generate(&dir.path().join("bucket"), format, 5_000, seed, |_| {});
    s3.upload_delivery(&bucket, prefix, &dir.path().join("bucket"));

    // The handler, invoked with the committed event.
    let store_path = dir.path().join("lambda.sqlite");
    let handler = s3.runtime.block_on(Handler::new(common::s3_config(&store_path))).unwrap();
    let response = s3.runtime.block_on(handler.handle(&common::event_fixture(event, &bucket), Utc::now())).unwrap();
    assert_eq!(response.status, "ok", "{response:?}");
    let processed: Vec<_> = response.results.iter().filter(|o| o.action == Action::Processed).collect();
    assert_eq!(processed.len(), 1, "{response:?}");
    let expected = common::expected_json(&generated);
    assert_eq!(processed[0].version.as_deref(), expected["version_id"].as_str());
    assert_eq!(processed[0].rows_read, expected["rows"].as_u64());

    // Exactly expected.json: per tenant (every measure) and per (tenant, service, day).
    let period = BillingPeriod::new(2026, 10).unwrap();
    let store = SqliteStore::open(&store_path).unwrap();
    assert_eq!(common::stored_by_tenant(&store, period), common::expected_by_tenant(&generated), "{format:?}");
    let by_group = common::stored_by_tenant_service_day(&store_path, period);
    assert_eq!(by_group.len(), expected["by_tenant_service_day"].as_array().unwrap().len());
    for m in common::MEASURES {
        let total: rust_decimal::Decimal = by_group.values().map(|a| common::measure(a, m)).sum();
        assert_eq!(total, common::dec(&expected["totals"][m]), "{format:?} total {m}");
    }
    assert_eq!(store.period(period).wait().unwrap().unwrap().version.id, expected["version_id"].as_str().unwrap());

    // The same files processed locally, and from S3 by the CLI: `curflow costs` agrees.
    let local = dir.path().join("local.sqlite");
    ok(&curflow(
        &["process", generated.manifest_path.to_str().unwrap(), "--store", local.to_str().unwrap()],
        dir.path(),
    ));
    let from_s3 = dir.path().join("cli-s3.sqlite");
    let url = format!("s3://{bucket}/{prefix}");
    let out = ok(&curflow(&["process", &url, "--store", from_s3.to_str().unwrap()], dir.path()));
    assert!(out.contains(&format!("s3://{bucket}/{prefix}")), "{out}");
    let want = costs_views(&local, dir.path());
    assert_eq!(costs_views(&store_path, dir.path()), want, "{format:?}: Lambda store vs local process");
    assert_eq!(costs_views(&from_s3, dir.path()), want, "{format:?}: CLI on s3:// vs local process");
}

#[test]
fn legacy_csv_delivery_through_an_s3_notification() {
    // Two records: the data file (ignored) and the manifest, keys with `+` and `%2F`.
    run_layout(Format::LegacyCsv, "cur reports/csv/", "s3-objectcreated-legacy-csv.json", 11);
}

#[test]
fn athena_parquet_delivery_through_an_s3_notification() {
    run_layout(Format::LegacyParquet, "athena/", "s3-objectcreated-athena-parquet.json", 12);
}

#[test]
fn cur2_export_through_an_s3_notification() {
    run_layout(Format::Cur2Parquet, "exports/", "s3-objectcreated-cur2.json", 13);
}

#[test]
fn cur2_export_through_eventbridge() {
    run_layout(Format::Cur2Parquet, "exports/", "eventbridge-objectcreated-cur2.json", 14);
}

#[test]
fn test_events_data_files_and_unknown_events_are_not_processed_or_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-lambda");
    let store_path = dir.path().join("s.sqlite");
    let handler = s3.runtime.block_on(Handler::new(common::s3_config(&store_path))).unwrap();
    let handle = |name: &str| s3.runtime.block_on(handler.handle(&common::event_fixture(name, &bucket), Utc::now()));

    let test = handle("s3-test-event.json").unwrap();
    assert_eq!((test.status, test.results[0].action), ("ok", Action::Ignored));
    let data = handle("s3-objectcreated-storm-data-file.json").unwrap();
    assert_eq!((data.status, data.results[0].action), ("ok", Action::Ignored));
    // Bad input is answered (Ok), not retried: the response says why.
    let unknown = handle("unknown-event.json").unwrap();
    assert_eq!(unknown.status, "rejected");
    assert!(unknown.results[0].detail.as_deref().unwrap().contains("not an S3 notification"), "{unknown:?}");
    // A manifest event whose manifest is not valid JSON: bad input, reported, not retried.
    s3.put_bytes(&bucket, "athena/curflow-demo/20261001-20261101/curflow-demo-Manifest.json", b"{not json".to_vec());
    let bad = handle("s3-objectcreated-athena-parquet.json").unwrap();
    assert_eq!((bad.status, bad.results[0].action), ("failed", Action::Failed), "{bad:?}");
    assert!(bad.results[0].detail.as_deref().unwrap().contains("not valid manifest JSON"), "{bad:?}");
    assert!(!store_path.exists() || SqliteStore::open(&store_path).unwrap().periods().wait().unwrap().is_empty());
}

#[test]
fn cur2_export_into_a_dynamodb_store_through_the_handler() {
    use curflow::store::dynamodb::DynamoStore;
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-lambda-ddb");
    let generated = common::generate(&dir.path().join("bucket"), Format::Cur2Parquet, 2_000, 15, |_| {});
    s3.upload_delivery(&bucket, "exports/", &dir.path().join("bucket"));
    let table = common::unique_name("curflow-lambda");
    assert!(
        DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap().create_table_if_missing().wait().unwrap()
    );

    // CURFLOW_STORE=dynamodb://TABLE, as the deployed function is configured.
    let location = format!("dynamodb://{table}");
    let config = common::s3_config(Path::new(&location));
    let handler = s3.runtime.block_on(Handler::new(config)).unwrap();
    let event = common::event_fixture("s3-objectcreated-cur2.json", &bucket);
    for expected_action in [Action::Processed, Action::Unchanged, Action::Unchanged] {
        let response = s3.runtime.block_on(handler.handle(&event, Utc::now())).unwrap();
        assert_eq!(response.results[0].action, expected_action, "{response:?}");
    }
    let period = BillingPeriod::new(2026, 10).unwrap();
    let store = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
    assert_eq!(common::stored_by_tenant(&store, period), common::expected_by_tenant(&generated));

    // `curflow costs` on the DynamoDB store prints what a local SQLite run prints.
    let local = dir.path().join("local.sqlite");
    ok(&curflow(
        &["process", generated.manifest_path.to_str().unwrap(), "--store", local.to_str().unwrap()],
        dir.path(),
    ));
    assert_eq!(costs_views(Path::new(&location), dir.path()), costs_views(&local, dir.path()));

    // The nightly schedule on the same table (the deployed configuration): it reconciles October
    // into the table and sends a budget alert once.
    ok(&curflow(&["budgets", "set", "--tenant", "acct-0001", "--amount", "0.01", "--store", &location], dir.path()));
    let nightly = common::event_fixture("eventbridge-scheduled.json", &bucket);
    let now = "2026-11-01T03:30:00Z".parse().unwrap(); // October is the month being watched
    let response = s3.runtime.block_on(handler.handle(&nightly, now)).unwrap();
    assert_eq!(response.results[0].action, Action::Nightly, "{response:?}");
    let detail = response.results[0].detail.clone().unwrap();
    assert!(detail.contains("reconciled 1 month(s), 2 alert(s) sent, 0 failed"), "{detail}");
    let october = curflow_reconcile::Month::of(period.first_day());
    use curflow::store::FinanceStore;
    assert!(!store.reconciliation(october).wait().unwrap().is_empty());
    assert_eq!(store.alerts_sent(october).wait().unwrap().len(), 2, "80 % and 100 % of a 0.01 budget");
    let again = s3.runtime.block_on(handler.handle(&nightly, now)).unwrap();
    assert_eq!(again.results[0].action, Action::Nightly);
    assert_eq!(store.alerts_sent(october).wait().unwrap().len(), 2, "no alert twice");
}

#[test]
fn the_schedule_runs_the_nightly_job() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-lambda-nightly");
    let generated = common::generate(&dir.path().join("bucket"), Format::Cur2Parquet, 2_000, 16, |_| {});
    s3.upload_delivery(&bucket, "exports/", &dir.path().join("bucket"));
    let store = dir.path().join("s.sqlite");
    let handler = s3.runtime.block_on(Handler::new(common::s3_config(&store))).unwrap();
    let processed = s3
        .runtime
        .block_on(handler.handle(&common::event_fixture("s3-objectcreated-cur2.json", &bucket), Utc::now()))
        .unwrap();
    assert_eq!(processed.results[0].action, Action::Processed);
    let now = "2026-11-02T02:00:00Z".parse().unwrap();
    for event in ["eventbridge-scheduled.json", "nightly-constant.json"] {
        let response = s3.runtime.block_on(handler.handle(&common::event_fixture(event, &bucket), now)).unwrap();
        assert_eq!(response.status, "ok", "{response:?}");
        assert_eq!(response.results[0].action, Action::Nightly, "{response:?}");
        assert!(response.results[0].detail.as_deref().unwrap().contains("reconciled"), "{response:?}");
    }
    let s = SqliteStore::open(&store).unwrap();
    assert_eq!(
        common::stored_by_tenant(&s, BillingPeriod::new(2026, 10).unwrap()),
        common::expected_by_tenant(&generated)
    );
}
