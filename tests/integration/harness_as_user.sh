#!/usr/bin/env bash
# The test harness must work for a normal user too: run its self-check as 'nobody'
# when we are root (from a copy in /tmp, since the build tree may not be readable).
set -euo pipefail
selfcheck=$1
if [[ $(id -u) -ne 0 ]]; then
  exec "$selfcheck"
fi
tmp=$(mktemp -d /tmp/pdv-asuser-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp "$selfcheck" "$tmp/selfcheck"
chmod 755 "$tmp" "$tmp/selfcheck"
out=$(cd /tmp && runuser -u nobody -- "$tmp/selfcheck")
echo "$out"
[[ $out == uid=$(id -u nobody)\ * ]] || { echo "did not run as nobody" >&2; exit 1; }
[[ $out == *wal_level_logical=true* ]]
