//! `curflow backfill`: every billing period under an S3 prefix or a local directory, newest manifest
//! each, resumable, with bounded parallelism; ends with a table of periods.

use std::io::IsTerminal;

use curflow::location::{Location, S3Access};
use curflow::output::{MetaValue, backfill_rows, render};
use curflow::process::Processor;
use curflow::process::backfill::{self, BackfillEvent, BackfillOptions};
use curflow::store;
use curflow::{BillingPeriod, Config, ErrorClass};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Failure, FormatOrJson};

#[derive(clap::Args)]
pub struct Args {
    /// Where the CUR deliveries are: `s3://bucket/prefix` or a local directory. Every layout is
    /// found (legacy CSV with or without assemblyId folders, Athena Parquet, CUR 2.0 exports).
    #[arg(value_name = "S3_PREFIX|DIR")]
    source: String,
    /// First billing period to process, YYYY-MM (inclusive).
    #[arg(long, value_name = "YYYY-MM")]
    from: Option<BillingPeriod>,
    /// Last billing period to process, YYYY-MM (inclusive).
    #[arg(long, value_name = "YYYY-MM")]
    to: Option<BillingPeriod>,
    /// Periods read at the same time (they share the engine's memory pool; writes are sequential).
    #[arg(long, value_name = "N", default_value_t = 2)]
    parallel: usize,
    /// Cost-allocation tag key naming the tenant. Default from config: accountant_id.
    #[arg(long, value_name = "KEY")]
    tag_key: Option<String>,
    /// Re-process every period even when the store already holds its version.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    format: FormatOrJson,
}

pub async fn run(args: Args, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    let config = config.with_tag_key(args.tag_key)?;
    if args.parallel == 0 {
        return Err(curflow::Error::Argument("--parallel must be at least 1".into()).into());
    }
    let root = Location::parse(&args.source)?;
    let s3 = if root.is_s3() { Some(S3Access::new(&config.aws()).await?) } else { None };
    let mut processor = Processor::new(config.process_options(args.force))?.with_spill(&config.spill_options())?;
    if let Some(s3) = &s3 {
        processor = processor.with_s3(s3.clone());
    }
    let mut store = store::open(&config.store, &config.aws()).await?;
    let options = BackfillOptions { from: args.from, to: args.to, parallel: args.parallel };

    let bar = std::io::stderr().is_terminal().then(ProgressBar::no_length);
    if let Some(bar) = &bar
        && let Ok(style) = ProgressStyle::with_template("backfill [{bar:30}] {pos}/{len} periods ({elapsed}) {msg}")
    {
        bar.set_style(style);
    }
    let on_event = |event: BackfillEvent<'_>| match event {
        BackfillEvent::Planned { periods, to_process } => {
            tracing::info!(periods, to_process, "backfill planned");
            if let Some(bar) = &bar {
                bar.set_length(periods as u64);
            }
        }
        BackfillEvent::Finished(row) => {
            tracing::info!(
                period = %row.period.map(|p| p.to_string()).unwrap_or_default(),
                status = row.status.label(),
                "backfill period finished"
            );
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!(
                    "{} {}",
                    row.period.map(|p| p.to_string()).unwrap_or_default(),
                    row.status.label()
                ));
            }
        }
    };
    // Configured evidence sources: each period is split with the usage ledger's drivers for its days.
    let ledger = (!config.evidence.is_empty())
        .then(|| backfill::LedgerSplit { config: &config, options: config.attribution_options() });
    let summary =
        backfill::run(&processor, store.as_mut(), &root, s3.as_ref(), &options, ledger.as_ref(), &on_event).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = summary?;
    let meta = vec![("store", MetaValue::from(store.describe()))];
    crate::emit(&render(format, &backfill_rows(&summary)?, &meta, || {
        Ok(format!("store {}\n{}", store.describe(), summary.table()))
    })?)?;
    Ok(match summary.worst_failure() {
        None => 0,
        Some(ErrorClass::Internal) => 1,
        Some(ErrorClass::User) => 3,
        Some(ErrorClass::External) => 4,
    })
}
