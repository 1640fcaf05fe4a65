//! DataFusion scalar functions that turn raw CUR columns into exact, typed values.
//!
//! They run inside the DataFusion plan (vectorised over Arrow arrays) so the scan stays
//! streaming. Each conversion that can meet bad input raises [`BadValueInRow`] naming the column
//! and the offending value; the scanner adds the file and line.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, MapArray, StringBuilder, UInt8Array,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::error::BadValueInRow;
use curflow_model::line_item::LineItemKind;
use curflow_model::measures::{CommitmentAmounts, Measure, RowInputs};
use curflow_model::money::{
    DECIMAL_PRECISION, MONEY_SCALE, ParseDecimalError, QUANTITY_SCALE, f64_to_scaled, parse_scaled, pow10_i128,
};

/// All curflow UDFs, for registration and for building expressions.
pub struct Udfs {
    pub money: Arc<ScalarUDF>,
    pub quantity: Arc<ScalarUDF>,
    pub date: Arc<ScalarUDF>,
    pub tag: Arc<ScalarUDF>,
    pub kind: Arc<ScalarUDF>,
    pub non_empty: Arc<ScalarUDF>,
    pub measures: Vec<(Measure, Arc<ScalarUDF>)>,
}

impl Udfs {
    pub fn new() -> Self {
        Self {
            money: Arc::new(ScalarUDF::new_from_impl(ToScaled::new("curflow_money", MONEY_SCALE))),
            quantity: Arc::new(ScalarUDF::new_from_impl(ToScaled::new("curflow_quantity", QUANTITY_SCALE))),
            date: Arc::new(ScalarUDF::new_from_impl(ToDate::new())),
            tag: Arc::new(ScalarUDF::new_from_impl(TagValue::new())),
            kind: Arc::new(ScalarUDF::new_from_impl(KindCode::new())),
            non_empty: Arc::new(ScalarUDF::new_from_impl(NonEmpty::new())),
            measures: Measure::ALL
                .iter()
                .map(|&m| (m, Arc::new(ScalarUDF::new_from_impl(MeasureUdf::new(m)))))
                .collect(),
        }
    }

    pub fn measure(&self, m: Measure) -> Option<&Arc<ScalarUDF>> {
        self.measures.iter().find(|(x, _)| *x == m).map(|(_, u)| u)
    }
}

impl Default for Udfs {
    fn default() -> Self {
        Self::new()
    }
}

pub fn money_type() -> DataType {
    DataType::Decimal128(DECIMAL_PRECISION, MONEY_SCALE as i8)
}

pub fn quantity_type() -> DataType {
    DataType::Decimal128(DECIMAL_PRECISION, QUANTITY_SCALE as i8)
}

fn bad_value(column: &str, value: impl Into<String>, expected: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(BadValueInRow {
        column: column.to_string(),
        value: value.into(),
        expected: expected.into(),
    }))
}

/// The column name passed as the last literal argument (for error messages).
fn column_label(args: &ScalarFunctionArgs, index: usize) -> String {
    match args.args.get(index) {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))) => s.clone(),
        _ => "?".to_string(),
    }
}

fn first_array(args: &ScalarFunctionArgs) -> DfResult<ArrayRef> {
    match args.args.first() {
        Some(v) => v.to_array(args.number_rows),
        None => Err(DataFusionError::Internal("curflow UDF called without arguments".into())),
    }
}

/// Calls `f(row, value)` for every row of a string-like array (NULL → `None`).
fn for_each_str(array: &ArrayRef, mut f: impl FnMut(usize, Option<&str>) -> DfResult<()>) -> DfResult<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().enumerate().try_for_each(|(i, v)| f(i, v)),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().enumerate().try_for_each(|(i, v)| f(i, v)),
        DataType::Utf8View => array.as_string_view().iter().enumerate().try_for_each(|(i, v)| f(i, v)),
        DataType::Null => (0..array.len()).try_for_each(|i| f(i, None)),
        DataType::Dictionary(..) => {
            let plain = cast(array, &DataType::Utf8)?;
            for_each_str(&plain, f)
        }
        other => Err(DataFusionError::Internal(format!("expected a string column, got {other}"))),
    }
}

// ---------------------------------------------------------------------------------------------

/// `curflow_money(x, 'column')` / `curflow_quantity(x, 'column')`: any numeric or text value to an
/// exact `Decimal128(38, scale)`. See [`curflow_model::money`] for how doubles are read.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToScaled {
    name: &'static str,
    scale: u32,
    signature: Signature,
}

impl ToScaled {
    fn new(name: &'static str, scale: u32) -> Self {
        Self { name, scale, signature: Signature::any(2, Volatility::Immutable) }
    }

    fn convert(&self, array: &ArrayRef, column: &str) -> DfResult<Decimal128Array> {
        let scale = self.scale;
        let out: Decimal128Array = match array.data_type() {
            DataType::Float64 => array.as_primitive::<Float64Type>().try_unary(|v| {
                f64_to_scaled(v, scale).ok_or_else(|| bad_value(column, v.to_string(), "a finite amount"))
            })?,
            DataType::Float32 => array.as_primitive::<Float32Type>().try_unary(|v| {
                f64_to_scaled(f64::from(v), scale).ok_or_else(|| bad_value(column, v.to_string(), "a finite amount"))
            })?,
            t if t.is_integer() => {
                let ints = cast(array, &DataType::Int64)?;
                let factor = pow10_i128(scale);
                ints.as_primitive::<Int64Type>().unary(|v| i128::from(v) * factor)
            }
            DataType::Decimal128(_, s) => {
                let s = i32::from(*s);
                let target = scale as i32;
                let d = array.as_primitive::<Decimal128Type>();
                if s <= target {
                    let factor = pow10_i128((target - s) as u32);
                    // Beyond i128: out of range, reported with the column's own value below.
                    d.unary(|v| v.checked_mul(factor).unwrap_or(i128::MAX))
                } else {
                    let divisor = pow10_i128((s - target) as u32);
                    d.unary(|v| {
                        let (q, r) = (v / divisor, v % divisor);
                        let twice = (r * 2).abs();
                        if twice > divisor || (twice == divisor && q % 2 != 0) { q + v.signum() } else { q }
                    })
                }
            }
            DataType::Null => Decimal128Array::new_null(array.len()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
                let mut values = Vec::with_capacity(array.len());
                for_each_str(array, |_, v| {
                    let parsed = match v.map(str::trim) {
                        None | Some("") => None,
                        Some(text) => Some(parse_scaled(text, scale).map_err(|e| {
                            let expected = match e {
                                ParseDecimalError::OutOfRange { .. } => crate::amount_limit_text(scale),
                                _ => "a decimal number".to_string(),
                            };
                            bad_value(column, text, expected)
                        })?),
                    };
                    values.push(parsed);
                    Ok(())
                })?;
                Decimal128Array::from(values)
            }
            other => {
                return Err(DataFusionError::Internal(format!("{}: unsupported input type {other}", self.name)));
            }
        };
        check_range(array, &out, column, scale)?;
        Ok(out.with_precision_and_scale(DECIMAL_PRECISION, scale as i8)?)
    }
}

/// Every valid scaled value must be below [`crate::SCALED_LIMIT`] (an exact total can hold it);
/// the first that is not is reported with the column's value as the file has it.
fn check_range(input: &ArrayRef, scaled: &Decimal128Array, column: &str, scale: u32) -> DfResult<()> {
    // A fold without early exit vectorises; the search below skips NULL slots.
    if scaled.values().iter().fold(true, |ok, &v| ok & crate::scaled_in_range(v)) {
        return Ok(());
    }
    let bad = (0..scaled.len()).find(|&i| scaled.is_valid(i) && !crate::scaled_in_range(scaled.value(i)));
    match bad {
        Some(i) => {
            let shown = arrow::util::display::array_value_to_string(input, i).unwrap_or_else(|_| "?".into());
            Err(bad_value(column, shown, crate::amount_limit_text(scale)))
        }
        None => Ok(()),
    }
}

impl ScalarUDFImpl for ToScaled {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Decimal128(DECIMAL_PRECISION, self.scale as i8))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let column = column_label(&args, 1);
        let array = first_array(&args)?;
        Ok(ColumnarValue::Array(Arc::new(self.convert(&array, &column)?)))
    }
}

// ---------------------------------------------------------------------------------------------

/// `curflow_date(x, 'column')`: a timestamp (any unit; naive timestamps are UTC, as in CUR) or
/// timestamp text to its UTC calendar day.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToDate {
    signature: Signature,
}

impl ToDate {
    fn new() -> Self {
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a count of `per_day` units, flooring for instants before 1970.
fn day_of(v: i64, per_day: i64) -> DfResult<i32> {
    i32::try_from(v.div_euclid(per_day)).map_err(|_| DataFusionError::Execution(format!("timestamp {v} out of range")))
}

/// Parses the timestamp spellings found in CUR files to a UTC day number.
pub(crate) fn parse_day(text: &str) -> Option<i32> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = text.trim();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let date = if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        dt.naive_utc().date()
    } else if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.fZ") {
        dt.date()
    } else if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f") {
        dt.date()
    } else if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.fZ") {
        dt.date()
    } else {
        NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?
    };
    i32::try_from((date - epoch).num_days()).ok()
}

impl ScalarUDFImpl for ToDate {
    fn name(&self) -> &str {
        "curflow_date"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let column = column_label(&args, 1);
        let array = first_array(&args)?;
        let out: Date32Array = match array.data_type() {
            DataType::Timestamp(unit, _) => {
                let per_day = match unit {
                    TimeUnit::Second => 86_400,
                    TimeUnit::Millisecond => MS_PER_DAY,
                    TimeUnit::Microsecond => MS_PER_DAY * 1_000,
                    TimeUnit::Nanosecond => MS_PER_DAY * 1_000_000,
                };
                match unit {
                    TimeUnit::Second => {
                        array.as_primitive::<TimestampSecondType>().try_unary(|v| day_of(v, per_day))?
                    }
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().try_unary(|v| day_of(v, per_day))?
                    }
                    TimeUnit::Microsecond => {
                        array.as_primitive::<TimestampMicrosecondType>().try_unary(|v| day_of(v, per_day))?
                    }
                    TimeUnit::Nanosecond => {
                        array.as_primitive::<TimestampNanosecondType>().try_unary(|v| day_of(v, per_day))?
                    }
                }
            }
            DataType::Date32 => array.as_primitive::<Date32Type>().clone(),
            DataType::Date64 => array.as_primitive::<Date64Type>().try_unary(|v| day_of(v, MS_PER_DAY))?,
            DataType::Null => Date32Array::new_null(array.len()),
            _ => {
                let mut values = Vec::with_capacity(array.len());
                for_each_str(&array, |_, v| {
                    values.push(match v.map(str::trim) {
                        None | Some("") => None,
                        Some(text) => Some(
                            parse_day(text)
                                .ok_or_else(|| bad_value(&column, text, "a timestamp like 2023-11-05T04:00:00.000Z"))?,
                        ),
                    });
                    Ok(())
                })?;
                Date32Array::from(values)
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

// ---------------------------------------------------------------------------------------------

/// `curflow_tag(column)` or `curflow_tag(map, 'key'[, map2, 'key2'])`: a tag value, trimmed, with empty
/// strings as NULL (CSV writes absent tags as empty strings, Parquet as NULL; both mean untagged).
/// The "map" may also be text holding a JSON object (CUR 2.0 CSV writes `resource_tags` so: an
/// empty cell or `{}` is untagged; text that is not a JSON object is a bad value naming the column).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TagValue {
    signature: Signature,
}

impl TagValue {
    fn new() -> Self {
        Self { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

fn clean_tag(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// Separates the column name from the key in the label of a JSON-text tag lookup.
pub const JSON_KEY_SEPARATOR: char = '\u{1f}';

/// `key` of each row's JSON object in a text column (`column` names it in errors).
fn json_lookup(texts: &ArrayRef, column: &str, key: &str) -> DfResult<ArrayRef> {
    let mut out = StringBuilder::with_capacity(texts.len(), texts.len() * 8);
    for_each_str(texts, |_, v| {
        let text = v.map(str::trim).unwrap_or_default();
        if text.is_empty() {
            out.append_null();
            return Ok(());
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| bad_value(column, text.chars().take(80).collect::<String>(), "a JSON object of tags"))?;
        match object.get(key) {
            Some(serde_json::Value::String(s)) => out.append_option(clean_tag(Some(s))),
            Some(serde_json::Value::Null) | None => out.append_null(),
            Some(other) => out.append_option(clean_tag(Some(&other.to_string()))),
        }
        Ok(())
    })?;
    Ok(Arc::new(out.finish()))
}

/// `key` of each row's map (trimmed; blank = NULL), as a text array.
pub(crate) fn map_lookup(map: &MapArray, key: &str) -> DfResult<ArrayRef> {
    let keys = cast(map.keys(), &DataType::Utf8)?;
    let values = cast(map.values(), &DataType::Utf8)?;
    let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
    let offsets = map.value_offsets();
    let mut out = StringBuilder::with_capacity(map.len(), map.len() * 8);
    for row in 0..map.len() {
        let mut found = None;
        if map.is_valid(row) {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            for i in start..end {
                if keys.is_valid(i) && keys.value(i) == key {
                    found = clean_tag(values.is_valid(i).then(|| values.value(i)));
                    break;
                }
            }
        }
        out.append_option(found);
    }
    Ok(Arc::new(out.finish()))
}

impl ScalarUDFImpl for TagValue {
    fn name(&self) -> &str {
        "curflow_tag"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = first_array(&args)?;
        if args.args.len() >= 2 {
            // (map, 'key') pairs, first non-NULL wins: resource_tags['user_x'], then tags[...].
            let mut result: Option<ArrayRef> = None;
            for pair in 0..args.args.len() / 2 {
                let map = args.args[pair * 2].to_array(args.number_rows)?;
                let label = column_label(&args, pair * 2 + 1);
                let found = match map.data_type() {
                    DataType::Map(..) => map_lookup(map.as_map(), &label)?,
                    _ => {
                        // JSON text: the label is `column<US>key`, so errors name the real column.
                        let (column, key) = label.split_once(JSON_KEY_SEPARATOR).unwrap_or(("tags", &label));
                        json_lookup(&map, column, key)?
                    }
                };
                result = Some(match result {
                    None => found,
                    Some(prev) => {
                        let (prev, found) = (prev.as_string::<i32>(), found.as_string::<i32>());
                        let merged: arrow::array::StringArray =
                            prev.iter().zip(found.iter()).map(|(a, b)| a.or(b)).collect();
                        Arc::new(merged)
                    }
                });
            }
            return result
                .map(ColumnarValue::Array)
                .ok_or_else(|| DataFusionError::Internal("curflow_tag(map) needs a key".into()));
        }
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 8);
        for_each_str(&array, |_, v| {
            out.append_option(clean_tag(v));
            Ok(())
        })?;
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

// ---------------------------------------------------------------------------------------------

/// `curflow_kind(line_item_type)`: the [`LineItemKind`] code, so the measure functions match an
/// integer instead of re-reading strings four times per row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct KindCode {
    signature: Signature,
}

impl KindCode {
    fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for KindCode {
    fn name(&self) -> &str {
        "curflow_kind"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = first_array(&args)?;
        let mut codes = Vec::with_capacity(array.len());
        if let DataType::Dictionary(..) = array.data_type() {
            // Classify each distinct value once.
            let dict = array.as_any_dictionary();
            let mut value_codes = Vec::new();
            for_each_str(dict.values(), |_, v| {
                value_codes.push(LineItemKind::from_type_name(v.unwrap_or("")) as u8);
                Ok(())
            })?;
            for key in dict.normalized_keys() {
                codes.push(value_codes.get(key).copied().unwrap_or(0));
            }
        } else {
            for_each_str(&array, |_, v| {
                codes.push(LineItemKind::from_type_name(v.unwrap_or("")) as u8);
                Ok(())
            })?;
        }
        Ok(ColumnarValue::Array(Arc::new(UInt8Array::from(codes))))
    }
}

// ---------------------------------------------------------------------------------------------

/// `curflow_non_empty(x)`: true when a text value is present and not blank. The reference SQL
/// writes `reservation_reservation_a_r_n <> ''`, which is NULL (falsy) for NULL ARNs: we treat
/// NULL and `''` alike, explicitly.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NonEmpty {
    signature: Signature,
}

impl NonEmpty {
    fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for NonEmpty {
    fn name(&self) -> &str {
        "curflow_non_empty"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = first_array(&args)?;
        let mut out = Vec::with_capacity(array.len());
        for_each_str(&array, |_, v| {
            out.push(Some(clean_tag(v).is_some()));
            Ok(())
        })?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(out))))
    }
}

// ---------------------------------------------------------------------------------------------

/// Number and order of the arguments of the measure functions.
pub const MEASURE_ARGS: usize = 12;

/// `curflow_<measure>(kind, has_ri_arn, unblended, net_unblended, sp_effective_cost,
/// sp_total_commitment, sp_used_commitment, sp_amortized_upfront, ri_effective_cost,
/// ri_unused_amortized_upfront, ri_unused_recurring, ri_amortized_upfront)`: one cost measure per
/// row, by [`curflow_model::measures`]. Money arguments are `Decimal128(38, 12)`; NULL counts as 0.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MeasureUdf {
    measure: Measure,
    name: String,
    signature: Signature,
}

impl MeasureUdf {
    fn new(measure: Measure) -> Self {
        Self {
            measure,
            name: format!("curflow_{}", measure.name()),
            signature: Signature::any(MEASURE_ARGS, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MeasureUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(money_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if arrays.len() != MEASURE_ARGS {
            return Err(DataFusionError::Internal(format!("{} takes {MEASURE_ARGS} arguments", self.name)));
        }
        let kinds = arrays[0].as_primitive::<arrow::datatypes::UInt8Type>();
        let arn = arrays[1].as_boolean();
        let money: Vec<&Decimal128Array> = arrays[2..].iter().map(|a| a.as_primitive::<Decimal128Type>()).collect();
        let at = |m: &Decimal128Array, i: usize| if m.is_valid(i) { m.value(i) } else { 0 };
        let mut out = Vec::with_capacity(kinds.len());
        for i in 0..kinds.len() {
            let row = RowInputs {
                kind: LineItemKind::from_code(kinds.value(i)),
                has_reservation_arn: arn.is_valid(i) && arn.value(i),
                unblended: at(money[0], i),
                net_unblended: money[1].is_valid(i).then(|| money[1].value(i)),
                commitments: CommitmentAmounts {
                    sp_effective_cost: at(money[2], i),
                    sp_total_commitment_to_date: at(money[3], i),
                    sp_used_commitment: at(money[4], i),
                    sp_amortized_upfront_commitment: at(money[5], i),
                    ri_effective_cost: at(money[6], i),
                    ri_unused_amortized_upfront_fee: at(money[7], i),
                    ri_unused_recurring_fee: at(money[8], i),
                    ri_amortized_upfront_fee: at(money[9], i),
                },
            };
            out.push(self.measure.eval(&row));
        }
        let array = Decimal128Array::from(out).with_precision_and_scale(DECIMAL_PRECISION, MONEY_SCALE as i8)?;
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_text_in_cur_spellings_gives_the_utc_day() {
        let d = parse_day("2023-11-05T04:00:00.000Z").unwrap();
        assert_eq!(parse_day("2023-11-05T04:00:00Z"), Some(d));
        assert_eq!(parse_day("2023-11-05 23:59:59"), Some(d));
        assert_eq!(parse_day("2023-11-05"), Some(d));
        assert_eq!(parse_day("2023-11-05T01:00:00+02:00"), Some(d - 1), "offsets are converted to UTC");
        assert_eq!(parse_day("2023-02-01T30:00:00Z"), None, "hour 30 (a real FOCUS spec sample) is rejected");
        assert_eq!(parse_day("yesterday"), None);
    }

    #[test]
    fn day_numbers_floor_before_the_epoch() {
        assert_eq!(day_of(-1, MS_PER_DAY).unwrap(), -1);
        assert_eq!(day_of(MS_PER_DAY, MS_PER_DAY).unwrap(), 1);
    }
}
