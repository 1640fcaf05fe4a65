//! Which delivery of a billing period is which: its version (newer replaces older) and the invoice
//! ids that make it final. Discovery produces them, scanning counts invoices, stores keep both.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The version of a delivery: which restatement of the month it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportVersion {
    /// `assemblyId` / `executionId`, or `files-<hash>` for data files without a manifest.
    pub id: String,
    /// When the delivery was made: the manifest's modification time (AWS overwrites the manifest
    /// on every refresh), or the newest data file's for manifest-less input. Decides "older".
    pub time: DateTime<Utc>,
}

/// Prefix of the id of a period version synced from Cost Explorer (`curflow ce sync`). The source
/// lives in the id, which both stores already keep, so no schema changes: a Cost Explorer version is
/// a stand-in until the month's CUR arrives.
pub const COST_EXPLORER_VERSION_PREFIX: &str = "cost-explorer-";

impl ReportVersion {
    /// Whether `self` supersedes `stored`. A CUR delivery always supersedes a Cost Explorer
    /// version (the CUR is the bill; Cost Explorer is coarser and provisional) and a Cost Explorer
    /// version never supersedes a CUR one, whatever their times: a sync after the CUR was processed
    /// must not replace it. Otherwise the later time wins; equal times are ordered by id so that two
    /// writers agree on the winner.
    pub fn supersedes(&self, stored: &ReportVersion) -> bool {
        match (self.is_cost_explorer(), stored.is_cost_explorer()) {
            (false, true) => true,
            (true, false) => false,
            _ => (self.time, &self.id) > (stored.time, &stored.id),
        }
    }

    /// Whether this version was synced from Cost Explorer rather than read from a CUR delivery.
    pub fn is_cost_explorer(&self) -> bool {
        self.id.starts_with(COST_EXPLORER_VERSION_PREFIX)
    }
}

/// Invoice ids on a period's lines. AWS leaves `bill/InvoiceId` blank until the month's bill is
/// issued; a line that carries one is final (cur-domain.md §4), so a period is final when every line does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Invoices {
    /// Distinct non-blank invoice ids, sorted (a period can have several, e.g. Marketplace).
    pub ids: Vec<String>,
    /// Rows (after split-cost child rows are dropped) without an invoice id; `None` when unknown
    /// (a period stored by an older curflow).
    pub rows_without_id: Option<u64>,
}

impl Invoices {
    /// The invoice id(s) that make the period final, comma-joined; `None` while any row lacks one.
    pub fn final_invoice_id(&self) -> Option<String> {
        (!self.ids.is_empty() && self.rows_without_id == Some(0)).then(|| self.ids.join(","))
    }

    /// Adds one group of `rows` rows carrying `id` (blank or `None`: no invoice yet).
    pub fn add(&mut self, id: Option<&str>, rows: u64) {
        match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                if let Err(at) = self.ids.binary_search_by(|x| x.as_str().cmp(id)) {
                    self.ids.insert(at, id.to_string());
                }
                self.rows_without_id.get_or_insert(0);
            }
            None => *self.rows_without_id.get_or_insert(0) += rows,
        }
    }

    /// Combines the invoices of two parts of one period (files of a delivery).
    pub fn merge(&mut self, other: &Invoices) {
        for id in &other.ids {
            self.add(Some(id), 0);
        }
        if let Some(n) = other.rows_without_id {
            *self.rows_without_id.get_or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, secs: i64) -> ReportVersion {
        ReportVersion { id: id.into(), time: DateTime::from_timestamp(secs, 0).unwrap_or_default() }
    }

    #[test]
    fn a_cur_delivery_supersedes_cost_explorer_and_never_the_reverse() {
        let ce_late = v("cost-explorer-abc", 2_000);
        let cur_early = v("assembly-1", 1_000);
        assert!(cur_early.supersedes(&ce_late));
        assert!(!ce_late.supersedes(&cur_early));
        assert!(v("cost-explorer-b", 3_000).supersedes(&ce_late));
        assert!(!v("assembly-0", 500).supersedes(&cur_early));
    }
}
