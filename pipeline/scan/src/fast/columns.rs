//! Reading the non-text columns of a batch on the fast path: money and quantities to exact
//! scaled integers, timestamps to days. Every reader names the column in its errors.

use std::path::Path;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};

use super::Slot;
use crate::error::{Error, Result};
use curflow_model::money::{MONEY_SCALE, f64_to_scaled, f64s_to_scaled};

pub(super) fn bad_value(path: &Path, column: &str, value: String, expected: &str) -> Error {
    Error::BadValue {
        path: path.to_path_buf(),
        line: None,
        column: column.to_string(),
        value,
        expected: expected.into(),
    }
}

/// Magnitude (exclusive) a `double` at `scale` may have: 10^28 scaled units (see
/// [`crate::SCALED_LIMIT`]); NaN and infinities fail the comparison too.
fn double_limit(scale: u32) -> f64 {
    10f64.powi(28 - scale as i32)
}

/// The first valid value of `array` that is not a finite amount below [`double_limit`], as an error.
fn out_of_range(path: &Path, slot: &Slot, array: &Float64Array, scale: u32) -> Result<()> {
    let limit = double_limit(scale);
    let bad = (0..array.len()).find(|&i| {
        let v = array.value(i);
        array.is_valid(i) && (v.abs() >= limit || v.is_nan() || f64_to_scaled(v, scale).is_none())
    });
    match bad {
        Some(i) => Err(bad_value(path, &slot.name, array.value(i).to_string(), &crate::amount_limit_text(scale))),
        None => Ok(()),
    }
}

/// Converts a `double` column to scaled integers (NULL → 0) into `out`; returns its validity.
/// A value that is not finite, or too large for an exact total ([`double_limit`]), is an error.
pub(super) fn money_column(
    path: &Path,
    slot: &Slot,
    batch: &RecordBatch,
    scale: u32,
    out: &mut Vec<i128>,
) -> Result<Option<NullBuffer>> {
    out.clear();
    let array = batch.column(slot.index).as_primitive::<Float64Type>();
    let converted = f64s_to_scaled(array.values(), scale, out);
    // A fold without early exit vectorises; the slow search runs only when something is wrong.
    let limit = double_limit(scale);
    let in_range = array.values().iter().fold(true, |ok, v| ok & (v.abs() < limit));
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    if !converted || !in_range {
        // Only a valid (non-NULL) value that cannot be converted is an error.
        out_of_range(path, slot, array, scale)?;
    }
    if let Some(nulls) = nulls {
        for (slot, valid) in out.iter_mut().zip(nulls.iter()) {
            if !valid {
                *slot = 0;
            }
        }
    }
    Ok(nulls.cloned())
}

/// Checks that every non-NULL value of a `double` column converts (finite and below
/// [`double_limit`]), without converting: the commitment columns are converted per row, and only
/// on the rows whose kind reads them ([`commitments_read`]), yet a bad value anywhere is still an
/// error, as in the generic plan.
pub(super) fn check_money_column<'a>(path: &Path, slot: &Slot, batch: &'a RecordBatch) -> Result<&'a Float64Array> {
    let array = batch.column(slot.index).as_primitive::<Float64Type>();
    let limit = double_limit(MONEY_SCALE);
    if !array.values().iter().fold(true, |ok, v| ok & (v.abs() < limit)) {
        out_of_range(path, slot, array, MONEY_SCALE)?;
    }
    Ok(array)
}

/// Days since the epoch per row (`None` for NULL), UTC, as `curflow_date` computes them.
pub(super) fn day_column(path: &Path, slot: &Slot, batch: &RecordBatch, out: &mut Vec<Option<i32>>) -> Result<()> {
    out.clear();
    let array = batch.column(slot.index);
    let per_day: i64 = match array.data_type() {
        DataType::Date32 => {
            out.extend(array.as_primitive::<Date32Type>().iter());
            return Ok(());
        }
        DataType::Timestamp(TimeUnit::Second, _) => 86_400,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 86_400_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 86_400_000_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 86_400_000_000_000,
        other => return Err(Error::Internal(format!("{}: unexpected date type {other}", slot.name))),
    };
    let values: &[i64] = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array.as_primitive::<TimestampSecondType>().values(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array.as_primitive::<TimestampMillisecondType>().values(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array.as_primitive::<TimestampMicrosecondType>().values(),
        _ => array.as_primitive::<TimestampNanosecondType>().values(),
    };
    // Timestamps repeat (hourly lines of one day): divide only when the value changes.
    let (mut last, mut last_day) = (None, 0i32);
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    for (i, &v) in values.iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            out.push(None);
            continue;
        }
        if last != Some(v) {
            last_day = i32::try_from(v.div_euclid(per_day)).map_err(|_| {
                bad_value(path, &slot.name, v.to_string(), "a timestamp within years -5877641..5881580")
            })?;
            last = Some(v);
        }
        out.push(Some(last_day));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow::array::ArrayRef;

    use super::*;

    #[test]
    fn doubles_that_are_not_finite_name_the_column() {
        let batch = RecordBatch::try_from_iter(vec![(
            "line_item_unblended_cost",
            Arc::new(Float64Array::from(vec![1.5, f64::NAN])) as ArrayRef,
        )])
        .unwrap();
        let slot = Slot { name: "line_item_unblended_cost".into(), index: 0 };
        let err = money_column(Path::new("f.parquet"), &slot, &batch, MONEY_SCALE, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line_item_unblended_cost"), "{err}");
    }
}
