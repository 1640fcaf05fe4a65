//! Redelivery storms through the Lambda handler against S3 (moto_server): the same manifest event
//! 5 times, a data-file event, a restated month with fewer tenants, the older version's event
//! arriving after the newer one, and an overwrite caught half-way. The store is checked exactly
//! after every event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use curflow::lambda::{Action, Handler, Response};
use curflow::store::SqliteStore;
use curflow::{BillingPeriod, ErrorClass};
use curflow_fixtures::{Format, Generated};

const PERIOD_FOLDER: &str = "storm/curflow-demo/20261001-20261101";

fn period() -> BillingPeriod {
    BillingPeriod::new(2026, 10).unwrap()
}

/// Uploads a generated month in the legacy CREATE_NEW layout: data and manifest in
/// `<period>/<assembly>/`, and the same manifest as the period's current one in `<period>/`.
fn upload_assembly(s3: &common::TestS3, bucket: &str, generated: &Generated, assembly: &str) {
    let mut keys = Vec::new();
    for file in &generated.data_files {
        let key = format!("{PERIOD_FOLDER}/{assembly}/{}", file.file_name().unwrap().to_str().unwrap());
        s3.put_file(bucket, &key, file);
        keys.push(serde_json::Value::String(key));
    }
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&generated.manifest_path).unwrap()).unwrap();
    manifest["reportKeys"] = serde_json::Value::Array(keys);
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    s3.put_bytes(bucket, &format!("{PERIOD_FOLDER}/{assembly}/curflow-demo-Manifest.json"), bytes.clone());
    s3.put_bytes(bucket, &format!("{PERIOD_FOLDER}/curflow-demo-Manifest.json"), bytes);
}

fn assert_store_holds(store: &Path, generated: &Generated) {
    let s = SqliteStore::open(store).unwrap();
    assert_eq!(common::stored_by_tenant(&s, period()), common::expected_by_tenant(generated));
    let version = curflow::store::CostStore::period(&s, period()).wait().unwrap().unwrap().version.id;
    assert_eq!(version, common::expected_json(generated)["version_id"].as_str().unwrap());
}

fn single(response: &Response) -> &curflow::lambda::Outcome {
    assert_eq!(response.status, "ok", "{response:?}");
    assert_eq!(response.results.len(), 1, "{response:?}");
    &response.results[0]
}

/// S3 keeps whole seconds in `Last-Modified`: let the clock move before the next delivery.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1_100));
}

#[test]
fn a_storm_of_duplicate_late_and_restated_deliveries_leaves_exactly_the_newest_month() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-storm");
    let v1 = common::generate(&dir.path().join("v1"), Format::LegacyCsv, 6_000, 1, |o| o.tenants = 7);
    let v2 = common::generate(&dir.path().join("v2"), Format::LegacyCsv, 2_000, 9, |o| o.tenants = 3);
    let store = dir.path().join("s.sqlite");
    let handler = s3.runtime.block_on(Handler::new(common::s3_config(&store))).unwrap();
    let handle =
        |event: &str| s3.runtime.block_on(handler.handle(&common::event_fixture(event, &bucket), Utc::now())).unwrap();

    upload_assembly(&s3, &bucket, &v1, "asm-v1");

    // The same manifest event 5 times: processed once, then settled from the store, unchanged.
    let first = handle("s3-objectcreated-storm-current.json");
    assert_eq!(single(&first).action, Action::Processed);
    assert_store_holds(&store, &v1);
    let after_v1 = common::dump(&store);
    for _ in 0..4 {
        let again = handle("s3-objectcreated-storm-current.json");
        assert_eq!(single(&again).action, Action::Unchanged);
        assert_eq!(single(&again).rows_read, None, "a duplicate reads no data");
        assert_eq!(common::dump(&store), after_v1);
    }
    // The assemblyId folder's copy of the same manifest: same version, unchanged.
    assert_eq!(single(&handle("s3-objectcreated-storm-asm-v1.json")).action, Action::Unchanged);
    // A data-file event is ignored.
    let data = handle("s3-objectcreated-storm-data-file.json");
    assert_eq!(single(&data).action, Action::Ignored);
    assert_eq!(common::dump(&store), after_v1);

    // A restatement with fewer tenants (new assembly): replaces the whole month.
    next_second();
    upload_assembly(&s3, &bucket, &v2, "asm-v2");
    let restated = handle("s3-objectcreated-storm-asm-v2.json");
    let o = single(&restated);
    assert_eq!(o.action, Action::Processed);
    assert!(o.detail.as_deref().unwrap().contains(common::expected_json(&v1)["version_id"].as_str().unwrap()));
    assert_store_holds(&store, &v2);
    let s = SqliteStore::open(&store).unwrap();
    assert!(common::stored_by_tenant(&s, period()).keys().flatten().all(|t| t.as_str() <= "acct-0003"));
    let after_v2 = common::dump(&store);

    // The older version's event arrives late: the current manifest is v2, nothing changes.
    let late = handle("s3-objectcreated-storm-asm-v1.json");
    assert_eq!(single(&late).action, Action::Unchanged);
    assert_eq!(single(&late).version.as_deref(), common::expected_json(&v2)["version_id"].as_str());
    assert_eq!(common::dump(&store), after_v2);
    for _ in 0..2 {
        assert_eq!(single(&handle("s3-objectcreated-storm-current.json")).action, Action::Unchanged);
    }
    assert_eq!(common::dump(&store), after_v2);

    // Processing the old assembly's manifest explicitly is refused: older never replaces newer.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_curflow"))
        .args(["process", &format!("s3://{bucket}/{PERIOD_FOLDER}/asm-v1/curflow-demo-Manifest.json")])
        .args(["--store", store.to_str().unwrap()])
        .env("CURFLOW_AWS_ENDPOINT_URL", common::aws_endpoint())
        .env_remove("CURFLOW_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::dump(&store), after_v2);
    assert_store_holds(&store, &v2);
}

#[test]
fn an_overwrite_in_progress_is_retried_not_half_read() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-overwrite");
    let o1 = common::generate(&dir.path().join("o1"), Format::LegacyCsv, 4_000, 21, |o| o.tenants = 6);
    let o2 = common::generate(&dir.path().join("o2"), Format::LegacyCsv, 3_000, 22, |o| o.tenants = 4);
    let o3 = common::generate(&dir.path().join("o3"), Format::LegacyCsv, 3_500, 23, |o| o.tenants = 5);
    let store = dir.path().join("s.sqlite");
    let handler = s3.runtime.block_on(Handler::new(common::s3_config(&store))).unwrap();
    let handle = || {
        s3.runtime
            .block_on(handler.handle(&common::event_fixture("s3-objectcreated-overwrite.json", &bucket), Utc::now()))
    };
    let put = |root: &str, files: &[std::path::PathBuf]| {
        for file in files {
            let rel = file.strip_prefix(dir.path().join(root)).unwrap().to_str().unwrap();
            s3.put_file(&bucket, &format!("overwrite/{rel}"), file);
        }
    };

    s3.upload_delivery(&bucket, "overwrite/", &dir.path().join("o1"));
    assert_eq!(single(&handle().unwrap()).action, Action::Processed);
    assert_store_holds(&store, &o1);
    // A duplicate of the stored version is settled from the store (no HEAD, no read).
    assert_eq!(single(&handle().unwrap()).action, Action::Unchanged);
    let before = common::dump(&store);

    // OVERWRITE_REPORT: AWS rewrites the data files in place, then the manifest. Delivery o2
    // lands (its event is delayed); while o3's data files are being written over it, o2's late
    // event finds files newer than o2's manifest: a retryable error, the store untouched.
    next_second();
    put("o2", &o2.data_files);
    put("o2", std::slice::from_ref(&o2.manifest_path));
    next_second();
    put("o3", &o3.data_files);
    let err = handle().unwrap_err();
    assert_eq!(err.class(), ErrorClass::External, "{err}");
    assert!(err.to_string().contains("retry later"), "{err}");
    assert_eq!(common::dump(&store), before);

    // o3's manifest lands: the (retried or new) event processes o3, never a mix of o2 and o3.
    put("o3", std::slice::from_ref(&o3.manifest_path));
    assert_eq!(single(&handle().unwrap()).action, Action::Processed);
    assert_store_holds(&store, &o3);

    // A new version whose manifest lists a file that is not there (yet): retryable, store untouched.
    let after = common::dump(&store);
    let rel = o3.data_files[1].strip_prefix(dir.path().join("o3")).unwrap().to_str().unwrap();
    s3.delete(&bucket, &format!("overwrite/{rel}"));
    next_second();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&o3.manifest_path).unwrap()).unwrap();
    manifest["assemblyId"] = "o4-assembly".into();
    let rel = o3.manifest_path.strip_prefix(dir.path().join("o3")).unwrap().to_str().unwrap();
    s3.put_bytes(&bucket, &format!("overwrite/{rel}"), serde_json::to_vec(&manifest).unwrap());
    let err = handle().unwrap_err();
    assert_eq!(err.class(), ErrorClass::External, "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(common::dump(&store), after);
}
