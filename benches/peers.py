#!/usr/bin/env python3
"""The same per-tenant aggregation as `curflow process`, in DuckDB, Polars or pyarrow.

Usage: peers.py ENGINE MANIFEST [--threads N] [--check]

ENGINE  duckdb | duckdb-tsd | duckdb-grain | duckdb-format | polars | pyarrow
  duckdb, polars: group by (billing period, UTC usage day, tenant, service, usage type, line-item
  type, currency) with sums of unblended cost, the amortized CASE and a row count over the legacy
  CUR Parquet files listed in MANIFEST, excluding split-cost-allocation child rows. This is the
  "bare group-by" peers run today (double sums; inexact by nature).
  duckdb-tsd: tenant x service x day only (the coarse group-by a dashboard would run).
  duckdb-grain: curflow's stored grain: also usage unit and invoice id, the usage account and
  region when the files have them, and operation and resource id for untagged rows (the shared
  pool), with unblended, amortized and usage sums
  (double) and a row count: the peer for months with a million groups.
  duckdb-format: the duckdb group-by over whatever format the manifest's files are in: legacy
  CUR Parquet or CSV(.gz), CUR 2.0 Parquet (tenant from the resource_tags map) or CSV (tags as
  JSON text), FOCUS Parquet or CSV (BilledCost, EffectiveCost, ChargeCategory, the Tags map or
  JSON). CSV is read as text and cast (double sums), as curflow reads it.
  pyarrow: only decodes the columns the aggregation needs (the decode floor).
--check  prints exact totals (DECIMAL(38,12) sums in DuckDB) as JSON, for the cross-engine check.

Prints one JSON line: {"engine", "rows", "groups", "seconds", "unblended", "amortized"}.
"""
import json
import os
import sys
import time

COLUMNS = [
    "bill_billing_period_start_date", "line_item_usage_start_date", "resource_tags_user_accountant_id",
    "line_item_product_code", "line_item_usage_type", "line_item_line_item_type", "line_item_currency_code",
    "line_item_operation", "line_item_unblended_cost", "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date", "savings_plan_used_commitment", "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "reservation_reservation_a_r_n",
]


def data_files(manifest):
    with open(manifest) as f:
        m = json.load(f)
    root = os.path.dirname(manifest)
    keys = m.get("reportKeys") or m.get("dataFiles")
    out = []
    for key in keys:
        key = key.split("/", 3)[3] if key.startswith("s3://") else key
        base = root
        while not os.path.exists(os.path.join(base, key)):
            parent = os.path.dirname(base)
            if parent == base:
                raise SystemExit(f"{manifest}: {key} not found")
            base = parent
        out.append(os.path.join(base, key))
    return out


def amortized_sql(cast):
    c = lambda col: f"COALESCE({col}, 0){cast}"
    return f"""CASE line_item_line_item_type
        WHEN 'SavingsPlanCoveredUsage' THEN {c('savings_plan_savings_plan_effective_cost')}
        WHEN 'SavingsPlanRecurringFee' THEN {c('savings_plan_total_commitment_to_date')} - {c('savings_plan_used_commitment')}
        WHEN 'SavingsPlanNegation' THEN 0{cast}
        WHEN 'SavingsPlanUpfrontFee' THEN 0{cast}
        WHEN 'DiscountedUsage' THEN {c('reservation_effective_cost')}
        WHEN 'RIFee' THEN {c('reservation_unused_amortized_upfront_fee_for_billing_period')} + {c('reservation_unused_recurring_fee')}
        ELSE CASE WHEN line_item_line_item_type = 'Fee' AND COALESCE(TRIM(reservation_reservation_a_r_n), '') <> ''
                  THEN 0{cast} ELSE {c('line_item_unblended_cost')} END END"""


def run_duckdb(files, threads, check):
    import duckdb
    con = duckdb.connect()
    con.execute(f"PRAGMA threads={threads}")
    cast = "::DECIMAL(38,12)" if check else ""
    file_list = ", ".join(f"'{f}'" for f in files)
    sql = f"""
      SELECT CAST(bill_billing_period_start_date AS DATE) p, CAST(line_item_usage_start_date AS DATE) d,
             NULLIF(TRIM(resource_tags_user_accountant_id), '') t, line_item_product_code s, line_item_usage_type u,
             line_item_line_item_type lt, line_item_currency_code c,
             SUM(line_item_unblended_cost{cast}) unblended, SUM({amortized_sql(cast)}) amortized, COUNT(*) n
      FROM read_parquet([{file_list}])
      WHERE line_item_operation IS NULL OR line_item_operation NOT IN ('EKSPod-EC2', 'ECSTask-EC2')
      GROUP BY ALL"""
    rows = con.execute(f"SELECT COUNT(*), SUM(n), SUM(unblended)::VARCHAR, SUM(amortized)::VARCHAR FROM ({sql})").fetchone()
    return {"groups": rows[0], "rows": int(rows[1]), "unblended": rows[2], "amortized": rows[3]}


def run_duckdb_shape(files, threads, shape):
    """The coarse (tenant x service x day) or the full (curflow's grain) group-by, double sums."""
    import duckdb
    con = duckdb.connect()
    con.execute(f"PRAGMA threads={threads}")
    file_list = ", ".join(f"'{f}'" for f in files)
    tagged = "NULLIF(TRIM(resource_tags_user_accountant_id), '')"
    # curflow's key also carries the usage account and the region when the report has them.
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet([{file_list}])").fetchall()}
    region = next((c for c in ("product_region_code", "product_region") if c in present), None)
    extra = "".join(f", {c}" for c in ("line_item_usage_account_id", region) if c in present)
    if shape == "tsd":
        keys = f"{tagged} t, line_item_product_code s, CAST(line_item_usage_start_date AS DATE) d"
        sums = "SUM(line_item_unblended_cost) unblended, COUNT(*) n"
    else:
        keys = f"""CAST(bill_billing_period_start_date AS DATE) p, CAST(line_item_usage_start_date AS DATE) d,
             {tagged} t, line_item_product_code s, line_item_usage_type u, line_item_line_item_type lt,
             line_item_currency_code c, pricing_unit pu, bill_invoice_id inv,
             CASE WHEN {tagged} IS NULL THEN line_item_operation END op,
             CASE WHEN {tagged} IS NULL THEN line_item_resource_id END r{extra}"""
        sums = f"SUM(line_item_unblended_cost) unblended, SUM({amortized_sql('')}) amortized, SUM(line_item_usage_amount) q, COUNT(*) n"
    sql = f"""SELECT {keys}, {sums} FROM read_parquet([{file_list}])
      WHERE line_item_operation IS NULL OR line_item_operation NOT IN ('EKSPod-EC2', 'ECSTask-EC2')
      GROUP BY ALL"""
    rows = con.execute(f"SELECT COUNT(*), SUM(n), SUM(unblended)::VARCHAR FROM ({sql})").fetchone()
    return {"groups": rows[0], "rows": int(rows[1]), "unblended": rows[2], "amortized": ""}


def aws_parquet_name(raw):
    """AWS's CUR column-name rule (fixtures/src/columns.rs): `lineItem/UnblendedCost` -> `line_item_unblended_cost`."""
    out = ""
    for ch in raw:
        if ch.isascii() and ch.isupper():
            out += "_" + ch.lower()
        elif ch.isascii() and ch.isalnum():
            out += ch
        else:
            out += "_"
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


def run_duckdb_format(files, threads, check=False):
    """The duckdb group-by (period, day, tenant, service, usage type, type, currency) over files of any format."""
    import duckdb
    con = duckdb.connect()
    con.execute(f"PRAGMA threads={threads}")
    file_list = ", ".join(f"'{f}'" for f in files)
    csv = not files[0].endswith(".parquet")
    source = (f"read_csv([{file_list}], header=true, all_varchar=true, quote='\"', escape='\"')" if csv
              else f"read_parquet([{file_list}])")
    present = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    by_parquet = {aws_parquet_name(c) if "/" in c else c: c for c in present}
    cast = "::DECIMAL(38,12)" if check else ""

    def col(name):  # a column by its Parquet (CUR) name, quoted as the file spells it
        return '"' + by_parquet.get(name, name) + '"'

    def num(name):
        return f"TRY_CAST(NULLIF({col(name)}, '') AS DOUBLE)" if csv else col(name)

    def day(name):
        return f"CAST(CAST({col(name)} AS TIMESTAMP) AS DATE)" if csv else f"CAST({col(name)} AS DATE)"

    if "BilledCost" in present:
        tags = (f"json_extract_string({col('Tags')}, '$.\"user:accountant_id\"')" if csv
                else f"map_extract({col('Tags')}, 'user:accountant_id')[1]")
        keys = (f"{day('BillingPeriodStart')} p, {day('ChargePeriodStart')} d, NULLIF(TRIM({tags}), '') t, "
                f"{col('x_ServiceCode')} s, {col('x_UsageType')} u, {col('ChargeCategory')} lt, {col('BillingCurrency')} c")
        sums = f"SUM({num('BilledCost')}{cast}) unblended, SUM(COALESCE({num('EffectiveCost')}, 0){cast}) amortized"
        where = "TRUE"
    else:
        if "resource_tags" in present:
            tags = (f"json_extract_string({col('resource_tags')}, '$.user_accountant_id')" if csv
                    else f"map_extract({col('resource_tags')}, 'user_accountant_id')[1]")
        else:
            tags = col("resource_tags_user_accountant_id")
        keys = (f"{day('bill_billing_period_start_date')} p, {day('line_item_usage_start_date')} d, NULLIF(TRIM({tags}), '') t, "
                f"{col('line_item_product_code')} s, {col('line_item_usage_type')} u, {col('line_item_line_item_type')} lt, "
                f"{col('line_item_currency_code')} c")
        z = lambda name: f"COALESCE({num(name)}, 0){cast}"
        lt = col("line_item_line_item_type")
        amortized = f"""CASE {lt}
            WHEN 'SavingsPlanCoveredUsage' THEN {z('savings_plan_savings_plan_effective_cost')}
            WHEN 'SavingsPlanRecurringFee' THEN {z('savings_plan_total_commitment_to_date')} - {z('savings_plan_used_commitment')}
            WHEN 'SavingsPlanNegation' THEN 0{cast}
            WHEN 'SavingsPlanUpfrontFee' THEN 0{cast}
            WHEN 'DiscountedUsage' THEN {z('reservation_effective_cost')}
            WHEN 'RIFee' THEN {z('reservation_unused_amortized_upfront_fee_for_billing_period')} + {z('reservation_unused_recurring_fee')}
            ELSE CASE WHEN {lt} = 'Fee' AND COALESCE(TRIM({col('reservation_reservation_a_r_n')}), '') <> ''
                      THEN 0{cast} ELSE {z('line_item_unblended_cost')} END END"""
        sums = f"SUM({z('line_item_unblended_cost')}) unblended, SUM({amortized}) amortized"
        op = col("line_item_operation")
        where = f"{op} IS NULL OR {op} NOT IN ('EKSPod-EC2', 'ECSTask-EC2')"
    sql = f"SELECT {keys}, {sums}, COUNT(*) n FROM {source} WHERE {where} GROUP BY ALL"
    rows = con.execute(f"SELECT COUNT(*), SUM(n), SUM(unblended)::VARCHAR, SUM(amortized)::VARCHAR FROM ({sql})").fetchone()
    return {"groups": rows[0], "rows": int(rows[1]), "unblended": rows[2], "amortized": rows[3]}


def run_polars(files, threads):
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl
    col = pl.col
    z = lambda name: col(name).fill_null(0.0)
    t = col("line_item_line_item_type")
    amortized = (
        pl.when(t == "SavingsPlanCoveredUsage").then(z("savings_plan_savings_plan_effective_cost"))
        .when(t == "SavingsPlanRecurringFee").then(z("savings_plan_total_commitment_to_date") - z("savings_plan_used_commitment"))
        .when(t.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"])).then(0.0)
        .when(t == "DiscountedUsage").then(z("reservation_effective_cost"))
        .when(t == "RIFee").then(z("reservation_unused_amortized_upfront_fee_for_billing_period") + z("reservation_unused_recurring_fee"))
        .when((t == "Fee") & (col("reservation_reservation_a_r_n").fill_null("").str.strip_chars() != "")).then(0.0)
        .otherwise(z("line_item_unblended_cost"))
    )
    op = col("line_item_operation")
    q = (
        pl.scan_parquet(files)
        .filter(op.is_null() | ~op.is_in(["EKSPod-EC2", "ECSTask-EC2"]))
        .group_by([
            col("bill_billing_period_start_date").dt.date().alias("p"), col("line_item_usage_start_date").dt.date().alias("d"),
            col("resource_tags_user_accountant_id").str.strip_chars().replace("", None).alias("t"),
            "line_item_product_code", "line_item_usage_type", "line_item_line_item_type", "line_item_currency_code",
        ])
        .agg(col("line_item_unblended_cost").sum().alias("unblended"), amortized.sum().alias("amortized"), pl.len().alias("n"))
    )
    df = q.collect(engine="streaming")
    return {"groups": df.height, "rows": int(df["n"].sum()), "unblended": str(df["unblended"].sum()), "amortized": str(df["amortized"].sum())}


def run_pyarrow(files, threads):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pa.set_cpu_count(threads)
    rows = 0
    for f in files:
        rows += pq.read_table(f, columns=COLUMNS, use_threads=True).num_rows
    return {"groups": 0, "rows": rows, "unblended": "", "amortized": ""}


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    engine, manifest = args[0], args[1]
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2
    check = "--check" in args
    files = data_files(manifest)
    started = time.perf_counter()
    if engine == "duckdb":
        result = run_duckdb(files, threads, check)
    elif engine == "duckdb-format":
        result = run_duckdb_format(files, threads, check)
    elif engine in ("duckdb-tsd", "duckdb-grain"):
        result = run_duckdb_shape(files, threads, engine.split("-")[1])
    elif engine == "polars":
        result = run_polars(files, threads)
    elif engine == "pyarrow":
        result = run_pyarrow(files, threads)
    else:
        raise SystemExit(f"unknown engine {engine}")
    result.update(engine=engine, seconds=round(time.perf_counter() - started, 3))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
