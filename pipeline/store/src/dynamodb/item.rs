//! Item encoding: cost lines and period pointers as DynamoDB items, and back, exactly.
//!
//! Money and quantities are DynamoDB Numbers written as the normalised exact decimal string of a
//! `Decimal` (at most 29 significant digits; DynamoDB keeps 38) and read back exactly with
//! [`curflow_model::money::parse_decimal`], so nothing ever passes through a float.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{Invoices, PeriodRecord};
use curflow_model::aggregate::{Amounts, Attribution, CostKey, CostLine};
use curflow_model::period::BillingPeriod;
use curflow_model::{Billing, BillingParts, Name, Names, ReportVersion};

/// One DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Partition key of the usage table.
pub(super) const PK: &str = "accountant_id";
/// Sort key of the usage table.
pub(super) const SK: &str = "sk";
/// The GSI over `month` (partition) and `sk` (sort), projection ALL.
pub(super) const MONTH_INDEX: &str = "month-index";
pub(super) const MONTH: &str = "month";
/// Partition of the untagged shared pool (tenant `None`, reported as `UNATTRIBUTED`).
pub(super) const SHARED_PARTITION: &str = "_shared";
/// Partition of the shared-pool lines kept beside an attributed period's lines
/// (`CostStore::replace_split_period`); no reader of costs queries it.
pub(super) const POOL_PARTITION: &str = "_pool";
/// Partition of the per-period current-version pointers.
pub(super) const PERIOD_PARTITION: &str = "_period";
/// `base_tag` of a version written when the period had no pointer yet.
pub(super) const NO_BASE: &str = "-";
/// Sort-key prefix of every item this store owns in a tenant partition.
pub(super) const ACTUAL: &str = "actual";
/// Sort-key prefix of the pointer items.
pub(super) const CURRENT: &str = "current";
/// Longest service name kept in a sort key (the full name is an attribute; `n` keeps keys unique).
const SK_SERVICE_MAX_BYTES: usize = 200;

/// Identity of one written version of a period: its tag, and the pointer tag its writer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    /// Unique per run (see `new_version_tag`): a version's items are never overwritten in place.
    pub tag: String,
    /// The pointer's `version_tag` when the writer decided to replace ([`NO_BASE`] if none).
    pub base: String,
    pub version: ReportVersion,
}

/// What the pointer item of a period says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pointer {
    pub record: PeriodRecord,
    /// The current version's tag: its items' sort keys start with `actual#<period>#<tag>#`.
    pub tag: String,
    /// Every partition (tenant, `_shared`) holding items of the current version.
    pub partitions: Vec<String>,
    /// Number of cost-line items of the current version (readers check it).
    pub line_count: u64,
    /// Number of shared-pool items of the current version (in [`POOL_PARTITION`], not counted in
    /// `line_count` nor listed in `partitions`); 0 on pointers written before pools were kept.
    pub pool_count: u64,
}

/// `actual#<YYYY-MM>#` — every cost-line item of a period.
pub(super) fn month_prefix(period: BillingPeriod) -> String {
    format!("{ACTUAL}#{period}#")
}

/// `actual#<YYYY-MM>#<tag>#` — the cost-line items of one version of a period.
pub(super) fn version_prefix(period: BillingPeriod, tag: &str) -> String {
    format!("{ACTUAL}#{period}#{tag}#")
}

pub(super) fn pointer_sk(period: BillingPeriod) -> String {
    format!("{CURRENT}#{period}")
}

/// Prefix that escapes a tenant partition (see [`tenant_partition`]).
pub(super) const ESCAPE: char = '~';

/// The partition of a tenant's items: the tenant id as-is, except that an id starting with `_` or
/// `~` gets one more `~` in front. The store's own partitions (`_shared`, `_period`, `_budget`,
/// `_alert`, `_reconciliation`) all start with `_`, so no tenant, whatever its id, shares one of
/// them; the escape is reversible ([`tenant_of_partition`]) and leaves every other id unchanged,
/// so the app's own items (partition = tenant id) keep their keys.
pub(super) fn tenant_partition(tenant: &str) -> String {
    if tenant.starts_with('_') || tenant.starts_with(ESCAPE) { format!("{ESCAPE}{tenant}") } else { tenant.to_string() }
}

/// The tenant id of a partition written by [`tenant_partition`] (items carry their tenant as an
/// attribute, so readers never need this; it documents and tests that the escape is reversible).
#[cfg(test)]
pub(super) fn tenant_of_partition(partition: &str) -> &str {
    partition.strip_prefix(ESCAPE).unwrap_or(partition)
}

/// The partition of a line: its tenant's ([`tenant_partition`]), or `_shared` for the shared pool.
pub(super) fn partition_of(line: &CostLine) -> String {
    match line.key.tenant.as_deref() {
        Some(t) if !t.is_empty() => tenant_partition(t),
        _ => SHARED_PARTITION.to_string(),
    }
}

pub(super) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(d: Decimal) -> AttributeValue {
    AttributeValue::N(curflow_model::money::decimal_text(d))
}

fn n_u64(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Adds a line's amounts to its item.
fn insert_amounts(item: &mut Item, a: &Amounts) {
    item.insert("unblended_cost".into(), n(a.unblended_cost));
    item.insert("net_unblended_cost".into(), n(a.net_unblended_cost));
    item.insert("amortized_cost".into(), n(a.amortized_cost));
    item.insert("ri_sp_trueup".into(), n(a.ri_sp_trueup));
    item.insert("ri_sp_upfront_fees".into(), n(a.ri_sp_upfront_fees));
    item.insert("usage_amount".into(), n(a.usage_amount));
    item.insert("line_items".into(), n_u64(a.line_items));
    // Absent when 0 (tax, credits, fees and formats without a list price): fewer bytes per item.
    if !a.list_cost.is_zero() {
        item.insert("list_cost".into(), n(a.list_cost));
    }
    if !a.contracted_cost.is_zero() {
        item.insert("contracted_cost".into(), n(a.contracted_cost));
    }
    // Absent when equal to the usage amount (every consumption line; items written before it).
    if a.pricing_quantity != a.usage_amount {
        item.insert("pricing_quantity".into(), n(a.pricing_quantity));
    }
}

/// The item of `line`, the `index`-th line of the period's sorted lines, in version `stamp`.
pub(super) fn line_item(line: &CostLine, index: usize, stamp: &Stamp) -> Item {
    let k = &line.key;
    let source = line.source().as_str();
    let day = k.usage_date.format("%Y-%m-%d").to_string();
    let mut item = Item::with_capacity(40);
    item.insert(PK.into(), s(partition_of(line)));
    item.insert(SK.into(), s(line_sk(line, index, stamp)));
    item.insert(MONTH.into(), s(line.period.to_string()));
    item.insert("day".into(), s(day));
    item.insert("source".into(), s("actual"));
    item.insert("actual_cost".into(), AttributeValue::Bool(true));
    item.insert("cost_source".into(), s(source));
    if let Some(t) = &k.tenant {
        item.insert("tenant".into(), s(t.clone()));
    }
    item.insert("service".into(), s(k.service.clone()));
    item.insert("usage_type".into(), s(k.usage_type.clone()));
    item.insert("usage_unit".into(), s(k.usage_unit.clone()));
    item.insert("operation".into(), s(k.operation.clone()));
    item.insert("resource_id".into(), s(k.resource_id.clone()));
    item.insert("line_item_type".into(), s(k.line_item_type.clone()));
    item.insert("currency".into(), s(k.currency.clone()));
    // Only when known: absent reads as '' (as on items written before accounts were kept).
    if !k.account_id.is_empty() {
        item.insert("usage_account_id".into(), s(k.account_id.clone()));
    }
    if !k.account_name.is_empty() {
        item.insert("usage_account_name".into(), s(k.account_name.clone()));
    }
    if !k.region.is_empty() {
        item.insert("region".into(), s(k.region.clone()));
    }
    // Who bills the line and on which invoice, each part only when known (absent reads as '').
    let billing = k.billing.parts();
    for (attribute, value) in [
        ("billing_account_id", billing.account_id),
        ("billing_account_name", billing.account_name),
        ("provider_name", billing.provider),
        ("publisher_name", billing.publisher),
        ("invoice_issuer_name", billing.invoice_issuer),
        ("invoice_id", billing.invoice_id),
    ] {
        if !value.is_empty() {
            item.insert(attribute.into(), s(value));
        }
    }
    insert_amounts(&mut item, &line.amounts);
    if let Some(at) = &line.attribution {
        item.insert("rule".into(), s(at.rule.clone()));
        item.insert("basis".into(), s(at.basis.clone()));
        if let Some(d) = &at.driver {
            item.insert("driver".into(), s(d.clone()));
        }
        item.insert("driver_quantity".into(), n(at.quantity));
        item.insert("driver_quantity_total".into(), n(at.quantity_total));
        item.insert("share".into(), n(at.share));
    }
    if let Some(r) = &line.unattributed_reason {
        item.insert("unattributed_reason".into(), s(r.clone()));
    }
    item.insert("version_tag".into(), s(stamp.tag.clone()));
    item.insert("base_tag".into(), s(stamp.base.clone()));
    item.insert("version_id".into(), s(stamp.version.id.clone()));
    item.insert("version_time".into(), s(rfc3339(&stamp.version.time)));
    item
}

/// The sort key of the `index`-th line of a version (in its tenant's partition, or in
/// [`POOL_PARTITION`] for the `index`-th pool line): `actual#<YYYY-MM>#<vtag>#<day>#<source>#<service>#<n>`.
/// A function of the line, its index and the version alone, so a writer recomputes its own keys
/// (to delete them, to check what reads back) instead of keeping them.
pub(super) fn line_sk(line: &CostLine, index: usize, stamp: &Stamp) -> String {
    format!(
        "{}{}#{}#{}#{index:08}",
        version_prefix(line.period, &stamp.tag),
        line.key.usage_date.format("%Y-%m-%d"),
        line.source().as_str(),
        truncated(&line.key.service, SK_SERVICE_MAX_BYTES)
    )
}

/// The index `n` a writer gave an item, read back from the end of its sort key (see [`line_sk`]).
pub(super) fn index_of_sk(sk: &str) -> Option<usize> {
    let (_, n) = sk.rsplit_once('#')?;
    if n.len() < 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The item of the `index`-th shared-pool line of an attributed period (see [`POOL_PARTITION`]):
/// a line item in the pool's partition, with `cost_source` `pool`.
pub(super) fn pool_item(line: &CostLine, index: usize, stamp: &Stamp) -> Item {
    let mut item = line_item(line, index, stamp);
    item.insert(PK.into(), s(POOL_PARTITION));
    item.insert("cost_source".into(), s("pool"));
    item
}

/// The pointer item of a period.
pub(super) fn pointer_item(p: &Pointer) -> Item {
    let r = &p.record;
    let mut item = Item::with_capacity(20);
    item.insert(PK.into(), s(PERIOD_PARTITION));
    item.insert(SK.into(), s(pointer_sk(r.period)));
    // `period`, not `month`: the pointer must stay out of the month-index GSI.
    item.insert("period".into(), s(r.period.to_string()));
    item.insert("version_tag".into(), s(p.tag.clone()));
    item.insert("version_id".into(), s(r.version.id.clone()));
    item.insert("version_time".into(), s(rfc3339(&r.version.time)));
    item.insert("format".into(), s(r.format.clone()));
    item.insert("delivery_source".into(), s(r.source.clone()));
    item.insert("files".into(), n_u64(r.files));
    item.insert("rows_read".into(), n_u64(r.rows_read));
    item.insert("split_child_rows".into(), n_u64(r.split_child_rows));
    item.insert("tag_key".into(), s(r.tag_key.clone()));
    if let Some(inputs) = &r.inputs {
        item.insert("inputs".into(), s(inputs.clone()));
    }
    item.insert("processed_at".into(), s(rfc3339(&r.processed_at)));
    item.insert("line_count".into(), n_u64(p.line_count));
    if p.pool_count > 0 {
        item.insert("pool_count".into(), n_u64(p.pool_count));
    }
    item.insert("invoice_ids".into(), AttributeValue::L(r.invoice.ids.iter().map(|x| s(x.clone())).collect()));
    if let Some(rows) = r.invoice.rows_without_id {
        item.insert("rows_without_invoice".into(), n_u64(rows));
    }
    item.insert("partitions".into(), AttributeValue::L(p.partitions.iter().map(|x| s(x.clone())).collect()));
    item
}

/// Typed access to an item's attributes; errors say which attribute and what was found.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn text(&self, k: &str) -> Result<String, String> {
        self.opt_text(k)?.ok_or_else(|| format!("attribute `{k}` is missing"))
    }

    fn opt_str(&self, k: &str) -> Result<Option<&str>, String> {
        match self.0.get(k) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            Some(other) => Err(format!("attribute `{k}` is {other:?}, expected a string")),
        }
    }

    /// A key field, shared through `names`.
    fn name(&self, k: &str, names: &mut Names) -> Result<Name, String> {
        Ok(names.get(self.opt_str(k)?.ok_or_else(|| format!("attribute `{k}` is missing"))?))
    }

    fn opt_text(&self, k: &str) -> Result<Option<String>, String> {
        match self.0.get(k) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(other) => Err(format!("attribute `{k}` is {other:?}, expected a string")),
        }
    }

    fn dec(&self, k: &str) -> Result<Decimal, String> {
        self.opt_dec(k)?.ok_or_else(|| format!("attribute `{k}` is missing"))
    }

    fn opt_dec(&self, k: &str) -> Result<Option<Decimal>, String> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => {
                parse_decimal(v).map(Some).ok_or_else(|| format!("attribute `{k}`: {v:?} is not a decimal"))
            }
            Some(other) => Err(format!("attribute `{k}` is {other:?}, expected a number")),
            None => Ok(None),
        }
    }

    fn u64(&self, k: &str) -> Result<u64, String> {
        self.opt_u64(k)?.ok_or_else(|| format!("attribute `{k}` is missing"))
    }

    fn opt_u64(&self, k: &str) -> Result<Option<u64>, String> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => {
                v.parse().map(Some).map_err(|_| format!("attribute `{k}`: {v:?} is not a whole number"))
            }
            Some(other) => Err(format!("attribute `{k}` is {other:?}, expected a number")),
            None => Ok(None),
        }
    }

    /// A list of strings; `None` when absent.
    fn strings(&self, k: &str) -> Result<Option<Vec<String>>, String> {
        match self.0.get(k) {
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| match v {
                    AttributeValue::S(p) => Ok(p.clone()),
                    other => Err(format!("attribute `{k}` holds {other:?}, expected strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(format!("attribute `{k}` is {other:?}, expected a list")),
            None => Ok(None),
        }
    }

    fn time(&self, k: &str) -> Result<DateTime<Utc>, String> {
        let t = self.text(k)?;
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("attribute `{k}`: {t:?} is not an RFC 3339 time"))
    }
}

/// DynamoDB returns numbers in plain notation; scientific notation is accepted too. Exact (the
/// workspace's one parser): a number with more digits than a `Decimal` holds is refused, not rounded.
fn parse_decimal(v: &str) -> Option<Decimal> {
    curflow_model::money::parse_decimal(v).ok()
}

/// `(partition, sort key)` of an item, for messages and deletes.
pub(super) fn key_of(item: &Item) -> Option<(String, String)> {
    match (item.get(PK), item.get(SK)) {
        (Some(AttributeValue::S(p)), Some(AttributeValue::S(s))) => Some((p.clone(), s.clone())),
        _ => None,
    }
}

/// A string attribute of an item, if it is one.
pub(super) fn text_of<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// The cost line of an item of `period`.
/// Key fields go through `names`, so a period's lines share one copy of each distinct value.
pub(super) fn decode_line(item: &Item, period: BillingPeriod, names: &mut Names) -> Result<CostLine, String> {
    let r = Reader(item);
    let month = r.text(MONTH)?;
    if month != period.to_string() {
        return Err(format!("item of month {month} read as part of {period}"));
    }
    let day = r.text("day")?;
    let usage_date =
        NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|_| format!("attribute `day`: {day:?} is not a date"))?;
    let attribution = match r.opt_text("rule")? {
        Some(rule) => Some(Attribution {
            rule: names.get(&rule),
            basis: names.get(&r.text("basis")?),
            driver: r.opt_text("driver")?.map(|d| names.get(&d)),
            quantity: r.dec("driver_quantity")?,
            quantity_total: r.dec("driver_quantity_total")?,
            share: r.dec("share")?,
        }),
        None => None,
    };
    Ok(CostLine {
        period,
        key: CostKey {
            usage_date,
            tenant: names.get_opt(r.opt_str("tenant")?),
            service: r.name("service", names)?,
            usage_type: r.name("usage_type", names)?,
            // Absent on items written before units were kept.
            usage_unit: names.get(r.opt_str("usage_unit")?.unwrap_or_default()),
            operation: r.name("operation", names)?,
            resource_id: r.name("resource_id", names)?,
            line_item_type: r.name("line_item_type", names)?,
            currency: r.name("currency", names)?,
            account_id: names.get(r.opt_str("usage_account_id")?.unwrap_or_default()),
            region: names.get(r.opt_str("region")?.unwrap_or_default()),
            account_name: names.get(r.opt_str("usage_account_name")?.unwrap_or_default()),
            billing: Billing::intern(
                BillingParts {
                    account_id: r.opt_str("billing_account_id")?.unwrap_or_default(),
                    account_name: r.opt_str("billing_account_name")?.unwrap_or_default(),
                    provider: r.opt_str("provider_name")?.unwrap_or_default(),
                    publisher: r.opt_str("publisher_name")?.unwrap_or_default(),
                    invoice_issuer: r.opt_str("invoice_issuer_name")?.unwrap_or_default(),
                    invoice_id: r.opt_str("invoice_id")?.unwrap_or_default(),
                },
                names,
            ),
        },
        amounts: Amounts {
            unblended_cost: r.dec("unblended_cost")?,
            net_unblended_cost: r.dec("net_unblended_cost")?,
            amortized_cost: r.dec("amortized_cost")?,
            ri_sp_trueup: r.dec("ri_sp_trueup")?,
            ri_sp_upfront_fees: r.dec("ri_sp_upfront_fees")?,
            usage_amount: r.dec("usage_amount")?,
            pricing_quantity: match r.opt_dec("pricing_quantity")? {
                Some(q) => q,
                None => r.dec("usage_amount")?,
            },
            line_items: r.u64("line_items")?,
            list_cost: r.opt_dec("list_cost")?.unwrap_or_default(),
            contracted_cost: r.opt_dec("contracted_cost")?.unwrap_or_default(),
        },
        attribution: attribution.map(Box::new),
        unattributed_reason: r.opt_text("unattributed_reason")?,
    })
}

/// The pointer of a period, from its item.
/// (Attribute by attribute, like [`decode_line`]: each decoder names the attributes of its own
/// item kind, as the layout table documents them.)
pub(super) fn decode_pointer(item: &Item) -> Result<Pointer, String> {
    let r = Reader(item);
    let period: BillingPeriod = r.text("period")?.parse()?;
    let partitions = r.strings("partitions")?.ok_or("attribute `partitions` is missing")?;
    Ok(Pointer {
        record: PeriodRecord {
            period,
            version: ReportVersion { id: r.text("version_id")?, time: r.time("version_time")? },
            format: r.text("format")?,
            source: r.text("delivery_source")?,
            files: r.u64("files")?,
            rows_read: r.u64("rows_read")?,
            split_child_rows: r.u64("split_child_rows")?,
            tag_key: r.text("tag_key")?,
            // Absent on pointers written before input fingerprints.
            inputs: r.opt_text("inputs")?,
            processed_at: r.time("processed_at")?,
            invoice: Invoices {
                ids: r.strings("invoice_ids")?.unwrap_or_default(),
                rows_without_id: r.opt_u64("rows_without_invoice")?,
            },
        },
        tag: r.text("version_tag")?,
        partitions,
        line_count: r.u64("line_count")?,
        pool_count: r.opt_u64("pool_count")?.unwrap_or(0),
    })
}

/// Orders lines as the SQLite store returns them: by key, then source.
pub(super) fn sort_lines(lines: &mut [CostLine]) {
    curflow_model::aggregate::sort_lines(lines);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn line(tenant: Option<&str>, unblended: &str) -> CostLine {
        let d = Decimal::from_str(unblended).unwrap();
        CostLine::new(
            BillingPeriod::new(2026, 10).unwrap(),
            CostKey {
                usage_unit: "ReadRequestUnits".into(),
                ..curflow_model::testing::cost_key(
                    NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
                    tenant,
                    "AmazonDynamoDB",
                    "USE1-ReadRequestUnits",
                )
            },
            Amounts {
                unblended_cost: d,
                net_unblended_cost: -d,
                amortized_cost: Decimal::from_str("0.000000000001").unwrap(),
                ri_sp_trueup: Decimal::ZERO,
                ri_sp_upfront_fees: Decimal::from_str("1.50").unwrap(),
                usage_amount: Decimal::from_str("123456789012345678.0123456789").unwrap(),
                pricing_quantity: Decimal::from_str("723456789012345678.0123456789").unwrap(),
                line_items: 7,
                list_cost: Decimal::from_str("0.000000000003").unwrap(),
                contracted_cost: Decimal::from_str("-0.000000000004").unwrap(),
            },
        )
    }

    fn stamp() -> Stamp {
        Stamp {
            tag: "0123456789abcdef".into(),
            base: NO_BASE.into(),
            version: ReportVersion { id: "v1".into(), time: DateTime::from_timestamp(1_790_000_000, 5).unwrap() },
        }
    }

    #[test]
    fn lines_round_trip_exactly_including_attribution_and_empty_strings() {
        let mut attributed = line(Some("acct-1"), "0.333333333334");
        attributed.attribution = Some(Box::new(Attribution {
            rule: "lambda".into(),
            basis: "usage_driver".into(),
            driver: Some("lambda_gb_seconds".into()),
            quantity: Decimal::from_str("12.5").unwrap(),
            quantity_total: Decimal::from_str("37.5").unwrap(),
            share: Decimal::from_str("0.333333333333").unwrap(),
        }));
        let mut shared = line(None, "-2.000000000001");
        shared.unattributed_reason = Some(String::new());
        for (i, l) in [line(Some("acct-0"), "0.001"), attributed, shared].into_iter().enumerate() {
            let item = line_item(&l, i, &stamp());
            assert_eq!(decode_line(&item, l.period, &mut Names::default()).unwrap(), l);
            let sk = text_of(&item, SK).unwrap();
            assert!(sk.starts_with("actual#2026-10#0123456789abcdef#2026-10-03#"), "{sk}");
            // A writer recomputes its keys, and a reader finds the line an item stands for.
            assert_eq!(sk, line_sk(&l, i, &stamp()));
            assert_eq!(index_of_sk(sk), Some(i));
            assert_eq!(text_of(&pool_item(&l, i, &stamp()), SK), Some(sk), "a pool item's key is its line's");
        }
        let far = line(Some("acct-0"), "1");
        assert_eq!(index_of_sk(&line_sk(&far, 123_456_789, &stamp())), Some(123_456_789), "beyond 8 digits");
        // A service name with `#` in it does not move the index.
        let mut hashed = line(Some("acct-0"), "1");
        hashed.key.service = "a#b#00000007".into();
        assert_eq!(index_of_sk(&line_sk(&hashed, 42, &stamp())), Some(42));
        for bad in ["actual#2026-10", "actual#x#1234567", "actual#x#1234567a", "actual#x#"] {
            assert_eq!(index_of_sk(bad), None, "{bad}");
        }
        assert_eq!(partition_of(&line(None, "1")), SHARED_PARTITION);
        for (tenant, partition) in [
            ("acct-1", "acct-1"),
            ("123456789012", "123456789012"),
            ("a#b", "a#b"),
            ("UNATTRIBUTED", "UNATTRIBUTED"),
            ("_shared", "~_shared"),
            ("_period", "~_period"),
            ("_budget", "~_budget"),
            ("~x", "~~x"),
            ("x_", "x_"),
        ] {
            assert_eq!(partition_of(&line(Some(tenant), "1")), partition, "{tenant}");
            assert_eq!(tenant_of_partition(partition), tenant);
            let item = line_item(&line(Some(tenant), "1"), 0, &stamp());
            let back = decode_line(&item, BillingPeriod::new(2026, 10).unwrap(), &mut Names::default()).unwrap();
            assert_eq!(back.key.tenant.as_deref(), Some(tenant));
        }
        assert_eq!(partition_of(&line(Some(""), "1")), SHARED_PARTITION);
        let item = line_item(&line(Some(""), "1"), 0, &stamp());
        assert_eq!(
            decode_line(&item, BillingPeriod::new(2026, 10).unwrap(), &mut Names::default())
                .unwrap()
                .key
                .tenant
                .as_deref(),
            Some("")
        );
    }

    /// The pricing quantity is written only where it differs from the usage amount (every
    /// consumption line leaves it out: no bytes, no write units) and reads back either way.
    #[test]
    fn a_pricing_quantity_equal_to_the_usage_amount_is_left_out_and_reads_back() {
        let mut consumption = line(Some("acct-1"), "1");
        consumption.amounts.pricing_quantity = consumption.amounts.usage_amount;
        let item = line_item(&consumption, 0, &stamp());
        assert!(!item.contains_key("pricing_quantity"));
        assert_eq!(decode_line(&item, consumption.period, &mut Names::default()).unwrap(), consumption);
        let fee = line(Some("acct-1"), "1");
        let item = line_item(&fee, 0, &stamp());
        assert!(item.contains_key("pricing_quantity"));
        assert_eq!(decode_line(&item, fee.period, &mut Names::default()).unwrap(), fee);
    }

    #[test]
    fn pointers_round_trip_and_corrupt_numbers_are_reported() {
        let p = Pointer {
            record: PeriodRecord {
                period: BillingPeriod::new(2026, 10).unwrap(),
                version: stamp().version,
                format: "legacy CUR Parquet".into(),
                source: "s3://b/m.json".into(),
                files: 3,
                rows_read: 5000,
                split_child_rows: 2,
                tag_key: "accountant_id".into(),
                inputs: Some("3f2a".into()),
                processed_at: DateTime::from_timestamp(1_790_000_100, 123).unwrap(),
                invoice: Invoices { ids: vec!["EUINGB26-1".into(), "EUINGB26-2".into()], rows_without_id: Some(0) },
            },
            tag: "t".into(),
            partitions: vec!["_shared".into(), "acct-1".into()],
            line_count: 42,
            pool_count: 3,
        };
        let item = pointer_item(&p);
        assert!(!item.contains_key(MONTH), "pointers stay out of the month GSI");
        assert_eq!(decode_pointer(&item).unwrap(), p);
        let mut bad = line_item(&line(Some("a"), "1"), 0, &stamp());
        bad.insert("unblended_cost".into(), AttributeValue::N("1.2.3".into()));
        assert!(
            decode_line(&bad, BillingPeriod::new(2026, 10).unwrap(), &mut Names::default())
                .unwrap_err()
                .contains("unblended_cost")
        );
        assert_eq!(parse_decimal("1E-12"), Some(Decimal::from_str("0.000000000001").unwrap()));
    }
}
