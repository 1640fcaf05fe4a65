//! `curflow attribution explain`: how a tenant's share of shared cost was computed.

use std::path::PathBuf;

use curflow::explain::{explain, explain_csv, explain_text};
use curflow::{BillingPeriod, Config, Error, store};

use crate::Failure;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the shared lines that gave a tenant cost in a period: rule, basis, driver quantities,
    /// share, the whole line and the tenant's amount.
    Explain(ExplainArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// SQLite store file. Default from config: curflow.sqlite.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Billing period, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// Tenant id (tag value).
    #[arg(long, value_name = "ID")]
    tenant: String,
    /// Lines shown in the table (largest first); csv and json list every line.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn run(command: Command, mut config: Config) -> Result<u8, Failure> {
    let Command::Explain(args) = command;
    if let Some(s) = args.store {
        config.store = s;
    }
    let store = store::open_existing(&config.store, &config.aws())?;
    if store.period(args.period)?.is_none() {
        return Err(Error::Argument(format!(
            "billing period {} is not in {}; run `curflow process` on it first",
            args.period,
            store.describe()
        ))
        .into());
    }
    let lines = store.cost_lines(args.period)?;
    if !lines.iter().any(|l| l.key.tenant.as_deref() == Some(args.tenant.as_str())) {
        return Err(Error::Argument(format!("tenant {:?} has no cost in {}", args.tenant, args.period)).into());
    }
    let e = explain(&lines, &args.tenant)?;
    match args.format {
        Format::Table => crate::emit(&explain_text(&e, &args.period.to_string(), args.limit))?,
        Format::Csv => crate::emit(&explain_csv(&e)?)?,
        Format::Json => {
            let json = serde_json::to_string_pretty(&e).map_err(|err| Failure { code: 1, error: err.into() })?;
            crate::emit(&format!("{json}\n"))?;
        }
    }
    Ok(0)
}
