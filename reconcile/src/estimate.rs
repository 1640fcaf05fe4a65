//! Cost estimates as the app records them, and their validating parser.
//!
//! The app writes one record per costed operation: `accountant_id`, `timestamp` (RFC 3339), `month`
//! (`YYYY-MM`), `operation`, `resource_type`, `quantity`, `unit_cost` and `estimated_cost`. The CLI reads
//! them from CSV rows or JSON lines and must be able to reject a file with line numbers, so the parser
//! reports **every** bad field of a record at once ([`FieldError`]: field, what was expected, what was
//! found) instead of stopping at the first.
//!
//! Rules (also what [`Estimate::validate`] checks on records built in code):
//!
//! * `accountant_id`, `operation`, `resource_type`: non-empty, no surrounding whitespace or control
//!   characters. Unknown extra fields are ignored (the app may add columns); a field given twice is an error.
//! * `timestamp`: RFC 3339 with an offset (`2026-10-03T10:00:00Z`, `…+02:00`).
//! * `month`: `YYYY-MM`, equal to the month of `timestamp` **in UTC** (CUR days are UTC days, so an
//!   estimate is compared with the UTC month it happened in).
//! * `quantity`, `unit_cost`, `estimated_cost`: exact decimals ≥ 0 (`0.0000002`, JavaScript's `2e-7`);
//!   never read through `f64`.
//! * `estimated_cost` must equal `quantity × unit_cost` within the tolerance of [`EstimateRules`]: by
//!   default one unit in the last decimal place that `estimated_cost` is written with (`"1.23"` ⇒ ±0.01),
//!   which accepts any rounding mode the app may use (half-up, half-even, truncation) at its stated
//!   precision and nothing coarser. A mismatch is a field error on `estimated_cost` unless
//!   [`EstimateRules::reject_cost_mismatch`] is off; then the record is accepted and
//!   [`Estimate::cost_mismatch`] reports the difference for flagging.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::money::parse_decimal;
use crate::month::Month;

/// The field names, in the app's column order.
pub const ESTIMATE_FIELDS: [&str; 8] =
    ["accountant_id", "timestamp", "month", "operation", "resource_type", "quantity", "unit_cost", "estimated_cost"];

/// The longest accepted text field (bytes).
pub const MAX_TEXT_LEN: usize = 256;

/// One cost estimate (field names are the app's and the CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// The tenant.
    pub accountant_id: String,
    /// When the operation happened, with the offset the app wrote.
    pub timestamp: DateTime<FixedOffset>,
    /// The UTC month of `timestamp`.
    pub month: Month,
    /// The app operation that incurred the cost (free text, e.g. `ocr_document`).
    pub operation: String,
    /// The app's resource type, mapped to CUR lines by [`crate::ResourceTypeMap`].
    pub resource_type: String,
    /// Quantity in the resource type's unit (e.g. requests, GB-seconds).
    pub quantity: Decimal,
    /// Estimated cost of one unit.
    pub unit_cost: Decimal,
    /// The estimated cost of the record: `quantity × unit_cost` at the app's precision.
    pub estimated_cost: Decimal,
}

/// How strictly [`Estimate`]s are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EstimateRules {
    /// Allowed `|estimated_cost − quantity × unit_cost|`; `None` = one unit in the last decimal place of
    /// `estimated_cost` as written.
    pub cost_tolerance: Option<Decimal>,
    /// `true` (default): a cost mismatch is a field error. `false`: accept and let the caller flag it.
    pub reject_cost_mismatch: bool,
}

impl Default for EstimateRules {
    fn default() -> Self {
        Self { cost_tolerance: None, reject_cost_mismatch: true }
    }
}

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct FieldError {
    /// The field name (one of [`ESTIMATE_FIELDS`], or the duplicated name).
    pub field: String,
    /// What a valid value looks like.
    pub expected: String,
    /// The offending text (`None` when the field is missing).
    pub found: Option<String>,
}

impl FieldError {
    fn new(field: &str, expected: impl Into<String>, found: Option<&str>) -> Self {
        Self { field: field.to_owned(), expected: expected.into(), found: found.map(str::to_owned) }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}", self.field, self.expected)?;
        if let Some(found) = &self.found {
            write!(f, ", found {found:?}")?;
        }
        Ok(())
    }
}

/// All bad fields of one record (never empty), in [`ESTIMATE_FIELDS`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct EstimateErrors(pub Vec<FieldError>);

impl fmt::Display for EstimateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Estimate {
    /// Parses a record from `(field name, text)` pairs, e.g. a CSV header zipped with a row. An empty text
    /// counts as missing.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        rules: &EstimateRules,
    ) -> Result<Self, EstimateErrors> {
        let mut map: BTreeMap<&str, &str> = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, value) in fields {
            if map.insert(name, value).is_some() && ESTIMATE_FIELDS.contains(&name) {
                errors.push(FieldError::new(name, "the field once", None));
            }
        }
        build(|name| map.get(name).copied().filter(|v| !v.is_empty()), errors, rules)
    }

    /// Parses a record from one JSON object (a JSON line). Values may be strings or numbers; numbers are
    /// read from their source text, exactly. `null` counts as missing.
    pub fn from_json(text: &str, rules: &EstimateRules) -> Result<Self, EstimateErrors> {
        let object: BTreeMap<String, &RawValue> = serde_json::from_str(text)
            .map_err(|e| EstimateErrors(vec![FieldError::new("(record)", format!("a JSON object ({e})"), None)]))?;
        let mut texts: BTreeMap<&str, String> = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, raw) in &object {
            let raw = raw.get();
            if raw == "null" {
                continue;
            }
            if raw.starts_with('"') {
                match serde_json::from_str::<String>(raw) {
                    Ok(s) => {
                        texts.insert(name, s);
                    }
                    Err(_) => errors.push(FieldError::new(name, "a valid JSON string", Some(raw))),
                }
            } else if raw.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
                texts.insert(name, raw.to_owned());
            } else if ESTIMATE_FIELDS.contains(&name.as_str()) {
                errors.push(FieldError::new(name, "a string or a number", Some(raw)));
            }
        }
        build(|name| texts.get(name).map(String::as_str).filter(|v| !v.is_empty()), errors, rules)
    }

    /// Re-checks a record that did not come through a parser (see the module docs for the rules).
    pub fn validate(&self, rules: &EstimateRules) -> Result<(), EstimateErrors> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("accountant_id", &self.accountant_id),
            ("operation", &self.operation),
            ("resource_type", &self.resource_type),
        ] {
            if let Err(e) = check_text(field, value) {
                errors.push(e);
            }
        }
        if let Err(e) = check_month(self.month, self.timestamp) {
            errors.push(e);
        }
        for (field, value) in
            [("quantity", self.quantity), ("unit_cost", self.unit_cost), ("estimated_cost", self.estimated_cost)]
        {
            if value.is_sign_negative() && !value.is_zero() {
                errors.push(FieldError::new(field, "a decimal number ≥ 0", Some(&value.to_string())));
            }
        }
        if errors.is_empty()
            && rules.reject_cost_mismatch
            && let Some(e) = self.cost_error(rules)
        {
            errors.push(e);
        }
        if errors.is_empty() { Ok(()) } else { Err(EstimateErrors(errors)) }
    }

    /// `quantity × unit_cost` (`None` if it overflows a `Decimal`).
    pub fn computed_cost(&self) -> Option<Decimal> {
        self.quantity.checked_mul(self.unit_cost)
    }

    /// `estimated_cost − quantity × unit_cost` when it is outside the tolerance of `rules`, else `None`.
    pub fn cost_mismatch(&self, rules: &EstimateRules) -> Option<Decimal> {
        let tolerance = rules.cost_tolerance.unwrap_or_else(|| Decimal::new(1, self.estimated_cost.scale()));
        // A product or difference that overflows is certainly a mismatch: reported as `Decimal::MAX`.
        match self.computed_cost().and_then(|c| self.estimated_cost.checked_sub(c)) {
            Some(diff) => (diff.abs() > tolerance).then_some(diff),
            None => Some(Decimal::MAX),
        }
    }

    fn cost_error(&self, rules: &EstimateRules) -> Option<FieldError> {
        self.cost_mismatch(rules)?;
        let tolerance = rules.cost_tolerance.unwrap_or_else(|| Decimal::new(1, self.estimated_cost.scale()));
        let expected = match self.computed_cost() {
            Some(c) => format!("quantity × unit_cost = {c} (± {tolerance})"),
            None => "quantity × unit_cost to fit a decimal".to_owned(),
        };
        Some(FieldError::new("estimated_cost", expected, Some(&self.estimated_cost.to_string())))
    }
}

/// Validates every field through `get` and builds the record, collecting all errors.
fn build<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    mut errors: Vec<FieldError>,
    rules: &EstimateRules,
) -> Result<Estimate, EstimateErrors> {
    let accountant_id = required_text("accountant_id", get("accountant_id"), &mut errors);
    let timestamp = required_timestamp(get("timestamp"), &mut errors);
    let month = required_month(get("month"), &mut errors);
    if let (Some(m), Some(t)) = (month, timestamp)
        && let Err(e) = check_month(m, t)
    {
        errors.push(e);
    }
    let operation = required_text("operation", get("operation"), &mut errors);
    let resource_type = required_text("resource_type", get("resource_type"), &mut errors);
    let quantity = required_amount("quantity", get("quantity"), &mut errors);
    let unit_cost = required_amount("unit_cost", get("unit_cost"), &mut errors);
    let estimated_cost = required_amount("estimated_cost", get("estimated_cost"), &mut errors);
    match (accountant_id, timestamp, month, operation, resource_type, quantity, unit_cost, estimated_cost) {
        (
            Some(accountant_id),
            Some(timestamp),
            Some(month),
            Some(operation),
            Some(resource_type),
            Some(q),
            Some(p),
            Some(c),
        ) if errors.is_empty() => {
            let e = Estimate {
                accountant_id,
                timestamp,
                month,
                operation,
                resource_type,
                quantity: q,
                unit_cost: p,
                estimated_cost: c,
            };
            if rules.reject_cost_mismatch
                && let Some(err) = e.cost_error(rules)
            {
                return Err(EstimateErrors(vec![err]));
            }
            Ok(e)
        }
        _ => Err(EstimateErrors(normalize(errors))),
    }
}

/// The error of a required field that is absent or empty.
fn missing(field: &str) -> FieldError {
    FieldError::new(field, "a value (the field is missing or empty)", None)
}

/// A required text field's `value`, checked by [`check_text`]; `None` when it is missing or
/// invalid, with the error added to `errors` (so that every field's error is reported).
fn required_text(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        None => {
            errors.push(missing(field));
            None
        }
        Some(v) => match check_text(field, v) {
            Ok(()) => Some(v.to_owned()),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    }
}

/// The `timestamp` field (RFC 3339, with its offset kept); `None` with the error added to `errors`.
fn required_timestamp(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<DateTime<FixedOffset>> {
    match value {
        None => {
            errors.push(missing("timestamp"));
            None
        }
        Some(v) => match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(FieldError::new("timestamp", "an RFC 3339 timestamp like 2026-10-03T10:00:00Z", Some(v)));
                None
            }
        },
    }
}

/// The `month` field (`YYYY-MM`); `None` with the error added to `errors`.
fn required_month(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Month> {
    match value {
        None => {
            errors.push(missing("month"));
            None
        }
        Some(v) => match v.parse::<Month>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push(FieldError::new("month", "a month YYYY-MM", Some(v)));
                None
            }
        },
    }
}

/// A required non-negative exact decimal (quantities and costs); `None` with the error added to
/// `errors`. A negative zero is accepted as zero.
fn required_amount(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Decimal> {
    let Some(v) = value else {
        errors.push(missing(field));
        return None;
    };
    match parse_decimal(v) {
        Ok(d) if !d.is_sign_negative() || d.is_zero() => Some(d),
        _ => {
            errors.push(FieldError::new(field, "a decimal number ≥ 0 (at most 28 significant digits)", Some(v)));
            None
        }
    }
}

/// Sorts errors into [`ESTIMATE_FIELDS`] order (others last) and keeps the first error of each field (a
/// wrongly typed JSON value would otherwise also be reported as missing).
fn normalize(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    let rank = |f: &FieldError| ESTIMATE_FIELDS.iter().position(|n| *n == f.field).unwrap_or(ESTIMATE_FIELDS.len());
    errors.sort_by_key(rank);
    errors.dedup_by(|b, a| a.field == b.field);
    errors
}

fn check_text(field: &str, v: &str) -> Result<(), FieldError> {
    if v.is_empty() || v.len() > MAX_TEXT_LEN || v.trim() != v || v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!(
                "non-empty text of at most {MAX_TEXT_LEN} bytes without surrounding whitespace or control characters"
            ),
            Some(v),
        ));
    }
    Ok(())
}

fn check_month(month: Month, timestamp: DateTime<FixedOffset>) -> Result<(), FieldError> {
    let utc = Month::of(timestamp.with_timezone(&Utc).date_naive());
    if utc == month {
        return Ok(());
    }
    Err(FieldError::new("month", format!("the UTC month of timestamp, {utc}"), Some(&month.to_string())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEADER: [&str; 8] = ESTIMATE_FIELDS;

    fn row(values: [&str; 8]) -> Result<Estimate, EstimateErrors> {
        Estimate::from_fields(HEADER.iter().copied().zip(values), &EstimateRules::default())
    }

    fn fields(e: &EstimateErrors) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn parses_a_csv_row() {
        let e = row([
            "acct-1",
            "2026-10-03T10:00:00Z",
            "2026-10",
            "ocr",
            "lambda_invocation",
            "1000",
            "0.0000002",
            "0.0002",
        ])
        .unwrap();
        assert_eq!(e.accountant_id, "acct-1");
        assert_eq!(e.quantity, Decimal::new(1000, 0));
        assert_eq!(e.unit_cost.to_string(), "0.0000002");
        assert_eq!(e.month.to_string(), "2026-10");
        assert!(e.validate(&EstimateRules::default()).is_ok());
    }

    #[test]
    fn reports_every_bad_field() {
        let err = row(["", "yesterday", "2026-13", " ocr", "x", "-1", "abc", ""]).unwrap_err();
        assert_eq!(
            fields(&err),
            ["accountant_id", "timestamp", "month", "operation", "quantity", "unit_cost", "estimated_cost"]
        );
        assert_eq!(err.0[1].found.as_deref(), Some("yesterday"));
        assert!(err.to_string().contains("timestamp: expected an RFC 3339 timestamp"), "{err}");
    }

    #[test]
    fn month_is_the_utc_month() {
        // 23:30 at -05:00 on Oct 31 is Nov 1 UTC.
        let err = row(["a", "2026-10-31T23:30:00-05:00", "2026-10", "op", "rt", "1", "1", "1"]).unwrap_err();
        assert_eq!(fields(&err), ["month"]);
        assert_eq!(err.0[0].expected, "the UTC month of timestamp, 2026-11");
        assert!(row(["a", "2026-10-31T23:30:00-05:00", "2026-11", "op", "rt", "1", "1", "1"]).is_ok());
    }

    #[test]
    fn cost_tolerance_is_the_stated_precision() {
        // 3 × 0.333 = 0.999: "1.00" is off by 0.001 ≤ 0.01 → accepted; "1.000" is off by 0.001 ≤ 0.001 → accepted;
        // "1.0000" is off by 0.001 > 0.0001 → rejected; "1.02" is off by 0.021 > 0.01 → rejected.
        let r = |c: &str| row(["a", "2026-10-03T10:00:00Z", "2026-10", "op", "rt", "3", "0.333", c]);
        assert!(r("1.00").is_ok());
        assert!(r("1.000").is_ok());
        assert!(r("0.999").is_ok());
        let err = r("1.0000").unwrap_err();
        assert_eq!(fields(&err), ["estimated_cost"]);
        assert_eq!(err.0[0].expected, "quantity × unit_cost = 0.999 (± 0.0001)");
        assert!(r("1.02").is_err());
        // Lenient mode accepts and reports the difference.
        let lenient = EstimateRules { reject_cost_mismatch: false, ..EstimateRules::default() };
        let e = Estimate::from_fields(
            HEADER.iter().copied().zip(["a", "2026-10-03T10:00:00Z", "2026-10", "op", "rt", "3", "0.333", "1.02"]),
            &lenient,
        )
        .unwrap();
        assert_eq!(e.cost_mismatch(&lenient), Some(Decimal::new(21, 3)));
        // An explicit tolerance.
        let loose = EstimateRules { cost_tolerance: Some(Decimal::new(5, 2)), reject_cost_mismatch: true };
        assert!(e.validate(&loose).is_ok());
    }

    #[test]
    fn parses_json_numbers_exactly() {
        let line = r#"{"accountant_id":"acct-9","timestamp":"2026-10-03T10:00:00.123Z","month":"2026-10",
            "operation":"ocr","resource_type":"lambda_invocation","quantity":3,"unit_cost":2e-7,
            "estimated_cost":0.0000006,"extra":{"ignored":true}}"#;
        let e = Estimate::from_json(line, &EstimateRules::default()).unwrap();
        assert_eq!(e.unit_cost.to_string(), "0.0000002");
        assert_eq!(e.estimated_cost.to_string(), "0.0000006");
        let err =
            Estimate::from_json(r#"{"accountant_id":"a","quantity":true,"unit_cost":null}"#, &EstimateRules::default())
                .unwrap_err();
        assert_eq!(
            fields(&err),
            ["timestamp", "month", "operation", "resource_type", "quantity", "unit_cost", "estimated_cost"]
        );
        assert_eq!(err.0[4].expected, "a string or a number");
        assert!(Estimate::from_json("[1,2]", &EstimateRules::default()).is_err());
    }

    #[test]
    fn duplicate_columns_are_errors() {
        let pairs = HEADER.iter().copied().zip(["a", "2026-10-03T10:00:00Z", "2026-10", "op", "rt", "1", "1", "1"]);
        let pairs = pairs.chain([("quantity", "2"), ("note", "x"), ("note", "y")]);
        let err = Estimate::from_fields(pairs, &EstimateRules::default()).unwrap_err();
        assert_eq!(fields(&err), ["quantity"]);
    }

    #[test]
    fn round_trips_through_json() {
        let e =
            row(["acct-1", "2026-10-03T10:00:00+02:00", "2026-10", "ocr", "lambda_invocation", "1.50", "2", "3.00"])
                .unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Estimate>(&json).unwrap(), e);
    }
}
