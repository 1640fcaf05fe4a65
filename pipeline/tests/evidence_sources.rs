//! Evidence sources the generator does not write: a Parquet S3 Inventory, agent runtime usage logs
//! with a session map, and the clear errors when a needed map is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use curflow::attribute::{AttributionInputs, AttributionOptions};
use parquet::arrow::ArrowWriter;

fn options(evidence: &std::path::Path) -> AttributionOptions {
    AttributionOptions {
        evidence: vec![evidence.to_path_buf().into()],
        tenant_key: "accountant_id".into(),
        ..AttributionOptions::default()
    }
}

/// An inventory snapshot in Parquet: `dest/docs/daily/2026-10-05T01-00Z/manifest.json` and
/// `dest/docs/daily/data/part-0.parquet`.
fn parquet_inventory(root: &std::path::Path) {
    let data = root.join("docs/daily/data");
    std::fs::create_dir_all(&data).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("bucket", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("version_id", DataType::Utf8, true),
        Field::new("size", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["docs"; 4])),
            Arc::new(StringArray::from(vec![
                "clients/acct-1/a.pdf",
                "clients/acct-1/b c.pdf",
                "clients/acct-2/x.pdf",
                "templates/t.docx",
            ])),
            Arc::new(StringArray::from(vec![None::<&str>; 4])),
            Arc::new(Int64Array::from(vec![Some(100), Some(50), Some(30), Some(7)])),
        ],
    )
    .unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(data.join("part-0.parquet")).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let snapshot = root.join("docs/daily/2026-10-05T01-00Z");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(
        snapshot.join("manifest.json"),
        r#"{"sourceBucket":"docs","destinationBucket":"arn:aws:s3:::inv","version":"2016-11-30",
            "creationTimestamp":"1791162000000","fileFormat":"Parquet",
            "fileSchema":"message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional int64 size; }",
            "files":[{"key":"docs/daily/data/part-0.parquet","size":1,"MD5checksum":"00000000000000000000000000000000"}]}"#,
    )
    .unwrap();
}

#[test]
fn parquet_inventory_counts_bytes_per_tenant_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("inventory");
    parquet_inventory(&root);
    let map = dir.path().join("prefixes.toml");
    std::fs::write(&map, "[[template]]\nbucket = \"docs\"\npattern = \"clients/{tenant}/\"\n").unwrap();

    // Without the prefix map the inventory cannot be read: a clear error naming the manifest.
    let err = AttributionInputs::load(&options(&root)).err().expect("needs --s3-prefixes").to_string();
    assert!(err.contains("manifest.json") && err.contains("--s3-prefixes"), "{err}");

    let inputs = AttributionInputs::load(&AttributionOptions { s3_prefixes: Some(map), ..options(&root) }).unwrap();
    assert_eq!(inputs.report.s3_inventory_snapshots, 1);
    assert_eq!(inputs.report.s3_objects, 4);
    assert_eq!(inputs.report.s3_unmapped_objects, 1, "templates/ maps to no tenant");
}

#[test]
fn agent_usage_records_need_a_session_map_and_count_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("agent.log");
    std::fs::write(
        &logs,
        concat!(
            r#"{"event_timestamp":1791162000000,"attributes":{"session.id":"s-1"},"metrics":{"agent.runtime.vcpu.hours.used":0.25,"agent.runtime.memory.gb_hours.used":"0.5"}}"#, "\n",
            r#"{"timestamp":"2026-10-05T10:00:00Z","session_id":"s-1","event":"tool_call"}"#, "\n",
            r#"{"timestamp":"2026-10-05T11:00:00Z","sessionId":"s-2","vcpu_hours":1}"#, "\n",
        ),
    )
    .unwrap();
    let sessions = dir.path().join("sessions.csv");
    std::fs::write(&sessions, "session_id,tenant\ns-1,acct-1\ns-2,acct-2\n").unwrap();
    let without = AttributionInputs::load(&options(&logs)).unwrap();
    assert_eq!(without.report.agent_records, 0, "no session map: agent records are not read");
    let with =
        AttributionInputs::load(&AttributionOptions { agent_sessions: Some(sessions), ..options(&logs) }).unwrap();
    assert_eq!(with.report.agent_records, 3);
    assert_eq!(with.report.sources[0].malformed, 0);
}

#[test]
fn firehose_subscription_payloads_give_the_same_evidence_as_the_export() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let base = 1_790_812_800_000_i64; // 2026-10-01T12:00:00Z
    let mut events = Vec::new();
    for n in 0..20_i64 {
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let tenant = if n % 4 == 0 { "acct-2" } else { "acct-1" };
        events.push((base + n * 10, format!("{{\"accountant_id\":\"{tenant}\",\"requestId\":\"{id}\"}}")));
        events.push((base + n * 10 + 5, format!("REPORT RequestId: {id}\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 1024 MB\tMax Memory Used: 70 MB\t")));
    }
    // The export layout.
    let export = dir.path().join("export.log");
    let mut f = std::fs::File::create(&export).unwrap();
    for (t, m) in &events {
        let ts = chrono::DateTime::from_timestamp_millis(*t).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        writeln!(f, "{ts} {m}").unwrap();
    }
    drop(f);
    // Firehose to S3: gzip, a control message, then data payloads concatenated without separators.
    let firehose = dir.path().join("firehose-1");
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(&firehose).unwrap(), flate2::Compression::default());
    gz.write_all(
        br#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":0,"message":"CWL CONTROL MESSAGE"}]}"#,
    )
    .unwrap();
    for chunk in events.chunks(7) {
        let log_events: Vec<serde_json::Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, (t, m))| serde_json::json!({"id": i.to_string(), "timestamp": t, "message": m}))
            .collect();
        let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": "/aws/lambda/api", "logStream": "s", "subscriptionFilters": ["f"], "logEvents": log_events});
        gz.write_all(payload.to_string().as_bytes()).unwrap();
    }
    gz.finish().unwrap();

    assert_eq!(
        curflow::attribute::sources::classify(&firehose).unwrap(),
        curflow::attribute::sources::FileKind::SubscriptionPayload
    );
    let from_export = AttributionInputs::load(&options(&export)).unwrap();
    let from_firehose = AttributionInputs::load(&options(&firehose)).unwrap();
    assert_eq!(from_export.report.lambda_invocations_joined, 20);
    assert_eq!(from_firehose.report.lambda_invocations_joined, 20);
    assert_eq!(from_firehose.report.sources[0].lines, 40, "every log event became one line");
    assert_eq!(from_firehose.report.sources[0].malformed, 0);
}
