//! Exact money and quantity arithmetic: re-exports [`curflow_money`], the workspace's one money
//! module.
//!
//! Amounts are split in integer minor units at a recorded scale ([`Units`]); the pipeline hands
//! them over as `Decimal` at [`MONEY_SCALE`] (what the store keeps), so a conversion either is exact
//! or fails. [`exact_add`] and [`exact_mul`] fail rather than round (`rust_decimal`'s own operators
//! round silently past 28 digits), and [`parse_exact`] reads numbers from logs (`12.34`, `1e-3`,
//! `2600`) straight into a `Decimal` without touching `f64`.

pub(crate) use curflow_money::checked_pow10 as pow10;
pub use curflow_money::{
    MAX_SCALE, MONEY_SCALE, MoneyError, Units, exact_add, exact_mul, exact_sub, exact_sum, parse_decimal as parse_exact,
};
