//! CUR manifests: legacy `<report>-Manifest.json` and CUR 2.0 (Data Exports) `Manifest.json`.
//!
//! A manifest names one delivery of one billing period: its version id (`assemblyId` /
//! `executionId`), the billing period, and the data files. Keys are resolved against the local
//! copy of the bucket (see [`resolve_keys`]) or, for a manifest read from S3, against the
//! manifest's bucket (see `discover::s3`).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::{Error, Result};
use curflow_model::period::BillingPeriod;

/// Which manifest shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Legacy,
    Cur2,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub kind: ManifestKind,
    /// `assemblyId` (legacy) or `executionId` (CUR 2.0): the delivery's version id.
    pub version_id: String,
    pub period: BillingPeriod,
    /// Object keys of the data files, relative to the bucket root.
    pub keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    assembly_id: Option<String>,
    execution_id: Option<String>,
    billing_period: Option<RawPeriod>,
    report_keys: Option<Vec<String>>,
    data_files: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawPeriod {
    start: String,
}

/// Parses the `billingPeriod.start` spellings: `20180501T000000.000Z` (legacy) or RFC 3339.
fn parse_period_start(text: &str) -> Option<BillingPeriod> {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let date = if digits.len() >= 8 {
        NaiveDate::parse_from_str(&digits[..8], "%Y%m%d").ok()
    } else {
        NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
    }?;
    BillingPeriod::starting_on(date)
}

/// The `BILLING_PERIOD=YYYY-MM` partition in a path, if any.
pub fn period_from_path(path: &Path) -> Option<BillingPeriod> {
    path.components().find_map(|c| c.as_os_str().to_str()?.strip_prefix("BILLING_PERIOD=")?.parse().ok())
}

/// `s3://bucket/a/b` → `a/b`; plain keys unchanged.
pub(crate) fn key_of(entry: &str) -> String {
    match entry.strip_prefix("s3://") {
        Some(rest) => rest.split_once('/').map(|(_, k)| k.to_string()).unwrap_or_default(),
        None => entry.to_string(),
    }
}

/// Why a data file key could lead outside the delivery, if it could: an absolute path, a `.` or
/// `..` segment, a backslash, a control character or another URL scheme, as written or after
/// percent-decoding (`%2e%2e%2f` is `../`). AWS writes none of these.
pub(crate) fn unsafe_key(key: &str) -> Option<&'static str> {
    let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
    [key, decoded.as_ref()].into_iter().find_map(|k| {
        if k.is_empty() {
            Some("is empty")
        } else if k.starts_with('/') || k.get(1..3) == Some(":/") || k.get(1..3) == Some(":\\") {
            Some("is an absolute path")
        } else if k.contains('\\') {
            Some("contains a backslash")
        } else if k.chars().any(char::is_control) {
            Some("contains a control character")
        } else if k.contains("://") {
            Some("is a URL other than s3://<bucket>/<key>")
        } else if k.split('/').any(|s| s == ".." || s == ".") {
            Some("contains a `.` or `..` path segment")
        } else {
            None
        }
    })
}

/// The manifest's keys, each checked by [`unsafe_key`]; a key listed twice (verbatim, or once as
/// `s3://bucket/key` and once as `key`) is kept once, with a warning: it names one file.
fn checked_keys(path: &Path, entries: &[String]) -> Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let key = key_of(entry);
        if let Some(reason) = unsafe_key(&key) {
            return Err(Error::BadManifestKey { manifest: path.to_path_buf(), key, reason: reason.into() });
        }
        if seen.insert(key.clone()) {
            keys.push(key);
        } else {
            tracing::warn!(manifest = %path.display(), key = %key, "the manifest lists this data file more than once; it is read once");
        }
    }
    Ok(keys)
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses manifest JSON read from `path` (a local path or an `s3://bucket/key` name).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadManifest { path: path.to_path_buf(), reason };
        let raw: RawManifest = serde_json::from_str(text).map_err(|e| bad(format!("not valid manifest JSON: {e}")))?;
        let (kind, version_id, keys) = match (raw.assembly_id, raw.execution_id) {
            (Some(id), _) => {
                let keys = raw.report_keys.ok_or_else(|| bad("legacy manifest without `reportKeys`".into()))?;
                (ManifestKind::Legacy, id, keys)
            }
            (None, Some(id)) => {
                let files = raw.data_files.ok_or_else(|| bad("CUR 2.0 manifest without `dataFiles`".into()))?;
                let keys = files
                    .iter()
                    .map(|f| match f {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        serde_json::Value::Object(o) => o
                            .get("key")
                            .or_else(|| o.get("s3Uri"))
                            .and_then(|v| v.as_str())
                            .map(str::to_string)
                            .ok_or_else(|| bad(format!("`dataFiles` entry without a key: {f}"))),
                        other => Err(bad(format!("`dataFiles` entry is not a key: {other}"))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                (ManifestKind::Cur2, id, keys)
            }
            (None, None) => {
                return Err(bad(
                    "neither `assemblyId` + `reportKeys` (legacy CUR) nor `executionId` + `dataFiles` (CUR 2.0)".into(),
                ));
            }
        };
        if version_id.trim().is_empty() {
            return Err(bad("the version id (`assemblyId`/`executionId`) is empty".into()));
        }
        let period = match raw.billing_period {
            Some(p) => parse_period_start(&p.start)
                .ok_or_else(|| bad(format!("`billingPeriod.start` {:?} is not the first day of a month", p.start)))?,
            // Real CUR 2.0 manifests may carry no `billingPeriod`; their data keys always hold
            // the export's `BILLING_PERIOD=` partition (all of them the same one).
            None => match period_from_path(path) {
                Some(period) => period,
                None => {
                    let periods: std::collections::BTreeSet<_> =
                        keys.iter().map(|k| period_from_path(Path::new(k))).collect();
                    match (periods.len(), periods.first()) {
                        (1, Some(Some(period))) => *period,
                        _ => {
                            return Err(bad("no `billingPeriod`, and neither the manifest's path nor all its data \
                                 keys name one BILLING_PERIOD="
                                .into()));
                        }
                    }
                }
            },
        };
        if keys.is_empty() {
            return Err(bad("the manifest lists no data files".into()));
        }
        Ok(Self { path: path.to_path_buf(), kind, version_id, period, keys: checked_keys(path, &keys)? })
    }
}

/// The folder a local manifest's data files must lie in: two levels above the manifest's folder.
/// That is the report folder of a legacy CUR (`<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]`)
/// and the export folder of a CUR 2.0 export (`<export>/metadata/BILLING_PERIOD=…/`), the
/// folders AWS writes a delivery's data under.
pub fn delivery_root(manifest: &Path) -> PathBuf {
    let dir = match manifest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors().nth(2).unwrap_or(&dir).to_path_buf()
}

/// Finds the local files for the manifest's keys.
///
/// Keys are relative to the bucket root; locally we try the manifest's folder and each of its
/// ancestors as that root and pick the one under which the most keys exist. If any key is still
/// missing, the delivery is incomplete (files still being written, or not copied): an error
/// naming the key, never a partial read. Only files inside [`delivery_root`] count: with the
/// checks of [`unsafe_key`], no manifest can make curflow read a file outside its delivery. Two
/// keys that resolve to the same file are refused (the file would be counted twice).
pub fn resolve_keys(manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let dir = manifest.path.parent().unwrap_or(Path::new("."));
    let inside = delivery_root(&manifest.path);
    let roots: Vec<&Path> = dir.ancestors().take(12).collect();
    let within = |p: &Path| {
        let absolute = std::path::absolute(if p.as_os_str().is_empty() { Path::new(".") } else { p });
        absolute.is_ok_and(|a| a.starts_with(&inside))
    };
    let file = |p: PathBuf| (p.is_file() && within(&p)).then_some(p);
    // A gzip key whose file was decompressed after download (`x.csv.gz` → `x.csv`, as the real
    // CUR 2.0 sample in the research data is) is read from the decompressed file: same rows.
    let at =
        |root: &Path, k: &str| file(root.join(k)).or_else(|| k.strip_suffix(".gz").and_then(|p| file(root.join(p))));
    let found = |root: &Path| manifest.keys.iter().filter(|k| at(root, k).is_some()).count();
    let best = roots.iter().copied().max_by_key(|r| found(r)).unwrap_or(dir);
    // Keys written next to the manifest (e.g. an assemblyId folder copied on its own).
    let beside = |k: &str| Path::new(k).file_name().and_then(|n| n.to_str()).and_then(|n| at(dir, n));
    let mut paths: Vec<PathBuf> = Vec::with_capacity(manifest.keys.len());
    for key in &manifest.keys {
        let path = at(best, key).or_else(|| beside(key)).ok_or_else(|| Error::MissingManifestFile {
            manifest: manifest.path.clone(),
            key: key.clone(),
            searched: vec![best.to_path_buf(), dir.to_path_buf()],
        })?;
        if !path.as_os_str().to_string_lossy().ends_with(".gz") && key.ends_with(".gz") {
            tracing::warn!(manifest = %manifest.path.display(), key = %key, file = %path.display(),
                "the manifest lists a gzip file; reading the decompressed copy found in its place");
        }
        if let Some(i) = paths.iter().position(|p| *p == path) {
            return Err(Error::BadManifest {
                path: manifest.path.clone(),
                reason: format!(
                    "keys `{}` and `{key}` are the same file {}; it would be counted twice",
                    manifest.keys[i],
                    path.display()
                ),
            });
        }
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn period_start_spellings() {
        assert_eq!(parse_period_start("20180501T000000.000Z").unwrap().to_string(), "2018-05");
        assert_eq!(parse_period_start("2026-10-01T00:00:00.000Z").unwrap().to_string(), "2026-10");
        assert!(parse_period_start("20180502T000000.000Z").is_none());
        assert_eq!(
            period_from_path(Path::new("x/metadata/BILLING_PERIOD=2023-11/m.json")).unwrap().to_string(),
            "2023-11"
        );
    }

    #[test]
    fn s3_uris_become_keys() {
        assert_eq!(key_of("s3://bucket/a/b.parquet"), "a/b.parquet");
        assert_eq!(key_of("a/b.parquet"), "a/b.parquet");
    }

    #[test]
    fn keys_that_could_leave_the_delivery_are_refused() {
        for key in [
            "../x.csv",
            "a/../../x.csv",
            "./a.csv",
            "/etc/passwd",
            "C:/x.csv",
            "C:\\x.csv",
            "a\\..\\x.csv",
            "%2e%2e/x.csv",
            "..%2fx.csv",
            "%2Fetc/passwd",
            "file:///etc/passwd",
            "a/\u{0}.csv",
            "",
        ] {
            assert!(unsafe_key(key).is_some(), "{key:?} must be refused");
        }
        for key in [
            "p/r/20180501-20180601/afe8/r-1.csv.gz",
            "e/data/BILLING_PERIOD=2026-10/e-00001.snappy.parquet",
            "cur//r/x.parquet",
            "a%20b/x..csv",
            "x/.hidden.csv",
        ] {
            assert_eq!(unsafe_key(key), None, "{key:?}");
        }
    }

    /// A gzip key whose file was decompressed after download is read from the decompressed file
    /// (beside the manifest or under the bucket layout); with neither, the error names the key.
    #[test]
    fn a_decompressed_copy_stands_in_for_its_gzip_key() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("e/metadata/BILLING_PERIOD=2026-04");
        std::fs::create_dir_all(&meta).unwrap();
        let manifest = meta.join("e-Manifest.json");
        let key = "e/data/BILLING_PERIOD=2026-04/e-00001.csv.gz";
        std::fs::write(&manifest, format!(r#"{{"executionId":"x","dataFiles":["s3://b/{key}"]}}"#)).unwrap();
        let m = Manifest::read(&manifest).unwrap();
        let err = resolve_keys(&m).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("does not exist"), "{err}");
        let data = dir.path().join("e/data/BILLING_PERIOD=2026-04");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("e-00001.csv"), "x").unwrap();
        assert_eq!(resolve_keys(&m).unwrap(), vec![dir.path().join("e/data/BILLING_PERIOD=2026-04/e-00001.csv")]);
        std::fs::write(data.join("e-00001.csv.gz"), "x").unwrap();
        assert_eq!(resolve_keys(&m).unwrap(), vec![dir.path().join(key)], "the gzip file itself wins");
        std::fs::remove_dir_all(&data).unwrap();
        std::fs::write(meta.join("e-00001.csv"), "x").unwrap();
        assert_eq!(resolve_keys(&m).unwrap(), vec![meta.join("e-00001.csv")], "beside the manifest");
    }

    #[test]
    fn legacy_and_cur2_manifests_parse() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("r-Manifest.json");
        std::fs::write(
            &legacy,
            r#"{"assemblyId":"afe8","billingPeriod":{"start":"20180501T000000.000Z","end":"20180601T000000.000Z"},
                "reportKeys":["p/r/20180501-20180601/afe8/r-1.csv.gz"],"additionalArtifactKeys":[{"artifactType":"x","name":"y"}]}"#,
        )
        .unwrap();
        let m = Manifest::read(&legacy).unwrap();
        assert_eq!(
            (m.kind, m.version_id.as_str(), m.period.to_string()),
            (ManifestKind::Legacy, "afe8", "2018-05".into())
        );
        let cur2 = dir.path().join("e-Manifest.json");
        std::fs::write(&cur2, r#"{"executionId":"x1","billingPeriod":{"start":"2026-10-01T00:00:00.000Z"},"dataFiles":["s3://b/e/data/BILLING_PERIOD=2026-10/e-00001.snappy.parquet"]}"#).unwrap();
        let m = Manifest::read(&cur2).unwrap();
        assert_eq!(m.keys, vec!["e/data/BILLING_PERIOD=2026-10/e-00001.snappy.parquet".to_string()]);
        // As the real export of ../shared/research/data writes it: no `billingPeriod`, the period
        // in the data keys' partition.
        std::fs::write(&cur2, r#"{"executionId":"x2","columns":[],"dataFiles":["s3://b/e/data/BILLING_PERIOD=2026-04/2026-04-16T15:24:15.653Z-x2/e-00001.csv.gz"]}"#).unwrap();
        assert_eq!(Manifest::read(&cur2).unwrap().period.to_string(), "2026-04");
        std::fs::write(&cur2, r#"{"executionId":"x3","dataFiles":["s3://b/e/data/BILLING_PERIOD=2026-04/a.csv.gz","s3://b/e/data/BILLING_PERIOD=2026-05/b.csv.gz"]}"#).unwrap();
        assert!(Manifest::read(&cur2).unwrap_err().to_string().contains("BILLING_PERIOD="));
        std::fs::write(&cur2, r#"{"reportName":"x"}"#).unwrap();
        assert!(Manifest::read(&cur2).unwrap_err().to_string().contains("assemblyId"));
    }
}
