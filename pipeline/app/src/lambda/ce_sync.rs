//! The Lambda's Cost Explorer sync (`{"curflow":"ce-sync"}`, optionally with `"account"`): the
//! same sync as `curflow ce sync` over the accounts of the function's configuration
//! (`CURFLOW_ACCOUNTS`, which the CDK stack sets from its `connectedAccounts` context).
//!
//! Error policy, on top of the handler's: one account failing (its role cannot be assumed, Cost
//! Explorer denies it, the budget ran out) is that account's stored status and a WARN log, and
//! the event still returns `Ok` — a Lambda retry would pay for every other account's requests
//! again, and the next daily run retries anyway. A refused manual sync (within
//! `ce-manual-sync-interval-minutes`) is a logged outcome, not an error. Only a store failure
//! returns `Err` (retried: nothing is lost, a sync of the same days is a no-op or an identical replace).

use chrono::{DateTime, Utc};

use crate::config::{Account, Config};
use crate::cost_explorer::{SyncOptions, SyncReport, default_range, limiter, sync, too_recent};
use crate::error::{Error, Result};
use crate::store::Store;

/// How a ce-sync event ended (the handler turns it into an [`super::Outcome`]).
#[derive(Debug)]
pub(super) enum CeSyncEnd {
    /// The sync ran (some accounts may have failed: see the text).
    Synced(String),
    /// Nothing to do (no connected account configured or enabled).
    Nothing(String),
    /// A manual sync within the interval: nothing requested.
    Refused(String),
}

/// Runs a ce-sync event: every enabled account (`account: None`), or the one named, refused when
/// it was tried less than `ce-manual-sync-interval-minutes` ago.
pub(super) async fn run(
    config: &Config,
    store: &mut dyn Store,
    account: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CeSyncEnd> {
    let accounts = match account {
        None => config.accounts.iter().filter(|a| a.enabled).cloned().collect::<Vec<_>>(),
        Some(name) => vec![named(&config.accounts, name)?],
    };
    if accounts.is_empty() {
        return Ok(CeSyncEnd::Nothing("no enabled connected account: [[accounts]] (CURFLOW_ACCOUNTS) is empty".into()));
    }
    if account.is_some() {
        let minutes = i64::try_from(config.ce_manual_sync_interval_minutes).unwrap_or(i64::MAX);
        let interval = chrono::Duration::try_minutes(minutes).unwrap_or(chrono::Duration::MAX);
        if let Some((name, wait)) = too_recent(&accounts, &store.account_statuses().await?, interval, now).first() {
            let text = format!(
                "account {name} was synced less than {minutes} minutes ago (ce-manual-sync-interval-minutes); \
                 nothing requested, try again in {}m {}s",
                wait.num_minutes(),
                wait.num_seconds() % 60
            );
            tracing::warn!(account = %name, wait_s = wait.num_seconds(), "manual Cost Explorer sync refused");
            return Ok(CeSyncEnd::Refused(text));
        }
    }
    let (from, to) = default_range(now.date_naive());
    let options = SyncOptions::from_config(config, from, to);
    let report = sync(store, &accounts, &options).await?;
    Ok(CeSyncEnd::Synced(summary(&report, from, to)))
}

/// The enabled configured account `name`; an unknown or disabled name is bad input (not retried).
fn named(accounts: &[Account], name: &str) -> Result<Account> {
    match accounts.iter().find(|a| a.name == name) {
        Some(a) if a.enabled => Ok(a.clone()),
        Some(_) => Err(Error::Argument(format!("ce-sync: account {name:?} is disabled (enabled = false)"))),
        None => Err(Error::Argument(format!(
            "ce-sync: no connected account named {name:?}; configured: {}",
            accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// One line for the response and the log: accounts synced and failed (with the error), periods,
/// requests and their cost.
fn summary(report: &SyncReport, from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let ok = report.accounts.iter().filter(|a| a.error.is_none()).count();
    let mut text = format!(
        "synced {ok} of {} account(s), {from} to {to}; requests {} (${})",
        report.accounts.len(),
        report.requests,
        limiter::cost_of(report.requests)
    );
    for p in &report.periods {
        text += &format!("; period {} {} ({} lines)", p.period, p.outcome, p.lines);
    }
    for a in report.accounts.iter().filter(|a| a.error.is_some()) {
        text += &format!("; account {} FAILED: {}", a.name, a.error.as_deref().unwrap_or_default());
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn account(name: &str, enabled: bool) -> Account {
        Account {
            name: name.into(),
            account_id: "111111111111".into(),
            role_arn: "arn:aws:iam::111111111111:role/r".into(),
            external_id: "x".into(),
            region: "us-east-1".into(),
            enabled,
        }
    }

    #[test]
    fn a_manual_sync_names_an_enabled_configured_account() {
        let accounts = [account("prod", true), account("old", false)];
        assert_eq!(named(&accounts, "prod").unwrap().name, "prod");
        let e = named(&accounts, "old").unwrap_err().to_string();
        assert!(e.contains("disabled"), "{e}");
        let e = named(&accounts, "nope").unwrap_err();
        assert!(matches!(&e, Error::Argument(m) if m.contains("prod, old")), "{e}");
    }
}
