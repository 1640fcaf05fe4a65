//! Shared lines a rule splits, summed per tenant in columns instead of split one part at a time.
//!
//! A month of 10,000 tenants with 1,000 shared lines a day has 310 million (line × tenant) parts;
//! readers need one row per tenant, day, rule and [`grain`](super::grain) key. So the lines are
//! ordered by (day, rule, grain key) and each run of equal ones is split into one row of sums per
//! tenant (`[i128; 6]`: five money measures at [`MONEY_SCALE`], usage at [`QUANTITY_SCALE`]) with
//! [`Shares::add_split`], which adds exactly the parts [`Allocator::allocate`] would give, without
//! building them. Measures with equal amounts on a line (unblended, net and amortized cost often
//! are) are split once. Memory holds one run's sums and one day's prepared weights.
//!
//! What the per-line path does per line still happens per line: the part of usage without a
//! tenant stays with the line as an unattributed row, the line-item count goes to the heaviest
//! tenant (or the remainder), coverage and the pool line are recorded. Each run is checked for
//! conservation: tenants' sums plus remainders equal its lines, per measure, in integer units.
//!
//! At `Grain::Resources(tenant)` the same loop keeps that tenant's part of each line as a row of
//! its own (what `attribution explain --resources` shows) instead of summing it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use curflow_attribution::{Rule, SharedLine, SplitPlan, SplitScratch, UnattributedReason};
use rust_decimal::Decimal;

use super::{Grain, Splitter, allocate_error};
use crate::aggregate::{Amounts, Attribution, CostKey, CostLine, MONEY_MEASURES};
use crate::error::{Error, Result};
use crate::money::{MONEY_SCALE, QUANTITY_SCALE, Units};
use curflow_model::Name;

/// The money measures ([`MONEY_MEASURES`] order), then the usage amount and the pricing quantity.
const MEASURES: usize = PRICING + 1;
const USAGE: usize = MONEY_MEASURES.len();
const PRICING: usize = USAGE + 1;

type Sums = [i128; MEASURES];

/// A shared line routed to a rule (its [`SharedLine`] is made again when it is split: a month's
/// pool can be hundreds of thousands of lines, and they wait here until their day comes).
pub(super) struct Routed<'i> {
    pub line: CostLine,
    pub rule: &'i Rule,
}

impl Routed<'_> {
    /// The line's money measures as the allocator takes them.
    fn money(&self) -> SharedLine {
        super::shared_line(&self.line, super::money_map(&self.line.amounts))
    }
}

/// Splits every routed line: day by day, run by run (see the module docs).
pub(super) fn split_routed<'i>(
    s: &mut Splitter<'i, '_>,
    mut routed: Vec<Routed<'i>>,
    sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>,
) -> Result<()> {
    routed.sort_by(|a, b| run_order(a, b));
    let mut columns = Columns::default();
    let mut rest = routed.into_iter().peekable();
    let mut day = None;
    while let Some(first) = rest.next() {
        if day != Some(first.line.key.usage_date) {
            // A day's rows are done: they go to the sink (a store writes them) before the next's.
            s.flush(sink)?;
            // One day's weights at a time: 10,000 tenants × rules × 31 days would not be small.
            s.money.forget_prepared();
            s.usage.forget_prepared();
            day = Some(first.line.key.usage_date);
        }
        let mut run = vec![first];
        while let Some(next) = rest.next_if(|n| run_order(&run[0], n) == Ordering::Equal) {
            run.push(next);
        }
        let plan = s.money.plan(&run[0].money(), run[0].rule).map_err(allocate_error)?;
        if plan.shares().is_none() {
            // No weight that day: every line stays unattributed (`no_driver`), line by line.
            for r in run {
                let money = r.money();
                s.split_line(r.line, &money)?;
            }
            continue;
        }
        columns.split_run(s, &plan, run)?;
    }
    s.flush(sink)
}

/// Day, rule, then the reader's grain key (the key without tenant, operation and resource).
fn run_order(a: &Routed<'_>, b: &Routed<'_>) -> Ordering {
    fn grain<'r>(r: &'r Routed<'_>) -> (chrono::NaiveDate, &'r str, [&'r str; 8], &'r curflow_model::Billing) {
        let k = &r.line.key;
        let fields = [
            &*k.service,
            &*k.usage_type,
            &*k.usage_unit,
            &*k.line_item_type,
            &*k.currency,
            &*k.account_id,
            &*k.account_name,
            &*k.region,
        ];
        (k.usage_date, r.rule.name.as_str(), fields, &k.billing)
    }
    grain(a).cmp(&grain(b))
}

/// Buffers reused from run to run.
#[derive(Default)]
struct Columns {
    sums: Vec<Sums>,
    items: Vec<u64>,
    scratch: SplitScratch,
}

/// One run's fixed facts: who is who in the weights.
struct RunTenants {
    /// The pseudo tenant of usage without a tenant, whose part stays with the line.
    pseudo: Option<usize>,
    /// The heaviest real tenant: it gets the line-item count when nothing stays unattributed.
    heaviest: Option<usize>,
    /// At `Grain::Resources(tenant)`: that tenant.
    kept: Option<usize>,
    /// The rule, basis and driver every row of the run carries (one shared copy).
    rule: Name,
    basis: Name,
    driver: Option<Name>,
}

impl Columns {
    fn split_run<'i>(&mut self, s: &mut Splitter<'i, '_>, plan: &SplitPlan, run: Vec<Routed<'i>>) -> Result<()> {
        let Some(shares) = plan.shares() else { return Ok(()) };
        let tenants = shares.tenants();
        let n = tenants.len();
        let pseudo = tenants.iter().position(|t| t.is_unattributed());
        let kept = match s.grain {
            Grain::Resources(tenant) => s.ids.of(tenant).ok().and_then(|id| tenants.binary_search(&id).ok()),
            Grain::Reader => None,
        };
        let who = RunTenants {
            pseudo,
            heaviest: shares.heaviest(pseudo),
            kept,
            rule: s.names.get(&plan.rule),
            basis: s.names.get(plan.basis.as_str()),
            driver: plan.driver.map(|d| s.names.get(d.as_str())),
        };
        self.sums.clear();
        self.sums.resize(n, [0; MEASURES]);
        self.items.clear();
        self.items.resize(n, 0);
        let (mut lines_total, mut outside) = ([0i128; MEASURES], [0i128; MEASURES]);
        let mut template = None;
        for r in run {
            let units = line_units(&r.line)?;
            add_units(&mut lines_total, &units)?;
            let taken = self.split_line(s, plan, &who, &r, &units)?;
            add_units(&mut outside, &taken)?;
            if template.is_none() {
                template = Some((r.line.period, r.line.key.clone()));
            }
            s.pool.push(r.line);
        }
        // Conservation of the run, per measure, in integer units.
        let mut total = outside;
        for row in &self.sums {
            add_units(&mut total, row)?;
        }
        if total != lines_total {
            return Err(Error::Internal(format!(
                "attribution by rule {} does not conserve cost: {total:?} vs {lines_total:?}",
                plan.rule
            )));
        }
        if let (Grain::Reader, Some((period, key))) = (s.grain, template) {
            self.emit(s, plan, &who, period, key)?;
        }
        Ok(())
    }

    /// Splits one line into the sums; returns what did not stay in them (the pseudo tenant's part,
    /// and at `Grain::Resources` the kept tenant's), pushing the rows those become.
    fn split_line(
        &mut self,
        s: &mut Splitter<'_, '_>,
        plan: &SplitPlan,
        who: &RunTenants,
        r: &Routed<'_>,
        units: &Sums,
    ) -> Result<Sums> {
        let Some(shares) = plan.shares() else { return Ok([0; MEASURES]) };
        let before = |i: Option<usize>, sums: &[Sums]| i.and_then(|i| sums.get(i).copied()).unwrap_or_default();
        let (pseudo_before, heavy_before, kept_before) =
            (before(who.pseudo, &self.sums), before(who.heaviest, &self.sums), before(who.kept, &self.sums));
        let mut nonzero = 0;
        let mut done = [false; MEASURES];
        for m in 0..MEASURES {
            if done[m] || units[m] == 0 {
                continue;
            }
            // Measures of one scale with the same amount share one split: the money measures
            // among themselves, the usage amount and pricing quantity (equal on consumption lines).
            let mut measures = [m; MONEY_MEASURES.len()];
            let mut count = 1;
            let same_scale = if m < USAGE { m + 1..USAGE } else { m + 1..MEASURES };
            for other in same_scale {
                if units[other] == units[m] {
                    done[other] = true;
                    measures[count] = other;
                    count += 1;
                }
            }
            let added = shares
                .add_split(units[m], &mut self.sums, &measures[..count], &mut self.scratch)
                .map_err(|e| Error::Internal(format!("attribution of {}: {e}", r.money())))?;
            nonzero = nonzero.max(added.nonzero);
        }
        let pseudo_part = take(&mut self.sums, who.pseudo, &pseudo_before)?;
        let kept_part = take(&mut self.sums, who.kept, &kept_before)?;
        let money_rest = pseudo_part[..USAGE].iter().any(|v| *v != 0);
        // The line-item count: to the remainder when money stays unattributed, otherwise to the
        // heaviest tenant if it got money (then every tenant with money has no more than it).
        let heavy_got_money = who.heaviest.is_some_and(|h| {
            let now = if Some(h) == who.kept { add(&heavy_before, &kept_part) } else { self.sums[h] };
            now[..USAGE] != heavy_before[..USAGE]
        });
        let items_to_heaviest = !money_rest && heavy_got_money;
        let line_items = r.line.amounts.line_items;
        if pseudo_part != [0; MEASURES] {
            s.out.push(remainder_row(r, plan, &pseudo_part, if money_rest { line_items } else { 0 })?);
        }
        let rest_money: BTreeMap<String, Decimal> = MONEY_MEASURES
            .iter()
            .zip(&pseudo_part)
            .map(|(m, v)| Ok(((*m).to_string(), decimal(*v, MONEY_SCALE)?)))
            .collect::<Result<_>>()?;
        s.coverage.add_split(&r.money(), plan.basis, &rest_money).map_err(allocate_error)?;
        let parts = u64::try_from(nonzero - usize::from(pseudo_part != [0; MEASURES])).unwrap_or(u64::MAX);
        match who.kept {
            Some(k) if kept_part != [0; MEASURES] => {
                let items = if items_to_heaviest && who.heaviest == Some(k) { line_items } else { 0 };
                let row = tenant_row(s, plan, who, k, r.line.period, r.line.key.clone(), &kept_part, items)?;
                s.out.push(row);
                s.kept += 1;
            }
            _ => {}
        }
        if let (Some(h), true, None) = (who.heaviest, items_to_heaviest, who.kept) {
            self.items[h] = self.items[h].checked_add(line_items).ok_or_else(|| overflow("line items"))?;
        }
        if matches!(s.grain, Grain::Reader) {
            s.summed_parts += parts;
        }
        Ok(add(&pseudo_part, &kept_part))
    }

    /// One row per tenant with anything in the run's sums.
    fn emit(
        &self,
        s: &mut Splitter<'_, '_>,
        plan: &SplitPlan,
        who: &RunTenants,
        period: crate::period::BillingPeriod,
        key: CostKey,
    ) -> Result<()> {
        let empty = s.names.get("");
        let key = CostKey { operation: empty.clone(), resource_id: empty, ..key };
        for (i, (sums, items)) in self.sums.iter().zip(&self.items).enumerate() {
            if Some(i) == who.pseudo || (*sums == [0; MEASURES] && *items == 0) {
                continue;
            }
            let row = tenant_row(s, plan, who, i, period, key.clone(), sums, *items)?;
            s.out.push(row);
        }
        Ok(())
    }
}

/// Tenant `i`'s row of `plan` with `sums` under `key`.
#[allow(clippy::too_many_arguments)]
fn tenant_row(
    s: &mut Splitter<'_, '_>,
    plan: &SplitPlan,
    who: &RunTenants,
    i: usize,
    period: crate::period::BillingPeriod,
    key: CostKey,
    sums: &Sums,
    line_items: u64,
) -> Result<CostLine> {
    let shares = plan.shares().ok_or_else(|| Error::Internal("a tenant row without weights".into()))?;
    let tenant = shares.tenants().get(i).ok_or_else(|| Error::Internal(format!("no tenant {i} in the weights")))?;
    let tenant = s.names.get(s.ids.tenant_of(tenant));
    Ok(CostLine {
        period,
        key: CostKey { tenant: Some(tenant), ..key },
        amounts: amounts(sums, line_items)?,
        attribution: Some(Box::new(Attribution {
            rule: who.rule.clone(),
            basis: who.basis.clone(),
            driver: who.driver.clone(),
            quantity: plan.quantity(i),
            quantity_total: plan.quantity_total(),
            share: plan.share(i),
        })),
        unattributed_reason: None,
    })
}

/// The part of a line that stays with it: usage whose tenant is unknown.
fn remainder_row(r: &Routed<'_>, plan: &SplitPlan, part: &Sums, line_items: u64) -> Result<CostLine> {
    let driver = plan
        .driver
        .ok_or_else(|| Error::Internal(format!("pseudo tenant in the weights of non-usage rule {}", r.rule.name)))?;
    let reason = UnattributedReason::UsageWithoutTenant { rule: r.rule.name.clone(), driver };
    Ok(CostLine {
        period: r.line.period,
        key: r.line.key.clone(),
        amounts: amounts(part, line_items)?,
        attribution: None,
        unattributed_reason: Some(reason.to_string()),
    })
}

/// Takes tenant `i`'s part of the last line out of the sums (restoring `before`).
fn take(sums: &mut [Sums], i: Option<usize>, before: &Sums) -> Result<Sums> {
    let Some(row) = i.and_then(|i| sums.get_mut(i)) else { return Ok([0; MEASURES]) };
    let mut part = [0i128; MEASURES];
    for m in 0..MEASURES {
        part[m] = row[m].checked_sub(before[m]).ok_or_else(|| overflow("a part"))?;
    }
    *row = *before;
    Ok(part)
}

fn add(a: &Sums, b: &Sums) -> Sums {
    let mut out = *a;
    for m in 0..MEASURES {
        out[m] = out[m].saturating_add(b[m]);
    }
    out
}

fn add_units(total: &mut Sums, v: &Sums) -> Result<()> {
    for m in 0..MEASURES {
        total[m] = total[m].checked_add(v[m]).ok_or_else(|| overflow("a run's total"))?;
    }
    Ok(())
}

/// A line's amounts in integer units (exact: pool lines are at the store's scales).
fn line_units(line: &CostLine) -> Result<Sums> {
    let mut out = [0i128; MEASURES];
    for (slot, (name, v)) in out.iter_mut().zip(line.amounts.money()) {
        *slot = Units::from_decimal(v, MONEY_SCALE)
            .map_err(|e| Error::Internal(format!("{name} {v} of {:?}: {e}", line.key)))?
            .value();
    }
    out[USAGE] = Units::from_decimal(line.amounts.usage_amount, QUANTITY_SCALE)
        .map_err(|e| Error::Internal(format!("usage_amount of {:?}: {e}", line.key)))?
        .value();
    out[PRICING] = Units::from_decimal(line.amounts.pricing_quantity, QUANTITY_SCALE)
        .map_err(|e| Error::Internal(format!("pricing_quantity of {:?}: {e}", line.key)))?
        .value();
    Ok(out)
}

fn amounts(sums: &Sums, line_items: u64) -> Result<Amounts> {
    Ok(Amounts {
        unblended_cost: decimal(sums[0], MONEY_SCALE)?,
        net_unblended_cost: decimal(sums[1], MONEY_SCALE)?,
        amortized_cost: decimal(sums[2], MONEY_SCALE)?,
        ri_sp_trueup: decimal(sums[3], MONEY_SCALE)?,
        ri_sp_upfront_fees: decimal(sums[4], MONEY_SCALE)?,
        list_cost: decimal(sums[5], MONEY_SCALE)?,
        contracted_cost: decimal(sums[6], MONEY_SCALE)?,
        usage_amount: decimal(sums[USAGE], QUANTITY_SCALE)?,
        pricing_quantity: decimal(sums[PRICING], QUANTITY_SCALE)?,
        line_items,
    })
}

fn decimal(units: i128, scale: u32) -> Result<Decimal> {
    Decimal::try_from_i128_with_scale(units, scale).map_err(|_| overflow("a summed part"))
}

fn overflow(what: &str) -> Error {
    Error::Internal(format!("attribution: {what} overflows exact arithmetic"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{AttributionInputs, AttributionOptions, Split, SplitPath, attribute_into, split_lines};
    use super::*;
    use curflow_attribution::{Driver, DriverTotals, TenantId};
    use curflow_model::aggregate::sort_lines;
    use curflow_model::testing::cost_key;

    /// SplitMix64: a deterministic sequence so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn amount(&mut self, scale: u32) -> Decimal {
            let v = i64::try_from(self.below(1 << 40)).unwrap() - (1 << 36);
            Decimal::new(if self.below(5) == 0 { 0 } else { v }, scale)
        }
    }

    /// Shared lines of every kind the rules route (driver rules with and without the pseudo
    /// tenant, a day without evidence, direct-cost rules, unmatched lines), tagged lines for the
    /// direct costs, including a tenant tagged `UNATTRIBUTED`.
    fn month(seed: u64, tenants: usize) -> (Vec<CostLine>, DriverTotals) {
        let mut rng = Rng(seed);
        let period = "2026-10".parse().unwrap();
        let mut names: Vec<String> = (0..tenants).map(|i| format!("t{i:03}")).collect();
        names.push(curflow_attribution::UNATTRIBUTED.to_string());
        let shared = [
            ("AWSLambda", "USE1-Lambda-GB-Second", "Usage"),
            ("AWSLambda", "USE1-Request", "Usage"),
            ("AmazonDynamoDB", "USE1-ReadRequestUnits", "Usage"),
            ("AmazonCloudWatch", "USE1-Metrics", "Usage"),
            ("AWSLambda", "USE1-Lambda-GB-Second", "Credit"),
            ("AmazonEC2", "USE1-BoxUsage", "Usage"),
        ];
        let mut lines = Vec::new();
        let mut drivers = DriverTotals::new();
        for d in 1..=4u32 {
            let day = chrono::NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
            for name in &names {
                if rng.below(3) != 0 {
                    let amounts = Amounts {
                        amortized_cost: rng.amount(10),
                        unblended_cost: rng.amount(10),
                        line_items: 1,
                        ..Amounts::default()
                    };
                    lines.push(CostLine::new(period, cost_key(day, Some(name), "AmazonS3", "Storage"), amounts));
                }
            }
            for i in 0..40 {
                let (service, usage_type, kind) = shared[rng.below(shared.len() as u64) as usize];
                let mut key = cost_key(day, None, service, usage_type);
                key.line_item_type = kind.into();
                key.resource_id = format!("res-{i}").into();
                key.region = if i % 3 == 0 { "eu-west-1".into() } else { "us-east-1".into() };
                let cost = rng.amount(10);
                let usage = rng.amount(6);
                let amounts = Amounts {
                    unblended_cost: cost,
                    net_unblended_cost: if rng.below(2) == 0 { cost } else { rng.amount(12) },
                    amortized_cost: cost,
                    ri_sp_trueup: if rng.below(4) == 0 { rng.amount(12) } else { Decimal::ZERO },
                    usage_amount: usage,
                    // Equal on consumption lines, another quantity on some (a fee's hours).
                    pricing_quantity: if i % 2 == 0 { usage } else { usage + usage },
                    line_items: rng.below(30),
                    ..Amounts::default()
                };
                lines.push(CostLine::new(period, key, amounts));
            }
            if d == 4 {
                continue; // no evidence that day
            }
            for driver in [Driver::LambdaGbSeconds, Driver::LambdaInvocations, Driver::DynamoReadUnits] {
                for name in names.iter().take(tenants) {
                    if rng.below(4) != 0 {
                        let q = Decimal::new(
                            i64::try_from(rng.below(1 << 30)).unwrap(),
                            u32::try_from(rng.below(5)).unwrap(),
                        );
                        drivers.add(driver, day, &TenantId::new(name.clone()).unwrap(), q).unwrap();
                    }
                }
                if d == 2 {
                    drivers.add(driver, day, &TenantId::unattributed(), Decimal::new(123_456, 2)).unwrap();
                }
            }
        }
        (lines, drivers)
    }

    fn sorted(mut split: Split) -> Split {
        sort_lines(&mut split.lines);
        sort_lines(&mut split.pool);
        split
    }

    #[test]
    fn columns_give_the_per_line_split() {
        for (seed, tenants) in [(1, 3), (2, 25), (3, 200)] {
            let (lines, drivers) = month(seed, tenants);
            let options = AttributionOptions { tenant_key: "accountant_id".into(), ..AttributionOptions::default() };
            let inputs = AttributionInputs::with_drivers(&options, drivers).unwrap();
            let fast = sorted(split_lines(lines.clone(), &inputs, Grain::Reader, SplitPath::Columns).unwrap());
            let slow = sorted(split_lines(lines.clone(), &inputs, Grain::Reader, SplitPath::PerLine).unwrap());
            assert!(fast.lines.iter().any(|l| l.attribution.is_some()));
            assert!(
                fast.lines
                    .iter()
                    .any(|l| l.unattributed_reason.as_deref().is_some_and(|r| r.starts_with("usage_without_tenant")))
            );
            assert_eq!(fast.lines, slow.lines, "seed {seed}");
            assert_eq!(fast.pool, slow.pool);
            assert_eq!(fast.coverage, slow.coverage);
            assert_eq!(fast.parts, slow.parts);
            for tenant in ["t000", "t002", curflow_attribution::UNATTRIBUTED] {
                let fast =
                    sorted(split_lines(lines.clone(), &inputs, Grain::Resources(tenant), SplitPath::Columns).unwrap());
                let slow =
                    sorted(split_lines(lines.clone(), &inputs, Grain::Resources(tenant), SplitPath::PerLine).unwrap());
                assert_eq!(fast.lines, slow.lines, "seed {seed}, tenant {tenant}");
                assert_eq!(fast.parts, slow.parts);
            }
        }
    }

    /// The sink of `attribute_into` gets the tagged lines first (the input's own vector, nothing
    /// attributed), then the attributed rows a day at a time; together they are the split.
    #[test]
    fn the_split_hands_over_the_tagged_lines_then_its_rows_a_day_at_a_time() {
        let (lines, drivers) = month(4, 30);
        let options = AttributionOptions { tenant_key: "accountant_id".into(), ..AttributionOptions::default() };
        let inputs = AttributionInputs::with_drivers(&options, drivers).unwrap();
        let tagged = lines.iter().filter(|l| l.key.tenant.is_some()).count();
        let mut chunks: Vec<Vec<CostLine>> = Vec::new();
        let end = attribute_into(lines.clone(), &inputs, &mut |chunk| {
            assert!(!chunk.is_empty());
            chunks.push(chunk);
            Ok(())
        })
        .unwrap();
        assert_eq!(chunks[0].len(), tagged);
        assert!(chunks[0].iter().all(|l| l.key.tenant.is_some() && l.attribution.is_none()));
        // Rows split in columns: one chunk per day (day 4 has no usage evidence, but its credits
        // and CloudWatch lines are split by direct cost).
        let mut days: Vec<chrono::NaiveDate> = chunks[1..]
            .iter()
            .filter(|c| {
                c.iter().any(|l| l.attribution.is_some()) && c.iter().all(|l| l.key.usage_date == c[0].key.usage_date)
            })
            .map(|c| c[0].key.usage_date)
            .collect();
        days.dedup();
        assert_eq!(days.len(), 4, "{days:?}");
        let whole = sorted(split_lines(lines, &inputs, Grain::Reader, SplitPath::Columns).unwrap());
        let streamed = sorted(Split {
            lines: chunks.into_iter().flatten().collect(),
            pool: end.pool,
            coverage: end.coverage,
            parts: end.parts,
        });
        assert_eq!(streamed.lines, whole.lines);
        assert_eq!(streamed.pool, whole.pool);
        assert_eq!(streamed.coverage, whole.coverage);
        assert_eq!(streamed.parts, whole.parts);
    }
}
