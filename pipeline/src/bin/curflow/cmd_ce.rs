//! `curflow ce`: Cost Explorer as a second source: `sync` reads connected accounts' daily costs
//! into the store.

use chrono::{NaiveDate, Utc};
use curflow::config::Account;
use curflow::cost_explorer::compare::{CompareOptions, CompareReport, compare};
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
    /// The month's unblended cost per service and per tenant tag from Cost Explorer beside the stored amounts (from
    /// the CUR), with the differences; differences above both thresholds are flagged.
    Compare(CompareArgs),
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The billing period.
    #[arg(long, value_name = "YYYY-MM")]
    period: curflow::BillingPeriod,
    /// Only this account (its `name`); repeat for several. Default: every enabled account.
    #[arg(long = "account", value_name = "NAME")]
    accounts: Vec<String>,
    /// Flag a difference above this percentage of the larger amount ...
    #[arg(long, value_name = "PCT", default_value = "1")]
    threshold_pct: rust_decimal::Decimal,
    /// ... and above this amount (billing currency).
    #[arg(long, value_name = "AMOUNT", default_value = "0.01")]
    min_amount: rust_decimal::Decimal,
    #[command(flatten)]
    format: FormatArg,
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
        Command::Compare(args) => compare_cmd(args, config).await,
    }
}

async fn compare_cmd(args: CompareArgs, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    if !matches!(format, OutputFormat::Table | OutputFormat::Json) {
        return Err(Failure { code: 2, error: anyhow::anyhow!("ce compare prints --format table or json") });
    }
    let accounts = selected(&config.accounts, &args.accounts)?;
    let options = CompareOptions {
        period: args.period,
        tag_key: config.tag_key.clone(),
        aws: config.aws(),
        threshold_pct: args.threshold_pct,
        min_amount: args.min_amount,
        requests_per_second: config.ce_requests_per_second,
        request_budget: config.ce_request_budget,
    };
    let store = store::open_existing(&config.store, &config.aws()).await?;
    let report = compare(store.as_ref(), &accounts, &options).await?;
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(&report).map_err(Failure::internal)? + "\n",
        _ => compare_table(&report),
    };
    crate::emit(&text)?;
    // A flagged difference is a finding, not a failure: it is in the output (`flagged`).
    Ok(0)
}

fn compare_table(report: &CompareReport) -> String {
    let mut out =
        format!("period {} (stored version {})\n", report.period, report.stored_version.as_deref().unwrap_or("none"));
    out += &format!(
        "{:<8} {:<45} {:>4} {:>20} {:>20} {:>20}  flag\n",
        "level", "service", "cur", "cost_explorer", "stored", "difference"
    );
    for r in &report.rows {
        let round = |d: rust_decimal::Decimal| curflow::money::round(d, 2).to_string();
        out += &format!(
            "{:<8} {:<45} {:>4} {:>20} {:>20} {:>20}  {}\n",
            r.level,
            r.key,
            r.currency,
            round(r.cost_explorer),
            round(r.stored),
            round(r.difference),
            if r.flagged { "DIFFERS" } else { "" }
        );
    }
    out += &format!("requests: {}, cost ${}\n", report.requests, report.requests_cost);
    out
}

async fn sync_cmd(args: SyncArgs, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    if !matches!(format, OutputFormat::Table | OutputFormat::Json) {
        return Err(Failure { code: 2, error: anyhow::anyhow!("ce sync prints --format table or json") });
    }
    let accounts = selected(&config.accounts, &args.accounts)?;
    let (default_from, default_to) = curflow::cost_explorer::default_range(Utc::now().date_naive());
    let from = args.from.unwrap_or(default_from);
    let to = args.to.unwrap_or(default_to);
    if from > to {
        return Err(Failure { code: 2, error: anyhow::anyhow!("--from {from} is after --to {to}") });
    }
    let options = SyncOptions::from_config(&config, from, to);
    let mut store = store::open(&config.store, &config.aws()).await?;
    refuse_too_recent(&accounts, &store.account_statuses().await?, &config)?;
    let report = sync(store.as_mut(), &accounts, &options).await?;
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(&report).map_err(Failure::internal)? + "\n",
        _ => summary(&report),
    };
    crate::emit(&text)?;
    // Some account failed: the environment's problem (role, trust policy, throttling), exit 4.
    Ok(if report.accounts.iter().any(|a| a.error.is_some()) { 4 } else { 0 })
}

/// Refuses the run (exit 2, before any request) when an account was synced less than
/// `ce-manual-sync-interval-minutes` ago, naming the time to wait.
fn refuse_too_recent(
    accounts: &[Account],
    statuses: &[store::finance::AccountStatus],
    config: &Config,
) -> Result<(), Failure> {
    let minutes = i64::try_from(config.ce_manual_sync_interval_minutes).unwrap_or(i64::MAX);
    let interval = chrono::Duration::try_minutes(minutes).unwrap_or(chrono::Duration::MAX);
    let refused = curflow::cost_explorer::too_recent(accounts, statuses, interval, Utc::now());
    if refused.is_empty() {
        return Ok(());
    }
    let waits: Vec<String> = refused
        .iter()
        .map(|(name, wait)| format!("{name}: wait {}m {}s", wait.num_minutes(), wait.num_seconds() % 60))
        .collect();
    Err(Failure {
        code: 2,
        error: anyhow::anyhow!(
            "synced less than {minutes} minutes ago (ce-manual-sync-interval-minutes), nothing requested: {}",
            waits.join(", ")
        ),
    })
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

#[derive(clap::Subcommand)]
pub enum AccountsCommand {
    /// The connected accounts of the configuration (the external id is never shown).
    List(FormatArg),
    /// Each connected account's last Cost Explorer sync: when, its error, requests and their cost, and
    /// the last AWS forecast `nightly` fetched.
    Status(FormatArg),
}

pub async fn accounts(cmd: AccountsCommand, config: Config) -> Result<u8, Failure> {
    let (format, rows) = match cmd {
        AccountsCommand::List(f) => (f.format(), list_rows(&config.accounts)),
        AccountsCommand::Status(f) => {
            let store = store::open_existing(&config.store, &config.aws()).await?;
            (f.format(), status_rows(&config.accounts, &store.account_statuses().await?))
        }
    };
    if !matches!(format, OutputFormat::Table | OutputFormat::Json) {
        return Err(Failure { code: 2, error: anyhow::anyhow!("accounts prints --format table or json") });
    }
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(&rows).map_err(Failure::internal)? + "\n",
        _ => table(&rows),
    };
    crate::emit(&text)?;
    Ok(0)
}

type Row = serde_json::Map<String, serde_json::Value>;

fn list_rows(accounts: &[Account]) -> Vec<Row> {
    accounts
        .iter()
        .map(|a| {
            let v = serde_json::json!({
                "name": a.name, "account_id": a.account_id, "role_arn": a.role_arn,
                "region": a.region, "enabled": a.enabled,
            });
            v.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

/// One row per configured account (never synced: empty fields), then stored statuses of accounts
/// no longer configured.
fn status_rows(accounts: &[Account], statuses: &[store::finance::AccountStatus]) -> Vec<Row> {
    let mut names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    names.extend(statuses.iter().map(|s| s.name.as_str()).filter(|n| !accounts.iter().any(|a| a.name == *n)));
    names
        .into_iter()
        .map(|name| {
            let s = statuses.iter().find(|s| s.name == name);
            let configured = accounts.iter().find(|a| a.name == name);
            let v = serde_json::json!({
                "name": name,
                "account_id": configured.map(|a| a.account_id.clone()).or_else(|| s.map(|s| s.account_id.clone())),
                "configured": configured.is_some(),
                "last_attempt": s.map(|s| s.last_attempt.to_rfc3339()),
                "last_synced": s.and_then(|s| s.last_synced).map(|t| t.to_rfc3339()),
                "last_error": s.and_then(|s| s.last_error.clone()),
                "last_requests": s.map_or(0, |s| s.last_requests),
                "total_requests": s.map_or(0, |s| s.total_requests),
                "total_cost_usd": curflow::cost_explorer::limiter::cost_of(s.map_or(0, |s| s.total_requests)).to_string(),
                "aws_forecast": s.and_then(|s| s.forecast.as_ref()).map(forecast_text),
            });
            v.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

/// The last AWS forecast as `nightly` stored it: the rest-of-month amount, or why there is none.
fn forecast_text(f: &store::finance::AwsForecast) -> String {
    match (&f.amount, &f.unavailable) {
        (Some(amount), _) => format!(
            "{} {} from {} to the end of {} (fetched {})",
            amount,
            f.currency.as_deref().unwrap_or(""),
            f.from,
            f.month,
            f.fetched_at.to_rfc3339()
        ),
        (None, reason) => format!("not available: {}", reason.as_deref().unwrap_or("no amount")),
    }
}

/// Rows as `key: value` blocks (few accounts, long errors: a grid would not fit).
fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for (k, v) in row {
            let text = match v {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out += &format!("{k:>15}: {text}\n");
        }
        out.push('\n');
    }
    out
}
