//! `curflow attribution explain`: which shared lines gave one tenant what, and why.
//!
//! Every attributed row carries the rule that routed its shared lines, the basis (usage driver,
//! direct cost, even, fixed, assignment), the tenant's quantity of the driver and the total.
//! This module joins each row with the whole of the shared lines it came from (all tenants' parts
//! plus what stayed unattributed), so a finance person can check `share × total = amount` by hand.
//! Rows are stored at the reader's grain (summed over resources); [`explain_resources`] splits the
//! stored pool again for one line per resource.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::aggregate::{CostKey, CostLine, LineSource, add_exact};
use crate::attribute::{AttributionInputs, Grain, attribute_at};
use crate::error::{Error, Result};
use crate::output::{Meta, MetaValue, Rows, Table};
use curflow_model::Name;

/// One stored attributed row's contribution to the tenant: the shared lines of a day, service,
/// usage type and rule (parts are stored at the reader's grain), or one shared line (per resource:
/// `explain --resources`, or a period stored by an older curflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainLine {
    pub usage_date: NaiveDate,
    pub service: String,
    pub usage_type: String,
    pub operation: String,
    pub resource_id: String,
    pub line_item_type: String,
    pub currency: String,
    pub rule: String,
    pub basis: String,
    pub driver: Option<String>,
    /// The tenant's weight (driver quantity, direct cost, ...) and the line's total weight.
    pub tenant_quantity: Decimal,
    pub total_quantity: Decimal,
    pub share: Decimal,
    /// The whole shared line (every tenant's part plus any unattributed remainder).
    pub line_amortized_cost: Decimal,
    /// What the tenant received.
    pub amortized_cost: Decimal,
    pub unblended_cost: Decimal,
}

/// Totals of one rule for the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainRule {
    pub rule: String,
    pub basis: String,
    pub driver: Option<String>,
    pub lines: u64,
    pub amortized_cost: Decimal,
    pub unblended_cost: Decimal,
}

/// The explanation of a tenant's attributed cost in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub tenant: String,
    pub direct_amortized_cost: Decimal,
    pub attributed_amortized_cost: Decimal,
    pub by_rule: Vec<ExplainRule>,
    /// Largest first (by absolute amortized amount), then by day and key.
    pub lines: Vec<ExplainLine>,
}

fn pool_key(key: &CostKey) -> CostKey {
    CostKey { tenant: None, ..key.clone() }
}

/// The pool key at the reader's grain: attributed parts are stored summed over operations and
/// resources (see `attribute::grain`), so their line is every shared line of that grain.
fn grain_key(key: &CostKey, empty: &Name) -> CostKey {
    CostKey { tenant: None, operation: empty.clone(), resource_id: empty.clone(), ..key.clone() }
}

/// Explains `tenant`'s attributed rows among a period's stored `lines`: one explanation line per
/// stored row (per day, service, usage type and rule, as parts are stored at the reader's grain).
pub fn explain(lines: &[CostLine], tenant: &str) -> Result<Explanation> {
    let shared: Vec<&CostLine> = lines.iter().filter(|l| l.source() != LineSource::Cur).collect();
    explain_with(lines, &shared, tenant)
}

/// Explains `tenant`'s cost per shared line (per resource): the period's stored `pool` split
/// again with `inputs`, which must be what the stored split was made from (`stored_inputs`, the
/// period's fingerprint), so the detail adds up to the stored rows exactly.
pub fn explain_resources(
    stored: &[CostLine],
    pool: &[CostLine],
    inputs: &AttributionInputs,
    stored_inputs: (&str, Option<&str>),
    tenant: &str,
) -> Result<Explanation> {
    require_stored_split(stored_inputs, inputs, pool).map_err(|e| match e {
        Error::Argument(m) => Error::Argument(format!("{m}, or explain without --resources")),
        other => other,
    })?;
    let tagged = stored.iter().filter(|l| l.source() == LineSource::Cur).cloned();
    let split = attribute_at(tagged.chain(pool.iter().cloned()).collect(), inputs, Grain::Resources(tenant))?;
    explain_with(&split.lines, &pool.iter().collect::<Vec<_>>(), tenant)
}

/// Checks that a stored period's split can be made again exactly: it keeps its shared `pool`, and
/// `inputs` are those its split was made from (`stored_inputs`: the period's tag key and inputs
/// fingerprint). What `explain --resources` and `export --format focus` recompute from.
pub fn require_stored_split(
    stored_inputs: (&str, Option<&str>),
    inputs: &AttributionInputs,
    pool: &[CostLine],
) -> Result<()> {
    let (tag_key, fingerprint) = stored_inputs;
    if fingerprint != Some(crate::process::inputs_fingerprint(tag_key, Some(inputs)).as_str()) {
        return Err(Error::Argument(
            "the stored split was made from other inputs than the configuration and usage ledger give now; run \
             `curflow attribute --period` first"
                .into(),
        ));
    }
    if pool.is_empty() {
        return Err(Error::Argument(
            "the period keeps no shared pool (stored without attribution, or by an older curflow); run `curflow \
             attribute --period` or `curflow process --force` first"
                .into(),
        ));
    }
    Ok(())
}

/// Explains `tenant`'s rows among `lines`; `shared` are the lines that make up the shared lines'
/// totals (the stored non-tagged rows, or the pool).
fn explain_with(lines: &[CostLine], shared: &[&CostLine], tenant: &str) -> Result<Explanation> {
    let add = |a: Decimal, b: Decimal, what: &str| add_exact(a, b, || format!("explain: the sum of {what}"));
    // Each shared line's total, per line (parts stored per resource, before curflow stored them
    // at the reader's grain) and per grain (parts stored summed over resources).
    let empty = Name::from("");
    let mut pools: BTreeMap<CostKey, Decimal> = BTreeMap::new();
    let mut grains: BTreeMap<CostKey, Decimal> = BTreeMap::new();
    for l in shared {
        for (map, key) in [(&mut pools, pool_key(&l.key)), (&mut grains, grain_key(&l.key, &empty))] {
            let slot = map.entry(key).or_default();
            *slot = add(*slot, l.amounts.amortized_cost, "a shared line's amortized_cost")?;
        }
    }
    let line_total = |key: &CostKey| {
        let at_grain = key.operation.is_empty() && key.resource_id.is_empty();
        let total = if at_grain { grains.get(&grain_key(key, &empty)) } else { pools.get(&pool_key(key)) };
        total.copied().unwrap_or_default()
    };
    let mut out = Explanation {
        tenant: tenant.to_string(),
        direct_amortized_cost: Decimal::ZERO,
        attributed_amortized_cost: Decimal::ZERO,
        by_rule: Vec::new(),
        lines: Vec::new(),
    };
    let mut rules: BTreeMap<(String, String, Option<String>), ExplainRule> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.key.tenant.as_deref() == Some(tenant)) {
        let Some(a) = &l.attribution else {
            out.direct_amortized_cost =
                add(out.direct_amortized_cost, l.amounts.amortized_cost, "direct amortized_cost")?;
            continue;
        };
        out.attributed_amortized_cost =
            add(out.attributed_amortized_cost, l.amounts.amortized_cost, "attributed amortized_cost")?;
        let r = rules
            .entry((a.rule.to_string(), a.basis.to_string(), a.driver.as_ref().map(ToString::to_string)))
            .or_insert_with(|| ExplainRule {
                rule: a.rule.to_string(),
                basis: a.basis.to_string(),
                driver: a.driver.as_ref().map(ToString::to_string),
                lines: 0,
                amortized_cost: Decimal::ZERO,
                unblended_cost: Decimal::ZERO,
            });
        r.lines += 1;
        r.amortized_cost = add(r.amortized_cost, l.amounts.amortized_cost, "a rule's amortized_cost")?;
        r.unblended_cost = add(r.unblended_cost, l.amounts.unblended_cost, "a rule's unblended_cost")?;
        out.lines.push(ExplainLine {
            usage_date: l.key.usage_date,
            service: l.key.service.to_string(),
            usage_type: l.key.usage_type.to_string(),
            operation: l.key.operation.to_string(),
            resource_id: l.key.resource_id.to_string(),
            line_item_type: l.key.line_item_type.to_string(),
            currency: l.key.currency.to_string(),
            rule: a.rule.to_string(),
            basis: a.basis.to_string(),
            driver: a.driver.as_ref().map(ToString::to_string),
            tenant_quantity: a.quantity,
            total_quantity: a.quantity_total,
            share: a.share,
            line_amortized_cost: line_total(&l.key),
            amortized_cost: l.amounts.amortized_cost,
            unblended_cost: l.amounts.unblended_cost,
        });
    }
    out.by_rule = rules.into_values().collect();
    out.by_rule.sort_by(|a, b| b.amortized_cost.abs().cmp(&a.amortized_cost.abs()).then(a.rule.cmp(&b.rule)));
    out.lines.sort_by(|a, b| {
        b.amortized_cost
            .abs()
            .cmp(&a.amortized_cost.abs())
            .then(a.usage_date.cmp(&b.usage_date))
            .then(a.service.cmp(&b.service))
            .then(a.usage_type.cmp(&b.usage_type))
            .then(a.resource_id.cmp(&b.resource_id))
    });
    Ok(out)
}

fn round(d: Decimal, dp: u32) -> String {
    crate::output::group_thousands(d.round_dp(dp))
}

/// A text report: totals, one row per rule, then the `limit` largest lines.
pub fn explain_text(e: &Explanation, period: &str, limit: usize) -> String {
    let mut out = String::new();
    // Display never panics: a total beyond 28 digits (explain() already refuses one) shows as "—".
    let total = crate::money::exact_add(e.direct_amortized_cost, e.attributed_amortized_cost)
        .map_or_else(|| "—".to_string(), |t| round(t, 4));
    out.push_str(&format!(
        "Tenant {} in {period}: amortized {} = direct {} + attributed {}\n\n",
        e.tenant,
        total,
        round(e.direct_amortized_cost, 4),
        round(e.attributed_amortized_cost, 4)
    ));
    if e.lines.is_empty() {
        out.push_str("No shared cost was attributed to this tenant (no evidence, or no rule gave it a share).\n");
        return out;
    }
    out.push_str("By rule:\n");
    let rows: Vec<[String; 5]> = e
        .by_rule
        .iter()
        .map(|r| {
            [
                r.rule.clone(),
                r.basis.clone(),
                r.driver.clone().unwrap_or_else(|| "-".into()),
                r.lines.to_string(),
                round(r.amortized_cost, 4),
            ]
        })
        .collect();
    out.push_str(&table(["rule", "basis", "driver", "lines", "amortized"], rows, &[3, 4]));
    out.push_str(&format!(
        "\nLargest {} of {} shared lines (tenant amount = share × line amount):\n",
        limit.min(e.lines.len()),
        e.lines.len()
    ));
    let rows: Vec<[String; 8]> = e
        .lines
        .iter()
        .take(limit)
        .map(|l| {
            [
                l.usage_date.to_string(),
                format!("{} {}", l.service, l.usage_type),
                l.rule.clone(),
                l.driver.clone().unwrap_or_else(|| l.basis.clone()),
                format!("{} / {}", round(l.tenant_quantity, 4), round(l.total_quantity, 4)),
                l.share
                    .checked_mul(Decimal::ONE_HUNDRED)
                    .map_or_else(|| "—".into(), |p| format!("{:.4}%", p.round_dp(4))),
                round(l.line_amortized_cost, 6),
                round(l.amortized_cost, 6),
            ]
        })
        .collect();
    let header = ["day", "line", "rule", "by", "quantity", "share", "line amount", "tenant amount"];
    out.push_str(&table(header, rows, &[4, 5, 6, 7]));
    out
}

fn table<const N: usize>(header: [&str; N], rows: Vec<[String; N]>, right: &[usize]) -> String {
    let mut t = Table::new(header).right(right.iter().copied());
    for r in rows {
        t.row(r);
    }
    t.render()
}

/// Columns of `curflow attribution explain --format csv|json|jsonl`: one shared line per row.
pub const EXPLAIN_COLUMNS: [&str; 16] = [
    "usage_date",
    "service",
    "usage_type",
    "operation",
    "resource_id",
    "line_item_type",
    "currency",
    "rule",
    "basis",
    "driver",
    "tenant_quantity",
    "total_quantity",
    "share",
    "line_amortized_cost",
    "amortized_cost",
    "unblended_cost",
];

/// Every line (exact amounts) in [`EXPLAIN_COLUMNS`], and the JSON metadata: tenant, period,
/// direct and attributed totals, the per-rule totals. (Cell by cell in column order, as every
/// output's row builder is: the column list is the documented contract.)
pub fn explain_output(e: &Explanation, period: &str) -> Result<(Rows, Meta)> {
    let mut rows = Rows::new(EXPLAIN_COLUMNS);
    for l in &e.lines {
        rows.push(vec![
            l.usage_date.to_string().into(),
            l.service.as_str().into(),
            l.usage_type.as_str().into(),
            l.operation.as_str().into(),
            l.resource_id.as_str().into(),
            l.line_item_type.as_str().into(),
            l.currency.as_str().into(),
            l.rule.as_str().into(),
            l.basis.as_str().into(),
            l.driver.as_deref().into(),
            l.tenant_quantity.into(),
            l.total_quantity.into(),
            l.share.into(),
            l.line_amortized_cost.into(),
            l.amortized_cost.into(),
            l.unblended_cost.into(),
        ])?;
    }
    let mut by_rule = Rows::new(["rule", "basis", "driver", "lines", "amortized_cost", "unblended_cost"]);
    for r in &e.by_rule {
        by_rule.push(vec![
            r.rule.as_str().into(),
            r.basis.as_str().into(),
            r.driver.as_deref().into(),
            r.lines.into(),
            r.amortized_cost.into(),
            r.unblended_cost.into(),
        ])?;
    }
    let meta: Meta = vec![
        ("billing_period", period.into()),
        ("tenant", e.tenant.as_str().into()),
        ("direct_amortized_cost", e.direct_amortized_cost.to_string().into()),
        ("attributed_amortized_cost", e.attributed_amortized_cost.to_string().into()),
        ("by_rule", MetaValue::Rows(by_rule)),
    ];
    Ok((rows, meta))
}
