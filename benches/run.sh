#!/usr/bin/env bash
# End-to-end throughput bench: `curflow process` (release) vs DuckDB and Polars (same aggregation,
# same files, same run, alternating) plus the pyarrow decode floor; checks exact totals first.
#
#   benches/run.sh [ROWS ...]        default: 1000000 10000000 40000000
#   RUNS=5 BENCH_THREADS=2 benches/run.sh 10000000
#   CURFLOW_BASELINE_BIN=/path/to/older/curflow benches/run.sh 40000000   # also time another build,
#                                         alternating, and print the new/baseline wall ratio
#   BENCH_PROFILE=saas benches/run.sh 10000000 40000000   # realistic months (2,000 tenants, ~1M
#                                         groups) against DuckDB at curflow's grain
#   CURFLOW_BIN=/path/to/curflow ...      # time this binary instead of building one
#   BENCH_FORMATS="parquet csv cur2 cur2-csv focus-1.2" benches/run.sh 10000000 40000000
#                                         # the same demo month in each input format, each against
#                                         # DuckDB's group-by over the same files (peers.py duckdb-format)
#
# Generated months are cached in $CURFLOW_BENCH_DATA (default ~/.cache/curflow-bench-data);
# Python peers are installed into a venv (default ~/.cache/curflow-bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/curflow-target}"
data="${CURFLOW_BENCH_DATA:-$HOME/.cache/curflow-bench-data}"
venv="${CURFLOW_BENCH_VENV:-$HOME/.cache/curflow-bench-venv}"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000 40000000)

profile="${BENCH_PROFILE:-demo}"
if [ -z "${CURFLOW_BIN:-}" ]; then
  cargo build --release --locked -p curflow --bin curflow
  export CURFLOW_BIN="$CARGO_TARGET_DIR/release/curflow"
fi
export BENCH_PROFILE="$profile"

if ! "$venv/bin/python" -c "import duckdb, polars, pyarrow" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb polars pyarrow
fi

months=()
formats=(${BENCH_FORMATS:-})
for rows in "${sizes[@]}"; do
  if [ ${#formats[@]} -gt 0 ]; then
    for format in "${formats[@]}"; do
      dir="$data/legacy-parquet-$rows"
      [ "$format" = parquet ] || dir="$data/$format-$rows"
      if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir"
        "$CURFLOW_BIN" generate --rows "$rows" --out "$dir" --format "$format" --tenants 50 --seed 42
        touch "$dir/.complete"
      fi
      months+=("$dir")
    done
    continue
  fi
  if [ "$profile" = saas ]; then
    dir="$data/saas-parquet-$rows"
    generate=(--profile saas)
  else
    dir="$data/legacy-parquet-$rows"
    generate=(--tenants 50)
  fi
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    "$CURFLOW_BIN" generate --rows "$rows" --out "$dir" --format parquet "${generate[@]}" --seed 42
    touch "$dir/.complete"
  fi
  months+=("$dir")
done
"$venv/bin/python" benches/peers.py --help >/dev/null 2>&1 || true
exec "$venv/bin/python" benches/run.py "${months[@]}"
