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
use aws_smithy_runtime_api::http::Response as HttpResponse;
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
    /// An error response without a readable error code (a body the SDK could not parse): the
    /// endpoint, a proxy or the permissions are wrong, which an operator must see.
    Unrecognized,
    /// AWS refused the request for another reason (a missing object, a validation error).
    Rejected,
}

/// A failed AWS call: which service, operation and resource, and why. When permissions are the
/// cause, the message also names the IAM action to grant (see [`iam_action`]).
#[derive(Debug, thiserror::Error)]
#[error("AWS {service} {operation} on {resource}: {reason}{}", self.grant_hint())]
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

    /// The IAM action this call needs, e.g. `dynamodb:Query`.
    pub fn iam_action(&self) -> String {
        iam_action(self.service, &self.operation)
    }

    /// For a permission failure: which permission to grant on which resource.
    fn grant_hint(&self) -> String {
        match self.kind {
            AwsErrorKind::Denied => format!(
                " (environment: the credentials curflow runs with lack permission {} on {}, or are invalid; \
                 grant it to that role or user; for the deployed function see infra-cdk/lib/processing.ts)",
                self.iam_action(),
                self.resource
            ),
            _ => String::new(),
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == AwsErrorKind::Transient
    }

    /// Transient and permission failures are the environment's; the rest is bad input.
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            AwsErrorKind::Transient | AwsErrorKind::Denied | AwsErrorKind::Unrecognized => ErrorClass::External,
            AwsErrorKind::Rejected => ErrorClass::User,
        }
    }
}

/// The IAM action an SDK operation is authorized as: the service's action prefix and, for most
/// operations, the operation's name (S3's listing and HEAD are the documented exceptions).
pub fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service {
        "S3" => "s3",
        "DynamoDB" => "dynamodb",
        "SNS" => "sns",
        "CloudWatch Logs" => "logs",
        "CloudWatch" => "cloudwatch",
        "STS" => "sts",
        "Cost Explorer" => "ce",
        other => return format!("{other}:{operation}"),
    };
    let action = match (prefix, operation) {
        ("s3", "ListObjectsV2" | "ListObjects") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        _ => operation,
    };
    format!("{prefix}:{action}")
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
///
/// Classification: throttling/5xx/timeouts are transient; denied codes, and any 401/403, are
/// permission failures; an error response without a recognizable error code (a body the SDK
/// could not parse, e.g. an XML `AccessDenied` where JSON was expected, or a proxy's HTML page) is
/// the environment's too, never "bad input": only a well-formed refusal of the request itself is.
pub fn sdk_error<E>(service: &'static str, operation: &str, resource: &str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = if is_retryable(&err) {
        AwsErrorKind::Transient
    } else if err.code().is_some_and(|c| DENIED_CODES.contains(&c)) || matches!(status, Some(401 | 403)) {
        AwsErrorKind::Denied
    } else if matches!(err, SdkError::ServiceError(_)) && err.code().is_none() {
        AwsErrorKind::Unrecognized
    } else {
        AwsErrorKind::Rejected
    };
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let reason = match (code, message, status) {
        (Some(c), Some(m), _) => format!("{c}: {m}"),
        (Some(c), None, _) => c,
        // No readable error code: say what came back, without the SDK's full debug dump.
        (None, _, Some(status)) => format!("HTTP {status} with an error response the SDK could not read"),
        _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
    };
    AwsError { source: Some(Box::new(err)), ..AwsError::new(service, operation, resource, reason, kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_actions_of_sdk_operations() {
        assert_eq!(iam_action("DynamoDB", "DescribeTable"), "dynamodb:DescribeTable");
        assert_eq!(iam_action("S3", "ListObjectsV2"), "s3:ListBucket");
        assert_eq!(iam_action("S3", "HeadObject"), "s3:GetObject");
        assert_eq!(iam_action("SNS", "Publish"), "sns:Publish");
        assert_eq!(iam_action("CloudWatch Logs", "FilterLogEvents"), "logs:FilterLogEvents");
        assert_eq!(iam_action("CloudWatch", "GetMetricData"), "cloudwatch:GetMetricData");
    }

    #[test]
    fn a_permission_failure_names_the_action_to_grant_and_is_the_environments() {
        let e =
            AwsError::new("DynamoDB", "Query", "dynamodb://usage", "AccessDeniedException: no", AwsErrorKind::Denied);
        assert_eq!(e.class(), ErrorClass::External);
        let text = e.to_string();
        assert!(text.contains("lack permission dynamodb:Query on dynamodb://usage"), "{text}");
        let unreadable = AwsError::new("DynamoDB", "Query", "t", "unexpected token '<'", AwsErrorKind::Unrecognized);
        assert_eq!(unreadable.class(), ErrorClass::External);
        assert!(!unreadable.is_retryable());
        let rejected = AwsError::new("S3", "GetObject", "s3://b/k", "NoSuchKey", AwsErrorKind::Rejected);
        assert_eq!(rejected.class(), ErrorClass::User);
        assert!(!rejected.to_string().contains("permission"));
    }
}
