//! Where CUR inputs live: a local path or an S3 object / prefix.
//!
//! Every input a user can give as a local path can also be given as `s3://bucket/key` (a manifest,
//! a data file) or `s3://bucket/prefix/` (a delivery folder, a whole export). Inside the pipeline a
//! location travels as a [`PathBuf`] *name* (`DataFile::path`, `Manifest::path`, every error's
//! `path`): a local path as is, an S3 object as the text `s3://bucket/key`. That keeps one naming
//! scheme for messages and reports; [`Location::of`] turns such a name back into the typed form
//! whenever the code has to decide how to read it.
//!
//! Local files are read with `std::fs` and DataFusion's local object store, exactly as before S3
//! support existed. S3 objects are read through [`S3Access`]: the AWS SDK for listing, HEAD and the
//! small manifest GETs, and `object_store` (registered in the DataFusion session) for the data
//! files, so Parquet is read with range GETs (footer, then only the needed column chunks) and CSV
//! is streamed; nothing is downloaded to a temporary copy.

pub mod s3;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use s3::{ObjectInfo, S3Access};

/// A parsed input location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A file or directory on the local file system.
    Local(PathBuf),
    /// An S3 object (`key` names one object) or prefix (`key` empty or ending in `/`).
    S3 { bucket: String, key: String },
}

/// The `s3://` scheme prefix.
pub const S3_SCHEME: &str = "s3://";

impl Location {
    /// Parses `s3://bucket[/key]` as S3; anything else is a local path.
    pub fn parse(text: &str) -> Result<Self> {
        let Some(rest) = strip_scheme(text) else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(char::is_whitespace) {
            return Err(Error::Argument(format!(
                "{text}: not an S3 location; expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/"
            )));
        }
        Ok(Location::S3 { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// The location a pipeline name (a local path or the text `s3://bucket/key`) stands for.
    pub fn of(path: &Path) -> Result<Self> {
        match path.to_str() {
            Some(text) if strip_scheme(text).is_some() => Self::parse(text),
            _ => Ok(Location::Local(path.to_path_buf())),
        }
    }

    /// An S3 object.
    pub fn s3(bucket: &str, key: &str) -> Self {
        Location::S3 { bucket: bucket.to_string(), key: key.to_string() }
    }

    /// The name used for this location in deliveries, reports and errors.
    pub fn to_path_buf(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::S3 { .. } => PathBuf::from(self.to_string()),
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }
}

/// Whether a pipeline name is an S3 URL (`s3://...`).
pub fn is_s3_path(path: &Path) -> bool {
    path.to_str().is_some_and(|t| strip_scheme(t).is_some())
}

fn strip_scheme(text: &str) -> Option<&str> {
    let head = text.get(..S3_SCHEME.len())?;
    head.eq_ignore_ascii_case(S3_SCHEME).then(|| &text[S3_SCHEME.len()..])
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "{S3_SCHEME}{bucket}/{key}"),
        }
    }
}

/// The folder part of an S3 key (`a/b/c.json` → `a/b`; `c.json` → ``).
pub fn key_parent(key: &str) -> &str {
    key.trim_end_matches('/').rsplit_once('/').map(|(dir, _)| dir).unwrap_or("")
}

/// The last segment of an S3 key (`a/b/c.json` → `c.json`).
pub fn key_name(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}

/// `dir` + `/` + `name`, without a leading `/` when `dir` is the bucket root.
pub fn key_join(dir: &str, name: &str) -> String {
    let dir = dir.trim_end_matches('/');
    let name = name.trim_start_matches('/');
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// Decodes an object key as S3 event notifications carry it: URL-encoded with `+` for a space
/// (`my+report%2F2026.json` → `my report/2026.json`). Invalid escapes are kept literally; a result
/// that is not UTF-8 is an error. `+` becomes a space before `percent-encoding` decodes the escapes,
/// so an encoded plus (`%2B`) stays a plus.
pub fn decode_event_key(encoded: &str) -> Result<String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Error::Argument(format!("object key {encoded:?} does not decode to UTF-8 text")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_and_local_paths() {
        assert_eq!(Location::parse("s3://b/a/k.json").unwrap(), Location::s3("b", "a/k.json"));
        assert_eq!(Location::parse("S3://b").unwrap(), Location::s3("b", ""));
        assert_eq!(Location::parse("s3://b/p/").unwrap(), Location::s3("b", "p/"));
        assert_eq!(Location::parse("dir/x.csv").unwrap(), Location::Local("dir/x.csv".into()));
        assert!(Location::parse("s3:///k").is_err());
        let name = Location::s3("b", "p/BILLING_PERIOD=2026-10/m.json").to_path_buf();
        assert_eq!(name.display().to_string(), "s3://b/p/BILLING_PERIOD=2026-10/m.json");
        assert_eq!(Location::of(&name).unwrap(), Location::s3("b", "p/BILLING_PERIOD=2026-10/m.json"));
        assert!(is_s3_path(&name) && !is_s3_path(Path::new("/tmp/x")));
    }

    #[test]
    fn key_helpers() {
        assert_eq!(key_parent("a/b/c.json"), "a/b");
        assert_eq!(key_parent("c.json"), "");
        assert_eq!(key_name("a/b/c.json"), "c.json");
        assert_eq!(key_join("", "x"), "x");
        assert_eq!(key_join("a/", "x"), "a/x");
    }

    #[test]
    fn event_keys_are_url_decoded() {
        assert_eq!(decode_event_key("cur%2F2026-10%2Fx.parquet").unwrap(), "cur/2026-10/x.parquet");
        assert_eq!(decode_event_key("my+report/a%2Bb.json").unwrap(), "my report/a+b.json");
        assert_eq!(decode_event_key("BILLING_PERIOD%3D2026-10").unwrap(), "BILLING_PERIOD=2026-10");
        assert_eq!(decode_event_key("100%").unwrap(), "100%");
        assert!(decode_event_key("%FF").is_err());
    }
}
