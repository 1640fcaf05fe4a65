//! Shared-cost attribution inside `process`: usage evidence → drivers; shared-pool lines → tenants.
//!
//! The math lives in the pure `curflow-attribution` crate (rules, share policies, the exact
//! largest-remainder split); this module does the I/O (evidence files, rules and assignment files)
//! and converts between the pipeline's cost lines and the crate's types. Money measures are split
//! at [`MONEY_SCALE`], the usage amount at [`QUANTITY_SCALE`], both with the same weights.
//! Conservation (direct + attributed + unattributed = input, per measure and currency) is checked
//! for the whole period before anything is written.

pub mod cloudwatch;
mod columns;
mod grain;
pub mod inventory;
pub mod metrics;
pub mod s3_prefix;
pub mod sources;
pub mod subscription;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use curflow_attribution::evidence::agent::{AgentAggregator, AgentConfig, read_session_map};
use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
use curflow_attribution::evidence::logs::LogAggregator;
use curflow_attribution::evidence::s3::{PrefixMap, S3AccessAggregator};
use curflow_attribution::evidence::{ErrorBudget, SourceReport};
use curflow_attribution::{
    AllocateError, Allocator, Assignments, Coverage, DirectCosts, DriverTotals, LineAllocation, Route, Rules,
    SharedLine, TenantId, UNATTRIBUTED, WeightContext, default_rules,
};
use rust_decimal::Decimal;
use serde::Serialize;

use self::inventory::InventoryManifest;
pub use self::sources::ReadProgress;
use self::sources::{CloudWatchSource, Counted, EvidenceSource, FileKind, classify, files_under, open, open_counted};
use crate::aggregate::{Amounts, Attribution, CostLine, MONEY_MEASURES};
use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::money::{MONEY_SCALE, QUANTITY_SCALE};
use curflow_model::{Name, Names};

/// Where attribution inputs come from (`curflow process --evidence/--assignments/--rules/...`).
#[derive(Debug, Clone, Default)]
pub struct AttributionOptions {
    /// Local files or directories (plain or gzip; classified by content) and CloudWatch Logs
    /// log groups: Lambda REPORT/platform.report lines, the application's structured lines carrying
    /// the tenant, DynamoDB ConsumedCapacity lines, agent runtime usage records, S3 server access
    /// logs and S3 Inventory manifests.
    pub evidence: Vec<EvidenceSource>,
    /// resource id/ARN (glob) → tenant table.
    pub assignments: Option<PathBuf>,
    /// Rules TOML; default: the shipped rules (`attribution/rules/default.toml`).
    pub rules: Option<PathBuf>,
    /// JSON key naming the tenant in application logs (the tag key by default).
    pub tenant_key: String,
    /// S3 key prefix → tenant map (TOML); required for S3 inventory and access-log evidence.
    pub s3_prefixes: Option<PathBuf>,
    /// Agent runtime session → tenant map (CSV `session_id,tenant`); enables agent usage records.
    pub agent_sessions: Option<PathBuf>,
    /// UTC days read from CloudWatch Logs (the billing periods processed); default: the last 31 days.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// Largest tolerated share of malformed lines per source (default 1 %).
    pub max_malformed_ratio: Option<Decimal>,
    /// Where the bytes read are counted as they are read (a progress bar); a private counter
    /// otherwise. [`EvidenceReport::bytes`] has the total either way.
    pub progress: Option<ReadProgress>,
    pub aws: AwsSettings,
}

/// What was read, for the run summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceReport {
    pub sources: Vec<SourceReport>,
    /// Bytes read: files as stored (compressed or not), CloudWatch Logs messages.
    pub bytes: u64,
    pub lambda_invocations_joined: u64,
    pub lambda_invocations_without_tenant: u64,
    pub lambda_duplicate_reports: u64,
    pub dynamodb_requests: u64,
    pub agent_records: u64,
    pub s3_inventory_snapshots: u64,
    pub s3_objects: u64,
    pub s3_unmapped_objects: u64,
    pub s3_requests: u64,
    pub s3_unmapped_requests: u64,
    /// CloudWatch metric streams with a tenant, data points summed, API requests made.
    pub metric_streams: u64,
    pub metric_data_points: u64,
    pub metric_requests: u64,
    pub rules_source: String,
}

/// Loaded evidence, rules and assignments.
pub struct AttributionInputs {
    rules: Rules,
    assignments: Assignments,
    drivers: DriverTotals,
    /// Days the usage ledger does not cover yet, with the reason naming the missing sources: a
    /// shared line of such a day whose rule splits by a usage driver stays unattributed with it,
    /// rather than split by the days' partial evidence (never a silent zero for a missing feed).
    uncovered: BTreeMap<NaiveDate, String>,
    pub report: EvidenceReport,
}

fn evidence_error(source: &str, e: impl std::fmt::Display) -> Error {
    Error::Evidence { path: PathBuf::from(source), reason: e.to_string() }
}

fn config_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config { source_name: path.display().to_string(), reason: e.to_string() }
}

impl AttributionInputs {
    /// What the split depends on, as deterministic text for the period's input fingerprint:
    /// the rules, the assignments and the usage totals (ordered collections, so their `Debug` text is stable for equal inputs).
    pub fn fingerprint_material(&self) -> String {
        format!("{:?}\0{:?}\0{:?}", self.rules, self.assignments, self.drivers)
    }

    /// The usage totals read: (driver, day, tenant) → quantity.
    pub fn drivers(&self) -> &DriverTotals {
        &self.drivers
    }

    /// The rules and assignments of `options` with usage totals kept elsewhere (the usage ledger)
    /// instead of evidence read now; `options.evidence` is not read.
    pub fn with_drivers(options: &AttributionOptions, drivers: DriverTotals) -> Result<Self> {
        let (rules, rules_source) = load_rules(options.rules.as_deref(), &options.aws)?;
        let assignments = load_assignments(options.assignments.as_deref(), &options.aws)?;
        let report = EvidenceReport { rules_source, ..EvidenceReport::default() };
        Ok(Self { rules, assignments, drivers, uncovered: BTreeMap::new(), report })
    }

    /// Marks days the usage ledger does not cover: day → the reason its driver-split lines keep.
    pub fn with_uncovered(mut self, uncovered: BTreeMap<NaiveDate, String>) -> Self {
        self.uncovered = uncovered;
        self
    }

    /// Why `line` (a shared line) cannot be split yet: its day is not covered by the ledger and
    /// its rule splits by a usage driver (assigned resources and fallback rules need no evidence).
    fn waiting_for_evidence(&self, line: &SharedLine) -> Option<&str> {
        let reason = self.uncovered.get(&line.day)?;
        if self.assignments.lookup(&line.resource_id).is_some() {
            return None;
        }
        let rule = self.rules.route(line)?;
        rule.policy.driver().map(|_| reason.as_str())
    }

    /// Reads rules, assignments and every evidence source (streamed; memory holds totals only).
    pub fn load(options: &AttributionOptions) -> Result<Self> {
        let (rules, rules_source) = load_rules(options.rules.as_deref(), &options.aws)?;
        let assignments = load_assignments(options.assignments.as_deref(), &options.aws)?;
        let prefixes = load_prefixes(options.s3_prefixes.as_deref(), &options.aws)?;
        let logs = log_aggregator(options)?;
        let empty_map = PrefixMap::new();
        let access = S3AccessAggregator::new(prefixes.as_ref().unwrap_or(&empty_map));
        let mut budget = ErrorBudget::default();
        if let Some(ratio) = options.max_malformed_ratio {
            budget.max_ratio = ratio;
        }
        let progress = options.progress.clone().unwrap_or_default();
        let mut reader = EvidenceReader {
            logs,
            access,
            prefixes: prefixes.as_ref(),
            budget,
            report: EvidenceReport { rules_source, ..EvidenceReport::default() },
            drivers: DriverTotals::new(),
            progress: progress.clone(),
            bytes_before: progress.bytes(),
        };
        for source in &options.evidence {
            match source {
                EvidenceSource::Path(root) => reader.read_path(root)?,
                EvidenceSource::CloudWatch(group) => reader.read_log_group(source, group, options)?,
                EvidenceSource::S3 { bucket, prefix } => {
                    let since = options.window.map(|(from, _)| s3_prefix::written_since(from));
                    let copy = s3_prefix::download(bucket, prefix, &options.aws, since)?;
                    reader.read_path(copy.path())?;
                }
                EvidenceSource::Metrics(metric) => reader.read_metrics(metric, options)?,
            }
        }
        let (drivers, report) = reader.finish()?;
        Ok(Self { rules, assignments, drivers, uncovered: BTreeMap::new(), report })
    }
}

/// The rules of `--rules`, or the shipped default rules; with a description of where they came
/// from for the run summary.
fn load_rules(path: Option<&Path>, aws: &AwsSettings) -> Result<(Rules, String)> {
    Ok(match path {
        Some(path) => {
            let file = s3_prefix::SettingsFile::fetch(path, aws)?;
            let text = std::fs::read_to_string(file.path()).map_err(|e| Error::io(path, e))?;
            let rules = Rules::from_toml(&text, &path.display().to_string()).map_err(|e| config_error(path, e))?;
            (rules, path.display().to_string())
        }
        None => (default_rules(), "shipped default rules".to_string()),
    })
}

/// The resource → tenant assignments of `--assignments` (none without it).
fn load_assignments(path: Option<&Path>, aws: &AwsSettings) -> Result<Assignments> {
    match path {
        Some(path) => {
            let file = s3_prefix::SettingsFile::fetch(path, aws)?;
            Assignments::read(&path.display().to_string(), open(file.path())?).map_err(|e| config_error(path, e))
        }
        None => Ok(Assignments::new()),
    }
}

/// The S3 prefix → tenant map of `--s3-prefixes`; `None` without it (S3 evidence is then refused).
fn load_prefixes(path: Option<&Path>, aws: &AwsSettings) -> Result<Option<PrefixMap>> {
    match path {
        Some(path) => {
            let file = s3_prefix::SettingsFile::fetch(path, aws)?;
            let text = std::fs::read_to_string(file.path()).map_err(|e| Error::io(path, e))?;
            Ok(Some(PrefixMap::from_toml(&text, &path.display().to_string()).map_err(|e| config_error(path, e))?))
        }
        None => Ok(None),
    }
}

/// One aggregator for every log-based driver, as one pass per file feeds them all (a log group
/// mixes the kinds of lines); agent usage records are read only with a session map.
fn log_aggregator(options: &AttributionOptions) -> Result<LogAggregator> {
    let keys = vec![options.tenant_key.clone()];
    let mut logs = LogAggregator::new(
        LambdaAggregator::new(LambdaConfig { tenant_keys: keys.clone(), ..LambdaConfig::default() }),
        DynamoAggregator::new(DynamoConfig { tenant_keys: keys, tables: None }),
    );
    if let Some(path) = &options.agent_sessions {
        let file = s3_prefix::SettingsFile::fetch(path, &options.aws)?;
        let map =
            read_session_map(&path.display().to_string(), open(file.path())?).map_err(|e| config_error(path, e))?;
        logs = logs.with_agent(AgentAggregator::new(AgentConfig::new(map)));
    }
    Ok(logs)
}

/// The UTC days API sources are read for: `--window`, default the last 31 days.
fn window(options: &AttributionOptions) -> (NaiveDate, NaiveDate) {
    options.window.unwrap_or_else(|| {
        let today = chrono::Utc::now().date_naive();
        (today - chrono::Days::new(31), today)
    })
}

/// S3 evidence without `--s3-prefixes`: its keys cannot be mapped to tenants.
fn need_prefixes(what: &str, file: &Path) -> Error {
    Error::Evidence {
        path: file.to_path_buf(),
        reason: format!("{what} needs an S3 prefix → tenant map (--s3-prefixes FILE)"),
    }
}

/// Usage totals that cannot be added up (an internal limit, not bad input).
fn totals_error(e: String) -> Error {
    Error::Internal(format!("evidence totals: {e}"))
}

/// The aggregators and totals of one [`AttributionInputs::load`], fed source by source, so each
/// kind of source is read by its own method.
struct EvidenceReader<'m> {
    logs: LogAggregator,
    access: S3AccessAggregator<'m>,
    /// `None` without `--s3-prefixes`: S3 evidence is then an error.
    prefixes: Option<&'m PrefixMap>,
    budget: ErrorBudget,
    report: EvidenceReport,
    drivers: DriverTotals,
    progress: ReadProgress,
    /// `progress` when reading began.
    bytes_before: u64,
}

impl EvidenceReader<'_> {
    /// Reads every file under `root`, each by its kind.
    fn read_path(&mut self, root: &Path) -> Result<()> {
        let mut files = Vec::new();
        files_under(root, &mut files)?;
        let kinds = files.iter().map(|f| classify(f).map(|k| (f, k))).collect::<Result<Vec<_>>>()?;
        let through_manifest = self.read_inventories(&kinds)?;
        for (file, kind) in kinds {
            if file.canonicalize().is_ok_and(|c| through_manifest.contains(&c)) {
                continue;
            }
            self.read_file(file, kind)?;
        }
        Ok(())
    }

    /// Aggregates the S3 Inventory snapshots among `kinds`; returns their data files (canonical
    /// paths), as inventory data files are read through their manifest, not as logs.
    fn read_inventories(&mut self, kinds: &[(&PathBuf, FileKind)]) -> Result<BTreeSet<PathBuf>> {
        let mut through_manifest = BTreeSet::new();
        let mut manifests = Vec::new();
        for (file, _) in kinds.iter().filter(|(_, k)| *k == FileKind::InventoryManifest) {
            let m = InventoryManifest::read(file)?;
            through_manifest.extend(m.data_files.iter().filter_map(|p| p.canonicalize().ok()));
            manifests.push(m);
        }
        for m in &manifests {
            let map = self.prefixes.ok_or_else(|| need_prefixes("S3 Inventory", &m.path))?;
            let (totals, stats, reports) = m.aggregate(map, &self.budget)?;
            self.drivers.merge(&totals).map_err(|e| totals_error(e.to_string()))?;
            self.report.s3_inventory_snapshots += 1;
            self.report.s3_objects += stats.objects;
            self.report.s3_unmapped_objects += stats.unmapped_objects;
            self.report.sources.extend(reports);
        }
        Ok(through_manifest)
    }

    /// Reads one local file of `kind` (inventory manifests are read by
    /// [`EvidenceReader::read_inventories`]).
    fn read_file(&mut self, file: &Path, kind: FileKind) -> Result<()> {
        let name = file.display().to_string();
        match kind {
            FileKind::Log => {
                let read = self.logs.read(&name, open_counted(file, &self.progress)?, &self.budget);
                self.report.sources.push(read.map_err(|e| evidence_error(&name, e))?);
            }
            FileKind::SubscriptionPayload => {
                let payloads = subscription::PayloadLines::new(open_counted(file, &self.progress)?);
                let read = self.logs.read(&name, std::io::BufReader::new(payloads), &self.budget);
                self.report.sources.push(read.map_err(|e| evidence_error(&name, e))?);
            }
            FileKind::S3AccessLog => {
                if self.prefixes.is_none() {
                    return Err(need_prefixes("S3 server access logs", file));
                }
                let read = self.access.read(&name, open_counted(file, &self.progress)?, &self.budget);
                self.report.sources.push(read.map_err(|e| evidence_error(&name, e))?);
            }
            FileKind::InventoryManifest | FileKind::Skip => {}
        }
        Ok(())
    }

    /// Reads a CloudWatch metric's per-tenant daily totals over `--window` (default: the last 31
    /// days) straight into the drivers.
    fn read_metrics(&mut self, metric: &metrics::MetricSource, options: &AttributionOptions) -> Result<()> {
        let (from, to) = window(options);
        let (totals, report) = metrics::read(metric, from, to, &options.aws)?;
        self.drivers.merge(&totals).map_err(|e| totals_error(e.to_string()))?;
        self.report.metric_streams += report.streams;
        self.report.metric_data_points += report.data_points;
        self.report.metric_requests += report.requests;
        Ok(())
    }

    /// Reads a CloudWatch Logs log group over `--window` (default: the last 31 days).
    fn read_log_group(
        &mut self,
        source: &EvidenceSource,
        group: &CloudWatchSource,
        options: &AttributionOptions,
    ) -> Result<()> {
        let (from, to) = window(options);
        let name = source.to_string();
        let mut reader = cloudwatch::open_log_group(group, from, to, &options.aws);
        let read = self.logs.read(&name, Counted::new(&mut reader, self.progress.clone()), &self.budget);
        reader.finish()?;
        self.report.sources.push(read.map_err(|e| evidence_error(&name, e))?);
        Ok(())
    }

    /// Adds the log and access-log aggregators' totals (final only once every source is read) to
    /// the drivers, and their statistics to the report.
    fn finish(self) -> Result<(DriverTotals, EvidenceReport)> {
        let Self { logs, access, mut report, mut drivers, progress, bytes_before, .. } = self;
        report.bytes = progress.bytes().saturating_sub(bytes_before);
        let (lambda_drivers, lambda_stats) = logs.lambda.finish().map_err(totals_error)?;
        let (dynamo_drivers, dynamo_stats) = logs.dynamo.finish().map_err(totals_error)?;
        let (access_drivers, access_stats) = access.finish();
        for d in [&lambda_drivers, &dynamo_drivers, &access_drivers] {
            drivers.merge(d).map_err(|e| totals_error(e.to_string()))?;
        }
        if let Some(agent) = logs.agent {
            let (agent_drivers, agent_stats) = agent.finish();
            drivers.merge(&agent_drivers).map_err(|e| totals_error(e.to_string()))?;
            report.agent_records = agent_stats.records;
        }
        report.lambda_invocations_joined = lambda_stats.joined;
        report.lambda_invocations_without_tenant = lambda_stats.reports_without_tenant;
        report.lambda_duplicate_reports = lambda_stats.duplicate_reports;
        report.dynamodb_requests = dynamo_stats.requests;
        report.s3_requests = access_stats.requests;
        report.s3_unmapped_requests = access_stats.unmapped_requests;
        Ok((drivers, report))
    }
}

fn money_map(a: &Amounts) -> BTreeMap<String, Decimal> {
    a.money().iter().map(|(name, v)| ((*name).to_string(), *v)).collect()
}

fn shared_line(line: &CostLine, amounts: BTreeMap<String, Decimal>) -> SharedLine {
    SharedLine {
        service: line.key.service.to_string(),
        usage_type: line.key.usage_type.to_string(),
        operation: line.key.operation.to_string(),
        resource_id: line.key.resource_id.to_string(),
        line_item_type: line.key.line_item_type.to_string(),
        day: line.key.usage_date,
        currency: line.key.currency.to_string(),
        amounts,
    }
}

/// The quantities of a line as the usage allocator splits them (one scale, split together).
fn quantity_map(a: &Amounts) -> BTreeMap<String, Decimal> {
    BTreeMap::from([("usage_amount".to_string(), a.usage_amount), ("pricing_quantity".to_string(), a.pricing_quantity)])
}

/// Amounts from a part's money and its quantities ([`quantity_map`]'s names).
fn amounts_from(money: &BTreeMap<String, Decimal>, quantities: &BTreeMap<String, Decimal>, line_items: u64) -> Amounts {
    let get = |m: &str| money.get(m).copied().unwrap_or_default();
    let quantity = |m: &str| quantities.get(m).copied().unwrap_or_default();
    Amounts {
        unblended_cost: get(MONEY_MEASURES[0]),
        net_unblended_cost: get(MONEY_MEASURES[1]),
        amortized_cost: get(MONEY_MEASURES[2]),
        ri_sp_trueup: get(MONEY_MEASURES[3]),
        ri_sp_upfront_fees: get(MONEY_MEASURES[4]),
        list_cost: get(MONEY_MEASURES[5]),
        contracted_cost: get(MONEY_MEASURES[6]),
        usage_amount: quantity("usage_amount"),
        pricing_quantity: quantity("pricing_quantity"),
        line_items,
    }
}

/// Allocation errors cannot come from input here (amounts are already exact at the split scale),
/// so every one is a broken invariant.
fn allocate_error(e: AllocateError) -> Error {
    Error::Internal(format!("attribution: {e}"))
}

/// A period's lines after the split.
#[derive(Debug)]
pub struct Split {
    /// What readers see: tagged lines as they were, tenants' attributed parts summed at the
    /// reader's grain ([`grain`]), and per shared line what stays unattributed (with the reason).
    pub lines: Vec<CostLine>,
    /// The shared-pool lines that were split (every untagged line, as the scan made it), stored
    /// beside `lines` so the period can be split again without the CUR.
    pub pool: Vec<CostLine>,
    pub coverage: Coverage,
    /// Tenant parts the split made (one per shared line and tenant with a part): the rows a
    /// store would hold without the reader's grain (for the run summary and the benches).
    pub parts: u64,
}

/// Splits every shared-pool line of `lines` to tenants. Tagged lines are returned unchanged.
///
/// Direct cost per tenant (the weight of the `weighted_by_direct_cost` fallback) is the tenant's
/// amortized cost of tagged lines in the period. A pool line's `line_items` count stays with its
/// unattributed remainder, or goes to its largest attributed part when nothing remains.
pub fn attribute(lines: Vec<CostLine>, inputs: &AttributionInputs) -> Result<Split> {
    attribute_at(lines, inputs, Grain::Reader)
}

/// The grain of the attributed rows [`attribute_at`] returns.
#[derive(Debug, Clone, Copy)]
pub enum Grain<'a> {
    /// Every tenant's parts summed at the reader's grain ([`grain`]): what is stored.
    Reader,
    /// Only this tenant's parts, one per shared line (per resource): what `attribution explain
    /// --resources` shows. Not conserving (the other tenants' parts are left out): never stored.
    Resources(&'a str),
}

/// [`attribute`] at `grain`.
///
/// Lines a rule splits are gathered and split day by day, rule by rule ([`columns`]): their
/// tenants' parts are summed in place at the reader's grain, not built one by one. Assigned and
/// unmatched lines, and lines whose rule has no weight that day, take [`Splitter::split_line`].
pub fn attribute_at(lines: Vec<CostLine>, inputs: &AttributionInputs, grain: Grain<'_>) -> Result<Split> {
    split_lines(lines, inputs, grain, SplitPath::Columns)
}

/// How [`split_lines`] splits lines a rule routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitPath {
    /// Summed in columns ([`columns`]): what curflow runs.
    Columns,
    /// One [`LineAllocation`] per line: the reference the columns are tested against.
    #[cfg(test)]
    PerLine,
}

fn split_lines(lines: Vec<CostLine>, inputs: &AttributionInputs, grain: Grain<'_>, path: SplitPath) -> Result<Split> {
    let mut out: Vec<CostLine> = Vec::new();
    let end = split_lines_into(lines, inputs, grain, path, &mut |chunk| {
        if out.is_empty() {
            out = chunk;
        } else {
            out.extend(chunk);
        }
        Ok(())
    })?;
    Ok(Split { lines: out, pool: end.pool, coverage: end.coverage, parts: end.parts })
}

/// What a split leaves once its lines went to the sink of [`split_lines_into`].
#[derive(Debug)]
pub struct SplitEnd {
    /// See [`Split::pool`].
    pub pool: Vec<CostLine>,
    pub coverage: Coverage,
    /// See [`Split::parts`].
    pub parts: u64,
}

/// [`attribute`], handing the lines readers see to `sink` as they are made instead of returning
/// them: first the tagged lines (unchanged, in the same vector: nothing is copied), then what
/// stays unattributed of lines split one by one, then the attributed rows a day at a time (the
/// split runs day by day), then the parts of lines split one by one. A 2,000-tenant month's
/// attributed rows number in the millions (tenants × days × the shared lines' services and usage
/// types); a store that writes each chunk as it comes never holds them all.
pub fn attribute_into(
    lines: Vec<CostLine>,
    inputs: &AttributionInputs,
    sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>,
) -> Result<SplitEnd> {
    split_lines_into(lines, inputs, Grain::Reader, SplitPath::Columns, sink)
}

/// [`attribute_into`] over lines that come a chunk at a time, in any order (a period's lines
/// merged from spilled runs): each chunk's tagged lines go to `sink` as the chunk comes, and only
/// the shared lines (and each tenant's direct cost) are kept for the split, which then runs as in
/// [`attribute_into`]. The same rows as [`attribute_into`] over the lines made one `Vec`.
pub fn attribute_stream(
    chunks: impl Iterator<Item = Result<Vec<CostLine>>>,
    inputs: &AttributionInputs,
    sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>,
) -> Result<SplitEnd> {
    let mut tagged = TaggedSummary::default();
    let mut shared = Vec::new();
    for chunk in chunks {
        let mut chunk = chunk?;
        shared.extend(chunk.extract_if(.., |l| l.key.tenant.is_none()));
        tagged.add(&chunk)?;
        if !chunk.is_empty() {
            sink(chunk)?;
        }
    }
    split_shared_into(shared, &tagged, inputs, Grain::Reader, SplitPath::Columns, sink)
}

fn split_lines_into(
    mut lines: Vec<CostLine>,
    inputs: &AttributionInputs,
    grain: Grain<'_>,
    path: SplitPath,
    sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>,
) -> Result<SplitEnd> {
    // The shared lines leave `lines` and the tagged ones stay where they are, in place: the
    // period's lines are not held twice (in an input and an output vector) while the split runs.
    let shared: Vec<CostLine> = lines.extract_if(.., |l| l.key.tenant.is_none()).collect();
    let mut tagged = TaggedSummary::default();
    tagged.add(&lines)?;
    if !lines.is_empty() {
        sink(lines)?;
    }
    split_shared_into(shared, &tagged, inputs, grain, path, sink)
}

/// The split of `shared` (lines without a tenant) once the tagged lines went to `sink`.
fn split_shared_into(
    shared: Vec<CostLine>,
    tagged: &TaggedSummary,
    inputs: &AttributionInputs,
    grain: Grain<'_>,
    path: SplitPath,
    sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>,
) -> Result<SplitEnd> {
    let ids = SplitIds::new(&tagged.tenants, inputs);
    let weights = Weights::of(tagged, inputs, &ids)?;
    let mut s = Splitter::new(ids, &weights, inputs, grain, 0)?;
    let mut routed = Vec::new();
    for line in shared {
        let money_line = shared_line(&line, money_map(&line.amounts));
        if let Some(reason) = inputs.waiting_for_evidence(&money_line) {
            add_unattributed(&mut s.coverage, &money_line)?;
            s.out.push(CostLine { unattributed_reason: Some(reason.to_string()), ..line.clone() });
            s.pool.push(line);
            continue;
        }
        match s.money.route(&money_line) {
            Route::Rule(rule) if path == SplitPath::Columns => {
                routed.push(columns::Routed { line, rule });
            }
            _ => s.split_line(line, &money_line)?,
        }
    }
    // What stays unattributed of the lines above, in their order.
    if !s.out.is_empty() {
        sink(std::mem::take(&mut s.out))?;
    }
    columns::split_routed(&mut s, routed, sink)?;
    s.finish_into(sink)
}

/// Splits `lines` one shared line at a time and hands each line to `f` with the rows its split
/// made, without keeping them: what `export --format focus` streams out as origin and allocated
/// charges. A tagged line comes with no rows; a shared line with its tenants' parts (each with
/// its [`Attribution`]) and its unattributed remainder, which together sum to the line exactly
/// (checked); a line waiting for evidence with one row, itself with the reason.
///
/// Lines are taken day by day (only one day's prepared weights are held) and split by the
/// per-line allocator, the reference the stored split is tested against, so the parts are
/// exactly those summed into the stored rows. Returns the coverage, as [`attribute`] gives it.
pub fn for_each_line_split(
    mut lines: Vec<CostLine>,
    inputs: &AttributionInputs,
    mut f: impl FnMut(&CostLine, &[CostLine]) -> Result<()>,
) -> Result<Coverage> {
    let mut tagged = TaggedSummary::default();
    tagged.add(&lines)?;
    let ids = SplitIds::new(&tagged.tenants, inputs);
    let weights = Weights::of(&tagged, inputs, &ids)?;
    let mut s = Splitter::new(ids, &weights, inputs, Grain::Reader, 0)?;
    lines.sort_by_key(|l| l.key.usage_date);
    let mut day = None;
    for line in &lines {
        if line.key.tenant.is_some() {
            f(line, &[])?;
            continue;
        }
        if day != Some(line.key.usage_date) {
            s.money.forget_prepared();
            s.usage.forget_prepared();
            day = Some(line.key.usage_date);
        }
        let money_line = shared_line(line, money_map(&line.amounts));
        if let Some(reason) = inputs.waiting_for_evidence(&money_line) {
            add_unattributed(&mut s.coverage, &money_line)?;
            f(line, &[CostLine { unattributed_reason: Some(reason.to_string()), ..line.clone() }])?;
            continue;
        }
        let usage_line = shared_line(line, quantity_map(&line.amounts));
        let split = s.money.allocate(&money_line).map_err(allocate_error)?;
        let usage_split = s.usage.allocate(&usage_line).map_err(allocate_error)?;
        s.coverage.add(&money_line, &split).map_err(allocate_error)?;
        f(line, &lines_of(line, &split, &usage_split, &s.ids, &mut s.names)?)?;
    }
    Ok(s.coverage)
}

/// What a split needs of the tagged lines, gathered as they pass: the tenants they name and each
/// one's direct amortized cost (lines not themselves attributed).
#[derive(Default)]
struct TaggedSummary {
    tenants: BTreeSet<Name>,
    direct: BTreeMap<Name, Decimal>,
}

impl TaggedSummary {
    fn add(&mut self, lines: &[CostLine]) -> Result<()> {
        for l in lines {
            let Some(t) = &l.key.tenant else { continue };
            if !self.tenants.contains(t) {
                self.tenants.insert(t.clone());
            }
            if l.attribution.is_none() {
                let slot = match self.direct.get_mut(t) {
                    Some(slot) => slot,
                    None => self.direct.entry(t.clone()).or_default(),
                };
                *slot = crate::aggregate::add_exact(*slot, l.amounts.amortized_cost, || {
                    format!("tenant {t}: the direct amortized_cost")
                })?;
            }
        }
        Ok(())
    }
}

/// What the allocators of one split weigh with: each tagged tenant's direct amortized cost (the
/// `weighted_by_direct_cost` weight) and every tenant known from tags or evidence.
struct Weights {
    direct: DirectCosts,
    tenants: BTreeSet<TenantId>,
}

impl Weights {
    fn of(tagged: &TaggedSummary, inputs: &AttributionInputs, ids: &SplitIds) -> Result<Self> {
        let mut direct: DirectCosts = BTreeMap::new();
        for (t, cost) in &tagged.direct {
            direct.insert(ids.of(t)?, *cost);
        }
        let mut tenants: BTreeSet<TenantId> = direct.keys().cloned().collect();
        tenants.extend(inputs.drivers.iter().map(|(_, _, t, _)| t.clone()));
        Ok(Self { direct, tenants })
    }
}

impl<'i, 'g> Splitter<'i, 'g> {
    /// The allocators over `weights` and empty outputs.
    fn new(
        ids: SplitIds,
        weights: &'i Weights,
        inputs: &'i AttributionInputs,
        grain: Grain<'g>,
        lines: usize,
    ) -> Result<Self> {
        let context = || {
            WeightContext::new(&inputs.drivers, &weights.direct, &weights.tenants)
                .map_err(|e| Error::Internal(e.to_string()))
        };
        Ok(Splitter {
            grain,
            ids,
            money: Allocator::new(&inputs.rules, &inputs.assignments, context()?, MONEY_SCALE),
            usage: Allocator::new(&inputs.rules, &inputs.assignments, context()?, QUANTITY_SCALE),
            coverage: Coverage::default(),
            out: Vec::with_capacity(lines),
            pool: Vec::new(),
            parts: grain::ReaderGrain::default(),
            summed_parts: 0,
            kept: 0,
            names: Names::default(),
        })
    }
}

/// The state of one [`attribute_at`]: the allocators and everything the split has produced.
struct Splitter<'i, 'g> {
    grain: Grain<'g>,
    ids: SplitIds,
    money: Allocator<'i>,
    usage: Allocator<'i>,
    coverage: Coverage,
    /// Tagged lines, and per shared line what stays unattributed; at `Grain::Resources`, also the
    /// tenant's per-line parts.
    out: Vec<CostLine>,
    pool: Vec<CostLine>,
    /// Parts of lines split one by one, summed at the reader's grain.
    parts: grain::ReaderGrain,
    /// Parts summed in columns ([`columns`]; their rows go to `out`).
    summed_parts: u64,
    /// Parts kept at `Grain::Resources`.
    kept: u64,
    names: Names,
}

impl Splitter<'_, '_> {
    /// Splits one shared line with [`Allocator::allocate`] (one [`LineAllocation`] per line).
    fn split_line(&mut self, line: CostLine, money_line: &SharedLine) -> Result<()> {
        let usage_line = shared_line(&line, quantity_map(&line.amounts));
        let split = self.money.allocate(money_line).map_err(allocate_error)?;
        let usage_split = self.usage.allocate(&usage_line).map_err(allocate_error)?;
        self.coverage.add(money_line, &split).map_err(allocate_error)?;
        for row in lines_of(&line, &split, &usage_split, &self.ids, &mut self.names)? {
            match (self.grain, &row.attribution) {
                (_, None) => self.out.push(row),
                (Grain::Reader, Some(_)) => self.parts.add(row)?,
                (Grain::Resources(tenant), Some(_)) if row.key.tenant.as_deref() == Some(tenant) => {
                    self.kept += 1;
                    self.out.push(row);
                }
                (Grain::Resources(_), Some(_)) => {}
            }
        }
        self.pool.push(line);
        Ok(())
    }

    /// Hands the rows made since the last call to `sink`, in [`grain::sort_rows`] order.
    fn flush(&mut self, sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>) -> Result<()> {
        let mut rows = std::mem::take(&mut self.out);
        if rows.is_empty() {
            return Ok(());
        }
        grain::sort_rows(&mut rows);
        sink(rows)
    }

    /// The split's end: the rows still held (the summed per-line parts) go to `sink`, sorted.
    fn finish_into(mut self, sink: &mut dyn FnMut(Vec<CostLine>) -> Result<()>) -> Result<SplitEnd> {
        self.flush(sink)?;
        let Self { pool, coverage, parts, summed_parts, kept, .. } = self;
        let part_count = parts.parts() + summed_parts + kept;
        let mut rows = parts.into_lines();
        if !rows.is_empty() {
            grain::sort_rows(&mut rows);
            sink(rows)?;
        }
        Ok(SplitEnd { pool, coverage, parts: part_count })
    }
}

/// Counts a shared line left unattributed without a split in the coverage (shared in, and
/// unattributed, for each of its measures).
fn add_unattributed(coverage: &mut Coverage, line: &SharedLine) -> Result<()> {
    let currency = coverage.amounts.entry(line.currency.clone()).or_default();
    for (measure, amount) in &line.amounts {
        let slot = currency.entry(measure.clone()).or_default();
        let add = |a: Decimal| {
            crate::aggregate::add_exact(a, *amount, || format!("coverage of {measure} in {}", line.currency))
        };
        slot.shared = add(slot.shared)?;
        slot.unattributed = add(slot.unattributed)?;
    }
    Ok(())
}

/// Tenant tag values as the split's [`TenantId`]s, and back.
///
/// The attribution crate reserves `UNATTRIBUTED` for its pseudo tenant (the part of a split no tenant
/// gets), but a CUR tag may hold that text: such a tagged tenant is a real tenant and must stay one.
/// It takes part in the split under an alias that no tagged or evidence tenant uses
/// (`UNATTRIBUTED~`, with more `~` if needed), and its lines are written under its own id again.
struct SplitIds {
    alias: Option<TenantId>,
}

impl SplitIds {
    fn new(tagged: &BTreeSet<Name>, inputs: &AttributionInputs) -> Self {
        if !tagged.contains(UNATTRIBUTED) {
            return Self { alias: None };
        }
        let evidence: BTreeSet<&str> = inputs.drivers.iter().map(|(_, _, t, _)| t.as_str()).collect();
        let mut alias = format!("{UNATTRIBUTED}~");
        while tagged.contains(alias.as_str()) || evidence.contains(alias.as_str()) {
            alias.push('~');
        }
        Self { alias: TenantId::new(alias).ok() }
    }

    /// The split's id of a tagged tenant.
    fn of(&self, tag: &str) -> Result<TenantId> {
        match &self.alias {
            Some(alias) if tag == UNATTRIBUTED => Ok(alias.clone()),
            _ => TenantId::new(tag).map_err(|e| Error::Argument(format!("tenant tag value {tag:?}: {e}"))),
        }
    }

    /// The tenant tag value of a split's id.
    fn tenant_of<'a>(&self, id: &'a TenantId) -> &'a str {
        match &self.alias {
            Some(alias) if alias == id => UNATTRIBUTED,
            _ => id.as_str(),
        }
    }
}

/// The stored rows of one allocated pool line.
///
/// Money and usage are split separately (different scales) with the same weights, so a tenant can
/// receive a usage part while each of its money parts rounds to zero (or the reverse): every tenant
/// of either split gets a row, and so does an unattributed remainder of either, so both conserve.
fn lines_of(
    line: &CostLine,
    split: &LineAllocation,
    usage_split: &LineAllocation,
    ids: &SplitIds,
    names: &mut Names,
) -> Result<Vec<CostLine>> {
    let usage: BTreeMap<&TenantId, &BTreeMap<String, Decimal>> =
        usage_split.attributed.iter().map(|r| (&r.tenant, &r.amounts)).collect();
    let largest = split
        .attributed
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.quantity.cmp(&b.quantity).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    let in_money: BTreeSet<&TenantId> = split.attributed.iter().map(|r| &r.tenant).collect();
    let usage_only = usage_split.attributed.iter().filter(|r| !in_money.contains(&r.tenant));
    let no_money = BTreeMap::new();
    let parts = split.attributed.iter().map(|r| (r, &r.amounts)).chain(usage_only.map(|r| (r, &no_money)));
    let mut rows = Vec::new();
    for (i, (r, money)) in parts.enumerate() {
        let items = if split.unattributed.is_none() && Some(i) == largest { line.amounts.line_items } else { 0 };
        let mut key = line.key.clone();
        key.tenant = Some(names.get(ids.tenant_of(&r.tenant)));
        rows.push(CostLine {
            period: line.period,
            key,
            amounts: amounts_from(money, usage.get(&r.tenant).copied().unwrap_or(&no_money), items),
            attribution: Some(Box::new(Attribution {
                rule: names.get(&r.rule),
                basis: names.get(r.basis.as_str()),
                driver: r.driver.map(|d| names.get(d.as_str())),
                quantity: r.quantity,
                quantity_total: r.quantity_total,
                share: r.share,
            })),
            unattributed_reason: None,
        });
    }
    let usage_rest = usage_split.unattributed.as_ref();
    match (&split.unattributed, usage_rest) {
        (Some(rest), _) => {
            let u = usage_rest.map_or(&no_money, |u| &u.amounts);
            rows.push(CostLine {
                period: line.period,
                key: line.key.clone(),
                amounts: amounts_from(&rest.amounts, u, line.amounts.line_items),
                attribution: None,
                unattributed_reason: Some(rest.reason.to_string()),
            });
        }
        (None, Some(u)) => rows.push(CostLine {
            period: line.period,
            key: line.key.clone(),
            amounts: amounts_from(&no_money, &u.amounts, 0),
            attribution: None,
            unattributed_reason: Some(u.reason.to_string()),
        }),
        (None, None) => {}
    }
    // Conservation of this line, every measure (the crate checks money; this checks our mapping).
    let sum = Amounts::sum(rows.iter().map(|r| &r.amounts))?;
    if sum.money() != line.amounts.money()
        || sum.usage_amount != line.amounts.usage_amount
        || sum.pricing_quantity != line.amounts.pricing_quantity
    {
        return Err(Error::Internal(format!(
            "attribution of {:?} does not conserve cost: {sum:?} vs {:?}",
            line.key, line.amounts
        )));
    }
    Ok(rows)
}
