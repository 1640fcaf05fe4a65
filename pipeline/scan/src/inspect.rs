//! Reads what a file declares about itself (Parquet footer, CSV header) before any scan, so that
//! unreadable files, missing columns and wrong types fail fast with the file named.
//!
//! Local files are read with `std::fs`. S3 objects go through `object_store`: the Parquet footer
//! with range GETs of the file's tail only, the CSV header (and, on the error path, the line of a
//! bad value) from a streaming GET that is dropped as soon as the answer is known.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use flate2::read::MultiGzDecoder;
use futures::{Stream, StreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};

use crate::error::{Error, Result};
use crate::location::s3::object_store_error;

/// What a Parquet footer says about the file.
#[derive(Debug, Clone)]
pub struct ParquetFooter {
    pub schema: Schema,
    pub rows: u64,
    /// Each row group's first byte and compressed size, in file order.
    pub row_groups: Vec<RowGroupSpan>,
    /// Per leaf column (in the file's column order), the top-level field it belongs to.
    leaf_roots: Vec<usize>,
    /// Per row group (as in `row_groups`), each leaf column's compressed bytes.
    leaf_bytes: Vec<Vec<u64>>,
}

/// Where a row group starts and how many compressed bytes it holds. The start is the offset of
/// its first column's first page, the position DataFusion uses to give a row group to a byte
/// range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupSpan {
    pub start: u64,
    pub bytes: u64,
}

impl ParquetFooter {
    fn of(meta: &ArrowReaderMetadata) -> Self {
        let metadata = meta.metadata();
        let with_columns = || metadata.row_groups().iter().filter(|rg| rg.num_columns() > 0);
        let row_groups = with_columns()
            .map(|rg| {
                let first = rg.column(0);
                let start = first.dictionary_page_offset().unwrap_or_else(|| first.data_page_offset());
                RowGroupSpan {
                    start: u64::try_from(start).unwrap_or(0),
                    bytes: u64::try_from(rg.compressed_size()).unwrap_or(0),
                }
            })
            .collect();
        let leaf_bytes = with_columns()
            .map(|rg| rg.columns().iter().map(|c| u64::try_from(c.compressed_size()).unwrap_or(0)).collect())
            .collect();
        let descr = metadata.file_metadata().schema_descr();
        Self {
            schema: meta.schema().as_ref().clone(),
            rows: u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0),
            row_groups,
            leaf_roots: (0..descr.num_columns()).map(|i| descr.get_column_root_idx(i)).collect(),
            leaf_bytes,
        }
    }

    /// The compressed bytes of the largest row group in the top-level fields `roots` (all of
    /// them: `None`): what a reader of those fields holds for one row group in flight, since
    /// the Parquet reader fetches a row group's column chunks whole before decoding them.
    pub fn largest_row_group_bytes(&self, roots: Option<&[usize]>) -> u64 {
        let read = |leaf: usize| roots.is_none_or(|r| self.leaf_roots.get(leaf).is_some_and(|root| r.contains(root)));
        self.leaf_bytes
            .iter()
            .map(|leaves| leaves.iter().enumerate().filter(|(leaf, _)| read(*leaf)).map(|(_, b)| *b).sum::<u64>())
            .max()
            .unwrap_or(0)
    }
}

/// A local Parquet file's footer.
pub fn parquet_footer(path: &Path) -> Result<ParquetFooter> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| Error::BadParquet { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(ParquetFooter::of(&meta))
}

/// Opens a CSV file, transparently decompressing gzip.
pub fn open_csv(path: &Path, gzip: bool) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(decompressed(Box::new(file), gzip))
}

fn decompressed(raw: Box<dyn Read>, gzip: bool) -> Box<dyn Read> {
    if gzip { Box::new(MultiGzDecoder::new(BufReader::new(raw))) } else { Box::new(BufReader::new(raw)) }
}

/// The header line of a CSV file.
pub fn csv_header(path: &Path, gzip: bool) -> Result<Vec<String>> {
    header_of(path, open_csv(path, gzip)?, gzip)
}

/// The object-store error inside an I/O error raised by [`StreamRead`], if that is its cause.
fn transfer_error(e: &std::io::Error) -> Option<&object_store::Error> {
    e.get_ref()?.downcast_ref::<object_store::Error>()
}

fn header_of(path: &Path, input: Box<dyn Read>, gzip: bool) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let header = reader.headers().map_err(|e| {
        if let csv::ErrorKind::Io(io) = e.kind()
            && let Some(transfer) = transfer_error(io)
        {
            return object_store_error("GetObject", &path.display().to_string(), transfer);
        }
        Error::BadCsv {
            path: path.to_path_buf(),
            reason: if gzip {
                format!("cannot read the gzip CSV header: {e}")
            } else {
                format!("cannot read the CSV header: {e}")
            },
        }
    })?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if names.iter().all(String::is_empty) {
        return Err(Error::BadCsv {
            path: path.to_path_buf(),
            reason: "no header line; expected CUR column names like lineItem/UnblendedCost".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(Error::BadCsv {
            path: path.to_path_buf(),
            reason: format!("column `{dup}` appears twice in the header"),
        });
    }
    Ok(names)
}

/// The 1-based line of the first record whose `column` holds `value` (after trimming); used on
/// the error path only, to point at the bad line of a CSV the engine rejected.
pub fn csv_line_of(path: &Path, gzip: bool, column: &str, value: &str) -> Option<u64> {
    line_of(open_csv(path, gzip).ok()?, column, value)
}

fn line_of(input: Box<dyn Read>, column: &str, value: &str) -> Option<u64> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let index = reader.headers().ok()?.iter().position(|h| h.trim() == column)?;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).ok()? {
        if record.get(index).map(str::trim) == Some(value) {
            return record.position().map(|p| p.line());
        }
    }
    None
}

/// A CSV value that is not UTF-8: its 1-based line, its column and the value (invalid bytes shown
/// as U+FFFD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUtf8 {
    pub line: u64,
    pub column: String,
    pub value: String,
}

/// The first value of a local CSV file that is not UTF-8 (error path only: the engine's own
/// message gives a line relative to its read position and a field number, not the column).
pub fn csv_invalid_utf8(path: &Path, gzip: bool) -> Option<InvalidUtf8> {
    invalid_utf8_of(open_csv(path, gzip).ok()?)
}

fn invalid_utf8_of(input: Box<dyn Read>) -> Option<InvalidUtf8> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let header = reader.byte_headers().ok()?.clone();
    let name = |i: usize| String::from_utf8_lossy(header.get(i).unwrap_or_default()).trim().to_string();
    if let Some(i) = header.iter().position(|h| std::str::from_utf8(h).is_err()) {
        return Some(InvalidUtf8 { line: 1, column: format!("#{} (header)", i + 1), value: name(i) });
    }
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).ok()? {
        if let Some(i) = record.iter().position(|v| std::str::from_utf8(v).is_err()) {
            return Some(InvalidUtf8 {
                line: record.position().map(|p| p.line())?,
                column: name(i),
                value: String::from_utf8_lossy(record.get(i).unwrap_or_default()).into_owned(),
            });
        }
    }
    None
}

/// [`csv_invalid_utf8`] for an S3 object (error path only; streams until the value is found). Its
/// signature has the shape of [`parquet_footer_s3`]'s: both read one S3 object, nothing more.
pub async fn csv_invalid_utf8_s3(
    store: Arc<dyn ObjectStore>,
    name: &Path,
    key: &str,
    gzip: bool,
) -> Option<InvalidUtf8> {
    with_s3_reader(store, name, key, gzip, invalid_utf8_of).await.ok().flatten()
}

/// A Parquet object's footer: one range GET of the file's last 64 KiB (a second one only for
/// larger metadata). `name` is the `s3://` name used in errors.
pub async fn parquet_footer_s3(
    store: Arc<dyn ObjectStore>,
    name: &Path,
    key: &str,
    size: u64,
) -> Result<ParquetFooter> {
    const FOOTER: u64 = 8;
    const TAIL: u64 = 64 * 1024;
    let location = object_store::path::Path::from(key);
    let bad = |reason: String| Error::BadParquet { path: name.to_path_buf(), reason };
    let transfer = |e: object_store::Error| object_store_error("GetObject (range)", &name.display().to_string(), &e);
    if size < FOOTER + 4 {
        return Err(bad(format!("{size} bytes is too small for a Parquet file")));
    }
    let tail_len = size.min(TAIL);
    let tail = store.get_range(&location, size - tail_len..size).await.map_err(transfer)?;
    let split = tail.len().saturating_sub(FOOTER as usize);
    let footer = FooterTail::try_from(&tail[split..]).map_err(|e| bad(e.to_string()))?;
    if footer.is_encrypted_footer() {
        return Err(bad("encrypted Parquet footers are not supported".into()));
    }
    let meta_len = footer.metadata_length() as u64;
    if meta_len + FOOTER > size {
        return Err(bad(format!("the footer declares {meta_len} bytes of metadata in a {size}-byte file")));
    }
    let metadata = if meta_len + FOOTER <= tail_len {
        let start = (tail_len - FOOTER - meta_len) as usize;
        ParquetMetaDataReader::decode_metadata(&tail[start..split])
    } else {
        let buf = store.get_range(&location, size - FOOTER - meta_len..size - FOOTER).await.map_err(transfer)?;
        ParquetMetaDataReader::decode_metadata(&buf)
    }
    .map_err(|e| bad(e.to_string()))?;
    let meta =
        ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new()).map_err(|e| bad(e.to_string()))?;
    Ok(ParquetFooter::of(&meta))
}

/// Opens a streaming GET of an S3 object and runs `read` on it (decompressed) on a blocking
/// thread; the transfer stops when `read` returns and the stream is dropped.
async fn with_s3_reader<T: Send + 'static>(
    store: Arc<dyn ObjectStore>,
    name: &Path,
    key: &str,
    gzip: bool,
    read: impl FnOnce(Box<dyn Read>) -> T + Send + 'static,
) -> Result<T> {
    let got = store
        .get(&object_store::path::Path::from(key))
        .await
        .map_err(|e| object_store_error("GetObject", &name.display().to_string(), &e))?;
    let stream = got.into_stream();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || read(decompressed(Box::new(StreamRead::new(handle, stream)), gzip)))
        .await
        .map_err(|e| Error::Internal(format!("{}: reading task failed: {e}", name.display())))
}

/// The header line of a CSV object on S3 (only the first bytes are transferred).
pub async fn csv_header_s3(store: Arc<dyn ObjectStore>, name: &Path, key: &str, gzip: bool) -> Result<Vec<String>> {
    let owned: PathBuf = name.to_path_buf();
    with_s3_reader(store, name, key, gzip, move |input| header_of(&owned, input, gzip)).await?
}

/// [`csv_line_of`] for an S3 object (error path only; streams until the value is found).
pub async fn csv_line_of_s3(
    store: Arc<dyn ObjectStore>,
    name: &Path,
    key: &str,
    gzip: bool,
    column: &str,
    value: &str,
) -> Option<u64> {
    let (column, value) = (column.to_string(), value.to_string());
    with_s3_reader(store, name, key, gzip, move |input| line_of(input, &column, &value)).await.ok().flatten()
}

/// A blocking [`Read`] over an async byte stream, for the `csv`/`flate2` readers. Only used on
/// `spawn_blocking` threads, where blocking on the runtime handle is allowed.
struct StreamRead<S, B> {
    handle: tokio::runtime::Handle,
    stream: S,
    chunk: Option<B>,
    pos: usize,
}

impl<S, B> StreamRead<S, B> {
    fn new(handle: tokio::runtime::Handle, stream: S) -> Self {
        Self { handle, stream, chunk: None, pos: 0 }
    }
}

impl<S, B> Read for StreamRead<S, B>
where
    S: Stream<Item = object_store::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let rest = chunk.as_ref().get(self.pos..).unwrap_or_default();
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(chunk)) => {
                    self.chunk = Some(chunk);
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
    }
}
