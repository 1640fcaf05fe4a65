//! The finance side of a store: the app's estimates, tenant budgets, alerts already sent (so a re-run
//! never sends one twice) and the reconciliation records of each month.
//!
//! [`FinanceStore`] is implemented by the SQLite store (below: every write is one transaction) and the
//! DynamoDB store (`dynamodb::finance`). In both, re-importing a file inserts nothing twice (an
//! estimate's identity is all of its fields) and a month's reconciliation is replaced as a whole.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use curflow_reconcile::{Alert, AlertKey, AlertKind, Budget, Comparison, Estimate, Month};
use rusqlite::{OptionalExtension, params};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::sqlite::{SqliteStore, corrupt, store_error};
use crate::error::{Error, Result};

/// A tenant's budget as configured with `curflow budgets set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSetting {
    pub budget: Budget,
    /// Also alert when the month-end forecast crosses a threshold (before the actual does).
    pub forecast_alerts: bool,
    pub updated_at: DateTime<Utc>,
}

/// What an estimates import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub records: u64,
    pub inserted: u64,
    /// Records already stored (the same file imported again).
    pub already_stored: u64,
}

/// Estimates, budgets, alert state and reconciliation records, next to the cost lines.
pub trait FinanceStore {
    /// Imports validated estimates; records already stored (same fields) are counted, not added.
    fn import_estimates(&mut self, estimates: &[Estimate], source_name: &str) -> Result<ImportOutcome>;

    /// Every estimate of `month`, ordered by tenant, timestamp, operation, resource type.
    fn estimates(&self, month: Month) -> Result<Vec<Estimate>>;

    /// Creates or replaces a tenant's budget.
    fn set_budget(&mut self, setting: &BudgetSetting) -> Result<()>;

    /// Deletes a tenant's budget; `false` when there was none.
    fn delete_budget(&mut self, tenant: &str) -> Result<bool>;

    /// Every budget, by tenant.
    fn budgets(&self) -> Result<Vec<BudgetSetting>>;

    /// The alerts already sent for `month`.
    fn alerts_sent(&self, month: Month) -> Result<BTreeSet<AlertKey>>;

    /// Records a sent alert; `false` when it was already recorded (another run sent it).
    fn record_alert(&mut self, alert: &Alert, channels: &str, sent_at: DateTime<Utc>) -> Result<bool>;

    /// Replaces `month`'s reconciliation records as a whole; returns how many were written.
    fn replace_reconciliation(&mut self, month: Month, comparison: &Comparison, at: DateTime<Utc>) -> Result<usize>;

    /// The stored reconciliation records of `month`, ordered by level, tenant, resource type.
    fn reconciliation(&self, month: Month) -> Result<Vec<ReconciliationRow>>;
}

/// One stored reconciliation record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReconciliationRow {
    /// `resource_type`, `suggestion` or `tenant`.
    pub level: String,
    pub accountant_id: String,
    /// `""` at tenant level.
    pub resource_type: String,
    /// The record as JSON (exact decimals as strings).
    pub record: String,
}

/// The records of `month` in a comparison, as every implementation stores them.
pub(crate) fn reconciliation_rows(month: Month, comparison: &Comparison) -> Result<Vec<ReconciliationRow>> {
    let json = |v: &dyn erased::Json| v.json();
    let row = |level: &str, tenant: &str, resource_type: &str, record: String| ReconciliationRow {
        level: level.into(),
        accountant_id: tenant.into(),
        resource_type: resource_type.into(),
        record,
    };
    let mut rows = Vec::new();
    for r in comparison.tenant_months.iter().filter(|r| r.month == month) {
        rows.push(row("tenant", &r.accountant_id, "", json(r)?));
    }
    for r in comparison.resource_types.iter().filter(|r| r.month == month) {
        rows.push(row("resource_type", &r.accountant_id, &r.resource_type, json(r)?));
    }
    for r in comparison.suggestions.iter().filter(|r| r.month == month) {
        rows.push(row("suggestion", &r.accountant_id, &r.resource_type, json(r)?));
    }
    Ok(rows)
}

/// The stored name of an alert kind.
pub(crate) fn alert_kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Actual => "actual",
        AlertKind::Forecast => "forecast",
    }
}

/// The alert kind of a stored name.
pub(crate) fn alert_kind_of(name: &str) -> Option<AlertKind> {
    match name {
        "actual" => Some(AlertKind::Actual),
        "forecast" => Some(AlertKind::Forecast),
        _ => None,
    }
}

fn dec(store: &SqliteStore, what: &str, text: &str) -> Result<Decimal> {
    text.parse().map_err(|_| corrupt(&store.path, format!("{what} {text:?}")))
}

impl SqliteStore {
    /// Whether any estimate exists (for messages).
    pub fn has_estimates(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM estimates LIMIT 1", [], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|err| store_error(&self.path, err))
    }
}

impl FinanceStore for SqliteStore {
    fn import_estimates(&mut self, estimates: &[Estimate], source_name: &str) -> Result<ImportOutcome> {
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let now = Utc::now().to_rfc3339();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
        let mut inserted = 0;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR IGNORE INTO estimates (accountant_id, timestamp, month, operation, resource_type, \
                     quantity, unit_cost, estimated_cost, imported_from, imported_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(e)?;
            for est in estimates {
                inserted += stmt
                    .execute(params![
                        est.accountant_id,
                        est.timestamp.to_rfc3339(),
                        est.month.to_string(),
                        est.operation,
                        est.resource_type,
                        est.quantity.normalize().to_string(),
                        est.unit_cost.normalize().to_string(),
                        est.estimated_cost.normalize().to_string(),
                        source_name,
                        now,
                    ])
                    .map_err(e)? as u64;
            }
        }
        tx.commit().map_err(e)?;
        let records = estimates.len() as u64;
        Ok(ImportOutcome { records, inserted, already_stored: records - inserted })
    }

    /// Every estimate of `month`, in a stable order.
    fn estimates(&self, month: Month) -> Result<Vec<Estimate>> {
        let e = |err| store_error(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT accountant_id, timestamp, month, operation, resource_type, quantity, unit_cost, estimated_cost \
                 FROM estimates WHERE month = ?1 ORDER BY accountant_id, timestamp, operation, resource_type",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([month.to_string()], |r| {
                Ok((0..8).map(|i| r.get::<_, String>(i)).collect::<rusqlite::Result<Vec<String>>>())
            })
            .map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let f = row.map_err(e)?.map_err(e)?;
            let timestamp = DateTime::parse_from_rfc3339(&f[1])
                .map_err(|_| corrupt(&self.path, format!("timestamp {:?}", f[1])))?;
            out.push(Estimate {
                accountant_id: f[0].clone(),
                timestamp,
                month: f[2].parse().map_err(|_| corrupt(&self.path, format!("month {:?}", f[2])))?,
                operation: f[3].clone(),
                resource_type: f[4].clone(),
                quantity: dec(self, "quantity", &f[5])?,
                unit_cost: dec(self, "unit_cost", &f[6])?,
                estimated_cost: dec(self, "estimated_cost", &f[7])?,
            });
        }
        Ok(out)
    }

    /// Creates or replaces a tenant's budget.
    fn set_budget(&mut self, setting: &BudgetSetting) -> Result<()> {
        let b = &setting.budget;
        let thresholds =
            serde_json::to_string(&b.thresholds_pct.iter().map(|t| t.normalize().to_string()).collect::<Vec<_>>())
                .map_err(|err| Error::Internal(err.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO budgets (accountant_id, monthly_amount, currency, thresholds_pct, forecast_alerts, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (accountant_id) DO UPDATE SET \
                 monthly_amount = excluded.monthly_amount, currency = excluded.currency, \
                 thresholds_pct = excluded.thresholds_pct, forecast_alerts = excluded.forecast_alerts, \
                 updated_at = excluded.updated_at",
                params![
                    b.accountant_id,
                    b.monthly_amount.normalize().to_string(),
                    b.currency,
                    thresholds,
                    setting.forecast_alerts,
                    setting.updated_at.to_rfc3339()
                ],
            )
            .map_err(|err| store_error(&self.path, err))?;
        Ok(())
    }

    /// Deletes a tenant's budget; `false` when there was none.
    fn delete_budget(&mut self, tenant: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM budgets WHERE accountant_id = ?1", [tenant])
            .map_err(|err| store_error(&self.path, err))?;
        Ok(n > 0)
    }

    /// Every budget, by tenant.
    fn budgets(&self) -> Result<Vec<BudgetSetting>> {
        let e = |err| store_error(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT accountant_id, monthly_amount, currency, thresholds_pct, forecast_alerts, updated_at \
                 FROM budgets ORDER BY accountant_id",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let (tenant, amount, currency, thresholds, forecast_alerts, updated) = row.map_err(e)?;
            let thresholds: Vec<String> = serde_json::from_str(&thresholds)
                .map_err(|_| corrupt(&self.path, format!("thresholds {thresholds:?}")))?;
            let thresholds_pct = thresholds.iter().map(|t| dec(self, "threshold", t)).collect::<Result<_>>()?;
            out.push(BudgetSetting {
                budget: Budget {
                    accountant_id: tenant,
                    monthly_amount: dec(self, "monthly_amount", &amount)?,
                    currency,
                    thresholds_pct,
                },
                forecast_alerts,
                updated_at: DateTime::parse_from_rfc3339(&updated)
                    .map_err(|_| corrupt(&self.path, format!("updated_at {updated:?}")))?
                    .with_timezone(&Utc),
            });
        }
        Ok(out)
    }

    /// The alerts already sent for `month`.
    fn alerts_sent(&self, month: Month) -> Result<BTreeSet<AlertKey>> {
        let e = |err| store_error(&self.path, err);
        let mut stmt = self
            .conn
            .prepare("SELECT accountant_id, threshold_pct, kind FROM alerts_sent WHERE month = ?1")
            .map_err(e)?;
        let rows = stmt
            .query_map([month.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(e)?;
        let mut out = BTreeSet::new();
        for row in rows {
            let (tenant, threshold, kind) = row.map_err(e)?;
            let kind = alert_kind_of(&kind).ok_or_else(|| corrupt(&self.path, format!("alert kind {kind:?}")))?;
            out.insert(AlertKey {
                accountant_id: tenant,
                month,
                threshold_pct: dec(self, "threshold", &threshold)?.normalize(),
                kind,
            });
        }
        Ok(out)
    }

    /// Records a sent alert; `false` when it was already recorded (another run sent it).
    fn record_alert(&mut self, alert: &Alert, channels: &str, sent_at: DateTime<Utc>) -> Result<bool> {
        let kind = alert_kind_name(alert.kind);
        let json = serde_json::to_string(alert).map_err(|err| Error::Internal(err.to_string()))?;
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO alerts_sent (accountant_id, month, threshold_pct, kind, sent_at, channels, alert) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    alert.accountant_id,
                    alert.month.to_string(),
                    alert.threshold_pct.normalize().to_string(),
                    kind,
                    sent_at.to_rfc3339(),
                    channels,
                    json
                ],
            )
            .map_err(|err| store_error(&self.path, err))?;
        Ok(n > 0)
    }

    /// Replaces `month`'s reconciliation records (one transaction).
    fn replace_reconciliation(&mut self, month: Month, comparison: &Comparison, at: DateTime<Utc>) -> Result<usize> {
        let rows = reconciliation_rows(month, comparison)?;
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
        tx.execute("DELETE FROM reconciliations WHERE month = ?1", [month.to_string()]).map_err(e)?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO reconciliations (month, level, accountant_id, resource_type, record, computed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(e)?;
            let at = at.to_rfc3339();
            for r in &rows {
                stmt.execute(params![month.to_string(), r.level, r.accountant_id, r.resource_type, r.record, at])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(rows.len())
    }

    fn reconciliation(&self, month: Month) -> Result<Vec<ReconciliationRow>> {
        let e = |err| store_error(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT level, accountant_id, resource_type, record FROM reconciliations WHERE month = ?1 \
                 ORDER BY level, accountant_id, resource_type",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([month.to_string()], |r| {
                Ok(ReconciliationRow {
                    level: r.get(0)?,
                    accountant_id: r.get(1)?,
                    resource_type: r.get(2)?,
                    record: r.get(3)?,
                })
            })
            .map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }
}

/// JSON of any serializable record, behind a trait object so one closure serves every record type.
mod erased {
    use crate::error::{Error, Result};

    pub trait Json {
        fn json(&self) -> Result<String>;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Result<String> {
            serde_json::to_string(self).map_err(|e| Error::Internal(e.to_string()))
        }
    }
}
