//! The DynamoDB store: the app's usage table, with versioned cost-line items and a per-period
//! current-version pointer switched by a conditional write (`--store dynamodb://<table>`).
//!
//! # Table layout
//!
//! One table (created by infra-cdk; [`DynamoStore::create_table_if_missing`] is for tests and
//! local use): partition key `accountant_id` (S), sort key `sk` (S), global secondary index
//! `month-index` (partition `month` S, sort `sk` S, projection ALL), billing PAY_PER_REQUEST.
//!
//! **Cost-line items** (one per stored [`CostLine`]):
//!
//! | attribute | value |
//! |---|---|
//! | `accountant_id` | tenant tag value; `_shared` for the untagged shared pool (`UNATTRIBUTED`); a tenant id starting with `_` or `~` gets one more `~` in front (`_shared` → `~_shared`), so it never shares a partition of the store's own (`_shared`, `_period`, `_budget`, ...) |
//! | `sk` | `actual#<YYYY-MM>#<vtag>#<YYYY-MM-DD>#<cost_source>#<service>#<n>` |
//! | `month` | `YYYY-MM` (the GSI partition) |
//! | `day` | `YYYY-MM-DD` (usage date, UTC) |
//! | `source` | `actual` (the app's own estimate items carry `estimate`; this store never touches an item whose `sk` does not start with `actual#`) |
//! | `actual_cost` | BOOL `true` |
//! | `cost_source` | `cur` (tagged) \| `attributed` (a tenant's part of the shared pool, at the reader's grain: no operation or resource id) \| `shared` (still unattributed) \| `pool` (a shared-pool line an attributed version was split from, in partition `_pool`) |
//! | `tenant` | the tenant exactly as tagged; absent for the shared pool |
//! | `service`, `usage_type`, `operation`, `resource_id`, `line_item_type`, `currency` | S (the CUR key; `operation`/`resource_id` are `""` on tagged lines) |
//! | `unblended_cost`, `net_unblended_cost`, `amortized_cost`, `ri_sp_trueup`, `ri_sp_upfront_fees`, `usage_amount`, `line_items` | N, exact decimal strings (never floats) |
//! | `list_cost` | N, the list (public on-demand) cost; absent when 0 |
//! | `contracted_cost` | N, the contracted cost (FOCUS `ContractedCost`, derived for a CUR); absent when 0 |
//! | `pricing_quantity` | N, every row's usage amount (FOCUS `PricingQuantity`, `Amounts::pricing_quantity`); absent when equal to `usage_amount` (every consumption line) |
//! | `rule`, `basis`, `driver`, `driver_quantity`, `driver_quantity_total`, `share` | attributed lines only (`driver` when proportional) |
//! | `unattributed_reason` | shared lines after attribution, when known |
//! | `version_tag`, `base_tag`, `version_id`, `version_time` | which version the item belongs to, and the pointer tag its writer read |
//!
//! `vtag` is 16 hex digits, a hash of the delivery version (id, time) and a per-run nonce, so a
//! run never overwrites the items of another run (not even of the same delivery). `n` is the
//! line's index in the period's sorted lines, 8 digits, so sort keys are unique and, within a
//! partition, in the order the SQLite store returns.
//!
//! **Pointer items** (one per billing period): `accountant_id` = `_period`, `sk` = `current#<YYYY-MM>`,
//! with `period`, `version_tag`, `version_id`, `version_time`, `format`, `delivery_source`, `files`,
//! `rows_read`, `split_child_rows`, `tag_key`, `inputs`, `processed_at` (the [`PeriodRecord`]), `line_count`
//! (items in the current version, the pool's left out), `pool_count` (the pool's items, in partition
//! `_pool`: what `curflow attribute` splits again and `attribution explain` explains per resource;
//! absent when 0) and `partitions` (list of the partitions that hold them; this
//! bounds a period to roughly 10,000 tenants, the 400 KB item limit). Pointers have no `month`,
//! so they stay out of `month-index`.
//!
//! # Replacing a period
//!
//! 1. Read the pointer (consistent) and [`decide`]: unchanged and older deliveries stop here.
//! 2. Write the new version's items with `BatchWriteItem` (25 per request, 8 requests in flight),
//!    retrying `UnprocessedItems` and throttled calls with exponential backoff and full jitter
//!    ([`RetryPolicy`]); past the retry budget the run fails with a retryable error.
//! 3. Verify with consistent per-partition queries that the written items read back as exactly
//!    the input lines (count, every line, and the sum of every measure).
//! 4. Switch the pointer with a conditional `PutItem`: `attribute_not_exists(sk) OR version_tag =
//!    :base`, where `:base` is the tag read in step 1. If the condition fails, re-read and decide
//!    again: the same version now stored ⇒ `Unchanged`; a newer one ⇒ `RefusedOlder`; ours still
//!    supersedes ⇒ write again on top of the new pointer. The losing run deletes its own items.
//! 5. Clean up: list the month's `actual#` items through `month-index` a page at a time; after each
//!    page, re-read the pointer, and if it still holds our tag delete every item of that page whose
//!    `version_tag` and `base_tag` both differ from it (once it holds another tag, stop). Failures
//!    here are logged, not fatal: readers follow the pointer.
//!
//! Steps 2, 3 and 5 hold no copy of the version: items are made as their batch is sent (at most 8
//! requests of 25 at once), read back a page (1 MB) at a time and checked against the input line
//! their sort key's `n` names, and a run deletes its own items by keys recomputed from its lines.
//! So a replace needs the lines the caller holds plus a few MB, whatever the number of lines (an
//! SDK item is several times its line's size: built up front, a version of a million lines took GBs).
//!
//! **Streamed** (`replace_split_period_chunks`, what `process`, `backfill`, the Lambda and
//! `attribute` use): the lines come as chunks that cannot be read twice, so nothing of the
//! version is held at all (`stream.rs`). Step 3 compares, partition by partition, the count,
//! exact totals and an order-free 128-bit digest of the items read back with those of the lines
//! sent there, and checks each item's sort key against its own content and index; a run deletes
//! its own items by listing its version in the partitions it wrote; and in step 4 a run that lost
//! the switch to an *older* version cannot write again: it deletes its items and fails
//! `Superseded` (retryable), and the processor reads the delivery once more.
//!
//! Why step 5 is safe under concurrency: every switch installs a fresh tag, so a pointer value
//! never comes back. A writer can only switch when the pointer still holds its `base_tag`; once
//! the pointer holds another tag, that writer's items can never become current. An item on a
//! listed page was written before the page was listed, by a writer that had read its `base_tag`
//! from the pointer even earlier; the pointer still holds our tag after the page was listed, so a
//! `base_tag` other than ours was a pointer value before ours, which never comes back: that
//! writer can never switch. A writer that read our tag (and may still switch) has our tag as its
//! `base_tag` and is never deleted; if the pointer moved on meanwhile the cleanup is left to the
//! new owner.
//!
//! # Reading
//!
//! `period`/`cost_lines` read the pointer (consistent), then query each listed partition
//! (consistent, `begins_with(sk, "actual#<YYYY-MM>#<vtag>#")`), and check the item count against
//! `line_count`; a concurrent switch and cleanup between the two reads is detected and the read
//! retried, so readers see one complete version, never a mix or a partial one. Lines are returned
//! in the SQLite store's order. `periods` queries the `_period` partition.
//!
//! # One runtime
//!
//! The store traits are async: every call is awaited on the caller's Tokio runtime (the CLI's,
//! the Lambda's), through one SDK client built when the store is opened. The store owns no
//! runtime and starts no thread, so a store built once per Lambda cold start serves every event.

pub mod capacity;
mod finance;
mod item;
mod ledger;
mod retry;
mod stream;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{StreamExt, TryStreamExt};

use super::{CostStore, LineFilter, MadeFrom, PeriodRecord, ReplaceOutcome, decide};
use crate::error::{Error, Result};
use chrono::NaiveDate;
use curflow_aws::{AwsSettings, is_retryable, sdk_config, sdk_error};
use curflow_model::Names;
use curflow_model::aggregate::{Amounts, CostLine, LineSource};
use curflow_model::period::BillingPeriod;
use item::{
    CURRENT, Item, MONTH, MONTH_INDEX, NO_BASE, PERIOD_PARTITION, PK, POOL_PARTITION, Pointer, SK, Stamp, decode_line,
    decode_pointer, index_of_sk, key_of, line_item, line_sk, month_prefix, partition_of, pointer_item, pointer_sk,
    pool_item, sort_lines, text_of, version_prefix,
};
pub use retry::RetryPolicy;

/// The `--store` scheme of this store.
pub const SCHEME: &str = "dynamodb://";
/// Items per `BatchWriteItem` request (the DynamoDB maximum).
const BATCH: usize = 25;
/// `BatchWriteItem` requests in flight at once.
const WRITES_IN_FLIGHT: usize = 8;
/// Partition queries in flight at once.
const READS_IN_FLIGHT: usize = 8;
/// How often one `replace_period` starts over after losing the pointer race to an older version.
const MAX_RESTARTS: u32 = 8;
/// How often a read starts over after the version it was reading was replaced and cleaned up.
const MAX_READ_RETRIES: u32 = 8;
/// Bytes of partition names a pointer item may list (DynamoDB items are at most 400 KB).
const MAX_PARTITION_BYTES: usize = 300_000;

/// A failure to inject, for crash-safety tests only ([`DynamoStore::with_fault`]). Nothing else
/// (no flag, config key or environment variable) enables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail after the new version's items are written and verified, before the pointer switch:
    /// what a run killed at that point leaves behind.
    StopBeforeSwitch,
    /// Fail right after the switch, before the old versions are deleted.
    StopBeforeCleanup,
}

type Hook = Arc<dyn Fn() + Send + Sync>;

/// A [`CostStore`] in a DynamoDB table (see the module docs for the layout and protocol).
pub struct DynamoStore {
    table: String,
    client: Client,
    retry: RetryPolicy,
    fault: Option<Fault>,
    before_switch: Option<Hook>,
}

/// The table name of a `dynamodb://<table>` location, if it is one.
pub fn table_of(location: &str) -> Option<&str> {
    location.strip_prefix(SCHEME)
}

fn valid_table_name(table: &str) -> Result<()> {
    let ok = (3..=255).contains(&table.len())
        && table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Argument(format!(
            "{SCHEME}{table}: not a DynamoDB table name (3-255 characters of a-z, A-Z, 0-9, _ - .)"
        )))
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Internal(format!("building a DynamoDB request: {e}"))
}

/// A fresh version tag: 16 hex digits of a hash of the version and a per-run nonce.
fn new_version_tag(version: &curflow_model::ReportVersion) -> String {
    let (time, nonce, pid) =
        (item::rfc3339(&version.time), retry::random_u64().to_le_bytes(), std::process::id().to_le_bytes());
    crate::hash::short_hash([version.id.as_bytes(), time.as_bytes(), &nonce, &pid])
}

/// What one version of a period holds: the lines readers see and the shared pool kept beside
/// them (`CostStore::replace_split_period`).
#[derive(Clone, Copy)]
struct Split<'a> {
    lines: &'a [CostLine],
    pool: &'a [CostLine],
}

/// The pages of one query, read one at a time ([`DynamoStore::query_pages`]).
struct Pages<'s> {
    store: &'s DynamoStore,
    query: QueryFluentBuilder,
    start: Option<Item>,
    done: bool,
}

impl Pages<'_> {
    /// The next page's items; `None` once the last page was read.
    async fn next(&mut self) -> Result<Option<Vec<Item>>> {
        if self.done {
            return Ok(None);
        }
        let req = self.query.clone().set_exclusive_start_key(self.start.take());
        let page = self.store.retrying(|| req.clone().send()).await.map_err(|e| self.store.aws_error("Query", e))?;
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => self.start = Some(key),
            _ => self.done = true,
        }
        Ok(Some(page.items.unwrap_or_default()))
    }
}

/// What [`DynamoStore::verify_partition`] checks items against.
#[derive(Clone, Copy)]
struct Expected<'a> {
    period: BillingPeriod,
    stamp: &'a Stamp,
    lines: &'a [CostLine],
    /// The lines are the pool's (in [`POOL_PARTITION`]).
    pool: bool,
}

/// What one partition's items read back as.
enum Checked {
    Matched { count: u64, total: Amounts },
    Mismatch(String),
}

/// A `BatchWriteItem` put of `item`.
fn put_request(item: Item) -> Result<WriteRequest> {
    let put = PutRequest::builder().set_item(Some(item)).build().map_err(build_error)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// A `BatchWriteItem` delete of the item at `(pk, sk)`.
fn delete_request(pk: String, sk: String) -> Result<WriteRequest> {
    let delete = DeleteRequest::builder()
        .key(PK, AttributeValue::S(pk))
        .key(SK, AttributeValue::S(sk))
        .build()
        .map_err(build_error)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// The `(partition, sort key)` of every item of version `stamp` of `split`, made one at a time.
fn version_keys<'a>(split: Split<'a>, stamp: &'a Stamp) -> impl Iterator<Item = (String, String)> + 'a {
    let lines = split.lines.iter().enumerate().map(move |(i, l)| (partition_of(l), line_sk(l, i, stamp)));
    lines.chain(split.pool.iter().enumerate().map(move |(i, l)| (POOL_PARTITION.to_string(), line_sk(l, i, stamp))))
}

/// How one attempt of `replace_period` ended.
enum Attempt {
    Done(ReplaceOutcome),
    /// Another run switched the period meanwhile: decide again against its pointer.
    Restart(Option<Box<Pointer>>),
}

/// Outcome of the conditional pointer write.
enum Switch {
    Done,
    ConditionFailed,
}

impl DynamoStore {
    /// A store on `table`, with the SDK configured from the standard AWS chain plus `aws`.
    /// Does not touch the table (see [`DynamoStore::check_table`]).
    pub async fn connect(table: &str, aws: &AwsSettings) -> Result<Self> {
        Self::connect_with(table, aws, |b| b).await
    }

    /// Like [`DynamoStore::connect`], with a hook to adjust the client configuration (tests add
    /// interceptors that inject throttling, or change the SDK's retry settings).
    pub async fn connect_with(
        table: &str,
        aws: &AwsSettings,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> Result<Self> {
        valid_table_name(table)?;
        let sdk = sdk_config(aws).await;
        let conf = customize(aws_sdk_dynamodb::config::Builder::from(&sdk)).build();
        Ok(Self::with_client(table, Client::from_conf(conf)))
    }

    /// A store on `table` through a ready SDK configuration.
    pub fn from_conf(table: &str, conf: aws_sdk_dynamodb::Config) -> Result<Self> {
        Self::from_client(table, Client::from_conf(conf))
    }

    /// A store on `table` through a ready SDK client.
    pub fn from_client(table: &str, client: Client) -> Result<Self> {
        valid_table_name(table)?;
        Ok(Self::with_client(table, client))
    }

    fn with_client(table: &str, client: Client) -> Self {
        Self { table: table.to_string(), client, retry: RetryPolicy::default(), fault: None, before_switch: None }
    }

    /// Replaces the retry policy (backoff and give-up time) of this store's calls.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Test hook: inject `fault` into every later `replace_period`.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Test hook: `hook` runs right before each pointer switch (to line up concurrent runs).
    pub fn with_before_switch(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_switch = Some(Arc::new(hook));
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client the store uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn aws_error<E>(&self, operation: &str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        sdk_error("DynamoDB", operation, &self.describe(), err).into()
    }

    fn unusable(&self, reason: String) -> Error {
        Error::Unusable { store: self.describe(), reason }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Store { path: PathBuf::from(self.describe()), reason, retryable: false }
    }

    /// Checks that the table exists with this store's key schema and `month-index`. A missing or
    /// differently shaped table is an environment error (exit 4, Lambda retries then alarms): the
    /// deployment, region or endpoint is wrong, which no change to the input can fix.
    pub async fn check_table(&self) -> Result<()> {
        {
            let req = self.client.describe_table().table_name(&self.table);
            let out = match self.retrying(|| req.clone().send()).await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                    return Err(self.unusable(format!(
                        "table {} does not exist (in this region/endpoint); deploy it with infra-cdk \
                         (partition key accountant_id, sort key sk, GSI month-index)",
                        self.table
                    )));
                }
                Err(e) => return Err(self.aws_error("DescribeTable", e)),
            };
            let Some(table) = out.table() else {
                return Err(self.corrupt("DescribeTable returned no table description".into()));
            };
            let keys = |schema: &[KeySchemaElement]| -> Vec<(String, String)> {
                schema.iter().map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string())).collect()
            };
            let want = |pk: &str| vec![(pk.to_string(), "HASH".to_string()), (SK.to_string(), "RANGE".to_string())];
            if keys(table.key_schema()) != want(PK) {
                return Err(self.unusable(format!(
                    "table {} has key schema {:?}; curflow needs partition key {PK} and sort key {SK}",
                    self.table,
                    keys(table.key_schema())
                )));
            }
            let gsi = table.global_secondary_indexes().iter().find(|g| g.index_name() == Some(MONTH_INDEX));
            if gsi.is_none_or(|g| keys(g.key_schema()) != want(MONTH)) {
                return Err(self.unusable(format!(
                    "table {} has no global secondary index {MONTH_INDEX} on ({MONTH}, {SK})",
                    self.table
                )));
            }
            Ok(())
        }
    }

    /// Creates the table (layout of the module docs) unless it exists; returns whether it did.
    /// For tests and local use: deployed tables come from infra-cdk.
    pub async fn create_table_if_missing(&self) -> Result<bool> {
        {
            let attr = |name: &str| {
                AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
            };
            let key =
                |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(MONTH_INDEX)
                .key_schema(key(MONTH, KeyType::Hash).map_err(build_error)?)
                .key_schema(key(SK, KeyType::Range).map_err(build_error)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_error)?;
            let req = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attr(PK).map_err(build_error)?)
                .attribute_definitions(attr(SK).map_err(build_error)?)
                .attribute_definitions(attr(MONTH).map_err(build_error)?)
                .key_schema(key(PK, KeyType::Hash).map_err(build_error)?)
                .key_schema(key(SK, KeyType::Range).map_err(build_error)?)
                .global_secondary_indexes(gsi);
            match self.retrying(|| req.clone().send()).await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
                Err(e) => return Err(self.aws_error("CreateTable", e)),
            }
            let started = Instant::now();
            loop {
                let req = self.client.describe_table().table_name(&self.table);
                let out = self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("DescribeTable", e))?;
                if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    return Ok(true);
                }
                if started.elapsed() > Duration::from_secs(300) {
                    return Err(Error::Aws(curflow_aws::AwsError::new(
                        "DynamoDB",
                        "CreateTable",
                        self.describe(),
                        "table not ACTIVE after 5 minutes",
                        curflow_aws::AwsErrorKind::Transient,
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Runs an SDK call, retrying retryable failures (throttling, 5xx, timeouts) with backoff
    /// until the policy's give-up time; returns the last error otherwise.
    async fn retrying<T, E, R, Fut>(&self, mut call: impl FnMut() -> Fut) -> std::result::Result<T, SdkError<E, R>>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match call().await {
                Err(e) if is_retryable(&e) => {
                    let delay = self.retry.delay(attempt);
                    if started.elapsed() + delay > self.retry.give_up_after {
                        tracing::warn!(table = %self.table, attempts = attempt + 1, code = e.code(), "DynamoDB call still failing; giving up");
                        return Err(e);
                    }
                    tracing::debug!(table = %self.table, attempt, ?delay, code = e.code(), "DynamoDB call throttled or failed; backing off");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// All items of a query, page by page.
    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        self.query_pages(query, |page| {
            items.extend(page);
            Ok(())
        })
        .await?;
        Ok(items)
    }

    /// A query's items a page (at most 1 MB) at a time, each page handed to `each` as it arrives
    /// and dropped before the next is read: what reads a whole version (millions of items, several
    /// times their decoded size as SDK items) uses, so its memory does not grow with the period.
    async fn query_pages(
        &self,
        query: QueryFluentBuilder,
        mut each: impl FnMut(Vec<Item>) -> Result<()>,
    ) -> Result<()> {
        let mut pages = Pages { store: self, query, start: None, done: false };
        while let Some(page) = pages.next().await? {
            each(page)?;
        }
        Ok(())
    }

    /// Consistent query of the items of one partition whose sort key starts with `prefix`.
    fn partition_query(&self, partition: &str, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_string()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()))
    }

    async fn get_pointer(&self, period: BillingPeriod) -> Result<Option<Pointer>> {
        match self.get_one(PERIOD_PARTITION, pointer_sk(period)).await? {
            None => Ok(None),
            Some(item) => decode_pointer(&item)
                .map(Some)
                .map_err(|e| self.corrupt(format!("pointer of period {period} is unreadable: {e}"))),
        }
    }

    /// The lines of version `tag` of `period` in `partitions`, in the SQLite store's order; with
    /// `days`, only the lines of those UTC days (a server-side filter: DynamoDB returns only them,
    /// though it still reads, and charges for, the partition's items).
    async fn read_version(
        &self,
        period: BillingPeriod,
        tag: &str,
        partitions: &[String],
        days: Option<(NaiveDate, NaiveDate)>,
        source: Option<LineSource>,
    ) -> Result<Vec<CostLine>> {
        let prefix = version_prefix(period, tag);
        // Queries built up front: a stream over borrowed partition names trips rustc's
        // higher-ranked `Send` check in the store's boxed (async-trait) futures. The days and
        // the source are filtered by DynamoDB: the items left out still cost read units, but
        // never reach (nor are held by) the reader.
        let mut conditions = Vec::new();
        if days.is_some() {
            conditions.push("#day BETWEEN :from AND :to");
        }
        if source.is_some() {
            conditions.push("#source = :source");
        }
        let queries: Vec<QueryFluentBuilder> = partitions
            .iter()
            .map(|p| {
                let mut query = self.partition_query(p, &prefix);
                if !conditions.is_empty() {
                    query = query.filter_expression(conditions.join(" AND "));
                }
                if let Some((from, to)) = days {
                    query = query
                        .expression_attribute_names("#day", "day")
                        .expression_attribute_values(":from", AttributeValue::S(from.to_string()))
                        .expression_attribute_values(":to", AttributeValue::S(to.to_string()));
                }
                if let Some(source) = source {
                    query = query
                        .expression_attribute_names("#source", "cost_source")
                        .expression_attribute_values(":source", AttributeValue::S(source.as_str().to_string()));
                }
                query
            })
            .collect();
        let parts: Vec<Vec<CostLine>> = futures::stream::iter(queries)
            .map(|query| self.read_partition(period, query))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut lines = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            lines.extend(part);
        }
        sort_lines(&mut lines);
        Ok(lines)
    }

    /// The lines of one partition query, decoded page by page (the SDK's items, several times the
    /// size of the lines they hold, are never all kept).
    async fn read_partition(&self, period: BillingPeriod, query: QueryFluentBuilder) -> Result<Vec<CostLine>> {
        let mut lines = Vec::new();
        let mut names = Names::default();
        self.query_pages(query, |page| {
            for item in &page {
                lines.push(self.decode(item, period, &mut names)?);
            }
            Ok(())
        })
        .await?;
        Ok(lines)
    }

    /// The cost line of a stored item; an unreadable item is a corrupt store, named by its key.
    fn decode(&self, item: &Item, period: BillingPeriod, names: &mut Names) -> Result<CostLine> {
        decode_line(item, period, names).map_err(|e| {
            let (pk, sk) = key_of(item).unwrap_or_default();
            self.corrupt(format!("item {pk} / {sk} is unreadable: {e}"))
        })
    }

    async fn cost_lines_async(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        let mut pointer = self.get_pointer(period).await?;
        for _ in 0..MAX_READ_RETRIES {
            let Some(p) = &pointer else { return Ok(Vec::new()) };
            let lines = self.read_version(period, &p.tag, &p.partitions, None, None).await?;
            if lines.len() as u64 == p.line_count {
                return Ok(lines);
            }
            let now = self.get_pointer(period).await?;
            if now.as_ref().map(|n| &n.tag) == Some(&p.tag) {
                return Err(self.corrupt(format!(
                    "period {period}: current version {} has {} items, its pointer says {}",
                    p.tag,
                    lines.len(),
                    p.line_count
                )));
            }
            pointer = now; // replaced (and cleaned up) while we read: read the new version
        }
        Err(Error::Store {
            path: PathBuf::from(self.describe()),
            reason: format!("period {period} was replaced {MAX_READ_RETRIES} times while being read"),
            retryable: true,
        })
    }

    /// The shared-pool items of the current version (see [`POOL_PARTITION`]), checked against the
    /// pointer's count like [`Self::cost_lines_async`].
    async fn pool_lines_async(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        let mut pointer = self.get_pointer(period).await?;
        for _ in 0..MAX_READ_RETRIES {
            let Some(p) = &pointer else { return Ok(Vec::new()) };
            if p.pool_count == 0 {
                return Ok(Vec::new());
            }
            let lines = self.read_version(period, &p.tag, &[POOL_PARTITION.to_string()], None, None).await?;
            if lines.len() as u64 == p.pool_count {
                return Ok(lines);
            }
            let now = self.get_pointer(period).await?;
            if now.as_ref().map(|n| &n.tag) == Some(&p.tag) {
                return Err(self.corrupt(format!(
                    "period {period}: current version {} has {} pool items, its pointer says {}",
                    p.tag,
                    lines.len(),
                    p.pool_count
                )));
            }
            pointer = now; // replaced while we read: read the new version
        }
        Err(Error::Store {
            path: PathBuf::from(self.describe()),
            reason: format!("period {period} was replaced {MAX_READ_RETRIES} times while being read"),
            retryable: true,
        })
    }

    /// The lines of one tenant's partition (or the shared pool's) in the current version: one
    /// Query on that partition, not a read of the whole period. Consistent because a version's
    /// items are complete before its pointer names it and are only deleted once the pointer has
    /// moved on: if the pointer still names the version after the read, the read saw all of it.
    async fn partition_lines_async(&self, period: BillingPeriod, filter: &LineFilter) -> Result<Vec<CostLine>> {
        if *filter == LineFilter::default() {
            return self.cost_lines_async(period).await;
        }
        // The tenant's partition; versions written before tenant partitions were escaped hold a
        // tenant starting with `_` in its raw id (`_shared`: with the pool), read too. Lines carry
        // their tenant, so the filter keeps exactly the tenant's (or the pool's).
        let candidates: Option<Vec<String>> = filter.tenant.as_ref().map(|tenant| match tenant.as_deref() {
            None | Some("") => vec![item::SHARED_PARTITION.to_string()],
            Some(t) => {
                let escaped = item::tenant_partition(t);
                if escaped == t { vec![escaped] } else { vec![escaped, t.to_string()] }
            }
        });
        let mut pointer = self.get_pointer(period).await?;
        for _ in 0..MAX_READ_RETRIES {
            let Some(p) = &pointer else { return Ok(Vec::new()) };
            let partitions: Vec<String> = match &candidates {
                Some(candidates) => candidates.iter().filter(|c| p.partitions.contains(c)).cloned().collect(),
                None => p.partitions.clone(),
            };
            if partitions.is_empty() {
                return Ok(Vec::new());
            }
            let mut lines = self.read_version(period, &p.tag, &partitions, filter.days, filter.source).await?;
            let now = self.get_pointer(period).await?;
            if now.as_ref().map(|n| &n.tag) == Some(&p.tag) {
                lines.retain(|l| filter.matches(l));
                return Ok(lines);
            }
            pointer = now; // replaced while we read: read the new version
        }
        Err(Error::Store {
            path: PathBuf::from(self.describe()),
            reason: format!("period {period} was replaced {MAX_READ_RETRIES} times while being read"),
            retryable: true,
        })
    }

    /// Runs put or delete requests, 25 per `BatchWriteItem`, several requests at once, retrying
    /// unprocessed items with backoff.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<()> {
        self.write_each(requests.into_iter().map(Ok)).await
    }

    /// [`Self::write_all`] over requests made as they are sent: at most [`WRITES_IN_FLIGHT`]
    /// batches of [`BATCH`] exist at once, however many items a version has (an SDK item is a few
    /// KB: a million-line version built up front took GBs). The first error stops the run; the
    /// batches in flight are dropped (some may have landed: the caller deletes by key).
    async fn write_each(&self, requests: impl Iterator<Item = Result<WriteRequest>>) -> Result<()> {
        let mut requests = requests.fuse();
        let mut in_flight = futures::stream::FuturesUnordered::new();
        loop {
            while in_flight.len() < WRITES_IN_FLIGHT {
                let chunk = requests.by_ref().take(BATCH).collect::<Result<Vec<_>>>()?;
                if chunk.is_empty() {
                    break;
                }
                in_flight.push(self.write_batch(chunk));
            }
            match in_flight.next().await {
                None => return Ok(()),
                Some(done) => done?,
            }
        }
    }

    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<()> {
        let started = Instant::now();
        let total = requests.len();
        let mut attempt = 0u32;
        loop {
            let req = self.client.batch_write_item().request_items(&self.table, requests);
            let out = self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("BatchWriteItem", e))?;
            requests = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            let delay = self.retry.delay(attempt);
            if started.elapsed() + delay > self.retry.give_up_after {
                return Err(Error::Aws(curflow_aws::AwsError::new(
                    "DynamoDB",
                    "BatchWriteItem",
                    self.describe(),
                    format!(
                        "{} of {total} items still unprocessed (throttled) after {} retries over {:.1} s",
                        requests.len(),
                        attempt + 1,
                        started.elapsed().as_secs_f64()
                    ),
                    curflow_aws::AwsErrorKind::Transient,
                )));
            }
            tracing::debug!(table = %self.table, unprocessed = requests.len(), attempt, ?delay, "unprocessed items; backing off");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn delete_keys(&self, keys: impl IntoIterator<Item = (String, String)>) -> Result<()> {
        self.write_each(keys.into_iter().map(|(pk, sk)| delete_request(pk, sk))).await
    }

    /// Deletes a run's own items after it lost (they can never become current); best effort.
    async fn discard(&self, keys: &[(String, String)], why: &str) {
        if let Err(e) = self.delete_keys(keys.iter().cloned()).await {
            tracing::warn!(table = %self.table, items = keys.len(), error = %e, "{why}: could not delete this run's items; a later run removes them");
        }
    }

    /// Deletes the items of version `stamp` of `split` (what [`Self::write_version`] wrote, or
    /// part of it), their keys recomputed from the lines; best effort, like [`Self::discard`].
    async fn discard_version(&self, split: Split<'_>, stamp: &Stamp, why: &str) {
        if let Err(e) = self.delete_keys(version_keys(split, stamp)).await {
            tracing::warn!(table = %self.table, items = split.lines.len() + split.pool.len(), error = %e,
                "{why}: could not delete this run's items; a later run removes them");
        }
    }

    /// The conditional pointer write: succeeds only while the pointer holds `base`.
    async fn switch(&self, pointer: &Pointer, base: &str) -> Result<Switch> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pointer_item(pointer)))
            .condition_expression("attribute_not_exists(#sk) OR version_tag = :base")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":base", AttributeValue::S(base.to_string()));
        match self.retrying(|| req.clone().send()).await {
            Ok(_) => Ok(Switch::Done),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Ok(Switch::ConditionFailed)
            }
            Err(e) => Err(self.aws_error("PutItem", e)),
        }
    }

    /// Checks that version `stamp` of the period reads back as exactly `lines` (count, every
    /// line, the sum of every measure) from `partitions` (`pool`: the lines are the pool's, in
    /// [`POOL_PARTITION`]). `Err(reason)` on a mismatch.
    ///
    /// Page by page, holding no copy of the version: each item's index `n` (the end of its sort
    /// key) names the input line it must equal, and its partition and whole sort key must be the
    /// ones that line is written under. Distinct items therefore match distinct lines, and as
    /// many items as lines means each line was read back exactly once.
    async fn verify(
        &self,
        period: BillingPeriod,
        stamp: &Stamp,
        partitions: &[String],
        lines: &[CostLine],
        pool: bool,
    ) -> Result<std::result::Result<(), String>> {
        let prefix = version_prefix(period, &stamp.tag);
        let queries: Vec<(String, QueryFluentBuilder)> =
            partitions.iter().map(|p| (p.clone(), self.partition_query(p, &prefix))).collect();
        let checked: Vec<Checked> = futures::stream::iter(queries)
            .map(|(partition, query)| self.verify_partition(Expected { period, stamp, lines, pool }, partition, query))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let expected = Amounts::sum(lines.iter().map(|l| &l.amounts))?;
        let (mut items, mut written_total) = (0u64, Amounts::default());
        for part in checked {
            match part {
                Checked::Mismatch(reason) => return Ok(Err(reason)),
                Checked::Matched { count, total } => {
                    items += count;
                    written_total.add(&total)?;
                }
            }
        }
        if items != lines.len() as u64 || written_total != expected {
            return Ok(Err(format!(
                "period {period}: stored items do not sum to the input ({items} items, {written_total:?} vs {} lines, {expected:?})",
                lines.len()
            )));
        }
        Ok(Ok(()))
    }

    /// [`Self::verify`] of one partition: its items' count and total, or the first mismatch.
    async fn verify_partition(
        &self,
        want: Expected<'_>,
        partition: String,
        query: QueryFluentBuilder,
    ) -> Result<Checked> {
        let Expected { period, stamp, lines, pool } = want;
        let mut names = Names::default();
        let (mut count, mut total, mut mismatch) = (0u64, Amounts::default(), None);
        self.query_pages(query, |page| {
            for item in &page {
                if mismatch.is_some() {
                    return Ok(());
                }
                let written = self.decode(item, period, &mut names)?;
                let (_, sk) = key_of(item).unwrap_or_default();
                let wanted = index_of_sk(&sk).and_then(|n| lines.get(n).map(|l| (n, l)));
                let Some((n, line)) = wanted.filter(|(n, l)| {
                    let home = if pool { POOL_PARTITION.to_string() } else { partition_of(l) };
                    home == partition && line_sk(l, *n, stamp) == sk
                }) else {
                    mismatch =
                        Some(format!("period {period}: stored item {partition} / {sk} is not one of the input lines"));
                    return Ok(());
                };
                if written != *line {
                    mismatch =
                        Some(format!("period {period}: stored item {written:?} differs from input line {n}, {line:?}"));
                    return Ok(());
                }
                count += 1;
                total.add(&written.amounts)?;
            }
            Ok(())
        })
        .await?;
        Ok(match mismatch {
            Some(reason) => Checked::Mismatch(reason),
            None => Checked::Matched { count, total },
        })
    }

    async fn replace_async(&self, record: &PeriodRecord, split: Split<'_>, force: bool) -> Result<ReplaceOutcome> {
        let period = record.period;
        let partitions = self.partitions_of(period, split.lines)?;
        let mut stored = self.get_pointer(period).await?;
        // Each restart follows a run that switched the period while we wrote: decide again.
        for _ in 0..=MAX_RESTARTS {
            let outcome = decide(stored.as_ref().map(|p| MadeFrom::record(&p.record)), MadeFrom::record(record), force);
            if !matches!(outcome, ReplaceOutcome::Replaced { .. }) {
                return Ok(outcome);
            }
            match self.attempt(record, split, &partitions, stored.as_ref()).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Restart(now) => stored = now.map(|p| *p),
            }
        }
        Err(self.too_many_restarts(period))
    }

    /// The partitions a period's lines go to, refused when their names do not fit in the pointer
    /// item (which lists them).
    fn partitions_of(&self, period: BillingPeriod, lines: &[CostLine]) -> Result<Vec<String>> {
        let partitions: Vec<String> = lines.iter().map(partition_of).collect::<BTreeSet<_>>().into_iter().collect();
        let partition_bytes: usize = partitions.iter().map(|p| p.len() + 4).sum();
        if partition_bytes > MAX_PARTITION_BYTES {
            return Err(Error::Store {
                path: PathBuf::from(self.describe()),
                reason: format!(
                    "period {period}: {} tenants do not fit in one pointer item (400 KB); too many tenants for this store",
                    partitions.len()
                ),
                retryable: false,
            });
        }
        Ok(partitions)
    }

    /// One attempt to install a new version on top of `stored` (steps 2-5 of the module docs):
    /// write and verify its items, switch the pointer, clean up. A run that switched the period
    /// meanwhile makes it a [`Attempt::Restart`] (our items are deleted first).
    async fn attempt(
        &self,
        record: &PeriodRecord,
        split: Split<'_>,
        partitions: &[String],
        stored: Option<&Pointer>,
    ) -> Result<Attempt> {
        let period = record.period;
        let stamp = Stamp {
            tag: new_version_tag(&record.version),
            base: stored.map_or_else(|| NO_BASE.to_string(), |p| p.tag.clone()),
            version: record.version.clone(),
        };
        self.write_version(split, &stamp).await?;
        let mut verified = self.verify(period, &stamp, partitions, split.lines, false).await?;
        if verified.is_ok() && !split.pool.is_empty() {
            verified = self.verify(period, &stamp, &[POOL_PARTITION.to_string()], split.pool, true).await?;
        }
        if let Err(mismatch) = verified {
            self.discard_version(split, &stamp, "verification failed").await;
            let now = self.get_pointer(period).await?;
            if now.as_ref().map(|p| &p.tag) == stored.map(|p| &p.tag) {
                return Err(Error::Internal(format!("{mismatch}; the pointer was not switched")));
            }
            // Another run switched the period meanwhile (and may have cleaned up our items).
            return Ok(Attempt::Restart(now.map(Box::new)));
        }
        self.inject(Fault::StopBeforeSwitch, || {
            format!("injected fault: stopped before switching period {period} to version {}", stamp.tag)
        })?;
        if let Some(hook) = &self.before_switch {
            hook();
        }
        let pointer = Pointer {
            record: record.clone(),
            tag: stamp.tag.clone(),
            partitions: partitions.to_vec(),
            line_count: split.lines.len() as u64,
            pool_count: split.pool.len() as u64,
        };
        if let Switch::ConditionFailed = self.switch(&pointer, &stamp.base).await? {
            let now = self.get_pointer(period).await?;
            // A retried PutItem whose first attempt landed fails its own condition.
            if now.as_ref().map(|p| &p.tag) != Some(&stamp.tag) {
                self.discard_version(split, &stamp, "lost the pointer switch").await;
                return Ok(Attempt::Restart(now.map(Box::new)));
            }
        }
        self.inject(Fault::StopBeforeCleanup, || {
            format!("injected fault: stopped after switching period {period} to version {}, before cleanup", stamp.tag)
        })?;
        if let Err(e) = self.cleanup(period, &stamp.tag).await {
            tracing::warn!(table = %self.table, %period, error = %e, "old versions not removed; readers follow the pointer, the next run removes them");
        }
        Ok(Attempt::Done(ReplaceOutcome::Replaced { previous: stored.map(|p| p.record.version.clone()) }))
    }

    /// Writes a new version's items (lines and pool), each made as its batch is sent (see
    /// [`Self::write_each`]); on failure deletes what was written.
    async fn write_version(&self, split: Split<'_>, stamp: &Stamp) -> Result<()> {
        let lines = split.lines.iter().enumerate().map(|(i, l)| line_item(l, i, stamp));
        let items = lines.chain(split.pool.iter().enumerate().map(|(i, l)| pool_item(l, i, stamp)));
        if let Err(e) = self.write_each(items.map(put_request)).await {
            self.discard_version(split, stamp, "write failed").await;
            return Err(e);
        }
        Ok(())
    }

    /// Fails with the injected fault's message when `fault` is the one this store was given.
    fn inject(&self, fault: Fault, message: impl FnOnce() -> String) -> Result<()> {
        if self.fault == Some(fault) { Err(Error::Internal(message())) } else { Ok(()) }
    }

    fn too_many_restarts(&self, period: BillingPeriod) -> Error {
        Error::Store {
            path: PathBuf::from(self.describe()),
            reason: format!("period {period}: lost the pointer switch to other runs {MAX_RESTARTS} times; retry later"),
            retryable: true,
        }
    }

    /// Deletes every item of the month's older, abandoned or losing versions that can never
    /// become current (see the module docs), once the pointer holds `current`.
    async fn cleanup(&self, period: BillingPeriod, current: &str) -> Result<usize> {
        let listing = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(MONTH_INDEX)
            .key_condition_expression("#month = :month AND begins_with(#sk, :prefix)")
            .projection_expression("#pk, #sk, version_tag, base_tag")
            .expression_attribute_names("#month", MONTH)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":month", AttributeValue::S(period.to_string()))
            .expression_attribute_values(":prefix", AttributeValue::S(month_prefix(period)));
        // Page by page (a month's listing is millions of items after a large version): each page's
        // doomed items are deleted only while the pointer, re-read after that page was listed,
        // still holds `current`, which keeps the argument of the module docs page by page.
        let mut pages = Pages { store: self, query: listing, start: None, done: false };
        let mut deleted = 0;
        while let Some(page) = pages.next().await? {
            let doomed: Vec<(String, String)> = page
                .iter()
                .filter(|item| match (text_of(item, "version_tag"), text_of(item, "base_tag")) {
                    (Some(tag), Some(base)) => tag != current && base != current,
                    _ => false, // not ours: never touched
                })
                .filter_map(key_of)
                .collect();
            if doomed.is_empty() {
                continue;
            }
            // Once the pointer holds another tag, the new owner cleans up.
            if self.get_pointer(period).await?.as_ref().map(|p| p.tag.as_str()) != Some(current) {
                break;
            }
            deleted += doomed.len();
            self.delete_keys(doomed).await?;
        }
        if deleted > 0 {
            tracing::debug!(table = %self.table, %period, deleted, "old versions removed");
        }
        Ok(deleted)
    }

    async fn periods_async(&self) -> Result<Vec<PeriodRecord>> {
        let items = self.query_all(self.partition_query(PERIOD_PARTITION, &format!("{CURRENT}#"))).await?;
        let mut records = items
            .iter()
            .map(|item| {
                decode_pointer(item).map(|p| p.record).map_err(|e| {
                    let (pk, sk) = key_of(item).unwrap_or_default();
                    self.corrupt(format!("pointer {pk} / {sk} is unreadable: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        records.sort_by_key(|r| r.period);
        Ok(records)
    }
}

#[async_trait::async_trait]
impl CostStore for DynamoStore {
    fn describe(&self) -> String {
        format!("{SCHEME}{}", self.table)
    }

    async fn period(&self, period: BillingPeriod) -> Result<Option<PeriodRecord>> {
        Ok(self.get_pointer(period).await?.map(|p| p.record))
    }

    async fn periods(&self) -> Result<Vec<PeriodRecord>> {
        self.periods_async().await
    }

    async fn replace_split_period(
        &mut self,
        record: &PeriodRecord,
        lines: &[CostLine],
        pool: &[CostLine],
        force: bool,
    ) -> Result<ReplaceOutcome> {
        if let Some(line) = lines.iter().chain(pool).find(|l| l.period != record.period) {
            return Err(Error::Internal(format!("line of {} written into period {}", line.period, record.period)));
        }
        self.replace_async(record, Split { lines, pool }, force).await
    }

    /// Streamed: items sent as the chunks come, checked by per-partition tallies
    /// (`dynamodb/stream.rs`), so the period's lines are never held.
    async fn replace_split_period_chunks(
        &mut self,
        record: &PeriodRecord,
        chunks: &mut dyn crate::LineChunks,
        force: bool,
    ) -> Result<ReplaceOutcome> {
        self.replace_chunks_async(record, chunks, force).await
    }

    async fn pool_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        self.pool_lines_async(period).await
    }

    async fn cost_lines(&self, period: BillingPeriod) -> Result<Vec<CostLine>> {
        self.cost_lines_async(period).await
    }

    async fn cost_lines_where(&self, period: BillingPeriod, filter: &LineFilter) -> Result<Vec<CostLine>> {
        self.partition_lines_async(period, filter).await
    }
}
