//! # curflow-reconcile
//!
//! Compares the cost estimates the app records per tenant (`accountant_id`) with the actual per-tenant
//! costs that curflow derives from the AWS Cost and Usage Report, and turns the result into flags, price
//! suggestions, budget alerts, anomalies and finance entries.
//!
//! Pure and deterministic: plain records in, plain records out; no I/O, no clock (`now` and `as_of` are
//! parameters), no `f64` (money and quantities are `rust_decimal::Decimal`, arithmetic is checked so an
//! absurd input fails with [`Error::Overflow`] instead of panicking). Every output list is sorted; every
//! output record derives `Serialize`/`Deserialize` with stable snake_case field names, which are the CSV and
//! JSON columns.
//!
//! Modules (each has the detail in its docs):
//!
//! * [`estimate`]: [`Estimate`] records and their validating parser (CSV fields or JSON), per-field errors.
//! * [`actual`]: [`ActualCost`] records (direct + attributed, one [`Measure`]), sign semantics, daily series.
//! * [`mapping`]: resource type ⇄ CUR service/usage type globs from TOML ([`ResourceTypeMap`]); [`UNMAPPED`].
//! * [`variance`]: the variance, percentage and flag rule ([`Thresholds`], [`VarianceStatus`]).
//! * [`mod@decompose`]: volume vs rate effects with the exact identity `volume + rate = variance`.
//! * [`mod@compare`]: the comparison per tenant × month (× resource type) with suggestions ([`compare()`]).
//! * [`period`]: `open` / `provisional` / `final` billing-period state ([`PeriodState`], [`Periods`]).
//! * [`forecast`]: month-end forecast with interval ([`forecast_month`], [`forecast_tenants`]) and its
//!   [`backtest`] (MAPE, bias, interval coverage).
//! * [`budget`]: monthly budgets and once-only alerts ([`evaluate_alerts`]).
//! * [`anomaly`]: robust z-score (median/MAD) day anomalies per tenant × service ([`find_anomalies`]).
//! * [`export`]: finance expense entries per tenant × service, cents summing exactly ([`expenses`]).
//! * [`month`], [`money`], [`stats`], [`glob`], [`error`]: `YYYY-MM` months, exact decimal helpers, median /
//!   MAD / square root, glob patterns, the error type.
//!
//! ## Example
//!
//! ```
//! use curflow_reconcile::{compare, ActualCost, CompareConfig, Estimate, EstimateRules, Measure, Periods,
//!     ResourceTypeMap, VarianceStatus, ESTIMATE_FIELDS};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! // The app estimated 1,000,000 Lambda requests at 0.0000002 = 0.20 … and 10 × 1.00 of OCR pages.
//! let rows = [
//!     ["acct-1", "2026-10-03T10:00:00Z", "2026-10", "upload", "lambda_invocation", "1000000", "0.0000002", "0.20"],
//!     ["acct-1", "2026-10-03T10:00:00Z", "2026-10", "ocr", "document_ocr", "10", "1.00", "10.00"],
//! ];
//! let rules = EstimateRules::default();
//! let estimates: Vec<Estimate> = rows
//!     .iter()
//!     .map(|r| Estimate::from_fields(ESTIMATE_FIELDS.iter().copied().zip(r.iter().copied()), &rules))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! // CUR says: the requests cost 0.20, the OCR cost 14.00 for the same 10 pages.
//! let line = |service: &str, usage_type: &str, qty: i64, unit: &str, cost: Decimal| ActualCost {
//!     accountant_id: "acct-1".into(),
//!     day: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
//!     service: service.into(),
//!     usage_type: usage_type.into(),
//!     usage_quantity: Some(Decimal::from(qty)),
//!     usage_unit: Some(unit.into()),
//!     measure: Measure::Amortized,
//!     currency: "USD".into(),
//!     direct: cost,
//!     attributed: Decimal::ZERO,
//! };
//! let actuals = [
//!     line("AWSLambda", "USE1-Request", 1_000_000, "Requests", Decimal::new(20, 2)),
//!     line("AmazonTextract", "USE1-PagesForDocumentText", 10, "Pages", Decimal::new(1400, 2)),
//! ];
//! let mapping = ResourceTypeMap::example().unwrap();
//! let periods = Periods::new("2026-10-20T00:00:00Z".parse().unwrap()); // October is still open
//! let result = compare(&estimates, &actuals, &mapping, &periods, &CompareConfig::default()).unwrap();
//!
//! let ocr = &result.resource_types[0];
//! assert_eq!(ocr.resource_type, "document_ocr");
//! assert_eq!(ocr.variance, Decimal::new(400, 2)); // +4.00 = +40 %: flagged, but only as an open-month trend
//! assert_eq!(ocr.status, VarianceStatus::OpenVariance);
//! assert_eq!(ocr.suggested_unit_cost, Some(Decimal::new(14, 1))); // same pages, higher price: rate effect
//! assert_eq!(result.tenant_months[0].variance_pct, Some(Decimal::new(392157, 4))); // 4.00 / 10.20 × 100
//! ```
#![deny(clippy::float_arithmetic)]

pub mod actual;
pub mod anomaly;
pub mod budget;
pub mod compare;
pub mod decompose;
pub mod error;
pub mod estimate;
pub mod export;
pub mod forecast;
pub mod glob;
pub mod mapping;
pub mod money;
pub mod month;
pub mod period;
pub mod stats;
pub mod variance;

pub use actual::{ActualCost, DailySeries, Measure, daily_by_tenant, daily_by_tenant_service};
pub use anomaly::{Anomaly, AnomalyConfig, AnomalyMethod, detect_anomalies, find_anomalies};
pub use budget::{
    Alert, AlertKey, AlertKind, Budget, BudgetPosition, CurrencyMismatch, currency_mismatches, default_thresholds,
    evaluate_alerts,
};
pub use compare::{
    CompareConfig, Comparison, MappingStatus, NotCompared, ResourceTypeVariance, Suggestion, TenantMonthVariance,
    compare,
};
pub use decompose::{Decomposition, Dominant, decompose};
pub use error::{Error, Result};
pub use estimate::{ESTIMATE_FIELDS, Estimate, EstimateErrors, EstimateRules, FieldError};
pub use export::{ExpenseEntry, expenses};
pub use forecast::{Backtest, BacktestMonth, Forecast, ForecastConfig, backtest, forecast_month, forecast_tenants};
pub use mapping::{MappingError, ResourceType, ResourceTypeMap, UNMAPPED};
pub use money::{parse_decimal, round_preserving_total};
pub use month::Month;
pub use period::{PeriodState, Periods};
pub use variance::{Thresholds, VarianceStatus};
