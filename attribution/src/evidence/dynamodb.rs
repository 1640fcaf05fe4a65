//! Amazon DynamoDB evidence: read and write units per tenant per UTC day, and a storage proxy.
//!
//! The application logs each request's `ConsumedCapacity` (returned with `ReturnConsumedCapacity = TOTAL |
//! INDEXES`) together with the tenant (attribution-and-style.md §B.7 item 9), one JSON line per request:
//!
//! ```json
//! {"timestamp":"2026-10-03T12:00:00Z","accountant_id":"acct-1","operation":"Query",
//!  "ConsumedCapacity":{"TableName":"app","CapacityUnits":1.5}}
//! ```
//!
//! `ConsumedCapacity` may be one object or a list (batch operations, one entry per table), under
//! `ConsumedCapacity`, `consumedCapacity` or `consumed_capacity`, at top level or in a `message` object.
//! `ReadCapacityUnits` / `WriteCapacityUnits` are used when present; with only `CapacityUnits` (mode
//! `TOTAL`), the line's `operation` (`GetItem`, `Query`, `Scan`, `BatchGetItem`, `TransactGetItems` read;
//! `PutItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem`, `TransactWriteItems` write; any case, `_`
//! ignored) says which. Lines without a tenant are recorded under `UNATTRIBUTED`.
//!
//! The storage proxy of a tenant on a day is its cumulative write units from the first day of the evidence
//! through that day: table storage grows with writes, and no per-tenant item size is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use memchr::memmem;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::json::{self, Object, Raw, TenantKeys};
use super::reader::{Records, read_records};
use super::time::{json_timestamp, split_message};
use super::{ErrorBudget, ParseError, Result, SourceReport};
use crate::driver::{Driver, DriverTotals};
use crate::money::exact_add;
use crate::tenant::TenantId;

const CC_KEYS: [&str; 3] = ["ConsumedCapacity", "consumedCapacity", "consumed_capacity"];

/// One table's consumed capacity in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityEntry {
    pub table: Option<String>,
    pub read_units: Decimal,
    pub write_units: Decimal,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityRecord {
    /// `None` when the line carries no tenant (recorded under `UNATTRIBUTED`).
    pub tenant: Option<TenantId>,
    pub time: Option<DateTime<Utc>>,
    pub entries: Vec<CapacityEntry>,
}

/// Parses DynamoDB capacity log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamoParser {
    tenant_keys: TenantKeys,
}

impl DynamoParser {
    /// `tenant_keys`: JSON keys holding the tenant id, in order of preference (none: `accountant_id`).
    pub fn new(tenant_keys: Vec<String>) -> Self {
        Self { tenant_keys: TenantKeys::new(tenant_keys) }
    }

    /// `Ok(None)` for lines without `ConsumedCapacity`.
    pub fn parse_line(&self, line: &str) -> Result<Option<CapacityRecord>, ParseError> {
        // Every key of CC_KEYS contains "onsumed"; a line without it has no body with one.
        static CONSUMED: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("onsumed"));
        if CONSUMED.find(line.as_bytes()).is_none() {
            return Ok(None);
        }
        let m = split_message(line);
        if !m.body.starts_with('{') || !CC_KEYS.iter().any(|k| m.body.contains(k)) {
            return Ok(None);
        }
        let top = Object::parse(m.body)?;
        let inner = match top.get("message") {
            Some(raw) if raw.get().starts_with('{') => top.object("message", "message")?,
            _ => None,
        };
        let find = |keys: &[&str]| top.get_any(keys).or_else(|| inner.as_ref().and_then(|o| o.get_any(keys)));
        let Some((cc, _)) = find(&CC_KEYS) else { return Ok(None) };
        let tenant = self.tenant_keys.tenant(|key| find(&[key]).map(|(raw, _)| raw))?;
        let operation = match find(&["operation", "Operation", "op"]) {
            Some((raw, _)) => Some(json::string(raw, "operation")?),
            None => None,
        };
        let time = match find(&["timestamp", "time", "@timestamp"]) {
            Some((raw, _)) => Some(json_timestamp(raw, "timestamp")?),
            None => m.time,
        };
        let raw_entries: Vec<Raw<'_>> =
            if cc.get().starts_with('[') { json::array(cc, "ConsumedCapacity")? } else { vec![cc] };
        let entries = raw_entries.into_iter().map(|e| entry(e, operation.as_deref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(CapacityRecord { tenant, time, entries }))
    }
}

fn entry(raw: Raw<'_>, operation: Option<&str>) -> Result<CapacityEntry, ParseError> {
    let o = Object::from_raw(raw, "ConsumedCapacity")?;
    let table = match o.get("TableName") {
        Some(t) => Some(json::string(t, "TableName")?),
        None => None,
    };
    let num = |k: &str| -> Result<Option<Decimal>, ParseError> {
        o.get(k)
            .map(|raw| {
                let v = json::number(raw, k)?;
                if v.is_sign_negative() && !v.is_zero() {
                    Err(ParseError::bad(k, format!("negative value {v}")))
                } else {
                    Ok(v)
                }
            })
            .transpose()
    };
    let (r, w) = (num("ReadCapacityUnits")?, num("WriteCapacityUnits")?);
    if r.is_some() || w.is_some() {
        return Ok(CapacityEntry { table, read_units: r.unwrap_or_default(), write_units: w.unwrap_or_default() });
    }
    let c = num("CapacityUnits")?.ok_or_else(|| ParseError::missing("ConsumedCapacity.CapacityUnits"))?;
    match operation.map(classify) {
        Some(Some(Kind::Read)) => Ok(CapacityEntry { table, read_units: c, write_units: Decimal::ZERO }),
        Some(Some(Kind::Write)) => Ok(CapacityEntry { table, read_units: Decimal::ZERO, write_units: c }),
        _ => Err(ParseError::bad(
            "CapacityUnits",
            format!(
                "no ReadCapacityUnits/WriteCapacityUnits and operation {:?} is not a known read or write",
                operation.unwrap_or("(none)")
            ),
        )),
    }
}

enum Kind {
    Read,
    Write,
}

fn classify(op: &str) -> Option<Kind> {
    let norm: String = op.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
    match norm.as_str() {
        "getitem" | "batchgetitem" | "query" | "scan" | "transactgetitems" => Some(Kind::Read),
        "putitem" | "updateitem" | "deleteitem" | "batchwriteitem" | "transactwriteitems" => Some(Kind::Write),
        _ => None,
    }
}

/// Options of [`DynamoAggregator`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DynamoConfig {
    /// JSON keys holding the tenant id (default `["accountant_id"]` when empty).
    pub tenant_keys: Vec<String>,
    /// Only count these tables (names as logged); `None`: all tables. Entries without a table name are
    /// counted only when this is `None`.
    pub tables: Option<BTreeSet<String>>,
}

/// Counters of the DynamoDB aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DynamoStats {
    pub requests: u64,
    pub without_tenant: u64,
    pub other_tables: u64,
    pub without_day: u64,
}

/// Streams DynamoDB capacity logs into driver totals. Memory: the totals only.
#[derive(Debug)]
pub struct DynamoAggregator {
    parser: DynamoParser,
    tables: Option<BTreeSet<String>>,
    totals: DriverTotals,
    stats: DynamoStats,
}

impl DynamoAggregator {
    /// The line parser (cloned onto the threads of a parallel read).
    pub(crate) fn parser(&self) -> &DynamoParser {
        &self.parser
    }

    pub fn new(config: DynamoConfig) -> Self {
        Self {
            parser: DynamoParser::new(config.tenant_keys),
            tables: config.tables,
            totals: DriverTotals::new(),
            stats: DynamoStats::default(),
        }
    }

    /// Reads one source.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        read_records(self, source_name, reader, budget)
    }

    /// Adds one parsed record. `Err` only when a total overflows exact arithmetic.
    pub fn push(&mut self, rec: CapacityRecord) -> Result<(), String> {
        self.stats.requests += 1;
        let Some(day) = rec.time.map(|t| t.date_naive()) else {
            self.stats.without_day += 1;
            return Ok(());
        };
        let tenant = rec.tenant.unwrap_or_else(|| {
            self.stats.without_tenant += 1;
            TenantId::unattributed()
        });
        for e in rec.entries {
            if let Some(tables) = &self.tables
                && !e.table.as_ref().is_some_and(|t| tables.contains(t))
            {
                self.stats.other_tables += 1;
                continue;
            }
            for (driver, q) in [(Driver::DynamoReadUnits, e.read_units), (Driver::DynamoWriteUnits, e.write_units)] {
                if !q.is_zero() {
                    self.totals.add(driver, day, &tenant, q).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Adds the storage proxy (cumulative write units) and returns the totals.
    pub fn finish(self) -> Result<(DriverTotals, DynamoStats), String> {
        let mut totals = self.totals;
        let mut days: BTreeSet<NaiveDate> = BTreeSet::new();
        let mut writes: BTreeMap<NaiveDate, BTreeMap<TenantId, Decimal>> = BTreeMap::new();
        for (driver, day, tenant, q) in totals.iter() {
            days.insert(day);
            if driver == Driver::DynamoWriteUnits {
                writes.entry(day).or_default().insert(tenant.clone(), q);
            }
        }
        let mut cumulative: BTreeMap<TenantId, Decimal> = BTreeMap::new();
        for day in days {
            for (tenant, q) in writes.remove(&day).unwrap_or_default() {
                let slot = cumulative.entry(tenant).or_insert(Decimal::ZERO);
                *slot = exact_add(*slot, q).ok_or("storage proxy overflows")?;
            }
            for (tenant, q) in &cumulative {
                if !q.is_zero() {
                    totals.add(Driver::DynamoStorageProxy, day, tenant, *q).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok((totals, self.stats))
    }
}

impl Records for DynamoAggregator {
    type Record = CapacityRecord;

    fn parse(&self, text: &str) -> Result<Option<CapacityRecord>, ParseError> {
        self.parser.parse_line(text)
    }

    fn add(&mut self, record: CapacityRecord) -> Result<(), String> {
        self.push(record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn parses_shapes() {
        let p = DynamoParser::default();
        let r = p
            .parse_line(r#"{"timestamp":"2026-10-03T12:00:00Z","accountant_id":"a","operation":"Query","ConsumedCapacity":{"TableName":"app","CapacityUnits":1.5}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            r.entries,
            vec![CapacityEntry {
                table: Some("app".into()),
                read_units: Decimal::new(15, 1),
                write_units: Decimal::ZERO
            }]
        );
        let r = p
            .parse_line(r#"{"timestamp":"2026-10-03T12:00:00Z","accountant_id":"a","ConsumedCapacity":[{"TableName":"x","CapacityUnits":3,"ReadCapacityUnits":1,"WriteCapacityUnits":2},{"TableName":"y","WriteCapacityUnits":"0.5"}]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[1].write_units, Decimal::new(5, 1));
        let r = p
            .parse_line(r#"{"message":{"operation":"put_item","consumed_capacity":{"CapacityUnits":1}}}"#)
            .unwrap()
            .unwrap();
        assert_eq!((r.tenant, r.entries[0].write_units), (None, Decimal::ONE));
        assert_eq!(p.parse_line(r#"{"accountant_id":"a","msg":"hello"}"#).unwrap(), None);
        for bad in [
            r#"{"accountant_id":"a","ConsumedCapacity":{"CapacityUnits":1}}"#,
            r#"{"accountant_id":"a","operation":"ListTables","ConsumedCapacity":{"CapacityUnits":1}}"#,
            r#"{"accountant_id":"a","ConsumedCapacity":{"TableName":"t"}}"#,
            r#"{"accountant_id":"a","ConsumedCapacity":{"ReadCapacityUnits":-1}}"#,
            r#"{"accountant_id":"a","timestamp":"soon","ConsumedCapacity":{"ReadCapacityUnits":1}}"#,
        ] {
            assert!(p.parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aggregates_with_storage_proxy_and_table_filter() {
        let mut a =
            DynamoAggregator::new(DynamoConfig { tables: Some(["app".to_string()].into()), ..DynamoConfig::default() });
        let lines = [
            r#"{"timestamp":"2026-10-01T01:00:00Z","accountant_id":"a","operation":"PutItem","ConsumedCapacity":{"TableName":"app","CapacityUnits":2}}"#,
            r#"{"timestamp":"2026-10-01T02:00:00Z","accountant_id":"b","operation":"GetItem","ConsumedCapacity":{"TableName":"app","CapacityUnits":0.5}}"#,
            r#"{"timestamp":"2026-10-01T02:00:00Z","accountant_id":"b","operation":"PutItem","ConsumedCapacity":{"TableName":"other","CapacityUnits":9}}"#,
            r#"{"timestamp":"2026-10-02T02:00:00Z","accountant_id":"b","operation":"PutItem","ConsumedCapacity":{"TableName":"app","CapacityUnits":1}}"#,
        ];
        let r = a.read("d.log", lines.join("\n").as_bytes(), &ErrorBudget::default()).unwrap();
        assert_eq!((r.records, r.malformed), (4, 0));
        let (t, stats) = a.finish().unwrap();
        assert_eq!(stats.other_tables, 1);
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let day2 = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
        let proxy = t.day(Driver::DynamoStorageProxy, day2).unwrap();
        assert_eq!(proxy[&TenantId::new("a").unwrap()], d("2"));
        assert_eq!(proxy[&TenantId::new("b").unwrap()], d("1"));
        let day1 = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(t.day(Driver::DynamoReadUnits, day1).unwrap()[&TenantId::new("b").unwrap()], d("0.5"));
    }
}
