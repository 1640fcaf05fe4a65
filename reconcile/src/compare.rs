//! The comparison: estimates vs actual costs per tenant × month and per tenant × month × resource type.
//!
//! Estimates are grouped by their `month`; actual lines by the month of their UTC day, for the one
//! [`Measure`] the caller chose (amortized by default; lines of other measures are ignored). Estimates
//! carry no currency: they are in [`CompareConfig::currency`]. Actual lines in another currency are
//! never converted or added to a variance: they are summed per tenant, month and currency into
//! [`Comparison::not_compared`], so a caller can say what was left out. Each actual line is given to a resource type by the
//! [`ResourceTypeMap`] (first match) or to [`UNMAPPED`]. Rows exist for every key that has an estimate
//! or an actual line; a resource type with estimates and no actual lines has actual 0 (−100 %).
//!
//! Every row carries the variance figures of [`crate::variance`] and the [`PeriodState`] of its month;
//! resource-type rows add quantities, the volume/rate decomposition of [`mod@crate::decompose`] and, when the
//! variance is flagged **and** rate-dominated, a suggested unit cost `Pa` rounded to
//! [`CompareConfig::suggestion_significant_digits`] significant digits (6 by default: AWS list prices such as
//! `0.0000166667` have six). A suggestion is only made for a positive `Pa`; every suggestion is also listed
//! with its evidence in [`Comparison::suggestions`]. Suggestions from open months are trends: they carry the
//! state, and a caller should wait for `final` before changing a price model.
//!
//! Output field names are stable: they are the CSV/JSON columns.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actual::{ActualCost, Measure};
use crate::decompose::{Decomposition, Dominant, EFFECT_DP, decompose};
use crate::error::Result;
use crate::estimate::Estimate;
use crate::mapping::{ResourceTypeMap, UNMAPPED};
use crate::money::{mul, round, total};
use crate::month::Month;
use crate::period::{PeriodState, Periods};
use crate::variance::{Figures, Thresholds, VarianceStatus, assess};

/// Decimal places of the reported unit costs (`estimated_unit_cost`, `actual_unit_cost`).
pub const UNIT_COST_DP: u32 = 12;

/// Settings of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareConfig {
    /// The cost measure compared with the estimates (default amortized).
    pub measure: Measure,
    /// The currency of the estimates: only actual lines in it are compared. Default `USD`.
    pub currency: String,
    /// When a variance is flagged.
    pub thresholds: Thresholds,
    /// Decimal places of the volume effect (default [`EFFECT_DP`]).
    pub effect_dp: u32,
    /// Significant digits of a suggested unit cost (default 6).
    pub suggestion_significant_digits: u32,
}

impl Default for CompareConfig {
    fn default() -> Self {
        Self {
            measure: Measure::Amortized,
            currency: "USD".into(),
            thresholds: Thresholds::default(),
            effect_dp: EFFECT_DP,
            suggestion_significant_digits: 6,
        }
    }
}

/// How a resource-type row relates to the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingStatus {
    /// A resource type of the mapping.
    Mapped,
    /// The [`UNMAPPED`] bucket: actual lines no resource type claims.
    Unmapped,
    /// The app estimated a resource type the mapping does not know (its actual is necessarily 0: fix the
    /// mapping).
    NotInMapping,
}

/// Variance of one tenant and month (all resource types, unmapped included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantMonthVariance {
    pub accountant_id: String,
    pub month: Month,
    pub period_state: PeriodState,
    pub currency: String,
    /// Σ `estimated_cost`.
    pub estimated: Decimal,
    /// `actual_direct + actual_attributed`.
    pub actual: Decimal,
    pub actual_direct: Decimal,
    pub actual_attributed: Decimal,
    /// The part of `actual` in the [`UNMAPPED`] bucket.
    pub actual_unmapped: Decimal,
    /// `actual − estimated`.
    pub variance: Decimal,
    /// `variance / |estimated| × 100` (4 places); empty when `estimated = 0`.
    pub variance_pct: Option<Decimal>,
    /// `estimated = 0` and `actual ≠ 0`.
    pub unestimated_usage: bool,
    pub flagged: bool,
    pub status: VarianceStatus,
    pub estimate_records: u64,
    pub actual_records: u64,
}

/// Variance of one tenant, month and resource type. Its fields repeat most of
/// [`TenantMonthVariance`]'s on purpose: each record is a documented output row with its own column
/// order (README, `reconcile --level`), not a nesting of the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTypeVariance {
    pub accountant_id: String,
    pub month: Month,
    /// The app's resource type, or [`UNMAPPED`].
    pub resource_type: String,
    pub mapping: MappingStatus,
    pub period_state: PeriodState,
    pub currency: String,
    pub estimated: Decimal,
    pub actual: Decimal,
    pub actual_direct: Decimal,
    pub actual_attributed: Decimal,
    pub variance: Decimal,
    pub variance_pct: Option<Decimal>,
    pub unestimated_usage: bool,
    pub flagged: bool,
    pub status: VarianceStatus,
    /// The mapping's `quantity_unit`.
    pub quantity_unit: Option<String>,
    /// Σ estimate `quantity` (`Qe`).
    pub estimated_quantity: Decimal,
    /// Σ usage quantity × factor of the claimed lines (`Qa`); empty when unknown.
    pub actual_quantity: Option<Decimal>,
    /// `Pe = estimated / Qe` ([`UNIT_COST_DP`] places).
    pub estimated_unit_cost: Option<Decimal>,
    /// `Pa = actual / Qa` ([`UNIT_COST_DP`] places).
    pub actual_unit_cost: Option<Decimal>,
    /// `(Qa − Qe) × Pe`.
    pub volume_effect: Option<Decimal>,
    /// `variance − volume_effect`.
    pub rate_effect: Option<Decimal>,
    pub dominant: Option<Dominant>,
    /// `Pa` to 6 significant digits, when flagged and rate-dominated.
    pub suggested_unit_cost: Option<Decimal>,
    /// Distinct days with actual lines.
    pub usage_days: u32,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub estimate_records: u64,
    pub actual_records: u64,
}

/// A suggested unit cost with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub accountant_id: String,
    pub month: Month,
    pub resource_type: String,
    pub period_state: PeriodState,
    pub status: VarianceStatus,
    pub quantity_unit: Option<String>,
    /// `Pe`, what the estimates effectively charged per unit ([`UNIT_COST_DP`] places).
    pub current_unit_cost: Decimal,
    /// `Pa` to the configured significant digits.
    pub suggested_unit_cost: Decimal,
    pub estimated_quantity: Decimal,
    pub actual_quantity: Decimal,
    pub estimated: Decimal,
    pub actual: Decimal,
    pub variance: Decimal,
    pub variance_pct: Option<Decimal>,
    pub volume_effect: Decimal,
    pub rate_effect: Decimal,
    pub usage_days: u32,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
}

/// The result of [`compare`], every list sorted by tenant, month (and resource type).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Comparison {
    pub tenant_months: Vec<TenantMonthVariance>,
    pub resource_types: Vec<ResourceTypeVariance>,
    pub suggestions: Vec<Suggestion>,
    /// Actual cost in other currencies than the estimates', per tenant, month and currency: not
    /// compared with anything.
    #[serde(default)]
    pub not_compared: Vec<NotCompared>,
}

/// A tenant's actual cost of a month in a currency the estimates are not in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCompared {
    pub accountant_id: String,
    pub month: Month,
    pub currency: String,
    pub actual: Decimal,
    pub actual_records: u64,
}

#[derive(Default)]
struct Acc {
    estimated: Decimal,
    estimated_quantity: Decimal,
    estimate_records: u64,
    direct: Decimal,
    attributed: Decimal,
    unmapped: Decimal,
    actual_quantity: Decimal,
    quantity_unknown: bool,
    actual_records: u64,
    days: BTreeSet<NaiveDate>,
}

type Key = (String, Month, String);

/// The sums [`compare`] builds before it assesses anything.
#[derive(Default)]
struct Sums {
    /// Per (tenant, month, resource type).
    by_type: BTreeMap<Key, Acc>,
    /// Per (tenant, month), over all resource types.
    by_tenant: BTreeMap<(String, Month), Acc>,
    /// Actual cost and records per (tenant, month, currency) in other currencies than the
    /// estimates': reported, never compared.
    other: BTreeMap<(String, Month, String), (Decimal, u64)>,
}

impl Sums {
    /// Adds an estimate to its resource type's and its tenant month's sums.
    fn add_estimate(&mut self, e: &Estimate) -> Result<()> {
        let key = (e.accountant_id.clone(), e.month, e.resource_type.clone());
        for acc in [self.by_type.entry(key.clone()).or_default(), self.by_tenant.entry((key.0, key.1)).or_default()] {
            acc.estimated = total(acc.estimated, e.estimated_cost)?;
            acc.estimated_quantity = total(acc.estimated_quantity, e.quantity)?;
            acc.estimate_records += 1;
        }
        Ok(())
    }

    /// Adds an actual cost of the compared measure: to `other` when in another currency, else to
    /// the sums of the resource type `mapping` classifies it as (its quantity only when the usage
    /// unit matches the type's) and of its tenant month (as unmapped cost when no type matches).
    fn add_actual(&mut self, a: &ActualCost, mapping: &ResourceTypeMap, config: &CompareConfig) -> Result<()> {
        let month = Month::of(a.day);
        if a.currency != config.currency {
            let slot = self.other.entry((a.accountant_id.clone(), month, a.currency.clone())).or_default();
            slot.0 = total(slot.0, a.amount()?)?;
            slot.1 += 1;
            return Ok(());
        }
        let rt = mapping.classify(&a.service, &a.usage_type);
        let quantity = match (rt, a.usage_quantity) {
            (Some(t), Some(q)) if t.usage_unit.is_none() || t.usage_unit == a.usage_unit => {
                Some(mul(q, t.quantity_factor)?)
            }
            _ => None,
        };
        let name = rt.map_or(UNMAPPED, |t| t.name.as_str()).to_owned();
        let amount = a.amount()?;
        let acc = self.by_type.entry((a.accountant_id.clone(), month, name)).or_default();
        match quantity {
            Some(q) => acc.actual_quantity = total(acc.actual_quantity, q)?,
            None => acc.quantity_unknown = true,
        }
        let tenant = self.by_tenant.entry((a.accountant_id.clone(), month)).or_default();
        if rt.is_none() {
            tenant.unmapped = total(tenant.unmapped, amount)?;
        }
        for acc in [acc, tenant] {
            acc.direct = total(acc.direct, a.direct)?;
            acc.attributed = total(acc.attributed, a.attributed)?;
            acc.actual_records += 1;
            acc.days.insert(a.day);
        }
        Ok(())
    }
}

/// Compares `estimates` with `actuals` (see the module docs).
pub fn compare(
    estimates: &[Estimate],
    actuals: &[ActualCost],
    mapping: &ResourceTypeMap,
    periods: &Periods,
    config: &CompareConfig,
) -> Result<Comparison> {
    let mut sums = Sums::default();
    for e in estimates {
        sums.add_estimate(e)?;
    }
    for a in actuals.iter().filter(|a| a.measure == config.measure) {
        sums.add_actual(a, mapping, config)?;
    }
    let Sums { by_type, by_tenant, other } = sums;

    let not_compared = other
        .into_iter()
        .map(|((accountant_id, month, currency), (actual, actual_records))| NotCompared {
            accountant_id,
            month,
            currency,
            actual,
            actual_records,
        })
        .collect();
    let mut out = Comparison { not_compared, ..Comparison::default() };
    for ((tenant, month), acc) in by_tenant {
        out.tenant_months.push(tenant_row(tenant, month, acc, periods.state(month), config)?);
    }
    for ((tenant, month, resource_type), acc) in by_type {
        let row = resource_row(tenant, month, resource_type, acc, mapping, periods.state(month), config)?;
        if let Some(s) = suggestion(&row) {
            out.suggestions.push(s);
        }
        out.resource_types.push(row);
    }
    Ok(out)
}

/// A tenant month's variance: all its estimates against its direct and attributed actual cost.
fn tenant_row(
    tenant: String,
    month: Month,
    acc: Acc,
    state: PeriodState,
    config: &CompareConfig,
) -> Result<TenantMonthVariance> {
    let actual = total(acc.direct, acc.attributed)?;
    let f = assess(acc.estimated, actual, &config.thresholds)?;
    Ok(TenantMonthVariance {
        accountant_id: tenant,
        month,
        period_state: state,
        currency: config.currency.clone(),
        estimated: acc.estimated,
        actual,
        actual_direct: acc.direct,
        actual_attributed: acc.attributed,
        actual_unmapped: acc.unmapped,
        variance: f.variance,
        variance_pct: f.variance_pct,
        unestimated_usage: f.unestimated_usage,
        flagged: f.flagged,
        status: VarianceStatus::of(f.flagged, state),
        estimate_records: acc.estimate_records,
        actual_records: acc.actual_records,
    })
}

fn resource_row(
    tenant: String,
    month: Month,
    resource_type: String,
    acc: Acc,
    mapping: &ResourceTypeMap,
    state: PeriodState,
    config: &CompareConfig,
) -> Result<ResourceTypeVariance> {
    let rt = mapping.get(&resource_type);
    let status = match rt {
        Some(_) => MappingStatus::Mapped,
        None if resource_type == UNMAPPED => MappingStatus::Unmapped,
        None => MappingStatus::NotInMapping,
    };
    let actual = total(acc.direct, acc.attributed)?;
    let Figures { variance, variance_pct, unestimated_usage, flagged } =
        assess(acc.estimated, actual, &config.thresholds)?;
    let actual_quantity = (status == MappingStatus::Mapped && !acc.quantity_unknown).then_some(acc.actual_quantity);
    let decomposition: Option<Decomposition> = match actual_quantity {
        Some(qa) => decompose(acc.estimated, acc.estimated_quantity, actual, qa, config.effect_dp)?,
        None => None,
    };
    let dominant = decomposition.as_ref().map(|d| d.dominant);
    let suggested_unit_cost = match &decomposition {
        Some(Decomposition { actual_unit_cost: Some(pa), dominant: Dominant::Rate, .. })
            if flagged && *pa > Decimal::ZERO =>
        {
            pa.round_sf(config.suggestion_significant_digits).map(|d| d.normalize())
        }
        _ => None,
    };
    Ok(ResourceTypeVariance {
        accountant_id: tenant,
        month,
        resource_type,
        mapping: status,
        period_state: state,
        currency: config.currency.clone(),
        estimated: acc.estimated,
        actual,
        actual_direct: acc.direct,
        actual_attributed: acc.attributed,
        variance,
        variance_pct,
        unestimated_usage,
        flagged,
        status: VarianceStatus::of(flagged, state),
        quantity_unit: rt.and_then(|t| t.quantity_unit.clone()),
        estimated_quantity: acc.estimated_quantity,
        actual_quantity,
        estimated_unit_cost: decomposition.as_ref().map(|d| round(d.estimated_unit_cost, UNIT_COST_DP).normalize()),
        actual_unit_cost: decomposition
            .as_ref()
            .and_then(|d| d.actual_unit_cost)
            .map(|p| round(p, UNIT_COST_DP).normalize()),
        volume_effect: decomposition.as_ref().map(|d| d.volume_effect),
        rate_effect: decomposition.as_ref().map(|d| d.rate_effect),
        dominant,
        suggested_unit_cost,
        usage_days: u32::try_from(acc.days.len()).unwrap_or(u32::MAX),
        first_day: acc.days.first().copied(),
        last_day: acc.days.last().copied(),
        estimate_records: acc.estimate_records,
        actual_records: acc.actual_records,
    })
}

fn suggestion(row: &ResourceTypeVariance) -> Option<Suggestion> {
    Some(Suggestion {
        accountant_id: row.accountant_id.clone(),
        month: row.month,
        resource_type: row.resource_type.clone(),
        period_state: row.period_state,
        status: row.status,
        quantity_unit: row.quantity_unit.clone(),
        current_unit_cost: row.estimated_unit_cost?,
        suggested_unit_cost: row.suggested_unit_cost?,
        estimated_quantity: row.estimated_quantity,
        actual_quantity: row.actual_quantity?,
        estimated: row.estimated,
        actual: row.actual,
        variance: row.variance,
        variance_pct: row.variance_pct,
        volume_effect: row.volume_effect?,
        rate_effect: row.rate_effect?,
        usage_days: row.usage_days,
        first_day: row.first_day,
        last_day: row.last_day,
    })
}
