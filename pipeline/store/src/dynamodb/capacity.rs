//! What a period replace costs in DynamoDB write units, computed from the items this store writes.
//!
//! DynamoDB on-demand charges one write request unit per 1 KB (rounded up) of each item put or
//! deleted. Replacing a period puts every item of the new version and, once the pointer has
//! switched, deletes every item of the old one; so a CUR refresh that changes nothing's shape costs
//! twice the version's write units (plus one for the pointer). The item size follows AWS's rules
//! ("Item sizes and formats" in the DynamoDB developer guide): attribute names count, strings are
//! their UTF-8 bytes, numbers about one byte per two significant digits plus one, booleans one
//! byte, lists three bytes plus one per element plus the elements.

use aws_sdk_dynamodb::types::AttributeValue;
use curflow_model::ReportVersion;
use curflow_model::aggregate::CostLine;
use serde::Serialize;

use super::item::{Item, Stamp, line_item, pool_item};

/// The write cost of one version of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VersionWrites {
    /// Items of the version (lines and pool).
    pub items: u64,
    /// Bytes of those items, as DynamoDB sizes them.
    pub bytes: u64,
    /// Write request units to put them (each item's size in KB, rounded up).
    pub write_units: u64,
}

impl VersionWrites {
    /// Write units of one CUR refresh that replaces a stored version of the same shape: the new
    /// items put, the old ones deleted, and the pointer switched.
    pub fn per_refresh(&self) -> u64 {
        2 * self.write_units + 1
    }
}

/// The items this store writes for `lines` and `pool` of one version, and their write units.
pub fn version_writes(lines: &[CostLine], pool: &[CostLine]) -> VersionWrites {
    let stamp = Stamp {
        tag: "0123456789abcdef".into(),
        base: "fedcba9876543210".into(),
        version: ReportVersion { id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(), time: chrono::Utc::now() },
    };
    let items = lines.iter().enumerate().map(|(i, l)| line_item(l, i, &stamp));
    let items = items.chain(pool.iter().enumerate().map(|(i, l)| pool_item(l, i, &stamp)));
    let mut out = VersionWrites::default();
    for item in items {
        let bytes = item_bytes(&item) as u64;
        out.items += 1;
        out.bytes += bytes;
        out.write_units += bytes.div_ceil(1024).max(1);
    }
    out
}

/// An item's size as DynamoDB counts it.
pub(super) fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_bytes(value)).sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_bytes(n),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_bytes(v)).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::B(b) => b.as_ref().len(),
        _ => 0,
    }
}

/// One byte per two significant digits, plus one.
fn number_bytes(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        assert_eq!(number_bytes("0"), 2);
        assert_eq!(number_bytes("123.45"), 4);
        assert_eq!(number_bytes("-0.000000000001"), 2);
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("acct-1".into())); // 2 + 6
        item.insert("ok".into(), AttributeValue::Bool(true)); // 2 + 1
        item.insert("l".into(), AttributeValue::L(vec![AttributeValue::S("ab".into())])); // 1 + 3 + 1 + 2
        assert_eq!(item_bytes(&item), 18);
    }

    /// Who bills a line (six texts, each an attribute when known) costs about 190 bytes an item,
    /// and a realistic attributed line still fits in one write unit with all of them.
    #[test]
    fn who_bills_a_line_keeps_its_item_within_one_write_unit() {
        use curflow_model::aggregate::{Amounts, Attribution, CostKey};
        use curflow_model::{Billing, BillingParts, BillingPeriod};
        let dec = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap_or_default();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap_or_default();
        let key = CostKey {
            usage_unit: "Lambda-GB-Second".into(),
            account_name: "production-workloads".into(),
            ..curflow_model::testing::cost_key(day, Some("acct-000123"), "AWSLambda", "USE1-Lambda-GB-Second-ARM")
        };
        let line = CostLine {
            period: BillingPeriod::new(2026, 10).unwrap_or_else(|| unreachable!()),
            key,
            amounts: Amounts {
                unblended_cost: dec("1234.567890123456"),
                net_unblended_cost: dec("1111.111111111111"),
                amortized_cost: dec("1100.123456789012"),
                usage_amount: dec("987654.1234567890"),
                pricing_quantity: dec("987654.1234567890"),
                line_items: 8760,
                list_cost: dec("1300.987654321098"),
                contracted_cost: dec("1234.567890123456"),
                ..Amounts::default()
            },
            attribution: Some(Box::new(Attribution {
                rule: "lambda-gb-seconds".into(),
                basis: "usage_driver".into(),
                driver: Some("lambda_gb_seconds".into()),
                quantity: dec("123456.789"),
                quantity_total: dec("98765432.1"),
                share: dec("0.001250000000"),
            })),
            unattributed_reason: None,
        };
        let emea = "Amazon Web Services EMEA SARL";
        let billing = Billing::new(BillingParts {
            account_id: "123456789012",
            account_name: "organisation-management",
            provider: "",
            publisher: emea,
            invoice_issuer: emea,
            invoice_id: "EUINGB26-1234567",
        });
        let billed = CostLine { key: CostKey { billing, ..line.key.clone() }, ..line.clone() };
        let (without, with) = (version_writes(std::slice::from_ref(&line), &[]), version_writes(&[billed], &[]));
        let added = with.bytes - without.bytes;
        assert_eq!(added, 30 + 43 + 43 + 48 + 26, "name and text of each attribute");
        assert_eq!((without.write_units, with.write_units), (1, 1), "{} and {} bytes", without.bytes, with.bytes);
    }
}
