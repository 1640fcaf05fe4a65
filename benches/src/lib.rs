//! Benchmarks for curflow (no library code lives here).
//!
//! * `cargo bench -p curflow-benches` — criterion micro benches of the hot paths
//!   (`benches/hot_paths.rs`): exact money conversion, cost measures, scan + aggregate of one
//!   Parquet file, the store's period replace, the attribution split. Each reports throughput.
//! * `benches/run.sh` — the end-to-end bench: `curflow process` against DuckDB and Polars on
//!   the same generated months, side by side, with exact totals cross-checked first.
//! * `benches/rss_timeline.sh` — a command's resident memory sampled over time, to see where a
//!   peak is (scan, merge, write), not only its size.
