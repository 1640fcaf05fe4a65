//! Reads Lambda/application log files (plain or gzip) the way `curflow usage ingest` does
//! (one `LogAggregator` pass per file) and prints the time and the join's counters; for profiling
//! the evidence parsers without the CLI (`cargo run --release --example evidence_read -- FILE...`).

use std::time::Instant;

use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
use curflow_attribution::evidence::logs::LogAggregator;
use curflow_attribution::evidence::{ErrorBudget, decompress_threaded};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let keys = vec!["accountant_id".to_owned()];
    let mut logs = LogAggregator::new(
        LambdaAggregator::new(LambdaConfig { tenant_keys: keys.clone(), ..LambdaConfig::default() }),
        DynamoAggregator::new(DynamoConfig { tenant_keys: keys, tables: None }),
    );
    let (mut lines, mut bytes) = (0u64, 0u64);
    for path in std::env::args().skip(1) {
        bytes += std::fs::metadata(&path)?.len();
        let reader = decompress_threaded(std::fs::File::open(&path)?)?;
        let report = logs.read(&path, reader, &ErrorBudget::default())?;
        lines += report.lines;
    }
    let (_totals, stats) = logs.lambda.finish()?;
    let secs = start.elapsed().as_secs_f64();
    println!("{lines} lines, {bytes} file bytes in {secs:.2} s ({:.0} MB/s of file bytes)", bytes as f64 / 1e6 / secs);
    println!("{stats:?}");
    Ok(())
}
