//! Resolves the logical columns of [`Col`] to the physical columns of one file, by name.
//!
//! CUR schemas are dynamic (columns come and go with usage, activated tags and commitments), so
//! each file is resolved on its own: optional families may be absent (they read as NULL), a
//! missing required column or a column of the wrong type is an error naming the file and column.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::datatypes::{DataType, Schema};

use super::columns::{Col, ColumnKind, TagNames};
use crate::error::{Error, Result};

/// The three CUR shapes curflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CurFormat {
    /// Legacy CUR with the Athena integration: Parquet, `line_item_unblended_cost`, flat tag columns.
    LegacyParquet,
    /// Legacy CUR CSV (plain or gzip): `lineItem/UnblendedCost`, `resourceTags/user:<key>`.
    LegacyCsv,
    /// CUR 2.0 (Data Exports) Parquet: fixed columns, tags in the `resource_tags` map.
    Cur2Parquet,
    /// CUR 2.0 CSV (plain or gzip): the Parquet column names, maps (`resource_tags`, ...) written as
    /// JSON text.
    Cur2Csv,
    /// A FOCUS 1.x export (AWS `FOCUS_1_0_AWS` / `FOCUS_1_2_AWS` or another provider's), Parquet or
    /// CSV: `BilledCost`, `EffectiveCost`, `ChargeCategory`, tags in `Tags`. See [`focus_column`].
    Focus { csv: bool },
}

impl CurFormat {
    pub fn is_focus(self) -> bool {
        matches!(self, CurFormat::Focus { .. })
    }
}

impl std::fmt::Display for CurFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CurFormat::LegacyParquet => "legacy CUR Parquet",
            CurFormat::LegacyCsv => "legacy CUR CSV",
            CurFormat::Cur2Parquet => "CUR 2.0 Parquet",
            CurFormat::Cur2Csv => "CUR 2.0 CSV",
            CurFormat::Focus { csv: false } => "FOCUS Parquet",
            CurFormat::Focus { csv: true } => "FOCUS CSV",
        })
    }
}

/// Where a file keeps the tenant tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    /// A flat column (legacy CSV and Parquet).
    Column(String),
    /// Keys of map columns (CUR 2.0), tried in order: `resource_tags['user_<key>']`, then
    /// `tags['resourceTags/user:<key>']`.
    MapKeys(Vec<(String, String)>),
    /// Keys of JSON-object text columns (CUR 2.0 CSV writes its maps as JSON: `{"user_project":"x"}`),
    /// tried in the same order as [`TenantSource::MapKeys`].
    JsonKeys(Vec<(String, String)>),
    /// The tag is not activated in this file: every row goes to the shared pool.
    Absent,
}

/// One file's physical column for every logical column it has.
#[derive(Debug, Clone)]
pub struct ResolvedColumns {
    pub format: CurFormat,
    names: BTreeMap<Col, String>,
    pub tenant: TenantSource,
    /// FOCUS only: the `EffectiveCost` column, curflow's amortized cost as the provider computed it.
    pub effective_cost: Option<String>,
    /// FOCUS only: the `ContractedCost` column (a NULL cell counts 0). A CUR has none: its
    /// contracted cost is derived ([`curflow_model::measures::cur_contracted_cost`]).
    pub contracted_cost: Option<String>,
    /// FOCUS only: the `PricingQuantity` column (a NULL cell counts 0), the lines' pricing
    /// quantity. Without it (and in a CUR) the pricing quantity is the usage amount of every row.
    pub pricing_quantity: Option<String>,
    /// FOCUS 1.3 only: the `AllocatedMethodId` column. Rows where it is set are allocated charges,
    /// the split of an origin charge the file also holds; they are skipped (summing both would
    /// count the charge twice).
    pub allocated_method: Option<String>,
    /// FOCUS only: curflow's own `x_RiSpTrueup` and `x_RiSpUpfrontFees` columns (its FOCUS
    /// export), when the file has both: the true-up and upfront fees as curflow stored them,
    /// which FOCUS's columns cannot tell apart (see `plan::focus_measures`).
    pub curflow_commitments: Option<(String, String)>,
}

impl ResolvedColumns {
    /// Physical name of `col`, `None` if the (optional) column is absent.
    pub fn name(&self, col: Col) -> Option<&str> {
        self.names.get(&col).map(String::as_str)
    }

    /// Whether a FOCUS file needs the generic plan: allocated charges to skip (FOCUS 1.3
    /// `AllocatedMethodId`), or curflow's own measure columns beside FOCUS's (`x_UnblendedCost`,
    /// `x_RiSpTrueup`, `x_RiSpUpfrontFees`: more money sums than the fast path keeps).
    pub fn focus_needs_generic_plan(&self) -> bool {
        self.allocated_method.is_some()
            || self.curflow_commitments.is_some()
            || self.name(Col::UnblendedCost) != self.name(Col::NetUnblendedCost)
    }
}

/// Detects legacy vs CUR 2.0 Parquet the way CID does: CUR 2.0 has `bill_payer_account_name`
/// and map-typed `resource_tags`.
pub fn detect_parquet_format(schema: &Schema) -> CurFormat {
    let has_map_tags =
        schema.field_with_name("resource_tags").map(|f| matches!(f.data_type(), DataType::Map(..))).unwrap_or(false);
    if has_map_tags || schema.field_with_name("bill_payer_account_name").is_ok() {
        CurFormat::Cur2Parquet
    } else {
        CurFormat::LegacyParquet
    }
}

/// Whether the columns are FOCUS's (`BilledCost`, `ChargePeriodStart`).
fn is_focus<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n == "BilledCost" || n == "ChargePeriodStart")
}

/// The FOCUS columns that stand for each logical column, first found wins. The measures come
/// from the provider's own figures: unblended and net unblended are `BilledCost` (what is
/// invoiced, net of discounts; unblended is `x_UnblendedCost` in a file that has it, as curflow's
/// own export does), amortized is `EffectiveCost` (after commitment amortization),
/// list cost is `ListCost`; upfront fees are the `BilledCost` of one-time commitment purchases
/// and the true-up the rest of `BilledCost − EffectiveCost` (see `plan::focus_measures`).
/// `x_ServiceCode`/`x_UsageType`/`x_Operation` are AWS's extensions; other providers fall back
/// to `ServiceName` and `SkuMeter`/`SkuId`.
pub fn focus_column(col: Col) -> (&'static [&'static str], bool) {
    match col {
        Col::BillingPeriodStart => (&["BillingPeriodStart"], true),
        Col::UsageStart => (&["ChargePeriodStart"], true),
        Col::LineItemType => (&["ChargeCategory"], true),
        Col::ProductCode => (&["x_ServiceCode", "ServiceName"], true),
        Col::UsageType => (&["x_UsageType", "SkuMeter", "SkuId"], false),
        Col::Operation => (&["x_Operation"], false),
        Col::CurrencyCode => (&["BillingCurrency"], true),
        Col::UsageAmount => (&["ConsumedQuantity"], false),
        // `x_UnblendedCost` is curflow's own (its FOCUS export writes the unblended cost there,
        // `BilledCost` being the net): read back, its unblended cost is the original one.
        Col::UnblendedCost => (&["x_UnblendedCost", "BilledCost"], true),
        Col::NetUnblendedCost => (&["BilledCost"], true),
        Col::ResourceId => (&["ResourceId"], false),
        Col::PricingUnit => (&["ConsumedUnit", "PricingUnit"], false),
        Col::InvoiceId => (&["InvoiceId"], false),
        Col::UsageAccountId => (&["SubAccountId"], false),
        Col::UsageAccountName => (&["SubAccountName"], false),
        Col::Region => (&["RegionId"], false),
        Col::ListCost => (&["ListCost"], false),
        Col::PayerAccountId => (&["BillingAccountId"], false),
        Col::PayerAccountName => (&["BillingAccountName"], false),
        Col::InvoicingEntity => (&["InvoiceIssuerName"], false),
        Col::LegalEntity => (&["PublisherName"], false),
        Col::ProviderName => (&["ProviderName"], false),
        // A commitment purchase paid once (`Purchase`, `One-Time`, with a `CommitmentDiscountId`)
        // is an upfront fee (curflow's `ri_sp_upfront_fees`).
        Col::ReservationArn => (&["CommitmentDiscountId"], false),
        Col::ChargeFrequency => (&["ChargeFrequency"], false),
        // `Correction`: the row corrects an earlier, invoiced billing period; it is dated on the
        // first day of the billing period that bills it (see `plan::SourceColumns::usage_date`).
        Col::ChargeClass => (&["ChargeClass"], false),
        // `Unused` on a `Usage` row: the part of a commitment nothing used (the FOCUS layout of
        // other providers; AWS puts it in its `Purchase` fee rows). Such a row is stored as
        // line-item type `UnusedCommitment` (`curflow_model::line_item::UNUSED_COMMITMENT`).
        Col::CommitmentDiscountStatus => (&["CommitmentDiscountStatus"], false),
        _ => (&[], false),
    }
}

/// Resolves a FOCUS file's columns (`types`: the physical types, `None` for CSV text).
fn resolve_focus(path: &Path, names: &[(&str, Option<&DataType>)], tag_key: &str) -> Result<ResolvedColumns> {
    let csv = names.iter().all(|(_, t)| t.is_none());
    let lookup = |wanted: &str| names.iter().find(|(n, _)| *n == wanted).copied();
    let mut resolved = BTreeMap::new();
    for &col in Col::ALL {
        let (candidates, required) = focus_column(col);
        match candidates.iter().find_map(|c| lookup(c)) {
            // Every value NULL (an untyped all-null column): the same as no column.
            Some((_, Some(DataType::Null))) if !required => {}
            Some((name, t)) => {
                if let Some(t) = t {
                    check_type(path, name, col.spec().kind, t)?;
                }
                resolved.insert(col, name.to_string());
            }
            None if required => {
                return Err(Error::MissingColumn {
                    path: path.to_path_buf(),
                    column: candidates.join(" or "),
                    purpose: col.spec().purpose,
                });
            }
            None => {}
        }
    }
    let money_column = |column: &str| -> Result<Option<String>> {
        match lookup(column) {
            Some((name, t)) => {
                if let Some(t) = t {
                    check_type(path, name, ColumnKind::Money, t)?;
                }
                Ok(Some(name.to_string()))
            }
            None => Ok(None),
        }
    };
    let effective_cost = money_column("EffectiveCost")?;
    let contracted_cost = money_column("ContractedCost")?;
    let pricing_quantity = match lookup("PricingQuantity") {
        // A column of NULLs only, written without a type: as if absent.
        None | Some((_, Some(DataType::Null))) => None,
        Some((name, t)) => {
            if let Some(t) = t {
                check_type(path, name, ColumnKind::Quantity, t)?;
            }
            Some(name.to_string())
        }
    };
    // FOCUS `Tags` holds the user's tag keys as they are; AWS's export may prefix them `user:`.
    let tenant = match lookup("Tags") {
        // No column, or every value NULL: every row goes to the shared pool.
        None | Some((_, Some(DataType::Null))) => TenantSource::Absent,
        Some((_, Some(t))) if !is_string_map(t) => return Err(wrong_type(path, "Tags", t, "map<string, string>")),
        Some((name, t)) => {
            let keys = vec![(name.to_string(), tag_key.to_string()), (name.to_string(), format!("user:{tag_key}"))];
            if t.is_some() { TenantSource::MapKeys(keys) } else { TenantSource::JsonKeys(keys) }
        }
    };
    let allocated_method = lookup("AllocatedMethodId").map(|(name, _)| name.to_string());
    let curflow_commitments = match (money_column("x_RiSpTrueup")?, money_column("x_RiSpUpfrontFees")?) {
        (Some(trueup), Some(upfront)) => Some((trueup, upfront)),
        _ => None,
    };
    Ok(ResolvedColumns {
        format: CurFormat::Focus { csv },
        names: resolved,
        tenant,
        effective_cost,
        contracted_cost,
        pricing_quantity,
        allocated_method,
        curflow_commitments,
    })
}

/// Resolves a Parquet file's columns and checks their types.
pub fn resolve_parquet(path: &Path, schema: &Schema, tag_key: &str) -> Result<ResolvedColumns> {
    if is_focus(schema.fields().iter().map(|f| f.name().as_str())) {
        let names: Vec<(&str, Option<&DataType>)> =
            schema.fields().iter().map(|f| (f.name().as_str(), Some(f.data_type()))).collect();
        return resolve_focus(path, &names, tag_key);
    }
    let format = detect_parquet_format(schema);
    let mut names = BTreeMap::new();
    for &col in Col::ALL {
        let spec = col.spec();
        let wanted = col.parquet_name();
        let candidates = col.parquet_names();
        match candidates.iter().find_map(|c| find(schema.fields().iter().map(|f| f.name().as_str()), c)) {
            Some(name) => {
                let field = schema.field_with_name(name).map_err(|e| Error::Internal(e.to_string()))?;
                // Every value NULL (an untyped all-null column): the same as no column.
                if field.data_type() == &DataType::Null && !spec.required {
                    continue;
                }
                check_type(path, name, spec.kind, field.data_type())?;
                names.insert(col, name.to_string());
            }
            None if spec.required => {
                return Err(Error::MissingColumn { path: path.to_path_buf(), column: wanted, purpose: spec.purpose });
            }
            None => {}
        }
    }
    let tags = TagNames::for_key(tag_key);
    let tenant = match format {
        CurFormat::Cur2Parquet => {
            let mut keys = Vec::new();
            for (column, key) in [("resource_tags", tags.cur2_resource_tags_key), ("tags", tags.cur2_tags_key)] {
                if let Some(field) = schema.field_with_name(column).ok().filter(|f| f.data_type() != &DataType::Null) {
                    if !is_string_map(field.data_type()) {
                        return Err(wrong_type(path, column, field.data_type(), "map<string, string>"));
                    }
                    keys.push((column.to_string(), key));
                }
            }
            if keys.is_empty() { TenantSource::Absent } else { TenantSource::MapKeys(keys) }
        }
        _ => match find(schema.fields().iter().map(|f| f.name().as_str()), &tags.parquet) {
            // Every value NULL: no row is tagged.
            Some(name) if schema.field_with_name(name).is_ok_and(|f| f.data_type() == &DataType::Null) => {
                TenantSource::Absent
            }
            Some(name) => {
                let field = schema.field_with_name(name).map_err(|e| Error::Internal(e.to_string()))?;
                check_type(path, name, ColumnKind::Text, field.data_type())?;
                TenantSource::Column(name.to_string())
            }
            None => TenantSource::Absent,
        },
    };
    Ok(ResolvedColumns {
        format,
        names,
        tenant,
        effective_cost: None,
        contracted_cost: None,
        pricing_quantity: None,
        allocated_method: None,
        curflow_commitments: None,
    })
}

/// Resolves a CSV header: legacy CUR (`lineItem/UnblendedCost`) or CUR 2.0 (the Parquet names,
/// `line_item_unblended_cost`). All CSV values are text; they are validated while scanning.
pub fn resolve_csv(path: &Path, header: &[String], tag_key: &str) -> Result<ResolvedColumns> {
    if is_focus(header.iter().map(String::as_str)) {
        let names: Vec<(&str, Option<&DataType>)> = header.iter().map(|h| (h.as_str(), None)).collect();
        return resolve_focus(path, &names, tag_key);
    }
    let cur2 = header.iter().any(|h| h == "line_item_unblended_cost");
    let mut names = BTreeMap::new();
    for &col in Col::ALL {
        let spec = col.spec();
        let wanted = if cur2 { col.parquet_name() } else { spec.csv_name.to_string() };
        let candidates: Vec<String> =
            if cur2 { col.parquet_names() } else { col.csv_names().iter().map(|n| n.to_string()).collect() };
        match candidates.iter().find_map(|c| find(header.iter().map(String::as_str), c)) {
            Some(name) => {
                names.insert(col, name.to_string());
            }
            None if spec.required => {
                return Err(Error::MissingColumn { path: path.to_path_buf(), column: wanted, purpose: spec.purpose });
            }
            None => {}
        }
    }
    let tags = TagNames::for_key(tag_key);
    if cur2 {
        let keys: Vec<(String, String)> =
            [("resource_tags", tags.cur2_resource_tags_key), ("tags", tags.cur2_tags_key)]
                .into_iter()
                .filter(|(column, _)| header.iter().any(|h| h == column))
                .map(|(column, key)| (column.to_string(), key))
                .collect();
        let tenant = if keys.is_empty() { TenantSource::Absent } else { TenantSource::JsonKeys(keys) };
        return Ok(ResolvedColumns {
            format: CurFormat::Cur2Csv,
            names,
            tenant,
            effective_cost: None,
            contracted_cost: None,
            pricing_quantity: None,
            allocated_method: None,
            curflow_commitments: None,
        });
    }
    let tenant = match find(header.iter().map(String::as_str), &tags.csv) {
        Some(name) => TenantSource::Column(name.to_string()),
        None => TenantSource::Absent,
    };
    Ok(ResolvedColumns {
        format: CurFormat::LegacyCsv,
        names,
        tenant,
        effective_cost: None,
        contracted_cost: None,
        pricing_quantity: None,
        allocated_method: None,
        curflow_commitments: None,
    })
}

/// Exact name first; otherwise a unique case-insensitive match (AWS has changed the case of a few
/// CSV headers over the years, e.g. `product/servicecode`).
fn find<'a>(mut names: impl Iterator<Item = &'a str> + Clone, wanted: &str) -> Option<&'a str> {
    if let Some(exact) = names.clone().find(|n| *n == wanted) {
        return Some(exact);
    }
    let mut matches = names.by_ref().filter(|n| n.eq_ignore_ascii_case(wanted));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

pub(crate) fn is_string_map(t: &DataType) -> bool {
    match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                is_text(fields[0].data_type()) && is_text(fields[1].data_type())
            }
            _ => false,
        },
        _ => false,
    }
}

fn check_type(path: &Path, column: &str, kind: ColumnKind, t: &DataType) -> Result<()> {
    let (ok, expected) = match kind {
        ColumnKind::Timestamp => {
            (matches!(t, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64), "a timestamp or date")
        }
        ColumnKind::Money | ColumnKind::Quantity => (
            t.is_floating() || t.is_integer() || matches!(t, DataType::Decimal128(..)),
            "a number (double, decimal or integer)",
        ),
        ColumnKind::Text => (is_text(t), "text (string)"),
    };
    if ok { Ok(()) } else { Err(wrong_type(path, column, t, expected)) }
}

fn wrong_type(path: &Path, column: &str, t: &DataType, expected: &'static str) -> Error {
    Error::WrongColumnType { path: path.to_path_buf(), column: column.to_string(), found: t.to_string(), expected }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};

    fn legacy_schema(unblended: DataType) -> Schema {
        let mut fields: Vec<Field> = Col::ALL
            .iter()
            .filter(|c| c.spec().required)
            .map(|c| {
                let t = match c.spec().kind {
                    ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    ColumnKind::Money | ColumnKind::Quantity => DataType::Float64,
                    ColumnKind::Text => DataType::Utf8,
                };
                Field::new(c.parquet_name(), t, true)
            })
            .filter(|f| f.name() != "line_item_unblended_cost")
            .collect();
        fields.push(Field::new("line_item_unblended_cost", unblended, true));
        fields.push(Field::new("resource_tags_user_accountant_id", DataType::Utf8, true));
        Schema::new(fields)
    }

    #[test]
    fn legacy_parquet_resolves_and_optional_families_may_be_absent() {
        let r = resolve_parquet(Path::new("a.parquet"), &legacy_schema(DataType::Float64), "accountant_id").unwrap();
        assert_eq!(r.format, CurFormat::LegacyParquet);
        assert_eq!(r.name(Col::UnblendedCost), Some("line_item_unblended_cost"));
        assert_eq!(r.name(Col::NetUnblendedCost), None);
        assert_eq!(r.tenant, TenantSource::Column("resource_tags_user_accountant_id".into()));
        let other_tag = resolve_parquet(Path::new("a.parquet"), &legacy_schema(DataType::Float64), "team").unwrap();
        assert_eq!(other_tag.tenant, TenantSource::Absent);
    }

    #[test]
    fn a_cost_column_of_the_wrong_type_is_named() {
        let err = resolve_parquet(Path::new("a.parquet"), &legacy_schema(DataType::Utf8), "accountant_id").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a.parquet") && msg.contains("line_item_unblended_cost") && msg.contains("Utf8"), "{msg}");
    }

    #[test]
    fn a_missing_required_csv_column_is_named() {
        let header = vec!["lineItem/UsageStartDate".to_string()];
        let msg = resolve_csv(Path::new("x.csv"), &header, "accountant_id").unwrap_err().to_string();
        assert!(msg.contains("x.csv") && msg.contains("bill/BillingPeriodStartDate"), "{msg}");
    }

    #[test]
    fn a_cur2_csv_header_resolves_by_parquet_names_with_tags_in_json_text() {
        let mut header: Vec<String> = Col::ALL.iter().filter(|c| c.spec().required).map(|c| c.parquet_name()).collect();
        header.push("resource_tags".into());
        let r = resolve_csv(Path::new("x.csv"), &header, "project").unwrap();
        assert_eq!(r.format, CurFormat::Cur2Csv);
        assert_eq!(r.name(Col::UnblendedCost), Some("line_item_unblended_cost"));
        assert_eq!(r.tenant, TenantSource::JsonKeys(vec![("resource_tags".into(), "user_project".into())]));
        header.retain(|h| h != "line_item_usage_amount");
        let msg = resolve_csv(Path::new("x.csv"), &header, "project").unwrap_err().to_string();
        assert!(msg.contains("x.csv") && msg.contains("line_item_usage_amount"), "{msg}");
    }

    #[test]
    fn an_optional_column_of_nulls_only_is_read_as_absent_and_a_required_one_is_refused() {
        let mut schema = legacy_schema(DataType::Float64);
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("reservation_reservation_a_r_n", DataType::Null, true));
        schema = Schema::new(fields);
        let r = resolve_parquet(Path::new("a.parquet"), &schema, "accountant_id").unwrap();
        assert_eq!(r.name(Col::ReservationArn), None, "every value NULL: as if the column were not there");
        let untagged: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let t =
                    if f.name() == "resource_tags_user_accountant_id" { DataType::Null } else { f.data_type().clone() };
                f.as_ref().clone().with_data_type(t)
            })
            .collect();
        let r = resolve_parquet(Path::new("a.parquet"), &Schema::new(untagged), "accountant_id").unwrap();
        assert_eq!(r.tenant, TenantSource::Absent, "a tag column of NULLs only tags nothing");

        let focus = |commitment: DataType, currency: DataType| {
            Schema::new(vec![
                Field::new("BillingPeriodStart", DataType::Timestamp(TimeUnit::Millisecond, None), true),
                Field::new("ChargePeriodStart", DataType::Timestamp(TimeUnit::Millisecond, None), true),
                Field::new("ChargeCategory", DataType::Utf8, true),
                Field::new("ServiceName", DataType::Utf8, true),
                Field::new("BillingCurrency", currency, true),
                Field::new("BilledCost", DataType::Float64, true),
                Field::new("CommitmentDiscountId", commitment, true),
            ])
        };
        let r = resolve_parquet(Path::new("f.parquet"), &focus(DataType::Null, DataType::Utf8), "t").unwrap();
        assert_eq!(r.name(Col::ReservationArn), None);
        let r = resolve_parquet(Path::new("f.parquet"), &focus(DataType::Utf8, DataType::Utf8), "t").unwrap();
        assert_eq!(r.name(Col::ReservationArn), Some("CommitmentDiscountId"));
        let msg = resolve_parquet(Path::new("f.parquet"), &focus(DataType::Utf8, DataType::Null), "t").unwrap_err();
        assert!(msg.to_string().contains("BillingCurrency"), "{msg}");
    }

    #[test]
    fn focus_columns_resolve_with_the_aws_extensions_first() {
        let header: Vec<String> = [
            "BillingPeriodStart",
            "ChargePeriodStart",
            "ChargeCategory",
            "ServiceName",
            "x_ServiceCode",
            "BillingCurrency",
            "BilledCost",
            "EffectiveCost",
            "Tags",
        ]
        .map(String::from)
        .to_vec();
        let r = resolve_csv(Path::new("focus.csv"), &header, "team").unwrap();
        assert_eq!(r.format, CurFormat::Focus { csv: true });
        assert_eq!(r.name(Col::ProductCode), Some("x_ServiceCode"));
        assert_eq!(
            (r.name(Col::UnblendedCost), r.effective_cost.as_deref()),
            (Some("BilledCost"), Some("EffectiveCost"))
        );
        assert_eq!(
            r.tenant,
            TenantSource::JsonKeys(vec![("Tags".into(), "team".into()), ("Tags".into(), "user:team".into())])
        );
        let missing: Vec<String> = header.iter().filter(|h| *h != "BillingCurrency").cloned().collect();
        let msg = resolve_csv(Path::new("focus.csv"), &missing, "team").unwrap_err().to_string();
        assert!(msg.contains("focus.csv") && msg.contains("BillingCurrency"), "{msg}");
    }

    #[test]
    fn csv_names_match_case_insensitively_when_unique() {
        let names = ["lineitem/unblendedcost", "x"];
        assert_eq!(find(names.iter().copied(), "lineItem/UnblendedCost"), Some("lineitem/unblendedcost"));
        let ambiguous = ["A", "a"];
        assert_eq!(find(ambiguous.iter().copied(), "b"), None);
    }
}
