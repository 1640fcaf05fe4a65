//! Finance commands on any store (SQLite or DynamoDB): `estimates import`, `reconcile`, `budgets`, `nightly`,
//! `export`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use curflow::estimates_import::read_estimates;
use curflow::nightly::{self, summary_text};
use curflow::reconciliation::{self, month_of};
use curflow::store::Store;
use curflow::store::finance::BudgetSetting;
use curflow::{BillingPeriod, Config, Error};
use curflow_reconcile::{Budget, EstimateRules, default_thresholds};
use rust_decimal::Decimal;

use crate::Failure;

/// Opens the store (`--store` overrides the config): a SQLite file (created on first use) or a
/// `dynamodb://TABLE`; estimates, budgets and reconciliations live next to the cost lines in both.
fn open_store(store: Option<PathBuf>, config: &mut Config) -> Result<Box<dyn Store>, Failure> {
    if let Some(s) = store {
        config.store = s;
    }
    Ok(curflow::store::open(&config.store, &config.aws())?)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure { code: 1, error: e.into() })
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

// ---------------------------------------------------------------------------------------------- estimates

#[derive(clap::Subcommand)]
pub enum EstimatesCommand {
    /// Import the app's estimate records (CSV with a header, or JSON Lines). All or nothing: a file
    /// with any bad record imports nothing and lists the bad lines. Re-importing a file is a no-op.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
    },
}

pub fn estimates(cmd: EstimatesCommand, mut config: Config) -> Result<u8, Failure> {
    let EstimatesCommand::Import { file, store } = cmd;
    let records = read_estimates(&file, &EstimateRules::default())?;
    let mut store = open_store(store, &mut config)?;
    let outcome = store.import_estimates(&records, &file.display().to_string())?;
    crate::emit(&format!(
        "{}: {} estimate records, {} imported, {} already stored\n",
        file.display(),
        outcome.records,
        outcome.inserted,
        outcome.already_stored
    ))?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------------- reconcile

#[derive(clap::Args)]
pub struct ReconcileArgs {
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// tenant: one row per tenant; resource-type: per tenant and resource type; suggestions.
    #[arg(long, value_enum, default_value = "tenant")]
    level: Level,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
    #[arg(long, value_name = "STORE")]
    store: Option<PathBuf>,
    /// The time the period state (open/provisional/final) is judged at. Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Level {
    Tenant,
    ResourceType,
    Suggestions,
}

pub fn reconcile(args: ReconcileArgs, mut config: Config) -> Result<u8, Failure> {
    let options = config.reconcile_options()?;
    let mut store = open_store(args.store, &mut config)?;
    if store.period(args.period)?.is_none() {
        return Err(Error::Argument(format!(
            "billing period {} is not stored; run `curflow process` first",
            args.period
        ))
        .into());
    }
    let now = args.now.unwrap_or_else(Utc::now);
    let comparison = reconciliation::reconcile(&*store, args.period, now, &options)?;
    store.replace_reconciliation(month_of(args.period), &comparison, now)?;
    let keep = |t: &str| args.tenant.as_deref().is_none_or(|x| x == t);
    let values =
        |v: Result<Vec<serde_json::Value>, serde_json::Error>| v.map_err(|e| Failure { code: 1, error: e.into() });
    let rows: Vec<serde_json::Value> = match args.level {
        Level::Tenant => values(
            comparison.tenant_months.iter().filter(|r| keep(&r.accountant_id)).map(serde_json::to_value).collect(),
        )?,
        Level::ResourceType => values(
            comparison.resource_types.iter().filter(|r| keep(&r.accountant_id)).map(serde_json::to_value).collect(),
        )?,
        Level::Suggestions => values(
            comparison.suggestions.iter().filter(|r| keep(&r.accountant_id)).map(serde_json::to_value).collect(),
        )?,
    };
    match args.format {
        Format::Json => crate::emit(&format!("{}\n", json(&rows)?))?,
        Format::Csv => crate::emit(&csv_of(&rows)?)?,
        Format::Table => crate::emit(&table_of(&rows, args.level))?,
    }
    Ok(0)
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn csv_of(rows: &[serde_json::Value]) -> Result<String, Failure> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(serde_json::Value::Object(first)) = rows.first() {
        w.write_record(first.keys()).map_err(|e| Failure { code: 1, error: e.into() })?;
    }
    for r in rows {
        if let serde_json::Value::Object(o) = r {
            w.write_record(o.values().map(cell)).map_err(|e| Failure { code: 1, error: e.into() })?;
        }
    }
    let bytes = w.into_inner().map_err(|e| Failure { code: 1, error: anyhow::anyhow!("{e}") })?;
    String::from_utf8(bytes).map_err(|e| Failure { code: 1, error: e.into() })
}

fn table_of(rows: &[serde_json::Value], level: Level) -> String {
    let cols: &[&str] = match level {
        Level::Tenant => {
            &["accountant_id", "period_state", "estimated", "actual", "variance", "variance_pct", "flagged", "status"]
        }
        Level::ResourceType => &[
            "accountant_id",
            "resource_type",
            "estimated",
            "actual",
            "variance",
            "variance_pct",
            "dominant",
            "flagged",
            "suggested_unit_cost",
        ],
        Level::Suggestions => &[
            "accountant_id",
            "resource_type",
            "current_unit_cost",
            "suggested_unit_cost",
            "estimated_quantity",
            "actual_quantity",
            "variance",
            "rate_effect",
        ],
    };
    let fmt = |c: &str, v: &serde_json::Value| {
        let text = cell(v);
        match (c, text.parse::<Decimal>()) {
            ("variance_pct", Ok(d)) => format!("{}%", d.round_dp(1)),
            (c, Ok(d)) if !c.contains("unit_cost") && !c.contains("quantity") => {
                curflow::output::group_thousands(d.round_dp(2))
            }
            _ => text,
        }
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| fmt(c, r.get(*c).unwrap_or(&serde_json::Value::Null))).collect())
        .collect();
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| body.iter().map(|r| r[i].chars().count()).chain([cols[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect::<Vec<_>>().join("  ") + "\n"
    };
    let mut out = line(cols.iter().map(|c| c.to_string()).collect());
    for r in body {
        out.push_str(&line(r));
    }
    if rows.is_empty() {
        out.push_str("(no rows: no estimates or actuals for this period)\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------- budgets

#[derive(clap::Subcommand)]
pub enum BudgetsCommand {
    /// Create or replace a tenant's monthly budget.
    Set {
        #[arg(long, value_name = "ID")]
        tenant: String,
        /// Monthly amount (exact decimal).
        #[arg(long)]
        amount: Decimal,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Alert thresholds in % of the budget (repeat or comma-separate). Default 80,100.
        #[arg(long, value_delimiter = ',')]
        threshold: Vec<Decimal>,
        /// Also alert when the month-end forecast crosses a threshold.
        #[arg(long)]
        forecast_alerts: bool,
        /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
    },
    /// List budgets.
    List {
        /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant's budget.
    Delete {
        #[arg(long, value_name = "ID")]
        tenant: String,
        /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
    },
}

pub fn budgets(cmd: BudgetsCommand, mut config: Config) -> Result<u8, Failure> {
    match cmd {
        BudgetsCommand::Set { tenant, amount, currency, threshold, forecast_alerts, store } => {
            if amount <= Decimal::ZERO || threshold.iter().any(|t| *t <= Decimal::ZERO) {
                return Err(Error::Argument("--amount and every --threshold must be greater than 0".into()).into());
            }
            let mut store = open_store(store, &mut config)?;
            let thresholds_pct = if threshold.is_empty() { default_thresholds() } else { threshold };
            let budget = Budget { accountant_id: tenant.clone(), monthly_amount: amount, currency, thresholds_pct };
            store.set_budget(&BudgetSetting { budget, forecast_alerts, updated_at: Utc::now() })?;
            crate::emit(&format!("budget of {tenant} set to {amount}\n"))?;
        }
        BudgetsCommand::List { store, json: as_json } => {
            let store = open_store(store, &mut config)?;
            let all = store.budgets()?;
            if as_json {
                crate::emit(&format!("{}\n", json(&all)?))?;
            } else if all.is_empty() {
                crate::emit("no budgets; set one with `curflow budgets set --tenant ID --amount N`\n")?;
            } else {
                for b in all {
                    let t: Vec<String> =
                        b.budget.thresholds_pct.iter().map(|t| format!("{}%", t.normalize())).collect();
                    crate::emit(&format!(
                        "{:<20} {:>14} {}  alerts at {}{}\n",
                        b.budget.accountant_id,
                        b.budget.monthly_amount,
                        b.budget.currency,
                        t.join(", "),
                        if b.forecast_alerts { " (and on forecast)" } else { "" }
                    ))?;
                }
            }
        }
        BudgetsCommand::Delete { tenant, store } => {
            let mut store = open_store(store, &mut config)?;
            if !store.delete_budget(&tenant)? {
                return Err(Error::Argument(format!("no budget for {tenant}")).into());
            }
            crate::emit(&format!("budget of {tenant} deleted\n"))?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------- nightly

#[derive(clap::Args)]
pub struct NightlyArgs {
    /// Run as if it were this time (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<DateTime<Utc>>,
    /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
    #[arg(long, value_name = "STORE")]
    store: Option<PathBuf>,
    /// Print the summary and every alert as JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn nightly(args: NightlyArgs, mut config: Config) -> Result<u8, Failure> {
    if let Some(s) = args.store {
        config.store = s;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure { code: 4, error: e.into() })?;
    let summary = runtime.block_on(nightly::run(&config, args.now.unwrap_or_else(Utc::now)))?;
    if args.json {
        for a in &summary.alerts_sent {
            crate::emit(&format!("{}\n", json(&serde_json::json!({"alert": a}))?))?;
        }
        crate::emit(&format!("{}\n", json(&summary)?))?;
    } else {
        crate::emit(&summary_text(&summary))?;
    }
    Ok(if summary.alerts_failed.is_empty() { 0 } else { 4 })
}

// ---------------------------------------------------------------------------------------------- export

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// Every stored cost line (exact amounts).
    Csv,
    /// Every stored cost line as JSON Lines.
    Jsonl,
    /// One expense entry per tenant and service (cents; entries sum to each tenant's rounded total).
    Expenses,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
    #[arg(long, value_name = "STORE")]
    store: Option<PathBuf>,
}

pub fn export(args: ExportArgs, mut config: Config) -> Result<u8, Failure> {
    if let Some(s) = args.store {
        config.store = s;
    }
    let store = curflow::store::open_existing(&config.store, &config.aws())?;
    if store.period(args.period)?.is_none() {
        return Err(Error::Argument(format!(
            "billing period {} is not stored; run `curflow process` first",
            args.period
        ))
        .into());
    }
    let lines = store.cost_lines(args.period)?;
    match args.format {
        ExportFormat::Jsonl => {
            let mut out = String::new();
            for l in &lines {
                out.push_str(&json(&curflow::output::export_record(l))?);
                out.push('\n');
            }
            crate::emit(&out)?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for l in &lines {
                w.serialize(curflow::output::export_record(l)).map_err(|e| Failure { code: 1, error: e.into() })?;
            }
            let bytes = w.into_inner().map_err(|e| Failure { code: 1, error: anyhow::anyhow!("{e}") })?;
            crate::emit(&String::from_utf8_lossy(&bytes))?;
        }
        ExportFormat::Expenses => {
            let entries = reconciliation::expense_entries(&lines, args.period, "USD")?;
            let mut w = csv::Writer::from_writer(Vec::new());
            for e in &entries {
                w.serialize(e).map_err(|e| Failure { code: 1, error: e.into() })?;
            }
            let bytes = w.into_inner().map_err(|e| Failure { code: 1, error: anyhow::anyhow!("{e}") })?;
            crate::emit(&String::from_utf8_lossy(&bytes))?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------- report

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// Output HTML file (self-contained: opens without network).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The store: a SQLite file or dynamodb://TABLE (default: the configured store).
    #[arg(long, value_name = "STORE")]
    store: Option<PathBuf>,
    /// The time the report describes (period state, forecast as of the day before). Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<DateTime<Utc>>,
}

pub fn report(args: ReportArgs, mut config: Config) -> Result<u8, Failure> {
    let options = config.reconcile_options()?;
    let store = open_store(args.store, &mut config)?;
    if store.period(args.period)?.is_none() {
        return Err(Error::Argument(format!(
            "billing period {} is not stored; run `curflow process` first",
            args.period
        ))
        .into());
    }
    let data = reconciliation::report_data(&*store, args.period, args.now.unwrap_or_else(Utc::now), &options)?;
    let html = curflow::report_html::render_report(&data)?;
    std::fs::write(&args.out, &html).map_err(|e| Failure::from(Error::Io { path: args.out.clone(), source: e }))?;
    crate::emit(&format!(
        "{}: {} tenants, {} days, {} KiB — open it in a browser\n",
        args.out.display(),
        data.tenants.len(),
        data.daily.len(),
        html.len() / 1024
    ))?;
    Ok(0)
}
