//! Usage evidence under an S3 prefix (`s3://bucket/prefix/`): Lambda or application logs
//! delivered to S3, a CloudWatch Logs export, Firehose subscription payloads, S3 Inventory
//! reports, server access logs.
//!
//! The objects are downloaded, one at a time and chunk by chunk, into a temporary directory (the
//! OS temp dir: `/tmp` in Lambda) keeping their key layout below the prefix, then read like a
//! local directory: each file classified by its content, inventory data files found through their
//! manifests. Memory holds one chunk; the disk holds the prefix's objects until the source is read
//! (so the function's ephemeral storage must hold them).
//!
//! Reading whole UTC days (`curflow usage ingest`), only objects written since the first day read
//! (less [`CLOCK_SKEW`]) are downloaded: an object written before a day began cannot hold that
//! day's lines, since logs, access logs, inventories and exports are all written after what they
//! record. So each nightly ingestion downloads the last few days' objects, not the prefix's
//! whole history (which is still listed: 1,000 keys per request).

use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::scan::location::s3::S3Access;

/// How much earlier than the first day read an object may have been written and still be read:
/// room for a writer's clock running behind.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::hours(1);

/// Downloads the objects under `s3://bucket/prefix` written at or after `since` (all of them
/// without it) into a new temporary directory; the directory (removed when dropped).
pub fn download(
    bucket: &str,
    prefix: &str,
    aws: &AwsSettings,
    since: Option<DateTime<Utc>>,
) -> Result<tempfile::TempDir> {
    let dir = temp_dir()?;
    let target = dir.path().to_path_buf();
    on_own_runtime(copy_prefix(bucket, prefix, aws, since, &target))?;
    Ok(dir)
}

/// The `since` of [`download`] for reading UTC days from `first_day` on.
pub fn written_since(first_day: chrono::NaiveDate) -> DateTime<Utc> {
    first_day.and_time(chrono::NaiveTime::MIN).and_utc() - CLOCK_SKEW
}

/// A settings file of attribution (rules, assignments, S3 prefix map, agent session map) named by
/// a local path or an `s3://bucket/key` object: the local path as it is, or the object downloaded
/// into a temporary directory that lives as long as this value.
pub struct SettingsFile {
    path: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

impl SettingsFile {
    /// `path`, fetched first when it is an `s3://` object.
    pub fn fetch(path: &Path, aws: &AwsSettings) -> Result<Self> {
        let Some(text) = path.to_str().filter(|_| crate::location::is_s3_path(path)) else {
            return Ok(Self { path: path.to_path_buf(), _copy: None });
        };
        let (bucket, key) = match crate::location::Location::parse(text)? {
            crate::location::Location::S3 { bucket, key } if !key.is_empty() && !key.ends_with('/') => (bucket, key),
            _ => {
                return Err(Error::Argument(format!("{text}: a settings file is one S3 object (s3://BUCKET/KEY)")));
            }
        };
        let dir = temp_dir()?;
        let to = dir.path().join(key.rsplit('/').next().unwrap_or("settings"));
        let target = to.clone();
        on_own_runtime(async move {
            S3Access::new(aws).await?.download(&bucket, &key, &target).await?;
            Ok(())
        })?;
        Ok(Self { path: to, _copy: Some(dir) })
    }

    /// Where to read it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("curflow-evidence-").tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))
}

/// Runs `work` to completion on a thread and single-threaded runtime of its own: the readers are
/// synchronous and may run on a runtime's blocking thread (as the CloudWatch reader does).
fn on_own_runtime<F: Future<Output = Result<()>> + Send>(work: F) -> Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Internal(format!("tokio runtime for S3 evidence: {e}")))?;
                runtime.block_on(work)
            })
            .join()
            .map_err(|_| Error::Internal("the S3 evidence download thread panicked".into()))?
    })
}

async fn copy_prefix(
    bucket: &str,
    prefix: &str,
    aws: &AwsSettings,
    since: Option<DateTime<Utc>>,
    target: &Path,
) -> Result<()> {
    let s3 = S3Access::new(aws).await?;
    let objects = s3.list(bucket, prefix).await?;
    if objects.is_empty() {
        return Err(Error::Evidence {
            path: PathBuf::from(format!("s3://{bucket}/{prefix}")),
            reason: "no object under this prefix".into(),
        });
    }
    let recent = |o: &&crate::scan::location::s3::ObjectInfo| since.is_none_or(|s| o.modified >= s);
    let wanted: Vec<_> = objects.iter().filter(|o| !o.key.ends_with('/')).filter(recent).collect();
    let skipped = objects.len() - wanted.len();
    for object in wanted {
        let relative = object.key.strip_prefix(prefix).unwrap_or(&object.key).trim_start_matches('/');
        // Keys are text, not paths: keep only plain components, so `..` or an absolute key can
        // never write outside the directory.
        let safe: PathBuf = relative.split('/').filter(|c| !c.is_empty() && *c != "." && *c != "..").collect();
        if safe.as_os_str().is_empty() {
            continue;
        }
        let to = target.join(&safe);
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| Error::io(parent, e))?;
        }
        s3.download(bucket, &object.key, &to).await?;
    }
    tracing::info!(bucket, prefix, objects = objects.len() - skipped, skipped, "S3 evidence downloaded");
    Ok(())
}
