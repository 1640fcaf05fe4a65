//! curflow: AWS Cost and Usage Reports in, exact per-tenant costs out.
//!
//! The library behind the `curflow` binary. The flow (see `../shared/design.md`):
//!
//! 1. [`discover`]: paths (manifests, AWS layouts, explicit files) → deliveries, one per billing
//!    period, each with its version (`assemblyId`/`executionId`).
//! 2. [`scan`]: each file through a streaming DataFusion plan that reads only the needed columns,
//!    drops split-cost-allocation child rows, evaluates the cost measures of [`measures`] exactly
//!    (scaled integers, [`money`]) and groups per (period, day, tenant, service, usage type, ...).
//! 3. [`process`]: merge the files, check there is one period, and replace it in a [`store`] in one
//!    transaction, verified to sum to the input.
//! 4. [`attribute`] (with `--evidence`): split shared-pool lines to tenants from usage evidence,
//!    exactly, with the pure `curflow-attribution` crate.
//! 5. [`output`]: the run summary and the `costs` views.
//!
//! Money is `rust_decimal::Decimal` from the moment it leaves Arrow; no float is ever summed.

pub mod aggregate;
pub mod alerts;
pub mod attribute;
pub mod aws;
pub mod config;
pub mod discover;
pub mod error;
pub mod estimates_import;
pub mod explain;
pub mod fxhash;
pub mod lambda;
pub mod line_item;
pub mod location;
pub mod measures;
pub mod money;
pub mod nightly;
pub mod output;
pub mod period;
pub mod process;
pub mod reconciliation;
pub mod report_html;
pub mod scan;
pub mod schema;
pub mod store;

pub use aggregate::{Amounts, CostKey, CostLine};
pub use config::Config;
pub use error::{Error, ErrorClass, Result};
pub use period::BillingPeriod;
