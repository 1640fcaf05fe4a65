#!/usr/bin/env bash
# Lambda-log evidence throughput: `curflow usage ingest` (release) and the parsers alone on ~1 GB of generated Lambda logs
# (text CloudWatch export, the same gzip-compressed, the same as Lambda JSON lines) against the I/O
# floors (`cat`/`zcat` to /dev/null), an older build, and DuckDB doing the per-tenant, per-day
# GB-seconds join over the JSON lines; same run, alternating; exact totals checked first.
#
#   benches/evidence.sh                      # ~1 GB, 3 rounds
#   EVIDENCE_MB=200 RUNS=5 benches/evidence.sh
#   CURFLOW_BEFORE_BIN=/path/to/older/curflow benches/evidence.sh   # default: $data/curflow-before if present
#   CURFLOW_BIN=/path/to/curflow ...        # time this binary instead of building one
#   PARSER_BIN=/path/to/parse_logs PARSER_BEFORE_BIN=/path/to/older/parse_logs ...   # the parsers alone
#                                         # (curflow-attribution's example; default: built, $root/parse_logs-before)
#
# Build the baselines once, e.g. from main, in a target directory of their own: two worktrees of
# this workspace sharing one target directory share artifact names (cargo hashes paths relative to
# the workspace), so a build in one can silently reuse the other's newer library:
#   git worktree add /tmp/cf-main main && cd /tmp/cf-main && export CARGO_TARGET_DIR=/tmp/cf-main-target
#   cargo build --release --locked -p curflow --bin curflow && cp $CARGO_TARGET_DIR/release/curflow $root/curflow-before
#   cargo build --release -p curflow-attribution --example parse_logs && cp $CARGO_TARGET_DIR/release/examples/parse_logs $root/parse_logs-before
# Data is cached in $CURFLOW_EVIDENCE_BENCH (default ~/.cache/curflow-evidence-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/curflow-target}"
root="${CURFLOW_EVIDENCE_BENCH:-$HOME/.cache/curflow-evidence-bench}"
venv="${CURFLOW_BENCH_VENV:-$HOME/.cache/curflow-bench-venv}"
mb="${EVIDENCE_MB:-1024}"
data="$root/lambda-${mb}mb"

if [ -z "${CURFLOW_BIN:-}" ]; then
  cargo build --release --locked -p curflow --bin curflow
  export CURFLOW_BIN="$CARGO_TARGET_DIR/release/curflow"
fi
if [ -z "${CURFLOW_BEFORE_BIN:-}" ] && [ -x "$root/curflow-before" ]; then
  export CURFLOW_BEFORE_BIN="$root/curflow-before"
fi
# The parsers alone: curflow-attribution's `parse_logs` example (no CLI, no store).
if [ -z "${PARSER_BIN:-}" ]; then
  cargo build --release -p curflow-attribution --example parse_logs
  export PARSER_BIN="$CARGO_TARGET_DIR/release/examples/parse_logs"
fi
if [ -z "${PARSER_BEFORE_BIN:-}" ] && [ -x "$root/parse_logs-before" ]; then
  export PARSER_BEFORE_BIN="$root/parse_logs-before"
fi
if ! "$venv/bin/python" -c "import duckdb" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb
fi

if [ ! -f "$data/.complete" ]; then
  rm -rf "$data"
  python3 benches/evidence_gen.py "$data" --mb "$mb"
  mkdir -p "$data/textgz" "$data/json"
  mv "$data/lambda.jsonl" "$data/json/"
  for f in "$data"/text/*.log; do gzip -6 -c "$f" >"$data/textgz/$(basename "$f").gz"; done
  touch "$data/.complete"
fi
exec "$venv/bin/python" benches/evidence.py "$data"
