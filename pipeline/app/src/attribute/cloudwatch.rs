//! CloudWatch Logs as an evidence source: `FilterLogEvents`, paginated, streamed into the same line
//! parsers as exported log files.
//!
//! Each event becomes one text line `<RFC 3339 timestamp> <message>`, the layout of a CloudWatch Logs
//! export, so a log group read through the API and its export to S3 give the same evidence. Pages are
//! fetched on a background thread (its own single-threaded Tokio runtime: the parsers are synchronous)
//! and handed over through a bounded channel, so memory holds a few pages at most whatever the size
//! of the log group.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use super::sources::CloudWatchSource;
use crate::aws::{AwsSettings, sdk_config, sdk_error};
use crate::error::{Error, Result};

/// Pages in flight between the fetching thread and the parser.
const PAGES_IN_FLIGHT: usize = 4;

/// A `BufRead` over the events of one log group in a time window.
pub struct LogGroupReader {
    pages: Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    failure: Arc<Mutex<Option<Error>>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

/// Starts reading `source` for the UTC days `from..=to` (the billing periods being processed).
pub fn open_log_group(source: &CloudWatchSource, from: NaiveDate, to: NaiveDate, aws: &AwsSettings) -> LogGroupReader {
    let (tx, rx) = sync_channel(PAGES_IN_FLIGHT);
    let failure = Arc::new(Mutex::new(None));
    let start = from.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis());
    let end =
        to.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map_or(i64::MAX, |t| t.and_utc().timestamp_millis() - 1);
    let (source, aws, slot) = (source.clone(), aws.clone(), Arc::clone(&failure));
    let worker = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                record(&slot, Error::Internal(format!("tokio runtime for CloudWatch Logs: {e}")));
                return;
            }
        };
        if let Err(e) = runtime.block_on(fetch(&source, start, end, &aws, &tx)) {
            record(&slot, e);
        }
    });
    LogGroupReader { pages: rx, current: Vec::new(), pos: 0, failure, worker: Some(worker) }
}

fn record(slot: &Mutex<Option<Error>>, e: Error) {
    if let Ok(mut s) = slot.lock() {
        *s = Some(e);
    }
}

async fn fetch(
    source: &CloudWatchSource,
    start: i64,
    end: i64,
    aws: &AwsSettings,
    tx: &SyncSender<Vec<u8>>,
) -> Result<()> {
    let config = sdk_config(aws).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&config);
    let mut pages = client
        .filter_log_events()
        .log_group_name(&source.log_group)
        .start_time(start)
        .end_time(end)
        .set_filter_pattern(source.filter_pattern.clone())
        .set_log_stream_name_prefix(source.stream_prefix.clone())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("CloudWatch Logs", "FilterLogEvents", &source.log_group, e))?;
        let mut bytes = Vec::new();
        for event in page.events() {
            let Some(message) = event.message() else { continue };
            let time = event.timestamp().and_then(DateTime::<Utc>::from_timestamp_millis);
            if let Some(t) = time {
                bytes.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%S%.3fZ ").to_string().as_bytes());
            }
            bytes.extend_from_slice(message.trim_end_matches(['\n', '\r']).as_bytes());
            bytes.push(b'\n');
        }
        if tx.send(bytes).is_err() {
            return Ok(()); // the reader stopped (it has its own error)
        }
    }
    Ok(())
}

impl LogGroupReader {
    /// The fetch error, if the stream ended because of one. Call after reading to the end.
    pub fn finish(mut self) -> Result<()> {
        if let Some(worker) = self.worker.take() {
            drop(std::mem::replace(&mut self.pages, sync_channel(0).1));
            if worker.join().is_err() {
                return Err(Error::Internal("CloudWatch Logs reader thread panicked".into()));
            }
        }
        match self.failure.lock() {
            Ok(mut slot) => slot.take().map_or(Ok(()), Err),
            Err(_) => Err(Error::Internal("CloudWatch Logs reader state poisoned".into())),
        }
    }

    fn failed(&self) -> bool {
        self.failure.lock().map(|s| s.is_some()).unwrap_or(true)
    }
}

impl Read for LogGroupReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::sources::read_through_buffer(self, buf)
    }
}

impl BufRead for LogGroupReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.current.len() {
            match self.pages.recv() {
                Ok(page) => {
                    self.current = page;
                    self.pos = 0;
                }
                // Sender gone: the end, or a failure the caller collects with `finish`.
                Err(_) if self.failed() => return Err(io::Error::other("CloudWatch Logs read failed")),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current.len());
    }
}
