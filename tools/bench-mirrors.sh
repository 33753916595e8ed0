#!/usr/bin/env bash
# Mirrors benchmark: one standalone relay pulls the same file from 1, 2, then 3 fg-origin
# mirrors, each capped at the same rate, one run after another in the same invocation. Prints
# each run's pull time (the relay's own "pull complete" after_ms), its rate, and the bytes each
# mirror served (the relay's /tasks `mirrors`, and fg-origin's /__stats). Goal: n mirrors pull
# at about n times one mirror's rate, up to the relay's connection count.
#
#   tools/bench-mirrors.sh [SIZE_MIB] [RATE_BYTES_PER_S] [CONNS]   (defaults: 256, 10000000, 3)
#   MIRRORS="1 2 3" tools/bench-mirrors.sh ...                     (which mirror counts to run)
#   FG_BIN_DIR=target/debug tools/bench-mirrors.sh ...             (those binaries, no build)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
rate="${2:-10000000}"
conns="${3:-3}"
counts="${MIRRORS:-1 2 3}"
if [ -z "${FG_BIN_DIR:-}" ]; then
    cargo build --release -q -p floodgate-relay -p floodgate -p floodgate-tools
fi
bin="${FG_BIN_DIR:-$PWD/target/release}"
work="$(mktemp -d /var/tmp/fg-bench-mirrors.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/blob.bin"
"$bin/floodgate" make-torrent "$work/blob.bin" -o "$work/blob.torrent" > /dev/null 2>&1
echo "file ${size_mib} MiB, each mirror capped at ${rate} B/s, relay --origin-conns ${conns}, $(nproc) CPUs"

for n in $counts; do
    origins=(); urls=(); run_pids=()
    for i in $(seq 1 "$n"); do
        p=$(port)
        "$bin/fg-origin" --file "$work/blob.bin" --listen "127.0.0.1:$p" --rate "$rate" 2> /dev/null &
        run_pids+=($!); pids+=($!)
        origins+=("127.0.0.1:$p"); urls+=(--origin "http://127.0.0.1:$p/blob.bin")
    done
    for o in "${origins[@]}"; do
        for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/${o%:*}/${o#*:}") 2>/dev/null && break; sleep 0.05; done
    done
    http=$(port); bt=$(port)
    rm -rf "$work/relay"
    RUST_LOG=info "$bin/floodgate-relay" "${urls[@]}" --torrent "$work/blob.torrent" \
        --data-dir "$work/relay" --listen-http "127.0.0.1:$http" --listen-bt "127.0.0.1:$bt" \
        --origin-conns "$conns" --log-format json > /dev/null 2> "$work/relay.log" &
    relay=$!; run_pids+=($relay); pids+=($relay)
    ok=""
    for _ in $(seq 1 6000); do
        if grep -q '"pull complete"' "$work/relay.log" 2>/dev/null; then ok=1; break; fi
        if ! kill -0 "$relay" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$ok" ]; then echo "$n mirror(s): the pull did not complete"; tail -n5 "$work/relay.log"; exit 1; fi
    tasks=$(curl -s "http://127.0.0.1:$http/tasks")
    stats=""
    for o in "${origins[@]}"; do stats+="$(curl -s "http://$o/__stats") "; done
    python3 - "$n" "$size_mib" "$rate" "$tasks" "$work/relay.log" $stats <<'PY'
import json, sys
n, size_mib, rate, tasks, log = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
served = [json.loads(s)["body_bytes"] for s in sys.argv[6:]]
after_ms = None
for line in open(log):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    fields = rec.get("fields", rec)
    if fields.get("message") == "pull complete":
        after_ms = int(fields.get("after_ms"))
task = json.loads(tasks)[0]
secs = after_ms / 1000
mb = size_mib * 1024 * 1024 / 1e6
by_mirror = [m["bytes"] for m in task["mirrors"]]
share = " ".join(f"{b / 1048576:.0f}" for b in by_mirror)
print(f"{n} mirror(s): {secs:6.2f} s  {mb / secs:6.2f} MB/s  ({mb / secs / (rate / 1e6):.2f}x one mirror's cap)"
      f"  MiB per mirror: {share}  origin body bytes: {sum(served)} (file {size_mib * 1048576})")
PY
    for p in "${run_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
done
