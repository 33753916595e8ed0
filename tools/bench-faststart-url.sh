#!/usr/bin/env bash
# URL-only fast start through ctl: fg-origin throttled to RATE serving SIZE_MIB, floodgate-ctl
# on SQLite, one floodgate-relay --ctl, CLIENTS floodgate agents, and `floodgate-ctl dist
# create URL` with no .torrent. The agents start from the relay's growing hash list in the
# distribution's provisional swarm while the relay pulls, then move to the standard swarm.
# Prints, from the relay's `distribution started` log line: the relay's first verified piece,
# each agent's first verified piece (goal: <= 1 s after the relay's), the end of the origin
# pull, each agent's completion (goal: last <= 1.05 x the pull), what the origin served and
# what the relay uploaded (BitTorrent in both swarms + HTTP), in copies of the file.
#
#   tools/bench-faststart-url.sh [SIZE_MIB] [CLIENTS] [RATE_BYTES_PER_S]   (defaults: 512, 4, 50000000)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-512}"
n="${2:-4}"
rate="${3:-50000000}"
cargo build --release -q -p floodgate -p floodgate-relay -p floodgate-ctl -p floodgate-tools
bin="$PWD/target/release"
work="$(mktemp -d /var/tmp/fg-faststart-url.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
origin_port=$(port); ctl_port=$(port); bt_port=$(port); http_port=$(port)

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload.bin"
"$bin/fg-origin" --file "$work/payload.bin" --listen "127.0.0.1:$origin_port" --rate "$rate" 2> "$work/origin.log" &
pids+=($!)
wait_port "$origin_port"
export FLOODGATE_ADMIN_TOKEN=bench-admin-token FLOODGATE_RELAY_TOKEN=bench-relay-token FLOODGATE_CLIENT_TOKEN=bench-client-token
"$bin/floodgate-ctl" serve --listen "127.0.0.1:$ctl_port" --db "sqlite://$work/ctl.db" 2> "$work/ctl.log" &
pids+=($!)
wait_port "$ctl_port"
ctl="http://127.0.0.1:$ctl_port"
ctljson() { "$bin/floodgate-ctl" "$@" --ctl "$ctl" --token bench-admin-token --json 2>/dev/null; }
RUST_LOG=info NO_COLOR=1 "$bin/floodgate-relay" --ctl "$ctl" --token bench-relay-token --id relay-1 \
    --data-dir "$work/relay" --listen-bt "127.0.0.1:$bt_port" --listen-http "127.0.0.1:$http_port" ${RELAY_ARGS:-} \
    > /dev/null 2> "$work/relay.log" &
pids+=($!)
wait_port "$http_port"
for i in $(seq 1 "$n"); do
    mkdir -p "$work/c$i"
    RUST_LOG=info NO_COLOR=1 "$bin/floodgate" agent --ctl "$ctl" --token bench-client-token --id "agent-$i" \
        -o "$work/c$i" --listen 127.0.0.1:0 2> "$work/c$i.log" &
    pids+=($!)
done
for _ in $(seq 1 300); do
    [ "$(ctljson clients | grep -o '"id":"agent-[0-9]*"' | wc -l)" -ge "$n" ] && [ "$(ctljson relays | grep -c relay-1)" -ge 1 ] && break
    sleep 0.1
done
dist=$(ctljson dist create "http://127.0.0.1:$origin_port/payload.bin" --targets all | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$dist" ] || { echo "dist create failed" >&2; exit 1; }
state=active
for _ in $(seq 1 6000); do
    state=$(ctljson dist get "$dist" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
    [ "$state" = active ] || break
    sleep 0.1
done
[ "$state" = done ] || { echo "distribution ended $state" >&2; exit 1; }
for i in $(seq 1 "$n"); do cmp -s "$work/c$i/payload.bin" "$work/payload.bin" || { echo "agent $i differs" >&2; exit 1; }; done
served=$(curl -s "http://127.0.0.1:$origin_port/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])')
relay_up=$(curl -s "http://127.0.0.1:$http_port/tasks" | python3 -c 'import json,sys; t=json.load(sys.stdin)[0]; print(t["bt_bytes"] + t["http_bytes"])')
echo "URL-only fast start: origin ${rate} B/s -> ctl (SQLite) -> 1 relay -> $n agents, ${size_mib} MiB, $(nproc) cores, $(date -u +%F)"
PYTHONPATH=tools/bench python3 - "$work" "$n" "$served" "$relay_up" "$((size_mib * 1024 * 1024))" <<'PY'
import sys
work, n, served, relay_up, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
from logtime import when
t0 = when(f"{work}/relay.log", "distribution started")
relay_first = when(f"{work}/relay.log", "first piece verified") - t0
pull = when(f"{work}/relay.log", "pull complete") - t0
firsts = sorted(when(f"{work}/c{i}.log", "first piece verified") - t0 for i in range(1, n + 1))
dones = sorted(when(f"{work}/c{i}.log", "download complete") - t0 for i in range(1, n + 1))
print(f"relay first piece  {relay_first:6.2f} s after the distribution started on the relay")
print("agent first piece  " + ", ".join(f"{f:.2f}" for f in firsts) + f" s  (slowest +{firsts[-1] - relay_first:.2f} s after the relay)")
print(f"origin pull done   {pull:6.2f} s ({size / pull / 1e6:.1f} MB/s)")
print("agents complete    " + ", ".join(f"{d:.2f}" for d in dones) + f" s  (last = {dones[-1] / pull:.3f} x the pull)")
print(f"origin served {served} bytes = {served / size:.3f} x the file; relay uploaded {relay_up} bytes = {relay_up / size:.2f} x the file")
PY
