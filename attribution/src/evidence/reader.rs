//! Line reading shared by all aggregators: bounded lines, UTF-8 checks, gzip, error accounting.

use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::bufread::MultiGzDecoder;

use super::{ErrorBudget, EvidenceError, ParseError, SourceReport};

/// The longest line kept (1 MiB). Longer lines are counted as malformed and skipped without buffering
/// them, so one line without a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Wraps `reader` in a gzip decoder when it starts with the gzip magic bytes (concatenated members, as
/// written by CloudWatch Logs exports and Firehose, are read in sequence); otherwise returns it as is.
pub fn decompress<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn BufRead + 'a>> {
    let head = reader.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// Opens `reader` for line reading like [`decompress`], but a gzip stream is decompressed on a
/// thread of its own, ahead of the reader (a few 256 KiB chunks), so that decompression and parsing
/// run at once. The bytes and errors are those [`decompress`] would give, in the same order: a
/// corrupt or truncated stream yields what was decompressed before the damage, then the error.
pub fn decompress_threaded<R: Read + Send + 'static>(reader: R) -> io::Result<Box<dyn BufRead + Send>> {
    let mut reader = BufReader::with_capacity(CHUNK, reader);
    let head = reader.fill_buf()?;
    if head.len() < 2 || head[0] != 0x1f || head[1] != 0x8b {
        return Ok(Box::new(reader));
    }
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_AHEAD);
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(CHUNKS_AHEAD + 2);
    std::thread::Builder::new()
        .name("gunzip".into())
        .spawn(move || inflate(MultiGzDecoder::new(reader), &tx, &recycle_rx))?;
    Ok(Box::new(Chunks { rx, recycle: recycle_tx, chunk: Vec::new(), pos: 0, done: false }))
}

/// Size of the decompressed chunks handed from the decompressing thread to the reader.
const CHUNK: usize = 256 * 1024;
/// How many chunks the decompressing thread may be ahead.
const CHUNKS_AHEAD: usize = 4;

/// The decompressing thread: fills chunks until the end or an error (sent after the bytes before
/// it); stops when the reader is dropped.
fn inflate(mut gz: impl Read, tx: &SyncSender<io::Result<Vec<u8>>>, recycle: &Receiver<Vec<u8>>) {
    loop {
        let mut chunk = recycle.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        chunk.resize(CHUNK, 0);
        let mut len = 0;
        let mut error = None;
        while len < CHUNK {
            match gz.read(&mut chunk[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        chunk.truncate(len);
        let end = len < CHUNK;
        if len > 0 && tx.send(Ok(chunk)).is_err() {
            return;
        }
        if let Some(e) = error {
            // Nobody to tell when the reader is gone.
            tx.send(Err(e)).unwrap_or_default();
            return;
        }
        if end {
            return;
        }
    }
}

/// The reading side of [`decompress_threaded`].
struct Chunks {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.chunk.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    self.pos = 0;
                    // A full recycling queue (or an ended thread) just frees the chunk.
                    self.recycle.try_send(used).unwrap_or_default();
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => self.done = true, // the thread ended: end of the stream
            }
        }
        Ok(self.chunk.get(self.pos..).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

/// What one line turned out to be.
pub(crate) enum Outcome {
    Record,
    Ignored,
}

/// A line's failure: counted (`Malformed`) or fatal for the whole read (`Fatal`).
pub(crate) enum LineError {
    Malformed(ParseError),
    /// Boxed: results of this type are moved for every line, and most never hold it.
    Fatal(Box<EvidenceError>),
}

impl From<ParseError> for LineError {
    fn from(e: ParseError) -> Self {
        LineError::Malformed(e)
    }
}

/// An aggregator fed one record per line (Lambda, DynamoDB and agent runtime logs, S3 access logs):
/// it says how a line parses and how a record is added, and gets [`Records::consume`] and
/// [`read_records`] — the error accounting every such aggregator shares.
pub(crate) trait Records {
    type Record;

    /// `Ok(None)` for a line that is not one of this aggregator's records.
    fn parse(&self, text: &str) -> Result<Option<Self::Record>, ParseError>;

    /// Adds one parsed record. `Err` only when a total overflows exact arithmetic.
    fn add(&mut self, record: Self::Record) -> Result<(), String>;

    /// Parses one line and adds its record, if it is one of ours (also used by [`super::logs`], which
    /// offers each line to several aggregators).
    fn consume(&mut self, source_name: &str, line: u64, text: &str) -> Result<Outcome, LineError> {
        let parsed = self.parse(text);
        self.add_parsed(source_name, line, parsed)
    }

    /// Adds what [`Records::parse`] gave for one line (parsed elsewhere, e.g. on a worker thread of
    /// [`read_lines_parallel`](super::parallel::read_lines_parallel)).
    fn add_parsed(
        &mut self,
        source_name: &str,
        line: u64,
        parsed: Result<Option<Self::Record>, ParseError>,
    ) -> Result<Outcome, LineError> {
        added(source_name, line, parsed, |record| self.add(record))
    }
}

/// The outcome of one line parsed as `parsed`, its record given to `add` (whose error, an
/// overflow of exact arithmetic, is fatal for the read).
pub(crate) fn added<R>(
    source_name: &str,
    line: u64,
    parsed: Result<Option<R>, ParseError>,
    add: impl FnOnce(R) -> Result<(), String>,
) -> Result<Outcome, LineError> {
    match parsed? {
        None => Ok(Outcome::Ignored),
        Some(record) => {
            add(record).map_err(|message| {
                LineError::Fatal(Box::new(EvidenceError::Invalid {
                    source_name: source_name.to_owned(),
                    line,
                    message,
                }))
            })?;
            Ok(Outcome::Record)
        }
    }
}

/// Reads one source into a [`Records`] aggregator.
pub(crate) fn read_records<A: Records, R: BufRead>(
    aggregator: &mut A,
    source_name: &str,
    reader: R,
    budget: &ErrorBudget,
) -> Result<SourceReport, EvidenceError> {
    read_lines(source_name, reader, budget, |line, text| aggregator.consume(source_name, line, text))
}

/// Feeds each non-blank line of `reader` to `f` (with its 1-based number) and accounts for the outcome;
/// fails at the end when the source's malformed ratio exceeds `budget`.
pub(crate) fn read_lines<R: BufRead>(
    source_name: &str,
    mut reader: R,
    budget: &ErrorBudget,
    mut f: impl FnMut(u64, &str) -> Result<Outcome, LineError>,
) -> Result<SourceReport, EvidenceError> {
    let mut report = SourceReport { source: source_name.to_owned(), ..SourceReport::default() };
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    loop {
        let (too_long, eof) = match next_line(&mut reader, &mut buf) {
            Ok(LineEnd::Complete { too_long, eof }) => (too_long, eof),
            Ok(LineEnd::Corrupt(e)) => {
                // A truncated or corrupt gzip stream: what was read stays, the damage is one bad record.
                line_no += 1;
                report.lines += 1;
                report.truncated = true;
                let err = ParseError::Truncated(format!("{e} (after {} complete lines)", line_no - 1));
                report.malformed(line_no, &err, &buf, budget);
                break;
            }
            Err(e) => {
                return Err(EvidenceError::Io {
                    source_name: source_name.to_owned(),
                    line: line_no,
                    message: e.to_string(),
                });
            }
        };
        if eof && buf.is_empty() {
            break;
        }
        line_no += 1;
        let bytes = buf.strip_suffix(b"\r").unwrap_or(&buf);
        if bytes.iter().all(u8::is_ascii_whitespace) && !too_long {
            if eof {
                break;
            }
            continue;
        }
        report.lines += 1;
        account_line(&mut report, line_no, bytes, too_long, budget, &mut f)?;
        if eof {
            break;
        }
    }
    report.check(budget)?;
    Ok(report)
}

/// How [`next_line`] ended.
enum LineEnd {
    /// At a newline, or at the end of the input (`eof`); `too_long` when the line was cut at
    /// [`MAX_LINE_BYTES`].
    Complete { too_long: bool, eof: bool },
    /// The stream failed the way a truncated or corrupt gzip stream does: what was read stays in
    /// the buffer, and the read ends.
    Corrupt(io::Error),
}

/// Reads the next line (without its newline) into `buf`, keeping at most [`MAX_LINE_BYTES`] of it
/// so that one line without a newline cannot exhaust memory. Other I/O errors than those of a
/// corrupt stream are returned (fatal for the whole read).
fn next_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<LineEnd> {
    buf.clear();
    let mut too_long = false;
    loop {
        let (used, newline) = match reader.fill_buf() {
            Ok([]) => return Ok(LineEnd::Complete { too_long, eof: true }),
            Ok(avail) => {
                let nl = memchr::memchr(b'\n', avail);
                let chunk = &avail[..nl.unwrap_or(avail.len())];
                let room = MAX_LINE_BYTES.saturating_sub(buf.len());
                if chunk.len() > room {
                    too_long = true;
                }
                // Keep at most MAX_LINE_BYTES (enough for the excerpt of an over-long line).
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                (nl.map_or(avail.len(), |i| i + 1), nl.is_some())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData | ErrorKind::InvalidInput) =>
            {
                return Ok(LineEnd::Corrupt(e));
            }
            Err(e) => return Err(e),
        };
        reader.consume(used);
        if newline {
            return Ok(LineEnd::Complete { too_long, eof: false });
        }
    }
}

/// Counts one non-blank line: an over-long or non-UTF-8 line is malformed without reaching `f`;
/// otherwise `f`'s outcome is counted, and its fatal error ends the read.
fn account_line(
    report: &mut SourceReport,
    line_no: u64,
    bytes: &[u8],
    too_long: bool,
    budget: &ErrorBudget,
    f: &mut impl FnMut(u64, &str) -> Result<Outcome, LineError>,
) -> Result<(), EvidenceError> {
    if too_long {
        report.malformed(line_no, &ParseError::TooLong { limit: MAX_LINE_BYTES }, bytes, budget);
    } else {
        match std::str::from_utf8(bytes) {
            Err(e) => {
                report.malformed(line_no, &ParseError::InvalidUtf8 { valid_up_to: e.valid_up_to() }, bytes, budget)
            }
            Ok(text) => match f(line_no, text) {
                Ok(Outcome::Record) => report.records += 1,
                Ok(Outcome::Ignored) => report.ignored += 1,
                Err(LineError::Malformed(e)) => report.malformed(line_no, &e, bytes, budget),
                Err(LineError::Fatal(e)) => return Err(*e),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn run(data: &[u8]) -> Result<SourceReport, EvidenceError> {
        let budget = ErrorBudget { max_ratio: rust_decimal::Decimal::ONE, max_examples: 10 };
        read_lines("t", decompress(Cursor::new(data.to_vec())).unwrap(), &budget, |_, l| {
            if l.starts_with("ok") { Ok(Outcome::Record) } else { Ok(Outcome::Ignored) }
        })
    }

    #[test]
    fn counts_lines_crlf_blank_and_bad_utf8() {
        let r = run(b"ok 1\r\n\r\n  \nother\nok \xff\xfe\nok last").unwrap();
        assert_eq!((r.lines, r.records, r.ignored, r.malformed), (4, 2, 1, 1));
        assert_eq!(r.examples[0].line, 5);
        assert!(r.examples[0].error.contains("UTF-8"), "{:?}", r.examples);
    }

    #[test]
    fn over_long_line_is_skipped_not_buffered() {
        let mut data = vec![b'x'; MAX_LINE_BYTES * 3];
        data.extend_from_slice(b"\nok\n");
        let r = run(&data).unwrap();
        assert_eq!((r.lines, r.records, r.malformed), (2, 1, 1));
    }

    #[test]
    fn gzip_and_truncated_gzip() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..30_000 {
            writeln!(enc, "ok {i} some padding to make the stream longer than a block {}", i * 7919).unwrap();
        }
        let gz = enc.finish().unwrap();
        let r = run(&gz).unwrap();
        assert_eq!((r.records, r.malformed, r.truncated), (30_000, 0, false));
        let r = run(&gz[..gz.len() / 2]).unwrap();
        assert!(r.truncated);
        // Decompressed on a thread of its own: the same lines, the same damage.
        let budget = ErrorBudget { max_ratio: rust_decimal::Decimal::ONE, max_examples: 10 };
        let threaded = |data: Vec<u8>| {
            read_lines("t", decompress_threaded(Cursor::new(data)).unwrap(), &budget, |_, l| {
                if l.starts_with("ok") { Ok(Outcome::Record) } else { Ok(Outcome::Ignored) }
            })
            .unwrap()
        };
        assert_eq!(threaded(gz.clone()), run(&gz).unwrap());
        assert_eq!(threaded(gz[..gz.len() / 2].to_vec()), r);
        assert_eq!(threaded(b"ok plain\nok".to_vec()), run(b"ok plain\nok").unwrap());
        assert_eq!(r.malformed, 1);
        assert!(r.records > 0 && r.records < 30_000);
        assert!(r.examples[0].error.contains("truncated"), "{:?}", r.examples);
    }
}
