//! AWS SDK configuration and error classification shared by every AWS-facing part (CloudWatch Logs
//! evidence, S3, DynamoDB, SNS).
//!
//! Credentials, region and endpoint come from the standard AWS chain (environment, profile, IMDS,
//! Lambda role); [`AwsSettings`] only overrides the endpoint (S3/DynamoDB-compatible servers such as
//! `moto_server` in tests) and the region.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use aws_smithy_runtime_api::client::result::SdkError;
use curflow_model::ErrorClass;

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

/// What kind of failure an AWS call had; decides the [`ErrorClass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttling, 5xx, timeouts, connection failures, an object still being written: retry.
    Transient,
    /// The caller's identity or permissions are wrong (access denied, unknown or expired
    /// credentials): an operator must act, so it is an environment error, never "bad input".
    Denied,
    /// AWS refused the request for another reason (a missing object, a validation error).
    Rejected,
}

/// A failed AWS call: which service, operation and resource, and why.
#[derive(Debug, thiserror::Error)]
#[error("AWS {service} {operation} on {resource}: {reason}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: String,
    pub resource: String,
    pub reason: String,
    pub kind: AwsErrorKind,
    /// The SDK's own error, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AwsError {
    /// An error without an SDK cause (a condition curflow detected itself).
    pub fn new(
        service: &'static str,
        operation: impl Into<String>,
        resource: impl Into<String>,
        reason: impl Into<String>,
        kind: AwsErrorKind,
    ) -> Self {
        AwsError {
            service,
            operation: operation.into(),
            resource: resource.into(),
            reason: reason.into(),
            kind,
            source: None,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == AwsErrorKind::Transient
    }

    /// Transient and permission failures are the environment's; the rest is bad input.
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            AwsErrorKind::Transient | AwsErrorKind::Denied => ErrorClass::External,
            AwsErrorKind::Rejected => ErrorClass::User,
        }
    }
}

/// Error codes that mean the caller's identity or permissions are wrong.
const DENIED_CODES: [&str; 10] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
];

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
pub fn is_retryable<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => ctx.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)),
        _ => false,
    }
}

/// Converts an SDK error into an [`AwsError`], naming the service, operation and resource.
pub fn sdk_error<E, R>(service: &'static str, operation: &str, resource: &str, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = if is_retryable(&err) {
        AwsErrorKind::Transient
    } else if err.code().is_some_and(|c| DENIED_CODES.contains(&c)) {
        AwsErrorKind::Denied
    } else {
        AwsErrorKind::Rejected
    };
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let reason = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
    };
    AwsError { source: Some(Box::new(err)), ..AwsError::new(service, operation, resource, reason, kind) }
}
