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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertChannels {
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
        // The URL is a secret (its path is the credential): errors name the host only, and
        // reqwest's errors are stripped of the URL before they are formatted.
        let target = webhook_host(url);
        let webhook_error = |reason: String| Error::Webhook { target: target.clone(), reason };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| webhook_error(e.without_url().to_string()))?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("curflow/", env!("CARGO_PKG_VERSION")))
            .body(body.clone())
            .send()
            .await
            .map_err(|e| webhook_error(e.without_url().to_string()))?;
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

/// The host a webhook URL points at, for messages (`https://hooks.example.com/…`).
fn webhook_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
