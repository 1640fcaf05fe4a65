//! The CUR columns curflow reads, named once in legacy CSV form (`lineItem/UnblendedCost`).
//!
//! Legacy Parquet (Athena) and CUR 2.0 names are derived from the CSV name with AWS's documented
//! rule ([`aws_parquet_name`]), so the three formats cannot drift apart in this table.

/// What a logical column holds; decides which physical types are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A point in time (`*_date`): Parquet timestamp/date, or text in CSV.
    Timestamp,
    /// Money, exact at [`curflow_model::money::MONEY_SCALE`]: Parquet float/decimal/integer, or text in CSV.
    Money,
    /// A usage quantity, exact at [`curflow_model::money::QUANTITY_SCALE`].
    Quantity,
    /// Text (codes, ids, types).
    Text,
}

/// A column the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurColumn {
    /// Legacy CSV header, `category/Name`.
    pub csv_name: &'static str,
    pub kind: ColumnKind,
    /// A missing required column is an error; a missing optional one reads as NULL.
    pub required: bool,
    /// Why we need it, quoted in "missing column" errors.
    pub purpose: &'static str,
}

macro_rules! columns {
    ($($id:ident = $csv:literal, $kind:ident, $req:literal, $purpose:literal;)*) => {
        /// Every column curflow reads (tenant tags are resolved separately, see `schema::resolve`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Col { $($id),* }
        /// Each column's own legacy CSV name, by `Col as usize`.
        const COLUMN_CSV_NAMES: &[&str] = &[$($csv),*];
        impl Col {
            pub const ALL: &'static [Col] = &[$(Col::$id),*];
            pub const fn spec(self) -> CurColumn {
                match self {
                    $(Col::$id => CurColumn { csv_name: $csv, kind: ColumnKind::$kind, required: $req, purpose: $purpose }),*
                }
            }
        }
    };
}

columns! {
    BillingPeriodStart = "bill/BillingPeriodStartDate", Timestamp, true, "billing period of the row";
    UsageStart = "lineItem/UsageStartDate", Timestamp, true, "usage day (UTC)";
    LineItemType = "lineItem/LineItemType", Text, true, "cost semantics per line-item type";
    ProductCode = "lineItem/ProductCode", Text, true, "service";
    UsageType = "lineItem/UsageType", Text, true, "usage type";
    Operation = "lineItem/Operation", Text, true, "shared-pool grain and split-cost-allocation filter";
    CurrencyCode = "lineItem/CurrencyCode", Text, true, "amounts are never summed across currencies";
    UsageAmount = "lineItem/UsageAmount", Quantity, true, "usage quantity";
    UnblendedCost = "lineItem/UnblendedCost", Money, true, "unblended cost";
    ResourceId = "lineItem/ResourceId", Text, false, "shared-pool grain";
    NetUnblendedCost = "lineItem/NetUnblendedCost", Money, false, "net unblended cost";
    ReservationArn = "reservation/ReservationARN", Text, false, "RI upfront fees";
    ReservationEffectiveCost = "reservation/EffectiveCost", Money, false, "amortized RI usage";
    ReservationUnusedAmortizedUpfrontFee = "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", Money, false, "amortized unused RI";
    ReservationUnusedRecurringFee = "reservation/UnusedRecurringFee", Money, false, "amortized unused RI";
    ReservationAmortizedUpfrontFee = "reservation/AmortizedUpfrontFeeForBillingPeriod", Money, false, "RI true-up";
    SavingsPlanEffectiveCost = "savingsPlan/SavingsPlanEffectiveCost", Money, false, "amortized SP usage";
    SavingsPlanTotalCommitment = "savingsPlan/TotalCommitmentToDate", Money, false, "amortized unused SP";
    SavingsPlanUsedCommitment = "savingsPlan/UsedCommitment", Money, false, "amortized unused SP";
    SavingsPlanAmortizedUpfront = "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", Money, false, "SP true-up";
    PricingUnit = "pricing/unit", Text, false, "unit of the usage quantity (volume vs rate variance)";
    InvoiceId = "bill/InvoiceId", Text, false, "whether the period's lines are final";
    UsageAccountId = "lineItem/UsageAccountId", Text, false, "costs per linked account";
    UsageAccountName = "lineItem/UsageAccountName", Text, false, "the linked account's name";
    Region = "product/region", Text, false, "costs per region";
    ListCost = "pricing/publicOnDemandCost", Money, false, "list (public on-demand) cost";
    PayerAccountId = "bill/PayerAccountId", Text, false, "the billing account (FOCUS BillingAccountId)";
    PayerAccountName = "bill/PayerAccountName", Text, false, "the billing account's name (CUR 2.0)";
    InvoicingEntity = "bill/InvoicingEntity", Text, false, "the invoice issuer (FOCUS InvoiceIssuerName)";
    LegalEntity = "lineItem/LegalEntity", Text, false, "the seller of record (FOCUS PublisherName)";
    ProviderName = "ProviderName", Text, false, "the provider (FOCUS only; a CUR is AWS's own)";
    ChargeFrequency = "ChargeFrequency", Text, false, "one-time commitment purchases are upfront fees (FOCUS only)";
    ChargeClass = "ChargeClass", Text, false, "corrections of earlier billing periods (FOCUS only)";
    CommitmentDiscountStatus = "CommitmentDiscountStatus", Text, false, "unused commitment (FOCUS only)";
}

/// The commitment (RI / Savings Plan) columns in the order of
/// [`curflow_model::measures::CommitmentAmounts`]' fields, which
/// [`curflow_model::measures::commitments_read`] indexes per line-item type.
pub const COMMITMENT_COLS: [Col; curflow_model::measures::COMMITMENT_FIELDS] = [
    Col::SavingsPlanEffectiveCost,
    Col::SavingsPlanTotalCommitment,
    Col::SavingsPlanUsedCommitment,
    Col::SavingsPlanAmortizedUpfront,
    Col::ReservationEffectiveCost,
    Col::ReservationUnusedAmortizedUpfrontFee,
    Col::ReservationUnusedRecurringFee,
    Col::ReservationAmortizedUpfrontFee,
];

impl Col {
    /// Name in legacy Parquet and CUR 2.0 (`line_item_unblended_cost`).
    pub fn parquet_name(self) -> String {
        aws_parquet_name(self.spec().csv_name)
    }

    /// The legacy CSV names to look for, first found wins: the column's own, then older or newer
    /// spellings. The region is `product/region` in legacy reports (always filled, measured on the
    /// public sample, where `product/regionCode` is empty on 40 % of rows) and only
    /// `product_region_code` in CUR 2.0.
    pub fn csv_names(self) -> &'static [&'static str] {
        match self {
            Col::Region => &["product/region", "product/regionCode"],
            // No CUR column: AWS writes a CUR of itself (FOCUS `ProviderName` only).
            Col::ProviderName => &[],
            // FOCUS only: a CUR's line-item types say which rows are upfront fees.
            Col::ChargeFrequency => &[],
            // FOCUS only: a CUR has no corrections column.
            Col::ChargeClass => &[],
            // FOCUS only: a CUR carries unused commitment in its fee line-item types.
            Col::CommitmentDiscountStatus => &[],
            _ => std::slice::from_ref(&COLUMN_CSV_NAMES[self as usize]),
        }
    }

    /// [`Self::csv_names`] in the Parquet / CUR 2.0 spelling.
    pub fn parquet_names(self) -> Vec<String> {
        self.csv_names().iter().map(|n| aws_parquet_name(n)).collect()
    }
}

/// AWS's column-name rule for the Athena/Parquet CUR (cur-domain.md §1.2): an underscore before
/// each uppercase letter, lowercase everything, every non-alphanumeric character becomes `_`,
/// runs of `_` collapse, leading/trailing `_` are trimmed.
pub fn aws_parquet_name(csv_name: &str) -> String {
    let mut out = String::with_capacity(csv_name.len() + 8);
    for c in csv_name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    collapsed.trim_matches('_').to_string()
}

/// Where the tenant tag lives in each format, for a tag key such as `accountant_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagNames {
    /// Legacy CSV column: `resourceTags/user:accountant_id`.
    pub csv: String,
    /// Legacy Parquet column: `resource_tags_user_accountant_id`.
    pub parquet: String,
    /// CUR 2.0 `resource_tags` map key: `user_accountant_id`.
    pub cur2_resource_tags_key: String,
    /// CUR 2.0 `tags` map key (raw form): `resourceTags/user:accountant_id`.
    pub cur2_tags_key: String,
}

impl TagNames {
    pub fn for_key(tag_key: &str) -> Self {
        let csv = format!("resourceTags/user:{tag_key}");
        let parquet = aws_parquet_name(&csv);
        let cur2_resource_tags_key = parquet.trim_start_matches("resource_tags_").to_string();
        Self { cur2_tags_key: csv.clone(), csv, parquet, cur2_resource_tags_key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_names_follow_the_aws_rule() {
        assert_eq!(aws_parquet_name("lineItem/UnblendedCost"), "line_item_unblended_cost");
        assert_eq!(aws_parquet_name("reservation/ReservationARN"), "reservation_reservation_a_r_n");
        assert_eq!(
            aws_parquet_name("savingsPlan/SavingsPlanEffectiveCost"),
            "savings_plan_savings_plan_effective_cost"
        );
        assert_eq!(aws_parquet_name("resourceTags/user:AccountantId"), "resource_tags_user_accountant_id");
        assert_eq!(aws_parquet_name("resourceTags/user:accountantID"), "resource_tags_user_accountant_i_d");
        assert_eq!(
            aws_parquet_name("resourceTags/user:app.kubernetes.io/name"),
            "resource_tags_user_app_kubernetes_io_name"
        );
        assert_eq!(Col::LineItemType.parquet_name(), "line_item_line_item_type");
        assert_eq!(Col::BillingPeriodStart.parquet_name(), "bill_billing_period_start_date");
    }

    #[test]
    fn tag_names_cover_all_three_formats() {
        let t = TagNames::for_key("accountant_id");
        assert_eq!(t.csv, "resourceTags/user:accountant_id");
        assert_eq!(t.parquet, "resource_tags_user_accountant_id");
        assert_eq!(t.cur2_resource_tags_key, "user_accountant_id");
    }
}
