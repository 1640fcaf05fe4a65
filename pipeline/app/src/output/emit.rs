//! The one emitter: every command that prints data builds [`Rows`] (named columns, exact values)
//! and prints them with [`render`] in the format the user chose.
//!
//! - `table`: for people; the command formats it (rounded amounts, totals, notes) with
//!   [`super::table::Table`].
//! - `csv`: a header row of the column names, then one line per row; exact values.
//! - `json`: one document, an object: the command's metadata (period, store, totals, ...) first,
//!   then `"rows"`: an array of objects keyed by the column names, in column order.
//! - `jsonl`: one object per row, the same keys, nothing else.
//!
//! Values keep one type in every format: decimals are strings (exact, never floats), counts are
//! numbers, flags are booleans, absent values are empty in CSV and `null` in JSON, lists are arrays
//! in JSON and `;`-joined in CSV.

use rust_decimal::Decimal;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// `--format` of every command that prints data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// Aligned columns for reading (amounts rounded).
    #[default]
    Table,
    /// A header row, then one row per line; exact amounts.
    Csv,
    /// One JSON document: metadata and a `rows` array; exact amounts as strings.
    Json,
    /// JSON Lines: one object per row, the same keys as the CSV header.
    Jsonl,
}

/// One cell of a data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Dec(Decimal),
    Bool(bool),
    Null,
    List(Vec<String>),
}

impl Value {
    /// The JSON form: decimals as exact strings.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Value::Text(s) => s.clone().into(),
            Value::Int(i) => (*i).into(),
            Value::Dec(d) => d.to_string().into(),
            Value::Bool(b) => (*b).into(),
            Value::Null => serde_json::Value::Null,
            Value::List(l) => l.clone().into(),
        }
    }

    /// A value from JSON (the serialized form of a record's field).
    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Text(n.to_string())),
            serde_json::Value::String(s) => Value::Text(s),
            serde_json::Value::Array(a) => Value::List(
                a.into_iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            other @ serde_json::Value::Object(_) => Value::Text(other.to_string()),
        }
    }

    /// The CSV (and plain text) form.
    pub fn text(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Dec(d) => d.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::List(l) => l.join(";"),
        }
    }
}

impl Value {
    /// The CSV cell: [`Value::text`], with text that a spreadsheet would run as a formula
    /// neutralised. A tenant id, service or resource name comes from cost-allocation tags anyone
    /// with tagging rights can set, so a cell starting with `=`, `+`, `-`, `@`, tab or CR is
    /// prefixed with `'` (OWASP "CSV injection"); numbers (decimals, counts) are never touched, so
    /// `-12.5` stays a number, also when it arrives as text (records serialized through serde
    /// carry their decimals as strings: a credit in an expense export must stay `-11.01`).
    pub fn csv_cell(&self) -> String {
        let text = self.text();
        match self {
            Value::Text(_) | Value::List(_)
                if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_negative_number(&text) =>
            {
                format!("'{text}")
            }
            _ => text,
        }
    }
}

/// `-` then digits with at most one `.` between digits: a number no spreadsheet evaluates as a
/// formula.
fn is_plain_negative_number(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('-') else { return false };
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && parts.next().is_none_or(all_digits)
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<Decimal> for Value {
    fn from(d: Decimal) -> Self {
        Value::Dec(d)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        i64::try_from(n).map(Value::Int).unwrap_or_else(|_| Value::Text(n.to_string()))
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::from(n as u64)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(i64::from(n))
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Named columns and rows of exact values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Rows { columns: columns.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Rows from serializable records, one per item, in the order of `columns`, which must name
    /// every field the records serialize (a new field must be given its place in the documented
    /// order, so the column order never depends on a map's iteration order).
    pub fn from_serialized<T: Serialize>(columns: &[&str], items: &[T]) -> Result<Rows> {
        let mut rows = Rows::new(columns.iter().copied());
        for item in items {
            let v = serde_json::to_value(item).map_err(|e| Error::Internal(format!("output row: {e}")))?;
            let serde_json::Value::Object(mut fields) = v else {
                return Err(Error::Internal("output row: a record did not serialize as an object".into()));
            };
            let row: Vec<Value> =
                columns.iter().map(|c| fields.remove(*c).map(Value::from_json).unwrap_or(Value::Null)).collect();
            if let Some(extra) = fields.keys().next() {
                return Err(Error::Internal(format!("output row: field {extra:?} has no column")));
            }
            rows.push(row)?;
        }
        Ok(rows)
    }

    /// Appends a row; it must have one value per column.
    pub fn push(&mut self, row: Vec<Value>) -> Result<()> {
        if row.len() != self.columns.len() {
            return Err(Error::Internal(format!(
                "output row has {} values for {} columns ({})",
                row.len(),
                self.columns.len(),
                self.columns.join(",")
            )));
        }
        self.rows.push(row);
        Ok(())
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column's values (for tests and table views).
    pub fn column(&self, name: &str) -> Option<impl Iterator<Item = &Value>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(move |r| &r[i]))
    }

    pub fn to_csv(&self) -> Result<String> {
        let err = |e: &dyn std::fmt::Display| Error::Internal(format!("csv output: {e}"));
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns).map_err(|e| err(&e))?;
        for r in &self.rows {
            w.write_record(r.iter().map(Value::csv_cell)).map_err(|e| err(&e))?;
        }
        let bytes = w.into_inner().map_err(|e| err(&e))?;
        String::from_utf8(bytes).map_err(|e| err(&e))
    }

    pub fn to_jsonl(&self) -> Result<String> {
        let mut out = String::new();
        for r in &self.rows {
            out.push_str(&to_json(&RowJson { columns: &self.columns, values: r }, false)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// One document: `meta` entries in order, then `"rows"`.
    pub fn to_json(&self, meta: &Meta) -> Result<String> {
        Ok(to_json(&Document { meta, rows: self }, true)? + "\n")
    }
}

/// A metadata value of a JSON document: plain JSON, or rows (objects in column order).
#[derive(Debug, Clone)]
pub enum MetaValue {
    Json(serde_json::Value),
    Rows(Rows),
}

impl<T: Into<serde_json::Value>> From<T> for MetaValue {
    fn from(v: T) -> Self {
        MetaValue::Json(v.into())
    }
}

/// The metadata of a JSON document, in output order.
pub type Meta = Vec<(&'static str, MetaValue)>;

/// Renders `rows` in `format`; `table` builds the text for people only when asked for.
pub fn render(
    format: OutputFormat,
    rows: &Rows,
    meta: &Meta,
    table: impl FnOnce() -> Result<String>,
) -> Result<String> {
    match format {
        OutputFormat::Table => table(),
        OutputFormat::Csv => rows.to_csv(),
        OutputFormat::Json => rows.to_json(meta),
        OutputFormat::Jsonl => rows.to_jsonl(),
    }
}

fn to_json<T: Serialize>(v: &T, pretty: bool) -> Result<String> {
    let r = if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
    r.map_err(|e| Error::Internal(format!("json output: {e}")))
}

struct RowJson<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.columns.len()))?;
        for (c, v) in self.columns.iter().zip(self.values) {
            m.serialize_entry(c, &v.json())?;
        }
        m.end()
    }
}

impl Serialize for Rows {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for r in &self.rows {
            seq.serialize_element(&RowJson { columns: &self.columns, values: r })?;
        }
        seq.end()
    }
}

impl Serialize for MetaValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            MetaValue::Json(v) => v.serialize(s),
            MetaValue::Rows(r) => r.serialize(s),
        }
    }
}

struct Document<'a> {
    meta: &'a Meta,
    rows: &'a Rows,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.meta.len() + 1))?;
        for (k, v) in self.meta {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("rows", self.rows)?;
        m.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Rows {
        let mut r = Rows::new(["tenant", "cost", "lines", "note"]);
        r.push(vec!["b,c".into(), Decimal::new(1005, 3).into(), 2u64.into(), Value::Null]).unwrap();
        r
    }

    #[test]
    fn every_format_has_the_same_columns_in_order() {
        let r = sample();
        assert_eq!(r.to_csv().unwrap(), "tenant,cost,lines,note\n\"b,c\",1.005,2,\n");
        assert_eq!(r.to_jsonl().unwrap(), "{\"tenant\":\"b,c\",\"cost\":\"1.005\",\"lines\":2,\"note\":null}\n");
        let doc: serde_json::Value =
            serde_json::from_str(&r.to_json(&vec![("period", "2026-10".into())]).unwrap()).unwrap();
        assert_eq!(doc["period"], "2026-10");
        assert_eq!(doc["rows"][0]["cost"], "1.005");
        assert!(r.clone().push(vec![Value::Null]).is_err());
    }

    #[test]
    fn csv_neutralises_formulas_in_text_but_not_in_numbers() {
        let mut r = Rows::new(["tenant", "cost"]);
        for hostile in ["=HYPERLINK(\"http://x\")", "+1", "-acme", "@SUM(A1)", "\tx", "\rx", "ok-acme"] {
            r.push(vec![hostile.into(), Value::Dec(Decimal::new(-125, 1))]).unwrap();
        }
        let csv = r.to_csv().unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let cells: Vec<(String, String)> = reader
            .records()
            .map(|rec| rec.map(|rec| (rec[0].to_string(), rec[1].to_string())).unwrap_or_default())
            .collect();
        let tenants: Vec<&str> = cells.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tenants, ["'=HYPERLINK(\"http://x\")", "'+1", "'-acme", "'@SUM(A1)", "'\tx", "'\rx", "ok-acme"]);
        assert!(cells.iter().all(|(_, cost)| cost == "-12.5"), "{cells:?}");
    }

    #[test]
    fn a_negative_amount_serialized_as_text_stays_a_number_in_csv() {
        // Serde writes decimals as strings: a credit reaches the CSV as text.
        for (text, cell) in
            [("-11.01", "-11.01"), ("-3", "-3"), ("-1.2.3", "'-1.2.3"), ("-1-1", "'-1-1"), ("-.5", "'-.5")]
        {
            assert_eq!(Value::Text(text.into()).csv_cell(), cell, "{text}");
        }
    }
}
