//! The usage ledger: usage-driver quantities per (evidence source, UTC day, driver, tenant), kept
//! so that attribution reads a few thousand stored totals instead of re-reading a month of logs at
//! every CUR refresh.
//!
//! Contract, the same on SQLite and DynamoDB:
//! * one (source, day) is replaced as a unit: readers see the old or the new quantities of that
//!   day, never a mix or a part ([`UsageLedger::replace_usage_day`]);
//! * a day's version is a hash of its content, so re-ingesting the same evidence is a no-op
//!   ([`DayOutcome::Unchanged`]) and two ingests of the same day running at once end with one
//!   version (the last to switch), never with both added;
//! * quantities are exact decimals; what the day was read from is kept with it ([`Provenance`]).
//!
//! The store keeps text (driver names, tenant ids) and does not interpret it: the application maps
//! the rows to the attribution crate's drivers and tenants.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hash::short_hash;

pub(crate) mod sqlite;

/// Quantities of one (source, day): (driver, tenant) → quantity. Ordered, so the content hash and
/// the stored order do not depend on how the quantities were collected.
pub type DayQuantities = BTreeMap<(String, String), Decimal>;

/// What a day's quantities were read from, kept with them for an operator asking "where does this
/// number come from".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// The configured source's kind and location (`lambda-logs file:///logs`, `logs:/aws/lambda/app`, ...).
    pub location: String,
    /// The files, objects or log streams read for the day (at most [`MAX_PROVENANCE_ITEMS`];
    /// `items_total` says how many there were).
    pub items: Vec<String>,
    pub items_total: u64,
    /// The time range read, UTC, `[read_from, read_to)`.
    pub read_from: Option<DateTime<Utc>>,
    pub read_to: Option<DateTime<Utc>>,
    pub lines: u64,
    pub bytes: u64,
    pub malformed: u64,
    /// The curflow version that read it.
    pub reader: String,
}

/// The most item names a [`Provenance`] keeps (a day of a busy log group has thousands of streams).
pub const MAX_PROVENANCE_ITEMS: usize = 50;

/// A stored (source, day): its version and provenance, without the quantities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    pub source: String,
    pub day: NaiveDate,
    /// 16 hex digits of the SHA-256 of the day's content ([`content_version`]).
    pub version: String,
    pub ingested_at: DateTime<Utc>,
    /// Number of (driver, tenant) quantities.
    pub rows: u64,
    pub provenance: Provenance,
}

impl UsageDay {
    /// The record of `quantities` read now.
    pub fn new(source: &str, day: NaiveDate, quantities: &DayQuantities, provenance: Provenance) -> Self {
        Self {
            source: source.to_string(),
            day,
            version: content_version(source, day, quantities),
            ingested_at: Utc::now(),
            rows: quantities.len() as u64,
            provenance,
        }
    }
}

/// What [`UsageLedger::replace_usage_day`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DayOutcome {
    /// The day now holds the new quantities (`previous`: the version replaced, if any).
    Replaced { previous: Option<String> },
    /// The same content was already stored: nothing was written.
    Unchanged,
}

/// Where an ingestion of a source got to: every day up to `done_through` is stored, so a run cut
/// short (Lambda's time limit) continues with the next day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestCheckpoint {
    pub source: String,
    /// The last day of the run's range that is stored.
    pub done_through: NaiveDate,
    /// The last day of the range the run was asked for.
    pub target: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// The usage ledger of a store. See the module documentation for the contract.
#[async_trait::async_trait]
pub trait UsageLedger: Send + Sync {
    /// Replaces the quantities of (`day.source`, `day.day`) with `quantities` as one unit.
    /// `day.version` must be [`content_version`] of them.
    async fn replace_usage_day(&mut self, day: &UsageDay, quantities: &DayQuantities) -> Result<DayOutcome>;

    /// The stored days between `from` and `to` (inclusive) of every source, ordered by (source, day).
    async fn usage_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<UsageDay>>;

    /// One stored day with its quantities, as one consistent version.
    async fn usage_day(&self, source: &str, day: NaiveDate) -> Result<Option<(UsageDay, DayQuantities)>>;

    async fn usage_checkpoint(&self, source: &str) -> Result<Option<IngestCheckpoint>>;

    async fn put_usage_checkpoint(&mut self, checkpoint: &IngestCheckpoint) -> Result<()>;
}

/// The version of a day's content: 16 hex digits of the SHA-256 of the source, the day and every
/// (driver, tenant, quantity) in order, quantities normalised (`1.50` and `1.5` are the same).
pub fn content_version(source: &str, day: NaiveDate, quantities: &DayQuantities) -> String {
    let day = day.to_string();
    let texts: Vec<[String; 3]> = quantities
        .iter()
        .map(|((driver, tenant), q)| [driver.clone(), tenant.clone(), q.normalize().to_string()])
        .collect();
    let head = [source.as_bytes(), day.as_bytes()];
    short_hash(head.into_iter().chain(texts.iter().flatten().map(String::as_bytes)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use curflow_model::money::testing::d;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, n).unwrap()
    }

    fn quantities(rows: &[(&str, &str, &str)]) -> DayQuantities {
        rows.iter().map(|(dr, t, q)| ((dr.to_string(), t.to_string()), d(q))).collect()
    }

    #[test]
    fn the_version_is_the_content_whatever_the_scale_of_equal_quantities() {
        let a = quantities(&[("lambda_gb_seconds", "acct-1", "1.50"), ("lambda_gb_seconds", "acct-2", "2")]);
        let b = quantities(&[("lambda_gb_seconds", "acct-2", "2.000"), ("lambda_gb_seconds", "acct-1", "1.5")]);
        assert_eq!(content_version("lambda", day(1), &a), content_version("lambda", day(1), &b));
        assert_eq!(content_version("lambda", day(1), &a).len(), 16);
        let c = quantities(&[("lambda_gb_seconds", "acct-1", "1.5"), ("lambda_gb_seconds", "acct-2", "2.1")]);
        assert_ne!(content_version("lambda", day(1), &a), content_version("lambda", day(1), &c));
        assert_ne!(content_version("lambda", day(1), &a), content_version("lambda", day(2), &a));
        assert_ne!(content_version("lambda", day(1), &a), content_version("other", day(1), &a));
        // Field boundaries count: ("ab", "c") is not ("a", "bc").
        let x = quantities(&[("ab", "c", "1")]);
        let y = quantities(&[("a", "bc", "1")]);
        assert_ne!(content_version("s", day(1), &x), content_version("s", day(1), &y));
    }
}
