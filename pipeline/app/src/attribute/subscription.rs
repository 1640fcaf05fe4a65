//! CloudWatch Logs subscription-filter payloads as evidence: what a subscription delivers to
//! Kinesis, Firehose or a Lambda, and what Firehose writes to S3 — gzip JSON objects
//! `{"messageType":"DATA_MESSAGE","logGroup":…,"logStream":…,"logEvents":[{"id","timestamp","message"}]}`,
//! concatenated with or without newlines between them.
//!
//! Each payload is decoded as it arrives (one at a time, so memory holds one payload), and each log
//! event becomes the text line `<RFC 3339 timestamp> <message>` — the export layout — for the same
//! line parsers as exported files. `CONTROL_MESSAGE` payloads (the subscription's health checks)
//! are skipped.

use std::io::{self, BufRead, Read};

use chrono::DateTime;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    message_type: String,
    #[serde(default)]
    log_events: Vec<LogEvent>,
}

#[derive(Deserialize)]
struct LogEvent {
    timestamp: Option<i64>,
    message: Option<String>,
}

/// Whether the start of a (decompressed) file looks like a subscription payload.
pub fn looks_like_payload(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(512)]);
    let t = text.trim_start();
    t.starts_with('{') && t.contains("\"messageType\"")
}

/// A `BufRead` of the log events of concatenated payloads.
pub struct PayloadLines<R: Read> {
    payloads: serde_json::StreamDeserializer<'static, serde_json::de::IoRead<R>, Payload>,
    buffer: Vec<u8>,
    pos: usize,
}

impl<R: Read> PayloadLines<R> {
    pub fn new(reader: R) -> Self {
        Self { payloads: serde_json::Deserializer::from_reader(reader).into_iter(), buffer: Vec::new(), pos: 0 }
    }
}

impl<R: Read> Read for PayloadLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::sources::read_through_buffer(self, buf)
    }
}

impl<R: Read> BufRead for PayloadLines<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.buffer.len() {
            self.buffer.clear();
            self.pos = 0;
            match self.payloads.next() {
                None => return Ok(&[]),
                Some(Err(e)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("subscription payload: {e}")));
                }
                Some(Ok(p)) if p.message_type != "DATA_MESSAGE" => {}
                Some(Ok(p)) => {
                    for event in p.log_events {
                        let Some(message) = event.message else { continue };
                        if let Some(t) = event.timestamp.and_then(DateTime::from_timestamp_millis) {
                            self.buffer.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%S%.3fZ ").to_string().as_bytes());
                        }
                        self.buffer.extend_from_slice(message.trim_end_matches(['\n', '\r']).as_bytes());
                        self.buffer.push(b'\n');
                    }
                }
            }
        }
        Ok(&self.buffer[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.buffer.len());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_payloads_become_export_lines_and_control_messages_are_skipped() {
        let payloads = concat!(
            r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1790812800000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#,
            r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/api","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1790812800000,"message":"REPORT RequestId: a\tBilled Duration: 100 ms\tMemory Size: 128 MB\n"},{"id":"2","timestamp":1790812801000,"message":"x"}]}"#,
            "\n",
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"3","timestamp":1790812802000,"message":"y"}]}"#,
        );
        assert!(looks_like_payload(payloads.as_bytes()));
        let mut text = String::new();
        PayloadLines::new(payloads.as_bytes()).read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            "2026-10-01T00:00:00.000Z REPORT RequestId: a\tBilled Duration: 100 ms\tMemory Size: 128 MB\n\
             2026-10-01T00:00:01.000Z x\n2026-10-01T00:00:02.000Z y\n"
        );
        let mut broken = String::new();
        assert!(
            PayloadLines::new(&b"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{"[..])
                .read_to_string(&mut broken)
                .is_err()
        );
    }
}
