//! S3 access for discovery (AWS SDK) and data reads (`object_store`, inside DataFusion).
//!
//! Both clients are configured from one source: the standard AWS chain (environment, profile,
//! SSO, web identity, ECS/IMDS, the Lambda role) plus [`AwsSettings`] (`aws-endpoint-url`,
//! `aws-region`). `object_store` gets its credentials from the SDK's provider through a small
//! cached bridge, so a profile or assumed role works for data reads exactly as for listing.
//! A custom endpoint (a local S3-compatible server) switches both clients to path-style requests
//! and allows plain `http://`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::{CredentialProvider, ObjectStore};

use crate::error::{Error, Result};
use curflow_aws::{AwsSettings, sdk_config, sdk_error};

/// What a listing or HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// `Last-Modified` (S3 keeps whole seconds).
    pub modified: DateTime<Utc>,
}

/// S3 clients for one configuration. Cheap to clone; object stores are built once per bucket.
#[derive(Clone)]
pub struct S3Access {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    region: String,
    endpoint: Option<String>,
    credentials: Option<Arc<SdkCredentialBridge>>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl fmt::Debug for S3Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Access")
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Access {
    /// Loads the AWS configuration (standard chain + overrides) and builds the S3 client.
    pub async fn new(settings: &AwsSettings) -> Result<Self> {
        let conf = sdk_config(settings).await;
        let endpoint = settings.endpoint_url.clone().or_else(|| conf.endpoint_url().map(str::to_string));
        let region = conf.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_string());
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf).force_path_style(endpoint.is_some()).build(),
        );
        let credentials = conf.credentials_provider().map(|p| Arc::new(SdkCredentialBridge::new(p)));
        Ok(Self {
            inner: Arc::new(Inner { client, region, endpoint, credentials, stores: Mutex::new(HashMap::new()) }),
        })
    }

    /// The SDK client (listing, HEAD, manifest GETs).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.inner.client
    }

    /// The `object_store` of a bucket (built on first use), for DataFusion and footer reads.
    pub fn object_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut stores = self.inner.stores.lock().map_err(|_| Error::Internal("S3 store cache poisoned".into()))?;
        if let Some(store) = stores.get(bucket) {
            return Ok(Arc::clone(store));
        }
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_region(&self.inner.region);
        if let Some(endpoint) = &self.inner.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(true).with_virtual_hosted_style_request(false);
        }
        if let Some(credentials) = &self.inner.credentials {
            builder = builder.with_credentials(Arc::clone(credentials) as _);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(|e| {
            Error::Aws(curflow_aws::AwsError::new(
                "S3",
                "configure",
                format!("s3://{bucket}"),
                e.to_string(),
                curflow_aws::AwsErrorKind::Rejected,
            ))
        })?);
        stores.insert(bucket.to_string(), Arc::clone(&store));
        Ok(store)
    }

    /// Every object under `prefix` (recursive), in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut pages = self.inner.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("S3", "ListObjectsV2", &format!("s3://{bucket}/{prefix}"), e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: object.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified: object.last_modified().map(to_chrono).unwrap_or_default(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// HEAD of an object; `None` when it does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        match self.inner.client.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: out.content_length().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                modified: out.last_modified().map(to_chrono).unwrap_or_default(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) || status_is_404(&e) => Ok(None),
            Err(e) => Err(sdk_error("S3", "HeadObject", &format!("s3://{bucket}/{key}"), e).into()),
        }
    }

    /// Copies an object to the local file `to`, chunk by chunk (memory holds one chunk).
    pub async fn download(&self, bucket: &str, key: &str, to: &std::path::Path) -> Result<u64> {
        let resource = format!("s3://{bucket}/{key}");
        let out = self
            .inner
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("S3", "GetObject", &resource, e))?;
        let mut body = out.body;
        let mut file = tokio::fs::File::create(to).await.map_err(|e| Error::io(to, e))?;
        let mut bytes = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            Error::Aws(curflow_aws::AwsError::new(
                "S3",
                "GetObject",
                resource.clone(),
                e.to_string(),
                curflow_aws::AwsErrorKind::Transient,
            ))
        })? {
            bytes += chunk.len() as u64;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await.map_err(|e| Error::io(to, e))?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(|e| Error::io(to, e))?;
        Ok(bytes)
    }

    /// GETs a small text object (a manifest) with its metadata. A missing object is a
    /// non-retryable error naming it.
    pub async fn get_text(&self, bucket: &str, key: &str) -> Result<(String, ObjectInfo)> {
        let resource = format!("s3://{bucket}/{key}");
        let out = match self.inner.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || status_is_404(&e) => {
                return Err(Error::Aws(curflow_aws::AwsError::new(
                    "S3",
                    "GetObject",
                    resource,
                    "the object does not exist",
                    curflow_aws::AwsErrorKind::Rejected,
                )));
            }
            Err(e) => return Err(sdk_error("S3", "GetObject", &resource, e).into()),
        };
        let info = ObjectInfo {
            key: key.to_string(),
            size: out.content_length().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            modified: out.last_modified().map(to_chrono).unwrap_or_default(),
        };
        let bytes = out.body.collect().await.map_err(|e| {
            Error::Aws(curflow_aws::AwsError::new(
                "S3",
                "GetObject",
                resource.clone(),
                format!("reading the body failed: {e}"),
                curflow_aws::AwsErrorKind::Transient,
            ))
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| Error::BadManifest {
            path: super::Location::s3(bucket, key).to_path_buf(),
            reason: "not UTF-8 text".into(),
        })?;
        Ok((text, info))
    }
}

fn status_is_404<E>(err: &aws_sdk_s3::error::SdkError<E>) -> bool {
    err.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// Converts an `object_store` error into the crate error. Throttling, 5xx and connection errors
/// (`Generic`, after object_store's own retries) and a vanished object (an overwrite in progress)
/// are retryable; permission and credential failures are environment errors; invalid paths are
/// rejected.
pub fn object_store_error(operation: &str, resource: &str, e: &object_store::Error) -> Error {
    use curflow_aws::AwsErrorKind;
    let kind = match e {
        // Permission and credential failures are the environment's: an operator must grant or fix them.
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            AwsErrorKind::Denied
        }
        object_store::Error::InvalidPath { .. }
        | object_store::Error::NotSupported { .. }
        | object_store::Error::NotImplemented { .. }
        | object_store::Error::UnknownConfigurationKey { .. } => AwsErrorKind::Rejected,
        _ => AwsErrorKind::Transient,
    };
    Error::Aws(curflow_aws::AwsError::new("S3", operation, resource.to_string(), e.to_string(), kind))
}

/// Hands the SDK's credentials (standard chain) to `object_store`, caching them until five
/// minutes before they expire so that data reads do not call STS/IMDS per request.
struct SdkCredentialBridge {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl fmt::Debug for SdkCredentialBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SdkCredentialBridge")
    }
}

const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

impl SdkCredentialBridge {
    fn new(provider: SharedCredentialsProvider) -> Self {
        Self { provider, cached: Mutex::new(None) }
    }

    fn fresh(&self) -> Option<Arc<AwsCredential>> {
        let cached = self.cached.lock().ok()?;
        let (credential, expiry) = cached.as_ref()?;
        match expiry {
            Some(t) if t.duration_since(SystemTime::now()).unwrap_or_default() < REFRESH_BEFORE_EXPIRY => None,
            _ => Some(Arc::clone(credential)),
        }
    }

    async fn load(&self) -> object_store::Result<Arc<AwsCredential>> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let creds = self.provider.provide_credentials().await.map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: format!("no AWS credentials from the standard chain: {e}").into(),
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Arc::clone(&credential), creds.expiry()));
        }
        Ok(credential)
    }
}

// `CredentialProvider` is declared with `#[async_trait]`; this is the expanded form of
// `async fn get_credential(&self) -> Result<Arc<AwsCredential>>`.
impl CredentialProvider for SdkCredentialBridge {
    type Credential = AwsCredential;

    fn get_credential<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = object_store::Result<Arc<AwsCredential>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.load())
    }
}
