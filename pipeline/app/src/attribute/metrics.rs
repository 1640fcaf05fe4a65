//! CloudWatch metrics as an evidence source: usage the application publishes as metrics with a
//! tenant dimension (embedded metric format log lines become such metrics), read per tenant and
//! UTC day with `ListMetrics` and `GetMetricData`.
//!
//! `cloudwatch-metrics://NAMESPACE?metric=NAME&dimension=TENANT_DIMENSION&driver=DRIVER[&stat=Sum]`,
//! e.g. `cloudwatch-metrics://Curflow/App?metric=BilledGbSeconds&dimension=accountant_id&driver=lambda_gb_seconds`.
//!
//! 1. `ListMetrics` (namespace, metric name; paginated) gives every metric stream of that name
//!    (a stream is its set of dimensions, taken once);
//!    those carrying the tenant dimension are kept, the others (no tenant) are counted and skipped.
//!    Streams with other dimensions besides the tenant (a function name, an operation) all count
//!    for their tenant.
//! 2. For each UTC day of the window, `GetMetricData` (up to 500 queries per request, paginated)
//!    asks each stream for its statistic over the day (period 86,400 s, aligned to midnight UTC).
//! 3. Each tenant's day total is the sum of its streams' values. CloudWatch keeps metric values as
//!    doubles: each is taken at its shortest exact decimal text (`1.25`, not a binary expansion),
//!    then summed exactly; a value that is not finite or negative is an error naming the stream.
//!
//! Memory holds the stream list and one day's answers. Requests are counted for the summary.

use std::collections::BTreeMap;
use std::str::FromStr;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::NaiveDate;
use curflow_attribution::{Driver, DriverTotals, TenantId};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::aws::{AwsSettings, sdk_config, sdk_error};
use crate::error::{Error, Result};

/// Queries per `GetMetricData` request (the API's limit).
const QUERIES_PER_REQUEST: usize = 500;
/// One UTC day, in seconds: the statistic's period.
const DAY_SECONDS: i32 = 86_400;

pub const METRICS_SCHEME: &str = "cloudwatch-metrics://";

/// A metric with a tenant dimension, read as one usage driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricSource {
    pub namespace: String,
    pub metric: String,
    /// The dimension whose value is the tenant id.
    pub dimension: String,
    pub driver: Driver,
    /// `Sum` unless said otherwise (`SampleCount` counts data points, e.g. requests).
    pub stat: String,
}

impl FromStr for MetricSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let usage = || {
            Error::Argument(format!(
                "{s}: expected {METRICS_SCHEME}NAMESPACE?metric=NAME&dimension=TENANT_DIMENSION&driver=DRIVER[&stat=Sum]"
            ))
        };
        let rest = s.strip_prefix(METRICS_SCHEME).ok_or_else(usage)?;
        let (namespace, query) = rest.split_once('?').ok_or_else(usage)?;
        let (mut metric, mut dimension, mut driver, mut stat) = (None, None, None, "Sum".to_string());
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "metric" => metric = Some(v.into_owned()),
                "dimension" => dimension = Some(v.into_owned()),
                "driver" => {
                    driver = Some(v.parse::<Driver>().map_err(|e| Error::Argument(format!("{s}: driver: {e}")))?)
                }
                "stat" => stat = v.into_owned(),
                other => return Err(Error::Argument(format!("{s}: unknown parameter {other:?}"))),
            }
        }
        match (namespace.is_empty(), metric, dimension, driver) {
            (false, Some(metric), Some(dimension), Some(driver)) => {
                Ok(Self { namespace: namespace.to_string(), metric, dimension, driver, stat })
            }
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for MetricSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{METRICS_SCHEME}{}?metric={}", self.namespace, self.metric)
    }
}

/// What a metrics read did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsReport {
    /// Metric streams with the tenant dimension, and without it (skipped).
    pub streams: u64,
    pub streams_without_tenant: u64,
    /// Data points summed.
    pub data_points: u64,
    /// `ListMetrics` and `GetMetricData` requests made.
    pub requests: u64,
}

/// Reads `source` for the UTC days `from..=to` into driver totals (on a thread and runtime of its
/// own: the evidence readers are synchronous).
pub fn read(
    source: &MetricSource,
    from: NaiveDate,
    to: NaiveDate,
    aws: &AwsSettings,
) -> Result<(DriverTotals, MetricsReport)> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Internal(format!("tokio runtime for CloudWatch metrics: {e}")))?;
                runtime.block_on(read_async(source, from, to, aws))
            })
            .join()
            .map_err(|_| Error::Internal("the CloudWatch metrics reader thread panicked".into()))?
    })
}

async fn read_async(
    source: &MetricSource,
    from: NaiveDate,
    to: NaiveDate,
    aws: &AwsSettings,
) -> Result<(DriverTotals, MetricsReport)> {
    let client = aws_sdk_cloudwatch::Client::new(&sdk_config(aws).await);
    let mut report = MetricsReport::default();
    let streams = list_streams(&client, source, &mut report).await?;
    let mut totals = DriverTotals::new();
    let mut day = from;
    while day <= to {
        for (tenant, value) in day_totals(&client, source, &streams, day, &mut report).await? {
            totals.add(source.driver, day, &tenant, value).map_err(|e| invalid(source, e.to_string()))?;
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok((totals, report))
}

/// Every stream of the metric with its tenant (streams without the tenant dimension counted).
async fn list_streams(
    client: &aws_sdk_cloudwatch::Client,
    source: &MetricSource,
    report: &mut MetricsReport,
) -> Result<Vec<(TenantId, Metric)>> {
    let mut pages =
        client.list_metrics().namespace(&source.namespace).metric_name(&source.metric).into_paginator().send();
    let mut streams = Vec::new();
    // A stream is its set of dimensions; each is queried once even if listed twice (moto lists a
    // stream once per data point; AWS pages may repeat one across a retried request).
    let mut seen = std::collections::BTreeSet::new();
    while let Some(page) = pages.next().await {
        report.requests += 1;
        let page = page.map_err(|e| sdk_error("CloudWatch", "ListMetrics", &source.namespace, e))?;
        for metric in page.metrics() {
            let mut dimensions: Vec<(&str, &str)> =
                metric.dimensions().iter().map(|d| (d.name().unwrap_or(""), d.value().unwrap_or(""))).collect();
            dimensions.sort_unstable();
            if !seen.insert(format!("{dimensions:?}")) {
                continue;
            }
            let tenant = metric.dimensions().iter().find(|d| d.name() == Some(source.dimension.as_str()));
            match tenant.and_then(Dimension::value) {
                Some(t) => {
                    let id = TenantId::new(t.to_string()).map_err(|e| invalid(source, format!("tenant {t:?}: {e}")))?;
                    streams.push((id, metric.clone()));
                }
                None => report.streams_without_tenant += 1,
            }
        }
    }
    report.streams = streams.len() as u64;
    Ok(streams)
}

/// Each tenant's total of `day` over its streams.
async fn day_totals(
    client: &aws_sdk_cloudwatch::Client,
    source: &MetricSource,
    streams: &[(TenantId, Metric)],
    day: NaiveDate,
    report: &mut MetricsReport,
) -> Result<BTreeMap<TenantId, Decimal>> {
    let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or_default();
    let mut out: BTreeMap<TenantId, Decimal> = BTreeMap::new();
    for (batch_no, batch) in streams.chunks(QUERIES_PER_REQUEST).enumerate() {
        let queries = batch
            .iter()
            .enumerate()
            .map(|(i, (_, metric))| {
                let stat = MetricStat::builder().metric(metric.clone()).period(DAY_SECONDS).stat(&source.stat).build();
                MetricDataQuery::builder().id(format!("m{i}")).metric_stat(stat).return_data(true).build()
            })
            .collect::<Vec<_>>();
        let mut pages = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(AwsDateTime::from_secs(start))
            .end_time(AwsDateTime::from_secs(start + i64::from(DAY_SECONDS)))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            report.requests += 1;
            let page = page.map_err(|e| sdk_error("CloudWatch", "GetMetricData", &source.namespace, e))?;
            for result in page.metric_data_results() {
                let index = result.id().and_then(|id| id.strip_prefix('m')).and_then(|n| n.parse::<usize>().ok());
                let Some((tenant, _)) = index.and_then(|i| batch.get(i)) else {
                    return Err(invalid(
                        source,
                        format!("GetMetricData answered unknown query {:?} (batch {batch_no})", result.id()),
                    ));
                };
                for value in result.values() {
                    let exact = exact_value(*value).ok_or_else(|| {
                        invalid(
                            source,
                            format!("tenant {tenant} on {day}: value {value} is not a finite quantity >= 0"),
                        )
                    })?;
                    let slot = out.entry(tenant.clone()).or_default();
                    *slot = crate::money::exact_add(*slot, exact)
                        .ok_or_else(|| invalid(source, format!("tenant {tenant} on {day}: the sum overflows")))?;
                    report.data_points += 1;
                }
            }
        }
    }
    Ok(out)
}

/// A metric value (a double) as the decimal its shortest text says, `None` unless finite and >= 0.
fn exact_value(v: f64) -> Option<Decimal> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let text = format!("{v}");
    Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&format!("{v:e}"))).ok()
}

fn invalid(source: &MetricSource, reason: String) -> Error {
    Error::Evidence { path: std::path::PathBuf::from(source.to_string()), reason }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_their_defaults_and_errors_name_what_is_missing() {
        let s: MetricSource =
            "cloudwatch-metrics://Curflow/App?metric=BilledGbSeconds&dimension=accountant_id&driver=lambda_gb_seconds"
                .parse()
                .unwrap();
        assert_eq!(s.namespace, "Curflow/App");
        assert_eq!(
            (s.metric.as_str(), s.dimension.as_str(), s.stat.as_str()),
            ("BilledGbSeconds", "accountant_id", "Sum")
        );
        assert_eq!(s.driver, Driver::LambdaGbSeconds);
        let e =
            "cloudwatch-metrics://Curflow/App?metric=X&driver=lambda_gb_seconds".parse::<MetricSource>().unwrap_err();
        assert!(e.to_string().contains("dimension=TENANT_DIMENSION"), "{e}");
        let e = "cloudwatch-metrics://N?metric=X&dimension=t&driver=nope".parse::<MetricSource>().unwrap_err();
        assert!(e.to_string().contains("driver"), "{e}");
    }

    #[test]
    fn values_are_taken_at_their_shortest_decimal_text() {
        assert_eq!(exact_value(1.25), Some(Decimal::new(125, 2)));
        assert_eq!(exact_value(0.1), Some(Decimal::new(1, 1)));
        assert_eq!(exact_value(3e-7), Some(Decimal::new(3, 7)));
        assert_eq!(exact_value(-1.0), None);
        assert_eq!(exact_value(f64::NAN), None);
    }
}
