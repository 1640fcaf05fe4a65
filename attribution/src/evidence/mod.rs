//! Usage evidence: parsers that turn one log line or record into typed evidence, and streaming aggregators
//! that reduce many sources to [`DriverTotals`](crate::DriverTotals).
//!
//! | module | input | drivers |
//! |---|---|---|
//! | [`lambda`] | REPORT lines, `platform.report` JSON, app JSON lines with the tenant | GB-s, invocations, duration |
//! | [`dynamodb`] | app JSON lines with `ConsumedCapacity` and the tenant | read/write units, storage proxy |
//! | [`s3`] | S3 Inventory CSV rows, server access log lines, prefix → tenant map | byte-hours, requests |
//! | [`agent`] | agent runtime usage log lines, session → tenant map | sessions, tool calls, vCPU-h, GB-h |
//! | [`assignments`] | resource id / ARN glob → tenant table | (whole lines, before any split) |
//!
//! Every parser has a pure `parse_line(&str) -> Result<Option<Record>, ParseError>`: `Ok(None)` for lines
//! that are not evidence (other log output), `Err` for lines that look like evidence but are broken.
//! Aggregators read any `impl BufRead` (use [`decompress`] for `.gz`) line by line with a bounded line
//! buffer ([`MAX_LINE_BYTES`]); they keep only per (driver, day, tenant) sums plus the bounded windows each
//! documents, so memory is flat in the size of the logs.
//!
//! Bad input is counted, not fatal: each source gets a [`SourceReport`] with the number of malformed lines
//! and the first [`ErrorBudget::max_examples`] of them with line numbers. Invalid UTF-8, over-long lines and
//! a truncated or corrupt gzip stream are malformed lines too. Only when the malformed ratio of a source
//! exceeds [`ErrorBudget::max_ratio`] (default 1 %) does reading fail with
//! [`EvidenceError::TooManyMalformed`], naming the source and the ratio.

pub mod agent;
pub mod assignments;
mod dedupe;
pub mod dynamodb;
pub(crate) mod json;
pub mod lambda;
pub mod logs;
mod parallel;
mod reader;
pub mod s3;
pub(crate) mod time;

pub use reader::{MAX_LINE_BYTES, decompress, decompress_threaded};

/// Results of reading evidence: [`EvidenceError`] unless said otherwise.
pub type Result<T, E = EvidenceError> = std::result::Result<T, E>;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::exact_mul;
use crate::tenant::TenantIdError;

/// Why one line is not valid evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing field {0}")]
    MissingField(String),
    #[error("field {field}: {message}")]
    BadField { field: String, message: String },
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("line longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("truncated or corrupt input: {0}")]
    Truncated(String),
    #[error("invalid tenant id: {0}")]
    Tenant(#[from] TenantIdError),
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadField { field: field.into(), message: message.into() }
    }
    pub(crate) fn missing(field: impl Into<String>) -> Self {
        Self::MissingField(field.into())
    }
}

/// How much bad input a source may have before reading it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBudget {
    /// Largest tolerated fraction of malformed lines per source (default `0.01` = 1 %).
    pub max_ratio: Decimal,
    /// How many malformed lines are kept as examples per source (default 10).
    pub max_examples: usize,
}

impl Default for ErrorBudget {
    fn default() -> Self {
        Self { max_ratio: Decimal::new(1, 2), max_examples: 10 }
    }
}

/// A malformed line kept as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadLine {
    /// 1-based line number in the (decompressed) source.
    pub line: u64,
    pub error: String,
    /// The start of the line (lossy UTF-8, at most 160 characters).
    pub excerpt: String,
}

/// What reading one source found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceReport {
    /// File name, log group/stream or any label the caller gives.
    pub source: String,
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines that produced evidence.
    pub records: u64,
    /// Lines that are not evidence (other log output); not errors.
    pub ignored: u64,
    /// Malformed lines (including invalid UTF-8, over-long lines, a truncated stream).
    pub malformed: u64,
    /// The first malformed lines.
    pub examples: Vec<BadLine>,
    /// The stream ended early (truncated or corrupt compression); lines before the damage were read.
    pub truncated: bool,
}

impl SourceReport {
    /// Malformed lines as a percentage of lines, rounded to 2 places (for messages).
    pub fn malformed_percent(&self) -> Decimal {
        if self.lines == 0 {
            return Decimal::ZERO;
        }
        (Decimal::from(self.malformed) * Decimal::ONE_HUNDRED / Decimal::from(self.lines)).round_dp(2)
    }

    /// `Err` when the malformed ratio exceeds the budget (compared exactly: `malformed > max_ratio × lines`).
    pub fn check(&self, budget: &ErrorBudget) -> Result<(), EvidenceError> {
        let allowed = exact_mul(budget.max_ratio, Decimal::from(self.lines)).unwrap_or(Decimal::MAX);
        if Decimal::from(self.malformed) > allowed {
            return Err(EvidenceError::TooManyMalformed {
                source_name: self.source.clone(),
                malformed: self.malformed,
                lines: self.lines,
                percent: self.malformed_percent(),
                max_percent: (budget.max_ratio * Decimal::ONE_HUNDRED).normalize(),
                examples: self.examples.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn malformed(&mut self, line: u64, error: &ParseError, text: &[u8], budget: &ErrorBudget) {
        self.malformed += 1;
        if self.examples.len() < budget.max_examples {
            let excerpt: String = String::from_utf8_lossy(&text[..text.len().min(640)]).chars().take(160).collect();
            self.examples.push(BadLine { line, error: error.to_string(), excerpt });
        }
    }
}

/// Reading evidence failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error(
        "{source_name}: {malformed} of {lines} lines malformed ({percent} %), above the allowed {max_percent} %{}",
        examples.first().map(|e| format!("; first at line {}: {}", e.line, e.error)).unwrap_or_default()
    )]
    TooManyMalformed {
        source_name: String,
        malformed: u64,
        lines: u64,
        percent: Decimal,
        max_percent: Decimal,
        examples: Vec<BadLine>,
    },
    #[error("{source_name}: read error after line {line}: {message}")]
    Io { source_name: String, line: u64, message: String },
    #[error("{source_name}, line {line}: {message}")]
    Invalid { source_name: String, line: u64, message: String },
}
