//! Share policies: how a shared line's weights per tenant are chosen.
//!
//! The order of preference follows attribution-and-style.md §B.1: a *usage* driver of the same resource
//! ([`SharePolicy::Proportional`]) whenever one exists; [`SharePolicy::WeightedByDirectCost`] only as the
//! fallback for lines that have no usage of their own (tax, support, credits, CloudWatch, KMS);
//! [`SharePolicy::Even`] and [`SharePolicy::Fixed`] when the operator says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::driver::{DirectCosts, Driver, DriverTotals};
use crate::money::MoneyError;
use crate::tenant::TenantId;

/// Which days of driver evidence weigh a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The line's own UTC day (CUR lines are daily): the default.
    #[default]
    Day,
    /// Every day of the evidence (the whole period): for monthly charges dated on one day.
    Period,
}

/// How a shared line is split between tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharePolicy {
    /// Proportional to each tenant's quantity of a usage driver over the window.
    Proportional { driver: Driver, window: Window },
    /// Proportional to each tenant's direct (tagged) cost in the period; negative direct costs (a tenant
    /// whose credits exceed its charges) weigh 0.
    WeightedByDirectCost,
    /// Equal parts for every known tenant (the caller's tenant set).
    Even,
    /// Fixed, configured weights (need not sum to 1).
    Fixed(BTreeMap<TenantId, Decimal>),
}

impl SharePolicy {
    /// The usage driver, for proportional policies.
    pub fn driver(&self) -> Option<Driver> {
        match self {
            SharePolicy::Proportional { driver, .. } => Some(*driver),
            _ => None,
        }
    }

    /// A short stable name (`proportional`, `weighted_by_direct_cost`, `even`, `fixed`).
    pub fn name(&self) -> &'static str {
        match self {
            SharePolicy::Proportional { .. } => "proportional",
            SharePolicy::WeightedByDirectCost => "weighted_by_direct_cost",
            SharePolicy::Even => "even",
            SharePolicy::Fixed(_) => "fixed",
        }
    }
}

impl fmt::Display for SharePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharePolicy::Proportional { driver, window: Window::Day } => write!(f, "proportional to {driver} (day)"),
            SharePolicy::Proportional { driver, window: Window::Period } => {
                write!(f, "proportional to {driver} (period)")
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Everything weights are computed from, with period totals summed once.
#[derive(Debug, Clone)]
pub struct WeightContext<'a> {
    drivers: &'a DriverTotals,
    period: BTreeMap<Driver, BTreeMap<TenantId, Decimal>>,
    direct: &'a DirectCosts,
    tenants: &'a BTreeSet<TenantId>,
}

impl<'a> WeightContext<'a> {
    /// `tenants` is the known tenant set for [`SharePolicy::Even`] (typically every tenant with direct cost
    /// or evidence in the period); the pseudo tenant `UNATTRIBUTED` in it is ignored.
    pub fn new(
        drivers: &'a DriverTotals,
        direct: &'a DirectCosts,
        tenants: &'a BTreeSet<TenantId>,
    ) -> Result<Self, MoneyError> {
        let period = drivers.drivers().map(|d| Ok((d, drivers.period(d)?))).collect::<Result<_, MoneyError>>()?;
        Ok(Self { drivers, period, direct, tenants })
    }

    /// The weights of `policy` for a line dated `day` (see [`weights`]).
    pub fn weights(&self, policy: &SharePolicy, day: NaiveDate) -> Vec<(TenantId, Decimal)> {
        let pairs = |m: &BTreeMap<TenantId, Decimal>| m.iter().map(|(t, q)| (t.clone(), *q)).collect();
        match policy {
            SharePolicy::Proportional { driver, window: Window::Day } => {
                self.drivers.day(*driver, day).map(pairs).unwrap_or_default()
            }
            SharePolicy::Proportional { driver, window: Window::Period } => {
                self.period.get(driver).map(pairs).unwrap_or_default()
            }
            SharePolicy::WeightedByDirectCost => self
                .direct
                .iter()
                .map(|(t, c)| (t.clone(), if c.is_sign_negative() { Decimal::ZERO } else { *c }))
                .collect(),
            SharePolicy::Even => {
                self.tenants.iter().filter(|t| !t.is_unattributed()).map(|t| (t.clone(), Decimal::ONE)).collect()
            }
            SharePolicy::Fixed(w) => pairs(w),
        }
    }
}

/// The weights per tenant of `policy` for a line dated `day`, sorted by tenant; may be empty or all zero
/// (the split then reports no driver). Proportional weights may include the `UNATTRIBUTED` pseudo tenant
/// (usage whose tenant is unknown), whose part the allocator keeps unattributed.
pub fn weights(policy: &SharePolicy, day: NaiveDate, ctx: &WeightContext<'_>) -> Vec<(TenantId, Decimal)> {
    ctx.weights(policy, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn each_policy() {
        let d1 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let mut drivers = DriverTotals::new();
        drivers.add(Driver::DynamoReadUnits, d1, &t("a"), Decimal::new(3, 0)).unwrap();
        drivers.add(Driver::DynamoReadUnits, d2, &t("b"), Decimal::new(5, 1)).unwrap();
        let direct: DirectCosts = [(t("a"), Decimal::new(10, 0)), (t("b"), Decimal::new(-2, 0))].into();
        let tenants: BTreeSet<TenantId> = [t("a"), t("b"), t("c"), TenantId::unattributed()].into();
        let ctx = WeightContext::new(&drivers, &direct, &tenants).unwrap();

        let day = SharePolicy::Proportional { driver: Driver::DynamoReadUnits, window: Window::Day };
        assert_eq!(weights(&day, d1, &ctx), vec![(t("a"), Decimal::new(3, 0))]);
        let period = SharePolicy::Proportional { driver: Driver::DynamoReadUnits, window: Window::Period };
        assert_eq!(weights(&period, d1, &ctx), vec![(t("a"), Decimal::new(3, 0)), (t("b"), Decimal::new(5, 1))]);
        let none = SharePolicy::Proportional { driver: Driver::S3ByteHours, window: Window::Day };
        assert!(weights(&none, d1, &ctx).is_empty());
        assert_eq!(
            weights(&SharePolicy::WeightedByDirectCost, d1, &ctx),
            vec![(t("a"), Decimal::new(10, 0)), (t("b"), Decimal::ZERO)]
        );
        assert_eq!(weights(&SharePolicy::Even, d1, &ctx).len(), 3);
        let fixed = SharePolicy::Fixed([(t("z"), Decimal::ONE)].into());
        assert_eq!(weights(&fixed, d1, &ctx), vec![(t("z"), Decimal::ONE)]);
        assert_eq!(day.to_string(), "proportional to dynamo_read_units (day)");
    }
}
