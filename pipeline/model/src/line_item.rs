//! Line-item types (`lineItem/LineItemType`) and how each one enters the cost measures.
//!
//! The set of types is **open**: AWS adds new ones (`BundledDiscount`, `FlatRateSubscription`,
//! ...). Unknown types are never dropped: they take the default branch of every measure (their
//! unblended cost) and are reported by name in the run summary.

/// The line-item types the cost measures treat specially, plus the types we merely recognise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LineItemKind {
    /// A type curflow does not know (kept, valued at its unblended cost, reported).
    #[default]
    Other = 0,
    Usage = 1,
    DiscountedUsage = 2,
    SavingsPlanCoveredUsage = 3,
    SavingsPlanNegation = 4,
    SavingsPlanRecurringFee = 5,
    SavingsPlanUpfrontFee = 6,
    RiFee = 7,
    Fee = 8,
    Tax = 9,
    Credit = 10,
    Refund = 11,
    FlatRateSubscription = 12,
    /// Negotiated/bundled discounts AWS documents (EdpDiscount, BundledDiscount, ...).
    Discount = 13,
}

impl LineItemKind {
    /// Every kind, for decoding the `u8` a scan column carries.
    const ALL: [LineItemKind; 14] = [
        Self::Other,
        Self::Usage,
        Self::DiscountedUsage,
        Self::SavingsPlanCoveredUsage,
        Self::SavingsPlanNegation,
        Self::SavingsPlanRecurringFee,
        Self::SavingsPlanUpfrontFee,
        Self::RiFee,
        Self::Fee,
        Self::Tax,
        Self::Credit,
        Self::Refund,
        Self::FlatRateSubscription,
        Self::Discount,
    ];

    /// Classifies the text of `lineItem/LineItemType` (exact, case-sensitive, as AWS writes it).
    pub fn from_type_name(name: &str) -> Self {
        match name {
            "Usage" | UNUSED_COMMITMENT => Self::Usage,
            "DiscountedUsage" => Self::DiscountedUsage,
            "SavingsPlanCoveredUsage" => Self::SavingsPlanCoveredUsage,
            "SavingsPlanNegation" => Self::SavingsPlanNegation,
            "SavingsPlanRecurringFee" => Self::SavingsPlanRecurringFee,
            "SavingsPlanUpfrontFee" => Self::SavingsPlanUpfrontFee,
            "RIFee" => Self::RiFee,
            "Fee" => Self::Fee,
            "Tax" => Self::Tax,
            "Credit" => Self::Credit,
            "Refund" => Self::Refund,
            "FlatRateSubscription" => Self::FlatRateSubscription,
            "BundledDiscount"
            | "Discount"
            | "EdpDiscount"
            | "PrivateRateDiscount"
            | "RiVolumeDiscount"
            | "SppDiscount" => Self::Discount,
            _ => Self::Other,
        }
    }

    /// Decodes the `u8` produced by [`LineItemKind::from_type_name`] `as u8`.
    pub fn from_code(code: u8) -> Self {
        Self::ALL.get(usize::from(code)).copied().unwrap_or(Self::Other)
    }

    /// Whether the type name is one curflow recognises (unknown ones are flagged in reports).
    pub fn is_known_name(name: &str) -> bool {
        Self::from_type_name(name) != Self::Other
    }

    /// Usage-bearing types whose `usage_amount` counts as consumption (CID `usage_quantity`).
    /// Negation rows repeat the covered usage amount and must not be counted twice.
    pub fn counts_usage(self) -> bool {
        matches!(self, Self::Usage | Self::DiscountedUsage | Self::SavingsPlanCoveredUsage | Self::FlatRateSubscription)
    }
}

/// The line-item type curflow stores for a FOCUS `Usage` row whose `CommitmentDiscountStatus` is
/// `Unused`: the part of a commitment (Savings Plan, reservation) nothing used in that hour. A CUR
/// carries it in its fee rows (`SavingsPlanRecurringFee`, `RIFee`), which the shipped attribution
/// rules split by direct cost; FOCUS writes it as usage of no resource, so without its own type
/// it would follow the service's usage rule, which has no evidence for it. Its measures are those
/// of `Usage` (FOCUS gives them as columns).
pub const UNUSED_COMMITMENT: &str = "UnusedCommitment";

/// Operations of split-cost-allocation child rows (ECS/EKS task and pod rows). They re-split the
/// cost of the parent EC2 instance, which the CUR also carries, so summing both double counts
/// (CID's `summary_view` excludes exactly these).
pub const SPLIT_COST_CHILD_OPERATIONS: [&str; 2] = ["EKSPod-EC2", "ECSTask-EC2"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_codes() {
        for name in ["Usage", "RIFee", "SavingsPlanNegation", "Tax", "BundledDiscount", "Mystery"] {
            let kind = LineItemKind::from_type_name(name);
            assert_eq!(LineItemKind::from_code(kind as u8), kind);
        }
        assert_eq!(LineItemKind::from_type_name("usage"), LineItemKind::Other, "case-sensitive");
        assert!(!LineItemKind::is_known_name("Mystery"));
    }

    #[test]
    fn only_consumption_types_count_usage() {
        assert!(LineItemKind::SavingsPlanCoveredUsage.counts_usage());
        assert!(!LineItemKind::SavingsPlanNegation.counts_usage());
        assert!(!LineItemKind::Tax.counts_usage());
    }
}
