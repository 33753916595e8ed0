#!/usr/bin/env bash
# The relay's whole-file SHA-256 check (`dist create --sha256`, the `checking` state after a
# URL-only pull) against `sha256sum` on the same file in the same run. fg-origin (unthrottled)
# serves SIZE_MIB of random bytes, floodgate-ctl on SQLite, one floodgate-relay --ctl, and
# `dist create URL --sha256 HEX --targets all` (no agents: the check happens at the relay).
# Reads the relay's `SHA-256 checked` log line (bytes, after_ms), then times `sha256sum` on the
# relay's copy of the file, both from the page cache (the file was just written). Prints
# seconds per GiB and MiB/s for each, and their ratio (and `openssl dgst -sha256` when installed).
#
#   tools/bench-sha256-check.sh [SIZE_MIB]      (default 1024; PROFILE=debug to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
profile="${PROFILE:-release}"
command -v sha256sum > /dev/null || { echo "sha256sum is missing" >&2; exit 1; }
if [ "$profile" = release ]; then
    cargo build --release -q -p floodgate-relay -p floodgate-ctl -p floodgate-tools
else
    cargo build -q -p floodgate-relay -p floodgate-ctl -p floodgate-tools
fi
bin="$PWD/target/$profile"
work="$(mktemp -d /var/tmp/fg-sha256.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
origin_port=$(port); ctl_port=$(port); bt_port=$(port); http_port=$(port)

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload.bin"
digest=$(sha256sum "$work/payload.bin" | cut -d' ' -f1)
"$bin/fg-origin" --file "$work/payload.bin" --listen "127.0.0.1:$origin_port" 2> "$work/origin.log" &
pids+=($!)
wait_port "$origin_port"
export FLOODGATE_ADMIN_TOKEN=bench-admin-token FLOODGATE_RELAY_TOKEN=bench-relay-token FLOODGATE_CLIENT_TOKEN=bench-client-token
"$bin/floodgate-ctl" serve --listen "127.0.0.1:$ctl_port" --db "sqlite://$work/ctl.db" 2> "$work/ctl.log" &
pids+=($!)
wait_port "$ctl_port"
ctl="http://127.0.0.1:$ctl_port"
ctljson() { "$bin/floodgate-ctl" "$@" --ctl "$ctl" --token bench-admin-token --json 2>/dev/null; }
RUST_LOG=info NO_COLOR=1 "$bin/floodgate-relay" --ctl "$ctl" --token bench-relay-token --id relay-1 \
    --data-dir "$work/relay" --listen-bt "127.0.0.1:$bt_port" --listen-http "127.0.0.1:$http_port" \
    > /dev/null 2> "$work/relay.log" &
pids+=($!)
wait_port "$http_port"
for _ in $(seq 1 300); do
    [ "$(ctljson relays | grep -c relay-1)" -ge 1 ] && break
    sleep 0.1
done
dist=$(ctljson dist create "http://127.0.0.1:$origin_port/payload.bin" --targets all --sha256 "$digest" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$dist" ] || { echo "dist create failed" >&2; exit 1; }
line=""
for _ in $(seq 1 6000); do
    line=$(grep 'SHA-256 checked' "$work/relay.log" || true)
    [ -n "$line" ] && break
    sleep 0.1
done
[ -n "$line" ] || { echo "the relay never checked the file; relay log:" >&2; tail -20 "$work/relay.log" >&2; exit 1; }
echo "$line" | grep -q 'matches=true' || { echo "the check did not match: $line" >&2; exit 1; }
relay_ms=$(echo "$line" | sed -n 's/.*after_ms=\([0-9]*\).*/\1/p')
bytes=$(echo "$line" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
file=$(find "$work/relay" -name payload.bin -type f | head -1)
[ -n "$file" ] || { echo "the relay's copy of the file is missing" >&2; exit 1; }
start=$(date +%s%N)
sum=$(sha256sum "$file" | cut -d' ' -f1)
end=$(date +%s%N)
[ "$sum" = "$digest" ] || { echo "sha256sum disagrees with the origin's digest" >&2; exit 1; }
sum_ms=$(( (end - start) / 1000000 ))
# A second reference when present: OpenSSL's SHA-256 (uses the CPU's SHA extensions).
ossl_ms=0
if command -v openssl > /dev/null; then
    start=$(date +%s%N)
    openssl dgst -sha256 "$file" > /dev/null
    end=$(date +%s%N)
    ossl_ms=$(( (end - start) / 1000000 ))
fi
python3 - "$bytes" "$relay_ms" "$sum_ms" "$profile" "$ossl_ms" <<'PY'
import sys
b, relay_ms, sum_ms, profile, ossl_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
gib = b / 2**30
def row(name, ms):
    s = max(ms, 1) / 1000
    print(f"{name:<28} {s:7.3f} s  {s / gib:6.3f} s/GiB  {b / 2**20 / s:8.0f} MiB/s")
print(f"file: {b} bytes ({gib:.2f} GiB), page cache warm, {profile} build")
row("relay check (sha2, pread)", relay_ms)
row("sha256sum (coreutils)", sum_ms)
if ossl_ms:
    row("openssl dgst -sha256", ossl_ms)
print(f"relay time / sha256sum time: {max(relay_ms, 1) / max(sum_ms, 1):.2f}x")
PY
