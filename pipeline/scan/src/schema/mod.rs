//! Column names and types across the CUR formats.
pub mod columns;
pub mod resolve;

pub use columns::{COMMITMENT_COLS, Col, ColumnKind, TagNames, aws_parquet_name};
pub use resolve::{CurFormat, ResolvedColumns, TenantSource};
