//! The error of the computations (comparison, forecasts, alerts, exports).
//!
//! Parsing errors have their own types next to their parsers ([`crate::EstimateErrors`],
//! [`crate::MappingError`]) because they carry per-field or per-entry detail for the user. What is left here
//! is what a caller can get wrong when handing over records that did not come through a parser, and the one
//! arithmetic failure: `rust_decimal` panics on overflow, so every sum and product here is checked and an
//! absurd input (say 10^27 requests) fails loudly instead of aborting the process.

/// Why a computation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A sum, product or quotient does not fit a `Decimal` (about 7.9 × 10^28).
    #[error("arithmetic overflow computing {what}")]
    Overflow { what: String },
    /// An actual cost line is in another currency than the comparison's.
    #[error("actual cost for {accountant_id} on {day} is in {found}, expected {expected} (one currency per run)")]
    Currency { accountant_id: String, day: String, found: String, expected: String },
    /// An input record or parameter is outside its documented domain.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Exact money arithmetic or rounding failed (for example largest-remainder rounding to more than
    /// 28 places, or a total with no exact `Decimal`).
    #[error(transparent)]
    Money(#[from] curflow_money::MoneyError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
