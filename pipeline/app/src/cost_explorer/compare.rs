//! `curflow ce compare`: a month's totals per service and per tenant tag from Cost Explorer beside
//! the stored ones, with the differences — the tie-out of the CUR against the console that is otherwise done by hand.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_costexplorer::types::{Granularity, ResultByTime};
use rust_decimal::Decimal;
use serde::Serialize;

use super::SyncError;
use super::limiter::{self, Limiter};
use super::parse::{PageError, tenant_of_tag};
use crate::aws::{AwsError, AwsErrorKind, AwsSettings};
use crate::config::Account;
use crate::money::{exact_add, exact_sub, parse_decimal};
use crate::period::BillingPeriod;
use crate::store::Store;

/// When a difference is flagged: above `threshold_pct` of the larger side and above `min_amount`.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub period: BillingPeriod,
    /// Tenant tag key (`tag-key`).
    pub tag_key: String,
    pub aws: AwsSettings,
    pub threshold_pct: Decimal,
    pub min_amount: Decimal,
    pub requests_per_second: Decimal,
    pub request_budget: u64,
}

/// One service or tenant of the month in one currency.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CompareRow {
    /// `service` or `tenant`.
    pub level: String,
    /// The service, or the tenant (`UNATTRIBUTED`: the resources without the tag; on the stored
    /// side, also the tenants' attributed shares of the pool, which Cost Explorer cannot know).
    pub key: String,
    pub currency: String,
    /// Unblended cost Cost Explorer reports for the month, summed over the accounts.
    pub cost_explorer: Decimal,
    /// Unblended cost of the stored period.
    pub stored: Decimal,
    /// `stored - cost_explorer`.
    pub difference: Decimal,
    pub flagged: bool,
}

/// The comparison of one month.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub period: BillingPeriod,
    /// The stored version compared (`None`: nothing stored for the month).
    pub stored_version: Option<String>,
    pub rows: Vec<CompareRow>,
    pub requests: u64,
    pub requests_cost: Decimal,
}

/// Per (level, service or tenant, currency) totals, exact.
type Totals = BTreeMap<(String, String, String), Decimal>;

/// The tenant label of lines without a tenant (as `costs` prints it).
const POOL: &str = crate::output::UNATTRIBUTED;

/// Adds `amount` to the service's and the tenant's totals.
fn add_both(totals: &mut Totals, service: &str, tenant: Option<&str>, currency: &str, amount: Decimal) -> Option<()> {
    for (level, key) in [("service", service), ("tenant", tenant.unwrap_or(POOL))] {
        let slot = totals.entry((level.to_string(), key.to_string(), currency.to_string())).or_default();
        *slot = exact_add(*slot, amount)?;
    }
    Some(())
}

/// Compares the month's per-service unblended cost of `accounts` in Cost Explorer with the store.
/// Any account failing fails the comparison: a missing account would flag every service it uses.
pub async fn compare(
    store: &dyn Store,
    accounts: &[Account],
    options: &CompareOptions,
) -> crate::Result<CompareReport> {
    let mut limiter = Limiter::new(options.requests_per_second, options.request_budget);
    let mut from_ce = Totals::new();
    for account in accounts {
        fetch_month(account, options, &mut limiter, &mut from_ce).await.map_err(|e| match e {
            SyncError::Aws(aws) => crate::Error::Aws(aws),
            other => crate::Error::Aws(AwsError::new(
                "Cost Explorer",
                "GetCostAndUsage",
                &account.name,
                other.to_string(),
                AwsErrorKind::Rejected,
            )),
        })?;
    }
    let record = store.period(options.period).await?;
    let mut stored = Totals::new();
    for line in store.cost_lines(options.period).await? {
        // An attributed share is pool cost to Cost Explorer (the resource has no tenant tag).
        let tenant = if line.attribution.is_some() { None } else { line.key.tenant.as_deref() };
        add_both(&mut stored, &line.key.service, tenant, &line.key.currency, line.amounts.unblended_cost)
            .ok_or_else(|| crate::Error::Internal(format!("stored {} total has no exact Decimal", line.key.service)))?;
    }
    let rows = rows(&from_ce, &stored, options)?;
    let requests = limiter.made();
    Ok(CompareReport {
        period: options.period,
        stored_version: record.map(|r| r.version.id),
        rows,
        requests,
        requests_cost: limiter::cost_of(requests),
    })
}

/// One row per service on either side; flagged when the difference is above both thresholds.
fn rows(from_ce: &Totals, stored: &Totals, options: &CompareOptions) -> crate::Result<Vec<CompareRow>> {
    let keys: BTreeSet<&(String, String, String)> = from_ce.keys().chain(stored.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let ce = from_ce.get(key).copied().unwrap_or_default();
            let st = stored.get(key).copied().unwrap_or_default();
            let difference =
                exact_sub(st, ce).ok_or_else(|| crate::Error::Internal(format!("{st} - {ce} has no exact Decimal")))?;
            let larger = ce.abs().max(st.abs());
            let relative_limit = larger * options.threshold_pct / Decimal::ONE_HUNDRED;
            let flagged = difference.abs() > options.min_amount && difference.abs() > relative_limit;
            Ok(CompareRow {
                level: key.0.clone(),
                key: key.1.clone(),
                currency: key.2.clone(),
                cost_explorer: ce,
                stored: st,
                difference,
                flagged,
            })
        })
        .collect()
}

/// Adds the account's month per service and tenant (MONTHLY, grouped by SERVICE and the tenant
/// TAG, every page) to `totals`.
async fn fetch_month(
    account: &Account,
    options: &CompareOptions,
    limiter: &mut Limiter,
    totals: &mut Totals,
) -> Result<(), SyncError> {
    let (first, next) = (options.period.first_day(), options.period.next().first_day());
    let query = super::CostQuery {
        interval: super::date_interval(first, next, account, "GetCostAndUsage")?,
        granularity: Granularity::Monthly,
        metrics: &["UnblendedCost"],
        tag_key: &options.tag_key,
    };
    super::each_cost_page(account, &options.aws, limiter, &query, |results| {
        add_totals(results, &options.tag_key, totals)
    })
    .await
}

/// Adds the unblended cost of each (SERVICE, TAG) group of monthly results to `totals`.
pub fn add_totals(results: &[ResultByTime], tag_key: &str, totals: &mut Totals) -> Result<(), PageError> {
    for result in results {
        let day = result
            .time_period()
            .and_then(|p| chrono::NaiveDate::parse_from_str(p.start(), "%Y-%m-%d").ok())
            .unwrap_or_default();
        for group in result.groups() {
            let keys = group.keys().to_vec();
            let [service, tag] = group.keys() else {
                return Err(PageError::GroupKeys { found: keys.len(), keys });
            };
            let tenant = tenant_of_tag(tag, tag_key)?;
            let metric = group
                .metrics()
                .and_then(|m| m.get("UnblendedCost"))
                .ok_or_else(|| PageError::MissingMetric { keys: keys.clone(), day, metric: "UnblendedCost" })?;
            let text = metric.amount().unwrap_or_default();
            let amount = parse_decimal(text).map_err(|source| PageError::Amount {
                keys: keys.clone(),
                day,
                metric: "UnblendedCost",
                amount: text.to_string(),
                source,
            })?;
            let currency = metric.unit().unwrap_or_default();
            add_both(totals, service, tenant.as_deref(), currency, amount).ok_or_else(|| PageError::Sum {
                keys: keys.clone(),
                day,
                source: crate::error::ModelError::Overflow { what: format!("the Cost Explorer total of {service}") },
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn options() -> CompareOptions {
        CompareOptions {
            period: "2026-10".parse().unwrap(),
            tag_key: "accountant_id".into(),
            aws: AwsSettings::default(),
            threshold_pct: Decimal::ONE,
            min_amount: Decimal::new(1, 2),
            requests_per_second: Decimal::ONE,
            request_budget: 1,
        }
    }

    #[test]
    fn only_differences_above_both_thresholds_are_flagged() {
        let k = |s: &str| ("service".to_string(), s.to_string(), "USD".to_string());
        let ce: Totals =
            [(k("EC2"), Decimal::from(1000)), (k("S3"), Decimal::new(5, 3)), (k("Lambda"), Decimal::from(10))].into();
        let stored: Totals =
            [(k("EC2"), Decimal::new(100_500, 2)), (k("S3"), Decimal::new(2, 2)), (k("SQS"), Decimal::from(2))].into();
        let rows = rows(&ce, &stored, &options()).unwrap();
        let flagged: Vec<&str> = rows.iter().filter(|r| r.flagged).map(|r| r.key.as_str()).collect();
        // EC2: 5.00 of 1005 is under 1 %; S3: 0.015 is above 0.01 and above 1 % of 0.02.
        assert_eq!(flagged, ["Lambda", "S3", "SQS"]);
        assert_eq!(rows.iter().find(|r| r.key == "Lambda").unwrap().difference, Decimal::from(-10));
    }
}
