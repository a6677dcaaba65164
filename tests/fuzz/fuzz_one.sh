#!/usr/bin/env bash
# fuzz_one.sh TARGET_BINARY SEED_CORPUS_DIR SECONDS: runs one libFuzzer target for SECONDS on a
# temporary copy of its seed corpus (the repo's corpus stays small), prints libFuzzer's final
# "Done N runs" line, and fails on a crash (the crashing input is kept in ./fuzz-artifacts/).
set -uo pipefail
bin=$1 seeds=$2 secs=$3
name=$(basename "$bin")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work/"
mkdir -p fuzz-artifacts
"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$PWD/fuzz-artifacts/$name-" \
  "$work" >"$work.log" 2>&1
rc=$?
done_line=$(grep -E '^Done [0-9]+ runs' "$work.log" | tail -1)
if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
  tail -60 "$work.log"
  rm -f "$work.log"
  echo "$name: FAILED (exit $rc)"
  exit 1
fi
rm -f "$work.log"
echo "$name: $done_line"
