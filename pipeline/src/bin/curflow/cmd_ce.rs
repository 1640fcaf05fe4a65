//! `curflow ce`: Cost Explorer as a second source: `sync` reads connected accounts' daily costs
//! into the store.

use chrono::{Datelike, NaiveDate, Utc};
use curflow::config::Account;
use curflow::cost_explorer::{SyncOptions, SyncReport, sync};
use curflow::output::OutputFormat;
use curflow::{Config, Error, store};

use crate::{Failure, FormatArg};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Read daily costs per service and tenant tag of the connected accounts (`[[accounts]]`)
    /// through AssumeRole and GetCostAndUsage, and store each month as a Cost Explorer version
    /// (replaced by the month's CUR when it is processed). Every request costs $0.01.
    Sync(SyncArgs),
}

#[derive(clap::Args)]
pub struct SyncArgs {
    /// Only this account (its `name`); repeat for several. Default: every enabled account.
    #[arg(long = "account", value_name = "NAME")]
    accounts: Vec<String>,
    /// First UTC day, inclusive. Default: the first day of the previous month.
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<NaiveDate>,
    /// Last UTC day, inclusive. Default: yesterday.
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<NaiveDate>,
    /// table (a summary for people) or json (the whole report).
    #[command(flatten)]
    format: FormatArg,
}

pub async fn run(cmd: Command, config: Config) -> Result<u8, Failure> {
    match cmd {
        Command::Sync(args) => sync_cmd(args, config).await,
    }
}

async fn sync_cmd(args: SyncArgs, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    if !matches!(format, OutputFormat::Table | OutputFormat::Json) {
        return Err(Failure { code: 2, error: anyhow::anyhow!("ce sync prints --format table or json") });
    }
    let accounts = selected(&config.accounts, &args.accounts)?;
    let today = Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let previous_month = curflow::BillingPeriod::containing(today).first_day().pred_opt().unwrap_or(today);
    let from = args.from.unwrap_or_else(|| previous_month.with_day(1).unwrap_or(previous_month));
    let to = args.to.unwrap_or(yesterday);
    if from > to {
        return Err(Failure { code: 2, error: anyhow::anyhow!("--from {from} is after --to {to}") });
    }
    let options = SyncOptions {
        tag_key: config.tag_key.clone(),
        from,
        to,
        aws: config.aws(),
        requests_per_second: config.ce_requests_per_second,
        request_budget: config.ce_request_budget,
    };
    let mut store = store::open(&config.store, &config.aws()).await?;
    let report = sync(store.as_mut(), &accounts, &options).await?;
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(&report).map_err(Failure::internal)? + "\n",
        _ => summary(&report),
    };
    crate::emit(&text)?;
    // Some account failed: the environment's problem (role, trust policy, throttling), exit 4.
    Ok(if report.accounts.iter().any(|a| a.error.is_some()) { 4 } else { 0 })
}

/// The enabled accounts named by `--account` (all enabled ones without it); an unknown or
/// disabled name is a usage error.
fn selected(accounts: &[Account], names: &[String]) -> Result<Vec<Account>, Failure> {
    if accounts.is_empty() {
        return Err(Error::Argument(
            "no connected accounts: add [[accounts]] to the configuration (README, Connected accounts)".into(),
        )
        .into());
    }
    if names.is_empty() {
        return Ok(accounts.iter().filter(|a| a.enabled).cloned().collect());
    }
    names
        .iter()
        .map(|n| match accounts.iter().find(|a| &a.name == n) {
            Some(a) if a.enabled => Ok(a.clone()),
            Some(_) => Err(Error::Argument(format!("account {n:?} is disabled (enabled = false)")).into()),
            None => Err(Error::Argument(format!(
                "no connected account named {n:?}; configured: {}",
                accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .into()),
        })
        .collect()
}

fn summary(report: &SyncReport) -> String {
    let mut out = String::new();
    for a in &report.accounts {
        match &a.error {
            None => {
                out += &format!(
                    "account {} ({}): synced, {} requests, {} lines\n",
                    a.name, a.account_id, a.requests, a.lines
                )
            }
            Some(e) => {
                out += &format!("account {} ({}): FAILED after {} requests: {e}\n", a.name, a.account_id, a.requests)
            }
        }
    }
    for p in &report.periods {
        let provisional = if p.provisional { ", provisional" } else { "" };
        out += &format!("period {}: {} {} ({} lines{provisional})\n", p.period, p.outcome, p.version, p.lines);
    }
    out += &format!("requests: {}, cost ${}\n", report.requests, report.requests_cost);
    out
}
