//! Nothing assumes USD (issue 12 point 7): a month billed in EUR, and a month with two currencies,
//! through `process`, `costs`, `export --kind expenses`, `reconcile`, `budgets`, `nightly` and
//! `report`, end to end with the real binary on a SQLite store.
//!
//! The months are generated legacy CSV deliveries whose `lineItem/CurrencyCode` is rewritten; the
//! per-tenant totals come from the generator's `expected.json`, independent of the pipeline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use common::ok;
use curflow_fixtures::Format;
use rust_decimal::{Decimal, RoundingStrategy};

const PERIOD: &str = "2026-10";

fn curflow(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    common::run_curflow(args, None, env)
}

/// Which currency a row of tenant `tag` (trimmed; empty = untagged) and service code is billed in.
type CurrencyOf = fn(&str, &str) -> &'static str;

/// A generated October 2026 (legacy CSV, 5 tenants) with each row's currency from `currency_of`,
/// processed into `dir/s.sqlite`. Returns the store and the generator's exact amortized cost per
/// tenant (all currencies together).
fn stored_month(dir: &Path, currency_of: CurrencyOf) -> (PathBuf, BTreeMap<String, Decimal>) {
    let g = common::generate(&dir.join("bucket"), Format::LegacyCsv, 6_000, 21, |o| {
        o.tenants = 5;
        o.gzip_csv = false;
    });
    for f in &g.data_files {
        common::rewrite_csv(f, |_, header, fields| {
            let tag = header.iter().position(|h| h == "resourceTags/user:accountant_id").unwrap();
            let service = header.iter().position(|h| h == "lineItem/ProductCode").unwrap();
            let code = header.iter().position(|h| h == "lineItem/CurrencyCode").unwrap();
            assert_eq!(fields[code], "USD", "the generator writes USD");
            fields[code] = currency_of(fields[tag].trim(), &fields[service]).to_string();
        });
    }
    let store = dir.join("s.sqlite");
    ok(&curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", store.to_str().unwrap()], &[]));
    let amortized = common::expected_by_tenant(&g)
        .into_iter()
        .filter_map(|(tenant, amounts)| Some((tenant?, amounts["amortized_cost"])))
        .collect();
    (store, amortized)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `costs --by tenant --format json`: the exact amortized cost per (tenant, currency) of tenants.
fn costs_by_tenant_currency(store: &str) -> BTreeMap<(String, String), Decimal> {
    let doc = json(&ok(&curflow(
        &["costs", "--period", PERIOD, "--by", "tenant", "--format", "json", "--store", store],
        &[],
    )));
    let mut out = BTreeMap::new();
    for row in doc["rows"].as_array().unwrap() {
        if row["shared_pool"].as_bool() == Some(true) {
            continue;
        }
        let key = (row["tenant"].as_str().unwrap().to_string(), row["currency"].as_str().unwrap().to_string());
        assert!(out.insert(key, dec(row["amortized_cost"].as_str().unwrap())).is_none(), "one row per key");
    }
    out
}

/// `export --kind expenses`: the sum of the entries per (tenant, currency); every entry in cents.
fn expenses_by_tenant_currency(store: &str) -> BTreeMap<(String, String), Decimal> {
    let out =
        ok(&curflow(&["export", "--period", PERIOD, "--kind", "expenses", "--format", "csv", "--store", store], &[]));
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut sums: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for r in reader.records() {
        let r = r.unwrap();
        let amount = dec(&r[col("amount")]);
        assert!(amount.scale() <= 2);
        let key = (r[col("accountant_id")].to_string(), r[col("currency")].to_string());
        assert!(keys.insert((key.clone(), r[col("service")].to_string())), "one entry per tenant, service, currency");
        *sums.entry(key).or_default() += amount;
    }
    sums
}

/// Estimates for `tenant`: one record of 1.00 for Lambda requests.
fn import_estimates(dir: &Path, store: &str, tenants: &[&str]) {
    let mut csv = String::from(
        "accountant_id,timestamp,month,operation,resource_type,quantity,unit_cost,estimated_cost,source\n",
    );
    for t in tenants {
        csv.push_str(&format!("{t},2026-10-15T12:00:00Z,{PERIOD},work,lambda_compute,100,0.01,1.00,estimate\n"));
    }
    let path = dir.join("estimates.csv");
    std::fs::write(&path, csv).unwrap();
    ok(&curflow(&["estimates", "import", path.to_str().unwrap(), "--store", store], &[]));
}

fn nightly(store: &str, now: &str, env: &[(&str, &str)]) -> serde_json::Value {
    json(&ok(&curflow(&["nightly", "--now", now, "--store", store, "--format", "json"], env)))
}

#[test]
fn a_month_billed_in_eur_is_reconciled_budgeted_exported_and_reported_in_eur() {
    let dir = tempfile::tempdir().unwrap();
    let (store_path, expected) = stored_month(dir.path(), |_, _| "EUR");
    let s = store_path.to_str().unwrap();

    // Costs and expenses: every amount in EUR, each tenant's entries summing to its exact total to the cent.
    let costs = costs_by_tenant_currency(s);
    assert!(costs.keys().all(|(_, c)| c == "EUR"), "{costs:?}");
    let expenses = expenses_by_tenant_currency(s);
    assert_eq!(expenses.len(), expected.len(), "every tenant has entries: {expenses:?}");
    for (tenant, exact) in &expected {
        assert_eq!(costs[&(tenant.clone(), "EUR".into())], *exact, "{tenant}");
        assert_eq!(expenses[&(tenant.clone(), "EUR".into())], cents(*exact), "{tenant}");
    }

    // Reconcile: the estimates are in the month's billing currency, EUR (no USD anywhere).
    import_estimates(dir.path(), s, &["acct-0001", "acct-0002"]);
    let args = ["reconcile", "--period", PERIOD, "--format", "json", "--now", "2026-11-20T00:00:00Z", "--store", s];
    let doc = json(&ok(&curflow(&args, &[])));
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len(), "{doc}");
    for r in rows {
        assert_eq!(r["currency"], "EUR", "{r}");
        assert_eq!(dec(r["actual"].as_str().unwrap()), expected[r["accountant_id"].as_str().unwrap()], "{r}");
    }
    assert_eq!(doc["not_compared"], serde_json::json!([]), "{doc}");
    let table = ok(&curflow(&args[..args.len() - 4].iter().chain(&["--store", s]).copied().collect::<Vec<_>>(), &[]));
    assert!(table.contains("EUR"), "the table names the currency: {table}");

    // A EUR budget far below acct-0001's cost: alerts in EUR, with EUR forecasts.
    let set = ok(&curflow(
        &["budgets", "set", "--tenant", "acct-0001", "--amount", "0.01", "--currency", "EUR", "--store", s],
        &[],
    ));
    assert!(set.contains("0.01 EUR"), "{set}");
    let night = nightly(s, "2026-10-20T03:30:00Z", &[]);
    let alerts = night["rows"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "80 % and 100 %: {night}");
    for a in alerts {
        assert_eq!((a["currency"].as_str(), a["delivery"].as_str()), (Some("EUR"), Some("sent")), "{a}");
        assert!(a["message"].as_str().unwrap().contains(" EUR"), "{a}");
    }
    let forecasts = night["forecasts"].as_array().unwrap();
    assert_eq!(forecasts.len(), expected.len(), "{night}");
    assert!(forecasts.iter().all(|f| f["currency"] == "EUR"), "{night}");
    assert_eq!(night["budget_currency_mismatches"], serde_json::json!([]));

    // The report is in EUR and shows nothing in another currency.
    let html = report(dir.path(), s);
    assert!(html.contains("amounts in EUR"), "report currency");
    assert!(!html.contains("other-currency-"), "no other currency");
}

/// acct-0001 is billed in EUR, acct-0002 in EUR (EC2) and USD (the rest), everyone else and the
/// untagged pool in USD.
fn two_currencies(tag: &str, service: &str) -> &'static str {
    match (tag, service) {
        ("acct-0001", _) | ("acct-0002", "AmazonEC2") => "EUR",
        _ => "USD",
    }
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn a_month_with_two_currencies_never_adds_them_and_compares_budgets_only_in_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (store_path, expected) = stored_month(dir.path(), two_currencies);
    let s = store_path.to_str().unwrap();

    // Per tenant, its currencies add up to the generator's total; expenses are per currency, each
    // summing to that currency's exact total to the cent.
    let costs = costs_by_tenant_currency(s);
    for (tenant, exact) in &expected {
        let sum: Decimal = costs.iter().filter(|((t, _), _)| t == tenant).map(|(_, v)| *v).sum();
        assert_eq!(sum, *exact, "{tenant}");
    }
    let currencies = |t: &str| costs.keys().filter(|(x, _)| x == t).map(|(_, c)| c.as_str()).collect::<Vec<_>>();
    assert_eq!(currencies("acct-0001"), ["EUR"]);
    assert_eq!(currencies("acct-0002"), ["EUR", "USD"]);
    assert_eq!(currencies("acct-0003"), ["USD"]);
    let expenses = expenses_by_tenant_currency(s);
    assert_eq!(expenses.keys().collect::<Vec<_>>(), costs.keys().collect::<Vec<_>>());
    for (key, exact) in &costs {
        assert_eq!(expenses[key], cents(*exact), "{key:?}");
    }

    // Reconcile: estimates in the month's billing currency (USD, most lines); EUR cost is listed as
    // not compared, never added to a variance.
    import_estimates(dir.path(), s, &["acct-0001", "acct-0002", "acct-0003"]);
    let args = ["reconcile", "--period", PERIOD, "--format", "json", "--now", "2026-11-20T00:00:00Z", "--store", s];
    let doc = json(&ok(&curflow(&args, &[])));
    let actual_of = |doc: &serde_json::Value, t: &str| -> Option<Decimal> {
        let rows = doc["rows"].as_array().unwrap();
        rows.iter().find(|r| r["accountant_id"] == t).map(|r| dec(r["actual"].as_str().unwrap()))
    };
    assert!(doc["rows"].as_array().unwrap().iter().all(|r| r["currency"] == "USD"), "{doc}");
    assert_eq!(actual_of(&doc, "acct-0002"), Some(costs[&("acct-0002".into(), "USD".into())]));
    assert_eq!(actual_of(&doc, "acct-0001"), Some(Decimal::ZERO), "its estimate meets no USD cost");
    let not_compared: BTreeMap<(String, String), Decimal> = doc["not_compared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let key = (n["accountant_id"].as_str().unwrap().to_string(), n["currency"].as_str().unwrap().to_string());
            (key, dec(n["actual"].as_str().unwrap()))
        })
        .collect();
    let eur: BTreeMap<_, _> = costs.iter().filter(|((_, c), _)| c == "EUR").map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(not_compared, eur, "{doc}");
    // With the estimates declared in EUR, the EUR cost is compared and the USD cost listed instead.
    let doc = json(&ok(&curflow(&args, &[("CURFLOW_ESTIMATES_CURRENCY", "EUR")])));
    assert!(doc["rows"].as_array().unwrap().iter().all(|r| r["currency"] == "EUR"), "{doc}");
    assert_eq!(actual_of(&doc, "acct-0001"), Some(costs[&("acct-0001".into(), "EUR".into())]));
    assert_eq!(actual_of(&doc, "acct-0002"), Some(costs[&("acct-0002".into(), "EUR".into())]));

    // Budgets: acct-0001's tiny USD budget meets only EUR cost: no alert, a reported mismatch.
    // acct-0002's tiny EUR budget is compared with its EUR cost only; acct-0003's USD budget alerts.
    for (tenant, currency) in [("acct-0001", "USD"), ("acct-0002", "EUR"), ("acct-0003", "USD")] {
        ok(&curflow(
            &["budgets", "set", "--tenant", tenant, "--amount", "0.01", "--currency", currency, "--store", s],
            &[],
        ));
    }
    let night = nightly(s, "2026-10-20T03:30:00Z", &[]);
    let alerted: BTreeSet<(String, String)> = night["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["accountant_id"].as_str().unwrap().to_string(), a["currency"].as_str().unwrap().to_string()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("acct-0002", "EUR"), ("acct-0003", "USD")].iter().map(|(t, c)| (t.to_string(), c.to_string())).collect();
    assert_eq!(alerted, want, "{night}");
    let mismatches = night["budget_currency_mismatches"].as_array().unwrap();
    let described: BTreeSet<(String, String, String)> = mismatches
        .iter()
        .map(|m| {
            (
                m["accountant_id"].as_str().unwrap().to_string(),
                m["budget_currency"].as_str().unwrap().to_string(),
                m["actual_currency"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [("acct-0001", "USD", "EUR"), ("acct-0002", "EUR", "USD")]
        .iter()
        .map(|(t, b, a)| (t.to_string(), b.to_string(), a.to_string()))
        .collect();
    assert_eq!(described, want, "{night}");
    // One forecast per tenant and currency.
    let forecasts: BTreeSet<(String, String)> = night["forecasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["accountant_id"].as_str().unwrap().to_string(), f["currency"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(forecasts.len(), costs.len(), "{night}");
    let text = ok(&curflow(&["nightly", "--now", "2026-10-21T03:30:00Z", "--store", s], &[]));
    assert!(text.contains("budget of acct-0001 is 0.01 USD"), "{text}");

    // The report draws one currency and names the other's total.
    let html = report(dir.path(), s);
    assert!(html.contains("amounts in USD") && html.contains("id=\"other-currency-EUR\""), "EUR named apart");
}

/// `curflow report` of [`PERIOD`] from the store at `store`, as of 2026-10-20: the HTML.
fn report(dir: &Path, store: &str) -> String {
    let html_path = dir.join("report.html");
    let out = html_path.to_str().unwrap();
    ok(&curflow(&["report", "--period", PERIOD, "--out", out, "--store", store, "--now", "2026-10-20T00:00:00Z"], &[]));
    std::fs::read_to_string(&html_path).unwrap()
}
