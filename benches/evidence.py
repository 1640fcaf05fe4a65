#!/usr/bin/env python3
"""Lambda-log evidence throughput: curflow (new and before) vs the I/O floors and DuckDB, same run.

    evidence.py DATA_DIR            (see benches/evidence.sh, which builds, generates and calls this)

Env: CURFLOW_BIN, CURFLOW_BEFORE_BIN, RUNS (default 3); PARSER_BIN and
PARSER_BEFORE_BIN (optional): the `parse_logs` example of curflow-attribution (parsers only,
no CLI, no store), built from this tree and from the older one, timed on the same files.

Cases are timed in rounds, each round running every case once in turn (so load changes hit all
alike); the table shows the median wall time. Before timing, every curflow case and DuckDB must
match the generator's expected per (day, tenant) invocations and GB-seconds exactly.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

DAYS = ("2026-10-01", "2026-10-07")
BEFORE = {"curflow": "before", "parser": "parser-before"}

DUCKDB_SQL = """
WITH src AS (
  SELECT * FROM read_json(?, format = 'newline_delimited', columns = {
    time: 'VARCHAR', type: 'VARCHAR', requestId: 'VARCHAR', accountant_id: 'VARCHAR',
    record: 'STRUCT(requestId VARCHAR, metrics STRUCT(billedDurationMs BIGINT, memorySizeMB BIGINT))'})
), reports AS (
  SELECT record.requestId AS id, min(time) AS t,
         any_value(record.metrics.billedDurationMs::HUGEINT * record.metrics.memorySizeMB) AS msmb
  FROM src WHERE type = 'platform.report' GROUP BY 1
), tenants AS (
  SELECT requestId AS id, first(accountant_id) AS tenant
  FROM src WHERE accountant_id IS NOT NULL AND requestId IS NOT NULL GROUP BY 1
)
SELECT substr(t, 1, 10) AS day, coalesce(tenant, 'UNATTRIBUTED') AS tenant,
       count(*) AS invocations, sum(msmb) AS msmb,
       sum(msmb)::DECIMAL(24, 0) * 0.0000009765625::DECIMAL(14, 13) AS gb_seconds
FROM reports LEFT JOIN tenants USING (id) GROUP BY ALL
"""


def duckdb_child(path):
    """Runs in a subprocess: prints {day|tenant: [invocations, ms x MB, GB-s]} as JSON."""
    import duckdb

    rows = duckdb.connect().execute(DUCKDB_SQL, [path]).fetchall()
    print(json.dumps({f"{d}|{t}": [int(n), int(m), str(g)] for d, t, n, m, g in rows}))


def run(argv, stdout=subprocess.DEVNULL):
    """Wall seconds, peak RSS MiB (from /usr/bin/time: a child forked by Python would count
    Python's own pages), stdout."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv], stdout=stdout,
                           stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"{argv[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
        return wall, int(rss.read().split()[-1]) / 1024, p.stdout or b""


def size(paths):
    return sum(os.path.getsize(p) for p in paths)


def files(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d))


class Curflow:
    """`curflow usage ingest` of one local source into a fresh SQLite store."""

    def __init__(self, binary, source_dir, tmp, name):
        self.binary, self.tmp, self.name = binary, tmp, name
        self.config = os.path.join(tmp, f"{name}.toml")
        with open(self.config, "w") as f:
            f.write(f'[[evidence]]\nname = "logs"\nlocation = "{source_dir}"\n')

    def argv(self):
        store = os.path.join(self.tmp, f"{self.name}.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.remove(store + suffix)
        return [self.binary, "--config", self.config, "--store", store, "usage", "ingest",
                "--from", DAYS[0], "--to", DAYS[1], "--format", "json"]

    def totals(self):
        import sqlite3

        db = sqlite3.connect(os.path.join(self.tmp, f"{self.name}.sqlite"))
        out = {}
        for day, driver, tenant, q in db.execute(
                "SELECT day, driver, tenant, quantity FROM usage_quantities WHERE source = 'logs' "
                "AND driver IN ('lambda_invocations', 'lambda_gb_seconds')"):
            e = out.setdefault(f"{day}|{tenant}", [0, 0])
            if driver == "lambda_invocations":
                e[0] = int(Decimal(q))
            else:
                msmb = Decimal(q) * 1024000
                if msmb != msmb.to_integral_value():
                    sys.exit(f"{self.name}: GB-s {q} of {day}|{tenant} is not a whole number of ms x MB")
                e[1] = int(msmb)
        return out


def check(name, got, expected):
    if got != expected:
        diff = sorted(set(got.items()) ^ set(expected.items()), key=str)[:6]
        sys.exit(f"{name}: per (day, tenant) totals differ from the generator's; first differences: {diff}")
    print(f"  {name}: {len(got)} (day, tenant) totals equal the generator's exactly", file=sys.stderr)


def main():
    data = sys.argv[1]
    runs = int(os.environ.get("RUNS", "3"))
    with open(os.path.join(data, "expected.json")) as f:
        expected = {k: v for k, v in json.load(f).items()}
    text, textgz, jsondir = (os.path.join(data, d) for d in ("text", "textgz", "json"))
    inputs = {"text": files(text), "gzip": files(textgz), "jsonl": files(jsondir)}
    raw = {"text": size(inputs["text"]), "gzip": size(inputs["text"]), "jsonl": size(inputs["jsonl"])}
    tmp = tempfile.mkdtemp(prefix="curflow-evidence-bench.")
    try:
        bins = [("curflow", os.environ["CURFLOW_BIN"])] if os.environ.get("CURFLOW_BIN") else []
        if os.environ.get("CURFLOW_BEFORE_BIN"):
            bins.append(("before", os.environ["CURFLOW_BEFORE_BIN"]))
        cases = [
            ("floor", "text", ["cat", *inputs["text"]], None),
            ("floor", "gzip", ["zcat", *inputs["gzip"]], None),
            ("floor", "jsonl", ["cat", *inputs["jsonl"]], None),
        ]
        for label, binary in bins:
            for kind, d in (("text", text), ("gzip", textgz), ("jsonl", jsondir)):
                c = Curflow(binary, d, tmp, f"{label}-{kind}")
                cases.append((label, kind, c, c))
        for label, env in (("parser", "PARSER_BIN"), ("parser-before", "PARSER_BEFORE_BIN")):
            if os.environ.get(env):
                for kind in ("text", "gzip", "jsonl"):
                    cases.append((label, kind, [os.environ[env], *inputs[kind]], None))
        duck = [sys.executable, os.path.abspath(__file__), "--duckdb", inputs["jsonl"][0]]
        cases.append(("duckdb", "jsonl", duck, None))

        print("checking totals", file=sys.stderr)
        for label, kind, argv, cf in cases:
            if cf is not None:
                run(cf.argv())
                check(f"{label} {kind}", cf.totals(), expected)
            elif label == "duckdb":
                _, _, out = run(argv, stdout=subprocess.PIPE)
                got = json.loads(out)
                for k, (n, m, g) in got.items():
                    if Decimal(g) * 1024000 != m:
                        sys.exit(f"duckdb: DECIMAL GB-s {g} of {k} is not ms x MB / 1024000")
                check("duckdb jsonl", {k: [n, m] for k, (n, m, _) in got.items()}, expected)

        load = [os.getloadavg()]
        times = {(c[0], c[1]): [] for c in cases}
        rss = {(c[0], c[1]): 0.0 for c in cases}
        for r in range(runs):
            for label, kind, argv, cf in cases:
                wall, mib, _ = run(cf.argv() if cf is not None else argv)
                times[(label, kind)].append(wall)
                rss[(label, kind)] = max(rss[(label, kind)], mib)
            print(f"  round {r + 1}/{runs} done", file=sys.stderr)
        load.append(os.getloadavg())
        table(cases, times, rss, raw, load, runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(cases, times, rss, raw, load, runs):
    med = {k: statistics.median(v) for k, v in times.items()}
    mbs = {k: raw[k[1]] / 1e6 / med[k] for k in med}
    print(f"\nLambda logs: text {raw['text'] / 1e6:.0f} MB (gzip: same text, compressed), "
          f"JSON lines {raw['jsonl'] / 1e6:.0f} MB; median of {runs} alternating runs; "
          f"{os.cpu_count()} cores")
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (*load[0], *load[1]))
    print()
    hdr = ["case", "input", "wall s", "MB/s", "x floor", "x before", "x duckdb", "peak RSS MiB"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for label, kind, _, _ in cases:
        k = (label, kind)
        floor = med.get(("floor", kind))
        ratio = lambda other: f"{med[other] / med[k]:.2f}" if other in med and other != k else ""
        print(f"| {label} | {kind} | {med[k]:.2f} | {mbs[k]:.0f} | "
              f"{f'{med[k] / floor:.2f}' if floor and label != 'floor' else ''} | "
              f"{ratio((BEFORE[label], kind)) if label in BEFORE else ''} | "
              f"{ratio(('duckdb', kind)) if label not in ('floor', 'duckdb') else ''} | {rss[k]:.0f} |")
    print("\nx floor: wall time / the floor's (cat or zcat of the same bytes to /dev/null; 1 = as fast as"
          " reading); x before: before's wall / curflow's (speed-up); x duckdb: DuckDB's wall / curflow's"
          " (> 1: curflow faster). MB/s: uncompressed bytes / wall.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--duckdb":
        duckdb_child(sys.argv[2])
    else:
        main()
