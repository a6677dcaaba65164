#!/usr/bin/env bash
# demo.sh: ecmplb's main demo. Installs what is missing, builds, and runs the lab demo:
# a client, an FRR router (OSPF + BFD + ECMP), LB hosts running ecmplb on DPDK and HTTP
# backends, each in its own network namespace. It shows the router's ECMP route (one nexthop
# per LB host), how a few hundred requests spread over LB hosts and backends, and what happens
# when one LB host dies (route shrinking, convergence time, failed requests), then tears the
# lab down. About a minute after the build. Needs root.
#
#   ./demo.sh [--lbs N] [--backends M]     (defaults: 2 LB hosts, 3 backends)
#
# Builds in build/ (ECMPLB_BUILD=DIR to use another meson build folder).
#
# The lab can also be left up and explored: see README.md, "The lab".
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (packages, network namespaces, FRR, DPDK)" >&2
  exit 1
fi
build=${ECMPLB_BUILD:-build}
./setup.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; exit 1; }
fi
# The demo needs the daemon and its control client; ./test.sh builds (and tests) everything.
echo "demo.sh: building ecmplb and ecmplbctl (meson compile -C $build -j2; log in $build.compile.log)"
meson compile -C "$build" -j2 ecmplb ecmplbctl >"$build.compile.log" 2>&1 || { tail -40 "$build.compile.log"; exit 1; }
exec /usr/bin/python3 tests/lab/lab.py --build "$build" demo "$@"
