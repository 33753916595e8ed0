#!/usr/bin/env bash
# HTTP Range serving: floodgate-relay vs nginx (sendfile on), same file, same run.
#
#   tools/bench-relay-http.sh [SIZE_MIB] [SECONDS] [ROUNDS]          (defaults: 1024, 10, 2)
#   tools/bench-relay-http.sh --cold [SIZE_MIB] [SECONDS] [ROUNDS]   (defaults: 4096, 20, 2)
#
# RELAY_BIN=path: measure that relay binary instead of building target/release's.
#
# Makes a random file, serves it with nginx on 127.0.0.1, starts a standalone (URL-only) relay
# whose origin is that nginx, waits until the relay has pulled and verified the whole file, then
# runs wrk (2 threads, 64 connections, random aligned 1 MiB ranges: tools/bench/range.lua)
# against nginx and against the relay's /tasks/<id>/data, alternating, ROUNDS times each.
# Prints both throughputs, the servers' CPU time per GiB served (wrk's not counted), and
# relay / nginx. Installs nginx and wrk with apt if missing.
# The relay runs with its per-IP limits lifted (all 64 connections come from 127.0.0.1).
#
# --cold: the file does not fit in memory. nginx and the relay run inside one memory cgroup of
# MEM_MIB (default 1024) MiB (cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`; needs
# root), the page cache is dropped (`echo 3 > /proc/sys/vm/drop_caches`) before every run,
# wrk's timeout is 60 s, and tools/bench/probe.py sends a small (4 KiB, hot) range request
# every 50 ms during each run and prints its p50/p99/max: how long an ordinary request waits
# while the server reads the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
cold=0
if [ "${1:-}" = "--cold" ]; then
    cold=1
    shift
fi
if [ "$cold" = 1 ]; then
    size_mib="${1:-4096}"
    secs="${2:-20}"
else
    size_mib="${1:-1024}"
    secs="${2:-10}"
fi
rounds="${3:-2}"
mem_mib="${MEM_MIB:-1024}"
conns=64
chunk=$((1024 * 1024))

missing=()
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk > /dev/null || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" > /dev/null
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

if [ -n "${RELAY_BIN:-}" ]; then
    relay_bin="$(realpath "$RELAY_BIN")"
else
    cargo build --release -q -p floodgate-relay
    relay_bin="$PWD/target/release/floodgate-relay"
fi
[ -x "$relay_bin" ] || { echo "no relay binary at $relay_bin"; exit 1; }

work="$(mktemp -d /var/tmp/fg-relay-http.XXXXXX)"
chmod 755 "$work" # nginx workers run as nobody
pids=()
# shellcheck source=tools/lib/memcg.sh
. tools/lib/memcg.sh
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    memcg_cleanup
    rm -rf "$work"
}
trap cleanup EXIT
# In cold mode, a memory cgroup of mem_mib MiB; `in_cgroup CMD... &` runs CMD inside it.
if [ "$cold" = 1 ]; then
    memcg_create "$mem_mib" || exit 1
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0; sleep 0.05; done; return 1; }

mkdir -p "$work/www" "$work/nginx" "$work/relay"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/www/bench.bin"
chmod 644 "$work/www/bench.bin"
size=$(stat -c %s "$work/www/bench.bin")

nginx_port=$(port)
cat > "$work/nginx/nginx.conf" << CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    types { application/octet-stream bin; }
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
    }
}
CONF
in_cgroup "$nginx_bin" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_port "$nginx_port" || { echo "nginx did not start"; cat "$work/nginx/error.log"; exit 1; }

http_port=$(port)
bt_port=$(port)
in_cgroup "$relay_bin" --origin "http://127.0.0.1:$nginx_port/bench.bin" --data-dir "$work/relay" \
    --listen-http "127.0.0.1:$http_port" --listen-bt "127.0.0.1:$bt_port" \
    --http-conns-per-ip 1024 --http-rate-per-ip 0 > "$work/relay.id" 2> "$work/relay.log" &
relay_pid=$!
pids+=("$relay_pid")
wait_port "$http_port" || { echo "relay did not start"; cat "$work/relay.log"; exit 1; }
id="$(head -n1 "$work/relay.id")"
for _ in $(seq 1 3000); do
    curl -s "http://127.0.0.1:$http_port/tasks" | grep -q '"state":"complete"' && break
    sleep 0.2
done
curl -s "http://127.0.0.1:$http_port/tasks" | grep -q '"state":"complete"' || {
    echo "the relay's pull did not finish: $(curl -s "http://127.0.0.1:$http_port/tasks")"
    tail -n 20 "$work/relay.log"
    exit 1
}

nginx_url="http://127.0.0.1:$nginx_port/bench.bin"
relay_url="http://127.0.0.1:$http_port/tasks/$id/data"
# Both answer a range with 206 and the file's bytes.
last=$((size - chunk))
for url in "$nginx_url" "$relay_url"; do
    code=$(curl -s -o "$work/check.bin" -w '%{http_code}' -r "$last-$((size - 1))" "$url")
    [ "$code" = 206 ] || { echo "$url answered $code to a range"; exit 1; }
    cmp -s "$work/check.bin" <(tail -c "$chunk" "$work/www/bench.bin") || { echo "$url sent other bytes"; exit 1; }
done

wrk_timeout=()
if [ "$cold" = 1 ]; then wrk_timeout=(--timeout 60s); fi
# Runs wrk; prints MiB/s of range bodies (206 responses x 1 MiB per second), and wrk's own
# Transfer/sec (bodies and heads) on stderr.
run_wrk() {
    local out
    out="$(wrk -t2 -c"$conns" -d"${secs}s" "${wrk_timeout[@]}" -s tools/bench/range.lua "$1" -- "$size" "$chunk")"
    if grep -q "Non-2xx" <<< "$out" || grep -q "Socket errors" <<< "$out"; then
        echo "wrk saw errors against $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    awk -v c="$chunk" '/^Requests\/sec:/ { printf "%.0f\n", $2 * c / 1048576 }' <<< "$out"
    grep '^Transfer/sec' <<< "$out" | sed "s|^|  $1: wrk |" >&2
}

# CPU time (user + system, clock ticks) of the given processes.
cpu_ticks() {
    local t=0 p f
    for p in "$@"; do
        read -r -a f < "/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}
# Runs wrk against URL while counting the CPU of PIDS...; prints "MiB/s CPU-seconds-per-GiB".
# Cold: drops the page cache first and runs the latency probe beside wrk (its line goes to
# $work/probe.txt).
measure() {
    local url="$1" mibs c0 c1 probe_pid=""
    shift
    if [ "$cold" = 1 ]; then
        drop_caches
        python3 tools/bench/probe.py "$url" "$secs" > "$work/probe.txt" 2> "$work/probe.err" &
        probe_pid=$!
    fi
    c0=$(cpu_ticks "$@")
    mibs=$(run_wrk "$url")
    c1=$(cpu_ticks "$@")
    if [ -n "$probe_pid" ]; then
        wait "$probe_pid" || { echo "the probe failed against $url:" >&2; cat "$work/probe.err" >&2; exit 1; }
    fi
    awk -v m="$mibs" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v s="$secs" \
        'BEGIN { printf "%d %.2f\n", m, (c / hz) / (m * s / 1024) }'
}

if [ "$cold" = 1 ]; then
    where="not in the page cache (memory cgroup of $mem_mib MiB, caches dropped before each run)"
else
    where="in the page cache"
fi
echo "HTTP Range, ${size_mib} MiB file $where, wrk -t2 -c$conns -d${secs}s ${wrk_timeout[*]}, random 1 MiB ranges, $(nproc) cores, $(date -u +%F), relay $relay_bin"
nginx_total=0
relay_total=0
for r in $(seq 1 "$rounds"); do
    read -r n ncpu <<< "$(measure "$nginx_url" "$nginx_pid" $(pgrep -P "$nginx_pid"))"
    nprobe="$(cat "$work/probe.txt" 2> /dev/null || true)"
    read -r rl rcpu <<< "$(measure "$relay_url" "$relay_pid")"
    rprobe="$(cat "$work/probe.txt" 2> /dev/null || true)"
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$relay_pid/status")
    echo "round $r: nginx $n MiB/s ($ncpu CPU-s/GiB), relay $rl MiB/s ($rcpu CPU-s/GiB; RSS $((rss / 1024)) MiB)"
    if [ "$cold" = 1 ]; then
        echo "  nginx $nprobe"
        echo "  relay $rprobe"
        echo "  relay cold runs: $(curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^floodgate_relay_http_cold_(runs|bytes)_total' | awk '{ printf "%s ", $NF }')"
    fi
    nginx_total=$((nginx_total + n))
    relay_total=$((relay_total + rl))
done
awk -v n="$nginx_total" -v r="$relay_total" -v k="$rounds" \
    'BEGIN { printf "mean: nginx %.0f MiB/s, relay %.0f MiB/s, relay / nginx = %.2fx\n", n / k, r / k, r / n }'
