#!/usr/bin/env bash
# URL-only fast start in network namespaces, with the relay's upload capped below N x the
# origin rate, so that the agents must trade among themselves during the pull.
#
# Namespace 0 holds fg-origin (throttled to RATE by itself) and floodgate-ctl (SQLite);
# namespace 1 the relay (upload RELAY_UP); namespaces 2..N+1 the agents (UP / DOWN). Every link
# is shaped with tc tbf as in tools/bench-swarm-netns.sh. `floodgate-ctl dist create URL` with no
# .torrent; the agents follow the relay's growing hash list in the provisional swarm, then move
# to the standard swarm. Each group in KINDS runs against a fresh relay and fresh agents:
#   floodgate             the relay as it is built (automatic reveal policy)
#   floodgate-superseed   the relay with --super-seed (reveal strictly, BEP 16 style)
#   floodgate-plain       the relay with --no-super-seed (announce every piece as it lands)
#   floodgate-bt          agents with --no-http (BitTorrent only)
# Prints per group: the relay's first piece, the agents' first pieces (goal: <= 1 s after the
# relay's), the pull, the last agent (goal: <= 1.05 x the pull), the relay's upload over BitTorrent
# and HTTP in copies of the file (goal: <= 1.5 with 8 agents), and the agents' BT / HTTP split.
#
#   sudo tools/bench-faststart-url-netns.sh [SIZE_MIB] [AGENTS]        (defaults: 256, 8)
#   RATE=12500000 (origin, bytes/s)  RELAY_UP=200  UP=200  DOWN=400 (Mbit/s)  KINDS="floodgate ..."
#
# Needs root (ip netns, tc). Namespaces fgu*, bridge fgubr0; traffic never leaves the bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
n="${2:-8}"
rate="${RATE:-12500000}"
relay_up="${RELAY_UP:-200}"
up="${UP:-200}"
down="${DOWN:-400}"
kinds="${KINDS:-floodgate floodgate-plain}"
# shellcheck source=tools/lib/netns.sh
. tools/lib/netns.sh
NETNS_PREFIX=fgu
NETNS_SUBNET=10.78.0
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces and tc)" >&2; exit 1; }
if [ -z "${FG_BIN_DIR:-}" ]; then
    cargo build --release -q -p floodgate -p floodgate-relay -p floodgate-ctl -p floodgate-tools
fi
bin="${FG_BIN_DIR:-$PWD/target/release}"
work="$(mktemp -d /var/tmp/fg-faststart-url-netns.XXXXXX)"
chmod 755 "$work"
pids=()
stop_all() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
cleanup() { stop_all; kill "${origin_pid:-}" 2>/dev/null || true; netns_cleanup "$((n + 1))"; rm -rf "$work"; }
trap cleanup EXIT

netns_bridge
netns_add 0 10000 10000
netns_add 1 "$relay_up" 10000
for i in $(seq 2 "$((n + 1))"); do netns_add "$i" "$up" "$down"; done
ns_origin=10.78.0.1
ns_relay=10.78.0.2
size=$((size_mib * 1024 * 1024))
head -c "$size" /dev/urandom > "$work/payload.bin"
ip netns exec fgu0 "$bin/fg-origin" --file "$work/payload.bin" --listen "$ns_origin:8000" --rate "$rate" \
    --send-buffer 65536 2> "$work/origin.log" &
origin_pid=$!
export FLOODGATE_ADMIN_TOKEN=bench-admin-token FLOODGATE_RELAY_TOKEN=bench-relay-token FLOODGATE_CLIENT_TOKEN=bench-client-token
ctljson() { ip netns exec fgu0 "$bin/floodgate-ctl" "$@" --ctl "http://$ns_origin:7000" --token bench-admin-token --json 2>/dev/null; }
# The bound for a live source: nobody has a byte before the origin sends it, every agent needs
# the file through its download, and all N copies leave the relay or an agent:
#   T_min = max(F / origin rate, F / down, N·F / (relay up + N·up)).
bound=$(awk -v f="$size" -v n="$n" -v r="$rate" -v ur="$relay_up" -v u="$up" -v d="$down" 'BEGIN {
    ur = ur * 1e6 / 8; u = u * 1e6 / 8; d = d * 1e6 / 8;
    a = f / r; b = f / d; c = n * f / (ur + n * u);
    t = a; if (b > t) t = b; if (c > t) t = c; printf "%.2f", t }')
echo "URL-only fast start in netns: origin ${rate} B/s -> ctl (SQLite) -> 1 relay (up ${relay_up} Mbit/s) -> $n agents (up ${up}, down ${down} Mbit/s), ${size_mib} MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo "bound for a live source: ${bound} s"

group() {
    local name="$1" relay_args=() agent_args=() i
    case "$name" in
        floodgate-superseed) relay_args=(--super-seed) ;;
        floodgate-plain) relay_args=(--no-super-seed) ;;
        floodgate-bt) agent_args=(--no-http) ;;
    esac
    local g="$work/$name"
    rm -rf "$g"; mkdir -p "$g"
    ip netns exec fgu0 "$bin/floodgate-ctl" serve --listen "$ns_origin:7000" --db "sqlite://$g/ctl.db" 2> "$g/ctl.log" &
    pids+=($!)
    netns_wait_tcp fgu1 "$ns_origin" 7000
    RUST_LOG=info NO_COLOR=1 ip netns exec fgu1 "$bin/floodgate-relay" --ctl "http://$ns_origin:7000" \
        --token bench-relay-token --id relay-1 --data-dir "$g/relay" --listen-bt "$ns_relay:6881" \
        --listen-http "$ns_relay:8080" "${relay_args[@]}" > /dev/null 2> "$g/relay.log" &
    pids+=($!)
    for i in $(seq 2 "$((n + 1))"); do
        mkdir -p "$g/c$i"
        RUST_LOG=info NO_COLOR=1 ip netns exec "fgu$i" "$bin/floodgate" agent --ctl "http://$ns_origin:7000" \
            --token bench-client-token --id "agent-$i" -o "$g/c$i" --listen "$(netns_ip "$i"):6881" \
            "${agent_args[@]}" 2> "$g/c$i.log" &
        pids+=($!)
    done
    for _ in $(seq 1 300); do
        [ "$(ctljson clients | grep -o '"id":"agent-[0-9]*"' | wc -l)" -ge "$n" ] && [ "$(ctljson relays | grep -c relay-1)" -ge 1 ] && break
        sleep 0.1
    done
    local before dist state=active
    before=$(ip netns exec fgu0 curl -s "http://$ns_origin:8000/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])')
    dist=$(ctljson dist create "http://$ns_origin:8000/payload.bin" --targets all | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
    [ -n "$dist" ] || { echo "$name: dist create failed" >&2; return 1; }
    for _ in $(seq 1 6000); do
        state=$(ctljson dist get "$dist" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
        [ "$state" = active ] || break
        sleep 0.1
    done
    [ "$state" = done ] || { echo "$name: distribution ended $state" >&2; stop_all; return 1; }
    for i in $(seq 2 "$((n + 1))"); do
        cmp -s "$g/c$i/payload.bin" "$work/payload.bin" || { echo "$name: agent $i differs" >&2; stop_all; return 1; }
    done
    local served relay_json
    served=$(ip netns exec fgu0 curl -s "http://$ns_origin:8000/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])')
    relay_json=$(ip netns exec fgu1 curl -s "http://$ns_relay:8080/tasks")
    ctljson dist stats "$dist" > "$g/stats.json" || true
    stop_all
    PYTHONPATH=tools/bench python3 - "$g" "$n" "$((served - before))" "$relay_json" "$size" "$bound" "$name" <<'PY'
import json, sys
g, n, served, relay, size, bound, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
from logtime import when
t0 = when(f"{g}/relay.log", "distribution started")
relay_first = when(f"{g}/relay.log", "first piece verified") - t0
pull = when(f"{g}/relay.log", "pull complete") - t0
agents = range(2, n + 2)
firsts = sorted(when(f"{g}/c{i}.log", "first piece verified") - t0 for i in agents)
dones = sorted(when(f"{g}/c{i}.log", "download complete") - t0 for i in agents)
bt = sum(t["bt_bytes"] for t in relay)
http = sum(t["http_bytes"] for t in relay)
print(f"{name}:")
print(f"  relay first piece {relay_first:6.2f} s; agents' first pieces {firsts[0]:.2f}-{firsts[-1]:.2f} s (slowest +{firsts[-1] - relay_first:.2f} s)")
print(f"  origin pull {pull:6.2f} s ({size / pull / 1e6:.1f} MB/s); agents done {dones[0]:.2f}-{dones[-1]:.2f} s; last = {dones[-1] / pull:.3f} x the pull, {dones[-1] / bound:.3f} x the bound")
print(f"  origin served {served / size:.3f} x the file; relay uploaded {(bt + http) / size:.2f} x the file (BitTorrent {bt / size:.2f}, HTTP {http / size:.2f})")
PY
}

for k in $kinds; do group "$k" || true; done
