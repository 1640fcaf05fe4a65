//! The self-contained HTML report of `curflow report --period YYYY-MM --out report.html`.
//!
//! [`render_report`] turns a [`ReportData`] (filled from the reconcile crate) into ONE HTML
//! document that needs no network to view: inline CSS, the chart library inlined in a `<script>`,
//! the data as JSON in `<script type="application/json" id="curflow-data">`, four `<canvas>`
//! charts (`chart-tenants`, `chart-daily`, `chart-budgets`, `chart-coverage`) and HTML tables
//! (tenants, top variances, budgets, anomalies).
//!
//! Charts are drawn by **Chart.js 4.6.1** (MIT licence, (c) Chart.js Contributors), vendored
//! unmodified as `pipeline/assets/chart.umd.min.js` from the npm package `chart.js@4.6.1`
//! (`dist/chart.umd.min.js`, 210,082 bytes, sha256
//! `87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2`); licence text in
//! `pipeline/assets/chart.js.LICENSE.md`, provenance in `pipeline/assets/README.md`.
//!
//! Money stays exact: amounts go into the JSON as decimal strings (`rust_decimal`'s serde form),
//! running totals are summed here with `Decimal`, and the page's script converts to JavaScript
//! numbers only to draw. Tables are rendered here, rounded half away from zero to 2 decimals with
//! thousands separators. All text is HTML-escaped; in the JSON blocks `<`, `>` and `&` are written
//! as `\u003c`, `\u003e`, `\u0026` so data can never close the `<script>` element.
//!
//! After drawing, the page sets `document.body.dataset.chartsReady` to the number of charts drawn;
//! `data-charts-expected` on `<body>` says how many had data (a chart without data is replaced by
//! a visible "no data" note, and has no canvas).
//!
//! Percent fields (`variance_pct`, `used_pct`, the coverage shares, `jump_pct`) are percentages,
//! i.e. `12.5` means 12.5 %.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::Error;

/// Chart.js 4.6.1 UMD build, unmodified (see the module docs).
const CHART_JS: &str = include_str!("../assets/chart.umd.min.js");
/// Vendored chart library version, for the page footer.
pub const CHART_JS_VERSION: &str = "4.6.1";

/// Everything the report shows for one billing period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportData {
    /// Billing period, `YYYY-MM`.
    pub period: String,
    /// `"open"`, `"provisional"` or `"final"`.
    pub period_state: String,
    /// RFC 3339 time the report was generated.
    pub generated_at: String,
    /// ISO 4217 code of all amounts, e.g. `"USD"`.
    pub currency: String,
    /// Estimate vs actual per tenant.
    pub tenants: Vec<TenantBar>,
    /// The largest estimate-vs-actual differences per (tenant, resource type).
    pub top_variances: Vec<VarianceRow>,
    /// Whole-account actual cost per day of the period so far.
    pub daily: Vec<DailyPoint>,
    /// Month-end forecast of the whole-account cost.
    pub forecast: Option<ForecastBand>,
    pub budgets: Vec<BudgetRow>,
    pub coverage: CoverageShares,
    pub anomalies: Vec<AnomalyRow>,
}

/// One tenant's estimated and actual cost.
#[derive(Debug, Clone, Serialize)]
pub struct TenantBar {
    pub tenant: String,
    pub estimated: Decimal,
    pub actual: Decimal,
    /// Part of `actual` from the tenant's own (tagged) resources.
    pub direct: Decimal,
    /// Part of `actual` split to the tenant from shared resources.
    pub attributed: Decimal,
    /// `actual - estimated`.
    pub variance: Decimal,
    /// Variance as a percentage of the estimate; `None` when the estimate is zero.
    pub variance_pct: Option<Decimal>,
    /// The variance is beyond the configured threshold.
    pub flagged: bool,
}

/// One row of the top-variances table.
#[derive(Debug, Clone, Serialize)]
pub struct VarianceRow {
    pub tenant: String,
    pub resource_type: String,
    pub estimated: Decimal,
    pub actual: Decimal,
    pub variance: Decimal,
    pub variance_pct: Option<Decimal>,
    /// What drives the variance (e.g. the dominant usage type or service).
    pub dominant: String,
    /// Unit cost that would have made the estimate match.
    pub suggested_unit_cost: Option<Decimal>,
}

/// Whole-account actual cost of one day.
#[derive(Debug, Clone, Serialize)]
pub struct DailyPoint {
    pub day: NaiveDate,
    pub actual: Decimal,
}

/// Month-end forecast with its range.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastBand {
    pub month_end: Decimal,
    pub low: Decimal,
    pub high: Decimal,
    pub method: String,
}

/// One tenant's budget status.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetRow {
    pub tenant: String,
    pub budget: Decimal,
    pub month_to_date: Decimal,
    pub forecast: Option<Decimal>,
    /// `month_to_date / budget` as a percentage.
    pub used_pct: Decimal,
    pub status: String,
}

/// How the period's cost was attributed to tenants, as percentages of the total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoverageShares {
    pub tagged_pct: Decimal,
    pub usage_driver_pct: Decimal,
    pub fallback_pct: Decimal,
    pub unattributed_pct: Decimal,
}

/// One cost anomaly (a day's cost well above its baseline).
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRow {
    pub tenant: String,
    pub service: String,
    pub day: NaiveDate,
    pub cost: Decimal,
    pub baseline: Decimal,
    pub jump_pct: Option<Decimal>,
}

/// Values derived here, exactly, for the charts (second JSON block, `curflow-view`).
#[derive(Serialize)]
struct View {
    /// Days in the period's month (x axis of the daily chart); `None` when `period` is not
    /// `YYYY-MM`, in which case the page uses the days present.
    days_in_month: Option<u32>,
    /// Running total of `daily`, same order.
    cumulative: Vec<Decimal>,
}

/// Renders the report as one self-contained HTML document.
///
/// Fails only if the data cannot be serialised to JSON ([`Error::Internal`]).
pub fn render_report(data: &ReportData) -> Result<String, Error> {
    let data_json = script_json(data)?;
    let view = View { days_in_month: days_in_month(&data.period), cumulative: cumulative(&data.daily) };
    let view_json = script_json(&view)?;

    let has_tenants = !data.tenants.is_empty();
    let has_daily = !data.daily.is_empty();
    let has_budgets = !data.budgets.is_empty();
    let c = &data.coverage;
    let has_coverage =
        [c.tagged_pct, c.usage_driver_pct, c.fallback_pct, c.unattributed_pct].iter().any(|p| *p > Decimal::ZERO);
    let expected = [has_tenants, has_daily, has_budgets, has_coverage].iter().filter(|b| **b).count();

    let period = esc(&data.period);
    let currency = esc(&data.currency);
    let mut h = String::with_capacity(CHART_JS.len() + 64 * 1024);
    // `write!` into a String cannot fail; the results are ignored through `.ok()`.
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    writeln!(h, "<title>curflow cost report {period}</title>\n<style>\n{CSS}</style>\n</head>").ok();
    writeln!(h, "<body data-charts-expected=\"{expected}\" data-charts-ready=\"0\">").ok();

    // --- header -----------------------------------------------------------------------------------
    let state = data.period_state.trim().to_ascii_lowercase();
    let state_class = match state.as_str() {
        "final" => "final",
        "open" => "open",
        _ => "provisional",
    };
    h.push_str("<header>\n");
    writeln!(
        h,
        "<h1>Tenant costs <span class=\"period\">{period}</span> \
         <span class=\"pill {state_class}\" id=\"period-state\">{}</span></h1>",
        esc(&data.period_state)
    )
    .ok();
    writeln!(
        h,
        "<div class=\"meta\">AWS bill reconciled with the app's cost estimates &middot; amounts in {currency} \
         &middot; generated <time datetime=\"{0}\">{0}</time></div>",
        esc(&data.generated_at)
    )
    .ok();
    h.push_str("</header>\n");
    if state != "final" {
        let detail = if state == "open" {
            "AWS has not closed this month's bill: costs arrive with a delay of up to a day and will still change."
        } else {
            "The month is over but AWS has not finalised the bill: refunds, credits and late charges may still change it."
        };
        writeln!(
            h,
            "<div class=\"banner\" id=\"provisional-banner\" role=\"status\"><strong>Open period &mdash; \
             provisional numbers.</strong> {detail}</div>"
        )
        .ok();
    }
    h.push_str(
        "<noscript><div class=\"banner\">The charts need JavaScript; the tables below have every number.</div></noscript>\n",
    );

    h.push_str("<main>\n");
    summary_cards(&mut h, data);

    // --- charts -----------------------------------------------------------------------------------
    h.push_str("<div class=\"grid\">\n");
    chart_panel(
        &mut h,
        "chart-tenants",
        "Estimate vs actual per tenant",
        "Grey: the app's estimate. Blue: actual cost from the AWS bill; red: variance flagged.",
        has_tenants,
        "No tenant costs for this period yet.",
    );
    let forecast_note = match &data.forecast {
        Some(f) => format!(
            "Daily cost (left axis) and running total (right axis); dashed: month-end forecast {} ({}&ndash;{}, {}).",
            money(f.month_end),
            money(f.low),
            money(f.high),
            esc(&f.method)
        ),
        None => "Daily cost (left axis) and running total (right axis). No forecast.".to_string(),
    };
    chart_panel(
        &mut h,
        "chart-daily",
        "Daily cost trend and forecast",
        &forecast_note,
        has_daily,
        "No daily costs for this period yet.",
    );
    chart_panel(
        &mut h,
        "chart-budgets",
        "Budget used",
        "Month-to-date cost as % of each tenant's budget; dashed lines at 80 % and 100 %.",
        has_budgets,
        "No budgets configured.",
    );
    chart_panel(
        &mut h,
        "chart-coverage",
        "Attribution coverage",
        "How the period's cost was assigned to tenants.",
        has_coverage,
        "No attribution coverage for this period yet.",
    );
    h.push_str("</div>\n");

    // --- tables -----------------------------------------------------------------------------------
    tenants_table(&mut h, data);
    variances_table(&mut h, data);
    budgets_table(&mut h, data);
    anomalies_table(&mut h, data);
    h.push_str("</main>\n");
    writeln!(
        h,
        "<footer>curflow {} &middot; charts by Chart.js {CHART_JS_VERSION} (MIT licence) embedded in this file; \
         no network is used.</footer>",
        env!("CARGO_PKG_VERSION")
    )
    .ok();

    // --- data and scripts -------------------------------------------------------------------------
    writeln!(h, "<script type=\"application/json\" id=\"curflow-data\">{data_json}</script>").ok();
    writeln!(h, "<script type=\"application/json\" id=\"curflow-view\">{view_json}</script>").ok();
    h.push_str("<script>\n");
    h.push_str(chart_js_source());
    h.push_str("\n</script>\n<script>\n");
    h.push_str(APP_JS);
    h.push_str("</script>\n</body>\n</html>\n");
    Ok(h)
}

/// The library without its trailing `sourceMappingURL` comment (the map is not shipped, and a
/// browser's developer tools would try to fetch it).
fn chart_js_source() -> &'static str {
    let src = CHART_JS.trim_end();
    match src.rfind("\n//# sourceMappingURL=") {
        Some(i) => &src[..i],
        None => src,
    }
}

/// JSON for a `<script type="application/json">` block: `<`, `>`, `&` only ever occur inside
/// JSON strings, where their `\u` escapes mean the same.
fn script_json<T: Serialize>(value: &T) -> Result<String, Error> {
    let json =
        serde_json::to_string(value).map_err(|e| Error::Internal(format!("serialising the HTML report data: {e}")))?;
    Ok(json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
}

fn days_in_month(period: &str) -> Option<u32> {
    let (y, m) = period.trim().split_once('-')?;
    let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1)? } else { NaiveDate::from_ymd_opt(y, m + 1, 1)? };
    u32::try_from(next.signed_duration_since(first).num_days()).ok().filter(|_| first.month() == m)
}

fn cumulative(daily: &[DailyPoint]) -> Vec<Decimal> {
    let mut total = Decimal::ZERO;
    daily
        .iter()
        .map(|p| {
            total += p.actual;
            total
        })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567.891` → `1,234,567.89` (half away from zero; never `-0.00`).
pub fn money(amount: Decimal) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.2}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3 + 4);
    if rounded.is_sign_negative() && !rounded.is_zero() {
        grouped.push('-');
    }
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    grouped.push('.');
    grouped.push_str(frac);
    grouped
}

/// `12.345` → `12.3 %`; `signed` adds `+` to positive values.
fn pct(value: Decimal, signed: bool) -> String {
    let rounded = value.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
    let rounded = if rounded.is_zero() { Decimal::ZERO } else { rounded };
    let sign = if signed && rounded > Decimal::ZERO { "+" } else { "" };
    let body = money_like_1dp(rounded);
    format!("{sign}{body}&nbsp;%")
}

/// One decimal with thousands separators (`1234.5` → `1,234.5`).
fn money_like_1dp(value: Decimal) -> String {
    let two = money(value);
    // `money` gives exactly two decimals; `value` has at most one, so the last digit is 0.
    two.strip_suffix('0').map(str::to_string).unwrap_or(two)
}

fn opt_pct(value: Option<Decimal>, signed: bool) -> String {
    value.map(|v| pct(v, signed)).unwrap_or_else(|| "&mdash;".to_string())
}

fn opt_money(value: Option<Decimal>) -> String {
    value.map(money).unwrap_or_else(|| "&mdash;".to_string())
}

fn sign_class(value: Decimal) -> &'static str {
    if value > Decimal::ZERO {
        "num pos"
    } else if value < Decimal::ZERO {
        "num neg"
    } else {
        "num"
    }
}

fn summary_cards(h: &mut String, data: &ReportData) {
    let account_mtd: Decimal = data.daily.iter().map(|p| p.actual).sum();
    let actual: Decimal = data.tenants.iter().map(|t| t.actual).sum();
    let estimated: Decimal = data.tenants.iter().map(|t| t.estimated).sum();
    let flagged = data.tenants.iter().filter(|t| t.flagged).count();
    let over_budget = data.budgets.iter().filter(|b| b.used_pct >= Decimal::ONE_HUNDRED).count();
    let attributed = Decimal::ONE_HUNDRED - data.coverage.unattributed_pct;

    h.push_str("<section class=\"cards\" id=\"summary\">\n");
    let mut card = |label: &str, value: String, sub: String| {
        writeln!(
            h,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div>\
             <div class=\"sub\">{sub}</div></div>"
        )
        .ok();
    };
    card("Account cost to date", money(account_mtd), format!("{} days with costs", data.daily.len()));
    match &data.forecast {
        Some(f) => {
            card("Forecast month end", money(f.month_end), format!("{} &ndash; {}", money(f.low), money(f.high)))
        }
        None => card("Forecast month end", "&mdash;".to_string(), "no forecast".to_string()),
    }
    card(
        "Tenants actual",
        money(actual),
        format!("estimate {} &middot; variance {}", money(estimated), money(actual - estimated)),
    );
    card(
        "Flagged tenants",
        flagged.to_string(),
        format!("of {} &middot; {} over budget", data.tenants.len(), over_budget),
    );
    card(
        "Attributed to tenants",
        pct(attributed, false),
        format!("unattributed {}", pct(data.coverage.unattributed_pct, false)),
    );
    h.push_str("</section>\n");
}

fn chart_panel(h: &mut String, id: &str, title: &str, note: &str, has_data: bool, empty: &str) {
    writeln!(h, "<section class=\"panel\" id=\"{id}-panel\">\n<h2>{title}</h2>\n<p class=\"note\">{note}</p>").ok();
    if has_data {
        writeln!(h, "<div class=\"chart-box\"><canvas id=\"{id}\" role=\"img\" aria-label=\"{title}\"></canvas></div>")
            .ok();
    } else {
        writeln!(h, "<div class=\"no-data\" id=\"{id}-empty\">{empty}</div>").ok();
    }
    h.push_str("</section>\n");
}

fn table_open(h: &mut String, id: &str, title: &str, note: &str, headers: &[(&str, bool)]) {
    writeln!(h, "<section class=\"panel\" id=\"{id}\">\n<h2>{title}</h2>").ok();
    if !note.is_empty() {
        writeln!(h, "<p class=\"note\">{note}</p>").ok();
    }
    h.push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for (name, numeric) in headers {
        if *numeric {
            write!(h, "<th class=\"num\">{name}</th>").ok();
        } else {
            write!(h, "<th>{name}</th>").ok();
        }
    }
    h.push_str("</tr></thead>\n<tbody>\n");
}

fn table_empty(h: &mut String, columns: usize, text: &str) {
    writeln!(h, "<tr><td class=\"empty\" colspan=\"{columns}\">{text}</td></tr>").ok();
}

fn table_close(h: &mut String) {
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn tenants_table(h: &mut String, data: &ReportData) {
    let headers = [
        ("Tenant", false),
        ("Estimated", true),
        ("Actual", true),
        ("Direct", true),
        ("Attributed", true),
        ("Variance", true),
        ("Variance %", true),
        ("Flag", false),
    ];
    table_open(h, "tenants", "Tenants", "", &headers);
    if data.tenants.is_empty() {
        table_empty(h, headers.len(), "No tenant costs for this period yet.");
    }
    for t in &data.tenants {
        let class = if t.flagged { " class=\"flagged\"" } else { "" };
        writeln!(
            h,
            "<tr{class}><td class=\"tenant\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&t.tenant),
            money(t.estimated),
            money(t.actual),
            money(t.direct),
            money(t.attributed),
            sign_class(t.variance),
            money(t.variance),
            sign_class(t.variance),
            opt_pct(t.variance_pct, true),
            if t.flagged { "<span class=\"flag\">flagged</span>" } else { "" },
        )
        .ok();
    }
    table_close(h);
}

fn variances_table(h: &mut String, data: &ReportData) {
    let headers = [
        ("Tenant", false),
        ("Resource type", false),
        ("Estimated", true),
        ("Actual", true),
        ("Variance", true),
        ("Variance %", true),
        ("Dominant driver", false),
        ("Suggested unit cost", true),
    ];
    table_open(
        h,
        "top-variances",
        "Top variances",
        "Largest differences between the app's estimate and the bill; the suggested unit cost would have made the estimate match.",
        &headers,
    );
    if data.top_variances.is_empty() {
        table_empty(h, headers.len(), "No variances.");
    }
    for v in &data.top_variances {
        writeln!(
            h,
            "<tr><td class=\"tenant\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&v.tenant),
            esc(&v.resource_type),
            money(v.estimated),
            money(v.actual),
            sign_class(v.variance),
            money(v.variance),
            sign_class(v.variance),
            opt_pct(v.variance_pct, true),
            esc(&v.dominant),
            // Unit costs can be fractions of a cent: shown exactly, not rounded to 2 decimals.
            v.suggested_unit_cost.map(|u| esc(&u.normalize().to_string())).unwrap_or_else(|| "&mdash;".to_string()),
        )
        .ok();
    }
    table_close(h);
}

fn budgets_table(h: &mut String, data: &ReportData) {
    let headers = [
        ("Tenant", false),
        ("Budget", true),
        ("Month to date", true),
        ("Forecast", true),
        ("Used", true),
        ("Status", false),
    ];
    table_open(h, "budgets", "Budgets", "", &headers);
    if data.budgets.is_empty() {
        table_empty(h, headers.len(), "No budgets configured.");
    }
    for b in &data.budgets {
        let level = if b.used_pct >= Decimal::ONE_HUNDRED {
            "over"
        } else if b.used_pct >= Decimal::from(80) {
            "warn"
        } else {
            "ok"
        };
        writeln!(
            h,
            "<tr class=\"budget-{level}\"><td class=\"tenant\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td><span class=\"status status-{level}\">{}</span></td></tr>",
            esc(&b.tenant),
            money(b.budget),
            money(b.month_to_date),
            opt_money(b.forecast),
            pct(b.used_pct, false),
            esc(&b.status),
        )
        .ok();
    }
    table_close(h);
}

fn anomalies_table(h: &mut String, data: &ReportData) {
    let headers =
        [("Tenant", false), ("Service", false), ("Day", false), ("Cost", true), ("Baseline", true), ("Jump", true)];
    table_open(h, "anomalies", "Anomalies", "Days whose cost jumped well above the usual level.", &headers);
    if data.anomalies.is_empty() {
        table_empty(h, headers.len(), "No anomalies.");
    }
    for a in &data.anomalies {
        writeln!(
            h,
            "<tr><td class=\"tenant\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num pos\">{}</td></tr>",
            esc(&a.tenant),
            esc(&a.service),
            a.day,
            money(a.cost),
            money(a.baseline),
            opt_pct(a.jump_pct, true),
        )
        .ok();
    }
    table_close(h);
}

const CSS: &str = r##":root { --fg: #1f2937; --muted: #6b7280; --bg: #f6f7f9; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 32px 14px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
h1 .period { font-variant-numeric: tabular-nums; }
.meta { color: var(--muted); }
.pill { display: inline-block; vertical-align: middle; padding: 1px 10px; border-radius: 999px; font-size: 12px;
  font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.pill.final { background: #dcfce7; color: #166534; }
.pill.open, .pill.provisional { background: #fef3c7; color: #92400e; }
.banner { margin: 16px 32px 0; padding: 10px 14px; border: 1px solid #fcd34d; background: #fffbeb; color: #78350f;
  border-radius: 8px; }
main { padding: 16px 32px 24px; max-width: 1500px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
@media (max-width: 960px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px 14px;
  margin-bottom: 16px; }
.grid .panel { margin-bottom: 0; }
.grid + .panel { margin-top: 16px; }
.panel h2 { font-size: 15px; margin: 0 0 2px; font-weight: 650; }
.note { color: var(--muted); font-size: 12px; margin: 0 0 8px; }
.chart-box { position: relative; height: 330px; }
.no-data { height: 330px; display: flex; align-items: center; justify-content: center; color: var(--muted);
  border: 1px dashed #d1d5db; border-radius: 8px; background: #fafafa; font-style: italic; }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .03em;
  border-bottom: 1px solid #d1d5db; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.tenant { font-weight: 600; word-break: break-all; }
td.empty { color: var(--muted); font-style: italic; text-align: center; }
tbody tr:nth-child(even) { background: #fbfbfc; }
tr.flagged td:first-child { box-shadow: inset 3px 0 0 #f87171; }
.pos { color: #b42318; }
.neg { color: #15803d; }
.flag { background: #fee4e2; color: #b42318; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; }
.status { border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; }
.status-ok { background: #ecfdf3; color: #067647; }
.status-warn { background: #fffaeb; color: #b54708; }
.status-over { background: #fef3f2; color: #b42318; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px; }
@media print { body { background: #fff; } .panel, .card { break-inside: avoid; } }
"##;

/// Draws the four charts from the JSON blocks. Numbers are converted from the exact decimal
/// strings only here, for drawing.
const APP_JS: &str = r##"(function () {
  "use strict";
  var drawn = 0;
  function done() { document.body.dataset.chartsReady = String(drawn); }
  function fail(id, message) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    var box = canvas.parentNode;
    var note = document.createElement("div");
    note.className = "no-data";
    note.textContent = message;
    box.parentNode.replaceChild(note, box);
  }
  var ids = ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage"];
  if (typeof Chart === "undefined") {
    ids.forEach(function (id) { fail(id, "The chart library did not load."); });
    done();
    return;
  }
  var d, view;
  try {
    d = JSON.parse(document.getElementById("curflow-data").textContent);
    view = JSON.parse(document.getElementById("curflow-view").textContent);
  } catch (e) {
    ids.forEach(function (id) { fail(id, "Report data unreadable: " + e.message); });
    done();
    return;
  }
  function num(s) { var n = Number(s); return isFinite(n) ? n : 0; }
  var cur = d.currency || "";
  function money(n) {
    return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function moneyCur(n) { return money(n) + (cur ? " " + cur : ""); }
  function axisMoney(v) {
    var a = Math.abs(v);
    if (a >= 1e6) { return (v / 1e6).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "M"; }
    if (a >= 1e4) { return (v / 1e3).toLocaleString("en-US", { maximumFractionDigits: 0 }) + "k"; }
    return v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }
  function pctText(s) { return s === null || s === undefined ? "n/a" : num(s).toFixed(1) + " %"; }

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = "#374151";
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif';
  Chart.defaults.font.size = 12;
  Chart.defaults.plugins.legend.labels.boxWidth = 14;

  var C = {
    estimate: "#94a3b8", actual: "#2563eb", flagged: "#dc2626",
    daily: "#0d9488", cumulative: "#7c3aed", band: "rgba(124, 58, 237, 0.14)", bandEdge: "rgba(124, 58, 237, 0.4)",
    ok: "#16a34a", warn: "#f59e0b", over: "#b91c1c",
    tagged: "#0891b2", driver: "#4f46e5", fallback: "#eab308", unattributed: "#cbd5e1",
    grid: "#eef0f3"
  };

  function draw(id, build) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    try {
      new Chart(canvas, build());
      drawn += 1;
    } catch (e) {
      fail(id, "Chart could not be drawn: " + e.message);
    }
  }

  // 1. Estimate vs actual per tenant (flagged tenants in red, their labels too).
  draw("chart-tenants", function () {
    var t = d.tenants;
    return {
      type: "bar",
      data: {
        labels: t.map(function (x) { return x.tenant; }),
        datasets: [
          { label: "Estimated", data: t.map(function (x) { return num(x.estimated); }),
            backgroundColor: C.estimate, borderRadius: 2 },
          { label: "Actual", data: t.map(function (x) { return num(x.actual); }),
            backgroundColor: t.map(function (x) { return x.flagged ? C.flagged : C.actual; }), borderRadius: 2 }
        ]
      },
      options: {
        scales: {
          x: { grid: { display: false },
               ticks: { color: function (ctx) { var x = t[ctx.index]; return x && x.flagged ? C.flagged : "#374151"; },
                        callback: function (v, i) { var s = String(this.getLabelForValue(v));
                          return s.length > 18 ? s.slice(0, 17) + "\u2026" : s; } } },
          y: { beginAtZero: true, grid: { color: C.grid }, ticks: { callback: axisMoney },
               title: { display: true, text: cur } }
        },
        plugins: {
          legend: { position: "top" },
          tooltip: { callbacks: {
            label: function (ctx) { return ctx.dataset.label + ": " + moneyCur(ctx.parsed.y); },
            afterBody: function (items) {
              var x = t[items[0].dataIndex];
              return ["Variance: " + moneyCur(num(x.variance)) + " (" + pctText(x.variance_pct) + ")",
                      "Direct " + money(num(x.direct)) + " / attributed " + money(num(x.attributed)),
                      x.flagged ? "FLAGGED" : ""];
            } } }
        }
      }
    };
  });

  // 2. Daily cost, running total, month-end forecast band.
  draw("chart-daily", function () {
    var pts = d.daily.map(function (p, i) {
      return { x: Number(String(p.day).slice(8, 10)), y: num(p.actual), c: num(view.cumulative[i]) };
    });
    var lastDay = pts.length ? pts[pts.length - 1].x : 1;
    var end = view.days_in_month || lastDay;
    var datasets = [
      { label: "Daily cost", data: pts.map(function (p) { return { x: p.x, y: p.y }; }), yAxisID: "y",
        borderColor: C.daily, backgroundColor: C.daily, borderWidth: 2.5, pointRadius: 3, tension: 0.2 },
      { label: "Running total", data: pts.map(function (p) { return { x: p.x, y: p.c }; }), yAxisID: "yCum",
        borderColor: C.cumulative, backgroundColor: C.cumulative, borderWidth: 2.5, pointRadius: 0 }
    ];
    if (d.forecast && pts.length) {
      var last = pts[pts.length - 1], f = d.forecast;
      var lo = num(f.low), hi = num(f.high), me = num(f.month_end), ahead = last.x < end;
      if (ahead) {
        // Cone from today's running total to the month-end range.
        datasets.push({ label: "_high", data: [{ x: last.x, y: last.c }, { x: end, y: hi }], yAxisID: "yCum",
          borderColor: C.bandEdge, borderWidth: 1, pointRadius: 0, fill: false });
        datasets.push({ label: "_low", data: [{ x: last.x, y: last.c }, { x: end, y: lo }], yAxisID: "yCum",
          borderColor: C.bandEdge, borderWidth: 1, pointRadius: 0, backgroundColor: C.band, fill: "-1" });
      }
      datasets.push({ label: "Forecast range " + axisMoney(lo) + " \u2013 " + axisMoney(hi),
        data: [{ x: end, y: lo }, { x: end, y: hi }], yAxisID: "yCum", borderColor: C.bandEdge,
        backgroundColor: C.bandEdge, borderWidth: 9, borderCapStyle: "butt", pointRadius: 0 });
      datasets.push({ label: "Forecast month end (" + f.method + ")",
        data: ahead ? [{ x: last.x, y: last.c }, { x: end, y: me }] : [{ x: end, y: me }], yAxisID: "yCum",
        borderColor: C.cumulative, backgroundColor: "#ffffff", borderDash: [6, 4], borderWidth: 2,
        pointRadius: ahead ? [0, 6] : 6, pointBorderWidth: 2.5 });
    }
    var prefix = String(d.period || "");
    return {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: true,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", min: 0.5, max: end + 0.5, grid: { color: C.grid },
               afterBuildTicks: function (axis) {
                 var ticks = [];
                 for (var i = 1; i <= end; i += 1) { ticks.push({ value: i }); }
                 axis.ticks = ticks;
               },
               ticks: { autoSkip: true, maxRotation: 0 },
               title: { display: true, text: "day of " + prefix } },
          y: { beginAtZero: true, position: "left", grid: { color: C.grid }, ticks: { callback: axisMoney },
               title: { display: true, text: "daily " + cur } },
          yCum: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                  ticks: { callback: axisMoney }, title: { display: true, text: "running total " + cur } }
        },
        plugins: {
          legend: { labels: { filter: function (item) { return item.text.charAt(0) !== "_"; } } },
          tooltip: {
            filter: function (item) { return item.dataset.label.charAt(0) !== "_"; },
            callbacks: {
              title: function (items) { return items.length ? prefix + "-" + String(items[0].parsed.x).padStart(2, "0") : ""; },
              label: function (ctx) { return ctx.dataset.label + ": " + moneyCur(ctx.parsed.y); }
            }
          }
        }
      }
    };
  });

  // 3. Budget used, % (horizontal), with 80 % and 100 % reference lines.
  var refLines = {
    id: "curflowRefLines",
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      [[80, C.warn], [100, C.over]].forEach(function (r) {
        var px = x.getPixelForValue(r[0]);
        if (px < area.left || px > area.right) { return; }
        ctx.save();
        ctx.strokeStyle = r[1];
        ctx.lineWidth = 1.5;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = r[1];
        ctx.font = "600 11px " + Chart.defaults.font.family;
        ctx.textAlign = "center";
        ctx.fillText(r[0] + " %", px, area.top - 4);
        ctx.restore();
      });
    }
  };
  draw("chart-budgets", function () {
    var b = d.budgets;
    var used = b.map(function (x) { return num(x.used_pct); });
    var max = Math.max(120, Math.ceil((Math.max.apply(null, used) + 10) / 10) * 10);
    return {
      type: "bar",
      data: {
        labels: b.map(function (x) { return x.tenant; }),
        datasets: [{ label: "Budget used", data: used, borderRadius: 2, maxBarThickness: 34,
          backgroundColor: used.map(function (u) { return u >= 100 ? C.over : u >= 80 ? C.warn : C.ok; }) }]
      },
      options: {
        indexAxis: "y",
        layout: { padding: { top: 16 } },
        scales: {
          x: { min: 0, max: max, grid: { color: C.grid },
               ticks: { callback: function (v) { return v + " %"; } } },
          y: { grid: { display: false },
               ticks: { callback: function (v) { var s = String(this.getLabelForValue(v));
                 return s.length > 18 ? s.slice(0, 17) + "\u2026" : s; } } }
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            label: function (ctx) {
              var x = b[ctx.dataIndex];
              return [pctText(x.used_pct) + " of " + moneyCur(num(x.budget)),
                      "month to date " + moneyCur(num(x.month_to_date)),
                      "forecast " + (x.forecast === null ? "n/a" : moneyCur(num(x.forecast))),
                      "status " + x.status];
            } } }
        }
      },
      plugins: [refLines]
    };
  });

  // 4. Attribution coverage.
  draw("chart-coverage", function () {
    var c = d.coverage;
    var parts = [["Tagged", c.tagged_pct, C.tagged], ["Usage driver", c.usage_driver_pct, C.driver],
                 ["Fallback", c.fallback_pct, C.fallback], ["Unattributed", c.unattributed_pct, C.unattributed]];
    return {
      type: "doughnut",
      data: {
        labels: parts.map(function (p) { return p[0] + " " + num(p[1]).toFixed(1) + " %"; }),
        datasets: [{ data: parts.map(function (p) { return num(p[1]); }),
                     backgroundColor: parts.map(function (p) { return p[2]; }), borderColor: "#ffffff", borderWidth: 2 }]
      },
      options: {
        cutout: "58%",
        plugins: {
          legend: { position: "right" },
          tooltip: { callbacks: { label: function (ctx) { return ctx.label; } } }
        }
      }
    };
  });

  done();
})();
"##;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_rounds_and_groups() {
        assert_eq!(money(d("0")), "0.00");
        assert_eq!(money(d("1234567.891")), "1,234,567.89");
        assert_eq!(money(d("999.995")), "1,000.00");
        assert_eq!(money(d("-1234.5")), "-1,234.50");
        assert_eq!(money(d("-0.004")), "0.00");
        assert_eq!(money(d("100")), "100.00");
        assert_eq!(money(d("123456")), "123,456.00");
    }

    #[test]
    fn pct_formats() {
        assert_eq!(pct(d("12.345"), true), "+12.3&nbsp;%");
        assert_eq!(pct(d("-5"), true), "-5.0&nbsp;%");
        assert_eq!(pct(d("1234.56"), false), "1,234.6&nbsp;%");
        assert_eq!(pct(d("-0.01"), true), "0.0&nbsp;%");
    }

    #[test]
    fn escapes() {
        assert_eq!(esc(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&#39;");
        let json = script_json(&"</script><!--&").unwrap();
        assert_eq!(json, r#""\u003c/script\u003e\u003c!--\u0026""#);
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), "</script><!--&");
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month("2026-10"), Some(31));
        assert_eq!(days_in_month("2028-02"), Some(29));
        assert_eq!(days_in_month("2026-02"), Some(28));
        assert_eq!(days_in_month("2026-13"), None);
        assert_eq!(days_in_month("junk"), None);
    }

    #[test]
    fn library_is_embedded_without_source_map() {
        let src = chart_js_source();
        assert!(src.starts_with("/*!\n * Chart.js v4.6.1"));
        assert!(!src.contains("sourceMappingURL"));
        assert!(!src.to_ascii_lowercase().contains("</script"));
    }
}
