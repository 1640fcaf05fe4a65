//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use curflow::discover::discover;
use curflow::process::{PeriodReport, ProcessOptions, Processor};
use curflow::scan::EngineOptions;
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};

/// A file of `../shared/research/data`, or `None` (with a clear message) when `../shared` is absent.
pub fn shared_sample(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/research/data").join(relative);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("SKIPPED: real sample {} not found (../shared is absent on this machine)", path.display());
        None
    }
}

pub fn options() -> ProcessOptions {
    ProcessOptions {
        tag_key: "accountant_id".into(),
        force: false,
        engine: EngineOptions { target_partitions: 2, memory_limit_bytes: 512 << 20, batch_size: 8192 },
        file_concurrency: 2,
    }
}

/// Processes `paths` into the SQLite store at `store`; returns the report of the last delivery.
pub fn process(paths: &[PathBuf], store: &Path) -> curflow::Result<PeriodReport> {
    process_with(paths, store, options())
}

pub fn process_with(paths: &[PathBuf], store: &Path, options: ProcessOptions) -> curflow::Result<PeriodReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
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
    Amounts::sum(store.cost_lines(period).unwrap().iter().map(|l| &l.amounts)).unwrap()
}

/// A full dump of the store (every table, every row) to compare "before" and "after".
pub fn dump(store: &Path) -> String {
    let conn = rusqlite::Connection::open(store).unwrap();
    let mut out = String::new();
    for table in ["billing_periods", "cost_lines"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join("|"))
            })
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
