//! CloudWatch metrics as usage evidence, through the real AWS SDK against the local moto_server:
//! metrics put with `PutMetricData` under a tenant dimension (as embedded-metric-format log lines
//! become) and read with `curflow usage ingest` from a `cloudwatch-metrics://` source give the
//! ledger exactly each tenant's daily sum, whatever other dimensions split its streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{Days, NaiveDate, Utc};
use curflow::money::testing::d;
use curflow::store::SqliteStore;
use curflow::store::ledger::UsageLedger;

/// (day, hour, tenant, function, value) of the `BilledGbSeconds` metric; `None` tenant: a stream
/// without the tenant dimension (skipped: no tenant to give it to).
type Point = (NaiveDate, u32, Option<&'static str>, &'static str, f64);

fn put(namespace: &str, points: &[Point]) {
    let runtime = common::rt();
    runtime.block_on(async {
        let config = curflow::aws::sdk_config(&common::aws_settings()).await;
        let client = aws_sdk_cloudwatch::Client::new(&config);
        for (day, hour, tenant, function, value) in points {
            let at = day.and_hms_opt(*hour, 0, 0).unwrap().and_utc().timestamp();
            let mut dimensions = vec![Dimension::builder().name("FunctionName").value(*function).build()];
            if let Some(t) = tenant {
                dimensions.push(Dimension::builder().name("accountant_id").value(*t).build());
            }
            let datum = MetricDatum::builder()
                .metric_name("BilledGbSeconds")
                .set_dimensions(Some(dimensions))
                .timestamp(AwsDateTime::from_secs(at))
                .value(*value)
                .build();
            client.put_metric_data().namespace(namespace).metric_data(datum).send().await.unwrap();
        }
    });
}

#[test]
fn metrics_with_a_tenant_dimension_fill_the_ledger_per_tenant_and_day() {
    // Recent days: CloudWatch keeps one-day statistics for 455 days, and accepts data points of
    // the last two weeks.
    let today = Utc::now().date_naive();
    let (day1, day2) = (today - Days::new(3), today - Days::new(2));
    let namespace = common::unique_name("Curflow/App");
    put(
        &namespace,
        &[
            (day1, 1, Some("acct-0001"), "fn-a", 1.25),
            (day1, 9, Some("acct-0001"), "fn-a", 0.1),
            (day1, 5, Some("acct-0001"), "fn-b", 2.5),
            (day1, 23, Some("acct-0002"), "fn-a", 7.0),
            (day1, 2, None, "fn-a", 100.0),
            (day2, 0, Some("acct-0001"), "fn-b", 4.0),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger.sqlite");
    let location = format!(
        "cloudwatch-metrics://{namespace}?metric=BilledGbSeconds&dimension=accountant_id&driver=lambda_gb_seconds"
    );
    let sources = format!(r#"[{{name = "metrics", location = "{location}"}}]"#);
    let endpoint = common::aws_endpoint();
    let env = [("CURFLOW_EVIDENCE", sources.as_str()), ("CURFLOW_AWS_ENDPOINT_URL", endpoint.as_str())];
    let (from, to) = (day1.to_string(), day2.to_string());
    let out = common::ok(&common::run_curflow(
        &["usage", "ingest", "--from", &from, "--to", &to, "--store", store.to_str().unwrap(), "--format", "json"],
        None,
        &env,
    ));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["tenants"], 2, "{out}");

    let ledger = SqliteStore::open(&store).unwrap();
    let quantities = |day| ledger.usage_day("metrics", day).wait().unwrap().unwrap().1;
    let key = |t: &str| ("lambda_gb_seconds".to_string(), t.to_string());
    let first = quantities(day1);
    assert_eq!(first.get(&key("acct-0001")), Some(&d("3.85")), "{first:?}");
    assert_eq!(first.get(&key("acct-0002")), Some(&d("7")), "{first:?}");
    assert_eq!(first.len(), 2, "the stream without a tenant is skipped: {first:?}");
    let second = quantities(day2);
    assert_eq!(second.get(&key("acct-0001")), Some(&d("4")), "{second:?}");
    assert_eq!(second.len(), 1, "{second:?}");

    // A bad source names what is expected.
    let bad = r#"[{name = "metrics", location = "cloudwatch-metrics://Curflow/App?metric=X"}]"#;
    let failed = common::run_curflow(
        &["usage", "ingest", "--from", &from, "--to", &to, "--store", store.to_str().unwrap()],
        None,
        &[("CURFLOW_EVIDENCE", bad), ("CURFLOW_AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("dimension=TENANT_DIMENSION"), "{stderr}");
}
