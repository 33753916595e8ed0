#!/usr/bin/env bash
# Hybrid download benchmark on loopback: one BitTorrent seed whose upload is capped below the
# threshold, one HTTP source (fg-origin, counted by its /__stats), the torrent naming that source
# as its BEP 19 web seed. The same file is fetched, in the same run, by:
#   floodgate      hybrid (BitTorrent first, HTTP only to keep the rate >= THRESHOLD)
#   floodgate-bt   floodgate --no-http (BitTorrent only: what the slow seed alone gives)
#   libtorrent     python3-libtorrent with the web seed (web seeds always on)
#   aria2          aria2c with the torrent: no tracker, so only its web seed (aria2 takes no peer
#                  address on the command line)
# and, as the healthy-swarm check, floodgate hybrid from an uncapped seed.
# Prints per client: seconds, mean MB/s, bytes the HTTP source served, and that as a share of
# the file.
#
#   tools/bench-hybrid.sh [SIZE_MIB] [SEED_RATE_B/S] [THRESHOLD_B/S]   (defaults: 256 1000000 5000000)
#   FG_BIN=/path/to/bin/dir tools/bench-hybrid.sh ...                    (floodgate, fg-origin there)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
seed_rate="${2:-1000000}"
threshold="${3:-5000000}"
here="$PWD/tools/bench"
if [ -z "${FG_BIN:-}" ]; then cargo build --release -p floodgate -p floodgate-tools -q; fi
bindir="${FG_BIN:-$PWD/target/release}"
fg="$bindir/floodgate"
work="$(mktemp -d /var/tmp/fg-hybrid.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
size=$(stat -c %s "$work/seed/payload.bin")
origin_port=$(port)
url="http://127.0.0.1:$origin_port/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/payload.torrent" --web-seed "$url" > /dev/null 2>&1

start_origin() {
    "$bindir/fg-origin" --file "$work/seed/payload.bin" --listen "127.0.0.1:$origin_port" 2> /dev/null &
    origin_pid=$!
    pids+=("$origin_pid")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$origin_port/__stats" > /dev/null && return; sleep 0.05; done
    echo "fg-origin did not start" >&2
    exit 1
}
served() { curl -sf "http://127.0.0.1:$origin_port/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])'; }
start_seed() { # RATE (0 = uncapped)
    seed_port=$(port)
    "$fg" seed "$work/payload.torrent" --data "$work/seed" --listen "127.0.0.1:$seed_port" --upload-limit "$1" > /dev/null 2>&1 &
    seed_pid=$!
    pids+=("$seed_pid")
    sleep 1
}

printf '%-14s %8s %8s %14s %8s\n' client seconds MB/s http_bytes http_share
report() { # NAME SECONDS
    local bytes
    bytes=$(served)
    python3 - "$1" "$2" "$bytes" "$size" <<'PY'
import sys
name, secs, http, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"{name:<14} {secs:8.2f} {size / secs / 1e6:8.2f} {http:14d} {http / size:8.3f}")
PY
}
run() { # NAME SEED_RATE COMMAND...
    local name=$1 rate=$2; shift 2
    start_origin
    start_seed "$rate"
    rm -rf "$work/out"; mkdir -p "$work/out"
    local t0 t1
    t0=$(date +%s.%N)
    if ! "$@" > "$work/$name.out" 2> "$work/$name.err"; then echo "$name failed: $(tail -3 "$work/$name.err")" >&2; fi
    t1=$(date +%s.%N)
    cmp -s "$work/out/payload.bin" "$work/seed/payload.bin" || echo "$name: file differs" >&2
    report "$name" "$(python3 -c "print($t1 - $t0)")"
    kill "$seed_pid" "$origin_pid" 2> /dev/null || true
    wait "$seed_pid" "$origin_pid" 2> /dev/null || true
}
fg_get() { "$fg" get "$work/payload.torrent" -o "$work/out" --peer "127.0.0.1:$seed_port" --no-seed --json --timeout 900 "$@"; }

run floodgate "$seed_rate" fg_get --bt-threshold "$threshold"
run floodgate-bt "$seed_rate" fg_get --no-http
if /usr/bin/python3 -c 'import libtorrent' 2> /dev/null; then
    lt() { /usr/bin/python3 "$here/lt_get.py" "$work/payload.torrent" "$work/out" "127.0.0.1:$seed_port"; }
    run libtorrent "$seed_rate" lt
else
    echo "libtorrent: not installed (tools/ci-setup.sh installs python3-libtorrent)" >&2
fi
if command -v aria2c > /dev/null; then
    aria() { aria2c -q -d "$work/out" --seed-time=0 --enable-dht=false --bt-enable-lpd=false --bt-external-ip=127.0.0.1 \
        --bt-stop-timeout=900 "$work/payload.torrent"; }
    run aria2 "$seed_rate" aria
else
    echo "aria2: not installed (tools/ci-setup.sh installs aria2)" >&2
fi
run floodgate-healthy 0 fg_get --bt-threshold "$threshold"
