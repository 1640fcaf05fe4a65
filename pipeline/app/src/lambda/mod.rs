//! The Lambda function's logic, as plain async functions (the `curflow-lambda` binary only wires
//! them into `lambda_runtime`). Tests call [`Handler::handle`] directly with event JSON.
//!
//! Events are parsed by [`event::parse_event`] (see its table). For each manifest event the handler
//! re-reads the *current* manifest of that billing period from S3 (newest in its period folder),
//! settles duplicates and stale deliveries from the store (version id and manifest time) without
//! touching data, and otherwise checks every data file (HEAD: none missing, none newer than the
//! manifest), scans and replaces the period. Duplicate, late and out-of-order events are therefore harmless, and an older delivery
//! never replaces a newer one (the store's `decide`).
//!
//! Error policy (design.md "Errors"), per trigger:
//!
//! | class | examples | handler |
//! |---|---|---|
//! | bad input (`User`) | unknown event shape, bad manifest, bad CSV value, missing column | logged at ERROR with the trigger and the error; reported in the response (`failed`); **returns `Ok`**, so Lambda does not retry an event that can never succeed |
//! | environment (`External`) | S3/DynamoDB throttling or 5xx, timeouts, a data file missing or newer than its manifest (delivery still being written), store busy, **access denied or invalid credentials, a missing table, an AWS error response the SDK cannot read, an alert that could not be delivered** | logged at WARN; the other triggers still run; **returns `Err`** so Lambda retries the event (already-processed periods are then no-ops) |
//! | broken invariant (`Internal`) | totals changed by attribution, a sum that does not verify | logged at ERROR as internal; **returns `Err`** |
//!
//! Configuration comes from the environment (`Config::load`: `CURFLOW_STORE` may be a SQLite path or
//! `dynamodb://TABLE`, `CURFLOW_MEMORY_LIMIT_MB`, `CURFLOW_SPILL_DIR` + `CURFLOW_SPILL_MAX_MB` to bound
//! spill files under `/tmp`, `CURFLOW_AWS_*`, and `CURFLOW_ACCOUNTS`, the connected accounts of
//! the Cost Explorer events, which the CDK stack sets from its `connectedAccounts` context).

mod ce_sync;
pub mod event;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::discover::s3::{current_manifest, period_folder};
use crate::error::{Error, ErrorClass, Result};
use crate::location::S3Access;
use crate::period::BillingPeriod;
use crate::process::{PeriodReport, Processor};
use crate::store::{self, ReplaceOutcome, Store};
pub use event::{Trigger, parse_event};

/// What the handler did with one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The period was read and replaced.
    Processed,
    /// The store already held this version (duplicate event): nothing read, nothing written.
    Unchanged,
    /// The store holds a newer version: nothing written.
    RefusedOlder,
    /// Not a manifest / test event / other event type.
    Ignored,
    /// The nightly job ran.
    Nightly,
    /// A Cost Explorer sync ran (`detail`: accounts synced and failed, requests and their cost).
    CeSync,
    /// A manual Cost Explorer sync within `ce-manual-sync-interval-minutes` of the account's last
    /// attempt: nothing requested (`detail` says how long to wait). Not an error: not retried.
    Refused,
    /// Failed; see `detail` and the response status.
    Failed,
}

/// One trigger's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The object (`s3://bucket/key`) or event the trigger came from.
    pub trigger: String,
    pub action: Action,
    pub period: Option<BillingPeriod>,
    /// The version now stored (processed/unchanged) or found (refused).
    pub version: Option<String>,
    /// The manifest actually processed (the current one of the period, not necessarily the event's).
    pub manifest: Option<String>,
    pub rows_read: Option<u64>,
    /// Why it was ignored or failed; the nightly summary.
    pub detail: Option<String>,
}

/// The function's response when it returns `Ok`.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// `ok`, or `failed` when some trigger failed on bad input (not retried), or `rejected` when
    /// the event itself was not understood.
    pub status: &'static str,
    pub results: Vec<Outcome>,
}

/// The Lambda handler: configuration, S3 clients and the processor, built once per cold start.
pub struct Handler {
    config: Config,
    s3: S3Access,
    /// Behind a lock (taken after the store's) because each delivery sets the usage ledger's
    /// totals of its period on it before processing.
    processor: tokio::sync::Mutex<Processor>,
    /// The store, opened on first use and kept for the life of the execution environment (a
    /// cold start), so warm invocations neither reconnect nor re-check the table. Opening is
    /// lazy so that a store failure is reported per event (and retried), not at start-up. One
    /// event at a time uses it: Lambda sends an environment one event at a time.
    store: tokio::sync::Mutex<Option<Box<dyn Store>>>,
}

/// The query engine's pool (`memory-limit-mb`) must fit the function's memory with room to spare:
/// the pool bounds DataFusion's aggregation and sorts, but not what it does not account (the fast
/// path's group tables, decoded batches, the cost lines being written, the AWS SDK). A pool of
/// the function's whole memory or more can never be honoured and is refused at cold start (an
/// environment error: the function fails, the failure queue and alarm see it); more than half
/// is allowed with a warning. `function_mb`: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, absent outside
/// Lambda (no check).
pub fn check_memory(config: &Config, function_mb: Option<&str>) -> Result<()> {
    let Some(function_mb) = function_mb.and_then(|v| v.trim().parse::<usize>().ok()) else { return Ok(()) };
    let pool = config.memory_limit_mb;
    if pool >= function_mb {
        return Err(Error::Config {
            source_name: "memory-limit-mb (CURFLOW_MEMORY_LIMIT_MB)".into(),
            reason: format!(
                "the query-engine pool of {pool} MiB does not fit the function's {function_mb} MB; \
                 set it to at most half the function's memory ({} MiB)",
                function_mb / 2
            ),
        });
    }
    if pool.saturating_mul(2) > function_mb {
        tracing::warn!(
            pool_mib = pool,
            function_mb,
            "memory-limit-mb is more than half the function's memory: what the pool does not account may not fit"
        );
    }
    Ok(())
}

impl Handler {
    /// Builds the handler from a loaded configuration (S3 clients from the AWS chain + overrides).
    pub async fn new(config: Config) -> Result<Self> {
        let s3 = S3Access::new(&config.aws()).await?;
        Self::with_s3(config, s3)
    }

    /// Builds the handler with given S3 clients.
    pub fn with_s3(config: Config, s3: S3Access) -> Result<Self> {
        config.validate()?;
        check_memory(&config, std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok().as_deref())?;
        let processor =
            Processor::new(config.process_options(false))?.with_spill(&config.spill_options())?.with_s3(s3.clone());
        Ok(Self { config, s3, processor: tokio::sync::Mutex::new(processor), store: tokio::sync::Mutex::new(None) })
    }

    /// Handles one event. `Ok` = done (including bad input, reported in the response); `Err` = a
    /// retryable or internal failure: Lambda should retry the event.
    pub async fn handle(&self, event: &Value, now: DateTime<Utc>) -> Result<Response> {
        let triggers = match parse_event(event) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, class = ?e.class(), "rejected event (bad input, not retried)");
                return Ok(Response {
                    status: "rejected",
                    results: vec![Outcome {
                        trigger: "event".into(),
                        action: Action::Failed,
                        period: None,
                        version: None,
                        manifest: None,
                        rows_read: None,
                        detail: Some(e.to_string()),
                    }],
                });
            }
        };
        let mut results = Vec::with_capacity(triggers.len());
        let mut retry: Option<Error> = None;
        let mut bad_input = false;
        let mut store = self.store.lock().await;
        // One run per billing period folder, even if an event carries several of its manifests.
        let mut seen = BTreeSet::new();
        for trigger in triggers {
            let name = trigger.describe();
            match self.run_trigger(&mut store, &trigger, &name, &mut seen, now).await {
                Ok(o) => results.push(o),
                Err(e) => {
                    log_failure(&name, &e);
                    bad_input |= e.class() == ErrorClass::User;
                    results.push(outcome(&name, Action::Failed, None, Some(e.to_string())));
                    keep_for_retry(&mut retry, e);
                }
            }
        }
        for o in &results {
            tracing::info!(trigger = %o.trigger, action = ?o.action, period = ?o.period, version = ?o.version, rows = ?o.rows_read, "result");
        }
        if let Some(e) = retry {
            return Err(e);
        }
        Ok(Response { status: if bad_input { "failed" } else { "ok" }, results })
    }

    /// Runs one trigger of an event. Each kind's future is boxed: held inline, the scan's and the
    /// nightly job's deeply nested futures make the handler's future exceed the compiler's layout
    /// depth (and would sit on the stack of every event).
    async fn run_trigger(
        &self,
        store: &mut Option<Box<dyn Store>>,
        trigger: &Trigger,
        name: &str,
        seen: &mut BTreeSet<(String, String)>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        match trigger {
            Trigger::Ignored { reason, .. } => {
                tracing::info!(trigger = %name, reason = %reason, "ignored");
                Ok(outcome(name, Action::Ignored, None, Some(reason.clone())))
            }
            Trigger::Manifest { bucket, key } => {
                if !seen.insert((bucket.clone(), period_folder(key).to_string())) {
                    return Ok(outcome(
                        name,
                        Action::Ignored,
                        None,
                        Some("same billing period as an earlier record".into()),
                    ));
                }
                Box::pin(self.manifest(store, bucket, key)).await.map(|r| report_outcome(name, &r))
            }
            Trigger::Nightly => Box::pin(self.nightly(store, now))
                .await
                .map(|detail| outcome(name, Action::Nightly, None, Some(detail))),
            Trigger::CeSync { account } => Box::pin(self.ce_sync(store, account.as_deref(), name, now)).await,
        }
    }

    /// Processes the current delivery of the billing period `key` belongs to.
    async fn manifest(&self, store: &mut Option<Box<dyn Store>>, bucket: &str, key: &str) -> Result<PeriodReport> {
        let found = current_manifest(&self.s3, bucket, key).await?;
        let store = self.open_store(store).await?;
        let mut processor = self.processor.lock().await;
        // The usage ledger's totals of the period as they are now (the nightly ingestion adds days).
        let period = found.period();
        let ledger = crate::usage::ledger_inputs(store.as_ref(), &self.config, period.first_day(), period.last_day());
        processor.set_attribution(ledger.await?);
        if let Some(settled) = processor.precheck_manifest(store.as_ref(), &found).await? {
            return Ok(settled);
        }
        let delivery = found.resolve(Some(&self.s3)).await?;
        let on_file = |scan: &crate::scan::FileScan| {
            tracing::debug!(file = %scan.path.display(), rows = scan.rows_read, "file scanned");
        };
        processor.process(store.as_mut(), &delivery, &on_file).await
    }

    /// The store, opened by the first event of this execution environment and kept for every
    /// later one (a failure to open is that event's retryable error, not a failed cold start).
    async fn open_store<'s>(&self, store: &'s mut Option<Box<dyn Store>>) -> Result<&'s mut Box<dyn Store>> {
        Ok(match store {
            Some(s) => s,
            None => store.insert(store::open(&self.config.store, &self.config.aws()).await?),
        })
    }

    /// Runs a Cost Explorer sync event (`lambda::ce_sync`) on the handler's store.
    async fn ce_sync(
        &self,
        store: &mut Option<Box<dyn Store>>,
        account: Option<&str>,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let store = self.open_store(store).await?;
        Ok(match ce_sync::run(&self.config, store.as_mut(), account, now).await? {
            ce_sync::CeSyncEnd::Synced(d) => outcome(name, Action::CeSync, None, Some(d)),
            ce_sync::CeSyncEnd::Nothing(d) => outcome(name, Action::Ignored, None, Some(d)),
            ce_sync::CeSyncEnd::Refused(d) => outcome(name, Action::Refused, None, Some(d)),
        })
    }

    /// Runs the nightly job (`curflow::nightly::run_with`) on the handler's store.
    async fn nightly(&self, store: &mut Option<Box<dyn Store>>, now: DateTime<Utc>) -> Result<String> {
        let store = self.open_store(store).await?;
        // run_on: the usage ledger, the reconciliation and AWS's forecasts.
        let summary = crate::nightly::run_on(store.as_mut(), &self.config, now).await?;
        if let Some((alert, reason)) = summary.alerts_failed.first() {
            return Err(Error::AlertsUndelivered {
                failed: summary.alerts_failed.len(),
                first: format!("tenant {} ({}): {reason}", alert.accountant_id, alert.month),
            });
        }
        let ledger = summary.ledger.as_ref().map_or(String::new(), |l| {
            let days: usize = l.ingested.sources.iter().map(|s| s.days.len()).sum();
            format!("usage ledger: {days} source-day(s) ingested, {} month(s) re-split; ", l.reattributed.len())
        });
        Ok(format!(
            "{ledger}reconciled {} month(s), {} alert(s) sent, {} failed, {} unconfirmed alert delivery(ies), {} anomaly(ies){}",
            summary.reconciled.len(),
            summary.alerts_sent.len(),
            summary.alerts_failed.len(),
            summary.alerts_unconfirmed.len(),
            summary.anomalies.len(),
            aws_forecasts_detail(&summary.aws_forecasts)
        ))
    }
}

/// AWS's forecasts for the nightly outcome: `; AWS forecast prod 123.45 USD month end, staging not available (…)`.
fn aws_forecasts_detail(rows: &[crate::cost_explorer::forecast::AccountForecast]) -> String {
    let parts: Vec<String> = rows
        .iter()
        .map(|r| match (&r.unavailable, r.aws_month_end) {
            (None, Some(end)) => {
                format!("{} {} {} month end", r.name, crate::money::round(end, 2), r.currency.as_deref().unwrap_or(""))
            }
            (reason, _) => format!("{} not available ({})", r.name, reason.as_deref().unwrap_or("no amount")),
        })
        .collect();
    if parts.is_empty() { String::new() } else { format!("; AWS forecast {}", parts.join(", ")) }
}

/// Logs a failed trigger by its class: bad input is not retried, the rest makes the event retried.
fn log_failure(name: &str, e: &Error) {
    match e.class() {
        ErrorClass::User => tracing::error!(trigger = %name, error = %e, "failed on bad input (not retried)"),
        ErrorClass::External => {
            tracing::warn!(trigger = %name, error = %e, "failed, retryable: the event will be retried")
        }
        ErrorClass::Internal => {
            tracing::error!(trigger = %name, error = %e, "INTERNAL ERROR (a bug in curflow); nothing written for this trigger")
        }
    }
}

/// Keeps the error the event is retried with: any but bad input, internal errors winning over
/// retryable ones when both occur.
fn keep_for_retry(retry: &mut Option<Error>, e: Error) {
    if e.class() == ErrorClass::User {
        return;
    }
    let replace = match retry {
        None => true,
        Some(kept) => kept.class() != ErrorClass::Internal && e.class() == ErrorClass::Internal,
    };
    if replace {
        *retry = Some(e);
    }
}

fn outcome(trigger: &str, action: Action, period: Option<BillingPeriod>, detail: Option<String>) -> Outcome {
    Outcome { trigger: trigger.to_string(), action, period, version: None, manifest: None, rows_read: None, detail }
}

fn report_outcome(trigger: &str, r: &PeriodReport) -> Outcome {
    let (action, version, detail) = match &r.outcome {
        ReplaceOutcome::Replaced { previous } => {
            (Action::Processed, r.version.id.clone(), previous.as_ref().map(|p| format!("replaced version {}", p.id)))
        }
        ReplaceOutcome::Unchanged => (Action::Unchanged, r.version.id.clone(), None),
        ReplaceOutcome::RefusedOlder { stored } => (
            Action::RefusedOlder,
            r.version.id.clone(),
            Some(format!("the store holds newer version {} ({})", stored.id, stored.time)),
        ),
    };
    Outcome {
        trigger: trigger.to_string(),
        action,
        period: Some(r.period),
        version: Some(version),
        manifest: Some(r.source.clone()),
        rows_read: (!r.scan_skipped).then_some(r.rows_read),
        detail,
    }
}

/// How the Lambda runtime reports a returned error: the class as the error type
/// (`curflow.External` = retry, `curflow.Internal` = bug); the message is the error's text.
pub fn error_type(e: &Error) -> &'static str {
    match e.class() {
        ErrorClass::User => "curflow.User",
        ErrorClass::External => "curflow.External",
        ErrorClass::Internal => "curflow.Internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_must_fit_the_functions_memory() {
        let config = Config { memory_limit_mb: 1024, ..Config::default() };
        assert!(check_memory(&config, None).is_ok(), "outside Lambda: no check");
        assert!(check_memory(&config, Some("2048")).is_ok(), "the stack's sizing: half");
        assert!(check_memory(&config, Some("1536")).is_ok(), "more than half: a warning only");
        for function_mb in ["1024", "512"] {
            let err = check_memory(&config, Some(function_mb)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("memory-limit-mb") && err.contains(function_mb), "{err}");
        }
    }
}
