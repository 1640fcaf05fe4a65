//! What people and programs see: one output format switch and emitter ([`emit`]), one table
//! renderer ([`table`]), the `costs` views ([`costs`]) and the `process` summary.
//!
//! CSV, JSON and JSON Lines columns are a stable interface (documented in README, "CLI
//! reference"); amounts there are exact decimal strings. Tables round for reading.

pub mod costs;
pub mod emit;
pub mod focus;
pub mod parquet;
pub mod table;

pub use costs::{CostMeasure, CostsQuery, CostsRow, GroupBy, costs_data, costs_meta, costs_rows, costs_table};
pub use emit::{Meta, MetaValue, OutputFormat, Rows, Value, render};
pub use table::Table;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::aggregate::{Amounts, CostLine, LineSource, TypeStats};
use crate::error::Result;
use crate::process::PeriodReport;
use crate::process::backfill::{BackfillSummary, PeriodStatus};
use crate::store::{PeriodRecord, ReplaceOutcome};

/// Appends a formatted line to a `String` (which cannot fail, unlike `fmt::Write`).
macro_rules! wln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Name shown for the shared pool (lines without a tenant tag).
pub const UNATTRIBUTED: &str = "UNATTRIBUTED";

/// Tenant label of a line (`UNATTRIBUTED` for the shared pool).
pub fn tenant_label(line: &CostLine) -> &str {
    line.key.tenant.as_deref().unwrap_or(UNATTRIBUTED)
}

/// Shares of the period's amortized cost by how it reached tenants (per currency): tagged,
/// attributed by usage driver, by assignment, by fallback policy, unattributed.
pub fn coverage_line(lines: &[CostLine]) -> String {
    // `None` once a sum has no exact `Decimal`: display code shows "—" rather than panicking
    // or printing a rounded share.
    let mut per: BTreeMap<String, Option<[Decimal; 5]>> = BTreeMap::new();
    for l in lines {
        let slot = per.entry(l.key.currency.to_string()).or_insert(Some([Decimal::ZERO; 5]));
        let i = match (l.source(), l.attribution.as_ref().map(|a| a.basis.as_str())) {
            (LineSource::Cur, _) => 0,
            (LineSource::Attributed, Some("usage_driver")) => 1,
            (LineSource::Attributed, Some("assignment")) => 2,
            (LineSource::Attributed, _) => 3,
            (LineSource::Shared, _) => 4,
        };
        *slot = slot.and_then(|mut s| {
            s[i] = crate::money::exact_add(s[i], l.amounts.amortized_cost)?;
            Some(s)
        });
    }
    per.iter()
        .map(|(currency, s)| {
            let Some(s) = s else {
                return format!("coverage of amortized cost ({currency}): — (the amounts are too large to sum exactly)");
            };
            let total = crate::money::exact_sum(s.iter().copied()).unwrap_or(Decimal::ZERO);
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

/// `part / whole` as a percentage with one decimal; `—` when the whole rounds to 0.00 (credits
/// cancelling usage leave a total of a few billionths, and a share of that means nothing: the real
/// CUR 2.0 sample's total is -0.0000000676).
pub fn percent(part: Decimal, whole: Decimal) -> String {
    if whole.abs() < Decimal::new(5, 3) {
        return "—".into();
    }
    match part.checked_div(whole).and_then(|q| q.checked_mul(Decimal::ONE_HUNDRED)) {
        Some(p) => format!("{:.1}%", p.round_dp(1)),
        None => "—".into(),
    }
}

/// The summary's totals, unattributed share and attribution coverage, per currency.
fn summary_amounts(r: &PeriodReport, out: &mut String) {
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
        if !t.list_cost.is_zero() {
            wln!(
                out,
                "                  list (public on-demand) {}  (exact: {})",
                group_thousands(t.list_cost.round_dp(2)),
                t.list_cost.normalize()
            );
        }
        if !t.contracted_cost.is_zero() {
            wln!(
                out,
                "                  contracted {}  (exact: {})",
                group_thousands(t.contracted_cost.round_dp(2)),
                t.contracted_cost.normalize()
            );
        }
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
                let Some(tagged) = crate::money::exact_sub(t.amortized_cost, c.shared) else { continue };
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
}

/// One line-item type in the run summary: its rows, and what curflow could not read for it.
fn type_summary(name: &str, t: &TypeStats) -> String {
    let unknown = if t.known { "" } else { " [unknown type: kept at unblended cost]" };
    let missing = if t.missing_columns.is_empty() {
        String::new()
    } else {
        let s = if t.missing_columns.len() == 1 { "" } else { "s" };
        format!(" [no {} column{s}: amortized and true-up count it 0]", t.missing_columns.join(", "))
    };
    format!("{name} {}{unknown}{missing}", group_thousands(Decimal::from(t.rows)))
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
    let types: Vec<String> = r.line_item_types.iter().map(|(name, t)| type_summary(name, t)).collect();
    wln!(out, "  line-item types {}", types.join(", "));
    summary_amounts(r, &mut out);
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
    if r.spilled_bytes > 0 {
        wln!(
            out,
            "  spilled         {} MiB to spill-dir (the groups outgrew memory-limit-mb)",
            group_thousands(Decimal::from(r.spilled_bytes.div_ceil(1 << 20)))
        );
    }
    if r.lines_spilled_bytes > 0 {
        wln!(
            out,
            "  lines spilled   {} MiB to spill-dir in sorted runs (the cost lines outgrew a quarter of \
             memory-limit-mb)",
            group_thousands(Decimal::from(r.lines_spilled_bytes.div_ceil(1 << 20)))
        );
    }
    if r.tables_flushed > 0 {
        wln!(
            out,
            "  flushed         the group tables {} time(s) before the last file (they reached half of the fast \
             path's share of memory-limit-mb)",
            r.tables_flushed
        );
    }
    wln!(
        out,
        "  elapsed         {:.2} s, {} rows/s",
        r.elapsed.as_secs_f64(),
        group_thousands(Decimal::from(r.rows_per_second().round() as u64))
    );
    out
}

/// Columns of `curflow export --kind lines`: one stored cost line per row.
pub const EXPORT_COLUMNS: [&str; 23] = [
    "billing_period",
    "usage_date",
    "tenant",
    "source",
    "service",
    "usage_type",
    "operation",
    "resource_id",
    "line_item_type",
    "currency",
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "list_cost",
    "contracted_cost",
    "usage_amount",
    "line_items",
    "rule",
    "driver",
    "share",
    "unattributed_reason",
];

/// Every stored line as a row of [`EXPORT_COLUMNS`] (exact amounts at the stored scale).
pub fn export_rows(lines: &[CostLine]) -> Result<Rows> {
    let mut rows = Rows::new(EXPORT_COLUMNS);
    for line in lines {
        let a = line.attribution.as_ref();
        let m = &line.amounts;
        rows.push(vec![
            line.period.to_string().into(),
            line.key.usage_date.to_string().into(),
            tenant_label(line).into(),
            line.source().as_str().into(),
            line.key.service.as_str().into(),
            line.key.usage_type.as_str().into(),
            line.key.operation.as_str().into(),
            line.key.resource_id.as_str().into(),
            line.key.line_item_type.as_str().into(),
            line.key.currency.as_str().into(),
            m.unblended_cost.into(),
            m.net_unblended_cost.into(),
            m.amortized_cost.into(),
            m.ri_sp_trueup.into(),
            m.ri_sp_upfront_fees.into(),
            m.list_cost.into(),
            m.contracted_cost.into(),
            m.usage_amount.into(),
            m.line_items.into(),
            a.map(|a| a.rule.as_str()).into(),
            a.and_then(|a| a.driver.as_deref()).into(),
            a.map(|a| a.share).into(),
            line.unattributed_reason.as_deref().into(),
        ])?;
    }
    Ok(rows)
}

/// Columns of `curflow process --format csv|json|jsonl`: one row per billing period and currency
/// (a period with no cost line, e.g. skipped as already stored, has one row without currency).
pub const PROCESS_COLUMNS: [&str; 25] = [
    "billing_period",
    "currency",
    "version",
    "version_time",
    "source",
    "format",
    "files",
    "rows_read",
    "split_child_rows",
    "tenants",
    "tenant_tag_present",
    "unblended_cost",
    "net_unblended_cost",
    "amortized_cost",
    "ri_sp_trueup",
    "ri_sp_upfront_fees",
    "list_cost",
    "contracted_cost",
    "unattributed_unblended_cost",
    "unattributed_amortized_cost",
    "lines_written",
    "outcome",
    "replaced_version",
    "newer_stored_version",
    "elapsed_seconds",
];

/// `stored`, `replaced`, `unchanged` or `refused`, with the other version involved.
fn outcome_cells(o: &ReplaceOutcome) -> [Value; 3] {
    match o {
        ReplaceOutcome::Replaced { previous: None } => ["stored".into(), Value::Null, Value::Null],
        ReplaceOutcome::Replaced { previous: Some(p) } => ["replaced".into(), p.id.as_str().into(), Value::Null],
        ReplaceOutcome::Unchanged => ["unchanged".into(), Value::Null, Value::Null],
        ReplaceOutcome::RefusedOlder { stored } => ["refused".into(), Value::Null, stored.id.as_str().into()],
    }
}

/// Appends `r`'s rows of [`PROCESS_COLUMNS`] to `rows`.
pub fn process_rows(r: &PeriodReport, rows: &mut Rows) -> Result<()> {
    let currencies: Vec<Option<&String>> =
        if r.totals.is_empty() { vec![None] } else { r.totals.keys().map(Some).collect() };
    for currency in currencies {
        let total = currency.and_then(|c| r.totals.get(c));
        let pool = currency.map(|c| r.unattributed.get(c).copied().unwrap_or_default());
        let mut cells: Vec<Value> = vec![
            r.period.to_string().into(),
            currency.map(String::as_str).into(),
            r.version.id.as_str().into(),
            r.version.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
            r.source.as_str().into(),
            r.format.as_str().into(),
            r.files.into(),
            r.rows_read.into(),
            r.split_child_rows.into(),
            r.tenants.into(),
            r.tenant_tag_present.into(),
        ];
        let money = |f: fn(&Amounts) -> Decimal, a: Option<&Amounts>| Value::from(a.map(|a| f(a).normalize()));
        cells.extend([
            money(|a| a.unblended_cost, total),
            money(|a| a.net_unblended_cost, total),
            money(|a| a.amortized_cost, total),
            money(|a| a.ri_sp_trueup, total),
            money(|a| a.ri_sp_upfront_fees, total),
            money(|a| a.list_cost, total),
            money(|a| a.contracted_cost, total),
            money(|a| a.unblended_cost, pool.as_ref()),
            money(|a| a.amortized_cost, pool.as_ref()),
            r.lines_written.into(),
        ]);
        cells.extend(outcome_cells(&r.outcome));
        cells.push(Decimal::new(r.elapsed.as_millis().min(i64::MAX as u128) as i64, 3).into());
        rows.push(cells)?;
    }
    Ok(())
}

/// Columns of `curflow periods`.
pub const PERIOD_COLUMNS: [&str; 10] = [
    "billing_period",
    "version",
    "version_time",
    "rows_read",
    "source",
    "format",
    "files",
    "split_child_rows",
    "tag_key",
    "processed_at",
];

/// The stored periods: exact rows, and the table for people.
pub fn periods_output(records: &[PeriodRecord]) -> Result<(Rows, String)> {
    let mut rows = Rows::new(PERIOD_COLUMNS);
    let mut table = Table::new(["period", "version", "version time (UTC)", "rows read", "source"]).right([3]);
    for r in records {
        let rfc = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        rows.push(vec![
            r.period.to_string().into(),
            r.version.id.as_str().into(),
            rfc(&r.version.time).into(),
            r.rows_read.into(),
            r.source.as_str().into(),
            r.format.as_str().into(),
            r.files.into(),
            r.split_child_rows.into(),
            r.tag_key.as_str().into(),
            rfc(&r.processed_at).into(),
        ])?;
        table.row([
            r.period.to_string(),
            r.version.id.clone(),
            r.version.time.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.rows_read.to_string(),
            r.source.clone(),
        ]);
    }
    Ok((rows, table.render()))
}

/// Columns of `curflow backfill --format csv|json|jsonl`: one row per billing period and currency
/// of its stored total (a period without one, e.g. failed, has one row without currency).
pub const BACKFILL_COLUMNS: [&str; 8] =
    ["billing_period", "version", "rows_read", "currency", "unblended_cost", "status", "reason", "source"];

/// The rows of a backfill run; `status` is `processed`, `already_stored`, `refused` or `failed`.
pub fn backfill_rows(summary: &BackfillSummary) -> Result<Rows> {
    let mut rows = Rows::new(BACKFILL_COLUMNS);
    for r in &summary.rows {
        let status = match r.status {
            PeriodStatus::Processed => "processed",
            PeriodStatus::AlreadyStored => "already_stored",
            PeriodStatus::Refused => "refused",
            PeriodStatus::Failed => "failed",
        };
        let totals: Vec<(Value, Value)> = if r.total_unblended.is_empty() {
            vec![(Value::Null, Value::Null)]
        } else {
            r.total_unblended.iter().map(|(c, v)| (c.as_str().into(), v.normalize().into())).collect()
        };
        for (currency, unblended) in totals {
            rows.push(vec![
                r.period.map(|p| p.to_string()).into(),
                r.version.clone().into(),
                r.rows.into(),
                currency,
                unblended,
                status.into(),
                r.reason.clone().into(),
                r.source.as_str().into(),
            ])?;
        }
    }
    Ok(rows)
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
        assert_eq!(percent(Decimal::new(-195217, 4), Decimal::new(-676, 10)), "—", "a total that rounds to 0.00");
        assert_eq!(percent(Decimal::ZERO, Decimal::ONE), "0.0%");
    }
}
