#!/usr/bin/env python3
"""Side-by-side end-to-end benchmark: `curflow process` vs DuckDB and Polars doing the same
aggregation on the same generated legacy-CUR Parquet months, plus the pyarrow decode floor.

Called by benches/run.sh (which builds curflow in release and prepares the venv).
Engines run alternately, RUNS times each after one warm-up, each under /usr/bin/time for peak RSS.
Totals are cross-checked: curflow's stored unblended and amortized totals must equal DuckDB's
DECIMAL(38,12) sums and the generator's expected.json exactly.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
CURFLOW = os.environ["CURFLOW_BIN"]
# Optional: another curflow build (e.g. the previous main) measured in the same run, alternating.
BASELINE = os.environ.get("CURFLOW_BASELINE_BIN")
# demo: the generator's default months (peers: DuckDB's and Polars' group-by, ratio to DuckDB's);
# saas: realistic months with ~a million groups (peers: DuckDB tenant x service x day, and DuckDB
# at curflow's grain, which the ratio is to).
PROFILE = os.environ.get("BENCH_PROFILE", "demo")
# BENCH_FORMATS set: months in several input formats, each against DuckDB's group-by over the
# same files (peers.py duckdb-format), totals checked against expected.json and DuckDB's decimals.
FORMATS = bool(os.environ.get("BENCH_FORMATS"))
PYTHON = sys.executable
THREADS = os.environ.get("BENCH_THREADS", "2")
RUNS = int(os.environ.get("RUNS", "3"))


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, wall seconds, peak RSS MiB)."""
    with tempfile.NamedTemporaryFile("r") as t:
        out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name] + cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        wall, rss_kb = t.read().split()[-2:]
    return out.stdout, float(wall), int(rss_kb) / 1024


def curflow_cmd(manifest, store, binary=CURFLOW):
    if os.path.exists(store):
        os.remove(store)
    return [binary, "process", manifest, "--store", store]


def curflow_totals(store, period):
    out = subprocess.run([CURFLOW, "costs", "--store", store, "--period", period, "--format", "json"], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    rows = doc["rows"] if isinstance(doc, dict) else doc  # a document with rows (a bare array before)
    return sum(Decimal(r["unblended_cost"]) for r in rows), sum(Decimal(r["amortized_cost"]) for r in rows)


def main():
    months = sys.argv[1:]
    # Files at once: curflow's own default (2; one more than the partitions for gzip CSV), as a
    # user runs it. The threads are THREADS, like the peers'.
    env = dict(os.environ, CURFLOW_TARGET_PARTITIONS=THREADS)
    env.pop("CURFLOW_FILE_CONCURRENCY", None)
    table = []
    for month_dir in months:
        expected = json.load(open(os.path.join(month_dir, "expected.json")))
        manifest = next(os.path.join(r, f) for r, _, fs in os.walk(month_dir) for f in fs if f.endswith("Manifest.json"))
        rows = expected["rows"]
        store = os.path.join(tempfile.gettempdir(), f"curflow-bench-{os.getpid()}.sqlite")
        peer = lambda engine: lambda: timed([PYTHON, os.path.join(HERE, "peers.py"), engine, manifest, "--threads", THREADS])
        engines = {"curflow": lambda: timed(curflow_cmd(manifest, store), env)}
        if FORMATS:
            engines["duckdb"] = peer("duckdb-format")
        elif PROFILE == "saas":
            engines.update({"duckdb t*s*d": peer("duckdb-tsd"), "duckdb grain": peer("duckdb-grain")})
        else:
            engines.update({"duckdb": peer("duckdb"), "polars": peer("polars")})
        if not FORMATS:
            engines["pyarrow decode"] = peer("pyarrow")
        if BASELINE:
            engines["curflow baseline"] = lambda: timed(curflow_cmd(manifest, store, BASELINE), env)
        # Correctness first: exact totals must agree across curflow, DuckDB (decimal) and expected.json.
        timed(curflow_cmd(manifest, store), env)
        cf_unblended, cf_amortized = curflow_totals(store, expected["billing_period"])
        checker = "duckdb-format" if FORMATS else "duckdb"
        duck = json.loads(timed([PYTHON, os.path.join(HERE, "peers.py"), checker, manifest, "--check", "--threads", THREADS])[0])
        want_u, want_a = Decimal(expected["totals"]["unblended_cost"]), Decimal(expected["totals"]["amortized_cost"])
        checks = [cf_unblended == want_u == Decimal(duck["unblended"]), cf_amortized == want_a == Decimal(duck["amortized"])]
        label = f"{expected['format']:<13} " if FORMATS else ""
        print(f"{label}{rows:>11,} rows: totals curflow={cf_unblended}/{cf_amortized} duckdb(decimal)={duck['unblended']}/{duck['amortized']} "
              f"expected={want_u}/{want_a} -> {'SAME' if all(checks) else 'MISMATCH'}", flush=True)
        if not all(checks):
            raise SystemExit("engines disagree on totals")
        samples = {name: [] for name in engines}
        for name, run in engines.items():
            run()  # warm-up (page cache, lazy imports)
        for _ in range(RUNS):
            for name, run in engines.items():
                _, wall, rss = run()
                samples[name].append((wall, rss))
        reference = "duckdb grain" if PROFILE == "saas" else "duckdb"
        duck_median = statistics.median(w for w, _ in samples[reference])
        if BASELINE:
            new = statistics.median(w for w, _ in samples["curflow"])
            old = statistics.median(w for w, _ in samples["curflow baseline"])
            print(f"{rows:>11,} rows: curflow / baseline wall = {new:.2f} / {old:.2f} s = {new / old:.2f}", flush=True)
        for name, s in samples.items():
            wall = statistics.median(w for w, _ in s)
            rss = max(r for _, r in s)
            shown = f"{name} {expected['format']}" if FORMATS else name
            table.append((shown, rows, wall, rows / wall, rss, wall / duck_median))
        if os.path.exists(store):
            os.remove(store)
    print()
    print(f"{'engine':<22} {'rows':>12} {'wall median s':>14} {'rows/s':>12} {'peak RSS MiB':>13} {'ratio to DuckDB':>16}")
    for name, rows, wall, rps, rss, ratio in table:
        print(f"{name:<22} {rows:>12,} {wall:>14.2f} {rps:>12,.0f} {rss:>13.0f} {ratio:>16.2f}")
    print(f"\nprofile={PROFILE} ratio to {'DuckDB at curflow grain' if PROFILE == 'saas' else 'DuckDB'}; "
          f"threads={THREADS} runs={RUNS} (median after 1 warm-up, engines alternating); load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
