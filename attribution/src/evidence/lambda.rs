//! AWS Lambda evidence: invocations, GB-seconds and duration per tenant per UTC day.
//!
//! Lambda's own records (text `REPORT` lines, JSON `platform.report`) carry the billed duration and memory
//! but not the tenant; the application's structured log lines carry the tenant and the request id. The
//! [`LambdaAggregator`] joins the two on the request id (attribution-and-style.md §B.7 items 1, 2, 8).
//!
//! Accepted lines (each optionally prefixed by a CloudWatch Logs export timestamp `2024-07-03T10:00:00.000Z `):
//! * `REPORT RequestId: <id>\tDuration: 201.67 ms\tBilled Duration: 202 ms \tMemory Size: 2048 MB\tMax Memory
//!   Used: 81 MB[\tInit Duration: 480.25 ms][\tXRAY TraceId: … SegmentId: … Sampled: true]` — fields are found
//!   by label, so tabs, the stray space after `ms`, extra fields and floats all parse;
//! * `{"time":…,"type":"platform.report","record":{"requestId":…,"metrics":{"durationMs":…,
//!   "billedDurationMs":…,"memorySizeMB":…}}}` (on-demand) or with `metrics` holding only `durationMs`
//!   (Lambda Managed Instances: no GB-s, see [`ReportUsage::ManagedInstance`]);
//! * application JSON lines carrying a tenant key (default `accountant_id`, configurable) at top level or in
//!   a `message` object, and the request id in `requestId`, `request_id`, `awsRequestId`,
//!   `function_request_id` or `aws_request_id` — or in the Lambda text prefix `<ts>\t<request id>\tINFO\t{…}`.
//!
//! GB-seconds = billed ms / 1000 × memory MB / 1024, computed exactly in decimal (1/1024000 is a finite
//! decimal). `Billed Duration` already includes any billed init phase, so `Init Duration` is not added.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use memchr::memmem;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::dedupe::DoneSet;
use super::json::{self, Object, TenantKeys};
use super::parallel::{Buffers, read_lines_parallel};
use super::reader::{LineError, Outcome, Records, added};
use super::time::{json_timestamp, split_message, split_prefix, trim};
use super::{ErrorBudget, EvidenceError, ParseError, Result, SourceReport};
use crate::driver::{Driver, DriverTotals};
use crate::money::{exact_mul, parse_exact};
use crate::tenant::TenantId;

/// GB-s per (billed ms × MB): 1 / 1000 / 1024, exactly.
const GB_SECONDS_PER_MB_MS: Decimal = Decimal::from_parts(9_765_625, 0, 0, false, 13);

/// Keys that carry the request id in application log lines, in order of preference.
pub const REQUEST_ID_KEYS: [&str; 5] =
    ["requestId", "request_id", "awsRequestId", "function_request_id", "aws_request_id"];

/// What a REPORT says about billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportUsage {
    /// On-demand: billed by GB-seconds.
    OnDemand { billed_duration_ms: Decimal, memory_size_mb: Decimal },
    /// Lambda Managed Instances report only the duration; they are billed on instance terms, so only
    /// invocations and duration are drivers for them.
    ManagedInstance { duration_ms: Decimal },
}

/// One invocation's REPORT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub request_id: String,
    /// From the JSON `time` or the export prefix; text REPORT lines have none of their own.
    pub time: Option<DateTime<Utc>>,
    pub usage: ReportUsage,
}

impl Report {
    /// Billed GB-seconds (on-demand only), exact.
    pub fn gb_seconds(&self) -> Option<Decimal> {
        match &self.usage {
            ReportUsage::OnDemand { billed_duration_ms, memory_size_mb } => {
                exact_mul(*billed_duration_ms, *memory_size_mb).and_then(|x| exact_mul(x, GB_SECONDS_PER_MB_MS))
            }
            ReportUsage::ManagedInstance { .. } => None,
        }
    }
}

/// An application log line naming the tenant of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLine {
    pub request_id: String,
    pub tenant: TenantId,
    pub time: Option<DateTime<Utc>>,
}

/// One line of Lambda evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LambdaRecord {
    Report(Report),
    Tenant(TenantLine),
}

/// Parses Lambda log lines (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LambdaParser {
    tenant_keys: TenantKeys,
}

impl LambdaParser {
    /// `tenant_keys`: JSON keys holding the tenant id, in order of preference (none: `accountant_id`).
    pub fn new(tenant_keys: Vec<String>) -> Self {
        Self { tenant_keys: TenantKeys::new(tenant_keys) }
    }

    /// Parses one line, with an optional leading export timestamp. `Ok(None)`: not Lambda evidence.
    pub fn parse_line(&self, line: &str) -> Result<Option<LambdaRecord>, ParseError> {
        Ok(self.parse_line_ref(line)?.map(Parsed::into_record))
    }

    /// Parses one log event's message; `timestamp` is the event's (CloudWatch `FilterLogEvents`).
    pub fn parse_message(
        &self,
        message: &str,
        timestamp: Option<DateTime<Utc>>,
    ) -> Result<Option<LambdaRecord>, ParseError> {
        Ok(self.parse_message_ref(message, timestamp)?.map(Parsed::into_record))
    }

    /// [`LambdaParser::parse_line`] as the join takes it (see [`Prepared`]).
    pub(crate) fn prepare_line(&self, line: &str) -> Result<Option<Prepared>, ParseError> {
        Ok(self.parse_line_ref(line)?.map(Prepared::from))
    }

    /// [`LambdaParser::parse_line`] without copying ids and tenants out of the line.
    fn parse_line_ref<'a>(&self, line: &'a str) -> Result<Option<Parsed<'a>>, ParseError> {
        if cannot_be_evidence(line) {
            return Ok(None);
        }
        let (ts, rest) = split_prefix(trim(line));
        self.parse_message_ref(rest, ts)
    }

    fn parse_message_ref<'a>(
        &self,
        message: &'a str,
        timestamp: Option<DateTime<Utc>>,
    ) -> Result<Option<Parsed<'a>>, ParseError> {
        let message = trim(message);
        if message == "REPORT" || message.starts_with("REPORT ") || message.starts_with("REPORT\t") {
            let (request_id, usage) = match report_text_fields(message) {
                Some(fields) => fields,
                None => {
                    let r = parse_report_text(message, timestamp)?;
                    (Cow::Owned(r.request_id), r.usage)
                }
            };
            return Ok(Some(Parsed::Report { request_id, time: timestamp, usage }));
        }
        let m = split_message(message);
        if !m.body.starts_with('{') {
            return Ok(None);
        }
        // Without escapes, keys and strings are their source text: a body naming neither
        // `platform.report` nor a tenant key cannot be evidence (below it would end in `Ok(None)`,
        // valid JSON or not), so it is not parsed.
        if memchr::memchr(b'\\', m.body.as_bytes()).is_none() && !self.looks_like_evidence(m.body) {
            return Ok(None);
        }
        let obj = match Object::parse(m.body) {
            Ok(o) => o,
            // Text that merely starts with `{` is not evidence unless it looks like ours.
            Err(e) if self.looks_like_evidence(m.body) => return Err(e),
            Err(_) => return Ok(None),
        };
        let time = match obj.get_any(&["time", "timestamp", "@timestamp"]) {
            Some((raw, _)) => json_timestamp(raw, "time").ok(),
            None => None,
        }
        .or(m.time)
        .or(timestamp);
        if let Some(t) = obj.get("type") {
            let t = json::string_cow(t, "type").unwrap_or_default();
            if t == "platform.report" {
                let (request_id, usage) = platform_report_fields(&obj)?;
                return Ok(Some(Parsed::Report { request_id, time, usage }));
            }
            if t.starts_with("platform.") {
                return Ok(None);
            }
        }
        let Some(tenant) = self.tenant(&obj)? else { return Ok(None) };
        let request_id = match obj.get_any(&REQUEST_ID_KEYS) {
            Some((raw, i)) => json::scalar_cow(raw, REQUEST_ID_KEYS[i])?,
            None => match m.request_id {
                Some(r) => Cow::Borrowed(r),
                None => return Ok(None), // a tenant line that names no request cannot be joined
            },
        };
        if request_id.is_empty() {
            return Err(ParseError::bad("requestId", "empty"));
        }
        Ok(Some(Parsed::Tenant { request_id, tenant, time }))
    }

    fn looks_like_evidence(&self, body: &str) -> bool {
        static PLATFORM_REPORT: LazyLock<memmem::Finder<'static>> =
            LazyLock::new(|| memmem::Finder::new("platform.report"));
        PLATFORM_REPORT.find(body.as_bytes()).is_some() || self.tenant_keys.any_in(body)
    }

    /// The tenant id (checked) under the first tenant key, at top level or in a `message` object.
    fn tenant<'a>(&self, obj: &Object<'a>) -> Result<Option<Cow<'a, str>>, ParseError> {
        if let Some(tenant) = self.tenant_keys.tenant_text(|key| obj.get(key))? {
            return Ok(Some(tenant));
        }
        // Lambda's JSON log format nests a logged object under "message".
        if obj.get("message").is_some_and(|raw| raw.get().starts_with('{'))
            && let Some(inner) = obj.object("message", "message")?
        {
            return self.tenant_keys.tenant_text(|key| inner.get(key));
        }
        Ok(None)
    }
}

/// `true` for a line that [`LambdaParser::parse_message_ref`] would find nothing in, whatever its
/// prefix: evidence is either a `REPORT` message or a body starting with `{`, and both are
/// substrings of the line. Half the lines of a Lambda log (`START`, `END`) are dismissed here by
/// two SIMD searches, without reading their timestamp or splitting them.
fn cannot_be_evidence(line: &str) -> bool {
    static REPORT: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("REPORT"));
    let bytes = line.as_bytes();
    memchr::memchr(b'{', bytes).is_none() && REPORT.find(bytes).is_none()
}

/// One line's evidence, borrowing what it can from the line; the tenant id is checked.
#[derive(Debug)]
enum Parsed<'a> {
    Report { request_id: Cow<'a, str>, time: Option<DateTime<Utc>>, usage: ReportUsage },
    Tenant { request_id: Cow<'a, str>, tenant: Cow<'a, str>, time: Option<DateTime<Utc>> },
}

impl Parsed<'_> {
    fn into_record(self) -> LambdaRecord {
        match self {
            Parsed::Report { request_id, time, usage } => {
                LambdaRecord::Report(Report { request_id: request_id.into_owned(), time, usage })
            }
            // Checked when parsed: `TenantId::new` cannot fail here.
            Parsed::Tenant { request_id, tenant, time } => LambdaRecord::Tenant(TenantLine {
                request_id: request_id.into_owned(),
                tenant: TenantId::new(tenant.into_owned()).unwrap_or_else(|_| TenantId::unattributed()),
                time,
            }),
        }
    }
}

/// A line's evidence ready for the join, made where the line is parsed (a worker thread of a
/// parallel read): the request id as its compact key and the tenant inline when short, so that a
/// line with a UUID request id and a tenant id of up to [`ShortText::INLINE`] bytes (nearly all)
/// costs no allocation and reaches the joining thread as a plain copy.
#[derive(Debug)]
pub(crate) enum Prepared {
    Report { key: RequestKey, day: Option<NaiveDate>, usage: ReportUsage },
    Tenant { key: RequestKey, tenant: ShortText, day: Option<NaiveDate> },
}

impl From<Parsed<'_>> for Prepared {
    fn from(parsed: Parsed<'_>) -> Self {
        match parsed {
            Parsed::Report { request_id, time, usage } => {
                Prepared::Report { key: RequestKey::new(&request_id), day: day_of(time), usage }
            }
            Parsed::Tenant { request_id, tenant, time } => Prepared::Tenant {
                key: RequestKey::new(&request_id),
                tenant: ShortText::new(&tenant),
                day: day_of(time),
            },
        }
    }
}

/// The UTC day of a record: all the join keeps of its time (an invocation counts on its
/// REPORT's day, else on its tenant line's).
fn day_of(time: Option<DateTime<Utc>>) -> Option<NaiveDate> {
    time.map(|t| t.date_naive())
}

/// A short string kept inline (tenant ids are mostly a few bytes), else on the heap.
#[derive(Debug, Clone)]
pub(crate) enum ShortText {
    Inline { len: u8, bytes: [u8; ShortText::INLINE] },
    Heap(Box<str>),
}

impl ShortText {
    /// Bytes kept inline.
    pub(crate) const INLINE: usize = 30;

    pub(crate) fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= Self::INLINE => {
                let mut bytes = [0u8; Self::INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                ShortText::Inline { len, bytes }
            }
            _ => ShortText::Heap(text.into()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole: always valid UTF-8.
            ShortText::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            ShortText::Heap(text) => text,
        }
    }
}

/// Parses a text `REPORT` line by its labels (see the module docs). `RequestId`, `Billed Duration` (ms) and
/// `Memory Size` (MB) are required; units are checked.
pub fn parse_report_text(line: &str, time: Option<DateTime<Utc>>) -> Result<Report, ParseError> {
    let mut tokens = line.split_whitespace().peekable();
    if tokens.next() != Some("REPORT") {
        return Err(ParseError::Invalid("not a REPORT line".into()));
    }
    let mut fields: HashMap<String, (&str, Option<&str>)> = HashMap::new();
    let mut label: Vec<&str> = Vec::new();
    while let Some(tok) = tokens.next() {
        if let Some(word) = tok.strip_suffix(':') {
            label.push(word);
            let name = label.join(" ");
            label.clear();
            let value = tokens.next().ok_or_else(|| ParseError::bad(&name, "no value"))?;
            let unit = tokens.next_if(|t| matches!(*t, "ms" | "MB"));
            fields.entry(name).or_insert((value, unit));
        } else {
            label.push(tok);
        }
    }
    let request_id =
        fields.get("RequestId").map(|(v, _)| (*v).to_owned()).ok_or_else(|| ParseError::missing("RequestId"))?;
    let num = |name: &str, unit: &str| -> Result<Option<Decimal>, ParseError> {
        let Some((v, u)) = fields.get(name) else { return Ok(None) };
        if *u != Some(unit) {
            return Err(ParseError::bad(name, format!("expected unit {unit}, got {}", u.unwrap_or("none"))));
        }
        non_negative(name, parse_exact(v).map_err(|e| ParseError::bad(name, e.to_string()))?).map(Some)
    };
    num("Duration", "ms")?; // validated, not used: billing is by billed duration
    // Text REPORTs always carry billed duration and memory; only the JSON `platform.report` of Managed
    // Instances omits them, so a text line without them is broken, not a managed instance.
    let billed = num("Billed Duration", "ms")?.ok_or_else(|| ParseError::missing("Billed Duration"))?;
    let memory = num("Memory Size", "MB")?.ok_or_else(|| ParseError::missing("Memory Size"))?;
    let usage = ReportUsage::OnDemand { billed_duration_ms: billed, memory_size_mb: memory };
    Ok(Report { request_id, time, usage })
}

/// [`parse_report_text`] without allocating, for a line it accepts; `None` for any line it would
/// reject (which [`parse_report_text`] then reads again, for its error). Same tokens, same labels
/// (words before `word:`, the first occurrence of a label wins), same checks.
fn report_text_fields(line: &str) -> Option<(Cow<'_, str>, ReportUsage)> {
    #[derive(Clone, Copy)]
    enum Name {
        RequestId,
        Duration,
        Billed,
        Memory,
        Other,
    }
    // On ASCII without vertical tabs (which `char::is_whitespace` counts and
    // `u8::is_ascii_whitespace` does not), both splits give the same tokens; the byte one is faster.
    if !line.is_ascii() || memchr::memchr(0x0b, line.as_bytes()).is_some() {
        return None;
    }
    let mut tokens = AsciiWords { text: line, at: 0 }.peekable();
    if tokens.next() != Some("REPORT") {
        return None;
    }
    let mut found: [Option<(&str, Option<&str>)>; 4] = [None; 4];
    let (mut first, mut words) = ("", 0usize);
    while let Some(tok) = tokens.next() {
        let Some(word) = tok.strip_suffix(':') else {
            if words == 0 {
                first = tok;
            }
            words += 1;
            continue;
        };
        let name = match (words, first, word) {
            (0, _, "RequestId") => Name::RequestId,
            (0, _, "Duration") => Name::Duration,
            (1, "Billed", "Duration") => Name::Billed,
            (1, "Memory", "Size") => Name::Memory,
            _ => Name::Other,
        };
        words = 0;
        let value = tokens.next()?;
        let unit = tokens.next_if(|t| matches!(*t, "ms" | "MB"));
        if let Some(slot) = found.get_mut(name as usize)
            && slot.is_none()
        {
            *slot = Some((value, unit));
        }
    }
    let num = |i: usize, unit: &str| -> Option<Option<Decimal>> {
        let Some((v, u)) = found[i] else { return Some(None) };
        let v = parse_exact(v).ok().filter(|v| (v.is_zero() || !v.is_sign_negative()) && u == Some(unit))?;
        Some(Some(v))
    };
    let (request_id, _) = found[Name::RequestId as usize]?;
    num(Name::Duration as usize, "ms")?;
    let billed_duration_ms = num(Name::Billed as usize, "ms")??;
    let memory_size_mb = num(Name::Memory as usize, "MB")??;
    Some((Cow::Borrowed(request_id), ReportUsage::OnDemand { billed_duration_ms, memory_size_mb }))
}

/// `str::split_ascii_whitespace` as a plain loop over the bytes (the same words; about half the
/// instructions of the generic split and filter, on the hottest loop of a text REPORT line).
struct AsciiWords<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for AsciiWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let mut i = self.at;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        self.at = i;
        // Cut at ASCII bytes: always on character boundaries.
        (start < i).then(|| self.text.get(start..i)).flatten()
    }
}

fn platform_report_fields<'a>(obj: &Object<'a>) -> Result<(Cow<'a, str>, ReportUsage), ParseError> {
    let record = obj.object("record", "record")?.ok_or_else(|| ParseError::missing("record"))?;
    let request_id = json::string_cow(
        record.get("requestId").ok_or_else(|| ParseError::missing("record.requestId"))?,
        "record.requestId",
    )?;
    if request_id.is_empty() {
        return Err(ParseError::bad("record.requestId", "empty"));
    }
    let metrics = record.object("metrics", "record.metrics")?.ok_or_else(|| ParseError::missing("record.metrics"))?;
    let num = |k: &str| -> Result<Option<Decimal>, ParseError> {
        metrics.get(k).map(|raw| json::number(raw, k).and_then(|v| non_negative(k, v))).transpose()
    };
    let usage = match (num("billedDurationMs")?, num("memorySizeMB")?, num("durationMs")?) {
        (Some(b), Some(m), _) => ReportUsage::OnDemand { billed_duration_ms: b, memory_size_mb: m },
        (None, None, Some(d)) => ReportUsage::ManagedInstance { duration_ms: d },
        (None, _, _) => return Err(ParseError::missing("record.metrics.billedDurationMs")),
        (_, None, _) => return Err(ParseError::missing("record.metrics.memorySizeMB")),
    };
    Ok((request_id, usage))
}

fn non_negative(field: &str, v: Decimal) -> Result<Decimal, ParseError> {
    if v.is_sign_negative() && !v.is_zero() {
        Err(ParseError::bad(field, format!("negative value {v}")))
    } else {
        Ok(v)
    }
}

/// Join and dedupe bounds of [`LambdaAggregator`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaConfig {
    /// JSON keys holding the tenant id (default `["accountant_id"]`).
    pub tenant_keys: Vec<String>,
    /// How many unjoined records (REPORTs waiting for their tenant line, tenant lines waiting for their
    /// REPORT) are kept (default 100,000). When one more arrives, the oldest is given up: a REPORT's usage
    /// is then recorded under `UNATTRIBUTED` (counted in `reports_without_tenant`), a tenant line is dropped
    /// (counted in `tenant_lines_without_report`). So a REPORT and its tenant line must be at most this many
    /// unjoined records apart in the input; logs of one stream are in order, so this only bites when many
    /// streams are interleaved.
    pub join_window: usize,
    /// How many joined request ids are remembered to drop duplicate REPORTs (at-least-once delivery;
    /// default 1,000,000, ~50 MB: 24-byte slots for up to half a window more ids, dropped in
    /// bulk). A duplicate arriving later than that is counted twice.
    pub dedupe_window: usize,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        Self { tenant_keys: vec!["accountant_id".into()], join_window: 100_000, dedupe_window: 1_000_000 }
    }
}

/// Counters of the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LambdaStats {
    /// REPORT records seen (including duplicates).
    pub reports: u64,
    /// REPORTs dropped as duplicates of an earlier one with the same request id.
    pub duplicate_reports: u64,
    /// Invocations joined to a tenant.
    pub joined: u64,
    /// Invocations recorded under `UNATTRIBUTED` (no tenant line within the window or at all).
    pub reports_without_tenant: u64,
    /// Tenant lines whose REPORT never came (within the window).
    pub tenant_lines_without_report: u64,
    /// Tenant lines naming a different tenant than an earlier line for the same request (first wins).
    pub conflicting_tenants: u64,
    /// Invocations without any timestamp (no day): not recorded.
    pub without_day: u64,
}

/// A request id, compact when it is a UUID (16 bytes instead of a 36-byte string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RequestKey {
    /// Two words, not a `u128`: 8-byte alignment keeps the key 24 bytes (parsed records cross
    /// from the parsing threads to the joining one by the million).
    Uuid(UuidKey),
    Text(Box<str>),
}

impl RequestKey {
    pub(crate) fn new(id: &str) -> Self {
        match uuid_value(id.as_bytes()) {
            Some(v) => RequestKey::Uuid(UuidKey::new(v)),
            None => RequestKey::Text(id.into()),
        }
    }
}

/// The id as text (a UUID in lowercase), for messages.
impl std::fmt::Display for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestKey::Uuid(UuidKey(high, low)) => {
                let hex = format!("{high:016x}{low:016x}");
                write!(f, "{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
            }
            RequestKey::Text(text) => f.write_str(text),
        }
    }
}

/// The 128-bit value of a UUID's text (what `is_uuid` accepts: 8-4-4-4-12 hex digits, any case).
fn uuid_value(id: &[u8]) -> Option<u128> {
    if id.len() != 36 || id[8] != b'-' || id[13] != b'-' || id[18] != b'-' || id[23] != b'-' {
        return None;
    }
    // A table, not branches: random hex digits defeat branch prediction.
    const HEX: [u8; 256] = {
        let mut t = [0xff; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let (mut v, mut bad) = (0u128, 0u8);
    for range in [0..8, 9..13, 14..18, 19..23, 24..36] {
        for &b in id.get(range)? {
            let digit = HEX[usize::from(b)];
            bad |= digit;
            v = (v << 4) | u128::from(digit & 0x0f);
        }
    }
    (bad & 0xf0 == 0).then_some(v)
}

/// A fast hash for the join's maps (request ids are mostly random UUIDs; the std `SipHash` costs
/// more than the rest of a map access). Multiply-rotate as in rustc's `FxHasher`.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; the table indexes by them.
        self.0.rotate_left(26)
    }
}

pub(crate) type Fast = BuildHasherDefault<FastHasher>;

/// The tenant of [`LambdaAggregator::tenants`] at this index; 0 is `UNATTRIBUTED`.
type TenantIndex = u32;

#[derive(Debug)]
enum Pending {
    /// A REPORT's day and usage.
    Report(Option<NaiveDate>, ReportUsage),
    Tenant(TenantIndex, Option<NaiveDate>),
}

/// Integer sums of one (day, tenant) for on-demand REPORTs with whole billed ms and MB (nearly
/// all): added to the exact totals once, at the end, with the same value and scale as adding each
/// invocation's decimal.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    invocations: u64,
    billed_ms: u128,
    mb_ms: u128,
}

/// A UUID request id as two words (8-byte alignment: 24-byte slots with a `u64`, not 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct UuidKey(pub(crate) u64, pub(crate) u64);

impl UuidKey {
    pub(crate) fn new(v: u128) -> Self {
        // Truncations intended: the high and the low word.
        Self((v >> 64) as u64, v as u64)
    }
}

/// A (day, tenant) whose sums reach this is added to the totals at once (so an overflow of the
/// exact totals, beyond ~8·10²¹ MB·ms, is still reported).
const FLUSH_AT: u128 = 1_000_000_000_000_000_000_000;

/// Streams Lambda logs into driver totals (see [`LambdaConfig`] for the memory bounds).
#[derive(Debug)]
pub struct LambdaAggregator {
    parser: LambdaParser,
    config: LambdaConfig,
    pending: HashMap<RequestKey, (u64, Pending), Fast>,
    order: VecDeque<(RequestKey, u64)>,
    done: DoneSet,
    seq: u64,
    /// Interned tenants (index 0: `UNATTRIBUTED`).
    tenants: Vec<TenantId>,
    tenant_index: HashMap<Box<str>, TenantIndex, Fast>,
    sums: HashMap<(NaiveDate, TenantIndex), Sums, Fast>,
    totals: DriverTotals,
    stats: LambdaStats,
}

impl LambdaAggregator {
    pub fn new(config: LambdaConfig) -> Self {
        Self {
            parser: LambdaParser::new(config.tenant_keys.clone()),
            done: DoneSet::new(config.dedupe_window),
            config,
            pending: HashMap::default(),
            order: VecDeque::new(),
            seq: 0,
            tenants: vec![TenantId::unattributed()],
            tenant_index: HashMap::default(),
            sums: HashMap::default(),
            totals: DriverTotals::new(),
            stats: LambdaStats::default(),
        }
    }

    /// Reads one source (REPORTs and app lines may be in the same or in different sources; the join spans
    /// all sources read by this aggregator).
    ///
    /// Lines are parsed on worker threads and joined here in input order
    /// ([`read_lines_parallel`]), with the totals and counts of a one-thread read.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        let parser = self.parser.clone();
        let parse = |text: &str| match parser.prepare_line(text) {
            Ok(None) => None,
            parsed => Some(parsed),
        };
        // A bare Lambda aggregator reads a source or two (tests, examples): buffers are not kept.
        read_lines_parallel(source_name, reader, budget, &mut Buffers::default(), parse, |line, prepared, ahead| {
            if let Some(Ok(Some(ahead))) = ahead {
                self.look_ahead(ahead);
            }
            added(source_name, line, prepared, |p| self.push_prepared(p))
        })
    }

    /// The line parser (cloned onto the threads of a parallel read).
    pub(crate) fn parser(&self) -> &LambdaParser {
        &self.parser
    }

    /// Adds one parsed record. `Err` only when a total overflows exact arithmetic.
    pub fn push(&mut self, record: LambdaRecord) -> Result<(), String> {
        self.push_prepared(match record {
            LambdaRecord::Report(r) => {
                Prepared::Report { key: RequestKey::new(&r.request_id), day: day_of(r.time), usage: r.usage }
            }
            LambdaRecord::Tenant(t) => Prepared::Tenant {
                key: RequestKey::new(&t.request_id),
                tenant: ShortText::new(t.tenant.as_str()),
                day: day_of(t.time),
            },
        })
    }

    fn intern(&mut self, tenant: &str) -> TenantIndex {
        if let Some(i) = self.tenant_index.get(tenant) {
            return *i;
        }
        let i = TenantIndex::try_from(self.tenants.len()).unwrap_or(TenantIndex::MAX);
        // Checked when parsed (or a `TenantId` already); `UNATTRIBUTED` is refused by the check.
        let id = TenantId::new(tenant).unwrap_or_else(|_| TenantId::unattributed());
        self.tenants.push(id);
        self.tenant_index.insert(tenant.into(), i);
        i
    }

    fn push_parsed(&mut self, record: Parsed<'_>) -> Result<(), String> {
        self.push_prepared(Prepared::from(record))
    }

    /// Prefetches the dedupe-set slot that `record` will need when its turn comes a few records
    /// later (see [`read_lines_parallel`]): the join is in input order, one record at a time, and
    /// without this each record waits for a cache miss of its own (the first record of a request
    /// probes the set, the second inserts the request into it); prefetched, those misses overlap
    /// with the work on the records in between. (A lookup instead of a prefetch stalled the
    /// thread on the miss all the same: 8 % of the samples.)
    pub(crate) fn look_ahead(&self, record: &Prepared) {
        let (Prepared::Tenant { key, .. } | Prepared::Report { key, .. }) = record;
        self.done.prefetch(key);
    }

    /// Joins one record with what is pending for its request (in input order).
    pub(crate) fn push_prepared(&mut self, record: Prepared) -> Result<(), String> {
        // What waits for a request is looked up before the dedupe set: a record waits only when
        // its request was not joined, and joining or giving up removes it, so a request with a
        // record waiting is never in the set. Only a record with nothing waiting for it needs the
        // set (a probe in a table of tens of MB, mostly a cache miss); its partner then finds it
        // waiting and marks the request done in the slot that probe just read.
        match record {
            Prepared::Report { key, day: time, usage } => {
                self.stats.reports += 1;
                match self.pending.remove(&key) {
                    Some((_, Pending::Tenant(tenant, tenant_time))) => {
                        self.stats.joined += 1;
                        let emitted = self.emit(&key, time, &usage, tenant, tenant_time);
                        self.mark_done(key);
                        emitted
                    }
                    Some(p @ (_, Pending::Report(..))) => {
                        self.stats.duplicate_reports += 1;
                        self.pending.insert(key, p);
                        Ok(())
                    }
                    None if self.done.contains(&key) => {
                        self.stats.duplicate_reports += 1;
                        Ok(())
                    }
                    None => self.wait(key, Pending::Report(time, usage)),
                }
            }
            Prepared::Tenant { key, tenant, day: time } => match self.pending.remove(&key) {
                Some((_, Pending::Report(report_time, usage))) => {
                    let tenant = self.intern(tenant.as_str());
                    self.stats.joined += 1;
                    let emitted = self.emit(&key, report_time, &usage, tenant, time);
                    self.mark_done(key);
                    emitted
                }
                Some((seq, Pending::Tenant(first, first_time))) => {
                    if first != self.intern(tenant.as_str()) {
                        self.stats.conflicting_tenants += 1;
                    }
                    self.pending.insert(key, (seq, Pending::Tenant(first, first_time)));
                    Ok(())
                }
                None if self.done.contains(&key) => Ok(()), // the request was joined: a repeated line
                None => {
                    let tenant = self.intern(tenant.as_str());
                    self.wait(key, Pending::Tenant(tenant, time))
                }
            },
        }
    }

    /// Gives up on every unjoined record (see [`LambdaConfig::join_window`]) and returns the totals.
    pub fn finish(mut self) -> Result<(DriverTotals, LambdaStats), String> {
        while let Some((key, seq)) = self.order.pop_front() {
            self.give_up(key, seq)?;
        }
        let keys: Vec<_> = self.sums.keys().copied().collect();
        for key in keys {
            self.flush(key)?;
        }
        Ok((self.totals, self.stats))
    }

    fn wait(&mut self, key: RequestKey, p: Pending) -> Result<(), String> {
        self.seq += 1;
        self.pending.insert(key.clone(), (self.seq, p));
        self.order.push_back((key, self.seq));
        while self.order.len() > self.config.join_window {
            if let Some((key, seq)) = self.order.pop_front() {
                self.give_up(key, seq)?;
            }
        }
        Ok(())
    }

    fn give_up(&mut self, key: RequestKey, seq: u64) -> Result<(), String> {
        // Entries of `order` whose record was joined meanwhile are stale: the seq tells.
        if self.pending.get(&key).map(|(s, _)| *s) != Some(seq) {
            return Ok(());
        }
        match self.pending.remove(&key) {
            Some((_, Pending::Report(time, usage))) => {
                self.stats.reports_without_tenant += 1;
                let emitted = self.emit(&key, time, &usage, 0, None);
                self.mark_done(key);
                emitted
            }
            Some((_, Pending::Tenant(..))) => {
                self.stats.tenant_lines_without_report += 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn mark_done(&mut self, key: RequestKey) {
        if self.config.dedupe_window == 0 {
            return;
        }
        self.done.insert(key);
    }

    /// Records one invocation: on the day of its REPORT (else of its tenant line).
    fn emit(
        &mut self,
        request_id: &RequestKey,
        day: Option<NaiveDate>,
        usage: &ReportUsage,
        tenant: TenantIndex,
        tenant_day: Option<NaiveDate>,
    ) -> Result<(), String> {
        let Some(day) = day.or(tenant_day) else {
            self.stats.without_day += 1;
            return Ok(());
        };
        if let Some((billed, mb)) = whole(usage) {
            let s = self.sums.entry((day, tenant)).or_default();
            s.invocations += 1;
            s.billed_ms += billed;
            s.mb_ms += billed * mb; // both < 2^48, sums flushed at FLUSH_AT < 2^70: no overflow
            if s.mb_ms >= FLUSH_AT || s.billed_ms >= FLUSH_AT {
                self.flush((day, tenant))?;
            }
            return Ok(());
        }
        let tenant = self.tenants.get(tenant as usize).cloned().unwrap_or_else(TenantId::unattributed);
        let add = |totals: &mut DriverTotals, d: Driver, q: Decimal| {
            totals.add(d, day, &tenant, q).map_err(|e| e.to_string())
        };
        add(&mut self.totals, Driver::LambdaInvocations, Decimal::ONE)?;
        match usage {
            ReportUsage::OnDemand { billed_duration_ms, memory_size_mb } => {
                let gbs = exact_mul(*billed_duration_ms, *memory_size_mb)
                    .and_then(|x| exact_mul(x, GB_SECONDS_PER_MB_MS))
                    .ok_or_else(|| format!("GB-seconds of request {request_id} overflow"))?;
                add(&mut self.totals, Driver::LambdaGbSeconds, gbs)?;
                add(&mut self.totals, Driver::LambdaDurationMs, *billed_duration_ms)?;
            }
            ReportUsage::ManagedInstance { duration_ms } => {
                add(&mut self.totals, Driver::LambdaDurationMs, *duration_ms)?;
            }
        }
        Ok(())
    }

    /// Adds the integer sums of `key` to the exact totals. Each invocation's GB-s is billed × MB ×
    /// 1/1024000 at scale 13 and duration billed ms at scale 0, so the sum of the integers scaled once
    /// is the same decimal, digit for digit, as the sum of the per-invocation decimals.
    fn flush(&mut self, key: (NaiveDate, TenantIndex)) -> Result<(), String> {
        let Some(s) = self.sums.remove(&key) else { return Ok(()) };
        let (day, tenant) = key;
        let tenant = self.tenants.get(tenant as usize).cloned().unwrap_or_else(TenantId::unattributed);
        let int = |v: u128| {
            i128::try_from(v)
                .ok()
                .and_then(|v| Decimal::try_from_i128_with_scale(v, 0).ok())
                .ok_or_else(|| format!("Lambda usage of {tenant} on {day} overflows"))
        };
        let gbs = exact_mul(int(s.mb_ms)?, GB_SECONDS_PER_MB_MS)
            .ok_or_else(|| format!("GB-seconds of {tenant} on {day} overflow"))?;
        for (driver, q) in [
            (Driver::LambdaInvocations, Decimal::from(s.invocations)),
            (Driver::LambdaGbSeconds, gbs),
            (Driver::LambdaDurationMs, int(s.billed_ms)?),
        ] {
            self.totals.add(driver, day, &tenant, q).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Billed ms and MB of an on-demand REPORT as integers, when both are whole, non-negative numbers
/// written without a fraction (scale 0) and below 2^48 — the case [`Sums`] adds up.
fn whole(usage: &ReportUsage) -> Option<(u128, u128)> {
    const LIMIT: u128 = 1 << 48;
    let ReportUsage::OnDemand { billed_duration_ms: b, memory_size_mb: m } = usage else { return None };
    if b.scale() != 0 || m.scale() != 0 || b.is_sign_negative() || m.is_sign_negative() {
        return None;
    }
    let (b, m) = (u128::try_from(b.mantissa()).ok()?, u128::try_from(m.mantissa()).ok()?);
    (b < LIMIT && m < LIMIT).then_some((b, m))
}

impl Records for LambdaAggregator {
    type Record = LambdaRecord;

    fn parse(&self, text: &str) -> Result<Option<LambdaRecord>, ParseError> {
        self.parser.parse_line(text)
    }

    fn add(&mut self, record: LambdaRecord) -> Result<(), String> {
        self.push(record)
    }

    /// As the default, without copying the line's ids and tenant into owned records.
    fn consume(&mut self, source_name: &str, line: u64, text: &str) -> Result<Outcome, LineError> {
        match self.parser.parse_line_ref(text)? {
            None => Ok(Outcome::Ignored),
            Some(record) => {
                self.push_parsed(record).map_err(|message| {
                    LineError::Fatal(Box::new(EvidenceError::Invalid {
                        source_name: source_name.to_owned(),
                        line,
                        message,
                    }))
                })?;
                Ok(Outcome::Record)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    #[test]
    fn report_text_variants() {
        let p = LambdaParser::default();
        let line = "REPORT RequestId: 8fc6f963-411b-58b5-8483-a32130c0f45d\tDuration: 201.67 ms\tBilled Duration: 202 ms \tMemory Size: 2048 MB\tMax Memory Used: 81 MB\tInit Duration: 480.25 ms\tXRAY TraceId: 1-5e2b3c4d-1a2b3c4d5e6f7a8b9c0d1e2f\tSegmentId: 1a2b3c4d5e6f7a8b\tSampled: true";
        let Some(LambdaRecord::Report(r)) = p.parse_line(line).unwrap() else { panic!() };
        assert_eq!(r.request_id, "8fc6f963-411b-58b5-8483-a32130c0f45d");
        assert_eq!(r.usage, ReportUsage::OnDemand { billed_duration_ms: d("202"), memory_size_mb: d("2048") });
        assert_eq!(r.gb_seconds(), Some(d("0.404")));
        assert_eq!(r.time, None);
        // Export prefix supplies the time; spaces instead of tabs still parse.
        let Some(LambdaRecord::Report(r)) =
            p.parse_line("2024-07-03T23:59:59.999Z REPORT RequestId: abc Duration: 1.5 ms Billed Duration: 1.5 ms Memory Size: 128 MB").unwrap()
        else {
            panic!()
        };
        assert_eq!(r.time.unwrap().date_naive().to_string(), "2024-07-03");
        assert_eq!(r.gb_seconds(), Some(d("0.0001875")));
        for (bad, want) in [
            ("REPORT Duration: 1 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB", "RequestId"),
            ("REPORT RequestId: x\tDuration: 1 ms\tMemory Size: 128 MB", "Billed Duration"),
            ("REPORT RequestId: x\tBilled Duration: 1 s\tMemory Size: 128 MB", "unit"),
            ("REPORT RequestId: x\tBilled Duration: 1,5 ms\tMemory Size: 128 MB", "Billed Duration"),
            ("REPORT RequestId: x\tBilled Duration: -1 ms\tMemory Size: 128 MB", "negative"),
            ("REPORT RequestId:", "no value"),
        ] {
            let e = p.parse_line(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert_eq!(p.parse_line("START RequestId: x Version: $LATEST").unwrap(), None);
        assert_eq!(p.parse_line("END RequestId: x").unwrap(), None);
    }

    #[test]
    fn platform_report_shapes() {
        let p = LambdaParser::default();
        let on_demand = r#"{"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa87c28a","metrics":{"durationMs":2599.4,"billedDurationMs":2600,"memorySizeMB":128,"maxMemoryUsedMB":94,"initDurationMs":549.04},"status":"success"}}"#;
        let Some(LambdaRecord::Report(r)) = p.parse_line(on_demand).unwrap() else { panic!() };
        assert_eq!(r.gb_seconds(), Some(d("0.325")));
        assert_eq!(r.time.unwrap().date_naive().to_string(), "2022-10-21");
        let managed = r#"{"time":"2025-10-01T00:00:01Z","type":"platform.report","record":{"requestId":"r-1","metrics":{"durationMs":12.5},"status":"success"}}"#;
        let Some(LambdaRecord::Report(r)) = p.parse_line(managed).unwrap() else { panic!() };
        assert_eq!(r.usage, ReportUsage::ManagedInstance { duration_ms: d("12.5") });
        assert_eq!(
            p.parse_line(r#"{"time":"2025-10-01T00:00:01Z","type":"platform.start","record":{}}"#).unwrap(),
            None
        );
        assert!(p.parse_line(r#"{"type":"platform.report","record":{"metrics":{}}}"#).is_err());
        assert!(
            p.parse_line(r#"{"type":"platform.report","record":{"requestId":"x","metrics":{"billedDurationMs":1}}}"#)
                .is_err()
        );
    }

    proptest::proptest! {
        /// The shortcut for lines without `{` or `REPORT` hides nothing: the full parse finds
        /// nothing in them either (no record, no error), whatever their prefix and separators.
        #[test]
        fn lines_dismissed_early_hold_no_evidence(
            prefix in proptest::sample::select(vec!["", "2026-10-01T00:01:01.261Z ", "2026-10-01T00:01:01Z\t", "[INFO]\t2026-10-01T00:01:01.261Z\t"]),
            body in "[ -z|~\t]{0,80}",
            word in proptest::sample::select(vec!["START RequestId: ", "END RequestId: ", "INIT_START ", "REPORTS", "Report ", ""]),
        ) {
            let parser = LambdaParser::new(vec![]);
            let line = format!("{prefix}{word}{body}");
            proptest::prop_assume!(cannot_be_evidence(&line));
            let (ts, rest) = split_prefix(line.trim());
            proptest::prop_assert!(matches!(parser.parse_message_ref(rest, ts), Ok(None)), "{}", line);
        }
    }

    #[test]
    fn tenant_lines() {
        let p = LambdaParser::new(vec!["accountant_id".into(), "tenant_id".into()]);
        let rec = |l: &str| match p.parse_line(l).unwrap() {
            Some(LambdaRecord::Tenant(t)) => Some((t.request_id, t.tenant.to_string())),
            _ => None,
        };
        assert_eq!(
            rec(r#"{"level":"INFO","accountant_id":"acct-1","function_request_id":"r1"}"#),
            Some(("r1".into(), "acct-1".into()))
        );
        assert_eq!(rec(r#"{"tenant_id":42,"requestId":"r2"}"#), Some(("r2".into(), "42".into())));
        assert_eq!(
            rec("2024-07-03T10:00:00.123Z\t8fc6f963-411b-58b5-8483-a32130c0f45d\tINFO\t{\"accountant_id\":\"a\"}"),
            Some(("8fc6f963-411b-58b5-8483-a32130c0f45d".into(), "a".into()))
        );
        assert_eq!(
            rec(r#"{"timestamp":"2024-07-03T10:00:00Z","requestId":"r3","message":{"accountant_id":"b"}}"#),
            Some(("r3".into(), "b".into()))
        );
        assert_eq!(rec(r#"{"accountant_id":"a"}"#), None);
        // Escaped keys are not seen by the byte pre-filter: such lines take the full parse.
        assert_eq!(rec(r#"{"\u0061ccountant_id":"e","requestId":"r4"}"#), Some(("r4".into(), "e".into())));
        assert_eq!(rec(r#"{"tenant_id":"t\u0031","requestId":"r5"}"#), Some(("r5".into(), "t1".into())));
        // No tenant key, no platform.report: not evidence, valid JSON or not.
        assert_eq!(p.parse_line(r#"{"time":"x","type":"platform.start","record":{}}"#).unwrap(), None);
        assert_eq!(p.parse_line(r#"{"level":"INFO","msg":"broken"#).unwrap(), None);
        assert!(p.parse_line(r#"{"type":"platform.report","record":{"requestId":"x""#).is_err());
        assert_eq!(rec("plain text"), None);
        assert_eq!(rec("2024-07-03T10:00:00.123Z\tr\tINFO\t{braces in a message"), None);
        assert!(p.parse_line(r#"{"accountant_id":"UNATTRIBUTED","requestId":"r"}"#).is_err());
        assert!(p.parse_line(r#"{"accountant_id":["x"],"requestId":"r"}"#).is_err());
        assert!(p.parse_line(r#"{"accountant_id":"a","requestId":"r""#).is_err());
    }

    fn report(id: &str, ms: &str, day: u32) -> LambdaRecord {
        LambdaRecord::Report(Report {
            request_id: id.into(),
            time: Some(DateTime::from_naive_utc_and_offset(
                NaiveDate::from_ymd_opt(2026, 1, day).unwrap().and_hms_opt(1, 0, 0).unwrap(),
                Utc,
            )),
            usage: ReportUsage::OnDemand { billed_duration_ms: d(ms), memory_size_mb: d("1024") },
        })
    }
    fn tenant(id: &str, t: &str) -> LambdaRecord {
        LambdaRecord::Tenant(TenantLine { request_id: id.into(), tenant: TenantId::new(t).unwrap(), time: None })
    }

    #[test]
    fn join_dedupe_and_window() {
        let cfg = LambdaConfig { join_window: 2, ..LambdaConfig::default() };
        let mut a = LambdaAggregator::new(cfg);
        a.push(tenant("1", "a")).unwrap(); // tenant first
        a.push(report("1", "1000", 1)).unwrap();
        a.push(report("1", "1000", 1)).unwrap(); // duplicate after join
        a.push(report("2", "2000", 1)).unwrap(); // report first
        a.push(report("2", "2000", 1)).unwrap(); // duplicate while pending
        a.push(tenant("2", "b")).unwrap();
        a.push(tenant("2", "c")).unwrap(); // after join: ignored
        a.push(tenant("3", "a")).unwrap();
        a.push(tenant("3", "b")).unwrap(); // conflicting while pending
        a.push(report("4", "500", 2)).unwrap();
        a.push(tenant("5", "a")).unwrap(); // window 2: evicts the pending tenant line of 3
        a.push(report("3", "100", 2)).unwrap(); // 3 no longer pending -> waits; evicts report 4 -> UNATTRIBUTED
        let (totals, stats) = a.finish().unwrap(); // gives up on 5 (tenant) and 3 (report -> UNATTRIBUTED)
        assert_eq!(
            stats,
            LambdaStats {
                reports: 6,
                duplicate_reports: 2,
                joined: 2,
                reports_without_tenant: 2,
                tenant_lines_without_report: 2,
                conflicting_tenants: 1,
                without_day: 0
            }
        );
        let day1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let day2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let g = totals.day(Driver::LambdaGbSeconds, day1).unwrap();
        assert_eq!(g[&TenantId::new("a").unwrap()], d("1"));
        assert_eq!(g[&TenantId::new("b").unwrap()], d("2"));
        let g = totals.day(Driver::LambdaGbSeconds, day2).unwrap();
        assert_eq!(g[&TenantId::unattributed()], d("0.6"));
        assert_eq!(totals.day(Driver::LambdaInvocations, day2).unwrap()[&TenantId::unattributed()], d("2"));
    }

    #[test]
    fn uuid_keys() {
        for id in ["8fc6f963-411b-58b5-8483-a32130c0f45d", "8FC6F963-411B-58B5-8483-A32130C0F45D"] {
            let hex: String = id.chars().filter(|c| *c != '-').collect();
            assert_eq!(RequestKey::new(id), RequestKey::Uuid(UuidKey::new(u128::from_str_radix(&hex, 16).unwrap())));
        }
        for id in [
            "8fc6f963-411b-58b5-8483-a32130c0f45",
            "8fc6f963x411b-58b5-8483-a32130c0f45d",
            "8fc6f963-411b-58b5-8483-a32130c0f45g",
            "r1",
        ] {
            assert_eq!(RequestKey::new(id), RequestKey::Text(id.into()), "{id}");
        }
    }

    /// The REPORT tokenizer gives `split_ascii_whitespace`'s words.
    #[test]
    fn ascii_words_are_split_ascii_whitespaces_words() {
        for text in [
            "",
            " ",
            "REPORT",
            "REPORT RequestId: a\tDuration: 1.5 ms\t\tBilled Duration: 2 ms \r\n",
            "\t\x0c lead  and trail \t",
            "é ü\x0bx y", // non-ASCII and a vertical tab (not ASCII whitespace): kept in words
        ] {
            let words: Vec<&str> = AsciiWords { text, at: 0 }.collect();
            assert_eq!(words, text.split_ascii_whitespace().collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn fast_report_fields_agree_with_the_general_parser() {
        for line in [
            "REPORT RequestId: 8fc6f963-411b-58b5-8483-a32130c0f45d\tDuration: 201.67 ms\tBilled Duration: 202 ms \tMemory Size: 2048 MB\tMax Memory Used: 81 MB",
            "REPORT RequestId: a Duration: 1 ms Billed Duration: 2 ms Memory Size: 128 MB Billed Duration: 9 ms",
            "REPORT RequestId: a\tBilled  Duration: 2 ms\tMemory\tSize: 128 MB",
            "REPORT RequestId: a\tBilled Duration: 2.50 ms\tMemory Size: 128 MB\tInit Duration: 480.25 ms",
            "REPORT RequestId: a\tSome Billed Duration: 2 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB",
            "REPORT RequestId: a\tBilled Duration: 2 ms\tMemory Size: 128 MB\tXRAY TraceId: 1-5e\tSegmentId: 1a\tSampled: true",
            "REPORT RequestId: a\tBilled Duration: -0 ms\tMemory Size: 0 MB",
            "REPORT RequestId: a\u{a0}Billed Duration: 2 ms\u{2003}Memory Size:\u{b}128 MB",
            "REPORT RequestId: \u{e9}\tBilled Duration: 2 ms\tMemory Size: 128 MB",
            // Rejected: the general parser reads them again for its error.
            "REPORT RequestId: a\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used:",
            "REPORT RequestId: a\tBilled Duration: 2 s\tMemory Size: 128 MB",
            "REPORT RequestId: a\tDuration: x ms\tBilled Duration: 2 ms\tMemory Size: 128 MB",
            "REPORT RequestId: a\tBilled Duration: -2 ms\tMemory Size: 128 MB",
            "REPORT Billed Duration: 2 ms\tMemory Size: 128 MB",
            "REPORT RequestId: a\tMemory Size: 128 MB",
            "REPORT",
        ] {
            let general = parse_report_text(line, None).map(|r| (r.request_id, r.usage));
            match report_text_fields(line) {
                Some((id, usage)) => assert_eq!(Ok((id.into_owned(), usage)), general, "{line}"),
                None => assert!(
                    general.is_err() || !line.is_ascii() || line.contains('\u{b}'),
                    "{line}: fast path refused an ASCII line the general parser reads"
                ),
            }
            // Through the aggregator's entry point the outcome is the general parser's.
            let p = LambdaParser::default();
            match (p.parse_line(line), &general) {
                (Ok(Some(LambdaRecord::Report(r))), Ok((id, usage))) => {
                    assert_eq!((&r.request_id, &r.usage), (id, usage))
                }
                (Err(e), Err(g)) => assert_eq!(&e, g, "{line}"),
                (got, _) => panic!("{line}: {got:?} vs {general:?}"),
            }
        }
    }

    fn read_all(a: &mut LambdaAggregator, name: &str, text: &str) -> SourceReport {
        let budget = ErrorBudget { max_ratio: Decimal::ONE, max_examples: 10 };
        a.read(name, std::io::Cursor::new(text.as_bytes().to_vec()), &budget).unwrap()
    }

    #[test]
    fn lines_across_files_and_days_join_once_and_malformed_lines_count() {
        let id = "8fc6f963-411b-58b5-8483-a32130c0f45d";
        let day1 = format!(
            "2026-01-01T23:59:59.900Z START RequestId: {id} Version: $LATEST\n\
             2026-01-01T23:59:59.950Z {{\"accountant_id\":\"acct-1\",\"requestId\":\"{id}\",\"timestamp\":\"2026-01-01T23:59:59.950Z\"}}\n\
             2026-01-01T23:59:59.960Z {{\"accountant_id\":\"acct-1\",\"requestId\":\"{id}\"\n\
             2026-01-01T23:59:59.970Z REPORT RequestId: x\tBilled Duration: 1 s\tMemory Size: 128 MB\n"
        );
        let day2 = format!(
            "2026-01-02T00:00:00.100Z END RequestId: {id}\n\
             2026-01-02T00:00:00.101Z REPORT RequestId: {id}\tDuration: 200.5 ms\tBilled Duration: 201 ms\tMemory Size: 1024 MB\n\
             2026-01-02T00:00:00.200Z REPORT RequestId: {id}\tDuration: 200.5 ms\tBilled Duration: 201 ms\tMemory Size: 1024 MB\n\
             2026-01-02T00:00:01.000Z REPORT RequestId: other\tDuration: 1 ms\tBilled Duration: 1.5 ms\tMemory Size: 128 MB\n"
        );
        let mut a = LambdaAggregator::new(LambdaConfig::default());
        let r1 = read_all(&mut a, "day1.log", &day1);
        let r2 = read_all(&mut a, "day2.log", &day2);
        assert_eq!((r1.lines, r1.records, r1.ignored, r1.malformed), (4, 1, 1, 2));
        assert!(r1.examples[0].error.starts_with("invalid JSON"), "{:?}", r1.examples);
        assert_eq!(
            (r1.examples[1].line, r1.examples[1].error.as_str()),
            (4, "field Billed Duration: expected unit ms, got none")
        );
        assert_eq!((r2.lines, r2.records, r2.ignored, r2.malformed), (4, 3, 1, 0));
        let (totals, stats) = a.finish().unwrap();
        assert_eq!((stats.reports, stats.duplicate_reports, stats.joined, stats.reports_without_tenant), (3, 1, 1, 1));
        let day2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let acct = TenantId::new("acct-1").unwrap();
        // Counted once, on the REPORT's day, with the scale of the per-invocation decimals.
        assert_eq!(totals.day(Driver::LambdaGbSeconds, day2).unwrap()[&acct].to_string(), "0.2010000000000");
        assert_eq!(totals.day(Driver::LambdaInvocations, day2).unwrap()[&acct].to_string(), "1");
        assert_eq!(totals.day(Driver::LambdaDurationMs, day2).unwrap()[&acct].to_string(), "201");
        let un = TenantId::unattributed();
        assert_eq!(totals.day(Driver::LambdaGbSeconds, day2).unwrap()[&un].to_string(), "0.00018750000000");
        assert!(totals.day(Driver::LambdaGbSeconds, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).is_none());
    }

    #[test]
    fn integer_sums_equal_per_invocation_decimals_digit_for_digit() {
        let mut fast = LambdaAggregator::new(LambdaConfig::default());
        let mut expected = DriverTotals::new();
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let acct = TenantId::new("a").unwrap();
        for (i, (ms, mb)) in
            [("202", "2048"), ("1.5", "128"), ("0", "10240"), ("7", "3008"), ("2.50", "512")].iter().enumerate()
        {
            let id = format!("r{i}");
            fast.push(tenant(&id, "a")).unwrap();
            let usage = ReportUsage::OnDemand { billed_duration_ms: d(ms), memory_size_mb: d(mb) };
            let r = Report { request_id: id, time: Some(day.and_hms_opt(1, 0, 0).unwrap().and_utc()), usage };
            expected.add(Driver::LambdaInvocations, day, &acct, Decimal::ONE).unwrap();
            expected.add(Driver::LambdaGbSeconds, day, &acct, r.gb_seconds().unwrap()).unwrap();
            expected.add(Driver::LambdaDurationMs, day, &acct, d(ms)).unwrap();
            fast.push(LambdaRecord::Report(r)).unwrap();
        }
        let (totals, _) = fast.finish().unwrap();
        let text =
            |t: &DriverTotals| t.iter().map(|(dr, dy, tn, q)| format!("{dr:?} {dy} {tn} {q}")).collect::<Vec<_>>();
        assert_eq!(text(&totals), text(&expected));
    }

    #[test]
    fn gzip_read_on_a_thread_gives_the_same_totals() {
        use std::io::Write;
        let mut text = String::new();
        for i in 0..20_000u32 {
            let id = format!("{i:08x}-0000-4000-8000-000000000000");
            text.push_str(&format!(
                "2026-01-01T10:00:00.000Z {{\"accountant_id\":\"t{}\",\"requestId\":\"{id}\"}}\n",
                i % 7
            ));
            text.push_str(&format!(
                "2026-01-01T10:00:01.000Z REPORT RequestId: {id}\tBilled Duration: {} ms\tMemory Size: 128 MB\n",
                i % 1000
            ));
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let budget = ErrorBudget::default();
        let mut plain = LambdaAggregator::new(LambdaConfig::default());
        read_all(&mut plain, "plain", &text);
        let mut zipped = LambdaAggregator::new(LambdaConfig::default());
        let report =
            zipped.read("gz", super::super::decompress_threaded(std::io::Cursor::new(gz)).unwrap(), &budget).unwrap();
        assert_eq!((report.lines, report.records), (40_000, 40_000));
        assert_eq!(plain.finish().unwrap(), zipped.finish().unwrap());
    }
}
