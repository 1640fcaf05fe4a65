//! Criterion benches of the hot paths, each with `Throughput` so results read as rows/s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::str::FromStr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use curflow::BillingPeriod;
use curflow::aggregate::{Amounts, CostKey, CostLine};
use curflow::discover::{DataFile, FileKind, ReportVersion};
use curflow::line_item::LineItemKind;
use curflow::measures::{CommitmentAmounts, Measure, RowInputs};
use curflow::money::{MONEY_SCALE, f64_to_scaled, parse_scaled};
use curflow::scan::{Engine, EngineOptions};
use curflow::store::{CostStore, PeriodRecord, SqliteStore};
use curflow_model::testing::cost_key;
use rust_decimal::Decimal;

fn money_conversion(c: &mut Criterion) {
    let values: Vec<f64> = (0..1_000_000).map(|i| (i as f64) * 0.000_123_456_7 + 0.001).collect();
    let texts: Vec<String> = values.iter().map(|v| format!("{v:E}")).collect();
    let mut g = c.benchmark_group("money");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("f64_to_scaled_1M", |b| {
        b.iter(|| values.iter().map(|v| f64_to_scaled(*v, MONEY_SCALE).unwrap_or(0)).sum::<i128>())
    });
    g.bench_function("parse_scaled_scientific_1M", |b| {
        b.iter(|| texts.iter().map(|t| parse_scaled(t, MONEY_SCALE).unwrap_or(0)).sum::<i128>())
    });
    g.finish();
}

fn cost_measures(c: &mut Criterion) {
    let kinds = [LineItemKind::Usage, LineItemKind::SavingsPlanCoveredUsage, LineItemKind::RiFee, LineItemKind::Fee];
    let rows: Vec<RowInputs> = (0..1_000_000i128)
        .map(|i| RowInputs {
            kind: kinds[(i % 4) as usize],
            has_reservation_arn: i % 7 == 0,
            unblended: i * 1_000,
            net_unblended: (i % 3 == 0).then_some(i * 900),
            commitments: CommitmentAmounts { sp_effective_cost: i * 700, ..CommitmentAmounts::default() },
        })
        .collect();
    let mut g = c.benchmark_group("measures");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("all_four_measures_1M_rows", |b| {
        b.iter(|| rows.iter().map(|r| Measure::ALL.iter().map(|m| m.eval(r)).sum::<i128>()).sum::<i128>())
    });
    g.finish();
}

fn scan_and_aggregate(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let generated = curflow_fixtures::generate(&curflow_fixtures::GenerateOptions {
        rows: 300_000,
        out_dir: dir.path().to_path_buf(),
        files: Some(1),
        ..curflow_fixtures::GenerateOptions::default()
    })
    .unwrap();
    let file = DataFile::local(&generated.data_files[0], FileKind::Parquet).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let engine = Engine::new(&EngineOptions { target_partitions: 2, ..EngineOptions::default() }).unwrap();
    let mut g = c.benchmark_group("scan");
    g.sample_size(10);
    g.throughput(Throughput::Elements(generated.expected.rows));
    g.bench_function("legacy_parquet_file_300k_rows", |b| {
        b.iter(|| black_box(runtime.block_on(engine.scan_file(&file, "accountant_id")).unwrap().groups.len()))
    });
    g.finish();
}

fn store_replace(c: &mut Criterion) {
    let period = BillingPeriod::new(2026, 10).unwrap();
    let lines: Vec<CostLine> = (0..40_000u32)
        .map(|i| {
            CostLine::new(
                period,
                CostKey {
                    usage_unit: "Requests".into(),
                    resource_id: format!("r-{i}").into(),
                    ..cost_key(
                        period.first_day() + chrono_days(i % 31),
                        (i % 5 != 0).then(|| format!("acct-{:04}", i % 50)).as_deref(),
                        &format!("Service{}", i % 12),
                        &format!("USE1-Type-{}", i % 40),
                    )
                },
                Amounts {
                    unblended_cost: Decimal::from_str("12.345678901234").unwrap(),
                    net_unblended_cost: Decimal::from_str("11.1").unwrap(),
                    amortized_cost: Decimal::from_str("10.5").unwrap(),
                    line_items: 25,
                    ..Amounts::default()
                },
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("bench.sqlite")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("sqlite_replace_period_40k_lines", |b| {
        b.iter_batched(
            || PeriodRecord {
                period,
                version: ReportVersion { id: "v".into(), time: Default::default() },
                format: "bench".into(),
                source: "bench".into(),
                files: 1,
                rows_read: 1_000_000,
                split_child_rows: 0,
                tag_key: "accountant_id".into(),
                inputs: None,
                processed_at: Default::default(),
                invoice: Default::default(),
            },
            |record| runtime.block_on(store.replace_period(&record, &lines, true)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn chrono_days(n: u32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n))
}

fn attribution_split(c: &mut Criterion) {
    use curflow_attribution::{TenantId, split};
    let weights: Vec<(TenantId, Decimal)> = (0..10_000)
        .map(|i| (TenantId::new(format!("acct-{i:05}")).unwrap(), Decimal::from(1 + (i * 7919) % 1000)))
        .collect();
    let total = Decimal::from_str("-12345.678901234567").unwrap().round_dp(12);
    let mut g = c.benchmark_group("attribution");
    g.throughput(Throughput::Elements(weights.len() as u64));
    g.bench_function("split_one_amount_10k_tenants", |b| b.iter(|| black_box(split(total, &weights, 12).unwrap())));
    g.finish();
}

criterion_group!(benches, money_conversion, cost_measures, scan_and_aggregate, store_replace, attribution_split);
criterion_main!(benches);
