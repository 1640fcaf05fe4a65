//! Usage drivers and the per (driver, day, tenant) totals that evidence produces.
//!
//! A driver is a usage measure of the same resource a shared cost line bills (GB-seconds for Lambda
//! duration, read units for DynamoDB reads, ...): splitting by it gives each tenant the part of the bill
//! its usage caused (attribution-and-style.md §B.1, §B.3). Names are stable snake_case: they appear in
//! rules files, stored rows and reports.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{MoneyError, exact_add};
use crate::tenant::TenantId;

/// A usage driver. The doc of each variant gives its unit and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// GB-seconds: Σ billed ms / 1000 × memory MB / 1024 (Lambda REPORT / `platform.report`).
    LambdaGbSeconds,
    /// Invocations: deduplicated REPORT records.
    LambdaInvocations,
    /// Milliseconds: billed duration, or duration for Lambda Managed Instances (which report no billed
    /// duration or memory and are billed on instance terms, so GB-s does not apply to them).
    LambdaDurationMs,
    /// Read request/capacity units from logged `ConsumedCapacity`.
    DynamoReadUnits,
    /// Write request/capacity units from logged `ConsumedCapacity`.
    DynamoWriteUnits,
    /// Storage proxy: cumulative write units per tenant since the start of the evidence (data accumulates
    /// with writes); used where no per-tenant item size is available.
    DynamoStorageProxy,
    /// Byte-hours under the tenant's prefixes (S3 Inventory bytes × 24 per daily snapshot).
    S3ByteHours,
    /// All REST requests under the tenant's prefixes (server access logs).
    S3Requests,
    /// Tier-1 requests (PUT, COPY, POST, LIST) under the tenant's prefixes.
    S3Tier1Requests,
    /// Tier-2 requests (GET, HEAD and other non-tier-1, non-DELETE requests) under the tenant's prefixes.
    S3Tier2Requests,
    /// Distinct agent runtime sessions per day.
    AgentSessions,
    /// Agent tool calls.
    AgentToolCalls,
    /// Agent runtime vCPU-hours.
    AgentVcpuHours,
    /// Agent runtime memory GB-hours.
    AgentGbHours,
}

impl Driver {
    /// Every driver, in a stable order.
    pub const ALL: [Driver; 14] = [
        Driver::LambdaGbSeconds,
        Driver::LambdaInvocations,
        Driver::LambdaDurationMs,
        Driver::DynamoReadUnits,
        Driver::DynamoWriteUnits,
        Driver::DynamoStorageProxy,
        Driver::S3ByteHours,
        Driver::S3Requests,
        Driver::S3Tier1Requests,
        Driver::S3Tier2Requests,
        Driver::AgentSessions,
        Driver::AgentToolCalls,
        Driver::AgentVcpuHours,
        Driver::AgentGbHours,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::LambdaGbSeconds => "lambda_gb_seconds",
            Driver::LambdaInvocations => "lambda_invocations",
            Driver::LambdaDurationMs => "lambda_duration_ms",
            Driver::DynamoReadUnits => "dynamo_read_units",
            Driver::DynamoWriteUnits => "dynamo_write_units",
            Driver::DynamoStorageProxy => "dynamo_storage_proxy",
            Driver::S3ByteHours => "s3_byte_hours",
            Driver::S3Requests => "s3_requests",
            Driver::S3Tier1Requests => "s3_tier1_requests",
            Driver::S3Tier2Requests => "s3_tier2_requests",
            Driver::AgentSessions => "agent_sessions",
            Driver::AgentToolCalls => "agent_tool_calls",
            Driver::AgentVcpuHours => "agent_vcpu_hours",
            Driver::AgentGbHours => "agent_gb_hours",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown driver name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown driver {0:?}")]
pub struct UnknownDriver(pub String);

impl FromStr for Driver {
    type Err = UnknownDriver;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Driver::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| UnknownDriver(s.to_owned()))
    }
}

/// Tagged (direct) cost per tenant for the period, in the measure the caller chooses (unblended is the
/// natural one); the weights of [`crate::SharePolicy::WeightedByDirectCost`].
pub type DirectCosts = BTreeMap<TenantId, Decimal>;

/// Driver quantities per (driver, UTC day, tenant), summed exactly.
///
/// This is all that evidence parsing keeps: its size is drivers × days × tenants, independent of the volume
/// of logs. Usage whose tenant is unknown is kept under [`TenantId::unattributed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverTotals {
    map: BTreeMap<Driver, BTreeMap<NaiveDate, BTreeMap<TenantId, Decimal>>>,
}

impl DriverTotals {
    /// Empty totals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `quantity` (exactly; fails rather than rounds on overflow).
    pub fn add(
        &mut self,
        driver: Driver,
        day: NaiveDate,
        tenant: &TenantId,
        quantity: Decimal,
    ) -> Result<(), MoneyError> {
        let days = self.map.entry(driver).or_default();
        let tenants = days.entry(day).or_default();
        match tenants.get_mut(tenant) {
            Some(v) => {
                *v = exact_add(*v, quantity).ok_or_else(|| overflow(driver, day, tenant))?;
            }
            None => {
                tenants.insert(tenant.clone(), quantity);
            }
        }
        Ok(())
    }

    /// Adds every quantity of `other`.
    pub fn merge(&mut self, other: &DriverTotals) -> Result<(), MoneyError> {
        for (driver, day, tenant, q) in other.iter() {
            self.add(driver, day, tenant, q)?;
        }
        Ok(())
    }

    /// Quantities per tenant of one driver on one day.
    pub fn day(&self, driver: Driver, day: NaiveDate) -> Option<&BTreeMap<TenantId, Decimal>> {
        self.map.get(&driver)?.get(&day)
    }

    /// Quantities per tenant of one driver summed over all days.
    pub fn period(&self, driver: Driver) -> Result<BTreeMap<TenantId, Decimal>, MoneyError> {
        let mut out: BTreeMap<TenantId, Decimal> = BTreeMap::new();
        for (day, tenants) in self.map.get(&driver).into_iter().flatten() {
            for (tenant, q) in tenants {
                let slot = out.entry(tenant.clone()).or_insert(Decimal::ZERO);
                *slot = exact_add(*slot, *q).ok_or_else(|| overflow(driver, *day, tenant))?;
            }
        }
        Ok(out)
    }

    /// Every (driver, day, tenant, quantity), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (Driver, NaiveDate, &TenantId, Decimal)> + '_ {
        self.map.iter().flat_map(|(dr, days)| {
            days.iter().flat_map(move |(day, ts)| ts.iter().map(move |(t, q)| (*dr, *day, t, *q)))
        })
    }

    /// Drivers with any quantity.
    pub fn drivers(&self) -> impl Iterator<Item = Driver> + '_ {
        self.map.keys().copied()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn overflow(driver: Driver, day: NaiveDate, tenant: &TenantId) -> MoneyError {
    MoneyError::Overflow { what: format!("{driver} total of tenant {tenant} on {day}") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Driver::ALL {
            assert_eq!(d.as_str().parse::<Driver>().unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.as_str()));
        }
        assert!("gb_seconds".parse::<Driver>().is_err());
    }

    #[test]
    fn totals_sum_per_key_and_period() {
        let a = TenantId::new("a").unwrap();
        let d1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let mut t = DriverTotals::new();
        t.add(Driver::LambdaGbSeconds, d1, &a, Decimal::new(15, 1)).unwrap();
        t.add(Driver::LambdaGbSeconds, d1, &a, Decimal::new(25, 1)).unwrap();
        t.add(Driver::LambdaGbSeconds, d2, &a, Decimal::ONE).unwrap();
        assert_eq!(t.day(Driver::LambdaGbSeconds, d1).unwrap()[&a], Decimal::new(4, 0));
        assert_eq!(t.period(Driver::LambdaGbSeconds).unwrap()[&a], Decimal::new(5, 0));
        assert!(t.add(Driver::LambdaGbSeconds, d1, &a, Decimal::MAX).is_err());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<DriverTotals>(&json).unwrap(), t);
    }
}
