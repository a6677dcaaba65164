#!/bin/bash
# interleave.sh: compares two pipeline_bench binaries (e.g. main and a branch) in
# interleaved runs, because on a shared or virtual machine memory-bound figures move between
# processes and over minutes; a median over alternating processes is a fair comparison.
#
#   bench/pipeline/interleave.sh BASE_BINARY NEW_BINARY [ROUNDS] [-- pipeline_bench options]
#
# Prints, per case, the median Mpps of each binary with its range and the ratio new/base.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BASE_BINARY NEW_BINARY [ROUNDS] [-- pipeline_bench options]" >&2
  exit 2
fi
base=$1 new=$2
shift 2
rounds=6
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rounds=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
opts=("$@")
[ ${#opts[@]} -eq 0 ] && opts=(--flows 1000000 --passes 5)
for bin in "$base" "$new"; do
  [ -x "$bin" ] || { echo "interleave.sh: $bin is not an executable" >&2; exit 2; }
done
for _ in $(seq "$rounds"); do
  echo "base $("$base" "${opts[@]}" --json)"
  echo "new $("$new" "${opts[@]}" --json)"
done | python3 -c '
import json, statistics, sys
runs = {}
for line in sys.stdin:
    who, text = line.split(" ", 1)
    for c in json.loads(text)["cases"]:
        runs.setdefault(c["case"], {}).setdefault(who, []).append(c["mpps"])
for case, by in runs.items():
    b, n = by["base"], by["new"]
    print("%-16s base %.2f Mpps [%.2f-%.2f]  new %.2f Mpps [%.2f-%.2f]  new/base %.2f  (%d rounds)" % (
        case, statistics.median(b), min(b), max(b), statistics.median(n), min(n), max(n),
        statistics.median(n) / statistics.median(b), len(b)))
'
