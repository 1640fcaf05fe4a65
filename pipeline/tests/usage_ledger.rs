//! The usage ledger's contract on both stores (SQLite file, DynamoDB on the local AWS server): a
//! (source, day) is replaced as a unit, re-ingesting the same content writes nothing, concurrent
//! ingests of one day end with exactly one of them, a reader running beside them only ever sees
//! one complete version, and ingestion checkpoints round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;
use common::dec;
use common::stores::Kind;
use rust_decimal::Decimal;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use chrono::{NaiveDate, TimeZone, Utc};
use curflow::money::testing::d;
use curflow::store::dynamodb::DynamoStore;
use curflow::store::ledger::{DayOutcome, DayQuantities, IngestCheckpoint, Provenance, UsageDay, UsageLedger};
use curflow::store::{SqliteStore, Store};

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, n).unwrap()
}

/// `tenants` tenants with quantity `base + i/1000` GB-seconds each, plus usage without a tenant.
fn quantities(tenants: u32, base: i64) -> DayQuantities {
    let mut q: DayQuantities = (0..tenants)
        .map(|i| (("lambda_gb_seconds".to_string(), format!("acct-{i:05}")), d(&format!("{base}.{i:03}"))))
        .collect();
    q.insert(("lambda_invocations".into(), "UNATTRIBUTED".into()), d("17"));
    q
}

fn usage_day(source: &str, n: u32, q: &DayQuantities) -> UsageDay {
    let provenance = Provenance {
        location: format!("lambda-logs file:///logs/{source}"),
        items: vec![format!("2026-10-{n:02}.log.gz")],
        items_total: 1,
        read_from: Some(Utc.from_utc_datetime(&day(n).and_hms_opt(0, 0, 0).unwrap())),
        read_to: Some(Utc.from_utc_datetime(&day(n + 1).and_hms_opt(0, 0, 0).unwrap())),
        lines: 1234,
        bytes: 56_789,
        malformed: 1,
        reader: "curflow test".into(),
    };
    UsageDay::new(source, day(n), q, provenance)
}

fn replace(store: &mut dyn Store, record: &UsageDay, q: &DayQuantities) -> DayOutcome {
    store.replace_usage_day(record, q).wait().unwrap()
}

/// Replace, re-ingest, replace again, list, read back.
fn a_day_is_replaced_as_a_unit_and_reingesting_it_is_a_no_op(kind: &Kind) {
    let mut store = kind.open();
    assert!(store.usage_day("lambda", day(3)).wait().unwrap().is_none());
    let first = quantities(5, 10);
    let record = usage_day("lambda", 3, &first);
    assert_eq!(replace(&mut *store, &record, &first), DayOutcome::Replaced { previous: None });
    let (got, got_q) = store.usage_day("lambda", day(3)).wait().unwrap().unwrap();
    assert_eq!(got_q, first);
    assert_eq!((got.version.as_str(), got.rows, &got.provenance), (record.version.as_str(), 6, &record.provenance));

    // The same evidence read again (equal content, other scale and ingest time): nothing written.
    let again: DayQuantities = first.iter().map(|(k, v)| (k.clone(), v * d("1.000"))).collect();
    assert_eq!(replace(&mut *store, &usage_day("lambda", 3, &again), &again), DayOutcome::Unchanged);
    assert_eq!(store.usage_day("lambda", day(3)).wait().unwrap().unwrap().0.ingested_at, got.ingested_at);

    // Late logs: the day is replaced, not added to; fewer tenants than before leave none behind.
    let late = quantities(3, 20);
    let late_record = usage_day("lambda", 3, &late);
    assert_eq!(
        replace(&mut *store, &late_record, &late),
        DayOutcome::Replaced { previous: Some(record.version.clone()) }
    );
    assert_eq!(store.usage_day("lambda", day(3)).wait().unwrap().unwrap().1, late);

    // Other sources and days are their own units.
    let other = quantities(2, 1);
    replace(&mut *store, &usage_day("dynamodb", 3, &other), &other);
    replace(&mut *store, &usage_day("lambda", 4, &other), &other);
    let listed: Vec<(String, NaiveDate)> =
        store.usage_days(day(3), day(3)).wait().unwrap().into_iter().map(|u| (u.source, u.day)).collect();
    assert_eq!(listed, [("dynamodb".to_string(), day(3)), ("lambda".to_string(), day(3))]);
    assert_eq!(store.usage_days(day(1), day(31)).wait().unwrap().len(), 3);
    assert_eq!(store.usage_day("lambda", day(3)).wait().unwrap().unwrap().1, late);
}

on_both_stores!(
    a_day_is_replaced_as_a_unit_and_reingesting_it_is_a_no_op:
        a_day_is_replaced_as_a_unit_on_sqlite,
        a_day_is_replaced_as_a_unit_on_dynamodb
);

/// Four ingests of the same day with different content start together while a reader reads in a
/// loop: the day ends with exactly one of the four, and every read was one complete version.
fn concurrent_ingests_end_with_one_version_and_readers_never_see_a_mix(kind: &Kind) {
    // 12,000 tenants: several DynamoDB items per version, so a torn read would show.
    let versions: Vec<DayQuantities> = (0..4).map(|i| quantities(12_000, i + 1)).collect();
    drop(kind.open());
    let start = Arc::new(Barrier::new(versions.len() + 1));
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let reader = {
            let (start, done, versions) = (Arc::clone(&start), Arc::clone(&done), &versions);
            let store = kind.open();
            scope.spawn(move || {
                start.wait();
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    if let Some((_, q)) = store.usage_day("lambda", day(7)).wait().unwrap() {
                        assert!(versions.contains(&q), "a read saw a mix of versions ({} rows)", q.len());
                        reads += 1;
                    }
                }
                reads
            })
        };
        let writers: Vec<_> = versions
            .iter()
            .map(|q| {
                let (start, mut store) = (Arc::clone(&start), kind.open());
                scope.spawn(move || {
                    let record = usage_day("lambda", 7, q);
                    start.wait();
                    store.replace_usage_day(&record, q).wait().unwrap()
                })
            })
            .collect();
        for w in writers {
            assert!(matches!(w.join().unwrap(), DayOutcome::Replaced { .. }));
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
    });
    let store = kind.open();
    let (record, q) = store.usage_day("lambda", day(7)).wait().unwrap().unwrap();
    let winner = versions.iter().position(|v| *v == q).expect("the day holds one of the ingests, whole");
    assert_eq!(record.version, usage_day("lambda", 7, &versions[winner]).version);
    assert_eq!(store.usage_days(day(7), day(7)).wait().unwrap().len(), 1);
    if let Kind::Dynamo(table) = kind {
        assert_only_the_winner_is_stored(table, &record.version);
    }
}

/// On DynamoDB the losers' quantity items are deleted: the day's partition holds the chunks the
/// pointer names and nothing else.
fn assert_only_the_winner_is_stored(table: &str, version: &str) {
    let client = DynamoStore::connect(table, &common::aws_settings()).wait().unwrap().client().clone();
    let items = client.scan().table_name(table).send().wait().unwrap().items.unwrap_or_default();
    let chunk_tags: std::collections::BTreeSet<String> = items
        .iter()
        .filter(|i| i["accountant_id"].as_s().unwrap() == "_ledger#lambda#2026-10-07")
        .map(|i| i["sk"].as_s().unwrap().split('#').nth(1).unwrap().to_string())
        .collect();
    let pointer = items.iter().find(|i| i["sk"].as_s().unwrap() == "day#lambda#2026-10-07").unwrap();
    assert_eq!(pointer["version"].as_s().unwrap(), version);
    assert_eq!(chunk_tags.into_iter().collect::<Vec<_>>(), [pointer["tag"].as_s().unwrap().clone()]);
}

on_both_stores!(
    concurrent_ingests_end_with_one_version_and_readers_never_see_a_mix:
        concurrent_ingests_of_a_day_end_with_one_version_on_sqlite,
        concurrent_ingests_of_a_day_end_with_one_version_on_dynamodb
);

fn checkpoints_round_trip_per_source(kind: &Kind) {
    let mut store = kind.open();
    assert!(store.usage_checkpoint("lambda").wait().unwrap().is_none());
    let at = Utc.with_ymd_and_hms(2026, 10, 8, 3, 30, 0).unwrap();
    let mut checkpoint =
        IngestCheckpoint { source: "lambda".into(), done_through: day(5), target: day(7), updated_at: at };
    store.put_usage_checkpoint(&checkpoint).wait().unwrap();
    checkpoint.done_through = day(6);
    store.put_usage_checkpoint(&checkpoint).wait().unwrap();
    assert_eq!(store.usage_checkpoint("lambda").wait().unwrap(), Some(checkpoint));
    assert!(store.usage_checkpoint("dynamodb").wait().unwrap().is_none());
}

on_both_stores!(
    checkpoints_round_trip_per_source:
        checkpoints_round_trip_on_sqlite,
        checkpoints_round_trip_on_dynamodb
);

// ---------------------------------------------------------------------------------------------
// `curflow usage ingest` and `process` from the ledger, end to end through the binary.

/// Per-tenant attributed amounts of October 2026 in a SQLite store.
fn attributed_by_tenant(store: &Path) -> std::collections::BTreeMap<String, curflow::Amounts> {
    use curflow::aggregate::LineSource;
    use curflow::store::CostStore;
    let lines = SqliteStore::open(store).unwrap().cost_lines(curflow::BillingPeriod::new(2026, 10).unwrap()).wait();
    let mut out: std::collections::BTreeMap<String, curflow::Amounts> = std::collections::BTreeMap::new();
    for l in lines.unwrap().iter().filter(|l| l.source() == LineSource::Attributed) {
        out.entry(l.key.tenant.as_deref().unwrap().to_string()).or_default().add(&l.amounts).unwrap();
    }
    out
}

/// The distinct reasons of lines left waiting for the ledger, in order.
fn waiting_days(store: &Path) -> Vec<String> {
    use curflow::store::CostStore;
    let lines = SqliteStore::open(store).unwrap().cost_lines(curflow::BillingPeriod::new(2026, 10).unwrap()).wait();
    let reasons: std::collections::BTreeSet<String> = lines
        .unwrap()
        .into_iter()
        .filter_map(|l| l.unattributed_reason.filter(|r| r.starts_with(curflow::usage::NO_EVIDENCE)))
        .collect();
    reasons.into_iter().collect()
}

/// Total size of the files under `dir`.
fn walk_sizes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk_sizes(&p) } else { p.metadata().unwrap().len() })
        .sum()
}

fn ingest_rows(out: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(out).unwrap();
    doc["rows"].as_array().unwrap().clone()
}

/// The generated month's evidence ingested into the ledger a day at a time, then `process`
/// without `--evidence`: the split equals the one `process --evidence` makes from the same files,
/// tenant by tenant, every measure. Re-ingesting is a no-op; an interrupted run resumes after its
/// checkpoint.
#[test]
fn process_attributes_from_the_ingested_ledger_as_from_the_evidence_itself() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), curflow_fixtures::Format::LegacyParquet, 20_000, 5, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let (manifest, prefixes) = (g.manifest_path.to_str().unwrap(), ev.prefix_map.to_str().unwrap());
    let sources = format!(r#"[{{name = "app-logs", location = "{}"}}]"#, ev.dir.display());
    let env = [("CURFLOW_EVIDENCE", sources.as_str())];
    let ledger = dir.path().join("ledger.sqlite");
    let l = ledger.to_str().unwrap();
    let ingest = ["usage", "ingest", "--from", "2026-10-01", "--to", "2026-10-31", "--s3-prefixes", prefixes];

    let first = ingest_rows(&common::ok(&common::run_curflow(
        &[&ingest[..], &["--store", l, "--format", "json"]].concat(),
        None,
        &env,
    )));
    assert_eq!(first.len(), 31, "one row per day");
    assert!(first.iter().all(|r| r["outcome"] == "replaced"), "{first:?}");
    assert!(first.iter().any(|r| r["tenants"].as_i64().unwrap() == 4), "{first:?}");
    // The bytes read are counted (files as stored): some, and no more than the folder holds.
    let stored_bytes: u64 = walk_sizes(&ev.dir);
    let read_bytes = first[0]["bytes"].as_u64().unwrap();
    assert!(read_bytes > 0 && read_bytes <= stored_bytes, "{read_bytes} of {stored_bytes} bytes");
    let again = ingest_rows(&common::ok(&common::run_curflow(
        &[&ingest[..], &["--store", l, "--format", "json"]].concat(),
        None,
        &env,
    )));
    assert!(again.iter().all(|r| r["outcome"] == "unchanged"), "re-ingesting writes nothing: {again:?}");
    let listed = common::ok(&common::run_curflow(
        &["usage", "days", "--from", "2026-10-01", "--to", "2026-10-31", "--store", l, "--format", "json"],
        None,
        &[],
    ));
    assert_eq!(ingest_rows(&listed).len(), 31);

    common::ok(&common::run_curflow(&["process", manifest, "--store", l], None, &env));
    let direct = dir.path().join("direct.sqlite");
    let d = direct.to_str().unwrap();
    common::ok(&common::run_curflow(
        &["process", manifest, "--store", d, "--evidence", ev.dir.to_str().unwrap(), "--s3-prefixes", prefixes],
        None,
        &[],
    ));
    let (from_ledger, from_files) = (attributed_by_tenant(&ledger), attributed_by_tenant(&direct));
    assert_eq!(from_ledger.len(), 4, "{from_ledger:?}");
    assert_eq!(from_ledger, from_files);
    explain_per_resource_adds_up_to_the_stored_rows(l, d, &env);

    // `backfill` over the bucket splits each period with the ledger too, as `process` does.
    let backfilled = dir.path().join("backfill.sqlite");
    let b = backfilled.to_str().unwrap();
    common::ok(&common::run_curflow(&[&ingest[..], &["--store", b]].concat(), None, &env));
    let bucket = dir.path().join("bucket");
    let backfill = ["backfill", bucket.to_str().unwrap(), "--store", b, "--format", "json"];
    let out = common::ok(&common::run_curflow(&backfill, None, &env));
    assert!(out.contains("\"processed\""), "{out}");
    assert_eq!(attributed_by_tenant(&backfilled), from_files, "backfill splits with the ledger");
    let again = common::ok(&common::run_curflow(&backfill, None, &env));
    assert!(again.contains("\"already_stored\""), "same delivery, same ledger: nothing to do: {again}");

    // A run cut short after 2026-10-20 resumes with the 21st.
    let resumed = dir.path().join("resumed.sqlite");
    SqliteStore::open(&resumed)
        .unwrap()
        .put_usage_checkpoint(&IngestCheckpoint {
            source: "app-logs".into(),
            done_through: day(20),
            target: day(31),
            updated_at: Utc::now(),
        })
        .wait()
        .unwrap();
    let r = resumed.to_str().unwrap();
    let rest = ingest_rows(&common::ok(&common::run_curflow(
        &[&ingest[..], &["--store", r, "--format", "json"]].concat(),
        None,
        &env,
    )));
    let days: Vec<&str> = rest.iter().map(|r| r["day"].as_str().unwrap()).collect();
    assert_eq!(days.first().copied(), Some("2026-10-21"));
    assert_eq!(days.len(), 11);
}

/// `attribution explain` of one tenant, as JSON.
fn explain_json(store: &str, tenant: &str, resources: bool, env: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let mut args = vec!["attribution", "explain", "--period", "2026-10", "--tenant", tenant, "--store", store];
    args.extend(["--format", "json"]);
    if resources {
        args.push("--resources");
    }
    let out = common::run_curflow(&args, None, env);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// Attributed parts are stored at the reader's grain (no operation or resource id), and
/// `explain --resources` splits the stored pool again with the ledger for the per-resource detail,
/// which adds up to the stored rows exactly; from other inputs it refuses rather than differ.
fn explain_per_resource_adds_up_to_the_stored_rows(ledger: &str, direct: &str, env: &[(&str, &str)]) {
    use curflow::aggregate::LineSource;
    use curflow::store::CostStore;
    let store = SqliteStore::open(Path::new(ledger)).unwrap();
    let october = curflow::BillingPeriod::new(2026, 10).unwrap();
    let lines = store.cost_lines(october).wait().unwrap();
    let attributed: Vec<_> = lines.iter().filter(|l| l.source() == LineSource::Attributed).collect();
    assert!(attributed.iter().all(|l| l.key.resource_id.is_empty() && l.key.operation.is_empty()));
    let pool = store.pool_lines(october).wait().unwrap();
    assert!(pool.iter().any(|l| !l.key.resource_id.is_empty()), "the pool keeps its resources");
    let tenant = attributed[0].key.tenant.as_deref().unwrap();
    let rows = explain_json(ledger, tenant, false, env).unwrap();
    let per_resource = explain_json(ledger, tenant, true, env).unwrap();
    let sum = |e: &serde_json::Value| -> Decimal {
        e["rows"].as_array().unwrap().iter().map(|r| dec(&r["amortized_cost"])).sum()
    };
    assert_eq!(dec(&per_resource["attributed_amortized_cost"]), dec(&rows["attributed_amortized_cost"]));
    assert_eq!(sum(&per_resource), sum(&rows));
    assert_eq!(sum(&rows), dec(&rows["attributed_amortized_cost"]));
    let listed = |e: &serde_json::Value| e["rows"].as_array().unwrap().len();
    assert!(listed(&per_resource) >= listed(&rows), "at least one line per stored row");
    assert!(per_resource["rows"].as_array().unwrap().iter().any(|r| r["resource_id"] != ""));
    // The direct store was split from the evidence files, not the ledger: refused, not different.
    let refused = explain_json(direct, tenant, true, env).unwrap_err();
    assert!(refused.contains("other inputs"), "{refused}");
}

/// The deployed flow on SQLite, through the binary: the ledger covers only part of the month when
/// the CUR arrives; the nightly job ingests the rest (re-reading the restated days) and splits the
/// stored month again, which then equals the split from all the evidence; `attribute --period`
/// afterwards changes nothing, and a re-processed delivery keeps the split (no erasure).
#[test]
fn the_nightly_job_completes_the_ledger_and_splits_the_stored_month_again() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), curflow_fixtures::Format::Cur2Parquet, 20_000, 9, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let manifest = g.manifest_path.to_str().unwrap();
    // Every kind of evidence, the S3 prefix map from the configuration (as the function has it).
    let sources = format!(r#"[{{name = "app-logs", location = "{}"}}]"#, ev.dir.display());
    let prefixes = ev.prefix_map.to_str().unwrap();
    let env = [("CURFLOW_EVIDENCE", sources.as_str()), ("CURFLOW_S3_PREFIXES", prefixes)];
    let ledger = dir.path().join("ledger.sqlite");
    let l = ledger.to_str().unwrap();
    let run = |args: &[&str]| common::ok(&common::run_curflow(&[args, &["--store", l]].concat(), None, &env));

    run(&["usage", "ingest", "--from", "2026-10-01", "--to", "2026-10-20"]);
    run(&["process", manifest]);
    let partial = attributed_by_tenant(&ledger);
    // Days 21-31 are not in the ledger yet: their driver-split cost waits, named, not split by
    // the other days' usage and not silently zero.
    let waiting = waiting_days(&ledger);
    assert_eq!(waiting.first().map(String::as_str), Some("no usage evidence ingested for 2026-10-21 from app-logs"));
    assert_eq!(waiting.len(), 11, "{waiting:?}");
    let costs = run(&["costs", "--period", "2026-10"]);
    assert!(costs.contains("waiting for usage evidence") && costs.contains("2026-10-21 from app-logs"), "{costs}");
    let html = dir.path().join("report.html");
    run(&["report", "--period", "2026-10", "--out", html.to_str().unwrap(), "--now", "2026-10-25T00:00:00Z"]);
    assert!(std::fs::read_to_string(&html).unwrap().contains("id=\"missing-evidence\""));

    let night = run(&["nightly", "--now", "2026-11-01T03:30:00Z", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&night).unwrap();
    let ingested = &doc["usage_ledger"]["ingested"]["sources"][0];
    assert_eq!((ingested["from"].as_str(), ingested["to"].as_str()), (Some("2026-10-19"), Some("2026-10-31")), "{doc}");
    let resplit = &doc["usage_ledger"]["reattributed"];
    assert!(
        resplit.as_array().unwrap().iter().any(|r| r["period"] == "2026-10" && r["outcome"] == "replaced"),
        "{doc}"
    );
    let complete = attributed_by_tenant(&ledger);
    assert!(waiting_days(&ledger).is_empty(), "{:?}", waiting_days(&ledger));
    assert_ne!(partial, complete, "the days ingested by the nightly job changed the split");

    let direct = dir.path().join("direct.sqlite");
    common::ok(&common::run_curflow(
        &[
            "process",
            manifest,
            "--store",
            direct.to_str().unwrap(),
            "--evidence",
            ev.dir.to_str().unwrap(),
            "--s3-prefixes",
            prefixes,
        ],
        None,
        &[],
    ));
    assert_eq!(complete, attributed_by_tenant(&direct));

    let again = run(&["attribute", "--period", "2026-10", "--format", "json"]);
    assert!(again.contains("\"outcome\": \"unchanged\"") || again.contains("\"outcome\":\"unchanged\""), "{again}");
    run(&["process", manifest, "--force"]);
    assert_eq!(attributed_by_tenant(&ledger), complete, "a re-processed delivery keeps the split");
}

// ---------------------------------------------------------------------------------------------
// The deployed path: evidence in S3, the ledger and the usage table in DynamoDB, the function's
// handler processing the manifest event.

/// Per-tenant attributed amounts and the unattributed rest of a stored period, every measure.
fn split_of(lines: &[curflow::CostLine]) -> (std::collections::BTreeMap<String, curflow::Amounts>, curflow::Amounts) {
    use curflow::aggregate::LineSource;
    let mut by_tenant: std::collections::BTreeMap<String, curflow::Amounts> = std::collections::BTreeMap::new();
    let mut unattributed = curflow::Amounts::default();
    for l in lines {
        match l.source() {
            LineSource::Attributed => {
                by_tenant.entry(l.key.tenant.as_deref().unwrap().to_string()).or_default().add(&l.amounts).unwrap();
            }
            LineSource::Shared => unattributed.add(&l.amounts).unwrap(),
            LineSource::Cur => {}
        }
    }
    (by_tenant, unattributed)
}

/// Generated CUR 2.0 month and evidence uploaded to S3 (the evidence under its own prefix);
/// `curflow usage ingest` fills the ledger in the DynamoDB table from `s3://`; the function's
/// handler, configured as deployed (`CURFLOW_EVIDENCE`, the S3 prefix map as an `s3://` object), processes the
/// manifest event: per-tenant attributed amounts equal the generator's independent expectation
/// exactly, every measure, and tagged + attributed + unattributed equal the bill. The same event
/// again changes nothing; the nightly event then finds the ledger complete and the split current.
#[test]
fn the_function_splits_a_delivery_with_the_ledger_ingested_from_s3_into_dynamodb() {
    use curflow::lambda::{Action, Handler};
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-ledger");
    let g = common::generate(&dir.path().join("bucket"), curflow_fixtures::Format::Cur2Parquet, 20_000, 21, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    s3.upload_delivery(&bucket, "exports/", &dir.path().join("bucket"));
    for rel in common::delivery_files(&ev.dir) {
        s3.put_file(&bucket, &format!("usage-evidence/{rel}"), &ev.dir.join(&rel));
    }
    let Kind::Dynamo(table) = Kind::dynamo() else { unreachable!() };
    let location = format!("dynamodb://{table}");
    let sources = format!(r#"[{{name = "usage", location = "s3://{bucket}/usage-evidence/"}}]"#);
    // The S3 prefix map is configuration in S3 too, as deployed.
    s3.put_file(&bucket, "config/s3-prefixes.toml", &ev.prefix_map);
    let prefixes = format!("s3://{bucket}/config/s3-prefixes.toml");
    let env = [("CURFLOW_EVIDENCE", sources.as_str()), ("CURFLOW_S3_PREFIXES", prefixes.as_str())];
    let ingest = ["usage", "ingest", "--from", "2026-10-01", "--to", "2026-10-31", "--store", &location];
    let rows =
        ingest_rows(&common::ok(&common::run_curflow(&[&ingest[..], &["--format", "json"]].concat(), None, &env)));
    assert_eq!(rows.len(), 31);

    let mut config = common::s3_config(Path::new(&location));
    config.evidence = vec![curflow::config::EvidenceEntry {
        name: "usage".into(),
        location: format!("s3://{bucket}/usage-evidence/"),
    }];
    config.s3_prefixes = Some(prefixes.clone().into());
    let handler = s3.runtime.block_on(Handler::new(config)).unwrap();
    let event = common::event_fixture("s3-objectcreated-cur2.json", &bucket);
    let done = s3.runtime.block_on(handler.handle(&event, Utc::now())).unwrap();
    assert_eq!(done.results[0].action, Action::Processed, "{done:?}");

    let period = curflow::BillingPeriod::new(2026, 10).unwrap();
    let store = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
    let check = |what: &str| {
        use curflow::store::CostStore;
        let lines = store.cost_lines(period).wait().unwrap();
        let expected = common::expected_json(&g);
        let total = curflow::Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
        let (by_tenant, unattributed) = split_of(&lines);
        let want = expected["attribution"]["by_tenant"].as_object().unwrap();
        assert_eq!(by_tenant.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}");
        for m in common::MEASURES {
            assert_eq!(common::measure(&total, m), dec(&expected["totals"][m]), "{what}: bill {m}");
            for (tenant, w) in want {
                assert_eq!(common::measure(&by_tenant[tenant], m), dec(&w[m]), "{what}: {tenant} {m}");
            }
            let rest = &expected["attribution"]["unattributed"][m];
            assert_eq!(common::measure(&unattributed, m), dec(rest), "{what}: unattributed {m}");
        }
    };
    check("after the manifest event");

    let again = s3.runtime.block_on(handler.handle(&event, Utc::now())).unwrap();
    assert_eq!(again.results[0].action, Action::Unchanged, "{again:?}");
    let nightly = common::event_fixture("eventbridge-scheduled.json", &bucket);
    let night = s3.runtime.block_on(handler.handle(&nightly, "2026-11-01T03:30:00Z".parse().unwrap())).unwrap();
    let detail = night.results[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("usage ledger: 3 source-day(s) ingested, 1 month(s) re-split"), "{detail}");
    check("after the nightly job");
}

/// Reading whole days from an S3 prefix downloads only the objects written since the first day
/// (less the clock-skew margin): the nightly ingestion does not re-read the prefix's history.
#[test]
fn an_s3_source_downloads_only_objects_written_since_the_first_day_read() {
    use curflow::attribute::s3_prefix::{download, written_since};
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::TestS3::new();
    let bucket = s3.bucket("cf-ledger-since");
    let file = dir.path().join("app.log");
    std::fs::write(&file, "2026-10-03T10:00:00.000Z\tx\tINFO\t{}\n").unwrap();
    s3.put_file(&bucket, "logs/2026/10/03/app.log", &file);
    let aws = common::aws_settings();
    let files = |since| {
        let copy = download(&bucket, "logs/", &aws, since).unwrap();
        walk(copy.path())
    };
    let today = Utc::now().date_naive();
    assert_eq!(files(None), ["2026/10/03/app.log"], "without a window: every object");
    assert_eq!(files(Some(written_since(today))), ["2026/10/03/app.log"], "written today: read for today");
    // Two days ahead, not tomorrow: tomorrow's window opens CLOCK_SKEW before midnight, so an
    // object written in today's last hour is (rightly) read for tomorrow.
    let later = today + chrono::Days::new(2);
    assert!(files(Some(written_since(later))).is_empty(), "written before that day's window opened: skipped");
    assert!(written_since(later) < later.and_hms_opt(0, 0, 0).unwrap().and_utc());
}

/// Files under `root`, relative, sorted.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}
