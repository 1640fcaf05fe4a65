//! One typed configuration. Every setting is declared once, in [`SETTINGS`] (key, type, default,
//! unit, range, meaning); the TOML file, the environment variables, `curflow config --doc` and the
//! README's table are all read from that declaration.
//!
//! Sources, each later one winning: the declared defaults, a TOML file (`--config FILE`,
//! `$CURFLOW_CONFIG`, or `./curflow.toml` if present), `CURFLOW_*` environment variables, then
//! command-line flags. Unknown keys are rejected.
//!
//! The environment variable of a key is always `CURFLOW_` + the key in upper snake case
//! (`memory-limit-mb` → `CURFLOW_MEMORY_LIMIT_MB`). A variable that was renamed stays readable
//! under its old name (`Setting::old_env`), with a deprecation warning, until deployments have
//! moved to the new one. An empty variable unsets an optional setting.
//!
//! Secret settings (the webhook URL) never appear in logs, error messages, `Debug` output or
//! `curflow config`.
//!
//! AWS credentials always come from the standard chain (environment, profile, instance or Lambda role).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::aws::AwsSettings;
use crate::error::Result;
use crate::process::ProcessOptions;
use crate::scan::EngineOptions;

/// curflow's settings; see [`SETTINGS`] (or `curflow config --doc`) for keys, types and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// SQLite file of the embedded store (created on first use), or `dynamodb://TABLE`.
    pub store: PathBuf,
    /// Cost-allocation tag key naming the tenant, as activated in AWS (`user:` prefix omitted).
    pub tag_key: String,
    /// Memory pool of the query engine, MiB.
    pub memory_limit_mb: usize,
    /// Parallel partitions per file; `None` = number of CPU cores.
    pub target_partitions: Option<usize>,
    /// Files scanned concurrently; `None` = [`crate::process::ProcessOptions::files_at_once`]'s
    /// default (2, or one more than `target-partitions` for gzip CSV).
    pub file_concurrency: Option<usize>,
    /// Rows per decoded Arrow batch.
    pub batch_rows: usize,
    /// Spill directory of the query engine; `None` = the OS temp dir.
    pub spill_dir: Option<PathBuf>,
    /// Cap on the engine's spill files together, MiB.
    pub spill_max_mb: u64,
    /// Malformed usage-evidence lines tolerated per source, percent (beyond it the run fails).
    pub evidence_max_malformed_pct: Decimal,
    /// Endpoint of every AWS service (S3/DynamoDB-compatible servers); `None` = the AWS chain.
    pub aws_endpoint_url: Option<String>,
    /// Region of every AWS service; `None` = the AWS chain.
    pub aws_region: Option<String>,
    /// App resource type → CUR lines mapping (TOML); `None` = the shipped example.
    pub resource_types: Option<PathBuf>,
    /// A variance is flagged above this percentage of the estimate ...
    pub variance_threshold_pct: Decimal,
    /// ... and above this amount.
    pub variance_min_amount: Decimal,
    /// ISO 4217 code of the app's estimates; `None` = the month's billing currency.
    pub estimates_currency: Option<String>,
    /// Budget alerts are POSTed here as JSON. A secret (the URL is the credential).
    pub alert_webhook_url: Option<String>,
    /// Budget alerts are published to this SNS topic.
    pub alert_sns_topic_arn: Option<String>,
    /// AWS accounts connected for Cost Explorer (`[[accounts]]`).
    pub accounts: Vec<Account>,
    /// Cost Explorer requests per second at most (token bucket; every page costs $0.01).
    pub ce_requests_per_second: Decimal,
    /// Cost Explorer requests one `ce` run may make, over all accounts.
    pub ce_request_budget: u64,
    /// A manual `ce sync` of an account is refused this many minutes after its last attempt.
    pub ce_manual_sync_interval_minutes: u64,
    /// Usage-evidence sources of the usage ledger (`[[evidence]]`).
    pub evidence: Vec<EvidenceEntry>,
    /// Days before yesterday that `usage ingest` reads again (logs arrive late).
    pub usage_restate_days: u64,
    /// Attribution rules (TOML); `None` = the shipped default rules.
    pub attribution_rules: Option<PathBuf>,
    /// Resource id/ARN glob → tenant assignments.
    pub assignments: Option<PathBuf>,
    /// S3 key prefix → tenant map (TOML), for S3 Inventory and access-log evidence.
    pub s3_prefixes: Option<PathBuf>,
    /// Agent runtime session → tenant map (CSV), for agent usage records.
    pub agent_sessions: Option<PathBuf>,
}

/// A usage-evidence source of the usage ledger: `curflow usage ingest` reads it a UTC day at a
/// time into the ledger under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceEntry {
    /// The ledger's name of the source (letters, digits, `-`, `_`): changing it starts a new
    /// series of days.
    pub name: String,
    /// Where it is read, as `--evidence` takes it: a local file or directory (classified by
    /// content) or `cloudwatch://<log-group>[?filter=…&stream-prefix=…]`.
    pub location: String,
}

/// An AWS account connected for Cost Explorer. curflow holds no key of it: each run assumes
/// `role_arn` with `external_id` (the confused-deputy guard of the role's trust policy) and uses
/// the temporary credentials only in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Short name used by `--account` and in messages.
    pub name: String,
    /// The 12-digit account id.
    pub account_id: String,
    /// The role curflow assumes in that account.
    pub role_arn: String,
    /// The external id the role's trust policy requires. Not a credential, but not shown either:
    /// it is the one value a third party would need to misuse the role.
    pub external_id: String,
    /// Region of the STS and Cost Explorer calls (Cost Explorer itself lives in us-east-1).
    pub region: String,
    /// A disabled account is kept in the configuration and skipped by syncs.
    pub enabled: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("role_arn", &self.role_arn)
            .field("external_id", &"<redacted>")
            .field("region", &self.region)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Every setting, in the order of the README's table.
pub const SETTINGS: &[Setting] = &[
    Setting::new("store", field!(store), "SQLite file of the embedded store, or `dynamodb://TABLE`")
        .default("curflow.sqlite"),
    Setting::new("tag-key", field!(tag_key), "cost-allocation tag naming the tenant (without `user:`)")
        .default("accountant_id"),
    Setting::new(
        "memory-limit-mb",
        field!(memory_limit_mb),
        "query-engine memory, in two halves: one for the Parquet fast path's group tables (a file whose tables \
         outgrow it is scanned again by the generic plan) and the delivery's cost lines (a quarter of the limit \
         each; lines beyond it are written to spill-dir as sorted runs), one for the generic plan, whose \
         aggregation spills to spill-dir beyond it. Parquet row groups being read take up to a quarter more \
         (at least one row group): files and partitions wait for room",
    )
        .default("1024")
        .unit("MiB")
        .min(64),
    Setting::new("target-partitions", field!(target_partitions), "parallel partitions per file (row groups)")
        .unset("CPU cores")
        .min(1),
    Setting::new(
        "file-concurrency",
        field!(file_concurrency),
        "files scanned at once. A gzip stream cannot be split, so a gzip CSV file is parsed on one core: unset, a \
         delivery with gzip CSV files scans one more file than target-partitions at once, so that every core stays \
         busy while the last files finish, and 2 otherwise (each Parquet or plain CSV file is split across \
         target-partitions cores already)",
    )
        .unset("2; gzip CSV: target-partitions + 1")
        .min(1),
    Setting::new("batch-rows", field!(batch_rows), "rows per decoded batch; smaller batches stay in the CPU caches")
        .default("8192")
        .min(1024)
        .max(65536),
    Setting::new("spill-dir", field!(spill_dir), "where the engine spills when the memory pool is full")
        .unset("system temp dir"),
    Setting::new(
        "spill-max-mb",
        field!(spill_max_mb),
        "cap on spill files together; beyond it the scan fails (retryable). Lambda: keep it below the \
         function's ephemeral storage",
    )
    .default("2048")
    .unit("MiB"),
    Setting::new(
        "evidence-max-malformed-pct",
        field!(evidence_max_malformed_pct),
        "malformed usage-evidence lines tolerated per source; beyond it the run fails",
    )
    .default("1")
    .unit("%")
    .min(0)
    .max(100),
    Setting::new(
        "aws-endpoint-url",
        field!(aws_endpoint_url),
        "endpoint of every AWS service (S3/DynamoDB-compatible servers, e.g. a local test server)",
    )
    .unset("AWS chain"),
    Setting::new("aws-region", field!(aws_region), "region of every AWS service").unset("AWS chain"),
    Setting::new(
        "resource-types",
        field!(resource_types),
        "app `resource_type` → CUR service/usage type mapping (TOML)",
    )
    .unset("shipped example"),
    Setting::new(
        "variance-threshold-pct",
        field!(variance_threshold_pct),
        "flag a variance above this share of the estimate …",
    )
    .default("10")
    .unit("%"),
    Setting::new("variance-min-amount", field!(variance_min_amount), "… and above this amount")
        .default("1.00")
        .unit("billing currency"),
    Setting::new(
        "estimates-currency",
        field!(estimates_currency),
        "currency of the app's estimates (ISO 4217); actual cost in other currencies is listed, never compared",
    )
    .unset("the month's billing currency"),
    Setting::new("alert-webhook-url", field!(alert_webhook_url), "budget alerts are POSTed here as JSON")
        .unset("none")
        .secret(),
    // Read as CURFLOW_ALERT_TOPIC_ARN until the rename: deployed stacks set that name, and a binary
    // updated before its stack must not silently stop publishing alerts.
    Setting::new("alert-sns-topic-arn", field!(alert_sns_topic_arn), "budget alerts are published to this SNS topic")
        .unset("none")
        .old_env(&["CURFLOW_ALERT_TOPIC_ARN"]),
    Setting::new(
        "accounts",
        field!(accounts),
        "AWS accounts connected for Cost Explorer, `[[accounts]]` tables: `name`, `account_id`, `role_arn`, \
         `external_id`, `region` (default `us-east-1`), `enabled` (default `true`); see Connected accounts",
    )
    .default("[]"),
    Setting::new(
        "ce-requests-per-second",
        field!(ce_requests_per_second),
        "Cost Explorer requests per second at most (token bucket); every request costs $0.01",
    )
    .default("5")
    .unit("requests/s"),
    Setting::new(
        "ce-request-budget",
        field!(ce_request_budget),
        "Cost Explorer requests one `curflow ce` run may make over all accounts; beyond it the run stops cleanly",
    )
    .default("100")
    .min(1),
    Setting::new(
        "ce-manual-sync-interval-minutes",
        field!(ce_manual_sync_interval_minutes),
        "`curflow ce sync` refuses an account synced (or tried) less than this long ago, naming the time to wait",
    )
    .default("15")
    .unit("minutes"),
    Setting::new(
        "evidence",
        field!(evidence),
        "usage-evidence sources of the usage ledger, `[[evidence]]` tables: `name` (letters, digits, `-`, `_`), \
         `location` (a local file or directory, or `cloudwatch://<log-group>`, as `--evidence`); see Usage ledger",
    )
    .default("[]"),
    Setting::new(
        "usage-restate-days",
        field!(usage_restate_days),
        "`curflow usage ingest` without `--from` reads this many days again before the first day not yet \
         ingested (logs arrive late)",
    )
    .default("2")
    .unit("days")
    .max(31),
    Setting::new(
        "attribution-rules",
        field!(attribution_rules),
        "shared-cost attribution rules (TOML; a local path or an `s3://BUCKET/KEY` object); `--rules` overrides",
    )
    .unset("shipped default rules"),
    Setting::new(
        "assignments",
        field!(assignments),
        "resource id/ARN glob → tenant assignments (one per line; local or `s3://`); `--assignments` overrides",
    )
    .unset("none"),
    Setting::new(
        "s3-prefixes",
        field!(s3_prefixes),
        "S3 key prefix → tenant map (TOML; local or `s3://`) for S3 Inventory and access-log evidence; `--s3-prefixes` overrides",
    )
    .unset("none (S3 evidence refused)"),
    Setting::new(
        "agent-sessions",
        field!(agent_sessions),
        "agent runtime session → tenant map (CSV; local or `s3://`) for agent usage records; `--agent-sessions` overrides",
    )
    .unset("none (agent records not read)"),
];

/// Markers around the generated table in README.md.
pub const README_BEGIN: &str = "<!-- config-table:begin (generated by `curflow config --doc`) -->";
pub const README_END: &str = "<!-- config-table:end -->";

/// A configuration error. Values of secret settings are never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not TOML. Only the parser's message and position are kept: its full report
    /// quotes the offending line, which may hold a secret.
    #[error("configuration file {}, line {line}, column {column}: not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },

    #[error("configuration file {}: unknown key `{key}`{}; `curflow config --doc` lists the keys",
        path.display(), suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey { path: PathBuf, key: String, suggestion: Option<&'static str> },

    #[error("configuration file {}: `{key}` must be {expected}, found {found}", path.display())]
    FileValue { path: PathBuf, key: &'static str, expected: String, found: String },

    #[error("environment variable {variable}: must be {expected}, found {found}")]
    EnvValue { variable: String, expected: String, found: String },

    #[error("configuration `{key}` ({variable}): {reason}")]
    Invalid { key: &'static str, variable: String, reason: String },
}

impl Default for Config {
    fn default() -> Self {
        // Placeholders only: the compiler keeps this list complete, the declared defaults follow.
        let mut config = Self {
            store: PathBuf::new(),
            tag_key: String::new(),
            memory_limit_mb: 0,
            target_partitions: None,
            file_concurrency: None,
            batch_rows: 0,
            spill_dir: None,
            spill_max_mb: 0,
            evidence_max_malformed_pct: Decimal::ZERO,
            aws_endpoint_url: None,
            aws_region: None,
            resource_types: None,
            variance_threshold_pct: Decimal::ZERO,
            variance_min_amount: Decimal::ZERO,
            estimates_currency: None,
            alert_webhook_url: None,
            alert_sns_topic_arn: None,
            accounts: Vec::new(),
            ce_requests_per_second: Decimal::ZERO,
            ce_request_budget: 0,
            ce_manual_sync_interval_minutes: 0,
            evidence: Vec::new(),
            usage_restate_days: 0,
            attribution_rules: None,
            assignments: None,
            s3_prefixes: None,
            agent_sessions: None,
        };
        for setting in SETTINGS {
            if let Some(default) = setting.default {
                // Declared constants, all parsed by the `defaults_parse` test.
                let parsed = setting.field.set_text(&mut config, default, &setting.range);
                debug_assert!(parsed, "declared default of `{}` does not parse", setting.key);
            }
        }
        config
    }
}

/// Redacts secrets.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Config");
        for setting in SETTINGS {
            s.field(setting.key, &setting.shown(self).unwrap_or_else(|| "(unset)".into()));
        }
        s.finish()
    }
}

impl Config {
    /// Loads `file` (or `$CURFLOW_CONFIG`, or `./curflow.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment read through `env` (a seam for tests).
    pub fn load_with(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let default_file = Path::new("curflow.toml");
        let chosen = file
            .map(Path::to_path_buf)
            .or_else(|| env("CURFLOW_CONFIG").filter(|f| !f.is_empty()).map(PathBuf::from))
            .or_else(|| default_file.is_file().then(|| default_file.to_path_buf()));
        let mut config = Config::default();
        if let Some(path) = chosen {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
            config.apply_toml(&path, &text)?;
        }
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies the keys of a TOML file's text (`path` names it in errors).
    pub fn apply_toml(&mut self, path: &Path, text: &str) -> Result<()> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            ConfigError::Syntax { path: path.to_path_buf(), line, column, message: e.message().trim().to_string() }
        })?;
        for (key, value) in &table {
            let setting = SETTINGS.iter().find(|s| s.key == key).ok_or_else(|| ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key: key.clone(),
                suggestion: closest_key(key),
            })?;
            if !setting.field.set_toml(self, value, &setting.range) {
                let found = if setting.secret {
                    format!("{} (value not shown: secret)", value.type_str())
                } else {
                    format!("{} {value}", value.type_str())
                };
                return Err(ConfigError::FileValue {
                    path: path.to_path_buf(),
                    key: setting.key,
                    expected: setting.expected_value(),
                    found,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Applies `CURFLOW_*` overrides read through `env` (a seam for tests).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        for setting in SETTINGS {
            let variable = setting.env_var();
            let mut value = env(&variable);
            for old in setting.old_env {
                if env(old).is_none() {
                    continue;
                }
                if value.is_some() {
                    tracing::warn!(variable = %old, replacement = %variable, "deprecated environment variable ignored: the replacement is set");
                } else {
                    tracing::warn!(variable = %old, replacement = %variable, "deprecated environment variable: still read, set the replacement instead");
                    value = env(old);
                }
            }
            let Some(text) = value else { continue };
            if !setting.field.set_text(self, &text, &setting.range) {
                let found = if setting.secret { "a value not shown (secret)".to_string() } else { format!("{text:?}") };
                return Err(ConfigError::EnvValue { variable, expected: setting.expected_value(), found }.into());
            }
        }
        Ok(())
    }

    /// Applies a `--tag-key` flag (flags override file and environment), then [`Self::validate`]s.
    pub fn with_tag_key(mut self, tag_key: Option<String>) -> Result<Self> {
        if let Some(key) = tag_key {
            self.tag_key = key;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks the ranges of the declarations and the rules between settings (after flags too).
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |key: &'static str, reason: String| ConfigError::Invalid { key, variable: env_var_of(key), reason };
        for setting in SETTINGS {
            if !setting.range.admits(setting.field.number(self)) {
                let found = setting.shown(self).unwrap_or_default();
                return Err(invalid(setting.key, format!("must be {}, found {found}", setting.expected_value())).into());
            }
        }
        if self.tag_key.trim().is_empty() || self.tag_key.starts_with("user:") {
            return Err(invalid("tag-key", "must be the bare key, e.g. accountant_id (without `user:`)".into()).into());
        }
        if self.ce_requests_per_second <= Decimal::ZERO {
            return Err(invalid("ce-requests-per-second", "must be above 0".into()).into());
        }
        if let Some(reason) = accounts_problem(&self.accounts) {
            return Err(invalid("accounts", reason).into());
        }
        if let Some(reason) = evidence_problem(&self.evidence) {
            return Err(invalid("evidence", reason).into());
        }
        if let Some(code) = &self.estimates_currency
            && !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(
                invalid("estimates-currency", format!("must be an ISO 4217 code such as EUR, found {code:?}")).into()
            );
        }
        Ok(())
    }

    /// The configuration in effect as TOML, one line per setting; secrets redacted, unset
    /// settings commented out.
    pub fn to_toml_redacted(&self) -> String {
        let mut out = String::new();
        for setting in SETTINGS {
            match setting.shown(self) {
                Some(value) => writeln!(out, "{} = {value}", setting.key),
                None => writeln!(out, "# {} unset: {}", setting.key, setting.unset),
            }
            .ok();
        }
        out
    }

    /// How estimates are compared with actuals.
    pub fn reconcile_options(&self) -> Result<crate::reconciliation::ReconcileOptions> {
        crate::reconciliation::ReconcileOptions::load(
            self.resource_types.as_deref(),
            curflow_reconcile::Thresholds {
                threshold_pct: self.variance_threshold_pct,
                min_variance: self.variance_min_amount,
            },
            self.estimates_currency.clone(),
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

    /// How attribution reads its inputs: the configured rules, assignments, S3 prefix map and
    /// agent session map, the tenant key and the malformed-line budget (no evidence sources: each
    /// caller names what it reads).
    pub fn attribution_options(&self) -> crate::attribute::AttributionOptions {
        crate::attribute::AttributionOptions {
            evidence: Vec::new(),
            assignments: self.assignments.clone(),
            rules: self.attribution_rules.clone(),
            tenant_key: self.tag_key.clone(),
            s3_prefixes: self.s3_prefixes.clone(),
            agent_sessions: self.agent_sessions.clone(),
            window: None,
            max_malformed_ratio: Some(self.evidence_max_malformed_pct / Decimal::ONE_HUNDRED),
            aws: self.aws(),
            progress: None,
        }
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

/// What is wrong with the connected accounts, if anything: names unique, 12-digit ids, an IAM role
/// ARN of that very account (assuming a role elsewhere would read another account's costs under
/// this name), a non-empty external id.
fn accounts_problem(accounts: &[Account]) -> Option<String> {
    let mut names = std::collections::BTreeSet::new();
    for a in accounts {
        if a.name.trim().is_empty() || !names.insert(a.name.as_str()) {
            return Some(format!("account names must be unique and not blank, found {:?} twice or blank", a.name));
        }
        if a.account_id.len() != 12 || !a.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!("account {:?}: account_id must be 12 digits, found {:?}", a.name, a.account_id));
        }
        let role_account = a.role_arn.split(':').nth(4);
        if !(a.role_arn.starts_with("arn:aws") && a.role_arn.contains(":role/") && role_account == Some(&a.account_id))
        {
            return Some(format!(
                "account {:?}: role_arn must be arn:aws:iam::{}:role/NAME, found {:?}",
                a.name, a.account_id, a.role_arn
            ));
        }
        if a.external_id.trim().is_empty() {
            return Some(format!("account {:?}: external_id must not be empty", a.name));
        }
    }
    None
}

/// The README's configuration table (markdown), rendered from [`SETTINGS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| key | environment variable | type | default | meaning |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let mut env = format!("`{}`", s.env_var());
        for old in s.old_env {
            write!(env, " (formerly `{old}`, still read with a warning)").ok();
        }
        let default = s.default.map_or_else(|| s.unset.to_string(), |d| format!("`{d}`"));
        writeln!(out, "| `{}` | {env} | {} | {default} | {} |", s.key, s.expected(), s.doc).ok();
    }
    out
}

/// One configuration setting. Build with [`Setting::new`] and the `const` modifiers.
pub struct Setting {
    /// The TOML key, kebab-case; the environment variable derives from it.
    pub key: &'static str,
    /// Meaning, one line (the README's "meaning" column).
    pub doc: &'static str,
    /// Default in the environment variable's syntax; `None` = unset by default.
    pub default: Option<&'static str>,
    /// What an unset setting means ("CPU cores", "AWS chain").
    pub unset: &'static str,
    /// Unit of a number ("MiB", "%"); empty if none.
    pub unit: &'static str,
    /// Bounds of a number.
    pub range: Range,
    /// Never shown in logs, errors or `curflow config`.
    pub secret: bool,
    /// Former environment variable names, still read with a deprecation warning.
    pub old_env: &'static [&'static str],
    field: &'static dyn Field,
}

impl Setting {
    const fn new(key: &'static str, field: &'static dyn Field, doc: &'static str) -> Self {
        Setting {
            key,
            doc,
            default: None,
            unset: "unset",
            unit: "",
            range: Range { min: None, max: None },
            secret: false,
            old_env: &[],
            field,
        }
    }
    const fn default(self, value: &'static str) -> Self {
        Setting { default: Some(value), ..self }
    }
    const fn unset(self, meaning: &'static str) -> Self {
        Setting { unset: meaning, ..self }
    }
    const fn unit(self, unit: &'static str) -> Self {
        Setting { unit, ..self }
    }
    const fn min(self, min: u64) -> Self {
        Setting { range: Range { min: Some(min), max: self.range.max }, ..self }
    }
    const fn max(self, max: u64) -> Self {
        Setting { range: Range { min: self.range.min, max: Some(max) }, ..self }
    }
    const fn secret(self) -> Self {
        Setting { secret: true, ..self }
    }
    const fn old_env(self, names: &'static [&'static str]) -> Self {
        Setting { old_env: names, ..self }
    }

    /// `CURFLOW_` + the key in upper snake case.
    pub fn env_var(&self) -> String {
        env_var_of(self.key)
    }

    /// What a value must look like, for the README: "integer ≥ 64, MiB".
    pub fn expected(&self) -> String {
        let mut out = self.field.type_name().to_string();
        match (self.range.min, self.range.max) {
            (Some(min), Some(max)) => {
                write!(out, " from {min} to {max}").ok();
            }
            (Some(min), None) => {
                write!(out, " ≥ {min}").ok();
            }
            (None, Some(max)) => {
                write!(out, " ≤ {max}").ok();
            }
            (None, None) => {}
        }
        if !self.unit.is_empty() {
            write!(out, ", {}", self.unit).ok();
        }
        if self.secret {
            out.push_str(" (secret: never logged)");
        }
        out
    }

    /// [`Setting::expected`] with its article, for error messages: "an integer ≥ 64, MiB".
    fn expected_value(&self) -> String {
        let expected = self.expected();
        let article = if expected.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {expected}")
    }

    /// The value in `config` as TOML (`None` if unset), redacted if secret.
    fn shown(&self, config: &Config) -> Option<String> {
        let value = self.field.to_toml(config)?;
        Some(if self.secret { "\"<redacted>\"".to_string() } else { value.to_string() })
    }
}

/// Inclusive bounds of a number.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Range {
    /// Whether a number (`None`: not a number or unset) lies within.
    fn admits(&self, n: Option<Decimal>) -> bool {
        let Some(n) = n else { return true };
        self.min.is_none_or(|min| n >= Decimal::from(min)) && self.max.is_none_or(|max| n <= Decimal::from(max))
    }
}

/// Reaches one field of [`Config`].
struct Access<T: 'static> {
    get: fn(&Config) -> &T,
    get_mut: fn(&mut Config) -> &mut T,
}

/// `field!(name)`: the [`Access`] to `Config::name`, as a `&'static dyn Field`.
macro_rules! field {
    ($name:ident) => {
        &Access { get: |c| &c.$name, get_mut: |c| &mut c.$name }
    };
}
use field;

/// A typed field, seen through text (environment), TOML and numbers (range checks).
trait Field: Sync {
    fn type_name(&self) -> &'static str;
    /// Sets the field from an environment value; false (and unchanged) if it does not parse or
    /// lies outside `range`.
    fn set_text(&self, config: &mut Config, text: &str, range: &Range) -> bool;
    /// Sets the field from a TOML value; false (and unchanged) if it has the wrong type, does not
    /// parse or lies outside `range`.
    fn set_toml(&self, config: &mut Config, value: &toml::Value, range: &Range) -> bool;
    fn to_toml(&self, config: &Config) -> Option<toml::Value>;
    fn number(&self, config: &Config) -> Option<Decimal>;
}

impl<T: Kind> Field for Access<T> {
    fn type_name(&self) -> &'static str {
        T::TYPE
    }
    fn set_text(&self, config: &mut Config, text: &str, range: &Range) -> bool {
        T::parse(text).filter(|v| range.admits(v.number())).map(|v| *(self.get_mut)(config) = v).is_some()
    }
    fn set_toml(&self, config: &mut Config, value: &toml::Value, range: &Range) -> bool {
        T::from_toml(value).filter(|v| range.admits(v.number())).map(|v| *(self.get_mut)(config) = v).is_some()
    }
    fn to_toml(&self, config: &Config) -> Option<toml::Value> {
        (self.get)(config).to_toml()
    }
    fn number(&self, config: &Config) -> Option<Decimal> {
        (self.get)(config).number()
    }
}

/// A value type of settings.
trait Kind: Sized + 'static {
    /// Its name in the README and in errors.
    const TYPE: &'static str;
    fn parse(text: &str) -> Option<Self>;
    fn from_toml(value: &toml::Value) -> Option<Self>;
    fn to_toml(&self) -> Option<toml::Value>;
    fn number(&self) -> Option<Decimal> {
        None
    }
}

impl Kind for usize {
    const TYPE: &'static str = "integer";
    fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_integer().and_then(|i| usize::try_from(i).ok())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        i64::try_from(*self).ok().map(toml::Value::Integer)
    }
    fn number(&self) -> Option<Decimal> {
        Some(Decimal::from(*self))
    }
}

impl Kind for u64 {
    const TYPE: &'static str = "integer";
    fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_integer().and_then(|i| u64::try_from(i).ok())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        i64::try_from(*self).ok().map(toml::Value::Integer)
    }
    fn number(&self) -> Option<Decimal> {
        Some(Decimal::from(*self))
    }
}

/// Exact decimals: in TOML an integer, a float (read from its shortest decimal form) or a string.
impl Kind for Decimal {
    const TYPE: &'static str = "decimal";
    fn parse(text: &str) -> Option<Self> {
        Decimal::from_str(text.trim()).ok()
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Integer(i) => Some(Decimal::from(*i)),
            toml::Value::Float(f) => Decimal::from_str(&f.to_string()).ok(),
            toml::Value::String(s) => Self::parse(s),
            _ => None,
        }
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string()))
    }
    fn number(&self) -> Option<Decimal> {
        Some(*self)
    }
}

impl Kind for String {
    const TYPE: &'static str = "string";
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl Kind for PathBuf {
    const TYPE: &'static str = "path";
    fn parse(text: &str) -> Option<Self> {
        Some(PathBuf::from(text))
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_str().map(PathBuf::from)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
}

/// An optional setting: an empty environment variable unsets it.
impl<T: Kind> Kind for Option<T> {
    const TYPE: &'static str = T::TYPE;
    fn parse(text: &str) -> Option<Self> {
        if text.trim().is_empty() { Some(None) } else { T::parse(text).map(Some) }
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        T::from_toml(value).map(Some)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::to_toml)
    }
    fn number(&self) -> Option<Decimal> {
        self.as_ref().and_then(T::number)
    }
}

/// The environment variable of a key: `CURFLOW_` + the key in upper snake case.
fn env_var_of(key: &str) -> String {
    format!("CURFLOW_{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The declared key nearest to a mistyped one (at most two edits away).
fn closest_key(key: &str) -> Option<&'static str> {
    SETTINGS.iter().map(|s| (edit_distance(key, s.key), s.key)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// What is wrong with the evidence sources, if anything: names unique and of letters, digits, `-`
/// and `_` (they are part of store keys); every location readable as `--evidence`.
fn evidence_problem(entries: &[EvidenceEntry]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        if e.name.is_empty() || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Some(format!("source name {:?} must be letters, digits, '-' or '_'", e.name));
        }
        if !seen.insert(e.name.as_str()) {
            return Some(format!("source name {:?} is used twice", e.name));
        }
        if let Err(err) = e.location.parse::<crate::attribute::sources::EvidenceSource>() {
            return Some(format!("source {:?}: {err}", e.name));
        }
    }
    None
}

/// `[[evidence]]`: an array of `{name, location}` tables; in `CURFLOW_EVIDENCE` the same array
/// inline. A table with an unknown key is refused.
impl Kind for Vec<EvidenceEntry> {
    const TYPE: &'static str = "array of evidence tables";
    fn parse(text: &str) -> Option<Self> {
        let table: toml::Table = format!("evidence = {text}").parse().ok()?;
        Self::from_toml(table.get("evidence")?)
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        let entry = |v: &toml::Value| {
            let t = v.as_table()?;
            if t.keys().any(|k| k != "name" && k != "location") {
                return None;
            }
            let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
            Some(EvidenceEntry { name: text("name")?, location: text("location")? })
        };
        value.as_array()?.iter().map(entry).collect()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        let table = |e: &EvidenceEntry| {
            let mut t = toml::Table::new();
            t.insert("name".into(), e.name.clone().into());
            t.insert("location".into(), e.location.clone().into());
            toml::Value::Table(t)
        };
        Some(toml::Value::Array(self.iter().map(table).collect()))
    }
}

/// `[[accounts]]`: an array of tables in TOML; in `CURFLOW_ACCOUNTS` the same array inline
/// (`[{name = "prod", account_id = "…", …}]`). A table with an unknown key is refused.
impl Kind for Vec<Account> {
    const TYPE: &'static str = "array of account tables";
    fn parse(text: &str) -> Option<Self> {
        let table: toml::Table = format!("accounts = {text}").parse().ok()?;
        Self::from_toml(table.get("accounts")?)
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_array()?.iter().map(account_of).collect()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        let table = |a: &Account| {
            let mut t = toml::Table::new();
            t.insert("name".into(), a.name.clone().into());
            t.insert("account_id".into(), a.account_id.clone().into());
            t.insert("role_arn".into(), a.role_arn.clone().into());
            t.insert("external_id".into(), "<redacted>".into());
            t.insert("region".into(), a.region.clone().into());
            t.insert("enabled".into(), a.enabled.into());
            toml::Value::Table(t)
        };
        Some(toml::Value::Array(self.iter().map(table).collect()))
    }
}

/// One `[[accounts]]` table; `None` when a key is unknown, missing or of the wrong type.
fn account_of(value: &toml::Value) -> Option<Account> {
    const KEYS: [&str; 6] = ["name", "account_id", "role_arn", "external_id", "region", "enabled"];
    let t = value.as_table()?;
    if t.keys().any(|k| !KEYS.contains(&k.as_str())) {
        return None;
    }
    let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
    Some(Account {
        name: text("name")?,
        account_id: text("account_id")?,
        role_arn: text("role_arn")?,
        external_id: text("external_id")?,
        region: match t.get("region") {
            None => "us-east-1".into(),
            Some(r) => r.as_str()?.to_string(),
        },
        enabled: match t.get("enabled") {
            None => true,
            Some(e) => e.as_bool()?,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> Result<Config> {
        let mut c = Config::default();
        c.apply_toml(Path::new("curflow.toml"), text)?;
        Ok(c)
    }

    #[test]
    fn defaults_parse_and_match_the_engine() {
        let c = Config::default();
        for s in SETTINGS {
            if let Some(d) = s.default {
                assert!(s.field.set_text(&mut Config::default(), d, &s.range), "{}", s.key);
            }
        }
        assert_eq!(c.batch_rows, EngineOptions::default().batch_size);
        assert_eq!((c.memory_limit_mb, c.spill_max_mb, c.tag_key.as_str()), (1024, 2048, "accountant_id"));
        assert_eq!(c.variance_min_amount, Decimal::new(100, 2));
        assert_eq!(c.target_partitions, None);
        c.validate().unwrap();
    }

    #[test]
    fn accounts_are_tables_checked_and_their_external_id_never_shown() {
        let c = file(
            r#"
[[accounts]]
name = "prod"
account_id = "111111111111"
role_arn = "arn:aws:iam::111111111111:role/curflow-ce"
external_id = "ext-secret-1"

[[accounts]]
name = "dev"
account_id = "222222222222"
role_arn = "arn:aws:iam::222222222222:role/curflow-ce"
external_id = "ext-secret-2"
region = "eu-west-1"
enabled = false
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!((c.accounts[0].region.as_str(), c.accounts[0].enabled), ("us-east-1", true));
        assert_eq!((c.accounts[1].region.as_str(), c.accounts[1].enabled), ("eu-west-1", false));
        let shown = format!("{}{c:?}", c.to_toml_redacted());
        assert!(!shown.contains("ext-secret"), "{shown}");
        assert!(file("[[accounts]]\nname = \"x\"\nbogus = 1\n").is_err());
        let mut other = c.clone();
        other.accounts[1].role_arn = "arn:aws:iam::333333333333:role/r".into();
        assert!(other.validate().unwrap_err().to_string().contains("role_arn"));
        let mut dup = c.clone();
        dup.accounts[1].name = "prod".into();
        assert!(dup.validate().is_err());
    }

    #[test]
    fn keys_are_unique_kebab_case_and_env_names_derive_from_them() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.key), "{} declared twice", s.key);
            assert!(s.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", s.key);
        }
        let topic = SETTINGS.iter().find(|s| s.key == "alert-sns-topic-arn").unwrap();
        assert_eq!(topic.env_var(), "CURFLOW_ALERT_SNS_TOPIC_ARN");
    }

    /// Every field of `Config` is reachable through exactly one declaration: setting each key to
    /// a distinct non-default value changes a field no other key changed.
    #[test]
    #[expect(clippy::too_many_lines, reason = "one value and one check per setting: grows with SETTINGS")]
    fn every_field_has_one_declaration() {
        let values = [
            ("store", "s.sqlite"),
            ("tag-key", "team"),
            ("memory-limit-mb", "100"),
            ("target-partitions", "3"),
            ("file-concurrency", "5"),
            ("batch-rows", "2048"),
            ("spill-dir", "/spill"),
            ("spill-max-mb", "7"),
            ("evidence-max-malformed-pct", "2.5"),
            ("aws-endpoint-url", "http://localhost:1"),
            ("aws-region", "eu-west-1"),
            ("resource-types", "r.toml"),
            ("variance-threshold-pct", "12"),
            ("variance-min-amount", "3.5"),
            ("estimates-currency", "EUR"),
            ("alert-webhook-url", "https://hooks.example/x"),
            ("alert-sns-topic-arn", "arn:aws:sns:us-east-1:1:t"),
            (
                "accounts",
                r#"[{name = "prod", account_id = "111111111111", role_arn = "arn:aws:iam::111111111111:role/r", external_id = "x"}]"#,
            ),
            ("ce-requests-per-second", "2.5"),
            ("ce-request-budget", "7"),
            ("ce-manual-sync-interval-minutes", "3"),
            ("evidence", r#"[{name = "lambda", location = "/var/log/app"}]"#),
            ("usage-restate-days", "5"),
            ("attribution-rules", "/etc/curflow/rules.toml"),
            ("assignments", "/etc/curflow/assignments.txt"),
            ("s3-prefixes", "/etc/curflow/s3-prefixes.toml"),
            ("agent-sessions", "/etc/curflow/sessions.csv"),
        ];
        assert_eq!(values.len(), SETTINGS.len());
        let mut all = Config::default();
        for (key, value) in values {
            let s = SETTINGS.iter().find(|s| s.key == key).unwrap();
            let before = all.clone();
            assert!(s.field.set_text(&mut all, value, &s.range), "{key}");
            assert_ne!(before, all, "{key} changes no field");
        }
        // ... and every field was reached. Destructuring names every field: a field added to
        // `Config` fails to compile here until it is checked (and so declared).
        let d = Config::default();
        let Config {
            store,
            tag_key,
            memory_limit_mb,
            target_partitions,
            file_concurrency,
            batch_rows,
            spill_dir,
            spill_max_mb,
            evidence_max_malformed_pct,
            aws_endpoint_url,
            aws_region,
            resource_types,
            variance_threshold_pct,
            variance_min_amount,
            estimates_currency,
            alert_webhook_url,
            alert_sns_topic_arn,
            accounts,
            ce_requests_per_second,
            ce_request_budget,
            ce_manual_sync_interval_minutes,
            evidence,
            usage_restate_days,
            attribution_rules,
            assignments,
            s3_prefixes,
            agent_sessions,
        } = all;
        let reached = [
            store != d.store,
            tag_key != d.tag_key,
            memory_limit_mb != d.memory_limit_mb,
            target_partitions != d.target_partitions,
            file_concurrency != d.file_concurrency,
            batch_rows != d.batch_rows,
            spill_dir != d.spill_dir,
            spill_max_mb != d.spill_max_mb,
            evidence_max_malformed_pct != d.evidence_max_malformed_pct,
            aws_endpoint_url != d.aws_endpoint_url,
            aws_region != d.aws_region,
            resource_types != d.resource_types,
            variance_threshold_pct != d.variance_threshold_pct,
            variance_min_amount != d.variance_min_amount,
            estimates_currency != d.estimates_currency,
            alert_webhook_url != d.alert_webhook_url,
            alert_sns_topic_arn != d.alert_sns_topic_arn,
            accounts != d.accounts,
            ce_requests_per_second != d.ce_requests_per_second,
            ce_request_budget != d.ce_request_budget,
            ce_manual_sync_interval_minutes != d.ce_manual_sync_interval_minutes,
            evidence != d.evidence,
            usage_restate_days != d.usage_restate_days,
            attribution_rules != d.attribution_rules,
            assignments != d.assignments,
            s3_prefixes != d.s3_prefixes,
            agent_sessions != d.agent_sessions,
        ];
        assert!(reached.iter().all(|r| *r), "a field no declaration reaches: {reached:?}");
    }

    #[test]
    fn file_then_env_override_defaults() {
        let mut c =
            file("store = \"x.sqlite\"\ntag-key = \"tenant\"\nvariance-min-amount = 0.5\nspill-max-mb = 10").unwrap();
        assert_eq!((c.memory_limit_mb, c.spill_max_mb, c.variance_min_amount), (1024, 10, Decimal::new(5, 1)));
        c.apply_env(env(&[("CURFLOW_TAG_KEY", "accountant_id"), ("CURFLOW_SPILL_DIR", "/tmp/s")])).unwrap();
        assert_eq!((c.store.to_str().unwrap(), c.tag_key.as_str()), ("x.sqlite", "accountant_id"));
        assert_eq!(c.spill_dir.as_deref(), Some(Path::new("/tmp/s")));
        // An empty variable unsets an optional setting.
        c.apply_env(env(&[("CURFLOW_SPILL_DIR", "")])).unwrap();
        assert_eq!(c.spill_dir, None);
        assert_eq!(file("variance-threshold-pct = \"7.25\"").unwrap().variance_threshold_pct, Decimal::new(725, 2));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_the_file_and_what_was_expected() {
        let e = file("stor = 1").unwrap_err().to_string();
        assert!(
            e.contains("curflow.toml") && e.contains("unknown key `stor`") && e.contains("did you mean `store`"),
            "{e}"
        );
        let e = file("memory-limit-mb = \"lots\"").unwrap_err().to_string();
        assert!(e.contains("curflow.toml") && e.contains("`memory-limit-mb` must be an integer ≥ 64, MiB"), "{e}");
        assert!(e.contains("found string \"lots\""), "{e}");
        let e = file("batch-rows = 100").unwrap_err().to_string();
        assert!(e.contains("an integer from 1024 to 65536") && e.contains("found integer 100"), "{e}");
        let e = file("[store]\nx = 1").unwrap_err().to_string();
        assert!(e.contains("`store` must be a path, found table"), "{e}");
        let e = file("store = \"unterminated\ntag-key = 1").unwrap_err().to_string();
        assert!(e.contains("curflow.toml, line 1") && e.contains("not valid TOML"), "{e}");

        let mut c = Config::default();
        let e = c.apply_env(env(&[("CURFLOW_MEMORY_LIMIT_MB", "lots")])).unwrap_err().to_string();
        assert_eq!(e, "environment variable CURFLOW_MEMORY_LIMIT_MB: must be an integer ≥ 64, MiB, found \"lots\"");
        let e = c.apply_env(env(&[("CURFLOW_EVIDENCE_MAX_MALFORMED_PCT", "101")])).unwrap_err().to_string();
        assert!(e.contains("CURFLOW_EVIDENCE_MAX_MALFORMED_PCT: must be a decimal from 0 to 100, %"), "{e}");
        c.tag_key = "user:accountant_id".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`tag-key` (CURFLOW_TAG_KEY)"), "{e}");
        c.tag_key = "accountant_id".into();
        c.batch_rows = 10;
        assert!(c.validate().unwrap_err().to_string().contains("batch-rows"));
    }

    #[test]
    fn the_old_topic_variable_is_still_read_and_the_new_one_wins() {
        let mut c = Config::default();
        c.apply_env(env(&[("CURFLOW_ALERT_TOPIC_ARN", "arn:old")])).unwrap();
        assert_eq!(c.alert_sns_topic_arn.as_deref(), Some("arn:old"));
        c.apply_env(env(&[("CURFLOW_ALERT_TOPIC_ARN", "arn:old"), ("CURFLOW_ALERT_SNS_TOPIC_ARN", "arn:new")]))
            .unwrap();
        assert_eq!(c.alert_sns_topic_arn.as_deref(), Some("arn:new"));
    }

    #[test]
    fn secrets_stay_out_of_errors_debug_and_the_printed_configuration() {
        let secret = "https://hooks.example/T0/B0/sekret";
        let mut c = Config::default();
        c.apply_env(env(&[("CURFLOW_ALERT_WEBHOOK_URL", secret)])).unwrap();
        assert_eq!(c.alert_webhook_url.as_deref(), Some(secret));
        assert!(!format!("{c:?}").contains("sekret"));
        assert!(c.to_toml_redacted().contains("alert-webhook-url = \"<redacted>\""));
        let e = file(&format!("alert-webhook-url = [\"{secret}\"]")).unwrap_err().to_string();
        assert!(!e.contains("sekret") && e.contains("alert-webhook-url"), "{e}");
        let e = file(&format!("alert-webhook-url = \"{secret}\nstore = 1")).unwrap_err().to_string();
        assert!(!e.contains("sekret"), "{e}");
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let mut c = Config::default();
        c.apply_env(env(&[("CURFLOW_TARGET_PARTITIONS", "4"), ("CURFLOW_VARIANCE_MIN_AMOUNT", "0.01")])).unwrap();
        let text = c.to_toml_redacted();
        assert!(text.contains("# spill-dir unset: system temp dir"), "{text}");
        assert_eq!(file(&text).unwrap(), c);
    }

    /// README.md's table is `markdown_table()`. `UPDATE_README=1` rewrites it.
    #[test]
    fn readme_table_matches_the_declarations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let begin =
            readme.find(README_BEGIN).expect("README.md lacks the config-table:begin marker") + README_BEGIN.len();
        let end = readme[begin..].find(README_END).expect("README.md lacks the config-table:end marker") + begin;
        let expected = format!("\n{}", markdown_table());
        if readme[begin..end] == expected {
            return;
        }
        if std::env::var_os("UPDATE_README").is_some() {
            std::fs::write(&path, format!("{}{expected}{}", &readme[..begin], &readme[end..])).unwrap();
            return;
        }
        panic!(
            "README.md's configuration table differs from the declarations in pipeline/app/src/config.rs.\n\
             Regenerate it: `UPDATE_README=1 cargo test -p curflow --lib config::tests::readme` \
             (or paste the output of `cargo run -q -p curflow --bin curflow -- config --doc` between the markers).\n\
             --- README ---\n{}\n--- declared ---\n{expected}",
            &readme[begin..end]
        );
    }
}
