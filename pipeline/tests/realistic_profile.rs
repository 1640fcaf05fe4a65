//! The realistic `saas` month (thousands of Zipf-skewed tenants, tens of thousands of resources,
//! 85 columns, high-cardinality ids) through the whole pipeline, compared exactly with the
//! generator's own `expected.json`; and the same month as CSV (the generic DataFusion plan rather
//! than the Parquet fast path) must store identical lines. Under a `memory-limit-mb` too small for
//! its groups, the month spills to `spill-dir` and still stores exactly the same lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{MEASURES, Wait, dec, expected_json, measure, rt};
use curflow::Amounts;
use curflow::discover::discover;
use curflow::process::{PeriodReport, ProcessOptions, Processor};
use curflow::scan::{EngineOptions, SpillOptions};
use curflow::store::{CostStore, SqliteStore};
use curflow_fixtures::{Format, GenerateOptions, Generated, Profile, SAAS_DEFAULT_TENANTS};

const ROWS: u64 = 200_000;

/// The month in `format` of `rows` rows; `one_file`: all rows in one data file (the generator's
/// default is three at this size), whose groups then outgrow [`TIGHT_LIMIT`]'s fast-path half at once.
fn generate(dir: &Path, format: Format, one_file: bool, rows: u64) -> Generated {
    curflow_fixtures::generate(&GenerateOptions {
        rows,
        files: one_file.then_some(1),
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

/// A pool far smaller than the month's groups (a 400,000-row saas month in one file has tens of
/// thousands): the fast path's tables outgrow it, so the file goes to the generic plan, whose
/// aggregation spills; the period's lines outgrow their quarter and are spilled in sorted runs.
const TIGHT_LIMIT: usize = 64 << 20;

/// A limit under which each of the month's three files fits the fast path's half, but two files'
/// merged tables pass half of that half (`memory-limit-mb` / 4): the delivery's tables are built
/// into lines before the last file.
const FLUSH_LIMIT: usize = 64 << 20;

/// How [`process_and_check`] runs the month.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// The shipped default `memory-limit-mb`: nothing spills, no early lines.
    Default,
    /// One file under this limit: its groups outgrow the fast path, the generic plan spills.
    Spill(usize),
    /// Three files, one at a time, under this limit: the merged tables are flushed into lines.
    Flush(usize),
    /// The month of [`Limit::Spill`] (twice the rows, one file) under the default limit.
    OneLargeFile,
}

impl Limit {
    /// The month's rows: a spilled month is twice [`ROWS`], so that one file's groups outgrow the
    /// fast path's half of [`TIGHT_LIMIT`] while the aggregation of one partition can still
    /// spill in the plan's half (see [`process`]).
    fn rows(self) -> u64 {
        match self {
            Limit::Spill(_) | Limit::OneLargeFile => 2 * ROWS,
            Limit::Default | Limit::Flush(_) => ROWS,
        }
    }
}

/// Processes the generated month into `store`; a [`Limit::Spill`] spills to `dir/spill`.
fn process(dir: &Path, generated: &Generated, store: &Path, limit: Limit) -> PeriodReport {
    let mut options: ProcessOptions = common::options();
    let processor = if let Limit::Flush(limit) = limit {
        // One file at a time: its two partitions and the delivery's merged tables share the fast
        // path's half of the limit.
        options.engine = EngineOptions { memory_limit_bytes: limit, batch_size: 2048, ..options.engine };
        options.file_concurrency = Some(1);
        Processor::new(options).unwrap()
    } else if let Limit::Spill(limit) = limit {
        // Batches of 1,024 rows: DataFusion's partial aggregation must hold one batch's groups
        // within its fair share of the plan's half of the limit, shared by five consumers (3.2 MiB
        // under 32 MiB). 2,048 fitted until a group row carried who bills it (five more texts).
        // Two partitions, as on this machine by default: each partition's final aggregation
        // grows its table in steps of several MB, more than its fair share of the plan's half
        // (DataFusion then fails instead of spilling), so the plan runs out of memory beside the
        // other file's and alone, and the engine reads the file again in one partition, where
        // the aggregation has the whole half and spills. Before, this needed ~256 MiB.
        options.engine = EngineOptions { memory_limit_bytes: limit, batch_size: 1024, target_partitions: 2 };
        let spill = SpillOptions { dir: Some(dir.join("spill")), max_bytes: 1 << 30 };
        Processor::new(options).unwrap().with_spill(&spill).unwrap()
    } else {
        // The shipped default `memory-limit-mb` (1 GiB), which a month of this size must not
        // spill under.
        options.engine.memory_limit_bytes = EngineOptions::default().memory_limit_bytes;
        Processor::new(options).unwrap()
    };
    let deliveries = discover(std::slice::from_ref(&generated.manifest_path)).unwrap();
    assert_eq!(deliveries.len(), 1);
    let mut sqlite = SqliteStore::open(store).unwrap();
    rt().block_on(processor.process(&mut sqlite, &deliveries[0], &|_| {})).unwrap()
}

/// Processes the month in `format` under `limit` (and checks that it spilled, or flushed, as
/// the limit means); asserts it matches `expected.json` exactly; returns the stored lines.
fn process_and_check(dir: &Path, format: Format, limit: Limit) -> Vec<String> {
    let rows = limit.rows();
    let one_file = matches!(limit, Limit::Spill(_) | Limit::OneLargeFile);
    let generated = generate(&dir.join("bucket"), format, one_file, rows);
    let expected = expected_json(&generated);
    assert_eq!(expected["profile"], "saas");
    let store = dir.join("store.sqlite");
    let report = process(dir, &generated, &store, limit);
    match limit {
        Limit::Spill(bytes) => {
            assert!(report.spilled_bytes > 0, "{format:?}: nothing spilled under {bytes} bytes");
            // The lines too outgrow their share (a quarter of the limit): written in sorted runs,
            // merged back as they are stored.
            assert!(report.lines_spilled_bytes > 0, "{format:?}: lines not spilled under {bytes} bytes");
        }
        Limit::Default | Limit::OneLargeFile => {
            assert_eq!(report.spilled_bytes, 0, "{format:?}: spilled within the default limit");
            assert_eq!(report.tables_flushed, 0, "{format:?}: flushed within the default limit");
            assert_eq!(report.lines_spilled_bytes, 0, "{format:?}: lines spilled within the default limit");
        }
        Limit::Flush(bytes) => {
            assert_eq!(report.files, 3, "the month's files");
            assert!(report.tables_flushed > 0, "{format:?}: tables not flushed under {bytes} bytes");
            assert_eq!(report.spilled_bytes, 0, "{format:?}: spilled under {bytes} bytes");
        }
    }
    assert_eq!(report.rows_read, rows, "{format:?} rows read");
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

fn assert_same_lines(what: &str, a: &[String], b: &[String]) {
    assert_eq!(a.len(), b.len(), "{what}: stored line count");
    let first_difference = a.iter().zip(b).find(|(x, y)| x != y);
    assert!(first_difference.is_none(), "{what}: different lines stored: {first_difference:?}");
}

#[test]
fn saas_month_matches_expected_exactly_in_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = process_and_check(&dir.path().join("parquet"), Format::LegacyParquet, Limit::Default);
    let csv = process_and_check(&dir.path().join("csv"), Format::LegacyCsv, Limit::Default);
    assert!(parquet.len() > 10_000, "{} stored lines", parquet.len());
    assert_same_lines("Parquet and CSV", &parquet, &csv);
}

/// Issue 17: the same month under a memory limit far below its groups spills, matches
/// `expected.json` exactly and stores the same lines as without the limit, from Parquet (which
/// leaves the fast path for the generic plan) and from CSV, with two partitions (the Parquet
/// file's plan runs out of memory in two and is read again in one).
#[test]
fn saas_month_spilled_under_a_small_memory_limit_stores_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let roomy = process_and_check(&dir.path().join("parquet"), Format::LegacyParquet, Limit::OneLargeFile);
    let parquet =
        process_and_check(&dir.path().join("parquet-spilled"), Format::LegacyParquet, Limit::Spill(TIGHT_LIMIT));
    assert_same_lines("Parquet with and without spilling", &roomy, &parquet);
    let csv = process_and_check(&dir.path().join("csv-spilled"), Format::LegacyCsv, Limit::Spill(64 << 20));
    assert_same_lines("Parquet and CSV, spilled", &roomy, &csv);
}

/// Issue 17: the month's three files each fit the fast path, but their merged tables pass half of
/// its share of the limit: the delivery's tables are built into cost lines before the last file
/// (`tables_flushed`), the later files' groups are merged into those lines by their text keys,
/// nothing spills, and the stored lines are exactly those stored without a limit.
#[test]
fn saas_month_whose_merged_tables_outgrow_their_share_is_flushed_and_stores_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let roomy = process_and_check(&dir.path().join("parquet"), Format::LegacyParquet, Limit::Default);
    let flushed = process_and_check(&dir.path().join("flushed"), Format::LegacyParquet, Limit::Flush(FLUSH_LIMIT));
    assert_same_lines("Parquet with and without flushing the tables", &roomy, &flushed);
}
