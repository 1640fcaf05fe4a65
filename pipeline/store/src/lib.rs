//! Where actual costs are kept: one logical usage table, replaced a billing period at a time.
//!
//! Contract (design.md "Store contract"): a period is replaced as a unit (readers see the old or
//! the new version, never a mix); re-processing the stored version is a no-op; an older delivery
//! never replaces a newer one; a failed write leaves the store exactly as before.

pub mod dynamodb;
pub mod error;
pub mod finance;
mod hash;
pub mod ledger;
pub mod sqlite;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::error::{Error, Result};
pub use curflow_model::Invoices;
use curflow_model::ReportVersion;
use curflow_model::aggregate::{CostLine, LineSource};
use curflow_model::period::BillingPeriod;

pub use finance::FinanceStore;
pub use ledger::UsageLedger;
pub use sqlite::SqliteStore;

/// What the store knows about a stored billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodRecord {
    pub period: BillingPeriod,
    pub version: ReportVersion,
    /// Input format (`legacy CUR Parquet`, ...).
    pub format: String,
    /// The manifest or files the version was read from.
    pub source: String,
    pub files: u64,
    pub rows_read: u64,
    pub split_child_rows: u64,
    /// Tenant tag key the period was processed with.
    pub tag_key: String,
    /// Fingerprint (SHA-256, hex) of every input besides the delivery that shaped the stored
    /// lines: the tag key, attribution rules, assignments and usage-evidence totals. The same
    /// delivery with other inputs is processed again. `None`: stored by a curflow before
    /// fingerprints (the next run of that period recomputes it once).
    pub inputs: Option<String>,
    pub processed_at: DateTime<Utc>,
    /// The bill's invoice ids seen in the version (blank until AWS finalises the month).
    pub invoice: Invoices,
}

/// The result of [`CostStore::replace_period`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplaceOutcome {
    /// The period now holds the new version (`previous` is what it replaced, if anything).
    Replaced { previous: Option<ReportVersion> },
    /// The same version was already stored: nothing changed.
    Unchanged,
    /// A newer version is stored; the delivery was refused and nothing changed.
    RefusedOlder { stored: ReportVersion },
}

/// What a period's lines were made from: the delivery's version and the fingerprint of the other
/// inputs (see [`PeriodRecord::inputs`]).
#[derive(Debug, Clone, Copy)]
pub struct MadeFrom<'a> {
    pub version: &'a ReportVersion,
    pub inputs: Option<&'a str>,
}

impl<'a> MadeFrom<'a> {
    /// What a stored record was made from.
    pub fn record(r: &'a PeriodRecord) -> Self {
        MadeFrom { version: &r.version, inputs: r.inputs.as_deref() }
    }
}

/// Decides what a delivery does to a stored period (shared by every store implementation).
///
/// The same version made from the same inputs is `Unchanged`; the same version made from other
/// inputs (tag key, rules, assignments, usage evidence) is computed again and replaces the stored
/// lines; another version replaces the stored one only when it is newer.
pub fn decide(stored: Option<MadeFrom<'_>>, incoming: MadeFrom<'_>, force: bool) -> ReplaceOutcome {
    match stored {
        Some(s) if s.version.id == incoming.version.id && s.inputs == incoming.inputs && !force => {
            ReplaceOutcome::Unchanged
        }
        Some(s) if !force && s.version.id != incoming.version.id && !incoming.version.supersedes(s.version) => {
            ReplaceOutcome::RefusedOlder { stored: s.version.clone() }
        }
        other => ReplaceOutcome::Replaced { previous: other.map(|s| s.version.clone()) },
    }
}

/// Which lines of a period a read wants (see [`CostStore::cost_lines_where`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineFilter {
    /// `None`: every tenant. `Some(Some(t))`: tenant `t` only (tagged and attributed lines).
    /// `Some(None)`: only the lines that carry no tenant (the shared pool, unattributed).
    pub tenant: Option<Option<String>>,
    /// Only lines whose UTC usage day is in this inclusive range.
    pub days: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Only lines of this source ([`CostLine::source`]): a re-split reads the tagged CUR lines
    /// (`Cur`) of a period without its attributed rows, millions at thousands of tenants.
    pub source: Option<LineSource>,
}

impl LineFilter {
    /// Lines of one tenant; `None` selects the lines that carry no tenant.
    pub fn tenant(tenant: Option<&str>) -> Self {
        LineFilter { tenant: Some(tenant.map(str::to_string)), ..LineFilter::default() }
    }

    /// Lines of one source ([`CostLine::source`]).
    pub fn source(source: LineSource) -> Self {
        LineFilter { source: Some(source), ..LineFilter::default() }
    }

    /// The tenant a line belongs to for filtering: a blank tenant counts as none, as the stores
    /// partition it.
    fn tenant_of(line: &CostLine) -> Option<&str> {
        line.key.tenant.as_deref().filter(|t| !t.is_empty())
    }

    /// Whether the filter selects `line`.
    pub fn matches(&self, line: &CostLine) -> bool {
        let tenant_ok = match &self.tenant {
            None => true,
            Some(wanted) => Self::tenant_of(line) == wanted.as_deref(),
        };
        let day_ok = self.days.is_none_or(|(from, to)| (from..=to).contains(&line.key.usage_date));
        let source_ok = self.source.is_none_or(|s| line.source() == s);
        tenant_ok && day_ok && source_ok
    }
}

/// A usage table holding actual costs per billing period.
///
/// Async, used from the caller's one Tokio runtime: the DynamoDB store awaits the SDK directly (no
/// runtime or thread of its own), the SQLite store runs its short blocking statements on the
/// calling task (an embedded single-file store; `replace_period` is one transaction). `Send +
/// Sync` so a store built once (per Lambda cold start, per CLI run) is shared by reference.
#[async_trait::async_trait]
pub trait CostStore: Send + Sync {
    /// Where the store is, for messages.
    fn describe(&self) -> String;

    /// The stored record of a period, if any.
    async fn period(&self, period: BillingPeriod) -> Result<Option<PeriodRecord>>;

    /// Every stored period, oldest first.
    async fn periods(&self) -> Result<Vec<PeriodRecord>>;

    /// Atomically replaces the period with `lines` if `record.version` supersedes what is stored
    /// (or unconditionally with `force`). Verifies that what was written sums to `lines` before
    /// committing. The period keeps no separate pool (see [`CostStore::replace_split_period`]).
    async fn replace_period(
        &mut self,
        record: &PeriodRecord,
        lines: &[CostLine],
        force: bool,
    ) -> Result<ReplaceOutcome> {
        self.replace_split_period(record, lines, &[], force).await
    }

    /// [`CostStore::replace_period`] for an attributed period: `lines` are what readers see (tagged
    /// lines, tenants' attributed parts at the reader's grain, unattributed remainders) and `pool`
    /// the shared-pool lines they were split from, kept beside them in the same version (never
    /// returned by [`CostStore::cost_lines`], so nothing counts twice) so the period can be split
    /// again ([`CostStore::pool_lines`]) and explained per resource without reading the CUR.
    async fn replace_split_period(
        &mut self,
        record: &PeriodRecord,
        lines: &[CostLine],
        pool: &[CostLine],
        force: bool,
    ) -> Result<ReplaceOutcome>;

    /// [`CostStore::replace_split_period`] with the lines as they are made ([`LineChunks`]): the
    /// shared-cost split produces its attributed rows a day at a time, and a 2,000-tenant month
    /// has millions of them. Both stores write each chunk as it comes, so the period is never held
    /// whole (SQLite inserts it in the period's transaction; DynamoDB sends its items and keeps
    /// per-partition counts, totals and digests for the read-back check). This default, for a
    /// store that cannot, gathers the chunks first.
    ///
    /// A chunk source cannot be replayed: a store that would have to write the lines again (the
    /// DynamoDB store when an older version switched the period while it wrote) fails with
    /// [`Error::Superseded`], retryable, and the caller reads the delivery again.
    async fn replace_split_period_chunks(
        &mut self,
        record: &PeriodRecord,
        chunks: &mut dyn LineChunks,
        force: bool,
    ) -> Result<ReplaceOutcome> {
        let mut lines = Vec::new();
        chunks.each_chunk(&mut |chunk| {
            lines.extend_from_slice(chunk);
            Ok(())
        })?;
        let pool = chunks.pool()?.to_vec();
        self.replace_split_period(record, &lines, &pool, force).await
    }

    /// All cost lines of a period, in key order.
    async fn cost_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>>;

    /// The shared-pool lines stored with the period's current version by
    /// [`CostStore::replace_split_period`], in key order; empty when the period was stored without
    /// a separate pool (not attributed, or by a curflow that stored every split part).
    async fn pool_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>>;

    /// The cost lines of a period that `filter` selects, in key order. Each store pushes the
    /// tenant down (SQLite: the `(billing_period, tenant)` index; DynamoDB: one partition, one
    /// Query) instead of reading the whole period; this default filters a full read.
    async fn cost_lines_where(&self, period: BillingPeriod, filter: &LineFilter) -> Result<Vec<CostLine>> {
        Ok(self.cost_lines(period).await?.into_iter().filter(|l| filter.matches(l)).collect())
    }
}

/// A period's lines for [`CostStore::replace_split_period_chunks`], handed over as they are made:
/// the cost lines in chunks, then the shared pool they were split from.
pub trait LineChunks: Send {
    /// The next chunk of cost lines, `None` once every chunk was handed over. A failure to make
    /// the lines is [`Error::LinesFailed`]: nothing may be committed then. (Pulled, not pushed, so
    /// an async store can await its writes between chunks.)
    fn next_chunk(&mut self) -> Result<Option<Cow<'_, [CostLine]>>>;

    /// Calls `write` with each chunk of cost lines in turn; stops at the first error and returns
    /// it.
    fn each_chunk(&mut self, write: &mut dyn FnMut(&[CostLine]) -> Result<()>) -> Result<()> {
        while let Some(chunk) = self.next_chunk()? {
            write(&chunk)?;
        }
        Ok(())
    }

    /// The shared-pool lines, once every chunk was written (empty for a period not attributed).
    /// Fails ([`Error::LinesFailed`]) when making the lines failed or they do not conserve the
    /// input: the caller must not commit.
    fn pool(&mut self) -> Result<&[CostLine]>;
}

/// [`LineChunks`] over lines already made: one chunk, and the pool.
pub struct SliceChunks<'a> {
    lines: Option<&'a [CostLine]>,
    pool: &'a [CostLine],
}

impl<'a> SliceChunks<'a> {
    pub fn new(lines: &'a [CostLine], pool: &'a [CostLine]) -> Self {
        Self { lines: Some(lines), pool }
    }
}

impl LineChunks for SliceChunks<'_> {
    fn next_chunk(&mut self) -> Result<Option<Cow<'_, [CostLine]>>> {
        Ok(self.lines.take().map(Cow::Borrowed))
    }

    fn pool(&mut self) -> Result<&[CostLine]> {
        Ok(self.pool)
    }
}

/// A whole store: actual costs, the finance side (estimates, budgets, alerts, reconciliations) and
/// the usage ledger. Every command works the same on either implementation.
pub trait Store: CostStore + FinanceStore + UsageLedger {}

impl<T: CostStore + FinanceStore + UsageLedger> Store for T {}

/// Opens the store named by a location: `dynamodb://<table>` (a DynamoDB table, which must exist;
/// `aws` sets its endpoint and region), otherwise a SQLite file (created on first use).
pub async fn open(location: &std::path::Path, aws: &curflow_aws::AwsSettings) -> Result<Box<dyn Store>> {
    if let Some(table) = location.to_str().and_then(dynamodb::table_of) {
        let store = dynamodb::DynamoStore::connect(table, aws).await?;
        store.check_table().await?;
        return Ok(Box::new(store));
    }
    Ok(Box::new(SqliteStore::open(location)?))
}

/// Opens a store that must already exist (read commands: a typo must not create an empty store);
/// a SQLite path that does not exist is [`Error::Missing`] and no file or directory is created.
pub async fn open_existing(location: &std::path::Path, aws: &curflow_aws::AwsSettings) -> Result<Box<dyn Store>> {
    if let Some(table) = location.to_str().and_then(dynamodb::table_of) {
        let store = dynamodb::DynamoStore::connect(table, aws).await?;
        store.check_table().await?;
        return Ok(Box::new(store));
    }
    Ok(Box::new(SqliteStore::open_existing(location)?))
}
