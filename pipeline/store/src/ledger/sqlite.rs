//! The usage ledger on SQLite (schema version 9, README "Store schema"): `usage_days` holds one row
//! per (source, day) with its version and provenance, `usage_quantities` its quantities, and
//! `usage_checkpoints` where each source's ingestion got to. A day is replaced in one `IMMEDIATE`
//! transaction, so a reader sees the old or the new day and two writers take turns: the second to
//! commit leaves its version.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};
use rust_decimal::Decimal;

use super::{DayOutcome, DayQuantities, IngestCheckpoint, UsageDay, UsageLedger};
use crate::error::Result;
use crate::sqlite::{SqliteStore, conn_mut, corrupt, store_error};

/// Schema version 9: the usage ledger.
pub(crate) const SCHEMA_V9: &str = "
CREATE TABLE usage_days (
    source       TEXT NOT NULL,                  -- the configured evidence source's name
    day          TEXT NOT NULL,                  -- YYYY-MM-DD, UTC
    version      TEXT NOT NULL,                  -- 16 hex digits of the content's SHA-256
    ingested_at  TEXT NOT NULL,                  -- RFC 3339
    row_count    INTEGER NOT NULL,
    provenance   TEXT NOT NULL,                  -- ledger::Provenance as JSON
    PRIMARY KEY (source, day)
) STRICT;
CREATE TABLE usage_quantities (
    source    TEXT NOT NULL,
    day       TEXT NOT NULL,
    driver    TEXT NOT NULL,                     -- lambda_gb_seconds, dynamo_read_units, ...
    tenant    TEXT NOT NULL,                     -- tenant id; UNATTRIBUTED for usage without one
    quantity  TEXT NOT NULL,                     -- exact decimal
    PRIMARY KEY (source, day, driver, tenant),
    FOREIGN KEY (source, day) REFERENCES usage_days(source, day) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE TABLE usage_checkpoints (
    source  TEXT PRIMARY KEY,
    record  TEXT NOT NULL                        -- ledger::IngestCheckpoint as JSON
) STRICT;
";

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// A `usage_days` row: source, day, version, ingested_at, row_count, provenance.
type DayRow = (String, String, String, String, i64, String);

const DAY_COLUMNS: &str = "source, day, version, ingested_at, row_count, provenance";

fn day_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DayRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

impl SqliteStore {
    fn decode_day(&self, (source, day, version, ingested_at, rows, provenance): DayRow) -> Result<UsageDay> {
        let bad = |what: String| corrupt(&self.path, what);
        Ok(UsageDay {
            day: NaiveDate::from_str(&day).map_err(|_| bad(format!("usage day {day:?} of {source}")))?,
            ingested_at: DateTime::parse_from_rfc3339(&ingested_at)
                .map_err(|_| bad(format!("ingested_at {ingested_at:?}")))?
                .with_timezone(&Utc),
            rows: u64::try_from(rows).map_err(|_| bad(format!("row_count {rows}")))?,
            provenance: serde_json::from_str(&provenance).map_err(|_| bad(format!("provenance {provenance:?}")))?,
            source,
            version,
        })
    }
}

#[async_trait::async_trait]
impl UsageLedger for SqliteStore {
    async fn replace_usage_day(&mut self, day: &UsageDay, quantities: &DayQuantities) -> Result<DayOutcome> {
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let provenance = serde_json::to_string(&day.provenance).map_err(|err| corrupt(&path, err.to_string()))?;
        let conn = conn_mut(&mut self.conn);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
        let date = day_text(day.day);
        let previous: Option<String> = tx
            .query_row(
                "SELECT version FROM usage_days WHERE source = ?1 AND day = ?2",
                params![day.source, date],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        if previous.as_deref() == Some(day.version.as_str()) {
            return Ok(DayOutcome::Unchanged);
        }
        // The cascade removes the day's quantities with its row.
        tx.execute("DELETE FROM usage_days WHERE source = ?1 AND day = ?2", params![day.source, date]).map_err(e)?;
        tx.execute(
            &format!("INSERT INTO usage_days ({DAY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![day.source, date, day.version, day.ingested_at.to_rfc3339(), quantities.len() as i64, provenance],
        )
        .map_err(e)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO usage_quantities (source, day, driver, tenant, quantity) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            for ((driver, tenant), q) in quantities {
                insert.execute(params![day.source, date, driver, tenant, q.normalize().to_string()]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(DayOutcome::Replaced { previous })
    }

    async fn usage_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<UsageDay>> {
        let rows: Vec<DayRow> = {
            let conn = self.conn();
            let e = |err| store_error(&self.path, err);
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {DAY_COLUMNS} FROM usage_days WHERE day BETWEEN ?1 AND ?2 ORDER BY source, day"
                ))
                .map_err(e)?;
            stmt.query_map(params![day_text(from), day_text(to)], day_row)
                .map_err(e)?
                .collect::<rusqlite::Result<_>>()
                .map_err(e)?
        };
        rows.into_iter().map(|r| self.decode_day(r)).collect()
    }

    async fn usage_day(&self, source: &str, day: NaiveDate) -> Result<Option<(UsageDay, DayQuantities)>> {
        let mut conn = self.conn();
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        // One read transaction: the day row and its quantities of the same version.
        let tx = conn.transaction().map_err(e)?;
        let date = day_text(day);
        let Some(row) = tx
            .query_row(
                &format!("SELECT {DAY_COLUMNS} FROM usage_days WHERE source = ?1 AND day = ?2"),
                params![source, date],
                day_row,
            )
            .optional()
            .map_err(e)?
        else {
            return Ok(None);
        };
        let mut quantities = DayQuantities::new();
        {
            let mut stmt = tx
                .prepare("SELECT driver, tenant, quantity FROM usage_quantities WHERE source = ?1 AND day = ?2")
                .map_err(e)?;
            let rows = stmt
                .query_map(params![source, date], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))
                .map_err(e)?;
            for row in rows {
                let (driver, tenant, q): (String, String, String) = row.map_err(e)?;
                let q = Decimal::from_str(&q).map_err(|_| corrupt(&path, format!("usage quantity {q:?}")))?;
                quantities.insert((driver, tenant), q);
            }
        }
        drop(tx);
        drop(conn);
        Ok(Some((self.decode_day(row)?, quantities)))
    }

    async fn usage_checkpoint(&self, source: &str) -> Result<Option<IngestCheckpoint>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let record: Option<String> = conn
            .query_row("SELECT record FROM usage_checkpoints WHERE source = ?1", params![source], |r| r.get(0))
            .optional()
            .map_err(e)?;
        record
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt(&self.path, format!("checkpoint {text:?}"))))
            .transpose()
    }

    async fn put_usage_checkpoint(&mut self, checkpoint: &IngestCheckpoint) -> Result<()> {
        let record = serde_json::to_string(checkpoint).map_err(|err| corrupt(&self.path, err.to_string()))?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO usage_checkpoints (source, record) VALUES (?1, ?2) \
             ON CONFLICT (source) DO UPDATE SET record = excluded.record",
            params![checkpoint.source, record],
        )
        .map_err(|err| store_error(&self.path, err))?;
        Ok(())
    }
}
