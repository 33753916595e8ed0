#!/usr/bin/env bash
# Relay fast start: fg-origin throttled to RATE serving SIZE_MIB, one standalone
# floodgate-relay pulling it, and CLIENTS `floodgate get` started as soon as the relay's task
# starts (dialling the relay with --peer and finding each other through its tracker).
# Prints, from the task start: when the relay verified its first piece and each client its
# first piece (goal: a client <= 1 s after the relay), when the origin pull ended, and when
# the last client completed (goal: <= 1.1 x the pull).
#
#   tools/bench-faststart.sh [SIZE_MIB] [CLIENTS] [RATE_BYTES_PER_S]   (defaults: 512, 4, 50000000)
#   RELAY_ARGS="--super-seed" tools/bench-faststart.sh ...            (extra relay flags)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-512}"
n="${2:-4}"
rate="${3:-50000000}"
cargo build --release -q -p floodgate -p floodgate-relay -p floodgate-tools
bin="$PWD/target/release"
work="$(mktemp -d /var/tmp/fg-faststart.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
origin_port=$(port); bt_port=$(port); http_port=$(port)

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload.bin"
"$bin/floodgate" make-torrent "$work/payload.bin" -o "$work/p.torrent" \
    --tracker "http://127.0.0.1:$http_port/announce" > /dev/null 2>&1
"$bin/fg-origin" --file "$work/payload.bin" --listen "127.0.0.1:$origin_port" --rate "$rate" \
    > /dev/null 2> "$work/origin.log" &
pids+=($!)
wait_port "$origin_port"

RUST_LOG=info NO_COLOR=1 "$bin/floodgate-relay" --origin "http://127.0.0.1:$origin_port/payload.bin" \
    --torrent "$work/p.torrent" --data-dir "$work/relay" \
    --listen-bt "127.0.0.1:$bt_port" --listen-http "127.0.0.1:$http_port" ${RELAY_ARGS:-} \
    > "$work/relay.out" 2> "$work/relay.log" &
pids+=($!)
# The task id on stdout means the task started (BitTorrent listening, pull under way).
for _ in $(seq 1 400); do [ -s "$work/relay.out" ] && break; sleep 0.01; done
cpids=()
for i in $(seq 1 "$n"); do
    mkdir -p "$work/c$i"
    "$bin/floodgate" get "$work/p.torrent" -o "$work/c$i" --peer "127.0.0.1:$bt_port" \
        --listen 127.0.0.1:0 --seed-for 3 --json --timeout 300 > "$work/c$i.json" 2> "$work/c$i.log" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
echo "clients' peers seen: $(for i in $(seq 1 "$n"); do sed 's/.*"peers":\([0-9]*\).*/\1/' "$work/c$i.json"; done | tr "\n" " ")"
for i in $(seq 1 "$n"); do cmp -s "$work/c$i/payload.bin" "$work/payload.bin" || { echo "client $i differs"; exit 1; }; done
stats=$(curl -s "http://127.0.0.1:$origin_port/__stats")
relay_up=$(curl -s "http://127.0.0.1:$http_port/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["bt_bytes"])')

echo "fast start: origin ${rate} B/s -> 1 relay -> $n clients, ${size_mib} MiB, $(nproc) cores, $(date -u +%F)"
echo "origin served: $stats; relay uploaded over BitTorrent: $relay_up bytes"
python3 - "$work" "$n" <<'EOF'
import datetime, json, re, sys
work, n = sys.argv[1], int(sys.argv[2])
ansi = re.compile(r"\x1b\[[0-9;]*m")
def when(msg):
    for line in open(f"{work}/relay.log"):
        line = ansi.sub("", line)
        if msg in line:
            ts = line.split()[0].rstrip("Z")[:26]
            return datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc).timestamp()
    sys.exit(f"relay log has no {msg!r}")
t0, relay_first, pull_done = when("task started"), when("first piece verified"), when("pull complete")
clients = [json.loads(open(f"{work}/c{i}.json").read()) for i in range(1, n + 1)]
firsts = sorted(c["first_piece_unix"] - t0 for c in clients)
dones = sorted(c["started_unix"] + c["seconds"] - t0 for c in clients)
pull = pull_done - t0
print(f"relay first piece  {relay_first - t0:6.2f} s after the task start")
print("client first piece " + ", ".join(f"{f:.2f}" for f in firsts) +
      f" s  (first client +{firsts[0] - (relay_first - t0):.2f} s after the relay, slowest +{firsts[-1] - (relay_first - t0):.2f} s)")
print(f"origin pull done   {pull:6.2f} s ({json.load(open(f'{work}/c1.json'))['bytes'] / pull / 1e6:.1f} MB/s)")
print("clients complete   " + ", ".join(f"{d:.2f}" for d in dones) + f" s  (last = {dones[-1] / pull:.3f} x the pull)")
EOF
