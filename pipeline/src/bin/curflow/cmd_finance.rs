//! Finance commands on any store (SQLite or DynamoDB): `estimates import`, `reconcile`, `budgets`,
//! `nightly`, `export`, `report`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use curflow::estimates_import::read_estimates;
use curflow::nightly::{self, NightlySummary, summary_text};
use curflow::output::{MetaValue, OutputFormat, Rows, Table, Value, export_rows, group_thousands, render};
use curflow::reconciliation::{self, month_of};
use curflow::store::Store;
use curflow::store::finance::BudgetSetting;
use curflow::{BillingPeriod, Config, Error};
use curflow_reconcile::{Budget, EstimateRules, default_thresholds};
use rust_decimal::Decimal;

use crate::{Failure, FormatArg, FormatOrJson};

/// Opens the configured store: a SQLite file (created on first use) or a `dynamodb://TABLE`;
/// estimates, budgets and reconciliations live next to the cost lines in both.
async fn open_store(config: &Config) -> Result<Box<dyn Store>, Failure> {
    Ok(curflow::store::open(&config.store, &config.aws()).await?)
}

/// Opens the store for a command that only reads (or changes what exists): a SQLite path that
/// does not exist is an error (exit 4), never a new empty store.
async fn open_existing_store(config: &Config) -> Result<Box<dyn Store>, Failure> {
    Ok(curflow::store::open_existing(&config.store, &config.aws()).await?)
}

async fn require_period(store: &dyn Store, period: BillingPeriod) -> Result<curflow::store::PeriodRecord, Failure> {
    match store.period(period).await? {
        Some(record) => Ok(record),
        None => Err(Error::Argument(format!(
            "billing period {period} is not in {}; run `curflow process` first",
            store.describe()
        ))
        .into()),
    }
}

// ---------------------------------------------------------------------------------------------- estimates

#[derive(clap::Subcommand)]
pub enum EstimatesCommand {
    /// Import the app's estimate records (CSV with a header, or JSON Lines). All or nothing: a file
    /// with any bad record imports nothing and lists the bad lines. Re-importing a file is a no-op.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub async fn estimates(cmd: EstimatesCommand, config: Config) -> Result<u8, Failure> {
    let EstimatesCommand::Import { file } = cmd;
    let records = read_estimates(&file, &EstimateRules::default())?;
    let mut store = open_store(&config).await?;
    let outcome = store.import_estimates(&records, &file.display().to_string()).await?;
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
    #[command(flatten)]
    format: FormatArg,
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

/// Columns of `reconcile --level tenant`, in output order (README, CLI reference).
pub const RECONCILE_TENANT_COLUMNS: [&str; 16] = [
    "accountant_id",
    "month",
    "period_state",
    "currency",
    "estimated",
    "actual",
    "actual_direct",
    "actual_attributed",
    "actual_unmapped",
    "variance",
    "variance_pct",
    "unestimated_usage",
    "flagged",
    "status",
    "estimate_records",
    "actual_records",
];

/// Columns of `reconcile --level resource-type`.
pub const RECONCILE_RESOURCE_TYPE_COLUMNS: [&str; 29] = [
    "accountant_id",
    "month",
    "resource_type",
    "mapping",
    "period_state",
    "currency",
    "estimated",
    "actual",
    "actual_direct",
    "actual_attributed",
    "variance",
    "variance_pct",
    "unestimated_usage",
    "flagged",
    "status",
    "quantity_unit",
    "estimated_quantity",
    "actual_quantity",
    "estimated_unit_cost",
    "actual_unit_cost",
    "volume_effect",
    "rate_effect",
    "dominant",
    "suggested_unit_cost",
    "usage_days",
    "first_day",
    "last_day",
    "estimate_records",
    "actual_records",
];

/// Columns of `reconcile --level suggestions`.
pub const RECONCILE_SUGGESTION_COLUMNS: [&str; 19] = [
    "accountant_id",
    "month",
    "resource_type",
    "period_state",
    "status",
    "quantity_unit",
    "current_unit_cost",
    "suggested_unit_cost",
    "estimated_quantity",
    "actual_quantity",
    "estimated",
    "actual",
    "variance",
    "variance_pct",
    "volume_effect",
    "rate_effect",
    "usage_days",
    "first_day",
    "last_day",
];

pub async fn reconcile(args: ReconcileArgs, config: Config) -> Result<u8, Failure> {
    let options = config.reconcile_options()?;
    let mut store = open_existing_store(&config).await?;
    require_period(&*store, args.period).await?;
    let now = args.now.unwrap_or_else(Utc::now);
    let comparison = reconciliation::reconcile(&*store, args.period, now, &options).await?;
    store.replace_reconciliation(month_of(args.period), &comparison, now).await?;
    let keep = |t: &str| args.tenant.as_deref().is_none_or(|x| x == t);
    let not_compared: Vec<_> = comparison.not_compared.iter().filter(|n| keep(&n.accountant_id)).collect();
    let (rows, level) = match args.level {
        Level::Tenant => {
            let r: Vec<_> = comparison.tenant_months.iter().filter(|r| keep(&r.accountant_id)).collect();
            (Rows::from_serialized(&RECONCILE_TENANT_COLUMNS, &r)?, "tenant")
        }
        Level::ResourceType => {
            let r: Vec<_> = comparison.resource_types.iter().filter(|r| keep(&r.accountant_id)).collect();
            (Rows::from_serialized(&RECONCILE_RESOURCE_TYPE_COLUMNS, &r)?, "resource_type")
        }
        Level::Suggestions => {
            let r: Vec<_> = comparison.suggestions.iter().filter(|r| keep(&r.accountant_id)).collect();
            (Rows::from_serialized(&RECONCILE_SUGGESTION_COLUMNS, &r)?, "suggestions")
        }
    };
    let meta = vec![
        ("billing_period", MetaValue::from(args.period.to_string())),
        ("level", level.into()),
        ("tenant", args.tenant.clone().into()),
        ("now", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into()),
        ("not_compared", serde_json::to_value(&not_compared).map(MetaValue::Json).map_err(Failure::internal)?),
    ];
    crate::emit(&render(args.format.format(), &rows, &meta, || {
        let mut text = reconcile_table(&rows, args.level);
        for n in &not_compared {
            text.push_str(&format!(
                "not compared: {} has {} {} of actual cost in {} (the estimates are in another currency)\n",
                n.accountant_id,
                group_thousands(n.actual.round_dp(2)),
                n.currency,
                n.month
            ));
        }
        Ok(text)
    })?)?;
    Ok(0)
}

/// The columns people read, amounts to the cent, percentages to 0.1.
fn reconcile_table(rows: &Rows, level: Level) -> String {
    let cols: &[&str] = match level {
        Level::Tenant => &[
            "accountant_id",
            "period_state",
            "currency",
            "estimated",
            "actual",
            "variance",
            "variance_pct",
            "flagged",
            "status",
        ],
        Level::ResourceType => &[
            "accountant_id",
            "resource_type",
            "currency",
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
    let index: Vec<Option<usize>> = cols.iter().map(|c| rows.columns().iter().position(|x| x == c)).collect();
    let fmt = |c: &str, v: &Value| {
        let text = v.text();
        match (c, text.parse::<Decimal>()) {
            ("variance_pct", Ok(d)) => format!("{}%", d.round_dp(1)),
            (c, Ok(d)) if !c.contains("unit_cost") && !c.contains("quantity") => group_thousands(d.round_dp(2)),
            _ => text,
        }
    };
    let numeric =
        |c: &str| !matches!(c, "accountant_id" | "resource_type" | "period_state" | "currency" | "status" | "dominant");
    let mut table = Table::new(cols.iter().copied()).right((0..cols.len()).filter(|i| numeric(cols[*i])));
    for r in rows.rows() {
        table.row(cols.iter().zip(&index).map(|(c, i)| i.map(|i| fmt(c, &r[i])).unwrap_or_default()));
    }
    let mut out = table.render();
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
        /// ISO 4217 code of the amount. Default: `estimates-currency` when configured, else USD.
        /// Alerts compare the budget only with cost in this currency.
        #[arg(long, value_name = "CODE")]
        currency: Option<String>,
        /// Alert thresholds in % of the budget (repeat or comma-separate). Default 80,100.
        #[arg(long, value_delimiter = ',')]
        threshold: Vec<Decimal>,
        /// Also alert when the month-end forecast crosses a threshold.
        #[arg(long)]
        forecast_alerts: bool,
    },
    /// List budgets.
    List {
        #[command(flatten)]
        format: FormatOrJson,
    },
    /// Delete a tenant's budget.
    Delete {
        #[arg(long, value_name = "ID")]
        tenant: String,
    },
}

/// Columns of `budgets list --format csv|json|jsonl`.
pub const BUDGET_COLUMNS: [&str; 6] =
    ["tenant", "monthly_amount", "currency", "thresholds_pct", "forecast_alerts", "updated_at"];

pub async fn budgets(cmd: BudgetsCommand, config: Config) -> Result<u8, Failure> {
    match cmd {
        BudgetsCommand::Set { tenant, amount, currency, threshold, forecast_alerts } => {
            if amount <= Decimal::ZERO || threshold.iter().any(|t| *t <= Decimal::ZERO) {
                return Err(Error::Argument("--amount and every --threshold must be greater than 0".into()).into());
            }
            let currency =
                currency.or_else(|| config.estimates_currency.clone()).unwrap_or_else(|| "USD".into()).to_uppercase();
            if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
                return Err(Error::Argument(format!(
                    "--currency must be an ISO 4217 code such as EUR, found {currency:?}"
                ))
                .into());
            }
            let mut store = open_store(&config).await?;
            let thresholds_pct = if threshold.is_empty() { default_thresholds() } else { threshold };
            let budget = Budget {
                accountant_id: tenant.clone(),
                monthly_amount: amount,
                currency: currency.clone(),
                thresholds_pct,
            };
            store.set_budget(&BudgetSetting { budget, forecast_alerts, updated_at: Utc::now() }).await?;
            crate::emit(&format!("budget of {tenant} set to {amount} {currency}\n"))?;
        }
        BudgetsCommand::List { format } => {
            let all = open_existing_store(&config).await?.budgets().await?;
            crate::emit(&render(format.format(), &budget_rows(&all)?, &Vec::new(), || Ok(budget_table(&all)))?)?;
        }
        BudgetsCommand::Delete { tenant } => {
            let mut store = open_existing_store(&config).await?;
            if !store.delete_budget(&tenant).await? {
                return Err(Error::Argument(format!("no budget for {tenant}")).into());
            }
            crate::emit(&format!("budget of {tenant} deleted\n"))?;
        }
    }
    Ok(0)
}

fn budget_rows(all: &[BudgetSetting]) -> Result<Rows, Failure> {
    let mut rows = Rows::new(BUDGET_COLUMNS);
    for b in all {
        rows.push(vec![
            b.budget.accountant_id.as_str().into(),
            b.budget.monthly_amount.into(),
            b.budget.currency.as_str().into(),
            Value::List(b.budget.thresholds_pct.iter().map(|t| t.normalize().to_string()).collect()),
            b.forecast_alerts.into(),
            b.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
        ])?;
    }
    Ok(rows)
}

fn budget_table(all: &[BudgetSetting]) -> String {
    if all.is_empty() {
        return "no budgets; set one with `curflow budgets set --tenant ID --amount N`\n".into();
    }
    let mut table = Table::new(["tenant", "monthly amount", "currency", "alerts at", "on forecast"]).right([1]);
    for b in all {
        let t: Vec<String> = b.budget.thresholds_pct.iter().map(|t| format!("{}%", t.normalize())).collect();
        table.row([
            b.budget.accountant_id.clone(),
            b.budget.monthly_amount.to_string(),
            b.budget.currency.clone(),
            t.join(", "),
            if b.forecast_alerts { "yes" } else { "no" }.to_string(),
        ]);
    }
    table.render()
}

// ---------------------------------------------------------------------------------------------- nightly

#[derive(clap::Args)]
pub struct NightlyArgs {
    /// Run as if it were this time (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<DateTime<Utc>>,
    #[command(flatten)]
    format: FormatOrJson,
}

/// Columns of `nightly --format csv|json|jsonl`: one row per budget alert of the run.
pub const ALERT_COLUMNS: [&str; 11] = [
    "accountant_id",
    "month",
    "threshold_pct",
    "kind",
    "budget",
    "currency",
    "mtd_actual",
    "forecast",
    "message",
    "delivery",
    "error",
];

pub async fn nightly(args: NightlyArgs, config: Config) -> Result<u8, Failure> {
    let format = args.format.format();
    let summary = nightly::run(&config, args.now.unwrap_or_else(Utc::now)).await?;
    let (rows, meta) = nightly_output(&summary)?;
    crate::emit(&render(format, &rows, &meta, || Ok(summary_text(&summary)))?)?;
    Ok(if summary.alerts_failed.is_empty() { 0 } else { 4 })
}

/// The alerts (sent, then failed with the error) as rows; the rest of the summary as metadata.
fn nightly_output(s: &NightlySummary) -> Result<(Rows, curflow::output::Meta), Failure> {
    let mut rows = Rows::new(ALERT_COLUMNS);
    let sent = s.alerts_sent.iter().map(|a| (a, "sent", None));
    let alerts = sent.chain(s.alerts_failed.iter().map(|(a, e)| (a, "failed", Some(e))));
    for (a, delivery, error) in alerts {
        // One record gives one row: the alert's fields, then how its delivery went.
        let fields = Rows::from_serialized(&ALERT_COLUMNS[..9], std::slice::from_ref(a))?;
        let mut row = fields.rows().first().cloned().unwrap_or_default();
        row.extend([delivery.into(), error.map(String::as_str).into()]);
        rows.push(row)?;
    }
    let to = |v: serde_json::Result<serde_json::Value>| v.map(MetaValue::Json).map_err(Failure::internal);
    let meta = vec![
        ("now", MetaValue::from(s.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
        ("reconciled", to(serde_json::to_value(&s.reconciled))?),
        ("forecasts", to(serde_json::to_value(&s.forecasts))?),
        ("anomalies", to(serde_json::to_value(&s.anomalies))?),
        ("budget_currency_mismatches", to(serde_json::to_value(&s.budget_currency_mismatches))?),
        ("unconfirmed_deliveries", to(serde_json::to_value(&s.alerts_unconfirmed))?),
        ("usage_ledger", to(serde_json::to_value(&s.ledger))?),
    ];
    Ok((rows, meta))
}

// ---------------------------------------------------------------------------------------------- export

/// What `export` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportKind {
    /// Every stored cost line (exact amounts).
    Lines,
    /// One expense entry per tenant and service (cents; entries sum to each tenant's rounded total).
    Expenses,
}

/// `export --format`: the usual formats, and `expenses`, the deprecated spelling of
/// `--kind expenses --format csv` (hidden).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Table,
    Csv,
    Json,
    Jsonl,
    /// Every stored cost line, every field, as one Parquet file (`--output`; decimal(38, 12) money).
    Parquet,
    /// The period as FOCUS 1.3 cost-and-usage rows (`--output`, `--file-format`): origin charges,
    /// and the per-tenant split of each shared line as allocated charges.
    Focus,
    #[value(hide = true)]
    Expenses,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// lines: every stored cost line; expenses: one expense entry per tenant and service.
    #[arg(long, value_enum, default_value = "lines")]
    kind: ExportKind,
    /// Output: csv (header row), json (one document), jsonl (one object per row), table, or parquet
    /// (every field of every stored line, written to --output).
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The file `--format parquet|focus` writes (replaced atomically when complete).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The file format of `--format focus`.
    #[arg(long, value_enum, default_value = "parquet")]
    file_format: FocusFileArg,
}

/// `export --format focus --file-format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FocusFileArg {
    Parquet,
    Csv,
}

/// Columns of `export --kind expenses`.
pub const EXPENSE_COLUMNS: [&str; 8] =
    ["accountant_id", "service", "vendor", "amount", "currency", "date", "category", "description"];

pub async fn export(args: ExportArgs, config: Config) -> Result<u8, Failure> {
    match args.format {
        ExportFormat::Parquet => return export_parquet(args, config).await,
        ExportFormat::Focus => return export_focus(args, config).await,
        _ => {}
    }
    if args.output.is_some() {
        return Err(Error::Argument(
            "--output is for --format parquet and focus; other formats print to stdout".into(),
        )
        .into());
    }
    let (kind, format) = match args.format {
        ExportFormat::Parquet | ExportFormat::Focus => unreachable!("handled above"),
        ExportFormat::Expenses => {
            eprintln!("warning: --format expenses is deprecated; use --kind expenses --format csv");
            (ExportKind::Expenses, OutputFormat::Csv)
        }
        ExportFormat::Table => (args.kind, OutputFormat::Table),
        ExportFormat::Csv => (args.kind, OutputFormat::Csv),
        ExportFormat::Json => (args.kind, OutputFormat::Json),
        ExportFormat::Jsonl => (args.kind, OutputFormat::Jsonl),
    };
    let store = open_existing_store(&config).await?;
    require_period(&*store, args.period).await?;
    let lines = store.cost_lines(args.period).await?;
    let rows = match kind {
        ExportKind::Lines => export_rows(&lines)?,
        ExportKind::Expenses => {
            Rows::from_serialized(&EXPENSE_COLUMNS, &reconciliation::expense_entries(&lines, args.period)?)?
        }
    };
    let meta = vec![("billing_period", MetaValue::from(args.period.to_string()))];
    crate::emit(&render(format, &rows, &meta, || Ok(plain_table(&rows)))?)?;
    Ok(0)
}

/// `export --format parquet`: the period's stored lines into `--output`, with a one-line summary.
async fn export_parquet(args: ExportArgs, config: Config) -> Result<u8, Failure> {
    let Some(path) = args.output else {
        return Err(Error::Argument("--format parquet needs --output FILE".into()).into());
    };
    if args.kind != ExportKind::Lines {
        return Err(Error::Argument("--format parquet exports --kind lines".into()).into());
    }
    let store = open_existing_store(&config).await?;
    require_period(&*store, args.period).await?;
    let lines = store.cost_lines(args.period).await?;
    let bytes = curflow::output::parquet::write_lines(&lines, &path)?;
    crate::emit(&format!("{}: {} cost lines of {} ({bytes} bytes)\n", path.display(), lines.len(), args.period))?;
    Ok(0)
}

/// `export --format focus`: the period as FOCUS 1.3 into `--output`, with a summary line. A period
/// split to tenants is split again from its stored pool with the inputs it was split with (the
/// configuration and usage ledger must still give those), so the allocated charges are exactly the
/// stored split's parts; a period never attributed is written as origin charges only.
async fn export_focus(args: ExportArgs, config: Config) -> Result<u8, Failure> {
    use curflow::output::focus::{FocusFile, FocusSource, write_focus};
    let Some(path) = args.output else {
        return Err(Error::Argument("--format focus needs --output FILE".into()).into());
    };
    if args.kind != ExportKind::Lines {
        return Err(Error::Argument("--format focus exports --kind lines".into()).into());
    }
    let file = match args.file_format {
        FocusFileArg::Parquet => FocusFile::Parquet,
        FocusFileArg::Csv => FocusFile::Csv,
    };
    let store = open_existing_store(&config).await?;
    let record = require_period(&*store, args.period).await?;
    let lines = store.cost_lines(args.period).await?;
    let summary = if lines.iter().any(|l| l.attribution.is_some()) {
        let inputs = curflow::usage::period_inputs(store.as_ref(), &config, args.period).await?;
        let pool = store.pool_lines(args.period).await?;
        curflow::explain::require_stored_split((&record.tag_key, record.inputs.as_deref()), &inputs, &pool)?;
        let tagged = lines.into_iter().filter(|l| l.source() == curflow::aggregate::LineSource::Cur);
        let source = FocusSource::Split { lines: tagged.chain(pool).collect(), inputs: &inputs };
        write_focus(source, args.period, &record.tag_key, file, &path)?
    } else {
        write_focus(FocusSource::Stored(&lines), args.period, &record.tag_key, file, &path)?
    };
    crate::emit(&format!(
        "{}: FOCUS {} of {}: {} origin charges, {} allocated charges splitting {} shared lines ({} bytes)\n",
        path.display(),
        curflow::output::focus::FOCUS_VERSION,
        args.period,
        summary.origin_charges,
        summary.allocated_charges,
        summary.allocated_origins,
        summary.bytes
    ))?;
    Ok(0)
}

/// Every column with its exact value; numbers right-aligned.
fn plain_table(rows: &Rows) -> String {
    let numeric: Vec<usize> = (0..rows.columns().len())
        .filter(|i| rows.rows().iter().all(|r| matches!(r[*i], Value::Dec(_) | Value::Int(_) | Value::Null)))
        .collect();
    let mut table = Table::new(rows.columns().iter().cloned()).right(numeric);
    for r in rows.rows() {
        table.row(r.iter().map(Value::text));
    }
    table.render()
}

// ---------------------------------------------------------------------------------------------- report

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// Output HTML file (self-contained: opens without network).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The time the report describes (period state, forecast as of the day before). Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<DateTime<Utc>>,
}

pub async fn report(args: ReportArgs, config: Config) -> Result<u8, Failure> {
    let options = config.reconcile_options()?;
    let store = open_existing_store(&config).await?;
    require_period(&*store, args.period).await?;
    let data =
        curflow::report_data::report_data(&*store, args.period, args.now.unwrap_or_else(Utc::now), &options).await?;
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
