#!/usr/bin/env bash
# Hybrid download in a shaped swarm (network namespaces): one relay serving BitTorrent and HTTP
# Range, N clients, a third of them P2P-hostile, and three groups run one after another on the
# same links in the same run:
#   floodgate   `floodgate get` hybrid: BitTorrent first, HTTP Range from the relay only while
#               BitTorrent is below THRESHOLD (the relay's data URL as --http-source and web seed)
#   libtorrent  python3-libtorrent (tools/bench/lt_get.py), the relay's data URL as BEP 19 web seed
#   aria2       aria2c given the .torrent (with that url-list) and the same URL
#
# Layout: namespace fgh0 holds the relay (`floodgate-relay --torrent`, BitTorrent on
# 10.78.0.1:6881, HTTP Range + tracker on 10.78.0.1:8080) and its origin (`fg-origin` on the
# namespace's loopback, so the origin pull is not shaped); the relay pulls the whole file before
# the first group starts. Clients fgh1..fghN sit on a bridge (10.78.0.0/24), each veth shaped with
# tc (upload on the namespace side, download on the host side). Every HOSTILE_EVERY-th client is
# P2P-hostile: HOSTILE=block (default) drops everything in its namespace but TCP to and from the
# relay's HTTP port (nft); HOSTILE=shape puts its BitTorrent traffic (everything but the relay's
# HTTP port) in an htb class of HOSTILE_RATE Mbit/s. The torrent announces to the relay's
# tracker, so clients find the relay and each other.
# Every client keeps seeding until its whole group is done, then the group is stopped, the files
# are compared with the original and removed. Completion times are measured by this script from
# the group's common start (polled every 0.2 s). HTTP bytes come from the relay's counters
# (`/tasks`: http_bytes), origin bytes from the relay's origin_bytes and fg-origin's /__stats.
# tools/bench/hybrid_netns_report.py prints the per-group table and which goals were met.
#
#   sudo tools/bench-hybrid-netns.sh [SIZE_MIB] [CLIENTS]          (defaults: 128, 12)
#   RELAY_UP=200 UP=30 DOWN=100 (Mbit/s)  THRESHOLD=1500000 (B/s, floodgate --bt-threshold)
#   HOSTILE_EVERY=3 (0: none)  HOSTILE=block|shape  HOSTILE_RATE=1 (Mbit/s, shape mode)
#   KINDS="floodgate libtorrent aria2"  GROUP_TIMEOUT=900 (s)  FG_ARGS="--window 20" (more get flags)
#   FG_BIN=/path/to/dir (floodgate, floodgate-relay, fg-origin there; default: cargo build --release)
#   KEEP=dir (copy the per-group results and logs there)
#
# Needs root (ip netns, tc, nft). Everything it creates (namespaces fgh*, bridge fghbr0, the
# processes it starts, the work directory) is removed on exit; traffic never leaves the bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-128}"
n="${2:-12}"
relay_up="${RELAY_UP:-200}"
up="${UP:-30}"
down="${DOWN:-100}"
threshold="${THRESHOLD:-1500000}"
hostile_every="${HOSTILE_EVERY:-3}"
hostile_mode="${HOSTILE:-block}"
hostile_rate="${HOSTILE_RATE:-1}"
kinds="${KINDS:-floodgate libtorrent aria2}"
group_timeout="${GROUP_TIMEOUT:-900}"
read -r -a fg_args <<< "${FG_ARGS:-}"
here="$PWD/tools/bench"
# shellcheck source=tools/lib/netns.sh
. tools/lib/netns.sh
NETNS_PREFIX=fgh
NETNS_SUBNET=10.78.0
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, tc and nft)" >&2; exit 1; }
case "$hostile_mode" in block | shape) ;; *) echo "HOSTILE must be block or shape" >&2; exit 1 ;; esac
[ "$hostile_mode" = shape ] || command -v nft > /dev/null || { echo "HOSTILE=block needs nft (Debian: nftables)" >&2; exit 1; }
if ip link show "${NETNS_PREFIX}br0" > /dev/null 2>&1; then
    echo "${NETNS_PREFIX}br0 exists: another run is going on (or was killed; remove fgh* namespaces and the bridge)" >&2
    exit 1
fi
if [ -z "${FG_BIN:-}" ]; then cargo build --release -p floodgate -p floodgate-relay -p floodgate-tools -q; fi
bindir="${FG_BIN:-$PWD/target/release}"
fg="$bindir/floodgate"
work="$(mktemp -d /var/tmp/fg-hybrid-netns.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    netns_cleanup "$n"
    if [ -n "${KEEP:-}" ] && [ -d "$work/res" ]; then mkdir -p "$KEEP" && cp -a "$work/res/." "$KEEP/"; fi
    rm -rf "$work"
}
trap cleanup EXIT
# now_ms: wall-clock milliseconds.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

relay_ip=$(netns_ip 0)
http_port=8080
hostile() { [ "$hostile_every" -gt 0 ] && [ $(($1 % hostile_every)) = 0 ]; }

# block_p2p NS: only TCP to and from the relay's HTTP port (and loopback) passes.
block_p2p() {
    ip netns exec "$1" nft -f - << EOF
table inet fgbench {
    chain out {
        type filter hook output priority 0; policy drop;
        oif lo accept
        ip daddr $relay_ip tcp dport $http_port accept
    }
    chain in {
        type filter hook input priority 0; policy drop;
        iif lo accept
        ip saddr $relay_ip tcp sport $http_port accept
    }
}
EOF
}

# shape_p2p NS_OR_EMPTY DEV TOTAL_MBIT sport|dport: htb on DEV's egress, the relay's HTTP
# traffic (matched on that port field) at TOTAL, everything else at HOSTILE_RATE.
shape_p2p() {
    local run=() dev="$2" total="$3" field="$4"
    [ -n "$1" ] && run=(ip netns exec "$1")
    "${run[@]}" tc qdisc replace dev "$dev" root handle 1: htb default 20
    "${run[@]}" tc class add dev "$dev" parent 1: classid 1:1 htb rate "${total}mbit" burst 256kb quantum 60000
    "${run[@]}" tc class add dev "$dev" parent 1:1 classid 1:10 htb rate "${total}mbit" burst 256kb quantum 60000
    "${run[@]}" tc class add dev "$dev" parent 1:1 classid 1:20 htb rate "${hostile_rate}mbit" ceil "${hostile_rate}mbit"
    "${run[@]}" tc filter add dev "$dev" parent 1: protocol ip u32 match ip "$field" "$http_port" 0xffff flowid 1:10
}

netns_bridge
netns_add 0 "$relay_up" "$relay_up"
hostiles=()
for i in $(seq 1 "$n"); do
    netns_add "$i" "$up" "$down"
    if hostile "$i"; then
        hostiles+=("$i")
        if [ "$hostile_mode" = block ]; then
            block_p2p "fgh$i"
        else
            shape_p2p "fgh$i" "fghn$i" "$up" dport
            shape_p2p "" "fghh$i" "$down" sport
        fi
    fi
done

mkdir -p "$work/seed" "$work/relay" "$work/res"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
size=$(stat -c %s "$work/seed/payload.bin")
tracker="http://$relay_ip:$http_port/announce"
ih=$("$fg" make-torrent "$work/seed/payload.bin" -o "$work/plain.torrent" --tracker "$tracker" 2> /dev/null)
data_url="http://$relay_ip:$http_port/tasks/$ih/data"
ih2=$("$fg" make-torrent "$work/seed/payload.bin" -o "$work/p.torrent" --tracker "$tracker" --web-seed "$data_url" 2> /dev/null)
[ "$ih" = "$ih2" ] || { echo "the web seed changed the info-hash ($ih, $ih2)" >&2; exit 1; }

ip netns exec fgh0 "$bindir/fg-origin" --file "$work/seed/payload.bin" --listen 127.0.0.1:9000 2> "$work/res/origin.log" &
pids+=($!)
netns_wait_tcp fgh0 127.0.0.1 9000 || { echo "fg-origin did not start" >&2; exit 1; }
RUST_LOG=warn ip netns exec fgh0 "$bindir/floodgate-relay" --origin http://127.0.0.1:9000/payload.bin \
    --torrent "$work/plain.torrent" --data-dir "$work/relay" --listen-bt "$relay_ip:6881" \
    --listen-http "$relay_ip:$http_port" > "$work/relay.id" 2> "$work/res/relay.log" &
pids+=($!)
relay_get() { ip netns exec fgh0 curl -sf --max-time 10 "http://$relay_ip:$http_port$1"; }
# counters: relay http_bytes, relay bt_bytes, relay origin_bytes, fg-origin body_bytes.
counters() {
    local tasks stats
    tasks=$(relay_get /tasks) || tasks='[]'
    stats=$(ip netns exec fgh0 curl -sf --max-time 10 http://127.0.0.1:9000/__stats) || stats='{}'
    python3 -c 'import json, sys
t = [x for x in json.loads(sys.argv[1]) if x["id"] == sys.argv[3]]
t = t[0] if t else {}
print(t.get("http_bytes", 0), t.get("bt_bytes", 0), t.get("origin_bytes", 0), json.loads(sys.argv[2]).get("body_bytes", 0), t.get("state", "none"))' \
        "$tasks" "$stats" "$ih"
}
pulled=""
for _ in $(seq 1 600); do
    read -r _ _ _ _ state <<< "$(counters)"
    if [ "$state" = complete ]; then pulled=1; break; fi
    sleep 0.2
done
[ -n "$pulled" ] || { echo "the relay did not finish its origin pull in 120 s: $(tail -3 "$work/res/relay.log")" >&2; exit 1; }

host_desc="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
cat > "$work/res/setup" << EOF
size=$size
clients=$n
hostile=${hostiles[*]}
hostile_mode=$hostile_mode
hostile_rate=$hostile_rate
relay_up=$relay_up
up=$up
down=$down
threshold=$threshold
machine=$host_desc
fg_args=${FG_ARGS:-}
EOF
echo "relay (up $relay_up Mbit/s) + $n clients (up $up, down $down Mbit/s), hostile (${hostile_mode}): ${hostiles[*]:-none}; ${size_mib} MiB; threshold $threshold B/s; $host_desc"

cat > "$work/aria2-done.sh" << 'EOF'
#!/bin/sh
date +%s.%N > "$FG_DONE_FILE"
EOF
chmod 755 "$work/aria2-done.sh"

# start_client GROUP I OUT: starts one client of GROUP in namespace fghI; echoes nothing.
start_client() {
    local g="$1" i="$2" out="$3" ip
    ip=$(netns_ip "$i")
    case "$g" in
        floodgate)
            ip netns exec "fgh$i" "$fg" get "$work/p.torrent" -o "$out" --listen "$ip:6881" --json \
                --timeout "$group_timeout" --bt-threshold "$threshold" --http-source "$data_url" "${fg_args[@]}" \
                > "$out.json" 2> "$out.log" &
            ;;
        libtorrent)
            ip netns exec "fgh$i" env LT_SEED_FOR="$group_timeout" LT_LISTEN="$ip:6881" \
                /usr/bin/python3 "$here/lt_get.py" "$work/p.torrent" "$out" > "$out.t" 2> "$out.log" &
            ;;
        aria2)
            ip netns exec "fgh$i" env FG_DONE_FILE="$out.done" aria2c -q -d "$out" --listen-port=6881 \
                --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
                --file-allocation=none --seed-ratio=0.0 --seed-time="$((group_timeout / 60 + 1))" \
                --on-bt-download-complete="$work/aria2-done.sh" -T "$work/p.torrent" "$data_url" \
                > "$out.log" 2>&1 &
            ;;
    esac
    pids+=($!)
    echo $! > "$out.pid"
}
# finished GROUP OUT: whether the client has completed (it keeps seeding).
finished() {
    case "$1" in
        floodgate) [ -s "$2.json" ] ;;
        libtorrent) [ -s "$2.t" ] ;;
        aria2) [ -s "$2.done" ] ;;
    esac
}

group() {
    local g="$1" i out t0 ms left
    local res="$work/res/$g" dir="$work/$g"
    rm -rf "$res" "$dir"
    mkdir -p "$res" "$dir"
    counters > "$res/before"
    declare -A done_at=()
    t0=$(now_ms)
    for i in $(seq 1 "$n"); do start_client "$g" "$i" "$dir/c$i"; done
    while :; do
        left=0
        ms=$(($(now_ms) - t0))
        for i in $(seq 1 "$n"); do
            [ -n "${done_at[$i]:-}" ] && continue
            if finished "$g" "$dir/c$i"; then done_at[$i]=$((ms / 1000)).$(printf %03d $((ms % 1000))); else left=$((left + 1)); fi
        done
        [ "$left" = 0 ] && break
        [ "$ms" -gt $((group_timeout * 1000)) ] && break
        sleep 0.2
    done
    counters > "$res/after"
    for i in $(seq 1 "$n"); do
        out="$dir/c$i"
        kill "$(cat "$out.pid")" 2> /dev/null || true
    done
    for i in $(seq 1 "$n"); do wait "$(cat "$dir/c$i.pid")" 2> /dev/null || true; done
    : > "$res/clients"
    for i in $(seq 1 "$n"); do
        out="$dir/c$i"
        local status=ok file
        file=$(find "$out" -name payload.bin -type f 2> /dev/null | head -1)
        if [ -z "${done_at[$i]:-}" ]; then status=timeout
        elif [ -z "$file" ] || ! cmp -s "$file" "$work/seed/payload.bin"; then status=wrong; fi
        echo "$i $(hostile "$i" && echo 1 || echo 0) ${done_at[$i]:-nan} $status" >> "$res/clients"
        [ -s "$out.json" ] && cp "$out.json" "$res/c$i.json"
        cp "$out.log" "$res/c$i.log" 2> /dev/null || true
    done
    rm -rf "$dir"
    python3 "$here/hybrid_netns_report.py" "$work/res" "$g"
    sleep 3 # let the relay see the group's connections close
}

for g in $kinds; do
    case "$g" in
        floodgate) ;;
        libtorrent) /usr/bin/python3 -c 'import libtorrent' 2> /dev/null || { echo "libtorrent: not installed (tools/ci-setup.sh installs python3-libtorrent), skipped"; continue; } ;;
        aria2) command -v aria2c > /dev/null || { echo "aria2: not installed (tools/ci-setup.sh installs aria2), skipped"; continue; } ;;
        *) echo "unknown group $g" >&2; exit 1 ;;
    esac
    group "$g"
done
python3 "$here/hybrid_netns_report.py" "$work/res"
