//! A period's scanned lines kept within their share of `memory-limit-mb`: beyond it they are
//! written to `spill-dir` as sorted runs and merged back, in order, as the store reads them.
//!
//! The fast path's group tables are bounded by their pool, but the cost lines they become are not
//! (a line is ~290 bytes in memory): a 2,000-tenant month of 4 million groups held ~1.7 GiB of
//! lines whatever the limit. Here the delivery's lines are gathered in a [`PeriodAggregate`] as
//! before until it holds [`Gathering::budget`] lines; it is then sorted (lines of one key merged)
//! and written as one run ([`curflow_model::line_codec`], ~40 bytes a line) to an anonymous file
//! that the OS deletes when it is closed, and gathering starts afresh. At the end the runs and the
//! last lines in memory are merged by key ([`SortedLines`]): lines of one key from several runs are
//! summed exactly, so the stream holds the lines the unspilled aggregate would return, in the same
//! order. Memory then holds one buffered line per run, and the store takes the lines a chunk at a
//! time ([`super::chunks`]).

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use curflow_model::line_codec::{LineDecoder, LineEncoder};

use crate::aggregate::{Amounts, CostKey, CostLine, PeriodAggregate};
use crate::error::{Error, Result};
use crate::period::BillingPeriod;

/// Lines a store takes at once from a stream of lines.
pub(crate) const CHUNK_LINES: usize = 8192;

/// What one line costs in a [`PeriodAggregate`]: the line, its index slot and the table's spare room.
const LINE_BYTES: usize = size_of::<CostLine>() + 16;

/// A delivery's lines as they are gathered: in memory up to a budget, then in sorted runs on disk.
#[derive(Debug)]
pub(crate) struct Gathering {
    aggregate: PeriodAggregate,
    runs: LineRuns,
    /// Lines held before they are written as a run (`usize::MAX`: never).
    budget: usize,
}

impl Gathering {
    /// Lines kept within `bytes` of memory; beyond, runs written to `dir` (the system's temporary
    /// directory when `None`), at most `max_bytes` of them (0: no cap).
    pub(crate) fn new(bytes: usize, dir: Option<PathBuf>, max_bytes: u64) -> Self {
        Self {
            aggregate: PeriodAggregate::default(),
            runs: LineRuns { dir, max_bytes, files: Vec::new(), bytes: 0, lines: 0 },
            budget: (bytes / LINE_BYTES).max(1),
        }
    }

    /// Room for up to `additional` more lines, within the budget (see [`PeriodAggregate::reserve`]).
    pub(crate) fn reserve(&mut self, additional: usize) {
        if self.aggregate.is_empty() {
            self.aggregate.reserve(additional.min(self.budget));
        }
    }

    /// As [`Self::reserve`], for lines added by [`Self::push_unmerged`].
    pub(crate) fn reserve_unmerged(&mut self, additional: usize) {
        if self.aggregate.is_empty() {
            self.aggregate.reserve_unmerged(additional.min(self.budget));
        }
    }

    /// [`PeriodAggregate::add`], then a run written if the budget is reached.
    pub(crate) fn add(&mut self, period: BillingPeriod, key: CostKey, amounts: &Amounts) -> Result<()> {
        self.aggregate.add(period, key, amounts)?;
        self.spill_when_full()
    }

    /// [`PeriodAggregate::push_unmerged`], then a run written if the budget is reached.
    pub(crate) fn push_unmerged(&mut self, period: BillingPeriod, key: CostKey, amounts: &Amounts) -> Result<()> {
        self.aggregate.push_unmerged(period, key, amounts)?;
        self.spill_when_full()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.aggregate.is_empty() && self.runs.files.is_empty()
    }

    /// Lines held in memory now.
    pub(crate) fn len(&self) -> usize {
        self.aggregate.len()
    }

    /// Bytes of runs written so far.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.runs.bytes
    }

    fn spill_when_full(&mut self) -> Result<()> {
        if self.aggregate.len() < self.budget {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.aggregate).into_lines()?;
        self.runs.write(&lines)?;
        drop(lines);
        curflow_model::memory::release_freed_memory();
        Ok(())
    }

    /// Every line gathered, merged by key and in key order.
    pub(crate) fn into_lines(self) -> Result<PeriodLines> {
        let last = self.aggregate.into_lines()?;
        if self.runs.files.is_empty() {
            return Ok(PeriodLines::Held(last));
        }
        tracing::debug!(
            runs = self.runs.files.len(),
            lines = self.runs.lines,
            spilled_mib = self.runs.bytes >> 20,
            held = last.len(),
            "the period's lines outgrew their memory; merging their runs"
        );
        Ok(PeriodLines::Spilled(self.runs.merge(last)?))
    }
}

/// The sorted runs written so far.
#[derive(Debug)]
struct LineRuns {
    dir: Option<PathBuf>,
    max_bytes: u64,
    files: Vec<File>,
    bytes: u64,
    lines: u64,
}

impl LineRuns {
    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Writes `lines` (sorted, one per key) as a run.
    fn write(&mut self, lines: &[CostLine]) -> Result<()> {
        let dir = self.dir();
        let io = |e| Error::io(&dir, e);
        let file = tempfile::tempfile_in(&dir).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut encoder = LineEncoder::default();
        let mut counted = Counted { inner: &mut out, bytes: 0 };
        for line in lines {
            encoder.write(line, &mut counted).map_err(io)?;
            if self.max_bytes > 0 && self.bytes + counted.bytes > self.max_bytes {
                return Err(io(std::io::Error::other(format!(
                    "the period's cost lines need more than spill-max-mb ({} MiB) of spill files",
                    self.max_bytes >> 20
                ))));
            }
        }
        self.bytes += counted.bytes;
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.files.push(file);
        self.lines += lines.len() as u64;
        Ok(())
    }

    /// The runs and `last` (sorted, one line per key) merged.
    fn merge(self, last: Vec<CostLine>) -> Result<SortedLines> {
        let dir = self.dir();
        let mut sources: Vec<Source> = self
            .files
            .into_iter()
            .map(|f| Source::Run { input: BufReader::with_capacity(1 << 16, f), decoder: LineDecoder::default() })
            .collect();
        sources.push(Source::Held(last.into_iter()));
        let mut merged = SortedLines { dir, sources, heads: BinaryHeap::new() };
        for i in 0..merged.sources.len() {
            merged.refill(i)?;
        }
        Ok(merged)
    }
}

/// Counts the bytes written through it.
struct Counted<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A period's scanned lines, in key order, one per key.
pub enum PeriodLines {
    /// All in memory.
    Held(Vec<CostLine>),
    /// Merged from runs on disk as they are read.
    Spilled(SortedLines),
}

impl std::fmt::Debug for PeriodLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeriodLines::Held(lines) => write!(f, "{} lines", lines.len()),
            PeriodLines::Spilled(s) => write!(f, "lines merged from {} runs", s.sources.len() - 1),
        }
    }
}

impl PeriodLines {
    /// Every line in one `Vec` (what a caller that needs them all at once takes).
    pub fn into_vec(self) -> Result<Vec<CostLine>> {
        match self {
            PeriodLines::Held(lines) => Ok(lines),
            PeriodLines::Spilled(s) => s.collect(),
        }
    }

    /// The lines, [`CHUNK_LINES`] at a time (held lines: one chunk, not copied).
    pub(crate) fn into_chunks(self) -> Box<dyn Iterator<Item = Result<Vec<CostLine>>> + Send> {
        match self {
            PeriodLines::Held(lines) => Box::new((!lines.is_empty()).then_some(Ok(lines)).into_iter()),
            PeriodLines::Spilled(mut s) => Box::new(std::iter::from_fn(move || {
                let mut chunk = Vec::with_capacity(CHUNK_LINES);
                while chunk.len() < CHUNK_LINES {
                    match s.next() {
                        Some(Ok(line)) => chunk.push(line),
                        Some(Err(e)) => return Some(Err(e)),
                        None => break,
                    }
                }
                (!chunk.is_empty()).then_some(Ok(chunk))
            })),
        }
    }
}

/// The lines of a delivery of several billing periods (an export of a date range given as bare
/// files), handed out one period at a time. They come in (period, key) order, so each period's
/// lines are gathered afresh within the same budget (spilling beyond it, like the delivery's) and
/// handed out before the next period's are read: the store writes one period while the others
/// wait in the runs on disk, instead of every period being held at once.
pub(crate) struct ByPeriod {
    lines: Box<dyn Iterator<Item = Result<CostLine>> + Send>,
    next: Option<CostLine>,
    bytes: usize,
    dir: Option<PathBuf>,
    max_bytes: u64,
    /// The periods handed out (`None`: all); the others' lines are read past, never gathered.
    only: Option<BTreeSet<BillingPeriod>>,
}

impl ByPeriod {
    /// `lines` split by period, each period's kept within `bytes` (see [`Gathering::new`]).
    pub(crate) fn new(lines: PeriodLines, bytes: usize, dir: Option<PathBuf>, max_bytes: u64) -> Self {
        let lines: Box<dyn Iterator<Item = Result<CostLine>> + Send> = match lines {
            PeriodLines::Held(held) => Box::new(held.into_iter().map(Ok)),
            PeriodLines::Spilled(sorted) => Box::new(sorted),
        };
        Self { lines, next: None, bytes, dir, max_bytes, only: None }
    }

    /// Hands out only the periods in `only` (a delivery read again for the periods an older
    /// version superseded); the others' lines are read past without being gathered.
    pub(crate) fn only(mut self, only: BTreeSet<BillingPeriod>) -> Self {
        self.only = Some(only);
        self
    }

    /// The next period and its lines, `None` after the last.
    pub(crate) fn next_period(&mut self) -> Result<Option<(BillingPeriod, PeriodLines)>> {
        let first = loop {
            let line = match self.next.take() {
                Some(line) => line,
                None => match self.lines.next().transpose()? {
                    Some(line) => line,
                    None => return Ok(None),
                },
            };
            if self.only.as_ref().is_none_or(|only| only.contains(&line.period)) {
                break line;
            }
            // A period not wanted: its lines are passed over.
            while let Some(next) = self.lines.next().transpose()? {
                if next.period != line.period {
                    self.next = Some(next);
                    break;
                }
            }
        };
        let period = first.period;
        let mut gathering = Gathering::new(self.bytes, self.dir.clone(), self.max_bytes);
        gathering.push_unmerged(period, first.key, &first.amounts)?;
        while let Some(line) = self.lines.next().transpose()? {
            if line.period != period {
                self.next = Some(line);
                break;
            }
            gathering.push_unmerged(period, line.key, &line.amounts)?;
        }
        Ok(Some((period, gathering.into_lines()?)))
    }
}

/// Where a merged line comes from.
enum Source {
    Run { input: BufReader<File>, decoder: LineDecoder },
    Held(std::vec::IntoIter<CostLine>),
}

/// The next line of each source, smallest key first.
struct Head {
    line: CostLine,
    source: usize,
}

impl Head {
    fn order(&self) -> (BillingPeriod, &CostKey) {
        (self.line.period, &self.line.key)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    /// Reversed, so that [`BinaryHeap`] (a max-heap) pops the smallest key (then the earliest run).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.order(), other.source).cmp(&(self.order(), self.source))
    }
}

/// The runs of a [`Gathering`] merged by key: each line once, lines of one key summed exactly.
pub struct SortedLines {
    dir: PathBuf,
    sources: Vec<Source>,
    heads: BinaryHeap<Head>,
}

impl SortedLines {
    /// Puts the next line of `source` among the heads.
    fn refill(&mut self, source: usize) -> Result<()> {
        let next = match &mut self.sources[source] {
            Source::Run { input, decoder } => decoder.read(input).map_err(|e| Error::io(&self.dir, e))?,
            Source::Held(lines) => lines.next(),
        };
        if let Some(line) = next {
            self.heads.push(Head { line, source });
        }
        Ok(())
    }

    fn next_line(&mut self) -> Result<Option<CostLine>> {
        let Some(Head { mut line, source }) = self.heads.pop() else { return Ok(None) };
        self.refill(source)?;
        while let Some(head) = self.heads.peek()
            && head.order() == (line.period, &line.key)
        {
            let Some(Head { line: same, source }) = self.heads.pop() else { break };
            line.amounts.add(&same.amounts)?;
            self.refill(source)?;
        }
        Ok(Some(line))
    }
}

impl Iterator for SortedLines {
    type Item = Result<CostLine>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use curflow_model::testing::cost_key;
    use rust_decimal::Decimal;

    /// Lines of `keys` tenants on `days` days, each key added `repeat` times with growing amounts.
    fn add_all(g: &mut Gathering, tenants: u32, days: u32, repeat: u32, unmerged: bool) {
        let period = BillingPeriod::new(2026, 10).unwrap();
        for r in 0..repeat {
            for t in 0..tenants {
                for d in 1..=days {
                    let day = NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
                    let tenant = format!("t{t}");
                    let key = cost_key(day, (t % 5 != 0).then_some(tenant.as_str()), "AmazonEC2", "BoxUsage");
                    let amounts = Amounts {
                        unblended_cost: Decimal::new(i64::from(t * 1000 + d + r), 12),
                        amortized_cost: Decimal::new(-i64::from(r), 3),
                        line_items: 1,
                        ..Amounts::default()
                    };
                    if unmerged {
                        g.push_unmerged(period, key, &amounts).unwrap();
                    } else {
                        g.add(period, key, &amounts).unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn lines_spilled_in_runs_merge_back_to_the_lines_held_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for unmerged in [false, true] {
            let mut roomy = Gathering::new(usize::MAX, None, 0);
            add_all(&mut roomy, 40, 30, 3, unmerged);
            let PeriodLines::Held(want) = roomy.into_lines().unwrap() else { panic!("spilled with no limit") };
            assert_eq!(want.len(), (32 + 1) * 30, "32 tenants and the shared pool, 30 days");

            let mut tight = Gathering::new(100 * LINE_BYTES, Some(dir.path().to_path_buf()), 0);
            add_all(&mut tight, 40, 30, 3, unmerged);
            assert!(tight.spilled_bytes() > 0);
            assert!(tight.len() < 100);
            let spilled = tight.into_lines().unwrap();
            assert!(matches!(spilled, PeriodLines::Spilled(_)));
            let chunks: Vec<Vec<CostLine>> = spilled.into_chunks().collect::<Result<_>>().unwrap();
            assert_eq!(chunks.concat(), want, "unmerged: {unmerged}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "run files are deleted once closed");
    }

    /// Lines of three periods, spilled: handed out period by period, each period's lines (spilled
    /// again under the same tight budget) are exactly what a roomy gathering holds of that period.
    #[test]
    fn lines_of_several_periods_are_handed_out_one_period_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let add_months = |g: &mut Gathering| {
            for month in [9, 10, 11] {
                let period = BillingPeriod::new(2026, month).unwrap();
                for t in 0..40u32 {
                    for d in 1..=28 {
                        let day = NaiveDate::from_ymd_opt(2026, month, d).unwrap();
                        let tenant = format!("t{t}");
                        let key = cost_key(day, Some(tenant.as_str()), "AmazonEC2", "BoxUsage");
                        let cents = i64::from(t * 100 + d + month);
                        let amounts =
                            Amounts { unblended_cost: Decimal::new(cents, 2), line_items: 1, ..Amounts::default() };
                        g.add(period, key, &amounts).unwrap();
                    }
                }
            }
        };
        let mut roomy = Gathering::new(usize::MAX, None, 0);
        add_months(&mut roomy);
        let PeriodLines::Held(all) = roomy.into_lines().unwrap() else { panic!("spilled with no limit") };
        let budget = 100 * LINE_BYTES;
        let mut tight = Gathering::new(budget, Some(dir.path().to_path_buf()), 0);
        add_months(&mut tight);
        let spilled = tight.into_lines().unwrap();
        assert!(matches!(spilled, PeriodLines::Spilled(_)));
        let mut by_period = ByPeriod::new(spilled, budget, Some(dir.path().to_path_buf()), 0);
        let mut periods = Vec::new();
        while let Some((period, lines)) = by_period.next_period().unwrap() {
            assert!(matches!(lines, PeriodLines::Spilled(_)), "{period}: 1,120 lines over a budget of 100");
            let want: Vec<CostLine> = all.iter().filter(|l| l.period == period).cloned().collect();
            assert_eq!(want.len(), 40 * 28);
            assert_eq!(lines.into_vec().unwrap(), want, "{period}");
            periods.push(period.to_string());
        }
        assert_eq!(periods, ["2026-09", "2026-10", "2026-11"]);
        // Held lines split the same way.
        let mut held = ByPeriod::new(PeriodLines::Held(all.clone()), usize::MAX, None, 0);
        let mut again = Vec::new();
        while let Some((_, lines)) = held.next_period().unwrap() {
            again.extend(lines.into_vec().unwrap());
        }
        assert_eq!(again, all);
        // Read again for some periods only (the first and the last): the others are passed over.
        let wanted: BTreeSet<BillingPeriod> =
            [BillingPeriod::new(2026, 9).unwrap(), BillingPeriod::new(2026, 11).unwrap()].into();
        for lines in [PeriodLines::Held(all.clone()), {
            let mut tight = Gathering::new(budget, Some(dir.path().to_path_buf()), 0);
            add_months(&mut tight);
            tight.into_lines().unwrap()
        }] {
            let mut some = ByPeriod::new(lines, budget, Some(dir.path().to_path_buf()), 0).only(wanted.clone());
            let mut got = Vec::new();
            while let Some((period, lines)) = some.next_period().unwrap() {
                got.push((period, lines.into_vec().unwrap()));
            }
            let want: Vec<(BillingPeriod, Vec<CostLine>)> =
                wanted.iter().map(|p| (*p, all.iter().filter(|l| l.period == *p).cloned().collect())).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn runs_beyond_the_spill_cap_fail_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Gathering::new(100 * LINE_BYTES, Some(dir.path().to_path_buf()), 1000);
        let period = BillingPeriod::new(2026, 10).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let mut failed = None;
        for t in 0..1000 {
            let key = cost_key(day, Some(&format!("tenant-{t}")), "AmazonEC2", "BoxUsage");
            if let Err(e) = g.add(period, key, &Amounts { line_items: 1, ..Amounts::default() }) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the cap was not enforced");
        assert!(e.to_string().contains("spill-max-mb"), "{e}");
        assert_eq!(e.class(), curflow_model::ErrorClass::External);
    }
}
