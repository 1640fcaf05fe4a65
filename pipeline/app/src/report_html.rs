//! The self-contained HTML report of `curflow report --period YYYY-MM --out report.html`.
//!
//! [`render_report`] turns a [`ReportData`] (filled from the reconcile crate) into ONE HTML
//! document that needs no network to view: inline CSS, the chart library inlined in a `<script>`,
//! the data as JSON in `<script type="application/json" id="curflow-data">`, four `<canvas>`
//! charts (`chart-tenants`, `chart-daily`, `chart-budgets`, `chart-coverage`) and HTML tables
//! (tenants, top variances, budgets, anomalies).
//!
//! Charts are drawn by **Chart.js 4.6.1** (MIT licence, (c) Chart.js Contributors), vendored
//! unmodified as `pipeline/app/assets/chart.umd.min.js` from the npm package `chart.js@4.6.1`
//! (`dist/chart.umd.min.js`, 210,082 bytes, sha256
//! `87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2`); licence text in
//! `pipeline/app/assets/chart.js.LICENSE.md`, provenance in `pipeline/app/assets/README.md`.
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
/// The page's style sheet (inlined in `<style>`). A file of its own so it can be edited and
/// linted as CSS; it is compiled in, the report still needs no other file.
const CSS: &str = include_str!("../assets/report.css");
/// Draws the four charts from the JSON blocks (inlined in the last `<script>`). Numbers are
/// converted from the exact decimal strings only there, for drawing.
const APP_JS: &str = include_str!("../assets/report.js");
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
    /// ISO 4217 code of all amounts, e.g. `"USD"` (the estimates' currency).
    pub currency: String,
    /// The period's cost in other currencies, left out of every chart and table (amounts in two
    /// currencies are never added or drawn together).
    pub other_currencies: Vec<OtherCurrency>,
    /// Estimate vs actual per tenant.
    pub tenants: Vec<TenantBar>,
    /// The largest estimate-vs-actual differences per (tenant, resource type).
    pub top_variances: Vec<VarianceRow>,
    /// Actual cost per day of the period so far: the whole account, and the tenants' part.
    pub daily: Vec<DailyPoint>,
    /// Month-end forecast of the tenants' cost (the sum of per-tenant forecasts; cost no tenant
    /// carries is not forecast).
    pub forecast: Option<ForecastBand>,
    pub budgets: Vec<BudgetRow>,
    pub coverage: CoverageShares,
    pub anomalies: Vec<AnomalyRow>,
    /// Cost per usage account, when the month has more than one (empty otherwise).
    pub accounts: Vec<AccountRow>,
    /// Shared cost left unattributed because the usage ledger lacks its day (a missing feed).
    pub missing_evidence: Vec<crate::usage::MissingEvidence>,
    /// AWS's forecast of each connected account as `nightly` last stored it, beside curflow's
    /// (empty without connected accounts or before a nightly run of the month).
    pub aws_forecasts: Vec<crate::cost_explorer::forecast::AccountForecast>,
}

/// One usage (linked) account's amortized cost in the page's currency.
#[derive(Debug, Clone, Serialize)]
pub struct AccountRow {
    /// The usage account id; empty for cost the report gives no account.
    pub account_id: String,
    /// The account's name where the report has it (CUR 2.0, FOCUS); empty otherwise.
    pub account_name: String,
    pub amortized: Decimal,
    /// The part tenants carry (tagged or attributed).
    pub tenants: Decimal,
    /// The part still in the shared pool.
    pub unattributed: Decimal,
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
    /// The variance is beyond the configured threshold.
    pub flagged: bool,
}

/// Actual cost of one day.
#[derive(Debug, Clone, Serialize)]
pub struct DailyPoint {
    pub day: NaiveDate,
    /// Everything on the bill that day, including cost attributed to no tenant.
    pub actual: Decimal,
    /// The tenants' part of `actual` (direct + attributed): what the forecast extends.
    pub tenants: Decimal,
}

/// Month-end forecast of the tenants' cost, with its range. Kept apart from the account total
/// on purpose: the report must never show it next to a number that includes unattributed cost
/// as if one continued the other.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastBand {
    /// The tenants' cost to date the forecast starts from (as of its last complete day).
    pub month_to_date: Decimal,
    pub month_end: Decimal,
    pub low: Decimal,
    pub high: Decimal,
    pub method: String,
}

/// Amortized cost of the period in a currency the report does not show.
#[derive(Debug, Clone, Serialize)]
pub struct OtherCurrency {
    pub currency: String,
    pub amortized: Decimal,
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
    /// Running total of `daily[].actual`, same order.
    cumulative: Vec<Decimal>,
    /// Running total of `daily[].tenants`, same order.
    cumulative_tenants: Vec<Decimal>,
}

/// Renders the report as one self-contained HTML document.
///
/// Fails only if the data cannot be serialised to JSON ([`Error::Internal`]).
pub fn render_report(data: &ReportData) -> Result<String, Error> {
    let data_json = script_json(data)?;
    let view = View {
        days_in_month: days_in_month(&data.period),
        cumulative: cumulative(data.daily.iter().map(|p| p.actual))?,
        cumulative_tenants: cumulative(data.daily.iter().map(|p| p.tenants))?,
    };
    let view_json = script_json(&view)?;

    let c = &data.coverage;
    let has = [
        !data.tenants.is_empty(),
        !data.daily.is_empty(),
        !data.budgets.is_empty(),
        [c.tagged_pct, c.usage_driver_pct, c.fallback_pct, c.unattributed_pct].iter().any(|p| *p > Decimal::ZERO),
    ];
    let expected = has.iter().filter(|b| **b).count();

    let mut h = String::with_capacity(CHART_JS.len() + 64 * 1024);
    // `write!` into a String cannot fail; the results are ignored through `.ok()`.
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    writeln!(h, "<title>curflow cost report {}</title>\n<style>\n{CSS}</style>\n</head>", esc(&data.period)).ok();
    writeln!(h, "<body data-charts-expected=\"{expected}\" data-charts-ready=\"0\">").ok();
    page_header(&mut h, data);
    h.push_str("<main>\n");
    summary_cards(&mut h, data)?;
    if let Some(note) = crate::usage::missing_evidence_note(&data.missing_evidence) {
        writeln!(h, "<section class=\"notice\" id=\"missing-evidence\"><p>{}</p></section>", esc(&note)).ok();
    }
    chart_panels(&mut h, data, has);
    tenants_table(&mut h, data);
    variances_table(&mut h, data);
    budgets_table(&mut h, data);
    anomalies_table(&mut h, data);
    accounts_table(&mut h, data);
    aws_forecasts_table(&mut h, data);
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

/// Title, period state, and the banner of a period whose bill is not final.
fn page_header(h: &mut String, data: &ReportData) {
    let state = data.period_state.trim().to_ascii_lowercase();
    let state_class = match state.as_str() {
        "final" => "final",
        "open" => "open",
        _ => "provisional",
    };
    h.push_str("<header>\n");
    writeln!(
        h,
        "<h1>Tenant costs <span class=\"period\">{}</span> \
         <span class=\"pill {state_class}\" id=\"period-state\">{}</span></h1>",
        esc(&data.period),
        esc(&data.period_state)
    )
    .ok();
    writeln!(
        h,
        "<div class=\"meta\">AWS bill reconciled with the app's cost estimates &middot; amounts in {} \
         &middot; generated <time datetime=\"{1}\">{1}</time></div>",
        esc(&data.currency),
        esc(&data.generated_at)
    )
    .ok();
    h.push_str("</header>\n");
    for other in &data.other_currencies {
        writeln!(
            h,
            "<div class=\"banner\" id=\"other-currency-{0}\" role=\"status\"><strong>Not shown: {1} {0} of cost in \
             {0}.</strong> This page is in {2}; amounts in two currencies are never added. \
             <code>curflow costs --by tenant</code> lists every currency.</div>",
            esc(&other.currency),
            money(other.amortized),
            esc(&data.currency),
        )
        .ok();
    }
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
}

/// The four chart panels; `has` says which have data (tenants, daily, budgets, coverage).
fn chart_panels(h: &mut String, data: &ReportData, has: [bool; 4]) {
    h.push_str("<div class=\"grid\">\n");
    chart_panel(
        h,
        "chart-tenants",
        "Estimate vs actual per tenant",
        "Grey: the app's estimate. Blue: actual cost from the AWS bill; red: variance flagged.",
        has[0],
        "No tenant costs for this period yet.",
    );
    let forecast_note = match &data.forecast {
        Some(f) => format!(
            "Daily cost of the account (left axis); running totals of the account and of the tenants (right axis). \
             Dashed: the tenants' month-end forecast {} ({}&ndash;{}), from their cost to date {}: {}.",
            money(f.month_end),
            money(f.low),
            money(f.high),
            money(f.month_to_date),
            esc(&f.method)
        ),
        None => "Daily cost of the account (left axis); running totals of the account and of the tenants (right \
                 axis). No forecast."
            .to_string(),
    };
    chart_panel(
        h,
        "chart-daily",
        "Daily cost trend and forecast",
        &forecast_note,
        has[1],
        "No daily costs for this period yet.",
    );
    chart_panel(
        h,
        "chart-budgets",
        "Budget used",
        "Month-to-date cost as % of each tenant's budget; dashed lines at 80 % and 100 %.",
        has[2],
        "No budgets configured.",
    );
    chart_panel(
        h,
        "chart-coverage",
        "Attribution coverage",
        "How the period's cost was assigned to tenants.",
        has[3],
        "No attribution coverage for this period yet.",
    );
    h.push_str("</div>\n");
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

/// Running totals of `amounts`.
fn cumulative(amounts: impl Iterator<Item = Decimal>) -> Result<Vec<Decimal>, Error> {
    let mut total = Decimal::ZERO;
    amounts
        .map(|a| {
            total = checked_sum([total, a])?;
            Ok(total)
        })
        .collect()
}

/// Σ `amounts`, exactly; an overflow is an error rather than a wrong number in the report.
fn checked_sum(amounts: impl IntoIterator<Item = Decimal>) -> Result<Decimal, Error> {
    Ok(crate::aggregate::sum_exact(amounts, || "an HTML report total".into())?)
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

/// The headline numbers. Tenants' cost to date, their estimate and their forecast sit side by
/// side because they cover the same thing (cost carried by tenants); the account total, which
/// also holds cost attributed to no tenant, has a card of its own that says so.
fn summary_cards(h: &mut String, data: &ReportData) -> Result<(), Error> {
    let account_mtd = checked_sum(data.daily.iter().map(|p| p.actual))?;
    let actual = checked_sum(data.tenants.iter().map(|t| t.actual))?;
    let estimated = checked_sum(data.tenants.iter().map(|t| t.estimated))?;
    let direct = checked_sum(data.tenants.iter().map(|t| t.direct))?;
    let sub = |a: Decimal, b: Decimal, what: &str| {
        crate::money::exact_sub(a, b)
            .ok_or_else(|| Error::Model(crate::error::ModelError::Overflow { what: format!("the report's {what}") }))
    };
    let (variance, attributed_cost, no_tenant) = (
        sub(actual, estimated, "variance")?,
        sub(actual, direct, "attributed cost")?,
        sub(account_mtd, actual, "cost of no tenant")?,
    );
    let flagged = data.tenants.iter().filter(|t| t.flagged).count();
    let over_budget = data.budgets.iter().filter(|b| b.used_pct >= Decimal::ONE_HUNDRED).count();
    let attributed = Decimal::ONE_HUNDRED.checked_sub(data.coverage.unattributed_pct).unwrap_or_default();

    h.push_str("<section class=\"cards\" id=\"summary\">\n");
    let mut card = |id: &str, label: &str, value: String, sub: String| {
        writeln!(
            h,
            "<div class=\"card\" id=\"card-{id}\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div>\
             <div class=\"sub\">{sub}</div></div>"
        )
        .ok();
    };
    card(
        "tenants-cost",
        "Tenants&rsquo; cost to date",
        money(actual),
        format!("direct {} + attributed {}", money(direct), money(attributed_cost)),
    );
    card(
        "tenants-estimate",
        "Tenants&rsquo; estimate",
        money(estimated),
        format!("variance {} ({})", money(variance), opt_pct(pct_of(variance, estimated), true)),
    );
    match &data.forecast {
        Some(f) => card(
            "tenants-forecast",
            "Tenants&rsquo; forecast month end",
            money(f.month_end),
            format!("range {} &ndash; {}", money(f.low), money(f.high)),
        ),
        None => card("tenants-forecast", "Tenants&rsquo; forecast month end", "&mdash;".into(), "no forecast".into()),
    }
    card(
        "flagged",
        "Flagged tenants",
        flagged.to_string(),
        format!("of {} &middot; {} over budget", data.tenants.len(), over_budget),
    );
    card(
        "attributed",
        "Attributed to tenants",
        pct(attributed, false),
        format!("unattributed {}", pct(data.coverage.unattributed_pct, false)),
    );
    card(
        "account-cost",
        "Account cost to date, all",
        money(account_mtd),
        format!("tenants {} + no tenant {} &middot; {} days", money(actual), money(no_tenant), data.daily.len()),
    );
    h.push_str("</section>\n");
    Ok(())
}

/// `part / whole × 100`, `None` when `whole` is zero.
fn pct_of(part: Decimal, whole: Decimal) -> Option<Decimal> {
    part.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(whole)
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

/// Only for a month with more than one usage account (a multi-account organisation).
fn accounts_table(h: &mut String, data: &ReportData) {
    if data.accounts.is_empty() {
        return;
    }
    let headers = [("Account", false), ("Name", false), ("Amortized", true), ("Tenants", true), ("Unattributed", true)];
    table_open(h, "accounts", "Accounts", "amortized cost per usage (linked) account", &headers);
    for a in &data.accounts {
        let account = if a.account_id.is_empty() { "(no account)" } else { &a.account_id };
        writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(account),
            esc(&a.account_name),
            money(a.amortized),
            money(a.tenants),
            money(a.unattributed),
        )
        .ok();
    }
    table_close(h);
}

/// AWS's month-end forecast per connected account beside curflow's, or "not available" with
/// AWS's reason (no `ce:GetCostForecast` permission, not enough history).
fn aws_forecasts_table(h: &mut String, data: &ReportData) {
    if data.aws_forecasts.is_empty() {
        return;
    }
    let headers = [
        ("Account", false),
        ("AWS month end", true),
        ("To date", true),
        ("AWS rest of month", true),
        ("curflow month end", true),
        ("Fetched", false),
    ];
    table_open(
        h,
        "aws-forecast",
        "AWS forecast",
        "Cost Explorer GetCostForecast (unblended) beside curflow's forecast",
        &headers,
    );
    for f in &data.aws_forecasts {
        let fetched = f.fetched_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
        let opt = |d: Option<Decimal>| d.map_or_else(|| "&mdash;".to_string(), money);
        let aws = match &f.unavailable {
            Some(reason) => format!("not available: {}", esc(reason)),
            None => format!("{} {}", opt(f.aws_month_end), esc(f.currency.as_deref().unwrap_or(""))),
        };
        writeln!(
            h,
            "<tr><td>{} ({})</td><td class=\"num\">{aws}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(&f.account_id),
            money(f.stored_to_date),
            opt(f.aws_rest_of_month),
            opt(f.curflow_month_end),
            esc(&fetched),
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
        ("Flag", false),
    ];
    table_open(
        h,
        "top-variances",
        "Top variances",
        "Largest differences between the app's estimate and the bill, per tenant and resource type; the suggested \
         unit cost would have made the estimate match.",
        &headers,
    );
    if data.top_variances.is_empty() {
        table_empty(h, headers.len(), "No variances.");
    }
    for v in &data.top_variances {
        writeln!(
            h,
            "<tr{}><td class=\"tenant\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if v.flagged { " class=\"flagged\"" } else { "" },
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
            if v.flagged { "<span class=\"flag\">flagged</span>" } else { "" },
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::money::testing::d;

    #[test]
    fn aws_forecasts_show_the_month_end_or_the_escaped_reason() {
        use crate::cost_explorer::forecast::AccountForecast;
        let row = |name: &str, end: Option<&str>, reason: Option<&str>| AccountForecast {
            name: name.into(),
            account_id: "111122223333".into(),
            month: "2026-12".into(),
            aws_rest_of_month: end.map(|_| d("100")),
            stored_to_date: d("23.456"),
            aws_month_end: end.map(d),
            curflow_month_end: Some(d("120")),
            currency: end.map(|_| "USD".to_string()),
            unavailable: reason.map(str::to_string),
            fetched_at: None,
        };
        let none = ReportData { period: "2026-12".into(), currency: "USD".into(), ..ReportData::default() };
        assert!(!render_report(&none).unwrap().contains("id=\"aws-forecast\""));
        let data = ReportData {
            aws_forecasts: vec![row("prod", Some("123.456"), None), row("<b>x</b>", None, Some("AccessDenied <ce>"))],
            ..none
        };
        let html = render_report(&data).unwrap();
        let table = &html[html.find("id=\"aws-forecast\"").unwrap()..];
        let table = &table[..table.find("</section>").unwrap()];
        assert!(table.contains("123.46 USD"), "{table}");
        assert!(
            table.contains("not available: AccessDenied &lt;ce&gt;") && table.contains("&lt;b&gt;x&lt;/b&gt;"),
            "{table}"
        );
        assert!(!table.contains("<b>x"), "{table}");
    }

    #[test]
    fn the_accounts_table_appears_only_for_several_accounts() {
        let row = |id: &str, tenants: &str, unattributed: &str| AccountRow {
            account_id: id.into(),
            account_name: "prod".into(),
            amortized: d(tenants) + d(unattributed),
            tenants: d(tenants),
            unattributed: d(unattributed),
        };
        let one = ReportData { period: "2026-10".into(), currency: "USD".into(), ..ReportData::default() };
        assert!(!render_report(&one).unwrap().contains("<section class=\"panel\" id=\"accounts\""));
        let two =
            ReportData { accounts: vec![row("111122223333", "10.50", "2"), row("444455556666", "0", "1234.5")], ..one };
        let html = render_report(&two).unwrap();
        let table = &html[html.find("<section class=\"panel\" id=\"accounts\"").unwrap()..];
        let table = &table[..table.find("</section>").unwrap()];
        assert!(
            table
                .contains("<td>111122223333</td><td>prod</td><td class=\"num\">12.50</td><td class=\"num\">10.50</td>"),
            "{table}"
        );
        assert!(table.contains("<td>444455556666</td><td>prod</td><td class=\"num\">1,234.50</td>"), "{table}");
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
