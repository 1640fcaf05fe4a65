//! `curflow config`: the configuration in effect, or the table of every setting.

use curflow::Config;

use crate::{Failure, emit};

#[derive(clap::Args)]
pub struct Args {
    /// Print the table of every setting (key, environment variable, type, default, meaning) as
    /// markdown, as in the README, instead of the configuration in effect.
    #[arg(long)]
    pub doc: bool,
}

/// The markdown table of the settings; needs no configuration.
pub fn doc() -> Result<u8, Failure> {
    emit(&curflow::config::markdown_table())?;
    Ok(0)
}

/// The configuration in effect (defaults, file, environment) as TOML; secrets are redacted.
pub fn run(config: &Config) -> Result<u8, Failure> {
    emit(&config.to_toml_redacted())?;
    Ok(0)
}
