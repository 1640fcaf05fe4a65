//! The finance side of the DynamoDB store, in the same table as the cost lines, so `estimates import`,
//! `reconcile`, `budgets`, `nightly`, `report` and `export` work on `--store dynamodb://TABLE` exactly as
//! on SQLite.
//!
//! # Items
//!
//! | what | `accountant_id` | `sk` | other attributes |
//! |---|---|---|---|
//! | estimate | tenant, as the app writes it (never escaped: every store query of a `_` partition names a sort-key prefix an estimate does not have) | `estimate#<timestamp>#<id>` | `month`, `source` = `estimate`, `actual_cost` = false, `timestamp`, `operation`, `resource_type`, `quantity`, `unit_cost`, `estimated_cost` (N), `imported_from`, `imported_at` |
//! | budget | `_budget` | `budget#<tenant>` | `tenant`, `monthly_amount` (N), `currency`, `thresholds_pct` (L of N), `forecast_alerts` (BOOL), `updated_at` |
//! | alert delivery (one per alert and channel) | `_alert` | `delivery#<YYYY-MM>#<kind>#<threshold>#<channel>#<tenant>` (the tenant last: the only part that may hold `#`) | `tenant`, `month_sent`, `threshold_pct` (N), `kind`, `channel` (`webhook`, `sns`, `stdout`), `state` (`claimed`, `sent`), `run_id`, `claimed_at`, `sent_at` (once sent), `alert` (JSON) |
//! | alert sent (written before delivery records; read, never written) | `_alert` | `alert#<YYYY-MM>#<tenant>#<threshold>#<kind>` | `tenant`, `month_sent`, `threshold_pct` (N), `kind`, `sent_at`, `channels` (e.g. `stdout,webhook,sns`: sent on each), `alert` (JSON) |
//! | reconciliation record | tenant (escaped as a cost line's: `_x` → `~_x`) | `reconciliation#<YYYY-MM>#<rtag>#<level>#<resource type>` | `tenant`, `month`, `source` = `reconciliation`, `level`, `resource_type`, `record` (JSON), `computed_at`, `version_tag`, `base_tag` |
//! | connected account status | `_account` | `account#<name>` | `record` (`AccountStatus` as JSON; no credential) |
//! | reconciliation pointer | `_reconciliation` | `current#<YYYY-MM>` | `version_tag`, `record_count`, `computed_at` |
//!
//! **Estimates** are read through `month-index` (`month = :m`, filter `source = estimate`), so items the
//! app writes itself count whatever their sort key, as long as they carry the documented fields (numbers
//! as N or as decimal strings). An import writes `<id>` = a hash of all fields, so importing a file
//! again adds nothing; the whole file is validated before the first write.
//!
//! **Reconciliation records** of a month are replaced as a whole, like a period's cost lines: the new
//! records go under a fresh tag (with `base_tag` = the pointer's tag when the run started), then the
//! month's pointer is switched to it with a conditional `PutItem` (only while it still holds
//! `base_tag`; a run that loses retries on top), then records of older runs are deleted. Readers
//! follow the pointer, so they see the old set or the new one, never a mix; a run that dies before
//! the switch leaves the old set current.
//!
//! **Alert deliveries** (see `crate::finance`, at most once per channel): a run claims an (alert,
//! channel) with `PutItem` + `attribute_not_exists(sk)` (exactly one of concurrent claimants
//! succeeds), delivers, then writes the item again in state `sent` with `PutItem` conditional on
//! `run_id = <its run> AND state = claimed` (no `UpdateItem`: the function's role does not have
//! it), or after a certain failure deletes it with the same condition (`DeleteItem`). A conditional
//! write that fails is followed by a consistent `GetItem`: a retried call whose first attempt was
//! applied finds its own record and counts as done, so a lost answer never makes a run give up a
//! claim it holds. `month_sent` (not `month`) keeps these items out of `month-index`.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use curflow_reconcile::{Alert, AlertKey, Budget, Comparison, Estimate, EstimateRules, Month};
use rust_decimal::Decimal;

use super::item::{Item, MONTH, MONTH_INDEX, NO_BASE, PK, SK, key_of, rfc3339, tenant_partition, text_of};
use super::{DynamoStore, MAX_READ_RETRIES, MAX_RESTARTS, build_error};
use crate::CostStore;
use crate::error::{Error, Result};
use crate::finance::{
    AccountStatus, AlertChannel, AlertDelivery, BudgetSetting, DeliveryState, FinanceStore, ImportOutcome,
    LEGACY_RUN_ID, ReconciliationRow, alert_kind_name, alert_kind_of, ordered_deliveries, reconciliation_rows,
};
use crate::hash::short_hash;

const BUDGET_PARTITION: &str = "_budget";
const ACCOUNT_PARTITION: &str = "_account";
const ALERT_PARTITION: &str = "_alert";
const RECONCILIATION_PARTITION: &str = "_reconciliation";
const ESTIMATE: &str = "estimate";
const RECONCILIATION: &str = "reconciliation";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(d: Decimal) -> AttributeValue {
    AttributeValue::N(d.normalize().to_string())
}

/// The text of a string or number attribute (the app may write numbers either way).
fn scalar(item: &Item, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) | Some(AttributeValue::N(v)) => Some(v.clone()),
        _ => None,
    }
}

fn number(item: &Item, k: &str) -> std::result::Result<Decimal, String> {
    let text = scalar(item, k).ok_or_else(|| format!("attribute `{k}` is missing or not a number"))?;
    curflow_model::money::parse_decimal(&text).map_err(|e| format!("attribute `{k}`: {e}"))
}

fn text(item: &Item, k: &str) -> std::result::Result<String, String> {
    text_of(item, k).map(str::to_string).ok_or_else(|| format!("attribute `{k}` is missing or not a string"))
}

/// 16 hex digits identifying an estimate by all of its fields.
fn estimate_id(e: &Estimate) -> String {
    let parts = [
        e.accountant_id.clone(),
        e.timestamp.to_rfc3339(),
        e.operation.clone(),
        e.resource_type.clone(),
        e.quantity.normalize().to_string(),
        e.unit_cost.normalize().to_string(),
        e.estimated_cost.normalize().to_string(),
    ];
    short_hash(parts.iter().map(String::as_bytes))
}

fn estimate_item(e: &Estimate, source_name: &str, now: &str) -> Item {
    let mut item = Item::with_capacity(14);
    item.insert(PK.into(), s(e.accountant_id.clone()));
    item.insert(SK.into(), s(format!("{ESTIMATE}#{}#{}", e.timestamp.to_rfc3339(), estimate_id(e))));
    item.insert(MONTH.into(), s(e.month.to_string()));
    item.insert("source".into(), s(ESTIMATE));
    item.insert("actual_cost".into(), AttributeValue::Bool(false));
    item.insert("timestamp".into(), s(e.timestamp.to_rfc3339()));
    item.insert("operation".into(), s(e.operation.clone()));
    item.insert("resource_type".into(), s(e.resource_type.clone()));
    item.insert("quantity".into(), n(e.quantity));
    item.insert("unit_cost".into(), n(e.unit_cost));
    item.insert("estimated_cost".into(), n(e.estimated_cost));
    item.insert("imported_from".into(), s(source_name));
    item.insert("imported_at".into(), s(now));
    item
}

/// An estimate item as the app or an import wrote it, checked like an imported record.
fn decode_estimate(item: &Item) -> std::result::Result<Estimate, String> {
    let tenant = text(item, PK)?;
    let fields: Vec<(&str, String)> =
        ["timestamp", "month", "operation", "resource_type", "quantity", "unit_cost", "estimated_cost"]
            .into_iter()
            .filter_map(|k| scalar(item, k).map(|v| (k, v)))
            .collect();
    let all = std::iter::once(("accountant_id", tenant.as_str())).chain(fields.iter().map(|(k, v)| (*k, v.as_str())));
    Estimate::from_fields(all, &EstimateRules::default()).map_err(|e| e.to_string())
}

fn budget_item(b: &BudgetSetting) -> Item {
    let mut item = Item::with_capacity(8);
    item.insert(PK.into(), s(BUDGET_PARTITION));
    item.insert(SK.into(), s(format!("budget#{}", b.budget.accountant_id)));
    item.insert("tenant".into(), s(b.budget.accountant_id.clone()));
    item.insert("monthly_amount".into(), n(b.budget.monthly_amount));
    item.insert("currency".into(), s(b.budget.currency.clone()));
    item.insert("thresholds_pct".into(), AttributeValue::L(b.budget.thresholds_pct.iter().map(|t| n(*t)).collect()));
    item.insert("forecast_alerts".into(), AttributeValue::Bool(b.forecast_alerts));
    item.insert("updated_at".into(), s(rfc3339(&b.updated_at)));
    item
}

fn decode_budget(item: &Item) -> std::result::Result<BudgetSetting, String> {
    let thresholds_pct = match item.get("thresholds_pct") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::N(t) => {
                    curflow_model::money::parse_decimal(t).map_err(|e| format!("threshold {t:?} is not a decimal: {e}"))
                }
                other => Err(format!("attribute `thresholds_pct` holds {other:?}, expected numbers")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => return Err("attribute `thresholds_pct` is missing or not a list".into()),
    };
    let updated = text(item, "updated_at")?;
    Ok(BudgetSetting {
        budget: Budget {
            accountant_id: text(item, "tenant")?,
            monthly_amount: number(item, "monthly_amount")?,
            currency: text(item, "currency")?,
            thresholds_pct,
        },
        forecast_alerts: matches!(item.get("forecast_alerts"), Some(AttributeValue::Bool(true))),
        updated_at: DateTime::parse_from_rfc3339(&updated)
            .map_err(|_| format!("attribute `updated_at`: {updated:?} is not an RFC 3339 time"))?
            .with_timezone(&Utc),
    })
}

/// The sort key of a delivery record. The tenant id comes last and is the only part that may hold
/// `#`, so two records never share a key; the key is never parsed (readers use the attributes).
fn delivery_sk(key: &AlertKey, channel: AlertChannel) -> String {
    format!(
        "{}{}#{}#{}#{}",
        delivery_prefix(key.month),
        alert_kind_name(key.kind),
        key.threshold_pct.normalize(),
        channel.name(),
        key.accountant_id
    )
}

fn delivery_prefix(month: Month) -> String {
    format!("delivery#{month}#")
}

/// The condition "the record is still run `:run`'s claim" of conditional writes to a delivery
/// record, with [`our_claim_names`] and [`our_claim_values`].
const OUR_CLAIM: &str = "#run = :run AND #state = :claimed";

fn our_claim_names() -> HashMap<String, String> {
    HashMap::from([("#run".into(), "run_id".into()), ("#state".into(), "state".into())])
}

fn our_claim_values(run_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(":run".into(), s(run_id)), (":claimed".into(), s(DeliveryState::Claimed.name()))])
}

/// A delivery record as an item.
fn delivery_item(
    alert: &Alert,
    channel: AlertChannel,
    state: DeliveryState,
    run_id: &str,
    claimed_at: &DateTime<Utc>,
    sent_at: Option<&DateTime<Utc>>,
) -> Result<Item> {
    let json = serde_json::to_string(alert).map_err(|e| Error::Internal(e.to_string()))?;
    let mut item = Item::with_capacity(12);
    item.insert(PK.into(), s(ALERT_PARTITION));
    item.insert(SK.into(), s(delivery_sk(&alert.key(), channel)));
    item.insert("tenant".into(), s(alert.accountant_id.clone()));
    // `month_sent`, not `month`: alert items stay out of `month-index`.
    item.insert("month_sent".into(), s(alert.month.to_string()));
    item.insert("threshold_pct".into(), n(alert.threshold_pct));
    item.insert("kind".into(), s(alert_kind_name(alert.kind)));
    item.insert("channel".into(), s(channel.name()));
    item.insert("state".into(), s(state.name()));
    item.insert("run_id".into(), s(run_id));
    item.insert("claimed_at".into(), s(rfc3339(claimed_at)));
    if let Some(t) = sent_at {
        item.insert("sent_at".into(), s(rfc3339(t)));
    }
    item.insert("alert".into(), s(json));
    Ok(item)
}

fn time(item: &Item, k: &str) -> std::result::Result<DateTime<Utc>, String> {
    let t = text(item, k)?;
    DateTime::parse_from_rfc3339(&t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("attribute `{k}`: {t:?} is not an RFC 3339 time"))
}

fn alert_key_of(item: &Item, month: Month) -> std::result::Result<AlertKey, String> {
    let kind = text(item, "kind")?;
    Ok(AlertKey {
        accountant_id: text(item, "tenant")?,
        month,
        threshold_pct: number(item, "threshold_pct")?.normalize(),
        kind: alert_kind_of(&kind).ok_or_else(|| format!("alert kind {kind:?}"))?,
    })
}

fn decode_delivery(item: &Item, month: Month) -> std::result::Result<AlertDelivery, String> {
    let channel = text(item, "channel")?;
    let state = text(item, "state")?;
    Ok(AlertDelivery {
        key: alert_key_of(item, month)?,
        channel: AlertChannel::of(&channel).ok_or_else(|| format!("alert channel {channel:?}"))?,
        state: DeliveryState::of(&state).ok_or_else(|| format!("alert delivery state {state:?}"))?,
        run_id: text(item, "run_id")?,
        claimed_at: time(item, "claimed_at")?,
        sent_at: if item.contains_key("sent_at") { Some(time(item, "sent_at")?) } else { None },
    })
}

/// The records of an item written before claims existed (`alert#...`, recorded after delivery on
/// every channel it names): sent on each of them.
fn decode_legacy_alert(item: &Item, month: Month) -> std::result::Result<Vec<AlertDelivery>, String> {
    let key = alert_key_of(item, month)?;
    let sent_at = time(item, "sent_at")?;
    let channels = text(item, "channels")?;
    Ok(channels
        .split(',')
        .filter_map(|c| AlertChannel::of(c.trim()))
        .map(|channel| AlertDelivery {
            key: key.clone(),
            channel,
            state: DeliveryState::Sent,
            run_id: LEGACY_RUN_ID.into(),
            claimed_at: sent_at,
            sent_at: Some(sent_at),
        })
        .collect())
}

/// Whether a conditional write was refused because its condition did not hold.
fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_)) && e.code() == Some("ConditionalCheckFailedException")
}

fn reconciliation_prefix(month: Month) -> String {
    format!("{RECONCILIATION}#{month}#")
}

fn reconciliation_item(month: Month, tag: &str, base: &str, row: &ReconciliationRow, at: &str) -> Item {
    let mut item = Item::with_capacity(10);
    item.insert(PK.into(), s(tenant_partition(&row.accountant_id)));
    item.insert(SK.into(), s(format!("{}{tag}#{}#{}", reconciliation_prefix(month), row.level, row.resource_type)));
    item.insert("tenant".into(), s(row.accountant_id.clone()));
    item.insert(MONTH.into(), s(month.to_string()));
    item.insert("source".into(), s(RECONCILIATION));
    item.insert("level".into(), s(row.level.clone()));
    item.insert("resource_type".into(), s(row.resource_type.clone()));
    item.insert("record".into(), s(row.record.clone()));
    item.insert("computed_at".into(), s(at));
    item.insert("version_tag".into(), s(tag));
    item.insert("base_tag".into(), s(base));
    item
}

fn put(item: Item) -> Result<WriteRequest> {
    Ok(WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().map_err(build_error)?)
        .build())
}

/// A fresh 16-hex-digit tag for one run's reconciliation records.
fn new_tag(month: Month, at: &DateTime<Utc>) -> String {
    let (month, at) = (month.to_string(), rfc3339(at));
    let (nonce, pid) = (super::retry::random_u64().to_le_bytes(), std::process::id().to_le_bytes());
    short_hash([month.as_bytes(), at.as_bytes(), &nonce, &pid])
}

impl DynamoStore {
    /// Every item of `month` in `month-index` whose `source` is `source` (eventually consistent, as
    /// every GSI read), optionally only the key attributes.
    async fn month_items(&self, month: Month, source: &str, keys_only: bool) -> Result<Vec<Item>> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(MONTH_INDEX)
            .key_condition_expression("#month = :month")
            .filter_expression("#source = :source")
            .expression_attribute_names("#month", MONTH)
            .expression_attribute_names("#source", "source")
            .expression_attribute_values(":month", s(month.to_string()))
            .expression_attribute_values(":source", s(source));
        if keys_only {
            query = query
                .projection_expression("#pk, #sk, version_tag, base_tag")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK);
        }
        self.query_all(query).await
    }

    pub(super) fn unreadable(&self, item: &Item, e: String) -> Error {
        let (pk, sk) = key_of(item).unwrap_or_default();
        self.corrupt(format!("item {pk} / {sk} is unreadable: {e}"))
    }

    pub(super) async fn put_one(&self, item: Item, operation: &str) -> Result<()> {
        let req = self.client.put_item().table_name(&self.table).set_item(Some(item));
        self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error(operation, e))?;
        Ok(())
    }

    /// One item, read strongly consistent; `None` when it does not exist.
    pub(super) async fn get_one(&self, pk: &str, sk: String) -> Result<Option<Item>> {
        let req = self.client.get_item().table_name(&self.table).consistent_read(true).key(PK, s(pk)).key(SK, s(sk));
        Ok(self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("GetItem", e))?.item)
    }

    /// The delivery record of (key, channel), read strongly consistent.
    async fn delivery_record(&self, key: &AlertKey, channel: AlertChannel) -> Result<Option<AlertDelivery>> {
        let Some(item) = self.get_one(ALERT_PARTITION, delivery_sk(key, channel)).await? else { return Ok(None) };
        Ok(Some(decode_delivery(&item, key.month).map_err(|e| self.unreadable(&item, e))?))
    }

    /// Whether the record of (key, channel) is a claim of `run_id` in `state`. After a conditional
    /// write failed this tells a lost race from our own earlier attempt that DynamoDB applied but
    /// whose answer was lost (the call is retried on timeouts and 5xx).
    async fn holds(&self, key: &AlertKey, channel: AlertChannel, run_id: &str, state: DeliveryState) -> Result<bool> {
        Ok(self.delivery_record(key, channel).await?.is_some_and(|d| d.run_id == run_id && d.state == state))
    }

    /// The current reconciliation tag of `month` and how many records it has.
    async fn reconciliation_pointer(&self, month: Month) -> Result<Option<(String, usize)>> {
        let Some(item) = self.get_one(RECONCILIATION_PARTITION, format!("current#{month}")).await? else {
            return Ok(None);
        };
        let tag = text(&item, "version_tag").map_err(|e| self.unreadable(&item, e))?;
        let count = number(&item, "record_count")
            .ok()
            .and_then(|c| usize::try_from(c.mantissa()).ok())
            .ok_or_else(|| self.unreadable(&item, "attribute `record_count` is not a count".into()))?;
        Ok(Some((tag, count)))
    }

    /// Deletes the month's records of other runs, while the pointer still holds `current`. Records
    /// written on top of `current` (`base_tag`) belong to a run that may still switch: kept (the
    /// same reasoning as the cost lines' cleanup, see the module docs of `dynamodb`).
    async fn reconciliation_cleanup(&self, month: Month, current: &str) -> Result<()> {
        let listed = self.month_items(month, RECONCILIATION, true).await?;
        let doomed: Vec<_> = listed
            .iter()
            .filter(|i| text_of(i, "version_tag") != Some(current) && text_of(i, "base_tag") != Some(current))
            .filter_map(key_of)
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        if self.reconciliation_pointer(month).await?.map(|(t, _)| t).as_deref() != Some(current) {
            return Ok(()); // a later run owns the month now and cleans up after itself
        }
        self.delete_keys(doomed).await
    }
}

#[async_trait::async_trait]
impl FinanceStore for DynamoStore {
    async fn import_estimates(&mut self, estimates: &[Estimate], source_name: &str) -> Result<ImportOutcome> {
        let now = rfc3339(&Utc::now());
        let months: BTreeSet<Month> = estimates.iter().map(|e| e.month).collect();
        let mut stored: HashSet<(String, String)> = HashSet::new();
        for month in months {
            stored.extend(self.month_items(month, ESTIMATE, true).await?.iter().filter_map(key_of));
        }
        let mut seen = HashSet::new();
        let mut requests = Vec::new();
        for e in estimates {
            let item = estimate_item(e, source_name, &now);
            let key = key_of(&item).ok_or_else(|| Error::Internal("estimate item without a key".into()))?;
            if !stored.contains(&key) && seen.insert(key) {
                requests.push(put(item)?);
            }
        }
        let inserted = requests.len() as u64;
        self.write_all(requests).await?;
        let records = estimates.len() as u64;
        Ok(ImportOutcome { records, inserted, already_stored: records - inserted })
    }

    async fn estimates(&self, month: Month) -> Result<Vec<Estimate>> {
        let mut out = Vec::new();
        for item in self.month_items(month, ESTIMATE, false).await? {
            let e = decode_estimate(&item).map_err(|e| self.unreadable(&item, e))?;
            if e.month != month {
                return Err(self.unreadable(&item, format!("`month` is {month} but the timestamp is in {}", e.month)));
            }
            out.push(e);
        }
        out.sort_by(|a, b| {
            (&a.accountant_id, a.timestamp, &a.operation, &a.resource_type).cmp(&(
                &b.accountant_id,
                b.timestamp,
                &b.operation,
                &b.resource_type,
            ))
        });
        Ok(out)
    }

    async fn put_account_status(&mut self, status: &AccountStatus) -> Result<()> {
        let record = serde_json::to_string(status).map_err(|e| Error::Internal(e.to_string()))?;
        let mut item = Item::with_capacity(3);
        item.insert(PK.into(), s(ACCOUNT_PARTITION));
        item.insert(SK.into(), s(format!("account#{}", status.name)));
        item.insert("record".into(), s(record));
        self.put_one(item, "PutItem").await
    }

    async fn account_statuses(&self) -> Result<Vec<AccountStatus>> {
        let items = self.query_all(self.partition_query(ACCOUNT_PARTITION, "account#")).await?;
        let mut out = items
            .iter()
            .map(|item| {
                let record = text(item, "record").map_err(|e| self.unreadable(item, e))?;
                serde_json::from_str::<AccountStatus>(&record).map_err(|e| self.unreadable(item, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn set_budget(&mut self, setting: &BudgetSetting) -> Result<()> {
        self.put_one(budget_item(setting), "PutItem").await
    }

    async fn delete_budget(&mut self, tenant: &str) -> Result<bool> {
        let req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(BUDGET_PARTITION))
            .key(SK, s(format!("budget#{tenant}")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        let out = self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn budgets(&self) -> Result<Vec<BudgetSetting>> {
        let items = self.query_all(self.partition_query(BUDGET_PARTITION, "budget#")).await?;
        let mut out = items
            .iter()
            .map(|item| decode_budget(item).map_err(|e| self.unreadable(item, e)))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.budget.accountant_id.cmp(&b.budget.accountant_id));
        Ok(out)
    }

    /// The delivery records of `month`: `delivery#` items, and the `alert#` items of curflow
    /// versions before claims (read as sent on the channels they name). Strongly consistent
    /// queries of the `_alert` partition, so a record written by a run that just finished is seen.
    async fn alert_deliveries(&self, month: Month) -> Result<Vec<AlertDelivery>> {
        let mut out = Vec::new();
        let legacy = self.query_all(self.partition_query(ALERT_PARTITION, &format!("alert#{month}#"))).await?;
        for item in &legacy {
            out.extend(decode_legacy_alert(item, month).map_err(|e| self.unreadable(item, e))?);
        }
        for item in &self.query_all(self.partition_query(ALERT_PARTITION, &delivery_prefix(month))).await? {
            out.push(decode_delivery(item, month).map_err(|e| self.unreadable(item, e))?);
        }
        Ok(ordered_deliveries(out))
    }

    /// `PutItem` with `attribute_not_exists(sk)`: DynamoDB applies conditional writes on one item
    /// one at a time, so of concurrent claimants exactly one succeeds.
    async fn claim_alert(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let item = delivery_item(alert, channel, DeliveryState::Claimed, run_id, &at, None)?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#sk)")
            .expression_attribute_names("#sk", SK);
        match self.retrying(|| req.clone().send()).await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => {
                self.holds(&alert.key(), channel, run_id, DeliveryState::Claimed).await
            }
            Err(e) => Err(self.aws_error("PutItem", e)),
        }
    }

    /// The whole item again (`PutItem`; the function's role has no `UpdateItem`), in state `sent`,
    /// only while it is still our claim.
    async fn mark_alert_sent(
        &mut self,
        alert: &Alert,
        channel: AlertChannel,
        run_id: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<bool> {
        let key = alert.key();
        let Some(claim) = self.delivery_record(&key, channel).await? else { return Ok(false) };
        if claim.run_id != run_id {
            return Ok(false);
        }
        if claim.state == DeliveryState::Sent {
            return Ok(true);
        }
        let item = delivery_item(alert, channel, DeliveryState::Sent, run_id, &claim.claimed_at, Some(&sent_at))?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(OUR_CLAIM)
            .set_expression_attribute_names(Some(our_claim_names()))
            .set_expression_attribute_values(Some(our_claim_values(run_id)));
        match self.retrying(|| req.clone().send()).await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => self.holds(&key, channel, run_id, DeliveryState::Sent).await,
            Err(e) => Err(self.aws_error("PutItem", e)),
        }
    }

    /// `DeleteItem` only while the record is our claim.
    async fn release_alert(&mut self, key: &AlertKey, channel: AlertChannel, run_id: &str) -> Result<bool> {
        let req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(ALERT_PARTITION))
            .key(SK, s(delivery_sk(key, channel)))
            .condition_expression(OUR_CLAIM)
            .set_expression_attribute_names(Some(our_claim_names()))
            .set_expression_attribute_values(Some(our_claim_values(run_id)));
        match self.retrying(|| req.clone().send()).await {
            Ok(_) => Ok(true),
            // Gone already: our own earlier attempt deleted it (or an operator did).
            Err(e) if is_condition_failure(&e) => Ok(self.delivery_record(key, channel).await?.is_none()),
            Err(e) => Err(self.aws_error("DeleteItem", e)),
        }
    }

    async fn replace_reconciliation(
        &mut self,
        month: Month,
        comparison: &Comparison,
        at: DateTime<Utc>,
    ) -> Result<usize> {
        let rows = reconciliation_rows(month, comparison)?;
        let at_text = rfc3339(&at);
        for _ in 0..MAX_RESTARTS {
            let base = self.reconciliation_pointer(month).await?.map_or_else(|| NO_BASE.to_string(), |(t, _)| t);
            let tag = new_tag(month, &at);
            let items: Vec<Item> = rows.iter().map(|r| reconciliation_item(month, &tag, &base, r, &at_text)).collect();
            let keys: Vec<_> = items.iter().filter_map(key_of).collect();
            self.write_all(items.into_iter().map(put).collect::<Result<Vec<_>>>()?).await?;
            let mut pointer = Item::with_capacity(6);
            pointer.insert(PK.into(), s(RECONCILIATION_PARTITION));
            pointer.insert(SK.into(), s(format!("current#{month}")));
            pointer.insert("version_tag".into(), s(tag.clone()));
            pointer.insert("record_count".into(), AttributeValue::N(rows.len().to_string()));
            pointer.insert("computed_at".into(), s(at_text.clone()));
            let switch = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(pointer))
                .condition_expression("attribute_not_exists(#sk) OR version_tag = :base")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":base", s(base));
            match self.retrying(|| switch.clone().send()).await {
                Ok(_) => {
                    if let Err(e) = self.reconciliation_cleanup(month, &tag).await {
                        tracing::warn!(table = %self.table, %month, error = %e, "old reconciliation records not removed; the next run retries");
                    }
                    return Ok(rows.len());
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    // Another run switched the month meanwhile: ours can never become current; retry on top.
                    self.discard(&keys, "reconciliation lost a concurrent switch").await;
                }
                Err(e) => return Err(self.aws_error("PutItem", e)),
            }
        }
        Err(Error::Store {
            path: std::path::PathBuf::from(self.describe()),
            reason: format!("reconciliation of {month}: replaced concurrently {MAX_RESTARTS} times in a row"),
            retryable: true,
        })
    }

    async fn reconciliation(&self, month: Month) -> Result<Vec<ReconciliationRow>> {
        for _ in 0..MAX_READ_RETRIES {
            let Some((tag, count)) = self.reconciliation_pointer(month).await? else { return Ok(Vec::new()) };
            let prefix = format!("{}{tag}#", reconciliation_prefix(month));
            let items = self.month_items(month, RECONCILIATION, false).await?;
            let mut rows = Vec::with_capacity(count);
            for item in items.iter().filter(|i| text_of(i, SK).is_some_and(|sk| sk.starts_with(&prefix))) {
                rows.push(
                    (|| -> std::result::Result<ReconciliationRow, String> {
                        Ok(ReconciliationRow {
                            level: text(item, "level")?,
                            // Records written before `tenant` was kept have the raw id as partition.
                            accountant_id: match text_of(item, "tenant") {
                                Some(t) => t.to_string(),
                                None => text(item, PK)?,
                            },
                            resource_type: text(item, "resource_type")?,
                            record: text(item, "record")?,
                        })
                    })()
                    .map_err(|e| self.unreadable(item, e))?,
                );
            }
            if rows.len() == count {
                rows.sort();
                return Ok(rows);
            }
            // The index lags the table (or the month was replaced meanwhile): read again.
            tokio::time::sleep(self.retry.delay(0)).await;
        }
        Err(Error::Store {
            path: std::path::PathBuf::from(self.describe()),
            reason: format!("reconciliation of {month}: the stored records do not match their pointer yet"),
            retryable: true,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn estimate() -> Estimate {
        let line = [
            ("accountant_id", "acct-1"),
            ("timestamp", "2026-10-05T10:00:00+02:00"),
            ("month", "2026-10"),
            ("operation", "ocr"),
            ("resource_type", "lambda_invocation"),
            ("quantity", "1000"),
            ("unit_cost", "0.0000002"),
            ("estimated_cost", "0.0002"),
        ];
        Estimate::from_fields(line, &EstimateRules::default()).unwrap()
    }

    #[test]
    fn estimates_round_trip_and_identical_records_share_a_key() {
        let e = estimate();
        let item = estimate_item(&e, "file.csv", "2026-11-01T00:00:00Z");
        assert_eq!(decode_estimate(&item).unwrap(), e);
        assert_eq!(key_of(&item), key_of(&estimate_item(&e, "other.csv", "2026-11-02T00:00:00Z")));
        let other = Estimate { quantity: Decimal::from(1001), estimated_cost: Decimal::new(2002, 7), ..e.clone() };
        assert_ne!(key_of(&item), key_of(&estimate_item(&other, "file.csv", "x")));
        // The app may write numbers as strings.
        let mut app = item.clone();
        app.insert("quantity".into(), s("1000"));
        assert_eq!(decode_estimate(&app).unwrap(), e);
        app.insert("quantity".into(), s("lots"));
        assert!(decode_estimate(&app).unwrap_err().contains("quantity"));
    }

    #[test]
    fn budgets_round_trip_exactly() {
        let b = BudgetSetting {
            budget: Budget {
                accountant_id: "acct-1".into(),
                monthly_amount: Decimal::new(123_456, 2),
                currency: "USD".into(),
                thresholds_pct: vec![Decimal::from(80), Decimal::new(1005, 1)],
            },
            forecast_alerts: true,
            updated_at: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        };
        assert_eq!(decode_budget(&budget_item(&b)).unwrap(), b);
    }
}
