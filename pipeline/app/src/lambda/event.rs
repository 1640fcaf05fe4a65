//! Incoming Lambda events → what to do ([`Trigger`]), as plain functions over JSON.
//!
//! | event | trigger |
//! |---|---|
//! | S3 notification (`Records[].eventSource = aws:s3`), `ObjectCreated:*` on `*Manifest.json` | [`Trigger::Manifest`] (key URL-decoded: `+` → space, `%2F` → `/`) |
//! | the same on any other key (data files, `RedshiftManifest.json`, status files) | [`Trigger::Ignored`] |
//! | S3 notification of another type (`ObjectRemoved:*`, ...) | [`Trigger::Ignored`] |
//! | `s3:TestEvent` (sent when a notification is configured) | [`Trigger::Ignored`] |
//! | EventBridge `source: aws.s3`, `detail-type: Object Created` on a manifest | [`Trigger::Manifest`] (key used as delivered: EventBridge does not URL-encode it) |
//! | EventBridge `aws.s3`, other detail types or non-manifest keys | [`Trigger::Ignored`] |
//! | EventBridge schedule: `detail-type: Scheduled Event`, or the constant input `{"curflow":"nightly"}` | [`Trigger::Nightly`] |
//! | `{"curflow":"ce-sync"}` (the daily Cost Explorer rule) | [`Trigger::CeSync`] of every enabled connected account |
//! | `{"curflow":"ce-sync","account":"NAME"}` (a manual "sync now") | [`Trigger::CeSync`] of that account, refused within `ce-manual-sync-interval-minutes` of its last attempt |
//! | SQS / SNS records wrapping any of the above (`body` / `Sns.Message`) | parsed recursively |
//! | anything else | [`Error::Argument`] (bad input: reported, not retried) |
//!
//! One event may carry several records; each becomes one trigger, in order.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3EventRecord;
use serde_json::Value;

use crate::discover::is_manifest_name;
use crate::error::{Error, Result};
use crate::location::{decode_event_key, key_name};

/// What one event (record) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A manifest was written: process the current delivery of its billing period.
    Manifest { bucket: String, key: String },
    /// Nothing to do, and why (`what` names the object or event).
    Ignored { what: String, reason: String },
    /// The nightly job (schedule).
    Nightly,
    /// A Cost Explorer sync: of every enabled connected account (`account: None`, the daily
    /// rule), or a manual sync of one (rate-limited like `curflow ce sync --account`).
    CeSync { account: Option<String> },
}

impl Trigger {
    /// A short name for logs and responses.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Manifest { bucket, key } => format!("s3://{bucket}/{key}"),
            Trigger::Ignored { what, .. } => what.clone(),
            Trigger::Nightly => "nightly schedule".into(),
            Trigger::CeSync { account: None } => "Cost Explorer sync".into(),
            Trigger::CeSync { account: Some(a) } => format!("Cost Explorer sync of account {a}"),
        }
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Argument(format!("Lambda event: {}", reason.into()))
}

/// The trigger for an object-created notification on `bucket`/`key` (key already decoded).
fn object_created(bucket: String, key: String) -> Trigger {
    if key.ends_with('/') || !is_manifest_name(key_name(&key)) {
        Trigger::Ignored {
            what: format!("s3://{bucket}/{key}"),
            reason: "not a *Manifest.json: data files are processed through their manifest".into(),
        }
    } else {
        Trigger::Manifest { bucket, key }
    }
}

/// Parses an event into triggers. Errors are bad input ([`Error::Argument`]).
pub fn parse_event(event: &Value) -> Result<Vec<Trigger>> {
    let Some(object) = event.as_object() else {
        return Err(bad(format!("expected a JSON object, got {}", short(event))));
    };
    if let Some(records) = object.get("Records") {
        let records = records.as_array().ok_or_else(|| bad("`Records` is not a list"))?;
        let mut out = Vec::new();
        for (i, record) in records.iter().enumerate() {
            out.extend(parse_record(record).map_err(|e| match e {
                Error::Argument(m) => Error::Argument(format!("{m} (record {i})")),
                other => other,
            })?);
        }
        return Ok(out);
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = object.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        return Ok(vec![Trigger::Ignored {
            what: format!("s3:TestEvent for bucket {bucket}"),
            reason: "test event sent when the notification was configured".into(),
        }]);
    }
    if let Some(job) = object.get("curflow") {
        return parse_job(job, object).map(|t| vec![t]);
    }
    if object.contains_key("detail-type") {
        return parse_eventbridge(event).map(|t| vec![t]);
    }
    Err(bad(format!("not an S3 notification, EventBridge event or {{\"curflow\":\"nightly\"}}: {}", short(event))))
}

/// A curflow job event: `{"curflow":"nightly"}`, `{"curflow":"ce-sync"}` or
/// `{"curflow":"ce-sync","account":"NAME"}`. Unknown keys of a ce-sync are refused, so a typo
/// (`"acount"`) is not silently a (paid) sync of every account.
fn parse_job(job: &Value, object: &serde_json::Map<String, Value>) -> Result<Trigger> {
    let extra =
        |allowed: &[&str]| object.keys().find(|k| k.as_str() != "curflow" && !allowed.contains(&k.as_str())).cloned();
    match job.as_str() {
        Some("nightly") => Ok(Trigger::Nightly),
        Some("ce-sync") => {
            if let Some(k) = extra(&["account"]) {
                return Err(bad(format!("unexpected key {k:?} in the ce-sync event; expected only \"account\"")));
            }
            match object.get("account") {
                None => Ok(Trigger::CeSync { account: None }),
                Some(Value::String(a)) if !a.is_empty() => Ok(Trigger::CeSync { account: Some(a.clone()) }),
                Some(other) => Err(bad(format!("ce-sync \"account\" must be an account name, got {other}"))),
            }
        }
        _ => Err(bad(format!(
            "unknown curflow job {job}; expected {{\"curflow\":\"nightly\"}} or {{\"curflow\":\"ce-sync\"}}"
        ))),
    }
}

fn parse_record(record: &Value) -> Result<Vec<Trigger>> {
    let source = record.get("eventSource").or_else(|| record.get("EventSource")).and_then(Value::as_str);
    match source {
        Some("aws:s3") => {
            let record: S3EventRecord = serde_json::from_value(record.clone())
                .map_err(|e| bad(format!("malformed S3 notification record: {e}")))?;
            let name = record.event_name.clone().unwrap_or_default();
            let bucket = record.s3.bucket.name.clone().ok_or_else(|| bad("S3 record without bucket name"))?;
            let raw = record.s3.object.key.clone().ok_or_else(|| bad("S3 record without object key"))?;
            let key = decode_event_key(&raw)?;
            if !name.starts_with("ObjectCreated:") {
                return Ok(vec![Trigger::Ignored {
                    what: format!("s3://{bucket}/{key}"),
                    reason: format!("event {name:?} is not ObjectCreated"),
                }]);
            }
            Ok(vec![object_created(bucket, key)])
        }
        Some("aws:sqs") => {
            let body = record.get("body").and_then(Value::as_str).ok_or_else(|| bad("SQS record without body"))?;
            let inner: Value = serde_json::from_str(body).map_err(|e| bad(format!("SQS body is not JSON: {e}")))?;
            parse_event(&inner)
        }
        Some("aws:sns") => {
            let message = record
                .pointer("/Sns/Message")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("SNS record without Sns.Message"))?;
            let inner: Value =
                serde_json::from_str(message).map_err(|e| bad(format!("SNS message is not JSON: {e}")))?;
            parse_event(&inner)
        }
        other => Err(bad(format!("unsupported record source {other:?}"))),
    }
}

fn parse_eventbridge(event: &Value) -> Result<Trigger> {
    let parsed: EventBridgeEvent<Value> =
        serde_json::from_value(event.clone()).map_err(|e| bad(format!("malformed EventBridge event: {e}")))?;
    match (parsed.source.as_str(), parsed.detail_type.as_str()) {
        ("aws.s3", "Object Created") => {
            let bucket = parsed
                .detail
                .pointer("/bucket/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("EventBridge Object Created without detail.bucket.name"))?;
            let key = parsed
                .detail
                .pointer("/object/key")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("EventBridge Object Created without detail.object.key"))?;
            Ok(object_created(bucket.to_string(), key.to_string()))
        }
        ("aws.s3", other) => Ok(Trigger::Ignored {
            what: format!("EventBridge {other}"),
            reason: "only Object Created events of manifests are processed".into(),
        }),
        (_, "Scheduled Event") => Ok(Trigger::Nightly),
        (source, detail_type) => Err(bad(format!("unsupported EventBridge event {source} / {detail_type}"))),
    }
}

/// The first 300 characters of a JSON value, for messages.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_record(name: &str, bucket: &str, key: &str) -> Value {
        json!({"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
               "eventTime":"2026-11-02T03:04:05.000Z","eventName":name,
               "userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"1.2.3.4"},
               "responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
               "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":bucket,"arn":"arn:aws:s3:::b"},
                     "object":{"key":key,"size":10,"eTag":"e","sequencer":"0A"}}})
    }

    #[test]
    fn s3_records_decode_keys_and_ignore_data_files() {
        let event = json!({"Records":[
            s3_record("ObjectCreated:Put", "b", "cur%2FR%2Fmetadata%2FBILLING_PERIOD%3D2026-10%2FR-Manifest.json"),
            s3_record("ObjectCreated:Put", "b", "my+reports/R/20261001-20261101/R-Manifest.json"),
            s3_record("ObjectCreated:Put", "b", "cur/R/data/BILLING_PERIOD%3D2026-10/R-00001.snappy.parquet"),
            s3_record("ObjectRemoved:Delete", "b", "cur/R-Manifest.json"),
        ]});
        let t = parse_event(&event).unwrap();
        assert_eq!(
            t[0],
            Trigger::Manifest {
                bucket: "b".into(),
                key: "cur/R/metadata/BILLING_PERIOD=2026-10/R-Manifest.json".into()
            }
        );
        assert_eq!(
            t[1],
            Trigger::Manifest { bucket: "b".into(), key: "my reports/R/20261001-20261101/R-Manifest.json".into() }
        );
        assert!(matches!(&t[2], Trigger::Ignored { reason, .. } if reason.contains("not a *Manifest.json")));
        assert!(matches!(&t[3], Trigger::Ignored { reason, .. } if reason.contains("ObjectRemoved")));
    }

    #[test]
    fn test_events_schedules_and_eventbridge() {
        let test = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-02T00:00:00Z","Bucket":"b"});
        assert!(matches!(parse_event(&test).unwrap()[0], Trigger::Ignored { .. }));
        assert_eq!(parse_event(&json!({"curflow":"nightly"})).unwrap(), vec![Trigger::Nightly]);
        let scheduled = json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events",
            "account":"1","time":"2026-11-02T02:00:00Z","region":"us-east-1","resources":["arn:aws:events:r"],"detail":{}});
        assert_eq!(parse_event(&scheduled).unwrap(), vec![Trigger::Nightly]);
        let created = json!({"version":"0","id":"x","detail-type":"Object Created","source":"aws.s3",
            "account":"1","time":"2026-11-02T02:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::b"],
            "detail":{"version":"0","bucket":{"name":"b"},"object":{"key":"a b/R-Manifest.json","size":5},"reason":"PutObject"}});
        assert_eq!(
            parse_event(&created).unwrap(),
            vec![Trigger::Manifest { bucket: "b".into(), key: "a b/R-Manifest.json".into() }]
        );
        for bad_input in [
            json!([1]),
            json!({"hello":1}),
            json!({"curflow":"weekly"}),
            json!({"Records":[{"eventSource":"aws:kinesis"}]}),
        ] {
            assert!(matches!(parse_event(&bad_input), Err(Error::Argument(_))), "{bad_input}");
        }
    }

    #[test]
    fn ce_sync_events_name_all_accounts_or_one() {
        assert_eq!(parse_event(&json!({"curflow":"ce-sync"})).unwrap(), vec![Trigger::CeSync { account: None }]);
        assert_eq!(
            parse_event(&json!({"curflow":"ce-sync","account":"prod"})).unwrap(),
            vec![Trigger::CeSync { account: Some("prod".into()) }]
        );
        for bad_input in [
            json!({"curflow":"ce-sync","account":""}),
            json!({"curflow":"ce-sync","account":7}),
            json!({"curflow":"ce-sync","acount":"prod"}),
        ] {
            assert!(matches!(parse_event(&bad_input), Err(Error::Argument(_))), "{bad_input}");
        }
    }

    #[test]
    fn sqs_wrapped_notifications_are_unwrapped() {
        let inner = json!({"Records":[s3_record("ObjectCreated:Put", "b", "x/R-Manifest.json")]});
        let event = json!({"Records":[{"eventSource":"aws:sqs","body":inner.to_string()}]});
        assert_eq!(
            parse_event(&event).unwrap(),
            vec![Trigger::Manifest { bucket: "b".into(), key: "x/R-Manifest.json".into() }]
        );
    }
}
