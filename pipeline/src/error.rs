//! One error type for the library, classified so callers (CLI, Lambda) can act on it.
//!
//! Every variant says what failed, where (file, column, line, billing period) and what was
//! expected. [`Error::class`] maps a variant to [`ErrorClass`] (design.md "Errors").

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// How a caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input (file, manifest, argument, config). Do not retry; report.
    User,
    /// The environment failed (I/O, a locked or unreachable store). Retry with backoff.
    External,
    /// A broken invariant: a bug in curflow. Fail loudly; nothing was written.
    Internal,
}

/// Result alias used across the crate.
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

    #[error("{}: usage evidence: {reason}", path.display())]
    Evidence { path: PathBuf, reason: String },

    #[error("{}: unsupported input: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },

    #[error("{}: missing required column `{column}` (needed for {purpose})", path.display())]
    MissingColumn { path: PathBuf, column: String, purpose: &'static str },

    #[error("{}: column `{column}` has type {found}, expected {expected}", path.display())]
    WrongColumnType { path: PathBuf, column: String, found: String, expected: &'static str },

    #[error("{}{}: column `{column}`: value {value:?} is not {expected}",
        path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    BadValue { path: PathBuf, line: Option<u64>, column: String, value: String, expected: String },

    #[error("{}: billing period start {value} is not the first day of a month 00:00 UTC", path.display())]
    BadBillingPeriod { path: PathBuf, value: String },

    #[error("{}: {reason}", path.display())]
    BadManifest { path: PathBuf, reason: String },

    #[error("{}: references `{key}`, which does not exist (looked for it under {})",
        manifest.display(), searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    MissingManifestFile { manifest: PathBuf, key: String, searched: Vec<PathBuf> },

    #[error("files of different billing periods were given as one delivery: {} holds {first_period}, {} holds {second_period}; pass each month separately (or point at a manifest or directory)",
        first.display(), second.display())]
    MixedBillingPeriods { first: PathBuf, first_period: String, second: PathBuf, second_period: String },

    #[error("{}: manifest says billing period {manifest_period} but the data holds {data_period}", path.display())]
    ManifestPeriodMismatch { path: PathBuf, manifest_period: String, data_period: String },

    #[error("{}: no CUR data found (expected a *Manifest.json, .parquet, .csv or .csv.gz file)", path.display())]
    NothingFound { path: PathBuf },

    #[error("invalid argument: {0}")]
    Argument(String),

    #[error("configuration {}: {reason}", source_name)]
    Config { source_name: String, reason: String },

    /// A setting of [`crate::Config`] (file, environment or flag).
    #[error(transparent)]
    Settings(#[from] crate::config::ConfigError),

    #[error("store {}: {reason}", path.display())]
    Store { path: PathBuf, reason: String, retryable: bool },

    #[error("{}: query engine: {source}", path.display())]
    Engine { path: PathBuf, source: Box<DataFusionError> },

    #[error("AWS {service} {operation} on {resource}: {reason}")]
    Aws { service: &'static str, operation: String, resource: String, reason: String, retryable: bool },

    #[error("alert webhook {url}: {reason}")]
    Webhook { url: String, reason: String },

    #[error("internal error (a bug in curflow; nothing was written): {0}")]
    Internal(String),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } => ErrorClass::External,
            Error::Store { retryable, .. } => {
                if *retryable {
                    ErrorClass::External
                } else {
                    ErrorClass::User
                }
            }
            Error::Engine { source, .. } => match source.find_root() {
                DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorClass::External,
                DataFusionError::ResourcesExhausted(_) => ErrorClass::External,
                DataFusionError::Internal(_) => ErrorClass::Internal,
                _ => ErrorClass::User,
            },
            Error::Aws { retryable: true, .. } | Error::Webhook { .. } => ErrorClass::External,
            Error::Internal(_) => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
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
