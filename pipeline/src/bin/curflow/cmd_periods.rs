//! `curflow periods`: what the store holds, one row per billing period.

use curflow::output::{Meta, periods_output, render};
use curflow::{Config, store};

use crate::{Failure, FormatArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    format: FormatArg,
}

pub async fn run(args: Args, config: Config) -> Result<u8, Failure> {
    let store = store::open_existing(&config.store, &config.aws()).await?;
    let (rows, table) = periods_output(&store.periods().await?)?;
    crate::emit(&render(args.format.format(), &rows, &Meta::new(), || Ok(table))?)?;
    Ok(0)
}
