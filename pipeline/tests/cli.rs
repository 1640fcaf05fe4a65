//! End-to-end: runs the `curflow` binary as a user would (generate → process → costs → periods)
//! and checks outputs and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::dec;
use rust_decimal::Decimal;

fn curflow(args: &[&str], cwd: &Path) -> Output {
    common::run_curflow(args, Some(cwd), &[])
}

use common::ok;

#[test]
fn generate_process_costs_and_periods_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen_out = ok(&curflow(
        &["generate", "--rows", "5000", "--out", "bucket", "--format", "cur2", "--tenants", "4", "--seed", "9"],
        d,
    ));
    assert!(gen_out.contains("Manifest.json"), "{gen_out}");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bucket/expected.json")).unwrap()).unwrap();

    let summary = ok(&curflow(&["process", "bucket", "--store", "s.sqlite"], d));
    for fragment in
        ["Billing period 2026-10", "CUR 2.0 Parquet", "rows read", "unattributed", "tenants         4", "stored"]
    {
        assert!(summary.contains(fragment), "summary lacks {fragment:?}:\n{summary}");
    }

    // Exact CSV: sums over tenants equal the generator's totals.
    let csv_text = ok(&curflow(&["costs", "--store", "s.sqlite", "--period", "2026-10", "--format", "csv"], d));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "billing_period",
            "tenant",
            "currency",
            "unblended_cost",
            "net_unblended_cost",
            "amortized_cost",
            "ri_sp_trueup",
            "ri_sp_upfront_fees",
            "list_cost",
            "contracted_cost",
            "line_items",
            "direct_amortized_cost",
            "attributed_amortized_cost",
            "shared_pool"
        ]
    );
    let mut unblended = Decimal::ZERO;
    let mut tenants = Vec::new();
    for r in reader.records() {
        let r = r.unwrap();
        unblended += r[3].parse::<Decimal>().unwrap();
        tenants.push(r[1].to_string());
    }
    assert_eq!(unblended, dec(&expected["totals"]["unblended_cost"]));
    assert!(tenants.contains(&"UNATTRIBUTED".to_string()) && tenants.len() == 5, "{tenants:?}");

    // JSON by day for one tenant; table by service.
    let json = ok(&curflow(
        &[
            "costs",
            "--store",
            "s.sqlite",
            "--period",
            "2026-10",
            "--tenant",
            "acct-0001",
            "--by",
            "day",
            "--format",
            "json",
        ],
        d,
    ));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert!(rows.len() >= 28 && rows.iter().all(|r| r["usage_date"].as_str().unwrap().starts_with("2026-10-")));
    let table = ok(&curflow(&["costs", "--store", "s.sqlite", "--period", "2026-10", "--by", "service"], d));
    assert!(table.contains("AWSLambda") && table.contains("TOTAL"), "{table}");

    let periods = ok(&curflow(&["periods", "--store", "s.sqlite"], d));
    assert!(periods.contains("2026-10") && periods.contains(expected["version_id"].as_str().unwrap()), "{periods}");

    // Same delivery again: exit 0, nothing to do.
    let again = ok(&curflow(&["process", "bucket", "--store", "s.sqlite"], d));
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn exit_codes_distinguish_bad_input_refusals_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&curflow(&["generate", "--rows", "800", "--out", "new", "--seed", "1"], d));
    ok(&curflow(&["generate", "--rows", "800", "--out", "old", "--seed", "2"], d));
    let manifest = |root: &str| {
        let g = common::find_manifest(&d.join(root));
        common::set_mtime(
            &g,
            std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(if root == "old" { 1_000_000 } else { 2_000_000 }),
        );
        g
    };
    let (new_m, old_m) = (manifest("new"), manifest("old"));
    ok(&curflow(&["process", new_m.to_str().unwrap(), "--store", "s.sqlite"], d));
    let refused = curflow(&["process", old_m.to_str().unwrap(), "--store", "s.sqlite"], d);
    assert_eq!(refused.status.code(), Some(5), "{}", String::from_utf8_lossy(&refused.stdout));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("REFUSED"));

    std::fs::write(d.join("empty.parquet"), b"").unwrap();
    let bad = curflow(&["process", "empty.parquet", "--store", "s.sqlite"], d);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("empty.parquet"));

    let usage = curflow(&["costs", "--period", "2026-13"], d);
    assert_eq!(usage.status.code(), Some(2));
    let missing = curflow(&["costs", "--store", "s.sqlite", "--period", "2020-01"], d);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("2020-01"));
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        vec!["--help"],
        vec!["process", "--help"],
        vec!["costs", "--help"],
        vec!["periods", "--help"],
        vec!["generate", "--help"],
    ] {
        let out = ok(&curflow(&cmd, dir.path()));
        assert!(out.contains("Usage"), "{cmd:?}: {out}");
    }
}

#[test]
fn config_file_and_environment_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&curflow(&["generate", "--rows", "800", "--out", "b", "--tag-key", "team"], d));
    std::fs::write(d.join("curflow.toml"), "store = \"from-file.sqlite\"\ntag-key = \"team\"\n").unwrap();
    let out = ok(&curflow(&["process", "b"], d));
    assert!(out.contains("from-file.sqlite") && !out.contains("tag column is absent"), "{out}");
    std::fs::write(d.join("curflow.toml"), "stor = 1\n").unwrap();
    let bad = curflow(&["periods"], d);
    assert_eq!(bad.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("curflow.toml") && stderr.contains("unknown key `stor` (did you mean `store`?)"),
        "{stderr}"
    );
    // The table of settings needs no (valid) configuration.
    let doc = ok(&curflow(&["config", "--doc"], d));
    assert_eq!(doc, curflow::config::markdown_table());
    std::fs::remove_file(d.join("curflow.toml")).unwrap();
    let bad_env = common::run_curflow(&["periods", "--store", "s.sqlite"], Some(d), &[("CURFLOW_BATCH_ROWS", "many")]);
    assert_eq!(bad_env.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&bad_env.stderr);
    assert!(stderr.contains("CURFLOW_BATCH_ROWS: must be an integer from 1024 to 65536, found \"many\""), "{stderr}");
}

#[test]
fn config_prints_the_settings_in_effect_without_secrets_and_reads_the_old_topic_variable() {
    let env = [
        ("CURFLOW_ALERT_WEBHOOK_URL", "https://hooks.example.com/services/sekret"),
        ("CURFLOW_ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:old-name"),
        ("CURFLOW_FILE_CONCURRENCY", "3"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_curflow(&["config"], Some(dir.path()), &env);
    let stdout = ok(&out);
    assert!(
        stdout.contains("file-concurrency = 3\n") && stdout.contains("alert-webhook-url = \"<redacted>\""),
        "{stdout}"
    );
    assert!(stdout.contains("alert-sns-topic-arn = \"arn:aws:sns:us-east-1:123456789012:old-name\""), "{stdout}");
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("sekret"), "{all}");
    assert!(all.contains("deprecated environment variable") && all.contains("CURFLOW_ALERT_SNS_TOPIC_ARN"), "{all}");
}

#[test]
fn process_with_evidence_attributes_the_shared_pool_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&curflow(&["generate", "--rows", "6000", "--out", "bucket", "--tenants", "3", "--seed", "4"], d));
    // One day of Lambda evidence for two tenants (app line + REPORT, joined on request id).
    let mut log = String::new();
    for (i, tenant) in ["acct-0001", "acct-0001", "acct-0002"].iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        log.push_str(&format!("2026-10-02T08:00:00.000Z\t{id}\tINFO\t{{\"accountant_id\":\"{tenant}\"}}\n"));
        log.push_str(&format!("2026-10-02T08:00:01.000Z REPORT RequestId: {id}\tDuration: 10.0 ms\tBilled Duration: 2000 ms\tMemory Size: 512 MB\tMax Memory Used: 70 MB\t\n"));
    }
    std::fs::write(d.join("lambda.log"), log).unwrap();
    let summary = ok(&curflow(&["process", "bucket", "--store", "s.sqlite", "--evidence", "lambda.log"], d));
    assert!(summary.contains("coverage (USD) of amortized"), "{summary}");
    let table = ok(&curflow(&["costs", "--store", "s.sqlite", "--period", "2026-10"], d));
    assert!(table.contains("coverage of amortized cost (USD)"), "{table}");
    let csv_text = ok(&curflow(&["costs", "--store", "s.sqlite", "--period", "2026-10", "--format", "csv"], d));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let mut attributed = Decimal::ZERO;
    let mut unblended = Decimal::ZERO;
    for r in reader.records() {
        let r = r.unwrap();
        unblended += r[3].parse::<Decimal>().unwrap();
        if &r[1] != "UNATTRIBUTED" {
            // A tenant's amortized cost is its direct plus attributed cost.
            let (amortized, direct, attr) = (
                r[5].parse::<Decimal>().unwrap(),
                r[11].parse::<Decimal>().unwrap(),
                r[12].parse::<Decimal>().unwrap(),
            );
            assert_eq!(amortized, direct + attr);
            attributed += attr;
        }
    }
    assert!(attributed > Decimal::ZERO, "some shared cost reached tenants");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bucket/expected.json")).unwrap()).unwrap();
    assert_eq!(unblended, dec(&expected["totals"]["unblended_cost"]), "attribution conserves the bill");
}

fn csv_header(text: &str) -> Vec<String> {
    csv::Reader::from_reader(text.as_bytes()).headers().unwrap().iter().map(str::to_string).collect()
}

fn csv_rows(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| header.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.into(), v.into())).collect())
        .collect()
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// Spelled out on purpose (not taken from the code's column constants): the documented column order
/// is the contract these tests pin, so a change to the code must show up here too.
const COST_AMOUNTS: [&str; 10] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "list_cost",
    "contracted_cost",
    "line_items",
    "direct_amortized_cost",
    "attributed_amortized_cost",
];

/// Two stored months (2026-09 and 2026-10) of 5 tenants each (4 tagged + UNATTRIBUTED).
fn two_months(d: &Path) {
    for (out, period, seed) in [("sep", "2026-09", "3"), ("oct", "2026-10", "4")] {
        ok(&curflow(
            &["generate", "--rows", "3000", "--out", out, "--tenants", "4", "--seed", seed, "--period", period],
            d,
        ));
    }
    let csv_text = ok(&curflow(&["--store", "s.sqlite", "process", "sep", "--format", "csv"], d));
    assert_eq!(
        csv_header(&csv_text),
        [
            "billing_period",
            "currency",
            "version",
            "version_time",
            "source",
            "format",
            "files",
            "rows_read",
            "split_child_rows",
            "tenants",
            "tenant_tag_present",
            "unblended_cost",
            "net_unblended_cost",
            "amortized_cost",
            "ri_sp_trueup",
            "ri_sp_upfront_fees",
            "list_cost",
            "contracted_cost",
            "unattributed_unblended_cost",
            "unattributed_amortized_cost",
            "lines_written",
            "outcome",
            "replaced_version",
            "newer_stored_version",
            "elapsed_seconds"
        ]
    );
    let rows = csv_rows(&csv_text);
    assert_eq!((rows.len(), rows[0]["billing_period"].as_str(), rows[0]["outcome"].as_str()), (1, "2026-09", "stored"));
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&curflow(&["process", "oct", "--store", "s.sqlite", "--format", "json"], d))).unwrap();
    assert_eq!(keys(&doc), sorted(&["store", "reports", "rows"]));
    assert_eq!(doc["rows"][0]["outcome"], "stored");
    assert_eq!(doc["reports"][0]["period"], "2026-10");
}

#[test]
fn every_format_has_stable_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_months(d);
    let costs = |extra: &[&str]| ok(&curflow(&[&["costs", "--store", "s.sqlite"][..], extra].concat(), d));

    // Several keys, comma-separated or repeated: the same columns, in the order given.
    let by_two = costs(&["--period", "2026-10", "--by", "tenant,service", "--format", "csv"]);
    let header = csv_header(&by_two);
    let mut want = vec!["billing_period", "tenant", "service", "currency"];
    want.extend(COST_AMOUNTS);
    want.push("shared_pool"); // whenever `tenant` is a key
    assert_eq!(header, want);
    let by_service = costs(&["--period", "2026-10", "--by", "service", "--format", "csv"]);
    let mut want_service = vec!["billing_period", "service", "currency"];
    want_service.extend(COST_AMOUNTS);
    assert_eq!(csv_header(&by_service), want_service, "no shared_pool without tenant");
    assert_eq!(by_two, costs(&["--period", "2026-10", "--by", "tenant", "--by", "service", "--format", "csv"]));

    // json: one document; jsonl: one object per row with the CSV's keys.
    let doc: serde_json::Value =
        serde_json::from_str(&costs(&["--period", "2026-10", "--by", "tenant,service", "--format", "json"])).unwrap();
    assert_eq!(keys(&doc), sorted(&["from", "to", "periods", "by", "tenant", "measure", "top", "totals", "rows"]));
    let mut want_sorted = want.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    want_sorted.sort();
    assert_eq!(keys(&doc["rows"][0]), want_sorted);
    assert_eq!(doc["by"], serde_json::json!(["tenant", "service"]));
    assert_eq!(doc["rows"].as_array().unwrap().len(), csv_rows(&by_two).len());
    let jsonl = costs(&["--period", "2026-10", "--by", "tenant,service", "--format", "jsonl"]);
    assert_eq!(jsonl.lines().count(), csv_rows(&by_two).len());
    for line in jsonl.lines() {
        assert_eq!(keys(&serde_json::from_str(line).unwrap()), want_sorted);
    }
    // Exact totals: the rows sum to the document's total per period and currency.
    let sum: Decimal = doc["rows"].as_array().unwrap().iter().map(|r| dec(&r["amortized_cost"])).sum();
    assert_eq!(sum, dec(&doc["totals"][0]["amortized_cost"]));

    let periods = ok(&curflow(&["periods", "--store", "s.sqlite", "--format", "csv"], d));
    assert_eq!(
        csv_header(&periods),
        [
            "billing_period",
            "version",
            "version_time",
            "rows_read",
            "source",
            "format",
            "files",
            "split_child_rows",
            "tag_key",
            "processed_at"
        ]
    );
    assert_eq!(csv_rows(&periods).len(), 2);

    // reconcile: the documented order, not alphabetical. Spelled out on purpose (not taken from the
    // code's column constants): the documented order is the contract this test pins.
    let rec = ok(&curflow(&["reconcile", "--store", "s.sqlite", "--period", "2026-10", "--format", "csv"], d));
    assert_eq!(
        csv_header(&rec),
        [
            "accountant_id",
            "month",
            "period_state",
            "currency",
            "estimated",
            "actual",
            "actual_direct",
            "actual_attributed",
            "actual_unmapped",
            "variance",
            "variance_pct",
            "unestimated_usage",
            "flagged",
            "status",
            "estimate_records",
            "actual_records"
        ]
    );
    let export = ok(&curflow(&["export", "--store", "s.sqlite", "--period", "2026-10", "--format", "jsonl"], d));
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(keys(&first).len(), 23);
    assert!(first["unblended_cost"].is_string() && first["line_items"].is_u64(), "{first}");
    // `--format expenses` is the deprecated spelling of `--kind expenses --format csv`.
    let export =
        |args: &[&str]| curflow(&[&["export", "--store", "s.sqlite", "--period", "2026-10"][..], args].concat(), d);
    let old = export(&["--format", "expenses"]);
    assert!(String::from_utf8_lossy(&old.stderr).contains("deprecated"));
    let new = ok(&export(&["--kind", "expenses", "--format", "csv"]));
    assert_eq!(ok(&old), new);
    assert!(new.starts_with("accountant_id,service,vendor,amount,currency,date,category,description\n"), "{new}");
}

#[test]
fn costs_over_several_months_with_top_n_keep_exact_totals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_months(d);
    let costs =
        |extra: &[&str]| ok(&curflow(&[&["costs", "--store", "s.sqlite", "--format", "csv"][..], extra].concat(), d));
    let total = |rows: &[std::collections::BTreeMap<String, String>], period: &str, m: &str| -> Decimal {
        rows.iter().filter(|r| r["billing_period"] == period).map(|r| r[m].parse::<Decimal>().unwrap()).sum()
    };

    let range = csv_rows(&costs(&["--from", "2026-09", "--to", "2026-10"]));
    for period in ["2026-09", "2026-10"] {
        let single = csv_rows(&costs(&["--period", period]));
        assert_eq!(single.len(), 5);
        assert_eq!(range.iter().filter(|r| r["billing_period"] == period).count(), 5);
        for m in ["unblended_cost", "amortized_cost"] {
            assert_eq!(total(&range, period, m), total(&single, period, m), "{period} {m}");
        }
    }

    // Top 2 tenants by amortized cost per month, largest first, then OTHER: totals unchanged.
    let top = csv_rows(&costs(&["--from", "2026-09", "--to", "2026-10", "--measure", "amortized", "--top", "2"]));
    for period in ["2026-09", "2026-10"] {
        let rows: Vec<_> = top.iter().filter(|r| r["billing_period"] == period).collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[2]["tenant"], "OTHER");
        let a = |i: usize| rows[i]["amortized_cost"].parse::<Decimal>().unwrap();
        assert!(a(0) >= a(1), "{rows:?}");
        let others: Vec<Decimal> = range
            .iter()
            .filter(|r| r["billing_period"] == period)
            .map(|r| r["amortized_cost"].parse::<Decimal>().unwrap())
            .collect();
        assert!(others.iter().all(|x| *x <= a(1) || *x == a(0)), "the top two are the largest");
        for m in COST_AMOUNTS {
            assert_eq!(total(&top, period, m), total(&range, period, m), "{period} {m}");
        }
    }
    let table =
        ok(&curflow(&["costs", "--store", "s.sqlite", "--from", "2026-09", "--to", "2026-10", "--top", "1"], d));
    assert!(table.contains("OTHER") && table.contains("TOTAL") && table.contains("2026-09"), "{table}");
}

#[test]
fn bad_arguments_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_months(d);
    for (args, flag) in [
        (vec!["costs", "--period", "2026-10", "--top", "0"], "--top"),
        (vec!["costs", "--period", "2026-10", "--by", "colour"], "--by"),
        (vec!["costs", "--period", "2026-10", "--measure", "blended"], "--measure"),
        (vec!["costs", "--from", "2026-09"], "--to"),
        (vec!["costs", "--period", "2026-10", "--from", "2026-09", "--to", "2026-10"], "--from"),
        (vec!["costs", "--from", "2026-10", "--to", "2026-09"], "--from"),
        (vec!["costs", "--period", "2026-10", "--format", "xml"], "--format"),
        (vec!["periods", "--json"], "--json"),
    ] {
        let out = curflow(&[&args[..], &["--store", "s.sqlite"]].concat(), d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} should name {flag}: {stderr}");
    }
}

#[test]
fn deprecated_json_flag_is_format_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&curflow(&["budgets", "set", "--tenant", "acct-1", "--amount", "100", "--store", "s.sqlite"], d));
    let old = curflow(&["budgets", "list", "--store", "s.sqlite", "--json"], d);
    assert!(String::from_utf8_lossy(&old.stderr).contains("deprecated"));
    let new = ok(&curflow(&["budgets", "list", "--store", "s.sqlite", "--format", "json"], d));
    assert_eq!(ok(&old), new);
    let doc: serde_json::Value = serde_json::from_str(&new).unwrap();
    assert_eq!(
        keys(&doc["rows"][0]),
        sorted(&["tenant", "monthly_amount", "currency", "thresholds_pct", "forecast_alerts", "updated_at"])
    );
    assert_eq!(doc["rows"][0]["thresholds_pct"], serde_json::json!(["80", "100"]));
    let csv_text = ok(&curflow(&["budgets", "list", "--store", "s.sqlite", "--format", "csv"], d));
    assert!(csv_text.starts_with("tenant,monthly_amount,currency,thresholds_pct,forecast_alerts,updated_at\n"));
    assert!(csv_text.contains("acct-1,100,USD,80;100,false,"), "{csv_text}");
    // --store is global: accepted before the command too, and --json cannot be mixed with --format.
    assert_eq!(ok(&curflow(&["--store", "s.sqlite", "budgets", "list", "--format", "json"], d)), new);
    let both = curflow(&["budgets", "list", "--store", "s.sqlite", "--json", "--format", "csv"], d);
    assert_eq!(both.status.code(), Some(2));
}

/// Issue 12 point 11: a read command on a SQLite store that does not exist fails with exit 4
/// naming the path, and creates nothing (neither the file nor its directory). Before, `periods`,
/// `reconcile`, `report`, `budgets list` and `nightly` created an empty store and exited 0 (or 3),
/// and `costs` / `export` exited 3.
#[test]
fn read_commands_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = "missing/typo.sqlite";
    let reads: [&[&str]; 8] = [
        &["costs", "--period", "2026-10"],
        &["periods"],
        &["reconcile", "--period", "2026-10"],
        &["report", "--period", "2026-10", "--out", "r.html"],
        &["budgets", "list"],
        &["nightly", "--now", "2026-10-15T00:00:00Z"],
        &["export", "--period", "2026-10", "--format", "csv"],
        &["attribution", "explain", "--period", "2026-10", "--tenant", "a"],
    ];
    for args in reads {
        let mut all = args.to_vec();
        all.extend(["--store", store]);
        let out = curflow(&all, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains(store) && stderr.contains("does not exist"), "{args:?}: {stderr}");
        assert!(!d.join("missing").exists(), "{args:?} created {}", d.join(store).display());
    }
    // The writing commands still create one.
    ok(&curflow(&["budgets", "set", "--tenant", "acct-1", "--amount", "100", "--store", store], d));
    assert!(d.join(store).is_file());
    let listed = ok(&curflow(&["budgets", "list", "--store", store], d));
    assert!(listed.contains("acct-1"), "{listed}");
}

/// Issue 12 point 10: tenants tagged `UNATTRIBUTED`, `_shared`, `_period`, `_budget`, an all-digit
/// id, one with `#`, one with leading zeros are stored and shown as themselves, never merged into the
/// shared pool, never written as numbers; with attribution too (the split reserves `UNATTRIBUTED`
/// for its own pseudo tenant, so a tenant tagged so used to stop `process`).
#[test]
fn reserved_and_odd_tenant_ids_are_stored_and_shown_as_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The fast path (dictionary-encoded Parquet) finds the same rows.
    let (parquet, want_parquet) = common::odd_tenants_month(&d.join("pq"), curflow_fixtures::Format::LegacyParquet);
    ok(&curflow(&["process", parquet.manifest_path.to_str().unwrap(), "--store", "p.sqlite"], d));
    let costs =
        |args: &[&str]| ok(&curflow(&[&["costs", "--store", "p.sqlite", "--period", "2026-10"][..], args].concat(), d));
    common::check_odd_tenants_costs(&costs, &want_parquet);

    let (g, want) = common::odd_tenants_month(&d.join("bucket"), curflow_fixtures::Format::LegacyCsv);
    let manifest = g.manifest_path.to_str().unwrap();
    ok(&curflow(&["process", manifest, "--store", "s.sqlite"], d));
    let costs =
        |args: &[&str]| ok(&curflow(&[&["costs", "--store", "s.sqlite", "--period", "2026-10"][..], args].concat(), d));
    common::check_odd_tenants_costs(&costs, &want);

    // The HTML report lists each as a tenant of its own, as text (tables and the chart data).
    ok(&curflow(&["budgets", "set", "--tenant", "007", "--amount", "10", "--store", "s.sqlite"], d));
    let args =
        ["report", "--period", "2026-10", "--out", "r.html", "--store", "s.sqlite", "--now", "2026-10-20T00:00:00Z"];
    let printed = ok(&curflow(&args, d));
    assert!(printed.contains(&format!("{} tenants", common::ODD_TENANTS.len())), "{printed}");
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    let start = html.find("id=\"curflow-data\">").unwrap() + "id=\"curflow-data\">".len();
    let data: serde_json::Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()]).unwrap();
    let mut shown: Vec<&str> =
        data["tenants"].as_array().unwrap().iter().map(|t| t["tenant"].as_str().unwrap()).collect();
    shown.sort_unstable();
    let mut tenants = common::ODD_TENANTS.to_vec();
    tenants.sort_unstable();
    assert_eq!(shown, tenants, "every tenant once, as a JSON string");
    for id in common::ODD_TENANTS {
        assert!(html.contains(&format!("<td class=\"tenant\">{id}</td>")), "{id} in the tenants table");
    }
    assert_eq!(data["budgets"][0]["tenant"], "007");

    // With usage evidence (a Lambda log naming two of the odd tenants), the pool is split: every
    // tagged tenant keeps its direct cost, the tenant tagged `UNATTRIBUTED` included, and the bill
    // is conserved.
    let mut log = String::new();
    for (i, tenant) in ["_shared", "123456789012", "_shared"].iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        log.push_str(&format!("2026-10-02T08:00:00.000Z\t{id}\tINFO\t{{\"accountant_id\":\"{tenant}\"}}\n"));
        log.push_str(&format!("2026-10-02T08:00:01.000Z REPORT RequestId: {id}\tDuration: 10.0 ms\tBilled Duration: 2000 ms\tMemory Size: 512 MB\tMax Memory Used: 70 MB\t\n"));
    }
    std::fs::write(d.join("lambda.log"), log).unwrap();
    ok(&curflow(&["process", manifest, "--store", "a.sqlite", "--evidence", "lambda.log"], d));
    let csv_text =
        ok(&curflow(&["costs", "--store", "a.sqlite", "--period", "2026-10", "--by", "tenant", "--format", "csv"], d));
    let mut unblended = Decimal::ZERO;
    let mut attributed = Decimal::ZERO;
    for r in csv_rows(&csv_text) {
        unblended += r["unblended_cost"].parse::<Decimal>().unwrap();
        if r["shared_pool"] == "false" {
            let direct = r["direct_amortized_cost"].parse::<Decimal>().unwrap();
            assert_eq!(direct, want[&(r["tenant"].clone(), false)]["amortized_cost"], "{}: {csv_text}", r["tenant"]);
            attributed += r["attributed_amortized_cost"].parse::<Decimal>().unwrap();
        }
    }
    let total: Decimal = want.values().map(|a| a["unblended_cost"]).sum();
    assert_eq!(unblended, total, "attribution conserves the bill: {csv_text}");
    assert!(attributed > Decimal::ZERO, "some shared cost reached tenants: {csv_text}");
}
