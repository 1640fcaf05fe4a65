//! Agent runtime evidence (Bedrock AgentCore): sessions, tool calls, vCPU-hours and GB-hours per tenant.
//!
//! The runtime's usage logs (`USAGE_LOGS` vended logs) are per session, not per tenant; the application
//! provides a session → tenant map (attribution-and-style.md §B.3, §E.7). One JSON record per line:
//!
//! ```json
//! {"event_timestamp":1790812800000,"attributes":{"session.id":"s-1"},
//!  "metrics":{"agent.runtime.vcpu.hours.used":0.000027,"agent.runtime.memory.gb_hours.used":0.000011}}
//! ```
//!
//! The session id is read from `session.id`, `session_id` or `sessionId` (top level or in `attributes`);
//! the time from `event_timestamp`, `timestamp`, `time` or `@timestamp` (or an export prefix); usage from
//! `agent.runtime.vcpu.hours.used` / `vcpu_hours`, `agent.runtime.memory.gb_hours.used` / `gb_hours` and
//! `agent.runtime.tool_calls` / `tool_calls` (in `metrics` or at top level); a record whose `event` or
//! `type` is `tool_call` counts one tool call. The exact vended-log field names are to be verified on real
//! data; the accepted names are deliberately broad. Sessions not in the map are recorded under
//! `UNATTRIBUTED`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::BufRead;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::json::{self, Object};
use super::reader::{Outcome, Records, read_lines, read_records};
use super::time::{json_timestamp, split_message};
use super::{ErrorBudget, EvidenceError, ParseError, Result, SourceReport};
use crate::driver::{Driver, DriverTotals};
use crate::tenant::TenantId;

const SESSION_KEYS: [&str; 3] = ["session.id", "session_id", "sessionId"];
const TIME_KEYS: [&str; 4] = ["event_timestamp", "timestamp", "time", "@timestamp"];

/// One usage record of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentUsage {
    pub session_id: String,
    pub time: Option<DateTime<Utc>>,
    pub vcpu_hours: Decimal,
    pub gb_hours: Decimal,
    pub tool_calls: Decimal,
}

/// Parses one usage log line; `Ok(None)` for lines without a session id.
pub fn parse_line(line: &str) -> Result<Option<AgentUsage>, ParseError> {
    let m = split_message(line);
    if !m.body.starts_with('{') {
        return Ok(None);
    }
    let top = match Object::parse(m.body) {
        Ok(o) => o,
        Err(e) if SESSION_KEYS.iter().any(|k| m.body.contains(k)) => return Err(e),
        Err(_) => return Ok(None), // not a usage record
    };
    let attrs = match top.get("attributes") {
        Some(raw) if raw.get().starts_with('{') => top.object("attributes", "attributes")?,
        _ => None,
    };
    let metrics = match top.get("metrics") {
        Some(raw) if raw.get().starts_with('{') => top.object("metrics", "metrics")?,
        _ => None,
    };
    let Some((raw, i)) = top.get_any(&SESSION_KEYS).or_else(|| attrs.as_ref().and_then(|a| a.get_any(&SESSION_KEYS)))
    else {
        return Ok(None);
    };
    let session_id = json::scalar_text(raw, SESSION_KEYS[i])?;
    if session_id.is_empty() {
        return Err(ParseError::bad(SESSION_KEYS[i], "empty"));
    }
    let time = match top.get_any(&TIME_KEYS) {
        Some((raw, i)) => Some(json_timestamp(raw, TIME_KEYS[i])?),
        None => m.time,
    };
    let metric = |keys: &[&str]| -> Result<Decimal, ParseError> {
        let found = metrics.as_ref().and_then(|o| o.get_any(keys)).or_else(|| top.get_any(keys));
        match found {
            None => Ok(Decimal::ZERO),
            Some((raw, i)) => {
                let v = json::number(raw, keys[i])?;
                if v.is_sign_negative() && !v.is_zero() {
                    Err(ParseError::bad(keys[i], format!("negative value {v}")))
                } else {
                    Ok(v)
                }
            }
        }
    };
    let mut tool_calls = metric(&["agent.runtime.tool_calls", "tool_calls"])?;
    let event = match top.get_any(&["event", "type"]) {
        Some((raw, _)) if raw.get().starts_with('"') => json::string(raw, "event")?,
        _ => String::new(),
    };
    if event == "tool_call" {
        tool_calls += Decimal::ONE;
    }
    Ok(Some(AgentUsage {
        session_id,
        time,
        vcpu_hours: metric(&["agent.runtime.vcpu.hours.used", "vcpu_hours"])?,
        gb_hours: metric(&["agent.runtime.memory.gb_hours.used", "gb_hours"])?,
        tool_calls,
    }))
}

/// Reads a session → tenant map: CSV lines `session_id,tenant`; blank lines, `#` comments and a
/// `session_id,tenant` header are skipped. Strict: any bad line or a session mapped twice to different
/// tenants is an error (it is configuration, not logs).
pub fn read_session_map<R: BufRead>(source_name: &str, reader: R) -> Result<BTreeMap<String, TenantId>, EvidenceError> {
    let mut map = BTreeMap::new();
    let mut bad = None;
    let budget = ErrorBudget { max_ratio: Decimal::ZERO, max_examples: 1 };
    let report = read_lines(source_name, reader, &budget, |line, text| {
        let t = text.trim();
        if t.starts_with('#') || t.eq_ignore_ascii_case("session_id,tenant") {
            return Ok(Outcome::Ignored);
        }
        let (s, tenant) = t.split_once(',').ok_or_else(|| ParseError::Invalid("expected session_id,tenant".into()))?;
        let tenant = TenantId::new(tenant.trim()).map_err(ParseError::from)?;
        if let Some(prev) = map.insert(s.trim().to_owned(), tenant.clone())
            && prev != tenant
        {
            bad.get_or_insert((line, format!("session {s:?} mapped to both {prev} and {tenant}")));
        }
        Ok(Outcome::Record)
    });
    report?;
    match bad {
        Some((line, message)) => Err(EvidenceError::Invalid { source_name: source_name.to_owned(), line, message }),
        None => Ok(map),
    }
}

/// Options of [`AgentAggregator`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub sessions: BTreeMap<String, TenantId>,
    /// How many (session, day) pairs are remembered to count each session once per day (default
    /// 1,000,000). Beyond it, a session active on a day may be counted again.
    pub session_window: usize,
}

impl AgentConfig {
    pub fn new(sessions: BTreeMap<String, TenantId>) -> Self {
        Self { sessions, session_window: 1_000_000 }
    }
}

/// Counters of the agent aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentStats {
    pub records: u64,
    pub unmapped_records: u64,
    pub without_day: u64,
}

/// Streams agent usage logs into driver totals.
#[derive(Debug)]
pub struct AgentAggregator {
    config: AgentConfig,
    seen: HashSet<(String, NaiveDate)>,
    seen_order: VecDeque<(String, NaiveDate)>,
    totals: DriverTotals,
    stats: AgentStats,
}

impl AgentAggregator {
    pub fn new(config: AgentConfig) -> Self {
        Self {
            config,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            totals: DriverTotals::new(),
            stats: AgentStats::default(),
        }
    }

    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        read_records(self, source_name, reader, budget)
    }

    /// Adds one record. `Err` only when a total overflows exact arithmetic.
    pub fn push(&mut self, rec: AgentUsage) -> Result<(), String> {
        self.stats.records += 1;
        let Some(day) = rec.time.map(|t| t.date_naive()) else {
            self.stats.without_day += 1;
            return Ok(());
        };
        let tenant = match self.config.sessions.get(&rec.session_id) {
            Some(t) => t.clone(),
            None => {
                self.stats.unmapped_records += 1;
                TenantId::unattributed()
            }
        };
        let mut add = |d: Driver, q: Decimal| -> Result<(), String> {
            if q.is_zero() { Ok(()) } else { self.totals.add(d, day, &tenant, q).map_err(|e| e.to_string()) }
        };
        add(Driver::AgentVcpuHours, rec.vcpu_hours)?;
        add(Driver::AgentGbHours, rec.gb_hours)?;
        add(Driver::AgentToolCalls, rec.tool_calls)?;
        let key = (rec.session_id, day);
        if !self.seen.contains(&key) {
            self.totals.add(Driver::AgentSessions, day, &tenant, Decimal::ONE).map_err(|e| e.to_string())?;
            if self.config.session_window > 0 {
                self.seen.insert(key.clone());
                self.seen_order.push_back(key);
                while self.seen_order.len() > self.config.session_window {
                    if let Some(old) = self.seen_order.pop_front() {
                        self.seen.remove(&old);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> (DriverTotals, AgentStats) {
        (self.totals, self.stats)
    }
}

impl Records for AgentAggregator {
    type Record = AgentUsage;

    fn parse(&self, text: &str) -> Result<Option<AgentUsage>, ParseError> {
        parse_line(text)
    }

    fn add(&mut self, record: AgentUsage) -> Result<(), String> {
        self.push(record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn parses_and_aggregates() {
        let lines = [
            r#"{"event_timestamp":1790812800000,"attributes":{"session.id":"s-1"},"metrics":{"agent.runtime.vcpu.hours.used":0.000027,"agent.runtime.memory.gb_hours.used":"0.000011"}}"#,
            r#"{"timestamp":"2026-10-01T10:00:00Z","session_id":"s-1","event":"tool_call"}"#,
            r#"{"timestamp":"2026-10-01T11:00:00Z","sessionId":"s-2","vcpu_hours":1}"#,
            r#"{"timestamp":"2026-10-01T11:00:00Z","sessionId":"s-2","vcpu_hours":-1}"#,
            r#"{"no_session":true}"#,
        ];
        let map = read_session_map("m.csv", "session_id,tenant\n# comment\ns-1,acct-1\n".as_bytes()).unwrap();
        let mut a = AgentAggregator::new(AgentConfig::new(map));
        let budget = ErrorBudget { max_ratio: Decimal::new(5, 1), max_examples: 5 };
        let r = a.read("usage.log", lines.join("\n").as_bytes(), &budget).unwrap();
        assert_eq!((r.records, r.ignored, r.malformed), (3, 1, 1));
        let (t, stats) = a.finish();
        assert_eq!(stats.unmapped_records, 1);
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let acct = TenantId::new("acct-1").unwrap();
        assert_eq!(t.day(Driver::AgentSessions, day).unwrap()[&acct], Decimal::ONE);
        assert_eq!(t.day(Driver::AgentToolCalls, day).unwrap()[&acct], Decimal::ONE);
        assert_eq!(t.day(Driver::AgentVcpuHours, day).unwrap()[&acct], Decimal::from_str("0.000027").unwrap());
        assert_eq!(t.day(Driver::AgentVcpuHours, day).unwrap()[&TenantId::unattributed()], Decimal::ONE);
        assert!(read_session_map("m.csv", "s-1,a\ns-1,b\n".as_bytes()).is_err());
        assert!(read_session_map("m.csv", "s-1\n".as_bytes()).is_err());
    }
}
