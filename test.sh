#!/usr/bin/env bash
# test.sh: install what is missing, build, and run the whole test suite.
#
# Runs, in order:
#   build/        release build with assertions: unit, DPDK vdev (--no-huge) and lab tests
#   build-tsan/   ThreadSanitizer build: concurrency tests (DPDK stays enabled: the snapshot
#                 publication test needs the real SnapshotPublisher, i.e. librte_rcu, no EAL)
#   build-asan/   AddressSanitizer build: concurrency and robustness tests (same)
#   build-fuzz/   clang + libFuzzer (ASan + UBSan, no DPDK): each fuzz target runs ~20 s on a
#                 copy of its seed corpus, one test case per target (tests/fuzz/)
# and ends with one line "N passed, N failed" counting every test case.
# Exits non-zero if anything failed or did not build.
set -uo pipefail
cd "$(dirname "$0")"
root=$PWD
jobs=${JOBS:-2}

./setup.sh || exit 1

fail=0
dirs=()
run_dir() {  # run_dir DIR "meson setup options" "meson test options"
  local dir=$1 setup_opts=$2 test_opts=$3
  echo "== $dir: configure and build"
  if [ ! -f "$dir/build.ninja" ]; then
    # shellcheck disable=SC2086
    meson setup "$dir" $setup_opts >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "test.sh: meson setup $dir failed"; fail=1; return; }
  fi
  if ! meson compile -C "$dir" -j "$jobs" >"$dir.compile.log" 2>&1; then
    tail -50 "$dir.compile.log"; echo "test.sh: build of $dir failed"; fail=1; return
  fi
  echo "== $dir: test"
  rm -f "$dir/meson-logs/testlog.junit.xml"
  # shellcheck disable=SC2086
  meson test -C "$dir" --print-errorlogs $test_opts || fail=1
  dirs+=("$dir")
}

run_dir build "" "--suite unit --suite dpdk --suite lab --num-processes 1"
run_dir build-tsan "-Db_sanitize=thread -Dbenchmarks=disabled -Dbuildtype=debugoptimized" "--suite tsan --num-processes 1"
run_dir build-asan "-Db_sanitize=address,undefined -Dbenchmarks=disabled -Dbuildtype=debugoptimized" "--suite asan --num-processes 1"
CXX=clang++ run_dir build-fuzz "-Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dtests=disabled -Dbenchmarks=disabled -Ddpdk=disabled" "--suite fuzz --num-processes 1"

# Count test cases from meson's JUnit logs (gtest cases are reported one by one).
summary=$(/usr/bin/python3 "$root/tests/junit_summary.py" "${dirs[@]/%//meson-logs/testlog.junit.xml}")
read -r passed failed <<<"$summary"
if [ "$fail" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # a build failure counts
echo "$passed passed, $failed failed"
[ "$fail" -eq 0 ] && [ "$failed" -eq 0 ]
