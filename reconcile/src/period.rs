//! Billing-period state: how far a month's actual costs can still move.
//!
//! * `open`: the month has not ended as of `now` (UTC). Costs are month-to-date; a variance is a trend.
//! * `provisional`: the month has ended but the bill carries no invoice id yet. AWS keeps updating the CUR
//!   "at least once a day until your charges are finalized" (support fees and credits land around the
//!   6th–7th of the following month).
//! * `final`: the invoice id is present ("those line items for the month are final"). AWS may still
//!   restate for refunds and credits; re-running the reconciliation then simply yields new numbers.
//!
//! The state travels with every variance, flag, suggestion and anomaly so that an open-month variance is
//! never presented as a final one ([`crate::VarianceStatus`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::month::Month;

/// How settled a month's actual costs are (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodState {
    Open,
    Provisional,
    Final,
}

impl PeriodState {
    /// The state of `month` at `now`, given the bill's invoice id if any (blank counts as none).
    ///
    /// A month that has not ended is `Open` even if an invoice id is somehow present.
    pub fn of(month: Month, now: DateTime<Utc>, invoice_id: Option<&str>) -> Self {
        if now.date_naive() < month.next().first_day() {
            Self::Open
        } else if invoice_id.is_some_and(|id| !id.trim().is_empty()) {
            Self::Final
        } else {
            Self::Provisional
        }
    }

    /// The name used in CSV/JSON (`open`, `provisional`, `final`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Provisional => "provisional",
            Self::Final => "final",
        }
    }
}

/// What decides period states in a run: the clock reading and the invoice ids seen on the bills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Periods {
    /// "Now", as a parameter: the crate never reads a clock.
    pub now: DateTime<Utc>,
    /// `bill_invoice_id` per billing period, for the months whose bill has one.
    #[serde(default)]
    pub invoice_ids: BTreeMap<Month, String>,
}

impl Periods {
    /// No invoice ids known yet.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now, invoice_ids: BTreeMap::new() }
    }

    /// Records the invoice id of `month`'s bill.
    pub fn with_invoice(mut self, month: Month, invoice_id: impl Into<String>) -> Self {
        self.invoice_ids.insert(month, invoice_id.into());
        self
    }

    /// The state of `month`.
    pub fn state(&self, month: Month) -> PeriodState {
        PeriodState::of(month, self.now, self.invoice_ids.get(&month).map(String::as_str))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let oct: Month = "2026-10".parse().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(PeriodState::of(oct, at("2026-10-31T23:59:59Z"), None), PeriodState::Open);
        assert_eq!(PeriodState::of(oct, at("2026-10-31T23:59:59Z"), Some("123")), PeriodState::Open);
        assert_eq!(PeriodState::of(oct, at("2026-11-01T00:00:00Z"), None), PeriodState::Provisional);
        assert_eq!(PeriodState::of(oct, at("2026-11-03T00:00:00Z"), Some(" ")), PeriodState::Provisional);
        assert_eq!(PeriodState::of(oct, at("2026-11-07T00:00:00Z"), Some("EUINGB26-1")), PeriodState::Final);
        let p = Periods::new(at("2026-11-08T00:00:00Z")).with_invoice(oct, "EUINGB26-1");
        assert_eq!(p.state(oct), PeriodState::Final);
        assert_eq!(p.state(oct.next()), PeriodState::Open);
        assert_eq!(serde_json::to_string(&PeriodState::Provisional).unwrap(), "\"provisional\"");
    }
}
