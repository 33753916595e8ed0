#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine. Idempotent: on a machine
# that already has everything it only checks.
#  - PostgreSQL on 127.0.0.1:5432 (ctl tests)
#  - real BitTorrent clients for the interop tests: python3-libtorrent and aria2 (Debian)
#  - curl (relay tests) and openssl (test certificates for the TLS tests)
#  - nginx (a real HTTP origin for the relay tests)
#  - chromium (the dashboard's browser test drives it headless over CDP)
#  - systemd (systemd-analyze, to verify the units in deploy/systemd)
#  - iproute2 and util-linux (`ip`, `unshare`: the README's blocks run in a netns of their own)
#  - promtool (Debian's prometheus package) to check deploy/prometheus's alerting rules; the
#    Prometheus server it brings is stopped and disabled again, only the tool is wanted
#  - cargo-fuzz, for tools/fuzz-smoke.sh (the fuzz targets build with the nightly toolchain)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

bash "$here/setup-postgres.sh"

missing=()
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing+=(python3-libtorrent)
command -v aria2c > /dev/null || missing+=(aria2)
command -v curl > /dev/null || missing+=(curl)
command -v openssl > /dev/null || missing+=(openssl)
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v systemd-analyze > /dev/null || missing+=(systemd)
command -v ip > /dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)   # the README test's netns
command -v unshare > /dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" > /dev/null
fi
if ! command -v promtool > /dev/null; then
    echo "installing prometheus (for promtool)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends prometheus > /dev/null
    if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus > /dev/null 2>&1 || true
    fi
fi
if ! command -v cargo-fuzz > /dev/null; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
