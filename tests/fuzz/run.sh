#!/usr/bin/env bash
# run.sh [SECONDS]: configures build-fuzz/ (clang, libFuzzer, ASan + UBSan, no DPDK, no tests or
# benchmarks) if needed, builds only the fuzz targets, and runs each for SECONDS (default 20) on
# a temporary copy of its seed corpus. Prints each target's "Done N runs" line; exits non-zero
# on a crash or invariant violation (the input is kept in build-fuzz/fuzz-artifacts/).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-20}
dir=build-fuzz
targets=(fuzz_pipeline fuzz_config fuzz_control_request fuzz_sync_message fuzz_keepalived fuzz_fleet)
if [ ! -f "$dir/build.ninja" ]; then
  CXX=clang++ meson setup "$dir" -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized -Dtests=disabled -Dbenchmarks=disabled -Ddpdk=disabled \
    >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "run.sh: meson setup $dir failed"; exit 1; }
fi
meson compile -C "$dir" -j "${JOBS:-2}" "${targets[@]}" >"$dir.compile.log" 2>&1 ||
  { tail -50 "$dir.compile.log"; echo "run.sh: build of the fuzz targets failed"; exit 1; }
fail=0
for t in "${targets[@]}"; do
  (cd "$dir" && ../tests/fuzz/fuzz_one.sh "tests/fuzz/$t" "../tests/fuzz/corpus/$t" "$secs") || fail=1
done
exit $fail
