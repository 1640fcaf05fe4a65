//! From the paths a user gives to deliveries: one billing period's files plus its version.
//!
//! Accepted paths (cur-domain.md §4): a `*Manifest.json` (legacy or CUR 2.0); a directory in any
//! AWS layout (every manifest under it; per billing period the newest one wins); or data files
//! given explicitly (`.parquet`, `.csv`, `.csv.gz`), which together form one delivery. A directory
//! without manifests yields one delivery per folder of data files (e.g. `month=10/`).
//!
//! Each of these may also be an S3 location (`s3://bucket/key`, `s3://bucket/prefix/`): see
//! [`discover_locations`] and [`s3`]. Backfill enumerates periods with [`find_periods`].

pub mod manifest;
pub mod s3;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::location::{Location, S3Access, is_s3_path};
pub use curflow_model::ReportVersion;
use curflow_model::period::BillingPeriod;
pub use manifest::{Manifest, ManifestKind};

/// How a data file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Parquet,
    Csv {
        gzip: bool,
    },
    /// A zip archive holding one CSV (the legacy report's ZIP compression): extracted to a
    /// temporary file and scanned as a plain CSV (see `unzip`).
    CsvZip,
}

/// One data file of a delivery.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// A local path, or the name `s3://bucket/key` of an S3 object (see [`Location::of`]).
    pub path: PathBuf,
    pub kind: FileKind,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// One billing period's files, as one unit of processing.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The manifest, when the delivery came with one.
    pub manifest: Option<Manifest>,
    pub files: Vec<DataFile>,
    pub version: ReportVersion,
}

impl Delivery {
    /// The billing period the manifest declares (data-only deliveries learn it from the data).
    pub fn declared_period(&self) -> Option<BillingPeriod> {
        self.manifest.as_ref().map(|m| m.period)
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match &self.manifest {
            Some(m) => m.path.display().to_string(),
            None if self.files.len() == 1 => self.files[0].path.display().to_string(),
            None => format!("{} data files", self.files.len()),
        }
    }
}

/// Classifies a data file by name; `None` for anything else.
pub fn file_kind(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".parquet") {
        Some(FileKind::Parquet)
    } else if name.ends_with(".csv.gz") {
        Some(FileKind::Csv { gzip: true })
    } else if name.ends_with(".csv") {
        Some(FileKind::Csv { gzip: false })
    } else if name.ends_with(".zip") {
        Some(FileKind::CsvZip)
    } else {
        None
    }
}

fn is_manifest(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(is_manifest_name)
}

/// Whether a file name is a CUR manifest (`*Manifest.json`, not the Redshift helper manifest).
pub fn is_manifest_name(name: &str) -> bool {
    name.ends_with("Manifest.json") && !name.ends_with("RedshiftManifest.json")
}

/// Folders AWS writes beside the data that hold no cost rows.
fn is_ignored_dir(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n == "cost_and_usage_data_status" || n.starts_with('.'))
}

fn modified(path: &Path, meta: &std::fs::Metadata) -> Result<DateTime<Utc>> {
    let t: SystemTime = meta.modified().map_err(|e| Error::io(path, e))?;
    Ok(DateTime::<Utc>::from(t))
}

impl DataFile {
    /// A local file of `kind`, with its size and modification time.
    pub fn local(path: &Path, kind: FileKind) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        Ok(Self { path: path.to_path_buf(), kind, size: meta.len(), modified: modified(path, &meta)? })
    }
}

/// A manifest that has been read but whose data files have not been checked yet (backfill reads
/// every period's manifest first and checks files only for periods it will process).
#[derive(Debug, Clone)]
pub struct ManifestRef {
    pub manifest: Manifest,
    pub version: ReportVersion,
}

impl ManifestRef {
    /// Reads a local manifest; the version time is the file's modification time.
    pub fn read_local(path: &Path) -> Result<Self> {
        let manifest = Manifest::read(path)?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let version = ReportVersion { id: manifest.version_id.clone(), time: modified(path, &meta)? };
        Ok(Self { manifest, version })
    }

    pub fn period(&self) -> BillingPeriod {
        self.manifest.period
    }

    /// Checks that every data file exists (local: `stat`; S3: HEAD, and none newer than the
    /// manifest) and returns the complete delivery.
    pub async fn resolve(self, s3: Option<&S3Access>) -> Result<Delivery> {
        let files = if is_s3_path(&self.manifest.path) {
            let s3 = s3.ok_or_else(|| no_s3_access(&self.manifest.path))?;
            s3::resolve_files(s3, &self).await?
        } else {
            local_files(&self.manifest)?
        };
        Ok(Delivery { manifest: Some(self.manifest), files, version: self.version })
    }
}

fn no_s3_access(path: &Path) -> Error {
    Error::Internal(format!("{}: an S3 location was given without S3 access configured", path.display()))
}

fn local_files(manifest: &Manifest) -> Result<Vec<DataFile>> {
    manifest::resolve_keys(manifest)?
        .iter()
        .map(|p| {
            let kind = file_kind(p).ok_or_else(|| Error::Unsupported {
                path: p.clone(),
                reason: "not a .parquet, .csv, .csv.gz or .csv.zip file".into(),
            })?;
            DataFile::local(p, kind)
        })
        .collect()
}

fn from_manifest(path: &Path) -> Result<Delivery> {
    let found = ManifestRef::read_local(path)?;
    let files = local_files(&found.manifest)?;
    Ok(Delivery { manifest: Some(found.manifest), files, version: found.version })
}

pub(crate) fn from_files(files: Vec<DataFile>) -> Delivery {
    let mut hasher = Sha256::new();
    let mut sorted: Vec<&DataFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &sorted {
        hasher.update(f.path.to_string_lossy().as_bytes());
        hasher.update(f.size.to_le_bytes());
        hasher.update(f.modified.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let time = files.iter().map(|f| f.modified).max().unwrap_or_default();
    Delivery { manifest: None, files, version: ReportVersion { id: format!("files-{hex}"), time } }
}

/// Everything a directory walk found: manifests, and data files per folder.
#[derive(Default)]
struct Found {
    manifests: Vec<PathBuf>,
    data: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// Canonical paths of the folders and files already taken: a symlink loop (`x -> .`) or a
    /// second link to a folder or file is skipped, so each file is read once.
    seen: HashSet<PathBuf>,
}

impl Found {
    /// Whether `path` leads somewhere not seen yet (a symlink to a seen place is logged and skipped).
    fn first_visit(&mut self, path: &Path) -> Result<bool> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        if self.seen.insert(canonical.clone()) {
            return Ok(true);
        }
        tracing::warn!(
            path = %path.display(),
            target = %canonical.display(),
            "a symlink leads to a folder or file already read (a loop or a second link); skipped"
        );
        Ok(false)
    }
}

fn walk(dir: &Path) -> Result<Found> {
    let mut found = Found::default();
    found.first_visit(dir)?;
    walk_into(dir, &mut found)?;
    Ok(found)
}

fn walk_into(dir: &Path, found: &mut Found) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if !is_ignored_dir(&path) && found.first_visit(&path)? {
                walk_into(&path, found)?;
            }
        } else if is_manifest(&path) {
            if found.first_visit(&path)? {
                found.manifests.push(path);
            }
        } else if file_kind(&path).is_some() && found.first_visit(&path)? {
            found.data.entry(dir.to_path_buf()).or_default().push(path);
        }
    }
    Ok(())
}

fn from_directory(dir: &Path) -> Result<Vec<Delivery>> {
    let Found { manifests, data, .. } = walk(dir)?;
    if !manifests.is_empty() {
        // Per billing period keep the newest manifest. Legacy CREATE_NEW layouts hold the same
        // manifest in the date-range folder and in the assemblyId folder: same version, one run.
        let mut newest: BTreeMap<BillingPeriod, Delivery> = BTreeMap::new();
        for path in manifests {
            let delivery = from_manifest(&path)?;
            let period = delivery.manifest.as_ref().map(|m| m.period);
            if let Some(period) = period {
                match newest.get(&period) {
                    Some(kept) if !delivery.version.supersedes(&kept.version) => {}
                    _ => {
                        newest.insert(period, delivery);
                    }
                }
            }
        }
        return Ok(newest.into_values().collect());
    }
    if data.is_empty() {
        return Err(Error::NothingFound { path: dir.to_path_buf() });
    }
    data.into_values()
        .map(|paths| {
            let files =
                paths.iter().filter_map(|p| file_kind(p).map(|k| DataFile::local(p, k))).collect::<Result<Vec<_>>>()?;
            Ok(from_files(files))
        })
        .collect()
}

/// One billing period found under a backfill root: its newest manifest, or why a manifest could
/// not be read (the backfill reports it as failed and goes on with the other periods).
#[derive(Debug)]
pub struct PeriodCandidate {
    /// The manifest (path or `s3://` URL) this candidate stands for.
    pub label: String,
    /// The billing period, when known (from the manifest, or from its path if it is unreadable).
    pub period: Option<BillingPeriod>,
    pub manifest: Result<ManifestRef>,
}

/// Every billing period under `root` (a local directory or an S3 prefix) with its newest manifest,
/// ordered by period; unreadable manifests come back as failed candidates. A root without any
/// manifest is an error (backfill works from manifests, as AWS delivers them).
pub async fn find_periods(root: &Location, s3: Option<&S3Access>) -> Result<Vec<PeriodCandidate>> {
    let mut found = match root {
        Location::S3 { bucket, key } => {
            let s3 = s3.ok_or_else(|| no_s3_access(&root.to_path_buf()))?;
            let prefix = if key.is_empty() || key.ends_with('/') { key.clone() } else { format!("{key}/") };
            s3::find_periods(s3, bucket, &prefix).await?
        }
        Location::Local(dir) => find_periods_local(dir)?,
    };
    if found.is_empty() {
        return Err(Error::NothingFound { path: root.to_path_buf() });
    }
    found.sort_by(|a, b| (a.period, &a.label).cmp(&(b.period, &b.label)));
    Ok(found)
}

fn find_periods_local(dir: &Path) -> Result<Vec<PeriodCandidate>> {
    let Found { manifests, .. } = walk(dir)?;
    let mut best: BTreeMap<BillingPeriod, ManifestRef> = BTreeMap::new();
    let mut out = Vec::new();
    for path in manifests {
        match ManifestRef::read_local(&path) {
            Ok(m) => match best.get(&m.period()) {
                Some(kept) if !m.version.supersedes(&kept.version) => {}
                _ => {
                    best.insert(m.period(), m);
                }
            },
            Err(error) => out.push(PeriodCandidate {
                label: path.display().to_string(),
                period: path.to_str().and_then(s3::period_from_key),
                manifest: Err(error),
            }),
        }
    }
    out.extend(best.into_values().map(|m| PeriodCandidate {
        label: m.manifest.path.display().to_string(),
        period: Some(m.period()),
        manifest: Ok(m),
    }));
    Ok(out)
}

/// [`discover`] for local paths and S3 locations (`s3://bucket/key`, `s3://bucket/prefix/`) alike.
/// `s3` is required only when an S3 location is given.
pub async fn discover_locations(paths: &[PathBuf], s3: Option<&S3Access>) -> Result<Vec<Delivery>> {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for path in paths {
        match Location::of(path)? {
            Location::Local(p) => local.push(p),
            Location::S3 { bucket, key } => remote.push((bucket, key)),
        }
    }
    let mut deliveries = if local.is_empty() { Vec::new() } else { discover(&local)? };
    if !remote.is_empty() {
        let s3 = s3.ok_or_else(|| no_s3_access(Path::new("s3://")))?;
        deliveries.extend(s3::discover_s3(s3, &remote).await?);
    }
    deliveries.sort_by_key(|d| (d.declared_period(), d.version.time));
    Ok(deliveries)
}

/// Turns user-supplied paths into deliveries, ordered by declared period and version time so
/// that, within one run, an older delivery of a month is applied before a newer one.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Delivery>> {
    let mut deliveries = Vec::new();
    let mut loose = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            deliveries.extend(from_directory(path)?);
        } else if is_manifest(path) {
            deliveries.push(from_manifest(path)?);
        } else if let Some(kind) = file_kind(path) {
            loose.push(DataFile::local(path, kind)?);
        } else {
            return Err(Error::Unsupported {
                path: path.clone(),
                reason: "expected a *Manifest.json, a directory, or a .parquet/.csv/.csv.gz data file".into(),
            });
        }
    }
    if !loose.is_empty() {
        deliveries.push(from_files(loose));
    }
    deliveries.sort_by_key(|d| (d.declared_period(), d.version.time));
    Ok(deliveries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn data_files_are_recognised_by_name() {
        assert_eq!(file_kind(Path::new("a/x-00001.snappy.parquet")), Some(FileKind::Parquet));
        assert_eq!(file_kind(Path::new("x-1.csv.gz")), Some(FileKind::Csv { gzip: true }));
        assert_eq!(file_kind(Path::new("X.CSV")), Some(FileKind::Csv { gzip: false }));
        assert_eq!(file_kind(Path::new("x-1.csv.zip")), Some(FileKind::CsvZip));
        assert!(is_manifest(Path::new("r-Manifest.json")));
        assert!(!is_manifest(Path::new("r-RedshiftManifest.json")));
    }

    #[test]
    fn later_versions_supersede_and_ties_break_by_id() {
        let t = Utc::now();
        let v = |id: &str, time| ReportVersion { id: id.into(), time };
        assert!(v("a", t + chrono::Duration::seconds(1)).supersedes(&v("b", t)));
        assert!(!v("a", t).supersedes(&v("b", t)));
        assert!(v("b", t).supersedes(&v("a", t)));
        assert!(!v("a", t).supersedes(&v("a", t)));
    }
}
