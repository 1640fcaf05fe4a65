//! Zip-compressed CUR CSV (`*.csv.zip`: the legacy report's "ZIP" compression, one CSV per archive).
//!
//! DataFusion reads gzip but not zip, and a zip archive's index sits at its end, so the archive
//! cannot be decoded as a stream of rows. Its one CSV entry is extracted instead, streaming (memory
//! does not grow with the file), into a temporary directory beside the engine's spill files, and
//! scanned there as a plain CSV; an S3 object is first copied to that directory the same way. The
//! directory is removed when [`Extracted`] is dropped, after the scan. Disk use is the archive plus
//! its uncompressed CSV while the file is scanned.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::discover::{DataFile, FileKind};
use crate::error::{Error, Result};

/// The CSV of an archive, extracted; its directory is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Extracted {
    /// The extracted CSV as a local data file.
    pub file: DataFile,
    /// The entry's name inside the archive (for messages).
    pub entry: String,
    _dir: tempfile::TempDir,
}

/// Extracts the one CSV entry of `archive` (a local path, or an S3 object read through `s3`) into
/// a new temporary directory under `temp_root` (the OS temp dir when `None`).
pub(crate) async fn extract(
    archive: &Path,
    s3: Option<(Arc<dyn ObjectStore>, &str)>,
    temp_root: Option<&Path>,
) -> Result<Extracted> {
    let root = temp_root.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = tempfile::Builder::new().prefix("curflow-unzip-").tempdir_in(&root).map_err(|e| Error::io(&root, e))?;
    let local = match s3 {
        Some((store, key)) => {
            let copy = dir.path().join("archive.zip");
            download(archive, store.as_ref(), key, &copy).await?;
            copy
        }
        None => archive.to_path_buf(),
    };
    let (archive_name, out_dir) = (archive.to_path_buf(), dir.path().to_path_buf());
    let (out, entry) = tokio::task::spawn_blocking(move || extract_csv(&archive_name, &local, &out_dir))
        .await
        .map_err(|e| Error::Internal(format!("{}: the unzip task failed: {e}", archive.display())))??;
    Ok(Extracted { file: DataFile::local(&out, FileKind::Csv { gzip: false })?, entry, _dir: dir })
}

/// Copies S3 object `key` to `to`, chunk by chunk.
async fn download(name: &Path, store: &dyn ObjectStore, key: &str, to: &Path) -> Result<()> {
    let engine = |e: object_store::Error| Error::Engine { path: name.to_path_buf(), source: Box::new(e.into()) };
    let mut stream = store.get(&object_store::path::Path::from(key)).await.map_err(engine)?.into_stream();
    let mut out = tokio::fs::File::create(to).await.map_err(|e| Error::io(to, e))?;
    while let Some(chunk) = stream.next().await {
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk.map_err(engine)?).await.map_err(|e| Error::io(to, e))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(|e| Error::io(to, e))
}

/// Extracts the one `.csv` file entry of the zip archive at `local` (named `archive` in
/// messages) into `out_dir`; its path and entry name.
fn extract_csv(archive: &Path, local: &Path, out_dir: &Path) -> Result<(PathBuf, String)> {
    let bad = |reason: String| Error::BadZip { path: archive.to_path_buf(), reason };
    let file = File::open(local).map_err(|e| Error::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let entries: Vec<String> = names.into_iter().filter(|n| !n.ends_with('/')).collect();
    let csv: Vec<&String> = entries.iter().filter(|n| n.to_ascii_lowercase().ends_with(".csv")).collect();
    let [entry] = csv.as_slice() else {
        return Err(bad(format!("expected exactly one .csv entry, found {} among {entries:?}", csv.len())));
    };
    let entry = (*entry).clone();
    // Only the entry's file name: an archive's paths never choose where curflow writes.
    let base = Path::new(&entry).file_name().map_or_else(|| "report.csv".into(), |n| n.to_os_string());
    let out = out_dir.join(base);
    let mut reader = zip.by_name(&entry).map_err(|e| bad(format!("entry `{entry}`: {e}")))?;
    let mut writer = BufWriter::new(File::create(&out).map_err(|e| Error::io(&out, e))?);
    io::copy(&mut reader, &mut writer).map_err(|e| bad(format!("entry `{entry}` cannot be decompressed: {e}")))?;
    writer.flush().map_err(|e| Error::io(&out, e))?;
    Ok((out, entry))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn zip_with(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let path = dir.join("report-1.csv.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[tokio::test]
    async fn the_one_csv_entry_is_extracted_and_removed_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let archive = zip_with(dir.path(), &[("nested/report-1.csv", "a,b\n1,2\n")]);
        let extracted = extract(&archive, None, Some(dir.path())).await.unwrap();
        assert_eq!(extracted.entry, "nested/report-1.csv");
        assert_eq!(std::fs::read_to_string(&extracted.file.path).unwrap(), "a,b\n1,2\n");
        assert_eq!(extracted.file.kind, FileKind::Csv { gzip: false });
        let written = extracted.file.path.clone();
        drop(extracted);
        assert!(!written.exists(), "the temporary copy is removed with its Extracted");
    }

    #[tokio::test]
    async fn an_archive_without_exactly_one_csv_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let two = zip_with(dir.path(), &[("a.csv", "x\n"), ("b.csv", "y\n")]);
        let msg = extract(&two, None, Some(dir.path())).await.unwrap_err().to_string();
        assert!(msg.contains("report-1.csv.zip") && msg.contains("exactly one .csv entry, found 2"), "{msg}");
        let not_zip = dir.path().join("x.csv.zip");
        std::fs::write(&not_zip, "a,b\n").unwrap();
        let msg = extract(&not_zip, None, Some(dir.path())).await.unwrap_err().to_string();
        assert!(msg.contains("x.csv.zip") && msg.contains("not a zip archive"), "{msg}");
    }
}
