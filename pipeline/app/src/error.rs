//! The application's error: the errors of the crates below it, kept whole as sources, plus what
//! only the application layer can get wrong (configuration, evidence files, the estimates file,
//! alert channels).
//!
//! [`Error::class`] maps a variant to [`ErrorClass`] (design.md "Errors"); for wrapped errors it is
//! the inner crate's own classification, so the CLI's exit code and the Lambda's retry decision
//! come from one place per concern.

use std::path::PathBuf;

pub use curflow_aws::{AwsError, AwsErrorKind};
pub use curflow_model::{ErrorClass, ModelError};
pub use curflow_scan::BadValueInRow;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovery or scanning of a CUR delivery failed (bad file, column, value, manifest, engine).
    #[error(transparent)]
    Scan(#[from] curflow_scan::Error),

    /// A store failed (SQLite, DynamoDB).
    #[error(transparent)]
    Store(#[from] curflow_store::Error),

    /// An AWS call of the application layer failed (SNS, CloudWatch Logs, S3 HEAD checks).
    #[error(transparent)]
    Aws(#[from] AwsError),

    /// Exact arithmetic left its range (caused by the data).
    #[error(transparent)]
    Model(#[from] ModelError),

    /// Reconciliation rejected its input (estimates, budgets, thresholds, an overflow).
    #[error("reconciliation: {0}")]
    Reconcile(#[source] curflow_reconcile::Error),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// The estimates file (CSV) is malformed.
    #[error("{}: {reason}", path.display())]
    BadCsv { path: PathBuf, reason: String },

    #[error("{}: usage evidence: {reason}", path.display())]
    Evidence { path: PathBuf, reason: String },

    /// A Parquet file read back as a curflow export is not one (wrong columns, bad values).
    #[error("{}: {reason}", path.display())]
    BadExport { path: PathBuf, reason: String },

    #[error("invalid argument: {0}")]
    Argument(String),

    #[error("configuration {}: {reason}", source_name)]
    Config { source_name: String, reason: String },

    /// A setting of [`crate::Config`] (file, environment or flag).
    #[error(transparent)]
    Settings(#[from] crate::config::ConfigError),

    /// Never holds the webhook's URL (a secret): `target` names the channel only.
    #[error("alert webhook {target}: {reason}")]
    Webhook { target: String, reason: String },

    /// The nightly run finished but some alerts could not be delivered (the run's other results
    /// are stored; undelivered alerts are retried on the next run). An environment error, so the
    /// Lambda returns it: Lambda retries, then the failure queue alarms.
    #[error("{failed} alert(s) could not be delivered; first: {first}")]
    AlertsUndelivered { failed: usize, first: String },

    #[error("internal error (a bug in curflow; nothing was written): {0}")]
    Internal(String),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Scan(e) => e.class(),
            Error::Store(e) => e.class(),
            Error::Aws(e) => e.class(),
            Error::Model(e) => e.class(),
            Error::Io { .. } | Error::Webhook { .. } | Error::AlertsUndelivered { .. } => ErrorClass::External,
            Error::Internal(_) => ErrorClass::Internal,
            Error::Reconcile(_)
            | Error::BadCsv { .. }
            | Error::BadExport { .. }
            | Error::Evidence { .. }
            | Error::Argument(_)
            | Error::Config { .. }
            | Error::Settings(_) => ErrorClass::User,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
