//! Tenants' attributed parts summed at the grain a reader needs.
//!
//! Splitting a shared line gives one part per tenant. Stored one row per (shared line × tenant),
//! a 10,000-tenant month with 1,000 shared lines a day is 310 million rows, and every CUR refresh
//! rewrites them. No reader needs that: costs, reports and reconciliation read a tenant's cost per
//! day, service, usage type, line-item type and rule. So the parts are summed per
//! ([`CostKey`] without operation and resource id, rule, basis, driver): one row per tenant, day,
//! service, usage type, unit, line-item type, currency, account, region and rule. The shared-pool
//! lines themselves are stored once beside them (`CostStore::replace_split_period`), so a period
//! can be split again and explained per resource without the CUR.
//!
//! The sums are exact ([`Amounts::add`]); the driver quantities a row shows are those of its parts
//! when they all agree (a per-day driver gives every line of a day the same weights), otherwise the
//! sums of the parts' quantities and totals, with the share recomputed from them (display only).

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::aggregate::{Amounts, Attribution, CostKey, CostLine};
use crate::error::Result;
use crate::money::MONEY_SCALE;
use crate::period::BillingPeriod;
use curflow_model::{Name, Names};

/// The reader's grain of an attributed part: its key without operation and resource id, and the
/// rule (with basis and driver) that routed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GrainKey {
    key: CostKey,
    rule: Name,
    basis: Name,
    driver: Option<Name>,
}

/// A row being summed, and whether its parts' driver quantities all agreed so far.
struct GrainRow {
    period: BillingPeriod,
    amounts: Amounts,
    attribution: Attribution,
    uniform: bool,
}

/// Attributed parts summed at the reader's grain (see the module docs).
#[derive(Default)]
pub(crate) struct ReaderGrain {
    rows: HashMap<GrainKey, GrainRow>,
    /// Parts added: the rows a store would hold at one row per (shared line × tenant).
    parts: u64,
    /// The empty name, shared by every row's operation and resource id.
    names: Names,
}

impl ReaderGrain {
    /// Adds one tenant's part of a shared line (a line with an attribution).
    pub(crate) fn add(&mut self, part: CostLine) -> Result<()> {
        let Some(attribution) = part.attribution else {
            return Err(crate::error::Error::Internal(format!("{:?} is not an attributed part", part.key)));
        };
        self.parts += 1;
        let empty = self.names.get("");
        let key = GrainKey {
            key: CostKey { operation: empty.clone(), resource_id: empty, ..part.key },
            rule: attribution.rule.clone(),
            basis: attribution.basis.clone(),
            driver: attribution.driver.clone(),
        };
        match self.rows.get_mut(&key) {
            Some(row) => row.merge(&part.amounts, &attribution)?,
            None => {
                let row =
                    GrainRow { period: part.period, amounts: part.amounts, attribution: *attribution, uniform: true };
                self.rows.insert(key, row);
            }
        }
        Ok(())
    }

    /// Parts added so far.
    pub(crate) fn parts(&self) -> u64 {
        self.parts
    }

    /// The summed rows, in no particular order ([`sort_rows`] orders them). A row whose parts
    /// cancel out (every amount and the line-item count zero) carries nothing and is left out.
    pub(crate) fn into_lines(self) -> Vec<CostLine> {
        self.rows
            .into_iter()
            .filter(|(_, row)| !is_empty(&row.amounts))
            .map(|(key, row)| CostLine {
                period: row.period,
                key: key.key,
                amounts: row.amounts,
                attribution: Some(Box::new(row.attribution)),
                unattributed_reason: None,
            })
            .collect()
    }
}

/// Whether a summed row carries nothing: every amount and the line-item count zero.
pub(crate) fn is_empty(a: &Amounts) -> bool {
    a.line_items == 0
        && a.usage_amount.is_zero()
        && a.pricing_quantity.is_zero()
        && a.money().iter().all(|(_, v)| v.is_zero())
}

/// An attributed row's rule, basis and driver.
type Routing<'a> = Option<(&'a str, &'a str, Option<&'a str>)>;

/// Orders rows at the reader's grain (and the per-line remainders among them) by key, rule, basis
/// and driver: unique per row, so the unstable (in-place, no buffer) sort gives one order.
pub(crate) fn sort_rows(rows: &mut [CostLine]) {
    fn order(l: &CostLine) -> (&CostKey, Routing<'_>) {
        (&l.key, l.attribution.as_deref().map(|a| (a.rule.as_str(), a.basis.as_str(), a.driver.as_deref())))
    }
    rows.sort_unstable_by(|a, b| order(a).cmp(&order(b)));
}

impl GrainRow {
    fn merge(&mut self, amounts: &Amounts, part: &Attribution) -> Result<()> {
        self.amounts.add(amounts)?;
        let a = &mut self.attribution;
        if self.uniform && (a.quantity, a.quantity_total) == (part.quantity, part.quantity_total) {
            return Ok(());
        }
        if self.uniform {
            // The first disagreement: from here on the row shows sums of its parts' quantities.
            self.uniform = false;
        }
        let add = |x: Decimal, y: Decimal, what: &str| {
            crate::aggregate::add_exact(x, y, || format!("the {what} of rule {} on {:?}", part.rule, part.basis))
        };
        a.quantity = add(a.quantity, part.quantity, "driver quantity")?;
        a.quantity_total = add(a.quantity_total, part.quantity_total, "total driver quantity")?;
        a.share = if a.quantity_total.is_zero() {
            Decimal::ZERO
        } else {
            a.quantity.checked_div(a.quantity_total).map_or(Decimal::ZERO, |s| s.round_dp(MONEY_SCALE))
        };
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::money::testing::d;
    use curflow_model::testing::cost_key;

    fn part(resource: &str, tenant: &str, rule: &str, amount: &str, q: &str, total: &str) -> CostLine {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
        let mut key = cost_key(day, Some(tenant), "AWSLambda", "Lambda-GB-Second");
        key.resource_id = resource.into();
        key.operation = "Invoke".into();
        let amounts =
            Amounts { unblended_cost: d(amount), amortized_cost: d(amount), line_items: 1, ..Default::default() };
        let mut line = CostLine::new("2026-10".parse().unwrap(), key, amounts);
        line.attribution = Some(Box::new(Attribution {
            rule: rule.into(),
            basis: "usage_driver".into(),
            driver: Some("lambda_gb_seconds".into()),
            quantity: d(q),
            quantity_total: d(total),
            share: d(q) / d(total),
        }));
        line
    }

    #[test]
    fn parts_of_many_resources_become_one_row_per_tenant_and_rule() {
        let mut grain = ReaderGrain::default();
        for (resource, amount) in [("fn-a", "1.25"), ("fn-b", "0.000000000001"), ("fn-c", "3")] {
            grain.add(part(resource, "t1", "lambda", amount, "2", "8")).unwrap();
            grain.add(part(resource, "t2", "lambda", amount, "6", "8")).unwrap();
        }
        grain.add(part("bucket", "t1", "s3", "5", "1", "2")).unwrap();
        let mut lines = grain.into_lines();
        sort_rows(&mut lines);
        assert_eq!(lines.len(), 3);
        let t1: Vec<_> = lines.iter().filter(|l| l.key.tenant.as_deref() == Some("t1")).collect();
        assert_eq!(t1[0].attribution.as_ref().unwrap().rule, "lambda");
        assert_eq!(t1[0].amounts.unblended_cost, d("4.250000000001"));
        assert_eq!(t1[0].amounts.line_items, 3);
        assert_eq!(t1[0].key.resource_id.as_str(), "");
        assert_eq!(t1[0].key.operation.as_str(), "");
        // Every part had the same weights: the row shows them as they were.
        let a = t1[0].attribution.as_ref().unwrap();
        assert_eq!((a.quantity, a.quantity_total), (d("2"), d("8")));
        assert_eq!(t1[1].attribution.as_ref().unwrap().rule, "s3");
    }

    #[test]
    fn parts_with_different_weights_show_summed_quantities() {
        let mut grain = ReaderGrain::default();
        grain.add(part("fn-a", "t1", "lambda", "1", "1", "4")).unwrap();
        grain.add(part("fn-b", "t1", "lambda", "1", "3", "4")).unwrap();
        let lines = grain.into_lines();
        let a = lines[0].attribution.as_ref().unwrap();
        assert_eq!((a.quantity, a.quantity_total, a.share), (d("4"), d("8"), d("0.5")));
    }
}
