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
            "line_items",
            "direct_amortized_cost",
            "attributed_amortized_cost"
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
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
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
            let (amortized, direct, attr) =
                (r[5].parse::<Decimal>().unwrap(), r[9].parse::<Decimal>().unwrap(), r[10].parse::<Decimal>().unwrap());
            assert_eq!(amortized, direct + attr);
            attributed += attr;
        }
    }
    assert!(attributed > Decimal::ZERO, "some shared cost reached tenants");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bucket/expected.json")).unwrap()).unwrap();
    assert_eq!(unblended, dec(&expected["totals"]["unblended_cost"]), "attribution conserves the bill");
}
