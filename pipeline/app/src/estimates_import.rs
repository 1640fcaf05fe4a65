//! Reading the app's estimate records from a file (`curflow estimates import`): CSV with a header
//! row, or JSON Lines. All or nothing: one bad row rejects the file, and the error lists the bad
//! rows by line number (up to 20) with what was expected.

use std::io::BufRead;
use std::path::Path;

use curflow_reconcile::{Estimate, EstimateRules};

use crate::error::{Error, Result};

const MAX_REPORTED: usize = 20;

fn reject(path: &Path, bad: &[String], total_bad: usize) -> Error {
    let more = if total_bad > bad.len() { format!(" (and {} more)", total_bad - bad.len()) } else { String::new() };
    Error::BadCsv {
        path: path.to_path_buf(),
        reason: format!("{total_bad} bad record(s), nothing imported: {}{more}", bad.join("; ")),
    }
}

/// Only `source = estimate` records belong in an estimates import (the column is optional).
fn check_source(source: Option<&str>) -> std::result::Result<(), String> {
    match source {
        None | Some("") | Some("estimate") => Ok(()),
        Some(other) => Err(format!("source: expected \"estimate\", found {other:?}")),
    }
}

/// Parses every record of `path` (`.jsonl`/`.json`/`.ndjson` or content starting with `{` = JSON Lines;
/// otherwise CSV with a header).
pub fn read_estimates(path: &Path, rules: &EstimateRules) -> Result<Vec<Estimate>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let json = matches!(ext.as_str(), "jsonl" | "json" | "ndjson")
        || head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut total_bad = 0;
    let mut note = |line: u64, msg: String| {
        total_bad += 1;
        if bad.len() < MAX_REPORTED {
            bad.push(format!("line {line}: {msg}"));
        }
    };
    if json {
        for (i, line) in reader.lines().enumerate() {
            let n = i as u64 + 1;
            let line =
                line.map_err(|e| Error::BadCsv { path: path.to_path_buf(), reason: format!("line {n}: {e}") })?;
            if line.trim().is_empty() {
                continue;
            }
            let source = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("source").and_then(|s| s.as_str()).map(str::to_string));
            if let Err(m) = check_source(source.as_deref()) {
                note(n, m);
                continue;
            }
            match Estimate::from_json(&line, rules) {
                Ok(e) => out.push(e),
                Err(e) => note(n, e.to_string()),
            }
        }
    } else {
        let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
        let header: Vec<String> = csv
            .headers()
            .map_err(|e| Error::BadCsv { path: path.to_path_buf(), reason: format!("header: {e}") })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let source_col = header.iter().position(|h| h == "source");
        for record in csv.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    note(line, e.to_string());
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            if let Err(m) = check_source(source_col.and_then(|i| record.get(i))) {
                note(line, m);
                continue;
            }
            let fields = header.iter().map(String::as_str).zip(record.iter().map(str::trim));
            match Estimate::from_fields(fields, rules) {
                Ok(e) => out.push(e),
                Err(e) => note(line, e.to_string()),
            }
        }
    }
    if total_bad > 0 {
        return Err(reject(path, &bad, total_bad));
    }
    Ok(out)
}
