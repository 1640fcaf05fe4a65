//! `curflow generate`: a deterministic synthetic CUR month plus `expected.json`, whose totals are
//! computed by the generator itself (independently of the DataFusion pipeline).

use std::path::PathBuf;

use curflow_fixtures::{Format, GenerateOptions, Profile, generate};

use crate::Failure;

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutFormat {
    /// Legacy CUR, Athena-style Parquet.
    Parquet,
    /// Legacy CUR, gzip CSV.
    Csv,
    /// CUR 2.0 (Data Exports) Parquet.
    Cur2,
    /// CUR 2.0 (Data Exports) gzip CSV (maps as JSON text).
    #[value(name = "cur2-csv")]
    Cur2Csv,
    /// FOCUS 1.0 as AWS Data Exports writes it (FOCUS_1_0_AWS), Parquet.
    #[value(name = "focus-1.0")]
    Focus10,
    /// FOCUS 1.2 (FOCUS_1_2_AWS), Parquet.
    #[value(name = "focus-1.2")]
    Focus12,
    /// FOCUS 1.2 (FOCUS_1_2_AWS), gzip CSV.
    #[value(name = "focus-1.2-csv")]
    Focus12Csv,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutProfile {
    /// Compact month exercising every CUR quirk (all line-item types, commitments, split-cost
    /// children) with few tenants. Every format, evidence.
    #[value(alias = "default")]
    Demo,
    /// Realistic SaaS month: 2,000 Zipf-skewed tenants (s = 1), 9 tagged resources per tenant plus
    /// 10 % untagged shared resources carrying 30 % of rows, 85 columns, high-cardinality ids,
    /// Usage/Tax/Credit/Fee. parquet or csv only; expected.json has per-tenant totals.
    Saas,
}

#[derive(clap::Args)]
pub struct Args {
    /// The shape of the month (see README, `curflow generate`).
    #[arg(long, value_enum, default_value = "demo")]
    profile: OutProfile,
    /// Total rows in the month (all line-item types).
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Output directory (acts as the S3 bucket root).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "parquet")]
    format: OutFormat,
    /// Random seed; the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of tenants (distinct tag values); default 25 (demo) or 2000 (saas).
    #[arg(long)]
    tenants: Option<u32>,
    /// Data files per month (default: one per ~2M rows, at least 3).
    #[arg(long)]
    files: Option<u32>,
    /// Billing period, YYYY-MM.
    #[arg(long, default_value = "2026-10")]
    period: curflow::BillingPeriod,
    /// Tenant tag key written into the files.
    #[arg(long, default_value = "accountant_id")]
    tag_key: String,
    /// Write plain .csv instead of .csv.gz (csv, cur2-csv and focus-1.2-csv).
    #[arg(long)]
    no_gzip: bool,
    /// Also write usage evidence for the shared resources under DIR/evidence (Lambda REPORT and app
    /// logs, DynamoDB capacity logs in the CloudWatch export layout, a daily S3 inventory, S3 access
    /// logs, the S3 prefix map) and the expected attribution in expected.json; and the app's cost
    /// estimates for the month under DIR/estimates (estimates.csv, for `curflow estimates import`,
    /// and resource-types.toml, the mapping to reconcile them with; two resource types are
    /// deliberately mispriced). Estimates include tenants' shares of shared cost, which only the
    /// evidence can split, hence they come with it.
    #[arg(long)]
    evidence: bool,
    /// Write a finalised bill: every row carries this bill/InvoiceId (default: blank, as AWS writes
    /// it until the month's invoice is issued).
    #[arg(long, value_name = "ID")]
    invoice_id: Option<String>,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let profile = match args.profile {
        OutProfile::Demo => Profile::Demo,
        OutProfile::Saas => Profile::Saas,
    };
    let options = GenerateOptions {
        profile,
        rows: args.rows,
        out_dir: args.out,
        format: match args.format {
            OutFormat::Parquet => Format::LegacyParquet,
            OutFormat::Csv => Format::LegacyCsv,
            OutFormat::Cur2 => Format::Cur2Parquet,
            OutFormat::Cur2Csv => Format::Cur2Csv,
            OutFormat::Focus10 => Format::Focus10,
            OutFormat::Focus12 => Format::Focus12,
            OutFormat::Focus12Csv => Format::Focus12Csv,
        },
        seed: args.seed,
        tenants: args.tenants.unwrap_or_else(|| profile.default_tenants()),
        files: args.files,
        year: args.period.year(),
        month: args.period.month(),
        tag_key: args.tag_key,
        gzip_csv: !args.no_gzip,
        evidence: args.evidence,
        invoice_id: args.invoice_id,
        ..GenerateOptions::default()
    };
    let started = std::time::Instant::now();
    let generated = generate(&options).map_err(|e| Failure { code: 3, error: e.into() })?;
    let t = &generated.expected.totals;
    crate::emit(&format!(
        "Generated {} rows in {} file(s) in {:.1} s\n",
        generated.expected.rows,
        generated.data_files.len(),
        started.elapsed().as_secs_f64()
    ))?;
    crate::emit(&format!("  manifest   {}\n", generated.manifest_path.display()))?;
    crate::emit(&format!("  expected   {}\n", generated.expected_path.display()))?;
    crate::emit(&format!("  unblended  {}   amortized {}\n", t.unblended_cost, t.amortized_cost))?;
    if let Some(est) = &generated.estimates {
        crate::emit(&format!(
            "  estimates  {} ({} records; mapping {}; mispriced on purpose: {})\n",
            est.path.display(),
            est.records,
            est.mapping_path.display(),
            curflow_fixtures::MISPRICED_RESOURCE_TYPES.join(", ")
        ))?;
    }
    match &generated.evidence {
        Some(ev) => crate::emit(&format!(
            "  evidence   {}\nNext: curflow process {} --evidence {} --s3-prefixes {}\n",
            ev.dir.display(),
            generated.manifest_path.display(),
            ev.dir.display(),
            ev.prefix_map.display()
        ))?,
        None => crate::emit(&format!("Next: curflow process {}\n", generated.manifest_path.display()))?,
    }
    Ok(0)
}
