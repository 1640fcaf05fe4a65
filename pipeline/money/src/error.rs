//! The one error type of money conversion, parsing and arithmetic.

use rust_decimal::Decimal;

use crate::MAX_SCALE;

/// Why an amount could not be read, converted or computed exactly.
///
/// Nothing in this crate rounds behind the caller's back (except where a function says it rounds:
/// [`crate::parse_scaled`] beyond its scale, [`crate::round`]); when exactness is impossible, the
/// caller gets one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// A scale beyond what a `Decimal` can carry (28).
    #[error("scale {scale} exceeds the maximum {MAX_SCALE}")]
    ScaleTooLarge { scale: u32 },
    /// Converting to `scale` decimal places would drop non-zero digits.
    #[error("{value} has more than {scale} decimal places; converting would lose digits")]
    Inexact { value: Decimal, scale: u32 },
    /// A result (sum, product, conversion) does not fit the exact representation.
    #[error("{what} does not fit the exact representation")]
    Overflow { what: String },
    /// Text that is not a decimal number (`abc`, `1,5`, `NaN`, `--1`, `1e`). `text` is the first
    /// 64 characters, enough to find the value without copying a whole malformed line.
    #[error("not a decimal number: {text:?}")]
    NotANumber { text: String },
    /// A number, but one that cannot be held exactly: beyond 38 digits at the requested scale
    /// ([`crate::parse_scaled`]), or more significant digits or a larger magnitude than a
    /// `Decimal` holds without rounding ([`crate::parse_decimal`]).
    #[error("{text:?} is out of range: {limit}")]
    OutOfRange { text: String, limit: &'static str },
}

impl MoneyError {
    /// [`MoneyError::NotANumber`] for `text`. Cold: callers on the scan's hot path only pay for the
    /// allocation when a value is malformed (and the scan then stops).
    #[cold]
    pub(crate) fn not_a_number(text: &str) -> Self {
        Self::NotANumber { text: excerpt(text) }
    }

    /// [`MoneyError::OutOfRange`] for `text`; see [`MoneyError::not_a_number`].
    #[cold]
    pub(crate) fn out_of_range(text: &str, limit: &'static str) -> Self {
        Self::OutOfRange { text: excerpt(text), limit }
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}
