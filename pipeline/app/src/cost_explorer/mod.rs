//! Cost Explorer as a second source (`curflow ce sync`): daily costs per service and tenant tag of
//! connected accounts, stored as a billing-period version like a CUR delivery's, and replaced by
//! the month's CUR when it arrives (a CUR version always supersedes a Cost Explorer one: `ReportVersion::supersedes`).
//!
//! Each account is reached by `AssumeRole` with its external id; the temporary credentials live in
//! memory only. Requests are rate-limited and counted against a per-run budget (each costs $0.01).
//! One account failing never stops the others: each ends with its own [`AccountOutcome`].
//!
//! Coarser than a CUR: no usage types, operations, resources or regions (a line's `account_id` is
//! the connected account), so shared-pool attribution only has the direct-cost fallback.

pub mod compare;
pub mod forecast;
pub mod limiter;
pub mod parse;
mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_costexplorer::config::http::HttpResponse;
use aws_sdk_costexplorer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_costexplorer::types::{DateInterval, Granularity, GroupDefinition, GroupDefinitionType};
use chrono::NaiveDate;
use serde::Serialize;

use crate::aws::{AwsError, AwsErrorKind, AwsSettings, sdk_config, sdk_error};
use crate::config::Account;
use crate::store::Store;
use crate::store::finance::AccountStatus;
use limiter::{BudgetSpent, Limiter};
use parse::{AccountLines, METRICS, PageError};
pub use store::{PeriodOutcome, write_periods};

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Tenant tag key (`tag-key`).
    pub tag_key: String,
    /// First and last UTC day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub aws: AwsSettings,
    pub requests_per_second: rust_decimal::Decimal,
    pub request_budget: u64,
}

impl SyncOptions {
    /// The configuration's tag key, AWS settings, rate limit and request budget, for the days
    /// `from..=to`.
    pub fn from_config(config: &crate::Config, from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            tag_key: config.tag_key.clone(),
            from,
            to,
            aws: config.aws(),
            requests_per_second: config.ce_requests_per_second,
            request_budget: config.ce_request_budget,
        }
    }
}

/// Why one account's sync failed; the message names the call and AWS's error.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("AWS Cost Explorer GetCostAndUsage: unreadable result: {0}")]
    Page(#[from] PageError),
    #[error("{0}; the account's days were not stored")]
    Budget(#[from] BudgetSpent),
}

/// How one account's sync ended.
#[derive(Debug, Clone, Serialize)]
pub struct AccountOutcome {
    pub name: String,
    pub account_id: String,
    /// Requests this account's sync sent (retries included).
    pub requests: u64,
    /// Cost lines read.
    pub lines: usize,
    /// `None`: synced. Otherwise what failed (never a credential).
    pub error: Option<String>,
}

/// What one `ce sync` run did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub accounts: Vec<AccountOutcome>,
    pub periods: Vec<PeriodOutcome>,
    pub requests: u64,
    /// USD, $0.01 a request.
    pub requests_cost: rust_decimal::Decimal,
}

/// Attempts of one request on `LimitExceededException` or another transient error.
const ATTEMPTS: u32 = 5;

/// Syncs `accounts` (already selected and enabled) into `store`.
pub async fn sync(store: &mut dyn Store, accounts: &[Account], options: &SyncOptions) -> crate::Result<SyncReport> {
    let mut limiter = Limiter::new(options.requests_per_second, options.request_budget);
    let mut outcomes = Vec::new();
    let mut fetched: BTreeMap<String, Vec<crate::CostLine>> = BTreeMap::new();
    let mut estimated = std::collections::BTreeSet::new();
    for account in accounts {
        let before = limiter.made();
        let result = fetch_account(account, options, &mut limiter).await;
        let requests = limiter.made() - before;
        let outcome = match result {
            Ok(lines) => {
                estimated.extend(lines.estimated.iter().copied());
                let lines = lines.into_lines();
                let n = lines.len();
                fetched.insert(account.account_id.clone(), lines);
                AccountOutcome {
                    name: account.name.clone(),
                    account_id: account.account_id.clone(),
                    requests,
                    lines: n,
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "Cost Explorer sync of the account failed");
                AccountOutcome {
                    name: account.name.clone(),
                    account_id: account.account_id.clone(),
                    requests,
                    lines: 0,
                    error: Some(e.to_string()),
                }
            }
        };
        outcomes.push(outcome);
    }
    let periods = write_periods(store, &fetched, &estimated, options).await?;
    record_statuses(store, &outcomes).await?;
    let requests = limiter.made();
    Ok(SyncReport { accounts: outcomes, periods, requests, requests_cost: limiter::cost_of(requests) })
}

/// The days a sync reads by default (`ce sync` without `--from`/`--to`, the Lambda's daily
/// `ce-sync`): from the first day of the previous month, so the month just closed is re-read
/// until AWS finalises it, to yesterday (today's costs are still accumulating).
pub fn default_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let yesterday = today.pred_opt().unwrap_or(today);
    let previous_month_end = crate::period::BillingPeriod::containing(today).first_day().pred_opt().unwrap_or(today);
    let from = crate::period::BillingPeriod::containing(previous_month_end).first_day();
    (from.min(yesterday), yesterday)
}

/// The accounts of `accounts` whose last sync attempt (in `statuses`) is less than `interval` before
/// `now`, each with the time left to wait: a manual sync of them is refused (every request costs
/// money, and Cost Explorer refreshes its data a few times a day at most).
pub fn too_recent(
    accounts: &[Account],
    statuses: &[AccountStatus],
    interval: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, chrono::Duration)> {
    accounts
        .iter()
        .filter_map(|a| {
            let last = statuses.iter().find(|s| s.name == a.name)?.last_attempt;
            let wait = last + interval - now;
            (wait > chrono::Duration::zero()).then(|| (a.name.clone(), wait))
        })
        .collect()
}

/// Stores each account's status: the last attempt, the last success, the last error, requests.
/// Written after the periods, so "synced" means its days are stored.
async fn record_statuses(store: &mut dyn Store, outcomes: &[AccountOutcome]) -> crate::Result<()> {
    let stored = store.account_statuses().await?;
    let now = chrono::Utc::now();
    for o in outcomes {
        let before = stored.iter().find(|s| s.name == o.name);
        let status = AccountStatus {
            name: o.name.clone(),
            account_id: o.account_id.clone(),
            last_attempt: now,
            last_synced: if o.error.is_none() { Some(now) } else { before.and_then(|b| b.last_synced) },
            last_error: o.error.clone(),
            last_requests: o.requests,
            total_requests: before.map_or(0, |b| b.total_requests).saturating_add(o.requests),
            forecast: before.and_then(|b| b.forecast.clone()),
        };
        store.put_account_status(&status).await?;
    }
    Ok(())
}

/// The days `start..end` (end exclusive) as Cost Explorer's `TimePeriod`; a refusal names the
/// account and the operation it was for.
fn date_interval(
    start: NaiveDate,
    end: NaiveDate,
    account: &Account,
    operation: &str,
) -> Result<DateInterval, AwsError> {
    DateInterval::builder()
        .start(start.format("%Y-%m-%d").to_string())
        .end(end.format("%Y-%m-%d").to_string())
        .build()
        .map_err(|e| AwsError::new("Cost Explorer", operation, &account.name, e.to_string(), AwsErrorKind::Rejected))
}

/// Assumes the account's role and reads its days, page by page.
async fn fetch_account(
    account: &Account,
    options: &SyncOptions,
    limiter: &mut Limiter,
) -> Result<AccountLines, SyncError> {
    let end = options.to.succ_opt().unwrap_or(options.to);
    let query = CostQuery {
        interval: date_interval(options.from, end, account, "GetCostAndUsage")?,
        granularity: Granularity::Daily,
        metrics: &METRICS,
        tag_key: &options.tag_key,
    };
    let mut lines = AccountLines::default();
    each_cost_page(account, &options.aws, limiter, &query, |results| {
        lines.add_page(results, &account.account_id, &options.tag_key)
    })
    .await?;
    Ok(lines)
}

/// One `GetCostAndUsage` question, grouped by `SERVICE` and the tenant tag: all but the page token.
pub(crate) struct CostQuery<'a> {
    pub interval: DateInterval,
    pub granularity: Granularity,
    pub metrics: &'a [&'a str],
    pub tag_key: &'a str,
}

/// Hands every page of `query` in `account` to `on_page`: the role assumed (and renewed when its
/// credentials near expiry), each request through the limiter, throttling retried.
pub(crate) async fn each_cost_page(
    account: &Account,
    aws: &AwsSettings,
    limiter: &mut Limiter,
    query: &CostQuery<'_>,
    mut on_page: impl FnMut(&[aws_sdk_costexplorer::types::ResultByTime]) -> Result<(), PageError>,
) -> Result<(), SyncError> {
    let mut session = client_for(account, aws).await?;
    let group = |kind: GroupDefinitionType, key: &str| GroupDefinition::builder().r#type(kind).key(key).build();
    let mut token: Option<String> = None;
    loop {
        let request = session
            .fresh(account, aws)
            .await?
            .get_cost_and_usage()
            .time_period(query.interval.clone())
            .granularity(query.granularity.clone())
            .set_metrics(Some(query.metrics.iter().map(|m| (*m).to_string()).collect()))
            .group_by(group(GroupDefinitionType::Dimension, "SERVICE"))
            .group_by(group(GroupDefinitionType::Tag, query.tag_key))
            .set_next_page_token(token.clone());
        let page = send_with_retry(limiter, "GetCostAndUsage", &account.name, || request.clone().send()).await?;
        on_page(page.results_by_time())?;
        token = page.next_page_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(());
        }
    }
}

/// Sends one request through the limiter, retrying throttling with exponential backoff (each
/// attempt counts against the budget: AWS charges for it).
async fn send_with_retry<T, E, F, Fut>(
    limiter: &mut Limiter,
    operation: &'static str,
    account: &str,
    mut send: F,
) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        limiter.acquire().await?;
        match send().await {
            Ok(out) => return Ok(out),
            Err(e) => {
                let throttled = e.code() == Some("LimitExceededException");
                let error = sdk_error("Cost Explorer", operation, account, e);
                if !(throttled || error.is_retryable()) || attempt == ATTEMPTS {
                    return Err(error.into());
                }
                tracing::info!(
                    account,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "Cost Explorer throttled; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
    }
    Err(AwsError::new("Cost Explorer", operation, account, "no attempt left", AwsErrorKind::Transient).into())
}

/// A Cost Explorer client with the account's temporary credentials from `AssumeRole` +
/// `ExternalId`. The credentials are never logged: only the role ARN is named in errors.
async fn client_for(account: &Account, aws: &AwsSettings) -> Result<Session, AwsError> {
    let settings = AwsSettings { region: Some(account.region.clone()), ..aws.clone() };
    let config = sdk_config(&settings).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let assumed = sts
        .assume_role()
        .role_arn(&account.role_arn)
        .role_session_name(session_name(&account.name))
        .external_id(&account.external_id)
        .send()
        .await
        .map_err(|e| sdk_error("STS", "AssumeRole", &account.role_arn, e))?;
    let credentials = assumed.credentials().ok_or_else(|| {
        AwsError::new("STS", "AssumeRole", &account.role_arn, "no credentials in the response", AwsErrorKind::Rejected)
    })?;
    let expiry = std::time::SystemTime::try_from(*credentials.expiration()).ok();
    let provider = aws_sdk_costexplorer::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        expiry,
        "curflow-assume-role",
    );
    let ce_config = aws_sdk_costexplorer::config::Builder::from(&config).credentials_provider(provider).build();
    Ok(Session { client: aws_sdk_costexplorer::Client::from_conf(ce_config), expiry })
}

/// A Cost Explorer client on one account's temporary credentials, and when they expire.
struct Session {
    client: aws_sdk_costexplorer::Client,
    expiry: Option<std::time::SystemTime>,
}

/// Credentials are renewed when less than this is left, so no request of a long sync (many
/// pages, waits for the rate limit, backoff) is sent with credentials about to expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl Session {
    /// The client, after assuming the role again if the credentials expire within
    /// [`REFRESH_MARGIN`].
    async fn fresh(&mut self, account: &Account, aws: &AwsSettings) -> Result<&aws_sdk_costexplorer::Client, AwsError> {
        if needs_refresh(self.expiry, std::time::SystemTime::now(), REFRESH_MARGIN) {
            tracing::info!(account = %account.name, "renewing the assumed role's credentials");
            *self = client_for(account, aws).await?;
        }
        Ok(&self.client)
    }
}

/// Whether credentials expiring at `expiry` must be renewed at `now` (unknown expiry: no).
fn needs_refresh(expiry: Option<std::time::SystemTime>, now: std::time::SystemTime, margin: Duration) -> bool {
    expiry.is_some_and(|e| e.duration_since(now).map_or(true, |left| left < margin))
}

/// The `RoleSessionName` (at most 64 characters of `[\w+=,.@-]`), so CloudTrail in the connected
/// account shows that curflow read its costs.
fn session_name(account: &str) -> String {
    let clean: String =
        account.chars().map(|c| if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) { c } else { '-' }).collect();
    format!("curflow-ce-{clean}").chars().take(64).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_within_the_interval_is_refused_with_the_time_to_wait() {
        let account = |name: &str| Account {
            name: name.into(),
            account_id: "111111111111".into(),
            role_arn: "arn:aws:iam::111111111111:role/r".into(),
            external_id: "x".into(),
            region: "us-east-1".into(),
            enabled: true,
        };
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let status = |name: &str, minutes_ago: i64| AccountStatus {
            name: name.into(),
            account_id: "111111111111".into(),
            last_attempt: now - chrono::Duration::minutes(minutes_ago),
            last_synced: None,
            last_error: None,
            last_requests: 0,
            total_requests: 0,
            forecast: None,
        };
        let accounts = [account("a"), account("b"), account("c")];
        let statuses = [status("a", 5), status("b", 20)];
        let refused = too_recent(&accounts, &statuses, chrono::Duration::minutes(15), now);
        assert_eq!(refused, [("a".to_string(), chrono::Duration::minutes(10))]);
        assert!(too_recent(&accounts, &statuses, chrono::Duration::zero(), now).is_empty());
    }

    #[test]
    fn the_default_range_is_the_previous_month_to_yesterday() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(default_range(d("2026-12-04")), (d("2026-11-01"), d("2026-12-03")));
        assert_eq!(default_range(d("2026-01-01")), (d("2025-12-01"), d("2025-12-31")));
    }

    #[test]
    fn credentials_are_renewed_shortly_before_they_expire() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let margin = Duration::from_secs(300);
        assert!(!needs_refresh(None, now, margin));
        assert!(!needs_refresh(Some(now + Duration::from_secs(301)), now, margin));
        assert!(needs_refresh(Some(now + Duration::from_secs(299)), now, margin));
        assert!(needs_refresh(Some(now - Duration::from_secs(1)), now, margin));
    }

    #[test]
    fn session_names_are_valid_and_short() {
        assert_eq!(session_name("prod eu"), "curflow-ce-prod-eu");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
