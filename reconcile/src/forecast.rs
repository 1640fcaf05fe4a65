//! Month-end forecasts of a tenant's cost, with an interval, and their backtest.
//!
//! **Method.** Given daily costs and `as_of`, the last *complete* UTC day that the data covers (CUR lags a
//! day or two, so this is a parameter, not the clock):
//!
//! * `mtd_actual` = Σ costs of the month's days up to `as_of`;
//! * `run_rate` = the **median** daily cost of the last `run_rate_days` (7) days ending at `as_of`. The
//!   window may reach into the previous month, and days without a record count as 0, but it never starts
//!   before the first day of the series (a new tenant has no history to borrow). A median ignores a single
//!   spike or credit day, which a mean would project over the rest of the month;
//! * `forecast` = `mtd_actual + remaining_days × run_rate`;
//! * the interval is `forecast ± k × σ × √(R + R² × π / (2n))` with `σ = 1.4826 × MAD` of the same window
//!   (a robust daily standard deviation), `R` remaining days, `n` window days and `k = 2` by default. Two
//!   errors add up: the `R` remaining days scatter around the run rate (variance `R σ²`), and the run rate
//!   itself is the median of only `n` days (variance of a median ≈ `π σ² / (2n)`, which the `R` days all
//!   share: `R² π σ² / (2n)`). The second term dominates after the first week, so leaving it out gives far
//!   too narrow intervals. Day-of-week patterns and trends are not modelled; the honest coverage is what
//!   [`backtest`] measures (`interval_coverage_pct`). With a flat window (MAD 0) the interval collapses to
//!   the point forecast.
//!
//! Forecast figures are rounded half away from zero to [`FORECAST_DP`] places (the square root is not exact).
//!
//! **Backtest.** For each calendar month that the series covers completely, forecast from its first `N`
//! days (everything before them is usable history) and compare with the month's actual total: absolute
//! percentage error `|forecast − actual| / |actual| × 100`, their mean (MAPE), the signed mean (bias) and
//! the share of months whose actual fell inside the interval. Months with an actual of 0 have no
//! percentage error and are counted apart.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actual::{ActualCost, DailySeries, Measure, daily_by_tenant};
use crate::error::{Error, Result};
use crate::money::{add, div, mul, pct, round, sub, sum, total_sum};
use crate::month::Month;
use crate::stats::{MAD_SCALE, mad, median, sqrt};

/// Decimal places of forecast figures.
pub const FORECAST_DP: u32 = 6;

/// π / 2, the variance factor of a sample median (to 28 digits).
const HALF_PI: Decimal = Decimal::from_parts(0x4349_1E5C, 0x808D_CFA0, 0x0513_550F, false, 27);

/// Decimal places of percentages in a backtest.
const PCT_DP: u32 = 4;

/// Settings of the forecast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Days in the run-rate window (default 7).
    pub run_rate_days: u32,
    /// Width of the interval in robust standard deviations of the remaining-days sum (default 2).
    pub interval_k: Decimal,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self { run_rate_days: 7, interval_k: Decimal::TWO }
    }
}

/// A month-end forecast (field names are CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// The tenant (whatever the caller passed; empty in backtests of anonymous series).
    pub accountant_id: String,
    pub month: Month,
    /// The currency of every amount: set by [`forecast_tenants`] (a tenant billed in two currencies
    /// has one forecast per currency, never a sum of both); empty from [`forecast_month`], whose
    /// series carries no currency.
    #[serde(default)]
    pub currency: String,
    /// The last complete day included.
    pub as_of: NaiveDate,
    /// Σ of the month's days up to `as_of`.
    pub mtd_actual: Decimal,
    /// Days of the month up to `as_of`.
    pub elapsed_days: u32,
    /// Days of the month after `as_of`.
    pub remaining_days: u32,
    /// Days in the run-rate window actually used (fewer than configured at the start of a series).
    pub window_days: u32,
    /// Median daily cost of the window.
    pub run_rate: Decimal,
    /// `1.4826 × MAD` of the window.
    pub daily_spread: Decimal,
    pub forecast: Decimal,
    pub forecast_low: Decimal,
    pub forecast_high: Decimal,
}

/// Forecasts `month`'s total from `daily` as of `as_of` (see the module docs).
///
/// `as_of` may be the day before the month starts (nothing known of the month yet); an `as_of` after the
/// month's last day is taken as the last day (nothing left to forecast). Earlier is an error.
pub fn forecast_month(
    accountant_id: &str,
    daily: &DailySeries,
    month: Month,
    as_of: NaiveDate,
    config: &ForecastConfig,
) -> Result<Forecast> {
    let before_start = month.first_day().pred_opt().unwrap_or(month.first_day());
    if as_of < before_start {
        return Err(Error::Invalid(format!("forecast of {month} as of {as_of}: the month has not started")));
    }
    if config.run_rate_days == 0 || config.interval_k.is_sign_negative() {
        return Err(Error::Invalid("run_rate_days must be ≥ 1 and interval_k ≥ 0".into()));
    }
    let as_of = as_of.min(month.last_day());
    let mtd_actual = total_sum(daily.range(month.first_day()..=as_of).map(|(_, v)| *v))?;
    let elapsed_days = u32::try_from((as_of - before_start).num_days()).unwrap_or(0);
    let remaining_days = month.days() - elapsed_days;

    let window = window(daily, as_of, config.run_rate_days);
    let run_rate = median(&window)?.unwrap_or_default();
    let daily_spread = mul(mad(&window, run_rate)?.unwrap_or_default(), MAD_SCALE)?;
    let remaining = Decimal::from(remaining_days);
    let forecast = add(mtd_actual, mul(remaining, run_rate)?)?;
    let n = Decimal::from(window.len().max(1));
    let median_term = div(mul(mul(remaining, remaining)?, HALF_PI)?, n)?;
    let root = sqrt(add(remaining, median_term)?)?.unwrap_or_default();
    let half_width = mul(mul(config.interval_k, daily_spread)?, root)?;
    Ok(Forecast {
        accountant_id: accountant_id.to_owned(),
        month,
        currency: String::new(),
        as_of,
        mtd_actual,
        elapsed_days,
        remaining_days,
        window_days: u32::try_from(window.len()).unwrap_or(u32::MAX),
        run_rate: round(run_rate, FORECAST_DP),
        daily_spread: round(daily_spread, FORECAST_DP),
        forecast: round(forecast, FORECAST_DP),
        forecast_low: round(sub(forecast, half_width)?, FORECAST_DP),
        forecast_high: round(add(forecast, half_width)?, FORECAST_DP),
    })
}

/// Forecasts of `month` for every tenant with actual cost records (of `measure`, in `currency`), sorted by
/// tenant: [`crate::daily_by_tenant`] then [`forecast_month`].
pub fn forecast_tenants(
    actuals: &[ActualCost],
    measure: Measure,
    currency: &str,
    month: Month,
    as_of: NaiveDate,
    config: &ForecastConfig,
) -> Result<Vec<Forecast>> {
    daily_by_tenant(actuals, measure, currency)?
        .iter()
        .map(|(tenant, daily)| {
            let forecast = forecast_month(tenant, daily, month, as_of, config)?;
            Ok(Forecast { currency: currency.to_owned(), ..forecast })
        })
        .collect()
}

/// The last `n` days ending at `as_of`, not before the series' first day; missing days are 0.
fn window(daily: &DailySeries, as_of: NaiveDate, n: u32) -> Vec<Decimal> {
    let Some(start) = daily.keys().next().copied() else { return Vec::new() };
    let mut out = Vec::new();
    let mut day = as_of;
    while out.len() < n as usize && day >= start {
        out.push(daily.get(&day).copied().unwrap_or_default());
        match day.checked_sub_days(Days::new(1)) {
            Some(d) => day = d,
            None => break,
        }
    }
    out
}

/// One month of a backtest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacktestMonth {
    pub month: Month,
    pub as_of: NaiveDate,
    pub forecast: Decimal,
    pub forecast_low: Decimal,
    pub forecast_high: Decimal,
    pub actual: Decimal,
    /// `(forecast − actual) / |actual| × 100`; empty when `actual = 0`.
    pub pct_error: Option<Decimal>,
    pub within_interval: bool,
}

/// The result of [`backtest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backtest {
    /// Days of each month known when forecasting.
    pub first_days: u32,
    pub months: Vec<BacktestMonth>,
    /// Mean absolute percentage error over months with a non-zero actual; empty if there are none.
    pub mape: Option<Decimal>,
    /// Mean signed percentage error (positive = forecasts too high).
    pub bias_pct: Option<Decimal>,
    /// Share of months whose actual fell inside the interval.
    pub interval_coverage_pct: Option<Decimal>,
    /// Months left out of MAPE and bias because their actual was 0.
    pub zero_actual_months: u32,
}

/// Forecasts every complete month of `daily` from its first `first_days` days (see the module docs).
pub fn backtest(daily: &DailySeries, first_days: u32, config: &ForecastConfig) -> Result<Backtest> {
    let mut months = Vec::new();
    if let (Some(first), Some(last)) = (daily.keys().next().copied(), daily.keys().next_back().copied()) {
        let mut month = Month::of(first);
        if month.first_day() != first {
            month = month.next();
        }
        while month.last_day() <= last {
            let as_of = match first_days {
                0 => month.first_day().pred_opt().unwrap_or(month.first_day()),
                n => month.day(n.min(month.days())).unwrap_or(month.last_day()),
            };
            let f = forecast_month("", daily, month, as_of, config)?;
            let actual = total_sum(daily.range(month.first_day()..=month.last_day()).map(|(_, v)| *v))?;
            let pct_error = pct(sub(f.forecast, actual)?, actual)?.map(|p| round(p, PCT_DP));
            months.push(BacktestMonth {
                month,
                as_of: f.as_of,
                forecast: f.forecast,
                forecast_low: f.forecast_low,
                forecast_high: f.forecast_high,
                actual,
                pct_error,
                within_interval: f.forecast_low <= actual && actual <= f.forecast_high,
            });
            month = month.next();
        }
    }
    let errors: Vec<Decimal> = months.iter().filter_map(|m| m.pct_error).collect();
    let mean = |values: &[Decimal]| -> Result<Option<Decimal>> {
        if values.is_empty() {
            return Ok(None);
        }
        Ok(Some(round(div(sum(values.iter().copied())?, Decimal::from(values.len()))?, PCT_DP)))
    };
    let mape = mean(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>())?;
    let bias_pct = mean(&errors)?;
    let inside = months.iter().filter(|m| m.within_interval).count();
    let interval_coverage_pct = pct(Decimal::from(inside), Decimal::from(months.len()))?.map(|p| round(p, PCT_DP));
    let zero_actual_months = u32::try_from(months.len() - errors.len()).unwrap_or(u32::MAX);
    Ok(Backtest { first_days, months, mape, bias_pct, interval_coverage_pct, zero_actual_months })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn day(m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, dd).unwrap()
    }

    #[test]
    fn hand_checked_forecast() {
        // October 1–10 cost 10, 12, 11, 13, 50 (spike), 12, 11, 10, 12, 14.
        let costs = ["10", "12", "11", "13", "50", "12", "11", "10", "12", "14"];
        let daily: DailySeries = costs.iter().enumerate().map(|(i, c)| (day(10, i as u32 + 1), d(c))).collect();
        let oct = Month::of(day(10, 1));
        let f = forecast_month("acct-1", &daily, oct, day(10, 10), &ForecastConfig::default()).unwrap();
        // MTD = 155. Window Oct 4–10 = 13, 50, 12, 11, 10, 12, 14 → sorted 10 11 12 12 13 14 50 → median 12.
        // |dev| = 1 38 0 1 2 0 2 → sorted 0 0 1 1 2 2 38 → MAD 1 → σ = 1.4826.
        // 21 days left: forecast = 155 + 21 × 12 = 407;
        // half width = 2 × 1.4826 × √(21 + 21² × π / 14) = 2.9652 × √119.9535… = 32.4767472…
        assert_eq!((f.mtd_actual, f.elapsed_days, f.remaining_days, f.window_days), (d("155"), 10, 21, 7));
        assert_eq!((f.run_rate, f.daily_spread, f.forecast), (d("12"), d("1.4826"), d("407")));
        assert_eq!(f.forecast_low, d("374.523253"));
        assert_eq!(f.forecast_high, d("439.476747"));
    }

    #[test]
    fn half_pi() {
        assert_eq!(HALF_PI.to_string(), "1.570796326794896619231321692");
    }

    #[test]
    fn edges() {
        let oct = Month::of(day(10, 1));
        let empty = DailySeries::new();
        let f = forecast_month("acct-1", &empty, oct, day(9, 30), &ForecastConfig::default()).unwrap();
        assert_eq!((f.forecast, f.remaining_days, f.window_days), (d("0"), 31, 0));
        assert!(forecast_month("acct-1", &empty, oct, day(9, 29), &ForecastConfig::default()).is_err());
        let daily: DailySeries = [(day(10, 31), d("5"))].into();
        let f = forecast_month("acct-1", &daily, oct, day(11, 20), &ForecastConfig::default()).unwrap();
        assert_eq!((f.as_of, f.forecast, f.forecast_low, f.remaining_days), (day(10, 31), d("5"), d("5"), 0));
    }
}
