//! The real, anonymised legacy CUR CSV from the FinOps Foundation's focus_converters repository
//! (../shared/research/data). Its totals are documented in that folder's README, measured there
//! with Python's `Decimal`; curflow must reproduce them exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::str::FromStr;

use rust_decimal::Decimal;

#[test]
fn real_cur_csv_totals_match_the_documented_figures() {
    let Some(sample) = common::shared_sample("focus_converters/sample-anonymous-aws-export-dataset.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let report = common::process(&[sample], &store).unwrap();
    assert_eq!(report.period.to_string(), "2023-11");
    assert_eq!(report.rows_read, 1281);
    assert_eq!(report.split_child_rows, 0);
    let usd = &report.totals["USD"];
    assert_eq!(usd.unblended_cost, Decimal::from_str("1.68230869740").unwrap());
    assert_eq!(report.line_item_types["Usage"].unblended_cost, Decimal::from_str("1.60230869740").unwrap());
    assert_eq!(report.line_item_types["Usage"].rows, 1269);
    assert_eq!(report.line_item_types["Tax"].unblended_cost, Decimal::from_str("0.08").unwrap());
    assert_eq!(report.line_item_types["Tax"].rows, 12);
    // No SP/RI rows and no net columns: every measure equals unblended.
    assert_eq!(usd.amortized_cost, usd.unblended_cost);
    assert_eq!(usd.net_unblended_cost, usd.unblended_cost);
    // Σ `pricing/publicOnDemandCost` (Python `Decimal` over the CSV text): twice the bill, as the
    // account's usage is mostly free tier.
    assert_eq!(usd.list_cost, Decimal::from_str("3.35617269490").unwrap());
    // No contracted-price column, no commitments, no net columns: contracted = unblended.
    assert_eq!(usd.contracted_cost, usd.unblended_cost);
    assert!(!report.tenant_tag_present, "the sample has no resourceTags columns");
    assert_eq!(report.unattributed["USD"].unblended_cost, usd.unblended_cost);
    // What was stored sums to the same figures.
    let stored = common::stored_total(&store, report.period);
    assert_eq!(stored.unblended_cost, usd.unblended_cost);
    assert_eq!(stored.list_cost, usd.list_cost);
    assert_eq!(stored.contracted_cost, usd.contracted_cost);
    assert_eq!(stored.line_items, 1281);
}

/// Issue 14 point 1: the legacy report's ZIP compression. The real sample zipped (one CSV entry,
/// as AWS writes it) is read like the CSV itself: the same documented totals, the same stored
/// lines; and the report names the archive as the file read.
#[test]
fn real_cur_csv_zip_reads_like_the_csv() {
    let Some(sample) = common::shared_sample("focus_converters/sample-anonymous-aws-export-dataset.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("sample-anonymous-aws-export-dataset-00001.csv.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("sample-anonymous-aws-export-dataset-00001.csv", options).unwrap();
    std::io::copy(&mut std::fs::File::open(&sample).unwrap(), &mut zip).unwrap();
    zip.finish().unwrap();
    let (plain_store, zip_store) = (dir.path().join("plain.sqlite"), dir.path().join("zip.sqlite"));
    let plain = common::process(std::slice::from_ref(&sample), &plain_store).unwrap();
    let zipped = common::process(std::slice::from_ref(&archive), &zip_store).unwrap();
    assert_eq!(zipped.rows_read, 1281);
    assert_eq!(zipped.totals["USD"].unblended_cost, Decimal::from_str("1.68230869740").unwrap());
    assert_eq!(zipped.totals, plain.totals);
    let lines = |store: &std::path::Path| {
        curflow::store::SqliteStore::open(store)
            .and_then(|s| curflow::store::CostStore::cost_lines(&s, plain.period).wait())
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.amounts))
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&zip_store), lines(&plain_store));
}

/// Issue 12 point 13: without the samples, the test above fails in CI and skips outside it. Runs
/// this test binary again on that test alone, with the samples pointed at a folder that does not
/// exist.
#[test]
fn a_missing_sample_fails_in_ci_and_skips_outside_it() {
    if std::env::var_os("CURFLOW_SHARED_DATA").is_some() {
        return; // the child run of another instance of this test
    }
    let missing = tempfile::tempdir().unwrap();
    let run = |ci: Option<&str>| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args(["real_cur_csv_totals_match_the_documented_figures", "--exact", "--nocapture"])
            .env("CURFLOW_SHARED_DATA", missing.path().join("absent"));
        match ci {
            Some(v) => c.env("CI", v),
            None => c.env_remove("CI"),
        };
        let out = c.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    for ci in ["1", "true"] {
        let (ok, text) = run(Some(ci));
        assert!(!ok, "CI={ci}: a missing sample must fail the test:\n{text}");
        assert!(text.contains("not found"), "{text}");
    }
    for ci in [None, Some(""), Some("false")] {
        let (ok, text) = run(ci);
        assert!(ok, "CI={ci:?}: outside CI a missing sample is skipped:\n{text}");
        assert!(text.contains("SKIPPED"), "{text}");
    }
}

/// The real CUR 2.0 (Data Exports) CSV: its maps are JSON text (`resource_tags`), its credits
/// cancel its usage to ten decimal places, and its net unblended column is empty on every row.
/// Read as written and gzip-compressed (as AWS delivers it), with `--tag-key project`.
#[test]
fn real_cur2_csv_totals_match_the_documented_figures() {
    let Some(sample) = common::shared_sample("cur2-export-sample/ha-project-CUR-daily-1-00001.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("ha-project-CUR-daily-1-00001.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::copy(&mut std::fs::File::open(&sample).unwrap(), &mut encoder).unwrap();
    encoder.finish().unwrap();
    let d = |s: &str| Decimal::from_str(s).unwrap();
    for (i, input) in [sample, gz].into_iter().enumerate() {
        let store = dir.path().join(format!("s{i}.sqlite"));
        let options = curflow::process::ProcessOptions { tag_key: "project".into(), ..common::options() };
        let report = common::process_with(std::slice::from_ref(&input), &store, options).unwrap();
        assert_eq!(report.period.to_string(), "2026-04");
        assert_eq!(report.rows_read, 1882, "{}", input.display());
        let usd = &report.totals["USD"];
        assert_eq!(usd.unblended_cost, d("-0.0000000676"), "credits cancel usage to ten places");
        assert_eq!(usd.amortized_cost, d("-0.0000000676"));
        assert_eq!(usd.net_unblended_cost, usd.unblended_cost, "an empty net column reads as unblended");
        // Σ `pricing_public_on_demand_cost` (Python `Decimal` over the CSV text).
        assert_eq!(usd.list_cost, d("49.55871346770"));
        // Usage, credits and tax only, net empty: contracted = net = unblended.
        assert_eq!(usd.contracted_cost, d("-0.0000000676"));
        // 92500.7433629442 over all rows, of which 13.0 is the Tax rows' quantity (1 per row):
        // usage_amount counts usage lines only.
        assert_eq!(usd.usage_amount, d("92487.7433629442"));
        // The pricing quantity is every row's: the tax rows' 13.0 included.
        assert_eq!(usd.pricing_quantity, d("92500.7433629442"));
        let types = &report.line_item_types;
        assert_eq!((types["Usage"].rows, types["Credit"].rows, types["Tax"].rows), (1511, 358, 13));
        assert_eq!(types["Usage"].unblended_cost, d("47.6816938322"));
        assert_eq!(types["Credit"].unblended_cost, d("-47.6816938998"));
        assert!(report.tenant_tag_present, "resource_tags holds user_project");
        // The tag is read from the JSON text: some cost has a tenant, and tenants + pool = the total.
        let lines = curflow::store::SqliteStore::open(&store)
            .and_then(|s| curflow::store::CostStore::cost_lines(&s, report.period).wait())
            .unwrap();
        let tenants: std::collections::BTreeSet<_> =
            lines.iter().filter_map(|l| l.key.tenant.as_deref().map(str::to_string)).collect();
        assert_eq!(tenants.into_iter().collect::<Vec<_>>(), ["ha-web-portal"]);
        // Who bills every line: the payer account and its name, the seller of record, the
        // invoicing entity and the invoice, as the export's `bill_*` and `line_item_legal_entity`
        // columns say.
        let canada = "Amazon Web Services Canada, Inc.";
        let billing = curflow::BillingParts {
            account_id: "147303435917",
            account_name: "Abdul.raji",
            provider: "",
            publisher: canada,
            invoice_issuer: canada,
            invoice_id: "", // `bill_invoice_id` is empty: the month was not invoiced yet
        };
        assert!(lines.iter().all(|l| l.key.billing.parts() == billing), "{:?}", lines[0].key.billing);
        let stored = common::stored_total(&store, report.period);
        assert_eq!((stored.unblended_cost, stored.line_items), (usd.unblended_cost, 1882));
        assert_eq!(stored.list_cost, usd.list_cost);
        assert_eq!(stored.contracted_cost, usd.contracted_cost);
    }
}

/// The real CUR 2.0 export's own manifest, as a user who downloaded and decompressed the export
/// has it: it lists `…-00001.csv.gz`, the folder holds `…-00001.csv`. `curflow process MANIFEST`
/// reads the decompressed file in its place (warning), takes the period and version from the
/// manifest and stores the documented total; `costs --by tenant` shows the `project` tenant.
#[test]
fn real_cur2_manifest_reads_its_decompressed_data_file() {
    let Some(manifest) = common::shared_sample("cur2-export-sample/ha-project-CUR-daily-1-Manifest.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let (m, s) = (manifest.to_str().unwrap(), store.to_str().unwrap());
    let out = common::run_curflow(&["process", m, "--store", s, "--tag-key", "project"], None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("decompressed copy"), "the substitution is logged: {stderr}");
    let db = curflow::store::SqliteStore::open(&store).unwrap();
    let record = curflow::store::CostStore::periods(&db).wait().unwrap().remove(0);
    assert_eq!(record.period.to_string(), "2026-04");
    assert_eq!(record.version.id, "04e9e487-79a7-42b1-a680-1de7c660dc8f", "the manifest's executionId");
    assert_eq!(record.rows_read, 1882);
    let total = common::stored_total(&store, record.period);
    assert_eq!(total.unblended_cost, Decimal::from_str("-0.0000000676").unwrap());
    let out = common::run_curflow(
        &["costs", "--store", s, "--period", "2026-04", "--by", "tenant", "--format", "csv"],
        None,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ha-web-portal"), "{stdout}");
}

/// The real FOCUS 1.0 sample (multi-provider, `NULL` cells, `Tags` as JSON text) holds 999 rows of
/// September 2024 and one of October. `curflow process` on the file stores both periods; each
/// period's stored unblended = Σ `BilledCost` and amortized = Σ `EffectiveCost` of its rows, and a
/// tenant (tag `application`) gets exactly the rows whose `Tags` carry it. The expected figures
/// are computed here from the CSV text with `Decimal` (and match the data README: BilledCost
/// 20.52022672899, EffectiveCost 14.97651418586 over all rows).
#[test]
fn real_focus_sample_is_read_exactly_per_billing_period() {
    let Some(sample) = common::shared_sample("focus-sample-data/focus_sample.csv") else {
        return;
    };
    type Sums = (Decimal, Decimal, u64, Decimal, Decimal);
    let mut reader = csv::Reader::from_path(&sample).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let amount = |v: &str| if v == "NULL" || v.is_empty() { Decimal::ZERO } else { Decimal::from_str(v).unwrap() };
    let mut want: std::collections::BTreeMap<String, Sums> = std::collections::BTreeMap::new();
    let mut by_app: std::collections::BTreeMap<(String, String), Decimal> = std::collections::BTreeMap::new();
    let mut by_billing: std::collections::BTreeMap<[String; 5], Decimal> = std::collections::BTreeMap::new();
    let billing_columns =
        ["BillingAccountId", "BillingAccountName", "ProviderName", "PublisherName", "InvoiceIssuerName"];
    for record in reader.records() {
        let record = record.unwrap();
        let billing = billing_columns.map(|c| Some(&record[col(c)]).filter(|v| *v != "NULL").unwrap_or("").to_string());
        *by_billing.entry(billing).or_default() += amount(&record[col("BilledCost")]);
        let period = record[col("BillingPeriodStart")][..7].to_string();
        let slot = want.entry(period.clone()).or_default();
        slot.0 += amount(&record[col("BilledCost")]);
        slot.1 += amount(&record[col("EffectiveCost")]);
        slot.2 += 1;
        slot.3 += amount(&record[col("ListCost")]);
        slot.4 += amount(&record[col("ContractedCost")]);
        let app = serde_json::from_str::<serde_json::Value>(&record[col("Tags")])
            .ok()
            .and_then(|t| t["application"].as_str().map(str::trim).filter(|a| !a.is_empty()).map(str::to_string));
        if let Some(app) = app {
            *by_app.entry((period, app)).or_default() += amount(&record[col("BilledCost")]);
        }
    }
    let total = want.values().fold((Decimal::ZERO, Decimal::ZERO), |a, w| (a.0 + w.0, a.1 + w.1));
    assert_eq!(total, (Decimal::from_str("20.52022672899").unwrap(), Decimal::from_str("14.97651418586").unwrap()));
    assert_eq!(want.keys().collect::<Vec<_>>(), ["2024-09", "2024-10"]);
    // ListCost 20.39090575119 over all rows (the data README).
    assert_eq!(want.values().map(|w| w.3).sum::<Decimal>(), Decimal::from_str("20.39090575119").unwrap());
    // ContractedCost 14.97626039326 over all rows (the data README).
    assert_eq!(want.values().map(|w| w.4).sum::<Decimal>(), Decimal::from_str("14.97626039326").unwrap());

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let s = store.to_str().unwrap();
    let out = common::run_curflow(
        &["process", sample.to_str().unwrap(), "--store", s, "--tag-key", "application", "--format", "json"],
        None,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "one report per billing period: {stdout}");

    let db = curflow::store::SqliteStore::open(&store).unwrap();
    let mut got_app: std::collections::BTreeMap<(String, String), Decimal> = std::collections::BTreeMap::new();
    let mut got_billing: std::collections::BTreeMap<[String; 5], Decimal> = std::collections::BTreeMap::new();
    for (period, (billed, effective, rows, list, contracted)) in &want {
        let p: curflow::BillingPeriod = period.parse().unwrap();
        let lines = curflow::store::CostStore::cost_lines(&db, p).wait().unwrap();
        let stored = curflow::Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
        assert_eq!(
            (stored.unblended_cost, stored.amortized_cost, stored.line_items),
            (*billed, *effective, *rows),
            "{period}"
        );
        assert_eq!(stored.net_unblended_cost, *billed, "{period}: FOCUS billed cost is net of discounts");
        assert_eq!(stored.list_cost, *list, "{period}: list cost is Σ ListCost");
        assert_eq!(stored.contracted_cost, *contracted, "{period}: contracted cost is Σ ContractedCost");
        let record = curflow::store::CostStore::period(&db, p).wait().unwrap().unwrap();
        assert_eq!(record.rows_read, *rows, "{period}");
        for l in &lines {
            if let Some(t) = &l.key.tenant {
                *got_app.entry((period.clone(), t.to_string())).or_default() += l.amounts.unblended_cost;
            }
            let b = l.key.billing.parts();
            let parts = [b.account_id, b.account_name, b.provider, b.publisher, b.invoice_issuer].map(str::to_string);
            *got_billing.entry(parts).or_default() += l.amounts.unblended_cost;
        }
    }
    // Per billing account, provider, publisher and invoice issuer (three providers; one
    // Marketplace publisher among AWS's rows): exactly the rows that name them.
    assert!(by_billing.len() > 3, "{by_billing:?}");
    assert_eq!(got_billing, by_billing, "billed cost per billing party");
    assert!(!by_app.is_empty());
    assert_eq!(got_app, by_app, "tenants from the Tags JSON");
}

/// Issue 14 point 2: every line carries its usage account and region, and `costs --by
/// account,region` gives, per (account, region), exactly the unblended cost of the sample's rows
/// with that account and region — computed here from the CSV text, independently of curflow. The
/// columns are the legacy report's `lineItem/UsageAccountId` and `product/region`, CUR 2.0's
/// `line_item_usage_account_id` and `product_region_code`, FOCUS's `SubAccountId` and `RegionId`
/// (its `NULL` cells read as empty).
#[test]
fn costs_per_account_and_region_match_the_real_samples() {
    let samples = [
        (
            "focus_converters/sample-anonymous-aws-export-dataset.csv",
            "2023-11",
            "lineItem/UsageAccountId",
            "product/region",
            "lineItem/UnblendedCost",
            None,
        ),
        (
            "cur2-export-sample/ha-project-CUR-daily-1-00001.csv",
            "2026-04",
            "line_item_usage_account_id",
            "product_region_code",
            "line_item_unblended_cost",
            None,
        ),
        (
            "focus-sample-data/focus_sample.csv",
            "2024-09",
            "SubAccountId",
            "RegionId",
            "BilledCost",
            Some("BillingPeriodStart"),
        ),
    ];
    for (relative, period, account_col, region_col, cost_col, period_col) in samples {
        let Some(sample) = common::shared_sample(relative) else { return };
        let want =
            sums_by_account_and_region(&sample, account_col, region_col, cost_col, period_col.map(|c| (c, period)));
        assert!(want.len() > 1, "{relative}: more than one (account, region)");
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.sqlite");
        let s = store.to_str().unwrap();
        let out = common::run_curflow(&["--store", s, "process", sample.to_str().unwrap()], None, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let out = common::run_curflow(
            &["--store", s, "costs", "--period", period, "--by", "account,region", "--format", "csv"],
            None,
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let header = reader.headers().unwrap().clone();
        let col = |n: &str| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n}: {header:?}"));
        let mut got = std::collections::BTreeMap::new();
        for record in reader.records() {
            let record = record.unwrap();
            let key = (record[col("account_id")].to_string(), record[col("region")].to_string());
            let previous = got.insert(key.clone(), Decimal::from_str(&record[col("unblended_cost")]).unwrap());
            assert!(previous.is_none(), "{relative}: {key:?} twice");
        }
        assert_eq!(got, want, "{relative}");
        // The report lists each account of a multi-account month (the FOCUS sample has 72 in 2024-09).
        let accounts: std::collections::BTreeSet<&str> = want.keys().map(|(a, _)| a.as_str()).collect();
        assert_report_lists(&store, period, relative, &accounts);
        if accounts.len() > 1 {
            assert_account_names(&store, period, &sample);
        }
    }
}

/// `curflow report` has an accounts table, listing each of `accounts`, exactly when there are
/// several.
fn assert_report_lists(
    store: &std::path::Path,
    period: &str,
    relative: &str,
    accounts: &std::collections::BTreeSet<&str>,
) {
    let html = store.with_file_name("r.html");
    let s = store.to_str().unwrap();
    let out =
        common::run_curflow(&["--store", s, "report", "--period", period, "--out", html.to_str().unwrap()], None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(html).unwrap();
    let table = html.find("<section class=\"panel\" id=\"accounts\"").map(|at| &html[at..]);
    if accounts.len() < 2 {
        assert!(table.is_none(), "{relative}: one account, no accounts table");
        return;
    }
    let table = table.unwrap_or_else(|| panic!("{relative}: no accounts table"));
    let table = &table[..table.find("</section>").unwrap()];
    for account in accounts {
        assert!(table.contains(&format!("<tr><td>{account}</td>")), "{relative}: {account} missing");
    }
}

/// FOCUS names each sub-account: `costs --by account,account-name` pairs them as the file does.
fn assert_account_names(store: &std::path::Path, period: &str, sample: &std::path::Path) {
    let s = store.to_str().unwrap();
    let out = common::run_curflow(
        &["--store", s, "costs", "--period", period, "--by", "account,account-name", "--format", "csv"],
        None,
        &[],
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let (id, name) = (header.iter().position(|h| h == "account_id"), header.iter().position(|h| h == "account_name"));
    let (id, name) = (id.unwrap(), name.unwrap());
    let got: std::collections::BTreeSet<(String, String)> =
        reader.records().map(|r| r.unwrap()).map(|r| (r[id].to_string(), r[name].to_string())).collect();
    let mut reader = csv::Reader::from_path(sample).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let want: std::collections::BTreeSet<(String, String)> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[col("BillingPeriodStart")].starts_with(period))
        .map(|r| (r[col("SubAccountId")].to_string(), r[col("SubAccountName")].to_string()))
        .collect();
    assert_eq!(got, want, "{}: account names", sample.display());
}

/// Σ `cost_col` per (`account_col`, `region_col`) of the rows of `csv_path` (of one billing
/// period when `period` names its column and `YYYY-MM`), exactly: plain and scientific notation,
/// `NULL` and empty as zero / empty.
fn sums_by_account_and_region(
    csv_path: &std::path::Path,
    account_col: &str,
    region_col: &str,
    cost_col: &str,
    period: Option<(&str, &str)>,
) -> std::collections::BTreeMap<(String, String), Decimal> {
    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let text = |v: &str| if v == "NULL" { String::new() } else { v.to_string() };
    let amount = |v: &str| match v {
        "" | "NULL" => Decimal::ZERO,
        v => Decimal::from_str(v).or_else(|_| Decimal::from_scientific(v)).unwrap(),
    };
    let mut sums = std::collections::BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        if let Some((column, month)) = period
            && !record[col(column)].starts_with(month)
        {
            continue;
        }
        let key = (text(&record[col(account_col)]), text(&record[col(region_col)]));
        *sums.entry(key).or_insert(Decimal::ZERO) += amount(&record[col(cost_col)]);
    }
    sums
}

/// The FOCUS specification's commitment-discount examples (`focus-spec/…`, real spec text) are
/// column snippets, not exports: none has the mandatory `ServiceName` or `BillingCurrency` (and
/// one has an hour-30 timestamp). `curflow process` refuses each with an error naming the file
/// and the missing column, exits non-zero, and stores nothing.
#[test]
fn focus_spec_snippets_are_refused_naming_the_file_and_the_missing_column() {
    let names = [
        "commitment_discount_scenarios/commitment_discount_purchase_scenario_1.csv",
        "commitment_discount_scenarios/commitment_discount_purchase_scenario_2.csv",
        "commitment_discount_scenarios/commitment_discount_usage_scenario_3.csv",
        "commitment_discount_flexibility/zero_percent_utilization_without_commitment_discount_flexibility.csv",
    ];
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    for name in names {
        let Some(snippet) = common::shared_sample(&format!("focus-spec/{name}")) else {
            return;
        };
        let out =
            common::run_curflow(&["process", snippet.to_str().unwrap(), "--store", store.to_str().unwrap()], None, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains(snippet.to_str().unwrap()), "{name}: the error names the file: {stderr}");
        assert!(stderr.contains("ServiceName"), "{name}: the error names the missing column: {stderr}");
    }
    if store.exists() {
        let db = curflow::store::SqliteStore::open(&store).unwrap();
        assert!(curflow::store::CostStore::periods(&db).wait().unwrap().is_empty(), "nothing stored");
    }
}
