//! `backfill` over S3 (moto_server) and a local directory: 12 generated months all stored exactly;
//! an interrupted backfill (stopped half-way, or killed) resumes without duplicates; a second run
//! does nothing; every layout is found, the newest manifest of a period wins, and broken periods
//! are reported (non-zero exit) while the others are processed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use curflow::BillingPeriod;
use curflow::location::{Location, S3Access};
use curflow::process::Processor;
use curflow::process::backfill::{self, BackfillOptions, PeriodStatus};
use curflow::store::{CostStore, SqliteStore};
use curflow_fixtures::{Format, Generated};

fn curflow() -> Command {
    let mut c = common::curflow_command();
    c.env("CURFLOW_MEMORY_LIMIT_MB", "256");
    c
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 12 small CUR 2.0 months (2025-11 .. 2026-10) uploaded under `exports/`.
fn twelve_months(s3: &common::TestS3, bucket: &str, dir: &Path) -> Vec<(BillingPeriod, Generated)> {
    let mut months = Vec::new();
    let mut period = BillingPeriod::new(2025, 11).unwrap();
    for i in 0..12u64 {
        let root = dir.join(format!("m{i:02}"));
        let g = common::generate(&root, Format::Cur2Parquet, 2_000, 100 + i, |o| {
            o.year = period.year();
            o.month = period.month();
            o.tenants = 3 + (i as u32 % 5);
            o.files = Some(2);
        });
        s3.upload_delivery(bucket, "exports/", &root);
        months.push((period, g));
        period = period.next();
    }
    months
}

fn assert_all_stored_exactly(store: &Path, months: &[(BillingPeriod, Generated)]) {
    let s = SqliteStore::open(store).unwrap();
    let periods: Vec<BillingPeriod> = s.periods().wait().unwrap().iter().map(|r| r.period).collect();
    assert_eq!(periods, months.iter().map(|(p, _)| *p).collect::<Vec<_>>());
    for (p, g) in months {
        assert_eq!(common::stored_by_tenant(&s, *p), common::expected_by_tenant(g), "{p}");
        assert_eq!(
            s.period(*p).wait().unwrap().unwrap().version.id,
            common::expected_json(g)["version_id"].as_str().unwrap()
        );
        let groups = common::stored_by_tenant_service_day(store, *p);
        assert_eq!(groups.len(), common::expected_json(g)["by_tenant_service_day"].as_array().unwrap().len(), "{p}");
    }
}

#[test]
fn twelve_months_backfill_stops_half_way_resumes_and_a_second_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-backfill");
    let months = twelve_months(&s3, &bucket, dir.path());
    let store = dir.path().join("s.sqlite");

    // Library run, stopped half-way (--to 2026-04): six months stored.
    let access = s3.runtime.block_on(S3Access::new(&common::aws_settings())).unwrap();
    let processor = Processor::new(common::options()).unwrap().with_s3(access.clone());
    let root = Location::parse(&format!("s3://{bucket}/exports")).unwrap();
    let options = BackfillOptions { from: None, to: Some(BillingPeriod::new(2026, 4).unwrap()), parallel: 3 };
    let mut sqlite = SqliteStore::open(&store).unwrap();
    let summary = backfill::run(&processor, &mut sqlite, &root, Some(&access), &options, None, &|_| {}).wait().unwrap();
    drop(sqlite);
    assert_eq!(summary.rows.len(), 6, "{}", summary.table());
    assert_eq!(summary.count(PeriodStatus::Processed), 6, "{}", summary.table());
    assert_all_stored_exactly(&store, &months[..6]);

    // The CLI resumes: the first six are already stored, the other six are processed.
    let out = curflow()
        .args(["backfill", &format!("s3://{bucket}/exports"), "--parallel", "2", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains("12 period(s): 6 processed, 6 already stored, 0 refused, 0 failed"), "{table}");
    for (p, g) in &months {
        let line = table.lines().find(|l| l.starts_with(&p.to_string())).unwrap_or_else(|| panic!("{p} in {table}"));
        assert!(line.contains(common::expected_json(g)["version_id"].as_str().unwrap()), "{line}");
        let total = common::dec(&common::expected_json(g)["totals"]["unblended_cost"]);
        assert!(line.contains(&format!("{total} USD")), "{line} should show {total}");
    }
    assert_all_stored_exactly(&store, &months);
    let after = common::dump(&store);

    // A second run does nothing: every period "already stored", the store byte-for-byte the same.
    let out = curflow()
        .args(["backfill", &format!("s3://{bucket}/exports/"), "--store", store.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r["status"] == "already_stored"), "{json}");
    assert_eq!(common::dump(&store), after);
}

#[test]
fn a_killed_backfill_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-backfill-kill");
    let months = twelve_months(&s3, &bucket, dir.path());
    let store = dir.path().join("s.sqlite");
    let args = |c: &mut Command| {
        c.args(["backfill", &format!("s3://{bucket}/exports"), "--parallel", "1", "--store", store.to_str().unwrap()]);
    };

    let mut cmd = curflow();
    args(&mut cmd);
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill it once at least two periods are committed (or give up waiting after 120 s).
    let started = Instant::now();
    loop {
        let stored = if store.exists() {
            rusqlite::Connection::open(&store)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM billing_periods", [], |r| r.get::<_, i64>(0)))
                .unwrap_or(0)
        } else {
            0
        };
        if stored >= 2 || child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished_alone = child.try_wait().unwrap().is_some();
    if !finished_alone {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    let committed = SqliteStore::open(&store).unwrap().periods().wait().unwrap().len();
    eprintln!("killed the backfill with {committed} of 12 periods committed (finished alone: {finished_alone})");

    // Whatever was committed is complete; the re-run finishes the rest, no duplicates.
    let mut cmd = curflow();
    args(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_all_stored_exactly(&store, &months);
}

/// Uploads a legacy CSV month in the CREATE_NEW layout under `prefix`: data and manifest in
/// `<report>/<range>/<assembly>/`, the manifest also as the period's current one.
fn upload_assembly(s3: &common::TestS3, bucket: &str, prefix: &str, g: &Generated, assembly: &str) {
    let range = g.manifest_path.parent().unwrap().file_name().unwrap().to_str().unwrap();
    let folder = format!("{prefix}curflow-demo/{range}");
    let mut keys = Vec::new();
    for f in &g.data_files {
        let key = format!("{folder}/{assembly}/{}", f.file_name().unwrap().to_str().unwrap());
        s3.put_file(bucket, &key, f);
        keys.push(serde_json::Value::String(key));
    }
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&g.manifest_path).unwrap()).unwrap();
    m["reportKeys"] = serde_json::Value::Array(keys);
    let bytes = serde_json::to_vec(&m).unwrap();
    s3.put_bytes(bucket, &format!("{folder}/{assembly}/curflow-demo-Manifest.json"), bytes.clone());
    s3.put_bytes(bucket, &format!("{folder}/curflow-demo-Manifest.json"), bytes);
}

#[test]
fn every_layout_is_found_the_newest_manifest_wins_and_broken_periods_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-backfill-mixed");
    let month_of = |name: &str, format: Format, month: u32, seed: u64| {
        common::generate(&dir.path().join(name), format, 1_500, seed, |o| {
            o.month = month;
            o.files = Some(2);
        })
    };
    // 2026-08: legacy CSV with two assemblies; the second (newer) must win.
    let aug_old = month_of("aug-old", Format::LegacyCsv, 8, 1);
    let aug_new = month_of("aug-new", Format::LegacyCsv, 8, 2);
    upload_assembly(&s3, &bucket, "mixed/", &aug_old, "asm-1");
    std::thread::sleep(Duration::from_millis(1_100));
    upload_assembly(&s3, &bucket, "mixed/", &aug_new, "asm-2");
    // 2026-09: legacy Parquet (Athena layout). 2026-10: CUR 2.0.
    let sep = month_of("sep", Format::LegacyParquet, 9, 3);
    s3.upload_delivery(&bucket, "mixed/", &dir.path().join("sep"));
    let oct = month_of("oct", Format::Cur2Parquet, 10, 4);
    s3.upload_delivery(&bucket, "mixed/", &dir.path().join("oct"));
    // 2026-07: a manifest that is not JSON (bad input). 2026-06: a data file missing (retryable).
    s3.put_bytes(&bucket, "mixed/curflow-demo/20260701-20260801/curflow-demo-Manifest.json", b"{oops".to_vec());
    let jun = month_of("jun", Format::LegacyCsv, 6, 5);
    s3.upload_delivery(&bucket, "mixed/", &dir.path().join("jun"));
    let jun_key = jun.data_files[1].strip_prefix(dir.path().join("jun")).unwrap().to_str().unwrap().to_string();
    s3.delete(&bucket, &format!("mixed/{jun_key}"));

    let store = dir.path().join("s.sqlite");
    let run = |extra: &[&str]| {
        curflow()
            .args(["backfill", &format!("s3://{bucket}/mixed/"), "--store", store.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(4), "a retryable failure is the worst: exit 4\n{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains("5 period(s): 3 processed, 0 already stored, 0 refused, 2 failed"), "{table}");
    let line =
        |p: &str| table.lines().find(|l| l.starts_with(p)).unwrap_or_else(|| panic!("{p} in {table}")).to_string();
    assert!(line("2026-06").contains("failed") && line("2026-06").contains("does not exist"), "{table}");
    assert!(line("2026-07").contains("failed") && line("2026-07").contains("not valid manifest JSON"), "{table}");
    assert!(line("2026-08").contains(common::expected_json(&aug_new)["version_id"].as_str().unwrap()), "{table}");

    let s = SqliteStore::open(&store).unwrap();
    for (p, g) in [(8, &aug_new), (9, &sep), (10, &oct)] {
        let period = BillingPeriod::new(2026, p).unwrap();
        assert_eq!(common::stored_by_tenant(&s, period), common::expected_by_tenant(g), "{period}");
    }
    assert!(s.period(BillingPeriod::new(2026, 6).unwrap()).wait().unwrap().is_none());

    // Restricted to the good periods: nothing to do, exit 0.
    let out = run(&["--from", "2026-08", "--to", "2026-10"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 period(s): 0 processed, 3 already stored"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_local_directory_is_backfilled_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let mut months = Vec::new();
    for (i, month) in [7u32, 8, 9].into_iter().enumerate() {
        let out: PathBuf = dir.path().join(format!("g{i}"));
        let g = common::generate(&out, Format::LegacyParquet, 1_500, 40 + i as u64, |o| o.month = month);
        copy_tree(&out, &root);
        months.push((BillingPeriod::new(2026, month).unwrap(), g));
    }
    let store = dir.path().join("s.sqlite");
    let out = curflow()
        .args(["backfill", root.to_str().unwrap(), "--store", store.to_str().unwrap(), "--parallel", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 period(s): 3 processed"), "{}", text(&out));
    assert_all_stored_exactly(&store, &months);
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&p, &target);
        } else if p.file_name().unwrap() != "expected.json" {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(&p, &target).unwrap();
        }
    }
}
