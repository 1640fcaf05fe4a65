//! Discovery on S3: the same deliveries as for a local copy, found by listing and read by GET.
//!
//! * A manifest key: GET it, take `assemblyId`/`executionId` as the version id and the object's
//!   `Last-Modified` as the version time (AWS rewrites the manifest on every refresh), then HEAD
//!   every listed data file.
//! * A prefix: list it, group the manifests by *period folder* (see [`period_folder`]), keep the
//!   newest manifest per folder and then per declared billing period.
//! * The Lambda trigger ([`current_manifest`]): whatever manifest the event names, re-list its
//!   period folder and process the newest manifest there (cur-domain.md §4.6: never trust the
//!   event as "latest").
//!
//! A delivery is only handed to the scanner when it is complete: every listed file exists and
//! none was modified after the manifest. Otherwise AWS is still writing (an overwrite of the
//! month is in progress) and the error is retryable, so the month is never half-read.

use std::collections::BTreeMap;

use super::manifest::{Manifest, period_from_path};
use super::{DataFile, Delivery, ManifestRef, PeriodCandidate, ReportVersion, file_kind, from_files, is_manifest_name};
use crate::error::{Error, Result};
use crate::location::{Location, ObjectInfo, S3Access, key_join, key_name, key_parent};
use curflow_model::period::BillingPeriod;

/// Whether a folder name is a legacy CUR billing-period folder (`20261001-20261101`).
fn is_date_range(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 17 && b[8] == b'-' && b.iter().enumerate().all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// The folder that holds every manifest of one billing period: the manifest's folder, or, for a
/// legacy CREATE_NEW `…/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-Manifest.json`, the date-range
/// folder above it (where AWS also writes the current manifest).
pub fn period_folder(manifest_key: &str) -> &str {
    let dir = key_parent(manifest_key);
    let above = key_parent(dir);
    if !dir.is_empty() && is_date_range(key_name(above)) && !above.is_empty() { above } else { dir }
}

/// The billing period a key's path names, if any (`BILLING_PERIOD=2026-10`,
/// `20261001-20261101`, `year=2026/month=10`): only for labelling manifests that cannot be read.
pub fn period_from_key(key: &str) -> Option<BillingPeriod> {
    if let Some(p) = period_from_path(std::path::Path::new(key)) {
        return Some(p);
    }
    let parts: Vec<&str> = key.split('/').collect();
    if let Some(range) = parts.iter().find(|p| is_date_range(p)) {
        let date = chrono::NaiveDate::parse_from_str(&range[..8], "%Y%m%d").ok()?;
        return BillingPeriod::starting_on(date);
    }
    let year = parts.iter().find_map(|p| p.strip_prefix("year=")?.parse::<i32>().ok())?;
    let month = parts.iter().find_map(|p| p.strip_prefix("month=")?.parse::<u32>().ok())?;
    BillingPeriod::new(year, month)
}

/// GETs and parses a manifest; the version time is the object's `Last-Modified`.
pub async fn read_manifest(s3: &S3Access, bucket: &str, key: &str) -> Result<ManifestRef> {
    let (text, info) = s3.get_text(bucket, key).await?;
    let manifest = Manifest::parse(&Location::s3(bucket, key).to_path_buf(), &text)?;
    let version = ReportVersion { id: manifest.version_id.clone(), time: info.modified };
    Ok(ManifestRef { manifest, version })
}

fn incomplete(bucket: &str, key: &str, reason: String) -> Error {
    Error::Aws(curflow_aws::AwsError::new(
        "S3",
        "HeadObject",
        format!("s3://{bucket}/{key}"),
        reason,
        curflow_aws::AwsErrorKind::Transient,
    ))
}

/// HEADs every data file of an S3 manifest and returns them, or a retryable error when the
/// delivery is not complete (a file missing, or written after the manifest).
///
/// Keys are bucket-relative (CUR 2.0 `s3://` URIs lose their bucket: the manifest's own bucket is
/// used, so a copied export still reads its own files). If the first key is not at the bucket
/// root, each folder above the manifest is tried as the root (a bucket copied under a prefix),
/// and a key's file name beside the manifest is the last resort, as for local copies.
pub async fn resolve_files(s3: &S3Access, manifest_ref: &ManifestRef) -> Result<Vec<DataFile>> {
    let manifest = &manifest_ref.manifest;
    let Location::S3 { bucket, key: manifest_key } = Location::of(&manifest.path)? else {
        return Err(Error::Internal(format!("{} is not an S3 manifest", manifest.path.display())));
    };
    let dir = key_parent(&manifest_key);
    let mut root = String::new();
    if let Some(first) = manifest.keys.first()
        && s3.head(&bucket, first).await?.is_none()
    {
        let mut ancestor = dir;
        while !ancestor.is_empty() {
            if s3.head(&bucket, &key_join(ancestor, first)).await?.is_some() {
                root = ancestor.to_string();
                break;
            }
            ancestor = key_parent(ancestor);
        }
    }
    let mut files = Vec::with_capacity(manifest.keys.len());
    for key in &manifest.keys {
        let full = key_join(&root, key);
        let info = match s3.head(&bucket, &full).await? {
            Some(info) => info,
            None => match s3.head(&bucket, &key_join(dir, key_name(key))).await? {
                Some(info) => info,
                None => {
                    return Err(incomplete(
                        &bucket,
                        &full,
                        format!(
                            "listed in {} (version {}) but does not exist: the delivery is incomplete or \
                             still being written; retry later",
                            manifest.path.display(),
                            manifest.version_id
                        ),
                    ));
                }
            },
        };
        if info.modified > manifest_ref.version.time {
            return Err(incomplete(
                &bucket,
                &info.key,
                format!(
                    "modified at {} after its manifest {} ({}): a newer delivery is overwriting this one; \
                     retry later",
                    info.modified,
                    manifest.path.display(),
                    manifest_ref.version.time
                ),
            ));
        }
        let file = data_file(&bucket, &info)?;
        if files.iter().any(|f: &DataFile| f.path == file.path) {
            return Err(Error::BadManifest {
                path: manifest.path.clone(),
                reason: format!("key `{key}` names {}, already listed under another key", file.path.display()),
            });
        }
        files.push(file);
    }
    Ok(files)
}

fn data_file(bucket: &str, info: &ObjectInfo) -> Result<DataFile> {
    let path = Location::s3(bucket, &info.key).to_path_buf();
    let kind = file_kind(&path).ok_or_else(|| Error::Unsupported {
        path: path.clone(),
        reason: "not a .parquet, .csv, .csv.gz or .csv.zip file".into(),
    })?;
    Ok(DataFile { path, kind, size: info.size, modified: info.modified })
}

/// The complete delivery of one S3 manifest (GET + HEAD of every file).
pub async fn delivery_from_manifest(s3: &S3Access, bucket: &str, key: &str) -> Result<Delivery> {
    let found = read_manifest(s3, bucket, key).await?;
    found.resolve(Some(s3)).await
}

/// Picks the newest of several manifests read from one period folder.
fn newest(found: Vec<ManifestRef>) -> Option<ManifestRef> {
    found.into_iter().reduce(|kept, m| if m.version.supersedes(&kept.version) { m } else { kept })
}

/// The manifests of a listing with the latest `Last-Modified` of their period folder: the only
/// candidates for "current" (older ones in the folder are older deliveries).
fn latest_per_folder(objects: &[ObjectInfo]) -> BTreeMap<String, Vec<&ObjectInfo>> {
    let mut folders: BTreeMap<String, Vec<&ObjectInfo>> = BTreeMap::new();
    for o in objects.iter().filter(|o| is_manifest_name(key_name(&o.key))) {
        let list = folders.entry(period_folder(&o.key).to_string()).or_default();
        match list.first().map(|f| f.modified) {
            Some(t) if o.modified < t => {}
            Some(t) if o.modified == t => list.push(o),
            _ => *list = vec![o],
        }
    }
    folders
}

/// The current manifest of the billing period that `manifest_key` belongs to: the newest manifest
/// in its period folder (the event's own manifest if the folder lists none). Used by the Lambda
/// handler, so duplicate, late and out-of-order events all resolve to what S3 holds now.
pub async fn current_manifest(s3: &S3Access, bucket: &str, manifest_key: &str) -> Result<ManifestRef> {
    let folder = period_folder(manifest_key);
    let prefix = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    let listed = s3.list(bucket, &prefix).await?;
    let latest = latest_per_folder(&listed);
    let keys: Vec<String> = match latest.get(folder) {
        Some(objects) if !objects.is_empty() => objects.iter().map(|o| o.key.clone()).collect(),
        _ => vec![manifest_key.to_string()],
    };
    let mut found = Vec::new();
    for key in &keys {
        found.push(read_manifest(s3, bucket, key).await?);
    }
    let chosen = newest(found).ok_or_else(|| Error::Internal("no manifest left to choose from".into()))?;
    if chosen.manifest.path != Location::s3(bucket, manifest_key).to_path_buf() {
        tracing::info!(
            event_manifest = %Location::s3(bucket, manifest_key),
            current_manifest = %chosen.manifest.path.display(),
            version = %chosen.version.id,
            "using the current manifest of the billing period"
        );
    }
    Ok(chosen)
}

/// Every billing period under an S3 prefix with its newest manifest (files not yet checked), or
/// why its manifest could not be read. Errors of the listing itself fail the call.
pub async fn find_periods(s3: &S3Access, bucket: &str, prefix: &str) -> Result<Vec<PeriodCandidate>> {
    let listed = s3.list(bucket, prefix).await?;
    let mut best: BTreeMap<BillingPeriod, ManifestRef> = BTreeMap::new();
    let mut failed = Vec::new();
    for objects in latest_per_folder(&listed).into_values() {
        let mut found = Vec::new();
        for o in objects {
            match read_manifest(s3, bucket, &o.key).await {
                Ok(m) => found.push(m),
                Err(error) => failed.push(PeriodCandidate {
                    label: Location::s3(bucket, &o.key).to_string(),
                    period: period_from_key(&o.key),
                    manifest: Err(error),
                }),
            }
        }
        if let Some(m) = newest(found) {
            match best.get(&m.manifest.period) {
                Some(kept) if !m.version.supersedes(&kept.version) => {}
                _ => {
                    best.insert(m.manifest.period, m);
                }
            }
        }
    }
    let mut out: Vec<PeriodCandidate> = best
        .into_values()
        .map(|m| PeriodCandidate {
            label: m.manifest.path.display().to_string(),
            period: Some(m.manifest.period),
            manifest: Ok(m),
        })
        .collect();
    out.extend(failed);
    Ok(out)
}

/// Deliveries for S3 inputs of `curflow process`: manifests, prefixes and data files (data files
/// given together form one delivery, as locally).
pub async fn discover_s3(s3: &S3Access, locations: &[(String, String)]) -> Result<Vec<Delivery>> {
    let mut deliveries = Vec::new();
    let mut loose = Vec::new();
    for (bucket, key) in locations {
        let name = key_name(key);
        if !key.ends_with('/') && is_manifest_name(name) {
            deliveries.push(delivery_from_manifest(s3, bucket, key).await?);
        } else if !key.ends_with('/') && file_kind(std::path::Path::new(name)).is_some() {
            let info = s3.head(bucket, key).await?.ok_or_else(|| {
                Error::Aws(curflow_aws::AwsError::new(
                    "S3",
                    "HeadObject",
                    format!("s3://{bucket}/{key}"),
                    "the object does not exist",
                    curflow_aws::AwsErrorKind::Rejected,
                ))
            })?;
            loose.push(data_file(bucket, &info)?);
        } else {
            deliveries.extend(from_prefix(s3, bucket, key).await?);
        }
    }
    if !loose.is_empty() {
        deliveries.push(from_files(loose));
    }
    Ok(deliveries)
}

/// Like a local directory: per billing period the newest manifest; without manifests, one
/// delivery per folder of data files.
async fn from_prefix(s3: &S3Access, bucket: &str, key: &str) -> Result<Vec<Delivery>> {
    let prefix = if key.is_empty() || key.ends_with('/') { key.to_string() } else { format!("{key}/") };
    let candidates = find_periods(s3, bucket, &prefix).await?;
    if !candidates.is_empty() {
        let mut out = Vec::new();
        for c in candidates {
            out.push(c.manifest?.resolve(Some(s3)).await?);
        }
        return Ok(out);
    }
    let listed = s3.list(bucket, &prefix).await?;
    let mut folders: BTreeMap<&str, Vec<DataFile>> = BTreeMap::new();
    for o in &listed {
        let ignored = o.key.split('/').any(|part| part == "cost_and_usage_data_status" || part.starts_with('.'));
        if !ignored && file_kind(std::path::Path::new(key_name(&o.key))).is_some() {
            folders.entry(key_parent(&o.key)).or_default().push(data_file(bucket, o)?);
        }
    }
    if folders.is_empty() {
        return Err(Error::NothingFound { path: Location::s3(bucket, &prefix).to_path_buf() });
    }
    Ok(folders.into_values().map(from_files).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn period_folders_of_every_layout() {
        assert_eq!(period_folder("cur/R/20261001-20261101/R-Manifest.json"), "cur/R/20261001-20261101");
        assert_eq!(period_folder("cur/R/20261001-20261101/asm-1/R-Manifest.json"), "cur/R/20261001-20261101");
        assert_eq!(
            period_folder("R/metadata/BILLING_PERIOD=2026-10/R-Manifest.json"),
            "R/metadata/BILLING_PERIOD=2026-10"
        );
        assert_eq!(period_folder("R/R/year=2026/month=10/R-Manifest.json"), "R/R/year=2026/month=10");
        assert_eq!(period_folder("R-Manifest.json"), "");
    }

    #[test]
    fn periods_from_keys() {
        let p = |k: &str| period_from_key(k).map(|p| p.to_string());
        assert_eq!(p("R/metadata/BILLING_PERIOD=2026-10/R-Manifest.json").as_deref(), Some("2026-10"));
        assert_eq!(p("R/20261001-20261101/asm/R-Manifest.json").as_deref(), Some("2026-10"));
        assert_eq!(p("R/R/year=2026/month=7/R-Manifest.json").as_deref(), Some("2026-07"));
        assert_eq!(p("R/R-Manifest.json"), None);
    }

    #[test]
    fn newest_manifest_per_folder_from_a_listing() {
        let t = chrono::Utc::now();
        let o = |key: &str, secs: i64| ObjectInfo {
            key: key.into(),
            size: 1,
            modified: t + chrono::Duration::seconds(secs),
        };
        let listing = vec![
            o("R/20261001-20261101/a1/R-Manifest.json", 0),
            o("R/20261001-20261101/a2/R-Manifest.json", 5),
            o("R/20261001-20261101/R-Manifest.json", 5),
            o("R/20261001-20261101/a2/R-1.csv.gz", 9),
            o("R/20261101-20261201/R-Manifest.json", 1),
            o("R/20261101-20261201/R-RedshiftManifest.json", 7),
        ];
        let latest = latest_per_folder(&listing);
        let keys = |f: &str| latest[f].iter().map(|o| o.key.as_str()).collect::<Vec<_>>();
        assert_eq!(
            keys("R/20261001-20261101"),
            ["R/20261001-20261101/a2/R-Manifest.json", "R/20261001-20261101/R-Manifest.json"]
        );
        assert_eq!(keys("R/20261101-20261201"), ["R/20261101-20261201/R-Manifest.json"]);
    }
}
