//! Amazon S3 evidence: byte-hours and request counts per tenant prefix.
//!
//! * **S3 Inventory** (CSV, optionally gzip): one row per object version, columns as listed in the
//!   inventory manifest's `fileSchema` (e.g. `Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, …`),
//!   every field quoted, keys URL-encoded. Each object's `Size` counts for the tenant its key maps to; a
//!   daily snapshot gives `bytes × 24` byte-hours for its day (noncurrent versions are billed too, so every
//!   row counts; delete markers have no size).
//! * **Server access logs**: `owner bucket [time] ip requester request-id operation key "request-uri" …`.
//!   Each `REST.*` request counts for the tenant of its key (or of the `prefix=` of a bucket-level LIST);
//!   PUT/COPY/POST/LIST are tier 1, DELETE is free (counted only in `s3_requests`), the rest tier 2.
//!   Non-REST operations (lifecycle, batch) are not requests and are ignored.
//!
//! The [`PrefixMap`] maps (bucket, key) to a tenant by the longest configured prefix, or by a template
//! such as `clients/{tenant}/`. Objects and requests that map to no tenant are recorded under
//! `UNATTRIBUTED`, so their share of the bill stays unattributed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::reader::{LineError, Outcome, Records, read_lines, read_records};
use super::time::parse_timestamp;
use super::{ErrorBudget, EvidenceError, ParseError, Result, SourceReport};
use crate::driver::{Driver, DriverTotals};
use crate::tenant::TenantId;

/// Key prefix → tenant mapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixMap {
    /// Sorted by prefix length, longest first.
    prefixes: Vec<(Option<String>, String, TenantId)>,
    templates: Vec<(Option<String>, String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefixFile {
    #[serde(default)]
    prefix: Vec<RawPrefix>,
    #[serde(default)]
    template: Vec<RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefix {
    bucket: Option<String>,
    prefix: String,
    tenant: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    bucket: Option<String>,
    pattern: String,
}

impl PrefixMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys starting with `prefix` (in `bucket`, or any bucket) belong to `tenant`.
    pub fn add_prefix(&mut self, bucket: Option<&str>, prefix: &str, tenant: TenantId) {
        self.prefixes.push((bucket.map(str::to_owned), prefix.to_owned(), tenant));
        self.prefixes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.1.cmp(&b.1)));
    }

    /// A pattern with one `{tenant}` followed by a non-empty delimiter: `clients/{tenant}/` maps
    /// `clients/acme/x.pdf` to `acme`. Explicit prefixes win over templates.
    pub fn add_template(&mut self, bucket: Option<&str>, pattern: &str) -> Result<(), String> {
        let (before, after) =
            pattern.split_once("{tenant}").ok_or_else(|| format!("template {pattern:?} has no {{tenant}}"))?;
        if after.is_empty() || after.contains("{tenant}") {
            return Err(format!("template {pattern:?}: {{tenant}} must appear once and be followed by a delimiter"));
        }
        self.templates.push((bucket.map(str::to_owned), before.to_owned(), after.to_owned()));
        Ok(())
    }

    /// Reads `[[prefix]] bucket = "…" (optional), prefix = "…", tenant = "…"` and
    /// `[[template]] bucket = "…" (optional), pattern = "clients/{tenant}/"` tables.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, EvidenceError> {
        let err = |message: String| EvidenceError::Invalid { source_name: source_name.to_owned(), line: 0, message };
        let raw: RawPrefixFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut map = Self::new();
        for p in raw.prefix {
            let tenant = TenantId::new(p.tenant).map_err(|e| err(format!("prefix {:?}: {e}", p.prefix)))?;
            map.add_prefix(p.bucket.as_deref(), &p.prefix, tenant);
        }
        for t in raw.template {
            map.add_template(t.bucket.as_deref(), &t.pattern).map_err(err)?;
        }
        Ok(map)
    }

    /// The tenant of an object, if any (a template capture that is not a valid tenant id maps to none).
    pub fn tenant<'a>(&'a self, bucket: &str, key: &'a str) -> Option<Cow<'a, str>> {
        let in_bucket = |b: &Option<String>| b.as_deref().is_none_or(|b| b == bucket);
        if let Some((_, _, t)) = self.prefixes.iter().find(|(b, p, _)| in_bucket(b) && key.starts_with(p.as_str())) {
            return Some(Cow::Borrowed(t.as_str()));
        }
        for (b, before, after) in &self.templates {
            if !in_bucket(b) {
                continue;
            }
            if let Some(rest) = key.strip_prefix(before.as_str())
                && let Some(end) = rest.find(after.as_str())
                && TenantId::check(&rest[..end]).is_ok()
            {
                return Some(Cow::Borrowed(&rest[..end]));
            }
        }
        None
    }
}

/// Column positions of an inventory CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySchema {
    bucket: usize,
    key: usize,
    size: usize,
    columns: usize,
}

impl Default for InventorySchema {
    /// `Bucket, Key, Size`.
    fn default() -> Self {
        Self { bucket: 0, key: 1, size: 2, columns: 3 }
    }
}

impl InventorySchema {
    /// From the manifest's `fileSchema` (`"Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"`).
    pub fn from_file_schema(schema: &str) -> Result<Self, String> {
        let cols: Vec<&str> = schema.split(',').map(str::trim).collect();
        let find = |n: &str| {
            cols.iter()
                .position(|c| c.eq_ignore_ascii_case(n))
                .ok_or(format!("fileSchema has no {n} column: {schema:?}"))
        };
        Ok(Self { bucket: find("Bucket")?, key: find("Key")?, size: find("Size")?, columns: cols.len() })
    }
}

/// One inventory row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRow {
    pub bucket: String,
    /// URL-decoded.
    pub key: String,
    /// `None` for delete markers (empty size).
    pub size: Option<u64>,
}

/// Parses one inventory CSV line.
pub fn parse_inventory_line(line: &str, schema: &InventorySchema) -> Result<Option<InventoryRow>, ParseError> {
    CsvLine::new().parse_inventory(line, schema)
}

/// An RFC 4180 field splitter (quoted fields, `""` escapes) for one line at a time, with `csv-core`, the
/// parser of the `csv` crate. Evidence is read through the shared bounded line reader (line numbers,
/// UTF-8 checks, the error budget, truncated gzip), so the parser is fed lines rather than the file;
/// inventory keys are URL-encoded, so no field spans lines. Reused across lines: no allocation per row
/// once the buffers have grown to the longest line.
#[derive(Debug)]
struct CsvLine {
    parser: csv_core::Reader,
    /// Unquoted field bytes of the current line, and where each field ends in them.
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl CsvLine {
    /// `csv_core::Reader::new()`, not `Default`: the builder is what compiles the parser's DFA.
    fn new() -> Self {
        Self { parser: csv_core::Reader::new(), out: Vec::new(), ends: Vec::new() }
    }

    fn parse_inventory(&mut self, line: &str, schema: &InventorySchema) -> Result<Option<InventoryRow>, ParseError> {
        let fields = self.split(line)?;
        if fields.len() != schema.columns {
            return Err(ParseError::Invalid(format!("expected {} columns, got {}", schema.columns, fields.len())));
        }
        let size = fields[schema.size].trim();
        let size = if size.is_empty() {
            None
        } else {
            Some(size.parse::<u64>().map_err(|_| ParseError::bad("Size", format!("not a byte count: {size:?}")))?)
        };
        Ok(Some(InventoryRow { bucket: fields[schema.bucket].to_owned(), key: url_decode(fields[schema.key])?, size }))
    }

    fn split(&mut self, line: &str) -> Result<Vec<&str>, ParseError> {
        self.parser.reset();
        // Unquoting only removes bytes, and every field but the last ends at a delimiter: these sizes
        // always suffice, so `OutputFull` cannot happen.
        self.out.resize(line.len(), 0);
        self.ends.resize(line.len() + 1, 0);
        let (mut input, mut nout, mut nends) = (line.as_bytes(), 0, 0);
        loop {
            let (result, nin, o, e) = self.parser.read_record(input, &mut self.out[nout..], &mut self.ends[nends..]);
            input = &input[nin..];
            nout += o;
            nends += e;
            match result {
                // The whole line was consumed; the next call, with empty input, ends the record.
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
                csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull => {
                    return Err(ParseError::Invalid("CSV line does not fit its field buffer".into()));
                }
            }
        }
        let mut start = 0;
        let mut fields = Vec::with_capacity(nends);
        for &end in &self.ends[..nends] {
            // Valid UTF-8 in, only ASCII quotes removed: still valid; checked rather than assumed.
            let field = std::str::from_utf8(&self.out[start..end])
                .map_err(|_| ParseError::Invalid("CSV field is not UTF-8 after unquoting".into()))?;
            fields.push(field);
            start = end;
        }
        Ok(fields)
    }
}

/// Decodes a key as S3 writes it in inventories and access logs: `%XX` escapes and `+` for a space
/// (`application/x-www-form-urlencoded`), decoded by `percent-encoding`. `+` becomes a space first, so
/// an encoded plus (`%2B`) stays a plus. Stricter than a form decoder, which keeps a malformed escape as
/// written: S3 never writes one, so here it marks a damaged record.
fn url_decode(s: &str) -> Result<String, ParseError> {
    if !s.contains(['%', '+']) {
        return Ok(s.to_owned());
    }
    for (i, _) in s.match_indices('%') {
        let hex = s.get(i + 1..i + 3).ok_or_else(|| ParseError::bad("key", "truncated %-escape"))?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::bad("key", format!("bad %-escape %{hex}")));
        }
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ParseError::bad("key", "decodes to invalid UTF-8"))
}

/// Counters of the S3 aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct S3Stats {
    pub objects: u64,
    pub unmapped_objects: u64,
    pub unmapped_bytes: u64,
    pub requests: u64,
    pub unmapped_requests: u64,
}

/// Why an inventory object could not be counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The prefix map yields an invalid tenant id for this key (a malformed record).
    Tenant(ParseError),
    /// Exact arithmetic overflowed (fatal).
    Overflow(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tenant(e) => write!(f, "{e}"),
            Self::Overflow(m) => f.write_str(m),
        }
    }
}

/// Streams one daily inventory snapshot into byte-hours per tenant. Memory: one counter per tenant.
#[derive(Debug)]
pub struct S3InventoryAggregator<'m> {
    day: NaiveDate,
    schema: InventorySchema,
    map: &'m PrefixMap,
    bytes: BTreeMap<TenantId, u128>,
    stats: S3Stats,
    csv: CsvLine,
}

impl<'m> S3InventoryAggregator<'m> {
    /// `day`: the snapshot's UTC day (from the inventory manifest or its `dt=` folder).
    pub fn new(day: NaiveDate, schema: InventorySchema, map: &'m PrefixMap) -> Self {
        Self { day, schema, map, bytes: BTreeMap::new(), stats: S3Stats::default(), csv: CsvLine::new() }
    }

    /// Reads one inventory data file.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        read_lines(source_name, reader, budget, |line, text| {
            let Some(row) = self.csv.parse_inventory(text, &self.schema)? else { return Ok(Outcome::Ignored) };
            match self.push(&row.bucket, &row.key, row.size) {
                Ok(true) => Ok(Outcome::Record),
                Ok(false) => Ok(Outcome::Ignored),
                Err(PushError::Tenant(e)) => Err(LineError::Malformed(e)),
                Err(PushError::Overflow(message)) => Err(LineError::Fatal(Box::new(EvidenceError::Invalid {
                    source_name: source_name.into(),
                    line,
                    message,
                }))),
            }
        })
    }

    /// Adds one object (an inventory row from CSV or Parquet; keys already decoded). `Ok(false)` for a
    /// delete marker (no size), which is not billed.
    pub fn push(&mut self, bucket: &str, key: &str, size: Option<u64>) -> Result<bool, PushError> {
        let Some(size) = size else { return Ok(false) };
        self.stats.objects += 1;
        let tenant = match self.map.tenant(bucket, key) {
            Some(t) => t,
            None => {
                self.stats.unmapped_objects += 1;
                self.stats.unmapped_bytes = self.stats.unmapped_bytes.saturating_add(size);
                Cow::Borrowed(crate::tenant::UNATTRIBUTED)
            }
        };
        if !self.bytes.contains_key(tenant.as_ref()) {
            let id = if tenant == crate::tenant::UNATTRIBUTED {
                TenantId::unattributed()
            } else {
                TenantId::new(tenant.as_ref()).map_err(|e| PushError::Tenant(ParseError::from(e)))?
            };
            self.bytes.insert(id, 0);
        }
        let Some(slot) = self.bytes.get_mut(tenant.as_ref()) else {
            return Ok(false); // unreachable: inserted above
        };
        *slot = slot.checked_add(u128::from(size)).ok_or_else(|| PushError::Overflow("byte total overflows".into()))?;
        Ok(true)
    }

    /// Byte-hours (`bytes × 24`) per tenant for the snapshot's day.
    pub fn finish(self) -> Result<(DriverTotals, S3Stats), String> {
        let mut totals = DriverTotals::new();
        for (tenant, bytes) in self.bytes {
            let hours = bytes.checked_mul(24).ok_or("byte-hours overflow")?;
            let q = Decimal::try_from_i128_with_scale(i128::try_from(hours).map_err(|e| e.to_string())?, 0)
                .map_err(|e| e.to_string())?;
            totals.add(Driver::S3ByteHours, self.day, &tenant, q).map_err(|e| e.to_string())?;
        }
        Ok((totals, self.stats))
    }
}

/// S3 request pricing tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// PUT, COPY, POST, LIST.
    Tier1,
    /// GET, HEAD and the rest.
    Tier2,
    /// DELETE: free.
    Free,
}

/// One server access log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub bucket: String,
    pub time: DateTime<Utc>,
    pub operation: String,
    /// The object key, or the `prefix=` of a bucket-level request; URL-decoded.
    pub key: Option<String>,
    pub tier: Tier,
}

/// Parses one server access log line; `Ok(None)` for non-REST operations.
pub fn parse_access_line(line: &str) -> Result<Option<AccessRecord>, ParseError> {
    let f = split_access_fields(line)?;
    if f.len() < 9 {
        return Err(ParseError::Invalid(format!("expected at least 9 fields, got {}", f.len())));
    }
    let time = parse_timestamp(f[2]).ok_or_else(|| ParseError::bad("time", format!("unrecognised {:?}", f[2])))?;
    let operation = f[6];
    let mut parts = operation.split('.');
    if parts.next() != Some("REST") {
        return Ok(None);
    }
    let verb = parts.next().unwrap_or_default();
    let what = parts.next().unwrap_or_default();
    let tier = match verb {
        "PUT" | "POST" | "COPY" => Tier::Tier1,
        "GET" if matches!(what, "BUCKET" | "BUCKETVERSIONS" | "UPLOADS" | "UPLOAD") => Tier::Tier1,
        "DELETE" => Tier::Free,
        "" => return Err(ParseError::bad("operation", format!("{operation:?}"))),
        _ => Tier::Tier2,
    };
    let key = if f[7] != "-" {
        Some(url_decode(f[7])?)
    } else {
        // Bucket-level request: a LIST names its prefix in the query string.
        let uri = f[8].trim_matches('"');
        let query = uri.split_whitespace().nth(1).and_then(|p| p.split_once('?')).map(|(_, q)| q).unwrap_or_default();
        query.split('&').find_map(|kv| kv.strip_prefix("prefix=")).map(url_decode).transpose()?
    };
    Ok(Some(AccessRecord { bucket: f[1].to_owned(), time, operation: operation.to_owned(), key, tier }))
}

/// Space-separated fields; `[…]` and `"…"` (with `\"` escapes) are single fields.
fn split_access_fields(line: &str) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::with_capacity(26);
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        let close = match b[i] {
            b'[' => Some(b']'),
            b'"' => Some(b'"'),
            _ => None,
        };
        match close {
            Some(c) => {
                i += 1;
                while i < b.len() && !(b[i] == c && !(c == b'"' && b[i - 1] == b'\\')) {
                    i += 1;
                }
                if i == b.len() {
                    return Err(ParseError::Invalid("unterminated [ or \" field".into()));
                }
                i += 1;
            }
            None => {
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
            }
        }
        out.push(&line[start..i]);
    }
    Ok(out)
}

/// Streams server access logs into request counts per tenant and day. Memory: the totals only. Access
/// logs are best-effort and rarely duplicated; records are not deduplicated.
#[derive(Debug)]
pub struct S3AccessAggregator<'m> {
    map: &'m PrefixMap,
    totals: DriverTotals,
    stats: S3Stats,
}

impl<'m> S3AccessAggregator<'m> {
    pub fn new(map: &'m PrefixMap) -> Self {
        Self { map, totals: DriverTotals::new(), stats: S3Stats::default() }
    }

    /// Reads one access log file.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        read_records(self, source_name, reader, budget)
    }

    /// Adds one record.
    pub fn push(&mut self, rec: &AccessRecord) -> Result<(), String> {
        self.stats.requests += 1;
        let tenant = match rec.key.as_deref().and_then(|k| self.map.tenant(&rec.bucket, k)) {
            Some(t) => TenantId::new(t.into_owned()).map_err(|e| e.to_string())?,
            None => {
                self.stats.unmapped_requests += 1;
                TenantId::unattributed()
            }
        };
        let day = rec.time.date_naive();
        let mut add = |d| self.totals.add(d, day, &tenant, Decimal::ONE).map_err(|e| e.to_string());
        add(Driver::S3Requests)?;
        match rec.tier {
            Tier::Tier1 => add(Driver::S3Tier1Requests)?,
            Tier::Tier2 => add(Driver::S3Tier2Requests)?,
            Tier::Free => {}
        }
        Ok(())
    }

    pub fn finish(self) -> (DriverTotals, S3Stats) {
        (self.totals, self.stats)
    }
}

impl Records for S3AccessAggregator<'_> {
    type Record = AccessRecord;

    fn parse(&self, text: &str) -> Result<Option<AccessRecord>, ParseError> {
        parse_access_line(text)
    }

    fn add(&mut self, record: AccessRecord) -> Result<(), String> {
        self.push(&record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn map() -> PrefixMap {
        let mut m = PrefixMap::new();
        m.add_prefix(Some("docs"), "clients/big-co/", TenantId::new("acct-big").unwrap());
        m.add_template(None, "clients/{tenant}/").unwrap();
        m
    }

    #[test]
    fn prefix_map() {
        let m = map();
        assert_eq!(m.tenant("docs", "clients/big-co/a.pdf").as_deref(), Some("acct-big"));
        assert_eq!(m.tenant("other", "clients/big-co/a.pdf").as_deref(), Some("big-co"));
        assert_eq!(m.tenant("docs", "clients/acme/x/y.pdf").as_deref(), Some("acme"));
        assert_eq!(m.tenant("docs", "clients/acme"), None);
        assert_eq!(m.tenant("docs", "shared/logo.png"), None);
        assert!(PrefixMap::new().add_template(None, "clients/{tenant}").is_err());
        let t =
            PrefixMap::from_toml("[[prefix]]\nprefix='a/'\ntenant='x'\n[[template]]\npattern='t/{tenant}/'", "m.toml")
                .unwrap();
        assert_eq!(t.tenant("b", "a/1").as_deref(), Some("x"));
        assert!(PrefixMap::from_toml("[[prefix]]\nprefix='a/'\ntenant=''", "m.toml").is_err());
    }

    #[test]
    fn inventory_rows() {
        let s = InventorySchema::from_file_schema(
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate",
        )
        .unwrap();
        let r = parse_inventory_line(
            r#""docs","clients/acme/my+file%C3%A9.pdf","v1","true","false","1234","2026-10-01T00:00:00.000Z""#,
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.key.as_str(), r.size), ("clients/acme/my fileé.pdf", Some(1234)));
        let r = parse_inventory_line(r#""docs","k","v2","false","true","","2026-10-01T00:00:00.000Z""#, &s)
            .unwrap()
            .unwrap();
        assert_eq!(r.size, None);
        assert!(parse_inventory_line(r#""docs","k","v","true","false","12x","d""#, &s).is_err());
        assert!(parse_inventory_line(r#""docs","k""#, &s).is_err());
        assert!(parse_inventory_line(r#""docs","k%2","v","true","false","1","d""#, &s).is_err());
        assert!(parse_inventory_line(r#""docs,"k","v","true","false","1","d"#, &s).is_err());
        assert!(InventorySchema::from_file_schema("Bucket, Key").is_err());
        // `""` escapes, a comma inside quotes, unquoted fields; `%2B` is a plus, `+` a space.
        let r = parse_inventory_line(r#""do""cs","a,b%2Bc+d","v","true","false","7","d""#, &s).unwrap().unwrap();
        assert_eq!((r.bucket.as_str(), r.key.as_str(), r.size), ("do\"cs", "a,b+c d", Some(7)));
        let r = parse_inventory_line("docs,k%C3%A9,v,true,false,8,d", &s).unwrap().unwrap();
        assert_eq!((r.key.as_str(), r.size), ("ké", Some(8)));
        assert!(parse_inventory_line(r#""docs","k%zz","v","true","false","1","d""#, &s).is_err());
        assert!(parse_inventory_line(r#""docs","k%FF","v","true","false","1","d""#, &s).is_err());
    }

    #[test]
    fn one_parser_is_reused_across_lines() {
        let m = map();
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let mut a = S3InventoryAggregator::new(day, InventorySchema::default(), &m);
        let text =
            "\"docs\",\"clients/acme/a%2C1\",\"10\"\n\"docs\",\"clients/acme/b\"\n\"docs\",\"clients/zed/c\",\"5\"\n";
        let budget = ErrorBudget { max_ratio: Decimal::ONE, max_examples: 10 };
        let rep = a.read("inv.csv", text.as_bytes(), &budget).unwrap();
        assert_eq!((rep.records, rep.malformed, rep.examples[0].line), (2, 1, 2));
        let (t, stats) = a.finish().unwrap();
        assert_eq!(stats.objects, 2);
        assert_eq!(t.day(Driver::S3ByteHours, day).unwrap()[&TenantId::new("acme").unwrap()], Decimal::from(240));
    }

    #[test]
    fn access_lines() {
        let get = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be docs [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.OBJECT clients/acme/a.pdf "GET /docs/clients/acme/a.pdf HTTP/1.1" 200 - 113 113 7 - "-" "S3Console/0.4 \"quoted\"" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader docs.s3.us-west-1.amazonaws.com TLSV1.2 - -"#;
        let r = parse_access_line(get).unwrap().unwrap();
        assert_eq!(
            (r.tier, r.key.as_deref(), r.time.date_naive().to_string().as_str()),
            (Tier::Tier2, Some("clients/acme/a.pdf"), "2019-02-06")
        );
        let list = r#"o docs [06/Feb/2019:00:00:38 +0000] 1.2.3.4 r ID REST.GET.BUCKET - "GET /?list-type=2&prefix=clients%2Fbig-co%2F HTTP/1.1" 200 -"#;
        let r = parse_access_line(list).unwrap().unwrap();
        assert_eq!((r.tier, r.key.as_deref()), (Tier::Tier1, Some("clients/big-co/")));
        let lifecycle = r#"o docs [06/Feb/2019:00:00:38 +0000] - AmazonS3 ID S3.EXPIRE.OBJECT k "-" - -"#;
        assert_eq!(parse_access_line(lifecycle).unwrap(), None);
        assert!(parse_access_line("o docs [06/Feb/2019:00:00:38 +0000 x").is_err());
        assert!(parse_access_line("o docs [yesterday] 1 r ID REST.GET.OBJECT k \"GET /k\"").is_err());

        let m = map();
        let mut a = S3AccessAggregator::new(&m);
        let text = format!("{get}\n{list}\n{lifecycle}\n");
        let rep = a.read("access.log", text.as_bytes(), &ErrorBudget::default()).unwrap();
        assert_eq!((rep.records, rep.ignored), (2, 1));
        let (t, _) = a.finish();
        let day = NaiveDate::from_ymd_opt(2019, 2, 6).unwrap();
        assert_eq!(t.day(Driver::S3Tier1Requests, day).unwrap()[&TenantId::new("acct-big").unwrap()], Decimal::ONE);
        assert_eq!(t.day(Driver::S3Requests, day).unwrap().len(), 2);
    }
}
