#!/bin/bash
# build-deb.sh BUILD_DIR OUT_DIR: packs what `meson install` puts in place (binaries, systemd
# units, /etc/default/ecmplb, the example config, FRR templates, the README) into
# OUT_DIR/ecmplb_VERSION_ARCH.deb with Debian's own tools (dpkg-shlibdeps for the library
# dependencies, dpkg-deb to build), without compiling the tree again. A full
# `dpkg-buildpackage` run (a debian/ source package) is not part of this script. Needs
# dpkg-dev (dpkg-shlibdeps) and help2man (manual pages from --help).
set -euo pipefail
build=$(realpath "$1")
out=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ecmplb-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
root=$work/root

DESTDIR=$stage meson install -C "$build" --quiet --no-rebuild >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
# Debian's layout, whatever the build's prefix: /usr, /etc, /lib/systemd/system.
mkdir -p "$root/usr/bin" "$root/usr/share" "$root/etc" "$root/lib/systemd/system"
install -m 0755 "$stage$prefix/bin/ecmplb" "$stage$prefix/bin/ecmplbctl" "$root/usr/bin/"
# (the daemon lives in /usr/bin like the unit's ExecStart says; its man page is in section 8)
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/"*
cp -r "$stage$prefix/share/ecmplb" "$stage$prefix/share/doc" "$root/usr/share/"
cp "$stage$prefix/etc/default/ecmplb" "$root/etc/default/" 2>/dev/null || {
  mkdir -p "$root/etc/default"; cp "$stage$prefix/etc/default/ecmplb" "$root/etc/default/"; }
install -m 0644 "$stage$prefix/lib/systemd/system/"*.service "$root/lib/systemd/system/"
mkdir -p "$root/etc/ecmplb"
doc=$root/usr/share/doc/ecmplb
install -m 0644 "$src/packaging/copyright" "$doc/copyright"
version=$(meson introspect "$build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
printf 'ecmplb (%s) unstable; urgency=medium\n\n  * Built from the ecmplb tree (packaging/build-deb.sh).\n\n -- ecmplb developers <ecmplb-dev@lists.example.org>  %s\n' \
  "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$doc/changelog.gz"
gzip -9n "$doc/README.md"
# Manual pages from the programs' own --help (help2man), which the README's tables complete.
mkdir -p "$root/usr/share/man/man1" "$root/usr/share/man/man8"
help2man -N --version-string="$version" --section=8 \
  -n "user-space DPDK L4 load balancer (Maglev, DR/GRE/IPIP/GUE, OSPF via FRR)" \
  "$root/usr/bin/ecmplb" | gzip -9n > "$root/usr/share/man/man8/ecmplb.8.gz"
help2man -N --version-string="$version" --section=1 -n "control the running ecmplb daemon" \
  "$root/usr/bin/ecmplbctl" | gzip -9n > "$root/usr/share/man/man1/ecmplbctl.1.gz"
find "$root" -type d -exec chmod 0755 {} +
find "$root/usr/share" "$root/etc" "$root/lib" -type f -exec chmod 0644 {} +

# Library dependencies as Debian computes them (dpkg-shlibdeps wants a debian/control).
mkdir -p "$work/debian"
printf 'Source: ecmplb\n\nPackage: ecmplb\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "$root/usr/bin/ecmplb" "$root/usr/bin/ecmplbctl" 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
arch=$(dpkg --print-architecture)
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: ecmplb
Version: $version
Architecture: $arch
Maintainer: ecmplb developers <ecmplb-dev@lists.example.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: frr
Section: net
Priority: optional
Homepage: https://github.com/ecmplb/ecmplb
Description: user-space DPDK L4 load balancer for ECMP fleets
 ecmplb runs DPDK poll-mode workers that forward packets to a VIP to backends
 chosen by a Maglev consistent-hash table (the same on every LB host, so
 flows survive ECMP rehashing) and a per-worker connection tracker, in DR,
 GRE, IPIP or GUE mode. FRR announces each VIP over OSPF while the host can
 serve it. ecmplbctl changes backend pools live.
CONTROL
echo "/etc/default/ecmplb" > "$root/DEBIAN/conffiles"
mkdir -p "$out"
deb=$out/ecmplb_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
