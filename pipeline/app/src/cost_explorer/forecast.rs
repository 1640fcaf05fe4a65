//! AWS's own month-end forecast beside curflow's: `nightly` asks Cost Explorer
//! (`GetCostForecast`, UNBLENDED_COST, MONTHLY, today to the first day of next month) for each
//! connected account through the same assumed role as the sync, stores the answer in the account's
//! status, and shows it next to curflow's forecast; `report` shows the stored one without calling AWS.
//!
//! AWS forecasts only the rest of the month, so its month end here is the account's stored
//! unblended cost of the month's earlier days plus AWS's rest-of-month amount. curflow's forecast
//! is the sum of its per-tenant forecasts over the account's lines (of amortized cost, like
//! budgets: equal to unblended cost for an account without reservations or savings plans).
//!
//! Never fails nightly: AccessDenied (the role's policy lacks `ce:GetCostForecast`), an account
//! without enough Cost Explorer history (`DataUnavailableException`), a spent budget — each is
//! "not available" with AWS's reason. Every request is counted in the account's requests ($0.01).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::limiter::Limiter;
use super::{SyncError, client_for, send_with_retry};
use crate::aggregate::CostLine;
use crate::aws::{AwsError, AwsErrorKind, AwsSettings};
use crate::config::Account;
use crate::money::{exact_add, parse_decimal};
use crate::period::BillingPeriod;
use crate::store::Store;
use crate::store::finance::{AccountStatus, AwsForecast};

/// How forecasts are requested (the `ce-*` limits of the configuration).
#[derive(Debug, Clone)]
pub struct ForecastOptions {
    pub aws: AwsSettings,
    pub requests_per_second: Decimal,
    pub request_budget: u64,
}

/// One account's forecasts of the month, side by side (`nightly`, `report`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountForecast {
    pub name: String,
    pub account_id: String,
    pub month: String,
    /// AWS: unblended cost forecast from `from` to the month end (`None`: not available).
    pub aws_rest_of_month: Option<Decimal>,
    /// Stored unblended cost of the account's days of the month before `from`.
    pub stored_to_date: Decimal,
    /// `stored_to_date + aws_rest_of_month`: AWS's month end for the account.
    pub aws_month_end: Option<Decimal>,
    /// curflow's month-end forecast of the account's lines (sum over its tenants), same currency.
    pub curflow_month_end: Option<Decimal>,
    pub currency: Option<String>,
    /// Why AWS's forecast is not available.
    pub unavailable: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
}

/// Fetches the forecast of each enabled account that has synced at least once (an account never
/// synced has no stored month to date, so AWS's month end could not be formed), stores it in the
/// account's status, and returns the rows. Only a store failure is an error.
pub async fn refresh(
    store: &mut dyn Store,
    accounts: &[Account],
    options: &ForecastOptions,
    now: DateTime<Utc>,
) -> crate::Result<Vec<AccountForecast>> {
    let today = now.date_naive();
    let month = BillingPeriod::containing(today);
    let lines = month_lines(&*store, month).await?;
    let statuses = store.account_statuses().await?;
    let mut limiter = Limiter::new(options.requests_per_second, options.request_budget);
    let mut rows = Vec::new();
    for account in accounts.iter().filter(|a| a.enabled) {
        let Some(status) = statuses.iter().find(|s| s.name == account.name) else {
            rows.push(not_synced(account, month));
            continue;
        };
        let before = limiter.made();
        let fetched = fetch(account, &options.aws, &mut limiter, today).await;
        let forecast = match fetched {
            Ok((amount, currency)) => {
                AwsForecast { amount: Some(amount), currency: Some(currency), ..blank(month, today, now) }
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "AWS forecast not available");
                AwsForecast { unavailable: Some(e.to_string()), ..blank(month, today, now) }
            }
        };
        let status = AccountStatus {
            total_requests: status.total_requests.saturating_add(limiter.made() - before),
            forecast: Some(forecast.clone()),
            ..status.clone()
        };
        store.put_account_status(&status).await?;
        rows.push(view(account.name.clone(), account.account_id.clone(), &forecast, &lines, now)?);
    }
    Ok(rows)
}

/// The stored forecasts of `period` (what `report` shows; no AWS call).
pub async fn stored(
    store: &dyn Store,
    period: BillingPeriod,
    now: DateTime<Utc>,
) -> crate::Result<Vec<AccountForecast>> {
    let month = period.to_string();
    let statuses = store.account_statuses().await?;
    let with_forecast: Vec<_> =
        statuses.iter().filter_map(|s| s.forecast.as_ref().filter(|f| f.month == month).map(|f| (s, f))).collect();
    if with_forecast.is_empty() {
        return Ok(Vec::new());
    }
    let lines = month_lines(store, period).await?;
    with_forecast.into_iter().map(|(s, f)| view(s.name.clone(), s.account_id.clone(), f, &lines, now)).collect()
}

async fn month_lines(store: &dyn Store, month: BillingPeriod) -> crate::Result<Vec<CostLine>> {
    Ok(if store.period(month).await?.is_some() { store.cost_lines(month).await? } else { Vec::new() })
}

fn blank(month: BillingPeriod, from: NaiveDate, now: DateTime<Utc>) -> AwsForecast {
    AwsForecast { month: month.to_string(), from, amount: None, currency: None, unavailable: None, fetched_at: now }
}

fn not_synced(account: &Account, month: BillingPeriod) -> AccountForecast {
    AccountForecast {
        name: account.name.clone(),
        account_id: account.account_id.clone(),
        month: month.to_string(),
        aws_rest_of_month: None,
        stored_to_date: Decimal::ZERO,
        aws_month_end: None,
        curflow_month_end: None,
        currency: None,
        unavailable: Some("the account has never synced (ce sync), so its month to date is unknown".into()),
        fetched_at: None,
    }
}

/// One `GetCostForecast` of the rest of the month: the total's amount (exact) and unit.
async fn fetch(
    account: &Account,
    aws: &AwsSettings,
    limiter: &mut Limiter,
    today: NaiveDate,
) -> Result<(Decimal, String), SyncError> {
    use aws_sdk_costexplorer::types::{Granularity, Metric};
    let end = BillingPeriod::containing(today).next().first_day();
    let period = super::date_interval(today, end, account, "GetCostForecast")?;
    let rejected =
        |m: String| AwsError::new("Cost Explorer", "GetCostForecast", &account.name, m, AwsErrorKind::Rejected);
    let mut session = client_for(account, aws).await?;
    let request = session
        .fresh(account, aws)
        .await?
        .get_cost_forecast()
        .time_period(period)
        .metric(Metric::UnblendedCost)
        .granularity(Granularity::Monthly);
    let out = send_with_retry(limiter, "GetCostForecast", &account.name, || request.clone().send()).await?;
    let total = out.total().ok_or_else(|| rejected("no Total in the response".into()))?;
    let text = total.amount().unwrap_or_default();
    let amount = parse_decimal(text).map_err(|e| rejected(format!("Total amount {text:?}: {e}")))?;
    Ok((amount, total.unit().unwrap_or("USD").to_string()))
}

/// The row of one account: AWS's amounts and curflow's forecast over the account's lines.
fn view(
    name: String,
    account_id: String,
    f: &AwsForecast,
    lines: &[CostLine],
    now: DateTime<Utc>,
) -> crate::Result<AccountForecast> {
    let account_lines: Vec<CostLine> =
        lines.iter().filter(|l| l.key.account_id.as_str() == account_id).cloned().collect();
    let currency = f.currency.clone();
    let in_currency = |l: &&CostLine| currency.as_deref().is_none_or(|c| l.key.currency.as_str() == c);
    let mut stored_to_date = Decimal::ZERO;
    for l in account_lines.iter().filter(in_currency).filter(|l| l.key.usage_date < f.from) {
        stored_to_date = add(stored_to_date, l.amounts.unblended_cost)?;
    }
    let aws_month_end = f.amount.map(|a| add(stored_to_date, a)).transpose()?;
    let period =
        f.month.parse::<BillingPeriod>().map_err(|e| crate::Error::Internal(format!("stored forecast month: {e}")))?;
    let ours = crate::reconciliation::forecasts(&account_lines, period, now)?;
    let mut curflow_month_end: Option<Decimal> = None;
    for o in ours.iter().filter(|o| currency.as_deref().is_none_or(|c| o.currency == c)) {
        curflow_month_end = Some(add(curflow_month_end.unwrap_or_default(), o.forecast)?);
    }
    Ok(AccountForecast {
        name,
        account_id,
        month: f.month.clone(),
        aws_rest_of_month: f.amount,
        stored_to_date,
        aws_month_end,
        curflow_month_end,
        currency,
        unavailable: f.unavailable.clone(),
        fetched_at: Some(f.fetched_at),
    })
}

/// `a + b`, exactly, or the overflow as an error (never a rounded amount).
fn add(a: Decimal, b: Decimal) -> crate::Result<Decimal> {
    exact_add(a, b)
        .ok_or_else(|| crate::Error::Model(crate::error::ModelError::Overflow { what: "an account's forecast".into() }))
}

/// Rows as text lines (nightly's summary).
pub fn text(rows: &[AccountForecast]) -> String {
    let money = |d: Option<Decimal>| d.map_or_else(|| "-".to_string(), |d| crate::money::round(d, 2).to_string());
    let mut out = String::new();
    for r in rows {
        let currency = r.currency.as_deref().unwrap_or("");
        match &r.unavailable {
            Some(reason) => {
                out += &format!("  account {} ({}): AWS forecast not available: {reason}\n", r.name, r.month)
            }
            None => {
                out += &format!(
                    "  account {} ({}): AWS month end {} {currency} (to date {} + rest of month {}), curflow {}\n",
                    r.name,
                    r.month,
                    money(r.aws_month_end),
                    money(Some(r.stored_to_date)),
                    money(r.aws_rest_of_month),
                    money(r.curflow_month_end),
                )
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aggregate::{Amounts, CostKey};

    fn line(account: &str, day: &str, cost: &str) -> CostLine {
        let usage_date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let key = CostKey {
            line_item_type: "CostExplorer".into(),
            account_id: account.into(),
            region: "".into(),
            ..curflow_model::testing::cost_key(usage_date, Some("acme"), "EC2", "")
        };
        let cost: Decimal = cost.parse().unwrap();
        let amounts = Amounts {
            unblended_cost: cost,
            net_unblended_cost: cost,
            amortized_cost: cost,
            line_items: 1,
            ..Amounts::default()
        };
        CostLine::new(BillingPeriod::containing(usage_date), key, amounts)
    }

    #[test]
    fn aws_month_end_is_the_accounts_stored_days_plus_the_rest_of_month_exactly() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T06:00:00Z").unwrap().with_timezone(&Utc);
        let from = now.date_naive();
        let f = AwsForecast {
            month: "2026-12".into(),
            from,
            amount: Some("100.0000000001".parse().unwrap()),
            currency: Some("USD".into()),
            unavailable: None,
            fetched_at: now,
        };
        let lines = [
            line("111111111111", "2026-12-01", "1.1"),
            line("111111111111", "2026-12-02", "2.2000000002"),
            line("111111111111", "2026-12-04", "50"),
            line("222222222222", "2026-12-02", "1000"),
        ];
        let row = view("prod".into(), "111111111111".into(), &f, &lines, now).unwrap();
        assert_eq!(row.stored_to_date.to_string(), "3.3000000002");
        assert_eq!(row.aws_month_end.unwrap().to_string(), "103.3000000003");
        assert!(row.curflow_month_end.is_some());
        let denied = AwsForecast { amount: None, currency: None, unavailable: Some("AccessDenied".into()), ..f };
        let row = view("prod".into(), "111111111111".into(), &denied, &lines, now).unwrap();
        assert_eq!((row.aws_month_end, row.unavailable.as_deref()), (None, Some("AccessDenied")));
        assert!(text(&[row]).contains("AWS forecast not available: AccessDenied"));
    }
}
