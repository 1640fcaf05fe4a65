//! Attribution end to end on a generated month with generated evidence (`curflow generate
//! --evidence`): Lambda REPORT + app logs and DynamoDB capacity logs (CloudWatch export layout), a
//! daily S3 inventory and S3 access logs. The per-tenant attributed amounts equal the generator's
//! independently computed expectations exactly, per measure; what stays shared equals its expected
//! remainder, per reason; and everything still sums to the bill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::collections::BTreeMap;
use std::process::Command;

use common::{MEASURES, dec, expected_json, measure};
use curflow::aggregate::LineSource;
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};
use curflow_fixtures::Format;
use rust_decimal::Decimal;

#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn check(format: Format) {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), format, 20_000, 5, |o| {
        o.tenants = 4;
        o.evidence = true;
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let expected = expected_json(&g);
    let attribution = &expected["attribution"];
    assert!(attribution.is_object(), "expected.json has the attribution section");
    let store = dir.path().join("s.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_curflow"))
        .args(["process", g.manifest_path.to_str().unwrap(), "--store", store.to_str().unwrap()])
        .args([
            "--evidence",
            ev.dir.to_str().unwrap(),
            "--s3-prefixes",
            ev.prefix_map.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&summary["reports"][0]["coverage"]).unwrap());

    let lines = SqliteStore::open(&store).unwrap().cost_lines(BillingPeriod::new(2026, 10).unwrap()).wait().unwrap();
    // Everything still sums to the bill, per measure.
    let total = Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
    for m in MEASURES {
        assert_eq!(measure(&total, m), dec(&expected["totals"][m]), "bill total {m}");
    }
    // Attributed per tenant = the generator's expectation, every measure, exactly.
    let mut by_tenant: BTreeMap<String, Amounts> = BTreeMap::new();
    let mut unattributed = Amounts::default();
    let mut by_rule: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in &lines {
        match l.source() {
            LineSource::Attributed => {
                by_tenant
                    .entry(l.key.tenant.as_deref().map(str::to_string).unwrap())
                    .or_default()
                    .add(&l.amounts)
                    .unwrap();
                *by_rule.entry(l.attribution.as_ref().unwrap().rule.to_string()).or_default() +=
                    l.amounts.unblended_cost;
            }
            LineSource::Shared => {
                unattributed.add(&l.amounts).unwrap();
                let reason = l.unattributed_reason.as_deref().unwrap_or("none");
                let code = reason.split(':').next().unwrap().to_string();
                *by_reason.entry(code).or_default() += l.amounts.unblended_cost;
            }
            LineSource::Cur => {}
        }
    }
    let want_tenants = attribution["by_tenant"].as_object().unwrap();
    assert_eq!(by_tenant.keys().collect::<Vec<_>>(), want_tenants.keys().collect::<Vec<_>>());
    for (tenant, want) in want_tenants {
        for m in MEASURES {
            assert_eq!(measure(&by_tenant[tenant], m), dec(&want[m]), "{tenant} attributed {m}");
        }
    }
    for m in MEASURES {
        assert_eq!(measure(&unattributed, m), dec(&attribution["unattributed"][m]), "unattributed {m}");
    }
    let want_rules: BTreeMap<String, Decimal> =
        attribution["by_rule"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), dec(v))).collect();
    assert_eq!(by_rule, want_rules, "unblended attributed per rule");
    for rule in ["lambda-duration", "dynamodb-reads", "s3-storage"] {
        assert!(by_rule.get(rule).is_some_and(|v| !v.is_zero()), "rule {rule} attributed something");
    }
    // `attribution explain` accounts for the same amounts, line by line.
    let tenant = want_tenants.keys().next().unwrap();
    let explain = Command::new(env!("CARGO_BIN_EXE_curflow"))
        .args(["attribution", "explain", "--period", "2026-10", "--tenant", tenant, "--format", "json"])
        .args(["--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(explain.status.success(), "{}", String::from_utf8_lossy(&explain.stderr));
    let e: serde_json::Value = serde_json::from_slice(&explain.stdout).unwrap();
    assert_eq!(dec(&e["attributed_amortized_cost"]), dec(&want_tenants[tenant]["amortized_cost"]));
    let line_sum: Decimal = e["rows"].as_array().unwrap().iter().map(|l| dec(&l["amortized_cost"])).sum();
    assert_eq!(line_sum, dec(&want_tenants[tenant]["amortized_cost"]));
    let table = Command::new(env!("CARGO_BIN_EXE_curflow"))
        .args(["attribution", "explain", "--period", "2026-10", "--tenant", tenant, "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("By rule:") && text.contains("lambda-duration"), "{text}");

    let want_reasons: BTreeMap<String, Decimal> =
        attribution["unattributed_by_reason"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), dec(v))).collect();
    assert_eq!(by_reason, want_reasons, "unattributed unblended per reason");
}

#[test]
fn generated_evidence_attributes_exactly_as_expected_legacy_parquet() {
    check(Format::LegacyParquet);
}

#[test]
fn generated_evidence_attributes_exactly_as_expected_cur2() {
    check(Format::Cur2Parquet);
}
