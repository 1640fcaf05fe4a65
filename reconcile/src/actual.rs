//! Actual costs as the pipeline hands them over, and the daily series built from them.
//!
//! One record is one tenant × UTC day × service × usage type for one cost measure, with the amount split
//! into what CUR tagged to the tenant directly (`direct`) and what shared-cost attribution gave it
//! (`attributed`). The tenant's actual cost is always `direct + attributed`; both parts are kept so a
//! report can show how much of a variance rests on attribution.
//!
//! **Sign semantics.** Amounts are as on the bill: charges are positive, credits and refunds negative. A
//! credit therefore lowers the actual cost and makes the variance (`actual − estimated`) more negative; a
//! day or month can have a negative actual. Nothing here clamps at zero.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::total;

/// Which CUR cost measure a record carries (the pipeline's columns of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// `line_item_unblended_cost`: what the invoice shows before negotiated discounts.
    Unblended,
    /// Net unblended: after negotiated (EDP/PPA) discounts.
    NetUnblended,
    /// Amortized (the AWS/CID CASE): Savings Plan / RI covered usage at its effective cost. The default,
    /// because it spreads commitments over the usage that consumed them, as a per-tenant cost should.
    #[default]
    Amortized,
}

/// One actual-cost record (field names are the CSV/JSON columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualCost {
    /// The tenant.
    pub accountant_id: String,
    /// The UTC usage day.
    pub day: NaiveDate,
    /// CUR `line_item_product_code`, e.g. `AWSLambda`.
    pub service: String,
    /// CUR `line_item_usage_type`, e.g. `USE1-Request`.
    pub usage_type: String,
    /// Σ `line_item_usage_amount` of the tenant's share, when known.
    #[serde(default)]
    pub usage_quantity: Option<Decimal>,
    /// CUR `pricing_unit` of `usage_quantity`, e.g. `Requests`, `Lambda-GB-Second`.
    #[serde(default)]
    pub usage_unit: Option<String>,
    /// The measure the amounts are in.
    #[serde(default)]
    pub measure: Measure,
    /// ISO currency code of the amounts (CUR amounts are USD).
    pub currency: String,
    /// Cost tagged to the tenant in CUR.
    pub direct: Decimal,
    /// Shared cost attributed to the tenant.
    pub attributed: Decimal,
}

impl ActualCost {
    /// `direct + attributed`.
    pub fn amount(&self) -> Result<Decimal> {
        total(self.direct, self.attributed)
    }
}

/// The records of `measure`, checked to be in `currency`.
pub(crate) fn selected<'a>(
    actuals: &'a [ActualCost],
    measure: Measure,
    currency: &'a str,
) -> impl Iterator<Item = Result<&'a ActualCost>> + 'a {
    actuals.iter().filter(move |a| a.measure == measure).map(move |a| {
        if a.currency == currency {
            Ok(a)
        } else {
            Err(Error::Currency {
                accountant_id: a.accountant_id.clone(),
                day: a.day.to_string(),
                found: a.currency.clone(),
                expected: currency.to_owned(),
            })
        }
    })
}

/// A daily cost series: day → amount. Days without a record are absent (they cost 0).
pub type DailySeries = BTreeMap<NaiveDate, Decimal>;

/// Daily `direct + attributed` per tenant, for `measure` only (records in another currency are an error).
pub fn daily_by_tenant(
    actuals: &[ActualCost],
    measure: Measure,
    currency: &str,
) -> Result<BTreeMap<String, DailySeries>> {
    let mut out: BTreeMap<String, DailySeries> = BTreeMap::new();
    for a in selected(actuals, measure, currency) {
        let a = a?;
        let slot = out.entry(a.accountant_id.clone()).or_default().entry(a.day).or_default();
        *slot = total(*slot, a.amount()?)?;
    }
    Ok(out)
}

/// Daily `direct + attributed` per (tenant, service), for `measure` only.
pub fn daily_by_tenant_service(
    actuals: &[ActualCost],
    measure: Measure,
    currency: &str,
) -> Result<BTreeMap<(String, String), DailySeries>> {
    let mut out: BTreeMap<(String, String), DailySeries> = BTreeMap::new();
    for a in selected(actuals, measure, currency) {
        let a = a?;
        let key = (a.accountant_id.clone(), a.service.clone());
        let slot = out.entry(key).or_default().entry(a.day).or_default();
        *slot = total(*slot, a.amount()?)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn rec(tenant: &str, day: u32, service: &str, measure: Measure, currency: &str, direct: i64) -> ActualCost {
        ActualCost {
            accountant_id: tenant.into(),
            day: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
            service: service.into(),
            usage_type: "x".into(),
            usage_quantity: None,
            usage_unit: None,
            measure,
            currency: currency.into(),
            direct: Decimal::new(direct, 2),
            attributed: Decimal::new(1, 2),
        }
    }

    #[test]
    fn sums_per_day_for_one_measure() {
        let rows = [
            rec("a", 1, "S1", Measure::Amortized, "USD", 100),
            rec("a", 1, "S2", Measure::Amortized, "USD", 200),
            rec("a", 1, "S2", Measure::Unblended, "EUR", 999),
            rec("b", 2, "S1", Measure::Amortized, "USD", -50),
        ];
        let by_tenant = daily_by_tenant(&rows, Measure::Amortized, "USD").unwrap();
        assert_eq!(by_tenant["a"].values().copied().collect::<Vec<_>>(), [Decimal::new(302, 2)]);
        assert_eq!(by_tenant["b"].values().copied().collect::<Vec<_>>(), [Decimal::new(-49, 2)]);
        let by_service = daily_by_tenant_service(&rows, Measure::Amortized, "USD").unwrap();
        assert_eq!(by_service.len(), 3);
        assert!(matches!(daily_by_tenant(&rows, Measure::Unblended, "USD"), Err(Error::Currency { .. })));
    }
}
