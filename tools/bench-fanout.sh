#!/usr/bin/env bash
# One `floodgate seed` (with its built-in tracker) -> N downloaders started together on loopback;
# they find each other through the tracker and trade. Done in turn with N `floodgate get`, N
# libtorrent (tools/bench/lt_get.py) and N aria2c, each group against the same seed in the same
# run. Prints each group's first, median and last completion (seconds from the clients' own
# start; aria2's from the group's start) and the wall time until the last client exited.
#
#   tools/bench-fanout.sh [SIZE_MIB] [CLIENTS]        (defaults: 512, 8)
#   KINDS="floodgate libtorrent" tools/bench-fanout.sh   (only these; default: all installed)
#   FG_BIN=/path/to/floodgate tools/bench-fanout.sh   (that binary, no build)
#
# Every client seeds for 5 s after it completes, so the slower ones can still trade with it.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-512}"
n="${2:-8}"
kinds="${KINDS:-floodgate libtorrent aria2}"
here="$PWD/tools/bench"
if [ -z "${FG_BIN:-}" ]; then cargo build --release -p floodgate -q; fi
fg="${FG_BIN:-$PWD/target/release/floodgate}"
work="$(mktemp -d /var/tmp/fg-fanout.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
seed_port=$(port); tracker_port=$(port)
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/p.torrent" --tracker "http://127.0.0.1:$tracker_port/announce" > /dev/null 2>&1
"$fg" seed "$work/p.torrent" --data "$work/seed" --listen "127.0.0.1:$seed_port" \
    --tracker-listen "127.0.0.1:$tracker_port" > /dev/null 2> "$work/seed.log" &
pids+=($!)
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$seed_port") 2>/dev/null && break; sleep 0.05; done
echo "1 seed -> $n clients per group on loopback, ${size_mib} MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# group NAME: starts N clients of NAME together, waits for all; each writes its completion
# time in seconds (from its own start) to $work/NAME-i.t.
group() {
    local name="$1" cpids=() i
    rm -rf "$work/$name"; mkdir -p "$work/$name"
    local start; start=$(now)
    for i in $(seq 1 "$n"); do
        local out="$work/$name/c$i"; mkdir -p "$out"
        case "$name" in
            floodgate)
                "$fg" get "$work/p.torrent" -o "$out" --listen 127.0.0.1:0 --seed-for 5 --json --timeout 300 \
                    > "$out.json" 2> "$out.log" &
                ;;
            libtorrent)
                LT_SEED_FOR=5 timeout 300 /usr/bin/python3 "$here/lt_get.py" "$work/p.torrent" "$out" > "$out.t" 2> "$out.log" &
                ;;
            aria2)
                printf '#!/bin/sh\ndate +%%s.%%N > "%s.done"\n' "$out" > "$out.hook"; chmod +x "$out.hook"
                timeout 300 aria2c -q -d "$out" --seed-time=0.0834 --seed-ratio=0 --enable-dht=false --bt-enable-lpd=false \
                    --enable-peer-exchange=false --file-allocation=falloc --listen-port="$(port)" \
                    --on-bt-download-complete="$out.hook" "$work/p.torrent" > "$out.log" 2>&1 &
                ;;
        esac
        cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p" || true; done
    local end; end=$(now)
    for i in $(seq 1 "$n"); do
        local out="$work/$name/c$i"
        if ! cmp -s "$out/payload.bin" "$work/seed/payload.bin"; then echo "$name client $i: incomplete or wrong"; return; fi
        case "$name" in
            floodgate) sed 's/.*"seconds":\([0-9.]*\).*/\1/' "$out.json" > "$out.t" ;;
            aria2) awk -v a="$start" '{ printf "%.3f\n", $1 - a }' "$out.done" > "$out.t" ;;
        esac
    done
    cat "$work/$name"/c*.t | sort -n | awk -v m="$size_mib" -v g="$name" -v w="$(awk -v a="$start" -v z="$end" 'BEGIN { print z - a }')" \
        '{ t[NR] = $1 } END { printf "%-11s first %6.2f s  median %6.2f s  last %6.2f s  (%4.0f MiB/s per client; wall to last exit %.1f s)\n", g, t[1], t[int((NR+1)/2)], t[NR], m / t[NR], w }'
    rm -rf "$work/$name"
}

for g in $kinds; do
    case "$g" in
        libtorrent) /usr/bin/python3 -c 'import libtorrent' 2>/dev/null || { echo "libtorrent: not installed, skipped"; continue; } ;;
        aria2) command -v aria2c > /dev/null || { echo "aria2: not installed, skipped"; continue; } ;;
    esac
    group "$g"
    sleep 2
done
