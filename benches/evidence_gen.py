#!/usr/bin/env python3
"""Deterministic Lambda log set for benches/evidence.sh: the same invocations in two forms.

    evidence_gen.py OUT_DIR [--mb 1024] [--tenants 2000] [--days 7] [--seed 42]

* OUT_DIR/text/<day>-<stream>.log: a CloudWatch Logs export of one function (`<RFC 3339 ms> <message>`
  per line, time order within a stream, 4 streams per day): `START`, the application's tenant line
  (four shapes: top-level JSON with `requestId`, Lambda's text prefix `<ts>\t<id>\tINFO\t{...}`,
  Lambda's JSON log format with the tenant nested in `message`, `function_request_id`), `END` and the
  text `REPORT` (some `Init Duration` and X-Ray suffixes); ~3 % of REPORTs duplicated (at-least-once
  delivery), a few health checks per day without a tenant line (UNATTRIBUTED);
* OUT_DIR/lambda.jsonl: the same invocations in Lambda's JSON log format, one JSON object a line:
  `platform.start`, the application line (`timestamp`, `level`, `requestId`, the tenant key, `msg`)
  and `platform.report` with `billedDurationMs` and `memorySizeMB` (same duplicates);
* OUT_DIR/expected.json: per (UTC day of the REPORT, tenant): invocations and
  sum(billed ms x memory MB) (GB-s = that / 1,024,000, exactly).
"""

import argparse
import json
import os
import random
from datetime import datetime, timedelta, timezone

MEMORY_MB = [128, 256, 512, 1024, 1536, 2048, 3008, 10240]
STREAMS = 4
START_DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)
BYTES_PER_INVOCATION = 560  # text form, measured; sizes the run to --mb


def ts(ms):
    t = START_DAY + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--tenants", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    per_day = a.mb * 1024 * 1024 // BYTES_PER_INVOCATION // a.days
    os.makedirs(os.path.join(a.out, "text"), exist_ok=True)
    tenants = [f"acct-{i:05d}" for i in range(a.tenants)]
    weights = [1.0 / (1 + i) ** 0.7 for i in range(a.tenants)]  # a few big tenants, a long tail
    expected = {}  # (day, tenant) -> [invocations, ms x MB]
    jsonl = open(os.path.join(a.out, "lambda.jsonl"), "w")
    for day in range(a.days):
        base = day * 86_400_000
        day_tenants = rng.choices(tenants, weights, k=per_day)
        day_tenants += [None] * 5  # health checks
        # Invocations in time order over the day (clear of midnight), spread over the streams.
        starts = sorted(base + 60_000 + rng.randrange(86_400_000 - 2_400_000) for _ in day_tenants)
        streams = [[] for _ in range(STREAMS)]
        for start, tenant in zip(starts, day_tenants):
            rid = "%08x-%04x-%04x-%04x-%012x" % tuple(
                rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
            centi = 80_000 + rng.randrange(1_420_000) if rng.random() < 0.1 else 120 + rng.randrange(80_000)
            billed = (centi + 99) // 100
            mem = rng.choice(MEMORY_MB) if tenant else 512
            report_ms = start + billed + 1
            app_ms = start + 1 + rng.randrange(max(billed, 1))
            s = rng.randrange(STREAMS)
            out = streams[s]
            key = tenant or "UNATTRIBUTED"
            e = expected.setdefault((ts(report_ms)[:10], key), [0, 0])
            e[0] += 1
            e[1] += billed * mem
            # text form
            out.append((start, f"{ts(start)} START RequestId: {rid} Version: $LATEST"))
            a_ts = ts(app_ms)
            shape = rng.randrange(10)
            if tenant is None:
                app = f'{{"timestamp":"{a_ts}","level":"INFO","requestId":"{rid}","msg":"health check ok"}}'
            elif shape < 4:
                app = (f'{{"level":"INFO","accountant_id":"{tenant}","requestId":"{rid}","timestamp":"{a_ts}",'
                       f'"msg":"invoice rendered","path":"/v1/invoices","status":200}}')
            elif shape < 7:
                app = f'{a_ts}\t{rid}\tINFO\t{{"accountant_id":"{tenant}","msg":"ledger synced","entries":{1 + rng.randrange(40)}}}'
            elif shape < 9:
                app = (f'{{"timestamp":"{a_ts}","level":"INFO","requestId":"{rid}",'
                       f'"message":{{"accountant_id":"{tenant}","msg":"report exported"}}}}')
            else:
                app = (f'{{"level":"INFO","location":"handler:42","accountant_id":"{tenant}",'
                       f'"function_request_id":"{rid}","msg":"receipt parsed"}}')
            out.append((app_ms, f"{a_ts} {app}"))
            out.append((report_ms - 1, f"{ts(report_ms - 1)} END RequestId: {rid}"))
            used = 40 + rng.randrange(max(mem - 40, 1))
            report = (f"REPORT RequestId: {rid}\tDuration: {centi // 100}.{centi % 100:02d} ms\t"
                      f"Billed Duration: {billed} ms\tMemory Size: {mem} MB\tMax Memory Used: {used} MB")
            if rng.random() < 0.08:
                init = 15_000 + rng.randrange(100_000)
                report += f"\tInit Duration: {init // 100}.{init % 100:02d} ms"
            if rng.random() < 0.2:
                report += (f"\tXRAY TraceId: 1-{report_ms // 1000:08x}-{rng.getrandbits(96):024x}"
                           f"\tSegmentId: {rng.getrandbits(64):016x}\tSampled: true")
            r_ts = ts(report_ms)
            out.append((report_ms, f"{r_ts} {report}"))
            dup = rng.random() < 0.03
            if dup:
                out.append((report_ms + 5, f"{ts(report_ms + 5)} {report}"))
            # JSON-lines form
            jsonl.write(f'{{"time":"{ts(start)}","type":"platform.start","record":{{"requestId":"{rid}","version":"$LATEST"}}}}\n')
            if tenant is None:
                jsonl.write(f'{{"timestamp":"{a_ts}","level":"INFO","requestId":"{rid}","msg":"health check ok"}}\n')
            else:
                jsonl.write(f'{{"timestamp":"{a_ts}","level":"INFO","requestId":"{rid}","accountant_id":"{tenant}","msg":"invoice rendered"}}\n')
            rep = (f'{{"time":"{r_ts}","type":"platform.report","record":{{"requestId":"{rid}","metrics":'
                   f'{{"durationMs":{centi // 100}.{centi % 100:02d},"billedDurationMs":{billed},"memorySizeMB":{mem},'
                   f'"maxMemoryUsedMB":{used}}},"status":"success"}}}}\n')
            jsonl.write(rep)
            if dup:
                jsonl.write(rep)
        for s, events in enumerate(streams):
            events.sort(key=lambda e: e[0])
            with open(os.path.join(a.out, "text", f"{day:02d}-{s}.log"), "w") as f:
                f.write("".join(line + "\n" for _, line in events))
    jsonl.close()
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump({f"{d}|{t}": v for (d, t), v in sorted(expected.items())}, f)


if __name__ == "__main__":
    main()
