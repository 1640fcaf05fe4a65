//! One pass over application log files for every log-based driver.
//!
//! A Lambda log group mixes REPORT lines, the application's tenant lines and DynamoDB
//! `ConsumedCapacity` lines; agent runtime usage records may sit in the same export. Reading each
//! file once and offering every line to each parser saves the I/O and decompression of one pass per
//! aggregator, with the same totals.

use std::io::BufRead;

use super::agent::AgentAggregator;
use super::dynamodb::DynamoAggregator;
use super::lambda::LambdaAggregator;
use super::reader::{LineError, Outcome, Records, read_lines};
use super::{ErrorBudget, Result, SourceReport};

/// The log-based aggregators, fed together.
#[derive(Debug)]
pub struct LogAggregator {
    pub lambda: LambdaAggregator,
    pub dynamo: DynamoAggregator,
    /// Only with a session → tenant map (agent usage records name sessions, not tenants).
    pub agent: Option<AgentAggregator>,
}

impl LogAggregator {
    pub fn new(lambda: LambdaAggregator, dynamo: DynamoAggregator) -> Self {
        Self { lambda, dynamo, agent: None }
    }

    /// Also reads agent runtime usage records.
    pub fn with_agent(mut self, agent: AgentAggregator) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Reads one source once. A line any parser records counts as a record; a line none
    /// understands but one finds malformed counts as malformed; a fatal error of any stops.
    pub fn read(&mut self, source_name: &str, reader: impl BufRead, budget: &ErrorBudget) -> Result<SourceReport> {
        read_lines(source_name, reader, budget, |line, text| {
            let outcomes = [
                self.lambda.consume(source_name, line, text),
                self.dynamo.consume(source_name, line, text),
                match &mut self.agent {
                    Some(agent) => agent.consume(source_name, line, text),
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
        })
    }
}
