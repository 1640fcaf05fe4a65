//! curflow's money: one place for how amounts are represented, read, added and rounded.
//!
//! Money must be exact to the smallest unit, so every crate of the workspace reads, converts and
//! rounds amounts the same way. Until this crate existed there were three money modules (the
//! pipeline's, attribution's and reconcile's) with three text parsers that disagreed at the edges.
//!
//! * **Representation.** The scan keeps amounts as scaled integers (`i128`, Arrow's `Decimal128`):
//!   money at [`MONEY_SCALE`] = 12 decimal places, usage quantities at [`QUANTITY_SCALE`] = 10. The
//!   rest of the program uses [`rust_decimal::Decimal`]; [`scaled_to_decimal`] and [`Units`] convert
//!   between the two, exactly or not at all.
//! * **Reading.** [`f64_to_scaled`] / [`f64s_to_scaled`] recover the decimal a Parquet `double` was
//!   written from (see [`scaled`]); [`parse_scaled`] and [`parse_decimal`] are the two entry points
//!   of the one text parser (see [`parse`]), which never goes through `f64`.
//! * **Arithmetic.** `rust_decimal`'s `+` and `*` silently round once a result needs more than 28
//!   significant digits. [`exact_add`], [`exact_sub`], [`exact_mul`] and [`exact_sum`] fail instead.
//! * **Rounding for people.** [`ROUNDING`] (half away from zero), [`round`], and the
//!   largest-remainder [`round_preserving_total`], which keeps rounded parts summing to the rounded
//!   total.
//! * **Writing.** [`decimal_text`], the shortest exact text of a `Decimal`.
//!
//! Every failure is a [`MoneyError`].

mod error;
mod exact;
pub mod parse;
mod round;
pub mod scaled;
mod text;

pub use error::MoneyError;
pub use exact::{ExactSum, Units, checked_pow10, decimal_from_parts, exact_add, exact_mul, exact_sub, exact_sum};
pub use parse::{parse_decimal, parse_scaled};
pub use round::{ROUNDING, round, round_preserving_total};
pub use scaled::{f64_to_scaled, f64s_to_scaled, pow10_i128, scaled_to_decimal};
pub use text::{decimal_text, push_decimal_text};

/// Decimal places kept for money (costs, fees, credits) by the scan and the store. Real CUR costs
/// carry up to 11 (measured on the public sample: `lineItem/UnblendedCost` has 11), so 12 leaves a
/// digit of headroom.
pub const MONEY_SCALE: u32 = 12;
/// Decimal places kept for usage quantities: quantities such as S3 byte-hours reach 1e15+ per
/// line, and a month of them must still fit in `Decimal`'s 96-bit mantissa.
pub const QUANTITY_SCALE: u32 = 10;
/// Arrow precision used for every scaled value (the maximum for `Decimal128`).
pub const DECIMAL_PRECISION: u8 = 38;
/// The largest scale a [`rust_decimal::Decimal`] can carry.
pub const MAX_SCALE: u32 = rust_decimal::Decimal::MAX_SCALE;

/// Decimal literals for the workspace's tests, so each test module does not carry its own copy.
#[doc(hidden)]
pub mod testing {
    use std::str::FromStr;

    use rust_decimal::Decimal;

    /// `text` as a decimal, read by `rust_decimal` itself (not by [`crate::parse_decimal`], so a
    /// test of the parser does not check it against itself). Panics on anything else: for test
    /// literals only.
    #[allow(clippy::panic, reason = "test literals: a typo should fail the test at once")]
    pub fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
    }
}
