//! `curflow periods`: what the store holds, one line per billing period.

use std::path::PathBuf;

use curflow::{Config, store};

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// SQLite store file. Default from config: curflow.sqlite.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

pub fn run(args: Args, mut config: Config) -> Result<u8, Failure> {
    if let Some(s) = args.store {
        config.store = s;
    }
    let store = store::open(&config.store, &config.aws())?;
    crate::emit(&format!(
        "{:<8}  {:<40}  {:<20}  {:>12}  source\n",
        "period", "version", "version time (UTC)", "rows read"
    ))?;
    for r in store.periods()? {
        crate::emit(&format!(
            "{:<8}  {:<40}  {:<20}  {:>12}  {}\n",
            r.period.to_string(),
            r.version.id,
            r.version.time.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.rows_read,
            r.source
        ))?;
    }
    Ok(0)
}
