//! Exact money and quantity representation: re-exports [`curflow_money`], the workspace's one
//! money module (scale constants, the text parser, `f64`/scaled/`Decimal` conversion, exact
//! arithmetic, rounding). Kept so `crate::money::…` paths keep working.

pub use curflow_money::*;

/// The scan's former name for [`MoneyError`], the error of [`parse_scaled`].
pub type ParseDecimalError = MoneyError;
