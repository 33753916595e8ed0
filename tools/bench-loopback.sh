#!/usr/bin/env bash
# Loopback BitTorrent benchmark: one seed, and the same download by floodgate, libtorrent,
# aria2, rqbit and Transmission (each only if installed), one after another, in the same run.
# Prints wall seconds, MiB/s, CPU seconds per GiB, and a summary with each client's spread and
# floodgate's throughput over theirs.
#
#   tools/bench-loopback.sh [SIZE_MIB] [RUNS]        (defaults: 1024, 1)
#   SEED=libtorrent tools/bench-loopback.sh ...       (the common seed is libtorrent instead)
#   CLIENTS="floodgate rqbit" tools/bench-loopback.sh (only these downloaders)
#   FG_BIN=/path/to/floodgate tools/bench-loopback.sh (that binary, no build)
#
# Comparison peers: python3-libtorrent and aria2 come from Debian (tools/ci-setup.sh with
# FLOODGATE_BENCH_PEERS=1 installs them), Transmission from `apt-get install transmission-cli`,
# rqbit from `cargo install rqbit`. libtorrent's settings are in tools/bench/lt_common.py,
# Transmission's in tools/bench/tr_get.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
runs="${2:-1}"
clients="${CLIENTS:-floodgate libtorrent aria2 rqbit transmission}"
here="$PWD/tools/bench"
if [ -z "${FG_BIN:-}" ]; then cargo build --release -p floodgate -q; fi
fg="${FG_BIN:-$PWD/target/release/floodgate}"
work="$(mktemp -d /var/tmp/fg-bench.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seed_port=$(port); tracker_port=$(port)
# Transmission takes no 127.x peers from a tracker: it gets the seed at this host's first
# non-loopback IPv4 address (traffic to it still goes over `lo`), so the seed listens on 0.0.0.0.
host_ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')"
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/payload.torrent" \
    --tracker "http://127.0.0.1:$tracker_port/announce" > /dev/null 2>&1
# The same torrent (same info-hash) announcing to the tracker's /alt/ list, for Transmission.
python3 - "$work/payload.torrent" "$work/payload-alt.torrent" "$tracker_port" <<'PY'
import sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
old = b"http://127.0.0.1:%s/announce" % port.encode()
new = b"http://127.0.0.1:%s/alt/announce" % port.encode()
data = open(src, "rb").read()
open(dst, "wb").write(data.replace(b"%d:%s" % (len(old), old), b"%d:%s" % (len(new), new), 1))
PY
seed_kind="${SEED:-floodgate}"
if [ "$seed_kind" = libtorrent ]; then
    /usr/bin/python3 "$here/lt_seed.py" "$work/payload.torrent" "$work/seed" "$seed_port" 0.0.0.0 > "$work/seed.ready" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do grep -q ready "$work/seed.ready" 2>/dev/null && break; sleep 0.1; done
else
    "$fg" seed "$work/payload.torrent" --data "$work/seed" --listen "0.0.0.0:$seed_port" > /dev/null 2>&1 &
    pids+=($!)
fi
alt=()
[ -n "$host_ip" ] && alt=(--alt "$host_ip:$seed_port")
/usr/bin/python3 "$here/mini_tracker.py" "$tracker_port" "127.0.0.1:$seed_port" "${alt[@]}" &
pids+=($!)
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$seed_port") 2>/dev/null && break; sleep 0.05; done

# run NAME COMMAND...: times COMMAND (which downloads into $out) and checks the result.
results=()
run() {
    local name="$1"; shift
    out="$work/out-$name"; rm -rf "$out"; mkdir -p "$out"
    # The previous client's dirty pages go to disk now, not during this client's run.
    sync
    # /usr/bin/time writes "wall user sys" as the last line of the client's stderr.
    /usr/bin/time -f "%e %U %S" timeout 600 "$@" > /dev/null 2> "$work/$name.err" || true
    local t; t=$(tail -n1 "$work/$name.err")
    if ! cmp -s "$out/payload.bin" "$work/seed/payload.bin"; then
        echo "$name: download incomplete or wrong:"; tail -n5 "$work/$name.err"; return
    fi
    read -r wall user sys <<< "$t"
    results+=("$name $wall $user $sys")
    awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v m="$size_mib" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN { printf "%-12s %7.2f s  %7.0f MiB/s  %5.2f CPU s/GiB  (load %s)\n", n, w, m / w, (u + s) * 1024 / m, l }'
    rm -rf "$out"
}

# have NAME: whether client NAME was asked for and is installed (says why not, once per run).
have() {
    case " $clients " in *" $1 "*) ;; *) return 1 ;; esac
    local ok=0
    case "$1" in
        floodgate) ;;
        libtorrent) /usr/bin/python3 -c 'import libtorrent' 2>/dev/null || ok=1 ;;
        aria2) command -v aria2c > /dev/null || ok=1 ;;
        rqbit) command -v rqbit > /dev/null || ok=1 ;;
        transmission) command -v transmission-cli > /dev/null && [ -n "$host_ip" ] || ok=1 ;;
    esac
    [ "$ok" = 0 ] || [ "$r" != 1 ] || echo "$1: not installed (or no non-loopback address), skipped"
    return "$ok"
}

echo "loopback, one seed ($seed_kind), ${size_mib} MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$runs"); do
    if have floodgate; then
        run floodgate "$fg" get "$work/payload.torrent" -o "$work/out-floodgate" --peer "127.0.0.1:$seed_port" \
            --listen 127.0.0.1:0 --no-seed
    fi
    if have libtorrent; then
        run libtorrent /usr/bin/python3 "$here/lt_get.py" "$work/payload.torrent" "$work/out-libtorrent" "127.0.0.1:$seed_port"
    fi
    if have aria2; then
        run aria2 aria2c -q -d "$work/out-aria2" --seed-time=0 --enable-dht=false --bt-enable-lpd=false \
            --enable-peer-exchange=false --file-allocation=falloc --listen-port="$(port)" "$work/payload.torrent"
    fi
    if have rqbit; then
        run rqbit rqbit --disable-dht download --exit-on-finish -o "$work/out-rqbit" "$work/payload.torrent"
    fi
    if have transmission; then
        run transmission "$here/tr_get.sh" "$work/payload-alt.torrent" "$work/out-transmission" "$(port)"
    fi
done
echo
printf '%s\n' "${results[@]}" | awk -v m="$size_mib" '
    { t[$1] += $2; c[$1] += $3 + $4; n[$1]++
      if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if ($2 > hi[$1]) hi[$1] = $2 }
    END { f = ("floodgate" in t) ? t["floodgate"] / n["floodgate"] : 0
          for (k in t) { w = t[k] / n[k]
              printf "%-12s mean %6.2f s (%.2f-%.2f, %d runs)  %5.0f MiB/s  %5.2f CPU s/GiB", k, w, lo[k], hi[k], n[k], m / w, c[k] / n[k] * 1024 / m
              if (f > 0) printf "  floodgate is %.2fx its throughput", w / f
              printf "\n" } }'
