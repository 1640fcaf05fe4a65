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

impl ReportVersion {
    /// Whether `self` supersedes `stored`: later time wins; equal times are ordered by id so
    /// that two writers agree on the winner.
    pub fn supersedes(&self, stored: &ReportVersion) -> bool {
        (self.time, &self.id) > (stored.time, &stored.id)
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
