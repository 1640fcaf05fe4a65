//! `curflow costs`: stored actual costs of one or several billing periods, grouped by any keys
//! the stored lines carry, optionally cut to the N largest.

use curflow::output::{
    CostMeasure, CostsQuery, GroupBy, Meta, OutputFormat, UNATTRIBUTED, costs_data, costs_meta, costs_rows,
    costs_table, coverage_line, render,
};
use curflow::store::{LineFilter, PeriodRecord, Store};
use curflow::{BillingPeriod, Config, Error, store};

use crate::{Failure, FormatArg};

#[derive(clap::Args)]
pub struct Args {
    /// One billing period, YYYY-MM (shorthand for --from P --to P).
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    period: Option<BillingPeriod>,
    /// First billing period, YYYY-MM (inclusive; with --to).
    #[arg(long, value_name = "YYYY-MM", requires = "to")]
    from: Option<BillingPeriod>,
    /// Last billing period, YYYY-MM (inclusive; with --from).
    #[arg(long, value_name = "YYYY-MM", requires = "from")]
    to: Option<BillingPeriod>,
    /// Only this tenant (`UNATTRIBUTED` selects the untagged shared pool).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Grouping keys, comma-separated or repeated, in column order. Rows are always per billing
    /// period and currency.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tenant", value_name = "KEY,...")]
    by: Vec<GroupBy>,
    /// The measure --top ranks by and the table's share is of.
    #[arg(long, value_enum, default_value = "unblended")]
    measure: CostMeasure,
    /// Keep the N largest rows by --measure per period and currency; the rest are summed into one
    /// `OTHER` row.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,
    #[command(flatten)]
    format: FormatArg,
}

pub async fn run(args: Args, config: Config) -> Result<u8, Failure> {
    let store = store::open_existing(&config.store, &config.aws()).await?;
    let (from, to) = match (args.period, args.from, args.to) {
        (Some(p), _, _) => (p, p),
        (None, Some(from), Some(to)) => (from, to),
        _ => return Err(Error::Argument("give --period YYYY-MM, or --from YYYY-MM and --to YYYY-MM".into()).into()),
    };
    if from > to {
        let error = anyhow::anyhow!("--from {from} is after --to {to}: expected --from YYYY-MM no later than --to");
        return Err(Failure { code: 2, error });
    }
    let records = stored_periods(&*store, from, to).await?;
    // `--tenant` is pushed down to the store (one DynamoDB partition, SQLite's tenant index).
    let filter = match args.tenant.as_deref() {
        None => LineFilter::default(),
        Some(UNATTRIBUTED) => LineFilter::tenant(None),
        Some(t) => LineFilter::tenant(Some(t)),
    };
    let mut lines = Vec::new();
    for r in &records {
        lines.extend(store.cost_lines_where(r.period, &filter).await?);
    }
    let query = CostsQuery::new(&args.by, args.tenant, args.measure, args.top.map(|n| n as usize));
    let rows = costs_rows(&lines, &query)?;
    let format = args.format.format();
    let data = costs_data(&rows, &query)?;
    let meta = if format == OutputFormat::Json {
        costs_meta(&rows, &query, periods_meta(from, to, &records))?
    } else {
        Meta::new()
    };
    let text = render(format, &data, &meta, || {
        let mut out = String::new();
        for r in &records {
            out.push_str(&format!(
                "Billing period {} — version {} ({} rows read from {}), tag `{}`\n",
                r.period, r.version.id, r.rows_read, r.source, r.tag_key
            ));
        }
        out.push_str(&costs_table(&rows, &query, records.len() > 1)?);
        out.push_str(&format!("{}\n", coverage_line(&lines)));
        if let Some(note) = curflow::usage::missing_evidence_note(&curflow::usage::missing_evidence(&lines)?) {
            out.push_str(&format!("{note}\n"));
        }
        out.push_str(&format!(
            "(table rounded to 4 places; share of {}; --format csv|json|jsonl gives exact amounts)\n",
            query.measure.column()
        ));
        Ok(out)
    })?;
    crate::emit(&text)?;
    Ok(0)
}

/// The stored periods from `from` to `to`: an error when none is stored; a note on stderr naming
/// the months of the range that are not.
async fn stored_periods(
    store: &dyn Store,
    from: BillingPeriod,
    to: BillingPeriod,
) -> Result<Vec<PeriodRecord>, Failure> {
    let records: Vec<PeriodRecord> =
        store.periods().await?.into_iter().filter(|r| r.period >= from && r.period <= to).collect();
    if records.is_empty() {
        let store = store.describe();
        let message = if from == to {
            format!("billing period {from} is not in {store}; run `curflow process` on it first")
        } else {
            format!("no billing period from {from} to {to} is in {store}; run `curflow process` first")
        };
        return Err(Error::Argument(message).into());
    }
    let mut missing = Vec::new();
    let mut p = from;
    while p <= to {
        if !records.iter().any(|r| r.period == p) {
            missing.push(p.to_string());
        }
        p = p.next();
    }
    if !missing.is_empty() {
        eprintln!("note: not stored, so not shown: {}", missing.join(", "));
    }
    Ok(records)
}

/// JSON metadata: the range and each stored period's version.
fn periods_meta(from: BillingPeriod, to: BillingPeriod, records: &[PeriodRecord]) -> Meta {
    let periods: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "billing_period": r.period.to_string(),
                "version": r.version.id,
                "rows_read": r.rows_read,
                "source": r.source,
                "tag_key": r.tag_key,
            })
        })
        .collect();
    vec![("from", from.to_string().into()), ("to", to.to_string().into()), ("periods", periods.into())]
}
