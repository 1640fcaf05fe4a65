//! One pass over application log files for every log-based driver.
//!
//! A Lambda log group mixes REPORT lines, the application's tenant lines and DynamoDB
//! `ConsumedCapacity` lines. Reading each file once and offering every line to both parsers halves
//! the I/O and decompression of reading it once per aggregator, with the same totals.

use std::io::BufRead;

use super::dynamodb::DynamoAggregator;
use super::lambda::LambdaAggregator;
use super::reader::{LineError, Outcome, read_lines};
use super::{ErrorBudget, EvidenceError, SourceReport};

/// The log-based aggregators, fed together.
#[derive(Debug)]
pub struct LogAggregator {
    pub lambda: LambdaAggregator,
    pub dynamo: DynamoAggregator,
}

impl LogAggregator {
    pub fn new(lambda: LambdaAggregator, dynamo: DynamoAggregator) -> Self {
        Self { lambda, dynamo }
    }

    /// Reads one source once. A line either parser records counts as a record; a line neither
    /// understands but one finds malformed counts as malformed; a fatal error of either stops.
    pub fn read<R: BufRead>(
        &mut self,
        source_name: &str,
        reader: R,
        budget: &ErrorBudget,
    ) -> Result<SourceReport, EvidenceError> {
        read_lines(source_name, reader, budget, |line, text| {
            let lambda = self.lambda.consume(source_name, line, text);
            let dynamo = self.dynamo.consume(source_name, line, text);
            match (lambda, dynamo) {
                (Err(LineError::Fatal(e)), _) | (_, Err(LineError::Fatal(e))) => Err(LineError::Fatal(e)),
                (Ok(Outcome::Record), _) | (_, Ok(Outcome::Record)) => Ok(Outcome::Record),
                (Err(e), _) | (_, Err(e)) => Err(e),
                _ => Ok(Outcome::Ignored),
            }
        })
    }
}
