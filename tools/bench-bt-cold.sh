#!/usr/bin/env bash
# BitTorrent uploads from a file that is not in memory: one `floodgate seed` inside a memory
# cgroup of MEM_MIB (default 256) MiB seeding a SIZE_MIB file, page cache dropped, CLIENTS
# `floodgate get --no-seed` downloading from it at once (each only from the seed, so it serves
# CLIENTS copies and reads the file over and over), while tools/bench/bt_probe.py opens a new
# connection every 200 ms and times the seed's handshake answer. The clients are always the
# first binary of FG_BINS; only the seed changes from group to group. Done in turn for each binary
# in FG_BINS (label=path ...; the path `libtorrent` runs tools/bench/lt_seed.py, libtorrent 2 from
# Debian's python3-libtorrent, as the seed instead), against the same file in the same run. Prints each group's last
# completion, the seed's upload rate, and the probe's median / p99 / max latency.
#
#   FG_BINS="new=target/release/floodgate old=/path/to/old/floodgate lt=libtorrent" \
#       tools/bench-bt-cold.sh [SIZE_MIB] [CLIENTS] [ROUNDS]   (defaults: 1024, 4, 1)
#
# Clients write to /dev/shm (their writes must not compete with the seed's reads for the disk).
# Root only (cgroup, drop_caches).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
n="${2:-4}"
rounds="${3:-1}"
mem_mib="${MEM_MIB:-256}"
bins="${FG_BINS:-new=$PWD/target/release/floodgate}"
work="$(mktemp -d /var/tmp/fg-bt-cold.XXXXXX)"
shm="$(mktemp -d /dev/shm/fg-bt-cold.XXXXXX)"
pids=()
# shellcheck source=tools/lib/memcg.sh
. tools/lib/memcg.sh
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    memcg_cleanup
    rm -rf "$work" "$shm"
}
trap cleanup EXIT
memcg_create "$mem_mib"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0; sleep 0.05; done; return 1; }

first_bin="${bins%% *}"
first_bin="${first_bin#*=}"
[ -x "$first_bin" ] || { echo "the first of FG_BINS must be a floodgate binary" >&2; exit 1; }
# Every group's clients run this binary; only the seed differs between groups.
client="$first_bin"
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$first_bin" make-torrent "$work/seed/payload.bin" -o "$work/p.torrent" > /dev/null 2>&1
info_hash=$("$first_bin" info "$work/p.torrent" | sed -n 's/^info hash: *//p')
size=$(stat -c %s "$work/seed/payload.bin")
echo "BitTorrent from a cold file: ${size_mib} MiB, seed in a ${mem_mib} MiB cgroup, $n clients, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"

# group LABEL BIN: one round for that binary.
group() {
    local label="$1" bin="$2" sp probe i t0 cpids=()
    local seed_port
    seed_port=$(port)
    rm -rf "${shm:?}"/c*
    if [ "$bin" = libtorrent ]; then
        in_cgroup /usr/bin/python3 tools/bench/lt_seed.py "$work/p.torrent" "$work/seed" "$seed_port" \
            > "$work/seed-$label.out" 2> "$work/seed-$label.log" &
        sp=$!
        pids+=("$sp")
        for _ in $(seq 1 600); do grep -q ready "$work/seed-$label.out" 2> /dev/null && break; sleep 0.1; done
    else
        in_cgroup "$bin" seed "$work/p.torrent" --data "$work/seed" --listen "127.0.0.1:$seed_port" \
            --no-super-seed > /dev/null 2> "$work/seed-$label.log" &
        sp=$!
        pids+=("$sp")
    fi
    wait_port "$seed_port" || { echo "$label: seed did not start" >&2; return 1; }
    # After the seed's start-up check of its data: the clients' reads start cold.
    drop_caches
    python3 tools/bench/bt_probe.py "127.0.0.1:$seed_port" "$info_hash" 0.2 > "$work/probe-$label.txt" &
    probe=$!
    t0=$(date +%s.%N)
    for i in $(seq 1 "$n"); do
        "$client" get "$work/p.torrent" -o "$shm/c$i" --peer "127.0.0.1:$seed_port" --no-seed > /dev/null 2> "$work/c-$label-$i.log" &
        cpids+=($!)
    done
    local failed=0
    for p in "${cpids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    local took
    took=$(echo "$(date +%s.%N) - $t0" | bc)
    kill -TERM "$probe" 2> /dev/null || true
    wait "$probe" 2> /dev/null || true
    kill "$sp" 2> /dev/null || true
    wait "$sp" 2> /dev/null || true
    for i in $(seq 1 "$n"); do
        cmp -s "$shm/c$i/payload.bin" "$work/seed/payload.bin" || { failed=$((failed + 1)); tail -2 "$work/c-$label-$i.log" >&2; }
    done
    printf '%-6s last client %6.2f s  seed upload %6.1f MB/s  %s  (%s failed)\n' "$label" "$took" \
        "$(echo "$n * $size / $took / 1000000" | bc -l)" "$(cat "$work/probe-$label.txt")" "$failed"
}

for r in $(seq 1 "$rounds"); do
    echo "round $r"
    for pair in $bins; do group "${pair%%=*}" "${pair#*=}"; done
done
