//! # curflow-attribution
//!
//! Splits shared AWS cost (CUR lines that carry no tenant tag) to tenants from usage evidence, exactly.
//! Pure and deterministic: no network, no clock, no `f64` for money or quantities.
//!
//! * [`TenantId`], [`Units`] / [`MONEY_SCALE`]: tenant ids and money in integer minor units.
//! * [`split()`]: the largest-remainder split; parts sum to the total exactly, ties go to the smaller tenant
//!   id, credits split like charges, no weight ⇒ [`Split::NoDriver`] (never a lost cent).
//! * [`Driver`], [`DriverTotals`]: usage per (driver, day, tenant) — GB-seconds, invocations, read/write
//!   units, byte-hours, requests, agent sessions/tool calls/vCPU-h/GB-h.
//! * [`evidence`]: parsers for Lambda REPORT / `platform.report` + app logs, DynamoDB `ConsumedCapacity`, S3
//!   Inventory and access logs, agent runtime usage logs, and the explicit assignments table; streaming
//!   aggregators with bounded memory and an error budget for malformed lines.
//! * [`SharePolicy`], [`Rules`] / [`default_rules`]: which driver and policy split which CUR line (TOML,
//!   first match wins; the default file is [`DEFAULT_RULES_TOML`]).
//! * [`Allocator`]: shared lines in ⇒ attributed rows (tenant, rule, driver, quantity, share, amounts) and
//!   unattributed rows with a reason; conservation checked per line and measure.
//!
//! ## Example
//!
//! ```
//! use std::collections::{BTreeMap, BTreeSet};
//! use chrono::NaiveDate;
//! use curflow_attribution::evidence::{ErrorBudget, lambda::{LambdaAggregator, LambdaConfig}};
//! use curflow_attribution::{default_rules, Allocator, Assignments, DirectCosts, SharedLine, WeightContext, MONEY_SCALE};
//! use rust_decimal::Decimal;
//!
//! // 1. Evidence: Lambda REPORT lines joined to the app's tenant lines on the request id.
//! let logs = "\
//! 2026-10-03T10:00:00.000Z\t11111111-1111-1111-1111-111111111111\tINFO\t{\"accountant_id\":\"acct-1\"}
//! 2026-10-03T10:00:00.200Z REPORT RequestId: 11111111-1111-1111-1111-111111111111\tDuration: 150.2 ms\tBilled Duration: 151 ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB
//! 2026-10-03T11:00:00.000Z\t22222222-2222-2222-2222-222222222222\tINFO\t{\"accountant_id\":\"acct-2\"}
//! 2026-10-03T11:00:00.400Z REPORT RequestId: 22222222-2222-2222-2222-222222222222\tDuration: 301.9 ms\tBilled Duration: 302 ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB
//! ";
//! let mut lambda = LambdaAggregator::new(LambdaConfig::default());
//! let report = lambda.read("app.log", logs.as_bytes(), &ErrorBudget::default()).unwrap();
//! assert_eq!(report.malformed, 0);
//! let (drivers, _stats) = lambda.finish().unwrap();
//!
//! // 2. Allocate one shared CUR line by the default rules (Lambda duration -> GB-seconds).
//! let line = SharedLine {
//!     service: "AWSLambda".into(),
//!     usage_type: "USE1-Lambda-GB-Second".into(),
//!     operation: "Invoke".into(),
//!     resource_id: "arn:aws:lambda:us-east-1:123456789012:function:api".into(),
//!     line_item_type: "Usage".into(),
//!     day: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
//!     currency: "USD".into(),
//!     amounts: BTreeMap::from([("unblended_cost".to_string(), Decimal::new(1, 2))]), // 0.01
//! };
//! let (rules, assignments) = (default_rules(), Assignments::new());
//! let (direct, tenants) = (DirectCosts::new(), BTreeSet::new());
//! let ctx = WeightContext::new(&drivers, &direct, &tenants).unwrap();
//! let alloc = Allocator::new(&rules, &assignments, ctx, MONEY_SCALE).allocate(&line).unwrap();
//! // 151 : 302 billed GB-ms -> one third and two thirds; the leftover 1e-12 goes to the larger remainder.
//! let parts: Vec<String> = alloc.attributed.iter().map(|r| format!("{} {}", r.tenant, r.amounts["unblended_cost"])).collect();
//! assert_eq!(parts, ["acct-1 0.003333333333", "acct-2 0.006666666667"]);
//! assert!(alloc.unattributed.is_none());
//! ```
#![deny(clippy::float_arithmetic)]

pub mod allocate;
pub mod driver;
pub mod evidence;
pub mod glob;
pub mod money;
pub mod policy;
pub mod rules;
pub mod split;
pub mod tenant;
mod wide;

pub use allocate::{
    AllocateError, Allocator, AttributedRow, Basis, Coverage, CoverageAmounts, LineAllocation, Route, SharedLine,
    SplitPlan, UnattributedReason, UnattributedRow,
};
pub use driver::{DirectCosts, Driver, DriverTotals};
pub use evidence::assignments::Assignments;
pub use money::{MONEY_SCALE, MoneyError, Units};
pub use policy::{SharePolicy, WeightContext, Window, weights};
pub use rules::{DEFAULT_RULES_TOML, Rule, Rules, RulesError, default_rules};
pub use split::{Added, Shares, Split, SplitError, SplitScratch, split};
pub use tenant::{TenantId, UNATTRIBUTED};
