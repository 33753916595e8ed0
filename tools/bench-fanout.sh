#!/usr/bin/env bash
# One `floodgate seed` (with its built-in tracker) -> N `floodgate get` started together on
# loopback; they find each other through the tracker and trade. Prints each client's time, the
# last completion, and how many bytes the seed uploaded (below N x file means the clients shared).
#
#   tools/bench-fanout.sh [SIZE_MIB] [CLIENTS]        (defaults: 512, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-512}"
n="${2:-8}"
cargo build --release -p floodgate -q
fg="$PWD/target/release/floodgate"
work="$(mktemp -d /var/tmp/fg-fanout.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seed_port=$(port); tracker_port=$(port)
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/p.torrent" --tracker "http://127.0.0.1:$tracker_port/announce" > /dev/null 2>&1
"$fg" seed "$work/p.torrent" --data "$work/seed" --listen "127.0.0.1:$seed_port" \
    --tracker-listen "127.0.0.1:$tracker_port" > /dev/null 2> "$work/seed.log" &
pids+=($!)
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$seed_port") 2>/dev/null && break; sleep 0.05; done
start=$(date +%s.%N)
cpids=()
for i in $(seq 1 "$n"); do
    mkdir -p "$work/c$i"
    "$fg" get "$work/p.torrent" -o "$work/c$i" --listen 127.0.0.1:0 --seed-for 5 --json --timeout 300 \
        > "$work/c$i.json" 2> "$work/c$i.log" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
end=$(date +%s.%N)
for i in $(seq 1 "$n"); do cmp -s "$work/c$i/payload.bin" "$work/seed/payload.bin" || { echo "client $i differs"; exit 1; }; done
echo "1 seed -> $n clients on loopback, ${size_mib} MiB, $(nproc) cores"
for i in $(seq 1 "$n"); do sed 's/.*"seconds":\([0-9.]*\).*/\1/' "$work/c$i.json"; done | sort -n | awk -v m="$size_mib" \
    '{ t[NR] = $1 } END { printf "first done %.2f s, median %.2f s, last done %.2f s (%.0f MiB/s per client)\n", t[1], t[int((NR+1)/2)], t[NR], m / t[NR] }'
awk -v a="$start" -v z="$end" 'BEGIN { printf "wall from start to the last exit: %.2f s (includes 5 s of seeding)\n", z - a }'
