//! The finance side end to end, through the `curflow` binary: estimates import, reconcile on a
//! generated month with deliberately mispriced estimates, budgets with alerts across nightly runs
//! (webhook to a local HTTP server, SNS through the real SDK to moto_server), and the expense export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;
use common::webhook::Webhook;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use curflow::reconciliation::actuals_of;
use curflow::store::{CostStore, SqliteStore};
use curflow::{BillingPeriod, aws};
use curflow_fixtures::Format;
use curflow_reconcile::ResourceTypeMap;
use rust_decimal::Decimal;

fn curflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::run_curflow(args, None, env)
}

use common::ok;

/// A generated October 2026 processed into a SQLite store.
fn stored_month(dir: &Path) -> std::path::PathBuf {
    let g = common::generate(&dir.join("bucket"), Format::LegacyParquet, 30_000, 11, |o| o.tenants = 4);
    let store = dir.join("s.sqlite");
    ok(&curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", store.to_str().unwrap()], &[]));
    store
}

const PERIOD: &str = "2026-10";

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn reconcile_flags_the_overpriced_type_not_the_slightly_underpriced_one_and_suggests_the_true_unit_cost() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = stored_month(dir.path());
    let period = BillingPeriod::new(2026, 10).unwrap();
    let lines = SqliteStore::open(&store_path).unwrap().cost_lines(period).wait().unwrap();

    // True quantities and costs per tenant and resource type, from the stored actuals.
    let mapping = ResourceTypeMap::example().unwrap();
    let mut truth: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for a in actuals_of(&lines) {
        if let Some(t) = mapping.classify(&a.service, &a.usage_type) {
            let e = truth.entry((a.accountant_id.clone(), t.name.clone())).or_default();
            e.0 += a.usage_quantity.unwrap();
            e.1 += a.direct + a.attributed;
        }
    }
    // The app prices lambda_compute 25 % too high and dynamodb_read 8 % too low; everything else right.
    let factor = |t: &str| match t {
        "lambda_compute" => Decimal::new(125, 2),
        "dynamodb_read" => Decimal::new(92, 2),
        _ => Decimal::ONE,
    };
    let mut csv = String::from(
        "accountant_id,timestamp,month,operation,resource_type,quantity,unit_cost,estimated_cost,source\n",
    );
    let mut true_unit = BTreeMap::new();
    for ((tenant, rtype), (qty, cost)) in &truth {
        if qty.is_zero() || cost <= &Decimal::ZERO {
            continue;
        }
        let unit = (cost / qty).round_dp(12);
        true_unit.insert((tenant.clone(), rtype.clone()), unit);
        let priced = (unit * factor(rtype)).round_dp(12);
        let estimated = (qty * priced).round_dp(6);
        csv.push_str(&format!(
            "{tenant},2026-10-15T12:00:00Z,{PERIOD},work,{rtype},{qty},{priced},{estimated},estimate\n"
        ));
    }
    assert!(
        true_unit.keys().any(|(_, t)| t == "lambda_compute") && true_unit.keys().any(|(_, t)| t == "dynamodb_read")
    );
    let est = dir.path().join("estimates.csv");
    std::fs::write(&est, &csv).unwrap();
    let s = store_path.to_str().unwrap();
    let imported = ok(&curflow(&["estimates", "import", est.to_str().unwrap(), "--store", s], &[]));
    assert!(imported.contains(&format!("{} imported, 0 already stored", true_unit.len())), "{imported}");
    let again = ok(&curflow(&["estimates", "import", est.to_str().unwrap(), "--store", s], &[]));
    assert!(again.contains(&format!("0 imported, {} already stored", true_unit.len())), "{again}");

    // The month is over and the bill has no invoice id yet: provisional. Small generated amounts, so a
    // 1-cent minimum instead of 1.00.
    let env = [("CURFLOW_VARIANCE_MIN_AMOUNT", "0.01")];
    let args = ["reconcile", "--period", PERIOD, "--level", "resource-type", "--format", "json", "--store", s];
    let json: serde_json::Value =
        serde_json::from_str(&ok(&curflow(&[&args[..], &["--now", "2026-11-20T00:00:00Z"]].concat(), &env))).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let mut checked = (0, 0);
    for r in rows {
        let tenant = r["accountant_id"].as_str().unwrap().to_string();
        let rtype = r["resource_type"].as_str().unwrap().to_string();
        let Some(unit) = true_unit.get(&(tenant.clone(), rtype.clone())) else { continue };
        let flagged = r["flagged"].as_bool().unwrap();
        let variance: Decimal = r["variance"].as_str().unwrap().parse().unwrap();
        match rtype.as_str() {
            "lambda_compute" if variance.abs() > Decimal::new(1, 2) => {
                assert!(flagged, "{tenant} lambda_compute is 25 % overpriced: {r}");
                assert_eq!(r["dominant"], "rate", "{r}");
                let suggested: Decimal = r["suggested_unit_cost"].as_str().unwrap().parse().unwrap();
                let error = ((suggested - unit) / unit).abs();
                assert!(error < Decimal::new(1, 2), "suggested {suggested} vs true {unit}");
                checked.0 += 1;
            }
            "dynamodb_read" => {
                assert!(!flagged, "{tenant} dynamodb_read is only 8 % underpriced: {r}");
                checked.1 += 1;
            }
            _ => {}
        }
    }
    assert!(checked.0 > 0 && checked.1 > 0, "rows checked: {checked:?}");
    // Stored idempotently: the same records after a second run.
    let dump = |p: &Path| {
        let c = rusqlite::Connection::open(p).unwrap();
        let mut st = c
            .prepare("SELECT month, level, accountant_id, resource_type, record FROM reconciliations ORDER BY 1,2,3,4")
            .unwrap();
        st.query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}|{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
    };
    let first = dump(&store_path);
    assert!(!first.is_empty());
    ok(&curflow(&[&args[..], &["--now", "2026-11-20T00:00:00Z"]].concat(), &env));
    assert_eq!(dump(&store_path), first);
}

/// `period_state` of every tenant row of `reconcile --format json` at `now`.
fn period_states(store: &Path, now: &str) -> std::collections::BTreeSet<String> {
    let args = ["reconcile", "--period", PERIOD, "--format", "json", "--now", now, "--store", store.to_str().unwrap()];
    let json: serde_json::Value = serde_json::from_str(&ok(&curflow(&args, &[]))).unwrap();
    json["rows"].as_array().unwrap().iter().map(|r| r["period_state"].as_str().unwrap().to_string()).collect()
}

#[test]
fn period_state_follows_the_bills_invoice_id_and_usage_units_allow_the_volume_rate_split() {
    let dir = tempfile::tempdir().unwrap();
    // A month whose bill AWS has not finalised (blank bill/InvoiceId): open during the month,
    // provisional after it, never final.
    let provisional = stored_month(&dir.path().join("provisional"));
    let estimate = dir.path().join("e.csv");
    std::fs::write(
        &estimate,
        "accountant_id,timestamp,month,operation,resource_type,quantity,unit_cost,estimated_cost\n\
         acct-0001,2026-10-05T10:00:00Z,2026-10,upload,lambda_invocation,1000,0.0000002,0.0002\n",
    )
    .unwrap();
    ok(&curflow(&["estimates", "import", estimate.to_str().unwrap(), "--store", provisional.to_str().unwrap()], &[]));
    assert_eq!(period_states(&provisional, "2026-10-20T00:00:00Z"), ["open".to_string()].into());
    assert_eq!(period_states(&provisional, "2026-12-20T00:00:00Z"), ["provisional".to_string()].into());

    // The same month once the invoice is issued: every line carries the invoice id.
    let g = common::generate(&dir.path().join("final/bucket"), Format::LegacyParquet, 30_000, 11, |o| {
        o.tenants = 4;
        o.invoice_id = Some("EUINGB26-1".into());
    });
    let fin = dir.path().join("final/s.sqlite");
    ok(&curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", fin.to_str().unwrap()], &[]));
    let record =
        SqliteStore::open(&fin).unwrap().period(BillingPeriod::new(2026, 10).unwrap()).wait().unwrap().unwrap();
    assert_eq!(record.invoice.ids, vec!["EUINGB26-1".to_string()]);
    assert_eq!(record.invoice.rows_without_id, Some(0));
    ok(&curflow(&["estimates", "import", estimate.to_str().unwrap(), "--store", fin.to_str().unwrap()], &[]));
    assert_eq!(period_states(&fin, "2026-10-20T00:00:00Z"), ["open".to_string()].into(), "a month not over is open");
    assert_eq!(period_states(&fin, "2026-11-03T00:00:00Z"), ["final".to_string()].into());

    // Units are kept per line: `lambda_invocation` only counts lines priced in `Requests`, so its
    // actual quantity is known and the variance splits into volume and rate.
    let lines = SqliteStore::open(&fin).unwrap().cost_lines(BillingPeriod::new(2026, 10).unwrap()).wait().unwrap();
    assert!(lines.iter().any(|l| l.key.usage_unit == "Requests" && l.key.service == "AWSLambda"));
    assert!(lines.iter().any(|l| l.key.usage_unit == "Lambda-GB-Second"));
    let args = ["reconcile", "--period", PERIOD, "--level", "resource-type", "--format", "json", "--now"];
    let out = ok(&curflow(&[&args[..], &["2026-11-03T00:00:00Z", "--store", fin.to_str().unwrap()]].concat(), &[]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["accountant_id"] == "acct-0001" && r["resource_type"] == "lambda_invocation")
        .unwrap();
    let actual_quantity: Decimal = row["actual_quantity"].as_str().unwrap().parse().unwrap();
    assert!(actual_quantity > Decimal::ZERO, "{row}");
    let volume: Decimal = row["volume_effect"].as_str().unwrap().parse().unwrap();
    let rate: Decimal = row["rate_effect"].as_str().unwrap().parse().unwrap();
    let variance: Decimal = row["variance"].as_str().unwrap().parse().unwrap();
    assert_eq!(volume + rate, variance, "volume + rate = variance exactly: {row}");
    assert_eq!(row["period_state"], "final");
}

#[test]
fn a_file_with_one_bad_estimate_imports_nothing_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let file = dir.path().join("e.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"accountant_id":"acct-1","timestamp":"2026-10-03T10:00:00Z","month":"2026-10","operation":"ocr","resource_type":"document_ocr","quantity":10,"unit_cost":"1.5","estimated_cost":"15.0"}"#, "\n",
            r#"{"accountant_id":"acct-1","timestamp":"2026-10-03T10:00:00Z","month":"2026-10","operation":"ocr","resource_type":"document_ocr","quantity":"ten","unit_cost":"1.5","estimated_cost":"15.0"}"#, "\n",
        ),
    )
    .unwrap();
    let out = curflow(&["estimates", "import", file.to_str().unwrap(), "--store", store.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("quantity") && err.contains("nothing imported"), "{err}");
    assert!(!SqliteStore::open(&store).unwrap().has_estimates().unwrap());
}

#[test]
fn budget_alerts_go_out_once_per_threshold_across_nightly_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = stored_month(dir.path());
    let s = store_path.to_str().unwrap();
    let period = BillingPeriod::new(2026, 10).unwrap();
    let lines = SqliteStore::open(&store_path).unwrap().cost_lines(period).wait().unwrap();
    // acct-0001's cumulative cost by day; the budget puts day 25 at 90 %.
    let mut daily: BTreeMap<chrono::NaiveDate, Decimal> = BTreeMap::new();
    for a in actuals_of(&lines).into_iter().filter(|a| a.accountant_id == "acct-0001") {
        *daily.entry(a.day).or_default() += a.direct + a.attributed;
    }
    let cum = |day: u32| {
        daily.range(..=chrono::NaiveDate::from_ymd_opt(2026, 10, day).unwrap()).map(|(_, v)| *v).sum::<Decimal>()
    };
    let budget = (cum(25) / Decimal::new(9, 1)).round_dp(2);
    assert!(
        cum(10) < budget * Decimal::new(8, 1) && cum(31) >= budget,
        "day 10 {} day 31 {} budget {budget}",
        cum(10),
        cum(31)
    );
    ok(&curflow(&["budgets", "set", "--tenant", "acct-0001", "--amount", &budget.to_string(), "--store", s], &[]));
    let list = ok(&curflow(&["budgets", "list", "--store", s], &[]));
    assert!(
        list.lines().any(|l| l.starts_with("acct-0001") && l.ends_with("80%, 100%  no")),
        "default thresholds: {list}"
    );

    let hook = Webhook::start();
    let url = hook.url.clone();
    let topic = {
        let runtime = common::rt();
        runtime.block_on(async {
            let config = aws::sdk_config(&common::aws_settings()).await;
            let sns = aws_sdk_sns::Client::new(&config);
            let t = sns.create_topic().name(common::unique_name("alerts")).send().await.unwrap();
            t.topic_arn().unwrap().to_string()
        })
    };
    let endpoint = common::aws_endpoint();
    let env = [
        ("CURFLOW_ALERT_WEBHOOK_URL", url.as_str()),
        ("CURFLOW_ALERT_SNS_TOPIC_ARN", topic.as_str()),
        ("CURFLOW_AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let nightly = |now: &str| {
        let out = ok(&curflow(&["nightly", "--now", now, "--store", s, "--format", "jsonl"], &env));
        out.lines().filter(|l| l.contains("\"delivery\":\"sent\"")).count()
    };
    assert_eq!(nightly("2026-10-11T03:30:00Z"), 0, "day 10: under 80 %");
    assert_eq!(nightly("2026-10-26T03:30:00Z"), 1, "day 25: 90 % crosses 80 %");
    assert_eq!(nightly("2026-10-26T03:30:00Z"), 0, "same night again: nothing new");
    assert_eq!(nightly("2026-11-01T03:30:00Z"), 1, "day 31: crosses 100 %");
    let received = hook.bodies();
    assert_eq!(received.len(), 2, "{received:?}");
    let thresholds: Vec<String> = received
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["threshold_pct"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(thresholds, ["80", "100"]);

    // A channel that fails (an SNS topic that does not exist) sends nothing and records nothing: the
    // alert is tried again on the next run.
    ok(&curflow(&["budgets", "set", "--tenant", "acct-0002", "--amount", "0.01", "--store", s], &[]));
    let bad_topic = format!("arn:aws:sns:us-east-1:123456789012:{}", common::unique_name("missing"));
    // (Under the variable's former name, still read: the failure shows the topic was used.)
    let env_bad = [("CURFLOW_ALERT_TOPIC_ARN", bad_topic.as_str()), ("CURFLOW_AWS_ENDPOINT_URL", endpoint.as_str())];
    let out = curflow(&["nightly", "--now", "2026-11-01T03:30:00Z", "--store", s], &env_bad);
    assert_eq!(out.status.code(), Some(4), "a failed delivery is an environment error (retry)");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    let sent = ok(&curflow(&["nightly", "--now", "2026-11-01T03:30:00Z", "--store", s, "--format", "jsonl"], &env));
    assert_eq!(
        sent.lines().filter(|l| l.contains("\"delivery\":\"sent\"")).count(),
        2,
        "acct-0002 at 80 % and 100 %: {sent}"
    );
}

#[test]
fn expenses_export_has_one_entry_per_tenant_and_service_summing_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = stored_month(dir.path());
    let out = ok(&curflow(
        &[
            "export",
            "--period",
            PERIOD,
            "--kind",
            "expenses",
            "--format",
            "csv",
            "--store",
            store_path.to_str().unwrap(),
        ],
        &[],
    ));
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n} in {header:?}"));
    let mut per_tenant: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut keys = std::collections::BTreeSet::new();
    for r in reader.records() {
        let r = r.unwrap();
        assert!(r[col("vendor")].starts_with("AWS - "));
        assert_eq!(&r[col("date")], "2026-10-31");
        assert_eq!(&r[col("category")], "Software");
        assert!(r[col("description")].ends_with("charges for October 2026"), "{:?}", &r[col("description")]);
        let amount: Decimal = r[col("amount")].parse().unwrap();
        assert!(amount.scale() <= 2);
        assert!(
            keys.insert((r[col("accountant_id")].to_string(), r[col("vendor")].to_string())),
            "one entry per tenant and service"
        );
        *per_tenant.entry(r[col("accountant_id")].to_string()).or_default() += amount;
    }
    // Each tenant's entries sum to its exact total rounded to the cent.
    let lines =
        SqliteStore::open(&store_path).unwrap().cost_lines(BillingPeriod::new(2026, 10).unwrap()).wait().unwrap();
    let mut exact: BTreeMap<String, Decimal> = BTreeMap::new();
    for a in actuals_of(&lines) {
        *exact.entry(a.accountant_id).or_default() += a.direct + a.attributed;
    }
    for (tenant, sum) in &per_tenant {
        assert_eq!(
            *sum,
            exact[tenant].round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            "{tenant}"
        );
    }
    assert_eq!(per_tenant.len(), exact.len());
}

#[test]
fn report_command_writes_one_self_contained_html_file_with_the_charts() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = stored_month(dir.path());
    let s = store_path.to_str().unwrap();
    ok(&curflow(&["budgets", "set", "--tenant", "acct-0001", "--amount", "100", "--store", s], &[]));
    let out = dir.path().join("report.html");
    let printed = ok(&curflow(
        &["report", "--period", PERIOD, "--out", out.to_str().unwrap(), "--store", s, "--now", "2026-10-20T00:00:00Z"],
        &[],
    ));
    assert!(printed.contains("4 tenants"), "{printed}");
    let html = std::fs::read_to_string(&out).unwrap();
    for id in ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage", "curflow-data"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
    assert!(!html.contains("src=\"http"), "no network resources");
    assert!(html.contains("acct-0001") && html.contains("open"), "tenant and the open-period state are shown");
}

/// Forecast backtest on generated history: six generated months (different seeds), each tenant's
/// daily actual cost forecast from the first 10 and 20 days of each month. Prints the MAPE for the
/// closing note; fails if the forecast is useless (MAPE above 50 %).
#[test]
fn forecast_backtest_on_generated_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    for month in 4..=9u32 {
        let g = common::generate(
            &dir.path().join(format!("b{month}")),
            Format::LegacyParquet,
            20_000,
            u64::from(month),
            |o| {
                o.tenants = 4;
                o.month = month;
            },
        );
        ok(&curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", store.to_str().unwrap()], &[]));
    }
    let store = SqliteStore::open(&store).unwrap();
    let mut lines = Vec::new();
    for month in 4..=9 {
        lines.extend(store.cost_lines(BillingPeriod::new(2026, month).unwrap()).wait().unwrap());
    }
    let daily =
        curflow_reconcile::daily_by_tenant(&actuals_of(&lines), curflow_reconcile::Measure::Amortized, "USD").unwrap();
    for first_days in [10, 20] {
        let mut errors = Vec::new();
        for (tenant, series) in &daily {
            let b =
                curflow_reconcile::backtest(series, first_days, &curflow_reconcile::ForecastConfig::default()).unwrap();
            assert!(b.months.len() >= 5, "{tenant}: {} months", b.months.len());
            errors.extend(b.months.iter().filter_map(|m| m.pct_error.map(|e| e.abs())));
        }
        let mape = errors.iter().sum::<Decimal>() / Decimal::from(errors.len());
        println!("BACKTEST first {first_days} days: MAPE {}% over {} tenant-months", mape.round_dp(2), errors.len());
        assert!(mape < Decimal::from(50), "MAPE {mape}");
    }
}
