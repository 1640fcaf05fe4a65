//! `curflow costs`: stored actual costs of one billing period, grouped by tenant, service or day.

use std::path::PathBuf;

use curflow::output::{GroupBy, costs_csv, costs_json, costs_rows, costs_table, coverage_line};
use curflow::{BillingPeriod, Config, Error, store};

use crate::Failure;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// SQLite store file. Default from config: curflow.sqlite.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Billing period, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// Only this tenant (`UNATTRIBUTED` selects the untagged shared pool).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Grouping dimension.
    #[arg(long, value_enum, default_value = "tenant")]
    by: GroupBy,
    /// Output format: table (rounded, for reading), csv or json (exact amounts).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn run(args: Args, mut config: Config) -> Result<u8, Failure> {
    if let Some(s) = args.store {
        config.store = s;
    }
    let store = store::open_existing(&config.store, &config.aws())?;
    let record = store.period(args.period)?.ok_or_else(|| {
        Error::Argument(format!(
            "billing period {} is not in {}; run `curflow process` on it first",
            args.period,
            store.describe()
        ))
    })?;
    let lines = store.cost_lines(args.period)?;
    let rows = costs_rows(&lines, args.by, args.tenant.as_deref())?;
    match args.format {
        Format::Table => {
            crate::emit(&format!(
                "Billing period {} — version {} ({} rows read from {}), tag `{}`\n",
                record.period, record.version.id, record.rows_read, record.source, record.tag_key
            ))?;
            crate::emit(&costs_table(&rows, args.by)?)?;
            crate::emit(&format!("{}\n", coverage_line(&lines)))?;
            crate::emit("(table rounded to 4 places; --format csv|json gives exact amounts)\n")?;
        }
        Format::Csv => crate::emit(&costs_csv(&rows, args.by))?,
        Format::Json => crate::emit(&format!("{}\n", costs_json(&rows, args.by)?))?,
    }
    Ok(0)
}
