#!/usr/bin/env bash
# A rate-limited swarm in network namespaces, against the Kumar–Ross bound.
#
# One seed and N clients, each in its own network namespace on a bridge (10.77.0.0/24), each
# link shaped with tc tbf: upload on the namespace side of its veth, download on the host side.
# The seed hosts the tracker. The clients start together; each group (floodgate with the
# standard choker, floodgate-fleet: the same clients given the seed's --fleet-key so they serve
# each other without tit-for-tat, then libtorrent via tools/bench/lt_get.py if installed) runs
# against the same seed in the same run.
# Prints every group's first / median / last completion and the Kumar–Ross minimum time
#   T_min = max(F / u_s, F / d_min, N·F / (u_s + Σ u_i))
# for these rates (the fastest any scheme can give every client the file).
#
#   sudo tools/bench-swarm-netns.sh [SIZE_MIB] [CLIENTS]     (defaults: 256, 8)
#   SEED_UP=200 UP=80 DOWN=400 (Mbit/s), KINDS="floodgate floodgate-fleet libtorrent"
#   SEED_ARGS="--super-seed"   (extra flags for the floodgate seed)
#
# Needs root (ip netns, tc). Everything it creates (namespaces fgs*, bridge fgsbr0) is removed
# on exit; traffic never leaves the bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
n="${2:-8}"
seed_up="${SEED_UP:-200}"
up="${UP:-80}"
down="${DOWN:-400}"
kinds="${KINDS:-floodgate floodgate-fleet libtorrent}"
here="$PWD/tools/bench"
# shellcheck source=tools/lib/netns.sh
. tools/lib/netns.sh
NETNS_PREFIX=fgs
NETNS_SUBNET=10.77.0
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces and tc)" >&2; exit 1; }
if [ -z "${FG_BIN:-}" ]; then cargo build --release -p floodgate -q; fi
fg="${FG_BIN:-$PWD/target/release/floodgate}"
work="$(mktemp -d /var/tmp/fg-netns.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    netns_cleanup "$n"
    rm -rf "$work"
}
trap cleanup EXIT

netns_bridge
for i in $(seq 0 "$n"); do
    rate_up=$up; [ "$i" = 0 ] && rate_up=$seed_up
    netns_add "$i" "$rate_up" "$down"
done

seed_ip=10.77.0.1
mkdir -p "$work/seed"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/seed/payload.bin"
"$fg" make-torrent "$work/seed/payload.bin" -o "$work/p.torrent" --tracker "http://$seed_ip:6969/announce" > /dev/null 2>&1
# shellcheck disable=SC2086 # SEED_ARGS is a list of flags
ip netns exec fgs0 "$fg" seed "$work/p.torrent" --data "$work/seed" --listen "$seed_ip:6881" \
    --tracker-listen "$seed_ip:6969" --fleet-key bench-fleet ${SEED_ARGS:-} > /dev/null 2> "$work/seed.log" &
pids+=($!)
netns_wait_tcp fgs1 "$seed_ip" 6881 || true

bound=$(awk -v f="$((size_mib * 1024 * 1024))" -v n="$n" -v us="$seed_up" -v u="$up" -v d="$down" 'BEGIN {
    us = us * 1e6 / 8; u = u * 1e6 / 8; d = d * 1e6 / 8;
    a = f / us; b = f / d; c = n * f / (us + n * u);
    t = a; if (b > t) t = b; if (c > t) t = c; printf "%.2f", t }')
echo "1 seed (up ${seed_up} Mbit/s) -> $n clients (up ${up}, down ${down} Mbit/s) in network namespaces, ${size_mib} MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Kumar–Ross minimum time: ${bound} s; seed flags: ${SEED_ARGS:-none}"

group() {
    local name="$1" cpids=() i
    rm -rf "${work:?}/$name"; mkdir -p "$work/$name"
    for i in $(seq 1 "$n"); do
        local out="$work/$name/c$i"; mkdir -p "$out"
        case "$name" in
            floodgate | floodgate-fleet)
                local fleet=(); [ "$name" = floodgate-fleet ] && fleet=(--fleet-key bench-fleet)
                ip netns exec "fgs$i" "$fg" get "$work/p.torrent" -o "$out" --listen "10.77.0.$((i + 1)):6881" \
                    --seed-for 10 --json --timeout 600 "${fleet[@]}" > "$out.json" 2> "$out.log" &
                ;;
            libtorrent)
                ip netns exec "fgs$i" env LT_SEED_FOR=10 LT_LISTEN="10.77.0.$((i + 1)):6881" timeout 600 /usr/bin/python3 "$here/lt_get.py" \
                    "$work/p.torrent" "$out" > "$out.t" 2> "$out.log" &
                ;;
        esac
        cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p" || true; done
    for i in $(seq 1 "$n"); do
        local out="$work/$name/c$i"
        if ! cmp -s "$out/payload.bin" "$work/seed/payload.bin"; then echo "$name client $i: incomplete or wrong"; return; fi
        if [ "$name" != libtorrent ]; then sed 's/.*"seconds":\([0-9.]*\).*/\1/' "$out.json" > "$out.t"; fi
    done
    cat "$work/$name"/c*.t | sort -n | awk -v g="$name" -v b="$bound" \
        '{ t[NR] = $1 } END { printf "%-11s first %6.2f s  median %6.2f s  last %6.2f s  last / Kumar-Ross bound %.2f\n", g, t[1], t[int((NR+1)/2)], t[NR], t[NR] / b }'
    if [ "$name" != libtorrent ]; then
        # Redundant bytes per client (received and dropped), in % of the file.
        sed 's/.*"redundant_bytes":\([0-9]*\).*/\1/' "$work/$name"/c*.json | sort -n | awk -v f="$((size_mib * 1024 * 1024))" \
            '{ r[NR] = $1 } END { printf "%-11s redundant bytes per client: median %.2f %%, max %.2f %% of the file\n", "", 100 * r[int((NR+1)/2)] / f, 100 * r[NR] / f }'
    fi
    rm -rf "${work:?}/$name"
}

for g in $kinds; do
    case "$g" in
        libtorrent) /usr/bin/python3 -c 'import libtorrent' 2>/dev/null || { echo "libtorrent: not installed, skipped"; continue; } ;;
    esac
    group "$g"
done
