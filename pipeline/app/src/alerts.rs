//! Delivering budget alerts: JSON lines on stdout (always, by the caller), an HTTP webhook (POST of
//! the alert as JSON) and an SNS topic (through the AWS SDK), one channel at a time.
//!
//! The nightly job claims each (alert, channel) in the store before calling [`deliver_on`] and marks
//! it sent after (see `curflow_store::finance`): at most once per channel. So a delivery must not
//! repeat itself either: the webhook request is sent once, and SNS `Publish` runs with the SDK's
//! retries off (a retried `Publish` whose first attempt arrived would publish twice). A failure
//! says whether the alert may have arrived anyway ([`DeliveryFailure`]).

use std::time::Duration;

use curflow_reconcile::Alert;
use curflow_store::finance::AlertChannel;
use serde::Serialize;

use crate::aws::{AwsSettings, sdk_config, sdk_error};
use crate::error::Error;

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
    /// The channels an alert is delivered on, in delivery order: the webhook and SNS when
    /// configured; `stdout` (the run's own output) when neither is, so such an alert is still
    /// recorded and reported once.
    pub fn configured(&self) -> Vec<AlertChannel> {
        let mut out = Vec::new();
        if self.webhook_url.is_some() {
            out.push(AlertChannel::Webhook);
        }
        if self.sns_topic_arn.is_some() {
            out.push(AlertChannel::Sns);
        }
        if out.is_empty() {
            out.push(AlertChannel::Stdout);
        }
        out
    }
}

/// A delivery on one channel that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryFailure {
    /// The channel certainly did not take the alert: no connection was made, the request could not
    /// be built, or the receiver answered that it refused it (HTTP 4xx or 503; an SNS error
    /// response other than 5xx). Safe to try again: the nightly job releases its claim and the next
    /// run delivers on this channel.
    #[error(transparent)]
    NotDelivered(Error),
    /// The request may have reached the receiver (a timeout or a connection lost after sending, a
    /// 5xx other than 503): trying again could deliver twice, so the claim is kept and reported as
    /// unconfirmed, never re-sent automatically.
    #[error(transparent)]
    Uncertain(Error),
}

/// Sends `alert` on one `channel`; `stdout` needs nothing (the caller prints the run's alerts).
/// A channel that is not configured is an internal error (the caller asks only for configured ones).
pub async fn deliver_on(alert: &Alert, channel: AlertChannel, channels: &AlertChannels) -> Result<(), DeliveryFailure> {
    let body =
        serde_json::to_string(alert).map_err(|e| DeliveryFailure::NotDelivered(Error::Internal(e.to_string())))?;
    let unconfigured =
        || DeliveryFailure::NotDelivered(Error::Internal(format!("alert channel {channel} is not configured")));
    match channel {
        AlertChannel::Stdout => Ok(()),
        AlertChannel::Webhook => post_webhook(channels.webhook_url.as_deref().ok_or_else(unconfigured)?, body).await,
        AlertChannel::Sns => {
            let topic = channels.sns_topic_arn.as_deref().ok_or_else(unconfigured)?;
            publish_sns(alert, topic, body, &channels.aws).await
        }
    }
}

/// One POST, no retry. Certainly not delivered: the client could not be built or connect, or the
/// receiver answered 4xx (it refused the request) or 503 (it is not taking requests). Anything
/// else may have reached it.
async fn post_webhook(url: &str, body: String) -> Result<(), DeliveryFailure> {
    // The URL is a credential (Slack, Teams...): errors name only its origin.
    let webhook_error = |reason: String| Error::Webhook { target: origin_of(url), reason };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| DeliveryFailure::NotDelivered(webhook_error(reqwest_reason(e))))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("curflow/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let never_sent = e.is_connect() || e.is_builder();
            let error = webhook_error(reqwest_reason(e));
            if never_sent { DeliveryFailure::NotDelivered(error) } else { DeliveryFailure::Uncertain(error) }
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let error = webhook_error(format!("answered HTTP {status}"));
    Err(if refused(status.as_u16()) { DeliveryFailure::NotDelivered(error) } else { DeliveryFailure::Uncertain(error) })
}

/// Whether an HTTP error status says the receiver did not act on the request: a client error, or
/// 503 (not taking requests now). Other 5xx (and unfollowed 3xx) may come after it acted.
fn refused(status: u16) -> bool {
    (400..500).contains(&status) || status == 503
}

/// One `Publish`, with the SDK's retries off. The credentials are resolved first, so a deployment
/// without them fails before anything is sent (certainly not delivered).
async fn publish_sns(alert: &Alert, topic: &str, body: String, aws: &AwsSettings) -> Result<(), DeliveryFailure> {
    use aws_sdk_sns::config::ProvideCredentials;
    use aws_sdk_sns::error::SdkError;

    let config = sdk_config(aws).await;
    if let Some(credentials) = config.credentials_provider() {
        credentials.provide_credentials().await.map_err(|e| {
            let error = crate::aws::AwsError::new(
                "SNS",
                "Publish",
                topic,
                "no usable AWS credentials",
                crate::aws::AwsErrorKind::Denied,
            );
            DeliveryFailure::NotDelivered(Error::Aws(crate::aws::AwsError { source: Some(Box::new(e)), ..error }))
        })?;
    }
    let sns_config = aws_sdk_sns::config::Builder::from(&config)
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_sns::Client::from_conf(sns_config);
    let result = client
        .publish()
        .topic_arn(topic)
        .subject(truncate(&format!("curflow budget alert: {} {}", alert.accountant_id, alert.month), 99))
        .message(body)
        .send()
        .await;
    let Err(e) = result else { return Ok(()) };
    let never_sent = match &e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            e.raw_response().is_some_and(|r| refused(r.status().as_u16()))
        }
        SdkError::DispatchFailure(d) => d.as_connector_error().is_some_and(|c| not_connected(c)),
        _ => false, // timeouts, and whatever a newer SDK adds
    };
    let error = Error::Aws(sdk_error("SNS", "Publish", topic, e));
    Err(if never_sent { DeliveryFailure::NotDelivered(error) } else { DeliveryFailure::Uncertain(error) })
}

/// Whether a connector error happened before a connection existed (refused, unreachable), so no
/// byte of the request was sent.
fn not_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable)
        {
            return true;
        }
        next = err.source();
    }
    false
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

fn serialize_origin<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
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
