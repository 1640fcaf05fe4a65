//! Reading CUR deliveries in place on S3 (moto_server) through the library: manifests, prefixes
//! and data files as `s3://` locations give exactly what the same files give locally, and bad
//! input on S3 fails with the same precise errors (file, column, CSV line) as locally.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use curflow::discover::{Delivery, discover_locations};
use curflow::location::S3Access;
use curflow::process::Processor;
use curflow::store::{ReplaceOutcome, SqliteStore};
use curflow::{BillingPeriod, Error, ErrorClass};
use curflow_fixtures::Format;

struct Env {
    s3: common::TestS3,
    access: S3Access,
    bucket: String,
    dir: tempfile::TempDir,
}

fn env() -> Env {
    let s3 = common::TestS3::new();
    let access = s3.runtime.block_on(S3Access::new(&common::aws_settings())).unwrap();
    let bucket = s3.bucket("cf-s3read");
    Env { s3, access, bucket, dir: tempfile::tempdir().unwrap() }
}

impl Env {
    fn discover(&self, urls: &[String]) -> curflow::Result<Vec<Delivery>> {
        let paths: Vec<PathBuf> = urls.iter().map(PathBuf::from).collect();
        Ok(self.s3.runtime.block_on(discover_locations(&paths, Some(&self.access)))?)
    }

    /// Processes S3 locations into a SQLite store; returns the last outcome.
    fn process(&self, urls: &[String], store: &Path) -> curflow::Result<curflow::process::PeriodReport> {
        let deliveries = self.discover(urls)?;
        let mut store = SqliteStore::open(store)?;
        let processor = Processor::new(common::options())?.with_s3(self.access.clone());
        let mut last = None;
        for d in &deliveries {
            last = Some(self.s3.runtime.block_on(processor.process(&mut store, d, &|_| {}))?);
        }
        Ok(last.expect("no delivery"))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

fn period() -> BillingPeriod {
    BillingPeriod::new(2026, 10).unwrap()
}

#[test]
fn manifests_prefixes_and_data_files_on_s3_equal_the_local_result() {
    let e = env();
    let root = e.dir.path().join("bucket");
    let g = common::generate(&root, Format::LegacyParquet, 8_000, 5, |o| o.files = Some(4));
    e.s3.upload_delivery(&e.bucket, "", &root);
    let local = e.dir.path().join("local.sqlite");
    common::process(std::slice::from_ref(&g.manifest_path), &local).unwrap();
    let want = common::stored_by_tenant_service_day(&local, period());

    let manifest_key = g.manifest_path.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
    // The manifest: version = assemblyId, time = the object's Last-Modified.
    let deliveries = e.discover(&[e.url(&manifest_key)]).unwrap();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d.version.id, common::expected_json(&g)["version_id"].as_str().unwrap());
    assert_eq!(d.files.len(), 4);
    assert!(d.files.iter().all(|f| f.path.to_str().unwrap().starts_with(&format!("s3://{}/", e.bucket))));
    let by_manifest = e.dir.path().join("manifest.sqlite");
    let report = e.process(&[e.url(&manifest_key)], &by_manifest).unwrap();
    assert_eq!(report.rows_read, common::expected_json(&g)["rows"].as_u64().unwrap());
    assert_eq!(common::stored_by_tenant_service_day(&by_manifest, period()), want);

    // The bucket root as a prefix (with or without the trailing slash): the same delivery.
    for url in [format!("s3://{}", e.bucket), format!("s3://{}/", e.bucket)] {
        let store = e.dir.path().join(format!("prefix-{}.sqlite", url.len()));
        e.process(std::slice::from_ref(&url), &store).unwrap();
        assert_eq!(common::stored_by_tenant_service_day(&store, period()), want, "{url}");
    }

    // Data files given explicitly form one delivery (version = hash of the files), same sums.
    let files: Vec<String> =
        g.data_files.iter().map(|f| e.url(f.strip_prefix(&root).unwrap().to_str().unwrap())).collect();
    let by_files = e.dir.path().join("files.sqlite");
    let report = e.process(&files, &by_files).unwrap();
    assert!(report.version.id.starts_with("files-"), "{}", report.version.id);
    assert_eq!(common::stored_by_tenant_service_day(&by_files, period()), want);
    // ... and again: same version, unchanged.
    assert_eq!(e.process(&files, &by_files).unwrap().outcome, ReplaceOutcome::Unchanged);
}

/// Issue 14 point 1: a legacy CSV report with ZIP compression, read from S3 (the object is copied
/// to the spill directory and its one CSV extracted there), sums like the same CSV read locally.
#[test]
fn a_zipped_csv_object_equals_the_local_csv() {
    use std::io::Write;
    let e = env();
    let root = e.dir.path().join("csv");
    let g = common::generate(&root, Format::LegacyCsv, 3_000, 4, |o| o.files = Some(1));
    let csv = &g.data_files[0];
    let local = e.dir.path().join("local.sqlite");
    common::process(std::slice::from_ref(csv), &local).unwrap();
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut bytes);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("cur-00001.csv", options).unwrap();
    let text = std::fs::read(csv).unwrap();
    let text = if csv.extension().is_some_and(|x| x == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(text.as_slice()), &mut out).unwrap();
        out
    } else {
        text
    };
    zip.write_all(&text).unwrap();
    zip.finish().unwrap();
    e.s3.put_bytes(&e.bucket, "zipped/2026-10/cur-00001.csv.zip", bytes.into_inner());
    let store = e.dir.path().join("zip.sqlite");
    let report = e.process(&[e.url("zipped/2026-10/cur-00001.csv.zip")], &store).unwrap();
    assert_eq!(report.rows_read, common::expected_json(&g)["rows"].as_u64().unwrap());
    assert_eq!(
        common::stored_by_tenant_service_day(&store, period()),
        common::stored_by_tenant_service_day(&local, period())
    );
}

#[test]
fn a_prefix_without_manifests_is_read_per_folder_and_an_empty_one_is_an_error() {
    let e = env();
    let root = e.dir.path().join("bucket");
    let g = common::generate(&root, Format::Cur2Parquet, 3_000, 8, |_| {});
    for f in &g.data_files {
        e.s3.put_file(&e.bucket, &format!("copy/{}", f.file_name().unwrap().to_str().unwrap()), f);
    }
    let store = e.dir.path().join("s.sqlite");
    e.process(&[e.url("copy/")], &store).unwrap();
    let s = SqliteStore::open(&store).unwrap();
    assert_eq!(common::stored_by_tenant(&s, period()), common::expected_by_tenant(&g));

    let err = e.discover(&[e.url("nothing-here/")]).unwrap_err();
    assert!(matches!(err, Error::Scan(curflow::scan::Error::NothingFound { .. })), "{err}");
    assert_eq!(err.class(), ErrorClass::User);
}

/// Uploads `g` under `prefix` and processes its manifest from S3 into a store holding a good month;
/// expects a user error mentioning every fragment and an unchanged store.
fn assert_rejected_on_s3(e: &Env, root: &Path, g: &curflow_fixtures::Generated, prefix: &str, fragments: &[&str]) {
    let store = e.dir.path().join(format!("{prefix}.sqlite"));
    let good = common::generate(&e.dir.path().join(format!("good-{prefix}")), Format::LegacyParquet, 1_000, 1, |o| {
        o.month = 9;
    });
    common::process(std::slice::from_ref(&good.manifest_path), &store).unwrap();
    let before = common::dump(&store);
    e.s3.upload_delivery(&e.bucket, &format!("{prefix}/"), root);
    let key = format!("{prefix}/{}", g.manifest_path.strip_prefix(root).unwrap().to_str().unwrap());
    let err = e.process(&[e.url(&key)], &store).expect_err("bad input must fail");
    let msg = err.to_string();
    for frag in fragments {
        assert!(msg.contains(frag), "error {msg:?} should mention {frag:?}");
    }
    assert_eq!(err.class(), ErrorClass::User, "{msg}");
    assert_eq!(common::dump(&store), before);
}

#[test]
fn bad_csv_values_on_s3_name_the_object_column_and_line() {
    let e = env();
    for gzip in [false, true] {
        let root = e.dir.path().join(format!("csv-{gzip}"));
        let g = common::generate(&root, Format::LegacyCsv, 2_000, 3, |o| o.gzip_csv = false);
        let victim = g.data_files[1].clone();
        common::rewrite_csv(&victim, |i, header, fields| {
            if i == 5 {
                let col = header.iter().position(|h| h == "lineItem/UnblendedCost").unwrap();
                fields[col] = "12,5 USD".into();
            }
        });
        let mut g = g;
        if gzip {
            // Compress every file and point the manifest at the .csv.gz names.
            use std::io::Write;
            let mut keys = Vec::new();
            for f in &mut g.data_files {
                let gz = f.with_extension("csv.gz");
                let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
                enc.write_all(&std::fs::read(&*f).unwrap()).unwrap();
                enc.finish().unwrap();
                std::fs::remove_file(&*f).unwrap();
                *f = gz;
                keys.push(f.strip_prefix(&root).unwrap().to_str().unwrap().to_string());
            }
            let mut m: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&g.manifest_path).unwrap()).unwrap();
            m["reportKeys"] = serde_json::json!(keys);
            std::fs::write(&g.manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
        }
        let prefix = format!("badcsv{gzip}");
        let name = g.data_files[1].file_name().unwrap().to_str().unwrap().to_string();
        let s3_name = format!("s3://{}/{prefix}/", e.bucket);
        // Data row 5 (0-based) is on line 7: the header is line 1. The line is found by streaming the object.
        assert_rejected_on_s3(
            &e,
            &root,
            &g,
            &prefix,
            &[&s3_name, &name, "line 7", "lineItem/UnblendedCost", "12,5 USD", "decimal number"],
        );
    }
}

#[test]
fn a_truncated_parquet_object_and_a_missing_column_are_user_errors() {
    let e = env();
    let root = e.dir.path().join("trunc");
    let g = common::generate(&root, Format::Cur2Parquet, 2_000, 4, |_| {});
    let victim = g.data_files[1].clone();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::File::options().write(true).open(&victim).unwrap().set_len(len / 2).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap().to_string();
    assert_rejected_on_s3(&e, &root, &g, "trunc", &[&name, "Parquet"]);

    let root = e.dir.path().join("nocol");
    let g = common::generate(&root, Format::LegacyCsv, 2_000, 4, |o| o.gzip_csv = false);
    let victim = g.data_files[0].clone();
    let mut reader = csv::Reader::from_path(&victim).unwrap();
    let header = reader.headers().unwrap().clone();
    let drop = header.iter().position(|h| h == "lineItem/UnblendedCost").unwrap();
    let mut writer = csv::Writer::from_path(victim.with_extension("tmp")).unwrap();
    writer.write_record(header.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, h)| h)).unwrap();
    for r in reader.records() {
        let r = r.unwrap();
        writer.write_record(r.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, v)| v)).unwrap();
    }
    writer.flush().unwrap();
    std::fs::rename(victim.with_extension("tmp"), &victim).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap().to_string();
    assert_rejected_on_s3(&e, &root, &g, "nocol", &[&name, "missing required column `lineItem/UnblendedCost`"]);
}

#[test]
fn a_missing_object_or_one_newer_than_its_manifest_is_retryable() {
    let e = env();
    let root = e.dir.path().join("m");
    let g = common::generate(&root, Format::Cur2Parquet, 2_000, 6, |_| {});
    let manifests = e.s3.upload_delivery(&e.bucket, "x/", &root);
    let data_key = format!("x/{}", g.data_files[2].strip_prefix(&root).unwrap().to_str().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    e.s3.put_file(&e.bucket, &data_key, &g.data_files[2]);
    let err = e.discover(&[e.url(&manifests[0])]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::External, "{err}");
    assert!(err.to_string().contains("after its manifest"), "{err}");
    e.s3.delete(&e.bucket, &data_key);
    let err = e.discover(&[e.url(&manifests[0])]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::External, "{err}");
    assert!(err.to_string().contains(&data_key) && err.to_string().contains("does not exist"), "{err}");
    // A manifest that does not exist at all: not retryable.
    let err = e.discover(&[e.url("x/none/r-Manifest.json")]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::User, "{err}");
}
