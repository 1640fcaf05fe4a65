//! `curflow`: the command-line entry point. Thin: parsing, logging, exit codes; the work is in
//! the library.
//!
//! Exit codes: 0 success (including "already stored at this version"); 1 internal error (a bug);
//! 2 usage error (bad flags); 3 bad input (file, manifest, config); 4 environment error (I/O, store
//! busy: retry); 5 a delivery was refused because the store holds a newer version.

mod cmd_attribution;
mod cmd_backfill;
mod cmd_ce;
mod cmd_config;
mod cmd_costs;
mod cmd_finance;
mod cmd_generate;

mod cmd_periods;
mod cmd_process;
mod cmd_usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use curflow::output::OutputFormat;
use curflow::{Config, Error, ErrorClass};

/// mimalloc, returning freed memory after 10 ms (`curflow-alloc` says why).
#[global_allocator]
static ALLOCATOR: curflow_alloc::MiMalloc = curflow_alloc::MiMalloc;

#[derive(Parser)]
#[command(name = "curflow", version, about = "AWS Cost and Usage Reports in, exact per-tenant daily costs out.")]
#[command(
    after_help = "Exit codes: 0 ok, 1 internal error, 2 usage error, 3 bad input, 4 environment (retry), 5 refused older delivery.\n\
    Configuration: --config FILE, $CURFLOW_CONFIG or ./curflow.toml, then CURFLOW_* variables, then flags (`curflow config --doc` lists the settings)."
)]
struct Cli {
    /// Configuration file (TOML). Default: $CURFLOW_CONFIG, else ./curflow.toml if present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The store: a SQLite file (created by process, backfill, estimates import and budgets set;
    /// never by a read command) or `dynamodb://TABLE`. Default: $CURFLOW_STORE, else `store` in the configuration file, else curflow.sqlite.
    #[arg(long, global = true, value_name = "FILE|dynamodb://TABLE")]
    store: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "CURFLOW_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Process CUR deliveries (manifests, directories or data files) into the store.
    Process(cmd_process::Args),
    /// Process every billing period under an S3 prefix or directory (resumable, parallel).
    Backfill(cmd_backfill::Args),
    /// Show stored actual costs of one or several billing periods, grouped by any keys.
    Costs(cmd_costs::Args),
    /// List the billing periods in the store with their versions.
    Periods(cmd_periods::Args),
    /// The app's cost estimates.
    #[command(subcommand)]
    Estimates(cmd_finance::EstimatesCommand),
    /// Compare estimates with actual costs for a period (and store the result).
    Reconcile(cmd_finance::ReconcileArgs),
    /// Per-tenant monthly budgets and alert thresholds.
    #[command(subcommand)]
    Budgets(cmd_finance::BudgetsCommand),
    /// Re-reconcile the open and previous month, check budgets, detect anomalies, send alerts.
    Nightly(cmd_finance::NightlyArgs),
    /// Export a period for finance: cost lines (csv, jsonl) or expense entries.
    Export(cmd_finance::ExportArgs),
    /// Write a self-contained HTML report of a period: estimate vs actual, variances, trend and
    /// forecast, budgets, attribution coverage.
    Report(cmd_finance::ReportArgs),
    /// Explain shared-cost attribution.
    #[command(subcommand)]
    Attribution(cmd_attribution::Command),
    /// Cost Explorer as a second source: sync connected accounts' daily costs.
    #[command(subcommand)]
    Ce(cmd_ce::Command),
    /// Connected AWS accounts (`[[accounts]]`) and their Cost Explorer sync status.
    #[command(subcommand)]
    Accounts(cmd_ce::AccountsCommand),
    /// Split a stored period's shared pool again with the usage ledger as it is now (no CUR re-scan).
    Attribute(cmd_usage::AttributeArgs),
    /// The usage ledger: ingest the configured evidence sources a UTC day at a time, list its days.
    #[command(subcommand)]
    Usage(cmd_usage::Command),
    /// Generate a deterministic synthetic CUR month with an expected.json of exact totals.
    Generate(cmd_generate::Args),
    /// Print the configuration in effect (secrets redacted), or with --doc the table of settings.
    Config(cmd_config::Args),
}

/// `--format` of a command that prints data.
#[derive(clap::Args)]
pub struct FormatArg {
    /// Output: table (for people, amounts rounded), csv (header row), json (one document: metadata
    /// and a `rows` array) or jsonl (one object per row). csv/json/jsonl carry exact amounts.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

impl FormatArg {
    pub fn format(&self) -> OutputFormat {
        self.format
    }
}

/// `--format`, plus the deprecated `--json` of the commands that had it (an alias of
/// `--format json`, hidden from help; it warns on stderr and prints nothing extra on stdout).
#[derive(clap::Args)]
pub struct FormatOrJson {
    #[command(flatten)]
    format: FormatArg,
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
}

impl FormatOrJson {
    pub fn format(&self) -> OutputFormat {
        if self.json {
            eprintln!("warning: --json is deprecated; use --format json (see README, Changes in this release)");
            OutputFormat::Json
        } else {
            self.format.format()
        }
    }
}

/// An error at the binary edge, with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.class() {
            ErrorClass::Internal => 1,
            ErrorClass::User => 3,
            ErrorClass::External => 4,
        };
        Failure { code, error: e.into() }
    }
}

/// Errors of the scan and store crates reach the CLI through the application's error, which keeps
/// them whole (their class decides the exit code).
impl From<curflow::scan::Error> for Failure {
    fn from(e: curflow::scan::Error) -> Self {
        Error::from(e).into()
    }
}

impl From<curflow::store::Error> for Failure {
    fn from(e: curflow::store::Error) -> Self {
        Error::from(e).into()
    }
}

impl Failure {
    /// A bug: exit code 1.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Failure { code: 1, error: error.into() }
    }
}

/// Writes command output to stdout. A closed pipe (`curflow costs ... | head`) ends the program
/// quietly with success, as Unix tools do, instead of panicking inside `println!`.
pub fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure { code: 4, error: anyhow::Error::new(e).context("cannot write to stdout") }),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CURFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    curflow_alloc::return_freed_memory_promptly();
    let _first = curflow::memory::set_release_hook(curflow_alloc::return_freed_memory_now);
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = run(cli);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs the command on the one Tokio runtime of the process: stores, S3 and scans all await on it.
fn run(cli: Cli) -> Result<u8, Failure> {
    if let Command::Config(cmd_config::Args { doc: true }) = cli.command {
        return cmd_config::doc();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure { code: 4, error: e.into() })?;
    runtime.block_on(async {
        let mut config = Config::load(cli.config.as_deref())?;
        if let Some(store) = cli.store {
            config.store = store;
        }
        match cli.command {
            Command::Process(args) => cmd_process::run(args, config).await,
            Command::Backfill(args) => cmd_backfill::run(args, config).await,
            Command::Costs(args) => cmd_costs::run(args, config).await,
            Command::Periods(args) => cmd_periods::run(args, config).await,
            Command::Attribution(cmd) => cmd_attribution::run(cmd, config).await,
            Command::Estimates(cmd) => cmd_finance::estimates(cmd, config).await,
            Command::Reconcile(args) => cmd_finance::reconcile(args, config).await,
            Command::Budgets(cmd) => cmd_finance::budgets(cmd, config).await,
            Command::Nightly(args) => cmd_finance::nightly(args, config).await,
            Command::Export(args) => cmd_finance::export(args, config).await,
            Command::Report(args) => cmd_finance::report(args, config).await,
            Command::Ce(cmd) => cmd_ce::run(cmd, config).await,
            Command::Accounts(cmd) => cmd_ce::accounts(cmd, config).await,
            Command::Usage(cmd) => cmd_usage::run(cmd, config).await,
            Command::Attribute(args) => cmd_usage::attribute(args, config).await,
            Command::Generate(args) => cmd_generate::run(args),
            Command::Config(_) => cmd_config::run(&config),
        }
    })
}
