//! Evidence parse throughput for the closing note: streams log files (plain or gzip) through the
//! one-pass log aggregator (Lambda REPORT + app lines + DynamoDB capacity) exactly as
//! `curflow process --evidence` does, and prints MB/s and lines/s.
//!
//! `cargo run --release -p curflow-attribution --example parse_logs -- FILE...`

use std::time::Instant;

use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
use curflow_attribution::evidence::logs::LogAggregator;
use curflow_attribution::evidence::{ErrorBudget, decompress_threaded};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = vec!["accountant_id".to_string()];
    let mut logs = LogAggregator::new(
        LambdaAggregator::new(LambdaConfig { tenant_keys: keys.clone(), ..LambdaConfig::default() }),
        DynamoAggregator::new(DynamoConfig { tenant_keys: keys, tables: None }),
    );
    let budget = ErrorBudget::default();
    let started = Instant::now();
    let (mut bytes, mut lines, mut records) = (0u64, 0u64, 0u64);
    for path in std::env::args().skip(1) {
        bytes += std::fs::metadata(&path)?.len();
        // As the CLI opens files: gzip is decompressed on a thread of its own.
        let reader = decompress_threaded(std::fs::File::open(&path)?)?;
        let report = logs.read(&path, reader, &budget)?;
        lines += report.lines;
        records += report.records;
    }
    let (_, lambda) = logs.lambda.finish()?;
    let (_, dynamo) = logs.dynamo.finish()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:.2} GB, {lines} lines ({records} evidence records; {} invocations joined, {} DynamoDB requests) in {secs:.2} s: \
         {:.1} MB/s, {:.0} lines/s",
        bytes as f64 / 1e9,
        lambda.joined,
        dynamo.requests,
        bytes as f64 / 1e6 / secs,
        lines as f64 / secs
    );
    Ok(())
}
