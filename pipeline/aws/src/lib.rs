//! AWS SDK configuration and error classification shared by every AWS-facing part (CloudWatch Logs
//! evidence, S3, DynamoDB, SNS).
//!
//! Credentials, region and endpoint come from the standard AWS chain (environment, profile, IMDS,
//! Lambda role); [`AwsSettings`] only overrides the endpoint (S3/DynamoDB-compatible servers such as
//! `moto_server` in tests) and the region.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Overrides of the standard AWS configuration chain (config keys `aws-endpoint-url`, `aws-region`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsSettings {
    /// Custom endpoint for every AWS service, e.g. `http://127.0.0.1:5555` for a local server.
    pub endpoint_url: Option<String>,
    /// Region; default from the chain (`AWS_REGION`, profile, ...).
    pub region: Option<String>,
}

/// Loads the SDK configuration: the standard chain plus the overrides.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Error codes AWS documents as transient: retry with backoff.
const RETRYABLE_CODES: [&str; 12] = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalFailure",
    "SlowDown",
];

/// Whether an SDK error is transient (throttling, 5xx, timeouts, connection failures).
pub fn is_retryable<E: ProvideErrorMetadata, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => ctx.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)),
        _ => false,
    }
}

/// Converts an SDK error into the crate error, naming the service, operation and resource.
pub fn sdk_error<E, R>(
    service: &'static str,
    operation: &str,
    resource: &str,
    err: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let retryable = is_retryable(&err);
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let reason = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
    };
    Error::Aws { service, operation: operation.to_string(), resource: resource.to_string(), reason, retryable }
}
