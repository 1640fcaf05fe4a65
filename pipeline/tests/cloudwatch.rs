//! CloudWatch Logs as evidence, through the real AWS SDK against the local moto_server: logs put
//! with `PutLogEvents` and read back through `cloudwatch://<group>` give exactly the attribution
//! the same lines give from a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::io::Write;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::{Datelike, Days, NaiveDate, Utc};
use curflow::attribute::sources::EvidenceSource;
use curflow::attribute::{AttributionInputs, AttributionOptions};
use curflow::discover::discover;
use curflow::process::Processor;
use curflow::store::{CostStore, SqliteStore};
use curflow::{BillingPeriod, aws};
use curflow_fixtures::Format;

/// (timestamp ms, message) of the Lambda log group: per evidence day, acct-0001 makes 3 invocations
/// of 1,000 ms at 1,024 MB and acct-0002 one; each REPORT is delivered twice (at-least-once).
fn lambda_events(days: &[NaiveDate]) -> Vec<(i64, String)> {
    let mut events = Vec::new();
    let mut n = 0;
    for day in days {
        let base = day.and_hms_opt(1, 0, 0).unwrap().and_utc().timestamp_millis();
        for (tenant, count) in [("acct-0001", 3), ("acct-0002", 1)] {
            for _ in 0..count {
                n += 1;
                let id = format!("00000000-0000-4000-8000-{n:012}");
                let t = base + n * 10;
                let ts = chrono::DateTime::from_timestamp_millis(t).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                events.push((t, format!("{ts}\t{id}\tINFO\t{{\"accountant_id\":\"{tenant}\",\"msg\":\"ok\"}}")));
                for k in 1..=2 {
                    events.push((t + k, format!("REPORT RequestId: {id}\tDuration: 999.10 ms\tBilled Duration: 1000 ms\tMemory Size: 1024 MB\tMax Memory Used: 70 MB\t")));
                }
            }
        }
    }
    events
}

async fn put_events(group: &str, events: &[(i64, String)]) {
    let config = aws::sdk_config(&common::aws_settings()).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&config);
    client.create_log_group().log_group_name(group).send().await.unwrap();
    client.create_log_stream().log_group_name(group).log_stream_name("2026/stream-a").send().await.unwrap();
    // Two batches, so reading crosses a page boundary of the server as well as ours.
    for chunk in events.chunks(events.len().div_ceil(2)) {
        let batch: Vec<InputLogEvent> =
            chunk.iter().map(|(t, m)| InputLogEvent::builder().timestamp(*t).message(m).build().unwrap()).collect();
        let out = client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("2026/stream-a")
            .set_log_events(Some(batch))
            .send()
            .await
            .unwrap();
        assert!(out.rejected_log_events_info().is_none(), "server rejected events: {out:?}");
    }
}

fn attributed_rows(store: &SqliteStore, period: BillingPeriod) -> Vec<String> {
    let mut rows: Vec<String> = store
        .cost_lines(period)
        .wait()
        .unwrap()
        .iter()
        .map(|l| format!("{:?}|{:?}|{:?}|{:?}", l.key, l.amounts, l.attribution, l.unattributed_reason))
        .collect();
    rows.sort();
    rows
}

#[test]
fn cloudwatch_log_group_gives_the_same_attribution_as_the_exported_file() {
    // CloudWatch accepts events of the last 14 days only: use the week before today, within the
    // month of yesterday.
    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);
    let days: Vec<NaiveDate> =
        (1..=7u64).map(|k| today - Days::new(k)).filter(|d| d.month() == yesterday.month()).rev().collect();
    let events = lambda_events(&days);

    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("b"), Format::LegacyParquet, 20_000, 3, |o| {
        o.tenants = 3;
        o.year = yesterday.year();
        o.month = yesterday.month();
    });
    let period = BillingPeriod::new(yesterday.year(), yesterday.month()).unwrap();
    let file = dir.path().join("lambda.log");
    let mut f = std::fs::File::create(&file).unwrap();
    for (t, m) in &events {
        // The export layout: an RFC 3339 timestamp, a space, the message.
        let ts = chrono::DateTime::from_timestamp_millis(*t).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        writeln!(f, "{ts} {m}").unwrap();
    }
    drop(f);

    let runtime = common::rt();
    let group = format!("/aws/lambda/{}", common::unique_name("api-handler"));
    runtime.block_on(put_events(&group, &events));

    let delivery = &discover(std::slice::from_ref(&g.manifest_path)).unwrap()[0];
    let run = |source: EvidenceSource, store_path: &std::path::Path| {
        let inputs = AttributionInputs::load(&AttributionOptions {
            evidence: vec![source],
            tenant_key: "accountant_id".into(),
            window: Some((period.first_day(), period.last_day())),
            aws: common::aws_settings(),
            ..AttributionOptions::default()
        })
        .unwrap();
        assert_eq!(inputs.report.lambda_invocations_joined, 4 * days.len() as u64);
        assert_eq!(inputs.report.lambda_duplicate_reports, 4 * days.len() as u64);
        let processor = Processor::new(common::options()).unwrap().with_attribution(inputs);
        let mut store = SqliteStore::open(store_path).unwrap();
        runtime.block_on(processor.process(&mut store, delivery, &|_| {})).unwrap();
        store
    };
    let from_file = run(EvidenceSource::Path(file), &dir.path().join("file.sqlite"));
    let source: EvidenceSource = format!("cloudwatch://{group}").parse().unwrap();
    let from_cloudwatch = run(source, &dir.path().join("cw.sqlite"));

    let (a, b) = (attributed_rows(&from_file, period), attributed_rows(&from_cloudwatch, period));
    assert_eq!(a, b, "CloudWatch and file evidence must attribute identically");
    let lambda_parts = from_cloudwatch
        .cost_lines(period)
        .wait()
        .unwrap()
        .into_iter()
        .filter(|l| l.attribution.as_ref().is_some_and(|a| a.rule == "lambda-duration"))
        .count();
    assert!(lambda_parts > 0, "evidence days {days:?} attributed no Lambda GB-second line");
}

#[test]
fn a_missing_log_group_is_a_clear_error_naming_it() {
    let group = common::unique_name("/aws/lambda/absent");
    let source: EvidenceSource = format!("cloudwatch://{group}").parse().unwrap();
    let err = AttributionInputs::load(&AttributionOptions {
        evidence: vec![source],
        tenant_key: "accountant_id".into(),
        aws: common::aws_settings(),
        ..AttributionOptions::default()
    })
    .err()
    .expect("reading a missing log group must fail");
    let text = err.to_string();
    assert!(text.contains("FilterLogEvents") && text.contains(&group), "{text}");
    assert!(text.contains("ResourceNotFound"), "{text}");
}
