//! Errors of the stores. Each names the store (SQLite path or `dynamodb://TABLE`); causes are kept
//! as sources. [`Error::class`] derives the [`ErrorClass`] from the variant.

use std::path::PathBuf;

use curflow_aws::AwsError;
use curflow_model::{ErrorClass, ModelError};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused or failed a statement (busy/locked is retryable; the rest is not).
    #[error("store {}: {source}", path.display())]
    Sqlite { path: PathBuf, source: rusqlite::Error, retryable: bool },

    /// The store is in a state curflow cannot use (newer schema, unreadable value, a race lost too
    /// often).
    #[error("store {}: {reason}", path.display())]
    Store { path: PathBuf, reason: String, retryable: bool },

    /// The store cannot be used as deployed (a missing table, a table of another layout): an
    /// environment error an operator must fix, never "bad input".
    #[error("store {store}: {reason}")]
    Unusable { store: String, reason: String },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A read command named a SQLite store that does not exist (a typo, the wrong directory, or
    /// nothing processed yet). Nothing is created: only `process`, `backfill`, `estimates import`
    /// and `budgets set` create a store. An environment problem, like a missing table.
    #[error(
        "store {} does not exist; nothing was created (only `process`, `backfill`, `estimates import` and `budgets set` create a store)",
        path.display()
    )]
    Missing { path: PathBuf },

    /// A version older than the one being written switched the period while its items were
    /// written from lines that cannot be handed over again ([`crate::LineChunks`]). This run's
    /// items were deleted and nothing of it is current; reading the delivery again stores it
    /// (the processor does so once by itself). Retryable.
    #[error(
        "store {store}: period {period} was switched to an older version while this run wrote its items; \
         nothing of this run was kept, read the delivery again"
    )]
    Superseded { store: String, period: String },

    #[error(transparent)]
    Aws(#[from] AwsError),

    #[error(transparent)]
    Model(#[from] ModelError),

    #[error("invalid argument: {0}")]
    Argument(String),

    #[error("internal error (a bug in curflow; nothing was written): {0}")]
    Internal(String),

    /// The lines handed to a write could not be made (their producer failed; it keeps the cause
    /// and reports it): the write was rolled back.
    #[error("the lines to write could not be made ({0}); nothing was written")]
    LinesFailed(String),
}

impl Error {
    /// How a caller should react (design.md "Errors").
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } | Error::Unusable { .. } | Error::Missing { .. } | Error::Superseded { .. } => {
                ErrorClass::External
            }
            Error::Sqlite { retryable, .. } | Error::Store { retryable, .. } => {
                if *retryable {
                    ErrorClass::External
                } else {
                    ErrorClass::User
                }
            }
            Error::Aws(e) => e.class(),
            Error::Model(e) => e.class(),
            Error::Argument(_) => ErrorClass::User,
            Error::Internal(_) | Error::LinesFailed(_) => ErrorClass::Internal,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
