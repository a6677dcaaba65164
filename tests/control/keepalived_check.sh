#!/usr/bin/env bash
# keepalived_check.sh DIR: Debian's keepalived accepts every keepalived test file in DIR
# (`keepalived -t -f FILE`, exit 0), so the importer's tests read files keepalived itself reads.
# Skipped (77) without keepalived. keepalived 2.2.7 cannot check files with MISC_CHECK scripts
# (it kills itself, exit 143: keepalived issue #2587, fixed in 2.2.8), so none are here.
set -u
dir=${1:?usage: keepalived_check.sh DIR}
if ! command -v keepalived >/dev/null; then
  echo "keepalived not installed: skipped"
  exit 77
fi
fail=0
for f in "$dir"/*.conf; do
  if out=$(cd "$dir" && keepalived -t -f "$f" 2>&1); then
    echo "ok: $(basename "$f")"
  else
    echo "FAILED: keepalived -t -f $f (exit $?): $out"
    fail=1
  fi
done
exit $fail
