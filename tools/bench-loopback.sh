#!/usr/bin/env bash
# Loopback BitTorrent benchmark: one `floodgate seed`, and the same download by floodgate,
# libtorrent, aria2 and rqbit (each if installed), one after another, on the same machine.
# Prints wall seconds, MiB/s, CPU seconds per GiB, and each client's ratio to floodgate.
#
#   tools/bench-loopback.sh [SIZE_MIB] [RUNS]        (defaults: 1024, 1)
#   SEED=libtorrent tools/bench-loopback.sh ...       (the common seed is libtorrent instead)
#
# Comparison peers: python3-libtorrent and aria2 come from Debian (tools/ci-setup.sh with
# FLOODGATE_BENCH_PEERS=1 installs them); rqbit from `cargo install rqbit`.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
runs="${2:-1}"
here="$PWD/tools/bench"
cargo build --release -p floodgate -q
fg="$PWD/target/release/floodgate"
work="$(mktemp -d /var/tmp/fg-bench.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seed_port=$(port); tracker_port=$(port)
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/payload.torrent" \
    --tracker "http://127.0.0.1:$tracker_port/announce" > /dev/null 2>&1
seed_kind="${SEED:-floodgate}"
if [ "$seed_kind" = libtorrent ]; then
    /usr/bin/python3 "$here/lt_seed.py" "$work/payload.torrent" "$work/seed" "$seed_port" > "$work/seed.ready" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do grep -q ready "$work/seed.ready" 2>/dev/null && break; sleep 0.1; done
else
    "$fg" seed "$work/payload.torrent" --data "$work/seed" --listen "127.0.0.1:$seed_port" > /dev/null 2>&1 &
    pids+=($!)
fi
/usr/bin/python3 "$here/mini_tracker.py" "$tracker_port" "127.0.0.1:$seed_port" &
pids+=($!)
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$seed_port") 2>/dev/null && break; sleep 0.05; done

# run NAME COMMAND...: times COMMAND (which downloads into $out) and checks the result.
results=()
run() {
    local name="$1"; shift
    out="$work/out-$name"; rm -rf "$out"; mkdir -p "$out"
    # /usr/bin/time writes "wall user sys" as the last line of the client's stderr.
    /usr/bin/time -f "%e %U %S" timeout 600 "$@" > /dev/null 2> "$work/$name.err" || true
    local t; t=$(tail -n1 "$work/$name.err")
    if ! cmp -s "$out/payload.bin" "$work/seed/payload.bin"; then
        echo "$name: download incomplete or wrong (see $work/$name.err)"; return
    fi
    read -r wall user sys <<< "$t"
    results+=("$name $wall $user $sys")
    awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v m="$size_mib" \
        'BEGIN { printf "%-11s %7.2f s  %7.0f MiB/s  %5.2f CPU s/GiB\n", n, w, m / w, (u + s) * 1024 / m }'
}

echo "loopback, one seed ($seed_kind), ${size_mib} MiB, $(nproc) cores"
for r in $(seq 1 "$runs"); do
    run floodgate "$fg" get "$work/payload.torrent" -o "$work/out-floodgate" --peer "127.0.0.1:$seed_port" \
        --listen 127.0.0.1:0 --no-seed
    if /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
        run libtorrent /usr/bin/python3 "$here/lt_get.py" "$work/payload.torrent" "$work/out-libtorrent" "127.0.0.1:$seed_port"
    fi
    if command -v aria2c > /dev/null; then
        run aria2 aria2c -q -d "$work/out-aria2" --seed-time=0 --enable-dht=false --bt-enable-lpd=false \
            --enable-peer-exchange=false --file-allocation=falloc --listen-port="$(port)" "$work/payload.torrent"
    fi
    if command -v rqbit > /dev/null; then
        run rqbit rqbit --disable-dht download --exit-on-finish -o "$work/out-rqbit" "$work/payload.torrent"
    fi
done
echo
printf '%s\n' "${results[@]}" | awk -v m="$size_mib" '
    { t[$1] += $2; n[$1]++ }
    END { f = t["floodgate"] / n["floodgate"];
          for (c in t) printf "%-11s mean %6.2f s  %6.0f MiB/s  floodgate is %.2fx its throughput\n", c, t[c]/n[c], m/(t[c]/n[c]), (t[c]/n[c]) / f }'
