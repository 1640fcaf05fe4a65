//! Who bills a cost line, and on which invoice: the billing (payer) account, the provider, the
//! publisher (seller of record), the invoice issuer and the invoice id — what FOCUS's mandatory
//! `BillingAccountId`, `BillingAccountName`, `ProviderName`, `PublisherName`,
//! `InvoiceIssuerName` and its `InvoiceId` carry.
//!
//! Read from the report where it has them (legacy CUR `bill/PayerAccountId`,
//! `bill/InvoicingEntity`, `lineItem/LegalEntity`, `bill/InvoiceId`; CUR 2.0 the same in snake
//! case plus `bill_payer_account_name`; FOCUS its own columns). Each text is determined by the
//! usage account and the product (one payer per report, one invoicing entity per account, one
//! seller per product, one invoice per entity and month), so they add no groups.
//!
//! The six texts are held as **one** interned text, joined by U+001F (unit separator): a cost
//! line grows by one pointer, not six, which matters at millions of lines per month. A U+001F
//! inside a value (never seen in a report) is read as a space so the parts always split back
//! exactly. All six empty is the empty text (a report that has none of the columns).

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeStruct};

use crate::name::{Name, Names};

/// Separates the parts inside the interned text.
const SEP: char = '\u{1f}';
/// How many parts a billing party has.
const PARTS: usize = 6;

/// The billing party of a cost line (see the module documentation); empty parts are unknown.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Billing(Name);

/// The parts of a [`Billing`], borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillingParts<'a> {
    /// The payer account id (FOCUS `BillingAccountId`).
    pub account_id: &'a str,
    /// The payer account name (FOCUS `BillingAccountName`; CUR 2.0 and FOCUS only).
    pub account_name: &'a str,
    /// The provider (FOCUS `ProviderName`; empty for a CUR, which AWS writes of itself).
    pub provider: &'a str,
    /// The seller of record (`lineItem/LegalEntity`, FOCUS `PublisherName`).
    pub publisher: &'a str,
    /// The entity that issues the invoice (`bill/InvoicingEntity`, FOCUS `InvoiceIssuerName`).
    pub invoice_issuer: &'a str,
    /// The invoice (`bill/InvoiceId`, FOCUS `InvoiceId`); empty until AWS issues it.
    pub invoice_id: &'a str,
}

impl<'a> BillingParts<'a> {
    fn as_array(&self) -> [&'a str; PARTS] {
        [self.account_id, self.account_name, self.provider, self.publisher, self.invoice_issuer, self.invoice_id]
    }
}

impl Billing {
    /// The billing party of `parts`, its text shared through `names`.
    pub fn intern(parts: BillingParts<'_>, names: &mut Names) -> Self {
        let mut text = String::new();
        if join_into(&parts, &mut text) { Billing(names.get(&text)) } else { Billing::default() }
    }

    /// The billing party of `parts`, with a text of its own (tests, one-off lines).
    pub fn new(parts: BillingParts<'_>) -> Self {
        let mut text = String::new();
        if join_into(&parts, &mut text) { Billing(Name::from(text)) } else { Billing::default() }
    }

    /// The parts as one shared text (what [`crate::line_codec`] writes).
    pub fn text(&self) -> &Name {
        &self.0
    }

    /// The billing party whose [`Billing::text`] is `text`.
    pub fn from_text(text: Name) -> Self {
        Billing(text)
    }

    /// Every part empty: the report named none of them.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parts, borrowed from the shared text.
    pub fn parts(&self) -> BillingParts<'_> {
        if self.0.is_empty() {
            return BillingParts::default();
        }
        let mut it = self.0.as_str().splitn(PARTS, SEP);
        let mut next = || it.next().unwrap_or_default();
        BillingParts {
            account_id: next(),
            account_name: next(),
            provider: next(),
            publisher: next(),
            invoice_issuer: next(),
            invoice_id: next(),
        }
    }
}

/// Joins the parts into `out` (cleared first); false when every part is empty.
fn join_into(parts: &BillingParts<'_>, out: &mut String) -> bool {
    out.clear();
    let values = parts.as_array();
    if values.iter().all(|v| v.is_empty()) {
        return false;
    }
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        if value.contains(SEP) {
            out.push_str(&value.replace(SEP, " "));
        } else {
            out.push_str(value);
        }
    }
    true
}

impl fmt::Debug for Billing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.parts(), f)
    }
}

impl Serialize for Billing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.parts();
        let mut s = serializer.serialize_struct("Billing", PARTS)?;
        s.serialize_field("billing_account_id", p.account_id)?;
        s.serialize_field("billing_account_name", p.account_name)?;
        s.serialize_field("provider", p.provider)?;
        s.serialize_field("publisher", p.publisher)?;
        s.serialize_field("invoice_issuer", p.invoice_issuer)?;
        s.serialize_field("invoice_id", p.invoice_id)?;
        s.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts<'a>(v: [&'a str; PARTS]) -> BillingParts<'a> {
        let [account_id, account_name, provider, publisher, invoice_issuer, invoice_id] = v;
        BillingParts { account_id, account_name, provider, publisher, invoice_issuer, invoice_id }
    }

    #[test]
    fn the_parts_come_back_exactly_with_empty_ones_in_any_place() {
        let mut names = Names::default();
        for v in [
            ["123456789012", "Payer", "AWS", "Amazon Web Services, Inc.", "Amazon Web Services EMEA SARL", "EUINGB24"],
            ["123456789012", "", "", "", "", ""],
            ["", "", "", "", "Amazon Web Services, Inc.", ""],
            ["", "", "", "", "", "2119036580"],
            ["", "name", "", "Red Hat Inc.", "", ""],
        ] {
            let b = Billing::intern(parts(v), &mut names);
            assert_eq!(b.parts(), parts(v));
            assert_eq!(Billing::new(parts(v)), b);
        }
    }

    #[test]
    fn all_empty_is_the_empty_billing_party() {
        let b = Billing::new(BillingParts::default());
        assert!(b.is_empty());
        assert_eq!(b, Billing::default());
        assert_eq!(b.parts(), BillingParts::default());
    }

    #[test]
    fn a_separator_inside_a_value_reads_as_a_space_and_never_shifts_the_parts() {
        let b = Billing::new(parts(["1\u{1f}2", "", "", "Seller\u{1f}Inc", "x", "\u{1f}"]));
        assert_eq!(b.parts(), parts(["1 2", "", "", "Seller Inc", "x", " "]));
    }

    #[test]
    fn equal_parts_share_one_text() {
        let mut names = Names::default();
        let v = parts(["1", "n", "AWS", "p", "i", "inv"]);
        let (a, b) = (Billing::intern(v, &mut names), Billing::intern(v, &mut names));
        assert!(std::ptr::eq(a.0.as_str().as_ptr(), b.0.as_str().as_ptr()));
    }
}
