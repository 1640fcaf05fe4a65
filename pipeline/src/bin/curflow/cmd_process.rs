//! `curflow process`: deliveries in, one summary per billing period out.

use std::io::IsTerminal;
use std::path::PathBuf;

use curflow::Config;
use curflow::attribute::sources::EvidenceSource;
use curflow::attribute::{AttributionInputs, AttributionOptions};
use curflow::discover::discover_locations;
use curflow::location::{S3Access, is_s3_path};
use curflow::output::{MetaValue, OutputFormat, PROCESS_COLUMNS, Rows, process_rows, process_summary, render};
use curflow::process::Processor;
use curflow::store::{self, ReplaceOutcome};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Failure, FormatOrJson};

#[derive(clap::Args)]
pub struct Args {
    /// Manifests (`*Manifest.json`), directories in an AWS CUR layout, or data files
    /// (`.parquet`, `.csv`, `.csv.gz`; files given together must be one billing period). Each may
    /// be local or on S3: `s3://bucket/key` (a manifest or data file) or `s3://bucket/prefix/`
    /// (read in place with range GETs; endpoint/region from the AWS chain or `aws-endpoint-url`).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Cost-allocation tag key naming the tenant. Default from config: accountant_id.
    #[arg(long, value_name = "KEY")]
    tag_key: Option<String>,
    /// Replace the stored period even when this delivery is not newer than the stored one.
    #[arg(long)]
    force: bool,
    /// Usage evidence for shared-cost attribution: log files or directories (plain or gzip) and
    /// CloudWatch Logs log groups (`cloudwatch:///aws/lambda/app[?filter=PATTERN]`, read for the days
    /// of the billing periods processed). Holds Lambda REPORT / platform.report lines, the app's JSON
    /// lines carrying the tenant, DynamoDB ConsumedCapacity lines, agent usage records, S3 server
    /// access logs and S3 Inventory manifests. Without it the shared pool stays UNATTRIBUTED
    /// (tax, support and other account-level lines are still split by direct cost).
    #[arg(long, value_name = "PATH|cloudwatch://GROUP")]
    evidence: Vec<EvidenceSource>,
    /// S3 key prefix → tenant map (TOML: `[[template]] bucket = "docs"  pattern = "clients/{tenant}/"`,
    /// `[[prefix]] prefix = "x/" tenant = "acct-1"`); needed for S3 inventory and access logs.
    #[arg(long, value_name = "FILE")]
    s3_prefixes: Option<PathBuf>,
    /// Agent runtime session → tenant map (CSV `session_id,tenant`); enables agent usage records.
    #[arg(long, value_name = "FILE")]
    agent_sessions: Option<PathBuf>,
    /// Explicit resource → tenant assignments (a resource id or ARN glob and a tenant per line).
    #[arg(long, value_name = "FILE")]
    assignments: Option<PathBuf>,
    /// Attribution rules (TOML); default: the shipped rules (attribution/rules/default.toml).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    format: FormatOrJson,
}

pub async fn run(args: Args, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    let config = config.with_tag_key(args.tag_key)?;
    let s3 = if args.paths.iter().any(|p| is_s3_path(p)) { Some(S3Access::new(&config.aws()).await?) } else { None };
    let deliveries = discover_locations(&args.paths, s3.as_ref()).await?;
    let mut store = store::open(&config.store, &config.aws()).await?;
    let mut processor = Processor::new(config.process_options(args.force))?.with_spill(&config.spill_options())?;
    if let Some(s3) = s3 {
        processor = processor.with_s3(s3);
    }
    // Without --evidence, configured evidence sources mean the usage ledger holds the drivers.
    let from_ledger = args.evidence.is_empty() && !config.evidence.is_empty();
    if from_ledger || !args.evidence.is_empty() || args.assignments.is_some() || args.rules.is_some() {
        let periods: Vec<_> = deliveries.iter().filter_map(|d| d.declared_period()).collect();
        let window = periods.iter().map(|p| p.first_day()).min().zip(periods.iter().map(|p| p.last_day()).max());
        let options = AttributionOptions {
            evidence: args.evidence.clone(),
            assignments: args.assignments.clone(),
            rules: args.rules.clone(),
            tenant_key: config.tag_key.clone(),
            s3_prefixes: args.s3_prefixes.clone(),
            agent_sessions: args.agent_sessions.clone(),
            window,
            max_malformed_ratio: Some(config.evidence_max_malformed_pct / rust_decimal::Decimal::ONE_HUNDRED),
            aws: config.aws(),
        };
        let inputs = if from_ledger {
            match window {
                Some((from, to)) => {
                    curflow::usage::ledger_inputs_with(store.as_ref(), &config, &options, from, to).await?.ok_or_else(
                        || Failure::internal(anyhow::anyhow!("evidence sources vanished from the configuration")),
                    )?
                }
                // Files without a manifest: their period is known only after the scan, so every
                // stored day is read (and no day is reported as missing).
                None => {
                    let (from, to) = (chrono::NaiveDate::MIN, chrono::NaiveDate::MAX);
                    let (drivers, _) = curflow::usage::ledger_totals(store.as_ref(), from, to).await?;
                    AttributionInputs::with_drivers(&options, drivers)?
                }
            }
        } else {
            // Reading evidence files is blocking work: off the runtime's worker threads.
            tokio::task::spawn_blocking(move || AttributionInputs::load(&options))
                .await
                .map_err(|e| Failure::internal(anyhow::anyhow!("loading usage evidence: {e}")))??
        };
        processor = processor.with_attribution(inputs);
    }
    let mut refused = false;
    let mut rows = Rows::new(PROCESS_COLUMNS);
    let mut reports = Vec::new();
    for delivery in &deliveries {
        let bar = progress_bar(delivery.files.iter().map(|f| f.size).sum(), &delivery.describe());
        let on_file = |scan: &curflow::scan::FileScan| {
            if let Some(bar) = &bar {
                bar.inc(delivery.files.iter().find(|f| f.path == scan.path).map(|f| f.size).unwrap_or(0));
            }
            tracing::info!(file = %scan.path.display(), rows = scan.rows_read, "file scanned");
        };
        // Files without a manifest may hold several billing periods: one report per period.
        let done = processor.process_periods(store.as_mut(), delivery, &on_file).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        for report in done? {
            refused |= matches!(report.outcome, ReplaceOutcome::RefusedOlder { .. });
            // People see each period as it is done; programs get one document at the end.
            if format == OutputFormat::Table {
                crate::emit(&format!("{}\n", process_summary(&report, &store.describe())))?;
            } else {
                process_rows(&report, &mut rows)?;
                reports.push(serde_json::to_value(&report).map_err(Failure::internal)?);
            }
        }
    }
    if format != OutputFormat::Table {
        let meta = vec![("store", MetaValue::from(store.describe())), ("reports", reports.into())];
        crate::emit(&render(format, &rows, &meta, || Ok(String::new()))?)?;
    }
    Ok(if refused { 5 } else { 0 })
}

/// A byte-based progress bar, only when a person is watching (stdout is a terminal).
fn progress_bar(total_bytes: u64, label: &str) -> Option<ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(label.to_string());
    Some(bar)
}
