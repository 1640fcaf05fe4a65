//! A period's lines handed to the store as they are made ([`LineChunks`]).
//!
//! Splitting the shared pool of a 2,000-tenant month makes millions of attributed rows (tenants ×
//! days × the shared lines' services and usage types: 2.6 million for a generated 1M-row month
//! split by direct cost). Made whole and then written, they held ~1.4 GB. Here the split runs on
//! a thread of its own and sends its rows a day at a time through a channel of one chunk; the
//! store writes each chunk as it comes (SQLite inserts it in the period's transaction), so one
//! day's rows are held, and the split overlaps the write on a second core.
//!
//! What the report needs of the lines (types, totals, tenants) is gathered as they pass
//! ([`LineStats`]), and the split's conservation check (direct + attributed + unattributed =
//! input, per measure and currency) runs before the store may commit: a failure there, or in the
//! split, makes [`LineChunks::pool`] fail, the store rolls back, and the caller gets the cause
//! from [`PeriodChunks::take_failure`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use super::spill::PeriodLines;
use crate::aggregate::{Amounts, CostLine, LineStats, totals_by_currency};
use crate::attribute::{AttributionInputs, SplitEnd, attribute_into, attribute_stream};
use crate::error::{Error, Result};
use crate::period::BillingPeriod;
use curflow_attribution::Coverage;
use curflow_store::LineChunks;

/// What the split's thread returns: its end, and the input's totals per currency when it read
/// them as they came (lines merged from spilled runs: see [`PeriodChunks::split`]).
type SplitResult = Result<(SplitEnd, Option<BTreeMap<String, Amounts>>)>;

/// Where the lines come from.
enum Source {
    /// Lines not attributed: held ones in one chunk, spilled ones a chunk at a time.
    Ready(Box<dyn Iterator<Item = Result<Vec<CostLine>>> + Send>),
    /// The split's thread and the channel it sends its chunks on.
    Split { chunks: Option<Receiver<Vec<CostLine>>>, thread: Option<JoinHandle<SplitResult>> },
}

/// A period's lines for [`curflow_store::CostStore::replace_split_period_chunks`].
pub(crate) struct PeriodChunks {
    period: BillingPeriod,
    source: Source,
    /// The input's totals per currency, when the lines are split (the conservation check).
    before: Option<BTreeMap<String, Amounts>>,
    stats: LineStats,
    pool: Vec<CostLine>,
    coverage: Option<Coverage>,
    /// Why making the lines failed, for the caller (the store only sees that they did).
    failure: Option<Error>,
}

impl PeriodChunks {
    /// `lines` as they are, no pool.
    pub(crate) fn ready(period: BillingPeriod, lines: PeriodLines) -> Self {
        Self::new(period, Source::Ready(lines.into_chunks()), None)
    }

    /// `lines` split with `inputs` on a thread of its own, as the store reads them. Lines merged
    /// from spilled runs are read once, a chunk at a time: the tagged ones go to the store as they
    /// come, the shared ones are kept for the split, and the input's totals are summed on the way.
    pub(crate) fn split(period: BillingPeriod, lines: PeriodLines, inputs: Arc<AttributionInputs>) -> Result<Self> {
        let before = match &lines {
            PeriodLines::Held(held) => Some(totals_by_currency(held)?),
            PeriodLines::Spilled(_) => None,
        };
        // One chunk in the channel, one being written, one being made: a day's rows a few times.
        let (send, chunks) = sync_channel::<Vec<CostLine>>(1);
        let thread = std::thread::Builder::new()
            .name("curflow-split".into())
            .spawn(move || {
                let mut sink = |chunk: Vec<CostLine>| {
                    send.send(chunk).map_err(|_| Error::Internal("the store stopped reading the split".into()))
                };
                match lines {
                    PeriodLines::Held(held) => Ok((attribute_into(held, &inputs, &mut sink)?, None)),
                    spilled => {
                        let mut seen = LineStats::default();
                        let read = spilled.into_chunks().map(|chunk| {
                            let chunk = chunk?;
                            seen.add(&chunk)?;
                            Ok(chunk)
                        });
                        let end = attribute_stream(read, &inputs, &mut sink)?;
                        Ok((end, Some(seen.totals()?)))
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the attribution thread: {e}")))?;
        Ok(Self::new(period, Source::Split { chunks: Some(chunks), thread: Some(thread) }, before))
    }

    fn new(period: BillingPeriod, source: Source, before: Option<BTreeMap<String, Amounts>>) -> Self {
        Self { period, source, before, stats: LineStats::default(), pool: Vec::new(), coverage: None, failure: None }
    }

    /// What the lines that went to the store add up to.
    pub(crate) fn stats(&self) -> &LineStats {
        &self.stats
    }

    /// The split's coverage, once the store took the pool (`None` without a split).
    pub(crate) fn take_coverage(&mut self) -> Option<Coverage> {
        self.coverage.take()
    }

    /// Why making the lines failed, if it did.
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    /// Makes whatever lines the store did not read (a store that settled the period without
    /// writing reads none), so [`Self::stats`] and the coverage describe the whole period.
    pub(crate) fn finish(&mut self) -> Result<()> {
        let drained = self.each_chunk(&mut |_| Ok(())).and_then(|()| self.pool().map(drop));
        match (drained, self.take_failure()) {
            (_, Some(failure)) => Err(failure),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Keeps `e` for the caller and tells the store the lines failed.
    fn fail(&mut self, e: Error) -> curflow_store::Error {
        let store_error = curflow_store::Error::LinesFailed(e.to_string());
        self.failure = Some(e);
        store_error
    }

    /// Waits for the split's end; checks that it conserved every measure per currency.
    fn end_split(&mut self) -> Result<()> {
        let Source::Split { chunks, thread } = &mut self.source else { return Ok(()) };
        drop(chunks.take());
        let Some(thread) = thread.take() else { return Ok(()) };
        let (end, streamed) = thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        if streamed.is_some() {
            self.before = streamed;
        }
        let (pool, coverage) = (end.pool, end.coverage);
        let after = self.stats.totals()?;
        let money = |t: &BTreeMap<String, Amounts>| {
            t.iter()
                .map(|(c, a)| (c.clone(), a.money(), a.usage_amount, a.pricing_quantity, a.line_items))
                .collect::<Vec<_>>()
        };
        if let Some(before) = &self.before
            && money(before) != money(&after)
        {
            return Err(Error::Internal(format!(
                "period {}: attribution changed the totals ({before:?} -> {after:?}); nothing written",
                self.period
            )));
        }
        self.pool = pool;
        self.coverage = Some(coverage);
        Ok(())
    }
}

impl LineChunks for PeriodChunks {
    fn next_chunk(&mut self) -> curflow_store::Result<Option<Cow<'_, [CostLine]>>> {
        let chunk = match &mut self.source {
            Source::Ready(lines) => match lines.next().transpose() {
                Ok(chunk) => chunk,
                Err(e) => return Err(self.fail(e)),
            },
            // A closed channel: the split ended (its result is read by `pool`).
            Source::Split { chunks, .. } => chunks.as_ref().and_then(|c| c.recv().ok()),
        };
        let Some(chunk) = chunk else { return Ok(None) };
        if let Err(e) = self.stats.add(&chunk) {
            return Err(self.fail(e.into()));
        }
        Ok(Some(Cow::Owned(chunk)))
    }

    fn pool(&mut self) -> curflow_store::Result<&[CostLine]> {
        if let Err(e) = self.end_split() {
            return Err(self.fail(e));
        }
        Ok(&self.pool)
    }
}

impl Drop for PeriodChunks {
    /// A store that stopped early (the period was already stored, a write failed) leaves the
    /// split waiting to send: closing the channel ends it, and it is joined here.
    fn drop(&mut self) {
        if let Source::Split { chunks, thread } = &mut self.source {
            drop(chunks.take());
            // Its result no longer matters (the write already failed or was settled); a panic
            // in it is logged, not raised again while dropping.
            if let Some(thread) = thread.take()
                && thread.join().is_err()
            {
                tracing::error!("the attribution thread panicked");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aggregate::sort_lines;
    use crate::attribute::AttributionOptions;
    use chrono::{NaiveDate, Utc};
    use curflow_attribution::DriverTotals;
    use curflow_model::ReportVersion;
    use curflow_model::testing::cost_key;
    use curflow_store::{CostStore, Invoices, PeriodRecord, ReplaceOutcome, SqliteStore};
    use rust_decimal::Decimal;

    fn record(period: BillingPeriod, version: &str) -> PeriodRecord {
        PeriodRecord {
            period,
            version: ReportVersion { id: version.into(), time: Utc::now() },
            format: "test".into(),
            source: "test".into(),
            files: 1,
            rows_read: 1,
            split_child_rows: 0,
            tag_key: "accountant_id".into(),
            inputs: None,
            processed_at: Utc::now(),
            invoice: Invoices::default(),
        }
    }

    /// Tenants `a` and `b` on three days, and a shared line each day.
    fn month(period: BillingPeriod, bad_tenant: bool) -> Vec<CostLine> {
        let mut lines = Vec::new();
        for d in 1..=3 {
            let day = NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
            let amounts = |cents| Amounts {
                unblended_cost: Decimal::new(cents, 2),
                amortized_cost: Decimal::new(cents, 2),
                line_items: 1,
                ..Amounts::default()
            };
            for (tenant, cents) in [("a", 300), (if bad_tenant { " b" } else { "b" }, 100)] {
                lines.push(CostLine::new(period, cost_key(day, Some(tenant), "AmazonEC2", "BoxUsage"), amounts(cents)));
            }
            lines.push(CostLine::new(period, cost_key(day, None, "AWSSupportBusiness", "Dollar"), amounts(1001)));
        }
        lines
    }

    fn inputs() -> Arc<AttributionInputs> {
        let options = AttributionOptions { tenant_key: "accountant_id".into(), ..AttributionOptions::default() };
        Arc::new(AttributionInputs::with_drivers(&options, DriverTotals::new()).unwrap())
    }

    /// The split's rows reach SQLite as they are made, in the period's one transaction: the stored
    /// lines are those of the split made whole, and the statistics are those of the stored lines.
    #[tokio::test]
    async fn a_split_written_as_it_is_made_stores_the_whole_split() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let period: BillingPeriod = "2026-10".parse().unwrap();
        let lines = month(period, false);
        let mut chunks = PeriodChunks::split(period, PeriodLines::Held(lines.clone()), inputs()).unwrap();
        let outcome = store.replace_split_period_chunks(&record(period, "v1"), &mut chunks, false).await.unwrap();
        assert_eq!(outcome, ReplaceOutcome::Replaced { previous: None });
        assert!(chunks.take_failure().is_none());
        chunks.finish().unwrap();
        let whole = crate::attribute::attribute(lines, &inputs()).unwrap();
        let (mut want, mut want_pool) = (whole.lines, whole.pool);
        sort_lines(&mut want);
        sort_lines(&mut want_pool);
        let stored = store.cost_lines(period).await.unwrap();
        assert_eq!(stored, want);
        assert_eq!(store.pool_lines(period).await.unwrap(), want_pool);
        assert_eq!(chunks.stats().lines(), want.len());
        assert_eq!(chunks.stats().totals().unwrap(), totals_by_currency(&want).unwrap());
        assert_eq!(chunks.stats().tenants(), 2);
        assert!(chunks.take_coverage().is_some());
    }

    /// Lines spilled to sorted runs (a period that outgrew its memory) are split as they are read
    /// back: the stored rows, pool, statistics and conservation are those of the same lines held.
    #[tokio::test]
    async fn spilled_lines_split_as_they_are_read_store_what_held_lines_store() {
        let dir = tempfile::tempdir().unwrap();
        let period: BillingPeriod = "2026-10".parse().unwrap();
        let mut lines = month(period, false);
        sort_lines(&mut lines);
        let mut stored = Vec::new();
        for spill in [false, true] {
            let mut store = SqliteStore::open(&dir.path().join(format!("s{spill}.db"))).unwrap();
            let period_lines = if spill {
                let mut gathering =
                    super::super::spill::Gathering::new(2 * (size_of::<CostLine>() + 16), Some(dir.path().into()), 0);
                for l in &lines {
                    gathering.add(l.period, l.key.clone(), &l.amounts).unwrap();
                }
                assert!(gathering.spilled_bytes() > 0);
                gathering.into_lines().unwrap()
            } else {
                PeriodLines::Held(lines.clone())
            };
            assert_eq!(matches!(period_lines, PeriodLines::Spilled(_)), spill);
            let mut chunks = PeriodChunks::split(period, period_lines, inputs()).unwrap();
            store.replace_split_period_chunks(&record(period, "v1"), &mut chunks, false).await.unwrap();
            assert!(chunks.take_failure().is_none());
            chunks.finish().unwrap();
            assert_eq!(chunks.stats().totals().unwrap(), totals_by_currency(&lines).unwrap());
            assert_eq!(chunks.stats().tenants(), 2);
            stored.push((store.cost_lines(period).await.unwrap(), store.pool_lines(period).await.unwrap()));
        }
        assert!(stored[0].0.len() > lines.len());
        assert_eq!(stored[0], stored[1]);
    }

    /// A split that fails (here: a tenant tag value with a leading space) fails the write after
    /// the store began it: the store rolls back and keeps the stored version, and the caller gets
    /// the split's own error, not the store's.
    #[tokio::test]
    async fn a_split_that_fails_while_the_store_writes_leaves_the_stored_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let period: BillingPeriod = "2026-10".parse().unwrap();
        let first = month(period, false);
        store.replace_split_period(&record(period, "v1"), &first, &[], false).await.unwrap();
        let before = store.cost_lines(period).await.unwrap();

        let mut chunks = PeriodChunks::split(period, PeriodLines::Held(month(period, true)), inputs()).unwrap();
        let written = store.replace_split_period_chunks(&record(period, "v2"), &mut chunks, true).await;
        assert!(matches!(written, Err(curflow_store::Error::LinesFailed(_))), "{written:?}");
        let failure = chunks.take_failure().unwrap();
        assert!(matches!(failure, Error::Argument(_)), "{failure:?}");
        assert!(failure.to_string().contains("\" b\""), "{failure}");
        assert_eq!(store.cost_lines(period).await.unwrap(), before);
        assert_eq!(store.period(period).await.unwrap().unwrap().version.id, "v1");
    }

    /// A store that settles the period without reading a line (the version is already stored)
    /// leaves the split waiting: `finish` makes the lines anyway, so the report shows them.
    #[tokio::test]
    async fn a_period_settled_without_writing_still_reports_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let period: BillingPeriod = "2026-10".parse().unwrap();
        let lines = month(period, false);
        let record = record(period, "v1");
        store.replace_split_period(&record, &lines, &[], false).await.unwrap();
        let mut chunks = PeriodChunks::split(period, PeriodLines::Held(lines.clone()), inputs()).unwrap();
        let outcome = store.replace_split_period_chunks(&record, &mut chunks, false).await.unwrap();
        assert_eq!(outcome, ReplaceOutcome::Unchanged);
        assert_eq!(chunks.stats().lines(), 0);
        chunks.finish().unwrap();
        assert!(chunks.stats().lines() > lines.len());
        assert_eq!(chunks.stats().totals().unwrap(), totals_by_currency(&lines).unwrap());
        // And dropped unread, the split's thread ends.
        drop(PeriodChunks::split(period, PeriodLines::Held(lines), inputs()).unwrap());
    }
}
