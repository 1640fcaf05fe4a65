//! One typed configuration: defaults, then a TOML file, then `CURFLOW_*` environment variables,
//! then command-line flags (each later source wins). Unknown keys are rejected.
//!
//! | key | env | default | meaning |
//! |---|---|---|---|
//! | `store` | `CURFLOW_STORE` | `curflow.sqlite` | SQLite file of the embedded store |
//! | `tag-key` | `CURFLOW_TAG_KEY` | `accountant_id` | cost-allocation tag naming the tenant |
//! | `memory-limit-mb` | `CURFLOW_MEMORY_LIMIT_MB` | `1024` | query-engine memory pool (MiB); aggregation spills beyond it |
//! | `target-partitions` | `CURFLOW_TARGET_PARTITIONS` | CPU cores | parallel partitions per file |
//! | `file-concurrency` | `CURFLOW_FILE_CONCURRENCY` | `2` | files scanned at once |
//! | `batch-rows` | `CURFLOW_BATCH_ROWS` | `8192` | rows per decoded batch (1024..=65536); smaller batches stay in the CPU caches |
//! | `spill-dir` | `CURFLOW_SPILL_DIR` | OS temp dir | where aggregation state beyond the memory pool spills (Lambda: under `/tmp`) |
//! | `spill-max-mb` | `CURFLOW_SPILL_MAX_MB` | `2048` | cap on spill files together (MiB); beyond it the scan fails (retryable) instead of filling the disk. Lambda: keep it below the function's ephemeral storage (512 MiB by default) |
//! | `evidence-max-malformed-pct` | `CURFLOW_EVIDENCE_MAX_MALFORMED_PCT` | `1` | malformed evidence lines tolerated per source, % |
//! | `aws-endpoint-url` | `CURFLOW_AWS_ENDPOINT_URL` | AWS chain | endpoint of every AWS service (e.g. a local test server) |
//! | `aws-region` | `CURFLOW_AWS_REGION` | AWS chain | region of every AWS service |
//! | `resource-types` | `CURFLOW_RESOURCE_TYPES` | shipped example | app resource type → CUR service/usage type map (TOML) |
//! | `variance-threshold-pct` | `CURFLOW_VARIANCE_THRESHOLD_PCT` | `10` | flag a variance above this % of the estimate ... |
//! | `variance-min-amount` | `CURFLOW_VARIANCE_MIN_AMOUNT` | `1.00` | ... and above this amount |
//! | `alert-webhook-url` | `CURFLOW_ALERT_WEBHOOK_URL` | none | budget alerts are POSTed here as JSON |
//! | `alert-sns-topic-arn` | `CURFLOW_ALERT_TOPIC_ARN` | none | budget alerts are published to this SNS topic |
//!
//! AWS credentials always come from the standard chain (environment, profile, instance or Lambda role).

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::aws::AwsSettings;

use crate::error::{Error, Result};
use crate::process::ProcessOptions;
use crate::scan::EngineOptions;

/// curflow's settings. See the module docs for keys, environment variables and defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// SQLite file of the embedded store (created on first use).
    pub store: PathBuf,
    /// Cost-allocation tag key naming the tenant, as activated in AWS (`user:` prefix omitted).
    pub tag_key: String,
    /// Memory pool of the query engine, MiB.
    pub memory_limit_mb: usize,
    /// Parallel partitions per file; `None` = number of CPU cores.
    pub target_partitions: Option<usize>,
    /// Files scanned concurrently.
    pub file_concurrency: usize,
    /// Rows per decoded Arrow batch.
    pub batch_rows: usize,
    /// Spill directory of the query engine; `None` = the OS temp dir.
    pub spill_dir: Option<PathBuf>,
    /// Cap on the engine's spill files together, MiB.
    pub spill_max_mb: u64,
    /// Malformed usage-evidence lines tolerated per source, percent (beyond it the run fails).
    pub evidence_max_malformed_pct: Decimal,
    /// Overrides of the AWS endpoint (S3/DynamoDB-compatible servers) and region.
    pub aws_endpoint_url: Option<String>,
    pub aws_region: Option<String>,
    /// App resource type → CUR lines mapping (TOML); default: the shipped example.
    pub resource_types: Option<PathBuf>,
    pub variance_threshold_pct: Decimal,
    pub variance_min_amount: Decimal,
    pub alert_webhook_url: Option<String>,
    pub alert_sns_topic_arn: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: PathBuf::from("curflow.sqlite"),
            tag_key: "accountant_id".into(),
            memory_limit_mb: 1024,
            target_partitions: None,
            file_concurrency: 2,
            batch_rows: EngineOptions::default().batch_size,
            spill_dir: None,
            spill_max_mb: 2048,
            evidence_max_malformed_pct: Decimal::ONE,
            aws_endpoint_url: None,
            aws_region: None,
            resource_types: None,
            variance_threshold_pct: Decimal::TEN,
            variance_min_amount: Decimal::ONE,
            alert_webhook_url: None,
            alert_sns_topic_arn: None,
        }
    }
}

impl Config {
    /// Loads `file` (or `$CURFLOW_CONFIG`, or `./curflow.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let env_file = std::env::var_os("CURFLOW_CONFIG").map(PathBuf::from);
        let default_file = Path::new("curflow.toml");
        let chosen = file
            .map(Path::to_path_buf)
            .or(env_file)
            .or_else(|| default_file.is_file().then(|| default_file.to_path_buf()));
        let mut config = match chosen {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Config { source_name: path.display().to_string(), reason: e.to_string() })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `CURFLOW_*` overrides read through `get` (a seam for tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn number<T: std::str::FromStr>(name: &str, value: String) -> Result<T> {
            value.trim().parse().map_err(|_| Error::Config {
                source_name: name.to_string(),
                reason: format!("{value:?} is not a positive whole number"),
            })
        }
        if let Some(v) = get("CURFLOW_STORE") {
            self.store = PathBuf::from(v);
        }
        if let Some(v) = get("CURFLOW_TAG_KEY") {
            self.tag_key = v;
        }
        if let Some(v) = get("CURFLOW_MEMORY_LIMIT_MB") {
            self.memory_limit_mb = number("CURFLOW_MEMORY_LIMIT_MB", v)?;
        }
        if let Some(v) = get("CURFLOW_TARGET_PARTITIONS") {
            self.target_partitions = Some(number("CURFLOW_TARGET_PARTITIONS", v)?);
        }
        if let Some(v) = get("CURFLOW_FILE_CONCURRENCY") {
            self.file_concurrency = number("CURFLOW_FILE_CONCURRENCY", v)?;
        }
        if let Some(v) = get("CURFLOW_BATCH_ROWS") {
            self.batch_rows = number("CURFLOW_BATCH_ROWS", v)?;
        }
        if let Some(v) = get("CURFLOW_EVIDENCE_MAX_MALFORMED_PCT") {
            self.evidence_max_malformed_pct = v.trim().parse().map_err(|_| Error::Config {
                source_name: "CURFLOW_EVIDENCE_MAX_MALFORMED_PCT".into(),
                reason: format!("{v:?} is not a percentage like 1 or 0.5"),
            })?;
        }
        if let Some(v) = get("CURFLOW_SPILL_DIR") {
            self.spill_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CURFLOW_SPILL_MAX_MB") {
            self.spill_max_mb = number("CURFLOW_SPILL_MAX_MB", v)?;
        }
        if let Some(v) = get("CURFLOW_AWS_ENDPOINT_URL") {
            self.aws_endpoint_url = Some(v);
        }
        if let Some(v) = get("CURFLOW_AWS_REGION") {
            self.aws_region = Some(v);
        }
        if let Some(v) = get("CURFLOW_RESOURCE_TYPES") {
            self.resource_types = Some(PathBuf::from(v));
        }
        let decimal = |name: &str, v: String| -> Result<Decimal> {
            v.trim().parse().map_err(|_| Error::Config {
                source_name: name.into(),
                reason: format!("{v:?} is not a decimal number"),
            })
        };
        if let Some(v) = get("CURFLOW_VARIANCE_THRESHOLD_PCT") {
            self.variance_threshold_pct = decimal("CURFLOW_VARIANCE_THRESHOLD_PCT", v)?;
        }
        if let Some(v) = get("CURFLOW_VARIANCE_MIN_AMOUNT") {
            self.variance_min_amount = decimal("CURFLOW_VARIANCE_MIN_AMOUNT", v)?;
        }
        if let Some(v) = get("CURFLOW_ALERT_WEBHOOK_URL") {
            self.alert_webhook_url = Some(v);
        }
        if let Some(v) = get("CURFLOW_ALERT_TOPIC_ARN") {
            self.alert_sns_topic_arn = Some(v);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::Config { source_name: "configuration".into(), reason: reason.into() });
        if self.tag_key.trim().is_empty() || self.tag_key.starts_with("user:") {
            return bad("tag-key must be the bare key, e.g. accountant_id (without `user:`)");
        }
        if self.memory_limit_mb < 64 {
            return bad("memory-limit-mb must be at least 64");
        }
        if self.file_concurrency == 0 || self.target_partitions == Some(0) {
            return bad("file-concurrency and target-partitions must be at least 1");
        }
        if !(1024..=65536).contains(&self.batch_rows) {
            return bad("batch-rows must be between 1024 and 65536");
        }
        if self.evidence_max_malformed_pct.is_sign_negative() || self.evidence_max_malformed_pct > Decimal::ONE_HUNDRED
        {
            return bad("evidence-max-malformed-pct must be between 0 and 100");
        }
        Ok(())
    }

    /// How estimates are compared with actuals.
    pub fn reconcile_options(&self) -> Result<crate::reconciliation::ReconcileOptions> {
        crate::reconciliation::ReconcileOptions::load(
            self.resource_types.as_deref(),
            curflow_reconcile::Thresholds {
                threshold_pct: self.variance_threshold_pct,
                min_variance: self.variance_min_amount,
            },
        )
    }

    /// Where budget alerts go.
    pub fn alert_channels(&self) -> crate::alerts::AlertChannels {
        crate::alerts::AlertChannels {
            webhook_url: self.alert_webhook_url.clone(),
            sns_topic_arn: self.alert_sns_topic_arn.clone(),
            aws: self.aws(),
        }
    }

    /// The AWS overrides of this configuration.
    pub fn aws(&self) -> AwsSettings {
        AwsSettings { endpoint_url: self.aws_endpoint_url.clone(), region: self.aws_region.clone() }
    }

    /// Where and how much the query engine may spill.
    pub fn spill_options(&self) -> crate::scan::SpillOptions {
        crate::scan::SpillOptions { dir: self.spill_dir.clone(), max_bytes: self.spill_max_mb.saturating_mul(1 << 20) }
    }

    pub fn process_options(&self, force: bool) -> ProcessOptions {
        let defaults = EngineOptions::default();
        ProcessOptions {
            tag_key: self.tag_key.clone(),
            force,
            engine: EngineOptions {
                target_partitions: self.target_partitions.unwrap_or(defaults.target_partitions),
                memory_limit_bytes: self.memory_limit_mb.saturating_mul(1 << 20),
                batch_size: self.batch_rows,
            },
            file_concurrency: self.file_concurrency,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults_and_unknown_keys_fail() {
        let mut c: Config = toml::from_str("store = \"x.sqlite\"\ntag-key = \"tenant\"").unwrap();
        assert_eq!(c.memory_limit_mb, 1024);
        c.apply_env(|k| (k == "CURFLOW_TAG_KEY").then(|| "accountant_id".to_string())).unwrap();
        assert_eq!((c.store.to_str().unwrap(), c.tag_key.as_str()), ("x.sqlite", "accountant_id"));
        assert!(toml::from_str::<Config>("stor = 1").is_err());
        let err = c.apply_env(|k| (k == "CURFLOW_MEMORY_LIMIT_MB").then(|| "lots".to_string())).unwrap_err();
        assert!(err.to_string().contains("CURFLOW_MEMORY_LIMIT_MB"));
        c.tag_key = "user:accountant_id".into();
        assert!(c.validate().is_err());
    }
}
