//! curflow's cost model: the vocabulary every other crate speaks, with no I/O and no query engine.
//!
//! * [`money`]: exact scaled-integer and `Decimal` conversions (money never touches `f64` once it
//!   has left Arrow);
//! * [`billing`]: who bills a line (payer account, provider, publisher, invoice issuer);
//! * [`name`]: the shared text values of a line's key ([`Name`], [`Names`]);
//! * [`period`]: billing periods (`YYYY-MM`);
//! * [`line_codec`]: a compact binary form of scanned cost lines (spilled sorted runs);
//! * [`line_item`]: CUR line-item types and how each one counts;
//! * [`measures`]: the cost measures (unblended, net, amortized, RI/SP true-up, upfront fees) as exact
//!   functions of one row's inputs;
//! * [`aggregate`]: the grouped cost line ([`CostKey`] → [`Amounts`]) that scanning produces and
//!   stores keep;
//! * [`memory`]: the hook through which freed memory goes back to the OS promptly;
//! * [`version`]: which delivery of a period is newer ([`ReportVersion`]) and its invoice ids
//!   ([`Invoices`]);
//! * [`error`]: the error classes shared by every crate ([`ErrorClass`]) and this crate's errors.

pub mod aggregate;
pub mod billing;
pub mod error;
pub mod fxhash;
pub mod line_codec;
pub mod line_item;
pub mod measures;
pub mod memory;
pub mod money;
pub mod name;
pub mod period;
#[doc(hidden)]
pub mod testing;
pub mod version;

pub use aggregate::{Amounts, CostKey, CostLine, add_exact, sum_exact};
pub use billing::{Billing, BillingParts};
pub use error::{ErrorClass, ModelError};
pub use name::{Name, Names};
pub use period::BillingPeriod;
pub use version::{COST_EXPLORER_VERSION_PREFIX, Invoices, ReportVersion};
