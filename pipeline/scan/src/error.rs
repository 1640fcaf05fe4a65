//! Errors of discovery and scanning, each naming the file (and column, line, billing period) and
//! what was expected. [`Error::class`] derives the [`ErrorClass`] from the variant.

use std::path::PathBuf;

use curflow_aws::AwsError;
use curflow_model::{ErrorClass, ModelError};
use datafusion::error::DataFusionError;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: file is empty (0 bytes); expected a CUR data file (Parquet or CSV)", path.display())]
    EmptyFile { path: PathBuf },

    #[error("{}: not a readable Parquet file ({reason}); the file may be truncated or still being written", path.display())]
    BadParquet { path: PathBuf, reason: String },

    #[error("{}: {reason}", path.display())]
    BadCsv { path: PathBuf, reason: String },

    #[error("{}: unsupported input: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },

    #[error("{}: missing required column `{column}` (needed for {purpose})", path.display())]
    MissingColumn { path: PathBuf, column: String, purpose: &'static str },

    #[error("{}: column `{column}` has type {found}, expected {expected}", path.display())]
    WrongColumnType { path: PathBuf, column: String, found: String, expected: &'static str },

    #[error("{}{}: column `{column}`: value {value:?} is not {expected}",
        path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    BadValue { path: PathBuf, line: Option<u64>, column: String, value: String, expected: String },

    #[error("{}: column `{column}`: usage start {value} is outside billing period {period} (accepted: {from} to {to}, \
        the period and one month either side)", path.display())]
    UsageDateOutsidePeriod {
        path: PathBuf,
        column: String,
        value: String,
        period: String,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },

    #[error("{}: the sum of `{measure}` over one group of rows exceeds 28 significant digits, the most an exact \
        total holds; the file's amounts are implausibly large", path.display())]
    SumOutOfRange { path: PathBuf, measure: &'static str },

    #[error("{}: billing period start {value} is not the first day of a month 00:00 UTC", path.display())]
    BadBillingPeriod { path: PathBuf, value: String },

    #[error("{}: {reason}", path.display())]
    BadManifest { path: PathBuf, reason: String },

    #[error("{}: data file key `{key}` {reason}; keys are relative to the bucket root and may not leave the delivery",
        manifest.display())]
    BadManifestKey { manifest: PathBuf, key: String, reason: String },

    #[error("{}: references `{key}`, which does not exist (looked for it under {})",
        manifest.display(), searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    MissingManifestFile { manifest: PathBuf, key: String, searched: Vec<PathBuf> },

    #[error("{}", mixed_periods_message(first, first_period, second, second_period))]
    MixedBillingPeriods { first: PathBuf, first_period: String, second: PathBuf, second_period: String },

    #[error("{}: manifest says billing period {manifest_period} but the data holds {data_period}", path.display())]
    ManifestPeriodMismatch { path: PathBuf, manifest_period: String, data_period: String },

    #[error("{}: no CUR data found (expected a *Manifest.json, .parquet, .csv, .csv.gz or .csv.zip file)", path.display())]
    NothingFound { path: PathBuf },

    #[error("{}: not a zip archive holding one CSV file: {reason}", path.display())]
    BadZip { path: PathBuf, reason: String },

    /// A failure while scanning the CSV extracted from a zip archive, which is named here.
    #[error("{} (its entry `{entry}`): {source}", path.display())]
    InZip { path: PathBuf, entry: String, source: Box<Error> },

    #[error("invalid argument: {0}")]
    Argument(String),

    #[error("{}: query engine: {source}", path.display())]
    Engine { path: PathBuf, source: Box<DataFusionError> },

    #[error(transparent)]
    Aws(#[from] AwsError),

    #[error(transparent)]
    Model(#[from] ModelError),

    #[error("internal error (a bug in curflow; nothing was written): {0}")]
    Internal(String),
}

impl Error {
    /// How a caller should react (design.md "Errors").
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } => ErrorClass::External,
            Error::Engine { source, .. } => match source.find_root() {
                DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorClass::External,
                DataFusionError::ResourcesExhausted(_) => ErrorClass::External,
                DataFusionError::Internal(_) => ErrorClass::Internal,
                _ => ErrorClass::User,
            },
            Error::Aws(e) => e.class(),
            Error::Model(e) => e.class(),
            Error::Internal(_) => ErrorClass::Internal,
            Error::InZip { source, .. } => source.class(),
            _ => ErrorClass::User,
        }
    }

    /// Whether the query engine ran out of its memory pool (DataFusion's "resources exhausted",
    /// however deep in the error's context chain).
    pub fn is_memory_exhausted(&self) -> bool {
        matches!(self, Error::Engine { source, .. } if matches!(source.find_root(), DataFusionError::ResourcesExhausted(_)))
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// A bad value found while evaluating a row inside DataFusion. The UDFs raise it as
/// `DataFusionError::External`; the scanner turns it into [`Error::BadValue`] with the file and,
/// for CSV, the line number.
#[derive(Debug, Clone, thiserror::Error)]
#[error("column `{column}`: value {value:?} is not {expected}")]
pub struct BadValueInRow {
    pub column: String,
    pub value: String,
    pub expected: String,
}

/// One file holding two periods reads differently from two files of different periods.
fn mixed_periods_message(
    first: &std::path::Path,
    first_period: &str,
    second: &std::path::Path,
    second_period: &str,
) -> String {
    if first == second {
        format!(
            "{} holds rows of two billing periods ({first_period} and {second_period}); curflow stores one period \
             per delivery: split the file by billing period (or give the provider's per-period export)",
            first.display()
        )
    } else {
        format!(
            "files of different billing periods were given as one delivery: {} holds {first_period}, {} holds \
             {second_period}; pass each month separately (or point at a manifest or directory)",
            first.display(),
            second.display()
        )
    }
}
