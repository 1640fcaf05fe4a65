//! The embedded default store: one SQLite file.
//!
//! Money is stored as exact decimal TEXT (SQLite has no decimal type and REAL would round);
//! sums are done in Rust with `Decimal`. The schema is versioned with `PRAGMA user_version`
//! and documented in README ("Store schema").

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use rust_decimal::Decimal;

use super::{CostStore, Invoices, LineChunks, LineFilter, MadeFrom, PeriodRecord, ReplaceOutcome, SliceChunks, decide};
use crate::error::{Error, Result};
use curflow_model::aggregate::{Amounts, AmountsSum, Attribution, CostKey, CostLine};
use curflow_model::money::push_decimal_text;
use curflow_model::period::BillingPeriod;
use curflow_model::{Billing, BillingParts, Name, Names, ReportVersion};

/// Page size of a store this build creates (bytes).
pub const PAGE_SIZE: i64 = 16_384;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 15;

const SCHEMA_V1: &str = "
CREATE TABLE billing_periods (
    billing_period   TEXT PRIMARY KEY,      -- YYYY-MM
    version_id       TEXT NOT NULL,         -- assemblyId / executionId / files-<hash>
    version_time     TEXT NOT NULL,         -- RFC 3339 UTC; decides which delivery is newer
    format           TEXT NOT NULL,
    source           TEXT NOT NULL,         -- manifest or files read
    files            INTEGER NOT NULL,
    rows_read        INTEGER NOT NULL,
    split_child_rows INTEGER NOT NULL,
    tag_key          TEXT NOT NULL,
    processed_at     TEXT NOT NULL
) STRICT;
CREATE TABLE cost_lines (
    billing_period     TEXT NOT NULL REFERENCES billing_periods(billing_period),
    usage_date         TEXT NOT NULL,       -- YYYY-MM-DD, UTC
    tenant             TEXT,                -- NULL = shared pool (reported as UNATTRIBUTED)
    source             TEXT NOT NULL,       -- 'cur' (tagged) | 'shared' (untagged pool)
    service            TEXT NOT NULL,
    usage_type         TEXT NOT NULL,
    operation          TEXT NOT NULL,       -- '' for tagged lines
    resource_id        TEXT NOT NULL,       -- '' for tagged lines
    line_item_type     TEXT NOT NULL,
    currency           TEXT NOT NULL,
    unblended_cost     TEXT NOT NULL,       -- exact decimal text
    net_unblended_cost TEXT NOT NULL,
    amortized_cost     TEXT NOT NULL,
    ri_sp_trueup       TEXT NOT NULL,
    ri_sp_upfront_fees TEXT NOT NULL,
    usage_amount       TEXT NOT NULL,
    line_items         INTEGER NOT NULL
) STRICT;
CREATE INDEX cost_lines_by_period_tenant ON cost_lines (billing_period, tenant);
";

/// Version 2: attribution. `source` gains `attributed`; attributed rows say how they were split.
const SCHEMA_V2: &str = "
ALTER TABLE cost_lines ADD COLUMN rule TEXT;                  -- attributed: rule (or assignment:<pattern>)
ALTER TABLE cost_lines ADD COLUMN basis TEXT;                 -- attributed: assignment|usage_driver|direct_cost|even|fixed
ALTER TABLE cost_lines ADD COLUMN driver TEXT;                -- attributed by usage: lambda_gb_seconds, ...
ALTER TABLE cost_lines ADD COLUMN driver_quantity TEXT;       -- the tenant's weight (exact decimal)
ALTER TABLE cost_lines ADD COLUMN driver_quantity_total TEXT; -- the line's total weight
ALTER TABLE cost_lines ADD COLUMN share TEXT;                 -- driver_quantity / total, 12 places (display)
ALTER TABLE cost_lines ADD COLUMN unattributed_reason TEXT;   -- shared rows after attribution: why they stay
";

/// Version 3: the finance side: the app's estimates, budgets, alerts already sent, reconciliations.
const SCHEMA_V3: &str = "
CREATE TABLE estimates (
    accountant_id  TEXT NOT NULL,
    timestamp      TEXT NOT NULL,                 -- RFC 3339 as the app wrote it
    month          TEXT NOT NULL,                 -- YYYY-MM (UTC month of timestamp)
    operation      TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    quantity       TEXT NOT NULL,                 -- exact decimal text
    unit_cost      TEXT NOT NULL,
    estimated_cost TEXT NOT NULL,
    source         TEXT NOT NULL DEFAULT 'estimate',
    imported_from  TEXT NOT NULL,
    imported_at    TEXT NOT NULL,
    PRIMARY KEY (accountant_id, timestamp, operation, resource_type, quantity, unit_cost, estimated_cost)
) STRICT;
CREATE INDEX estimates_by_month ON estimates (month, accountant_id);
CREATE TABLE budgets (
    accountant_id   TEXT PRIMARY KEY,
    monthly_amount  TEXT NOT NULL,
    currency        TEXT NOT NULL,
    thresholds_pct  TEXT NOT NULL,                -- JSON array of exact decimals, e.g. [\"80\",\"100\"]
    forecast_alerts INTEGER NOT NULL,             -- 1: also alert when the month-end forecast crosses
    updated_at      TEXT NOT NULL
) STRICT;
CREATE TABLE alerts_sent (
    accountant_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    threshold_pct TEXT NOT NULL,
    kind          TEXT NOT NULL,                  -- actual | forecast
    sent_at       TEXT NOT NULL,
    channels      TEXT NOT NULL,
    alert         TEXT NOT NULL,                  -- the alert as JSON
    PRIMARY KEY (accountant_id, month, threshold_pct, kind)
) STRICT;
CREATE TABLE reconciliations (
    month         TEXT NOT NULL,
    level         TEXT NOT NULL,                  -- tenant | resource_type | suggestion
    accountant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,                  -- '' at tenant level
    record        TEXT NOT NULL,                  -- the record as JSON (exact decimals as strings)
    computed_at   TEXT NOT NULL,
    PRIMARY KEY (month, level, accountant_id, resource_type)
) STRICT;
";

/// Version 4: the unit of each line's usage quantity (volume vs rate variance needs it) and the
/// bill's invoice ids per period (a period whose every line has one is `final`).
const SCHEMA_V4: &str = "
ALTER TABLE cost_lines ADD COLUMN usage_unit TEXT NOT NULL DEFAULT '';       -- pricing/unit; '' = unknown
ALTER TABLE billing_periods ADD COLUMN invoice_ids TEXT NOT NULL DEFAULT '[]'; -- JSON array, distinct, sorted
ALTER TABLE billing_periods ADD COLUMN rows_without_invoice INTEGER;         -- NULL: stored before v4 (unknown)
";

/// Version 5: the fingerprint of the inputs besides the delivery (`PeriodRecord::inputs`).
const SCHEMA_V5: &str = "
ALTER TABLE billing_periods ADD COLUMN inputs TEXT;   -- SHA-256 hex of tag key, rules, assignments, evidence; NULL before v5
";

/// Version 6: alert delivery records per channel, claimed before delivering and marked sent after
/// (issue 12 point 8; see `finance::FinanceStore::claim_alert`). The primary key makes the claim a
/// conditional insert: of two concurrent runs exactly one inserts, and only it delivers. Every
/// `alerts_sent` row (recorded after delivery on all its channels) becomes one `sent` record per
/// channel it names, so what was sent before stays sent.
const SCHEMA_V6: &str = "
CREATE TABLE alert_deliveries (
    accountant_id TEXT NOT NULL,
    month         TEXT NOT NULL,                  -- YYYY-MM
    threshold_pct TEXT NOT NULL,                  -- normalized exact decimal
    kind          TEXT NOT NULL,                  -- actual | forecast
    channel       TEXT NOT NULL,                  -- webhook | sns | stdout (stdout: no other channel configured)
    state         TEXT NOT NULL CHECK (state IN ('claimed', 'sent')),
    run_id        TEXT NOT NULL,                  -- the nightly run that claimed it; 'before-v6' for migrated rows
    claimed_at    TEXT NOT NULL,                  -- RFC 3339
    sent_at       TEXT,                           -- RFC 3339; NULL while claimed
    alert         TEXT NOT NULL,                  -- the alert as JSON
    PRIMARY KEY (accountant_id, month, threshold_pct, kind, channel)
) STRICT;
INSERT INTO alert_deliveries
    (accountant_id, month, threshold_pct, kind, channel, state, run_id, claimed_at, sent_at, alert)
SELECT a.accountant_id, a.month, a.threshold_pct, a.kind, c.channel, 'sent', 'before-v6', a.sent_at, a.sent_at, a.alert
FROM alerts_sent a
JOIN (SELECT 'stdout' AS channel UNION ALL SELECT 'webhook' UNION ALL SELECT 'sns') c
  ON instr(',' || replace(a.channels, ' ', '') || ',', ',' || c.channel || ',') > 0;
DROP TABLE alerts_sent;
";

/// Version 7: the usage account and region of each line (costs per linked account and region).
/// Lines stored before read as '' (unknown) until their period is processed again.
const SCHEMA_V7: &str = "
ALTER TABLE cost_lines ADD COLUMN account_id TEXT NOT NULL DEFAULT '';  -- usage account id; '' = unknown
ALTER TABLE cost_lines ADD COLUMN region TEXT NOT NULL DEFAULT '';      -- region code; '' = global or unknown
ALTER TABLE cost_lines ADD COLUMN account_name TEXT NOT NULL DEFAULT ''; -- usage account name; '' = not in the report
";

/// Version 8: the Cost Explorer sync status of each connected account (`curflow accounts status`).
const SCHEMA_V8: &str = "
CREATE TABLE account_status (
    name   TEXT PRIMARY KEY,                     -- the account's configured name
    record TEXT NOT NULL                         -- finance::AccountStatus as JSON (no credential)
) STRICT;
";

/// Version 10: the shared pool of an attributed period, kept beside its lines. Attributed parts
/// are stored at the reader's grain (no operation or resource id: one row per tenant, day, service,
/// usage type, line-item type, rule, ...), so the per-resource pool lines they were split from are
/// kept here, once, for `curflow attribute` (split again) and `attribution explain` (per resource).
/// Same columns as `cost_lines` (the attribution ones stay NULL); readers of costs never read it.
const SCHEMA_V10: &str = "
CREATE TABLE pool_lines (
    billing_period     TEXT NOT NULL REFERENCES billing_periods(billing_period),
    usage_date         TEXT NOT NULL,
    tenant             TEXT,                -- always NULL
    source             TEXT NOT NULL,       -- 'shared'
    service            TEXT NOT NULL,
    usage_type         TEXT NOT NULL,
    operation          TEXT NOT NULL,
    resource_id        TEXT NOT NULL,
    line_item_type     TEXT NOT NULL,
    currency           TEXT NOT NULL,
    unblended_cost     TEXT NOT NULL,
    net_unblended_cost TEXT NOT NULL,
    amortized_cost     TEXT NOT NULL,
    ri_sp_trueup       TEXT NOT NULL,
    ri_sp_upfront_fees TEXT NOT NULL,
    usage_amount       TEXT NOT NULL,
    line_items         INTEGER NOT NULL,
    rule TEXT, basis TEXT, driver TEXT, driver_quantity TEXT, driver_quantity_total TEXT, share TEXT,
    unattributed_reason TEXT,
    usage_unit         TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    region             TEXT NOT NULL,
    account_name       TEXT NOT NULL
) STRICT;
CREATE INDEX pool_lines_by_period ON pool_lines (billing_period);
";

/// Version 11: the list cost (public on-demand cost, FOCUS `ListCost`) of every line. Lines
/// stored by an older curflow read 0 until their month is processed again.
const SCHEMA_V11: &str = "
ALTER TABLE cost_lines ADD COLUMN list_cost TEXT NOT NULL DEFAULT '0';
ALTER TABLE pool_lines ADD COLUMN list_cost TEXT NOT NULL DEFAULT '0';
";

/// Version 12: the contracted cost (FOCUS `ContractedCost`; derived for a CUR) of every line.
/// Lines stored by an older curflow read 0 until their month is processed again.
const SCHEMA_V12: &str = "
ALTER TABLE cost_lines ADD COLUMN contracted_cost TEXT NOT NULL DEFAULT '0';
ALTER TABLE pool_lines ADD COLUMN contracted_cost TEXT NOT NULL DEFAULT '0';
";

/// Version 13: who bills each line and on which invoice (`curflow_model::Billing`: FOCUS
/// `BillingAccountId`, `BillingAccountName`, `ProviderName`, `PublisherName`,
/// `InvoiceIssuerName`, `InvoiceId`). '' = not in the
/// report (a CUR has no provider column: AWS writes it of itself). Lines stored before read ''
/// until their month is processed again.
const SCHEMA_V13: &str = "
ALTER TABLE cost_lines ADD COLUMN billing_account_id TEXT NOT NULL DEFAULT '';   -- bill/PayerAccountId
ALTER TABLE cost_lines ADD COLUMN billing_account_name TEXT NOT NULL DEFAULT ''; -- bill_payer_account_name
ALTER TABLE cost_lines ADD COLUMN provider_name TEXT NOT NULL DEFAULT '';        -- FOCUS ProviderName
ALTER TABLE cost_lines ADD COLUMN publisher_name TEXT NOT NULL DEFAULT '';       -- lineItem/LegalEntity
ALTER TABLE cost_lines ADD COLUMN invoice_issuer_name TEXT NOT NULL DEFAULT '';  -- bill/InvoicingEntity
ALTER TABLE cost_lines ADD COLUMN invoice_id TEXT NOT NULL DEFAULT '';           -- bill/InvoiceId; '' until issued
ALTER TABLE pool_lines ADD COLUMN billing_account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE pool_lines ADD COLUMN billing_account_name TEXT NOT NULL DEFAULT '';
ALTER TABLE pool_lines ADD COLUMN provider_name TEXT NOT NULL DEFAULT '';
ALTER TABLE pool_lines ADD COLUMN publisher_name TEXT NOT NULL DEFAULT '';
ALTER TABLE pool_lines ADD COLUMN invoice_issuer_name TEXT NOT NULL DEFAULT '';
ALTER TABLE pool_lines ADD COLUMN invoice_id TEXT NOT NULL DEFAULT '';
";

/// Version 14: the pricing quantity (every row's usage amount, FOCUS `PricingQuantity`; see
/// `Amounts::pricing_quantity`). NULL = equal to `usage_amount`: what every consumption line
/// stores (so the column costs nothing there) and what lines stored before read.
const SCHEMA_V14: &str = "
ALTER TABLE cost_lines ADD COLUMN pricing_quantity TEXT; -- NULL = usage_amount
ALTER TABLE pool_lines ADD COLUMN pricing_quantity TEXT;
";

/// Version 15: who bills a line moves to a table of its own, `billing_parties`, the line keeping
/// its `billing_id` (NULL: the report named none of the six parts). The six texts are the same on
/// nearly every line of a month (one payer, a few sellers and invoicing entities), yet they were
/// ~70 of a line's ~310 stored bytes: a 519,495-line month of 2,000 tenants was a 160 MB store,
/// 125 MB without them, and SQLite's insert, checkpoint and read-back time follows the bytes
/// (README, *Changes*: the write's median 2.83 → 2.19 s). Existing lines keep their parties
/// (each distinct one becomes a row); a party no longer referenced after its period is replaced
/// stays (a few rows per store).
const SCHEMA_V15: &str = "
CREATE TABLE billing_parties (
    billing_id           INTEGER PRIMARY KEY,
    billing_account_id   TEXT NOT NULL,      -- bill/PayerAccountId (FOCUS BillingAccountId)
    billing_account_name TEXT NOT NULL,      -- bill_payer_account_name (FOCUS BillingAccountName)
    provider_name        TEXT NOT NULL,      -- FOCUS ProviderName ('' for a CUR: AWS)
    publisher_name       TEXT NOT NULL,      -- lineItem/LegalEntity (FOCUS PublisherName)
    invoice_issuer_name  TEXT NOT NULL,      -- bill/InvoicingEntity (FOCUS InvoiceIssuerName)
    invoice_id           TEXT NOT NULL,      -- bill/InvoiceId; '' until issued
    UNIQUE (billing_account_id, billing_account_name, provider_name, publisher_name, invoice_issuer_name, invoice_id)
) STRICT;
INSERT INTO billing_parties (billing_account_id, billing_account_name, provider_name, publisher_name,
        invoice_issuer_name, invoice_id)
    SELECT billing_account_id, billing_account_name, provider_name, publisher_name, invoice_issuer_name, invoice_id
    FROM cost_lines
    UNION
    SELECT billing_account_id, billing_account_name, provider_name, publisher_name, invoice_issuer_name, invoice_id
    FROM pool_lines;
DELETE FROM billing_parties WHERE billing_account_id = '' AND billing_account_name = '' AND provider_name = ''
    AND publisher_name = '' AND invoice_issuer_name = '' AND invoice_id = '';
ALTER TABLE cost_lines ADD COLUMN billing_id INTEGER REFERENCES billing_parties(billing_id);
ALTER TABLE pool_lines ADD COLUMN billing_id INTEGER REFERENCES billing_parties(billing_id);
UPDATE cost_lines SET billing_id = (SELECT b.billing_id FROM billing_parties b
    WHERE b.billing_account_id = cost_lines.billing_account_id AND b.billing_account_name = cost_lines.billing_account_name
      AND b.provider_name = cost_lines.provider_name AND b.publisher_name = cost_lines.publisher_name
      AND b.invoice_issuer_name = cost_lines.invoice_issuer_name AND b.invoice_id = cost_lines.invoice_id);
UPDATE pool_lines SET billing_id = (SELECT b.billing_id FROM billing_parties b
    WHERE b.billing_account_id = pool_lines.billing_account_id AND b.billing_account_name = pool_lines.billing_account_name
      AND b.provider_name = pool_lines.provider_name AND b.publisher_name = pool_lines.publisher_name
      AND b.invoice_issuer_name = pool_lines.invoice_issuer_name AND b.invoice_id = pool_lines.invoice_id);
ALTER TABLE cost_lines DROP COLUMN billing_account_id;
ALTER TABLE cost_lines DROP COLUMN billing_account_name;
ALTER TABLE cost_lines DROP COLUMN provider_name;
ALTER TABLE cost_lines DROP COLUMN publisher_name;
ALTER TABLE cost_lines DROP COLUMN invoice_issuer_name;
ALTER TABLE cost_lines DROP COLUMN invoice_id;
ALTER TABLE pool_lines DROP COLUMN billing_account_id;
ALTER TABLE pool_lines DROP COLUMN billing_account_name;
ALTER TABLE pool_lines DROP COLUMN provider_name;
ALTER TABLE pool_lines DROP COLUMN publisher_name;
ALTER TABLE pool_lines DROP COLUMN invoice_issuer_name;
ALTER TABLE pool_lines DROP COLUMN invoice_id;
";

/// Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 15] = [
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
    SCHEMA_V5,
    SCHEMA_V6,
    SCHEMA_V7,
    SCHEMA_V8,
    crate::ledger::sqlite::SCHEMA_V9,
    SCHEMA_V10,
    SCHEMA_V11,
    SCHEMA_V12,
    SCHEMA_V13,
    SCHEMA_V14,
    SCHEMA_V15,
];

/// A SQLite-backed [`CostStore`].
///
/// The connection sits behind a mutex only so the store is `Sync` (the async traits share it by
/// reference); one caller uses it at a time and no lock is ever held across an `.await`.
pub struct SqliteStore {
    pub(crate) path: PathBuf,
    pub(crate) conn: Mutex<Connection>,
}

/// The connection of a store borrowed mutably (no locking needed). A panic while it was locked
/// leaves no half transaction behind (an open transaction rolls back when dropped), so a poisoned
/// lock is still usable.
pub(crate) fn conn_mut(conn: &mut Mutex<Connection>) -> &mut Connection {
    conn.get_mut().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn store_error(path: &Path, e: rusqlite::Error) -> Error {
    let retryable =
        matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
    Error::Sqlite { path: path.to_path_buf(), source: e, retryable }
}

pub(crate) fn corrupt(path: &Path, what: String) -> Error {
    Error::Store { path: path.to_path_buf(), reason: format!("unreadable stored value: {what}"), retryable: false }
}

impl SqliteStore {
    /// The connection, for a read or a statement outside a transaction (see [`conn_mut`] on
    /// poisoning).
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (creating on first use) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let conn = Connection::open(path).map_err(|e| store_error(path, e))?;
        Self::ready(path, conn)
    }

    /// Opens a store file that must exist, creating nothing (neither the file nor its directory):
    /// [`Error::Missing`] otherwise. The read commands use this.
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Missing { path: path.to_path_buf() });
        }
        // Without SQLITE_OPEN_CREATE: a file removed since the check is not re-created.
        let flags = rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen) if !path.exists() => Error::Missing { path: path.to_path_buf() },
            _ => store_error(path, e),
        })?;
        Self::ready(path, conn)
    }

    /// Creates or checks the schema of a freshly opened connection.
    fn ready(path: &Path, conn: Connection) -> Result<Self> {
        let mut store = Self { path: path.to_path_buf(), conn: Mutex::new(conn) };
        store.init().map_err(|e| store_error(path, e))?;
        store.migrate()?;
        Ok(store)
    }

    fn init(&mut self) -> rusqlite::Result<()> {
        let conn = conn_mut(&mut self.conn);
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A new store gets 16 KiB pages (set before WAL mode writes the first page; an existing
        // store keeps its size): a month's replace writes ~240 bytes a line, and with SQLite's
        // 4 KiB default a 520,000-line month spent a third more time inserting and checkpointing
        // (README, Performance).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A month is ~10 MB of rows; with the default 2 MB page cache SQLite spills dirty pages to
        // the WAL in the middle of the replace transaction and reads them back.
        conn.pragma_update(None, "cache_size", -32_768)
    }

    fn migrate(&mut self) -> Result<()> {
        let conn = conn_mut(&mut self.conn);
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(e)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Store {
                path: self.path.clone(),
                reason: format!(
                    "schema version {version} is newer than this curflow supports ({SCHEMA_VERSION}); upgrade curflow"
                ),
                retryable: false,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(e)?;
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
            tx.execute_batch(sql).map_err(e)?;
            tx.pragma_update(None, "user_version", from as i64 + 1).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    fn read_record(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
        Ok(RawRecord {
            period: row.get(0)?,
            version_id: row.get(1)?,
            version_time: row.get(2)?,
            format: row.get(3)?,
            source: row.get(4)?,
            files: row.get(5)?,
            rows_read: row.get(6)?,
            split_child_rows: row.get(7)?,
            tag_key: row.get(8)?,
            processed_at: row.get(9)?,
            invoice_ids: row.get(10)?,
            rows_without_invoice: row.get(11)?,
            inputs: row.get(12)?,
        })
    }

    fn records(&self, filter: Option<BillingPeriod>) -> Result<Vec<PeriodRecord>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let sql = "SELECT billing_period, version_id, version_time, format, source, files, rows_read,
                          split_child_rows, tag_key, processed_at, invoice_ids, rows_without_invoice, inputs
                   FROM billing_periods WHERE ?1 IS NULL OR billing_period = ?1 ORDER BY billing_period";
        let mut stmt = conn.prepare_cached(sql).map_err(e)?;
        let raw = stmt
            .query_map(params![filter.map(|p| p.to_string())], |r| self.read_record(r))
            .map_err(e)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(e)?;
        raw.into_iter().map(|r| r.parse(&self.path)).collect()
    }
}

struct RawRecord {
    period: String,
    version_id: String,
    version_time: String,
    format: String,
    source: String,
    files: i64,
    rows_read: i64,
    split_child_rows: i64,
    tag_key: String,
    processed_at: String,
    invoice_ids: String,
    rows_without_invoice: Option<i64>,
    inputs: Option<String>,
}

fn parse_time(path: &Path, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt(path, format!("time {s:?}")))
}

impl RawRecord {
    fn parse(self, path: &Path) -> Result<PeriodRecord> {
        Ok(PeriodRecord {
            period: self.period.parse().map_err(|e: String| corrupt(path, e))?,
            version: ReportVersion { id: self.version_id, time: parse_time(path, &self.version_time)? },
            format: self.format,
            source: self.source,
            files: u64::try_from(self.files).unwrap_or(0),
            rows_read: u64::try_from(self.rows_read).unwrap_or(0),
            split_child_rows: u64::try_from(self.split_child_rows).unwrap_or(0),
            tag_key: self.tag_key,
            inputs: self.inputs,
            processed_at: parse_time(path, &self.processed_at)?,
            invoice: Invoices {
                ids: serde_json::from_str(&self.invoice_ids)
                    .map_err(|_| corrupt(path, format!("invoice ids {:?}", self.invoice_ids)))?,
                rows_without_id: self.rows_without_invoice.map(|n| u64::try_from(n).unwrap_or(0)),
            },
        })
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The columns [`read_lines`] reads, from `cost_lines` or `pool_lines` (same columns) joined to
/// `billing_parties` ([`lines_joined`]).
const SELECT_COLUMNS: &str = "SELECT billing_period, usage_date, tenant, service, usage_type, operation, resource_id,
        line_item_type, currency, unblended_cost, net_unblended_cost, amortized_cost, ri_sp_trueup,
        ri_sp_upfront_fees, usage_amount, line_items, rule, basis, driver, driver_quantity,
        driver_quantity_total, share, unattributed_reason, usage_unit, account_id, region,
        account_name, list_cost, contracted_cost, pricing_quantity, COALESCE(billing_account_id, ''),
        COALESCE(billing_account_name, ''), COALESCE(provider_name, ''), COALESCE(publisher_name, ''),
        COALESCE(invoice_issuer_name, ''), COALESCE(invoice_id, '')";

/// What [`SELECT_COLUMNS`] reads from: a table of lines and the billing party of each (schema v15;
/// a line of no party reads '' for each part).
fn lines_joined(table: Table) -> String {
    format!("{} LEFT JOIN billing_parties USING (billing_id)", table.name())
}

/// Position of `list_cost` in [`SELECT_COLUMNS`] (`contracted_cost` and `pricing_quantity` follow it).
const SELECT_LIST_COST: usize = 27;
/// Position of `billing_account_id` in [`SELECT_COLUMNS`] (the other billing parts follow it).
const SELECT_BILLING: usize = 30;

/// The number of stored lines of a period and the sum of their amounts, read back from the
/// stored text (the conservation check of [`CostStore::replace_period`]; reads only the amounts).
fn stored_totals(path: &Path, conn: &Connection, table: Table, period: &str) -> Result<(usize, Amounts)> {
    let e = |err| store_error(path, err);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT unblended_cost, net_unblended_cost, amortized_cost, ri_sp_trueup, ri_sp_upfront_fees,
                 usage_amount, line_items, list_cost, contracted_cost, pricing_quantity
             FROM {} WHERE billing_period = ?1",
            table.name()
        ))
        .map_err(e)?;
    let mut rows = stmt.query(params![period]).map_err(e)?;
    let (mut count, mut total) = (0usize, AmountsSum::default());
    while let Some(row) = rows.next().map_err(e)? {
        total.add(&amounts_at(path, row, 0, 7)?)?;
        count += 1;
    }
    Ok((count, total.total()?))
}

/// The amounts stored in columns `first..first + 7` of `row` (the five money measures, the usage
/// amount, the line count), in the order of the `cost_lines` columns, and the list and contracted
/// cost and the pricing quantity in columns `list_at`, `list_at + 1` and `list_at + 2` (added in
/// schema v11, v12 and v14, so after the others; a NULL pricing quantity is the usage amount).
fn amounts_at(path: &Path, row: &rusqlite::Row<'_>, first: usize, list_at: usize) -> Result<Amounts> {
    let e = |err| store_error(path, err);
    let at = |i: usize| -> Result<Decimal> {
        let text = row.get_ref(i).map_err(e)?.as_str().map_err(|err| e(err.into()))?;
        Decimal::from_str(text).map_err(|_| corrupt(path, format!("amount {text:?}")))
    };
    let dec = |i: usize| at(first + i);
    let usage_amount = dec(5)?;
    let pricing_quantity = match row.get_ref(list_at + 2).map_err(e)? {
        rusqlite::types::ValueRef::Null => usage_amount,
        _ => at(list_at + 2)?,
    };
    Ok(Amounts {
        unblended_cost: dec(0)?,
        net_unblended_cost: dec(1)?,
        amortized_cost: dec(2)?,
        ri_sp_trueup: dec(3)?,
        ri_sp_upfront_fees: dec(4)?,
        usage_amount,
        pricing_quantity,
        line_items: u64::try_from(row.get::<_, i64>(first + 6).map_err(e)?).unwrap_or(0),
        list_cost: at(list_at)?,
        contracted_cost: at(list_at + 1)?,
    })
}

/// The two tables of lines: what readers see, and the shared pool kept beside it (schema v10).
#[derive(Debug, Clone, Copy)]
enum Table {
    CostLines,
    PoolLines,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::CostLines => "cost_lines",
            Table::PoolLines => "pool_lines",
        }
    }
}

/// The query of [`read_lines`] and its parameters: the tenant, the days and the source go to
/// SQLite (the `(billing_period, tenant)` index; days are ISO text, so their order is the dates'
/// order).
fn select_lines(table: Table, period: BillingPeriod, filter: &LineFilter) -> (String, Vec<String>) {
    let mut sql = format!("{SELECT_COLUMNS} FROM {} WHERE billing_period = ?1", lines_joined(table));
    let mut values: Vec<String> = vec![period.to_string()];
    match &filter.tenant {
        None => {}
        Some(Some(t)) => {
            values.push(t.clone());
            sql = format!("{sql} AND tenant = ?{}", values.len());
        }
        Some(None) => sql.push_str(" AND (tenant IS NULL OR tenant = '')"),
    }
    if let Some((from, to)) = filter.days {
        values.push(from.to_string());
        values.push(to.to_string());
        sql = format!("{sql} AND usage_date BETWEEN ?{} AND ?{}", values.len() - 1, values.len());
    }
    if let Some(source) = filter.source {
        values.push(source.as_str().to_string());
        sql = format!("{sql} AND source = ?{}", values.len());
    }
    (sql, values)
}

/// Reads the lines of `table` that `filter` selects (see [`SELECT_COLUMNS`]).
fn read_lines(
    path: &Path,
    conn: &Connection,
    table: Table,
    period: BillingPeriod,
    filter: &LineFilter,
) -> Result<Vec<CostLine>> {
    let e = |err| store_error(path, err);
    let (sql, values) = select_lines(table, period, filter);
    let mut stmt = conn.prepare_cached(&sql).map_err(e)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(values.iter())).map_err(e)?;
    let mut lines = Vec::new();
    let mut names = Names::default();
    let mut billing_names = Names::default();
    while let Some(row) = rows.next().map_err(e)? {
        let billing = read_billing(path, row, &mut billing_names)?;
        let text = |i: usize| -> Result<String> { row.get::<_, String>(i).map_err(e) };
        let mut name = |i: usize| -> Result<Name> {
            let value = row.get_ref(i).map_err(e)?;
            let text = value
                .as_str()
                .map_err(|_| corrupt(path, format!("column {i} is {:?}, not text", value.data_type())))?;
            Ok(names.get(text))
        };
        let date = text(1)?;
        let opt = |i: usize| -> Result<Option<String>> { row.get::<_, Option<String>>(i).map_err(e) };
        let opt_dec = |i: usize| -> Result<Decimal> {
            match opt(i)? {
                Some(t) => Decimal::from_str(&t).map_err(|_| corrupt(path, format!("quantity {t:?}"))),
                None => Ok(Decimal::ZERO),
            }
        };
        let attribution = match opt(16)? {
            Some(_) => Some(Attribution {
                rule: name(16)?,
                basis: if opt(17)?.is_some() { name(17)? } else { Name::default() },
                driver: if opt(18)?.is_some() { Some(name(18)?) } else { None },
                quantity: opt_dec(19)?,
                quantity_total: opt_dec(20)?,
                share: opt_dec(21)?,
            }),
            None => None,
        };
        lines.push(CostLine {
            attribution: attribution.map(Box::new),
            unattributed_reason: opt(22)?,
            period: text(0)?.parse().map_err(|m: String| corrupt(path, m))?,
            key: CostKey {
                usage_date: NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|_| corrupt(path, format!("date {date:?}")))?,
                tenant: match row.get_ref(2).map_err(e)? {
                    rusqlite::types::ValueRef::Null => None,
                    _ => Some(name(2)?),
                },
                service: name(3)?,
                usage_type: name(4)?,
                usage_unit: name(23)?,
                operation: name(5)?,
                resource_id: name(6)?,
                line_item_type: name(7)?,
                currency: name(8)?,
                account_id: name(24)?,
                region: name(25)?,
                account_name: name(26)?,
                billing,
            },
            amounts: amounts_at(path, row, 9, SELECT_LIST_COST)?,
        });
    }
    lines.retain(|l| filter.matches(l));
    curflow_model::aggregate::sort_lines(&mut lines);
    Ok(lines)
}

/// Who bills the line of `row` (the columns from [`SELECT_BILLING`] on).
fn read_billing(path: &Path, row: &rusqlite::Row<'_>, names: &mut Names) -> Result<Billing> {
    let part = |i: usize| -> Result<&str> {
        let value = row.get_ref(SELECT_BILLING + i).map_err(|err| store_error(path, err))?;
        value.as_str().map_err(|_| corrupt(path, format!("billing column {i} is not text")))
    };
    let parts = BillingParts {
        account_id: part(0)?,
        account_name: part(1)?,
        provider: part(2)?,
        publisher: part(3)?,
        invoice_issuer: part(4)?,
        invoice_id: part(5)?,
    };
    Ok(Billing::intern(parts, names))
}

/// The version and inputs fingerprint stored for `period`, read inside the replacing transaction.
fn stored_made_from(path: &Path, tx: &Connection, period: &str) -> Result<Option<(ReportVersion, Option<String>)>> {
    let stored: Option<(String, String, Option<String>)> = tx
        .query_row(
            "SELECT version_id, version_time, inputs FROM billing_periods WHERE billing_period = ?1",
            params![period],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|err| store_error(path, err))?;
    match stored {
        Some((id, time, inputs)) => Ok(Some((ReportVersion { id, time: parse_time(path, &time)? }, inputs))),
        None => Ok(None),
    }
}

/// Counts as SQLite integers (saturating: a count past `i64::MAX` cannot occur in practice).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Inserts or updates the period's record.
fn upsert_record(path: &Path, tx: &Connection, period: &str, record: &PeriodRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO billing_periods (billing_period, version_id, version_time, format, source, files,
             rows_read, split_child_rows, tag_key, processed_at, invoice_ids, rows_without_invoice, inputs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (billing_period) DO UPDATE SET version_id = excluded.version_id,
             version_time = excluded.version_time, format = excluded.format, source = excluded.source,
             files = excluded.files, rows_read = excluded.rows_read,
             split_child_rows = excluded.split_child_rows, tag_key = excluded.tag_key,
             processed_at = excluded.processed_at, invoice_ids = excluded.invoice_ids,
             rows_without_invoice = excluded.rows_without_invoice, inputs = excluded.inputs",
        params![
            period,
            record.version.id,
            rfc3339(&record.version.time),
            record.format,
            record.source,
            count(record.files),
            count(record.rows_read),
            count(record.split_child_rows),
            record.tag_key,
            rfc3339(&record.processed_at),
            serde_json::to_string(&record.invoice.ids).map_err(|e| Error::Internal(e.to_string()))?,
            record.invoice.rows_without_id.map(count),
            record.inputs,
        ],
    )
    .map_err(|err| store_error(path, err))?;
    Ok(())
}

/// What one replace inserted into a table, chunk by chunk: the lines and what they sum to, checked
/// against what the transaction holds before it commits.
struct Written {
    table: Table,
    lines: usize,
    sum: AmountsSum,
    insert: std::time::Duration,
}

impl Written {
    fn new(table: Table) -> Self {
        Self { table, lines: 0, sum: AmountsSum::default(), insert: std::time::Duration::ZERO }
    }

    /// Inserts `rows` (lines of `period`) and adds them to what was written.
    fn insert(
        &mut self,
        path: &Path,
        tx: &Connection,
        period: BillingPeriod,
        period_text: &str,
        rows: &[CostLine],
    ) -> Result<()> {
        if let Some(line) = rows.iter().find(|l| l.period != period) {
            return Err(Error::Internal(format!("line of {} written into period {period}", line.period)));
        }
        let started = std::time::Instant::now();
        // What the lines sum to is added up on another core while SQLite inserts them.
        let expected = std::thread::scope(|scope| {
            let expected = scope.spawn(|| Amounts::sum(rows.iter().map(|l| &l.amounts)));
            let inserted = insert_lines(path, tx, self.table, period_text, rows);
            let expected = expected.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            inserted.map(|()| expected)
        })??;
        self.sum.add(&expected)?;
        self.lines += rows.len();
        self.insert += started.elapsed();
        Ok(())
    }

    /// Conservation: what the transaction now holds must sum to what was meant to be written.
    fn check(self, path: &Path, tx: &Connection, period: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let expected = self.sum.total()?;
        let (written, written_total) = stored_totals(path, tx, self.table, period)?;
        tracing::debug!(
            table = self.table.name(),
            lines = self.lines,
            insert_ms = self.insert.as_millis() as u64,
            check_ms = started.elapsed().as_millis() as u64,
            "lines inserted"
        );
        if written != self.lines || written_total != expected {
            return Err(Error::Internal(format!(
                "period {period}: stored {} do not sum to the input ({written} lines, {written_total:?} vs {} \
                 lines, {expected:?}); rolled back",
                self.table.name(),
                self.lines,
            )));
        }
        Ok(())
    }
}

/// The `billing_parties` row of each billing party a replace writes (schema v15), found or
/// inserted once per distinct party: a month has a handful (one payer, a few sellers and
/// invoicing entities), and consecutive lines nearly always share the last one.
#[derive(Default)]
struct BillingParties<'a> {
    /// Each party's text ([`Billing::text`]) and its id; the last one used first.
    known: Vec<(&'a str, i64)>,
}

impl<'a> BillingParties<'a> {
    /// The id of `billing`'s row, inserted when the store has none; `None` for no party at all.
    fn id(&mut self, tx: &Connection, billing: &'a Billing) -> rusqlite::Result<Option<i64>> {
        if billing.is_empty() {
            return Ok(None);
        }
        let text = billing.text().as_str();
        if let Some(i) = self.known.iter().position(|(t, _)| *t == text) {
            self.known.swap(0, i);
            return Ok(Some(self.known[0].1));
        }
        let p = billing.parts();
        let parts = params![p.account_id, p.account_name, p.provider, p.publisher, p.invoice_issuer, p.invoice_id];
        let found: Option<i64> = tx
            .prepare_cached(
                "SELECT billing_id FROM billing_parties WHERE billing_account_id = ?1 AND billing_account_name = ?2
                     AND provider_name = ?3 AND publisher_name = ?4 AND invoice_issuer_name = ?5 AND invoice_id = ?6",
            )?
            .query_row(parts, |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO billing_parties (billing_account_id, billing_account_name, provider_name,
                         publisher_name, invoice_issuer_name, invoice_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(parts)?;
                tx.last_insert_rowid()
            }
        };
        self.known.insert(0, (text, id));
        Ok(Some(id))
    }
}

/// The statement [`insert_lines`] binds (parameter `i` is the `i`-th column named).
fn insert_sql(table: Table) -> String {
    format!(
        "INSERT INTO {} (billing_period, usage_date, tenant, source, service, usage_type,
             operation, resource_id, line_item_type, currency, unblended_cost, net_unblended_cost,
             amortized_cost, ri_sp_trueup, ri_sp_upfront_fees, usage_amount, line_items, rule, basis,
             driver, driver_quantity, driver_quantity_total, share, unattributed_reason, usage_unit,
             account_id, region, account_name, list_cost, contracted_cost, billing_id, pricing_quantity)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
             ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
        table.name()
    )
}

/// Inserts the period's lines into `table` with one prepared statement.
fn insert_lines(path: &Path, tx: &Connection, table: Table, period: &str, lines: &[CostLine]) -> Result<()> {
    let e = |err| store_error(path, err);
    let mut insert = tx.prepare_cached(&insert_sql(table)).map_err(e)?;
    let mut bound = Bound::new(&mut insert);
    bound.text(1, Some(period)).map_err(e)?;
    let mut amount = String::with_capacity(40);
    let mut decimal = |bound: &mut Bound<'_, '_, '_>, i: usize, d: Option<Decimal>| -> rusqlite::Result<()> {
        match d {
            Some(d) => {
                amount.clear();
                push_decimal_text(&mut amount, d);
                bound.owned(i, &amount)
            }
            None => bound.text(i, None),
        }
    };
    let mut parties = BillingParties::default();
    // A month has about 31 distinct days: format each once, not once per line.
    let mut days: Vec<(NaiveDate, String)> = Vec::new();
    let mut last_day = None;
    for line in tenant_major(lines) {
        let k = &line.key;
        let a = &line.amounts;
        let at = line.attribution.as_ref();
        if last_day != Some(k.usage_date) {
            let day = match days.iter().position(|(d, _)| *d == k.usage_date) {
                Some(i) => i,
                None => {
                    days.push((k.usage_date, k.usage_date.to_string())); // ISO 8601, as `%Y-%m-%d`
                    days.len() - 1
                }
            };
            bound.owned(2, &days[day].1).map_err(e)?;
            last_day = Some(k.usage_date);
        }
        let b = &mut bound;
        let all: rusqlite::Result<()> = (|| {
            b.text(3, k.tenant.as_deref())?;
            b.text(4, Some(line.source().as_str()))?;
            b.text(5, Some(k.service.as_str()))?;
            b.text(6, Some(k.usage_type.as_str()))?;
            b.text(7, Some(k.operation.as_str()))?;
            b.text(8, Some(k.resource_id.as_str()))?;
            b.text(9, Some(k.line_item_type.as_str()))?;
            b.text(10, Some(k.currency.as_str()))?;
            decimal(b, 11, Some(a.unblended_cost))?;
            decimal(b, 12, Some(a.net_unblended_cost))?;
            decimal(b, 13, Some(a.amortized_cost))?;
            decimal(b, 14, Some(a.ri_sp_trueup))?;
            decimal(b, 15, Some(a.ri_sp_upfront_fees))?;
            decimal(b, 16, Some(a.usage_amount))?;
            b.integer(17, count(a.line_items))?;
            b.text(18, at.map(|x| x.rule.as_str()))?;
            b.text(19, at.map(|x| x.basis.as_str()))?;
            b.text(20, at.and_then(|x| x.driver.as_deref()))?;
            decimal(b, 21, at.map(|x| x.quantity))?;
            decimal(b, 22, at.map(|x| x.quantity_total))?;
            decimal(b, 23, at.map(|x| x.share))?;
            b.text(24, line.unattributed_reason.as_deref())?;
            b.text(25, Some(k.usage_unit.as_str()))?;
            b.text(26, Some(k.account_id.as_str()))?;
            b.text(27, Some(k.region.as_str()))?;
            b.text(28, Some(k.account_name.as_str()))?;
            decimal(b, 29, Some(a.list_cost))?;
            decimal(b, 30, Some(a.contracted_cost))?;
            match parties.id(tx, &k.billing)? {
                Some(id) => b.integer(31, id)?,
                None => b.text(31, None)?,
            }
            // NULL where it is the usage amount (every consumption line): nothing to format.
            match a.pricing_quantity {
                q if q == a.usage_amount => b.text(32, None)?,
                q => decimal(b, 32, Some(q))?,
            }
            b.statement.raw_execute().map(drop)
        })();
        all.map_err(e)?;
    }
    Ok(())
}

/// `lines` (sorted by key: day, then tenant, ...) in the order the `(billing_period, tenant)`
/// index keeps them: by tenant (the pool's `NULL` first), each tenant's days in order, and within
/// a (day, tenant) as given.
///
/// Inserted day by day, each day's lines hop across every tenant's place in the index: with
/// thousands of tenants that is a B-tree insert into the middle of the index per line. In this
/// order each insert lands next to the previous one, and the rows (appended in rowid order) lie
/// in index order, so reading a period back through the index (the conservation check, `costs`)
/// reads the table sequentially. Measured on a 519,495-line month of 2,000 tenants, SQLite alone
/// (`INSERT … SELECT` of the stored rows into a fresh store): 0.64–0.75 s in this order against
/// 0.94–1.29 s in day order (no index at all: 0.52–0.57 s). End to end the whole write moved less
/// than the run-to-run noise (medians 2.00 s against 2.05 s over five alternating runs): binding
/// and the checkpoint after the commit weigh as much.
fn tenant_major(lines: &[CostLine]) -> impl Iterator<Item = &CostLine> {
    // Runs of consecutive lines of one (day, tenant): ~31 × the tenants, far fewer than lines.
    let mut runs: Vec<(Option<&str>, usize, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let tenant = line.key.tenant.as_deref();
        match runs.last_mut() {
            Some((t, _, end)) if *t == tenant && *end == i => *end = i + 1,
            _ => runs.push((tenant, i, i + 1)),
        }
    }
    // Stable: each tenant's runs keep their (day) order.
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs.into_iter().flat_map(move |(_, start, end)| &lines[start..end])
}

/// The parameters of a prepared statement executed once per line, bound only when they change.
///
/// SQLite keeps a statement's bindings across executions, and rusqlite copies every bound text:
/// consecutive lines of a month share most of their text keys (lines come sorted by key), so
/// binding each parameter only when its value differs from the one the statement holds saves most
/// of the ~30 copies a line (a third of the insert time of a 520,000-line month, with the
/// `rusqlite::params!` call per line this replaced).
struct Bound<'s, 'c, 'a> {
    statement: &'s mut rusqlite::CachedStatement<'c>,
    /// Per parameter (1-based): what it holds. `None` = unknown or a value not kept (an amount
    /// formatted into a reused buffer: always bound again).
    held: [Option<Held<'a>>; 33],
}

/// A parameter's held value, by reference into the lines being written.
#[derive(Clone, Copy, PartialEq)]
enum Held<'a> {
    Null,
    Text(&'a str),
    Integer(i64),
}

impl<'s, 'c, 'a> Bound<'s, 'c, 'a> {
    fn new(statement: &'s mut rusqlite::CachedStatement<'c>) -> Self {
        Self { statement, held: [None; 33] }
    }

    /// Binds `value` (NULL for `None`) unless parameter `i` holds it already.
    fn text(&mut self, i: usize, value: Option<&'a str>) -> rusqlite::Result<()> {
        let held = value.map_or(Held::Null, Held::Text);
        if self.held[i] != Some(held) {
            self.statement.raw_bind_parameter(i, value)?;
            self.held[i] = Some(held);
        }
        Ok(())
    }

    /// Binds text that does not outlive the call (always bound; the parameter then holds
    /// something not kept).
    fn owned(&mut self, i: usize, value: &str) -> rusqlite::Result<()> {
        self.statement.raw_bind_parameter(i, value)?;
        self.held[i] = None;
        Ok(())
    }

    fn integer(&mut self, i: usize, value: i64) -> rusqlite::Result<()> {
        if self.held[i] != Some(Held::Integer(value)) {
            self.statement.raw_bind_parameter(i, value)?;
            self.held[i] = Some(Held::Integer(value));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CostStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn period(&self, period: BillingPeriod) -> Result<Option<PeriodRecord>> {
        Ok(self.records(Some(period))?.into_iter().next())
    }

    async fn periods(&self) -> Result<Vec<PeriodRecord>> {
        self.records(None)
    }

    async fn replace_split_period(
        &mut self,
        record: &PeriodRecord,
        lines: &[CostLine],
        pool: &[CostLine],
        force: bool,
    ) -> Result<ReplaceOutcome> {
        self.replace_split_period_chunks(record, &mut SliceChunks::new(lines, pool), force).await
    }

    /// Inserts each chunk as it comes, inside the one transaction: a period's attributed rows (a
    /// day of them at a time) are never held whole.
    async fn replace_split_period_chunks(
        &mut self,
        record: &PeriodRecord,
        chunks: &mut dyn LineChunks,
        force: bool,
    ) -> Result<ReplaceOutcome> {
        let path = self.path.as_path();
        let e = |err| store_error(path, err);
        let period = record.period.to_string();
        // IMMEDIATE: take the write lock before reading the stored version, so two writers of one
        // period serialise and the second sees the first one's version.
        let tx = conn_mut(&mut self.conn).transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let stored = stored_made_from(path, &tx, &period)?;
        let outcome = decide(
            stored.as_ref().map(|(version, inputs)| MadeFrom { version, inputs: inputs.as_deref() }),
            MadeFrom::record(record),
            force,
        );
        if !matches!(outcome, ReplaceOutcome::Replaced { .. }) {
            return Ok(outcome); // dropping `tx` rolls back (nothing was written)
        }
        for table in [Table::CostLines, Table::PoolLines] {
            tx.execute(&format!("DELETE FROM {} WHERE billing_period = ?1", table.name()), params![period])
                .map_err(e)?;
        }
        upsert_record(path, &tx, &period, record)?;
        let mut lines = Written::new(Table::CostLines);
        chunks.each_chunk(&mut |chunk| lines.insert(path, &tx, record.period, &period, chunk))?;
        let mut pool = Written::new(Table::PoolLines);
        pool.insert(path, &tx, record.period, &period, chunks.pool()?)?;
        for written in [lines, pool] {
            written.check(path, &tx, &period)?;
        }
        let committing = std::time::Instant::now();
        tx.commit().map_err(e)?;
        tracing::debug!(commit_ms = committing.elapsed().as_millis() as u64, "committed");
        Ok(outcome)
    }

    async fn cost_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        read_lines(&self.path, &self.conn(), Table::CostLines, period, &LineFilter::default())
    }

    async fn pool_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        read_lines(&self.path, &self.conn(), Table::PoolLines, period, &LineFilter::default())
    }

    async fn cost_lines_where(&self, period: BillingPeriod, filter: &LineFilter) -> Result<Vec<CostLine>> {
        read_lines(&self.path, &self.conn(), Table::CostLines, period, filter)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_version_1_store_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(
                "INSERT INTO billing_periods VALUES ('2026-10','v','2026-11-01T00:00:00Z','f','s',1,1,0,'accountant_id','2026-11-01T00:00:00Z');
                 INSERT INTO cost_lines VALUES ('2026-10','2026-10-01','a','cur','S','U','','','Usage','USD','1.5','1.5','1.5','0','0','2',1);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store.conn().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let lines = store.cost_lines(BillingPeriod::new(2026, 10).unwrap()).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].amounts.unblended_cost, Decimal::new(15, 1));
        // Stored before v14: the pricing quantity reads as the usage amount.
        assert_eq!(lines[0].amounts.pricing_quantity, Decimal::new(2, 0));
        assert!(lines[0].attribution.is_none());
        drop(store);
        let newer = Connection::open(&path).unwrap();
        newer.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(newer);
        assert!(SqliteStore::open(&path).err().unwrap().to_string().contains("newer than this curflow supports"));
    }

    /// Who bills a test line: two parties (the second with a payer name and an invoice) and none,
    /// in turn (schema v15: a `billing_parties` row for each of the two).
    fn billing_party(n: u32) -> Billing {
        match n % 3 {
            0 => Billing::new(BillingParts {
                account_id: "123456789012",
                publisher: "Amazon Web Services, Inc.",
                invoice_issuer: "Amazon Web Services, Inc.",
                ..BillingParts::default()
            }),
            1 => Billing::new(BillingParts {
                account_id: "123456789012",
                account_name: "payer",
                provider: "AWS",
                publisher: "Amazon Web Services EMEA SARL",
                invoice_issuer: "Amazon Web Services EMEA SARL",
                invoice_id: "EUINIE26-1",
            }),
            _ => Billing::default(),
        }
    }

    /// A tenant's attribution of `tenant_qty` tenths out of 100 (test lines).
    fn attribution(tenant_qty: i64) -> Option<Box<Attribution>> {
        Some(Box::new(Attribution {
            rule: Name::from("lambda"),
            basis: Name::from("usage_driver"),
            driver: Some(Name::from("lambda_gb_seconds")),
            quantity: Decimal::new(tenant_qty, 1),
            quantity_total: Decimal::new(100, 0),
            share: Decimal::new(tenant_qty, 3),
        }))
    }

    /// `got` holds the lines of `want`, in any order.
    fn assert_same_lines(mut got: Vec<CostLine>, want: &[CostLine]) {
        let mut want = want.to_vec();
        let order = |l: &CostLine| format!("{l:?}");
        want.sort_by_key(order);
        got.sort_by_key(order);
        assert_eq!(got, want);
    }

    /// Lines whose values repeat, change and go from set to NULL and back (tenant, attribution,
    /// reason, day) are read back exactly as written: [`insert_lines`] binds a parameter only
    /// when it changes, so a value held over from the line before would show here.
    #[tokio::test]
    async fn lines_with_repeated_and_changing_values_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let page_size: i64 = store.conn().pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        assert_eq!(page_size, PAGE_SIZE);
        let period = BillingPeriod::new(2026, 10).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
        let key = |d: u32, tenant: Option<&str>, service: &str, resource: &str| CostKey {
            usage_date: day(d),
            tenant: tenant.map(Name::from),
            service: Name::from(service),
            usage_type: Name::from("USE1-Requests"),
            usage_unit: Name::from("Requests"),
            operation: Name::from(if tenant.is_some() { "" } else { "Invoke" }),
            resource_id: Name::from(resource),
            line_item_type: Name::from("Usage"),
            currency: Name::from("USD"),
            account_id: Name::from("123456789012"),
            account_name: Name::default(),
            billing: billing_party(d + resource.len() as u32),
            region: Name::from("us-east-1"),
        };
        let amounts = |cents: i64, n: u64| Amounts {
            unblended_cost: Decimal::new(cents, 2),
            net_unblended_cost: Decimal::new(cents - 1, 2),
            amortized_cost: Decimal::new(cents, 2),
            usage_amount: Decimal::new(cents * 7, 4),
            // Stored as NULL where equal to the usage amount: alternate between both.
            pricing_quantity: if cents % 2 == 0 { Decimal::new(cents * 7, 4) } else { Decimal::new(cents * 9, 4) },
            line_items: n,
            list_cost: Decimal::new(cents + 3, 2),
            contracted_cost: Decimal::new(cents - 1, 2),
            ..Amounts::default()
        };
        let line = |key, amounts, attribution, reason: Option<&str>| CostLine {
            period,
            key,
            amounts,
            attribution,
            unattributed_reason: reason.map(str::to_string),
        };
        let lines = vec![
            line(key(1, Some("acme"), "AWSLambda", ""), amounts(150, 3), None, None),
            line(key(1, Some("acme"), "AWSLambda", ""), amounts(150, 3), attribution(40), None),
            line(key(1, None, "AWSLambda", "fn-a"), amounts(-20, 1), None, Some("no usage evidence")),
            line(key(1, None, "AWSLambda", "fn-a"), amounts(-20, 1), None, None),
            line(key(2, Some("beta"), "AmazonS3", ""), amounts(7, 1), attribution(60), None),
            line(key(2, Some("beta"), "AmazonS3", ""), amounts(7, 2), None, Some("no rule")),
            line(key(1, Some("acme"), "AWSLambda", ""), amounts(150, 3), None, None),
        ];
        let record = PeriodRecord {
            period,
            version: ReportVersion { id: "v1".into(), time: Utc::now() },
            format: "test".into(),
            source: "test".into(),
            files: 1,
            rows_read: 14,
            split_child_rows: 0,
            tag_key: "accountant_id".into(),
            inputs: None,
            processed_at: Utc::now(),
            invoice: Invoices::default(),
        };
        let pool = vec![
            line(key(1, None, "AWSLambda", "fn-ab"), amounts(30, 1), None, None),
            line(key(2, None, "AWSLambda", "fn-a"), amounts(40, 1), None, None),
            line(key(3, None, "AWSLambda", "fn-a"), amounts(50, 1), None, None),
        ];
        // Twice: the second replace finds the parties the first one stored.
        for version in ["v1", "v2"] {
            let record =
                PeriodRecord { version: ReportVersion { id: version.into(), time: Utc::now() }, ..record.clone() };
            store.replace_split_period(&record, &lines, &pool, false).await.unwrap();
            assert_same_lines(store.cost_lines(period).await.unwrap(), &lines);
            assert_same_lines(store.pool_lines(period).await.unwrap(), &pool);
        }
        let parties: i64 = store.conn().query_row("SELECT count(*) FROM billing_parties", [], |r| r.get(0)).unwrap();
        assert_eq!(parties, 2, "one row per party, none for a line of no party");
    }

    /// A store of schema v14 (who bills each line in six text columns of the line) keeps every
    /// line's billing party through the v15 migration, one `billing_parties` row per distinct one.
    #[tokio::test]
    async fn a_version_14_store_keeps_who_bills_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v14.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..14] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO billing_periods (billing_period, version_id, version_time, format, source, files,
                     rows_read, split_child_rows, tag_key, processed_at)
                     VALUES ('2026-10','v','2026-11-01T00:00:00Z','f','s',1,3,0,'accountant_id','2026-11-01T00:00:00Z');
                 INSERT INTO cost_lines (billing_period, usage_date, tenant, source, service, usage_type, operation,
                     resource_id, line_item_type, currency, unblended_cost, net_unblended_cost, amortized_cost,
                     ri_sp_trueup, ri_sp_upfront_fees, usage_amount, line_items, billing_account_id, publisher_name,
                     invoice_issuer_name, invoice_id)
                 VALUES ('2026-10','2026-10-01','a','cur','S','U','','','Usage','USD','1','1','1','0','0','1',1,
                         '111122223333','Amazon Web Services, Inc.','Amazon Web Services, Inc.',''),
                        ('2026-10','2026-10-02','b','cur','S','U','','','Usage','USD','2','2','2','0','0','1',1,
                         '111122223333','Amazon Web Services, Inc.','Amazon Web Services, Inc.',''),
                        ('2026-10','2026-10-03','b','cur','S','U','','','Usage','USD','3','3','3','0','0','1',1,
                         '','','','');
                 INSERT INTO pool_lines (billing_period, usage_date, tenant, source, service, usage_type, operation,
                     resource_id, line_item_type, currency, unblended_cost, net_unblended_cost, amortized_cost,
                     ri_sp_trueup, ri_sp_upfront_fees, usage_amount, line_items, usage_unit, account_id, region,
                     account_name, billing_account_id, provider_name, invoice_id)
                 VALUES ('2026-10','2026-10-01',NULL,'shared','S','U','Op','r','Usage','USD','4','4','4','0','0','1',1,
                         '','','','','999988887777','AWS','INV-7');
                 PRAGMA user_version = 14;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let period = BillingPeriod::new(2026, 10).unwrap();
        let parts = |lines: &[CostLine]| -> Vec<(String, String, String, String)> {
            lines
                .iter()
                .map(|l| {
                    let p = l.key.billing.parts();
                    (p.account_id.into(), p.provider.into(), p.publisher.into(), p.invoice_id.into())
                })
                .collect()
        };
        let aws = "Amazon Web Services, Inc.".to_string();
        let acct = "111122223333".to_string();
        assert_eq!(
            parts(&store.cost_lines(period).await.unwrap()),
            vec![
                (acct.clone(), String::new(), aws.clone(), String::new()),
                (acct, String::new(), aws, String::new()),
                Default::default(),
            ]
        );
        assert_eq!(
            parts(&store.pool_lines(period).await.unwrap()),
            vec![("999988887777".into(), "AWS".into(), String::new(), "INV-7".into())]
        );
        let conn = store.conn();
        let parties: i64 = conn.query_row("SELECT count(*) FROM billing_parties", [], |r| r.get(0)).unwrap();
        assert_eq!(parties, 2);
        let old_columns: i64 = conn
            .query_row("SELECT count(*) FROM pragma_table_info('cost_lines') WHERE name = 'publisher_name'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(old_columns, 0, "the six columns are dropped from the lines");
    }

    /// The read-back of what a replacement wrote sums exactly (NULL pricing quantities read as
    /// the usage amount); a stored amount that differs from what was meant (here changed by a
    /// trigger), or that is not a decimal, fails the replacement, which is rolled back.
    #[tokio::test]
    async fn the_conservation_check_refuses_what_does_not_sum_and_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("c.sqlite")).unwrap();
        let period = BillingPeriod::new(2026, 10).unwrap();
        let n = 9_000;
        let lines: Vec<CostLine> = (0..n)
            .map(|i| {
                let cents = i64::try_from(i).unwrap() - 40;
                let mut line = CostLine::new(
                    period,
                    CostKey {
                        usage_date: NaiveDate::from_ymd_opt(2026, 10, 1 + u32::try_from(i % 31).unwrap()).unwrap(),
                        tenant: Some(Name::from(format!("t{i:05}").as_str())),
                        service: Name::from("AWSLambda"),
                        usage_type: Name::default(),
                        usage_unit: Name::default(),
                        operation: Name::default(),
                        resource_id: Name::default(),
                        line_item_type: Name::from("Usage"),
                        currency: Name::from("USD"),
                        account_id: Name::default(),
                        account_name: Name::default(),
                        billing: Default::default(),
                        region: Name::default(),
                    },
                    Amounts {
                        unblended_cost: Decimal::new(cents, 2),
                        net_unblended_cost: Decimal::new(cents, 3),
                        amortized_cost: Decimal::new(cents * 3, 4),
                        usage_amount: Decimal::new(cents * 7, 12),
                        // Stored as NULL where equal to the usage amount: both kinds.
                        pricing_quantity: Decimal::new(cents * if i % 2 == 0 { 7 } else { 9 }, 12),
                        line_items: 2,
                        list_cost: Decimal::new(cents + 3, 2),
                        contracted_cost: Decimal::new(cents, 2),
                        ..Amounts::default()
                    },
                );
                line.amounts.ri_sp_trueup = Decimal::new(cents, 5);
                line
            })
            .collect();
        let record = |id: &str| PeriodRecord {
            period,
            version: ReportVersion { id: id.into(), time: Utc::now() },
            format: "test".into(),
            source: "test".into(),
            files: 1,
            rows_read: 2 * n as u64,
            split_child_rows: 0,
            tag_key: "accountant_id".into(),
            inputs: None,
            processed_at: Utc::now(),
            invoice: Invoices::default(),
        };
        store.replace_period(&record("v1"), &lines, false).await.unwrap();
        let (count, total) = stored_totals(&store.path, &store.conn(), Table::CostLines, "2026-10").unwrap();
        assert_eq!((count, total), (n, Amounts::sum(lines.iter().map(|l| &l.amounts)).unwrap()));

        for (value, error) in [("'0.02'", "do not sum to the input"), ("'x'", "unreadable stored value")] {
            store
                .conn()
                .execute_batch(&format!(
                    "DROP TRIGGER IF EXISTS skew;
                     CREATE TRIGGER skew AFTER INSERT ON cost_lines WHEN NEW.tenant = 't{:05}' BEGIN
                         UPDATE cost_lines SET unblended_cost = {value} WHERE rowid = NEW.rowid;
                     END;",
                    n - 3
                ))
                .unwrap();
            let err = store.replace_period(&record("v2"), &lines, true).await.unwrap_err();
            assert!(err.to_string().contains(error), "{value}: {err}");
            let stored = store.period(period).await.unwrap().unwrap();
            assert_eq!(stored.version.id, "v1", "{value}: rolled back");
            assert_eq!(store.cost_lines(period).await.unwrap().len(), n, "{value}: the first version's lines stay");
        }
    }

    /// Lines sorted by day then tenant are inserted tenant by tenant (the pool first), each
    /// tenant's days in order, every line once.
    #[test]
    fn lines_are_inserted_in_the_order_of_the_tenant_index() {
        use chrono::Datelike;
        let period = BillingPeriod::new(2026, 10).unwrap();
        let line = |d: u32, tenant: Option<&str>, service: &str| CostLine {
            period,
            key: CostKey {
                usage_date: NaiveDate::from_ymd_opt(2026, 10, d).unwrap(),
                tenant: tenant.map(Name::from),
                service: Name::from(service),
                usage_type: Name::default(),
                usage_unit: Name::default(),
                operation: Name::default(),
                resource_id: Name::default(),
                line_item_type: Name::from("Usage"),
                currency: Name::from("USD"),
                account_id: Name::default(),
                account_name: Name::default(),
                billing: Default::default(),
                region: Name::default(),
            },
            amounts: Amounts::default(),
            attribution: None,
            unattributed_reason: None,
        };
        let mut lines = Vec::new();
        for d in 1..=3 {
            for tenant in [None, Some("acme"), Some("beta")] {
                for service in ["AWSLambda", "AmazonS3"] {
                    lines.push(line(d, tenant, service));
                }
            }
        }
        let order: Vec<(Option<&str>, u32, &str)> = tenant_major(&lines)
            .map(|l| (l.key.tenant.as_deref(), l.key.usage_date.day(), l.key.service.as_str()))
            .collect();
        let mut want = Vec::new();
        for tenant in [None, Some("acme"), Some("beta")] {
            for d in 1..=3 {
                for service in ["AWSLambda", "AmazonS3"] {
                    want.push((tenant, d, service));
                }
            }
        }
        assert_eq!(order, want);
    }

    /// A store created with SQLite's default 4 KiB pages keeps them (the page size of an
    /// existing database cannot change without a rebuild) and is written and read as before.
    #[tokio::test]
    async fn an_existing_store_keeps_its_page_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        Connection::open(&path).unwrap().execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x);").unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let page_size: i64 = store.conn().pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        assert_eq!(page_size, 4096);
    }

    /// Alerts recorded by a version 5 store (after delivery, on all the channels named) are sent
    /// records of each of those channels after the migration, so none is delivered again.
    #[tokio::test]
    async fn version_5_alerts_become_sent_delivery_records_per_channel() {
        use crate::finance::{AlertChannel, DeliveryState, FinanceStore, LEGACY_RUN_ID};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..5] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO alerts_sent VALUES ('a#b#1','2026-10','80','actual','2026-10-26T03:30:00+00:00','stdout,webhook,sns','{}');
                 INSERT INTO alerts_sent VALUES ('acct-2','2026-10','100','forecast','2026-10-27T03:30:00+00:00','stdout','{}');
                 INSERT INTO alerts_sent VALUES ('acct-3','2026-11','80','actual','2026-11-02T03:30:00+00:00','stdout,sns','{}');
                 PRAGMA user_version = 5;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let october = "2026-10".parse().unwrap();
        let got: Vec<_> = store
            .alert_deliveries(october)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                assert_eq!(
                    (d.state, d.run_id.as_str(), Some(d.claimed_at)),
                    (DeliveryState::Sent, LEGACY_RUN_ID, d.sent_at)
                );
                (d.key.accountant_id, d.key.threshold_pct.to_string(), d.channel)
            })
            .collect();
        let r = |t: &str, th: &str, c| (t.to_string(), th.to_string(), c);
        assert_eq!(
            got,
            [
                r("a#b#1", "80", AlertChannel::Webhook),
                r("a#b#1", "80", AlertChannel::Sns),
                r("a#b#1", "80", AlertChannel::Stdout),
                r("acct-2", "100", AlertChannel::Stdout),
            ]
        );
        assert_eq!(store.alerts_sent("2026-11".parse().unwrap()).await.unwrap().len(), 1);
        let old_table: Option<String> = store
            .conn()
            .query_row("SELECT name FROM sqlite_master WHERE name = 'alerts_sent'", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(old_table, None);
    }
}
