//! Forecast backtest on a synthetic daily history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Datelike, Days, NaiveDate, Weekday};
use curflow_reconcile::{DailySeries, ForecastConfig, backtest, money::round};
use rust_decimal::Decimal;

/// 14 months of daily cost from 2025-09-01: a base of 40.00 growing 1 % a month, weekends at 60 %,
/// ±10 % deterministic noise, and a 5× spike on the 15th of every third month.
fn history() -> DailySeries {
    let start = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
    let mut state: u64 = 7;
    let mut out = DailySeries::new();
    for i in 0..(14 * 31) {
        let day = start + Days::new(i);
        if day >= NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() {
            break;
        }
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let noise = Decimal::new(i64::try_from((state >> 33) % 2001).unwrap() - 1000, 4); // −0.1000 … +0.1000
        let months = Decimal::from(i) / Decimal::from(30);
        let mut cost = Decimal::from(40) * (Decimal::ONE + Decimal::new(1, 2) * months) * (Decimal::ONE + noise);
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            cost *= Decimal::new(6, 1);
        }
        if day.day() == 15 && day.month().is_multiple_of(3) {
            cost *= Decimal::from(5);
        }
        out.insert(day, round(cost, 6));
    }
    out
}

#[test]
fn backtest_reports_mape() {
    let h = history();
    let bt = backtest(&h, 10, &ForecastConfig::default()).unwrap();
    // Complete months: 2025-09 … 2026-10 = 14.
    assert_eq!(bt.months.len(), 14);
    assert_eq!(bt.zero_actual_months, 0);
    let mape = bt.mape.unwrap();
    println!(
        "forecast backtest (first 10 days, 7-day median run rate): MAPE {mape} %, bias {} %, interval coverage {} %",
        bt.bias_pct.unwrap(),
        bt.interval_coverage_pct.unwrap()
    );
    for m in &bt.months {
        println!(
            "  {} forecast {} [{} … {}] actual {} error {:?} %",
            m.month, m.forecast, m.forecast_low, m.forecast_high, m.actual, m.pct_error
        );
    }
    // The median ignores the spikes and the noise averages out; weekly seasonality is the main error.
    assert!(mape < Decimal::from(8), "MAPE {mape}");
    // The interval accounts for the run rate's own uncertainty; without that term it covered 4 of 14 months.
    assert!(bt.interval_coverage_pct.unwrap() > Decimal::from(60));
    // MAPE is the mean of the absolute month errors.
    let mean: Decimal = bt.months.iter().map(|m| m.pct_error.unwrap().abs()).sum::<Decimal>() / Decimal::from(14);
    assert!((mean - mape).abs() < Decimal::new(1, 4));
}

#[test]
fn a_flat_history_is_forecast_exactly() {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let h: DailySeries = (0..365).map(|i| (start + Days::new(i), Decimal::new(1250, 2))).collect();
    let bt = backtest(&h, 7, &ForecastConfig::default()).unwrap();
    assert_eq!(bt.months.len(), 12);
    assert_eq!(bt.mape, Some(Decimal::ZERO));
    assert_eq!(bt.interval_coverage_pct, Some(Decimal::ONE_HUNDRED));
    // January has no earlier history: its 7-day window is Jan 1–7 and still exact.
    assert_eq!(bt.months[0].forecast, Decimal::new(1250 * 31, 2));
}
