#!/usr/bin/env bash
# Checks the units with `systemd-analyze verify` (installing systemd from Debian if the tool
# is missing). The units name /usr/local/bin binaries; BIN_DIR (default: target/debug) points
# them at built ones for the check, in a temporary copy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin_dir="${BIN_DIR:-$root/target/debug}"
if ! command -v systemd-analyze > /dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq systemd > /dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for u in "$here"/*.service; do
    sed "s#/usr/local/bin/#$bin_dir/#g; s#EnvironmentFile=/#EnvironmentFile=-/#" "$u" > "$tmp/$(basename "$u")"
done
# --man=no: the Documentation= links point at files installed with the package. verify
# only logs bad directive values, so any output at all counts as a failure.
out="$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "$out" >&2
    exit 1
fi
# Hardening: every unit's exposure score must stay at 4.0 ("OK") or below.
for u in "$tmp"/*.service; do
    systemd-analyze security --offline=yes --threshold=40 "$u" > /dev/null 2>&1 \
        || { systemd-analyze security --offline=yes "$u" >&2; echo "$(basename "$u"): exposure above 4.0" >&2; exit 1; }
done
echo "systemd units OK"
