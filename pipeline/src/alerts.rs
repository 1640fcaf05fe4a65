//! Delivering budget alerts: JSON lines on stdout (always, by the caller), an HTTP webhook (POST of
//! the alert as JSON) and an SNS topic (through the AWS SDK).
//!
//! An alert counts as sent only when every configured channel accepted it; the nightly job records it
//! after that, so a failed delivery is retried on the next run and a delivered one is never repeated.

use std::time::Duration;

use curflow_reconcile::Alert;
use serde::Serialize;

use crate::aws::{AwsSettings, sdk_config, sdk_error};
use crate::error::{Error, Result};

/// Where alerts go (config keys `alert-webhook-url`, `alert-sns-topic-arn`).
///
/// The webhook URL is a bearer secret (Slack/Teams-style URLs carry their token in the path):
/// `Debug` and `Serialize` show its origin only (`https://host/…`), so no log line, `--format json`
/// document or Lambda response can carry it.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertChannels {
    #[serde(serialize_with = "serialize_origin")]
    pub webhook_url: Option<String>,
    pub sns_topic_arn: Option<String>,
    #[serde(skip)]
    pub aws: AwsSettings,
}

impl AlertChannels {
    /// Names of the configured channels, for the record of a sent alert.
    pub fn names(&self) -> String {
        let mut names = vec!["stdout"];
        if self.webhook_url.is_some() {
            names.push("webhook");
        }
        if self.sns_topic_arn.is_some() {
            names.push("sns");
        }
        names.join(",")
    }
}

/// Sends `alert` to the webhook and SNS channels that are configured.
pub async fn deliver(alert: &Alert, channels: &AlertChannels) -> Result<()> {
    let body = serde_json::to_string(alert).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(url) = &channels.webhook_url {
        // The URL is a credential (Slack, Teams...): errors name only its origin.
        let webhook_error = |reason: String| Error::Webhook { target: origin_of(url), reason };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| webhook_error(reqwest_reason(e)))?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("curflow/", env!("CARGO_PKG_VERSION")))
            .body(body.clone())
            .send()
            .await
            .map_err(|e| webhook_error(reqwest_reason(e)))?;
        if !response.status().is_success() {
            return Err(webhook_error(format!("answered HTTP {}", response.status())));
        }
    }
    if let Some(topic) = &channels.sns_topic_arn {
        let config = sdk_config(&channels.aws).await;
        let client = aws_sdk_sns::Client::new(&config);
        client
            .publish()
            .topic_arn(topic)
            .subject(truncate(&format!("curflow budget alert: {} {}", alert.accountant_id, alert.month), 99))
            .message(body)
            .send()
            .await
            .map_err(|e| sdk_error("SNS", "Publish", topic, e))?;
    }
    Ok(())
}

impl std::fmt::Debug for AlertChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertChannels")
            .field("webhook_url", &self.webhook_url.as_deref().map(origin_of))
            .field("sns_topic_arn", &self.sns_topic_arn)
            .field("aws", &self.aws)
            .finish()
    }
}

fn serialize_origin<S: serde::Serializer>(url: &Option<String>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_some(&origin_of(u)),
        None => s.serialize_none(),
    }
}

/// `https://host[:port]` of a URL, without the path and query that carry a webhook's secret.
fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}/…", u.origin().ascii_serialization()),
        Err(_) => "(unparseable URL)".into(),
    }
}

/// A reqwest error and its causes, without the request URL.
fn reqwest_reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_and_json_show_the_webhook_origin_only() {
        let channels = AlertChannels {
            webhook_url: Some("https://hooks.slack.com/services/T000/B000/XXXXSECRET".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&channels).unwrap_or_default();
        let debug = format!("{channels:?}");
        for shown in [&json, &debug] {
            assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
            assert!(!shown.contains("SECRET") && !shown.contains("services"), "{shown}");
        }
    }

    use super::*;

    #[test]
    fn webhook_errors_name_the_origin_only() {
        assert_eq!(origin_of("https://hooks.example.com/services/T0/B0/sekret?x=1"), "https://hooks.example.com/…");
        assert_eq!(origin_of("http://127.0.0.1:8080/hook"), "http://127.0.0.1:8080/…");
        assert_eq!(origin_of("not a url sekret"), "(unparseable URL)");
    }
}
