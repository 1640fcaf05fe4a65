//! Cost Explorer as a second source, end to end: the `curflow` binary against moto_server through
//! the real AWS SDK (STS `AssumeRole`, Cost Explorer `GetCostAndUsage`), results seeded page by
//! page per account through moto's `/moto-api/static/ce/cost-and-usage-results`.
//!
//! moto's STS accepts any role ARN and external id (it checks neither, see moto/sts/models.py), so
//! the failing account here fails in `GetCostAndUsage`'s result (an amount that is not a decimal),
//! which is the failure path an AssumeRole error also takes (one account's error, others go on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Wait, aws_endpoint, ok, run_curflow};
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};
use curflow_fixtures::Format;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A 12-digit account id no other run of the suite used (moto keeps results per account and
/// request body for the server's lifetime).
fn account_id(n: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    format!("{:012}", (nanos / 1000 + n * 7_919 + u64::from(std::process::id())) % 1_000_000_000_000)
}

fn metric(amount: &str, unit: &str) -> Value {
    json!({"Amount": amount, "Unit": unit})
}

/// One group of a daily result: (service, tenant or "" for untagged, unblended, net, amortized, usage).
type Seed = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

fn day(date: &str, next: &str, groups: &[Seed], estimated: bool) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(service, tenant, u, n, a, q)| {
            json!({
                "Keys": [service, format!("accountant_id${tenant}")],
                "Metrics": {
                    "UnblendedCost": metric(u, "USD"),
                    "NetUnblendedCost": metric(n, "USD"),
                    "AmortizedCost": metric(a, "USD"),
                    "UsageQuantity": metric(q, "N/A"),
                }
            })
        })
        .collect();
    json!({"TimePeriod": {"Start": date, "End": next}, "Total": {}, "Groups": groups, "Estimated": estimated})
}

fn page(results: Vec<Value>, next_token: Option<&str>) -> Value {
    let mut p = json!({"ResultsByTime": results, "DimensionValueAttributes": [], "GroupDefinitions": []});
    if let Some(t) = next_token {
        p["NextPageToken"] = json!(t);
    }
    p
}

/// Queues `pages` as the results of `account`'s next `GetCostAndUsage` requests.
fn seed(account: &str, pages: Vec<Value>) {
    let url = format!("{}/moto-api/static/ce/cost-and-usage-results", aws_endpoint());
    let body = json!({"account_id": account, "results": pages}).to_string();
    let client = reqwest::Client::new();
    let resp = client.post(url).header("content-type", "application/json").body(body).send().wait().unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

const A_PAGE1: [Seed; 3] = [
    ("Amazon Elastic Compute Cloud - Compute", "acme", "12.3456789012", "11.3456789012", "12.0000000001", "24"),
    ("Amazon Simple Storage Service", "beta", "0.0000000001", "0.0000000001", "0", "1.5"),
    ("AWS Lambda", "", "3.14", "3.00", "3.14", "1000000"),
];
const A_PAGE2: [Seed; 2] = [
    ("Amazon Elastic Compute Cloud - Compute", "acme", "1234567.8912345678", "1234567.8912345678", "1", "48"),
    ("AWS Lambda", "", "0.01", "0.01", "0.01", "5"),
];
const B_PAGE1: [Seed; 1] = [("Amazon Elastic Compute Cloud - Compute", "acme", "0.6543210988", "0.5", "0.6", "1")];
const B_PAGE2: [Seed; 1] = [("Amazon Simple Storage Service", "beta", "7", "7", "7", "2")];
const B_PAGE3: [Seed; 1] = [("AWS Lambda", "gamma", "100.000000001", "99", "100", "3")];

/// Expected stored sums per (tenant, service, day): unblended, net, amortized, usage.
fn expected() -> BTreeMap<(Option<String>, String, String), [Decimal; 4]> {
    expected_of(&[
        ("2026-10-01", &A_PAGE1),
        ("2026-10-02", &A_PAGE2),
        ("2026-10-01", &B_PAGE1),
        ("2026-10-01", &B_PAGE2),
        ("2026-10-02", &B_PAGE3),
    ])
}

fn expected_of(days: &[(&str, &[Seed])]) -> BTreeMap<(Option<String>, String, String), [Decimal; 4]> {
    let mut out: BTreeMap<_, [Decimal; 4]> = BTreeMap::new();
    for (date, groups) in days.iter().copied() {
        for (service, tenant, u, n, a, q) in groups {
            let key = ((!tenant.is_empty()).then(|| tenant.to_string()), service.to_string(), date.to_string());
            let e = out.entry(key).or_default();
            for (slot, v) in e.iter_mut().zip([u, n, a, q]) {
                *slot = curflow::money::exact_add(*slot, v.parse().unwrap()).unwrap();
            }
        }
    }
    out
}

fn stored(store: &Path) -> BTreeMap<(Option<String>, String, String), [Decimal; 4]> {
    stored_in(&SqliteStore::open(store).unwrap())
}

fn stored_in(store: &dyn CostStore) -> BTreeMap<(Option<String>, String, String), [Decimal; 4]> {
    let period: BillingPeriod = "2026-10".parse().unwrap();
    let lines = store.cost_lines(period).wait().unwrap();
    let mut out: BTreeMap<_, Amounts> = BTreeMap::new();
    for l in lines {
        assert_eq!(l.key.line_item_type.as_str(), "CostExplorer");
        let key =
            (l.key.tenant.as_deref().map(str::to_string), l.key.service.to_string(), l.key.usage_date.to_string());
        out.entry(key).or_default().add(&l.amounts).unwrap();
    }
    out.into_iter()
        .map(|(k, a)| (k, [a.unblended_cost, a.net_unblended_cost, a.amortized_cost, a.usage_amount]))
        .collect()
}

fn config(dir: &Path, accounts: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = format!(
        "store = {:?}\nce-requests-per-second = 20\nce-manual-sync-interval-minutes = 0\n",
        dir.join("s.sqlite").display().to_string()
    );
    for (name, id) in accounts {
        text += &format!(
            "\n[[accounts]]\nname = \"{name}\"\naccount_id = \"{id}\"\nrole_arn = \"arn:aws:iam::{id}:role/curflow-ce\"\nexternal_id = \"ext-{name}-do-not-log\"\n"
        );
    }
    let path = dir.join("curflow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sync(config: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "ce",
        "sync",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-02",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = run_curflow(&args, None, &[("CURFLOW_LOG", "debug")]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn accounts_status(config: &Path) -> Vec<Value> {
    let out =
        ok(&run_curflow(&["--config", config.to_str().unwrap(), "accounts", "status", "--format", "json"], None, &[]));
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

fn outcome<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["accounts"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
}

#[test]
fn two_accounts_sync_exactly_one_failure_is_isolated_and_the_cur_replaces_the_month() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (account_id(1), account_id(2), account_id(3));
    seed(
        &a,
        vec![
            page(vec![day("2026-10-01", "2026-10-02", &A_PAGE1, false)], Some("a-2")),
            page(vec![day("2026-10-02", "2026-10-03", &A_PAGE2, true)], None),
        ],
    );
    seed(
        &b,
        vec![
            page(vec![day("2026-10-01", "2026-10-02", &B_PAGE1, false)], Some("b-2")),
            page(vec![day("2026-10-01", "2026-10-02", &B_PAGE2, false)], Some("b-3")),
            page(vec![day("2026-10-02", "2026-10-03", &B_PAGE3, false)], None),
        ],
    );
    seed(
        &c,
        vec![page(vec![day("2026-10-01", "2026-10-02", &[("AWS Lambda", "x", "1.2.3", "1", "1", "1")], false)], None)],
    );
    let config = config(dir.path(), &[("alpha", &a), ("bravo", &b), ("charlie", &c)]);
    let store = dir.path().join("s.sqlite");

    // First sync: alpha and bravo stored exactly, charlie's failure reported, the run exits 4.
    let (code, report, stderr) = sync(&config, &[]);
    assert_eq!(code, Some(4), "{report}");
    assert!(!stderr.contains("do-not-log") && !report.to_string().contains("do-not-log"), "external id leaked");
    assert_eq!(outcome(&report, "alpha")["requests"], 2);
    assert_eq!(outcome(&report, "bravo")["requests"], 3);
    assert_eq!(outcome(&report, "alpha")["error"], Value::Null);
    let failure = outcome(&report, "charlie")["error"].as_str().unwrap().to_string();
    assert!(failure.contains("GetCostAndUsage") && failure.contains("\"1.2.3\""), "{failure}");
    assert_eq!(report["requests"], 6);
    assert_eq!(report["requests_cost"], "0.06");
    assert_eq!(report["periods"][0]["outcome"], "written");
    assert_eq!(report["periods"][0]["provisional"], true, "alpha's 2026-10-02 is Estimated");
    assert_eq!(stored(&store), expected());
    let version = report["periods"][0]["version"].as_str().unwrap().to_string();
    let status = accounts_status(&config);
    assert_eq!(status[0]["last_error"], Value::Null);
    assert_eq!((status[0]["name"].as_str(), status[0]["total_requests"].as_u64()), (Some("alpha"), Some(2)));
    assert!(status[0]["last_synced"].is_string());
    assert!(status[2]["last_error"].as_str().unwrap().contains("\"1.2.3\""), "{}", status[2]);
    assert_eq!(status[2]["last_synced"], Value::Null);
    let list = ok(&run_curflow(&["--config", config.to_str().unwrap(), "accounts", "list"], None, &[]));
    assert!(list.contains("arn:aws:iam::") && !list.contains("do-not-log"), "{list}");
    assert!(version.starts_with("cost-explorer-"), "{version}");

    // The same days again (moto answers the same requests with the same results): a no-op.
    let (_, again, _) = sync(&config, &[]);
    assert_eq!(again["periods"][0]["outcome"], "unchanged", "{again}");
    assert_eq!(again["periods"][0]["version"], version.as_str());
    // One account alone: the other account's stored lines are kept, so nothing changes either.
    let (code, alone, _) = sync(&config, &["--account", "alpha"]);
    assert_eq!(code, Some(0), "{alone}");
    assert_eq!((alone["requests"].as_u64(), alone["accounts"].as_array().unwrap().len()), (Some(2), 1));
    assert_eq!(alone["periods"][0]["outcome"], "unchanged", "{alone}");
    assert_eq!(stored(&store), expected());
    assert_eq!(accounts_status(&config)[0]["total_requests"], 6, "three syncs of alpha, two requests each");

    // `costs` reads the Cost Explorer month like a CUR month.
    let costs = ok(&run_curflow(
        &["--config", config.to_str().unwrap(), "costs", "--period", "2026-10", "--by", "tenant", "--format", "json"],
        None,
        &[],
    ));
    assert!(costs.contains("gamma") && costs.contains("acme"), "{costs}");

    the_cur_replaces_the_month_and_is_never_replaced_back(dir.path(), &config, &store);
}

/// After a Cost Explorer sync of 2026-10: the month's CUR replaces the Cost Explorer version
/// (totals are the CUR's, never the sum), and a later sync leaves the CUR alone.
fn the_cur_replaces_the_month_and_is_never_replaced_back(dir: &Path, config: &Path, store: &Path) {
    let cur = dir.join("cur");
    let generated = common::generate(&cur, Format::LegacyParquet, 2_000, 15, |_| {});
    ok(&run_curflow(
        &["--config", config.to_str().unwrap(), "process", generated.manifest_path.to_str().unwrap()],
        None,
        &[],
    ));
    let alone_store = dir.join("cur-only.sqlite");
    ok(&run_curflow(
        &["--store", alone_store.to_str().unwrap(), "process", generated.manifest_path.to_str().unwrap()],
        None,
        &[],
    ));
    let period: BillingPeriod = "2026-10".parse().unwrap();
    assert_eq!(common::stored_total(store, period), common::stored_total(&alone_store, period));
    let lines = SqliteStore::open(store).unwrap().cost_lines(period).wait().unwrap();
    assert!(lines.iter().all(|l| l.key.line_item_type.as_str() != "CostExplorer"));

    // A later sync never replaces the CUR.
    let (_, after, _) = sync(config, &["--account", "alpha"]);
    assert_eq!(after["periods"][0]["outcome"], "cur_stored", "{after}");
    assert_eq!(common::stored_total(store, period), common::stored_total(&alone_store, period));
}

/// The same sync into the DynamoDB store: the trait makes it the same code; this shows it.
#[test]
fn a_sync_into_dynamodb_stores_the_same_exact_amounts_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let a = account_id(11);
    seed(
        &a,
        vec![
            page(vec![day("2026-10-01", "2026-10-02", &A_PAGE1, false)], Some("a-2")),
            page(vec![day("2026-10-02", "2026-10-03", &A_PAGE2, false)], None),
        ],
    );
    let config = config(dir.path(), &[("alpha", &a)]);
    let table = common::unique_name("curflow-ce");
    let store = curflow::store::dynamodb::DynamoStore::connect(&table, &common::aws_settings()).wait().unwrap();
    store.create_table_if_missing().wait().unwrap();
    let location = format!("dynamodb://{table}");
    let (code, report, _) = sync(&config, &["--store", &location]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["periods"][0]["outcome"], "written");
    assert_eq!(report["periods"][0]["provisional"], false);
    assert_eq!(stored_in(&store), expected_of(&[("2026-10-01", &A_PAGE1), ("2026-10-02", &A_PAGE2)]));
    let (_, again, _) = sync(&config, &["--store", &location]);
    assert_eq!(again["periods"][0]["outcome"], "unchanged", "{again}");
    let statuses = curflow::store::FinanceStore::account_statuses(&store).wait().unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!((statuses[0].total_requests, statuses[0].last_error.as_deref()), (4, None));
}

/// A spent request budget stops the run cleanly: the account it cut short stores nothing and says
/// why, the account before it is stored, the one after it is not asked.
#[test]
fn an_exhausted_request_budget_stops_cleanly_with_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (account_id(21), account_id(22), account_id(23));
    seed(
        &a,
        vec![
            page(vec![day("2026-10-01", "2026-10-02", &A_PAGE1, false)], Some("a-2")),
            page(vec![day("2026-10-02", "2026-10-03", &A_PAGE2, false)], None),
        ],
    );
    seed(
        &b,
        vec![
            page(vec![day("2026-10-01", "2026-10-02", &B_PAGE1, false)], Some("b-2")),
            page(vec![day("2026-10-01", "2026-10-02", &B_PAGE2, false)], None),
        ],
    );
    let config = config(dir.path(), &[("alpha", &a), ("bravo", &b), ("charlie", &c)]);
    let text = std::fs::read_to_string(&config).unwrap().replacen("\n", "\nce-request-budget = 3\n", 1);
    std::fs::write(&config, text).unwrap();
    let (code, report, _) = sync(&config, &[]);
    assert_eq!(code, Some(4), "{report}");
    assert_eq!(report["requests"], 3);
    assert_eq!(outcome(&report, "alpha")["error"], Value::Null);
    assert_eq!(outcome(&report, "bravo")["requests"], 1);
    assert!(outcome(&report, "bravo")["error"].as_str().unwrap().contains("request budget of 3"), "{report}");
    assert_eq!(outcome(&report, "charlie")["requests"], 0);
    assert_eq!(
        stored(&dir.path().join("s.sqlite")),
        expected_of(&[("2026-10-01", &A_PAGE1), ("2026-10-02", &A_PAGE2)])
    );

    // With the default interval (15 minutes) a second sync right away is refused before any request.
    let text = std::fs::read_to_string(&config).unwrap().replace("ce-manual-sync-interval-minutes = 0\n", "");
    std::fs::write(&config, text).unwrap();
    let out = run_curflow(&["--config", config.to_str().unwrap(), "ce", "sync", "--account", "alpha"], None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("alpha: wait 14m") || stderr.contains("alpha: wait 15m"), "{stderr}");
    assert_eq!(accounts_status(&config)[0]["total_requests"], 2, "the refused run sent nothing");
}

/// `ce compare` on a month whose Cost Explorer totals differ from the CUR's on one service and
/// tenant flags exactly that service and that tenant.
#[test]
fn ce_compare_flags_exactly_the_service_and_tenant_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = account_id(31);
    let config = config(dir.path(), &[("alpha", &a)]);
    let generated = common::generate(&dir.path().join("cur"), Format::LegacyParquet, 2_000, 16, |_| {});
    let cfg = config.to_str().unwrap();
    ok(&run_curflow(&["--config", cfg, "process", generated.manifest_path.to_str().unwrap()], None, &[]));
    let period: BillingPeriod = "2026-10".parse().unwrap();
    let mut pairs: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut by_service: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in SqliteStore::open(&dir.path().join("s.sqlite")).unwrap().cost_lines(period).wait().unwrap() {
        let tenant = l.key.tenant.as_deref().unwrap_or_default().to_string();
        let slot = pairs.entry((l.key.service.to_string(), tenant)).or_default();
        *slot = curflow::money::exact_add(*slot, l.amounts.unblended_cost).unwrap();
        let slot = by_service.entry(l.key.service.to_string()).or_default();
        *slot = curflow::money::exact_add(*slot, l.amounts.unblended_cost).unwrap();
    }
    assert!(by_service.len() >= 3 && pairs.len() >= 6, "{pairs:?}");
    // One tagged (service, tenant) pair costs more in Cost Explorer: by its service's total + 25.
    let (service, tenant) = pairs.keys().find(|(_, t)| !t.is_empty()).unwrap().clone();
    let delta = by_service[&service] + Decimal::from(25);
    let groups: Vec<Value> = pairs
        .iter()
        .map(|((s, t), total)| {
            let amount = if (s, t) == (&service, &tenant) { *total + delta } else { *total };
            json!({"Keys": [s, format!("accountant_id${t}")], "Metrics": {"UnblendedCost": metric(&amount.to_string(), "USD")}})
        })
        .collect();
    let (first, rest) = groups.split_at(groups.len() / 2);
    let month = |groups: &[Value]| json!({"TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Total": {}, "Groups": groups, "Estimated": false});
    seed(&a, vec![page(vec![month(first)], Some("m-2")), page(vec![month(rest)], None)]);
    let out =
        ok(&run_curflow(&["--config", cfg, "ce", "compare", "--period", "2026-10", "--format", "json"], None, &[]));
    let report: Value = serde_json::from_str(&out).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let flagged = |level: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r["level"] == level && r["flagged"] == true)
            .map(|r| r["key"].as_str().unwrap())
            .collect()
    };
    assert_eq!(flagged("service"), [service.as_str()], "{report}");
    assert_eq!(flagged("tenant"), [tenant.as_str()], "{report}");
    assert_eq!(report["requests"], 2);
    let row = rows.iter().find(|r| r["level"] == "service" && r["key"] == service.as_str()).unwrap();
    assert_eq!(row["difference"].as_str().unwrap().parse::<Decimal>().unwrap(), -delta);
    let pool = rows.iter().find(|r| r["level"] == "tenant" && r["key"] == "UNATTRIBUTED");
    assert!(pool.is_none_or(|r| r["flagged"] == false), "{report}");
}
