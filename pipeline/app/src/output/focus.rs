//! `curflow export --format focus`: a stored period as FOCUS 1.3 cost-and-usage rows, with
//! curflow's per-tenant split of shared cost in FOCUS's allocation columns.
//!
//! Every stored cost line becomes one **origin charge** (tagged lines as they are, each shared-pool
//! line as the scan made it). Each shared line the split gave to tenants is followed by its
//! **allocated charges**: one per tenant part and one for the unattributed remainder (the usage
//! of unknown tenants), which carry the origin charge's dimensions unchanged and split its summable
//! metrics (`BilledCost`, `EffectiveCost`, `ListCost`, `ContractedCost`, `ConsumedQuantity`,
//! `x_UnblendedCost`, `x_RiSpTrueup`, `x_RiSpUpfrontFees`) exactly: they
//! sum to the origin charge to the last unit. `AllocatedMethodId` is the rule,
//! `AllocatedResourceId` and `AllocatedTags` name the tenant, `AllocatedMethodDetails` is the JSON
//! `{"Elements":[{"AllocatedRatio":r,"UsageUnit":u,"UsageQuantity":q}]}`: the tenant's driver
//! quantity `q` in the driver's unit `u` (the policy's name for even, fixed, direct-cost and
//! assignment splits), and its ratio `r`, the driver weight's share rounded to [`RATIO_DP`]
//! places by largest remainder so that the ratios of one origin charge sum to exactly 1.
//!
//! A reader summing the dataset must take either the origin charges or the allocated charges of
//! an allocated line, never both: rows with a non-null `AllocatedMethodId` are the split of the
//! origin charge just before them (curflow itself skips them when it reads a FOCUS file).
//!
//! The parts are recomputed with the per-line allocator from the stored pool and the inputs the
//! stored split was made from (the caller checks the fingerprint), so they are exactly the parts
//! the stored rows sum. Lines are streamed to the writer in batches of [`BATCH_ROWS`] rows; the
//! file is written next to its target and renamed into place when complete.
//!
//! Columns ([`FOCUS_COLUMNS`]): only those curflow can fill truthfully from what it stores.
//! `ListCost` is the list cost curflow stored: `pricing/publicOnDemandCost` of a CUR (0 on rows
//! the report leaves empty: tax, credits, fees, negations), `ListCost` of a FOCUS input.
//! `ContractedCost` is the contracted cost curflow stored: `ContractedCost` of a FOCUS input,
//! derived for a CUR (`curflow_model::measures::cur_contracted_cost`).
//! `ConsumedQuantity`/`ConsumedUnit` are the usage amount of consumption lines in the report's
//! pricing unit (`pricing/unit`), null on other charge categories and on lines without a unit.
//! `PricingQuantity` is the line's pricing quantity (`Amounts::pricing_quantity`: every row's
//! `lineItem/UsageAmount`, as AWS's own FOCUS export fills it), set on every `Usage` and
//! `Purchase` charge (FOCUS: MUST NOT be null there; the hours of an RI or Savings Plan fee, the
//! covered usage of an SP negation), null on tax (MUST) and on credits and adjustments (MAY);
//! `PricingUnit` is the line's unit, or `Units` (FOCUS's count unit) where the report gives none.
//! Lines stored before schema v14 carry their usage amount as pricing quantity (0 on fees) until
//! their month is processed again. `BillingAccountId` is the payer account, or the usage account when the
//! report names no payer (a standalone account pays its own bill), or `unknown`;
//! `ProviderName` is the report's (`AWS` for a CUR); `PublisherName` is the seller of record
//! (`lineItem/LegalEntity`) and `InvoiceIssuerName` the invoicing entity (`bill/InvoicingEntity`),
//! each the provider's name when the report has no such column. `InvoiceId` is `bill/InvoiceId`
//! (null until AWS issues the invoice). `ChargeFrequency` follows the line's type
//! ([`charge_frequency`]). The measures FOCUS has no column for are curflow's extensions:
//! `x_UnblendedCost` (`BilledCost` is the net unblended), `x_RiSpTrueup` and `x_RiSpUpfrontFees`
//! (the commitment-discount columns are not emitted: curflow does not store which commitment a
//! line belongs to, so a reader cannot tell upfront payments from FOCUS columns alone). Curflow
//! reading its own export back takes these three from there, so per tenant every measure read
//! back is the one stored.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, MapBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use chrono::{NaiveDate, NaiveTime};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rust_decimal::Decimal;

use crate::aggregate::CostLine;
use crate::attribute::{AttributionInputs, for_each_line_split};
use crate::error::{Error, Result};
use crate::line_item::LineItemKind;
use crate::money::{MONEY_SCALE, QUANTITY_SCALE, Units};
use crate::period::BillingPeriod;
use curflow_attribution::{Split as Parts, TenantId};

/// The FOCUS version the file follows.
pub const FOCUS_VERSION: &str = "1.3";

/// `ProviderName` of lines read from a CUR: AWS writes its reports of itself (AWS's own FOCUS
/// export writes `AWS`).
pub const CUR_PROVIDER: &str = "AWS";

/// Rows per record batch (and per write to the encoder).
pub const BATCH_ROWS: usize = 65_536;

/// Decimal places of `AllocatedRatio`.
pub const RATIO_DP: u32 = 15;

/// The file's columns in order, with their FOCUS type and when they are null.
pub const FOCUS_COLUMNS: [(&str, &str); 42] = [
    ("BilledCost", "decimal(38, 12): curflow's net unblended cost"),
    ("EffectiveCost", "decimal(38, 12): curflow's amortized cost"),
    ("ListCost", "decimal(38, 12): curflow's list cost (public on-demand; 0 where the CUR has none)"),
    ("ContractedCost", "decimal(38, 12): curflow's contracted cost"),
    ("BillingCurrency", "string"),
    ("BillingPeriodStart", "timestamp UTC (first day of the month, inclusive)"),
    ("BillingPeriodEnd", "timestamp UTC (first day of the next month, exclusive)"),
    ("ChargePeriodStart", "timestamp UTC (the usage day, inclusive)"),
    ("ChargePeriodEnd", "timestamp UTC (the next day, exclusive)"),
    ("ChargeCategory", "string: Usage | Purchase | Tax | Credit | Adjustment"),
    ("ChargeClass", "string, always null (curflow emits no corrections of past periods)"),
    ("ChargeDescription", "string"),
    ("ChargeFrequency", "string: One-Time | Recurring | Usage-Based (see `charge_frequency`)"),
    ("ConsumedQuantity", "decimal(38, 10), null unless ChargeCategory is Usage and the unit is known"),
    ("ConsumedUnit", "string, null exactly when ConsumedQuantity is"),
    ("PricingQuantity", "decimal(38, 10): every row's usage amount; null unless ChargeCategory is Usage or Purchase"),
    ("PricingUnit", "string: the usage unit, `Units` where the report has none; null exactly when PricingQuantity is"),
    ("ServiceName", "string (the AWS service code)"),
    ("ServiceCategory", "string, one of FOCUS's service categories"),
    ("ResourceId", "string, null when the line has none"),
    ("RegionId", "string, null for global charges"),
    ("SubAccountId", "string, null when the report has no usage account"),
    ("SubAccountName", "string, null when the report has no account name"),
    ("BillingAccountId", "string: the payer account, else the usage account, else `unknown`"),
    ("BillingAccountName", "string, null when the report has no payer account name"),
    ("ProviderName", "string: the report's provider (`AWS` for a CUR)"),
    ("PublisherName", "string: the seller of record (lineItem/LegalEntity), else the provider"),
    ("InvoiceIssuerName", "string: the invoicing entity (bill/InvoicingEntity), else the provider"),
    ("InvoiceId", "string: bill/InvoiceId; null until the invoice is issued"),
    ("Tags", "map<string, string> in Parquet, JSON object text in CSV: the tenant tag; null on shared lines"),
    ("AllocatedMethodId", "string: the attribution rule; null on origin charges"),
    ("AllocatedMethodDetails", "JSON text: Elements[AllocatedRatio, UsageUnit, UsageQuantity]; null on origin charges"),
    ("AllocatedResourceId", "string: the tenant; null on origin charges and the unattributed remainder"),
    ("AllocatedTags", "as Tags: the tenant tag; null where AllocatedResourceId is"),
    ("x_ServiceCode", "string"),
    ("x_UsageType", "string"),
    ("x_Operation", "string, null when empty"),
    ("x_LineItemType", "string: the CUR line-item type (or FOCUS charge category) curflow stored"),
    ("x_UnblendedCost", "decimal(38, 12)"),
    ("x_RiSpTrueup", "decimal(38, 12): curflow's RI/SP true-up"),
    ("x_RiSpUpfrontFees", "decimal(38, 12): curflow's RI/SP upfront fees"),
    ("x_UnattributedReason", "string: why (part of) a shared line stays unattributed"),
];

/// Which file format `export --format focus` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FocusFile {
    Parquet,
    Csv,
}

/// What [`write_focus`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FocusSummary {
    pub origin_charges: u64,
    pub allocated_charges: u64,
    /// Origin charges that have allocated charges.
    pub allocated_origins: u64,
    pub bytes: u64,
}

/// Where the period's rows come from.
pub enum FocusSource<'a> {
    /// The period as stored, without allocation (it was never attributed).
    Stored(&'a [CostLine]),
    /// The stored tagged lines and shared pool, split again with `inputs` (those the stored split
    /// was made from).
    Split { lines: Vec<CostLine>, inputs: &'a AttributionInputs },
}

/// Writes `period` from `source` to `path` as FOCUS (see the module docs). `tag_key` is the tenant
/// tag's key in `Tags` and `AllocatedTags`.
pub fn write_focus(
    source: FocusSource<'_>,
    period: BillingPeriod,
    tag_key: &str,
    file: FocusFile,
    path: &Path,
) -> Result<FocusSummary> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".curflow-focus-").tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let out = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
    let mut sink = match file {
        FocusFile::Parquet => Sink::parquet(out, path)?,
        FocusFile::Csv => Sink::csv(out, path)?,
    };
    let mut rows = Rows::new(period, tag_key);
    let mut summary = FocusSummary::default();
    let mut emit = |origin: &CostLine, parts: &[CostLine], rows: &mut Rows, sink: &mut Sink| -> Result<()> {
        let allocated = parts.iter().any(|p| p.attribution.is_some());
        let reason = match parts {
            [only] if !allocated => only.unattributed_reason.as_deref(),
            _ => origin.unattributed_reason.as_deref(),
        };
        rows.origin(origin, reason)?;
        summary.origin_charges += 1;
        if allocated {
            summary.allocated_origins += 1;
            let quantities = part_quantities(parts)?;
            let ratios = ratios(&quantities)?;
            for ((part, quantity), ratio) in parts.iter().zip(quantities).zip(ratios) {
                rows.allocated(origin, part, quantity, ratio)?;
                summary.allocated_charges += 1;
            }
        }
        if rows.len() >= BATCH_ROWS {
            sink.write(rows.take(), path)?;
        }
        Ok(())
    };
    match source {
        FocusSource::Stored(lines) => {
            for line in lines {
                emit(line, &[], &mut rows, &mut sink)?;
            }
        }
        FocusSource::Split { lines, inputs } => {
            for_each_line_split(lines, inputs, |origin, parts| emit(origin, parts, &mut rows, &mut sink))?;
        }
    }
    sink.write(rows.take(), path)?;
    sink.finish(path)?;
    summary.bytes = tmp.as_file().metadata().map_err(|e| Error::io(tmp.path(), e))?.len();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(summary)
}

/// Each part's `AllocatedRatio`: its driver weight (the tenant's quantity; the remainder's is
/// what the tenants' leave of the total) over the total, rounded by largest remainder so the
/// parts of one origin charge sum to exactly 1.
fn ratios(weights: &[Decimal]) -> Result<Vec<Decimal>> {
    let keyed: Vec<(TenantId, Decimal)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| TenantId::new(format!("part{i:09}")).map(|id| (id, *w)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Internal(format!("FOCUS ratio keys: {e}")))?;
    let split = curflow_attribution::split(Decimal::ONE, &keyed, RATIO_DP)
        .map_err(|e| Error::Internal(format!("AllocatedRatio over {weights:?}: {e}")))?;
    let mut out = vec![Decimal::ZERO; weights.len()];
    match split {
        Parts::Parts(ratios) => {
            for (id, r) in ratios {
                let i: usize = id
                    .as_str()
                    .trim_start_matches("part")
                    .parse()
                    .map_err(|_| Error::Internal(format!("FOCUS ratio key {}", id.as_str())))?;
                if let Some(slot) = out.get_mut(i) {
                    *slot = r;
                }
            }
        }
        // Every part of an allocated line has a positive weight; without one, the whole line
        // goes to the remainder.
        Parts::NoDriver => {
            if let Some(last) = out.last_mut() {
                *last = Decimal::ONE;
            }
        }
    }
    Ok(out)
}

/// The driver quantity of each part: the tenant's own, and for the unattributed remainder the
/// total less the tenants' (zero when nothing is left).
fn part_quantities(parts: &[CostLine]) -> Result<Vec<Decimal>> {
    let total = parts.iter().find_map(|p| p.attribution.as_ref().map(|a| a.quantity_total)).unwrap_or_default();
    let mut tenants = Decimal::ZERO;
    for a in parts.iter().filter_map(|p| p.attribution.as_ref()) {
        tenants = crate::aggregate::add_exact(tenants, a.quantity, || "the tenants' driver quantity".to_string())?;
    }
    let rest = crate::money::exact_sub(total, tenants).filter(|r| !r.is_sign_negative()).unwrap_or(Decimal::ZERO);
    Ok(parts.iter().map(|p| p.attribution.as_ref().map_or(rest, |a| a.quantity)).collect())
}

/// FOCUS `ChargeCategory` of a stored line-item type (a FOCUS category read from a FOCUS file is
/// kept as it is).
pub fn charge_category(line_item_type: &str) -> &'static str {
    match line_item_type {
        "Usage" => return "Usage",
        "Purchase" => return "Purchase",
        "Tax" => return "Tax",
        "Credit" => return "Credit",
        "Adjustment" => return "Adjustment",
        _ => {}
    }
    match LineItemKind::from_type_name(line_item_type) {
        LineItemKind::Usage
        | LineItemKind::DiscountedUsage
        | LineItemKind::SavingsPlanCoveredUsage
        | LineItemKind::SavingsPlanNegation => "Usage",
        LineItemKind::SavingsPlanRecurringFee
        | LineItemKind::SavingsPlanUpfrontFee
        | LineItemKind::RiFee
        | LineItemKind::Fee
        | LineItemKind::FlatRateSubscription => "Purchase",
        LineItemKind::Tax => "Tax",
        LineItemKind::Credit | LineItemKind::Refund | LineItemKind::Discount => "Credit",
        LineItemKind::Other => "Adjustment",
    }
}

/// FOCUS `ChargeFrequency` of a stored line: purchases are `One-Time` when they are upfront
/// commitment fees (a Savings Plan's upfront fee, an RI's upfront `Fee`: the line has upfront
/// fees) and `Recurring` otherwise (RI and Savings Plan monthly fees, subscriptions, support);
/// usage is `Usage-Based`; tax comes with every monthly invoice (`Recurring`); credits, refunds
/// and adjustments are `One-Time`. FOCUS forbids `Usage-Based` purchases.
pub fn charge_frequency(line_item_type: &str, upfront_fees: Decimal) -> &'static str {
    match charge_category(line_item_type) {
        "Purchase" if !upfront_fees.is_zero() || line_item_type == "SavingsPlanUpfrontFee" => "One-Time",
        "Purchase" | "Tax" => "Recurring",
        "Usage" => "Usage-Based",
        _ => "One-Time",
    }
}

/// FOCUS `ServiceCategory` of an AWS service code; `Other` for codes not listed.
pub fn service_category(service: &str) -> &'static str {
    match service {
        "AmazonEC2" | "AWSLambda" | "AmazonECS" | "AmazonEKS" | "AWSFargate" | "AmazonLightsail" | "AWSBatch"
        | "ElasticMapReduce" | "AmazonECR" => "Compute",
        "AmazonS3"
        | "AmazonEFS"
        | "AmazonFSx"
        | "AWSBackup"
        | "AmazonS3GlacierDeepArchive"
        | "AmazonGlacier"
        | "AWSStorageGateway" => "Storage",
        "AmazonDynamoDB" | "AmazonRDS" | "AmazonElastiCache" | "AmazonRedshift" | "AmazonDocDB" | "AmazonNeptune"
        | "AmazonMemoryDB" | "AmazonTimestream" => "Databases",
        "AmazonVPC"
        | "AWSDataTransfer"
        | "AmazonCloudFront"
        | "AmazonRoute53"
        | "AWSELB"
        | "AmazonApiGateway"
        | "AWSDirectConnect"
        | "AWSGlobalAccelerator" => "Networking",
        "AmazonCloudWatch"
        | "AWSCloudTrail"
        | "AWSConfig"
        | "AWSCostExplorer"
        | "AWSSystemsManager"
        | "AWSSupportBusiness"
        | "AWSSupportEnterprise" => "Management and Governance",
        "AmazonBedrock"
        | "AmazonSageMaker"
        | "AmazonBedrockAgentCore"
        | "AmazonTextract"
        | "AmazonComprehend"
        | "AmazonRekognition" => "AI and Machine Learning",
        "AmazonAthena"
        | "AWSGlue"
        | "AmazonKinesis"
        | "AmazonKinesisFirehose"
        | "AmazonQuickSight"
        | "AmazonES"
        | "AmazonOpenSearchService"
        | "AmazonMSK" => "Analytics",
        "AWSQueueService" | "AmazonSNS" | "AWSEvents" | "AmazonSWF" | "AWSStepFunctions" | "AmazonMQ" => "Integration",
        "awskms" | "AWSSecretsManager" | "AWSWAF" | "AmazonGuardDuty" | "AWSShield" | "AWSSecurityHub"
        | "AmazonInspector" => "Security",
        "AmazonCognito" | "AWSDirectoryService" | "AWSIAMIdentityCenter" => "Identity",
        "AmazonSES" | "AmazonConnect" | "AmazonChime" | "AmazonWorkSpaces" => "Business Applications",
        "AWSCodeBuild" | "AWSCodePipeline" | "AWSCodeCommit" | "AWSCodeArtifact" | "AWSXRay" => "Developer Tools",
        _ => "Other",
    }
}

/// The values of one allocated charge beyond the origin's.
struct Allocation {
    method: String,
    details: String,
    tenant: Option<String>,
}

/// Rows waiting to be written, column by column (money in integer units).
struct Rows<'k> {
    period: BillingPeriod,
    tag_key: &'k str,
    billed: Vec<i128>,
    effective: Vec<i128>,
    list: Vec<i128>,
    contracted: Vec<i128>,
    unblended: Vec<i128>,
    trueup: Vec<i128>,
    upfront: Vec<i128>,
    consumed: Vec<Option<i128>>,
    pricing: Vec<Option<i128>>,
    /// Index of the origin line each row takes its dimensions from.
    origin: Vec<usize>,
    origins: Vec<CostLine>,
    allocation: Vec<Option<Allocation>>,
    reason: Vec<Option<String>>,
}

impl<'k> Rows<'k> {
    fn new(period: BillingPeriod, tag_key: &'k str) -> Self {
        Self {
            period,
            tag_key,
            billed: Vec::new(),
            effective: Vec::new(),
            list: Vec::new(),
            contracted: Vec::new(),
            unblended: Vec::new(),
            trueup: Vec::new(),
            upfront: Vec::new(),
            consumed: Vec::new(),
            pricing: Vec::new(),
            origin: Vec::new(),
            origins: Vec::new(),
            allocation: Vec::new(),
            reason: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.billed.len()
    }

    /// Empties the buffer into a batch of the same rows.
    fn take(&mut self) -> Rows<'k> {
        let empty = Rows::new(self.period, self.tag_key);
        std::mem::replace(self, empty)
    }

    fn push(&mut self, amounts_of: &CostLine, allocation: Option<Allocation>, reason: Option<String>) -> Result<()> {
        let money = |v: Decimal, what: &str| units(v, MONEY_SCALE, what, amounts_of);
        let a = &amounts_of.amounts;
        self.billed.push(money(a.net_unblended_cost, "net_unblended_cost")?);
        self.effective.push(money(a.amortized_cost, "amortized_cost")?);
        self.list.push(money(a.list_cost, "list_cost")?);
        self.contracted.push(money(a.contracted_cost, "contracted_cost")?);
        self.unblended.push(money(a.unblended_cost, "unblended_cost")?);
        self.trueup.push(money(a.ri_sp_trueup, "ri_sp_trueup")?);
        self.upfront.push(money(a.ri_sp_upfront_fees, "ri_sp_upfront_fees")?);
        let origin = self.origins.len().saturating_sub(1);
        let consumed = match self.origins.last() {
            Some(o) if consumes(o) => Some(units(a.usage_amount, QUANTITY_SCALE, "usage_amount", amounts_of)?),
            _ => None,
        };
        self.consumed.push(consumed);
        let pricing = match self.origins.last() {
            Some(o) if is_priced(o) => Some(units(a.pricing_quantity, QUANTITY_SCALE, "pricing_quantity", amounts_of)?),
            _ => None,
        };
        self.pricing.push(pricing);
        self.origin.push(origin);
        self.allocation.push(allocation);
        self.reason.push(reason);
        Ok(())
    }

    fn origin(&mut self, line: &CostLine, reason: Option<&str>) -> Result<()> {
        self.origins.push(line.clone());
        self.push(line, None, reason.map(str::to_string))
    }

    /// One allocated charge: `part` of `origin`, with its driver `quantity` and `ratio`.
    fn allocated(&mut self, origin: &CostLine, part: &CostLine, quantity: Decimal, ratio: Decimal) -> Result<()> {
        let reason = part.unattributed_reason.as_deref().unwrap_or_default();
        let (method, unit, tenant) = match &part.attribution {
            Some(a) => (
                a.rule.to_string(),
                a.driver.as_ref().map_or_else(|| a.basis.to_string(), ToString::to_string),
                part.key.tenant.as_ref().map(ToString::to_string),
            ),
            None => (
                remainder_rule(reason).unwrap_or("unattributed").to_string(),
                remainder_driver(reason).unwrap_or("unattributed").to_string(),
                None,
            ),
        };
        let number = |d: Decimal| {
            serde_json::value::RawValue::from_string(crate::money::decimal_text(d))
                .map_err(|e| Error::Internal(format!("FOCUS details of {:?}: {e}", origin.key)))
        };
        let details = serde_json::json!({
            "Elements": [{
                "AllocatedRatio": number(ratio)?,
                "UsageUnit": unit,
                "UsageQuantity": number(quantity)?,
            }]
        });
        let details = serde_json::to_string(&details).map_err(|e| Error::Internal(format!("FOCUS details: {e}")))?;
        let reason = part.unattributed_reason.clone();
        self.push(part, Some(Allocation { method, details, tenant }), reason)
    }
}

/// The rule of an unattributed remainder, from its reason text (`usage_without_tenant: rule R,
/// share of D usage whose tenant is unknown`).
fn remainder_rule(reason: &str) -> Option<&str> {
    reason.strip_prefix("usage_without_tenant: rule ")?.split(',').next()
}

/// The driver of an unattributed remainder, from its reason text.
fn remainder_driver(reason: &str) -> Option<&str> {
    reason.split(", share of ").nth(1)?.split(" usage whose tenant").next()
}

/// Whether a line's charges carry `ConsumedQuantity`: usage with a known unit.
fn consumes(line: &CostLine) -> bool {
    charge_category(&line.key.line_item_type) == "Usage" && !line.key.usage_unit.is_empty()
}

/// Whether a line's charges carry `PricingQuantity`: FOCUS requires it on usage and purchases
/// (other than corrections, which curflow does not emit), forbids it on tax.
fn is_priced(line: &CostLine) -> bool {
    matches!(charge_category(&line.key.line_item_type), "Usage" | "Purchase")
}

/// `PricingUnit` of a priced line: its unit, or FOCUS's count unit where the report gives none.
fn pricing_unit(line: &CostLine) -> &str {
    if line.key.usage_unit.is_empty() { COUNT_UNIT } else { &line.key.usage_unit }
}

/// `PricingUnit` of a quantity the report gives no unit for.
pub const COUNT_UNIT: &str = "Units";

/// `v` in integer units at `scale` (exact: stored money has 12 places, usage 10).
fn units(v: Decimal, scale: u32, what: &str, line: &CostLine) -> Result<i128> {
    Units::from_decimal(v, scale)
        .map(Units::value)
        .map_err(|e| Error::Internal(format!("{what} {v} of {:?} is not exact at {scale} places: {e}", line.key)))
}

/// The file being written.
enum Sink {
    Parquet(Box<ArrowWriter<File>>),
    /// The header is written when the sink is made.
    Csv(Box<csv::Writer<File>>),
}

impl Sink {
    fn parquet(file: File, path: &Path) -> Result<Self> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by(format!("curflow {} (FOCUS {FOCUS_VERSION})", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema(), Some(props)).map_err(|e| parquet_error(path, e))?;
        Ok(Sink::Parquet(Box::new(writer)))
    }

    fn csv(file: File, path: &Path) -> Result<Self> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(file);
        w.write_record(FOCUS_COLUMNS.iter().map(|(n, _)| *n)).map_err(|e| csv_error(path, e))?;
        Ok(Sink::Csv(Box::new(w)))
    }

    fn write(&mut self, rows: Rows<'_>, path: &Path) -> Result<()> {
        match self {
            Sink::Parquet(w) => {
                if rows.len() > 0 {
                    w.write(&record_batch(&rows)?).map_err(|e| parquet_error(path, e))?;
                }
            }
            Sink::Csv(w) => write_csv(w, &rows, path)?,
        }
        Ok(())
    }

    fn finish(self, path: &Path) -> Result<()> {
        match self {
            Sink::Parquet(w) => {
                w.close().map_err(|e| parquet_error(path, e))?;
            }
            Sink::Csv(mut w) => w.flush().map_err(|e| Error::io(path, e))?,
        }
        Ok(())
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::io(path, std::io::Error::other(e))
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::io(path, std::io::Error::other(e))
}

/// The map type of `Tags` and `AllocatedTags` in Parquet (as Arrow's `MapBuilder` makes it).
fn tags_type() -> DataType {
    let entries =
        Fields::from(vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

fn schema() -> Arc<Schema> {
    let money = DataType::Decimal128(38, MONEY_SCALE as i8);
    let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = DataType::Utf8;
    let fields: Vec<Field> = FOCUS_COLUMNS
        .iter()
        .map(|(name, _)| {
            let (t, nullable) = match *name {
                "BilledCost" | "EffectiveCost" | "ListCost" | "ContractedCost" | "x_UnblendedCost" | "x_RiSpTrueup"
                | "x_RiSpUpfrontFees" => (money.clone(), false),
                "ConsumedQuantity" | "PricingQuantity" => (DataType::Decimal128(38, QUANTITY_SCALE as i8), true),
                "BillingPeriodStart" | "BillingPeriodEnd" | "ChargePeriodStart" | "ChargePeriodEnd" => {
                    (time.clone(), false)
                }
                "Tags" | "AllocatedTags" => (tags_type(), true),
                "BillingCurrency" | "ChargeCategory" | "ChargeDescription" | "ChargeFrequency" | "ServiceName"
                | "ServiceCategory" | "x_ServiceCode" | "x_UsageType" | "x_LineItemType" | "BillingAccountId"
                | "ProviderName" | "PublisherName" | "InvoiceIssuerName" => (text.clone(), false),
                _ => (text.clone(), true),
            };
            Field::new(*name, t, nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Midnight UTC of `day` in microseconds since the epoch.
fn micros(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// `day` as FOCUS's ISO 8601 UTC text.
fn iso(day: NaiveDate) -> String {
    format!("{}T00:00:00Z", day.format("%Y-%m-%d"))
}

/// The text values of row `i`, in [`FOCUS_COLUMNS`] order but for the money, quantity, time and
/// tag columns (which each sink writes in its own way).
struct Texts<'r> {
    currency: &'r str,
    category: &'static str,
    description: String,
    frequency: &'static str,
    unit: Option<&'r str>,
    pricing_unit: Option<&'r str>,
    service: &'r str,
    service_category: &'static str,
    resource: Option<&'r str>,
    region: Option<&'r str>,
    account: Option<&'r str>,
    account_name: Option<&'r str>,
    billing_account: &'r str,
    billing_account_name: Option<&'r str>,
    provider: &'r str,
    publisher: &'r str,
    issuer: &'r str,
    invoice: Option<&'r str>,
    tenant: Option<&'r str>,
    method: Option<&'r str>,
    details: Option<&'r str>,
    allocated_tenant: Option<&'r str>,
    usage_type: &'r str,
    operation: Option<&'r str>,
    line_item_type: &'r str,
    reason: Option<&'r str>,
    day: NaiveDate,
}

impl Rows<'_> {
    fn texts(&self, i: usize) -> Texts<'_> {
        let o = &self.origins[self.origin[i]];
        let k = &o.key;
        let some = |s: &'_ str| -> bool { !s.is_empty() };
        let opt = |s| if some(s) { Some(s) } else { None };
        let alloc = self.allocation[i].as_ref();
        let mut description =
            [&*k.service, &*k.usage_type].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        if !k.operation.is_empty() {
            description.push_str(&format!(" ({})", k.operation));
        }
        let billing = k.billing.parts();
        let provider = opt(billing.provider).unwrap_or(CUR_PROVIDER);
        let billing_account = opt(billing.account_id).or_else(|| opt(&k.account_id)).unwrap_or("unknown");
        Texts {
            currency: &k.currency,
            category: charge_category(&k.line_item_type),
            description,
            frequency: charge_frequency(&k.line_item_type, o.amounts.ri_sp_upfront_fees),
            unit: self.consumed[i].map(|_| &*k.usage_unit),
            pricing_unit: self.pricing[i].map(|_| pricing_unit(o)),
            service: &k.service,
            service_category: service_category(&k.service),
            resource: opt(&k.resource_id),
            region: opt(&k.region),
            account: opt(&k.account_id),
            account_name: opt(&k.account_name),
            billing_account,
            billing_account_name: opt(billing.account_name),
            provider,
            publisher: opt(billing.publisher).unwrap_or(provider),
            issuer: opt(billing.invoice_issuer).unwrap_or(provider),
            invoice: opt(billing.invoice_id),
            tenant: k.tenant.as_deref(),
            method: alloc.map(|a| a.method.as_str()),
            details: alloc.map(|a| a.details.as_str()),
            allocated_tenant: alloc.and_then(|a| a.tenant.as_deref()),
            usage_type: &k.usage_type,
            operation: opt(&k.operation),
            line_item_type: &k.line_item_type,
            reason: self.reason[i].as_deref(),
            day: k.usage_date,
        }
    }
}

/// A quantity column (`decimal(38, QUANTITY_SCALE)`, nulls where `None`).
fn quantity_array(values: &[Option<i128>], what: &str) -> Result<ArrayRef> {
    let a = Decimal128Array::from_iter(values.iter().copied())
        .with_precision_and_scale(38, QUANTITY_SCALE as i8)
        .map_err(|e| Error::Internal(format!("FOCUS {what}: {e}")))?;
    Ok(Arc::new(a))
}

fn record_batch(rows: &Rows<'_>) -> Result<RecordBatch> {
    let n = rows.len();
    let texts: Vec<Texts<'_>> = (0..n).map(|i| rows.texts(i)).collect();
    let decimal = |values: &[i128], scale: u32| -> Result<ArrayRef> {
        let a = Decimal128Array::from_iter_values(values.iter().copied())
            .with_precision_and_scale(38, scale as i8)
            .map_err(|e| Error::Internal(format!("FOCUS decimal column: {e}")))?;
        Ok(Arc::new(a))
    };
    let text = |f: &dyn Fn(&Texts<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(texts.iter().map(f).collect::<StringArray>())
    };
    let time = |f: &dyn Fn(&Texts<'_>) -> NaiveDate| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter_values(texts.iter().map(|t| micros(f(t)))).with_timezone("UTC"))
    };
    let tags = |f: &dyn Fn(&Texts<'_>) -> Option<String>| -> Result<ArrayRef> {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for t in &texts {
            match f(t) {
                Some(v) => {
                    b.keys().append_value(rows.tag_key);
                    b.values().append_value(v);
                    b.append(true)
                }
                None => b.append(false),
            }
            .map_err(|e| Error::Internal(format!("FOCUS tags: {e}")))?;
        }
        Ok(Arc::new(b.finish()))
    };
    let (start, end) = (rows.period.first_day(), rows.period.next().first_day());
    let owned = |s: Option<&str>| s.map(str::to_string);
    let columns: Vec<ArrayRef> = vec![
        decimal(&rows.billed, MONEY_SCALE)?,
        decimal(&rows.effective, MONEY_SCALE)?,
        decimal(&rows.list, MONEY_SCALE)?,
        decimal(&rows.contracted, MONEY_SCALE)?,
        text(&|t| Some(t.currency.to_string())),
        time(&|_| start),
        time(&|_| end),
        time(&|t| t.day),
        time(&|t| t.day.succ_opt().unwrap_or(t.day)),
        text(&|t| Some(t.category.to_string())),
        text(&|_| None),
        text(&|t| Some(t.description.clone())),
        text(&|t| Some(t.frequency.to_string())),
        quantity_array(&rows.consumed, "ConsumedQuantity")?,
        text(&|t| owned(t.unit)),
        quantity_array(&rows.pricing, "PricingQuantity")?,
        text(&|t| owned(t.pricing_unit)),
        text(&|t| Some(t.service.to_string())),
        text(&|t| Some(t.service_category.to_string())),
        text(&|t| owned(t.resource)),
        text(&|t| owned(t.region)),
        text(&|t| owned(t.account)),
        text(&|t| owned(t.account_name)),
        text(&|t| Some(t.billing_account.to_string())),
        text(&|t| owned(t.billing_account_name)),
        text(&|t| Some(t.provider.to_string())),
        text(&|t| Some(t.publisher.to_string())),
        text(&|t| Some(t.issuer.to_string())),
        text(&|t| owned(t.invoice)),
        tags(&|t| owned(t.tenant))?,
        text(&|t| owned(t.method)),
        text(&|t| owned(t.details)),
        text(&|t| owned(t.allocated_tenant)),
        tags(&|t| owned(t.allocated_tenant))?,
        text(&|t| Some(t.service.to_string())),
        text(&|t| Some(t.usage_type.to_string())),
        text(&|t| owned(t.operation)),
        text(&|t| Some(t.line_item_type.to_string())),
        decimal(&rows.unblended, MONEY_SCALE)?,
        decimal(&rows.trueup, MONEY_SCALE)?,
        decimal(&rows.upfront, MONEY_SCALE)?,
        text(&|t| owned(t.reason)),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::Internal(format!("FOCUS batch: {e}")))
}

/// Writes `rows` as CSV records.
fn write_csv(w: &mut csv::Writer<File>, rows: &Rows<'_>, path: &Path) -> Result<()> {
    let (start, end) = (iso(rows.period.first_day()), iso(rows.period.next().first_day()));
    let dec = |v: i128, scale: u32| Decimal::try_from_i128_with_scale(v, scale).map(crate::money::decimal_text);
    let tags = |tenant: Option<&str>, key: &str| -> Result<String> {
        match tenant {
            Some(t) => serde_json::to_string(&serde_json::json!({ key: t }))
                .map_err(|e| Error::Internal(format!("FOCUS tags: {e}"))),
            None => Ok(String::new()),
        }
    };
    for i in 0..rows.len() {
        let t = rows.texts(i);
        let money = |v: i128| dec(v, MONEY_SCALE).map_err(|e| Error::Internal(format!("FOCUS money: {e}")));
        let quantity = |v: Option<i128>| match v {
            Some(v) => dec(v, QUANTITY_SCALE).map_err(|e| Error::Internal(format!("FOCUS quantity: {e}"))),
            None => Ok(String::new()),
        };
        let o = |s: Option<&str>| s.unwrap_or_default().to_string();
        let record = [
            money(rows.billed[i])?,
            money(rows.effective[i])?,
            money(rows.list[i])?,
            money(rows.contracted[i])?,
            t.currency.to_string(),
            start.clone(),
            end.clone(),
            iso(t.day),
            iso(t.day.succ_opt().unwrap_or(t.day)),
            t.category.to_string(),
            String::new(),
            t.description.clone(),
            t.frequency.to_string(),
            quantity(rows.consumed[i])?,
            o(t.unit),
            quantity(rows.pricing[i])?,
            o(t.pricing_unit),
            t.service.to_string(),
            t.service_category.to_string(),
            o(t.resource),
            o(t.region),
            o(t.account),
            o(t.account_name),
            t.billing_account.to_string(),
            o(t.billing_account_name),
            t.provider.to_string(),
            t.publisher.to_string(),
            t.issuer.to_string(),
            o(t.invoice),
            tags(t.tenant, rows.tag_key)?,
            o(t.method),
            o(t.details),
            o(t.allocated_tenant),
            tags(t.allocated_tenant, rows.tag_key)?,
            t.service.to_string(),
            t.usage_type.to_string(),
            o(t.operation),
            t.line_item_type.to_string(),
            money(rows.unblended[i])?,
            money(rows.trueup[i])?,
            money(rows.upfront[i])?,
            o(t.reason),
        ];
        w.write_record(&record).map_err(|e| csv_error(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_the_documented_columns() {
        let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
        let documented: Vec<&str> = FOCUS_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented);
    }

    #[test]
    fn ratios_sum_to_one_exactly_and_follow_the_weights() {
        let w = |v: &[&str]| v.iter().map(|s| s.parse::<Decimal>().unwrap()).collect::<Vec<_>>();
        let r = ratios(&w(&["1", "1", "1"])).unwrap();
        assert_eq!(r.iter().copied().sum::<Decimal>(), Decimal::ONE);
        assert_eq!(r, w(&["0.333333333333334", "0.333333333333333", "0.333333333333333"]));
        let r = ratios(&w(&["3", "0", "1"])).unwrap();
        assert_eq!(r, w(&["0.75", "0", "0.25"]));
    }

    #[test]
    fn line_item_types_map_onto_focus_charge_categories() {
        for (t, c) in [
            ("Usage", "Usage"),
            ("SavingsPlanCoveredUsage", "Usage"),
            ("SavingsPlanNegation", "Usage"),
            ("RIFee", "Purchase"),
            ("SavingsPlanUpfrontFee", "Purchase"),
            ("Tax", "Tax"),
            ("Refund", "Credit"),
            ("EdpDiscount", "Credit"),
            ("Purchase", "Purchase"),
            ("Mystery", "Adjustment"),
        ] {
            assert_eq!(charge_category(t), c, "{t}");
        }
    }

    #[test]
    fn purchases_are_one_time_only_when_they_are_upfront_commitment_fees() {
        let zero = Decimal::ZERO;
        let upfront = Decimal::new(1200, 0);
        assert_eq!(charge_frequency("Fee", upfront), "One-Time", "an RI's upfront fee");
        assert_eq!(charge_frequency("Fee", zero), "Recurring", "support, subscriptions");
        assert_eq!(charge_frequency("SavingsPlanUpfrontFee", zero), "One-Time");
        assert_eq!(charge_frequency("Purchase", upfront), "One-Time", "a FOCUS input's upfront purchase");
        assert_eq!(charge_frequency("RIFee", zero), "Recurring");
        assert_eq!(charge_frequency("SavingsPlanRecurringFee", zero), "Recurring");
        assert_eq!(charge_frequency("SavingsPlanNegation", zero), "Usage-Based");
        assert_eq!(charge_frequency("Tax", zero), "Recurring");
        assert_eq!(charge_frequency("Credit", zero), "One-Time");
        assert_eq!(charge_frequency("Mystery", zero), "One-Time");
    }
}
