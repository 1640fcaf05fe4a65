//! Reading one source on several cores, with the one-thread reader's results.
//!
//! Parsing a log line (finding its fields, checking UTF-8, decoding JSON) costs far more than
//! adding its record to the aggregates, and it needs no state. So the calling thread cuts the
//! stream into blocks of whole lines ([`BLOCK`]), worker threads parse the blocks' lines, and the
//! calling thread adds the parsed lines **in input order**. It parses too: when the block it is
//! to add next is not parsed yet, it takes a block no worker has taken (see [`read_threaded`]),
//! so there is one worker per core beyond the first. The join of REPORT and tenant lines,
//! the duplicate window, every count and every line number are therefore exactly those of
//! [`read_lines`](super::reader::read_lines), which stays the reference (the tests compare both).
//!
//! Lines that are not evidence (most log output) are only counted by the parser: they never
//! travel to the adding thread, whose work is serial.
//!
//! Memory: at most [`IN_FLIGHT`] blocks (and their parsed lines) are read ahead, so it stays flat
//! in the size of the input. A source that fits in one block is cut into one piece per core
//! (when it is at least [`CUT_AT`] long; a smaller one is parsed on the calling thread).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, TryRecvError, channel, sync_channel};

use super::reader::{LineError, MAX_LINE_BYTES, Outcome};
use super::{ErrorBudget, EvidenceError, ParseError, SourceReport};

/// Bytes of whole lines handed to a worker at once (more than [`MAX_LINE_BYTES`], so a block
/// without a newline is an over-long line).
pub(crate) const BLOCK: usize = 4 << 20;
/// Blocks read ahead of the adding thread.
const IN_FLIGHT: usize = 4;
/// A source of one block at least this long is cut into one piece per core ([`Pieces::cut`]):
/// parsing 256 KiB takes about a millisecond, far more than starting a thread.
const CUT_AT: usize = 256 << 10;
/// Bytes kept of a line longer than a block (the example shows its first 160 characters).
const EXCERPT: usize = 1024;

/// A piece of the input, in order.
enum Piece {
    /// Whole lines; the last one may lack its newline only at the end of the input.
    Lines(Vec<u8>),
    /// A line longer than a block, skipped to its newline: its first bytes.
    TooLong(Vec<u8>),
    /// The stream failed as a truncated or corrupt gzip stream does: the partial line before it.
    Corrupt(Vec<u8>, io::Error),
    /// Another read error: fatal for the whole read.
    Failed(io::Error),
}

/// What a worker made of one non-blank line of a block.
enum Item<T> {
    Parsed(T),
    TooLong,
    InvalidUtf8 { valid_up_to: usize },
}

/// A parsed block: its bytes (for the examples of malformed lines) and its lines.
struct Parsed<T> {
    block: Vec<u8>,
    /// Lines in the block, blank ones included (for line numbers).
    lines: u64,
    /// Non-blank lines the parser found nothing in (counted, not added).
    ignored: u64,
    /// Non-blank lines.
    items: Vec<Entry<T>>,
}

/// A non-blank line of a block: its index in the block, its byte range (without newline and
/// `\r`; a block is at most a few MiB), what it is.
type Entry<T> = (u32, u32, u32, Item<T>);

/// A piece ready to be added, in input order.
enum Ready<T> {
    Parsed(Parsed<T>),
    Other(Piece),
}

/// Blocks and parsed-line lists kept between the sources an aggregator reads (a log group's
/// files, a day's exports): reused, they are not allocated again for every file, nor are their
/// pages faulted in again (the kernel zeroes each fresh page: with the CLI's allocator, which
/// returns freed memory, that cost the joining thread about a tenth of its time on 1 GB of
/// logs in 28 files).
pub(crate) struct Buffers<T> {
    blocks: Vec<Vec<u8>>,
    items: Vec<Vec<Entry<T>>>,
}

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Self { blocks: Vec::new(), items: Vec::new() }
    }
}

impl<T> std::fmt::Debug for Buffers<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers").field("blocks", &self.blocks.len()).field("items", &self.items.len()).finish()
    }
}

impl<T> Buffers<T> {
    /// Keeps what one read left, as many as one read uses at once.
    fn keep(&mut self, blocks: Vec<Vec<u8>>, items: impl IntoIterator<Item = Vec<Entry<T>>>, workers: usize) {
        let most = IN_FLIGHT + workers + 1;
        self.blocks = blocks;
        self.blocks.truncate(most);
        self.items.extend(items.into_iter().take(most.saturating_sub(self.items.len())));
    }
}

/// Reads `reader` like [`read_lines`](super::reader::read_lines), with `parse` run on worker
/// threads and `add` (given the 1-based line number, and a parsed line a little further on to
/// prepare for, see [`LOOK_AHEAD`]) on this one, in input order. `parse` gives
/// `None` for a line with nothing in it for the aggregator (no evidence, no fault): it is counted
/// as ignored without reaching `add`, as [`Outcome::Ignored`] would count it.
pub(crate) fn read_lines_parallel<R: BufRead, T: Send>(
    source_name: &str,
    reader: R,
    budget: &ErrorBudget,
    buffers: &mut Buffers<T>,
    parse: impl Fn(&str) -> Option<T> + Sync,
    add: impl FnMut(u64, T, Option<&T>) -> Result<Outcome, LineError>,
) -> Result<SourceReport, EvidenceError> {
    // The adding thread parses too whenever the next block in order is not parsed yet (see
    // [`read_threaded`]), so one core is left to it: on two cores, one worker and the adding
    // thread, no third thread time-slicing with them.
    let workers = std::thread::available_parallelism().map_or(0, |n| n.get().min(8) - 1);
    read_blocks(source_name, reader, budget, buffers, BLOCK, workers, &parse, add)
}

/// [`read_lines_parallel`] with the block size and the number of workers given (tests use small
/// blocks to cross many block boundaries).
#[allow(clippy::too_many_arguments)] // the test seam of `read_lines_parallel`
fn read_blocks<R: BufRead, T: Send>(
    source_name: &str,
    reader: R,
    budget: &ErrorBudget,
    buffers: &mut Buffers<T>,
    block: usize,
    workers: usize,
    parse: &(impl Fn(&str) -> Option<T> + Sync),
    mut add: impl FnMut(u64, T, Option<&T>) -> Result<Outcome, LineError>,
) -> Result<SourceReport, EvidenceError> {
    let mut added =
        Added { report: SourceReport { source: source_name.to_owned(), ..SourceReport::default() }, line: 0 };
    let mut pieces = Pieces {
        reader,
        block: block.max(MAX_LINE_BYTES + 1),
        carry: Vec::new(),
        queued: VecDeque::new(),
        stash: None,
        ended: false,
        spare: std::mem::take(&mut buffers.blocks),
    };
    let mut first = pieces.next();
    // A source within one block (log objects are often a few MB) is still parsed on every core
    // when that is worth starting threads: its block is cut into one piece per core.
    if let (true, 1.., Some(Piece::Lines(bytes))) = (pieces.ended, workers, &first)
        && bytes.len() >= CUT_AT
        && let Some(Piece::Lines(bytes)) = first.take()
    {
        first = Some(pieces.cut(bytes, workers + 1));
    }
    // Small sources are parsed here: no threads to start.
    if (pieces.ended && pieces.queued.is_empty()) || workers == 0 {
        let mut next = first;
        while let Some(piece) = next {
            let mut ready = match piece {
                Piece::Lines(bytes) => {
                    Ready::Parsed(parse_block(bytes, buffers.items.pop().unwrap_or_default(), parse))
                }
                other => Ready::Other(other),
            };
            let more = added.add(&mut ready, budget, &mut add)?;
            if let Ready::Parsed(parsed) = ready {
                pieces.spare.push(parsed.block);
                buffers.items.push(parsed.items);
            }
            if !more {
                break;
            }
            next = pieces.next();
        }
        buffers.keep(std::mem::take(&mut pieces.spare), [], 1);
    } else {
        let items = std::mem::take(&mut buffers.items);
        let recycled = read_threaded(&mut pieces, first, &mut added, budget, workers, items, parse, add)?;
        buffers.keep(std::mem::take(&mut pieces.spare), recycled, workers);
    }
    added.report.check(budget)?;
    Ok(added.report)
}

/// The threaded part of [`read_blocks`]: `workers` threads parse the pieces that `pieces` reads
/// (from `first` on) into the line lists `items` (and new ones) and this thread adds them in
/// order. Gives back the emptied line lists.
///
/// When the next block in order is not parsed yet, this thread parses a block still waiting
/// for a worker instead of waiting itself. Adding is serial and costs about half of what
/// parsing does, so a thread that only added would idle half of the time, and an extra worker
/// to fill that time would share the cores with it: time-sliced, the serial adding slowed the
/// whole read (on two cores, two workers and an adding thread used 1.66 cores on 1 GB of logs).
#[allow(clippy::too_many_arguments)]
fn read_threaded<R: BufRead, T: Send>(
    pieces: &mut Pieces<R>,
    first: Option<Piece>,
    added: &mut Added,
    budget: &ErrorBudget,
    workers: usize,
    items: Vec<Vec<Entry<T>>>,
    parse: &(impl Fn(&str) -> Option<T> + Sync),
    mut add: impl FnMut(u64, T, Option<&T>) -> Result<Outcome, LineError>,
) -> Result<Vec<Vec<Entry<T>>>, EvidenceError> {
    let source_name = added.report.source.clone();
    let (work_tx, work_rx) = sync_channel::<(u64, Vec<u8>)>(IN_FLIGHT);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = channel();
    // Emptied line lists go back to the workers, blocks to the reader: no fresh memory per block.
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<Entry<T>>>(IN_FLIGHT + workers);
    for list in items.into_iter().take(IN_FLIGHT + workers) {
        recycle_tx.try_send(list).unwrap_or_default();
    }
    let recycle_rx = Mutex::new(recycle_rx);
    let outcome = std::thread::scope(|scope| {
        // Moved in: every return from here drops it, which ends the workers before the scope
        // waits for them.
        let work_tx = work_tx;
        for _ in 0..workers {
            let (work_rx, recycle_rx, done_tx) = (&work_rx, &recycle_rx, done_tx.clone());
            std::thread::Builder::new()
                .name("evidence-parse".into())
                .spawn_scoped(scope, move || {
                    loop {
                        // A poisoned lock: another worker panicked, its panic is re-raised below.
                        let Ok(job) = work_rx.lock().map(|rx| rx.recv()) else { return };
                        let Ok((seq, bytes)) = job else { return }; // no more blocks
                        let items = recycle_rx.lock().ok().and_then(|rx| rx.try_recv().ok()).unwrap_or_default();
                        let parsed = catch_unwind(AssertUnwindSafe(|| parse_block(bytes, items, parse)));
                        if done_tx.send((seq, parsed)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| io_error(&source_name, 0, format!("could not start a parsing thread: {e}")))?;
        }
        drop(done_tx);
        let mut waiting: BTreeMap<u64, Ready<T>> = BTreeMap::new();
        let (mut sent, mut next_added) = (0u64, 0u64);
        let mut next = first;
        loop {
            // Read ahead up to IN_FLIGHT pieces; pieces that need no parsing wait here.
            while sent - next_added < IN_FLIGHT as u64 {
                let Some(piece) = next.take() else { break };
                match piece {
                    Piece::Lines(bytes) => {
                        if work_tx.send((sent, bytes)).is_err() {
                            break; // every worker is gone: their panic is re-raised below
                        }
                    }
                    other => {
                        waiting.insert(sent, Ready::Other(other));
                    }
                }
                sent += 1;
                next = pieces.next();
            }
            if next_added == sent {
                return Ok(());
            }
            let queues = Queues { work: &work_rx, done: &done_rx, recycle: &recycle_rx };
            let Some(mut ready) = queues.next_ready(&mut waiting, next_added, parse) else {
                return Err(io_error(&source_name, added.line, "the parsing threads ended early".into()));
            };
            next_added += 1;
            if !added.add(&mut ready, budget, &mut add)? {
                return Ok(());
            }
            if let Ready::Parsed(parsed) = ready {
                pieces.spare.push(parsed.block);
                // A full queue just frees the list.
                recycle_tx.try_send(parsed.items).unwrap_or_default();
            }
        }
    });
    outcome?;
    // The workers have ended: what waits in the queue is every list still in use.
    Ok(recycle_rx.into_inner().map(|rx| rx.try_iter().collect()).unwrap_or_default())
}

/// A parsed block, or a worker's panic.
type Done<T> = (u64, std::thread::Result<Parsed<T>>);

/// The adding thread's ends of the queues of [`read_threaded`].
struct Queues<'a, T> {
    work: &'a Mutex<Receiver<(u64, Vec<u8>)>>,
    done: &'a Receiver<Done<T>>,
    recycle: &'a Mutex<Receiver<Vec<Entry<T>>>>,
}

impl<T> Queues<'_, T> {
    /// The piece numbered `next`: from `waiting`, else parsed by a worker, else parsed here
    /// (see [`read_threaded`]); blocks parsed meanwhile wait in `waiting`. `None` when the workers
    /// are gone (a worker's panic is raised again here).
    fn next_ready(
        &self,
        waiting: &mut BTreeMap<u64, Ready<T>>,
        next: u64,
        parse: &impl Fn(&str) -> Option<T>,
    ) -> Option<Ready<T>> {
        if let Some(ready) = waiting.remove(&next) {
            return Some(ready);
        }
        loop {
            let (seq, parsed) = match self.done.try_recv() {
                Ok((seq, parsed)) => (seq, parsed.unwrap_or_else(|panic| resume_unwind(panic))),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {
                    // Not parsed yet: parse a waiting block here. A worker holds the lock while
                    // it waits for a block, so it is only tried: held, the queue is empty or a
                    // worker is taking from it.
                    match self.work.try_lock().ok().and_then(|rx| rx.try_recv().ok()) {
                        Some((seq, bytes)) => {
                            let items = self.recycle.lock().ok().and_then(|rx| rx.try_recv().ok()).unwrap_or_default();
                            (seq, parse_block(bytes, items, parse))
                        }
                        None => {
                            let (seq, parsed) = self.done.recv().ok()?;
                            (seq, parsed.unwrap_or_else(|panic| resume_unwind(panic)))
                        }
                    }
                }
            };
            if seq == next {
                return Some(Ready::Parsed(parsed));
            }
            waiting.insert(seq, Ready::Parsed(parsed));
        }
    }
}

fn io_error(source_name: &str, line: u64, message: String) -> EvidenceError {
    EvidenceError::Io { source_name: source_name.to_owned(), line, message }
}

/// The report being built and the number of the last line added.
struct Added {
    report: SourceReport,
    line: u64,
}

impl Added {
    /// Counts one piece as [`read_lines`](super::reader::read_lines) counts its lines; `false`
    /// when the input ended there (a truncated stream).
    fn add<T>(
        &mut self,
        ready: &mut Ready<T>,
        budget: &ErrorBudget,
        add: &mut impl FnMut(u64, T, Option<&T>) -> Result<Outcome, LineError>,
    ) -> Result<bool, EvidenceError> {
        let report = &mut self.report;
        match ready {
            Ready::Parsed(parsed) => {
                report.lines += parsed.ignored;
                report.ignored += parsed.ignored;
                let items = &mut parsed.items;
                for i in 0..items.len() {
                    let (index, start, end) = (items[i].0, items[i].1, items[i].2);
                    let item = std::mem::replace(&mut items[i].3, Item::TooLong);
                    let line = self.line + u64::from(index) + 1;
                    let bytes = parsed.block.get(start as usize..end as usize).unwrap_or_default();
                    report.lines += 1;
                    match item {
                        Item::TooLong => {
                            report.malformed(line, &ParseError::TooLong { limit: MAX_LINE_BYTES }, bytes, budget)
                        }
                        Item::InvalidUtf8 { valid_up_to } => {
                            report.malformed(line, &ParseError::InvalidUtf8 { valid_up_to }, bytes, budget)
                        }
                        Item::Parsed(value) => match add(line, value, ahead(items, i + LOOK_AHEAD)) {
                            Ok(Outcome::Record) => report.records += 1,
                            Ok(Outcome::Ignored) => report.ignored += 1,
                            Err(LineError::Malformed(e)) => report.malformed(line, &e, bytes, budget),
                            Err(LineError::Fatal(e)) => return Err(*e),
                        },
                    }
                }
                items.clear();
                self.line += parsed.lines;
            }
            Ready::Other(Piece::TooLong(excerpt)) => {
                self.line += 1;
                report.lines += 1;
                report.malformed(self.line, &ParseError::TooLong { limit: MAX_LINE_BYTES }, excerpt, budget);
            }
            Ready::Other(Piece::Corrupt(partial, e)) => {
                self.line += 1;
                report.lines += 1;
                report.truncated = true;
                let err = ParseError::Truncated(format!("{e} (after {} complete lines)", self.line - 1));
                report.malformed(self.line, &err, partial, budget);
                return Ok(false);
            }
            Ready::Other(Piece::Failed(e)) => {
                return Err(EvidenceError::Io {
                    source_name: report.source.clone(),
                    line: self.line,
                    message: e.to_string(),
                });
            }
            Ready::Other(Piece::Lines(_)) => {} // always parsed before it gets here
        }
        Ok(true)
    }
}

/// How far ahead of the line being added the adding closure is shown a parsed line: far enough
/// that what it looks up for that line (a cache miss in the Lambda join's dedupe set) has arrived
/// when the line's turn comes, near enough that it is still cached.
const LOOK_AHEAD: usize = 16;

/// The parsed line at `i`, if there is one.
fn ahead<T>(items: &[Entry<T>], i: usize) -> Option<&T> {
    match items.get(i) {
        Some((_, _, _, Item::Parsed(value))) => Some(value),
        _ => None,
    }
}

/// Splits a block into lines and parses the non-blank ones into `items` (a worker's job).
fn parse_block<T>(block: Vec<u8>, mut items: Vec<Entry<T>>, parse: &impl Fn(&str) -> Option<T>) -> Parsed<T> {
    items.clear();
    items.reserve(block.len() / 128);
    let mut ignored = 0u64;
    let mut index = 0u32;
    let mut start = 0usize;
    // One UTF-8 check of the whole block (nearly always valid) instead of one call per line; a
    // line of a valid block is a valid `str` (it is cut at `\n`, an ASCII byte). An invalid block
    // is checked line by line, for the line numbers of the faults.
    let valid = std::str::from_utf8(&block).ok();
    let mut line = |start: usize, end: usize, index: u32| {
        let raw = &block[start..end];
        let bytes = raw.strip_suffix(b"\r").unwrap_or(raw);
        let too_long = raw.len() > MAX_LINE_BYTES;
        if !too_long && bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let end = start + bytes.len();
        let item = if too_long {
            Item::TooLong
        } else {
            let text = match valid.and_then(|valid| valid.get(start..start + bytes.len())) {
                Some(text) => Ok(text),
                None => std::str::from_utf8(bytes),
            };
            match text {
                Ok(text) => match parse(text) {
                    Some(value) => Item::Parsed(value),
                    None => {
                        ignored += 1;
                        return;
                    }
                },
                Err(e) => Item::InvalidUtf8 { valid_up_to: e.valid_up_to() },
            }
        };
        // Offsets and indexes fit: a block is at most a few MiB.
        let offset = |at: usize| u32::try_from(at).unwrap_or(u32::MAX);
        items.push((index, offset(start), offset(end.min(start + MAX_LINE_BYTES)), item));
    };
    for newline in memchr::memchr_iter(b'\n', &block) {
        line(start, newline, index);
        index += 1;
        start = newline + 1;
    }
    if start < block.len() {
        line(start, block.len(), index); // the last line of the input, without newline
        index += 1;
    }
    Parsed { block, lines: u64::from(index), ignored, items }
}

/// Cuts a reader into [`Piece`]s of whole lines.
struct Pieces<R> {
    reader: R,
    block: usize,
    /// The start of the next line, read with the previous block.
    carry: Vec<u8>,
    /// Pieces cut from the one block of a small source ([`Pieces::cut`]), given first.
    queued: VecDeque<Piece>,
    /// A piece to give after the current one (the error after the lines before it).
    stash: Option<Piece>,
    ended: bool,
    /// Blocks already added, to be filled again.
    spare: Vec<Vec<u8>>,
}

impl<R: BufRead> Pieces<R> {
    fn next(&mut self) -> Option<Piece> {
        if let Some(piece) = self.queued.pop_front() {
            return Some(piece);
        }
        if let Some(piece) = self.stash.take() {
            return Some(piece);
        }
        if self.ended {
            return None;
        }
        // Read into the block, not through the reader's buffer: a `BufReader` hands a read larger
        // than its buffer straight to the file, which saves copying every byte once more (a
        // tenth of the reading thread's time). A reused block is cut at its last newline, so
        // filling it again zeroes only the part of a line cut off, not the whole block.
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.resize(self.block, 0);
        let mut len = self.carry.len();
        bytes[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        while len < self.block {
            match self.reader.read(&mut bytes[len..]) {
                Ok(0) => {
                    self.ended = true;
                    bytes.truncate(len);
                    return (!bytes.is_empty()).then_some(Piece::Lines(bytes));
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    bytes.truncate(len);
                    self.ended = true;
                    // The whole lines before the failure are read; the partial one is not.
                    let whole = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
                    let partial = bytes.split_off(whole);
                    let failure = if is_corrupt(&e) {
                        Piece::Corrupt(partial[..partial.len().min(MAX_LINE_BYTES)].to_vec(), e)
                    } else {
                        Piece::Failed(e)
                    };
                    if bytes.is_empty() {
                        return Some(failure);
                    }
                    self.stash = Some(failure);
                    return Some(Piece::Lines(bytes));
                }
            }
        }
        match memchr::memrchr(b'\n', &bytes) {
            Some(newline) => {
                self.carry.extend_from_slice(&bytes[newline + 1..]);
                bytes.truncate(newline + 1);
                Some(Piece::Lines(bytes))
            }
            None => {
                bytes.truncate(EXCERPT);
                Some(self.skip_line(bytes))
            }
        }
    }

    /// Cuts a block of whole lines into about `parts` pieces at line ends: gives the first, queues
    /// the others (before any stashed piece: they come first in the input).
    fn cut(&mut self, mut bytes: Vec<u8>, parts: usize) -> Piece {
        let size = bytes.len().div_ceil(parts.max(1));
        let mut ends = Vec::with_capacity(parts);
        let mut from = 0;
        while from + size < bytes.len() {
            match memchr::memchr(b'\n', &bytes[from + size..]) {
                Some(i) => {
                    from += size + i + 1;
                    ends.push(from);
                }
                None => break,
            }
        }
        ends.retain(|&end| end < bytes.len());
        for window in ends.windows(2) {
            self.queued.push_back(Piece::Lines(bytes[window[0]..window[1]].to_vec()));
        }
        if let Some(&last) = ends.last() {
            self.queued.push_back(Piece::Lines(bytes[last..].to_vec()));
        }
        bytes.truncate(ends.first().copied().unwrap_or(bytes.len()));
        Piece::Lines(bytes)
    }

    /// Skips the rest of a line longer than a block (to its newline, or the end).
    fn skip_line(&mut self, excerpt: Vec<u8>) -> Piece {
        loop {
            match self.reader.fill_buf() {
                Ok([]) => {
                    self.ended = true;
                    return Piece::TooLong(excerpt);
                }
                Ok(available) => {
                    if let Some(i) = memchr::memchr(b'\n', available) {
                        self.reader.consume(i + 1);
                        return Piece::TooLong(excerpt);
                    }
                    let n = available.len();
                    self.reader.consume(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.ended = true;
                    return if is_corrupt(&e) { Piece::Corrupt(excerpt, e) } else { Piece::Failed(e) };
                }
            }
        }
    }
}

/// The errors a truncated or corrupt gzip stream gives (as [`read_lines`](super::reader::read_lines)
/// counts them: one malformed line, the lines before it kept).
fn is_corrupt(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData | ErrorKind::InvalidInput)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;
    use crate::evidence::reader::read_lines;

    fn budget() -> ErrorBudget {
        ErrorBudget { max_ratio: rust_decimal::Decimal::ONE, max_examples: 1_000 }
    }

    /// Line number and text of every line added, and the report, from both readers.
    /// The lines added (number, text) and the report of one read.
    type Read = (Vec<(u64, String)>, Result<SourceReport, EvidenceError>);

    fn both(data: &[u8], block: usize, workers: usize) -> [Read; 2] {
        both_paced(data, block, workers, false).0
    }

    /// [`both`], with the workers slowed down (`slow_workers`: a pause every 2,000th line they
    /// parse) so that the adding thread parses blocks itself; also gives the number of lines
    /// parsed on the adding thread and on the workers.
    fn both_paced(data: &[u8], block: usize, workers: usize, slow_workers: bool) -> ([Read; 2], usize, usize) {
        // Lines of other output are ignored: the parallel reader's parser leaves them out (`None`,
        // counted without reaching `add`), the one-thread reader's `add` says so.
        let add = |seen: &mut Vec<(u64, String)>, line: u64, text: String| {
            if text.starts_with("other") {
                return Ok(Outcome::Ignored);
            }
            let outcome = if text.starts_with("bad") {
                Err(LineError::Malformed(ParseError::Invalid("bad".into())))
            } else if text.starts_with("ok") {
                Ok(Outcome::Record)
            } else {
                Ok(Outcome::Ignored)
            };
            seen.push((line, text));
            outcome
        };
        let mut one = Vec::new();
        let sequential =
            read_lines("t", crate::evidence::decompress(Cursor::new(data.to_vec())).unwrap(), &budget(), |l, t| {
                add(&mut one, l, t.to_owned())
            });
        let mut many = Vec::new();
        let (parsed_here, worker_lines) =
            (std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0));
        let adding_thread = std::thread::current().id();
        let parallel = read_blocks(
            "t",
            crate::evidence::decompress(Cursor::new(data.to_vec())).unwrap(),
            &budget(),
            &mut Buffers::default(),
            block,
            workers,
            &|t: &str| {
                if std::thread::current().id() == adding_thread {
                    parsed_here.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else if worker_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2_000 == 0 && slow_workers {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                (!t.starts_with("other")).then(|| t.to_owned())
            },
            |l, t, _| add(&mut many, l, t),
        );
        ([(one, sequential), (many, parallel)], parsed_here.into_inner(), worker_lines.into_inner())
    }

    fn assert_same(data: &[u8]) {
        for (block, workers) in [(MAX_LINE_BYTES + 1, 2), (MAX_LINE_BYTES + 7, 3), (BLOCK, 2), (MAX_LINE_BYTES + 1, 1)]
        {
            let [one, many] = both(data, block, workers);
            assert_eq!(one.0.len(), many.0.len(), "block {block}, {workers} workers");
            assert!(one.0 == many.0, "lines differ, block {block}, {workers} workers");
            assert_eq!(format!("{:?}", one.1), format!("{:?}", many.1), "block {block}, {workers} workers");
        }
    }

    /// ~5 MiB of mixed lines: records, other output, malformed, blank, CRLF, bad UTF-8.
    fn mixed(lines: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..lines {
            match i % 11 {
                0 => data.extend_from_slice(b"\r\n"),
                1 => data.extend_from_slice(format!("bad {i}\n").as_bytes()),
                2 => {
                    data.extend_from_slice(format!("other {i} ").as_bytes());
                    data.extend_from_slice(b"\xff\xfe\n");
                }
                3 => data.extend_from_slice(format!("ok {i} crlf\r\n").as_bytes()),
                4 => data.extend_from_slice(b"   \n"),
                5 => data.extend_from_slice(format!("other {i}\n").as_bytes()),
                _ => data.extend_from_slice(format!("ok {i} {}\n", "x".repeat(i % 97)).as_bytes()),
            }
        }
        data
    }

    #[test]
    fn many_blocks_give_the_lines_counts_and_examples_of_the_one_thread_reader() {
        let data = mixed(120_000);
        assert!(data.len() > 3 * (MAX_LINE_BYTES + 1));
        assert_same(&data);
        let [(_, Ok(report)), ..] = both(&data, MAX_LINE_BYTES + 1, 2) else { panic!() };
        assert!(
            report.records > 60_000 && report.malformed > 20_000 && report.ignored > 10_000,
            "{} {} {}",
            report.records,
            report.malformed,
            report.ignored
        );
        // The adding thread parses the blocks its workers have not taken yet.
        for workers in [1, 2] {
            let ([one, many], parsed_here, _) = both_paced(&data, MAX_LINE_BYTES + 1, workers, true);
            assert!(parsed_here > 0, "{workers} slow workers: the adding thread parsed nothing");
            assert!(one.0 == many.0, "lines differ, {workers} slow workers");
            assert_eq!(format!("{:?}", one.1), format!("{:?}", many.1), "{workers} slow workers");
        }
        // Without a final newline, and with a last line that is blank.
        assert_same(&data[..data.len() - 1]);
        assert_same(b"ok 1\nbad\n  ");
        assert_same(b"");
        assert_same(b"\n\n");
    }

    /// A source within one block is cut into one piece per core: parsed on the workers too, with
    /// the one-thread reader's lines, counts and examples; a tiny one stays on the adding thread.
    #[test]
    fn a_source_of_one_block_is_parsed_on_every_core() {
        let data = mixed(40_000);
        assert!(data.len() >= CUT_AT && data.len() < BLOCK, "{}", data.len());
        for (data, workers) in [(&data[..], 1), (&data[..], 2), (&data[..data.len() - 1], 3)] {
            for slow in [false, true] {
                let ([one, many], _, by_workers) = both_paced(data, BLOCK, workers, slow);
                assert!(by_workers > 0, "{workers} workers: none parsed a line");
                assert!(one.0 == many.0, "lines differ, {workers} workers");
                assert_eq!(format!("{:?}", one.1), format!("{:?}", many.1), "{workers} workers");
            }
        }
        let small = mixed(100);
        let ([one, many], _, by_workers) = both_paced(&small, BLOCK, 2, false);
        assert_eq!(by_workers, 0, "a source below CUT_AT needs no threads");
        assert!(one.0 == many.0);
        // Cut at line ends only: every piece but the last ends with a newline.
        let mut pieces = Pieces {
            reader: io::empty(),
            block: BLOCK,
            carry: Vec::new(),
            queued: VecDeque::new(),
            stash: None,
            ended: true,
            spare: Vec::new(),
        };
        for parts in [1, 2, 3, 7] {
            let Piece::Lines(first) = pieces.cut(data.clone(), parts) else { panic!() };
            let mut all = first.clone();
            assert!(first.ends_with(b"\n"));
            while let Some(Piece::Lines(piece)) = pieces.queued.pop_front() {
                assert!(piece.ends_with(b"\n") && !piece.is_empty());
                all.extend_from_slice(&piece);
            }
            assert!(all == data, "{parts} parts");
        }
    }

    #[test]
    fn over_long_lines_inside_and_beyond_a_block() {
        for long in [MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 5, 3 * MAX_LINE_BYTES] {
            let mut data = mixed(20_000);
            data.extend(std::iter::repeat_n(b'y', long));
            data.extend_from_slice(b"\nok after\n");
            data.extend(mixed(30_000));
            assert_same(&data);
            // The over-long line last, without newline.
            data.extend(std::iter::repeat_n(b'z', long));
            assert_same(&data);
        }
    }

    #[test]
    fn truncated_gzip_ends_with_the_same_damage() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&mixed(150_000)).unwrap();
        let gz = enc.finish().unwrap();
        assert_same(&gz);
        for cut in [gz.len() / 3, gz.len() / 2, gz.len() - 9] {
            let [one, many] = both(&gz[..cut], MAX_LINE_BYTES + 1, 2);
            let report = many.1.as_ref().unwrap();
            assert!(report.truncated, "cut at {cut}");
            assert!(one.0 == many.0, "cut at {cut}");
            assert_eq!(format!("{:?}", one.1), format!("{:?}", many.1), "cut at {cut}");
        }
    }

    #[test]
    fn a_fatal_error_stops_the_read() {
        let data = mixed(200_000);
        let mut seen = 0u64;
        let result = read_blocks(
            "t",
            Cursor::new(data),
            &budget(),
            &mut Buffers::default(),
            MAX_LINE_BYTES + 1,
            2,
            &|t: &str| Some(t.len()),
            |line, _, _| {
                seen += 1;
                if line == 150_000 {
                    return Err(LineError::Fatal(Box::new(EvidenceError::Invalid {
                        source_name: "t".into(),
                        line,
                        message: "overflow".into(),
                    })));
                }
                Ok(Outcome::Record)
            },
        );
        assert!(matches!(result, Err(EvidenceError::Invalid { line: 150_000, .. })), "{result:?}");
        assert!(seen < 150_000);
    }

    #[test]
    #[should_panic(expected = "parser bug")]
    fn a_panicking_parser_panics_the_reader() {
        let data = mixed(200_000);
        let _never = read_blocks(
            "t",
            Cursor::new(data),
            &budget(),
            &mut Buffers::default(),
            MAX_LINE_BYTES + 1,
            2,
            &|t: &str| {
                assert!(!t.starts_with("ok 150002 "), "parser bug");
                Some(())
            },
            |_, (), _| Ok(Outcome::Record),
        );
    }
}
