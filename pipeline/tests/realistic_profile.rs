//! The realistic `saas` month (thousands of Zipf-skewed tenants, tens of thousands of resources,
//! 85 columns, high-cardinality ids) through the whole pipeline, compared exactly with the
//! generator's own `expected.json`; and the same month as CSV (the generic DataFusion plan rather
//! than the Parquet fast path) must store identical lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{MEASURES, Wait, dec, expected_json, measure};
use curflow::Amounts;
use curflow::store::{CostStore, SqliteStore};
use curflow_fixtures::{Format, GenerateOptions, Generated, Profile, SAAS_DEFAULT_TENANTS};

const ROWS: u64 = 200_000;

fn generate(dir: &Path, format: Format) -> Generated {
    curflow_fixtures::generate(&GenerateOptions {
        rows: ROWS,
        out_dir: dir.to_path_buf(),
        format,
        seed: 17,
        tenants: SAAS_DEFAULT_TENANTS,
        profile: Profile::Saas,
        gzip_csv: true,
        ..GenerateOptions::default()
    })
    .unwrap()
}

/// Stored lines summed per tenant (`None` = shared pool), and every line as text, sorted.
fn stored(store: &Path, period: curflow::BillingPeriod) -> (BTreeMap<Option<String>, Amounts>, Vec<String>) {
    let store = SqliteStore::open(store).unwrap();
    let lines = store.cost_lines(period).wait().unwrap();
    let mut per_tenant: BTreeMap<Option<String>, Amounts> = BTreeMap::new();
    let mut text = Vec::with_capacity(lines.len());
    for l in &lines {
        assert!(l.attribution.is_none(), "no evidence, so nothing is attributed");
        per_tenant.entry(l.key.tenant.as_deref().map(str::to_string)).or_default().add(&l.amounts).unwrap();
        text.push(format!("{:?} {:?}", l.key, l.amounts));
    }
    text.sort_unstable();
    (per_tenant, text)
}

/// Processes the month in `format`; asserts it matches `expected.json` exactly; returns the
/// stored lines.
fn process_and_check(dir: &Path, format: Format) -> Vec<String> {
    let generated = generate(&dir.join("bucket"), format);
    let expected = expected_json(&generated);
    assert_eq!(expected["profile"], "saas");
    let store = dir.join("store.sqlite");
    let report = common::process(std::slice::from_ref(&generated.manifest_path), &store).unwrap();
    assert_eq!(report.rows_read, ROWS, "{format:?} rows read");
    assert_eq!(report.rows_read, expected["rows"].as_u64().unwrap());
    assert_eq!(report.tenants, SAAS_DEFAULT_TENANTS as usize, "{format:?} tenants");

    let (per_tenant, lines) = stored(&store, report.period);
    for m in MEASURES {
        let want = dec(&expected["totals"][m]);
        assert_eq!(measure(&report.totals["USD"], m), want, "{format:?} reported total {m}");
        let sum = Amounts::sum(per_tenant.values()).unwrap();
        assert_eq!(measure(&sum, m), want, "{format:?} stored total {m}");
    }
    for (name, t) in expected["by_line_item_type"].as_object().unwrap() {
        let got = report.line_item_types.get(name).unwrap_or_else(|| panic!("type {name} missing"));
        assert_eq!(got.rows, t["rows"].as_u64().unwrap(), "{format:?} {name} rows");
        assert_eq!(got.unblended_cost, dec(&t["unblended_cost"]), "{format:?} {name} unblended");
    }

    // Every tenant's month and the shared pool (tenant null), every measure, exactly.
    let by_tenant = expected["by_tenant"].as_array().unwrap();
    assert_eq!(by_tenant.len(), per_tenant.len(), "{format:?} tenants + pool");
    for want in by_tenant {
        let tenant = want["tenant"].as_str().map(str::to_string);
        let got = per_tenant.get(&tenant).unwrap_or_else(|| panic!("{format:?} {tenant:?} not stored"));
        for m in MEASURES {
            assert_eq!(measure(got, m), dec(&want[m]), "{format:?} {tenant:?} {m}");
        }
    }
    let pool = &by_tenant[0];
    assert!(pool["tenant"].is_null());
    assert_eq!(report.unattributed["USD"].unblended_cost, dec(&pool["unblended_cost"]), "{format:?} pool");

    // Per usage account and region (three of each), every measure, exactly.
    let all = SqliteStore::open(&store).unwrap().cost_lines(report.period).wait().unwrap();
    let (got, want) = common::by_account_region(&all, &expected);
    let accounts: std::collections::BTreeSet<&String> = want.keys().map(|(a, _, _)| a).collect();
    let regions: std::collections::BTreeSet<&String> =
        want.keys().map(|(_, r, _)| r).filter(|r| !r.is_empty()).collect();
    assert!(accounts.len() >= 2 && regions.len() == 3, "{accounts:?} {regions:?}");
    assert_eq!(got, want, "{format:?} per account and region");
    lines
}

#[test]
fn saas_month_matches_expected_exactly_in_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = process_and_check(&dir.path().join("parquet"), Format::LegacyParquet);
    let csv = process_and_check(&dir.path().join("csv"), Format::LegacyCsv);
    assert!(parquet.len() > 10_000, "{} stored lines", parquet.len());
    assert_eq!(parquet.len(), csv.len(), "stored line count");
    let first_difference = parquet.iter().zip(&csv).find(|(a, b)| a != b);
    assert!(first_difference.is_none(), "Parquet and CSV store different lines: {first_difference:?}");
}
