//! Cost Explorer in the deployed function, end to end: the real `curflow-lambda` binary (under the
//! local Runtime API of `support/runtime_api.rs`) against moto_server through the real AWS SDK,
//! its accounts from `CURFLOW_ACCOUNTS` as the CDK stack sets them.
//!
//! - `{"curflow":"ce-sync","account":"NAME"}` syncs that account; a second one within
//!   `ce-manual-sync-interval-minutes` is refused (a logged outcome, `Ok`, not a retried error).
//! - `{"curflow":"ce-sync"}` (the daily rule) syncs every enabled account: stored per-tenant daily
//!   amounts equal the seeded ones exactly.
//! - `{"curflow":"nightly"}` fetches AWS's forecast per account (`GetCostForecast`, seeded through
//!   `/moto-api/static/ce/cost-forecast-results`, the gap scripts/moto_server.py closes): one account's
//!   exact amount is stored, the other's AccessDenied is "not available" and the run still succeeds;
//!   each request is counted in the account's requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use common::{Wait, aws_endpoint};
use curflow::BillingPeriod;
use curflow::store::{CostStore, FinanceStore, SqliteStore};
use runtime_api::{Answer, RuntimeApi};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A 12-digit account id no other run used (moto keeps results per account for its lifetime).
fn account_id(n: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    format!("{:012}", (nanos / 1000 + n * 7_919 + u64::from(std::process::id())) % 1_000_000_000_000)
}

fn post(path: &str, body: Value) {
    let url = format!("{}{path}", aws_endpoint());
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .wait()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{path}");
}

/// One page of `GetCostAndUsage` results: (day, service, tenant or "", unblended).
fn page(groups: &[(NaiveDate, &str, &str, &str)]) -> Value {
    let mut by_day: BTreeMap<NaiveDate, Vec<Value>> = BTreeMap::new();
    for (day, service, tenant, cost) in groups {
        let m = |amount: &str, unit: &str| json!({"Amount": amount, "Unit": unit});
        by_day.entry(*day).or_default().push(json!({
            "Keys": [service, format!("accountant_id${tenant}")],
            "Metrics": {"UnblendedCost": m(cost, "USD"), "NetUnblendedCost": m(cost, "USD"),
                        "AmortizedCost": m(cost, "USD"), "UsageQuantity": m("1", "N/A")}
        }));
    }
    let results: Vec<Value> = by_day
        .into_iter()
        .map(|(d, g)| {
            json!({"TimePeriod": {"Start": d.to_string(), "End": (d + Days::new(1)).to_string()},
                             "Total": {}, "Groups": g, "Estimated": true})
        })
        .collect();
    json!({"ResultsByTime": results, "DimensionValueAttributes": [], "GroupDefinitions": []})
}

/// The function's process, started as Lambda starts it, with the accounts in `CURFLOW_ACCOUNTS`.
struct Function {
    child: Child,
    api: RuntimeApi,
    log: PathBuf,
}

impl Function {
    fn start(dir: &Path, store: &Path, accounts: &str) -> Self {
        let api = RuntimeApi::start();
        let log = dir.join("function.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_curflow-lambda"))
            .env_clear()
            .env("CURFLOW_STORE", store)
            .env("CURFLOW_ACCOUNTS", accounts)
            .env("CURFLOW_CE_REQUESTS_PER_SECOND", "50")
            .env("CURFLOW_CE_MANUAL_SYNC_INTERVAL_MINUTES", "15")
            .env("CURFLOW_SPILL_DIR", dir.join("spill"))
            .env("CURFLOW_AWS_ENDPOINT_URL", aws_endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "curflow")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
            .env("HOME", dir)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, api, log }
    }

    /// The handler's response to `event` (an error answer fails the test with the log).
    fn invoke(&mut self, event: Value) -> Value {
        let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
        match self.api.invoke(event, Duration::from_secs(120)) {
            Some(Answer::Response(v)) => v,
            Some(Answer::Error(e)) => panic!("error answer {e}; log:\n{}", log()),
            Some(Answer::InitError(e)) => panic!("init error {e}; log:\n{}", log()),
            None => panic!("no answer; log:\n{}", log()),
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Per (tenant, service, day) unblended cost stored over the periods of `days`.
fn stored(store: &Path, days: &[NaiveDate]) -> BTreeMap<(Option<String>, String, NaiveDate), Decimal> {
    let store = SqliteStore::open(store).unwrap();
    let periods: std::collections::BTreeSet<_> = days.iter().map(|d| BillingPeriod::containing(*d)).collect();
    let mut out: BTreeMap<_, Decimal> = BTreeMap::new();
    for p in periods {
        for l in store.cost_lines(p).wait().unwrap() {
            let key = (l.key.tenant.as_deref().map(str::to_string), l.key.service.to_string(), l.key.usage_date);
            let slot = out.entry(key).or_default();
            *slot = curflow::money::exact_add(*slot, l.amounts.unblended_cost).unwrap();
        }
    }
    out
}

fn action(response: &Value) -> (&str, &str) {
    let r = &response["results"][0];
    (r["action"].as_str().unwrap_or(""), r["detail"].as_str().unwrap_or(""))
}

/// `curflow accounts status` shows alpha's stored forecast, and beta's denial with the reason.
fn assert_accounts_status_shows_the_forecasts(dir: &Path, store: &Path, accounts: &str) {
    let config = dir.join("curflow.toml");
    std::fs::write(&config, format!("store = {:?}\naccounts = {accounts}\n", store.display().to_string())).unwrap();
    let status = common::ok(&common::run_curflow(
        &["--config", config.to_str().unwrap(), "accounts", "status", "--format", "json"],
        None,
        &[],
    ));
    let status: Value = serde_json::from_str(&status).unwrap();
    let shown = |name: &str| {
        let row = status.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap();
        row["aws_forecast"].as_str().unwrap_or_default().to_string()
    };
    assert!(shown("alpha").starts_with("321.0000000009 USD from "), "{status}");
    assert!(shown("beta").starts_with("not available: ") && shown("beta").contains("AccessDenied"), "{status}");
}

#[test]
fn the_function_syncs_on_the_daily_and_manual_events_and_shows_aws_forecasts_beside_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lambda.sqlite");
    let (a, b) = (account_id(1), account_id(2));
    let today = Utc::now().date_naive();
    let (d1, d2) = (today - Days::new(2), today - Days::new(1));
    let seeds_a = [(d1, "Amazon EC2", "acme", "12.3456789012"), (d2, "AWS Lambda", "", "0.0000000001")];
    let seeds_b = [(d1, "Amazon S3", "beta", "7.77"), (d2, "Amazon EC2", "acme", "1234567.8912345678")];
    post("/moto-api/static/ce/cost-and-usage-results", json!({"account_id": a, "results": [page(&seeds_a)]}));
    post("/moto-api/static/ce/cost-and-usage-results", json!({"account_id": b, "results": [page(&seeds_b)]}));
    let accounts = format!(
        "[{{name = \"alpha\", account_id = \"{a}\", role_arn = \"arn:aws:iam::{a}:role/curflow-ce\", external_id = \"ext-alpha-do-not-log\"}}, \
          {{name = \"beta\", account_id = \"{b}\", role_arn = \"arn:aws:iam::{b}:role/curflow-ce\", external_id = \"ext-beta-do-not-log\"}}]"
    );
    let mut function = Function::start(dir.path(), &store, &accounts);

    // A manual sync of beta, then a second one within the interval: refused, nothing requested.
    let first = function.invoke(json!({"curflow": "ce-sync", "account": "beta"}));
    assert_eq!((first["status"].as_str(), action(&first).0), (Some("ok"), "ce_sync"), "{first}");
    assert!(action(&first).1.contains("synced 1 of 1 account(s)"), "{first}");
    let again = function.invoke(json!({"curflow": "ce-sync", "account": "beta"}));
    assert_eq!(action(&again).0, "refused", "{again}");
    assert!(action(&again).1.contains("ce-manual-sync-interval-minutes") && action(&again).1.contains("try again in"));
    let sqlite = SqliteStore::open(&store).unwrap();
    let beta = |s: &SqliteStore| s.account_statuses().wait().unwrap().into_iter().find(|s| s.name == "beta").unwrap();
    assert_eq!(beta(&sqlite).total_requests, 1, "the refused sync sent nothing");

    // The daily event: every account (no interval), amounts exactly as seeded.
    let daily = function.invoke(json!({"curflow": "ce-sync"}));
    assert!(action(&daily).1.contains("synced 2 of 2 account(s)"), "{daily}");
    let mut expected: BTreeMap<_, Decimal> = BTreeMap::new();
    for (day, service, tenant, cost) in seeds_a.iter().chain(&seeds_b) {
        let key = ((!tenant.is_empty()).then(|| tenant.to_string()), service.to_string(), *day);
        let slot = expected.entry(key).or_default();
        *slot = curflow::money::exact_add(*slot, cost.parse().unwrap()).unwrap();
    }
    assert_eq!(stored(&store, &[d1, d2]), expected);

    // Nightly: AWS's forecasts, one exact, one denied; the run succeeds and counts both requests.
    post(
        "/moto-api/static/ce/cost-forecast-results",
        json!({"account_id": a,
        "result": {"Total": {"Amount": "321.0000000009", "Unit": "USD"}, "ForecastResultsByTime": []}}),
    );
    post(
        "/moto-api/static/ce/cost-forecast-results",
        json!({"account_id": b,
        "error": {"code": "AccessDeniedException", "message": "not authorized to perform: ce:GetCostForecast"}}),
    );
    let before: BTreeMap<String, u64> =
        sqlite.account_statuses().wait().unwrap().into_iter().map(|s| (s.name, s.total_requests)).collect();
    let nightly = function.invoke(json!({"curflow": "nightly"}));
    assert_eq!((nightly["status"].as_str(), action(&nightly).0), (Some("ok"), "nightly"), "{nightly}");
    assert!(
        action(&nightly).1.contains("beta not available (") && action(&nightly).1.contains("AccessDenied"),
        "{nightly}"
    );
    let statuses = sqlite.account_statuses().wait().unwrap();
    for s in &statuses {
        assert_eq!(s.total_requests, before[&s.name] + 1, "{}: the forecast request is counted", s.name);
    }
    let alpha = statuses.iter().find(|s| s.name == "alpha").unwrap().forecast.clone().unwrap();
    assert_eq!(
        (alpha.amount.map(|d| d.to_string()), alpha.currency.as_deref()),
        (Some("321.0000000009".into()), Some("USD"))
    );
    assert_eq!((alpha.month.as_str(), alpha.from), (BillingPeriod::containing(today).to_string().as_str(), today));
    let denied = beta(&sqlite).forecast.unwrap();
    assert!(
        denied.amount.is_none() && denied.unavailable.as_deref().unwrap_or("").contains("AccessDenied"),
        "{denied:?}"
    );

    // What `report` shows, from the store alone: AWS's month end = alpha's stored days + the forecast.
    let rows = common::rt()
        .block_on(curflow::cost_explorer::forecast::stored(&sqlite, BillingPeriod::containing(today), Utc::now()))
        .unwrap();
    let row = rows.iter().find(|r| r.name == "alpha").unwrap();
    let month_start = BillingPeriod::containing(today).first_day();
    let to_date: Decimal = seeds_a.iter().filter(|s| s.0 >= month_start).map(|s| s.3.parse::<Decimal>().unwrap()).sum();
    assert_eq!(row.stored_to_date, to_date);
    assert_eq!(row.aws_month_end, Some(to_date + "321.0000000009".parse::<Decimal>().unwrap()));
    assert!(rows.iter().any(|r| r.name == "beta" && r.aws_month_end.is_none() && r.unavailable.is_some()));
    assert_accounts_status_shows_the_forecasts(dir.path(), &store, &accounts);
    let log = std::fs::read_to_string(&function.log).unwrap();
    assert!(!log.contains("do-not-log"), "an external id was logged");
}
