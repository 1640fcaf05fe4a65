//! Volume vs rate: why an actual differs from its estimate, when quantities are known.
//!
//! With estimated quantity `Qe` and cost `E`, actual quantity `Qa` and cost `A`:
//!
//! * estimated unit cost `Pe = E / Qe`, actual effective unit cost `Pa = A / Qa`;
//! * **volume effect** `= (Qa − Qe) × Pe`: what the difference in usage alone explains (tenant behaviour,
//!   or the app counting usage wrongly);
//! * **rate effect** `= (Pa − Pe) × Qa`: what the difference in price explains (the app's unit cost is off).
//!
//! Algebraically `volume + rate = A − E`. In decimal arithmetic `Pe` is a rounded quotient, so the volume
//! effect is computed as `(Qa − Qe) × E / Qe` rounded half away from zero to `effect_dp` places
//! ([`EFFECT_DP`] by default), and the rate effect is **defined** as `variance − volume effect`. The identity
//! `volume_effect + rate_effect == variance` therefore holds exactly, and the rate effect equals
//! `(Pa − Pe) × Qa` up to the volume effect's rounding (≤ half a unit in the last place).
//!
//! The effect with the larger magnitude *dominates*; equal magnitudes (including both 0) dominate neither.
//! No decomposition exists without an estimated quantity (`Qe ≤ 0`) or with an unknown actual quantity;
//! `Pa` is `None` when `Qa = 0` (the whole actual is then rate effect: cost without usage).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::money::{div, mul, round, sub};

/// Default decimal places of the volume effect (the money scale of the curflow store).
pub const EFFECT_DP: u32 = 12;

/// Which effect explains more of a variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dominant {
    /// `|volume_effect| > |rate_effect|`: usage differs from what was estimated.
    Volume,
    /// `|rate_effect| > |volume_effect|`: the unit cost differs from what was estimated.
    Rate,
    /// Equal magnitudes (e.g. no variance at all).
    Neither,
}

/// A variance split into volume and rate effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decomposition {
    /// `Pe = E / Qe`, unrounded (28 significant digits).
    pub estimated_unit_cost: Decimal,
    /// `Pa = A / Qa`, unrounded; `None` when `Qa = 0`.
    pub actual_unit_cost: Option<Decimal>,
    /// `(Qa − Qe) × E / Qe`, rounded to `effect_dp` places.
    pub volume_effect: Decimal,
    /// `(A − E) − volume_effect`.
    pub rate_effect: Decimal,
    /// The larger effect.
    pub dominant: Dominant,
}

/// Splits `actual − estimated` into volume and rate effects (see the module docs); `None` when
/// `estimated_quantity ≤ 0`.
pub fn decompose(
    estimated: Decimal,
    estimated_quantity: Decimal,
    actual: Decimal,
    actual_quantity: Decimal,
    effect_dp: u32,
) -> Result<Option<Decomposition>> {
    if estimated_quantity <= Decimal::ZERO {
        return Ok(None);
    }
    let variance = sub(actual, estimated)?;
    let estimated_unit_cost = div(estimated, estimated_quantity)?;
    let actual_unit_cost = if actual_quantity.is_zero() { None } else { Some(div(actual, actual_quantity)?) };
    let volume_effect =
        round(div(mul(sub(actual_quantity, estimated_quantity)?, estimated)?, estimated_quantity)?, effect_dp);
    let rate_effect = sub(variance, volume_effect)?;
    let dominant = match volume_effect.abs().cmp(&rate_effect.abs()) {
        std::cmp::Ordering::Greater => Dominant::Volume,
        std::cmp::Ordering::Less => Dominant::Rate,
        std::cmp::Ordering::Equal => Dominant::Neither,
    };
    Ok(Some(Decomposition { estimated_unit_cost, actual_unit_cost, volume_effect, rate_effect, dominant }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn dec(e: &str, qe: &str, a: &str, qa: &str) -> Decomposition {
        decompose(d(e), d(qe), d(a), d(qa), EFFECT_DP).unwrap().unwrap()
    }

    #[test]
    fn rate_dominated() {
        // Estimated 1000 units at 0.10 = 100; actual 1000 units cost 130 (Pa 0.13).
        // volume = 0 × 0.10 = 0; rate = (0.13 − 0.10) × 1000 = 30.
        let x = dec("100", "1000", "130", "1000");
        assert_eq!((x.volume_effect, x.rate_effect, x.dominant), (d("0"), d("30"), Dominant::Rate));
        assert_eq!(x.estimated_unit_cost, d("0.1"));
        assert_eq!(x.actual_unit_cost, Some(d("0.13")));
    }

    #[test]
    fn volume_dominated() {
        // Estimated 1000 units at 0.10 = 100; actual 1400 units at 0.101 = 141.40.
        // volume = 400 × 0.10 = 40; rate = (0.101 − 0.10) × 1400 = 1.40; sum 41.40 = variance.
        let x = dec("100", "1000", "141.40", "1400");
        assert_eq!((x.volume_effect, x.rate_effect, x.dominant), (d("40"), d("1.40"), Dominant::Volume));
        assert_eq!(x.volume_effect + x.rate_effect, d("41.40"));
    }

    #[test]
    fn identity_is_exact_with_inexact_unit_costs() {
        // Pe = 10 / 3 is not a finite decimal; the identity still holds exactly.
        let x = dec("10", "3", "11", "4");
        assert_eq!(x.volume_effect, d("3.333333333333"));
        assert_eq!(x.volume_effect + x.rate_effect, d("1"));
        assert_eq!(x.dominant, Dominant::Volume);
    }

    #[test]
    fn edges() {
        assert_eq!(decompose(d("0"), d("0"), d("5"), d("10"), EFFECT_DP).unwrap(), None);
        // No usage at all but a cost: all rate, no Pa.
        let x = dec("10", "100", "4", "0");
        assert_eq!((x.volume_effect, x.rate_effect, x.actual_unit_cost), (d("-10"), d("4"), None));
        // Actual 0 with no usage: all volume.
        let x = dec("10", "100", "0", "0");
        assert_eq!((x.volume_effect, x.rate_effect, x.dominant), (d("-10"), d("0"), Dominant::Volume));
        let x = dec("10", "100", "10", "100");
        assert_eq!(x.dominant, Dominant::Neither);
    }
}
