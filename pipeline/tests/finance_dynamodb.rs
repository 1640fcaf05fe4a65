//! The finance commands on `--store dynamodb://TABLE` (through the real AWS SDK to moto_server) give
//! exactly what they give on SQLite: estimates import (file and items the app wrote itself),
//! `reconcile` at every level and format, the stored reconciliation records, `export`, `report`,
//! `budgets`, and `nightly` alerts sent once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::path::Path;
use std::process::Output;

use aws_sdk_dynamodb::types::AttributeValue;
use curflow::store::dynamodb::DynamoStore;
use curflow::store::{FinanceStore, SqliteStore};
use curflow_fixtures::Format;
use curflow_reconcile::Month;

fn curflow(args: &[&str]) -> Output {
    common::run_curflow(args, None, &[("CURFLOW_VARIANCE_MIN_AMOUNT", "0.01")])
}

use common::ok;

const NOW: &str = "2026-11-20T00:00:00Z";

/// What every read command prints for the period, in a fixed order.
fn views(store: &str, dir: &Path, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for level in ["tenant", "resource-type", "suggestions"] {
        for format in ["json", "csv", "table"] {
            out.push(ok(&curflow(&[
                "reconcile",
                "--period",
                "2026-10",
                "--level",
                level,
                "--format",
                format,
                "--now",
                NOW,
                "--store",
                store,
            ])));
        }
    }
    for (kind, format) in [("lines", "csv"), ("lines", "jsonl"), ("expenses", "csv")] {
        out.push(ok(&curflow(&[
            "export", "--period", "2026-10", "--kind", kind, "--format", format, "--store", store,
        ])));
    }
    let html = dir.join(format!("{name}.html"));
    ok(&curflow(&["report", "--period", "2026-10", "--out", html.to_str().unwrap(), "--now", NOW, "--store", store]));
    out.push(std::fs::read_to_string(&html).unwrap());
    out
}

/// A runtime and an SDK client of the test server, to arrange or inspect a table directly.
fn sdk() -> (&'static tokio::runtime::Runtime, aws_sdk_dynamodb::Client) {
    let runtime = common::rt();
    let conf = runtime.block_on(curflow::aws::sdk_config(&common::aws_settings()));
    (runtime, aws_sdk_dynamodb::Client::new(&conf))
}

/// Writes one item as the app would, straight through the SDK.
fn put_item(table: &str, attributes: &[(&str, AttributeValue)]) {
    let (runtime, client) = sdk();
    let item = attributes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    runtime.block_on(client.put_item().table_name(table).set_item(Some(item)).send()).unwrap();
}

/// The version tags of the reconciliation records stored in the table, one per record.
fn reconciliation_items(table: &str) -> Vec<String> {
    let (runtime, client) = sdk();
    let mut tags = Vec::new();
    let mut start = None;
    loop {
        let page = runtime
            .block_on(
                client
                    .scan()
                    .table_name(table)
                    .filter_expression("#s = :r")
                    .expression_attribute_names("#s", "source")
                    .expression_attribute_values(":r", AttributeValue::S("reconciliation".into()))
                    .set_exclusive_start_key(start)
                    .send(),
            )
            .unwrap();
        for item in page.items() {
            tags.push(item["version_tag"].as_s().unwrap().clone());
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return tags;
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// An estimate item written by the app itself (its own sort key, numbers as strings).
fn put_app_estimate(table: &str) {
    put_item(
        table,
        &[
            ("accountant_id", s("acct-0002")),
            ("sk", s("2026-10-07#estimate#AWSLambda#req-81")),
            ("month", s("2026-10")),
            ("source", s("estimate")),
            ("actual_cost", AttributeValue::Bool(false)),
            ("timestamp", s("2026-10-07T09:00:00Z")),
            ("operation", s("ocr_document")),
            ("resource_type", s("lambda_compute")),
            ("quantity", s("2500")),
            ("unit_cost", AttributeValue::N("0.0000166667".into())),
            ("estimated_cost", AttributeValue::N("0.04166675".into())),
        ],
    );
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn reconcile_export_report_budgets_and_nightly_on_dynamodb_match_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), Format::LegacyParquet, 3_000, 21, |o| o.tenants = 4);
    let manifest = g.manifest_path.to_str().unwrap();
    let sqlite = dir.path().join("s.sqlite");
    let sqlite = sqlite.to_str().unwrap();
    let table = common::unique_name("curflow-finance");
    assert!(
        DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap().create_table_if_missing().wait().unwrap()
    );
    let dynamo = format!("dynamodb://{table}");
    for store in [sqlite, dynamo.as_str()] {
        ok(&curflow(&["process", manifest, "--store", store]));
    }

    // The same estimates: a file imported into both, plus one record that the app wrote straight into
    // the DynamoDB table (and that SQLite gets from a file).
    let file = dir.path().join("estimates.csv");
    std::fs::write(
        &file,
        "accountant_id,timestamp,month,operation,resource_type,quantity,unit_cost,estimated_cost\n\
         acct-0001,2026-10-05T10:00:00Z,2026-10,upload,lambda_invocation,1000,0.0000002,0.0002\n\
         acct-0001,2026-10-06T11:30:00+02:00,2026-10,ocr_document,lambda_compute,90000,0.0000166667,1.500003\n\
         acct-0002,2026-10-09T08:00:00Z,2026-10,search,dynamodb_read,400000,0.000000125,0.05\n\
         acct-0003,2026-10-12T08:00:00Z,2026-10,archive,s3_storage,12,0.023,0.276\n",
    )
    .unwrap();
    let app_file = dir.path().join("app.jsonl");
    std::fs::write(
        &app_file,
        r#"{"accountant_id":"acct-0002","timestamp":"2026-10-07T09:00:00Z","month":"2026-10","operation":"ocr_document","resource_type":"lambda_compute","quantity":"2500","unit_cost":"0.0000166667","estimated_cost":"0.04166675"}"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert!(ok(&curflow(&["estimates", "import", f, "--store", &dynamo])).contains("4 imported, 0 already stored"));
    assert!(ok(&curflow(&["estimates", "import", f, "--store", &dynamo])).contains("0 imported, 4 already stored"));
    ok(&curflow(&["estimates", "import", f, "--store", sqlite]));
    ok(&curflow(&["estimates", "import", app_file.to_str().unwrap(), "--store", sqlite]));
    put_app_estimate(&table);

    let month: Month = "2026-10".parse().unwrap();
    let ddb = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
    let local = SqliteStore::open(Path::new(sqlite)).unwrap();
    assert_eq!(ddb.estimates(month).wait().unwrap(), local.estimates(month).wait().unwrap());
    assert_eq!(ddb.estimates(month).wait().unwrap().len(), 5);

    // Every read view is identical, byte for byte (the report embeds the same data and charts).
    let on_sqlite = views(sqlite, dir.path(), "sqlite");
    let on_dynamo = views(&dynamo, dir.path(), "dynamo");
    for (a, b) in on_sqlite.iter().zip(&on_dynamo) {
        assert_eq!(a, b);
    }
    assert!(on_dynamo[0].contains("acct-0002") && on_dynamo[0].contains("provisional"), "{}", on_dynamo[0]);

    // The stored reconciliation records are the same, and a re-run replaces them: one version left.
    let rows = ddb.reconciliation(month).wait().unwrap();
    assert!(!rows.is_empty());
    assert_eq!(rows, local.reconciliation(month).wait().unwrap());
    let tags = reconciliation_items(&table);
    assert_eq!(tags.len(), rows.len(), "nothing but the current version: {tags:?}");
    assert!(tags.windows(2).all(|w| w[0] == w[1]), "one version tag: {tags:?}");

    // Budgets and the nightly job: acct-0001's October cost crosses 80 % and 100 % of a tiny budget;
    // the first night alerts twice, the second night not again, on both stores alike.
    for store in [sqlite, dynamo.as_str()] {
        ok(&curflow(&["budgets", "set", "--tenant", "acct-0001", "--amount", "0.50", "--store", store]));
        ok(&curflow(&[
            "budgets",
            "set",
            "--tenant",
            "acct-0004",
            "--amount",
            "7",
            "--threshold",
            "90",
            "--store",
            store,
        ]));
        ok(&curflow(&["budgets", "set", "--tenant", "acct-0004", "--amount", "1000000", "--store", store]));
    }
    let list = |store: &str| ok(&curflow(&["budgets", "list", "--store", store]));
    assert_eq!(list(sqlite), list(&dynamo));
    assert!(list(&dynamo).contains("1000000"), "{}", list(&dynamo));
    let nightly = |store: &str| {
        let out = ok(&curflow(&["nightly", "--now", "2026-10-28T03:00:00Z", "--store", store, "--format", "jsonl"]));
        out.lines().filter(|l| l.contains("\"delivery\":\"sent\"")).map(str::to_string).collect::<Vec<_>>()
    };
    let first = nightly(&dynamo);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first, nightly(sqlite));
    assert!(nightly(&dynamo).is_empty(), "no alert twice");
    assert_eq!(ddb.alerts_sent(month).wait().unwrap(), local.alerts_sent(month).wait().unwrap());
    assert_eq!(ddb.alerts_sent(month).wait().unwrap().len(), 2);
    ok(&curflow(&["budgets", "delete", "--tenant", "acct-0004", "--store", &dynamo]));
    let out = curflow(&["budgets", "delete", "--tenant", "acct-0004", "--store", &dynamo]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ddb.budgets().wait().unwrap().len(), 1);
}

#[test]
fn an_unreadable_estimate_item_is_named_by_its_key() {
    let table = common::unique_name("curflow-finance-bad");
    let ddb = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
    assert!(ddb.create_table_if_missing().wait().unwrap());
    put_item(
        &table,
        &[
            ("accountant_id", s("acct-9")),
            ("sk", s("estimate#broken")),
            ("month", s("2026-10")),
            ("source", s("estimate")),
            ("timestamp", s("2026-10-07T09:00:00Z")),
            ("operation", s("x")),
            ("resource_type", s("lambda_compute")),
            ("quantity", s("ten")),
            ("unit_cost", s("1")),
            ("estimated_cost", s("10")),
        ],
    );
    let err = ddb.estimates("2026-10".parse().unwrap()).wait().unwrap_err().to_string();
    assert!(err.contains("acct-9") && err.contains("estimate#broken") && err.contains("quantity"), "{err}");
}
