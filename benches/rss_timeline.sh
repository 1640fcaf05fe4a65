#!/usr/bin/env bash
# Runs a command and samples its resident memory (VmRSS) over time, to see *where* a peak is
# (scan, merge, write) rather than only its size (`/usr/bin/time -f %M`). Linux only.
#
#   benches/rss_timeline.sh OUT_PREFIX COMMAND [ARG ...]
#   INTERVAL=0.1 CURFLOW_LOG=curflow=debug,curflow_store=debug \
#     benches/rss_timeline.sh /tmp/run curflow process month/Manifest.json
#
# Writes OUT_PREFIX.out (stdout, then `rc=N`), OUT_PREFIX.err (stderr: with CURFLOW_LOG=debug the
# timestamped phases `scanned and merged`, `lines inserted`, `committed`) and OUT_PREFIX.rss
# (`HH:MM:SS.mmm KiB` per sample); prints the peak sample. Used for the ~4M-group month in the
# README (Limits).
set -uo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
out=$1
shift
interval=${INTERVAL:-0.5}
: >"$out.rss"
"$@" >"$out.out" 2>"$out.err" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$rss" ] && echo "$(date +%H:%M:%S.%N | cut -c1-12) $rss" >>"$out.rss"
  sleep "$interval"
done
wait "$pid"
rc=$?
echo "rc=$rc" >>"$out.out"
peak=$(sort -k2 -n "$out.rss" | tail -1)
echo "exit $rc; peak VmRSS sample: ${peak:-none} KiB ($out.rss)"
exit "$rc"
