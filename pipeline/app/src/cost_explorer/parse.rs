//! Pure reading of `GetCostAndUsage` results into cost lines: tag group keys, exact amounts from
//! the API's strings, one line per (day, tenant, service, account).

use std::collections::BTreeMap;

use aws_sdk_costexplorer::types::{Group, MetricValue, ResultByTime};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::aggregate::{Amounts, CostKey, CostLine};
use crate::money::parse_decimal;
use crate::period::BillingPeriod;

/// The metrics every request asks for, in the order the lines use them.
pub const METRICS: [&str; 4] = ["UnblendedCost", "NetUnblendedCost", "AmortizedCost", "UsageQuantity"];

/// `line_item_type` of every line synced from Cost Explorer: not a CUR line-item type (Cost
/// Explorer sums usage, credits, tax and fees into one amount), so no CUR rule ever matches it.
pub const LINE_ITEM_TYPE: &str = "CostExplorer";

/// A result Cost Explorer returned that curflow cannot read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("group key {key:?} is not the tag `{tag_key}`: expected `{tag_key}$VALUE`")]
    TagKey { key: String, tag_key: String },
    #[error("group {keys:?} has {found} keys; expected 2 (SERVICE, TAG)")]
    GroupKeys { keys: Vec<String>, found: usize },
    #[error("result without a time period or with a start {start:?} that is not YYYY-MM-DD")]
    Day { start: String },
    #[error("group {keys:?} on {day}: metric {metric} is missing")]
    MissingMetric { keys: Vec<String>, day: NaiveDate, metric: &'static str },
    #[error("group {keys:?} on {day}: metric {metric} amount {amount:?} is not an exact decimal")]
    Amount {
        keys: Vec<String>,
        day: NaiveDate,
        metric: &'static str,
        amount: String,
        #[source]
        source: crate::money::MoneyError,
    },
    #[error("group {keys:?} on {day}: cost metrics in different currencies ({units:?})")]
    Currencies { keys: Vec<String>, day: NaiveDate, units: Vec<String> },
    #[error("adding up group {keys:?} on {day}")]
    Sum {
        keys: Vec<String>,
        day: NaiveDate,
        #[source]
        source: crate::error::ModelError,
    },
}

/// The tenant of a `TAG` group key: `accountant_id$acme` is `acme`; `accountant_id$` (the
/// resources without the tag) is `None`, the shared pool.
pub fn tenant_of_tag(key: &str, tag_key: &str) -> Result<Option<String>, PageError> {
    let bad = || PageError::TagKey { key: key.to_string(), tag_key: tag_key.to_string() };
    let value = key.strip_prefix(tag_key).and_then(|rest| rest.strip_prefix('$')).ok_or_else(bad)?;
    Ok((!value.is_empty()).then(|| value.to_string()))
}

/// Lines of one account, merged by key (two pages naming one key add up exactly).
#[derive(Debug, Default)]
pub struct AccountLines {
    pub lines: BTreeMap<CostKey, Amounts>,
    /// Periods with at least one result Cost Explorer marks `Estimated` (the month is not final).
    pub estimated: std::collections::BTreeSet<BillingPeriod>,
}

impl AccountLines {
    /// Adds the results of one page.
    pub fn add_page(&mut self, results: &[ResultByTime], account_id: &str, tag_key: &str) -> Result<(), PageError> {
        for result in results {
            let start = result.time_period().map(|p| p.start()).unwrap_or_default();
            let day = NaiveDate::parse_from_str(start, "%Y-%m-%d")
                .map_err(|_| PageError::Day { start: start.to_string() })?;
            if result.estimated() {
                self.estimated.insert(BillingPeriod::containing(day));
            }
            for group in result.groups() {
                let (key, amounts) = line_of(group, day, account_id, tag_key)?;
                match self.lines.get_mut(&key) {
                    Some(a) => {
                        a.add(&amounts).map_err(|source| PageError::Sum { keys: group.keys().to_vec(), day, source })?
                    }
                    None => {
                        self.lines.insert(key, amounts);
                    }
                }
            }
        }
        Ok(())
    }

    /// The lines, each in its billing period.
    pub fn into_lines(self) -> Vec<CostLine> {
        self.lines
            .into_iter()
            .map(|(key, amounts)| CostLine::new(BillingPeriod::containing(key.usage_date), key, amounts))
            .collect()
    }
}

/// One group of a daily result as a key and its amounts. The line's `account_id` is the connected
/// account's: it tells which account a line came from, so a later sync of one account replaces
/// only that account's lines.
fn line_of(group: &Group, day: NaiveDate, account_id: &str, tag_key: &str) -> Result<(CostKey, Amounts), PageError> {
    let keys = group.keys();
    let [service, tag] = keys else {
        return Err(PageError::GroupKeys { keys: keys.to_vec(), found: keys.len() });
    };
    let tenant = tenant_of_tag(tag, tag_key)?;
    let metric = |name: &'static str| -> Result<&MetricValue, PageError> {
        group.metrics().and_then(|m| m.get(name)).ok_or_else(|| PageError::MissingMetric {
            keys: keys.to_vec(),
            day,
            metric: name,
        })
    };
    let amount = |name: &'static str| -> Result<Decimal, PageError> {
        let text = metric(name)?.amount().unwrap_or_default();
        parse_decimal(text).map_err(|source| PageError::Amount {
            keys: keys.to_vec(),
            day,
            metric: name,
            amount: text.to_string(),
            source,
        })
    };
    let units: Vec<String> =
        METRICS[..3].iter().map(|m| Ok(metric(m)?.unit().unwrap_or_default().to_string())).collect::<Result<_, _>>()?;
    if units.iter().any(|u| u != &units[0]) {
        return Err(PageError::Currencies { keys: keys.to_vec(), day, units });
    }
    let usage = metric("UsageQuantity")?;
    let key = CostKey {
        usage_date: day,
        tenant: tenant.map(Into::into),
        service: service.as_str().into(),
        usage_type: "".into(),
        usage_unit: usage.unit().unwrap_or_default().into(),
        operation: "".into(),
        resource_id: "".into(),
        line_item_type: LINE_ITEM_TYPE.into(),
        currency: units[0].as_str().into(),
        account_id: account_id.into(),
        account_name: "".into(),
        region: "".into(),
        billing: Default::default(),
    };
    let amounts = Amounts {
        unblended_cost: amount("UnblendedCost")?,
        net_unblended_cost: amount("NetUnblendedCost")?,
        amortized_cost: amount("AmortizedCost")?,
        ri_sp_trueup: Decimal::ZERO,
        ri_sp_upfront_fees: Decimal::ZERO,
        usage_amount: amount("UsageQuantity")?,
        // Cost Explorer's lines mix line-item types: its usage quantity is all the pricing
        // quantity curflow can know of them.
        pricing_quantity: amount("UsageQuantity")?,
        line_items: 1,
        // Cost Explorer has no list-price metric: the lines of `--source cost-explorer` have none.
        list_cost: Decimal::ZERO,
        // Nor a contracted-price one, and its lines mix line-item types, so the CUR rule
        // (`cur_contracted_cost`, per type) cannot be applied either: 0.
        contracted_cost: Decimal::ZERO,
    };
    Ok((key, amounts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_sdk_costexplorer::types::DateInterval;

    fn metric(amount: &str, unit: &str) -> MetricValue {
        MetricValue::builder().amount(amount).unit(unit).build()
    }

    fn group(service: &str, tag: &str, cost: &str) -> Group {
        Group::builder()
            .keys(service)
            .keys(tag)
            .metrics("UnblendedCost", metric(cost, "USD"))
            .metrics("NetUnblendedCost", metric(cost, "USD"))
            .metrics("AmortizedCost", metric("1E-10", "USD"))
            .metrics("UsageQuantity", metric("3", "Hrs"))
            .build()
    }

    fn day(start: &str, estimated: bool, groups: Vec<Group>) -> ResultByTime {
        ResultByTime::builder()
            .time_period(DateInterval::builder().start(start).end("x").build().unwrap())
            .set_groups(Some(groups))
            .estimated(estimated)
            .build()
    }

    #[test]
    fn tag_keys_name_the_tenant_and_an_empty_value_is_the_shared_pool() {
        assert_eq!(tenant_of_tag("accountant_id$acme", "accountant_id").unwrap(), Some("acme".into()));
        assert_eq!(tenant_of_tag("accountant_id$a$b", "accountant_id").unwrap(), Some("a$b".into()));
        assert_eq!(tenant_of_tag("accountant_id$", "accountant_id").unwrap(), None);
        assert!(tenant_of_tag("team$acme", "accountant_id").is_err());
        assert!(tenant_of_tag("accountant_idx$acme", "accountant_id").is_err());
    }

    #[test]
    fn pages_add_up_exactly_per_key_and_mark_estimated_months() {
        let mut lines = AccountLines::default();
        let page1 = [day("2026-10-01", false, vec![group("Amazon EC2", "accountant_id$acme", "0.1000000001")])];
        let page2 = [
            day("2026-10-01", true, vec![group("Amazon EC2", "accountant_id$acme", "0.2000000002")]),
            day("2026-10-02", false, vec![group("AWS Lambda", "accountant_id$", "5")]),
        ];
        lines.add_page(&page1, "111111111111", "accountant_id").unwrap();
        lines.add_page(&page2, "111111111111", "accountant_id").unwrap();
        assert_eq!(lines.estimated.iter().map(ToString::to_string).collect::<Vec<_>>(), ["2026-10"]);
        let out = lines.into_lines();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].amounts.unblended_cost.to_string(), "0.3000000003");
        assert_eq!(out[0].amounts.amortized_cost.to_string(), "2E-10".parse::<Decimal>().unwrap().to_string());
        assert_eq!(out[0].key.tenant.as_deref(), Some("acme"));
        assert_eq!((out[0].key.account_id.as_str(), out[0].key.usage_unit.as_str()), ("111111111111", "Hrs"));
        assert_eq!(out[1].key.tenant, None);
    }

    #[test]
    fn unreadable_amounts_and_mixed_currencies_are_refused() {
        let mut lines = AccountLines::default();
        let bad = [day("2026-10-01", false, vec![group("S3", "accountant_id$a", "1.2.3")])];
        let e = lines.add_page(&bad, "1", "accountant_id").unwrap_err();
        assert!(e.to_string().contains("UnblendedCost amount \"1.2.3\""), "{e}");
        let mut g = group("S3", "accountant_id$a", "1");
        g = Group::builder()
            .set_keys(Some(g.keys().to_vec()))
            .set_metrics(g.metrics().cloned())
            .metrics("AmortizedCost", metric("1", "EUR"))
            .build();
        assert!(matches!(
            lines.add_page(&[day("2026-10-01", false, vec![g])], "1", "accountant_id"),
            Err(PageError::Currencies { .. })
        ));
    }
}
