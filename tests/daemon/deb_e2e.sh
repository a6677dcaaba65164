#!/bin/bash
# deb_e2e.sh BUILD_DIR SYSTEMD_E2E: builds the Debian package from BUILD_DIR, checks it with
# lintian (no error, no warning), extracts it into an empty root and runs systemd_e2e.py on
# the root's binaries, units and example configuration. Exit 77 (skipped) without dpkg-deb,
# dpkg-shlibdeps, help2man or lintian.
set -uo pipefail
build=$1
e2e=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
for tool in dpkg-deb dpkg-shlibdeps help2man lintian; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
work=$(mktemp -d /tmp/ecmplb-deb-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
deb=$("$src/packaging/build-deb.sh" "$build" "$work/out") || { echo "FAIL: build-deb.sh"; exit 1; }
echo "ok: built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
tags=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2>&1)
rc=$?
grep -v -e 'root privileges' -e '^$' <<<"$tags" || true
if [ $rc -eq 0 ]; then
  echo "ok: lintian: no error or warning"
else
  echo "FAIL: lintian (exit $rc)"
  fail=1
fi
root=$work/root
dpkg-deb -x "$deb" "$root"
for f in usr/bin/ecmplb usr/bin/ecmplbctl lib/systemd/system/ecmplb.service \
         lib/systemd/system/ecmplb-hugepages.service etc/default/ecmplb \
         usr/share/man/man8/ecmplb.8.gz usr/share/man/man1/ecmplbctl.1.gz \
         usr/share/ecmplb/frr-conf/lb-host.frr.conf.in; do
  [ -e "$root/$f" ] || { echo "FAIL: the package has no /$f"; fail=1; }
done
/usr/bin/python3 "$e2e" "$root/usr/bin/ecmplb" "$root/usr/bin/ecmplbctl" "$root/lib/systemd/system" \
  "$root/usr/share/doc/ecmplb/examples/ecmplb.json.example" || fail=1
exit $fail
