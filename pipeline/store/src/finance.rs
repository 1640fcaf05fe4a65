//! The finance side of a store: the app's estimates, tenant budgets, the delivery records of budget
//! alerts (so no run sends one twice on a channel) and the reconciliation records of each month.
//!
//! [`FinanceStore`] is implemented by the SQLite store (below: every write is one transaction) and the
//! DynamoDB store (`dynamodb::finance`). In both, re-importing a file inserts nothing twice (an
//! estimate's identity is all of its fields) and a month's reconciliation is replaced as a whole.
//!
//! # Alert deliveries: at most once per channel
//!
//! Each (alert, channel) has at most one [`AlertDelivery`] record. A nightly run *claims* it
//! ([`FinanceStore::claim_alert`], a conditional insert that exactly one of any number of
//! concurrent claimants wins) before delivering, and only the winner delivers on that channel. After
//! the channel accepted the alert the run marks the record sent ([`FinanceStore::mark_alert_sent`]);
//! after a failure that certainly delivered nothing it releases the claim
//! ([`FinanceStore::release_alert`]) so the next run tries that channel again. Both are conditional
//! on the claimant's run id and the `claimed` state, so a run can never touch another run's record.
//! A record is never replaced by a new claim: a run that died (or whose delivery ended uncertain)
//! between claim and mark leaves a `claimed` record that no run re-sends, which is what makes the
//! delivery at-most-once per channel; the nightly summary lists such records for an operator.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use curflow_reconcile::{Alert, AlertKey, AlertKind, Budget, Comparison, Estimate, Month};
use rusqlite::{OptionalExtension, params};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::sqlite::{SqliteStore, conn_mut, corrupt, store_error};
use crate::error::{Error, Result};

/// A tenant's budget as configured with `curflow budgets set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSetting {
    pub budget: Budget,
    /// Also alert when the month-end forecast crosses a threshold (before the actual does).
    pub forecast_alerts: bool,
    pub updated_at: DateTime<Utc>,
}

/// How the Cost Explorer syncs of one connected account went (`curflow accounts status`). Holds
/// no credential: only names, times, counts and AWS's error message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountStatus {
    /// The account's configured `name`.
    pub name: String,
    pub account_id: String,
    /// When the last sync of it ended, successful or not.
    pub last_attempt: DateTime<Utc>,
    /// When it last synced successfully.
    pub last_synced: Option<DateTime<Utc>>,
    /// The error of the last sync; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Requests the last sync sent.
    pub last_requests: u64,
    /// Requests of every sync and forecast so far ($0.01 each).
    pub total_requests: u64,
    /// AWS's forecast of the account's month as last fetched by `nightly`, so `report` shows it
    /// without calling AWS. Part of the status record (JSON in both stores, absent in records
    /// written before it existed), so neither store needs a schema change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<AwsForecast>,
}

/// The last `GetCostForecast` of a connected account: UNBLENDED_COST, MONTHLY, from `from` (the
/// day it was fetched) to the first day of the next month, i.e. the rest of the month. Either
/// an amount or the reason there is none (AccessDenied, no Cost Explorer history).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AwsForecast {
    /// The month forecast, `YYYY-MM`.
    pub month: String,
    /// First day the forecast covers (the month's days before it are actual cost).
    pub from: chrono::NaiveDate,
    /// Forecast unblended cost of `from` to the month end, exactly as the API's string says.
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    /// Why there is no amount (AWS's error, never a credential).
    pub unavailable: Option<String>,
    pub fetched_at: DateTime<Utc>,
}

/// What an estimates import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub records: u64,
    pub inserted: u64,
    /// Records already stored (the same file imported again).
    pub already_stored: u64,
}

/// Estimates, budgets, alert state and reconciliation records, next to the cost lines (async for
/// the same reasons as [`crate::CostStore`]).
#[async_trait::async_trait]
pub trait FinanceStore: Send + Sync {
    /// Imports validated estimates; records already stored (same fields) are counted, not added.
    async fn import_estimates(&mut self, estimates: &[Estimate], source_name: &str) -> Result<ImportOutcome>;

    /// Every estimate of `month`, ordered by tenant, timestamp, operation, resource type.
    async fn estimates(&self, month: Month) -> Result<Vec<Estimate>>;

    /// Creates or replaces a tenant's budget.
    async fn set_budget(&mut self, setting: &BudgetSetting) -> Result<()>;

    /// Deletes a tenant's budget; `false` when there was none.
    async fn delete_budget(&mut self, tenant: &str) -> Result<bool>;

    /// Every budget, by tenant.
    async fn budgets(&self) -> Result<Vec<BudgetSetting>>;

    /// Every alert delivery record of `month` (claimed or sent; records written before claims
    /// existed read as sent on each channel they name), ordered by alert key and channel.
    async fn alert_deliveries(&self, month: Month) -> Result<Vec<AlertDelivery>>;

    /// The alerts of `month` that some channel has accepted.
    async fn alerts_sent(&self, month: Month) -> Result<BTreeSet<AlertKey>> {
        Ok(self
            .alert_deliveries(month)
            .await?
            .into_iter()
            .filter(|d| d.state == DeliveryState::Sent)
            .map(|d| d.key)
            .collect())
    }

    /// Records the intent of run `run_id` to deliver `alert` on `channel`: inserts a `claimed`
    /// record unless one (claimed or sent, by any run) exists. `true`: this run holds the claim and
    /// is the only one that may deliver; `false`: another record is there, deliver nothing. Of any
    /// number of concurrent claimants of one (alert, channel), exactly one gets `true`.
    async fn claim_alert(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Marks the claim of `run_id` on (alert, channel) sent; `true` also when it is marked already
    /// (a retried call). `false` when the record is not one of `run_id` (removed by an operator
    /// meanwhile): nothing is changed.
    async fn mark_alert_sent(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Withdraws the claim of `run_id` on (key, channel) after a delivery that certainly did not
    /// happen, so the next run claims and delivers again. `false` when there is no `claimed`
    /// record of `run_id` (nothing is changed; a sent record is never released).
    async fn release_alert(&mut self, key: &AlertKey, channel: AlertChannel, run_id: &str) -> Result<bool>;

    /// Replaces `month`'s reconciliation records as a whole; returns how many were written.
    async fn replace_reconciliation(
        &mut self,
        month: Month,
        comparison: &Comparison,
        at: DateTime<Utc>,
    ) -> Result<usize>;

    /// The stored reconciliation records of `month`, ordered by level, tenant, resource type.
    async fn reconciliation(&self, month: Month) -> Result<Vec<ReconciliationRow>>;

    /// Creates or replaces the sync status of one connected account (keyed by its name).
    async fn put_account_status(&mut self, status: &AccountStatus) -> Result<()>;

    /// Every stored account status, by name.
    async fn account_statuses(&self) -> Result<Vec<AccountStatus>>;
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

/// A channel a budget alert is delivered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertChannel {
    /// The configured webhook (`alert-webhook-url`).
    Webhook,
    /// The configured SNS topic (`alert-sns-topic-arn`).
    Sns,
    /// The run's own output only, recorded when neither webhook nor SNS is configured, so such an
    /// alert is still reported once.
    Stdout,
}

impl AlertChannel {
    pub const ALL: [AlertChannel; 3] = [AlertChannel::Webhook, AlertChannel::Sns, AlertChannel::Stdout];

    /// The stored name (`webhook`, `sns`, `stdout`).
    pub fn name(self) -> &'static str {
        match self {
            AlertChannel::Webhook => "webhook",
            AlertChannel::Sns => "sns",
            AlertChannel::Stdout => "stdout",
        }
    }

    /// The channel of a stored name.
    pub fn of(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for AlertChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one alert stands on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// A run claimed it and has not confirmed the delivery (still delivering, died, or its
    /// delivery ended uncertain). Never delivered again automatically.
    Claimed,
    /// The channel accepted the alert.
    Sent,
}

impl DeliveryState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DeliveryState::Claimed => "claimed",
            DeliveryState::Sent => "sent",
        }
    }

    pub(crate) fn of(name: &str) -> Option<Self> {
        [DeliveryState::Claimed, DeliveryState::Sent].into_iter().find(|s| s.name() == name)
    }
}

/// The run id of delivery records written before claims existed (SQLite rows migrated to v6,
/// DynamoDB `alert#` items): they were recorded after a delivery on every channel they name.
pub const LEGACY_RUN_ID: &str = "before-v6";

/// The delivery record of one alert on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertDelivery {
    #[serde(flatten)]
    pub key: AlertKey,
    pub channel: AlertChannel,
    pub state: DeliveryState,
    /// The nightly run that claimed it ([`LEGACY_RUN_ID`] for records from before claims).
    pub run_id: String,
    pub claimed_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A fresh id for one nightly run's claims: 16 hex digits from std's randomly keyed SipHash, the
/// clock and the process id (no extra crate). Two runs never share one, so a run's conditional
/// mark and release can only ever match its own claims.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Orders delivery records by alert key and channel; of two records of one (key, channel) (a
/// legacy record next to a new one, only possible while an older curflow still runs), the sent one.
pub(crate) fn ordered_deliveries(records: impl IntoIterator<Item = AlertDelivery>) -> Vec<AlertDelivery> {
    let mut by_key: BTreeMap<(AlertKey, AlertChannel), AlertDelivery> = BTreeMap::new();
    for r in records {
        match by_key.entry((r.key.clone(), r.channel)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if r.state == DeliveryState::Sent && o.get().state != DeliveryState::Sent {
                    o.insert(r);
                }
            }
        }
    }
    by_key.into_values().collect()
}

/// The stored name of an alert kind.
pub fn alert_kind_name(kind: AlertKind) -> &'static str {
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
        let conn = self.conn();
        conn.query_row("SELECT 1 FROM estimates LIMIT 1", [], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|err| store_error(&self.path, err))
    }
}

#[async_trait::async_trait]
impl FinanceStore for SqliteStore {
    async fn import_estimates(&mut self, estimates: &[Estimate], source_name: &str) -> Result<ImportOutcome> {
        let conn = conn_mut(&mut self.conn);
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let now = Utc::now().to_rfc3339();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
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
    async fn estimates(&self, month: Month) -> Result<Vec<Estimate>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let mut stmt = conn
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
    async fn set_budget(&mut self, setting: &BudgetSetting) -> Result<()> {
        let conn = conn_mut(&mut self.conn);
        let b = &setting.budget;
        let thresholds =
            serde_json::to_string(&b.thresholds_pct.iter().map(|t| t.normalize().to_string()).collect::<Vec<_>>())
                .map_err(|err| Error::Internal(err.to_string()))?;
        conn
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
    async fn delete_budget(&mut self, tenant: &str) -> Result<bool> {
        let conn = conn_mut(&mut self.conn);
        let n = conn
            .execute("DELETE FROM budgets WHERE accountant_id = ?1", [tenant])
            .map_err(|err| store_error(&self.path, err))?;
        Ok(n > 0)
    }

    /// Every budget, by tenant.
    async fn budgets(&self) -> Result<Vec<BudgetSetting>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let mut stmt = conn
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

    /// Every delivery record of `month`, by key and channel.
    async fn alert_deliveries(&self, month: Month) -> Result<Vec<AlertDelivery>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let mut stmt = conn
            .prepare(
                "SELECT accountant_id, threshold_pct, kind, channel, state, run_id, claimed_at, sent_at \
                 FROM alert_deliveries WHERE month = ?1",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([month.to_string()], |r| {
                Ok((
                    [r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(e)?;
        let time = |what: &str, t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| corrupt(&self.path, format!("{what} {t:?}")))
        };
        let mut out = Vec::new();
        for row in rows {
            let ([tenant, threshold, kind, channel, state, run_id, claimed_at], sent_at) = row.map_err(e)?;
            out.push(AlertDelivery {
                key: AlertKey {
                    accountant_id: tenant,
                    month,
                    threshold_pct: dec(self, "threshold", &threshold)?.normalize(),
                    kind: alert_kind_of(&kind).ok_or_else(|| corrupt(&self.path, format!("alert kind {kind:?}")))?,
                },
                channel: AlertChannel::of(&channel)
                    .ok_or_else(|| corrupt(&self.path, format!("alert channel {channel:?}")))?,
                state: DeliveryState::of(&state)
                    .ok_or_else(|| corrupt(&self.path, format!("alert delivery state {state:?}")))?,
                run_id,
                claimed_at: time("claimed_at", &claimed_at)?,
                sent_at: sent_at.as_deref().map(|t| time("sent_at", t)).transpose()?,
            });
        }
        Ok(ordered_deliveries(out))
    }

    /// The claim is an `INSERT OR IGNORE` on the primary key (tenant, month, threshold, kind,
    /// channel) in an immediate transaction: SQLite serialises writers, so of concurrent claimants
    /// (threads or processes) exactly one inserts the row.
    async fn claim_alert(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let conn = conn_mut(&mut self.conn);
        let json = serde_json::to_string(alert).map_err(|err| Error::Internal(err.to_string()))?;
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let alert_key = alert.key();
        let key = DeliveryKey::new(&alert_key, channel, run_id);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO alert_deliveries (accountant_id, month, threshold_pct, kind, channel, run_id, \
                 state, claimed_at, sent_at, alert) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'claimed', ?7, NULL, ?8)",
                key.params(&[&at.to_rfc3339(), &json]),
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n == 1)
    }

    async fn mark_alert_sent(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<bool> {
        let conn = conn_mut(&mut self.conn);
        let alert_key = alert.key();
        let key = DeliveryKey::new(&alert_key, channel, run_id);
        let e = |err| store_error(&self.path, err);
        let update = format!(
            "UPDATE alert_deliveries SET state = 'sent', sent_at = ?7 WHERE {DELIVERY_OF_RUN} AND state = 'claimed'"
        );
        if conn.execute(&update, key.params(&[&sent_at.to_rfc3339()])).map_err(e)? == 1 {
            return Ok(true);
        }
        let sent = format!("SELECT 1 FROM alert_deliveries WHERE {DELIVERY_OF_RUN} AND state = 'sent'");
        conn.query_row(&sent, key.params(&[]), |_| Ok(())).optional().map(|found| found.is_some()).map_err(e)
    }

    async fn release_alert(&mut self, key: &AlertKey, channel: AlertChannel, run_id: &str) -> Result<bool> {
        let conn = conn_mut(&mut self.conn);
        let delete = format!("DELETE FROM alert_deliveries WHERE {DELIVERY_OF_RUN} AND state = 'claimed'");
        let n = conn
            .execute(&delete, DeliveryKey::new(key, channel, run_id).params(&[]))
            .map_err(|err| store_error(&self.path, err))?;
        Ok(n == 1)
    }

    /// Replaces `month`'s reconciliation records (one transaction).
    async fn replace_reconciliation(
        &mut self,
        month: Month,
        comparison: &Comparison,
        at: DateTime<Utc>,
    ) -> Result<usize> {
        let conn = conn_mut(&mut self.conn);
        let rows = reconciliation_rows(month, comparison)?;
        let path = self.path.clone();
        let e = |err| store_error(&path, err);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e)?;
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

    /// Creates or replaces the sync status of one connected account.
    async fn put_account_status(&mut self, status: &AccountStatus) -> Result<()> {
        let record = serde_json::to_string(status).map_err(|err| Error::Internal(err.to_string()))?;
        conn_mut(&mut self.conn)
            .execute(
                "INSERT INTO account_status (name, record) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                params![status.name, record],
            )
            .map_err(|err| store_error(&self.path, err))?;
        Ok(())
    }

    /// Every stored account status, by name.
    async fn account_statuses(&self) -> Result<Vec<AccountStatus>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let mut stmt = conn.prepare("SELECT record FROM account_status ORDER BY name").map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(e)?;
            out.push(serde_json::from_str(&text).map_err(|_| corrupt(&self.path, format!("account status {text:?}")))?);
        }
        Ok(out)
    }

    async fn reconciliation(&self, month: Month) -> Result<Vec<ReconciliationRow>> {
        let conn = self.conn();
        let e = |err| store_error(&self.path, err);
        let mut stmt = conn
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
/// One alert delivery as the claiming run sees it: the row's primary key (tenant, month, threshold,
/// kind, channel) and the run that claimed it — `?1`..`?6` of [`DELIVERY_OF_RUN`].
struct DeliveryKey<'a> {
    accountant_id: &'a str,
    month: String,
    threshold_pct: String,
    kind: &'static str,
    channel: &'static str,
    run_id: &'a str,
}

/// Selects the delivery of [`DeliveryKey`]'s parameters `?1`..`?6`.
const DELIVERY_OF_RUN: &str =
    "accountant_id = ?1 AND month = ?2 AND threshold_pct = ?3 AND kind = ?4 AND channel = ?5 AND run_id = ?6";

impl<'a> DeliveryKey<'a> {
    fn new(key: &'a AlertKey, channel: AlertChannel, run_id: &'a str) -> Self {
        Self {
            accountant_id: &key.accountant_id,
            month: key.month.to_string(),
            threshold_pct: key.threshold_pct.normalize().to_string(),
            kind: alert_kind_name(key.kind),
            channel: channel.name(),
            run_id,
        }
    }

    /// The key as `?1`..`?6`, then `more` as `?7`, `?8`, ….
    fn params<'p>(&'p self, more: &[&'p dyn rusqlite::ToSql]) -> impl rusqlite::Params + 'p {
        let key: [&'p dyn rusqlite::ToSql; 6] =
            [&self.accountant_id, &self.month, &self.threshold_pct, &self.kind, &self.channel, &self.run_id];
        rusqlite::params_from_iter(key.into_iter().chain(more.iter().copied()).collect::<Vec<_>>())
    }
}
