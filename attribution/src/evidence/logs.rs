//! One pass over application log files for every log-based driver.
//!
//! A Lambda log group mixes REPORT lines, the application's tenant lines and DynamoDB
//! `ConsumedCapacity` lines; agent runtime usage records may sit in the same export. Reading each
//! file once and offering every line to each parser saves the I/O and decompression of one pass per
//! aggregator, with the same totals.

use std::io::BufRead;

use super::agent::{self, AgentAggregator, AgentUsage};
use super::dynamodb::{CapacityRecord, DynamoAggregator};
use super::lambda::{LambdaAggregator, Prepared};
use super::parallel::{Buffers, read_lines_parallel};
use super::reader::{LineError, Outcome, Records, added};
use super::{ErrorBudget, ParseError, Result, SourceReport};

/// The log-based aggregators, fed together.
#[derive(Debug)]
pub struct LogAggregator {
    pub lambda: LambdaAggregator,
    pub dynamo: DynamoAggregator,
    /// Only with a session → tenant map (agent usage records name sessions, not tenants).
    pub agent: Option<AgentAggregator>,
    /// Kept from one source to the next.
    buffers: Buffers<ParsedLine>,
}

impl LogAggregator {
    pub fn new(lambda: LambdaAggregator, dynamo: DynamoAggregator) -> Self {
        Self { lambda, dynamo, agent: None, buffers: Buffers::default() }
    }

    /// Also reads agent runtime usage records.
    pub fn with_agent(mut self, agent: AgentAggregator) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Reads one source once. A line any parser records counts as a record; a line none
    /// understands but one finds malformed counts as malformed; a fatal error of any stops.
    ///
    /// The lines are parsed on worker threads and added here in input order
    /// ([`read_lines_parallel`]): the totals, counts and line numbers are those of a one-thread read.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        let lambda = self.lambda.parser().clone();
        let dynamo = self.dynamo.parser().clone();
        let agent = self.agent.is_some();
        let parse = |text: &str| {
            // The DynamoDB and agent parsers read JSON bodies only: a line without `{` (START,
            // END, text REPORT lines: most of a Lambda log) can only be a text REPORT.
            if memchr::memchr(b'{', text.as_bytes()).is_none() {
                return match lambda.prepare_line(text) {
                    Ok(None) => None,
                    Ok(Some(record)) => Some(ParsedLine::Lambda(record)),
                    lambda => Some(ParsedLine::Mixed(Box::new(Mixed { lambda, dynamo: Ok(None), agent: Ok(None) }))),
                };
            }
            let mixed = Mixed {
                lambda: lambda.prepare_line(text),
                dynamo: dynamo.parse_line(text),
                agent: if agent { agent::parse_line(text) } else { Ok(None) },
            };
            match mixed {
                // No parser found evidence or a fault in it (most log output): only counted.
                Mixed { lambda: Ok(None), dynamo: Ok(None), agent: Ok(None) } => None,
                Mixed { lambda: Ok(Some(record)), dynamo: Ok(None), agent: Ok(None) } => {
                    Some(ParsedLine::Lambda(record))
                }
                mixed => Some(ParsedLine::Mixed(Box::new(mixed))),
            }
        };
        let mut buffers = std::mem::take(&mut self.buffers);
        let report = read_lines_parallel(source_name, reader, budget, &mut buffers, parse, |line, parsed, ahead| {
            if let Some(ParsedLine::Lambda(ahead)) = ahead {
                self.lambda.look_ahead(ahead);
            }
            self.add(source_name, line, parsed)
        });
        self.buffers = buffers;
        report
    }

    /// Adds one line's records (in input order).
    fn add(&mut self, source_name: &str, line: u64, parsed: ParsedLine) -> std::result::Result<Outcome, LineError> {
        let mixed = match parsed {
            ParsedLine::Lambda(record) => {
                return added(source_name, line, Ok(Some(record)), |r| self.lambda.push_prepared(r));
            }
            ParsedLine::Mixed(mixed) => *mixed,
        };
        let outcomes = [
            added(source_name, line, mixed.lambda, |r| self.lambda.push_prepared(r)),
            self.dynamo.add_parsed(source_name, line, mixed.dynamo),
            match &mut self.agent {
                Some(aggregator) => aggregator.add_parsed(source_name, line, mixed.agent),
                None => Ok(Outcome::Ignored),
            },
        ];
        let mut malformed = None;
        let mut recorded = false;
        for outcome in outcomes {
            match outcome {
                Err(LineError::Fatal(e)) => return Err(LineError::Fatal(e)),
                Ok(Outcome::Record) => recorded = true,
                Err(e) => malformed = malformed.or(Some(e)),
                Ok(_) => {}
            }
        }
        match (recorded, malformed) {
            (true, _) => Ok(Outcome::Record),
            (false, Some(e)) => Err(e),
            (false, None) => Ok(Outcome::Ignored),
        }
    }
}

/// What the log parsers made of one line with something in it (on a parsing thread), small in
/// the common case.
enum ParsedLine {
    /// Only the Lambda parser found evidence (REPORTs, tenant lines).
    Lambda(Prepared),
    /// Anything else.
    Mixed(Box<Mixed>),
}

/// What each log parser made of one line.
struct Mixed {
    lambda: std::result::Result<Option<Prepared>, ParseError>,
    dynamo: std::result::Result<Option<CapacityRecord>, ParseError>,
    agent: std::result::Result<Option<AgentUsage>, ParseError>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::evidence::dynamodb::DynamoConfig;
    use crate::evidence::lambda::LambdaConfig;

    fn aggregator() -> LogAggregator {
        let keys = vec!["accountant_id".to_string()];
        LogAggregator::new(
            LambdaAggregator::new(LambdaConfig { tenant_keys: keys.clone(), ..LambdaConfig::default() }),
            DynamoAggregator::new(DynamoConfig { tenant_keys: keys, tables: None }),
        )
    }

    /// Invocations `from..to`: START, the tenant line, END and the REPORT (about 430 bytes).
    fn invocations(from: u32, to: u32) -> String {
        let pad = "x".repeat(120);
        (from..to)
            .map(|i| {
                let (id, tenant, ms) = (format!("00000000-0000-4000-8000-{i:012}"), i % 7, 100 + i % 900);
                format!(
                    "2026-10-01T00:00:01.000Z START RequestId: {id} Version: $LATEST\n\
                     2026-10-01T00:00:01.100Z\t{id}\tINFO\t{{\"accountant_id\":\"acct-{tenant}\",\"msg\":\"{pad}\"}}\n\
                     2026-10-01T00:00:01.200Z END RequestId: {id}\n\
                     2026-10-01T00:00:01.201Z REPORT RequestId: {id}\tDuration: 1.00 ms\tBilled Duration: {ms} ms\tMemory Size: 128 MB\tMax Memory Used: 1 MB\n"
                )
            })
            .collect()
    }

    /// One aggregator reading a log in several sources (each large enough for the threaded read,
    /// one small; cut between a tenant line and its REPORT) keeps its buffers from one source to
    /// the next and gives the totals and counts of reading the log as one source.
    #[test]
    fn buffers_kept_across_sources_change_nothing() {
        let text = invocations(0, 40_000);
        let budget = ErrorBudget::default();
        let mut whole = aggregator();
        whole.read("all", Cursor::new(text.clone()), &budget).unwrap();

        let mut parts = aggregator();
        let mut cuts = vec![0];
        for at in [5 << 20, (5 << 20) + 2_000, 11 << 20] {
            // After the first tenant line past `at`: its REPORT is in the next source.
            let line = text[at..].find("INFO\t").unwrap() + at;
            cuts.push(line + text[line..].find('\n').unwrap() + 1);
        }
        cuts.push(text.len());
        let mut lines = 0;
        for (i, w) in cuts.windows(2).enumerate() {
            let report = parts.read(&format!("part-{i}"), Cursor::new(text[w[0]..w[1]].to_string()), &budget).unwrap();
            lines += report.lines;
        }
        assert_eq!(lines, 160_000);
        let (whole_totals, whole_stats) = whole.lambda.finish().unwrap();
        let (part_totals, part_stats) = parts.lambda.finish().unwrap();
        assert_eq!(part_stats.joined, 40_000);
        assert_eq!((part_totals, part_stats), (whole_totals, whole_stats));
    }
}
