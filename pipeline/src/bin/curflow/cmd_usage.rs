//! `curflow usage ingest|days`: the usage ledger (configured `[[evidence]]` sources → per-day
//! usage-driver quantities in the store) and what it holds.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use std::io::IsTerminal;

use curflow::attribute::{AttributionOptions, ReadProgress};
use curflow::output::{Meta, MetaValue, Rows, Table, Value, render};
use curflow::usage::{IngestOptions, IngestReport, ingest};
use curflow::{Config, store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Failure, FormatArg};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Read the configured evidence sources, whole UTC days, into the usage ledger (resumable).
    Ingest(IngestArgs),
    /// List the (source, day)s the ledger holds, with their versions and provenance.
    Days(DaysArgs),
}

#[derive(clap::Args)]
pub struct IngestArgs {
    /// First UTC day; default: `usage-restate-days` before the first day not yet ingested.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last UTC day (inclusive); default: yesterday.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only these configured sources (repeatable); default: every `[[evidence]]` source.
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,
    /// S3 prefix → tenant map (TOML), for S3 Inventory and access-log evidence; default: the
    /// `s3-prefixes` setting.
    #[arg(long, value_name = "FILE")]
    s3_prefixes: Option<PathBuf>,
    /// Agent runtime session → tenant map (CSV), for agent usage records; default: the
    /// `agent-sessions` setting.
    #[arg(long, value_name = "FILE")]
    agent_sessions: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(clap::Args)]
pub struct DaysArgs {
    #[arg(long)]
    from: NaiveDate,
    #[arg(long)]
    to: NaiveDate,
    #[command(flatten)]
    format: FormatArg,
}

pub async fn run(cmd: Command, config: Config) -> Result<u8, Failure> {
    match cmd {
        Command::Ingest(args) => run_ingest(args, config).await,
        Command::Days(args) => days(args, config).await,
    }
}

async fn run_ingest(args: IngestArgs, config: Config) -> Result<u8, Failure> {
    let mut sources = config.evidence.clone();
    if !args.sources.is_empty() {
        if let Some(unknown) = args.sources.iter().find(|n| !sources.iter().any(|s| &s.name == *n)) {
            return Err(curflow::Error::Argument(format!(
                "--source {unknown}: no such [[evidence]] source (configured: {})",
                sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        sources.retain(|s| args.sources.contains(&s.name));
    }
    if sources.is_empty() {
        return Err(curflow::Error::Argument(
            "no evidence source is configured: add [[evidence]] tables (name, location) to the configuration".into(),
        )
        .into());
    }
    let yesterday = Utc::now().date_naive().pred_opt().unwrap_or_else(|| Utc::now().date_naive());
    let progress = ReadProgress::default();
    let options = IngestOptions {
        sources,
        from: args.from,
        to: args.to.unwrap_or(yesterday),
        restate_days: config.usage_restate_days,
        reading: AttributionOptions {
            s3_prefixes: args.s3_prefixes.or_else(|| config.s3_prefixes.clone()),
            agent_sessions: args.agent_sessions.or_else(|| config.agent_sessions.clone()),
            progress: Some(progress.clone()),
            ..config.attribution_options()
        },
    };
    let mut store = store::open(&config.store, &config.aws()).await?;
    let bar = progress_bar(&progress);
    let report = ingest(store.as_mut(), &options).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    let report = report?;
    let (rows, table) = ingest_output(&report)?;
    let meta: Meta = vec![("store", MetaValue::from(store.describe()))];
    crate::emit(&render(args.format.format(), &rows, &meta, || Ok(table))?)?;
    Ok(0)
}

/// On a terminal: a bar with the evidence bytes read so far, its rate and the elapsed time,
/// refreshed from `progress` while the sources are read (their total size is not known ahead:
/// CloudWatch Logs and S3 prefixes are paged).
fn progress_bar(progress: &ReadProgress) -> Option<(ProgressBar, tokio::task::JoinHandle<()>)> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} usage ingest: {bytes} of evidence read ({bytes_per_sec}, {elapsed})")
    {
        bar.set_style(style);
    }
    let (shown, read) = (bar.clone(), progress.clone());
    let ticker = tokio::spawn(async move {
        loop {
            shown.set_position(read.bytes());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    Some((bar, ticker))
}

const INGEST_COLUMNS: [&str; 12] = [
    "source",
    "day",
    "outcome",
    "version",
    "rows",
    "tenants",
    "without_tenant",
    "lines",
    "bytes",
    "malformed",
    "invocations_joined",
    "invocations_without_tenant",
];

/// One row per (source, day); the source's read counts (lines, malformed, joins) are on each of
/// its rows, as they belong to the one pass over its whole range.
fn ingest_output(report: &IngestReport) -> Result<(Rows, String), Failure> {
    let mut rows = Rows::new(INGEST_COLUMNS);
    let mut table = Table::new(["source", "day", "outcome", "tenants", "rows", "without tenant"]).right([3, 4]);
    let mut summary = String::new();
    for source in &report.sources {
        for day in &source.days {
            let without: Vec<String> =
                day.without_tenant.iter().map(|(d, q)| format!("{d}={}", q.normalize())).collect();
            rows.push(vec![
                Value::from(source.source.as_str()),
                day.day.to_string().into(),
                day.outcome.into(),
                day.version.as_str().into(),
                day.rows.into(),
                day.tenants.into(),
                without.join(";").into(),
                source.lines.into(),
                source.bytes.into(),
                source.malformed.into(),
                source.invocations_joined.into(),
                source.invocations_without_tenant.into(),
            ])?;
            table.row([
                source.source.clone(),
                day.day.to_string(),
                day.outcome.to_string(),
                day.tenants.to_string(),
                day.rows.to_string(),
                without.join(", "),
            ]);
        }
        summary.push_str(&format!(
            "{}: {} to {} from {}: {} lines ({} bytes), {} malformed, {} invocations joined to a tenant, {} without\n",
            source.source,
            source.from,
            source.to,
            source.location,
            source.lines,
            source.bytes,
            source.malformed,
            source.invocations_joined,
            source.invocations_without_tenant
        ));
    }
    Ok((rows, format!("{}\n{summary}", table.render())))
}

async fn days(args: DaysArgs, config: Config) -> Result<u8, Failure> {
    let store = store::open_existing(&config.store, &config.aws()).await?;
    let days = store.usage_days(args.from, args.to).await?;
    let mut rows = Rows::new(["source", "day", "version", "rows", "ingested_at", "location", "lines", "malformed"]);
    let mut table = Table::new(["source", "day", "rows", "ingested at", "read from"]).right([2]);
    for d in &days {
        let ingested = d.ingested_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        rows.push(vec![
            Value::from(d.source.as_str()),
            d.day.to_string().into(),
            d.version.as_str().into(),
            d.rows.into(),
            ingested.as_str().into(),
            d.provenance.location.as_str().into(),
            d.provenance.lines.into(),
            d.provenance.malformed.into(),
        ])?;
        table.row([d.source.clone(), d.day.to_string(), d.rows.to_string(), ingested, d.provenance.location.clone()]);
    }
    crate::emit(&render(args.format.format(), &rows, &Meta::new(), || Ok(table.render()))?)?;
    Ok(0)
}

#[derive(clap::Args)]
pub struct AttributeArgs {
    /// The stored billing period to split again.
    #[arg(long, value_name = "YYYY-MM")]
    period: curflow::BillingPeriod,
    #[command(flatten)]
    format: FormatArg,
}

/// `curflow attribute --period`: the stored period's shared pool split again with the usage
/// ledger as it is now, without reading the CUR.
pub async fn attribute(args: AttributeArgs, config: Config) -> Result<u8, Failure> {
    let mut store = store::open_existing(&config.store, &config.aws()).await?;
    let (from, to) = (args.period.first_day(), args.period.last_day());
    let Some(inputs) = curflow::usage::ledger_inputs(store.as_ref(), &config, from, to).await? else {
        return Err(curflow::Error::Argument(
            "no evidence source is configured: add [[evidence]] tables (name, location) to the configuration".into(),
        )
        .into());
    };
    let Some(done) = curflow::reattribute::reattribute(store.as_mut(), args.period, inputs).await? else {
        return Err(curflow::Error::Argument(format!("period {} is not in the store", args.period)).into());
    };
    let mut rows = Rows::new(["period", "version", "outcome", "pool_lines", "lines"]);
    rows.push(vec![
        Value::from(done.period.to_string()),
        done.version.as_str().into(),
        done.outcome.into(),
        (done.pool_lines as u64).into(),
        (done.lines as u64).into(),
    ])?;
    let text = format!(
        "period {} (version {}): {}; {} shared line(s) split again, {} line(s) stored\n",
        done.period, done.version, done.outcome, done.pool_lines, done.lines
    );
    let meta: Meta =
        vec![("coverage", MetaValue::Json(serde_json::to_value(&done.coverage).map_err(Failure::internal)?))];
    crate::emit(&render(args.format.format(), &rows, &meta, || Ok(text))?)?;
    Ok(if done.outcome == "refused_older" { 5 } else { 0 })
}
