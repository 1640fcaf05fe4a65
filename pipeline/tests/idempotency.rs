//! Re-deliveries: the same version is a no-op, an older one is refused, a restatement replaces the
//! whole period (vanished keys disappear), and a write that fails halfway changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::time::{Duration, SystemTime};

use common::{dec, expected_json};
use curflow::store::ReplaceOutcome;
use curflow_fixtures::Format;

fn at(hours: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + hours * 3600)
}

#[test]
fn processing_the_same_delivery_twice_leaves_the_store_identical() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("b"), Format::LegacyParquet, 5_000, 1, |_| {});
    // As AWS delivers: data files first, the manifest last (pinned: file-system clocks are coarse).
    for f in &g.data_files {
        common::set_mtime(f, at(1));
    }
    common::set_mtime(&g.manifest_path, at(2));
    let store = dir.path().join("s.sqlite");
    let first = common::process(std::slice::from_ref(&g.manifest_path), &store).unwrap();
    assert!(matches!(first.outcome, ReplaceOutcome::Replaced { previous: None }));
    let before = common::dump(&store);
    let second = common::process(std::slice::from_ref(&g.manifest_path), &store).unwrap();
    assert_eq!(second.outcome, ReplaceOutcome::Unchanged);
    assert!(second.scan_skipped, "a duplicate event is settled from the manifest, without reading data");
    assert_eq!(common::dump(&store), before);
    // The same files without the manifest are their own version (`files-<hash>`, timed by the
    // newest data file): idempotent too. Into this store they are refused as older, because the
    // manifest (written after the data, as AWS does) is newer than every data file.
    let files_only = common::process(&g.data_files, &store).unwrap();
    assert!(matches!(files_only.outcome, ReplaceOutcome::RefusedOlder { .. }));
    assert_eq!(common::dump(&store), before);
    let store2 = dir.path().join("s2.sqlite");
    assert!(matches!(common::process(&g.data_files, &store2).unwrap().outcome, ReplaceOutcome::Replaced { .. }));
    let after_files = common::dump(&store2);
    let again = common::process(&g.data_files, &store2).unwrap();
    assert_eq!(again.outcome, ReplaceOutcome::Unchanged);
    assert!(!again.scan_skipped, "without a manifest the period is only known after the scan");
    assert_eq!(common::dump(&store2), after_files);
}

#[test]
fn an_older_delivery_after_a_newer_one_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let old = common::generate(&dir.path().join("old"), Format::LegacyParquet, 4_000, 1, |_| {});
    let new = common::generate(&dir.path().join("new"), Format::LegacyParquet, 4_000, 2, |_| {});
    common::set_mtime(&old.manifest_path, at(1));
    common::set_mtime(&new.manifest_path, at(2));
    let store = dir.path().join("s.sqlite");
    common::process(std::slice::from_ref(&new.manifest_path), &store).unwrap();
    let before = common::dump(&store);
    let refused = common::process(std::slice::from_ref(&old.manifest_path), &store).unwrap();
    match &refused.outcome {
        ReplaceOutcome::RefusedOlder { stored } => {
            assert_eq!(stored.id, expected_json(&new)["version_id"].as_str().unwrap())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(common::dump(&store), before);
    // --force replaces anyway (an operator's explicit choice).
    let mut options = common::options();
    options.force = true;
    let forced = common::process_with(std::slice::from_ref(&old.manifest_path), &store, options).unwrap();
    assert!(matches!(forced.outcome, ReplaceOutcome::Replaced { .. }));
    assert_eq!(
        common::stored_total(&store, forced.period).unblended_cost,
        dec(&expected_json(&old)["totals"]["unblended_cost"])
    );
}

#[test]
fn a_restated_month_with_fewer_rows_replaces_the_period_and_vanished_keys_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let full = common::generate(&dir.path().join("v1"), Format::LegacyCsv, 8_000, 1, |o| o.tenants = 7);
    let restated = common::generate(&dir.path().join("v2"), Format::LegacyCsv, 2_000, 9, |o| o.tenants = 3);
    common::set_mtime(&full.manifest_path, at(1));
    common::set_mtime(&restated.manifest_path, at(5));
    let store = dir.path().join("s.sqlite");
    let first = common::process(std::slice::from_ref(&full.manifest_path), &store).unwrap();
    assert!(first.tenants > 3);
    let second = common::process(std::slice::from_ref(&restated.manifest_path), &store).unwrap();
    assert!(matches!(&second.outcome, ReplaceOutcome::Replaced { previous: Some(p) } if p == &first.version));
    // The store now equals the restatement exactly: its groups only, its totals.
    let got = common::stored_by_tenant_service_day(&store, second.period);
    let want = expected_json(&restated);
    assert_eq!(got.len(), want["by_tenant_service_day"].as_array().unwrap().len());
    assert!(got.keys().all(|(t, ..)| t.as_deref().is_none_or(|t| t <= "acct-0003")), "tenants 4..7 vanished");
    assert_eq!(common::stored_total(&store, second.period).unblended_cost, dec(&want["totals"]["unblended_cost"]));
}

#[test]
fn a_write_that_fails_halfway_leaves_the_store_exactly_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = common::generate(&dir.path().join("v1"), Format::LegacyParquet, 4_000, 1, |_| {});
    let v2 = common::generate(&dir.path().join("v2"), Format::LegacyParquet, 4_000, 2, |_| {});
    common::set_mtime(&v1.manifest_path, at(1));
    common::set_mtime(&v2.manifest_path, at(2));
    let store = dir.path().join("s.sqlite");
    common::process(std::slice::from_ref(&v1.manifest_path), &store).unwrap();
    // A real SQLite failure in the middle of the inserts of v2.
    rusqlite::Connection::open(&store)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER fail_halfway BEFORE INSERT ON cost_lines WHEN NEW.tenant = 'acct-0003'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let before = common::dump(&store);
    let err = common::process(std::slice::from_ref(&v2.manifest_path), &store).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(common::dump(&store), before);
}

/// Issue 12 point 3: a stored period is recomputed when the inputs besides the delivery change
/// (tag key, usage evidence), and only then; with the same inputs it stays a no-op.
#[test]
fn the_same_delivery_with_other_inputs_is_processed_again() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("b"), Format::LegacyParquet, 4_000, 9, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let store = dir.path().join("s.sqlite");
    let run = |extra: &[&str]| -> String {
        let mut args = vec!["process", g.manifest_path.to_str().unwrap(), "--store", store.to_str().unwrap()];
        args.extend_from_slice(&["--format", "json"]);
        args.extend_from_slice(extra);
        let out = common::ok(&common::run_curflow(&args, Some(dir.path()), &[]));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["reports"][0]["outcome"]["outcome"].as_str().unwrap().to_string()
    };
    // The stored lines only (the period row also records when and with what it was processed).
    let lines = |store: &std::path::Path| {
        let s = curflow::store::SqliteStore::open(store).unwrap();
        format!(
            "{:?}",
            curflow::store::CostStore::cost_lines(&s, curflow::BillingPeriod::new(2026, 10).unwrap()).wait().unwrap()
        )
    };
    let evidence = ["--evidence", ev.dir.to_str().unwrap(), "--s3-prefixes", ev.prefix_map.to_str().unwrap()];
    assert_eq!(run(&[]), "replaced");
    assert_eq!(run(&[]), "unchanged");
    let untagged = lines(&store);
    // Another tag key: the same delivery is read again (no tenant carries `team`: all pool).
    assert_eq!(run(&["--tag-key", "team"]), "replaced");
    assert_eq!(run(&["--tag-key", "team"]), "unchanged");
    assert_ne!(lines(&store), untagged);
    // Evidence given: the pool is split, so the stored lines change; the same evidence again is a no-op.
    assert_eq!(run(&evidence), "replaced");
    assert_eq!(run(&evidence), "unchanged");
    let attributed = lines(&store);
    assert_ne!(attributed, untagged);
    // Back to the first inputs: exactly the first result again.
    assert_eq!(run(&[]), "replaced");
    assert_eq!(lines(&store), untagged);
    let expected = expected_json(&g);
    let total = common::stored_total(&store, curflow::BillingPeriod::new(2026, 10).unwrap());
    assert_eq!(common::measure(&total, "unblended_cost"), dec(&expected["totals"]["unblended_cost"]));
}
