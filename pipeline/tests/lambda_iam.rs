//! The deployed function under IAM as strict as AWS.
//!
//! The real `curflow-lambda` binary runs under a local Lambda Runtime API (`support/runtime_api.rs`)
//! with the credentials of a role that carries **exactly the policy statements of the synthesized
//! CDK template** (`cdk synth`, read from `$CURFLOW_TEST_CDK_TEMPLATE`; CloudFormation references
//! resolved to this test's bucket, table, topic and log group), against a second `moto_server`
//! with IAM enforcement on (`$CURFLOW_TEST_AWS_IAM_ENDPOINT`). Its environment variables are the
//! template's too, so a name the stack sets and the code does not read shows up here.
//!
//! The scenario: a legacy CUR delivery through an S3 notification, a CUR 2.0 export through
//! EventBridge, a redelivery of the legacy month, the daily Cost Explorer sync (`{"curflow":
//! "ce-sync"}`) of the connected account `scripts/test` gives `cdk synth` (`connectedAccounts`),
//! and the nightly schedule on the DynamoDB store sending an SNS budget alert and fetching AWS's
//! forecast, after ingesting the usage ledger from the three evidence sources `scripts/test` gives
//! `cdk synth` (`evidenceSources`: a CloudWatch Logs group through `FilterLogEvents`, an S3
//! prefix listed under its `s3:prefix` condition and read with `GetObject`, and a CloudWatch
//! metric with a tenant dimension through `ListMetrics` and `GetMetricData`), while every delivery
//! is split with the ledger (its DynamoDB items) by the attribution rules the stack points the
//! function at (`attributionRules`: an S3 object read under its own `s3:GetObject` statement).
//! Everything must succeed.
//!
//! The connected account's role is in the stack's own account: moto evaluates an assumed role's
//! policies only in the account whose IAM holds the role, and the test's administrator can only
//! create roles there. Its trust policy requires the external id (`sts:ExternalId`, which moto
//! checks on `AssumeRole`), its permission policy allows the two Cost Explorer reads. moto checks
//! `sts:AssumeRole` against the statement's `Resource` (the role ARN), so that statement is handed
//! to moto unchanged. A ce-sync reports an account's failure in its response (by design: not
//! retried, see `curflow::lambda`), so that step fails on an account marked `FAILED` there.
//!
//! The **mutation check** proves the test has teeth: for each statement of the policy, the
//! scenario runs again with that statement removed and must fail with an environment error
//! (`curflow.External`, so Lambda retries and the failure queue alarms) whose message names a
//! permission of the removed statement. Statements that only the Lambda *service* uses on the
//! function's behalf (its log group, the failure queue, the topic's KMS key used by SNS) are
//! listed in [`SERVICE_ONLY`] with the reason, and the check asserts the opposite for them: the
//! scenario succeeds without them, i.e. curflow's code never calls them.
//!
//! Closing moto's gaps: moto evaluates S3 resources and condition keys, but matches the
//! `Resource` of every other service against `*` only, so a table- or topic-scoped statement
//! would never allow anything there. For those statements this test checks the resource
//! scoping itself (the statement must cover the table, its `month-index` and the topic the code
//! uses) and hands moto the statement with `Resource: *`; actions are still enforced by moto.
//! Under enforcement moto answers a denied DynamoDB (JSON protocol) call with an XML body; the
//! function must treat that unreadable 4xx as an environment error as well, which this test sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use chrono::{Datelike, Days, Utc};
use curflow_fixtures::{Format, Generated};
use runtime_api::{Answer, RuntimeApi};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Report prefixes of the default stack configuration (infra-cdk `legacyCurPrefix`, `cur2Prefix`).
const LEGACY_PREFIX: &str = "cur/";
const CUR2_PREFIX: &str = "cur2/";

/// The connected account's role (in [`ACCOUNT`], see the module docs) and external id; the
/// same values are in `scripts/test`'s `cdk synth -c connectedAccounts=...`.
const CONNECTED_ROLE: &str = "curflow-ce-connected";
const EXTERNAL_ID: &str = "curflow-iam-test-external-id";
/// The scenario step of the daily Cost Explorer sync.
const CE_SYNC_STEP: &str = "daily Cost Explorer sync";
/// The usage ledger's evidence sources, as `scripts/test` gives `cdk synth -c evidenceSources=...`:
/// a CloudWatch Logs group, an S3 prefix and a CloudWatch metric (its namespace, metric and tenant
/// dimension), all outside the stack (created here once per server).
const EVIDENCE_GROUP: &str = "/aws/lambda/curflow-iam-app";
const EVIDENCE_NAMESPACE: &str = "Curflow/IamApp";
const EVIDENCE_METRIC: &str = "BilledGbSeconds";
const EVIDENCE_BUCKET: &str = "curflow-iam-evidence";
/// The attribution rules object `scripts/test` gives `cdk synth` (`attributionRules`).
const RULES_KEY: &str = "settings/rules.toml";
const EVIDENCE_PREFIX: &str = "logs/";

/// Statements the Lambda service uses for the function, never curflow's code: removing one must
/// leave the scenario green. (identifying action, reason)
const SERVICE_ONLY: [(&str, &str); 4] = [
    ("logs:PutLogEvents", "the Lambda service writes the function's stdout to its log group"),
    ("sqs:SendMessage", "the Lambda service sends failed asynchronous events to the failure queue"),
    ("kms:GenerateDataKey", "SNS uses the topic's KMS key on the publisher's behalf; moto's SNS does not encrypt"),
    (
        "ce:GetCostAndUsage",
        "Cost Explorer is called with the connected role's temporary credentials, so AWS checks that role's \
         policy, never the function's; the stack grants it because issue 15 asks for it",
    ),
];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The IAM-enforcing server and the synthesized template, or `None` (skip) outside CI.
fn environment() -> Option<(String, PathBuf)> {
    match (std::env::var("CURFLOW_TEST_AWS_IAM_ENDPOINT"), std::env::var("CURFLOW_TEST_CDK_TEMPLATE")) {
        (Ok(endpoint), Ok(template)) => Some((endpoint, PathBuf::from(template))),
        _ if in_ci() => panic!(
            "CURFLOW_TEST_AWS_IAM_ENDPOINT / CURFLOW_TEST_CDK_TEMPLATE are not set: run the suite with ./scripts/test, \
             which starts the IAM-enforcing moto_server and synthesizes the CDK template"
        ),
        _ => {
            eprintln!("SKIPPED: no IAM-enforcing moto_server / synthesized template (run ./scripts/test)");
            None
        }
    }
}

// ---- the synthesized template ------------------------------------------------------------------

/// The function's policy statements and environment, straight from the template.
struct FunctionSpec {
    statements: Vec<Value>,
    environment: BTreeMap<String, Value>,
    /// The function's `MemorySize` (Lambda passes it as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; the
    /// binary checks its memory pool against it at cold start).
    memory_mb: u64,
    resources: serde_json::Map<String, Value>,
}

impl FunctionSpec {
    fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let template: Value = serde_json::from_str(&text).unwrap();
        let resources = template["Resources"].as_object().unwrap().clone();
        let of_type = |t: &'static str| resources.iter().filter(move |(_, r)| r["Type"] == t);
        let functions: Vec<_> = of_type("AWS::Lambda::Function")
            .filter(|(_, r)| {
                r["Properties"]["Handler"] == "bootstrap" && r["Properties"]["Runtime"] == "provided.al2023"
            })
            .collect();
        assert_eq!(functions.len(), 1, "one curflow function in the template");
        let function = &functions[0].1["Properties"];
        let role = function["Role"]["Fn::GetAtt"][0].as_str().expect("function role is a GetAtt").to_string();
        let mut statements = Vec::new();
        for (_, policy) in of_type("AWS::IAM::Policy") {
            let roles = policy["Properties"]["Roles"].as_array().unwrap();
            if roles.iter().any(|r| r["Ref"] == role.as_str()) {
                statements
                    .extend(policy["Properties"]["PolicyDocument"]["Statement"].as_array().unwrap().iter().cloned());
            }
        }
        let role_props = &resources[&role]["Properties"];
        assert!(role_props["ManagedPolicyArns"].is_null(), "the function role has no managed policies");
        assert!(role_props["Policies"].is_null(), "the function role has no inline policies besides AWS::IAM::Policy");
        assert!(!statements.is_empty());
        let environment = function["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let memory_mb = function["MemorySize"].as_u64().expect("the function's MemorySize");
        Self { statements, environment, memory_mb, resources }
    }
}

/// The names a run's resources have; CloudFormation references resolve to them.
struct Names {
    bucket: String,
    table: String,
    topic_arn: String,
    log_group: String,
}

impl Names {
    fn table_arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", self.table)
    }

    /// `Ref` / `Fn::GetAtt Arn` of a template resource, by its type.
    fn reference(&self, resources: &serde_json::Map<String, Value>, logical: &str, arn: bool) -> String {
        let kind =
            resources.get(logical).unwrap_or_else(|| panic!("unknown resource {logical}"))["Type"].as_str().unwrap();
        match (kind, arn) {
            ("AWS::S3::Bucket", false) => self.bucket.clone(),
            ("AWS::S3::Bucket", true) => format!("arn:aws:s3:::{}", self.bucket),
            ("AWS::DynamoDB::Table", false) => self.table.clone(),
            ("AWS::DynamoDB::Table", true) => self.table_arn(),
            ("AWS::SNS::Topic", false) => self.topic_arn.clone(),
            ("AWS::Logs::LogGroup", false) => self.log_group.clone(),
            ("AWS::Logs::LogGroup", true) => format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}:*", self.log_group),
            ("AWS::KMS::Key", true) => {
                format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000")
            }
            ("AWS::SQS::Queue", true) => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:curflow-failures"),
            _ => panic!("the function's policy or environment refers to {logical} ({kind}); teach this test its name"),
        }
    }

    /// Resolves CloudFormation intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Join`) to this run's names.
    fn resolve(&self, resources: &serde_json::Map<String, Value>, v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.resolve(resources, i)).collect()),
            Value::Object(o) if o.len() == 1 && o.contains_key("Ref") => {
                let name = o["Ref"].as_str().unwrap();
                Value::String(match name {
                    "AWS::Partition" => "aws".into(),
                    "AWS::Region" => REGION.into(),
                    "AWS::AccountId" => ACCOUNT.into(),
                    "AWS::URLSuffix" => "amazonaws.com".into(),
                    logical => self.reference(resources, logical, false),
                })
            }
            Value::Object(o) if o.len() == 1 && o.contains_key("Fn::GetAtt") => {
                let parts = o["Fn::GetAtt"].as_array().unwrap();
                assert_eq!(parts[1], "Arn", "only Arn attributes are resolved: {v}");
                Value::String(self.reference(resources, parts[0].as_str().unwrap(), true))
            }
            Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Join") => {
                let args = o["Fn::Join"].as_array().unwrap();
                let parts = self.resolve(resources, &args[1]);
                let joined: Vec<&str> = parts.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
                Value::String(joined.join(args[0].as_str().unwrap()))
            }
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), self.resolve(resources, v))).collect()),
            other => other.clone(),
        }
    }
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("statement without Action: {other}"),
    }
}

fn describe(statement: &Value) -> String {
    statement["Sid"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("(no Sid) {}", actions(statement).join(",")))
}

/// IAM's `*` wildcard.
fn iam_match(pattern: &str, value: &str) -> bool {
    let regex = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&regex).unwrap().is_match(value)
}

/// The statement as moto can evaluate it (see the module docs): S3 statements unchanged; for the
/// others the resource scoping is checked here and the resource widened to `*`.
fn for_moto(statement: &Value, names: &Names) -> Value {
    let acts = actions(statement);
    // moto evaluates S3 resources, and the role ARN of `sts:AssumeRole`.
    if acts.iter().all(|a| a.starts_with("s3:") || a.starts_with("sts:")) {
        return statement.clone();
    }
    let resources: Vec<String> = match &statement["Resource"] {
        Value::String(r) => vec![r.clone()],
        Value::Array(r) => r.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
        other => panic!("{}: unexpected Resource {other}", describe(statement)),
    };
    let needed: Vec<String> = if acts.iter().any(|a| a.starts_with("dynamodb:")) {
        vec![names.table_arn(), format!("{}/index/month-index", names.table_arn())]
    } else if acts.iter().any(|a| a.starts_with("sns:")) {
        vec![names.topic_arn.clone()]
    } else {
        Vec::new()
    };
    for arn in needed {
        assert!(
            resources.iter().any(|r| iam_match(r, &arn)),
            "{} does not cover {arn} (resources {resources:?})",
            describe(statement)
        );
    }
    let mut widened = statement.clone();
    widened["Resource"] = json!("*");
    widened
}

// ---- the IAM-enforcing server --------------------------------------------------------------------

/// Switches moto's IAM enforcement (`/moto-api/reset-auth`: the number of requests still allowed
/// without authentication; `0` = enforce from now on).
fn set_enforcement(endpoint: &str, on: bool) {
    let address = endpoint.trim_start_matches("http://");
    let body = if on { "0" } else { "inf" };
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {address}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"), "{response}");
}

/// Clients of the IAM-enforcing server, with the static test credentials (the administrator while
/// enforcement is off).
struct Admin {
    runtime: &'static tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
    endpoint: String,
}

impl Admin {
    fn new(endpoint: &str) -> Self {
        let runtime = common::rt();
        let credentials = aws_sdk_sts::config::Credentials::new("test", "test", None, None, "curflow-test");
        let config = runtime.block_on(
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(credentials)
                .load(),
        );
        Self { runtime, config, endpoint: endpoint.to_string() }
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.config).force_path_style(true).build())
    }

    fn put_file(&self, bucket: &str, key: &str, path: &Path) {
        let body = std::fs::read(path).unwrap();
        self.runtime.block_on(self.s3().put_object().bucket(bucket).key(key).body(body.into()).send()).unwrap();
    }

    /// Uploads a generated delivery under `prefix`, data files first, manifests last; returns the
    /// manifest keys.
    fn upload(&self, bucket: &str, prefix: &str, root: &Path) -> Vec<String> {
        let mut manifests = Vec::new();
        for rel in common::delivery_files(root) {
            let key = format!("{prefix}{rel}");
            if rel.ends_with("Manifest.json") {
                let manifest = as_delivered(&root.join(&rel), bucket, prefix);
                self.runtime
                    .block_on(self.s3().put_object().bucket(bucket).key(&key).body(manifest.into()).send())
                    .unwrap();
                manifests.push(key);
            } else {
                self.put_file(bucket, &key, &root.join(&rel));
            }
        }
        manifests
    }

    /// The connected account's role (enforcement off): trusted only with the external id, allowed
    /// the Cost Explorer reads. One role for every run (its ARN is in the template).
    fn connected_role(&self) {
        let iam = aws_sdk_iam::Client::new(&self.config);
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]});
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["ce:GetCostAndUsage", "ce:GetCostForecast"], "Resource": "*"}]});
        self.runtime.block_on(async {
            // Already there from an earlier run of this server: the policy below is what matters.
            let created =
                iam.create_role().role_name(CONNECTED_ROLE).assume_role_policy_document(trust.to_string()).send().await;
            if let Err(e) = created {
                let exists = e.as_service_error().is_some_and(|e| e.is_entity_already_exists_exception());
                assert!(exists, "creating the connected role: {e:?}");
            }
            iam.put_role_policy()
                .role_name(CONNECTED_ROLE)
                .policy_name("cost-explorer-read")
                .policy_document(policy.to_string())
                .send()
                .await
                .unwrap();
        });
    }

    /// The usage evidence the nightly run ingests (enforcement off; idempotent): yesterday's
    /// Lambda REPORT and application lines in the log group, the same day's lines as a gzip
    /// object under the S3 prefix, and a data point of the metric under a tenant dimension, so
    /// each evidence statement has something to read.
    fn evidence(&self) {
        let yesterday = Utc::now() - chrono::Duration::days(1);
        let at = yesterday.timestamp_millis();
        let request = "8d9e1c1e-2a4b-4c5d-9e8f-0a1b2c3d4e5f";
        let app = format!(r#"{{"accountant_id":"acct-0001","requestId":"{request}","msg":"invoice rendered"}}"#);
        let report = format!(
            "REPORT RequestId: {request}\tDuration: 120.5 ms\tBilled Duration: 121 ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB"
        );
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.config);
        self.runtime.block_on(async {
            // Already there from an earlier run of this server: nothing else to do.
            if logs.create_log_group().log_group_name(EVIDENCE_GROUP).send().await.is_ok() {
                logs.create_log_stream().log_group_name(EVIDENCE_GROUP).log_stream_name("s").send().await.unwrap();
                let event = |message: &str| {
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(at)
                        .message(message)
                        .build()
                        .unwrap()
                };
                logs.put_log_events()
                    .log_group_name(EVIDENCE_GROUP)
                    .log_stream_name("s")
                    .log_events(event(&app))
                    .log_events(event(&report))
                    .send()
                    .await
                    .unwrap();
                // Once per server too (a data point put again would add to the day's sum).
                let dimension = |name: &str, value: &str| {
                    aws_sdk_cloudwatch::types::Dimension::builder().name(name).value(value).build()
                };
                let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name(EVIDENCE_METRIC)
                    .dimensions(dimension("FunctionName", "curflow-iam-app"))
                    .dimensions(dimension("accountant_id", "acct-0001"))
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_millis(at))
                    .value(1.25)
                    .build();
                aws_sdk_cloudwatch::Client::new(&self.config)
                    .put_metric_data()
                    .namespace(EVIDENCE_NAMESPACE)
                    .metric_data(datum)
                    .send()
                    .await
                    .unwrap();
            }
        });
        let stamp = yesterday.format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let text = format!("{stamp} {app}\n{stamp} {report}\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let s3 = self.s3();
        self.runtime.block_on(async {
            if let Err(e) = s3.create_bucket().bucket(EVIDENCE_BUCKET).send().await {
                let exists = e
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists());
                assert!(exists, "creating the evidence bucket: {e:?}");
            }
            let key = format!("{EVIDENCE_PREFIX}app.log.gz");
            s3.put_object().bucket(EVIDENCE_BUCKET).key(key).body(body.into()).send().await.unwrap();
            // The attribution rules as a settings object outside the evidence prefix (the
            // template's `CURFLOW_ATTRIBUTION_RULES`, read under `ReadAttributionSettings`).
            let rules = include_str!("../../attribution/rules/default.toml").as_bytes().to_vec();
            s3.put_object().bucket(EVIDENCE_BUCKET).key(RULES_KEY).body(rules.into()).send().await.unwrap();
        });
    }

    /// Creates this run's bucket, table and topic (enforcement off).
    fn create_resources(&self, run: usize) -> Names {
        self.connected_role();
        self.evidence();
        let suffix = common::unique_name(&format!("iam{run}")).to_lowercase();
        let bucket = format!("cf-{suffix}");
        self.runtime.block_on(self.s3().create_bucket().bucket(&bucket).send()).unwrap();
        let table = format!("curflow-usage-{suffix}");
        let settings =
            curflow::aws::AwsSettings { endpoint_url: Some(self.endpoint.clone()), region: Some(REGION.into()) };
        curflow::store::dynamodb::DynamoStore::connect(&table, &settings)
            .wait()
            .unwrap()
            .create_table_if_missing()
            .wait()
            .unwrap();
        let sns = aws_sdk_sns::Client::new(&self.config);
        let topic = self.runtime.block_on(sns.create_topic().name(format!("alerts-{suffix}")).send()).unwrap();
        Names {
            bucket,
            table,
            topic_arn: topic.topic_arn().unwrap().to_string(),
            log_group: format!("/aws/lambda/curflow-{suffix}"),
        }
    }

    /// Creates a role with exactly `statements` and returns credentials of a session of it.
    fn assume_role_with(&self, run: usize, statements: &[Value]) -> aws_sdk_sts::types::Credentials {
        let iam = aws_sdk_iam::Client::new(&self.config);
        let sts = aws_sdk_sts::Client::new(&self.config);
        let name = format!("curflow-function-{run}");
        let trust = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        self.runtime.block_on(async {
            iam.create_role().role_name(&name).assume_role_policy_document(trust.to_string()).send().await.unwrap();
            iam.put_role_policy()
                .role_name(&name)
                .policy_name("function")
                .policy_document(policy.to_string())
                .send()
                .await
                .unwrap();
            let out = sts
                .assume_role()
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{name}"))
                .role_session_name("curflow-lambda")
                .send()
                .await
                .unwrap();
            out.credentials().unwrap().clone()
        })
    }
}

/// A generated manifest as AWS writes it into a bucket under `prefix`: data file keys include the
/// prefix and the bucket is the real one (the generator knows neither). Under least privilege the
/// function can only read below the report prefixes, so keys must be the real ones.
fn as_delivered(manifest: &Path, bucket: &str, prefix: &str) -> Vec<u8> {
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    if let Some(files) = m.get_mut("dataFiles").and_then(Value::as_array_mut) {
        for f in files {
            let key = f.as_str().unwrap().trim_start_matches("s3://").split_once('/').unwrap().1.to_string();
            *f = json!(format!("s3://{bucket}/{prefix}{key}"));
        }
    }
    if let Some(keys) = m.get_mut("reportKeys").and_then(Value::as_array_mut) {
        for k in keys {
            *k = json!(format!("{prefix}{}", k.as_str().unwrap()));
        }
    }
    if m.get("bucket").is_some() {
        m["bucket"] = json!(bucket);
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

// ---- events --------------------------------------------------------------------------------------

/// An S3 `ObjectCreated` notification, key URL-encoded as S3 sends it.
fn s3_event(bucket: &str, key: &str) -> Value {
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLEID:billingreports"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S"},
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": 1000}}}]})
}

/// An EventBridge `Object Created` event (keys are not URL-encoded there).
fn eventbridge_event(bucket: &str, key: &str) -> Value {
    json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
           "source": "aws.s3", "account": ACCOUNT, "time": Utc::now().to_rfc3339(), "region": REGION,
           "resources": [format!("arn:aws:s3:::{bucket}")],
           "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1000}, "reason": "PutObject"}})
}

fn scheduled_event() -> Value {
    json!({"version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
           "source": "aws.events", "account": ACCOUNT, "time": Utc::now().to_rfc3339(), "region": REGION,
           "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/curflow-nightly")], "detail": {}})
}

// ---- the function ----------------------------------------------------------------------------------

/// The deliveries every run uploads: two versions of the previous month (legacy CSV) and the
/// current month (CUR 2.0), generated once.
struct Deliveries {
    _dir: tempfile::TempDir,
    legacy: PathBuf,
    legacy_again: PathBuf,
    cur2: PathBuf,
}

impl Deliveries {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The function runs on the real clock: its nightly run reconciles the month of the last
        // complete day and the month before.
        let current = Utc::now().date_naive() - Days::new(1);
        let previous = current.with_day(1).unwrap() - Days::new(1);
        let month = |d: chrono::NaiveDate| {
            move |o: &mut curflow_fixtures::GenerateOptions| {
                o.year = d.year();
                o.month = d.month();
            }
        };
        let legacy = dir.path().join("legacy");
        let legacy_again = dir.path().join("legacy-again");
        let cur2 = dir.path().join("cur2");
        let _: Generated = common::generate(&legacy, Format::LegacyCsv, 3_000, 41, month(previous));
        let _: Generated = common::generate(&legacy_again, Format::LegacyCsv, 2_500, 42, month(previous));
        let _: Generated = common::generate(&cur2, Format::Cur2Parquet, 3_000, 43, month(current));
        Self { _dir: dir, legacy, legacy_again, cur2 }
    }
}

/// The function's process, started like Lambda starts it.
struct Function {
    child: Child,
    api: RuntimeApi,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Function {
    fn start(
        spec: &FunctionSpec,
        names: &Names,
        endpoint: &str,
        credentials: &aws_sdk_sts::types::Credentials,
    ) -> Self {
        let api = RuntimeApi::start();
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("function.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_curflow-lambda"));
        command.env_clear();
        for (name, value) in &spec.environment {
            let value = names.resolve(&spec.resources, value);
            command.env(name, value.as_str().unwrap_or_else(|| panic!("{name}: {value}")));
        }
        // Lambda's /tmp is this run's temporary directory.
        command.env("CURFLOW_SPILL_DIR", tmp.path().join("spill"));
        command
            .env("CURFLOW_AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
            .env("AWS_SESSION_TOKEN", credentials.session_token())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "curflow")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", &names.log_group)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/03/[$LATEST]test")
            .env("HOME", tmp.path());
        let file = std::fs::File::create(&log).unwrap();
        command.stdout(Stdio::from(file.try_clone().unwrap())).stderr(Stdio::from(file));
        let child = command.spawn().unwrap();
        Self { child, api, log, _tmp: tmp }
    }

    fn invoke(&mut self, event: Value) -> Answer {
        match self.api.invoke(event, Duration::from_secs(180)) {
            Some(answer) => answer,
            None => panic!(
                "the function did not answer (exit status {:?}); its log:\n{}",
                self.child.try_wait().ok().flatten(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        // The process may have exited already; then there is nothing to stop.
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// How a run ended: every answer in order, or the first error answer (step, error JSON).
type RunResult = Result<Vec<Value>, (String, Value)>;

/// One run of the scenario with `statements` as the function's policy.
fn run_scenario(
    admin: &Admin,
    spec: &FunctionSpec,
    deliveries: &Deliveries,
    run: usize,
    statements: &[Value],
) -> RunResult {
    set_enforcement(&admin.endpoint, false);
    let names = admin.create_resources(run);
    let legacy = admin.upload(&names.bucket, LEGACY_PREFIX, &deliveries.legacy);
    let cur2 = admin.upload(&names.bucket, CUR2_PREFIX, &deliveries.cur2);
    // A budget the current month crosses, so the nightly run sends an SNS alert.
    let store = format!("dynamodb://{}", names.table);
    common::ok(&common::run_curflow(
        &["budgets", "set", "--tenant", "acct-0001", "--amount", "0.01", "--store", &store],
        None,
        &[("CURFLOW_AWS_ENDPOINT_URL", admin.endpoint.as_str())],
    ));
    let moto_statements: Vec<Value> =
        statements.iter().map(|s| for_moto(&names.resolve(&spec.resources, s), &names)).collect();
    let credentials = admin.assume_role_with(run, &moto_statements);
    set_enforcement(&admin.endpoint, true);

    let mut function = Function::start(spec, &names, &admin.endpoint, &credentials);
    let period_manifest = |keys: &[String]| keys.iter().min_by_key(|k| k.len()).unwrap().clone();
    let mut answers = Vec::new();
    let mut step = |function: &mut Function, name: &str, event: Value| -> Result<(), (String, Value)> {
        match function.invoke(event) {
            Answer::Response(r) if detail(&r).contains(" FAILED: ") => {
                Err((name.to_string(), json!({"errorType": "response", "errorMessage": detail(&r)})))
            }
            Answer::Response(r) => {
                answers.push(r);
                Ok(())
            }
            Answer::Error(e) | Answer::InitError(e) => Err((name.to_string(), e)),
        }
    };
    let result = (|| {
        step(&mut function, "legacy S3 notification", s3_event(&names.bucket, &period_manifest(&legacy)))?;
        step(&mut function, "CUR 2.0 EventBridge", eventbridge_event(&names.bucket, &period_manifest(&cur2)))?;
        // The redelivery: uploaded by the administrator (S3 keeps whole seconds: let the clock move).
        std::thread::sleep(Duration::from_millis(1_100));
        set_enforcement(&admin.endpoint, false);
        let again = admin.upload(&names.bucket, LEGACY_PREFIX, &deliveries.legacy_again);
        set_enforcement(&admin.endpoint, true);
        step(&mut function, "legacy redelivery", s3_event(&names.bucket, &period_manifest(&again)))?;
        step(&mut function, CE_SYNC_STEP, json!({"curflow": "ce-sync"}))?;
        step(&mut function, "nightly schedule", scheduled_event())
    })();
    if result.is_err() {
        eprintln!("--- function log (run {run}) ---\n{}", function.log());
    }
    result.map(|()| answers)
}

fn detail(answer: &Value) -> String {
    answer["results"][0]["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_function_works_under_the_synthesized_policy_and_each_statement_is_needed() {
    let Some((endpoint, template)) = environment() else { return };
    let spec = FunctionSpec::load(&template);
    let admin = Admin::new(&endpoint);
    let deliveries = Deliveries::generate();

    // The full policy: every step succeeds.
    let answers = run_scenario(&admin, &spec, &deliveries, 0, &spec.statements)
        .unwrap_or_else(|(step, e)| panic!("{step} failed under the synthesized policy: {e}"));
    let done: Vec<&str> = answers.iter().map(|a| a["results"][0]["action"].as_str().unwrap()).collect();
    assert_eq!(done, ["processed", "processed", "processed", "ce_sync", "nightly"], "{answers:#?}");
    assert!(answers.iter().all(|a| a["status"] == "ok"), "{answers:#?}");
    assert!(detail(&answers[2]).contains("replaced version"), "{answers:#?}");
    assert!(detail(&answers[3]).contains("synced 1 of 1 account(s)"), "{answers:#?}");
    let nightly = detail(&answers[4]);
    assert!(nightly.contains("reconciled 2 month(s)") && nightly.contains("0 failed"), "{nightly}");
    // The three evidence sources, yesterday and the two days before it (`usage-restate-days`).
    assert!(nightly.contains("usage ledger: 9 source-day(s) ingested"), "{nightly}");
    assert!(!nightly.contains(" 0 alert(s) sent"), "the budget alert was sent over SNS: {nightly}");

    // The mutation check.
    let mut report = Vec::new();
    for (i, removed) in spec.statements.iter().enumerate() {
        let kept: Vec<Value> =
            spec.statements.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s.clone()).collect();
        let removed_actions = actions(removed);
        let service_only = SERVICE_ONLY.iter().find(|(a, _)| removed_actions.iter().any(|r| r == a));
        let result = run_scenario(&admin, &spec, &deliveries, i + 1, &kept);
        match (service_only, result) {
            (Some((_, why)), Ok(_)) => {
                report.push(format!("{}: not used by curflow's code ({why})", describe(removed)))
            }
            (Some(_), Err((step, e))) => {
                panic!("{} is listed as service-only, but without it {step} failed: {e}", describe(removed))
            }
            (None, Ok(_)) => panic!(
                "without statement {} ({removed_actions:?}) the scenario still succeeds: it grants nothing curflow needs",
                describe(removed)
            ),
            (None, Err((step, e))) => {
                let message = e["errorMessage"].as_str().unwrap_or_default();
                // A ce-sync reports an account's failure in its response (not retried).
                let expected = if step == CE_SYNC_STEP { "response" } else { "curflow.External" };
                assert_eq!(e["errorType"], expected, "{}: {step}: {e}", describe(removed));
                assert!(
                    removed_actions.iter().any(|a| message.contains(a.as_str())),
                    "without {} the error must name one of {removed_actions:?}; {step} failed with: {message}",
                    describe(removed)
                );
                report.push(format!("{}: {step} failed: {message}", describe(removed)));
            }
        }
    }
    eprintln!("mutation check:\n  {}", report.join("\n  "));
}
