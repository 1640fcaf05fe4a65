//! Property tests of the parser and of largest-remainder rounding (moved from curflow-reconcile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use curflow_money::{MONEY_SCALE, f64_to_scaled, parse_decimal, parse_scaled, round, round_preserving_total};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Money-like decimals: up to ±10^9 with 0–10 decimal places.
fn money() -> impl Strategy<Value = Decimal> {
    (-1_000_000_000_000i64..1_000_000_000_000i64, 0u32..=10).prop_map(|(m, s)| Decimal::new(m, s))
}

proptest! {
    // No failure-persistence file (integration tests have no lib.rs next to them); 1000 cases each.
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rounded_parts_sum_to_the_rounded_total(parts in prop::collection::vec(money(), 0..40)) {
        let rounded = round_preserving_total(&parts, 2).unwrap();
        let total: Decimal = parts.iter().copied().sum();
        prop_assert_eq!(rounded.iter().copied().sum::<Decimal>(), round(total, 2));
        for (p, r) in parts.iter().zip(&rounded) {
            prop_assert!((*p - *r).abs() < Decimal::new(1, 2), "{} → {}", p, r);
            prop_assert!(r.scale() <= 2);
        }
    }

    #[test]
    fn decimals_round_trip_through_text(x in money()) {
        prop_assert_eq!(parse_decimal(&x.to_string()), Ok(x));
        prop_assert_eq!(parse_decimal(&format!("{}e-3", x)), Ok(x / Decimal::from(1000)));
    }

    /// The two entry points are one parser: the scaled one is the Decimal one at the scale.
    #[test]
    fn scaled_and_decimal_entry_points_agree(x in money(), e in -12i32..=12) {
        let text = format!("{x}e{e}");
        let d = parse_decimal(&text).unwrap();
        let rounded = d.round_dp_with_strategy(MONEY_SCALE, rust_decimal::RoundingStrategy::MidpointNearestEven);
        let expected = rounded.mantissa() * 10i128.pow(MONEY_SCALE - rounded.scale());
        prop_assert_eq!(parse_scaled(&text, MONEY_SCALE), Ok(expected));
    }

    /// A double printed with its shortest round-trip text converts to that text's scaled value.
    #[test]
    fn doubles_convert_like_their_text(m in -999_999_999_999_999i64..999_999_999_999_999, s in 0u32..=12) {
        let v = m as f64 / 10f64.powi(s as i32);
        let text = format!("{v}");
        if text.replace(['-', '.'], "").trim_start_matches('0').len() <= 15 {
            prop_assert_eq!(f64_to_scaled(v, MONEY_SCALE), parse_scaled(&text, MONEY_SCALE).ok());
        }
    }
}
