//! The DynamoDB store through the real AWS SDK against the local moto_server
//! (`CURFLOW_TEST_AWS_ENDPOINT`, started by ./scripts/test): redelivery storms, crash safety,
//! concurrent writers, throttling, and the CLI, each checked against the SQLite store processed
//! from the same inputs and against a raw Scan of the table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use common::{MEASURES, dec, expected_json, measure};
use curflow::aggregate::LineSource;
use curflow::attribute::{AttributionInputs, AttributionOptions};
use curflow::discover::discover;
use curflow::process::Processor;
use curflow::store::dynamodb::{DynamoStore, Fault, RetryPolicy};
use curflow::store::{CostStore, LineFilter, PeriodRecord, ReplaceOutcome, SqliteStore};
use curflow::{Amounts, BillingPeriod, CostLine, ErrorClass};
use curflow_fixtures::{Format, Generated};

type Item = HashMap<String, AttributeValue>;

fn at(hours: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + hours * 3600)
}

fn october() -> BillingPeriod {
    BillingPeriod::new(2026, 10).unwrap()
}

/// A month whose manifest (= delivery version) is dated `hours` after the epoch used here.
fn month(dir: &Path, name: &str, rows: u64, seed: u64, tenants: u32, hours: u64) -> Generated {
    let g = common::generate(&dir.join(name), Format::LegacyParquet, rows, seed, |o| o.tenants = tenants);
    for f in &g.data_files {
        common::set_mtime(f, at(hours) - Duration::from_secs(60));
    }
    common::set_mtime(&g.manifest_path, at(hours));
    g
}

/// A store on a fresh table of its own.
fn fresh_store() -> DynamoStore {
    let store = DynamoStore::connect(&common::unique_name("curflow-ddb"), &common::aws_settings()).wait().unwrap();
    assert!(store.create_table_if_missing().wait().unwrap());
    assert!(!store.create_table_if_missing().wait().unwrap(), "the second call finds the table");
    store.check_table().wait().unwrap();
    store
}

/// Another client of the same table (another process, as far as the store can tell).
fn same_table(store: &DynamoStore) -> DynamoStore {
    DynamoStore::connect(store.table(), &common::aws_settings()).wait().unwrap()
}

/// What the SQLite store holds after processing `g` (lines and record).
fn sqlite_of(dir: &Path, g: &Generated, options: curflow::process::ProcessOptions) -> (Vec<CostLine>, PeriodRecord) {
    let path = dir.join(format!("{}.sqlite", common::unique_name("ref")));
    let mut store = SqliteStore::open(&path).unwrap();
    common::process_into(std::slice::from_ref(&g.manifest_path), &mut store, options).unwrap();
    (store.cost_lines(october()).wait().unwrap(), store.period(october()).wait().unwrap().unwrap())
}

/// Every item of the table, through a client of its own (a raw Scan, consistent).
fn scan(table: &str) -> Vec<Item> {
    let runtime = common::rt();
    runtime.block_on(async {
        let conf = curflow::aws::sdk_config(&common::aws_settings()).await;
        let client = aws_sdk_dynamodb::Client::new(&conf);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return items,
            }
        }
    })
}

fn text<'a>(item: &'a Item, k: &str) -> &'a str {
    match item.get(k) {
        Some(AttributeValue::S(s)) => s,
        other => panic!("{k} is {other:?} in {item:?}"),
    }
}

/// The whole table as sorted text, to compare "before" and "after".
fn dump(table: &str) -> String {
    let mut rows: Vec<String> = scan(table)
        .iter()
        .map(|item| {
            let mut attrs: Vec<_> = item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            attrs.sort();
            attrs.join(" ")
        })
        .collect();
    rows.sort();
    rows.join("\n")
}

/// Asserts that the store reads back exactly `want` and that the table holds exactly one
/// version of the period: the pointer's, with one item per line and nothing left of others.
fn assert_holds_exactly(store: &DynamoStore, want: &[CostLine]) {
    assert_eq!(store.cost_lines(october()).wait().unwrap(), want, "cost lines differ from the SQLite store's");
    let items = scan(store.table());
    let pointers: Vec<&Item> = items.iter().filter(|i| text(i, "accountant_id") == "_period").collect();
    assert_eq!(pointers.len(), 1, "one pointer per period");
    assert_eq!(text(pointers[0], "sk"), "current#2026-10");
    let tag = text(pointers[0], "version_tag");
    let lines: Vec<&Item> = items.iter().filter(|i| text(i, "sk").starts_with("actual#2026-10#")).collect();
    let tags: BTreeSet<&str> = lines.iter().map(|i| text(i, "version_tag")).collect();
    assert_eq!(tags, BTreeSet::from([tag]), "items of exactly one version (the current one) remain");
    // An attributed period keeps its shared pool beside its lines, in the `_pool` partition.
    let pool = store.pool_lines(october()).wait().unwrap();
    let pooled = lines.iter().filter(|i| text(i, "accountant_id") == "_pool").count();
    assert_eq!(pooled, pool.len(), "one item per pool line");
    assert_eq!(lines.len() - pooled, want.len());
    assert_eq!(items.len(), want.len() + pool.len() + 1, "nothing but the lines, the pool and the pointer");
    for i in &lines {
        assert!(text(i, "sk").starts_with(&format!("actual#2026-10#{tag}#{}#", text(i, "day"))));
        assert_eq!(text(i, "month"), "2026-10");
        assert_eq!(text(i, "source"), "actual");
        // Who bills the line (the generated legacy report's payer and legal entity); a legacy
        // report has no payer name and a CUR no provider: absent, read as ''.
        assert_eq!(text(i, "billing_account_id"), "123456789012");
        assert_eq!(text(i, "publisher_name"), "Amazon Web Services, Inc.");
        assert_eq!(text(i, "invoice_issuer_name"), "Amazon Web Services, Inc.");
        assert!(!i.contains_key("billing_account_name") && !i.contains_key("provider_name"), "{i:?}");
    }
}

fn assert_totals_match_expected(lines: &[CostLine], g: &Generated) {
    let total = Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
    let expected = expected_json(g);
    for m in MEASURES {
        assert_eq!(measure(&total, m), dec(&expected["totals"][m]), "{m}");
    }
}

fn version_tags(table: &str) -> BTreeMap<String, usize> {
    let mut tags = BTreeMap::new();
    for i in scan(table).iter().filter(|i| text(i, "sk").starts_with("actual#")) {
        *tags.entry(text(i, "version_tag").to_string()).or_insert(0) += 1;
    }
    tags
}

#[test]
fn redelivery_storm_older_delivery_and_restated_month_leave_exactly_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 1_000, 1, 7, 2);
    let older = month(dir.path(), "v0", 800, 2, 7, 1);
    let restated = month(dir.path(), "v2", 600, 9, 3, 5);
    let (want_v1, record_v1) = sqlite_of(dir.path(), &v1, common::options());
    let (want_restated, _) = sqlite_of(dir.path(), &restated, common::options());
    let (want_older, _) = sqlite_of(dir.path(), &older, common::options());
    assert!(want_v1.iter().any(|l| l.key.tenant.is_none()), "the month has a shared pool");
    assert!(want_v1.iter().any(|l| !l.key.operation.is_empty()), "and lines with operations");

    // The same delivery five times, all at once (five Lambda invocations of one S3 event).
    let mut store = fresh_store();
    let barrier = Arc::new(Barrier::new(5));
    let outcomes: Vec<ReplaceOutcome> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..5)
            .map(|_| {
                let barrier = barrier.clone();
                let mut mine = same_table(&store);
                let manifest = v1.manifest_path.clone();
                s.spawn(move || {
                    barrier.wait();
                    common::process_into(&[manifest], &mut mine, common::options()).unwrap().outcome
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let replaced = outcomes.iter().filter(|o| matches!(o, ReplaceOutcome::Replaced { previous: None })).count();
    assert_eq!(replaced, 1, "exactly one run stores the version: {outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, ReplaceOutcome::Replaced { .. } | ReplaceOutcome::Unchanged)));
    assert_holds_exactly(&store, &want_v1);
    assert_totals_match_expected(&want_v1, &v1);
    let stored = store.period(october()).wait().unwrap().unwrap();
    assert_eq!(stored, PeriodRecord { processed_at: stored.processed_at, ..record_v1 }, "the record as SQLite has it");

    // ... and five more times, one after the other: nothing changes, not even a byte.
    let before = dump(store.table());
    for _ in 0..5 {
        let again =
            common::process_into(std::slice::from_ref(&v1.manifest_path), &mut store, common::options()).unwrap();
        assert_eq!(again.outcome, ReplaceOutcome::Unchanged);
        assert!(again.scan_skipped);
    }
    // replace_period itself (no early manifest check) is idempotent too.
    let record = store.period(october()).wait().unwrap().unwrap();
    assert_eq!(store.replace_period(&record, &want_v1, false).wait().unwrap(), ReplaceOutcome::Unchanged);
    assert_eq!(dump(store.table()), before, "versions are immutable: any rewrite would change the tags");

    // An older delivery after the newer one: refused (the CLI exits 5), nothing changes.
    let refused =
        common::process_into(std::slice::from_ref(&older.manifest_path), &mut store, common::options()).unwrap();
    match &refused.outcome {
        ReplaceOutcome::RefusedOlder { stored } => {
            assert_eq!(stored.id, expected_json(&v1)["version_id"].as_str().unwrap())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(dump(store.table()), before);

    // A restated month with fewer tenants: replaces the whole period; vanished tenants are gone.
    let restated_report =
        common::process_into(std::slice::from_ref(&restated.manifest_path), &mut store, common::options()).unwrap();
    assert!(
        matches!(&restated_report.outcome, ReplaceOutcome::Replaced { previous: Some(p) } if p.id == record.version.id)
    );
    assert_holds_exactly(&store, &want_restated);
    assert_totals_match_expected(&want_restated, &restated);
    let partitions: BTreeSet<String> = scan(store.table())
        .iter()
        .filter(|i| text(i, "sk").starts_with("actual#"))
        .map(|i| text(i, "accountant_id").to_string())
        .collect();
    assert!(partitions.len() <= 4 && partitions.len() >= 2, "{partitions:?}");
    assert!(partitions.iter().all(|p| p == "_shared" || p.as_str() <= "acct-0003"), "{partitions:?}");

    // --force puts the older delivery back (an operator's explicit choice), cleanly.
    let mut forced = common::options();
    forced.force = true;
    let report = common::process_into(std::slice::from_ref(&older.manifest_path), &mut store, forced.clone()).unwrap();
    assert!(matches!(report.outcome, ReplaceOutcome::Replaced { .. }));
    assert_holds_exactly(&store, &want_older);
    // Forcing the stored version again writes a fresh copy (never overwrites the current items).
    let tag_before = version_tags(store.table());
    common::process_into(std::slice::from_ref(&older.manifest_path), &mut store, forced).unwrap();
    assert_holds_exactly(&store, &want_older);
    assert_ne!(version_tags(store.table()), tag_before);
    assert_eq!(store.periods().wait().unwrap().len(), 1);
}

#[test]
fn a_run_killed_before_the_switch_leaves_readers_on_the_old_version_and_the_next_run_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 900, 1, 5, 1);
    let v2 = month(dir.path(), "v2", 800, 2, 6, 2);
    let v3 = month(dir.path(), "v3", 600, 3, 4, 3);
    let (want_v1, _) = sqlite_of(dir.path(), &v1, common::options());
    let (want_v2, _) = sqlite_of(dir.path(), &v2, common::options());
    let (want_v3, _) = sqlite_of(dir.path(), &v3, common::options());

    let mut store = fresh_store();
    common::process_into(std::slice::from_ref(&v1.manifest_path), &mut store, common::options()).unwrap();
    assert_holds_exactly(&store, &want_v1);

    // v2's items are written and verified, then the run dies before switching the pointer.
    let mut crashing = same_table(&store).with_fault(Fault::StopBeforeSwitch);
    let err =
        common::process_into(std::slice::from_ref(&v2.manifest_path), &mut crashing, common::options()).unwrap_err();
    assert!(err.to_string().contains("injected fault: stopped before switching"), "{err}");
    let tags = version_tags(store.table());
    assert_eq!(tags.len(), 2, "v2's items are in the table: {tags:?}");
    assert_eq!(tags.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([want_v1.len(), want_v2.len()]));
    // Readers (a new client too) still see v1 exactly.
    assert_eq!(store.cost_lines(october()).wait().unwrap(), want_v1);
    assert_eq!(same_table(&store).cost_lines(october()).wait().unwrap(), want_v1);
    assert_eq!(
        store.period(october()).wait().unwrap().unwrap().version.id,
        expected_json(&v1)["version_id"].as_str().unwrap()
    );

    // The redelivery completes it: v2 current, v1 and the abandoned copy gone.
    let report = common::process_into(std::slice::from_ref(&v2.manifest_path), &mut store, common::options()).unwrap();
    assert!(matches!(report.outcome, ReplaceOutcome::Replaced { previous: Some(_) }));
    assert_holds_exactly(&store, &want_v2);
    assert_totals_match_expected(&want_v2, &v2);

    // A run that dies after the switch but before cleanup: readers already see v3, complete.
    let mut crashing = same_table(&store).with_fault(Fault::StopBeforeCleanup);
    let err =
        common::process_into(std::slice::from_ref(&v3.manifest_path), &mut crashing, common::options()).unwrap_err();
    assert!(err.to_string().contains("before cleanup"), "{err}");
    assert_eq!(store.cost_lines(october()).wait().unwrap(), want_v3);
    assert_eq!(version_tags(store.table()).len(), 2, "v2's items are still there");
    // The next replacement removes every leftover.
    let mut forced = common::options();
    forced.force = true;
    common::process_into(std::slice::from_ref(&v3.manifest_path), &mut store, forced).unwrap();
    assert_holds_exactly(&store, &want_v3);
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario in four rounds, read top to bottom")]
fn two_concurrent_writers_of_one_period_end_with_exactly_the_newer_version_and_readers_never_see_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = month(dir.path(), "v0", 600, 10, 4, 1);
    let older = month(dir.path(), "v1", 800, 11, 6, 2);
    let newer = month(dir.path(), "v2", 700, 12, 5, 3);
    let (want_v0, record_v0) = sqlite_of(dir.path(), &v0, common::options());
    let (want_older, record_older) = sqlite_of(dir.path(), &older, common::options());
    let (want_newer, record_newer) = sqlite_of(dir.path(), &newer, common::options());

    // Both writers read the same pointer and write all their items before either switches (the
    // hooks line them up); then one switches (and cleans up) while the other waits, and the other
    // switches last, against a pointer that has moved. Both orders, on an empty period and on
    // top of a stored version; each with the lines held (`replace_period`) and streamed
    // (`process`: a newer run that lost the switch to an older one cannot write its lines again,
    // fails `Superseded` inside the store, and the processor reads the delivery once more).
    let rounds = [(false, true, false), (true, false, false), (false, true, true), (true, false, true)];
    for (with_previous, newer_first, streamed) in rounds {
        let mut store = fresh_store();
        if with_previous {
            common::process_into(std::slice::from_ref(&v0.manifest_path), &mut store, common::options()).unwrap();
        }
        let both_written = Arc::new(Barrier::new(2));
        let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
        let wait_for_go = Arc::new(std::sync::Mutex::new(wait_for_go));
        let writer = |record: &PeriodRecord, lines: &[CostLine], manifest: &Path, switches_second: bool| {
            let both_written = both_written.clone();
            let wait_for_go = wait_for_go.clone();
            let first_call = AtomicBool::new(true);
            let mut mine = same_table(&store).with_before_switch(move || {
                if first_call.swap(false, Ordering::SeqCst) {
                    both_written.wait();
                    if switches_second {
                        wait_for_go.lock().unwrap().recv().unwrap();
                    }
                }
            });
            let mut record = record.clone();
            record.processed_at = chrono::Utc::now();
            let lines = lines.to_vec();
            let manifest = manifest.to_path_buf();
            move || {
                if streamed {
                    common::process_into(&[manifest], &mut mine, common::options()).unwrap().outcome
                } else {
                    mine.replace_period(&record, &lines, false).wait().unwrap()
                }
            }
        };
        let (first, second) = if newer_first {
            (
                writer(&record_newer, &want_newer, &newer.manifest_path, false),
                writer(&record_older, &want_older, &older.manifest_path, true),
            )
        } else {
            (
                writer(&record_older, &want_older, &older.manifest_path, false),
                writer(&record_newer, &want_newer, &newer.manifest_path, true),
            )
        };
        let reader = same_table(&store);
        let done = AtomicBool::new(false);
        let (first_outcome, second_outcome, observed) = std::thread::scope(|s| {
            let watch = s.spawn(|| {
                let mut seen = BTreeSet::new();
                while !done.load(Ordering::SeqCst) {
                    let lines = reader.cost_lines(october()).wait().unwrap();
                    let which = if lines.is_empty() && !with_previous {
                        "empty"
                    } else if lines == want_v0 && with_previous {
                        "v0"
                    } else if lines == want_older {
                        "older"
                    } else if lines == want_newer {
                        "newer"
                    } else {
                        panic!("a reader saw {} lines that are no single version", lines.len())
                    };
                    seen.insert(which);
                }
                seen
            });
            let first = s.spawn(first);
            let second = s.spawn(second);
            let first_outcome = first.join().unwrap();
            go.send(()).unwrap();
            let second_outcome = second.join().unwrap();
            done.store(true, Ordering::SeqCst);
            (first_outcome, second_outcome, watch.join().unwrap())
        });
        let previous = with_previous.then(|| record_v0.version.clone());
        if newer_first {
            assert_eq!(first_outcome, ReplaceOutcome::Replaced { previous });
            assert_eq!(second_outcome, ReplaceOutcome::RefusedOlder { stored: record_newer.version.clone() });
        } else {
            assert_eq!(first_outcome, ReplaceOutcome::Replaced { previous });
            // The newer writer lost the switch to the older one, re-decided, and wrote on top.
            assert_eq!(second_outcome, ReplaceOutcome::Replaced { previous: Some(record_older.version.clone()) });
        }
        assert!(!observed.is_empty());
        assert_eq!(store.period(october()).wait().unwrap().unwrap().version, record_newer.version);
        assert_holds_exactly(&store, &want_newer);
        assert_totals_match_expected(&want_newer, &newer);
    }
}

/// A streamed run (lines handed over as they are made, never held) that loses the pointer switch
/// to an *older* version cannot write its lines again: the store deletes its items and fails
/// `Superseded`, and the caller reads the delivery once more — `process` (CLI, Lambda) and
/// `backfill` alike — ending with the newer version stored on top of the older one. The older
/// delivery is stored from the writer's own switch hook, the moment before it switches.
#[test]
fn a_streamed_run_superseded_by_an_older_version_is_read_again_by_process_and_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let older = month(dir.path(), "o", 600, 71, 4, 1);
    let newer = month(dir.path(), "n", 700, 72, 5, 2);
    let (want_newer, record_newer) = sqlite_of(dir.path(), &newer, common::options());
    let (_, record_older) = sqlite_of(dir.path(), &older, common::options());
    for via_backfill in [false, true] {
        let store = fresh_store();
        let (table, older_manifest) = (store.table().to_string(), older.manifest_path.clone());
        let raced = AtomicBool::new(false);
        let mut mine = same_table(&store).with_before_switch(move || {
            if !raced.swap(true, Ordering::SeqCst) {
                let (table, manifest) = (table.clone(), older_manifest.clone());
                std::thread::spawn(move || {
                    let mut racer = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
                    common::process_into(&[manifest], &mut racer, common::options()).unwrap();
                })
                .join()
                .unwrap();
            }
        });
        if via_backfill {
            let processor = Processor::new(common::options()).unwrap();
            let root = curflow::location::Location::parse(dir.path().join("n").to_str().unwrap()).unwrap();
            let options = curflow::process::backfill::BackfillOptions { from: None, to: None, parallel: 1 };
            let summary = curflow::process::backfill::run(&processor, &mut mine, &root, None, &options, None, &|_| {})
                .wait()
                .unwrap();
            assert_eq!(summary.count(curflow::process::backfill::PeriodStatus::Processed), 1, "{}", summary.table());
        } else {
            let report =
                common::process_into(std::slice::from_ref(&newer.manifest_path), &mut mine, common::options()).unwrap();
            assert_eq!(report.outcome, ReplaceOutcome::Replaced { previous: Some(record_older.version.clone()) });
        }
        assert_eq!(store.period(october()).wait().unwrap().unwrap().version, record_newer.version);
        assert_holds_exactly(&store, &want_newer);
        assert_eq!(version_tags(store.table()).len(), 1, "the older version and the lost run's items are gone");
    }
}

/// Bare files of two billing periods (no manifest: an export of a date range) are stored one
/// period at a time. An older October delivery switched in while this run wrote its October
/// (streamed, so those lines cannot be written again): the run stores November, then reads the
/// files again for October alone and ends with both periods of the files, October replacing
/// the older version. Before, the run failed `Superseded` for October.
#[test]
fn bare_files_of_two_periods_read_again_for_the_period_an_older_version_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let older = month(dir.path(), "o", 600, 81, 4, 1);
    let newer = month(dir.path(), "n", 700, 82, 5, 2);
    let november = common::generate(&dir.path().join("nov"), Format::LegacyParquet, 500, 83, |o| {
        o.tenants = 3;
        o.month = 11;
    });
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    for (prefix, g) in [("oct", &newer), ("nov", &november)] {
        for (i, f) in g.data_files.iter().enumerate() {
            let to = bare.join(format!("{prefix}-{i}-{}", f.file_name().unwrap().to_str().unwrap()));
            std::fs::copy(f, &to).unwrap();
            common::set_mtime(&to, at(3));
        }
    }
    let deliveries = discover(std::slice::from_ref(&bare)).unwrap();
    assert_eq!(deliveries.len(), 1, "one delivery of bare files");
    assert!(deliveries[0].manifest.is_none());
    let (want_october, _) = sqlite_of(dir.path(), &newer, common::options());
    let (_, record_older) = sqlite_of(dir.path(), &older, common::options());
    let want_november = {
        let path = dir.path().join("nov.sqlite");
        let mut sqlite = SqliteStore::open(&path).unwrap();
        common::process_into(std::slice::from_ref(&november.manifest_path), &mut sqlite, common::options()).unwrap();
        sqlite.cost_lines(BillingPeriod::new(2026, 11).unwrap()).wait().unwrap()
    };

    let store = fresh_store();
    let (table, older_manifest) = (store.table().to_string(), older.manifest_path.clone());
    let raced = AtomicBool::new(false);
    let mut mine = same_table(&store).with_before_switch(move || {
        // The first switch is October's (periods are stored in order).
        if !raced.swap(true, Ordering::SeqCst) {
            let (table, manifest) = (table.clone(), older_manifest.clone());
            std::thread::spawn(move || {
                let mut racer = DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
                common::process_into(&[manifest], &mut racer, common::options()).unwrap();
            })
            .join()
            .unwrap();
        }
    });
    let processor = Processor::new(common::options()).unwrap();
    let reports = common::rt().block_on(processor.process_periods(&mut mine, &deliveries[0], &|_| {})).unwrap();
    let outcomes: Vec<(String, ReplaceOutcome)> =
        reports.iter().map(|r| (r.period.to_string(), r.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        [
            ("2026-10".to_string(), ReplaceOutcome::Replaced { previous: Some(record_older.version.clone()) }),
            ("2026-11".to_string(), ReplaceOutcome::Replaced { previous: None }),
        ]
    );
    assert_eq!(store.period(october()).wait().unwrap().unwrap().version, deliveries[0].version);
    assert_eq!(store.cost_lines(october()).wait().unwrap(), want_october);
    assert_eq!(store.cost_lines(BillingPeriod::new(2026, 11).unwrap()).wait().unwrap(), want_november);
    let october_tags: BTreeSet<String> = scan(store.table())
        .iter()
        .filter(|i| text(i, "sk").starts_with("actual#2026-10#"))
        .map(|i| text(i, "version_tag").to_string())
        .collect();
    assert_eq!(october_tags.len(), 1, "the older version and the lost run's items are gone");
}

// ---------------------------------------------------------------------------------------------
// Throttling, injected at the SDK layer.

/// What the interceptor did to the current attempt (kept in the attempt's config bag).
#[derive(Debug, Clone)]
enum Injected {
    Nothing,
    Throttle,
    Unprocessed(serde_json::Value),
    /// The request was sent with an item altered (the response is the server's own).
    Tampered,
}

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

/// Turns some DynamoDB calls into `ProvisionedThroughputExceededException` (the request is
/// redirected to a table that does not exist, so nothing is written) and makes some
/// `BatchWriteItem` calls write only half their items and report the rest as `UnprocessedItems`.
#[derive(Debug, Default)]
struct Chaos {
    /// Throttle every n-th call (0 = never).
    throttle_every: AtomicU64,
    /// Throttle only `BatchWriteItem`.
    throttle_writes_only: AtomicBool,
    /// Every n-th `BatchWriteItem` call leaves half its items unprocessed (0 = never).
    unprocessed_every: AtomicU64,
    /// The n-th item put (counted over all `BatchWriteItem` calls; 0 = none) is stored altered,
    /// as [`Tamper`] says: a write that lands wrong, which only reading back can tell.
    tamper_put: AtomicU64,
    /// How the `tamper_put`-th item is altered: 0 its unblended cost (+1), 1 its sort key's index.
    tamper_sort_key: AtomicBool,
    puts: AtomicU64,
    calls: AtomicU64,
    batch_calls: AtomicU64,
    throttled: AtomicU64,
    unprocessed_items: AtomicU64,
}

#[derive(Debug, Clone)]
struct ChaosInterceptor(Arc<Chaos>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Intercept for ChaosInterceptor {
    fn name(&self) -> &'static str {
        "ChaosInterceptor"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let chaos = &self.0;
        let target = ctx.request().headers().get("x-amz-target").unwrap_or_default().to_string();
        let batch = target.ends_with(".BatchWriteItem");
        let n = chaos.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let bn = if batch { chaos.batch_calls.fetch_add(1, Ordering::SeqCst) + 1 } else { 0 };
        let every = chaos.throttle_every.load(Ordering::SeqCst);
        let mut decision = Injected::Nothing;
        let body = ctx.request().body().bytes().map(<[u8]>::to_vec);
        let mut json: serde_json::Value = match &body {
            Some(b) => serde_json::from_slice(b)?,
            None => serde_json::Value::Null,
        };
        let eligible = batch || !chaos.throttle_writes_only.load(Ordering::SeqCst);
        if every > 0
            && eligible
            && (if batch && chaos.throttle_writes_only.load(Ordering::SeqCst) { bn } else { n }) % every == 0
        {
            if let Some(items) = json.get_mut("RequestItems").and_then(|v| v.as_object_mut()) {
                let tables: Vec<String> = items.keys().cloned().collect();
                for t in tables {
                    let v = items.remove(&t).unwrap();
                    items.insert("curflow-chaos-nowhere".into(), v);
                }
            } else if let Some(t) = json.get_mut("TableName") {
                *t = "curflow-chaos-nowhere".into();
            }
            chaos.throttled.fetch_add(1, Ordering::SeqCst);
            decision = Injected::Throttle;
        } else if batch && chaos.tamper_put.load(Ordering::SeqCst) > 0 {
            let wanted = chaos.tamper_put.load(Ordering::SeqCst);
            let items = json["RequestItems"].as_object_mut().unwrap();
            let table = items.keys().next().unwrap().clone();
            for request in items[&table].as_array_mut().unwrap() {
                let Some(item) = request.get_mut("PutRequest").map(|p| &mut p["Item"]) else { continue };
                if chaos.puts.fetch_add(1, Ordering::SeqCst) + 1 != wanted {
                    continue;
                }
                if chaos.tamper_sort_key.load(Ordering::SeqCst) {
                    let sk = item["sk"]["S"].as_str().unwrap();
                    let (head, _) = sk.rsplit_once('#').unwrap();
                    item["sk"]["S"] = format!("{head}#99999999").into();
                } else {
                    let cost = dec(&item["unblended_cost"]["N"]);
                    item["unblended_cost"]["N"] = (cost + rust_decimal::Decimal::ONE).to_string().into();
                }
                decision = Injected::Tampered;
            }
        } else if batch {
            let every = chaos.unprocessed_every.load(Ordering::SeqCst);
            if every > 0 && bn % every == 0 {
                let items = json["RequestItems"].as_object_mut().unwrap();
                let table = items.keys().next().unwrap().clone();
                let list = items[&table].as_array_mut().unwrap();
                if list.len() >= 2 {
                    let dropped = list.split_off(list.len() / 2);
                    chaos.unprocessed_items.fetch_add(dropped.len() as u64, Ordering::SeqCst);
                    decision = Injected::Unprocessed(serde_json::json!({ table: dropped }));
                }
            }
        }
        if !matches!(decision, Injected::Nothing) {
            let bytes = serde_json::to_vec(&json)?;
            let req = ctx.request_mut();
            req.headers_mut().insert("content-length", bytes.len().to_string());
            *req.body_mut() = SdkBody::from(bytes);
        }
        cfg.interceptor_state().store_put(decision);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (status, body) = match cfg.load::<Injected>() {
            Some(Injected::Throttle) => (
                400u16,
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded (injected)"
                }),
            ),
            Some(Injected::Unprocessed(items)) => (200u16, serde_json::json!({ "UnprocessedItems": items })),
            _ => return Ok(()),
        };
        let bytes = serde_json::to_vec(&body)?;
        let resp = ctx.response_mut();
        *resp.status_mut() = status.try_into()?;
        resp.headers_mut().remove("x-amz-crc32");
        resp.headers_mut().remove("x-amzn-errortype");
        resp.headers_mut().insert("content-length", bytes.len().to_string());
        *resp.body_mut() = SdkBody::from(bytes);
        Ok(())
    }
}

/// A realistic month (three usage accounts, three regions) stored in DynamoDB has the generator's
/// per-(account, region) totals exactly, as SQLite does (`realistic_profile.rs`): the account id,
/// account name and region round-trip through the item attributes.
#[test]
fn per_account_and_region_totals_of_a_realistic_month_are_exact_in_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let g = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
        rows: 20_000,
        tenants: 200,
        out_dir: dir.path().join("saas"),
        profile: curflow_fixtures::Profile::Saas,
        ..curflow_fixtures::GenerateOptions::default()
    })
    .unwrap();
    let mut store = fresh_store();
    common::process_into(std::slice::from_ref(&g.manifest_path), &mut store, common::options()).unwrap();
    let lines = store.cost_lines(october()).wait().unwrap();
    let (got, want) = common::by_account_region(&lines, &expected_json(&g));
    let regions: BTreeSet<&String> = want.keys().map(|(_, r, _)| r).filter(|r| !r.is_empty()).collect();
    assert_eq!(regions.len(), 3, "{regions:?}");
    assert_eq!(got, want);
    let (sqlite, _) = sqlite_of(dir.path(), &g, common::options());
    assert_eq!(common::by_account_region(&sqlite, &expected_json(&g)).0, got, "both stores agree");
}

/// Processes `g` with attribution (no evidence: account-level lines are split by direct cost),
/// so attributed rows, with their rule, basis and shares, go through the store too.
fn process_attributed(g: &Generated, store: &mut dyn CostStore) -> curflow::process::PeriodReport {
    let inputs =
        AttributionInputs::load(&AttributionOptions { tenant_key: "accountant_id".into(), ..Default::default() })
            .unwrap();
    let processor = Processor::new(common::options()).unwrap().with_attribution(inputs);
    let delivery = &discover(std::slice::from_ref(&g.manifest_path)).unwrap()[0];
    let runtime = common::rt();
    runtime.block_on(processor.process(store, delivery, &|_| {})).unwrap()
}

/// The lines and the shared pool SQLite stores for `g`, attributed.
fn attributed_sqlite_lines(dir: &Path, g: &Generated) -> (Vec<CostLine>, Vec<CostLine>) {
    let mut sqlite = SqliteStore::open(&dir.join(format!("{}.sqlite", common::unique_name("attr")))).unwrap();
    process_attributed(g, &mut sqlite);
    (sqlite.cost_lines(october()).wait().unwrap(), sqlite.pool_lines(october()).wait().unwrap())
}

fn chaotic_store(table: &str, chaos: &Arc<Chaos>, retry: RetryPolicy) -> DynamoStore {
    let interceptor = ChaosInterceptor(chaos.clone());
    DynamoStore::connect_with(table, &common::aws_settings(), move |b| {
        // SDK retries off: every injected failure reaches the store's own backoff.
        b.interceptor(interceptor).retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    })
    .wait()
    .unwrap()
    .with_retry_policy(retry)
}

#[test]
fn throttling_and_unprocessed_items_are_retried_with_backoff_and_totals_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 1_000, 21, 7, 1);
    let v2 = month(dir.path(), "v2", 800, 22, 6, 2);
    let (want_v1, pool_v1) = attributed_sqlite_lines(dir.path(), &v1);
    let (want_v2, pool_v2) = attributed_sqlite_lines(dir.path(), &v2);
    assert!(want_v1.iter().any(|l| l.source() == LineSource::Attributed), "attributed rows exist");
    assert!(!pool_v1.is_empty(), "and a pool kept beside them");

    let plain = fresh_store();
    let chaos = Arc::new(Chaos::default());
    chaos.throttle_every.store(3, Ordering::SeqCst);
    chaos.unprocessed_every.store(2, Ordering::SeqCst);
    let fast = RetryPolicy {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
        give_up_after: Duration::from_secs(60),
    };
    let mut store = chaotic_store(plain.table(), &chaos, fast);
    for (g, want, pool) in [(&v1, &want_v1, &pool_v1), (&v2, &want_v2, &pool_v2)] {
        let report = process_attributed(g, &mut store);
        assert!(matches!(report.outcome, ReplaceOutcome::Replaced { .. }));
        assert_eq!(store.cost_lines(october()).wait().unwrap(), *want, "read through the throttled client");
        assert_eq!(store.pool_lines(october()).wait().unwrap(), *pool, "the pool as SQLite keeps it");
        assert_holds_exactly(&plain, want);
        assert_totals_match_expected(want, g);
    }
    let throttled = chaos.throttled.load(Ordering::SeqCst);
    let unprocessed = chaos.unprocessed_items.load(Ordering::SeqCst);
    eprintln!(
        "chaos: {} calls, {throttled} throttled, {unprocessed} items reported unprocessed",
        chaos.calls.load(Ordering::SeqCst)
    );
    assert!(throttled >= 10, "throttling was injected ({throttled})");
    assert!(unprocessed >= 100, "unprocessed items were injected ({unprocessed})");
}

/// A write that lands altered (an item's amount or sort key changed on the way) is caught by the
/// read-back check: the pointer is not switched, readers keep the old version, and the run deletes
/// its own items. Both ways a version is written are checked:
/// - streamed (`process`: the lines are never held): each partition's items must read back with
///   the count, totals and digest of the lines sent there, each under the sort key its content and
///   index give; the run deletes its items by listing its version in each partition it wrote, so
///   an item whose index was altered goes too;
/// - from lines held (`replace_period`): each item is compared with the input line its sort key
///   names; the run deletes by keys recomputed from its lines, so an item under an altered key is
///   left to the next run's cleanup, which removes it.
#[test]
fn a_write_that_lands_altered_is_caught_by_the_read_back_and_nothing_is_switched() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 800, 41, 5, 1);
    let v2 = month(dir.path(), "v2", 900, 42, 6, 2);
    let (want_v1, _) = sqlite_of(dir.path(), &v1, common::options());
    let (want_v2, record_v2) = sqlite_of(dir.path(), &v2, common::options());
    let mut plain = fresh_store();
    common::process_into(std::slice::from_ref(&v1.manifest_path), &mut plain, common::options()).unwrap();
    let before = dump(plain.table());
    let v1_tags = version_tags(plain.table());

    let cases = [
        (true, false, "do not read back as the lines written there"),
        (true, true, "is not one of the input lines"),
        (false, false, "differs from input line"),
        (false, true, "is not one of the input lines"),
    ];
    // (The case that leaves an item behind comes last: the others compare the whole table.)
    for (streamed, sort_key, wanted) in cases {
        let chaos = Arc::new(Chaos::default());
        // An item well inside the version (not the first batch), so batches before and after it land.
        chaos.tamper_put.store(60, Ordering::SeqCst);
        chaos.tamper_sort_key.store(sort_key, Ordering::SeqCst);
        let mut store = chaotic_store(plain.table(), &chaos, RetryPolicy::default());
        let err = if streamed {
            common::process_into(std::slice::from_ref(&v2.manifest_path), &mut store, common::options())
                .unwrap_err()
                .to_string()
        } else {
            let mut record = record_v2.clone();
            record.processed_at = chrono::Utc::now();
            store.replace_period(&record, &want_v2, false).wait().unwrap_err().to_string()
        };
        let case = format!("streamed {streamed}, sort key {sort_key}");
        assert!(err.contains(wanted), "{case}: {err}");
        assert!(err.contains("the pointer was not switched"), "{case}: {err}");
        assert!(chaos.puts.load(Ordering::SeqCst) > 60, "{case}: the altered item was sent");
        assert_eq!(plain.cost_lines(october()).wait().unwrap(), want_v1, "{case}: readers keep the old version");
        if sort_key && !streamed {
            // Only the item under the altered key is left behind (its key is not one the run made).
            let left: usize =
                version_tags(plain.table()).iter().filter(|(t, _)| !v1_tags.contains_key(*t)).map(|(_, n)| n).sum();
            assert_eq!(left, 1, "{case}: {:?}", version_tags(plain.table()));
        } else {
            assert_eq!(dump(plain.table()), before, "{case}: every item of the failed run deleted");
        }
    }
    // The next run stores the delivery and its cleanup removes what the failed runs left.
    let report = common::process_into(std::slice::from_ref(&v2.manifest_path), &mut plain, common::options()).unwrap();
    assert!(matches!(report.outcome, ReplaceOutcome::Replaced { .. }));
    assert_holds_exactly(&plain, &want_v2);
}

#[test]
fn throttling_that_never_ends_fails_retryably_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 600, 31, 4, 1);
    let v2 = month(dir.path(), "v2", 600, 32, 4, 2);
    let (want_v1, _) = sqlite_of(dir.path(), &v1, common::options());
    let mut plain = fresh_store();
    common::process_into(std::slice::from_ref(&v1.manifest_path), &mut plain, common::options()).unwrap();
    let before = dump(plain.table());

    let chaos = Arc::new(Chaos::default());
    chaos.throttle_every.store(1, Ordering::SeqCst);
    chaos.throttle_writes_only.store(true, Ordering::SeqCst);
    let impatient = RetryPolicy {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        give_up_after: Duration::from_millis(600),
    };
    let mut store = chaotic_store(plain.table(), &chaos, impatient);
    let err = common::process_into(std::slice::from_ref(&v2.manifest_path), &mut store, common::options()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::External, "retry later: {err}");
    assert!(err.to_string().contains("ProvisionedThroughputExceededException"), "{err}");
    assert!(err.to_string().contains("BatchWriteItem"), "{err}");
    assert!(chaos.throttled.load(Ordering::SeqCst) > 1, "it did back off and retry");
    assert_eq!(dump(plain.table()), before);
    assert_holds_exactly(&plain, &want_v1);
}

// ---------------------------------------------------------------------------------------------
// The CLI against a table: `process` and `costs` exactly as against SQLite.

fn curflow(cwd: &Path, args: &[&str]) -> std::process::Output {
    common::run_curflow(args, Some(cwd), &[])
}

use common::ok as stdout_ok;

#[test]
fn cli_process_and_costs_against_a_table_match_sqlite_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = month(dir.path(), "v1", 1_000, 41, 7, 2);
    let older = month(dir.path(), "v0", 600, 42, 3, 1);
    let table_store = fresh_store();
    let table = format!("dynamodb://{}", table_store.table());
    let sqlite = dir.path().join("s.sqlite");
    let sqlite = sqlite.to_str().unwrap();
    let manifest = v1.manifest_path.to_str().unwrap();

    let out = stdout_ok(&curflow(dir.path(), &["process", manifest, "--store", &table]));
    assert!(out.contains(&table), "the summary names the store: {out}");
    stdout_ok(&curflow(dir.path(), &["process", manifest, "--store", sqlite]));
    for (by, format) in [("tenant", "csv"), ("service", "csv"), ("day", "csv"), ("tenant", "json")] {
        let costs = |store: &str| {
            let args = ["costs", "--period", "2026-10", "--by", by, "--format", format, "--store", store];
            stdout_ok(&curflow(dir.path(), &args))
        };
        let from_table = costs(&table);
        assert!(from_table.lines().count() > 2, "{from_table}");
        assert_eq!(from_table, costs(sqlite), "costs --by {by} --format {format}");
    }
    // `--tenant` is pushed down (one partition on DynamoDB, the tenant index on SQLite): the same
    // rows as the other store, for a tenant, the shared pool and a tenant with no cost.
    for tenant in ["acct-0002", "UNATTRIBUTED", "acct-none"] {
        let costs = |store: &str| {
            let args = ["costs", "--period", "2026-10", "--tenant", tenant, "--by", "service,day", "--format", "csv"];
            stdout_ok(&curflow(dir.path(), &[&args[..], &["--store", store]].concat()))
        };
        let from_table = costs(&table);
        assert_eq!(from_table, costs(sqlite), "costs --tenant {tenant}");
        assert_eq!(from_table.lines().count() > 1, tenant != "acct-none", "{tenant}: {from_table}");
    }
    // Day ranges are pushed down too (SQL on SQLite, a filter expression on DynamoDB), with and
    // without a tenant: exactly the lines that filtering the whole period keeps, in its order.
    let sqlite_store = SqliteStore::open(Path::new(sqlite)).unwrap();
    let all = sqlite_store.cost_lines(october()).wait().unwrap();
    let days: Vec<chrono::NaiveDate> =
        all.iter().map(|l| l.key.usage_date).collect::<BTreeSet<_>>().into_iter().collect();
    assert!(days.len() > 3, "{days:?}");
    let range = (days[1], days[days.len() / 2]);
    for tenant in [None, Some(Some("acct-0002".to_string())), Some(None)] {
        let filter = LineFilter { tenant: tenant.clone(), days: Some(range), ..LineFilter::default() };
        let want: Vec<CostLine> = all.iter().filter(|l| filter.matches(l)).cloned().collect();
        assert!(!want.is_empty() && want.len() < all.len(), "{tenant:?}: {} of {}", want.len(), all.len());
        assert_eq!(sqlite_store.cost_lines_where(october(), &filter).wait().unwrap(), want, "SQLite {tenant:?}");
        assert_eq!(table_store.cost_lines_where(october(), &filter).wait().unwrap(), want, "DynamoDB {tenant:?}");
    }
    // And the source (a re-split reads only the tagged lines), alone and with days and a tenant.
    for (source, days, tenant) in [
        (LineSource::Cur, None, None),
        (LineSource::Shared, None, None),
        (LineSource::Cur, Some(range), Some(Some("acct-0002".to_string()))),
        (LineSource::Shared, Some(range), None),
    ] {
        let filter = LineFilter { tenant, days, source: Some(source) };
        let want: Vec<CostLine> = all.iter().filter(|l| filter.matches(l)).cloned().collect();
        assert!(!want.is_empty() && want.len() < all.len(), "{filter:?}: {} of {}", want.len(), all.len());
        assert!(want.iter().all(|l| l.source() == source));
        assert_eq!(sqlite_store.cost_lines_where(october(), &filter).wait().unwrap(), want, "SQLite {filter:?}");
        assert_eq!(table_store.cost_lines_where(october(), &filter).wait().unwrap(), want, "DynamoDB {filter:?}");
    }
    assert_eq!(
        stdout_ok(&curflow(dir.path(), &["periods", "--store", &table])),
        stdout_ok(&curflow(dir.path(), &["periods", "--store", sqlite]))
    );

    // Redelivery: exit 0, nothing changes; an older delivery: exit 5, nothing changes.
    let before = dump(table_store.table());
    stdout_ok(&curflow(dir.path(), &["process", manifest, "--store", &table]));
    let refused = curflow(dir.path(), &["process", older.manifest_path.to_str().unwrap(), "--store", &table]);
    assert_eq!(refused.status.code(), Some(5), "{}", String::from_utf8_lossy(&refused.stderr));
    assert_eq!(dump(table_store.table()), before);

    // A table that does not exist is an environment error (exit 4: the deployment, region or
    // endpoint is wrong), never created by a read.
    let missing = format!("dynamodb://{}", common::unique_name("curflow-missing"));
    let out = curflow(dir.path(), &["costs", "--period", "2026-10", "--store", &missing]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_or_misshapen_table_and_bad_names_are_reported() {
    let settings = common::aws_settings();
    assert!(DynamoStore::connect("x", &settings).wait().is_err(), "too short for a table name");
    assert!(curflow::store::open(Path::new("dynamodb://has space"), &settings).wait().is_err());
    let missing = DynamoStore::connect(&common::unique_name("curflow-nope"), &settings).wait().unwrap();
    let err = missing.check_table().wait().unwrap_err();
    assert_eq!(err.class(), ErrorClass::External);
    assert!(err.to_string().contains("does not exist"), "{err}");
    let opened = curflow::store::open_existing(Path::new(&format!("dynamodb://{}", missing.table())), &settings).wait();
    assert!(opened.is_err());
    // A fresh table reads as empty, like a fresh SQLite file.
    let store = fresh_store();
    assert_eq!(store.describe(), format!("dynamodb://{}", store.table()));
    assert!(store.periods().wait().unwrap().is_empty());
    assert!(store.period(october()).wait().unwrap().is_none());
    assert!(store.cost_lines(october()).wait().unwrap().is_empty());
    let opened =
        curflow::store::open(&PathBuf::from(format!("dynamodb://{}", store.table())), &settings).wait().unwrap();
    assert_eq!(opened.describe(), store.describe());
}

#[test]
fn two_curflow_processes_started_at_once_on_one_period_leave_exactly_the_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let older = month(dir.path(), "p1", 900, 61, 5, 1);
    let newer = month(dir.path(), "p2", 800, 62, 4, 2);
    let (want_newer, _) = sqlite_of(dir.path(), &newer, common::options());
    let store = fresh_store();
    let table = format!("dynamodb://{}", store.table());
    let spawn = |g: &Generated| {
        common::curflow_command()
            .args(["process", g.manifest_path.to_str().unwrap(), "--store", &table])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Twice: on an empty period, then again on top of what the first round left (both deliveries
    // re-sent at once, as a redelivery storm does).
    for round in 0..2 {
        let (a, b) = (spawn(&older), spawn(&newer));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let why = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
        // The older one either got in first (and was replaced) or was refused (exit 5).
        assert!(matches!(a.status.code(), Some(0) | Some(5)), "round {round}: {}", why(&a));
        assert_eq!(b.status.code(), Some(0), "round {round}: {}", why(&b));
        assert_holds_exactly(&store, &want_newer);
        assert_eq!(version_tags(store.table()).len(), 1);
    }
    assert_totals_match_expected(&want_newer, &newer);
}

// ---------------------------------------------------------------------------------------------
// Reserved and odd tenant ids (issue 12 point 10).

/// Tenants tagged `UNATTRIBUTED`, `_shared`, `_period`, `_budget`, `_alert`, an all-digit id, one
/// with `#`, one with leading zeros, one starting with `~`: `costs` shows each as itself with its
/// exact amounts on the table as on SQLite (byte for byte), the pool apart; in the table a tenant
/// never shares a partition of the store's own (`_shared`, `_period`, `_budget`, ...); budgets of
/// such tenants read back as themselves.
#[test]
fn reserved_and_odd_tenant_ids_keep_their_own_partitions_and_match_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (g, want) = common::odd_tenants_month(&dir.path().join("m"), Format::LegacyParquet);
    let table_store = fresh_store();
    let table = format!("dynamodb://{}", table_store.table());
    let sqlite = dir.path().join("s.sqlite");
    let sqlite = sqlite.to_str().unwrap();
    let manifest = g.manifest_path.to_str().unwrap();
    stdout_ok(&curflow(dir.path(), &["process", manifest, "--store", &table]));
    stdout_ok(&curflow(dir.path(), &["process", manifest, "--store", sqlite]));

    let check = |store: &str| {
        let costs = |args: &[&str]| {
            let base = ["costs", "--period", "2026-10"];
            stdout_ok(&curflow(dir.path(), &[&base[..], args, &["--store", store]].concat()))
        };
        common::check_odd_tenants_costs(&costs, &want)
    };
    assert_eq!(check(&table), check(sqlite), "both stores show the same rows");
    let json = |store: &str| {
        let args = ["costs", "--period", "2026-10", "--by", "tenant,service", "--format", "json", "--store", store];
        let doc: serde_json::Value = serde_json::from_str(&stdout_ok(&curflow(dir.path(), &args))).unwrap();
        doc["rows"].clone()
    };
    assert_eq!(json(&table), json(sqlite));

    // The raw layout: every tenant's items in its own partition (`~`-escaped when the id starts
    // with `_` or `~`), the pool alone in `_shared`, the pointer alone in `_period`.
    let items = scan(table_store.table());
    let mut partitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in &items {
        let (pk, sk) = (text(item, "accountant_id"), text(item, "sk"));
        let owner = match item.get("tenant") {
            Some(AttributeValue::S(t)) => t.clone(),
            _ if sk.starts_with("actual#") => "(pool)".to_string(),
            _ => format!("({})", sk.split('#').next().unwrap()),
        };
        partitions.entry(pk.to_string()).or_default().insert(owner);
    }
    let mut expected: BTreeMap<String, BTreeSet<String>> = common::ODD_TENANTS
        .iter()
        .map(|t| {
            let partition = if t.starts_with('_') || t.starts_with('~') { format!("~{t}") } else { t.to_string() };
            (partition, BTreeSet::from([t.to_string()]))
        })
        .collect();
    expected.insert("_shared".into(), BTreeSet::from(["(pool)".to_string()]));
    expected.insert("_period".into(), BTreeSet::from(["(current)".to_string()]));
    assert_eq!(partitions, expected);

    // Budgets of such tenants (the budget partition is `_budget`, a tenant's budget is `budget#<id>`).
    let budgets = |store: &str| {
        for (tenant, amount) in [("_budget", "1000.50"), ("123456789012", "7"), ("a#b#1", "0.10")] {
            let args = ["budgets", "set", "--tenant", tenant, "--amount", amount, "--store", store];
            stdout_ok(&curflow(dir.path(), &args));
        }
        let doc: serde_json::Value = serde_json::from_str(&stdout_ok(&curflow(
            dir.path(),
            &["budgets", "list", "--format", "json", "--store", store],
        )))
        .unwrap();
        doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["tenant"].as_str().unwrap().to_string(), r["monthly_amount"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    let from_table = budgets(&table);
    assert_eq!(from_table, budgets(sqlite));
    let tenants: Vec<&str> = from_table.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tenants, ["123456789012", "_budget", "a#b#1"]);
}
