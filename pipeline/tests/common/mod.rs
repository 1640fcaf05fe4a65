//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use curflow::discover::discover;
use curflow::process::{PeriodReport, ProcessOptions, Processor};
use curflow::scan::EngineOptions;
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};

pub mod stores;
pub mod webhook;

/// The tests' one Tokio runtime. The stores and SDK clients are async and keep their connection
/// pools on the runtime that first used them, so every synchronous test runs its futures here
/// (through [`Wait`]) rather than on runtimes of its own.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// `.wait()` on a future: runs it to completion on [`rt`]. For the synchronous tests; never call
/// it from inside a runtime.
pub trait Wait: Future + Sized {
    fn wait(self) -> Self::Output {
        rt().block_on(self)
    }
}

impl<F: Future> Wait for F {}

/// A file of the real public samples (`../shared/research/data`, or `CURFLOW_SHARED_DATA`), or
/// `None` (with a clear message) when they are absent. In CI ([`in_ci`]) a missing sample fails
/// the test instead: CI always has the samples, so a skip there would hide a broken setup.
pub fn shared_sample(relative: &str) -> Option<PathBuf> {
    let root = match std::env::var_os("CURFLOW_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/research/data"),
    };
    let path = root.join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "real sample {} not found, and this is CI (CI={:?}): the samples in ../shared/research/data are \
         required there; a plain `cargo test` outside CI skips instead",
        path.display(),
        std::env::var("CI").unwrap_or_default()
    );
    eprintln!("SKIPPED: real sample {} not found (../shared is absent on this machine)", path.display());
    None
}

/// Whether the tests run in CI: `CI` set, non-empty and not `false` (the convention of CI services;
/// `.ci/run` sets `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("false"))
}

pub fn options() -> ProcessOptions {
    ProcessOptions {
        tag_key: "accountant_id".into(),
        force: false,
        engine: EngineOptions { target_partitions: 2, memory_limit_bytes: 512 << 20, batch_size: 8192 },
        file_concurrency: Some(2),
    }
}

/// Processes `paths` into the SQLite store at `store`; returns the report of the last delivery.
pub fn process(paths: &[PathBuf], store: &Path) -> curflow::Result<PeriodReport> {
    process_with(paths, store, options())
}

pub fn process_with(paths: &[PathBuf], store: &Path, options: ProcessOptions) -> curflow::Result<PeriodReport> {
    let runtime = rt();
    let deliveries = discover(paths)?;
    let mut store = SqliteStore::open(store)?;
    let processor = Processor::new(options)?;
    let mut last = None;
    for d in &deliveries {
        last = Some(runtime.block_on(processor.process(&mut store, d, &|_| {}))?);
    }
    Ok(last.expect("no delivery found"))
}

/// Sum of everything stored for a period.
pub fn stored_total(store: &Path, period: BillingPeriod) -> Amounts {
    let store = SqliteStore::open(store).unwrap();
    Amounts::sum(store.cost_lines(period).wait().unwrap().iter().map(|l| &l.amounts)).unwrap()
}

/// A full dump of the store (every table, every row) to compare "before" and "after".
pub fn dump(store: &Path) -> String {
    let conn = rusqlite::Connection::open(store).unwrap();
    let mut out = String::new();
    for table in ["billing_periods", "cost_lines"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
            .unwrap();
        for row in rows {
            out.push_str(table);
            out.push(':');
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

use curflow_fixtures::{Format, GenerateOptions, Generated};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

/// Generates a small month; `files` data files, `rows` rows.
pub fn generate(
    dir: &Path,
    format: Format,
    rows: u64,
    seed: u64,
    tweak: impl FnOnce(&mut GenerateOptions),
) -> Generated {
    let mut options = GenerateOptions {
        rows,
        out_dir: dir.to_path_buf(),
        format,
        seed,
        tenants: 7,
        files: Some(3),
        ..GenerateOptions::default()
    };
    tweak(&mut options);
    curflow_fixtures::generate(&options).unwrap()
}

/// `expected.json` as JSON (the contract is the file, not the generator's Rust types).
pub fn expected_json(generated: &Generated) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&generated.expected_path).unwrap()).unwrap()
}

pub fn dec(v: &serde_json::Value) -> Decimal {
    match v {
        serde_json::Value::String(s) => Decimal::from_str(s).unwrap(),
        serde_json::Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap(),
        other => panic!("not a decimal: {other}"),
    }
}

/// The measures compared with `expected.json`, by name.
pub const MEASURES: [&str; 9] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "usage_amount",
    "list_cost",
    "contracted_cost",
    "pricing_quantity",
];

pub fn measure(a: &Amounts, name: &str) -> Decimal {
    match name {
        "unblended_cost" => a.unblended_cost,
        "net_unblended_cost" => a.net_unblended_cost,
        "amortized_cost" => a.amortized_cost,
        "ri_sp_trueup" => a.ri_sp_trueup,
        "ri_sp_upfront_fees" => a.ri_sp_upfront_fees,
        "usage_amount" => a.usage_amount,
        "list_cost" => a.list_cost,
        "contracted_cost" => a.contracted_cost,
        "pricing_quantity" => a.pricing_quantity,
        other => panic!("unknown measure {other}"),
    }
}

/// Stored lines summed per (tenant, service, day, currency).
pub fn stored_by_tenant_service_day(
    store: &Path,
    period: BillingPeriod,
) -> BTreeMap<(Option<String>, String, String, String), Amounts> {
    let store = SqliteStore::open(store).unwrap();
    let mut out: BTreeMap<_, Amounts> = BTreeMap::new();
    for l in store.cost_lines(period).wait().unwrap() {
        let k = (
            l.key.tenant.as_deref().map(str::to_string),
            l.key.service.to_string(),
            l.key.usage_date.to_string(),
            l.key.currency.to_string(),
        );
        out.entry(k).or_default().add(&l.amounts).unwrap();
    }
    out
}

/// Sets a file's modification time (manifest time = delivery version time).
pub fn set_mtime(path: &Path, time: std::time::SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

/// Rewrites a Parquet file batch by batch through `f`.
pub fn rewrite_parquet(
    src: &Path,
    dst: &Path,
    mut f: impl FnMut(arrow::array::RecordBatch) -> arrow::array::RecordBatch,
) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(src).unwrap()).unwrap().build().unwrap();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let tmp = dst.with_extension("tmp");
    for batch in reader {
        let batch = f(batch.unwrap());
        let w = writer.get_or_insert_with(|| {
            ArrowWriter::try_new(std::fs::File::create(&tmp).unwrap(), batch.schema(), None).unwrap()
        });
        w.write(&batch).unwrap();
    }
    writer.unwrap().close().unwrap();
    std::fs::rename(tmp, dst).unwrap();
}

/// Rewrites a plain CSV file; `f(data_row_index, header, record)` may change fields.
pub fn rewrite_csv(path: &Path, mut f: impl FnMut(usize, &csv::StringRecord, &mut Vec<String>)) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(&header).unwrap();
    for (i, r) in records.iter().enumerate() {
        let mut fields: Vec<String> = r.iter().map(str::to_string).collect();
        f(i, &header, &mut fields);
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
}

/// The one `*Manifest.json` under `root`.
pub fn find_manifest(root: &Path) -> PathBuf {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with("Manifest.json") {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// The local AWS-compatible server (`moto_server`) that `./scripts/test` starts on 127.0.0.1.
/// Tests of AWS paths fail (not skip) without it: they are part of what the suite must show.
pub fn aws_endpoint() -> String {
    std::env::var("CURFLOW_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CURFLOW_TEST_AWS_ENDPOINT is not set: this test talks to a local moto_server. \
             Run the suite with ./scripts/test, which installs and starts it."
        )
    })
}

/// AWS settings pointing at the test server (credentials come from the environment the script sets).
pub fn aws_settings() -> curflow::aws::AwsSettings {
    curflow::aws::AwsSettings { endpoint_url: Some(aws_endpoint()), region: Some("us-east-1".into()) }
}

/// A name no other test run uses (moto keeps state for the whole suite).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Processes `paths` into any store (SQLite, DynamoDB, ...); returns the report of the last delivery.
pub fn process_into(
    paths: &[PathBuf],
    store: &mut dyn CostStore,
    options: ProcessOptions,
) -> curflow::Result<PeriodReport> {
    let runtime = rt();
    let deliveries = discover(paths)?;
    let processor = Processor::new(options)?;
    let mut last = None;
    for d in &deliveries {
        last = Some(runtime.block_on(processor.process(store, d, &|_| {}))?);
    }
    Ok(last.expect("no delivery found"))
}

// ---- S3 (moto) helpers for the S3 / Lambda / backfill tests -----------------------------------

/// A blocking S3 client on the test server, for arranging buckets and objects.
pub struct TestS3 {
    pub runtime: &'static tokio::runtime::Runtime,
    pub client: aws_sdk_s3::Client,
}

impl TestS3 {
    pub fn new() -> Self {
        let runtime = rt();
        let conf = runtime.block_on(curflow::aws::sdk_config(&aws_settings()));
        let client =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        Self { runtime, client }
    }

    /// Creates a bucket with a unique name.
    pub fn bucket(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.runtime.block_on(self.client.create_bucket().bucket(&name).send()).unwrap();
        name
    }

    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.runtime
            .block_on(self.client.put_object().bucket(bucket).key(key).body(bytes.into()).send())
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
    }

    pub fn put_file(&self, bucket: &str, key: &str, path: &Path) {
        self.put_bytes(bucket, key, std::fs::read(path).unwrap());
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.runtime.block_on(self.client.delete_object().bucket(bucket).key(key).send()).unwrap();
    }

    /// Uploads every file under `dir` (except `expected.json` and `evidence/`) to
    /// `s3://bucket/<prefix><relative path>`: data files first, manifests last, as AWS delivers.
    /// Returns the manifest keys.
    pub fn upload_delivery(&self, bucket: &str, prefix: &str, dir: &Path) -> Vec<String> {
        let mut manifests = Vec::new();
        for rel in delivery_files(dir) {
            let key = format!("{prefix}{rel}");
            self.put_file(bucket, &key, &dir.join(&rel));
            if rel.ends_with("Manifest.json") {
                manifests.push(key);
            }
        }
        manifests
    }
}

/// The files of a generated delivery under `dir` as `/`-separated relative paths, data files
/// first and manifests last (the order AWS delivers in), without `expected.json` and `evidence/`.
pub fn delivery_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if p.is_dir() {
                if rel != "evidence" {
                    walk(root, &p, out);
                }
            } else if rel != "expected.json" {
                out.push(rel);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort_by_key(|f| (f.ends_with("Manifest.json"), f.clone()));
    files
}

impl Default for TestS3 {
    fn default() -> Self {
        Self::new()
    }
}

/// A committed event fixture (`tests/events/<name>`) with the placeholder bucket
/// `curflow-test-bucket` replaced by `bucket`.
pub fn event_fixture(name: &str, bucket: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text.replace("curflow-test-bucket", bucket)).unwrap()
}

/// Configuration for the Lambda handler / CLI against the test server, with a SQLite store.
pub fn s3_config(store: &Path) -> curflow::Config {
    let mut config = curflow::Config { store: store.to_path_buf(), ..curflow::Config::default() };
    config.aws_endpoint_url = Some(aws_endpoint());
    config.aws_region = Some("us-east-1".into());
    config.memory_limit_mb = 256;
    config.target_partitions = Some(2);
    config
}

/// Exact per-tenant totals of every measure in `expected.json`, keyed by tenant (`None` = pool).
pub fn expected_by_tenant(generated: &Generated) -> BTreeMap<Option<String>, BTreeMap<&'static str, Decimal>> {
    let mut out: BTreeMap<Option<String>, BTreeMap<&'static str, Decimal>> = BTreeMap::new();
    for g in expected_json(generated)["by_tenant_service_day"].as_array().unwrap() {
        let per = out.entry(g["tenant"].as_str().map(str::to_string)).or_default();
        for m in MEASURES {
            *per.entry(m).or_default() += dec(&g[m]);
        }
    }
    out
}

/// Stored per-tenant totals of every measure.
pub fn stored_by_tenant(
    store: &dyn CostStore,
    period: BillingPeriod,
) -> BTreeMap<Option<String>, BTreeMap<&'static str, Decimal>> {
    let mut out: BTreeMap<Option<String>, BTreeMap<&'static str, Decimal>> = BTreeMap::new();
    for l in store.cost_lines(period).wait().unwrap() {
        let per = out.entry(l.key.tenant.as_deref().map(str::to_string)).or_default();
        for m in MEASURES {
            *per.entry(m).or_default() += measure(&l.amounts, m);
        }
    }
    out
}

// ---- the `curflow` binary ------------------------------------------------------------------------

/// The `curflow` binary with a clean environment: no config file, store or alert channel from the
/// caller's shell; the AWS calls go to the test server when the suite runs with one.
pub fn curflow_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_curflow"));
    for var in [
        "CURFLOW_CONFIG",
        "CURFLOW_STORE",
        "CURFLOW_ALERT_WEBHOOK_URL",
        "CURFLOW_ALERT_SNS_TOPIC_ARN",
        "CURFLOW_ALERT_TOPIC_ARN",
    ] {
        c.env_remove(var);
    }
    if let Ok(endpoint) = std::env::var("CURFLOW_TEST_AWS_ENDPOINT") {
        c.env("CURFLOW_AWS_ENDPOINT_URL", endpoint).env("CURFLOW_AWS_REGION", "us-east-1");
    }
    c
}

/// Runs `curflow args` (in `cwd`, with `env` added) and echoes what it printed, which the test
/// harness shows when the test fails.
/// Amounts per (usage account, region, currency).
pub type ByPlace = BTreeMap<(String, String, String), Amounts>;

/// Stored lines summed per (usage account, region, currency), and the generator's
/// `by_account_region` (saas months) in the same shape, for the exact per-account and per-region
/// checks on either store.
pub fn by_account_region(lines: &[curflow::CostLine], expected: &serde_json::Value) -> (ByPlace, ByPlace) {
    let mut got = ByPlace::new();
    for l in lines {
        let k = &l.key;
        got.entry((k.account_id.to_string(), k.region.to_string(), k.currency.to_string()))
            .or_default()
            .add(&l.amounts)
            .unwrap();
    }
    let mut want = ByPlace::new();
    for p in expected["by_account_region"].as_array().expect("a saas month's expected.json has by_account_region") {
        let text = |f: &str| p[f].as_str().unwrap().to_string();
        let amounts = Amounts {
            unblended_cost: dec(&p["unblended_cost"]),
            net_unblended_cost: dec(&p["net_unblended_cost"]),
            amortized_cost: dec(&p["amortized_cost"]),
            ri_sp_trueup: dec(&p["ri_sp_trueup"]),
            ri_sp_upfront_fees: dec(&p["ri_sp_upfront_fees"]),
            usage_amount: dec(&p["usage_amount"]),
            line_items: 0,
            list_cost: dec(&p["list_cost"]),
            contracted_cost: dec(&p["contracted_cost"]),
            pricing_quantity: dec(&p["pricing_quantity"]),
        };
        want.insert((text("account_id"), text("region"), text("currency")), amounts);
    }
    // The generator does not count rows per place: compare the measures only.
    for a in got.values_mut() {
        a.line_items = 0;
    }
    (got, want)
}

pub fn run_curflow(args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let mut c = curflow_command();
    c.args(args).envs(env.iter().copied());
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    let out = c.output().unwrap();
    eprintln!("curflow {args:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// The stdout of a successful run; otherwise fails the test with the exit code and both streams.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

// ---- reserved and odd tenant ids -----------------------------------------------------------------

/// Tenant ids that look like the store's own names, the pool's label, a number or a separator, in
/// place of the generator's `acct-0001` … `acct-0009`.
pub const ODD_TENANTS: [&str; 9] =
    ["UNATTRIBUTED", "_shared", "_period", "_budget", "123456789012", "a#b#1", "007", "~tilde", "_alert"];

/// The money columns of `costs` compared exactly with the generator's totals.
pub const COST_MONEY: [&str; 5] =
    ["unblended_cost", "net_unblended_cost", "amortized_cost", "ri_sp_trueup", "ri_sp_upfront_fees"];

/// Per `costs --by tenant` row key (`tenant`, `shared_pool`): the exact money amounts.
pub type ByTenant = BTreeMap<(String, bool), BTreeMap<&'static str, Decimal>>;

/// A legacy month (CSV: the DataFusion plan; Parquet: the fast path) of 9 tenants whose tag values
/// are [`ODD_TENANTS`], and its exact per-tenant amounts as `costs --by tenant` must show them (the
/// pool as `UNATTRIBUTED` with `shared_pool`).
pub fn odd_tenants_month(dir: &Path, format: Format) -> (Generated, ByTenant) {
    let g = generate(dir, format, 3_000, 12, |o| {
        o.tenants = ODD_TENANTS.len() as u32;
        o.gzip_csv = false;
    });
    let odd = |generated: &str| -> Option<&'static str> {
        let n: usize = generated.strip_prefix("acct-")?.parse().ok()?;
        ODD_TENANTS.get(n.checked_sub(1)?).copied()
    };
    // Tag values carry stray spaces (trimmed by the pipeline): keep them around the new id.
    let replace = |value: &str| -> String {
        let tag = value.trim();
        if tag.is_empty() {
            return value.to_string();
        }
        value.replace(tag, odd(tag).unwrap_or_else(|| panic!("tenant {tag:?}")))
    };
    for f in &g.data_files {
        match format {
            Format::LegacyCsv => rewrite_csv(f, |_, header, fields| {
                let c = header.iter().position(|h| h == "resourceTags/user:accountant_id").unwrap();
                fields[c] = replace(&fields[c]);
            }),
            Format::LegacyParquet => rewrite_parquet(f, f, |batch| {
                use arrow::array::{Array, AsArray, StringArray};
                let i = batch.schema().index_of("resource_tags_user_accountant_id").unwrap();
                let column = batch.column(i);
                let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
                let mapped: StringArray = text.as_string::<i32>().iter().map(|v| v.map(replace)).collect();
                // Back to the column's own type (dictionary-encoded: the fast path reads it).
                let mut columns = batch.columns().to_vec();
                columns[i] = arrow::compute::cast(&mapped, column.data_type()).unwrap();
                assert_eq!(columns[i].len(), batch.num_rows());
                arrow::array::RecordBatch::try_new(batch.schema(), columns).unwrap()
            }),
            other => panic!("odd_tenants_month: legacy formats only, not {other}"),
        }
    }
    let mut want = ByTenant::new();
    for (tenant, amounts) in expected_by_tenant(&g) {
        let key = match tenant {
            Some(t) => (odd(&t).unwrap().to_string(), false),
            None => ("UNATTRIBUTED".to_string(), true),
        };
        want.insert(key, COST_MONEY.iter().map(|m| (*m, amounts[m])).collect());
    }
    assert_eq!(want.len(), ODD_TENANTS.len() + 1, "every odd tenant and the pool have costs: {want:?}");
    (g, want)
}

/// `costs --by tenant --format csv` as [`ByTenant`]; also checks the ids are written verbatim.
pub fn costs_by_tenant_csv(text: &str) -> ByTenant {
    let out = costs_by_tenant_csv_rows(text);
    for id in ODD_TENANTS {
        assert!(text.lines().any(|l| l.starts_with(&format!("2026-10,{id},"))), "{id} verbatim in\n{text}");
    }
    out
}

/// `costs --by tenant --format json` as [`ByTenant`]: tenants are JSON strings, the flag a boolean,
/// amounts exact decimal strings.
pub fn costs_by_tenant_json(text: &str) -> ByTenant {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut out = ByTenant::new();
    for row in doc["rows"].as_array().unwrap() {
        let tenant = row["tenant"].as_str().unwrap_or_else(|| panic!("tenant is not a string: {row}"));
        let pool = row["shared_pool"].as_bool().unwrap_or_else(|| panic!("shared_pool is not a bool: {row}"));
        let amounts = COST_MONEY
            .iter()
            .map(|m| (*m, Decimal::from_str(row[*m].as_str().unwrap_or_else(|| panic!("{m}: {row}"))).unwrap()))
            .collect();
        assert!(out.insert((tenant.to_string(), pool), amounts).is_none(), "one row per tenant: {text}");
    }
    out
}

/// Compares amounts by value (`1.50` = `1.5`).
pub fn assert_same_amounts(got: &ByTenant, want: &ByTenant, what: &str) {
    let norm = |m: &ByTenant| -> ByTenant {
        m.iter().map(|(k, v)| (k.clone(), v.iter().map(|(n, d)| (*n, d.normalize())).collect())).collect()
    };
    assert_eq!(norm(got), norm(want), "{what}");
}

/// Checks `costs` on a store holding [`odd_tenants_month`]: `--by tenant` in CSV, JSON and JSONL
/// shows each tenant as itself with its exact amounts and the pool apart; `--tenant X` selects
/// exactly tenant X (`UNATTRIBUTED`: the pool). `costs(args)` runs `curflow costs --period 2026-10
/// <args>` on the store. Returns the CSV, to compare stores.
pub fn check_odd_tenants_costs(costs: &dyn Fn(&[&str]) -> String, want: &ByTenant) -> String {
    let csv_text = costs(&["--by", "tenant", "--format", "csv"]);
    assert_same_amounts(&costs_by_tenant_csv(&csv_text), want, "costs --by tenant --format csv");
    let json = costs(&["--by", "tenant", "--format", "json"]);
    assert_same_amounts(&costs_by_tenant_json(&json), want, "costs --by tenant --format json");
    let jsonl = costs(&["--by", "tenant", "--format", "jsonl"]);
    let rows: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let doc = serde_json::json!({ "rows": rows }).to_string();
    assert_same_amounts(&costs_by_tenant_json(&doc), want, "costs --by tenant --format jsonl");
    let table = costs(&["--by", "tenant"]);
    assert!(table.contains("\"UNATTRIBUTED\"") && table.lines().any(|l| l.starts_with("UNATTRIBUTED ")), "{table}");
    for id in ODD_TENANTS {
        let one = costs_by_tenant_csv_rows(&costs(&["--tenant", id, "--by", "tenant", "--format", "csv"]));
        let pool = id == "UNATTRIBUTED";
        let key = (id.to_string(), pool);
        let wanted: ByTenant = [(key.clone(), want[&key].clone())].into();
        assert_same_amounts(&one, &wanted, &format!("costs --tenant {id}"));
    }
    csv_text
}

/// Like [`costs_by_tenant_csv`], without requiring every odd tenant to be present.
fn costs_by_tenant_csv_rows(text: &str) -> ByTenant {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
    let mut out = ByTenant::new();
    for r in reader.records() {
        let r = r.unwrap();
        let pool = match &r[col("shared_pool")] {
            "true" => true,
            "false" => false,
            other => panic!("shared_pool {other:?}"),
        };
        let amounts = COST_MONEY.iter().map(|m| (*m, Decimal::from_str(&r[col(m)]).unwrap())).collect();
        assert!(out.insert((r[col("tenant")].to_string(), pool), amounts).is_none(), "one row per tenant: {text}");
    }
    out
}
