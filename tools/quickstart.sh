#!/usr/bin/env bash
# The main job end to end on loopback, with a summary. Grows with the project: today it builds
# the release binaries, makes a test file, serves it from the origin simulator (fg-origin),
# hashes it into a .torrent, pulls it back over HTTP Range and verifies every piece.
#
#   tools/quickstart.sh [SIZE_MIB]        (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-256}"
work="$(mktemp -d -t floodgate-quickstart.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== building release binaries"
cargo build --release --workspace --bins -q
bin="$PWD/target/release"

echo "== making a ${size_mib} MiB test file"
mkdir -p "$work/origin" "$work/client"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/origin/payload.bin"

echo "== starting the origin (fg-origin) on 127.0.0.1"
"$bin/fg-origin" --file "$work/origin/payload.bin" --listen 127.0.0.1:0 --print-addr > "$work/origin.addr" 2> "$work/origin.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/origin.addr" ] && break; sleep 0.05; done
origin="http://$(head -n1 "$work/origin.addr")/payload.bin"

echo "== hashing the file into a .torrent"
t0=$(date +%s.%N)
info_hash=$("$bin/floodgate" make-torrent "$work/origin/payload.bin" -o "$work/payload.torrent" --web-seed "$origin" 2>/dev/null)
t1=$(date +%s.%N)

echo "== pulling it from the origin and verifying every piece"
curl -sf "$origin" -o "$work/client/payload.bin"
t2=$(date +%s.%N)
"$bin/floodgate" verify "$work/payload.torrent" --data "$work/client" 2>/dev/null
t3=$(date +%s.%N)
origin_bytes=$(curl -sf "http://$(head -n1 "$work/origin.addr")/__stats" | sed 's/.*"body_bytes":\([0-9]*\).*/\1/')

bytes=$((size_mib * 1024 * 1024))
mbps() { awk -v b="$bytes" -v a="$1" -v z="$2" 'BEGIN { printf "%.0f MB/s", b / (z - a) / 1e6 }'; }
echo
echo "== summary"
echo "file:           ${size_mib} MiB, info hash ${info_hash}"
echo "make-torrent:   $(mbps "$t0" "$t1")"
echo "origin pull:    $(mbps "$t1" "$t2") (${origin_bytes} bytes served by the origin)"
echo "verify:         $(mbps "$t2" "$t3"), all pieces match"
echo "still to come:  ctl -> relay -> BitTorrent clients (issues 3-5); see README"
