//! Reads what a file declares about itself (Parquet footer, CSV header) before any scan, so that
//! unreadable files, missing columns and wrong types fail fast with the file named.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow::datatypes::Schema;
use flate2::read::MultiGzDecoder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::error::{Error, Result};

/// A Parquet file's Arrow schema and row count, from its footer.
pub fn parquet_footer(path: &Path) -> Result<(Schema, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| Error::BadParquet { path: path.to_path_buf(), reason: e.to_string() })?;
    let rows = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    Ok((meta.schema().as_ref().clone(), rows))
}

/// Opens a CSV file, transparently decompressing gzip.
pub fn open_csv(path: &Path, gzip: bool) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(if gzip { Box::new(MultiGzDecoder::new(BufReader::new(file))) } else { Box::new(BufReader::new(file)) })
}

/// The header line of a CSV file.
pub fn csv_header(path: &Path, gzip: bool) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(open_csv(path, gzip)?);
    let header = reader.headers().map_err(|e| Error::BadCsv {
        path: path.to_path_buf(),
        reason: if gzip {
            format!("cannot read the gzip CSV header: {e}")
        } else {
            format!("cannot read the CSV header: {e}")
        },
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
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(open_csv(path, gzip).ok()?);
    let index = reader.headers().ok()?.iter().position(|h| h.trim() == column)?;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).ok()? {
        if record.get(index).map(str::trim) == Some(value) {
            return record.position().map(|p| p.line());
        }
    }
    None
}
