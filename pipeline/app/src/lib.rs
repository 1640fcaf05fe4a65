//! curflow: AWS Cost and Usage Reports in, exact per-tenant costs out.
//!
//! The library behind the `curflow` binary. The flow (see `../shared/design.md`):
//!
//! 1. [`discover`]: paths (manifests, AWS layouts, explicit files) → deliveries, one per billing
//!    period, each with its version (`assemblyId`/`executionId`).
//! 2. [`scan`]: each file through a streaming DataFusion plan that reads only the needed columns,
//!    drops split-cost-allocation child rows, evaluates the cost measures of [`measures`] exactly
//!    (scaled integers, [`money`]) and groups per (period, day, tenant, service, usage type, ...).
//! 3. [`process`]: merge the files, check there is one period, and replace it in a [`store`] as a
//!    unit (one SQLite transaction; a version switch on DynamoDB), verified to sum to the input.
//! 4. [`attribute`] (with `--evidence`): split shared-pool lines to tenants from usage evidence,
//!    exactly, with the pure `curflow-attribution` crate.
//! 5. [`output`]: the run summary and the `costs` views.
//!
//! Money is `rust_decimal::Decimal` from the moment it leaves Arrow; no float is ever summed.

pub mod alerts;
pub mod attribute;
pub mod config;
pub mod cost_explorer;
pub mod error;
pub mod estimates_import;
pub mod explain;
pub mod lambda;
pub mod nightly;
pub mod output;
pub mod process;
pub mod reattribute;
pub mod reconciliation;
pub mod report_data;
pub mod report_html;
pub mod usage;

// The crates below the application layer, under the module paths the CLI, the Lambda, the tests
// and the benches use (`curflow::scan::Engine`, `curflow::store::SqliteStore`, ...).
pub use curflow_aws as aws;
pub use curflow_model::{aggregate, fxhash, line_item, measures, memory, money, period};
pub use curflow_scan as scan;
pub use curflow_scan::{discover, location, schema};
pub use curflow_store as store;

pub use aggregate::{Amounts, CostKey, CostLine};
pub use config::Config;
pub use curflow_model::{Billing, BillingParts};
pub use error::{Error, ErrorClass, Result};
pub use period::BillingPeriod;
