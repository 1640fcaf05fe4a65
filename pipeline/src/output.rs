//! What people and programs see: the `process` summary and the `costs` views.
//!
//! CSV and JSON columns are a stable interface (documented in README, "CLI reference"); amounts
//! there are exact decimal strings. The table view rounds to 4 places for reading.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::aggregate::{Amounts, CostLine, LineSource};
use crate::error::Result;
use crate::process::PeriodReport;
use crate::store::ReplaceOutcome;

/// Appends a formatted line to a `String` (which cannot fail, unlike `fmt::Write`).
macro_rules! wln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Name shown for the shared pool (lines without a tenant tag).
pub const UNATTRIBUTED: &str = "UNATTRIBUTED";

/// The dimension `curflow costs --by` groups on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Tenant,
    Service,
    Day,
}

impl GroupBy {
    /// Column name of the grouping key in every output format.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Tenant => "tenant",
            GroupBy::Service => "service",
            GroupBy::Day => "usage_date",
        }
    }
}

/// One row of `curflow costs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostsRow {
    pub billing_period: String,
    /// Tenant id (or `UNATTRIBUTED`), service code or `YYYY-MM-DD`, per [`GroupBy`].
    pub key: String,
    pub currency: String,
    pub unblended_cost: Decimal,
    pub net_unblended_cost: Decimal,
    pub amortized_cost: Decimal,
    pub ri_sp_trueup: Decimal,
    pub ri_sp_upfront_fees: Decimal,
    pub line_items: u64,
    /// Amortized cost from rows tagged with the tenant (0 for the pool).
    pub direct_amortized_cost: Decimal,
    /// Amortized cost split to the tenant from shared lines (`amortized_cost` = direct + attributed
    /// for tenants; for `UNATTRIBUTED` it is what remains in the pool).
    pub attributed_amortized_cost: Decimal,
}

/// Tenant label of a line (`UNATTRIBUTED` for the shared pool).
pub fn tenant_label(line: &CostLine) -> &str {
    line.key.tenant.as_deref().unwrap_or(UNATTRIBUTED)
}

/// Groups stored lines for `curflow costs`; `tenant` filters first (`UNATTRIBUTED` selects the pool).
pub fn costs_rows(lines: &[CostLine], by: GroupBy, tenant: Option<&str>) -> Result<Vec<CostsRow>> {
    let mut groups: BTreeMap<(String, String, String), (Amounts, Decimal, Decimal)> = BTreeMap::new();
    for line in lines.iter().filter(|l| tenant.is_none_or(|t| tenant_label(l) == t)) {
        // Attributed rows belong to their tenant; the shared pool shows only what remains.
        let key = match by {
            GroupBy::Tenant => tenant_label(line).to_string(),
            GroupBy::Service => line.key.service.clone(),
            GroupBy::Day => line.key.usage_date.format("%Y-%m-%d").to_string(),
        };
        let entry = groups.entry((line.period.to_string(), key, line.key.currency.clone())).or_default();
        entry.0.add(&line.amounts)?;
        match line.source() {
            LineSource::Cur => entry.1 += line.amounts.amortized_cost,
            LineSource::Attributed => entry.2 += line.amounts.amortized_cost,
            LineSource::Shared => {}
        }
    }
    Ok(groups
        .into_iter()
        .map(|((billing_period, key, currency), (a, direct, attributed))| CostsRow {
            billing_period,
            key,
            currency,
            unblended_cost: a.unblended_cost.normalize(),
            net_unblended_cost: a.net_unblended_cost.normalize(),
            amortized_cost: a.amortized_cost.normalize(),
            ri_sp_trueup: a.ri_sp_trueup.normalize(),
            ri_sp_upfront_fees: a.ri_sp_upfront_fees.normalize(),
            line_items: a.line_items,
            direct_amortized_cost: direct.normalize(),
            attributed_amortized_cost: attributed.normalize(),
        })
        .collect())
}

/// Shares of the period's amortized cost by how it reached tenants (per currency): tagged,
/// attributed by usage driver, by assignment, by fallback policy, unattributed.
pub fn coverage_line(lines: &[CostLine]) -> String {
    let mut per: BTreeMap<String, [Decimal; 5]> = BTreeMap::new();
    for l in lines {
        let slot = per.entry(l.key.currency.clone()).or_default();
        let i = match (l.source(), l.attribution.as_ref().map(|a| a.basis.as_str())) {
            (LineSource::Cur, _) => 0,
            (LineSource::Attributed, Some("usage_driver")) => 1,
            (LineSource::Attributed, Some("assignment")) => 2,
            (LineSource::Attributed, _) => 3,
            (LineSource::Shared, _) => 4,
        };
        slot[i] += l.amounts.amortized_cost;
    }
    per.iter()
        .map(|(currency, s)| {
            let total: Decimal = s.iter().sum();
            format!(
                "coverage of amortized cost ({currency}): tagged {}, attributed by usage {}, by assignment {}, by fallback {}, unattributed {}",
                percent(s[0], total),
                percent(s[1], total),
                percent(s[2], total),
                percent(s[3], total),
                percent(s[4], total)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const AMOUNT_HEADERS: [&str; 8] = [
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "line_items",
    "direct_amortized_cost",
    "attributed_amortized_cost",
];

fn amount_cells(r: &CostsRow, exact: bool) -> [String; 8] {
    let f = |d: Decimal| {
        if exact {
            d.to_string()
        } else {
            let mut rounded = d.round_dp(4);
            rounded.rescale(4);
            group_thousands(rounded)
        }
    };
    [
        f(r.unblended_cost),
        f(r.net_unblended_cost),
        f(r.amortized_cost),
        f(r.ri_sp_trueup),
        f(r.ri_sp_upfront_fees),
        r.line_items.to_string(),
        f(r.direct_amortized_cost),
        f(r.attributed_amortized_cost),
    ]
}

/// CSV with a header; exact amounts.
pub fn costs_csv(rows: &[CostsRow], by: GroupBy) -> String {
    let mut out = format!("billing_period,{},currency,{}\n", by.column(), AMOUNT_HEADERS.join(","));
    for r in rows {
        let key = if r.key.contains([',', '"', '\n']) {
            format!("\"{}\"", r.key.replace('"', "\"\""))
        } else {
            r.key.clone()
        };
        wln!(out, "{},{},{},{}", r.billing_period, key, r.currency, amount_cells(r, true).join(","));
    }
    out
}

/// A JSON array of objects named like the CSV columns; exact amounts as strings.
pub fn costs_json(rows: &[CostsRow], by: GroupBy) -> Result<String> {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("billing_period".into(), r.billing_period.clone().into());
            o.insert(by.column().into(), r.key.clone().into());
            o.insert("currency".into(), r.currency.clone().into());
            for (name, cell) in AMOUNT_HEADERS.iter().zip(amount_cells(r, true)) {
                if *name == "line_items" {
                    o.insert((*name).into(), r.line_items.into());
                } else {
                    o.insert((*name).into(), cell.into());
                }
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::to_string_pretty(&values).map_err(|e| crate::error::Error::Internal(e.to_string()))
}

/// An aligned table with a total per currency and each row's share of unblended cost.
pub fn costs_table(rows: &[CostsRow], by: GroupBy) -> Result<String> {
    let mut totals: BTreeMap<String, Amounts> = BTreeMap::new();
    let mut direct_attributed: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for r in rows {
        totals.entry(r.currency.clone()).or_default().add(&Amounts {
            unblended_cost: r.unblended_cost,
            net_unblended_cost: r.net_unblended_cost,
            amortized_cost: r.amortized_cost,
            ri_sp_trueup: r.ri_sp_trueup,
            ri_sp_upfront_fees: r.ri_sp_upfront_fees,
            usage_amount: Decimal::ZERO,
            line_items: r.line_items,
        })?;
        let d = direct_attributed.entry(r.currency.clone()).or_default();
        d.0 += r.direct_amortized_cost;
        d.1 += r.attributed_amortized_cost;
    }
    let share = |r: &CostsRow| {
        let total = totals.get(&r.currency).map(|t| t.unblended_cost).unwrap_or_default();
        percent(r.unblended_cost, total)
    };
    let mut header = vec![by.column().to_string(), "currency".into()];
    header.extend(AMOUNT_HEADERS.iter().map(|h| h.to_string()));
    header.push("share".into());
    let mut body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.key.clone(), r.currency.clone()];
            cells.extend(amount_cells(r, false));
            cells.push(share(r));
            cells
        })
        .collect();
    for (currency, t) in &totals {
        let total_row = CostsRow {
            billing_period: String::new(),
            key: "TOTAL".into(),
            currency: currency.clone(),
            unblended_cost: t.unblended_cost,
            net_unblended_cost: t.net_unblended_cost,
            amortized_cost: t.amortized_cost,
            ri_sp_trueup: t.ri_sp_trueup,
            ri_sp_upfront_fees: t.ri_sp_upfront_fees,
            line_items: t.line_items,
            direct_amortized_cost: direct_attributed.get(currency).map(|d| d.0).unwrap_or_default(),
            attributed_amortized_cost: direct_attributed.get(currency).map(|d| d.1).unwrap_or_default(),
        };
        let mut cells = vec!["TOTAL".to_string(), currency.clone()];
        cells.extend(amount_cells(&total_row, false));
        cells.push("100.0%".into());
        body.push(cells);
    }
    Ok(render_table(&header, &body, rows.len()))
}

fn render_table(header: &[String], body: &[Vec<String>], separator_before: usize) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| body.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 2 { format!("{c:<w$}", w = widths[i]) } else { format!("{c:>w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let rule = widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ");
    let mut out = format!("{}\n{rule}\n", line(header));
    for (i, row) in body.iter().enumerate() {
        if i == separator_before {
            wln!(out, "{rule}");
        }
        wln!(out, "{}", line(row));
    }
    out
}

/// `1234567.8901` → `1,234,567.8901`; keeps the decimal's own scale (`0.0000` stays so).
pub fn group_thousands(d: Decimal) -> String {
    let s = d.to_string();
    let (sign, s) = s.strip_prefix('-').map(|r| ("-", r)).unwrap_or(("", s.as_str()));
    let (int, frac) = s.split_once('.').map(|(i, f)| (i, Some(f))).unwrap_or((s, None));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `part / whole` as a percentage with one decimal (`—` when the whole is 0).
pub fn percent(part: Decimal, whole: Decimal) -> String {
    if whole.is_zero() {
        return "—".into();
    }
    match part.checked_div(whole) {
        Some(q) => format!("{:.1}%", (q * Decimal::ONE_HUNDRED).round_dp(1)),
        None => "—".into(),
    }
}

/// The human summary of one processed period.
pub fn process_summary(r: &PeriodReport, store: &str) -> String {
    let mut out = String::new();
    wln!(out, "Billing period {}  ({})", r.period, r.source);
    wln!(out, "  version         {} ({})", r.version.id, r.version.time.format("%Y-%m-%d %H:%M:%S UTC"));
    match &r.outcome {
        ReplaceOutcome::Unchanged if r.scan_skipped => {
            wln!(out, "  result          already stored at this version in {store}; nothing to do");
            return out;
        }
        ReplaceOutcome::RefusedOlder { stored } if r.scan_skipped => {
            wln!(
                out,
                "  result          REFUSED: {store} holds newer version {} ({}); store unchanged (use --force to replace anyway)",
                stored.id,
                stored.time.format("%Y-%m-%d %H:%M:%S UTC")
            );
            return out;
        }
        _ => {}
    }
    wln!(out, "  input           {} file(s), {}", r.files, r.format);
    wln!(
        out,
        "  rows read       {}  ({} split-cost-allocation child rows excluded)",
        group_thousands(Decimal::from(r.rows_read)),
        r.split_child_rows
    );
    let types: Vec<String> = r
        .line_item_types
        .iter()
        .map(|(name, t)| {
            let unknown = if t.known { "" } else { " [unknown type: kept at unblended cost]" };
            format!("{name} {}{unknown}", group_thousands(Decimal::from(t.rows)))
        })
        .collect();
    wln!(out, "  line-item types {}", types.join(", "));
    for (currency, t) in &r.totals {
        wln!(
            out,
            "  totals ({currency})    unblended {}  net unblended {}  amortized {}",
            group_thousands(t.unblended_cost.round_dp(2)),
            group_thousands(t.net_unblended_cost.round_dp(2)),
            group_thousands(t.amortized_cost.round_dp(2)),
        );
        wln!(
            out,
            "                  RI/SP true-up {}  upfront fees {}  (exact: unblended {})",
            group_thousands(t.ri_sp_trueup.round_dp(2)),
            group_thousands(t.ri_sp_upfront_fees.round_dp(2)),
            t.unblended_cost.normalize()
        );
        let pool = r.unattributed.get(currency).copied().unwrap_or_default();
        wln!(
            out,
            "  unattributed    {} of unblended ({} {currency}), {} of amortized — untagged and account-level cost",
            percent(pool.unblended_cost, t.unblended_cost),
            group_thousands(pool.unblended_cost.round_dp(2)),
            percent(pool.amortized_cost, t.amortized_cost),
        );
    }
    if let Some(cov) = &r.coverage {
        for (currency, measures) in &cov.amounts {
            if let (Some(c), Some(t)) = (measures.get("amortized_cost"), r.totals.get(currency)) {
                let tagged = t.amortized_cost - c.shared;
                wln!(
                    out,
                    "  coverage ({currency}) of amortized: tagged {}, attributed by usage {}, by assignment {}, by fallback {}, unattributed {}",
                    percent(tagged, t.amortized_cost),
                    percent(c.usage_driver, t.amortized_cost),
                    percent(c.assigned, t.amortized_cost),
                    percent(c.fallback, t.amortized_cost),
                    percent(c.unattributed, t.amortized_cost)
                );
            }
        }
    }
    let tag_note = if r.tenant_tag_present {
        ""
    } else {
        " (the tenant tag column is absent: is the tag activated for cost allocation?)"
    };
    wln!(out, "  tenants         {}{tag_note}", r.tenants);
    let result = match &r.outcome {
        ReplaceOutcome::Replaced { previous: None } => format!("stored {} cost lines in {store}", r.lines_written),
        ReplaceOutcome::Replaced { previous: Some(p) } => {
            format!("replaced version {} with {} cost lines in {store}", p.id, r.lines_written)
        }
        ReplaceOutcome::Unchanged => format!("already stored at this version in {store}; nothing changed"),
        ReplaceOutcome::RefusedOlder { stored } => {
            format!(
                "REFUSED: {store} holds newer version {}; store unchanged (use --force to replace anyway)",
                stored.id
            )
        }
    };
    wln!(out, "  result          {result}");
    wln!(
        out,
        "  elapsed         {:.2} s, {} rows/s",
        r.elapsed.as_secs_f64(),
        group_thousands(Decimal::from(r.rows_per_second().round() as u64))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_percentages_read_well() {
        assert_eq!(group_thousands(Decimal::new(12345678901, 4)), "1,234,567.8901");
        assert_eq!(group_thousands(Decimal::new(-1000, 0)), "-1,000");
        assert_eq!(group_thousands(Decimal::new(12, 1)), "1.2");
        assert_eq!(percent(Decimal::ONE, Decimal::new(3, 0)), "33.3%");
        assert_eq!(percent(Decimal::ONE, Decimal::ZERO), "—");
        assert_eq!(percent(Decimal::ZERO, Decimal::ONE), "0.0%");
    }
}

/// One stored cost line as a flat record (the columns of `curflow export --format csv|jsonl`).
#[derive(Debug, Clone, Serialize)]
pub struct ExportRecord<'a> {
    pub billing_period: String,
    pub usage_date: chrono::NaiveDate,
    pub tenant: &'a str,
    pub source: &'static str,
    pub service: &'a str,
    pub usage_type: &'a str,
    pub operation: &'a str,
    pub resource_id: &'a str,
    pub line_item_type: &'a str,
    pub currency: &'a str,
    pub unblended_cost: Decimal,
    pub net_unblended_cost: Decimal,
    pub amortized_cost: Decimal,
    pub ri_sp_trueup: Decimal,
    pub ri_sp_upfront_fees: Decimal,
    pub usage_amount: Decimal,
    pub line_items: u64,
    pub rule: Option<&'a str>,
    pub driver: Option<&'a str>,
    pub share: Option<Decimal>,
    pub unattributed_reason: Option<&'a str>,
}

/// The export record of `line`.
pub fn export_record(line: &CostLine) -> ExportRecord<'_> {
    let a = line.attribution.as_ref();
    ExportRecord {
        billing_period: line.period.to_string(),
        usage_date: line.key.usage_date,
        tenant: tenant_label(line),
        source: line.source().as_str(),
        service: &line.key.service,
        usage_type: &line.key.usage_type,
        operation: &line.key.operation,
        resource_id: &line.key.resource_id,
        line_item_type: &line.key.line_item_type,
        currency: &line.key.currency,
        unblended_cost: line.amounts.unblended_cost,
        net_unblended_cost: line.amounts.net_unblended_cost,
        amortized_cost: line.amounts.amortized_cost,
        ri_sp_trueup: line.amounts.ri_sp_trueup,
        ri_sp_upfront_fees: line.amounts.ri_sp_upfront_fees,
        usage_amount: line.amounts.usage_amount,
        line_items: line.amounts.line_items,
        rule: a.map(|a| a.rule.as_str()),
        driver: a.and_then(|a| a.driver.as_deref()),
        share: a.map(|a| a.share),
        unattributed_reason: line.unattributed_reason.as_deref(),
    }
}
