//! Allocation of shared-pool lines to tenants.
//!
//! For each shared line (CUR cost without a tenant tag, aggregated per day):
//! 1. a resource in the [`Assignments`] table goes wholly to its tenant;
//! 2. otherwise the first matching [`Rule`] picks a [`SharePolicy`]; its weights (usage driver on the line's
//!    day, direct cost, even, fixed) split **every cost measure** of the line with the same weights
//!    ([`Shares`], largest remainder at the allocator's scale);
//! 3. what cannot be attributed stays in an [`UnattributedRow`] with its [`UnattributedReason`]: no rule
//!    matched, no driver evidence, or usage evidence without a tenant.
//!
//! Conservation is asserted per line and per measure: attributed + unattributed == the line's amount,
//! exactly, or [`AllocateError::Internal`] stops the run.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::driver::Driver;
use crate::evidence::assignments::Assignments;
use crate::money::{exact_add, exact_sum};
use crate::policy::{SharePolicy, WeightContext};
use crate::rules::{Rule, Rules};
use crate::split::{Shares, SplitError};
use crate::tenant::TenantId;

/// Decimal places of the displayed `share` (amounts never use it).
pub const SHARE_DP: u32 = 12;

/// One shared-pool line as the pipeline aggregates it: one (day, service, usage type, operation, resource,
/// line-item type, currency) with its cost measures (e.g. `unblended_cost`, `amortized_cost`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedLine {
    /// `line_item_product_code`.
    pub service: String,
    /// `line_item_usage_type`.
    pub usage_type: String,
    /// `line_item_operation`.
    pub operation: String,
    /// `line_item_resource_id` (empty when none).
    pub resource_id: String,
    /// `line_item_line_item_type`.
    pub line_item_type: String,
    /// UTC usage day.
    pub day: NaiveDate,
    /// `line_item_currency_code`; allocation never mixes currencies.
    pub currency: String,
    /// Amount per cost measure; every amount is split with the line's weights.
    pub amounts: BTreeMap<String, Decimal>,
}

impl fmt::Display for SharedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} / {} / {} / {} [{}]",
            self.day,
            self.currency,
            self.service,
            self.usage_type,
            self.operation,
            self.resource_id,
            self.line_item_type
        )
    }
}

/// What an attributed amount is based on (for coverage: usage driver vs fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// An explicit resource → tenant assignment.
    Assignment,
    /// A usage driver (proportional policy).
    UsageDriver,
    /// Weighted by direct cost (fallback).
    DirectCost,
    /// Even split (fallback).
    Even,
    /// Fixed weights (operator's choice).
    Fixed,
}

/// A tenant's part of one shared line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributedRow {
    pub tenant: TenantId,
    /// The rule's name, or `assignment:<pattern>`.
    pub rule: String,
    pub basis: Basis,
    /// The usage driver, for proportional rules.
    pub driver: Option<Driver>,
    /// The tenant's weight (driver quantity, direct cost, 1 for even, the fixed weight).
    pub quantity: Decimal,
    /// The sum of all weights of the line (including usage without a tenant).
    pub quantity_total: Decimal,
    /// `quantity / quantity_total` rounded to [`SHARE_DP`] places, for display.
    pub share: Decimal,
    /// The tenant's amount per measure; zero-amount tenants are left out.
    pub amounts: BTreeMap<String, Decimal>,
}

impl Basis {
    /// The stored name (`assignment`, `usage_driver`, `direct_cost`, `even`, `fixed`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Assignment => "assignment",
            Basis::UsageDriver => "usage_driver",
            Basis::DirectCost => "direct_cost",
            Basis::Even => "even",
            Basis::Fixed => "fixed",
        }
    }
}

/// Why (part of) a line stays unattributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum UnattributedReason {
    /// No rule matched the line.
    Unmatched,
    /// The matched rule's policy has no positive weight (no usage evidence in the window, no direct cost,
    /// no tenants).
    NoDriver { rule: String, policy: String, day: NaiveDate },
    /// The driver's share of usage evidence whose tenant is unknown (not joined, unmapped prefix or session).
    UsageWithoutTenant { rule: String, driver: Driver },
}

impl UnattributedReason {
    /// A stable short code: `unmatched`, `no_driver`, `usage_without_tenant`.
    pub fn code(&self) -> &'static str {
        match self {
            UnattributedReason::Unmatched => "unmatched",
            UnattributedReason::NoDriver { .. } => "no_driver",
            UnattributedReason::UsageWithoutTenant { .. } => "usage_without_tenant",
        }
    }
}

impl fmt::Display for UnattributedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnattributedReason::Unmatched => f.write_str("unmatched: no attribution rule matches this line"),
            UnattributedReason::NoDriver { rule, policy, day } => {
                write!(f, "no_driver: rule {rule} ({policy}) has no positive weight for {day}")
            }
            UnattributedReason::UsageWithoutTenant { rule, driver } => {
                write!(f, "usage_without_tenant: rule {rule}, share of {driver} usage whose tenant is unknown")
            }
        }
    }
}

/// The part of a line that stays in the shared pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedRow {
    pub reason: UnattributedReason,
    pub amounts: BTreeMap<String, Decimal>,
}

/// The allocation of one line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LineAllocation {
    /// Sorted by tenant id.
    pub attributed: Vec<AttributedRow>,
    pub unattributed: Option<UnattributedRow>,
}

/// Allocation failures. `Split` is bad input (e.g. an amount with more decimals than the scale); `Internal`
/// is a broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("line {line}: {source}")]
    Split { line: String, source: SplitError },
    #[error("line {line}: {what} overflows exact arithmetic")]
    Overflow { line: String, what: String },
    #[error("internal error on line {line}: {message}")]
    Internal { line: String, message: String },
}

/// The weights of one (rule, day), ready to split amounts: every line of that rule and day shares them.
#[derive(Debug)]
struct Prepared {
    /// `None`: no positive weight (the line stays unattributed, `no_driver`).
    shares: Option<Shares>,
    quantity_total: Decimal,
    quantity: BTreeMap<TenantId, Decimal>,
    /// Display share per tenant index of `shares`.
    share: Vec<Decimal>,
}

/// Where [`Allocator::route`] sends a line.
#[derive(Debug, Clone, Copy)]
pub enum Route<'r> {
    /// Assigned to a tenant, or matched by no rule: [`Allocator::allocate`] gives it (at most) one part.
    Whole,
    /// Split by this rule's weights.
    Rule(&'r Rule),
}

/// The weights a rule splits a day's lines by, for callers that split many lines at once
/// ([`Shares::add_split`]) instead of one [`LineAllocation`] per line.
#[derive(Debug, Clone)]
pub struct SplitPlan {
    prepared: Rc<Prepared>,
    /// Each tenant's weight, in the order of [`Shares::tenants`].
    quantity: Rc<[Decimal]>,
    /// The rule's name.
    pub rule: String,
    pub basis: Basis,
    pub driver: Option<Driver>,
}

impl SplitPlan {
    /// The validated weights (every tenant with a positive one, ascending by id).
    pub fn shares(&self) -> Option<&Shares> {
        self.prepared.shares.as_ref()
    }

    /// Tenant `i`'s weight (its driver quantity, direct cost, 1 for even, its fixed weight).
    pub fn quantity(&self, i: usize) -> Decimal {
        self.quantity.get(i).copied().unwrap_or_default()
    }

    /// The sum of all weights (including usage without a tenant).
    pub fn quantity_total(&self) -> Decimal {
        self.prepared.quantity_total
    }

    /// Tenant `i`'s share, rounded to [`SHARE_DP`] places for display.
    pub fn share(&self, i: usize) -> Decimal {
        self.prepared.share.get(i).copied().unwrap_or_default()
    }
}

/// Allocates shared lines; holds the rules, assignments and weights context of one billing period.
///
/// A month has many shared lines per rule and day (one per usage type, operation, resource...) and
/// they all split by the same weights, so the validated [`Shares`] of each (rule, day) are built once
/// and reused: with 10,000 tenants, building them is most of the cost of a line.
#[derive(Debug, Clone)]
pub struct Allocator<'a> {
    rules: &'a Rules,
    assignments: &'a Assignments,
    ctx: WeightContext<'a>,
    scale: u32,
    prepared: RefCell<HashMap<(String, NaiveDate), Rc<Prepared>>>,
}

impl<'a> Allocator<'a> {
    /// `scale`: decimal places of the split's minor unit (the store's, [`crate::MONEY_SCALE`]).
    pub fn new(rules: &'a Rules, assignments: &'a Assignments, ctx: WeightContext<'a>, scale: u32) -> Self {
        Self { rules, assignments, ctx, scale, prepared: RefCell::new(HashMap::new()) }
    }

    fn prepare(&self, line: &SharedLine, rule: &Rule) -> Result<Rc<Prepared>, AllocateError> {
        let key = (rule.name.clone(), line.day);
        if let Some(p) = self.prepared.borrow().get(&key) {
            return Ok(Rc::clone(p));
        }
        let weights = self.ctx.weights(&rule.policy, line.day);
        let shares = Shares::new(&weights).map_err(|source| AllocateError::Split { line: line.to_string(), source })?;
        let quantity_total = exact_sum(weights.iter().map(|(_, w)| *w))
            .ok_or_else(|| AllocateError::Overflow { line: line.to_string(), what: "the sum of weights".into() })?;
        let share = match &shares {
            Some(s) => (0..s.tenants().len()).map(|i| s.share_of(i, SHARE_DP).unwrap_or_default()).collect(),
            None => Vec::new(),
        };
        let prepared = Rc::new(Prepared { shares, quantity_total, quantity: weights.into_iter().collect(), share });
        self.prepared.borrow_mut().insert(key, Rc::clone(&prepared));
        Ok(prepared)
    }

    /// Where `line` goes, without splitting it or preparing weights.
    pub fn route(&self, line: &SharedLine) -> Route<'a> {
        if self.assignments.lookup(&line.resource_id).is_some() {
            return Route::Whole;
        }
        match self.rules.route(line) {
            Some(rule) => Route::Rule(rule),
            None => Route::Whole,
        }
    }

    /// The weights `rule` splits `line`'s day by (prepared once per rule and day, like
    /// [`Allocator::allocate`]'s).
    pub fn plan(&self, line: &SharedLine, rule: &Rule) -> Result<SplitPlan, AllocateError> {
        let prepared = self.prepare(line, rule)?;
        let quantity: Rc<[Decimal]> = match &prepared.shares {
            Some(s) => s.tenants().iter().map(|t| prepared.quantity.get(t).copied().unwrap_or_default()).collect(),
            None => Rc::from(Vec::new()),
        };
        Ok(SplitPlan {
            prepared,
            quantity,
            rule: rule.name.clone(),
            basis: basis_of(&rule.policy),
            driver: rule.policy.driver(),
        })
    }

    /// Drops the prepared weights: a caller that goes through the period day by day keeps one
    /// day's (10,000 tenants' weights per rule) in memory rather than the month's.
    pub fn forget_prepared(&self) {
        self.prepared.borrow_mut().clear();
    }

    /// Allocates one line (see the module docs).
    pub fn allocate(&self, line: &SharedLine) -> Result<LineAllocation, AllocateError> {
        let out = if let Some((tenant, pattern)) = self.assignments.lookup(&line.resource_id) {
            LineAllocation {
                attributed: vec![AttributedRow {
                    tenant: tenant.clone(),
                    rule: format!("assignment:{pattern}"),
                    basis: Basis::Assignment,
                    driver: None,
                    quantity: Decimal::ONE,
                    quantity_total: Decimal::ONE,
                    share: Decimal::ONE,
                    amounts: line.amounts.clone(),
                }],
                unattributed: None,
            }
        } else {
            match self.rules.route(line) {
                None => LineAllocation {
                    attributed: Vec::new(),
                    unattributed: Some(UnattributedRow {
                        reason: UnattributedReason::Unmatched,
                        amounts: line.amounts.clone(),
                    }),
                },
                Some(rule) => self.by_rule(line, rule)?,
            }
        };
        check_conservation(line, &out)?;
        Ok(out)
    }

    fn by_rule(&self, line: &SharedLine, rule: &Rule) -> Result<LineAllocation, AllocateError> {
        let prepared = self.prepare(line, rule)?;
        let split_err = |source| AllocateError::Split { line: line.to_string(), source };
        let Some(shares) = &prepared.shares else {
            return Ok(LineAllocation {
                attributed: Vec::new(),
                unattributed: Some(UnattributedRow {
                    reason: UnattributedReason::NoDriver {
                        rule: rule.name.clone(),
                        policy: rule.policy.to_string(),
                        day: line.day,
                    },
                    amounts: line.amounts.clone(),
                }),
            });
        };
        let quantity_total = prepared.quantity_total;
        let quantity = &prepared.quantity;

        // amounts[tenant index][measure]
        let n = shares.tenants().len();
        let mut per_tenant: Vec<BTreeMap<String, Decimal>> = vec![BTreeMap::new(); n];
        for (measure, amount) in &line.amounts {
            let parts = shares.split_amounts(*amount, self.scale).map_err(split_err)?;
            for (slot, part) in per_tenant.iter_mut().zip(parts) {
                slot.insert(measure.clone(), part);
            }
        }
        let basis = basis_of(&rule.policy);
        let mut out = LineAllocation::default();
        for (i, (tenant, amounts)) in shares.tenants().iter().zip(per_tenant).enumerate() {
            if amounts.values().all(Decimal::is_zero) {
                continue;
            }
            if tenant.is_unattributed() {
                let driver = rule.policy.driver().ok_or_else(|| AllocateError::Internal {
                    line: line.to_string(),
                    message: format!("pseudo tenant in the weights of non-usage rule {}", rule.name),
                })?;
                out.unattributed = Some(UnattributedRow {
                    reason: UnattributedReason::UsageWithoutTenant { rule: rule.name.clone(), driver },
                    amounts,
                });
                continue;
            }
            out.attributed.push(AttributedRow {
                tenant: tenant.clone(),
                rule: rule.name.clone(),
                basis,
                driver: rule.policy.driver(),
                quantity: quantity.get(tenant).copied().unwrap_or_default(),
                quantity_total,
                share: prepared.share.get(i).copied().unwrap_or_default(),
                amounts,
            });
        }
        Ok(out)
    }
}

fn basis_of(policy: &SharePolicy) -> Basis {
    match policy {
        SharePolicy::Proportional { .. } => Basis::UsageDriver,
        SharePolicy::WeightedByDirectCost => Basis::DirectCost,
        SharePolicy::Even => Basis::Even,
        SharePolicy::Fixed(_) => Basis::Fixed,
    }
}

fn check_conservation(line: &SharedLine, alloc: &LineAllocation) -> Result<(), AllocateError> {
    let internal = |message: String| AllocateError::Internal { line: line.to_string(), message };
    let rows = alloc.attributed.iter().map(|r| &r.amounts).chain(alloc.unattributed.iter().map(|u| &u.amounts));
    let mut sums: BTreeMap<&str, Decimal> = BTreeMap::new();
    for amounts in rows {
        for (m, v) in amounts {
            let slot = sums.entry(m.as_str()).or_insert(Decimal::ZERO);
            *slot = exact_add(*slot, *v).ok_or_else(|| internal(format!("sum of {m} overflows")))?;
        }
    }
    for (m, want) in &line.amounts {
        let got = sums.remove(m.as_str()).unwrap_or(Decimal::ZERO);
        if got != *want {
            return Err(internal(format!("conservation violated for {m}: allocated {got}, line has {want}")));
        }
    }
    if let Some((m, _)) = sums.into_iter().next() {
        return Err(internal(format!("allocated measure {m} that the line does not have")));
    }
    Ok(())
}

/// Sums per currency and measure of what allocation did, for the period's coverage report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// currency → measure → amounts.
    pub amounts: BTreeMap<String, BTreeMap<String, CoverageAmounts>>,
}

/// One currency and measure of [`Coverage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CoverageAmounts {
    /// Shared lines in (the input).
    pub shared: Decimal,
    /// Attributed by explicit assignment.
    pub assigned: Decimal,
    /// Attributed by a usage driver.
    pub usage_driver: Decimal,
    /// Attributed by a fallback (direct cost, even, fixed).
    pub fallback: Decimal,
    /// Left unattributed.
    pub unattributed: Decimal,
}

impl Coverage {
    /// Adds one line split by `basis` without a [`LineAllocation`]: what is not in `unattributed`
    /// (measure → amount) was attributed.
    pub fn add_split(
        &mut self,
        line: &SharedLine,
        basis: Basis,
        unattributed: &BTreeMap<String, Decimal>,
    ) -> Result<(), AllocateError> {
        let of = |what: &str| AllocateError::Overflow { line: line.to_string(), what: format!("coverage {what}") };
        let cur = self.amounts.entry(line.currency.clone()).or_default();
        for (m, v) in &line.amounts {
            let rest = unattributed.get(m).copied().unwrap_or_default();
            let attributed = crate::money::exact_sub(*v, rest).ok_or_else(|| of("attributed"))?;
            let c = cur.entry(m.clone()).or_default();
            c.shared = exact_add(c.shared, *v).ok_or_else(|| of("shared"))?;
            c.unattributed = exact_add(c.unattributed, rest).ok_or_else(|| of("unattributed"))?;
            let slot = match basis {
                Basis::Assignment => &mut c.assigned,
                Basis::UsageDriver => &mut c.usage_driver,
                Basis::DirectCost | Basis::Even | Basis::Fixed => &mut c.fallback,
            };
            *slot = exact_add(*slot, attributed).ok_or_else(|| of("attributed"))?;
        }
        Ok(())
    }

    /// Adds one allocated line.
    pub fn add(&mut self, line: &SharedLine, alloc: &LineAllocation) -> Result<(), AllocateError> {
        let of = |what: &str| AllocateError::Overflow { line: line.to_string(), what: format!("coverage {what}") };
        let cur = self.amounts.entry(line.currency.clone()).or_default();
        let add = |slot: &mut Decimal, v: Decimal, what: &str| -> Result<(), AllocateError> {
            *slot = exact_add(*slot, v).ok_or_else(|| of(what))?;
            Ok(())
        };
        for (m, v) in &line.amounts {
            add(&mut cur.entry(m.clone()).or_default().shared, *v, "shared")?;
        }
        for r in &alloc.attributed {
            for (m, v) in &r.amounts {
                let c = cur.entry(m.clone()).or_default();
                match r.basis {
                    Basis::Assignment => add(&mut c.assigned, *v, "assigned")?,
                    Basis::UsageDriver => add(&mut c.usage_driver, *v, "usage_driver")?,
                    Basis::DirectCost | Basis::Even | Basis::Fixed => add(&mut c.fallback, *v, "fallback")?,
                }
            }
        }
        if let Some(u) = &alloc.unattributed {
            for (m, v) in &u.amounts {
                add(&mut cur.entry(m.clone()).or_default().unattributed, *v, "unattributed")?;
            }
        }
        Ok(())
    }
}
