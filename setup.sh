#!/usr/bin/env bash
# setup.sh: install what ecmplb needs on Debian 12, and optionally reserve hugepages.
#
#   ./setup.sh                   install missing Debian packages (idempotent)
#   ./setup.sh --hugepages N     also reserve N 2 MiB hugepages and mount hugetlbfs
#
# Needs root for apt-get and hugepages. Prints what it does; does nothing twice.
set -euo pipefail

PACKAGES=(
  # build
  g++ meson ninja-build pkg-config
  # fuzz targets (tests/fuzz/): clang 14 and its libFuzzer runtime (libclang_rt.fuzzer)
  clang libclang-rt-14-dev
  # libraries
  libdpdk-dev libabsl-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libmnl-dev
  # flow-state sync between LB hosts (control/sync_wire): XChaCha20-Poly1305 AEAD, random nonces
  libsodium-dev
  # https health checks (control/health_checker): OpenSSL's TLS client
  libssl-dev
  # fleet mode (control/etcd_store): etcd's JSON gateway over libcurl's multi interface; etcd
  # itself for the tests that run one (tests/control/fleet_e2e.py, the lab's fleet tests)
  libcurl4-openssl-dev etcd-server etcd-client openssl
  # the daemon's log in the journal, with fields (sd_journal_sendv)
  libsystemd-dev
  # systemd-analyze verify of packaging/systemd/*.service (tests/daemon/systemd_e2e.py)
  systemd
  # the Debian package (packaging/build-deb.sh) and its check
  dpkg-dev help2man lintian
  # DPDK runtime tools (dpdk-telemetry.py, testpmd)
  dpdk
  # lab and end-to-end tests
  frr iproute2 nftables ethtool procps python3 curl
  # ecmplbctl import-keepalived: its test files are checked by keepalived itself (`keepalived -t`)
  keepalived
)

hugepages=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hugepages) hugepages="${2:?--hugepages needs a count}"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (apt-get and hugepages need it)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup.sh: packages installed"
else
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
fi

if [ -n "$hugepages" ]; then
  cur=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$cur" -lt "$hugepages" ]; then
    echo "setup.sh: reserving $hugepages hugepages (had $cur)"
    echo "$hugepages" > /proc/sys/vm/nr_hugepages
    got=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$got" -lt "$hugepages" ]; then
      echo "setup.sh: only $got of $hugepages hugepages could be reserved (memory fragmented?)" >&2
      exit 1
    fi
  else
    echo "setup.sh: $cur hugepages already reserved"
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages
    echo "setup.sh: mounted hugetlbfs on /dev/hugepages"
  fi
fi
