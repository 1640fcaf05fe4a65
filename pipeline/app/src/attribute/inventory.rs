//! S3 Inventory reports as evidence: a daily snapshot's `manifest.json` names its data files and
//! their schema; every object's size counts for the tenant its key maps to on the snapshot's day.
//!
//! Layout (as S3 delivers it to the destination bucket):
//! `<dest>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json` and
//! `<dest>/<source-bucket>/<config-id>/data/<uuid>.csv.gz` (or `.parquet`), the manifest listing data
//! files by key relative to `<dest>`. The snapshot counts for the UTC day of `creationTimestamp`.
//! CSV rows are quoted with URL-encoded keys; Parquet rows carry plain `bucket`, `key`, `size`
//! columns. ORC is not supported (configure the inventory as CSV or Parquet).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use chrono::{DateTime, NaiveDate};
use curflow_attribution::evidence::ErrorBudget;
use curflow_attribution::evidence::s3::{InventorySchema, PrefixMap, S3InventoryAggregator, S3Stats};
use curflow_attribution::{DriverTotals, evidence::SourceReport};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

use super::sources::open;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    source_bucket: String,
    creation_timestamp: String,
    file_format: String,
    file_schema: String,
    files: Vec<RawFile>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    key: String,
}

/// One parsed inventory snapshot.
#[derive(Debug)]
pub struct InventoryManifest {
    pub path: PathBuf,
    pub source_bucket: String,
    pub day: NaiveDate,
    pub format: InventoryFormat,
    pub file_schema: String,
    pub data_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryFormat {
    Csv,
    Parquet,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Evidence { path: path.to_path_buf(), reason: reason.into() }
}

impl InventoryManifest {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let raw: RawManifest =
            serde_json::from_str(&text).map_err(|e| bad(path, format!("not an S3 Inventory manifest: {e}")))?;
        let millis: i64 = raw.creation_timestamp.trim().parse().map_err(|_| {
            bad(path, format!("creationTimestamp {:?} is not milliseconds since the epoch", raw.creation_timestamp))
        })?;
        let day = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| bad(path, format!("creationTimestamp {millis} out of range")))?
            .date_naive();
        let format = match raw.file_format.to_ascii_uppercase().as_str() {
            "CSV" => InventoryFormat::Csv,
            "PARQUET" => InventoryFormat::Parquet,
            other => return Err(bad(path, format!("fileFormat {other} is not supported; expected CSV or Parquet"))),
        };
        let data_files = raw.files.iter().map(|f| resolve_key(path, &f.key)).collect::<Result<_>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            source_bucket: raw.source_bucket,
            day,
            format,
            file_schema: raw.file_schema,
            data_files,
        })
    }

    /// Reads every data file of the snapshot into byte-hours per tenant for its day.
    pub fn aggregate(
        &self,
        map: &PrefixMap,
        budget: &ErrorBudget,
    ) -> Result<(DriverTotals, S3Stats, Vec<SourceReport>)> {
        // CSV rows are positional (the manifest's `fileSchema` names the columns); Parquet files carry
        // their own schema (the manifest holds a Parquet `message` there) and are read by name.
        let schema = match self.format {
            InventoryFormat::Csv => {
                InventorySchema::from_file_schema(&self.file_schema).map_err(|e| bad(&self.path, e))?
            }
            InventoryFormat::Parquet => InventorySchema::default(),
        };
        let mut agg = S3InventoryAggregator::new(self.day, schema, map);
        let mut reports = Vec::new();
        for file in &self.data_files {
            let name = file.display().to_string();
            match self.format {
                InventoryFormat::Csv => {
                    let report = agg.read(&name, open(file)?, budget).map_err(|e| bad(file, e.to_string()))?;
                    reports.push(report);
                }
                InventoryFormat::Parquet => reports.push(read_parquet(file, &mut agg)?),
            }
        }
        let (totals, stats) = agg.finish().map_err(|e| bad(&self.path, e))?;
        Ok((totals, stats, reports))
    }
}

/// The data file of `key`: the manifest lives under the destination root, so the first ancestor of
/// the manifest's folder that holds `key` is that root.
fn resolve_key(manifest: &Path, key: &str) -> Result<PathBuf> {
    let mut searched = Vec::new();
    for dir in manifest.ancestors().skip(1) {
        let candidate = dir.join(key);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(dir.to_path_buf());
    }
    Err(curflow_scan::Error::MissingManifestFile { manifest: manifest.to_path_buf(), key: key.to_string(), searched }
        .into())
}

/// A Parquet inventory file, streamed by record batch (columns `bucket`, `key`, `size`).
fn read_parquet(path: &Path, agg: &mut S3InventoryAggregator<'_>) -> Result<SourceReport> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(path, format!("not Parquet: {e}")))?;
    let fields = builder.parquet_schema().columns();
    let index = |name: &str| {
        fields
            .iter()
            .position(|c| c.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| bad(path, format!("inventory Parquet has no `{name}` column")))
    };
    let wanted = [index("bucket")?, index("key")?, index("size")?];
    let mask = ProjectionMask::leaves(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).with_batch_size(8192).build().map_err(|e| bad(path, e.to_string()))?;
    let mut report = SourceReport { source: path.display().to_string(), ..SourceReport::default() };
    for batch in reader {
        let batch = batch.map_err(|e| bad(path, format!("reading after row {}: {e}", report.lines)))?;
        let col = |name: &str| {
            batch
                .schema()
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
                .map(|i| batch.column(i).clone())
                .ok_or_else(|| bad(path, format!("inventory Parquet has no `{name}` column")))
        };
        let (buckets, keys, sizes) = (col("bucket")?, col("key")?, col("size")?);
        let (Some(buckets), Some(keys)) = (buckets.as_string_opt::<i32>(), keys.as_string_opt::<i32>()) else {
            return Err(bad(path, "inventory Parquet `bucket` and `key` must be strings"));
        };
        let first_row = report.lines;
        let size_at = |i: usize| -> Result<Option<u64>> {
            if sizes.is_null(i) {
                return Ok(None);
            }
            match sizes.data_type() {
                DataType::Int64 => u64::try_from(sizes.as_primitive::<Int64Type>().value(i))
                    .map(Some)
                    .map_err(|_| bad(path, format!("row {}: negative size", first_row + i as u64 + 1))),
                DataType::UInt64 => Ok(Some(sizes.as_primitive::<UInt64Type>().value(i))),
                other => Err(bad(path, format!("inventory Parquet `size` has type {other}, expected int64"))),
            }
        };
        for i in 0..batch.num_rows() {
            if buckets.is_null(i) || keys.is_null(i) {
                report.lines += 1;
                report.ignored += 1;
                continue;
            }
            let size = size_at(i)?;
            report.lines += 1;
            match agg.push(buckets.value(i), keys.value(i), size) {
                Ok(true) => report.records += 1,
                Ok(false) => report.ignored += 1,
                Err(e) => return Err(bad(path, format!("row {}: {e}", report.lines))),
            }
        }
    }
    Ok(report)
}
