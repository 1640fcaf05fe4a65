//! Where usage evidence comes from, and what each local file is.
//!
//! `--evidence` takes local paths (files or directories, plain or gzip) and CloudWatch Logs log
//! groups (`cloudwatch://<log-group>[?filter=<pattern>&stream-prefix=<prefix>]`, e.g.
//! `cloudwatch:///aws/lambda/api-handler`). Local files are classified by content, so one directory
//! can hold every kind: S3 Inventory manifests (their data files are read through the manifest),
//! S3 server access logs, and application/Lambda/agent logs.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// One `--evidence` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EvidenceSource {
    Path(PathBuf),
    CloudWatch(CloudWatchSource),
    /// Every object under an S3 prefix (`s3://bucket/prefix/`): Lambda logs delivered to S3, a
    /// CloudWatch Logs export, Firehose subscription payloads, S3 Inventory reports, server access
    /// logs. Downloaded (streamed, object by object) into a temporary directory and classified by
    /// content like a local directory.
    S3 {
        bucket: String,
        prefix: String,
    },
    /// A CloudWatch metric with a tenant dimension (`cloudwatch-metrics://...`, see
    /// [`super::metrics`]), read per tenant and day with `GetMetricData`.
    Metrics(super::metrics::MetricSource),
}

/// A CloudWatch Logs log group read with `FilterLogEvents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudWatchSource {
    pub log_group: String,
    /// CloudWatch filter pattern (server-side), e.g. `?REPORT ?accountant_id`.
    pub filter_pattern: Option<String>,
    pub stream_prefix: Option<String>,
}

const CLOUDWATCH_SCHEME: &str = "cloudwatch://";
const S3_SCHEME: &str = "s3://";

impl FromStr for EvidenceSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.starts_with(super::metrics::METRICS_SCHEME) {
            return Ok(Self::Metrics(s.parse()?));
        }
        if let Some(rest) = s.strip_prefix(S3_SCHEME) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Argument(format!("{s}: expected s3://<bucket>/<prefix>")));
            }
            return Ok(Self::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() });
        }
        let Some(rest) = s.strip_prefix(CLOUDWATCH_SCHEME) else { return Ok(Self::Path(PathBuf::from(s))) };
        let (group, query) = rest.split_once('?').unwrap_or((rest, ""));
        if group.is_empty() {
            return Err(Error::Argument(format!(
                "{s}: expected cloudwatch://<log-group>, e.g. cloudwatch:///aws/lambda/app"
            )));
        }
        let mut source = CloudWatchSource { log_group: group.to_string(), filter_pattern: None, stream_prefix: None };
        // `application/x-www-form-urlencoded`: `%XX` and `+` (space); an invalid escape is kept as written.
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "filter" => source.filter_pattern = Some(v.into_owned()),
                "stream-prefix" => source.stream_prefix = Some(v.into_owned()),
                other => {
                    return Err(Error::Argument(format!(
                        "{s}: unknown parameter {other:?} (expected filter=<pattern> or stream-prefix=<prefix>)"
                    )));
                }
            }
        }
        Ok(Self::CloudWatch(source))
    }
}

impl From<PathBuf> for EvidenceSource {
    fn from(p: PathBuf) -> Self {
        Self::Path(p)
    }
}

impl fmt::Display for EvidenceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::CloudWatch(c) => write!(f, "{CLOUDWATCH_SCHEME}{}", c.log_group),
            Self::S3 { bucket, prefix } => write!(f, "{S3_SCHEME}{bucket}/{prefix}"),
            Self::Metrics(m) => write!(f, "{m}"),
        }
    }
}

/// What a local evidence file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An S3 Inventory `manifest.json`: its data files are read through it.
    InventoryManifest,
    /// S3 server access log records.
    S3AccessLog,
    /// CloudWatch Logs subscription-filter payloads (Kinesis/Firehose), gzip JSON.
    SubscriptionPayload,
    /// Application, Lambda and agent runtime log lines.
    Log,
    /// Not evidence (rules, prefix maps, inventory checksums).
    Skip,
}

/// Every file under `path` (sorted, recursive). A symlink to a folder or file already taken (a
/// loop such as `x -> .`, or a second link) is skipped with a warning, so each file is read once.
pub fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut seen =
        out.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect::<std::collections::HashSet<PathBuf>>();
    collect_files(path, out, &mut seen)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, seen: &mut std::collections::HashSet<PathBuf>) -> Result<()> {
    if !path.exists() {
        return Err(Error::Evidence { path: path.to_path_buf(), reason: "no such file or directory".into() });
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    if !seen.insert(canonical.clone()) {
        tracing::warn!(
            path = %path.display(),
            target = %canonical.display(),
            "evidence: a symlink leads to a folder or file already read (a loop or a second link); skipped"
        );
        return Ok(());
    }
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(path, err)))
            .collect::<Result<_>>()?;
        entries.sort();
        for e in entries {
            collect_files(&e, out, seen)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Classifies a file by name and its first line.
pub fn classify(path: &Path) -> Result<FileKind> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    // `aws-logs-write-test` is the permission probe CloudWatch Logs writes into an export destination.
    if name.ends_with(".toml") || name == "manifest.checksum" || name.ends_with(".md") || name == "aws-logs-write-test"
    {
        return Ok(FileKind::Skip);
    }
    if name == "manifest.json" {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        return Ok(if text.contains("\"fileSchema\"") && text.contains("\"sourceBucket\"") {
            FileKind::InventoryManifest
        } else {
            FileKind::Log
        });
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader =
        curflow_attribution::evidence::decompress(std::io::BufReader::new(file)).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(512);
    // A damaged gzip stream is reported by the log reader with line context; classify it as a log.
    if reader.by_ref().take(512).read_to_end(&mut head).is_err() {
        return Ok(FileKind::Log);
    }
    Ok(if looks_like_access_log(&head) {
        FileKind::S3AccessLog
    } else if super::subscription::looks_like_payload(&head) {
        FileKind::SubscriptionPayload
    } else {
        FileKind::Log
    })
}

/// An S3 server access log record starts with the 64-hex-digit bucket owner id, the bucket and `[`.
fn looks_like_access_log(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    line.len() > 66 && line[..64].iter().all(u8::is_ascii_hexdigit) && line[64] == b' ' && line.contains(&b'[')
}

/// `Read::read` for a reader whose own buffer is the source (`fill_buf` + `consume`).
pub(crate) fn read_through_buffer<B: BufRead>(reader: &mut B, buf: &mut [u8]) -> std::io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

/// Opens a local file for line reading (gzip detected by magic bytes, decompressed on a thread of
/// its own while the caller parses).
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    open_counted(path, &ReadProgress::default())
}

/// [`open`], counting the file's bytes (as stored, before decompression) in `progress`. A gzip
/// file is decompressed on a thread of its own, ahead of the parser.
pub fn open_counted(path: &Path, progress: &ReadProgress) -> Result<Box<dyn BufRead>> {
    let file = Counted::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?, progress.clone());
    let reader: Box<dyn BufRead> =
        curflow_attribution::evidence::decompress_threaded(file).map_err(|e| Error::io(path, e))?;
    Ok(reader)
}

/// Bytes of evidence read so far (files as stored, CloudWatch Logs messages), shared between the
/// reader and whoever shows progress (`curflow usage ingest`'s progress bar) or reports it.
#[derive(Debug, Clone, Default)]
pub struct ReadProgress(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ReadProgress {
    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A reader that counts what passes through it in a [`ReadProgress`].
pub struct Counted<R> {
    inner: R,
    progress: ReadProgress,
}

impl<R> Counted<R> {
    pub fn new(inner: R, progress: ReadProgress) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.progress.add(amount);
        self.inner.consume(amount);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn counted_readers_count_what_is_consumed() {
        let progress = ReadProgress::default();
        let mut buffered = Counted::new(std::io::Cursor::new(b"ab\ncd\n".to_vec()), progress.clone());
        let mut line = String::new();
        buffered.read_line(&mut line).unwrap();
        assert_eq!((line.as_str(), progress.bytes()), ("ab\n", 3));
        let mut rest = Vec::new();
        Counted::new(std::io::Cursor::new(vec![0u8; 10]), progress.clone()).read_to_end(&mut rest).unwrap();
        assert_eq!(progress.bytes(), 13);
    }

    #[test]
    fn parses_cloudwatch_sources() {
        let s: EvidenceSource = "cloudwatch:///aws/lambda/api?filter=%3FREPORT+%3Faccountant_id".parse().unwrap();
        assert_eq!(
            s,
            EvidenceSource::CloudWatch(CloudWatchSource {
                log_group: "/aws/lambda/api".into(),
                filter_pattern: Some("?REPORT ?accountant_id".into()),
                stream_prefix: None,
            })
        );
        assert!("cloudwatch://".parse::<EvidenceSource>().is_err());
        assert!("cloudwatch://g?bogus=1".parse::<EvidenceSource>().is_err());
        assert_eq!("logs/x.gz".parse::<EvidenceSource>().unwrap(), EvidenceSource::Path("logs/x.gz".into()));
    }

    #[test]
    fn recognises_access_log_lines() {
        let line = format!(
            "{} client-documents [06/Oct/2026:00:00:38 +0000] 192.0.2.3 - 3E57 REST.GET.OBJECT k",
            "7".repeat(64)
        );
        assert!(looks_like_access_log(line.as_bytes()));
        assert!(!looks_like_access_log(b"2026-10-01T00:00:00Z REPORT RequestId: x"));
    }
}
