#!/usr/bin/env bash
# The main job end to end on loopback, with a summary:
#   origin (fg-origin, throttled) -> relay (pulls with parallel Range requests, verifies and
#   seeds while still pulling) -> N clients (`floodgate get`, BitTorrent, trading among
#   themselves) -> summary: times, throughput, and how many bytes the origin served.
# ctl (SQLite) is started too and a distribution is recorded in it; relays and clients taking
# their tasks from ctl is the next step (see README, "Status").
#
#   tools/quickstart.sh [SIZE_MIB] [CLIENTS]        (defaults: 256, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
clients="${2:-4}"
work="$(mktemp -d /var/tmp/floodgate-quickstart.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
now() { date +%s.%N; }

echo "== building release binaries"
cargo build --release --workspace --bins -q
bin="$PWD/target/release"

echo "== making a ${size_mib} MiB test file and its .torrent"
mkdir -p "$work/origin" "$work/relay"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/origin/payload.bin"
info_hash=$("$bin/floodgate" make-torrent "$work/origin/payload.bin" -o "$work/payload.torrent" 2>/dev/null)

origin_port=$(port); ctl_port=$(port); relay_bt=$(port); relay_http=$(port)
rate=$((200 * 1024 * 1024))
echo "== origin on 127.0.0.1:$origin_port (throttled to 200 MiB/s)"
"$bin/fg-origin" --file "$work/origin/payload.bin" --listen "127.0.0.1:$origin_port" --rate "$rate" 2> "$work/origin.log" &
pids+=($!)
wait_port "$origin_port"

echo "== ctl on 127.0.0.1:$ctl_port (SQLite at $work/floodgate.db)"
export FLOODGATE_ADMIN_TOKEN=quickstart-admin FLOODGATE_RELAY_TOKEN=quickstart-relay FLOODGATE_CLIENT_TOKEN=quickstart-client
"$bin/floodgate-ctl" serve --listen "127.0.0.1:$ctl_port" --db "sqlite://$work/floodgate.db" 2> "$work/ctl.log" &
pids+=($!)
wait_port "$ctl_port"
dist=$("$bin/floodgate-ctl" dist create "http://127.0.0.1:$origin_port/payload.bin" --torrent "$work/payload.torrent" \
    --targets all --ctl "http://127.0.0.1:$ctl_port" --token quickstart-admin --json 2>/dev/null | head -c 300 || true)

echo "== relay pulling from the origin, serving BitTorrent on :$relay_bt and HTTP on :$relay_http"
t0=$(now)
"$bin/floodgate-relay" --origin "http://127.0.0.1:$origin_port/payload.bin" --torrent "$work/payload.torrent" \
    --data-dir "$work/relay" --listen-bt "127.0.0.1:$relay_bt" --listen-http "127.0.0.1:$relay_http" \
    > "$work/relay.out" 2> "$work/relay.log" &
pids+=($!)
wait_port "$relay_bt"

echo "== $clients clients downloading over BitTorrent while the relay is still pulling"
cpids=()
for i in $(seq 1 "$clients"); do
    mkdir -p "$work/client$i"
    peers=(--peer "127.0.0.1:$relay_bt")
    "$bin/floodgate" get "$work/payload.torrent" -o "$work/client$i" "${peers[@]}" --listen 127.0.0.1:0 \
        --no-seed --json --timeout 600 > "$work/client$i.json" 2> "$work/client$i.log" &
    cpids+=($!)
done
failed=0
for p in "${cpids[@]}"; do wait "$p" || failed=$((failed + 1)); done
t1=$(now)
for i in $(seq 1 "$clients"); do cmp -s "$work/client$i/payload.bin" "$work/origin/payload.bin" || failed=$((failed + 1)); done
origin_bytes=$(curl -sf "http://127.0.0.1:$origin_port/__stats" | sed 's/.*"body_bytes":\([0-9]*\).*/\1/')
bytes=$((size_mib * 1024 * 1024))
first=$(for i in $(seq 1 "$clients"); do sed 's/.*"seconds":\([0-9.]*\).*/\1/' "$work/client$i.json"; done | sort -n | head -n1)

echo
echo "== summary"
echo "file:              ${size_mib} MiB, info hash ${info_hash}"
echo "ctl distribution:  ${dist:-not recorded (see $work/ctl.log)}" | cut -c1-120
awk -v b="$bytes" -v a="$t0" -v z="$t1" -v n="$clients" -v o="$origin_bytes" -v f="$first" -v r="$rate" 'BEGIN {
    printf "clients:           %d, all byte-identical and verified\n", n
    printf "last client done:  %.2f s after the relay started (origin alone needs %.2f s at its rate)\n", z - a, b / r
    printf "fastest client:    %.2f s\n", f
    printf "origin served:     %d bytes = %.2f x the file (one relay)\n", o, o / b
    printf "delivered:         %.0f MiB to clients, offload %.1f x\n", n * b / 1048576, n * b / o
}'
if [ "$failed" -ne 0 ]; then echo "FAILED: $failed client(s) incomplete or different"; exit 1; fi
