//! Finance export: one expense entry per tenant and AWS service for a month.
//!
//! The accounting side books AWS costs per service. Each entry: vendor `AWS - <display name>`, the amount
//! in cents, the month's last day as the date, category `Software`, and the description
//! `AWS <display name> charges for <Month YYYY>` (`AWS AWSLambda charges for October 2026` when no display
//! name is given: the display name defaults to the CUR service code).
//!
//! **Rounding.** A tenant's exact total is rounded to cents (half away from zero) and the per-service
//! amounts are rounded with the largest-remainder method ([`crate::round_preserving_total`]), so the
//! entries of a tenant sum **exactly** to the tenant's rounded total: no cent appears or disappears
//! between the reconciliation and the books. Entries that round to 0.00 are left out (they change no sum).
//! Credits give negative entries.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actual::{ActualCost, Measure, selected};
use crate::error::Result;
use crate::money::{round_preserving_total, total};
use crate::month::Month;

/// The category of every entry.
pub const EXPENSE_CATEGORY: &str = "Software";

/// Decimal places of exported amounts.
pub const EXPENSE_DP: u32 = 2;

/// One expense entry (field names are CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpenseEntry {
    pub accountant_id: String,
    /// The CUR service code.
    pub service: String,
    /// `AWS - <display name>`.
    pub vendor: String,
    /// Cents, always written with two decimals.
    pub amount: Decimal,
    pub currency: String,
    /// The last day of the month (`YYYY-MM-DD`).
    pub date: NaiveDate,
    pub category: String,
    pub description: String,
}

/// Expense entries of `month` from the actual records of `measure` (which must be in `currency`), sorted by
/// tenant and service. `display_names` maps CUR service codes to names for people.
pub fn expenses(
    actuals: &[ActualCost],
    month: Month,
    measure: Measure,
    currency: &str,
    display_names: &BTreeMap<String, String>,
) -> Result<Vec<ExpenseEntry>> {
    let mut totals: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    for a in selected(actuals, measure, currency) {
        let a = a?;
        if !month.contains(a.day) {
            continue;
        }
        let slot = totals.entry(a.accountant_id.clone()).or_default().entry(a.service.clone()).or_default();
        *slot = total(*slot, a.amount()?)?;
    }
    let mut out = Vec::new();
    for (tenant, services) in totals {
        let amounts: Vec<Decimal> = services.values().copied().collect();
        let rounded = round_preserving_total(&amounts, EXPENSE_DP)?;
        for (service, mut amount) in services.into_keys().zip(rounded) {
            if amount.is_zero() {
                continue;
            }
            amount.rescale(EXPENSE_DP);
            let name = display_names.get(&service).cloned().unwrap_or_else(|| service.clone());
            out.push(ExpenseEntry {
                accountant_id: tenant.clone(),
                vendor: format!("AWS - {name}"),
                amount,
                currency: currency.to_owned(),
                date: month.last_day(),
                category: EXPENSE_CATEGORY.to_owned(),
                description: format!("AWS {name} charges for {}", month.long_name()),
                service,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    fn rec(tenant: &str, day: u32, service: &str, direct: &str, attributed: &str) -> ActualCost {
        ActualCost {
            accountant_id: tenant.into(),
            day: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
            service: service.into(),
            usage_type: "u".into(),
            usage_quantity: None,
            usage_unit: None,
            measure: Measure::Amortized,
            currency: "USD".into(),
            direct: d(direct),
            attributed: d(attributed),
        }
    }

    #[test]
    fn entries_sum_to_the_rounded_tenant_total() {
        // acct-1: Lambda 1.004 + 2.001 = 3.005 over two days, DynamoDB 0.333, S3 0.333, CloudTrail 0.001.
        let rows = [
            rec("acct-1", 1, "AWSLambda", "1.004", "0"),
            rec("acct-1", 2, "AWSLambda", "2", "0.001"),
            rec("acct-1", 3, "AmazonDynamoDB", "0.3", "0.033"),
            rec("acct-1", 3, "AmazonS3", "0", "0.333"),
            rec("acct-1", 3, "AWSCloudTrail", "0.001", "0"),
            rec("acct-2", 31, "AWSLambda", "-1.255", "0"),
            rec("acct-2", 1, "AmazonS3", "0.5", "0"),
            rec("acct-2", 1, "AmazonS3", "9", "0"), // not October: ignored below
        ];
        let mut rows = rows.to_vec();
        rows[7].day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let names = BTreeMap::from([("AWSLambda".to_string(), "Lambda".to_string())]);
        let oct: Month = "2026-10".parse().unwrap();
        let e = expenses(&rows, oct, Measure::Amortized, "USD", &names).unwrap();
        let got: Vec<(&str, &str, String)> =
            e.iter().map(|x| (x.accountant_id.as_str(), x.service.as_str(), x.amount.to_string())).collect();
        // acct-1 exact 3.005 + 0.333 + 0.333 + 0.001 = 3.672 → 3.67. Floors 3.00 + 0.33 + 0.33 + 0.00 = 3.66;
        // one cent to the largest remainder (0.005, Lambda). CloudTrail rounds to 0.00 and is left out.
        // acct-2: −1.255 + 0.5 = −0.755 → −0.76; floors −1.26 + 0.50 = −0.76: nothing to add.
        assert_eq!(
            got,
            [
                ("acct-1", "AWSLambda", "3.01".to_string()),
                ("acct-1", "AmazonDynamoDB", "0.33".to_string()),
                ("acct-1", "AmazonS3", "0.33".to_string()),
                ("acct-2", "AWSLambda", "-1.26".to_string()),
                ("acct-2", "AmazonS3", "0.50".to_string()),
            ]
        );
        assert_eq!(e[0].vendor, "AWS - Lambda");
        assert_eq!(e[0].description, "AWS Lambda charges for October 2026");
        assert_eq!(e[1].vendor, "AWS - AmazonDynamoDB");
        assert_eq!(e[1].description, "AWS AmazonDynamoDB charges for October 2026");
        assert_eq!((e[0].category.as_str(), e[0].date.to_string()), ("Software", "2026-10-31".to_string()));
        let json = serde_json::to_value(&e[4]).unwrap();
        assert_eq!(json["amount"], "0.50");
        assert_eq!(json["date"], "2026-10-31");
    }
}
