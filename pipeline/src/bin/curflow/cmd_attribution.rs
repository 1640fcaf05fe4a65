//! `curflow attribution explain`: how a tenant's share of shared cost was computed.

use curflow::explain::{explain, explain_output, explain_resources, explain_text};
use curflow::output::render;
use curflow::{BillingPeriod, Config, Error, store};

use crate::{Failure, FormatArg};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the shared lines that gave a tenant cost in a period: rule, basis, driver quantities,
    /// share, the whole line and the tenant's amount.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Billing period, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    period: BillingPeriod,
    /// Tenant id (tag value).
    #[arg(long, value_name = "ID")]
    tenant: String,
    /// One line per shared line (per resource) instead of per stored row (per day, service, usage
    /// type and rule): the stored shared pool split again with the configured rules and usage
    /// ledger, which must be what the stored split was made from.
    #[arg(long)]
    resources: bool,
    /// Lines shown in the table (largest first); csv, json and jsonl list every line.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    format: FormatArg,
}

pub async fn run(command: Command, config: Config) -> Result<u8, Failure> {
    let Command::Explain(args) = command;
    let store = store::open_existing(&config.store, &config.aws()).await?;
    let Some(record) = store.period(args.period).await? else {
        return Err(Error::Argument(format!(
            "billing period {} is not in {}; run `curflow process` on it first",
            args.period,
            store.describe()
        ))
        .into());
    };
    let lines = store.cost_lines(args.period).await?;
    if !lines.iter().any(|l| l.key.tenant.as_deref() == Some(args.tenant.as_str())) {
        return Err(Error::Argument(format!("tenant {:?} has no cost in {}", args.tenant, args.period)).into());
    }
    let e = if args.resources {
        let inputs = curflow::usage::period_inputs(store.as_ref(), &config, args.period).await?;
        let pool = store.pool_lines(args.period).await?;
        let stored_inputs = (record.tag_key.as_str(), record.inputs.as_deref());
        explain_resources(&lines, &pool, &inputs, stored_inputs, &args.tenant)?
    } else {
        explain(&lines, &args.tenant)?
    };
    let period = args.period.to_string();
    let (rows, mut meta) = explain_output(&e, &period)?;
    let missing = curflow::usage::missing_evidence(&lines)?;
    let note = curflow::usage::missing_evidence_note(&missing);
    meta.push(("missing_evidence", serde_json::to_value(&missing).map_err(Failure::internal)?.into()));
    let text = || Ok(explain_text(&e, &period, args.limit) + &note.map(|n| format!("{n}\n")).unwrap_or_default());
    crate::emit(&render(args.format.format(), &rows, &meta, text)?)?;
    Ok(0)
}
