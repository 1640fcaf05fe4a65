//! How callers react to an error ([`ErrorClass`], shared by every curflow crate) and the errors of
//! the cost model itself.

/// How a caller should react to an error (design.md "Errors"). Every crate's error enum derives
/// its class from the variant, so the CLI's exit code and the Lambda's retry decision never parse
/// a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input (file, manifest, argument, config, a value too large to sum). Do not retry; report.
    User,
    /// The environment failed (I/O, permissions, credentials, throttling, a locked or unreachable
    /// store). Retry with backoff; an operator may have to act.
    External,
    /// A broken invariant: a bug in curflow. Fail loudly; nothing was written.
    Internal,
}

/// Errors of exact cost arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A sum left `Decimal`'s 28 significant digits. Caused by the data (absurd amounts), so it is
    /// bad input, not a bug.
    #[error("{what} does not fit 28 significant digits; the input holds amounts too large to sum exactly")]
    Overflow { what: String },
}

impl ModelError {
    /// Every model error is caused by the data.
    pub fn class(&self) -> ErrorClass {
        match self {
            ModelError::Overflow { .. } => ErrorClass::User,
        }
    }
}
