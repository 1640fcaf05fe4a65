//! `curflow export --format focus`: a generated month attributed from the usage ledger, written as
//! FOCUS 1.3 in Parquet and in CSV, then checked by [`check_focus`], a checker of the FOCUS rules
//! of every column curflow emits (types, nullability, allowed values, date-time bounds, the
//! consumed-quantity and allocation rules), and against the store:
//! - origin charges sum to the bill, per measure;
//! - each origin charge's allocated charges repeat its dimensions and sum to it exactly, every
//!   summable metric, and their `AllocatedRatio`s sum to exactly 1;
//! - per tenant, tagged origin charges plus allocated charges equal `costs --by tenant` exactly;
//! - curflow reading its own export (either file format) gives back the period's tagged lines per
//!   tenant and its shared pool, exactly.
//!
//! PyPI's `focus-validator` (1.0.0) knows FOCUS 1.0 only (its rule sets are 0.5, 1.0-preview and
//! 1.0), so it does not apply to a 1.3 file; this checker stands in for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, NaiveDate};
use curflow::aggregate::LineSource;
use curflow::line_item::LineItemKind;
use curflow::output::focus::{FOCUS_COLUMNS, charge_category};
use curflow::store::{CostStore, SqliteStore};
use curflow::{Amounts, BillingPeriod};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

/// One FOCUS row, every column as text (exact decimal text, ISO 8601 UTC date-times, tags as JSON
/// object text), `None` for null.
type Row = BTreeMap<String, Option<String>>;

/// The invoice id the attributed month is generated with (a finalised month).
const INVOICE: &str = "2026110001";

const CHARGE_CATEGORIES: [&str; 5] = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"];
const SERVICE_CATEGORIES: [&str; 19] = [
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
];
/// The money columns (`decimal(38, 12)`, never null): FOCUS's and curflow's own measures.
const MONEY: [&str; 7] = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "x_UnblendedCost",
    "x_RiSpTrueup",
    "x_RiSpUpfrontFees",
];
/// Summable metrics: allocated charges sum to their origin's.
const SUMMABLE: [&str; 9] = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ConsumedQuantity",
    "PricingQuantity",
    "x_UnblendedCost",
    "x_RiSpTrueup",
    "x_RiSpUpfrontFees",
];
/// Columns an allocated charge sets itself; every other column repeats its origin charge's.
const ALLOCATION: [&str; 5] =
    ["AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedTags", "x_UnattributedReason"];

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|e| panic!("{s:?} is not a decimal: {e}"))
}

fn get<'r>(row: &'r Row, col: &str) -> Option<&'r str> {
    row.get(col).unwrap_or_else(|| panic!("no column {col}")).as_deref()
}

fn time(s: &str) -> DateTime<chrono::Utc> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s:?} is not an RFC 3339 date-time: {e}")).to_utc()
}

/// The tag map of a `Tags`/`AllocatedTags` cell (JSON object text).
fn tags(s: &str) -> BTreeMap<String, String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?} is not a JSON object of strings: {e}"))
}

/// `AllocatedMethodDetails`: `Elements[*]` with exact `AllocatedRatio` and `UsageQuantity`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Details {
    #[serde(rename = "Elements")]
    elements: Vec<Element>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Element {
    #[serde(rename = "AllocatedRatio")]
    ratio: Box<serde_json::value::RawValue>,
    #[serde(rename = "UsageUnit")]
    unit: String,
    #[serde(rename = "UsageQuantity")]
    quantity: Box<serde_json::value::RawValue>,
}

/// What [`check_focus`] found, for the store comparisons.
#[derive(Default, Debug)]
struct Checked {
    origins: usize,
    allocated: usize,
    /// Σ origin charges per measure (`BilledCost`, `EffectiveCost`, `x_UnblendedCost`).
    bill: BTreeMap<&'static str, Decimal>,
    /// Per tenant (`UNATTRIBUTED` for what no tenant gets): tagged origin charges plus allocated
    /// charges, per measure.
    tenants: BTreeMap<String, BTreeMap<&'static str, Decimal>>,
}

/// Checks the FOCUS rules of the emitted columns over `rows` (in file order) for `period`, with the
/// tenant tag `tag_key`. Panics naming the row and the rule broken.
#[expect(clippy::too_many_lines, reason = "one rule after the other, as the spec lists them")]
fn check_focus(rows: &[Row], period: BillingPeriod, tag_key: &str) -> Checked {
    let names: Vec<&str> = FOCUS_COLUMNS.iter().map(|(n, _)| *n).collect();
    let mut out = Checked::default();
    let (p_start, p_end) = (period.first_day(), period.next().first_day());
    let mut origin: Option<&Row> = None;
    let mut pending: Option<(Vec<&Row>, &Row)> = None;
    let finish = |group: Option<(Vec<&Row>, &Row)>| {
        let Some((parts, origin)) = group else { return };
        for m in SUMMABLE {
            let want = get(origin, m).map(dec).unwrap_or_default();
            let got: Decimal = parts.iter().filter_map(|r| get(r, m)).map(dec).sum();
            assert_eq!(got, want, "allocated {m} sums to the origin charge's: {origin:?}");
            assert_eq!(
                parts.iter().all(|r| get(r, m).is_none()),
                get(origin, m).is_none(),
                "{m} is null on the allocated charges exactly when it is on the origin charge"
            );
        }
        let ratio: Decimal = parts
            .iter()
            .flat_map(|r| serde_json::from_str::<Details>(get(r, "AllocatedMethodDetails").unwrap()).unwrap().elements)
            .map(|e| dec(e.ratio.get()))
            .sum();
        assert_eq!(ratio, Decimal::ONE, "AllocatedRatio sums to exactly 1 per origin charge: {origin:?}");
    };
    for (i, row) in rows.iter().enumerate() {
        let at = |rule: &str| format!("row {i}: {rule}: {row:?}");
        let keys: Vec<&str> = row.keys().map(String::as_str).collect();
        let mut want = names.clone();
        want.sort_unstable();
        assert_eq!(keys, want, "the emitted columns");
        // Column naming: PascalCase FOCUS ids, custom columns prefixed `x_`.
        for n in &names {
            assert!(
                n.starts_with("x_")
                    || (n.chars().next().unwrap().is_ascii_uppercase() && n.chars().all(char::is_alphanumeric)),
                "column id {n}"
            );
        }
        for col in [
            "BilledCost",
            "EffectiveCost",
            "ListCost",
            "ContractedCost",
            "BillingCurrency",
            "BillingPeriodStart",
            "BillingPeriodEnd",
            "ChargePeriodStart",
            "ChargePeriodEnd",
            "ChargeCategory",
            "ChargeDescription",
            "ChargeFrequency",
            "ServiceName",
            "ServiceCategory",
            "BillingAccountId",
            "ProviderName",
            "PublisherName",
            "InvoiceIssuerName",
        ] {
            assert!(get(row, col).is_some_and(|v| !v.is_empty()), "{}", at(&format!("{col} MUST NOT be null")));
        }
        for col in MONEY {
            dec(get(row, col).unwrap());
        }
        let currency = get(row, "BillingCurrency").unwrap();
        assert!(currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()), "{}", at("ISO 4217 currency"));
        let category = get(row, "ChargeCategory").unwrap();
        assert!(CHARGE_CATEGORIES.contains(&category), "{}", at("ChargeCategory allowed values"));
        let frequency = get(row, "ChargeFrequency").unwrap();
        assert!(
            ["One-Time", "Recurring", "Usage-Based"].contains(&frequency),
            "{}",
            at("ChargeFrequency allowed values")
        );
        assert!(
            !(category == "Purchase" && frequency == "Usage-Based"),
            "{}",
            at("ChargeFrequency MUST NOT be Usage-Based when ChargeCategory is Purchase")
        );
        assert!(
            get(row, "ChargeClass").is_none_or(|c| c == "Correction"),
            "{}",
            at("ChargeClass is null or Correction")
        );
        assert!(
            SERVICE_CATEGORIES.contains(&get(row, "ServiceCategory").unwrap()),
            "{}",
            at("ServiceCategory allowed values")
        );
        // Date-times: UTC, billing period = the month, charge period inside it, start < end.
        let t = |c: &str| time(get(row, c).unwrap());
        let day0 = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(
            (t("BillingPeriodStart"), t("BillingPeriodEnd")),
            (day0(p_start), day0(p_end)),
            "{}",
            at("billing period")
        );
        assert!(t("ChargePeriodStart") < t("ChargePeriodEnd"), "{}", at("ChargePeriodStart < ChargePeriodEnd"));
        assert!(
            t("ChargePeriodStart") >= t("BillingPeriodStart") && t("ChargePeriodEnd") <= t("BillingPeriodEnd"),
            "{}",
            at("the charge period lies in the billing period")
        );
        // Consumed quantity: only on usage, with its unit.
        let (quantity, unit) = (get(row, "ConsumedQuantity"), get(row, "ConsumedUnit"));
        if category != "Usage" {
            assert!(quantity.is_none(), "{}", at("ConsumedQuantity MUST be null unless ChargeCategory is Usage"));
        }
        assert_eq!(quantity.is_some(), unit.is_some(), "{}", at("ConsumedUnit is set exactly with ConsumedQuantity"));
        if let Some(q) = quantity {
            dec(q);
        }
        // Pricing quantity: null on tax, never null on usage and purchases (curflow emits no
        // corrections), its unit exactly with it; on consumption types it is the consumed quantity.
        let (pricing, pricing_unit) = (get(row, "PricingQuantity"), get(row, "PricingUnit"));
        if category == "Tax" {
            assert!(pricing.is_none(), "{}", at("PricingQuantity MUST be null when ChargeCategory is Tax"));
        }
        if ["Usage", "Purchase"].contains(&category) {
            assert!(
                pricing.is_some(),
                "{}",
                at("PricingQuantity MUST NOT be null when ChargeCategory is Usage or Purchase")
            );
        }
        assert_eq!(
            pricing.is_some(),
            pricing_unit.is_some(),
            "{}",
            at("PricingUnit MUST be set exactly with PricingQuantity")
        );
        if let Some(u) = pricing_unit {
            assert!(!u.is_empty(), "{}", at("PricingUnit is not empty"));
        }
        let line_item_type = get(row, "x_LineItemType").unwrap();
        if quantity.is_some() && LineItemKind::from_type_name(line_item_type).counts_usage() {
            assert_eq!((pricing.map(dec), pricing_unit), (quantity.map(dec), unit), "{}", at("pricing = consumed"));
        }
        for col in ["Tags", "AllocatedTags"] {
            if let Some(v) = get(row, col) {
                assert!(tags(v).keys().all(|k| !k.is_empty()), "{}", at("tag keys are not empty"));
            }
        }
        // Allocation columns.
        let method = get(row, "AllocatedMethodId");
        assert_eq!(
            method.is_some(),
            get(row, "AllocatedMethodDetails").is_some(),
            "{}",
            at("method and details together")
        );
        assert_eq!(
            get(row, "AllocatedResourceId").is_some(),
            get(row, "AllocatedTags").is_some(),
            "{}",
            at("AllocatedTags carry the tenant of AllocatedResourceId")
        );
        let measures = |r: &Row| -> BTreeMap<&'static str, Decimal> {
            let mut m: BTreeMap<&'static str, Decimal> =
                MONEY.into_iter().map(|m| (m, dec(get(r, m).unwrap()))).collect();
            m.insert("PricingQuantity", get(r, "PricingQuantity").map(dec).unwrap_or_default());
            m
        };
        let mut credit = |tenant: String, r: &Row| {
            let slot = out.tenants.entry(tenant).or_default();
            for (m, v) in measures(r) {
                *slot.entry(m).or_default() += v;
            }
        };
        match method {
            None => {
                assert!(
                    get(row, "AllocatedResourceId").is_none(),
                    "{}",
                    at("an origin charge has no allocated resource")
                );
                finish(pending.take());
                origin = Some(row);
                out.origins += 1;
                for (m, v) in measures(row) {
                    *out.bill.entry(m).or_default() += v;
                }
                let tenant = get(row, "Tags").and_then(|t| tags(t).remove(tag_key));
                credit(tenant.unwrap_or_else(|| "UNATTRIBUTED".into()), row);
            }
            Some(method) => {
                assert!(!method.is_empty(), "{}", at("AllocatedMethodId is not empty"));
                let o = origin.expect("an allocated charge follows its origin charge");
                assert!(get(o, "Tags").is_none(), "{}", at("only shared lines are allocated"));
                for col in &names {
                    if !SUMMABLE.contains(col) && !ALLOCATION.contains(col) {
                        assert_eq!(get(row, col), get(o, col), "{}", at(&format!("{col} matches the origin charge")));
                    }
                }
                let details: Details = serde_json::from_str(get(row, "AllocatedMethodDetails").unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", at("AllocatedMethodDetails is Elements JSON")));
                assert_eq!(details.elements.len(), 1, "{}", at("one element per allocated charge"));
                for e in &details.elements {
                    let r = dec(e.ratio.get());
                    assert!(r >= Decimal::ZERO && r <= Decimal::ONE, "{}", at("0 <= AllocatedRatio <= 1"));
                    assert!(dec(e.quantity.get()) >= Decimal::ZERO, "{}", at("UsageQuantity >= 0"));
                    assert!(!e.unit.is_empty(), "{}", at("UsageUnit"));
                }
                match get(row, "AllocatedResourceId") {
                    Some(tenant) => {
                        assert_eq!(
                            tags(get(row, "AllocatedTags").unwrap()).get(tag_key).map(String::as_str),
                            Some(tenant)
                        );
                        credit(tenant.to_string(), row);
                    }
                    None => {
                        assert!(get(row, "x_UnattributedReason").is_some(), "{}", at("a remainder says why"));
                        credit("UNATTRIBUTED".into(), row);
                    }
                }
                // The origin charge's own amount leaves the pool: its parts are credited instead.
                if pending.as_ref().is_none_or(|(_, p)| !std::ptr::eq(*p, o)) {
                    finish(pending.take());
                    pending = Some((Vec::new(), o));
                    let slot = out.tenants.entry("UNATTRIBUTED".into()).or_default();
                    for (m, v) in measures(o) {
                        *slot.entry(m).or_default() -= v;
                    }
                }
                if let Some((parts, _)) = pending.as_mut() {
                    parts.push(row);
                }
                out.allocated += 1;
            }
        }
    }
    finish(pending.take());
    out
}

/// A Parquet export as rows, checking the column types on the way.
fn parquet_rows(path: &Path) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = reader.schema().clone();
    for f in schema.fields() {
        let want_money = MONEY.contains(&f.name().as_str());
        match f.data_type() {
            DataType::Decimal128(38, 12) => assert!(want_money, "{} is decimal(38, 12)", f.name()),
            DataType::Decimal128(38, 10) => {
                assert!(["ConsumedQuantity", "PricingQuantity"].contains(&f.name().as_str()), "{}", f.name())
            }
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
                assert_eq!(&**tz, "UTC");
                assert!(f.name().ends_with("PeriodStart") || f.name().ends_with("PeriodEnd"), "{}", f.name());
            }
            DataType::Map(..) => assert!(f.name().ends_with("Tags"), "{}", f.name()),
            DataType::Utf8 => assert!(!want_money, "{}", f.name()),
            other => panic!("{}: unexpected type {other}", f.name()),
        }
    }
    let mut rows = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.num_rows() {
            let mut row = Row::new();
            for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = (!col.is_null(i)).then(|| match f.data_type() {
                    DataType::Decimal128(_, s) => Decimal::from_i128_with_scale(
                        col.as_primitive::<Decimal128Type>().value(i),
                        u32::try_from(*s).unwrap(),
                    )
                    .normalize()
                    .to_string(),
                    DataType::Timestamp(..) => {
                        let us = col.as_primitive::<TimestampMicrosecondType>().value(i);
                        DateTime::from_timestamp_micros(us).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
                    }
                    DataType::Map(..) => {
                        let entries = col.as_map().value(i);
                        let (k, v) = (entries.column(0).as_string::<i32>(), entries.column(1).as_string::<i32>());
                        let m: BTreeMap<&str, &str> = (0..k.len()).map(|j| (k.value(j), v.value(j))).collect();
                        serde_json::to_string(&m).unwrap()
                    }
                    _ => col.as_string::<i32>().value(i).to_string(),
                });
                row.insert(f.name().clone(), value);
            }
            rows.push(row);
        }
    }
    rows
}

/// A CSV export as rows (an empty cell is null).
fn csv_rows(path: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, FOCUS_COLUMNS.iter().map(|(n, _)| (*n).to_string()).collect::<Vec<_>>(), "CSV header");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header.iter().cloned().zip(r.iter().map(|v| (!v.is_empty()).then(|| v.to_string()))).collect()
        })
        .collect()
}

/// Per tenant and measure, the stored lines of `period` (`UNATTRIBUTED` for shared rows).
fn stored_by_tenant(lines: &[curflow::CostLine]) -> BTreeMap<String, BTreeMap<&'static str, Decimal>> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, Decimal>> = BTreeMap::new();
    for l in lines {
        let slot = out.entry(l.key.tenant.as_deref().unwrap_or("UNATTRIBUTED").to_string()).or_default();
        *slot.entry("BilledCost").or_default() += l.amounts.net_unblended_cost;
        *slot.entry("EffectiveCost").or_default() += l.amounts.amortized_cost;
        *slot.entry("x_UnblendedCost").or_default() += l.amounts.unblended_cost;
        *slot.entry("x_RiSpTrueup").or_default() += l.amounts.ri_sp_trueup;
        *slot.entry("x_RiSpUpfrontFees").or_default() += l.amounts.ri_sp_upfront_fees;
        *slot.entry("ListCost").or_default() += l.amounts.list_cost;
        *slot.entry("ContractedCost").or_default() += l.amounts.contracted_cost;
        let priced = ["Usage", "Purchase"].contains(&charge_category(&l.key.line_item_type));
        *slot.entry("PricingQuantity").or_default() += if priced { l.amounts.pricing_quantity } else { Decimal::ZERO };
    }
    out
}

/// Per tenant: [net unblended, amortized, list cost, contracted cost, unblended, true-up, upfront
/// fees] of the tagged lines, and the pool's under `UNATTRIBUTED` (the measures the export has
/// columns for: `BilledCost`, `EffectiveCost`, `ListCost`, `ContractedCost`, and curflow's
/// `x_UnblendedCost`, `x_RiSpTrueup`, `x_RiSpUpfrontFees`).
fn direct_and_pool(lines: &[curflow::CostLine], pool: Option<&[curflow::CostLine]>) -> BTreeMap<String, [Decimal; 7]> {
    let mut out: BTreeMap<String, [Decimal; 7]> = BTreeMap::new();
    let tagged = lines.iter().filter(|l| l.source() == LineSource::Cur);
    let shared: Box<dyn Iterator<Item = &curflow::CostLine>> = match pool {
        Some(pool) => Box::new(pool.iter()),
        None => Box::new(lines.iter().filter(|l| l.source() != LineSource::Cur)),
    };
    for l in tagged.chain(shared) {
        let slot = out.entry(l.key.tenant.as_deref().unwrap_or("UNATTRIBUTED").to_string()).or_default();
        slot[0] += l.amounts.net_unblended_cost;
        slot[1] += l.amounts.amortized_cost;
        slot[2] += l.amounts.list_cost;
        slot[3] += l.amounts.contracted_cost;
        slot[4] += l.amounts.unblended_cost;
        slot[5] += l.amounts.ri_sp_trueup;
        slot[6] += l.amounts.ri_sp_upfront_fees;
    }
    out
}

/// Commitment purchases: the upfront fees (a plan's, an RI's `Fee` on EC2) are paid once, the
/// monthly fees and support (a `Fee` too) recur.
fn check_charge_frequencies(rows: &[Row], file_format: &str) {
    let frequencies = |t: &str, service: Option<&str>| -> BTreeSet<&str> {
        rows.iter()
            .filter(|r| get(r, "x_LineItemType") == Some(t) && service.is_none_or(|s| get(r, "ServiceName") == Some(s)))
            .filter_map(|r| get(r, "ChargeFrequency"))
            .collect()
    };
    for (t, service, f) in [
        ("SavingsPlanUpfrontFee", None, "One-Time"),
        ("Fee", Some("AmazonEC2"), "One-Time"),
        ("Fee", Some("AWSSupportBusiness"), "Recurring"),
        ("RIFee", None, "Recurring"),
        ("SavingsPlanRecurringFee", None, "Recurring"),
        ("Usage", None, "Usage-Based"),
    ] {
        assert_eq!(frequencies(t, service), BTreeSet::from([f]), "{file_format}: {t} {service:?}");
    }
}

/// Purchases carry what they bill for: the generator's Savings Plan fee bills 24 hours a day and
/// its RI fee the month's hours; an SP negation repeats the covered usage it cancels.
fn check_purchase_quantities(rows: &[Row], lines: &[curflow::CostLine], pool: &[curflow::CostLine], file_format: &str) {
    let origins = || rows.iter().filter(|r| get(r, "AllocatedMethodId").is_none());
    let priced = |t: &str| -> Vec<(Decimal, String)> {
        origins()
            .filter(|r| get(r, "x_LineItemType") == Some(t))
            .map(|r| (dec(get(r, "PricingQuantity").unwrap()), get(r, "PricingUnit").unwrap().to_string()))
            .collect()
    };
    let fees = priced("SavingsPlanRecurringFee");
    assert!(!fees.is_empty(), "{file_format}: the month has Savings Plan fees");
    let day = Decimal::from(24);
    assert!(
        fees.iter().all(|(q, _)| *q >= day && (*q % day).is_zero()),
        "{file_format}: 24 hours a day per plan: {fees:?}"
    );
    let ri = priced("RIFee");
    assert!(!ri.is_empty() && ri.iter().all(|(q, u)| *q > Decimal::ZERO && u == "Hrs"), "{file_format}: {ri:?}");
    // Per line-item type, the origin charges' pricing quantity is the stored lines' (the tagged
    // lines and the shared pool they were split from).
    for t in ["SavingsPlanNegation", "SavingsPlanRecurringFee", "RIFee", "Usage"] {
        let exported: Decimal = priced(t).iter().map(|(q, _)| *q).sum();
        let stored: Decimal = lines
            .iter()
            .filter(|l| l.source() == LineSource::Cur)
            .chain(pool)
            .filter(|l| &*l.key.line_item_type == t)
            .map(|l| l.amounts.pricing_quantity)
            .sum();
        assert_eq!(exported, stored, "{file_format}: {t}");
    }
    let negations: Decimal = priced("SavingsPlanNegation").iter().map(|(q, _)| *q).sum();
    assert!(negations > Decimal::ZERO, "{file_format}: an SP negation's pricing quantity is the usage it covers");
}

#[test]
fn an_attributed_month_exports_as_focus_whose_allocations_tie_to_the_store_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), curflow_fixtures::Format::LegacyParquet, 20_000, 5, |o| {
        o.tenants = 4;
        o.evidence = true;
        o.invoice_id = Some(INVOICE.into());
    });
    let ev = g.evidence.as_ref().expect("evidence generated");
    let (manifest, prefixes) = (g.manifest_path.to_str().unwrap(), ev.prefix_map.to_str().unwrap());
    let sources = format!(r#"[{{name = "app-logs", location = "{}"}}]"#, ev.dir.display());
    let env = [("CURFLOW_EVIDENCE", sources.as_str()), ("CURFLOW_S3_PREFIXES", prefixes)];
    let store = dir.path().join("s.sqlite");
    let s = store.to_str().unwrap();
    let ingest = ["usage", "ingest", "--from", "2026-10-01", "--to", "2026-10-31", "--store", s];
    common::ok(&common::run_curflow(&ingest, None, &env));
    common::ok(&common::run_curflow(&["process", manifest, "--store", s], None, &env));
    let october = BillingPeriod::new(2026, 10).unwrap();
    let sqlite = SqliteStore::open(&store).unwrap();
    let lines = sqlite.cost_lines(october).wait().unwrap();
    let pool = sqlite.pool_lines(october).wait().unwrap();
    assert!(lines.iter().any(|l| l.source() == LineSource::Attributed), "the month was split");
    let expected = common::expected_json(&g);

    let export = ["export", "--store", s, "--period", "2026-10", "--format", "focus", "--output"];
    let mut read_back = Vec::new();
    for (file_format, name) in [("parquet", "focus.parquet"), ("csv", "focus.csv")] {
        let path = dir.path().join(name);
        let said = common::ok(&common::run_curflow(
            &[&export[..], &[path.to_str().unwrap(), "--file-format", file_format]].concat(),
            None,
            &env,
        ));
        assert!(said.contains("FOCUS 1.3 of 2026-10"), "{said}");
        let rows = if file_format == "parquet" { parquet_rows(&path) } else { csv_rows(&path) };
        let checked = check_focus(&rows, october, "accountant_id");
        assert!(checked.allocated > 0 && checked.origins > 0, "{checked:?}");
        // Who bills: the generator's payer account, AWS, its legal and invoicing entity (a name
        // with a comma, quoted in CSV) and the month's invoice; a legacy CUR has no payer name.
        for row in &rows {
            let billing = [
                "BillingAccountId",
                "BillingAccountName",
                "ProviderName",
                "PublisherName",
                "InvoiceIssuerName",
                "InvoiceId",
            ]
            .map(|c| get(row, c));
            let aws = Some("Amazon Web Services, Inc.");
            let want = [Some("123456789012"), None, Some("AWS"), aws, aws, Some(INVOICE)];
            assert_eq!(billing, want, "{file_format}: {row:?}");
        }
        assert!(said.contains(&format!("{} allocated charges", checked.allocated)), "{said}");
        check_charge_frequencies(&rows, file_format);
        check_purchase_quantities(&rows, &lines, &pool, file_format);
        // Origin charges are the bill.
        assert_eq!(checked.bill["x_UnblendedCost"], dec(expected["totals"]["unblended_cost"].as_str().unwrap()));
        assert_eq!(checked.bill["BilledCost"], dec(expected["totals"]["net_unblended_cost"].as_str().unwrap()));
        assert_eq!(checked.bill["EffectiveCost"], dec(expected["totals"]["amortized_cost"].as_str().unwrap()));
        assert_eq!(checked.bill["ListCost"], dec(expected["totals"]["list_cost"].as_str().unwrap()));
        assert_eq!(checked.bill["ContractedCost"], dec(expected["totals"]["contracted_cost"].as_str().unwrap()));
        assert_eq!(checked.bill["x_RiSpTrueup"], dec(expected["totals"]["ri_sp_trueup"].as_str().unwrap()));
        assert_eq!(checked.bill["x_RiSpUpfrontFees"], dec(expected["totals"]["ri_sp_upfront_fees"].as_str().unwrap()));
        assert!(checked.bill["x_RiSpUpfrontFees"] > Decimal::ZERO, "the month has upfront fees");
        // Tagged charges plus allocations, per tenant = what curflow stored and shows.
        assert_eq!(checked.tenants, stored_by_tenant(&lines), "{file_format}: per-tenant totals");
        // Curflow reads its own export back: the tagged lines and the pool, exactly.
        let again = dir.path().join(format!("{file_format}.sqlite"));
        common::ok(&common::run_curflow(
            &["process", path.to_str().unwrap(), "--store", again.to_str().unwrap()],
            None,
            &[],
        ));
        let back = SqliteStore::open(&again).unwrap().cost_lines(october).wait().unwrap();
        assert_eq!(direct_and_pool(&back, None), direct_and_pool(&lines, Some(&pool)), "{file_format}: read back");
        // ... and the purchases' quantities: `PricingQuantity` is read back.
        let back_pricing: Decimal = back.iter().map(|l| l.amounts.pricing_quantity).sum();
        assert_eq!(back_pricing, checked.bill["PricingQuantity"], "{file_format}: pricing quantity read back");
        read_back.push(back);
    }
    let total = |ls: &[curflow::CostLine]| Amounts::sum(ls.iter().map(|l| &l.amounts)).unwrap();
    assert_eq!(total(&read_back[0]), total(&read_back[1]), "Parquet and CSV read back the same");

    // Other inputs than the split was made from (no evidence sources declared: no usage
    // drivers): refused, not a different split.
    let refused =
        common::run_curflow(&[&export[..], &[dir.path().join("x.parquet").to_str().unwrap()]].concat(), None, &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("curflow attribute --period"));
    assert!(!dir.path().join("x.parquet").exists(), "nothing written");
}

#[test]
fn a_month_never_attributed_exports_its_lines_as_origin_charges_only() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::generate(&dir.path().join("bucket"), curflow_fixtures::Format::Cur2Parquet, 5_000, 3, |o| {
        o.tenants = 3
    });
    let store = dir.path().join("s.sqlite");
    let s = store.to_str().unwrap();
    common::ok(&common::run_curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", s], None, &[]));
    let path = dir.path().join("f.csv");
    let said = common::ok(&common::run_curflow(
        &["export", "--store", s, "--period", "2026-10", "--format", "focus", "--file-format", "csv", "--output"]
            .into_iter()
            .chain([path.to_str().unwrap()])
            .collect::<Vec<_>>(),
        None,
        &[],
    ));
    assert!(said.contains(" 0 allocated charges"), "{said}");
    let october = BillingPeriod::new(2026, 10).unwrap();
    let rows = csv_rows(&path);
    let checked = check_focus(&rows, october, "accountant_id");
    // CUR 2.0 names the payer account too.
    assert!(
        rows.iter().all(|r| get(r, "BillingAccountId") == Some("123456789012")
            && get(r, "BillingAccountName") == Some("curflow-payer")),
        "the payer account on every row"
    );
    assert!(rows.iter().all(|r| get(r, "InvoiceId").is_none()), "no invoice issued yet: InvoiceId is null");
    let lines = SqliteStore::open(&store).unwrap().cost_lines(october).wait().unwrap();
    assert_eq!(checked.origins, lines.len());
    assert_eq!(checked.tenants, stored_by_tenant(&lines));
    let tenants: BTreeSet<&String> = checked.tenants.keys().collect();
    assert_eq!(tenants.len(), 4, "3 tenants and the pool: {tenants:?}");
    assert!(october.first_day().day() == 1);
}
